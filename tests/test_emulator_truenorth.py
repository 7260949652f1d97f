"""TrueNorth on the chip: image round trip and emulator vs. the integer reference, bit for bit.

* >= 100 seeded random native TrueNorth graphs (built here: 1-3 populations with per-neuron random
  weights, leaks with and without reversal, every reset mode, kappa, stochastic synapses, leak and
  threshold with fixed seeds, crossbars with 1-2 copies, random axon types, delays 1..15,
  recurrent and skip connections), compiled by the real passes for truenorth-mini (copies or
  splitters, several cores) or for a narrow-membrane wrapping profile, written, loaded and run:
  every output port and every population's V and spikes equal ``ir.interp_int.run_int`` on the
  routed graph, and the quantized graph's after ``mapping["extra_latency"]``;
* cycle mode (16-slot schedulers, packets through the network on chip) equals fast mode and the
  reference; visiting the cores in a shuffled order changes nothing; counters agree;
* the image: every field of the graph is what the loaded chip holds; identical bytes twice;
  range checks name section and offset; mutated images give only LoadError;
* the PRNG equals the reference's; overflow policies and strict mode; energy from the image's
  coefficients (26 pJ per synaptic event); the MLP example end to end through ``nmc run``.
"""

from __future__ import annotations

import functools
import re
import struct
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from test_image import strategies

import emulator
from emulator import format as F
from emulator import truenorth as tn
from emulator.errors import EmulatorError, LoadError, StateOverflowError
from ir.errors import NmcError
from ir.graph import GraphBuilder, Stage
from ir.interp_int import run_int
from ir.native.truenorth import TrueNorthCrossbar, TrueNorthNeuron
from ir.nodes import Input, Output
from nmc.backend.writer import write_image

ROOT = Path(__file__).resolve().parent.parent
MINI = ROOT / "nmc" / "targets" / "truenorth-mini.toml"
WRAP_EVERY = 7
"""Every 7th seed is compiled for a wrapping 10-bit-membrane variant of truenorth-mini."""


# ------------------------------------------------------------------------------------------
# Random native graphs
# ------------------------------------------------------------------------------------------
def random_tn_graph(seed: int, target: str = "truenorth-mini", v_bits: int = 20,
                    overflow: str = "saturate"):
    """A random quantized TrueNorth graph (see the module doc). Narrow membranes get large
    weights so that the register overflows; 'quiet' graphs (no leak, delay 1, deterministic)
    are retimable, so splitters there add latency."""
    rng = np.random.default_rng([seed, 2024])
    b = GraphBuilder(f"tn{seed}", stage=Stage.QUANTIZED, attrs={"target": target})
    n_in = int(rng.integers(3, 25))
    b.add(Input(name="x", shape=(n_in,)))
    srcs = [("x", n_in)]
    id_next = 0
    vmax = (1 << (v_bits - 1)) - 1
    stoch_any = rng.random() < 0.35
    quiet = not stoch_any and rng.random() < 0.4
    for li in range(int(rng.integers(1, 4))):
        n = int(rng.integers(3, 49))
        name = f"p{li}"

        def arr(lo: int, hi: int, name=name, n=n):
            if rng.random() < 0.3:
                return int(rng.integers(lo, hi + 1))
            return b.const(f"{name}.p", rng.integers(lo, hi + 1, n).astype(np.int32))

        wmax = 255 if v_bits < 20 else int(rng.choice([4, 16, 64]))
        params = dict(
            s0=arr(-wmax, wmax), s1=arr(-wmax, wmax), s2=arr(-wmax, wmax), s3=arr(-wmax, wmax),
            leak=0 if quiet else arr(-4, 4), leak_rev=arr(0, 1),
            alpha=arr(1, min(vmax, 3 * wmax)), beta=arr(0, min(vmax, 3 * wmax)),
            gamma=arr(0, 2), kappa=arr(0, 1), v_reset=arr(-min(vmax, 10), min(vmax, 10)))
        if stoch_any and rng.random() < 0.6:
            params.update(stoch_syn=arr(0, 15), stoch_leak=arr(0, 1), tm=arr(0, 4))
        b.add(TrueNorthNeuron(name=name, shape=(n,), v_bits=v_bits, overflow=overflow,
                              seed=int(rng.integers(0, 2**32)), id_base=id_next, **params))
        id_next += n
        feeds = [srcs[-1]]
        if len(srcs) > 1 and rng.random() < 0.4:
            feeds.append(srcs[int(rng.integers(0, len(srcs) - 1))])
        if rng.random() < 0.25:
            feeds.append((name, n))  # recurrent
        for fi, (s, m) in enumerate(feeds):
            copies = int(rng.choice([1, 1, 2]))
            dens = float(rng.uniform(0.05, min(0.6, 40.0 / (m * copies))))
            d = 1 if quiet else int(rng.choice([1, 1, 2, 3, int(rng.integers(1, 16))]))
            cn = f"c{li}_{fi}"
            b.add(TrueNorthCrossbar(
                name=cn, in_features=m, out_features=n, copies=copies,
                crossbar=b.const(f"{cn}.cb", rng.random((n, m * copies)) < dens),
                axon_types=b.const(f"{cn}.ty", rng.integers(0, 4, m * copies).astype(np.int8)),
                delay=d), s)
            b.connect(cn, name)
        srcs.append((name, n))
    b.add(Output(name="y", shape=(srcs[-1][1],)), srcs[-1][0])
    if len(srcs) > 2 and rng.random() < 0.5:
        b.add(Output(name="z", shape=(srcs[1][1],)), srcs[1][0])
    return b.build()


