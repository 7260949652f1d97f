"""The compile report: one self-contained HTML page (inline SVG, inline CSS, no script, no network).

Two steps, so that the HTML page, the Markdown page and the terminal summary show the same numbers:

1. :func:`collect_report` gathers a JSON-compatible dict from a :class:`nmc.api.Compiled`:
   per-pass times and decisions, the quantization report, the utilization table, the per-core
   fill on the mesh, the estimated link loads, the energy breakdown and the design-rule results.
2. :func:`render_html` (here) and :func:`nmc.report.markdown.render_markdown` /
   :func:`nmc.report.markdown.summary_text` print it.

Energy. With sample inputs the chip image is emulated and the breakdown is the emulator's
(``source == "emulation"``). Without, it is an *estimate* (``source == "estimate"``) of the energy
per tick from expected spike rates (:func:`estimate_energy`): measured by the integer reference
interpreter on calibration inputs when given, otherwise a uniform default rate. The page says
which.

Link loads are always the mapping passes' estimate (expected packets per tick per directed link,
dimension-ordered routes, ``nmc.passes.route.link_loads``) from the same rates.

The page embeds the collected dict as ``<script type="application/json" id="report-data">`` (data,
not code) so that tools can read the numbers back.
"""

from __future__ import annotations

import json
import math
import os
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from ir.errors import NmcError
from nmc.report import svg

SECTIONS = (
    ("summary", "Summary"),
    ("passes", "Passes"),
    ("quantization", "Quantization"),
    ("utilization", "Utilization"),
    ("mesh", "Core utilization on the mesh"),
    ("links", "Link loads"),
    ("energy", "Energy"),
    ("drc", "Design rules"),
)
"""Section ids of the HTML page (``<section id=...>``) and their headings, in page order."""

ENERGY_TERMS = (
    ("sop", "synaptic ops", "energy.sop"),
    ("spike", "spikes", "energy.spike"),
    ("update_active", "active neuron updates", "energy.update_active"),
    ("update_idle", "idle neuron updates", "energy.update_idle"),
    ("hop_ew", "east-west hops", "energy.hop_ew"),
    ("hop_ns", "north-south hops", "energy.hop_ns"),
    ("static", "static power", "energy.static_watts"),
)
"""The terms of ``E = N_sop e_sop + N_spike e_spike + N_update e_update + sum(hops e_hop) +
P_static T`` (hardware.md 4.5): key, label, profile key of the coefficient."""


# ------------------------------------------------------------------------------------------
# Collecting
# ------------------------------------------------------------------------------------------
def _jsonable(x: Any) -> Any:
    """Plain JSON values (numpy scalars/arrays -> Python; floats rounded to 9 significant)."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, bool | np.bool_):
        return bool(x)
    if isinstance(x, int | np.integer):
        return int(x)
    if isinstance(x, float | np.floating):
        f = float(x)
        return float(f"{f:.9g}") if math.isfinite(f) else None
    if x is None or isinstance(x, str):
        return x
    return str(x)


def _scalar_decisions(d: Any, limit: int = 6) -> dict[str, Any]:
    """The scalar entries of a pass's recorded decisions (the short ones, for a table cell)."""
    if not isinstance(d, dict):
        return {}
    out = {}
    for k, v in d.items():
        if isinstance(v, bool | int | float | str) and len(str(v)) <= 40:
            out[k] = v
        if len(out) >= limit:
            break
    return out


def _passes(compiled: Any) -> dict[str, Any]:
    decisions = compiled.graph.attrs.get("passes", {}) or {}
    rows = []
    total = float(sum(compiled.timings.values())) if compiled.timings else 0.0
    for key, sec in compiled.timings.items():
        name = key.split("#", 1)[0]
        rows.append({"name": key, "seconds": float(sec),
                     "share": (float(sec) / total) if total > 0 else 0.0,
                     "decisions": _scalar_decisions(decisions.get(name))})
    return {"rows": rows, "total_s": total}


def _quant(compiled: Any) -> dict[str, Any] | None:
    qr = compiled.quant_report
    if qr is None:
        from nmc.passes.quantize.report import QuantReport

        qr = QuantReport.from_graph(compiled.graph)
    return qr.to_json() if hasattr(qr, "to_json") else dict(qr)


def _mesh(util: dict[str, Any], profile: Any) -> dict[str, Any]:
    """Per-core fill (the highest fraction of any per-core limit) at global mesh coordinates."""
    mx, my = int(profile.get("chip.mesh_x")), int(profile.get("chip.mesh_y"))
    rows = util["cores"]
    limits = util["limits"]
    placed = all(k in r for r in rows for k in ("chip", "x", "y"))
    chips = (max((int(r["chip"]) for r in rows), default=0) + 1) if placed else 1
    cells = []
    for r in rows:
        fr = {k: r[k] / limits[k] for k in limits if k in r and limits[k]}
        worst = max(fr, key=lambda k: (fr[k], k)) if fr else None
        cell = {"id": r["id"], "fill": fr[worst] if worst else 0.0, "resource": worst,
                "fractions": fr, "slices": r.get("slices", [])}
        if placed:
            cell.update(chip=int(r["chip"]), x=int(r["x"]), y=int(r["y"]),
                        gx=int(r["chip"]) * mx + int(r["x"]), gy=int(r["y"]))
        cells.append(cell)
    return {"placed": placed, "mesh_x": mx, "mesh_y": my, "chips": chips,
            "width": mx * chips, "height": my, "cells": cells}


