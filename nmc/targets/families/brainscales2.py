"""Key spec of the ``brainscales2`` family (BrainScaleS-2 / HICANN-X style constraints).

The integer discretised neuron (codes, state units, rounding, rails) is fixed by the family and
implemented in ``ir/native/brainscales2.py``; a profile chooses the resources of a hemisphere (a
"core": 256 neuron circuits fed by one 256-row synapse array), the event-path numbers, the
quantizer's operating window, and the (estimated) energy numbers. See ``docs/families.md``.
"""

from __future__ import annotations

from ir.native import brainscales2 as native
from nmc.targets.families import Key

KEYS: dict[str, Key] = {
    # ---- per-core (hemisphere) resources -----------------------------------------------
    "core.neurons": Key(int, lo=1, hi=1 << 12, doc="neuron circuits per hemisphere"),
    "core.rows": Key(int, lo=2, hi=1 << 12, doc="synapse rows per hemisphere's array"),
    "core.row_addresses": Key(int, lo=1, hi=1 << 16,
                              doc="sources one row carries (synapse address space)"),
    "core.drivers": Key(int, lo=1, doc="synapse drivers per array"),
    "core.rows_per_driver": Key(int, lo=1, doc="rows driven by one synapse driver"),
    "core.event_buses": Key(int, lo=1, doc="event buses per array"),
    "core.drivers_per_bus": Key(int, lo=1, doc="synapse drivers reached by one event bus"),
    "core.rows_per_bus_per_neuron": Key(int, lo=1, doc="rows of one event bus a neuron can use"),
    "core.max_merge": Key(int, lo=1, doc="neuron circuits joined into one logical neuron"),
    # ---- widths (bits) -----------------------------------------------------------------
    "widths.weight": Key(int, lo=6, hi=6, doc="unsigned synapse weight bits"),
    "widths.code": Key(int, lo=10, hi=10, doc="analog parameter code bits"),
    "widths.address": Key(int, lo=1, hi=16, doc="synapse address bits"),
    "widths.label": Key(int, lo=1, hi=32, doc="event label bits"),
    "widths.refractory": Key(int, lo=8, hi=8, doc="refractory counter bits"),
    "widths.v": Key(int, lo=16, hi=16, doc="membrane state bits (codes << 6)"),
    "widths.i": Key(int, lo=16, hi=16, doc="synaptic current state bits"),
    # ---- ranges ------------------------------------------------------------------------
    "neuron.code_max": Key(int, lo=native.CODE_MAX, hi=native.CODE_MAX,
                           doc="largest analog parameter code"),
    "neuron.refractory_clock_max": Key(int, lo=0, hi=native.REFRACTORY_CLOCK_MAX,
                                       doc="largest refractory clock exponent"),
    "neuron.bias_max": Key(int, lo=0, hi=native.BIAS_MAX, doc="largest |bias| (state units)"),
    "synapse.delay_max": Key(int, lo=1, hi=native.DELAY_MAX, doc="largest event delay in steps"),
    "synapse.max_parallel": Key(int, lo=1, hi=64,
                                doc="parallel synapses per (source, neuron, sign) for large weights"),
    # ---- the quantizer's operating window (voltage codes) ------------------------------
    "quantize.v_low_code": Key(int, lo=0, hi=native.CODE_MAX,
                               doc="code of the lowest float voltage of interest"),
    "quantize.v_high_code": Key(int, lo=1, hi=native.CODE_MAX, doc="code of the threshold"),
    # ---- overflow (fixed by the datapath: analog rails) --------------------------------
    "overflow.v": Key(str, choices=("saturate",), sourced=True, doc="membrane rails"),
    "overflow.i": Key(str, choices=("saturate",), sourced=True, doc="synaptic current limit"),
    "overflow.strict": Key(bool, required=False, doc="raise on overflow instead of counting"),
    # ---- analog mismatch ---------------------------------------------------------------
    "analog.fpn_sigma_codes": Key(float, lo=0, required=False,
                                  doc="fixed-pattern noise (codes) for robustness runs"),
}
"""BrainScaleS-2-family keys (added to ``nmc.targets.families.COMMON_KEYS``)."""


def check(profile) -> list[str]:
    """Rules between keys: drivers feed all rows, buses reach all drivers, the address width
    names every row address, the operating window is ordered."""
    g = profile.get
    problems = []
    if g("core.drivers") * g("core.rows_per_driver") != g("core.rows"):
        problems.append(f"core.drivers x core.rows_per_driver = "
                        f"{g('core.drivers') * g('core.rows_per_driver')} differs from "
                        f"core.rows = {g('core.rows')}")
    if g("core.event_buses") * g("core.drivers_per_bus") != g("core.drivers"):
        problems.append(f"core.event_buses x core.drivers_per_bus = "
                        f"{g('core.event_buses') * g('core.drivers_per_bus')} differs from "
                        f"core.drivers = {g('core.drivers')}")
    if (g("core.row_addresses") - 1).bit_length() > g("widths.address"):
        problems.append(f"widths.address = {g('widths.address')} cannot name "
                        f"core.row_addresses = {g('core.row_addresses')}")
    if g("quantize.v_low_code") >= g("quantize.v_high_code"):
        problems.append(f"quantize.v_low_code = {g('quantize.v_low_code')} must be below "
                        f"quantize.v_high_code = {g('quantize.v_high_code')}")
    return problems
