"""The BrainScaleS-2 CORE section and PARAMS keys (``docs/image-format.md``, "BrainScaleS-2").

A *core* is one hemisphere of a HICANN-X style chip (``../shared/hardware.md`` section 3): up to
``core.neurons`` (256) neuron circuits, each the column of a ``core.rows`` x circuits synapse
array. The tables are declarative, like the Loihi ones in :mod:`emulator.format`; the writer
(``nmc/backend/brainscales2.py``) fills them and the loader (``emulator/brainscales2.py``,
:func:`decode_core`) reads them back with the same tables.

Section layout (each bit table starts on a byte boundary and ends with zero padding bits)::

    BSS2_CORE_HEADER   position and counts (32 bytes)
    SLICE x n_slices   the populations whose neurons the core holds, in order
    BSS2_FILTER        the routing crossbar entries of the hemisphere (labels it accepts)
    BSS2_NEURON        per logical neuron: 10-bit codes, bias, refractory, circuits, label, id
    BSS2_ROW           per synapse row: sign, label group, delay
    BSS2_SYNAPSE       n_rows x n_circuits synapses (row-major): 6-bit address, 6-bit weight

Event path (digital, exact; hardware.md 3):

* a spiking neuron sends events carrying its 16-bit ``label``;
* the event enters a hemisphere when ``(label & mask) == target`` for one of its BSS2_FILTER
  entries (the routing crossbar);
* there it reaches every row whose ``group`` equals ``label >> widths.address``; on such a row
  the synapse of each column whose 6-bit ``address`` equals ``label & (2**address - 1)`` adds its
  6-bit ``weight`` to the excitatory or inhibitory input (the row's ``sign``) of the column's
  neuron, ``delay`` ticks after the spike.

A logical neuron with ``k`` merged circuits owns ``k`` consecutive columns (circuits in neuron
order); the inputs of its columns add up.
"""

from __future__ import annotations

from emulator.format import (
    COMMON_PARAMS,
    SLICE,
    BitTable,
    CoreLayout,
    Field,
    Param,
    Struct,
    _p,
)

SIGNS = ("excitatory", "inhibitory")
"""BSS2_ROW.sign codes 0 and 1."""

FPN_ID_BITS = 32
"""Width of BSS2_NEURON.fpn_id (the neuron ids of the graph's ``id_base`` field are < 2**32)."""

BSS2_CORE_HEADER = Struct("BSS2_CORE_HEADER", [
    Field("chip", 16),
    Field("x", 16),
    Field("y", 16),
    Field("reserved", 16, kind="reserved"),
    Field("n_neurons", 32, lo=1, doc="logical neurons"),
    Field("n_circuits", 32, lo=1, doc="neuron circuits = synapse columns (sum of BSS2_NEURON "
                                      "circuits)"),
    Field("n_rows", 32, doc="synapse rows used"),
    Field("n_filters", 32, doc="crossbar entries"),
    Field("n_slices", 16, lo=1),
    Field("reserved2", 16, kind="reserved"),
    Field("reserved3", 32, kind="reserved"),
], doc="Then SLICE x n_slices and the bit tables BSS2_FILTER, BSS2_NEURON, BSS2_ROW, "
       "BSS2_SYNAPSE, each starting on a byte boundary. Derived width: w_group = widths.label - "
       "widths.address.")

BSS2_FILTER = BitTable("BSS2_FILTER", [
    Field("mask", "widths.label"),
    Field("target", "widths.label", doc="no bit outside mask (such an entry never matches)"),
], doc="Routing crossbar of the hemisphere: an event with label L enters when (L & mask) == "
       "target for some entry. Entries are distinct.")

BSS2_NEURON = BitTable("BSS2_NEURON", [
    Field("v_leak", "widths.code", doc="leak (rest) potential code"),
    Field("v_threshold", "widths.code"),
    Field("v_reset", "widths.code"),
    Field("c_mem", "widths.code", doc="membrane leak conductance: keeps (decay_den - c) / decay_den"),
    Field("c_syn_exc", "widths.code"),
    Field("c_syn_inh", "widths.code"),
    Field("gain_exc", "widths.code", doc="state units of current per unit of weight"),
    Field("gain_inh", "widths.code"),
    Field("bias", "widths.bias", signed=True,
          doc="state units per tick, abs(bias) <= neuron.bias_max"),
    Field("refractory", "widths.refractory", doc="periods of 2**refractory_clock ticks"),
    Field("refractory_clock", "widths.refractory_clock"),
    Field("readout", 1, doc="1: never spikes; output is v (state units)"),
    Field("circuits_minus_1", "widths.merge", doc="merged circuits - 1 (<= core.max_merge - 1)"),
    Field("label", "widths.label", doc="event label of its spikes (0 for a readout)"),
    Field("fpn_id", FPN_ID_BITS, doc="fixed-pattern-noise id (ours: the graph's id_base + index)"),
], doc="One record per logical neuron, in slice order; the analog codes are <= neuron.code_max.")

BSS2_ROW = BitTable("BSS2_ROW", [
    Field("sign", 1, doc="0 excitatory, 1 inhibitory"),
    Field("group", "w_group", doc="the row sees events with label >> widths.address == group"),
    Field("delay_minus_1", "widths.delay", doc="ticks from spike to input - 1 (<= synapse.delay_max - 1)"),
], doc="One record per synapse row.")

