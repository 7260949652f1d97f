"""The loader's batched fast paths (``emulator/loader_batch.py`` and the ``*_fast`` methods of
``emulator/loader.py``) against the per-core reference path.

For every image the two paths must give the same outcome: the same chip, field by field and dtype
by dtype, or the same LoadError (message, section, offset). The images cover the fast decoders'
branches (periodic synapse memory with byte-sized records at several header shifts, weight bits,
sign modes, delays and index bits; records that are not byte-sized; blocks of unequal counts;
several layout groups, evenly and unevenly spaced; TrueNorth and BrainScaleS-2 cores), and the
mutated images (CRCs repaired, so that the bytes reach the field checks) cover the checks.
"""

from __future__ import annotations

import dataclasses
import struct

import numpy as np
import pytest
from test_image import GOLDEN_PROFILE, compiled, two_core_graph
from test_loader_fuzz import mutate, repair_crcs

import emulator.brainscales2 as B2
import emulator.loader_batch as B
from emulator import format as F
from emulator import format_brainscales2 as F2
from emulator import loader as L
from emulator.errors import LoadError
from ir.graph import GraphBuilder, Stage
from ir.native.loihi import LoihiCompartment, LoihiDense, LoihiSparse, legalize_weights
from ir.nodes import Input, Output
from nmc.backend.writer import write_image


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------
def load(data: bytes, batched: bool):
    ld = L._Loader(data, "<bytes>")
    ld.batched = batched
    return ld.chip()


