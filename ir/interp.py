"""The reference interpreter engine shared by the float and the integer interpreters.

It runs a graph step by step over a batch, node by node: deliberately plain, because it *defines*
what a graph means; the emulator is held against it.

Each node kind has a :class:`Kernel` (registered with :func:`kernel`). The float kernels live in
``ir.interp_float``; the integer kernels of each chip family live beside its native kinds in
``ir.native.<family>``.

Order within a step ``t``:

1. every node whose input-to-output delay is >= 1 step ``emit``s its output for ``t`` (it depends
   only on inputs of earlier steps);
2. the other nodes ``step`` in topological order (``Graph.topo_order``): a neuron receives the sum
   of its sources' outputs of this step, any other node its single source's output;
3. every delayed node ``push``es the input it received at ``t``.

Shapes: inputs and results are batch first, ``(B, T, *shape)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ir.errors import IRError, NmcError
from ir.graph import Graph
from ir.nodes import Node


class Kernel:
    """Executes one node over a batch of ``batch`` samples.

    A kernel of a node without delay implements :meth:`step`; a kernel of a node with a delay of
    at least one step implements :meth:`emit` and :meth:`push`. :meth:`state` returns the named
    state variables (each ``(B, *shape)``) for probes.
    """

    def __init__(self, node: Node, graph: Graph, batch: int):
        self.node = node
        self.graph = graph
        self.batch = batch

    def step(self, x: np.ndarray | None) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__}.step")

    def emit(self) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__}.emit")

    def push(self, x: np.ndarray | None) -> None:
        raise NotImplementedError(f"{type(self).__name__}.push")

    def state(self) -> dict[str, np.ndarray]:
        return {}

    def reset(self) -> None:
        """Zero the node's state (a host write between steps, like Lava's ``io.reset.Reset``).

        The default rebuilds the kernel from its node, which zeroes every state variable and
        empties delay lines."""
        self.__init__(self.node, self.graph, self.batch)

    def zeros(self, dtype: Any = np.float64) -> np.ndarray:
        return np.zeros((self.batch, *self.node.out_shape), dtype=dtype)


_KERNELS: dict[str, type[Kernel]] = {}


def kernel(*kinds: str) -> Callable[[type[Kernel]], type[Kernel]]:
    """Class decorator registering a kernel for one or more node kinds."""

    def deco(cls: type[Kernel]) -> type[Kernel]:
        for k in kinds:
            _KERNELS[k] = cls
        return cls

    return deco


def kernel_for(node: Node) -> type[Kernel]:
    _load_kernels()
    try:
        return _KERNELS[node.kind]
    except KeyError:
        raise IRError(
            f"node {node.name}: the interpreter has no kernel for kind {node.kind}"
        ) from None


def _load_kernels() -> None:
    # Import the modules that register kernels (kept lazy: ir.nodes must not import them).
    import ir.interp_float  # noqa: F401
    import ir.native  # noqa: F401


@kernel("Input")
class InputKernel(Kernel):
    """Outputs the given input train at each step."""

    def bind(self, data: np.ndarray) -> None:
        self.data = data
        self.t = 0

    def step(self, x: np.ndarray | None) -> np.ndarray:
        y = self.data[:, self.t]
        self.t += 1
        return y


@kernel("Output", "Flatten")
class PassKernel(Kernel):
    """Output records its source; Flatten reshapes it (C order)."""

    def step(self, x: np.ndarray | None) -> np.ndarray:
        if x is None:
            return self.zeros()
        return x.reshape((self.batch, *self.node.out_shape))


@dataclass
class RunResult:
    """What an interpreter run returns.

    ``outputs[name]``: (B, T, *shape) per Output node; ``probes[node][var]``: (B, T, *shape) per
    probed node and state variable (``"out"`` is the node's output).
    """

    outputs: dict[str, np.ndarray]
    probes: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    steps: int = 0


def normalise_inputs(graph: Graph, inputs: Any, steps: int | None) -> tuple[dict, int, int]:
    """Map ``inputs`` (an array for a single-input graph, or a dict by Input name) to
    {name: (B, T, *shape)} arrays; return them with B and T."""
    ins = graph.inputs
    if not ins:  # a network driven by biases alone (e.g. lava-dl's tinynet input layer)
        if inputs not in (None, {}) and not (isinstance(inputs, Mapping) and not inputs):
            raise NmcError(f"graph {graph.name} has no inputs, but input data was given")
        if steps is None:
            raise NmcError(f"graph {graph.name} has no inputs: give the number of steps")
        return {}, 1, steps
    if not isinstance(inputs, Mapping):
        if len(ins) != 1:
            raise NmcError(
                f"graph {graph.name} has {len(ins)} inputs ({', '.join(n.name for n in ins)}); "
                "pass a dict of arrays by input name"
            )
        inputs = {ins[0].name: inputs}
    out: dict[str, np.ndarray] = {}
    batch = t_len = None
    for node in ins:
        if node.name not in inputs:
            raise NmcError(f"graph {graph.name}: no data for input {node.name}")
        a = np.asarray(inputs[node.name])
        shape = tuple(node.out_shape)
        if a.shape[1:] == shape:  # (T, *shape): a single sample
            a = a[None]
        if a.ndim != len(shape) + 2 or a.shape[2:] != shape:
            raise NmcError(
                f"input {node.name}: array of shape {list(a.shape)} does not match "
                f"(batch, steps, {', '.join(map(str, shape))}) or (steps, {', '.join(map(str, shape))})"
            )
        if batch is None:
            batch, t_len = a.shape[0], a.shape[1]
        elif (a.shape[0], a.shape[1]) != (batch, t_len):
            raise NmcError(f"input {node.name}: batch/steps {a.shape[:2]} differ from other inputs")
        out[node.name] = a
    for extra in sorted(set(inputs) - {n.name for n in ins}):
        raise NmcError(f"graph {graph.name}: no input named {extra!r}")
    if steps is not None:
        if steps < 0:
            raise NmcError(f"steps = {steps} must be >= 0")
        if steps > t_len:  # pad with silence
            out = {
                k: np.concatenate([v, np.zeros((batch, steps - t_len, *v.shape[2:]), v.dtype)], 1)
                for k, v in out.items()
            }
        t_len = steps
    return out, batch, t_len


def run(
    graph: Graph,
    inputs: Any,
    steps: int | None = None,
    probes: Sequence[str] = (),
    kernels: Mapping[str, type[Kernel]] | None = None,
    resets: Mapping[str, Sequence[int]] | None = None,
) -> RunResult:
    """Run ``graph`` for ``steps`` steps (default: the inputs' length) on a batch of inputs.

    ``probes`` names nodes whose state (and output, as ``"out"``) is recorded every step.
    ``kernels`` overrides the kernel class per kind (used by tests). ``resets`` maps node names
    to the steps after which their state is zeroed (host-side resets between samples).
    """
    data, batch, t_len = normalise_inputs(graph, inputs, steps)
    order = graph.topo_order()
    delayed = [n for n in graph.nodes if graph.min_delay(graph.nodes[n]) >= 1]
    undelayed = [n for n in order if n not in set(delayed)]
    for p in probes:
        graph.node(p)  # raises on unknown names
    reset_after: dict[int, list[str]] = {}
    for name, at in (resets or {}).items():
        if graph.node(name).kind == "Input":
            raise NmcError(f"node {name}: an input has no state to reset")
        for t in at:
            reset_after.setdefault(int(t), []).append(name)
    ks: dict[str, Kernel] = {}
    for name, node in graph.nodes.items():
        cls = (kernels or {}).get(node.kind) or kernel_for(node)
        ks[name] = cls(node, graph, batch)
        if node.kind == "Input":
            ks[name].bind(data[name][:, :t_len])  # type: ignore[attr-defined]
    preds = {n: graph.predecessors(n) for n in graph.nodes}
    outputs = {n.name: [] for n in graph.outputs}
    probe_rec: dict[str, dict[str, list]] = {p: {} for p in probes}

    def gathered(name: str, ys: dict[str, np.ndarray]) -> np.ndarray | None:
        srcs = preds[name]
        if not srcs:
            return None
        total = ys[srcs[0]]
        for s in srcs[1:]:
            total = total + ys[s]
        return total

    for _t in range(t_len):
        ys: dict[str, np.ndarray] = {}
        for n in delayed:
            ys[n] = ks[n].emit()
        for n in undelayed:
            ys[n] = ks[n].step(gathered(n, ys))
        for n in delayed:
            ks[n].push(gathered(n, ys))
        for n in outputs:
            outputs[n].append(ys[n])
        for p in probes:
            rec = probe_rec[p]
            rec.setdefault("out", []).append(np.array(ys[p]))
            for var, val in ks[p].state().items():
                rec.setdefault(var, []).append(np.array(val))
        for n in reset_after.get(_t, ()):
            ks[n].reset()

    def stack(frames: list, node: Node) -> np.ndarray:
        if frames:
            return np.stack(frames, axis=1)
        return np.zeros((batch, 0, *node.out_shape))

    return RunResult(
        outputs={n: stack(v, graph.nodes[n]) for n, v in outputs.items()},
        probes={p: {var: np.stack(v, axis=1) for var, v in rec.items()} for p, rec in probe_rec.items()},
        steps=t_len,
    )
