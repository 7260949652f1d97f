"""The Loihi quantizer: generic float kinds -> Loihi CUBA compartments and synapses.

Lowering (every rule below is also in ``docs/targets.md``):

* IF, LIF, CubaLIF -> ``LoihiCompartment``; LI, CubaLI, Integrator -> ``LoihiCompartment`` with
  ``readout=True`` (non-spiking, outputs v).
* Dense -> ``LoihiDense``; Sparse (and a direct source -> neuron edge, an identity) ->
  ``LoihiSparse``. A float Delay of d steps before or after the connection folds into the native
  delay ``max(1, d)``. Per-element delays that differ split the connection into one LoihiSparse per
  distinct delay (an exact equivalent).
* Decays: ``dv = round(4096 (1 - exp(-dt/tau_mem)))`` (IF, Integrator: ``dv = 0``, no leak);
  ``du = round(4096 (1 - exp(-dt/tau_syn))) - 1`` because Loihi 1's current decays by
  ``4096 - (du + 1)``. A neuron without a synaptic stage (IF, LIF, LI, Integrator) gets
  ``du = 4095``: the current decays by ``4096 - 4096 = 0``, so ``u[t] = a[t] << 6`` exactly, the
  current stage holds no memory.
* Gains: the zero-order-hold input gain ``(1 - a) r`` (LIF), ``(1 - a) r (1 - b) w_in`` (CubaLIF),
  ``r`` (IF) is folded into the weights, computed with the *realised* decays ``a = (4096-dv)/4096``
  and ``b = (4096-du-1)/4096`` so that the steady-state voltage for a constant input matches the
  float neuron. Dense/Sparse biases (a constant current) and ``v_leak`` become the compartment bias
  ``bias_mant << bias_exp`` (per step, into v) with the steady-state gain.
* Scale: per population one factor ``s`` (integer v units per float v unit), as large as the
  widths allow: thresholds ``s * v_threshold = vth_mant << 6`` within the threshold mantissa, the
  largest weight within ``255 << weight_exp_max``, the bias within its mantissa and exponent, and
  ``s * (v_threshold + B) <= 2**23 - 1`` where B bounds the per-step drive: the worst case (every
  input spiking, through the synaptic filter) without calibration data, or the
  ``opts.percentile``-th percentile of the drive seen on the calibration inputs in the float
  network (data-aware scaling as in Rueckauer et al. 2017). For a uniform threshold, ``s`` is then
  lowered so the threshold lands exactly on ``vth_mant << 6``.
* Per connection: sign mode from the weights' signs (excitatory, inhibitory or mixed), the smallest
  weight exponent whose range holds the largest weight, stored weights rounded to the nearest
  legal value, then the fewest weight bits that hold them exactly.

Not supported by the family (CompileError naming the node, the rule and the fix): AdaptiveLIF,
Threshold, ``reset="subtract"``, ``reset="v_reset"`` with ``v_reset != 0``, connections in series,
generic connections that legalize should have lowered (Conv, pooling, Scale), readouts feeding
synapses, delays above ``synapse.delay_max``.

Timing: native synapses add one step where the float graph had an instantaneous connection (see
``docs/architecture.md``, timing convention); a float Delay of d >= 1 keeps its timing exactly.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ir.errors import CompileError, NmcWarning
from ir.graph import Graph, GraphBuilder, Stage, unique_name
from ir.native import loihi as native
from ir.native.loihi import LoihiCompartment, LoihiDense, LoihiSparse
from ir.nodes import Node, Ref
from nmc.passes import record
from nmc.passes.quantize import QuantizeOptions, register_quantizer
from nmc.passes.quantize.report import (
    QuantReport,
    _norm,
    _num,
    connection_stats,
    population_stats,
)

SPIKING = ("IF", "LIF", "CubaLIF")
READOUTS = ("LI", "CubaLI", "Integrator")
SYNAPTIC = ("CubaLIF", "CubaLI")
LEAKY = ("LIF", "CubaLIF", "LI", "CubaLI")
KEPT = ("Input", "Output", "Flatten")
READOUT_HORIZON_STEPS = 1000
"""Ours: without calibration data, a non-leaky readout (Integrator) is scaled so that it can sum
its worst-case drive for this many steps before v saturates."""

V_BIT_COST = 0.1
"""Ours: the value of one bit of voltage resolution relative to one bit of weight resolution when
aligning the scale to the weights (:func:`_alignment`)."""

_UNSUPPORTED = {
    "AdaptiveLIF": "Loihi 1 compartments have no threshold adaptation in nmc's loihi family; "
                   "use LIF (drop the adaptation) or a target family that has it",
    "Threshold": "Loihi compartments always keep part of v (dv <= 4095 keeps 1/4096 of it), so a "
                 "memoryless threshold unit has no exact equivalent; replace it by LIF with "
                 "tau_mem much shorter than dt",
}


# ------------------------------------------------------------------------------------------
# Limits from the profile
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Limits:
    """The numbers the quantizer needs, all read from the target profile (and the datapath)."""

    weight_bits: int
    weight_exp_min: int
    weight_exp_max: int
    decay_one: int
    vth_max: int
    bias_mant_min: int
    bias_mant_max: int
    bias_exp_max: int
    v_max: int
    delay_max: int
    act_scale: int

    @classmethod
    def from_profile(cls, profile, opts: QuantizeOptions) -> Limits:
        wb = int(profile.get("widths.weight"))
        if opts.weight_bits is not None:
            wb = min(wb, int(opts.weight_bits))
        bm = int(profile.get("widths.bias_mant"))
        return cls(
            weight_bits=wb,
            weight_exp_min=int(profile.get("widths.weight_exp_min")),
            weight_exp_max=int(profile.get("widths.weight_exp_max")),
            decay_one=1 << int(profile.get("widths.decay")),
            vth_max=(1 << int(profile.get("widths.vth_mant"))) - 1,
            bias_mant_min=-(1 << (bm - 1)),
            bias_mant_max=(1 << (bm - 1)) - 1,
            bias_exp_max=(1 << int(profile.get("widths.bias_exp"))) - 1,
            v_max=(1 << (int(profile.get("widths.v")) - 1)) - 1,
            delay_max=int(profile.get("synapse.delay_max")),
            act_scale=1 << native.ACT_SHIFT,
        )


def legal_range(sign_mode: str, nwb: int) -> tuple[int, int, int]:
    """(lowest, highest legal stored weight, step) for a sign mode and weight bits."""
    top = (1 << native.WEIGHT_BITS) - 1
    step = 1 << (native.WEIGHT_BITS - nwb + (sign_mode == "mixed"))
    hi = (top // step) * step
    if sign_mode == "mixed":
        return -(top + 1), hi, step
    if sign_mode == "excitatory":
        return 0, hi, step
    return -hi, 0, step


class _Scratch:
    """Work arrays reused from one connection to the next of a quantize run: a fresh array the
    size of a chip-scale weight block costs a page fault per 4 KiB when it is first written,
    about as much time as the arithmetic on it. One array per name is kept (the last shape)."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        a = self.arrays.get(name)
        if a is None or a.shape != shape or a.dtype != dtype:
            a = self.arrays[name] = np.empty(shape, dtype)
        return a


