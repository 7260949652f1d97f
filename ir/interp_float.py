"""The float reference interpreter: kernels of the generic kinds and :func:`run_float`.

Each kernel implements the update equation stated in the docstring of its kind in ``ir.nodes``
(module doc there: zero-order hold, ``s[t] = v[t] >= threshold``, reset in the same step after the
spike decision, reset modes ``zero`` / ``subtract`` / ``v_reset``). Arithmetic is float64, every
kernel works on a whole batch ``(B, *shape)`` at once, and a neuron with no incoming edge gets
``I[t] = 0``. Spiking kinds output spikes as float64 0.0 / 1.0 (so connections downstream can
multiply them); non-spiking kinds (LI, CubaLI, Integrator) output their membrane state ``v``.

Kernels never change an array they have returned (state is rebuilt each step), because the engine
keeps the returned arrays as the step's outputs.

Probe variables (``RunResult.probes[node][var]``): ``v`` for every neuron kind with a membrane,
``i`` (synaptic current) for CubaLIF and CubaLI, ``b`` (adaptation) for AdaptiveLIF; ``out`` is
always the node's output.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ir.errors import NmcError
from ir.graph import Graph, Stage
from ir.interp import Kernel, RunResult, kernel, normalise_inputs, run
from ir.nodes import Node, Ref


def param(graph: Graph, node: Node, fname: str) -> np.ndarray:
    """Field ``fname`` of ``node`` as a float64 array of the node's output shape.

    A number applies to every neuron; a Ref names an array that is one value (any shape of size 1)
    or broadcasts to the node's shape (one value per neuron), as the verifier requires.
    """
    v = getattr(node, fname)
    a = np.asarray(graph.const(v) if isinstance(v, Ref) else v, dtype=np.float64)
    if a.size == 1:
        a = a.reshape(())
    return np.broadcast_to(a, node.out_shape)


def _decay(graph: Graph, node: Node, fname: str) -> tuple[np.ndarray, np.ndarray]:
    """``(alpha, 1 - alpha)`` with ``alpha = exp(-dt / tau)`` for the time constant ``fname``.
    ``1 - alpha`` is computed as ``-expm1(-dt/tau)``: exact to the last bit for tau >> dt."""
    x = -graph.dt / param(graph, node, fname)
    return np.exp(x), -np.expm1(x)


class _FloatKernel(Kernel):
    """Common helpers: input as float64 ``(B, *in_shape)``; parameters by name."""

    def p(self, fname: str) -> np.ndarray:
        return param(self.graph, self.node, fname)

    def inp(self, x: np.ndarray | None) -> np.ndarray:
        if x is None:
            return np.zeros((self.batch, *self.node.in_shape))
        return np.asarray(x, dtype=np.float64).reshape((self.batch, *self.node.in_shape))


# ------------------------------------------------------------------------------------------
# Neurons
# ------------------------------------------------------------------------------------------
class _SpikingKernel(_FloatKernel):
    """Spike decision and reset shared by the spiking kinds with a membrane ``v``."""

    def __init__(self, node: Node, graph: Graph, batch: int):
        super().__init__(node, graph, batch)
        self.v_threshold = self.p("v_threshold")
        self.v_reset = self.p("v_reset")
        self.v = self.zeros()

    def fire(self, v: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """``s = v >= theta``; store the reset membrane in ``self.v`` (same step, after the
        decision): zero -> 0, subtract -> v - v_threshold, v_reset -> v_reset. Returns s (0/1)."""
        s = v >= theta
        mode = self.node.reset
        if mode == "zero":
            self.v = np.where(s, 0.0, v)
        elif mode == "subtract":
            self.v = v - np.where(s, self.v_threshold, 0.0)
        else:  # "v_reset" (the node's constructor admits no other value)
            self.v = np.where(s, self.v_reset, v)
        return s.astype(np.float64)

    def state(self) -> dict[str, np.ndarray]:
        return {"v": self.v}


@kernel("IF")
class IFKernel(_SpikingKernel):
    """``v[t] = v[t-1] + r I[t]``; ``s[t] = v[t] >= v_threshold``; reset."""

    def __init__(self, node: Node, graph: Graph, batch: int):
        super().__init__(node, graph, batch)
        self.r = self.p("r")

    def step(self, x: np.ndarray | None) -> np.ndarray:
        return self.fire(self.v + self.r * self.inp(x), self.v_threshold)


@kernel("LIF")
class LIFKernel(_SpikingKernel):
    """``v[t] = v_leak + a (v[t-1] - v_leak) + (1 - a) r I[t]``, ``a = exp(-dt/tau_mem)``;
    ``s[t] = v[t] >= v_threshold``; reset."""

    def __init__(self, node: Node, graph: Graph, batch: int):
        super().__init__(node, graph, batch)
        self.a, self.gain = _decay(graph, node, "tau_mem")
        self.gain = self.gain * self.p("r")
        self.v_leak = self.p("v_leak")

    def step(self, x: np.ndarray | None) -> np.ndarray:
        v = self.v_leak + self.a * (self.v - self.v_leak) + self.gain * self.inp(x)
        return self.fire(v, self.v_threshold)


@kernel("CubaLIF")
class CubaLIFKernel(_SpikingKernel):
    """``i[t] = b i[t-1] + (1 - b) w_in I[t]``;
    ``v[t] = v_leak + a (v[t-1] - v_leak) + (1 - a) r i[t]``; spike and reset of v (i is never
    reset). ``b = exp(-dt/tau_syn)``, ``a = exp(-dt/tau_mem)``."""

    def __init__(self, node: Node, graph: Graph, batch: int):
        super().__init__(node, graph, batch)
        self.b, gi = _decay(graph, node, "tau_syn")
        self.gi = gi * self.p("w_in")
        self.a, gv = _decay(graph, node, "tau_mem")
        self.gv = gv * self.p("r")
        self.v_leak = self.p("v_leak")
        self.i = self.zeros()

    def step(self, x: np.ndarray | None) -> np.ndarray:
        self.i = self.b * self.i + self.gi * self.inp(x)
        v = self.v_leak + self.a * (self.v - self.v_leak) + self.gv * self.i
        return self.fire(v, self.v_threshold)

    def state(self) -> dict[str, np.ndarray]:
        return {"v": self.v, "i": self.i}


@kernel("AdaptiveLIF")
class AdaptiveLIFKernel(_SpikingKernel):
    """``v[t] = v_leak + a (v[t-1] - v_leak) + (1 - a) r I[t]``;
    ``theta[t] = v_threshold + beta_adapt b[t-1]``; ``s[t] = v[t] >= theta[t]``;
    ``b[t] = rho b[t-1] + s[t]``; reset of v (subtract removes ``v_threshold``, not theta).
    ``a = exp(-dt/tau_mem)``, ``rho = exp(-dt/tau_adapt)``."""

    def __init__(self, node: Node, graph: Graph, batch: int):
        super().__init__(node, graph, batch)
        self.a, g = _decay(graph, node, "tau_mem")
        self.gain = g * self.p("r")
        self.rho, _ = _decay(graph, node, "tau_adapt")
        self.beta = self.p("beta_adapt")
        self.v_leak = self.p("v_leak")
        self.b = self.zeros()

    def step(self, x: np.ndarray | None) -> np.ndarray:
        v = self.v_leak + self.a * (self.v - self.v_leak) + self.gain * self.inp(x)
        s = self.fire(v, self.v_threshold + self.beta * self.b)
        self.b = self.rho * self.b + s
        return s

    def state(self) -> dict[str, np.ndarray]:
        return {"v": self.v, "b": self.b}


@kernel("LI")
class LIKernel(_FloatKernel):
    """``v[t] = v_leak + a (v[t-1] - v_leak) + (1 - a) r I[t]``; outputs v."""

    def __init__(self, node: Node, graph: Graph, batch: int):
        super().__init__(node, graph, batch)
        self.a, g = _decay(graph, node, "tau_mem")
        self.gain = g * self.p("r")
        self.v_leak = self.p("v_leak")
        self.v = self.zeros()

    def step(self, x: np.ndarray | None) -> np.ndarray:
        self.v = self.v_leak + self.a * (self.v - self.v_leak) + self.gain * self.inp(x)
        return self.v

    def state(self) -> dict[str, np.ndarray]:
        return {"v": self.v}


@kernel("CubaLI")
class CubaLIKernel(_FloatKernel):
    """``i[t] = b i[t-1] + (1 - b) w_in I[t]``;
    ``v[t] = v_leak + a (v[t-1] - v_leak) + (1 - a) r i[t]``; outputs v."""

    def __init__(self, node: Node, graph: Graph, batch: int):
        super().__init__(node, graph, batch)
        self.b, gi = _decay(graph, node, "tau_syn")
        self.gi = gi * self.p("w_in")
        self.a, gv = _decay(graph, node, "tau_mem")
        self.gv = gv * self.p("r")
        self.v_leak = self.p("v_leak")
        self.i = self.zeros()
        self.v = self.zeros()

    def step(self, x: np.ndarray | None) -> np.ndarray:
        self.i = self.b * self.i + self.gi * self.inp(x)
        self.v = self.v_leak + self.a * (self.v - self.v_leak) + self.gv * self.i
        return self.v

    def state(self) -> dict[str, np.ndarray]:
        return {"v": self.v, "i": self.i}


@kernel("Integrator")
class IntegratorKernel(_FloatKernel):
    """``v[t] = v[t-1] + r I[t]``; outputs v."""

    def __init__(self, node: Node, graph: Graph, batch: int):
        super().__init__(node, graph, batch)
        self.r = self.p("r")
        self.v = self.zeros()

    def step(self, x: np.ndarray | None) -> np.ndarray:
        self.v = self.v + self.r * self.inp(x)
        return self.v

    def state(self) -> dict[str, np.ndarray]:
        return {"v": self.v}


@kernel("Threshold")
class ThresholdKernel(_FloatKernel):
    """``s[t] = I[t] >= v_threshold``: memoryless."""

    def step(self, x: np.ndarray | None) -> np.ndarray:
        return (self.inp(x) >= self.p("v_threshold")).astype(np.float64)


# ------------------------------------------------------------------------------------------
# Connections (instantaneous: output at t from the input at t)
# ------------------------------------------------------------------------------------------
def _bias(graph: Graph, node: Node) -> np.ndarray | float:
    ref = getattr(node, "bias", None)
    return 0.0 if ref is None else np.asarray(graph.const(ref), dtype=np.float64)


def _batched_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for a batch-first ``a``, with every sample's result bitwise independent of the
    batch size.

    A plain ``(B, K) @ (K, N)`` goes to one BLAS gemm whose blocking (and so the rounding of
    the sums) depends on B: a sample's result would change with the batch it is run in. A stacked
    product (an axis of length one per sample) makes numpy call the same kernel with the same
    shapes once per sample, so a batch of B equals B single runs bit for bit (tested).
    """
    if a.ndim == 2:
        return (a[:, None, :] @ b)[:, 0, :]
    return a @ b


