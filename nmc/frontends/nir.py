"""NIR import and export (https://neuroir.org; the ``nir`` package, extra ``nmc[nir]``).

NIR describes neurons in continuous time and stores neither the time step nor how a framework steps
its equations, so the importer takes them as options and says which it assumed (a warning):

``dt`` (default 1e-3 s)
    The simulation step.
``discretization`` (default ``"euler"``)
    How the training framework stepped the ODEs. snnTorch, Norse, Sinabs, Rockpool and Lava step
    ``tau dx/dt = -x + drive`` with forward Euler, ``x += dt/tau (drive - x)``. nmc's IR is exact
    for a held input (``x = a x + (1 - a) drive``, ``a = exp(-dt/tau)``), so an Euler model imports
    with ``tau_ir = -dt / ln(1 - dt/tau)`` and the same ``r``: the two step identically. ``"exact"``
    keeps ``tau`` as it is. ``dt/tau > 1`` (an unstable Euler step) is refused; ``dt/tau == 1`` (no
    memory) imports with ``tau_ir = dt/1000``, whose decay factor is exactly 0.0 in float64.
``reset`` (default: NIR's rule, reset to ``v_reset``)
    ``"zero"`` or ``"subtract"`` override it (many frameworks subtract the threshold).

IF and Integrator (``I``) are taken per step, ``v += r I`` (as frameworks run them), not
``v += dt r I``. NIR's spike condition is ``v > v_threshold``; the IR's is ``v >= v_threshold``
(identical for float data except on exact ties).

Recurrent edges that close a cycle without a Delay get a one-step Delay (the frameworks use the
previous step's spikes there), with a warning naming them. Nested NIR graphs are flattened; their
nodes are named ``<graph>_<node>``.

Export (:func:`to_nir`) writes float graphs one to one and Loihi-native graphs as the float NIR graph
that steps the same way with Euler (units: one integer membrane step is 1/4096), so a user can
simulate the chip-constrained network in snnTorch or Norse.
"""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ir.errors import FrontendError, IRError, NmcError, NmcWarning
from ir.graph import Graph, GraphBuilder, Stage
from ir.nodes import (
    IF,
    LI,
    LIF,
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
    SumPool2d,
    Threshold,
)

DEFAULT_DT = 1e-3
DISCRETIZATIONS = ("euler", "exact")


def _nir():
    try:
        import nir
    except ImportError:
        raise FrontendError(
            "reading NIR needs the 'nir' package: pip install 'nmc[nir]'"
        ) from None
    return nir


def load_nir(path: str | Path, *, dt: float | None = None, reset: str | None = None,
             discretization: str = "euler") -> Graph:
    """Read a ``.nir`` file into a float-stage graph (see the module doc for the options)."""
    _nir()  # a missing nir package is reported here, not in the reading process
    path = Path(path)
    if not path.is_file():
        raise FrontendError(f"{path}: no such file")
    from nmc.resources import call_with_deadline

    # The HDF5 library can spin forever on a damaged file: read it in a child process that is
    # killed at the deadline (nmc.resources.call_with_deadline), then convert here.
    g, type_check_error = call_with_deadline(_read_file, path,
                                             what=f"{path}: reading the HDF5 file")
    if type_check_error is not None:
        warnings.warn(
            f"{path.name}: the nir package's type check failed ({type_check_error}); read "
            "without it — shapes are inferred from the parameters instead",
            NmcWarning, stacklevel=2,
        )
    try:
        return from_nir(g, dt=dt, reset=reset, discretization=discretization, name=path.stem)
    except NmcError as e:
        # from_nir names the node; the file is named here (the graph object has no file).
        from ir.errors import ResourceError

        cls = ResourceError if isinstance(e, ResourceError) else FrontendError
        raise cls(f"{path}: {e}") from None


def _read_file(path: Path) -> tuple[Any, str | None]:
    """``nir.read`` of ``path`` with its checks (runs in the reading process): the graph, and
    the type-check error when the graph only reads without nir's type check."""
    from nmc.resources import check_hdf5

    nir = _nir()
    try:
        # nir.read loads every dataset into memory: refuse a file that declares more than the
        # memory limit (a chunked dataset can declare terabytes in a few kilobytes) first.
        check_hdf5(path, str(path))
    except OSError as e:
        raise FrontendError(f"{path}: not a readable NIR file ({_h5_reason(e)})") from None
    _check_structure(path)
    try:
        return nir.read(str(path)), None
    except Exception as first:  # noqa: BLE001 - nir raises many kinds; we retry without checks
        try:
            return nir.read(str(path), type_check=False), str(first)
        except Exception as e:  # noqa: BLE001
            raise FrontendError(f"{path}: not a readable NIR file ({type(e).__name__}: {e})") \
                from None


