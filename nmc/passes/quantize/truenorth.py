"""The TrueNorth quantizer: generic float kinds -> TrueNorth neurons and binary crossbars.

Rules (also in ``docs/families.md``):

* Neurons. IF, LIF, Threshold -> ``TrueNorthNeuron``. Per neuron a scale ``sigma_j`` (integer
  membrane units per float unit) is chosen; every weight level, the leak, the thresholds and the
  reset value of the neuron are that neuron's float values times ``sigma_j``. The float input gain
  is folded into the weights: ``r`` (IF), ``(1 - a) r`` with ``a = exp(-dt/tau_mem)`` (LIF, the
  zero-order-hold form), 1 (Threshold).
* Leak. IF: ``lambda = sigma * r * bias`` (exact up to rounding). LIF: TrueNorth's leak is linear,
  so the exponential decay ``-(1 - a)(v - v_leak)`` is approximated at the typical membrane value
  ``v_bar = v_threshold / 2`` (a neuron ramping from 0 to threshold): with no constant drive, a
  leak toward 0 on both sides (``epsilon = 1``, ``lambda = -sigma (1 - a) v_bar``); with a
  constant drive ``c = (1 - a)(r bias + v_leak)``, ``epsilon = 0`` and
  ``lambda = sigma (c - (1 - a) v_bar)``. A leak whose magnitude rounds to 0 but is at least 1/256
  uses the stochastic leak (``|lambda| = round(256 |x|) - 1`` gives ``x`` per tick on average).
* Thresholds and resets. ``alpha = ceil(sigma v_threshold)`` (the membrane is an integer, so
  ``V >= sigma thr`` iff ``V >= alpha``); ``reset="zero"`` -> ``gamma = 0,
  R = 0``; ``"subtract"`` -> ``gamma = 1`` (native); ``"v_reset"`` -> ``gamma = 0,
  R = round(sigma v_reset)``. The negative side saturates (``kappa = 1``) at the largest
  ``beta`` the registers allow: float neurons have no lower bound. Threshold (memoryless) is the
  EEDN binary neuron: ``alpha = 1, beta = 0, kappa = 1, gamma = 0, R = 0`` and
  ``lambda = floor(sigma (bias - v_threshold)) + 1``, so it fires iff ``I >= v_threshold``
  (exactly, for integer-valued weights such as EEDN's trinary ones).
* Weights. A neuron has four weights ``s_j[0..3]``, one per axon type, shared by all its inputs;
  each source drives ``copies`` axons (copy ``c`` has type ``c``) and the crossbar picks, per
  (source, neuron), the subset of copies whose weights sum closest to ``sigma_j w_ji``. Per
  population (all crossbars into a population share the neuron's weights):

  - ``"2"``: two copies. Signed weights: levels ``(+A_j, -B_j)`` fitted per neuron by Lloyd's
    algorithm (trinary EEDN weights ``{-c, 0, c}`` are exact); single-sign weights: a 2-bit grid
    ``(1, 2) m_j``. At most ``core.axons / 2`` logical inputs per neuron.
  - ``"4"``: four copies, levels ``(1, 2, 4, -7) m_j`` (subset sums: every integer -7..7 times
    ``m_j``) or ``(1, 2, 4, 8) m_j`` for single-sign weights (0..15). At most ``core.axons / 4``
    inputs.
  - per-connection types (``"auto"`` only, :func:`_group_candidates`): the population's input
    connections (at most ``MAX_GROUPED_CHAINS``) grouped in every way, each group on its own
    1..4 axon types (4 in all) fitted on its own weights: one type = one Lloyd level per neuron
    (only where a neuron's weights of the group have one sign; exact for one weight value, e.g.
    a uniform lateral inhibition), three types = per neuron the best grid of ``THREE_UNITS``,
    two and four types as above. A neuron needs ``sum copies_g x fan-in_g`` axons.
  - ``"auto"`` (default): per population the scheme with the smallest weight error
    ``||W_q - W|| / ||W||`` among those whose per-neuron axons fit ``core.axons``; a tie picks
    fewer axons (fewer synaptic events), then the population-wide scheme.

  The grid step is chosen per neuron among ``max|w_j| / k_max * (1, 0.9, ..., 0.5)`` by squared
  error (clipping the largest weights when that helps).
* Scale. ``sigma_j = m_j / step_j`` with ``m_j`` as large as the weight width allows, lowered so
  that alpha, R, lambda and the membrane fit their registers; a leak or reset value that still does
  not fit is clipped (noted in the report). Where even ``m_j = 1`` would not fit (weights tiny
  next to the threshold or leak), ``sigma_j`` is the largest the registers allow and the weights
  are rounded on the integer levels directly (small ones become 0). Under per-connection types
  ``step_j`` is that of the group with the most types; the other groups' levels are their float
  values times ``sigma_j``, rounded.
* Silent sources. A lowered neuron that provably never fires (:func:`_never_fires`) sends no
  spike, so its synapses into later populations are dropped before those are fitted.
* ``split_fanin`` (off by default): a population whose fan-in keeps it on axon types 2 (or does
  not fit at all) gets its input as partial sums on several cores, at axon types 4, merged one
  tick later (:func:`split_fanin`; ``docs/families.md`` 1.5).
* Connections. Dense / Sparse / a direct edge (identity) -> ``TrueNorthCrossbar``; float Delays
  before or after the connection fold into ``delay = max(1, d)``; per-element delays that differ
  split the crossbar by delay. Native delays must be ``<= core.scheduler_slots - 1``.

Unsupported (CompileError naming the node, the rule and the fix): AdaptiveLIF, CubaLIF (no
synaptic current), non-spiking readouts (LI, CubaLI, Integrator), connections in series, a fan-in
whose cheapest scheme needs more than the core's axons (without ``split_fanin``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ir.errors import CompileError
from ir.graph import Graph, GraphBuilder, Stage, unique_name
from ir.native.truenorth import TrueNorthCrossbar, TrueNorthNeuron
from ir.nodes import Node, Ref
from nmc.passes import record
from nmc.passes.quantize import QuantizeOptions, register_quantizer
from nmc.passes.quantize.report import QuantReport, connection_stats, population_stats

KEPT = ("Input", "Output", "Flatten")
STEP_CANDIDATES = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)
"""Ours: grid steps tried per neuron, as fractions of max|w| / k_max."""
WEIGHT_ERROR_NOTE = 0.1
"""Ours: a population whose relative weight error exceeds this gets a report note explaining it."""
_TOL = 1e-9  # relative tolerance of ceil/floor against float noise in sigma * value
SCHEMES = {
    # name: (copies, unit levels for signed, for non-negative weights)
    "2": (2, None, (1, 2)),
    "4": (4, (1, 2, 4, -7), (1, 2, 4, 8)),
}


# ------------------------------------------------------------------------------------------
# Graph analysis shared by the truenorth and brainscales2 quantizers
# ------------------------------------------------------------------------------------------
@dataclass
class Chain:
    """One input path of a population: ``source`` -> Delays -> ``conn`` -> Delays -> target."""

    source: str
    target: str
    conn: Node | None
    pre: list[Node] = field(default_factory=list)
    post: list[Node] = field(default_factory=list)
    w: np.ndarray | None = None  # float weights (out, in)
    bias: np.ndarray | None = None  # float bias (out,) or None
    delay: np.ndarray | None = None  # total float delay per (out, in)

    @property
    def folded(self) -> list[str]:
        return [n.name for n in self.pre] + ([self.conn.name] if self.conn else []) + \
            [n.name for n in self.post]

    @property
    def label(self) -> str:
        return ", ".join(self.folded) or f"{self.source} -> {self.target}"


def _single_pred(graph: Graph, name: str) -> str:
    preds = graph.predecessors(name)
    if len(preds) != 1:
        raise CompileError(f"{graph.node(name).kind} {name}: has {len(preds)} inputs, expected "
                           "exactly 1; check the graph with `nmc check`")
    return preds[0]


def trace_chain(graph: Graph, first: str, target: str, family: str,
                readouts: tuple[str, ...] = ()) -> Chain:
    """Follow the edge ``first -> target`` back to a spiking source, folding Delays and one
    Dense/Sparse; CompileError for anything the family cannot lower."""
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
                    f"series on the way to population {target}); the {family} family needs a "
                    "population between connections: multiply the weight matrices or insert neurons"
                )
            conn = node
            cur = _single_pred(graph, cur)
        elif node.kind in ("Input", "Flatten") or node.category == "neuron":
            if node.category == "neuron" and (node.kind in readouts
                                              or getattr(node, "readout", False)):
                raise CompileError(
                    f"population {cur} ({node.kind}) is a non-spiking readout but feeds population "
                    f"{target}; {family} synapses carry spikes only: make {cur} a spiking neuron "
                    "(IF/LIF) or use it only as an output")
            return Chain(source=cur, target=target, conn=conn, pre=pre, post=post)
        else:
            raise CompileError(
                f"{node.kind} {cur} (on the way to population {target}) has no {family} lowering; "
                "run the legalize pass first (it lowers Conv, pooling and Scale to Sparse)")


def _delay_vec(graph: Graph, delays: list[Node], n: int) -> np.ndarray:
    total = np.zeros(n, np.int64)
    for d in delays:
        total = total + np.rint(np.asarray(graph.param(d, "delay"), np.float64)).reshape(-1).astype(
            np.int64)
    return total


def load_chain(graph: Graph, ch: Chain, n_src: int, n_tgt: int) -> None:
    """Fill ``ch.w`` (dense float (out, in)), ``ch.bias`` and ``ch.delay`` (out, in)."""
    c = ch.conn
    if c is None:
        if n_src != n_tgt:
            raise CompileError(f"{ch.source} -> {ch.target}: a direct edge needs equal sizes "
                               f"({n_src} != {n_tgt}); insert a Dense or Sparse connection")
        ch.w = np.eye(n_src)
    elif c.kind == "Dense":
        ch.w = np.asarray(graph.const(c.weight), np.float64).reshape(c.out_features, c.in_features)
    else:
        w = np.zeros((c.out_features, c.in_features))
        np.add.at(w, (np.asarray(graph.const(c.rows), np.int64).ravel(),
                      np.asarray(graph.const(c.cols), np.int64).ravel()),
                  np.asarray(graph.const(c.values), np.float64).ravel())
        ch.w = w
    if ch.w.shape != (n_tgt, n_src):
        raise CompileError(f"connection {ch.label}: weights {list(ch.w.shape)} do not match "
                           f"target {ch.target} ({n_tgt}) x source {ch.source} ({n_src})")
    if c is not None and c.bias is not None:
        ch.bias = np.asarray(graph.const(c.bias), np.float64).reshape(-1)
    ch.delay = _delay_vec(graph, ch.post, n_tgt)[:, None] + _delay_vec(graph, ch.pre, n_src)[None]


def collect(graph: Graph, family: str, readouts: tuple[str, ...] = ()
            ) -> tuple[dict[str, Node], dict[str, list[Chain]]]:
    """The generic populations to lower and, per population, its input chains (loaded).

    CompileError for native kinds of another family, generic kinds legalize should have lowered,
    and Dense/Sparse/Delay nodes that do not lead to a population.
    """
    pops: dict[str, Node] = {}
    for node in graph.nodes.values():
        if node.family not in ("generic", family):
            raise CompileError(f"node {node.name}: native {node.family} kind {node.kind} cannot "
                               f"be compiled for a {family} target")
        if node.family != "generic":
            continue
        if node.category == "neuron":
            pops[node.name] = node
        elif node.kind not in KEPT + ("Dense", "Sparse", "Delay"):
            raise CompileError(f"{node.kind} {node.name}: run the legalize pass first (it lowers "
                               "Conv, pooling and Scale to Sparse)")
    chains: dict[str, list[Chain]] = {}
    used: set[str] = set()
    for name, node in pops.items():
        chains[name] = []
        for src in graph.predecessors(name):
            ch = trace_chain(graph, src, name, family, readouts)
            load_chain(graph, ch, graph.node(ch.source).size, node.size)
            chains[name].append(ch)
            used.update(ch.folded)
    for node in graph.nodes.values():
        if node.kind in ("Dense", "Sparse", "Delay") and node.name not in used:
            succ = graph.successors(node.name)
            raise CompileError(
                f"{node.kind} {node.name} does not lead to a population (it feeds "
                f"{', '.join(succ) or 'nothing'}); on {family} only spikes (and readouts) can be "
                "observed: connect it to a neuron population")
    return pops, chains


def flat(graph: Graph, node: Node, fname: str) -> np.ndarray:
    """A float parameter of ``node`` as a flat array over its neurons."""
    return np.asarray(graph.param(node, fname), np.float64).reshape(-1)


def int_param(b: GraphBuilder, name: str, arr: np.ndarray) -> int | Ref:
    """A scalar when all neurons share the value, else an int32 constant in the pool."""
    arr = np.asarray(arr, np.int64).reshape(-1)
    if arr.size and np.all(arr == arr[0]):
        return int(arr[0])
    return b.const(name, arr.astype(np.int32))


def span(values: np.ndarray) -> int | str:
    """One integer, or ``"lo..hi"`` when the neurons differ."""
    values = np.asarray(values)
    if values.size == 0:
        return 0
    lo, hi = int(np.min(values)), int(np.max(values))
    return lo if lo == hi else f"{lo}..{hi}"


def delay_groups(ch: Chain, delay_max: int, family: str) -> list[int]:
    """Distinct native delays ``max(1, d)`` of a chain's synapses; CompileError above the max."""
    nz = ch.w != 0
    d = np.maximum(ch.delay, 1)
    groups = sorted(set(d[nz].tolist())) or [int(d.max()) if d.size else 1]
    if groups[-1] > delay_max:
        raise CompileError(
            f"connection {ch.label}: delay {groups[-1]} > {delay_max} steps (the largest delay of "
            f"the {family} target); shorten the delay or relay the spikes through an extra "
            "population")
    return groups


