"""Design-rule checks: does a (partially) mapped network fit its target, and if not, by how much.

Every rule has a name (``core.neurons``, ``core.axons_in``, ``noc.router_table``,
``truenorth.fanout``, ...); :func:`check_design` reports *all* violations of a graph at once, each
a :class:`Violation` with the rule, the object (a core, a population, a connection), the value, the
limit and a hint saying what to change. ``nmc check --target`` calls :func:`check_design` (or
:func:`check_target` for a float graph, which maps it first and collects what does not fit).

Rules by stage (a rule is checked once the stage that decides it is reached):

============================  ===============================================================
rule                          what
============================  ===============================================================
``net.kinds``                 every node is of the target's family (or Input/Output/Flatten)
``net.fanin``                 one neuron alone needs more of a per-core resource than a core has
                              (``axons_in``, ``synapse_words``, ...): no partition can fit it
``net.delay``                 a connection delay above the family's maximum (``synapse.delay_max``)
``net.chips``                 the core lower bound needs more chips than ``chip.max_chips``
``core.<resource>``           per-core use of a resource above ``core.<resource>`` (partitioned)
``core.slices``               slices overlap, leave neurons unmapped or exceed a population
``place.coordinates``         a core off the mesh, two cores on one spot, a chip above max
``route.reach``               a synapse not reached exactly once (axon missing or duplicated)
``route.io``                  an input or output element not mapped exactly once
``noc.router_table``          route entries of a core above ``noc.router_table`` (when defined)
``truenorth.fanout``          a TrueNorth neuron with more than one target (partitioned)
``core.rows``                 BrainScaleS-2: synapse rows of a hemisphere above ``core.rows``
============================  ===============================================================
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from ir.errors import CompileError
from ir.graph import Graph, Stage


@dataclass(frozen=True)
class Violation:
    """One broken design rule.

    ``rule``: its name; ``object``: what breaks it (``core 7``, ``population h1``, ``connection
    fc1``); ``value`` and ``limit``: the numbers; ``hint``: what to change; ``detail``: optional
    extra words (e.g. which slices a core holds).
    """

    rule: str
    object: str
    value: Any
    limit: Any
    hint: str
    detail: str = ""
    quantity: str = ""

    @property
    def excess(self) -> Any:
        """By how much the value is above the limit (numbers only)."""
        if isinstance(self.value, int | float) and isinstance(self.limit, int | float):
            return self.value - self.limit
        return None

    def message(self, target: str = "") -> str:
        """``core 7 (h1[256:512]): synapse_words 20000 > 16384 by 3616 (target loihi); <hint>``."""
        obj = f"{self.object} ({self.detail})" if self.detail else self.object
        if self.limit is None:  # a rule without a number (a pass that stopped)
            return f"{obj}: {self.value} [{self.rule}]; {self.hint}"
        by = f" by {self.excess}" if self.excess is not None and self.excess > 0 else ""
        tgt = f" (target {target})" if target else ""
        what = self.quantity or self.rule.split(".", 1)[-1]
        return f"{obj}: {what} {self.value} > {self.limit}{by}{tgt} [{self.rule}]; {self.hint}"

    def to_json(self) -> dict:
        return asdict(self)


def raise_violations(violations: list[Violation], target: str, what: str) -> None:
    """Raise one CompileError listing every violation (no-op when the list is empty)."""
    if not violations:
        return
    lines = [v.message(target) for v in violations]
    if len(lines) == 1:
        raise CompileError(f"{what}: {lines[0]}")
    shown = lines[:20]
    more = f"\n  ... and {len(lines) - 20} more" if len(lines) > 20 else ""
    raise CompileError(f"{what}: {len(lines)} design-rule violations:\n  - " + "\n  - ".join(shown)
                       + more)


Checker = Callable[[Graph, Any], list[Violation]]
_CHECKERS: list[tuple[str, Stage, Checker]] = []


def design_rule(name: str, stage: Stage) -> Callable[[Checker], Checker]:
    """Register a checker that runs on graphs at ``stage`` or later."""

    def deco(fn: Checker) -> Checker:
        _CHECKERS.append((name, stage, fn))
        return fn

    return deco


def check_design(graph: Graph, profile: Any) -> list[Violation]:
    """All design-rule violations of ``graph`` (stage quantized or later) on ``profile``.

    ``profile`` is a Profile or a profile name/path. A float graph has no native parameters yet:
    use :func:`check_target`, which maps it first.
    """
    from nmc.targets import load_profile

    profile = load_profile(profile)
    if graph.stage == Stage.FLOAT:
        raise CompileError(
            f"check_design: graph {graph.name} is at stage float; quantize it for "
            f"{profile.name} first (or call nmc.passes.drc.check_target)"
        )
    out: list[Violation] = []
    for _name, stage, fn in _CHECKERS:
        if graph.stage.order >= stage.order:
            out.extend(fn(graph, profile))
    return out


def check_target(graph: Graph, profile: Any, **options: Any) -> tuple[Graph | None, list[Violation]]:
    """Map ``graph`` (any stage) for ``profile`` as far as it goes; return the furthest graph
    reached and every violation found (an empty list: the network fits).

    This is the function behind ``nmc check --target``: it runs the default flow
    (``nmc.passes.flow``) pass by pass and, where a pass stops on a design rule, checks the graph
    it had so that the report lists every problem, not only the first.
    """
    from nmc.passes import run_passes
    from nmc.passes.flow import default_flow
    from nmc.targets import load_profile

    profile = load_profile(profile)
    passes = default_flow(options)
    reached: Graph | None = graph
    for p in passes:
        try:
            reached = run_passes(reached, [p], profile, verify=False).graph
        except CompileError as e:
            if reached is None or reached.stage == Stage.FLOAT:
                return reached, [Violation("net.compile", f"graph {graph.name}", str(e), None,
                                           "fix the model so that it can be quantized")]
            found = check_design(reached, profile)
            if not found:
                found = [Violation(f"pass.{p.name}", f"graph {graph.name}", str(e), None,
                                   "see the message")]
            return reached, found
    return reached, check_design(reached, profile)


def report_text(violations: list[Violation], target: str = "") -> str:
    """Human-readable listing (one line per violation, ``fits`` when empty)."""
    if not violations:
        return f"fits{f' on {target}' if target else ''}: no design-rule violations"
    return "\n".join(v.message(target) for v in violations)


def report_json(violations: list[Violation]) -> str:
    return json.dumps([v.to_json() for v in violations], indent=2, sort_keys=True)



# ------------------------------------------------------------------------------------------
# The rules
# ------------------------------------------------------------------------------------------
def _view(graph: Graph) -> tuple[Any, list[Violation]]:
    """The mapping view, or the structural problem that prevents building it."""
    from nmc.passes.cost import network

    try:
        return network(graph), []
    except CompileError as e:
        return None, [Violation("net.structure", f"graph {graph.name}", str(e), None,
                                "run legalize and quantize for this target first")]


@design_rule("net.kinds", Stage.QUANTIZED)
def _rule_kinds(graph: Graph, profile: Any) -> list[Violation]:
    out = []
    for node in graph.nodes.values():
        fam = node.family
        if fam == "generic" and node.kind in ("Input", "Output", "Flatten"):
            continue
        if fam != profile.family:
            out.append(Violation("net.kinds", f"{node.kind} {node.name}", fam, profile.family,
                                 f"quantize the float model for {profile.name}"))
    return out


DELAY_KEYS = ("synapse.delay_max", "core.delay_max")
"""Profile keys that bound a connection's delay (the first one the profile defines)."""


