"""Loihi-family native kinds (Loihi 1 style CUBA compartments and synapses) and their integer
kernels: the executable specification the emulator is held against.

Integer semantics follow Lava's bit-accurate models (``PyLifModelBitAcc``, ``PyDenseModelBitAcc``,
lava-nc/lava @ b6822fb); see ``../shared/hardware.md`` section 2.2 and ``docs/targets.md``.
All arithmetic is done in int64, then brought to the stated widths.

Per step ``t`` for a compartment population fed by synapse nodes ``c`` (each with its own delay
``d_c >= 1``, weight exponent ``e_c``)::

    a_c[t] = sum_j W_c[:, j] * s_j[t - d_c]           # legal integer weights (legalize_weights)
    a_c[t] = a_c[t] << e_c  if e_c > 0 else  a_c[t] >> -e_c   # arithmetic shift: floor
    a[t]   = sum_c a_c[t]
    u[t]   = sign(u) * ((|u| * (4096 - (du + 1))) >> 12) + (a[t] << 6)   # decay rounds toward 0
    u[t]   = wrap24(u[t])                  # into (-2**23, 2**23]: Lava's wrap convention
    v[t]   = sign(v) * ((|v| * (4096 - dv)) >> 12) + u[t] + (bias_mant << bias_exp)
    v[t]   = clip(v[t], -(2**23 - 1), 2**23 - 1)
    v[t]   = 0 where the compartment is refractory (ours, see below)
    s[t]   = v[t] > (vth_mant << 6)       # strict; never for a readout compartment
    v[t]   = 0 where s[t]

Decays (Lava's convention, kept exactly): ``du`` and ``dv`` are the process parameters of Lava's
LIF. The current decays by ``4096 - (du + 1)`` because Loihi 1 adds a one-bit offset
(``ds_offset = 1``) to du, so ``du = 4095`` clears u every step (u = a << 6: no current memory) and
``du = 0`` keeps 4095/4096 of it. The voltage decays by ``4096 - dv`` (offset 0), so ``dv = 0``
is a perfect integrator and ``dv = 4095`` keeps 1/4096 of v.

Overflow: u wraps (Lava maps ``u > 2**23`` to ``u - 2**24`` and ``u <= -2**23`` to ``u + 2**24``;
this module wraps modulo 2**24 into the same interval ``(-2**23, 2**23]``, identical wherever
Lava's single correction suffices); v saturates at ``+-(2**23 - 1)``.

Refractory (ours: Lava's bit-accurate LIF has none; nengo-loihi's emulator holds v at 0): after a
spike at step t the compartment's v is forced to 0 at steps t+1 .. t+refractory, so it cannot
spike there; u keeps integrating. ``refractory = 0`` is Lava's model exactly. The fastest rate is
one spike every ``refractory + 1`` steps.

Readout (``readout=True``): the same update without the spike decision and reset; the output is v
(an integer), so non-spiking float readouts (LI, CubaLI, Integrator) keep their meaning.

Synapse nodes are delayed nodes (``delay >= 1``): the interpreter engine calls ``emit`` for the
output of step t (computed from spikes of step ``t - delay``) and ``push`` with the spikes of step
t. A delay of 1 is Lava's one-step synaptic delay. Inputs must be binary spikes (Loihi 1 carries
no graded spikes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ir.errors import NmcError
from ir.interp import Kernel, kernel
from ir.nodes import ConnectionNode, NeuronNode, Param, Ref, Shape, register, spec

SIGN_MODES = ("mixed", "excitatory", "inhibitory")

# The family's datapath widths (hardware.md 2.1/2.2). They define the integer semantics of the kinds
# below; profiles of the loihi family must state the same values (nmc/targets/families/loihi.py).
DECAY_BITS = 12  # du, dv in 0..4095; decays are (x * (4096 - d)) >> 12
U_BITS = 24  # synaptic current u: signed, wraps (Lava's convention)
V_BITS = 24  # membrane voltage v: signed, saturates at +-(2**23 - 1)
ACT_SHIFT = 6  # the synapse output enters u as a << 6; thresholds are vth_mant << 6
DS_OFFSET = 1  # Loihi 1 adds 1 to du (current decay 4096 - (du + 1)); see module doc
DM_OFFSET = 0  # and 0 to dv
WEIGHT_BITS = 8  # stored weights are clipped to 8 bits (+ sign in mixed mode) before truncation


@register
@dataclass(frozen=True, kw_only=True)
class LoihiCompartment(NeuronNode):
    """A population of Loihi CUBA LIF compartments with integer parameters (see module doc).

    ``du``, ``dv``: 12-bit decays (0..4095) in Lava's convention (current decay factor
    ``(4096 - (du + 1)) / 4096``, voltage ``(4096 - dv) / 4096``); ``vth_mant``: 17-bit threshold
    mantissa (threshold ``vth_mant << 6``); ``bias_mant``: 13-bit signed mantissa, ``bias_exp``:
    3-bit exponent; ``refractory``: steps a compartment is held at v = 0 after a spike (0: none);
    ``readout=True`` makes a non-spiking readout whose output is ``v``.
    """

    kind: ClassVar[str] = "LoihiCompartment"
    family: ClassVar[str] = "loihi"
    spiking: ClassVar[bool] = True
    du: Param = spec(integer=True, lo=0, hi=4095)
    dv: Param = spec(integer=True, lo=0, hi=4095)
    vth_mant: Param = spec(integer=True, lo=0, hi=2**17 - 1)
    bias_mant: Param = spec(default=0, integer=True, lo=-(2**12), hi=2**12 - 1)
    bias_exp: Param = spec(default=0, integer=True, lo=0, hi=7)
    refractory: int = spec(default=0, kind="int", lo=0, hi=63)
    readout: bool = spec(default=False, kind="bool")


@dataclass(frozen=True, kw_only=True)
class _LoihiSynapses(ConnectionNode):
    family: ClassVar[str] = "loihi"
    in_features: int = spec(kind="int", positive=True)
    out_features: int = spec(kind="int", positive=True)
    weight_exp: int = spec(default=0, kind="int", lo=-8, hi=7)
    num_weight_bits: int = spec(default=8, kind="int", lo=0, hi=8)
    sign_mode: str = spec(default="mixed", kind="str", choices=SIGN_MODES)
    delay: int = spec(default=1, kind="int", lo=1, hi=63)

    @property
    def in_shape(self) -> Shape:
        return (self.in_features,)

    @property
    def out_shape(self) -> Shape:
        return (self.out_features,)

    @property
    def delay_steps(self) -> int:
        return self.delay

    @property
    def weight_step(self) -> int:
        """The granularity of stored weights: ``2 ** (8 - num_weight_bits + is_mixed)``."""
        return 2 ** (8 - self.num_weight_bits + (self.sign_mode == "mixed"))

    @property
    def weight_range(self) -> tuple[int, int]:
        """Smallest and largest legal stored weight for the sign mode."""
        return {"mixed": (-256, 255), "excitatory": (0, 255), "inhibitory": (-255, 0)}[
            self.sign_mode
        ]


@register
@dataclass(frozen=True, kw_only=True)
class LoihiDense(_LoihiSynapses):
    """Dense Loihi synapses: ``weight`` (out, in) holds legal integers (multiples of
    ``weight_step`` inside ``weight_range``); ``delay`` is the total steps from spike to current
    (1 = Lava's one-step synaptic delay)."""

    kind: ClassVar[str] = "LoihiDense"
    weight: Ref = spec(kind="ref")


@register
@dataclass(frozen=True, kw_only=True)
class LoihiSparse(_LoihiSynapses):
    """Sparse Loihi synapses as COO triplets ``(rows=post, cols=pre, values)``; same encoding
    rules as :class:`LoihiDense`."""

    kind: ClassVar[str] = "LoihiSparse"
    rows: Ref = spec(kind="ref")
    cols: Ref = spec(kind="ref")
    values: Ref = spec(kind="ref")




# ------------------------------------------------------------------------------------------
# Integer semantics
# ------------------------------------------------------------------------------------------
def legalize_weights(w: np.ndarray, sign_mode: str, num_weight_bits: int) -> np.ndarray:
    """The weights a Loihi synapse actually holds, as Lava's bit-accurate Dense computes them.

    1. convert to integers by truncation toward zero (Lava stores weights as int32: 0.5 -> 0,
       -0.4 -> 0);
    2. clip to the sign mode's 8-bit range: mixed [-256, 255], excitatory [0, 255],
       inhibitory [-255, 0];
    3. drop the ``8 - num_weight_bits + (sign_mode == "mixed")`` least significant bits: mixed and
       excitatory weights by an arithmetic shift (floor, so -3 -> -4 at a step of 2), inhibitory
       weights on their magnitude (toward zero, so -3 -> -2), as Lava's ``truncate_weights`` does.

    Idempotent: a legal weight array is returned unchanged (as int64).
    """
    if sign_mode not in SIGN_MODES:
        raise NmcError(f"sign_mode {sign_mode!r} is not one of {', '.join(SIGN_MODES)}")
    if not 0 <= int(num_weight_bits) <= WEIGHT_BITS:
        raise NmcError(f"num_weight_bits = {num_weight_bits} must be in 0..{WEIGHT_BITS}")
    a = np.asarray(w)
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)):
            raise NmcError("weights must be finite")
        a = np.trunc(a)
    a = a.astype(np.int64)
    top = (1 << WEIGHT_BITS) - 1
    lo, hi = {"mixed": (-top - 1, top), "excitatory": (0, top), "inhibitory": (-top, 0)}[sign_mode]
    a = np.clip(a, lo, hi)
    k = WEIGHT_BITS - int(num_weight_bits) + (sign_mode == "mixed")
    if sign_mode == "inhibitory":
        return -((-a >> k) << k)
    return (a >> k) << k


