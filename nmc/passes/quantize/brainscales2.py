"""The BrainScaleS-2 quantizer: generic float kinds -> BSS2 neurons (10-bit codes) and synapses
(6-bit unsigned weights on excitatory / inhibitory rows).

Rules (also in ``docs/families.md``; the neuron model is in ``ir/native/brainscales2.py``):

* Neurons. IF, LIF, CubaLIF, Threshold -> spiking ``BSS2Neuron``; LI, CubaLI, Integrator ->
  ``BSS2Neuron`` with ``readout=True`` (the membrane read by the ADC).
* Time constants: ``c_mem = round(1022 (1 - exp(-dt/tau_mem)))`` (IF, Integrator: 0, no leak;
  Threshold: 1022, no memory); ``c_syn = round(1022 (1 - exp(-dt/tau_syn)))`` for CubaLIF/CubaLI,
  else 1022 (an instantaneous synapse). The realised factors ``a = (1022 - c_mem) / 1022`` and
  ``b = (1022 - c_syn) / 1022`` are used for the gains below, so that the steady state for a
  constant input matches the float neuron.
* Voltages. Per population a linear map from float volts to codes: the lowest float voltage of
  interest ``min(0, v_reset, v_leak, v_threshold)`` goes to ``quantize.v_low_code`` and the
  highest threshold to ``quantize.v_high_code`` (profile); the membrane has ``64`` state units
  per code, so ``sigma = 64 (high - low) / (v_max - v_min)`` state units per float volt. A
  readout maps ``[-D, D]`` onto the window, ``D`` the largest membrane value it can reach: the
  worst case (every input spiking every step; an Integrator for ``READOUT_HORIZON`` steps) or,
  with calibration data, the ``opts.percentile``-th percentile of ``|v|`` in the float network.
* Rails. The membrane clips at code 0 and each synaptic current at ``I_MAX``, while the float
  neuron has no bound: a membrane clipped under inhibition recovers too early and the neuron
  fires too often (a tempotron fired ~2x too often). So a spiking population's scale shrinks
  (threshold kept at ``v_high_code``, resting range moved up) until (a) ``F`` float volts below
  ``min(0, v_reset, v_leak)`` lie above code 0, ``F`` the ``(100 - opts.percentile)``-th
  percentile of the float ``v`` with calibration data, else the dip of one volley of every
  inhibitory input (each spike's peak membrane excursion through the synaptic filter, plus a
  negative bias's steady state); and (b) one volley of every input of one sign stays below
  ``I_MAX`` in the current stage (readouts: (b) only). The scale shrinks at most
  ``MAX_SQUEEZE`` times, so that rest-to-threshold keeps enough codes; a note in the report
  names the bound and says when the cap left it uncovered.
* Weights. The float input gain (``(1 - a) r`` for LIF, ``(1 - a) r (1 - b) w_in`` for CubaLIF,
  ``r`` for IF, 1 for Threshold) is folded in: ``J = gain * w * sigma`` state units per spike.
  Per neuron a gain code ``g = clip(ceil(P / 63), 1, 1022)`` with ``P`` the ``opts.percentile``-th
  percentile of the neuron's non-zero ``|J|`` (same ``g`` for both signs); a weight is
  ``round(|J| / g)`` on an excitatory (``J > 0``) or inhibitory row, split into parallel synapses
  of at most 63 each (the first ones full), at most ``synapse.max_parallel`` of them (larger
  weights are clipped, noted in the report).
* Bias (a connection's constant input) -> ``bias = round(gain_dc * bias * sigma)`` state units per
  step (``gain_dc`` = the input gain without the synaptic filter), clipped to
  ``neuron.bias_max``.
* Resets: ``"zero"`` -> ``v_reset`` = code of 0; ``"v_reset"`` -> code of ``v_reset``;
  ``"subtract"`` is not native (the analog reset sets a potential): it becomes reset to the code
  of 0, with a warning (spike counts of strongly driven neurons drop).
* Connections: Dense / Sparse / a direct edge -> ``BSS2Synapses``; Delays fold into
  ``delay = max(1, d)`` (per-element delays that differ split the connection), at most
  ``synapse.delay_max``.

Unsupported (CompileError naming the node, the rule and the fix): AdaptiveLIF, connections in
series, readouts feeding synapses.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ir.errors import CompileError, NmcWarning
from ir.graph import Graph, GraphBuilder, unique_name
from ir.native import brainscales2 as native
from ir.native.brainscales2 import BSS2Neuron, BSS2Synapses
from ir.nodes import Node
from nmc.passes import record
from nmc.passes.quantize import QuantizeOptions, register_quantizer
from nmc.passes.quantize.report import QuantReport, connection_stats
from nmc.passes.quantize.truenorth import (
    Chain,
    build,
    calibration_report,
    collect,
    delay_groups,
    flat,
    int_param,
    span,
)

SPIKING = ("IF", "LIF", "CubaLIF", "Threshold")
READOUTS = ("LI", "CubaLI", "Integrator")
LEAKY = ("LIF", "CubaLIF", "LI", "CubaLI")
SYNAPTIC = ("CubaLIF", "CubaLI")
READOUT_HORIZON = 100
"""Ours: without calibration data an Integrator readout is scaled to sum its worst-case drive
for this many steps before it reaches a rail."""
MAX_SQUEEZE = 16.0
"""Ours: the room made below a spiking population's resting range for inhibition (see
``_voltage_map``) may shrink its voltage scale at most this many times, so that the span from
rest to threshold keeps at least ``(v_high - v_low) / MAX_SQUEEZE`` codes (threshold and reset
codes within a few percent)."""


@dataclass(frozen=True)
class Limits:
    """The numbers the quantizer needs, all from the target profile."""

    code_max: int
    weight_max: int
    max_parallel: int
    bias_max: int
    delay_max: int
    v_low: int
    v_high: int

    @classmethod
    def from_profile(cls, profile, opts: QuantizeOptions) -> Limits:
        wb = int(profile.get("widths.weight"))
        if opts.weight_bits is not None:
            wb = min(wb, int(opts.weight_bits))
        return cls(
            code_max=int(profile.get("neuron.code_max")), weight_max=(1 << wb) - 1,
            max_parallel=int(profile.get("synapse.max_parallel")),
            bias_max=int(profile.get("neuron.bias_max")),
            delay_max=int(profile.get("synapse.delay_max")),
            v_low=int(profile.get("quantize.v_low_code")),
            v_high=int(profile.get("quantize.v_high_code")),
        )


@dataclass
class Pop:
    """Float view of one population and its realised decays."""

    node: Node
    n: int
    c_mem: np.ndarray
    c_syn: np.ndarray
    gain: np.ndarray  # float v per unit of input spike weight (through the synaptic filter)
    gain_dc: np.ndarray  # float v per step per unit of constant input
    a_q: np.ndarray
    b_q: np.ndarray
    chains: list[Chain]
    readout: bool
    notes: list[str] = field(default_factory=list)


def _pop(graph: Graph, node: Node, chains: list[Chain]) -> Pop:
    if node.kind == "AdaptiveLIF":
        raise CompileError(
            f"population {node.name}: kind AdaptiveLIF is not supported by the brainscales2 "
            "family: nmc's BrainScaleS-2 neuron has no threshold adaptation; use LIF (drop the "
            "adaptation) or a family that has it")
    if node.kind not in SPIKING + READOUTS:
        raise CompileError(f"population {node.name}: kind {node.kind} has no BrainScaleS-2 "
                           "lowering")
    n, top = node.size, native.CODE_MAX
    if node.kind in LEAKY:
        a = np.exp(-graph.dt / flat(graph, node, "tau_mem"))
        c_mem = np.clip(np.rint(top * (1.0 - a)), 0, top).astype(np.int64)
    elif node.kind == "Threshold":
        c_mem = np.full(n, top, np.int64)  # nothing kept from one step to the next
    else:
        c_mem = np.zeros(n, np.int64)  # IF, Integrator: no leak
    if node.kind in SYNAPTIC:
        b = np.exp(-graph.dt / flat(graph, node, "tau_syn"))
        c_syn = np.clip(np.rint(top * (1.0 - b)), 0, top).astype(np.int64)
    else:
        c_syn = np.full(n, top, np.int64)  # instantaneous synapse
    a_q = (top - c_mem) / top
    b_q = (top - c_syn) / top
    r = flat(graph, node, "r") if node.kind != "Threshold" else np.ones(n)
    vgain = (1.0 - a_q) * r if node.kind in LEAKY else r
    if node.kind in SYNAPTIC:
        w_in = flat(graph, node, "w_in")
        gain, gain_dc = vgain * (1.0 - b_q) * w_in, vgain * w_in
    else:
        gain, gain_dc = vgain, vgain
    return Pop(node=node, n=n, c_mem=c_mem, c_syn=c_syn, gain=gain, gain_dc=gain_dc, a_q=a_q,
               b_q=b_q, chains=chains, readout=node.kind in READOUTS)


def _bias(p: Pop) -> np.ndarray:
    total = np.zeros(p.n)
    for ch in p.chains:
        if ch.bias is not None:
            total = total + ch.bias
    return total


def _readout_bound(graph: Graph, p: Pop, opts: QuantizeOptions, calib: dict) -> float:
    """D: the largest |v| (float) a readout reaches (see module doc)."""
    if p.node.name in calib:
        return calib[p.node.name]
    drive = np.abs(p.gain_dc * _bias(p))
    for ch in p.chains:
        per_step = np.abs(p.gain[:, None] * ch.w).sum(axis=1)
        drive = drive + per_step / np.where(p.b_q < 1, 1 - p.b_q, 1.0)
    keep = 1.0 - p.a_q
    v = np.where(keep > 0, drive / np.maximum(keep, 1e-300), drive * READOUT_HORIZON)
    return float(v.max()) if v.size else 0.0


def _calibrated_readouts(graph: Graph, pops: dict[str, Pop], opts: QuantizeOptions
                         ) -> dict[str, float]:
    """Per population, from the float network on the calibration inputs: a readout's bound
    ``D`` (the ``opts.percentile``-th percentile of ``|v|``) and, for a spiking population,
    ``"<name>:floor"``, the ``(100 - opts.percentile)``-th percentile of ``v`` (how far below
    its resting range the membrane goes)."""
    if opts.calibration is None or not pops:
        return {}
    from ir.interp_float import run_float

    names = list(pops)
    res = run_float(graph, opts.calibration, probes=names)
    out: dict[str, float] = {}
    for n in names:
        pr = res.probes[n]
        if pops[n].readout:
            out[n] = float(np.percentile(np.abs(pr["out"]), opts.percentile))
        elif "v" in pr:
            out[f"{n}:floor"] = float(np.percentile(pr["v"], 100.0 - opts.percentile))
    return out


def _peak_response(p: Pop) -> np.ndarray:
    """Per neuron, the largest membrane excursion (float volts) of one input spike of unit
    float input gain: the two-stage filter (current retains ``b_q``, membrane ``a_q`` per step)
    peaks below ``1 / (1 - b_q)`` when the synapse is slow; 1 for an instantaneous synapse."""
    if not np.any(p.b_q > 0):
        return np.ones(p.n)
    i = np.ones(p.n)
    v = np.zeros(p.n)
    peak = np.zeros(p.n)
    # Ours: the peak comes within a few synaptic time constants; 4 tau_syn (plus one step)
    # covers it, since afterwards the current is below 2% of its start.
    steps = int(min(np.ceil(4.0 / max(1.0 - float(p.b_q.max()), 1e-3)), 4000)) + 1
    for _ in range(steps):  # a loop over time steps, vectorised over neurons
        v = p.a_q * v + i
        peak = np.maximum(peak, v)
        i = p.b_q * i
    return peak


def _spiking_floor(graph: Graph, p: Pop, calib: dict) -> float:
    """How far (float volts) below ``min(0, v_leak, v_reset)`` the membrane of a spiking
    population must be representable before the lower rail clips it: from calibration data the
    low percentile of ``v``; else one volley of every inhibitory input at once (each spike's
    peak membrane excursion) plus a negative bias's steady state."""
    key = f"{p.node.name}:floor"
    base = _v_base(graph, p)
    if key in calib:
        return max(base - calib[key], 0.0)
    peak = _peak_response(p)
    dip = np.zeros(p.n)
    for ch in p.chains:
        dip = dip + np.clip(p.gain[:, None] * ch.w, None, 0.0).sum(axis=1) * -peak
    keep = 1.0 - p.a_q
    neg = np.clip(p.gain_dc * _bias(p), None, 0.0) * -1.0
    dip = dip + np.where(keep > 0, neg / np.maximum(keep, 1e-300), neg * READOUT_HORIZON)
    return float(dip.max()) if dip.size else 0.0


