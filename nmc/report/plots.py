"""Plots and waveform traces of an emulation: ``nmc run/emulate --plot out.png --vcd trace.vcd``.

One sample of the batch (``--plot-sample``, default 0) is traced; the PNG has, top to bottom:

* a spike raster per plotted population (``--plot-probe NAME``: a population or an output port;
  default the output ports); an output port of readout values is drawn as voltage traces;
* the output spike counts of that sample per neuron, one panel per spike output port;
* in cycle mode: the cycles each tick took against the tick's budget (``chip.tick_seconds *
  noc.clock_hz``; above it the tick overruns), and link congestion over time (see
  :func:`congestion_series`).

The VCD (:func:`nmc.report.vcd.write_vcd`) holds the output ports' spikes and what ``--probe``
names: ``NAME`` (the population's spikes and its registers u and v), ``NAME.spikes``,
``NAME.u`` or ``NAME.v`` (registers in two's complement, their width from the image).

Matplotlib is optional (the ``viz`` extra): without it :func:`require_matplotlib` raises an
NmcError saying ``pip install 'nmc[viz]'``. The figure is drawn with matplotlib's object API on an
Agg canvas, so no GUI backend is touched. Its size in pixels is :func:`figure_size`.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ir.errors import NmcError

VIZ_HINT = "pip install 'nmc[viz]'"
WIDTH_IN = 10.0
"""Figure width in inches (times the dpi: pixels)."""
PANEL_IN = {"raster": 2.2, "values": 2.0, "counts": 1.7, "cycles": 1.8, "congestion": 1.8}
"""Height in inches of each kind of panel."""
MARGIN_IN = 0.9
"""Height in inches for the title and the bottom axis labels."""
STATE_VARS = ("u", "v")
"""State registers a probe can name (``POP.u``, ``POP.v``); ``POP.spikes``: the spikes; a bare
``POP``: the spikes and every register (what ``nmc emulate --probe POP`` records)."""


def require_matplotlib() -> Any:
    """Import matplotlib (the ``viz`` extra) or raise NmcError with the install command."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
        from matplotlib.figure import Figure  # noqa: F401
    except ImportError:
        raise NmcError(f"plots need matplotlib, which is not installed; {VIZ_HINT}") from None
    import matplotlib

    return matplotlib


# ------------------------------------------------------------------------------------------
# What to trace
# ------------------------------------------------------------------------------------------
def _names(chip: Any) -> tuple[list[str], dict[str, Any]]:
    pops = [p.name for p in chip.populations]
    ports = {p.name: p for p in chip.outputs}
    return pops, ports


def _unknown(what: str, name: str, chip: Any) -> NmcError:
    pops, ports = _names(chip)
    return NmcError(
        f"{what} {name}: the chip {chip.graph_name} has no population or output port of that "
        f"name; populations: {', '.join(pops) or 'none'}; output ports: "
        f"{', '.join(ports) or 'none'}")


def parse_probe(chip: Any, spec: str, what: str = "--probe") -> tuple[str, str]:
    """``"h1"`` -> ``("h1", "all")`` (spikes and registers), ``"h1.v"`` -> ``("h1", "v")``,
    ``"h1.spikes"`` -> ``("h1", "spikes")``; an output port name -> ``(port, "port")``.
    NmcError naming the known populations and ports for anything else."""
    pops, ports = _names(chip)
    if spec in ports and spec not in pops:
        return spec, "port"
    name, dot, var = spec.partition(".")
    var = var if dot else "all"
    if name not in pops:
        raise _unknown(what, spec, chip)
    if var not in ("all", "spikes", *STATE_VARS):
        raise NmcError(f"{what} {spec}: unknown variable {var!r} of population {name}; use "
                       f"{name} (spikes and registers), {name}.spikes, "
                       f"{', '.join(f'{name}.{v}' for v in STATE_VARS)}")
    return name, var


def probe_populations(chip: Any, plot_probes: Sequence[str] = (),
                      probes: Sequence[str] = ()) -> list[str]:
    """The populations a run must probe (``run(..., probes=...)``) for these plot and VCD probes
    (output ports need no probe). Checks every name."""
    out: list[str] = []
    for what, specs in (("--plot-probe", plot_probes), ("--probe", probes)):
        for spec in specs:
            name, var = parse_probe(chip, spec, what)
            if var != "port" and name not in out:
                out.append(name)
    return out


