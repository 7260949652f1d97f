"""Spike encoders: real-valued data -> binary spike trains ``(B, T, N)`` (bool) for the chip.

All take ``x`` of shape ``(N,)`` or ``(B, N)`` with values in [0, 1] (a value outside that range or
not finite is an InputError naming it; scale your data first) and ``ticks`` T.

* :func:`poisson_rate`: independent Bernoulli spikes with probability ``x * max_rate`` per tick,
  from a seeded generator (same seed, same trains);
* :func:`deterministic_rate`: regular trains, an accumulator per channel adds ``x * max_rate``
  every tick and spikes (subtracting 1) when it reaches 1, so a channel fires
  ``floor(T * x * max_rate)`` times, evenly spaced;
* :func:`latency`: time to first spike, one spike per channel at tick ``round((1 - x) * (T - 1))``
  (larger values earlier); values at or below ``threshold`` never spike.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from emulator.errors import InputError


def _values(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2:
        raise InputError(f"{name}: data of shape {list(np.shape(x))} must be (N,) or (B, N); "
                         "flatten each sample first")
    bad = ~np.isfinite(a) | (a < 0) | (a > 1)
    if bad.any():
        b, n = (int(i[0]) for i in np.nonzero(bad))
        raise InputError(f"{name}: value {a[b, n]} at sample {b} channel {n} is outside [0, 1]; "
                         "scale the data to [0, 1] first")
    return a


def _ticks(ticks: int, name: str) -> int:
    if not isinstance(ticks, int | np.integer) or ticks < 1:
        raise InputError(f"{name}: ticks = {ticks!r} must be a positive integer")
    return int(ticks)


def poisson_rate(x: Any, ticks: int, max_rate: float = 1.0, seed: int = 0) -> np.ndarray:
    """Bernoulli spikes with probability ``x * max_rate`` per tick (seeded)."""
    a = _values(x, "poisson_rate")
    T = _ticks(ticks, "poisson_rate")
    if not 0 <= max_rate <= 1:
        raise InputError(f"poisson_rate: max_rate = {max_rate} must be in [0, 1] (spikes per tick)")
    rng = np.random.default_rng(seed)
    return rng.random((a.shape[0], T, a.shape[1])) < (a * max_rate)[:, None, :]


def deterministic_rate(x: Any, ticks: int, max_rate: float = 1.0) -> np.ndarray:
    """Regular spike trains: ``floor(T * x * max_rate)`` evenly spaced spikes per channel."""
    a = _values(x, "deterministic_rate")
    T = _ticks(ticks, "deterministic_rate")
    if not 0 <= max_rate <= 1:
        raise InputError(f"deterministic_rate: max_rate = {max_rate} must be in [0, 1]")
    r = a * max_rate
    # the accumulator after tick t is (t + 1) * r; a spike at t when its floor increases
    steps = np.arange(1, T + 1, dtype=np.float64)[None, :, None]
    level = np.floor(steps * r[:, None, :] + 1e-9)
    prev = np.concatenate([np.zeros_like(level[:, :1]), level[:, :-1]], axis=1)
    return level > prev


def latency(x: Any, ticks: int, threshold: float = 0.0) -> np.ndarray:
    """One spike per channel at ``round((1 - x) * (T - 1))``; none where ``x <= threshold``."""
    a = _values(x, "latency")
    T = _ticks(ticks, "latency")
    out = np.zeros((a.shape[0], T, a.shape[1]), bool)
    t = np.rint((1.0 - a) * (T - 1)).astype(np.int64)
    b, n = np.nonzero(a > threshold)
    out[b, t[b, n], n] = True
    return out


__all__ = ["deterministic_rate", "latency", "poisson_rate"]
