"""Value Change Dump (IEEE 1364 section 18) output of emulated spikes and state registers.

GTKWave and Surfer open the file. One tick is one time unit; ``$timescale`` is the chip's tick
period (``1 ms`` for TrueNorth and Loihi, ``1 us`` for BrainScaleS-2's 1000x speed-up of a 1 ms
biological step). A spike is a one-tick pulse on a 1-bit wire ``port[i]``; a state register is an
``integer`` variable of its width, written in two's complement binary. Each port or probed population
is a ``$scope module``. No date is written, so the same run gives the same file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ir.errors import NmcError

_UNITS = [(1.0, "s"), (1e-3, "ms"), (1e-6, "us"), (1e-9, "ns"), (1e-12, "ps"), (1e-15, "fs")]


def timescale(seconds: float) -> str:
    """The VCD timescale closest to ``seconds`` (VCD allows 1, 10 or 100 of a unit)."""
    if not seconds > 0:
        raise NmcError(f"tick period {seconds} s must be > 0")
    for factor, unit in _UNITS:
        if seconds >= factor * (1 - 1e-9):
            mult = seconds / factor
            for m in (100, 10, 1):
                if mult >= m * (1 - 1e-9):
                    return f"{m} {unit}"
    return "1 fs"


def _ident(k: int) -> str:
    """Short identifier codes from the printable characters '!'..'~' (base 94)."""
    s = ""
    k += 1
    while k:
        k, r = divmod(k - 1, 94)
        s = chr(33 + r) + s
    return s


def write_vcd(path: str | os.PathLike, spikes: Mapping[str, np.ndarray], tick_seconds: float,
              states: Mapping[str, np.ndarray] | None = None, state_bits: int = 24,
              top: str = "chip") -> Path:
    """Write spikes ``{port: (T, n) 0/1}`` and optional ``{"pop.var": (T, n) ints}`` as VCD.

    The file is written atomically.
    """
    from nmc.fileio import atomic_open

    states = dict(states or {})
    sigs: list[tuple[str, str, int, np.ndarray, str]] = []  # scope, name, width, data, id
    k = 0
    for port, arr in spikes.items():
        a = np.asarray(arr)
        if a.ndim != 2:
            raise NmcError(f"spikes of {port}: shape {list(a.shape)}, expected (ticks, neurons)")
        for i in range(a.shape[1]):
            sigs.append((port, f"{port}[{i}]", 1, (a[:, i] != 0).astype(np.int64), _ident(k)))
            k += 1
    for key, arr in states.items():
        a = np.asarray(arr, dtype=np.int64)
        scope = key.replace(".", "_")
        for i in range(a.shape[1]):
            sigs.append((scope, f"{key.split('.')[-1]}[{i}]", state_bits, a[:, i], _ident(k)))
            k += 1
    ticks = max((s[3].shape[0] for s in sigs), default=0)
    mask = (1 << state_bits) - 1

    def val(width: int, v: int, ident: str) -> str:
        if width == 1:
            return f"{v}{ident}"
        return f"b{int(v) & mask:b} {ident}"

    path = Path(path)
    with atomic_open(path, "w") as f:
        f.write("$version nmc emulator $end\n")
        f.write(f"$timescale {timescale(tick_seconds)} $end\n")
        f.write(f"$scope module {top} $end\n")
        current = None
        for scope, name, width, _, ident in sigs:
            if scope != current:
                if current is not None:
                    f.write("$upscope $end\n")
                f.write(f"$scope module {scope} $end\n")
                current = scope
            kind = "wire" if width == 1 else "integer"
            f.write(f"$var {kind} {width} {ident} {name} $end\n")
        if current is not None:
            f.write("$upscope $end\n")
        f.write("$upscope $end\n$enddefinitions $end\n")
        if not sigs:
            return path
        data = np.stack([s[3] for s in sigs], axis=1)  # (T, signals)
        f.write("#0\n$dumpvars\n")
        for j, (_, _, width, _, ident) in enumerate(sigs):
            f.write(val(width, int(data[0, j]), ident) + "\n")
        f.write("$end\n")
        changes = np.nonzero(np.diff(data, axis=0))  # (tick-1, signal) where a value changes
        t_idx, s_idx = changes
        order = np.lexsort((s_idx, t_idx))
        last_t = None
        for t, j in zip(t_idx[order] + 1, s_idx[order], strict=True):
            if t != last_t:
                f.write(f"#{t}\n")
                last_t = t
            _, _, width, _, ident = sigs[j]
            f.write(val(width, int(data[t, j]), ident) + "\n")
        f.write(f"#{ticks}\n")
    return path


def read_vcd(path: str | os.PathLike) -> tuple[str, dict[str, np.ndarray]]:
    """Parse a VCD written by :func:`write_vcd` back into ``(timescale, {"scope.name": values})``.

    A small reader for tests and tools; it handles the subset this module writes."""
    text = Path(path).read_text()
    head, _, body = text.partition("$enddefinitions $end")
    ts = head.split("$timescale", 1)[1].split("$end", 1)[0].strip()
    scopes: list[str] = []
    ids: dict[str, tuple[str, int]] = {}
    toks = head.split()
    i = 0
    while i < len(toks):
        if toks[i] == "$scope":
            scopes.append(toks[i + 2])
            i += 4
        elif toks[i] == "$upscope":
            scopes.pop()
            i += 2
        elif toks[i] == "$var":
            width, ident, name = int(toks[i + 2]), toks[i + 3], toks[i + 4]
            ids[ident] = (".".join(scopes[1:] + [name]), width)
            i += 6
        else:
            i += 1
    end = 0
    events: list[tuple[int, str, int]] = []
    t = 0
    for line in body.split("\n"):
        line = line.strip()
        if not line or line.startswith("$"):
            continue
        if line.startswith("#"):
            t = int(line[1:])
            end = max(end, t)
        elif line.startswith("b"):
            bits, ident = line[1:].split()
            events.append((t, ident, int(bits, 2)))
        else:
            events.append((t, line[1:], int(line[0])))
    out = {name: np.zeros(end, dtype=np.int64) for name, _ in ids.values()}
    for t, ident, v in sorted(events, key=lambda e: e[0]):
        name, width = ids[ident]
        if width > 1 and v >= 1 << (width - 1):
            v -= 1 << width
        out[name][t:] = v
    return ts, out
