"""The BrainScaleS-2-family hemisphere: image decoding, datapath (fast and cycle engines).

Semantics (widths from the image's PARAMS, values of the brainscales2 profile in brackets),
exactly as the integer reference interpreter (``ir/native/brainscales2.py``) defines them. State
per neuron in *state units* (``2**v_frac`` [64] per voltage code): ``v`` in ``0 .. V_MAX =
2**widths.v - 1`` [65535], currents ``i_exc``, ``i_inh`` in ``0 .. I_MAX = 2**widths.i - 1``
[65535], refractory counter ``ref``. Per tick ``t`` (``E``, ``I``: summed weights of the
excitatory / inhibitory synapses whose event arrives at ``t``, over every column of the neuron's
merged circuits)::

    decay(x, c) = trunc(x * (D - c) / D)                       # D = datapath.decay_den [1022]
    i_exc = min(I_MAX, decay(i_exc, c_syn_exc) + gain_exc * E)   # saturating (analog input)
    i_inh = min(I_MAX, decay(i_inh, c_syn_inh) + gain_inh * I)
    if ref > 0:   ref -= 1;  v = v_reset << v_frac;  no spike
    else:
        vl = v_leak << v_frac
        v  = clip(vl + decay(v - vl, c_mem) + i_exc - i_inh + bias, 0, V_MAX)   # rails
        spike = v >= v_threshold << v_frac  and not readout
        if spike:  v = v_reset << v_frac;  ref = refractory << refractory_clock

``trunc`` rounds toward zero. Initial state: ``v = v_leak << v_frac``, currents 0, ``ref`` 0; a
host reset after tick ``t`` (``run(..., resets=...)``) puts a neuron back into it before tick
``t + 1`` (events already on their way still arrive). A spike (or host event) of tick ``t``
reaches a row of delay ``d`` at tick ``t + d``. A saturation
(a current above ``I_MAX``, or ``v`` outside the rails while not refractory) is counted per
register (``overflows["i"]``, ``overflows["v"]``); a strict run raises StateOverflowError at the
first one.

Events (digital, exact): a spiking neuron's event carries its label; it enters every hemisphere
whose crossbar accepts the label (``(label & mask) == target`` for one of its entries) and there
reaches every row of the label's group (``label >> widths.address``); on such a row each synapse
whose address equals the label's low bits adds its weight. Host events are delivered to the
hemispheres named by the image's input entries (each checked against the crossbar on load).

*Receive table* (derived on load, ours): the labels a hemisphere receives (from host entries and
from accepted neuron labels), sorted, are its *axons*; the synapses reached by each are listed by
axon (``syn_*``, the shared layout of ``emulator/synapses.py``, group = row sign), each neuron's
events become route entries ``(hemisphere, axon)``, and the input ports' entries are rewritten
from labels to axon indices (``Port.labels`` keeps each element's label). A synapse whose label
no source sends is never reached and is left out.

Fixed-pattern noise (a property of a chip instance, so a copy of the chip, never part of the
image): :func:`fixed_pattern_noise` perturbs every analog code of every neuron once
(``SPREAD_PARAMS`` order gives the parameter index ``p``): ``clip(code + rint(sigma z), 0,
neuron.code_max)`` with ``z = sum_{k<12} u_k / 65536 - 6``, ``u_k`` the 16-bit field ``k % 4``
(low first) of ``counter_hash(seed, fpn_id, FPN_DOMAIN, 3p + k // 4)``. This is the reference
interpreter's ``spread_kernels`` rule, re-implemented here (the emulator never imports ``ir``), so
the same ``(sigma, seed)`` gives the same chip bit for bit.

Engines:

* :class:`FastEngine` (functional mode): all hemispheres and a batch at once; the shared
  event-driven gathers (``emulator/synapses.py``) hand over ``E`` and ``I`` per tick as two
  ``(B, N)`` arrays (lane class = row sign), then the neuron update above runs vectorised.
* :class:`CoreEngine` (cycle mode): one hemisphere at a time, int64, a tick as the phases of
  :data:`PHASES`, reading committed state and writing staged state (two-phase commit), so no
  result depends on the order hemispheres are visited. The runner carries every event as one
  packet per receiving hemisphere through ``emulator/noc.py`` (label routing modelled as
  packets on the mesh, ours).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emulator import format as F
from emulator import format_brainscales2 as F2
from emulator.errors import InputError, StateOverflowError
from emulator.prng import counter_hash
from emulator.synapses import Gatherer, SynapseProgram, cat, deliver, integrate

VARIABLES = ("v", "i_exc", "i_inh", "ref")
"""State a probe records (besides spikes)."""
VALUE_VAR = "v"
"""What a ``values`` output port reads: the membrane of readout neurons (state units)."""

PHASES = ("deliver", "integrate", "leak", "threshold", "reset", "emit")
"""Cycle-mode phases of a tick, per hemisphere: deliver the events received during the previous
tick to the rows (each matching synapse adds its weight into the arrival slot of its row's
delay; synaptic ops are counted here), integrate this tick's slot into the synaptic currents,
leak the membrane toward ``v_leak`` and add the currents and the bias (or hold it at reset while
refractory), threshold, reset the spiking neurons, emit their events (the runner hands them to
the network on chip)."""

SPREAD_PARAMS = ("v_leak", "v_threshold", "v_reset", "c_mem", "c_syn_exc", "c_syn_inh",
                 "gain_exc", "gain_inh")
"""The analog codes perturbed by fixed-pattern noise; the position is the hash's parameter index
(the reference interpreter's order)."""
FPN_DOMAIN = 0x46504E
"""Third hash word of the fixed-pattern-noise draws ("FPN")."""

SIGN_CLASSES = 2
"""Lane classes of the synapse program: 0 excitatory rows, 1 inhibitory rows."""

_U64 = np.uint64


def spread_codes(codes: np.ndarray, nid: np.ndarray, seed: int, sigma: float, param_index: int,
                 code_max: int) -> np.ndarray:
    """Codes perturbed by seeded fixed-pattern noise (the rule of the module doc)."""
    nid = np.asarray(nid, np.int64)
    total = np.zeros(nid.shape, np.int64)
    for q in range(3):
        h = counter_hash(seed, nid, FPN_DOMAIN, 3 * param_index + q)
        for r in range(4):
            total += ((h >> _U64(16 * r)) & _U64(0xFFFF)).astype(np.int64)
    z = total.astype(np.float64) / 65536.0 - 6.0
    off = np.rint(float(sigma) * z).astype(np.int64)
    return np.clip(np.asarray(codes, np.int64) + off, 0, int(code_max))


def decay(x: np.ndarray, c: np.ndarray, den: int) -> np.ndarray:
    """``trunc(x * (den - c) / den)`` in int64 (rounds toward zero)."""
    q = np.asarray(x, np.int64) * (den - np.asarray(c, np.int64))
    return np.sign(q) * (np.abs(q) // den)


# ------------------------------------------------------------------------------------------
# PARAMS rules
# ------------------------------------------------------------------------------------------
def params_problem(P: dict[str, Any]) -> str | None:
    """The first inconsistency between brainscales2 PARAMS values, or None (the writer and the
    loader apply these rules)."""
    rules = (
        (P["core.row_addresses"] == 1 << P["widths.address"],
         f"core.row_addresses = {P['core.row_addresses']} differs from 2**widths.address "
         f"({1 << P['widths.address']})"),
        (P["widths.address"] < P["widths.label"],
         "widths.address must be below widths.label (the label's upper bits name the row group)"),
        (P["neuron.code_max"] < 1 << P["widths.code"],
         f"neuron.code_max = {P['neuron.code_max']} needs more than widths.code bits"),
        (P["neuron.code_max"] <= P["datapath.decay_den"],
         f"neuron.code_max = {P['neuron.code_max']} exceeds datapath.decay_den "
         f"{P['datapath.decay_den']} (a decay factor would be negative)"),
        (P["widths.code"] + P["datapath.v_frac"] <= P["widths.v"],
         "a voltage code shifted by datapath.v_frac does not fit widths.v"),
        (P["neuron.bias_max"] < 1 << (P["widths.bias"] - 1),
         "neuron.bias_max needs more bits than widths.bias"),
        (P["neuron.refractory_clock_max"] < 1 << P["widths.refractory_clock"]
         or P["neuron.refractory_clock_max"] == 0,
         "neuron.refractory_clock_max needs more bits than widths.refractory_clock"),
        (P["synapse.delay_max"] <= 1 << P["widths.delay"],
         "synapse.delay_max needs more bits than widths.delay"),
        (P["core.max_merge"] <= 1 << P["widths.merge"],
         "core.max_merge needs more bits than widths.merge"),
    )
    for ok, msg in rules:
        if not ok:
            return msg
    return None


def check_params(ld: Any, params: dict) -> None:
    """Loader hook: the cross-key rules of :func:`params_problem`."""
    problem = params_problem(params)
    ld.need(problem is None, lambda: str(problem))


# ------------------------------------------------------------------------------------------
# The decoded hemisphere
# ------------------------------------------------------------------------------------------
_Z = np.zeros(0, np.int64)


@dataclass
class BSS2Core:
    """One hemisphere as decoded from its CORE section, plus its receive table.

    From the image: ``filters`` (crossbar entries: mask, target), ``neuron`` (per logical neuron,
    the columns of BSS2_NEURON, plus ``circuits``), ``rows`` (sign, group, delay_minus_1),
    ``address`` and ``weight`` (the synapse array, ``(n_rows, n_circuits)``), ``col_neuron`` (the
    logical neuron of each column), ``bits`` (bits per table).

    Derived on load (module doc, *receive table*): ``axon_label`` (the labels it receives,
    sorted; axon ``a`` is ``axon_label[a]``), synapses by axon (``syn_ptr`` CSR, ``syn_comp``
    neuron, ``syn_group`` sign, ``syn_w``, ``syn_delay``), and per neuron the route entries of its
    events (``route_ptr`` CSR, ``route_core``, ``route_axon``)."""

    id: int
    chip: int
    x: int
    y: int
    n_neurons: int
    n_circuits: int
    n_rows: int
    slices: np.ndarray
    filters: dict[str, np.ndarray]
    neuron: dict[str, np.ndarray]
    rows: dict[str, np.ndarray]
    address: np.ndarray
    weight: np.ndarray
    col_neuron: np.ndarray
    bits: dict[str, int] = field(default_factory=dict)
    axon_label: np.ndarray = field(default_factory=lambda: _Z, repr=False)
    syn_ptr: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64), repr=False)
    syn_comp: np.ndarray = field(default_factory=lambda: _Z, repr=False)
    syn_group: np.ndarray = field(default_factory=lambda: _Z, repr=False)
    syn_w: np.ndarray = field(default_factory=lambda: _Z, repr=False)
    syn_delay: np.ndarray = field(default_factory=lambda: _Z, repr=False)
    route_ptr: np.ndarray = field(default=None, repr=False)
    route_core: np.ndarray = field(default_factory=lambda: _Z, repr=False)
    route_axon: np.ndarray = field(default_factory=lambda: _Z, repr=False)

    @property
    def n_axons(self) -> int:
        """Labels the hemisphere receives (its receive table)."""
        return int(self.axon_label.size)

    @property
    def n_routes(self) -> int:
        """Route entries of its neurons' events: one per (spike source, receiving hemisphere)."""
        return int(self.route_core.size)

    @property
    def n_words(self) -> int:
        return 0

    @property
    def n_synapses(self) -> int:
        """Synapses some source reaches (stored synapses no label reaches are left out)."""
        return int(self.syn_comp.size)

    def accepts(self, labels: np.ndarray) -> np.ndarray:
        """Which ``labels`` the crossbar passes into this hemisphere (bool per label)."""
        labels = np.asarray(labels, np.int64)
        m, t = self.filters["mask"], self.filters["target"]
        _, hit = accepted(labels.reshape(-1), m, t, np.zeros(m.size, np.int64))
        out = np.zeros(labels.size, bool)
        out[hit] = True
        return out.reshape(labels.shape)

    def disasm_lines(self, pops: list, max_rows: int | None = None, aw: int = 6) -> list[str]:
        """Human-readable lines: crossbar, slices, neurons, rows with their synapses."""
        out = [f"core {self.id}  chip {self.chip} x {self.x} y {self.y}  neurons "
               f"{self.n_neurons}  circuits {self.n_circuits}  rows {self.n_rows}  synapses "
               f"{int(np.count_nonzero(self.weight))}  labels in {self.n_axons}  routes "
               f"{self.n_routes}"]
        for p, s, e in self.slices.tolist():
            out.append(f"  slice {pops[p].name}[{s}:{e}]")
        for m, tg in zip(self.filters["mask"].tolist(), self.filters["target"].tolist(),
                         strict=True):
            out.append(f"  accept label & {m:#06x} == {tg:#06x}")
        n_show = self.n_neurons if max_rows is None else min(self.n_neurons, max_rows)
        for j in range(n_show):
            f = {k: int(v[j]) for k, v in self.neuron.items()}
            out.append(
                f"  n{j:<4} leak {f['v_leak']} thr {f['v_threshold']} reset {f['v_reset']} "
                f"c_mem {f['c_mem']} c_syn {f['c_syn_exc']}/{f['c_syn_inh']} gain "
                f"{f['gain_exc']}/{f['gain_inh']} bias {f['bias']} ref {f['refractory']}"
                f"<<{f['refractory_clock']} circuits {f['circuits']}"
                + ("  readout" if f["readout"] else f"  label {f['label']:#06x}")
                + f"  id {f['fpn_id']}")
        if n_show < self.n_neurons:
            out.append(f"  ... {self.n_neurons - n_show} more neurons")
        n_show = self.n_rows if max_rows is None else min(self.n_rows, max_rows)
        for r in range(n_show):
            g = int(self.rows["group"][r])
            syn = " ".join(f"{int(k)}:{int(self.address[r, k])}*{int(self.weight[r, k])}"
                           for k in np.flatnonzero(self.weight[r]))
            out.append(f"  row{r:<4} {F2.SIGNS[int(self.rows['sign'][r])][:3]} group {g} "
                       f"(labels {g << aw:#06x}..) delay {int(self.rows['delay_minus_1'][r]) + 1}"
                       f"  {syn}")
        if n_show < self.n_rows:
            out.append(f"  ... {self.n_rows - n_show} more rows")
        return out


