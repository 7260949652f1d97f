"""The BrainScaleS-2 image writer: a routed graph of ``BSS2Neuron`` / ``BSS2Synapses`` nodes ->
the bytes of a chip image (layout: ``emulator/format_brainscales2.py``, docs/image-format.md).

What it decides, per core (one hemisphere):

* **Labels** (global, ours). Every source that sends events (an Input element or a neuron of a
  spiking population) gets one event label: the sources are cut into *groups* of
  ``core.row_addresses`` (64) consecutive elements, groups are numbered over the Inputs (graph
  order) then the spiking populations (graph order), and element ``k`` of a source whose first
  group is ``G`` has label ``G * 64 + k``, so its group is the label's upper bits and its 6-bit
  synapse address the lower ones. Labels are unique; there are at most
  ``2**(widths.label - widths.address)`` groups.
* **Rows**, as the partitioner's cost model counts them (``nmc.passes.cost.BrainScaleS2Cost``):
  per (connection, sign, parallel synapse, source group), as many rows as the neediest neuron of
  the core needs, ``ceil(n / k)`` for ``n`` sources of the group and ``k`` merged circuits. The
  ``r``-th source (in source order) of a neuron in such a row set sits in row ``r // k`` of the
  set, column ``first circuit + r % k``. Row sets are laid out by connection (graph order), sign
  (excitatory first), parallel index, then group. A row holds its set's sign, source group and the
  connection's delay.
* **Crossbar**: one BSS2_FILTER entry per source group the core's rows listen to (mask = the
  group bits, target = group << address bits), in group order.
* **Host inputs**: one IN_ENTRY per (input port, core, run of accepted groups): the elements of
  the groups the core's crossbar accepts, delivered to that core with their labels.

The mapping's axons and routes are not stored (the crossbar delivers by label), but they are
checked: every source with a synapse on a core has an axon there, every axon carries the source
its route or input entry sends, and no axon is fed twice; anything else is a CompileError naming
the core, the object, the value and the fix. The writer is deterministic.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from emulator import format as F
from emulator import format_brainscales2 as F2
from ir.errors import CompileError
from ir.graph import Graph
from nmc.backend.writer import (
    Strings,
    _dims,
    _resolve,
    output_ports,
    params_payload,
    provenance_bytes,
)


class BSS2Writer:
    """Builds the sections of a brainscales2-family image (see the module doc)."""

    NEURON_KINDS = ("BSS2Neuron",)
    CONN_KINDS = ("BSS2Synapses",)

    def __init__(self, graph: Graph, prof: Any):
        self.g = graph
        self.prof = prof
        self.m = graph.mapping
        self.strings = Strings()
        self.strings("")  # id 0 is the empty string
        self.params = self._params()
        self.A = 1 << int(self.P("widths.address"))
        self._network()

    # ---- parameters ------------------------------------------------------------------------
    def _params(self) -> dict[str, tuple[Any, str]]:
        from ir.native import brainscales2 as native

        prof = self.prof
        out: dict[str, tuple[Any, str]] = {}
        for p in F2.PARAMS:
            if p.derive:
                if p.derive.startswith("native:"):
                    const = p.derive.split(":", 1)[1]
                    out[p.key] = (int(getattr(native, const)),
                                  f"ours: the BrainScaleS-2 datapath, ir.native.brainscales2.{const}")
                    continue
                src = p.derive.split(":", 1)[1]
                plus = 0
                if src.endswith("+1"):
                    src, plus = src[:-2], 1
                minus = src.endswith("-1")
                if minus:
                    src = src[:-2]
                v = int(prof.get(src))
                out[p.key] = (F.bitlen(v - 1 if minus else v) + plus,
                              f"derived: bit length of {src}{' - 1' if minus else ''}"
                              + (" plus a sign bit" if plus else ""))
                continue
            value = prof.get(p.profile_key, None)
            if value is not None:
                out[p.key] = (value, prof.source(p.profile_key) if p.profile_key in prof.sources
                              else "ours: profile value without a source tag")
            elif p.default is not None:
                out[p.key] = (p.default, p.default_source)
            else:
                raise CompileError(f"target {prof.name}: the profile has no {p.profile_key}, which "
                                   "the chip image needs; add it to the profile")
            v = out[p.key][0]
            if p.type == "int" and (isinstance(v, bool) or not isinstance(v, int)):
                raise CompileError(f"target {prof.name}: {p.key} = {v!r} must be an integer")
            if p.type == "float":
                if isinstance(v, bool) or not isinstance(v, int | float):
                    raise CompileError(f"target {prof.name}: {p.key} = {v!r} must be a number")
                out[p.key] = (float(v), out[p.key][1])
            if p.type in ("int", "float") and ((p.lo is not None and v < p.lo)
                                               or (p.hi is not None and v > p.hi)):
                raise CompileError(f"target {prof.name}: {p.key} = {v} is outside the image "
                                   f"format's range {p.lo}..{p.hi}")
            if p.choices is not None and v not in p.choices:
                raise CompileError(f"target {prof.name}: {p.key} = {v!r} is not one of "
                                   f"{', '.join(map(str, p.choices))}")
        val = {k: v[0] for k, v in out.items()}
        problem = params_problem(val)
        if problem:
            raise CompileError(f"target {prof.name}: {problem}")
        # The reference interpreter's datapath is fixed (ir.native.brainscales2); an image whose
        # register widths differ from it would run another neuron.
        for key, width in (("widths.v", (native.V_MAX + 1).bit_length() - 1),
                           ("widths.i", (native.I_MAX + 1).bit_length() - 1),
                           ("widths.weight", native.WEIGHT_MAX.bit_length())):
            if val[key] != width:
                raise CompileError(f"target {prof.name}: {key} = {val[key]}, but the brainscales2 "
                                   f"datapath (ir/native/brainscales2.py) has {width} bits")
        return out

    def P(self, key: str) -> Any:
        return self.params[key][0]

    # ---- network view ----------------------------------------------------------------------
    def _network(self) -> None:
        from ir.native.brainscales2 import neuron_params

        g = self.g
        self.pops: dict[str, Any] = {}
        self.inputs: dict[str, Any] = {}
        self.conns: dict[str, dict] = {}
        self.outputs: dict[str, str] = {}
        for node in g.nodes.values():
            if node.kind == "Input":
                self.inputs[node.name] = node
            elif node.category == "neuron":
                if node.kind not in self.NEURON_KINDS:
                    raise CompileError(
                        f"population {node.name} is of kind {node.kind}; a brainscales2 image holds "
                        f"BSS2Neuron populations only (quantize for {self.prof.name})")
                self.pops[node.name] = node
        for node in g.nodes.values():
            if node.kind in ("Input", "Output", "Flatten") or node.category == "neuron":
                continue
            if node.kind not in self.CONN_KINDS:
                raise CompileError(f"node {node.name} is of kind {node.kind}; a brainscales2 image "
                                   "holds connections of kind BSS2Synapses only")
            preds = g.predecessors(node.name)
            if len(preds) != 1:
                raise CompileError(f"connection {node.name}: needs exactly one source")
            src = _resolve(g, preds[0])
            if src not in self.pops and src not in self.inputs:
                raise CompileError(f"connection {node.name}: source {src} is neither a population "
                                   "nor an input")
            if src in self.pops and self.pops[src].readout:
                raise CompileError(f"connection {node.name}: source {src} is a readout population; "
                                   "it does not spike")
            targets, stack = [], list(g.successors(node.name))
            while stack:
                s = stack.pop(0)
                if g.nodes[s].kind == "Flatten":
                    stack.extend(g.successors(s))
                elif s in self.pops:
                    targets.append(s)
                else:
                    raise CompileError(f"connection {node.name} feeds {g.nodes[s].kind} {s}; a "
                                       "connection must feed populations")
            n_in, n_out = int(node.in_features), int(node.out_features)
            layers = []
            for sign, ref in enumerate((node.exc, node.inh)):
                if ref is None:
                    continue
                a = np.asarray(g.const(ref))
                if a.size and (a.dtype.kind not in "iub" and not np.all(a == np.round(a))):
                    raise CompileError(f"connection {node.name}: weights are not integers")
                a = a.astype(np.int64).reshape(-1, n_out, n_in)
                wmax = (1 << int(self.P("widths.weight"))) - 1
                if a.size and (a.min() < 0 or a.max() > wmax):
                    raise CompileError(f"connection {node.name}: weight {int(a.min() if a.min() < 0 else a.max())} "
                                       f"outside 0..{wmax} (widths.weight, target {self.prof.name})")
                for p in range(a.shape[0]):
                    layers.append((sign, p, a[p]))
            delay = int(node.delay)
            if not 1 <= delay <= int(self.P("synapse.delay_max")):
                raise CompileError(f"connection {node.name}: delay {delay} outside 1.."
                                   f"{self.P('synapse.delay_max')} (synapse.delay_max, target "
                                   f"{self.prof.name}); shorten the delay or relay the spikes "
                                   "through an extra population")
            self.conns[node.name] = dict(name=node.name, source=src, targets=targets, n_in=n_in,
                                         n_out=n_out, layers=layers, delay=delay)
        for o in g.outputs:
            ps = g.predecessors(o.name)
            if len(ps) != 1:
                raise CompileError(f"Output {o.name}: needs exactly one source")
            src = _resolve(g, ps[0])
            if src not in self.pops:
                raise CompileError(f"Output {o.name}: reads {src}, which is not a population on "
                                   "the chip")
            self.outputs[o.name] = src
        self.pop_index = {p: i for i, p in enumerate(self.pops)}
        self.conn_ids = {c: i for i, c in enumerate(self.conns)}
        self.np_params = {p: neuron_params(g, node) for p, node in self.pops.items()}
        # labels: groups of A elements over the inputs, then the spiking populations
        self.group0: dict[str, int] = {}
        nxt = 0
        for name, node in list(self.inputs.items()) + [(p, n) for p, n in self.pops.items()
                                                       if not n.readout]:
            self.group0[name] = nxt
            nxt += -(-int(node.size) // self.A)
        self.n_groups = nxt
        limit = 1 << F2.group_bits({k: v[0] for k, v in self.params.items()})
        if nxt > limit:
            raise CompileError(
                f"graph {g.name}: its sources need {nxt} label groups of {self.A} > {limit} "
                f"(widths.label {self.P('widths.label')} bits, target {self.prof.name}); the chip "
                "cannot label that many inputs and neurons")

    # ---- image -------------------------------------------------------------------------------
    def image(self) -> bytes:
        """The bytes of the image (CompileError when the graph does not fit)."""
        cores = self.m["cores"]
        self.n_cores = len(cores)
        mesh_x, mesh_y = int(self.prof.get("chip.mesh_x")), int(self.prof.get("chip.mesh_y"))
        max_chips = int(self.prof.get("chip.max_chips"))
        seen = set()
        for c in cores:
            ch, x, y = int(c["chip"]), int(c["x"]), int(c["y"])
            if not (0 <= ch < max_chips and 0 <= x < mesh_x and 0 <= y < mesh_y):
                raise CompileError(
                    f"core {c['id']}: position chip {ch} ({x}, {y}) is outside the mesh of target "
                    f"{self.prof.name} ({max_chips} chips of {mesh_x} x {mesh_y}); re-run place")
            if (ch, x, y) in seen:
                raise CompileError(f"core {c['id']}: position chip {ch} ({x}, {y}) is used twice")
            seen.add((ch, x, y))
        self.n_chips = max(int(c["chip"]) for c in cores) + 1
        self._locate()
        self._check_axons()
        payloads = [self._core(i) for i in range(self.n_cores)]
        iomap = self._iomap()
        symbols = self._symbols()
        params = self._params_payload()
        prov = self._provenance()
        meta = F.META.pack(dict(
            family=F.FAMILY_IDS["brainscales2"], n_cores=self.n_cores, n_chips=self.n_chips,
            mesh_x=mesh_x, mesh_y=mesh_y, profile_name=self.strings(self.prof.name),
            graph_name=self.strings(self.g.name), profile_sha256=bytes.fromhex(self.prof.sha256),
            dt=float(self.g.dt), n_populations=len(self.pops), n_inputs=len(self.inputs),
            n_outputs=len(self.outputs)))
        sections = [(F.Kind.META, 0, meta), (F.Kind.STRINGS, 0, self.strings.payload()),
                    (F.Kind.PARAMS, 0, params), (F.Kind.IOMAP, 0, iomap),
                    (F.Kind.SYMBOLS, 0, symbols), (F.Kind.PROVENANCE, 0, prov)]
        sections += [(F.Kind.CORE, i, p) for i, p in enumerate(payloads)]
        return F.assemble(sections)

    # ---- where every neuron lives ------------------------------------------------------------
    def _locate(self) -> None:
        self.core_of = {p: np.full(n.size, -1, np.int64) for p, n in self.pops.items()}
        self.local_of = {p: np.full(n.size, -1, np.int64) for p, n in self.pops.items()}
        self.core_slices: list[list[tuple[str, int, int]]] = []
        self.circuits: dict[str, int] = {}
        limit = int(self.P("core.neurons"))
        merge = int(self.P("core.max_merge"))
        for cid, c in enumerate(self.m["cores"]):
            extra = c.get("brainscales2") or {}
            circ = extra.get("circuits") or {}
            if not isinstance(circ, dict):
                raise CompileError(f"core {cid}: brainscales2.circuits {circ!r} is not a dict")
            base, used, slices = 0, 0, []
            for sl in c["slices"]:
                if not (isinstance(sl, list | tuple) and len(sl) == 3):
                    raise CompileError(f"core {cid}: slice {sl!r} is not [population, start, stop]")
                p, s, e = sl[0], int(sl[1]), int(sl[2])
                if p not in self.pops:
                    raise CompileError(f"core {cid}: slice names {p!r}, which is not a population")
                if not 0 <= s < e <= self.pops[p].size:
                    raise CompileError(f"core {cid}: slice {p}[{s}:{e}] is outside "
                                       f"0..{self.pops[p].size}")
                if np.any(self.core_of[p][s:e] >= 0):
                    raise CompileError(f"core {cid}: neurons of {p}[{s}:{e}] are already on "
                                       "another core")
                k = circ.get(p, 1)
                if not isinstance(k, int) or not 1 <= k <= merge:
                    raise CompileError(f"core {cid}: population {p} has {k!r} circuits per neuron; "
                                       f"1..{merge} (core.max_merge, target {self.prof.name})")
                if self.circuits.setdefault(p, k) != k:
                    raise CompileError(f"core {cid}: population {p} has {k} circuits per neuron "
                                       f"here and {self.circuits[p]} on another core")
                self.core_of[p][s:e] = cid
                self.local_of[p][s:e] = np.arange(base, base + e - s)
                base += e - s
                used += (e - s) * k
                slices.append((p, s, e))
            if base == 0:
                raise CompileError(f"core {cid}: holds no neurons")
            if used > limit:
                raise CompileError(f"core {cid}: {used} neuron circuits > {limit} (core.neurons, "
                                   f"target {self.prof.name}); partition with fewer neurons per core")
            self.core_slices.append(slices)
        for p, arr in self.core_of.items():
            if np.any(arr < 0):
                raise CompileError(f"population {p}: neuron {int(np.flatnonzero(arr < 0)[0])} is "
                                   "on no core; run partition")

    # ---- the mapping's axons and routes (checked, not stored) ----------------------------------
    def _check_axons(self) -> None:
        """Every (connection, source) with a synapse on a core has an axon there; every route
        target and input entry feeds an axon carrying its source; no axon is fed twice."""
        conn_names = list(self.conns)
        self.ax_key: list[np.ndarray] = []  # per core: conn_id * 2**32 + source, axon order
        for cid, c in enumerate(self.m["cores"]):
            ks = []
            for grp in c["axons"]:
                if not (isinstance(grp, list | tuple) and len(grp) == 3) or grp[0] not in self.conns:
                    raise CompileError(f"core {cid}: axon group {grp!r} is not [connection, start, "
                                       "stop]")
                conn, a, b = grp[0], int(grp[1]), int(grp[2])
                if not 0 <= a < b <= self.conns[conn]["n_in"]:
                    raise CompileError(f"core {cid}: axon group {conn}[{a}:{b}] is outside the "
                                       f"connection's {self.conns[conn]['n_in']} sources")
                ks.append(self.conn_ids[conn] * (1 << 32) + np.arange(a, b, dtype=np.int64))
            key = np.concatenate(ks) if ks else np.zeros(0, np.int64)
            if np.unique(key).size != key.size:
                raise CompileError(f"core {cid}: two axons carry the same (connection, source); "
                                   "the route pass must give each source one axon per core")
            self.ax_key.append(key)
        feeds = [np.zeros(k.size, np.int64) for k in self.ax_key]

        def feed(core: int, conn: str, srcs: np.ndarray, axons: np.ndarray, what: str) -> None:
            if not 0 <= core < self.n_cores:
                raise CompileError(f"{what}: target core {core} does not exist "
                                   f"(0..{self.n_cores - 1})")
            key = self.ax_key[core]
            bad = np.flatnonzero((axons < 0) | (axons >= key.size))
            if bad.size:
                raise CompileError(f"{what}: axon {int(axons[bad[0]])} of core {core} does not "
                                   f"exist (the core has {key.size} axons)")
            want = self.conn_ids[conn] * (1 << 32) + srcs
            bad = np.flatnonzero(key[axons] != want)
            if bad.size:
                k = int(bad[0])
                got = int(key[axons[k]])
                raise CompileError(
                    f"{what}: source {int(srcs[k])} of {conn} is sent to axon {int(axons[k])} of "
                    f"core {core}, which carries {conn_names[got >> 32]} source {got & 0xFFFFFFFF}; "
                    "the route does not match the core's axon groups")
            np.add.at(feeds[core], axons, 1)

        for ri, r in enumerate(self.m["routes"]):
            try:
                src, s, e, targets = r["source"], int(r["start"]), int(r["stop"]), r["targets"]
            except (KeyError, TypeError, ValueError):
                raise CompileError(f"routes[{ri}] = {r!r} is not {{source, start, stop, "
                                   "targets}") from None
            if src not in self.pops or not 0 <= s < e <= self.pops[src].size:
                raise CompileError(f"routes[{ri}]: {src}[{s}:{e}] is not a population slice")
            for t in targets:
                try:
                    core, conn, base = int(t[0]), t[1], int(t[2])
                except (TypeError, ValueError, IndexError):
                    raise CompileError(f"routes[{ri}]: target {t!r} is not [core, connection, "
                                       "axon_base]") from None
                if conn not in self.conns or self.conns[conn]["source"] != src:
                    raise CompileError(f"routes[{ri}]: connection {conn!r} is not fed by {src}")
                ks = np.arange(s, e, dtype=np.int64)
                feed(core, conn, ks, base + ks - s, f"routes[{ri}] ({src}[{s}:{e}] -> core {core})")
        for x in self.inputs:
            for ei, ent in enumerate(self.m["inputs"].get(x, [])):
                try:
                    core, conn, base, s, e = (int(ent[0]), ent[1], int(ent[2]), int(ent[3]),
                                              int(ent[4]))
                except (TypeError, ValueError, IndexError):
                    raise CompileError(f"inputs[{x}][{ei}] = {ent!r} is not [core, connection, "
                                       "axon_base, start, stop]") from None
                if conn not in self.conns or self.conns[conn]["source"] != x:
                    raise CompileError(f"inputs[{x}][{ei}]: connection {conn!r} is not fed by {x}")
                if not 0 <= s < e <= self.inputs[x].size:
                    raise CompileError(f"inputs[{x}][{ei}]: elements {s}..{e} outside "
                                       f"0..{self.inputs[x].size}")
                ks = np.arange(s, e, dtype=np.int64)
                feed(core, conn, ks, base + ks - s, f"inputs[{x}][{ei}]")
        for cid, f in enumerate(feeds):
            if np.any(f != 1):
                k = int(np.flatnonzero(f != 1)[0])
                key = int(self.ax_key[cid][k])
                raise CompileError(
                    f"core {cid}: axon {k} ({conn_names[key >> 32]} source {key & 0xFFFFFFFF}) is "
                    f"fed {int(f[k])} times; every axon needs exactly one route or input entry")

    # ---- one core ----------------------------------------------------------------------------
    def _core(self, cid: int) -> bytes:
        c = self.m["cores"][cid]
        slices = self.core_slices[cid]
        where = f"core {cid} (chip {c['chip']}, x {c['x']}, y {c['y']})"
        A = self.A
        n = sum(e - s for _, s, e in slices)
        # -- neurons
        cols: dict[str, list[np.ndarray]] = {f.name: [] for f in F2.BSS2_NEURON.fields}
        for p, s, e in slices:
            node, prm = self.pops[p], self.np_params[p]
            for f in ("v_leak", "v_threshold", "v_reset", "c_mem", "c_syn_exc", "c_syn_inh",
                      "gain_exc", "gain_inh", "bias", "refractory", "refractory_clock"):
                cols[f].append(prm[f][s:e])
            cols["readout"].append(np.full(e - s, int(bool(node.readout)), np.int64))
            cols["circuits_minus_1"].append(np.full(e - s, self.circuits[p] - 1, np.int64))
            ks = np.arange(s, e, dtype=np.int64)
            cols["label"].append(np.zeros(e - s, np.int64) if node.readout
                                 else self.group0[p] * A + ks)
            cols["fpn_id"].append(int(node.id_base) + ks)
        nr = {k: np.concatenate(v) for k, v in cols.items()}
        self._check_neurons(nr, slices, where)
        k_loc = nr["circuits_minus_1"] + 1
        col0 = np.concatenate([[0], np.cumsum(k_loc)[:-1]]).astype(np.int64)
        n_circ = int(k_loc.sum())
        # -- synapses: (row set, neuron, source) per connection, sign and parallel index
        sets = []  # (conn, sign, p) -> arrays (local neuron, source, weight)
        for conn, cc in self.conns.items():
            li_parts, gi_parts = [], []
            for tp in cc["targets"]:
                on = np.flatnonzero(self.core_of[tp] == cid)
                li_parts.append(self.local_of[tp][on])
                gi_parts.append(on)
            if not li_parts:
                continue
            li, gi = np.concatenate(li_parts), np.concatenate(gi_parts)
            if li.size == 0:
                continue
            for sign, p, w in cc["layers"]:
                r, i = np.nonzero(w[gi])
                if r.size:
                    sets.append((conn, sign, p, li[r], i.astype(np.int64), w[gi[r], i]))
        rows_sign, rows_group, rows_delay = [], [], []
        syn_row, syn_col, syn_addr, syn_w = [], [], [], []
        syn_key = []  # for the axon check: conn_id * 2**32 + source
        n_rows = 0
        for conn, sign, _p, li, src, w in sets:
            cc = self.conns[conn]
            q = src // A
            # rank of each synapse among its neuron's sources of the same group (source order)
            order = np.lexsort((src, li, q))
            li, src, w, q = li[order], src[order], w[order], q[order]
            grp_key = q * (n + 1) + li
            first = np.r_[True, grp_key[1:] != grp_key[:-1]]
            start = np.flatnonzero(first)
            rank = np.arange(li.size) - np.repeat(start, np.diff(np.r_[start, li.size]))
            k = k_loc[li]
            row_in = rank // k
            uq, q_idx = np.unique(q, return_inverse=True)
            per_q = np.zeros(uq.size, np.int64)
            np.maximum.at(per_q, q_idx, row_in + 1)
            q_base = n_rows + np.concatenate([[0], np.cumsum(per_q)[:-1]]).astype(np.int64)
            syn_row.append(q_base[q_idx] + row_in)
            syn_col.append(col0[li] + rank % k)
            syn_addr.append(src % A)
            syn_w.append(w)
            syn_key.append(self.conn_ids[conn] * (1 << 32) + src)
            rows_sign.append(np.full(int(per_q.sum()), sign, np.int64))
            rows_group.append(np.repeat(self.group0[cc["source"]] + uq, per_q))
            rows_delay.append(np.full(int(per_q.sum()), cc["delay"] - 1, np.int64))
            n_rows += int(per_q.sum())
        cat = lambda xs: np.concatenate(xs) if xs else np.zeros(0, np.int64)  # noqa: E731
        syn_row, syn_col, syn_addr, syn_w = cat(syn_row), cat(syn_col), cat(syn_addr), cat(syn_w)
        rows_sign, rows_group, rows_delay = cat(rows_sign), cat(rows_group), cat(rows_delay)
        if n_rows > int(self.P("core.rows")):
            raise CompileError(
                f"{where}: needs {n_rows} synapse rows > {self.P('core.rows')} (core.rows, target "
                f"{self.prof.name}); give fewer neurons per core or merge neuron circuits")
        # every synapse's source must have an axon on this core (the mapping's promise)
        sk = cat(syn_key)
        if sk.size:
            missing = np.flatnonzero(~np.isin(sk, self.ax_key[cid]))
            if missing.size:
                key = int(sk[missing[0]])
                raise CompileError(
                    f"{where}: connection {list(self.conns)[key >> 32]} has a synapse from source "
                    f"{key & 0xFFFFFFFF} on this core but no axon for it here; the route pass must "
                    "give every source with a synapse on the core an axon")
        addr = np.zeros((n_rows, n_circ), np.int64)
        wgt = np.zeros((n_rows, n_circ), np.int64)
        addr[syn_row, syn_col] = syn_addr
        wgt[syn_row, syn_col] = syn_w
        # -- crossbar: the source groups the rows listen to
        groups = np.unique(rows_group)
        L, Aw = int(self.P("widths.label")), int(self.P("widths.address"))
        mask = ((1 << L) - 1) & ~(A - 1)
        self.core_groups = getattr(self, "core_groups", {})
        self.core_groups[cid] = groups
        env = self._env()
        try:
            parts = [
                F2.BSS2_CORE_HEADER.pack(dict(
                    chip=int(c["chip"]), x=int(c["x"]), y=int(c["y"]), n_neurons=n,
                    n_circuits=n_circ, n_rows=n_rows, n_filters=groups.size,
                    n_slices=len(slices))),
                F.SLICE.pack([dict(population=self.pop_index[p], start=s, stop=e)
                              for p, s, e in slices]),
                F2.BSS2_FILTER.pack(groups.size, dict(mask=mask, target=groups << Aw), env),
                F2.BSS2_NEURON.pack(n, nr, env),
                F2.BSS2_ROW.pack(n_rows, dict(sign=rows_sign, group=rows_group,
                                              delay_minus_1=rows_delay), env),
                F2.BSS2_SYNAPSE.pack(n_rows * n_circ, dict(address=addr.ravel(),
                                                           weight=wgt.ravel()), env),
            ]
        except ValueError as e:
            raise CompileError(f"{where}: {e}; the value does not fit the hardware width of target "
                               f"{self.prof.name}") from None
        return b"".join(parts)

    def _check_neurons(self, nr: dict[str, np.ndarray], slices: list, where: str) -> None:
        cmax = int(self.P("neuron.code_max"))
        for f in ("v_leak", "v_threshold", "v_reset", "c_mem", "c_syn_exc", "c_syn_inh",
                  "gain_exc", "gain_inh"):
            bad = np.flatnonzero((nr[f] < 0) | (nr[f] > cmax))
            if bad.size:
                raise CompileError(f"{where}: neuron {int(bad[0])} has {f} = {int(nr[f][bad[0]])}, "
                                   f"outside 0..{cmax} (neuron.code_max, target {self.prof.name})")
        checks = (("bias", -int(self.P("neuron.bias_max")), int(self.P("neuron.bias_max")),
                   "neuron.bias_max"),
                  ("refractory", 0, (1 << int(self.P("widths.refractory"))) - 1,
                   "widths.refractory"),
                  ("refractory_clock", 0, int(self.P("neuron.refractory_clock_max")),
                   "neuron.refractory_clock_max"),
                  ("fpn_id", 0, (1 << F2.FPN_ID_BITS) - 1, "the 32-bit fixed-pattern-noise id"))
        for f, lo, hi, key in checks:
            bad = np.flatnonzero((nr[f] < lo) | (nr[f] > hi))
            if bad.size:
                raise CompileError(f"{where}: neuron {int(bad[0])} has {f} = {int(nr[f][bad[0]])}, "
                                   f"outside {lo}..{hi} ({key}, target {self.prof.name})")

    def _env(self) -> dict[str, int]:
        env = {k: int(v[0]) for k, v in self.params.items() if isinstance(v[0], int)}
        env["w_group"] = F2.group_bits(env)
        return env

    # ---- shared sections ---------------------------------------------------------------------
    def _iomap(self) -> bytes:
        ports, in_entries, out_entries = [], [], []
        A = self.A
        for x, node in self.inputs.items():
            first = len(in_entries)
            n_q = -(-int(node.size) // A)
            g0 = self.group0[x]
            for cid in range(self.n_cores):
                acc = np.isin(g0 + np.arange(n_q), self.core_groups[cid])
                q = np.flatnonzero(acc)
                if not q.size:
                    continue
                brk = np.flatnonzero(np.diff(q) != 1)
                for a, b in zip(np.r_[0, brk + 1], np.r_[brk + 1, q.size], strict=True):
                    s, e = int(q[a]) * A, min(int(q[b - 1] + 1) * A, int(node.size))
                    in_entries.append(dict(core=cid, axon=g0 * A + s, start=s, stop=e))
            nd, dims = _dims(node.out_shape)
            ports.append(dict(name=self.strings(x), width=int(node.size), kind=0, ndim=nd,
                              dims=dims, first=first, count=len(in_entries) - first, latency=-1,
                              extra_latency=0))
        output_ports(self.g, self.outputs, self.pops, self.m, self.core_of, self.local_of,
                     self.strings, ports, out_entries)
        head = F.IOMAP_HEADER.pack(dict(n_inputs=len(self.inputs), n_outputs=len(self.outputs),
                                        n_in_entries=len(in_entries),
                                        n_out_entries=len(out_entries)))
        return (head + F.PORT.pack(ports) + F.IN_ENTRY.pack(in_entries)
                + F.OUT_ENTRY.pack(out_entries))

    def _symbols(self) -> bytes:
        recs = []
        for p, node in self.pops.items():
            nd, dims = _dims(node.out_shape)
            recs.append(dict(name=self.strings(p), size=int(node.size),
                             readout=int(bool(node.readout)), ndim=nd, dims=dims))
        return F.COUNT_HEADER.pack(dict(count=len(recs))) + F.POPULATION.pack(recs)

    def _params_payload(self) -> bytes:
        return params_payload(self.strings, self.params, F2.PARAMS)

    def _provenance(self) -> bytes:
        return provenance_bytes(self.g, self.prof, self.m)


def params_problem(P: dict[str, Any]) -> str | None:
    """The first inconsistency between brainscales2 PARAMS values (None when they agree). The
    loader applies the same rules (``emulator.brainscales2.check_params``)."""
    from emulator.brainscales2 import params_problem as rule

    return rule(P)


def write_brainscales2(graph: Graph, prof: Any) -> bytes:
    """The image of a routed brainscales2 graph (the caller has checked that it is routed)."""
    return BSS2Writer(graph, prof).image()


__all__ = ["BSS2Writer", "params_problem", "write_brainscales2"]
