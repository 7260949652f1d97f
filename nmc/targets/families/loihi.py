"""Key spec of the ``loihi`` family (Intel Loihi 1 style CUBA compartments).

The datapath (decay arithmetic, 24-bit u and v, the ``<< 6`` scalings) is fixed by the family and
implemented in ``ir/native/loihi.py``; a profile chooses the resources (cores, compartments, axons,
synapse memory, config tables), the widths of the stored parameters up to the datapath's maximum,
delay and refractory ranges, and the NoC and energy numbers. See ``docs/targets.md``.
"""

from __future__ import annotations

from ir.native import loihi as native
from nmc.targets.families import Key

KEYS: dict[str, Key] = {
    # ---- per-core resources ------------------------------------------------------------
    "core.neurons": Key(int, lo=1, hi=1 << 16, doc="compartments per core"),
    "core.axons_in": Key(int, lo=1, hi=1 << 16, doc="input axons per core"),
    "core.axons_out": Key(int, lo=1, hi=1 << 16, doc="output axons per core"),
    "core.synapse_words": Key(int, lo=1, doc="synapse memory words per core"),
    "core.synapse_word_bits": Key(int, lo=8, hi=1024, doc="bits per synapse memory word"),
    "core.compartment_configs": Key(int, lo=1, doc="distinct compartment configs (du, dv, ...)"),
    "core.threshold_configs": Key(int, lo=1, doc="distinct threshold configs (vth)"),
    "core.synapse_configs": Key(int, lo=1, doc="distinct synapse formats"),
    # ---- stored parameter widths (bits); bounded by the native kinds' fields -----------
    "widths.weight": Key(int, lo=1, hi=8, doc="max stored weight bits (num_weight_bits)"),
    "widths.weight_exp_min": Key(int, lo=-8, hi=0, doc="smallest weight exponent"),
    "widths.weight_exp_max": Key(int, lo=0, hi=7, doc="largest weight exponent"),
    "widths.decay": Key(int, lo=native.DECAY_BITS, hi=native.DECAY_BITS,
                        doc="du, dv bits (fixed by the >> 12 decay arithmetic)"),
    "widths.u": Key(int, lo=native.U_BITS, hi=native.U_BITS, doc="current register bits"),
    "widths.v": Key(int, lo=native.V_BITS, hi=native.V_BITS, doc="voltage register bits"),
    "widths.vth_mant": Key(int, lo=1, hi=17, doc="threshold mantissa bits (threshold vth << 6)"),
    "widths.bias_mant": Key(int, lo=2, hi=13, doc="signed bias mantissa bits"),
    "widths.bias_exp": Key(int, lo=0, hi=3, doc="bias exponent bits"),
    # ---- ranges ------------------------------------------------------------------------
    "neuron.refractory_max": Key(int, lo=0, hi=63, doc="largest refractory period in steps"),
    "synapse.delay_max": Key(int, lo=1, hi=63, doc="largest synaptic delay in steps"),
    # ---- synapse memory encoding (nmc/passes/cost.py counts words with these) ------------
    "synapse.group_size": Key(int, lo=1, hi=4096, doc="synapses per encoded group"),
    "synapse.group_header_bits": Key(int, lo=0, hi=64, doc="header bits per synapse group"),
    "synapse.index_bits": Key(list, item=int, lo=0, hi=16, doc="allowed synapse index widths"),
    "synapse.weight_bits": Key(list, item=int, lo=0, hi=8, doc="allowed stored weight widths"),
    # ---- overflow policies (fixed by the datapath, stated for reports and the emulator) --
    "overflow.u": Key(str, choices=("wrap",), sourced=True, doc="u wraps to 24 bits signed"),
    "overflow.v": Key(str, choices=("saturate",), sourced=True, doc="v saturates at +-(2^23-1)"),
    "overflow.strict": Key(bool, required=False, doc="raise on overflow instead of counting"),
}
"""Loihi-family keys (added to ``nmc.targets.families.COMMON_KEYS``)."""
