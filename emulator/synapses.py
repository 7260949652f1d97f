"""Synaptic delivery shared by every core family: sources -> axons -> accumulator lanes.

Every family stores, per core, synapse lists by input axon: ``syn_ptr`` (CSR by axon),
``syn_comp`` (compartment), ``syn_group`` (a small per-core group id: the Loihi accumulator group,
the TrueNorth axon type, the BrainScaleS-2 row sign), ``syn_w`` (integer weight) and
``syn_delay`` (ticks from the source's spike to the synapse's effect, >= 1). An *accumulator
lane* is one (core, group, compartment) with synapses; at every tick a lane holds the integer sum
of the weights of its synapses whose spike arrives then. The family's neuron update reads the
lanes (the family says what a group means: a weight exponent, an axon type, a sign).

Sources are host input channels (``0 .. n_in-1``, input ports in order) and compartments
(``n_in + global compartment``); each axon is fed by at most one source (the loader checks it).

* :class:`SynapseProgram`: the static tables over all cores (struct of arrays), the route table,
  per-source counters (synaptic ops, packets, hops), and the per-delay *blocks* of the fast mode:
  a block maps a set of source rows to a set of lanes, kept as a dense integer matrix when it is
  small enough (else CSR); cores with identical source sets share one block.
* :class:`Gatherer`: the fast mode's event-driven gathers (rows of the active sources summed in a
  narrow integer type), dense float BLAS products when activity is dense (exact while every
  partial sum stays below the mantissa range) and CSR scatters, vectorised over a batch.
* :func:`deliver`: the cycle mode's per-core delivery of axon events into the dendritic ring.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DENSE_LIMIT = 1 << 25
"""Largest source x lane block kept as a dense matrix (entries); larger blocks use CSR."""

BLAS_DENSITY = 0.15
BLAS_BATCH = 1.5
"""A block's tick uses one float BLAS product instead of row gathers when the fraction of its
rows active (over the batch of ``B`` samples) exceeds ``BLAS_DENSITY + BLAS_BATCH / B``. The
product costs the same at any activity, the gathers cost in proportion to it; a small batch makes
the product a matrix-vector one, bound by reading the whole float matrix (hence the 1 / B term).
Measured on a 2-core x86 machine (OpenBLAS): a gather-sum runs at ~6e9 synaptic events/s per
core, a one-thread float32 product crosses it at ~17% activity for B = 64 and ~35% for B = 8,
never below ~50% for B = 1 (OpenBLAS's own threads were erratic on the loaded machine, up to 10x
slower). Products of engines in several threads take turns (``_BLAS_LOCK``). Only speed depends
on these numbers."""

_CACHE_LOCK = threading.Lock()
"""Guards the lazily built per-block caches (engines of several threads share the blocks)."""
_BLAS_LOCK = threading.Lock()


def cat(xs: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(xs) if xs else np.zeros(0, np.int64)


def expand_ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(lo[i], hi[i])`` over i (vectorised)."""
    cnt = hi - lo
    return np.repeat(lo - np.cumsum(np.r_[0, cnt[:-1]]), cnt) + np.arange(int(cnt.sum()))


