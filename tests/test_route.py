"""route: axons, routes, host I/O maps, latency, link loads; every synapse reached exactly once;
mapping never changes behaviour."""

from __future__ import annotations

import copy
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from ir.errors import CompileError
from ir.graph import GraphBuilder, Stage
from ir.interp_int import run_int
from ir.native.loihi import LoihiCompartment, LoihiDense, LoihiSparse
from ir.nodes import Input, Output
from ir.random_graphs import random_loihi_graph
from nmc.passes import run_passes
from nmc.passes.partition import Partition
from nmc.passes.place import Mesh, Place
from nmc.passes.route import Route, check_reach, link_loads, runs
from nmc.targets import load_profile

sys.path.insert(0, str(Path(__file__).parent))
from test_partition import make_profile  # noqa: E402


def tiny():
    """x (6) -> a (sparse, neighbours) -> h (6) -> b (dense, delay 2) -> o (3); h4 feeds nothing."""
    b = GraphBuilder("tiny", stage=Stage.QUANTIZED, attrs={"target": "loihi-mini"})
    b.add(Input(name="x", shape=(6,)))
    rows = np.array([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5])
    cols = np.array([0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5])
    b.add(LoihiSparse(name="a", in_features=6, out_features=6, rows=b.const("ar", rows),
                      cols=b.const("ac", cols), values=b.const("av", np.full(11, 4))), "x")
    b.add(LoihiCompartment(name="h", shape=(6,), du=4095, dv=0, vth_mant=1), "a")
    w = np.zeros((3, 6), int)
    w[0, :2] = 2
    w[1, 2:4] = 2
    w[2, 1], w[2, 5] = -2, 2
    b.add(LoihiDense(name="b", in_features=6, out_features=3, delay=2, weight=b.const("bw", w)), "h")
    b.add(LoihiCompartment(name="o", shape=(3,), du=4095, dv=0, vth_mant=1), "b")
    b.add(Output(name="y", shape=(3,)), "o")
    b.add(Output(name="hy", shape=(6,)), "h")
    return b.build()


@pytest.fixture
def small(tmp_path):
    return load_profile(make_profile(tmp_path, **{"core.neurons": 4, "chip.mesh_x": 2,
                                                  "chip.mesh_y": 2}))


def routed_tiny(profile):
    return run_passes(tiny(), [Partition(), Place(), Route()], profile).graph


def test_routed_mapping_of_a_tiny_network(small):
    g = routed_tiny(small)
    assert g.stage == Stage.ROUTED
    assert g.mapping == {
        "strategy": {"partition": "contiguous", "place": "greedy"},
        "cores": [
            {"id": 0, "slices": [["h", 0, 4]], "chip": 0, "x": 0, "y": 0, "axons": [["a", 0, 5]],
             "loihi": {"encoding": {"a": "dense"}, "synapse_words": 5}},
            {"id": 1, "slices": [["h", 4, 6]], "chip": 0, "x": 1, "y": 0, "axons": [["a", 4, 6]],
             "loihi": {"encoding": {"a": "dense"}, "synapse_words": 2}},
            {"id": 2, "slices": [["o", 0, 3]], "chip": 0, "x": 0, "y": 1,
             "axons": [["b", 0, 4], ["b", 5, 6]],
             "loihi": {"encoding": {"b": "dense"}, "synapse_words": 5}},
        ],
        "routes": [{"source": "h", "start": 0, "stop": 4, "targets": [[2, "b", 0]]},
                   {"source": "h", "start": 5, "stop": 6, "targets": [[2, "b", 4]]}],
        "inputs": {"x": [[0, "a", 0, 0, 5], [1, "a", 0, 4, 6]]},
        "outputs": {"y": [[2, 0, 0, 3]], "hy": [[0, 0, 0, 4], [1, 0, 4, 6]]},
        "latency": {"y": 3, "hy": 1},
        "extra_latency": {"y": 0, "hy": 0},
    }
    assert g.attrs["passes"]["route"] == {
        "axons": 12, "routes": 2, "max_link_load": 0.25,
        "busiest_links": [{"from": [0, 0], "to": [0, 1], "load": 0.25, "chip_edge": False},
                          {"from": [1, 0], "to": [0, 0], "load": 0.05, "chip_edge": False}]}
    assert check_reach(g) == []


