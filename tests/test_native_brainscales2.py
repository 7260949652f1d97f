"""BrainScaleS-2 native kinds: the integer discretised LIF, synapse rows and parallel synapses,
rails, readouts, seeded fixed-pattern noise, verifier rules.

Hand-computed traces cover each path; random populations are checked against a sequential
re-implementation of the module's update rule written here with Python integers.
"""

from __future__ import annotations

import numpy as np
import pytest

from ir.errors import IRError
from ir.graph import GraphBuilder, Stage
from ir.interp import run
from ir.interp_int import _integer_kernels, run_int
from ir.native import brainscales2 as bss
from ir.native.brainscales2 import BSS2Neuron, BSS2Synapses
from ir.nodes import Input, Output
from ir.verify import problems


def graph(exc=None, inh=None, n_in=None, delay=1, **params):
    """x -> synapses -> one population -> y; exc/inh as (m, out, in) lists or None."""
    b = GraphBuilder("t", stage=Stage.QUANTIZED, attrs={"target": "brainscales2"})
    arrs = {k: (None if v is None else np.asarray(v, np.uint8)) for k, v in
            (("exc", exc), ("inh", inh))}
    shape = next(a.shape for a in arrs.values() if a is not None)
    n_out, n_in = shape[1], shape[2]
    b.add(Input(name="x", shape=(n_in,)))
    b.add(BSS2Synapses(name="c", in_features=n_in, out_features=n_out, delay=delay,
                       **{k: (None if a is None else b.const(k, a)) for k, a in arrs.items()}),
          "x")
    b.add(BSS2Neuron(name="n", shape=(n_out,), **params), "c")
    b.add(Output(name="y", shape=(n_out,)), "n")
    return b.build()


def trace(g, x, var="v"):
    r = run_int(g, np.asarray(x)[None], probes=["n"])
    return r.outputs["y"][0].astype(int).T.tolist(), r.probes["n"][var][0].T.tolist()


# ---- hand-computed traces --------------------------------------------------------------------
def test_leak_threshold_reset_and_refractory_clock():
    # v_leak 100 (6400 state units), threshold 110 (7040), reset 90 (5760); c_mem 511 keeps half
    # of (v - v_leak) per step; instantaneous synapse; gain 10 x weight 40 = 400 per spike;
    # refractory 1 period of 2**1 steps.
    g = graph(exc=[[[40]]], v_leak=100, v_threshold=110, v_reset=90, c_mem=511, gain_exc=10,
              refractory=1, refractory_clock=1)
    spikes, v = trace(g, np.ones((10, 1)))
    # t0 no input yet (delay 1): 6400 | t1: 6400 + 0 + 400 | t2: 6400 + 200 + 400 | t3: 7100 ->
    # spike -> 5760 | t4, t5 clamped at reset | t6: 6400 - 320 + 400 | t7 | t8 | t9: 7110 spike
    assert v == [[6400, 6800, 7000, 5760, 5760, 5760, 6480, 6840, 7020, 5760]]
    assert spikes == [[0, 0, 0, 1, 0, 0, 0, 0, 0, 1]]


def test_synaptic_decay_rounds_toward_zero_and_parallel_synapses_add():
    # Two parallel inhibitory synapses 63 + 37 = 100; c_syn_inh 511 halves the current per step
    # (toward zero); c_mem 0: a perfect integrator at v_leak 500 (32000).
    g = graph(inh=[[[63]], [[37]]], v_leak=500, v_threshold=1000, v_reset=0, c_mem=0,
              c_syn_inh=511, gain_inh=1)
    x = [[1], [0], [0], [0], [0], [0]]
    _, i_inh = trace(g, x, "i_inh")
    assert i_inh == [[0, 100, 50, 25, 12, 6]]
    _, v = trace(g, x)
    assert v == [[32000, 31900, 31850, 31825, 31813, 31807]]


def test_membrane_decays_symmetrically_toward_leak():
    g = graph(inh=[[[3]]], v_leak=100, v_threshold=200, v_reset=0, c_mem=340, gain_inh=50)
    # -150 below leak, then (1022 - 340) / 1022 of it per step, truncated toward zero
    _, v = trace(g, [[1], [0], [0], [0]])
    assert v == [[6400, 6250, 6400 - 100, 6400 - 66]]


def test_rails_and_current_limit_and_readout():
    # Four parallel synapses of 63 x gain 1022 = 257544 > I_MAX: the current saturates at
    # 65535; v saturates at the upper rail; a readout outputs v and never spikes.
    g = graph(exc=[[[63]]] * 4, v_leak=0, v_threshold=1, v_reset=0, c_mem=0, gain_exc=1022,
              readout=True)
    out, v = trace(g, [[1], [1], [0]])
    assert out == v == [[0, 65535, 65535]]
    assert trace(g, [[1], [1], [0]], "i_exc")[1] == [[0, 65535, 65535]]
    g = graph(inh=[[[63]]], v_leak=10, v_threshold=1022, v_reset=0, c_mem=0, gain_inh=1022,
              readout=True)
    assert trace(g, [[1], [0]])[1] == [[640, 0]]  # lower rail


