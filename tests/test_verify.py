"""The IR verifier: every rule, with its exact message, and the family-rule extension point."""

from __future__ import annotations

import re

import numpy as np
import pytest

from ir import verify as V
from ir.errors import VerifyError
from ir.graph import Graph, GraphBuilder, Stage
from ir.native.loihi import LoihiCompartment, LoihiDense, LoihiSparse
from ir.nodes import (
    IF,
    LIF,
    Conv1d,
    Conv2d,
    Delay,
    Dense,
    Flatten,
    Input,
    Integrator,
    Output,
    Ref,
    Scale,
    Sparse,
)


def mlp(**dense_kw) -> GraphBuilder:
    """x(3) -> fc(3->2) -> h(2) -> y."""
    b = GraphBuilder("net")
    b.add(Input(name="x", shape=(3,)))
    w = b.const("w", np.ones((2, 3)))
    b.add(Dense(name="fc", in_features=3, out_features=2, weight=w, **dense_kw), "x")
    b.add(IF(name="h", shape=(2,), v_threshold=1.0), "fc")
    b.add(Output(name="y", shape=(2,)), "h")
    return b


def test_valid_graph_has_no_problems():
    g = mlp().build()
    assert V.problems(g) == []
    assert V.verify(g) is None


def test_verify_raises_with_all_problems_in_order():
    b = mlp()
    b.connect("x", "nowhere")
    b.add(Input(name="x2", shape=(3,)))
    b.connect("x2", "x")
    with pytest.raises(VerifyError) as e:
        V.verify(b.build())
    assert e.value.problems == [
        "edge x -> nowhere: no node named nowhere",
        "Input x: incoming edge from x2; an Input is driven by input data only",
    ]
    assert str(e.value) == (
        "2 problem(s) in graph:\n"
        "  - edge x -> nowhere: no node named nowhere\n"
        "  - Input x: incoming edge from x2; an Input is driven by input data only"
    )


def test_single_problem_message_is_the_problem():
    b = mlp()
    b.add(Input(name="x2", shape=(3,)))
    b.connect("x2", "x")
    with pytest.raises(
        VerifyError,
        match=r"^Input x: incoming edge from x2; an Input is driven "
        r"by input data only$",
    ):
        V.verify(b.build())


# ---- edges -----------------------------------------------------------------------------------
def test_edge_to_and_from_missing_nodes():
    b = mlp()
    b.connect("ghost", "h")
    b.connect("a", "b")
    assert V.problems(b.build()) == [
        "edge ghost -> h: no node named ghost",
        "edge a -> b: no node named a",
        "edge a -> b: no node named b",
    ]


def test_duplicate_edge():
    b = mlp()
    b.connect("fc", "h")
    b.connect("fc", "h")
    assert V.problems(b.build()) == ["edge fc -> h appears 3 times; list each edge once"]


def test_output_needs_exactly_one_source_and_no_successor():
    b = mlp()
    b.add(IF(name="h2", shape=(2,), v_threshold=1.0), "fc")
    b.connect("h2", "y")
    b.add(Output(name="z", shape=(2,)))
    b.add(IF(name="h3", shape=(2,), v_threshold=1.0))
    b.connect("y", "h3")
    assert V.problems(b.build()) == [
        "Output y: 2 incoming edges (from h, h2); an Output records exactly one source",
        "Output y: outgoing edge to h3; an Output is a sink (connect its source instead)",
        "Output z: 0 incoming edges; an Output records exactly one source",
    ]


def test_connection_and_delay_incoming_counts_exact():
    b = mlp()
    b.add(Delay(name="d", shape=(2,), delay=1))
    b.add(Flatten(name="f", input_shape=(2,)))
    b.add(
        Dense(name="fc2", in_features=2, out_features=2, weight=b.const("w2", np.eye(2))), "h", "h"
    )
    assert V.problems(b.build()) == [
        "edge h -> fc2 appears 2 times; list each edge once",
        "Delay d: 0 incoming edges; a Delay takes exactly one source",
        "Flatten f: 0 incoming edges; a connection takes exactly one source",
    ]
    b2 = mlp()
    b2.add(IF(name="h2", shape=(3,), v_threshold=1.0), "x")
    b2.connect("h2", "fc")
    assert V.problems(b2.build()) == [
        "Dense fc: 2 incoming edges (from x, h2); a connection takes exactly one source "
        "(use one connection per source)",
    ]


