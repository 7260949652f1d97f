"""Errors raised by the emulator.

The emulator never imports ``ir`` or ``nmc`` (it sees chip images only), so its errors have their
own root, :class:`EmulatorError`. The nmc CLI treats both roots as user errors: it prints
``Error: ...`` and exits non-zero, with no traceback.
"""

from __future__ import annotations


class EmulatorError(Exception):
    """Base of every error the emulator raises on bad images, inputs or overflows."""

    exit_code: int = 1


class LoadError(EmulatorError):
    """A chip image that cannot be loaded: names the section and the byte offset."""

    def __init__(self, message: str, section: str | None = None, offset: int | None = None):
        self.section = section
        self.offset = offset
        where = ""
        if section is not None:
            where = f"section {section}"
            if offset is not None:
                where += f" at byte offset {offset}"
            where += ": "
        super().__init__(where + message)


class InputError(EmulatorError):
    """Input spikes or options that do not fit the loaded chip."""


class StateOverflowError(EmulatorError):
    """A register overflowed in a strict run (names register, core, neuron and tick)."""
