"""The float reference interpreter: every kernel against a plain reference written here (scalar
loops over steps, neurons and taps on tiny sizes), delays, recurrence, batches, probes and the
stage check."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ir.errors import NmcError, VerifyError
from ir.graph import Graph, GraphBuilder, Stage
from ir.interp_float import run_float
from ir.nodes import (
    IF,
    LI,
    LIF,
    AdaptiveLIF,
    AvgPool2d,
    Conv1d,
    Conv2d,
    CubaLI,
    CubaLIF,
    Delay,
    Dense,
    Flatten,
    Input,
    Integrator,
    Output,
    Scale,
    Sparse,
    SumPool2d,
    Threshold,
)

DT = 1e-3


def single(make_node, in_shape, consts=None, dt=DT) -> tuple[Graph, str]:
    """Input(in_shape) -> node -> Output; ``make_node(b)`` adds constants and returns the node."""
    b = GraphBuilder("t", dt=dt)
    b.add(Input(name="x", shape=tuple(in_shape)))
    node = make_node(b)
    b.add(node, "x")
    b.add(Output(name="y", shape=node.out_shape), node.name)
    return b.build(), node.name


def run1(g: Graph, x: np.ndarray, **kw) -> np.ndarray:
    return run_float(g, x, **kw).outputs["y"]


# ------------------------------------------------------------------------------------------
# Scalar references of the neuron equations (ir/nodes.py docstrings), one neuron at a time
# ------------------------------------------------------------------------------------------
def reset(v, s, mode, thr, v_reset):
    if not s:
        return v
    return {"zero": 0.0, "subtract": v - thr, "v_reset": v_reset}[mode]


def ref_neuron(kind: str, p: dict, drive: np.ndarray, dt: float = DT) -> tuple[np.ndarray, dict]:
    """drive: (T, N). Returns the output (T, N) and state traces {var: (T, N)}."""
    t_len, n = drive.shape
    out = np.zeros((t_len, n))
    tr = {k: np.zeros((t_len, n)) for k in ("v", "i", "b")}
    for k in range(n):
        P = {key: (val[k] if isinstance(val, np.ndarray) else val) for key, val in p.items()}
        v = i = b = 0.0
        for t in range(t_len):
            x = drive[t, k]
            if kind == "IF":
                v = v + P.get("r", 1.0) * x
                s = v >= P["v_threshold"]
                y = float(s)
                v = reset(v, s, P.get("reset", "zero"), P["v_threshold"], P.get("v_reset", 0.0))
            elif kind in ("LIF", "LI"):
                a = math.exp(-dt / P["tau_mem"])
                vl = P.get("v_leak", 0.0)
                v = vl + a * (v - vl) + (1 - a) * P.get("r", 1.0) * x
                if kind == "LI":
                    y = v
                else:
                    s = v >= P["v_threshold"]
                    y = float(s)
                    v = reset(v, s, P.get("reset", "zero"), P["v_threshold"], P.get("v_reset", 0.0))
            elif kind in ("CubaLIF", "CubaLI"):
                bs = math.exp(-dt / P["tau_syn"])
                a = math.exp(-dt / P["tau_mem"])
                vl = P.get("v_leak", 0.0)
                i = bs * i + (1 - bs) * P.get("w_in", 1.0) * x
                v = vl + a * (v - vl) + (1 - a) * P.get("r", 1.0) * i
                if kind == "CubaLI":
                    y = v
                else:
                    s = v >= P["v_threshold"]
                    y = float(s)
                    v = reset(v, s, P.get("reset", "zero"), P["v_threshold"], P.get("v_reset", 0.0))
            elif kind == "AdaptiveLIF":
                a = math.exp(-dt / P["tau_mem"])
                rho = math.exp(-dt / P["tau_adapt"])
                vl = P.get("v_leak", 0.0)
                v = vl + a * (v - vl) + (1 - a) * P.get("r", 1.0) * x
                theta = P["v_threshold"] + P["beta_adapt"] * b
                s = v >= theta
                b = rho * b + float(s)
                y = float(s)
                v = reset(v, s, P.get("reset", "zero"), P["v_threshold"], P.get("v_reset", 0.0))
            elif kind == "Integrator":
                v = v + P.get("r", 1.0) * x
                y = v
            elif kind == "Threshold":
                y = float(x >= P["v_threshold"])
            out[t, k] = y
            tr["v"][t, k], tr["i"][t, k], tr["b"][t, k] = v, i, b
    return out, tr


NEURON_CASES = [
    ("IF", dict(v_threshold=1.0, r=0.7)),
    ("LIF", dict(tau_mem=0.004, v_threshold=0.3, v_leak=0.05, r=2.0)),
    ("CubaLIF", dict(tau_syn=0.003, tau_mem=0.006, v_threshold=0.2, v_leak=-0.02, r=1.5, w_in=1.2)),
    ("AdaptiveLIF", dict(tau_mem=0.004, tau_adapt=0.02, v_threshold=0.3, beta_adapt=0.4, r=2.0)),
]


def node_of(kind: str, name: str, shape, params: dict):
    cls = dict(
        IF=IF,
        LIF=LIF,
        CubaLIF=CubaLIF,
        AdaptiveLIF=AdaptiveLIF,
        LI=LI,
        CubaLI=CubaLI,
        Integrator=Integrator,
        Threshold=Threshold,
    )[kind]
    return cls(name=name, shape=shape, **params)


@pytest.mark.parametrize("mode", ["zero", "subtract", "v_reset"])
@pytest.mark.parametrize("kind, params", NEURON_CASES, ids=[c[0] for c in NEURON_CASES])
def test_spiking_neurons_match_reference(kind, params, mode):
    rng = np.random.default_rng(1)
    drive = rng.uniform(-0.5, 1.5, size=(60, 5))
    p = dict(params, reset=mode, v_reset=-0.1)
    g, name = single(lambda b: node_of(kind, "n", (5,), p), (5,))
    res = run_float(g, drive, probes=[name])
    want, tr = ref_neuron(kind, p, drive)
    got = res.outputs["y"][0]
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, want)
    assert 0 < want.sum() < want.size  # the case exercises spikes and silence
    np.testing.assert_allclose(res.probes[name]["v"][0], tr["v"], rtol=1e-12, atol=1e-12)
    expected_vars = {
        "IF": {"out", "v"},
        "LIF": {"out", "v"},
        "CubaLIF": {"out", "v", "i"},
        "AdaptiveLIF": {"out", "v", "b"},
    }[kind]
    assert set(res.probes[name]) == expected_vars
    for var in expected_vars - {"out", "v"}:
        np.testing.assert_allclose(res.probes[name][var][0], tr[var], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "kind, params",
    [
        ("LI", dict(tau_mem=0.005, v_leak=0.1, r=3.0)),
        ("CubaLI", dict(tau_syn=0.002, tau_mem=0.005, v_leak=0.1, r=3.0, w_in=0.5)),
        ("Integrator", dict(r=0.25)),
        ("Threshold", dict(v_threshold=0.4)),
    ],
)
def test_non_spiking_and_threshold_match_reference(kind, params):
    rng = np.random.default_rng(2)
    drive = rng.normal(size=(40, 3))
    g, name = single(lambda b: node_of(kind, "n", (3,), params), (3,))
    res = run_float(g, drive, probes=[name])
    want, tr = ref_neuron(kind, params, drive)
    np.testing.assert_allclose(res.outputs["y"][0], want, rtol=1e-12, atol=1e-12)
    if kind != "Threshold":
        np.testing.assert_allclose(res.probes[name]["v"][0], tr["v"], rtol=1e-12, atol=1e-12)
    if kind == "CubaLI":
        np.testing.assert_allclose(res.probes[name]["i"][0], tr["i"], rtol=1e-12, atol=1e-12)
    if kind == "Threshold":
        assert set(res.probes[name]) == {"out"}


def test_per_neuron_parameters_from_constants():
    rng = np.random.default_rng(3)
    drive = rng.uniform(0, 1, size=(50, 4))
    tau = np.array([0.002, 0.004, 0.008, 0.016])
    thr = np.array([0.1, 0.2, 0.3, 0.4])
    g, _ = single(
        lambda b: LIF(
            name="n",
            shape=(4,),
            tau_mem=b.const("tau", tau),
            v_threshold=b.const("thr", thr),
            r=b.const("r", [[1.5]]),
        ),
        (4,),
    )
    want, _ = ref_neuron("LIF", dict(tau_mem=tau, v_threshold=thr, r=1.5), drive)
    np.testing.assert_array_equal(run1(g, drive)[0], want)


def test_neuron_without_input_is_driven_by_nothing():
    b = GraphBuilder("t")
    b.add(Input(name="x", shape=(1,)))
    b.add(LIF(name="n", shape=(2,), tau_mem=0.01, v_threshold=0.5, v_leak=1.0))
    b.add(Output(name="y", shape=(2,)), "n")
    res = run_float(b.build(), np.zeros((30, 1)), probes=["n"])
    want, tr = ref_neuron("LIF", dict(tau_mem=0.01, v_threshold=0.5, v_leak=1.0), np.zeros((30, 2)))
    np.testing.assert_array_equal(res.outputs["y"][0], want)
    assert want.sum() > 0  # v_leak above threshold makes it fire on its own


# ------------------------------------------------------------------------------------------
# Connections
# ------------------------------------------------------------------------------------------
def test_dense_with_bias():
    rng = np.random.default_rng(4)
    w, bias = rng.normal(size=(3, 4)), rng.normal(size=3)
    x = rng.normal(size=(2, 5, 4))
    g, _ = single(
        lambda b: Dense(
            name="c", in_features=4, out_features=3, weight=b.const("w", w), bias=b.const("b", bias)
        ),
        (4,),
    )
    want = np.zeros((2, 5, 3))
    for n in range(2):
        for t in range(5):
            for o in range(3):
                want[n, t, o] = bias[o] + sum(w[o, i] * x[n, t, i] for i in range(4))
    np.testing.assert_allclose(run1(g, x), want, rtol=1e-12, atol=1e-12)


def test_sparse_with_duplicates_and_bias():
    rows = np.array([0, 2, 2, 0, 1])
    cols = np.array([1, 0, 0, 3, 3])
    vals = np.array([0.5, -1.0, 2.0, 3.0, 0.25])
    bias = np.array([0.1, 0.2, 0.3])
    x = np.random.default_rng(5).normal(size=(3, 4, 4))
    g, _ = single(
        lambda b: Sparse(
            name="c",
            in_features=4,
            out_features=3,
            rows=b.const("r", rows),
            cols=b.const("cl", cols),
            values=b.const("v", vals),
            bias=b.const("b", bias),
        ),
        (4,),
    )
    want = np.broadcast_to(bias, (3, 4, 3)).copy()
    for n in range(3):
        for t in range(4):
            for r, c, v in zip(rows, cols, vals, strict=True):
                want[n, t, r] += v * x[n, t, c]
    np.testing.assert_allclose(run1(g, x), want, rtol=1e-12, atol=1e-12)


def ref_conv2d(x, w, bias, stride, padding, dilation, groups):
    """x: (C, H, W). Plain loops over every output element and tap."""
    c_in, h, wd = x.shape
    c_out, cg, kh, kw = w.shape
    oh = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (wd + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    y = np.zeros((c_out, oh, ow))
    per_group = c_out // groups
    for o in range(c_out):
        g = o // per_group
        for i in range(oh):
            for j in range(ow):
                s = 0.0 if bias is None else bias[o]
                for c in range(cg):
                    for u in range(kh):
                        for v in range(kw):
                            yy = i * stride[0] - padding[0] + u * dilation[0]
                            xx = j * stride[1] - padding[1] + v * dilation[1]
                            if 0 <= yy < h and 0 <= xx < wd:
                                s += w[o, c, u, v] * x[g * cg + c, yy, xx]
                y[o, i, j] = s
    return y


@pytest.mark.parametrize(
    "stride, padding, dilation, groups, bias",
    [
        ((1, 1), (0, 0), (1, 1), 1, False),
        ((2, 1), (1, 2), (1, 1), 1, True),
        ((1, 2), (2, 1), (2, 1), 2, True),
        ((3, 3), (1, 1), (1, 2), 4, False),
    ],
)
def test_conv2d_matches_loops(stride, padding, dilation, groups, bias):
    rng = np.random.default_rng(6)
    c_in, c_out, k = 4, 8, (3, 2)
    w = rng.normal(size=(c_out, c_in // groups, *k))
    bv = rng.normal(size=c_out) if bias else None
    x = rng.normal(size=(2, 3, c_in, 7, 6))
    g, _ = single(
        lambda b: Conv2d(
            name="c",
            input_shape=(c_in, 7, 6),
            out_channels=c_out,
            kernel=k,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            weight=b.const("w", w),
            bias=None if bv is None else b.const("b", bv),
        ),
        (c_in, 7, 6),
    )
    got = run1(g, x)
    for n in range(2):
        for t in range(3):
            np.testing.assert_allclose(
                got[n, t],
                ref_conv2d(x[n, t], w, bv, stride, padding, dilation, groups),
                rtol=1e-12,
                atol=1e-12,
            )


@pytest.mark.parametrize("stride, padding, dilation, groups", [(1, 0, 1, 1), (2, 2, 2, 3)])
def test_conv1d_matches_loops(stride, padding, dilation, groups):
    rng = np.random.default_rng(7)
    c_in, c_out, k, n_len = 3, 6, 3, 9
    w = rng.normal(size=(c_out, c_in // groups, k))
    bias = rng.normal(size=c_out)
    x = rng.normal(size=(2, 2, c_in, n_len))
    g, _ = single(
        lambda b: Conv1d(
            name="c",
            input_shape=(c_in, n_len),
            out_channels=c_out,
            kernel=k,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            weight=b.const("w", w),
            bias=b.const("b", bias),
        ),
        (c_in, n_len),
    )
    got = run1(g, x)
    # A 1-D convolution is the 2-D one on a height-1 image.
    for n in range(2):
        for t in range(2):
            want = ref_conv2d(
                x[n, t][:, None, :],
                w[:, :, None, :],
                bias,
                (1, stride),
                (0, padding),
                (1, dilation),
                groups,
            )[:, 0, :]
            np.testing.assert_allclose(got[n, t], want, rtol=1e-12, atol=1e-12)


def ref_pool(x, kernel, stride, padding, mean):
    c, h, w = x.shape
    oh = (h + 2 * padding[0] - kernel[0]) // stride[0] + 1
    ow = (w + 2 * padding[1] - kernel[1]) // stride[1] + 1
    y = np.zeros((c, oh, ow))
    for ch in range(c):
        for i in range(oh):
            for j in range(ow):
                s = 0.0
                for u in range(kernel[0]):
                    for v in range(kernel[1]):
                        yy, xx = i * stride[0] - padding[0] + u, j * stride[1] - padding[1] + v
                        if 0 <= yy < h and 0 <= xx < w:
                            s += x[ch, yy, xx]
                y[ch, i, j] = s / (kernel[0] * kernel[1]) if mean else s
    return y


@pytest.mark.parametrize("cls", [SumPool2d, AvgPool2d])
@pytest.mark.parametrize(
    "kernel, stride, padding",
    [
        ((2, 2), None, (0, 0)),
        ((3, 2), (1, 2), (1, 1)),
        ((2, 3), (2, 1), (0, 1)),
    ],
)
def test_pooling_matches_loops(cls, kernel, stride, padding):
    x = np.random.default_rng(8).normal(size=(2, 2, 3, 6, 7))
    g, _ = single(
        lambda b: cls(
            name="p", input_shape=(3, 6, 7), kernel=kernel, stride=stride, padding=padding
        ),
        (3, 6, 7),
    )
    got = run1(g, x)
    for n in range(2):
        for t in range(2):
            want = ref_pool(x[n, t], kernel, stride or kernel, padding, cls is AvgPool2d)
            np.testing.assert_allclose(got[n, t], want, rtol=1e-12, atol=1e-12)


def test_scale_and_flatten():
    x = np.random.default_rng(9).normal(size=(2, 3, 2, 3))
    f = np.array([[1.0, -2.0, 0.5], [3.0, 0.0, 1.0]])
    g, _ = single(lambda b: Scale(name="s", shape=(2, 3), factor=b.const("f", f)), (2, 3))
    np.testing.assert_array_equal(run1(g, x), x * f)
    g2, _ = single(lambda b: Flatten(name="f", input_shape=(2, 3)), (2, 3))
    np.testing.assert_array_equal(run1(g2, x), x.reshape(2, 3, 6))


# ------------------------------------------------------------------------------------------
# Delays and recurrence
# ------------------------------------------------------------------------------------------
def ref_delay(x, d):
    """x: (B, T, N); y[t][k] = x[t - d[k]][k], 0 before the start."""
    y = np.zeros_like(x)
    for k, dk in enumerate(d):
        for t in range(x.shape[1]):
            if t - dk >= 0:
                y[:, t, k] = x[:, t - dk, k]
    return y


@pytest.mark.parametrize("delay", [[1, 3, 2, 1], [0, 3, 1, 0], [2, 2, 2, 2], [0, 0, 0, 0]])
def test_delay_per_element(delay):
    x = np.random.default_rng(10).normal(size=(2, 8, 4))
    g, _ = single(lambda b: Delay(name="d", shape=(4,), delay=b.const("dl", delay)), (4,))
    assert (g.min_delay(g.nodes["d"]) >= 1) == (min(delay) >= 1)  # both engine paths
    np.testing.assert_array_equal(run1(g, x), ref_delay(x, delay))


def test_scalar_delay():
    x = np.random.default_rng(11).normal(size=(1, 6, 2))
    g, _ = single(lambda b: Delay(name="d", shape=(2,), delay=3), (2,))
    np.testing.assert_array_equal(run1(g, x), ref_delay(x, [3, 3]))


def recurrent_graph(delay, w_rec) -> Graph:
    """x(2) -> Dense(w_in) -> IF h(2) <- Delay <- Dense(w_rec) <- h."""
    b = GraphBuilder("rec")
    b.add(Input(name="x", shape=(2,)))
    b.add(Dense(name="fin", in_features=2, out_features=2, weight=b.const("wi", np.eye(2))), "x")
    b.add(IF(name="h", shape=(2,), v_threshold=1.0, reset="subtract"), "fin")
    b.add(Dense(name="frec", in_features=2, out_features=2, weight=b.const("wr", w_rec)), "h")
    b.add(Delay(name="d", shape=(2,), delay=b.const("dl", delay)), "frec")
    b.connect("d", "h")
    b.add(Output(name="y", shape=(2,)), "h")
    return b.build()


def test_recurrence_through_delay():
    w_rec = np.array([[0.0, 0.6], [-0.4, 0.3]])
    delay = [1, 2]
    x = np.random.default_rng(12).uniform(0, 0.8, size=(3, 30, 2))
    res = run_float(recurrent_graph(delay, w_rec), x, probes=["h"])
    want = np.zeros((3, 30, 2))
    vs = np.zeros((3, 30, 2))
    for n in range(3):
        v = [0.0, 0.0]
        rec_hist = []  # frec output per step
        for t in range(30):
            inp = [x[n, t, k] for k in range(2)]
            for k in range(2):
                if t - delay[k] >= 0:
                    inp[k] += rec_hist[t - delay[k]][k]
            s = [0.0, 0.0]
            for k in range(2):
                v[k] += inp[k]
                if v[k] >= 1.0:
                    s[k] = 1.0
                    v[k] -= 1.0
                vs[n, t, k] = v[k]
            want[n, t] = s
            rec_hist.append([sum(w_rec[o, i] * s[i] for i in range(2)) for o in range(2)])
    np.testing.assert_array_equal(res.outputs["y"], want)
    np.testing.assert_allclose(res.probes["h"]["v"], vs, rtol=1e-12, atol=1e-12)
    assert want.sum() > 10


def test_zero_delay_loop_is_rejected_by_verifier():
    with pytest.raises(VerifyError, match=r"^graph rec: zero-delay cycle h -> frec -> d -> h; "):
        run_float(recurrent_graph([1, 0], np.eye(2)), np.zeros((5, 2)))


# ------------------------------------------------------------------------------------------
# Batches, probes, steps, inputs
# ------------------------------------------------------------------------------------------
def conv_net() -> Graph:
    rng = np.random.default_rng(13)
    b = GraphBuilder("cnet")
    b.add(Input(name="x", shape=(2, 6, 6)))
    b.add(
        Conv2d(
            name="c1",
            input_shape=(2, 6, 6),
            out_channels=3,
            kernel=(3, 3),
            padding=(1, 1),
            weight=b.const("w1", rng.normal(size=(3, 2, 3, 3))),
        ),
        "x",
    )
    b.add(CubaLIF(name="h1", shape=(3, 6, 6), tau_syn=0.005, tau_mem=0.01, v_threshold=0.5), "c1")
    b.add(SumPool2d(name="p", input_shape=(3, 6, 6), kernel=(2, 2)), "h1")
    b.add(Flatten(name="f", input_shape=(3, 3, 3)), "p")
    b.add(
        Dense(
            name="fc",
            in_features=27,
            out_features=4,
            weight=b.const("w2", rng.normal(size=(4, 27))),
        ),
        "f",
    )
    b.add(
        AdaptiveLIF(
            name="h2", shape=(4,), tau_mem=0.01, tau_adapt=0.05, v_threshold=0.3, beta_adapt=0.2
        ),
        "fc",
    )
    b.add(LI(name="ro", shape=(4,), tau_mem=0.02), "h2")
    b.add(Output(name="y", shape=(4,)), "ro")
    b.add(Output(name="s", shape=(4,)), "h2")
    return b.build()


def test_batch_equals_single_runs():
    g = conv_net()
    x = (np.random.default_rng(14).uniform(size=(4, 25, 2, 6, 6)) < 0.4).astype(np.float64)
    batch = run_float(g, x, probes=["h1", "h2"])
    assert batch.outputs["s"].sum() > 0
    for n in range(4):
        one = run_float(g, x[n], probes=["h1", "h2"])
        for k in ("y", "s"):
            np.testing.assert_array_equal(batch.outputs[k][n], one.outputs[k][0])
        for p in ("h1", "h2"):
            for var, arr in one.probes[p].items():
                np.testing.assert_array_equal(batch.probes[p][var][n], arr[0])


def test_dense_and_conv_results_do_not_depend_on_the_batch_bitwise():
    """Sizes where one BLAS call for the whole batch would round differently per batch size."""
    rng = np.random.default_rng(16)
    b = GraphBuilder("big")
    b.add(Input(name="x", shape=(3, 10, 10)))
    b.add(
        Conv2d(
            name="c",
            input_shape=(3, 10, 10),
            out_channels=4,
            kernel=(3, 3),
            weight=b.const("wc", rng.normal(size=(4, 3, 3, 3))),
        ),
        "x",
    )
    b.add(Flatten(name="f", input_shape=(4, 8, 8)), "c")
    b.add(
        Dense(
            name="d",
            in_features=256,
            out_features=300,
            weight=b.const("wd", rng.normal(size=(300, 256))),
        ),
        "f",
    )
    b.add(Output(name="y", shape=(300,)), "d")
    g = b.build()
    x = rng.normal(size=(16, 2, 3, 10, 10))
    full = run_float(g, x).outputs["y"]
    for n in (0, 7, 15):
        np.testing.assert_array_equal(run_float(g, x[n]).outputs["y"][0], full[n])
    np.testing.assert_array_equal(run_float(g, x[4:9]).outputs["y"], full[4:9])


def test_probes_shapes_and_steps_padding():
    g = conv_net()
    x = np.ones((2, 5, 2, 6, 6))
    res = run_float(g, x, steps=8, probes=["h1", "h2", "c1"])
    assert res.steps == 8
    assert res.outputs["y"].shape == (2, 8, 4)
    assert sorted(res.probes["h1"]) == ["i", "out", "v"]
    assert res.probes["h1"]["i"].shape == (2, 8, 3, 6, 6)
    assert sorted(res.probes["h2"]) == ["b", "out", "v"]
    assert sorted(res.probes["c1"]) == ["out"]
    np.testing.assert_array_equal(res.probes["h2"]["out"], res.outputs["s"])
    # Steps beyond the data get zero input: same as running explicitly padded data.
    padded = np.concatenate([x, np.zeros((2, 3, 2, 6, 6))], axis=1)
    np.testing.assert_array_equal(run_float(g, padded).outputs["y"], res.outputs["y"])
    # Fewer steps: a prefix.
    short = run_float(g, x, steps=3)
    np.testing.assert_array_equal(short.outputs["y"], res.outputs["y"][:, :3])


def test_bool_input_spikes():
    g = conv_net()
    x = np.random.default_rng(15).uniform(size=(2, 10, 2, 6, 6)) < 0.5
    np.testing.assert_array_equal(
        run_float(g, x).outputs["y"], run_float(g, x.astype(np.float64)).outputs["y"]
    )


def test_stage_check():
    g = conv_net().replace(stage=Stage.QUANTIZED)
    with pytest.raises(
        NmcError,
        match=r"^graph cnet is at stage quantized; the float interpreter "
        r"runs float-stage graphs \(use ir\.interp_int\.run_int for quantized "
        r"graphs\)$",
    ):
        run_float(g, np.zeros((3, 2, 6, 6)))


def test_graph_is_verified_first():
    b = GraphBuilder("bad")
    b.add(Input(name="x", shape=(3,)))
    b.add(IF(name="h", shape=(2,), v_threshold=1.0), "x")
    with pytest.raises(
        VerifyError,
        match=r"^edge x -> h: Input x outputs shape \[3\], IF h takes "
        r"shape \[2\]; the shapes must be equal$",
    ):
        run_float(b.build(), np.zeros((3, 3)))


def test_bad_inputs_and_probes():
    g, _ = single(lambda b: IF(name="n", shape=(2,), v_threshold=1.0), (2,))
    x = np.zeros((2, 4, 2))
    x[1, 2, 1] = np.nan
    with pytest.raises(
        NmcError,
        match=r"^input x: value nan at \[sample 1, step 2, index \[1\]\] "
        r"is not finite; inputs must be finite numbers$",
    ):
        run_float(g, x)
    with pytest.raises(NmcError, match=r"^input x: array of shape \[4, 3\] does not match"):
        run_float(g, np.zeros((4, 3)))
    with pytest.raises(
        NmcError,
        match=r"^probe 'nope': graph t has no node of that name; "
        r"probes name nodes$",
    ):
        run_float(g, np.zeros((4, 2)), probes=["nope"])


def test_graph_without_inputs_runs_for_given_steps():
    b = GraphBuilder("free")
    b.add(LIF(name="n", shape=(1,), tau_mem=0.01, v_threshold=0.5, v_leak=1.0))
    b.add(Output(name="y", shape=(1,)), "n")
    res = run_float(b.build(), None, steps=20)
    want, _ = ref_neuron("LIF", dict(tau_mem=0.01, v_threshold=0.5, v_leak=1.0), np.zeros((20, 1)))
    np.testing.assert_array_equal(res.outputs["y"][0], want)