# ---- shapes ----------------------------------------------------------------------------------
def test_shape_mismatch_names_both_nodes_and_shapes():
    b = GraphBuilder("net")
    b.add(Input(name="x", shape=(2, 3)))
    b.add(
        Dense(name="fc", in_features=6, out_features=2, weight=b.const("w", np.ones((2, 6)))), "x"
    )
    b.add(IF(name="h", shape=(4,), v_threshold=1.0), "fc")
    b.add(Output(name="y", shape=(4,)), "h")
    assert V.problems(b.build()) == [
        "edge x -> fc: Input x outputs shape [2, 3], Dense fc takes shape [6]; the shapes must "
        "be equal (insert a Flatten)",
        "edge fc -> h: Dense fc outputs shape [2], IF h takes shape [4]; the shapes must be equal",
    ]


# ---- constants -------------------------------------------------------------------------------
def test_ref_to_missing_constant():
    b = mlp(bias=Ref("nob"))
    assert V.problems(b.build()) == [
        "Dense fc: field bias names @nob, which is not in the constant pool",
    ]


def test_non_numeric_constant():
    b = mlp()
    b.constants["tag"] = np.array(["a", "b"], dtype=object)
    b.constants["txt"] = np.array(["a", "b"])
    assert V.problems(b.build()) == [
        "constant @tag: dtype object is not numeric; constants hold bool, integer or float arrays",
        "constant @txt: dtype <U1 is not numeric; constants hold bool, integer or float arrays",
    ]


@pytest.mark.parametrize("bad, text", [(np.nan, "nan"), (np.inf, "inf"), (-np.inf, "-inf")])
def test_non_finite_constant_names_first_bad_index(bad, text):
    b = mlp()
    w = np.ones((2, 3))
    w[1, 1] = bad
    w[1, 2] = np.nan
    b.constants["w"] = w
    assert V.problems(b.build()) == [
        f"constant @w: element [1, 1] = {text}; constants must be finite "
        "(2 non-finite of 6 elements)",
    ]


def test_param_constraints_apply_element_wise():
    b = GraphBuilder("net")
    b.add(Input(name="x", shape=(4,)))
    tau = b.const("tau", [0.01, 0.02, -0.5, 0.0])
    thr = b.const("thr", [1.0, 1.0, 1.0, 1.0])
    b.add(LIF(name="h", shape=(4,), tau_mem=tau, v_threshold=thr), "x")
    b.add(Delay(name="d", shape=(4,), delay=b.const("dl", [1, 2.5, -1, 3])), "h")
    b.add(Output(name="y", shape=(4,)), "d")
    assert V.problems(b.build()) == [
        "LIF h: field tau_mem = @tau: element [2] = -0.5 must be > 0 (2 of 4 elements)",
        "Delay d: field delay = @dl: element [2] = -1.0 must be >= 0 (1 of 4 elements)",
        "Delay d: field delay = @dl: element [1] = 2.5 must be an integer (1 of 4 elements)",
    ]


def test_param_lo_hi_constraints():
    b = GraphBuilder("net", stage=Stage.QUANTIZED, attrs={"target": "loihi"})
    b.add(Input(name="x", shape=(3,)))
    b.add(
        LoihiDense(
            name="fc",
            in_features=3,
            out_features=3,
            weight=b.const("w", np.zeros((3, 3), np.int64)),
        ),
        "x",
    )
    b.add(
        LoihiCompartment(
            name="h",
            shape=(3,),
            du=b.const("du", [0, 5000, 4095]),
            dv=b.const("dv", [-1, 0, -3]),
            vth_mant=10,
        ),
        "fc",
    )
    b.add(Output(name="y", shape=(3,)), "h")
    assert V.problems(b.build()) == [
        "LoihiCompartment h: field du = @du: element [1] = 5000 is above the maximum 4095 "
        "(1 of 3 elements)",
        "LoihiCompartment h: field dv = @dv: element [0] = -1 is below the minimum 0 "
        "(2 of 3 elements)",
    ]


