"""IR node kinds: frozen dataclasses checked when built, changed only via ``dataclasses.replace``.

Two layers of kinds, like dialects:

* *generic* kinds (this module): what training frameworks describe (IF, LIF, Dense, Conv2d, ...),
  with float parameters and NIR's names (``tau_mem``, ``v_threshold``, ``r``, ``w_in``, ...);
* *family-native* kinds (``ir.native.<family>``): a chip family's integer parameters, exactly.

A parameter that may differ per neuron is a :data:`Param`: a Python number, or a :class:`Ref`
naming an array in the graph's constant pool (``Graph.constants``). Scalar parameters are checked
here; arrays behind a ``Ref`` are checked by the verifier (``ir.verify``), which knows the pool.

Time is discrete: step ``t`` covers ``[t*dt, (t+1)*dt)``; ``dt`` belongs to the graph. Continuous-time
neuron kinds (LIF, CubaLIF, LI, CubaLI, AdaptiveLIF) are discretised exactly for an input held
constant over a step (zero-order hold), stage by stage::

    alpha = exp(-dt / tau)
    x[t]  = x_rest + alpha * (x[t-1] - x_rest) + (1 - alpha) * drive[t]

so an NIR graph imports one to one. A framework that writes ``v = beta*v + I`` (snnTorch's Leaky)
has the same sub-threshold dynamics with ``tau_mem = -dt/ln(beta)`` and ``r = 1/(1-beta)``
(snnTorch fires on ``v > threshold`` and subtracts the threshold after the next step's decay, so
spike trains can differ slightly).

Spiking rule for every spiking kind: ``s[t] = v[t] >= threshold``; the reset happens in the same
step, after the spike decision, so the state carried to ``t+1`` is the reset value:

* ``reset="zero"``:     v <- 0
* ``reset="subtract"``: v <- v - v_threshold
* ``reset="v_reset"``:  v <- v_reset
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ir.errors import IRError

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CONST_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
RESET_MODES = ("zero", "subtract", "v_reset")


@dataclass(frozen=True)
class Ref:
    """The name of an array in the graph's constant pool (printed ``@name`` in .nmir)."""

    name: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _CONST_RE.match(self.name):
            raise IRError(
                f"constant name {self.name!r} is not valid: use letters, digits, '_' and '.', "
                "starting with a letter or '_'"
            )

    def __str__(self) -> str:  # pragma: no cover - convenience
        return "@" + self.name


Param = float | int | Ref
"""A scalar (same for every neuron) or a Ref to a per-neuron array."""

Shape = tuple[int, ...]


def spec(
    *,
    default: Any = dataclasses.MISSING,
    kind: str = "param",
    positive: bool = False,
    nonneg: bool = False,
    integer: bool = False,
    lo: float | None = None,
    hi: float | None = None,
    choices: tuple | None = None,
    optional: bool = False,
    doc: str = "",
) -> Any:
    """Declare a node field with its constraints.

    ``kind`` is one of ``param`` (number or Ref), ``int``, ``float``, ``str``, ``bool``, ``shape``
    (tuple of positive ints), ``ints`` (tuple of ints), ``ref`` (a Ref). ``positive``/``nonneg``/
    ``lo``/``hi``/``integer`` bound the value, scalar here or every element of the array behind a
    Ref in the verifier. ``optional`` admits ``None``.
    """
    md = dict(
        kind=kind, positive=positive, nonneg=nonneg, integer=integer, lo=lo, hi=hi,
        choices=choices, optional=optional, doc=doc,
    )
    if default is dataclasses.MISSING:
        return field(metadata=md)
    return field(default=default, metadata=md)


_SPECS: dict[type, tuple[tuple[str, dict], ...]] = {}


def field_specs(cls_or_node: Any) -> list[tuple[str, dict]]:
    """(name, constraint metadata) of each declared field except ``name``, in declaration order.

    Computed once per class (the verifier asks for every node of every graph after every pass:
    rebuilding these lists was a tenth of a full-chip compile); the metadata dicts are shared,
    treat them as read-only."""
    cls = cls_or_node if isinstance(cls_or_node, type) else type(cls_or_node)
    specs = _SPECS.get(cls)
    if specs is None:
        specs = tuple((f.name, dict(f.metadata)) for f in dataclasses.fields(cls)
                      if f.name != "name")
        _SPECS[cls] = specs
    return list(specs)


