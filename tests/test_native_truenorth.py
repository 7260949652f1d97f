"""TrueNorth native kinds: exact integer kernels, the counter-based PRNG, verifier rules.

Hand-computed traces cover each parameter path (reset modes, kappa, leak reversal, overflow);
stochastic paths are checked against a sequential re-implementation of hardware.md 1.2 written
here (axons in order, one draw counter per type), which must give identical draws and results.
"""

from __future__ import annotations

import numpy as np
import pytest

from ir.errors import IRError
from ir.graph import GraphBuilder, Stage
from ir.interp_int import run_int
from ir.native import truenorth as tn
from ir.native.truenorth import TrueNorthCrossbar, TrueNorthNeuron
from ir.nodes import Input, Output
from ir.verify import problems


def one_neuron_graph(crossbar, types, copies=1, delay=1, **params) -> object:
    """x (inputs) -> crossbar -> one population (shape = crossbar rows) -> y."""
    cb = np.asarray(crossbar, bool)
    n_out, n_ax = cb.shape
    b = GraphBuilder("t", stage=Stage.QUANTIZED, attrs={"target": "truenorth"})
    b.add(Input(name="x", shape=(n_ax // copies,)))
    b.add(TrueNorthCrossbar(name="c", in_features=n_ax // copies, out_features=n_out,
                            copies=copies, crossbar=b.const("cb", cb),
                            axon_types=b.const("ty", np.asarray(types, np.int8)), delay=delay),
          "x")
    b.add(TrueNorthNeuron(name="n", shape=(n_out,), **params), "c")
    b.add(Output(name="y", shape=(n_out,)), "n")
    return b.build()


def trace(g, x):
    r = run_int(g, np.asarray(x)[None], probes=["n"])
    return r.outputs["y"][0].astype(int).T.tolist(), r.probes["n"]["v"][0].T.tolist()


# ---- hand-computed traces --------------------------------------------------------------------
def test_reset_to_value_integration_by_type_and_delay():
    # Source 0 on type 0 (s0 = 3), source 1 on type 1 (s1 = -1); leak +1; alpha 5; reset to R=1.
    g = one_neuron_graph([[1, 1]], [0, 1], s0=3, s1=-1, leak=1, alpha=5, gamma=0, v_reset=1)
    x = [[1, 0], [1, 0], [1, 1], [0, 0], [0, 1]]
    # t0: 0 + 1 = 1 | t1: +3 (x0) +1 = 5 -> spike, V=1 | t2: +3 +1 = 5 -> spike, 1
    # t3: +3 -1 +1 = 4 | t4: 4 + 1 = 5 -> spike, 1  (inputs arrive one tick late: delay 1)
    assert trace(g, x) == ([[0, 1, 1, 0, 1]], [[1, 1, 1, 4, 1]])


def test_linear_reset_subtracts_threshold_and_no_reset_keeps_v():
    g = one_neuron_graph([[1]], [0], s0=4, alpha=3, gamma=1)
    # V: 4 -> spike -> 1 | 5 -> spike -> 2 | 6 -> spike -> 3 ; no input at t0 (delay)
    assert trace(g, [[1]] * 4) == ([[0, 1, 1, 1]], [[0, 1, 2, 3]])
    g = one_neuron_graph([[1]], [0], s0=4, alpha=3, gamma=2)
    assert trace(g, [[1]] * 4) == ([[0, 1, 1, 1]], [[0, 4, 8, 12]])


def test_delay_of_three_ticks():
    g = one_neuron_graph([[1]], [0], delay=3, s0=1, alpha=1, gamma=0)
    assert trace(g, [[1], [0], [0], [0], [0]]) == ([[0, 0, 0, 1, 0]], [[0] * 5])


def test_negative_threshold_with_kappa_saturates_at_minus_beta():
    g = one_neuron_graph([[1]], [0], s0=-3, alpha=100, beta=5, kappa=1, gamma=1)
    # -3, -6 < -5 -> -5, -8 -> -5
    assert trace(g, [[1]] * 4)[1] == [[0, -3, -5, -5]]


@pytest.mark.parametrize("gamma, want", [
    (0, [0, -3, 2, -1, -4]),  # below -beta: V = -R = 2
    (1, [0, -3, -1, -4, -2]),  # below -beta: V + beta
    (2, [0, -3, -6, -9, -12]),  # no negative reset
])
def test_negative_reset_modes_without_kappa(gamma, want):
    g = one_neuron_graph([[1]], [0], s0=-3, alpha=100, beta=5, kappa=0, gamma=gamma, v_reset=-2)
    assert trace(g, [[1]] * 5)[1] == [want]


def test_leak_reversal_leaks_toward_zero_from_both_sides():
    # epsilon = 1, lambda = -2: V moves toward 0 by 2 per tick (omega = sign(V) after
    # integration), so it overshoots 0 and then oscillates around it (1, -1, 1, ...).
    g = one_neuron_graph([[1, 1]], [0, 1], s0=7, s1=-7, leak=-2, leak_rev=1, alpha=100,
                         beta=100)
    x = [[1, 0], [0, 0], [0, 0], [0, 0], [0, 0], [0, 1], [0, 0]]
    assert trace(g, x)[1] == [[0, 5, 3, 1, -1, 1, -4]]
    # epsilon = 0: the same leak pulls down on both sides.
    g = one_neuron_graph([[1]], [0], s0=7, leak=-2, alpha=100, beta=100)
    assert trace(g, [[1], [0], [0], [0], [0], [0]])[1] == [[-2, 3, 1, -1, -3, -5]]


def test_eedn_memoryless_binary_neuron():
    # s = (-1, +1), lambda = bias = -1, alpha 1, beta 0, kappa 1, gamma 0, R 0: y = [sum - 1 >= 1]
    g = one_neuron_graph([[0, 1, 0, 1, 1, 0]], [0, 1, 0, 1, 0, 1], copies=2, s0=-1, s1=1,
                         leak=-1, alpha=1, beta=0, kappa=1, gamma=0, v_reset=0)
    x = [[1, 1, 0], [1, 1, 1], [1, 0, 1], [0, 0, 0], [1, 1, 0]]
    # inputs x0, x1 count +1 (copy 1, type 1); x2 counts -1 (copy 0, type 0)
    spikes, v = trace(g, x)
    sums = [0] + [r[0] + r[1] - r[2] for r in x[:-1]]
    assert spikes == [[int(s - 1 >= 1) for s in sums]]
    assert v == [[0] * 5]  # memoryless: V is 0 after every tick


@pytest.mark.parametrize("policy, want", [
    ("saturate", [0, 6, 7, 7, -6]),
    ("wrap", [0, 6, -4, 2, 5]),
])
def test_membrane_overflow_policies(policy, want):
    # 4-bit membrane: range -8..7. Input +6, +6, +6, then -13 (s1).
    g = one_neuron_graph([[1, 1]], [0, 1], s0=6, s1=-13, alpha=2**17, beta=2**17, v_bits=4,
                         overflow=policy)
    x = [[1, 0], [1, 0], [1, 0], [0, 1], [0, 0]]
    spikes, v = trace(g, x)
    assert v == [want]


def test_overflow_counter():
    g = one_neuron_graph([[1]], [0], s0=6, alpha=2**17, v_bits=4)
    from ir.interp import run
    from ir.interp_int import _integer_kernels

    ks = _integer_kernels()
    seen = {}

    class Spy(ks["TrueNorthNeuron"]):
        def step(self, x):
            y = super().step(x)
            seen["over"] = self.overflows.copy()
            return y

    run(g, np.ones((1, 5, 1)), kernels={**ks, "TrueNorthNeuron": Spy})
    assert seen["over"].tolist() == [[3]]  # V + 6 exceeds 7 in ticks 2, 3 and 4


# ---- PRNG ------------------------------------------------------------------------------------
def test_prng_golden_values():
    # Pinned: the emulator re-implements this hash and must agree bit for bit.
    assert int(tn.counter_hash(0, 0, 0, 0)) == 2391539541053276776
    assert int(tn.counter_hash(1, 2, 3, 4)) == 15374388949593934587
    assert tn.prn8(0, np.arange(5), 0, 0).tolist() == [104, 55, 163, 204, 199]
    assert tn.threshold_offset(0, np.arange(4), 1, [0, 1, 4, 18]).tolist() == [0, 1, 0, 151889]


def test_prng_is_order_and_layout_independent():
    nid = np.arange(50).reshape(5, 10)
    draw = (nid * 7) % 13
    whole = tn.prn64(7, nid, 3, draw)
    one_by_one = np.array([[int(tn.prn64(7, int(nid[i, j]), 3, int(draw[i, j])))
                            for j in range(10)] for i in range(5)], dtype=np.uint64)
    assert np.array_equal(whole, one_by_one)
    assert np.array_equal(tn.prn64(7, nid[::-1], 3, 1), tn.prn64(7, nid, 3, 1)[::-1])


# ---- a sequential reference (hardware.md 1.2, literally) -------------------------------------
def sequential(crossbar, types, copies, params, x, seed, id_base, v_bits, overflow):
    """Tick by tick, neuron by neuron, axon by axon; scalar PRNG calls; delay 1."""
    n, n_ax = crossbar.shape
    t_len = len(x)
    v = [0] * n
    spikes, vs = [], []
    prev = np.zeros(n_ax // copies, bool)
    for t in range(t_len):
        axons = np.repeat(prev, copies)
        out = []
        for j in range(n):
            p = {k: int(np.broadcast_to(val, (n,))[j]) for k, val in params.items()}
            s = [p["s0"], p["s1"], p["s2"], p["s3"]]
            nid = id_base + j
            vj = v[j]
            k_of_type = [0, 0, 0, 0]
            for i in range(n_ax):  # integration in axon order
                if axons[i] and crossbar[j, i]:
                    gi = int(types[i])
                    if not (p["stoch_syn"] >> gi) & 1:
                        vj += s[gi]
                    else:
                        draw = tn.DRAW_SYNAPSE + 4 * k_of_type[gi] + gi
                        k_of_type[gi] += 1
                        if abs(s[gi]) >= int(tn.prn8(seed, nid, t, draw)):
                            vj += int(np.sign(s[gi]))
            omega = 1 if not p["leak_rev"] else int(np.sign(vj))
            lam = p["leak"]
            if not p["stoch_leak"]:
                vj += omega * lam
            elif abs(lam) >= int(tn.prn8(seed, nid, t, tn.DRAW_LEAK)):
                vj += omega * int(np.sign(lam))
            eta = int(tn.prn64(seed, nid, t, tn.DRAW_THRESHOLD)) & ((1 << p["tm"]) - 1)
            a, bta, kap, gam, r = p["alpha"], p["beta"], p["kappa"], p["gamma"], p["v_reset"]
            spike = 0
            if vj >= a + eta:
                spike = 1
                vj = {0: r, 1: vj - (a + eta), 2: vj}[gam]
            elif vj < -(bta * kap + (bta + eta) * (1 - kap)):
                vj = -bta if kap else {0: -r, 1: vj + (bta + eta), 2: vj}[gam]
            lo, hi = -(1 << (v_bits - 1)), (1 << (v_bits - 1)) - 1
            if overflow == "saturate":
                vj = min(max(vj, lo), hi)
            else:
                vj = ((vj - lo) % (1 << v_bits)) + lo
            v[j] = vj
            out.append(spike)
        spikes.append(out)
        vs.append(list(v))
        prev = np.asarray(x[t], bool)
    return spikes, vs


@pytest.mark.parametrize("case", range(6))
def test_vectorised_kernel_equals_sequential_reference(case):
    rng = np.random.default_rng(100 + case)
    n, n_in, copies = 7, 9, [1, 2, 4, 2, 4, 1][case]
    n_ax = n_in * copies
    crossbar = rng.random((n, n_ax)) < 0.6
    types = rng.integers(0, 4, n_ax)
    params = dict(
        s0=rng.integers(-255, 256, n), s1=rng.integers(-255, 256, n),
        s2=rng.integers(-40, 41, n), s3=rng.integers(-255, 256, n),
        stoch_syn=rng.integers(0, 16, n), leak=rng.integers(-60, 61, n),
        leak_rev=rng.integers(0, 2, n), stoch_leak=rng.integers(0, 2, n),
        alpha=rng.integers(1, 400, n), beta=rng.integers(0, 400, n), tm=rng.integers(0, 9, n),
        gamma=rng.integers(0, 3, n), kappa=rng.integers(0, 2, n),
        v_reset=rng.integers(-50, 51, n),
    )
    v_bits, overflow = [(20, "saturate"), (10, "wrap"), (10, "saturate"), (20, "wrap"),
                        (11, "wrap"), (12, "saturate")][case]
    seed, id_base = 11 * case + 1, 1000 * case
    x = rng.random((40, n_in)) < 0.5
    b = GraphBuilder("t", stage=Stage.QUANTIZED, attrs={"target": "truenorth"})
    b.add(Input(name="x", shape=(n_in,)))
    b.add(TrueNorthCrossbar(name="c", in_features=n_in, out_features=n, copies=copies,
                            crossbar=b.const("cb", crossbar), axon_types=b.const("ty", types)),
          "x")
    b.add(TrueNorthNeuron(name="n", shape=(n,), v_bits=v_bits, overflow=overflow, seed=seed,
                          id_base=id_base,
                          **{k: b.const(k, v.astype(np.int32)) for k, v in params.items()}), "c")
    b.add(Output(name="y", shape=(n,)), "n")
    g = b.build()
    assert problems(g) == []
    # A batch of two identical samples: draws do not depend on the batch index.
    r = run_int(g, np.stack([x, x]), probes=["n"])
    spikes, vs = sequential(crossbar, types, copies, params, x, seed, id_base, v_bits, overflow)
    assert r.outputs["y"][0].astype(int).tolist() == spikes
    assert r.probes["n"]["v"][0].tolist() == vs
    assert np.array_equal(r.outputs["y"][0], r.outputs["y"][1])
    assert sum(map(sum, spikes)) > 0


def test_stochastic_synapse_rate_matches_weight():
    # |s| >= prn8 holds with probability (|s| + 1) / 256 per active synapse.
    n = 400
    g = one_neuron_graph(np.ones((n, 1), bool), [0], s0=63, stoch_syn=1, alpha=2**17,
                         beta=2**17)
    x = np.ones((201, 1))
    v = run_int(g, x[None], probes=["n"]).probes["n"]["v"][0, -1]
    assert abs(v.mean() / 200 - 64 / 256) < 0.01


# ---- node and verifier rules -----------------------------------------------------------------
def test_field_ranges_are_checked_on_construction():
    with pytest.raises(IRError, match=r"^TrueNorthNeuron n: field s0 = 256 is above the maximum "
                                      r"255$"):
        TrueNorthNeuron(name="n", shape=(1,), s0=256, alpha=1)
    with pytest.raises(IRError, match=r"^TrueNorthNeuron n: field gamma = 3 is above the maximum "
                                      r"2$"):
        TrueNorthNeuron(name="n", shape=(1,), alpha=1, gamma=3)
    with pytest.raises(IRError, match=r"^TrueNorthCrossbar c: field delay = 16 is above the "
                                      r"maximum 15$"):
        TrueNorthCrossbar(name="c", in_features=1, out_features=1, crossbar=tn.Ref("a"),
                          axon_types=tn.Ref("b"), delay=16)


def test_verifier_rules():
    b = GraphBuilder("t", stage=Stage.QUANTIZED, attrs={"target": "truenorth"})
    b.add(Input(name="x", shape=(2,)))
    b.add(TrueNorthCrossbar(name="c", in_features=2, out_features=3, copies=2,
                            crossbar=b.const("cb", np.ones((3, 3), bool)),
                            axon_types=b.const("ty", np.array([0, 1, 4, 0]))), "x")
    b.add(TrueNorthNeuron(name="n", shape=(3,), alpha=40000, v_bits=16, tm=1), "c")
    b.add(TrueNorthNeuron(name="m", shape=(2,), alpha=1, stoch_leak=1, id_base=2), "x")
    b.add(Output(name="y", shape=(3,)), "n")
    got = problems(b.build())
    assert got == [
        "TrueNorthCrossbar c: crossbar @cb has shape [3, 3]; expected [3, 4] (out, in * copies)",
        "TrueNorthCrossbar c: axon_types @ty must hold integers 0..3",
        "TrueNorthNeuron n: |alpha| = 40000 does not fit the 16-bit membrane (max 32767); "
        "lower it or widen v_bits",
        "TrueNorthNeuron n: neuron ids 0..2 overlap those of m (2..3) with the same PRNG seed 0; "
        "their random draws would be identical: give them disjoint id_base ranges",
        "TrueNorthNeuron m: input x is a Input; a TrueNorth neuron is fed only by "
        "TrueNorthCrossbar nodes (quantize the graph for truenorth)",
    ]
