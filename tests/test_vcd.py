"""VCD output parses back to exactly the spikes and states written."""

import numpy as np
import pytest

from nmc.report.vcd import read_vcd, timescale, write_vcd


def test_spikes_and_states_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    spikes = {"out": (rng.random((50, 3)) < 0.3).astype(np.uint8),
              "h": (rng.random((50, 2)) < 0.5).astype(np.uint8)}
    v = rng.integers(-(2**23), 2**23, size=(50, 2))
    p = write_vcd(tmp_path / "t.vcd", spikes, 1e-3, states={"h.v": v})
    ts, sig = read_vcd(p)
    assert ts == "1 ms"
    for i in range(3):
        np.testing.assert_array_equal(sig[f"out.out[{i}]"], spikes["out"][:, i])
    for i in range(2):
        np.testing.assert_array_equal(sig[f"h_v.v[{i}]"], v[:, i])
    text = p.read_text()
    assert "$var wire 1 ! out[0] $end" in text and "$date" not in text


def test_same_run_same_file(tmp_path):
    s = {"o": np.eye(4, dtype=np.uint8)}
    a = write_vcd(tmp_path / "a.vcd", s, 1e-6).read_bytes()
    b = write_vcd(tmp_path / "b.vcd", s, 1e-6).read_bytes()
    assert a == b


@pytest.mark.parametrize("sec, expect", [(1e-3, "1 ms"), (1e-6, "1 us"), (1e-4, "100 us"),
                                         (0.01, "10 ms"), (1.0, "1 s")])
def test_timescale(sec, expect):
    assert timescale(sec) == expect