# ------------------------------------------------------------------------------------------
# Graph analysis: chains source -> [Delay] -> [Dense|Sparse] -> [Delay] -> neuron
# ------------------------------------------------------------------------------------------
@dataclass
class Chain:
    """One input path of a population: ``source`` -> (delays) -> ``conn`` -> (delays) -> target."""

    source: str
    target: str
    conn: Node | None
    pre: list[Node] = field(default_factory=list)  # Delays between source and conn
    post: list[Node] = field(default_factory=list)  # Delays between conn and target
    names: list[str] = field(default_factory=list)  # the native node(s) made from it

    @property
    def folded(self) -> list[str]:
        return [n.name for n in self.pre] + ([self.conn.name] if self.conn else []) + \
            [n.name for n in self.post]


def _single_pred(graph: Graph, name: str) -> str:
    preds = graph.predecessors(name)
    if len(preds) != 1:
        node = graph.node(name)
        raise CompileError(
            f"{node.kind} {name}: has {len(preds)} inputs, expected exactly 1; check the graph "
            "with `nmc check`"
        )
    return preds[0]


def _trace(graph: Graph, first: str, target: str) -> Chain:
    conn: Node | None = None
    pre: list[Node] = []
    post: list[Node] = []
    cur = first
    while True:
        node = graph.node(cur)
        if node.kind == "Delay":
            (pre if conn is not None else post).insert(0, node)
            cur = _single_pred(graph, cur)
        elif node.kind in ("Dense", "Sparse"):
            if conn is not None:
                raise CompileError(
                    f"{node.kind} {cur} feeds {conn.kind} {conn.name} directly (two connections in "
                    f"series on the way to population {target}); the loihi family needs a "
                    "population between connections: multiply the weight matrices or insert neurons"
                )
            conn = node
            cur = _single_pred(graph, cur)
        elif node.kind in ("Input", "Flatten") or node.category == "neuron":
            src = graph.node(cur)
            if src.category == "neuron" and (src.kind in READOUTS or getattr(src, "readout", False)):
                raise CompileError(
                    f"population {cur} ({src.kind}) is a non-spiking readout but feeds population "
                    f"{target}; Loihi synapses carry spikes only: make {cur} a spiking neuron "
                    "(IF/LIF) or use it only as an output"
                )
            return Chain(source=cur, target=target, conn=conn, pre=pre, post=post)
        else:
            raise CompileError(
                f"{node.kind} {cur} (on the way to population {target}) has no Loihi lowering; "
                "run the legalize pass first (it lowers Conv, pooling and Scale to Sparse)"
            )


def _flat_param(graph: Graph, node: Node, fname: str) -> np.ndarray:
    return np.asarray(graph.param(node, fname), dtype=np.float64).reshape(-1)


def _delay_vector(graph: Graph, delays: list[Node], n: int) -> np.ndarray:
    total = np.zeros(n, np.int64)
    for d in delays:
        total = total + np.asarray(graph.param(d, "delay"), np.float64).reshape(-1).astype(np.int64)
    return total


def _coo(graph: Graph, chain: Chain, n_src: int, n_tgt: int
         ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray, np.ndarray | None, bool]:
    """(rows, cols, values, bias or None, dense?) of a chain's connection (identity if none).

    A Dense connection gives ``rows = cols = None`` and its (out, in) weight matrix as
    ``values`` (entry ``[r, c]`` is the synapse ``c -> r``, in C order as ``np.indices`` would
    list it); everything below computes on it the same values as on the triplets."""
    c = chain.conn
    if c is None:
        if n_src != n_tgt:
            raise CompileError(
                f"{chain.source} -> {chain.target}: a direct edge needs equal sizes "
                f"({n_src} != {n_tgt}); insert a Dense or Sparse connection"
            )
        idx = np.arange(n_src)
        return idx, idx, np.ones(n_src), None, False
    bias = graph.const(c.bias).astype(np.float64).reshape(-1) if c.bias is not None else None
    if c.kind == "Dense":
        # the (out, in) matrix as stored (no float64 copy, no index arrays: at chip size those
        # were 24 bytes per synapse for the whole network); rows and cols are implicit (None)
        w = np.asarray(graph.const(c.weight)).reshape(c.out_features, c.in_features)
        if w.dtype.kind != "f":
            w = w.astype(np.float64)
        return None, None, w, bias, True
    return (np.asarray(graph.const(c.rows), np.int64).ravel(),
            np.asarray(graph.const(c.cols), np.int64).ravel(),
            np.asarray(graph.const(c.values), np.float64).ravel(), bias, False)


