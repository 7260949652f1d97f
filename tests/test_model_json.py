"""The model.json frontend: mapping to the IR, round trips, file safety, errors, the NIR LIF case."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from ir.errors import FrontendError
from ir.graph import GraphBuilder, Stage
from ir.nodes import LIF, Dense, Input, Output, Ref, Scale
from nmc.frontends import frontend_for, load_model
from nmc.frontends.model_json import (
    _locate_problem,
    format_json,
    json_pointer,
    load_model_json,
    model_from_dict,
    model_to_dict,
    parse_json_text,
    save_model_json,
    schema,
)
from tests.conftest import need

MODELS = Path(__file__).parent / "data" / "models"
GOOD = ["nir_lif", "mlp_recurrent", "conv_mix", "loihi_native"]
NIR_SPIKES = [460, 510, 710, 760]

TINY = {
    "format": "nmc-model", "version": 1, "name": "tiny", "dt": 0.001,
    "inputs": [{"name": "x", "shape": [2]}],
    "populations": [{"name": "h", "kind": "IF", "shape": [2], "params": {"v_threshold": 1.0}}],
    "connections": [{"source": "x", "target": "h", "type": "dense",
                     "weight": [[1.0, 0.0], [0.0, 1.0]]}],
    "outputs": [{"name": "y", "source": "h"}],
}


def tiny(**changes) -> dict:
    d = copy.deepcopy(TINY)
    d.update(changes)
    return d


# ---- mapping to the IR ----------------------------------------------------------------------------
def test_nir_lif_maps_to_the_expected_graph():
    g = load_model_json(MODELS / "nir_lif" / "model.json")
    b = GraphBuilder("nir_lif", dt=1e-4, attrs={"provenance": g.attrs["provenance"]})
    b.add(Input(name="x", shape=(1,)))
    b.add(LIF(name="lif", shape=(1,), tau_mem=0.0025, v_threshold=0.1, r=1.0, v_leak=0.0))
    w = b.const("w.weight", np.array([[1.0]]))
    b.add(Dense(name="w", in_features=1, out_features=1, weight=w), "x")
    b.connect("w", "lif")
    b.add(Output(name="y", shape=(1,)), "lif")
    assert g == b.build()
    assert g.attrs["provenance"]["rule"] == "hand-set parameters (no training)"


def test_mlp_recurrent_structure():
    g = load_model_json(MODELS / "mlp_recurrent" / "model.json")
    assert g.stage is Stage.FLOAT
    assert list(g.nodes) == [
        "img", "h1", "out", "fc1_flat", "fc1", "h1_to_h1", "h1_to_h1_delay", "fc2", "fc2_delay",
        "y", "spikes",
    ]
    assert g.edges == (
        ("img", "fc1_flat"), ("fc1_flat", "fc1"), ("fc1", "h1"), ("h1", "h1_to_h1"),
        ("h1_to_h1", "h1_to_h1_delay"), ("h1_to_h1_delay", "h1"), ("h1", "fc2"),
        ("fc2", "fc2_delay"), ("fc2_delay", "out"), ("out", "y"), ("h1", "spikes"),
    )
    assert {k: (str(v.dtype), v.shape) for k, v in g.constants.items()} == {
        "h1.v_threshold": ("float64", (6,)),
        "fc1.weight": ("float64", (6, 16)),
        "fc1.bias": ("float64", (6,)),
        "h1_to_h1.rows": ("int64", (6,)),
        "h1_to_h1.cols": ("int64", (6,)),
        "h1_to_h1.weight": ("float64", (6,)),
        "fc2.weight": ("float64", (3, 6)),
        "fc2.delay": ("int64", (3,)),
    }
    z = np.load(MODELS / "mlp_recurrent" / "weights.npz")
    np.testing.assert_array_equal(g.constants["fc1.weight"], z["w1"])
    w2 = np.load(MODELS / "mlp_recurrent" / "w2.npy")
    assert w2.dtype == np.float32  # converted to float64 in the graph, values kept
    np.testing.assert_array_equal(g.constants["fc2.weight"], w2.astype(np.float64))
    assert g.nodes["fc1_flat"].input_shape == (1, 4, 4)
    assert g.nodes["h1"].v_threshold == Ref("h1.v_threshold")
    assert g.nodes["h1"].reset == "subtract"
    assert g.nodes["h1_to_h1_delay"].delay == 1
    assert g.nodes["fc2_delay"].delay == Ref("fc2.delay")
    np.testing.assert_array_equal(g.constants["fc2.delay"], [0, 1, 2])


def test_conv_mix_structure():
    g = load_model_json(MODELS / "conv_mix" / "model.json")
    conv1 = g.nodes["conv1"]
    assert (conv1.kind, conv1.input_shape, conv1.out_channels, conv1.kernel, conv1.stride,
            conv1.padding, conv1.dilation, conv1.groups) == (
        "Conv2d", (2, 8, 8), 4, (3, 3), (1, 1), (1, 1), (1, 1), 1)
    pool1, pool2 = g.nodes["c1_to_p1"], g.nodes["p1_to_p2"]
    assert (pool1.kind, pool1.kernel, pool1.stride, pool1.out_shape) == (
        "SumPool2d", (2, 2), None, (4, 4, 4))
    assert (pool2.kind, pool2.kernel, pool2.stride, pool2.out_shape) == (
        "AvgPool2d", (2, 2), (2, 2), (4, 2, 2))
    ca = g.nodes["conv_a"]
    assert (ca.kind, ca.kernel, ca.stride, ca.out_shape) == ("Conv1d", 3, 2, (3, 4))
    # identity with delay 2: a Delay node between a1 and a2, no connection node
    assert g.nodes["a1_to_a2_delay"].delay == 2
    assert ("a1", "a1_to_a2_delay") in g.edges and ("a1_to_a2_delay", "a2") in g.edges
    assert "a1_to_a2" not in g.nodes
    # dense from multi-axis populations are flattened first
    assert g.predecessors("read") == ["read_flat"] and g.predecessors("read_a") == ["read_a_flat"]
    assert g.predecessors("ro") == ["read", "read_a"]


def test_native_model_is_quantized():
    g = load_model_json(MODELS / "loihi_native" / "model.json")
    assert g.stage is Stage.QUANTIZED
    assert g.attrs["target"] == "loihi"
    assert [(n.name, n.kind) for n in g.nodes.values()] == [
        ("x", "Input"), ("h", "LoihiCompartment"), ("o", "LoihiCompartment"),
        ("in", "LoihiDense"), ("hid", "LoihiSparse"), ("y", "Output"),
    ]
    assert (g.nodes["in"].weight_exp, g.nodes["in"].delay) == (1, 1)
    assert (g.nodes["hid"].num_weight_bits, g.nodes["hid"].delay) == (7, 2)
    assert g.constants["in.weight"].dtype == np.int64
    assert g.constants["h.bias_mant"].dtype == np.int64


def test_default_connection_names_are_unique():
    d = tiny()
    d["populations"].append({"name": "x_to_h", "kind": "IF", "shape": [2],
                             "params": {"v_threshold": 1.0}})
    d["connections"].append(copy.deepcopy(d["connections"][0]))
    g = model_from_dict(d)
    assert [n.name for n in g.by_kind("Dense")] == ["x_to_h_1", "x_to_h_2"]


def test_all_zero_per_neuron_delay_adds_no_delay_node():
    d = tiny()
    d["connections"][0]["delay"] = [0, 0]
    assert model_from_dict(d) == model_from_dict(tiny())


# ---- round trips ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", GOOD)
def test_round_trip(name: str, tmp_path: Path):
    g = load_model_json(MODELS / name / "model.json")
    p = save_model_json(g, tmp_path / "out")
    assert p == tmp_path / "out" / "model.json"
    g2 = load_model_json(p)
    assert g2 == g
    text = p.read_text()
    save_model_json(g2, tmp_path / "again")
    assert (tmp_path / "again" / "model.json").read_text() == text
    assert not [f for f in (tmp_path / "out").iterdir() if f.name.endswith(".tmp")]


def test_saved_model_json_text(tmp_path: Path):
    # Parameters equal to the kind's default (same value and type) are left out.
    g = load_model_json(MODELS / "nir_lif" / "model.json")
    save_model_json(g, tmp_path)
    assert (tmp_path / "model.json").read_text() == """\
{
  "format": "nmc-model",
  "version": 1,
  "name": "nir_lif",
  "dt": 0.0001,
  "inputs": [
    {
      "name": "x",
      "shape": [1]
    }
  ],
  "populations": [
    {
      "name": "lif",
      "kind": "LIF",
      "shape": [1],
      "params": {
        "tau_mem": 0.0025,
        "v_threshold": 0.1
      }
    }
  ],
  "connections": [
    {
      "name": "w",
      "source": "x",
      "target": "lif",
      "type": "dense",
      "weight": {
        "file": "weights.npz",
        "key": "w.weight"
      }
    }
  ],
  "outputs": [
    {
      "name": "y",
      "source": "lif"
    }
  ],
  "provenance": {
    "rule": "hand-set parameters (no training)",
    "source": "NIR paper, single LIF neuron (neuromorphs/NIR paper/01_lif, lif_norse.nir)",
    "note": "Input -> Affine(w=1) -> LIF(tau_mem=2.5 ms, v_threshold=0.1, r=1) -> Output, dt = 1e-4 s"
  }
}
"""
    z = np.load(tmp_path / "weights.npz")
    assert z.files == ["w.weight"]


def test_round_trip_keeps_other_attrs(tmp_path: Path):
    g = model_from_dict(tiny(attrs={"source": "nir", "n": [1, 2]}))
    assert g.attrs == {"source": "nir", "n": [1, 2]}
    assert load_model_json(save_model_json(g, tmp_path)) == g


def test_save_refuses_what_model_json_cannot_express(tmp_path: Path):
    g = model_from_dict(tiny())
    b = GraphBuilder.from_graph(g)
    b.add(Scale(name="s", shape=(2,), factor=2.0), "h")
    b.connect("s", "h")
    with pytest.raises(FrontendError, match=r"^graph tiny: cannot write model.json: Scale s has "
                       r"no model.json form$"):
        save_model_json(b.build(), tmp_path)
    with pytest.raises(FrontendError, match=r"^graph tiny: cannot write model.json: stage "
                       r"partitioned: model.json holds float or quantized graphs"):
        save_model_json(g.replace(stage=Stage.PARTITIONED), tmp_path)
    assert not list(tmp_path.iterdir())


def test_model_to_dict_without_files():
    doc, arrays = model_to_dict(model_from_dict(tiny()))
    assert doc["connections"] == [{
        "name": "x_to_h", "source": "x", "target": "h", "type": "dense",
        "weight": {"file": "weights.npz", "key": "x_to_h.weight"},
    }]
    assert list(arrays) == ["x_to_h.weight"]


# ---- registry ----------------------------------------------------------------------------------
def test_registry_dispatch(tmp_path: Path):
    assert frontend_for(MODELS / "nir_lif" / "model.json").format == "model.json"
    assert frontend_for(MODELS / "nir_lif").format == "model.json"
    assert frontend_for(tmp_path / "x.nir").reader == "nmc.frontends.nir:load_nir"
    assert frontend_for(tmp_path / "x.NET").reader == "nmc.frontends.netx:load_netx"
    assert frontend_for(tmp_path / "x.nmir").reader == "ir.text:load"
    assert load_model(MODELS / "nir_lif") == load_model_json(MODELS / "nir_lif" / "model.json")
    with pytest.raises(FrontendError, match=r"^.*: a folder without a model.json; give the model "
                       r"file$"):
        frontend_for(tmp_path)


def test_unknown_option():
    with pytest.raises(FrontendError, match=r"^model.json reader: unknown option\(s\) speed; "
                       r"options: verify$"):
        load_model(MODELS / "nir_lif" / "model.json", speed=2)


# ---- errors from the API -----------------------------------------------------------------------
def test_errors_name_the_pointer():
    d = tiny()
    d["connections"][0]["weight"] = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    with pytest.raises(FrontendError, match=r"^net.json: /connections/0/weight: expected shape "
                       r"\[2, 2\] \(target h x source x\), got \[2, 3\]$"):
        model_from_dict(d, display="net.json")


def test_multi_axis_source_shape_words():
    d = tiny(inputs=[{"name": "x", "shape": [1, 2, 2]}])
    with pytest.raises(FrontendError, match=r"^model.json: /connections/0/weight: expected shape "
                       r"\[2, 4\] \(target h x source x flattened from \[1, 2, 2\]\), got \[2, 2\]$"):
        model_from_dict(d)


def test_per_neuron_delay_zero_cycle_and_recurrent_delay():
    d = tiny()
    d["connections"].append({"source": "h", "target": "h", "type": "dense",
                             "weight": [[0.0, 1.0], [1.0, 0.0]], "delay": [1, 0]})
    with pytest.raises(FrontendError, match=r"^model.json: /connections/1: zero-delay cycle "
                       r"h -> h \(through /connections/1\); give a connection"):
        model_from_dict(d)
    d["connections"][1]["delay"] = [1, 2]
    g = model_from_dict(d)
    assert g.nodes["h_to_h_delay"].delay == Ref("h_to_h.delay")


def test_delay_list_must_be_integers():
    d = tiny()
    d["connections"][0]["delay"] = [1, 0.5]
    with pytest.raises(FrontendError, match=r"^model.json: /connections/0/delay: expected every "
                       r"value to be an integer >= 0 \(steps\), got 0.5 at index \[1\]$"):
        model_from_dict(d)


def test_verifier_problem_is_mapped_to_a_pointer():
    ptrs = {"h": "/populations/0", "h1": "/populations/1", "fc": "/connections/0"}
    assert _locate_problem("Dense fc: weight @fc.weight has shape [2]", ptrs, "m.json") == (
        "m.json: /connections/0: Dense fc: weight @fc.weight has shape [2]")
    assert _locate_problem("population h1: bad", ptrs, "m.json") == (
        "m.json: /populations/1: population h1: bad")
    assert _locate_problem("graph: no outputs", ptrs, "m.json") == "m.json: graph: no outputs"


def test_json_text_errors():
    with pytest.raises(FrontendError, match=r"^m.json:2:8: NaN is not valid JSON; write a finite "
                       r"number$"):
        parse_json_text('{"a": "NaN",\n "b": [NaN]}', "m.json")
    with pytest.raises(FrontendError, match=r"^m.json:1:7: -Infinity is not valid JSON"):
        parse_json_text('{"a": -Infinity}', "m.json")
    with pytest.raises(FrontendError, match=r'^m.json: /a/0/b: key "b" appears twice in the same '
                       r"object; keep one$"):
        parse_json_text('{"a": [{"b": 1, "b": 2}]}', "m.json")
    assert parse_json_text('{"a": [1e300, -2, "Infinity"]}', "m.json") == {
        "a": [1e300, -2, "Infinity"]}


def test_not_utf8(tmp_path: Path):
    p = tmp_path / "model.json"
    p.write_bytes(b'{"name": "\xff"}')
    with pytest.raises(FrontendError, match=r"^.*model.json: not UTF-8 text \(invalid byte at "
                       r"offset 10\); save the file as UTF-8$"):
        load_model_json(p)


def test_file_reference_variants(tmp_path: Path):
    np.savez(tmp_path / "one.npz", only=np.eye(2))
    (tmp_path / "sub").mkdir()
    np.save(tmp_path / "sub" / "w.npy", np.eye(2, dtype=np.int32))
    d = tiny()
    d["connections"][0]["weight"] = {"file": "one.npz"}  # single array: the key may be left out
    a = model_from_dict(d, tmp_path)
    d["connections"][0]["weight"] = {"file": "sub/../sub/w.npy"}  # '..' that stays inside is fine
    b = model_from_dict(d, tmp_path)
    assert a == b
    assert b.constants["x_to_h.weight"].dtype == np.float64


def test_schema_is_valid_and_json_pointer_escapes():
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(schema())
    assert json_pointer("params", "a/b", "c~d", 3) == "/params/a~1b/c~0d/3"


def test_format_json_keeps_flat_lists_on_one_line():
    assert format_json({"a": [1, 2], "b": [{"c": []}], "d": {}}) == (
        '{\n  "a": [1, 2],\n  "b": [\n    {\n      "c": []\n    }\n  ],\n  "d": {}\n}')
    with pytest.raises(ValueError):
        format_json({"a": float("nan")})


def test_large_inline_weights_load_quickly(tmp_path: Path):
    import time

    rng = np.random.default_rng(0)
    d = tiny(inputs=[{"name": "x", "shape": [784]}],
             populations=[{"name": "h", "kind": "IF", "shape": [100],
                           "params": {"v_threshold": 1.0}}])
    d["connections"][0]["weight"] = rng.normal(size=(100, 784)).round(4).tolist()
    (tmp_path / "model.json").write_text(json.dumps(d))
    t0 = time.perf_counter()
    g = load_model_json(tmp_path / "model.json")
    assert time.perf_counter() - t0 < 5.0  # ~0.1 s measured; generous for slow CI machines
    np.testing.assert_array_equal(g.constants["x_to_h.weight"], np.array(d["connections"][0]["weight"]))


# ---- the NIR paper's single LIF neuron -----------------------------------------------------------
def _run_nir_lif(x: np.ndarray) -> list[int]:
    interp_float = need("ir.interp_float")
    g = load_model_json(MODELS / "nir_lif" / "model.json")
    res = interp_float.run_float(g, x)
    y = np.asarray(res.outputs["y"])
    assert y.shape == (1, len(x), 1)
    return [int(t) for t in np.nonzero(y[0, :, 0])[0]]


def test_nir_lif_spikes_from_committed_input():
    x = np.load(MODELS / "nir_lif" / "input.npz")["x"]
    assert x.shape == (1000, 1)
    assert _run_nir_lif(x) == NIR_SPIKES


def test_nir_lif_against_conformance_csv(conformance: Path):
    csv = np.loadtxt(conformance / "nir_lif" / "lif_exact.csv", delimiter=",")
    x = csv[:, 0:1]
    # the committed input is column 0 of the reference, exactly
    np.testing.assert_array_equal(np.load(MODELS / "nir_lif" / "input.npz")["x"], x)
    assert [int(t) for t in np.nonzero(csv[:, 2])[0]] == NIR_SPIKES
    assert _run_nir_lif(x) == NIR_SPIKES


def test_bad_corpus_folder_has_a_symlink_free_checkout():
    # The corpus never commits symlinks or pickles; the CLI test makes them in a temporary copy.
    bad = Path(__file__).parent / "data" / "bad" / "model_json"
    for p in bad.rglob("*"):
        assert not p.is_symlink(), p
    assert not (bad / "pickled_weight_file" / "w2.npy").exists()


def test_verifier_problems_come_back_with_the_connection_pointer():
    # The Loihi weight rule lives in the IR verifier; the frontend names the JSON pointer.
    d = json.loads((MODELS / "loihi_native" / "model.json").read_text())
    d["connections"][0]["weight"][1][2] = 3  # not a multiple of the weight step (2)
    with pytest.raises(FrontendError, match=r"^model.json: /connections/0: LoihiDense in: .*3.*$"):
        model_from_dict(d, MODELS / "loihi_native")
    # verify=False skips the IR verifier (the frontend's own checks still run)
    g = model_from_dict(d, MODELS / "loihi_native", verify=False)
    assert g.constants["in.weight"][1, 2] == 3
