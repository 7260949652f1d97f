"""partition: per-core limits by the family cost models, strategies, provenance, quality bar."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from ir.errors import CompileError
from ir.graph import GraphBuilder, Stage
from ir.native.loihi import LoihiCompartment, LoihiDense, LoihiSparse
from ir.nodes import Input, Output
from nmc.passes import run_passes
from nmc.passes.cost import block_words, cost_model, network
from nmc.passes.partition import Partition, lower_bound, partition_cores
from nmc.passes.utilization import dense_quality, loihi_dense_network
from nmc.targets import PROFILE_DIR, load_profile


def make_profile(tmp_path: Path, base: str = "loihi-mini", **values) -> Path:
    """A copy of a built-in profile with some ``section.key`` values replaced."""
    lines = (PROFILE_DIR / f"{base}.toml").read_text().splitlines()
    section = None
    out = []
    for line in lines:
        m = re.match(r"^\[(.+)\]$", line)
        if m:
            section = m.group(1)
        km = re.match(r"^(\w+) = ", line)
        if km and f"{section}.{km.group(1)}" in values:
            line = f"{km.group(1)} = {values[f'{section}.{km.group(1)}']}"
        out.append(line)
    text = "\n".join(out).replace(f'name = "{base}"', 'name = "test-profile"')
    path = tmp_path / "test-profile.toml"
    path.write_text(text + "\n")
    return path


def two_layer(n_in=100, n_h=150, n_out=20, seed=0):
    rng = np.random.default_rng(seed)
    b = GraphBuilder("two", stage=Stage.QUANTIZED, attrs={"target": "loihi-mini"})
    b.add(Input(name="x", shape=(n_in,)))
    b.add(LoihiDense(name="fc1", in_features=n_in, out_features=n_h,
                     weight=b.const("w1", (rng.integers(-50, 50, (n_h, n_in)) * 2).astype(np.int16))), "x")
    b.add(LoihiCompartment(name="h1", shape=(n_h,), du=4095, dv=10, vth_mant=50), "fc1")
    b.add(LoihiDense(name="fc2", in_features=n_h, out_features=n_out,
                     weight=b.const("w2", (rng.integers(-50, 50, (n_out, n_h)) * 2).astype(np.int16))), "h1")
    b.add(LoihiCompartment(name="h2", shape=(n_out,), du=4095, dv=10, vth_mant=50), "fc2")
    b.add(Output(name="y", shape=(n_out,)), "h2")
    return b.build()


def test_block_words_formula():
    # 64 synapses of 8 bits + 10 header bits = 522 bits -> 9 words; the 65th opens a block.
    assert block_words(np.array([0, 1, 10, 54, 55, 64, 65, 128]), 8, 64, 10, 64).tolist() == [
        0, 1, 2, 7, 8, 9, 10, 18]
    assert int(block_words(7, 1, 64, 10, 64)) == 1


def test_loihi_usage_of_one_core_by_hand():
    prof = load_profile("loihi-mini")
    g = two_layer()
    net = network(g)
    use = cost_model("loihi").usage(net, [("h1", 0, 64)], prof)
    # 100 axons, each with 64 dense 8-bit weights: one full block of 9 words (dense beats sparse
    # with 6 index bits: 64 * 14 + 10 bits = 15 words).
    assert use.amounts == {"neurons": 64, "axons_in": 100, "synapse_words": 900,
                           "compartment_configs": 1, "threshold_configs": 1,
                           "synapse_configs": 1}
    assert use.detail == {"encoding": {"fc1": "dense"}}


def test_contiguous_cuts_and_records_provenance():
    g = two_layer()
    out = run_passes(g, [Partition()], "loihi-mini").graph
    assert out.stage == Stage.PARTITIONED
    assert out.mapping == {
        "strategy": {"partition": "contiguous"},
        "cores": [{"id": 0, "slices": [["h1", 0, 64]]},
                  {"id": 1, "slices": [["h1", 64, 128]]},
                  {"id": 2, "slices": [["h1", 128, 150], ["h2", 0, 20]]}],
    }
    dec = out.attrs["passes"]["partition"]
    assert dec["provenance"] == ["h1[0:64] -> core 0", "h1[64:128] -> core 1",
                                 "h1[128:150] -> core 2", "h2[0:20] -> core 2"]
    assert (dec["cores"], dec["lower_bound"], dec["lower_bound_resource"]) == (3, 3, "neurons")


def test_every_limit_holds_for_random_networks(tmp_path):
    from ir.random_graphs import random_loihi_graph
    from nmc.passes.drc import check_design

    prof = load_profile(make_profile(tmp_path, **{"core.axons_in": 1024, "chip.max_chips": 16}))
    for seed in range(10):
        g = random_loihi_graph(seed)
        for strategy in ("contiguous", "mincut"):
            out = run_passes(g, [Partition(strategy=strategy)], prof).graph
            assert check_design(out, prof) == [], (seed, strategy)


def test_synapse_words_bind_and_max_neurons_caps(tmp_path):
    prof = load_profile(make_profile(tmp_path, **{"core.synapse_words": 300}))
    g = two_layer()
    cores = partition_cores(g, prof)
    # 100 axons x 3 words (at most 24 weights per block-word budget): 24 neurons per core
    assert [c[0][2] - c[0][1] for c in cores][:3] == [22, 22, 22]
    capped = partition_cores(g, load_profile("loihi-mini"), max_neurons=16)
    assert max(sum(e - s for _, s, e in c) for c in capped) == 16


def test_config_tables_limit_a_core(tmp_path):
    prof = load_profile("loihi-mini")  # 8 compartment configs per core
    b = GraphBuilder("cfg", stage=Stage.QUANTIZED, attrs={"target": "loihi-mini"})
    b.add(Input(name="x", shape=(4,)))
    b.add(LoihiSparse(name="s", in_features=4, out_features=40, rows=b.const("r", np.arange(40)),
                      cols=b.const("c", np.arange(40) % 4), values=b.const("v", np.full(40, 2))), "x")
    b.add(LoihiCompartment(name="h", shape=(40,), du=b.const("du", np.arange(40) % 20), dv=0,
                           vth_mant=5), "s")
    b.add(Output(name="y", shape=(40,)), "h")
    g = b.build()
    cores = partition_cores(g, prof)
    assert lower_bound(network(g), cost_model("loihi"), prof) == (3, "compartment_configs")
    for c in cores:
        assert cost_model("loihi").usage(network(g), c, prof).amounts["compartment_configs"] <= 8


def test_axons_out_splits_cores(tmp_path):
    prof = load_profile(make_profile(tmp_path, **{"core.axons_out": 100, "core.neurons": 64}))
    g = two_layer(n_in=10, n_h=64, n_out=100)
    cores = partition_cores(g, prof)
    from nmc.passes.cost import axons_out_per_core

    # h2 spans two cores, so every h1 neuron needs two output axons: 50 per core at most
    assert axons_out_per_core(network(g), cores).tolist() == [100, 28, 0]
    assert cores == [[("h1", 0, 50)], [("h1", 50, 64), ("h2", 64, 100)], [("h2", 0, 64)]]


def test_lone_neuron_that_cannot_fit_names_the_resource(tmp_path):
    prof = load_profile(make_profile(tmp_path, **{"core.synapse_words": 5}))
    with pytest.raises(CompileError, match=re.escape(
            "partition: population h1 neuron 0: synapse_words 98 > 5 by 93 (target "
            "test-profile) [net.fanin]; one neuron alone needs more synapse_words than a core "
            "has; prune or split its inputs (fewer sources, fewer weight bits)") + "$"):
        partition_cores(two_layer(), prof)


def test_bad_strategy():
    with pytest.raises(CompileError, match=r"^partition: strategy = 'random' is not one of "
                                           r"contiguous, mincut$"):
        partition_cores(two_layer(), load_profile("loihi-mini"), "random")


def test_mincut_is_deterministic():
    from nmc.passes.utilization import loihi_conv_network

    g = loihi_conv_network(side=8, channels=(1, 2, 2))
    prof = load_profile("loihi")
    a = partition_cores(g, prof, "mincut")
    b = partition_cores(g, prof, "mincut")
    assert a == b


def test_dense_layers_use_at_most_1_1_times_the_lower_bound():
    q = dense_quality("loihi", loihi_dense_network((784, 1024, 1024, 10)))
    assert q == {"cores": 17, "lower_bound": 16, "resource": "synapse_words", "ratio": 1.0625}
    assert q["ratio"] <= 1.1
    q = dense_quality("loihi-mini", loihi_dense_network((200, 250, 200, 10)))
    assert q["ratio"] <= 1.1


def test_mincut_weights_traffic_by_measured_rates():
    from nmc.passes.cost import neuron_rates
    from nmc.passes.place import Place

    g = two_layer(n_in=20, n_h=100, n_out=30)
    x = np.random.default_rng(0).random((2, 30, 20)) < 0.5
    rates = neuron_rates(g, x, 0.05)
    assert set(rates) == {"x", "h1", "h2"} and rates["x"].shape == (20,)
    assert 0.4 < rates["x"].mean() < 0.6
    out = run_passes(g, [Partition(strategy="mincut", calibration=x),
                         Place(calibration=x)], "loihi-mini").graph
    dec = out.attrs["passes"]["place"]
    assert dec["rates"] == "calibration"
    # every h1 neuron sends one packet per spike to each h2 core other than its own (fc2 is
    # dense), h2 sends nothing: the measured rates weigh those packets
    where = {}
    for c in out.mapping["cores"]:
        for p, s, e in c["slices"]:
            for k in range(s, e):
                where[(p, k)] = c["id"]
    h2_cores = {where[("h2", k)] for k in range(30)}
    expected = sum(rates["h1"][k] * len(h2_cores - {where[("h1", k)]}) for k in range(100))
    assert dec["packets_per_tick"] == round(float(expected), 6)


def test_config_entries_of_two_populations_on_one_core_add_up():
    b = GraphBuilder("two_cfg", stage=Stage.QUANTIZED, attrs={"target": "loihi-mini"})
    b.add(Input(name="x", shape=(2,)))
    for k, du in enumerate((10, 20)):
        b.add(LoihiSparse(name=f"s{k}", in_features=2, out_features=3, rows=b.const(f"r{k}", [0, 1, 2]),
                          cols=b.const(f"c{k}", [0, 1, 0]), values=b.const(f"v{k}", [2, 2, 2])), "x")
        b.add(LoihiCompartment(name=f"h{k}", shape=(3,), du=du, dv=0, vth_mant=5 + k), f"s{k}")
        b.add(Output(name=f"y{k}", shape=(3,)), f"h{k}")
    g = b.build()
    use = cost_model("loihi").usage(network(g), [("h0", 0, 3), ("h1", 0, 3)], load_profile("loihi-mini"))
    assert use.amounts["compartment_configs"] == 2 and use.amounts["threshold_configs"] == 2
    assert use.amounts["synapse_configs"] == 1 and use.amounts["axons_in"] == 4