def test_param_shape_must_be_scalar_or_per_neuron():
    b = GraphBuilder("net")
    b.add(Input(name="x", shape=(2, 3)))
    b.add(IF(name="a", shape=(2, 3), v_threshold=b.const("t1", [[1.0]])), "x")  # size 1: ok
    b.add(IF(name="c", shape=(2, 3), v_threshold=b.const("t2", [1.0, 2.0, 3.0])), "x")  # ok
    b.add(IF(name="e", shape=(2, 3), v_threshold=b.const("t3", [1.0, 2.0])), "x")
    b.add(Scale(name="s", shape=(2, 3), factor=b.const("f", np.ones((1, 1, 1)))), "x")  # ok
    b.add(Scale(name="s2", shape=(2, 3), factor=b.const("f2", np.ones((3, 2)))), "x")
    assert V.problems(b.build()) == [
        "IF e: field v_threshold = @t3 has shape [2]; a parameter is one value or one per neuron "
        "(broadcastable to [2, 3])",
        "Scale s2: field factor = @f2 has shape [3, 2]; a parameter is one value or one per "
        "neuron (broadcastable to [2, 3])",
    ]


# ---- weight shapes -----------------------------------------------------------------------------
def test_dense_weight_and_bias_shapes():
    b = mlp(bias=Ref("b"))
    b.constants["w"] = np.ones((3, 2))
    b.constants["b"] = np.ones(3)
    assert V.problems(b.build()) == [
        "Dense fc: weight @w has shape [3, 2]; expected [out_features, in_features] = [2, 3]",
        "Dense fc: bias @b has shape [3]; expected [out_features] = [2]",
    ]


def sparse_graph(rows, cols, values, bias=None) -> Graph:
    b = GraphBuilder("net")
    b.add(Input(name="x", shape=(3,)))
    b.add(
        Sparse(
            name="sp",
            in_features=3,
            out_features=2,
            rows=b.const("r", rows),
            cols=b.const("c", cols),
            values=b.const("v", values),
            bias=None if bias is None else b.const("b", bias),
        ),
        "x",
    )
    b.add(IF(name="h", shape=(2,), v_threshold=1.0), "sp")
    return b.build()


def test_sparse_valid():
    assert V.problems(sparse_graph([0, 1, 1], [2, 0, 2], [1.0, 2.0, 3.0], [0.0, 1.0])) == []


def test_sparse_arrays_must_be_1d_of_equal_length():
    assert V.problems(sparse_graph([[0, 1]], [0, 1], [1.0, 2.0])) == [
        "Sparse sp: rows @r has shape [1, 2]; rows, cols and values must be 1-D (one entry per "
        "synapse)",
    ]
    assert V.problems(sparse_graph([0, 1], [0, 1, 2], [1.0, 2.0], [0.0])) == [
        "Sparse sp: rows, cols and values have lengths 2, 3, 2; they must be equal (one entry "
        "per synapse)",
        "Sparse sp: bias @b has shape [1]; expected [out_features] = [2]",
    ]


def test_sparse_indices_integer_and_in_range():
    assert V.problems(sparse_graph([0.0, 1.0], [0, 3], [1.0, 2.0])) == [
        "Sparse sp: rows @r has dtype float64; indices must be integers",
        "Sparse sp: cols @c: element [1] = 3 is outside 0..2 (in_features = 3) (1 of 2 elements)",
    ]
    assert V.problems(sparse_graph([-1, 2, 5], [0, 1, 2], [1.0, 2.0, 3.0])) == [
        "Sparse sp: rows @r: element [0] = -1 is outside 0..1 (out_features = 2) (3 of 3 elements)",
    ]


def test_conv2d_weight_and_bias_shapes():
    b = GraphBuilder("net")
    b.add(Input(name="x", shape=(4, 5, 5)))
    b.add(
        Conv2d(
            name="cv",
            input_shape=(4, 5, 5),
            out_channels=6,
            kernel=(3, 2),
            groups=2,
            weight=b.const("w", np.ones((6, 4, 3, 2))),
            bias=b.const("b", np.ones(4)),
        ),
        "x",
    )
    b.add(
        Conv2d(
            name="ok",
            input_shape=(4, 5, 5),
            out_channels=6,
            kernel=(3, 2),
            groups=2,
            weight=b.const("w2", np.ones((6, 2, 3, 2))),
            bias=b.const("b2", np.ones(6)),
        ),
        "x",
    )
    assert V.problems(b.build()) == [
        "Conv2d cv: weight @w has shape [6, 4, 3, 2]; expected [out_channels, in_channels/groups, "
        "kh, kw] = [6, 2, 3, 2]",
        "Conv2d cv: bias @b has shape [4]; expected [out_channels] = [6]",
    ]


