"""The ``legalize`` passes: make a graph expressible by the target before and after quantize.

Two passes:

* ``legalize`` (float -> float, generic): lowers ``Conv2d``, ``Conv1d``, ``SumPool2d``,
  ``AvgPool2d``, ``Flatten`` and ``Scale`` to ``Sparse`` connections (COO triplets built with numpy
  broadcasting, zero weights and padding dropped), then composes every connection that feeds
  another connection directly (no neuron between them) into one: ``y = B (A x + a) + b`` becomes
  ``y = (B A) x + (B a + b)``. The lowered graph computes the same function as the float
  interpreter (up to the order of floating-point sums).
  A ``Flatten`` is the identity on flat (C-order) indices, so a Flatten in front of a connection is
  simply skipped; one that feeds an Output stays (the Output keeps its flat shape); one that feeds
  a neuron becomes an identity ``Sparse``.
* ``legalize_family`` (quantized -> quantized): the family's own rules, registered per family
  (:func:`family_legalizer`):

  - ``loihi``: a connection whose delay exceeds ``synapse.delay_max`` is relayed through a chain of
    relay compartments (one per source neuron used; ``du = dv = 4095``, ``vth_mant = 0``, weight
    1: a relay spikes in the very tick its input arrives and forgets it at once), the delays of the
    pieces adding up to the original one, so timing is exact; and no single neuron may need more
    input axons or synapse memory than one core has (``net.fanin``).
  - ``truenorth`` and ``brainscales2``: see their sections below.

Decisions are recorded in ``graph.attrs["passes"]["legalize"]`` / ``["legalize_family"]``; the
family pass also records ``extra_latency`` per output (ticks the mapping adds, 0 when exact).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ir.errors import CompileError
from ir.graph import Graph, GraphBuilder, Stage, unique_name
from ir.nodes import Dense, Node, Ref, Sparse
from nmc.passes import Pass, record, register_pass

LOWERED = ("Conv2d", "Conv1d", "SumPool2d", "AvgPool2d", "Flatten", "Scale")
"""Generic connection kinds lowered to Sparse by ``legalize``."""

Coo = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]
"""(rows, cols, values, bias per output or None)."""

_LOWERINGS: dict[str, Callable[[Graph, Node], Coo]] = {}


def lowering(*kinds: str):
    """Register ``fn(graph, node) -> (rows, cols, values, bias)`` for generic connection kinds."""

    def deco(fn):
        for k in kinds:
            _LOWERINGS[k] = fn
        return fn

    return deco


def _bias_per_output(graph: Graph, node: Node, per_channel: int) -> np.ndarray | None:
    if node.bias is None:
        return None
    b = np.asarray(graph.const(node.bias), dtype=np.float64).reshape(-1)
    return np.repeat(b, per_channel)


@lowering("Conv2d")
def _conv2d(graph: Graph, node: Node) -> Coo:
    """Rows (o, i, j) and columns (c, y, x) of every non-zero weight inside the input."""
    c_in, h, w = node.input_shape
    o_n, ho, wo = node.out_shape
    kh, kw = node.kernel
    (sh, sw), (ph, pw), (dh, dw) = node.stride, node.padding, node.dilation
    cg, og = c_in // node.groups, o_n // node.groups
    wt = np.asarray(graph.const(node.weight), dtype=np.float64).reshape(o_n, cg, kh, kw)
    oo, cc, uu, vv = np.nonzero(wt)
    val = wt[oo, cc, uu, vv]
    cin = (oo // og) * cg + cc
    ii, jj = np.arange(ho), np.arange(wo)
    yy = ii[None, :] * sh - ph + uu[:, None] * dh  # (K, Ho)
    xx = jj[None, :] * sw - pw + vv[:, None] * dw  # (K, Wo)
    ok = ((yy >= 0) & (yy < h))[:, :, None] & ((xx >= 0) & (xx < w))[:, None, :]
    rows = (oo[:, None, None] * ho + ii[None, :, None]) * wo + jj[None, None, :]
    cols = (cin[:, None, None] * h + yy[:, :, None]) * w + xx[:, None, :]
    vals = np.broadcast_to(val[:, None, None], ok.shape)
    return rows[ok], cols[ok], vals[ok], _bias_per_output(graph, node, ho * wo)


@lowering("Conv1d")
def _conv1d(graph: Graph, node: Node) -> Coo:
    c_in, n = node.input_shape
    o_n, lo = node.out_shape
    cg, og = c_in // node.groups, o_n // node.groups
    wt = np.asarray(graph.const(node.weight), dtype=np.float64).reshape(o_n, cg, node.kernel)
    oo, cc, uu = np.nonzero(wt)
    val = wt[oo, cc, uu]
    cin = (oo // og) * cg + cc
    ii = np.arange(lo)
    xx = ii[None, :] * node.stride - node.padding + uu[:, None] * node.dilation  # (K, L)
    ok = (xx >= 0) & (xx < n)
    rows = oo[:, None] * lo + ii[None, :]
    cols = cin[:, None] * n + xx
    vals = np.broadcast_to(val[:, None], ok.shape)
    return rows[ok], cols[ok], vals[ok], _bias_per_output(graph, node, lo)


@lowering("SumPool2d", "AvgPool2d")
def _pool2d(graph: Graph, node: Node) -> Coo:
    c_n, h, w = node.input_shape
    _, ho, wo = node.out_shape
    kh, kw = node.kernel
    sh, sw = node.effective_stride
    ph, pw = node.padding
    # AvgPool divides by the full window (zero padding counts, see ir.nodes.AvgPool2d).
    value = 1.0 / (kh * kw) if node.kind == "AvgPool2d" else 1.0
    cc = np.arange(c_n)[:, None, None, None, None]
    ii = np.arange(ho)[None, :, None, None, None]
    jj = np.arange(wo)[None, None, :, None, None]
    uu = np.arange(kh)[None, None, None, :, None]
    vv = np.arange(kw)[None, None, None, None, :]
    yy = ii * sh - ph + uu
    xx = jj * sw - pw + vv
    shape = (c_n, ho, wo, kh, kw)
    ok = np.broadcast_to((yy >= 0) & (yy < h) & (xx >= 0) & (xx < w), shape)
    rows = np.broadcast_to((cc * ho + ii) * wo + jj, shape)
    cols = np.broadcast_to((cc * h + yy) * w + xx, shape)
    return rows[ok], cols[ok], np.full(int(ok.sum()), value), None


@lowering("Flatten")
def _flatten(graph: Graph, node: Node) -> Coo:
    n = math.prod(node.input_shape)
    idx = np.arange(n)
    return idx, idx, np.ones(n), None


@lowering("Scale")
def _scale(graph: Graph, node: Node) -> Coo:
    f = np.asarray(graph.param(node, "factor"), dtype=np.float64).reshape(-1)
    idx = np.nonzero(f)[0]
    return idx, idx, f[idx], None


# ---- connection algebra ----------------------------------------------------------------------
@dataclass
class Linear:
    """A generic connection as ``y = M x + bias``: dense matrix or COO triplets (flat indices)."""

    n_in: int
    n_out: int
    dense: np.ndarray | None = None
    rows: np.ndarray | None = None
    cols: np.ndarray | None = None
    vals: np.ndarray | None = None
    bias: np.ndarray | None = None
    identity: bool = False

    def coo(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.dense is not None:
            r, c = np.nonzero(self.dense)
            return r, c, self.dense[r, c]
        return self.rows, self.cols, self.vals


def linear_of(graph: Graph, node: Node) -> Linear:
    """The linear map of a generic connection node (Dense, Sparse or a lowered kind)."""
    n_in, n_out = math.prod(node.in_shape), math.prod(node.out_shape)
    if node.kind == "Dense":
        w = np.asarray(graph.const(node.weight), dtype=np.float64).reshape(n_out, n_in)
        b = None if node.bias is None else np.asarray(graph.const(node.bias), np.float64).ravel()
        return Linear(n_in, n_out, dense=w, bias=b)
    if node.kind == "Sparse":
        b = None if node.bias is None else np.asarray(graph.const(node.bias), np.float64).ravel()
        return Linear(n_in, n_out, rows=np.asarray(graph.const(node.rows), np.int64).ravel(),
                      cols=np.asarray(graph.const(node.cols), np.int64).ravel(),
                      vals=np.asarray(graph.const(node.values), np.float64).ravel(), bias=b)
    if node.kind in _LOWERINGS:
        r, c, v, b = _LOWERINGS[node.kind](graph, node)
        return Linear(n_in, n_out, rows=np.asarray(r, np.int64), cols=np.asarray(c, np.int64),
                      vals=np.asarray(v, np.float64), bias=b, identity=node.kind == "Flatten")
    raise CompileError(f"{node.kind} {node.name}: legalize has no lowering for this kind")


def sum_duplicates(n_in: int, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """COO with one entry per (row, col), sorted by row then column, zeros dropped."""
    key = rows * n_in + cols
    uk, inv = np.unique(key, return_inverse=True)
    tot = np.bincount(inv.ravel(), weights=vals, minlength=uk.size)
    keep = tot != 0
    return uk[keep] // n_in, uk[keep] % n_in, tot[keep]


def compose(b: Linear, a: Linear) -> Linear:
    """``b after a``: ``y = B (A x + a) + b`` as one Linear (dense if both are dense)."""
    if a.identity:
        return Linear(a.n_in, b.n_out, dense=b.dense, rows=b.rows, cols=b.cols, vals=b.vals,
                      bias=b.bias, identity=b.identity)
    if b.identity:
        return Linear(a.n_in, b.n_out, dense=a.dense, rows=a.rows, cols=a.cols, vals=a.vals,
                      bias=a.bias)
    bias = None
    if a.bias is not None:
        if b.dense is not None:
            bias = b.dense @ a.bias
        else:
            bias = np.bincount(b.rows, weights=b.vals * a.bias[b.cols], minlength=b.n_out)
    if b.bias is not None:
        bias = b.bias.copy() if bias is None else bias + b.bias
    if a.dense is not None and b.dense is not None:
        return Linear(a.n_in, b.n_out, dense=b.dense @ a.dense, bias=bias)
    br, bc, bv = b.coo()
    ar, ac, av = a.coo()
    # CSR of A by row, then join every entry (r, k) of B with the entries (k, j) of A.
    order = np.argsort(ar, kind="stable")
    ar, ac, av = ar[order], ac[order], av[order]
    ptr = np.zeros(a.n_out + 1, dtype=np.int64)
    np.cumsum(np.bincount(ar, minlength=a.n_out), out=ptr[1:])
    lens = ptr[bc + 1] - ptr[bc]
    rep = np.repeat(np.arange(br.size), lens)
    offs = np.arange(rep.size) - np.repeat(np.cumsum(lens) - lens, lens)
    apos = ptr[bc[rep]] + offs
    rows, cols, vals = sum_duplicates(a.n_in, br[rep], ac[apos], bv[rep] * av[apos])
    dense_ok = (a.dense is not None or b.dense is not None) and rows.size > 0.5 * a.n_in * b.n_out
    if dense_ok:
        m = np.zeros((b.n_out, a.n_in))
        m[rows, cols] = vals
        return Linear(a.n_in, b.n_out, dense=m, bias=bias)
    return Linear(a.n_in, b.n_out, rows=rows, cols=cols, vals=vals, bias=bias)


def _emit(b: GraphBuilder, name: str, lin: Linear) -> Node:
    """The Dense or Sparse node of a Linear (constants named after the node)."""
    bias = None if lin.bias is None else b.const(f"{name}.bias", np.asarray(lin.bias, np.float64))
    if lin.dense is not None:
        return Dense(name=name, in_features=lin.n_in, out_features=lin.n_out,
                     weight=b.const(f"{name}.weight", lin.dense), bias=bias)
    rows, cols, vals = sum_duplicates(lin.n_in, lin.rows, lin.cols, lin.vals)
    if rows.size == 0:  # keep the node well formed: one explicit zero
        rows, cols, vals = np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(1)
    return Sparse(name=name, in_features=lin.n_in, out_features=lin.n_out,
                  rows=b.const(f"{name}.rows", rows.astype(np.int64)),
                  cols=b.const(f"{name}.cols", cols.astype(np.int64)),
                  values=b.const(f"{name}.values", vals.astype(np.float64)), bias=bias)


def lower_generic(graph: Graph, compose_chains: bool = True) -> tuple[Graph, dict]:
    """The float-stage lowering of the module doc; returns the new graph and its decisions."""
    nodes = dict(graph.nodes)
    edges = list(graph.edges)
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    succs: dict[str, list[str]] = {n: [] for n in nodes}
    for a, t in edges:
        preds[t].append(a)
        succs[a].append(t)
    lowered: dict[str, str] = {}
    composed: list[str] = []
    removed: list[str] = []
    lin: dict[str, Linear] = {}
    changed: set[str] = set()

    def is_conn(n: str) -> bool:
        k = nodes[n]
        return k.category == "connection" and (k.kind in LOWERED or k.kind in ("Dense", "Sparse"))

    def linear(n: str) -> Linear:
        if n not in lin:
            lin[n] = linear_of(graph, nodes[n])
        return lin[n]

    order = graph.topo_order()
    # 1. Compose: a connection whose single source is a connection takes over that source's map.
    if compose_chains:
        for n in order:
            if n not in nodes or not is_conn(n):
                continue
            (src,) = preds[n]
            while is_conn(src):
                lin[n] = compose(linear(n), linear(src))
                changed.add(n)
                composed.append(f"{src} -> {n}")
                (new_src,) = preds[src]
                edges.remove((src, n))
                succs[src].remove(n)
                edges.append((new_src, n))
                succs[new_src].append(n)
                preds[n] = [new_src]
                # the source connection disappears once nothing reads it any more
                if not succs[src]:
                    edges.remove((new_src, src))
                    succs[new_src].remove(src)
                    del nodes[src]
                    removed.append(src)
                src = new_src
    # 2. Lower what is left of the lowered kinds (Flatten feeding only Outputs stays).
    b = GraphBuilder.from_graph(graph)
    b.nodes, b.edges = {}, []
    for n, node in nodes.items():
        if node.kind in LOWERED or n in changed:
            if node.kind == "Flatten" and n not in changed and all(
                    nodes[s].kind == "Output" for s in succs[n]):
                b.nodes[n] = node
                continue
            b.nodes[n] = _emit(b, n, linear(n))
            if node.kind in LOWERED:
                lowered[n] = node.kind
        else:
            b.nodes[n] = node
    # Keep the original node order (nodes removed by composition are gone).
    b.nodes = {n: b.nodes[n] for n in graph.nodes if n in b.nodes}
    b.edges = [e for e in _ordered_edges(graph.edges, edges)]
    flattened, inserted = make_flat(b)
    out = b.build()
    out = out.replace(constants=_used_constants(out, graph))
    decisions = {"lowered": dict(sorted(lowered.items())), "composed": composed,
                 "removed": removed, "flattened": flattened, "flatten_inserted": inserted}
    return out, decisions


def _flat_param(b: GraphBuilder, node: Node, fname: str, shape: tuple) -> Any:
    v = getattr(node, fname)
    if not isinstance(v, Ref):
        return v
    arr = np.broadcast_to(np.asarray(b.constants[v.name]), shape).reshape(-1)
    return b.const(f"{node.name}.{fname}", np.ascontiguousarray(arr))


def make_flat(b: GraphBuilder) -> tuple[list[str], list[str]]:
    """Give every node next to a flat connection a shape that matches it (in place on ``b``).

    Dense and Sparse work on flat vectors. A multi-axis source of one gets a Flatten in between
    (shared by all its flat consumers); a multi-axis node fed by one (a population, a Delay, an
    Output) takes the flat shape ``(N,)`` itself, with its per-element constants flattened in C
    order, and so do, in turn, the nodes it feeds directly (an Output of such a population records
    flat vectors: reshape them in C order to get the original layout).
    """
    flat_kinds = ("Dense", "Sparse")

    def needs_flat(n: str) -> bool:
        node = b.nodes[n]
        return len(node.out_shape) > 1 and node.category in ("neuron", "delay", "io")

    preds = {n: [] for n in b.nodes}
    for a, t in b.edges:
        preds[t].append(a)
    work = [t for a, t in b.edges if b.nodes[a].kind in flat_kinds and needs_flat(t)]
    flattened: list[str] = []
    while work:
        n = work.pop(0)
        if not needs_flat(n):
            continue
        node = b.nodes[n]
        size = math.prod(node.out_shape)
        changes: dict[str, Any] = {}
        if hasattr(node, "shape"):
            changes["shape"] = (size,)
        from ir.nodes import field_specs

        for fname, md in field_specs(node):
            if md["kind"] == "param":
                changes[fname] = _flat_param(b, node, fname, node.out_shape)
        import dataclasses

        b.nodes[n] = dataclasses.replace(node, **changes)
        flattened.append(n)
        # Consumers that took the old shape follow (Flatten nodes become identities).
        for a, t in list(b.edges):
            if a != n:
                continue
            tk = b.nodes[t]
            if tk.kind == "Flatten":
                b.nodes[t] = dataclasses.replace(tk, input_shape=(size,))
            elif len(tk.in_shape) > 1:
                work.append(t)
    # Multi-axis sources of flat nodes (connections, flattened nodes) get a Flatten.
    inserted: list[str] = []
    made: dict[str, str] = {}
    new_edges = []
    for a, t in b.edges:
        src, dst = b.nodes[a], b.nodes[t]
        if len(src.out_shape) > 1 and len(dst.in_shape) == 1 and dst.kind != "Flatten" and (
                math.prod(src.out_shape) == dst.in_shape[0]):
            if a not in made:
                from ir.nodes import Flatten

                name = unique_name(b.nodes, f"{a}_flat")
                b.nodes[name] = Flatten(name=name, input_shape=tuple(src.out_shape))
                made[a] = name
                inserted.append(name)
                new_edges.append((a, name))
            new_edges.append((made[a], t))
        else:
            new_edges.append((a, t))
    b.edges = new_edges
    return flattened, inserted


def _ordered_edges(original: tuple, current: list) -> list[tuple[str, str]]:
    """Edges in the original order, new edges (from composition) after them in creation order."""
    cur = set(current)
    orig = set(original)
    keep = [e for e in original if e in cur]
    rest = [e for e in current if e not in orig]
    return keep + rest


def _used_constants(g: Graph, old: Graph) -> dict[str, np.ndarray]:
    """Drop the constants only removed or replaced nodes referenced (others stay as they were)."""
    used = {ref.name for node in g.nodes.values() for _, ref in node.refs()}
    was = {ref.name for node in old.nodes.values() for _, ref in node.refs()}
    return {k: v for k, v in g.constants.items() if k in used or k not in was}


@register_pass
@dataclass(frozen=True)
class Legalize(Pass):
    """Float-stage generic lowering: Conv/pool/Flatten/Scale -> Sparse, and connections in
    series composed into one (see module doc)."""

    name: ClassVar[str] = "legalize"
    needs: ClassVar[Stage] = Stage.FLOAT
    makes: ClassVar[Stage] = Stage.FLOAT
    compose: bool = True

    def applies(self, graph: Graph, target: Any) -> bool:
        return graph.stage == Stage.FLOAT

    def run(self, graph: Graph, target: Any) -> Graph:
        out, decisions = lower_generic(graph, self.compose)
        return out.replace(attrs=record(out.attrs, self.name, decisions))


# ------------------------------------------------------------------------------------------
# Family legalization (after quantize)
# ------------------------------------------------------------------------------------------
FamilyLegalizer = Callable[[Graph, Any, "LegalizeFamily"], tuple[Graph, dict]]
_FAMILY: dict[str, FamilyLegalizer] = {}


def family_legalizer(family: str):
    """Register ``fn(graph, profile, options) -> (graph, decisions)`` for a family."""

    def deco(fn: FamilyLegalizer) -> FamilyLegalizer:
        _FAMILY[family] = fn
        return fn

    return deco


@register_pass
@dataclass(frozen=True)
class LegalizeFamily(Pass):
    """The target family's own legalization after quantize (see module doc).

    ``fanout`` (TrueNorth): ``auto`` (the cheaper of copies and splitters where both are exact),
    ``copy`` or ``splitter``. ``partition`` (TrueNorth): the strategy of the core assignment
    that legalization decides (``contiguous`` or ``mincut``).
    """

    name: ClassVar[str] = "legalize_family"
    needs: ClassVar[Stage] = Stage.QUANTIZED
    makes: ClassVar[Stage] = Stage.QUANTIZED
    fanout: str = "auto"
    partition: str = "contiguous"

    def run(self, graph: Graph, target: Any) -> Graph:
        if self.fanout not in ("auto", "copy", "splitter"):
            raise CompileError(
                f"legalize_family: fanout = {self.fanout!r} is not one of auto, copy, splitter")
        fn = _FAMILY.get(target.family)
        if fn is None:
            decisions: dict = {"family": target.family, "changes": []}
            out = graph
        else:
            out, decisions = fn(graph, target, self)
        decisions.setdefault("extra_latency", {o.name: 0 for o in out.outputs})
        from nmc.passes.cost import share_view

        # Only attrs change here: the next passes reuse the mapping view built above instead of
        # re-reading every synapse (half the time of a TrueNorth full-chip compile).
        return share_view(out, out.replace(attrs=record(out.attrs, self.name, decisions)))


# ---- loihi ------------------------------------------------------------------------------------
@family_legalizer("loihi")
def legalize_loihi(graph: Graph, profile: Any, opts: LegalizeFamily) -> tuple[Graph, dict]:
    """Relay over-long delays (exact), then check that every single neuron fits a core."""
    from ir.native.loihi import DECAY_BITS, LoihiCompartment, LoihiSparse

    full_decay = (1 << DECAY_BITS) - 1  # du = dv = 4095: nothing of u or v carries over
    dmax = int(profile.get("synapse.delay_max"))
    b = GraphBuilder.from_graph(graph)
    changes = []
    for node in list(graph.nodes.values()):
        if node.kind not in ("LoihiDense", "LoihiSparse") or node.delay <= dmax:
            continue
        (src,) = graph.predecessors(node.name)
        if node.kind == "LoihiDense":
            w = np.asarray(graph.const(node.weight))
            rows, cols = np.nonzero(w)
            vals = w[rows, cols]
        else:
            rows = np.asarray(graph.const(node.rows), np.int64).ravel()
            cols = np.asarray(graph.const(node.cols), np.int64).ravel()
            vals = np.asarray(graph.const(node.values)).ravel()
        used = np.unique(cols)
        remap = np.full(node.in_features, -1, np.int64)
        remap[used] = np.arange(used.size)
        remaining, prev, hops = node.delay, src, 0
        while remaining > dmax:
            step = min(dmax, remaining - 1)
            relay = unique_name(b.nodes, f"{node.name}_relay{hops}")
            syn = unique_name(b.nodes, f"{node.name}_hop{hops}")
            n_prev = node.in_features if hops == 0 else used.size
            cols_in = used if hops == 0 else np.arange(used.size)
            b.add(LoihiSparse(
                name=syn, in_features=n_prev, out_features=used.size, sign_mode="excitatory",
                num_weight_bits=8, weight_exp=0, delay=step,
                rows=b.const(f"{syn}.rows", np.arange(used.size, dtype=np.int32)),
                cols=b.const(f"{syn}.cols", cols_in.astype(np.int32)),
                values=b.const(f"{syn}.values", np.ones(used.size, np.int16))), prev)
            # du = dv = 4095: u = a << 6 each tick (no memory), v keeps 1/4096; vth = 0 and a
            # weight of 1 give v = 64 > 0: the relay fires in the tick its input arrives.
            b.add(LoihiCompartment(name=relay, shape=(int(used.size),), du=full_decay,
                                   dv=full_decay, vth_mant=0), syn)
            prev, remaining, hops = relay, remaining - step, hops + 1
        new = LoihiSparse(
            name=node.name, in_features=int(used.size), out_features=node.out_features,
            sign_mode=node.sign_mode, num_weight_bits=node.num_weight_bits,
            weight_exp=node.weight_exp, delay=int(remaining),
            rows=b.const(f"{node.name}.rows", rows.astype(np.int32)),
            cols=b.const(f"{node.name}.cols", remap[cols].astype(np.int32)),
            values=b.const(f"{node.name}.values", np.asarray(vals)))
        b.nodes[node.name] = new
        b.edges = [(prev if (a == src and t == node.name) else a, t) for a, t in b.edges]
        changes.append(f"{node.name}: delay {node.delay} > {dmax} relayed through {hops} "
                       f"population(s) of {used.size} neurons")
    out = b.build() if changes else graph
    fanin = single_neuron_violations(out, profile)
    if fanin:
        from nmc.passes.drc import raise_violations

        raise_violations(fanin, profile.name, "legalize_family")
    return out, {"family": "loihi", "changes": changes}


def single_neuron_violations(graph: Graph, profile: Any) -> list:
    """Neurons that need more of some per-core resource than a whole core has (``net.fanin``).

    Per population, the neuron with the most synapses is costed alone on an empty core (the
    worst case of every additive resource).
    """
    from nmc.passes.cost import cost_model, exceeded, network
    from nmc.passes.drc import Violation

    net = network(graph)
    model = cost_model(profile.family)
    limits = {r: v for r, v in model.limits(profile).items() if r != "axons_out"}
    found = []
    for pop, n in net.sizes.items():
        load = np.zeros(n, dtype=np.int64)
        for c in net.into[pop]:
            load += np.diff(net.conns[c].indptr)
        worst = int(np.argmax(load)) if n else 0
        use = model.usage(net, [(pop, worst, worst + 1)], profile).amounts
        for r in exceeded(use, limits):
            found.append(Violation(
                "net.fanin", f"population {pop} neuron {worst}", use[r], limits[r],
                f"one neuron alone needs more {r} than a core has ({n} neurons like it may "
                "exist); prune or split its inputs (fewer sources, fewer weight bits)",
                detail=f"{int(load[worst])} synapses", quantity=r))
    return found


__all__ = ["LOWERED", "Legalize", "LegalizeFamily", "Linear", "compose", "family_legalizer",
           "linear_of", "lower_generic", "lowering", "single_neuron_violations"]


# ---- truenorth --------------------------------------------------------------------------------
# TrueNorth (hardware.md 1.3): a neuron has exactly one target (core, axon). A source needed by
# several cores (or on several axons of one core: axon-type copies) needs one emitter per
# delivery. Two exact ways, both implemented:
#
# * copies: the population grows by one copy per extra delivery; a copy has the same parameters
#   and the same input rows (the crossbars into the population get the duplicated rows), sits on
#   the core of its original so it shares its input axons, and so fires exactly when its
#   original does. Copies of neuron j occupy elements n, n+1, ... of the population (listed in
#   decisions["copies"]); an Output of the population records them too, the host map
#   (mapping["outputs"]) reads the first n. Stochastic neurons cannot be copied (their random
#   draws depend on the neuron id).
# * splitters: the source sends one spike to a splitter core whose neurons (weight 1, threshold
#   1, reset to 0, no leak) each relay it to one target at +1 tick. The tick is paid back by
#   shortening the connection's delay where it is >= 2; otherwise the network is retimed: every
#   population gets a lag r (longest path over the delay constraints), every crossbar's delay
#   becomes d + r(target) - r(source), and an output appears r(population) ticks later
#   (decisions["extra_latency"]). Retiming is exact only for populations that stay silent and
#   at V = 0 without input (or are memoryless) and draw no random numbers; otherwise splitters
#   are not used.
#
# fanout="auto" builds both where both are exact and keeps the one with fewer cores. Either
# way legalize_family decides the cores (a TrueNorth core assignment and the one-target rule are
# one decision), recorded in decisions["cores"]; the partition pass takes them as they are.


COPY_ROUNDS = 48
"""Most cut-and-count rounds the copy legalization tries before it gives up (then splitters)."""


def _tn_expand(graph: Graph) -> Graph:
    """Crossbars with ``copies = k`` become k crossbars of one copy each (same function), and a
    crossbar feeding several populations becomes one crossbar per population."""
    import dataclasses

    b = GraphBuilder.from_graph(graph)
    changed = False
    preds: dict[str, list[str]] = {n: [] for n in graph.nodes}
    succs: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for a, t in graph.edges:
        preds[t].append(a)
        succs[a].append(t)
    for node in list(graph.nodes.values()):
        if node.kind != "TrueNorthCrossbar":
            continue
        succ = succs[node.name]
        targets = [t for t in succ if graph.nodes[t].category == "neuron"]
        if node.copies == 1 and len(targets) <= 1:
            continue
        changed = True
        (src,) = preds[node.name]
        cb = np.asarray(graph.const(node.crossbar)).astype(bool).reshape(node.out_features, -1)
        types = np.asarray(graph.const(node.axon_types), np.int64).ravel()
        del b.nodes[node.name]
        b.edges = [e for e in b.edges if node.name not in e]
        for ti, t in enumerate(targets or [None]):
            for q in range(node.copies):
                name = node.name if (ti, q) == (0, 0) else unique_name(
                    b.nodes, f"{node.name}_{t}_c{q}" if len(targets) > 1 else f"{node.name}_c{q}")
                new = dataclasses.replace(
                    node, name=name, copies=1,
                    crossbar=b.const(f"{name}.crossbar", np.ascontiguousarray(cb[:, q::node.copies])),
                    axon_types=b.const(f"{name}.axon_types",
                                       np.ascontiguousarray(types[q::node.copies]).astype(np.int8)))
                b.nodes[name] = new
                b.edges.append((src, name))
                if t is not None:
                    b.edges.append((name, t))
                for o in succ:
                    if graph.nodes[o].category != "neuron" and ti == 0:
                        b.edges.append((name, o))
    if not changed:
        return graph
    out = b.build()
    return out.replace(constants=_used_constants(out, graph))


def _tn_deliveries(net, cores) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per source population: (source neuron, connection index, destination core) of every
    delivery, sorted by neuron (connections in graph order, cores ascending)."""
    from nmc.passes.cost import core_of_neuron, delivery_keys

    core_of = core_of_neuron(net, cores)
    n_cores = len(cores)
    names = list(net.conns)
    per: dict[str, list] = {}
    for ci, c in enumerate(names):
        syn = net.conns[c]
        if syn.source_is_input or syn.nnz == 0:
            continue
        for t in syn.targets:
            key = delivery_keys(syn, core_of[t][0], n_cores)
            per.setdefault(syn.source, []).append((key // n_cores, np.full(key.size, ci),
                                                   key % n_cores))
    out = {}
    for s, parts in per.items():
        j = np.concatenate([p[0] for p in parts])
        c = np.concatenate([p[1] for p in parts])
        k = np.concatenate([p[2] for p in parts])
        order = np.lexsort((k, c, j))
        out[s] = (j[order], c[order], k[order])
    return out


