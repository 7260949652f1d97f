"""Running a chip: inputs in, output spikes, probes, counters, energy and chip time out.

``run(chip, inputs, ticks, batch=..., mode="fast" | "cycle", probes=(), strict=False)``

Inputs, per input port of the chip (a dict by port name; a bare value when the chip has one input
port):

* an array ``(T, N)`` or ``(B, T, N)`` (``N`` the port's width, or the port's shape in place of
  ``N``) of spikes (bool or 0/1); real values must be encoded first (``emulator.encoders``);
* an :class:`Events` list: rows ``(neuron, time)`` or ``(sample, neuron, time)``;
* a path to an ``.npz`` file whose keys name the ports (``<port>`` for an array,
  ``<port>_events`` for an event list); with a single input port a single array of another name
  is taken as that port.

Modes: ``fast`` (functional, vectorised over cores and batch) and ``cycle`` (per-core datapath
plus the network on chip, cycle by cycle). Both give the same spikes wherever no tick overruns
(and always with ``noc.overrun = stretch``).

Host resets, ``resets={population: ticks}``: after tick ``t`` (its spikes emitted, outputs and
probes recorded) the neuron state of the population goes back to its initial value in every
sample, so tick ``t + 1`` starts from rest (Lava's ``io.reset.Reset``; the integer reference
interpreter's ``run_int(..., resets=...)``, which rebuilds the node's kernel). Which registers:
Loihi u, v and the refractory counter (to 0); TrueNorth V (to 0) and the neuron's PRN tick
(restarted, so a reset sample draws what a fresh run draws); BrainScaleS-2 v (to v_leak), both
synaptic currents and the refractory counter. Synaptic events already on their way (dendritic
accumulators, axon schedulers, arrival rings) are not touched: they belong to the connections,
which the reference does not reset with the population. Ticks are a list of integers in
``0 .. T-1``, an integer, a ``slice`` over ``range(T)`` (``slice(16, None, 17)``: 16, 33, ...),
or a list of any of these; the name ``"*"`` stands for every population.

Analog mismatch, ``mismatch=sigma | (sigma, seed) | "SIGMA[:SEED]"`` (BrainScaleS-2 only): runs a
chip instance whose analog codes carry seeded fixed-pattern noise of ``sigma`` codes
(``emulator.brainscales2.fixed_pattern_noise``; ``"profile"`` takes the image's
``analog.fpn_sigma_codes``); the same ``(sigma, seed)`` gives the same instance, sigma 0 the
ideal chip. ``stats["mismatch"]`` records it.

Counters (totals over the batch): ``synaptic_ops`` (synapses processed for the axon events
delivered during the run), ``spikes`` (compartment spikes), ``input_events`` (host spikes),
``packets`` (one per route entry of a spike), ``hops_ew``/``hops_ns`` (link traversals),
``updates_active``/``updates_idle`` (compartment updates; *active*: v != 0 after the update or a
spike, *ours*), ``idle_core_ticks`` (core ticks whose every compartment was idle), ``cycles`` (cycle
mode: sum over ticks of the slowest sample's tick), ``overflows`` per register, ``drops``,
``overruns``, ``stall_cycles``.

Energy (hardware.md section 4)::

    E = N_sop e_sop + N_spike e_spike + hops_ew e_hop_ew + hops_ns e_hop_ns
        + N_update_active e_update_active + N_update_idle e_update_idle + P_static T n_chips B

with every coefficient and its source taken from the image; ``T`` is the chip time of one
sample, ``ticks * chip.tick_seconds``: ``tick_seconds`` is the chip's own (wall-clock) tick, so a
speed-up is already in it (BrainScaleS-2: a 1 ms model step / 1000 = 1 us); the model time is
``ticks * dt``.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emulator.errors import InputError

MODES = ("fast", "cycle")

FAMILIES = {"loihi": "emulator.loihi", "truenorth": "emulator.truenorth",
            "brainscales2": "emulator.brainscales2"}
"""The datapath module of each family: it defines ``Program``, ``FastEngine``, ``CoreEngine``,
``VARIABLES`` (probe-able state) and ``VALUE_VAR`` (what a ``values`` output port reads)."""


def family_module(family: str) -> Any:
    import importlib

    return importlib.import_module(FAMILIES[family])


class Events:
    """An event list of spikes for one input port: rows ``(neuron, time)`` (every sample of the
    batch gets them) or ``(sample, neuron, time)``."""

    def __init__(self, events: Any):
        a = np.asarray(events)
        if a.size == 0:
            a = a.reshape(0, 2)
        if a.ndim != 2 or a.shape[1] not in (2, 3):
            raise InputError(f"event list of shape {list(a.shape)} must be (K, 2) rows (neuron, "
                             "time) or (K, 3) rows (sample, neuron, time)")
        if a.dtype.kind == "f":
            if not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
                raise InputError("event list holds non-integer entries; round event times to "
                                 "whole ticks first")
        elif a.dtype.kind not in "iub":
            raise InputError(f"event list of dtype {a.dtype} must hold integers")
        a = a.astype(np.int64)
        if a.size and a.min() < 0:
            raise InputError(f"event list holds a negative entry ({int(a.min())})")
        self.rows = a

    def dense(self, width: int, ticks: int | None, batch: int | None, name: str) -> np.ndarray:
        a = self.rows
        if a.shape[1] == 2:
            a = np.concatenate([np.zeros((a.shape[0], 1), np.int64), a], 1)
            b_count = 1
        else:
            b_count = int(a[:, 0].max()) + 1 if a.size else 1
            if batch is not None and b_count > batch:
                raise InputError(f"input {name}: events name sample {b_count - 1}, batch is {batch}")
            b_count = batch or b_count
        if a.size and a[:, 1].max() >= width:
            raise InputError(f"input {name}: event neuron {int(a[:, 1].max())} >= width {width}")
        T = ticks if ticks is not None else (int(a[:, 2].max()) + 1 if a.size else 0)
        if T == 0:
            raise InputError(f"input {name}: an empty event list needs ticks=")
        keep = a[:, 2] < T
        out = np.zeros((b_count, T, width), bool)
        out[a[keep, 0], a[keep, 2], a[keep, 1]] = True
        return out


@dataclass
class RunResult:
    """The result of a run.

    ``outputs[port]``: (B, T, n) bool spikes (``values`` ports: int64 v); ``counts[port]`` and
    ``first_spike[port]`` (B, n) for spike ports (first spike tick, -1 if none);
    ``probes[population][var]`` (B, T, size) for var in u, v, spikes; ``stats``: counters,
    energy, chip time, NoC report; ``latency[port]``: the port's extra latency (chip output at
    tick t + latency equals the reference interpreter at t)."""

    outputs: dict[str, np.ndarray]
    counts: dict[str, np.ndarray]
    first_spike: dict[str, np.ndarray]
    probes: dict[str, dict[str, np.ndarray]]
    stats: dict[str, Any]
    ticks: int
    batch: int
    mode: str
    latency: dict[str, int] = field(default_factory=dict)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array by the key it takes in :meth:`save`."""
        out: dict[str, np.ndarray] = {}
        for k, v in self.outputs.items():
            out[k] = v
        for k, v in self.counts.items():
            out[f"{k}.counts"] = v
        for k, v in self.first_spike.items():
            out[f"{k}.first_spike"] = v
        for p, d in self.probes.items():
            for var, v in d.items():
                out[f"{p}.{var}"] = v
        return out

    def save(self, path: str | os.PathLike) -> Path:
        """Write :meth:`arrays` to an ``.npz`` file atomically."""
        buf = io.BytesIO()
        np.savez_compressed(buf, **self.arrays())
        return _atomic_write(Path(path), buf.getvalue())


