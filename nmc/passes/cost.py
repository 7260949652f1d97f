"""Per-family, per-core resource cost models, and the mapping view of a native graph.

Mapping (partition, place, route, the design-rule checks and the utilization report) looks at a
quantized graph through a :class:`Network`: populations (neuron nodes, neurons indexed by their
flat C-order position), host inputs, and every connection node as a CSR table of its non-zero
synapses by target row. ``Flatten`` nodes are transparent (a flat index is a flat index).

A :class:`CostModel` (one per family, registered with :func:`register_cost_model`) says what one
core of that family is made of and how much of each resource a set of slices uses. Resource names
are the profile's ``core.<name>`` keys, so a limit is always ``profile.get("core." + name)`` and the
design-rule check of a resource is named ``core.<name>``.

Loihi synapse memory (``core.synapse_words``), the formula nengo-loihi uses to size a core
(``SynapseConfig.bits_per_axon`` in nengo_loihi/block.py, read in the public source):

* the synapses of one input axon are stored in blocks of up to ``G = 64`` synapses (a 6-bit
  synapse count field holds ``n - 1``); each block carries a header of ``H = 10`` bits (4-bit
  synapse-format index + 6-bit count) and is rounded up to whole words of ``W`` bits
  (``core.synapse_word_bits``, 64)::

      words(n, b) = (n // G) * ceil((G*b + H) / W) + [n % G > 0] * ceil(((n % G)*b + H) / W)

* ``b`` is the bits per synapse: the stored weight width (``num_weight_bits`` rounded up to the
  hardware's set {0, 1, 2, 3, 4, 5, 6, 8}), plus the delay bits (0 when every synapse of the
  connection has the one-step delay, else enough bits for ``delay - 1``), plus, for the *sparse*
  encoding only, the compartment-index bits (the core's compartment count rounded up to the set
  {0, 6, 7, 8, 9, 10, 11, 12} bits);
* *dense* encoding (nengo-loihi's compression 3) stores a weight for every compartment the
  connection feeds on the core (zeros included, no index); *sparse* (compression 0) stores only the
  non-zero synapses, each with its index. The cost model takes the cheaper one per (connection,
  core) and records the choice in the core entry (``core["loihi"]["encoding"]``, docs/mapping.md).

Config tables (Loihi 1, nengo-loihi ``validate``): a core holds at most ``core.compartment_configs``
distinct (du, dv, refractory, readout) tuples, ``core.threshold_configs`` distinct ``vth_mant`` and
``core.synapse_configs`` distinct synapse formats (weight bits, sign mode, weight exponent, delay
bits, encoding, index bits). Bias is per compartment and costs no table entry.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ir.errors import CompileError
from ir.graph import Graph
from ir.nodes import Node, Ref

Slice = tuple[str, int, int]
"""``(population, start, stop)``: the neurons ``start .. stop-1`` of a population (flat index)."""


# ------------------------------------------------------------------------------------------
# The mapping view of a native graph
# ------------------------------------------------------------------------------------------
@dataclass
class Synapses:
    """One connection node as a CSR table of its non-zero synapses, rows = target neurons.

    ``source`` is the population or Input feeding it (through any Flatten); ``targets`` the
    populations it feeds (each of ``n_out`` neurons). ``fmt`` is the family's synapse-format key
    (used for config-table counts); ``delay`` the connection's delay in ticks.
    """

    name: str
    kind: str
    source: str
    source_is_input: bool
    targets: tuple[str, ...]
    n_in: int
    n_out: int
    indptr: np.ndarray
    cols: np.ndarray
    vals: np.ndarray
    delay: int = 1
    fmt: tuple = ()
    node: Node | None = None
    copies: int = 1
    extra: dict = field(default_factory=dict)

    @property
    def nnz(self) -> int:
        return int(self.cols.size)

    def rows_cols(self, start: int, stop: int) -> np.ndarray:
        """Source indices of the synapses of target rows ``start .. stop-1`` (CSR slice)."""
        return self.cols[self.indptr[start]:self.indptr[stop]]

    def row_of_entry(self) -> np.ndarray:
        """Target row of every stored synapse (expanded CSR row index)."""
        return np.repeat(np.arange(self.n_out, dtype=np.int64), np.diff(self.indptr))


def csr_from_coo(n_out: int, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR (indptr, cols, vals) by row from COO triplets, dropping zero values; stable order."""
    rows = np.asarray(rows, dtype=np.int64).ravel()
    cols = np.asarray(cols, dtype=np.int64).ravel()
    vals = np.asarray(vals).ravel()
    keep = vals != 0
    rows, cols, vals = rows[keep], cols[keep], vals[keep]
    order = np.lexsort((cols, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    indptr = np.zeros(n_out + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_out), out=indptr[1:])
    return indptr, cols, vals


def csr_from_dense(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR of the non-zero entries of a dense (out, in) matrix."""
    w = np.asarray(w)
    n_out = w.shape[0]
    n_in = int(w.shape[1]) if w.ndim == 2 else 0
    indptr = np.zeros(n_out + 1, dtype=np.int64)
    if w.size:
        np.cumsum(np.count_nonzero(w, axis=1), out=indptr[1:])
    flat = w.reshape(-1)
    # Row counts and flat indices instead of np.nonzero's two index arrays and a 2-D gather:
    # 4-10x faster, and a fully dense block (the common case) needs no search at all.
    if int(indptr[-1]) == flat.size:
        return indptr, np.tile(np.arange(n_in, dtype=np.int64), n_out), flat.copy()
    # a boolean mask over the tiled column numbers: the same cols and vals as flat indices
    # ``% n_in``, without the division (3-4x faster on a mostly dense block)
    keep = flat != 0
    return indptr, np.tile(np.arange(n_in, dtype=np.int64), n_out)[keep], flat[keep]


SynapseReader = Callable[[Graph, Node], dict]
_READERS: dict[str, SynapseReader] = {}


def synapse_reader(*kinds: str) -> Callable[[SynapseReader], SynapseReader]:
    """Register ``fn(graph, node) -> dict(indptr, cols, vals, delay, fmt)`` for connection kinds."""

    def deco(fn: SynapseReader) -> SynapseReader:
        for k in kinds:
            _READERS[k] = fn
        return fn

    return deco


@synapse_reader("LoihiDense", "Dense")
def _read_dense(graph: Graph, node: Node) -> dict:
    indptr, cols, vals = csr_from_dense(graph.const(node.weight))
    return dict(indptr=indptr, cols=cols, vals=vals, delay=int(getattr(node, "delay", 1)),
                fmt=_loihi_fmt(node))


@synapse_reader("LoihiSparse", "Sparse")
def _read_sparse(graph: Graph, node: Node) -> dict:
    indptr, cols, vals = csr_from_coo(node.out_features, graph.const(node.rows),
                                      graph.const(node.cols), graph.const(node.values))
    return dict(indptr=indptr, cols=cols, vals=vals, delay=int(getattr(node, "delay", 1)),
                fmt=_loihi_fmt(node))


@synapse_reader("TrueNorthCrossbar")
def _read_crossbar(graph: Graph, node: Node) -> dict:
    """Columns are *axon* indices ``source * copies + copy`` (one axon per copy)."""
    cb = np.asarray(graph.const(node.crossbar), dtype=bool).reshape(node.out_features, -1)
    indptr, cols, _ = csr_from_dense(cb)
    types = np.asarray(graph.const(node.axon_types), np.int64).ravel()
    # Every stored crossbar synapse has the value 1: a read-only broadcast costs no memory
    # (8 bytes per synapse otherwise, 2 GiB on a full TrueNorth chip).
    vals = np.broadcast_to(np.int64(1), cols.shape)
    return dict(indptr=indptr, cols=cols, vals=vals, delay=int(node.delay),
                fmt=(), copies=int(node.copies), extra={"axon_types": types})


@synapse_reader("BSS2Synapses")
def _read_bss2(graph: Graph, node: Node) -> dict:
    """Any non-zero synapse on any row is a synapse; the per-row layers (sign, parallel index)
    are kept for the row count."""
    shape = (node.out_features, node.in_features)
    layers = []
    masks = []
    for sign, ref in (("exc", node.exc), ("inh", node.inh)):
        if ref is None:
            continue
        arr = np.asarray(graph.const(ref)).reshape(-1, *shape)  # no int64 copy of the weights
        for p in range(arr.shape[0]):
            nz = arr[p] != 0
            ip, cl, _ = csr_from_dense(nz)
            if cl.size:
                layers.append((sign, p, ip, cl))
                masks.append(nz)
    if len(layers) == 1:
        # One row layer (the common case: one sign, one synapse per pair): the synapses are that
        # layer's, each of value 1; share its arrays instead of a second CSR of the same data.
        _, _, indptr, cols = layers[0]
        vals = np.broadcast_to(np.int64(1), cols.shape)
    else:
        total = np.zeros(shape, dtype=np.int64)
        for nz in masks:
            total += nz
        indptr, cols, vals = csr_from_dense(total)
    return dict(indptr=indptr, cols=cols, vals=vals, delay=int(node.delay), fmt=(),
                extra={"layers": layers})


def _loihi_fmt(node: Node) -> tuple:
    return (getattr(node, "num_weight_bits", 8), getattr(node, "sign_mode", "mixed"),
            getattr(node, "weight_exp", 0))


@dataclass
class Network:
    """The mapping view of a graph at stage ``quantized`` or later (see module doc)."""

    graph: Graph
    pops: dict[str, Node]
    sizes: dict[str, int]
    inputs: dict[str, int]
    conns: dict[str, Synapses]
    into: dict[str, list[str]]
    out_of: dict[str, list[str]]
    outputs: dict[str, str]
    cache: dict = field(default_factory=dict)

    @property
    def neurons(self) -> int:
        return sum(self.sizes.values())

    def source_size(self, name: str) -> int:
        return self.sizes[name] if name in self.sizes else self.inputs[name]

    def param(self, pop: str, fname: str) -> np.ndarray:
        """A neuron parameter as a flat int64/float array over the population (Refs resolved)."""
        node = self.pops[pop]
        v = getattr(node, fname)
        arr = self.graph.const(v) if isinstance(v, Ref) else np.asarray(v)
        return np.broadcast_to(np.asarray(arr), node.out_shape).reshape(-1)


def resolve_source(graph: Graph, name: str, preds: dict[str, list[str]] | None = None) -> str:
    """Walk back through Flatten nodes to the population or Input that produces ``name``."""
    seen = set()
    while graph.nodes[name].kind == "Flatten":
        if name in seen:  # pragma: no cover - a Flatten loop is rejected by the verifier
            break
        seen.add(name)
        ps = preds[name] if preds is not None else graph.predecessors(name)
        if len(ps) != 1:
            raise CompileError(f"Flatten {name}: needs exactly one source, has {len(ps)}")
        name = ps[0]
    return name


def network(graph: Graph) -> Network:
    """Build (and cache on the graph object) the mapping view of a native graph.

    Raises CompileError for structures no core can hold: a connection whose source or target
    is not a population/Input (two connections in a row, a Delay left over), an Output that does
    not read a population.
    """
    cached = getattr(graph, "_nmc_network", None)
    if cached is not None and cached.graph is graph:
        return cached
    preds: dict[str, list[str]] = {n: [] for n in graph.nodes}
    succs: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for a, b in graph.edges:
        preds[b].append(a)
        succs[a].append(b)
    pops = {n.name: n for n in graph.nodes.values() if n.category == "neuron"}
    sizes = {k: int(v.size) for k, v in pops.items()}
    inputs = {n.name: int(n.size) for n in graph.inputs}
    conns: dict[str, Synapses] = {}
    into: dict[str, list[str]] = {p: [] for p in pops}
    out_of: dict[str, list[str]] = {p: [] for p in [*pops, *inputs]}

    def targets_of(name: str) -> list[str]:
        out = []
        for s in succs[name]:
            k = graph.nodes[s]
            if k.kind == "Flatten":
                out.extend(targets_of(s))
            elif k.category == "neuron":
                out.append(s)
            elif k.kind == "Output":
                continue
            else:
                raise CompileError(
                    f"connection {name} feeds {k.kind} {s}: after legalize a connection must feed "
                    "neuron populations only (two connections in a row are composed by legalize)"
                )
        return out

    for node in graph.nodes.values():
        if node.category not in ("connection", "delay") or node.kind == "Flatten":
            continue
        reader = _READERS.get(node.kind)
        if reader is None:
            raise CompileError(
                f"{node.kind} {node.name}: mapping cannot read this kind (known connection kinds: "
                f"{', '.join(sorted(_READERS))}); run legalize and quantize first"
            )
        if len(preds[node.name]) != 1:
            raise CompileError(f"connection {node.name}: needs exactly one source")
        src = resolve_source(graph, preds[node.name][0], preds)
        snode = graph.nodes[src]
        if snode.category != "neuron" and snode.kind != "Input":
            raise CompileError(
                f"connection {node.name}: its source {src} is a {snode.kind}, not a population "
                "or an input; compose consecutive connections (legalize) first"
            )
        if snode.category == "neuron" and not snode.spiking:
            raise CompileError(
                f"connection {node.name}: its source {src} ({snode.kind}) does not spike, so its "
                "output cannot travel between cores; read it as an Output instead"
            )
        info = reader(graph, node)
        tg = tuple(targets_of(node.name))
        conns[node.name] = Synapses(
            name=node.name, kind=node.kind, source=src, source_is_input=src in inputs,
            targets=tg, n_in=int(np.prod(node.in_shape)) * int(info.get("copies", 1)),
            n_out=int(np.prod(node.out_shape)), node=node, **info)
        for t in tg:
            into[t].append(node.name)
        out_of[src].append(node.name)
    outputs = {}
    for o in graph.outputs:
        ps = preds[o.name]
        if len(ps) != 1:
            raise CompileError(f"Output {o.name}: needs exactly one source")
        src = resolve_source(graph, ps[0], preds)
        if src not in pops:
            raise CompileError(
                f"Output {o.name}: reads {graph.nodes[src].kind} {src}; an output must read a "
                "neuron population placed on the chip"
            )
        outputs[o.name] = src
    net = Network(graph=graph, pops=pops, sizes=sizes, inputs=inputs, conns=conns, into=into,
                  out_of=out_of, outputs=outputs)
    graph._nmc_network = net  # a cache on the (immutable in practice) graph object
    return net


def share_view(old: Graph, new: Graph) -> Graph:
    """Let ``new`` reuse the mapping view of ``old`` when only stage/attrs/mapping differ."""
    net = getattr(old, "_nmc_network", None)
    if net is not None and new.nodes is old.nodes and new.edges == old.edges and (
            new.constants.keys() == old.constants.keys()
            and all(new.constants[k] is v for k, v in old.constants.items())):
        new._nmc_network = Network(graph=new, pops=net.pops, sizes=net.sizes, inputs=net.inputs,
                                   conns=net.conns, into=net.into, out_of=net.out_of,
                                   outputs=net.outputs, cache=net.cache)
    return new


# ------------------------------------------------------------------------------------------
# Cost models
# ------------------------------------------------------------------------------------------
@dataclass
class Usage:
    """Resources one core uses: ``amounts[resource]``, plus family details for the core entry."""

    amounts: dict[str, int]
    detail: dict[str, Any] = field(default_factory=dict)


class CostModel:
    """Base of a family's per-core cost model.

    ``resources``: resource names, each with a per-core limit ``core.<name>`` in the profile.
    ``table_resources``: resources that count distinct config entries (they do not add up).
    Subclasses implement :meth:`usage`; the rest has workable defaults.
    """

    family: str = ""
    resources: tuple[str, ...] = ("neurons",)
    table_resources: tuple[str, ...] = ()
    hints: dict[str, str] = {}

    def limits(self, profile: Any) -> dict[str, int]:
        """Per-core limit of every resource the profile defines (``core.<resource>``)."""
        out = {}
        for r in self.resources:
            v = profile.get(f"core.{r}", None)
            if v is not None:
                out[r] = int(v)
        return out

    def circuits(self, net: Network, pop: str) -> int:
        """Neuron circuits one neuron of ``pop`` occupies (1; BrainScaleS-2 merges several)."""
        return 1

    def usage(self, net: Network, slices: Sequence[Slice], profile: Any) -> Usage:
        raise NotImplementedError

    def lower_bound_totals(self, net: Network, profile: Any) -> dict[str, int]:
        """Totals of the additive resources over the whole network (for the core lower bound)."""
        return {"neurons": sum(self.circuits(net, p) * n for p, n in net.sizes.items())}

    def hint(self, resource: str) -> str:
        return self.hints.get(resource, "give fewer neurons per core (partition max_neurons=...)")


_MODELS: dict[str, CostModel] = {}


def register_cost_model(model: CostModel) -> CostModel:
    """Make a family's cost model known (one instance per family)."""
    _MODELS[model.family] = model
    return model


def cost_model(family: str) -> CostModel:
    """The cost model of ``family``; CompileError naming the known families if absent."""
    if family not in _MODELS:
        raise CompileError(
            f"mapping has no cost model for family {family!r}; known: {', '.join(sorted(_MODELS))}"
        )
    return _MODELS[family]


def exceeded(usage: dict[str, int], limits: dict[str, int]) -> list[str]:
    """Resources whose usage is above the limit, in the model's order."""
    return [r for r, lim in limits.items() if usage.get(r, 0) > lim]


def fits(usage: dict[str, int], limits: dict[str, int]) -> bool:
    return all(usage.get(r, 0) <= lim for r, lim in limits.items())


def group_rows(net: Network, slices: Sequence[Slice]) -> dict[str, list[tuple[int, int, int]]]:
    """For each connection feeding the slices: ``[(row_start, row_stop, local_base)]``, where
    ``local_base`` is the core-local index of ``row_start`` (position in the slice concatenation)."""
    rows: dict[str, list[tuple[int, int, int]]] = {}
    base = 0
    for pop, s, e in slices:
        for c in net.into[pop]:
            rows.setdefault(c, []).append((s, e, base))
        base += e - s
    return rows


def gather_cols(syn: Synapses, ranges: Iterable[tuple[int, int, int]]) -> np.ndarray:
    """Source indices of all synapses of the given target-row ranges (concatenated)."""
    parts = [syn.rows_cols(s, e) for s, e, _ in ranges]
    if not parts:
        return np.zeros(0, dtype=np.int64)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def sorted_unique(a: np.ndarray) -> np.ndarray:
    """``np.unique`` for 1-D integer arrays by sorting (faster than hashing on short arrays)."""
    a = np.sort(np.asarray(a).ravel())
    if a.size == 0:
        return a
    return a[np.concatenate(([True], a[1:] != a[:-1]))]


def delivery_keys(syn: Synapses, dst_of_row: np.ndarray, n_cores: int) -> np.ndarray:
    """The sorted distinct ``col * n_cores + dst`` over the stored synapses of ``syn``, where
    ``dst = dst_of_row[target row]``: which (source axon, destination core) pairs exist.

    Equal to ``sorted_unique(syn.cols * n_cores + dst_of_row[syn.row_of_entry()])``, without
    sorting every synapse: rows come in runs of one destination core (a core holds slices of
    consecutive rows), so per run a mask over the sources marks the ones used; only the distinct
    pairs (about one per axon) are sorted. Falls back to the sort when the runs are so many that
    the masks would outgrow the synapses.
    """
    if syn.nnz == 0:
        return np.zeros(0, dtype=np.int64)
    d = np.asarray(dst_of_row, dtype=np.int64)
    change = np.flatnonzero(d[1:] != d[:-1]) + 1
    starts = np.concatenate(([0], change))
    stops = np.concatenate((change, [syn.n_out]))
    n_in = int(syn.n_in)
    if starts.size * n_in > 8 * syn.nnz + 65536:
        return sorted_unique(syn.cols * n_cores + d[syn.row_of_entry()])
    counts = syn.indptr[stops] - syn.indptr[starts]
    mask = np.zeros(starts.size * n_in, dtype=bool)
    if starts.size == 1:
        mask[syn.cols] = True
    else:
        mask[np.repeat(np.arange(starts.size, dtype=np.int64) * n_in, counts) + syn.cols] = True
    idx = np.flatnonzero(mask)
    run, col = idx // n_in, idx % n_in
    return sorted_unique(col * n_cores + d[starts][run])


def distinct_count(ids: Sequence[np.ndarray]) -> int:
    """Number of distinct values over several int arrays."""
    arrs = [a for a in ids if a.size]
    if not arrs:
        return 0
    return int(sorted_unique(np.concatenate(arrs)).size)


def config_ids(columns: Sequence[np.ndarray]) -> np.ndarray:
    """A dense int id per row of the given equally long columns (equal rows, equal ids)."""
    stacked = np.stack([np.asarray(c, dtype=np.float64) for c in columns], axis=1)
    if stacked.shape[0] and bool((stacked == stacked[0]).all()):
        # one configuration (the common case): what np.unique says, without its row sort
        return np.zeros(stacked.shape[0], np.int64)
    _, inv = np.unique(stacked, axis=0, return_inverse=True)
    return inv.reshape(-1).astype(np.int64)


# ------------------------------------------------------------------------------------------
# Loihi
# ------------------------------------------------------------------------------------------
LOIHI_ENCODING_DEFAULTS: dict[str, Any] = {
    "synapse.group_size": 64,
    "synapse.group_header_bits": 10,
    "synapse.index_bits": [0, 6, 7, 8, 9, 10, 11, 12],
    "synapse.weight_bits": [0, 1, 2, 3, 4, 5, 6, 8],
}
"""The keys of the Loihi synapse-memory encoding in a profile (the loihi family requires them; see
``nmc/targets/loihi.toml`` for the values and their source). The values here are only a fallback
for a profile object built without the family's key spec (tests)."""


def round_up_to(choices: Sequence[int], bits: int) -> int | None:
    """The smallest allowed width >= ``bits`` (None if none is large enough)."""
    for c in choices:
        if c >= bits:
            return int(c)
    return None


def block_words(n: np.ndarray | int, bits: int, group: int, header: int, word: int) -> np.ndarray:
    """Words used by axons with ``n`` synapses of ``bits`` each (vectorised; see module doc)."""
    n = np.asarray(n, dtype=np.int64)
    full, rest = n // group, n % group
    per_full = -(-(group * bits + header) // word)
    rest_words = np.where(rest > 0, -(-(rest * bits + header) // word), 0)
    return full * per_full + rest_words


class LoihiCost(CostModel):
    """Loihi 1 cores: compartments, input/output axons, synapse words, config tables."""

    family = "loihi"
    resources = ("neurons", "axons_in", "axons_out", "synapse_words", "compartment_configs",
                 "threshold_configs", "synapse_configs")
    table_resources = ("compartment_configs", "threshold_configs", "synapse_configs")
    hints = {
        "neurons": "give fewer neurons per core (partition max_neurons=...)",
        "axons_in": "give fewer neurons per core so each core sees fewer sources, or prune "
                    "the fan-in",
        "axons_out": "give fewer neurons per core (each neuron needs one output axon per "
                     "destination core and connection)",
        "synapse_words": "reduce the stored weight bits (quantize weight_bits=...) or give "
                         "fewer neurons per core (partition max_neurons=...)",
        "compartment_configs": "use fewer distinct (du, dv, refractory) values per layer or "
                               "fewer neurons per core",
        "threshold_configs": "use fewer distinct thresholds per layer or fewer neurons per core",
        "synapse_configs": "use fewer distinct synapse formats (weight bits, exponent, delay) "
                           "into one layer or fewer neurons per core",
    }

    def encoding(self, profile: Any) -> dict[str, Any]:
        return {k: profile.get(k, v) for k, v in LOIHI_ENCODING_DEFAULTS.items()}

    def _ids(self, net: Network, pop: str) -> dict[str, np.ndarray]:
        """Config-table ids of every neuron, numbered across the whole network (equal tuples in
        two populations get the same id, so counts over slices of several populations hold)."""
        if "loihi-ids" not in net.cache:
            pops = list(net.pops)
            cols = []
            for f in ("du", "dv"):
                cols.append(np.concatenate([
                    net.param(p, f) if hasattr(net.pops[p], f) else np.zeros(net.sizes[p])
                    for p in pops]) if pops else np.zeros(0))
            cols.append(np.concatenate([np.full(net.sizes[p], getattr(net.pops[p], "refractory", 0))
                                        for p in pops]) if pops else np.zeros(0))
            cols.append(np.concatenate([np.full(net.sizes[p], int(bool(getattr(
                net.pops[p], "readout", False)))) for p in pops]) if pops else np.zeros(0))
            vth = np.concatenate([net.param(p, "vth_mant") if hasattr(net.pops[p], "vth_mant")
                                  else np.zeros(net.sizes[p]) for p in pops]) if pops else (
                np.zeros(0))
            cx = config_ids(cols) if pops else np.zeros(0, np.int64)
            th = np.asarray(vth, dtype=np.int64)
            ids, base = {}, 0
            for p in pops:
                n = net.sizes[p]
                ids[p] = {"compartment_configs": cx[base:base + n],
                          "threshold_configs": th[base:base + n]}
                base += n
            net.cache["loihi-ids"] = ids
        return net.cache["loihi-ids"][pop]

    def _axon_counts(self, net: Network, syn: Synapses, ranges: list[tuple[int, int, int]]
                     ) -> tuple[int, np.ndarray, np.ndarray] | None:
        """Of the synapses of ``syn`` onto target rows ``ranges``: the number of source axons
        used and the distinct synapse counts per axon with their multiplicities (all the
        synapse-word formula needs), or None without synapses. Remembered per (connection,
        rows) in the view's cache: partition, its join test and route cost the same rows."""
        key = ("loihi-axon-counts", syn.name, tuple((s, e) for s, e, _ in ranges))
        cache = net.cache
        if key in cache:
            return cache[key]
        cols = gather_cols(syn, ranges)
        if cols.size == 0:
            out = None
        else:
            counts = np.bincount(cols, minlength=syn.n_in)
            count, mult = np.unique(counts[counts > 0], return_counts=True)
            out = (int(mult.sum()), count, mult)
        cache[key] = out
        return out

    def _bits(self, syn: Synapses, enc: dict[str, Any]) -> tuple[int, int]:
        """(weight bits, delay bits) of one synapse of ``syn``."""
        nwb = int(syn.fmt[0]) if syn.fmt else 8
        wb = round_up_to(enc["synapse.weight_bits"], nwb)
        if wb is None:
            wb = int(enc["synapse.weight_bits"][-1])
        db = 0 if syn.delay <= 1 else int(math.ceil(math.log2(syn.delay)))
        return wb, db

    def usage(self, net: Network, slices: Sequence[Slice], profile: Any) -> Usage:
        enc = self.encoding(profile)
        group, header = int(enc["synapse.group_size"]), int(enc["synapse.group_header_bits"])
        word = int(profile.get("core.synapse_word_bits", 64))
        neurons = sum(e - s for _, s, e in slices)
        ib = round_up_to(enc["synapse.index_bits"], max(0, int(math.ceil(math.log2(max(neurons, 1))))))
        if ib is None:
            ib = 10**6  # no index width is large enough: the sparse encoding is impossible
        axons_in = words = 0
        fmts = set()
        encodings: dict[str, str] = {}
        for c, ranges in group_rows(net, slices).items():
            syn = net.conns[c]
            axon_counts = self._axon_counts(net, syn, ranges)
            if axon_counts is None:
                continue
            n_ax, count, mult = axon_counts
            wb, db = self._bits(syn, enc)
            sparse = int((block_words(count, wb + db + ib, group, header, word) * mult).sum())
            width = sum(e - s for s, e, _ in ranges)
            dense = n_ax * int(block_words(width, wb + db, group, header, word))
            choice = "dense" if dense <= sparse else "sparse"
            encodings[c] = choice
            words += min(dense, sparse)
            axons_in += n_ax
            fmts.add((*syn.fmt, db, choice, 0 if choice == "dense" else ib))
        ids = [self._ids(net, p) for p, _, _ in slices]
        amounts = {
            "neurons": neurons,
            "axons_in": axons_in,
            "synapse_words": words,
            "compartment_configs": distinct_count(
                [i["compartment_configs"][s:e] for i, (_, s, e) in zip(ids, slices, strict=False)]),
            "threshold_configs": distinct_count(
                [i["threshold_configs"][s:e] for i, (_, s, e) in zip(ids, slices, strict=False)]),
            "synapse_configs": len(fmts),
        }
        return Usage(amounts, {"encoding": encodings})

    def lower_bound_totals(self, net: Network, profile: Any) -> dict[str, int]:
        enc = self.encoding(profile)
        group, header = int(enc["synapse.group_size"]), int(enc["synapse.group_header_bits"])
        word = int(profile.get("core.synapse_word_bits", 64))
        axons = words = 0
        for syn in net.conns.values():
            if syn.nnz == 0:
                continue
            # every row: the per-axon counts the partition's cut of a whole population shares
            n_ax, count, mult = self._axon_counts(net, syn, [(0, syn.n_out, 0)])
            axons += n_ax * max(1, len(syn.targets))
            wb, db = self._bits(syn, enc)
            # Cheapest imaginable encoding: every synapse of an axon packed densely, no index.
            words += int((block_words(count, wb + db, group, header, word) * mult).sum()) * max(
                1, len(syn.targets))
        totals = {"neurons": net.neurons, "axons_in": axons, "synapse_words": words}
        # Every distinct config entry must sit on some core, and a core holds at most the
        # table's size: cores >= ceil(distinct entries in the network / table size).
        for table in ("compartment_configs", "threshold_configs"):
            totals[table] = distinct_count([self._ids(net, p)[table] for p in net.pops])
        return totals


register_cost_model(LoihiCost())


# ------------------------------------------------------------------------------------------
# TrueNorth
# ------------------------------------------------------------------------------------------
class TrueNorthCost(CostModel):
    """TrueNorth cores: ``core.neurons`` crossbar columns and ``core.axons`` crossbar rows.

    A core needs one axon per (crossbar, axon) with at least one crossbar bit on its neurons; a
    crossbar with ``copies`` axons per source counts each copy as an axon. The crossbar memory is
    the full ``axons x neurons`` array, so it never limits on its own. One target per neuron is a
    structural rule (``truenorth.fanout``) that legalize_family establishes.
    """

    family = "truenorth"
    resources = ("neurons", "axons")
    hints = {
        "neurons": "give fewer neurons per core (partition max_neurons=...)",
        "axons": "give fewer neurons per core so each core sees fewer sources, use 2 axon types "
                 "instead of 4 (quantize axon_types=2), or prune the fan-in",
    }

    def usage(self, net: Network, slices: Sequence[Slice], profile: Any) -> Usage:
        axons = 0
        for c, ranges in group_rows(net, slices).items():
            cols = gather_cols(net.conns[c], ranges)
            if cols.size:
                axons += int(np.count_nonzero(np.bincount(cols, minlength=net.conns[c].n_in)))
        # legalize_family (copies) may weigh a neuron by the emitters it will need
        weights = net.cache.get("tn_weight") or {}
        neurons = sum(int(weights[p][s:e].sum()) if p in weights else e - s
                      for p, s, e in slices)
        return Usage({"neurons": neurons, "axons": axons})

    def lower_bound_totals(self, net: Network, profile: Any) -> dict[str, int]:
        axons = sum(int(np.count_nonzero(np.bincount(s.cols, minlength=s.n_in)))
                    * max(1, len(s.targets)) for s in net.conns.values())
        return {"neurons": net.neurons, "axons": axons}


register_cost_model(TrueNorthCost())


# ------------------------------------------------------------------------------------------
# BrainScaleS-2
# ------------------------------------------------------------------------------------------
def bss2_circuits(graph: Graph) -> dict[str, int]:
    """Neuron circuits per neuron of every population (merged circuits, decided by
    legalize_family and recorded in ``attrs["passes"]["legalize_family"]["circuits"]``)."""
    return dict(graph.attrs.get("passes", {}).get("legalize_family", {}).get("circuits", {}))


class BrainScaleS2Cost(CostModel):
    """BrainScaleS-2 hemispheres: ``core.neurons`` neuron circuits and ``core.rows`` synapse rows.

    Rows (ours, from the digital constraints of hardware.md 3): a row is excitatory or
    inhibitory and carries the events of one group of ``core.row_addresses`` (64) sources, its
    6-bit address; every neuron column has one synapse per row. The sources of a connection form
    groups ``source // 64``; per (connection, sign, parallel synapse, group) a core needs as many
    rows as the largest number of that group's sources any of its neurons listens to, divided by
    the neuron's merged circuits (each circuit brings its own synapse column). Rows of different
    groups, signs and connections are not shared.
    """

    family = "brainscales2"
    resources = ("neurons", "rows")
    hints = {
        "neurons": "give fewer neurons per core, or fewer merged circuits per neuron",
        "rows": "give fewer neurons per core, reduce the fan-in, or let legalize_family merge "
                "neuron circuits",
    }

    def circuits(self, net: Network, pop: str) -> int:
        if "circuits" not in net.cache:
            net.cache["circuits"] = bss2_circuits(net.graph)
        return int(net.cache["circuits"].get(pop, 1))

    def rows(self, net: Network, slices: Sequence[Slice], profile: Any) -> int:
        group = int(profile.get("core.row_addresses", 64))
        total = 0
        base = 0
        spans = []
        for pop, s, e in slices:
            spans.append((pop, s, e, base))
            base += e - s
        k_local = np.ones(max(base, 1), dtype=np.int64)
        for pop, s, e, b in spans:
            k_local[b:b + e - s] = self.circuits(net, pop)
        for c, ranges in group_rows(net, slices).items():
            syn = net.conns[c]
            n_groups = -(-syn.n_in // group)
            for _sign, _p, ip, cl in syn.extra.get("layers", []):
                cols_parts, local_parts = [], []
                for s, e, b in ranges:
                    lo, hi = ip[s], ip[e]
                    cols_parts.append(cl[lo:hi])
                    counts = np.diff(ip[s:e + 1])
                    local_parts.append(np.repeat(np.arange(b, b + e - s), counts))
                cols = np.concatenate(cols_parts) if cols_parts else np.zeros(0, np.int64)
                if cols.size == 0:
                    continue
                local = np.concatenate(local_parts)
                cnt = np.bincount(local * n_groups + cols // group,
                                  minlength=base * n_groups).reshape(base, n_groups)
                need = -(-cnt // k_local[:base, None])
                total += int(need.max(axis=0).sum())
        return total

    def usage(self, net: Network, slices: Sequence[Slice], profile: Any) -> Usage:
        circ = sum((e - s) * self.circuits(net, p) for p, s, e in slices)
        return Usage({"neurons": circ, "rows": self.rows(net, slices, profile)})

    def lower_bound_totals(self, net: Network, profile: Any) -> dict[str, int]:
        return {"neurons": sum(self.circuits(net, p) * n for p, n in net.sizes.items())}


register_cost_model(BrainScaleS2Cost())


# ------------------------------------------------------------------------------------------
# Shared helpers for partition/place/route/report
# ------------------------------------------------------------------------------------------
def core_of_neuron(net: Network, cores: Sequence[Sequence[Slice]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """For each population: (core id per neuron, core-local index per neuron); -1 if unmapped."""
    out = {p: (np.full(n, -1, dtype=np.int64), np.full(n, -1, dtype=np.int64))
           for p, n in net.sizes.items()}
    for cid, slices in enumerate(cores):
        base = 0
        for pop, s, e in slices:
            core, local = out[pop]
            core[s:e] = cid
            local[s:e] = np.arange(base, base + e - s)
            base += e - s
    return out


def packets(net: Network, core_of: dict[str, tuple[np.ndarray, np.ndarray]], n_cores: int
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every (source, destination core, connection) delivery of the network, de-duplicated.

    Returns ``(src_core, dst_core, conn_index, source_neuron)`` arrays; a source on the host (an
    Input) has ``src_core = -1``. One spike of the source neuron makes one packet per row.
    """
    sc, dc, ci, sn = [], [], [], []
    for k, syn in enumerate(net.conns.values()):
        if syn.nnz == 0:
            continue
        for t in syn.targets:
            key = delivery_keys(syn, core_of[t][0], n_cores)
            src_n, d = (key // n_cores) // syn.copies, key % n_cores
            s_core = (core_of[syn.source][0][src_n] if not syn.source_is_input
                      else np.full(src_n.size, -1, dtype=np.int64))
            sc.append(s_core)
            dc.append(d)
            ci.append(np.full(src_n.size, k, dtype=np.int64))
            sn.append(src_n)
    if not sc:
        z = np.zeros(0, dtype=np.int64)
        return z, z, z, z
    return np.concatenate(sc), np.concatenate(dc), np.concatenate(ci), np.concatenate(sn)


def axons_out_per_core(net: Network, cores: Sequence[Sequence[Slice]]) -> np.ndarray:
    """Output axons per core: one per (source neuron, destination core, connection)."""
    core_of = core_of_neuron(net, cores)
    src_core, _, _, _ = packets(net, core_of, len(cores))
    src_core = src_core[src_core >= 0]
    return np.bincount(src_core, minlength=len(cores)).astype(np.int64)


def neuron_rates(graph: Graph, calibration: Any, default_rate: float) -> dict[str, np.ndarray]:
    """Expected spikes per tick of every neuron.

    With ``calibration`` inputs, the integer reference interpreter runs the graph on them and the
    rate is the mean spike count per tick (batch and time averaged); without, every neuron is
    assumed to spike ``default_rate`` times per tick. Input neurons get the mean of their data.
    """
    net = network(graph)
    if calibration is None:
        rates = {p: np.full(n, float(default_rate)) for p, n in net.sizes.items()}
        rates.update({i: np.full(n, float(default_rate)) for i, n in net.inputs.items()})
        return rates
    key = ("rates", id(calibration))
    if key in net.cache:
        return net.cache[key]
    from ir.interp import normalise_inputs
    from ir.interp_int import run_int  # written by another part of the project

    pops = [p for p, node in net.pops.items() if node.spiking]
    res = run_int(graph, calibration, probes=pops)
    rates = {}
    for p in net.pops:
        if p in res.probes:
            out = np.asarray(res.probes[p]["out"], dtype=np.float64)
            rates[p] = out.reshape(out.shape[0] * out.shape[1], -1).mean(axis=0)
        else:
            rates[p] = np.zeros(net.sizes[p])
    data, _, _ = normalise_inputs(graph, calibration, None)
    for name, arr in data.items():
        a = np.asarray(arr, dtype=np.float64)
        rates[name] = a.reshape(a.shape[0] * a.shape[1], -1).mean(axis=0)
    net.cache[key] = rates
    return rates
