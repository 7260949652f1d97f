"""``nmc sweep``: compile and evaluate variants of a model, one table row each."""

from __future__ import annotations

import json
from pathlib import Path

import click

from nmc.commands.run import read_inputs


@click.command("sweep")
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.option("--target", "-t", "targets", required=True,
              help="Comma-separated target profiles, e.g. loihi,truenorth.")
@click.option("--set", "sets", multiple=True, metavar="KEY=V1,V2",
              help="A setting and its values (partition, place, seed, quantize.<option>).")
@click.option("--input", "input_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--limit", type=int, default=None, help="Use only the first N samples.")
@click.option("--workers", type=int, default=None, help="Start a local Dask cluster of N workers.")
@click.option("--scheduler", default=None, help="Use an existing Dask scheduler (tcp://host:port).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write the table (.md, .json or .csv).")
def sweep_cmd(model, targets, sets, input_path, limit, workers, scheduler, output):
    """Compile MODEL for every target x setting combination and evaluate each on the inputs."""
    from nmc.fileio import atomic_write_text
    from nmc.sweep import parse_settings, sweep, to_markdown

    x, labels = read_inputs(input_path)
    if limit is not None:
        x = x[:limit]
        labels = None if labels is None else labels[:limit]
    rows = sweep(model, [t.strip() for t in targets.split(",") if t.strip()],
                 parse_settings(list(sets)), x, labels, workers=workers, scheduler=scheduler)
    table = to_markdown(rows)
    click.echo(table, nl=False)
    if output:
        p = Path(output)
        if p.suffix == ".json":
            atomic_write_text(p, json.dumps(rows, indent=2))
        elif p.suffix == ".csv":
            cols = list(dict.fromkeys(k for r in rows for k in r))
            lines = [",".join(cols)] + [",".join("" if r.get(c) is None else str(r.get(c))
                                                 for c in cols) for r in rows]
            atomic_write_text(p, "\n".join(lines) + "\n")
        else:
            atomic_write_text(p, table)
    if any("error" in r for r in rows):
        raise SystemExit(1)


commands = [sweep_cmd]
