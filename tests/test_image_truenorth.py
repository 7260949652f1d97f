"""TrueNorth family through the whole chain: image round trip, and the emulator vs the integer
reference interpreter.

Seeded random native TrueNorth graphs (stochastic synapses, leaks and thresholds, every reset
mode, leak reversal, kappa, wrap and saturate, several membrane widths and delays) are compiled by
the real passes for truenorth-mini, written, loaded and run in fast and cycle mode; outputs and
membrane traces equal ``ir.interp_int.run_int`` tick for tick.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

import emulator
from emulator.errors import StateOverflowError
from ir.errors import CompileError
from ir.graph import GraphBuilder, Stage
from ir.interp_int import run_int
from ir.native.truenorth import TrueNorthCrossbar, TrueNorthNeuron, effective_weights
from ir.nodes import Input, Output
from nmc.backend.writer import write_image

TARGET = "truenorth-mini"


def random_tn_graph(seed: int):
    """One or two TrueNorth layers with random parameters (valid by construction)."""
    rng = np.random.default_rng([seed, 0x746E])
    b = GraphBuilder(f"tn{seed}", stage=Stage.QUANTIZED, attrs={"target": TARGET})
    n_in = int(rng.integers(4, 30))
    b.add(Input(name="x", shape=(n_in,)))
    src, n_src, id_base = "x", n_in, 0
    for layer in range(int(rng.integers(1, 3))):
        n = int(rng.integers(2, 30))
        name = f"cb{layer}"
        b.add(TrueNorthCrossbar(
            name=name, in_features=n_src, out_features=n,
            crossbar=b.const(name + ".cb", rng.random((n, n_src)) < rng.uniform(0.1, 0.6)),
            axon_types=b.const(name + ".t", rng.integers(0, 4, n_src)),
            delay=int(rng.integers(1, 4))), src)

        def arr(lo, hi, n=n, layer=layer):
            return b.const(f"p{layer}.c", rng.integers(lo, hi + 1, (n,)))

        vb = int(rng.choice([12, 16, 20]))
        vmax = (1 << (vb - 1)) - 1
        kw = dict(s0=arr(-255, 255), s1=arr(-255, 255), s2=arr(-100, 255), s3=arr(-255, 100),
                  leak=arr(-20, 20), leak_rev=arr(0, 1), alpha=arr(1, min(600, vmax)),
                  beta=arr(0, min(600, vmax)), gamma=arr(0, 2), kappa=arr(0, 1),
                  v_reset=arr(-50, 50), v_bits=vb,
                  overflow=str(rng.choice(["saturate", "wrap"])),
                  seed=int(rng.integers(0, 1000)), id_base=id_base)
        if rng.random() < 0.5:
            kw.update(stoch_syn=arr(0, 15), stoch_leak=arr(0, 1), tm=arr(0, 5))
        id_base += 1000
        b.add(TrueNorthNeuron(name=f"h{layer}", shape=(n,), **kw), name)
        src, n_src = f"h{layer}", n
    b.add(Output(name="y", shape=(n_src,)), src)
    return b.build()


@functools.cache
def compiled_tn(seed: int):
    from nmc.passes.flow import compile_graph

    g = compile_graph(random_tn_graph(seed), TARGET).graph
    return g, write_image(g, TARGET)


def check_against_reference(g, chip, x, modes=("fast", "cycle")):
    pops = [n.name for n in g.nodes.values() if n.category == "neuron"]
    ref = run_int(g, x, probes=pops)
    for mode in modes:
        r = chip.run(x, mode=mode, probes=pops)
        for o in ref.outputs:
            assert np.array_equal(np.asarray(ref.outputs[o]).reshape(r.outputs[o].shape),
                                  r.outputs[o]), (o, mode)
        for p in pops:
            want = np.asarray(ref.probes[p]["v"]).reshape(r.probes[p]["v"].shape)
            assert np.array_equal(want, r.probes[p]["v"]), (p, mode)
    return r


@pytest.mark.parametrize("block", range(3))
def test_random_truenorth_graphs_match_reference(block):
    for seed in range(8 * block, 8 * block + 8):
        g, img = compiled_tn(seed)
        chip = emulator.load(img)
        x = np.random.default_rng(seed).random((2, 20, g.nodes["x"].size)) < 0.4
        check_against_reference(g, chip, x)


def test_round_trip_truenorth_fields():
    g, img = compiled_tn(3)
    chip = emulator.load(img)
    assert chip.family == "truenorth" and chip.params["core.axons"] == 64
    for node in (n for n in g.nodes.values() if n.kind == "TrueNorthNeuron"):
        p = chip.population(node.name)
        for f in ("s0", "s1", "s2", "s3", "leak", "alpha", "beta", "gamma", "kappa", "v_reset"):
            want = np.broadcast_to(g.param(node, f, np.int64), node.out_shape).reshape(-1)
            got = np.array([chip.cores[c].neuron[f][j] for c, j in zip(p.core, p.local, strict=True)])
            assert np.array_equal(got, want), (node.name, f)
        nid = np.array([chip.cores[c].neuron["nid"][j] for c, j in zip(p.core, p.local, strict=True)])
        assert np.array_equal(nid, node.id_base + np.arange(node.size))
    # every crossbar's effective weights are what the chip's crossbar bits and types realise
    for cb in (n for n in g.nodes.values() if n.kind == "TrueNorthCrossbar"):
        tgt = g.successors(cb.name)[0]
        want = effective_weights(g, cb, g.nodes[tgt])
        got = np.zeros_like(want)
        src = g.predecessors(cb.name)[0]
        feeders = {}
        for port in chip.inputs:
            for c, a, s, e in port.entries.tolist():
                for k in range(s, e):
                    feeders[(c, a + k - s)] = (port.name, k)
        for pop in chip.populations:
            for k, (c, j) in enumerate(zip(pop.core, pop.local, strict=True)):
                core = chip.cores[c]
                for r in range(core.route_ptr[j], core.route_ptr[j + 1]):
                    feeders[(int(core.route_core[r]), int(core.route_axon[r]))] = (pop.name, k)
        tp = chip.population(tgt)
        for j, (c, loc) in enumerate(zip(tp.core, tp.local, strict=True)):
            core = chip.cores[c]
            for a in np.flatnonzero(core.crossbar[:, loc]):
                name, k = feeders[(c, int(a))]
                if name == src:
                    got[j, k] += core.neuron[f"s{int(core.axon['type'][a])}"][loc]
        assert np.array_equal(got, want), cb.name


def test_truenorth_float_mlp_through_the_whole_chain():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_flow import float_mlp

    from nmc.passes.flow import compile_graph

    g = compile_graph(float_mlp(), TARGET).graph
    chip = emulator.load(write_image(g, TARGET))
    x = np.random.default_rng(0).random((2, 30, 40)) < 0.3
    r = check_against_reference(g, chip, x)
    assert r.outputs["y"].sum() > 0
    text = chip.disasm(0)
    assert text.splitlines()[0].startswith("core 0  chip 0 x 0 y 0  neurons ")


def test_truenorth_overflow_strict_and_counted():
    b = GraphBuilder("tnovf", stage=Stage.QUANTIZED, attrs={"target": TARGET})
    b.add(Input(name="x", shape=(4,)))
    b.add(TrueNorthCrossbar(name="cb", in_features=4, out_features=2,
                            crossbar=b.const("cb", np.ones((2, 4), bool)),
                            axon_types=b.const("t", np.zeros(4, np.int64))), "x")
    b.add(TrueNorthNeuron(name="h", shape=(2,), s0=255, alpha=500, beta=0, gamma=2, v_bits=10,
                          overflow="wrap"), "cb")
    b.add(Output(name="y", shape=(2,)), "h")
    from nmc.passes.flow import compile_graph

    g = compile_graph(b.build(), TARGET).graph
    chip = emulator.load(write_image(g, TARGET))
    x = np.ones((5, 4), bool)
    check_against_reference(g, chip, x)
    assert chip.run(x).stats["counters"]["overflows"]["v"] > 0
    with pytest.raises(StateOverflowError, match=r"^tick 1 sample 0: membrane V of core 0 neuron 0 "
                       r"\(population h\[0\]\) reached 1020, outside -512\.\.511 \(v_bits = 10, "
                       r"policy wrap\); a strict run stops at the first overflow \(run without "
                       r"strict to count them\)$"):
        chip.run(x, strict=True)


def test_truenorth_route_refusals():
    g, _ = compiled_tn(1)
    import json

    m = json.loads(json.dumps(g.mapping))
    m["cores"][0]["truenorth"] = {"axon_types": [9] * len(m["cores"][0].get("truenorth", {}).get(
        "axon_types", [0]))}
    with pytest.raises(CompileError, match=r"^core 0 \(chip 0, x 0, y 0\): the mapping's axon "
                       r"types \[9"):
        write_image(g.replace(mapping=m), TARGET)


def test_truenorth_cli_inspect_and_emulate(tmp_path):
    from click.testing import CliRunner

    from nmc.cli import cli

    g, img = compiled_tn(2)
    path = tmp_path / "tn.nmb"
    path.write_bytes(img)
    np.savez(tmp_path / "x.npz", x=np.random.default_rng(0).random((12, g.nodes["x"].size)) < 0.4)
    r = CliRunner().invoke(cli, ["inspect", str(path)])
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[1].startswith("family       truenorth   profile truenorth-mini")
    r = CliRunner().invoke(cli, ["emulate", str(path), "--input", str(tmp_path / "x.npz"),
                                 "--mode", "cycle", "--probe", "h0", "-o", str(tmp_path / "o.npz")])
    assert r.exit_code == 0, r.output
    with np.load(tmp_path / "o.npz") as z:
        assert sorted(z.files) == ["h0.spikes", "h0.v", "y", "y.counts", "y.first_spike"]