def same(a, b, path: str = "chip") -> None:
    """Equal values, dtypes and shapes all the way down."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray), path
        assert a.dtype == b.dtype, (path, a.dtype, b.dtype)
        assert a.shape == b.shape, (path, a.shape, b.shape)
        assert np.array_equal(a, b), path
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list | tuple):
        assert type(a) is type(b) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{path}[{i}]")
    elif dataclasses.is_dataclass(a) and not isinstance(a, type):
        assert type(a) is type(b), path
        for f in dataclasses.fields(a):
            same(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
    else:
        assert type(a) is type(b) and a == b, (path, a, b)


CHIP_FIELDS = ("family", "version", "profile_name", "profile_sha256", "graph_name", "dt",
               "n_chips", "mesh", "params", "sources", "populations", "inputs", "outputs", "cores",
               "provenance", "image_bytes")


def outcome(data: bytes, batched: bool):
    """The chip, or the LoadError as (message, section, offset). The reference path also
    derives the BrainScaleS-2 receive tables and crossbar matches the direct way (below)."""
    saved = B2.receive_tables, B2.BSS2Core.accepts
    if not batched:
        B2.receive_tables, B2.BSS2Core.accepts = ref_receive_tables, ref_accepts
    try:
        return load(data, batched)
    except LoadError as e:
        return (str(e), e.section, e.offset)
    finally:
        B2.receive_tables, B2.BSS2Core.accepts = saved


def same_outcome(data: bytes) -> str:
    fast, ref = outcome(data, True), outcome(data, False)
    if isinstance(ref, tuple):
        assert fast == ref
        return "refused"
    assert not isinstance(fast, tuple), fast
    for k in CHIP_FIELDS:
        same(getattr(fast, k), getattr(ref, k), k)
    return "loaded"


@pytest.fixture
def paths(monkeypatch):
    """Which fast decoders ran (and with what result) during a load."""
    seen: dict[str, list] = {}
    for name in ("loihi_cores", "_loihi_periodic", "_loihi_general", "_uniform_blocks",
                 "truenorth_cores"):
        fn = getattr(B, name, None)
        if fn is None:
            continue

        def wrap(*a, _fn=fn, _name=name, **k):
            r = _fn(*a, **k)
            seen.setdefault(_name, []).append(
                "none" if r is None else "false" if r is False else "ok")
            return r

        monkeypatch.setattr(B, name, wrap)
        if hasattr(L, name):
            monkeypatch.setattr(L, name, wrap)

    def wrap_b2(*a, _fn=B2.decode_cores, **k):
        r = _fn(*a, **k)
        seen.setdefault("bss2_cores", []).append("none" if r is None else "ok")
        return r

    monkeypatch.setattr(B2, "decode_cores", wrap_b2)
    return seen


# ------------------------------------------------------------------------------------------
# Loihi layer images: one dense or sparse layer split over cores of a hand mapping
# ------------------------------------------------------------------------------------------
def header_profile(folder, header_bits: int):
    """The golden Loihi profile with another synapse block header width (so the records start
    at another bit phase of the byte)."""
    text = GOLDEN_PROFILE.read_text().replace("group_header_bits = 10",
                                              f"group_header_bits = {header_bits}")
    text = text.replace('name = "golden-loihi"', f'name = "golden-loihi-h{header_bits}"')
    path = folder / f"golden-loihi-h{header_bits}.toml"
    path.write_text(text)
    return path


def layer_image(per_core: list[int], k_in: int = 5, sparse: bool = False, sign: str = "mixed",
                bits: int = 8, delay: int = 1, seed: int = 0, density: float = 1.0,
                every: int = 0, profile=GOLDEN_PROFILE) -> bytes:
    """x(k_in) -> fc -> h(sum(per_core)) -> out; core i holds per_core[i] neurons of h and every
    input axon of fc (each core gets the whole input). ``every``: input c feeds the outputs r
    with (r + c) % every == 0 (the same count per axon on every core, at varying indices).
    Weights are never zero."""
    rng = np.random.default_rng(seed)
    n = sum(per_core)
    w = rng.integers(-256, 256, size=(n, k_in))
    if sign == "excitatory":
        w = np.abs(w)
    elif sign == "inhibitory":
        w = -np.abs(w)
    w = legalize_weights(w, sign, bits)
    w[w == 0] = {"mixed": 1 << (9 - bits), "excitatory": 1 << (8 - bits),
                 "inhibitory": -(1 << (8 - bits))}[sign]
    mask = rng.random((n, k_in)) < density
    if every:
        mask = (np.arange(n)[:, None] + np.arange(k_in)[None, :]) % every == 0
    target = "golden-loihi" if profile is GOLDEN_PROFILE else profile.stem
    b = GraphBuilder("layer", stage=Stage.ROUTED, attrs={"target": target})
    b.add(Input(name="x", shape=(k_in,)))
    if sparse:
        rows, cols = np.nonzero(mask)
        vals = w[rows, cols]
        b.add(LoihiSparse(name="fc", in_features=k_in, out_features=n,
                          rows=b.const("fc.rows", rows), cols=b.const("fc.cols", cols),
                          values=b.const("fc.values", vals.astype(np.float64)),
                          sign_mode=sign, num_weight_bits=bits, delay=delay), "x")
    else:
        b.add(LoihiDense(name="fc", in_features=k_in, out_features=n,
                         weight=b.const("fc.weight", w * mask), sign_mode=sign,
                         num_weight_bits=bits, delay=delay), "x")
    b.add(LoihiCompartment(name="h", shape=(n,), du=100, dv=200, vth_mant=50), "fc")
    b.add(Output(name="out", shape=(n,)), "h")
    g = b.build()
    starts = np.concatenate([[0], np.cumsum(per_core)]).tolist()
    cores = [{"id": i, "slices": [["h", starts[i], starts[i + 1]]], "chip": i // 16,
              "x": (i // 4) % 4, "y": i % 4, "axons": [["fc", 0, k_in]]}
             for i in range(len(per_core))]
    m = {"strategy": {"partition": "hand", "place": "hand"}, "cores": cores, "routes": [],
         "inputs": {"x": [[i, "fc", 0, 0, k_in] for i in range(len(per_core))]},
         "outputs": {"out": [[i, 0, starts[i], starts[i + 1]] for i in range(len(per_core))]},
         "latency": {"out": 1}, "extra_latency": {"out": 0}}
    return write_image(g.replace(mapping=m), profile)


LAYERS = {
    # byte-sized records (8 bits) with the block header's 2 odd bits: the common layout
    "dense8": dict(per_core=[4, 4, 4]),
    "dense8_long_axons": dict(per_core=[40, 40, 40, 40], k_in=3),  # 2 blocks per axon (64 + 16)
    "excit6_delay3": dict(per_core=[3, 3, 3], sign="excitatory", bits=6, delay=3),  # 6 + 2 bits
    "inhib8_delay2": dict(per_core=[5, 5], sign="inhibitory", delay=2),  # 8 + 1 bits
    "mixed4": dict(per_core=[6, 6, 6], bits=4),  # 4-bit records: not byte-sized
    "inhib8": dict(per_core=[5, 5, 5], sign="inhibitory"),
    # sparse formats with the same blocks on every axon: 6 index bits + 2 weight bits; 6 + 6 + 4
    # delay bits; 6 + 8 (not byte-sized)
    "every8_w2": dict(per_core=[32, 32, 32], sparse=True, every=8, bits=2, sign="excitatory"),
    "every2_w6_delay9": dict(per_core=[32, 32], sparse=True, every=2, bits=6, delay=9),
    "every8_w8": dict(per_core=[32, 32], sparse=True, every=8, sign="inhibitory"),
    "sparse": dict(per_core=[8, 8, 8], sparse=True, density=0.5),  # unequal blocks
    "sparse_full": dict(per_core=[4, 4, 4], sparse=True, bits=6),  # 2 + 6 bits, equal blocks
    "sparse_full_delay": dict(per_core=[16, 16], sparse=True, delay=9),  # 4 + 8 + 4 bits
    "groups_uneven": dict(per_core=[2, 3, 2, 2, 3]),  # two groups, unevenly spaced
}


HEADERS = {"h16": 16, "h13": 13}
"""Block header widths besides the golden 10 bits (2 odd bits): 16 (records on byte
boundaries) and 13 (5 odd bits)."""
SHIFTED = ("dense8", "excit6_delay3", "every8_w2", "every2_w6_delay9")


@pytest.fixture(scope="module")
def layers(tmp_path_factory):
    out = {k: layer_image(**v) for k, v in LAYERS.items()}
    folder = tmp_path_factory.mktemp("profiles")
    for name, hb in HEADERS.items():
        prof = header_profile(folder, hb)
        for k in SHIFTED:
            out[f"{k}_{name}"] = layer_image(**LAYERS[k], profile=prof)
    return out


@pytest.mark.parametrize("name", sorted(LAYERS) + [f"{k}_{h}" for h in HEADERS for k in SHIFTED])
def test_layer_images_load_the_same_on_both_paths(layers, name, paths):
    assert same_outcome(layers[name]) == "loaded"
    assert paths["loihi_cores"][0] == "ok", paths  # the batched decoder took the image


def test_fast_paths_cover_their_branches(layers, paths):
    """The layer corpus reaches the periodic decoder (and its refusal of non-byte records), the
    general one and the round walk."""
    for name in layers:
        load(layers[name], True)
    assert "ok" in paths["_loihi_periodic"] and "false" in paths["_loihi_periodic"]
    assert "ok" in paths["_loihi_general"]
    assert "none" in paths["_uniform_blocks"] and "ok" in paths["_uniform_blocks"]


def tn_full_image(blocks: int = 2, size: int = 256) -> bytes:
    """TrueNorth chain of ``blocks`` layers whose crossbars have every bit set (one core each)."""
    from ir.native.truenorth import TrueNorthCrossbar, TrueNorthNeuron
    from nmc.passes.flow import compile_graph

    rng = np.random.default_rng(1)
    b = GraphBuilder("tn_full", stage=Stage.QUANTIZED, attrs={"target": "truenorth"})
    b.add(Input(name="x", shape=(size,)))
    prev = "x"
    for k in range(blocks):
        b.add(TrueNorthCrossbar(
            name=f"c{k}", in_features=size, out_features=size,
            crossbar=b.const(f"c{k}.cb", np.ones((size, size), bool)),
            axon_types=b.const(f"c{k}.t", rng.integers(0, 2, size).astype(np.int8))), prev)
        b.add(TrueNorthNeuron(name=f"h{k}", shape=(size,),
                              s0=b.const(f"h{k}.s0", rng.integers(1, 5, size).astype(np.int16)),
                              s1=b.const(f"h{k}.s1", -rng.integers(1, 5, size).astype(np.int16)),
                              alpha=16, leak=0), f"c{k}")
        prev = f"h{k}"
    b.add(Output(name="y", shape=(size,)), prev)
    g = compile_graph(b.build(), "truenorth").graph
    return write_image(g, "truenorth")


def test_truenorth_full_crossbars_load_the_same_on_both_paths(paths):
    assert same_outcome(tn_full_image()) == "loaded"
    assert paths["truenorth_cores"] == ["ok"]


@pytest.fixture(scope="module")
def corpus(layers):
    from test_image_truenorth import compiled_tn

    imgs = [write_image(two_core_graph(), GOLDEN_PROFILE), compiled_tn(4)[1], tn_full_image()]
    imgs += [compiled(s)[1] for s in (1, 3, 5) if compiled(s) is not None]
    imgs += [layers[k] for k in ("dense8", "excit6_delay3", "sparse", "sparse_full_delay",
                                 "groups_uneven", "mixed4", "dense8_h16", "every2_w6_delay9_h13", "every8_w2")]
    return imgs


def test_compiled_images_load_the_same_on_both_paths(corpus):
    for data in corpus:
        assert same_outcome(data) == "loaded"


@pytest.mark.parametrize("threaded", [False, True])
def test_mutated_images_give_the_same_outcome(corpus, threaded, monkeypatch):
    """Mutations inside CORE sections, CRCs repaired (but in every fifth case): each image is
    refused with the same error or loads into the same chip on both paths; with ``threaded`` the
    fast path checks the CRCs beside the decoding (as it does for large images), and a CRC error
    still comes first."""
    if threaded:
        monkeypatch.setattr(L, "THREAD_CRC_BYTES", 0)
    rng = np.random.default_rng(7 + threaded)
    stats = {"refused": 0, "loaded": 0}
    for k in range(400):
        base = corpus[k % len(corpus)]
        n = int.from_bytes(base[12:16], "little")
        table = np.frombuffer(base, F.SECTION_ENTRY.dtype, n, F.HEADER_BYTES)
        cores = table[table["kind"] == F.Kind.CORE]
        e = cores[int(rng.integers(cores.size))]
        off, ln = int(e["offset"]), int(e["length"])
        d = bytearray(base)
        if k % 3 == 0:  # whole-image mutations (truncation, insertion, ...)
            d = bytearray(mutate(base, rng))
        else:
            for _ in range(int(rng.integers(1, 3))):
                i = off + int(rng.integers(ln))
                d[i] ^= 1 << int(rng.integers(8))
        if k % 5:
            try:
                d = repair_crcs(bytes(d))
            except struct.error:  # too short to walk
                pass
        stats[same_outcome(bytes(d))] += 1
    assert stats["refused"] > 150 and stats["loaded"] > 20, stats


def test_table_and_symbol_fast_paths_refuse_like_the_reference(corpus):
    """Targeted corruptions of the section table, the gaps between sections and the SYMBOLS
    records give the reference path's errors."""
    base = corpus[0]
    n = int.from_bytes(base[12:16], "little")
    for entry in range(n):
        at = F.HEADER_BYTES + entry * F.SECTION_ENTRY_BYTES
        kind, index, _, off, length, _ = struct.unpack_from("<HHIQQI", base, at)
        for fmt, pos, value in (("<H", 0, 0x7FFF), ("<H", 0, 0x8001), ("<H", 0, F.Kind.CORE),
                                ("<H", 2, index + 1), ("<I", 4, 1), ("<Q", 8, off + 8),
                                ("<Q", 16, length + 1), ("<Q", 16, 1 << 62)):
            d = bytearray(base)
            struct.pack_into(fmt, d, at + pos, value)
            same_outcome(repair_crcs(bytes(d)))
        if length % 8:
            d = bytearray(base)
            d[off + length] = 1
            with pytest.raises(LoadError, match=rf"at byte offset {off + length}: padding bytes "
                               "are not zero"):
                load(repair_crcs(bytes(d)), True)
    # SYMBOLS: a repeated name, a bad shape
    sym = next(struct.unpack_from("<QQ", base, F.HEADER_BYTES + i * 32 + 8) for i in range(n)
               if struct.unpack_from("<H", base, F.HEADER_BYTES + i * 32)[0] == F.Kind.SYMBOLS)
    rec = sym[0] + F.COUNT_HEADER.size
    for pos, value in ((0, int.from_bytes(base[rec + F.POPULATION.size:rec + F.POPULATION.size + 4],
                                          "little")), (12, 7), (16, 3)):
        d = bytearray(base)
        struct.pack_into("<I", d, rec + pos, value)
        assert same_outcome(repair_crcs(bytes(d))) == "refused"


