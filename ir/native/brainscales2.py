"""BrainScaleS-2-family native kinds and their integer kernels (``../shared/hardware.md`` section 3).

BrainScaleS-2 is mixed-signal: its neurons are analog circuits, configured by 10-bit parameter
codes, and only its digital event path is exactly reproducible. This family keeps the digital
constraints exactly (6-bit unsigned weights, excitatory/inhibitory rows, parallel synapses for
large weights) and defines the neuron as an **integer discretised LIF** over the codes (ours):

Units. The membrane ``v`` and the synaptic currents ``i_exc``, ``i_inh`` are integers in *state
units*: 1/64 of a voltage-code step (``V_FRAC = 6`` fractional bits), so voltage code ``c`` is the
state value ``c << 6``. ``v`` lives between the rails ``0 .. V_MAX = 2**16 - 1`` and saturates
there (analog rails); the currents are non-negative and saturate at ``I_MAX = 2**16 - 1``.

Per step ``t`` and neuron (``E``, ``I`` = sums of the excitatory / inhibitory weights of the
synapses that received a spike, over every synapse node feeding the population)::

    decay(x, c) = trunc(x * (1022 - c) / 1022)           # c = 0: no decay, c = 1022: none kept
    i_exc = min(I_MAX, decay(i_exc, c_syn_exc) + gain_exc * E)
    i_inh = min(I_MAX, decay(i_inh, c_syn_inh) + gain_inh * I)
    if ref > 0:                                            # refractory: clamped at reset
        ref -= 1;  v = v_reset << 6;  s = 0
    else:
        vl = v_leak << 6
        v  = clip(vl + decay(v - vl, c_mem) + i_exc - i_inh + bias, 0, V_MAX)
        s  = v >= (v_threshold << 6)                       # (never for a readout)
        if s: v = v_reset << 6;  ref = refractory << refractory_clock

``trunc`` rounds toward zero (the membrane decays symmetrically toward ``v_leak``). The time
constant codes are leak conductances: the retained fraction per step is ``(1022 - c) / 1022``, so
``tau = -dt / ln(1 - c / 1022)``; ``c_mem = 0`` is a perfect integrator and ``c_syn_* = 1022`` an
instantaneous synapse. The membrane starts at ``v_leak << 6``, the currents at 0. A readout
population (``readout=True``, the CADC reading the membrane) outputs ``v`` in state units and
never spikes.

Fixed-pattern noise (optional, ours): the analog circuits of a real chip differ. A kernel made by
:func:`spread_kernels` perturbs every analog code of every neuron once, before the run, by a
seeded, reproducible amount (:func:`spread_codes`); digital values (weights, refractory, bias)
are exact. The spread belongs to a chip instance, not to the network, so it is a kernel (run)
option and never part of the graph.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ir.errors import IRError
from ir.graph import Graph
from ir.interp import Kernel, kernel
from ir.native.truenorth import counter_hash
from ir.nodes import ConnectionNode, NeuronNode, Node, Param, Ref, Shape, register, spec
from ir.verify import family_rule

# ---- the family's datapath (hardware.md 3; the discretised neuron is ours) --------------------
CODE_MAX = 1022  # analog parameter codes 0..1022 (10-bit capacitive memory cells)
DECAY_DEN = 1022  # retained fraction per step (1022 - c) / 1022
WEIGHT_MAX = 63  # 6-bit unsigned synapse weights
V_FRAC = 6  # state units per voltage code: 2**6
V_MAX = 2**16 - 1  # membrane rails 0 .. V_MAX (16-bit unsigned state)
I_MAX = 2**16 - 1  # synaptic currents 0 .. I_MAX (16-bit unsigned, saturating)
BIAS_MAX = 1022  # constant current, state units per step, -1022..1022
REFRACTORY_MAX = 255  # 8-bit refractory counter
REFRACTORY_CLOCK_MAX = 7  # the counter period is 2**refractory_clock steps
DELAY_MAX = 255  # event latency in steps (ours)

SPREAD_PARAMS = ("v_leak", "v_threshold", "v_reset", "c_mem", "c_syn_exc", "c_syn_inh",
                 "gain_exc", "gain_inh")
"""The analog codes perturbed by fixed-pattern noise; the position is the hash's parameter index."""
FPN_DOMAIN = 0x46504E  # "FPN": the third hash word, so spread draws never meet other draws