def _tn_fanout_counts(net, cores) -> dict[str, np.ndarray]:
    dl = _tn_deliveries(net, cores)
    return {p: np.bincount(dl[p][0], minlength=n) if p in dl else np.zeros(n, np.int64)
            for p, n in net.sizes.items()}


def _tn_stochastic(graph: Graph, node: Node) -> bool:
    return any(np.any(graph.param(node, f, np.int64) != 0)
               for f in ("stoch_syn", "stoch_leak", "tm"))


def _tn_retimable(graph: Graph, node: Node) -> bool:
    """Deterministic, and silent at V = 0 without input (no leak there, positive threshold) or
    memoryless (V back to 0 after every tick: alpha 1, beta 0, kappa 1, reset to 0)."""
    if _tn_stochastic(graph, node):
        return False
    p = {f: graph.param(node, f, np.int64) for f in ("leak", "leak_rev", "alpha", "beta",
                                                        "kappa", "gamma", "v_reset")}
    quiet = np.all(((p["leak"] == 0) | (p["leak_rev"] == 1)) & (p["alpha"] >= 1))
    memless = np.all((p["alpha"] == 1) & (p["beta"] == 0) & (p["kappa"] == 1) & (p["gamma"] == 0)
                     & (p["v_reset"] == 0))
    return bool(quiet or memless)


