"""Seeded random graphs, valid by construction, for round-trip and differential tests.

* :func:`random_float_graph` mixes every generic kind (Input, Output, the eight generic neuron
  kinds, Dense, Sparse, Conv2d, Conv1d, SumPool2d, AvgPool2d, Flatten, Scale, Delay) with scalar
  and per-neuron (``Ref``) parameters, one to three inputs and one or more outputs;
* :func:`random_loihi_graph` builds a ``quantized``-stage graph of Loihi native kinds
  (``LoihiCompartment``, ``LoihiDense``, ``LoihiSparse``) with legal integer weights.

Both are deterministic: the same seed gives an equal graph (``Graph.__eq__``) on every machine
(numpy's ``default_rng`` stream is stable for the calls used here).

Rules they keep (what "valid" means for the verifier and the interpreters):

* every edge joins an out_shape to an equal in_shape; a connection, Delay or Output has exactly
  one incoming edge; neurons sum any number of incoming edges; Input nodes have none;
* a source is always a node created earlier, so the only cycles are the recurrent loops
  ``h -> connection -> Delay -> h`` (float; every delay element >= 1) or
  ``h -> LoihiDense/LoihiSparse -> h`` (native connections always have ``delay >= 1``);
* every population that feeds nothing gets an Output, so no node dangles;
* parameters respect their declared bounds (``ir.nodes.spec``), element by element for arrays;
* Loihi weights are integers, multiples of ``node.weight_step`` inside ``node.weight_range``;
  a readout (non-spiking) compartment feeds only Outputs.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, fields
from typing import Any

import numpy as np

from ir.errors import IRError
from ir.graph import Graph, GraphBuilder, Stage
from ir.nodes import (
    IF,
    LI,
    LIF,
    AdaptiveLIF,
    AvgPool2d,
    Conv1d,
    Conv2d,
    CubaLI,
    CubaLIF,
    Delay,
    Dense,
    Flatten,
    Input,
    Integrator,
    Output,
    Ref,
    Scale,
    Sparse,
    SumPool2d,
    Threshold,
)

__all__ = ["random_float_graph", "random_loihi_graph", "LOIHI_TARGET"]

LOIHI_TARGET = "loihi-mini"
"""The target profile named in ``attrs["target"]`` of :func:`random_loihi_graph` graphs."""

# Ranges of realistic values for the float neuron parameters (seconds for time constants).
_FLOAT_RANGES: dict[str, tuple[float, float]] = {
    "tau_mem": (2e-3, 5e-2),
    "tau_syn": (1e-3, 2e-2),
    "tau_adapt": (2e-2, 5e-1),
    "v_threshold": (0.25, 2.0),
    "beta_adapt": (0.0, 1.5),
    "v_leak": (-0.2, 0.2),
    "r": (0.5, 2.0),
    "w_in": (0.5, 2.0),
    "v_reset": (-0.5, 0.2),
}
_NEURON_KINDS = (IF, LIF, CubaLIF, AdaptiveLIF, LI, CubaLI, Integrator, Threshold)
_RESETS = ("zero", "subtract", "v_reset")
_DUMMY = Ref("_")  # stands for the weights of a probe node (built only to read weight_step)


class _Float:
    """Builder state of one random float graph."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng([seed, 0x6E6D63])  # 'nmc': a stream of our own
        self.seed = seed
        rng = self.rng
        dt = float(rng.choice([1e-3, 5e-4, 1e-4])) if rng.random() < 0.7 else float(
            rng.uniform(1e-4, 2e-3)
        )
        attrs: dict[str, Any] = {}
        if rng.random() < 0.5:
            attrs = {"generator": "ir.random_graphs.random_float_graph", "seed": int(seed)}
            if rng.random() < 0.5:
                attrs["provenance"] = {
                    "rule": str(rng.choice(["surrogate gradient", "ann-to-snn", "stdp"])),
                    "accuracy": float(rng.random()),
                    "epochs": int(rng.integers(1, 100)),
                    "tags": ["random", None, True],
                }
        self.b = GraphBuilder(f"rand_float_{seed}", dt=dt, attrs=attrs)
        self.count = 0
        self.order: dict[str, int] = {}  # creation index of each node
        self.sources: list[tuple[str, tuple[int, ...]]] = []  # (name, out shape) usable as source
        self.neurons: list[tuple[str, tuple[int, ...]]] = []
        self.used: set[str] = set()

    # ---- helpers --------------------------------------------------------------------------
    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def add(self, node: Any, *sources: str) -> str:
        self.order[node.name] = len(self.order)
        self.used.update(sources)
        return self.b.add(node, *sources)

    def floats(self, shape: tuple[int, ...], lo: float, hi: float) -> np.ndarray:
        dtype = np.float32 if self.rng.random() < 0.7 else np.float64
        return self.rng.uniform(lo, hi, size=shape).astype(dtype)

    def param(self, owner: str, fname: str, shape: tuple[int, ...], lo: float, hi: float) -> Any:
        """A scalar (float, sometimes an int) or a per-neuron Ref with values in [lo, hi]."""
        rng = self.rng
        u = rng.random()
        if u < 0.3:
            return self.b.const(f"{owner}.{fname}", self.floats(shape, lo, hi))
        if u < 0.4 and math.ceil(lo) <= math.floor(hi):
            # An int scalar: the text must keep it an int (1, not 1.0).
            return int(rng.integers(math.ceil(lo), math.floor(hi) + 1))
        return float(rng.uniform(lo, hi))

    # ---- neurons --------------------------------------------------------------------------
    def neuron(self, shape: tuple[int, ...], *sources: str) -> str:
        rng = self.rng
        cls = _NEURON_KINDS[int(rng.integers(len(_NEURON_KINDS)))]
        name = self.name("h")
        kw: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in ("name", "shape"):
                continue
            has_default = f.default is not MISSING
            if has_default and rng.random() < 0.4:
                continue  # keep the default (exercises the printer's omission rule)
            if f.name == "reset":
                kw["reset"] = str(rng.choice(_RESETS))
                continue
            lo, hi = _FLOAT_RANGES[f.name]
            if cls is Threshold and f.name == "v_threshold":
                lo, hi = -0.5, 1.0  # Threshold admits any threshold
            kw[f.name] = self.param(name, f.name, shape, lo, hi)
        self.add(cls(name=name, shape=shape, **kw), *sources)
        self.sources.append((name, shape))
        self.neurons.append((name, shape))
        return name

    # ---- connections ----------------------------------------------------------------------
    def dense(self, src: str, n: int, m: int) -> str:
        rng = self.rng
        name = self.name("fc")
        w = self.b.const(f"{name}.weight", (rng.standard_normal((m, n)) / math.sqrt(n)).astype(
            np.float32 if rng.random() < 0.8 else np.float64))
        bias = self.b.const(f"{name}.bias", self.floats((m,), -0.1, 0.1)) if rng.random() < 0.4 else None
        return self.add(Dense(name=name, in_features=n, out_features=m, weight=w, bias=bias), src)

    def sparse(self, src: str, n: int, m: int) -> str:
        rng = self.rng
        name = self.name("sp")
        nnz = int(rng.integers(1, n * m + 1)) if n * m <= 64 else int(rng.integers(1, 65))
        flat = np.sort(rng.choice(n * m, size=nnz, replace=False))
        itype = np.int64 if rng.random() < 0.5 else np.int32
        rows = self.b.const(f"{name}.rows", (flat // n).astype(itype))
        cols = self.b.const(f"{name}.cols", (flat % n).astype(itype))
        vals = self.b.const(f"{name}.values", rng.standard_normal(nnz).astype(np.float32))
        bias = self.b.const(f"{name}.bias", self.floats((m,), -0.1, 0.1)) if rng.random() < 0.3 else None
        return self.add(
            Sparse(name=name, in_features=n, out_features=m, rows=rows, cols=cols, values=vals,
                   bias=bias), src,
        )

    def scale(self, src: str, shape: tuple[int, ...]) -> str:
        name = self.name("sc")
        factor = self.param(name, "factor", shape, -2.0, 2.0)
        return self.add(Scale(name=name, shape=shape, factor=factor), src)

    def delay(self, src: str, shape: tuple[int, ...], least: int) -> str:
        rng = self.rng
        name = self.name("dl")
        if rng.random() < 0.4:
            arr = rng.integers(least, 4, size=shape).astype(np.int64 if rng.random() < 0.5 else np.int32)
            d: Any = self.b.const(f"{name}.delay", arr)
        else:
            d = int(rng.integers(least, 4))
        return self.add(Delay(name=name, shape=shape, delay=d), src)

    def conv2d(self, src: str, shape: tuple[int, ...]) -> str:
        rng = self.rng
        c, h, w = shape
        name = self.name("cv")
        groups = int(rng.choice([g for g in (1, 2, 3) if c % g == 0])) if rng.random() < 0.3 else 1
        out_c = groups * int(rng.integers(1, 3))
        for _ in range(20):
            kernel = (int(rng.integers(1, min(h, 3) + 1)), int(rng.integers(1, min(w, 3) + 1)))
            stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
            padding = (int(rng.integers(0, 2)), int(rng.integers(0, 2)))
            dilation = (1, 1) if rng.random() < 0.8 else (2, 2)
            weight = self.b.const(
                f"{name}.weight",
                (rng.standard_normal((out_c, c // groups, *kernel)) * 0.5).astype(np.float32),
            )
            bias = self.b.const(f"{name}.bias", self.floats((out_c,), -0.1, 0.1)) if rng.random() < 0.3 else None
            try:
                node = Conv2d(name=name, input_shape=shape, out_channels=out_c, kernel=kernel,
                              stride=stride, padding=padding, dilation=dilation, groups=groups,
                              weight=weight, bias=bias)
            except IRError:
                # Does not fit: drop the constants just made and draw again.
                self.b.constants.pop(weight.name)
                if bias is not None:
                    self.b.constants.pop(bias.name)
                continue
            return self.add(node, src)
        raise AssertionError("unreachable: a 1x1 kernel always fits")  # pragma: no cover

    def conv1d(self, src: str, shape: tuple[int, ...]) -> str:
        rng = self.rng
        c, n = shape
        name = self.name("cv")
        groups = int(rng.choice([g for g in (1, 2, 3) if c % g == 0])) if rng.random() < 0.3 else 1
        out_c = groups * int(rng.integers(1, 3))
        kernel = int(rng.integers(1, min(n, 4) + 1))
        stride = int(rng.integers(1, 3))
        padding = int(rng.integers(0, 2))
        dilation = 1 if rng.random() < 0.8 or (n + 2 * padding - 2 * (kernel - 1) - 1) < 0 else 2
        weight = self.b.const(
            f"{name}.weight", (rng.standard_normal((out_c, c // groups, kernel)) * 0.5).astype(np.float32)
        )
        bias = self.b.const(f"{name}.bias", self.floats((out_c,), -0.1, 0.1)) if rng.random() < 0.3 else None
        return self.add(
            Conv1d(name=name, input_shape=shape, out_channels=out_c, kernel=kernel, stride=stride,
                   padding=padding, dilation=dilation, groups=groups, weight=weight, bias=bias),
            src,
        )

    def pool(self, src: str, shape: tuple[int, ...]) -> str:
        rng = self.rng
        c, h, w = shape
        cls = SumPool2d if rng.random() < 0.5 else AvgPool2d
        name = self.name("pl")
        kernel = (int(rng.integers(1, min(h, 3) + 1)), int(rng.integers(1, min(w, 3) + 1)))
        stride = None if rng.random() < 0.5 else (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        # PyTorch's rule: padding at most half the kernel.
        padding = (int(rng.integers(0, kernel[0] // 2 + 1)), int(rng.integers(0, kernel[1] // 2 + 1)))
        return self.add(cls(name=name, input_shape=shape, kernel=kernel, stride=stride,
                            padding=padding), src)

    def flatten(self, src: str, shape: tuple[int, ...]) -> str:
        return self.add(Flatten(name=self.name("fl"), input_shape=shape), src)

    def layer(self, src: str, shape: tuple[int, ...]) -> None:
        """A connection chain from ``src`` and the population it feeds."""
        rng = self.rng
        if len(shape) == 1:
            n = shape[0]
            m = int(rng.integers(1, 33))
            u = rng.random()
            if u < 0.45:
                last, out = self.dense(src, n, m), (m,)
            elif u < 0.75:
                last, out = self.sparse(src, n, m), (m,)
            elif u < 0.9:
                last, out = self.scale(src, shape), shape
            else:
                last, out = self.delay(src, shape, 0), shape
        elif len(shape) == 3:
            u = rng.random()
            if u < 0.4:
                last = self.conv2d(src, shape)
            elif u < 0.7:
                last = self.pool(src, shape)
            elif u < 0.85:
                fl = self.flatten(src, shape)
                n = math.prod(shape)
                last = self.dense(fl, n, int(rng.integers(1, 17))) if rng.random() < 0.6 else fl
            else:
                last = self.scale(src, shape)
            out = self.b.nodes[last].out_shape
        else:
            u = rng.random()
            if u < 0.6:
                last = self.conv1d(src, shape)
            elif u < 0.8:
                last = self.flatten(src, shape)
            else:
                last = self.scale(src, shape)
            out = self.b.nodes[last].out_shape
        # A delay in front of the population (what quantize turns into a native delay).
        if self.b.nodes[last].kind != "Delay" and rng.random() < 0.15:
            last = self.delay(last, out, 0)
        self.neuron(out, last)

    def merge(self) -> None:
        """A second input into an existing 1-D population from an earlier 1-D source."""
        rng = self.rng
        targets = [(n, s) for n, s in self.neurons if len(s) == 1]
        if not targets:
            return
        tgt, (m,) = targets[int(rng.integers(len(targets)))]
        srcs = [(n, s) for n, s in self.sources
                if len(s) == 1 and self.order[n] < self.order[tgt]]
        if not srcs:
            return
        src, (n,) = srcs[int(rng.integers(len(srcs)))]
        conn = self.dense(src, n, m) if rng.random() < 0.5 else self.sparse(src, n, m)
        self.b.connect(conn, tgt)

    def recurrent(self) -> None:
        """A loop ``h -> connection -> Delay (every element >= 1) -> h``."""
        rng = self.rng
        h, shape = self.neurons[int(rng.integers(len(self.neurons)))]
        if len(shape) == 1:
            n = shape[0]
            conn = self.dense(h, n, n) if rng.random() < 0.5 else self.sparse(h, n, n)
        else:
            conn = self.scale(h, shape)
        dl = self.delay(conn, shape, 1)
        self.b.connect(dl, h)

    def build(self) -> Graph:
        rng = self.rng
        for _ in range(1 if rng.random() < 0.7 else int(rng.integers(2, 4))):
            u = rng.random()
            if u < 0.5:
                shape: tuple[int, ...] = (int(rng.integers(1, 33)),)
            elif u < 0.8:
                shape = (int(rng.integers(1, 4)), int(rng.integers(3, 9)), int(rng.integers(3, 9)))
            else:
                shape = (int(rng.integers(1, 4)), int(rng.integers(4, 13)))
            name = self.name("in")
            self.add(Input(name=name, shape=shape))
            self.sources.append((name, shape))
        # Every input feeds a layer; then a few more layers from any source, unused ones first.
        for name, shape in list(self.sources):
            self.layer(name, shape)
        for _ in range(int(rng.integers(0, 5))):
            unused = [s for s in self.sources if s[0] not in self.used]
            pool = unused if unused and rng.random() < 0.6 else self.sources
            src, shape = pool[int(rng.integers(len(pool)))]
            self.layer(src, shape)
        if rng.random() < 0.3:
            self.merge()
        if rng.random() < 0.4:
            self.recurrent()
        outs = [n for n, _ in self.neurons if n not in self.used]
        extra = [n for n, _ in self.neurons if n in self.used and rng.random() < 0.15]
        for k, n in enumerate(outs + extra):
            self.add(Output(name=f"out{k}", shape=self.b.nodes[n].out_shape), n)
        return self.b.build()


def random_float_graph(seed: int) -> Graph:
    """A valid random float-stage graph (see the module doc for the rules it keeps).

    Populations have at most a few hundred neurons, so the float interpreter runs one in
    milliseconds per step.
    """
    return _Float(int(seed)).build()


# ------------------------------------------------------------------------------------------
# Loihi
# ------------------------------------------------------------------------------------------
def _pop_size(rng: np.random.Generator) -> int:
    """1..300 neurons, log-uniform: mostly small populations, some that span several cores."""
    return int(min(300, math.floor(math.exp(rng.uniform(0.0, math.log(301))))))


class _Loihi:
    def __init__(self, seed: int):
        from ir.native.loihi import LoihiCompartment, LoihiDense, LoihiSparse

        self.Comp, self.Dense, self.Sparse = LoihiCompartment, LoihiDense, LoihiSparse
        self.rng = np.random.default_rng([seed, 0x4C6F69])  # 'Loi'
        self.b = GraphBuilder(
            f"rand_loihi_{seed}", dt=1e-3, stage=Stage.QUANTIZED,
            attrs={"target": LOIHI_TARGET},
        )
        self.count = 0
        self.sources: list[tuple[str, int]] = []  # spiking sources: Inputs and populations
        self.inputs: list[tuple[str, int]] = []
        self.pops: list[tuple[str, int]] = []
        self.used: set[str] = set()

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def int_param(self, owner: str, fname: str, n: int, lo: int, hi: int) -> Any:
        rng = self.rng
        if rng.random() < 0.25:
            return self.b.const(f"{owner}.{fname}", rng.integers(lo, hi + 1, size=n).astype(np.int32))
        return int(rng.integers(lo, hi + 1))

    def synapses(self, src: str, n_in: int, n_out: int, *, recurrent: bool = False) -> str:
        """A LoihiDense or LoihiSparse from ``src`` with legal weights."""
        rng = self.rng
        sign = str(rng.choice(["mixed", "mixed", "excitatory", "inhibitory"]))
        bits = 8 if rng.random() < 0.6 else int(rng.integers(1, 9))
        common: dict[str, Any] = dict(in_features=n_in, out_features=n_out)
        if rng.random() < 0.5:
            common["sign_mode"] = sign
        if bits != 8:
            common["num_weight_bits"] = bits
        if rng.random() < 0.4:
            common["weight_exp"] = int(rng.integers(-3, 5))
        if recurrent or rng.random() < 0.4:
            common["delay"] = int(rng.integers(1, 6)) if rng.random() < 0.9 else int(rng.integers(6, 64))
        # Build once without weights to learn the legal step and range from the node itself.
        sparse = rng.random() < 0.4
        cls = self.Sparse if sparse else self.Dense
        name = self.name("syn")
        probe = cls(name=name, **common, **(
            dict(rows=_DUMMY, cols=_DUMMY, values=_DUMMY) if sparse else dict(weight=_DUMMY)
        ))
        step = probe.weight_step
        lo, hi = probe.weight_range
        k_lo, k_hi = -((-lo) // step), hi // step  # ceil(lo/step), floor(hi/step)
        density = float(rng.uniform(0.05, 1.0))
        if sparse:
            total = n_in * n_out
            nnz = max(1, min(total, int(round(density * total))))
            flat = np.sort(rng.choice(total, size=nnz, replace=False))
            vals = (rng.integers(k_lo, k_hi + 1, size=nnz) * step).astype(np.int32)
            refs = dict(
                rows=self.b.const(f"{name}.rows", (flat // n_in).astype(np.int32)),
                cols=self.b.const(f"{name}.cols", (flat % n_in).astype(np.int32)),
                values=self.b.const(f"{name}.values", vals),
            )
        else:
            w = rng.integers(k_lo, k_hi + 1, size=(n_out, n_in)) * step
            w[rng.random((n_out, n_in)) >= density] = 0
            refs = dict(weight=self.b.const(f"{name}.weight", w.astype(np.int32)))
        node = cls(name=name, **common, **refs)
        self.b.add(node, src)
        self.used.add(src)
        return name

    def population(self, n: int, *, readout: bool) -> str:
        rng = self.rng
        name = self.name("pop")
        kw: dict[str, Any] = dict(
            du=self.int_param(name, "du", n, 0, 4095),
            dv=self.int_param(name, "dv", n, 0, 4095),
            vth_mant=self.int_param(name, "vth_mant", n, 1, 2 ** int(rng.integers(4, 13))),
        )
        if rng.random() < 0.3:
            kw["bias_mant"] = self.int_param(name, "bias_mant", n, -200, 200)
            kw["bias_exp"] = self.int_param(name, "bias_exp", n, 0, 7)
        if rng.random() < 0.3:
            kw["refractory"] = int(rng.integers(0, 6))
        if readout:
            kw["readout"] = True
        self.b.add(self.Comp(name=name, shape=(n,), **kw))
        self.pops.append((name, n))
        if not readout:
            self.sources.append((name, n))
        return name

    def build(self) -> Graph:
        rng = self.rng
        for _ in range(int(rng.integers(1, 3))):
            name, n = self.name("in"), _pop_size(rng)
            self.b.add(Input(name=name, shape=(n,)))
            self.sources.append((name, n))
            self.inputs.append((name, n))
        n_pops = int(rng.integers(1, 5))
        for k in range(n_pops):
            n = _pop_size(rng)
            readout = k == n_pops - 1 and rng.random() < 0.3
            srcs = list(self.sources)  # only nodes made earlier: no zero-delay cycle
            pop = self.population(n, readout=readout)
            unused = [s for s in srcs if s[0] not in self.used]
            first = unused[0] if unused else srcs[int(rng.integers(len(srcs)))]
            picks = [first]
            if rng.random() < 0.3 and len(srcs) > 1:
                picks.append(srcs[int(rng.integers(len(srcs)))])
            for src, n_in in picks:
                self.b.connect(self.synapses(src, n_in, n), pop)
            if not readout and rng.random() < 0.3:
                self.b.connect(self.synapses(pop, n, n, recurrent=True), pop)
        # Inputs left unused (several inputs, few populations) feed the first population.
        first_pop, n0 = self.pops[0]
        for src, n_in in [s for s in self.inputs if s[0] not in self.used]:
            self.b.connect(self.synapses(src, n_in, n0), first_pop)
        outs = [p for p, _ in self.pops if p not in self.used]
        extra = [p for p, _ in self.pops if p in self.used and rng.random() < 0.2]
        for k, p in enumerate(outs + extra):
            self.b.add(Output(name=f"out{k}", shape=self.b.nodes[p].out_shape), p)
        return self.b.build()



def random_loihi_graph(seed: int) -> Graph:
    """A valid random quantized-stage graph of Loihi native kinds (``attrs["target"]`` is
    :data:`LOIHI_TARGET`); 1 to 300 neurons per population, so some span several small cores.
    Weights are int32 arrays of legal values; recurrent connections are allowed since every
    native connection has ``delay >= 1``."""
    return _Loihi(int(seed)).build()
