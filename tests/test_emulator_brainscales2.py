"""The BrainScaleS-2 family: image round trip, emulator vs the integer reference interpreter.

* seeded random native BrainScaleS-2 graphs (built here: exc/inh rows, parallel synapses,
  delays, recurrence, refractory with clocks, bias, readouts, fan-in large enough to merge neuron
  circuits) and random float graphs quantized for brainscales2, compiled by the real passes,
  written, loaded and run; every output port and every population's v, i_exc, i_inh, ref and
  spikes equal ``ir.interp_int.run_int`` (fast mode on >= 100 graphs, cycle mode on a subset);
* the image round trip field by field against the compiled graph, deterministic bytes, a golden
  disassembly of a hand-made two-hemisphere graph, loader refusals, writer refusals;
* fixed-pattern noise: the same (sigma, seed) as ``spread_kernels`` gives the same run;
* shuffled visiting order, cycle mode with and without overruns, counters, energy, chip time.
"""

from __future__ import annotations

import functools
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
from test_image import strategies

import emulator
from emulator import brainscales2 as B2
from emulator import format as F
from emulator import format_brainscales2 as F2
from emulator.errors import EmulatorError, InputError, LoadError, StateOverflowError
from ir.errors import CompileError, NmcError
from ir.graph import GraphBuilder, Stage
from ir.interp_int import run_int
from ir.native.brainscales2 import BSS2Neuron, BSS2Synapses, spread_codes, spread_kernels
from ir.nodes import Input, Output
from nmc.backend.writer import write_image

TARGET = "brainscales2"
ROOT = Path(__file__).resolve().parent.parent
MLP = ROOT / "examples" / "ann_conversion" / "mlp"
SEEDS = range(130)


# ------------------------------------------------------------------------------------------
# Random native graphs
# ------------------------------------------------------------------------------------------
def random_bss2_graph(seed: int):
    """A random quantized BrainScaleS-2 graph that usually fits the 2 x 256-circuit chip."""
    rng = np.random.default_rng([seed, 0xB552])
    b = GraphBuilder(f"rand_bss2_{seed}", dt=1e-3, stage=Stage.QUANTIZED,
                     attrs={"target": TARGET})
    k = iter(range(1, 1000))

    def param(owner: str, f: str, n: int, lo: int, hi: int, p_array: float = 0.4):
        if rng.random() < p_array:
            return b.const(f"{owner}.{f}", rng.integers(lo, hi + 1, size=n).astype(np.int32))
        return int(rng.integers(lo, hi + 1))

    def synapses(src: str, n_in: int, n_out: int, *, big: bool = False, delay: int = 1) -> str:
        name = f"syn{next(k)}"
        kw = {}
        if big:  # every pair has a synapse: half excitatory, half inhibitory, one row each
            w = rng.integers(1, 64, size=(1, n_out, n_in))
            exc = rng.random((n_out, n_in)) < 0.5
            kw["exc"] = b.const(f"{name}.exc", np.where(exc, w, 0))
            kw["inh"] = b.const(f"{name}.inh", np.where(exc, 0, w))
        else:
            density = float(rng.uniform(0.05, 0.8))
            signs = str(rng.choice(["exc", "inh", "both", "both"]))
            for sign in ("exc", "inh"):
                if signs in (sign, "both"):
                    m = int(rng.choice([1, 1, 1, 2, 3]))
                    w = rng.integers(0, 64, size=(m, n_out, n_in))
                    w[:, rng.random((n_out, n_in)) >= density] = 0
                    kw[sign] = b.const(f"{name}.{sign}",
                                       w.astype(np.int16 if rng.random() < 0.5 else np.int64))
        b.add(BSS2Synapses(name=name, in_features=n_in, out_features=n_out, delay=delay, **kw), src)
        return name

    sources: list[tuple[str, int]] = []
    big = rng.random() < 0.2
    for i in range(int(rng.integers(1, 3))):
        n = int(rng.integers(260, 330)) if big and i == 0 else int(rng.integers(1, 160))
        b.add(Input(name=f"in{next(k)}", shape=(n,)))
        sources.append((f"in{next(k) - 1}", n))
    circuits = 460
    pops = []
    n_pops = int(rng.integers(1, 4))
    for i in range(n_pops):
        n = int(rng.integers(1, 60 if big and i == 0 else 130))
        if n > circuits // (2 if big and i == 0 else 1):
            break
        circuits -= n * (2 if big and i == 0 else 1)
        readout = i == n_pops - 1 and i > 0 and rng.random() < 0.3
        name = f"pop{next(k)}"
        b.add(BSS2Neuron(
            name=name, shape=(n,),
            v_leak=param(name, "v_leak", n, 100, 600, 0.3),
            v_threshold=param(name, "v_threshold", n, 500, 1022),
            v_reset=param(name, "v_reset", n, 0, 600),
            c_mem=int(rng.choice([0, 0, int(rng.integers(1, 1023))])) if rng.random() < 0.6
            else param(name, "c_mem", n, 0, 1022, 1.0),
            c_syn_exc=int(rng.choice([1022, int(rng.integers(0, 1023))])),
            c_syn_inh=param(name, "c_syn_inh", n, 0, 1022),
            gain_exc=param(name, "gain_exc", n, 0, 60), gain_inh=param(name, "gain_inh", n, 0, 60),
            bias=param(name, "bias", n, -300, 300) if rng.random() < 0.4 else 0,
            refractory=param(name, "refractory", n, 0, 12) if rng.random() < 0.6 else 0,
            refractory_clock=int(rng.integers(0, 3)), readout=readout,
            id_base=int(rng.integers(0, 2**31))))
        pops.append(name)
        if big and i == 0:
            b.connect(synapses(sources[0][0], sources[0][1], n, big=True), name)
        else:
            srcs = list(sources)
            picks = [srcs[-1] if rng.random() < 0.5 else srcs[int(rng.integers(len(srcs)))]]
            if rng.random() < 0.3 and len(srcs) > 1:
                picks.append(srcs[int(rng.integers(len(srcs)))])
            for src, n_in in dict(picks).items():
                delay = int(rng.integers(1, 16)) if rng.random() < 0.4 else 1
                b.connect(synapses(src, n_in, n, delay=delay), name)
        if not readout and rng.random() < 0.3:
            b.connect(synapses(name, n, n, delay=int(rng.integers(1, 16))), name)
        if not readout:
            sources.append((name, n))
    for i, p in enumerate(pops):
        b.add(Output(name=f"out{i}", shape=b.nodes[p].out_shape), p)
    return b.build()


