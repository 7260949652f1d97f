"""TrueNorth-family native kinds and their exact integer kernels (``../shared/hardware.md`` section 1).

Two kinds:

* :class:`TrueNorthNeuron` -- a population of TrueNorth neurons, every parameter an exact integer
  (per neuron through a constant, or one value for all);
* :class:`TrueNorthCrossbar` -- a binary crossbar from axons to neurons: each source neuron drives
  ``copies`` consecutive axons, each axon has a type ``G`` in 0..3, and the weight of axon ``a`` on
  neuron ``j`` is ``crossbar[j, a] * s_j[G_a]``.

Axon order of a crossbar: source ``i``, copy ``c`` is axon ``a = i * copies + c``. A neuron sees
only its four weights ``s_j[0..3]``, chosen by axon type and shared across all of its inputs.

Per tick ``t`` and neuron ``j`` (hardware order; ``n_G`` = number of active axons of type ``G``
with a crossbar bit on neuron ``j``, summed over every crossbar feeding the population)::

    V = V_j
    for G in 0..3, k in 0..n_G-1:                       # integration (order irrelevant, see PRNG)
        if not stochastic_syn_j[G]:  V += s_j[G]
        elif |s_j[G]| >= prn8(j, t, syn(G, k)):  V += sign(s_j[G])
    omega = 1 if not epsilon_j else sign(V)             # leak reversal
    if not stochastic_leak_j:  V += omega * lambda_j
    elif |lambda_j| >= prn8(j, t, LEAK):  V += omega * sign(lambda_j)
    eta = prn(j, t, THRESHOLD) & (2**TM_j - 1)          # stochastic threshold offset
    if V >= alpha_j + eta:                               # spike
        V = {0: R_j, 1: V - (alpha_j + eta), 2: V}[gamma_j]
    elif V < -(beta_j if kappa_j else beta_j + eta):    # negative threshold
        V = -beta_j if kappa_j else {0: -R_j, 1: V + (beta_j + eta), 2: V}[gamma_j]
    V_j = saturate or wrap V to v_bits signed            # the only overflow point

Arithmetic is exact in 64 bits inside the tick; the membrane is brought back into ``v_bits``
(20 on TrueNorth) only at the end of the tick, with the population's ``overflow`` policy
(``saturate``: clamp to ``[-2**(v_bits-1), 2**(v_bits-1) - 1]``; ``wrap``: two's complement).
Because saturation happens only there, the order of integration never matters.

PRNG (ours; TrueNorth's generator is not public): every random number is a pure function of
``(seed, neuron id, tick, draw index)`` (:func:`prn64`), where the neuron id is the
core-independent id ``id_base + flat index`` of the neuron, the tick is the interpreter step and
the draw index names the use:

* ``DRAW_THRESHOLD = 0``: the threshold offset ``eta``;
* ``DRAW_LEAK = 1``: the stochastic leak;
* ``2 + 4 * k + G``: the k-th active synapse of type ``G`` on this neuron in this tick (k counts
  the active axons of that type with a crossbar bit on the neuron, in axon order).

The synapses of one type on one neuron all carry the same weight and the same effect, so only
the number of successes among the first ``n_G`` draws matters: a sequential loop over axons
(keeping one counter per type) and a vectorised count-then-draw evaluation give identical results.
``prn8`` is the low 8 bits of a draw, ``prn`` the whole 64-bit value. The draws do not depend on
the batch index: every sample of a batch is a separate run from tick 0, as on a freshly loaded chip.

A deterministic EEDN-style memoryless binary neuron (Esser et al. 2016): ``s = (-1, +1, 0, 0)`` on
types (0, 1), ``lambda = bias``, ``alpha = 1``, ``beta = 0``, ``gamma = 0``, ``kappa = 1``,
``R = 0``: ``y_t = [sum_i w_i x_i + bias >= 1]`` and V is 0 again after every tick.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ir.errors import IRError
from ir.graph import Graph
from ir.interp import Kernel, kernel
from ir.nodes import ConnectionNode, NeuronNode, Node, Param, Ref, Shape, register, spec
from ir.verify import family_rule

# ---- the family's datapath (hardware.md 1.1); profiles state the same numbers ------------------
AXON_TYPES = 4  # axon types G in 0..3, so four weights per neuron
WEIGHT_MAX = 255  # s_j[G]: 9-bit signed, -255..255
LEAK_MAX = 255  # lambda_j: 9-bit signed, -255..255
THRESHOLD_MAX = 2**18 - 1  # alpha_j, beta_j: 18-bit magnitudes
RESET_MIN, RESET_MAX = -(2**17), 2**17 - 1  # R_j: 18-bit signed (ours: width not public)
TM_MAX = 18  # threshold PRN mask width (ours: as wide as the thresholds)
V_BITS = 20  # membrane width of TrueNorth (a population may declare another, see v_bits)
V_BITS_MAX = 32
DELAY_MAX = 15  # 16-slot scheduler: delays 1..15
PRN8_MASK = 0xFF  # synapse and leak draws compare |value| with an 8-bit random number
OVERFLOW_POLICIES = ("saturate", "wrap")
RESET_MODES = {0: "reset to R", 1: "linear (subtract threshold)", 2: "none"}

DRAW_THRESHOLD = 0
DRAW_LEAK = 1
DRAW_SYNAPSE = 2  # + 4 * k + G

# ---- the counter-based PRNG (ours) -------------------------------------------------------------
_U64 = np.uint64
_GOLDEN = _U64(0x9E3779B97F4A7C15)
_M1 = _U64(0xBF58476D1CE4E5B9)
_M2 = _U64(0x94D049BB133111EB)
_S30, _S27, _S31 = _U64(30), _U64(27), _U64(31)


def _mix64(z: np.ndarray) -> np.ndarray:
    """The SplitMix64 finaliser (Steele, Lea, Flood 2014): a bijection of 64-bit words."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def counter_hash(*words) -> np.ndarray:
    """Hash integer words (scalars or arrays, broadcast together) to uint64, element-wise.

    ``h = 0; for w in words: h = mix64((h ^ w) + 0x9E3779B97F4A7C15)`` in wrapping 64-bit
    arithmetic (``mix64`` is SplitMix64's finaliser). Each word is taken modulo 2**64. Pure and
    stateless: the value depends on the words only, never on evaluation order or array layout.
    """
    with np.errstate(over="ignore"):
        arrs = []
        for w in words:
            a = np.asarray(w)
            # Signed integers enter as their two's complement modulo 2**64.
            arrs.append(a if a.dtype == _U64 else a.astype(np.int64).astype(_U64))
        h = np.zeros(np.broadcast_shapes(*(a.shape for a in arrs)), dtype=_U64)
        for a in arrs:
            h = _mix64((h ^ a) + _GOLDEN)
    return h


