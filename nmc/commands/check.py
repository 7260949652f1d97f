"""``nmc check MODEL``: read a model, verify it and print a short summary.

The work is in :func:`check_model`, which returns the summary as a dict; the command only prints
it. Design-rule checks against a target profile plug in through :func:`design_rules` (not
implemented here): adding ``--target`` is one click option passed on to ``check_model``, which
calls the hook and puts its findings in ``summary["target"]``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ir.errors import TargetError
from ir.graph import Graph

DesignRules = Callable[[Graph, str], dict[str, Any]]
"""A design-rule check: ``(graph, target name or profile path) -> findings`` (JSON-like)."""


def design_rules(graph: Graph, target: str) -> dict[str, Any]:
    """Check ``graph`` against the design rules of ``target``: the hook for ``--target``.

    Not implemented yet; the target engineer replaces this function's body.
    """
    raise TargetError(
        f"design-rule checks against a target ({target}) are not available yet in nmc check"
    )


def summarize(graph: Graph, path: str | Path | None = None) -> dict[str, Any]:
    """The summary ``nmc check`` prints: :meth:`Graph.summary` plus the file and the training rule
    named in the provenance (if any)."""
    s: dict[str, Any] = {}
    if path is not None:
        s["file"] = str(path)
    s.update(graph.summary())
    prov = graph.attrs.get("provenance")
    if isinstance(prov, dict) and "rule" in prov:
        s["rule"] = prov["rule"]
    return s


def check_model(
    path: str | Path, *, target: str | None = None, rules: DesignRules | None = None,
) -> dict[str, Any]:
    """Load ``path`` with its frontend (which verifies the graph) and return the summary.

    With ``target``, also run the design-rule hook (``rules`` or :func:`design_rules`) and add
    its findings under ``"target"``.
    """
    from nmc.frontends import load_model

    graph = load_model(path)
    summary = summarize(graph, path)
    if target is not None:
        summary["target"] = (rules or design_rules)(graph, target)
    return summary


def _shape(shape: list[int]) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def format_summary(s: dict[str, Any]) -> str:
    """The human-readable summary: one ``key: value`` line each, aligned."""
    rows = [
        ("model", s["name"]),
        ("stage", s["stage"]),
        ("dt", f"{s['dt']!r} s"),
        ("inputs", ", ".join(f"{k} {_shape(v)}" for k, v in s["inputs"].items()) or "none"),
        ("outputs", ", ".join(f"{k} {_shape(v)}" for k, v in s["outputs"].items()) or "none"),
        ("populations", str(s["populations"])),
        ("neurons", str(s["neurons"])),
        ("connections", str(s["connections"])),
        ("synapses", str(s["synapses"])),
    ]
    if "rule" in s:
        rows.append(("rule", str(s["rule"])))
    width = max(len(k) for k, _ in rows) + 1
    lines = [f"{(k + ':').ljust(width)} {v}" for k, v in rows]
    return "\n".join(lines) + "\nOK"


@click.command("check")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def check_cmd(model: Path, as_json: bool) -> None:
    """Read MODEL (model.json, .nir, .net, .nmir), verify it and print a summary."""
    summary = check_model(model)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(format_summary(summary))


commands = [check_cmd]
