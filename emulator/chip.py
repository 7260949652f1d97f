"""The loaded chip: everything a chip image holds, decoded and validated (see ``emulator.load``).

A :class:`Chip` is read-only data plus :meth:`Chip.run`. Per-core tables keep the image's own
structure (config tables, per-compartment fields, decoded synapse lists, route entries) so that
``nmc inspect --disasm`` can show them; the datapath modules (``emulator/loihi.py``) derive their
struct-of-arrays state from them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Port:
    """An input channel group or an output port.

    ``entries``: int64 ``(k, 4)`` rows ``[core, first, start, stop]``: elements ``start..stop-1``
    go to axons (inputs) or come from compartments (outputs) ``first + (element - start)`` of
    ``core``. ``kind``: ``"spikes"`` or ``"values"`` (readout compartments' v).
    """

    name: str
    width: int
    kind: str
    shape: tuple[int, ...]
    entries: np.ndarray
    latency: int | None = None
    extra_latency: int = 0


@dataclass
class Population:
    """A population of the compiled graph: where each of its neurons lives.

    ``core[k]``, ``local[k]``: core id and compartment of neuron k (flat C-order index)."""

    name: str
    size: int
    shape: tuple[int, ...]
    readout: bool
    core: np.ndarray = field(repr=False, default=None)
    local: np.ndarray = field(repr=False, default=None)


@dataclass
class LoihiCore:
    """One Loihi core as decoded from its CORE section.

    Config tables: ``cx`` (du, dv, refractory, readout), ``vth`` (vth_mant), ``acc_exp``
    (accumulator group exponents), ``fmt`` (wb, sign, db, dense, ib, acc). Per compartment:
    ``neuron`` (cx, vth, bias_mant, bias_exp, n_routes). Per axon: ``axon`` (ptr, n_blocks, base).
    Synapses, CSR by axon (``syn_ptr``): compartment ``syn_comp``, integer weight ``syn_w``,
    delay ``syn_delay`` (>= 1), accumulator group ``syn_acc``. Routes, CSR by compartment
    (``route_ptr``): destination core id ``route_core`` and axon ``route_axon``.
    ``bits``: bits used per table; ``slices``: ``(population index, start, stop)`` rows.
    """

    id: int
    chip: int
    x: int
    y: int
    n_neurons: int
    n_axons: int
    n_routes: int
    n_words: int
    slices: np.ndarray
    cx: dict[str, np.ndarray]
    vth: np.ndarray
    acc_exp: np.ndarray
    fmt: dict[str, np.ndarray]
    neuron: dict[str, np.ndarray]
    axon: dict[str, np.ndarray]
    syn_ptr: np.ndarray
    syn_comp: np.ndarray
    syn_w: np.ndarray
    syn_delay: np.ndarray
    syn_acc: np.ndarray
    route_ptr: np.ndarray
    route_core: np.ndarray
    route_axon: np.ndarray
    route_pos: np.ndarray = field(default=None, repr=False)
    bits: dict[str, int] = field(default_factory=dict)

    @property
    def n_synapses(self) -> int:
        return int(self.syn_comp.size)

    @property
    def syn_group(self) -> np.ndarray:
        """The synapses' accumulator groups (``emulator.synapses`` lanes are per group)."""
        return self.syn_acc

    @property
    def readout(self) -> np.ndarray:
        """Per compartment: a readout (never spikes, its output is v)."""
        return self.cx["readout"][self.neuron["cx"]].astype(bool)


@dataclass
class TrueNorthCore:
    """One TrueNorth core as decoded from its CORE section.

    ``axon``: per input axon ``type`` and ``delay``; ``neuron``: per neuron every parameter of
    ``TN_NEURON`` (s0..s3, stoch_syn, leak, leak_rev, stoch_leak, alpha, beta, tm, gamma, kappa,
    v_reset, v_bits, overflow, seed, nid, n_routes); ``crossbar``: (n_axons, n_neurons) bool.
    The synapse lists (CSR by axon, one synapse per crossbar bit: group = the axon's type,
    weight 1, delay = the axon's) and the routes have the same meaning as in :class:`LoihiCore`.
    """

    id: int
    chip: int
    x: int
    y: int
    n_neurons: int
    n_axons: int
    n_routes: int
    slices: np.ndarray
    axon: dict[str, np.ndarray]
    neuron: dict[str, np.ndarray]
    crossbar: np.ndarray
    syn_ptr: np.ndarray
    syn_comp: np.ndarray
    syn_group: np.ndarray
    syn_w: np.ndarray
    syn_delay: np.ndarray
    route_ptr: np.ndarray
    route_core: np.ndarray
    route_axon: np.ndarray
    route_pos: np.ndarray = field(default=None, repr=False)
    bits: dict[str, int] = field(default_factory=dict)
    n_words: int = 0

    @property
    def n_synapses(self) -> int:
        return int(self.syn_comp.size)

    @property
    def readout(self) -> np.ndarray:
        return np.zeros(self.n_neurons, bool)


class Chip:
    """A validated chip image, ready to run.

    Attributes: ``family``, ``version`` (major, minor), ``profile_name``, ``profile_sha256``,
    ``graph_name``, ``dt``, ``n_chips``, ``mesh`` (mesh_x, mesh_y), ``params`` (run-time numbers
    by dotted key), ``sources`` (their source tags), ``populations``, ``inputs``, ``outputs``,
    ``cores``, ``provenance`` (dict), ``image_bytes``.
    """

    def __init__(self, **kw: Any):
        self.family: str = kw["family"]
        self.version: tuple[int, int] = kw["version"]
        self.profile_name: str = kw["profile_name"]
        self.profile_sha256: str = kw["profile_sha256"]
        self.graph_name: str = kw["graph_name"]
        self.dt: float = kw["dt"]
        self.n_chips: int = kw["n_chips"]
        self.mesh: tuple[int, int] = kw["mesh"]
        self.params: dict[str, Any] = kw["params"]
        self.sources: dict[str, str] = kw["sources"]
        self.populations: list[Population] = kw["populations"]
        self.inputs: list[Port] = kw["inputs"]
        self.outputs: list[Port] = kw["outputs"]
        self.cores: list[LoihiCore] = kw["cores"]
        self.provenance: dict[str, Any] = kw["provenance"]
        self.image_bytes: int = kw["image_bytes"]
        self._cache: dict[str, Any] = {}

    # ---- lookups ----------------------------------------------------------------------------
    def population(self, name: str) -> Population:
        """The population called ``name`` (InputError naming the known ones if absent)."""
        for p in self.populations:
            if p.name == name:
                return p
        from emulator.errors import InputError

        raise InputError(f"chip {self.graph_name}: no population {name!r}; populations: "
                         f"{', '.join(p.name for p in self.populations)}")

    @property
    def n_neurons(self) -> int:
        return sum(c.n_neurons for c in self.cores)

    @property
    def n_synapses(self) -> int:
        return sum(c.n_synapses for c in self.cores)

    def core_xy(self, core: int) -> tuple[int, int]:
        """Global mesh coordinates of a core: chips are tiled along x (ours)."""
        c = self.cores[core]
        return c.chip * self.mesh[0] + c.x, c.y

    # ---- summaries --------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """What ``nmc inspect`` prints: family, cores, neurons, synapses, bits, I/O ports."""
        word = int(self.params.get("core.synapse_word_bits", 64))
        bits = {}
        for c in self.cores:
            for k, v in c.bits.items():
                bits[k] = bits.get(k, 0) + v
        return {
            "family": self.family,
            "format_version": f"{self.version[0]}.{self.version[1]}",
            "graph": self.graph_name,
            "profile": self.profile_name,
            "profile_sha256": self.profile_sha256,
            "chips": self.n_chips,
            "mesh": list(self.mesh),
            "cores_used": len(self.cores),
            "cores_available": self.n_chips * self.mesh[0] * self.mesh[1],
            "neurons": self.n_neurons,
            "synapses": self.n_synapses,
            "axons_in": sum(c.n_axons for c in self.cores),
            "axons_out": sum(c.n_routes for c in self.cores),
            "synapse_words": sum(c.n_words for c in self.cores),
            "synapse_word_bits": word,
            "bits": dict(sorted(bits.items())),
            "total_bits": int(sum(bits.values())),
            "image_bytes": self.image_bytes,
            "populations": [
                {"name": p.name, "size": p.size, "shape": list(p.shape),
                 "readout": p.readout, "cores": sorted({int(x) for x in np.unique(p.core)})}
                for p in self.populations],
            "inputs": [{"name": p.name, "width": p.width, "shape": list(p.shape),
                        "entries": int(len(p.entries))} for p in self.inputs],
            "outputs": [{"name": p.name, "width": p.width, "shape": list(p.shape),
                         "kind": p.kind, "latency": p.latency, "extra_latency": p.extra_latency}
                        for p in self.outputs],
            "tick_seconds": self.params.get("chip.tick_seconds"),
            "speedup": self.params.get("chip.speedup"),
            "provenance": self.provenance,
        }

    def summary_text(self) -> str:
        """The summary as aligned text lines."""
        s = self.summary()
        lines = [
            f"chip image   {s['graph']}  (format {s['format_version']}, {s['image_bytes']} bytes)",
            f"family       {s['family']}   profile {s['profile']}  sha256 {s['profile_sha256'][:16]}...",
            f"mesh         {s['chips']} chip(s) of {s['mesh'][0]} x {s['mesh'][1]}; cores used "
            f"{s['cores_used']} of {s['cores_available']}",
            f"neurons      {s['neurons']}",
            f"synapses     {s['synapses']}" + (
                f"  ({s['synapse_words']} words of {s['synapse_word_bits']} bits)"
                if "core.synapse_word_bits" in self.params else ""),
            f"axons        {s['axons_in']} in, {s['axons_out']} out (route entries)",
            f"bits         {s['total_bits']}  ("
            + ", ".join(f"{k} {v}" for k, v in s["bits"].items()) + ")",
            f"tick         {s['tick_seconds']} s, speed-up {s['speedup']}",
            "populations:",
        ]
        for p in s["populations"]:
            lines.append(f"  {p['name']:<16} {p['size']:>7} {'readout' if p['readout'] else 'spiking':<8} "
                         f"cores {_ranges(p['cores'])}")
        lines.append("inputs:")
        for p in s["inputs"]:
            lines.append(f"  {p['name']:<16} {p['width']:>7}  shape {tuple(p['shape'])}  "
                         f"{p['entries']} axon group(s)")
        lines.append("outputs:")
        for p in s["outputs"]:
            lat = "-" if p["latency"] is None else p["latency"]
            lines.append(f"  {p['name']:<16} {p['width']:>7}  shape {tuple(p['shape'])}  {p['kind']}"
                         f"  latency {lat} (+{p['extra_latency']})")
        return "\n".join(lines)

    def disasm(self, core: int | None = None, max_rows: int | None = None) -> str:
        """A per-core human-readable dump of the image's tables (all cores, or one)."""
        from emulator.errors import InputError

        if core is not None and not 0 <= core < len(self.cores):
            raise InputError(f"--core {core}: the chip has cores 0..{len(self.cores) - 1}")
        if self.family == "brainscales2":  # the family keeps its disassembler with its datapath
            from emulator.brainscales2 import disasm

            return disasm(self, core, max_rows)
        cores = self.cores if core is None else [self.cores[core]]
        out = []
        pops = self.populations
        for c in cores:
            if isinstance(c, TrueNorthCore):
                out.extend(_tn_disasm(c, pops, max_rows))
                continue
            out.append(f"core {c.id}  chip {c.chip} x {c.x} y {c.y}  compartments {c.n_neurons}  "
                       f"axons {c.n_axons}  synapses {c.n_synapses}  words {c.n_words}  "
                       f"routes {c.n_routes}")
            for p, s, e in c.slices.tolist():
                out.append(f"  slice {pops[p].name}[{s}:{e}]")
            for i in range(len(c.vth)):
                out.append(f"  vth[{i}]  vth_mant {int(c.vth[i])}")
            for i in range(len(c.cx["du"])):
                out.append(f"  cx[{i}]  du {int(c.cx['du'][i])} dv {int(c.cx['dv'][i])} "
                           f"refractory {int(c.cx['refractory'][i])} "
                           f"{'readout' if c.cx['readout'][i] else 'spiking'}")
            for i in range(len(c.acc_exp)):
                out.append(f"  acc[{i}]  weight_exp {int(c.acc_exp[i])}")
            signs = ("mixed", "excitatory", "inhibitory")
            for i in range(len(c.fmt["wb"])):
                f = {k: int(v[i]) for k, v in c.fmt.items()}
                out.append(f"  fmt[{i}]  wb {f['wb']} {signs[f['sign']]} db {f['db']} "
                           f"{'dense' if f['dense'] else 'sparse ib ' + str(f['ib'])} acc {f['acc']}")
            n_show = c.n_neurons if max_rows is None else min(c.n_neurons, max_rows)
            for j in range(n_show):
                r0, r1 = int(c.route_ptr[j]), int(c.route_ptr[j + 1])
                tg = " ".join(f"c{int(c.route_core[k])}:a{int(c.route_axon[k])}" for k in range(r0, r1))
                out.append(f"  n{j:<5} cx {int(c.neuron['cx'][j])} vth {int(c.neuron['vth'][j])} "
                           f"bias {int(c.neuron['bias_mant'][j])}<<{int(c.neuron['bias_exp'][j])}"
                           + (f"  -> {tg}" if tg else ""))
            if n_show < c.n_neurons:
                out.append(f"  ... {c.n_neurons - n_show} more compartments")
            n_show = c.n_axons if max_rows is None else min(c.n_axons, max_rows)
            for a in range(n_show):
                s0, s1 = int(c.syn_ptr[a]), int(c.syn_ptr[a + 1])
                syn = " ".join(
                    f"{int(c.syn_comp[k])}:{int(c.syn_w[k])}"
                    + (f"@{int(c.syn_delay[k])}" if c.syn_delay[k] != 1 else "")
                    for k in range(s0, s1))
                out.append(f"  a{a:<5} ptr {int(c.axon['ptr'][a])} blocks "
                           f"{int(c.axon['n_blocks'][a])} base {int(c.axon['base'][a])}  {syn}")
            if n_show < c.n_axons:
                out.append(f"  ... {c.n_axons - n_show} more axons")
        if core is None:
            for p in self.inputs:
                for c_, a, s, e in p.entries.tolist():
                    out.append(f"input {p.name}[{s}:{e}] -> core {c_} axons {a}..{a + e - s - 1}")
            for p in self.outputs:
                for c_, n, s, e in p.entries.tolist():
                    out.append(f"output {p.name}[{s}:{e}] <- core {c_} compartments {n}..{n + e - s - 1}")
        return "\n".join(out)

    # ---- running ----------------------------------------------------------------------------
    def run(self, inputs: Any = None, ticks: int | None = None, *, batch: int | None = None,
            mode: str = "fast", probes: Any = (), strict: bool = False, resets: Any = None,
            mismatch: Any = None, **options: Any):
        """Run the chip; see :func:`emulator.runner.run` for the arguments and the result.

        ``resets={population: ticks}``: host resets after those ticks (``"*"``: every
        population); ``mismatch=sigma | (sigma, seed)``: BrainScaleS-2 analog fixed-pattern
        noise. The runner's module doc states both."""
        from emulator.runner import run

        return run(self, inputs, ticks, batch=batch, mode=mode, probes=probes, strict=strict,
                   resets=resets, mismatch=mismatch, **options)

    def __repr__(self) -> str:
        return (f"<Chip {self.graph_name!r} family {self.family} profile {self.profile_name}: "
                f"{len(self.cores)} cores, {self.n_neurons} neurons, {self.n_synapses} synapses>")


def _tn_disasm(c: TrueNorthCore, pops: list[Population], max_rows: int | None) -> list[str]:
    """Readable lines of a TrueNorth core: neurons (parameters, target) and crossbar rows."""
    out = [f"core {c.id}  chip {c.chip} x {c.x} y {c.y}  neurons {c.n_neurons}  axons {c.n_axons}"
           f"  synapses {c.n_synapses}  routes {c.n_routes}"]
    for p, s, e in c.slices.tolist():
        out.append(f"  slice {pops[p].name}[{s}:{e}]")
    nr = c.neuron
    n_show = c.n_neurons if max_rows is None else min(c.n_neurons, max_rows)
    for j in range(n_show):
        r0, r1 = int(c.route_ptr[j]), int(c.route_ptr[j + 1])
        tg = " ".join(f"c{int(c.route_core[k])}:a{int(c.route_axon[k])}" for k in range(r0, r1))
        out.append(
            f"  n{j:<4} s=({int(nr['s0'][j])},{int(nr['s1'][j])},{int(nr['s2'][j])},{int(nr['s3'][j])})"
            f" stoch {int(nr['stoch_syn'][j])} leak {int(nr['leak'][j])} rev {int(nr['leak_rev'][j])}"
            f" alpha {int(nr['alpha'][j])} beta {int(nr['beta'][j])} tm {int(nr['tm'][j])}"
            f" gamma {int(nr['gamma'][j])} kappa {int(nr['kappa'][j])} R {int(nr['v_reset'][j])}"
            f" v{int(nr['v_bits'][j])} {'wrap' if nr['overflow'][j] else 'sat'}"
            f" seed {int(nr['seed'][j])} id {int(nr['nid'][j])}" + (f"  -> {tg}" if tg else ""))
    n_show = c.n_axons if max_rows is None else min(c.n_axons, max_rows)
    for a in range(n_show):
        row = "".join("1" if b else "." for b in c.crossbar[a])
        out.append(f"  a{a:<4} G{int(c.axon['type'][a])} d{int(c.axon['delay'][a])}  {row}")
    return out


def _ranges(ids: list[int]) -> str:
    """``[0,1,2,5]`` -> ``"0-2,5"``."""
    if not ids:
        return "-"
    out, start, prev = [], ids[0], ids[0]
    for i in ids[1:] + [math.inf]:
        if i == prev + 1:
            prev = i
            continue
        out.append(f"{start}-{prev}" if prev > start else f"{start}")
        start = prev = i
    return ",".join(out)