def prn64(seed: int, nid, tick: int, draw) -> np.ndarray:
    """The random word of one draw: ``counter_hash(seed, nid, tick, draw)`` (uint64 array).

    ``nid`` is the core-independent neuron id (``id_base + flat index``), ``tick`` the step,
    ``draw`` the draw index (``DRAW_THRESHOLD``, ``DRAW_LEAK`` or ``DRAW_SYNAPSE + 4*k + G``).
    """
    return counter_hash(seed, nid, tick, draw)


def prn8(seed: int, nid, tick: int, draw) -> np.ndarray:
    """The 8-bit random number of a draw (0..255, int64): the low 8 bits of :func:`prn64`."""
    return (prn64(seed, nid, tick, draw) & _U64(PRN8_MASK)).astype(np.int64)


def threshold_offset(seed: int, nid, tick: int, tm) -> np.ndarray:
    """``eta = prn64(seed, nid, tick, DRAW_THRESHOLD) & (2**tm - 1)`` (int64; 0 where tm = 0)."""
    tm = np.asarray(tm, dtype=np.int64)
    mask = ((np.int64(1) << tm) - 1).astype(_U64)
    return (prn64(seed, nid, tick, DRAW_THRESHOLD) & mask).astype(np.int64)


def fit_membrane(v: np.ndarray, bits: int, policy: str) -> tuple[np.ndarray, np.ndarray]:
    """Bring ``v`` into a ``bits``-bit signed register; return (value, overflowed mask).

    ``saturate`` clamps to ``[-2**(bits-1), 2**(bits-1) - 1]``; ``wrap`` keeps the low ``bits``
    bits as two's complement.
    """
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    over = (v < lo) | (v > hi)
    if policy == "wrap":
        return ((v - lo) & ((1 << bits) - 1)) + lo, over
    return np.clip(v, lo, hi), over


