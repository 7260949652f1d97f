"""The TrueNorth-family core datapath: struct-of-arrays state over all cores, two engines.

A TrueNorth core (``../shared/hardware.md`` section 1) has ``n_axons`` input axons, each of a type
``G`` in 0..3, a binary crossbar from axons to its neurons, and per neuron four signed weights
``s[G]``. Per tick ``t`` and neuron ``j`` (``n_G`` = active axons of type G with a crossbar bit on
``j``; parameters from the image's ``TN_NEURON`` records)::

    V = V_j
    for G in 0..3:                                     # integration: n_G events of weight s[G]
        if not stoch_syn[G]:  V += n_G * s[G]
        else:                 V += sign(s[G]) * #{k < n_G : |s[G]| >= prn8(j, t, SYN + 4k + G)}
    omega = sign(V) if leak_rev else 1                 # leak reversal: toward / away from 0
    if not stoch_leak:  V += omega * leak
    elif |leak| >= prn8(j, t, LEAK):  V += omega * sign(leak)
    eta = prn64(j, t, THRESHOLD) & (2**tm - 1)         # stochastic threshold offset
    if V >= alpha + eta:                               # spike
        V = {0: v_reset, 1: V - (alpha + eta), 2: V}[gamma]
    elif V < -(beta if kappa else beta + eta):         # negative threshold
        V = -beta if kappa else {0: -v_reset, 1: V + (beta + eta), 2: V}[gamma]
    V_j = saturate or wrap V into v_bits signed bits   # the tick's only overflow point

Arithmetic inside the tick is exact (int64); the membrane register is fitted only at the end of
the tick, with the neuron's own width and policy (``TN_NEURON.v_bits``, ``overflow``); a fit
that changes V is counted as an overflow, and a strict run raises
:class:`StateOverflowError` instead.

PRNG (ours, identical to ``ir/native/truenorth.py``, re-implemented here because the emulator
never imports ``ir``): every random word is a pure function of ``(seed, neuron id, tick, draw
index)``::

    h = 0;  for w in (seed, nid, tick, draw):  h = mix64((h ^ w) + 0x9E3779B97F4A7C15)  (mod 2**64)
    mix64(z): z = (z ^ z >> 30) * 0xBF58476D1CE4E5B9;  z = (z ^ z >> 27) * 0x94D049BB133111EB;
              return z ^ z >> 31                                       # SplitMix64's finaliser

``seed`` and ``nid`` (the core-independent neuron id) come from the neuron's record; the tick is
the chip tick (every sample of a batch is a run from tick 0); the draw indices are the image's
``datapath.draw_threshold`` / ``draw_leak`` / ``draw_synapse`` (+ 4k + G for the k-th active
synapse of type G). ``prn8`` keeps the low ``widths.prn_compare`` bits. Since a value depends on
nothing else, a vectorised evaluation and a sequential one draw the same numbers, whatever the
order in which cores, neurons or synapses are visited; and only the number of successes among
the first ``n_G`` draws matters, so counting active axons first and drawing afterwards is exact.

Timing: a spike emitted at tick t by a neuron (or a host input event of tick t) on an axon of
delay d is integrated at tick t + d (1 <= d <= scheduler_slots - 1).

Host resets (``run(..., resets=...)``): a reset of a neuron after tick r sets V to 0 before tick
r + 1 and restarts the neuron's PRN tick: from then on its draws use ``tick = t - (r + 1)``, as
in a fresh run (the reference interpreter rebuilds the neuron, whose tick counter starts at 0).
Axon events already in the schedulers still arrive.

Engines:

* :class:`FastEngine` (functional mode): all cores and a batch at once. The crossbar becomes the
  shared synapse program (``emulator/synapses.py``), one synapse per crossbar bit, in two kinds
  of accumulator lanes: a deterministic synapse carries the weight ``s[G]`` of its neuron and
  type into the neuron's lane of class 0 (so the lane sums ``sum_G n_G s[G]`` exactly), a
  stochastic one carries weight 1 into a lane of class ``1 + G`` (its sum is ``n_G``). The
  shared event-driven gathers / exact BLAS products fill the lanes per tick; the neuron update
  above runs vectorised over all neurons and samples.
* :class:`CoreEngine` (cycle mode): per core, the hardware's structure: a 16-slot x n_axons
  scheduler of axon activity (an event of delay d received during tick t-1 sets slot
  ``(t - 1 + d) mod slots``), the crossbar read as a product of the slot's active axons of each
  type with the core's crossbar bits, then the same neuron update, as the phases of
  :data:`PHASES`. A tick reads only committed state and writes staged state (two-phase commit),
  so results never depend on the order cores are visited.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from emulator.errors import StateOverflowError
from emulator.prng import counter_hash
from emulator.synapses import Gatherer, SynapseProgram, cat

VARIABLES = ("v",)
"""State a probe records (besides spikes): the membrane V."""
VALUE_VAR = "v"
"""What a ``values`` output port would read (TrueNorth neurons all spike; kept for the contract)."""

AXON_TYPES = 4
"""Weights per neuron, one per axon type (the TN_NEURON record holds s0..s3)."""

PHASES = ("deliver", "integrate", "leak", "threshold", "reset", "fit", "emit")
"""Cycle-mode phases of a tick, in order (per core): deliver the axon events received during the
previous tick into the scheduler slot of their delay (synaptic ops are counted here), integrate
this tick's slot through the crossbar (then clear it), leak, threshold (with the PRN offset),
reset (positive and negative side), fit the membrane register, emit packets (the runner hands
them to the network on chip)."""



def prn64(seed: Any, nid: Any, tick: int, draw: Any) -> np.ndarray:
    """The random word of a draw: ``counter_hash(seed, nid, tick, draw)``."""
    return counter_hash(seed, nid, tick, draw)


# ------------------------------------------------------------------------------------------
# Static tables
# ------------------------------------------------------------------------------------------
class TrueNorthProgram(SynapseProgram):
    """The shared synapse tables plus every neuron's parameters as global vectors.

    Neurons are numbered globally (core ``c`` holds ``off[c] .. off[c+1]-1``), axons too (core
    ``c`` holds ``aoff[c] .. aoff[c+1]-1``). ``s``/``stoch``: (N, 4) weights and stochastic-synapse
    flags; the other parameters are (N,) int64 arrays named as in TN_NEURON."""

    def __init__(self, chip: Any):
        # The shared synapse program sees one lane class per kind of input a neuron needs:
        # class 0, the weighted sum of its deterministic synapses (weight s[G] folded into each
        # synapse), and classes 1 + G, the counts of its stochastic synapses of type G (weight
        # 1). A deterministic network thus needs one lane per neuron, not four.
        super().__init__(_FoldedChip(chip))
        P = chip.params
        cores = chip.cores
        nr = {k: cat([c.neuron[k] for c in cores]) for k in (
            "s0", "s1", "s2", "s3", "stoch_syn", "leak", "leak_rev", "stoch_leak", "alpha",
            "beta", "tm", "gamma", "kappa", "v_reset", "v_bits", "overflow", "seed", "nid")}
        self.s = np.stack([nr[f"s{g}"] for g in range(AXON_TYPES)], 1).astype(np.int64)
        self.stoch = np.stack([(nr["stoch_syn"] >> g) & 1 for g in range(AXON_TYPES)],
                              1).astype(bool)
        self.det_s = np.where(self.stoch, 0, self.s)  # weights of the deterministic types
        self.leak = nr["leak"].astype(np.int64)
        self.leak_rev = nr["leak_rev"].astype(bool)
        self.stoch_leak = nr["stoch_leak"].astype(bool)
        self.alpha = nr["alpha"].astype(np.int64)
        self.beta = nr["beta"].astype(np.int64)
        self.tm = nr["tm"].astype(np.int64)
        self.gamma = nr["gamma"].astype(np.int64)
        self.kappa = nr["kappa"].astype(bool)
        self.v_reset = nr["v_reset"].astype(np.int64)
        self.v_bits = nr["v_bits"].astype(np.int64)
        self.wrap = nr["overflow"].astype(bool)
        self.v_lo = -(np.int64(1) << (self.v_bits - 1))
        self.v_hi = (np.int64(1) << (self.v_bits - 1)) - 1
        self.seed = nr["seed"].astype(np.uint64)
        self.nid = nr["nid"].astype(np.uint64)
        self.prn_mask = np.uint64((1 << int(P["widths.prn_compare"])) - 1)
        self.draw_threshold = int(P["datapath.draw_threshold"])
        self.draw_leak = int(P["datapath.draw_leak"])
        self.draw_synapse = int(P["datapath.draw_synapse"])
        self.tm_mask = ((np.uint64(1) << self.tm.astype(np.uint64)) - np.uint64(1)).astype(np.uint64)
        self.any_stoch_syn = bool(self.stoch.any())
        self.any_stoch_leak = bool(self.stoch_leak.any())
        self.any_tm = bool((self.tm > 0).any())
        self.any_leak = bool((self.leak != 0).any())
        # the neuron update's shortcuts, decided once: a parameter equal for every neuron is
        # used as a scalar (None: it varies), and branches no neuron needs are skipped
        self.any_leak_rev = bool(self.leak_rev.any())
        self.u_leak, self.u_alpha, self.u_beta, self.u_gamma, self.u_v_reset, self.u_v_lo, \
            self.u_v_hi = (_uniform(a) for a in (self.leak, self.alpha, self.beta, self.gamma,
                                                  self.v_reset, self.v_lo, self.v_hi))
        self.u_kappa = _uniform(self.kappa)
        # alpha + beta >= 0: no V is both >= alpha + eta and < -beta (- eta) (eta >= 0), so
        # the positive and the negative side never both hold and need no exclusion mask
        self.disjoint = bool(((self.alpha + self.beta) >= 0).all())
        # axons (cycle mode): global numbering, type, delay, and each core's crossbar by type
        self.aoff = np.zeros(self.n_cores + 1, np.int64)
        np.cumsum([c.n_axons for c in cores], out=self.aoff[1:])
        self.slots = int(P["core.scheduler_slots"])
        self.axon_delay = cat([c.axon["delay"] for c in cores])
        self.axon_type = cat([c.axon["type"] for c in cores])
        self.row_nnz = [c.crossbar.sum(axis=1).astype(np.int64) for c in cores]
        self.xbar_by_type = []
        for c in cores:
            parts = []
            for g in range(AXON_TYPES):
                sel = np.flatnonzero(c.axon["type"] == g)
                parts.append((sel, c.crossbar[sel].astype(np.float32)) if sel.size else None)
            self.xbar_by_type.append(parts)


Program = TrueNorthProgram


def _uniform(a: np.ndarray) -> Any:
    """The common value of ``a`` (a numpy scalar) when every entry is equal, else None."""
    if a.size and bool((a == a.flat[0]).all()):
        return a.flat[0]
    return None


class _FoldedChip:
    """A view of a chip whose cores' synapses carry the lane classes of
    :class:`TrueNorthProgram`: group 0 with weight ``s[G]`` for a deterministic synapse, group
    ``1 + G`` with weight 1 for a stochastic one (per neuron, ``TN_NEURON.stoch_syn``)."""

    def __init__(self, chip: Any):
        import dataclasses

        self._chip = chip
        cores = []
        for c in chip.cores:
            g = c.syn_group.astype(np.int64)
            j = c.syn_comp
            stoch = ((c.neuron["stoch_syn"][j] >> g) & 1).astype(bool)
            s = np.stack([c.neuron[f"s{k}"] for k in range(AXON_TYPES)], 1).astype(np.int64)
            w = np.where(stoch, 1, s[j, g] if j.size else np.zeros(0, np.int64))
            # a deterministic synapse of weight 0 adds nothing; it stays (the synaptic-op
            # counters count crossbar bits) with its zero weight
            cores.append(dataclasses.replace(c, syn_group=np.where(stoch, 1 + g, 0),
                                             syn_w=w.astype(np.int64)))
        self.cores = cores

    def __getattr__(self, name: str) -> Any:
        return getattr(self._chip, name)


# ------------------------------------------------------------------------------------------
# The neuron update (shared by both engines)
# ------------------------------------------------------------------------------------------
def _ticks(t: Any, idx: Any) -> Any:
    """The PRN tick of neurons ``idx``: ``t`` itself, or its entries when ``t`` is per neuron
    (global ids; after a host reset each neuron counts from its own restart)."""
    return t if np.isscalar(t) else t[idx]


def _stochastic_successes(p: TrueNorthProgram, counts: np.ndarray, g: int, cols: np.ndarray,
                          t: Any) -> np.ndarray:
    """``#{k < n_G : |s[G]| >= prn8(..., SYN + 4k + G)}`` for neurons ``cols`` (global ids) with
    counts (B, len(cols)): int64 (B, len(cols))."""
    B = counts.shape[0]
    k_max = int(counts.max(initial=0))
    if k_max == 0:
        return np.zeros((B, cols.size), np.int64)
    k = np.arange(k_max, dtype=np.int64)
    tk = t if np.isscalar(t) else t[cols, None]
    draws = (prn64(p.seed[cols, None], p.nid[cols, None], tk,
                   p.draw_synapse + AXON_TYPES * k[None, :] + g) & p.prn_mask).astype(np.int64)
    hits = np.abs(p.s[cols, g])[:, None] >= draws  # (n, K)
    cum = np.zeros((cols.size, k_max + 1), np.int64)
    np.cumsum(hits, axis=1, out=cum[:, 1:])
    return cum[np.arange(cols.size)[None, :], counts]


def neuron_update(p: TrueNorthProgram, v: np.ndarray, det: Any, counts: list[Any], t: Any,
                  n0: int, n1: int, out: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """One tick of neurons ``n0 .. n1-1`` (the module doc's rule).

    ``t``: the PRN tick, an integer or a (N,) array over every neuron (global ids) when host
    resets restarted some neurons' ticks.
    ``v``: (B, n) int64 committed membranes (never written); ``det``: (B, n) integer sum of the
    deterministic synapses' weights (or None); ``counts``: per axon type a (B, n) integer array
    of active stochastic synapses of that type (or None); ``out``: an optional (B, n) int64
    buffer (not ``v``) the new membranes are computed in. Returns the new membranes, the spikes
    (B, n) bool, the overflow mask (None when no membrane left its register) and the unfitted
    membranes.

    Exact int64 throughout; parameters equal for every neuron are used as scalars and the
    stochastic, leak-reversal and mixed-reset branches run only when some neuron needs them
    (decided once in :class:`TrueNorthProgram`). The resets are applied in place through masks
    taken before either is applied: the negative side first, then the spikes, which take
    precedence (exclusion mask only when ``alpha + beta < 0`` somewhere)."""
    sl = slice(n0, n1)
    if out is None:
        out = np.empty(np.shape(v), np.int64)
    # integration: deterministic types add n_G * s_G (folded into ``det``), stochastic types
    # sign(s_G) per success among the first n_G draws
    if det is None:
        np.copyto(out, v)
    elif det.dtype.kind == "f":
        np.add(v, np.rint(det).astype(np.int64), out=out)
    else:
        np.add(v, det, out=out)
    v = out
    for g, c in enumerate(counts):
        if c is None:
            continue
        cols = np.flatnonzero(p.stoch[sl, g])
        if cols.size:
            c = c[:, cols]
            c = np.rint(c).astype(np.int64) if c.dtype.kind == "f" else c.astype(np.int64)
            succ = _stochastic_successes(p, c, g, cols + n0, t)
            v[:, cols] += succ * np.sign(p.s[cols + n0, g])
    # leak, with reversal (omega = sign(V) after integration) and the stochastic mode
    if p.any_leak:
        lam = p.leak[sl]
        stoch = p.any_stoch_leak and bool(p.stoch_leak[sl].any())
        rev = p.any_leak_rev and bool(p.leak_rev[sl].any())
        if not stoch and not rev:
            v += lam if p.u_leak is None else p.u_leak
        else:
            step = lam
            if stoch:
                u = (prn64(p.seed[sl], p.nid[sl], _ticks(t, sl), p.draw_leak)
                     & p.prn_mask).astype(np.int64)
                step = np.where(p.stoch_leak[sl], np.sign(lam) * (np.abs(lam) >= u), lam)
            v += np.where(p.leak_rev[sl], np.sign(v), 1) * step
    # threshold with its PRN offset (per neuron, shared by the batch)
    eta = None
    if p.any_tm:
        eta = (prn64(p.seed[sl], p.nid[sl], _ticks(t, sl), p.draw_threshold)
               & p.tm_mask[sl]).astype(np.int64)
    alpha = p.alpha[sl] if p.u_alpha is None else p.u_alpha
    beta = p.beta[sl] if p.u_beta is None else p.u_beta
    R = p.v_reset[sl] if p.u_v_reset is None else p.u_v_reset
    kap, gam = p.u_kappa, p.u_gamma
    pos = alpha if eta is None else alpha + eta
    if eta is None:
        neg_thr = -beta
    elif kap is not None:
        neg_thr = -beta if kap else -(beta + eta)
    else:
        neg_thr = -np.where(p.kappa[sl], beta, beta + eta)
    spike = v >= pos
    # reset, negative side (kappa: to -beta; else by gamma: -R, V + beta + eta, or V kept).
    # Masked stores are slow on random masks, so the common cases use branch-free passes.
    if kap is not None and kap and p.disjoint:
        np.maximum(v, neg_thr, out=v)  # V < -beta -> -beta, the spikes untouched
    else:
        neg = v < neg_thr
        if not p.disjoint:
            neg &= ~spike
        if kap is not None and kap:
            np.copyto(v, neg_thr, where=neg)
        elif kap is not None and gam is not None:
            if gam == 0:
                np.copyto(v, -R, where=neg)
            elif gam == 1:
                v += neg * (beta if eta is None else beta + eta)
        else:
            gamma = p.gamma[sl]
            e = 0 if eta is None else eta
            after_neg = np.where(p.kappa[sl], -beta,
                                 np.where(gamma == 0, -R, np.where(gamma == 1, v + beta + e, v)))
            np.copyto(v, after_neg, where=neg)
    # reset, positive side (by gamma: R, V - (alpha + eta), or V kept)
    if gam == 0:
        if p.u_v_reset is None:
            np.copyto(v, R, where=spike)
        elif R == 0:
            v *= ~spike
        else:
            np.putmask(v, spike, R)
    elif gam == 1:
        v -= spike * pos
    elif gam is None:
        gamma = p.gamma[sl]
        np.copyto(v, np.where(gamma == 0, R, np.where(gamma == 1, v - pos, v)), where=spike)
    # the membrane register: saturate or wrap at the neuron's width
    raw = v
    if p.u_v_lo is not None:
        lo, hi = p.u_v_lo, p.u_v_hi
        if not raw.size or (raw.min() >= lo and raw.max() <= hi):
            return raw, spike, None, raw
        over = (raw < lo) | (raw > hi)
    else:
        lo, hi = p.v_lo[sl], p.v_hi[sl]
        over = (raw < lo) | (raw > hi)
        if not over.any():
            return raw, spike, None, raw
    lo, hi = p.v_lo[sl], p.v_hi[sl]
    wrapped = ((raw - lo) & ((np.int64(1) << p.v_bits[sl]) - 1)) + lo
    fitted = np.where(p.wrap[sl], wrapped, np.clip(raw, lo, hi))
    return fitted, spike, over, raw


def overflow_error(p: TrueNorthProgram, raw: np.ndarray, over: np.ndarray, tick: int,
                   n0: int) -> StateOverflowError:
    """A StateOverflowError naming tick, sample, core, neuron, population, value and register."""
    b, j = (int(i[0]) for i in np.nonzero(over))
    n = n0 + j
    core = int(p.core_of[n])
    local = n - int(p.off[core])
    pop = ""
    for q in p.chip.populations:
        hit = np.flatnonzero((q.core == core) & (q.local == local))
        if hit.size:
            pop = f" (population {q.name}[{int(hit[0])}])"
            break
    policy = "wrap" if p.wrap[n] else "saturate"
    return StateOverflowError(
        f"tick {tick} sample {b}: membrane V of core {core} neuron {local}{pop} reached "
        f"{int(raw[b, j])}, outside {int(p.v_lo[n])}..{int(p.v_hi[n])} (v_bits = "
        f"{int(p.v_bits[n])}, policy {policy}); a strict run stops at the first overflow (run "
        "without strict to count them)")


# ------------------------------------------------------------------------------------------
# Fast engine
# ------------------------------------------------------------------------------------------
class FastEngine:
    """Functional mode: every core and a batch of samples at once (see the module doc)."""

    variables = VARIABLES

    def __init__(self, prog: TrueNorthProgram, batch: int, strict: bool = False,
                 threads: int = 1):
        self.p = prog
        self.B = batch
        self.strict = strict
        self.g = Gatherer(prog, batch, classes=prog.lane_group, n_classes=1 + AXON_TYPES,
                          threads=threads)
        self.v = np.zeros((batch, prog.N), np.int64)
        self.overflows = {"v": 0}
        self.t0: np.ndarray | None = None  # per neuron: the tick its PRN clock restarted
        self._spare: np.ndarray | None = None  # the next tick's membrane buffer

    def reset(self, idx: np.ndarray, t: int) -> None:
        """A host reset after tick ``t``: V of neurons ``idx`` (global ids) to 0 in every
        sample, and their PRN tick restarts at tick t + 1 (module doc)."""
        self.v[:, idx] = 0
        if self.t0 is None:
            self.t0 = np.zeros(self.p.N, np.int64)
        self.t0[idx] = t + 1

    @property
    def spike_count_routed(self) -> np.ndarray:
        return self.g.spike_count_routed

    def state(self) -> dict[str, np.ndarray]:
        return {"v": self.v}

    def value(self) -> np.ndarray:
        return self.v

    def active(self, s: np.ndarray) -> np.ndarray:
        """Neurons with work this tick (ours): V != 0 after the update, or a spike."""
        return (self.v != 0) | s

    def close(self) -> None:
        self.g.close()

    def step(self, t: int, act_in_hist: Any) -> np.ndarray:
        """Advance to tick ``t``; ``act_in_hist(tau)``: active input channels of tick tau per
        sample (or None). Returns the spikes (B, N) bool."""
        lanes = self.g.tick_inputs(t, act_in_hist)
        tk = t if self.t0 is None else t - self.t0
        if self._spare is None:
            self._spare = np.empty_like(self.v)
        v, s, over, raw = neuron_update(self.p, self.v, lanes[0], lanes[1:], tk, 0, self.p.N,
                                        out=self._spare)
        if over is not None:
            if self.strict:
                raise overflow_error(self.p, raw, over, t, 0)
            self.overflows["v"] += int(np.count_nonzero(over))
        # double buffering: the old membranes become the next tick's buffer (the runner copies
        # what it records within the tick)
        self._spare = self.v if v is raw else None
        self.v = v
        self.g.record_spikes(t, s)
        return s


# ------------------------------------------------------------------------------------------
# Cycle-mode core engine
# ------------------------------------------------------------------------------------------
class CoreEngine:
    """Per-core datapath with the phases of :data:`PHASES` and a two-phase commit.

    ``state`` holds the committed membranes ``v`` (B, N) and the schedulers ``sched``
    (slots, B, total axons) bool of every core; a tick computes each core from the committed
    state into staged copies and commits them when every core is done."""

    variables = VARIABLES

    def __init__(self, prog: TrueNorthProgram, batch: int, strict: bool = False):
        self.p = prog
        self.B = batch
        self.strict = strict
        self.state = dict(v=np.zeros((batch, prog.N), np.int64),
                          sched=np.zeros((prog.slots, batch, int(prog.aoff[-1])), bool))
        self.overflows = {"v": 0}
        self.t0: np.ndarray | None = None  # per neuron: the tick its PRN clock restarted

    def reset(self, idx: np.ndarray, t: int) -> None:
        """A host reset after tick ``t`` (committed state): V of neurons ``idx`` to 0 and their
        PRN tick restarted at t + 1; the schedulers (events on their way) are kept."""
        self.state["v"][:, idx] = 0
        if self.t0 is None:
            self.t0 = np.zeros(self.p.N, np.int64)
        self.t0[idx] = t + 1

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
        tk = t if self.t0 is None else t - self.t0
        for c in order:
            self._core(c, t, tk, inbox[c], cur, staged, spikes, per_core)
        self.state = staged  # commit
        return dict(spikes=spikes, state={"v": staged["v"]}, value=staged["v"],
                    per_core=per_core)

    def _core(self, c: int, t: int, tk: Any, events: np.ndarray | None, cur: dict, nxt: dict,
              spikes: np.ndarray, per_core: dict) -> None:
        p, B = self.p, self.B
        n0, n1 = int(p.off[c]), int(p.off[c + 1])
        a0, a1 = int(p.aoff[c]), int(p.aoff[c + 1])
        S = p.slots
        sched = nxt["sched"]  # only this core's axon columns are touched
        # phase deliver: an event of tick t-1 on an axon of delay d waits in slot (t-1+d) mod S
        if events is not None and a1 > a0 and events.any():
            sb, ax = np.nonzero(events)
            sched[(t - 1 + p.axon_delay[a0 + ax]) % S, sb, a0 + ax] = True
            per_core["sops"][:, c] = np.bincount(sb, weights=p.row_nnz[c][ax],
                                                 minlength=B).astype(np.int64)
            per_core["events"][:, c] = np.bincount(sb, minlength=B)
        # phase integrate: this tick's slot through the crossbar, one product per axon type
        counts: list[Any] = [None] * AXON_TYPES
        if a1 > a0:
            act = sched[t % S, :, a0:a1].copy()
            sched[t % S, :, a0:a1] = False
            if act.any():
                for g, part in enumerate(p.xbar_by_type[c]):
                    if part is not None:
                        sel, mat = part
                        # float32 products of 0/1 values: exact (counts < 2**24)
                        counts[g] = np.rint(act[:, sel].astype(np.float32) @ mat).astype(np.int64)
        det = None
        for g, c_ in enumerate(counts):
            if c_ is not None:
                part = c_ * p.det_s[n0:n1, g]
                det = part if det is None else det + part
        # phases leak, threshold, reset, fit
        v, s, over, raw = neuron_update(p, cur["v"][:, n0:n1], det, counts, tk, n0, n1)
        if over is not None:
            if self.strict:
                raise overflow_error(p, raw, over, t, n0)
            self.overflows["v"] += int(np.count_nonzero(over))
        nxt["v"][:, n0:n1] = v
        spikes[:, n0:n1] = s
        # phase emit happens in the runner / NoC from ``spikes`` (one packet per target)
        per_core["spikes"][:, c] = s.sum(axis=1)
        per_core["active"][:, c] = np.count_nonzero((v != 0) | s, axis=1)


__all__ = ["AXON_TYPES", "PHASES", "VALUE_VAR", "VARIABLES", "CoreEngine", "FastEngine",
           "Program", "TrueNorthProgram", "counter_hash", "neuron_update", "overflow_error",
           "prn64"]
