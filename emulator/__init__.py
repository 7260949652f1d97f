"""The chip emulator: loads a chip image (bytes only) and runs it tick by tick in integer arithmetic.

This package imports numpy and its own modules only, never ``ir`` or ``nmc``: it sees what the
hardware would see, so every mapping or encoding bug shows in its output.
"""

from emulator.errors import EmulatorError, InputError, LoadError, StateOverflowError

__all__ = ["EmulatorError", "InputError", "LoadError", "StateOverflowError"]
