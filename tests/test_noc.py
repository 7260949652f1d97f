"""The network on chip in cycle mode: routes, timing, arbitration, back-pressure, overruns, drops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_image import compiled

import emulator
from emulator.noc import NocParams, simulate, xy_route
from nmc.backend.writer import write_image

ROOT = Path(__file__).resolve().parent.parent


def params(**kw) -> NocParams:
    base = dict(hop_cycles=2, port_cycles=2, fifo_depth=4, clock_hz=1e9, cycles_per_sop=1,
                cycles_per_update=1, tick_seconds=1e-3, overrun="stretch")
    base.update(kw)
    return NocParams(**base)


def run_packets(p: NocParams, xy, src, dst, ready, inst=None, n_inst=1):
    xy = np.asarray(xy, np.int64)
    src = np.asarray(src, np.int64)
    inst = np.zeros(src.size, np.int64) if inst is None else np.asarray(inst, np.int64)
    core_end = np.zeros((n_inst, xy.shape[0]), np.int64)
    return simulate(p, n_inst, inst, src, np.asarray(dst, np.int64), np.asarray(ready, np.int64),
                    core_end, xy)


def test_xy_route_goes_x_first():
    assert xy_route((0, 0), (2, 1)) == [(0, 0), (1, 0), (2, 0), (2, 1)]
    assert xy_route((3, 2), (1, 0)) == [(3, 2), (2, 2), (1, 2), (1, 1), (1, 0)]
    assert xy_route((1, 1), (1, 1)) == [(1, 1)]


def test_single_packet_latency_and_hops():
    # cores at (0,0) and (2,1); injected at cycle 10, switched one cycle later, 3 hops of 2
    # cycles, then the eject port (2 cycles)
    r = run_packets(params(), [[0, 0], [2, 1]], [0], [1], [10])
    assert r.delivered_at.tolist() == [10 + 1 + 3 * 2 + 2]
    assert (r.hops_ew.tolist(), r.hops_ns.tolist()) == ([2], [1])
    assert r.cycles.tolist() == [19] and r.drops.tolist() == [0]
    # to its own core: through the local router only
    r = run_packets(params(), [[0, 0], [2, 1]], [0], [0], [0])
    assert r.delivered_at.tolist() == [3] and r.hops_ew.tolist() == [0]


def test_through_traffic_beats_local_injection():
    # A at (0,0) and B at (1,0) both send to C at (2,0); A's packet reaches (1,0) at cycle 3,
    # the cycle B's packet is first switchable there: the through packet goes first
    xy = [[0, 0], [1, 0], [2, 0]]
    r = run_packets(params(), xy, [0, 1], [2, 2], [0, 2])
    assert r.delivered_at.tolist() == [7, 9]
    # the same with A's packet a cycle later: B is alone at cycle 3 and goes first
    r = run_packets(params(), xy, [0, 1], [2, 2], [1, 2])
    assert r.delivered_at.tolist() == [9, 7]


def test_back_pressure_stalls_and_never_drops():
    # two streams of 10 packets merge into one eject port (one packet per 4 cycles) through
    # FIFOs of depth 1: the links into the last router stall, the cores stall on injection
    p = params(fifo_depth=1, port_cycles=4, hop_cycles=1)
    xy = [[1, 0], [2, 1], [2, 0]]
    r = run_packets(p, xy, [0] * 10 + [1] * 10, [2] * 20, [0] * 20)
    assert r.drops.tolist() == [0] and r.delivered.all()
    assert r.stalls[0] > 0 and r.injection_stalls[0] > 0
    at = np.sort(r.delivered_at)
    assert np.all(np.diff(at) == 4)  # the shared eject port sends one packet every 4 cycles
    links = r.congested(0)
    assert links[0]["stalls"] > 0 and links[0]["direction"] in ("E", "S")
    assert sum(x["packets"] for x in links if x["direction"] == "eject") == 20


def test_instances_are_independent():
    xy = [[0, 0], [1, 0], [2, 0]]
    one = run_packets(params(), xy, [0, 1], [2, 2], [0, 2])
    two = run_packets(params(), xy, [0, 1, 0, 1], [2, 2, 2, 2], [0, 2, 0, 2], inst=[0, 0, 1, 1],
                      n_inst=2)
    assert two.delivered_at.tolist() == one.delivered_at.tolist() * 2
    assert two.cycles.tolist() == one.cycles.tolist() * 2


def test_drop_policy_drops_late_packets_and_counts_them():
    p = params(tick_seconds=12e-9, overrun="drop")  # a 12-cycle tick
    r = run_packets(p, [[0, 0], [3, 0]], [0] * 4, [1] * 4, [0] * 4)
    assert r.delivered_at.tolist() == [9, 11, -1, -1]  # the third would land at 13
    assert r.delivered.tolist() == [True, True, False, False]
    assert r.drops.tolist() == [2] and r.cycles.tolist() == [12]


# ------------------------------------------------------------------------------------------
# Whole chips in cycle mode
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def busy():
    """A compiled random graph with traffic between many cores."""
    for seed in (22, 27, 29, 36, 23):
        res = compiled(seed)
        if res is not None and len(emulator.load(res[1]).cores) > 10:
            return seed, res[0]
    pytest.skip("no busy graph compiles")


def short_tick_chip(graph, tmp_path: Path, tick_seconds: float, overrun: str = "stretch"):
    """The graph's image for a copy of loihi-mini with a shorter tick (same profile name)."""
    text = (ROOT / "nmc" / "targets" / "loihi-mini.toml").read_text()
    text = text.replace("tick_seconds = 1e-3", f"tick_seconds = {tick_seconds}")
    assert f"tick_seconds = {tick_seconds}" in text
    p = tmp_path / f"short-{overrun}.toml"
    p.write_text(text)
    return emulator.load(write_image(graph, p))