# ------------------------------------------------------------------------------------------
# Populations
# ------------------------------------------------------------------------------------------
@dataclass
class Pop:
    """Float parameters of one population and the integer decisions taken for it."""

    node: Node
    n: int
    du: np.ndarray
    dv: np.ndarray
    a_q: np.ndarray  # realised voltage decay factor
    b_q: np.ndarray  # realised current decay factor
    gain: np.ndarray  # u increment (float v units) per unit of float input current
    bias_gain: np.ndarray  # v increment per step per unit of constant current
    leak_bias: np.ndarray  # v increment per step from v_leak
    thr: np.ndarray | None
    chains: list[Chain] = field(default_factory=list)
    scale: float = 0.0
    drive: float = 0.0  # bound on |u| (float v units)
    bias_float: np.ndarray | None = None  # bias in float v units per step
    binding: str = ""  # which limit set the scale
    notes: list[str] = field(default_factory=list)
    gscale: float | None = None  # median |gain| * scale / act_scale (report), once per population

    @property
    def readout(self) -> bool:
        return self.thr is None


def _check_neuron(node: Node) -> None:
    if node.kind in _UNSUPPORTED:
        raise CompileError(f"population {node.name}: kind {node.kind} is not supported by the "
                           f"loihi family: {_UNSUPPORTED[node.kind]}")
    if node.kind not in SPIKING + READOUTS:
        raise CompileError(f"population {node.name}: kind {node.kind} has no Loihi lowering")
    reset = getattr(node, "reset", "zero")
    if reset == "subtract":
        raise CompileError(
            f"population {node.name} ({node.kind}): reset = 'subtract' is not supported by the "
            "loihi family: a compartment resets v to 0 after a spike (hardware.md 2.2); use "
            "reset = 'zero' (re-convert or retrain with it)"
        )
    if reset == "v_reset":
        vr = node.v_reset
        if isinstance(vr, Ref) or float(vr) != 0.0:
            raise CompileError(
                f"population {node.name} ({node.kind}): reset = 'v_reset' with v_reset = {vr} is "
                "not supported by the loihi family: a compartment resets v to 0; use v_reset = 0 "
                "(or shift v_leak and v_threshold by -v_reset)"
            )


def _decays(graph: Graph, node: Node, lim: Limits, notes: list[str]) -> tuple:
    """Integer du, dv (per neuron) and the realised float decay factors."""
    one = lim.decay_one
    n = node.size
    if node.kind in LEAKY:
        a = np.exp(-graph.dt / _flat_param(graph, node, "tau_mem"))
        dv = np.rint(one * (1.0 - a)).astype(np.int64)
        if np.any(dv > one - 1):
            notes.append(f"tau_mem shorter than Loihi can hold: dv clipped to {one - 1}")
        if np.any((dv == 0) & (a < 1.0)):
            notes.append("tau_mem longer than Loihi can hold: dv = 0 (no leak)")
        dv = np.clip(dv, 0, one - 1)
    else:
        dv = np.zeros(n, np.int64)  # IF, Integrator: no leak
    if node.kind in SYNAPTIC:
        b = np.exp(-graph.dt / _flat_param(graph, node, "tau_syn"))
        # Loihi 1 decays the current by 4096 - (du + 1): hence the - 1.
        du = np.rint(one * (1.0 - b)).astype(np.int64) - 1
        if np.any(du < 0):
            notes.append(f"tau_syn longer than Loihi can hold: du = 0 (current keeps "
                         f"{one - 1}/{one} per step)")
        du = np.clip(du, 0, one - 1)
    else:
        du = np.full(n, one - 1, np.int64)  # current stage holds no memory: u = a << 6
    a_q = (one - dv) / one
    b_q = (one - du - 1) / one
    return du, dv, a_q, b_q


def _pop(graph: Graph, node: Node, lim: Limits) -> Pop:
    _check_neuron(node)
    notes: list[str] = []
    du, dv, a_q, b_q = _decays(graph, node, lim, notes)
    n = node.size
    r = _flat_param(graph, node, "r")
    w_in = _flat_param(graph, node, "w_in") if node.kind in SYNAPTIC else np.ones(n)
    if node.kind in LEAKY:
        # The realised leak (1 - a_q) matches the float steady state; where dv rounds to 0 (no
        # leak at all) there is no steady state and the float step gain (1 - a) is used.
        a = np.exp(-graph.dt / _flat_param(graph, node, "tau_mem"))
        one_minus_a = np.where(dv > 0, 1.0 - a_q, 1.0 - a)
        vgain = one_minus_a * r
        leak = one_minus_a * _flat_param(graph, node, "v_leak")
    else:
        vgain = r
        leak = np.zeros(n)
    if node.kind in SYNAPTIC:
        gain, bias_gain = vgain * (1.0 - b_q) * w_in, vgain * w_in
    else:
        gain, bias_gain = vgain, vgain
    thr = _flat_param(graph, node, "v_threshold") if node.kind in SPIKING else None
    return Pop(node=node, n=n, du=du, dv=dv, a_q=a_q, b_q=b_q, gain=gain, bias_gain=bias_gain,
               leak_bias=leak, thr=thr, notes=notes)


