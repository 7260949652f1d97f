"""The ``quantize`` pass: lower generic float kinds into the native integer kinds of a family.

Quantizers are registered per family (:func:`register_quantizer`) in
``nmc/passes/quantize/<family>.py``, imported by name when first needed. A quantizer is a function
``fn(graph, profile, opts) -> (graph, QuantReport)``; it returns the graph at stage ``quantized``
with ``attrs["target"]`` set to the profile name.

Stage rule: a float graph is quantized; a graph already at ``quantized`` (or later) of the same
family (a lava-dl file, a quantization-aware-trained model) passes through unchanged; a graph of
another family is a CompileError.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from ir.errors import CompileError
from ir.graph import Graph, Stage
from nmc.passes import Pass, record, register_pass
from nmc.passes.quantize.report import QuantReport

if TYPE_CHECKING:  # pragma: no cover
    from nmc.targets import Profile


@dataclass(frozen=True)
class QuantizeOptions:
    """Options shared by all quantizers.

    ``calibration``: inputs ``(B, T, *shape)`` or ``{input: array}`` used for data-aware scaling
    and for the report's never/always-firing counts; None: scale from the weights alone.
    ``percentile``: activation percentile for data-aware scaling (Rueckauer et al. 2017).
    ``weight_bits``: cap on stored weight bits (family default when None).
    ``axon_types``: TrueNorth only: ``"auto"``, ``"2"`` or ``"4"``.
    ``split_fanin``: TrueNorth only: ``"off"``, ``"auto"`` or population names separated by
    commas: split a large fan-in into partial sums on several cores (finer weights, +1 tick).
    ``seed``: for any random choice a quantizer makes.
    """

    calibration: Any = field(default=None, compare=False)
    percentile: float = 99.9
    weight_bits: int | None = None
    axon_types: str = "auto"
    seed: int = 0
    split_fanin: str = "off"

    def __post_init__(self) -> None:
        if not (0.0 < float(self.percentile) <= 100.0):
            raise CompileError(
                f"quantize: percentile = {self.percentile} must be in (0, 100]; 99.9 is usual"
            )
        if self.weight_bits is not None and (
            isinstance(self.weight_bits, bool) or not isinstance(self.weight_bits, int)
            or self.weight_bits < 1
        ):
            raise CompileError(f"quantize: weight_bits = {self.weight_bits!r} must be an integer >= 1")
        if self.axon_types not in ("auto", "2", "4"):
            raise CompileError(f"quantize: axon_types = {self.axon_types!r} must be auto, 2 or 4")
        if not isinstance(self.split_fanin, str) or not self.split_fanin.strip(", "):
            raise CompileError(f"quantize: split_fanin = {self.split_fanin!r} must be off, auto or "
                               "population names separated by commas")


Quantizer = Callable[[Graph, "Profile", QuantizeOptions], tuple[Graph, QuantReport]]
_QUANTIZERS: dict[str, Quantizer] = {}


def register_quantizer(family: str) -> Callable[[Quantizer], Quantizer]:
    """Decorator registering ``fn(graph, profile, opts) -> (graph, report)`` for a family."""

    def deco(fn: Quantizer) -> Quantizer:
        _QUANTIZERS[family] = fn
        return fn

    return deco


def get_quantizer(family: str) -> Quantizer:
    """The quantizer of ``family``, importing ``nmc.passes.quantize.<family>`` on first use."""
    if family not in _QUANTIZERS:
        try:
            importlib.import_module(f"nmc.passes.quantize.{family}")
        except ModuleNotFoundError as e:
            if e.name != f"nmc.passes.quantize.{family}":
                raise
        if family not in _QUANTIZERS:
            raise CompileError(
                f"quantize: no quantizer for family {family!r} (expected a module "
                f"nmc/passes/quantize/{family}.py using @register_quantizer({family!r}))"
            )
    return _QUANTIZERS[family]


def native_family(graph: Graph) -> str | None:
    """The family of a graph's native nodes (None if it has none); CompileError if mixed."""
    fams = sorted({n.family for n in graph.nodes.values() if n.family != "generic"})
    if len(fams) > 1:
        raise CompileError(f"graph {graph.name} mixes native kinds of families {', '.join(fams)}")
    return fams[0] if fams else None