def test_crc_error_comes_first_when_checked_beside_decoding(layers, monkeypatch):
    """A corrupted core header (the decoder would refuse it) with a stale CRC: the CRC mismatch
    is what the threaded check reports, as the sequential one does."""
    monkeypatch.setattr(L, "THREAD_CRC_BYTES", 0)
    base = layers["dense8"]
    n = int.from_bytes(base[12:16], "little")
    table = np.frombuffer(base, F.SECTION_ENTRY.dtype, n, F.HEADER_BYTES)
    off = int(table[table["kind"] == F.Kind.CORE][1]["offset"])
    d = bytearray(base)
    d[off + 8] ^= 0xFF  # n_neurons
    for batched in (True, False):
        with pytest.raises(LoadError, match=rf"^section CORE 1 at byte offset {off}: CRC "
                           r"mismatch \(stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}\)"):
            load(bytes(d), batched)
    d = bytearray(base)
    d[-1] ^= 1  # the trailer only
    with pytest.raises(LoadError, match=r"^section trailer at byte offset \d+: file CRC mismatch"):
        load(bytes(d), True)


# ------------------------------------------------------------------------------------------
# BrainScaleS-2: the batched decoder (emulator.brainscales2.decode_cores) and the receive tables
# (receive_tables, accepted) against the per-core decoder and the direct derivation below
# ------------------------------------------------------------------------------------------
def ref_accepts(core, labels):
    """The crossbar test as the definition reads: every label against every entry."""
    labels = np.asarray(labels, np.int64)
    m, t = core.filters["mask"], core.filters["target"]
    return ((labels[..., None] & m) == t).any(axis=-1)