def _atomic_write(path: Path, data: bytes) -> Path:
    import tempfile

    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"cannot write {path}: folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


# ------------------------------------------------------------------------------------------
# Inputs
# ------------------------------------------------------------------------------------------
def load_npz_inputs(path: str | os.PathLike, chip: Any) -> dict[str, Any]:
    """Inputs from an ``.npz`` file (see the module doc)."""
    p = Path(path)
    try:
        with np.load(p, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read inputs {p}: {e}") from None
    names = [q.name for q in chip.inputs]
    out: dict[str, Any] = {}
    for k, v in data.items():
        if k in names:
            out[k] = v
        elif k.endswith("_events") and k[:-7] in names:
            out[k[:-7]] = Events(v)
    if not out:
        if len(names) == 1 and len(data) == 1:
            return {names[0]: next(iter(data.values()))}
        raise InputError(f"{p}: no array named after an input port ({', '.join(names)}); keys: "
                         f"{', '.join(data) or 'none'}")
    return out


def normalise_inputs(chip: Any, inputs: Any, ticks: int | None,
                     batch: int | None) -> tuple[dict[str, np.ndarray], int, int]:
    """``{port: (B, T, width) bool}``, B and T (see the module doc for the accepted forms)."""
    ports = chip.inputs
    if ticks is not None and (not isinstance(ticks, int | np.integer) or ticks < 0):
        raise InputError(f"ticks = {ticks!r} must be a non-negative integer")
    if batch is not None and (not isinstance(batch, int | np.integer) or batch < 1):
        raise InputError(f"batch = {batch!r} must be a positive integer")
    if isinstance(inputs, str | os.PathLike):
        inputs = load_npz_inputs(inputs, chip)
    if inputs is None:
        inputs = {}
    elif not isinstance(inputs, Mapping):
        if len(ports) != 1:
            raise InputError(f"chip {chip.graph_name} has {len(ports)} input ports "
                             f"({', '.join(p.name for p in ports)}); pass a dict by port name")
        inputs = {ports[0].name: inputs}
    for k in inputs:
        if k not in {p.name for p in ports}:
            raise InputError(f"chip {chip.graph_name}: no input port {k!r}; ports: "
                             f"{', '.join(p.name for p in ports) or 'none'}")
    arrays: dict[str, np.ndarray] = {}
    for p in ports:
        if p.name not in inputs:
            continue
        v = inputs[p.name]
        if isinstance(v, Events):
            a = v.dense(p.width, ticks, batch, p.name)
        else:
            a = np.asarray(v)
            shape = tuple(p.shape)
            if a.shape[1:] == shape or (a.ndim == 2 and a.shape[1:] == (p.width,)):
                a = a[None]
            if a.ndim >= 3 and a.shape[2:] == shape:
                a = a.reshape(a.shape[0], a.shape[1], p.width)
            if a.ndim != 3 or a.shape[2] != p.width:
                raise InputError(
                    f"input {p.name}: array of shape {list(np.shape(v))} does not match (T, "
                    f"{p.width}) or (B, T, {p.width}) (port shape {list(shape)})")
            if a.dtype != np.bool_:
                if a.dtype.kind not in "biuf" or not np.all((a == 0) | (a == 1)):
                    bad = a[(a != 0) & (a != 1)].flat[0] if a.dtype.kind in "biuf" else a.dtype
                    raise InputError(
                        f"input {p.name}: value {bad} is not a spike (0 or 1); encode real-valued "
                        "data with emulator.encoders (poisson_rate, deterministic_rate, latency)")
                a = a.astype(bool)
        arrays[p.name] = a
    T = ticks
    sizes = {a.shape[0] for a in arrays.values()}
    if batch is not None:
        if sizes - {1, batch}:
            raise InputError(f"inputs have batch {sorted(sizes - {1})}, but batch={batch}")
        B = int(batch)
    else:
        big = sizes - {1}
        if len(big) > 1:
            raise InputError(f"inputs have different batch sizes {sorted(big)}")
        B = big.pop() if big else 1
    lengths = {a.shape[1] for a in arrays.values()}
    if T is None:
        if not arrays:
            raise InputError("no inputs given: pass ticks= to run the chip on silence")
        if len(lengths) > 1:
            raise InputError(f"inputs have different lengths {sorted(lengths)}; pass ticks=")
        T = lengths.pop()
    out = {}
    for p in ports:
        a = arrays.get(p.name)
        if a is None:
            a = np.zeros((B, T, p.width), bool)
        else:
            if a.shape[0] == 1 and B > 1:
                a = np.broadcast_to(a, (B, *a.shape[1:]))
            if a.shape[1] >= T:
                a = a[:, :T]
            else:
                a = np.concatenate([a, np.zeros((B, T - a.shape[1], p.width), bool)], 1)
        out[p.name] = np.ascontiguousarray(a)
    return out, int(B), int(T)


# ------------------------------------------------------------------------------------------
# Host resets and analog mismatch (module doc)
# ------------------------------------------------------------------------------------------
def _is_int(x: Any) -> bool:
    return isinstance(x, int | np.integer) and not isinstance(x, bool | np.bool_)


def reset_ticks(name: str, at: Any, T: int) -> np.ndarray:
    """The sorted distinct ticks of one population's resets in a ``T``-tick run (module doc for
    the accepted forms); InputError naming the population and the tick for anything else."""
    where = f"resets[{name!r}]"
    if isinstance(at, slice):
        for part in ("start", "stop", "step"):
            v = getattr(at, part)
            if v is not None and (not _is_int(v) or v < (1 if part == "step" else 0)):
                raise InputError(f"{where}: slice {part} {v!r} must be "
                                 + ("a positive integer" if part == "step" else
                                    "a non-negative integer"))
        ticks = np.arange(T, dtype=np.int64)[at]
        if ticks.size == 0:
            raise InputError(f"{where}: slice({at.start}, {at.stop}, {at.step}) selects no tick "
                             f"of the {T}-tick run")
        return ticks
    if _is_int(at):
        items: list = [at]
    elif isinstance(at, str | bytes | Mapping) or not hasattr(at, "__iter__"):
        raise InputError(f"{where}: {at!r} is not a tick, a list of ticks or a slice")
    else:
        items = list(np.asarray(at).ravel()) if isinstance(at, np.ndarray) else list(at)
    parts = []
    for x in items:
        if isinstance(x, slice) or (not _is_int(x) and hasattr(x, "__iter__")
                                    and not isinstance(x, str | bytes | Mapping)):
            parts.append(reset_ticks(name, x, T))  # a slice or a nested list of ticks
            continue
        if not _is_int(x):
            raise InputError(f"{where}: tick {x!r} is not an integer")
        if not 0 <= x < T:
            raise InputError(f"{where}: tick {int(x)} is outside 0..{T - 1} (the run has {T} "
                             f"ticks; a reset after tick t puts the state back before tick t + 1)")
        parts.append(np.array([int(x)], np.int64))
    return np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)


