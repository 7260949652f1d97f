"""The compile report as Markdown (``nmc compile --report-md``) and as a short terminal summary.

Both print the dict of :func:`nmc.report.html.collect_report`, so they show the same numbers as
the HTML page. The Markdown uses GitHub-flavoured tables and has no figures (the per-core table
carries the mesh coordinates instead).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from nmc.report.html import rule_result, slices_text
from nmc.report.svg import fmt_num, si


def _md_table(header: list[str], rows: list[list[Any]], numeric: list[bool] | None = None) -> str:
    numeric = numeric or [False] * len(header)

    def cell(v: Any) -> str:
        t = v if isinstance(v, str) else fmt_num(v)
        return t.replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    out += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def render_markdown(data: dict[str, Any], max_cores: int = 64) -> str:
    """The whole report as Markdown text (sections in the order of the HTML page)."""
    s, u, e = data["summary"], data["utilization"], data["energy"]
    lines = [f"# {data['title']}", ""]
    lines += ["## Summary", "",
              _md_table(["", ""], [
                  ["model", s["model"]], ["target", f"{s['target']} (family {s['family']})"],
                  ["profile sha256", s["profile_sha256"]], ["stage", s["stage"]],
                  ["cores used", f"{s['cores_used']} (lower bound {s['lower_bound']}, "
                                 f"{s['lower_bound_resource']})"],
                  ["chips", s["chips_used"]], ["neurons", s["neurons"]],
                  ["synapses", s["synapses"]],
                  ["latency", ", ".join(f"{k} {v} ticks" for k, v in s["latency"].items()) or "-"],
                  ["compile time", si(s["compile_s"], "s")],
                  ["energy", f"{si(e['total_j'], 'J')} ({_energy_what(e)})"],
                  ["design rules", "fit" if s["fits"] else f"{s['violations']} violation(s)"],
                  ["image", f"{s['image_bytes']} bytes"], ["nmc", s["nmc_version"]],
              ]), ""]
    p = data["passes"]
    lines += ["## Passes", "", _md_table(
        ["pass", "time", "share", "decisions"],
        [[r["name"], si(r["seconds"], "s"), f"{100 * r['share']:.1f} %",
          ", ".join(f"{k} {fmt_num(v)}" for k, v in r["decisions"].items())] for r in p["rows"]]
        + [["total", si(p["total_s"], "s"), "100 %", ""]],
        [False, True, True, False]), ""]
    q = data["quantization"]
    lines += ["## Quantization", ""]
    if q is None:
        lines += ["No quantization report.", ""]
    else:
        from nmc.passes.quantize.report import CONNECTION_COLUMNS, POPULATION_COLUMNS

        lines += [("Scales from calibration data." if q.get("calibrated")
                   else "Scales from the weights alone (no calibration data)."), ""]
        for title, rows, cols in (("Connections", q.get("connections", []), CONNECTION_COLUMNS),
                                  ("Populations", q.get("populations", []), POPULATION_COLUMNS)):
            lines += [f"### {title}", ""]
            if not rows:
                lines += ["none", ""]
                continue
            used = [c for c in cols if any(c in r for r in rows)]
            lines += [_md_table(used, [[r.get(c, "-") if r.get(c) is not None else "-"
                                        for c in used] for r in rows],
                                [isinstance(rows[0].get(c), int | float) for c in used]), ""]
        lines += [f"note: {n}" for n in q.get("notes", [])]
        lines += [""]
    limits = u["limits"]
    res = list(u["peak"])
    lines += ["## Utilization", "",
              f"Cores used {u['cores_used']}, lower bound {u['lower_bound']} (set by "
              f"{u['lower_bound_resource']}), ratio {fmt_num(u.get('cores_over_bound'))}; "
              f"{u.get('chips_used')} chip(s).", "",
              _md_table(["resource", "limit per core", "peak core", "total", "fill"],
                        [[r, limits.get(r, "-"), u["peak"].get(r, "-"),
                          u["totals"].get(r, "-"),
                          f"{100 * u['fill'][r]:.1f} %" if r in u.get("fill", {}) else "-"]
                         for r in res], [False, True, True, True, True]), ""]
    rows = [[c["id"], c.get("chip", "-"), c.get("x", "-"), c.get("y", "-"),
             *[c.get(r, 0) for r in res], c["synapses"], slices_text(c["slices"])]
            for c in u["cores"][:max_cores]]
    lines += [_md_table(["core", "chip", "x", "y", *res, "synapses", "slices"], rows,
                        [True] * (len(res) + 5) + [False]), ""]
    if len(u["cores"]) > max_cores:
        lines += [f"... {len(u['cores']) - max_cores} more cores", ""]
    lk = data.get("links")
    lines += ["## Link loads", ""]
    if lk is None:
        lines += ["The graph is not placed.", ""]
    else:
        lines += [f"Estimated packets per tick (rates: {lk['rates']}); {lk['used']} link(s) used, "
                  f"busiest {fmt_num(lk['max_load'])}; hops per tick east-west "
                  f"{fmt_num(lk['hops_ew'])}, north-south {fmt_num(lk['hops_ns'])}.", ""]
        if lk["busiest"]:
            lines += [_md_table(["link", "packets/tick", "chip edge"],
                                [[f"{tuple(x['from'])} -> {tuple(x['to'])}", x["load"],
                                  "yes" if x["chip_edge"] else "no"] for x in lk["busiest"]],
                                [False, True, False]), ""]
    lines += ["## Energy", "", f"{_energy_what(e).capitalize()}: {e['basis']}.", ""]
    total = e["total_j"] or 0.0
    lines += [_md_table(
        ["term", "count", "coefficient", "energy", "share", "coefficient source"],
        [[c["label"], c.get("count_text") or fmt_num(c.get("count")),
          fmt_num(c.get("coefficient")), si(c["joules"], "J"),
          f"{100 * c['joules'] / total:.1f} %" if total else "-",
          c.get("coefficient_source") or "-"] for c in e["components"]]
        + [["total", "", "", si(total, "J"), "100 %" if total else "-", ""]],
        [False, True, True, True, True, False]), ""]
    r = data["drc"]
    lines += ["## Design rules", "",
              "All design rules hold." if r["fits"]
              else f"{len(r['violations'])} design-rule violation(s).", "",
              _md_table(["rule", "checked from stage", "result"],
                        [[x["rule"], x["stage"], rule_result(x)] for x in r["rules"]]), ""]
    lines += [f"- `{v['rule']}` {v['message']}" for v in r["violations"]]
    return "\n".join(lines).rstrip() + "\n"


def _energy_what(e: dict[str, Any]) -> str:
    if e["source"] == "emulation":
        return f"emulated, {e['samples']} sample(s) of {e['ticks']} ticks"
    return "estimate per tick"


def summary_text(data: dict[str, Any]) -> str:
    """A few lines for the terminal: fit, cores, time, energy, the fullest core, the busiest link."""
    s, e = data["summary"], data["energy"]
    lines = [
        f"report     {s['model']} on {s['target']}: "
        + ("fits" if s["fits"] else f"{s['violations']} design-rule violation(s)"),
        f"cores      {s['cores_used']} used (lower bound {s['lower_bound']}, set by "
        f"{s['lower_bound_resource']}), {s['chips_used']} chip(s)",
        f"passes     {si(s['compile_s'], 's')} ("
        + ", ".join(f"{r['name']} {si(r['seconds'], 's')}" for r in data["passes"]["rows"]) + ")",
    ]
    cells = data["mesh"]["cells"]
    if cells:
        c = max(cells, key=lambda c: (c["fill"], -c["id"]))
        lines.append(f"fullest    core {c['id']}: {c['resource']} {100 * c['fill']:.1f} % of its "
                     "limit")
    lk = data.get("links")
    if lk and lk["busiest"]:
        x = lk["busiest"][0]
        lines.append(f"busiest    link {tuple(x['from'])} -> {tuple(x['to'])}: {fmt_num(x['load'])} "
                     f"packets/tick (estimate, rates {lk['rates']})")
    if e["source"] == "emulation":
        lines.append(f"energy     {si(e['total_j'], 'J')} emulated ("
                     f"{si(e['total_j'] / max(1, e['samples']), 'J')} per sample)")
    else:
        lines.append(f"energy     {si(e['total_j'], 'J')} per tick (estimate"
                     + (f", {si(e['power_w'], 'W')}" if e.get("power_w") is not None else "")
                     + ")")
    q = data.get("quantization") or {}
    errs = [c.get("rel_error") for c in q.get("connections", []) if c.get("rel_error") is not None]
    if errs:
        lines.append(f"quantize   worst relative weight error {fmt_num(max(errs))} over "
                     f"{len(errs)} connection(s)")
    return "\n".join(lines)


def write_markdown(path: str | os.PathLike, data: dict[str, Any]) -> Path:
    """Write :func:`render_markdown` atomically; returns the path."""
    from nmc.fileio import atomic_write_text

    return atomic_write_text(Path(path), render_markdown(data))


__all__ = ["render_markdown", "summary_text", "write_markdown"]
