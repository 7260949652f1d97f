"""The Python API: what a training framework calls to use nmc as its deployment backend.

>>> import nmc
>>> compiled = nmc.compile("examples/ann_conversion/mlp/model.json", target="loihi")
>>> result = compiled.run(spikes, labels=labels)          # spikes: (B, T, N)
>>> result.accuracy, result.energy_per_sample_j, compiled.utilization["cores_used"]

``compile`` accepts a path (model.json, .nir, .net, .nmir), a ``nir.NIRGraph`` object or an
``ir.Graph``. ``load_image`` opens a saved chip image for ``run``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ir.errors import NmcError
from ir.graph import Graph, Stage


def load(model: Any, **frontend_options: Any) -> Graph:
    """Read a model into the IR: a path (by suffix), a ``nir.NIRGraph``, or an ``ir.Graph``."""
    if isinstance(model, Graph):
        return model
    if isinstance(model, str | os.PathLike):
        from nmc.frontends import load_model

        return load_model(Path(model), **frontend_options)
    if type(model).__module__.startswith("nir"):
        from nmc.frontends.nir import from_nir

        return from_nir(model, **frontend_options)
    raise NmcError(
        f"cannot compile an object of type {type(model).__name__}; pass a path, a nir.NIRGraph "
        "or an ir.Graph"
    )


@dataclass
class Compiled:
    """A compiled network: the routed graph, its profile, the image bytes and the reports."""

    graph: Graph
    profile: Any
    image: bytes
    timings: dict[str, float] = field(default_factory=dict)
    dumps: dict[str, str] = field(default_factory=dict)
    quant_report: Any = None
    utilization: dict[str, Any] = field(default_factory=dict)
    quantized: Graph | None = None
    source: Graph | None = None
    _lags: dict[str, int] | None = field(default=None, repr=False, compare=False)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the image atomically; returns the path."""
        from nmc.fileio import atomic_write_bytes

        return atomic_write_bytes(Path(path), self.image)

    def chip(self):
        """The emulator's chip, loaded from this image's bytes (exactly what a file would hold)."""
        import emulator

        return emulator.load(self.image)

    def run(self, inputs: Any, labels: Any = None, *, resets: Any = None, mismatch: Any = None,
            **run_options: Any) -> Results:
        """Run the image on the emulator (``run_options``: those of ``emulator.runner.run``).

        ``resets={node: steps}`` puts populations of the model back to their initial state
        after those steps, as ``ir.interp_int.run_int(..., resets=...)`` does on the compiled
        graph (``"*"``: every population); see :meth:`chip_resets`. ``mismatch=sigma | (sigma, seed) | "SIGMA[:SEED]"``
        runs a BrainScaleS-2 chip instance with seeded analog fixed-pattern noise (codes)."""
        chip = self.chip()
        if resets is not None:
            resets = self.chip_resets(resets, chip, inputs, run_options)
        if mismatch is not None:
            run_options["mismatch"] = mismatch
        return run(chip, inputs, labels=labels, resets=resets, **run_options)

    def chip_resets(self, resets: Any, chip: Any = None, inputs: Any = None,
                    run_options: dict[str, Any] | None = None) -> dict[str, Any]:
        """Host resets by IR node name -> the chip's ``resets`` by population.

        Image populations carry the names of the compiled graph's neuron nodes. A connection,
        input or output has no state the chip can reset (NmcError naming its kind). Steps are
        those of the integer reference of the model; they are chip ticks except where a
        TrueNorth mapping with splitter cores retimed a population by ``r`` ticks (its inputs
        arrive ``r`` ticks later on the chip): its resets move ``r`` ticks later too, and those
        that fall after the run are dropped."""
        from collections.abc import Mapping

        if not isinstance(resets, Mapping):
            raise NmcError(f"resets must map population names to steps (e.g. {{'h1': [16, 33]}}), "
                           f"not {type(resets).__name__}")
        g = self.graph
        pops = [n.name for n in g.nodes.values() if n.category == "neuron"]
        out: dict[str, Any] = {}
        for name, at in resets.items():
            for p in (pops if name == "*" else [name]):
                node = g.nodes.get(p)
                if node is None:
                    raise NmcError(f"resets: the compiled graph {g.name} has no node {p!r}; "
                                   f"populations: {', '.join(pops) or 'none'} (or '*' for all)")
                if node.category != "neuron":
                    raise NmcError(f"resets: node {p} is a {node.kind} ({node.category}), not a "
                                   "population; only populations hold state the chip resets "
                                   f"(populations: {', '.join(pops)})")
                out.setdefault(p, []).append(at)
        lags = self.population_lags()
        if not any(lags.get(p) for p in out):
            return out
        from emulator.runner import normalise_inputs, reset_ticks

        chip = chip if chip is not None else self.chip()
        opts = run_options or {}
        T = normalise_inputs(chip, inputs, opts.get("ticks"), opts.get("batch"))[2]
        shifted: dict[str, Any] = {}
        for p, at in out.items():
            ticks = reset_ticks(p, at, T) + lags.get(p, 0)
            shifted[p] = ticks[ticks < T].tolist()
        return shifted

    def population_lags(self) -> dict[str, int]:
        """Ticks by which the mapping delays each population against the integer reference of
        the model: non-zero only where TrueNorth splitter cores made the legalization retime
        the network (``docs/mapping.md``); ``{}`` otherwise."""
        if self._lags is not None:
            return self._lags
        lags: dict[str, int] = {}
        dec = (self.graph.attrs.get("passes") or {}).get("legalize_family") or {}
        if dec.get("splitters") and self.source is not None:
            ref = self.quantized or self.source  # the retimed delays are against the quantized graph
            if ref.stage == Stage.FLOAT:
                from nmc.passes import run_passes
                from nmc.passes.flow import default_flow

                ref = run_passes(ref, default_flow()[:2], self.profile).graph
            mine, theirs = _delay_distances(self.graph), _delay_distances(ref)
            lags = {p: mine[p] - d for p, d in theirs.items()
                    if p in mine and mine[p] != d and ref.nodes[p].category == "neuron"}
        self._lags = lags
        return lags