def _tn_partition(graph: Graph, profile: Any, strategy: str, weights: dict | None = None):
    from nmc.passes.cost import network, neuron_rates
    from nmc.passes.partition import Partitioner, contiguous, mincut

    net = network(graph)
    net.cache["tn_weight"] = weights or {}
    pt = Partitioner.make(graph, profile)
    if strategy == "mincut":
        return net, mincut(pt, neuron_rates(graph, None, 0.05), None)
    return net, contiguous(pt)


def _tn_copies(graph: Graph, profile: Any, strategy: str) -> tuple[Graph, list, dict] | None:
    """The copy-neuron legalization (see above); None when a source needing copies is
    stochastic or the cut does not settle."""
    import dataclasses

    from ir.nodes import field_specs

    weights: dict[str, np.ndarray] = {}
    # A round settles at least one more layer (counted from the outputs), so a chain of L
    # populations needs about L rounds.
    rounds = min(sum(1 for n in graph.nodes.values() if n.category == "neuron") + 2, COPY_ROUNDS)
    for _ in range(rounds):
        net, cores = _tn_partition(graph, profile, strategy, weights)
        m = {p: np.maximum(v, 1) for p, v in _tn_fanout_counts(net, cores).items()}
        grown = {p: np.maximum(weights.get(p, np.ones_like(v)), v) for p, v in m.items()}
        if all(np.array_equal(grown[p], weights.get(p, np.ones_like(grown[p]))) for p in grown):
            break
        weights = grown
    else:
        # The copies keep changing the cut (a recurrent loop, or a mincut that moves): no
        # stable assignment, so copies are not offered.
        net.cache["tn_weight"] = {}
        return None
    net.cache["tn_weight"] = {}
    need = {p: m[p] - 1 for p in m if (m[p] > 1).any()}
    if not need:
        return graph, cores, {}
    for p in need:
        if _tn_stochastic(graph, graph.nodes[p]):
            return None
    dl = _tn_deliveries(net, cores)
    b = GraphBuilder.from_graph(graph)
    copies_of: dict[str, list[int]] = {}
    emitter: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for p, extra in need.items():
        n = net.sizes[p]
        jj = np.repeat(np.arange(n), extra)  # copy k of the population is a copy of jj[k]
        copies_of[p] = jj.tolist()
        j, c, k = dl[p]
        # delivery number within its neuron: 0 -> the neuron itself, i -> its i-th copy
        first = np.searchsorted(j, j)
        rank = np.arange(j.size) - first
        copy_base = np.concatenate([[0], np.cumsum(extra)])[:-1]
        em = np.where(rank == 0, j, n + copy_base[j] + rank - 1)
        emitter[p] = (np.lexsort((k, c, j)), em)
        node = graph.nodes[p]
        changes: dict[str, Any] = {"shape": (n + jj.size,)}
        for fname, md in field_specs(node):
            v = getattr(node, fname)
            if md["kind"] == "param" and isinstance(v, Ref):
                arr = np.broadcast_to(np.asarray(graph.const(v)), node.out_shape).reshape(-1)
                changes[fname] = b.const(f"{p}.{fname}", np.concatenate([arr, arr[jj]]))
        b.nodes[p] = dataclasses.replace(node, **changes)
    names = list(net.conns)
    n_cores = len(cores)
    for ci, cname in enumerate(names):
        syn = net.conns[cname]
        node = graph.nodes[cname]
        cb = np.asarray(graph.const(node.crossbar)).astype(bool)
        types = np.asarray(graph.const(node.axon_types)).ravel()
        new_fields: dict[str, Any] = {}
        tgt = syn.targets[0] if syn.targets else None
        if tgt in need:  # duplicated input rows for the copies of the target
            jj = np.asarray(copies_of[tgt], dtype=np.int64)
            cb = np.concatenate([cb, cb[jj]], axis=0)
            new_fields["out_features"] = cb.shape[0]
        if not syn.source_is_input and syn.source in need:
            src = syn.source
            n = net.sizes[src]
            j, c, k = dl[src]
            _, em = emitter[src]
            sel = c == ci
            key = j[sel] * n_cores + k[sel]
            ems = em[sel]
            from nmc.passes.cost import core_of_neuron

            core_t = core_of_neuron(net, cores)[tgt][0]
            r, col = np.nonzero(cb[: net.sizes[tgt]] if tgt in need else cb)
            pos = np.searchsorted(key, col * n_cores + core_t[r])
            width = n + len(copies_of[src])
            new_cb = np.zeros((cb.shape[0], width), dtype=bool)
            new_cb[r, ems[pos]] = True
            if tgt in need:  # the copies' rows follow their originals
                jj_t = np.asarray(copies_of[tgt], dtype=np.int64)
                new_cb[net.sizes[tgt]:] = new_cb[jj_t]
            cb = new_cb
            types = np.concatenate([types, types[np.asarray(copies_of[src], dtype=np.int64)]])
            new_fields["in_features"] = width
        if new_fields:
            new_fields["crossbar"] = b.const(f"{cname}.crossbar", cb)
            new_fields["axon_types"] = b.const(f"{cname}.axon_types", types.astype(np.int8))
            b.nodes[cname] = dataclasses.replace(node, **new_fields)
    for o in graph.outputs:
        (src,) = graph.predecessors(o.name)
        if src in need:
            b.nodes[o.name] = dataclasses.replace(o, shape=(net.sizes[src] + len(copies_of[src]),))
    out = b.build()
    out = out.replace(constants=_used_constants(out, graph))
    # Cores: every original slice with the copies of its neurons right after it.
    new_cores = []
    for sl in cores:
        entry = []
        for p, s, e in sl:
            entry.append((p, s, e))
            if p in need:
                jj = np.asarray(copies_of[p])
                a, z = np.searchsorted(jj, s), np.searchsorted(jj, e)
                if z > a:
                    n = net.sizes[p]
                    entry.append((p, n + int(a), n + int(z)))
        new_cores.append(entry)
    return out, new_cores, {p: len(v) for p, v in copies_of.items()}