def reset_schedule(chip: Any, off: np.ndarray, resets: Mapping[str, Any] | None,
                   T: int) -> dict[int, np.ndarray]:
    """``{tick: global neuron ids}`` of the host resets (``off``: each core's first global
    neuron id); InputError naming an unknown population or a tick out of range."""
    if not resets:
        return {}
    if not isinstance(resets, Mapping):
        raise InputError(f"resets must map population names to ticks (e.g. {{'h1': [16, 33]}}), "
                         f"not {type(resets).__name__}")
    pops = {p.name: p for p in chip.populations}
    per_tick: dict[int, list[np.ndarray]] = {}
    for name, at in resets.items():
        if name == "*":
            targets = list(pops.values())
        elif name in pops:
            targets = [pops[name]]
        else:
            raise InputError(f"resets: chip {chip.graph_name} has no population {name!r}; "
                             f"populations: {', '.join(pops) or 'none'} (or '*' for all)")
        ids = np.concatenate([off[p.core] + p.local for p in targets]).astype(np.int64)
        for t in reset_ticks(name, at, T).tolist():
            per_tick.setdefault(t, []).append(ids)
    return {t: np.unique(np.concatenate(v)) for t, v in per_tick.items()}


def parse_resets(specs: Sequence[str]) -> dict[str, list]:
    """``resets`` from command-line specs ``NAME@T1,T2,...`` or ``NAME@every:P[+O]`` (ticks O,
    O + P, O + 2P, ... of the run); a name given twice gets both."""
    out: dict[str, list] = {}
    for spec in specs:
        name, at, when = spec.rpartition("@")
        hint = "use NAME@T1,T2,... or NAME@every:P[+O], e.g. h1@16,33 or h1@every:17+16"
        if not name or not when:
            raise InputError(f"--reset {spec!r}: {hint}")
        if when.startswith("every:"):
            period, _, offset = when[6:].partition("+")
            try:
                p, o = int(period), int(offset or 0)
            except ValueError:
                raise InputError(f"--reset {spec!r}: period and offset must be integers; "
                                 f"{hint}") from None
            if p < 1 or o < 0:
                raise InputError(f"--reset {spec!r}: the period must be >= 1 and the offset "
                                 ">= 0")
            out.setdefault(name, []).append(slice(o, None, p))
            continue
        try:
            ticks = [int(x) for x in when.split(",")]
        except ValueError:
            raise InputError(f"--reset {spec!r}: {when!r} is not a list of ticks; {hint}") from None
        out.setdefault(name, []).extend(ticks)
    return out


