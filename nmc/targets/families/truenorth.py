"""Key spec of the ``truenorth`` family (TrueNorth and its open re-implementation RANC).

The neuron datapath (integration by axon type, leak with reversal, stochastic modes, reset modes,
the counter-based PRNG) is fixed by the family and implemented in ``ir/native/truenorth.py``; a
profile chooses the resources (cores, axons, neurons, scheduler slots), the register widths up to
the datapath's maximum, the membrane overflow policy, and the NoC and energy numbers. See
``docs/families.md``.
"""

from __future__ import annotations

from ir.native import truenorth as native
from nmc.targets.families import Key

KEYS: dict[str, Key] = {
    # ---- per-core resources ------------------------------------------------------------
    "core.neurons": Key(int, lo=1, hi=1 << 12, doc="neurons per core (crossbar columns)"),
    "core.axons": Key(int, lo=native.AXON_TYPES, hi=1 << 12, doc="input axons per core (rows)"),
    "core.axon_types": Key(int, lo=native.AXON_TYPES, hi=native.AXON_TYPES,
                           doc="axon types G (fixed by the datapath: 4 weights per neuron)"),
    "core.scheduler_slots": Key(int, lo=2, hi=native.DELAY_MAX + 1,
                                doc="scheduler slots per core; delays are 1 .. slots-1"),
    "core.targets_per_neuron": Key(int, lo=1, hi=1, doc="destinations of one neuron's spike"),
    "core.tick_cycles": Key(int, lo=1, doc="core clocks to process one tick without stalls"),
    # ---- register widths (bits); bounded by the native kinds' fields -------------------
    "widths.weight": Key(int, lo=2, hi=9, doc="signed synaptic weight s_j[G] bits"),
    "widths.leak": Key(int, lo=2, hi=9, doc="signed leak lambda bits"),
    "widths.threshold": Key(int, lo=1, hi=18, doc="alpha / beta magnitude bits"),
    "widths.reset": Key(int, lo=1, hi=18, doc="signed reset value R bits"),
    "widths.membrane": Key(int, lo=2, hi=native.V_BITS_MAX, doc="signed membrane V bits"),
    "widths.tm": Key(int, lo=0, hi=native.TM_MAX, doc="largest threshold PRN mask width TM"),
    "widths.prn_compare": Key(int, lo=8, hi=8, doc="random bits compared in stochastic "
                                                 "synapses and leak (prn8)"),
    # ---- overflow ----------------------------------------------------------------------
    "overflow.membrane": Key(str, choices=("saturate", "wrap"), sourced=True,
                             doc="membrane overflow at the end of a tick"),
    "overflow.strict": Key(bool, required=False, doc="raise on overflow instead of counting"),
    # ---- network on chip (RANC RTL) ----------------------------------------------------
    "noc.packet_bits": Key(int, lo=1, doc="bits per spike packet"),
    "noc.dx_bits": Key(int, lo=2, doc="signed relative x offset bits"),
    "noc.dy_bits": Key(int, lo=2, doc="signed relative y offset bits"),
    "noc.axon_bits": Key(int, lo=1, doc="target axon index bits"),
    "noc.tick_bits": Key(int, lo=1, doc="delivery tick bits"),
    "noc.edge_links": Key(int, lo=1, doc="links serialised per chip edge"),
    # ---- energy ------------------------------------------------------------------------
    "energy.typical_watts": Key(float, lo=0, doc="typical total chip power (for reports)"),
}
"""TrueNorth-family keys (added to ``nmc.targets.families.COMMON_KEYS``)."""


def check(profile) -> list[str]:
    """Rules between keys: packet fields address every axon and slot, thresholds fit the
    membrane, the packet holds its fields."""
    g = profile.get
    problems = []
    if (g("core.axons") - 1).bit_length() > g("noc.axon_bits"):
        problems.append(f"noc.axon_bits = {g('noc.axon_bits')} cannot address core.axons = "
                        f"{g('core.axons')}")
    if (g("core.scheduler_slots") - 1).bit_length() > g("noc.tick_bits"):
        problems.append(f"noc.tick_bits = {g('noc.tick_bits')} cannot name "
                        f"core.scheduler_slots = {g('core.scheduler_slots')} slots")
    fields = g("noc.dx_bits") + g("noc.dy_bits") + g("noc.axon_bits") + g("noc.tick_bits")
    if fields > g("noc.packet_bits"):
        problems.append(f"noc.packet_bits = {g('noc.packet_bits')} is less than its fields "
                        f"dx + dy + axon + tick = {fields}")
    if g("widths.threshold") >= g("widths.membrane"):
        problems.append(f"widths.threshold = {g('widths.threshold')} must be below "
                        f"widths.membrane = {g('widths.membrane')} (alpha must fit the membrane)")
    if g("widths.reset") > g("widths.membrane"):
        problems.append(f"widths.reset = {g('widths.reset')} exceeds widths.membrane = "
                        f"{g('widths.membrane')}")
    return problems