@dataclass
class TraceData:
    """One traced sample, ready to plot: arrays are ``(T, n)`` (one sample).

    ``rasters``: name -> spikes to draw; ``values``: name -> values to draw as traces (readout
    ports); ``counts``: spike output port -> spike count per neuron; ``cycles``: cycles per tick
    (cycle mode); ``budget``: the cycle budget of a tick; ``congestion``: label -> per-tick
    series; ``congestion_note``: where the congestion numbers come from.
    """

    title: str
    tick_seconds: float
    ticks: int
    rasters: dict[str, np.ndarray] = field(default_factory=dict)
    values: dict[str, np.ndarray] = field(default_factory=dict)
    counts: dict[str, np.ndarray] = field(default_factory=dict)
    cycles: np.ndarray | None = None
    budget: int | None = None
    congestion: dict[str, np.ndarray] = field(default_factory=dict)
    congestion_note: str = ""

    def panels(self) -> list[str]:
        """The kinds of the figure's panels, top to bottom."""
        out = ["raster"] * len(self.rasters) + ["values"] * len(self.values)
        out += ["counts"] * len(self.counts)
        if self.cycles is not None:
            out += ["cycles", "congestion"]
        return out


CONGESTION_KEYS = (
    ("max_link_packets_per_tick", "packets on the busiest link"),
    ("stall_cycles_per_tick", "stall cycles (all links)"),
)
"""Per-tick series the cycle-mode runner may report in ``stats["noc"]`` (max over samples), with
their plot labels; when none is there, congestion comes from the overrun reports."""


def congestion_series(noc: dict[str, Any], ticks: int, sample: int = 0
                      ) -> tuple[dict[str, np.ndarray], str]:
    """Link congestion per tick from a cycle-mode run's ``stats["noc"]``.

    Uses the per-tick series of :data:`CONGESTION_KEYS` when the runner reports them; otherwise
    the runner's ``overrun_ticks`` (each with its most congested links): the stall cycles and the
    packets of the most congested link on every overrun tick of ``sample``, zero on the other
    ticks (which did not overrun, so no link held a tick back). Returns (series, note).
    """
    series: dict[str, np.ndarray] = {}
    for key, label in CONGESTION_KEYS:
        if key in noc and noc[key] is not None:
            a = np.asarray(noc[key], dtype=np.float64)
            a = a.reshape(a.shape[0], -1).max(axis=1) if a.ndim > 1 else a
            series[label] = a[:ticks]
    if series:
        return series, "per-tick link counters of the cycle-mode NoC"
    stalls = np.zeros(ticks)
    packets = np.zeros(ticks)
    for o in noc.get("overrun_ticks", []) or []:
        if int(o.get("sample", 0)) != sample:
            continue
        t = int(o.get("tick", -1))
        if not 0 <= t < ticks:
            continue
        links = o.get("links") or []
        if links:
            stalls[t] = max(stalls[t], max(float(x.get("stalls", 0)) for x in links))
            packets[t] = max(packets[t], max(float(x.get("packets", 0)) for x in links))
    note = ("most congested link of each overrun tick (the runner reports links for overrun "
            "ticks only; 0: no overrun)")
    return {"stall cycles, worst link": stalls, "packets, worst link": packets}, note