@kernel("Dense")
class DenseKernel(_FloatKernel):
    """``y = W x + bias`` with W of shape (out_features, in_features)."""

    def __init__(self, node: Node, graph: Graph, batch: int):
        super().__init__(node, graph, batch)
        w = np.asarray(graph.const(node.weight), dtype=np.float64)
        self.wt = np.ascontiguousarray(w.T)
        self.bias = _bias(graph, node)

    def step(self, x: np.ndarray | None) -> np.ndarray:
        return _batched_matmul(self.inp(x), self.wt) + self.bias


@kernel("Sparse")
class SparseKernel(_FloatKernel):
    """``y[rows[k]] += values[k] * x[cols[k]]`` (duplicate entries add), plus bias.

    Vectorised as one ``bincount`` over the batch: entry k of sample n lands in bin
    ``n * out_features + rows[k]``.
    """

    def __init__(self, node: Node, graph: Graph, batch: int):
        super().__init__(node, graph, batch)
        self.rows = np.asarray(graph.const(node.rows), dtype=np.int64)
        self.cols = np.asarray(graph.const(node.cols), dtype=np.int64)
        self.values = np.asarray(graph.const(node.values), dtype=np.float64)
        n_out = node.out_features
        self.bins = (np.arange(batch)[:, None] * n_out + self.rows[None, :]).ravel()
        self.bias = _bias(graph, node)

    def step(self, x: np.ndarray | None) -> np.ndarray:
        n_out = self.node.out_features
        contrib = self.inp(x)[:, self.cols] * self.values
        y = np.bincount(self.bins, weights=contrib.ravel(), minlength=self.batch * n_out)
        return y.reshape(self.batch, n_out) + self.bias