def quantize(graph: Graph, target: Profile | str, opts: QuantizeOptions | None = None
             ) -> tuple[Graph, QuantReport]:
    """Quantize a float ``graph`` for ``target``; return the quantized graph and its report.

    The decisions (and the report as JSON) are recorded in ``graph.attrs["passes"]["quantize"]``.
    A graph already at ``quantized`` or later of the target's family is returned unchanged with
    the report stored in it (or an empty one).
    """
    from nmc.targets import load_profile

    profile = load_profile(target)
    opts = opts or QuantizeOptions()
    if graph.stage != Stage.FLOAT:
        _check_native(graph, profile)
        return graph, QuantReport.from_graph(graph)
    fam = native_family(graph)
    if fam is not None and fam != profile.family:
        raise CompileError(
            f"quantize: graph {graph.name} holds native {fam} kinds but the target {profile.name} "
            f"is of family {profile.family}; choose a {fam} target"
        )
    out, report = get_quantizer(profile.family)(graph, profile, opts)
    attrs = dict(out.attrs)
    attrs["target"] = profile.name
    decisions = dict(attrs.get("passes", {}).get("quantize", {}))
    decisions["report"] = report.to_json()
    out = out.replace(attrs=record(attrs, "quantize", decisions), stage=Stage.QUANTIZED)
    return out, report


def _check_native(graph: Graph, profile: Profile) -> None:
    fam = native_family(graph)
    tgt = graph.attrs.get("target")
    if fam is not None and fam != profile.family:
        raise CompileError(
            f"quantize: graph {graph.name} is already quantized for family {fam} "
            f"(target {tgt or '?'}), not for {profile.name} (family {profile.family}); "
            f"compile the float model for {profile.name} or choose a {fam} target"
        )


@register_pass
@dataclass(frozen=True)
class Quantize(Pass):
    """Lower generic float kinds into the target family's native integer kinds (see module doc).

    Fields: the :class:`QuantizeOptions`.
    """

    name: ClassVar[str] = "quantize"
    needs: ClassVar[Stage] = Stage.FLOAT
    makes: ClassVar[Stage] = Stage.QUANTIZED

    calibration: Any = field(default=None, compare=False)
    percentile: float = 99.9
    weight_bits: int | None = None
    axon_types: str = "auto"
    seed: int = 0
    split_fanin: str = "off"

    def quantize_options(self) -> QuantizeOptions:
        return QuantizeOptions(calibration=self.calibration, percentile=self.percentile,
                               weight_bits=self.weight_bits, axon_types=self.axon_types,
                               seed=self.seed, split_fanin=self.split_fanin)

    def applies(self, graph: Graph, target: Profile) -> bool:
        if graph.stage != Stage.FLOAT:
            _check_native(graph, target)
            # A native graph made for another profile of the same family is retargeted.
            return graph.stage == Stage.QUANTIZED and graph.attrs.get("target") != target.name
        return True

    def run(self, graph: Graph, target: Profile) -> Graph:
        if graph.stage == Stage.QUANTIZED:
            return retarget(graph, target)
        return quantize(graph, target, self.quantize_options())[0]


def retarget(graph: Graph, profile: Profile) -> Graph:
    """A native graph of ``profile``'s family, made for another profile (or none), now names
    ``profile`` as its target; the verifier then checks it against the new profile's ranges."""
    attrs = dict(graph.attrs)
    old = attrs.get("target")
    attrs["target"] = profile.name
    return graph.replace(attrs=record(attrs, "quantize", {"retargeted_from": old}))


__all__ = ["QuantReport", "Quantize", "QuantizeOptions", "get_quantizer", "native_family",
           "quantize", "register_quantizer"]
