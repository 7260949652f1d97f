"""NIR import/export against the NIR paper's single-LIF case and round trips."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from ir.errors import FrontendError, NmcWarning
from tests.conftest import CONFORMANCE, need, need_path


@pytest.fixture(autouse=True)
def _nir_installed():
    need("nir")


def lif_input() -> np.ndarray:
    d = np.loadtxt(need_path(CONFORMANCE / "nir_lif" / "lif_exact.csv"), delimiter=",")
    return d[:, 0].reshape(-1, 1)


def spike_steps(graph, x) -> list[int]:
    from ir.interp_float import run_float

    res = run_float(graph, x)
    (out,) = res.outputs.values()
    return np.nonzero(out[0, :, 0])[0].tolist()


@pytest.mark.parametrize("disc", ["euler", "exact"])
def test_nir_paper_lif_spikes_at_reference_steps(disc):
    from nmc.frontends.nir import load_nir

    with pytest.warns(NmcWarning, match="NIR does not store the time step"):
        g = load_nir(CONFORMANCE / "nir_lif" / "lif_norse.nir", dt=1e-4, discretization=disc)
    assert [n.kind for n in g.nodes.values()] == ["Input", "Dense", "LIF", "Output"]
    assert spike_steps(g, lif_input()) == [460, 510, 710, 760]


def test_nir_lif_euler_tau_steps_like_the_framework():
    from nmc.frontends.nir import load_nir

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NmcWarning)
        g = load_nir(CONFORMANCE / "nir_lif" / "lif_norse.nir", dt=1e-4)
    lif = g.nodes["n_1"]
    # forward Euler decay 1 - dt/tau (tau is float32 0.0025 in the file) must be the IR's
    # exp(-dt/tau_ir)
    assert np.exp(-g.dt / lif.tau_mem) == pytest.approx(1 - 1e-4 / float(np.float32(0.0025)),
                                                         rel=1e-12)


def test_default_dt_is_announced():
    from nmc.frontends.nir import load_nir

    with pytest.warns(NmcWarning, match=r"assumed dt = 0\.001 s \(pass --dt\)"):
        load_nir(CONFORMANCE / "nir_lif" / "lif_norse.nir")


def _quiet(fn, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NmcWarning)
        return fn(*a, **k)


@pytest.mark.parametrize("disc", ["exact", "euler"])
def test_round_trip_import_export_import(tmp_path, disc):
    from nmc.frontends.nir import load_nir, save_nir

    g1 = _quiet(load_nir, CONFORMANCE / "oxford" / "network.nir", dt=1e-4, discretization=disc)
    save_nir(g1, tmp_path / "x.nir", discretization=disc)
    g2 = _quiet(load_nir, tmp_path / "x.nir", dt=1e-4, discretization=disc)
    assert list(g1.nodes) == list(g2.nodes) and g1.edges == g2.edges
    for name, n1 in g1.nodes.items():
        n2 = g2.nodes[name]
        assert n1.kind == n2.kind
        for f, v1 in n1.fields().items():
            if v1 is None or isinstance(v1, str):
                assert getattr(n2, f) == v1, f"{name}.{f}"
                continue
            a1 = g1.const(v1) if hasattr(v1, "name") else np.asarray(v1)
            v2 = getattr(n2, f)
            a2 = g2.const(v2) if hasattr(v2, "name") else np.asarray(v2)
            if disc == "exact":
                np.testing.assert_array_equal(a1, a2, err_msg=f"{name}.{f}")
            else:  # tau goes through log/exp: equal to rounding
                np.testing.assert_allclose(a1, a2, rtol=1e-12, err_msg=f"{name}.{f}")


def test_in_memory_graph_and_recurrent_edges_get_a_delay():
    nir = need("nir")
    from nmc.frontends.nir import from_nir

    w = np.array([[0.5, 0.0], [0.0, 0.5]])
    g = nir.NIRGraph(
        nodes={
            "in": nir.Input(input_type={"input": np.array([2])}),
            "fc": nir.Linear(weight=np.eye(2)),
            "lif": nir.LIF(tau=np.full(2, 0.01), r=np.ones(2), v_leak=np.zeros(2),
                           v_threshold=np.ones(2)),
            "rec": nir.Linear(weight=w),
            "out": nir.Output(output_type={"output": np.array([2])}),
        },
        edges=[("in", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "out")],
    )
    with pytest.warns(NmcWarning) as rec:
        ig = from_nir(g, dt=1e-3)
    assert any("recurrent edges without a delay (rec -> lif)" in str(r.message) for r in rec)
    delays = [n for n in ig.nodes.values() if n.kind == "Delay"]
    assert [(d.name, d.delay) for d in delays] == [("rec_to_lif_delay", 1)]


def test_unstable_euler_step_is_refused():
    nir = need("nir")
    from nmc.frontends.nir import from_nir

    g = nir.NIRGraph(
        nodes={"in": nir.Input(input_type={"input": np.array([1])}),
               "lif": nir.LIF(tau=np.array([1e-4]), r=np.ones(1), v_leak=np.zeros(1),
                              v_threshold=np.ones(1)),
               "out": nir.Output(output_type={"output": np.array([1])})},
        edges=[("in", "lif"), ("lif", "out")],
    )
    with pytest.raises(FrontendError, match=r"^NIR node 'lif' \(LIF\): tau_mem = 0\.0001 s is "
                       r"shorter than dt = 0\.001 s"):
        _quiet(from_nir, g, dt=1e-3)


def test_not_a_nir_file(tmp_path):
    from nmc.frontends.nir import load_nir

    p = tmp_path / "bad.nir"
    p.write_bytes(b"not hdf5")
    with pytest.raises(FrontendError, match=r"bad\.nir: not a readable NIR file"):
        load_nir(p)


def test_oxford_nir_and_netx_give_the_same_network():
    """network.nir (float, Euler) and network.net (Loihi integers) describe one network: the
    netx graph's float equivalent equals the NIR import up to the one-step synaptic delays."""
    need("h5py")
    from nmc.frontends.netx import load_netx
    from nmc.frontends.nir import load_nir, native_to_float

    fnir = _quiet(load_nir, CONFORMANCE / "oxford" / "network.nir", dt=1e-4)
    net = load_netx(CONFORMANCE / "oxford" / "network.net")
    fnet = native_to_float(net.replace(dt=1e-4))
    kinds = [n.kind for n in fnet.nodes.values() if n.kind != "Delay"]
    assert kinds.count("CubaLIF") == 2 and kinds.count("Dense") == 2
    for a, b in [("n_0", "layer0_syn"), ("n_2", "layer1_syn")]:
        np.testing.assert_array_equal(fnir.const(fnir.nodes[a].weight),
                                      fnet.const(fnet.nodes[b].weight), err_msg=f"{a} vs {b}")
    for a, b in [("n_1", "layer0"), ("n_3", "layer1")]:
        na, nb = fnir.nodes[a], fnet.nodes[b]
        for f in ("tau_syn", "tau_mem"):  # the per-step decay factors must agree
            np.testing.assert_allclose(np.exp(-1e-4 / fnir.param(na, f)),
                                       np.exp(-1e-4 / fnet.param(nb, f)), atol=1e-12)
        for f in ("v_threshold", "r", "w_in"):
            np.testing.assert_allclose(fnir.param(na, f), fnet.param(nb, f), rtol=1e-6)