def _check_structure(path: Path) -> None:
    """What nir.read would otherwise trip over with an assertion or a KeyError: the ``/node``
    group, and a node type the nir package knows for every node (nested graphs included)."""
    import h5py

    nir = _nir()
    known = {name for name in dir(nir) if isinstance(getattr(nir, name), type)
             and issubclass(getattr(nir, name), nir.NIRNode) and name != "NIRNode"}
    problems: list[str] = []
    try:
        with h5py.File(path, "r") as f:
            if not isinstance(f.get("node"), h5py.Group):
                raise FrontendError(f"{path}: no /node group: not a NIR file (NIR keeps the graph "
                                    "under /node)")

            def visit(name: str, obj) -> None:
                parts = name.split("/")
                if not isinstance(obj, h5py.Dataset) or problems:
                    return
                if parts[-1] == "type" and len(parts) >= 3 and parts[-3] == "nodes":
                    v = obj[()]
                    t = v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                    if t not in known:
                        problems.append(f"/node/{name}: node type {t!r} is not a NIR node type "
                                        f"(known: {', '.join(sorted(known))})")
                elif parts[-1] == "edges" and obj.size and (obj.ndim != 2 or obj.shape[1] != 2):
                    problems.append(f"/node/{name}: shape {list(obj.shape)}; expected one "
                                    "[source, target] pair of node names per row")

            f["node"].visititems(visit)
    except (OSError, RuntimeError, ValueError, KeyError, TypeError):
        return  # a damaged file: nir.read says so below
    if problems:
        raise FrontendError(f"{path}: {problems[0]}")


def _h5_reason(e: OSError) -> str:
    """Why HDF5 could not open a file, in one short clause."""
    text = str(e)
    if "file signature not found" in text:
        return "not an HDF5 file"
    if "truncated file" in text:
        return "the HDF5 file is truncated"
    return text.splitlines()[0] if text else "a damaged HDF5 file"


# ------------------------------------------------------------------------------------------
# import
# ------------------------------------------------------------------------------------------
def _ident(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_]", "_", str(name))
    return s if re.match(r"^[A-Za-z_]", s) else "n_" + s


def _flatten_graph(g: Any, prefix: str = "") -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Nested NIRGraphs -> one level. Edges into a subgraph go to its Input node(s), edges out of
    it leave from its Output node(s); ``sub.x`` names a subgraph's node x."""
    nir = _nir()
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    subs: dict[str, tuple[list[str], list[str]]] = {}
    for name, node in g.nodes.items():
        full = f"{prefix}{name}"
        if isinstance(node, nir.NIRGraph):
            sn, se = _flatten_graph(node, prefix=f"{full}.")
            ins = [f"{full}.{k}" for k, v in node.nodes.items() if isinstance(v, nir.Input)]
            outs = [f"{full}.{k}" for k, v in node.nodes.items() if isinstance(v, nir.Output)]
            nodes.update(sn)
            edges.extend(se)
            subs[full] = (ins, outs)
        else:
            nodes[full] = node
    for edge in _edge_list(g, prefix):
        a, b = f"{prefix}{edge[0]}", f"{prefix}{edge[1]}"
        srcs = subs[a][1] if a in subs else [a]
        dsts = subs[b][0] if b in subs else [b]
        if len(srcs) != 1 or len(dsts) != 1:
            raise FrontendError(
                f"NIR edge {a} -> {b}: a subgraph with several inputs/outputs must be addressed "
                "as <graph>.<node>"
            )
        edges.append((srcs[0], dsts[0]))
    # Subgraph Input/Output nodes become pass-throughs: drop them, joining their edges.
    if prefix == "":
        for ins, outs in subs.values():
            for port in ins + outs:
                preds = [a for a, b in edges if b == port]
                succs = [b for a, b in edges if a == port]
                edges = [(a, b) for a, b in edges if port not in (a, b)]
                edges.extend((p, s) for p in preds for s in succs)
                nodes.pop(port, None)
    return nodes, edges


def _edge_list(g: Any, prefix: str) -> list[tuple[str, str]]:
    """The graph's edges as (source, target) names, checked: a file can hold anything there."""
    edges = []
    raw = g.edges if g.edges is not None else []
    where = f"NIR graph{' ' + prefix.rstrip('.') if prefix else ''}"
    try:
        items = list(raw)
    except TypeError:
        raise FrontendError(f"{where}: edges must be a list of [source, target] pairs, got "
                            f"{_short(raw)}") from None
    for e in items:
        pair = [x.decode() if isinstance(x, bytes) else x for x in np.asarray(e, dtype=object)
                .reshape(-1).tolist()] if not isinstance(e, str | bytes) else [e]
        if len(pair) != 2 or not all(isinstance(x, str) for x in pair):
            raise FrontendError(f"{where}: edge {_short(e)} is not a [source, target] pair of "
                                "node names")
        for x in pair:
            if x not in g.nodes:
                raise FrontendError(
                    f"{where}: edge {pair[0]} -> {pair[1]} names {x!r}, which is not a node; "
                    f"nodes: {', '.join(map(str, g.nodes)) or 'none'}"
                )
        edges.append((pair[0], pair[1]))
    return edges


class _BadValue(Exception):
    """A NIR field whose value has the wrong type or form; ``_node`` names the node."""


def _short(x: Any) -> str:
    text = repr(x.tolist() if isinstance(x, np.ndarray) else x)
    return text if len(text) <= 60 else text[:57] + "..."


def _arr(x: Any, field: str = "a parameter") -> np.ndarray:
    """``x`` as a float64 array; anything but real numbers is refused (numpy would turn a
    complex number into its real part and a string into an error deep inside the import)."""
    a = np.asarray(x.decode() if isinstance(x, bytes) else x)
    if a.dtype.kind not in "biuf":
        raise _BadValue(f"{field} must be real numbers, got {_short(x)}")
    return a.astype(np.float64)