@functools.cache
def compiled(seed: int, kind: str = "native"):
    """(routed graph, image) of a random graph, or None when the compiler refuses it."""
    from ir.random_graphs import random_float_graph
    from nmc.passes.flow import compile_graph

    g = random_bss2_graph(seed) if kind == "native" else random_float_graph(seed)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # quantizer notes (subtract resets, clipping)
            r = compile_graph(g, TARGET, **strategies(seed)).graph
            return r, write_image(r, TARGET)
    except NmcError:
        return None


@pytest.fixture(scope="module")
def corpus():
    out = []
    for seed in SEEDS:
        res = compiled(seed)
        if res is not None:
            out.append((seed, res[0], res[1], emulator.load(res[1])))
    for seed in range(12):
        res = compiled(seed, "float")
        if res is not None:
            out.append((1000 + seed, res[0], res[1], emulator.load(res[1])))
    assert len(out) >= 100
    return out


def inputs_for(g, seed: int, batch: int = 2, ticks: int = 24, rate: float = 0.25):
    rng = np.random.default_rng([seed, 11])
    return {n.name: rng.random((batch, ticks, *n.out_shape)) < rate for n in g.inputs}


def pops_of(g) -> list[str]:
    return [n.name for n in g.nodes.values() if n.category == "neuron"]


def assert_same(g, chip, ins, mode: str = "fast", kernels=None, **kw):
    pops = pops_of(g)
    ref = run_int(g, ins, probes=pops, kernels=kernels)
    res = chip.run(ins, mode=mode, probes=pops, **kw)
    for o in ref.outputs:
        want = np.asarray(ref.outputs[o])
        assert np.array_equal(want.reshape(res.outputs[o].shape), res.outputs[o]), \
            f"{g.name}: output {o} ({mode})"
    for p in pops:
        shape = res.probes[p]["v"].shape
        for var, rvar in (("v", "v"), ("i_exc", "i_exc"), ("i_inh", "i_inh"), ("ref", "ref"),
                          ("spikes", "out")):
            if var == "spikes" and g.nodes[p].readout:
                continue
            want = np.asarray(ref.probes[p][rvar]).reshape(shape)
            assert np.array_equal(want.astype(res.probes[p][var].dtype), res.probes[p][var]), \
                f"{g.name}: {p}.{var} ({mode})"
    return res


# ------------------------------------------------------------------------------------------
# Image round trip
# ------------------------------------------------------------------------------------------
def effective_synapses(g) -> dict:
    """{(source, target population, delay, sign): summed weights (out, in)} from the graph."""
    out: dict = {}
    for n in g.nodes.values():
        if n.kind != "BSS2Synapses":
            continue
        src = g.predecessors(n.name)[0]
        for tgt in g.successors(n.name):
            for sign, ref in enumerate((n.exc, n.inh)):
                if ref is None:
                    continue
                w = np.asarray(g.const(ref), np.int64).reshape(-1, n.out_features,
                                                                n.in_features).sum(0)
                key = (src, tgt, n.delay, sign)
                out[key] = out.get(key, 0) + w
    return {k: v for k, v in out.items() if np.any(v)}