def test_fast_equals_cycle_without_overrun(busy):
    seed, g = busy
    chip = emulator.load(write_image(g, "loihi-mini"))
    x = {n.name: np.random.default_rng(seed).random((2, 12, *n.out_shape)) < 0.3 for n in g.inputs}
    a = chip.run(x, mode="fast")
    b = chip.run(x, mode="cycle")
    assert b.stats["counters"]["overruns"] == 0 and b.stats["counters"]["drops"] == 0
    assert b.stats["counters"]["packets"] > 100
    for o in a.outputs:
        assert np.array_equal(a.outputs[o], b.outputs[o])
    noc = b.stats["noc"]
    assert len(noc["cycles_per_tick"]) == 12 and max(noc["cycles_per_tick"]) > 0
    assert noc["budget_cycles"] == 1_000_000
    again = chip.run(x, mode="cycle")
    assert again.stats["noc"]["cycles_per_tick"] == noc["cycles_per_tick"]


def test_overrun_is_reported_with_congested_links(busy, tmp_path):
    seed, g = busy
    chip = short_tick_chip(g, tmp_path, 1e-7)  # 100 cycles per tick
    x = {n.name: np.random.default_rng(seed).random((1, 10, *n.out_shape)) < 0.3 for n in g.inputs}
    fast = chip.run(x, mode="fast")
    res = chip.run(x, mode="cycle")
    c = res.stats["counters"]
    assert c["overruns"] > 0 and c["drops"] == 0
    o = res.stats["noc"]["overrun_ticks"][0]
    assert o["cycles"] > o["budget"] == 100
    assert o["links"] and {"x", "y", "direction", "packets", "stalls"} <= set(o["links"][0])
    # stretch: late ticks last longer, nothing is lost, the spikes are the fast mode's
    for k in fast.outputs:
        assert np.array_equal(fast.outputs[k], res.outputs[k])
    assert res.stats["noc"]["stretched_seconds_per_sample"] > res.stats["chip_time"]["seconds_per_sample"]


def test_drop_policy_on_a_chip_counts_drops(busy, tmp_path):
    seed, g = busy
    chip = short_tick_chip(g, tmp_path, 1.8e-7, "drop")  # 180 cycles: some ticks fit
    x = {n.name: np.random.default_rng(seed).random((1, 10, *n.out_shape)) < 0.3 for n in g.inputs}
    res = chip.run(x, mode="cycle", overrun="drop")
    c = res.stats["counters"]
    assert c["drops"] > 0 and c["overruns"] > 0
    assert res.stats["noc"]["policy"] == "drop"
    assert sum(o["drops"] for o in res.stats["noc"]["overrun_ticks"]) == c["drops"]
    assert c["drops"] < c["packets"]
