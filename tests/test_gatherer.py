"""The fast mode's synaptic delivery (emulator/synapses.py Gatherer) against a plain reference.

A synthetic chip (random cores, axons fed by host channels and by other cores' compartments,
random synapses of several delays, groups and weights) is driven tick by tick with random input
channels and random compartment spikes; every tick's lane sums per class must equal a loop over
the synapse lists. Each delivery path is forced in turn: int16 / int32 / int64 row gathers, float32
/ float64 / integer BLAS products, CSR scatters, worker threads, a single sample. The runner's
batch shards (several engines in threads) are checked against one engine on compiled chips.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

import emulator.synapses as S
from emulator.runner import fast_threads


@dataclass
class _Core:
    n_neurons: int
    n_axons: int
    syn_ptr: np.ndarray
    syn_comp: np.ndarray
    syn_group: np.ndarray
    syn_w: np.ndarray
    syn_delay: np.ndarray
    route_ptr: np.ndarray
    route_core: np.ndarray
    route_axon: np.ndarray

    @property
    def n_synapses(self) -> int:
        return int(self.syn_comp.size)

    @property
    def n_routes(self) -> int:
        return int(self.route_core.size)


@dataclass
class _Port:
    width: int
    entries: np.ndarray


class _Chip:
    def __init__(self, cores, inputs):
        self.cores = cores
        self.inputs = inputs

    def core_xy(self, i: int) -> tuple[int, int]:
        return i, 0


def random_chip(seed: int, w_max: int, n_groups: int = 2, max_delay: int = 3,
                n_cores: int = 3, n_in: int = 60):
    """A chip whose core 0 gets host channels only, core 1 host channels and compartments of
    core 0 (one mixed block), core 2 compartments of cores 0 and 1; weights in -w_max..w_max."""
    rng = np.random.default_rng(seed)
    n_n = [int(rng.integers(8, 30)) for _ in range(n_cores)]
    n_ax = [int(rng.integers(20, 50)) for _ in range(n_cores)]  # <= n_in / 2 + 25 < n_in
    # axon feeders: core 0 <- channels; core 1 <- channels (first half) + core 0 (second half);
    # core 2 <- compartments of cores 0 and 1
    entries = [[0, 0, 0, n_ax[0]]]  # channels 0..n_ax[0]-1 -> core 0 axons
    h = n_ax[1] // 2
    entries.append([1, 0, n_in - h, n_in])  # the last h channels -> core 1 axons 0..h-1
    routes = {c: [[] for _ in range(n_n[c])] for c in range(n_cores)}
    free = {1: list(range(h, n_ax[1])), 2: list(range(n_ax[2]))}
    for dst, srcs in ((1, [0]), (2, [0, 1])):
        for a in free[dst]:
            src = int(rng.choice(srcs))
            routes[src][int(rng.integers(n_n[src]))].append((dst, a))
    cores = []
    for c in range(n_cores):
        per_axon = rng.integers(0, 6, n_ax[c])
        ptr = np.zeros(n_ax[c] + 1, np.int64)
        np.cumsum(per_axon, out=ptr[1:])
        n_s = int(ptr[-1])
        rp = np.zeros(n_n[c] + 1, np.int64)
        np.cumsum([len(r) for r in routes[c]], out=rp[1:])
        flat = [t for r in routes[c] for t in r]
        cores.append(_Core(
            n_neurons=n_n[c], n_axons=n_ax[c], syn_ptr=ptr,
            syn_comp=rng.integers(0, n_n[c], n_s), syn_group=rng.integers(0, n_groups, n_s),
            syn_w=rng.integers(-w_max, w_max + 1, n_s), syn_delay=rng.integers(1, max_delay + 1, n_s),
            route_ptr=rp, route_core=np.array([t[0] for t in flat], np.int64),
            route_axon=np.array([t[1] for t in flat], np.int64)))
    return _Chip(cores, [_Port(n_in, np.array(entries, np.int64))])


def reference(prog, classes, n_classes, act_in, spikes, t):
    """Lane sums of tick t by a loop over every synapse: ``act_in[tau]`` (B, n_in) bool,
    ``spikes[tau]`` (B, N) bool."""
    B = act_in[0].shape[0]
    out = np.zeros((n_classes, B, prog.N), np.int64)
    for c, core in enumerate(prog.chip.cores):
        for a in range(core.n_axons):
            src = prog.axon_src[c][a]
            if src < 0:
                continue
            for k in range(core.syn_ptr[a], core.syn_ptr[a + 1]):
                tau = t - int(core.syn_delay[k])
                if tau < 0:
                    continue
                act = (act_in[tau][:, src] if src < prog.n_in
                       else spikes[tau][:, src - prog.n_in])
                cls = classes[prog.syn_lane[c][k]]
                out[cls, act, prog.off[c] + core.syn_comp[k]] += int(core.syn_w[k])
    return out


def drive(chip, B, classes=None, n_classes=1, threads=1, ticks=7, rate=0.5, flat=False, seed=0):
    """Run a Gatherer over ``ticks`` random ticks; assert every tick equals the reference."""
    prog = S.SynapseProgram(chip)
    g = S.Gatherer(prog, B, classes=classes, n_classes=n_classes, threads=threads)
    cls = g.classes
    rng = np.random.default_rng(seed)
    act_in = [rng.random((B, prog.n_in)) < rate for _ in range(ticks)]
    spikes = [rng.random((B, prog.N)) < rate for _ in range(ticks)]

    def hist(tau):
        x = act_in[tau]
        if flat:
            f = np.flatnonzero(x)
            return f % prog.n_in, np.searchsorted(f, np.arange(B + 1) * prog.n_in)
        return [np.flatnonzero(r) for r in x]

    paths = set()
    try:
        for t in range(ticks):
            got = g.tick_inputs(t, hist)
            want = reference(prog, cls, n_classes, act_in, spikes, t)
            for c in range(n_classes):
                a = np.zeros((B, prog.N), np.int64) if got[c] is None else got[c]
                assert a.shape == (B, prog.N)
                assert np.array_equal(np.rint(a).astype(np.int64) if a.dtype.kind == "f" else a,
                                      want[c]), f"tick {t} class {c}"
            g.record_spikes(t, spikes[t])
        for b in prog.blocks():
            paths |= set(b.cache)
            paths |= {"csr"} if b.csr_ptr is not None else set()
    finally:
        g.close()
    return prog, paths


@pytest.fixture
def no_blas(monkeypatch):
    monkeypatch.setattr(S, "BLAS_DENSITY", 2.0)


@pytest.mark.usefixtures("no_blas")
@pytest.mark.parametrize("seed", range(4))
def test_int16_gathers_several_groups_and_classes(seed):
    chip = random_chip(seed, w_max=60, n_groups=3)
    prog = S.SynapseProgram(chip)
    _, paths = drive(chip, B=5, classes=prog.lane_group, n_classes=3, rate=0.3, seed=seed)
    assert paths == {"narrow"}
    # the mixed block (host channels and compartments in one block) exists
    assert any(b.rows_in.max() >= 0 and b.rows_n.max() >= 0 for b in prog.blocks())


@pytest.mark.usefixtures("no_blas")
def test_int32_and_int64_gathers():
    # |w| up to 3000: cap16 = 10 rows, so busy samples need int32; 2**29: cap32 = 3, int64 chunks
    for B in (1, 4):
        _, paths = drive(random_chip(7, w_max=3000), B=B, rate=0.6)
        assert paths == {"narrow"}
        _, paths = drive(random_chip(8, w_max=2**29), B=B, rate=0.6)
        assert paths == {"narrow"}


@pytest.mark.usefixtures("no_blas")
def test_single_sample_and_flat_inputs():
    drive(random_chip(3, w_max=100), B=1, rate=0.4)
    drive(random_chip(3, w_max=100), B=1, rate=0.4, flat=True)
    drive(random_chip(4, w_max=100), B=6, rate=0.4, flat=True)


@pytest.mark.usefixtures("no_blas")
def test_worker_threads():
    drive(random_chip(5, w_max=50), B=9, threads=3, rate=0.4)


@pytest.mark.parametrize("w_max,kind", [(50, "float32"), (2**23, "float64"), (2**52, "int")])
def test_blas_products(monkeypatch, w_max, kind):
    monkeypatch.setattr(S, "BLAS_DENSITY", 0.0)
    monkeypatch.setattr(S, "BLAS_BATCH", 0.0)
    prog, paths = drive(random_chip(11, w_max=w_max), B=3, rate=0.5)
    assert paths == {"blas"}
    kinds = {b.cache["blas"][0] if b.cache["blas"][0] == "int" else str(b.cache["blas"][1].dtype)
             for b in prog.blocks()}
    assert kind in kinds


def test_blas_only_for_dense_activity_of_a_batch():
    # one sample: never a product (it would read the whole float matrix), even at 90% activity;
    # 5% activity: gathers; 90% of 16 samples: products
    _, paths = drive(random_chip(12, w_max=50), B=1, rate=0.9, ticks=4)
    assert "blas" not in paths
    _, paths = drive(random_chip(12, w_max=50), B=16, rate=0.05, ticks=4)
    assert "blas" not in paths
    _, paths = drive(random_chip(12, w_max=50), B=16, rate=0.9, ticks=4)
    assert "blas" in paths


def test_csr_scatters(monkeypatch):
    monkeypatch.setattr(S, "DENSE_LIMIT", 0)
    for B in (1, 4):
        _, paths = drive(random_chip(13, w_max=2**40), B=B, rate=0.5)
        assert paths == {"csr"}


def test_fast_threads_default():
    assert fast_threads(1) == 1 and fast_threads(7) == 1
    assert fast_threads(64, strict=True) == 1
    assert fast_threads(64, threads=3) == 3
    assert fast_threads(2, threads=8) == 2
    assert 1 <= fast_threads(8) <= 2
    assert fast_threads(64) >= 1
    # a small network stays on one thread whatever the batch (the shards meet every tick)
    assert fast_threads(64, n_synapses=7400) == 1
    assert fast_threads(512, n_synapses=1 << 14) == 1


def test_shards_equal_one_engine_on_compiled_chips():
    """Several engines in threads (batch shards) give what one engine gives, for every family:
    outputs (spikes and a Loihi readout port), probes, counters, with host resets."""
    from test_emulator_brainscales2 import compiled as compiled_bss2
    from test_emulator_truenorth import compiled_tn
    from test_image import GOLDEN_PROFILE, two_core_graph

    import emulator
    from nmc.backend.writer import write_image

    chips = [emulator.load(write_image(two_core_graph(), GOLDEN_PROFILE)),
             emulator.load(next(r for r in map(compiled_tn, range(40)) if r is not None)[2]),
             emulator.load(next(r for r in map(compiled_bss2, range(40)) if r is not None)[1])]
    for chip in chips:
        rng = np.random.default_rng(1)
        ins = {p.name: rng.random((9, 15, p.width)) < 0.4 for p in chip.inputs}
        pops = [p.name for p in chip.populations]
        kw = dict(mode="fast", probes=pops, resets={"*": [4, 9]})
        one = chip.run(ins, threads=1, **kw)
        many = chip.run(ins, threads=3, **kw)
        assert any(o.any() for o in one.outputs.values()), chip.family
        for k in one.outputs:
            assert np.array_equal(one.outputs[k], many.outputs[k]), (chip.family, k)
        for p in pops:
            for v in one.probes[p]:
                assert np.array_equal(one.probes[p][v], many.probes[p][v]), (chip.family, p, v)
        assert one.stats["counters"] == many.stats["counters"], chip.family