def _v_base(graph: Graph, p: Pop) -> float:
    """The lowest float voltage of a spiking population's resting range."""
    node = p.node
    cands = [0.0, float(flat(graph, node, "v_threshold").min())]
    if node.kind in LEAKY:
        cands.append(float(flat(graph, node, "v_leak").min()))
    if getattr(node, "reset", "zero") == "v_reset":
        cands.append(float(flat(graph, node, "v_reset").min()))
    return min(cands)


def _current_peak(p: Pop) -> float:
    """The largest synaptic current (float volts per step, one sign) one volley of every input
    of that sign gives: it must stay below the current rail ``I_MAX``."""
    tot = np.zeros((2, p.n))
    for ch in p.chains:
        j = p.gain[:, None] * ch.w
        tot[0] += np.clip(j, 0.0, None).sum(axis=1)
        tot[1] -= np.clip(j, None, 0.0).sum(axis=1)
    return float(tot.max()) if tot.size else 0.0


def _voltage_map(graph: Graph, p: Pop, lim: Limits, d_readout: float, floor: float = 0.0,
                 current: float = 0.0) -> tuple[float, float]:
    """(sigma_code, v_min): code(v) = v_low + (v - v_min) * sigma_code.

    A readout maps ``[-D, D]`` onto ``v_low .. v_high``. A spiking population maps
    ``v_base = min(0, v_leak, v_reset, v_threshold)`` to ``v_low`` and its highest threshold to
    ``v_high``, unless

    * that leaves less than ``floor`` float volts below ``v_base`` above code 0 (the lower rail:
      a clipped membrane recovers from inhibition too early and the neuron fires too often):
      then the scale shrinks so that ``v_base - floor`` is code 0, or
    * ``current`` (float volts per step, the largest one-sign synaptic current) would pass the
      current rail ``I_MAX``: then the scale shrinks until it fits;

    the highest threshold stays at ``v_high`` and the scale shrinks at most ``MAX_SQUEEZE``
    times (appending a note to ``p.notes`` when a bound is left uncovered). A readout's scale
    shrinks for ``current`` in the same way, its window staying centred on the same float
    voltage."""
    node = p.node
    state = 1 << native.V_FRAC
    if p.readout:
        d = d_readout if d_readout > 0 else 1.0
        sc0 = (lim.v_high - lim.v_low) / (2.0 * d)
        sc = sc0
        if current * sc * state > native.I_MAX:
            sc = max(native.I_MAX / (current * state), sc0 / MAX_SQUEEZE)
            p.notes.append(f"voltage scale lowered {sc0 / sc:.3g}x so that the synaptic current "
                           "stays below the current rail I_MAX")
        mid = lim.v_low + (lim.v_high - lim.v_low) / 2.0  # code of float 0
        return sc, -(mid - lim.v_low) / sc
    thr = flat(graph, node, "v_threshold")
    lo = _v_base(graph, p)
    hi = max(float(thr.max()), 0.0)
    if hi <= lo:
        hi = lo + 1.0
    sc0 = (lim.v_high - lim.v_low) / (hi - lo)
    sc, why = sc0, []
    if floor > 0 and lim.v_low < floor * sc0:
        sc = min(sc, lim.v_high / (hi - lo + floor))
        why.append(f"{floor:.4g} V of room below the resting range for inhibition")
    if current * sc0 * state > native.I_MAX:
        sc = min(sc, native.I_MAX / (current * state))
        why.append("the synaptic current below the current rail I_MAX")
    if sc < sc0:
        short = sc < sc0 / MAX_SQUEEZE
        sc = max(sc, sc0 / MAX_SQUEEZE)
        p.notes.append(
            f"voltage scale lowered {sc0 / sc:.3g}x to keep " + " and ".join(why)
            + (f" (capped at {MAX_SQUEEZE:g}x to keep threshold codes precise: the membrane "
               "or current may still reach a rail; calibration data sets the room from the "
               "float network's activity)" if short else ""))
    return sc, hi - (lim.v_high - lim.v_low) / sc