def test_bias_and_delay():
    g = graph(exc=[[[1]]], delay=2, v_leak=0, v_threshold=1022, v_reset=0, c_mem=0, bias=-5,
              readout=True, gain_exc=100)
    # bias -5 per step at the lower rail stays 0; the input of t0 arrives at t2
    assert trace(g, [[1], [0], [0], [0]])[1] == [[0, 0, 95, 90]]


# ---- a sequential reference ------------------------------------------------------------------
def spread_ref(code, nid, seed, sigma, k):
    total = 0
    for q in range(3):
        h = int(bss.counter_hash(seed, nid, bss.FPN_DOMAIN, 3 * k + q))
        total += sum((h >> (16 * r)) & 0xFFFF for r in range(4))
    z = total / 65536.0 - 6.0
    return min(max(code + round(sigma * z), 0), 1022)


def sequential(exc, inh, params, x, id_base=0, sigma=0.0, seed=0):
    """Step by step, neuron by neuron, with Python integers; delay 1."""
    n = exc.shape[1]
    p = [{k: int(np.broadcast_to(v, (n,))[j]) for k, v in params.items()} for j in range(n)]
    if sigma:
        for j in range(n):
            for k, f in enumerate(bss.SPREAD_PARAMS):
                p[j][f] = spread_ref(p[j][f], id_base + j, seed, sigma, k)

    def dec(val, c):
        q = val * (1022 - c)
        return (abs(q) // 1022) * (1 if q >= 0 else -1)

    v = [pj["v_leak"] * 64 for pj in p]
    ie, ii, ref = [0] * n, [0] * n, [0] * n
    prev = np.zeros(exc.shape[2], bool)
    out = []
    for t in range(len(x)):
        row = []
        for j in range(n):
            pj = p[j]
            e = int(exc.sum(axis=0)[j][prev].sum())
            i = int(inh.sum(axis=0)[j][prev].sum())
            ie[j] = min(65535, dec(ie[j], pj["c_syn_exc"]) + pj["gain_exc"] * e)
            ii[j] = min(65535, dec(ii[j], pj["c_syn_inh"]) + pj["gain_inh"] * i)
            if ref[j] > 0:
                ref[j] -= 1
                v[j] = pj["v_reset"] * 64
                row.append(0)
                continue
            vl = pj["v_leak"] * 64
            vj = vl + dec(v[j] - vl, pj["c_mem"]) + ie[j] - ii[j] + pj["bias"]
            vj = min(max(vj, 0), 65535)
            s = int(vj >= pj["v_threshold"] * 64)
            if s:
                vj = pj["v_reset"] * 64
                ref[j] = pj["refractory"] << pj["refractory_clock"]
            v[j] = vj
            row.append(s)
        out.append((row, list(v), list(ie), list(ii)))
        prev = np.asarray(x[t], bool)
    return out


def random_case(seed):
    rng = np.random.default_rng(seed)
    n, n_in = 6, 8
    exc = rng.integers(0, 64, (2, n, n_in)) * (rng.random((2, n, n_in)) < 0.5)
    inh = rng.integers(0, 64, (1, n, n_in)) * (rng.random((1, n, n_in)) < 0.4)
    params = dict(
        v_leak=rng.integers(200, 400, n), v_threshold=rng.integers(420, 700, n),
        v_reset=rng.integers(100, 300, n), c_mem=rng.integers(0, 200, n),
        c_syn_exc=rng.integers(100, 1023, n), c_syn_inh=rng.integers(100, 1023, n),
        gain_exc=rng.integers(1, 40, n), gain_inh=rng.integers(1, 40, n),
        bias=rng.integers(-100, 101, n), refractory=rng.integers(0, 4, n),
        refractory_clock=rng.integers(0, 3, n),
    )
    x = rng.random((60, n_in)) < 0.4
    b = GraphBuilder("t", stage=Stage.QUANTIZED, attrs={"target": "brainscales2"})
    b.add(Input(name="x", shape=(n_in,)))
    b.add(BSS2Synapses(name="c", in_features=n_in, out_features=n,
                       exc=b.const("e", exc.astype(np.uint8)),
                       inh=b.const("i", inh.astype(np.uint8))), "x")
    b.add(BSS2Neuron(name="n", shape=(n,), id_base=7 * seed,
                     **{k: b.const(k, v.astype(np.int32)) for k, v in params.items()}), "c")
    b.add(Output(name="y", shape=(n,)), "n")
    return b.build(), exc, inh, params, x


@pytest.mark.parametrize("seed", range(4))
def test_vectorised_kernel_equals_sequential_reference(seed):
    g, exc, inh, params, x = random_case(seed)
    assert problems(g) == []
    r = run_int(g, x[None], probes=["n"])
    ref = sequential(exc, inh, params, x)
    assert r.outputs["y"][0].astype(int).tolist() == [row for row, _, _, _ in ref]
    assert r.probes["n"]["v"][0].tolist() == [v for _, v, _, _ in ref]
    assert r.probes["n"]["i_exc"][0].tolist() == [e for _, _, e, _ in ref]
    assert r.probes["n"]["i_inh"][0].tolist() == [i for _, _, _, i in ref]
    assert sum(map(sum, (row for row, _, _, _ in ref))) > 0


# ---- fixed-pattern noise ---------------------------------------------------------------------
def test_spread_codes_golden_and_reference():
    codes = np.full(6, 500)
    assert bss.spread_codes(codes, np.arange(6), 0, 4.0, 0).tolist() == [504, 497, 495, 504, 497,
                                                                         504]
    assert bss.spread_codes(codes, np.arange(6), 0, 4.0, 1).tolist() == [502, 498, 506, 498, 500,
                                                                         493]
    # clipped to 0..1022
    assert bss.spread_codes(np.array([0, 1022, 3, 1020]), np.arange(4), 3, 10.0, 2).tolist() == \
        [0, 1012, 16, 1022]
    assert [spread_ref(500, k, 0, 4.0, 0) for k in range(6)] == [504, 497, 495, 504, 497, 504]


def test_spread_statistics():
    d = bss.spread_codes(np.full(20000, 500), np.arange(20000), 5, 4.0, 0) - 500
    assert abs(d.std() - 4.0) < 0.15 and abs(d.mean()) < 0.1


@pytest.mark.parametrize("seed", range(2))
def test_spread_kernel_reproducible_and_equal_to_reference(seed):
    g, exc, inh, params, x = random_case(10 + seed)
    run1 = run(g, x[None], kernels={**_integer_kernels(), **bss.spread_kernels(6.0, seed=3)},
               probes=["n"])
    run2 = run(g, x[None], kernels={**_integer_kernels(), **bss.spread_kernels(6.0, seed=3)},
               probes=["n"])
    other = run(g, x[None], kernels={**_integer_kernels(), **bss.spread_kernels(6.0, seed=4)},
                probes=["n"])
    ideal = run_int(g, x[None], probes=["n"])
    zero = run(g, x[None], kernels={**_integer_kernels(), **bss.spread_kernels(0.0, seed=3)},
               probes=["n"])
    v1 = run1.probes["n"]["v"]
    assert np.array_equal(v1, run2.probes["n"]["v"])
    assert not np.array_equal(v1, other.probes["n"]["v"])
    assert not np.array_equal(v1, ideal.probes["n"]["v"])
    assert np.array_equal(zero.probes["n"]["v"], ideal.probes["n"]["v"])
    ref = sequential(exc, inh, params, x, id_base=7 * (10 + seed), sigma=6.0, seed=3)
    assert v1[0].tolist() == [v for _, v, _, _ in ref]


def test_spread_sigma_must_be_valid():
    with pytest.raises(IRError, match=r"^fixed-pattern noise sigma = -1\.0 must be a finite "
                                      r"number >= 0 \(codes\)$"):
        bss.spread_kernels(-1.0)


# ---- node and verifier rules -----------------------------------------------------------------
def test_field_ranges_are_checked_on_construction():
    with pytest.raises(IRError, match=r"^BSS2Neuron n: field v_threshold = 1023 is above the "
                                      r"maximum 1022$"):
        BSS2Neuron(name="n", shape=(1,), v_leak=0, v_threshold=1023, v_reset=0, c_mem=0)
    with pytest.raises(IRError, match=r"^BSS2Synapses c: needs exc or inh weights \(or both\)$"):
        BSS2Synapses(name="c", in_features=1, out_features=1)


def test_verifier_rules():
    b = GraphBuilder("t", stage=Stage.QUANTIZED, attrs={"target": "brainscales2"})
    b.add(Input(name="x", shape=(2,)))
    b.add(BSS2Synapses(name="c", in_features=2, out_features=3,
                       exc=b.const("e", np.full((1, 3, 2), 64, np.uint8)),
                       inh=b.const("i", np.zeros((3, 2), np.uint8))), "x")
    b.add(BSS2Neuron(name="n", shape=(3,), v_leak=0, v_threshold=5, v_reset=0, c_mem=0,
                     readout=True), "c")
    b.add(BSS2Synapses(name="d", in_features=3, out_features=3,
                       exc=b.const("f", np.ones((1, 3, 3), np.uint8))), "n")
    b.add(BSS2Neuron(name="m", shape=(3,), v_leak=0, v_threshold=5, v_reset=0, c_mem=0), "d")
    b.add(Input(name="z", shape=(3,)))
    b.connect("z", "m")
    b.add(Output(name="y", shape=(3,)), "m")
    got = problems(b.build())
    assert got == [
        "BSS2Synapses c: exc @e holds weight 64, outside the 6-bit range 0..63; realise larger "
        "weights with parallel synapses",
        "BSS2Synapses c: inh @i has shape [3, 2]; expected [m, 3, 2] (parallel synapses, out, in) "
        "with m >= 1",
        "BSS2Synapses d: source n is a readout (it outputs its membrane, not spikes); feed synapses "
        "from spiking populations only",
        "BSS2Neuron m: input z is a Input; a BrainScaleS-2 neuron is fed only by BSS2Synapses "
        "nodes (quantize the graph for brainscales2)",
    ]