# ------------------------------------------------------------------------------------------
# The quantizer
# ------------------------------------------------------------------------------------------
@register_quantizer("loihi")
def quantize_loihi(graph: Graph, profile, opts: QuantizeOptions) -> tuple[Graph, QuantReport]:
    """Lower a float graph for a loihi-family profile (see the module doc for every rule)."""
    lim = Limits.from_profile(profile, opts)
    report = QuantReport(target=profile.name, family=profile.family,
                         calibrated=opts.calibration is not None)
    pops: dict[str, Pop] = {}
    for node in graph.nodes.values():
        if node.category == "neuron" and node.family == "generic":
            pops[node.name] = _pop(graph, node, lim)
        elif node.family not in ("generic", "loihi"):
            raise CompileError(f"node {node.name}: native {node.family} kind {node.kind} cannot be "
                               f"compiled for {profile.name} (family loihi)")
        elif node.family == "generic" and node.kind not in KEPT + ("Dense", "Sparse", "Delay"):
            if node.category == "connection":
                raise CompileError(f"{node.kind} {node.name}: run the legalize pass first (it "
                                   "lowers Conv, pooling and Scale to Sparse)")
    used: set[str] = set()
    for name, p in pops.items():
        for src in graph.predecessors(name):
            ch = _trace(graph, src, name)
            p.chains.append(ch)
            used.update(ch.folded)
    for node in graph.nodes.values():
        if node.kind in ("Dense", "Sparse", "Delay") and node.name not in used:
            succ = graph.successors(node.name)
            raise CompileError(
                f"{node.kind} {node.name} does not lead to a population (it feeds "
                f"{', '.join(succ) or 'nothing'}); on Loihi only spikes and readout voltages "
                "can be observed: connect it to a neuron population"
            )
    # Connection matrices per chain.
    mats: dict[int, tuple] = {}
    for p in pops.values():
        for ch in p.chains:
            n_src = graph.node(ch.source).size
            mats[id(ch)] = _coo(graph, ch, n_src, p.n)
    scratch = _Scratch()
    for p in pops.values():
        for ch in p.chains:
            mats[id(ch)] = (*mats[id(ch)], _chain_stats(p, mats[id(ch)], lim, scratch))
    drive = _drive_bounds(graph, pops, mats, opts, lim)
    for name, p in pops.items():
        p.drive = drive[name]
        p.bias_float = _pop_bias_float(p, mats)
        _choose_scale(p, mats, lim)
    # Build the native graph.
    b = GraphBuilder(graph.name, dt=graph.dt, stage=Stage.QUANTIZED, attrs=graph.attrs)
    conn_uses: dict[str, int] = {}
    for p in pops.values():
        for ch in p.chains:
            if ch.conn is not None:
                conn_uses[ch.conn.name] = conn_uses.get(ch.conn.name, 0) + 1
    taken = set(graph.nodes)
    order = {n: i for i, n in enumerate(graph.nodes)}
    staged: list[tuple[float, int, Node, list[str]]] = []
    decisions_c: dict[str, Any] = {}
    seq = 0
    for p in pops.values():
        for ch in p.chains:
            mat = mats[id(ch)]
            for node, srcs, info, stats in _lower_chain(graph, b, p, ch, mat, lim, conn_uses,
                                                         taken, scratch):
                key = order[ch.conn.name] if ch.conn is not None else order[p.node.name] - 0.5
                staged.append((key, seq, node, srcs))
                seq += 1
                decisions_c[node.name] = info
                if stats is not None:
                    report.connections.append(stats)
    decisions_p: dict[str, Any] = {}
    for name, p in pops.items():
        node, info = _lower_pop(graph, b, p, lim)
        staged.append((order[name], seq, node, [n for ch in p.chains for n in ch.names]))
        seq += 1
        decisions_p[name] = info
        report.notes.extend(f"population {name}: {n}" for n in p.notes)
    for name, node in graph.nodes.items():
        if node.kind in KEPT or node.family == "loihi":
            for _, ref in node.refs():
                b.constants[ref.name] = graph.const(ref)
            staged.append((order[name], seq, node, graph.predecessors(name)))
            seq += 1
    staged.sort(key=lambda x: (x[0], x[1]))
    for _, _, node, _ in staged:
        b.add(node)
    for _, _, node, srcs in staged:
        for s in srcs:
            b.connect(s, node.name)
    out = b.build()
    shifted = [c for c, info in decisions_c.items() if info["float_delay"] == 0]
    if shifted:
        report.notes.append(
            f"{len(shifted)} connection(s) were instantaneous in the float graph and take 1 step "
            "on Loihi (native delay >= 1): spikes of the quantized graph come later by one step "
            "per such layer"
        )
    decisions = dict(
        populations=decisions_p, connections=decisions_c,
        options=dict(percentile=opts.percentile, weight_bits=lim.weight_bits,
                     calibrated=opts.calibration is not None),
    )
    out = out.replace(attrs=record(dict(out.attrs, target=profile.name), "quantize", decisions))
    rows = {name: _pop_row(name, p, decisions_p[name]) for name, p in pops.items()}
    if opts.calibration is not None:
        _calibration_report(out, pops, opts, rows)
    report.populations.extend(rows.values())
    for name, p in pops.items():
        if not p.readout:
            vth = np.asarray(decisions_p[name]["vth_mant_max"])
            if vth < 256:
                msg = (f"population {name}: threshold mantissa only {int(vth)} (< 8 bits), the "
                       f"scale being limited by {p.binding}; pass calibration data "
                       "(QuantizeOptions.calibration) for data-aware scaling")
                report.notes.append(msg)
                warnings.warn(msg, NmcWarning, stacklevel=2)
    return out, report