@pytest.fixture(scope="module")
def wrap_profile(tmp_path_factory) -> Path:
    """truenorth-mini with a 10-bit wrapping membrane (overflows are common)."""
    text = MINI.read_text().replace('name = "truenorth-mini"', 'name = "tn-wrap10"')
    text = text.replace("membrane = 20", "membrane = 10")
    text = text.replace("threshold = 18", "threshold = 9").replace("reset = 18", "reset = 9")
    text = re.sub(r'(?m)^membrane = "saturate"', 'membrane = "wrap"', text)
    assert 'membrane = "wrap"' in text and "membrane = 10" in text
    path = tmp_path_factory.mktemp("profiles") / "tn-wrap10.toml"
    path.write_text(text)
    return path


@functools.cache
def compiled_tn(seed: int, profile: str | None = None):
    """(quantized graph, routed graph, image) of a random graph, or None when the compiler
    refuses it (some seeds do not fit truenorth-mini or cannot be legalised exactly)."""
    from nmc.passes.flow import compile_graph

    if profile is None:
        g = random_tn_graph(seed)
        target: str | Path = "truenorth-mini"
    else:
        g = random_tn_graph(seed, "tn-wrap10", v_bits=10, overflow="wrap")
        target = Path(profile)
    try:
        routed = compile_graph(g, target, fanout=("auto", "splitter", "copy")[seed % 3],
                               **strategies(seed // 3)).graph
        return g, routed, write_image(routed, target)
    except NmcError:
        return None


def inputs_for(g, seed: int, batch: int = 2, ticks: int = 30, rate: float = 0.3):
    rng = np.random.default_rng([seed, 11])
    return {n.name: rng.random((batch, ticks, *n.out_shape)) < rate for n in g.inputs}


def assert_same(g, chip, ins, mode: str = "fast", **kw):
    """Chip outputs and every population's V and spikes equal run_int on the routed graph."""
    pops = [n.name for n in g.nodes.values() if n.category == "neuron"]
    ref = run_int(g, ins, probes=pops)
    res = chip.run(ins, mode=mode, probes=pops, **kw)
    for o in ref.outputs:
        want = np.asarray(ref.outputs[o])
        got = res.outputs[o]
        assert np.array_equal(want.reshape(want.shape[0], want.shape[1], -1)[..., :got.shape[2]],
                              got), f"output {o} ({mode})"
    B, T = res.batch, res.ticks
    for p in pops:
        assert np.array_equal(np.asarray(ref.probes[p]["v"]).reshape(B, T, -1),
                              res.probes[p]["v"]), f"{p}.v ({mode})"
        assert np.array_equal(np.asarray(ref.probes[p]["out"]).reshape(B, T, -1).astype(bool),
                              res.probes[p]["spikes"]), f"{p}.spikes ({mode})"
    return res


@pytest.fixture(scope="module")
def corpus(wrap_profile):
    """(seed, quantized graph, routed graph, chip) for the first 100 seeds that compile."""
    out = []
    for seed in range(200):
        res = compiled_tn(seed, str(wrap_profile) if seed % WRAP_EVERY == 0 else None)
        if res is not None:
            out.append((seed, res[0], res[1], emulator.load(res[2])))
        if len(out) == 100:
            break
    assert len(out) == 100
    return out


# ------------------------------------------------------------------------------------------
# Fast mode vs the reference
# ------------------------------------------------------------------------------------------
def test_fast_mode_matches_reference_on_100_random_graphs(corpus):
    cover = dict(gamma=set(), kappa=set(), leak_rev=set(), stoch_syn=0, stoch_leak=0, tm=0,
                 delay=0, cores=0, copies=0, splitters=0, extra=0, wrap_overflows=0)
    for seed, _, g, chip in corpus:
        res = assert_same(g, chip, inputs_for(g, seed))
        for c in chip.cores:
            nr = c.neuron
            cover["gamma"] |= set(nr["gamma"].tolist())
            cover["kappa"] |= set(nr["kappa"].tolist())
            cover["leak_rev"] |= set(nr["leak_rev"][nr["leak"] != 0].tolist())
            cover["stoch_syn"] += int((nr["stoch_syn"] != 0).sum())
            cover["stoch_leak"] += int((nr["stoch_leak"] != 0).sum())
            cover["tm"] += int((nr["tm"] != 0).sum())
            cover["delay"] = max(cover["delay"], int(c.axon["delay"].max(initial=0)))
        dec = g.attrs["passes"]["legalize_family"]
        cover["cores"] = max(cover["cores"], len(chip.cores))
        cover["copies"] += bool(dec.get("copies"))
        cover["splitters"] += bool(dec.get("splitters"))
        cover["extra"] += max(g.mapping["extra_latency"].values()) > 0
        if seed % WRAP_EVERY == 0:
            cover["wrap_overflows"] += res.stats["counters"]["overflows"]["v"]
    assert cover["gamma"] == {0, 1, 2} and cover["kappa"] == {0, 1} and cover["leak_rev"] == {0, 1}
    assert min(cover["stoch_syn"], cover["stoch_leak"], cover["tm"]) > 0
    assert cover["delay"] >= 12 and cover["cores"] >= 8
    assert min(cover["copies"], cover["splitters"], cover["extra"]) >= 3
    assert cover["wrap_overflows"] > 0


def test_chip_equals_quantized_graph_after_extra_latency(corpus):
    checked = 0
    for seed, q, g, chip in corpus:
        lat = g.mapping["extra_latency"]
        if not any(lat.values()) and checked >= 10:
            continue
        ins = inputs_for(q, seed, ticks=30)
        ref = run_int(q, ins)
        res = chip.run(ins)
        for o, want in ref.outputs.items():
            want = np.asarray(want).reshape(2, 30, -1)
            r = int(lat[o])
            got = res.outputs[o][:, r:, :want.shape[2]]
            assert r == res.latency[o]
            assert np.array_equal(want[:, :30 - r], got), (seed, o)
        checked += 1
    assert checked >= 15




@pytest.mark.slow
@pytest.mark.usefixtures("_only_when_asked")
@pytest.mark.parametrize("block", range(8))
def test_fast_and_cycle_match_reference_on_many_more_random_graphs(block, wrap_profile):
    """Seeds 200..599 (about 260 graphs that compile), both modes (about 70 s in all)."""
    for seed in range(200 + 50 * block, 250 + 50 * block):
        res = compiled_tn(seed, str(wrap_profile) if seed % WRAP_EVERY == 0 else None)
        if res is None:
            continue
        chip = emulator.load(res[2])
        ins = inputs_for(res[1], seed, ticks=24)
        for mode in ("fast", "cycle"):
            assert_same(res[1], chip, ins, mode)


# ------------------------------------------------------------------------------------------
# Cycle mode
# ------------------------------------------------------------------------------------------
def test_cycle_mode_matches_fast_mode_and_reference(corpus):
    stoch = [c for c in corpus if any((k.neuron["tm"] > 0).any() for k in c[3].cores)]
    split = [c for c in corpus if max(c[2].mapping["extra_latency"].values()) > 0]
    small = sorted(corpus, key=lambda c: c[3].n_synapses)[:8] + stoch[:2] + split[:2]
    for seed, _, g, chip in small:
        ins = inputs_for(g, seed, ticks=20)
        cyc = assert_same(g, chip, ins, "cycle")
        fast = chip.run(ins, mode="fast")
        assert cyc.stats["noc"]["overrun_ticks"] == []
        for k in ("synaptic_ops", "spikes", "input_events", "packets", "hops_ew", "hops_ns",
                  "updates_active", "updates_idle", "idle_core_ticks", "core_ticks", "overflows"):
            assert cyc.stats["counters"][k] == fast.stats["counters"][k], (seed, k)


def test_visiting_cores_in_shuffled_order_changes_nothing(corpus):
    seed, _, g, chip = max((c for c in corpus if len(c[3].cores) <= 40),
                           key=lambda c: len(c[3].cores))
    assert len(chip.cores) >= 8
    ins = inputs_for(g, seed, ticks=15)
    base = chip.run(ins, mode="cycle")
    for order in ("shuffle", "shuffle", list(range(len(chip.cores)))[::-1]):
        r = chip.run(ins, mode="cycle", visit_order=order, seed=len(str(order)))
        assert all(np.array_equal(base.outputs[o], r.outputs[o]) for o in base.outputs)
        assert r.stats["counters"] == base.stats["counters"]


def test_overrun_drops_packets_and_is_reported(corpus):
    """A chip whose tick is too short for its traffic: with the drop policy (TrueNorth's
    global tick) late packets are lost and every overrun is listed; with stretch the spikes stay
    those of fast mode."""
    seed, _, g, chip = max((c for c in corpus if len(c[3].cores) <= 40),
                           key=lambda c: len(c[3].cores))
    ins = inputs_for(g, seed, ticks=12, rate=0.6)
    fast = chip.run(ins)
    chip.params["chip.tick_seconds"] = 2e-7  # 20 cycles at 100 MHz
    try:
        drop = chip.run(ins, mode="cycle", overrun="drop")
        stretch = chip.run(ins, mode="cycle", overrun="stretch")
    finally:
        chip.params["chip.tick_seconds"] = 1e-3
    assert drop.stats["counters"]["drops"] > 0 and drop.stats["counters"]["overruns"] > 0
    assert drop.stats["noc"]["overrun_ticks"][0]["budget"] == 20
    assert all(np.array_equal(fast.outputs[o], stretch.outputs[o]) for o in fast.outputs)
    assert stretch.stats["counters"]["drops"] == 0


# ------------------------------------------------------------------------------------------
# The image
# ------------------------------------------------------------------------------------------
def _pop_param(g, pop, f):
    return np.asarray(g.param(g.nodes[pop], f, np.int64)).reshape(-1)


def check_round_trip(g, chip):
    """Every field of the routed graph is what the loaded chip holds."""
    from nmc.passes.cost import network

    pops = {p.name: p for p in chip.populations}
    neurons = [n for n in g.nodes.values() if n.category == "neuron"]
    assert list(pops) == [n.name for n in neurons]
    for node in neurons:
        p = pops[node.name]
        assert p.size == node.size and not p.readout
        for f in ("s0", "s1", "s2", "s3", "stoch_syn", "leak", "leak_rev", "stoch_leak", "alpha",
                  "beta", "tm", "gamma", "kappa", "v_reset"):
            got = np.array([chip.cores[c].neuron[f][k] for c, k in zip(p.core, p.local,
                                                                       strict=True)])
            np.testing.assert_array_equal(got, _pop_param(g, node.name, f), f"{node.name}.{f}")
        for f, want in (("v_bits", node.v_bits), ("overflow", int(node.overflow == "wrap")),
                        ("seed", node.seed)):
            assert {int(chip.cores[c].neuron[f][k]) for c, k in zip(p.core, p.local,
                                                                    strict=True)} == {want}
        nid = [int(chip.cores[c].neuron["nid"][k]) for c, k in zip(p.core, p.local, strict=True)]
        assert nid == list(range(node.id_base, node.id_base + node.size))
    for entry, core in zip(g.mapping["cores"], chip.cores, strict=True):
        assert (core.chip, core.x, core.y) == (entry["chip"], entry["x"], entry["y"])
        assert [[chip.populations[i].name, s, e] for i, s, e in core.slices.tolist()] == \
            [list(s) for s in entry["slices"]]
        assert core.axon["type"].tolist() == entry["truenorth"]["axon_types"]
    # synapses: (source, source index, axon type, delay) -> (target, element) from the chip's
    # crossbars, axons, routes and input entries, against every crossbar bit of the graph
    src_of = {}
    for port in chip.inputs:
        for c, a, s, e in port.entries.tolist():
            for k in range(s, e):
                src_of[(c, a + k - s)] = (port.name, k)
    for p in chip.populations:
        for k, (c, j) in enumerate(zip(p.core, p.local, strict=True)):
            core = chip.cores[c]
            for r in range(core.route_ptr[j], core.route_ptr[j + 1]):
                src_of[(int(core.route_core[r]), int(core.route_axon[r]))] = (p.name, k)
    pop_of = {(int(c), int(j)): (p.name, k) for p in chip.populations
              for k, (c, j) in enumerate(zip(p.core, p.local, strict=True))}
    got = []
    for core in chip.cores:
        for a, j in zip(*np.nonzero(core.crossbar), strict=True):
            got.append((*src_of[(core.id, int(a))], int(core.axon["type"][a]),
                        int(core.axon["delay"][a]), *pop_of[(core.id, int(j))]))
    want = []
    net = network(g)
    for name, syn in net.conns.items():
        node = g.nodes[name]
        cb = np.asarray(g.const(node.crossbar)).astype(bool)
        ty = np.asarray(g.const(node.axon_types)).astype(np.int64)
        for t in syn.targets:
            for j, i in zip(*np.nonzero(cb), strict=True):
                want.append((syn.source, int(i), int(ty[i]), int(node.delay), t, int(j)))
    assert sorted(got) == sorted(want)
    for port in chip.outputs:
        assert port.entries.tolist() == [list(e) for e in g.mapping["outputs"][port.name]]
        assert port.latency == g.mapping["latency"][port.name]
        assert port.extra_latency == g.mapping["extra_latency"][port.name]
    for port in chip.inputs:
        assert port.entries.tolist() == [[e[0], e[2], e[3], e[4]]
                                         for e in g.mapping["inputs"][port.name]]


def test_image_round_trip_field_by_field_and_deterministic(corpus, wrap_profile):
    picked = corpus[:6] + [c for c in corpus if c[0] % WRAP_EVERY == 0][:2] + \
        [c for c in corpus if max(c[2].mapping["extra_latency"].values()) > 0][:2]
    for seed, _, g, chip in picked:
        check_round_trip(g, chip)
        target = wrap_profile if seed % WRAP_EVERY == 0 else "truenorth-mini"
        assert write_image(g, target) == compiled_tn(
            seed, str(wrap_profile) if seed % WRAP_EVERY == 0 else None)[2]
    assert chip.family == "truenorth"
    assert chip.sources["energy.sop"] == "paper: Merolla 2014 (26 pJ per synaptic event)"


def _small_image(corpus) -> tuple[bytes, object]:
    seed, _, g, chip = min(corpus, key=lambda c: len(c[3].cores) * 1000 + c[3].n_neurons)
    return compiled_tn(seed, None)[2], chip


def _neuron_field_offset(data: bytes, core: int, field: str, k: int) -> tuple[int, int, int]:
    """(byte offset of the CORE section, bit offset of TN_NEURON[k].field in it, width)."""
    chip = emulator.load(data)
    n = struct.unpack_from("<I", data, 12)[0]
    for i in range(n):
        kind, index = struct.unpack_from("<HH", data, 32 + 32 * i)
        off, _ = struct.unpack_from("<QQ", data, 32 + 32 * i + 8)
        if kind == F.Kind.CORE and index == core:
            break
    c = chip.cores[core]
    P = chip.params
    env = {key: v for key, v in P.items() if isinstance(v, int)}
    env["w_rlen"] = int(F.TN_CORE_HEADER.unpack(data, off)[0]["w_rlen"])
    at = F.TN_CORE_HEADER.size + len(c.slices) * F.SLICE.size + F.TN_AXON.nbytes(c.n_axons, env)
    widths = F.TN_NEURON.widths(env)
    names = [f.name for f in F.TN_NEURON.fields]
    bit = 8 * at + k * sum(widths) + sum(widths[:names.index(field)])
    return off, bit, widths[names.index(field)]


def test_loader_range_checks_name_section_and_offset(corpus):
    from test_loader_fuzz import repair_crcs

    data, chip = _small_image(corpus)
    off, bit, w = _neuron_field_offset(data, 0, "gamma", 0)
    d = bytearray(data)
    word = int.from_bytes(d[off + bit // 8:off + bit // 8 + 4], "little")
    word |= 3 << (bit % 8)  # gamma = 3: not a reset mode
    d[off + bit // 8:off + bit // 8 + 4] = word.to_bytes(4, "little")
    with pytest.raises(LoadError, match=r"^section CORE 0 at byte offset \d+: "
                       r"(TN_NEURON\.gamma\[0\]|TN_NEURON\[0\]\.gamma) = 3 is out of range"):
        emulator.load(repair_crcs(bytes(d)))
    with pytest.raises(LoadError, match=r"^section CORE 0 at byte offset \d+: CRC mismatch"):
        emulator.load(bytes(d))
    bad = bytearray(data)
    bad[-1] ^= 1
    with pytest.raises(LoadError, match=r"^section trailer at byte offset \d+: file CRC mismatch"):
        emulator.load(bytes(bad))


def test_mutated_images_give_only_load_errors(corpus):
    from test_loader_fuzz import mutate, repair_crcs

    data, _ = _small_image(corpus)
    rng = np.random.default_rng(7)
    refused = loaded = 0
    for k in range(300):
        m = mutate(data, rng)
        if k % 2:
            try:
                m = repair_crcs(m)
            except struct.error:
                pass
        if m == data:
            continue
        try:
            chip = emulator.load(m)
        except LoadError as e:
            assert not str(e).split(": ", 1)[-1].startswith("unexpected"), str(e)
            refused += 1
            continue
        assert k % 2, "a raw mutation passed every CRC"
        loaded += 1
        try:
            chip.run(ticks=3, batch=1)
        except EmulatorError:
            pass
    assert refused > 200


# ------------------------------------------------------------------------------------------
# Datapath details
# ------------------------------------------------------------------------------------------
def test_prng_equals_the_reference_hash():
    from ir.native import truenorth as ref

    rng = np.random.default_rng(3)
    seed = rng.integers(0, 2**32, 50, dtype=np.uint64)
    nid = rng.integers(0, 2**32, 50)
    draw = rng.integers(0, 200, 50)
    for t in (0, 1, 77, 2**31 + 5):
        np.testing.assert_array_equal(tn.prn64(seed, nid, t, draw),
                                      ref.prn64(seed, nid, t, draw))
    assert tn.counter_hash(0, 0, 0, 0) == ref.counter_hash(0, 0, 0, 0)
    assert int(tn.counter_hash(1)) == 0x910A2DEC89025CC1  # SplitMix64 of (1 + golden)


def _one_core_chip(profile: str | Path = "truenorth-mini", n_in: int = 40, delay: int = 1,
                   **params):
    """x (n_in) -> all-ones crossbar with types i % 4 -> one population of 4 neurons -> y."""
    from nmc.passes.flow import compile_graph

    name = "truenorth-mini" if isinstance(profile, str) else Path(profile).stem
    b = GraphBuilder("one", stage=Stage.QUANTIZED, attrs={"target": name})
    b.add(Input(name="x", shape=(n_in,)))
    b.add(TrueNorthCrossbar(name="c", in_features=n_in, out_features=4,
                            crossbar=b.const("cb", np.ones((4, n_in), bool)),
                            axon_types=b.const("ty", (np.arange(n_in) % 4).astype(np.int8)),
                            delay=delay), "x")
    b.add(TrueNorthNeuron(name="n", shape=(4,), **params), "c")
    b.add(Output(name="y", shape=(4,)), "n")
    g = compile_graph(b.build(), profile).graph
    return g, emulator.load(write_image(g, profile))


def test_stochastic_synapses_leak_and_threshold_match_the_reference():
    g, chip = _one_core_chip(s0=3, s1=-2, s2=200, s3=-255, stoch_syn=0b1011, leak=-7,
                             stoch_leak=1, leak_rev=1, alpha=9, beta=40, tm=5, gamma=1,
                             seed=12345, id_base=7)
    x = np.random.default_rng(0).random((3, 120, 40)) < 0.5
    for mode in ("fast", "cycle"):
        res = assert_same(g, chip, x, mode)
    v = res.probes["n"]["v"]
    assert res.outputs["y"].sum() > 10 and len(np.unique(v)) > 30
    # the draws do not depend on the sample: equal inputs give equal traces
    same = chip.run(np.broadcast_to(x[:1], x.shape))
    assert all(np.array_equal(same.outputs["y"][0], same.outputs["y"][b]) for b in range(3))


def test_host_input_delay_of_fifteen_ticks():
    g, chip = _one_core_chip(delay=15, s0=1, s1=1, s2=1, s3=1, alpha=1)
    x = np.zeros((20, 40), bool)
    x[2, 0] = True
    for mode in ("fast", "cycle"):
        res = assert_same(g, chip, x, mode)
        assert np.flatnonzero(res.outputs["y"][0, :, 0]).tolist() == [17]


def test_overflow_policies_and_strict_mode(wrap_profile, tmp_path):
    x = np.ones((8, 40), bool)
    g, chip = _one_core_chip(wrap_profile, s0=255, s1=255, s2=255, s3=255, alpha=511, gamma=2,
                             v_bits=10, overflow="wrap")
    for mode in ("fast", "cycle"):
        res = assert_same(g, chip, x, mode)
        assert res.stats["counters"]["overflows"]["v"] > 0
    # t1: 40 active axons x 255 = 10200 >= 511: spike, no reset, wraps to 10200 - 20 * 1024
    assert res.probes["n"]["v"][0, 1, 0] == 10200 - 10 * 1024
    sat = Path(wrap_profile).read_text().replace('membrane = "wrap"', 'membrane = "saturate"')
    sat = sat.replace('name = "tn-wrap10"', 'name = "tn-sat10"')
    (tmp_path / "tn-sat10.toml").write_text(sat)
    g, chip = _one_core_chip(tmp_path / "tn-sat10.toml", s0=255, s1=255, s2=255, s3=255,
                             alpha=511, gamma=2, v_bits=10, overflow="saturate")
    res = assert_same(g, chip, x, "fast")
    assert res.probes["n"]["v"][0, 1:, 0].tolist() == [511] * 7
    for mode in ("fast", "cycle"):
        with pytest.raises(StateOverflowError, match=r"^tick 1 sample 0: membrane V of core 0 "
                           r"neuron 0 \(population n\[0\]\) reached 10200, outside -512\.\.511 "
                           r"\(v_bits = 10, policy saturate\); a strict run stops at the first "
                           r"overflow \(run without strict to count them\)$"):
            chip.run(x, mode=mode, strict=True)


# ------------------------------------------------------------------------------------------
# Counters, energy, the example
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mlp():
    import nmc

    folder = ROOT / "examples" / "ann_conversion" / "mlp"
    with np.load(folder / "test_inputs.npz") as z:
        x, y = z["spikes"][:12], z["labels"][:12]
    return nmc.compile(folder / "model.json", "truenorth"), x, y


def test_energy_is_the_documented_sum_with_truenorth_coefficients(mlp):
    compiled, x, _ = mlp
    chip = compiled.chip()
    res = chip.run(x)
    c, P = res.stats["counters"], chip.params
    B, T = res.batch, res.ticks
    assert c["synaptic_ops"] > 0 and 0 < c["packets"] <= c["spikes"]
    want = (c["synaptic_ops"] * 26e-12 + 0.065 * T * 1e-3 * chip.n_chips * B)
    e = res.stats["energy"]
    assert e["total_joules"] == pytest.approx(want, rel=1e-12)
    assert e["coefficients"]["energy.sop"] == {"value": 26e-12, "source": "paper: Merolla 2014 "
                                               "(26 pJ per synaptic event)"}
    assert res.stats["chip_time"]["seconds_per_sample"] == pytest.approx(T * 1e-3)
    assert c["updates_active"] + c["updates_idle"] == B * T * chip.n_neurons
    cyc = chip.run(x[:2], mode="cycle")
    # RANC timing: every neuron scans every axon, 258 clocks per neuron of a 256-neuron core
    assert P["noc.cycles_per_update"] == 258 and cyc.stats["noc"]["overrun_ticks"] == []
    assert max(cyc.stats["noc"]["cycles_per_tick"]) >= max(k.n_neurons for k in chip.cores) * 258


def test_mlp_example_matches_the_reference_and_runs_from_the_cli(mlp):
    from nmc.cli import cli

    compiled, x, _ = mlp
    chip = compiled.chip()
    assert_same(compiled.graph, chip, x[:4])
    folder = ROOT / "examples" / "ann_conversion" / "mlp"
    r = CliRunner().invoke(cli, ["run", str(folder / "model.json"), "--target", "truenorth",
                                 "--input", str(folder / "test_inputs.npz"), "--limit", "12"])
    assert r.exit_code == 0, r.output
    acc = re.search(r"^accuracy\s+([\d.]+) % on 12 samples$", r.output, re.M)
    assert acc is not None, r.output
    assert float(acc.group(1)) >= 75.0