def _ints(x: Any, field: str) -> tuple[int, ...]:
    """``x`` (a number or an array) as a tuple of Python ints; integral finite values only."""
    a = np.atleast_1d(_arr(x, field)).reshape(-1)
    if not np.all(np.isfinite(a)) or np.any(a != np.round(a)) or np.any(np.abs(a) > 2**62):
        raise _BadValue(f"{field} must be integers, got {_short(x)}")
    return tuple(int(v) for v in a.tolist())


def _shape_of(t: Any, field: str = "shape") -> tuple[int, ...] | None:
    if t is None:
        return None
    v = t.get("input", t.get("output")) if isinstance(t, dict) else t
    if v is None and isinstance(t, dict) and t:
        v = next(iter(t.values()))
    if v is None:
        return None
    shp = _ints(v, field)
    if any(s <= 0 for s in shp):
        raise _BadValue(f"{field} {list(shp)} must have axis lengths >= 1")
    return shp or None


class _Importer:
    def __init__(self, g: Any, dt: float, reset: str | None, discretization: str, name: str):
        if not (isinstance(dt, float | int) and math.isfinite(dt) and dt > 0):
            raise FrontendError(f"NIR import: dt = {dt!r} must be a positive number of seconds")
        if discretization not in DISCRETIZATIONS:
            raise FrontendError(
                f"NIR import: discretization {discretization!r} is not one of "
                f"{', '.join(DISCRETIZATIONS)}"
            )
        if reset not in (None, "zero", "subtract"):
            raise FrontendError(f"NIR import: reset {reset!r} is not one of zero, subtract")
        self.dt = float(dt)
        self.reset = reset
        self.disc = discretization
        self.b = GraphBuilder(_ident(name), dt=self.dt, attrs={"provenance": {
            "format": "nir", "dt_assumed": self.dt, "discretization": discretization,
            "reset": reset or "v_reset"}})
        self.nodes, self.edges = _flatten_graph(g)
        self.names: dict[str, str] = {}
        taken: set[str] = set()
        for n in self.nodes:
            base = _ident(n)
            cand, k = base, 1
            while cand in taken:
                cand, k = f"{base}_{k}", k + 1
            taken.add(cand)
            self.names[n] = cand
        self.nir = _nir()

    # --- helpers --------------------------------------------------------------------------
    def where(self, n: str) -> str:
        return f"NIR node {n!r} ({type(self.nodes[n]).__name__})"

    def param(self, n: str, field: str, value: Any, shape: tuple[int, ...]) -> float | Ref:
        a = _arr(value, field)
        if not np.all(np.isfinite(a)):
            raise FrontendError(f"{self.where(n)}: {field} has NaN or infinite values")
        if a.size == 1:
            return float(a.reshape(-1)[0])
        if a.shape != shape and a.size == math.prod(shape):
            a = a.reshape(shape)
        if np.all(a == a.reshape(-1)[0]):
            return float(a.reshape(-1)[0])
        return self.b.const(f"{self.names[n]}.{field}", a)

    def tau(self, n: str, field: str, tau: Any, shape) -> float | Ref:
        """NIR tau -> IR tau for the chosen discretization (see the module doc)."""
        t = _arr(tau, field)
        if np.any(~np.isfinite(t)) or np.any(t <= 0):
            raise FrontendError(f"{self.where(n)}: {field} must be finite and > 0, got {t.min()}")
        if self.disc == "exact":
            return self.param(n, field, t, shape)
        ratio = self.dt / t
        if np.any(ratio > 1 + 1e-12):
            raise FrontendError(
                f"{self.where(n)}: {field} = {t.min():g} s is shorter than dt = {self.dt:g} s, so "
                "a forward-Euler step is unstable; pass the framework's --dt or "
                "discretization='exact'"
            )
        with np.errstate(divide="ignore"):
            out = np.where(ratio >= 1 - 1e-12, self.dt / 1000.0, -self.dt / np.log1p(-ratio))
        return self.param(n, field, out, shape)

    def reset_of(self, n: str, v_reset: Any, shape) -> tuple[str, float | Ref]:
        if self.reset == "subtract":
            return "subtract", 0.0
        if self.reset == "zero":
            return "zero", 0.0
        vr = _arr(v_reset if v_reset is not None else 0.0, "v_reset")
        if np.all(vr == 0):
            return "zero", 0.0
        return "v_reset", self.param(n, "v_reset", vr, shape)

    # --- conversion -----------------------------------------------------------------------
    def convert(self) -> Graph:
        nir = self.nir
        order = self._order()
        out_shape: dict[str, tuple[int, ...]] = {}
        created: dict[str, str] = {}  # nir name -> IR node whose output stands for it
        recurrent = self._back_edges(order)
        for n in order:
            node = self.nodes[n]
            preds = [a for a, b in self.edges if b == n]
            in_shape = None
            for p in preds:
                if p in out_shape:
                    in_shape = out_shape[p]
                    break
            irname = self.names[n]
            if isinstance(node, nir.Identity) if hasattr(nir, "Identity") else False:
                out_shape[n] = in_shape
                created[n] = None  # resolved through edges below
                continue
            irnode = self._node(n, node, irname, in_shape)
            if irnode.category in ("neuron", "io"):
                from nmc.resources import check_neurons

                check_neurons(math.prod(irnode.out_shape), f"{self.where(n)}: shape "
                              f"{list(irnode.out_shape)}", fix="check the node's shape")
            self.b.add(irnode)
            created[n] = irname
            out_shape[n] = irnode.out_shape
        # edges (identity nodes are short-circuited)
        def resolve_src(a: str) -> list[str]:
            if created.get(a) is not None:
                return [created[a]]
            return [s for p, q in self.edges if q == a for s in resolve_src(p)]

        added = []
        for a, b in self.edges:
            if created.get(b) is None:
                continue
            for src in resolve_src(a):
                if (a, b) in recurrent:
                    d = self.b.add(Delay(name=f"{src}_to_{created[b]}_delay",
                                         shape=self.b.nodes[src].out_shape, delay=1))
                    self.b.connect(src, d)
                    src = d
                    added.append(f"{a} -> {b}")
                self.b.connect(src, created[b])
        if added:
            warnings.warn(
                f"NIR graph has recurrent edges without a delay ({', '.join(added)}); "
                "inserted a one-step Delay on each (the previous step's spikes, as frameworks do)",
                NmcWarning, stacklevel=3,
            )
        g = self.b.build()
        # Connection nodes take one input: several NIR edges into one Affine would be summed.
        for name, node in g.nodes.items():
            if node.category == "connection" and len(g.predecessors(name)) > 1:
                raise FrontendError(
                    f"NIR node {name}: {len(g.predecessors(name))} edges into one "
                    f"{node.kind}; nmc needs one source per connection (split it into one "
                    "connection per source)"
                )
        from ir.verify import verify

        try:
            verify(g)
        except IRError as e:
            raise FrontendError(f"NIR graph {g.name} imports into an invalid graph: {e}") from e
        return g

    def _order(self) -> list[str]:
        """Nodes from the inputs along edges, breadth first (deterministic)."""
        seen: list[str] = []
        frontier = [n for n, v in self.nodes.items() if isinstance(v, self.nir.Input)]
        frontier += [n for n in self.nodes if not any(b == n for _, b in self.edges)
                     and n not in frontier]
        while frontier:
            n = frontier.pop(0)
            if n in seen:
                continue
            seen.append(n)
            frontier.extend(b for a, b in self.edges if a == n and b not in seen)
        seen += [n for n in self.nodes if n not in seen]
        return seen

    def _back_edges(self, order: list[str]) -> set[tuple[str, str]]:
        """Edges that close a cycle with no NIR Delay on it (found by depth-first search)."""
        succ: dict[str, list[str]] = {n: [] for n in self.nodes}
        for a, b in self.edges:
            succ[a].append(b)
        state: dict[str, int] = {}
        back: set[tuple[str, str]] = set()

        def visit(u: str) -> None:
            stack = [(u, iter(succ[u]))]
            state[u] = 1
            while stack:
                node, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    state[node] = 2
                    stack.pop()
                elif state.get(nxt) == 1:
                    back.add((node, nxt))
                elif nxt not in state:
                    state[nxt] = 1
                    stack.append((nxt, iter(succ[nxt])))

        for n in order:
            if n not in state:
                visit(n)
        nir = self.nir
        return {(a, b) for a, b in back
                if not isinstance(self.nodes[a], nir.Delay) and not isinstance(self.nodes[b], nir.Delay)}

    def _node(self, n: str, node: Any, name: str, in_shape):  # noqa: C901 - one branch per kind
        nir = self.nir
        try:
            if isinstance(node, nir.Input):
                shape = _shape_of(node.input_type) or in_shape
                if shape is None:
                    raise FrontendError(f"{self.where(n)}: input shape unknown")
                return Input(name=name, shape=shape)
            if isinstance(node, nir.Output):
                shape = in_shape or _shape_of(node.output_type)
                if shape is None:
                    raise FrontendError(f"{self.where(n)}: no edge into this output")
                return Output(name=name, shape=shape)
            if isinstance(node, nir.Affine | nir.Linear):
                w = _arr(node.weight, "weight")
                if w.ndim != 2:
                    raise FrontendError(f"{self.where(n)}: weight must be 2-D, got {list(w.shape)}")
                bias = getattr(node, "bias", None)
                bref = None
                if bias is not None and np.any(_arr(bias, "bias") != 0):
                    bref = self.b.const(f"{name}.bias", _arr(bias, "bias").reshape(-1))
                return Dense(name=name, in_features=w.shape[1], out_features=w.shape[0],
                             weight=self.b.const(f"{name}.weight", w), bias=bref)
            if isinstance(node, nir.Scale):
                s = _arr(node.scale, "scale")
                shape = tuple(s.shape) or in_shape
                return Scale(name=name, shape=shape, factor=self.param(n, "factor", s, shape))
            if isinstance(node, nir.CubaLIF):
                shape = tuple(_arr(node.v_threshold, "v_threshold").shape) or in_shape
                mode, vr = self.reset_of(n, node.v_reset, shape)
                return CubaLIF(
                    name=name, shape=shape, tau_syn=self.tau(n, "tau_syn", node.tau_syn, shape),
                    tau_mem=self.tau(n, "tau_mem", node.tau_mem, shape),
                    v_threshold=self.param(n, "v_threshold", node.v_threshold, shape),
                    v_leak=self.param(n, "v_leak", node.v_leak, shape),
                    r=self.param(n, "r", node.r, shape), w_in=self.param(n, "w_in", node.w_in, shape),
                    v_reset=vr, reset=mode,
                )
            if isinstance(node, nir.CubaLI):
                shape = tuple(_arr(node.v_leak, "v_leak").shape) or in_shape
                return CubaLI(
                    name=name, shape=shape, tau_syn=self.tau(n, "tau_syn", node.tau_syn, shape),
                    tau_mem=self.tau(n, "tau_mem", node.tau_mem, shape),
                    v_leak=self.param(n, "v_leak", node.v_leak, shape),
                    r=self.param(n, "r", node.r, shape), w_in=self.param(n, "w_in", node.w_in, shape),
                )
            if isinstance(node, nir.LIF):
                shape = tuple(_arr(node.v_threshold, "v_threshold").shape) or in_shape
                mode, vr = self.reset_of(n, node.v_reset, shape)
                return LIF(
                    name=name, shape=shape, tau_mem=self.tau(n, "tau_mem", node.tau, shape),
                    v_threshold=self.param(n, "v_threshold", node.v_threshold, shape),
                    v_leak=self.param(n, "v_leak", node.v_leak, shape),
                    r=self.param(n, "r", node.r, shape), v_reset=vr, reset=mode,
                )
            if isinstance(node, nir.LI):
                shape = tuple(_arr(node.v_leak, "v_leak").shape) or in_shape
                return LI(name=name, shape=shape, tau_mem=self.tau(n, "tau_mem", node.tau, shape),
                          v_leak=self.param(n, "v_leak", node.v_leak, shape),
                          r=self.param(n, "r", node.r, shape))
            if isinstance(node, nir.IF):
                shape = tuple(_arr(node.v_threshold, "v_threshold").shape) or in_shape
                mode, vr = self.reset_of(n, node.v_reset, shape)
                return IF(name=name, shape=shape,
                          v_threshold=self.param(n, "v_threshold", node.v_threshold, shape),
                          r=self.param(n, "r", node.r, shape), v_reset=vr, reset=mode)
            if isinstance(node, nir.I):
                shape = tuple(_arr(node.r, "r").shape) or in_shape
                return Integrator(name=name, shape=shape, r=self.param(n, "r", node.r, shape))
            if isinstance(node, nir.Threshold):
                shape = tuple(_arr(node.threshold, "threshold").shape) or in_shape
                return Threshold(name=name, shape=shape,
                                 v_threshold=self.param(n, "v_threshold", node.threshold, shape))
            if isinstance(node, nir.Conv2d):
                return self._conv2d(n, node, name, in_shape)
            if isinstance(node, nir.Conv1d):
                return self._conv1d(n, node, name, in_shape)
            if isinstance(node, nir.SumPool2d | nir.AvgPool2d):
                if in_shape is None or len(in_shape) != 3:
                    raise FrontendError(f"{self.where(n)}: needs a (C, H, W) input, got {in_shape}")
                cls = SumPool2d if isinstance(node, nir.SumPool2d) else AvgPool2d
                return cls(name=name, input_shape=in_shape,
                           kernel=_pair(node.kernel_size, "kernel_size"),
                           stride=_pair(node.stride, "stride"),
                           padding=_pair(node.padding, "padding"))
            if isinstance(node, nir.Flatten):
                shape = in_shape or _shape_of(node.input_type)
                if shape is None:
                    raise FrontendError(f"{self.where(n)}: input shape unknown")
                return Flatten(name=name, input_shape=shape)
            if isinstance(node, nir.Delay):
                d = _arr(node.delay, "delay")
                steps = d / self.dt
                if np.any(np.abs(steps - np.round(steps)) > 1e-6):
                    warnings.warn(f"{self.where(n)}: delays are not whole steps of dt = {self.dt}; "
                                  "rounded", NmcWarning, stacklevel=4)
                steps = np.round(steps).astype(np.int64)
                shape = tuple(d.shape) or in_shape
                val = int(steps.reshape(-1)[0]) if np.all(steps == steps.reshape(-1)[0]) else \
                    self.b.const(f"{name}.delay", steps.reshape(shape))
                return Delay(name=name, shape=shape, delay=val)
        except (IRError, _BadValue) as e:
            raise FrontendError(f"{self.where(n)}: {e}") from None
        raise FrontendError(f"{self.where(n)}: node type {type(node).__name__} is not supported")

    def _conv2d(self, n, node, name, in_shape):
        w = _arr(node.weight, "weight")
        if w.ndim != 4:
            raise FrontendError(f"{self.where(n)}: weight must be 4-D, got {list(w.shape)}")
        groups = _int(node.groups, "groups")
        cin = w.shape[1] * groups
        spatial = _ints(node.input_shape, "input_shape") if \
            node.input_shape is not None else (tuple(in_shape[1:]) if in_shape else None)
        if spatial is None or len(spatial) != 2:
            raise FrontendError(f"{self.where(n)}: input size unknown")
        kernel = (w.shape[2], w.shape[3])
        dil = _pair(node.dilation, "dilation")
        pad = _padding(node.padding, kernel, dil, self.where(n))
        bref = self._conv_bias(n, node, name, w.shape[0])
        return Conv2d(name=name, input_shape=(cin, *spatial), out_channels=w.shape[0],
                      kernel=kernel, stride=_pair(node.stride, "stride"), padding=pad, dilation=dil,
                      groups=groups, weight=self.b.const(f"{name}.weight", w), bias=bref)

    def _conv1d(self, n, node, name, in_shape):
        w = _arr(node.weight, "weight")
        if w.ndim != 3:
            raise FrontendError(f"{self.where(n)}: weight must be 3-D, got {list(w.shape)}")
        groups = _int(node.groups, "groups")
        length = _ints(node.input_shape, "input_shape")[0] if node.input_shape is not None else \
            (in_shape[1] if in_shape and len(in_shape) > 1 else None)
        if length is None:
            raise FrontendError(f"{self.where(n)}: input length unknown")
        dil = _int(node.dilation, "dilation")
        pad = _padding(node.padding, (w.shape[2],), (dil,), self.where(n))[0]
        bref = self._conv_bias(n, node, name, w.shape[0])
        return Conv1d(name=name, input_shape=(w.shape[1] * groups, length),
                      out_channels=w.shape[0], kernel=w.shape[2],
                      stride=_int(node.stride, "stride"), padding=pad, dilation=dil,
                      groups=groups, weight=self.b.const(f"{name}.weight", w), bias=bref)

    def _conv_bias(self, n, node, name: str, out_channels: int) -> Ref | None:
        """The bias of a convolution: one per output channel (or one for all)."""
        if node.bias is None:
            return None
        bias = _arr(node.bias, "bias").reshape(-1)
        if bias.size not in (1, out_channels):
            raise _BadValue(f"bias has {bias.size} values, expected {out_channels} (one per "
                            "output channel)")
        if not np.all(np.isfinite(bias)):
            raise _BadValue("bias has NaN or infinite values")
        if not np.any(bias != 0):
            return None
        return self.b.const(f"{name}.bias", np.broadcast_to(bias, (out_channels,)).copy())