def _drive_bounds(graph: Graph, pops: dict[str, Pop], mats: dict, opts: QuantizeOptions,
                  lim: Limits) -> dict[str, float]:
    """Per population, a bound on |u| in float v units (see module doc, Scale)."""
    out: dict[str, float] = {}
    for name, p in pops.items():  # worst case: every input spikes at once, every step
        pos = np.zeros(p.n)
        neg = np.zeros(p.n)
        for ch in p.chains:
            _, _, _, bias, _, st = mats[id(ch)]
            pos += st["pos"]
            neg += st["neg"]
            if bias is not None:
                pos += np.maximum(bias, 0)
                neg += np.maximum(-bias, 0)
        step = np.abs(p.gain) * np.maximum(pos, neg)
        u = step / np.where(p.b_q < 1, 1 - p.b_q, 1.0)  # steady state of the current filter
        if p.readout:
            if p.node.kind == "Integrator":
                u = u * READOUT_HORIZON_STEPS + np.abs(p.leak_bias)
            else:
                u = (u + np.abs(p.leak_bias)) / np.maximum(1 - p.a_q, 1.0 / lim.decay_one)
        out[name] = float(u.max()) if u.size else 0.0
    if opts.calibration is not None:
        out.update(_calibrated_drive(graph, pops, opts))
    return out


def _calibrated_drive(graph: Graph, pops: dict[str, Pop], opts: QuantizeOptions
                      ) -> dict[str, float]:
    """Data-aware bound: the ``opts.percentile``-th percentile of |u| (|v| for readouts) over
    samples, steps and neurons of each population in the float network on the calibration data
    (populations without inputs keep the worst-case bound)."""
    from ir.interp_float import run_float  # written by another part of the project

    probes = sorted({s for name in pops for s in graph.predecessors(name)})
    res = run_float(graph, opts.calibration, probes=probes)
    out: dict[str, float] = {}
    for name, p in pops.items():
        preds = graph.predecessors(name)
        if not preds:
            continue
        x = None
        for s in preds:
            y = np.asarray(res.probes[s]["out"], np.float64)
            y = y.reshape(y.shape[0], y.shape[1], -1)
            x = y if x is None else x + y
        bsz, t_len, _ = x.shape
        u = np.zeros((bsz, p.n))
        v = np.zeros((bsz, p.n))
        trace = np.empty((bsz, t_len, p.n))
        for t in range(t_len):
            if p.node.kind in SYNAPTIC:
                u = p.b_q * u + p.gain * x[:, t]
            else:
                u = p.gain * x[:, t]
            if p.readout:
                v = p.a_q * v + u + p.leak_bias
                trace[:, t] = v
            else:
                trace[:, t] = u
        out[name] = float(np.percentile(np.abs(trace), opts.percentile)) if trace.size else 0.0
    return out


def _choose_scale(p: Pop, mats: dict, lim: Limits) -> None:
    """The population's scale s (integer v units per float v unit); see module doc."""
    bounds: dict[str, float] = {}
    if not p.readout:
        tmax = float(p.thr.max())
        bounds["threshold"] = lim.act_scale * lim.vth_max / tmax
        bounds["v_range"] = lim.v_max / (tmax + p.drive)
    elif p.drive > 0:
        bounds["v_range"] = lim.v_max / p.drive
    ratios: list[tuple[float, int]] = []  # per chain: largest |weight| / legal limit, count
    for ch in p.chains:
        st = mats[id(ch)][5]
        lo, hi, _ = legal_range(st["mode"], lim.weight_bits)
        r = max(st["eff_max"] / hi if hi else 0.0, -st["eff_min"] / -lo if lo else 0.0)
        if r > 0:
            bounds[f"weights {ch.conn.name if ch.conn else ch.source}"] = (
                (1 << lim.weight_exp_max) / r)
            ratios.append((r, st["nnz"]))
    bias = np.abs(p.bias_float)
    if bias.size and bias.max() > 0:
        bounds["bias"] = lim.bias_mant_max * (1 << lim.bias_exp_max) / float(bias.max())
    s = min(bounds.values()) if bounds else float(lim.act_scale)
    s *= _alignment(s, ratios, lim)
    if not p.readout and np.all(p.thr == p.thr[0]):
        # Land the (uniform) threshold exactly on vth_mant << 6.
        vth = math.floor(s * float(p.thr[0]) / lim.act_scale)
        if vth < 1:
            raise CompileError(
                f"population {p.node.name}: v_threshold = {p.thr[0]} cannot be represented: the "
                f"scale the weights and drive allow ({s:.4g}) puts it below 1 << 6; lower the "
                "largest weights or the bias relative to the threshold"
            )
        s = vth * lim.act_scale / float(p.thr[0])
    p.scale = s
    p.binding = min(bounds, key=bounds.get) if bounds else "default"


def _alignment(s: float, ratios: list[tuple[float, int]], lim: Limits) -> float:
    """A factor f in (1/2, 1] for the scale so that the largest weight of an incoming connection
    lands exactly on its legal limit at some exponent (weight exponents are powers of two, so
    without this up to one bit of weight range is lost). Among the candidates (one per connection,
    and f = 1) the one that maximises the weight-count-weighted bits used is taken, where each bit
    of voltage resolution given up (log2 f) costs :data:`V_BIT_COST` of a weight bit: the voltage
    has 24 bits, weights only 8, so weight bits are worth more."""
    if not ratios:
        return 1.0
    n_total = sum(n for _, n in ratios)

    def used_bits(f: float) -> float:
        total = V_BIT_COST * n_total * math.log2(f)
        for r, n in ratios:
            x = f * s * r  # 2**e must be >= x
            e = min(max(math.ceil(math.log2(x) - 1e-12), lim.weight_exp_min), lim.weight_exp_max)
            total += n * math.log2(min(x / 2.0**e, 1.0))
        return total

    cands = [1.0] + [2.0 ** math.floor(math.log2(s * r)) / (s * r) for r, _ in ratios]
    return max(cands, key=lambda f: (used_bits(f), f))


