"""The ``place`` pass (partitioned -> placed): put cores on the mesh of one or more chips.

Geometry (our convention, shared with the route pass and the NoC model): a chip is a
``chip.mesh_x`` x ``chip.mesh_y`` mesh; a system of several chips lays them side by side along x,
so core ``(chip, x, y)`` sits at global coordinates ``(chip * mesh_x + x, y)``. A packet travels
dimension-ordered (x first, then y), so the hops between two cores are the Manhattan distance of
their global coordinates. The fewest chips that hold the cores are used (``chip.max_chips`` at most).

Strategies:

* ``greedy``: core ``i`` on slot ``i`` in row-major order (x fastest, then y, then chip).
* ``anneal``: seeded simulated annealing that starts from ``greedy`` and minimises
  ``sum over core pairs of traffic(a, b) * hops(a, b)``, the expected spike-hops per tick; a move
  takes a core to another slot (swapping with the core there, if any). Same seed, same placement.

Traffic: a spike of a neuron makes one packet per (destination core, connection) it reaches on
another core (:func:`nmc.passes.cost.packets`), weighted by the neuron's expected spikes per tick
(calibration data through the integer interpreter, or ``default_rate``). Host inputs are not
counted (where the host attaches is not modelled). The estimate is recorded in
``graph.attrs["passes"]["place"]["spike_hops_per_tick"]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ir.errors import CompileError
from ir.graph import Graph, Stage
from nmc.passes import Pass, record, register_pass
from nmc.passes.cost import core_of_neuron, network, neuron_rates, packets, share_view
from nmc.passes.drc import Violation, raise_violations
from nmc.passes.partition import mapped_cores

STRATEGIES = ("greedy", "anneal")


@dataclass(frozen=True)
class Mesh:
    """Slots of a system of ``chips`` chips of ``mx`` x ``my`` cores (see module doc)."""

    mx: int
    my: int
    chips: int

    @classmethod
    def of(cls, profile: Any, n_cores: int) -> Mesh:
        mx, my = int(profile.get("chip.mesh_x")), int(profile.get("chip.mesh_y"))
        chips = max(1, math.ceil(n_cores / (mx * my)))
        max_chips = int(profile.get("chip.max_chips"))
        if chips > max_chips:
            raise_violations([Violation(
                "net.chips", f"network ({n_cores} cores)", chips, max_chips,
                f"it needs {n_cores} cores, {mx * my} per chip; shrink the network, reduce "
                "weight bits, or use a profile with more chips (chip.max_chips)")],
                profile.name, "place")
        return cls(mx, my, chips)

    @property
    def slots(self) -> int:
        return self.mx * self.my * self.chips

    def coords(self, slot: np.ndarray | int) -> tuple[Any, Any, Any]:
        """(chip, x, y) of slot indices (row-major within a chip)."""
        slot = np.asarray(slot)
        per = self.mx * self.my
        chip, rest = slot // per, slot % per
        return chip, rest % self.mx, rest // self.mx

    def global_xy(self, slot: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        chip, x, y = self.coords(slot)
        return chip * self.mx + x, y

    def slot_of(self, chip: int, x: int, y: int) -> int:
        return (chip * self.my + y) * self.mx + x


def core_traffic(graph: Graph, calibration: Any = None, default_rate: float = 0.05
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Directed core-to-core traffic: ``(src_core, dst_core, packets per tick)`` (src != dst)."""
    net = network(graph)
    cores = mapped_cores(graph)
    n = len(cores)
    key = ("traffic", id(calibration), float(default_rate), tuple(map(tuple, cores)))
    if key in net.cache:
        return net.cache[key]
    rates = neuron_rates(graph, calibration, default_rate)
    sc, dc, ci, sn = packets(net, core_of_neuron(net, cores), n)
    # rate of every packet's source neuron: one flat table, an offset per connection
    sources = list(dict.fromkeys(s.source for s in net.conns.values()))
    base = dict(zip(sources, np.cumsum([0] + [rates[x].size for x in sources[:-1]]), strict=False))
    flat = np.concatenate([rates[x] for x in sources]) if sources else np.zeros(0)
    offset = np.array([base[s.source] for s in net.conns.values()], dtype=np.int64)
    w = flat[offset[ci] + sn] if sc.size else np.zeros(0)
    keep = (sc >= 0) & (sc != dc)
    pair = sc[keep] * n + dc[keep]
    uk, inv = np.unique(pair, return_inverse=True)
    tot = np.bincount(inv, weights=w[keep]) if uk.size else np.zeros(0)
    out = (uk // n, uk % n, tot)
    net.cache[key] = out
    return out


def hops(mesh: Mesh, slot_a: np.ndarray, slot_b: np.ndarray) -> np.ndarray:
    ax, ay = mesh.global_xy(slot_a)
    bx, by = mesh.global_xy(slot_b)
    return np.abs(ax - bx) + np.abs(ay - by)


def spike_hops(mesh: Mesh, slots: np.ndarray, traffic: tuple[np.ndarray, np.ndarray, np.ndarray]
               ) -> float:
    """Expected spike-hops per tick of a placement (``slots[core]``)."""
    src, dst, w = traffic
    if w.size == 0:
        return 0.0
    return float(np.sum(w * hops(mesh, slots[src], slots[dst])))


def anneal(mesh: Mesh, n_cores: int, traffic: tuple[np.ndarray, np.ndarray, np.ndarray],
           seed: int = 0, steps: int | None = None) -> np.ndarray:
    """Seeded simulated annealing of ``slots[core]`` on spike-hops (see module doc).

    A move picks a core with traffic and a slot within a window around it (the window shrinks
    from the whole system to the next neighbours as the temperature falls); the core moves there,
    swapping with the core on that slot if any. Metropolis acceptance with a geometric cooling
    from the mean uphill step of random moves down to a thousandth of it. The best placement
    seen is returned. The loop is plain Python over short neighbour lists (faster than numpy
    calls at this size); random numbers are drawn in blocks.
    """
    rng = np.random.default_rng(seed)
    src, dst, w = traffic
    if n_cores < 2 or w.size == 0:
        return np.arange(n_cores, dtype=np.int64)
    und: dict[tuple[int, int], float] = {}
    for a, b, x in zip(src.tolist(), dst.tolist(), w.tolist(), strict=False):
        k = (a, b) if a < b else (b, a)
        und[k] = und.get(k, 0.0) + x
    adj: list[list[tuple[int, float]]] = [[] for _ in range(n_cores)]
    for (a, b), x in sorted(und.items()):
        adj[a].append((b, x))
        adj[b].append((a, x))
    gx_a, gy_a = mesh.global_xy(np.arange(mesh.slots))
    gx, gy = gx_a.tolist(), gy_a.tolist()
    width, height = mesh.mx * mesh.chips, mesh.my
    slots = list(range(n_cores))
    occ = list(range(n_cores)) + [-1] * (mesh.slots - n_cores)
    active = [i for i in range(n_cores) if adj[i]]

    def cost_at(core: int, slot: int, skip: int) -> float:
        x, y = gx[slot], gy[slot]
        tot = 0.0
        for nb, wt in adj[core]:
            if nb != skip:
                s = slots[nb]
                tot += wt * (abs(gx[s] - x) + abs(gy[s] - y))
        return tot

    def delta(c: int, s: int) -> float:
        here, other = slots[c], occ[s]
        d = cost_at(c, s, other) - cost_at(c, here, other)
        if other >= 0:
            d += cost_at(other, here, c) - cost_at(other, s, c)
        return d

    if steps is None:
        steps = int(min(200_000, 200 * n_cores))
    block = 4096
    buf: dict[str, list] = {}
    pos = [block]

    def draws() -> tuple[float, float, float, float]:
        if pos[0] >= block:
            r = rng.random((4, block))
            buf["r"] = [r[k].tolist() for k in range(4)]
            pos[0] = 0
        i = pos[0]
        pos[0] += 1
        r = buf["r"]
        return r[0][i], r[1][i], r[2][i], r[3][i]

    span = max(width, height)

    def propose(radius: int) -> tuple[int, int]:
        r0, r1, r2, _ = draws()
        c = active[int(r0 * len(active))]
        sx, sy = gx[slots[c]], gy[slots[c]]
        tx = min(width - 1, max(0, sx + int(r1 * (2 * radius + 1)) - radius))
        ty = min(height - 1, max(0, sy + int(r2 * (2 * radius + 1)) - radius))
        chip, x = divmod(tx, mesh.mx)
        return c, mesh.slot_of(chip, x, ty)

    samples = [abs(delta(*propose(span))) for _ in range(min(200, steps))]
    ups = [x for x in samples if x > 0]
    t0 = float(np.mean(ups)) if ups else 1.0
    t_end = t0 * 1e-3
    cur = best_cost = spike_hops(mesh, np.asarray(slots), traffic)
    best = list(slots)
    ratio = (t_end / t0) ** (1.0 / max(1, steps))
    temp = t0
    for i in range(steps):
        radius = max(1, int(span * (1 - i / steps) + 0.5))
        c, s = propose(radius)
        temp *= ratio
        here = slots[c]
        if s == here:
            continue
        d = delta(c, s)
        if d <= 0 or draws()[3] < math.exp(-d / temp):
            other = occ[s]
            slots[c], occ[s], occ[here] = s, c, other
            if other >= 0:
                slots[other] = here
            cur += d
            if cur < best_cost - 1e-9:
                best_cost, best = cur, list(slots)
    return np.asarray(best, dtype=np.int64)


def place_cores(graph: Graph, profile: Any, strategy: str = "greedy", seed: int = 0,
                steps: int | None = None, calibration: Any = None, default_rate: float = 0.05
                ) -> tuple[Mesh, np.ndarray, dict]:
    """Slots of every core of a partitioned graph, and the decisions to record."""
    if strategy not in STRATEGIES:
        raise CompileError(f"place: strategy = {strategy!r} is not one of {', '.join(STRATEGIES)}")
    n = len(graph.mapping["cores"])
    mesh = Mesh.of(profile, n)
    traffic = core_traffic(graph, calibration, default_rate)
    greedy = np.arange(n, dtype=np.int64)
    before = spike_hops(mesh, greedy, traffic)
    slots = greedy if strategy == "greedy" else anneal(mesh, n, traffic, seed, steps)
    after = spike_hops(mesh, slots, traffic)
    decisions = {
        "strategy": strategy,
        "chips": mesh.chips,
        "spike_hops_per_tick": round(after, 6),
        "spike_hops_per_tick_greedy": round(before, 6),
        "packets_per_tick": round(float(traffic[2].sum()), 6),
        "rates": "calibration" if calibration is not None else f"uniform {default_rate}",
    }
    if strategy == "anneal":
        decisions["seed"] = seed
    return mesh, slots, decisions


@register_pass
@dataclass(frozen=True)
class Place(Pass):
    """Put the cores on the mesh (see module doc).

    Options: ``strategy`` (``greedy`` | ``anneal``), ``seed`` and ``steps`` (annealing moves;
    default 200 per core, at most 200000), ``calibration`` / ``default_rate`` (traffic weights as in partition).
    """

    name: ClassVar[str] = "place"
    needs: ClassVar[Stage] = Stage.PARTITIONED
    makes: ClassVar[Stage] = Stage.PLACED

    strategy: str = "greedy"
    seed: int = 0
    steps: int | None = None
    calibration: Any = field(default=None, compare=False)
    default_rate: float = 0.05

    def run(self, graph: Graph, target: Any) -> Graph:
        mesh, slots, decisions = place_cores(graph, target, self.strategy, self.seed, self.steps,
                                             self.calibration, self.default_rate)
        chip, x, y = mesh.coords(slots)
        cores = []
        for i, c in enumerate(graph.mapping["cores"]):
            cores.append({**c, "chip": int(chip[i]), "x": int(x[i]), "y": int(y[i])})
        mapping = {**graph.mapping, "cores": cores,
                   "strategy": {**graph.mapping.get("strategy", {}), "place": self.strategy}}
        out = graph.replace(stage=self.makes, mapping=mapping,
                            attrs=record(graph.attrs, self.name, decisions))
        return share_view(graph, out)


def placed_slots(graph: Graph, profile: Any) -> tuple[Mesh, np.ndarray]:
    """The mesh and the slot of every core of a placed (or later) graph."""
    cores = graph.mapping["cores"]
    mx, my = int(profile.get("chip.mesh_x")), int(profile.get("chip.mesh_y"))
    chips = max([int(c.get("chip", 0)) for c in cores] + [0]) + 1
    mesh = Mesh(mx, my, chips)
    slots = np.array([mesh.slot_of(int(c["chip"]), int(c["x"]), int(c["y"])) for c in cores],
                     dtype=np.int64)
    return mesh, slots


__all__ = ["STRATEGIES", "Mesh", "Place", "anneal", "core_traffic", "place_cores", "placed_slots",
           "spike_hops"]