def ref_receive_tables(cores, inputs, aw):
    """The receive tables computed the direct way (hemisphere by hemisphere, label by label)."""
    from emulator.synapses import cat

    n_lab = cat([c.neuron["label"][c.neuron["readout"] == 0] for c in cores])
    n_core = cat([np.full(int((c.neuron["readout"] == 0).sum()), c.id, np.int64) for c in cores])
    n_loc = cat([np.flatnonzero(c.neuron["readout"] == 0) for c in cores])
    acc = [ref_accepts(c, n_lab) for c in cores]
    for c in cores:
        parts = [n_lab[acc[c.id]]]
        for port in inputs:
            for cc, a, s, t in port.entries.tolist():
                if cc == c.id:
                    parts.append(a + np.arange(t - s, dtype=np.int64))
        c.axon_label = np.unique(cat(parts))
        r, j = np.nonzero(c.weight)
        lab = (c.rows["group"][r] << aw) | c.address[r, j]
        ax = np.searchsorted(c.axon_label, lab)
        hit = ax < c.axon_label.size
        hit[hit] = c.axon_label[ax[hit]] == lab[hit]
        r, j, ax = r[hit], j[hit], ax[hit]
        o = np.lexsort((j, r, ax))
        r, j, ax = r[o], j[o], ax[o]
        c.syn_ptr = np.zeros(c.axon_label.size + 1, np.int64)
        np.cumsum(np.bincount(ax, minlength=c.axon_label.size), out=c.syn_ptr[1:])
        c.syn_comp = c.col_neuron[j]
        c.syn_group = c.rows["sign"][r].astype(np.int64)
        c.syn_w = c.weight[r, j].astype(np.int64)
        c.syn_delay = c.rows["delay_minus_1"][r].astype(np.int64) + 1
    rc, ra, rsrc_core, rsrc_loc = [], [], [], []
    for d in cores:
        sel = np.flatnonzero(acc[d.id])
        rc.append(np.full(sel.size, d.id, np.int64))
        ra.append(np.searchsorted(d.axon_label, n_lab[sel]))
        rsrc_core.append(n_core[sel])
        rsrc_loc.append(n_loc[sel])
    rc, ra, rsrc_core, rsrc_loc = cat(rc), cat(ra), cat(rsrc_core), cat(rsrc_loc)
    for c in cores:
        sel = np.flatnonzero(rsrc_core == c.id)
        o = sel[np.lexsort((rc[sel], rsrc_loc[sel]))]
        c.route_ptr = np.zeros(c.n_neurons + 1, np.int64)
        np.cumsum(np.bincount(rsrc_loc[o], minlength=c.n_neurons), out=c.route_ptr[1:])
        c.route_core, c.route_axon = rc[o], ra[o]
    for port in inputs:
        if port.entries.size:
            ent = port.entries.copy()
            for k, (cc, a, _s, _t) in enumerate(ent.tolist()):
                ent[k, 1] = int(np.searchsorted(cores[cc].axon_label, a))
            port.entries = ent