def _chain_stats(p: Pop, mat: tuple, lim: Limits, scratch: _Scratch | None = None
                 ) -> dict[str, Any]:
    """What the scale needs of one chain's weights, in one look at them: per target neuron the
    sums of the positive and of the negative weights (``pos``, ``neg``, in float64 and in
    synapse order, as ``np.bincount`` adds them), the sign mode, the non-zero count, and the
    extremes of ``gain * w / act_scale`` (``eff_*``, with 0 included).

    A dense matrix is summed along its rows in synapse order (:func:`_row_sums`), and the
    extremes come from each row's extremes: rounding a product or quotient is monotone, so the
    largest ``gain[r] * w / act`` of row ``r`` is the one of its largest (``gain[r] >= 0``) or
    smallest weight."""
    rows, _, vals, _, _ = mat
    if rows is None:
        n_out, n_in = vals.shape
        if vals.size:
            pos, neg = _row_sums(vals, scratch or _Scratch())
            r_max = vals.max(axis=1).astype(np.float64)
            r_min = vals.min(axis=1).astype(np.float64)
            up = p.gain >= 0
            e_max = p.gain * np.where(up, r_max, r_min) / lim.act_scale
            e_min = p.gain * np.where(up, r_min, r_max) / lim.act_scale
            w_lo, w_hi = float(r_min.min()), float(r_max.max())
        else:
            pos = neg = np.zeros(n_out)
            e_max = e_min = np.zeros(0)
            w_lo = w_hi = 0.0
        nnz = int(np.count_nonzero(vals))
    else:
        pos = np.bincount(rows, weights=np.maximum(vals, 0), minlength=p.n)
        neg = np.bincount(rows, weights=np.maximum(-vals, 0), minlength=p.n)
        e_max = e_min = p.gain[rows] * vals / lim.act_scale  # stored units at s = 1
        nz = vals[vals != 0]
        w_lo, w_hi = (float(nz.min()), float(nz.max())) if nz.size else (0.0, 0.0)
        nnz = int(nz.size)
    mode = "excitatory" if not w_lo < 0 else ("inhibitory" if not w_hi > 0 else "mixed")
    return dict(pos=pos, neg=neg, nnz=nnz, mode=mode, eff_max=float(e_max.max(initial=0)),
                eff_min=float(e_min.min(initial=0)))


def _row_sums(w: np.ndarray, scratch: _Scratch) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``w`` (out, in), the float64 sums of its positive parts and of its negative
    parts' magnitudes, added one synapse after the other in column order: bit for bit what
    ``np.bincount(rows, weights)`` gives on the C-order triplets (``w.sum(axis=1)`` would add
    pairwise and round differently). The transposed copy is reduced along its first axis, which
    numpy does row after row into the output; with fewer than 8 rows ``cumsum`` (sequential by
    definition, but slower) is used instead."""
    n_out, n_in = w.shape
    if n_out < 8:
        return (np.cumsum(np.maximum(w, 0), axis=1, dtype=np.float64)[:, -1].copy(),
                np.cumsum(np.maximum(-w, 0), axis=1, dtype=np.float64)[:, -1].copy())
    x = scratch.get("sum", (n_in, n_out), np.float64)  # (in, out), C order
    np.copyto(x, w.T)
    t = scratch.get("sum_part", (n_in, n_out), np.float64)
    np.maximum(x, 0, out=t)
    pos = np.add.reduce(t, axis=0)
    np.negative(x, out=x)
    np.maximum(x, 0, out=t)
    return pos, np.add.reduce(t, axis=0)


def sign_mode(vals: np.ndarray) -> str:
    """Excitatory when no weight is negative, inhibitory when none is positive, else mixed."""
    nz = vals[vals != 0]
    if nz.size == 0 or nz.min() > 0:
        return "excitatory"
    if nz.max() < 0:
        return "inhibitory"
    return "mixed"


def _pop_bias_float(p: Pop, mats: dict) -> np.ndarray:
    """The population's bias in float v units per step (connection biases + v_leak)."""
    total = np.zeros(p.n)
    for ch in p.chains:
        bias = mats[id(ch)][3]
        if bias is not None:
            total = total + bias
    return p.bias_gain * total + p.leak_bias


def _param(b: GraphBuilder, name: str, arr: np.ndarray) -> int | Ref:
    """A scalar when all neurons share the value, else a constant in the pool."""
    arr = np.asarray(arr, np.int64).reshape(-1)
    if arr.size and np.all(arr == arr[0]):
        return int(arr[0])
    return b.const(name, arr.astype(np.int32))


def _lower_pop(graph: Graph, b: GraphBuilder, p: Pop, lim: Limits) -> tuple[Node, dict]:
    node = p.node
    s = p.scale
    bias_int = s * p.bias_float
    # Bias: per neuron the smallest exponent whose mantissa range holds the value.
    exp = np.full(p.n, lim.bias_exp_max, np.int64)
    for e in range(lim.bias_exp_max, -1, -1):
        exp = np.where(np.abs(np.rint(bias_int / (1 << e))) <= lim.bias_mant_max, e, exp)
    mant_ideal = np.rint(bias_int / (1 << exp))
    mant = np.clip(mant_ideal, lim.bias_mant_min, lim.bias_mant_max).astype(np.int64)
    if np.any(mant != mant_ideal):
        p.notes.append(f"bias clipped for {int(np.sum(mant != mant_ideal))} neuron(s)")
    if p.readout:
        vth = np.zeros(p.n, np.int64)
    else:
        vth = np.clip(np.rint(p.thr * s / lim.act_scale), 0, lim.vth_max).astype(np.int64)
        if np.any(vth < 1):
            raise CompileError(
                f"population {node.name}: v_threshold {float(p.thr.min())} rounds to a threshold "
                "mantissa of 0 at the chosen scale; its thresholds span too wide a range"
            )
    q = LoihiCompartment(
        name=node.name, shape=node.shape,
        du=_param(b, f"{node.name}.du", p.du), dv=_param(b, f"{node.name}.dv", p.dv),
        vth_mant=_param(b, f"{node.name}.vth_mant", vth),
        bias_mant=_param(b, f"{node.name}.bias_mant", mant),
        bias_exp=_param(b, f"{node.name}.bias_exp", exp),
        refractory=0, readout=p.readout,
    )
    info = dict(kind=node.kind, scale=float(f"{s:.9g}"), limited_by=p.binding,
                drive_bound=float(f"{p.drive:.6g}"),
                du=_span(p.du), dv=_span(p.dv),
                vth_mant_max=int(vth.max()) if vth.size else 0,
                vth_mant=_span(vth) if not p.readout else None,
                readout=p.readout)
    return q, info


