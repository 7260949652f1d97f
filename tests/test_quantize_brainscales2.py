"""The BrainScaleS-2 quantizer: exact codes and weights on tiny graphs, parallel synapses,
exc/inh rows, readouts, errors and warnings, and float-vs-integer agreement."""

from __future__ import annotations

import numpy as np
import pytest

from ir.errors import CompileError, NmcWarning
from ir.graph import GraphBuilder
from ir.interp_float import run_float
from ir.interp_int import run_int
from ir.nodes import IF, LI, LIF, AdaptiveLIF, CubaLIF, Delay, Dense, Input, Output, Threshold
from ir.verify import problems
from nmc.passes.quantize import QuantizeOptions, quantize


def one_layer(kind, w, bias=None, **params):
    w = np.asarray(w, float)
    b = GraphBuilder("net")
    b.add(Input(name="x", shape=(w.shape[1],)))
    b.add(Dense(name="fc", in_features=w.shape[1], out_features=w.shape[0],
                weight=b.const("w", w),
                bias=None if bias is None else b.const("b", np.asarray(bias, float))), "x")
    b.add(kind(name="h", shape=(w.shape[0],), **params), "fc")
    b.add(Output(name="y", shape=(w.shape[0],)), "h")
    return b.build()


def fields(q, name):
    out = {}
    for f, v in q.nodes[name].fields().items():
        out[f] = q.constants[v.name].tolist() if hasattr(v, "name") and v.name in q.constants \
            else v
    return out


DEFAULTS = dict(c_syn_exc=1022, c_syn_inh=1022, bias=0, refractory=0, refractory_clock=0,
                readout=False, id_base=0)


def test_lif_codes_and_weight():
    q, rep = quantize(one_layer(LIF, [[2.0]], tau_mem=0.02, v_threshold=1.0), "brainscales2")
    assert problems(q) == []
    # c_mem = round(1022 (1 - e^-0.05)) = 50; volts 0..1 -> codes 256..960 (64 x 704 state units
    # per volt); J = (50 / 1022) * 2 * 45056 = 4408.6 -> gain ceil(J / 63) = 70, weight 63.
    assert fields(q, "h") == dict(shape=(1,), v_leak=256, v_threshold=960, v_reset=256,
                                  c_mem=50, gain_exc=70, gain_inh=70, **DEFAULTS)
    assert fields(q, "fc") == dict(in_features=1, out_features=1, exc=[[[63]]], inh=None,
                                   delay=1)
    c = rep.connections[0]
    assert (c["kind"], c["bits"], c["parallel"], c["clipped_pct"]) == ("BSS2Synapses", 6, 1, 0.0)
    assert c["rel_error"] < 0.001


def test_large_weights_use_parallel_synapses():
    q, rep = quantize(one_layer(LIF, [[0.2, 2.0]], tau_mem=0.02, v_threshold=1.0),
                      "brainscales2", QuantizeOptions(percentile=50))
    # gain from the median of J (440.9, 4408.6) / 63 -> 39; weights 11 and 113 = 63 + 50
    assert fields(q, "h")["gain_exc"] == 39
    assert fields(q, "fc")["exc"] == [[[11, 63]], [[0, 50]]]
    assert rep.connections[0]["parallel"] == 2


def test_signed_weights_use_exc_and_inh_rows_and_bias():
    q, rep = quantize(one_layer(IF, [[-1.0, 0.5]], bias=[0.01], v_threshold=1.0), "brainscales2")
    f = fields(q, "h")
    # One inhibitory spike takes v to -1 V; 0..1 V -> 256..960 would leave only 256/704 V above
    # code 0, so the scale drops to 960 / 2 = 480 codes per volt (threshold still at 960, 0 V at
    # 480): J = 30720 / 15360 state units -> gain ceil(30704.6 / 63) = 488, weights 63 and 31;
    # bias 0.01 * 30720 = 307.
    assert (f["v_leak"], f["v_threshold"], f["c_mem"], f["gain_exc"], f["gain_inh"],
            f["bias"]) == (480, 960, 0, 488, 488, 307)
    assert fields(q, "fc")["exc"] == [[[0, 31]]] and fields(q, "fc")["inh"] == [[[63, 0]]]
    assert "population h: voltage scale lowered 1.47x to keep 1 V of room below the resting " \
           "range for inhibition" in rep.notes


