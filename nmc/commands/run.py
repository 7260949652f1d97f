"""``nmc run``: compile a model for a target and emulate it on inputs, in one go."""

from __future__ import annotations

import json
import time
import zipfile

import click
import numpy as np

from ir.errors import NmcError
from nmc.commands.compile import (
    FLOW_OPTION,
    collect_frontend_options,
    frontend_options,
    load_calibration,
    parse_flow_options,
)
from nmc.resources import check_compile, check_run, max_memory_option


def _check_header(path: str, key: str) -> None:
    """Refuse an array whose header claims more than the file holds or the memory limit allows
    (numpy would allocate the claimed shape first)."""
    from nmc.resources import check_npy, npy_header

    try:
        header = npy_header(path, key)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise NmcError(f"{path}: cannot read array {key!r} ({e})") from None
    check_npy(header, f"{path}: array {key!r}")


def read_inputs(path: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Spike inputs and optional labels from an .npz: arrays ``spikes`` (B, T, N) or (T, N), and
    ``labels`` (B,). Another single array is taken as the spikes."""
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise NmcError(f"{path}: cannot read inputs ({e}); expected an .npz with 'spikes'") from None
    with z:
        files = list(z.files)
        key = next((k for k in ("spikes", "x", "inputs") if k in files), None)
        if key is None:
            rest = [k for k in files if k != "labels"]
            if len(rest) != 1:
                raise NmcError(
                    f"{path}: no array named 'spikes' (found {', '.join(files) or 'none'}); "
                    "save the input spike trains as spikes=(batch, steps, neurons)"
                )
            key = rest[0]
        for k in (key, "labels"):
            if k in files:
                _check_header(path, k)
        spikes = np.asarray(z[key])
        labels = np.asarray(z["labels"]) if "labels" in files else None
    if spikes.ndim == 2:
        spikes = spikes[None]
    if labels is not None and labels.shape != (spikes.shape[0],):
        raise NmcError(
            f"{path}: labels have shape {list(labels.shape)}, expected [{spikes.shape[0]}] "
            "(one per sample)"
        )
    return spikes, labels


PLOT_OPTIONS = [
    click.option("--plot", type=click.Path(dir_okay=False), default=None,
                 help="Write a PNG of one sample: spike rasters, output counts; in cycle mode "
                      "also cycles per tick and link congestion (needs nmc[viz]).",),
    click.option("--plot-probe", multiple=True, metavar="NAME[.VAR]",
                 help="What to draw: a population's spike raster (NAME), its register traces "
                      "(NAME.u, NAME.v) or an output port; repeatable (default: the output "
                      "ports)."),
    click.option("--plot-sample", type=int, default=0, show_default=True,
                 help="Which sample of the batch --plot and --vcd trace."),
    click.option("--vcd", type=click.Path(dir_okay=False), default=None,
                 help="Write a VCD waveform of one sample (output spikes and --probe signals)."),
]
"""``--plot/--plot-probe/--plot-sample/--vcd`` (``nmc run`` and ``nmc emulate``)."""

PROBE_OPTION = click.option(
    "--probe", multiple=True, metavar="NAME[.VAR]",
    help="Add to the VCD: a population's spikes and registers (NAME), or one of them "
         "(NAME.spikes, NAME.u, NAME.v); repeatable.")


def plot_options(fn):
    """Add :data:`PLOT_OPTIONS` to a command (``nmc emulate`` has its own ``--probe``)."""
    for opt in reversed(PLOT_OPTIONS):
        fn = opt(fn)
    return fn


def trace_options(fn):
    """``--plot/--plot-probe/--plot-sample/--vcd/--probe``; pass their values to
    :func:`nmc.report.plots.emit_traces`."""
    return plot_options(PROBE_OPTION(fn))


def score(compiled, ev, labels, steps: int) -> float:
    """Accuracy with the readout the model declares (provenance.readout; spike count when it
    declares none), moving its window by the chip's extra latency. Failed samples don't count."""
    from nmc.readout import from_provenance, latency_shift, predict

    source = compiled.source
    readout, args = from_provenance(source.attrs.get("provenance") if source else None)
    port = next(iter(ev.outputs))
    shift = latency_shift(compiled.graph, source, port) if source is not None else 0
    pred = predict(ev.outputs[port], readout, shift=shift if "window" in args else 0, **args)
    ok = np.ones(len(pred), bool)
    for f in ev.failures:
        ok[f.index] = False
    return float((pred[ok] == np.asarray(labels)[ok]).mean())


def si(value: float, unit: str) -> str:
    """A number with an SI prefix: 1.2e-6 J -> '1.2 uJ'."""
    if value == 0:
        return f"0 {unit}"
    for factor, prefix in ((1e0, ""), (1e-3, "m"), (1e-6, "u"), (1e-9, "n"), (1e-12, "p")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


@click.command("run")
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.option("--target", "-t", required=True, help="Target profile name or .toml path.")
@click.option("--input", "input_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help=".npz with spikes (batch, steps, neurons) and optional labels (batch,).")
@click.option("--ticks", type=int, default=None, help="Ticks to run (default: input length).")
@click.option("--mode", type=click.Choice(["fast", "cycle"]), default="fast")
@click.option("--limit", type=int, default=None, help="Use only the first N samples.")
@click.option("--partition", type=click.Choice(["contiguous", "mincut"]), default="contiguous")
@click.option("--place", type=click.Choice(["greedy", "anneal"]), default="greedy")
@click.option("--seed", type=int, default=0)
@click.option("--calibration", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Sample inputs (.npz) for data-aware quantization.")
@click.option("--batch-size", type=int, default=None,
              help="Samples per emulator batch (default: chosen from samples and workers).")
@click.option("--workers", type=int, default=None,
              help="Evaluate on a local Dask cluster of N worker processes (nmc[dist]).")
@click.option("--scheduler", default=None,
              help="Evaluate on an existing Dask scheduler, e.g. tcp://127.0.0.1:8786.")
@click.option("--mismatch", default=None, metavar="SIGMA[:SEED]",
              help="BrainScaleS-2 targets only: emulate analog mismatch, a seeded per-neuron "
                   "spread of the analog parameters of SIGMA codes (standard deviation; "
                   "'profile': the target's analog.fpn_sigma_codes); seed default 0.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@trace_options
@FLOW_OPTION
@frontend_options
@max_memory_option
def run_cmd(model, target, input_path, ticks, mode, limit, partition, place, seed, calibration,
            batch_size, workers, scheduler, mismatch, as_json, plot, plot_probe, plot_sample, vcd,
            probe, flow_options, dt, reset):
    """Compile MODEL for TARGET and emulate it on the inputs; print accuracy, cores, energy."""
    from nmc import api

    if mismatch is not None:
        from emulator.runner import parse_mismatch

        parse_mismatch(mismatch)  # a malformed value fails before anything is compiled

    if plot is not None:
        from nmc.report.plots import require_matplotlib

        require_matplotlib()  # say `pip install 'nmc[viz]'` before compiling anything
    spikes, labels = read_inputs(input_path)
    if limit is not None:
        spikes = spikes[:limit]
        labels = None if labels is None else labels[:limit]
    t0 = time.perf_counter()
    graph = api.load(model, **collect_frontend_options(dt, reset))
    check_compile(graph, where=str(model))
    compiled = api.compile(graph, target, partition=partition, place=place, seed=seed,
                           calibration=load_calibration(calibration),
                           options=parse_flow_options(flow_options),
                           frontend_options=collect_frontend_options(dt, reset))
    t_compile = time.perf_counter() - t0
    chip_options = {}
    chip = None
    mismatch_info = None
    if mismatch is not None:
        from emulator.runner import mismatch_chip

        if compiled.profile.family != "brainscales2":
            raise NmcError(f"--mismatch {mismatch}: analog mismatch applies to brainscales2 "
                           f"targets only; target {compiled.profile.name} is of family "
                           f"{compiled.profile.family}, whose datapath is digital")
        chip, mismatch_info = mismatch_chip(compiled.chip(), mismatch)
        chip_options["mismatch"] = mismatch
    if plot is not None or vcd is not None:
        # Check the trace names and the sample now, not after the whole evaluation.
        from nmc.report.plots import probe_populations

        probe_populations(compiled.chip(), plot_probe, probe)
        if not 0 <= plot_sample < len(spikes):
            raise NmcError(f"--plot-sample {plot_sample}: the inputs have samples "
                           f"0..{len(spikes) - 1}")
    from nmc.dist import default_batch_size, evaluate
    from nmc.readout import latency_shift

    if ticks is None and compiled.source is not None and compiled.source.outputs:
        # run long enough for the last input step's effect to reach the outputs on the chip
        ticks = spikes.shape[1] + latency_shift(compiled.graph, compiled.source)

    batch = batch_size or default_batch_size(len(spikes), workers)
    check_run(compiled.graph, min(batch, len(spikes)) * max(1, workers or 1),
              ticks or spikes.shape[1], where=str(model))
    from nmc.progress import Progress

    with Progress("emulate", len(spikes)) as bar:
        ev = evaluate(
            compiled.image, spikes, batch_size=batch, workers=workers, scheduler=scheduler,
            run_options={"ticks": ticks, "mode": mode, **chip_options}, progress=bar,
        )
    for f in ev.failures:
        click.echo(f"sample {f.index} failed: {f.error}", err=True)
    traces = []
    if plot is not None or vcd is not None:
        # The evaluation above brings back outputs and totals only; the traced sample is run
        # once more here, locally, with the probes the plot and the VCD need.
        from nmc.report.plots import emit_traces

        traces = emit_traces(chip if chip is not None else compiled.chip(), spikes, plot=plot,
                             vcd=vcd, plot_probes=plot_probe, probes=probe, sample=plot_sample,
                             ticks=ticks, mode=mode)
    t_run = ev.seconds
    stats = ev.stats
    accuracy = None
    if labels is not None:
        accuracy = score(compiled, ev, labels, spikes.shape[1])
    e_stats = stats.get("energy", {})
    energy = e_stats.get("total_j", e_stats.get("total_joules"))  # api / emulator.runner names
    u = compiled.utilization
    summary = {
        "model": str(model),
        "target": compiled.profile.name,
        "family": compiled.profile.family,
        "samples": int(spikes.shape[0]),
        "ticks": int(stats.get("ticks", spikes.shape[1])),
        "accuracy": accuracy,
        "cores_used": u.get("cores_used"),
        "cores_lower_bound": u.get("cores_lower_bound", u.get("lower_bound")),
        "chips_used": u.get("chips_used"),
        "energy_per_sample_j": None if energy is None else energy / max(1, len(spikes)),
        "chip_time_per_sample_s": stats.get("chip_time_s",
                                            stats.get("chip_time", {}).get("seconds_per_sample")),
        "synaptic_ops_per_sample": (stats.get("counters", {}).get("synaptic_ops", 0)
                                    / max(1, len(spikes))),
        "workers": ev.workers,
        "samples_per_s": round(ev.samples_per_s, 2),
        "compile_s": round(t_compile, 3),
        "emulate_s": round(t_run, 3),
    }
    if mismatch_info is not None:
        summary["mismatch"] = mismatch_info
    if traces:
        summary["traces"] = [str(p) for p in traces]
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(f"model      {summary['model']}  ->  target {summary['target']} "
               f"({summary['family']} family)")
    if summary["accuracy"] is not None:
        click.echo(f"accuracy   {100 * summary['accuracy']:.2f} % on {summary['samples']} samples")
    else:
        click.echo(f"samples    {summary['samples']} (no labels: accuracy not computed)")
    if mismatch_info is not None:
        click.echo(f"mismatch   sigma {mismatch_info['sigma_codes']:g} codes, seed "
                   f"{mismatch_info['seed']} (analog fixed-pattern noise)")
    click.echo(f"cores      {summary['cores_used']} used (lower bound "
               f"{summary['cores_lower_bound']}), {summary['chips_used']} chip(s)")
    if summary["energy_per_sample_j"] is not None:
        click.echo(f"energy     {si(summary['energy_per_sample_j'], 'J')} per sample")
    if summary["chip_time_per_sample_s"] is not None:
        click.echo(f"chip time  {si(summary['chip_time_per_sample_s'], 's')} per sample "
                   f"({summary['ticks']} ticks)")
    click.echo(f"host time  compile {summary['compile_s']:.2f} s, emulate {summary['emulate_s']:.2f} s"
               f" ({summary['samples_per_s']} samples/s"
               + (f", {ev.workers} workers)" if ev.workers else ")"))
    for p in traces:
        click.echo(f"wrote      {p}")
    if ev.failures:
        raise SystemExit(1)


commands = [run_cmd]