def _rules(found):
    return sorted({(v.rule, v.value) for v in found})


def test_reach_check_finds_a_missing_axon(small):
    g = routed_tiny(small)
    m = copy.deepcopy(g.mapping)
    m["cores"][2]["axons"] = [["b", 0, 4]]  # source 5 of b lost its axon
    found = check_reach(g.replace(mapping=m))
    assert ("route.reach", "no axon") in _rules(found)
    assert found[0].object == "core 2 connection b source 5"


def test_reach_check_finds_a_duplicate_and_a_wrong_delivery(small):
    g = routed_tiny(small)
    m = copy.deepcopy(g.mapping)
    m["routes"][0]["targets"].append([2, "b", 0])  # the same spikes twice
    assert ("route.reach", "a spike twice") in _rules(check_reach(g.replace(mapping=m)))
    m = copy.deepcopy(g.mapping)
    m["routes"][1]["targets"] = [[2, "b", 3]]  # h5 lands on h3's axon
    rules = {v.rule for v in check_reach(g.replace(mapping=m))}
    assert rules == {"route.reach"}


def test_output_map_must_cover_each_element_once(small):
    g = routed_tiny(small)
    m = copy.deepcopy(g.mapping)
    m["outputs"]["hy"] = [[0, 0, 0, 4]]
    found = check_reach(g.replace(mapping=m))
    assert [(v.rule, v.object, v.value) for v in found] == [("route.io", "output hy element 4", 0)]


def test_link_loads_are_dimension_ordered():
    mesh = Mesh(3, 3, 1)
    # one packet per tick from (0, 0) to (2, 1): east, east, then north at x = 2
    traffic = (np.array([0]), np.array([1]), np.array([1.0]))
    slots = np.array([0, mesh.slot_of(0, 2, 1)])
    loads = link_loads(mesh, slots, traffic)
    assert loads["east"].tolist() == [[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]]
    assert loads["north"].tolist() == [[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
    assert loads["west"].sum() == loads["south"].sum() == 0


def test_runs():
    assert runs(np.array([0, 1, 2, 5, 6, 9])) == [(0, 3), (5, 7), (9, 10)]
    assert runs(np.array([], dtype=int)) == []


@pytest.mark.parametrize("seed", range(8))
def test_mapping_never_changes_behaviour(seed, tmp_path):
    prof = load_profile(make_profile(tmp_path, **{"core.axons_in": 1024, "chip.max_chips": 16}))
    g = random_loihi_graph(seed)
    for part, place in (("contiguous", "greedy"), ("mincut", "anneal")):
        routed = run_passes(g, [Partition(strategy=part), Place(strategy=place, steps=500), Route()],
                            prof).graph
        assert check_reach(routed) == []
        rng = np.random.default_rng(seed)
        ins = {x.name: rng.random((2, 25, *x.shape)) < 0.3 for x in g.inputs}
        a, b = run_int(g, ins), run_int(routed, ins)
        for k in a.outputs:
            np.testing.assert_array_equal(a.outputs[k], b.outputs[k])


def test_route_needs_one_axon_per_source(tmp_path):
    from test_legalize import tn_float_net

    from nmc.passes.flow import default_flow
    from nmc.passes.legalize import Legalize

    q = run_passes(tn_float_net(), [Legalize(), default_flow({})[1]], "truenorth-mini").graph
    with pytest.raises(CompileError, match=re.escape(
            "route: connection fc0 has 4 axons per source; run legalize_family first (it gives "
            "every source one axon per core)") + "$"):
        run_passes(q, [Partition(), Place(), Route()], "truenorth-mini", verify=False)