def _tn_splitters(graph: Graph, profile: Any, strategy: str
                  ) -> tuple[Graph, list, dict, dict] | None:
    """The splitter legalization (see above); None when retiming would be needed but is not
    exact."""
    import dataclasses

    from ir.native.truenorth import TrueNorthCrossbar, TrueNorthNeuron

    net, cores = _tn_partition(graph, profile, strategy)
    dl = _tn_deliveries(net, cores)
    split = {p: np.bincount(v[0], minlength=net.sizes[p]) > 1 for p, v in dl.items()}
    split = {p: v for p, v in split.items() if v.any()}
    if not split:
        return graph, cores, {}, {}
    names = list(net.conns)
    dmax = int(profile.get("core.scheduler_slots")) - 1
    neurons_max = int(profile.get("core.neurons"))
    # Retiming: r(T) - r(S) >= lower - d per crossbar (lower 2 where splitters relay).
    lower = {c: 2 if (not s.source_is_input and s.source in split
                      and split[s.source][np.unique(s.cols)].any()) else 1
             for c, s in net.conns.items()}
    lag = {p: 0 for p in [*net.pops, *net.inputs]}
    for _ in range(len(lag) + 1):
        moved = False
        for c, s in net.conns.items():
            for t in s.targets:
                want = lag[s.source] + lower[c] - s.delay
                if want > lag[t]:
                    lag[t] = want
                    moved = True
        if not moved:
            break
    else:
        return None  # a loop would need ever more delay
    for p, r in lag.items():
        if r > 0 and p in net.pops and not _tn_retimable(graph, graph.nodes[p]):
            return None
    newd = {c: s.delay + lag[s.targets[0]] - lag[s.source] if s.targets else s.delay
            for c, s in net.conns.items()}
    if any(d > dmax + (lower[c] == 2) for c, d in newd.items()):
        return None
    b = GraphBuilder.from_graph(graph)
    core_of = __import__("nmc.passes.cost", fromlist=["core_of_neuron"]).core_of_neuron(net, cores)
    splitter_cores: list = []
    info: dict[str, int] = {}
    for p, mask in split.items():
        j, ci, k = dl[p]
        sel = mask[j]
        j, ci, k = j[sel], ci[sel], k[sel]  # deliveries that go through splitters
        n_split = j.size
        if (np.bincount(j) > neurons_max).any():
            raise CompileError(
                f"population {p}: a neuron reaches more than {neurons_max} (core, connection) "
                "targets; one splitter core cannot relay it (reduce its fan-out)")
        sname = unique_name(b.nodes, f"{p}_split")
        b.add(TrueNorthNeuron(name=sname, shape=(n_split,), s0=1, alpha=1))
        feed = unique_name(b.nodes, f"{p}_to_split")
        cb = np.zeros((n_split, net.sizes[p]), dtype=bool)
        cb[np.arange(n_split), j] = True
        outs = [c for c in names if net.conns[c].source == p]
        first = min(newd[c] for c in outs if lower[c] == 2) - 1
        b.add(TrueNorthCrossbar(name=feed, in_features=net.sizes[p], out_features=n_split,
                                crossbar=b.const(f"{feed}.crossbar", cb),
                                axon_types=b.const(f"{feed}.axon_types",
                                                   np.zeros(net.sizes[p], np.int8)),
                                delay=int(first)), p)
        b.connect(feed, sname)
        info[p] = n_split
        for cname in outs:
            syn = net.conns[cname]
            node = graph.nodes[cname]
            t = syn.targets[0]
            full = np.asarray(graph.const(node.crossbar)).astype(bool)
            types = np.asarray(graph.const(node.axon_types)).ravel()
            direct = full.copy()
            direct[:, mask] = False
            mine = ci == names.index(cname)
            if mine.any():
                xs = unique_name(b.nodes, f"{cname}_split")
                cbs = np.zeros((syn.n_out, n_split), dtype=bool)
                idx = np.nonzero(mine)[0]
                r, col = np.nonzero(full)
                keep = mask[col]
                r, col = r[keep], col[keep]
                key = col * len(cores) + core_of[t][0][r]
                dkey = j[idx] * len(cores) + k[idx]
                order = np.argsort(dkey)
                pos = order[np.searchsorted(dkey[order], key)]
                cbs[r, idx[pos]] = True
                b.add(TrueNorthCrossbar(name=xs, in_features=n_split, out_features=syn.n_out,
                                        crossbar=b.const(f"{xs}.crossbar", cbs),
                                        axon_types=b.const(f"{xs}.axon_types",
                                                           types[j].astype(np.int8)),
                                        delay=int(newd[cname] - first)), sname)
                b.connect(xs, t)
            if direct.any():
                b.nodes[cname] = dataclasses.replace(
                    node, crossbar=b.const(f"{cname}.crossbar", direct), delay=int(newd[cname]))
            else:
                del b.nodes[cname]
                b.edges = [e for e in b.edges if cname not in e]
        # Splitter cores: the relays of one source stay together (one target per source).
        axons_max = int(profile.get("core.axons"))
        starts = np.flatnonzero(np.diff(np.concatenate([[-1], j])))  # first relay per source
        ends = np.append(starts[1:], n_split)
        cur, groups = 0, 0
        for a, z in zip(starts.tolist(), ends.tolist(), strict=False):
            if z - cur > neurons_max or groups + 1 > axons_max:
                splitter_cores.append([(sname, int(cur), int(a))])
                cur, groups = a, 0
            groups += 1
        splitter_cores.append([(sname, int(cur), int(n_split))])
    for cname, s in net.conns.items():  # retimed delays of the untouched crossbars
        if cname in b.nodes and b.nodes[cname].kind == "TrueNorthCrossbar" and (
                s.source not in split) and newd[cname] != s.delay:
            b.nodes[cname] = dataclasses.replace(b.nodes[cname], delay=int(newd[cname]))
    out = b.build()
    out = out.replace(constants=_used_constants(out, graph))
    extra = {o: int(lag[net.outputs[o]]) for o in net.outputs}
    return out, [list(c) for c in cores] + splitter_cores, info, extra