# ---- node kinds --------------------------------------------------------------------------------
_NEURON_PARAMS = ("s0", "s1", "s2", "s3", "stoch_syn", "leak", "leak_rev", "stoch_leak", "alpha",
                  "beta", "tm", "gamma", "kappa", "v_reset")


@register
@dataclass(frozen=True, kw_only=True)
class TrueNorthNeuron(NeuronNode):
    """A population of TrueNorth neurons (update rule, PRNG and overflow: see the module doc).

    Per-neuron integer parameters (a number for all neurons or a constant of the population's
    shape):

    * ``s0..s3``: the synaptic weight of axon types 0..3 (9-bit signed, -255..255);
    * ``stoch_syn``: stochastic-synapse flags as a 4-bit mask (bit G set: type G is stochastic);
    * ``leak`` (lambda, -255..255), ``leak_rev`` (epsilon, 0/1), ``stoch_leak`` (0/1);
    * ``alpha`` (positive threshold), ``beta`` (negative threshold magnitude): 0..2**18-1;
    * ``tm``: threshold PRN mask width 0..18 (0: deterministic threshold);
    * ``gamma``: reset mode (0: to ``v_reset``, 1: linear/subtract, 2: none);
    * ``kappa``: 1 saturates the membrane at ``-beta`` instead of resetting on the negative side;
    * ``v_reset`` (R): reset value, 18-bit signed.

    Population-wide: ``v_bits`` (membrane width, 20 on TrueNorth) and ``overflow`` (``saturate``
    or ``wrap``) from the target profile; ``seed`` and ``id_base`` feed the PRNG (the neuron id
    of flat element ``k`` is ``id_base + k``). The membrane starts at 0.
    """

    kind: ClassVar[str] = "TrueNorthNeuron"
    family: ClassVar[str] = "truenorth"
    spiking: ClassVar[bool] = True
    s0: Param = spec(default=0, integer=True, lo=-WEIGHT_MAX, hi=WEIGHT_MAX)
    s1: Param = spec(default=0, integer=True, lo=-WEIGHT_MAX, hi=WEIGHT_MAX)
    s2: Param = spec(default=0, integer=True, lo=-WEIGHT_MAX, hi=WEIGHT_MAX)
    s3: Param = spec(default=0, integer=True, lo=-WEIGHT_MAX, hi=WEIGHT_MAX)
    stoch_syn: Param = spec(default=0, integer=True, lo=0, hi=2**AXON_TYPES - 1)
    leak: Param = spec(default=0, integer=True, lo=-LEAK_MAX, hi=LEAK_MAX)
    leak_rev: Param = spec(default=0, integer=True, lo=0, hi=1)
    stoch_leak: Param = spec(default=0, integer=True, lo=0, hi=1)
    alpha: Param = spec(integer=True, lo=0, hi=THRESHOLD_MAX)
    beta: Param = spec(default=0, integer=True, lo=0, hi=THRESHOLD_MAX)
    tm: Param = spec(default=0, integer=True, lo=0, hi=TM_MAX)
    gamma: Param = spec(default=0, integer=True, lo=0, hi=2)
    kappa: Param = spec(default=0, integer=True, lo=0, hi=1)
    v_reset: Param = spec(default=0, integer=True, lo=RESET_MIN, hi=RESET_MAX)
    v_bits: int = spec(default=V_BITS, kind="int", lo=2, hi=V_BITS_MAX)
    overflow: str = spec(default="saturate", kind="str", choices=OVERFLOW_POLICIES)
    seed: int = spec(default=0, kind="int", lo=0, hi=2**32 - 1)
    id_base: int = spec(default=0, kind="int", lo=0, hi=2**32 - 1)

    @property
    def weights(self) -> tuple[Param, Param, Param, Param]:
        """``(s0, s1, s2, s3)``."""
        return (self.s0, self.s1, self.s2, self.s3)