def test_conv1d_weight_shape():
    b = GraphBuilder("net")
    b.add(Input(name="x", shape=(2, 8)))
    b.add(
        Conv1d(
            name="cv",
            input_shape=(2, 8),
            out_channels=3,
            kernel=3,
            weight=b.const("w", np.ones((3, 2, 2))),
        ),
        "x",
    )
    b.add(
        Conv1d(
            name="ok",
            input_shape=(2, 8),
            out_channels=3,
            kernel=3,
            weight=b.const("w2", np.ones((3, 2, 3))),
        ),
        "x",
    )
    assert V.problems(b.build()) == [
        "Conv1d cv: weight @w has shape [3, 2, 2]; expected [out_channels, in_channels/groups, "
        "kernel] = [3, 2, 3]",
    ]


# ---- cycles --------------------------------------------------------------------------------------
def recurrent(delay) -> GraphBuilder:
    """x -> h -> rec -> d -> h: a loop through a Delay."""
    b = GraphBuilder("net")
    b.add(Input(name="x", shape=(2,)))
    b.add(IF(name="h", shape=(2,), v_threshold=1.0), "x")
    b.add(Dense(name="rec", in_features=2, out_features=2, weight=b.const("w", np.eye(2))), "h")
    b.add(Delay(name="d", shape=(2,), delay=delay), "rec")
    b.connect("d", "h")
    b.add(Output(name="y", shape=(2,)), "h")
    return b


CYCLE = (
    "a loop needs a node with a delay of at least 1 step (a Delay whose every element is "
    ">= 1, or a native connection with delay >= 1)"
)


def test_cycle_through_delay_is_valid():
    assert V.problems(recurrent(1).build()) == []
    b = recurrent(Ref("dl"))
    b.constants["dl"] = np.array([1, 3])
    assert V.problems(b.build()) == []


def test_zero_delay_cycle_names_its_nodes():
    assert V.problems(recurrent(0).build()) == [
        f"graph net: zero-delay cycle h -> rec -> d -> h; {CYCLE}"
    ]
    b = recurrent(Ref("dl"))
    b.constants["dl"] = np.array([2, 0])  # one element of 0 makes the loop instantaneous
    assert V.problems(b.build()) == [f"graph net: zero-delay cycle h -> rec -> d -> h; {CYCLE}"]


def test_zero_delay_self_loop_and_two_cycles():
    b = GraphBuilder("net")
    b.add(Integrator(name="i1", shape=(1,)))
    b.connect("i1", "i1")
    b.add(Integrator(name="a", shape=(1,)))
    b.add(Scale(name="s", shape=(1,), factor=2.0), "a")
    b.connect("s", "a")
    assert V.problems(b.build()) == [
        f"graph net: zero-delay cycle i1 -> i1; {CYCLE}",
        f"graph net: zero-delay cycle a -> s -> a; {CYCLE}",
    ]


def test_cycle_through_native_delayed_connection_is_valid():
    b = GraphBuilder("net", stage=Stage.QUANTIZED, attrs={"target": "loihi"})
    b.add(Input(name="x", shape=(2,)))
    b.add(
        LoihiDense(
            name="ff",
            in_features=2,
            out_features=2,
            weight=b.const("w", np.zeros((2, 2), np.int64)),
        ),
        "x",
    )
    b.add(LoihiCompartment(name="h", shape=(2,), du=0, dv=0, vth_mant=1), "ff")
    b.add(
        LoihiDense(
            name="rec",
            in_features=2,
            out_features=2,
            delay=1,
            weight=b.const("wr", np.zeros((2, 2), np.int64)),
        ),
        "h",
    )
    b.connect("rec", "h")
    b.add(Output(name="y", shape=(2,)), "h")
    assert V.problems(b.build()) == []


