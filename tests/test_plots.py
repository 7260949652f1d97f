"""Emulation plots (PNG) and VCD traces: ``nmc run ... --plot out.png --vcd trace.vcd``."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import nmc.cli
from ir.errors import NmcError
from nmc.report.plots import (
    TraceData,
    congestion_series,
    emit_traces,
    figure_size,
    probe_populations,
    require_matplotlib,
    trace_data,
    trace_run,
    vcd_signals,
)
from nmc.report.vcd import read_vcd
from tests.conftest import need
from tests.test_report_html import tiny_model


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from nmc import api

    folder = tmp_path_factory.mktemp("plots")
    model, x = tiny_model(folder)
    compiled = api.compile(model, "loihi-mini")
    return folder, model, x, compiled, compiled.chip()


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def test_fast_mode_plot_and_size(built, tmp_path):
    need("matplotlib")
    _, _, x, _, chip = built
    res = trace_run(chip, x, plot_probes=["h1", "y"], sample=1)
    data = trace_data(res, chip, plot_probes=["h1", "y"], sample_label=1)
    assert data.panels() == ["raster", "raster", "counts"]
    assert data.title == "tiny_mlp on loihi-mini (fast mode, sample 1)"
    ref = chip.run(x)
    np.testing.assert_array_equal(data.rasters["output y"], ref.outputs["y"][1])
    np.testing.assert_array_equal(data.counts["y"], ref.counts["y"][1])
    assert data.counts["y"].sum() > 0  # the network does spike at its output
    out = emit_traces(chip, x, plot=tmp_path / "p.png", plot_probes=["h1", "y"], sample=1)
    assert out == [tmp_path / "p.png"]
    assert figure_size(data) == (1000, 700)
    assert png_size(out[0]) == (1000, 700)
    assert out[0].stat().st_size > 10_000


def test_cycle_mode_adds_cycles_and_congestion(built, tmp_path):
    need("matplotlib")
    _, _, x, _, chip = built
    res = trace_run(chip, x, mode="cycle")
    data = trace_data(res, chip)
    assert data.panels() == ["raster", "counts", "cycles", "congestion"]
    noc = res.stats["noc"]
    np.testing.assert_array_equal(data.cycles, noc["cycles_per_tick"])
    assert data.budget == noc["budget_cycles"]
    assert data.cycles.shape == (40,) and data.cycles.max() > 0
    p = emit_traces(chip, x, plot=tmp_path / "c.png", mode="cycle")[0]
    assert png_size(p) == figure_size(data) == (1000, 840)


def test_congestion_series_from_overrun_reports():
    noc = {"overrun_ticks": [
        {"tick": 2, "sample": 0, "links": [{"x": 0, "y": 0, "direction": "E", "packets": 9,
                                            "stalls": 30},
                                           {"x": 1, "y": 0, "direction": "E", "packets": 12,
                                            "stalls": 5}]},
        {"tick": 3, "sample": 1, "links": [{"x": 0, "y": 0, "direction": "N", "packets": 4,
                                            "stalls": 7}]}]}
    series, note = congestion_series(noc, 5, sample=0)
    assert note.startswith("most congested link of each overrun tick")
    np.testing.assert_array_equal(series["stall cycles, worst link"], [0, 0, 30, 0, 0])
    np.testing.assert_array_equal(series["packets, worst link"], [0, 0, 12, 0, 0])
    series, note = congestion_series({"stall_cycles_per_tick": [1, 2, 3],
                                      "max_link_packets_per_tick": [[4, 1], [0, 5], [2, 2]]}, 3)
    assert note == "per-tick link counters of the cycle-mode NoC"
    assert {k: v.tolist() for k, v in series.items()} == {
        "packets on the busiest link": [4.0, 5.0, 2.0], "stall cycles (all links)": [1.0, 2.0, 3.0]}


def test_vcd_holds_spikes_and_registers(built, tmp_path):
    _, _, x, _, chip = built
    probes = ["h1", "h1.v"]
    res = trace_run(chip, x, probes=probes, sample=2)
    p = emit_traces(chip, x, vcd=tmp_path / "t.vcd", probes=probes, sample=2)[0]
    ts, sig = read_vcd(p)
    assert ts == "1 ms"
    ref = chip.run(x, probes=["h1"])
    for i in range(10):
        np.testing.assert_array_equal(sig[f"y.y[{i}]"], ref.outputs["y"][2][:, i])
    for i in (0, 77, 149):
        np.testing.assert_array_equal(sig[f"h1.h1[{i}]"], ref.probes["h1"]["spikes"][2][:, i])
        np.testing.assert_array_equal(sig[f"h1_v.v[{i}]"], ref.probes["h1"]["v"][2][:, i])
    spikes, states, bits = vcd_signals(res, chip, probes)
    # A bare population name is its spikes and both registers.
    assert sorted(spikes) == ["h1", "y"] and sorted(states) == ["h1.u", "h1.v"] and bits == 24
    spikes, states, _ = vcd_signals(res, chip, ["h1.spikes"])
    assert sorted(spikes) == ["h1", "y"] and states == {}
    assert "$var integer 24 " in p.read_text()


@pytest.mark.parametrize("plot_probes, probes, message", [
    (["nope"], [], "--plot-probe nope: the chip tiny_mlp has no population or output port of "
                   "that name; populations: h1, out; output ports: y"),
    ([], ["h1.w"], "--probe h1.w: unknown variable 'w' of population h1; use h1 (spikes and "
                   "registers), h1.spikes, h1.u, h1.v"),
])
def test_probe_name_errors(built, plot_probes, probes, message):
    chip = built[4]
    with pytest.raises(NmcError, match=r"^" + __import__("re").escape(message) + r"$"):
        probe_populations(chip, plot_probes, probes)


def test_probe_populations(built):
    chip = built[4]
    assert probe_populations(chip, ["y", "h1"], ["out.v", "h1"]) == ["h1", "out"]


def test_without_matplotlib(monkeypatch, built, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(NmcError, match=r"^plots need matplotlib, which is not installed; "
                                       r"pip install 'nmc\[viz\]'$"):
        require_matplotlib()
    folder, model, _, _, _ = built
    r = CliRunner().invoke(nmc.cli.cli, ["run", str(model), "-t", "loihi-mini", "--input",
                                         str(folder / "in.npz"), "--plot",
                                         str(tmp_path / "p.png")])
    assert r.exit_code == 1
    assert r.stderr.strip() == ("Error: plots need matplotlib, which is not installed; "
                                "pip install 'nmc[viz]'")
    assert list(tmp_path.iterdir()) == []


def test_cli_run_plot_and_vcd(built, tmp_path):
    need("matplotlib")
    folder, model, x, _, _ = built
    png, vcd = tmp_path / "r.png", tmp_path / "r.vcd"
    r = CliRunner().invoke(nmc.cli.cli, [
        "run", str(model), "-t", "loihi-mini", "--input", str(folder / "in.npz"),
        "--mode", "cycle", "--plot", str(png), "--plot-probe", "h1", "--vcd", str(vcd),
        "--probe", "h1.v", "--plot-sample", "1"])
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[-2:] == [f"wrote      {png}", f"wrote      {vcd}"]
    assert png_size(png) == (1000, int(round(100 * (0.9 + 2.2 + 1.7 + 1.8 + 1.8))))
    _, sig = read_vcd(vcd)
    assert sorted({k.split(".")[0] for k in sig}) == ["h1_v", "y"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.png", "r.vcd"]


@pytest.mark.parametrize("extra, message", [
    (["--plot-sample", "3", "--vcd", "V"], "Error: --plot-sample 3: the inputs have samples 0..2"),
    (["--probe", "zz", "--vcd", "V"], "Error: --probe zz: the chip tiny_mlp has no population or "
                                      "output port of that name; populations: h1, out; output "
                                      "ports: y"),
])
def test_cli_run_trace_errors(built, tmp_path, extra, message):
    folder, model, _, _, _ = built
    extra = [e.replace("V", str(tmp_path / "t.vcd")) for e in extra]
    r = CliRunner().invoke(nmc.cli.cli, ["run", str(model), "-t", "loihi-mini", "--input",
                                         str(folder / "in.npz"), *extra])
    assert r.exit_code == 1
    assert r.stderr.strip() == message
    assert list(tmp_path.iterdir()) == []


def test_trace_data_panels_order():
    d = TraceData(title="t", tick_seconds=1e-3, ticks=5, rasters={"a": np.zeros((5, 2))},
                  values={"b": np.zeros((5, 1))}, counts={"c": np.zeros(2)},
                  cycles=np.zeros(5))
    assert d.panels() == ["raster", "values", "counts", "cycles", "congestion"]
    assert figure_size(d, dpi=50) == (500, int(round(50 * (0.9 + 2.2 + 2.0 + 1.7 + 1.8 + 1.8))))


def test_cli_emulate_plot_and_vcd(built, tmp_path):
    need("matplotlib")
    _, _, x, compiled, _ = built
    img, inp = tmp_path / "m.nmb", tmp_path / "x.npz"
    compiled.save(img)
    np.savez(inp, x=x)
    png, vcd, out = tmp_path / "e.png", tmp_path / "e.vcd", tmp_path / "o.npz"
    r = CliRunner().invoke(nmc.cli.cli, [
        "emulate", str(img), "-i", str(inp), "--plot", str(png), "--plot-probe", "h1",
        "--plot-probe", "out.v", "--vcd", str(vcd), "--probe", "h1.v", "--plot-sample", "2",
        "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[-3:] == [f"wrote {png}", f"wrote {vcd}", f"wrote {out}"]
    assert png_size(png) == (1000, int(round(100 * (0.9 + 2.2 + 2.0 + 1.7))))
    _, sig = read_vcd(vcd)
    ref = built[4].run(x, probes=["h1"])
    np.testing.assert_array_equal(sig["h1_v.v[5]"], ref.probes["h1"]["v"][2][:, 5])
    # out was probed for the plot only: the .npz keeps what --probe asked for.
    assert sorted(np.load(out).files) == ["h1.spikes", "h1.u", "h1.v", "y", "y.counts",
                                          "y.first_spike"]
