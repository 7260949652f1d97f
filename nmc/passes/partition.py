"""The ``partition`` pass (quantized -> partitioned): cut populations into core-sized slices.

Every per-core limit of the profile is respected, as the family's cost model
(:mod:`nmc.passes.cost`) counts it: neurons, input axons, output axons, synapse memory (Loihi:
nengo-loihi's word formula), config tables. The result is ``mapping["cores"]``: one entry per core,
ids dense from 0, each with its ``slices`` (``[population, start, stop)``; the core-local index of a
neuron is its position in the concatenation of the core's slices). The provenance of every slice
(``h1[256:512] -> core 7``) is recorded in ``graph.attrs["passes"]["partition"]``.

Strategies:

* ``contiguous`` (fast): each population is cut, in index order, into the longest slices that fit
  (binary search on the slice end with the exact cost, vectorised per evaluation); a short slice (a tail, a small population) joins the most
  recent of the last ``PACK_WINDOW`` cores it fits with (first fit).
* ``mincut``: reduce inter-core spike traffic. Populations are cut into small *atoms*; atoms that
  exchange spikes are linked, weighted by the spikes per tick they send each other (measured on the
  calibration data when given, else a uniform rate); a bandwidth-reducing order of that graph
  (reverse Cuthill-McKee) lays connected atoms next to each other, and cores are filled
  along the order. Then a refinement moves atoms between cores while the packets that leave a core
  drop and every limit still holds. Neighbouring atoms (e.g. the same image region in two
  consecutive layers) then share a core and their spikes never enter the mesh.

Output axons (Loihi: one per source neuron, destination core and connection) depend on where the
targets went: they are measured per neuron on the cut, charged, and the populations cut again
(a few rounds); a core still above ``core.axons_out`` is then cut into the fewest consecutive
pieces that fit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ir.errors import CompileError
from ir.graph import Graph, Stage
from nmc.passes import Pass, record, register_pass
from nmc.passes.cost import (
    CostModel,
    Network,
    Slice,
    cost_model,
    exceeded,
    fits,
    network,
    neuron_rates,
    share_view,
)
from nmc.passes.drc import Violation, raise_violations

STRATEGIES = ("contiguous", "mincut")
PACK_WINDOW = 16
"""How many of the most recent cores a short slice may join (bounds the packing work)."""

SUPERADDITIVE: dict[str, tuple[str, ...]] = {
    "loihi": ("neurons", "axons_in", "synapse_words", "axons_out"),
}
"""Per family, the resources whose use by two groups of slices fed by disjoint sets of
connections is at least the sum of their uses alone: neurons and output axons are per neuron,
input axons per (connection, source), and a connection's synapse words grow with the core's
neurons (wider sparse indices), never shrink. :meth:`Partitioner.cannot_join` uses it to rule
out a join without costing it."""


@dataclass
class Partitioner:
    """Shared state of one partitioning run: the view, the cost model, the limits."""

    net: Network
    model: CostModel
    profile: Any
    limits: dict[str, int]
    max_neurons: int | None = None
    evaluations: int = 0
    target: str = ""
    out_weight: dict[str, np.ndarray] | None = None
    out_limit: int | None = None
    alone: dict[tuple[Slice, ...], dict[str, int]] = field(default_factory=dict)
    """Usage by group of slices (:meth:`usage`); cleared when the output-axon charges change."""
    conns_of: dict[tuple[Slice, ...], frozenset[str]] = field(default_factory=dict)
    """The connections feeding a group of slices (:meth:`cannot_join`)."""

    @classmethod
    def make(cls, graph: Graph, profile: Any, max_neurons: int | None = None) -> Partitioner:
        net = network(graph)
        model = cost_model(profile.family)
        limits = model.limits(profile)
        if max_neurons is not None:
            if max_neurons < 1:
                raise CompileError(f"partition: max_neurons = {max_neurons} must be >= 1")
            limits["neurons"] = min(limits.get("neurons", max_neurons), int(max_neurons))
        # axons_out depends on where the targets go: checked after the cut, not per slice.
        per_slice = {r: v for r, v in limits.items() if r != "axons_out"}
        return cls(net=net, model=model, profile=profile, limits=per_slice,
                   max_neurons=max_neurons, target=profile.name)

    def usage(self, slices: Sequence[Slice]) -> dict[str, int]:
        """What ``slices`` use on one core (remembered: the cut, the packing and the join test
        cost the same groups of slices again)."""
        key = tuple(slices)
        use = self.alone.get(key)
        if use is None:
            use = self.alone[key] = self._usage(slices)
        return use

    def _usage(self, slices: Sequence[Slice]) -> dict[str, int]:
        self.evaluations += 1
        use = self.model.usage(self.net, slices, self.profile).amounts
        if self.out_weight is not None:
            # output axons per neuron as measured on the previous cut (see partition_cores)
            use = {**use, "axons_out": int(sum(
                self.out_weight[p][e] - self.out_weight[p][s] for p, s, e in slices))}
        return use

    def set_out_weights(self, per_neuron: dict[str, np.ndarray], limit: int) -> None:
        """Charge each neuron ``per_neuron[pop][j]`` output axons against ``limit``."""
        self.out_weight = {p: np.concatenate([[0], np.cumsum(v)]) for p, v in per_neuron.items()}
        self.out_limit = limit
        self.limits = {**self.limits, "axons_out": limit}
        self.alone.clear()

    def cannot_join(self, slices: Sequence[Slice], sl: Slice) -> bool:
        """True when ``[*slices, sl]`` certainly does not fit: no connection feeds both, and the
        uses of the two alone already add up to more than a limit of a resource in
        :data:`SUPERADDITIVE` (each group's use alone is costed once and remembered). False
        means "maybe": :meth:`fits` decides."""
        res = SUPERADDITIVE.get(self.model.family)
        if not res:
            return False
        key = tuple(slices)
        mine = self.conns_of.get(key)
        if mine is None:
            into = self.net.into
            mine = self.conns_of[key] = frozenset(c for p, _, _ in slices for c in into[p])
        if not mine.isdisjoint(self.net.into[sl[0]]):
            return False
        a, b = self.usage(key), self.usage((sl,))
        return any(a.get(r, 0) + b.get(r, 0) > lim for r, lim in self.limits.items() if r in res)

    def fits(self, slices: Sequence[Slice]) -> bool:
        return fits(self.usage(slices), self.limits)

    def neuron_cap(self, pop: str) -> int:
        lim = self.limits.get("neurons")
        if lim is None:
            return self.net.sizes[pop]
        return max(1, lim // self.model.circuits(self.net, pop))

    # ---- one population, contiguous --------------------------------------------------------
    def longest(self, pop: str, s: int, prefix: Sequence[Slice] = ()) -> int:
        """Largest ``e`` such that ``prefix + [(pop, s, e)]`` fits (``s`` when nothing fits)."""
        n = self.net.sizes[pop]
        room = self.neuron_cap(pop) - sum(e - b for _, b, e in prefix)
        hi = min(n, s + room)
        if hi <= s:
            return s
        if self.fits([*prefix, (pop, s, hi)]):
            return hi
        if not self.fits([*prefix, (pop, s, s + 1)]):
            return s
        lo = s + 1  # fits; hi does not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.fits([*prefix, (pop, s, mid)]):
                lo = mid
            else:
                hi = mid
        return lo

    def lone_neuron_violations(self, pop: str, s: int) -> list[Violation]:
        """Why one neuron alone does not fit a core (rule ``net.fanin``)."""
        use = self.usage([(pop, s, s + 1)])
        return [
            Violation("net.fanin", f"population {pop} neuron {s}", use[r], self.limits[r],
                      f"one neuron alone needs more {r} than a core has; prune or split its "
                      "inputs (fewer sources, fewer weight bits)", quantity=r)
            for r in exceeded(use, self.limits)
        ]

    def cut(self, pop: str) -> list[Slice]:
        """Contiguous slices of one population, each as long as fits a core alone."""
        n = self.net.sizes[pop]
        out: list[Slice] = []
        s = 0
        while s < n:
            e = self.longest(pop, s)
            if e == s:
                raise_violations(self.lone_neuron_violations(pop, s), self.target, "partition")
            out.append((pop, s, e))
            s = e
        # No evening out: the short tail is what lets the next population share its core.
        return out


def merge_adjacent(slices: list[Slice]) -> list[Slice]:
    """Join ``(p, a, b), (p, b, c)`` into ``(p, a, c)`` (same core-local order)."""
    out: list[Slice] = []
    for sl in slices:
        if out and out[-1][0] == sl[0] and out[-1][2] == sl[1]:
            out[-1] = (sl[0], out[-1][1], sl[2])
        else:
            out.append(sl)
    return out


def contiguous(pt: Partitioner) -> list[list[Slice]]:
    """The ``contiguous`` strategy (see module doc)."""
    cores: list[list[Slice]] = []
    for pop in pt.net.pops:
        slices = pt.cut(pop)
        for sl in slices:
            # A slice as long as the population's longest one gets a core of its own; a shorter
            # one (a tail, a small population) joins the most recent core it fits with.
            size = sl[2] - sl[1]
            cap = pt.neuron_cap(pop)
            full = size >= cap or (len(slices) > 1 and size >= max(e - s for _, s, e in slices))
            home = None
            if not full:
                for k in range(len(cores) - 1, max(-1, len(cores) - 1 - PACK_WINDOW), -1):
                    # cheap test first: the neurons alone must fit
                    if sum(e - s for _, s, e in cores[k]) + size > cap:
                        continue
                    if pt.cannot_join(cores[k], sl):
                        continue
                    if pt.fits([*cores[k], sl]):
                        home = k
                        break
            if home is None:
                cores.append([sl])
            else:
                cores[home] = merge_adjacent([*cores[home], sl])
    return cores


# ---- mincut ---------------------------------------------------------------------------------
def atoms_of(pt: Partitioner, atom: int | None) -> list[Slice]:
    """Small contiguous pieces of every population (each fits a core alone)."""
    out: list[Slice] = []
    for pop in pt.net.pops:
        size = atom or max(1, pt.neuron_cap(pop) // 16)
        for _, s, e in pt.cut(pop):
            for a in range(s, e, size):
                out.append((pop, a, min(e, a + size)))
    return out


def atom_traffic(net: Network, atoms: list[Slice], rates: dict[str, np.ndarray]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Directed atom graph: ``(src_atom, dst_atom, spikes per tick)`` for every linked pair.

    A source neuron with synapses into an atom contributes its rate once per (connection, atom):
    if the two atoms sit on different cores, that is one packet per spike.
    """
    atom_of = {p: np.full(n, -1, dtype=np.int64) for p, n in net.sizes.items()}
    for k, (p, s, e) in enumerate(atoms):
        atom_of[p][s:e] = k
    n_atoms = len(atoms)
    keys, weights = [], []
    for syn in net.conns.values():
        if syn.source_is_input or syn.nnz == 0:
            continue
        rows = syn.row_of_entry()
        for t in syn.targets:
            dst = atom_of[t][rows]
            pair = np.unique(syn.cols * n_atoms + dst)
            src_n, d = pair // n_atoms, pair % n_atoms
            keys.append(atom_of[syn.source][src_n] * n_atoms + d)
            weights.append(rates[syn.source][src_n])
    if not keys:
        z = np.zeros(0, dtype=np.int64)
        return z, z, np.zeros(0)
    key = np.concatenate(keys)
    w = np.concatenate(weights)
    uk, inv = np.unique(key, return_inverse=True)
    tot = np.bincount(inv, weights=w)
    return uk // n_atoms, uk % n_atoms, tot


def rcm_order(n: int, src: np.ndarray, dst: np.ndarray, w: np.ndarray) -> list[int]:
    """Reverse Cuthill-McKee order of the undirected atom graph.

    Per connected component (in the order of its smallest atom): breadth-first search from a
    pseudo-peripheral atom (the far end of two searches started at the lowest-degree atom),
    visiting neighbours by increasing degree, then reversed. Linked atoms end up close together
    in the order, so filling cores along it keeps linked atoms on one core. Deterministic: ties
    are broken by atom index.
    """
    keep = src != dst
    a = np.concatenate([src[keep], dst[keep]])
    b = np.concatenate([dst[keep], src[keep]])
    key = np.unique(a * n + b)
    a, b = key // n, key % n
    ptr = np.searchsorted(a, np.arange(n + 1))
    deg = np.diff(ptr)
    nbrs = [b[ptr[i]:ptr[i + 1]] for i in range(n)]
    seen = np.zeros(n, dtype=bool)

    def bfs(start: int, mark: np.ndarray) -> list[int]:
        order = [start]
        mark[start] = True
        head = 0
        while head < len(order):
            nb = nbrs[order[head]]
            head += 1
            new = nb[~mark[nb]]
            if new.size:
                new = new[np.lexsort((new, deg[new]))]
                mark[new] = True
                order.extend(new.tolist())
        return order

    out: list[int] = []
    for i in range(n):
        if seen[i]:
            continue
        comp = bfs(i, np.zeros(n, dtype=bool))
        start = min(comp, key=lambda k: (deg[k], k))
        for _ in range(2):  # pseudo-peripheral: the far end of a BFS, lowest degree first
            far = bfs(start, np.zeros(n, dtype=bool))
            last = far[-1]
            start = last
        order = bfs(start, seen)
        out.extend(reversed(order))
    return out


def fill(pt: Partitioner, atoms: list[Slice], order: Sequence[int]) -> list[list[int]]:
    """Cores filled along ``order`` (next fit with the exact cost)."""
    cores: list[list[int]] = []
    current: list[int] = []
    cur_slices: list[Slice] = []
    for k in order:
        cand = merge_adjacent(sorted([*cur_slices, atoms[k]], key=_slice_key(pt)))
        if current and pt.fits(cand):
            current.append(k)
            cur_slices = cand
        else:
            if current:
                cores.append(current)
            current, cur_slices = [k], [atoms[k]]
    if current:
        cores.append(current)
    return cores


def _slice_key(pt: Partitioner):
    index = {p: i for i, p in enumerate(pt.net.pops)}
    return lambda sl: (index[sl[0]], sl[1])


def core_slices(pt: Partitioner, atoms: list[Slice], members: Sequence[int]) -> list[Slice]:
    return merge_adjacent(sorted((atoms[k] for k in members), key=_slice_key(pt)))


def refine(pt: Partitioner, atoms: list[Slice], cores: list[list[int]], src: np.ndarray,
           dst: np.ndarray, w: np.ndarray, rounds: int = 2) -> list[list[int]]:
    """Move single atoms to the core of their heaviest neighbour when that lowers the traffic
    leaving cores (edge weight between different cores) and both cores still fit."""
    n = len(atoms)
    where = np.empty(n, dtype=np.int64)
    for c, mem in enumerate(cores):
        where[mem] = c
    und_a = np.concatenate([src, dst])
    und_b = np.concatenate([dst, src])
    und_w = np.concatenate([w, w])
    order = np.argsort(und_a, kind="stable")
    und_a, und_b, und_w = und_a[order], und_b[order], und_w[order]
    ptr = np.searchsorted(und_a, np.arange(n + 1))
    members = [set(m) for m in cores]
    for _ in range(rounds):
        moved = 0
        for k in range(n):
            nb, nw = und_b[ptr[k]:ptr[k + 1]], und_w[ptr[k]:ptr[k + 1]]
            if nb.size == 0:
                continue
            here = where[k]
            gain_by_core = np.bincount(where[nb], weights=nw, minlength=len(cores))
            best = int(np.argmax(gain_by_core))
            if best == here or gain_by_core[best] <= gain_by_core[here] or len(members[here]) == 1:
                continue
            new_dst = core_slices(pt, atoms, [*members[best], k])
            if not pt.fits(new_dst):
                continue
            members[here].discard(k)
            members[best].add(k)
            where[k] = best
            moved += 1
        if not moved:
            break
    return [sorted(m) for m in members if m]


def mincut(pt: Partitioner, rates: dict[str, np.ndarray], atom: int | None) -> list[list[Slice]]:
    """The ``mincut`` strategy (see module doc)."""
    atoms = atoms_of(pt, atom)
    src, dst, w = atom_traffic(pt.net, atoms, rates)
    order = rcm_order(len(atoms), src, dst, w)
    cores = fill(pt, atoms, order)
    cores = refine(pt, atoms, cores, src, dst, w)
    return [core_slices(pt, atoms, m) for m in cores]


# ---- output axons ------------------------------------------------------------------------
def fix_axons_out(pt: Partitioner, cores: list[list[Slice]], limit: int | None,
                  rounds: int = 32) -> list[list[Slice]]:
    """Cut cores whose output axons exceed ``limit`` into the fewest consecutive pieces that fit
    (each neuron needs one output axon per destination core and connection), until every core
    fits; a single neuron above the limit is a ``core.axons_out`` violation."""
    if limit is None:
        return cores
    from nmc.passes.cost import core_of_neuron, packets

    for _ in range(rounds):
        core_of = core_of_neuron(pt.net, cores)
        src_core, _, ci, sn = packets(pt.net, core_of, len(cores))
        per_core = np.bincount(src_core[src_core >= 0], minlength=len(cores))
        bad = set(np.nonzero(per_core > limit)[0].tolist())
        if not bad:
            return cores
        names = list(pt.net.conns)
        src_pop = np.array([pt.net.conns[c].source for c in names], dtype=object)
        keep = src_core >= 0
        pops_of, neurons_of = src_pop[ci[keep]], sn[keep]
        new: list[list[Slice]] = []
        for cid, slices in enumerate(cores):
            if cid not in bad:
                new.append(slices)
                continue
            # output axons of every neuron of the core, in core-local order
            need = []
            for p, s, e in slices:
                sel = pops_of == p
                need.append(np.bincount(neurons_of[sel],
                                        minlength=pt.net.sizes[p])[s:e])
            need = np.concatenate(need)
            if need.max() > limit:
                p, s, _ = slices[0]
                k = int(np.argmax(need))
                raise_violations([Violation(
                    "core.axons_out", f"core {cid} neuron {k}", int(need[k]), limit,
                    "one neuron reaches more (destination core, connection) pairs than a core "
                    "has output axons; reduce its fan-out", quantity="axons_out")],
                    pt.target, "partition")
            cuts, acc = [0], 0
            for k, v in enumerate(need.tolist()):
                if acc + v > limit:
                    cuts.append(k)
                    acc = 0
                acc += v
            cuts.append(len(need))
            for a, b in zip(cuts[:-1], cuts[1:], strict=False):
                new.append(_sub_slices(slices, a, b))
        cores = new
    return cores


def _sub_slices(slices: Sequence[Slice], a: int, b: int) -> list[Slice]:
    """The core-local range ``a .. b-1`` of a core's slice list, as slices."""
    out, base = [], 0
    for p, s, e in slices:
        lo, hi = max(a, base), min(b, base + e - s)
        if lo < hi:
            out.append((p, s + lo - base, s + hi - base))
        base += e - s
    return out


# ---- the pass ----------------------------------------------------------------------------
def lower_bound(net: Network, model: CostModel, profile: Any) -> tuple[int, str]:
    """Cores needed at least: the tightest additive resource, ``ceil(total / per-core limit)``.

    Returns (cores, resource that sets it).
    """
    limits = model.limits(profile)
    best, which = 1, "neurons"
    for r, total in model.lower_bound_totals(net, profile).items():
        if r in limits and limits[r] > 0:
            k = math.ceil(total / limits[r])
            if k > best:
                best, which = k, r
    return best, which


def partition_cores(graph: Graph, profile: Any, strategy: str = "contiguous",
                    max_neurons: int | None = None, calibration: Any = None,
                    default_rate: float = 0.05, atom: int | None = None) -> list[list[Slice]]:
    """Slices per core for ``graph`` on ``profile`` (see module doc); CompileError with every
    design-rule violation when some neuron cannot fit a core at all."""
    if strategy not in STRATEGIES:
        raise CompileError(
            f"partition: strategy = {strategy!r} is not one of {', '.join(STRATEGIES)}"
        )
    pinned = graph.attrs.get("passes", {}).get("legalize_family", {}).get("cores")
    if pinned:
        # The family's legalization already decided the cores (TrueNorth: the one-target rule
        # depends on them); keep them as they are (the design-rule checks verify them).
        return [[(p, int(s), int(e)) for p, s, e in c] for c in pinned]
    pt = Partitioner.make(graph, profile, max_neurons)
    rates = neuron_rates(graph, calibration, default_rate) if strategy == "mincut" else None

    def cut() -> list[list[Slice]]:
        return contiguous(pt) if strategy == "contiguous" else mincut(pt, rates, atom)

    cores = cut()
    lim_out = cost_model(profile.family).limits(profile).get("axons_out")
    if lim_out is None:
        return cores
    # Output axons depend on where the targets went: measure them per neuron on this cut and
    # cut again with them charged, until no core is above the limit (a few rounds at most;
    # the charges only grow, so this settles).
    charged: dict[str, np.ndarray] = {}
    for _ in range(6):
        per = out_axons_per_neuron(pt.net, cores)
        if all(sum(int(per[p][s:e].sum()) for p, s, e in c) <= lim_out for c in cores):
            return cores
        charged = {p: np.maximum(v, charged.get(p, 0)) for p, v in per.items()}
        pt.set_out_weights(charged, lim_out)
        cores = cut()
    return fix_axons_out(pt, cores, lim_out)


def out_axons_per_neuron(net: Network, cores: Sequence[Sequence[Slice]]) -> dict[str, np.ndarray]:
    """Output axons of every neuron: its (destination core, connection) pairs."""
    from nmc.passes.cost import core_of_neuron, packets

    src_core, _, ci, sn = packets(net, core_of_neuron(net, cores), len(cores))
    pops = list(net.sizes)
    base = dict(zip(pops, np.cumsum([0] + [net.sizes[p] for p in pops[:-1]]), strict=False))
    # global neuron index of every packet's source (host inputs have src_core -1: left out)
    offset = np.array([base.get(s.source, -1) for s in net.conns.values()], dtype=np.int64)
    keep = src_core >= 0
    counts = np.bincount(offset[ci[keep]] + sn[keep], minlength=net.neurons)
    return {p: counts[base[p]:base[p] + net.sizes[p]] for p in pops}


def slice_text(sl: Sequence) -> str:
    """``h1[256:512]``."""
    return f"{sl[0]}[{sl[1]}:{sl[2]}]"


@register_pass
@dataclass(frozen=True)
class Partition(Pass):
    """Cut populations into core-sized slices (see module doc).

    Options: ``strategy`` (``contiguous`` | ``mincut``), ``max_neurons`` (extra cap per core),
    ``calibration`` (inputs to measure spike rates for ``mincut``), ``default_rate`` (spikes per
    neuron per tick assumed without calibration), ``atom`` (neurons per mincut atom; default a
    sixteenth of a core).
    """

    name: ClassVar[str] = "partition"
    needs: ClassVar[Stage] = Stage.QUANTIZED
    makes: ClassVar[Stage] = Stage.PARTITIONED

    strategy: str = "contiguous"
    max_neurons: int | None = None
    calibration: Any = field(default=None, compare=False)
    default_rate: float = 0.05
    atom: int | None = None

    def run(self, graph: Graph, target: Any) -> Graph:
        cores = partition_cores(graph, target, self.strategy, self.max_neurons, self.calibration,
                                self.default_rate, self.atom)
        net = network(graph)
        lb, which = lower_bound(net, cost_model(target.family), target)
        mapping = {
            "strategy": {"partition": self.strategy},
            "cores": [{"id": i, "slices": [[p, int(s), int(e)] for p, s, e in sl]}
                      for i, sl in enumerate(cores)],
        }
        pinned = bool(graph.attrs.get("passes", {}).get("legalize_family", {}).get("cores"))
        decisions = {
            "strategy": self.strategy,
            "pinned": pinned,
            "cores": len(cores),
            "lower_bound": lb,
            "lower_bound_resource": which,
            "provenance": [f"{slice_text(sl)} -> core {i}" for i, c in enumerate(cores)
                           for sl in c],
        }
        out = graph.replace(stage=self.makes, mapping=mapping,
                            attrs=record(graph.attrs, self.name, decisions))
        return share_view(graph, out)


def mapped_cores(graph: Graph) -> list[list[Slice]]:
    """The slices of every core of a partitioned (or later) graph, as tuples."""
    if not graph.mapping or "cores" not in graph.mapping:
        raise CompileError(f"graph {graph.name} has no mapping; run partition first")
    return [[(p, int(s), int(e)) for p, s, e in c["slices"]] for c in graph.mapping["cores"]]


__all__ = ["STRATEGIES", "Partition", "Partitioner", "lower_bound", "mapped_cores",
           "partition_cores", "slice_text"]