def trace_data(result: Any, chip: Any, *, plot_probes: Sequence[str] = (), sample: int = 0,
               title: str | None = None, sample_label: int | None = None) -> TraceData:
    """Pick sample ``sample`` of a run (an ``emulator.runner.RunResult``) for plotting;
    ``sample_label``: the sample's index in the user's inputs, for the title (default
    ``sample``)."""
    B = int(getattr(result, "batch", 1))
    if not 0 <= sample < B:
        raise NmcError(f"--plot-sample {sample}: the run has samples 0..{B - 1}")
    T = int(result.ticks)
    _, ports = _names(chip)
    tick = float(chip.params.get("chip.tick_seconds", 1e-3))
    d = TraceData(title=title or f"{chip.graph_name} on {chip.profile_name} ({result.mode} mode, "
                                 f"sample {sample if sample_label is None else sample_label})",
                  tick_seconds=tick, ticks=T)
    chosen = list(plot_probes) or list(ports)
    for spec in chosen:
        name, var = parse_probe(chip, spec, "--plot-probe")
        if var == "port":
            arr = np.asarray(result.outputs[name])[sample]
            if ports[name].kind == "spikes":
                d.rasters[f"output {name}"] = arr.reshape(T, -1)
            else:
                d.values[f"output {name} (v)"] = arr.reshape(T, -1)
        else:
            if name not in result.probes:
                raise NmcError(f"--plot-probe {spec}: population {name} was not probed in this "
                               "run; pass probes=[...] to the run (probe_populations())")
            if var in ("spikes", "all"):
                d.rasters[name] = np.asarray(result.probes[name]["spikes"])[sample].reshape(T, -1)
            else:
                d.values[f"{name}.{var}"] = np.asarray(result.probes[name][var])[sample].reshape(
                    T, -1)
    for name, port in ports.items():
        if port.kind == "spikes":
            d.counts[name] = np.asarray(result.outputs[name])[sample].reshape(T, -1).sum(axis=0)
    noc = (result.stats or {}).get("noc")
    if result.mode == "cycle" and noc:
        cyc = np.asarray(noc.get("cycles_per_tick", []), dtype=np.float64)
        d.cycles = cyc[:T]
        d.budget = noc.get("budget_cycles")
        d.congestion, d.congestion_note = congestion_series(noc, T, sample if B > 1 else 0)
    return d


# ------------------------------------------------------------------------------------------
# Drawing
# ------------------------------------------------------------------------------------------
def figure_size(data: TraceData, dpi: int = 100) -> tuple[int, int]:
    """The PNG's (width, height) in pixels for ``data`` at ``dpi``."""
    h = MARGIN_IN + sum(PANEL_IN[k] for k in data.panels())
    return int(round(WIDTH_IN * dpi)), int(round(h * dpi))