@design_rule("net.delay", Stage.QUANTIZED)
def _rule_delay(graph: Graph, profile: Any) -> list[Violation]:
    limit = next((profile.get(k) for k in DELAY_KEYS if profile.get(k, None) is not None), None)
    if limit is None:
        return []
    return [Violation("net.delay", f"connection {n.name}", int(n.delay), int(limit),
                      "shorten the delay, or let legalize_family relay it")
            for n in graph.nodes.values()
            if n.category == "connection" and isinstance(getattr(n, "delay", None), int)
            and n.delay > limit]


@design_rule("net.fanin", Stage.QUANTIZED)
def _rule_fanin(graph: Graph, profile: Any) -> list[Violation]:
    from nmc.passes.legalize import single_neuron_violations

    net, problems = _view(graph)
    if problems:
        return problems
    try:
        return single_neuron_violations(graph, profile)
    except CompileError as e:  # no cost model for this family
        return [Violation("net.fanin", f"graph {graph.name}", str(e), None, "")]


@design_rule("net.chips", Stage.QUANTIZED)
def _rule_chips(graph: Graph, profile: Any) -> list[Violation]:
    from nmc.passes.cost import cost_model
    from nmc.passes.partition import lower_bound

    net, problems = _view(graph)
    if problems:
        return []
    try:
        model = cost_model(profile.family)
    except CompileError:
        return []
    lb, which = lower_bound(net, model, profile)
    cap = profile.cores * int(profile.get("chip.max_chips"))
    if lb <= cap:
        return []
    return [Violation("net.chips", f"network {graph.name}", lb, cap,
                      f"at least {lb} cores are needed ({which} sets the bound) but "
                      f"{profile.get('chip.max_chips')} chips hold {cap}; shrink the network, "
                      "reduce weight bits, or raise chip.max_chips in a custom profile",
                      detail="lower bound", quantity="cores")]


