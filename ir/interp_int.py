"""The integer reference interpreter: runs quantized (and later) graphs with the native kernels.

It *defines* what a quantized graph means: the emulator, running the routed image, must give the
same spikes bit for bit, tick for tick (after the latency the mapping declares). The kernels of
each family live beside its native kinds in ``ir.native.<family>`` and state their integer rules
(widths, rounding, overflow) in their docstrings.

Mapping data (partition, place, route) never changes what a graph computes, so a partitioned,
placed or routed graph runs exactly like its quantized form.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ir.errors import NmcError
from ir.graph import Graph, Stage
from ir.interp import RunResult, run

_ALLOWED_GENERIC = ("Input", "Output", "Flatten")


def run_int(graph: Graph, inputs: Any, steps: int | None = None,
            probes: Sequence[str] = (), resets: Mapping[str, Sequence[int]] | None = None,
            kernels: Mapping[str, type] | None = None) -> RunResult:
    """Run a quantized-or-later ``graph`` on ``inputs`` ``(B, T, *shape)`` (or ``(T, *shape)``, or
    a dict by input name) for ``steps`` steps (default: the inputs' length; more steps pad the
    inputs with silence).

    Outputs are what the Output nodes record: spikes (bool) from spiking compartments, integer
    state (int64) from readouts. ``probes`` names nodes whose state variables are recorded every
    step (``RunResult.probes[node][var]``, ``(B, T, *shape)``). ``resets`` maps nodes to the
    steps after which their state is zeroed (a host write, as Lava's ``io.reset.Reset``).
    ``kernels`` overrides kernels by kind (e.g. BrainScaleS-2 fixed-pattern noise).

    Raises NmcError for a float-stage graph or a graph that still holds generic neuron or
    connection kinds (quantize it first).
    """
    if graph.stage == Stage.FLOAT:
        raise NmcError(
            f"graph {graph.name} is at stage float; the integer interpreter runs quantized graphs "
            "(run the quantize pass first, or use ir.interp_float.run_float)"
        )
    generic = [n for n in graph.nodes.values()
               if n.family == "generic" and n.kind not in _ALLOWED_GENERIC]
    if generic:
        n = generic[0]
        raise NmcError(
            f"graph {graph.name} (stage {graph.stage.value}): node {n.name} is of generic kind "
            f"{n.kind}, which has no integer semantics; quantize the graph for a target first"
        )
    return run(graph, inputs, steps=steps, probes=probes, kernels={**_integer_kernels(), **(kernels or {})},
               resets=resets)


def _integer_kernels() -> dict:
    # The integer kernels are registered by ir.native; passing them explicitly keeps the integer
    # interpreter independent of the float kernels module.
    import ir.native  # noqa: F401
    from ir import interp

    return dict(interp._KERNELS)


__all__ = ["RunResult", "run_int"]