def decoded_synapses(g, chip) -> dict:
    """The same table rebuilt from the decoded chip: labels back to sources, columns back to
    neurons (through the slices and merged circuits)."""
    label_of: dict[int, tuple[str, int]] = {}
    for port in chip.inputs:
        for k, lab in enumerate(port.labels.tolist()):
            if lab >= 0:
                label_of[lab] = (port.name, k)
    for p in chip.populations:
        for k in range(p.size):
            c = chip.cores[p.core[k]]
            if not p.readout:
                label_of[int(c.neuron["label"][p.local[k]])] = (p.name, k)
    sizes = {n.name: n.size for n in g.nodes.values() if n.kind in ("Input", "BSS2Neuron")}
    out: dict = {}
    for c in chip.cores:
        owner = []
        for pi, s, e in c.slices.tolist():
            owner += [(chip.populations[pi].name, k) for k in range(s, e)]
        ax = np.repeat(np.arange(c.n_axons), np.diff(c.syn_ptr))
        for a, comp, sign, w, d in zip(ax.tolist(), c.syn_comp.tolist(), c.syn_group.tolist(),
                                       c.syn_w.tolist(), c.syn_delay.tolist(), strict=True):
            src, i = label_of[int(c.axon_label[a])]
            tgt, j = owner[comp]
            key = (src, tgt, d, sign)
            if key not in out:
                out[key] = np.zeros((sizes[tgt], sizes[src]), np.int64)
            out[key][j, i] += w
    return out


def check_roundtrip(g, img: bytes) -> None:
    chip = emulator.load(img)
    m = g.mapping
    assert chip.family == TARGET and chip.graph_name == g.name and len(chip.cores) == len(m["cores"])
    assert chip.params["chip.speedup"] == 1000.0 and chip.params["widths.label"] == 16
    # neurons: placement, parameters, circuits, labels, noise ids
    from ir.native.brainscales2 import neuron_params

    labels = []
    for p in chip.populations:
        node = g.nodes[p.name]
        prm = neuron_params(g, node)
        for k in range(p.size):
            c = chip.cores[p.core[k]]
            j = p.local[k]
            for f in ("v_leak", "v_threshold", "v_reset", "c_mem", "c_syn_exc", "c_syn_inh",
                      "gain_exc", "gain_inh", "bias", "refractory", "refractory_clock"):
                assert int(c.neuron[f][j]) == int(prm[f][k]), (p.name, k, f)
            assert bool(c.neuron["readout"][j]) == node.readout
            assert int(c.neuron["fpn_id"][j]) == node.id_base + k
            circ = m["cores"][c.id]["brainscales2"]["circuits"].get(p.name, 1)
            assert int(c.neuron["circuits"][j]) == circ
            if not node.readout:
                labels.append(int(c.neuron["label"][j]))
        sl = [(cid, s, e) for cid, cc in enumerate(m["cores"]) for q, s, e in cc["slices"]
              if q == p.name]
        for cid, s, e in sl:
            assert np.all(p.core[s:e] == cid)
    assert len(set(labels)) == len(labels)
    # rows: as many as the partitioner's cost model counted
    for c, cc in zip(chip.cores, m["cores"], strict=True):
        assert c.n_rows == cc["brainscales2"]["rows"]
        assert c.n_circuits == sum((e - s) * cc["brainscales2"]["circuits"].get(q, 1)
                                   for q, s, e in cc["slices"])
    # synapses: every effective weight, sign and delay, and nothing else
    want, got = effective_synapses(g), decoded_synapses(g, chip)
    assert sorted(want) == sorted(got)
    for key in want:
        assert np.array_equal(want[key], got[key]), key


def test_roundtrip_field_by_field(corpus):
    for _seed, g, img, _chip in corpus[:40]:
        check_roundtrip(g, img)


def test_roundtrip_of_the_mlp_example_and_deterministic_bytes():
    import nmc

    c1 = nmc.compile(MLP / "model.json", TARGET)
    check_roundtrip(c1.graph, c1.image)
    c2 = nmc.compile(MLP / "model.json", TARGET)
    assert c1.image == c2.image
    assert write_image(c1.graph, TARGET) == c1.image


def test_corpus_covers_parallel_synapses_merged_circuits_refractory_and_delays(corpus):
    graphs = [g for _, g, _, _ in corpus]
    par = any(np.asarray(g.constants[n.exc.name if n.exc else n.inh.name]).shape[0] > 1
              for g in graphs for n in g.nodes.values() if n.kind == "BSS2Synapses")
    merged = sum(any(c["brainscales2"]["circuits"] for c in g.mapping["cores"]) for g in graphs)
    two = sum(len(g.mapping["cores"]) == 2 for g in graphs)
    refr = any(g.param(n, "refractory").max() > 0 for g in graphs for n in g.nodes.values()
               if n.kind == "BSS2Neuron")
    delays = any(n.delay > 1 for g in graphs for n in g.nodes.values() if n.kind == "BSS2Synapses")
    readout = any(n.readout for g in graphs for n in g.nodes.values() if n.kind == "BSS2Neuron")
    assert par and refr and delays and readout
    assert merged >= 5 and two >= 10


