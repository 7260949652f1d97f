"""The chip emulator: loads a chip image (bytes only) and runs it tick by tick in integer arithmetic.

This package imports numpy and its own modules only, never ``ir`` or ``nmc``: it sees what the
hardware would see, so every mapping or encoding bug shows in its output.

>>> chip = emulator.load("chip.nmb")                       # doctest: +SKIP
>>> res = chip.run(x, mode="fast")                         # doctest: +SKIP
>>> res.outputs["out"].shape, res.stats["energy"]["total_joules"]   # doctest: +SKIP
"""

from emulator.errors import EmulatorError, InputError, LoadError, StateOverflowError


def __getattr__(name):
    # Lazy exports: importing emulator.errors (done by nmc.errors at CLI start-up) stays cheap.
    if name in ("load",):
        from emulator.loader import load

        return load
    if name == "Chip":
        from emulator.chip import Chip

        return Chip
    if name in ("RunResult", "Events", "run"):
        import emulator.runner as r

        return getattr(r, name)
    if name in ("poisson_rate", "deterministic_rate", "latency"):
        import emulator.encoders as e

        return getattr(e, name)
    raise AttributeError(f"module 'emulator' has no attribute {name!r}")


__all__ = ["Chip", "EmulatorError", "Events", "InputError", "LoadError", "RunResult",
           "StateOverflowError", "deterministic_rate", "latency", "load", "poisson_rate", "run"]