@register
@dataclass(frozen=True, kw_only=True)
class TrueNorthCrossbar(ConnectionNode):
    """A binary crossbar from ``in_features * copies`` axons to ``out_features`` neurons.

    ``crossbar``: bool constant of shape ``(out_features, in_features * copies)``; ``axon_types``:
    integer constant of shape ``(in_features * copies,)`` with values 0..3. Source ``i`` drives
    axons ``i*copies .. i*copies + copies - 1``; a spike of source ``i`` emitted at step ``t``
    reaches the neurons at step ``t + delay`` (1..15, the 16-slot scheduler). The effective weight
    of source ``i`` on neuron ``j`` is ``sum_c crossbar[j, i*copies + c] * s_j[axon_types[...]]``.

    The kernel hands the neurons, per target neuron, the number of active axons of each type
    with a crossbar bit on it: an int64 array ``(B, out_features, 4)``.
    """

    kind: ClassVar[str] = "TrueNorthCrossbar"
    family: ClassVar[str] = "truenorth"
    in_features: int = spec(kind="int", positive=True)
    out_features: int = spec(kind="int", positive=True)
    copies: int = spec(default=1, kind="int", lo=1, hi=AXON_TYPES)
    crossbar: Ref = spec(kind="ref")
    axon_types: Ref = spec(kind="ref")
    delay: int = spec(default=1, kind="int", lo=1, hi=DELAY_MAX)

    @property
    def in_shape(self) -> Shape:
        return (self.in_features,)

    @property
    def out_shape(self) -> Shape:
        return (self.out_features,)

    @property
    def axons(self) -> int:
        """Axons the crossbar occupies: ``in_features * copies``."""
        return self.in_features * self.copies

    @property
    def delay_steps(self) -> int:
        return self.delay


def effective_weights(graph: Graph, conn: TrueNorthCrossbar, neuron: TrueNorthNeuron) -> np.ndarray:
    """The integer weight matrix ``(out, in)`` a crossbar realises on a (flat) neuron population:
    ``W[j, i] = sum_c crossbar[j, i*copies + c] * s_j[axon_types[i*copies + c]]``."""
    cb = np.asarray(graph.const(conn.crossbar), dtype=bool)
    types = np.asarray(graph.const(conn.axon_types), dtype=np.int64)
    n = neuron.size
    s = np.stack([np.broadcast_to(graph.param(neuron, f, np.int64), neuron.out_shape).reshape(n)
                  for f in ("s0", "s1", "s2", "s3")], axis=1)  # (N, 4)
    per_axon = s[:, types] * cb  # (out, axons)
    return per_axon.reshape(conn.out_features, conn.in_features, conn.copies).sum(axis=2)