def _codes(v: np.ndarray, sc: float, vmin: float, lim: Limits) -> np.ndarray:
    return np.clip(np.rint(lim.v_low + (np.asarray(v) - vmin) * sc), 0, lim.code_max).astype(
        np.int64)


def _split(w: np.ndarray, m: int, wmax: int) -> np.ndarray:
    """(m, *w.shape) parallel synapses, each <= wmax, the first ones full: their sum is w."""
    layers = [np.clip(w - k * wmax, 0, wmax) for k in range(m)]
    return np.stack(layers).astype(np.uint8 if wmax < 256 else np.int32)


@register_quantizer("brainscales2")
def quantize_brainscales2(graph: Graph, profile, opts: QuantizeOptions
                          ) -> tuple[Graph, QuantReport]:
    """Lower a float graph for a brainscales2-family profile (see the module doc)."""
    lim = Limits.from_profile(profile, opts)
    report = QuantReport(target=profile.name, family=profile.family,
                         calibrated=opts.calibration is not None)
    pops_f, chains = collect(graph, "brainscales2", readouts=READOUTS)
    pops = {name: _pop(graph, node, chains[name]) for name, node in pops_f.items()}
    calib = _calibrated_readouts(graph, pops, opts)
    cb = GraphBuilder("_")
    natives: dict[str, Node] = {}
    conns: dict[str, list[tuple[Node, str]]] = {}
    taken = set(graph.nodes)
    uses: dict[str, int] = {}
    for chs in chains.values():
        for ch in chs:
            if ch.conn is not None:
                uses[ch.conn.name] = uses.get(ch.conn.name, 0) + 1
    dec_p: dict[str, Any] = {}
    dec_c: dict[str, Any] = {}
    id_base = 0
    shifted = 0
    subtract = []
    for name, p in pops.items():
        node = p.node
        if p.readout:
            sc, vmin = _voltage_map(graph, p, lim, _readout_bound(graph, p, opts, calib),
                                    current=_current_peak(p))
        else:
            sc, vmin = _voltage_map(graph, p, lim, 0.0, _spiking_floor(graph, p, calib),
                                    _current_peak(p))
        sigma = sc * (1 << native.V_FRAC)  # state units per float volt
        zero = _codes(np.zeros(p.n), sc, vmin, lim)
        v_leak = _codes(flat(graph, node, "v_leak"), sc, vmin, lim) if node.kind in LEAKY \
            else zero
        reset = getattr(node, "reset", "zero")
        if reset == "subtract":
            subtract.append(name)
        v_reset = _codes(flat(graph, node, "v_reset"), sc, vmin, lim) if reset == "v_reset" \
            else zero
        v_thr = (_codes(flat(graph, node, "v_threshold"), sc, vmin, lim) if not p.readout
                 else np.full(p.n, lim.code_max, np.int64))
        bias_ideal = p.gain_dc * _bias(p) * sigma
        bias = np.clip(np.rint(bias_ideal), -lim.bias_max, lim.bias_max).astype(np.int64)
        if np.any(np.abs(np.rint(bias_ideal)) > lim.bias_max):
            p.notes.append(f"bias clipped to +-{lim.bias_max} state units for "
                           f"{int(np.sum(np.abs(np.rint(bias_ideal)) > lim.bias_max))} neuron(s)")
        # Per-neuron gain code from the weight percentile (both signs share it).
        parts = [p.gain[:, None] * ch.w * sigma for ch in p.chains]
        j_all = np.abs(np.concatenate(parts, axis=1)) if parts else np.zeros((p.n, 0))
        with warnings.catch_warnings():  # rows without any weight give NaN (then 0)
            warnings.simplefilter("ignore", RuntimeWarning)
            pct = np.nanpercentile(np.where(j_all > 0, j_all, np.nan), opts.percentile, axis=1) \
                if j_all.shape[1] else np.zeros(p.n)
        pct = np.nan_to_num(pct, nan=0.0)
        g = np.clip(np.ceil(pct / lim.weight_max), 1, lim.code_max).astype(np.int64)
        natives[name] = BSS2Neuron(
            name=name, shape=node.shape,
            v_leak=int_param(cb, f"{name}.v_leak", v_leak),
            v_threshold=int_param(cb, f"{name}.v_threshold", v_thr),
            v_reset=int_param(cb, f"{name}.v_reset", v_reset),
            c_mem=int_param(cb, f"{name}.c_mem", p.c_mem),
            c_syn_exc=int_param(cb, f"{name}.c_syn_exc", p.c_syn),
            c_syn_inh=int_param(cb, f"{name}.c_syn_inh", p.c_syn),
            gain_exc=int_param(cb, f"{name}.gain_exc", g),
            gain_inh=int_param(cb, f"{name}.gain_inh", g),
            bias=int_param(cb, f"{name}.bias", bias), readout=p.readout, id_base=id_base,
        )
        id_base += p.n
        dec_p[name] = dict(kind=node.kind, readout=p.readout, sigma=float(f"{sigma:.6g}"),
                           v_min=float(f"{vmin:.6g}"), c_mem=span(p.c_mem), c_syn=span(p.c_syn),
                           gain=span(g), v_threshold=span(v_thr), v_reset=span(v_reset))
        report.populations.append(dict(name=name, kind=node.kind, neurons=p.n, scale=sigma,
                                       c_mem=span(p.c_mem), c_syn=span(p.c_syn), gain=span(g)))
        report.notes.extend(f"population {name}: {t}" for t in p.notes)
        conns[name] = []
        for ch, jj in zip(p.chains, parts, strict=True):
            n_src = graph.node(ch.source).size
            ideal = np.abs(jj) / g[:, None]
            top = lim.weight_max * lim.max_parallel
            w_int = np.clip(np.rint(ideal), 0, top).astype(np.int64)
            exc_i = np.where(jj > 0, w_int, 0)
            inh_i = np.where(jj < 0, w_int, 0)
            groups = delay_groups(ch, lim.delay_max, "brainscales2")
            if ch.conn is not None:
                base = ch.conn.name if uses[ch.conn.name] == 1 else f"{ch.conn.name}_{name}"
            else:
                base = f"{ch.source}_to_{name}"
            base = base if base not in taken or (ch.conn is not None and base == ch.conn.name) \
                else unique_name(taken, base)
            taken.add(base)
            d = np.maximum(ch.delay, 1)
            fd = int(ch.delay.max()) if ch.delay.size else 0
            for gi, dd in enumerate(groups):
                cname = base if gi == 0 else unique_name(taken, f"{base}_d{dd}")
                taken.add(cname)
                sel = d == dd if len(groups) > 1 else np.ones(d.shape, bool)
                refs = {}
                mult = {}
                for sign, arr in (("exc", exc_i), ("inh", inh_i)):
                    a = np.where(sel, arr, 0)
                    m = int(np.ceil(a.max() / lim.weight_max)) if a.size and a.max() > 0 else 0
                    mult[sign] = m
                    refs[sign] = cb.const(f"{cname}.{sign}", _split(a, m, lim.weight_max)) \
                        if m else None
                if refs["exc"] is None and refs["inh"] is None:
                    refs["exc"] = cb.const(f"{cname}.exc",
                                           np.zeros((1, p.n, n_src), np.uint8))
                    mult["exc"] = 1
                cn = BSS2Synapses(name=cname, in_features=n_src, out_features=p.n,
                                  exc=refs["exc"], inh=refs["inh"], delay=int(dd))
                conns[name].append((cn, ch.source))
                shifted += fd == 0 and gi == 0
                dec_c[cname] = dict(source=ch.source, target=name, folded=ch.folded,
                                    delay=int(dd), float_delay=fd,
                                    parallel_exc=mult["exc"], parallel_inh=mult["inh"])
            signed = exc_i - inh_i
            back = signed * g[:, None] / (sigma * np.where(p.gain != 0, p.gain, 1.0))[:, None]
            stats = connection_stats(
                base, ch.w, signed, back, ideal=ideal, lo=-0.5, hi=top + 0.5,
                scale=float(np.median(sigma * np.abs(p.gain) / g)), kind="BSS2Synapses",
                target=name, bits=int(lim.weight_max).bit_length(),
                parallel=int(max(np.ceil(w_int.max() / lim.weight_max), 1)) if w_int.size else 1,
                delay=groups[0] if len(groups) == 1 else f"{groups[0]}..{groups[-1]}")
            report.connections.append(stats)
            if stats["clipped_pct"]:
                report.notes.append(
                    f"connection {base}: {stats['clipped_pct']}% of the weights needed more than "
                    f"{lim.max_parallel} parallel synapses and were clipped (synapse.max_parallel)")
    if subtract:
        msg = (f"population(s) {', '.join(subtract)}: reset = 'subtract' is not native on "
               "BrainScaleS-2 (the analog reset sets a potential); reset to the code of 0 "
               "instead, which lowers the rate of strongly driven neurons; convert or retrain "
               "with reset = 'zero' to avoid the approximation")
        report.notes.append(msg)
        warnings.warn(msg, NmcWarning, stacklevel=2)
    if shifted:
        report.notes.append(
            f"{shifted} connection(s) were instantaneous in the float graph and take 1 step on "
            "BrainScaleS-2 (native delay >= 1): spikes of the quantized graph come later by one "
            "step per such layer")
    decisions = dict(populations=dec_p, connections=dec_c,
                     options=dict(percentile=opts.percentile, weight_bits=opts.weight_bits,
                                  calibrated=opts.calibration is not None))
    attrs = record(dict(graph.attrs, target=profile.name), "quantize", decisions)
    out = build(graph, natives, conns, dict(cb.constants), attrs)
    if opts.calibration is not None:
        calibration_report(out, list(natives), opts, report)
    return out, report


__all__ = ["quantize_brainscales2"]
