"""legalize (float lowering + composition) and legalize_family (loihi relays, truenorth fan-out,
brainscales2 merged circuits)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

from ir.errors import CompileError
from ir.graph import GraphBuilder, Stage
from ir.interp_float import run_float
from ir.interp_int import run_int
from ir.native.loihi import LoihiCompartment, LoihiDense
from ir.nodes import IF, Conv2d, Dense, Flatten, Input, Output, Scale, Threshold
from ir.random_graphs import random_float_graph
from ir.verify import verify
from nmc.passes import run_passes
from nmc.passes.flow import default_flow
from nmc.passes.legalize import Legalize, LegalizeFamily, compose, linear_of, lower_generic

sys.path.insert(0, str(Path(__file__).parent))
from test_partition import make_profile  # noqa: E402


def _spikes(graph, seed, steps=12, batch=2):
    rng = np.random.default_rng(seed)
    return {x.name: (rng.random((batch, steps, *x.shape)) < 0.4).astype(float)
            for x in graph.inputs}


@pytest.mark.parametrize("seed", range(30))
def test_lowering_keeps_the_function_of_random_graphs(seed):
    g = random_float_graph(seed)
    h, decisions = lower_generic(g)
    verify(h)
    kinds = {n.kind for n in h.nodes.values()}
    assert not kinds & {"Conv2d", "Conv1d", "SumPool2d", "AvgPool2d", "Scale"}
    # No connection feeds another connection any more.
    for a, b in h.edges:
        if h.nodes[b].category == "connection" and h.nodes[b].kind != "Flatten":
            assert h.nodes[a].category != "connection" or h.nodes[a].kind == "Flatten"
    ins = _spikes(g, seed)
    before, after = run_float(g, ins), run_float(h, ins)
    assert set(before.outputs) == set(after.outputs)
    for k, a in before.outputs.items():
        np.testing.assert_allclose(after.outputs[k].reshape(a.shape), a, rtol=1e-10, atol=1e-10)


def _conv_reference(x, w, stride, pad, dil):
    """Plain loops (tiny sizes only): the definition of Conv2d in ir.nodes."""
    c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    ho = (h + 2 * pad[0] - dil[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (wd + 2 * pad[1] - dil[1] * (kw - 1) - 1) // stride[1] + 1
    y = np.zeros((o, ho, wo))
    for oo in range(o):
        for i in range(ho):
            for j in range(wo):
                for cc in range(cg):
                    for u in range(kh):
                        for v in range(kw):
                            yy, xx = i * stride[0] - pad[0] + u * dil[0], j * stride[1] - pad[1] + v * dil[1]
                            if 0 <= yy < h and 0 <= xx < wd:
                                y[oo, i, j] += w[oo, cc, u, v] * x[cc, yy, xx]
    return y


def test_conv2d_coo_matches_the_loop_definition():
    rng = np.random.default_rng(3)
    w = rng.normal(size=(3, 2, 2, 3))
    w[0, 0, 0, 0] = 0.0
    b = GraphBuilder("c")
    b.add(Input(name="x", shape=(2, 5, 4)))
    node = Conv2d(name="cv", input_shape=(2, 5, 4), out_channels=3, kernel=(2, 3),
                  stride=(2, 1), padding=(1, 1), dilation=(1, 2), weight=b.const("w", w))
    b.add(node, "x")
    g = b.build()
    lin = linear_of(g, node)
    x = rng.normal(size=(2, 5, 4))
    y = np.zeros(lin.n_out)
    np.add.at(y, lin.rows, lin.vals * x.reshape(-1)[lin.cols])
    np.testing.assert_allclose(y.reshape(node.out_shape), _conv_reference(x, w, (2, 1), (1, 1), (1, 2)))
    assert np.all(lin.vals != 0)  # zero weights and padding are dropped


def test_dense_chain_composes_into_one_dense():
    rng = np.random.default_rng(0)
    a, ab = rng.normal(size=(5, 4)), rng.normal(size=5)
    c, cb = rng.normal(size=(3, 5)), rng.normal(size=3)
    b = GraphBuilder("chain")
    b.add(Input(name="x", shape=(4,)))
    b.add(Dense(name="d1", in_features=4, out_features=5, weight=b.const("a", a),
                bias=b.const("ab", ab)), "x")
    b.add(Dense(name="d2", in_features=5, out_features=3, weight=b.const("c", c),
                bias=b.const("cb", cb)), "d1")
    b.add(IF(name="h", shape=(3,), v_threshold=1.0), "d2")
    b.add(Output(name="y", shape=(3,)), "h")
    g = b.build()
    out = run_passes(g, [Legalize()], "loihi").graph
    assert list(out.nodes) == ["x", "d2", "h", "y"]
    assert out.edges == (("d2", "h"), ("h", "y"), ("x", "d2"))
    d2 = out.nodes["d2"]
    assert d2.kind == "Dense"
    np.testing.assert_allclose(out.const(d2.weight), c @ a)
    np.testing.assert_allclose(out.const(d2.bias), c @ ab + cb)
    assert out.attrs["passes"]["legalize"] == {
        "lowered": {}, "composed": ["d1 -> d2"], "removed": ["d1"], "flattened": [],
        "flatten_inserted": []}


def test_shared_source_connection_is_kept_for_its_other_reader():
    rng = np.random.default_rng(1)
    b = GraphBuilder("shared")
    b.add(Input(name="x", shape=(4,)))
    b.add(Dense(name="d1", in_features=4, out_features=4, weight=b.const("a", rng.normal(size=(4, 4)))), "x")
    b.add(IF(name="h1", shape=(4,), v_threshold=1.0), "d1")
    b.add(Scale(name="s", shape=(4,), factor=2.0), "d1")
    b.add(IF(name="h2", shape=(4,), v_threshold=1.0), "s")
    b.add(Output(name="y1", shape=(4,)), "h1")
    b.add(Output(name="y2", shape=(4,)), "h2")
    g = b.build()
    h, dec = lower_generic(g)
    assert dec["composed"] == ["d1 -> s"] and dec["removed"] == []
    assert h.nodes["s"].kind == "Dense" and h.predecessors("s") == ["x"]
    np.testing.assert_allclose(h.const(h.nodes["s"].weight), 2 * g.const("a"))
    ins = _spikes(g, 1)
    for k in ("y1", "y2"):
        np.testing.assert_allclose(run_float(h, ins).outputs[k], run_float(g, ins).outputs[k])


def test_conv_population_becomes_flat_and_output_records_flat_vectors():
    rng = np.random.default_rng(2)
    b = GraphBuilder("convnet")
    b.add(Input(name="x", shape=(1, 4, 4)))
    b.add(Conv2d(name="cv", input_shape=(1, 4, 4), out_channels=2, kernel=(3, 3), padding=(1, 1),
                 weight=b.const("w", rng.normal(size=(2, 1, 3, 3)))), "x")
    b.add(IF(name="h", shape=(2, 4, 4), v_threshold=0.5), "cv")
    b.add(Flatten(name="fl", input_shape=(2, 4, 4)), "h")
    b.add(Dense(name="fc", in_features=32, out_features=3, weight=b.const("f", rng.normal(size=(3, 32)))), "fl")
    b.add(Threshold(name="o", shape=(3,), v_threshold=0.0), "fc")
    b.add(Output(name="maps", shape=(2, 4, 4)), "h")
    b.add(Output(name="y", shape=(3,)), "o")
    g = b.build()
    h, dec = lower_generic(g)
    verify(h)
    assert dec["lowered"] == {"cv": "Conv2d"}
    assert dec["composed"] == ["fl -> fc"] and dec["removed"] == ["fl"]
    assert dec["flattened"] == ["h", "maps"]
    assert dec["flatten_inserted"] == ["x_flat"]
    assert h.nodes["h"].shape == (32,) and h.nodes["maps"].shape == (32,)
    assert "fl" not in h.nodes and h.predecessors("fc") == ["h"]
    ins = _spikes(g, 2)
    a, c = run_float(g, ins), run_float(h, ins)
    np.testing.assert_allclose(c.outputs["maps"].reshape(a.outputs["maps"].shape), a.outputs["maps"])
    np.testing.assert_allclose(c.outputs["y"], a.outputs["y"])


def test_compose_sparse_after_sparse_sums_duplicates():
    from nmc.passes.legalize import Linear

    a = Linear(3, 2, rows=np.array([0, 0, 1]), cols=np.array([0, 2, 1]), vals=np.array([1.0, 2.0, 3.0]))
    b = Linear(2, 2, rows=np.array([0, 0, 1]), cols=np.array([0, 1, 1]), vals=np.array([1.0, 1.0, -1.0]))
    m = compose(b, a)
    dense = np.zeros((2, 3))
    dense[m.rows, m.cols] = m.vals
    np.testing.assert_array_equal(dense, np.array([[1.0, 3.0, 2.0], [0.0, -3.0, 0.0]]))


# ---- legalize_family: loihi ------------------------------------------------------------------
def _loihi_delay_net(delay: int):
    rng = np.random.default_rng(5)
    b = GraphBuilder("long", stage=Stage.QUANTIZED, attrs={"target": "loihi-mini"})
    b.add(Input(name="x", shape=(6,)))
    w = rng.integers(-60, 60, size=(4, 6)) * 2
    w[:, 3] = 0  # source 3 is never used: it gets no relay
    b.add(LoihiDense(name="syn", in_features=6, out_features=4, delay=delay,
                     weight=b.const("w", w.astype(np.int16))), "x")
    b.add(LoihiCompartment(name="h", shape=(4,), du=100, dv=200, vth_mant=20), "syn")
    b.add(Output(name="y", shape=(4,)), "h")
    return b.build()


def test_loihi_long_delay_is_relayed_exactly(tmp_path):
    prof = make_profile(tmp_path, **{"synapse.delay_max": 4})
    g = _loihi_delay_net(11)
    out = run_passes(g, [LegalizeFamily()], prof).graph
    dec = out.attrs["passes"]["legalize_family"]
    assert dec == {"family": "loihi", "changes": [
        "syn: delay 11 > 4 relayed through 2 population(s) of 5 neurons"],
        "extra_latency": {"y": 0}}
    assert [out.nodes[n].delay for n in ("syn_hop0", "syn_hop1", "syn")] == [4, 4, 3]
    x = np.random.default_rng(0).random((3, 40, 6)) < 0.3
    np.testing.assert_array_equal(run_int(out, x).outputs["y"], run_int(g, x).outputs["y"])


def test_loihi_neuron_with_too_many_inputs_is_rejected():
    b = GraphBuilder("wide", stage=Stage.QUANTIZED, attrs={"target": "loihi-mini"})
    b.add(Input(name="x", shape=(300,)))
    b.add(LoihiDense(name="syn", in_features=300, out_features=2,
                     weight=b.const("w", np.full((2, 300), 2, np.int16))), "x")
    b.add(LoihiCompartment(name="h", shape=(2,), du=0, dv=0, vth_mant=10), "syn")
    b.add(Output(name="y", shape=(2,)), "h")
    with pytest.raises(CompileError, match=re.escape(
            "legalize_family: population h neuron 0 (300 synapses): axons_in 300 > 256 by 44 "
            "(target loihi-mini) [net.fanin]; one neuron alone needs more axons_in than a core "
            "has (2 neurons like it may exist); prune or split its inputs (fewer sources, fewer "
            "weight bits)") + "$"):
        run_passes(b.build(), [LegalizeFamily()], "loihi-mini")


def test_bad_fanout_option():
    with pytest.raises(CompileError, match=r"^legalize_family: fanout = 'many' is not one of "
                                           r"auto, copy, splitter$"):
        run_passes(_loihi_delay_net(1), [LegalizeFamily(fanout="many")], "loihi-mini")


# ---- legalize_family: truenorth ------------------------------------------------------------
def tn_float_net(sizes=(20, 40, 30, 10), seed=0, kind="IF"):
    rng = np.random.default_rng(seed)
    b = GraphBuilder("tnnet")
    prev = b.add(Input(name="x", shape=(sizes[0],)))
    for i, (a, n) in enumerate(zip(sizes[:-1], sizes[1:], strict=False)):
        w = rng.normal(0, 1, size=(n, a)) * (rng.random((n, a)) < 0.5)
        c = b.add(Dense(name=f"fc{i}", in_features=a, out_features=n, weight=b.const(f"w{i}", w)), prev)
        node = (IF(name=f"h{i}", shape=(n,), v_threshold=1.0) if kind == "IF"
                else Threshold(name=f"h{i}", shape=(n,), v_threshold=0.5))
        prev = b.add(node, c)
    b.add(Output(name="y", shape=(sizes[-1],)), prev)
    return b.build()


@pytest.mark.parametrize("fanout,kind", [("copy", "IF"), ("splitter", "IF"), ("auto", "IF"),
                                         ("splitter", "Threshold")])
def test_truenorth_one_target_per_neuron_and_same_spikes(fanout, kind):
    from nmc.passes.drc import check_design
    from nmc.passes.flow import compile_graph, default_flow

    g = tn_float_net(kind=kind)
    routed = compile_graph(g, "truenorth-mini", fanout=fanout).graph
    dec = routed.attrs["passes"]["legalize_family"]
    assert dec["fanout"] == ("copy" if fanout == "auto" else fanout)
    assert check_design(routed, "truenorth-mini") == []
    # every neuron sends to at most one (core, axon)
    sent = {}
    for r in routed.mapping["routes"]:
        for k in range(r["start"], r["stop"]):
            sent[(r["source"], k)] = sent.get((r["source"], k), 0) + len(r["targets"])
    assert max(sent.values()) == 1
    quant = run_passes(g, default_flow({})[:2], "truenorth-mini").graph
    x = np.random.default_rng(1).random((3, 30, 20)) < 0.3
    a = run_int(quant, x).outputs["y"]
    b = run_int(routed, x).outputs["y"]
    lat = dec["extra_latency"]["y"]
    assert lat == (2 if fanout == "splitter" else 0)
    np.testing.assert_array_equal(b[:, lat:, : a.shape[2]], a[:, : a.shape[1] - lat])
    assert a.sum() > 0


def test_truenorth_auto_keeps_the_cheaper_variant():
    from nmc.passes.flow import compile_graph

    dec = compile_graph(tn_float_net(), "truenorth-mini").graph.attrs["passes"]["legalize_family"]
    # (h2's 18 inputs sit on axon types 3: three axons, so three emitters, per h1 neuron)
    assert dec["considered"] == {"copy": 21, "splitter": 32}
    assert dec["fanout"] == "copy" and dec["copies"] == {"h0": 303, "h1": 88}


# ---- legalize_family: brainscales2 -----------------------------------------------------------
def test_brainscales2_wide_fan_in_merges_two_circuits():
    from nmc.passes.drc import check_design
    from nmc.passes.flow import compile_graph, default_flow

    rng = np.random.default_rng(0)
    b = GraphBuilder("wide")
    b.add(Input(name="x", shape=(300,)))
    b.add(Dense(name="fc", in_features=300, out_features=4,
                weight=b.const("w", rng.uniform(0.05, 0.2, (4, 300)))), "x")
    b.add(IF(name="h", shape=(4,), v_threshold=1.0), "fc")
    b.add(Output(name="y", shape=(4,)), "h")
    g = b.build()
    routed = compile_graph(g, "brainscales2").graph
    assert routed.attrs["passes"]["legalize_family"] == {
        "family": "brainscales2", "circuits": {"h": 2},
        "changes": ["h: 300 rows per neuron > 256: 2 circuits per neuron"],
        "extra_latency": {"y": 0}}
    assert routed.mapping["cores"][0]["brainscales2"] == {"rows": 150, "circuits": {"h": 2}}
    assert check_design(routed, "brainscales2") == []
    quant = run_passes(g, default_flow({})[:3], "brainscales2").graph
    x = rng.random((2, 30, 300)) < 0.2
    a = run_int(quant, x).outputs["y"]
    np.testing.assert_array_equal(run_int(routed, x).outputs["y"], a)
    assert a.sum() > 0


def test_brainscales2_fanin_refusal_reports_the_rows_one_circuit_needs():
    """Rows are allocated per circuit, so the refusal compares the rows one circuit still needs
    at the most merged circuits with a hemisphere's rows (not the total with rows x max_merge,
    which could read '4200 > 4096' or, worse, a smaller number > a larger one)."""
    from ir.native.brainscales2 import BSS2Neuron, BSS2Synapses

    n_in = 2100  # signed: 4200 rows per neuron, 16 circuits of 256 rows hold 4096
    b = GraphBuilder("wide", stage=Stage.QUANTIZED, attrs={"target": "brainscales2"})
    b.add(Input(name="x", shape=(n_in,)))
    w = np.full((1, 4, n_in), 5, np.uint8)
    b.add(BSS2Synapses(name="w", in_features=n_in, out_features=4, exc=b.const("e", w),
                       inh=b.const("i", w.copy())), "x")
    b.add(BSS2Neuron(name="h", shape=(4,), v_leak=300, v_threshold=400, v_reset=300, c_mem=100,
                     gain_exc=64, gain_inh=64), "w")
    b.add(Output(name="y", shape=(4,)), "h")
    with pytest.raises(CompileError, match=r"population h \(per circuit, 16 merged\): rows 264 > "
                       r"256 by 8 .*\[net\.fanin\]; a neuron needs 4200 synapse rows; .*one "
                       r"circuit still needs 264; prune its inputs"):
        run_passes(b.build(), default_flow(), "brainscales2")
