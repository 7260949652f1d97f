"""Fuzzing the lava-dl netx importer: mutated ``.net`` (HDF5) files give a user error or a graph.

Seeds: lava-dl's Oxford network (dense 200-256-200) and its tiny convolutional network. The
mutations are those of ``test_fuzz_nir.py`` (both formats are HDF5 trees), with netx's layer and
neuron type names for retyping.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import CONFORMANCE, need, need_path
from tests.test_fuzz_nir import mutate_hdf5, write_temp
from tests.test_robustness import failure_of

SEEDS = {
    "oxford": CONFORMANCE / "oxford" / "network.net",
    "tinynet": CONFORMANCE / "tinynet" / "tiny.net",
}
NETX_TYPES = ["input", "dense", "conv", "pool", "flatten", "average", "CUBA", "LOIHI", "SDNN",
              "garbage", ""]
CASES_CI = 150
"""Cases per seed in CI (300 for netx)."""

_BYTES: dict[str, bytes] = {}


def seed_bytes(name: str) -> bytes:
    if name not in _BYTES:
        _BYTES[name] = need_path(SEEDS[name]).read_bytes()
    return _BYTES[name]


def netx_case(seed: str, rnd: random.Random) -> str | None:
    """One fuzz case: mutate ``seed``'s bytes with ``rnd`` and import them; the failure or None."""
    from nmc.frontends.netx import load_netx

    data = mutate_hdf5(seed_bytes(seed), rnd, type_names=NETX_TYPES)
    path = write_temp(data, ".net")
    try:
        return failure_of(load_netx, path)
    finally:
        path.unlink()


FORMATS = {f"netx ({name})": (st.randoms(use_true_random=True),
                              (lambda rnd, name=name: netx_case(name, rnd))) for name in SEEDS}
"""For bench/fuzz.py: format -> (strategy, case function returning a failure or None)."""


@pytest.mark.parametrize("seed", sorted(SEEDS))
def test_fuzz_netx_import(seed: str):
    need("h5py")
    seed_bytes(seed)

    @settings(max_examples=CASES_CI, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.randoms(use_true_random=True))
    def run(rnd: random.Random) -> None:
        failure = netx_case(seed, rnd)
        assert failure is None, failure

    run()