def bss2_layers_image(folder, seed: int = 1, lo: float = 0.1) -> bytes:
    """x(40) -> h(96) -> o(24), at most 16 neurons per hemisphere, on a 4-chip copy of the golden
    BrainScaleS-2 profile: 8 hemispheres, six of them with one layout (the batched decoder's
    groups); ``lo`` > 0 makes every weight positive (equal rows on the h hemispheres)."""
    from test_image import GOLDEN

    import nmc
    from ir.nodes import IF, Dense

    text = (GOLDEN / "golden-brainscales2.toml").read_text()
    text = text.replace("max_chips = 1", "max_chips = 4").replace(
        'name = "golden-brainscales2"', 'name = "golden-brainscales2-x4"')
    prof = folder / "golden-brainscales2-x4.toml"
    prof.write_text(text)
    rng = np.random.default_rng(seed)
    b = GraphBuilder("bss2_layers", dt=1e-3)
    b.add(Input(name="x", shape=(40,)))
    prev = "x"
    for name, pop, n_in, n_out in (("fc1", "h", 40, 96), ("fc2", "o", 96, 24)):
        w = b.const(f"{name}.weight", np.round(rng.uniform(lo, 0.5, (n_out, n_in)), 2))
        b.add(Dense(name=name, in_features=n_in, out_features=n_out, weight=w), prev)
        b.add(IF(name=pop, shape=(n_out,), v_threshold=1.0), name)
        prev = pop
    b.add(Output(name="y", shape=(24,)), prev)
    return nmc.compile(b.build(), str(prof), quantize_options={"max_neurons": 16}).image