BSS2_SYNAPSE = BitTable("BSS2_SYNAPSE", [
    Field("address", "widths.address", doc="matches label & (2**widths.address - 1)"),
    Field("weight", "widths.weight", doc="0: no synapse (then address 0)"),
], doc="n_rows x n_circuits records, row-major: the synapse of row r and column j.")

LAYOUT = CoreLayout("brainscales2", BSS2_CORE_HEADER,
                    (SLICE, BSS2_FILTER, BSS2_NEURON, BSS2_ROW, BSS2_SYNAPSE))
"""The brainscales2 CORE section, in file order."""

_DEFAULT = "ours: emulator/format_brainscales2.py default (the profile does not define {key})"

_OVERRIDES: dict[str, Param] = {
    "noc.cycles_per_sop": _p(
        "noc.cycles_per_sop", "int", 0, 1 << 16, default=0,
        source=_DEFAULT.format(key="noc.cycles_per_sop")
        + "; the analog synapse array acts on every column of a row at once, so a synapse costs "
          "no digital cycle (an event's cost is its slot on the event bus: the eject port)",
        doc="core cycles per synaptic operation"),
    "noc.cycles_per_update": _p(
        "noc.cycles_per_update", "int", 0, 1 << 16, default=0,
        source=_DEFAULT.format(key="noc.cycles_per_update")
        + "; analog neurons integrate continuously and need no digital update cycle",
        doc="core cycles per neuron update"),
    "noc.overrun": _p(
        "noc.overrun", "str", choices=("stretch", "drop"), default="drop",
        source=_DEFAULT.format(key="noc.overrun")
        + "; the analog chip runs in continuous time and cannot wait for a late event (drop)",
        doc="a tick that overruns its period: stretch or drop"),
}

PARAMS: tuple[Param, ...] = tuple(_OVERRIDES.get(p.key, p) for p in COMMON_PARAMS) + (
    _p("core.rows", "int", 1, 1 << 16, doc="synapse rows per hemisphere"),
    _p("core.row_addresses", "int", 1, 1 << 15, doc="sources per row: 2**widths.address"),
    _p("core.max_merge", "int", 1, 256, doc="circuits one logical neuron may join"),
    _p("widths.weight", "int", 1, 16, doc="synapse weight bits (unsigned)"),
    _p("widths.code", "int", 1, 16, doc="analog parameter code bits"),
    _p("widths.address", "int", 1, 15, doc="synapse address bits"),
    _p("widths.label", "int", 2, 30, doc="event label bits"),
    _p("widths.refractory", "int", 0, 16, doc="refractory counter bits"),
    _p("widths.v", "int", 2, 32, doc="membrane state bits (unsigned, 0 .. 2**v - 1)"),
    _p("widths.i", "int", 2, 32, doc="synaptic current state bits (unsigned)"),
    _p("widths.bias", "int", 1, 22, profile=None, derive="bitlen:neuron.bias_max+1",
       doc="signed bias field bits"),
    _p("widths.refractory_clock", "int", 0, 5, profile=None,
       derive="bitlen:neuron.refractory_clock_max"),
    _p("widths.delay", "int", 0, 16, profile=None, derive="bitlen:synapse.delay_max-1",
       doc="bits of a stored delay - 1"),
    _p("widths.merge", "int", 0, 8, profile=None, derive="bitlen:core.max_merge-1",
       doc="bits of circuits - 1"),
    _p("neuron.code_max", "int", 1, 65535, doc="largest analog code"),
    _p("neuron.bias_max", "int", 0, 1 << 20),
    _p("neuron.refractory_clock_max", "int", 0, 31),
    _p("synapse.delay_max", "int", 1, 1 << 16),
    _p("overflow.v", "str", choices=("saturate",), doc="v saturates at 0 and 2**v - 1 (rails)"),
    _p("overflow.i", "str", choices=("saturate",), doc="currents saturate at 2**i - 1"),
    _p("datapath.v_frac", "int", 0, 16, profile=None, derive="native:V_FRAC",
       doc="state units per voltage code: 2**v_frac"),
    _p("datapath.decay_den", "int", 1, 1 << 16, profile=None, derive="native:DECAY_DEN",
       doc="decay(x, c) = trunc(x * (decay_den - c) / decay_den)"),
    _p("analog.fpn_sigma_codes", "float", 0.0, 65535.0, default=0.0,
       source=_DEFAULT.format(key="analog.fpn_sigma_codes") + "; an ideal chip",
       doc="suggested fixed-pattern-noise spread in codes (emulator.brainscales2."
           "fixed_pattern_noise(chip, 'profile') uses it)"),
)
"""PARAMS of a brainscales2 image. Every key is required on load; unknown keys are refused."""


def describe() -> str:
    """The brainscales2 tables and PARAMS keys as Markdown (the reference part of the
    "BrainScaleS-2" section of docs/image-format.md; a test holds the document to it)."""
    from emulator.format import describe as describe_all

    text = describe_all(("brainscales2",))
    return text[text.index(f"### {BSS2_CORE_HEADER.name}"):]


def group_bits(env: dict) -> int:
    """Bits of BSS2_ROW.group: the label bits above the synapse address."""
    return int(env["widths.label"]) - int(env["widths.address"])


__all__ = ["BSS2_CORE_HEADER", "BSS2_FILTER", "BSS2_NEURON", "BSS2_ROW", "BSS2_SYNAPSE",
           "FPN_ID_BITS", "LAYOUT", "PARAMS", "SIGNS", "describe", "group_bits"]
