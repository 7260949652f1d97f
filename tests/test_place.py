"""place: mesh geometry, greedy and annealed placement, the spike-hops bar."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

from ir.errors import CompileError
from nmc.passes import run_passes
from nmc.passes.partition import Partition
from nmc.passes.place import Mesh, Place, anneal, core_traffic, hops, spike_hops
from nmc.passes.utilization import loihi_conv_network, traffic_quality
from nmc.targets import load_profile

sys.path.insert(0, str(Path(__file__).parent))
from test_partition import make_profile, two_layer  # noqa: E402


def test_mesh_geometry():
    m = Mesh(4, 2, 3)
    assert m.slots == 24
    chip, x, y = m.coords(np.array([0, 3, 4, 8, 23]))
    assert (chip.tolist(), x.tolist(), y.tolist()) == ([0, 0, 0, 1, 2], [0, 3, 0, 0, 3], [0, 0, 1, 0, 1])
    gx, gy = m.global_xy(np.array([0, 8, 23]))
    assert (gx.tolist(), gy.tolist()) == ([0, 4, 11], [0, 0, 1])
    assert m.slot_of(2, 3, 1) == 23
    assert hops(m, np.array([0]), np.array([23])).tolist() == [12]


def test_greedy_is_row_major_and_records_hops():
    g = run_passes(two_layer(), [Partition(), Place()], "loihi-mini").graph
    assert [(c["chip"], c["x"], c["y"]) for c in g.mapping["cores"]] == [(0, 0, 0), (0, 1, 0), (0, 2, 0)]
    assert g.mapping["strategy"] == {"partition": "contiguous", "place": "greedy"}
    dec = g.attrs["passes"]["place"]
    # 150 h1 neurons -> core 2 (h2) at 0.05 spikes/tick: cores 0 and 1 are 2 and 1 hops away
    assert dec == {"strategy": "greedy", "chips": 1, "spike_hops_per_tick": 9.6,
                   "spike_hops_per_tick_greedy": 9.6, "packets_per_tick": 6.4,
                   "rates": "uniform 0.05"}


def test_several_chips_when_one_is_not_enough(tmp_path):
    prof = load_profile(make_profile(tmp_path, **{"chip.mesh_x": 2, "chip.mesh_y": 1}))
    g = run_passes(two_layer(), [Partition(), Place()], prof).graph
    assert [(c["chip"], c["x"], c["y"]) for c in g.mapping["cores"]] == [(0, 0, 0), (0, 1, 0), (1, 0, 0)]
    assert g.attrs["passes"]["place"]["chips"] == 2


def test_too_many_chips_says_by_how_much(tmp_path):
    prof = load_profile(make_profile(tmp_path, **{"chip.mesh_x": 1, "chip.mesh_y": 1,
                                                  "chip.max_chips": 2}))
    with pytest.raises(CompileError, match=re.escape(
            "place: network (3 cores): chips 3 > 2 by 1 (target test-profile) "
            "[net.chips]; it needs 3 cores, 1 per chip; shrink the network, reduce weight bits, "
            "or use a profile with more chips (chip.max_chips)") + "$"):
        run_passes(two_layer(), [Partition(), Place()], prof)


def test_anneal_is_seeded_and_never_worse_than_greedy(tmp_path):
    prof = load_profile(make_profile(tmp_path, **{"core.axons_in": 1024}))
    g = run_passes(loihi_conv_network(side=8, channels=(1, 2, 2, 2)), [Partition()], prof).graph
    traffic = core_traffic(g)
    n = len(g.mapping["cores"])
    mesh = Mesh.of(prof, n)
    a = anneal(mesh, n, traffic, seed=3, steps=3000)
    b = anneal(mesh, n, traffic, seed=3, steps=3000)
    assert a.tolist() == b.tolist()
    assert sorted(a.tolist()) == sorted(set(a.tolist()))  # one core per slot
    assert spike_hops(mesh, a, traffic) < spike_hops(mesh, np.arange(n), traffic)


def test_bad_strategy():
    g = run_passes(two_layer(), [Partition()], "loihi-mini").graph
    with pytest.raises(CompileError, match=r"^place: strategy = 'spiral' is not one of greedy, anneal$"):
        run_passes(g, [Place(strategy="spiral")], "loihi-mini")


def test_mincut_and_anneal_cut_spike_hops_by_30_percent(tmp_path):
    prof = make_profile(tmp_path, **{"core.axons_in": 1024, "core.axons_out": 1024,
                                     "core.synapse_words": 4096, "chip.mesh_x": 8,
                                     "chip.mesh_y": 8})
    q = traffic_quality(prof, loihi_conv_network(side=16, channels=(2, 4, 4, 4, 4)), steps=4000)
    assert q["cores_baseline"] == q["cores_optimized"] == 64
    assert q["reduction"] >= 0.30, q