# ------------------------------------------------------------------------------------------
# Fast and cycle mode against the reference
# ------------------------------------------------------------------------------------------
def test_fast_mode_matches_reference_on_random_graphs(corpus):
    saturated = 0
    for seed, g, _img, chip in corpus:
        res = assert_same(g, chip, inputs_for(g, seed))
        saturated += sum(res.stats["counters"]["overflows"].values()) > 0
    assert saturated >= 10  # the saturating rails are exercised too




@pytest.mark.slow
@pytest.mark.usefixtures("_only_when_asked")
@pytest.mark.parametrize("block", range(8))
def test_fast_and_cycle_match_reference_on_many_more_random_graphs(block):
    """Seeds 130..529 (most compile), both modes; with the CI corpus over 300 graphs."""
    for seed in range(130 + 50 * block, 180 + 50 * block):
        res = compiled(seed)
        if res is None:
            continue
        g, img = res
        chip = emulator.load(img)
        ins = inputs_for(g, seed, ticks=16)
        assert_same(g, chip, ins, "fast")
        assert_same(g, chip, ins, "cycle", overrun="stretch")


def test_cycle_mode_matches_reference_and_visiting_order_changes_nothing(corpus):
    small = sorted(corpus, key=lambda c: c[3].n_synapses)[::4][:25]
    two = [c for c in corpus if len(c[3].cores) == 2][:6]
    for seed, g, _img, chip in small + two:
        ins = inputs_for(g, seed, ticks=16)
        base = assert_same(g, chip, ins, "cycle", overrun="stretch")
        assert base.stats["counters"]["overruns"] == 0 or chip.params["noc.overrun"] == "drop"
    for seed, g, _img, chip in two[:3]:
        ins = inputs_for(g, seed, ticks=16)
        base = chip.run(ins, mode="cycle")
        for k in range(2):
            r = chip.run(ins, mode="cycle", visit_order="shuffle", seed=k)
            assert all(np.array_equal(base.outputs[o], r.outputs[o]) for o in base.outputs)
            assert r.stats["counters"] == base.stats["counters"]
        r = chip.run(ins, mode="cycle", visit_order=[1, 0])
        assert r.stats["counters"] == base.stats["counters"]


def test_fast_and_cycle_counters_agree(corpus):
    for seed, g, _img, chip in corpus:  # a graph with events between the two hemispheres
        ins = inputs_for(g, seed, ticks=16)
        f = chip.run(ins)
        if f.stats["counters"]["hops_ew"] > 0:
            break
    c = chip.run(ins, mode="cycle", overrun="stretch")
    for k in ("synaptic_ops", "spikes", "input_events", "packets", "hops_ew", "hops_ns",
              "updates_active", "updates_idle", "idle_core_ticks", "core_ticks", "overflows"):
        assert f.stats["counters"][k] == c.stats["counters"][k], k
    assert c.stats["counters"]["hops_ew"] > 0  # events between the two hemispheres


# ------------------------------------------------------------------------------------------
# A hand-made two-hemisphere graph: golden disassembly, counters, energy, chip time
# ------------------------------------------------------------------------------------------
def two_hemisphere_graph(mapping: dict | None = None):
    """x(3) -> s1 (exc 2 parallel + inh, delay 1) -> h(2, refractory 2 << 1) on hemisphere 0;
    h -> s2 (exc, delay 3) -> o(2) and h -> s3 -> r(1, readout) on hemisphere 1."""
    b = GraphBuilder("two_hemi", stage=Stage.ROUTED, attrs={"target": TARGET})
    b.add(Input(name="x", shape=(3,)))
    b.add(BSS2Synapses(name="s1", in_features=3, out_features=2,
                       exc=b.const("s1.exc", np.array([[[63, 0, 10], [0, 40, 0]],
                                                       [[20, 0, 0], [0, 0, 0]]])),
                       inh=b.const("s1.inh", np.array([[[0, 5, 0], [30, 0, 0]]]))), "x")
    b.add(BSS2Neuron(name="h", shape=(2,), v_leak=300, v_threshold=305, v_reset=250, c_mem=10,
                     gain_exc=b.const("h.ge", np.array([3, 4])), gain_inh=2, bias=5,
                     refractory=2, refractory_clock=1, id_base=7), "s1")
    b.add(BSS2Synapses(name="s2", in_features=2, out_features=2,
                       exc=b.const("s2.exc", np.array([[[50, 0], [0, 60]]])), delay=3), "h")
    b.add(BSS2Neuron(name="o", shape=(2,), v_leak=400, v_threshold=410, v_reset=400, c_mem=0,
                     c_syn_exc=500, gain_exc=8, id_base=9), "s2")
    b.add(BSS2Synapses(name="s3", in_features=2, out_features=1,
                       exc=b.const("s3.exc", np.array([[[7, 9]]]))), "h")
    b.add(BSS2Neuron(name="r", shape=(1,), v_leak=500, v_threshold=1000, v_reset=500, c_mem=100,
                     gain_exc=5, readout=True, id_base=11), "s3")
    b.add(Output(name="out", shape=(2,)), "o")
    b.add(Output(name="val", shape=(1,)), "r")
    m = mapping or {
        "strategy": {"partition": "hand", "place": "hand"},
        "cores": [
            {"id": 0, "slices": [["h", 0, 2]], "chip": 0, "x": 0, "y": 0,
             "axons": [["s1", 0, 3]], "brainscales2": {"rows": 4, "circuits": {}}},
            {"id": 1, "slices": [["o", 0, 2], ["r", 0, 1]], "chip": 0, "x": 1, "y": 0,
             "axons": [["s2", 0, 2], ["s3", 0, 2]],
             "brainscales2": {"rows": 2, "circuits": {"r": 2}}},
        ],
        "routes": [{"source": "h", "start": 0, "stop": 2,
                    "targets": [[1, "s2", 0], [1, "s3", 2]]}],
        "inputs": {"x": [[0, "s1", 0, 0, 3]]},
        "outputs": {"out": [[1, 0, 0, 2]], "val": [[1, 2, 0, 1]]},
        "latency": {"out": 4, "val": 2},
        "extra_latency": {"out": 0, "val": 0},
    }
    return b.build().replace(mapping=m)


