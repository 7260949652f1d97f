"""Class predictions from output records: how a spiking network's answer is read.

A model names its readout in ``provenance.readout`` (model.json); ``nmc run`` uses it to score
accuracy. Every readout takes ``outputs`` of shape ``(B, T, n)`` (spikes, or membrane values of a
non-spiking readout population) and returns ``(B,)`` class indices:

``count``        the neuron with the most spikes (ties: lowest index)
``first_spike``  the neuron that spikes first (ties: more spikes, then lowest index; none: 0)
``fires``        a binary decision of one neuron (the first): 1 if it spikes at all
``assigned``     neurons carry class labels (``assignment``); the class whose neurons spike most
                 on average wins (unsupervised STDP, Diehl & Cook 2015)
``mean_value``   the neuron with the largest mean value (a non-spiking readout's membrane)

``window = (start, stop)`` restricts the steps looked at.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ir.errors import NmcError

READOUTS = ("count", "first_spike", "fires", "assigned", "mean_value")


def predict(outputs: np.ndarray, readout: str = "count", *, assignment: Any = None,
            window: Any = None, n_classes: int | None = None, shift: int = 0) -> np.ndarray:
    """Predicted classes ``(B,)``; ``shift`` moves the window by a chip's extra latency."""
    out = np.asarray(outputs, dtype=np.float64)
    if out.ndim != 3:
        raise NmcError(f"outputs of shape {list(out.shape)}: expected (batch, steps, neurons)")
    if window is not None:
        a, b = int(window[0]) + shift, int(window[1]) + shift
        out = out[:, a:b]
    if readout == "count":
        return out.sum(axis=1).argmax(axis=1)
    if readout == "mean_value":
        return out.mean(axis=1).argmax(axis=1)
    if readout == "fires":  # the first (single) output neuron decides
        return (out[:, :, 0] > 0).any(axis=1).astype(np.int64)
    if readout == "first_spike":
        t = out.shape[1]
        fired = out > 0
        first = np.where(fired.any(axis=1), fired.argmax(axis=1), t)  # (B, n)
        counts = out.sum(axis=1)
        # earliest first spike, then more spikes, then the lowest index
        key = first * (counts.max(initial=0) + 1) - counts
        pred = key.argmin(axis=1)
        return np.where(fired.any(axis=(1, 2)), pred, 0)
    if readout == "assigned":
        if assignment is None:
            raise NmcError("readout 'assigned' needs the neurons' class assignment "
                           "(provenance.assignment in model.json)")
        lab = np.asarray(assignment, dtype=np.int64)
        k = int(n_classes or lab.max() + 1)
        counts = out.sum(axis=1)
        per = np.zeros((out.shape[0], k))
        np.add.at(per.T, lab, counts.T)
        size = np.bincount(lab, minlength=k).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(size > 0, per / np.maximum(size, 1), -np.inf)
        return mean.argmax(axis=1)
    raise NmcError(f"readout {readout!r} is not one of {', '.join(READOUTS)}")


def from_provenance(prov: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """The readout and its arguments a model declares (``count`` when it declares none)."""
    prov = prov or {}
    args: dict[str, Any] = {}
    for key in ("assignment", "window", "n_classes"):
        if prov.get(key) is not None:
            args[key] = prov[key]
    return str(prov.get("readout", "count")), args


def float_latency(graph: Any) -> int:
    """Steps from an input to an output of a float graph: its Delay nodes on the shortest path
    (float connections are instantaneous)."""
    import networkx as nx

    g = nx.DiGraph()
    for a, b in graph.edges:
        node = graph.nodes[b]
        g.add_edge(a, b, weight=graph.min_delay(node) if node.kind == "Delay" else 0)
    best = None
    for i in graph.inputs:
        for o in graph.outputs:
            if i.name in g and o.name in g and nx.has_path(g, i.name, o.name):
                d = nx.shortest_path_length(g, i.name, o.name, weight="weight")
                best = d if best is None else min(best, d)
    return best or 0


def latency_shift(routed: Any, source: Any, port: str | None = None) -> int:
    """How many ticks later the chip's output ``port`` answers than the source graph's: the
    mapping's declared latency (its path delays, splitter ticks included) minus the source
    graph's own delays."""
    m = routed.mapping or {}
    lat = {k: v for k, v in (m.get("latency") or {}).items() if v is not None}
    port = port or (source.outputs[0].name if source.outputs else None)
    total = lat.get(port, max(lat.values(), default=0))
    src = float_latency(source) if getattr(source, "stage", None) == "float" else 0
    return max(0, int(total) - src)