def build(graph: Graph, pops_native: dict[str, Node], conns: dict[str, list[tuple[Node, str]]],
          constants: dict[str, np.ndarray], attrs: dict) -> Graph:
    """Assemble the quantized graph in the float graph's node order.

    ``conns[target]``: (native connection, source) pairs feeding population ``target``, placed
    where their float connection was (or just before the target for direct edges).
    """
    b = GraphBuilder(graph.name, dt=graph.dt, stage=Stage.QUANTIZED, attrs=attrs)
    b.constants.update(constants)
    edges: list[tuple[str, str]] = []
    placed: set[str] = set()
    for name, node in graph.nodes.items():
        if name in pops_native:
            for cn, src in conns.get(name, []):
                if cn.name not in placed:
                    b.add(cn)
                    placed.add(cn.name)
                    edges.append((src, cn.name))
                    edges.append((cn.name, name))
            b.add(pops_native[name])
        elif node.kind in KEPT or node.family != "generic":
            for _, ref in node.refs():
                b.constants[ref.name] = graph.const(ref)
            b.add(node)
            edges.extend((s, name) for s in graph.predecessors(name))
    for s, t in edges:
        if s not in b.nodes:
            src = graph.node(s)
            raise CompileError(
                f"{graph.node(t).kind} {t} is fed by {src.kind} {s}, which has no native "
                f"equivalent on its own (it is folded into the connection of a population); "
                f"feed {t} from a neuron population")
    b.edges = edges
    return b.build()


# ------------------------------------------------------------------------------------------
# TrueNorth limits and schemes
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Limits:
    """The numbers the quantizer needs, all from the target profile."""

    weight_max: int
    leak_max: int
    threshold_max: int
    reset_min: int
    reset_max: int
    v_max: int
    axons: int
    delay_max: int
    overflow: str
    v_bits: int

    @classmethod
    def from_profile(cls, profile, opts: QuantizeOptions) -> Limits:
        wb = int(profile.get("widths.weight"))
        if opts.weight_bits is not None:
            wb = min(wb, int(opts.weight_bits) + 1)  # weight_bits counts magnitude bits
        rb = int(profile.get("widths.reset"))
        vb = int(profile.get("widths.membrane"))
        return cls(
            weight_max=(1 << (wb - 1)) - 1,
            leak_max=(1 << (int(profile.get("widths.leak")) - 1)) - 1,
            threshold_max=(1 << int(profile.get("widths.threshold"))) - 1,
            reset_min=-(1 << (rb - 1)), reset_max=(1 << (rb - 1)) - 1,
            v_max=(1 << (vb - 1)) - 1, axons=int(profile.get("core.axons")),
            delay_max=int(profile.get("core.scheduler_slots")) - 1,
            overflow=str(profile.get("overflow.membrane")), v_bits=vb,
        )


@dataclass
class Fit:
    """One weight scheme fitted to a population: per-neuron levels and the subset encoding."""

    scheme: str
    copies: int
    unit: np.ndarray  # (N, copies) float levels per unit of m (or the Lloyd levels)
    step: np.ndarray  # (N,) float weight per unit level
    codes: np.ndarray  # (N, in_total) subset index per (neuron, input)
    back: np.ndarray  # (N, in_total) float weights realised
    error: float
    clipped: np.ndarray  # (N, in_total) bool: ideal outside the levels' range
    groups: list[Group] = field(default_factory=list)  # set by _choose_scheme (see Group)
    axons: int = 0  # the largest number of axons one neuron needs under this scheme


@dataclass
class Group:
    """Input chains of a population whose sources share axon types, and so the neuron's levels
    on those types. ``types[c]`` is the axon type of copy ``c`` of each source (``len(types)``
    copies). A population-wide scheme is one group holding every chain on types ``0..copies-1``;
    a per-connection scheme gives each group its own types (docs/families.md 1.4)."""

    chains: tuple[int, ...]  # indices into the population's chains
    types: tuple[int, ...]
    step: np.ndarray  # (N,) float weight per unit level of this group's own fit
    lloyd: bool = False  # levels fitted by Lloyd's algorithm: every weight maps to the nearest


def _subset_sums(levels: np.ndarray) -> np.ndarray:
    """(N, 2**copies) sums of every subset of each neuron's levels (bit c = copy c)."""
    n, copies = levels.shape
    sub = np.arange(1 << copies)
    bits = (sub[:, None] >> np.arange(copies)[None]) & 1  # (S, copies)
    return levels @ bits.T.astype(levels.dtype)