GOLDEN_DISASM = """\
core 0  chip 0 x 0 y 0  neurons 2  circuits 2  rows 4  synapses 6  labels in 3  routes 2
  slice h[0:2]
  accept label & 0xffc0 == 0x0000
  n0    leak 300 thr 305 reset 250 c_mem 10 c_syn 1022/1022 gain 3/2 bias 5 ref 2<<1 circuits 1  label 0x0040  id 7
  n1    leak 300 thr 305 reset 250 c_mem 10 c_syn 1022/1022 gain 4/2 bias 5 ref 2<<1 circuits 1  label 0x0041  id 8
  row0    exc group 0 (labels 0x0000..) delay 1  0:0*63 1:1*40
  row1    exc group 0 (labels 0x0000..) delay 1  0:2*10
  row2    exc group 0 (labels 0x0000..) delay 1  0:0*20
  row3    inh group 0 (labels 0x0000..) delay 1  0:1*5 1:0*30
core 1  chip 0 x 1 y 0  neurons 3  circuits 4  rows 2  synapses 4  labels in 2  routes 0
  slice o[0:2]
  slice r[0:1]
  accept label & 0xffc0 == 0x0040
  n0    leak 400 thr 410 reset 400 c_mem 0 c_syn 500/1022 gain 8/1 bias 0 ref 0<<0 circuits 1  label 0x0080  id 9
  n1    leak 400 thr 410 reset 400 c_mem 0 c_syn 500/1022 gain 8/1 bias 0 ref 0<<0 circuits 1  label 0x0081  id 10
  n2    leak 500 thr 1000 reset 500 c_mem 100 c_syn 1022/1022 gain 5/1 bias 0 ref 0<<0 circuits 2  readout  id 11
  row0    exc group 1 (labels 0x0040..) delay 3  0:0*50 1:1*60
  row1    exc group 1 (labels 0x0040..) delay 1  2:0*7 3:1*9
input x[0:3] -> core 0 labels 0x0000..0x0002 (axons 0..2)
output out[0:2] <- core 1 neurons 0..1
output val[0:1] <- core 1 neurons 2..2"""


def test_golden_disassembly_and_reference():
    g = two_hemisphere_graph()
    img = write_image(g, TARGET)
    chip = emulator.load(img)
    assert B2.disasm(chip) == GOLDEN_DISASM
    check_roundtrip(g, img)
    rng = np.random.default_rng(3)
    ins = {"x": rng.random((3, 40, 3)) < 0.5}
    for mode in ("fast", "cycle"):
        res = assert_same(g, chip, ins, mode)
        assert res.outputs["val"].dtype == np.int64 and res.outputs["out"].any()
    # refractory 2 << 1 = 4 ticks held at reset: spikes of h are >= 5 ticks apart
    h = res.probes["h"]["spikes"]
    for b in range(3):
        for n in range(2):
            assert np.all(np.diff(np.flatnonzero(h[b, :, n])) >= 5)


