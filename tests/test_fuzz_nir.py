"""Fuzzing the NIR importer: mutated ``.nir`` (HDF5) files give a user error or a graph, nothing else.

Seeds: the NIR paper's single LIF (``nir_lif/lif_norse.nir``) and the Oxford network converted to
NIR (``oxford/network.nir``). A case applies one to three mutations through h5py (delete a key;
replace a dataset by one of another shape, dtype or value, NaN/inf included; retype a node; rewire
the edges; add a key; declare a huge chunked dataset; copy a node) and then, sometimes, damages the
bytes (truncation, flipped bytes). Hypothesis drives the random choices (``st.randoms``), so a
failure shrinks and replays. ``bench/fuzz.py`` runs the same cases by the ten thousand.
"""

from __future__ import annotations

import io
import random
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import CONFORMANCE, need, need_path
from tests.test_robustness import failure_of

SEEDS = {
    "lif": CONFORMANCE / "nir_lif" / "lif_norse.nir",
    "oxford": CONFORMANCE / "oxford" / "network.nir",
}
NIR_TYPES = ["Affine", "Linear", "LIF", "CubaLIF", "IF", "LI", "CubaLI", "I", "Input", "Output",
             "Conv1d", "Conv2d", "SumPool2d", "AvgPool2d", "Flatten", "Delay", "Threshold", "Scale",
             "NIRGraph", "Identity", "Project", "garbage", ""]
CASES_CI = 150
"""Cases per test in CI (two seeds: 300 for NIR)."""

_BYTES: dict[str, bytes] = {}


def seed_bytes(name: str) -> bytes:
    if name not in _BYTES:
        _BYTES[name] = need_path(SEEDS[name]).read_bytes()
    return _BYTES[name]


# ------------------------------------------------------------------------------------------
# Mutations (shared with test_fuzz_netx.py: both formats are HDF5 trees)
# ------------------------------------------------------------------------------------------
def special_value(rnd: random.Random, like: np.ndarray | None) -> object:
    """A replacement for a dataset: another shape, dtype or value, or the old array spoiled."""
    choice = rnd.randrange(14)
    if choice == 0:
        return rnd.choice([np.nan, np.inf, -np.inf, 0.0, -1.0, 1e300, -1e-300, 2.0**62, -2**63])
    if choice == 1:
        return np.array(rnd.choice([0, -1, 1, 2**31, -(2**31), 2**62]), dtype=np.int64)
    if choice == 2:
        return rnd.choice([b"garbage", b"", "\u00e9t\u00e9".encode(), b"LIF", b"1.5", b"[1, 2]"])
    if choice == 3:
        return np.zeros(rnd.choice([(0,), (0, 3), (3, 0), (0, 0, 0)]))
    if choice == 4:
        shape = tuple(rnd.randint(1, 4) for _ in range(rnd.randint(0, 5)))
        return np.asarray(rnd.choice([np.random.default_rng(rnd.randrange(99)).normal(size=shape),
                                      np.ones(shape, dtype=np.int8), np.full(shape, np.nan)]))
    if choice == 5:
        return np.array([True, False])
    if choice == 6:
        return np.array([1 + 2j, 3j])
    if choice == 7:
        return np.array(rnd.choice([[1, 2, 3], [[1, 2], [3, 4]], [-5], [10**6]]), dtype=np.int64)
    if like is None or like.dtype.kind not in "biuf" or like.size == 0:
        return np.array(rnd.choice([0.5, -0.5, 7.0]))
    a = np.array(like, copy=True)
    if choice == 8 and a.dtype.kind == "f":
        flat = a.reshape(-1)
        for _ in range(rnd.randint(1, 3)):
            flat[rnd.randrange(flat.size)] = rnd.choice([np.nan, np.inf, -np.inf, 0.0, -1e30])
        return a
    if choice == 9:
        return a.T if a.ndim > 1 else a.reshape(1, -1)
    if choice == 10:
        return a.reshape(-1)[: rnd.randint(0, a.size)]
    if choice == 11:
        return np.concatenate([a.reshape(-1), a.reshape(-1)])
    if choice == 12:
        return -a
    return a.astype(rnd.choice([np.float16, np.int8, np.uint8, np.int64, np.float64]))


def _items(f) -> tuple[list[str], list[str]]:
    import h5py

    groups: list[str] = []
    datasets: list[str] = []

    def visit(name: str, obj) -> None:
        (datasets if isinstance(obj, h5py.Dataset) else groups).append(name)

    f.visititems(visit)
    return groups, datasets


