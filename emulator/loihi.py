"""The Loihi-family core datapath: struct-of-arrays state over all cores, two engines.

Semantics (the image's PARAMS give the widths; Loihi 1 values in brackets), per compartment and
tick ``t``, exactly as the integer reference interpreter (``ir/native/loihi.py``) defines them::

    a_g[t] = sum of the weights of group g's synapses whose spike arrives at t  (integer)
    a_g[t] = a_g << e_g  if e_g > 0  else  a_g >> -e_g          # floor; e_g: group exponent
    a[t]   = sum_g a_g[t]
    u[t]   = sign(u) * ((|u| * (2**D - (du + du_off))) >> D) + (a << S)   # D = decay [12], S [6]
    u[t]   = wrap(u) into (-2**(U-1), 2**(U-1)]                   # U = widths.u [24]
    v[t]   = sign(v) * ((|v| * (2**D - (dv + dv_off))) >> D) + u + (bias_mant << bias_exp)
    v[t]   = clip(v, -(2**(V-1) - 1), 2**(V-1) - 1)                 # V = widths.v [24]
    v[t]   = 0 while refractory (the ``refractory`` ticks after a spike)
    s[t]   = v > (vth_mant << S) and not readout;   v[t] = 0 where s[t]

A spike emitted at tick t reaches a synapse of delay d at tick t + d (d >= 1); a host input event
of tick t likewise. Decays round toward zero; exponent shifts floor. Overflow: u wraps, v saturates
(counted; a strict run raises :class:`StateOverflowError` instead). A host reset after tick t
(``run(..., resets=...)``) sets u, v and the refractory counter back to 0 before tick t + 1;
synaptic events already on their way still arrive.

Engines (synaptic delivery is shared with the other families, ``emulator/synapses.py``):

* :class:`FastEngine` (functional mode): vectorised over all cores and a batch of samples. The
  synapses are compiled once into per-delay blocks ``source -> accumulator lane`` (a lane is one
  (core, group, compartment) accumulator). Sparse activity: event-driven gathers of the rows of
  the active sources, summed in a narrow integer type (exact: the row count per pass is bounded
  by the largest weight); dense activity: one float BLAS product where the integer range makes
  it exact; blocks too large for a dense matrix: a CSR scatter. State is float64 holding
  integers (every value < 2**53, so every operation is exact).
* :class:`CoreEngine` (cycle mode): one core at a time, int64, a tick as the fixed phases of
  :data:`PHASES`, reading only committed state and writing staged state (two-phase commit), so
  results never depend on the order cores are visited. It exchanges packets with the network on
  chip model (``emulator/noc.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from emulator.errors import StateOverflowError
from emulator.synapses import Gatherer, SynapseProgram, cat, deliver, integrate

VARIABLES = ("u", "v")
"""State a probe records (besides spikes)."""
VALUE_VAR = "v"
"""What a ``values`` output port reads (a readout compartment's v)."""

PHASES = ("deliver", "integrate", "decay", "threshold", "reset", "emit")
"""Cycle-mode phases of a tick, in order (per core): deliver the axon events received during the
previous tick into the dendritic accumulators (synaptic ops), integrate this tick's accumulator
slot into the compartment input, decay u and v and add input and bias, threshold (with the
refractory hold), reset the spiking compartments, emit their packets (done by the runner, which
hands them to the network on chip)."""


class LoihiProgram(SynapseProgram):
    """The synapse tables plus the compartments' parameters as global vectors (see the module
    doc): decay factors, thresholds, biases, refractory periods, readout flags, and each lane's
    weight exponent."""

    def __init__(self, chip: Any):
        super().__init__(chip)
        P = chip.params
        self.U = int(P["widths.u"])
        self.V = int(P["widths.v"])
        self.D = int(P["widths.decay"])
        self.S = int(P["datapath.act_shift"])
        cores = chip.cores
        du = cat([c.cx["du"][c.neuron["cx"]] for c in cores]) + int(P["datapath.du_offset"])
        dv = cat([c.cx["dv"][c.neuron["cx"]] for c in cores]) + int(P["datapath.dv_offset"])
        self.keep_u = (1 << self.D) - du  # decay factors (numerators over 2**D)
        self.keep_v = (1 << self.D) - dv
        self.refr = cat([c.cx["refractory"][c.neuron["cx"]] for c in cores])
        self.readout = cat([c.cx["readout"][c.neuron["cx"]] for c in cores]).astype(bool)
        self.vth = cat([c.vth[c.neuron["vth"]] for c in cores]) << self.S
        self.bias = cat([c.neuron["bias_mant"] << c.neuron["bias_exp"] for c in cores])
        exps = [c.acc_exp for c in cores]
        self.lane_exp = (np.array([exps[c][g] for c, g in zip(self.lane_core, self.lane_group,
                                                               strict=True)], np.int64)
                         if self.L else np.zeros(0, np.int64))


def _wrap(x: np.ndarray, bits: int) -> np.ndarray:
    """Wrap into (-2**(bits-1), 2**(bits-1)] modulo 2**bits (Lava's u convention)."""
    half = 1 << (bits - 1)
    return np.mod(x + (half - 1), 1 << bits) - (half - 1)


def shift(x: np.ndarray, e: Any) -> np.ndarray:
    """``x << e`` (e > 0) or ``x >> -e`` (floor), for a scalar or per-lane exponent; integer
    arrays stay integers (int64), float arrays holding integers stay exact."""
    if x.dtype.kind == "f":
        if np.isscalar(e):
            if e:
                x = x * 2.0 ** e
                np.floor(x, out=x)
            return x
        x = x * np.exp2(e)
        return np.floor(x, out=x)
    if np.isscalar(e):
        if e < 0:
            return x >> -e
        return x.astype(np.int64) << e if e > 0 else x
    x = x.astype(np.int64)
    return np.where(e > 0, x << np.maximum(e, 0), x >> np.maximum(-e, 0))


# ------------------------------------------------------------------------------------------
# Overflow reporting
# ------------------------------------------------------------------------------------------
def overflow_error(prog: SynapseProgram, reg: str, values: np.ndarray, bad: np.ndarray, tick: int,
                   lo: float, hi: float, policy: str, width: int) -> StateOverflowError:
    """A StateOverflowError naming register, sample, core, compartment, population and tick."""
    b, n = (int(i[0]) for i in np.nonzero(bad))
    core = int(prog.core_of[n])
    local = n - int(prog.off[core])
    pop = ""
    for p in prog.chip.populations:
        hit = np.flatnonzero((p.core == core) & (p.local == local))
        if hit.size:
            pop = f" (population {p.name}[{int(hit[0])}])"
            break
    return StateOverflowError(
        f"tick {tick} sample {b}: register {reg} of core {core} compartment {local}{pop} reached "
        f"{int(values[b, n])}, outside {int(lo)}..{int(hi)} (widths.{reg} = {width}, policy "
        f"{policy}); a strict run stops at the first overflow (run without strict to count them)")


def _uniform(a: np.ndarray) -> Any:
    """A scalar when every element is equal (faster broadcasting), else the array."""
    a = np.asarray(a)
    if a.size and np.all(a == a.flat[0]):
        return a.flat[0].item()
    return a


# ------------------------------------------------------------------------------------------
# Fast engine
# ------------------------------------------------------------------------------------------
class FastEngine:
    """Functional mode: all cores and a batch of samples at once (see the module doc)."""

    variables = ("u", "v")

    def __init__(self, prog: LoihiProgram, batch: int, strict: bool = False, threads: int = 1):
        self.p = prog
        self.B = batch
        self.strict = strict
        N = prog.N
        self.g = Gatherer(prog, batch, threads=threads)
        self.exps = [_uniform(prog.lane_exp[b.lanes]) if b.lanes.size else 0
                     for b in self.g.blocks]
        self.u = np.zeros((batch, N))
        self.v = np.zeros((batch, N))
        self.cu = _uniform(prog.keep_u / float(1 << prog.D))
        self.cv = _uniform(prog.keep_v / float(1 << prog.D))
        self.bias = _uniform(prog.bias.astype(np.float64))
        self.has_bias = not (np.isscalar(self.bias) and self.bias == 0.0)
        vth = prog.vth.astype(np.float64)
        vth[prog.readout] = np.inf  # a readout compartment never spikes
        self.vth = _uniform(vth)
        self.act = float(1 << prog.S)
        self.has_ref = bool(np.any(prog.refr > 0))
        self.refr = prog.refr.astype(np.float64)
        self.ref = np.zeros((batch, N)) if self.has_ref else None
        self.u_hi = float(1 << (prog.U - 1))
        self.v_max = float((1 << (prog.V - 1)) - 1)
        self.overflows = {"u": 0, "v": 0}

    @property
    def spike_count_routed(self) -> np.ndarray:
        return self.g.spike_count_routed

    def state(self) -> dict[str, np.ndarray]:
        return {"u": self.u, "v": self.v}

    def value(self) -> np.ndarray:
        return self.v

    def active(self, s: np.ndarray) -> np.ndarray:
        """Compartments with work this tick (ours): v != 0 after the update, or a spike."""
        return (self.v != 0) | s

    def close(self) -> None:
        self.g.close()

    def reset(self, idx: np.ndarray, t: int) -> None:
        """A host reset after tick ``t``: u, v and the refractory counters of compartments
        ``idx`` (global ids) back to 0 in every sample; events already on their way (the
        dendritic accumulators) are kept."""
        self.u[:, idx] = 0.0
        self.v[:, idx] = 0.0
        if self.ref is not None:
            self.ref[:, idx] = 0.0

    def step(self, t: int, act_in_hist: Any) -> np.ndarray:
        """Advance to tick ``t``. ``act_in_hist(tau)`` gives the active input channels of tick
        tau per sample (list of arrays) or None. Returns the spikes (B, N) bool."""
        p = self.p
        a = self.g.tick_inputs(t, act_in_hist, lambda bi, x: shift(x, self.exps[bi]))[0]
        u, v = self.u, self.v
        # u: decay toward zero (exact: |u| * keep < 2**53), add input, wrap
        np.multiply(u, self.cu, out=u)
        np.trunc(u, out=u)
        if a is not None:
            u += a * self.act  # exact in float64 (|a << S| < 2**53)
        hi = self.u_hi
        if u.size and (u.max() > hi or u.min() <= -hi):
            bad = (u > hi) | (u <= -hi)
            if self.strict:
                raise overflow_error(p, "u", u, bad, t, -hi + 1, hi, "wrap", p.U)
            self.overflows["u"] += int(np.count_nonzero(bad))
            u[:] = _wrap(u, p.U)
        np.multiply(v, self.cv, out=v)
        np.trunc(v, out=v)
        v += u
        if self.has_bias:
            v += self.bias
        vm = self.v_max
        if v.size and (v.max() > vm or v.min() < -vm):
            bad = (v > vm) | (v < -vm)
            if self.strict:
                raise overflow_error(p, "v", v, bad, t, -vm, vm, "saturate", p.V)
            self.overflows["v"] += int(np.count_nonzero(bad))
            np.clip(v, -vm, vm, out=v)
        if self.has_ref:
            held = self.ref > 0
            v *= ~held
            self.ref -= held
        s = v > self.vth
        v *= ~s
        if self.has_ref:
            np.copyto(self.ref, self.refr, where=s)
        self.g.record_spikes(t, s)
        return s


# ------------------------------------------------------------------------------------------
# Cycle-mode core engine
# ------------------------------------------------------------------------------------------
class CoreEngine:
    """Per-core exact datapath (int64) with the phases of :data:`PHASES` and a two-phase commit.

    ``state`` holds the committed u, v, refractory counters and dendritic accumulator ring (all
    struct-of-arrays over every core); a tick computes each core from the committed state into
    ``staged`` copies and commits them when every core is done."""

    variables = ("u", "v")

    def __init__(self, prog: LoihiProgram, batch: int, strict: bool = False):
        self.p = prog
        self.B = batch
        self.strict = strict
        N, L = prog.N, prog.L
        self.R = prog.max_delay + 1
        self.state = dict(u=np.zeros((batch, N), np.int64), v=np.zeros((batch, N), np.int64),
                          ref=np.zeros((batch, N), np.int64),
                          ring=np.zeros((self.R, batch, L), np.int64))
        self.vmax = (1 << (prog.V - 1)) - 1
        self.uhi = 1 << (prog.U - 1)
        self.overflows = {"u": 0, "v": 0}
        self.classes = np.zeros(L, np.int64)

    def reset(self, idx: np.ndarray, t: int) -> None:
        """A host reset after tick ``t`` (committed state): u, v and the refractory counters of
        compartments ``idx`` back to 0; the dendritic ring (events on their way) is kept."""
        for k in ("u", "v", "ref"):
            self.state[k][:, idx] = 0

    def tick(self, t: int, inbox: list[np.ndarray], order: list[int]) -> dict:
        """Run tick ``t`` over every core in ``order``.

        ``inbox[c]``: (B, n_axons) bool, the axon events that reached core c during tick t-1.
        Returns ``spikes`` (B, N) bool, the state and per-core counters (``sops``, ``events``,
        ``spikes``, ``active``)."""
        p, B = self.p, self.B
        cur = self.state
        staged = {k: v.copy() for k, v in cur.items()}
        per_core = {k: np.zeros((B, p.n_cores), np.int64) for k in ("sops", "spikes", "active",
                                                                  "events")}
        spikes = np.zeros((B, p.N), bool)
        for c in order:
            self._core(c, t, inbox[c], cur, staged, spikes, per_core)
        self.state = staged  # commit
        return dict(spikes=spikes, state={"u": staged["u"], "v": staged["v"]},
                    value=staged["v"], per_core=per_core)

    def _core(self, c: int, t: int, events: np.ndarray, cur: dict, nxt: dict, spikes: np.ndarray,
              per_core: dict) -> None:
        p = self.p
        n0, n1 = int(p.off[c]), int(p.off[c + 1])
        # phases deliver and integrate (shared with the other families)
        deliver(p, c, t, events, nxt["ring"], per_core)
        a = integrate(p, c, t, nxt["ring"], 1, self.classes,
                      lambda l0, l1, acc: shift(acc, p.lane_exp[l0:l1]))[0]
        # phase decay: u and v (Loihi decays round toward zero)
        D, S = p.D, p.S
        u0 = cur["u"][:, n0:n1]
        v0 = cur["v"][:, n0:n1]
        u = np.sign(u0) * ((np.abs(u0) * p.keep_u[n0:n1]) >> D) + (a << S)
        bad = (u > self.uhi) | (u <= -self.uhi)
        if bad.any():
            if self.strict:
                raise overflow_error(p, "u", *_full(p, u, bad, n0, n1), t, -self.uhi + 1,
                                     self.uhi, "wrap", p.U)
            self.overflows["u"] += int(bad.sum())
            u = _wrap(u, p.U)
        v = np.sign(v0) * ((np.abs(v0) * p.keep_v[n0:n1]) >> D) + u + p.bias[n0:n1]
        bad = (v > self.vmax) | (v < -self.vmax)
        if bad.any():
            if self.strict:
                raise overflow_error(p, "v", *_full(p, v, bad, n0, n1), t, -self.vmax, self.vmax,
                                     "saturate", p.V)
            self.overflows["v"] += int(bad.sum())
            v = np.clip(v, -self.vmax, self.vmax)
        # phase threshold: refractory hold, then the strict comparison (never for a readout)
        ref = cur["ref"][:, n0:n1].copy()
        held = ref > 0
        v[held] = 0
        ref[held] -= 1
        s = (v > p.vth[n0:n1]) & ~p.readout[n0:n1]
        # phase reset
        v[s] = 0
        ref[s] = np.broadcast_to(p.refr[n0:n1], s.shape)[s]
        nxt["u"][:, n0:n1] = u
        nxt["v"][:, n0:n1] = v
        nxt["ref"][:, n0:n1] = ref
        spikes[:, n0:n1] = s
        per_core["spikes"][:, c] = s.sum(axis=1)
        per_core["active"][:, c] = np.count_nonzero((v != 0) | s, axis=1)


def _full(p: SynapseProgram, vals: np.ndarray, bad: np.ndarray, n0: int, n1: int):
    """A core's (B, n) values and mask placed in (B, N) arrays (for the error message)."""
    B = vals.shape[0]
    fv = np.zeros((B, p.N), np.int64)
    fb = np.zeros((B, p.N), bool)
    fv[:, n0:n1] = vals
    fb[:, n0:n1] = bad
    return fv, fb


Program = LoihiProgram

__all__ = ["PHASES", "VALUE_VAR", "VARIABLES", "CoreEngine", "FastEngine", "LoihiProgram",
           "Program", "shift"]