def _windows(
    x: np.ndarray,
    kernel: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
) -> np.ndarray:
    """Zero-padded sliding windows over the trailing ``len(kernel)`` axes of ``x``.

    For ``x`` of shape ``(B, C, *S)`` returns a read-only view ``(B, C, *O, *K)`` with
    ``O[d] = conv_out_len(S[d], K[d], stride[d], padding[d], dilation[d])``: element
    ``[..., o, k]`` is ``x[..., o * stride - padding + k * dilation]`` (0 outside). No copies
    beyond the padding (stride tricks), so convolution and pooling need no loop over pixels.
    """
    nd = len(kernel)
    pad = [(0, 0)] * (x.ndim - nd) + [(int(p), int(p)) for p in padding]
    xp = np.pad(x, pad) if any(padding) else x
    span = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
    axes = tuple(range(x.ndim - nd, x.ndim))
    w = np.lib.stride_tricks.sliding_window_view(xp, span, axis=axes)
    sl = (
        (Ellipsis,)
        + tuple(slice(None, None, s) for s in stride)
        + tuple(slice(None, None, d) for d in dilation)
    )
    return w[sl]


class _ConvKernel(_FloatKernel):
    """Grouped cross-correlation as one matrix product per sample and group: patches
    ``(P, C/G * prod(k))`` (im2col over the window view, all positions at once) times the weight
    ``(C/G * prod(k), C_out/G)``, where ``P`` is the number of output positions."""

    kernel_size: tuple = ()
    stride: tuple = ()
    padding: tuple = ()
    dilation: tuple = ()

    def __init__(self, node: Node, graph: Graph, batch: int):
        super().__init__(node, graph, batch)
        g = node.groups
        w = np.asarray(graph.const(node.weight), dtype=np.float64)
        # Output channel o belongs to group o // (C_out/G) and reads that group's input channels.
        w = w.reshape(g, node.out_channels // g, -1)  # (G, C_out/G, C/G * prod(k))
        self.wt = np.ascontiguousarray(w.transpose(0, 2, 1))
        b = _bias(graph, node)
        nd = len(self.kernel_size)
        self.bias = b.reshape(-1, *([1] * nd)) if isinstance(b, np.ndarray) else b

    def step(self, x: np.ndarray | None) -> np.ndarray:
        node, g, bsz = self.node, self.node.groups, self.batch
        nd = len(self.kernel_size)
        win = _windows(self.inp(x), self.kernel_size, self.stride, self.padding, self.dilation)
        # win: (B, C, *O, *K) -> (B, G, C/G, *O, *K) -> (B, G, *O, C/G, *K) -> (B, G, P, CK)
        win = win.reshape(bsz, g, -1, *win.shape[2:])
        order = (0, 1, *range(3, 3 + nd), 2, *range(3 + nd, 3 + 2 * nd))
        patches = win.transpose(order).reshape(bsz, g, -1, self.wt.shape[1])
        # One 2-D product per sample and group, all of the same shape: a sample's result cannot
        # depend on the batch it runs in (see _batched_matmul). numpy's stacked matmul would do
        # the same but is an order of magnitude slower for these shapes (numpy 2.4).
        y = np.empty((bsz, g, patches.shape[2], self.wt.shape[2]))
        for n in range(bsz):
            for k in range(g):
                np.matmul(patches[n, k], self.wt[k], out=y[n, k])
        y = y.transpose(0, 1, 3, 2).reshape(bsz, *node.out_shape)
        return y + self.bias


@kernel("Conv2d")
class Conv2dKernel(_ConvKernel):
    """``y[o, i, j] = bias[o] + sum_{c,u,v} W[o, c, u, v] x[g(o) C/groups + c, i sh - ph + u dh,
    j sw - pw + v dw]``, zero padding (PyTorch/NIR cross-correlation)."""

    def __init__(self, node: Node, graph: Graph, batch: int):
        self.kernel_size, self.stride = tuple(node.kernel), tuple(node.stride)
        self.padding, self.dilation = tuple(node.padding), tuple(node.dilation)
        super().__init__(node, graph, batch)


@kernel("Conv1d")
class Conv1dKernel(_ConvKernel):
    """``y[o, i] = bias[o] + sum_{c,u} W[o, c, u] x[g(o) C/groups + c, i s - p + u d]``."""

    def __init__(self, node: Node, graph: Graph, batch: int):
        self.kernel_size, self.stride = (node.kernel,), (node.stride,)
        self.padding, self.dilation = (node.padding,), (node.dilation,)
        super().__init__(node, graph, batch)


@kernel("SumPool2d", "AvgPool2d")
class Pool2dKernel(_FloatKernel):
    """SumPool2d: the sum over each (kh, kw) window per channel, zero padding; AvgPool2d: that sum
    divided by kh*kw (padded zeros count)."""

    def __init__(self, node: Node, graph: Graph, batch: int):
        super().__init__(node, graph, batch)
        kh, kw = node.kernel
        self.scale = 1.0 / (kh * kw) if node.kind == "AvgPool2d" else 1.0

    def step(self, x: np.ndarray | None) -> np.ndarray:
        n = self.node
        win = _windows(self.inp(x), n.kernel, n.effective_stride, n.padding, (1, 1))
        # Taps are added one at a time in a fixed order (a handful of taps, never a loop over
        # pixels): the rounding then cannot depend on how numpy would order a strided reduction.
        kh, kw = n.kernel
        y = win[..., 0, 0].copy()
        for k in range(1, kh * kw):
            y += win[..., k // kw, k % kw]
        return y * self.scale if self.scale != 1.0 else y


@kernel("Scale")
class ScaleKernel(_FloatKernel):
    """``y = factor * x`` element-wise (factor: one value or one per element)."""

    def __init__(self, node: Node, graph: Graph, batch: int):
        super().__init__(node, graph, batch)
        self.factor = self.p("factor")

    def step(self, x: np.ndarray | None) -> np.ndarray:
        return self.factor * self.inp(x)


@kernel("Delay")
class DelayKernel(_FloatKernel):
    """``y[t][k] = x[t - delay[k]][k]``, 0 before the start.

    A ring of the last ``max(delay) + 1`` inputs; element k reads slot ``(t - delay[k]) mod L``.
    When every element's delay is >= 1 the engine treats the node as delayed (``emit`` before the
    step's other nodes, ``push`` after them), which is what lets a Delay close a recurrent loop;
    when some element is 0 it runs as an ordinary ``step`` (write first, then read).
    """

    def __init__(self, node: Node, graph: Graph, batch: int):
        super().__init__(node, graph, batch)
        d = np.asarray(param(graph, node, "delay"), dtype=np.int64)
        self.length = int(d.max()) + 1 if d.size else 1
        self.buf = np.zeros((self.length, batch, *node.shape))
        self.d = d
        self.t = 0

    def _read(self) -> np.ndarray:
        slot = (self.t - self.d) % self.length
        idx = np.broadcast_to(slot, (1, self.batch, *self.d.shape))
        return np.take_along_axis(self.buf, idx, axis=0)[0]

    def _write(self, x: np.ndarray | None) -> None:
        self.buf[self.t % self.length] = self.inp(x)

    def emit(self) -> np.ndarray:
        return self._read()

    def push(self, x: np.ndarray | None) -> None:
        self._write(x)
        self.t += 1

    def step(self, x: np.ndarray | None) -> np.ndarray:
        self._write(x)
        y = self._read()
        self.t += 1
        return y


# ------------------------------------------------------------------------------------------
# Entry point
# ------------------------------------------------------------------------------------------
def run_float(
    graph: Graph, inputs: Any, steps: int | None = None, probes: Sequence[str] = ()
) -> RunResult:
    """Run a float-stage ``graph`` on ``inputs`` with the float kernels.

    ``inputs``: ``(B, T, *shape)`` or ``(T, *shape)`` for a single-input graph, or a dict of such
    arrays by Input name (None for a graph without inputs, with ``steps``). ``steps`` defaults to
    the inputs' length; more steps pad the inputs with zeros. ``probes`` names nodes whose state
    (``v``, ``i``, ``b`` where they exist) and output (``out``) are recorded every step.

    Returns :class:`ir.interp.RunResult`; outputs are float64 ``(B, T, *shape)`` (spikes as 0/1).
    The graph is verified first (``ir.verify.verify``); a graph at another stage, non-numeric or
    non-finite input data raise :class:`ir.errors.NmcError`.
    """
    if graph.stage != Stage.FLOAT:
        raise NmcError(
            f"graph {graph.name} is at stage {graph.stage.value}; the float interpreter runs "
            "float-stage graphs (use ir.interp_int.run_int for quantized graphs)"
        )
    from ir.verify import verify

    verify(graph)
    data, _, t_len = normalise_inputs(graph, inputs, steps)
    for name, a in data.items():
        if a.dtype.kind not in "biuf":
            raise NmcError(f"input {name}: dtype {a.dtype} is not numeric; give spikes or values")
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            bad = np.argwhere(~np.isfinite(a))[0]
            raise NmcError(
                f"input {name}: value {a[tuple(bad)]} at [sample {bad[0]}, step {bad[1]}, index "
                f"{list(map(int, bad[2:]))}] is not finite; inputs must be finite numbers"
            )
    for p in probes:
        if p not in graph.nodes:
            raise NmcError(
                f"probe {p!r}: graph {graph.name} has no node of that name; probes name nodes"
            )
    return run(graph, data, steps=t_len, probes=probes)


__all__ = ["param", "run_float"]
