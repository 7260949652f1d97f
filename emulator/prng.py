"""The counter-based hash every stochastic rule of the emulator draws from (hardware.md 4.4).

``counter_hash(w0, w1, ...)``: ``h = 0; for w in words: h = mix64((h ^ w) + 0x9E3779B97F4A7C15)``
in wrapping 64-bit arithmetic, with SplitMix64's finaliser as ``mix64`` (Steele, Lea, Flood 2014).
A draw depends on its words only (seed, neuron id, tick, draw index ...), never on evaluation
order, so vectorised and sequential evaluation agree. TrueNorth's stochastic synapses, leak and
threshold and BrainScaleS-2's fixed-pattern noise use it. The compiler side has its own copy
(``ir.native.truenorth``): the emulator imports numpy and itself only."""

from __future__ import annotations

from typing import Any

import numpy as np

_U64 = np.uint64
_GOLDEN = _U64(0x9E3779B97F4A7C15)
_M1 = _U64(0xBF58476D1CE4E5B9)
_M2 = _U64(0x94D049BB133111EB)


def _mix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser, a bijection of 64-bit words (wrapping arithmetic)."""
    z = (z ^ (z >> _U64(30))) * _M1
    z = (z ^ (z >> _U64(27))) * _M2
    return z ^ (z >> _U64(31))


def counter_hash(*words: Any) -> np.ndarray:
    """The module's hash, element-wise (uint64; words broadcast together, each taken modulo
    2**64, negative integers as two's complement)."""
    with np.errstate(over="ignore"):
        arrs = []
        for w in words:
            a = np.asarray(w)
            arrs.append(a if a.dtype == _U64 else a.astype(np.int64).astype(_U64))
        h = np.zeros(np.broadcast_shapes(*(a.shape for a in arrs)), _U64)
        for a in arrs:
            h = _mix64((h ^ a) + _GOLDEN)
    return h


__all__ = ["counter_hash"]