_KINDS: dict[str, type[Node]] = {}


def register(cls: type[Node]) -> type[Node]:
    """Class decorator: make a node kind known to the parser, the verifier and the interpreters."""
    if cls.kind in _KINDS and _KINDS[cls.kind] is not cls:
        raise RuntimeError(f"node kind {cls.kind!r} registered twice")
    _KINDS[cls.kind] = cls
    return cls


def node_kinds() -> dict[str, type[Node]]:
    """All registered kinds by name (generic and native)."""
    return dict(_KINDS)


def kind_class(kind: str) -> type[Node]:
    try:
        return _KINDS[kind]
    except KeyError:
        raise IRError(
            f"unknown node kind {kind!r}; known kinds: {', '.join(sorted(_KINDS))}"
        ) from None


def _check_scalar(owner: str, fname: str, md: dict, value: Any) -> None:
    """Check one scalar (or Ref) field value against its declared constraints."""
    k = md["kind"]
    if value is None:
        if md["optional"]:
            return
        raise IRError(f"{owner}: field {fname} is required")
    if k == "ref" or (k == "param" and isinstance(value, Ref)):
        if not isinstance(value, Ref):
            raise IRError(f"{owner}: field {fname} must be a constant reference (@name)")
        return
    if k in ("param", "float", "int"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise IRError(f"{owner}: field {fname} = {value!r} must be a number")
        if not math.isfinite(value):
            raise IRError(f"{owner}: field {fname} = {value} must be finite")
        if (k == "int" or md["integer"]) and float(value) != int(value):
            raise IRError(f"{owner}: field {fname} = {value} must be an integer")
        _check_bounds(owner, fname, md, value)
    elif k == "str":
        if not isinstance(value, str):
            raise IRError(f"{owner}: field {fname} = {value!r} must be a string")
        if md["choices"] and value not in md["choices"]:
            raise IRError(
                f"{owner}: field {fname} = {value!r} is not one of {', '.join(md['choices'])}"
            )
    elif k == "bool":
        if not isinstance(value, bool):
            raise IRError(f"{owner}: field {fname} = {value!r} must be true or false")
    elif k in ("shape", "ints"):
        if not isinstance(value, tuple) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise IRError(f"{owner}: field {fname} = {value!r} must be a tuple of integers")
        if k == "shape" and (len(value) == 0 or any(v <= 0 for v in value)):
            raise IRError(f"{owner}: field {fname} = {list(value)} must be non-empty and > 0")
        for v in value:
            _check_bounds(owner, fname, md, v)


def _check_bounds(owner: str, fname: str, md: dict, v: float) -> None:
    if md["positive"] and not v > 0:
        raise IRError(f"{owner}: field {fname} = {v} must be > 0")
    if md["nonneg"] and not v >= 0:
        raise IRError(f"{owner}: field {fname} = {v} must be >= 0")
    if md["lo"] is not None and v < md["lo"]:
        raise IRError(f"{owner}: field {fname} = {v} is below the minimum {md['lo']}")
    if md["hi"] is not None and v > md["hi"]:
        raise IRError(f"{owner}: field {fname} = {v} is above the maximum {md['hi']}")


@dataclass(frozen=True, kw_only=True)
class Node:
    """Base of all node kinds.

    Class attributes: ``kind`` (the name in .nmir), ``category`` (``io``, ``neuron``,
    ``connection`` or ``delay``), ``family`` (``generic`` or a chip family), ``spiking``
    (a neuron whose output is spikes; non-spiking neurons output their membrane state).
    """

    name: str
    kind: ClassVar[str] = "Node"
    category: ClassVar[str] = "abstract"
    family: ClassVar[str] = "generic"
    spiking: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise IRError(
                f"node name {self.name!r} is not valid: use letters, digits and '_', "
                "starting with a letter or '_'"
            )
        owner = f"{self.kind} {self.name}"
        for fname, md in field_specs(self):
            value = getattr(self, fname)
            # Normalise lists to tuples so nodes stay hashable and compare by value.
            if md["kind"] in ("shape", "ints") and isinstance(value, list):
                object.__setattr__(self, fname, tuple(value))
                value = tuple(value)
            # A float that is integral is kept as given; ints stay ints for exact text round trips.
            _check_scalar(owner, fname, md, value)
        self.check()

    # ---- per-kind hooks ------------------------------------------------------------------
    def check(self) -> None:
        """Kind-specific rules that involve several fields (raise IRError)."""

    @property
    def in_shape(self) -> Shape:
        raise NotImplementedError

    @property
    def out_shape(self) -> Shape:
        raise NotImplementedError

    @property
    def delay_steps(self) -> int:
        """The smallest number of steps between this node's input and its output (0: same step)."""
        return 0

    def refs(self) -> list[tuple[str, Ref]]:
        """(field, Ref) for each field that names a constant."""
        return [(f, v) for f, _ in field_specs(self) if isinstance(v := getattr(self, f), Ref)]

    def fields(self) -> dict[str, Any]:
        """Field values except the name, in declaration order."""
        return {f: getattr(self, f) for f, _ in field_specs(self)}

    @property
    def size(self) -> int:
        return math.prod(self.out_shape)


# ------------------------------------------------------------------------------------------
# I/O
# ------------------------------------------------------------------------------------------
@register
@dataclass(frozen=True, kw_only=True)
class Input(Node):
    """A graph input: ``y[t]`` = the input spike (or value) train at step t."""

    kind: ClassVar[str] = "Input"
    category: ClassVar[str] = "io"
    shape: Shape = spec(kind="shape")

    @property
    def in_shape(self) -> Shape:
        return self.shape

    @property
    def out_shape(self) -> Shape:
        return self.shape


@register
@dataclass(frozen=True, kw_only=True)
class Output(Node):
    """A graph output: records what its single source emits at every step."""

    kind: ClassVar[str] = "Output"
    category: ClassVar[str] = "io"
    shape: Shape = spec(kind="shape")

    @property
    def in_shape(self) -> Shape:
        return self.shape

    @property
    def out_shape(self) -> Shape:
        return self.shape


# ------------------------------------------------------------------------------------------
# Generic neurons
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class NeuronNode(Node):
    """Common part of neuron kinds: a population of ``shape``; inputs from all edges are summed."""

    category: ClassVar[str] = "neuron"
    shape: Shape = spec(kind="shape")

    @property
    def in_shape(self) -> Shape:
        return self.shape

    @property
    def out_shape(self) -> Shape:
        return self.shape


@register
@dataclass(frozen=True, kw_only=True)
class IF(NeuronNode):
    """Integrate-and-fire (no leak), discrete time.

    ``v[t] = v[t-1] + r * I[t]``; ``s[t] = v[t] >= v_threshold``; then reset (see module doc).
    """

    kind: ClassVar[str] = "IF"
    spiking: ClassVar[bool] = True
    v_threshold: Param = spec(positive=True)
    r: Param = spec(default=1.0)
    v_reset: Param = spec(default=0.0)
    reset: str = spec(default="zero", kind="str", choices=RESET_MODES)


@register
@dataclass(frozen=True, kw_only=True)
class LIF(NeuronNode):
    """Leaky integrate-and-fire: ``tau_mem dv/dt = (v_leak - v) + r I``, exact per step.

    ``a = exp(-dt/tau_mem)``; ``v[t] = v_leak + a (v[t-1] - v_leak) + (1 - a) r I[t]``;
    ``s[t] = v[t] >= v_threshold``; then reset.
    """

    kind: ClassVar[str] = "LIF"
    spiking: ClassVar[bool] = True
    tau_mem: Param = spec(positive=True)
    v_threshold: Param = spec(positive=True)
    v_leak: Param = spec(default=0.0)
    r: Param = spec(default=1.0)
    v_reset: Param = spec(default=0.0)
    reset: str = spec(default="zero", kind="str", choices=RESET_MODES)


@register
@dataclass(frozen=True, kw_only=True)
class CubaLIF(NeuronNode):
    """Current-based LIF: a synaptic current stage feeding a LIF stage, each stage exact for its
    input held over the step (not the exact solution of the coupled pair).

    ``b = exp(-dt/tau_syn)``, ``a = exp(-dt/tau_mem)``;
    ``i[t] = b i[t-1] + (1 - b) w_in I[t]``;
    ``v[t] = v_leak + a (v[t-1] - v_leak) + (1 - a) r i[t]``; ``s[t] = v[t] >= v_threshold``;
    then reset of v (i is never reset).
    """

    kind: ClassVar[str] = "CubaLIF"
    spiking: ClassVar[bool] = True
    tau_syn: Param = spec(positive=True)
    tau_mem: Param = spec(positive=True)
    v_threshold: Param = spec(positive=True)
    v_leak: Param = spec(default=0.0)
    r: Param = spec(default=1.0)
    w_in: Param = spec(default=1.0)
    v_reset: Param = spec(default=0.0)
    reset: str = spec(default="zero", kind="str", choices=RESET_MODES)


@register
@dataclass(frozen=True, kw_only=True)
class AdaptiveLIF(NeuronNode):
    """LIF with threshold adaptation (LSNN / e-prop, Bellec et al. 2018, 2020).

    ``a = exp(-dt/tau_mem)``, ``rho = exp(-dt/tau_adapt)``;
    ``v[t] = v_leak + a (v[t-1] - v_leak) + (1 - a) r I[t]``;
    ``theta[t] = v_threshold + beta_adapt * b[t-1]``; ``s[t] = v[t] >= theta[t]``;
    ``b[t] = rho b[t-1] + s[t]``; then reset of v (reset="subtract" subtracts ``v_threshold``).
    ``b`` follows e-prop (Bellec 2020); for LSNN 2018, whose ``b`` adds ``(1 - rho) s``, use
    ``beta_adapt = beta_LSNN * (1 - rho)``.
    """

    kind: ClassVar[str] = "AdaptiveLIF"
    spiking: ClassVar[bool] = True
    tau_mem: Param = spec(positive=True)
    tau_adapt: Param = spec(positive=True)
    v_threshold: Param = spec(positive=True)
    beta_adapt: Param = spec(nonneg=True)
    v_leak: Param = spec(default=0.0)
    r: Param = spec(default=1.0)
    v_reset: Param = spec(default=0.0)
    reset: str = spec(default="zero", kind="str", choices=RESET_MODES)


@register
@dataclass(frozen=True, kw_only=True)
class LI(NeuronNode):
    """Leaky integrator readout (no spikes; outputs v).

    ``a = exp(-dt/tau_mem)``; ``v[t] = v_leak + a (v[t-1] - v_leak) + (1 - a) r I[t]``.
    """

    kind: ClassVar[str] = "LI"
    tau_mem: Param = spec(positive=True)
    v_leak: Param = spec(default=0.0)
    r: Param = spec(default=1.0)


@register
@dataclass(frozen=True, kw_only=True)
class CubaLI(NeuronNode):
    """Current-based leaky integrator (no spikes; outputs v).

    ``i[t] = b i[t-1] + (1 - b) w_in I[t]``; ``v[t] = v_leak + a (v[t-1] - v_leak) + (1 - a) r i[t]``.
    """

    kind: ClassVar[str] = "CubaLI"
    tau_syn: Param = spec(positive=True)
    tau_mem: Param = spec(positive=True)
    v_leak: Param = spec(default=0.0)
    r: Param = spec(default=1.0)
    w_in: Param = spec(default=1.0)


@register
@dataclass(frozen=True, kw_only=True)
class Integrator(NeuronNode):
    """Perfect integrator (no spikes; outputs v): ``v[t] = v[t-1] + r I[t]``."""

    kind: ClassVar[str] = "Integrator"
    r: Param = spec(default=1.0)


@register
@dataclass(frozen=True, kw_only=True)
class Threshold(NeuronNode):
    """Memoryless threshold unit: ``s[t] = I[t] >= v_threshold`` (no state)."""

    kind: ClassVar[str] = "Threshold"
    spiking: ClassVar[bool] = True
    v_threshold: Param = spec()


# ------------------------------------------------------------------------------------------
# Generic connections (all instantaneous: output at t from input at t)
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class ConnectionNode(Node):
    """A linear map from one source to its targets. Exactly one incoming edge."""

    category: ClassVar[str] = "connection"


@register
@dataclass(frozen=True, kw_only=True)
class Dense(ConnectionNode):
    """``y[t] = W x[t] + bias``; ``weight`` has shape (out_features, in_features)."""

    kind: ClassVar[str] = "Dense"
    in_features: int = spec(kind="int", positive=True)
    out_features: int = spec(kind="int", positive=True)
    weight: Ref = spec(kind="ref")
    bias: Ref | None = spec(default=None, kind="ref", optional=True)

    @property
    def in_shape(self) -> Shape:
        return (self.in_features,)

    @property
    def out_shape(self) -> Shape:
        return (self.out_features,)


@register
@dataclass(frozen=True, kw_only=True)
class Sparse(ConnectionNode):
    """``y[rows[k]] += values[k] * x[cols[k]]`` (COO triplets), plus ``bias``."""

    kind: ClassVar[str] = "Sparse"
    in_features: int = spec(kind="int", positive=True)
    out_features: int = spec(kind="int", positive=True)
    rows: Ref = spec(kind="ref")
    cols: Ref = spec(kind="ref")
    values: Ref = spec(kind="ref")
    bias: Ref | None = spec(default=None, kind="ref", optional=True)

    @property
    def in_shape(self) -> Shape:
        return (self.in_features,)

    @property
    def out_shape(self) -> Shape:
        return (self.out_features,)


def conv_out_len(n: int, k: int, s: int, p: int, d: int = 1) -> int:
    """Output length of a convolution or pooling window along one axis (PyTorch's formula)."""
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


@register
@dataclass(frozen=True, kw_only=True)
class Conv2d(ConnectionNode):
    """2-D cross-correlation (PyTorch/NIR layout): input (C, H, W), weight (C_out, C/groups, kh, kw).

    ``y[o, i, j] = bias[o] + sum_{c,u,v} W[o, c, u, v] x[g(o)*C/groups + c, i*sh - ph + u*dh,
    j*sw - pw + v*dw]`` with zero padding.
    """

    kind: ClassVar[str] = "Conv2d"
    input_shape: Shape = spec(kind="shape")
    out_channels: int = spec(kind="int", positive=True)
    kernel: tuple = spec(kind="shape")
    stride: tuple = spec(default=(1, 1), kind="shape")
    padding: tuple = spec(default=(0, 0), kind="ints", nonneg=True)
    dilation: tuple = spec(default=(1, 1), kind="shape")
    groups: int = spec(default=1, kind="int", positive=True)
    weight: Ref = spec(kind="ref")
    bias: Ref | None = spec(default=None, kind="ref", optional=True)

    def check(self) -> None:
        owner = f"Conv2d {self.name}"
        for f in ("kernel", "stride", "padding", "dilation"):
            if len(getattr(self, f)) != 2:
                raise IRError(f"{owner}: {f} must have 2 entries (h, w), got {getattr(self, f)}")
        if len(self.input_shape) != 3:
            raise IRError(f"{owner}: input_shape must be (C, H, W), got {list(self.input_shape)}")
        c = self.input_shape[0]
        if c % self.groups or self.out_channels % self.groups:
            raise IRError(
                f"{owner}: groups = {self.groups} must divide in channels {c} and out channels "
                f"{self.out_channels}"
            )
        if any(v <= 0 for v in self.out_shape):
            raise IRError(
                f"{owner}: kernel {list(self.kernel)} does not fit input "
                f"{list(self.input_shape)} (output shape {list(self.out_shape)})"
            )

    @property
    def in_shape(self) -> Shape:
        return self.input_shape

    @property
    def out_shape(self) -> Shape:
        _, h, w = self.input_shape
        return (
            self.out_channels,
            conv_out_len(h, self.kernel[0], self.stride[0], self.padding[0], self.dilation[0]),
            conv_out_len(w, self.kernel[1], self.stride[1], self.padding[1], self.dilation[1]),
        )


@register
@dataclass(frozen=True, kw_only=True)
class Conv1d(ConnectionNode):
    """1-D cross-correlation: input (C, L), weight (C_out, C/groups, k)."""

    kind: ClassVar[str] = "Conv1d"
    input_shape: Shape = spec(kind="shape")
    out_channels: int = spec(kind="int", positive=True)
    kernel: int = spec(kind="int", positive=True)
    stride: int = spec(default=1, kind="int", positive=True)
    padding: int = spec(default=0, kind="int", nonneg=True)
    dilation: int = spec(default=1, kind="int", positive=True)
    groups: int = spec(default=1, kind="int", positive=True)
    weight: Ref = spec(kind="ref")
    bias: Ref | None = spec(default=None, kind="ref", optional=True)

    def check(self) -> None:
        owner = f"Conv1d {self.name}"
        if len(self.input_shape) != 2:
            raise IRError(f"{owner}: input_shape must be (C, L), got {list(self.input_shape)}")
        if self.input_shape[0] % self.groups or self.out_channels % self.groups:
            raise IRError(f"{owner}: groups = {self.groups} must divide the channel counts")
        if self.out_shape[1] <= 0:
            raise IRError(f"{owner}: kernel {self.kernel} does not fit input {list(self.input_shape)}")

    @property
    def in_shape(self) -> Shape:
        return self.input_shape

    @property
    def out_shape(self) -> Shape:
        c, n = self.input_shape
        return (
            self.out_channels,
            conv_out_len(n, self.kernel, self.stride, self.padding, self.dilation),
        )


@dataclass(frozen=True, kw_only=True)
class _Pool2d(ConnectionNode):
    input_shape: Shape = spec(kind="shape")
    kernel: tuple = spec(kind="shape")
    stride: tuple | None = spec(default=None, kind="shape", optional=True)
    padding: tuple = spec(default=(0, 0), kind="ints", nonneg=True)

    def check(self) -> None:
        owner = f"{self.kind} {self.name}"
        if len(self.input_shape) != 3:
            raise IRError(f"{owner}: input_shape must be (C, H, W), got {list(self.input_shape)}")
        if len(self.kernel) != 2 or len(self.effective_stride) != 2 or len(self.padding) != 2:
            raise IRError(f"{owner}: kernel, stride and padding must have 2 entries (h, w)")
        if any(v <= 0 for v in self.out_shape):
            raise IRError(f"{owner}: kernel {list(self.kernel)} does not fit {list(self.input_shape)}")

    @property
    def effective_stride(self) -> tuple:
        """Stride, defaulting to the kernel size (PyTorch's rule)."""
        return self.kernel if self.stride is None else self.stride

    @property
    def in_shape(self) -> Shape:
        return self.input_shape

    @property
    def out_shape(self) -> Shape:
        c, h, w = self.input_shape
        s = self.effective_stride
        return (
            c,
            conv_out_len(h, self.kernel[0], s[0], self.padding[0]),
            conv_out_len(w, self.kernel[1], s[1], self.padding[1]),
        )


@register
@dataclass(frozen=True, kw_only=True)
class SumPool2d(_Pool2d):
    """Sum over each window per channel (zero padding)."""

    kind: ClassVar[str] = "SumPool2d"


@register
@dataclass(frozen=True, kw_only=True)
class AvgPool2d(_Pool2d):
    """Mean over each window per channel: the window sum divided by kh*kw (zero padding counts)."""

    kind: ClassVar[str] = "AvgPool2d"


@register
@dataclass(frozen=True, kw_only=True)
class Flatten(ConnectionNode):
    """Reshape ``input_shape`` to one axis in C order (row-major), like ``torch.flatten``."""

    kind: ClassVar[str] = "Flatten"
    input_shape: Shape = spec(kind="shape")

    @property
    def in_shape(self) -> Shape:
        return self.input_shape

    @property
    def out_shape(self) -> Shape:
        return (math.prod(self.input_shape),)


@register
@dataclass(frozen=True, kw_only=True)
class Scale(ConnectionNode):
    """Element-wise gain: ``y[t] = factor * x[t]``."""

    kind: ClassVar[str] = "Scale"
    shape: Shape = spec(kind="shape")
    factor: Param = spec()

    @property
    def in_shape(self) -> Shape:
        return self.shape

    @property
    def out_shape(self) -> Shape:
        return self.shape


@register
@dataclass(frozen=True, kw_only=True)
class Delay(Node):
    """Per-element axonal delay in whole steps: ``y[t][k] = x[t - delay[k]][k]`` (0 before start).

    A cycle in the graph must pass through a Delay whose every element is >= 1 (or through a
    native connection with ``delay >= 1``).
    """

    kind: ClassVar[str] = "Delay"
    category: ClassVar[str] = "delay"
    shape: Shape = spec(kind="shape")
    delay: Param = spec(nonneg=True, integer=True)

    @property
    def in_shape(self) -> Shape:
        return self.shape

    @property
    def out_shape(self) -> Shape:
        return self.shape

    @property
    def delay_steps(self) -> int:
        # The exact minimum over a per-element Ref needs the pool; the graph provides it
        # (Graph.min_delay). Here: the scalar value, or 0 (conservative) for a Ref.
        return int(self.delay) if not isinstance(self.delay, Ref) else 0


GENERIC_NEURONS = ("IF", "LIF", "CubaLIF", "AdaptiveLIF", "LI", "CubaLI", "Integrator", "Threshold")
GENERIC_CONNECTIONS = (
    "Dense", "Sparse", "Conv2d", "Conv1d", "SumPool2d", "AvgPool2d", "Flatten", "Scale",
)