def test_counters_energy_and_chip_time():
    g = two_hemisphere_graph()
    chip = emulator.load(write_image(g, TARGET))
    x = np.zeros((1, 10, 3), bool)
    x[0, 0] = [True, True, False]
    x[0, 1, 2] = True
    res = chip.run({"x": x})
    h = res.probes  # no probes asked
    assert h == {}
    spikes_h = run_int(g, {"x": x}, probes=["h"]).probes["h"]["out"]
    n_h = int(np.asarray(spikes_h).sum())
    cnt = res.stats["counters"]
    # x0 reaches rows 0 and 2 (2 synapses) and the inhibitory synapse of h1 (1): 3; x1: 2;
    # x2: 1; a spike of h0 or h1 reaches 2 synapses on hemisphere 1
    h_t = np.asarray(spikes_h)[0]
    assert cnt["synaptic_ops"] == 3 + 2 + 1 + 2 * int(h_t[:-1].sum())
    assert cnt["input_events"] == 3 and cnt["spikes"] >= n_h
    assert cnt["packets"] == n_h and cnt["hops_ew"] == n_h and cnt["hops_ns"] == 0
    P = chip.params
    T = 10
    assert res.stats["chip_time"]["seconds_per_sample"] == pytest.approx(T * 1e-6)
    want = (cnt["synaptic_ops"] * P["energy.sop"] + cnt["spikes"] * P["energy.spike"]
            + P["energy.static_watts"] * T * 1e-6)
    assert res.stats["energy"]["total_joules"] == pytest.approx(want, rel=1e-12)
    assert "estimate" in res.stats["energy"]["coefficients"]["energy.sop"]["source"]


def test_cycle_mode_overrun_drops_events_and_reports_them():
    # 200 neurons driven to spike every tick on hemisphere 0, feeding themselves and hemisphere
    # 1: 400 events per tick leave hemisphere 0, one per cycle: the 250-cycle tick overruns
    n = 200
    b = GraphBuilder("flood", stage=Stage.QUANTIZED, attrs={"target": TARGET})
    b.add(Input(name="x", shape=(n,)))
    b.add(BSS2Synapses(name="a", in_features=n, out_features=n,
                       exc=b.const("a.exc", 63 * np.eye(n, dtype=np.int64)[None])), "x")
    b.add(BSS2Neuron(name="h", shape=(n,), v_leak=300, v_threshold=301, v_reset=300, c_mem=0,
                     gain_exc=60, bias=200), "a")
    b.add(BSS2Synapses(name="rec", in_features=n, out_features=n, delay=2,
                       exc=b.const("rec.exc", np.eye(n, dtype=np.int64)[None])), "h")
    b.connect("rec", "h")
    b.add(BSS2Synapses(name="c", in_features=n, out_features=40,
                       exc=b.const("c.exc", np.ones((1, 40, n), np.int64))), "h")
    b.add(BSS2Neuron(name="o", shape=(40,), v_leak=300, v_threshold=1000, v_reset=300, c_mem=50),
          "c")
    b.add(Output(name="y", shape=(40,)), "o")
    from nmc.passes.flow import compile_graph

    g = compile_graph(b.build(), TARGET, max_neurons=200).graph
    assert len(g.mapping["cores"]) == 2
    chip = emulator.load(write_image(g, TARGET))
    x = np.ones((1, 6, n), bool)
    fast = chip.run(x, probes=["o"])
    drop = chip.run(x, mode="cycle", probes=["o"])
    noc = drop.stats["noc"]
    assert noc["policy"] == "drop" and drop.stats["counters"]["overruns"] > 0
    assert drop.stats["counters"]["drops"] > 0
    first = noc["overrun_ticks"][0]
    assert first["cycles"] >= first["budget"] == 250 and first["drops"] > 0 and first["links"]
    assert not np.array_equal(fast.probes["o"]["v"], drop.probes["o"]["v"])
    stretch = chip.run(x, mode="cycle", overrun="stretch", probes=["o"])
    assert np.array_equal(fast.probes["o"]["v"], stretch.probes["o"]["v"])
    assert stretch.stats["counters"]["drops"] == 0


# ------------------------------------------------------------------------------------------
# Fixed-pattern noise
# ------------------------------------------------------------------------------------------
def test_spread_codes_match_the_reference_rule():
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 1023, size=500)
    nid = rng.integers(0, 2**32, size=500)
    for sigma, seed, p in ((4.0, 0, 0), (30.5, 12345, 7), (0.3, 2**40, 3)):
        assert np.array_equal(B2.spread_codes(codes, nid, seed, sigma, p, 1022),
                              spread_codes(codes, nid, seed, sigma, p))
    assert np.array_equal(B2.counter_hash(1, nid, 3), __import__(
        "ir.native.truenorth", fromlist=["x"]).counter_hash(1, nid, 3))


def test_fixed_pattern_noise_matches_spread_kernels(corpus):
    for seed, g, _img, chip in corpus[:12]:
        sigma, fseed = 6.0 + seed % 5, seed
        noisy = B2.fixed_pattern_noise(chip, sigma, fseed)
        ins = inputs_for(g, seed, ticks=16)
        assert_same(g, noisy, ins, kernels=spread_kernels(sigma, fseed))
        if seed % 3 == 0:
            assert_same(g, noisy, ins, "cycle", kernels=spread_kernels(sigma, fseed),
                        overrun="stretch")
    # the original chip is untouched; the profile's sigma; zero noise is the ideal chip
    seed, g, _img, chip = corpus[0]
    assert_same(g, chip, inputs_for(g, seed, ticks=8))
    prof = B2.fixed_pattern_noise(chip, "profile", 5)
    assert prof.fpn == {"sigma_codes": 4.0, "seed": 5}
    ideal = B2.fixed_pattern_noise(chip, 0.0)
    assert all(np.array_equal(a.neuron["v_leak"], b.neuron["v_leak"])
               for a, b in zip(ideal.cores, chip.cores, strict=True))
    for bad, msg in ((-1.0, r"^fixed-pattern noise sigma = -1\.0 must be a finite number >= 0 "
                            r"\(codes\)$"),
                     ("lots", r"^fixed-pattern noise sigma 'lots' must be a number of codes or "
                              r"'profile'$")):
        with pytest.raises(InputError, match=msg):
            B2.fixed_pattern_noise(chip, bad)


