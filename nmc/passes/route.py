"""The ``route`` pass (placed -> routed): axons, routes, host I/O, latency, link loads.

What it decides (``Graph.mapping``, docs/architecture.md "Mapping contract"):

* ``cores[i]["axons"]``: the input axon groups of core ``i``: ``[connection, src_start,
  src_stop)``, in connection order (graph order) then source order; the axon index of source
  neuron ``k`` of a group is the group's position in the concatenation plus ``k - src_start``.
  A core gets one axon per (connection, source neuron) with at least one synapse on the core, so
  groups are the runs of such sources (no axon is wasted on a source without synapses there).
* ``routes``: for each source population, the sub-ranges ``[start, stop)`` of its slices and their
  targets ``[core, connection, axon_base]``: spike of neuron ``k`` goes to axon
  ``axon_base + (k - start)`` of ``core``. A sub-range boundary falls wherever the set of target
  groups changes.
* ``inputs[x]``: ``[core, connection, axon_base, start, stop]`` for every axon group fed by Input
  ``x`` (host -> chip); ``outputs[o]``: ``[core, local_base, start, stop]`` covering the read
  population once (chip -> host).
* ``latency[o]``: ticks from an input spike to the earliest output it can cause (shortest sum of
  connection delays from any Input; the retimed delays of TrueNorth splitters already hold the
  mapping's extra latency); ``None`` when no input reaches the output. ``extra_latency[o]``: ticks the mapping adds (TrueNorth splitters), taken
  from the family legalization (``attrs["passes"]["legalize_family"]["extra_latency"]``).

Checks: every synapse of the graph is reached exactly once (:func:`check_reach`, rule
``route.reach``), every host I/O element is mapped exactly once (``route.io``), and the route
entries a core sends stay within ``noc.router_table`` when the profile defines it. Packets travel
dimension-ordered, x then y, on the global grid of :mod:`nmc.passes.place`; the expected load of
every directed link (packets per tick) is computed by :func:`link_loads`.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ir.errors import CompileError
from ir.graph import Graph, Stage
from nmc.passes import Pass, record, register_pass
from nmc.passes.cost import (
    Network,
    Slice,
    core_of_neuron,
    cost_model,
    delivery_keys,
    gather_cols,
    group_rows,
    network,
    share_view,
    sorted_unique,
)
from nmc.passes.drc import Violation, raise_violations
from nmc.passes.partition import mapped_cores
from nmc.passes.place import Mesh, core_traffic, placed_slots


def runs(sorted_unique: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of consecutive integers: ``[0,1,2,5,6] -> [(0,3), (5,7)]``."""
    if sorted_unique.size == 0:
        return []
    brk = np.nonzero(np.diff(sorted_unique) != 1)[0]
    starts = np.concatenate([[sorted_unique[0]], sorted_unique[brk + 1]])
    stops = np.concatenate([sorted_unique[brk] + 1, [sorted_unique[-1] + 1]])
    return list(zip(starts.tolist(), stops.tolist(), strict=False))


def axon_groups(net: Network, slices: list[Slice]) -> list[list]:
    """Input axon groups ``[connection, src_start, src_stop]`` of one core (see module doc)."""
    rows = group_rows(net, slices)
    if "conn_order" not in net.cache:
        net.cache["conn_order"] = {c: i for i, c in enumerate(net.conns)}
    order = net.cache["conn_order"]
    out = []
    for c in sorted(rows, key=order.__getitem__):
        syn = net.conns[c]
        cols = gather_cols(syn, rows[c])
        if cols.size and syn.n_in <= 4 * cols.size + 4096:
            # the sources used, as a mask over the connection's sources: linear, where sorting
            # the synapses' sources (65536 per dense 256 x 256 block) dominated the route pass
            used = np.zeros(syn.n_in, dtype=bool)
            used[cols] = True
            cols = np.flatnonzero(used)
        else:
            cols = sorted_unique(cols)
        out.extend([c, a, b] for a, b in runs(cols))
    return out


def _group_table(cores_axons: list[list[list]]) -> dict[str, list[tuple[int, int, int, int]]]:
    """Per connection: ``(core, src_start, src_stop, axon_base)`` of every axon group."""
    table: dict[str, list[tuple[int, int, int, int]]] = {}
    for cid, groups in enumerate(cores_axons):
        base = 0
        for c, a, b in groups:
            table.setdefault(c, []).append((cid, a, b, base))
            base += b - a
    return table