@family_legalizer("truenorth")
def legalize_truenorth(graph: Graph, profile: Any, opts: LegalizeFamily) -> tuple[Graph, dict]:
    """One target per neuron (copies or splitters, see above) and the core assignment."""
    from nmc.passes.cost import network

    g = _tn_expand(graph)
    single = single_neuron_violations(g, profile)
    if single:
        from nmc.passes.drc import raise_violations

        raise_violations(single, profile.name, "legalize_family")
    strategy = opts.partition
    cands = []
    if opts.fanout in ("auto", "copy"):
        r = _tn_copies(g, profile, strategy)
        if r is not None:
            cands.append(("copy", r[0], r[1], {"copies": r[2]}, {}))
    if opts.fanout in ("auto", "splitter"):
        r = _tn_splitters(g, profile, strategy)
        if r is not None:
            cands.append(("splitter", r[0], r[1], {"splitters": r[2]}, r[3]))
    if not cands:
        raise CompileError(
            f"legalize_family (truenorth): fanout = {opts.fanout!r} cannot be made exact for "
            f"graph {graph.name}: copies need deterministic neurons and a cut that settles "
            "(contiguous partition, no growing loop), splitters need delays >= 2 or populations "
            "that stay silent without input; try fanout='auto' or partition='contiguous'")
    cands.sort(key=lambda c: (len(c[2]), c[0] != "copy"))
    how, out, cores, detail, extra = cands[0]
    network(out)
    decisions = {
        "family": "truenorth",
        "fanout": how,
        "considered": {c[0]: len(c[2]) for c in cands},
        **detail,
        "cores": [[[p, int(s), int(e)] for p, s, e in c] for c in cores if c],
        "extra_latency": {o.name: int(extra.get(o.name, 0)) for o in out.outputs},
    }
    return out, decisions