def test_inhibition_room_is_capped():
    q, rep = quantize(one_layer(IF, [[-100.0, 1.0]], v_threshold=1.0), "brainscales2")
    f = fields(q, "h")
    # 100 V of room would need 960 / 101 codes per volt; the cap keeps 704 / 16 = 44: 0 V at
    # code 960 - 44 = 916. The current of one inhibitory spike (100 V * 44 * 64) passes I_MAX;
    # its gain code is clipped at 1022.
    assert (f["v_leak"], f["v_threshold"], f["gain_inh"]) == (916, 960, 1022)
    assert "population h: voltage scale lowered 16x to keep 100 V of room below the resting " \
           "range for inhibition and the synaptic current below the current rail I_MAX " \
           "(capped at 16x to keep threshold codes precise: the membrane or current may still " \
           "reach a rail; calibration data sets the room from the float network's activity)" \
           in rep.notes


def test_calibration_sets_the_inhibition_room():
    g = one_layer(IF, [[-1.0, 0.5]], v_threshold=1.0)
    x = np.zeros((1, 10, 2), bool)
    x[0, 2, 0] = x[0, 5, 0] = True  # v (no leak) ends at -2 V: its 0.1th percentile
    q, rep = quantize(g, "brainscales2", QuantizeOptions(calibration=x))
    # 960 / (1 + 2) = 320 codes per volt: 0 V at 960 - 320 = 640
    assert fields(q, "h")["v_leak"] == 640
    q, rep = quantize(g, "brainscales2", QuantizeOptions(calibration=np.zeros((1, 10, 2), bool)))
    assert fields(q, "h")["v_leak"] == 256  # no inhibition seen: no room made


def test_cuba_threshold_and_readout_codes():
    q, _ = quantize(one_layer(CubaLIF, [[1.0]], tau_mem=0.01, tau_syn=0.005, v_threshold=1.0,
                              v_leak=-0.5, reset="v_reset", v_reset=-0.25), "brainscales2")
    f = fields(q, "h")
    # volts -0.5..1 -> codes 256..960; c_syn = round(1022 (1 - e^-0.2)) = 185
    assert (f["v_leak"], f["v_threshold"], f["v_reset"], f["c_mem"], f["c_syn_exc"]) == \
        (256, 960, 373, 97, 185)
    q, _ = quantize(one_layer(Threshold, [[1.0]], v_threshold=0.5), "brainscales2")
    assert (fields(q, "h")["c_mem"], fields(q, "h")["c_syn_exc"]) == (1022, 1022)
    q, _ = quantize(one_layer(LI, [[1.0]], tau_mem=0.01), "brainscales2")
    f = fields(q, "h")
    # readout: [-D, D] -> codes 256..960 with D the worst-case steady state = 1.0
    assert (f["readout"], f["v_leak"], f["v_threshold"]) == (True, 608, 1022)


def test_subtract_reset_warns_and_resets_to_zero():
    with pytest.warns(NmcWarning, match=r"^population\(s\) h: reset = 'subtract' is not native "
                                        r"on BrainScaleS-2 "):
        q, rep = quantize(one_layer(IF, [[1.0]], v_threshold=1.0, reset="subtract"),
                          "brainscales2")
    assert fields(q, "h")["v_reset"] == 256
    assert any(n.startswith("population(s) h: reset = 'subtract'") for n in rep.notes)


def test_adaptive_lif_is_an_error():
    g = one_layer(AdaptiveLIF, [[1.0]], tau_mem=0.02, tau_adapt=0.2, v_threshold=1.0,
                  beta_adapt=0.1)
    with pytest.raises(CompileError, match=r"^population h: kind AdaptiveLIF is not supported by "
                                           r"the brainscales2 family: nmc's BrainScaleS-2 neuron "
                                           r"has no threshold adaptation; use LIF \(drop the "
                                           r"adaptation\) or a family that has it$"):
        quantize(g, "brainscales2")