def build_routes(net: Network, cores: list[list[Slice]], table: dict) -> list[dict]:
    """Route entries of every source population (see module doc)."""
    routes = []
    order = {c: i for i, c in enumerate(net.conns)}
    own_slices: dict[str, list[tuple[int, int]]] = {}
    for sl in cores:
        for p, s, e in sl:
            own_slices.setdefault(p, []).append((s, e))
    for pop in net.pops:
        outs = net.out_of.get(pop, [])
        if not outs:
            continue
        groups = [(c, *g) for c in outs for g in table.get(c, [])]
        if not groups:
            continue
        own = sorted(own_slices.get(pop, []))
        for s, e in own:
            hits = [(max(a, s), min(b, e), core, c, base + max(a, s) - a)
                    for c, core, a, b, base in groups if a < e and b > s]
            if not hits:
                continue
            cuts = sorted({s, e} | {h[0] for h in hits} | {h[1] for h in hits})
            for u, v in zip(cuts[:-1], cuts[1:], strict=False):
                tg = [[core, c, ax + (u - lo)] for lo, hi, core, c, ax in hits if lo <= u and hi >= v]
                if tg:
                    tg.sort(key=lambda t: (t[0], order[t[1]]))
                    routes.append({"source": pop, "start": int(u), "stop": int(v),
                                   "targets": [[int(a), c, int(x)] for a, c, x in tg]})
    return routes


def build_inputs(net: Network, table: dict) -> dict[str, list[list]]:
    out: dict[str, list[list]] = {}
    for x in net.inputs:
        entries = []
        for c in net.out_of.get(x, []):
            for core, a, b, base in table.get(c, []):
                entries.append([int(core), c, int(base), int(a), int(b)])
        out[x] = entries
    return out


def build_outputs(net: Network, cores: list[list[Slice]]) -> dict[str, list[list]]:
    out: dict[str, list[list]] = {}
    for o, pop in net.outputs.items():
        entries = []
        for cid, sl in enumerate(cores):
            base = 0
            for p, s, e in sl:
                if p == pop:
                    entries.append([cid, base, s, e])
                base += e - s
        out[o] = sorted(entries, key=lambda t: t[2])
    return out


def latencies(net: Network) -> dict[str, int | None]:
    """Shortest input-to-output delay per Output (Dijkstra over connection delays). Retiming
    (TrueNorth splitters) already lengthened the delays on the path: the mapping's extra
    latency is part of the result, not added to it."""
    dist: dict[str, int] = {}
    heap = [(0, x) for x in net.inputs]
    heapq.heapify(heap)
    while heap:
        d, n = heapq.heappop(heap)
        if n in dist:
            continue
        dist[n] = d
        for c in net.out_of.get(n, []):
            syn = net.conns[c]
            for t in syn.targets:
                if t not in dist:
                    heapq.heappush(heap, (d + int(syn.delay), t))
    return {o: (dist[p] if p in dist else None) for o, p in net.outputs.items()}


# ---- link loads -------------------------------------------------------------------------------
def link_loads(mesh: Mesh, slots: np.ndarray, traffic: tuple[np.ndarray, np.ndarray, np.ndarray]
               ) -> dict[str, np.ndarray]:
    """Expected packets per tick on every directed link, dimension-ordered (x then y).

    Returns arrays on the global grid (``W = mx * chips`` by ``H = my``): ``east[y, x]`` is the link
    ``(x, y) -> (x+1, y)``, ``west[y, x]`` the link ``(x+1, y) -> (x, y)``, ``north[y, x]`` the
    link ``(x, y) -> (x, y+1)`` and ``south[y, x]`` the link ``(x, y+1) -> (x, y)``.
    """
    W, H = mesh.mx * mesh.chips, mesh.my
    src, dst, w = traffic
    ax, ay = mesh.global_xy(slots[src]) if src.size else (np.zeros(0, int), np.zeros(0, int))
    bx, by = mesh.global_xy(slots[dst]) if dst.size else (np.zeros(0, int), np.zeros(0, int))
    out = {}
    for name, lo, hi, row, fwd, size, other in (
        ("east", ax, bx, ay, True, W, H), ("west", bx, ax, ay, False, W, H),
        ("north", ay, by, bx, True, H, W), ("south", by, ay, bx, False, H, W),
    ):
        sel = hi > lo
        diff = np.zeros((other, size + 1))
        np.add.at(diff, (row[sel], lo[sel]), w[sel])
        np.add.at(diff, (row[sel], hi[sel]), -w[sel])
        acc = np.cumsum(diff, axis=1)[:, : size - 1]
        out[name] = acc if name in ("east", "west") else acc.T
        del fwd
    return out


