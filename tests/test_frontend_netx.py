"""lava-dl netx import against lava-dl's own reference data (../shared/conformance)."""

from __future__ import annotations

import numpy as np
import pytest

from ir.errors import FrontendError
from tests.conftest import CONFORMANCE, need, need_path


@pytest.fixture(autouse=True)
def _h5py_installed():
    need("h5py")


def oxford_inputs() -> tuple[np.ndarray, np.ndarray]:
    """Input raster (T, 200) with event times rounded to whole steps, and the reference spike
    counts per output neuron of lava-dl's training simulator."""
    ev = np.load(need_path(CONFORMANCE / "oxford" / "input.npy"))
    gt = np.load(CONFORMANCE / "oxford" / "ground_truth.npy")
    t = np.rint(ev[:, 2]).astype(int)
    steps = int(max(t.max(), gt[:, 2].max())) + 10
    x = np.zeros((steps, 200), dtype=np.int8)
    x[t, ev[:, 0].astype(int)] = 1
    counts = np.bincount(gt[:, 0].astype(int), minlength=200)
    return x, counts


def per_neuron_correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.astype(float), b.astype(float))[0, 1])


def test_netx_weight_fit_matches_the_rule():
    from nmc.frontends.netx import netx_weight_fit

    w, nwb, exp, sign = netx_weight_fit(np.array([[-178, 192, 2, 0]]))
    # scale = min(127/192, 128/178) -> floor(log2) = -1, +1 for the sign bit -> 0 bits of shift;
    # all weights even -> n = 1 - 1 = 0 -> 8 weight bits
    assert (w.tolist(), nwb, exp, sign) == ([[-178, 192, 2, 0]], 8, 0, "mixed")
    w, nwb, exp, sign = netx_weight_fit(np.array([[10, 20, 40]]))
    # excitatory: scale = 255/40 -> 2 bits of shift (w << 2), exponent -2; all divisible by 2
    # after the shift the grid is 2**(n)... 8 - 2 - 1 = 5 weight bits
    assert (w.tolist(), nwb, exp, sign) == ([[40, 80, 160]], 5, -2, "excitatory")


def test_oxford_imports_with_lava_parameters():
    from nmc.frontends.netx import load_netx

    g = load_netx(CONFORMANCE / "oxford" / "network.net")
    c0, c1 = g.nodes["layer0"], g.nodes["layer1"]
    assert (c0.du, c0.dv, c0.vth_mant, c0.bias_exp) == (4095, 415, 6, 6)
    assert (c1.du, c1.dv, c1.vth_mant) == (4095, 409, 6)
    assert g.stage.value == "quantized" and g.attrs["target"] == "loihi"


def test_oxford_integer_run_correlates_with_lava_dl():
    from ir.interp_int import run_int
    from nmc.frontends.netx import load_netx

    g = load_netx(CONFORMANCE / "oxford" / "network.net")
    x, ref = oxford_inputs()
    out = run_int(g, x).outputs["out"][0]
    r = per_neuron_correlation(out.sum(axis=0), ref)
    assert r >= 0.99, f"per-neuron spike-count correlation {r:.4f} < 0.99"


# lava-dl's test zeroes u and v of layer i (input layer = 0) after every step t with
# t % 17 == (i - 1) % 17 (Lava's io.reset.Reset, steps counted from 0 here); within 17 steps:
TINYNET_RESETS = {"layer0": [16], "layer1": [0], "layer2": [1]}


def tinynet_graph():
    from nmc.frontends.netx import load_netx

    bias = np.load(need_path(CONFORMANCE / "tinynet" / "input_bias.npy"))  # (W, H, C) as Lava
    return load_netx(CONFORMANCE / "tinynet" / "tiny.net", input_bias=bias.transpose(2, 1, 0))


def tinynet_reference() -> np.ndarray:
    ref = np.load(CONFORMANCE / "tinynet" / "output.npy")  # (1, C, H, W, T)
    return ref[0].reshape(-1, ref.shape[-1]).T  # (T, C*H*W) in C, H, W order


def test_tinynet_integer_run_is_identical_to_lava_dl():
    from ir.interp_int import run_int

    g = tinynet_graph()
    ref = tinynet_reference()
    out = run_int(g, None, steps=17, resets=TINYNET_RESETS).outputs["out"][0]
    # lava-dl's own test: its output at steps 2..16 equals output.npy at steps 1..15
    np.testing.assert_array_equal(out[2:17], ref[1:16])
    assert ref[1:16].sum() == 92


def test_not_hdf5(tmp_path):
    from nmc.frontends.netx import load_netx

    p = tmp_path / "x.net"
    p.write_text("hello")
    with pytest.raises(FrontendError, match=r"x\.net: not an HDF5 file"):
        load_netx(p)


def test_unsupported_layer_type_names_the_place(tmp_path):
    h5py = need("h5py")
    from nmc.frontends.netx import load_netx

    p = tmp_path / "y.net"
    with h5py.File(p, "w") as f:
        f["layer/0/type"] = np.array([b"convT"])
    with pytest.raises(FrontendError, match=r"^y\.net: /layer/0/type: layer type 'convT' is not "
                       r"supported \(input, dense, conv, pool, flatten are\)$"):
        load_netx(p)


def test_oxford_through_the_whole_chain_on_the_emulator():
    """netx -> IR -> map for loihi -> image -> emulator: same spikes as the integer reference,
    and per-neuron spike counts correlate >= 0.99 with lava-dl's."""
    import nmc
    from ir.interp_int import run_int
    from nmc.frontends.netx import load_netx

    g = load_netx(CONFORMANCE / "oxford" / "network.net")
    x, ref = oxford_inputs()
    compiled = nmc.compile(g, "loihi")
    chip = compiled.run(x).spikes["out"][0]
    np.testing.assert_array_equal(chip, run_int(g, x).outputs["out"][0])
    r = per_neuron_correlation(chip.sum(axis=0), ref)
    assert r >= 0.99, f"per-neuron spike-count correlation {r:.4f} < 0.99"


def test_tinynet_through_the_whole_chain_on_the_emulator():
    """netx -> IR -> map for loihi -> image -> emulator with lava-dl's host resets: lava-dl's own
    output (steps 2..16 == output.npy steps 1..15, 92 spikes) in both modes, and the integer
    reference tick for tick, with and without the resets."""
    import nmc
    from ir.interp_int import run_int

    g = tinynet_graph()
    ref = tinynet_reference()
    compiled = nmc.compile(g, "loihi")
    want = run_int(g, None, steps=17, resets=TINYNET_RESETS).outputs["out"][0]
    for mode in ("fast", "cycle"):
        chip = compiled.run(None, ticks=17, mode=mode, resets=TINYNET_RESETS).spikes["out"][0]
        np.testing.assert_array_equal(chip[2:17], ref[1:16], err_msg=mode)
        assert chip[2:17].sum() == 92
        np.testing.assert_array_equal(chip, want, err_msg=mode)
    # the same resets as the CLI writes them (every 17 ticks, offset (i - 1) % 17 per layer)
    every = {n: slice(t[0], None, 17) for n, t in TINYNET_RESETS.items()}
    chip = compiled.run(None, ticks=34, resets=every).spikes["out"][0]
    np.testing.assert_array_equal(chip[:17], want)
    # without resets the chip still equals the reference, and differs from lava-dl's output
    plain = compiled.run(None, ticks=17).spikes["out"][0]
    np.testing.assert_array_equal(plain, run_int(g, None, steps=17).outputs["out"][0])
    assert not np.array_equal(plain[2:17], ref[1:16])