def shift_weight_exp(a: np.ndarray, weight_exp: int) -> np.ndarray:
    """``a << e`` for ``e > 0``, else ``a >> -e`` (arithmetic shift: rounds toward minus infinity),
    as Lava's ``PyDenseModelBitAcc`` applies the weight exponent to the summed input."""
    return a << weight_exp if weight_exp > 0 else a >> -weight_exp


def decay(x: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``sign(x) * ((|x| * (4096 - d)) >> 12)``: Loihi's decay, rounding toward zero (int64)."""
    return np.sign(x) * ((np.abs(x) * ((1 << DECAY_BITS) - d)) >> DECAY_BITS)


def wrap_u(u: np.ndarray) -> np.ndarray:
    """Wrap u into ``(-2**23, 2**23]`` modulo ``2**24`` (Lava's convention, see module doc)."""
    half = 1 << (U_BITS - 1)
    return ((u + half - 1) % (1 << U_BITS)) - half + 1


V_MAX = (1 << (V_BITS - 1)) - 1
"""Largest |v|: v saturates at +-(2**23 - 1)."""


@kernel("LoihiCompartment")
class LoihiCompartmentKernel(Kernel):
    """Integer update of a Loihi CUBA compartment population (module doc gives the equations).

    State: ``u``, ``v`` (int64 holding 24-bit values), ``ref`` (refractory steps left), and the
    cumulative per-neuron counts ``u_wraps`` and ``v_saturations`` (how often u wrapped and v was
    clipped), all ``(B, *shape)``.
    """

    def __init__(self, node, graph, batch: int):
        super().__init__(node, graph, batch)
        shape = (batch, *node.out_shape)
        p = lambda f: np.broadcast_to(graph.param(node, f, np.int64), shape)  # noqa: E731
        self.du = p("du") + DS_OFFSET
        self.dv = p("dv") + DM_OFFSET
        self.vth = p("vth_mant") << ACT_SHIFT
        self.bias = p("bias_mant") << p("bias_exp")
        self.refractory = int(node.refractory)
        self.u = np.zeros(shape, np.int64)
        self.v = np.zeros(shape, np.int64)
        self.ref = np.zeros(shape, np.int64)
        self.u_wraps = np.zeros(shape, np.int64)
        self.v_saturations = np.zeros(shape, np.int64)

    def step(self, x: np.ndarray | None) -> np.ndarray:
        a = 0 if x is None else np.asarray(x, np.int64).reshape(self.u.shape)
        u = decay(self.u, self.du) + (a << ACT_SHIFT)
        self.u = wrap_u(u)
        self.u_wraps += self.u != u
        v = decay(self.v, self.dv) + self.u + self.bias
        self.v = np.clip(v, -V_MAX, V_MAX)
        self.v_saturations += self.v != v
        if self.refractory:
            # Refractory compartments are held at v = 0 (cannot spike); the counter runs down.
            held = self.ref > 0
            self.v[held] = 0
            self.ref[held] -= 1
        if self.node.readout:
            return self.v.copy()
        spikes = self.v > self.vth
        self.v[spikes] = 0
        if self.refractory:
            self.ref[spikes] = self.refractory
        return spikes

    def state(self) -> dict[str, np.ndarray]:
        return {"u": self.u, "v": self.v, "ref": self.ref, "u_wraps": self.u_wraps,
                "v_saturations": self.v_saturations}


class _SynapseKernel(Kernel):
    """Delayed synapse node: a ring of ``delay`` pending outputs.

    ``push`` computes the shifted integer sum of the spikes of step t and stores it in the slot
    that ``emit`` returns ``delay`` steps later.
    """

    def __init__(self, node, graph, batch: int):
        super().__init__(node, graph, batch)
        self.ring = np.zeros((node.delay, batch, node.out_features), np.int64)
        self.head = 0

    def emit(self) -> np.ndarray:
        return self.ring[self.head].copy()

    def push(self, x: np.ndarray | None) -> None:
        if x is None:
            a = np.zeros((self.batch, self.node.out_features), np.int64)
        else:
            s = np.asarray(x).reshape(self.batch, self.node.in_features)
            if s.dtype != np.bool_:
                if not np.all((s == 0) | (s == 1)):
                    bad = s[(s != 0) & (s != 1)].flat[0]
                    raise NmcError(
                        f"{self.node.kind} {self.node.name}: input value {bad} is not a spike "
                        "(0 or 1); Loihi 1 synapses carry binary spikes only"
                    )
            a = shift_weight_exp(self.accumulate(s.astype(bool)), self.node.weight_exp)
        self.ring[self.head] = a
        self.head = (self.head + 1) % self.node.delay

    def accumulate(self, s: np.ndarray) -> np.ndarray:
        raise NotImplementedError


@kernel("LoihiDense")
class LoihiDenseKernel(_SynapseKernel):
    """``a = shift(W_legal @ s, weight_exp)`` for the spikes s of each step (module doc)."""

    def __init__(self, node, graph, batch: int):
        super().__init__(node, graph, batch)
        w = legalize_weights(graph.const(node.weight), node.sign_mode, node.num_weight_bits)
        # float64 matmul is exact here: |sum| <= 256 * in_features < 2**53.
        self.wt = w.reshape(node.out_features, node.in_features).T.astype(np.float64)

    def accumulate(self, s: np.ndarray) -> np.ndarray:
        return np.rint(s.astype(np.float64) @ self.wt).astype(np.int64)


@kernel("LoihiSparse")
class LoihiSparseKernel(_SynapseKernel):
    """``a[rows[k]] += W_legal[k] * s[cols[k]]`` (duplicates add), then the weight exponent."""

    def __init__(self, node, graph, batch: int):
        super().__init__(node, graph, batch)
        self.rows = np.asarray(graph.const(node.rows), np.int64).ravel()
        self.cols = np.asarray(graph.const(node.cols), np.int64).ravel()
        self.w = legalize_weights(graph.const(node.values), node.sign_mode,
                                  node.num_weight_bits).ravel()

    def accumulate(self, s: np.ndarray) -> np.ndarray:
        n_out = self.node.out_features
        contrib = s[:, self.cols] * self.w  # (B, nnz) int64
        idx = (np.arange(self.batch)[:, None] * n_out + self.rows[None, :]).ravel()
        # bincount sums in float64: exact for |sum| < 2**53.
        total = np.bincount(idx, weights=contrib.ravel().astype(np.float64),
                            minlength=self.batch * n_out)
        return np.rint(total).astype(np.int64).reshape(self.batch, n_out)