def parse_mismatch(value: Any) -> tuple[float | str, int]:
    """``(sigma, seed)`` from ``sigma``, ``(sigma, seed)`` or the text ``SIGMA[:SEED]``; sigma in
    codes or ``"profile"`` (the image's ``analog.fpn_sigma_codes``), seed default 0."""
    hint = "give SIGMA[:SEED], sigma in codes (or 'profile') and an integer seed, e.g. 4:1"
    if isinstance(value, str):
        text, _, seed_text = value.strip().partition(":")
        try:
            seed = int(seed_text) if seed_text else 0
            sigma: float | str = text if text == "profile" else float(text)
        except ValueError:
            raise InputError(f"mismatch {value!r}: {hint}") from None
    elif isinstance(value, tuple | list) and len(value) == 2:
        sigma, seed = value
    elif isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool):
        sigma, seed = float(value), 0
    else:
        raise InputError(f"mismatch {value!r}: {hint}")
    if not _is_int(seed) or not 0 <= seed < 2**63:
        raise InputError(f"mismatch seed {seed!r} must be an integer 0..2**63-1")
    if not isinstance(sigma, str):
        try:
            sigma = float(sigma)
        except (TypeError, ValueError):
            raise InputError(f"mismatch {value!r}: {hint}") from None
        if not np.isfinite(sigma) or sigma < 0:
            raise InputError(f"mismatch sigma = {sigma} must be a finite number >= 0 (codes)")
    return sigma, int(seed)


def mismatch_chip(chip: Any, mismatch: Any) -> tuple[Any, dict]:
    """The chip instance with analog mismatch (cached on ``chip``) and its description."""
    if chip.family != "brainscales2":
        raise InputError(f"mismatch (analog fixed-pattern noise) applies to brainscales2 chips "
                         f"only; chip {chip.graph_name} is of family {chip.family}, whose "
                         "datapath is digital (run without mismatch)")
    from emulator.brainscales2 import fixed_pattern_noise

    sigma, seed = parse_mismatch(mismatch)
    if sigma == "profile":
        sigma = float(chip.params["analog.fpn_sigma_codes"])
    key = ("mismatch", float(sigma), seed)
    inst = chip._cache.get(key)
    if inst is None:
        inst = chip._cache[key] = fixed_pattern_noise(chip, float(sigma), seed)
    return inst, {"sigma_codes": float(sigma), "seed": seed}