@pytest.fixture(scope="module")
def bss2_corpus(tmp_path_factory):
    from test_emulator_brainscales2 import TARGET, two_hemisphere_graph
    from test_emulator_brainscales2 import compiled as bss2_compiled

    folder = tmp_path_factory.mktemp("bss2")
    imgs = [bss2_layers_image(folder), bss2_layers_image(folder, 2, -0.3),
            write_image(two_hemisphere_graph(), TARGET)]
    for seed, kind in ((14, "native"), (16, "native"), (24, "native"), (0, "native"),
                       (3, "native"), (2, "float")):
        res = bss2_compiled(seed, kind)
        if res is not None:
            imgs.append(res[1])
    assert len(imgs) >= 7
    return imgs


def test_bss2_images_load_the_same_on_both_paths(bss2_corpus, paths):
    chips = [load(data, True) for data in bss2_corpus]
    assert paths["bss2_cores"] == ["ok"] * len(bss2_corpus)  # the batched decoder took them all
    assert max(len(c.cores) for c in chips) == 8
    for data in bss2_corpus:
        assert same_outcome(data) == "loaded"


def test_bss2_mutated_images_give_the_same_outcome(bss2_corpus):
    """Bit flips in CORE and IOMAP sections (CRCs repaired but in every fifth case) and whole-image
    mutations: the same LoadError or the same chip on both paths."""
    rng = np.random.default_rng(11)
    stats = {"refused": 0, "loaded": 0}
    for k in range(300):
        base = bss2_corpus[k % len(bss2_corpus)]
        n = int.from_bytes(base[12:16], "little")
        table = np.frombuffer(base, F.SECTION_ENTRY.dtype, n, F.HEADER_BYTES)
        secs = table[(table["kind"] == F.Kind.CORE) | (table["kind"] == F.Kind.IOMAP)]
        e = secs[int(rng.integers(secs.size))]
        off, ln = int(e["offset"]), int(e["length"])
        d = bytearray(base)
        if k % 4 == 0:
            d = bytearray(mutate(base, rng))
        else:
            for _ in range(int(rng.integers(1, 3))):
                d[off + int(rng.integers(ln))] ^= 1 << int(rng.integers(8))
        if k % 5:
            try:
                d = repair_crcs(bytes(d))
            except struct.error:
                pass
        stats[same_outcome(bytes(d))] += 1
    assert stats["refused"] > 100 and stats["loaded"] > 30, stats