def _lower_chain(graph: Graph, b: GraphBuilder, p: Pop, ch: Chain, mat: tuple, lim: Limits,
                 conn_uses: dict[str, int], taken: set[str], scratch: _Scratch | None = None):
    """Yield (native node, sources, decisions, report row) for one chain."""
    scratch = scratch or _Scratch()
    rows, cols, vals, _, dense, st = mat
    n_src = graph.node(ch.source).size
    matrix = rows is None  # a Dense connection's (out, in) matrix, rows and cols implicit
    if not matrix:
        d = _delay_vector(graph, ch.pre, n_src)[cols] + _delay_vector(graph, ch.post, p.n)[rows]
    elif ch.pre or ch.post:
        d = (_delay_vector(graph, ch.pre, n_src)[None, :]
             + _delay_vector(graph, ch.post, p.n)[:, None]).reshape(-1)
    else:
        d = None  # no Delay on the way: every synapse has float delay 0
    if ch.conn is not None:
        base = ch.conn.name if conn_uses[ch.conn.name] == 1 else f"{ch.conn.name}_{p.node.name}"
    else:
        base = f"{ch.source}_to_{p.node.name}"
    # np.unique sorts in C; a Python set over every synapse was a hot spot at chip size
    if d is None:
        groups = [1]
    else:
        groups = np.unique(np.maximum(d, 1)).tolist() if d.size else [1]
    if groups and groups[-1] > lim.delay_max:
        where = ", ".join(ch.folded) or f"{ch.source} -> {p.node.name}"
        raise CompileError(
            f"connection {where}: delay {groups[-1]} > {lim.delay_max} steps (synapse.delay_max "
            "of the target); shorten the delay or relay the spikes through an extra population"
        )
    # Weight encoding, shared by all delay groups of the chain (one scale per connection).
    # The arithmetic is element by element, so on a matrix the per-row factors broadcast and
    # every value is the one the triplets would give; temporaries are reused in place.
    gs = p.scale * p.gain  # p.scale * p.gain[rows], per target neuron
    if matrix:
        ideal = np.multiply(gs[:, None], vals, dtype=np.float64,
                            out=scratch.get("ideal", vals.shape, np.float64))
    else:
        ideal = gs[rows] * vals
    ideal /= lim.act_scale
    mode = st["mode"]
    lo, hi, step = legal_range(mode, lim.weight_bits)
    exp = lim.weight_exp_max
    # Scaling by a power of two is exact in floating point and monotone, so the extremes of the
    # scaled weights are the scaled extremes: one pass over the weights instead of one per exponent.
    i_max, i_min = (float(ideal.max()), float(ideal.min())) if ideal.size else (0.0, 0.0)
    for e in range(lim.weight_exp_min, lim.weight_exp_max + 1):
        x_max = i_max / (1 << e) if e >= 0 else i_max * (1 << -e)
        x_min = i_min / (1 << e) if e >= 0 else i_min * (1 << -e)
        if ideal.size == 0 or (x_max <= hi + step / 2 and x_min >= lo - step / 2):
            exp = e
            break
    scaled = ideal  # in place: ideal is not needed any more
    if exp >= 0:
        scaled /= (1 << exp)
    else:
        scaled *= (1 << -exp)
    q = np.divide(scaled, step, out=scratch.get("q", scaled.shape, np.float64))
    np.rint(q, out=q)
    q *= step
    np.clip(q, lo, hi, out=q)
    w_int = scratch.get("w_int", q.shape, np.int64)
    np.copyto(w_int, q, casting="unsafe")  # q.astype(np.int64): whole numbers already
    del q
    nwb = lim.weight_bits
    # legalize_weights at k bits drops the low ``WEIGHT_BITS - k + (mode == "mixed")`` bits, so
    # w_int (already clipped to the legal range) is legal at k bits exactly when every weight is
    # a multiple of 2**that: the OR of all weights (two's complement) has those bits clear. One
    # pass over the weights instead of one legalize_weights per candidate width. (k =
    # weight_bits always qualifies: w_int is a multiple of ``step``.)
    from ir.native.loihi import WEIGHT_BITS

    low = int(np.bitwise_or.reduce(w_int, axis=None)) if w_int.size else 0
    for k in range(1, lim.weight_bits + 1):
        drop = WEIGHT_BITS - k + (mode == "mixed")
        if drop <= 0 or not low & ((1 << drop) - 1):
            nwb = k
            break
    unit = (2.0 ** exp) * lim.act_scale / gs  # per target neuron
    # A connection used by one chain keeps its name (the generic node is dropped); others get a
    # fresh one.
    reuse = ch.conn is not None and base == ch.conn.name
    name0 = base if reuse else unique_name(taken, base)
    taken.add(name0)
    if p.gscale is None:  # the same for every chain into p
        p.gscale = float(np.median(p.scale * np.abs(p.gain) / lim.act_scale))
    gscale = p.gscale
    extra = dict(
        scale=gscale / (2.0 ** exp), kind="LoihiDense" if dense and len(groups) == 1 else
        "LoihiSparse", target=p.node.name, bits=nwb, weight_exp=exp, sign_mode=mode,
        delay=groups[0] if len(groups) == 1 else f"{groups[0]}..{groups[-1]}",
    )
    if matrix:
        stats = _matrix_stats(name0, vals, w_int, unit, scaled, lo=lo - step / 2,
                              hi=hi + step / 2, nnz=st["nnz"], scratch=scratch, **extra)
    else:
        stats = connection_stats(name0, vals, w_int, w_int * unit[rows], ideal=scaled,
                                 lo=lo - step / 2, hi=hi + step / 2, **extra)
    del scaled, ideal
    if matrix and len(groups) > 1:  # per-synapse delays: split into sparse connections
        rows, cols = (a.ravel() for a in np.indices(vals.shape))
    for gi, dd in enumerate(groups):
        name = name0 if gi == 0 else unique_name(taken, f"{name0}_d{dd}")
        taken.add(name)
        common = dict(name=name, in_features=n_src, out_features=p.n, weight_exp=int(exp),
                      num_weight_bits=int(nwb), sign_mode=mode, delay=int(dd))
        if dense and len(groups) == 1:
            w = w_int.reshape(p.n, n_src).astype(np.int16)
            w.flags.writeable = False  # frozen already: the graph keeps it without a copy
            node = LoihiDense(weight=b.const(f"{name}.weight", w), **common)
        else:
            sel = np.maximum(d, 1) == dd if d is not None and d.size else np.zeros(0, bool)
            if d is None:  # one group of every synapse (not reached: that is a LoihiDense)
                sel = np.ones(w_int.size, bool)
            node = LoihiSparse(rows=b.const(f"{name}.rows", rows[sel].astype(np.int32)),
                               cols=b.const(f"{name}.cols", cols[sel].astype(np.int32)),
                               values=b.const(f"{name}.values",
                                              w_int.reshape(-1)[sel].astype(np.int16)),
                               **common)
        ch.names.append(name)
        fd = int(d.max()) if d is not None and d.size else 0
        info = dict(source=ch.source, target=p.node.name, folded=ch.folded, sign_mode=mode,
                    weight_exp=int(exp), num_weight_bits=int(nwb), delay=int(dd),
                    float_delay=fd)
        yield node, [ch.source], info, stats if gi == 0 else None


