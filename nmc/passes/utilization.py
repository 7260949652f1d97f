"""Utilization report of a mapped graph: per core and in total, against the profile's limits.

Per core: every resource of the family's cost model (neurons, axons in/out, synapse words, config
tables, ...), the synapses stored and the memory bits they take. In total: sums, the cores used
against the lower bound (the tightest additive per-core resource: ``ceil(total / limit)``), the
chips used and, once placed, the expected spike-hops per tick and the expected load of the
busiest links (packets per tick, dimension-ordered routes).

:func:`utilization` returns a JSON-compatible dict; :func:`utilization_text` renders it as a
table, :func:`utilization_json` as JSON text.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ir.errors import CompileError
from ir.graph import Graph, Stage
from nmc.passes.cost import axons_out_per_core, cost_model, group_rows, network
from nmc.passes.partition import lower_bound, mapped_cores, slice_text


def utilization(graph: Graph, profile: Any, calibration: Any = None,
                default_rate: float = 0.05, top_links: int = 10) -> dict[str, Any]:
    """The utilization report of a partitioned-or-later ``graph`` on ``profile`` (a Profile or a
    name/path). See the module doc for the fields."""
    from nmc.targets import load_profile

    profile = load_profile(profile)
    if graph.stage.order < Stage.PARTITIONED.order:
        raise CompileError(
            f"utilization: graph {graph.name} is at stage {graph.stage.value}; partition it first"
        )
    net = network(graph)
    model = cost_model(profile.family)
    limits = model.limits(profile)
    cores = mapped_cores(graph)
    out_axons = axons_out_per_core(net, cores)
    word_bits = int(profile.get("core.synapse_word_bits", 0))
    rows = []
    for cid, sl in enumerate(cores):
        use = dict(model.usage(net, sl, profile).amounts)
        use["axons_out"] = int(out_axons[cid])
        syn = sum(net.conns[c].indptr[e] - net.conns[c].indptr[s]
                  for c, ranges in group_rows(net, sl).items() for s, e, _ in ranges)
        entry = graph.mapping["cores"][cid]
        row = {"id": cid, "slices": [slice_text(x) for x in sl],
               **{r: int(use.get(r, 0)) for r in model.resources},
               "synapses": int(syn),
               "memory_bits": int(use.get("synapse_words", 0)) * word_bits}
        for k in ("chip", "x", "y"):
            if k in entry:
                row[k] = int(entry[k])
        rows.append(row)
    totals = {r: int(sum(row[r] for row in rows)) for r in model.resources
              if r not in model.table_resources}
    totals["synapses"] = int(sum(row["synapses"] for row in rows))
    totals["memory_bits"] = int(sum(row["memory_bits"] for row in rows))
    capacity = {r: limits[r] * len(rows) for r in totals if r in limits}
    lb, which = lower_bound(net, model, profile)
    report: dict[str, Any] = {
        "graph": graph.name,
        "target": profile.name,
        "family": profile.family,
        "stage": graph.stage.value,
        "limits": limits,
        "cores": rows,
        "totals": totals,
        "fill": {r: round(totals[r] / capacity[r], 4) for r in capacity if capacity[r]},
        "peak": {r: max((row[r] for row in rows), default=0) for r in model.resources},
        "cores_used": len(rows),
        "lower_bound": lb,
        "lower_bound_resource": which,
        "cores_over_bound": round(len(rows) / lb, 4) if lb else None,
        "cores_per_chip": profile.cores,
        "chips_used": None,
    }
    if graph.stage.order >= Stage.PLACED.order:
        from nmc.passes.place import core_traffic, placed_slots, spike_hops
        from nmc.passes.route import link_loads, link_table

        mesh, slots = placed_slots(graph, profile)
        traffic = core_traffic(graph, calibration, default_rate)
        loads = link_loads(mesh, slots, traffic)
        links = link_table(mesh, loads)
        report["chips_used"] = len({int(c["chip"]) for c in graph.mapping["cores"]})
        report["spike_hops_per_tick"] = round(spike_hops(mesh, slots, traffic), 6)
        report["packets_per_tick"] = round(float(traffic[2].sum()), 6)
        report["links"] = {
            "used": len(links),
            "max_load": links[0]["load"] if links else 0.0,
            "mean_load": round(float(np.mean([x["load"] for x in links])), 6) if links else 0.0,
            "chip_edge_load": round(float(sum(x["load"] for x in links if x["chip_edge"])), 6),
            "busiest": links[:top_links],
        }
        report["rates"] = "calibration" if calibration is not None else f"uniform {default_rate}"
    else:
        report["chips_used"] = -(-len(rows) // profile.cores)
    return report


def utilization_json(report: dict[str, Any]) -> str:
    """The report as JSON text (sorted keys, two-space indent)."""
    return json.dumps(report, indent=2, sort_keys=True)


def _pct(v: int, lim: int | None) -> str:
    if not lim:
        return str(v)
    return f"{v} ({100.0 * v / lim:.0f}%)"


def utilization_text(report: dict[str, Any], max_rows: int = 40) -> str:
    """A readable table: one row per core (the first ``max_rows``), then the totals."""
    res = [r for r in report["peak"]]
    limits = report["limits"]
    head = ["core", "chip", "x", "y", *res, "synapses", "slices"]
    lines = [f"utilization of {report['graph']} on {report['target']} "
             f"(family {report['family']}, stage {report['stage']})", ""]
    table = [head]
    for row in report["cores"][:max_rows]:
        sl = ", ".join(row["slices"])
        table.append([str(row["id"]), str(row.get("chip", "-")), str(row.get("x", "-")),
                      str(row.get("y", "-")), *[_pct(row[r], limits.get(r)) for r in res],
                      str(row["synapses"]), sl if len(sl) <= 40 else sl[:37] + "..."])
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    for r in table:
        lines.append("  ".join(c.rjust(w) if i < len(head) - 1 else c
                               for i, (c, w) in enumerate(zip(r, widths, strict=False))).rstrip())
    if len(report["cores"]) > max_rows:
        lines.append(f"... {len(report['cores']) - max_rows} more cores")
    lines.append("")
    lines.append("limits per core: " + ", ".join(f"{r} {v}" for r, v in limits.items()))
    lines.append("totals: " + ", ".join(f"{r} {v}" for r, v in report["totals"].items()))
    lines.append("fill (of the cores used): " + ", ".join(
        f"{r} {100 * v:.1f}%" for r, v in report["fill"].items()))
    lines.append(f"cores used: {report['cores_used']} (lower bound {report['lower_bound']}, set "
                 f"by {report['lower_bound_resource']}; ratio {report['cores_over_bound']})")
    lines.append(f"chips used: {report['chips_used']} ({report['cores_per_chip']} cores per chip)")
    if "links" in report:
        lk = report["links"]
        lines.append(f"spike-hops per tick: {report['spike_hops_per_tick']} "
                     f"(packets per tick {report['packets_per_tick']}, rates {report['rates']})")
        lines.append(f"links used: {lk['used']}, max load {lk['max_load']}, mean "
                     f"{lk['mean_load']}, across chip edges {lk['chip_edge_load']} packets/tick")
        for x in lk["busiest"][:5]:
            lines.append(f"  {tuple(x['from'])} -> {tuple(x['to'])}: {x['load']}"
                         + (" (chip edge)" if x["chip_edge"] else ""))
    return "\n".join(lines)




# ------------------------------------------------------------------------------------------
# Mapping quality measures (the bars of docs/mapping.md; printed by bench/mapping_quality.py)
# ------------------------------------------------------------------------------------------
def loihi_dense_network(sizes: tuple[int, ...] = (784, 1024, 1024, 10), weight_bits: int = 8,
                        seed: int = 0) -> Graph:
    """A quantized Loihi network of dense layers ``sizes[0] -> sizes[1] -> ...`` with random
    legal weights (mixed sign, ``weight_bits`` stored bits)."""
    from ir.graph import GraphBuilder
    from ir.native.loihi import LoihiCompartment, LoihiDense
    from ir.nodes import Input, Output

    rng = np.random.default_rng(seed)
    b = GraphBuilder("dense_layers", stage=Stage.QUANTIZED, attrs={"target": "loihi"})
    prev = b.add(Input(name="x", shape=(sizes[0],)))
    step = 2 ** (9 - weight_bits)
    for i, (a, n) in enumerate(zip(sizes[:-1], sizes[1:], strict=False)):
        w = rng.integers(-256 // step, 256 // step, size=(n, a)) * step
        c = b.add(LoihiDense(name=f"fc{i}", in_features=a, out_features=n,
                             num_weight_bits=weight_bits,
                             weight=b.const(f"fc{i}.weight", w.astype(np.int16))), prev)
        prev = b.add(LoihiCompartment(name=f"h{i}", shape=(n,), du=4095, dv=0, vth_mant=200), c)
    b.add(Output(name="y", shape=(sizes[-1],)), prev)
    return b.build()


def loihi_conv_network(side: int = 16, channels: tuple[int, ...] = (2, 4, 4, 4, 4),
                       kernel: int = 3, seed: int = 0) -> Graph:
    """A quantized Loihi network of 'same'-padded convolution layers on a ``side`` x ``side``
    image (as LoihiSparse connections): the layered, locally connected network of the traffic
    bar."""
    from ir.graph import GraphBuilder
    from ir.native.loihi import LoihiCompartment, LoihiSparse
    from ir.nodes import Input, Output

    rng = np.random.default_rng(seed)
    b = GraphBuilder("conv_layers", stage=Stage.QUANTIZED, attrs={"target": "loihi"})
    prev = b.add(Input(name="x", shape=(channels[0] * side * side,)))
    r = kernel // 2
    for i, (ci, co) in enumerate(zip(channels[:-1], channels[1:], strict=False)):
        o, y, x, c, u, v = np.meshgrid(np.arange(co), np.arange(side), np.arange(side),
                                       np.arange(ci), np.arange(kernel), np.arange(kernel),
                                       indexing="ij")
        yy, xx = y + u - r, x + v - r
        ok = (yy >= 0) & (yy < side) & (xx >= 0) & (xx < side)
        rows = ((o * side + y) * side + x)[ok]
        cols = ((c * side + yy) * side + xx)[ok]
        vals = rng.integers(-64, 64, size=rows.size) * 2
        n_in, n_out = ci * side * side, co * side * side
        conn = b.add(LoihiSparse(
            name=f"conv{i}", in_features=n_in, out_features=n_out,
            rows=b.const(f"conv{i}.rows", rows.astype(np.int32)),
            cols=b.const(f"conv{i}.cols", cols.astype(np.int32)),
            values=b.const(f"conv{i}.values", vals.astype(np.int16))), prev)
        prev = b.add(LoihiCompartment(name=f"h{i}", shape=(n_out,), du=4095, dv=0,
                                      vth_mant=200), conn)
    b.add(Output(name="y", shape=(channels[-1] * side * side,)), prev)
    return b.build()


def dense_quality(profile: Any, graph: Graph | None = None, strategy: str = "contiguous"
                  ) -> dict[str, Any]:
    """Cores used by a partition of ``graph`` (default: :func:`loihi_dense_network`) against
    the lower bound: ``{"cores", "lower_bound", "resource", "ratio"}``. The bar: ratio <= 1.1."""
    from nmc.passes.partition import partition_cores
    from nmc.targets import load_profile

    profile = load_profile(profile)
    graph = graph if graph is not None else loihi_dense_network()
    cores = partition_cores(graph, profile, strategy)
    lb, which = lower_bound(network(graph), cost_model(profile.family), profile)
    return {"cores": len(cores), "lower_bound": lb, "resource": which,
            "ratio": round(len(cores) / lb, 4)}


def traffic_quality(profile: Any, graph: Graph | None = None, seed: int = 0,
                    steps: int | None = None, default_rate: float = 0.05) -> dict[str, Any]:
    """Spike-hops per tick of ``contiguous`` + ``greedy`` against ``mincut`` + ``anneal`` on
    ``graph`` (default: :func:`loihi_conv_network`): ``{"cores_baseline", "cores_optimized",
    "hops_baseline", "hops_optimized", "reduction"}``. The bar: reduction >= 0.30 at the same
    core count on a network of >= 64 cores."""
    from nmc.passes import run_passes
    from nmc.passes.partition import Partition
    from nmc.passes.place import Place
    from nmc.targets import load_profile

    profile = load_profile(profile)
    graph = graph if graph is not None else loihi_conv_network()
    out: dict[str, Any] = {}
    for tag, part, place in (("baseline", "contiguous", "greedy"),
                             ("optimized", "mincut", "anneal")):
        g = run_passes(graph, [Partition(strategy=part, default_rate=default_rate),
                               Place(strategy=place, seed=seed, steps=steps,
                                     default_rate=default_rate)], profile, verify=False).graph
        out[f"cores_{tag}"] = len(g.mapping["cores"])
        out[f"hops_{tag}"] = g.attrs["passes"]["place"]["spike_hops_per_tick"]
    base = out["hops_baseline"]
    out["reduction"] = round(1 - out["hops_optimized"] / base, 4) if base else 0.0
    return out


__all__ = ["dense_quality", "loihi_conv_network", "loihi_dense_network", "traffic_quality",
           "utilization", "utilization_json", "utilization_text"]