def rewrite_crossbars(data: bytes, rng) -> bytes:
    """Every hemisphere's BSS2_FILTER entries replaced by random distinct (mask, target) pairs:
    masks of several widths (so labels are matched through several masks at once), targets taken
    from the chip's labels (so that they match), CRCs repaired."""
    chip = load(data, True)
    env = B2._env(chip.params)
    labels = np.concatenate([c.neuron["label"] for c in chip.cores] + [np.arange(64)])
    n = int.from_bytes(data[12:16], "little")
    table = np.frombuffer(data, F.SECTION_ENTRY.dtype, n, F.HEADER_BYTES)
    d = bytearray(data)
    for c in chip.cores:
        e = table[(table["kind"] == F.Kind.CORE) & (table["index"] == c.id)][0]
        at = int(e["offset"]) + F2.BSS2_CORE_HEADER.size + F.SLICE.size * len(c.slices)
        k = c.filters["mask"].size
        pairs: set = set()
        while len(pairs) < k:
            m = int(rng.choice([0xFFC0, 0xFF80, 0xFFE0, 0xFF00, 0xFFFF, 0xFFC1, 0]))
            pairs.add((m, int(rng.choice(labels)) & m))
        mask, target = (np.array(v, np.int64) for v in zip(*sorted(pairs), strict=True))
        raw = F2.BSS2_FILTER.pack(k, {"mask": mask, "target": target}, env)
        d[at:at + len(raw)] = raw
    return repair_crcs(bytes(d))


def test_bss2_crossbars_with_several_masks_give_the_same_chip(bss2_corpus):
    rng = np.random.default_rng(5)
    stats = {"refused": 0, "loaded": 0}
    for k in range(60):
        stats[same_outcome(rewrite_crossbars(bss2_corpus[k % len(bss2_corpus)], rng))] += 1
    assert stats["loaded"] > 10 and stats["refused"] > 5, stats


