"""The IR graph: nodes, edges, a constant pool and the stage the graph is in.

A graph is a value: two graphs are equal when their name, stage, dt, nodes (by value), edges,
constants (shape, dtype and content) and attributes are equal. Passes never change a graph in
place; they build a new one (``Graph.replace``) or use :class:`GraphBuilder`.

Edges are ``(source, target)`` node names. A neuron sums all its incoming edges; a connection,
Delay or Output node has exactly one incoming edge.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ir.errors import IRError
from ir.nodes import Node, Ref


class Stage(str, enum.Enum):
    """How far down the pipeline a graph is. Each pass declares the stage it needs and makes."""

    FLOAT = "float"
    QUANTIZED = "quantized"
    PARTITIONED = "partitioned"
    PLACED = "placed"
    ROUTED = "routed"

    @property
    def order(self) -> int:
        return list(Stage).index(self)

    def __str__(self) -> str:
        return self.value


def array_hash(a: np.ndarray) -> str:
    """Content hash of an array: sha256 over dtype, shape and C-order bytes (first 16 hex)."""
    a = np.ascontiguousarray(a)
    h = hashlib.sha256()
    h.update(str(a.dtype.str).encode())
    h.update(str(a.shape).encode())
    h.update(a.tobytes())
    return h.hexdigest()[:16]


@dataclass(eq=False)
class Graph:
    """A network at some stage of compilation.

    ``constants`` maps names to read-only numpy arrays; ``attrs`` holds JSON-like metadata
    (provenance, the target profile name, pass decisions); ``mapping`` holds what partition,
    place and route decided (``None`` before partitioning).
    """

    name: str
    nodes: dict[str, Node]
    edges: tuple[tuple[str, str], ...]
    constants: dict[str, np.ndarray] = field(default_factory=dict)
    stage: Stage = Stage.FLOAT
    dt: float = 1e-3
    attrs: dict[str, Any] = field(default_factory=dict)
    mapping: Any = None

    def __post_init__(self) -> None:
        self.stage = Stage(self.stage)
        self.edges = tuple((str(a), str(b)) for a, b in self.edges)
        frozen = {}
        for k, v in self.constants.items():
            arr = np.asarray(v)
            if arr.flags.writeable:
                arr = arr.copy()
                arr.flags.writeable = False
            frozen[k] = arr
        self.constants = frozen
        for key, node in self.nodes.items():
            if key != node.name:
                raise IRError(f"graph {self.name}: node stored under {key!r} is named {node.name!r}")

    # ---- value semantics ------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Graph):
            return NotImplemented
        if (
            self.name != other.name
            or self.stage != other.stage
            or self.dt != other.dt
            or list(self.nodes.items()) != list(other.nodes.items())
            or self.edges != other.edges
            or self.attrs != other.attrs
            or self.mapping != other.mapping
            or list(self.constants) != list(other.constants)
        ):
            return False
        for k, a in self.constants.items():
            b = other.constants[k]
            if a.dtype != b.dtype or a.shape != b.shape or not np.array_equal(a, b, equal_nan=True):
                return False
        return True

    __hash__ = None  # type: ignore[assignment]

    def replace(self, **changes: Any) -> Graph:
        """A copy with some fields changed (constants are shared: they are read-only)."""
        return replace(self, **changes)

    # ---- access -------------------------------------------------------------------------
    def node(self, name: str) -> Node:
        try:
            return self.nodes[name]
        except KeyError:
            raise IRError(f"graph {self.name}: no node named {name!r}") from None

    def const(self, ref: Ref | str) -> np.ndarray:
        key = ref.name if isinstance(ref, Ref) else ref
        try:
            return self.constants[key]
        except KeyError:
            raise IRError(f"graph {self.name}: no constant named @{key}") from None

    def param(self, node: Node, fname: str, dtype: Any = np.float64) -> np.ndarray:
        """A parameter of ``node`` as an array broadcast to the node's output shape."""
        v = getattr(node, fname)
        arr = self.const(v) if isinstance(v, Ref) else np.asarray(v)
        if arr.size == 1:  # one value for all neurons, whatever its array shape
            arr = arr.reshape(())
        return np.broadcast_to(np.asarray(arr, dtype=dtype), node.out_shape)

    def min_delay(self, node: Node) -> int:
        """The smallest input-to-output delay of ``node`` in steps, reading the pool if needed."""
        d = getattr(node, "delay", None)
        if isinstance(d, Ref):
            arr = self.const(d)
            return int(arr.min()) if arr.size else 0
        return node.delay_steps

    def _adjacency(self) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        # Built once per edges tuple and cached: a scan of all edges per query made passes that
        # ask for every node's neighbours quadratic in the node count (seconds at 10^4 nodes).
        # Keyed on the identity of ``edges`` so a reassigned edge tuple rebuilds the index.
        cache = self.__dict__.get("_adj")
        if cache is not None and cache[0] is self.edges:
            return cache[1], cache[2]
        preds: dict[str, list[str]] = {}
        succs: dict[str, list[str]] = {}
        for a, b in self.edges:
            preds.setdefault(b, []).append(a)
            succs.setdefault(a, []).append(b)
        self.__dict__["_adj"] = (self.edges, preds, succs)
        return preds, succs

    def predecessors(self, name: str) -> list[str]:
        """Sources of the edges into ``name``, in edge order."""
        return list(self._adjacency()[0].get(name, ()))

    def successors(self, name: str) -> list[str]:
        """Targets of the edges out of ``name``, in edge order."""
        return list(self._adjacency()[1].get(name, ()))

    def by_kind(self, *kinds: str) -> Iterator[Node]:
        return (n for n in self.nodes.values() if n.kind in kinds)

    def by_category(self, *cats: str) -> Iterator[Node]:
        return (n for n in self.nodes.values() if n.category in cats)

    @property
    def inputs(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.kind == "Input"]

    @property
    def outputs(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.kind == "Output"]

    def to_networkx(self):
        """A networkx.DiGraph of node names (node attribute ``node`` holds the Node)."""
        import networkx as nx

        g = nx.DiGraph()
        for n in self.nodes.values():
            g.add_node(n.name, node=n)
        g.add_edges_from(self.edges)
        return g

    def topo_order(self) -> list[str]:
        """Node names in an order where every zero-delay edge goes forward.

        Edges *out of* a node with a delay of at least one step do not constrain the order (its
        output at step t is known before step t's inputs). Raises IRError on a zero-delay cycle.
        Ties are broken by insertion order, so the order is deterministic.
        """
        delayed = {n for n, node in self.nodes.items() if self.min_delay(node) >= 1}
        indeg = {n: 0 for n in self.nodes}
        succ: dict[str, list[str]] = {n: [] for n in self.nodes}
        for a, b in self.edges:
            if a in delayed:
                continue
            indeg[b] += 1
            succ[a].append(b)
        index = {n: i for i, n in enumerate(self.nodes)}
        ready = sorted((n for n, d in indeg.items() if d == 0), key=index.__getitem__)
        order: list[str] = []
        import heapq

        heap = [(index[n], n) for n in ready]
        heapq.heapify(heap)
        while heap:
            _, n = heapq.heappop(heap)
            order.append(n)
            for m in succ[n]:
                indeg[m] -= 1
                if indeg[m] == 0:
                    heapq.heappush(heap, (index[m], m))
        if len(order) != len(self.nodes):
            stuck = [n for n in self.nodes if n not in set(order)]
            raise IRError(
                f"graph {self.name}: zero-delay cycle through {', '.join(stuck)}; "
                "a recurrent loop needs a Delay of at least 1 step"
            )
        return order

    def summary(self) -> dict[str, Any]:
        """Counts used by ``nmc check``: nodes by category, neurons, synapses (weights stored)."""
        neurons = sum(n.size for n in self.by_category("neuron"))
        synapses = 0
        for n in self.by_category("connection"):
            for fname in ("weight", "values"):
                ref = getattr(n, fname, None)
                if isinstance(ref, Ref) and ref.name in self.constants:
                    a = self.constants[ref.name]
                    synapses += int(np.count_nonzero(a))
        return dict(
            name=self.name,
            stage=self.stage.value,
            dt=self.dt,
            nodes=len(self.nodes),
            inputs={n.name: list(n.out_shape) for n in self.inputs},
            outputs={n.name: list(n.in_shape) for n in self.outputs},
            populations=len(list(self.by_category("neuron"))),
            neurons=neurons,
            connections=sum(1 for n in self.by_category("connection") if n.kind != "Flatten"),
            synapses=synapses,
        )