def _delay_distances(graph: Graph) -> dict[str, int]:
    """The smallest sum of connection delays from an input (or a population nothing feeds) to
    each node: retiming moves it by exactly the population's lag, on every path."""
    import heapq

    succ: dict[str, list[str]] = {n: [] for n in graph.nodes}
    fed = set()
    for a, b in graph.edges:
        succ[a].append(b)
        fed.add(b)
    dist = {n: 0 for n, node in graph.nodes.items()
            if node.kind == "Input" or (node.category == "neuron" and n not in fed)}
    heap = [(0, n) for n in sorted(dist)]
    while heap:
        d, n = heapq.heappop(heap)
        if d > dist[n]:
            continue
        for m in succ[n]:
            w = graph.min_delay(graph.nodes[m])
            if d + w < dist.get(m, d + w + 1):
                dist[m] = d + w
                heapq.heappush(heap, (d + w, m))
    return dist


def compile(  # noqa: A001 - the natural name for the API
    model: Any,
    target: str | os.PathLike = "loihi",
    *,
    partition: str = "contiguous",
    place: str = "greedy",
    calibration: Any = None,
    seed: int = 0,
    print_after: tuple[str, ...] = (),
    options: dict[str, Any] | None = None,
    frontend_options: dict[str, Any] | None = None,
    quantize_options: dict[str, Any] | None = None,
) -> Compiled:
    """Compile ``model`` for ``target`` (a profile name or a profile file) down to an image.

    ``options``: further compile-flow options (keys of ``nmc.passes.flow.OPTIONS``, e.g.
    ``{"weight_bits": 4}``); ``quantize_options`` is its older name and is merged into it.
    ``frontend_options``: what the model's format does not store (NIR: ``dt``, ``reset``)."""
    from nmc.backend.writer import write_image
    from nmc.passes.flow import compile_graph, default_flow
    from nmc.passes.quantize.report import QuantReport
    from nmc.passes.utilization import utilization
    from nmc.progress import Progress
    from nmc.resources import check_compile
    from nmc.targets import load_profile

    source = load(model, **(frontend_options or {}))
    check_compile(source)  # refuse absurd sizes (the --max-memory limit) before any pass runs
    profile = load_profile(target)
    flow_options = (dict(partition=partition, place=place, calibration=calibration, seed=seed)
                    | dict(quantize_options or {}) | dict(options or {}))
    bar = Progress(f"compile for {profile.name}", len(default_flow(flow_options)))
    done: list[str] = []
    stages: dict[str, Graph] = {}

    def on_pass(p, g, seconds):  # one step of the bar per pass that ran
        done.append(p.name)
        bar.update(len(done))
        if p.name == "quantize":
            stages["quantized"] = g

    try:
        run_ = compile_graph(source, profile, print_after=print_after, on_pass=on_pass,
                             **flow_options)
    finally:
        bar.close()
    graph = run_.graph
    if graph.stage != Stage.ROUTED:
        raise NmcError(f"internal: the flow ended at stage {graph.stage}, not routed")
    image = write_image(graph, profile)
    return Compiled(
        graph=graph, profile=profile, image=image, timings=dict(run_.timings),
        dumps=dict(run_.dumps), quant_report=QuantReport.from_graph(graph),
        utilization=utilization(graph, profile),
        quantized=stages.get("quantized", source if source.stage == Stage.QUANTIZED else None),
        source=source,
    )


def load_image(path: str | os.PathLike):
    """Open a saved chip image (validated; a bad file raises LoadError)."""
    import emulator

    return emulator.load(Path(path))


@dataclass
class Results:
    """What a run returns: output spikes per port (B, T, n), counts, accuracy, counters, energy."""

    spikes: dict[str, np.ndarray]
    counts: dict[str, np.ndarray]
    accuracy: float | None
    stats: dict[str, Any]
    raw: Any = None

    @property
    def energy_per_sample_j(self) -> float | None:
        e = self.stats.get("energy", {})
        total = e.get("total_joules", e.get("total_j"))
        b = self.stats.get("batch") or 1
        return None if total is None else total / b

    @property
    def chip_time_s(self) -> float | None:
        """Time on the chip per sample (ticks x tick period, with the family's speed-up)."""
        ct = self.stats.get("chip_time")
        if isinstance(ct, dict) and "seconds_per_sample" in ct:
            return ct["seconds_per_sample"]
        return self.stats.get("chip_time_s")


def readout(counts: np.ndarray) -> np.ndarray:
    """Class prediction from output spike counts (B, n): the neuron with the most spikes."""
    return np.asarray(counts).argmax(axis=-1)


def run(chip: Any, inputs: Any, labels: Any = None, **options: Any) -> Results:
    """Run a loaded chip on a batch of inputs; with labels, compute argmax-count accuracy."""
    raw = chip.run(inputs, **options)
    spikes = dict(raw.outputs)
    counts = {k: v.sum(axis=1) for k, v in spikes.items()}
    accuracy = None
    if labels is not None:
        first = next(iter(counts.values()))
        accuracy = float((readout(first) == np.asarray(labels)).mean())
    return Results(spikes=spikes, counts=counts, accuracy=accuracy, stats=dict(raw.stats), raw=raw)
