"""``nmc check MODEL``: read a model, verify it and print a short summary.

The work is in :func:`check_model`, which returns the summary as a dict; the command only prints
it. With ``--target``, the design-rule hook (:func:`nmc.passes.drc.design_rules`) maps the model for
that profile as far as it goes and lists *every* violation (rule, object, value, limit, hint); the
command then exits 1 when the model does not fit.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ir.graph import Graph
from nmc.commands.compile import collect_frontend_options, frontend_options
from nmc.resources import max_memory_option

DesignRules = Callable[[Graph, str], dict[str, Any]]
"""A design-rule check: ``(graph, target name or profile path) -> findings`` (JSON-like)."""


def design_rules(graph: Graph, target: str) -> dict[str, Any]:
    """Check ``graph`` against the design rules of ``target`` (see :mod:`nmc.passes.drc`)."""
    from nmc.passes.drc import design_rules as drc

    return drc(graph, target)


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
    frontend_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Load ``path`` with its frontend (which verifies the graph) and return the summary.

    With ``target``, also run the design-rule hook (``rules`` or :func:`design_rules`) and add
    its findings under ``"target"``.
    """
    from nmc.frontends import load_model

    graph = load_model(path, **(frontend_options or {}))
    _verify(graph, path)
    summary = summarize(graph, path)
    if target is not None:
        summary["target"] = (rules or design_rules)(graph, target)
    return summary


def _verify(graph: Graph, path: str | Path) -> None:
    """Verify the graph whatever its frontend: the .nmir reader parses without verifying (a graph
    may be saved mid-work), but ``nmc check`` promises a valid model."""
    from ir.errors import VerifyError
    from ir.verify import verify

    try:
        verify(graph)
    except VerifyError as e:
        raise VerifyError([f"{path}: {p}" for p in e.problems]) from None


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
@click.option("--target", "-t", default=None,
              help="Also map for this target profile and list every design-rule violation.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@frontend_options
@max_memory_option
def check_cmd(model: Path, target: str | None, as_json: bool, dt, reset) -> None:
    """Read MODEL (model.json, .nir, .net, .nmir), verify it and print a summary."""
    summary = check_model(model, target=target,
                          frontend_options=collect_frontend_options(dt, reset))
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        text = format_summary(summary)
        if "target" in summary:
            if not summary["target"]["fits"]:
                text = text.removesuffix("\nOK")  # the model is fine, the chip is not
            text += "\n" + format_target(summary["target"])
        click.echo(text)
    if "target" in summary and not summary["target"]["fits"]:
        raise SystemExit(1)


def format_target(t: dict[str, Any]) -> str:
    """The design-rule part of the summary."""
    head = f"target {t['target']}: "
    if t["fits"]:
        extra = ""
        if t.get("cores") is not None:
            c, chips = t["cores"], t.get("chips") or 1
            extra = (f" on {c} core{'s' if c != 1 else ''} (lower bound {t.get('lower_bound')}),"
                     f" {chips} chip{'s' if chips != 1 else ''}")
        return head + "fits" + extra
    n = len(t["violations"])
    return head + f"does not fit: {n} violation{'s' if n != 1 else ''}\n" + t["text"]


commands = [check_cmd]