def test_accepted_matches_the_definition():
    """``accepted`` against every label tested against every entry, for random crossbars with
    several masks, shared entries across owners and repeated labels."""
    rng = np.random.default_rng(3)
    for _ in range(200):
        n_own = int(rng.integers(1, 5))
        k = int(rng.integers(0, 12))
        masks = rng.choice([0xFFC0, 0xFF00, 0xF0F0, 0, 0xFFFF, 0x3], size=k)
        target = rng.integers(0, 1 << 16, k) & masks
        owner = rng.integers(0, n_own, k)
        labels = rng.integers(0, 1 << 16, int(rng.integers(0, 40)))
        labels[: labels.size // 3] = target[rng.integers(0, max(k, 1), labels.size // 3)] \
            if k else labels[: labels.size // 3]
        hit = ((labels[None, :, None] & masks) == target)[0]  # (labels, entries)
        want = sorted({(int(owner[j]), i) for i, j in zip(*np.nonzero(hit), strict=True)})
        oc, li = B2.accepted(labels, masks, target, owner)
        assert list(zip(oc.tolist(), li.tolist(), strict=True)) == want


# ------------------------------------------------------------------------------------------
# Bit tables and TrueNorth's shared synapse lists
# ------------------------------------------------------------------------------------------
def test_unpack_rows_matches_the_bit_reader():
    """``BitTable.unpack_rows`` (unaligned word reads for records up to 57 bits, 64-bit word
    pairs above) against ``BitTable.unpack`` (fields of up to 57 bits: records up to 285 bits)
    on random tables and bytes, including rows that are strided views; every column is a
    C-ordered int64 array."""
    rng = np.random.default_rng(9)
    for trial in range(400):
        ws = [int(rng.integers(0, (14, 26, 58)[trial % 3])) for _ in range(int(rng.integers(1, 6)))]
        if not sum(ws):
            continue
        T = F.BitTable("T", [F.Field(f"f{i}", w, signed=bool(rng.integers(2)))
                             for i, w in enumerate(ws)])
        n, g = int(rng.integers(1, 40)), int(rng.integers(1, 4))
        nb = T.nbytes(n, {}) + int(rng.integers(0, 3))
        big = rng.integers(0, 256, (g, 2 * nb + 3), dtype=np.uint8)
        rows = big[:, 1:1 + nb] if trial % 2 else np.ascontiguousarray(big[:, :nb])
        got = T.unpack_rows(rows, n, {})
        for j in range(g):
            want = T.unpack(rows[j], n, {})
            for f in want:
                col = got[f][j]
                assert got[f].dtype == np.int64 and got[f].flags.c_contiguous
                assert np.array_equal(col, want[f]), (ws, f)


def test_truenorth_full_crossbars_share_read_only_lists():
    """Full crossbars: every core views one compartment list and one array of ones, and cores
    with the same axon types (delays) view one group (delay) list; shared arrays are read-only."""
    chip = load(tn_full_image(blocks=3), True)
    full = [c for c in chip.cores if c.crossbar.all()]
    assert len(full) >= 3
    a, b = full[0], full[1]
    assert a.syn_comp is b.syn_comp and np.shares_memory(a.syn_w, b.syn_w)
    assert np.shares_memory(a.syn_delay, b.syn_delay)  # every axon has delay 1
    for c in full:
        for arr in (c.syn_comp, c.syn_group, c.syn_w, c.syn_delay):
            assert not arr.flags.writeable
    same_types = [(x, y) for x in full for y in full
                  if x is not y and np.array_equal(x.axon["type"], y.axon["type"])]
    for x, y in same_types:
        assert np.shares_memory(x.syn_group, y.syn_group)


def test_distinct_rows_with_and_without_hash_collisions(monkeypatch):
    rng = np.random.default_rng(2)
    cases = [rng.integers(0, 3, (int(rng.integers(0, 30)), int(rng.integers(0, 5))))
             for _ in range(100)]
    for collide in (False, True):
        if collide:  # every multiplier 1: rows with the same sum collide, the check sorts them
            monkeypatch.setattr(B.np.random, "default_rng", lambda seed: type(
                "R", (), {"integers": staticmethod(lambda lo, hi, n, dt: np.zeros(n, dt))})())
        for v in cases:
            u, inv = B.distinct_rows(v.astype(np.int64))
            assert np.array_equal(u[inv], v) and inv.shape == (v.shape[0],)
            if v.shape[0]:
                assert len(u) == len(np.unique(v, axis=0))