# ---- stages ----------------------------------------------------------------------------------------
def loihi_graph(**attrs) -> GraphBuilder:
    b = GraphBuilder("net", stage=Stage.QUANTIZED, attrs=attrs)
    b.add(Input(name="x", shape=(2,)))
    b.add(
        LoihiDense(
            name="fc",
            in_features=2,
            out_features=2,
            weight=b.const("w", np.array([[2, -4], [254, -256]])),
        ),
        "x",
    )
    b.add(LoihiCompartment(name="h", shape=(2,), du=0, dv=0, vth_mant=1), "fc")
    b.add(Output(name="y", shape=(2,)), "h")
    return b


def test_quantized_stage_valid_and_needs_target():
    assert V.problems(loihi_graph(target="loihi").build()) == []
    assert V.problems(loihi_graph().build()) == [
        'graph net: stage quantized needs attrs["target"], the name of the target profile '
        "(quantize sets it)",
    ]
    assert V.problems(loihi_graph(target=3).build()) == [
        'graph net: attrs["target"] = 3 must be a profile name (a string)',
    ]


def test_float_stage_holds_generic_kinds_only():
    b = loihi_graph(target="loihi")
    b.stage = Stage.FLOAT
    assert V.problems(b.build()) == [
        "LoihiDense fc: native kind of family loihi in a float-stage graph; a float graph holds "
        "generic kinds only (quantize makes native kinds)",
        "LoihiCompartment h: native kind of family loihi in a float-stage graph; a float graph "
        "holds generic kinds only (quantize makes native kinds)",
    ]


@pytest.mark.parametrize("stage", ["quantized", "partitioned", "placed", "routed"])
def test_later_stages_hold_native_kinds_only(stage):
    b = mlp()
    b.stage = Stage(stage)
    b.attrs["target"] = "loihi"
    b.add(Flatten(name="f", input_shape=(2,)), "h")  # Input, Output, Flatten: any stage
    assert V.problems(b.build()) == [
        f"Dense fc: generic kind in a {stage}-stage graph; from stage quantized on a graph holds "
        "native kinds only (quantize it for a target)",
        f"IF h: generic kind in a {stage}-stage graph; from stage quantized on a graph holds "
        "native kinds only (quantize it for a target)",
    ]


def test_one_family_per_graph():
    class FakeNative(Flatten):  # a stand-in for a native kind of another family
        kind = "FakeNativeTN"
        family = "truenorth"

    b = loihi_graph(target="loihi")
    b.add(FakeNative(name="t1", input_shape=(2,)), "h")
    b.add(FakeNative(name="t2", input_shape=(2,)), "t1")
    assert V.problems(b.build()) == [
        "graph net: native kinds of 2 families (loihi: fc, h; truenorth: t1, t2); a "
        "quantized-stage graph holds the kinds of one family (one target)",
    ]


def test_dt_must_be_positive():
    g = mlp().build().replace(dt=0.0)
    assert V.problems(g) == ["graph net: dt = 0.0 must be a finite number > 0 (seconds per step)"]


# ---- family rules ------------------------------------------------------------------------------------
def test_loihi_weights_integer_on_grid_in_range():
    b = loihi_graph(target="loihi")
    b.constants["w"] = np.array([[2.0, 2.5], [0.0, 1.5]])
    assert V.problems(b.build()) == [
        "LoihiDense fc: weight @w: element [0, 1] = 2.5 is not an integer (2 of 4 elements); "
        "legalize the weights (ir.native.loihi.legalize_weights)",
    ]
    b.constants["w"] = np.array([[3, 300], [-258, 4]])
    assert V.problems(b.build()) == [
        "LoihiDense fc: weight @w: element [0, 1] = 300 is outside -256..255 (sign_mode mixed) "
        "(2 of 4 elements); legalize the weights (ir.native.loihi.legalize_weights)",
        "LoihiDense fc: weight @w: element [0, 0] = 3 is not a multiple of the weight step 2 "
        "(num_weight_bits = 8, sign_mode mixed) (1 of 4 elements); legalize the weights "
        "(ir.native.loihi.legalize_weights)",
    ]