def link_table(mesh: Mesh, loads: dict[str, np.ndarray], top: int | None = None) -> list[dict]:
    """Non-zero links as ``{"from": [x, y], "to": [x, y], "load": packets/tick, "chip_edge": bool}``
    on global coordinates, busiest first."""
    rows = []
    step = {"east": (1, 0), "west": (-1, 0), "north": (0, 1), "south": (0, -1)}
    for name, arr in loads.items():
        ys, xs = np.nonzero(arr)
        for y, x in zip(ys.tolist(), xs.tolist(), strict=False):
            if name == "west":
                frm, to = (x + 1, y), (x, y)
            elif name == "south":
                frm, to = (x, y + 1), (x, y)
            else:
                dx, dy = step[name]
                frm, to = (x, y), (x + dx, y + dy)
            edge = frm[0] // mesh.mx != to[0] // mesh.mx
            rows.append({"from": list(frm), "to": list(to), "load": round(float(arr[y, x]), 6),
                         "chip_edge": bool(edge)})
    rows.sort(key=lambda r: (-r["load"], r["from"], r["to"]))
    return rows if top is None else rows[:top]


# ---- checks -----------------------------------------------------------------------------------
def check_reach(graph: Graph) -> list[Violation]:
    """Every synapse reached exactly once; every host I/O element mapped once (vectorised).

    For every synapse (target row ``i``, source ``j``) of connection ``c``, the core ``k`` holding
    row ``i`` must have exactly one axon of ``(c, j)``, and exactly one route (or host input entry)
    must deliver ``j``'s spikes to that axon. A delivery to an axon of another connection or source
    is a violation too.
    """
    net = network(graph)
    cores = mapped_cores(graph)
    m = graph.mapping
    found: list[Violation] = []
    names = list(net.conns)
    cidx = {c: i for i, c in enumerate(names)}
    n_src = max([net.source_size(s.source) for s in net.conns.values()] + [1])
    n_cores = len(cores)

    def key(core, c, src):
        return (np.asarray(core, np.int64) * len(names) + np.asarray(c, np.int64)) * n_src + src

    # Axons: per core, connection and source of every axon index.
    ax_core, ax_conn, ax_src, ax_index = [], [], [], []
    for cid, entry in enumerate(m["cores"]):
        base = 0
        for c, a, b in entry.get("axons", []):
            if c not in cidx:
                found.append(Violation("route.reach", f"core {cid}", f"axons of {c}", None,
                                       "axon group names no connection of the graph"))
                continue
            ax_core.append(np.full(b - a, cid))
            ax_conn.append(np.full(b - a, cidx[c]))
            ax_src.append(np.arange(a, b))
            ax_index.append(np.arange(base, base + b - a))
            base += b - a
    def cat(xs: list) -> np.ndarray:
        return np.concatenate(xs).astype(np.int64) if xs else np.zeros(0, np.int64)

    ax_core, ax_conn, ax_src, ax_index = map(cat, (ax_core, ax_conn, ax_src, ax_index))
    ax_keys = key(ax_core, ax_conn, ax_src)
    uk, counts = _unique_counts(ax_keys)
    for k in uk[counts > 1][:10]:
        found.append(_reach_violation(names, n_src, int(k), "an axon twice"))
    # Needed synapse keys.
    core_of = core_of_neuron(net, cores)
    needed = []
    for i, syn in enumerate(net.conns.values()):
        for t in syn.targets:
            # distinct (source, core) pairs per connection first: a key per synapse would take
            # 8 bytes per synapse and a sort of all of them (minutes on a full TrueNorth chip)
            # (core + 1 keeps an unmapped row, core -1, a key of its own)
            pairs = delivery_keys(syn, core_of[t][0] + 1, n_cores + 1)
            needed.append(key(pairs % (n_cores + 1) - 1, i, pairs // (n_cores + 1)))
    needed = sorted_unique(cat(needed))
    missing = _not_in(needed, uk)
    for k in missing[:10]:
        found.append(_reach_violation(names, n_src, int(k), "no axon"))
    # Deliveries: (core, axon index) -> must match the axon's (conn, src).
    order = np.lexsort((ax_index, ax_core))
    lc, li = ax_core[order], ax_index[order]
    width = int(li.max()) + 1 if li.size else 1
    lookup_key = lc * width + li  # sorted: (core, axon index) of every axon
    d_core, d_conn, d_axon, d_src = [], [], [], []
    for r in m.get("routes", []):
        n = r["stop"] - r["start"]
        for core, c, base in r["targets"]:
            d_core.append(np.full(n, core))
            d_conn.append(np.full(n, cidx.get(c, -1)))
            d_axon.append(np.arange(base, base + n))
            d_src.append(np.arange(r["start"], r["stop"]))
    for entries in m.get("inputs", {}).values():
        for core, c, base, a, b in entries:
            d_core.append(np.full(b - a, core))
            d_conn.append(np.full(b - a, cidx.get(c, -1)))
            d_axon.append(np.arange(base, base + b - a))
            d_src.append(np.arange(a, b))
    d_core, d_conn, d_axon, d_src = map(cat, (d_core, d_conn, d_axon, d_src))
    if d_core.size:
        pos = np.searchsorted(lookup_key, d_core * width + d_axon)
        pos = np.minimum(pos, max(lookup_key.size - 1, 0))
        ok = lookup_key.size > 0
        hit = ok & (lookup_key[pos] == d_core * width + d_axon) if ok else np.zeros(d_core.size, bool)
        hit_conn = ax_conn[order][pos] if ok else d_conn
        hit_src = ax_src[order][pos] if ok else d_src
        wrong = ~hit | (hit_conn != d_conn) | (hit_src != d_src) | (d_core >= n_cores)
        if wrong.any():
            i = int(np.nonzero(wrong)[0][0])
            found.append(Violation(
                "route.reach", f"core {int(d_core[i])} axon {int(d_axon[i])}",
                f"{int(wrong.sum())} deliveries", 0,
                "a route delivers to an axon of another connection or source; this is a bug "
                "of the route pass or a hand-edited mapping"))
        got = key(d_core[~wrong], d_conn[~wrong], d_src[~wrong])
    else:
        got = np.zeros(0, np.int64)
    gk, gc = _unique_counts(got)
    for k in gk[gc > 1][:10]:
        found.append(_reach_violation(names, n_src, int(k), "a spike twice"))
    for k in _not_in(needed, gk)[:10]:
        if k in set(missing[:10].tolist()):
            continue
        found.append(_reach_violation(names, n_src, int(k), "no route"))
    found.extend(_check_io(net, cores, m))
    return found


def _unique_counts(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values and their counts (sort based: fast on long int64 arrays)."""
    a = np.sort(a)
    if a.size == 0:
        return a, np.zeros(0, np.int64)
    start = np.flatnonzero(np.concatenate(([True], a[1:] != a[:-1])))
    return a[start], np.diff(np.append(start, a.size))


def _not_in(a: np.ndarray, sorted_b: np.ndarray) -> np.ndarray:
    """Elements of ``a`` absent from the sorted array ``sorted_b`` (binary search)."""
    if sorted_b.size == 0:
        return a
    pos = np.minimum(np.searchsorted(sorted_b, a), sorted_b.size - 1)
    return a[sorted_b[pos] != a]


def _reach_violation(names: list[str], n_src: int, k: int, what: str) -> Violation:
    src = k % n_src
    rest = k // n_src
    c, core = rest % len(names), rest // len(names)
    return Violation("route.reach", f"core {core} connection {names[c]} source {src}", what,
                     "exactly once", "every synapse must be reached exactly once; this is a bug "
                     "of the route pass or a hand-edited mapping")


def _check_io(net: Network, cores: list[list[Slice]], m: dict) -> list[Violation]:
    found = []
    for o, pop in net.outputs.items():
        cover = np.zeros(net.sizes[pop], dtype=np.int64)
        for _core, _base, s, e in m.get("outputs", {}).get(o, []):
            cover[s:e] += 1
        if (cover != 1).any():
            bad = int(np.nonzero(cover != 1)[0][0])
            found.append(Violation("route.io", f"output {o} element {bad}", int(cover[bad]), 1,
                                   "every output element must be read from exactly one core"))
    return found


def route_entries_per_core(m: dict, n_cores: int) -> np.ndarray:
    """Route table entries each core sends from (one per route target)."""
    counts = np.zeros(n_cores, dtype=np.int64)
    src_core = {}
    for cid, c in enumerate(m["cores"]):
        for p, s, e in c["slices"]:
            src_core.setdefault(p, []).append((s, e, cid))
    for r in m.get("routes", []):
        for s, e, cid in src_core.get(r["source"], []):
            if s <= r["start"] and r["stop"] <= e:
                counts[cid] += len(r["targets"])
                break
    return counts


_CORE_EXTRAS: dict[str, Any] = {}


def core_extra(family: str):
    """Register ``fn(net, slices, axon_groups, usage) -> dict`` giving a family's own keys of a
    core entry (``core[family]``, docs/mapping.md)."""

    def deco(fn):
        _CORE_EXTRAS[family] = fn
        return fn

    return deco


@core_extra("loihi")
def _loihi_extra(net: Network, slices: list[Slice], groups: list, usage: Any) -> dict:
    """``{"encoding": {connection: "dense" | "sparse"}, "synapse_words": n}``."""
    return {"encoding": dict(sorted(usage.detail.get("encoding", {}).items())),
            "synapse_words": int(usage.amounts.get("synapse_words", 0))}


@core_extra("truenorth")
def _truenorth_extra(net: Network, slices: list[Slice], groups: list, usage: Any) -> dict:
    """``{"axon_types": [G of axon 0, G of axon 1, ...]}`` (from the crossbars' axon types)."""
    types: list[int] = []
    for c, a, b in groups:
        t = net.conns[c].extra.get("axon_types")
        types.extend((t[a:b] if t is not None else np.zeros(b - a, np.int64)).tolist())
    return {"axon_types": types}


@core_extra("brainscales2")
def _bss2_extra(net: Network, slices: list[Slice], groups: list, usage: Any) -> dict:
    """``{"rows": synapse rows used, "circuits": {population: circuits per neuron}}``."""
    from nmc.passes.cost import cost_model

    model = cost_model("brainscales2")
    circ = {p: model.circuits(net, p) for p, _, _ in slices}
    return {"rows": int(usage.amounts.get("rows", 0)),
            "circuits": {p: k for p, k in sorted(circ.items()) if k != 1}}


def route_graph(graph: Graph, profile: Any) -> tuple[dict, dict]:
    """The routed mapping of a placed graph, and the decisions to record."""
    net = network(graph)
    cores = mapped_cores(graph)
    model = cost_model(profile.family)
    cores_axons = [axon_groups(net, sl) for sl in cores]
    table = _group_table(cores_axons)
    legal = graph.attrs.get("passes", {}).get("legalize_family", {})
    extra = {o: int(legal.get("extra_latency", {}).get(o, 0)) for o in net.outputs}
    for syn in net.conns.values():
        if syn.copies != 1:
            raise CompileError(
                f"route: connection {syn.name} has {syn.copies} axons per source; run "
                "legalize_family first (it gives every source one axon per core)")
    extra_fn = _CORE_EXTRAS.get(profile.family)
    new_cores = []
    for cid, (entry, groups) in enumerate(zip(graph.mapping["cores"], cores_axons, strict=False)):
        e = {**entry, "axons": [[c, int(a), int(b)] for c, a, b in groups]}
        if extra_fn is not None:
            fam = extra_fn(net, cores[cid], groups, model.usage(net, cores[cid], profile))
            if fam:
                e[profile.family] = fam
        new_cores.append(e)
    mapping = {
        **graph.mapping,
        "cores": new_cores,
        "routes": build_routes(net, cores, table),
        "inputs": build_inputs(net, table),
        "outputs": build_outputs(net, cores),
        "latency": latencies(net),
        "extra_latency": extra,
    }
    mesh, slots = placed_slots(graph, profile)
    traffic = core_traffic(graph)
    loads = link_loads(mesh, slots, traffic)
    links = link_table(mesh, loads)
    decisions = {
        "axons": int(sum(b - a for g in cores_axons for _, a, b in g)),
        "routes": len(mapping["routes"]),
        "max_link_load": links[0]["load"] if links else 0.0,
        "busiest_links": links[:5],
    }
    return mapping, decisions


@register_pass
@dataclass(frozen=True)
class Route(Pass):
    """Axons, routes, host I/O maps, latency; checks that every synapse is reached exactly once,
    the output axons and the router tables fit (see module doc)."""

    name: ClassVar[str] = "route"
    needs: ClassVar[Stage] = Stage.PLACED
    makes: ClassVar[Stage] = Stage.ROUTED
    check: bool = field(default=True)

    def run(self, graph: Graph, target: Any) -> Graph:
        mapping, decisions = route_graph(graph, target)
        out = graph.replace(stage=self.makes, mapping=mapping,
                            attrs=record(graph.attrs, self.name, decisions))
        out = share_view(graph, out)
        if self.check:
            problems = check_reach(out)
            if problems:
                raise CompileError("route: " + "; ".join(v.message(target.name) for v in problems))
            from nmc.passes.drc import routing_violations

            raise_violations(routing_violations(out, target), target.name, "route")
        return out


__all__ = ["Route", "axon_groups", "check_reach", "link_loads", "link_table", "route_graph",
           "runs"]