# ---- kernels -----------------------------------------------------------------------------------
@kernel("TrueNorthCrossbar")
class TrueNorthCrossbarKernel(Kernel):
    """Delays spikes by ``delay`` steps and counts active axons per type on every target neuron.

    Output at step t: ``counts[b, j, G] = sum_a A[b, a] * crossbar[j, a] * (axon_types[a] == G)``
    with ``A`` the axons driven by the sources' spikes of step ``t - delay`` (a non-zero input is
    a spike).
    """

    def __init__(self, node: TrueNorthCrossbar, graph: Graph, batch: int):
        super().__init__(node, graph, batch)
        cb = np.asarray(graph.const(node.crossbar)).astype(bool)
        types = np.asarray(graph.const(node.axon_types)).astype(np.int64)
        if cb.shape != (node.out_features, node.axons) or types.shape != (node.axons,):
            raise IRError(
                f"TrueNorthCrossbar {node.name}: crossbar {list(cb.shape)} / axon_types "
                f"{list(types.shape)} do not match ({node.out_features}, {node.axons}) / "
                f"({node.axons},)"
            )
        # One (axons_of_type_G, out) float32 matrix per type: counts stay exact below 2**24.
        self._per_type = [
            (np.flatnonzero(types == g), cb[:, types == g].T.astype(np.float32))
            for g in range(AXON_TYPES)
        ]
        zero = np.zeros((batch, node.out_features, AXON_TYPES), dtype=np.int64)
        self._queue = collections.deque([zero] * node.delay)

    def _counts(self, x: np.ndarray | None) -> np.ndarray:
        node = self.node
        out = np.zeros((self.batch, node.out_features, AXON_TYPES), dtype=np.int64)
        if x is None:
            return out
        spikes = (np.asarray(x).reshape(self.batch, node.in_features) != 0)
        axons = np.repeat(spikes, node.copies, axis=1).astype(np.float32)  # axon a = i*copies + c
        for g, (idx, mat) in enumerate(self._per_type):
            if idx.size:
                out[:, :, g] = np.rint(axons[:, idx] @ mat).astype(np.int64)
        return out

    def emit(self) -> np.ndarray:
        return self._queue[0]

    def push(self, x: np.ndarray | None) -> None:
        self._queue.popleft()
        self._queue.append(self._counts(x))


def neuron_params(graph: Graph, node: TrueNorthNeuron) -> dict[str, np.ndarray]:
    """Every per-neuron parameter of ``node`` as a flat int64 array of length ``node.size``."""
    n = node.size
    return {f: np.ascontiguousarray(graph.param(node, f, np.int64).reshape(n))
            for f in _NEURON_PARAMS}


