"""measure_fidelity: float vs quantized on the same inputs, with real numbers on small networks."""

from __future__ import annotations

import numpy as np
import pytest

from ir.errors import NmcError
from nmc.fidelity import latency_shift, measure_fidelity
from nmc.passes.quantize import QuantizeOptions, quantize
from tests.test_quantize_loihi import class_inputs, dense_net, recurrent_net


@pytest.mark.parametrize("net", [dense_net, recurrent_net])
def test_fidelity_on_small_networks(net):
    x, labels = class_inputs(18, 60, seed=0)
    g = net()
    q, _ = quantize(g, "loihi", QuantizeOptions(calibration=class_inputs(9, 60, seed=1)[0]))
    f = measure_fidelity(g, q, x, labels)
    print(net.__name__, {k: f[k] for k in ("argmax_agreement", "mean_correlation",
                                           "accuracy_float", "accuracy_quant", "shift")})
    print(" mean counts float", np.round(f["outputs"]["y"]["mean_float"], 3).tolist(),
          "quant", np.round(f["outputs"]["y"]["mean_quant"], 3).tolist())
    assert (f["samples"], f["steps"], f["shift"]) == (18, 60, {"y": 2})
    assert f["outputs"]["y"]["kind"] == "spikes"
    assert f["accuracy_float"] == 1.0
    assert f["argmax_agreement"] >= 0.9
    assert f["accuracy_quant"] >= 0.9
    assert f["mean_correlation"] >= 0.95
    # Mean spike counts agree within a spike per output neuron.
    assert np.allclose(f["outputs"]["y"]["mean_float"], f["outputs"]["y"]["mean_quant"], atol=1.0)


def test_fidelity_values_exact_dense():
    """The complete result on the dense network (weights-only scaling): counts over 18 samples of
    62 steps (60 + the 2 steps the two native synapse layers add)."""
    x, labels = class_inputs(18, 60, seed=0)
    g = dense_net()
    q, _ = quantize(g, "loihi")
    f = measure_fidelity(g, q, x, labels)
    r = lambda v: None if v is None else round(v, 4)  # noqa: E731
    y = f["outputs"]["y"]
    assert {k: f[k] for k in ("samples", "steps", "shift", "argmax_agreement", "accuracy_float",
                              "accuracy_quant")} == {
        "samples": 18, "steps": 60, "shift": {"y": 2}, "argmax_agreement": 1.0,
        "accuracy_float": 1.0, "accuracy_quant": 1.0}
    assert [r(c) for c in y["correlation"]] == [0.9939, 0.9969, 0.9979]
    assert [r(c) for c in y["mean_float"]] == [2.1111, 3.0, 2.8889]
    assert [r(c) for c in y["mean_quant"]] == [2.1111, 3.0, 3.0]


def test_readout_outputs_compare_values():
    from ir.graph import GraphBuilder
    from ir.nodes import LI, Dense, Input, Output

    b = GraphBuilder("ro")
    b.add(Input(name="x", shape=(4,)))
    b.add(Dense(name="fc", in_features=4, out_features=2,
                weight=b.const("w", [[1.0, 0.5, 0.0, -0.5], [0.0, 0.2, 1.0, 0.3]])), "x")
    b.add(LI(name="r", shape=(2,), tau_mem=0.01), "fc")
    b.add(Output(name="v", shape=(2,)), "r")
    g = b.build()
    q, _ = quantize(g, "loihi")
    x = (np.random.default_rng(2).random((10, 40, 4)) < 0.3).astype(float)
    f = measure_fidelity(g, q, x)
    out = f["outputs"]["v"]
    assert out["kind"] == "values" and f["shift"] == {"v": 1}
    # Time-means of v (quantized v divided by the population scale) agree closely.
    assert np.allclose(out["mean_float"], out["mean_quant"], rtol=0.05)
    assert out["mean_correlation"] > 0.99


def test_latency_shift_and_errors():
    g = recurrent_net()
    q, _ = quantize(g, "loihi")
    # fc_in and fc_out add a step each; the recurrent connection keeps its float Delay(1).
    assert latency_shift(q) == {"y": 2}
    with pytest.raises(NmcError, match=r"^labels: 3 labels for 2 samples$"):
        measure_fidelity(g, q, np.zeros((2, 5, 12)), labels=[0, 1, 2])
    other = dense_net()
    with pytest.raises(NmcError, match=r"^the float graph's outputs \['y'\] differ from the "
                                       r"quantized graph's \['y', 'z'\]; compare a graph with its "
                                       r"own quantized form$"):
        from ir.nodes import Output

        nodes = dict(q.nodes, z=Output(name="z", shape=(3,)))
        measure_fidelity(other, q.replace(nodes=nodes, edges=q.edges + (("o", "z"),)),
                         np.zeros((1, 5, 12)))