def _env(P: dict) -> dict[str, int]:
    env = {k: v for k, v in P.items() if isinstance(v, int)}
    env["w_group"] = F2.group_bits(env)
    return env


def decode_core(ld: Any, e: dict) -> BSS2Core:
    """Loader hook: decode and range-check one CORE section (LoadError naming the section and
    the byte offset on anything wrong)."""
    buf = ld._payload(e)
    P = ld.params
    cid = e["index"]
    H = F2.BSS2_CORE_HEADER
    h = ld._struct(H, buf, 0, 1, "BSS2_CORE_HEADER")[0]
    chip, x, y = int(h["chip"]), int(h["x"]), int(h["y"])
    m = ld.meta
    ld.need(chip < m["n_chips"] and x < m["mesh_x"] and y < m["mesh_y"],
            f"position chip {chip} ({x}, {y}) is outside {m['n_chips']} chip(s) of "
            f"{m['mesh_x']} x {m['mesh_y']}")
    n, n_circ, n_rows, n_filt, n_sl = (int(h[k]) for k in ("n_neurons", "n_circuits", "n_rows",
                                                           "n_filters", "n_slices"))
    env = _env(P)
    limits = (("n_circuits", n_circ, P["core.neurons"], "core.neurons", 12),
              ("n_neurons", n, n_circ, "n_circuits", 8),
              ("n_rows", n_rows, P["core.rows"], "core.rows", 16),
              ("n_filters", n_filt, 1 << env["w_group"], "2**(widths.label - widths.address)", 20))
    for name, v, lim, key, off in limits:
        ld.need(v <= lim, f"BSS2_CORE_HEADER.{name} = {v} > {key} = {lim}", ld.base + off)
    sizes = [H.size, n_sl * F.SLICE.size, F2.BSS2_FILTER.nbytes(n_filt, env),
             F2.BSS2_NEURON.nbytes(n, env), F2.BSS2_ROW.nbytes(n_rows, env),
             F2.BSS2_SYNAPSE.nbytes(n_rows * n_circ, env)]
    ld.need(sum(sizes) == len(buf), f"the header's counts need {sum(sizes)} bytes, the section "
            f"has {len(buf)}")
    slices, at = ld._slice_table(buf, H.size, n_sl, n)
    bits: dict[str, int] = {}
    # the crossbar
    fl, at2 = ld._bits_table(F2.BSS2_FILTER, buf, at, n_filt, env, "BSS2_FILTER")
    bits["crossbar"] = (at2 - at) * 8
    rb = F2.BSS2_FILTER.record_bits(env)
    ld._check_col((fl["target"] & ~fl["mask"]) == 0, "BSS2_FILTER.target", fl["target"], at, rb,
                  "no bit outside its mask")
    key = np.sort(fl["mask"] << 32 | fl["target"])
    dup = np.flatnonzero(key[1:] == key[:-1])
    ld.need(dup.size == 0, lambda: f"BSS2_FILTER: entry (mask {int(key[dup[0]] >> 32):#x}, target "
            f"{int(key[dup[0]] & 0xFFFFFFFF):#x}) appears twice", ld.base + at)
    at = at2
    # neurons
    nr, at2 = ld._bits_table(F2.BSS2_NEURON, buf, at, n, env, "BSS2_NEURON")
    bits["neurons"] = (at2 - at) * 8
    rb = F2.BSS2_NEURON.record_bits(env)
    cmax = P["neuron.code_max"]
    for f in SPREAD_PARAMS:
        ld._check_col(nr[f] <= cmax, f"BSS2_NEURON.{f}", nr[f], at, rb,
                      f"<= neuron.code_max {cmax}")
    bmax = P["neuron.bias_max"]
    ld._check_col(np.abs(nr["bias"]) <= bmax, "BSS2_NEURON.bias", nr["bias"], at, rb,
                  f"-{bmax}..{bmax} (neuron.bias_max)")
    ld._check_col(nr["refractory_clock"] <= P["neuron.refractory_clock_max"],
                  "BSS2_NEURON.refractory_clock", nr["refractory_clock"], at, rb,
                  f"<= neuron.refractory_clock_max {P['neuron.refractory_clock_max']}")
    ld._check_col(nr["circuits_minus_1"] < P["core.max_merge"], "BSS2_NEURON.circuits_minus_1",
                  nr["circuits_minus_1"], at, rb, f"< core.max_merge {P['core.max_merge']}")
    ld._check_col((nr["readout"] == 0) | (nr["label"] == 0), "BSS2_NEURON.label", nr["label"],
                  at, rb, "0 for a readout neuron")
    circ = nr["circuits_minus_1"] + 1
    ld.need(int(circ.sum()) == n_circ, f"neurons join {int(circ.sum())} circuits, n_circuits = "
            f"{n_circ}", ld.base + at)
    nr["circuits"] = circ
    at = at2
    # rows
    rw, at2 = ld._bits_table(F2.BSS2_ROW, buf, at, n_rows, env, "BSS2_ROW")
    bits["rows"] = (at2 - at) * 8
    ld._check_col(rw["delay_minus_1"] < P["synapse.delay_max"], "BSS2_ROW.delay_minus_1",
                  rw["delay_minus_1"], at, F2.BSS2_ROW.record_bits(env),
                  f"< synapse.delay_max {P['synapse.delay_max']}")
    at = at2
    # the synapse array
    sy, at2 = ld._bits_table(F2.BSS2_SYNAPSE, buf, at, n_rows * n_circ, env, "BSS2_SYNAPSE")
    bits["synapses"] = (at2 - at) * 8
    ld._check_col((sy["weight"] != 0) | (sy["address"] == 0), "BSS2_SYNAPSE.address",
                  sy["address"], at, F2.BSS2_SYNAPSE.record_bits(env),
                  "0 where the weight is 0 (no synapse)")
    return BSS2Core(
        id=cid, chip=chip, x=x, y=y, n_neurons=n, n_circuits=n_circ, n_rows=n_rows,
        slices=slices, filters=fl, neuron=nr, rows=rw,
        address=sy["address"].reshape(n_rows, n_circ), weight=sy["weight"].reshape(n_rows, n_circ),
        col_neuron=np.repeat(np.arange(n, dtype=np.int64), circ), bits=bits,
        route_ptr=np.zeros(n + 1, np.int64))