def _replace(f, name: str, value: object) -> None:
    del f[name]
    f[name] = value


def mutate_hdf5(data: bytes, rnd: random.Random, *, type_names: list[str],
                edge_key: str | None = None) -> bytes:
    """One to three h5py-level mutations of an HDF5 model file, then maybe byte damage."""
    h5py = need("h5py")
    buf = io.BytesIO(data)
    with h5py.File(buf, "r+") as f:
        for _ in range(rnd.randint(1, 3)):
            groups, datasets = _items(f)
            op = rnd.randrange(8)
            if op == 0 and (groups or datasets):  # delete a key
                del f[rnd.choice(groups + datasets)]
            elif op in (1, 2) and datasets:  # replace a value
                name = rnd.choice(datasets)
                # (an earlier mutation may have declared a huge dataset: do not read that one)
                old = f[name][()] if f[name].size < 10**6 else None
                _replace(f, name, special_value(rnd, old if isinstance(old, np.ndarray) else None))
            elif op == 3:  # retype a node / layer
                types = [d for d in datasets if d.rsplit("/", 1)[-1] == "type"]
                if types:
                    _replace(f, rnd.choice(types), rnd.choice(type_names).encode())
            elif op == 4 and edge_key and edge_key in f:  # rewire the edges
                names = [g.rsplit("/", 1)[-1] for g in groups] + ["nowhere", ""]
                n = rnd.randint(0, 6)
                edges = [[rnd.choice(names), rnd.choice(names)] for _ in range(n)]
                value: object = np.array(edges, dtype=object).astype("S") if n else \
                    np.zeros((0, 2), dtype="S1")
                if rnd.random() < 0.2:
                    value = special_value(rnd, None)
                _replace(f, edge_key, value)
            elif op == 5 and groups:  # add an unexpected key
                g = f[rnd.choice(groups)]
                key = rnd.choice(["extra", "type", "shape", "weight", "bias", "nodes", "0"])
                if key not in g:
                    g[key] = special_value(rnd, None)
            elif op == 6 and datasets:  # a dataset declaring far more than the file holds
                name = rnd.choice(datasets)
                del f[name]
                shape = rnd.choice([(10**6, 10**6), (2**40,), (4096, 4096, 4096), (10**5, 10**4)])
                f.create_dataset(name, shape=shape, dtype="f4", chunks=(1,) * (len(shape) - 1)
                                 + (1024,))
            elif op == 7 and groups:  # copy a group under a new name
                src = rnd.choice(groups)
                parent = src.rsplit("/", 1)[0] if "/" in src else ""
                dst = f"{parent}/copy{rnd.randrange(9)}" if parent else f"copy{rnd.randrange(9)}"
                if dst not in f:
                    f.copy(src, dst)
    out = bytearray(buf.getvalue())
    damage = rnd.random()
    if damage < 0.1:
        out = out[: rnd.randrange(len(out))]
    elif damage < 0.2:
        for _ in range(rnd.randint(1, 8)):
            out[rnd.randrange(len(out))] = rnd.randrange(256)
    return bytes(out)


def write_temp(data: bytes, suffix: str) -> Path:
    fd, name = tempfile.mkstemp(suffix=suffix, prefix="nmc_fuzz_")
    with open(fd, "wb") as f:
        f.write(data)
    return Path(name)


def nir_case(seed: str, rnd: random.Random) -> str | None:
    """One fuzz case: mutate ``seed``'s bytes with ``rnd`` and import them; the failure or None."""
    from nmc.frontends.nir import load_nir

    data = mutate_hdf5(seed_bytes(seed), rnd, type_names=NIR_TYPES, edge_key="node/edges")
    path = write_temp(data, ".nir")
    try:
        options = rnd.choice([{"dt": 1e-4}, {}, {"dt": 1e-3, "reset": "subtract"},
                              {"discretization": "exact"}])
        return failure_of(load_nir, path, **options)
    finally:
        path.unlink()


FORMATS = {f"nir ({name})": (st.randoms(use_true_random=True),
                             (lambda rnd, name=name: nir_case(name, rnd))) for name in SEEDS}
"""For bench/fuzz.py: format -> (strategy, case function returning a failure or None)."""


@pytest.mark.parametrize("seed", sorted(SEEDS))
def test_fuzz_nir_import(seed: str):
    need("nir")
    seed_bytes(seed)

    @settings(max_examples=CASES_CI, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.randoms(use_true_random=True))
    def run(rnd: random.Random) -> None:
        failure = nir_case(seed, rnd)
        assert failure is None, failure

    run()