# ------------------------------------------------------------------------------------------
# Strict mode
# ------------------------------------------------------------------------------------------
def test_strict_run_stops_at_the_first_saturation(corpus):
    seed, g, _img, chip = next(c for c in corpus
                               if sum(c[3].run(inputs_for(c[1], c[0]))
                                      .stats["counters"]["overflows"].values()))
    with pytest.raises(StateOverflowError, match=r"^tick \d+ sample \d: register [vi] of core \d "
                                                 r"neuron \d+ \(population \w+\[\d+\]\) reached "
                                                 r"-?\d+, outside 0\.\.65535 \(widths\.[vi], "
                                                 r"policy saturate\); a strict run stops"):
        chip.run(inputs_for(g, seed), strict=True)


# ------------------------------------------------------------------------------------------
# Loader and writer refusals
# ------------------------------------------------------------------------------------------
def repair(d: bytearray) -> bytes:
    n = struct.unpack_from("<I", d, 12)[0]
    for i in range(n):
        off0 = 32 + 32 * i
        off, length = struct.unpack_from("<QQ", d, off0 + 8)
        struct.pack_into("<I", d, off0 + 24, F.crc32(bytes(d[off:off + length])))
    head = bytes(d[:24]) + b"\0\0\0\0" + bytes(d[28:32])
    struct.pack_into("<I", d, 24, F.crc32(head + bytes(d[32:32 + 32 * n])))
    struct.pack_into("<I", d, len(d) - 4, F.crc32(bytes(d[:-4])))
    return bytes(d)


def core_section(img: bytes, cid: int) -> int:
    n = struct.unpack_from("<I", img, 12)[0]
    for i in range(n):
        kind, index = struct.unpack_from("<HH", img, 32 + 32 * i)
        if kind == F.Kind.CORE and index == cid:
            return struct.unpack_from("<Q", img, 32 + 32 * i + 8)[0]
    raise AssertionError


def set_field(img: bytes, cid: int, table: F.BitTable, before: list, record: int, fname: str,
              value: int) -> bytes:
    """Overwrite one bit field of a core's table (``before``: sizes of what precedes it)."""
    chip = emulator.load(img)
    env = B2._env(chip.params)
    base = core_section(img, cid) + sum(before)
    bit = record * table.record_bits(env)
    for f, w in zip(table.fields, table.widths(env), strict=True):
        if f.name == fname:
            break
        bit += w
    d = bytearray(img)
    u = F.to_field(np.array([value]), w, f.signed)[0]
    for k in range(w):
        byte, b = divmod(bit + k, 8)
        d[base + byte] = (d[base + byte] & ~(1 << b)) | (((int(u) >> k) & 1) << b)
    return repair(d)


def test_loader_refuses_out_of_range_fields():
    img = write_image(two_hemisphere_graph(), TARGET)
    chip = emulator.load(img)
    env = B2._env(chip.params)
    c0 = chip.cores[0]
    pre = [F2.BSS2_CORE_HEADER.size, F.SLICE.size * len(c0.slices)]
    filt = pre + [F2.BSS2_FILTER.nbytes(c0.filters["mask"].size, env)]
    neur = filt + [F2.BSS2_NEURON.nbytes(c0.n_neurons, env)]
    rows = neur + [F2.BSS2_ROW.nbytes(c0.n_rows, env)]
    cases = [
        (F2.BSS2_NEURON, filt, 1, "v_threshold", 1023,
         r"BSS2_NEURON\.v_threshold\[1\] = 1023 is out of range \(<= neuron\.code_max 1022\)$"),
        (F2.BSS2_NEURON, filt, 0, "bias", -1023,
         r"BSS2_NEURON\.bias\[0\] = -1023 is out of range \(-1022\.\.1022 \(neuron\.bias_max\)\)$"),
        (F2.BSS2_NEURON, filt, 1, "label", 0x40,
         r"event label 64 belongs to two sources .*labels must be unique$"),
        (F2.BSS2_FILTER, pre, 0, "target", 0x21,
         r"BSS2_FILTER\.target\[0\] = 33 is out of range \(no bit outside its mask\)$"),
        (F2.BSS2_ROW, neur, 0, "delay_minus_1", 15,
         r"BSS2_ROW\.delay_minus_1\[0\] = 15 is out of range \(< synapse\.delay_max 15\)$"),
        (F2.BSS2_SYNAPSE, rows, 3, "address", 3,
         r"BSS2_SYNAPSE\.address\[3\] = 3 is out of range \(0 where the weight is 0"),
        (F2.BSS2_NEURON, filt, 0, "circuits_minus_1", 1,
         r"neurons join 3 circuits, n_circuits = 2$"),
    ]
    for table, before, rec, fname, value, msg in cases:
        bad = set_field(img, 0, table, before, rec, fname, value)
        with pytest.raises(LoadError, match=r"^section (CORE 0|IOMAP|SYMBOLS) at byte offset \d+: "
                                            + msg):
            emulator.load(bad)