@kernel("TrueNorthNeuron")
class TrueNorthNeuronKernel(Kernel):
    """The TrueNorth neuron update of the module doc, vectorised over batch and neurons.

    State: ``v`` (int64, within ``v_bits``). ``overflows`` counts, per sample and neuron, the
    ticks in which the membrane left its register (saturated or wrapped).
    """

    def __init__(self, node: TrueNorthNeuron, graph: Graph, batch: int):
        super().__init__(node, graph, batch)
        self.n = node.size
        self.p = neuron_params(graph, node)
        self.s = np.stack([self.p[f] for f in ("s0", "s1", "s2", "s3")], axis=1)  # (N, 4)
        self.stoch = np.stack([(self.p["stoch_syn"] >> g) & 1 for g in range(AXON_TYPES)],
                              axis=1).astype(bool)  # (N, 4)
        self.nid = np.arange(self.n, dtype=np.int64) + node.id_base
        self.v = np.zeros((batch, self.n), dtype=np.int64)
        self.overflows = np.zeros((batch, self.n), dtype=np.int64)
        self.t = 0

    def _stochastic_synapses(self, counts: np.ndarray) -> np.ndarray:
        """Sum over types of ``sign(s_G) * #successes among draws k < n_G`` (B, N)."""
        node, total = self.node, np.zeros((self.batch, self.n), dtype=np.int64)
        for g in range(AXON_TYPES):
            cols = np.flatnonzero(self.stoch[:, g])
            if cols.size == 0:
                continue
            n_g = counts[:, cols, g]  # (B, n)
            k_max = int(n_g.max(initial=0))
            if k_max == 0:
                continue
            k = np.arange(k_max, dtype=np.int64)
            draws = prn8(node.seed, self.nid[cols, None], self.t,
                         DRAW_SYNAPSE + AXON_TYPES * k[None, :] + g)  # (n, K)
            hits = np.abs(self.s[cols, g])[:, None] >= draws
            cum = np.concatenate([np.zeros((cols.size, 1), np.int64),
                                  np.cumsum(hits, axis=1, dtype=np.int64)], axis=1)  # (n, K+1)
            succ = np.take_along_axis(np.broadcast_to(cum, (self.batch, *cum.shape)),
                                      n_g[:, :, None], axis=2)[:, :, 0]
            total[:, cols] += succ * np.sign(self.s[cols, g])
        return total

    def step(self, x: np.ndarray | None) -> np.ndarray:
        node, p = self.node, self.p
        v = self.v.copy()
        # 1. integration: deterministic types add n_G * s_G; stochastic types add sign(s_G)
        #    per success.
        if x is not None:
            counts = np.asarray(x, dtype=np.int64).reshape(self.batch, self.n, AXON_TYPES)
            det = np.where(self.stoch, 0, self.s)  # (N, 4)
            v += np.einsum("bng,ng->bn", counts, det)
            if self.stoch.any():
                v += self._stochastic_synapses(counts)
        # 2. leak with optional reversal (omega = sign(V) after integration) and stochastic mode.
        lam = p["leak"]
        omega = np.where(p["leak_rev"] == 1, np.sign(v), 1)
        stoch_leak = p["stoch_leak"] == 1
        if stoch_leak.any():
            u = prn8(node.seed, self.nid, self.t, DRAW_LEAK)
            step = np.where(stoch_leak, np.sign(lam) * (np.abs(lam) >= u), lam)
        else:
            step = lam
        v += omega * step
        # 3. threshold with its PRN offset, 4. reset modes and the negative threshold.
        eta = (threshold_offset(node.seed, self.nid, self.t, p["tm"]) if (p["tm"] > 0).any()
               else np.zeros(self.n, np.int64))
        pos_thr = p["alpha"] + eta
        spike = v >= pos_thr
        neg_thr = np.where(p["kappa"] == 1, p["beta"], p["beta"] + eta)
        neg = ~spike & (v < -neg_thr)
        gamma = p["gamma"]
        after_spike = np.where(gamma == 0, p["v_reset"], np.where(gamma == 1, v - pos_thr, v))
        after_neg = np.where(
            p["kappa"] == 1, -p["beta"],
            np.where(gamma == 0, -p["v_reset"], np.where(gamma == 1, v + p["beta"] + eta, v)),
        )
        v = np.where(spike, after_spike, np.where(neg, after_neg, v))
        # 5. the membrane register: saturate or wrap (the tick's only overflow point).
        v, over = fit_membrane(v, node.v_bits, node.overflow)
        self.overflows += over
        self.v = v
        self.t += 1
        return spike.reshape((self.batch, *node.out_shape))

    def state(self) -> dict[str, np.ndarray]:
        return {"v": self.v.reshape((self.batch, *self.node.out_shape))}