def flatten(act: Any, B: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Active ids of a tick as a flat pair ``(ids, off)`` (sample s: ``ids[off[s]:off[s+1]]``)
    from a list of B per-sample arrays (or a flat pair already); None when nothing is active."""
    if act is None:
        return None
    if isinstance(act, tuple):
        return act if act[0].size else None
    n = np.fromiter((a.size for a in act), np.int64, len(act))
    if not n.any():
        return None
    off = np.zeros(B + 1, np.int64)
    np.cumsum(n, out=off[1:])
    return np.concatenate(act).astype(np.int64, copy=False), off


def _select(table: np.ndarray, ids: np.ndarray, off: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """The block rows of active sources (``table``: source -> row or -1), flat per sample."""
    r = table[ids]
    keep = r >= 0
    if keep.all():
        return r, off
    ck = np.zeros(keep.size + 1, np.int64)
    np.cumsum(keep, out=ck[1:])
    return r[keep], ck[off]


@dataclass
class Block:
    """Synapses of one delay from a set of source rows to a set of lanes (see module doc)."""

    delay: int
    n_rows: int
    rows_in: np.ndarray
    rows_n: np.ndarray
    lanes: np.ndarray
    inputs_identity: bool
    dense: np.ndarray | None = None
    csr_ptr: np.ndarray | None = None
    csr_lane: np.ndarray | None = None
    csr_w: np.ndarray | None = None
    cache: dict = field(default_factory=dict)


class SynapseProgram:
    """Static tables of every core of a chip (built once per chip; see the module doc).

    Compartments are numbered globally: core ``c`` holds ``off[c] .. off[c+1]-1``. Lanes are
    numbered globally too (core by core, then by group and compartment): ``lane_neuron``,
    ``lane_core``, ``lane_group`` (the core-local group id)."""

    def __init__(self, chip: Any):
        self.chip = chip
        cores = chip.cores
        self.n_cores = len(cores)
        self.off = np.zeros(self.n_cores + 1, np.int64)
        np.cumsum([c.n_neurons for c in cores], out=self.off[1:])
        N = self.N = int(self.off[-1])
        self.core_of = np.repeat(np.arange(self.n_cores), [c.n_neurons for c in cores])
        syn_lane = []
        self.lane_off = np.zeros(self.n_cores + 1, np.int64)
        lane_n, lane_g, lane_c = [], [], []
        for ci, c in enumerate(cores):
            key = c.syn_group * (c.n_neurons + 1) + c.syn_comp
            uk, inv = np.unique(key, return_inverse=True)
            syn_lane.append(inv.reshape(-1) + self.lane_off[ci])
            self.lane_off[ci + 1] = self.lane_off[ci] + uk.size
            lane_n.append(self.off[ci] + uk % (c.n_neurons + 1))
            lane_g.append(uk // (c.n_neurons + 1))
            lane_c.append(np.full(uk.size, ci, np.int64))
        self.syn_lane = syn_lane
        self.L = int(self.lane_off[-1])
        self.lane_neuron = cat(lane_n)
        self.lane_group = cat(lane_g)
        self.lane_core = cat(lane_c)
        self.max_delay = max([int(c.syn_delay.max()) for c in cores if c.syn_delay.size] + [1])
        # sources: input channels (ports in order, flat) then compartments
        self.in_off = np.zeros(len(chip.inputs) + 1, np.int64)
        np.cumsum([p.width for p in chip.inputs], out=self.in_off[1:])
        self.n_in = int(self.in_off[-1])
        self.axon_src = [np.full(c.n_axons, -1, np.int64) for c in cores]
        for pi, p in enumerate(chip.inputs):
            for core, a, s, e in p.entries.tolist():
                self.axon_src[core][a:a + e - s] = self.in_off[pi] + np.arange(s, e)
        src_of_route, dst_core, dst_axon = [], [], []
        for ci, c in enumerate(cores):
            if c.n_routes:
                src = self.n_in + self.off[ci] + np.repeat(np.arange(c.n_neurons), np.diff(c.route_ptr))
                for d in np.unique(c.route_core):
                    sel = c.route_core == d
                    self.axon_src[d][c.route_axon[sel]] = src[sel]
                src_of_route.append(src)
                dst_core.append(c.route_core)
                dst_axon.append(c.route_axon)
        # route table over global compartments (CSR), for the cycle engines and the counters
        self.route_ptr = np.zeros(N + 1, np.int64)
        if src_of_route:
            rs = cat(src_of_route) - self.n_in
            np.cumsum(np.bincount(rs, minlength=N), out=self.route_ptr[1:])
            self.route_core = cat(dst_core)
            self.route_axon = cat(dst_axon)
        else:
            self.route_core = self.route_axon = np.zeros(0, np.int64)
        self.routed = np.flatnonzero(np.diff(self.route_ptr) > 0)
        # per-source counters: synaptic ops, packets and hops per spike (fast mode)
        xy = np.array([chip.core_xy(i) for i in range(self.n_cores)], np.int64).reshape(-1, 2)
        self.xy = xy
        n_src = self.n_in + N
        self.src_sops = np.zeros(n_src, np.int64)
        for ci, c in enumerate(cores):
            fed = self.axon_src[ci] >= 0
            np.add.at(self.src_sops, self.axon_src[ci][fed], np.diff(c.syn_ptr)[fed])
        self.src_packets = np.zeros(n_src, np.int64)
        self.src_hops_ew = np.zeros(n_src, np.int64)
        self.src_hops_ns = np.zeros(n_src, np.int64)
        if self.route_core.size:
            src_n = np.repeat(np.arange(N), np.diff(self.route_ptr))
            sxy = xy[self.core_of[src_n]]
            dxy = xy[self.route_core]
            np.add.at(self.src_packets, self.n_in + src_n, 1)
            np.add.at(self.src_hops_ew, self.n_in + src_n, np.abs(dxy[:, 0] - sxy[:, 0]))
            np.add.at(self.src_hops_ns, self.n_in + src_n, np.abs(dxy[:, 1] - sxy[:, 1]))
        self.syn_axon = [np.repeat(np.arange(c.n_axons), np.diff(c.syn_ptr)) for c in cores]
        self._blocks: list[Block] | None = None

    # ---- blocks for the fast mode ------------------------------------------------------------
    def blocks(self) -> list[Block]:
        """The per-delay source -> lane blocks (built on first use)."""
        if self._blocks is not None:
            return self._blocks
        units: dict[tuple, list] = {}
        order: list[tuple] = []
        for ci, c in enumerate(self.chip.cores):
            if not c.n_synapses:
                continue
            src = self.axon_src[ci][self.syn_axon[ci]]
            fed = src >= 0
            for d in np.unique(c.syn_delay[fed]):
                sel = fed & (c.syn_delay == d)
                s, ln, w = src[sel], self.syn_lane[ci][sel], c.syn_w[sel]
                rows = np.unique(s)
                key = (int(d), rows.size, hash(rows.tobytes()))
                if key not in units:
                    units[key] = []
                    order.append(key)
                units[key].append((rows, s, ln, w))
        out = []
        for key in order:
            groups: list[list] = []
            for p in units[key]:  # cores with identical source rows share a block
                for g in groups:
                    if np.array_equal(g[0][0], p[0]):
                        g.append(p)
                        break
                else:
                    groups.append([p])
            for g in groups:
                out.append(self._make_block(key[0], g))
        self._blocks = out
        return out

    def _make_block(self, delay: int, parts: list) -> Block:
        rows = parts[0][0]
        s = np.concatenate([p[1] for p in parts])
        ln = np.concatenate([p[2] for p in parts])
        w = np.concatenate([p[3] for p in parts])
        lanes = np.unique(ln)
        # columns group by group (a group is one lane class of every family), so the sums of a
        # class are a slice of the block's output, not a fancy-indexed copy
        by_group = np.argsort(self.lane_group[lanes], kind="stable")
        col = np.argsort(by_group)[np.searchsorted(lanes, ln)]
        lanes = lanes[by_group]
        row = np.searchsorted(rows, s)
        rows_in = np.full(self.n_in, -1, np.int64)
        rows_n = np.full(self.N, -1, np.int64)
        is_in = rows < self.n_in
        rows_in[rows[is_in]] = np.flatnonzero(is_in)
        rows_n[rows[~is_in] - self.n_in] = np.flatnonzero(~is_in)
        ident = bool(rows.size == self.n_in and np.all(is_in))
        b = Block(delay=delay, n_rows=rows.size, rows_in=rows_in, rows_n=rows_n, lanes=lanes,
                  inputs_identity=ident)
        if rows.size * lanes.size <= DENSE_LIMIT:
            # duplicates add; bincount sums in float64, exact for these small integers
            m = np.bincount(row * lanes.size + col, weights=w.astype(np.float64),
                            minlength=rows.size * lanes.size)
            b.dense = m.astype(np.int64).reshape(rows.size, lanes.size)
        else:
            order = np.lexsort((col, row))
            b.csr_ptr = np.zeros(rows.size + 1, np.int64)
            np.cumsum(np.bincount(row, minlength=rows.size), out=b.csr_ptr[1:])
            b.csr_lane = col[order]
            b.csr_w = w[order].astype(np.float64)
        return b


# ------------------------------------------------------------------------------------------
# Fast mode: lane sums of a tick
# ------------------------------------------------------------------------------------------
class Gatherer:
    """Lane sums per tick for a batch (see the module doc).

    ``classes`` (per global lane, 0..n_classes-1) says into which of the family's per-neuron
    input arrays a lane goes (TrueNorth: the axon type; BrainScaleS-2: the sign; Loihi: one
    class). ``transform(block_index, x)`` lets the family rescale a block's integer lane sums
    before they are added (Loihi: the weight exponent)."""

    def __init__(self, prog: SynapseProgram, batch: int, classes: np.ndarray | None = None,
                 n_classes: int = 1, threads: int = 1):
        self.p = prog
        self.B = batch
        self.n_classes = n_classes
        self.classes = np.zeros(prog.L, np.int64) if classes is None else classes
        self.blocks = prog.blocks()
        self.maps = [self._lane_map(b) for b in self.blocks]
        self.threads = max(1, int(threads))
        self._pool = None
        R = prog.max_delay + 1
        self.hist_n: list[Any] = [None] * R  # per tick: (sample ids, compartment ids) of spikes
        self.spike_count_routed = np.zeros(prog.routed.size, np.int64)

    def _lane_map(self, b: Block) -> list[dict]:
        """Per class: how the block's lanes land on compartments (identity, a contiguous range,
        or layers of distinct compartments for fancy-index adds)."""
        out = []
        N = self.p.N
        for c in range(self.n_classes):
            sel = np.flatnonzero(self.classes[b.lanes] == c)
            ln = self.p.lane_neuron[b.lanes[sel]]
            m: dict[str, Any] = {"sel": sel, "all": sel.size == b.lanes.size}
            m["cols"] = (slice(int(sel[0]), int(sel[-1]) + 1)
                         if sel.size and sel[-1] - sel[0] + 1 == sel.size else sel)
            m["identity"] = bool(m["all"] and ln.size == N and np.array_equal(ln, np.arange(N)))
            m["contig"] = None
            if not m["identity"] and ln.size and np.array_equal(ln, np.arange(ln[0], ln[0] + ln.size)):
                m["contig"] = (int(ln[0]), int(ln[0] + ln.size))
            layers = []
            if not m["identity"] and m["contig"] is None and ln.size:
                order = np.argsort(ln, kind="stable")
                first = np.r_[True, ln[order][1:] != ln[order][:-1]]
                grp = np.cumsum(first) - 1
                starts = np.flatnonzero(first)
                rank = np.empty(ln.size, np.int64)
                rank[order] = np.arange(ln.size) - starts[grp]
                for r in range(int(rank.max()) + 1):
                    k = np.flatnonzero(rank == r)
                    layers.append((sel[k], ln[k]))
            m["layers"] = layers
            out.append(m)
        return out

    def tick_inputs(self, t: int, act_in_hist: Any, transform: Any = None) -> list[Any]:
        """Per class, the (B, N) lane sums of tick ``t`` (None for a class with no input).

        ``act_in_hist(tau)``: active input channels of tick tau per sample (a list of B sorted
        index arrays, or a flat pair ``(ids, off)`` with sample s's ids in
        ``ids[off[s]:off[s+1]]``), or None."""
        p = self.p
        R = len(self.hist_n)
        acc: list[Any] = [None] * self.n_classes
        flat_in: dict[int, Any] = {}  # tau -> this tick's active inputs, flat (asked once)
        for bi, (b, maps) in enumerate(zip(self.blocks, self.maps, strict=True)):
            tau = t - b.delay
            if tau < 0:
                continue
            if tau not in flat_in:
                flat_in[tau] = flatten(act_in_hist(tau), self.B) if p.n_in else None
            x = self.block_input(b, flat_in[tau], self.hist_n[tau % R])
            if x is None:
                continue
            if transform is not None:
                x = transform(bi, x)
            for c, m in enumerate(maps):
                if not m["sel"].size:
                    continue
                xc = x if m["all"] else x[:, m["cols"]]
                a = acc[c]
                if a is None:
                    if m["identity"]:
                        acc[c] = xc
                        continue
                    a = acc[c] = np.zeros((self.B, p.N), np.float64 if xc.dtype.kind == "f"
                                          else np.int64)
                elif a.dtype.kind != "f" and xc.dtype.kind == "f":
                    a = acc[c] = a.astype(np.float64)
                elif a.dtype != np.int64 and a.dtype.kind == "i":
                    a = acc[c] = a.astype(np.int64)
                if m["identity"]:
                    a += xc
                elif m["contig"] is not None:
                    a[:, m["contig"][0]:m["contig"][1]] += xc
                else:
                    for sel, ln in m["layers"]:
                        a[:, ln] += x[:, sel]
        return acc

    def record_spikes(self, t: int, s: np.ndarray) -> None:
        """Remember this tick's spikes of routed compartments for later ticks' deliveries (flat:
        compartment ids sorted by sample, and each sample's offset)."""
        p = self.p
        R = len(self.hist_n)
        if p.routed.size:
            sr = s[:, p.routed]
            sb, k = np.nonzero(sr)
            if sb.size:
                off = np.searchsorted(sb, np.arange(self.B + 1))
                self.hist_n[t % R] = (p.routed[k], off)
                self.spike_count_routed += sr.sum(axis=0)
            else:
                self.hist_n[t % R] = None
        else:
            self.hist_n[t % R] = None

    def block_input(self, b: Block, act_in: tuple[np.ndarray, np.ndarray] | None,
                    act_n: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray | None:
        """Integer lane sums (B, lanes) for the sources active ``delay`` ticks ago, or None.

        ``act_in`` / ``act_n``: active input channels / routed compartments, flat ``(ids, off)``
        (sample s: ``ids[off[s]:off[s+1]]``, sorted)."""
        parts = []
        if act_in is not None:
            parts.append(act_in if b.inputs_identity else _select(b.rows_in, *act_in))
        if act_n is not None:
            parts.append(_select(b.rows_n, *act_n))
        if not parts:
            return None
        if len(parts) == 1:
            rows, off = parts[0]
        else:  # per sample: its input rows, then its compartment rows (all rows stay sorted)
            (r1, o1), (r2, o2) = parts
            B = self.B
            sid = np.concatenate([np.repeat(np.arange(B), np.diff(o1)),
                                  np.repeat(np.arange(B), np.diff(o2))])
            rows = np.concatenate([r1, r2])[np.argsort(sid, kind="stable")]
            off = o1 + o2
        total = rows.size
        if total == 0:
            return None
        if b.dense is not None:
            if total > (BLAS_DENSITY + BLAS_BATCH / self.B) * self.B * b.n_rows:
                return self._blas(b, rows, off)
            return self._gather(b, rows, off)
        return self._csr(b, rows, off)

    def _blas(self, b: Block, rows: np.ndarray, off: np.ndarray) -> np.ndarray:
        c = b.cache
        if "blas" not in c:
            with _CACHE_LOCK:
                if "blas" not in c:
                    bound = np.abs(b.dense).sum(axis=0).max() if b.dense.size else 0
                    # float products are exact while every partial sum stays below the mantissa
                    # range
                    if bound >= (1 << 53):
                        c["blas"] = ("int", b.dense)
                    else:
                        c["blas"] = ("float", b.dense.astype(np.float32 if bound < (1 << 24)
                                                             else np.float64))
        kind, m = c["blas"]
        S = np.zeros((self.B, b.n_rows), m.dtype if kind == "float" else np.int64)
        S[np.repeat(np.arange(self.B), np.diff(off)), rows] = 1  # a source fires once a tick
        with _BLAS_LOCK:  # one product at a time: BLAS runs its own threads on every core
            out = S @ m
        return np.rint(out).astype(np.int64) if kind == "float" else out

    def _narrow(self, b: Block) -> tuple[np.ndarray, int, int]:
        """The block's dense matrix in the narrowest integer type that holds it, and how many
        rows sum exactly in int16 (``cap16``) and in int32 (``cap32``)."""
        c = b.cache
        if "narrow" not in c:
            with _CACHE_LOCK:
                if "narrow" not in c:
                    m = b.dense
                    mx = int(np.abs(m).max()) if m.size else 0
                    dt = np.int8 if mx <= 127 else np.int16 if mx <= 32767 else np.int32
                    c["narrow"] = (np.ascontiguousarray(m.astype(dt)), 32767 // max(mx, 1),
                                   (2**31 - 1) // max(mx, 1))
        return c["narrow"]

    def _gather(self, b: Block, rows: np.ndarray, off: np.ndarray) -> np.ndarray:
        """Event-driven: per sample, the rows of its active sources gathered (``np.take``) and
        summed down the rows in a narrow integer type. A row holds at most ``max|w|`` per lane,
        so ``cap16 = 32767 // max|w|`` rows sum exactly in int16 (numpy's fastest reduction
        here: ~2x int32's), ``cap32`` rows in int32; longer row lists are summed in chunks of
        ``cap32`` into int64. Returns (B, lanes) int32 (int64 when a sample has more than
        ``cap32`` rows)."""
        mat, cap16, cap32 = self._narrow(b)
        B, L = self.B, mat.shape[1]
        if B == 1 and rows.size <= cap32:  # one sample: no per-sample bookkeeping
            dt = np.int16 if rows.size <= cap16 else np.int32
            out = np.add.reduce(np.take(mat, rows, axis=0), axis=0, dtype=dt)
            return out.astype(np.int32, copy=False).reshape(1, L)
        n = np.diff(off)
        n_max = int(n.max())
        if n_max > cap32:
            out = np.zeros((B, L), np.int64)
            for s in np.flatnonzero(n).tolist():
                r = rows[off[s]:off[s + 1]]
                for k in range(0, r.size, cap32):
                    out[s] += np.take(mat, r[k:k + cap32], axis=0).sum(axis=0, dtype=np.int64)
            return out
        narrow = n_max <= cap16
        out = np.zeros((B, L), np.int16 if narrow else np.int32)
        dt = out.dtype
        live = np.flatnonzero(n).tolist()
        lo = off.tolist()

        def work(i0: int, i1: int) -> None:
            for s in live[i0:i1]:
                np.add.reduce(np.take(mat, rows[lo[s]:lo[s + 1]], axis=0), axis=0, dtype=dt,
                              out=out[s])

        self._parallel(work, len(live))
        return out.astype(np.int32) if narrow else out

    def _csr(self, b: Block, rows: np.ndarray, off: np.ndarray) -> np.ndarray:
        L = b.lanes.size
        B = self.B
        if not rows.size:
            return np.zeros((B, L), np.int64)
        lo, hi = b.csr_ptr[rows], b.csr_ptr[rows + 1]
        ent = expand_ranges(lo, hi)
        sample = np.repeat(np.repeat(np.arange(B), np.diff(off)), hi - lo)
        # bincount sums in float64: exact for integer sums below 2**53
        tot = np.bincount(b.csr_lane[ent] + sample * L, weights=b.csr_w[ent], minlength=B * L)
        return np.rint(tot).astype(np.int64).reshape(B, L)

    def _parallel(self, work: Any, n: int) -> None:
        if self.threads <= 1 or n < 4:
            work(0, n)
            return
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(self.threads)
        k = -(-n // self.threads)
        futs = [self._pool.submit(work, i, min(n, i + k)) for i in range(0, n, k)]
        for f in futs:
            f.result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


# ------------------------------------------------------------------------------------------
# Cycle mode: per-core delivery
# ------------------------------------------------------------------------------------------
def deliver(prog: SynapseProgram, c: int, t: int, events: np.ndarray | None, ring: np.ndarray,
            per_core: dict) -> None:
    """Phase *deliver* of core ``c`` at tick ``t``: the axon events that reached the core during
    tick t-1 (``events`` (B, n_axons) bool) add their synapses' weights into the dendritic ring
    slot of their arrival tick, ``(t - 1 + delay) mod R`` (every delay >= 1, so the slot is this
    tick's or a later one). Counts synaptic ops and events per sample."""
    core = prog.chip.cores[c]
    if events is None or not core.n_synapses or not events.any():
        return
    R = ring.shape[0]
    sb, ax = np.nonzero(events)
    lo, hi = core.syn_ptr[ax], core.syn_ptr[ax + 1]
    ent = expand_ranges(lo, hi)
    bb = np.repeat(sb, hi - lo)
    slot = (t - 1 + core.syn_delay[ent]) % R
    np.add.at(ring, (slot, bb, prog.syn_lane[c][ent]), core.syn_w[ent])
    B = events.shape[0]
    per_core["sops"][:, c] = np.bincount(bb, minlength=B)
    per_core["events"][:, c] = np.bincount(sb, minlength=B)


def integrate(prog: SynapseProgram, c: int, t: int, ring: np.ndarray, n_classes: int,
              classes: np.ndarray, transform: Any = None) -> list[np.ndarray]:
    """Phase *integrate* of core ``c``: this tick's ring slot (then cleared), optionally
    transformed per lane, summed per class and compartment: a list of (B, n_c) int64 arrays."""
    l0, l1 = int(prog.lane_off[c]), int(prog.lane_off[c + 1])
    n0, n1 = int(prog.off[c]), int(prog.off[c + 1])
    B = ring.shape[1]
    R = ring.shape[0]
    out = [np.zeros((B, n1 - n0), np.int64) for _ in range(n_classes)]
    if l1 == l0:
        return out
    acc = ring[t % R, :, l0:l1].copy()
    ring[t % R, :, l0:l1] = 0
    if transform is not None:
        acc = transform(l0, l1, acc)
    comp = prog.lane_neuron[l0:l1] - n0
    cls = classes[l0:l1]
    for k in range(n_classes):
        sel = np.flatnonzero(cls == k)
        if sel.size:
            for s in range(B):
                np.add.at(out[k][s], comp[sel], acc[s, sel])
    return out


__all__ = ["BLAS_BATCH", "BLAS_DENSITY", "DENSE_LIMIT", "Block", "Gatherer", "SynapseProgram", "cat",
           "deliver", "expand_ranges", "flatten", "integrate"]
