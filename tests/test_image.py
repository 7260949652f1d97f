"""Chip image: writer -> bytes -> loader, field by field; golden hexdump; determinism; refusals.

Helpers here (``two_core_graph``, ``compiled``) are shared with the other emulator tests.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import emulator
from emulator import format as F
from emulator.errors import LoadError
from ir.errors import CompileError
from ir.graph import GraphBuilder, Stage
from ir.native.loihi import LoihiCompartment, LoihiDense, LoihiSparse, legalize_weights
from ir.nodes import Input, Output, Ref
from nmc.backend.writer import save_image, write_image

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "data" / "golden"
GOLDEN_PROFILE = GOLDEN / "golden-loihi.toml"
REGEN = os.environ.get("NMC_REGEN_GOLDEN") == "1"


# ------------------------------------------------------------------------------------------
# Graphs
# ------------------------------------------------------------------------------------------
def two_core_graph(target: str = "golden-loihi", mapping: dict | None = None):
    """x(4) -> fc1 (dense, mixed, exp -1) -> h(3) -> fc2 (sparse, excitatory, delay 2) -> o(2),
    plus a readout r(2) fed by h; h on core 0, o and r on core 1 (hand-made routed mapping)."""
    b = GraphBuilder("two_core", stage=Stage.ROUTED, attrs={"target": target})
    b.add(Input(name="x", shape=(4,)))
    w1 = b.const("fc1.weight", np.array([[64, -32, 0, 128], [-256, 254, 2, 0],
                                         [30, 30, 30, 30]], np.int64))
    b.add(LoihiDense(name="fc1", in_features=4, out_features=3, weight=w1, weight_exp=-1), "x")
    b.add(LoihiCompartment(name="h", shape=(3,), du=b.const("h.du", np.array([0, 1024, 4095])),
                           dv=256, vth_mant=b.const("h.vth", np.array([10, 20, 10])),
                           bias_mant=b.const("h.bias", np.array([-5, 0, 100])), bias_exp=2,
                           refractory=2), "fc1")
    b.add(LoihiSparse(name="fc2", in_features=3, out_features=2,
                      rows=b.const("fc2.rows", np.array([0, 1, 1, 0])),
                      cols=b.const("fc2.cols", np.array([0, 1, 2, 0])),
                      values=b.const("fc2.values", np.array([100.0, 50.0, 255.0, 20.0])),
                      sign_mode="excitatory", num_weight_bits=6, delay=2, weight_exp=1), "h")
    b.add(LoihiCompartment(name="o", shape=(2,), du=4095, dv=0, vth_mant=50), "fc2")
    b.add(LoihiDense(name="fc3", in_features=3, out_features=2,
                     weight=b.const("fc3.weight", np.array([[1, 2, 3], [-4, 5, -6]])),
                     sign_mode="mixed", num_weight_bits=8, weight_exp=3), "h")
    b.add(LoihiCompartment(name="r", shape=(2,), du=2048, dv=4000, vth_mant=0, readout=True), "fc3")
    b.add(Output(name="out", shape=(2,)), "o")
    b.add(Output(name="val", shape=(2,)), "r")
    g = b.build()
    m = mapping or {
        "strategy": {"partition": "hand", "place": "hand"},
        "cores": [
            {"id": 0, "slices": [["h", 0, 3]], "chip": 0, "x": 0, "y": 0,
             "axons": [["fc1", 0, 4]]},
            {"id": 1, "slices": [["o", 0, 2], ["r", 0, 2]], "chip": 0, "x": 1, "y": 1,
             "axons": [["fc2", 0, 3], ["fc3", 0, 3]]},
        ],
        "routes": [{"source": "h", "start": 0, "stop": 3,
                    "targets": [[1, "fc2", 0], [1, "fc3", 3]]}],
        "inputs": {"x": [[0, "fc1", 0, 0, 4]]},
        "outputs": {"out": [[1, 0, 0, 2]], "val": [[1, 2, 0, 2]]},
        "latency": {"out": 3, "val": 2},
        "extra_latency": {"out": 0, "val": 0},
    }
    return g.replace(mapping=m)


def strategies(seed: int) -> dict:
    """Mapping strategies by seed, so that the random corpora cover every partition x place
    combination."""
    return {"partition": ("contiguous", "mincut")[seed % 2],
            "place": ("greedy", "anneal")[(seed // 2) % 2]}


@functools.cache
def compiled(seed: int, target: str = "loihi-mini"):
    """A random Loihi graph compiled (partition, place, route) for ``target``; None when the
    compiler or the writer refuses it (some seeds do not fit)."""
    from ir.random_graphs import random_loihi_graph
    from nmc.passes.flow import compile_graph

    try:
        g = compile_graph(random_loihi_graph(seed), target, **strategies(seed)).graph
        return g, write_image(g, target)
    except CompileError:
        return None


@pytest.fixture(scope="module")
def golden_image(monkeypatch_module):
    return write_image(two_core_graph(), GOLDEN_PROFILE)


@pytest.fixture(scope="module")
def monkeypatch_module():
    # Provenance names the compiler version; pin it so the golden bytes do not depend on how
    # nmc is installed (source tree vs. wheel).
    import nmc

    old = nmc.__version__
    nmc.__version__ = "golden"
    yield
    nmc.__version__ = old


def hexdump(data: bytes) -> str:
    """16 bytes per line: offset, hex bytes, printable ASCII."""
    lines = []
    for off in range(0, len(data), 16):
        chunk = data[off:off + 16]
        hx = " ".join(f"{b:02x}" for b in chunk)
        asc = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{off:08x}  {hx:<47}  |{asc}|")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------
# Golden image and determinism
# ------------------------------------------------------------------------------------------
def test_golden_hexdump_of_two_core_image(golden_image):
    path = GOLDEN / "loihi_two_core.hex"
    text = hexdump(golden_image)
    if REGEN or not path.exists():
        path.write_text(text)
    assert text == path.read_text()


def test_identical_input_gives_byte_identical_image(monkeypatch_module):
    a = write_image(two_core_graph(), GOLDEN_PROFILE)
    b = write_image(two_core_graph(), GOLDEN_PROFILE)
    assert a == b
    res = compiled(1)
    assert res is not None
    g, _ = res
    assert write_image(g, "loihi-mini") == write_image(g, "loihi-mini")


def test_image_sections_and_sizes(golden_image):
    chip = emulator.load(golden_image)
    assert chip.summary()["cores_used"] == 2
    assert [c.n_neurons for c in chip.cores] == [3, 4]
    assert [c.n_axons for c in chip.cores] == [4, 6]
    assert [c.n_routes for c in chip.cores] == [6, 0]
    assert chip.image_bytes == len(golden_image)
    assert golden_image[:8] == F.MAGIC
    assert int.from_bytes(golden_image[-4:], "little") == F.crc32(golden_image[:-4])


# ------------------------------------------------------------------------------------------
# Round trip, field by field
# ------------------------------------------------------------------------------------------
def _pop_param(g, pop, f):
    node = g.nodes[pop]
    v = getattr(node, f)
    arr = g.const(v) if isinstance(v, Ref) else np.asarray(v)
    return np.broadcast_to(np.asarray(arr), node.out_shape).reshape(-1).astype(np.int64)


def _legal_coo(g, name):
    """(post, pre, legal weight) of a connection, zeros dropped, duplicates kept."""
    node = g.nodes[name]
    if node.kind == "LoihiDense":
        w = legalize_weights(g.const(node.weight), node.sign_mode, node.num_weight_bits)
        w = w.reshape(node.out_features, node.in_features)
        post, pre = np.nonzero(w)
        return post, pre, w[post, pre]
    vals = legalize_weights(g.const(node.values), node.sign_mode, node.num_weight_bits).ravel()
    post = np.asarray(g.const(node.rows)).ravel().astype(np.int64)
    pre = np.asarray(g.const(node.cols)).ravel().astype(np.int64)
    keep = vals != 0
    return post[keep], pre[keep], vals[keep]


def check_round_trip(g, chip):
    """Every field of the compiled graph is what the loaded chip holds."""
    pops = {p.name: p for p in chip.populations}
    neurons = [n for n in g.nodes.values() if n.category == "neuron"]
    assert list(pops) == [n.name for n in neurons]
    for node in neurons:
        p = pops[node.name]
        assert p.size == node.size and p.shape == tuple(node.out_shape)
        assert p.readout == bool(node.readout)
        for f, getter in (
            ("du", lambda c, k: c.cx["du"][c.neuron["cx"][k]]),
            ("dv", lambda c, k: c.cx["dv"][c.neuron["cx"][k]]),
            ("vth_mant", lambda c, k: c.vth[c.neuron["vth"][k]]),
            ("bias_mant", lambda c, k: c.neuron["bias_mant"][k]),
            ("bias_exp", lambda c, k: c.neuron["bias_exp"][k]),
        ):
            got = np.array([getter(chip.cores[c], k) for c, k in zip(p.core, p.local, strict=True)])
            np.testing.assert_array_equal(got, _pop_param(g, node.name, f), err_msg=f"{node.name}.{f}")
        refr = [chip.cores[c].cx["refractory"][chip.cores[c].neuron["cx"][k]]
                for c, k in zip(p.core, p.local, strict=True)]
        assert set(refr) == {node.refractory}
    # mapping: slices and positions
    for entry, core in zip(g.mapping["cores"], chip.cores, strict=True):
        assert (core.chip, core.x, core.y) == (entry["chip"], entry["x"], entry["y"])
        assert [[chip.populations[i].name, s, e] for i, s, e in core.slices.tolist()] == \
            [list(s) for s in entry["slices"]]
    # synapses: rebuild every connection's (source, target, delay, exponent) weights from the
    # chip's axons, synapses and route tables and compare with the graph's legal weights
    src_of = {}  # (core, axon) -> ("x", k) or (population, k)
    for port in chip.inputs:
        for c, a, s, e in port.entries.tolist():
            for k in range(s, e):
                src_of[(c, a + k - s)] = (port.name, k)
    for p in chip.populations:
        for k, (c, j) in enumerate(zip(p.core, p.local, strict=True)):
            core = chip.cores[c]
            for r in range(core.route_ptr[j], core.route_ptr[j + 1]):
                src_of[(int(core.route_core[r]), int(core.route_axon[r]))] = (p.name, k)
    pop_of = {}
    for p in chip.populations:
        for k, (c, j) in enumerate(zip(p.core, p.local, strict=True)):
            pop_of[(int(c), int(j))] = (p.name, k)
    got: dict = {}
    for core in chip.cores:
        for a in range(core.n_axons):
            src = src_of[(core.id, a)]
            for s in range(core.syn_ptr[a], core.syn_ptr[a + 1]):
                tgt = pop_of[(core.id, int(core.syn_comp[s]))]
                key = (src[0], tgt[0], int(core.syn_delay[s]), int(core.acc_exp[core.syn_acc[s]]))
                w = int(core.syn_w[s])
                if w:
                    got.setdefault(key, []).append((tgt[1], src[1], w))
    want: dict = {}
    from nmc.passes.cost import network

    net = network(g)
    for name, syn in net.conns.items():
        node = g.nodes[name]
        post, pre, w = _legal_coo(g, name)
        for t in syn.targets:
            key = (syn.source, t, node.delay, node.weight_exp)
            want.setdefault(key, []).extend(zip(post.tolist(), pre.tolist(), w.tolist(), strict=True))
    assert {k: sorted(v) for k, v in got.items()} == {k: sorted(v) for k, v in want.items()}
    # I/O ports
    assert [p.name for p in chip.inputs] == [n.name for n in g.inputs]
    assert [p.name for p in chip.outputs] == [n.name for n in g.outputs]
    for port in chip.outputs:
        assert port.entries.tolist() == [list(e) for e in g.mapping["outputs"][port.name]]
        lat = g.mapping.get("latency", {}).get(port.name)
        assert port.latency == lat
    for port in chip.inputs:
        assert port.entries.tolist() == [[e[0], e[2], e[3], e[4]] for e in g.mapping["inputs"][port.name]]


def test_round_trip_two_core(golden_image):
    g = two_core_graph()
    chip = emulator.load(golden_image)
    check_round_trip(g, chip)
    c1 = chip.cores[1]
    # fc2 is excitatory with 6 weight bits: 100 -> 100 & ~3, stored in 6 bits; delay 2
    assert sorted(zip(c1.syn_comp.tolist(), c1.syn_w.tolist(), c1.syn_delay.tolist(), strict=True))[:3] == \
        [(0, 20, 2), (0, 100, 2), (1, 48, 2)]
    assert chip.params["core.neurons"] == 64
    assert chip.sources["energy.sop"].startswith("paper: Davies 2018")
    assert chip.provenance["compiler"] == "nmc golden"
    assert chip.provenance["target"] == "golden-loihi"
    assert "timestamp" not in json.dumps(chip.provenance)


@pytest.mark.parametrize("seed", [1, 3, 7, 23, 36])
def test_round_trip_compiled_random_graphs(seed):
    res = compiled(seed)
    if res is None:
        pytest.skip(f"seed {seed} does not fit loihi-mini")
    g, img = res
    chip = emulator.load(img)
    check_round_trip(g, chip)
    # the writer's synapse memory equals the partitioner's cost model, core by core
    want = [c.get("loihi", {}).get("synapse_words") for c in g.mapping["cores"]]
    if all(w is not None for w in want):
        assert [c.n_words for c in chip.cores] == want


# ------------------------------------------------------------------------------------------
# Refusals
# ------------------------------------------------------------------------------------------
def test_writer_refuses_unrouted_graph():
    g = two_core_graph().replace(stage=Stage.PLACED)
    with pytest.raises(CompileError, match=r"^graph two_core is at stage placed; a chip image "
                       r"needs a routed graph \(run the partition, place and route passes, e\.g\. "
                       r"nmc\.passes\.flow\.compile_graph\)$"):
        write_image(g, GOLDEN_PROFILE)


def test_writer_refuses_unfed_axon_and_wrong_route():
    m = two_core_graph().mapping
    bad = json.loads(json.dumps(m))
    bad["routes"][0]["targets"] = [[1, "fc2", 0]]  # fc3's axons get no spikes
    with pytest.raises(CompileError, match=r"^core 1: axon 3 \(fc3 source 0\) is fed 0 times; "
                       r"every axon needs exactly one route or input entry$"):
        write_image(two_core_graph(mapping=bad), GOLDEN_PROFILE)
    bad = json.loads(json.dumps(m))
    bad["routes"][0]["targets"] = [[1, "fc2", 3], [1, "fc3", 0]]
    with pytest.raises(CompileError, match=r"^routes\[0\] \(h\[0:3\] -> core 1 fc2\): source 0 of "
                       r"fc2 is sent to axon 3 of core 1, which carries fc3 source 0; the route "
                       r"does not match the core's axon groups$"):
        write_image(two_core_graph(mapping=bad), GOLDEN_PROFILE)


def test_writer_refuses_missing_synapses_and_width_overflow():
    m = json.loads(json.dumps(two_core_graph().mapping))
    m["cores"][0]["axons"] = [["fc1", 0, 3]]
    m["inputs"]["x"] = [[0, "fc1", 0, 0, 3]]
    with pytest.raises(CompileError, match=r"^core 0 \(chip 0, x 0, y 0\): connection fc1 has a "
                       r"synapse from source 3 onto h\[0\] on this core but no axon for that source "
                       r"here; the route pass must give every source with a synapse on the core an "
                       r"axon$"):
        write_image(two_core_graph(mapping=m), GOLDEN_PROFILE)
    text = GOLDEN_PROFILE.read_text().replace("bias_mant = 13", "bias_mant = 6")
    with pytest.raises(CompileError, match=r"^core 0 \(chip 0, x 0, y 0\): LOIHI_NEURON\.bias_mant: "
                       r"value 100 does not fit 6 signed bits \(-32\.\.31\); the value does not "
                       r"fit the hardware width of target golden-loihi$"):
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "narrow.toml"
            p.write_text(text)
            write_image(two_core_graph(), p)


def test_save_image_is_atomic(tmp_path, golden_image):
    out = tmp_path / "chip.nmb"
    save_image(two_core_graph(), GOLDEN_PROFILE, out)
    assert emulator.load(out).graph_name == "two_core"
    bad = tmp_path / "bad.nmb"
    with pytest.raises(CompileError):
        save_image(two_core_graph().replace(stage=Stage.PLACED), GOLDEN_PROFILE, bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chip.nmb"]


def test_loader_refuses_non_image(tmp_path):
    with pytest.raises(LoadError, match=r"^section header at byte offset 0: bad magic b'hello wo'"):
        emulator.load(b"hello world, this is not an image at all")
    with pytest.raises(LoadError, match=r"^cannot read chip image .*nope\.nmb: "):
        emulator.load(tmp_path / "nope.nmb")


# ------------------------------------------------------------------------------------------
# Documentation and CLI
# ------------------------------------------------------------------------------------------
def test_docs_hold_the_layout_tables():
    doc = (ROOT / "docs" / "image-format.md").read_text()
    assert F.describe() in doc


def test_cli_inspect(tmp_path, golden_image):
    from nmc.cli import cli

    path = tmp_path / "chip.nmb"
    path.write_bytes(golden_image)
    r = CliRunner().invoke(cli, ["inspect", str(path)])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[2] == "mesh         1 chip(s) of 4 x 4; cores used 2 of 16"
    assert lines[3] == "neurons      7"
    assert "  h                      3 spiking  cores 0" in lines
    assert "  out                    2  shape (2,)  spikes  latency 3 (+0)" in lines
    r = CliRunner().invoke(cli, ["inspect", str(path), "--json"])
    doc = json.loads(r.output)
    assert (doc["family"], doc["neurons"], doc["synapses"]) == ("loihi", 7, 22)
    r = CliRunner().invoke(cli, ["inspect", str(path), "--disasm", "--core", "1"])
    assert r.exit_code == 0
    assert r.output.splitlines()[0] == ("core 1  chip 0 x 1 y 1  compartments 4  axons 6  "
                                        "synapses 10  words 6  routes 0")
    assert "  fmt[0]  wb 6 excitatory db 1 sparse ib 6 acc 0" in r.output
    r = CliRunner().invoke(cli, ["inspect", str(path), "--disasm", "--core", "5"])
    assert r.exit_code == 1
    assert r.output.strip() == "Error: --core 5: the chip has cores 0..1"
    bad = tmp_path / "bad.nmb"
    data = bytearray(golden_image)
    data[200] ^= 0x10
    bad.write_bytes(bytes(data))
    r = CliRunner().invoke(cli, ["inspect", str(bad)])
    assert r.exit_code == 1
    assert r.output.startswith("Error: section ")