# ------------------------------------------------------------------------------------------
# Run
# ------------------------------------------------------------------------------------------
def run(chip: Any, inputs: Any = None, ticks: int | None = None, *, batch: int | None = None,
        mode: str = "fast", probes: Sequence[str] | str = (), strict: bool = False,
        overrun: str | None = None, visit_order: str | Sequence[int] | None = None,
        seed: int = 0, threads: int | None = None,
        resets: Mapping[str, Any] | None = None, mismatch: Any = None,
        **family_options: Any) -> RunResult:
    """Run ``chip`` on ``inputs`` for ``ticks`` ticks (default: the inputs' length).

    ``batch``: samples (inputs without a batch axis are repeated); ``mode``: ``fast`` or
    ``cycle``; ``probes``: population names whose u, v and spikes are recorded every tick;
    ``strict``: raise StateOverflowError on the first register overflow instead of counting;
    ``overrun`` (cycle mode): override the image's ``noc.overrun`` policy (stretch | drop);
    ``visit_order`` (cycle mode): ``"shuffle"`` (a seeded random core order every tick) or a list
    of core ids; ``threads``: worker threads of the fast mode (default: one per CPU for a batch
    of 8 or more, see :func:`fast_threads`);
    ``resets``: host resets by population (module doc); ``mismatch``: BrainScaleS-2 analog
    fixed-pattern noise (module doc); ``family_options``: options of a family's own runner."""
    if chip.family not in FAMILIES:
        raise InputError(f"the emulator has no datapath for family {chip.family} yet "
                         f"(families: {', '.join(FAMILIES)})")
    if mismatch is not None:
        inst, info = mismatch_chip(chip, mismatch)
        res = run(inst, inputs, ticks, batch=batch, mode=mode, probes=probes, strict=strict,
                  overrun=overrun, visit_order=visit_order, seed=seed, threads=threads,
                  resets=resets, **family_options)
        res.stats["mismatch"] = info
        return res
    own = getattr(family_module(chip.family), "run", None)
    if own is not None:  # a family with a runner of its own (same arguments and result)
        if resets is not None:
            family_options["resets"] = resets
        return own(chip, inputs, ticks, batch=batch, mode=mode, probes=probes, strict=strict,
                   overrun=overrun, visit_order=visit_order, seed=seed, threads=threads,
                   **family_options)
    if family_options:
        raise InputError(f"option(s) {', '.join(sorted(family_options))} do not apply to a "
                         f"{chip.family} chip")
    if mode not in MODES:
        raise InputError(f"mode {mode!r} is not one of {', '.join(MODES)}")
    if overrun is not None and overrun not in ("stretch", "drop"):
        raise InputError(f"overrun {overrun!r} is not stretch or drop")
    data, B, T = normalise_inputs(chip, inputs, ticks, batch)
    if isinstance(probes, str):
        probes = [probes]
    probe_pops = [chip.population(p) for p in probes]
    mod = family_module(chip.family)
    prog = chip._cache.get("program")
    if prog is None:
        prog = chip._cache["program"] = mod.Program(chip)
    reset_at = reset_schedule(chip, prog.off, resets, T)
    xin = (np.concatenate([data[p.name] for p in chip.inputs], axis=2) if chip.inputs
           else np.zeros((B, T, 0), bool))
    port_idx = {}
    for port in chip.outputs:
        g = np.empty(port.width, np.int64)
        for c, nn, s, e in port.entries.tolist():
            g[s:e] = prog.off[c] + nn + np.arange(e - s)
        port_idx[port.name] = g
    probe_idx = {p.name: prog.off[p.core] + p.local for p in probe_pops}
    rec = _Recorder(chip, port_idx, probe_idx, B, T, mod.VARIABLES)
    if mode == "fast":
        stats = _run_fast(chip, mod, prog, xin, B, T, strict, rec, threads, reset_at)
    else:
        stats = _run_cycle(chip, mod, prog, xin, B, T, strict, rec, overrun, visit_order, seed,
                           reset_at)
    rec.finish()
    stats["mode"] = mode
    stats["ticks"] = T
    stats["batch"] = B
    _energy(chip, stats, B, T)
    return RunResult(outputs=rec.out, counts=rec.counts, first_spike=rec.first, probes=rec.probes,
                     stats=stats, ticks=T, batch=B, mode=mode,
                     latency={p.name: p.extra_latency for p in chip.outputs})


class _Recorder:
    """Output ports and probes, filled tick by tick (stored tick-major, so that each tick writes
    one contiguous block; :meth:`finish` returns batch-major arrays)."""

    def __init__(self, chip: Any, port_idx: dict, probe_idx: dict, B: int, T: int,
                 variables: tuple[str, ...]):
        self.kinds = {p.name: p.kind for p in chip.outputs}
        self.port_idx = {k: (None if np.array_equal(v, np.arange(v.size)) and v.size else v)
                         for k, v in port_idx.items()}
        self.probe_idx = probe_idx
        self.variables = variables
        self._out = {p.name: np.zeros((T, B, p.width), bool if p.kind == "spikes" else np.int64)
                     for p in chip.outputs}
        self.first = {p.name: np.full((B, p.width), -1, np.int64) for p in chip.outputs
                      if p.kind == "spikes"}
        self._probes = {name: {**{var: np.zeros((T, B, idx.size), np.int64) for var in variables},
                               "spikes": np.zeros((T, B, idx.size), bool)}
                        for name, idx in probe_idx.items()}

    def record(self, t: int, s: np.ndarray, state: dict[str, np.ndarray], value: np.ndarray) -> None:
        """Tick t: spikes ``s``, state variables, and ``value`` (what values ports read)."""
        for name, idx in self.port_idx.items():
            src = s if self.kinds[name] == "spikes" else value
            w = self._out[name].shape[2]
            self._out[name][t] = src if idx is None and src.shape[1] == w else (
                src[:, idx] if idx is not None else src[:, :w])
            if name in self.first:
                f = self.first[name]
                np.copyto(f, t, where=self._out[name][t] & (f < 0))
        for name, idx in self.probe_idx.items():
            d = self._probes[name]
            for var in self.variables:
                d[var][t] = state[var][:, idx]
            d["spikes"][t] = s[:, idx]

    def finish(self) -> None:
        self.counts = {k: v.sum(axis=0, dtype=np.int64) for k, v in self._out.items()
                       if k in self.first}
        self.out = {k: np.ascontiguousarray(v.transpose(1, 0, 2)) for k, v in self._out.items()}
        self.probes = {n: {k: np.ascontiguousarray(v.transpose(1, 0, 2)) for k, v in d.items()}
                       for n, d in self._probes.items()}


def _input_schedule(xin: np.ndarray) -> Any:
    """A function tick -> the active input channels of that tick, flat: ``(ids, off)`` with
    sample b's channels (sorted) in ``ids[off[b]:off[b+1]]``; None when no sample has any."""
    B, T, n = xin.shape
    if n == 0:
        return lambda tau: None
    bounds = np.arange(B + 1, dtype=np.int64) * n

    def at(tau: int) -> tuple[np.ndarray, np.ndarray] | None:
        f = np.flatnonzero(xin[:, tau])  # sample-major, so sorted by sample then channel
        if not f.size:
            return None
        if B == 1:
            return f, np.array([0, f.size])
        return f % n, np.searchsorted(f, bounds)

    return at


