"""The quantization report: what quantizing cost, per connection and per population.

Per connection (:func:`connection_stats`):

* ``scale``: integer units (of the native synaptic input) per float weight unit;
* ``bits``: stored weight bits used (and the weight exponent / sign mode where the family has them);
* ``clipped_pct``: % of the non-zero float weights that fell outside the legal range and were clipped;
* ``zero_pct``: % of the non-zero float weights that rounded to zero;
* ``rel_error``: ``||W_q / scale - W||_F / ||W||_F`` (0 for an all-zero matrix).

Per population (:func:`population_stats`, only with calibration data): ``never_fire`` (neurons that
never spike on any calibration sample), ``always_fire`` (neurons that spike at every step they can
on every sample), with the sample and step counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

CONNECTION_COLUMNS = ("name", "kind", "scale", "bits", "weight_exp", "sign_mode", "delay",
                      "clipped_pct", "zero_pct", "rel_error")
POPULATION_COLUMNS = ("name", "kind", "neurons", "scale", "limited_by", "du", "dv", "vth_mant",
                      "never_fire", "always_fire", "mean_rate", "u_wraps", "v_saturations")


def _num(x: Any) -> Any:
    """Plain Python scalars for JSON (numpy ints/floats -> int/float; floats rounded to 6 sig.)."""
    if isinstance(x, bool | np.bool_):
        return bool(x)
    if isinstance(x, int | np.integer):
        return int(x)
    if isinstance(x, float | np.floating):
        f = float(x)
        return float(f"{f:.6g}") if math.isfinite(f) else f
    return x


def _norm(x: np.ndarray) -> float:
    """Euclidean norm without BLAS: np.linalg.norm goes through a threaded BLAS dot, which
    took 14 ms per 65k weights on a busy 2-core machine (half of a large Loihi quantize)."""
    x = np.ravel(x)
    return float(np.sqrt(np.einsum("i,i->", x, x)))


def connection_stats(name: str, w_float: np.ndarray, w_int: np.ndarray, w_back: np.ndarray,
                     *, ideal: np.ndarray, lo: float, hi: float, scale: float,
                     **extra: Any) -> dict[str, Any]:
    """Statistics of one quantized weight array (all arrays of the same shape).

    ``w_float``: the float weights; ``w_int``: the stored integers; ``w_back``: the stored integers
    mapped back to float units (what the chip effectively applies); ``ideal``: the float weights in
    stored-integer units before rounding and clipping; ``lo``/``hi``: the legal stored range;
    ``scale``: a representative number of integer units per float unit (for the table). A non-zero
    float weight counts as clipped when its ideal value lies outside ``[lo, hi]`` by more than
    rounding, and as rounded to zero when its stored integer is 0. ``extra`` adds columns.
    """
    w = np.asarray(w_float, dtype=np.float64)
    nz = w != 0
    n = int(nz.sum())
    ideal = np.asarray(ideal, dtype=np.float64)
    clipped = int(((ideal < lo) | (ideal > hi))[nz].sum()) if n else 0
    zero = int((np.asarray(w_int) == 0)[nz].sum()) if n else 0
    norm = _norm(w)
    err = float(_norm(np.asarray(w_back, np.float64) - w) / norm) if norm > 0 else 0.0
    out = dict(name=name, scale=_num(scale), weights=n,
               clipped_pct=_num(100.0 * clipped / n if n else 0.0),
               zero_pct=_num(100.0 * zero / n if n else 0.0), rel_error=_num(err))
    out.update({k: _num(v) for k, v in extra.items()})
    return out


def population_stats(name: str, spikes: np.ndarray, *, refractory: int = 0,
                     **extra: Any) -> dict[str, Any]:
    """Never/always-firing counts of one population from its spikes ``(B, T, *shape)``.

    ``always_fire``: the neuron spikes ``ceil(T / (refractory + 1))`` times (every step it can)
    in every sample.
    """
    s = np.asarray(spikes)
    b, t = s.shape[0], s.shape[1]
    counts = s.reshape(b, t, -1).astype(bool).sum(axis=1)  # (B, N)
    most = math.ceil(t / (refractory + 1)) if t else 0
    never = int((counts.max(axis=0) == 0).sum()) if b else 0
    always = int((counts.min(axis=0) >= most).sum()) if b and t else 0
    rate = float(counts.mean() / t) if b and t else 0.0
    out = dict(name=name, neurons=int(counts.shape[1]), never_fire=never, always_fire=always,
               mean_rate=_num(rate), samples=b, steps=t)
    out.update({k: _num(v) for k, v in extra.items()})
    return out


@dataclass
class QuantReport:
    """What a quantizer did: one dict per connection and per population (see module doc)."""

    target: str = ""
    family: str = ""
    connections: list[dict] = field(default_factory=list)
    populations: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    calibrated: bool = False

    def to_json(self) -> dict[str, Any]:
        """A JSON-compatible dict (plain Python values only)."""
        return dict(
            target=self.target, family=self.family, calibrated=self.calibrated,
            connections=[{k: _num(v) for k, v in c.items()} for c in self.connections],
            populations=[{k: _num(v) for k, v in p.items()} for p in self.populations],
            notes=list(self.notes),
        )

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> QuantReport:
        return cls(target=d.get("target", ""), family=d.get("family", ""),
                   connections=[dict(c) for c in d.get("connections", [])],
                   populations=[dict(p) for p in d.get("populations", [])],
                   notes=list(d.get("notes", [])), calibrated=bool(d.get("calibrated", False)))

    @classmethod
    def from_graph(cls, graph) -> QuantReport:
        """The report stored in ``graph.attrs["passes"]["quantize"]["report"]`` (or an empty one)."""
        d = graph.attrs.get("passes", {}).get("quantize", {}).get("report")
        if d is None:
            return cls(target=str(graph.attrs.get("target", "")),
                       notes=["graph arrived already quantized: no quantization report"])
        return cls.from_json(d)

    def to_table(self) -> str:
        """A fixed-width text table: connections, then populations, then notes."""
        lines = [f"quantization report (target {self.target or '?'}, family {self.family or '?'}"
                 f"{', calibrated' if self.calibrated else ', weights only'})"]
        lines += _table("connections", self.connections, CONNECTION_COLUMNS)
        lines += _table("populations", self.populations, POPULATION_COLUMNS)
        for n in self.notes:
            lines.append(f"note: {n}")
        return "\n".join(lines)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _table(title: str, rows: list[dict], columns: tuple[str, ...]) -> list[str]:
    if not rows:
        return [f"{title}: none"]
    cols = [c for c in columns if any(c in r for r in rows)]
    cells = [[_fmt(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    out = [f"{title}:"]
    out.append("  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                for i, (c, w) in enumerate(zip(cols, widths, strict=True))))
    for row in cells:
        out.append("  " + "  ".join(v.ljust(w) if i == 0 else v.rjust(w)
                                    for i, (v, w) in enumerate(zip(row, widths, strict=True))))
    return out


__all__ = ["QuantReport", "connection_stats", "population_stats"]
