"""The mesh network on chip, cycle by cycle (cycle mode).

Model (numbers from the image's PARAMS; choices marked *ours* where the hardware is not public):

* One router per mesh position on the global grid; chips are tiled along x (*ours*: chip c spans
  global x ``c*mesh_x .. c*mesh_x + mesh_x - 1``; chip-to-chip links behave like on-chip links).
* Packets follow dimension-ordered routes, X first then Y (RANC / TrueNorth, hardware.md 1.4).
  +x is east, +y is north; a hop east or west counts as an east-west hop.
* Every router input port (local, N, E, S, W) has a FIFO of ``noc.fifo_depth`` packets. An output
  port sends one packet every ``noc.port_cycles_per_packet`` cycles; a packet reaches the next
  router's input FIFO ``noc.hop_cycles`` cycles (at least 1) after it leaves. Credits: a packet
  leaves only when the downstream FIFO has a free slot counting packets still on the link, so a
  full FIFO stalls its senders (back-pressure) and nothing is ever lost inside the network.
* Arbitration per output port is fixed priority: through traffic (inputs N, E, S, W in that order)
  beats local injection (hardware.md 1.4). All decisions of a cycle are taken on the state at the
  start of the cycle, then applied, so no result depends on the order routers are visited.
* Cores: core c spends ``sops * noc.cycles_per_sop`` cycles on its synaptic events and
  ``noc.cycles_per_update`` cycles per compartment; compartment j's packets are ready for injection
  when its update ends (*ours*). A core injects at most one packet per cycle into its router's
  local FIFO, in route-table order; a full local FIFO stalls the core (injection stall cycles).
* A packet to its own core goes through the local router (0 hops); ejection into the destination
  core takes the eject port like any output port. Host input events are written into the cores'
  axon inputs directly (*ours*: the host link is not modelled).
* A tick's cycle count is the latest of every core's end and every packet's delivery. A tick that
  needs more cycles than ``chip.tick_seconds * noc.clock_hz`` is an **overrun**; it is reported
  with its most congested links. Policy ``noc.overrun``: ``stretch`` (the tick lasts longer;
  Loihi's barrier-synchronised tick) or ``drop`` (packets not delivered by the deadline are
  dropped and counted, never silently).

The simulator is vectorised: one call moves the packets of many independent *instances* (ticks x
samples) at once, one numpy step per clock cycle over every non-empty FIFO of every instance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

PORTS = ("N", "E", "S", "W", "L")
"""Port codes 0..4. Input port L is local injection; output port L ejects into the core."""
N_, E_, S_, W_, L_ = range(5)
_DX = np.array([0, 1, 0, -1, 0], np.int64)
_DY = np.array([1, 0, -1, 0, 0], np.int64)
_OPP = np.array([S_, W_, N_, E_, L_], np.int64)
# priority of an input port when several want one output: through traffic first, then local
_RANK = np.array([0, 1, 2, 3, 4], np.int64)
DIRECTION_NAMES = {N_: "N", E_: "E", S_: "S", W_: "W", L_: "eject"}


@dataclass(frozen=True)
class NocParams:
    """The NoC numbers of an image."""

    hop_cycles: int
    port_cycles: int
    fifo_depth: int
    clock_hz: float
    cycles_per_sop: int
    cycles_per_update: int
    tick_seconds: float
    overrun: str = "stretch"

    @property
    def budget(self) -> int:
        """Cycles available in one tick (the tick period in clock cycles)."""
        return int(round(self.tick_seconds * self.clock_hz))

    @classmethod
    def from_params(cls, P: dict, overrun: str | None = None) -> NocParams:
        return cls(hop_cycles=int(P["noc.hop_cycles"]),
                   port_cycles=int(P["noc.port_cycles_per_packet"]),
                   fifo_depth=int(P["noc.fifo_depth"]), clock_hz=float(P["noc.clock_hz"]),
                   cycles_per_sop=int(P["noc.cycles_per_sop"]),
                   cycles_per_update=int(P["noc.cycles_per_update"]),
                   tick_seconds=float(P["chip.tick_seconds"]),
                   overrun=overrun or str(P["noc.overrun"]))


@dataclass
class NocResult:
    """Per instance: ``cycles``, ``hops_ew``, ``hops_ns``, ``drops``, ``stalls`` (link
    back-pressure cycles), ``injection_stalls``; per packet ``delivered`` (in time) and
    ``delivered_at`` (cycle, -1 if never); ``link_packets``/``link_stalls`` per
    (instance, x, y, port) for the congestion report."""

    cycles: np.ndarray
    delivered: np.ndarray
    delivered_at: np.ndarray
    hops_ew: np.ndarray
    hops_ns: np.ndarray
    drops: np.ndarray
    stalls: np.ndarray
    injection_stalls: np.ndarray
    link_packets: np.ndarray = field(repr=False, default=None)
    link_stalls: np.ndarray = field(repr=False, default=None)
    origin: tuple[int, int] = (0, 0)
    ry: int = 1

    def congested(self, inst: int, top: int = 5) -> list[dict]:
        """The busiest links of one instance: most stall cycles, then most packets."""
        lp = self.link_packets[inst]
        ls = self.link_stalls[inst]
        used = np.flatnonzero((lp > 0) | (ls > 0))
        order = np.lexsort((used, -lp.reshape(-1)[used], -ls.reshape(-1)[used]))
        rows = []
        for k in used[order][:top].tolist():
            rid, port = divmod(k, 5)
            x, y = divmod(rid, self.ry)
            rows.append(dict(x=int(x + self.origin[0]), y=int(y + self.origin[1]),
                             direction=DIRECTION_NAMES[port], packets=int(lp.reshape(-1)[k]),
                             stalls=int(ls.reshape(-1)[k])))
        return rows


def simulate(params: NocParams, n_inst: int, inst: np.ndarray, src: np.ndarray, dst: np.ndarray,
             ready: np.ndarray, core_end: np.ndarray, core_xy: np.ndarray) -> NocResult:
    """Move packets through the mesh for ``n_inst`` independent instances.

    Packet i belongs to instance ``inst[i]``, leaves core ``src[i]`` for core ``dst[i]`` (core
    ids; ``core_xy`` gives their global grid positions) and may be injected from cycle
    ``ready[i]``; packets of one (instance, core) are injected in increasing ``ready``, ties in
    packet order. ``core_end[k, c]``: cycle core c of instance k finishes its updates."""
    p = params
    n = int(inst.size)
    depth = int(p.fifo_depth)
    hop = max(1, int(p.hop_cycles))
    pc = int(p.port_cycles)
    budget = p.budget
    drop = p.overrun == "drop"
    x0, y0 = (int(core_xy[:, 0].min()), int(core_xy[:, 1].min())) if core_xy.size else (0, 0)
    rx = int(core_xy[:, 0].max()) - x0 + 1 if core_xy.size else 1
    ry = int(core_xy[:, 1].max()) - y0 + 1 if core_xy.size else 1
    R = rx * ry
    core_rid = (core_xy[:, 0] - x0) * ry + (core_xy[:, 1] - y0)
    n_cores = core_xy.shape[0]
    cycles = core_end.max(axis=1).astype(np.int64) if core_end.size else np.zeros(n_inst, np.int64)
    res = NocResult(
        cycles=cycles, delivered=np.zeros(n, bool), delivered_at=np.full(n, -1, np.int64),
        hops_ew=np.zeros(n_inst, np.int64), hops_ns=np.zeros(n_inst, np.int64),
        drops=np.zeros(n_inst, np.int64), stalls=np.zeros(n_inst, np.int64),
        injection_stalls=np.zeros(n_inst, np.int64),
        link_packets=np.zeros((n_inst, R, 5), np.int64), link_stalls=np.zeros((n_inst, R, 5), np.int64),
        origin=(x0, y0), ry=ry)
    if n == 0:
        return res
    # per packet: destination position (router coordinates)
    dxp = core_xy[dst, 0] - x0
    dyp = core_xy[dst, 1] - y0
    F = n_inst * R * 5
    buf = np.zeros((F, depth), np.int64)
    head = np.zeros(F, np.int64)
    cnt = np.zeros(F, np.int64)
    reserved = np.zeros(F, np.int64)
    port_free = np.zeros(F, np.int64)  # indexed like FIFOs, by output port
    link_packets = res.link_packets.reshape(-1)
    link_stalls = res.link_stalls.reshape(-1)
    # injection queues: one per (instance, core), packets in (ready, index) order
    q_of = inst.astype(np.int64) * n_cores + src
    order = np.lexsort((np.arange(n), ready, q_of))
    q_sorted = q_of[order]
    n_q = n_inst * n_cores
    q_ptr = np.searchsorted(q_sorted, np.arange(n_q))
    q_end = np.searchsorted(q_sorted, np.arange(n_q), side="right")
    live_q = np.flatnonzero(q_ptr < q_end)
    q_inst = live_q // n_cores
    arrivals: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    remaining = n
    now = 0
    while remaining:
        if drop and now >= budget:
            break
        # 1. packets reaching a FIFO this cycle (at most one per FIFO: one link feeds it)
        arr = arrivals.pop(now, None)
        if arr is not None:
            pk, f = arr
            slot = (head[f] + cnt[f]) % depth
            buf[f, slot] = pk
            cnt[f] += 1
            reserved[f] -= 1
        # 2. switch allocation on the start-of-cycle state
        act = np.flatnonzero(cnt)
        if act.size:
            pk = buf[act, head[act]]
            fr = act // 5  # instance * R + router
            ip = act % 5
            rid = fr % R
            x, y = rid // ry, rid % ry
            out = np.where(dxp[pk] > x, E_, np.where(dxp[pk] < x, W_, np.where(
                dyp[pk] > y, N_, np.where(dyp[pk] < y, S_, L_))))
            key = fr * 5 + out
            o = np.lexsort((_RANK[ip], key))
            first = np.r_[True, key[o][1:] != key[o][:-1]]
            win = o[first]  # highest-priority requester of every wanted output port
            wkey = key[win]
            ok = port_free[wkey] <= now
            wout = out[win]
            fwd = wout != L_
            nfr = fr[win] + np.where(fwd, _DX[wout] * ry + _DY[wout], 0)
            dfi = nfr * 5 + _OPP[wout]
            full = fwd & (cnt[dfi] + reserved[dfi] >= depth)
            stalled = ok & full
            if stalled.any():
                np.add.at(link_stalls, wkey[stalled], 1)
                np.add.at(res.stalls, fr[win][stalled] // R, 1)
            go = ok & ~full
            if go.any():
                wf = act[win][go]
                wp = pk[win][go]
                head[wf] = (head[wf] + 1) % depth
                cnt[wf] -= 1
                gk = wkey[go]
                port_free[gk] = now + pc
                link_packets[gk] += 1
                gout = wout[go]
                ginst = fr[win][go] // R
                ej = gout == L_
                if ej.any():
                    res.delivered_at[wp[ej]] = now + pc
                    remaining -= int(ej.sum())
                fw = ~ej
                if fw.any():
                    d = dfi[go][fw]
                    reserved[d] += 1
                    ew = (gout[fw] == E_) | (gout[fw] == W_)
                    np.add.at(res.hops_ew, ginst[fw][ew], 1)
                    np.add.at(res.hops_ns, ginst[fw][~ew], 1)
                    t_arr = now + hop
                    prev = arrivals.get(t_arr)
                    arrivals[t_arr] = ((wp[fw], d) if prev is None else
                                       (np.concatenate([prev[0], wp[fw]]), np.concatenate([prev[1], d])))
        # 3. local injection: one packet per core per cycle while its local FIFO has room
        if live_q.size:
            qp = q_ptr[live_q]
            pk = order[qp]
            rdy = ready[pk] <= now
            if rdy.any():
                lq = live_q[rdy]
                lpk = pk[rdy]
                f = ((q_inst[rdy] * R + core_rid[src[lpk]]) * 5 + L_)
                room = cnt[f] < depth
                if (~room).any():
                    np.add.at(res.injection_stalls, q_inst[rdy][~room], 1)
                f, lq, lpk = f[room], lq[room], lpk[room]
                slot = (head[f] + cnt[f]) % depth
                buf[f, slot] = lpk
                cnt[f] += 1
                q_ptr[lq] += 1
                keep = q_ptr[live_q] < q_end[live_q]
                live_q, q_inst = live_q[keep], q_inst[keep]
        # 4. next cycle; skip idle stretches
        nxt = now + 1
        if not cnt.any():
            cands = [min(arrivals)] if arrivals else []
            if live_q.size:
                cands.append(int(ready[order[q_ptr[live_q]]].min()))
            if cands:
                nxt = max(nxt, min(cands))
        now = nxt
    ok = res.delivered_at >= 0
    if drop:
        ok &= res.delivered_at <= budget
    res.delivered = ok
    res.delivered_at[~ok] = -1
    res.drops = np.bincount(inst[~ok], minlength=n_inst).astype(np.int64)
    last = np.zeros(n_inst, np.int64)
    if ok.any():
        np.maximum.at(last, inst[ok], res.delivered_at[ok])
    res.cycles = np.maximum(res.cycles, last)
    if drop:
        res.cycles = np.where(res.drops > 0, np.maximum(res.cycles, budget), res.cycles)
    return res


def xy_route(src: tuple[int, int], dst: tuple[int, int]) -> list[tuple[int, int]]:
    """The routers a packet visits from ``src`` to ``dst``, X first then Y (both ends included)."""
    x, y = src
    path = [(x, y)]
    while x != dst[0]:
        x += 1 if dst[0] > x else -1
        path.append((x, y))
    while y != dst[1]:
        y += 1 if dst[1] > y else -1
        path.append((x, y))
    return path


__all__ = ["DIRECTION_NAMES", "NocParams", "NocResult", "PORTS", "simulate", "xy_route"]