def _matrix_stats(name: str, vals: np.ndarray, w_int: np.ndarray, unit: np.ndarray,
                  scaled: np.ndarray, *, lo: float, hi: float, nnz: int, scratch: _Scratch,
                  **extra: Any) -> dict[str, Any]:
    """``connection_stats`` of a dense (out, in) chain (the same dict, with fewer passes): a zero
    float weight gives ``scaled = 0`` (inside ``[lo, hi]``) and ``w_int = 0``, so the clipped
    and rounded-to-zero counts need no mask of the non-zero weights; ``unit`` is per row."""
    if vals.dtype == np.float64:
        w = vals
    else:
        w = scratch.get("w64", vals.shape, np.float64)
        np.copyto(w, vals)
    clipped = int(np.count_nonzero(scaled < lo)) + int(np.count_nonzero(scaled > hi))
    zero = nnz - int(np.count_nonzero(w_int))
    norm = _norm(w)
    back = np.multiply(w_int, unit[:, None], out=scratch.get("back", w.shape, np.float64))
    back -= w
    err = float(_norm(back) / norm) if norm > 0 else 0.0
    n = nnz
    out = dict(name=name, scale=_num(extra.pop("scale")), weights=n,
               clipped_pct=_num(100.0 * clipped / n if n else 0.0),
               zero_pct=_num(100.0 * zero / n if n else 0.0), rel_error=_num(err))
    out.update({k: _num(v) for k, v in extra.items()})
    return out


def _span(values: np.ndarray) -> int | str:
    """One integer, or ``"lo..hi"`` when the neurons differ."""
    lo, hi = int(np.min(values)), int(np.max(values))
    return lo if lo == hi else f"{lo}..{hi}"


def _pop_row(name: str, p: Pop, info: dict) -> dict[str, Any]:
    """The report row of a population (before calibration statistics)."""
    return dict(name=name, kind=p.node.kind, neurons=p.n, scale=p.scale,
                limited_by=p.binding, du=info["du"], dv=info["dv"],
                vth_mant=info["vth_mant"])


def _calibration_report(g: Graph, pops: dict[str, Pop], opts: QuantizeOptions,
                        rows: dict[str, dict]) -> None:
    """Run the quantized graph on the calibration data: never/always-firing neurons, mean rate,
    and how often u wrapped and v saturated (summed over samples and neurons)."""
    from ir.interp_int import run_int

    res = run_int(g, opts.calibration, probes=list(pops))
    for name, p in pops.items():
        pr = res.probes[name]
        if not p.readout:
            st = population_stats(name, pr["out"])
            rows[name].update(never_fire=st["never_fire"], always_fire=st["always_fire"],
                              mean_rate=st["mean_rate"], samples=st["samples"], steps=st["steps"])
        rows[name].update(u_wraps=_final_sum(pr["u_wraps"]),
                          v_saturations=_final_sum(pr["v_saturations"]))


def _final_sum(counts: np.ndarray) -> int:
    """Sum over samples and neurons of a cumulative counter's value at the last step."""
    return int(counts[:, -1].sum()) if counts.shape[1] else 0
