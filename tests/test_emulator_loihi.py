"""The Loihi datapath: emulator vs the integer reference interpreter, bit for bit, tick for tick.

* seeded random native graphs (ir.random_graphs.random_loihi_graph), compiled by the real passes
  for loihi-mini, written, loaded and run in fast and cycle mode; every output port and every
  population's u, v and spikes equal ``ir.interp_int.run_int``;
* cycle mode visiting the cores in a shuffled order gives the same results;
* Lava's bit-accurate LIF and Dense vectors (../shared/conformance) through the whole chain;
* overflow policies, strict mode, inputs (arrays, events, .npz), encoders, energy, CLI.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from test_image import GOLDEN_PROFILE, compiled, two_core_graph

import emulator
from emulator.errors import InputError, StateOverflowError
from emulator.runner import Events
from ir.graph import GraphBuilder, Stage
from ir.interp_int import run_int
from ir.native.loihi import LoihiCompartment, LoihiDense, legalize_weights
from ir.nodes import Input, Output
from nmc.backend.writer import write_image

SEEDS = list(range(24))




@pytest.fixture(scope="module")
def corpus():
    """(seed, graph, chip) for every seed that compiles for loihi-mini."""
    out = []
    for seed in SEEDS:
        res = compiled(seed)
        if res is not None:
            out.append((seed, res[0], emulator.load(res[1])))
    assert len(out) >= 18
    return out


def inputs_for(g, seed: int, batch: int = 2, ticks: int = 25, rate: float = 0.2):
    rng = np.random.default_rng([seed, 7])
    return {n.name: rng.random((batch, ticks, *n.out_shape)) < rate for n in g.inputs}


def assert_same(g, chip, ins, mode: str, **kw):
    pops = [n.name for n in g.nodes.values() if n.category == "neuron"]
    ref = run_int(g, ins, probes=pops)
    res = chip.run(ins, mode=mode, probes=pops, **kw)
    for o in ref.outputs:
        want = np.asarray(ref.outputs[o])
        got = res.outputs[o]
        assert np.array_equal(want.reshape(got.shape), got), f"output {o} ({mode})"
    for p in pops:
        B, T = res.batch, res.ticks
        for var, rvar in (("u", "u"), ("v", "v"), ("spikes", "out")):
            want = np.asarray(ref.probes[p][rvar]).reshape(B, T, -1)
            if var == "spikes" and g.nodes[p].readout:
                continue
            assert np.array_equal(want.astype(res.probes[p][var].dtype), res.probes[p][var]), \
                f"{p}.{var} ({mode})"
    return res


def test_fast_mode_matches_reference_on_random_graphs(corpus):
    for seed, g, chip in corpus:
        assert_same(g, chip, inputs_for(g, seed), "fast")


@pytest.mark.slow
@pytest.mark.usefixtures("_only_when_asked")
@pytest.mark.parametrize("block", range(10))
def test_fast_and_cycle_match_reference_on_many_random_graphs(block):
    for seed in range(100 + 25 * block, 125 + 25 * block):
        res = compiled(seed)
        if res is None:
            continue
        g, img = res
        chip = emulator.load(img)
        for mode in ("fast", "cycle"):
            assert_same(g, chip, inputs_for(g, seed, ticks=20), mode)


def test_cycle_mode_matches_reference_on_random_graphs(corpus):
    small = sorted(corpus, key=lambda c: c[2].n_synapses)[:12]
    for seed, g, chip in small:
        assert_same(g, chip, inputs_for(g, seed, ticks=15), "cycle")


def test_batch_of_many_samples_and_threads(corpus):
    seed, g, chip = max(corpus, key=lambda c: c[2].n_neurons)
    ins = inputs_for(g, seed, batch=9, ticks=12, rate=0.3)
    a = assert_same(g, chip, ins, "fast", threads=2)
    b = chip.run(ins, mode="fast", threads=1)
    for o in a.outputs:
        assert np.array_equal(a.outputs[o], b.outputs[o])


def test_visiting_cores_in_shuffled_order_changes_nothing(corpus):
    seed, g, chip = max((c for c in corpus if len(c[2].cores) <= 40),
                        key=lambda c: len(c[2].cores))
    assert len(chip.cores) > 3
    ins = inputs_for(g, seed, ticks=12)
    base = chip.run(ins, mode="cycle")
    for k in range(3):
        r = chip.run(ins, mode="cycle", visit_order="shuffle", seed=k)
        for o in base.outputs:
            assert np.array_equal(base.outputs[o], r.outputs[o])
        assert r.stats["counters"] == base.stats["counters"]
    rev = list(range(len(chip.cores)))[::-1]
    r = chip.run(ins, mode="cycle", visit_order=rev)
    assert all(np.array_equal(base.outputs[o], r.outputs[o]) for o in base.outputs)


def test_two_core_graph_with_delay_refractory_bias_readout():
    g = two_core_graph()
    chip = emulator.load(write_image(g, GOLDEN_PROFILE))
    rng = np.random.default_rng(5)
    ins = {"x": rng.random((3, 40, 4)) < 0.5}
    for mode in ("fast", "cycle"):
        res = assert_same(g, chip, ins, mode)
        assert res.outputs["val"].dtype == np.int64
        assert res.outputs["out"].any()
    # refractory 2: h never spikes on two consecutive... within 2 ticks of a spike
    h = res.probes["h"]["spikes"]
    for b in range(3):
        for n in range(3):
            t = np.flatnonzero(h[b, :, n])
            assert np.all(np.diff(t) >= 3)


def test_counters_equal_in_both_modes(corpus):
    for seed, g, chip in sorted(corpus, key=lambda c: c[2].n_synapses)[5:10]:
        ins = inputs_for(g, seed, ticks=10)
        a = chip.run(ins, mode="fast").stats["counters"]
        b = chip.run(ins, mode="cycle").stats["counters"]
        for k in ("synaptic_ops", "spikes", "input_events", "packets", "hops_ew", "hops_ns",
                  "updates_active", "updates_idle", "idle_core_ticks", "core_ticks", "overflows"):
            assert a[k] == b[k], (seed, k)


def test_energy_is_the_documented_sum(corpus):
    seed, g, chip = corpus[3]
    res = chip.run(inputs_for(g, seed), mode="fast")
    c, P = res.stats["counters"], chip.params
    B, T = res.batch, res.ticks
    want = (c["synaptic_ops"] * P["energy.sop"] + c["spikes"] * P["energy.spike"]
            + c["hops_ew"] * P["energy.hop_ew"] + c["hops_ns"] * P["energy.hop_ns"]
            + c["updates_active"] * P["energy.update_active"]
            + c["updates_idle"] * P["energy.update_idle"]
            + P["energy.static_watts"] * T * P["chip.tick_seconds"] / P["chip.speedup"]
            * chip.n_chips * B)
    e = res.stats["energy"]
    assert e["total_joules"] == pytest.approx(want, rel=1e-12)
    assert e["coefficients"]["energy.sop"]["source"].startswith("paper: Davies 2018")
    assert res.stats["chip_time"]["seconds_per_sample"] == pytest.approx(T * 1e-3)
    assert c["updates_active"] + c["updates_idle"] == B * T * chip.n_neurons


# ------------------------------------------------------------------------------------------
# Lava conformance vectors through the whole chain
# ------------------------------------------------------------------------------------------
def single_neuron_chain(n_in: int, n_out: int, w, *, du, dv, vth, bias_mant=0, bias_exp=0,
                        sign_mode="mixed", nwb=8, weight_exp=0):
    """Input -> LoihiDense -> LoihiCompartment -> Output, compiled by the real passes."""
    from nmc.passes.flow import compile_graph

    b = GraphBuilder("lava", stage=Stage.QUANTIZED, attrs={"target": "loihi"})
    b.add(Input(name="x", shape=(n_in,)))
    # the compile chain stores legal weights (quantize legalises them; here: Lava's own rule)
    legal = legalize_weights(np.asarray(w, np.float64).reshape(n_out, n_in), sign_mode, nwb)
    b.add(LoihiDense(name="syn", in_features=n_in, out_features=n_out, weight=b.const("w", legal),
                     sign_mode=sign_mode, num_weight_bits=nwb, weight_exp=weight_exp), "x")
    b.add(LoihiCompartment(name="lif", shape=(n_out,), du=du, dv=dv, vth_mant=vth,
                           bias_mant=bias_mant, bias_exp=bias_exp), "syn")
    b.add(Output(name="out", shape=(n_out,)), "lif")
    g = compile_graph(b.build(), "loihi").graph
    return emulator.load(write_image(g, "loihi"))


def test_lava_lif_vectors(conformance):
    cases = json.loads((conformance / "lava_lif_vectors.json").read_text())["lif"]
    assert len(cases) == 4
    for case in cases:
        vth = min(case["vth"], 2**17 - 1)
        steps = case["steps"]
        impulse = isinstance(case["a_in"], dict)
        w = int(case["a_in"]["0"]) if impulse else 0
        chip = single_neuron_chain(1, 1, [[w]], du=case["du"], dv=case["dv"], vth=vth,
                                   bias_mant=case["bias_mant"], bias_exp=case["bias_exp"])
        # a_in at step 0 needs the input spike one step earlier: shift the chip's time by one
        shift = 1 if impulse else 0
        x = np.zeros((steps + shift, 1), bool)
        if impulse:
            x[0, 0] = True
        for mode in ("fast", "cycle"):
            res = chip.run(x, mode=mode, probes=["lif"])
            u = res.probes["lif"]["u"][0, shift:, 0]
            v = res.probes["lif"]["v"][0, shift:, 0]
            s = res.outputs["out"][0, shift:, 0]
            if "expect_u" in case:
                assert u.tolist() == case["expect_u"], case["name"]
            if "expect_v" in case:
                assert v.tolist() == case["expect_v"], case["name"]
            if "expect_spike_steps" in case:
                assert np.flatnonzero(s).tolist() == case["expect_spike_steps"], case["name"]


def test_lava_dense_vectors(conformance):
    doc = json.loads((conformance / "lava_lif_vectors.json").read_text())["dense"]
    for case in doc["cases"]:
        if "weights_col" in case:
            w = np.asarray(case["weights_col"], np.float64).reshape(-1, 1)
            n_in, n_out = 1, w.shape[0]
        else:
            w = np.asarray(case["weights_row"], np.float64).reshape(1, -1)
            n_in, n_out = w.shape[1], 1
        # du = 4095 clears u every step, so u = a << 6 shows the synapse output exactly
        chip = single_neuron_chain(n_in, n_out, w, du=4095, dv=0, vth=2**17 - 1,
                                   sign_mode=case["sign_mode"], nwb=case["num_weight_bits"],
                                   weight_exp=case["weight_exp"])
        x = np.zeros((6, n_in), bool)
        x[3] = True
        res = chip.run(x, mode="fast", probes=["lif"])
        assert res.probes["lif"]["u"].shape == (1, 6, n_out)
        a = res.probes["lif"]["u"][0, :, :] >> 6
        assert not a[:4].any() and not a[5:].any(), case["name"]
        if "expect_a_out" in case:
            assert a[4].tolist() == case["expect_a_out"], case["name"]
        else:
            assert int(a[4, 0]) == case["expect_a_out_sum"], case["name"]


# ------------------------------------------------------------------------------------------
# Overflow
# ------------------------------------------------------------------------------------------
def overflow_chip():
    from nmc.passes.flow import compile_graph

    b = GraphBuilder("ovf", stage=Stage.QUANTIZED, attrs={"target": "loihi-mini"})
    b.add(Input(name="x", shape=(4,)))
    b.add(LoihiDense(name="syn", in_features=4, out_features=2,
                     weight=b.const("w", np.array([[254, 254, 254, 254], [2, 0, 0, 0]])),
                     weight_exp=7), "x")
    b.add(LoihiCompartment(name="lif", shape=(2,), du=0, dv=0, vth_mant=2**17 - 1), "syn")
    b.add(Output(name="out", shape=(2,)), "lif")
    g = compile_graph(b.build(), "loihi-mini").graph
    return g, emulator.load(write_image(g, "loihi-mini"))


def test_overflow_counted_like_the_reference_and_strict_raises():
    g, chip = overflow_chip()
    x = np.ones((6, 4), bool)
    ref = run_int(g, x, probes=["lif"])
    for mode in ("fast", "cycle"):
        res = chip.run(x, mode=mode, probes=["lif"])
        assert np.array_equal(res.probes["lif"]["u"][0], ref.probes["lif"]["u"][0])
        assert np.array_equal(res.probes["lif"]["v"][0], ref.probes["lif"]["v"][0])
        ovf = res.stats["counters"]["overflows"]
        assert ovf["u"] == int(np.asarray(ref.probes["lif"]["u_wraps"])[0, -1].sum())
        assert ovf["v"] == int(np.asarray(ref.probes["lif"]["v_saturations"])[0, -1].sum())
        assert ovf["u"] > 0 and ovf["v"] > 0
        with pytest.raises(StateOverflowError, match=r"^tick 2 sample 0: register u of core 0 "
                           r"compartment 0 \(population lif\[0\]\) reached 16644112, outside "
                           r"-8388607\.\.8388608 \(widths\.u = 24, policy wrap\); a strict run "
                           r"stops at the first overflow \(run without strict to count them\)$"):
            chip.run(x, mode=mode, strict=True)


# ------------------------------------------------------------------------------------------
# Inputs and encoders
# ------------------------------------------------------------------------------------------
def test_input_forms_agree(tmp_path):
    g = two_core_graph()
    chip = emulator.load(write_image(g, GOLDEN_PROFILE))
    rng = np.random.default_rng(1)
    x = rng.random((12, 4)) < 0.4
    base = chip.run(x)
    assert base.outputs["out"].shape == (1, 12, 2)
    t, n = np.nonzero(x)
    ev = chip.run({"x": Events(np.stack([n, t], 1))}, ticks=12)
    assert np.array_equal(ev.outputs["out"], base.outputs["out"])
    np.savez(tmp_path / "in.npz", x=x)
    f = chip.run(str(tmp_path / "in.npz"))
    assert np.array_equal(f.outputs["out"], base.outputs["out"])
    np.savez(tmp_path / "ev.npz", x_events=np.stack([n, t], 1))
    f = chip.run(tmp_path / "ev.npz", ticks=12)
    assert np.array_equal(f.outputs["out"], base.outputs["out"])
    rep = chip.run(x, batch=3)
    assert rep.batch == 3 and all(np.array_equal(rep.outputs["out"][b], base.outputs["out"][0])
                                  for b in range(3))
    longer = chip.run(x, ticks=20)
    assert np.array_equal(longer.outputs["out"][:, :12], base.outputs["out"])
    res = chip.run(ticks=5)
    assert res.outputs["out"].shape == (1, 5, 2)
    assert res.counts["out"].shape == (1, 2) and res.first_spike["out"].shape == (1, 2)


def test_input_errors():
    chip = emulator.load(write_image(two_core_graph(), GOLDEN_PROFILE))
    with pytest.raises(InputError, match=r"^input x: value 0\.5 is not a spike \(0 or 1\); encode "
                       r"real-valued data with emulator\.encoders \(poisson_rate, "
                       r"deterministic_rate, latency\)$"):
        chip.run(np.full((3, 4), 0.5))
    with pytest.raises(InputError, match=r"^input x: array of shape \[3, 5\] does not match "
                       r"\(T, 4\) or \(B, T, 4\) \(port shape \[4\]\)$"):
        chip.run(np.zeros((3, 5), bool))
    with pytest.raises(InputError, match=r"^chip two_core: no input port 'y'; ports: x$"):
        chip.run({"y": np.zeros((3, 4), bool)})
    with pytest.raises(InputError, match=r"^chip two_core: no population 'nope'; populations: "
                       r"h, o, r$"):
        chip.run(np.zeros((3, 4), bool), probes=["nope"])
    with pytest.raises(InputError, match=r"^mode 'slow' is not one of fast, cycle$"):
        chip.run(np.zeros((3, 4), bool), mode="slow")


def test_encoders():
    x = np.array([[0.0, 0.25, 0.5, 1.0]])
    d = emulator.deterministic_rate(x, 8)
    assert d.shape == (1, 8, 4) and d.sum(axis=1).tolist() == [[0, 2, 4, 8]]
    assert np.flatnonzero(d[0, :, 1]).tolist() == [3, 7]
    lat = emulator.latency(x, 5)
    assert [np.flatnonzero(lat[0, :, k]).tolist() for k in range(4)] == [[], [3], [2], [0]]
    p1 = emulator.poisson_rate(x, 1000, seed=3)
    p2 = emulator.poisson_rate(x, 1000, seed=3)
    assert np.array_equal(p1, p2)
    assert np.allclose(p1.mean(axis=1)[0], [0, 0.25, 0.5, 1.0], atol=0.05)
    with pytest.raises(InputError, match=r"^latency: value 1\.5 at sample 0 channel 1 is outside "
                       r"\[0, 1\]; scale the data to \[0, 1\] first$"):
        emulator.latency([0.2, 1.5], 4)


# ------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------
def test_cli_emulate(tmp_path):
    from nmc.cli import cli

    img = tmp_path / "chip.nmb"
    img.write_bytes(write_image(two_core_graph(), GOLDEN_PROFILE))
    x = np.random.default_rng(2).random((2, 10, 4)) < 0.5
    np.savez(tmp_path / "x.npz", x=x)
    out, st = tmp_path / "out.npz", tmp_path / "stats.json"
    r = CliRunner().invoke(cli, ["emulate", str(img), "--input", str(tmp_path / "x.npz"),
                                 "--mode", "cycle", "--probe", "h", "-o", str(out),
                                 "--stats", str(st)])
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[0] == "two_core: 2 sample(s) x 10 ticks, cycle mode"
    direct = emulator.load(img).run(x, mode="cycle", probes=["h"])
    with np.load(out) as z:
        assert sorted(z.files) == ["h.spikes", "h.u", "h.v", "out", "out.counts",
                                   "out.first_spike", "val"]
        assert np.array_equal(z["out"], direct.outputs["out"])
        assert np.array_equal(z["h.v"], direct.probes["h"]["v"])
    stats = json.loads(st.read_text())
    assert stats["counters"]["spikes"] == direct.stats["counters"]["spikes"]
    assert stats["mode"] == "cycle" and stats["noc"]["overrun_ticks"] == []
    r = CliRunner().invoke(cli, ["emulate", str(img)])
    assert r.exit_code == 1
    assert r.output.strip() == (f"Error: {img} has input ports (x); pass --input x.npz, or "
                                "--ticks T to run on silence")
