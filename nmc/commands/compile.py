"""``nmc compile``: a model file down to IR text or a chip image."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ir.errors import NmcError
from nmc.resources import check_compile, max_memory_option

FRONTEND_OPTIONS = [
    click.option("--dt", type=float, default=None,
                 help="Time step in seconds for formats that do not store one (NIR)."),
    click.option("--reset", type=click.Choice(["zero", "subtract"]), default=None,
                 help="Reset rule for formats that do not store one (NIR)."),
]


def frontend_options(fn):
    for opt in reversed(FRONTEND_OPTIONS):
        fn = opt(fn)
    return fn


def collect_frontend_options(dt: float | None, reset: str | None) -> dict:
    return {k: v for k, v in (("dt", dt), ("reset", reset)) if v is not None}


DEDICATED = ("calibration", "partition", "place", "seed")
"""Flow options that have a flag of their own (``--partition`` ...), not ``--option``."""

FLOW_OPTION = click.option(
    "--option", "flow_options", multiple=True, metavar="KEY=VALUE",
    help="A compile-flow option (repeatable), e.g. --option split_fanin=auto, "
         "--option axon_types=4, --option fanout=splitter; keys: nmc.passes.flow.OPTIONS.")


def parse_flow_options(items: tuple[str, ...] | list[str]) -> dict:
    """``("split_fanin=auto", "weight_bits=4")`` -> ``{"split_fanin": "auto", "weight_bits": 4}``
    (integers, floats and true/false are converted); NmcError naming a bad item."""
    from nmc.passes.flow import OPTIONS

    out: dict = {}
    allowed = sorted(k for k in OPTIONS if k not in DEDICATED)
    for item in items:
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise NmcError(f"--option {item!r}: expected KEY=VALUE, e.g. split_fanin=auto")
        if key in DEDICATED:
            raise NmcError(f"--option {item!r}: use --{key} for {key}")
        if key not in OPTIONS:
            raise NmcError(f"--option {item!r}: unknown key {key!r}; keys: {', '.join(allowed)}")
        if value.lower() in ("true", "false"):
            out[key] = value.lower() == "true"
            continue
        for conv in (int, float):
            try:
                out[key] = conv(value)
                break
            except ValueError:
                continue
        else:
            out[key] = value
    return out


def load_calibration(path: str | None):
    """Calibration inputs from an .npz (first array, or the one named 'spikes'/'x')."""
    if path is None:
        return None
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as z:
            key = next((k for k in ("spikes", "x", "inputs") if k in z.files), z.files[0])
            return np.asarray(z[key])
    except (OSError, ValueError, IndexError) as e:
        raise NmcError(f"{path}: cannot read calibration inputs ({e}); expected an .npz of arrays") from None


@click.command("compile")
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.option("--target", "-t", default=None,
              help="Target profile name (nmc targets) or path to a profile .toml.")
@click.option("--emit", type=click.Choice(["image", "nmir"]), default=None,
              help="What to write: the chip image (default with --target) or the IR as .nmir text.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Output file (default: MODEL's name with .nmb, or stdout for --emit nmir).")
@click.option("--print-after", multiple=True, metavar="PASS",
              help="Print the IR after this pass (repeatable).")
@click.option("--report-quant", is_flag=True, help="Print the quantization report.")
@click.option("--report-quant-json", type=click.Path(dir_okay=False), default=None,
              help="Write the quantization report as JSON.")
@click.option("--partition", type=click.Choice(["contiguous", "mincut"]), default="contiguous")
@click.option("--place", type=click.Choice(["greedy", "anneal"]), default="greedy")
@click.option("--calibration", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Sample inputs (.npz) for data-aware quantization.")
@click.option("--seed", type=int, default=0, help="Seed for randomised passes.")
@click.option("--report", "report_html", type=click.Path(dir_okay=False), default=None,
              help="Write the compile report as one self-contained HTML page (and print a "
                   "summary).")
@click.option("--report-md", type=click.Path(dir_okay=False), default=None,
              help="Write the compile report as Markdown.")
@click.option("--report-input", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Inputs (.npz, as for nmc run) to emulate for the report's energy section; "
                   "without, the energy is an estimate from expected spike rates.")
@FLOW_OPTION
@frontend_options
@max_memory_option
def compile_cmd(model, target, emit, output, print_after, report_quant, report_quant_json,
                partition, place, calibration, seed, report_html, report_md, report_input,
                flow_options, dt, reset):
    """Compile MODEL (model.json, .nir, .net or .nmir) for a target chip."""
    from nmc import api
    from nmc.fileio import atomic_write_text

    fe = collect_frontend_options(dt, reset)
    if target is None:
        if emit == "image":
            raise NmcError("--emit image needs --target (see `nmc targets`)")
        for flag, val in (("--report", report_html), ("--report-md", report_md),
                          ("--report-input", report_input)):
            if val is not None:
                raise NmcError(f"{flag} needs --target: the report describes the mapping onto "
                               "a chip (see `nmc targets`)")
        graph = api.load(model, **fe)
        from ir.text import print_graph

        text = print_graph(graph)
        if output:
            from ir.text import save

            save(graph, Path(output))
        else:
            click.echo(text, nl=False)
        return
    extra = parse_flow_options(flow_options)
    if report_input is not None and report_html is None and report_md is None:
        raise NmcError("--report-input is only used with --report or --report-md")
    cal = load_calibration(calibration)
    # Load first, so that the compile's memory is estimated from the graph before a pass runs.
    graph = api.load(model, **fe)
    check_compile(graph, where=str(model))
    compiled = api.compile(
        graph, target, partition=partition, place=place, calibration=cal,
        seed=seed, print_after=tuple(print_after), frontend_options=fe, options=extra,
    )
    for name, text in compiled.dumps.items():
        click.echo(f"# ---- IR after {name} ----", err=True)
        click.echo(text, err=True, nl=False)
    if report_quant and compiled.quant_report is not None:
        click.echo(compiled.quant_report.to_table())
    if report_quant_json and compiled.quant_report is not None:
        atomic_write_text(report_quant_json, json.dumps(compiled.quant_report.to_json(), indent=2))
    if emit == "nmir":
        from ir.text import print_graph, save

        if output:
            save(compiled.graph, Path(output))
        else:
            click.echo(print_graph(compiled.graph), nl=False)
        # The IR went to stdout: the report summary goes to stderr so that the IR stays clean.
        write_reports(compiled, report_html, report_md, report_input, cal, err=not output)
        return
    out = Path(output) if output else Path(model).with_suffix(".nmb")
    compiled.save(out)
    u = compiled.utilization
    tot = u.get("totals", {})
    click.echo(
        f"wrote {out} ({len(compiled.image)} bytes): target {compiled.profile.name}, "
        f"{u.get('cores_used', '?')} cores, {u.get('neurons', tot.get('neurons', '?'))} neurons, "
        f"{u.get('synapses', tot.get('synapses', '?'))} synapses"
    )
    write_reports(compiled, report_html, report_md, report_input, cal)


def write_reports(compiled, html_path: str | None, md_path: str | None, input_path: str | None,
                  calibration=None, err: bool = False) -> dict | None:
    """``--report``/``--report-md``: collect the report once, write the pages (atomically) and
    print the short summary. Returns the collected data (None when no report was asked for)."""
    if html_path is None and md_path is None:
        return None
    from nmc.report.html import collect_report, write_html
    from nmc.report.markdown import summary_text, write_markdown

    inputs = labels = None
    if input_path is not None:
        from nmc.commands.run import read_inputs

        inputs, labels = read_inputs(input_path)
    data = collect_report(compiled, inputs=inputs, labels=labels, calibration=calibration)
    if html_path is not None:
        write_html(html_path, data)
    if md_path is not None:
        write_markdown(md_path, data)
    click.echo(summary_text(data), err=err)
    for p in (html_path, md_path):
        if p is not None:
            click.echo(f"wrote report {p}", err=err)
    return data


commands = [compile_cmd]
