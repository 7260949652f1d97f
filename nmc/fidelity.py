"""How faithful a quantized graph is to its float original, measured on the same inputs.

The float graph runs in the float reference interpreter (``ir.interp_float.run_float``), the
quantized graph in the integer one (``ir.interp_int.run_int``). They are compared statistically
(the timing convention lets native synapses add a step per layer, so spike trains are not
compared step by step):

* per Output: spike counts over the run for spiking outputs; the time-mean of the value for
  non-spiking readouts (the quantized value divided by the population's scale, recorded by
  quantize);
* ``argmax_agreement``: fraction of samples where both graphs pick the same output neuron (largest
  count or mean; ties go to the lowest index);
* ``correlation``: per output neuron, the Pearson correlation of its count across samples (None
  where either side does not vary), and their mean;
* ``accuracy_float`` / ``accuracy_quant`` when ``labels`` (one class index per sample, scored on
  the first Output) are given.

Both graphs run ``T + shift`` steps, where ``shift`` is the largest number of steps the quantized
graph adds between an input and the Output (the inputs are padded with silence), so late spikes are
counted too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ir.errors import NmcError
from ir.graph import Graph
from ir.interp import normalise_inputs


def latency_shift(quant_graph: Graph) -> dict[str, int]:
    """Per Output, the most steps the quantized graph adds over the float one on any path from an
    input (from the quantize decisions: native delay minus folded float delay per connection)."""
    conns = quant_graph.attrs.get("passes", {}).get("quantize", {}).get("connections", {})
    extra = {n: max(0, int(c["delay"]) - int(c["float_delay"])) for n, c in conns.items()}
    dist = {n.name: 0 for n in quant_graph.inputs}
    # Longest path over the added steps; cycles add nothing (a recurrent float Delay >= 1 keeps
    # its timing), so |nodes| rounds of relaxation suffice.
    for _ in range(len(quant_graph.nodes)):
        changed = False
        for a, b in quant_graph.edges:
            if a in dist:
                d = dist[a] + extra.get(b, 0)
                if d > dist.get(b, -1):
                    dist[b] = d
                    changed = True
        if not changed:
            break
    return {o.name: dist.get(o.name, 0) for o in quant_graph.outputs}


def _source_node(graph: Graph, output: str):
    preds = graph.predecessors(output)
    node = graph.node(preds[0]) if preds else None
    while node is not None and node.kind == "Flatten":
        preds = graph.predecessors(node.name)
        node = graph.node(preds[0]) if preds else None
    return node


def _summary(graph: Graph, output: str, y: np.ndarray, quantized: bool) -> tuple[np.ndarray, str]:
    """(B, N) per-sample summary of one Output: spike counts or the time-mean of the value."""
    node = _source_node(graph, output)
    b = y.shape[0]
    y = np.asarray(y).reshape(b, y.shape[1], -1)
    spiking = node is not None and node.spiking and not getattr(node, "readout", False)
    if spiking:
        return y.astype(bool).sum(axis=1).astype(np.float64), "spikes"
    mean = y.astype(np.float64).mean(axis=1)
    if quantized and node is not None:
        pops = graph.attrs.get("passes", {}).get("quantize", {}).get("populations", {})
        scale = pops.get(node.name, {}).get("scale")
        if scale:
            mean = mean / float(scale)
    return mean, "values"


def _corr(a: np.ndarray, b: np.ndarray) -> float | None:
    if a.size < 2 or np.std(a) == 0 or np.std(b) == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def measure_fidelity(float_graph: Graph, quant_graph: Graph, inputs: Any,
                     labels: Any = None, *, steps: int | None = None) -> dict[str, Any]:
    """Run both graphs on ``inputs`` and compare their outputs (see the module doc).

    Returns a JSON-compatible dict: ``samples``, ``steps``, ``shift`` (per Output),
    ``outputs[name]`` with ``kind``, ``argmax_agreement``, ``correlation`` (per neuron),
    ``mean_correlation``, ``mean_float``, ``mean_quant`` (per neuron, over samples), and at the top
    level ``argmax_agreement`` and ``mean_correlation`` of the first Output, plus
    ``accuracy_float`` and ``accuracy_quant`` when ``labels`` are given.
    """
    from ir.interp_float import run_float  # written by another part of the project
    from ir.interp_int import run_int

    f_out = [o.name for o in float_graph.outputs]
    q_out = [o.name for o in quant_graph.outputs]
    if f_out != q_out:
        raise NmcError(f"the float graph's outputs {f_out} differ from the quantized graph's "
                       f"{q_out}; compare a graph with its own quantized form")
    if not f_out:
        raise NmcError(f"graph {float_graph.name} has no Output to compare")
    _, batch, t_len = normalise_inputs(float_graph, inputs, steps)
    shift = latency_shift(quant_graph)
    total = t_len + max(shift.values(), default=0)
    rf = run_float(float_graph, inputs, steps=total)
    rq = run_int(quant_graph, inputs, steps=total)
    result: dict[str, Any] = dict(samples=int(batch), steps=int(t_len), shift=shift, outputs={})
    for name in f_out:
        sf, kind = _summary(float_graph, name, rf.outputs[name], quantized=False)
        sq, _ = _summary(quant_graph, name, rq.outputs[name], quantized=True)
        agree = float(np.mean(np.argmax(sf, axis=1) == np.argmax(sq, axis=1))) if batch else 0.0
        corr = [_corr(sf[:, k], sq[:, k]) for k in range(sf.shape[1])]
        valid = [c for c in corr if c is not None]
        result["outputs"][name] = dict(
            kind=kind, argmax_agreement=agree, correlation=corr,
            mean_correlation=float(np.mean(valid)) if valid else None,
            mean_float=[float(x) for x in sf.mean(axis=0)],
            mean_quant=[float(x) for x in sq.mean(axis=0)],
        )
    first = result["outputs"][f_out[0]]
    result["argmax_agreement"] = first["argmax_agreement"]
    result["mean_correlation"] = first["mean_correlation"]
    if labels is not None:
        lab = np.asarray(labels).reshape(-1)
        if lab.shape[0] != batch:
            raise NmcError(f"labels: {lab.shape[0]} labels for {batch} samples")
        sf, _ = _summary(float_graph, f_out[0], rf.outputs[f_out[0]], quantized=False)
        sq, _ = _summary(quant_graph, f_out[0], rq.outputs[f_out[0]], quantized=True)
        result["accuracy_float"] = float(np.mean(np.argmax(sf, axis=1) == lab))
        result["accuracy_quant"] = float(np.mean(np.argmax(sq, axis=1) == lab))
    return result


__all__ = ["latency_shift", "measure_fidelity"]