@design_rule("core", Stage.PARTITIONED)
def _rule_cores(graph: Graph, profile: Any) -> list[Violation]:
    import numpy as np

    from nmc.passes.cost import axons_out_per_core, cost_model, exceeded
    from nmc.passes.partition import mapped_cores, slice_text

    net, problems = _view(graph)
    if problems:
        return problems
    model = cost_model(profile.family)
    limits = model.limits(profile)
    cores = mapped_cores(graph)
    out: list[Violation] = []
    cover = {p: np.zeros(n, dtype=np.int64) for p, n in net.sizes.items()}
    for cid, sl in enumerate(cores):
        for p, s, e in sl:
            if p not in cover or not 0 <= s < e <= net.sizes[p]:
                out.append(Violation("core.slices", f"core {cid}", slice_text((p, s, e)),
                                     f"{p}[0:{net.sizes.get(p, 0)}]",
                                     "a slice must name a population and lie inside it"))
                continue
            cover[p][s:e] += 1
    for p, c in cover.items():
        bad = np.nonzero(c != 1)[0]
        if bad.size:
            out.append(Violation("core.slices", f"population {p} neuron {int(bad[0])}",
                                 int(c[bad[0]]), 1, "every neuron must sit on exactly one core",
                                 detail=f"{bad.size} neurons"))
    if out:
        return out
    cap = profile.cores * int(profile.get("chip.max_chips"))
    if len(cores) > cap:
        out.append(Violation(
            "net.chips", f"mapping of {graph.name}", len(cores), cap,
            f"the partition uses {len(cores)} cores but {profile.get('chip.max_chips')} chips "
            f"hold {cap}; shrink the network, reduce weight bits, or raise chip.max_chips in a "
            "custom profile", detail="cores used", quantity="cores"))
    axons_out = axons_out_per_core(net, cores)
    for cid, sl in enumerate(cores):
        use = dict(model.usage(net, sl, profile).amounts)
        use["axons_out"] = int(axons_out[cid])
        detail = ", ".join(slice_text(x) for x in sl[:3]) + (" ..." if len(sl) > 3 else "")
        for r in exceeded(use, limits):
            out.append(Violation(f"core.{r}", f"core {cid}", use[r], limits[r], model.hint(r),
                                 detail=detail))
    return out


