"""Per-family key specs of target profiles.

A family is a Python module ``nmc.targets.families.<family>`` that declares which keys a profile of
that family must (or may) hold, with their types and ranges::

    # nmc/targets/families/myfamily.py
    from nmc.targets.families import Key

    KEYS = {
        "core.neurons": Key(int, lo=1, doc="neurons per core"),
        "overflow.v": Key(str, choices=("wrap", "saturate", "error")),
    }

    def check(profile) -> list[str]:        # optional: rules that involve several keys
        return []

The loader (:func:`nmc.targets.load_profile`) imports the module named by ``[profile] family``,
merges :data:`COMMON_KEYS` with the module's ``KEYS`` (a family entry overrides a common one; a
family may drop a common key by declaring it ``required=False``) and checks every key of the file:

* a declared, required key must be present;
* every present key must be declared (a typo is an error, not a silently ignored number);
* the value must have the declared type (an ``int`` is accepted where a ``float`` is declared; a
  ``bool`` is never a number) and lie within ``lo``/``hi`` and ``choices``;
* every number (and every value declared ``sourced=True``) needs a source tag in ``[sources]``
  under its dotted key, of the form ``"<kind>: <where>"`` with kind one of :data:`SOURCE_KINDS`.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from ir.errors import TargetError

SOURCE_KINDS = ("code", "paper", "ours", "derived", "doc", "measured")
"""Allowed source tag kinds: read in open code, from a paper, a choice of this project, derived
from other numbers of the profile, from a vendor document, measured on hardware."""

OVERFLOW_POLICIES = ("wrap", "saturate", "error")


@dataclass(frozen=True)
class Key:
    """One key of a profile: its type, bounds and whether it must carry a source tag.

    ``type`` is ``int``, ``float``, ``str``, ``bool`` or ``list`` (then ``item`` gives the element
    type and bounds apply to every element). ``sourced`` defaults to True for numbers (and lists of
    numbers) and False otherwise.
    """

    type: type
    lo: float | None = None
    hi: float | None = None
    choices: tuple | None = None
    required: bool = True
    item: type | None = None
    sourced: bool | None = None
    doc: str = ""

    @property
    def needs_source(self) -> bool:
        if self.sourced is not None:
            return self.sourced
        return self.type in (int, float) or (self.type is list and self.item in (int, float))

    def check(self, key: str, value: Any) -> str | None:
        """Return a problem message for ``value`` under ``key``, or None when it is valid."""
        if self.type is list:
            if not isinstance(value, list):
                return f"{key} = {value!r} has type {_tname(value)}; expected a list"
            for i, v in enumerate(value):
                msg = _check_scalar(f"{key}[{i}]", v, self.item or str, self)
                if msg:
                    return msg
            return None
        return _check_scalar(key, value, self.type, self)


def _tname(v: Any) -> str:
    return {bool: "bool", int: "int", float: "float", str: "string", list: "list",
            dict: "table"}.get(type(v), type(v).__name__)


def _check_scalar(key: str, value: Any, typ: type, spec: Key) -> str | None:
    if typ is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif typ is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, typ)
    if not ok:
        return f"{key} = {value!r} has type {_tname(value)}; expected {typ.__name__}"
    if typ in (int, float):
        if value != value or value in (float("inf"), float("-inf")):
            return f"{key} = {value} must be finite"
        if spec.lo is not None and value < spec.lo:
            return f"{key} = {value} is out of range: must be >= {spec.lo}"
        if spec.hi is not None and value > spec.hi:
            return f"{key} = {value} is out of range: must be <= {spec.hi}"
    if spec.choices is not None and value not in spec.choices:
        return f"{key} = {value!r} is not one of {', '.join(map(repr, spec.choices))}"
    return None


COMMON_KEYS: dict[str, Key] = {
    "profile.name": Key(str, doc="profile name (the file stem for built-in profiles)"),
    "profile.family": Key(str, doc="family module under nmc/targets/families"),
    "profile.description": Key(str, required=False, doc="one line for `nmc targets`"),
    "chip.mesh_x": Key(int, lo=1, doc="cores per chip along x"),
    "chip.mesh_y": Key(int, lo=1, doc="cores per chip along y"),
    "chip.max_chips": Key(int, lo=1, doc="chips a system may join"),
    "chip.tick_seconds": Key(float, lo=0, doc="wall-clock seconds of one tick on the chip"),
    "chip.speedup": Key(float, lo=0, doc="biological time / chip time"),
    "core.neurons": Key(int, lo=1, doc="neurons (compartments) per core"),
    "noc.hop_cycles": Key(int, lo=0, doc="router clock cycles per hop"),
    "noc.port_cycles_per_packet": Key(int, lo=1, doc="cycles an output port is busy per packet"),
    "noc.fifo_depth": Key(int, lo=1, doc="packets per router FIFO"),
    "noc.clock_hz": Key(float, lo=1, doc="router/core clock"),
    "energy.sop": Key(float, lo=0, doc="joules per synaptic operation"),
    "energy.spike": Key(float, lo=0, doc="joules per spike sent"),
    "energy.update_active": Key(float, lo=0, doc="joules per neuron update of an active neuron"),
    "energy.update_idle": Key(float, lo=0, doc="joules per neuron update of an idle neuron"),
    "energy.hop_ew": Key(float, lo=0, doc="joules per packet hop east-west"),
    "energy.hop_ns": Key(float, lo=0, doc="joules per packet hop north-south"),
    "energy.static_watts": Key(float, lo=0, doc="static power of one chip"),
}
"""Keys every profile has (a family module may override or relax them)."""


def family_names() -> list[str]:
    """Names of the family modules present in this package."""
    import nmc.targets.families as pkg

    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_"))


def family_module(family: str, where: str = "") -> ModuleType:
    """Import ``nmc.targets.families.<family>``; TargetError naming the known families if absent."""
    known = family_names()
    if not isinstance(family, str) or family not in known:
        raise TargetError(
            f"{where}profile.family = {family!r} is not a known family; known families: "
            f"{', '.join(known)} (a family is a module nmc/targets/families/<family>.py)"
        )
    mod = importlib.import_module(f"nmc.targets.families.{family}")
    if not isinstance(getattr(mod, "KEYS", None), dict):
        raise TargetError(f"family module nmc.targets.families.{family} defines no KEYS dict")
    return mod


def family_keys(family: str) -> dict[str, Key]:
    """The full key spec of a family: :data:`COMMON_KEYS` updated with the module's ``KEYS``."""
    mod = family_module(family)
    return {**COMMON_KEYS, **mod.KEYS}