def test_readout_feeding_synapses_is_an_error():
    b = GraphBuilder("net")
    b.add(Input(name="x", shape=(2,)))
    b.add(Dense(name="fc", in_features=2, out_features=2, weight=b.const("w", np.eye(2))), "x")
    b.add(LI(name="r", shape=(2,), tau_mem=0.01), "fc")
    b.add(Dense(name="fc2", in_features=2, out_features=2, weight=b.const("w2", np.eye(2))), "r")
    b.add(IF(name="h", shape=(2,), v_threshold=1.0), "fc2")
    b.add(Output(name="y", shape=(2,)), "h")
    with pytest.raises(CompileError, match=r"^population r \(LI\) is a non-spiking readout but "
                                           r"feeds population h; brainscales2 synapses carry "
                                           r"spikes only: "):
        quantize(b.build(), "brainscales2")


# ---- float vs integer ------------------------------------------------------------------------
def net(kind, recurrent, seed):
    rng = np.random.default_rng(seed)
    gain = 1.0 if kind is IF else 8.0
    b = GraphBuilder("net")
    b.add(Input(name="x", shape=(20,)))
    b.add(Dense(name="fc1", in_features=20, out_features=30,
                weight=b.const("w1", rng.normal(0.05, 0.3, (30, 20)) * gain),
                bias=b.const("b1", rng.normal(0.0, 0.02, 30))), "x")
    params = {IF: {}, LIF: dict(tau_mem=0.02), CubaLIF: dict(tau_mem=0.02, tau_syn=0.005)}[kind]
    b.add(kind(name="h", shape=(30,), v_threshold=1.0, **params), "fc1")
    if recurrent:
        b.add(Delay(name="d", shape=(30,), delay=1), "h")
        b.add(Dense(name="rec", in_features=30, out_features=30,
                    weight=b.const("wr", rng.normal(0, 0.1, (30, 30)) * gain)), "d")
        b.connect("rec", "h")
    b.add(Dense(name="fc2", in_features=30, out_features=5,
                weight=b.const("w2", rng.normal(0.1, 0.3, (5, 30)))), "h")
    b.add(LI(name="o", shape=(5,), tau_mem=0.01), "fc2")
    b.add(Output(name="y", shape=(5,)), "o")
    return b.build(), rng.random((8, 200, 20)) < 0.2


@pytest.mark.parametrize("kind, recurrent, rate_tol", [
    (IF, False, 0.02),  # room below rest for inhibition: the lower rail does not clip it
    (LIF, False, 0.02),
    (LIF, True, 0.02),
    (CubaLIF, True, 0.02),
])
def test_spike_counts_and_readout_follow_the_float_network(kind, recurrent, rate_tol):
    g, x = net(kind, recurrent, seed=0)
    q, rep = quantize(g, "brainscales2", QuantizeOptions(calibration=x[:2]))
    assert problems(q) == []
    f = run_float(g, x, probes=["h"])
    i = run_int(q, x, probes=["h"])
    ref = f.probes["h"]["out"].sum(axis=1).ravel()
    got = i.probes["h"]["out"].sum(axis=1).ravel()
    assert np.corrcoef(ref, got)[0, 1] >= 0.995
    assert abs(got.mean() - ref.mean()) <= rate_tol * ref.mean()
    # The readout (membrane in state units) follows the float one, two steps later.
    yf, yi = f.outputs["y"][:, :-2].ravel(), i.outputs["y"][:, 2:].astype(float).ravel()
    assert np.corrcoef(yf, yi)[0, 1] >= 0.8
    row = next(p for p in rep.populations if p["name"] == "h")
    assert row["samples"] == 2 and row["steps"] == 200


def test_deterministic_and_ids():
    g, _ = net(LIF, True, seed=2)
    q1, _ = quantize(g, "brainscales2")
    q2, _ = quantize(g, "brainscales2")
    assert q1 == q2
    assert (q1.nodes["h"].id_base, q1.nodes["o"].id_base) == (0, 30)
    assert q1.attrs["passes"]["quantize"]["connections"]["rec"]["delay"] == 1
