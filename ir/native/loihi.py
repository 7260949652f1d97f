"""Loihi-family native kinds (Loihi 1 style CUBA compartments and synapses).

Integer semantics follow Lava's bit-accurate models (``PyLifModelBitAcc``, ``PyDenseModelBitAcc``);
see ``../shared/hardware.md`` section 2.2 and ``docs/targets.md``.

Per step ``t`` for a compartment population fed by synapse nodes ``c`` (each with its own delay
``d_c >= 1``, weight exponent ``e_c``)::

    a_c[t] = sum_j W_c[:, j] * s_j[t - d_c]                 # integer weights, already legal
    a_c[t] = a_c[t] << e_c  if e_c >= 0 else  a_c[t] >> -e_c (arithmetic shift, floor)
    a[t]   = sum_c a_c[t]
    u[t]   = sign(u) * ((|u| * (4096 - du)) >> 12) + (a[t] << 6)      # wraps to 24 bits signed
    v[t]   = sign(v) * ((|v| * (4096 - dv)) >> 12) + u[t] + (bias_mant << bias_exp)
    v[t]   = clip(v[t], -(2**23 - 1), 2**23 - 1)
    s[t]   = v[t] > (vth_mant << 6)                           # strict
    v[t]   = 0 where s[t]; a refractory compartment holds v = 0 for ``refractory`` steps

(Lava writes the current decay as ``4095 - du`` for ``du`` in its own convention; this module
stores ``du`` exactly as Lava's process parameter and applies Lava's arithmetic.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ir.nodes import ConnectionNode, NeuronNode, Param, Ref, Shape, register, spec

SIGN_MODES = ("mixed", "excitatory", "inhibitory")


@register
@dataclass(frozen=True, kw_only=True)
class LoihiCompartment(NeuronNode):
    """A population of Loihi CUBA LIF compartments with integer parameters (see module doc).

    ``du``, ``dv``: 12-bit decays (0..4095); ``vth_mant``: 17-bit threshold mantissa (threshold
    ``vth_mant << 6``); ``bias_mant``: 13-bit signed mantissa, ``bias_exp``: 3-bit exponent;
    ``refractory``: steps a compartment stays silent at v = 0 after a spike (0: none);
    ``spiking=False`` makes a non-spiking readout whose output is ``v``.
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