def test_loader_fuzz_gives_load_errors_or_running_chips():
    img = write_image(two_hemisphere_graph(), TARGET)
    rng = np.random.default_rng(7)
    start = core_section(img, 0) - 8
    loaded = 0
    for _ in range(300):
        d = bytearray(img)
        for _k in range(int(rng.integers(1, 4))):
            pos = int(rng.integers(start, len(d) - 4))
            d[pos] ^= 1 << int(rng.integers(0, 8))
        try:
            chip = emulator.load(repair(d))
        except LoadError as e:
            assert "unexpected" not in str(e), str(e)
            continue
        loaded += 1
        try:
            chip.run({"x": np.ones((1, 5, 3), bool)})
            chip.run({"x": np.ones((1, 3, 3), bool)}, mode="cycle")
        except EmulatorError:
            pass
    assert loaded > 20


def test_writer_refusals():
    g = two_hemisphere_graph()
    m = g.mapping
    m2 = {**m, "cores": [dict(m["cores"][0]), dict(m["cores"][1], axons=[["s2", 0, 2]])],
          "routes": [{"source": "h", "start": 0, "stop": 2, "targets": [[1, "s2", 0]]}]}
    with pytest.raises(CompileError, match=r"^core 1 \(chip 0, x 1, y 0\): connection s3 has a "
                                           r"synapse from source 0 on this core but no axon"):
        write_image(g.replace(mapping=m2), TARGET)
    m3 = {**m, "cores": [m["cores"][0], dict(m["cores"][1],
                                              brainscales2={"rows": 2, "circuits": {"r": 17}})]}
    with pytest.raises(CompileError, match=r"^core 1: population r has 17 circuits per neuron; "
                                           r"1\.\.16 \(core\.max_merge, target brainscales2\)$"):
        write_image(g.replace(mapping=m3), TARGET)
    big = two_hemisphere_graph()
    nodes = dict(big.nodes)
    nodes["s2"] = BSS2Synapses(name="s2", in_features=2, out_features=2,
                               exc=nodes["s2"].exc, delay=16)
    with pytest.raises(CompileError, match=r"^connection s2: delay 16 outside 1\.\.15 "
                                           r"\(synapse\.delay_max, target brainscales2\); "):
        write_image(big.replace(nodes=nodes), TARGET)


def test_params_rules():
    from nmc.backend.brainscales2 import BSS2Writer
    from nmc.targets import load_profile

    w = BSS2Writer(two_hemisphere_graph(), load_profile(TARGET))
    P = {k: v[0] for k, v in w.params.items()}
    assert B2.params_problem(P) is None
    assert P["widths.bias"] == 11 and P["widths.delay"] == 4 and P["widths.merge"] == 4
    assert P["datapath.v_frac"] == 6 and P["datapath.decay_den"] == 1022
    assert P["noc.cycles_per_sop"] == 0 and P["noc.overrun"] == "drop"
    assert B2.params_problem({**P, "core.row_addresses": 32}) == (
        "core.row_addresses = 32 differs from 2**widths.address (64)")


def test_docs_hold_the_brainscales2_tables():
    doc = (ROOT / "docs" / "image-format.md").read_text()
    section = doc[doc.index("\n## BrainScaleS-2\n"):]
    assert F2.describe() in section
    assert "### BSS2_NEURON (bit-packed)" not in doc[:doc.index("\n## BrainScaleS-2\n")]


def test_cli_run_and_inspect(tmp_path):
    from click.testing import CliRunner

    from nmc.cli import cli

    r = CliRunner().invoke(cli, ["run", str(MLP / "model.json"), "--target", TARGET, "--input",
                                 str(MLP / "test_inputs.npz"), "--limit", "20", "--json"])
    assert r.exit_code == 0, r.output
    import json

    doc = json.loads(r.output[r.output.index("{"):])
    assert doc["family"] == TARGET and doc["accuracy"] >= 0.9
    assert doc["chip_time_per_sample_s"] == pytest.approx(doc["ticks"] * 1e-6)
    path = tmp_path / "two.nmb"
    path.write_bytes(write_image(two_hemisphere_graph(), TARGET))
    r = CliRunner().invoke(cli, ["inspect", str(path), "--disasm"])
    assert r.exit_code == 0, r.output
    assert r.output.rstrip("\n") == GOLDEN_DISASM
