"""The default flow, compile_graph end to end, and the utilization report."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from ir.errors import CompileError
from ir.graph import GraphBuilder, Stage
from ir.interp_int import run_int
from ir.nodes import IF, LIF, Dense, Input, Output
from nmc.passes import run_passes
from nmc.passes.flow import OPTIONS, compile_graph, default_flow
from nmc.passes.utilization import utilization, utilization_json, utilization_text

sys.path.insert(0, str(Path(__file__).parent))
from test_route import routed_tiny, small  # noqa: E402,F401

UTILIZATION_TEXT = "\n".join([
    'utilization of tiny on test-profile (family loihi, stage routed)',
    '',
    'core  chip  x  y   neurons  axons_in  axons_out  synapse_words  compartment_configs  threshold_configs  synapse_configs  synapses  slices',
    '   0     0  0  0  4 (100%)    5 (2%)     4 (2%)         5 (0%)              1 (12%)            1 (25%)          1 (25%)         8  h[0:4]',
    '   1     0  1  0   2 (50%)    2 (1%)     1 (0%)         2 (0%)              1 (12%)            1 (25%)          1 (25%)         3  h[4:6]',
    '   2     0  0  1   3 (75%)    5 (2%)     0 (0%)         5 (0%)              1 (12%)            1 (25%)          1 (25%)         6  o[0:3]',
    '',
    'limits per core: neurons 4, axons_in 256, axons_out 256, synapse_words 1024, compartment_configs 8, threshold_configs 4, synapse_configs 4',
    'totals: neurons 9, axons_in 12, axons_out 5, synapse_words 12, synapses 17, memory_bits 768',
    'fill (of the cores used): neurons 75.0%, axons_in 1.6%, axons_out 0.7%, synapse_words 0.4%',
    'cores used: 3 (lower bound 3, set by neurons; ratio 1.0)',
    'chips used: 1 (4 cores per chip)',
    'spike-hops per tick: 0.3 (packets per tick 0.25, rates uniform 0.05)',
    'links used: 2, max load 0.25, mean 0.15, across chip edges 0.0 packets/tick',
    '  (0, 0) -> (0, 1): 0.25',
    '  (1, 0) -> (0, 0): 0.05',
])


def float_mlp(seed=0):
    rng = np.random.default_rng(seed)
    b = GraphBuilder("mlp")
    b.add(Input(name="x", shape=(40,)))
    w1 = rng.normal(0.3, 0.8, (90, 40)) * (rng.random((90, 40)) < 0.5)
    w1[:, 30:] *= np.arange(90)[:, None] % 4 == 0  # fan-in <= 32 for truenorth-mini (2 copies)
    w1[::4, :8] = 0
    b.add(Dense(name="fc1", in_features=40, out_features=90, weight=b.const("w1", w1)), "x")
    b.add(LIF(name="h1", shape=(90,), tau_mem=0.02, v_threshold=1.0), "fc1")
    w2 = rng.normal(0.3, 0.8, (10, 90)) * (np.arange(90)[None, :] % 3 == 0)
    b.add(Dense(name="fc2", in_features=90, out_features=10, weight=b.const("w2", w2)), "h1")
    b.add(IF(name="out", shape=(10,), v_threshold=1.0), "fc2")
    b.add(Output(name="y", shape=(10,)), "out")
    return b.build()


def test_default_flow_order_and_options():
    passes = default_flow({"partition": "mincut", "place": "anneal", "seed": 4})
    assert [p.name for p in passes] == ["legalize", "quantize", "legalize_family", "partition",
                                        "place", "route"]
    assert passes[3].strategy == "mincut" and passes[4].strategy == "anneal"
    assert passes[4].seed == 4
    assert set(OPTIONS) >= {"partition", "place", "calibration", "fanout"}
    with pytest.raises(CompileError, match=r"^compile: unknown option\(s\) colour; options: "):
        default_flow({"colour": "red"})


@pytest.mark.parametrize("target,part,place", [("loihi-mini", "contiguous", "greedy"),
                                               ("loihi-mini", "mincut", "anneal"),
                                               ("truenorth-mini", "contiguous", "greedy")])
def test_compile_graph_end_to_end_keeps_the_spikes(target, part, place):
    g = float_mlp()
    run = compile_graph(g, target, partition=part, place=place, anneal_steps=500,
                        print_after=("partition",))
    routed = run.graph
    assert routed.stage == Stage.ROUTED
    assert list(run.timings) == ["legalize", "quantize", "legalize_family", "partition", "place",
                                 "route"]
    assert run.dumps["partition"].startswith("nmir 1\ngraph mlp stage=partitioned")
    quant = run_passes(g, default_flow({})[:3], target).graph
    x = np.random.default_rng(0).random((2, 40, 40)) < 0.3
    a, b = run_int(quant, x).outputs["y"], run_int(routed, x).outputs["y"]
    lat = routed.mapping["extra_latency"]["y"]
    np.testing.assert_array_equal(b[:, lat:, :10], a[:, : a.shape[1] - lat])
    assert a.sum() > 0


def test_utilization_text_and_json(small):  # noqa: F811
    g = routed_tiny(small)
    report = utilization(g, small)
    assert utilization_text(report) == UTILIZATION_TEXT
    data = json.loads(utilization_json(report))
    assert (data["cores_used"], data["lower_bound"], data["chips_used"]) == (3, 3, 1)
    assert data["totals"] == {"neurons": 9, "axons_in": 12, "axons_out": 5, "synapse_words": 12,
                              "synapses": 17, "memory_bits": 768}
    assert data["links"]["busiest"][0] == {"from": [0, 0], "to": [0, 1], "load": 0.25,
                                           "chip_edge": False}


def test_utilization_needs_a_partition():
    with pytest.raises(CompileError, match=re.escape(
            "utilization: graph mlp is at stage float; partition it first") + "$"):
        utilization(float_mlp(), "loihi-mini")