def _rel_error(back: np.ndarray, w: np.ndarray) -> float:
    """``||back - w|| / ||w||`` (0 for all-zero ``w``), without a BLAS call (a threaded dot
    took milliseconds per call on a busy machine)."""
    d = np.ravel(back - w)
    x = np.ravel(w)
    norm = float(np.sqrt(np.einsum("i,i->", x, x)))
    return float(np.sqrt(np.einsum("i,i->", d, d)) / norm) if norm > 0 else 0.0


def _encode(w: np.ndarray, sums: np.ndarray, chunk: int = 1 << 22) -> np.ndarray:
    """Per (neuron, input) the subset whose sum is nearest to ``w`` (ties: lowest index)."""
    n, m = w.shape
    s = sums.shape[1]
    out = np.empty((n, m), np.int64)
    rows = max(1, chunk // max(1, m * s))
    for r0 in range(0, n, rows):
        d = np.abs(w[r0:r0 + rows, :, None] - sums[r0:r0 + rows, None, :])
        out[r0:r0 + rows] = np.argmin(d, axis=2)
    return out


def _grid_fit(w: np.ndarray, unit: tuple[int, ...], scheme: str) -> Fit:
    """Uniform grid levels ``unit * step_j``; step per neuron by squared error."""
    n = w.shape[0]
    u = np.asarray(unit, np.float64)
    kmax = max(abs(u.clip(min=0).sum()), abs(u.clip(max=0).sum()))
    amax = np.abs(w).max(axis=1) if w.size else np.zeros(n)
    amax = np.where(amax > 0, amax, 1.0)
    best_err = np.full(n, np.inf)
    best = None
    for c in STEP_CANDIDATES:
        step = amax * c / kmax
        levels = u[None] * step[:, None]
        sums = _subset_sums(levels)
        codes = _encode(w, sums)
        back = np.take_along_axis(sums, codes, axis=1)
        err = ((back - w) ** 2).sum(axis=1)
        if best is None:
            best = [step.copy(), codes, back]
            best_err = err
            continue
        better = err < best_err * (1 - 1e-12)  # strictly better: ties keep the larger step
        best_err = np.where(better, err, best_err)
        best[0] = np.where(better, step, best[0])
        best[1] = np.where(better[:, None], codes, best[1])
        best[2] = np.where(better[:, None], back, best[2])
    step, codes, back = best
    lo = (u.clip(max=0).sum()) * step
    hi = (u.clip(min=0).sum()) * step
    clipped = (w != 0) & ((w < lo[:, None] - step[:, None] / 2) | (w > hi[:, None] + step[:, None] / 2))
    norm = float(np.linalg.norm(w))
    err = float(np.linalg.norm(back - w) / norm) if norm > 0 else 0.0
    return Fit(scheme=scheme, copies=len(unit), unit=np.broadcast_to(u, (n, len(unit))).copy(),
               step=step, codes=codes, back=back, error=err, clipped=clipped)


def _lloyd_level(x: np.ndarray, iters: int = 30) -> np.ndarray:
    """Per row the level ``a`` minimising ``sum (x - q(x))^2`` with ``q(x) in {0, a}`` (x >= 0)."""
    a = x.max(axis=1) if x.size else np.zeros(x.shape[0])
    for _ in range(iters):
        sel = (x > 0) & (x >= a[:, None] / 2)
        cnt = sel.sum(axis=1)
        nxt = np.where(cnt > 0, (x * sel).sum(axis=1) / np.maximum(cnt, 1), 0.0)
        if np.array_equal(nxt, a):  # a fixed point: further rounds change nothing
            break
        a = nxt
    return a


def _pm_fit(w: np.ndarray) -> Fit:
    """Two copies with Lloyd levels ``(+A_j, -B_j)`` (trinary EEDN weights are exact)."""
    a = _lloyd_level(np.maximum(w, 0))
    bb = _lloyd_level(np.maximum(-w, 0))
    step = np.maximum(a, bb)
    step = np.where(step > 0, step, 1.0)
    unit = np.stack([a / step, -bb / step], axis=1)  # levels = unit * step
    sums = _subset_sums(unit * step[:, None])
    # Encode as in the chip: the nearest of 0, +A, -B, A-B.
    codes = _encode(w, sums)
    back = np.take_along_axis(sums, codes, axis=1)
    norm = float(np.linalg.norm(w))
    err = float(np.linalg.norm(back - w) / norm) if norm > 0 else 0.0
    return Fit(scheme="2", copies=2, unit=unit, step=step, codes=codes, back=back, error=err,
               clipped=np.zeros(w.shape, bool))


def fit_scheme(w: np.ndarray, scheme: str) -> Fit:
    """Fit scheme ``"2"`` or ``"4"`` to the effective float weights ``w`` (N, inputs)."""
    copies, signed, single = SCHEMES[scheme]
    if w.size and w.min() < 0 < w.max():
        return _pm_fit(w) if signed is None else _grid_fit(w, signed, scheme)
    if w.size and w.max() <= 0:
        return _grid_fit(w, tuple(-u for u in single), scheme)
    return _grid_fit(w, single, scheme)


def _mixed_rows(w: np.ndarray) -> bool:
    """Whether some neuron has weights of both signs (one axon per source cannot hold them)."""
    return bool(np.any((w > 0).any(axis=1) & (w < 0).any(axis=1))) if w.size else False


def _one_level_fit(w: np.ndarray) -> Fit:
    """One axon per source: per neuron one level on the sign of its weights, by Lloyd's
    algorithm (exact where a neuron's weights of this input take one value, as a uniform
    lateral inhibition or a sum pool). Rows must not mix signs (:func:`_mixed_rows`)."""
    n = w.shape[0]
    a = _lloyd_level(np.maximum(w, 0)) if np.any(w > 0) else np.zeros(n)
    b = _lloyd_level(np.maximum(-w, 0)) if np.any(w < 0) else np.zeros(n)
    level = np.where(b > a, -b, a)
    step = np.where(level != 0, np.abs(level), 1.0)
    unit = np.sign(level)[:, None].astype(np.float64)
    sums = _subset_sums(level[:, None])
    codes = _encode(w, sums)
    back = np.take_along_axis(sums, codes, axis=1)
    err = _rel_error(back, w)
    return Fit(scheme="1", copies=1, unit=unit, step=step, codes=codes, back=back, error=err,
               clipped=np.zeros(w.shape, bool))


THREE_UNITS = ((1, 2, -4), (-1, -2, 4), (1, 2, 4), (-1, -2, -4))
"""Ours: the unit levels tried per neuron with three axon types (subset sums -4..3, -3..4,
0..7, -7..0 times the grid step)."""


def _three_level_fit(w: np.ndarray) -> Fit:
    """Three axons per source: per neuron the best of the grids in ``THREE_UNITS``."""
    fits = [_grid_fit(w, u, "3") for u in THREE_UNITS]
    errs = np.stack([((f.back - w) ** 2).sum(axis=1) for f in fits])
    pick = np.argmin(errs, axis=0)  # ties: the first grid
    rows = np.arange(w.shape[0])
    unit = np.stack([f.unit for f in fits])[pick, rows]
    step = np.stack([f.step for f in fits])[pick, rows]
    codes = np.stack([f.codes for f in fits])[pick, rows]
    back = np.stack([f.back for f in fits])[pick, rows]
    clipped = np.stack([f.clipped for f in fits])[pick, rows]
    err = _rel_error(back, w)
    return Fit(scheme="3", copies=3, unit=unit, step=step, codes=codes, back=back, error=err,
               clipped=clipped)


def fit_group(w: np.ndarray, copies: int) -> Fit | None:
    """Fit ``copies`` axon types (1..4) to one group's effective weights ``w`` (N, inputs); None
    where one type cannot represent a neuron's weights (both signs)."""
    if copies in (2, 4):
        return fit_scheme(w, str(copies))
    if copies == 1:
        return None if _mixed_rows(w) else _one_level_fit(w)
    return _three_level_fit(w)


# ------------------------------------------------------------------------------------------
# Populations
# ------------------------------------------------------------------------------------------
_UNSUPPORTED = {
    "AdaptiveLIF": "TrueNorth neurons have no threshold adaptation; use LIF (drop the "
                   "adaptation) or a family that has it",
    "CubaLIF": "TrueNorth neurons have no synaptic current stage; use LIF (tau_syn -> 0) or a "
               "target with current-based neurons (loihi, brainscales2)",
    "LI": "TrueNorth neurons cannot be read out as a membrane value, only as spikes; make the "
          "output layer spiking (IF/LIF) and count its spikes",
    "CubaLI": "TrueNorth neurons cannot be read out as a membrane value, only as spikes; make "
              "the output layer spiking (IF/LIF) and count its spikes",
    "Integrator": "TrueNorth neurons cannot be read out as a membrane value, only as spikes; "
                  "make the output layer spiking (IF/LIF) and count its spikes",
}


@dataclass
class Pop:
    """Float view of one population: input gain, constant drive, decay, threshold."""

    node: Node
    n: int
    gain: np.ndarray  # float v per unit of input
    drive: np.ndarray  # constant input per step (float v units): gain * bias (+ leak term)
    decay: np.ndarray  # (1 - a): fraction of (v - v_leak) lost per step (0 for IF)
    thr: np.ndarray
    chains: list[Chain]
    notes: list[str] = field(default_factory=list)


def _pop(graph: Graph, node: Node, chains: list[Chain]) -> Pop:
    if node.kind in _UNSUPPORTED:
        raise CompileError(f"population {node.name}: kind {node.kind} is not supported by the "
                           f"truenorth family: {_UNSUPPORTED[node.kind]}")
    if node.kind not in ("IF", "LIF", "Threshold"):
        raise CompileError(f"population {node.name}: kind {node.kind} has no TrueNorth lowering")
    n = node.size
    bias = np.zeros(n)
    for ch in chains:
        if ch.bias is not None:
            bias = bias + ch.bias
    thr = flat(graph, node, "v_threshold")
    if node.kind == "Threshold":
        gain, decay, drive = np.ones(n), np.zeros(n), bias
    elif node.kind == "IF":
        r = flat(graph, node, "r")
        gain, decay, drive = r, np.zeros(n), r * bias
    else:
        r = flat(graph, node, "r")
        decay = 1.0 - np.exp(-graph.dt / flat(graph, node, "tau_mem"))
        gain = decay * r
        drive = gain * bias + decay * flat(graph, node, "v_leak")
    return Pop(node=node, n=n, gain=gain, drive=drive, decay=decay, thr=thr, chains=chains)


def _fanin(p: Pop) -> np.ndarray:
    """Inputs with a non-zero weight per neuron, summed over the population's chains."""
    total = np.zeros(p.n, np.int64)
    for ch in p.chains:
        total += np.count_nonzero(ch.w, axis=1)
    return total


def _chain_name(ch: Chain) -> str:
    """The float connection of a chain (or ``source -> target`` for a direct edge)."""
    return ch.conn.name if ch.conn is not None else ch.label


def _set_partitions(items: list[int]):
    """Every partition of ``items`` into non-empty groups (in a fixed order)."""
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for part in _set_partitions(rest):
        yield [[first], *part]
        for i in range(len(part)):
            yield [*part[:i], [first, *part[i]], *part[i + 1:]]


MAX_GROUPED_CHAINS = 4
"""Ours: populations with at most this many input chains also try per-connection axon types
(every grouping of the chains, 15 for 4 chains); above it only the population-wide schemes."""


def _columns(p: Pop) -> list[np.ndarray]:
    """Column indices of each chain in the concatenation of the population's inputs."""
    offsets = np.cumsum([0] + [ch.w.shape[1] for ch in p.chains])
    return [np.arange(a, z) for a, z in zip(offsets[:-1], offsets[1:], strict=True)]


def _shared(fit: Fit, p: Pop, worst: int) -> Fit:
    """A population-wide scheme as one group of every chain on types ``0..copies-1``."""
    lloyd = fit.scheme == "2" and fit.copies == 2 and bool(np.any(fit.unit[:, 1] < 0))
    fit.groups = [Group(chains=tuple(range(len(p.chains))), types=tuple(range(fit.copies)),
                        step=fit.step, lloyd=lloyd)]
    fit.axons = worst * fit.copies
    return fit


def _combine(p: Pop, w: np.ndarray, parts: list[tuple[tuple[int, ...], Fit]],
             cols: list[np.ndarray]) -> Fit:
    """One population fit from per-group fits; group ``g`` gets the next ``copies_g`` types.

    The levels are kept per unit of the step of the group with the most types (the primary
    one, whose integer multiple ``m`` keeps its grid exact); other groups' levels are the same
    float values in those units (rounded at the final scale)."""
    n = p.n
    primary = max(range(len(parts)), key=lambda g: (parts[g][1].copies, -g))
    step = parts[primary][1].step
    total = sum(f.copies for _, f in parts)
    unit = np.zeros((n, total))
    codes = np.zeros(w.shape, np.int64)
    back = np.zeros(w.shape)
    clipped = np.zeros(w.shape, bool)
    groups: list[Group] = []
    live = [np.any(w[:, np.concatenate([cols[i] for i in chs])] != 0, axis=1) for chs, _ in parts]
    t0 = 0
    for g, (chs, f) in enumerate(parts):
        c = np.concatenate([cols[i] for i in chs])
        u = f.unit if g == primary else f.unit * (f.step / step)[:, None]
        # A group without weights on a neuron needs no level there (a level would only cap the
        # neuron's scale); the primary keeps its (unused) grid where no group has weights.
        keep = live[g] | ((g == primary) & ~np.any(live, axis=0))
        unit[:, t0:t0 + f.copies] = np.where(keep[:, None], u, 0.0)
        codes[:, c] = f.codes
        back[:, c] = f.back
        clipped[:, c] = f.clipped
        lloyd = f.scheme == "1" or (f.scheme == "2" and bool(np.any(f.unit[:, 1] < 0)))
        groups.append(Group(chains=tuple(chs), types=tuple(range(t0, t0 + f.copies)),
                            step=f.step, lloyd=lloyd))
        t0 += f.copies
    err = _rel_error(back, w)
    scheme = "+".join(str(f.copies) for _, f in parts)
    return Fit(scheme=scheme, copies=total, unit=unit, step=step, codes=codes, back=back,
               error=err, clipped=clipped, groups=groups)


def _group_candidates(p: Pop, w: np.ndarray, lim: Limits, skip_three: bool
                      ) -> tuple[list[Fit], tuple[int, int] | None]:
    """Schemes beyond the population-wide "2" and "4" (auto only): the chains grouped in every
    way (at most ``MAX_GROUPED_CHAINS`` chains), each group on its own 1..4 axon types (4 in
    all), fitted per group. One type per source needs a neuron's weights of the group to have
    one sign. Only allocations whose per-neuron axons fit ``core.axons``; one group on 2 or 4
    types is the population-wide scheme, and one group on 3 types is tried only when 4 do not
    fit. Also returns the fewest axons any allocation would need and the neuron that needs
    them (None: no allocation allowed)."""
    nch = len(p.chains)
    if nch == 0 or nch > MAX_GROUPED_CHAINS:
        return [], None
    cols = _columns(p)
    counts = [np.count_nonzero(ch.w, axis=1) for ch in p.chains]
    cache: dict[tuple[tuple[int, ...], int], Fit | None] = {}
    mixed: dict[tuple[int, ...], bool] = {}

    def one_sign(chs: tuple[int, ...]) -> bool:
        if chs not in mixed:
            mixed[chs] = _mixed_rows(w[:, np.concatenate([cols[i] for i in chs])])
        return not mixed[chs]

    def group_fit(chs: tuple[int, ...], k: int) -> Fit | None:
        if (chs, k) not in cache:
            c = np.concatenate([cols[i] for i in chs])
            cache[chs, k] = fit_group(w[:, c], k)
        return cache[chs, k]

    out: list[Fit] = []
    fewest: tuple[int, int] | None = None
    for part in _set_partitions(list(range(nch))):
        if len(part) > 4:
            continue
        part_t = [tuple(sorted(g)) for g in part]
        part_t.sort()
        fan = [sum((counts[i] for i in g), np.zeros(p.n, np.int64)) for g in part_t]
        for ks in _compositions(len(part_t), 4):
            if len(part_t) == 1 and (ks[0] in (2, 4) or (ks[0] == 3 and skip_three)):
                continue
            if any(k == 1 and not one_sign(g) for g, k in zip(part_t, ks, strict=True)):
                continue
            need = sum((k * f for k, f in zip(ks, fan, strict=True)), np.zeros(p.n, np.int64))
            worst = int(need.max()) if need.size else 0
            if fewest is None or worst < fewest[0]:
                fewest = (worst, int(np.argmax(need)) if need.size else 0)
            if worst > lim.axons:
                continue
            fits = [group_fit(g, k) for g, k in zip(part_t, ks, strict=True)]
            if any(f is None for f in fits):
                continue
            fit = _combine(p, w, list(zip(part_t, fits, strict=True)), cols)
            fit.axons = worst
            out.append(fit)
    return out, fewest


def _compositions(groups: int, total: int):
    """Tuples of ``groups`` positive integers with sum at most ``total``."""
    if groups == 0:
        yield ()
        return
    for k in range(1, total - groups + 2):
        for rest in _compositions(groups - 1, total - k):
            yield (k, *rest)


def _choose_scheme(p: Pop, w: np.ndarray, opts: QuantizeOptions, lim: Limits,
                   notes: list[str], splittable: Any = None) -> Fit:
    """The weight scheme of one population (see the module doc); ``splittable()`` says whether
    ``split_fanin`` could split its fan-in (for the hints of the error and the report note)."""
    fanin = _fanin(p)
    split_hint = "compile with split_fanin=auto (partial sums on several cores, +1 tick)"
    worst = int(fanin.max()) if fanin.size else 0
    wanted = ("2", "4") if opts.axon_types == "auto" else (opts.axon_types,)
    fits = [s for s in wanted if worst * SCHEMES[s][0] <= lim.axons]
    extra, fewest = (_group_candidates(p, w, lim, skip_three="4" in fits)
                     if opts.axon_types == "auto" else ([], None))
    if not fits and not extra:
        s = wanted[0] if len(wanted) == 1 else "2"
        c = SCHEMES[s][0]
        j = int(np.argmax(fanin))
        hint = (" or use axon_types=2" if s == "4" and worst * 2 <= lim.axons else "")
        if splittable is not None and splittable():
            hint += f" or {split_hint}"
        if len(p.chains) > 1 and fewest is not None:
            j = fewest[1]
            per = ", ".join(f"{_chain_name(ch)}: {int(np.count_nonzero(ch.w[j]))}"
                            for ch in p.chains)
            raise CompileError(
                f"population {p.node.name}: neuron {j} has fan-in {int(fanin[j])} inputs ({per}) "
                f"and needs at least {fewest[0]} axons with its own axon types per connection (one "
                f"axon per source where a neuron's weights of a connection have one sign, else "
                f"two) > {lim.axons} axons per core (core.axons of the target); a TrueNorth "
                f"neuron sees one core's axons only: reduce the fan-in (a sparser or "
                f"convolutional layer){hint}")
        raise CompileError(
            f"population {p.node.name}: neuron {j} has fan-in {worst} inputs x {c} axon copies = "
            f"{worst * c} > {lim.axons} axons per core (core.axons of the target); a TrueNorth "
            f"neuron sees one core's axons only: reduce the fan-in to <= {lim.axons // c} inputs "
            f"(a sparser or convolutional layer){hint}")
    cands = [_shared(fit_scheme(w, s), p, worst) for s in fits] + extra
    best = min(enumerate(cands), key=lambda t: (t[1].error, t[1].axons, t[0]))[1]
    if opts.axon_types == "auto":
        errs = ", ".join(f"{f.scheme}: {f.error:.4g}" for f in cands)
        left = [s for s in wanted if s not in fits]
        why = "".join(f"; {s} does not fit: fan-in {worst} x {SCHEMES[s][0]} copies > "
                      f"{lim.axons} axons" for s in left)
        if len(best.groups) > 1:
            why += "; " + ", ".join(
                f"{' + '.join(_chain_name(p.chains[i]) for i in g.chains)} on "
                f"type{'s' if len(g.types) > 1 else ''} {','.join(map(str, g.types))}"
                for g in best.groups)
        notes.append(f"axon types {best.scheme} chosen by weight error ({errs}){why}")
    if best.error > WEIGHT_ERROR_NOTE:
        notes.append(
            f"weight error {best.error:.3g} (||W_q - W|| / ||W||): a "
            f"TrueNorth neuron has {len(SCHEMES['4'][1])} weights shared by all its inputs and "
            + (f"{best.copies} axon copies per input give {1 << best.copies} levels per weight; "
               if len(best.groups) <= 1 else
               f"per-connection axon types {best.scheme} give "
               f"{'/'.join(str(1 << len(g.types)) for g in best.groups)} levels per weight; ")
            + "expect lower accuracy. To recover: "
            + (f"{split_hint}, " if "4" not in fits and splittable is not None and splittable()
               else "")
            + (f"reduce the fan-in to <= {lim.axons // SCHEMES['4'][0]} inputs (axon types 4: "
               "15 levels) or " if best.copies < SCHEMES["4"][0] else "")
            + "train with trinary weights (EEDN), which axon types 2 represent exactly")
    return best


@dataclass
class Lowered:
    """Integer parameters of one population."""

    sigma: np.ndarray
    levels: np.ndarray  # (N, 4) int
    leak: np.ndarray
    leak_rev: np.ndarray
    stoch_leak: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    gamma: np.ndarray
    kappa: np.ndarray
    v_reset: np.ndarray
    limited_by: str
    step_int: np.ndarray  # integer weight per grid step (m_j)


def _leak_float(p: Pop) -> tuple[np.ndarray, np.ndarray]:
    """(leak per tick in float units, leak reversal flag) as in the module doc."""
    if p.node.kind != "LIF":
        return p.drive, np.zeros(p.n, np.int64)
    vbar = p.thr / 2.0
    const = p.drive
    rev = (const == 0) & (p.decay > 0)
    leak = np.where(rev, -p.decay * vbar, const - p.decay * vbar)
    return leak, rev.astype(np.int64)


def _lower_pop(graph: Graph, p: Pop, fit: Fit, lim: Limits) -> Lowered:
    node, n = p.node, p.n
    kind = node.kind
    leak_f, rev = _leak_float(p)
    reset = getattr(node, "reset", "zero")
    vres_f = flat(graph, node, "v_reset") if reset == "v_reset" else np.zeros(n)
    if kind == "Threshold":
        leak_f = p.drive - p.thr  # EEDN: fire iff I + bias - thr >= 0 (lambda gets + 1 below)
    # Upper bounds on sigma from every register other than the weights.
    umax = np.abs(fit.unit).max(axis=1)  # level magnitude per unit of m
    ssum = np.maximum(np.clip(fit.unit, 0, None).sum(axis=1), -np.clip(fit.unit, None, 0).sum(axis=1))
    bounds = {"weights": lim.weight_max / np.maximum(umax * fit.step, 1e-300)}
    if kind != "Threshold":
        bounds["threshold"] = lim.threshold_max / np.maximum(p.thr, 1e-300)
        # alpha plus one tick of input must fit the membrane register.
        if len(fit.groups) > 1:  # per group: its inputs times its largest level sum
            tick = np.zeros(n)
            for g in fit.groups:
                u = fit.unit[:, list(g.types)]
                gsum = np.maximum(np.clip(u, 0, None).sum(axis=1), -np.clip(u, None, 0).sum(axis=1))
                cnt = np.zeros(n)
                for i in g.chains:
                    cnt += np.count_nonzero(p.chains[i].w, axis=1)
                tick = tick + cnt * gsum
        else:
            drive = np.zeros(n)
            for ch in p.chains:
                drive += np.count_nonzero(ch.w, axis=1)
            tick = drive * ssum
        bounds["membrane"] = lim.v_max / np.maximum(p.thr + tick * fit.step
                                                    + np.abs(leak_f), 1e-300)
        if reset == "v_reset":
            bounds["reset"] = np.where(vres_f != 0, lim.reset_max / np.maximum(np.abs(vres_f),
                                                                                1e-300), np.inf)
    bounds["leak"] = np.where(leak_f != 0, (lim.leak_max - (kind == "Threshold"))
                              / np.maximum(np.abs(leak_f), 1e-300), np.inf)
    stack = np.stack([np.broadcast_to(v, (n,)) for v in bounds.values()])
    target = stack.min(axis=0)
    which = np.array(list(bounds))[stack.argmin(axis=0)]
    # Integer multiple m of the step: as large as the weights allow, at least 1.
    m_max = np.floor(lim.weight_max / np.maximum(umax, 1e-300) + 1e-9)
    m_fit = np.floor(target * fit.step + 1e-9)
    m = np.clip(m_fit, 1, np.maximum(m_max, 1))
    # A neuron whose weights are tiny next to its threshold or leak (m < 1: one integer unit
    # per grid step would already overflow a register) keeps the largest scale the registers
    # allow; its weights then go onto the integer levels (unit * 1) directly, and those below
    # half a unit round to 0. m = 1 at sigma = 1 / step instead would push alpha and the leak
    # past their registers (a trained-out neuron with weights near 1e-40 gave sigma near 1e40).
    coarse = m_fit < 1
    sigma = np.where(coarse, target, m / np.where(fit.step > 0, fit.step, 1.0))
    if coarse.any():
        lim_by = ", ".join(sorted(set(which[coarse].tolist())))
        p.notes.append(
            f"{int(coarse.sum())} neuron(s) have weights below one integer unit per level at "
            f"the largest scale the {lim_by} register allows (max|w| <= "
            f"{float(np.max(np.abs(fit.unit[coarse]).max(axis=1) * fit.step[coarse])):.3g}): "
            "their weights are rounded on the integer levels directly")
    levels = np.zeros((n, 4), np.int64)
    levels[:, :fit.copies] = np.rint(fit.unit * m[:, None]).astype(np.int64)
    if coarse.any() and len(fit.groups) > 1:
        # Levels outside the primary group are float values in its step units: at a coarse
        # neuron's scale they are their float value times sigma, not units of m = 1.
        prim = max(fit.groups, key=lambda g: len(g.types))
        other = [t for g in fit.groups if g is not prim for t in g.types]
        levels[np.ix_(coarse, other)] = np.rint(
            fit.unit[np.ix_(coarse, other)] * (fit.step * sigma)[coarse, None]).astype(np.int64)
    levels = np.clip(levels, -lim.weight_max, lim.weight_max)
    # Leak: deterministic where it rounds to a non-zero value, stochastic below one unit.
    lam_ideal = leak_f * sigma
    if kind == "Threshold":
        # The membrane is an integer: I >= thr - bias  <=>  V = sum + lambda >= 1 with
        # lambda = 1 + floor(sigma (bias - thr)) (exact for integer sums).
        lam = np.floor(lam_ideal + _TOL * np.maximum(1.0, np.abs(lam_ideal))) + 1
        stoch = np.zeros(n, bool)
    else:
        lam = np.rint(lam_ideal)
        stoch = (lam == 0) & (np.abs(lam_ideal) >= 1.0 / 256)
        lam = np.where(stoch, np.sign(lam_ideal) * (np.rint(256 * np.abs(lam_ideal)) - 1), lam)
    lam_c = np.clip(lam, -lim.leak_max, lim.leak_max)
    if np.any(lam_c != lam):
        p.notes.append(f"leak clipped to +-{lim.leak_max} for {int(np.sum(lam_c != lam))} "
                       "neuron(s): the bias is large next to the weights")
    if stoch.any():
        p.notes.append(f"stochastic leak for {int(stoch.sum())} neuron(s) (leak below one unit "
                       "per tick)")
    beta_floor = min(lim.threshold_max, lim.v_max)
    if kind == "Threshold":
        alpha = np.ones(n, np.int64)
        beta = np.zeros(n, np.int64)
        gamma = np.zeros(n, np.int64)
        vres = np.zeros(n, np.int64)
    else:
        # V is an integer, so V >= sigma thr  <=>  V >= ceil(sigma thr).
        x = p.thr * sigma
        alpha = np.ceil(x - _TOL * np.maximum(1.0, np.abs(x))).astype(np.int64)
        if np.any(alpha < 1) or np.any(p.thr <= 0):
            raise CompileError(
                f"population {node.name}: v_threshold {float(p.thr.min())} rounds to alpha < 1 "
                "at the chosen scale; raise the threshold relative to the bias or the weights")
        alpha = np.clip(alpha, 1, lim.threshold_max)
        beta = np.full(n, beta_floor, np.int64)
        gamma = np.full(n, 1 if reset == "subtract" else 0, np.int64)
        vres = np.rint(vres_f * sigma)
        vc = np.clip(vres, lim.reset_min, lim.reset_max)
        if np.any(vc != vres):
            p.notes.append(f"v_reset clipped for {int(np.sum(vc != vres))} neuron(s)")
        vres = vc.astype(np.int64)
    vals, counts = np.unique(which, return_counts=True)
    limited = str(vals[np.argmax(counts)]) if vals.size else "weights"
    return Lowered(sigma=sigma, levels=levels, leak=lam_c.astype(np.int64), leak_rev=rev,
                   stoch_leak=stoch.astype(np.int64), alpha=alpha, beta=beta, gamma=gamma,
                   kappa=np.ones(n, np.int64), v_reset=vres, limited_by=limited, step_int=m)


# ------------------------------------------------------------------------------------------
# Fan-in splitting (option split_fanin): partial sums on several cores
# ------------------------------------------------------------------------------------------
SPLIT_KINDS = ("IF", "LIF")
"""Target kinds a split keeps sound: integrators of their input current. A Threshold neuron
(memoryless, EEDN) decides on each tick's input alone, which a relay that carries charge over
ticks would change."""


def _split_bounds(nz: np.ndarray, per_block: int) -> list[int]:
    """Column boundaries ``0 = b_0 < ... < b_k = M`` such that no row has more than
    ``per_block`` non-zeros in any block; greedy, then re-balanced to equal shares."""
    n, m = nz.shape
    cum = np.concatenate([np.zeros((n, 1), np.int64), np.cumsum(nz, axis=1, dtype=np.int64)],
                         axis=1)

    def greedy(limit: int) -> list[int]:
        bounds, s = [0], 0
        while s < m:
            counts = (cum[:, s + 1:] - cum[:, s:s + 1]).max(axis=0)  # non-decreasing in the end
            s += max(1, int(np.searchsorted(counts, limit, side="right")))
            bounds.append(s)
        return bounds

    bounds = greedy(per_block)
    k = len(bounds) - 1
    worst = int(nz.sum(axis=1).max()) if nz.size else 0
    even = greedy(max(1, -(-worst // k)))  # the same number of blocks, fuller ones evened out
    return even if len(even) - 1 <= k else bounds


def _on_cycle(graph: Graph, name: str, chains: list[Chain]) -> bool:
    """Whether a split would lengthen a loop: some input chain's source is reachable from it."""
    import networkx as nx

    g = graph.to_networkx()
    return any(ch.source == name or nx.has_path(g, name, ch.source) for ch in chains)


def split_names(graph: Graph, pops: dict[str, Node], opts: QuantizeOptions) -> list[str] | None:
    """The populations ``opts.split_fanin`` names (None for ``"off"`` and ``"auto"``);
    CompileError for a name that is not a population."""
    mode = str(opts.split_fanin)
    if mode in ("off", "auto"):
        return None
    named = [s.strip() for s in mode.split(",") if s.strip()]
    unknown = [s for s in named if s not in pops]
    if unknown:
        raise CompileError(
            f"quantize: split_fanin names {', '.join(unknown)}, which "
            f"{'is not a population' if len(unknown) == 1 else 'are not populations'} of "
            f"graph {graph.name}; populations: {', '.join(pops) or 'none'} (or use auto/off)")
    return named


def split_decision(graph: Graph, node: Node, chs: list[Chain], opts: QuantizeOptions,
                   lim: Limits, notes: list[str], named: bool) -> list[int] | None:
    """Whether to split population ``node``'s input and where: column boundaries over the
    concatenation of its chains' inputs (in chain order), or None.

    ``named`` (the population is listed in ``split_fanin``): split whenever the fan-in exceeds
    what axon types 4 hold (CompileError when the split would not be sound). ``auto``: only
    where the fan-in leaves the population on coarser weights than a split gives (the best
    unsplit scheme, axon types 2 or per-connection types, with a weight error above
    ``WEIGHT_ERROR_NOTE`` and larger than axon types 4 would have), or does not fit at all;
    unsound cases get a report note instead.
    """
    name = node.name
    if not chs:
        return None
    scheme = "4" if opts.axon_types == "auto" else opts.axon_types
    per_block = lim.axons // SCHEMES[scheme][0]
    w = np.concatenate([ch.w for ch in chs], axis=1)
    nz = w != 0
    worst = int(nz.sum(axis=1).max()) if nz.size else 0
    if worst <= per_block:
        if named:
            notes.append(f"population {name}: split_fanin not needed: fan-in {worst} <= "
                         f"{per_block} inputs already fits axon types {scheme}")
        return None
    pop = _pop(graph, node, chs)
    gain = pop.gain
    if not named:
        # The best weights without a split: axon types 2, or (auto) per-connection types.
        wf = gain[:, None] * w
        errs = [fit_scheme(wf, "2").error] if worst * SCHEMES["2"][0] <= lim.axons else []
        if opts.axon_types == "auto":
            errs += [f.error for f in _group_candidates(pop, wf, lim, skip_three=False)[0]]
        if errs:
            unsplit = min(errs)
            if unsplit <= WEIGHT_ERROR_NOTE or fit_scheme(wf, scheme).error >= unsplit:
                return None
    why = None
    if node.kind not in SPLIT_KINDS:
        why = (f"kind {node.kind} is not an integrator (a {node.kind} neuron decides on each "
               "tick's input alone, which a relay would change)")
    elif _on_cycle(graph, name, chs):
        why = "it lies on a recurrent loop, whose timing the relay tick would change"
    elif not np.all(gain > 0):
        why = "some neurons have no input gain (r = 0)"
    if why is not None:
        if named:
            raise CompileError(f"population {name}: split_fanin cannot split it: {why}; "
                               "remove it from split_fanin")
        notes.append(f"population {name}: not split (split_fanin=auto): {why}")
        return None
    return _split_bounds(nz, per_block)


def _uses(chains: dict[str, list[Chain]]) -> dict[str, int]:
    """How many populations each float connection feeds (a shared one is named per target)."""
    uses: dict[str, int] = {}
    for chs in chains.values():
        for ch in chs:
            if ch.conn is not None:
                uses[ch.conn.name] = uses.get(ch.conn.name, 0) + 1
    return uses


def _never_fires(low: Lowered, q_int: np.ndarray) -> np.ndarray:
    """Neurons that provably never spike under the exact update (docs/families.md 1.2), from
    V = 0, whatever their input: ``I`` = the largest input of one tick (every positive
    synapse active at once). Deterministic leak and threshold (``tm = 0``) only.

    * no leak reversal: ``I + lambda <= 0`` keeps ``V <= 0 < alpha`` after every tick;
    * leak reversal, ``lambda = -L <= 0``: with ``I <= L``, ``V <= L`` is invariant (a positive
      ``V + I <= 2L`` loses ``L``, a negative one gains at most ``L``), so ``L < alpha`` means
      no spike.
    """
    imax = np.clip(q_int, 0, None).sum(axis=1) if q_int.size else np.zeros(low.leak.shape)
    det = low.stoch_leak == 0
    plain = (low.leak_rev == 0) & (imax + low.leak <= 0)
    rev = (low.leak_rev == 1) & (low.leak <= 0) & (imax <= -low.leak) & (-low.leak < low.alpha)
    return det & (plain | rev)


def _prune_silent(chs: list[Chain], silent: dict[str, np.ndarray]) -> int:
    """Zero the weights from source neurons that can never fire (their spikes are known: none);
    returns how many synapses went. A smaller fan-in can afford finer weights."""
    dropped = 0
    for ch in chs:
        dead = silent.get(ch.source)
        if dead is None or not dead.any():
            continue
        gone = int(np.count_nonzero(ch.w[:, dead]))
        if gone:
            ch.w = ch.w.copy()
            ch.w[:, dead] = 0.0
            dropped += gone
    return dropped


def _silent_text(chs: list[Chain], silent: dict[str, np.ndarray]) -> str:
    seen = dict.fromkeys(ch.source for ch in chs if ch.source in silent)
    return ", ".join(f"{int(silent[s].sum())} of {s}" for s in seen if silent[s].any())


def split_fanin(graph: Graph, pops: dict[str, Node], chains: dict[str, list[Chain]],
                plan: dict[str, list[int]]) -> tuple[Graph, dict[str, dict]]:
    """The float graph with each planned population's input split into partial sums.

    For target population ``T`` (``N`` neurons, threshold ``thr``, input gain ``g``) and the
    column blocks of ``plan[T]`` (``k`` non-empty ones): partial population ``T_part{q}``
    holds ``2N`` IF neurons (``r = 1``, reset by subtraction, threshold
    ``theta = thr / (k g)`` in input units); neuron ``j`` gets block ``q`` of ``T_j``'s inputs
    with their weights, neuron ``N + j`` the same inputs negated. A Sparse ``T_merge{q}`` adds
    ``+theta`` per spike of ``j`` and ``-theta`` per spike of ``N + j`` to ``T_j`` (the bias of
    ``T``'s connections rides on the first merge). A partial neuron fires at most once per
    tick, and a subtraction reset keeps the remainder, so over a window the merged input equals
    the original one up to one quantum per partial neuron, one tick later. Delays of the
    original chains stay in front of the partial neurons. Returns the graph and the decisions.
    """
    import dataclasses

    from ir.nodes import IF, Delay, Sparse

    b = GraphBuilder.from_graph(graph)
    info: dict[str, dict] = {}
    new_nodes: dict[str, list[Node]] = {}
    new_edges: list[tuple[str, str]] = []
    drop_edges: set[tuple[str, str]] = set()
    taken = set(graph.nodes)

    def fresh(base: str) -> str:
        name = unique_name(taken, base)
        taken.add(name)
        return name

    for tname, bounds in plan.items():
        node = pops[tname]
        chs = chains[tname]
        p = _pop(graph, node, chs)
        n = p.n
        offsets = np.cumsum([0] + [ch.w.shape[1] for ch in chs])
        w_all = np.concatenate([ch.w for ch in chs], axis=1)
        blocks = [(a, z) for a, z in zip(bounds[:-1], bounds[1:], strict=True)
                  if np.any(w_all[:, a:z] != 0)]
        k = len(blocks)
        theta = p.thr / (k * np.where(p.gain > 0, p.gain, 1.0))
        added: list[Node] = []
        parts: list[str] = []
        bias = np.zeros(n)
        for ch in chs:
            if ch.bias is not None:
                bias = bias + ch.bias
            last = (ch.post[-1].name if ch.post else ch.conn.name if ch.conn is not None
                    else ch.pre[-1].name if ch.pre else ch.source)
            drop_edges.add((last, tname))
        for q, (a, z) in enumerate(blocks):
            pname = fresh(f"{tname}_part{q}")
            parts.append(pname)
            for ci, ch in enumerate(chs):
                lo, hi = max(a, offsets[ci]) - offsets[ci], min(z, offsets[ci + 1]) - offsets[ci]
                if hi <= lo:
                    continue
                sub = ch.w[:, lo:hi]
                rows, cols = np.nonzero(sub)
                if rows.size == 0:
                    continue
                vals = sub[rows, cols]
                src = ch.pre[-1].name if ch.pre else ch.source
                base = ch.conn.name if ch.conn is not None else f"{ch.source}_to_{tname}"
                sname = fresh(f"{base}_part{q}")
                added.append(Sparse(
                    name=sname, in_features=int(ch.w.shape[1]), out_features=2 * n,
                    rows=b.const(f"{sname}.rows", np.concatenate([rows, rows + n]).astype(np.int64)),
                    cols=b.const(f"{sname}.cols", np.concatenate([cols, cols]).astype(np.int64) + lo),
                    values=b.const(f"{sname}.values", np.concatenate([vals, -vals]))))
                new_edges.append((src, sname))
                post = _delay_vec(graph, ch.post, n)
                if post.any():
                    dname = fresh(f"{sname}_delay")
                    added.append(Delay(name=dname, shape=(2 * n,), delay=b.const(
                        f"{dname}.delay", np.concatenate([post, post]).astype(np.float64))))
                    new_edges.append((sname, dname))
                    new_edges.append((dname, pname))
                else:
                    new_edges.append((sname, pname))
            th = np.concatenate([theta, theta])
            thr_ref = float(th[0]) if np.all(th == th[0]) else b.const(f"{pname}.v_threshold", th)
            added.append(IF(name=pname, shape=(2 * n,), v_threshold=thr_ref, reset="subtract"))
            mname = fresh(f"{tname}_merge{q}")
            j = np.arange(n)
            mbias = b.const(f"{mname}.bias", bias) if q == 0 and np.any(bias != 0) else None
            added.append(Sparse(
                name=mname, in_features=2 * n, out_features=n,
                rows=b.const(f"{mname}.rows", np.concatenate([j, j]).astype(np.int64)),
                cols=b.const(f"{mname}.cols", np.concatenate([j, j + n]).astype(np.int64)),
                values=b.const(f"{mname}.values", np.concatenate([theta, -theta])), bias=mbias))
            new_edges += [(pname, mname), (mname, tname)]
        new_nodes[tname] = added
        fan = int((w_all != 0).sum(axis=1).max())
        per = [int((w_all[:, a:z] != 0).sum(axis=1).max()) for a, z in blocks]
        info[tname] = dict(fanin=fan, parts=parts, inputs_per_part=per,
                           blocks=[[int(a), int(z)] for a, z in blocks],
                           quantum=span_float(theta * p.gain), extra_ticks=1)
    # Rebuild in order: the new nodes sit just before their target population.
    nodes: dict[str, Node] = {}
    edges = [e for e in b.edges if e not in drop_edges] + new_edges
    for name, nd in b.nodes.items():
        for item in new_nodes.get(name, []):
            nodes[item.name] = item
        nodes[name] = nd
    # Connections and Delays that fed only the split populations go.
    while True:
        has_succ = {s for s, _ in edges}
        dead = [nm for nm, nd in nodes.items()
                if nd.kind in ("Dense", "Sparse", "Delay") and nm not in has_succ]
        if not dead:
            break
        for nm in dead:
            del nodes[nm]
        edges = [e for e in edges if e[0] not in dead and e[1] not in dead]
    refs = {r.name for nd in nodes.values() for _, r in nd.refs()}
    consts = {k: v for k, v in b.constants.items() if k in refs}
    out = dataclasses.replace(graph, nodes=nodes, edges=tuple(edges), constants=consts)
    return out, info


def span_float(values: np.ndarray) -> float | str:
    """One float, or ``"lo..hi"`` when the neurons differ (4 significant digits)."""
    values = np.asarray(values, np.float64)
    lo, hi = float(values.min()), float(values.max())
    return float(f"{lo:.4g}") if np.isclose(lo, hi) else f"{lo:.4g}..{hi:.4g}"


# ------------------------------------------------------------------------------------------
# The quantizer
# ------------------------------------------------------------------------------------------
@register_quantizer("truenorth")
def quantize_truenorth(graph: Graph, profile, opts: QuantizeOptions) -> tuple[Graph, QuantReport]:
    """Lower a float graph for a truenorth-family profile (see the module doc for every rule)."""
    lim = Limits.from_profile(profile, opts)
    report = QuantReport(target=profile.name, family=profile.family,
                         calibrated=opts.calibration is not None)
    pops_f, chains = collect(graph, "truenorth", readouts=("LI", "CubaLI", "Integrator"))
    for name, node in pops_f.items():  # unsupported kinds fail before any work
        _pop(graph, node, chains[name])
    split_named = split_names(graph, pops_f, opts)
    split_info: dict[str, dict] = {}
    silent: dict[str, np.ndarray] = {}  # per lowered population: neurons that can never fire
    constants: dict[str, np.ndarray] = {}
    cb_builder = GraphBuilder("_")  # only for unique constant names
    natives: dict[str, Node] = {}
    conns: dict[str, list[tuple[Node, str]]] = {}
    taken = set(graph.nodes)
    uses = _uses(chains)
    dec_p: dict[str, Any] = {}
    dec_c: dict[str, Any] = {}
    id_base = 0
    seed = int(opts.seed) & 0xFFFFFFFF
    shifted = 0
    order = list(pops_f)
    i = 0
    while i < len(order):  # populations in graph order; a split inserts its partial sums here
        name = order[i]
        node = pops_f[name]
        pruned = _prune_silent(chains[name], silent)
        if pruned:
            report.notes.append(
                f"population {name}: {pruned} synapse(s) from neurons that can never fire "
                f"({_silent_text(chains[name], silent)}) dropped; the spikes are unchanged")
        want = opts.split_fanin == "auto" or name in (split_named or ())
        bounds = split_decision(graph, node, chains[name], opts, lim, report.notes,
                                named=split_named is not None) if want else None
        if bounds is not None:
            graph, info = split_fanin(graph, {name: node}, {name: chains[name]}, {name: bounds})
            si = split_info[name] = info[name]
            report.notes.append(
                f"population {name}: fan-in {si['fanin']} split over {len(si['parts'])} "
                f"partial-sum populations ({', '.join(si['parts'])}; at most "
                f"{max(si['inputs_per_part'])} inputs each) relaying the input in quanta of "
                f"{si['quantum']} (v_threshold / {len(si['parts'])}); its spikes come 1 tick "
                "later")
            pops_f, chains = collect(graph, "truenorth", readouts=("LI", "CubaLI", "Integrator"))
            uses = _uses(chains)
            taken |= set(graph.nodes)
            order[i:i] = si["parts"]
            continue
        i += 1
        p = _pop(graph, node, chains[name])
        parts = [p.gain[:, None] * ch.w for ch in p.chains]
        w_all = np.concatenate(parts, axis=1) if parts else np.zeros((p.n, 0))
        def splittable(g: Graph = graph, n: Node = node, chs: list[Chain] = p.chains) -> bool:
            return (opts.split_fanin == "off" and n.kind in SPLIT_KINDS
                    and not _on_cycle(g, n.name, chs))

        fit = _shared(fit_scheme(w_all, "2"), p, 0) if not parts else _choose_scheme(
            p, w_all, opts, lim, p.notes, splittable=splittable)
        low = _lower_pop(graph, p, fit, lim)
        # The integer weights realised (levels are integers now): re-encode at the final levels,
        # each group on the subset sums of its own types.
        ideal = w_all * low.sigma[:, None]
        cols = _columns(p)
        group_of: dict[int, Group] = {}
        if len(fit.groups) == 1:
            group_of = dict.fromkeys(range(len(p.chains)), fit.groups[0])
            sums_int = _subset_sums(low.levels[:, :fit.copies].astype(np.float64))
            codes = _encode(ideal, sums_int) if w_all.size else np.zeros((p.n, 0), np.int64)
            q_int = np.take_along_axis(sums_int, codes, axis=1) if w_all.size else codes
        else:
            codes = np.zeros(w_all.shape, np.int64)
            q_int = np.zeros(w_all.shape)
            for g in fit.groups:
                group_of.update(dict.fromkeys(g.chains, g))
                c = np.concatenate([cols[i] for i in g.chains])
                sums_g = _subset_sums(low.levels[:, list(g.types)].astype(np.float64))
                codes[:, c] = _encode(ideal[:, c], sums_g)
                q_int[:, c] = np.take_along_axis(sums_g, codes[:, c], axis=1)
        q_back = q_int / low.sigma[:, None]
        silent[name] = _never_fires(low, q_int)
        def nb(f: str, arr: np.ndarray, _pop: str = name) -> int | Ref:
            return int_param(cb_builder, f"{_pop}.{f}", arr)

        natives[name] = TrueNorthNeuron(
            name=name, shape=node.shape,
            s0=nb("s0", low.levels[:, 0]), s1=nb("s1", low.levels[:, 1]),
            s2=nb("s2", low.levels[:, 2]), s3=nb("s3", low.levels[:, 3]),
            leak=nb("leak", low.leak), leak_rev=nb("leak_rev", low.leak_rev),
            stoch_leak=nb("stoch_leak", low.stoch_leak), alpha=nb("alpha", low.alpha),
            beta=nb("beta", low.beta), gamma=nb("gamma", low.gamma), kappa=nb("kappa", low.kappa),
            v_reset=nb("v_reset", low.v_reset), v_bits=lim.v_bits, overflow=lim.overflow,
            seed=seed, id_base=id_base,
        )
        id_base += p.n
        dec_p[name] = dict(kind=node.kind, axon_types=fit.scheme, copies=fit.copies,
                           weight_error=float(f"{fit.error:.6g}"), limited_by=low.limited_by,
                           sigma=span(np.rint(low.sigma)), alpha=span(low.alpha),
                           leak=span(low.leak), gamma=span(low.gamma))
        report.populations.append(dict(
            name=name, kind=node.kind, neurons=p.n, scale=float(np.median(low.sigma)),
            axon_types=fit.scheme, limited_by=low.limited_by, alpha=span(low.alpha),
            leak=span(low.leak)))
        report.notes.extend(f"population {name}: {t}" for t in p.notes)
        # Crossbars, one per chain (and per delay group).
        col = 0
        conns[name] = []
        for ci, ch in enumerate(p.chains):
            n_src = graph.node(ch.source).size
            sl = slice(col, col + n_src)
            col += n_src
            ch_codes = codes[:, sl]
            grp = group_of[ci]
            k = len(grp.types)
            groups = delay_groups(ch, lim.delay_max, "truenorth")
            if ch.conn is not None:
                base = ch.conn.name if uses[ch.conn.name] == 1 else f"{ch.conn.name}_{name}"
            else:
                base = f"{ch.source}_to_{name}"
            base = base if base not in taken or (ch.conn is not None and base == ch.conn.name) \
                else unique_name(taken, base)
            taken.add(base)
            d = np.maximum(ch.delay, 1)
            for gi, dd in enumerate(groups):
                cname = base if gi == 0 else unique_name(taken, f"{base}_d{dd}")
                taken.add(cname)
                sel = (d == dd) & (ch.w != 0) if len(groups) > 1 else ch.w != 0
                sub = np.where(sel, ch_codes, 0)
                bits = ((sub[:, :, None] >> np.arange(k)[None, None]) & 1).astype(bool)
                crossbar = bits.reshape(p.n, n_src * k)
                types = np.tile(np.asarray(grp.types, dtype=np.int8), n_src)
                cref = cb_builder.const(f"{cname}.crossbar", crossbar)
                tref = cb_builder.const(f"{cname}.axon_types", types)
                cn = TrueNorthCrossbar(name=cname, in_features=n_src, out_features=p.n,
                                       copies=k, crossbar=cref, axon_types=tref,
                                       delay=int(dd))
                conns[name].append((cn, ch.source))
                fd = int(ch.delay.max()) if ch.delay.size else 0
                shifted += fd == 0 and gi == 0
                dec_c[cname] = dict(source=ch.source, target=name, folded=ch.folded,
                                    copies=k, delay=int(dd), float_delay=fd,
                                    **({"types": list(grp.types)} if len(fit.groups) > 1
                                       else {}))
            wf = ch.w * p.gain[:, None]
            # The clipping test per neuron, expressed on the common range [-1, 1]: the ideal
            # integer weight over the neuron's reachable range (level sums plus half a step).
            ideal_c = ideal[:, sl]
            if len(fit.groups) > 1:  # this connection's own types and grid step
                lv = low.levels[:, list(grp.types)]
                prim = max(fit.groups, key=lambda g: len(g.types))
                step_int = low.step_int if grp is prim else grp.step * low.sigma
            else:
                lv, step_int = low.levels, low.step_int
            reach_hi = (np.clip(lv, 0, None).sum(axis=1) + step_int / 2)[:, None]
            reach_lo = (np.clip(lv, None, 0).sum(axis=1) - step_int / 2)[:, None]
            unit_ideal = np.where(ideal_c >= 0, ideal_c / np.maximum(reach_hi, 1e-300),
                                  -ideal_c / np.minimum(reach_lo, -1e-300))
            if grp.lloyd:
                unit_ideal = np.zeros_like(unit_ideal)  # nearest of Lloyd levels: nothing clips
            stats = connection_stats(
                base, wf, q_int[:, sl], q_back[:, sl], ideal=unit_ideal, lo=-1.0, hi=1.0,
                scale=float(np.median(low.sigma)), kind="TrueNorthCrossbar", target=name,
                bits=int(lim.weight_max).bit_length() + 1, levels=1 << k,
                axon_types=fit.scheme if len(fit.groups) == 1 else str(k), copies=k,
                **({"types": ",".join(map(str, grp.types))} if len(fit.groups) > 1 else {}),
                delay=groups[0] if len(groups) == 1 else f"{groups[0]}..{groups[-1]}")
            report.connections.append(stats)
    constants.update(cb_builder.constants)
    if shifted:
        report.notes.append(
            f"{shifted} connection(s) were instantaneous in the float graph and take 1 tick on "
            "TrueNorth (native delay >= 1): spikes of the quantized graph come later by one tick "
            "per such layer")
    decisions = dict(populations=dec_p, connections=dec_c,
                     **({"split_fanin": split_info} if split_info else {}),
                     options=dict(axon_types=opts.axon_types, seed=seed,
                                  **({"split_fanin": opts.split_fanin}
                                     if opts.split_fanin != "off" else {}),
                                  weight_bits=opts.weight_bits,
                                  calibrated=opts.calibration is not None))
    attrs = record(dict(graph.attrs, target=profile.name), "quantize", decisions)
    out = build(graph, natives, conns, constants, attrs)
    if opts.calibration is not None:
        calibration_report(out, list(natives), opts, report)
    return out, report


def calibration_report(g: Graph, pops: list[str], opts: QuantizeOptions,
                       report: QuantReport) -> None:
    """Run the quantized graph on the calibration data: never/always-firing neurons and the mean
    rate per spiking population, added to the report's population rows."""
    from ir.interp_int import run_int

    res = run_int(g, opts.calibration, probes=pops)
    rows = {r["name"]: r for r in report.populations}
    for name in pops:
        if getattr(g.nodes[name], "readout", False):
            continue
        st = population_stats(name, res.probes[name]["out"])
        rows[name].update(never_fire=st["never_fire"], always_fire=st["always_fire"],
                          mean_rate=st["mean_rate"], samples=st["samples"], steps=st["steps"])


__all__ = ["Chain", "Fit", "collect", "fit_scheme", "quantize_truenorth", "split_decision",
           "split_fanin", "trace_chain"]
