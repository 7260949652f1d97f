"""The chip-scale fast paths of the Loihi compile give exactly what the general paths give.

Each fast path (a dense weight matrix read block-wise instead of as a synapse list, packed bit
tables, the partitioner's join test, the route pass's source mask, the quantizer's row sums) is
compared with the general code it replaces, on random and hand-made networks: same bytes, same
numbers, same errors.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from emulator import format as F
from ir.errors import CompileError
from ir.graph import GraphBuilder, Stage
from ir.native.loihi import LoihiCompartment, LoihiDense
from ir.nodes import IF, LIF, Dense, Input, Output, Sparse
from nmc.backend import writer as W
from nmc.passes import partition as PT
from nmc.passes.flow import compile_graph


def layered(blocks: int = 6, size: int = 24, seed: int = 0, zeros: float = 0.05):
    """Dense layers of ``size`` LIF neurons, some weights exactly 0 (sparse rows and columns)."""
    rng = np.random.default_rng(seed)
    b = GraphBuilder(f"layered{seed}", dt=1e-3)
    b.add(Input(name="x", shape=(size,)))
    prev = "x"
    for k in range(blocks):
        w = rng.standard_normal((size, size)).astype(np.float32)
        w[rng.random(w.shape) < zeros] = 0
        if k == 2:
            w = np.abs(w)  # excitatory
        b.add(Dense(name=f"c{k}", in_features=size, out_features=size,
                    weight=b.const(f"c{k}.w", w)), prev)
        b.add(LIF(name=f"h{k}", shape=(size,), tau_mem=0.02, v_threshold=1.0), f"c{k}")
        prev = f"h{k}"
    b.add(Output(name="y", shape=(size,)), prev)
    return b.build()


def _routed(graph, target="loihi", **opts):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return compile_graph(graph, target, **opts).graph


def _image_both_ways(graph, target, monkeypatch):
    fast = W.write_image(graph, target)
    monkeypatch.setattr(W, "_FAST_DENSE", False)
    slow = W.write_image(graph, target)
    monkeypatch.setattr(W, "_FAST_DENSE", True)
    return fast, slow


# ---- image writer -------------------------------------------------------------------------------
@pytest.mark.parametrize("opts", [{}, {"max_neurons": 10}, {"max_neurons": 17,
                                                             "partition": "mincut"},
                                  {"weight_bits": 3}])
def test_dense_blocks_give_the_general_paths_bytes(opts, monkeypatch):
    g = _routed(layered(), **opts)
    fast, slow = _image_both_ways(g, "loihi", monkeypatch)
    assert fast == slow


@pytest.mark.parametrize("seed", [1, 3, 7, 9, 12])
def test_random_native_graphs_give_the_general_paths_bytes(seed, monkeypatch):
    from ir.random_graphs import random_loihi_graph

    try:
        g = _routed(random_loihi_graph(seed), "loihi-mini",
                    partition=("contiguous", "mincut")[seed % 2])
    except CompileError:
        pytest.skip("does not fit loihi-mini")
    fast, slow = _image_both_ways(g, "loihi-mini", monkeypatch)
    assert fast == slow


def test_dense_block_errors_are_the_general_paths(monkeypatch):
    """A dense connection with a synapse whose source has no axon on the core: the fast path
    leaves it to the general one, which names it."""
    g = _routed(layered(blocks=2, size=8, zeros=0.0))
    m = json.loads(json.dumps(g.mapping))
    # the input's last source loses its axon on the core that holds c0's targets
    cid = next(c["id"] for c in m["cores"] if any(a[0] == "c0" for a in c["axons"]))
    core = m["cores"][cid]
    core["axons"] = [[c, a, b - 1] if c == "c0" else [c, a, b] for c, a, b in core["axons"]]
    base, bases = 0, {}
    for c, a, b in core["axons"]:
        bases[c] = base
        base += b - a
    m["inputs"]["x"] = [[k, c, bases[c], s, e - 1] if k == cid else [k, c, ab, s, e]
                        for k, c, ab, s, e in m["inputs"]["x"]]
    for r in m["routes"]:
        r["targets"] = [[k, c, bases[c]] if k == cid else [k, c, ab] for k, c, ab in r["targets"]]
    bad = g.replace(mapping=m)
    msgs = []
    for fast in (True, False):
        monkeypatch.setattr(W, "_FAST_DENSE", fast)
        with pytest.raises(CompileError) as e:
            W.write_image(bad, "loihi")
        msgs.append(str(e.value))
    assert msgs[0] == msgs[1] and "has a synapse from source 7" in msgs[0]


def test_legal_integer_weights_are_used_as_they_are():
    w = np.array([[2, -4], [0, 254]], np.int16)
    assert W._legal_as_is(w, "mixed", 8) is w
    assert W._legal_as_is(w, "mixed", 7) is None  # 2 is not a multiple of 4
    assert W._legal_as_is(w, "excitatory", 8) is None  # -4 is below 0
    assert W._legal_as_is(w.astype(float), "mixed", 8) is None  # floats: legalize


@pytest.mark.parametrize("sign", [0, 1, 2])
def test_weight_width_test_agrees_with_the_encoder(sign):
    """_weights_fit (min, max, OR of a set) accepts a width exactly when
    loihi_weight_encode accepts every weight of the set."""
    rng = np.random.default_rng(sign)
    lo, hi = {0: (-256, 255), 1: (0, 255), 2: (-255, 0)}[sign]
    sets = [np.array([v]) for v in range(lo, hi + 1)]
    sets += [rng.integers(lo, hi + 1, int(rng.integers(1, 6))) * int(rng.choice([1, 2, 8, 32]))
             for _ in range(300)]
    for ws in sets:
        ws = np.clip(ws, lo, hi)
        for wb in range(0, 9):
            try:
                F.loihi_weight_encode(ws, wb, sign)
                ok = True
            except ValueError:
                ok = False
            got = W._weights_fit(int(ws.min()), int(ws.max()),
                                 int(np.bitwise_or.reduce(ws)), wb, sign)
            assert got == ok, (ws, wb, sign)
            if ok:
                assert np.array_equal(W._encode_weights(ws, wb, sign),
                                      F.loihi_weight_encode(ws, wb, sign))


def test_packed_tables_equal_the_layout_packer():
    rng = np.random.default_rng(0)
    env = {"w_cx": 3, "w_vth": 5, "w_rlen": 2, "widths.bias_mant": 13, "widths.bias_exp": 3}
    for n in (1, 3, 16, 17, 200):
        cols = dict(cx=rng.integers(0, 8, n), vth=rng.integers(0, 32, n),
                    bias_mant=rng.integers(-4096, 4096, n), bias_exp=rng.integers(0, 8, n),
                    n_routes=int(rng.integers(0, 4)))
        assert W._pack_table(F.LOIHI_NEURON, n, cols, env) == F.LOIHI_NEURON.pack(n, cols, env)
        cols["bias_mant"][-1] = 4096 + n  # does not fit 13 signed bits: the same error
        with pytest.raises(ValueError) as a:
            F.LOIHI_NEURON.pack(n, cols, env)
        with pytest.raises(ValueError) as b:
            W._pack_table(F.LOIHI_NEURON, n, cols, env)
        assert str(a.value) == str(b.value)


def test_or_fields_matches_the_layout_bit_writer():
    rng = np.random.default_rng(1)
    widths = rng.integers(1, 33, 500)
    starts = np.concatenate([[0], np.cumsum(widths)[:-1]]) + rng.integers(0, 3, 500).cumsum()
    values = rng.integers(0, 1 << 62, 500).astype(np.uint64) & ((np.uint64(1) << widths.astype(
        np.uint64)) - np.uint64(1))
    total = int(starts[-1] + widths[-1])
    want = F.put_bits(values, starts, widths, total)
    for order in (np.arange(500), rng.permutation(500)):  # sorted and unsorted starts
        buf = np.zeros(total // 64 + 3, np.uint64)
        W._or_fields(buf, values[order], starts[order])
        assert buf.view(np.uint8)[:len(want)].tobytes() == want


# ---- quantizer ------------------------------------------------------------------------------------
def _as_sparse(graph):
    """The same network with every Dense written as a Sparse of all its entries (C order)."""
    b = GraphBuilder(graph.name, dt=graph.dt)
    for node in graph.nodes.values():
        if node.kind == "Dense":
            w = np.asarray(graph.const(node.weight))
            r, c = np.indices(w.shape)
            b.add(Sparse(name=node.name, in_features=node.in_features,
                         out_features=node.out_features, rows=b.const(f"{node.name}.r", r.ravel()),
                         cols=b.const(f"{node.name}.c", c.ravel()),
                         values=b.const(f"{node.name}.v", w.ravel())))
        else:
            for _, ref in node.refs():
                b.constants[ref.name] = graph.const(ref)
            b.add(node)
    for a, t in graph.edges:
        b.connect(a, t)
    return b.build()


@pytest.mark.parametrize("weight_bits", [None, 4, 1])
def test_quantized_matrix_equals_quantized_triplets(weight_bits):
    """Dense chains are quantized on the (out, in) matrix; the same weights given as triplets go
    through the per-synapse code: every scale, weight and report number agrees."""
    import warnings

    from nmc.passes.quantize import QuantizeOptions, quantize

    g = layered(blocks=4, size=40, seed=3, zeros=0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qd, rd = quantize(g, "loihi", QuantizeOptions(weight_bits=weight_bits))
        qs, rs = quantize(_as_sparse(g), "loihi", QuantizeOptions(weight_bits=weight_bits))
    for name, node in qd.nodes.items():
        if node.kind == "LoihiDense":
            sp = qs.nodes[name]
            assert sp.kind == "LoihiSparse"
            assert np.array_equal(qd.const(node.weight).ravel(), qs.const(sp.values))
            for f in ("weight_exp", "num_weight_bits", "sign_mode", "delay"):
                assert getattr(node, f) == getattr(sp, f)
        elif node.kind == "LoihiCompartment":
            assert node == qs.nodes[name]
    drop = lambda rows: [{k: v for k, v in r.items() if k != "kind"} for r in rows]  # noqa: E731
    assert drop(rd.connections) == drop(rs.connections)
    assert rd.populations == rs.populations


@pytest.mark.parametrize("shape", [(1, 5), (3, 2000), (7, 1), (8, 3), (64, 300), (300, 64)])
def test_row_sums_add_in_synapse_order(shape):
    from nmc.passes.quantize.loihi import _row_sums, _Scratch

    rng = np.random.default_rng(shape[0])
    w = (rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 4, shape)).astype(np.float32)
    rows = np.repeat(np.arange(shape[0]), shape[1])
    v = w.astype(np.float64).ravel()
    pos, neg = _row_sums(w, _Scratch())
    assert np.array_equal(pos, np.bincount(rows, weights=np.maximum(v, 0), minlength=shape[0]))
    assert np.array_equal(neg, np.bincount(rows, weights=np.maximum(-v, 0), minlength=shape[0]))


# ---- partition and route ----------------------------------------------------------------------
@pytest.mark.parametrize("max_neurons", [None, 30, 100])
def test_join_test_never_changes_the_cut(max_neurons, monkeypatch):
    from nmc.passes.partition import partition_cores
    from nmc.passes.quantize import quantize

    g, _ = quantize(layered(blocks=8, size=60, seed=5), "loihi-mini")
    with_test = partition_cores(g, load("loihi-mini"), max_neurons=max_neurons)
    monkeypatch.setattr(PT, "SUPERADDITIVE", {})
    without = partition_cores(g, load("loihi-mini"), max_neurons=max_neurons)
    assert with_test == without


def load(name):
    from nmc.targets import load_profile

    return load_profile(name)


def test_axon_groups_from_a_source_mask_equal_sorted_sources():
    from nmc.passes.cost import network, sorted_unique
    from nmc.passes.route import axon_groups, runs

    g = _routed(layered(blocks=3, size=30, zeros=0.4), max_neurons=7)
    net = network(g)
    for c in g.mapping["cores"]:
        slices = [tuple(s) for s in c["slices"]]
        from nmc.passes.cost import gather_cols, group_rows

        want = []
        rows = group_rows(net, slices)
        for conn in sorted(rows, key=list(net.conns).index):
            cols = sorted_unique(gather_cols(net.conns[conn], rows[conn]))
            want.extend([conn, a, b] for a, b in runs(cols))
        assert axon_groups(net, slices) == want


def test_hand_made_dense_graph_round_trips():
    """A native LoihiDense (int16, legal) written through the block path loads back."""
    import emulator

    b = GraphBuilder("hand", stage=Stage.QUANTIZED, attrs={"target": "loihi"})
    b.add(Input(name="x", shape=(5,)))
    w = np.array([[2, 0, -4, 6, 0], [0, 0, 0, 0, 8], [254, -256, 2, 2, 2]], np.int16)
    b.add(LoihiDense(name="fc", in_features=5, out_features=3, weight=b.const("w", w)), "x")
    b.add(LoihiCompartment(name="h", shape=(3,), du=4095, dv=0, vth_mant=10), "fc")
    b.add(Output(name="y", shape=(3,)), "h")
    g = _routed(b.build())
    chip = emulator.load(W.write_image(g, "loihi"))
    assert chip.family == "loihi" and len(chip.cores) == 1


def test_if_population_is_fine():
    g = GraphBuilder("one", dt=1e-3)
    g.add(Input(name="x", shape=(4,)))
    g.add(Dense(name="fc", in_features=4, out_features=3,
                weight=g.const("w", np.arange(12, dtype=np.float32).reshape(3, 4) - 5)), "x")
    g.add(IF(name="h", shape=(3,), v_threshold=2.0), "fc")
    g.add(Output(name="y", shape=(3,)), "h")
    routed = _routed(g.build())
    assert W.write_image(routed, "loihi")[:8] == F.MAGIC
