"""Design-rule checks: every violation reported, with value, limit, by how much and a hint."""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from ir.errors import CompileError
from ir.graph import GraphBuilder, Stage
from ir.native.loihi import LoihiCompartment, LoihiDense
from ir.nodes import Input, Output
from nmc.passes import run_passes
from nmc.passes.drc import (
    Violation,
    check_design,
    check_target,
    design_rules,
    report_json,
    report_text,
)
from nmc.passes.partition import Partition
from nmc.passes.place import Place
from nmc.targets import load_profile

sys.path.insert(0, str(Path(__file__).parent))
from test_legalize import tn_float_net  # noqa: E402
from test_partition import make_profile, two_layer  # noqa: E402
from test_route import routed_tiny, small  # noqa: E402,F401


def test_violation_message():
    v = Violation("core.synapse_words", "core 7", 20000, 16384, "reduce the weight bits",
                  detail="h1[256:512]")
    assert v.excess == 3616
    assert v.message("loihi") == ("core 7 (h1[256:512]): synapse_words 20000 > 16384 by 3616 "
                                  "(target loihi) [core.synapse_words]; reduce the weight bits")
    assert v.to_json() == {"rule": "core.synapse_words", "object": "core 7", "value": 20000,
                           "limit": 16384, "hint": "reduce the weight bits",
                           "detail": "h1[256:512]", "quantity": ""}


def test_a_good_routed_graph_has_no_violation(small):  # noqa: F811
    assert check_design(routed_tiny(small), small) == []


def test_every_overfull_core_is_reported(small):  # noqa: F811
    g = run_passes(two_layer(n_in=10, n_h=6, n_out=3), [Partition()], small).graph
    m = copy.deepcopy(g.mapping)
    m["cores"] = [{"id": 0, "slices": [["h1", 0, 6]]}, {"id": 1, "slices": [["h2", 0, 3]]}]
    found = check_design(g.replace(mapping=m), small)
    assert [v.message("t") for v in found] == [
        "core 0 (h1[0:6]): neurons 6 > 4 by 2 (target t) [core.neurons]; give fewer neurons per "
        "core (partition max_neurons=...)"]
    m["cores"] = [{"id": 0, "slices": [["h1", 0, 4]]}, {"id": 1, "slices": [["h1", 3, 6]]},
                  {"id": 2, "slices": [["h2", 0, 2]]}]
    found = check_design(g.replace(mapping=m), small)
    assert [(v.rule, v.object, v.value) for v in found] == [
        ("core.slices", "population h1 neuron 3", 2), ("core.slices", "population h2 neuron 2", 0)]


def test_place_rule_finds_a_shared_spot(small):  # noqa: F811
    g = run_passes(two_layer(n_in=10, n_h=6, n_out=3), [Partition(), Place()], small).graph
    m = copy.deepcopy(g.mapping)
    m["cores"][1].update(x=0, y=0)  # onto core 0
    found = check_design(g.replace(mapping=m), small)
    assert [(v.rule, v.object, v.value, v.limit) for v in found] == [
        ("place.coordinates", "core 1", [0, 0, 0], "free (core 0 is there)")]
    m["cores"][1].update(x=5)
    found = check_design(g.replace(mapping=m), small)
    assert [(v.rule, v.object, v.limit) for v in found] == [
        ("place.coordinates", "core 1", "chip < 4, x < 2, y < 2")]


def test_delay_and_fanin_rules_on_a_quantized_graph(tmp_path):
    prof = load_profile(make_profile(tmp_path, **{"synapse.delay_max": 3}))
    b = GraphBuilder("q", stage=Stage.QUANTIZED, attrs={"target": "loihi-mini"})
    b.add(Input(name="x", shape=(300,)))
    b.add(LoihiDense(name="syn", in_features=300, out_features=2, delay=5,
                     weight=b.const("w", np.full((2, 300), 2, np.int16))), "x")
    b.add(LoihiCompartment(name="h", shape=(2,), du=0, dv=0, vth_mant=10), "syn")
    b.add(Output(name="y", shape=(2,)), "h")
    found = check_design(b.build(), prof)
    assert [(v.rule, v.object, v.value, v.limit) for v in found] == [
        ("net.delay", "connection syn", 5, 3),
        ("net.fanin", "population h neuron 0", 300, 256),
    ]


def test_truenorth_fanout_rule_without_legalization():
    from nmc.passes.flow import default_flow
    from nmc.passes.legalize import Legalize

    q = run_passes(tn_float_net(), [Legalize(), default_flow({})[1]], "truenorth-mini").graph
    part = run_passes(q, [Partition()], "truenorth-mini").graph
    found = [v for v in check_design(part, "truenorth-mini") if v.rule == "truenorth.fanout"]
    assert [(v.object, v.value, v.limit, v.detail) for v in found] == [
        ("population h0 neuron 0", 11, 1, "40 neurons"),
        ("population h1 neuron 0", 3, 1, "28 neurons")]  # h2 on axon types 3: 3 axons each
    assert found[0].message() == (
        "population h0 neuron 0 (40 neurons): targets 11 > 1 by 10 [truenorth.fanout]; a TrueNorth "
        "neuron has one target; run legalize_family (copies or splitter cores)")


def test_check_target_says_by_how_much_a_network_does_not_fit(tmp_path):
    prof = load_profile(make_profile(tmp_path, base="truenorth-mini", **{"chip.max_chips": 1}))
    reached, found = check_target(tn_float_net(), prof)
    assert reached.stage == Stage.PARTITIONED
    assert report_text(found, prof.name) == (
        "mapping of tnnet (cores used): cores 21 > 16 by 5 (target test-profile) [net.chips]; "
        "the partition uses 21 cores but 1 chips hold 16; shrink the network, reduce weight "
        "bits, or raise chip.max_chips in a custom profile")
    assert json.loads(report_json(found))[0]["value"] == 21


def test_check_target_reports_a_pass_that_stops():
    reached, found = check_target(tn_float_net(sizes=(60, 60, 10)), "truenorth-mini")
    assert reached.stage == Stage.FLOAT
    assert [(v.rule, v.limit) for v in found] == [("net.compile", None)]
    assert found[0].message().startswith("graph tnnet: population h0: neuron ")
    assert found[0].message().endswith(" [net.compile]; fix the model so that it can be quantized")


def test_design_rules_hook_for_nmc_check():
    out = design_rules(tn_float_net(), "truenorth-mini")
    assert {k: out[k] for k in ("target", "fits", "stage_reached", "violations", "text")} == {
        "target": "truenorth-mini", "fits": True, "stage_reached": "routed", "violations": [],
        "text": "fits on truenorth-mini: no design-rule violations"}
    assert out["cores"] == 21


def test_check_design_refuses_a_float_graph():
    with pytest.raises(CompileError, match=re.escape(
            "check_design: graph tnnet is at stage float; quantize it for truenorth-mini first "
            "(or call nmc.passes.drc.check_target)") + "$"):
        check_design(tn_float_net(), "truenorth-mini")