class GraphBuilder:
    """Builds a graph step by step; names of added constants are made unique.

    >>> b = GraphBuilder("net")
    >>> x = b.add(Input(name="x", shape=(4,)))
    """

    def __init__(self, name: str, *, dt: float = 1e-3, stage: Stage = Stage.FLOAT,
                 attrs: Mapping[str, Any] | None = None):
        self.name = name
        self.dt = dt
        self.stage = Stage(stage)
        self.attrs: dict[str, Any] = dict(attrs or {})
        self.nodes: dict[str, Node] = {}
        self.edges: list[tuple[str, str]] = []
        self.constants: dict[str, np.ndarray] = {}

    def const(self, name: str, value: Any) -> Ref:
        """Add an array to the pool under ``name`` (suffixed _1, _2... if taken)."""
        base, k = name, 1
        while name in self.constants:
            name = f"{base}_{k}"
            k += 1
        self.constants[name] = np.asarray(value)
        return Ref(name)

    def add(self, node: Node, *sources: str) -> str:
        if node.name in self.nodes:
            raise IRError(f"graph {self.name}: duplicate node name {node.name!r}")
        self.nodes[node.name] = node
        for s in sources:
            self.connect(s, node.name)
        return node.name

    def connect(self, source: str, target: str) -> None:
        self.edges.append((source, target))

    def build(self) -> Graph:
        return Graph(
            name=self.name, nodes=dict(self.nodes), edges=tuple(self.edges),
            constants=dict(self.constants), stage=self.stage, dt=self.dt, attrs=dict(self.attrs),
        )

    @classmethod
    def from_graph(cls, g: Graph) -> GraphBuilder:
        b = cls(g.name, dt=g.dt, stage=g.stage, attrs=g.attrs)
        b.nodes = dict(g.nodes)
        b.edges = list(g.edges)
        b.constants = dict(g.constants)
        return b


def unique_name(taken: Iterable[str], base: str) -> str:
    """``base`` or ``base_1``, ``base_2``... whichever is not in ``taken``."""
    taken = set(taken)
    name, k = base, 1
    while name in taken:
        name = f"{base}_{k}"
        k += 1
    return name
