"""The default compile flow: which passes run, in which order, and why.

>>> run = compile_graph(graph, "loihi", partition="mincut", place="anneal")   # doctest: +SKIP
>>> run.graph.stage                                                          # doctest: +SKIP
<Stage.ROUTED: 'routed'>
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ir.errors import CompileError
from ir.graph import Graph
from nmc.passes import Pass, PassRun, run_passes

OPTIONS = {
    "calibration": "inputs (B, T, *shape) or {input: array}: quantize scaling and spike rates",
    "percentile": "quantize: activation percentile for data-aware scaling",
    "weight_bits": "quantize: cap on stored weight bits",
    "axon_types": "quantize (truenorth): auto | 2 | 4",
    "split_fanin": "quantize (truenorth): off | auto | POP[,POP]: large fan-in as partial sums "
                   "on several cores (finer weights, +1 tick)",
    "seed": "quantize and place: seed of every random choice",
    "fanout": "legalize_family (truenorth): auto | copy | splitter",
    "partition": "partition strategy: contiguous | mincut",
    "max_neurons": "partition: cap on neurons per core",
    "atom": "partition (mincut): neurons per atom",
    "default_rate": "partition/place: spikes per neuron per tick assumed without calibration",
    "place": "place strategy: greedy | anneal",
    "anneal_steps": "place (anneal): number of moves",
    "compose": "legalize: compose connections in series (default true)",
}
"""Options of :func:`default_flow` / :func:`compile_graph` and what they do."""


def default_flow(options: Mapping[str, Any] | None = None) -> list[Pass]:
    """The passes of a compile, in order, configured by ``options`` (keys of :data:`OPTIONS`)."""
    from nmc.passes.legalize import Legalize, LegalizeFamily
    from nmc.passes.partition import Partition
    from nmc.passes.place import Place
    from nmc.passes.quantize import Quantize
    from nmc.passes.route import Route

    o = dict(options or {})
    unknown = sorted(set(o) - set(OPTIONS))
    if unknown:
        raise CompileError(
            f"compile: unknown option(s) {', '.join(unknown)}; options: {', '.join(sorted(OPTIONS))}"
        )
    cal = o.get("calibration")
    rate = float(o.get("default_rate", 0.05))
    return [
        # Conv/pool/Flatten/Scale become Sparse and chained connections one: quantize and the
        # families only know Dense/Sparse between populations.
        Legalize(compose=bool(o.get("compose", True))),
        # Float parameters become the family's exact integer registers.
        Quantize(calibration=cal, percentile=float(o.get("percentile", 99.9)),
                 weight_bits=o.get("weight_bits"), axon_types=str(o.get("axon_types", "auto")),
                 seed=int(o.get("seed", 0)), split_fanin=str(o.get("split_fanin", "off"))),
        # The family's structural rules (TrueNorth fan-out, BrainScaleS-2 rows, Loihi delays).
        LegalizeFamily(fanout=str(o.get("fanout", "auto")),
                       partition=str(o.get("partition", "contiguous"))),
        # Core-sized slices within every per-core limit.
        Partition(strategy=str(o.get("partition", "contiguous")), max_neurons=o.get("max_neurons"),
                  calibration=cal, default_rate=rate, atom=o.get("atom")),
        # Cores onto the mesh (and onto as many chips as needed).
        Place(strategy=str(o.get("place", "greedy")), seed=int(o.get("seed", 0)),
              steps=o.get("anneal_steps"), calibration=cal, default_rate=rate),
        # Axons, routes, host I/O, latency; every synapse reached exactly once.
        Route(),
    ]


def compile_graph(graph: Graph, profile: Any, *, print_after: tuple[str, ...] = (),
                  verify: bool = True, on_pass: Any = None, **options: Any) -> PassRun:
    """Run legalize(float) -> quantize -> legalize(family) -> partition -> place -> route.

    ``profile``: a Profile or a profile name/path; ``options``: see :data:`OPTIONS`. A graph that
    is already past a stage skips the passes before it (a native lava-dl graph starts at
    legalize(family)). ``on_pass(pass, graph, seconds)`` is called after each pass (progress).
    Returns the :class:`nmc.passes.PassRun` (graph, timings, dumps).
    """
    return run_passes(graph, default_flow(options), profile, print_after=print_after,
                      verify=verify, on_pass=on_pass)


__all__ = ["OPTIONS", "compile_graph", "default_flow"]