_NEURON_PARAMS = SPREAD_PARAMS + ("bias", "refractory", "refractory_clock")


def decay(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``trunc(x * (1022 - c) / 1022)`` in int64, rounding toward zero."""
    q = np.asarray(x, np.int64) * (DECAY_DEN - np.asarray(c, np.int64))
    return np.sign(q) * (np.abs(q) // DECAY_DEN)


def spread_codes(codes: np.ndarray, nid: np.ndarray, seed: int, sigma: float,
                 param_index: int) -> np.ndarray:
    """Codes perturbed by seeded fixed-pattern noise (pure numpy; reproducible anywhere).

    ``z = sum_{k<12} u_k / 65536 - 6`` (Irwin-Hall: mean 0, variance 1), where ``u_k`` is the
    16-bit field ``k % 4`` (low first) of ``counter_hash(seed, nid, FPN_DOMAIN, 3 * param_index
    + k // 4)``; the result is ``clip(codes + rint(sigma * z), 0, 1022)`` (``rint``: half to
    even; every step is exact or one IEEE-754 double operation).
    """
    nid = np.asarray(nid, np.int64)
    total = np.zeros(nid.shape, dtype=np.int64)
    for q in range(3):
        h = counter_hash(seed, nid, FPN_DOMAIN, 3 * param_index + q)
        for r in range(4):
            total += ((h >> np.uint64(16 * r)) & np.uint64(0xFFFF)).astype(np.int64)
    z = total.astype(np.float64) / 65536.0 - 6.0
    off = np.rint(float(sigma) * z).astype(np.int64)
    return np.clip(np.asarray(codes, np.int64) + off, 0, CODE_MAX)


# ---- node kinds --------------------------------------------------------------------------------
@register
@dataclass(frozen=True, kw_only=True)
class BSS2Neuron(NeuronNode):
    """A population of BrainScaleS-2 neurons: the integer discretised LIF of the module doc.

    Codes 0..1022 (a number for all neurons or a constant of the population's shape):
    ``v_leak``, ``v_threshold``, ``v_reset`` (voltages), ``c_mem``, ``c_syn_exc``, ``c_syn_inh``
    (leak conductances of the membrane and of the two synaptic inputs), ``gain_exc``, ``gain_inh``
    (state units of current per unit of weight). ``bias``: constant current in state units per
    step (-1022..1022). ``refractory`` (0..255) counts periods of ``2**refractory_clock`` steps
    (``refractory_clock`` 0..7). ``readout``: output the membrane instead of spikes. ``id_base``:
    the id of flat element 0 for the fixed-pattern-noise draws (neuron ``k`` is ``id_base + k``).
    """

    kind: ClassVar[str] = "BSS2Neuron"
    family: ClassVar[str] = "brainscales2"
    spiking: ClassVar[bool] = True
    v_leak: Param = spec(integer=True, lo=0, hi=CODE_MAX)
    v_threshold: Param = spec(integer=True, lo=0, hi=CODE_MAX)
    v_reset: Param = spec(integer=True, lo=0, hi=CODE_MAX)
    c_mem: Param = spec(integer=True, lo=0, hi=CODE_MAX)
    c_syn_exc: Param = spec(default=CODE_MAX, integer=True, lo=0, hi=CODE_MAX)
    c_syn_inh: Param = spec(default=CODE_MAX, integer=True, lo=0, hi=CODE_MAX)
    gain_exc: Param = spec(default=1, integer=True, lo=0, hi=CODE_MAX)
    gain_inh: Param = spec(default=1, integer=True, lo=0, hi=CODE_MAX)
    bias: Param = spec(default=0, integer=True, lo=-BIAS_MAX, hi=BIAS_MAX)
    refractory: Param = spec(default=0, integer=True, lo=0, hi=REFRACTORY_MAX)
    refractory_clock: Param = spec(default=0, integer=True, lo=0, hi=REFRACTORY_CLOCK_MAX)
    readout: bool = spec(default=False, kind="bool")
    id_base: int = spec(default=0, kind="int", lo=0, hi=2**32 - 1)


@register
@dataclass(frozen=True, kw_only=True)
class BSS2Synapses(ConnectionNode):
    """Synapses on excitatory and inhibitory rows, 6-bit unsigned weights.

    ``exc`` and ``inh`` (either may be None, not both) are integer constants of shape
    ``(m, out_features, in_features)`` with values 0..63: ``m`` parallel synapses per (source,
    neuron) pair, each on a row of its own, so a weight above 63 is the sum of several synapses
    (the multiplicity ``m``). The effective signed weight is ``exc.sum(0) - inh.sum(0)``. A spike
    of source ``i`` at step ``t`` reaches the neurons at ``t + delay``.

    The kernel hands the neurons ``(B, out_features, 2)``: the summed excitatory and inhibitory
    weights of the synapses that received a spike.
    """

    kind: ClassVar[str] = "BSS2Synapses"
    family: ClassVar[str] = "brainscales2"
    in_features: int = spec(kind="int", positive=True)
    out_features: int = spec(kind="int", positive=True)
    exc: Ref | None = spec(default=None, kind="ref", optional=True)
    inh: Ref | None = spec(default=None, kind="ref", optional=True)
    delay: int = spec(default=1, kind="int", lo=1, hi=DELAY_MAX)

    def check(self) -> None:
        if self.exc is None and self.inh is None:
            raise IRError(f"BSS2Synapses {self.name}: needs exc or inh weights (or both)")

    @property
    def in_shape(self) -> Shape:
        return (self.in_features,)

    @property
    def out_shape(self) -> Shape:
        return (self.out_features,)

    @property
    def delay_steps(self) -> int:
        return self.delay


def summed_weights(graph: Graph, node: BSS2Synapses) -> tuple[np.ndarray, np.ndarray]:
    """(excitatory, inhibitory) weight matrices ``(out, in)``, parallel synapses summed (int64)."""
    shape = (node.out_features, node.in_features)
    out = []
    for ref in (node.exc, node.inh):
        if ref is None:
            out.append(np.zeros(shape, np.int64))
        else:
            out.append(np.asarray(graph.const(ref), np.int64).reshape(-1, *shape).sum(axis=0))
    return out[0], out[1]


def multiplicity(graph: Graph, ref: Ref | None) -> int:
    """Parallel synapses per pair (the leading axis of ``exc`` / ``inh``; 0 when absent)."""
    return 0 if ref is None else int(np.asarray(graph.const(ref)).shape[0])


# ---- kernels -----------------------------------------------------------------------------------
@kernel("BSS2Synapses")
class BSS2SynapsesKernel(Kernel):
    """Delays spikes by ``delay`` steps and sums the weights they meet, per sign row."""

    def __init__(self, node: BSS2Synapses, graph: Graph, batch: int):
        super().__init__(node, graph, batch)
        e, i = summed_weights(graph, node)
        # (in, out, 2) float64: exact for every reachable sum (< 2**53).
        self._w = np.stack([e.T, i.T], axis=2).astype(np.float64)
        zero = np.zeros((batch, node.out_features, 2), dtype=np.int64)
        self._queue = collections.deque([zero] * node.delay)

    def _sums(self, x: np.ndarray | None) -> np.ndarray:
        node = self.node
        if x is None:
            return np.zeros((self.batch, node.out_features, 2), dtype=np.int64)
        spikes = (np.asarray(x).reshape(self.batch, node.in_features) != 0).astype(np.float64)
        return np.rint(np.einsum("bi,iog->bog", spikes, self._w)).astype(np.int64)

    def emit(self) -> np.ndarray:
        return self._queue[0]

    def push(self, x: np.ndarray | None) -> None:
        self._queue.popleft()
        self._queue.append(self._sums(x))


def neuron_params(graph: Graph, node: BSS2Neuron) -> dict[str, np.ndarray]:
    """Every per-neuron parameter of ``node`` as a flat int64 array of length ``node.size``."""
    return {f: np.ascontiguousarray(graph.param(node, f, np.int64).reshape(node.size))
            for f in _NEURON_PARAMS}


@kernel("BSS2Neuron")
class BSS2NeuronKernel(Kernel):
    """The integer discretised LIF of the module doc, vectorised over batch and neurons.

    Class attributes ``fpn_sigma`` (code units; 0 = an ideal chip) and ``fpn_seed`` select the
    fixed-pattern noise; use :func:`spread_kernels` to make a kernel with them set. State: ``v``,
    ``i_exc``, ``i_inh`` (state units), ``ref`` (refractory steps left). ``saturations`` counts,
    per sample and neuron, the steps where ``v`` hit a rail or a current hit ``I_MAX``.
    """

    fpn_sigma: ClassVar[float] = 0.0
    fpn_seed: ClassVar[int] = 0

    def __init__(self, node: BSS2Neuron, graph: Graph, batch: int):
        super().__init__(node, graph, batch)
        self.n = node.size
        p = neuron_params(graph, node)
        self.nid = np.arange(self.n, dtype=np.int64) + node.id_base
        if self.fpn_sigma:
            for k, f in enumerate(SPREAD_PARAMS):
                p[f] = spread_codes(p[f], self.nid, self.fpn_seed, self.fpn_sigma, k)
        self.p = p
        self.ref_len = p["refractory"] << p["refractory_clock"]
        self.v = np.broadcast_to(p["v_leak"] << V_FRAC, (batch, self.n)).astype(np.int64)
        self.i_exc = np.zeros((batch, self.n), np.int64)
        self.i_inh = np.zeros((batch, self.n), np.int64)
        self.ref = np.zeros((batch, self.n), np.int64)
        self.saturations = np.zeros((batch, self.n), np.int64)

    def step(self, x: np.ndarray | None) -> np.ndarray:
        node, p = self.node, self.p
        if x is None:
            e = i = 0
        else:
            ei = np.asarray(x, np.int64).reshape(self.batch, self.n, 2)
            e, i = ei[:, :, 0], ei[:, :, 1]
        ie = decay(self.i_exc, p["c_syn_exc"]) + p["gain_exc"] * e
        ii = decay(self.i_inh, p["c_syn_inh"]) + p["gain_inh"] * i
        sat_i = (ie > I_MAX) | (ii > I_MAX)
        self.i_exc, self.i_inh = np.minimum(ie, I_MAX), np.minimum(ii, I_MAX)
        vl = p["v_leak"] << V_FRAC
        v = vl + decay(self.v - vl, p["c_mem"]) + self.i_exc - self.i_inh + p["bias"]
        sat_v = (v < 0) | (v > V_MAX)
        v = np.clip(v, 0, V_MAX)
        refractory = self.ref > 0
        v = np.where(refractory, p["v_reset"] << V_FRAC, v)
        self.ref = np.where(refractory, self.ref - 1, self.ref)
        self.saturations += sat_i | (sat_v & ~refractory)
        if node.readout:
            self.v = v
            return v.reshape((self.batch, *node.out_shape))
        spike = ~refractory & (v >= (p["v_threshold"] << V_FRAC))
        self.v = np.where(spike, p["v_reset"] << V_FRAC, v)
        self.ref = np.where(spike, self.ref_len, self.ref)
        return spike.reshape((self.batch, *node.out_shape))

    def state(self) -> dict[str, np.ndarray]:
        shape = (self.batch, *self.node.out_shape)
        return {"v": self.v.reshape(shape), "i_exc": self.i_exc.reshape(shape),
                "i_inh": self.i_inh.reshape(shape), "ref": self.ref.reshape(shape)}


def spread_kernels(sigma: float, seed: int = 0) -> dict[str, type[Kernel]]:
    """Kernel overrides for a chip instance with fixed-pattern noise of ``sigma`` codes.

    Use as ``ir.interp.run(graph, inputs, kernels=spread_kernels(4.0, seed=1))``; the same
    ``(sigma, seed)`` gives the same chip, bit for bit.
    """
    if not np.isfinite(sigma) or sigma < 0:
        raise IRError(f"fixed-pattern noise sigma = {sigma} must be a finite number >= 0 (codes)")
    cls = type("BSS2NeuronSpreadKernel", (BSS2NeuronKernel,),
               {"fpn_sigma": float(sigma), "fpn_seed": int(seed)})
    return {"BSS2Neuron": cls}


# ---- verifier rules ----------------------------------------------------------------------------
@family_rule("brainscales2")
def verify_neuron(graph: Graph, node: Node) -> list[str]:
    """BrainScaleS-2 neuron rules (beyond the code ranges the generic verifier checks): only
    BSS2Synapses feed it."""
    if node.kind != "BSS2Neuron":
        return []
    probs = []
    for src in graph.predecessors(node.name):
        k = graph.nodes[src].kind if src in graph.nodes else "?"
        if k != "BSS2Synapses":
            probs.append(f"BSS2Neuron {node.name}: input {src} is a {k}; a BrainScaleS-2 neuron "
                         "is fed only by BSS2Synapses nodes (quantize the graph for brainscales2)")
    return probs


@family_rule("brainscales2")
def verify_synapses(graph: Graph, node: Node) -> list[str]:
    """Synapse rules: weight constants of shape (m, out, in) holding integers 0..63; targets are
    BSS2 neuron populations of the right size; sources emit spikes (not a readout)."""
    if node.kind != "BSS2Synapses":
        return []
    probs: list[str] = []
    where = f"BSS2Synapses {node.name}"
    for fname in ("exc", "inh"):
        ref = getattr(node, fname)
        if ref is None or ref.name not in graph.constants:
            continue
        a = np.asarray(graph.constants[ref.name])
        if a.ndim != 3 or a.shape[1:] != (node.out_features, node.in_features) or a.shape[0] < 1:
            probs.append(f"{where}: {fname} @{ref.name} has shape {list(a.shape)}; expected "
                         f"[m, {node.out_features}, {node.in_features}] (parallel synapses, "
                         "out, in) with m >= 1")
        elif a.dtype.kind not in "iu":
            probs.append(f"{where}: {fname} @{ref.name} has dtype {a.dtype}; weights are "
                         f"integers 0..{WEIGHT_MAX}")
        elif a.size and (a.min() < 0 or a.max() > WEIGHT_MAX):
            bad = int(a.min()) if a.min() < 0 else int(a.max())
            probs.append(f"{where}: {fname} @{ref.name} holds weight {bad}, outside the 6-bit "
                         f"range 0..{WEIGHT_MAX}; realise larger weights with parallel synapses")
    for dst in graph.successors(node.name):
        t = graph.nodes.get(dst)
        if t is None:
            continue
        if t.kind != "BSS2Neuron":
            probs.append(f"{where}: target {dst} is a {t.kind}; BSS2Synapses feed BSS2Neuron "
                         "populations only")
        elif t.size != node.out_features:
            probs.append(f"{where}: out_features = {node.out_features} but target {dst} has "
                         f"{t.size} neurons")
    for src in graph.predecessors(node.name):
        s = graph.nodes.get(src)
        if s is not None and s.kind == "BSS2Neuron" and s.readout:
            probs.append(f"{where}: source {src} is a readout (it outputs its membrane, not "
                         "spikes); feed synapses from spiking populations only")
    return probs


__all__ = [
    "BSS2Neuron", "BSS2NeuronKernel", "BSS2Synapses", "BSS2SynapsesKernel", "CODE_MAX",
    "SPREAD_PARAMS", "V_FRAC", "WEIGHT_MAX", "decay", "multiplicity", "neuron_params",
    "spread_codes", "spread_kernels", "summed_weights", "verify_neuron", "verify_synapses",
]
