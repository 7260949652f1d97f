"""The pass framework: registry, stage rules, verification after each pass, timings, dumps, and the
quantize pass's stage/family rules."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

from ir.errors import CompileError, VerifyError
from ir.graph import GraphBuilder, Stage
from ir.nodes import LIF, Dense, Input, Node, Output
from nmc.passes import Pass, make_pass, pass_registry, register_pass, run_passes
from nmc.passes.quantize import Quantize, QuantizeOptions, quantize


@register_pass
@dataclass(frozen=True)
class Rename(Pass):
    """Test pass: float -> float, renames the graph and records its option."""

    name: ClassVar[str] = "test_rename"
    needs: ClassVar[Stage] = Stage.FLOAT
    makes: ClassVar[Stage] = Stage.FLOAT
    suffix: str = "_r"

    def run(self, graph, target):
        attrs = dict(graph.attrs, passes={**graph.attrs.get("passes", {}),
                                          self.name: {"suffix": self.suffix}})
        return graph.replace(name=graph.name + self.suffix, attrs=attrs)


@register_pass
@dataclass(frozen=True)
class NeedsPartitioned(Pass):
    name: ClassVar[str] = "test_place"
    needs: ClassVar[Stage] = Stage.PARTITIONED
    makes: ClassVar[Stage] = Stage.PLACED

    def run(self, graph, target):  # pragma: no cover - never reached in these tests
        return graph.replace(stage=Stage.PLACED)


@dataclass(frozen=True)
class WrongStage(Pass):
    name: ClassVar[str] = "test_wrong_stage"

    def run(self, graph, target):
        return graph.replace(stage=Stage.QUANTIZED)


def net(name: str = "net"):
    b = GraphBuilder(name)
    b.add(Input(name="x", shape=(3,)))
    b.add(Dense(name="fc", in_features=3, out_features=2,
                weight=b.const("w", np.array([[0.5, -0.25, 0.125], [0.3, 0.3, 0.3]]))), "x")
    b.add(LIF(name="h", shape=(2,), tau_mem=0.01, v_threshold=1.0), "fc")
    b.add(Output(name="y", shape=(2,)), "h")
    return b.build()


@pytest.fixture
def fake_verify(monkeypatch):
    """A stand-in for ir.verify that records the graphs it was given and rejects graphs whose
    name contains 'bad'."""
    seen: list[str] = []

    def verify(graph):
        seen.append(graph.name)
        if "bad" in graph.name:
            raise VerifyError([f"graph {graph.name}: broken on purpose"])

    monkeypatch.setitem(sys.modules, "ir.verify", types.SimpleNamespace(verify=verify))
    return seen


def test_registry_and_make_pass():
    reg = pass_registry()
    assert reg["test_rename"] is Rename and reg["quantize"] is Quantize
    assert make_pass("test_rename", suffix="_x") == Rename(suffix="_x")
    assert Rename(suffix="_x").options() == {"suffix": "_x"}
    with pytest.raises(CompileError, match=r"^unknown pass 'nope'; known passes: .*quantize.*$"):
        make_pass("nope")
    with pytest.raises(CompileError, match=r"^pass test_rename: unknown option 'sufix'; "
                                           r"options: suffix$"):
        make_pass("test_rename", sufix="_x")


def test_run_passes_verifies_times_and_dumps(fake_verify):
    from ir.text import print_graph

    g = net()
    calls = []
    res = run_passes(g, [Rename(), Rename(suffix="_s")], "loihi", print_after=["test_rename"],
                     on_pass=lambda p, out, sec: calls.append((p.name, out.name)))
    assert res.graph.name == "net_r_s"
    assert g.name == "net"  # the input is never mutated
    assert fake_verify == ["net", "net_r", "net_r_s"]  # input, then after each pass
    assert list(res.timings) == ["test_rename", "test_rename#2"]
    assert all(t >= 0 for t in res.timings.values())
    assert calls == [("test_rename", "net_r"), ("test_rename", "net_r_s")]
    assert list(res.dumps) == ["test_rename", "test_rename#2"]
    assert res.dumps["test_rename#2"] == print_graph(res.graph)
    assert res.graph.attrs["passes"]["test_rename"] == {"suffix": "_s"}
    assert res.skipped == []


def test_run_passes_errors(fake_verify):
    with pytest.raises(CompileError, match=r"^--print-after names quantise, which is not in this "
                                           r"pass list \(test_rename\)$"):
        run_passes(net(), [Rename()], "loihi", print_after=["quantise"])
    with pytest.raises(CompileError, match=r"^pass test_rename produced an invalid graph: graph "
                                           r"net_bad: broken on purpose$"):
        run_passes(net(), [Rename(suffix="_bad")], "loihi")
    with pytest.raises(CompileError, match=r"^pass test_wrong_stage returned stage quantized, "
                                           r"declared float$"):
        run_passes(net(), [WrongStage()], "loihi")
    with pytest.raises(VerifyError, match=r"^graph bad: broken on purpose$"):
        run_passes(net("bad"), [Rename()], "loihi")  # a bad input is the user's error
    with pytest.raises(CompileError, match=r"^pass test_place: graph net is at stage float, the "
                                           r"pass needs stage partitioned; run the passes before "
                                           r"it first$"):
        run_passes(net(), [NeedsPartitioned()], "loihi")


def test_graph_past_a_pass_skips_it(fake_verify):
    q = net().replace(stage=Stage.QUANTIZED)
    res = run_passes(q, [Rename()], "loihi")
    assert res.graph is q and res.skipped == ["test_rename"] and res.timings == {}


def test_quantize_pass_stage_and_family_rules(fake_verify):
    g = net()
    res = run_passes(g, [Quantize()], "loihi", print_after=["quantize"])
    q = res.graph
    assert q.stage == Stage.QUANTIZED and q.attrs["target"] == "loihi"
    assert [n.kind for n in q.nodes.values()] == ["Input", "LoihiDense", "LoihiCompartment",
                                                  "Output"]
    assert q == quantize(g, "loihi")[0]  # the pass is the function
    assert "node h = LoihiCompartment(" in res.dumps["quantize"]
    # A quantized graph for the same profile passes unchanged.
    again = run_passes(q, [Quantize()], "loihi")
    assert again.graph is q and again.skipped == ["quantize"]
    # For another profile of the same family it is retargeted: same nodes, new target.
    moved = run_passes(q, [Quantize()], "loihi-mini").graph
    assert moved.nodes == q.nodes and moved.constants.keys() == q.constants.keys()
    assert moved.attrs["target"] == "loihi-mini"
    assert moved.attrs["passes"]["quantize"] == {"retargeted_from": "loihi"}

    @dataclass(frozen=True, kw_only=True)
    class OtherNative(Node):  # a stand-in for another family's native kind (not registered)
        kind: ClassVar[str] = "TNCore"
        category: ClassVar[str] = "neuron"
        family: ClassVar[str] = "truenorth"

    other = q.replace(nodes={"c": OtherNative(name="c")}, edges=(), constants={},
                      attrs={"target": "truenorth"})
    with pytest.raises(CompileError, match=r"^quantize: graph net is already quantized for family "
                                           r"truenorth \(target truenorth\), not for loihi \(family "
                                           r"loihi\); compile the float model for loihi or choose "
                                           r"a truenorth target$"):
        run_passes(other, [Quantize()], "loihi")
    with pytest.raises(CompileError, match=r"^quantize: graph net holds native truenorth kinds but "
                                           r"the target loihi is of family loihi; choose a "
                                           r"truenorth target$"):
        quantize(other.replace(stage=Stage.FLOAT), "loihi")


def test_quantize_options_checked():
    with pytest.raises(CompileError, match=r"^quantize: percentile = 0 must be in \(0, 100\]; "
                                           r"99\.9 is usual$"):
        QuantizeOptions(percentile=0)
    with pytest.raises(CompileError, match=r"^quantize: weight_bits = 0 must be an integer >= 1$"):
        Quantize(weight_bits=0).quantize_options()
    # Calibration arrays do not take part in equality (passes stay comparable).
    assert Quantize(calibration=np.zeros(3)) == Quantize()
