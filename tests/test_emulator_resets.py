"""Host resets and BrainScaleS-2 analog mismatch on the emulator.

* Host resets (``chip.run(..., resets={population: ticks})``): seeded random native graphs of
  every family, compiled by the real passes, run with random reset schedules in fast and cycle
  mode; every output and every population's registers and spikes equal
  ``ir.interp_int.run_int(..., resets=...)`` on the routed graph, tick for tick (TrueNorth with
  stochastic neurons: the PRN tick restarts with the reset, as in the reference);
* the API maps model node names to chip populations and, where TrueNorth splitters retimed a
  population, moves its resets by the population's lag (the quantized graph's reference, after
  ``extra_latency``);
* errors name the population, the tick and the limit; the CLI's ``--reset`` syntax;
* analog mismatch (``mismatch=``, ``--mismatch``): sigma 0 is the ideal chip, a seed gives one
  chip instance (the reference's ``spread_kernels``), other seeds other spikes; any other family
  is refused by name.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import emulator
from emulator.errors import EmulatorError, InputError
from emulator.runner import parse_mismatch, parse_resets, reset_ticks
from ir.errors import NmcError
from ir.interp_int import run_int

VARS = {"loihi": (("u", "u"), ("v", "v")), "truenorth": (("v", "v"),),
        "brainscales2": (("v", "v"), ("i_exc", "i_exc"), ("i_inh", "i_inh"), ("ref", "ref"))}


def pops_of(g) -> list[str]:
    return [n.name for n in g.nodes.values() if n.category == "neuron"]


def random_resets(names: list[str], seed: int, T: int) -> dict:
    """A random schedule: explicit tick lists, slices and mixtures for most populations."""
    rng = np.random.default_rng([seed, 0x5E7])
    out: dict = {}
    for p in names:
        u = rng.random()
        if u < 0.25:
            continue
        ticks = sorted(rng.choice(T, size=int(rng.integers(1, 5)), replace=False).tolist())
        step = slice(int(rng.integers(0, 6)), None, int(rng.integers(2, 9)))
        out[p] = ticks if u < 0.6 else (step if u < 0.85 else [step, ticks[0]])
    if not out:
        out[names[0]] = [T // 2]
    return out


def expanded(resets: dict, T: int) -> dict[str, list[int]]:
    """The schedule as explicit tick lists (what run_int takes)."""
    return {p: reset_ticks(p, at, T).tolist() for p, at in resets.items()}


def assert_same_with_resets(g, chip, ins, T: int, resets: dict, mode: str, **kw):
    """Outputs, registers and spikes of every population equal run_int with the same resets;
    returns whether the resets changed anything against a run without them."""
    pops = pops_of(g)
    ref = run_int(g, ins, steps=T, probes=pops, resets=expanded(resets, T))
    res = chip.run(ins, T, mode=mode, probes=pops, resets=resets, **kw)
    B = res.batch
    for o in ref.outputs:
        want = np.asarray(ref.outputs[o])
        got = res.outputs[o]
        want = want.reshape(want.shape[0], want.shape[1], -1)[..., :got.shape[2]]
        assert np.array_equal(want.astype(got.dtype), got), f"{g.name}: output {o} ({mode})"
    for p in pops:
        for var, rvar in VARS[chip.family] + (("spikes", "out"),):
            if var == "spikes" and getattr(g.nodes[p], "readout", False):
                continue
            want = np.asarray(ref.probes[p][rvar]).reshape(B, T, -1)
            got = res.probes[p][var]
            assert np.array_equal(want.astype(got.dtype), got), f"{g.name}: {p}.{var} ({mode})"
    plain = chip.run(ins, T, mode=mode, probes=pops, **kw)
    return any(not np.array_equal(plain.probes[p][v], res.probes[p][v])
               for p in pops for v in plain.probes[p])


# ------------------------------------------------------------------------------------------
# Corpora: a few random graphs per family (the families' own test modules build them)
# ------------------------------------------------------------------------------------------
def _first_that_compile(compile_fn, seeds: int, want: int, graph_at: int, image_at: int):
    """(seed, graph, chip) of the first ``want`` seeds below ``seeds`` that ``compile_fn``
    compiles (it returns None for a refused seed)."""
    out = []
    for seed in range(seeds):
        r = compile_fn(seed)
        if r is not None:
            out.append((seed, r[graph_at], emulator.load(r[image_at])))
        if len(out) == want:
            break
    return out


@pytest.fixture(scope="module")
def loihi_corpus():
    from test_image import compiled

    return _first_that_compile(compiled, 40, 10, 0, 1)


@pytest.fixture(scope="module")
def truenorth_corpus():
    from test_emulator_truenorth import compiled_tn

    return _first_that_compile(compiled_tn, 60, 12, 1, 2)


@pytest.fixture(scope="module")
def bss2_corpus():
    from test_emulator_brainscales2 import compiled

    return _first_that_compile(compiled, 40, 10, 0, 1)


def inputs_for(g, seed: int, T: int, batch: int = 2, rate: float = 0.25):
    rng = np.random.default_rng([seed, 23])
    return {n.name: rng.random((batch, T, *n.out_shape)) < rate for n in g.inputs}


def check_corpus(corpus, T: int, cycle_every: int = 3) -> None:
    changed = 0
    for k, (seed, g, chip) in enumerate(corpus):
        ins = inputs_for(g, seed, T)
        resets = random_resets(pops_of(g), seed, T)
        changed += assert_same_with_resets(g, chip, ins, T, resets, "fast")
        if k % cycle_every == 0:
            assert_same_with_resets(g, chip, ins, T, resets, "cycle", overrun="stretch")
    assert changed >= len(corpus) // 2, f"resets changed only {changed} of {len(corpus)} runs"


def test_loihi_resets_equal_the_reference(loihi_corpus):
    assert len(loihi_corpus) == 10
    check_corpus(loihi_corpus, 24)


def test_truenorth_resets_equal_the_reference(truenorth_corpus):
    assert len(truenorth_corpus) == 12
    stochastic = sum(bool((c.neuron["stoch_syn"] != 0).any() or (c.neuron["tm"] != 0).any()
                          or (c.neuron["stoch_leak"] != 0).any())
                     for _, _, chip in truenorth_corpus for c in chip.cores)
    splitters = sum(bool(g.attrs["passes"]["legalize_family"].get("splitters"))
                    for _, g, _ in truenorth_corpus)
    assert stochastic > 0 and splitters > 0
    check_corpus(truenorth_corpus, 30)


def test_brainscales2_resets_equal_the_reference(bss2_corpus):
    assert len(bss2_corpus) == 10
    check_corpus(bss2_corpus, 24)


def test_truenorth_reset_restarts_the_prn_tick():
    """A stochastic neuron reset after tick r draws, from tick r + 1 on, what a fresh run draws
    from tick 0: bias-free threshold noise on a silent input shows it."""
    from test_emulator_truenorth import _one_core_chip

    g, chip = _one_core_chip(s0=3, s1=-2, s2=200, s3=-255, stoch_syn=0b1011, leak=-7,
                             stoch_leak=1, leak_rev=1, alpha=9, beta=40, tm=5, gamma=1,
                             seed=12345, id_base=7)
    x = np.random.default_rng(0).random((2, 12, 40)) < 0.5
    x[:, 11] = False  # nothing on its way at the reset
    fresh = chip.run(x, probes=["n"])
    x2 = np.concatenate([x, x], axis=1)
    for mode in ("fast", "cycle"):
        again = chip.run(x2, mode=mode, probes=["n"], resets={"n": [11]})
        for var in ("v", "spikes"):
            assert np.array_equal(again.probes["n"][var][:, 12:], fresh.probes["n"][var])
        # without the reset the second half draws other numbers (and starts from another V)
        other = chip.run(x2, mode=mode, probes=["n"]).probes["n"]["v"][:, 12:]
        assert not np.array_equal(other, fresh.probes["n"]["v"])
    ref = run_int(g, x2, probes=["n"], resets={"n": [11]})
    assert np.array_equal(np.asarray(ref.probes["n"]["v"]).reshape(2, 24, -1),
                          again.probes["n"]["v"])


# ------------------------------------------------------------------------------------------
# The API: model names, lags of retimed TrueNorth populations
# ------------------------------------------------------------------------------------------
def test_api_moves_resets_of_retimed_truenorth_populations():
    from test_emulator_truenorth import compiled_tn
    from test_emulator_truenorth import inputs_for as tn_inputs

    from nmc.api import Compiled
    from nmc.targets import load_profile

    prof = load_profile("truenorth-mini")
    lagged = 0
    for seed in (4, 34, 43, 1):  # seeds whose splitter mapping retimes a population (and not)
        q, g, img = compiled_tn(seed)
        c = Compiled(graph=g, profile=prof, image=img, source=q)
        lags = c.population_lags()
        lagged += any(lags.values())
        T = 30
        ins = tn_inputs(q, seed, ticks=T)
        rng = np.random.default_rng(seed)
        resets = {p: sorted(rng.choice(T, 3, replace=False).tolist()) + [T - 1]
                  for p in pops_of(q)}
        ref = run_int(q, ins, resets=resets)
        got = c.run(ins, resets=resets).spikes
        for o, want in ref.outputs.items():
            want = np.asarray(want).reshape(2, T, -1)
            r = int(g.mapping["extra_latency"][o])
            assert np.array_equal(want[:, :T - r], got[o][:, r:, :want.shape[2]]), (seed, o)
        if any(lags.values()):  # the unmoved schedule would differ: the lag matters
            plain = emulator.load(img).run(ins, resets=resets).outputs
            assert any(not np.array_equal(
                np.asarray(ref.outputs[o]).reshape(2, T, -1)[:, :T - r],
                plain[o][:, r:, :np.asarray(ref.outputs[o]).reshape(2, T, -1).shape[2]])
                for o in ref.outputs for r in [int(g.mapping["extra_latency"][o])])
    assert lagged >= 3


def test_api_lags_of_a_float_model_mapped_with_splitters():
    """A float model (the MLP example) through TrueNorth splitters: the output population runs
    one tick late on the chip, and so do its resets."""
    import nmc
    from nmc.passes import run_passes
    from nmc.passes.flow import default_flow
    from tests.conftest import ROOT

    mlp = ROOT / "examples" / "ann_conversion" / "mlp"
    c = nmc.compile(mlp / "model.json", "truenorth", quantize_options={"fanout": "splitter"})
    assert c.population_lags() == {"out": 1} and c.graph.mapping["extra_latency"] == {"y": 1}
    q = run_passes(c.source, default_flow()[:2], c.profile).graph
    with np.load(mlp / "test_inputs.npz") as z:
        x = z["spikes"][:4]
    T = x.shape[1] + 1
    resets = {"h": [5, 17], "out": slice(3, None, 7)}
    ref = run_int(q, x, steps=T, resets=expanded(resets, T)).outputs["y"]
    got = c.run(x, ticks=T, resets=resets).spikes["y"]
    assert np.array_equal(np.asarray(ref)[:, :T - 1], got[:, 1:])
    assert not np.array_equal(got, c.run(x, ticks=T).spikes["y"])


def loihi_chain():
    """x (2) -> LoihiDense -> one compartment (slow u decay) -> out, quantized."""
    from ir.graph import GraphBuilder, Stage
    from ir.native.loihi import LoihiCompartment, LoihiDense
    from ir.nodes import Input, Output

    b = GraphBuilder("lava", stage=Stage.QUANTIZED, attrs={"target": "loihi"})
    b.add(Input(name="x", shape=(2,)))
    b.add(LoihiDense(name="syn", in_features=2, out_features=1,
                     weight=b.const("w", np.array([[100.0, 100.0]])), sign_mode="mixed",
                     num_weight_bits=8), "x")
    b.add(LoihiCompartment(name="lif", shape=(1,), du=100, dv=400, vth_mant=200), "syn")
    b.add(Output(name="out", shape=(1,)), "lif")
    return b.build()


def test_api_names_and_errors():
    import nmc

    compiled = nmc.compile(loihi_chain(), "loihi")
    assert compiled.population_lags() == {}
    x = np.zeros((1, 10, 2), bool)
    x[0, :, 0] = True
    res = compiled.run(x, resets={"lif": [4]}, probes=["lif"])
    ref = run_int(compiled.graph, x, probes=["lif"], resets={"lif": [4]})
    assert np.array_equal(np.asarray(ref.probes["lif"]["u"]).reshape(1, 10, 1),
                          res.raw.probes["lif"]["u"])
    assert res.raw.probes["lif"]["u"][0, 5, 0] < res.raw.probes["lif"]["u"][0, 4, 0]
    star = compiled.run(x, resets={"*": [4]}, probes=["lif"])
    assert np.array_equal(star.raw.probes["lif"]["u"], res.raw.probes["lif"]["u"])
    conn = next(n.name for n in compiled.graph.nodes.values() if n.category == "connection")
    with pytest.raises(NmcError, match=rf"^resets: node {conn} is a LoihiDense \(connection\), "
                                       r"not a population; .*\(populations: lif\)$"):
        compiled.run(x, resets={conn: [1]})
    with pytest.raises(NmcError, match=r"^resets: the compiled graph lava has no node 'nope'; "
                                       r"populations: lif \(or '\*' for all\)$"):
        compiled.run(x, resets={"nope": [1]})
    with pytest.raises(InputError, match=r"^resets\['lif'\]: tick 10 is outside 0\.\.9 \(the run "
                                         r"has 10 ticks; "):
        compiled.run(x, resets={"lif": [3, 10]})
    with pytest.raises(InputError, match=r"^mismatch \(analog fixed-pattern noise\) applies to "
                                         r"brainscales2 chips only; chip lava is of family loihi"):
        compiled.run(x, mismatch=2.0)


# ------------------------------------------------------------------------------------------
# Errors and the CLI syntax
# ------------------------------------------------------------------------------------------
def test_reset_errors_name_population_tick_and_limit(loihi_corpus):
    seed, g, chip = loihi_corpus[0]
    p = pops_of(g)[0]
    ins = inputs_for(g, seed, 12)
    cases = [
        ({"ghost": [1]}, rf"^resets: chip {g.name} has no population 'ghost'; populations: "
                         rf"{', '.join(x.name for x in chip.populations)} \(or '\*' for all\)$"),
        ({p: [12]}, rf"^resets\['{p}'\]: tick 12 is outside 0\.\.11 \(the run has 12 ticks; a "
                    r"reset after tick t puts the state back before tick t \+ 1\)$"),
        ({p: [-1]}, rf"^resets\['{p}'\]: tick -1 is outside 0\.\.11"),
        ({p: [1.5]}, rf"^resets\['{p}'\]: tick 1\.5 is not an integer$"),
        ({p: "3"}, rf"^resets\['{p}'\]: '3' is not a tick, a list of ticks or a slice$"),
        ({p: slice(20, None, 3)}, rf"^resets\['{p}'\]: slice\(20, None, 3\) selects no tick of "
                                  r"the 12-tick run$"),
        ({p: slice(0, None, 0)}, rf"^resets\['{p}'\]: slice step 0 must be a positive integer$"),
        ([p], r"^resets must map population names to ticks"),
    ]
    for mode in ("fast", "cycle"):
        for resets, msg in cases:
            with pytest.raises(InputError, match=msg):
                chip.run(ins, 12, mode=mode, resets=resets)
    # accepted forms: an integer, numpy integers, a slice, nested lists; duplicates merge
    assert reset_ticks(p, np.int64(3), 12).tolist() == [3]
    assert reset_ticks(p, np.array([5, 1, 5]), 12).tolist() == [1, 5]
    assert reset_ticks(p, [slice(2, None, 5), [0, 7]], 12).tolist() == [0, 2, 7]
    assert reset_ticks(p, [], 12).tolist() == []


def test_parse_resets_and_mismatch():
    assert parse_resets(["h1@16,33", "h2@every:17", "h1@every:17+5", "a@b@3"]) == {
        "h1": [16, 33, slice(5, None, 17)], "h2": [slice(0, None, 17)], "a@b": [3]}
    for spec, msg in (("h1", r"^--reset 'h1': use NAME@T1,T2,\.\.\. or NAME@every:P\[\+O\]"),
                      ("h1@", r"^--reset 'h1@': use NAME@"),
                      ("h1@1,x", r"^--reset 'h1@1,x': '1,x' is not a list of ticks; use NAME@"),
                      ("h1@every:x", r"^--reset 'h1@every:x': period and offset must be "
                                     r"integers; "),
                      ("h1@every:0", r"^--reset 'h1@every:0': the period must be >= 1 and the "
                                     r"offset >= 0$")):
        with pytest.raises(InputError, match=msg):
            parse_resets([spec])
    assert parse_mismatch("4") == (4.0, 0) and parse_mismatch("2.5:7") == (2.5, 7)
    assert parse_mismatch("profile:3") == ("profile", 3) and parse_mismatch((1, 2)) == (1.0, 2)
    assert parse_mismatch(0) == (0.0, 0)
    for bad, msg in (("x", r"^mismatch 'x': give SIGMA\[:SEED\]"), ("1:y", r"^mismatch '1:y'"),
                     ("-1", r"^mismatch sigma = -1\.0 must be a finite number >= 0 \(codes\)$"),
                     ((1, -2), r"^mismatch seed -2 must be an integer 0\.\.2\*\*63-1$"),
                     (True, r"^mismatch True: give")):
        with pytest.raises(InputError, match=msg):
            parse_mismatch(bad)


def test_cli_emulate_with_resets(tmp_path):
    from test_frontend_netx import TINYNET_RESETS, tinynet_graph, tinynet_reference

    import nmc
    from nmc.cli import cli as main
    from tests.conftest import need

    need("h5py")
    g = tinynet_graph()
    img = tmp_path / "tiny.nmb"
    nmc.compile(g, "loihi").save(img)
    out = tmp_path / "o.npz"
    args = ["emulate", str(img), "-T", "17", "-o", str(out)]
    for name, (t,) in TINYNET_RESETS.items():
        args += ["--reset", f"{name}@every:17+{t}"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert "host resets: layer0@every:17+16 layer1@every:17+0 layer2@every:17+1" in r.output
    spikes = np.load(out)["out"][0]
    assert np.array_equal(spikes[2:17], tinynet_reference()[1:16])
    args = ["emulate", str(img), "-T", "17", "-o", str(out)]
    for name, (t,) in TINYNET_RESETS.items():
        args += ["--reset", f"{name}@{t}"]
    assert CliRunner().invoke(main, args).exit_code == 0
    assert np.array_equal(np.load(out)["out"][0], spikes)
    for bad, msg in ((["--reset", "layer9@3"], "Error: resets: chip tiny has no population "
                                               "'layer9'; populations: layer0, layer1, layer2"),
                     (["--reset", "layer1@17"], "Error: resets['layer1']: tick 17 is outside "
                                                "0..16"),
                     (["--reset", "layer1"], "Error: --reset 'layer1': use NAME@T1,T2,..."),
                     (["--mismatch", "3"], "Error: mismatch (analog fixed-pattern noise) "
                                           "applies to brainscales2 chips only; chip tiny is of "
                                           "family loihi")):
        r = CliRunner().invoke(main, ["emulate", str(img), "-T", "17", *bad])
        assert r.exit_code == 1 and msg in r.output and "Traceback" not in r.output, r.output


# ------------------------------------------------------------------------------------------
# BrainScaleS-2 analog mismatch
# ------------------------------------------------------------------------------------------
def test_mismatch_is_seeded_and_zero_is_the_ideal_chip(bss2_corpus):
    from ir.native.brainscales2 import spread_kernels

    changed = 0
    for seed, g, chip in bss2_corpus[:6]:
        ins = inputs_for(g, seed, 20)
        pops = pops_of(g)
        ideal = chip.run(ins, probes=pops)
        zero = chip.run(ins, probes=pops, mismatch=0.0)
        assert zero.stats["mismatch"] == {"sigma_codes": 0.0, "seed": 0}
        for p in pops:
            for var in ideal.probes[p]:
                assert np.array_equal(ideal.probes[p][var], zero.probes[p][var])
        a = chip.run(ins, probes=pops, mismatch=(20.0, 1))
        b = chip.run(ins, probes=pops, mismatch="20:1", mode="cycle", overrun="stretch")
        c = chip.run(ins, probes=pops, mismatch=(20.0, 2))
        for p in pops:
            assert np.array_equal(a.probes[p]["v"], b.probes[p]["v"])
        # the instance is the reference's spread_kernels(sigma, seed), with resets too
        ref = run_int(g, ins, probes=pops, kernels=spread_kernels(20.0, 1))
        for p in pops:
            assert np.array_equal(np.asarray(ref.probes[p]["v"]).reshape(a.probes[p]["v"].shape),
                                  a.probes[p]["v"])
        resets = {pops[0]: [7, 13]}
        ref = run_int(g, ins, probes=pops, kernels=spread_kernels(20.0, 1), resets=resets)
        got = chip.run(ins, probes=pops, mismatch=(20.0, 1), resets=resets)
        assert np.array_equal(np.asarray(ref.probes[pops[0]]["v"]).reshape(
            got.probes[pops[0]]["v"].shape), got.probes[pops[0]]["v"])
        changed += any(not np.array_equal(a.probes[p]["spikes"], c.probes[p]["spikes"])
                       or not np.array_equal(a.probes[p]["spikes"], ideal.probes[p]["spikes"])
                       for p in pops)
        assert any(not np.array_equal(a.probes[p]["v"], c.probes[p]["v"]) for p in pops)
    assert changed >= 5
    prof = chip.run(ins, mismatch="profile:5")
    assert prof.stats["mismatch"] == {"sigma_codes": float(chip.params["analog.fpn_sigma_codes"]),
                                      "seed": 5}


def test_cli_mismatch_on_emulate_and_run(tmp_path, bss2_corpus):
    from nmc.cli import cli as main

    seed, g, chip = next((s, g, c) for s, g, c in bss2_corpus if len(g.inputs) == 1)
    from test_emulator_brainscales2 import compiled

    img = tmp_path / "b.nmb"
    img.write_bytes(compiled(seed)[1])
    x = inputs_for(g, seed, 20)[g.inputs[0].name]
    np.savez(tmp_path / "x.npz", **{g.inputs[0].name: x})
    outs = {}
    for tag, extra in (("ideal", []), ("zero", ["--mismatch", "0"]), ("a", ["--mismatch", "8:1"]),
                       ("b", ["--mismatch", "8:1"]), ("c", ["--mismatch", "8:2"])):
        o = tmp_path / f"{tag}.npz"
        st = tmp_path / f"{tag}.json"
        r = CliRunner().invoke(main, ["emulate", str(img), "-i", str(tmp_path / "x.npz"), "-o",
                                      str(o), "--stats", str(st), *extra])
        assert r.exit_code == 0, r.output
        with np.load(o) as z:
            outs[tag] = {k: z[k] for k in z.files}
        if extra:
            s, _, sd = extra[1].partition(":")
            assert f"analog mismatch: sigma {float(s):g} codes, seed {int(sd or 0)}" in r.output
            assert json.loads(st.read_text())["mismatch"] == {"sigma_codes": float(s),
                                                              "seed": int(sd or 0)}
    api = chip.run(x, mismatch=(8.0, 1))
    for k, v in api.outputs.items():
        assert np.array_equal(outs["a"][k], v)
    assert all(np.array_equal(outs["ideal"][k], outs["zero"][k]) for k in outs["ideal"])
    assert all(np.array_equal(outs["a"][k], outs["b"][k]) for k in outs["a"])
    r = CliRunner().invoke(main, ["emulate", str(img), "-T", "5", "--mismatch", "lots"])
    assert r.exit_code == 1 and "Error: mismatch 'lots': give SIGMA[:SEED]" in r.output


def test_cli_run_mismatch(tmp_path):
    from nmc.cli import cli as main
    from tests.conftest import ROOT

    model = ROOT / "examples" / "ann_conversion" / "mlp" / "model.json"
    data = ROOT / "examples" / "ann_conversion" / "mlp" / "test_inputs.npz"
    with np.load(data) as z:
        np.savez(tmp_path / "x.npz", spikes=z["spikes"][:8], labels=z["labels"][:8])
    x = str(tmp_path / "x.npz")
    res = {}
    for tag, extra in (("ideal", []), ("zero", ["--mismatch", "0"]),
                       ("a", ["--mismatch", "30:1"]), ("b", ["--mismatch", "30:1"])):
        r = CliRunner().invoke(main, ["run", str(model), "-t", "brainscales2", "--input", x,
                                      "--json", *extra])
        assert r.exit_code == 0, r.output
        res[tag] = json.loads(r.output[r.output.index("{"):])
    assert res["a"]["mismatch"] == {"sigma_codes": 30.0, "seed": 1}
    assert res["zero"]["accuracy"] == res["ideal"]["accuracy"]
    assert res["zero"]["synaptic_ops_per_sample"] == res["ideal"]["synaptic_ops_per_sample"]
    assert res["a"]["synaptic_ops_per_sample"] == res["b"]["synaptic_ops_per_sample"]
    assert res["a"]["synaptic_ops_per_sample"] != res["ideal"]["synaptic_ops_per_sample"]
    r = CliRunner().invoke(main, ["run", str(model), "-t", "loihi", "--input", x,
                                  "--mismatch", "3"])
    assert r.exit_code == 1
    assert ("Error: --mismatch 3: analog mismatch applies to brainscales2 targets only; target "
            "loihi is of family loihi") in r.output
    r = CliRunner().invoke(main, ["run", str(model), "-t", "brainscales2", "--input", x,
                                  "--mismatch", "3:x"])
    assert r.exit_code == 1 and "Error: mismatch '3:x': give SIGMA[:SEED]" in r.output


def test_mismatch_refused_for_other_families(truenorth_corpus):
    seed, g, chip = truenorth_corpus[0]
    with pytest.raises(EmulatorError, match=r"^mismatch \(analog fixed-pattern noise\) applies to "
                                            r"brainscales2 chips only; chip \S+ is of family "
                                            r"truenorth, whose datapath is digital"):
        chip.run(inputs_for(g, seed, 5), mismatch="2:1")