def _base_counters(prog: Any, xin: np.ndarray) -> dict[str, Any]:
    return dict(synaptic_ops=0, spikes=0, input_events=int(np.count_nonzero(xin)), packets=0,
                hops_ew=0, hops_ns=0, updates_active=0, updates_idle=0, idle_core_ticks=0,
                core_ticks=0, cycles=None, overflows={}, drops=0, overruns=0, stall_cycles=0)


THREAD_MIN_WORK = 1 << 24
"""Synapses x samples below which a fast-mode run stays on one thread: the shards meet once per
tick, which costs more than a small network's tick (measured: the 64-100-10 MLP, batch 64, ran
24x slower on two threads on a loaded 2-core machine; the 4096 x 4096 peers' net, 1.8x faster)."""


def fast_threads(B: int, threads: int | None = None, strict: bool = False,
                 n_synapses: int | None = None) -> int:
    """Worker threads of a fast-mode run of ``B`` samples: ``threads`` if given, else one per
    usable CPU for a batch of 8 or more whose work (``n_synapses x B``) reaches
    :data:`THREAD_MIN_WORK` (at most one per 4 samples, at most 8), else 1. A strict run uses one
    (its overflow error names the sample by its index in the batch)."""
    if strict or B < 2:
        return 1
    if threads is None:
        if B < 8 or (n_synapses is not None and n_synapses * B < THREAD_MIN_WORK):
            return 1
        try:
            cpus = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            cpus = os.cpu_count() or 1
        threads = min(cpus, B // 4, 8)
    return max(1, min(int(threads), B))


def _run_fast(chip: Any, mod: Any, prog: Any, xin: np.ndarray, B: int, T: int, strict: bool,
              rec: _Recorder, threads: int | None, reset_at: dict | None = None) -> dict:
    """Fast mode. With ``k = fast_threads(...) > 1`` the batch is cut into k shards of
    consecutive samples, each run by its own engine in its own thread, tick by tick in lockstep
    (samples never interact, so the results are those of one engine; numpy releases the GIL in
    the gathers and the neuron updates, so the shards use k cores)."""
    k = fast_threads(B, threads, strict, int(getattr(chip, "n_synapses", 0)))
    cut = [B * i // k for i in range(k + 1)]
    engs = [mod.FastEngine(prog, cut[i + 1] - cut[i], strict=strict) for i in range(k)]
    scheds = [_input_schedule(xin[cut[i]:cut[i + 1]]) for i in range(k)]
    cnt = _base_counters(prog, xin)
    N = prog.N
    starts = prog.off[:-1]
    multi = prog.n_cores > 1
    tally = np.zeros((k, 3), np.int64)  # per shard: spikes, active updates, idle core ticks
    spk: list[Any] = [None] * k
    need_state = bool(rec.probe_idx)
    need_value = any(kind != "spikes" for kind in rec.kinds.values())

    def shard_tick(i: int, t: int) -> None:
        eng = engs[i]
        s = eng.step(t, scheds[i])
        act = eng.active(s)
        row = tally[i]
        row[0] += np.count_nonzero(s)
        row[1] += np.count_nonzero(act)
        if multi:
            row[2] += np.count_nonzero(~np.logical_or.reduceat(act, starts, axis=1))
        else:
            row[2] += s.shape[0] - np.count_nonzero(act.any(axis=1))
        spk[i] = s

    pool = None
    if k > 1:
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(k - 1, thread_name_prefix="nmc-fast")
    last_routed = None
    try:
        for t in range(T):
            if pool is None:
                shard_tick(0, t)
                s, state, value = spk[0], engs[0].state(), engs[0].value()
            else:
                futs = [pool.submit(shard_tick, i, t) for i in range(1, k)]
                shard_tick(0, t)
                for f in futs:
                    f.result()
                s = np.concatenate(spk)
                state = ({v: np.concatenate([e.state()[v] for e in engs]) for v in engs[0].state()}
                         if need_state else {})
                value = np.concatenate([e.value() for e in engs]) if need_value else None
            rec.record(t, s, state, value)
            if t == T - 1 and prog.routed.size:
                last_routed = s[:, prog.routed].sum(axis=0)
            if reset_at and t in reset_at:
                for e in engs:
                    e.reset(reset_at[t], t)
    finally:
        if pool is not None:
            pool.shutdown()
        for e in engs:
            e.close()
    spikes, active, idle_cores = (int(x) for x in tally.sum(axis=0))
    cnt["spikes"] = spikes
    cnt["updates_active"] = active
    cnt["updates_idle"] = B * T * N - active
    cnt["idle_core_ticks"] = idle_cores
    cnt["core_ticks"] = B * T * prog.n_cores
    overflows: dict[str, int] = {}
    for e in engs:
        for reg, n in e.overflows.items():
            overflows[reg] = overflows.get(reg, 0) + n
    cnt["overflows"] = overflows
    # counters per source: packets and hops for every spike; synaptic ops for the events that
    # were delivered within the run (those of ticks 0 .. T-2)
    n_in = prog.n_in
    src_total = np.zeros(n_in + N, np.int64)
    src_deliv = np.zeros(n_in + N, np.int64)
    if n_in and T:
        src_total[:n_in] = xin.sum(axis=(0, 1))
        src_deliv[:n_in] = src_total[:n_in] - xin[:, T - 1].sum(axis=0)
    if prog.routed.size:
        routed = sum(e.spike_count_routed for e in engs)
        src_total[n_in + prog.routed] = routed
        src_deliv[n_in + prog.routed] = routed - (last_routed if last_routed is not None else 0)
    cnt["synaptic_ops"] = int(src_deliv @ prog.src_sops)
    cnt["packets"] = int(src_total @ prog.src_packets)
    cnt["hops_ew"] = int(src_total @ prog.src_hops_ew)
    cnt["hops_ns"] = int(src_total @ prog.src_hops_ns)
    return {"counters": cnt}


def _run_cycle(chip: Any, mod: Any, prog: Any, xin: np.ndarray, B: int, T: int, strict: bool,
               rec: _Recorder, overrun: str | None, visit_order: Any, seed: int,
               reset_at: dict | None = None) -> dict:
    from emulator.noc import NocParams, simulate

    eng = mod.CoreEngine(prog, B, strict=strict)
    params = NocParams.from_params(chip.params, overrun)
    drop = params.overrun == "drop"
    cores = chip.cores
    nc = prog.n_cores
    cnt = _base_counters(prog, xin)
    rng = np.random.default_rng(seed)
    if visit_order is None or isinstance(visit_order, str):
        if visit_order not in (None, "shuffle"):
            raise InputError(f"visit_order {visit_order!r} must be 'shuffle' or a list of core ids")
        fixed = None
    else:
        fixed = [int(c) for c in visit_order]
        if sorted(fixed) != list(range(nc)):
            raise InputError(f"visit_order {fixed} is not a permutation of the {nc} core ids")
    # input channel fan-out to (core, axon)
    in_core, in_axon, in_src = [], [], []
    for pi, port in enumerate(chip.inputs):
        for c, a, s_, e in port.entries.tolist():
            in_core.append(np.full(e - s_, c))
            in_axon.append(a + np.arange(e - s_))
            in_src.append(prog.in_off[pi] + np.arange(s_, e))
    in_core = np.concatenate(in_core) if in_core else np.zeros(0, np.int64)
    in_axon = np.concatenate(in_axon) if in_axon else np.zeros(0, np.int64)
    in_src = np.concatenate(in_src) if in_src else np.zeros(0, np.int64)
    n_cn = np.array([c.n_neurons for c in cores], np.int64)
    local_of = np.arange(prog.N) - prog.off[prog.core_of]
    n_routes = np.diff(prog.route_ptr)
    budget = params.budget
    cycles = np.zeros((T, B), np.int64)
    max_link = np.zeros(T, np.int64)
    stall_t = np.zeros(T, np.int64)
    overruns: list[dict] = []
    later: list[tuple] = []  # stretch policy: packets of every tick, simulated after the run
    inbox_next = [np.zeros((B, c.n_axons), bool) for c in cores]
    spikes = active = idle_cores = 0

    def account(r: Any, ticks_of: np.ndarray, samples_of: np.ndarray) -> None:
        cycles[ticks_of, samples_of] = r.cycles
        np.maximum.at(max_link, ticks_of, r.link_packets.reshape(len(ticks_of), -1).max(axis=1))
        np.add.at(stall_t, ticks_of, r.stalls + r.injection_stalls)
        cnt["hops_ew"] += int(r.hops_ew.sum())
        cnt["hops_ns"] += int(r.hops_ns.sum())
        cnt["drops"] += int(r.drops.sum())
        cnt["stall_cycles"] += int(r.stalls.sum() + r.injection_stalls.sum())
        for k in np.flatnonzero((r.cycles > budget) | (r.drops > 0)).tolist():
            overruns.append(dict(tick=int(ticks_of[k]), sample=int(samples_of[k]),
                                 cycles=int(r.cycles[k]), budget=budget, drops=int(r.drops[k]),
                                 links=r.congested(k)))

    for t in range(T):
        inbox = inbox_next
        inbox_next = [np.zeros((B, c.n_axons), bool) for c in cores]
        order = fixed if fixed is not None else (
            rng.permutation(nc).tolist() if visit_order == "shuffle" else list(range(nc)))
        res = eng.tick(t, inbox, order)
        s = res["spikes"]
        pc = res["per_core"]
        cnt["synaptic_ops"] += int(pc["sops"].sum())
        spikes += int(s.sum())
        active += int(pc["active"].sum())
        idle_cores += int((pc["active"] == 0).sum())
        rec.record(t, s, res["state"], res["value"])
        if reset_at and t in reset_at:
            eng.reset(reset_at[t], t)
        # host input events of tick t reach the cores' axons for tick t + 1
        if in_src.size:
            xb, xs = np.nonzero(xin[:, t][:, in_src])
            for c in np.unique(in_core[xs]):
                sel = in_core[xs] == c
                inbox_next[c][xb[sel], in_axon[xs[sel]]] = True
        # emit: one packet per route entry of every spike, handed to the network this tick
        sb, sn = np.nonzero(s & (n_routes > 0))
        k = n_routes[sn]
        lo = prog.route_ptr[sn]
        ent = np.repeat(lo - np.cumsum(np.r_[0, k[:-1]]), k) + np.arange(int(k.sum()))
        pb = np.repeat(sb, k)
        src_n = np.repeat(sn, k)
        src_c = prog.core_of[src_n]
        dst_c = prog.route_core[ent]
        ready = (pc["sops"][pb, src_c] * params.cycles_per_sop
                 + (local_of[src_n] + 1) * params.cycles_per_update)
        core_end = pc["sops"] * params.cycles_per_sop + n_cn[None, :] * params.cycles_per_update
        cnt["packets"] += int(ent.size)
        if drop:
            r = simulate(params, B, pb, src_c, dst_c, ready, core_end, prog.xy)
            account(r, np.full(B, t), np.arange(B))
            ok = r.delivered
        else:
            later.append((t, pb, src_c, dst_c, ready, core_end))
            ok = np.ones(ent.size, bool)
        for c in np.unique(dst_c[ok]):
            sel = ok & (dst_c == c)
            inbox_next[c][pb[sel], prog.route_axon[ent[sel]]] = True
    # stretch: nothing is lost, so the network's timing does not change the spikes; simulate
    # every (tick, sample) instance afterwards, many at once
    i = 0
    while i < len(later):
        j, n_pk = i, 0
        while j < len(later) and (j == i or n_pk + later[j][1].size <= 200_000) and j - i < 256:
            n_pk += later[j][1].size
            j += 1
        chunk = later[i:j]
        inst = np.concatenate([(q * B + c[1]) for q, c in enumerate(chunk)])
        r = simulate(params, len(chunk) * B, inst.astype(np.int64),
                     np.concatenate([c[2] for c in chunk]), np.concatenate([c[3] for c in chunk]),
                     np.concatenate([c[4] for c in chunk]),
                     np.concatenate([c[5] for c in chunk]), prog.xy)
        tk = np.repeat([c[0] for c in chunk], B)
        account(r, tk, np.tile(np.arange(B), len(chunk)))
        i = j
    cnt["spikes"] = spikes
    cnt["updates_active"] = active
    cnt["updates_idle"] = B * T * prog.N - active
    cnt["idle_core_ticks"] = idle_cores
    cnt["core_ticks"] = B * T * nc
    cnt["overflows"] = dict(eng.overflows)
    cnt["cycles"] = int(cycles.max(axis=1).sum()) if T else 0
    cnt["overruns"] = len(overruns)
    overruns.sort(key=lambda o: (o["tick"], o["sample"]))
    stretched = np.maximum(cycles, budget).sum(axis=0) / params.clock_hz  # chip clock: chip time
    return {"counters": cnt,
            "noc": {"budget_cycles": budget, "policy": params.overrun,
                    "cycles_per_tick": cycles.max(axis=1).tolist() if T else [],
                    "max_link_packets_per_tick": max_link.tolist(),
                    "stall_cycles_per_tick": stall_t.tolist(),
                    "overrun_ticks": overruns,
                    "stretched_seconds_per_sample": float(stretched.mean()) if B else 0.0}}


ENERGY_TERMS = (
    ("synaptic_ops", "energy.sop"),
    ("spikes", "energy.spike"),
    ("hops_ew", "energy.hop_ew"),
    ("hops_ns", "energy.hop_ns"),
    ("updates_active", "energy.update_active"),
    ("updates_idle", "energy.update_idle"),
)


def _energy(chip: Any, stats: dict, B: int, T: int) -> None:
    """Fill ``stats["energy"]`` and ``stats["chip_time"]`` from the counters and the image."""
    P, S = chip.params, chip.sources
    cnt = stats["counters"]
    # tick_seconds is chip time already (docs/architecture.md): dividing by the speed-up again
    # would make a BrainScaleS-2 run 1000x too short
    seconds = T * float(P["chip.tick_seconds"])
    terms = {}
    coeffs = {}
    for counter, key in ENERGY_TERMS:
        terms[counter] = cnt[counter] * float(P[key])
        coeffs[key] = {"value": float(P[key]), "source": S.get(key, "")}
    terms["static"] = float(P["energy.static_watts"]) * seconds * chip.n_chips * B
    coeffs["energy.static_watts"] = {"value": float(P["energy.static_watts"]),
                                     "source": S.get("energy.static_watts", "")}
    total = float(sum(terms.values()))
    stats["energy"] = {"total_joules": total, "total_j": total,
                       "per_sample_joules": total / B if B else 0.0,
                       "terms_joules": terms, "coefficients": coeffs,
                       "formula": "E = N_sop e_sop + N_spike e_spike + hops_ew e_hop_ew + "
                                  "hops_ns e_hop_ns + N_active e_update_active + N_idle "
                                  "e_update_idle + P_static T n_chips B"}
    stats["chip_time_s"] = seconds
    stats["chip_time"] = {"seconds_per_sample": seconds, "ticks": T,
                          "model_seconds_per_sample": T * float(chip.dt),
                          "tick_seconds": float(P["chip.tick_seconds"]),
                          "speedup": float(P["chip.speedup"]),
                          "sources": {k: S.get(k, "") for k in ("chip.tick_seconds", "chip.speedup")}}


__all__ = ["Events", "MODES", "RunResult", "load_npz_inputs", "mismatch_chip", "normalise_inputs",
           "parse_mismatch", "parse_resets", "reset_schedule", "reset_ticks", "run"]
