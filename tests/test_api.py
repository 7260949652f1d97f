"""The Python API as a framework's deployment backend uses it (README: snnTorch -> NIR -> nmc)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import nmc
from ir.errors import NmcWarning
from tests.conftest import need


def snntorch_like_graph():
    """What snnTorch's export_to_nir writes for Linear -> Leaky -> Linear -> Leaky (beta = 0.9,
    dt = 1e-3: tau = dt / (1 - beta), r = tau / dt)."""
    nir = need("nir")
    rng = np.random.default_rng(0)
    beta, dt = 0.9, 1e-3
    tau = dt / (1 - beta)

    def leaky(n):
        return nir.LIF(tau=np.full(n, tau), r=np.full(n, tau / dt), v_leak=np.zeros(n),
                       v_threshold=np.ones(n), v_reset=np.zeros(n))

    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([16])}),
            "fc1": nir.Affine(weight=rng.normal(0.3, 0.4, (20, 16)), bias=np.zeros(20)),
            "lif1": leaky(20),
            "fc2": nir.Affine(weight=rng.normal(0.2, 0.4, (4, 20)), bias=np.zeros(4)),
            "lif2": leaky(4),
            "output": nir.Output(output_type={"output": np.array([4])}),
        },
        edges=[("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"),
               ("lif2", "output")],
    )


def test_nir_object_compiles_and_runs_on_loihi(tmp_path):
    g = snntorch_like_graph()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NmcWarning)
        compiled = nmc.compile(g, target="loihi", frontend_options={"dt": 1e-3, "reset": "zero"})
    x = (np.random.default_rng(1).random((8, 40, 16)) < 0.3).astype(np.uint8)
    labels = np.arange(8) % 4
    result = compiled.run(x, labels=labels)
    assert result.spikes["output"].shape == (8, 40, 4)
    assert 0.0 <= result.accuracy <= 1.0
    assert result.energy_per_sample_j > 0 and result.chip_time_s == pytest.approx(0.04)
    assert compiled.utilization["cores_used"] >= 1
    # the float model and the chip agree on what spikes (statistically): counts correlate
    from ir.interp_float import run_float

    f = run_float(compiled.source, x).outputs["output"].sum(axis=(0, 1))
    c = result.spikes["output"].sum(axis=(0, 1))
    assert np.corrcoef(f, c)[0, 1] > 0.9, (f, c)
    # a saved image runs the same
    path = compiled.save(tmp_path / "chip.nmb")
    again = nmc.run(nmc.load_image(path), x, labels=labels)
    np.testing.assert_array_equal(again.spikes["output"], result.spikes["output"])


def test_ir_graph_and_path_inputs():
    from ir.random_graphs import random_loihi_graph

    g = random_loihi_graph(5)
    assert nmc.load(g) is g
    with pytest.raises(nmc.NmcError, match="cannot compile an object of type int"):
        nmc.load(3)
