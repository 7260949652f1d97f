"""The Loihi quantizer: lowering rules, integer parameters, delays, errors and the report."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ir.errors import CompileError
from ir.graph import GraphBuilder, Stage
from ir.interp_int import run_int
from ir.native.loihi import legalize_weights
from ir.nodes import (
    IF,
    LI,
    LIF,
    AdaptiveLIF,
    Conv1d,
    CubaLIF,
    Delay,
    Dense,
    Input,
    Output,
    Ref,
    Sparse,
    Threshold,
)
from ir.verify import verify
from nmc.passes.quantize import QuantizeOptions, QuantReport, quantize


# ------------------------------------------------------------------------------------------
# Networks shared with test_fidelity
# ------------------------------------------------------------------------------------------
def class_inputs(n: int = 18, steps: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Spike inputs of 3 classes over 12 channels: class c fires channels 4c..4c+3 at 40 %, the
    others at 5 %. Returns (spikes (n, steps, 12) float 0/1, labels (n,))."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    rate = np.full((n, 12), 0.05)
    for k, c in enumerate(labels):
        rate[k, 4 * c:4 * c + 4] = 0.4
    x = (rng.random((n, steps, 12)) < rate[:, None, :]).astype(np.float64)
    return x, labels


def _readout_weights(rng: np.random.Generator, n_hidden: int) -> np.ndarray:
    w = rng.normal(-0.2, 0.1, (3, n_hidden))
    for c in range(3):
        w[c, 4 * c:4 * c + 4] += 1.2
    return w


def dense_net():
    """x(12) -> Dense(+bias) -> IF h(12) -> Dense -> LIF o(3) -> y."""
    rng = np.random.default_rng(7)
    b = GraphBuilder("mlp", dt=1e-3)
    b.add(Input(name="x", shape=(12,)))
    b.add(Dense(name="fc1", in_features=12, out_features=12,
                weight=b.const("w1", 0.7 * np.eye(12) + rng.normal(0, 0.08, (12, 12))),
                bias=b.const("b1", np.full(12, 0.01))), "x")
    b.add(IF(name="h", shape=(12,), v_threshold=1.0), "fc1")
    b.add(Dense(name="fc2", in_features=12, out_features=3,
                weight=b.const("w2", _readout_weights(rng, 12))), "h")
    b.add(LIF(name="o", shape=(3,), tau_mem=0.02, v_threshold=0.2), "fc2")
    b.add(Output(name="y", shape=(3,)), "o")
    return b.build()


def recurrent_net():
    """x(12) -> Dense -> LIF h(12) with a recurrent Dense through Delay(1) -> Dense -> CubaLIF."""
    rng = np.random.default_rng(8)
    b = GraphBuilder("rnn", dt=1e-3)
    b.add(Input(name="x", shape=(12,)))
    b.add(Dense(name="fc_in", in_features=12, out_features=12,
                weight=b.const("w_in", 1.2 * np.eye(12) + rng.normal(0, 0.05, (12, 12)))), "x")
    b.add(LIF(name="h", shape=(12,), tau_mem=0.01, v_threshold=0.3), "fc_in", "rec_d")
    b.add(Dense(name="rec", in_features=12, out_features=12,
                weight=b.const("w_rec", rng.normal(0.0, 0.1, (12, 12)))), "h")
    b.add(Delay(name="rec_d", shape=(12,), delay=1), "rec")
    b.add(Dense(name="fc_out", in_features=12, out_features=3,
                weight=b.const("w_out", _readout_weights(rng, 12))), "h")
    b.add(CubaLIF(name="o", shape=(3,), tau_mem=0.02, tau_syn=0.005, v_threshold=0.1), "fc_out")
    b.add(Output(name="y", shape=(3,)), "o")
    return b.build()


def chain(neuron, *, conn=None, pre=None, post=None, n=4, name="net"):
    """x(n) -> [pre Delay] -> [conn] -> [post Delay] -> neuron -> y."""
    b = GraphBuilder(name, dt=1e-3)
    b.add(Input(name="x", shape=(n,)))
    last = "x"
    if pre is not None:
        last = b.add(Delay(name="d_pre", shape=(n,), delay=pre), last)
    if conn is None:
        w = np.linspace(-0.5, 1.0, neuron.size * n).reshape(neuron.size, n)
        conn = Dense(name="fc", in_features=n, out_features=neuron.size, weight=b.const("w", w))
    last = b.add(conn, last)
    if post is not None:
        d = post if isinstance(post, int) else b.const("dl", np.asarray(post))
        last = b.add(Delay(name="d_post", shape=neuron.shape, delay=d), last)
    b.add(neuron, last)
    b.add(Output(name="y", shape=neuron.shape), neuron.name)
    return b


# ------------------------------------------------------------------------------------------
# Lowering
# ------------------------------------------------------------------------------------------
def test_dense_net_lowering():
    g = dense_net()
    q, report = quantize(g, "loihi")
    verify(q)
    assert q.stage == Stage.QUANTIZED and q.attrs["target"] == "loihi"
    assert [repr(n) for n in q.nodes.values()] == [
        "Input(name='x', shape=(12,))",
        "LoihiDense(name='fc1', in_features=12, out_features=12, weight_exp=7, num_weight_bits=8, "
        "sign_mode='mixed', delay=1, weight=Ref(name='fc1.weight'))",
        "LoihiCompartment(name='h', shape=(12,), du=4095, dv=0, vth_mant=43149, bias_mant=3452, "
        "bias_exp=3, refractory=0, readout=False)",
        "LoihiDense(name='fc2', in_features=12, out_features=3, weight_exp=6, num_weight_bits=8, "
        "sign_mode='mixed', delay=1, weight=Ref(name='fc2.weight'))",
        "LoihiCompartment(name='o', shape=(3,), du=4095, dv=200, vth_mant=58370, bias_mant=0, "
        "bias_exp=0, refractory=0, readout=False)",
        "Output(name='y', shape=(3,))",
    ]
    assert q.edges == (("x", "fc1"), ("fc1", "h"), ("h", "fc2"), ("fc2", "o"), ("o", "y"))
    for name in ("fc1", "fc2"):
        node, w = q.nodes[name], q.constants[f"{name}.weight"]
        assert w.dtype == np.int16
        assert np.array_equal(legalize_weights(w, node.sign_mode, node.num_weight_bits), w)
    # The largest weight of fc2 lands on the legal limit (scale aligned to the weights).
    assert int(np.abs(q.constants["fc2.weight"]).max()) in (254, 256)
    dec = q.attrs["passes"]["quantize"]
    # h's scale is limited by fc1's largest weight (0.7 of the threshold needs weight_exp 7) and
    # lands the threshold 1.0 exactly on vth_mant << 6.
    assert dec["populations"]["h"]["limited_by"] == "weights fc1"
    assert dec["populations"]["h"]["scale"] == 43149 * 64 / 1.0
    assert dec["connections"]["fc1"] == {
        "source": "x", "target": "h", "folded": ["fc1"], "sign_mode": "mixed", "weight_exp": 7,
        "num_weight_bits": 8, "delay": 1, "float_delay": 0}
    assert QuantReport.from_graph(q).to_json() == report.to_json()
    # The float IF bias 0.01 per step becomes bias_mant << bias_exp = 0.01 * scale.
    assert 3452 << 3 == 8 * round(0.01 * 43149 * 64 / 8)


def test_decays_and_gains():
    """du/dv from the time constants (Lava's convention: current decay 4096 - (du + 1))."""
    dt = 1e-3
    cuba = CubaLIF(name="n", shape=(4,), tau_mem=0.02, tau_syn=0.005, v_threshold=1.0)
    q, _ = quantize(chain(cuba).build(), "loihi")
    n = q.nodes["n"]
    assert n.dv == round(4096 * (1 - math.exp(-dt / 0.02))) == 200
    assert n.du == round(4096 * (1 - math.exp(-dt / 0.005))) - 1 == 741
    q, _ = quantize(chain(IF(name="n", shape=(4,), v_threshold=1.0)).build(), "loihi")
    assert (q.nodes["n"].du, q.nodes["n"].dv) == (4095, 0)  # no leak, no current memory
    # Per-neuron time constants give per-neuron decays (constants in the pool).
    b = chain(LIF(name="n", shape=(4,), tau_mem=1.0, v_threshold=1.0))
    b.nodes["n"] = LIF(name="n", shape=(4,), tau_mem=b.const("tau", [0.002, 0.01, 0.05, 10.0]),
                       v_threshold=1.0)
    q, rep = quantize(b.build(), "loihi")
    assert q.constants[q.nodes["n"].dv.name].tolist() == [1612, 390, 81, 0]
    assert rep.notes[0] == "population n: tau_mem longer than Loihi can hold: dv = 0 (no leak)"


def test_lif_without_synaptic_stage_has_memoryless_current():
    """du = 4095 makes the current decay by 4096 - 4096 = 0, so u[t] = a[t] << 6 every step."""
    q, _ = quantize(chain(LIF(name="n", shape=(4,), tau_mem=0.02, v_threshold=1.0)).build(),
                    "loihi")
    assert q.nodes["n"].du == 4095
    x = (np.random.default_rng(3).random((2, 30, 4)) < 0.5).astype(np.float64)
    res = run_int(q, x, probes=["fc", "n"])
    assert np.array_equal(res.probes["n"]["u"], res.probes["fc"]["out"] << 6)
    assert res.probes["fc"]["out"].any()


def test_if_neuron_timing_matches_float_one_step_later():
    """One input, weight 0.3, threshold 1: the float IF spikes on every 4th input spike; the
    quantized one does the same, one step later (the native synaptic delay)."""
    b = chain(IF(name="n", shape=(1,), v_threshold=1.0), n=1,
              conn=Dense(name="fc", in_features=1, out_features=1, weight=Ref("w")))
    b.constants["w"] = np.array([[0.3]])
    q, _ = quantize(b.build(), "loihi")
    x = np.zeros((1, 40, 1))
    x[0, ::3, 0] = 1  # input spikes at 0, 3, 6, ...
    got = np.flatnonzero(run_int(q, x).outputs["y"][0, :, 0]).tolist()
    v, want = 0.0, []
    for t in range(40):
        v += 0.3 * x[0, t, 0]
        if v >= 1.0:
            want.append(t + 1)
            v = 0.0
    assert got == want == [10, 22, 34]


def test_readout_leak_and_bias():
    b = chain(LI(name="n", shape=(4,), tau_mem=0.01, v_leak=0.2))
    b.nodes["fc"] = Dense(name="fc", in_features=4, out_features=4, weight=b.const("w", np.eye(4)),
                          bias=b.const("bias", [0.0, 0.1, -0.1, 0.3]))
    q, rep = quantize(b.build(), "loihi")
    n = q.nodes["n"]
    assert (n.readout, n.vth_mant, n.du, n.dv) == (True, 0, 4095, 390)
    scale = q.attrs["passes"]["quantize"]["populations"]["n"]["scale"]
    mant = q.constants[n.bias_mant.name].astype(np.int64)
    exp = q.constants[n.bias_exp.name].astype(np.int64)
    # bias per step into v = (1 - a) (r c + v_leak) with the realised a = (4096 - 390) / 4096.
    want = scale * (390 / 4096) * (np.array([0.0, 0.1, -0.1, 0.3]) + 0.2)
    assert np.allclose(mant << exp, want, rtol=0, atol=2.0 ** exp.max())
    assert rep.populations[0]["vth_mant"] is None


def test_sign_modes_and_weight_bits():
    pos = Sparse(name="sp", in_features=4, out_features=4, rows=Ref("r"), cols=Ref("c"),
                 values=Ref("v"))
    for vals, mode in (([0.5, 0.25, 0.125, 1.0], "excitatory"),
                       ([-0.5, -0.25, -0.125, -1.0], "inhibitory"),
                       ([0.5, -0.25, 0.125, -1.0], "mixed")):
        b = chain(LIF(name="n", shape=(4,), tau_mem=0.02, v_threshold=1.0), conn=pos)
        b.constants.update(r=np.arange(4), c=np.arange(4), v=np.array(vals))
        q, _ = quantize(b.build(), "loihi")
        sp = q.nodes["sp"]
        w = q.constants["sp.values"]
        assert sp.kind == "LoihiSparse" and sp.sign_mode == mode
        assert np.array_equal(legalize_weights(w, mode, sp.num_weight_bits), w)
        assert int(np.abs(w).max()) in (254, 255, 256)  # the largest weight uses the range
    q, rep = quantize(dense_net(), "loihi", QuantizeOptions(weight_bits=3))
    assert {q.nodes[c].num_weight_bits for c in ("fc1", "fc2")} == {3}
    assert rep.connections[0]["rel_error"] > 0.05  # 3 bits cost accuracy


# ------------------------------------------------------------------------------------------
# Delays
# ------------------------------------------------------------------------------------------
def test_float_delays_fold_into_native_delay():
    lif = LIF(name="n", shape=(4,), tau_mem=0.02, v_threshold=1.0)
    for pre, post, want, fd in ((None, None, 1, 0), (None, 0, 1, 0), (None, 3, 3, 3),
                                (2, 1, 3, 3)):
        q, _ = quantize(chain(lif, pre=pre, post=post).build(), "loihi")
        assert [n.kind for n in q.nodes.values()] == ["Input", "LoihiDense", "LoihiCompartment",
                                                      "Output"]
        assert q.nodes["fc"].delay == want
        assert q.attrs["passes"]["quantize"]["connections"]["fc"]["float_delay"] == fd
        assert q.attrs["passes"]["quantize"]["connections"]["fc"]["folded"] == (
            (["d_pre"] if pre is not None else []) + ["fc"] +
            (["d_post"] if post is not None else []))


def test_per_element_delays_split_the_connection():
    lif = LIF(name="n", shape=(4,), tau_mem=0.02, v_threshold=1.0)
    q, rep = quantize(chain(lif, post=[0, 2, 2, 5]).build(), "loihi")
    verify(q)
    syn = [n for n in q.nodes.values() if n.kind == "LoihiSparse"]
    assert [(n.name, n.delay) for n in syn] == [("fc", 1), ("fc_d2", 2), ("fc_d5", 5)]
    assert [q.constants[f"{n.name}.rows"].tolist() for n in syn] == [
        [0, 0, 0, 0], [1, 1, 1, 1, 2, 2, 2, 2], [3, 3, 3, 3]]
    assert set(q.predecessors("n")) == {"fc", "fc_d2", "fc_d5"}
    assert rep.connections[0]["delay"] == "1..5"
    # The split graph computes what one connection with per-row delays would.
    x = (np.random.default_rng(4).random((2, 20, 4)) < 0.5).astype(np.float64)
    res = run_int(q, x, probes=["n"])
    assert res.outputs["y"].shape == (2, 20, 4)


def test_delay_above_the_profile_limit():
    lif = LIF(name="n", shape=(4,), tau_mem=0.02, v_threshold=1.0)
    with pytest.raises(CompileError, match=r"^connection fc, d_post: delay 63 > 62 steps "
                                           r"\(synapse\.delay_max of the target\); shorten the "
                                           r"delay or relay the spikes through an extra "
                                           r"population$"):
        quantize(chain(lif, post=63).build(), "loihi")


# ------------------------------------------------------------------------------------------
# What Loihi cannot hold
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("neuron,message", [
    (AdaptiveLIF(name="n", shape=(4,), tau_mem=0.02, tau_adapt=0.2, v_threshold=1.0,
                 beta_adapt=0.1),
     r"^population n: kind AdaptiveLIF is not supported by the loihi family: Loihi 1 "
     r"compartments have no threshold adaptation in nmc's loihi family; use LIF \(drop the "
     r"adaptation\) or a target family that has it$"),
    (Threshold(name="n", shape=(4,), v_threshold=1.0),
     r"^population n: kind Threshold is not supported by the loihi family: Loihi compartments "
     r"always keep part of v \(dv <= 4095 keeps 1/4096 of it\), so a memoryless threshold unit "
     r"has no exact equivalent; replace it by LIF with tau_mem much shorter than dt$"),
    (IF(name="n", shape=(4,), v_threshold=1.0, reset="subtract"),
     r"^population n \(IF\): reset = 'subtract' is not supported by the loihi family: a "
     r"compartment resets v to 0 after a spike \(hardware\.md 2\.2\); use reset = 'zero' "
     r"\(re-convert or retrain with it\)$"),
    (LIF(name="n", shape=(4,), tau_mem=0.02, v_threshold=1.0, reset="v_reset", v_reset=-0.2),
     r"^population n \(LIF\): reset = 'v_reset' with v_reset = -0\.2 is not supported by the "
     r"loihi family: a compartment resets v to 0; use v_reset = 0 \(or shift v_leak and "
     r"v_threshold by -v_reset\)$"),
])
def test_unsupported_neurons(neuron, message):
    with pytest.raises(CompileError, match=message):
        quantize(chain(neuron).build(), "loihi")


def test_v_reset_zero_is_accepted():
    lif = LIF(name="n", shape=(4,), tau_mem=0.02, v_threshold=1.0, reset="v_reset", v_reset=0.0)
    assert quantize(chain(lif).build(), "loihi")[0].nodes["n"].kind == "LoihiCompartment"


def test_unsupported_structures():
    lif = LIF(name="n", shape=(4,), tau_mem=0.02, v_threshold=1.0)
    b = GraphBuilder("g")
    b.add(Input(name="x", shape=(2, 4)))
    b.add(Conv1d(name="cv", input_shape=(2, 4), out_channels=1, kernel=1,
                 weight=b.const("k", np.ones((1, 2, 1)))), "x")
    b.add(LIF(name="n", shape=(1, 4), tau_mem=0.02, v_threshold=1.0), "cv")
    with pytest.raises(CompileError, match=r"^Conv1d cv: run the legalize pass first \(it lowers "
                                           r"Conv, pooling and Scale to Sparse\)$"):
        quantize(b.build(), "loihi")
    b = chain(lif)
    b.add(Output(name="currents", shape=(4,)), "fc")
    b.edges.remove(("fc", "n"))
    b.add(LIF(name="m", shape=(4,), tau_mem=0.02, v_threshold=1.0), "x")
    with pytest.raises(CompileError, match=r"^Dense fc does not lead to a population \(it feeds "
                                           r"currents\); on Loihi only spikes and readout voltages "
                                           r"can be observed: connect it to a neuron "
                                           r"population$"):
        quantize(b.build(), "loihi")
    b = GraphBuilder("g")
    b.add(Input(name="x", shape=(4,)))
    w = b.const("w", np.eye(4))
    b.add(Dense(name="a", in_features=4, out_features=4, weight=w), "x")
    b.add(Dense(name="b", in_features=4, out_features=4, weight=w), "a")
    b.add(lif, "b")
    with pytest.raises(CompileError, match=r"^Dense a feeds Dense b directly \(two connections "
                                           r"in series on the way to population n\); the loihi "
                                           r"family needs a population between connections: "
                                           r"multiply the weight matrices or insert neurons$"):
        quantize(b.build(), "loihi")
    b = GraphBuilder("g")
    b.add(Input(name="x", shape=(4,)))
    b.add(LI(name="r", shape=(4,), tau_mem=0.02), "x")
    b.add(Dense(name="fc", in_features=4, out_features=4, weight=b.const("w", np.eye(4))), "r")
    b.add(lif, "fc")
    with pytest.raises(CompileError, match=r"^population r \(LI\) is a non-spiking readout but "
                                           r"feeds population n; Loihi synapses carry spikes "
                                           r"only: make r a spiking neuron \(IF/LIF\) or use it "
                                           r"only as an output$"):
        quantize(b.build(), "loihi")


def test_direct_edge_becomes_identity_synapse():
    b = GraphBuilder("g")
    b.add(Input(name="x", shape=(3,)))
    b.add(IF(name="n", shape=(3,), v_threshold=0.5), "x")
    b.add(Output(name="y", shape=(3,)), "n")
    q, _ = quantize(b.build(), "loihi")
    verify(q)
    syn = q.nodes["x_to_n"]
    assert (syn.kind, syn.sign_mode, syn.delay) == ("LoihiSparse", "excitatory", 1)
    x = np.eye(3)[None].repeat(2, 0).reshape(1, 6, 3)
    assert run_int(q, x).outputs["y"][0].astype(int).tolist() == [
        [0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 0]]


def test_mini_profile_same_datapath():
    q, _ = quantize(dense_net(), "loihi-mini")
    assert q.attrs["target"] == "loihi-mini"
    q2, _ = quantize(dense_net(), "loihi")
    assert [repr(n) for n in q.nodes.values()] == [repr(n) for n in q2.nodes.values()]


# ------------------------------------------------------------------------------------------
# The report with real numbers
# ------------------------------------------------------------------------------------------
NOTE = ("note: 2 connection(s) were instantaneous in the float graph and take 1 step on Loihi "
        "(native delay >= 1): spikes of the quantized graph come later by one step per such layer")

DENSE_TABLE = """\
quantization report (target loihi, family loihi, calibrated)
connections:
  name        kind  scale  bits  weight_exp  sign_mode  delay  clipped_pct  zero_pct  rel_error
  fc1   LoihiDense  337.1     8           7      mixed      1            0     4.167   0.008451
  fc2   LoihiDense  222.7     8           6      mixed      1            0         0   0.004442
populations:
  name  kind  neurons      scale   limited_by    du   dv  vth_mant  never_fire  always_fire  mean_rate  u_wraps  v_saturations
  h       IF       12  2.762e+06  weights fc1  4095    0     43149           0            0    0.08056        0            169
  o      LIF        3  1.868e+07      v_range  4095  200     58370           0            0    0.04136        0              0
""" + NOTE

RECURRENT_TABLE = """\
quantization report (target loihi, family loihi, calibrated)
connections:
  name          kind  scale  bits  weight_exp  sign_mode  delay  clipped_pct  zero_pct  rel_error
  fc_in   LoihiDense  199.2     8           7      mixed      1            0     9.722   0.008687
  rec     LoihiDense  796.7     8           5      mixed      1            0         0   0.007226
  fc_out  LoihiDense  191.9     8           5      mixed      1            0         0    0.00482
populations:
  name     kind  neurons      scale     limited_by    du   dv  vth_mant  never_fire  always_fire  mean_rate  u_wraps  v_saturations
  h         LIF       12  1.714e+07  weights fc_in  4095  390     80326           0            0    0.02994        0              0
  o     CubaLIF        3  4.444e+07        v_range   741  200     69435           0            0    0.03827        0              0
""" + NOTE


def test_report_dense_and_recurrent_networks():
    x, _ = class_inputs(9, 60, seed=1)
    tables = []
    for net in (dense_net, recurrent_net):
        q, rep = quantize(net(), "loihi", QuantizeOptions(calibration=x))
        verify(q)
        tables.append(rep.to_table())
        print(tables[-1])
        js = rep.to_json()
        assert js["calibrated"] is True
        assert [c["name"] for c in js["connections"]] == [
            n for n, node in q.nodes.items() if node.kind.startswith("LoihiDense")]
    # The IF population has no leak: neurons pushed down by negative weights sit at the lower
    # voltage limit (-(2**23 - 1)) on Loihi, which the report counts (v_saturations).
    assert tables == [DENSE_TABLE, RECURRENT_TABLE]


def test_weights_only_report_and_warning_free():
    q, rep = quantize(recurrent_net(), "loihi")
    js = rep.to_json()
    assert js["calibrated"] is False
    assert [p["name"] for p in js["populations"]] == ["h", "o"]
    assert "never_fire" not in js["populations"][0]
    assert all(0 <= c["rel_error"] < 0.02 and c["clipped_pct"] == 0 for c in js["connections"])