# ---- verifier rules ----------------------------------------------------------------------------
@family_rule("truenorth")
def verify_neuron(graph: Graph, node: Node) -> list[str]:
    """TrueNorth neuron rules (beyond the field ranges the generic verifier checks): only
    crossbars feed it; alpha, beta and R fit the membrane register; stochastic populations of one
    seed have disjoint neuron ids."""
    if node.kind != "TrueNorthNeuron":
        return []
    probs = []
    for src in graph.predecessors(node.name):
        k = graph.nodes[src].kind if src in graph.nodes else "?"
        if k != "TrueNorthCrossbar":
            probs.append(f"TrueNorthNeuron {node.name}: input {src} is a {k}; a TrueNorth neuron "
                         "is fed only by TrueNorthCrossbar nodes (quantize the graph for truenorth)")
    if probs:
        return probs
    vmax = (1 << (node.v_bits - 1)) - 1
    # alpha and R (and -R) are membrane values; -beta may reach the register's minimum.
    for f, lim in (("alpha", vmax), ("beta", vmax + 1), ("v_reset", vmax)):
        a = np.abs(graph.param(node, f, np.int64))
        if a.size and a.max() > lim:
            probs.append(f"TrueNorthNeuron {node.name}: |{f}| = {int(a.max())} does not fit the "
                         f"{node.v_bits}-bit membrane (max {lim}); lower it or widen v_bits")
    if _is_stochastic(graph, node):
        lo, hi = node.id_base, node.id_base + node.size
        for other in graph.by_kind("TrueNorthNeuron"):
            if other.name == node.name or other.seed != node.seed:
                continue
            olo, ohi = other.id_base, other.id_base + other.size
            if lo < ohi and olo < hi and _is_stochastic(graph, other):
                probs.append(
                    f"TrueNorthNeuron {node.name}: neuron ids {lo}..{hi - 1} overlap those of "
                    f"{other.name} ({olo}..{ohi - 1}) with the same PRNG seed {node.seed}; their "
                    "random draws would be identical: give them disjoint id_base ranges")
    return probs


def _is_stochastic(graph: Graph, node: TrueNorthNeuron) -> bool:
    return any(np.any(graph.param(node, f, np.int64) != 0) for f in ("stoch_syn", "stoch_leak",
                                                                       "tm"))


@family_rule("truenorth")
def verify_crossbar(graph: Graph, node: Node) -> list[str]:
    """Crossbar rules: constant shapes and dtypes, axon types 0..3, targets are TrueNorth
    neurons of the crossbar's size."""
    if node.kind != "TrueNorthCrossbar":
        return []
    probs: list[str] = []
    where = f"TrueNorthCrossbar {node.name}"
    cb = graph.constants.get(node.crossbar.name)
    if cb is not None:
        cb = np.asarray(cb)
        if cb.shape != (node.out_features, node.axons):
            probs.append(f"{where}: crossbar @{node.crossbar.name} has shape {list(cb.shape)}; "
                         f"expected [{node.out_features}, {node.axons}] (out, in * copies)")
        elif cb.dtype != np.bool_ and not (cb.dtype.kind in "iu" and np.isin(cb, (0, 1)).all()):
            probs.append(f"{where}: crossbar @{node.crossbar.name} must hold 0/1 (bool), "
                         f"got dtype {cb.dtype}")
    ty = graph.constants.get(node.axon_types.name)
    if ty is not None:
        ty = np.asarray(ty)
        if ty.shape != (node.axons,):
            probs.append(f"{where}: axon_types @{node.axon_types.name} has shape "
                         f"{list(ty.shape)}; expected [{node.axons}] (in * copies)")
        elif ty.size and (ty.dtype.kind not in "iu" or ty.min() < 0 or ty.max() >= AXON_TYPES):
            probs.append(f"{where}: axon_types @{node.axon_types.name} must hold integers "
                         f"0..{AXON_TYPES - 1}")
    for dst in graph.successors(node.name):
        t = graph.nodes.get(dst)
        if t is None:
            continue
        if t.kind != "TrueNorthNeuron":
            probs.append(f"{where}: target {dst} is a {t.kind}; a crossbar feeds TrueNorthNeuron "
                         "populations only")
        elif t.size != node.out_features:
            probs.append(f"{where}: out_features = {node.out_features} but target {dst} has "
                         f"{t.size} neurons")
    return probs


__all__ = [
    "AXON_TYPES", "DELAY_MAX", "DRAW_LEAK", "DRAW_SYNAPSE", "DRAW_THRESHOLD", "TrueNorthCrossbar",
    "TrueNorthCrossbarKernel", "TrueNorthNeuron", "TrueNorthNeuronKernel", "counter_hash",
    "effective_weights", "fit_membrane", "neuron_params", "prn64", "prn8", "threshold_offset",
    "verify_crossbar", "verify_neuron",
]