_COUNTS = ("n_neurons", "n_circuits", "n_rows", "n_filters", "n_slices")


def decode_cores(ld: Any, cores_e: list[dict]) -> list[BSS2Core] | None:
    """Loader hook, the fast path: every CORE section decoded and checked, the cores of one
    layout (the same counts) together (:mod:`emulator.loader_batch`), or None when a check fails
    or a layout is not handled (the loader then calls :func:`decode_core` core by core, which
    words the error). Each check of :func:`decode_core` is made here as one boolean."""
    from emulator import loader_batch as LB

    nc = len(cores_e)
    if nc == 0:
        return []
    P = ld.params
    H = F2.BSS2_CORE_HEADER
    got = LB.core_headers(ld, cores_e, H, _COUNTS)
    if got is None:
        return None
    buf8, offs, lens, h, ok = got
    env = _env(P)
    ok &= (h["n_circuits"] <= P["core.neurons"]) & (h["n_neurons"] <= h["n_circuits"])
    ok &= (h["n_rows"] <= P["core.rows"]) & (h["n_filters"] <= 1 << env["w_group"])
    if not ok.all():
        return None
    key = np.stack([h[k] for k in _COUNTS] + [lens], 1)
    uniq, inv = np.unique(key, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    cores: list[Any] = [None] * nc
    for gi, k in enumerate(uniq.tolist()):
        idx = np.flatnonzero(inv == gi)
        if not _decode_group(ld, LB, buf8, cores_e, idx, offs[idx], h,
                             dict(zip(_COUNTS, k, strict=False)), int(k[-1]), env, cores):
            return None
    return cores


def _decode_group(ld: Any, LB: Any, buf8: np.ndarray, cores_e: list[dict], idx: np.ndarray,
                  so: np.ndarray, h: dict, k: dict, length: int, env: dict, cores: list) -> bool:
    """Decode the cores ``idx`` (one layout ``k``) into ``cores``; False on any failed check."""
    P = ld.params
    g = idx.size
    n, n_circ, n_rows, n_filt, n_sl = (k[c] for c in _COUNTS)
    H = F2.BSS2_CORE_HEADER
    sizes = [H.size, n_sl * F.SLICE.size, F2.BSS2_FILTER.nbytes(n_filt, env),
             F2.BSS2_NEURON.nbytes(n, env), F2.BSS2_ROW.nbytes(n_rows, env),
             F2.BSS2_SYNAPSE.nbytes(n_rows * n_circ, env)]
    if sum(sizes) != length:
        return False
    at = H.size
    slices = LB._slices(ld, buf8, so + at, n_sl, n)
    if slices is None:
        return False
    at += n_sl * F.SLICE.size
    bits: dict[str, int] = {}

    def table(T: F.BitTable, cnt: int, name: str) -> Any:
        nonlocal at
        nb = T.nbytes(cnt, env)
        r = LB.rows(buf8, so + at, nb)
        if not LB.pad_ok(r, cnt * T.record_bits(env), nb):
            return None
        bits[name] = nb * 8
        at += nb
        return T.unpack_rows(r, cnt, env)

    fl = table(F2.BSS2_FILTER, n_filt, "crossbar")
    if fl is None or (fl["target"] & ~fl["mask"]).any():
        return False
    fkey = np.sort(fl["mask"] << 32 | fl["target"], axis=1)
    if (fkey[:, 1:] == fkey[:, :-1]).any():
        return False
    nr = table(F2.BSS2_NEURON, n, "neurons")
    if nr is None:
        return False
    cmax = P["neuron.code_max"]
    bad = (np.abs(nr["bias"]) > P["neuron.bias_max"])
    bad |= nr["refractory_clock"] > P["neuron.refractory_clock_max"]
    bad |= nr["circuits_minus_1"] >= P["core.max_merge"]
    bad |= (nr["readout"] != 0) & (nr["label"] != 0)
    for f in SPREAD_PARAMS:
        bad |= nr[f] > cmax
    circ = nr["circuits_minus_1"] + 1
    if bad.any() or (circ.sum(axis=1) != n_circ).any():
        return False
    nr["circuits"] = circ
    rw = table(F2.BSS2_ROW, n_rows, "rows")
    if rw is None or (rw["delay_minus_1"] >= P["synapse.delay_max"]).any():
        return False
    sy = table(F2.BSS2_SYNAPSE, n_rows * n_circ, "synapses")
    if sy is None or ((sy["weight"] == 0) & (sy["address"] != 0)).any():
        return False
    chip, x, y = (h[c][idx].tolist() for c in ("chip", "x", "y"))
    address = sy["address"].reshape(g, n_rows, n_circ)
    weight = sy["weight"].reshape(g, n_rows, n_circ)
    cols = np.arange(n, dtype=np.int64)
    for j, ci in enumerate(idx.tolist()):
        cores[ci] = BSS2Core(
            id=cores_e[ci]["index"], chip=chip[j], x=x[j], y=y[j], n_neurons=n,
            n_circuits=n_circ, n_rows=n_rows, slices=slices[j],
            filters={c: v[j] for c, v in fl.items()}, neuron={c: v[j] for c, v in nr.items()},
            rows={c: v[j] for c, v in rw.items()}, address=address[j], weight=weight[j],
            col_neuron=np.repeat(cols, circ[j]), bits=dict(bits),
            route_ptr=np.zeros(n + 1, np.int64))
    return True


def cross_check(ld: Any, cores: list[BSS2Core], inputs: list, outputs: list, cores_e: list[dict],
                iomap_e: dict) -> None:
    """Loader hook: rules across sections, then the receive tables (module doc).

    Unique core positions; every population covered once by slices, with matching readout flags;
    input entries give each element one label, deliver it at most once per hemisphere, and only
    to hemispheres whose crossbar accepts it; labels of input elements and spiking neurons are
    unique; output entries read existing neurons of the port's kind, every element once."""
    pos: dict[tuple, int] = {}
    for c, e in zip(cores, cores_e, strict=True):
        ld.section, ld.base = e["name"], e["offset"]
        key = (c.chip, c.x, c.y)
        ld.need(key not in pos, f"position chip {c.chip} ({c.x}, {c.y}) is also core {pos.get(key)}")
        pos[key] = c.id
    for p in ld.pops:
        p.core = np.full(p.size, -1, np.int64)
        p.local = np.full(p.size, -1, np.int64)
    H = F2.BSS2_CORE_HEADER
    for c, e in zip(cores, cores_e, strict=True):
        ld.section, ld.base = e["name"], e["offset"]
        local = 0
        for i, (pi, s, t) in enumerate(c.slices.tolist()):
            p = ld.pops[pi]
            ld.need(np.all(p.core[s:t] < 0), f"SLICE[{i}] {p.name}[{s}:{t}] overlaps another "
                    "slice", ld.base + H.size + 12 * i)
            p.core[s:t] = c.id
            p.local[s:t] = np.arange(local, local + t - s)
            ro = c.neuron["readout"][local:local + t - s]
            ld.need(np.all(ro == int(p.readout)), f"SLICE[{i}] {p.name}: neurons disagree with "
                    f"the population's readout flag ({p.readout})", ld.base + H.size + 12 * i)
            local += t - s
    ld.section, ld.base = "SYMBOLS", 0
    for p in ld.pops:
        ld.need(np.all(p.core >= 0), lambda p=p: f"population {p.name}: neuron "
                f"{int(np.flatnonzero(p.core < 0)[0])} is on no core")
    # input elements: one label each, delivered to accepting hemispheres at most once
    L = ld.params["widths.label"]
    ld.section, ld.base = "IOMAP", iomap_e["offset"]
    at_in, at_out = ld.io_offsets
    owners: list[np.ndarray] = []
    k = 0
    for port in inputs:
        lab = np.full(port.width, -1, np.int64)
        seen = np.zeros((len(cores), port.width), bool)
        for c, a, s, t in port.entries.tolist():
            where = ld.base + at_in + 16 * k
            ld.need(c < len(cores), f"input {port.name}[{s}:{t}] -> core {c}, which does not "
                    "exist", where)
            ld.need(a + (t - s) <= 1 << L, f"input {port.name}[{s}:{t}]: labels {a}.. exceed "
                    f"widths.label ({L} bits)", where)
            new = a + np.arange(t - s, dtype=np.int64)
            old = lab[s:t]
            ld.need(np.all((old < 0) | (old == new)), f"input {port.name}[{s}:{t}]: an element "
                    "gets two labels (its entries disagree)", where)
            lab[s:t] = new
            ld.need(not seen[c, s:t].any(), f"input {port.name}[{s}:{t}]: an element is "
                    f"delivered to core {c} twice", where)
            seen[c, s:t] = True
            ok = cores[c].accepts(new)
            ld.need(ok.all(), lambda new=new, ok=ok, c=c, port=port, s=s, t=t: (
                f"input {port.name}[{s}:{t}]: label {int(new[~ok][0])} is not accepted by the "
                f"crossbar of core {c}"), where)
            k += 1
        port.labels = lab
        owners.append(lab[lab >= 0])
    for c in cores:
        owners.append(c.neuron["label"][c.neuron["readout"] == 0])
    srt = np.sort(np.concatenate(owners)) if owners else _Z
    dup = np.flatnonzero(srt[1:] == srt[:-1])
    ld.need(dup.size == 0, lambda: f"event label {int(srt[dup[0]])} belongs to two sources "
            "(input elements or spiking neurons); labels must be unique")
    k = 0
    for port in outputs:
        cover = np.zeros(port.width, np.int64)
        for c, nn, s, t in port.entries.tolist():
            where = ld.base + at_out + 16 * k
            ld.need(c < len(cores) and nn + (t - s) <= cores[c].n_neurons,
                    f"output {port.name}[{s}:{t}] <- core {c} neurons {nn}.. do not exist", where)
            ro = cores[c].neuron["readout"][nn:nn + t - s]
            ld.need(np.all(ro == int(port.kind == "values")),
                    f"output {port.name} ({port.kind}) reads neurons of the other kind on core {c}",
                    where)
            cover[s:t] += 1
            k += 1
        ld.need(np.all(cover == 1), lambda cover=cover, port=port: f"output {port.name}: element "
                f"{int(np.flatnonzero(cover != 1)[0])} is mapped {int(cover[cover != 1][0])} times")
    receive_tables(cores, inputs, int(ld.params["widths.address"]))


def accepted(labels: np.ndarray, mask: np.ndarray, target: np.ndarray, owner: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (owner, index into ``labels``) such that ``(labels[index] & mask[k]) ==
    target[k]`` for an entry ``k`` of that owner: each pair once, sorted by owner, then index.

    One pass over the labels per distinct mask (a chip's crossbars use a few masks), with the
    targets of that mask sorted once and searched, instead of every label against every entry."""
    labels = np.asarray(labels, np.int64)
    n = labels.size
    owner = np.asarray(owner, np.int64)
    keys = []
    if n:
        for m in np.unique(mask).tolist():
            sel = mask == m
            o = np.argsort(target[sel], kind="stable")
            tk, ow = target[sel][o], owner[sel][o]
            key = labels & m
            lo = np.searchsorted(tk, key, "left")
            cnt = np.searchsorted(tk, key, "right") - lo
            tot = int(cnt.sum())
            if tot:
                first = np.cumsum(cnt) - cnt
                pos = np.arange(tot, dtype=np.int64) + np.repeat(lo - first, cnt)
                keys.append(ow[pos] * n + np.repeat(np.arange(n, dtype=np.int64), cnt))
    if not keys:
        return _Z, _Z
    k = np.unique(np.concatenate(keys))
    return k // n, k % n


def receive_tables(cores: list[BSS2Core], inputs: list, aw: int) -> None:
    """Derive every hemisphere's receive table, synapse lists by axon and route entries, and
    rewrite the input entries from labels to axon indices (module doc).

    Every hemisphere's received labels are keyed ``hemisphere << s | label`` in one sorted array
    (``s`` bits hold any label), so the receive tables, the axon of every route entry and of
    every input entry are one search each; the crossbars are matched by :func:`accepted`."""
    nc = len(cores)
    # spiking neurons: label, core, local index (in core order, then local order)
    spk = [np.flatnonzero(c.neuron["readout"] == 0) for c in cores]
    n_lab = cat([c.neuron["label"][s] for c, s in zip(cores, spk, strict=True)])
    n_core = np.repeat(np.arange(nc, dtype=np.int64), [s.size for s in spk])
    n_loc = cat(spk)
    # which hemispheres accept which neuron labels: pairs (receiving core, neuron), by core
    fsz = [c.filters["mask"].size for c in cores]
    r_core, r_src = accepted(n_lab, cat([c.filters["mask"] for c in cores]),
                             cat([c.filters["target"] for c in cores]),
                             np.repeat(np.arange(nc, dtype=np.int64), fsz))
    # host entries: (core, label) of every element an entry delivers
    ent = [p.entries.reshape(-1, 4).astype(np.int64) for p in inputs]
    ent_all = np.concatenate(ent) if ent else np.zeros((0, 4), np.int64)
    cnt = ent_all[:, 3] - ent_all[:, 2]
    i_core = np.repeat(ent_all[:, 0], cnt)
    i_lab = np.repeat(ent_all[:, 1] - (np.cumsum(cnt) - cnt), cnt) + np.arange(int(cnt.sum()))
    r_lab = n_lab[r_src]
    top = max([int(x.max()) for x in (r_lab, i_lab, ent_all[:, 1]) if x.size] + [1])
    s = top.bit_length()
    keys = np.unique(np.concatenate([r_core << s | r_lab, i_core << s | i_lab]))
    aptr = np.searchsorted(keys >> s, np.arange(nc + 1, dtype=np.int64))
    labels = keys & ((1 << s) - 1)
    for i, c in enumerate(cores):
        c.axon_label = labels[aptr[i]:aptr[i + 1]]
    _synapses_by_axon(cores, aw)
    # route entries of every spiking neuron: by neuron, then receiving hemisphere
    r_axon = np.searchsorted(keys, r_core << s | r_lab) - aptr[r_core]
    o = np.argsort(r_src * max(nc, 1) + r_core, kind="stable")
    r_core, r_src, r_axon = r_core[o], r_src[o], r_axon[o]
    s_loc = n_loc[r_src]
    rptr = np.searchsorted(n_core[r_src], np.arange(nc + 1, dtype=np.int64))
    for i, c in enumerate(cores):
        a, b = int(rptr[i]), int(rptr[i + 1])
        c.route_ptr = np.zeros(c.n_neurons + 1, np.int64)
        np.cumsum(np.bincount(s_loc[a:b], minlength=c.n_neurons), out=c.route_ptr[1:])
        c.route_core, c.route_axon = r_core[a:b], r_axon[a:b]
    # input entries: labels -> axon indices
    for port, e in zip(inputs, ent, strict=True):
        if port.entries.size:
            new = port.entries.copy()
            new[:, 1] = np.searchsorted(keys, e[:, 0] << s | e[:, 1]) - aptr[e[:, 0]]
            port.entries = new


def _slot_bits(c: BSS2Core) -> int:
    """Bits of a slot index of ``c``'s synapse array (row-major)."""
    return max(1, (c.weight.size - 1).bit_length())


def _sorted_slots(c: BSS2Core, aw: int, key: np.ndarray, slot_ids: np.ndarray) -> np.ndarray:
    """The slots of ``c``'s synapse array (row-major index) that hold a synapse whose label
    (row group, address) the hemisphere receives, ordered by axon, then slot, written to
    ``key`` (one entry per slot) as ``axon << slot_bits | slot``, where slots without such a
    synapse take axon ``n_axons`` and sort last: one sort of plain integers (faster than a
    stable argsort of the axons). Returns the CSR pointer by axon."""
    A = c.axon_label
    na = A.size
    R, C = c.weight.shape
    group = c.rows["group"]
    dt = key.dtype.type
    sb = dt(_slot_bits(c))
    grp = np.unique(group) if R else _Z
    if (grp.size << aw) <= 4 * R * C + (1 << 16):
        # a dense table (row group rank, address) -> axon << slot_bits; its last entry is for
        # the slots without a synapse
        gi = np.searchsorted(grp, A >> aw)
        ok = gi < grp.size
        ok[ok] = grp[gi[ok]] == A[ok] >> aw
        tab = np.full((grp.size << aw) + 1, na, dt)
        tab[(gi[ok] << aw) | (A[ok] & ((1 << aw) - 1))] = np.flatnonzero(ok)
        tab <<= sb
        at = c.address + (np.searchsorted(grp, group) << aw)[:, None]
        at[c.weight == 0] = grp.size << aw
        np.take(tab, at.reshape(-1), out=key, mode="clip")
    else:
        lab = (c.address | (group << aw)[:, None]).reshape(-1)
        ax = np.searchsorted(A, lab)
        hit = ax < na
        hit[hit] = A[ax[hit]] == lab[hit]
        hit &= c.weight.reshape(-1) != 0
        np.left_shift(np.where(hit, ax, na), sb, out=key, casting="unsafe")
    key |= slot_ids[:R * C]
    key.sort()
    return np.searchsorted(key, np.arange(na + 1, dtype=dt) << sb).astype(np.int64)


def _synapses_by_axon(cores: list[BSS2Core], aw: int) -> None:
    """Every core's synapse lists by axon (its ``axon_label`` set, module doc): the synapses of
    a received label, by axon, then row, then column (:func:`_sorted_slots`). The lists of all
    cores are views of four arrays allocated once, and the sort keys of all cores share one
    array (one large allocation is far cheaper to fault in than hundreds of small ones)."""
    size = [c.weight.size for c in cores]
    wide = any(c.axon_label.size.bit_length() + _slot_bits(c) > 32 for c in cores)
    dt = np.uint64 if wide else np.uint32
    kat = np.zeros(len(cores) + 1, np.int64)
    np.cumsum(size, out=kat[1:])
    keys = np.empty(int(kat[-1]), dt)
    slot_ids = np.arange(max(size + [1]), dtype=dt)
    ptrs = [_sorted_slots(c, aw, keys[kat[i]:kat[i + 1]], slot_ids) for i, c in enumerate(cores)]
    at = np.zeros(len(cores) + 1, np.int64)
    np.cumsum([int(p[-1]) for p in ptrs], out=at[1:])
    comp, group, w, delay = (np.empty(int(at[-1]), np.int64) for _ in range(4))
    for i, (c, ptr) in enumerate(zip(cores, ptrs, strict=True)):
        a, b = int(at[i]), int(at[i + 1])
        C = c.weight.shape[1]
        flat = np.empty(b - a, np.int64)
        np.bitwise_and(keys[kat[i]:kat[i] + b - a], dt((1 << _slot_bits(c)) - 1), out=flat,
                       casting="unsafe")
        # (mode="clip": np.take buffers its out= in the default mode; the indices are valid)
        np.take(c.weight, flat, out=w[a:b], mode="clip")
        r, j = np.divmod(flat, max(C, 1))
        np.take(c.col_neuron, j, out=comp[a:b], mode="clip")
        np.take(c.rows["sign"], r, out=group[a:b], mode="clip")
        np.take(c.rows["delay_minus_1"] + 1, r, out=delay[a:b], mode="clip")
        c.syn_ptr = ptr
        c.syn_comp, c.syn_group, c.syn_w, c.syn_delay = (x[a:b] for x in (comp, group, w, delay))


# ------------------------------------------------------------------------------------------
# Fixed-pattern noise: a chip instance
# ------------------------------------------------------------------------------------------
def fixed_pattern_noise(chip: Any, sigma: float | str, seed: int = 0) -> Any:
    """A copy of ``chip`` whose analog codes carry seeded fixed-pattern noise of ``sigma``
    codes (``"profile"``: the image's ``analog.fpn_sigma_codes``); the rule is in the module
    doc. ``sigma = 0`` returns an identical chip. The original is not changed."""
    if chip.family != "brainscales2":
        raise InputError(f"fixed-pattern noise is a brainscales2 option; chip {chip.graph_name} "
                         f"is of family {chip.family}")
    if isinstance(sigma, str):
        if sigma != "profile":
            raise InputError(f"fixed-pattern noise sigma {sigma!r} must be a number of codes or "
                             "'profile'")
        sigma = float(chip.params["analog.fpn_sigma_codes"])
    try:
        s = float(sigma)
    except (TypeError, ValueError):
        raise InputError(f"fixed-pattern noise sigma {sigma!r} must be a number of codes") from None
    if not np.isfinite(s) or s < 0:
        raise InputError(f"fixed-pattern noise sigma = {sigma} must be a finite number >= 0 (codes)")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed < 2**63:
        raise InputError(f"fixed-pattern noise seed {seed!r} must be an integer 0..2**63-1")
    cmax = int(chip.params["neuron.code_max"])
    new = copy.copy(chip)
    new._cache = {}
    cores = []
    for c in chip.cores:
        nr = dict(c.neuron)
        if s:
            for k, f in enumerate(SPREAD_PARAMS):
                nr[f] = spread_codes(nr[f], nr["fpn_id"], int(seed), s, k, cmax)
        cores.append(dataclasses.replace(c, neuron=nr))
    new.cores = cores
    new.fpn = {"sigma_codes": s, "seed": int(seed)}
    return new


# ------------------------------------------------------------------------------------------
# Program: struct-of-arrays tables over every hemisphere
# ------------------------------------------------------------------------------------------
class BSS2Program(SynapseProgram):
    """The shared synapse tables (lane class = row sign) plus every neuron's parameters as
    global vectors (core ``c`` holds neurons ``off[c] .. off[c+1]-1``)."""

    def __init__(self, chip: Any):
        super().__init__(chip)
        P = chip.params
        self.v_frac = int(P["datapath.v_frac"])
        self.den = int(P["datapath.decay_den"])
        self.v_max = (1 << int(P["widths.v"])) - 1
        self.i_max = (1 << int(P["widths.i"])) - 1
        prm = {f.name: cat([c.neuron[f.name] for c in chip.cores]).astype(np.int64)
               for f in F2.BSS2_NEURON.fields}
        self.prm = prm
        self.ref_len = prm["refractory"] << prm["refractory_clock"]
        self.readout = prm["readout"].astype(bool)
        self.rest = prm["v_leak"] << self.v_frac
        self.vth = prm["v_threshold"] << self.v_frac
        self.vreset = prm["v_reset"] << self.v_frac


Program = BSS2Program


# ------------------------------------------------------------------------------------------
# The neuron update (shared by both engines; int64)
# ------------------------------------------------------------------------------------------
def _overflow(prog: BSS2Program, reg: str, bad: np.ndarray, vals: np.ndarray, t: int,
              n0: int) -> StateOverflowError:
    b, j = (int(i[0]) for i in np.nonzero(bad))
    n = n0 + j
    core = int(prog.core_of[n])
    local = n - int(prog.off[core])
    pop = ""
    for p in prog.chip.populations:
        hit = np.flatnonzero((p.core == core) & (p.local == local))
        if hit.size:
            pop = f" (population {p.name}[{int(hit[0])}])"
            break
    lim, width = (prog.v_max, "widths.v") if reg == "v" else (prog.i_max, "widths.i")
    return StateOverflowError(
        f"tick {t} sample {b}: register {reg} of core {core} neuron {local}{pop} reached "
        f"{int(vals[b, j])}, outside 0..{lim} ({width}, policy saturate); a strict run stops at "
        "the first saturation (run without strict to count them)")


def _trunc_div(q: np.ndarray, den: int, tmp: np.ndarray) -> np.ndarray:
    """``q = trunc(q / den)`` in place (int64, ``den`` > 0; ``tmp`` a scratch array like
    ``q``): a negative q is raised by ``den - 1`` first (its sign bit, shifted down, selects
    the offset), so the floor division rounds it toward zero; ``q // den`` by one scalar."""
    np.right_shift(q, 63, out=tmp)
    tmp &= den - 1
    q += tmp
    q //= den
    return q


class _StepConsts:
    """The neuron update's parameters, decided once per program: a parameter equal for every
    neuron is kept as a scalar, and the refractory / readout steps are skipped when no neuron
    uses them (no refractory period: every ``ref`` stays 0)."""

    def __init__(self, prog: BSS2Program):
        p = prog.prm

        def uni(a: np.ndarray) -> Any:
            a = np.asarray(a, np.int64)
            return a.flat[0] if a.size and bool((a == a.flat[0]).all()) else a

        self.k_exc = uni(prog.den - p["c_syn_exc"])
        self.k_inh = uni(prog.den - p["c_syn_inh"])
        self.k_mem = uni(prog.den - p["c_mem"])
        self.g_exc = uni(p["gain_exc"])
        self.g_inh = uni(p["gain_inh"])
        self.rest = uni(prog.rest)
        self.rest_bias = uni(prog.rest + p["bias"])
        self.vth = uni(prog.vth)
        self.vreset = uni(prog.vreset)
        self.ref_len = uni(prog.ref_len)
        self.any_ref = bool(np.asarray(prog.ref_len).any())
        self.any_readout = bool(prog.readout.any())


def _consts(prog: BSS2Program) -> _StepConsts:
    c = prog.__dict__.get("_step_consts")
    if c is None:
        c = prog.__dict__["_step_consts"] = _StepConsts(prog)
    return c


def neuron_step(prog: BSS2Program, st: dict, E: Any, I: Any, n0: int, n1: int, t: int,
                strict: bool, overflows: dict) -> tuple[np.ndarray, dict]:
    """One tick of neurons ``n0 .. n1-1`` from their committed state ``st`` (``v``, ``i_exc``,
    ``i_inh``, ``ref``: (B, n) int64, never written) and the summed weights ``E``, ``I``
    ((B, n) or None): the spikes (B, n) bool and the new state (the module doc's rule; exact
    int64, in fresh arrays, with the shortcuts of :class:`_StepConsts`)."""
    sl = slice(n0, n1)
    c = _consts(prog)
    den = prog.den

    def S(x: Any) -> Any:  # a parameter over neurons n0 .. n1-1 (a scalar when uniform)
        return x if np.ndim(x) == 0 else x[sl]

    tmp = np.empty(st["v"].shape, np.int64)

    def current(x: np.ndarray, k: Any, g: Any, W: Any) -> np.ndarray:
        if np.ndim(k) == 0 and k == 0:  # c = D: nothing of the old current is kept
            if W is None:
                return np.zeros(x.shape, np.int64)
            return np.multiply(_ints(W), S(g), dtype=np.int64)
        if np.ndim(k) == 0 and k == den:  # c = 0: the current is kept whole
            y = np.array(x, np.int64)
        else:
            y = _trunc_div(np.multiply(x, S(k), dtype=np.int64), den, tmp)
        if W is not None:
            y += np.multiply(_ints(W), S(g), out=tmp)
        return y

    ie = current(st["i_exc"], c.k_exc, c.g_exc, E)
    ii = current(st["i_inh"], c.k_inh, c.g_inh, I)
    if ie.size and (ie.max() > prog.i_max or ii.max() > prog.i_max):
        hi_e, hi_i = ie > prog.i_max, ii > prog.i_max
        sat_i = hi_e | hi_i
        if strict:
            raise _overflow(prog, "i", sat_i, np.where(hi_e, ie, ii), t, n0)
        overflows["i"] += int(np.count_nonzero(sat_i))
        np.minimum(ie, prog.i_max, out=ie)
        np.minimum(ii, prog.i_max, out=ii)
    v = np.subtract(st["v"], S(c.rest), dtype=np.int64)
    v *= S(c.k_mem)
    _trunc_div(v, den, tmp)
    v += S(c.rest_bias)
    v += ie
    v -= ii
    refr = st["ref"] > 0 if c.any_ref else None
    if v.size and (v.min() < 0 or v.max() > prog.v_max):
        if refr is None and not strict:  # counted by side, without a combined mask
            overflows["v"] += int(np.count_nonzero(v < 0)) + int(
                np.count_nonzero(v > prog.v_max))
            np.clip(v, 0, prog.v_max, out=v)
        else:
            sat_v = (v < 0) | (v > prog.v_max)
            if refr is not None:
                sat_v &= ~refr
            if sat_v.any():
                if strict:
                    raise _overflow(prog, "v", sat_v, v, t, n0)
                overflows["v"] += int(np.count_nonzero(sat_v))
                np.clip(v, 0, prog.v_max, out=v)
    if refr is not None:
        np.copyto(v, S(c.vreset), where=refr)
        ref = np.subtract(st["ref"], refr, dtype=np.int64)
    else:
        ref = st["ref"]  # no refractory period anywhere: every counter stays 0
    s = v >= S(c.vth)
    if refr is not None:
        s &= ~refr
    if c.any_readout:
        s &= ~prog.readout[sl]
    if s.any():
        np.copyto(v, S(c.vreset), where=s)
        if c.any_ref:
            np.copyto(ref, S(c.ref_len), where=s)
    return s, dict(v=v, i_exc=ie, i_inh=ii, ref=ref)


def _ints(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    return np.rint(x).astype(np.int64) if x.dtype.kind == "f" else x.astype(np.int64, copy=False)


def _initial_state(prog: BSS2Program, B: int) -> dict[str, np.ndarray]:
    N = prog.N
    return dict(v=np.broadcast_to(prog.rest, (B, N)).astype(np.int64),
                i_exc=np.zeros((B, N), np.int64), i_inh=np.zeros((B, N), np.int64),
                ref=np.zeros((B, N), np.int64))


def _reset_state(prog: BSS2Program, st: dict, idx: np.ndarray) -> None:
    """Neurons ``idx`` (global ids) of every sample back to the initial state (in place)."""
    st["v"][:, idx] = prog.rest[idx]
    for k in ("i_exc", "i_inh", "ref"):
        st[k][:, idx] = 0


def _active(prog: BSS2Program, st: dict, s: np.ndarray, n0: int = 0, n1: int | None = None
            ) -> np.ndarray:
    """Neurons with work this tick (ours): a spike, a current, refractory, or v away from rest
    (an analog neuron at rest with no input is idle)."""
    c = _consts(prog)
    rest = c.rest if np.ndim(c.rest) == 0 else c.rest[n0:n1]
    act = s | (st["v"] != rest)
    act |= st["i_exc"] != 0
    act |= st["i_inh"] != 0
    if c.any_ref:  # else every refractory counter is 0
        act |= st["ref"] > 0
    return act


# ------------------------------------------------------------------------------------------
# Fast engine
# ------------------------------------------------------------------------------------------
class FastEngine:
    """Functional mode over every hemisphere and the whole batch (see the module doc)."""

    variables = VARIABLES

    def __init__(self, prog: BSS2Program, batch: int, strict: bool = False, threads: int = 1):
        self.p = prog
        self.B = batch
        self.strict = strict
        self.g = Gatherer(prog, batch, classes=prog.lane_group, n_classes=SIGN_CLASSES,
                          threads=threads)
        self.st = _initial_state(prog, batch)
        self.overflows = {"v": 0, "i": 0}

    @property
    def spike_count_routed(self) -> np.ndarray:
        return self.g.spike_count_routed

    def state(self) -> dict[str, np.ndarray]:
        return self.st

    def value(self) -> np.ndarray:
        return self.st["v"]

    def active(self, s: np.ndarray) -> np.ndarray:
        return _active(self.p, self.st, s)

    def close(self) -> None:
        self.g.close()

    def reset(self, idx: np.ndarray, t: int) -> None:
        """A host reset after tick ``t``: neurons ``idx`` (global ids) back to the initial
        state (v at v_leak, currents and refractory counter 0); events on their way are kept."""
        _reset_state(self.p, self.st, idx)

    def step(self, t: int, act_in_hist: Any) -> np.ndarray:
        """Advance to tick ``t``; ``act_in_hist(tau)``: active input channels of tick tau per
        sample (or None). Returns the spikes (B, N) bool."""
        E, I = self.g.tick_inputs(t, act_in_hist)
        s, self.st = neuron_step(self.p, self.st, E, I, 0, self.p.N, t, self.strict,
                                 self.overflows)
        self.g.record_spikes(t, s)
        return s


# ------------------------------------------------------------------------------------------
# Cycle-mode engine
# ------------------------------------------------------------------------------------------
class CoreEngine:
    """Per-hemisphere datapath (int64) with the phases of :data:`PHASES` and a two-phase commit:
    every hemisphere reads the committed state and writes staged copies, committed when all are
    done. The arrival ring holds, per tick slot, the summed weights of every lane."""

    variables = VARIABLES

    def __init__(self, prog: BSS2Program, batch: int, strict: bool = False):
        self.p = prog
        self.B = batch
        self.strict = strict
        st = _initial_state(prog, batch)
        st["ring"] = np.zeros((prog.max_delay + 1, batch, prog.L), np.int64)
        self.state = st
        self.overflows = {"v": 0, "i": 0}

    def reset(self, idx: np.ndarray, t: int) -> None:
        """A host reset after tick ``t`` (committed state): neurons ``idx`` back to the initial
        state; the arrival ring (events on their way) is kept."""
        _reset_state(self.p, self.state, idx)

    def tick(self, t: int, inbox: list[np.ndarray], order: list[int]) -> dict:
        """Run tick ``t`` over the hemispheres in ``order``. ``inbox[c]``: (B, n_axons) bool, the
        events delivered to hemisphere c during tick t-1. Returns the spikes (B, N), the state,
        the value and per-core counters (``sops``, ``events``, ``spikes``, ``active``)."""
        p, B = self.p, self.B
        cur = self.state
        staged = {k: v.copy() for k, v in cur.items()}
        per_core = {k: np.zeros((B, p.n_cores), np.int64)
                    for k in ("sops", "events", "spikes", "active")}
        spikes = np.zeros((B, p.N), bool)
        for c in order:
            self._core(c, t, inbox[c], cur, staged, spikes, per_core)
        self.state = staged  # commit
        state = {k: staged[k] for k in VARIABLES}
        return dict(spikes=spikes, state=state, value=staged["v"], per_core=per_core)

    def _core(self, c: int, t: int, events: np.ndarray | None, cur: dict, nxt: dict,
              spikes: np.ndarray, per_core: dict) -> None:
        p = self.p
        n0, n1 = int(p.off[c]), int(p.off[c + 1])
        # phase deliver: events of tick t-1 -> ring slots (t - 1 + delay) of their rows' lanes
        deliver(p, c, t, events, nxt["ring"], per_core)
        # phase integrate: this tick's slot, summed per sign and neuron (merged circuits add)
        E, I = integrate(p, c, t, nxt["ring"], SIGN_CLASSES, p.lane_group)
        # phases leak, threshold, reset: the shared rule on the committed state
        st = {k: cur[k][:, n0:n1] for k in VARIABLES}
        s, new = neuron_step(p, st, E, I, n0, n1, t, self.strict, self.overflows)
        for k, v in new.items():
            nxt[k][:, n0:n1] = v
        spikes[:, n0:n1] = s
        per_core["spikes"][:, c] = s.sum(axis=1)
        per_core["active"][:, c] = np.count_nonzero(_active(p, new, s, n0, n1), axis=1)
        # phase emit: the runner hands the spikes to the crossbar and the network on chip


def disasm(chip: Any, core: int | None = None, max_rows: int | None = None) -> str:
    """A per-hemisphere dump of the image's tables (all hemispheres, or one)."""
    if core is not None and not 0 <= core < len(chip.cores):
        raise InputError(f"--core {core}: the chip has cores 0..{len(chip.cores) - 1}")
    aw = int(chip.params["widths.address"])
    out: list[str] = []
    for c in (chip.cores if core is None else [chip.cores[core]]):
        out.extend(c.disasm_lines(chip.populations, max_rows, aw))
    if core is None:
        for p in chip.inputs:
            lab = getattr(p, "labels", None)
            for c_, a, s, e in p.entries.tolist():
                first = int(lab[s]) if lab is not None else a
                out.append(f"input {p.name}[{s}:{e}] -> core {c_} labels "
                           f"{first:#06x}..{first + e - s - 1:#06x} (axons {a}..{a + e - s - 1})")
        for p in chip.outputs:
            for c_, n, s, e in p.entries.tolist():
                out.append(f"output {p.name}[{s}:{e}] <- core {c_} neurons {n}..{n + e - s - 1}")
    return "\n".join(out)


__all__ = ["BSS2Core", "BSS2Program", "CoreEngine", "FPN_DOMAIN", "FastEngine", "PHASES",
           "Program", "SPREAD_PARAMS", "VALUE_VAR", "VARIABLES", "check_params",
           "counter_hash", "cross_check", "decay", "decode_core", "disasm",
           "fixed_pattern_noise", "neuron_step", "params_problem", "receive_tables",
           "spread_codes"]