def _int(x: Any, field: str) -> int:
    """One integer: a number or a one-element array (NIR stores scalars both ways)."""
    v = _ints(x, field)
    if len(v) < 1:
        raise _BadValue(f"{field} must be an integer, got {_short(x)}")
    return v[0]


def _pair(x: Any, field: str = "a size") -> tuple[int, int]:
    a = _ints(x, field)
    if len(a) not in (1, 2):
        raise _BadValue(f"{field} must be one or two integers, got {_short(x)}")
    return (a[0], a[0]) if len(a) == 1 else (a[0], a[1])


def _padding(p: Any, kernel: tuple, dil: tuple, where: str) -> tuple[int, ...]:
    if isinstance(p, bytes):
        p = p.decode()
    if isinstance(p, str):
        if p == "valid":
            return tuple(0 for _ in kernel)
        if p == "same":
            total = [d * (k - 1) for k, d in zip(kernel, dil, strict=True)]
            if any(t % 2 for t in total):
                raise FrontendError(f"{where}: padding 'same' with an even kernel is asymmetric; "
                                    "pad explicitly")
            return tuple(t // 2 for t in total)
        raise FrontendError(f"{where}: padding {p!r} is not 'same', 'valid' or a number")
    a = list(_ints(p, "padding"))
    if len(a) not in (1, len(kernel)):
        raise _BadValue(f"padding must be one integer or {len(kernel)}, got {_short(p)}")
    return tuple(a * len(kernel)) if len(a) == 1 else tuple(a)


def from_nir(g: Any, *, dt: float | None = None, reset: str | None = None,
             discretization: str = "euler", name: str = "nir") -> Graph:
    """Convert an in-memory ``nir.NIRGraph`` into a float-stage graph (see the module doc)."""
    assumed = []
    if dt is None:
        dt = DEFAULT_DT
        assumed.append(f"dt = {DEFAULT_DT} s (pass --dt)")
    if reset is None:
        assumed.append("reset to v_reset as NIR states (pass --reset subtract if your framework "
                       "subtracts)")
    assumed.append(f"{discretization} stepping of the neuron equations")
    warnings.warn("NIR does not store the time step or the reset rule; assumed "
                  + "; ".join(assumed), NmcWarning, stacklevel=2)
    return _Importer(g, dt, reset, discretization, name).convert()


# ------------------------------------------------------------------------------------------
# export
# ------------------------------------------------------------------------------------------
def _tau_out(graph: Graph, node, field: str, disc: str) -> np.ndarray:
    tau = graph.param(node, field)
    if disc == "exact":
        return np.array(tau, dtype=np.float64)
    a = np.exp(-graph.dt / tau)
    return graph.dt / (1.0 - a)


def to_nir(graph: Graph, *, discretization: str = "euler") -> Any:
    """A ``nir.NIRGraph`` equivalent to ``graph`` (float stage, or quantized Loihi-native)."""
    nir = _nir()
    if graph.stage != Stage.FLOAT:
        graph = native_to_float(graph)
    nodes: dict[str, Any] = {}

    def p(node, f):
        return np.array(graph.param(node, f), dtype=np.float64)

    for name, node in graph.nodes.items():
        k = node.kind
        if k == "Input":
            nodes[name] = nir.Input(input_type={"input": np.array(node.shape)})
        elif k == "Output":
            nodes[name] = nir.Output(output_type={"output": np.array(node.shape)})
        elif k == "Dense":
            w = np.array(graph.const(node.weight), dtype=np.float64)
            if node.bias is not None:
                nodes[name] = nir.Affine(weight=w, bias=np.array(graph.const(node.bias), np.float64))
            else:
                nodes[name] = nir.Linear(weight=w)
        elif k == "Sparse":
            w = np.zeros((node.out_features, node.in_features))
            np.add.at(w, (graph.const(node.rows), graph.const(node.cols)), graph.const(node.values))
            if node.bias is not None:
                nodes[name] = nir.Affine(weight=w, bias=np.array(graph.const(node.bias), np.float64))
            else:
                nodes[name] = nir.Linear(weight=w)
        elif k in ("LIF", "CubaLIF", "IF") and node.reset == "subtract":
            raise NmcError(f"node {name}: NIR cannot express reset by subtraction; export loses it "
                           "— re-import with --reset subtract")
        elif k == "LIF":
            nodes[name] = nir.LIF(tau=_tau_out(graph, node, "tau_mem", discretization),
                                  r=p(node, "r"), v_leak=p(node, "v_leak"),
                                  v_threshold=p(node, "v_threshold"), v_reset=p(node, "v_reset"))
        elif k == "CubaLIF":
            nodes[name] = nir.CubaLIF(
                tau_syn=_tau_out(graph, node, "tau_syn", discretization),
                tau_mem=_tau_out(graph, node, "tau_mem", discretization), r=p(node, "r"),
                v_leak=p(node, "v_leak"), v_threshold=p(node, "v_threshold"),
                v_reset=p(node, "v_reset"), w_in=p(node, "w_in"))
        elif k == "IF":
            nodes[name] = nir.IF(r=p(node, "r"), v_threshold=p(node, "v_threshold"),
                                 v_reset=p(node, "v_reset"))
        elif k == "LI":
            nodes[name] = nir.LI(tau=_tau_out(graph, node, "tau_mem", discretization),
                                 r=p(node, "r"), v_leak=p(node, "v_leak"))
        elif k == "CubaLI":
            nodes[name] = nir.CubaLI(tau_syn=_tau_out(graph, node, "tau_syn", discretization),
                                     tau_mem=_tau_out(graph, node, "tau_mem", discretization),
                                     r=p(node, "r"), v_leak=p(node, "v_leak"), w_in=p(node, "w_in"))
        elif k == "Integrator":
            nodes[name] = nir.I(r=p(node, "r"))
        elif k == "Threshold":
            nodes[name] = nir.Threshold(threshold=p(node, "v_threshold"))
        elif k == "Scale":
            nodes[name] = nir.Scale(scale=p(node, "factor"))
        elif k == "Delay":
            nodes[name] = nir.Delay(delay=np.array(graph.param(node, "delay")) * graph.dt)
        elif k == "Flatten":
            nodes[name] = nir.Flatten(input_type={"input": np.array(node.input_shape)},
                                      start_dim=0, end_dim=-1)
        elif k == "Conv2d":
            b = graph.const(node.bias) if node.bias is not None else np.zeros(node.out_channels)
            nodes[name] = nir.Conv2d(
                input_shape=tuple(node.input_shape[1:]),
                weight=np.array(graph.const(node.weight), np.float64), stride=node.stride,
                padding=node.padding, dilation=node.dilation, groups=node.groups,
                bias=np.array(b, np.float64))
        elif k == "Conv1d":
            b = graph.const(node.bias) if node.bias is not None else np.zeros(node.out_channels)
            nodes[name] = nir.Conv1d(
                input_shape=node.input_shape[1], weight=np.array(graph.const(node.weight), np.float64),
                stride=node.stride, padding=node.padding, dilation=node.dilation,
                groups=node.groups, bias=np.array(b, np.float64))
        elif k in ("SumPool2d", "AvgPool2d"):
            cls = nir.SumPool2d if k == "SumPool2d" else nir.AvgPool2d
            nodes[name] = cls(kernel_size=np.array(node.kernel),
                              stride=np.array(node.effective_stride), padding=np.array(node.padding))
        else:
            raise NmcError(f"node {name}: kind {k} has no NIR export")
    return nir.NIRGraph(nodes=nodes, edges=[list(e) for e in graph.edges], type_check=False)


def save_nir(graph: Graph, path: str | Path, *, discretization: str = "euler") -> Path:
    """Write ``graph`` as a .nir file (atomically)."""
    nir = _nir()
    from nmc.fileio import atomic_path

    path = Path(path)
    g = to_nir(graph, discretization=discretization)
    with atomic_path(path) as tmp:
        nir.write(str(tmp), g)
    return path


def native_to_float(graph: Graph) -> Graph:
    """The float graph that steps like a Loihi-native one (units: integer v / 4096).

    ``u`` decays by ``(4095 - du)/4096`` and gains ``a << 6`` from weights ``w << (6 + e)``;
    ``v`` decays by ``(4096 - dv)/4096``, gains ``u`` and the bias; it spikes above
    ``vth_mant << 6``. In float, with the IR's exact stepping, that is a CubaLIF with
    ``exp(-dt/tau_syn) = (4095 - du)/4096`` (``du = 4095``: no memory) and
    ``exp(-dt/tau_mem) = (4096 - dv)/4096`` (``dv = 0``: an IF neuron), ``w_in`` and ``r`` set so
    the gains are one, weights ``w * 2**(6 + e) / 4096``, and threshold ``(vth_mant << 6) / 4096``
    (the integer rule spikes on ``>``, the float one on ``>=``; they differ only on exact ties).
    The integer rounding of the decays is not reproduced: the float graph is the ideal the chip
    approximates. A non-zero bias needs ``du = 4095`` (it is then an input bias); otherwise it is
    refused.
    """
    if graph.attrs.get("target") is None or not any(
        n.family == "loihi" for n in graph.nodes.values()
    ):
        raise NmcError(
            "NIR export of a quantized graph is implemented for the loihi family; export the "
            "float graph (before quantize) for other families"
        )
    dt = graph.dt
    b = GraphBuilder(graph.name, dt=dt, attrs={"provenance": {"exported_from": graph.attrs.get(
        "target")}})
    unit = 4096.0
    bias_of: dict[str, np.ndarray] = {}
    for name, node in graph.nodes.items():
        if node.kind == "LoihiCompartment":
            du = graph.param(node, "du")
            dv = graph.param(node, "dv")
            bias = graph.param(node, "bias_mant") * (2.0 ** graph.param(node, "bias_exp"))
            if np.any(bias != 0) and np.any(du != 4095):
                raise NmcError(f"node {name}: a bias with du != 4095 has no NIR equivalent")
            if np.any(bias != 0):
                bias_of[name] = bias / unit
            keep_u = (4095.0 - du) / 4096.0
            keep_v = (4096.0 - dv) / 4096.0
            tau_syn = np.where(keep_u <= 0, dt / 1000.0, -dt / np.log(np.maximum(keep_u, 1e-300)))
            thr = graph.param(node, "vth_mant") * 64.0 / unit
            w_in = 1.0 / np.where(keep_u <= 0, 1.0, 1.0 - keep_u)
            if node.readout:
                tau_mem = np.where(keep_v >= 1, 1e12 * dt, -dt / np.log(keep_v))
                r = 1.0 / np.where(keep_v >= 1, 1.0 - np.exp(-dt / tau_mem), 1.0 - keep_v)
                b.add(CubaLI(name=name, shape=node.shape, tau_syn=_c(b, name, "tau_syn", tau_syn),
                             tau_mem=_c(b, name, "tau_mem", tau_mem), r=_c(b, name, "r", r),
                             w_in=_c(b, name, "w_in", w_in)))
            elif np.all(keep_v >= 1) and np.all(keep_u <= 0):
                b.add(IF(name=name, shape=node.shape, v_threshold=_c(b, name, "v_threshold", thr)))
            else:
                tau_mem = np.where(keep_v >= 1, 1e12 * dt, -dt / np.log(keep_v))
                r = 1.0 / (1.0 - np.exp(-dt / tau_mem))
                b.add(CubaLIF(name=name, shape=node.shape, tau_syn=_c(b, name, "tau_syn", tau_syn),
                              tau_mem=_c(b, name, "tau_mem", tau_mem),
                              v_threshold=_c(b, name, "v_threshold", thr), r=_c(b, name, "r", r),
                              w_in=_c(b, name, "w_in", w_in)))
        elif node.kind in ("LoihiDense", "LoihiSparse"):
            scale = 2.0 ** (6 + node.weight_exp) / unit
            if node.kind == "LoihiDense":
                w = np.array(graph.const(node.weight), dtype=np.float64) * scale
            else:
                w = np.zeros((node.out_features, node.in_features))
                np.add.at(w, (graph.const(node.rows), graph.const(node.cols)),
                          np.asarray(graph.const(node.values), np.float64) * scale)
            b.add(Dense(name=name, in_features=node.in_features, out_features=node.out_features,
                        weight=b.const(f"{name}.weight", w)))
        elif node.category in ("io",) or node.kind == "Flatten":
            b.add(node)
        else:
            raise NmcError(f"node {name}: kind {node.kind} has no float equivalent for NIR export")
    edges = list(graph.edges)
    # Native synapses delay by `delay` steps; float connections are instantaneous, so insert a
    # Delay node after each synapse to keep the timing.
    for name, node in graph.nodes.items():
        if node.kind in ("LoihiDense", "LoihiSparse"):
            d = b.add(Delay(name=f"{name}_delay", shape=(node.out_features,), delay=node.delay))
            edges = [(d if a == name else a, c) for a, c in edges]
            edges.append((name, d))
    # Biases go onto the first synapse into the population (as Affine biases).
    for pop, bias in bias_of.items():
        src = next((a for a, c in edges if c == pop and graph.nodes.get(a) is None), None)
        conn = next((a for a, c in graph.edges if c == pop), None)
        if conn is None or src is None:
            raise NmcError(f"node {pop}: a bias on a population without inputs has no NIR form")
        old = b.nodes[conn]
        b.nodes[conn] = Dense(name=old.name, in_features=old.in_features,
                              out_features=old.out_features, weight=old.weight,
                              bias=b.const(f"{conn}.bias", bias.reshape(-1)))
    b.edges = edges
    return b.build()


def _c(b: GraphBuilder, node: str, field: str, value: np.ndarray) -> float | Ref:
    a = np.asarray(value, dtype=np.float64)
    if a.size and np.all(a == a.reshape(-1)[0]):
        return float(a.reshape(-1)[0])
    return b.const(f"{node}.{field}", a)