def render_png(data: TraceData, dpi: int = 100) -> bytes:
    """The figure of ``data`` as PNG bytes (see the module doc for the panels)."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import EngFormatter

    kinds = data.panels()
    if not kinds:
        raise NmcError("nothing to plot: the chip has no output port and no --plot-probe")
    w, h = figure_size(data, dpi)
    fig = Figure(figsize=(w / dpi, h / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    top = 1 - 0.45 / (h / dpi)
    bottom = 0.45 / (h / dpi)
    gs = fig.add_gridspec(len(kinds), 1, height_ratios=[PANEL_IN[k] for k in kinds],
                          left=0.08, right=0.98, top=top, bottom=bottom, hspace=0.9)
    fig.suptitle(data.title, fontsize=11, y=1 - 0.12 / (h / dpi), va="top")
    T = data.ticks
    ms = data.tick_seconds * 1e3
    i = 0

    def xaxis(ax: Any) -> None:
        ax.set_xlim(-0.5, max(T, 1) - 0.5)
        ax.set_xlabel(f"tick ({_fmt(ms)} ms each)", fontsize=8)
        ax.tick_params(labelsize=8)

    for name, s in data.rasters.items():
        ax = fig.add_subplot(gs[i])
        i += 1
        t, n = np.nonzero(s)
        # One neuron row is (panel height in points) / neurons tall; keep ticks visible.
        row_pt = (PANEL_IN["raster"] - 0.6) * 72.0 / max(1, s.shape[1])
        ax.scatter(t, n, marker="|", s=min(10.0, max(3.5, row_pt)) ** 2, linewidths=1.0,
                   color="#1d2330")
        ax.set_ylim(-0.5, max(s.shape[1], 1) - 0.5)
        ax.set_ylabel("neuron", fontsize=8)
        ax.set_title(f"{name}: {int(s.sum())} spikes from {s.shape[1]} neurons", fontsize=9,
                     loc="left")
        xaxis(ax)
    for name, v in data.values.items():
        ax = fig.add_subplot(gs[i])
        i += 1
        shown = v[:, :16]
        for j in range(shown.shape[1]):
            ax.plot(np.arange(T), shown[:, j], lw=0.9)
        more = f" (first 16 of {v.shape[1]})" if v.shape[1] > 16 else ""
        ax.set_title(f"{name}{more}", fontsize=9, loc="left")
        ax.set_ylabel("value", fontsize=8)
        ax.yaxis.set_major_formatter(EngFormatter(sep=""))  # "2M", not an offset "1e6"
        xaxis(ax)
    for name, c in data.counts.items():
        ax = fig.add_subplot(gs[i])
        i += 1
        ax.bar(np.arange(c.size), c, color="#c8553d", width=0.8)
        ax.set_xlim(-0.6, max(c.size, 1) - 0.4)
        ax.set_ylim(0, max(1.0, float(c.max()) * 1.1) if c.size else 1.0)
        ax.set_title(f"output {name}: spike counts (total {int(c.sum())})", fontsize=9,
                     loc="left")
        ax.set_xlabel("neuron", fontsize=8)
        ax.set_ylabel("spikes", fontsize=8)
        ax.tick_params(labelsize=8)
    if data.cycles is not None:
        ax = fig.add_subplot(gs[i])
        i += 1
        ax.plot(np.arange(data.cycles.size), data.cycles, color="#1d2330", lw=1.0,
                drawstyle="steps-mid", label="cycles")
        if data.budget:
            ax.axhline(data.budget, color="#b3261e", ls="--", lw=1.0,
                       label=f"budget {int(data.budget)}")
            over = int((data.cycles > data.budget).sum())
        else:
            over = 0
        ax.set_title(f"cycles per tick (max {int(data.cycles.max()) if data.cycles.size else 0};"
                     f" {over} overrun tick(s))", fontsize=9, loc="left")
        ax.set_ylabel("cycles", fontsize=8)
        ax.set_yscale("symlog" if data.budget and data.cycles.size and data.budget > 20 *
                      max(1.0, float(data.cycles.max())) else "linear")
        ax.legend(fontsize=7, loc="upper right")
        xaxis(ax)
        ax = fig.add_subplot(gs[i])
        i += 1
        for label, series in data.congestion.items():
            ax.plot(np.arange(series.size), series, lw=1.0, drawstyle="steps-mid", label=label)
        ax.set_title("link congestion: " + data.congestion_note, fontsize=9, loc="left")
        ax.set_ylabel("count", fontsize=8)
        if data.congestion:
            ax.legend(fontsize=7, loc="upper right")
        xaxis(ax)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def _fmt(x: float) -> str:
    return f"{x:g}"


def plot_trace(path: str | os.PathLike, data: TraceData, dpi: int = 100) -> Path:
    """Write the PNG of ``data`` atomically; returns the path."""
    from nmc.fileio import atomic_write_bytes

    return atomic_write_bytes(Path(path), render_png(data, dpi))


# ------------------------------------------------------------------------------------------
# VCD
# ------------------------------------------------------------------------------------------
def vcd_signals(result: Any, chip: Any, probes: Sequence[str] = (), sample: int = 0
                ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], int]:
    """``(spikes, states, state_bits)`` of one sample for :func:`nmc.report.vcd.write_vcd`:
    every spike output port, plus the spikes and registers named by ``probes``; readout
    (values) ports go in as states. ``state_bits``: the widest register written (image
    ``widths.u``/``widths.v``)."""
    B = int(getattr(result, "batch", 1))
    if not 0 <= sample < B:
        raise NmcError(f"--plot-sample {sample}: the run has samples 0..{B - 1}")
    _, ports = _names(chip)
    spikes: dict[str, np.ndarray] = {}
    states: dict[str, np.ndarray] = {}
    bits = []
    for name, port in ports.items():
        a = np.asarray(result.outputs[name])[sample]
        a = a.reshape(a.shape[0], -1)
        if port.kind == "spikes":
            spikes[name] = a.astype(np.uint8)
        else:
            states[f"{name}.v"] = a.astype(np.int64)
            bits.append(int(chip.params.get("widths.v", 24)))
    for spec in probes:
        name, var = parse_probe(chip, spec)
        if var == "port":
            continue  # output ports are always written
        if name not in result.probes:
            raise NmcError(f"--probe {spec}: population {name} was not probed in this run")
        for v in (("spikes", *STATE_VARS) if var == "all" else (var,)):
            if v not in result.probes[name]:
                continue
            a = np.asarray(result.probes[name][v])[sample]
            a = a.reshape(a.shape[0], -1)
            if v == "spikes":
                spikes[name] = a.astype(np.uint8)
            else:
                states[f"{name}.{v}"] = a.astype(np.int64)
                bits.append(int(chip.params.get(f"widths.{v}", 24)))
    return spikes, states, max(bits, default=24)


# ------------------------------------------------------------------------------------------
# The command-line glue (shared by nmc run and nmc emulate)
# ------------------------------------------------------------------------------------------
def write_traces(result: Any, chip: Any, *, plot: str | os.PathLike | None = None,
                 vcd: str | os.PathLike | None = None, plot_probes: Sequence[str] = (),
                 probes: Sequence[str] = (), sample: int = 0, dpi: int = 100,
                 sample_label: int | None = None) -> list[Path]:
    """Write the PNG and/or the VCD of sample ``sample`` of ``result`` (a RunResult that probed
    :func:`probe_populations`). Returns the paths written."""
    out = []
    if plot is not None:
        require_matplotlib()  # fail before any work when the extra is missing
        out.append(plot_trace(plot, trace_data(result, chip, plot_probes=plot_probes,
                                               sample=sample, sample_label=sample_label), dpi))
    if vcd is not None:
        from nmc.report.vcd import write_vcd

        spikes, states, bits = vcd_signals(result, chip, probes, sample)
        # chip.tick_seconds is already the chip's own tick period (BrainScaleS-2: 1 us).
        tick = float(chip.params.get("chip.tick_seconds", 1e-3))
        out.append(write_vcd(vcd, spikes, tick, states=states, state_bits=bits,
                             top=chip.graph_name))
    return out


def trace_run(chip: Any, inputs: Any, *, ticks: int | None = None, mode: str = "fast",
              plot_probes: Sequence[str] = (), probes: Sequence[str] = (), sample: int = 0
              ) -> Any:
    """Run sample ``sample`` of ``inputs`` (``(B, T, n)`` or a dict of such by input port) on
    ``chip`` with the probes the traces need; returns the RunResult (batch 1)."""
    def pick(a: Any) -> Any:
        a = np.asarray(a)
        if a.ndim < 3:
            return a
        if not 0 <= sample < a.shape[0]:
            raise NmcError(f"--plot-sample {sample}: the inputs have samples 0..{a.shape[0] - 1}")
        return a[sample:sample + 1]

    one = {k: pick(v) for k, v in inputs.items()} if isinstance(inputs, dict) else pick(inputs)
    pops = probe_populations(chip, plot_probes, probes)
    return chip.run(one, ticks, mode=mode, probes=pops)


def emit_traces(chip: Any, inputs: Any, *, plot: str | os.PathLike | None = None,
                vcd: str | os.PathLike | None = None, plot_probes: Sequence[str] = (),
                probes: Sequence[str] = (), sample: int = 0, ticks: int | None = None,
                mode: str = "fast", dpi: int = 100) -> list[Path]:
    """``--plot``/``--vcd`` of a command: check the names, trace one sample, write the files."""
    if plot is None and vcd is None:
        return []
    if plot is not None:
        require_matplotlib()
    probe_populations(chip, plot_probes, probes)  # name errors before the run
    res = trace_run(chip, inputs, ticks=ticks, mode=mode, plot_probes=plot_probes,
                    probes=probes, sample=sample)
    return write_traces(res, chip, plot=plot, vcd=vcd, plot_probes=plot_probes, probes=probes,
                        sample=0, dpi=dpi, sample_label=sample)


__all__ = ["CONGESTION_KEYS", "TraceData", "VIZ_HINT", "congestion_series", "emit_traces",
           "figure_size", "parse_probe", "plot_trace", "probe_populations", "render_png",
           "require_matplotlib", "trace_data", "trace_run", "vcd_signals", "write_traces"]