# ---- brainscales2 -----------------------------------------------------------------------------
@family_legalizer("brainscales2")
def legalize_brainscales2(graph: Graph, profile: Any, opts: LegalizeFamily
                          ) -> tuple[Graph, dict]:
    """Fan-in above ``core.rows`` rows: merge neuron circuits (exact: the joined circuits act as
    one neuron, each brings its own 256-row synapse column, hardware.md 3).

    Per population, ``k`` = the fewest circuits per neuron (at most ``core.max_merge``) with which
    the neediest neuron of the population alone fits the rows of a hemisphere (rows counted as in
    :class:`nmc.passes.cost.BrainScaleS2Cost`: per connection, sign, parallel synapse and
    64-source address group). Recorded in ``decisions["circuits"]`` (populations with k > 1); the
    cost model then charges k circuits per neuron and divides each neuron's row demand by k.
    """
    from nmc.passes.cost import cost_model, network

    net = network(graph)
    model = cost_model("brainscales2")
    rows_max = int(profile.get("core.rows"))
    merge_max = int(profile.get("core.max_merge", 1))
    circuits: dict[str, int] = {}
    changes: list[str] = []
    for pop, n in net.sizes.items():
        load = np.zeros(n, dtype=np.int64)
        for c in net.into[pop]:
            load += np.diff(net.conns[c].indptr)
        order = np.argsort(-load, kind="stable")[: min(n, 8)]  # the neediest neurons
        need = 0
        net.cache["circuits"] = {}
        for j in order.tolist():
            need = max(need, model.rows(net, [(pop, j, j + 1)], profile))
        if need <= rows_max:
            continue
        k = None
        for kk in range(2, merge_max + 1):
            net.cache["circuits"] = {pop: kk}
            if all(model.rows(net, [(pop, j, j + 1)], profile) <= rows_max for j in order.tolist()):
                k = kk
                break
        if k is None:
            from nmc.passes.drc import Violation, raise_violations

            # Report what fails: the rows one circuit still needs at the most merged circuits
            # (rows are allocated in whole blocks per circuit, so need / max_merge undercounts).
            net.cache["circuits"] = {pop: merge_max}
            worst = max(model.rows(net, [(pop, j, j + 1)], profile) for j in order.tolist())
            net.cache.pop("circuits", None)
            raise_violations([Violation(
                "net.fanin", f"population {pop} (per circuit, {merge_max} merged)", worst,
                rows_max,
                f"a neuron needs {need} synapse rows; merged over the most circuits "
                f"(core.max_merge = {merge_max}) one circuit still needs {worst}; prune its "
                "inputs or use fewer parallel synapses (smaller weights)", quantity="rows")],
                profile.name, "legalize_family")
        net.cache.pop("circuits", None)
        circuits[pop] = k
        changes.append(f"{pop}: {need} rows per neuron > {rows_max}: {k} circuits per neuron")
    net.cache.pop("circuits", None)
    return graph, {"family": "brainscales2", "circuits": circuits, "changes": changes}
