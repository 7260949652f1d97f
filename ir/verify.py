"""The IR verifier: checks every rule of a graph and reports all broken ones at once.

:func:`problems` returns the list of problems (empty for a valid graph) in a deterministic order;
:func:`verify` raises :class:`ir.errors.VerifyError` holding that list. Passes run :func:`verify`
after every step (``nmc.passes.run_passes``), frontends before they hand a graph over.

Rules, in the order their problems are listed:

1. graph: ``dt`` is a finite number > 0; stage rules: a ``float`` graph holds only kinds of family
   ``generic``; from ``quantized`` on, every node except Input, Output and Flatten is a native kind,
   all of one family, and ``attrs["target"]`` names the target profile;
2. edges name existing nodes and appear once;
3. shapes agree on every edge: ``source.out_shape == target.in_shape``;
4. constants are numeric (bool, integer or float dtype) and finite;
5. per node (in insertion order):
   an Input has no incoming edge; an Output exactly one incoming and no outgoing edge; a connection
   or a Delay exactly one incoming edge; every Ref names an existing constant; a Ref parameter is
   one value (size 1) or broadcasts to the node's shape (one value per neuron), and every element
   meets the field's declared constraints (``ir.nodes.spec``: positive, nonneg, integer, lo, hi);
   weight shapes of Dense (out, in), Sparse (1-D COO triplets of equal length, integer indices in
   range), Conv2d (C_out, C_in/groups, kh, kw), Conv1d (C_out, C_in/groups, k), biases (out,);
   then the rules registered for the node's family (:func:`family_rule`);
6. no zero-delay cycle: every loop passes through a node whose smallest delay
   (``Graph.min_delay``) is at least one step: a Delay whose every element is >= 1, or a native
   connection with ``delay >= 1``.

Family rules: ``@family_rule("loihi")`` registers ``fn(graph, node) -> list[str]``, called for every
node of that family whose constants exist and are finite numeric arrays (so a rule may read them
without guarding). ``ir.native.<family>`` modules register theirs when imported; the Loihi weight
rules live here. This module never imports ``ir.native`` at import time (the native modules import
this one to register their rules); :func:`problems` imports it lazily.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ir.errors import VerifyError
from ir.graph import Graph, Stage
from ir.nodes import Node, Ref, field_specs

FamilyRule = Callable[[Graph, Node], list[str]]

_FAMILY_RULES: dict[str, list[FamilyRule]] = {}

ANY_STAGE_KINDS = ("Input", "Output", "Flatten")
"""Generic kinds allowed in every stage (they carry no arithmetic a chip would have to do)."""

_NUMERIC_KINDS = "biuf"  # bool, signed int, unsigned int, float


def family_rule(family: str) -> Callable[[FamilyRule], FamilyRule]:
    """Decorator registering ``fn(graph, node) -> list[str]`` as a verifier rule for the nodes of
    ``family``. Registering the same function again (module reload) replaces it."""

    def deco(fn: FamilyRule) -> FamilyRule:
        rules = _FAMILY_RULES.setdefault(family, [])
        key = (fn.__module__, fn.__qualname__)
        rules[:] = [r for r in rules if (r.__module__, r.__qualname__) != key]
        rules.append(fn)
        return fn

    return deco


def family_rules(family: str) -> list[FamilyRule]:
    """The rules registered for ``family``, in registration order."""
    return list(_FAMILY_RULES.get(family, ()))


def verify(graph: Graph) -> None:
    """Raise :class:`VerifyError` listing every problem of ``graph``; return None if it is valid."""
    found = problems(graph)
    if found:
        raise VerifyError(found)


def problems(graph: Graph) -> list[str]:
    """Every broken rule of ``graph`` as a message, in a deterministic order (see module doc)."""
    # Native modules register their family rules on import; importing here (not at module level)
    # avoids an import cycle with ir.native.<family>, which imports this module.
    import ir.native  # noqa: F401

    out: list[str] = []
    out += _graph_problems(graph)
    edges, edge_problems = _edge_problems(graph)
    out += edge_problems
    out += _shape_problems(graph, edges)
    bad_consts, const_problems = _constant_problems(graph)
    out += const_problems
    preds: dict[str, list[str]] = {n: [] for n in graph.nodes}
    succs: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for a, b in edges:
        preds[b].append(a)
        succs[a].append(b)
    for node in graph.nodes.values():
        out += _node_problems(graph, node, preds[node.name], succs[node.name], bad_consts)
    out += _cycle_problems(graph, edges)
    return out


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------
def _owner(node: Node) -> str:
    return f"{node.kind} {node.name}"


def _shape(s: Iterable[int]) -> str:
    return "[" + ", ".join(str(int(v)) for v in s) + "]"


def _num(v: Any) -> str:
    """A number as Python prints it (numpy scalars unwrapped): ``3``, ``-0.5``, ``2.0``."""
    v = v.item() if isinstance(v, np.generic) else v
    return repr(v) if isinstance(v, float) else str(v)


def _first_bad(arr: np.ndarray, mask: np.ndarray) -> tuple[str, Any, int]:
    """Index (as ``[i, j]``), value and count of the elements where ``mask`` is true (C order)."""
    flat = int(np.flatnonzero(mask.ravel())[0])
    idx = np.unravel_index(flat, arr.shape) if arr.ndim else ()
    return _shape(idx), arr[idx] if arr.ndim else arr[()], int(np.count_nonzero(mask))


def _of(count: int, size: int) -> str:
    return f"({count} of {size} elements)"


def _usable(graph: Graph, ref: Any, bad: set[str]) -> np.ndarray | None:
    """The array behind ``ref`` if it exists, is numeric and finite; else None (already reported)."""
    if not isinstance(ref, Ref) or ref.name in bad or ref.name not in graph.constants:
        return None
    return graph.constants[ref.name]


def _min_delay(graph: Graph, node: Node) -> int:
    """``Graph.min_delay`` that never raises: a missing or non-finite delay constant counts as 0
    (that problem is reported by the constant rules)."""
    d = getattr(node, "delay", None)
    if isinstance(d, Ref):
        a = graph.constants.get(d.name)
        if a is None or a.size == 0 or a.dtype.kind not in _NUMERIC_KINDS:
            return 0
        m = float(np.min(a))
        return int(math.floor(m)) if math.isfinite(m) else 0
    try:
        return int(node.delay_steps)
    except (TypeError, ValueError):
        return 0


# ------------------------------------------------------------------------------------------
# 1. graph and stage
# ------------------------------------------------------------------------------------------
def _graph_problems(graph: Graph) -> list[str]:
    out: list[str] = []
    g = graph.name
    dt = graph.dt
    if isinstance(dt, bool) or not isinstance(dt, int | float) or not math.isfinite(dt) or dt <= 0:
        out.append(f"graph {g}: dt = {dt!r} must be a finite number > 0 (seconds per step)")
    stage = graph.stage
    if stage == Stage.FLOAT:
        for n in graph.nodes.values():
            if n.family != "generic":
                out.append(
                    f"{_owner(n)}: native kind of family {n.family} in a float-stage graph; "
                    "a float graph holds generic kinds only (quantize makes native kinds)"
                )
        return out
    families: dict[str, list[str]] = {}
    for n in graph.nodes.values():
        if n.family == "generic":
            if n.kind not in ANY_STAGE_KINDS:
                out.append(
                    f"{_owner(n)}: generic kind in a {stage.value}-stage graph; from stage "
                    "quantized on a graph holds native kinds only (quantize it for a target)"
                )
        else:
            families.setdefault(n.family, []).append(n.name)
    if len(families) > 1:
        listed = "; ".join(f"{f}: {', '.join(names)}" for f, names in families.items())
        out.append(
            f"graph {g}: native kinds of {len(families)} families ({listed}); a "
            f"{stage.value}-stage graph holds the kinds of one family (one target)"
        )
    target = graph.attrs.get("target")
    if target is None:
        out.append(
            f'graph {g}: stage {stage.value} needs attrs["target"], the name of the target '
            "profile (quantize sets it)"
        )
    elif not isinstance(target, str) or not target:
        out.append(f'graph {g}: attrs["target"] = {target!r} must be a profile name (a string)')
    return out


# ------------------------------------------------------------------------------------------
# 2. edges, 3. shapes
# ------------------------------------------------------------------------------------------
def _edge_problems(graph: Graph) -> tuple[list[tuple[str, str]], list[str]]:
    """Problems of the edge list, and the unique edges between existing nodes (in order)."""
    out: list[str] = []
    counts: dict[tuple[str, str], int] = {}
    for e in graph.edges:
        counts[e] = counts.get(e, 0) + 1
    valid: list[tuple[str, str]] = []
    for (a, b), k in counts.items():
        ok = True
        for x in dict.fromkeys((a, b)):
            if x not in graph.nodes:
                out.append(f"edge {a} -> {b}: no node named {x}")
                ok = False
        if k > 1:
            out.append(f"edge {a} -> {b} appears {k} times; list each edge once")
        if ok:
            valid.append((a, b))
    return valid, out


def _shape_problems(graph: Graph, edges: list[tuple[str, str]]) -> list[str]:
    out: list[str] = []
    for a, b in edges:
        src, dst = graph.nodes[a], graph.nodes[b]
        so, ti = tuple(src.out_shape), tuple(dst.in_shape)
        if so != ti:
            fix = " (insert a Flatten)" if math.prod(so) == math.prod(ti) and len(ti) == 1 else ""
            out.append(
                f"edge {a} -> {b}: {_owner(src)} outputs shape {_shape(so)}, {_owner(dst)} takes "
                f"shape {_shape(ti)}; the shapes must be equal{fix}"
            )
    return out


# ------------------------------------------------------------------------------------------
# 4. constants
# ------------------------------------------------------------------------------------------
def _constant_problems(graph: Graph) -> tuple[set[str], list[str]]:
    """Problems of the constant pool and the names of the unusable constants."""
    out: list[str] = []
    bad: set[str] = set()
    for name, arr in graph.constants.items():
        if arr.dtype.kind not in _NUMERIC_KINDS:
            out.append(
                f"constant @{name}: dtype {arr.dtype} is not numeric; constants hold bool, "
                "integer or float arrays"
            )
            bad.add(name)
            continue
        if arr.dtype.kind == "f":
            found = _non_finite(arr)
            if found is not None:
                idx, v, k = found
                out.append(
                    f"constant @{name}: element {idx} = {float(v)!r}; constants must be finite "
                    f"({k} non-finite of {arr.size} elements)"
                )
                bad.add(name)
    return bad, out


_FINITE_MEMO: dict[int, tuple[Any, tuple[str, Any, int] | None]] = {}


def _non_finite(arr: np.ndarray) -> tuple[str, Any, int] | None:
    """``_first_bad`` of the non-finite elements of a float array, or None when all are finite;
    remembered per read-only array that owns its data (a graph's frozen constants), so a float
    graph verified before and after legalize is scanned once."""
    hit = _FINITE_MEMO.get(id(arr))
    if hit is not None and hit[0]() is arr:
        return hit[1]
    finite = np.isfinite(arr)
    out = None if finite.all() else _first_bad(arr, ~finite)
    if not arr.flags.writeable and arr.base is None:  # frozen and owning its data
        key = id(arr)
        try:
            _FINITE_MEMO[key] = (weakref.ref(arr, lambda _r, k=key: _FINITE_MEMO.pop(k, None)), out)
        except TypeError:  # pragma: no cover - an array type without weakref support
            pass
    return out


# ------------------------------------------------------------------------------------------
# 5. nodes
# ------------------------------------------------------------------------------------------
def _node_problems(
    graph: Graph, node: Node, preds: list[str], succs: list[str], bad: set[str]
) -> list[str]:
    out = _io_problems(node, preds, succs)
    missing = False
    for fname, ref in _refs(node):
        if ref.name not in graph.constants:
            out.append(
                f"{_owner(node)}: field {fname} names @{ref.name}, which is not in the constant pool"
            )
            missing = True
    out += _param_problems(graph, node, bad)
    check = _WEIGHT_RULES.get(node.kind)
    if check is not None:
        out += check(graph, node, bad)
    usable = not missing and not any(r.name in bad for _, r in _refs(node))
    if usable:
        for rule in family_rules(node.family):
            out += list(rule(graph, node))
    return out


_REFS_MEMO: dict[int, tuple[Any, list[tuple[str, Ref]]]] = {}


def _refs(node: Node) -> list[tuple[str, Ref]]:
    """``node.refs()``, remembered per node object (nodes are immutable; the verifier asks
    several times per node and verification, for thousands of nodes after every pass)."""
    hit = _REFS_MEMO.get(id(node))
    if hit is not None and hit[0]() is node:
        return hit[1]
    refs = node.refs()
    key = id(node)
    try:
        _REFS_MEMO[key] = (weakref.ref(node, lambda _r, k=key: _REFS_MEMO.pop(k, None)), refs)
    except TypeError:  # pragma: no cover - an object without weakref support
        pass
    return refs


def _io_problems(node: Node, preds: list[str], succs: list[str]) -> list[str]:
    out: list[str] = []
    o = _owner(node)
    src = f" (from {', '.join(preds)})" if preds else ""
    if node.kind == "Input":
        if preds:
            out.append(
                f"{o}: incoming edge from {', '.join(preds)}; an Input is driven by input data only"
            )
    elif node.kind == "Output":
        if len(preds) != 1:
            out.append(
                f"{o}: {len(preds)} incoming edges{src}; an Output records exactly one source"
            )
        if succs:
            out.append(
                f"{o}: outgoing edge to {', '.join(succs)}; an Output is a sink (connect its "
                "source instead)"
            )
    elif node.category in ("connection", "delay") and len(preds) != 1:
        what = "a Delay" if node.category == "delay" else "a connection"
        fix = " (use one connection per source)" if len(preds) > 1 else ""
        out.append(f"{o}: {len(preds)} incoming edges{src}; {what} takes exactly one source{fix}")
    return out


_BOUND_RULES: tuple[tuple[str, Callable[[np.ndarray, Any], np.ndarray], str], ...] = (
    ("positive", lambda a, _: ~(a > 0), "must be > 0"),
    ("nonneg", lambda a, _: ~(a >= 0), "must be >= 0"),
    ("integer", lambda a, _: a != np.round(a), "must be an integer"),
    ("lo", lambda a, lo: a < lo, "is below the minimum {lo}"),
    ("hi", lambda a, hi: a > hi, "is above the maximum {hi}"),
)


_PARAM_MEMO: dict[int, tuple[Any, tuple[Any, ...], list[str]]] = {}


def _param_problems(graph: Graph, node: Node, bad: set[str]) -> list[str]:
    """Shape and element-wise constraints of the arrays behind Ref fields.

    The result depends only on the node and the arrays its fields name, and passes after
    quantize keep both (they change the mapping): it is remembered per (node object, array
    objects), so the verification after every pass does not rescan every parameter array.
    """
    refs = _refs(node)
    arrays = tuple(graph.constants.get(r.name) for _, r in refs)
    if any(r.name in bad for _, r in refs):
        return _param_problems_uncached(graph, node, bad)
    hit = _PARAM_MEMO.get(id(node))
    if hit is not None and hit[0]() is node and len(hit[1]) == len(arrays) and all(
            (w is None and a is None) or (w is not None and w() is a)
            for w, a in zip(hit[1], arrays, strict=True)):
        return list(hit[2])
    out = _param_problems_uncached(graph, node, bad)
    key = id(node)
    try:  # weak references only: the memo never keeps a node or an array alive
        ref = weakref.ref(node, lambda _r, k=key: _PARAM_MEMO.pop(k, None))
        warrs = tuple(None if a is None else weakref.ref(a) for a in arrays)
    except TypeError:  # pragma: no cover - an object without weakref support
        return out
    _PARAM_MEMO[key] = (ref, warrs, list(out))
    return out


def _param_problems_uncached(graph: Graph, node: Node, bad: set[str]) -> list[str]:
    out: list[str] = []
    o = _owner(node)
    for fname, md in field_specs(node):
        ref = getattr(node, fname)
        arr = _usable(graph, ref, bad)
        if arr is None:
            continue
        if md["kind"] == "param":
            shape = tuple(node.out_shape)
            if arr.size != 1 and not _broadcasts(arr.shape, shape):
                out.append(
                    f"{o}: field {fname} = @{ref.name} has shape {_shape(arr.shape)}; a parameter "
                    f"is one value or one per neuron (broadcastable to {_shape(shape)})"
                )
        if arr.size == 0:
            continue
        for flag, test, text in _BOUND_RULES:
            limit = md.get(flag)
            if limit is None or limit is False:
                continue
            mask = test(arr, limit)
            if mask.any():
                idx, v, k = _first_bad(arr, mask)
                msg = text.format(lo=_num(md["lo"]), hi=_num(md["hi"]))
                out.append(
                    f"{o}: field {fname} = @{ref.name}: element {idx} = {_num(v)} {msg} "
                    f"{_of(k, arr.size)}"
                )
    return out


def _broadcasts(src: tuple[int, ...], dst: tuple[int, ...]) -> bool:
    try:
        return np.broadcast_shapes(src, dst) == dst
    except ValueError:
        return False


# ---- weight shapes ---------------------------------------------------------------------------
def dense_problems(graph: Graph, node: Node, bad: set[str] = frozenset()) -> list[str]:
    """A dense weight of shape (out_features, in_features) and a bias of shape (out_features,).
    Public so that family rules of native dense kinds can reuse it."""
    out: list[str] = []
    want = (node.out_features, node.in_features)
    w = _usable(graph, node.weight, set(bad))
    if w is not None and w.shape != want:
        out.append(
            f"{_owner(node)}: weight @{node.weight.name} has shape {_shape(w.shape)}; expected "
            f"[out_features, in_features] = {_shape(want)}"
        )
    out += _bias_problems(graph, node, bad, node.out_features, "out_features")
    return out


def _bias_problems(graph: Graph, node: Node, bad: set[str], n: int, what: str) -> list[str]:
    b = _usable(graph, getattr(node, "bias", None), set(bad))
    if b is not None and b.shape != (n,):
        return [
            f"{_owner(node)}: bias @{node.bias.name} has shape {_shape(b.shape)}; expected "
            f"[{what}] = [{n}]"
        ]
    return []


def coo_problems(graph: Graph, node: Node, bad: set[str] = frozenset()) -> list[str]:
    """COO triplets ``rows`` (post), ``cols`` (pre), ``values``: 1-D, equal lengths, integer
    indices with ``0 <= rows < out_features`` and ``0 <= cols < in_features``; a bias of shape
    (out_features,). Public so that family rules of native sparse kinds can reuse it."""
    out: list[str] = []
    o = _owner(node)
    arrays = {f: _usable(graph, getattr(node, f), set(bad)) for f in ("rows", "cols", "values")}
    flat = True
    for f, a in arrays.items():
        if a is not None and a.ndim != 1:
            out.append(
                f"{o}: {f} @{getattr(node, f).name} has shape {_shape(a.shape)}; rows, cols and "
                "values must be 1-D (one entry per synapse)"
            )
            flat = False
    if flat and all(a is not None for a in arrays.values()):
        lens = [a.shape[0] for a in arrays.values()]
        if len(set(lens)) > 1:
            out.append(
                f"{o}: rows, cols and values have lengths {', '.join(map(str, lens))}; they must "
                "be equal (one entry per synapse)"
            )
    for f, n, what in (
        ("rows", node.out_features, "out_features"),
        ("cols", node.in_features, "in_features"),
    ):
        a = arrays[f]
        if a is None:
            continue
        if a.dtype.kind not in "iu":
            out.append(
                f"{o}: {f} @{getattr(node, f).name} has dtype {a.dtype}; indices must be integers"
            )
            continue
        mask = (a < 0) | (a >= n)
        if a.size and mask.any():
            idx, v, k = _first_bad(a, mask)
            out.append(
                f"{o}: {f} @{getattr(node, f).name}: element {idx} = {int(v)} is outside "
                f"0..{n - 1} ({what} = {n}) {_of(k, a.size)}"
            )
    out += _bias_problems(graph, node, bad, node.out_features, "out_features")
    return out


def _conv_problems(graph: Graph, node: Node, bad: set[str]) -> list[str]:
    """Conv2d weight (C_out, C_in/groups, kh, kw), Conv1d weight (C_out, C_in/groups, k); bias
    (C_out,)."""
    out: list[str] = []
    cin = node.input_shape[0]
    if node.kind == "Conv2d":
        want = (node.out_channels, cin // node.groups, *node.kernel)
        names = "[out_channels, in_channels/groups, kh, kw]"
    else:
        want = (node.out_channels, cin // node.groups, node.kernel)
        names = "[out_channels, in_channels/groups, kernel]"
    w = _usable(graph, node.weight, bad)
    if w is not None and w.shape != want:
        out.append(
            f"{_owner(node)}: weight @{node.weight.name} has shape {_shape(w.shape)}; expected "
            f"{names} = {_shape(want)}"
        )
    out += _bias_problems(graph, node, bad, node.out_channels, "out_channels")
    return out


_WEIGHT_RULES: dict[str, Callable[[Graph, Node, set[str]], list[str]]] = {
    "Dense": dense_problems,
    "Sparse": coo_problems,
    "Conv2d": _conv_problems,
    "Conv1d": _conv_problems,
}


# ------------------------------------------------------------------------------------------
# 6. zero-delay cycles
# ------------------------------------------------------------------------------------------
def _cycle_problems(graph: Graph, edges: list[tuple[str, str]]) -> list[str]:
    """Each strongly connected set of nodes joined by zero-delay edges is a zero-delay cycle.

    An edge out of a node whose smallest delay is >= 1 step does not tie the two steps together
    (the node's output at t depends on earlier inputs only), so such edges are cut first.
    """
    delayed = {n for n, node in graph.nodes.items() if _min_delay(graph, node) >= 1}
    if _acyclic(graph.nodes, [(a, b) for a, b in edges if a not in delayed]):
        return []  # the common case, without building a networkx graph (or importing it)
    import networkx as nx

    g = nx.DiGraph()
    g.add_nodes_from(graph.nodes)
    zero = [(a, b) for a, b in edges if a not in delayed]
    g.add_edges_from(zero)
    index = {n: i for i, n in enumerate(graph.nodes)}
    succ: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for a, b in zero:
        succ[a].append(b)
    comps = []
    for comp in nx.strongly_connected_components(g):
        if len(comp) > 1 or any(b == a for a in comp for b in succ[a]):
            comps.append(sorted(comp, key=index.__getitem__))
    out = []
    for comp in sorted(comps, key=lambda c: index[c[0]]):
        cycle = _shortest_cycle(comp[0], set(comp), succ)
        out.append(
            f"graph {graph.name}: zero-delay cycle {' -> '.join(cycle)}; a loop needs a node "
            "with a delay of at least 1 step (a Delay whose every element is >= 1, or a native "
            "connection with delay >= 1)"
        )
    return out


def _acyclic(nodes: Iterable[str], edges: list[tuple[str, str]]) -> bool:
    """True when the directed graph has no cycle (a self-loop is one): Kahn's algorithm removes
    every node exactly when no cycle is left."""
    indeg = dict.fromkeys(nodes, 0)
    succ: dict[str, list[str]] = {}
    for a, b in edges:
        indeg[b] += 1
        succ.setdefault(a, []).append(b)
    ready = [n for n, d in indeg.items() if d == 0]
    seen = 0
    while ready:
        n = ready.pop()
        seen += 1
        for b in succ.get(n, ()):
            indeg[b] -= 1
            if indeg[b] == 0:
                ready.append(b)
    return seen == len(indeg)


def _shortest_cycle(start: str, comp: set[str], succ: dict[str, list[str]]) -> list[str]:
    """The shortest path start -> ... -> start inside ``comp`` (breadth first, edge order)."""
    parent: dict[str, str] = {}
    frontier = [start]
    seen = {start}
    while frontier:
        nxt = []
        for a in frontier:
            for b in succ[a]:
                if b not in comp:
                    continue
                if b == start:
                    path = [a]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return [start, *reversed(path[:-1]), start] if a != start else [start, start]
                if b not in seen:
                    seen.add(b)
                    parent[b] = a
                    nxt.append(b)
        frontier = nxt
    return [start, start]  # pragma: no cover - a strongly connected component always closes


# ------------------------------------------------------------------------------------------
# Loihi family rules
# ------------------------------------------------------------------------------------------
@family_rule("loihi")
def loihi_synapse_rule(graph: Graph, node: Node) -> list[str]:
    """LoihiDense / LoihiSparse: weight layout as Dense / Sparse, and every stored weight an
    integer, a multiple of ``node.weight_step`` (``2 ** (8 - num_weight_bits + mixed)``), inside
    ``node.weight_range`` of the sign mode (mixed -256..255, excitatory 0..255, inhibitory
    -255..0): what ``ir.native.loihi.legalize_weights`` produces.

    The result depends only on the node and the arrays its fields name (the rule runs on usable
    nodes only), so it is remembered like :func:`_param_problems`: the verification after each
    mapping pass does not rescan every weight."""
    if node.kind not in ("LoihiDense", "LoihiSparse"):
        return []
    arrays = tuple(graph.constants.get(r.name) for _, r in _refs(node))
    hit = _SYNAPSE_MEMO.get(id(node))
    if hit is not None and hit[0]() is node and len(hit[1]) == len(arrays) and all(
            (w is None and a is None) or (w is not None and w() is a)
            for w, a in zip(hit[1], arrays, strict=True)):
        return list(hit[2])
    out = _loihi_synapse_problems(graph, node)
    key = id(node)
    try:  # weak references only: the memo never keeps a node or an array alive
        ref = weakref.ref(node, lambda _r, k=key: _SYNAPSE_MEMO.pop(k, None))
        warrs = tuple(None if a is None else weakref.ref(a) for a in arrays)
    except TypeError:  # pragma: no cover - an object without weakref support
        return out
    _SYNAPSE_MEMO[key] = (ref, warrs, list(out))
    return out


_SYNAPSE_MEMO: dict[int, tuple[Any, tuple[Any, ...], list[str]]] = {}


def _loihi_synapse_problems(graph: Graph, node: Node) -> list[str]:
    if node.kind == "LoihiDense":
        out = dense_problems(graph, node)
        field = "weight"
    else:
        out = coo_problems(graph, node)
        field = "values"
    ref = getattr(node, field)
    w = graph.constants[ref.name]
    o = f"{_owner(node)}: {field} @{ref.name}"
    fix = "legalize the weights (ir.native.loihi.legalize_weights)"
    if w.size == 0:
        return out
    if w.dtype.kind in "iu":
        # integers (the quantizer's int16): in range and a multiple of the (power-of-two) step
        # exactly when min, max and the OR of the low bits say so; otherwise the float checks
        # below name the first bad element
        lo, hi = node.weight_range
        step = int(node.weight_step)
        if (int(w.min()) >= lo and int(w.max()) <= hi and step & (step - 1) == 0
                and not int(np.bitwise_or.reduce(w, axis=None)) & (step - 1)):
            return out
    wf = w.astype(np.float64)
    frac = wf != np.round(wf)
    if frac.any():
        idx, v, k = _first_bad(w, frac)
        out.append(f"{o}: element {idx} = {_num(v)} is not an integer {_of(k, w.size)}; {fix}")
        return out
    lo, hi = node.weight_range
    outside = (wf < lo) | (wf > hi)
    if outside.any():
        idx, v, k = _first_bad(w, outside)
        out.append(
            f"{o}: element {idx} = {_num(v)} is outside {lo}..{hi} (sign_mode {node.sign_mode}) "
            f"{_of(k, w.size)}; {fix}"
        )
    step = node.weight_step
    off = np.mod(wf, step) != 0
    if off.any():
        idx, v, k = _first_bad(w, off)
        out.append(
            f"{o}: element {idx} = {_num(v)} is not a multiple of the weight step {step} "
            f"(num_weight_bits = {node.num_weight_bits}, sign_mode {node.sign_mode}) "
            f"{_of(k, w.size)}; {fix}"
        )
    return out


__all__ = [
    "ANY_STAGE_KINDS",
    "FamilyRule",
    "coo_problems",
    "dense_problems",
    "family_rule",
    "family_rules",
    "loihi_synapse_rule",
    "problems",
    "verify",
]