def _links(compiled: Any, calibration: Any, default_rate: float,
           rates_label: str | None = None) -> dict[str, Any] | None:
    """Expected packets per tick on every directed link (the route pass's model)."""
    from ir.graph import Stage

    g = compiled.graph
    if g.stage.order < Stage.PLACED.order:
        return None
    from nmc.passes.place import core_traffic, placed_slots
    from nmc.passes.route import link_loads, link_table

    mesh, slots = placed_slots(g, compiled.profile)
    traffic = core_traffic(g, calibration, default_rate)
    loads = link_loads(mesh, slots, traffic)
    table = link_table(mesh, loads)
    return {
        "width": mesh.mx * mesh.chips, "height": mesh.my, "mesh_x": mesh.mx, "chips": mesh.chips,
        "rates": rates_label or ("calibration" if calibration is not None
                                 else f"uniform {default_rate}"),
        **{k: np.round(v, 6).tolist() for k, v in loads.items()},
        "hops_ew": float(loads["east"].sum() + loads["west"].sum()),
        "hops_ns": float(loads["north"].sum() + loads["south"].sum()),
        "used": len(table), "max_load": table[0]["load"] if table else 0.0,
        "busiest": table[:10],
    }


def estimate_energy(graph: Any, profile: Any, calibration: Any = None,
                    default_rate: float = 0.05, links: dict[str, Any] | None = None
                    ) -> dict[str, Any]:
    """Expected energy per tick of a mapped graph from expected spike rates (no emulation).

    Event counts per tick, with ``r_k`` the expected spikes per tick of neuron ``k``
    (:func:`nmc.passes.cost.neuron_rates`: calibration inputs through the integer reference
    interpreter, else ``default_rate`` for every neuron and input):

    * spikes: ``sum_k r_k`` over the chip's spiking neurons;
    * synaptic ops: ``sum over synapses of r_source`` (one op per stored synapse per spike);
    * neuron updates: every neuron every tick; a neuron counts as *active* with probability
      ``1 - exp(-lambda)``, ``lambda`` its expected incoming events per tick (Poisson), else idle;
    * hops: east-west and north-south packet-hops from the link loads (host input not counted);
    * static: ``energy.static_watts`` per chip times the tick period.

    Coefficients and their source tags come from the profile. Returns ``{"source": "estimate",
    "basis", "per": "tick", "ticks": 1, "components": [...], "total_j", "power_w"}``.
    """
    from nmc.passes.cost import network, neuron_rates

    net = network(graph)
    rates = neuron_rates(graph, calibration, default_rate)
    spiking = [p for p, node in net.pops.items() if getattr(node, "spiking", True)]
    n_spikes = float(sum(float(np.sum(rates[p])) for p in spiking))
    sops = 0.0
    incoming = {p: np.zeros(n) for p, n in net.sizes.items()}
    for syn in net.conns.values():
        if syn.nnz == 0:
            continue
        src = rates.get(syn.source)
        if src is None:
            continue
        per_syn = src[syn.cols // max(1, syn.copies)]
        lam = np.bincount(syn.row_of_entry(), weights=per_syn, minlength=syn.n_out)
        for t in syn.targets:
            sops += float(per_syn.sum())
            incoming[t][: lam.size] += lam[: incoming[t].size]
    n_neurons = float(sum(net.sizes.values()))
    active = float(sum(float(np.sum(1.0 - np.exp(-lam))) for lam in incoming.values()))
    tick = float(profile.get("chip.tick_seconds"))
    chips = int(links["chips"]) if links else 1
    counts = {
        "sop": sops, "spike": n_spikes, "update_active": active,
        "update_idle": max(0.0, n_neurons - active),
        "hop_ew": float(links["hops_ew"]) if links else 0.0,
        "hop_ns": float(links["hops_ns"]) if links else 0.0,
        "static": chips * tick,  # chip-seconds: times static_watts gives joules
    }
    comps = []
    for key, label, pkey in ENERGY_TERMS:
        coef = float(profile.get(pkey, 0.0) or 0.0)
        comps.append({"name": key, "label": label, "count": counts[key], "coefficient": coef,
                      "coefficient_key": pkey, "coefficient_source": _source(profile, pkey),
                      "joules": counts[key] * coef,
                      "count_unit": "chip-seconds" if key == "static" else "events"})
        if key == "static":
            comps[-1]["count_text"] = f"{svg.si(tick, 's')} x {chips} chip(s)"
    total = float(sum(c["joules"] for c in comps))
    basis = ("spike rates measured by the integer reference interpreter on the calibration "
             "inputs" if calibration is not None else
             f"a uniform assumed rate of {default_rate} spikes per neuron per tick (no inputs "
             "given: pass --calibration or --report-input for measured rates)")
    return {"source": "estimate", "basis": basis, "per": "tick", "ticks": 1, "samples": 1,
            "components": comps, "total_j": total, "tick_seconds": tick,
            "power_w": total / tick if tick > 0 else None}


def _source(profile: Any, key: str) -> str:
    try:
        return str(profile.source(key))
    except Exception:  # a profile without a tag for this key (only possible for derived keys)
        return "-"


RUNNER_TERMS = {"synaptic_ops": "sop", "spikes": "spike", "updates_active": "update_active",
                "updates_idle": "update_idle", "hops_ew": "hop_ew", "hops_ns": "hop_ns",
                "static": "static"}
"""The emulator's energy term and counter names (``emulator.runner``) -> :data:`ENERGY_TERMS` keys."""


def _emulated_energy(compiled: Any, inputs: Any, ticks: int | None, mode: str,
                     labels: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the image on ``inputs`` (``emulator.runner.run``); return (energy, emulation summary).

    The breakdown is the runner's ``stats["energy"]``: ``terms_joules`` per counter and
    ``coefficients[profile key] = {"value", "source"}`` as written into the image."""
    from nmc.api import readout

    chip = compiled.chip()
    res = chip.run(inputs, ticks, mode=mode)
    stats = dict(res.stats)
    e = dict(stats.get("energy") or {})
    counters = dict(stats.get("counters") or {})
    coefs = e.get("coefficients") or {}
    terms = e.get("terms_joules") or {}
    B, T = int(res.batch), int(res.ticks)
    chip_time = dict(stats.get("chip_time") or {})
    seconds = float(chip_time.get("seconds_per_sample", T * float(
        compiled.profile.get("chip.tick_seconds"))))
    by_key = {k: (label, pkey) for k, label, pkey in ENERGY_TERMS}
    comps = []
    for name, joules in terms.items():
        key = RUNNER_TERMS.get(name, name)
        label, pkey = by_key.get(key, (name.replace("_", " "), f"energy.{key}"))
        coef = coefs.get(pkey) or {}
        count = (seconds * int(getattr(chip, "n_chips", 1)) * B if key == "static"
                 else counters.get(name))
        comps.append({"name": key, "label": label, "joules": float(joules), "count": count,
                      "count_unit": "chip-seconds" if key == "static" else "events",
                      "coefficient": coef.get("value"), "coefficient_key": pkey,
                      "coefficient_source": coef.get("source") or _source(compiled.profile, pkey)})
        if key == "static":
            comps[-1]["count_text"] = (f"{svg.si(seconds, 's')} x {int(getattr(chip, 'n_chips', 1))}"
                                       f" chip(s) x {B} sample(s)")
    order = {k: i for i, (k, _, _) in enumerate(ENERGY_TERMS)}
    comps.sort(key=lambda c: order.get(c["name"], len(order)))
    total = float(e.get("total_joules", sum(c["joules"] for c in comps)))
    energy = {"source": "emulation",
              "basis": f"emulated the chip image on {B} sample(s) of {T} ticks ({mode} mode)",
              "per": "run", "ticks": T, "samples": B, "components": comps, "total_j": total,
              "formula": e.get("formula"),
              "tick_seconds": chip_time.get("tick_seconds",
                                            compiled.profile.get("chip.tick_seconds")),
              "power_w": total / (B * seconds) if B and seconds > 0 else None}
    accuracy = None
    if labels is not None and res.counts:
        first = next(iter(res.counts.values()))
        accuracy = float((readout(first) == np.asarray(labels)).mean())
    noc = stats.get("noc") or {}
    emu = {"samples": B, "ticks": T, "mode": mode, "accuracy": accuracy,
           "chip_time_s": seconds,
           "stretched_s": noc.get("stretched_seconds_per_sample"),
           "overruns": counters.get("overruns"),
           "counters": {k: v for k, v in counters.items() if isinstance(v, int | float)},
           "output_counts": {k: np.asarray(v).sum(axis=0).tolist() for k, v in res.counts.items()}}
    return energy, emu


def _drc(compiled: Any) -> dict[str, Any]:
    """Every registered design rule with its violation count on the compiled graph."""
    from nmc.passes import drc

    found = drc.check_design(compiled.graph, compiled.profile)
    # The registry is private to drc; the names are what the report lists (rules without a
    # violation are shown as passed, so the reader sees what was checked).
    registered = [(name, stage.value) for name, stage, _ in getattr(drc, "_CHECKERS", [])]
    families = {"loihi", "truenorth", "brainscales2"}
    rows = []
    for name, stage in registered:
        hits = [v for v in found if v.rule == name or v.rule.startswith(name + ".")]
        root = name.split(".", 1)[0]
        # A rule named after another family (truenorth.fanout on a Loihi target) does not apply.
        applies = root not in families or root == compiled.profile.family
        rows.append({"rule": name, "stage": stage, "violations": len(hits), "applies": applies})
    known = {r["rule"] for r in rows}
    for v in found:  # a violation of a rule family not in the registry list
        root = v.rule.split(".", 1)[0]
        if v.rule not in known and root not in known:
            rows.append({"rule": v.rule, "stage": "-", "violations": 1, "applies": True})
            known.add(v.rule)
    return {"fits": not found, "rules": rows,
            "violations": [dict(v.to_json(), message=v.message(compiled.profile.name))
                           for v in found]}


def collect_report(compiled: Any, *, inputs: Any = None, labels: Any = None,
                   ticks: int | None = None, mode: str = "fast", calibration: Any = None,
                   default_rate: float = 0.05, title: str | None = None) -> dict[str, Any]:
    """Everything the report shows, as a JSON-compatible dict (see the module doc).

    ``compiled``: a :class:`nmc.api.Compiled`. ``inputs`` (``(B, T, n)`` spikes or a dict by
    input): emulate them for the energy section. ``calibration``: inputs whose spike rates (via
    the reference interpreter) drive the estimates of link loads (``inputs`` when no
    calibration is given) and, without ``inputs``, of energy.
    """
    import nmc

    g, prof = compiled.graph, compiled.profile
    util = compiled.utilization
    if not util:
        from nmc.passes.utilization import utilization

        util = utilization(g, prof)
    # Link loads (and the energy estimate) use measured rates when any inputs are at hand.
    rate_inputs = calibration if calibration is not None else inputs
    links = _links(compiled, rate_inputs, default_rate,
                   None if calibration is not None or inputs is None
                   else "measured on the report inputs")
    emulation = None
    if inputs is not None:
        energy, emulation = _emulated_energy(compiled, inputs, ticks, mode, labels)
    else:
        energy = estimate_energy(g, prof, calibration, default_rate, links)
    passes = _passes(compiled)
    drc_ = _drc(compiled)
    mapping = g.mapping or {}
    data = {
        "format": "nmc-compile-report", "version": 1,
        "title": title or f"nmc compile report: {g.name} on {prof.name}",
        "summary": {
            "model": g.name, "target": prof.name, "family": prof.family,
            "profile_path": str(getattr(prof, "path", "")),
            "profile_sha256": getattr(prof, "sha256", ""), "nmc_version": nmc.__version__,
            "stage": g.stage.value, "dt": g.dt, "image_bytes": len(compiled.image),
            "inputs": {n.name: list(n.shape) for n in g.inputs},
            "outputs": {n.name: list(n.shape) for n in g.outputs},
            "cores_used": util.get("cores_used"), "lower_bound": util.get("lower_bound"),
            "lower_bound_resource": util.get("lower_bound_resource"),
            "chips_used": util.get("chips_used"),
            "neurons": util.get("totals", {}).get("neurons"),
            "synapses": util.get("totals", {}).get("synapses"),
            "latency": mapping.get("latency", {}), "extra_latency": mapping.get("extra_latency", {}),
            "strategy": mapping.get("strategy", {}),
            "compile_s": passes["total_s"], "energy_total_j": energy["total_j"],
            "energy_source": energy["source"], "fits": drc_["fits"],
            "violations": len(drc_["violations"]),
        },
        "passes": passes,
        "quantization": _quant(compiled),
        "utilization": util,
        "mesh": _mesh(util, prof),
        "links": links,
        "energy": energy,
        "emulation": emulation,
        "drc": drc_,
    }
    return _jsonable(data)


# ------------------------------------------------------------------------------------------
# Rendering
# ------------------------------------------------------------------------------------------
CSS = """
:root{--ink:#1d2330;--muted:#5b6372;--line:#d9dde3;--accent:#c8553d;--bg:#fbfbfc}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);
 font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif}
header{background:#1d2330;color:#fff;padding:18px 28px}
header h1{margin:0;font-size:21px;font-weight:600}
header p{margin:4px 0 0;color:#c9cfd9;font-size:13px}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid var(--line);padding:8px 28px;
 z-index:1;font-size:13px}
nav a{color:var(--ink);text-decoration:none;margin-right:14px}
nav a:hover{color:var(--accent)}
main{max-width:1100px;padding:8px 28px 40px}
section{background:#fff;border:1px solid var(--line);border-radius:6px;padding:14px 18px;
 margin:16px 0}
h2{font-size:17px;margin:0 0 8px}
h3{font-size:14px;margin:14px 0 6px;color:var(--muted)}
p.note{color:var(--muted);margin:4px 0 10px;font-size:13px}
table{border-collapse:collapse;margin:6px 0 10px;font-size:12.5px}
th,td{border-bottom:1px solid var(--line);padding:3px 9px;text-align:left;vertical-align:top}
th{background:#f1f3f6;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.kv td:first-child{color:var(--muted);padding-right:18px}
tr.total td{font-weight:600;border-top:2px solid #aab}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:6px 0 4px}
.card{border:1px solid var(--line);border-radius:6px;padding:8px 12px;min-width:140px}
.card b{display:block;font-size:18px}
.card span{color:var(--muted);font-size:12px}
.ok{color:#1a7f37;font-weight:600}.bad{color:#b3261e;font-weight:600}
.scroll{overflow-x:auto}
table.wide td{white-space:nowrap}
svg{display:block;margin:6px 0}
code{background:#f1f3f6;padding:0 3px;border-radius:3px}
"""


def _card(value: str, label: str) -> str:
    return f'<div class="card"><b>{escape(value)}</b><span>{escape(label)}</span></div>'


def _section(sid: str, body: str) -> str:
    title = dict(SECTIONS)[sid]
    return f'<section id="{sid}"><h2>{escape(title)}</h2>{body}</section>'


def _summary_html(d: dict[str, Any]) -> str:
    s = d["summary"]
    e = d["energy"]
    cards = [
        _card(f"{s['cores_used']}", f"cores used (lower bound {s['lower_bound']})"),
        _card(f"{s['chips_used']}", "chips"),
        _card(svg.fmt_num(s["neurons"]), "neurons"),
        _card(svg.fmt_num(s["synapses"]), "synapses"),
        _card(svg.si(s["compile_s"], "s"), "compile time (passes)"),
        _card(svg.si(e["total_j"], "J"), _energy_label(e)),
        _card("fits" if s["fits"] else f"{s['violations']} violation(s)", "design rules"),
    ]
    lat = ", ".join(f"{k} {v} ticks" for k, v in (s.get("latency") or {}).items()) or "-"
    rows = [
        ("model", s["model"]), ("target", f"{s['target']} (family {s['family']})"),
        ("profile", f"{s['profile_path']} (sha256 {s['profile_sha256'][:16]}...)"),
        ("stage", s["stage"]), ("dt", f"{s['dt']} s"),
        ("inputs", ", ".join(f"{k} {v}" for k, v in s["inputs"].items()) or "-"),
        ("outputs", ", ".join(f"{k} {v}" for k, v in s["outputs"].items()) or "-"),
        ("strategy", ", ".join(f"{k} {v}" for k, v in (s.get("strategy") or {}).items()) or "-"),
        ("latency", lat), ("image", f"{s['image_bytes']} bytes"),
        ("nmc", s["nmc_version"]),
    ]
    return ('<div class="cards">' + "".join(cards) + "</div>"
            + svg.table(None, [list(r) for r in rows], numeric=[False, False], cls="kv"))


def _energy_label(e: dict[str, Any]) -> str:
    if e["source"] == "emulation":
        return f"energy of the emulated run ({e['samples']} sample(s))"
    return "energy per tick (estimate)"


def _passes_html(d: dict[str, Any]) -> str:
    p = d["passes"]
    if not p["rows"]:
        return '<p class="note">No pass timings recorded.</p>'
    chart = svg.bar_chart([(r["name"], r["seconds"]) for r in p["rows"]],
                          value_text=[svg.si(r["seconds"], "s") for r in p["rows"]])
    rows, raw = [], []
    for r in p["rows"]:
        dec = ", ".join(f"{k} {svg.fmt_num(v)}" for k, v in r["decisions"].items())
        rows.append([r["name"], svg.si(r["seconds"], "s"), f"{100 * r['share']:.1f} %", dec])
        raw.append([None, r["seconds"], r["share"], None])
    rows.append(["total", svg.si(p["total_s"], "s"), "100 %", ""])
    raw.append([None, p["total_s"], 1.0, None])
    return (chart + svg.table(["pass", "time", "share", "decisions"], rows,
                              numeric=[False, True, True, False],
                              row_keys=[r["name"] for r in p["rows"]] + ["total"], raw=raw))


def _quant_html(d: dict[str, Any]) -> str:
    q = d["quantization"]
    if q is None:
        return '<p class="note">No quantization report.</p>'
    from nmc.passes.quantize.report import CONNECTION_COLUMNS, POPULATION_COLUMNS

    out = [f'<p class="note">Target {escape(str(q.get("target") or "?"))}, family '
           f'{escape(str(q.get("family") or "?"))}; '
           + ("scales from calibration data." if q.get("calibrated")
              else "scales from the weights alone (no calibration data).") + "</p>"]
    for title, rows, cols in (("connections", q.get("connections", []), CONNECTION_COLUMNS),
                              ("populations", q.get("populations", []), POPULATION_COLUMNS)):
        out.append(f"<h3>{title}</h3>")
        if not rows:
            out.append('<p class="note">none</p>')
            continue
        used = [c for c in cols if any(c in r for r in rows)]
        used += sorted({k for r in rows for k in r} - set(used) - {"name"})
        body = [[r.get(c) if r.get(c) is not None else "-" for c in used] for r in rows]
        raw = [[r.get(c) if isinstance(r.get(c), int | float) else None for c in used]
               for r in rows]
        out.append('<div class="scroll">' + svg.table(
            used, body, numeric=[isinstance(rows[0].get(c), int | float) for c in used],
            row_keys=[str(r.get("name")) for r in rows], raw=raw) + "</div>")
        if title == "connections" and any("rel_error" in r for r in rows):
            out.append(svg.bar_chart([(r["name"], float(r.get("rel_error") or 0.0))
                                      for r in rows],
                                     title="relative weight error ||Wq/s - W|| / ||W||"))
    for n in q.get("notes", []):
        out.append(f'<p class="note">note: {escape(str(n))}</p>')
    return "".join(out)


def _pct(v: float, lim: float | None) -> str:
    return f"{svg.fmt_num(v)} ({100 * v / lim:.0f} %)" if lim else svg.fmt_num(v)


def slices_text(slices: list[str], shown: int = 4) -> str:
    """The first ``shown`` slices of a core and how many there are in all (a mincut core can
    hold hundreds)."""
    if len(slices) <= shown:
        return ", ".join(slices)
    return ", ".join(slices[:shown]) + f", ... ({len(slices)} slices)"


def _util_html(d: dict[str, Any], max_rows: int = 256) -> str:
    u = d["utilization"]
    limits = u["limits"]
    res = list(u["peak"])
    out = [f'<p class="note">Cores used <b>{u["cores_used"]}</b> against a lower bound of '
           f'<b>{u["lower_bound"]}</b> (set by {escape(str(u["lower_bound_resource"]))}; ratio '
           f'{svg.fmt_num(u.get("cores_over_bound"))}); {u.get("chips_used")} chip(s) of '
           f'{u["cores_per_chip"]} cores.</p>']
    # Totals against the capacity of the cores used.
    trow, traw = [], []
    for r in res:
        tot = u["totals"].get(r)
        cap = limits.get(r, 0) * u["cores_used"] if r in u["totals"] else None
        trow.append([r, limits.get(r, "-"), u["peak"].get(r, "-"),
                     "-" if tot is None else tot, "-" if cap is None else cap,
                     f"{100 * u['fill'][r]:.1f} %" if r in u.get("fill", {}) else "-"])
        traw.append([None, limits.get(r), u["peak"].get(r), tot, cap, u.get("fill", {}).get(r)])
    for r in ("synapses", "memory_bits"):
        trow.append([r, "-", "-", u["totals"].get(r, "-"), "-", "-"])
        traw.append([None, None, None, u["totals"].get(r), None, None])
    out.append("<h3>totals against the limits</h3>")
    out.append(svg.table(["resource", "limit per core", "peak core", "total", "capacity of used "
                          "cores", "fill"], trow, numeric=[False] + [True] * 5,
                         row_keys=[t[0] for t in trow], raw=traw))
    out.append("<h3>per core</h3>")
    head = ["core", "chip", "x", "y", *res, "synapses", "slices"]
    rows, raw, keys = [], [], []
    for c in u["cores"][:max_rows]:
        rows.append([c["id"], c.get("chip", "-"), c.get("x", "-"), c.get("y", "-"),
                     *[_pct(c.get(r, 0), limits.get(r)) for r in res], c["synapses"],
                     slices_text(c["slices"])])
        raw.append([c["id"], c.get("chip"), c.get("x"), c.get("y"), *[c.get(r) for r in res],
                    c["synapses"], None])
        keys.append(f"core{c['id']}")
    out.append('<div class="scroll">' + svg.table(
        head, rows, numeric=[True] * (len(head) - 1) + [False], row_keys=keys, raw=raw,
        cls="wide")
        + "</div>")
    if len(u["cores"]) > max_rows:
        out.append(f'<p class="note">... {len(u["cores"]) - max_rows} more cores not listed '
                   "(all are on the mesh heatmap).</p>")
    return "".join(out)


def _mesh_html(d: dict[str, Any]) -> str:
    m = d["mesh"]
    if not m["placed"]:
        return '<p class="note">The graph is not placed: no mesh coordinates.</p>'
    W, H = m["width"], m["height"]
    vals = np.full((H, W), np.nan)
    tips: list[list[str | None]] = [[None] * W for _ in range(H)]
    labels: list[list[str | None]] = [[None] * W for _ in range(H)]
    for c in m["cells"]:
        vals[c["gy"], c["gx"]] = c["fill"]
        fr = ", ".join(f"{k} {100 * v:.0f}%" for k, v in c["fractions"].items())
        sl = ", ".join(c["slices"][:4]) + (" ..." if len(c["slices"]) > 4 else "")
        tips[c["gy"]][c["gx"]] = (f"core {c['id']} at chip {c['chip']} ({c['x']}, {c['y']}): "
                                  f"{sl}; {fr}")
        labels[c["gy"]][c["gx"]] = str(c["id"])
    note = (f'<p class="note">Each square is a core slot at global coordinates (chip x '
            f'{m["mesh_x"]} + x, y), north up; {m["chips"]} chip(s) side by side along x. Colour: '
            "the highest fraction of any per-core limit the core uses (hover for every "
            "resource); grey: empty slot; the number is the core id.</p>")
    fig = svg.heatmap(vals, vmax=1.0, unit="", tooltips=tips, labels=labels,
                      group_x=m["mesh_x"] if m["chips"] > 1 else None,
                      title="fill of the binding per-core resource (1 = at the limit)")
    busiest = sorted(m["cells"], key=lambda c: (-c["fill"], c["id"]))[:5]
    rows = [[c["id"], f"({c['chip']}, {c['x']}, {c['y']})", c["resource"] or "-",
             f"{100 * c['fill']:.1f} %"] for c in busiest]
    return (note + '<div class="scroll">' + fig + "</div><h3>fullest cores</h3>"
            + svg.table(["core", "(chip, x, y)", "binding resource", "fill"], rows,
                        numeric=[True, False, False, True],
                        raw=[[c["id"], None, None, c["fill"]] for c in busiest]))


def _links_html(d: dict[str, Any]) -> str:
    lk = d["links"]
    if lk is None:
        return '<p class="note">The graph is not placed: no link loads.</p>'
    used = np.zeros((lk["height"], lk["width"]), dtype=bool)
    for c in d["mesh"]["cells"]:
        if "gx" in c:
            used[c["gy"], c["gx"]] = True
    note = (f'<p class="note">Estimated packets per tick on every directed link '
            f"(dimension-ordered routes, x then y; spike rates: {escape(lk['rates'])}; packets "
            "from the host are not counted). Two lanes per neighbour pair: east above west, "
            f"north left of south. {lk['used']} link(s) carry traffic; the busiest "
            f"{svg.fmt_num(lk['max_load'])} packets/tick. Hops per tick: east-west "
            f"{svg.fmt_num(lk['hops_ew'])}, north-south {svg.fmt_num(lk['hops_ns'])}.</p>")
    fig = svg.link_map(np.asarray(lk["east"], float).reshape(lk["height"], -1),
                       np.asarray(lk["west"], float).reshape(lk["height"], -1),
                       np.asarray(lk["north"], float).reshape(-1, lk["width"]),
                       np.asarray(lk["south"], float).reshape(-1, lk["width"]), used=used,
                       group_x=lk["mesh_x"] if lk["chips"] > 1 else None,
                       title="expected link load (packets per tick)")
    rows = [[f"{tuple(x['from'])} -> {tuple(x['to'])}", x["load"],
             "yes" if x["chip_edge"] else "no"] for x in lk["busiest"]]
    tab = (svg.table(["link", "packets/tick", "chip edge"], rows, numeric=[False, True, False],
                     raw=[[None, x["load"], None] for x in lk["busiest"]])
           if rows else '<p class="note">No core-to-core traffic.</p>')
    return note + '<div class="scroll">' + fig + "</div><h3>busiest links</h3>" + tab


def _energy_html(d: dict[str, Any]) -> str:
    e = d["energy"]
    if e["source"] == "emulation":
        head = (f'<p class="note"><b>Measured by emulation</b>: {escape(e["basis"])}. Total '
                f'{svg.si(e["total_j"], "J")}, '
                f'{svg.si(e["total_j"] / max(1, e["samples"]), "J")} per sample'
                + (f', average power {svg.si(e["power_w"], "W")}' if e.get("power_w") else "")
                + ".</p>")
    else:
        head = (f'<p class="note"><b>Estimate, not a measurement</b>: expected energy per tick '
                f'from {escape(e["basis"])}. Total {svg.si(e["total_j"], "J")} per tick'
                + (f' ({svg.si(e["power_w"], "W")} at {svg.si(e["tick_seconds"], "s")} per '
                   "tick)" if e.get("power_w") is not None else "")
                + ". Pass <code>--report-input inputs.npz</code> to emulate instead.</p>")
    comps = e["components"]
    total = e["total_j"] or 0.0
    chart = svg.bar_chart([(c["label"], c["joules"]) for c in comps],
                          value_text=[f"{svg.si(c['joules'], 'J')}"
                                      + (f" ({100 * c['joules'] / total:.1f} %)" if total else "")
                                      for c in comps])
    rows, raw = [], []
    for c in comps:
        count = c.get("count_text") or svg.fmt_num(c.get("count"))
        rows.append([c["label"], count,
                     svg.si(c["coefficient"], "W" if c["name"] == "static" else "J")
                     if c.get("coefficient") is not None else "-",
                     svg.si(c["joules"], "J"),
                     f"{100 * c['joules'] / total:.1f} %" if total else "-",
                     c.get("coefficient_source") or "-"])
        raw.append([None, c.get("count"), c.get("coefficient"), c["joules"], None, None])
    rows.append(["total", "", "", svg.si(total, "J"), "100 %" if total else "-", ""])
    raw.append([None, None, None, total, None, None])
    out = [head, chart, svg.table(
        ["term", "count", "coefficient", "energy", "share", "coefficient source"], rows,
        numeric=[False, True, True, True, True, False],
        row_keys=[c["name"] for c in comps] + ["total"], raw=raw)]
    emu = d.get("emulation")
    if emu:
        out.append("<h3>emulation</h3>")
        erow = [["samples", emu["samples"]], ["ticks", emu["ticks"]], ["mode", emu["mode"]],
                ["chip time per sample", svg.si(emu.get("chip_time_s"), "s")],
                ["accuracy", "-" if emu.get("accuracy") is None
                 else f"{100 * emu['accuracy']:.2f} %"]]
        erow += [[k, v] for k, v in emu.get("counters", {}).items()
                 if isinstance(v, int | float)]
        out.append(svg.table(None, erow, numeric=[False, True], cls="kv"))
        for port, counts in (emu.get("output_counts") or {}).items():
            flat = np.asarray(counts).reshape(-1)
            if flat.size <= 64:
                out.append(svg.bar_chart([(f"{port}[{i}]", float(v)) for i, v in enumerate(flat)],
                                         title=f"output {port}: spikes summed over the batch",
                                         bar_height=12))
    return "".join(out)


def rule_result(x: dict[str, Any]) -> str:
    if x["violations"]:
        return f"{x['violations']} violation(s)"
    return "pass" if x.get("applies", True) else "not applicable (other family)"


def _drc_html(d: dict[str, Any]) -> str:
    r = d["drc"]
    head = ('<p class="ok">All design rules hold.</p>' if r["fits"] else
            f'<p class="bad">{len(r["violations"])} design-rule violation(s).</p>')
    rows = [[x["rule"], x["stage"], rule_result(x)] for x in r["rules"]]
    out = [head, svg.table(["rule", "checked from stage", "result"], rows,
                           numeric=[False, False, False], row_keys=[x["rule"] for x in r["rules"]],
                           raw=[[None, None, x["violations"]] for x in r["rules"]])]
    if r["violations"]:
        out.append("<h3>violations</h3><ul>" + "".join(
            f"<li><code>{escape(v['rule'])}</code> {escape(v['message'])}</li>"
            for v in r["violations"]) + "</ul>")
    return "".join(out)


def render_html(data: dict[str, Any]) -> str:
    """The report page for :func:`collect_report`'s dict: HTML5, inline CSS and SVG only."""
    s = data["summary"]
    parts = {
        "summary": _summary_html(data), "passes": _passes_html(data),
        "quantization": _quant_html(data), "utilization": _util_html(data),
        "mesh": _mesh_html(data), "links": _links_html(data), "energy": _energy_html(data),
        "drc": _drc_html(data),
    }
    blob = json.dumps(data, sort_keys=True, separators=(",", ":")).replace("</", "<\\/")
    nav = "".join(f'<a href="#{sid}">{escape(t)}</a>' for sid, t in SECTIONS)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{escape(data['title'])}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{escape(data['title'])}</h1><p>{escape(s['model'])} &rarr; "
        f"{escape(s['target'])} ({escape(s['family'])} family), nmc {escape(s['nmc_version'])}"
        "</p></header>"
        f"<nav>{nav}</nav><main>"
        + "".join(_section(sid, parts[sid]) for sid, _ in SECTIONS)
        + "</main>"
        f'<script type="application/json" id="report-data">{blob}</script>'
        "</body></html>\n"
    )


def write_html(path: str | os.PathLike, data: dict[str, Any]) -> Path:
    """Write the page for ``data`` atomically; returns the path."""
    from nmc.fileio import atomic_write_text

    return atomic_write_text(Path(path), render_html(data))


def read_report_data(path: str | os.PathLike) -> dict[str, Any]:
    """The collected dict embedded in a report page written by :func:`write_html`."""
    text = Path(path).read_text(encoding="utf-8")
    tag = '<script type="application/json" id="report-data">'
    i = text.find(tag)
    if i < 0:
        raise NmcError(f"{path}: not an nmc report page (no report-data block)")
    j = text.find("</script>", i)
    return json.loads(text[i + len(tag):j].replace("<\\/", "</"))


__all__ = ["ENERGY_TERMS", "SECTIONS", "collect_report", "estimate_energy", "read_report_data", "rule_result", "slices_text",
           "render_html", "write_html"]
