"""Progress bars for long compiles and emulations.

Shown only when stderr is a terminal, and never with ``--quiet`` or under CI (``CI`` set), so logs
and tests stay clean. One line, redrawn in place: ``label [#####.....] 12/40 3.1 s``.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

_QUIET = False


def set_quiet(quiet: bool) -> None:
    """Turn progress output off (``--quiet``) or back on."""
    global _QUIET
    _QUIET = quiet


def enabled(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stderr
    return (not _QUIET and not os.environ.get("CI")
            and hasattr(stream, "isatty") and stream.isatty())


class Progress:
    """A progress bar over ``total`` units; ``update(done)`` redraws, ``close()`` ends the line."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None, width: int = 30,
                 force: bool = False):
        self.label, self.total, self.width = label, max(1, int(total)), width
        self.stream = stream or sys.stderr
        self.on = force or enabled(self.stream)
        self.t0 = time.perf_counter()
        self.done = 0

    def update(self, done: int) -> None:
        self.done = done
        if not self.on:
            return
        frac = min(1.0, done / self.total)
        fill = int(round(frac * self.width))
        bar = "#" * fill + "." * (self.width - fill)
        el = time.perf_counter() - self.t0
        self.stream.write(f"\r{self.label} [{bar}] {done}/{self.total} {el:.1f} s")
        self.stream.flush()

    def __call__(self, done: int, total: int | None = None) -> None:
        if total is not None:
            self.total = max(1, int(total))
        self.update(done)

    def close(self) -> None:
        if self.on:
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