@design_rule("place", Stage.PLACED)
def _rule_place(graph: Graph, profile: Any) -> list[Violation]:
    mx, my = int(profile.get("chip.mesh_x")), int(profile.get("chip.mesh_y"))
    max_chips = int(profile.get("chip.max_chips"))
    seen: dict[tuple, int] = {}
    out = []
    for c in graph.mapping["cores"]:
        where = (c.get("chip"), c.get("x"), c.get("y"))
        if not all(isinstance(v, int) for v in where) or not (
                0 <= where[0] < max_chips and 0 <= where[1] < mx and 0 <= where[2] < my):
            out.append(Violation("place.coordinates", f"core {c['id']}", list(where),
                                 f"chip < {max_chips}, x < {mx}, y < {my}",
                                 "re-run place; a core must sit on the mesh"))
        elif where in seen:
            out.append(Violation("place.coordinates", f"core {c['id']}", list(where),
                                 f"free (core {seen[where]} is there)",
                                 "two cores cannot share a spot; re-run place"))
        else:
            seen[where] = c["id"]
    return out


@design_rule("route", Stage.ROUTED)
def _rule_route(graph: Graph, profile: Any) -> list[Violation]:
    from nmc.passes.route import check_reach

    net, problems = _view(graph)
    if problems:
        return problems
    return check_reach(graph) + routing_violations(graph, profile)


@design_rule("truenorth.fanout", Stage.PARTITIONED)
def _rule_tn_fanout(graph: Graph, profile: Any) -> list[Violation]:
    """Every TrueNorth neuron reaches at most one (core, connection): one target per neuron."""
    import numpy as np

    from nmc.passes.cost import core_of_neuron, packets
    from nmc.passes.partition import mapped_cores

    if profile.family != "truenorth":
        return []
    net, problems = _view(graph)
    if problems:
        return problems
    cores = mapped_cores(graph)
    src_core, dst, ci, sn = packets(net, core_of_neuron(net, cores), len(cores))
    names = list(net.conns)
    out = []
    for pop in net.pops:
        idx = [k for k, c in enumerate(names) if net.conns[c].source == pop]
        if not idx:
            continue
        sel = np.isin(ci, idx)
        counts = np.bincount(sn[sel], minlength=net.sizes[pop])
        bad = np.nonzero(counts > 1)[0]
        if bad.size:
            out.append(Violation(
                "truenorth.fanout", f"population {pop} neuron {int(bad[0])}",
                int(counts[bad[0]]), 1, "a TrueNorth neuron has one target; run legalize_family "
                "(copies or splitter cores)", detail=f"{bad.size} neurons", quantity="targets"))
    return out


ROUTER_TABLE_KEY = "noc.router_table"
"""Profile key of the route entries one core can send from (rule ``noc.router_table``); a
profile without it has no such limit (Loihi, TrueNorth: the destination travels in the packet)."""


def routing_violations(graph: Graph, profile: Any) -> list[Violation]:
    """Router table capacity (``noc.router_table``) of a routed graph."""
    from nmc.passes.route import route_entries_per_core

    limit = profile.get(ROUTER_TABLE_KEY, None)
    if limit is None:
        return []
    counts = route_entries_per_core(graph.mapping, len(graph.mapping["cores"]))
    return [Violation("noc.router_table", f"core {cid}", int(n), int(limit),
                      "give fewer neurons per core or reduce the fan-out")
            for cid, n in enumerate(counts.tolist()) if n > limit]


def design_rules(graph: Graph, target: str) -> dict[str, Any]:
    """The ``nmc check --target`` hook: map ``graph`` for ``target`` and report (JSON-like).

    ``{"target", "fits", "stage_reached", "violations": [...], "text", "cores", "lower_bound",
    "chips"}``; ``text`` is :func:`report_text`.
    """
    from nmc.targets import load_profile

    profile = load_profile(target)
    reached, found = check_target(graph, profile)
    out: dict[str, Any] = {
        "target": profile.name,
        "fits": not found,
        "stage_reached": reached.stage.value if reached is not None else None,
        "violations": [v.to_json() for v in found],
        "text": report_text(found, profile.name),
    }
    if reached is not None and reached.mapping:
        dec = reached.attrs.get("passes", {})
        out["cores"] = len(reached.mapping.get("cores", []))
        out["lower_bound"] = dec.get("partition", {}).get("lower_bound")
        out["chips"] = dec.get("place", {}).get("chips")
    return out


__all__ = ["Violation", "check_design", "check_target", "design_rule", "design_rules",
           "raise_violations", "report_json", "report_text", "routing_violations"]