def test_loihi_weight_step_follows_bits_and_sign_mode():
    b = loihi_graph(target="loihi")
    b.nodes["fc"] = LoihiDense(
        name="fc",
        in_features=2,
        out_features=2,
        num_weight_bits=6,
        sign_mode="excitatory",
        weight=Ref("w"),
    )
    b.constants["w"] = np.array([[4, 8], [-4, 6]])
    assert V.problems(b.build()) == [
        "LoihiDense fc: weight @w: element [1, 0] = -4 is outside 0..255 (sign_mode excitatory) "
        "(1 of 4 elements); legalize the weights (ir.native.loihi.legalize_weights)",
        "LoihiDense fc: weight @w: element [1, 1] = 6 is not a multiple of the weight step 4 "
        "(num_weight_bits = 6, sign_mode excitatory) (1 of 4 elements); legalize the weights "
        "(ir.native.loihi.legalize_weights)",
    ]


def test_loihi_sparse_layout_and_values():
    b = GraphBuilder("net", stage=Stage.QUANTIZED, attrs={"target": "loihi"})
    b.add(Input(name="x", shape=(3,)))
    b.add(
        LoihiSparse(
            name="sp",
            in_features=3,
            out_features=2,
            rows=b.const("r", [0, 2]),
            cols=b.const("c", [0, 1]),
            values=b.const("v", [2, 7]),
        ),
        "x",
    )
    b.add(LoihiCompartment(name="h", shape=(2,), du=0, dv=0, vth_mant=1), "sp")
    assert V.problems(b.build()) == [
        "LoihiSparse sp: rows @r: element [1] = 2 is outside 0..1 (out_features = 2) "
        "(1 of 2 elements)",
        "LoihiSparse sp: values @v: element [1] = 7 is not a multiple of the weight step 2 "
        "(num_weight_bits = 8, sign_mode mixed) (1 of 2 elements); legalize the weights "
        "(ir.native.loihi.legalize_weights)",
    ]


def test_loihi_dense_weight_shape():
    b = loihi_graph(target="loihi")
    b.constants["w"] = np.zeros((2, 3), np.int64)
    assert V.problems(b.build()) == [
        "LoihiDense fc: weight @w has shape [2, 3]; expected [out_features, in_features] = [2, 2]",
    ]


def test_family_rule_extension_point():
    calls = []

    @V.family_rule("loihi")
    def _no_big_populations(graph, node):
        calls.append(node.name)
        if node.kind == "LoihiCompartment" and node.size > 1:
            return [f"{node.kind} {node.name}: test rule says no"]
        return []

    try:
        assert V.family_rules("loihi")[-1] is _no_big_populations
        assert V.problems(loihi_graph(target="loihi").build()) == [
            "LoihiCompartment h: test rule says no",
        ]
        assert calls == ["fc", "h"]
        # Registering the same function again replaces it (module reloads stay idempotent).
        V.family_rule("loihi")(_no_big_populations)
        assert V.family_rules("loihi").count(_no_big_populations) == 1
    finally:
        V._FAMILY_RULES["loihi"].remove(_no_big_populations)
    assert V.problems(loihi_graph(target="loihi").build()) == []


def test_family_rules_skip_nodes_with_unusable_constants():
    b = loihi_graph(target="loihi")
    b.constants["w"] = np.array([[np.nan, 2.0], [2.0, 2.0]])
    assert V.problems(b.build()) == [
        "constant @w: element [0, 0] = nan; constants must be finite (1 non-finite of 4 elements)",
    ]


def test_verify_module_does_not_import_native_at_import_time():
    src = open(V.__file__).read()
    top = [ln for ln in src.splitlines() if re.match(r"^(import|from) ", ln)]
    assert not [ln for ln in top if "native" in ln]


def test_problem_order_is_deterministic():
    b = recurrent(0)
    b.connect("x", "zz")
    b.constants["bad"] = np.array([np.inf])
    g = b.build()
    first = V.problems(g)
    assert first == [
        "edge x -> zz: no node named zz",
        "constant @bad: element [0] = inf; constants must be finite (1 non-finite of 1 elements)",
        f"graph net: zero-delay cycle h -> rec -> d -> h; {CYCLE}",
    ]
    assert all(V.problems(g) == first for _ in range(3))
