"""``nmc emulate``: run a chip image on the emulator; write output spikes and statistics."""

from __future__ import annotations

import json
from pathlib import Path

import click

from nmc.commands.run import plot_options


def _jsonable(v):
    import numpy as np

    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float) and v != v:
        return None
    return v


def write_json(path: str, doc: dict) -> None:
    """Write ``doc`` as JSON atomically."""
    from nmc.backend.writer import atomic_write

    atomic_write(Path(path), (json.dumps(_jsonable(doc), indent=1, sort_keys=True) + "\n").encode())


@click.command("emulate")
@click.argument("image", type=click.Path(exists=True, dir_okay=False))
@click.option("--input", "-i", "input_path", type=click.Path(exists=True, dir_okay=False),
              default=None, help="Input spikes (.npz): one array (T, N) or (B, T, N) per input "
              "port, or <port>_events rows (neuron, time) / (sample, neuron, time).")
@click.option("--ticks", "-T", type=click.IntRange(min=0), default=None,
              help="Ticks to run (default: the inputs' length; more ticks pad with silence).")
@click.option("--batch", type=click.IntRange(min=1), default=None,
              help="Samples (inputs without a batch axis are repeated).")
@click.option("--mode", type=click.Choice(["fast", "cycle"]), default="fast",
              help="fast: functional, vectorised; cycle: per-core datapath and NoC cycle by cycle.")
@click.option("--probe", "probes", multiple=True, metavar="NAME",
              help="Record u, v and spikes of this population (repeatable).")
@click.option("--strict", is_flag=True, help="Stop at the first register overflow.")
@click.option("--overrun", type=click.Choice(["stretch", "drop"]), default=None,
              help="Cycle mode: override the image's overrun policy.")
@click.option("--reset", "reset_specs", multiple=True, metavar="NAME@TICKS",
              help="Host reset: put population NAME ('*': every population) back to its initial "
                   "state after the given ticks, so the next tick starts from rest (as Lava's "
                   "io.reset). TICKS: T1,T2,... or every:P[+O] (ticks O, O+P, O+2P, ...); "
                   "repeatable, e.g. --reset layer1@every:17 --reset layer2@every:17+1.")
@click.option("--mismatch", default=None, metavar="SIGMA[:SEED]",
              help="BrainScaleS-2 only: emulate analog mismatch, a seeded per-neuron spread of "
                   "the analog parameters of SIGMA codes (standard deviation; 'profile': the "
                   "image's analog.fpn_sigma_codes); same seed, same chip instance; seed "
                   "default 0; 0 is the ideal chip.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write output spikes, counts, first-spike times and probes (.npz).")
@click.option("--stats", "stats_path", type=click.Path(dir_okay=False), default=None,
              help="Write counters, energy and chip time (.json).")
@plot_options
def emulate_cmd(image: str, input_path: str | None, ticks: int | None, batch: int | None,
                mode: str, probes: tuple[str, ...], strict: bool, overrun: str | None,
                reset_specs: tuple[str, ...], mismatch: str | None,
                output: str | None, stats_path: str | None, plot: str | None,
                plot_probe: tuple[str, ...], plot_sample: int, vcd: str | None) -> None:
    """Run a chip image on the emulator and print what came out."""
    import numpy as np

    import emulator
    from emulator.errors import InputError
    from emulator.runner import mismatch_chip, parse_resets

    chip = emulator.load(image)
    resets = parse_resets(reset_specs) if reset_specs else None
    if mismatch is not None:  # the chip instance itself, so that plots and traces see it too
        chip, info = mismatch_chip(chip, mismatch)
    if input_path is None and chip.inputs and ticks is None:
        raise InputError(f"{image} has input ports ({', '.join(p.name for p in chip.inputs)}); "
                         "pass --input x.npz, or --ticks T to run on silence")
    # --probe NAME.VAR (u, v, spikes) picks one signal for the VCD; the run records the whole
    # population. Populations only --plot-probe needs are probed too, and left out of -o.
    run_probes = list(dict.fromkeys(p.split(".", 1)[0] for p in probes))
    extra: list[str] = []
    if plot is not None or vcd is not None:
        from nmc.report.plots import probe_populations, require_matplotlib

        if plot is not None:
            require_matplotlib()
        extra = [p for p in probe_populations(chip, plot_probe, probes) if p not in run_probes]
    res = chip.run(input_path, ticks, batch=batch, mode=mode, probes=run_probes + extra,
                   strict=strict, overrun=overrun, resets=resets)
    st = res.stats
    c = st["counters"]
    click.echo(f"{chip.graph_name}: {res.batch} sample(s) x {res.ticks} ticks, {mode} mode")
    if mismatch is not None:
        st["mismatch"] = info
        click.echo(f"  analog mismatch: sigma {info['sigma_codes']:g} codes, seed {info['seed']}")
    if resets:
        click.echo("  host resets: " + " ".join(reset_specs))
    for name, arr in res.outputs.items():
        if name in res.counts:
            tot = res.counts[name].sum(axis=0)
            click.echo(f"  output {name}: {int(tot.sum())} spikes; per neuron (summed over "
                       f"samples) {np.array2string(tot, threshold=20)}")
        else:
            click.echo(f"  output {name}: values, final {np.array2string(arr[0, -1], threshold=20)}")
    click.echo(f"  synaptic ops {c['synaptic_ops']}, spikes {c['spikes']}, packets {c['packets']}, "
               f"hops {c['hops_ew']} E-W + {c['hops_ns']} N-S")
    e = st["energy"]
    click.echo(f"  energy {e['per_sample_joules']:.4g} J per sample; chip time "
               f"{st['chip_time']['seconds_per_sample']:.4g} s per sample")
    if any(c["overflows"].values()):
        click.echo("  overflows: " + ", ".join(f"{reg} {n}x" for reg, n in c["overflows"].items()
                                               if n))
    if mode == "cycle":
        noc = st["noc"]
        click.echo(f"  cycles {c['cycles']} (budget {noc['budget_cycles']} per tick), overruns "
                   f"{c['overruns']}, drops {c['drops']}")
        for o in noc["overrun_ticks"][:5]:
            links = ", ".join(f"({x['x']},{x['y']})->{x['direction']} {x['packets']} pkts "
                              f"{x['stalls']} stalls" for x in o["links"][:3])
            click.echo(f"    tick {o['tick']} sample {o['sample']}: {o['cycles']} cycles; {links}")
    if plot is not None or vcd is not None:
        from nmc.report.plots import write_traces

        for p in write_traces(res, chip, plot=plot, vcd=vcd, plot_probes=plot_probe,
                              probes=probes, sample=plot_sample):
            click.echo(f"wrote {p}")
        for name in extra:
            res.probes.pop(name, None)
    if output:
        res.save(output)
        click.echo(f"wrote {output}")
    if stats_path:
        write_json(stats_path, st)
        click.echo(f"wrote {stats_path}")


commands = [emulate_cmd]
