"""Batched decoding of CORE sections: the loader's fast path.

:mod:`emulator.loader` decodes one CORE section at a time and words an exact error for any bad
field. A large image holds hundreds of cores whose sections share one layout (the same counts and
widths), so this module decodes the cores of each such *group* together: every table of all the
group's cores in one vectorised pass (:meth:`emulator.format.BitTable.unpack_rows`), every range
check as one comparison over all records of all cores, and the synapse blocks of all cores in one
walk over their axons.

The fast path answers either "valid, here are the cores" or "not sure": each check of the
per-core path is made here as a boolean over whole arrays, and when one fails (or a layout is one
this module does not handle) it returns None; the loader then decodes the cores one by one, which
raises the exact ``LoadError`` (section, byte offset, field, value, limit) or, if the fast path was
only stricter than needed, gives the same chip. ``tests/test_loader_speedpaths.py`` holds the two
paths to the same outcome on valid and mutated images.

TrueNorth cores whose crossbars have every bit set share their synapse lists where they are
equal (the compartment list and the weights of every core, the group and delay lists of cores
with the same axon types and delays): one read-only array each, viewed by those cores, in place
of four int64 arrays per synapse per core.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from emulator import format as F
from emulator.chip import LoihiCore

_FMT_KEYS = ("ib", "wb", "db", "sign", "dense", "acc")


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------
def struct_ok(st: F.Struct, arr: np.ndarray) -> bool:
    """Every check ``_Loader._struct`` makes on the records ``arr`` (any shape), as one bool."""
    for f in st.fields:
        col = arr[f.name]
        if f.kind == "reserved" and col.any():
            return False
        if f.kind == "float" and not np.isfinite(col).all():
            return False
        if f.kind in ("int", "reserved") and (f.lo is not None or f.hi is not None):
            c = col.astype(np.int64) if f.bits < 64 else col
            if f.lo is not None and (c < f.lo).any():
                return False
            if f.hi is not None and (c > f.hi).any():
                return False
    return True


def evenly_spaced(starts: np.ndarray) -> int | None:
    """The constant step of increasing ``starts`` (0 for a single start), else None."""
    if starts.size < 2:
        return 0
    d = np.diff(starts)
    step = int(d[0])
    return step if step > 0 and bool((d == step).all()) else None


def rows(buf8: np.ndarray, starts: np.ndarray, nb: int) -> np.ndarray:
    """``(g, nb)`` bytes of ``buf8`` at the byte offsets ``starts``: a read-only strided view when
    the starts are evenly spaced, else a copy. The caller has checked that every row lies inside
    ``buf8``."""
    g = starts.size
    if nb == 0 or g == 0:
        return np.zeros((g, nb), np.uint8)
    step = evenly_spaced(starts)
    if step is not None:
        return as_strided(buf8[int(starts[0]):], shape=(g, nb), strides=(step, 1),
                          writeable=False)
    return buf8[starts[:, None] + np.arange(nb, dtype=np.int64)[None, :]]


def records(buf8: np.ndarray, starts: np.ndarray, st: F.Struct, count: int) -> np.ndarray:
    """``(g, count)`` structured records of ``st`` at the byte offsets ``starts``."""
    return np.ascontiguousarray(rows(buf8, starts, count * st.size)).view(st.dtype)


def pad_ok(r: np.ndarray, used_bits: int, nb: int) -> bool:
    """The padding bits after ``used_bits`` in the last byte of every row are zero (a bit table
    ends on the next byte boundary, so its padding lies in its last byte)."""
    if nb * 8 == used_bits:
        return True
    return not (r[:, nb - 1] >> (used_bits - 8 * (nb - 1))).any()


def int_env(ld: Any) -> dict[str, int]:
    """The integer PARAMS of a load (the widths' names resolve against them)."""
    env = getattr(ld, "_int_env", None)
    if env is None:
        env = {k: v for k, v in ld.params.items() if isinstance(v, int)}
        ld._int_env = env
    return env


def core_headers(ld: Any, cores_e: list[dict], H: Any, counts: tuple[str, ...]) -> tuple | None:
    """The CORE headers of ``cores_e`` (layout ``H``) read together: ``(buf8, offs, lens, h,
    ok)``, ``h`` the chip, x, y and ``counts`` fields as int64 and ``ok`` the placement check per core,
    or None when a section is shorter than its header or a header field is malformed."""
    nc = len(cores_e)
    m = ld.meta
    buf8 = np.frombuffer(ld.data, np.uint8)
    offs = np.fromiter((e["offset"] for e in cores_e), np.int64, nc)
    lens = np.fromiter((e["length"] for e in cores_e), np.int64, nc)
    if (lens < H.size).any():
        return None
    hdr = records(buf8, offs, H, 1)[:, 0]
    if not struct_ok(H, hdr):
        return None
    h = {k: hdr[k].astype(np.int64) for k in ("chip", "x", "y") + counts}
    ok = (h["chip"] < m["n_chips"]) & (h["x"] < m["mesh_x"]) & (h["y"] < m["mesh_y"])
    return buf8, offs, lens, h, ok


def layout_groups(h: dict[str, np.ndarray], counts: tuple[str, ...], lens: np.ndarray):
    """The cores that share one layout (the same header counts and section length): yields
    ``(core indices, {count: value}, section length)`` per group."""
    key = np.stack([h[k] for k in counts] + [lens], 1)
    uniq, inv = np.unique(key, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    for gi, k in enumerate(uniq.tolist()):
        yield np.flatnonzero(inv == gi), dict(zip(counts, k, strict=False)), int(k[-1])


# ------------------------------------------------------------------------------------------
# Loihi
# ------------------------------------------------------------------------------------------
_LOIHI_COUNTS = ("n_neurons", "n_axons", "n_routes", "n_words", "n_slices", "n_cx", "n_vth",
                 "n_fmt", "n_acc", "w_nblk", "w_rlen")


def loihi_cores(ld: Any, cores_e: list[dict]) -> list[LoihiCore] | None:
    """Every Loihi CORE section decoded and checked, or None (decode core by core instead)."""
    nc = len(cores_e)
    if nc == 0:
        return []
    P = ld.params
    if P["core.synapse_word_bits"] != 64:
        return None
    H = F.LOIHI_CORE_HEADER
    got = core_headers(ld, cores_e, H, _LOIHI_COUNTS)
    if got is None:
        return None
    buf8, offs, lens, h, ok = got
    for name, key in (("n_neurons", "core.neurons"), ("n_axons", "core.axons_in"),
                      ("n_routes", "core.axons_out"), ("n_words", "core.synapse_words"),
                      ("n_cx", "core.compartment_configs"), ("n_vth", "core.threshold_configs"),
                      ("n_fmt", "core.synapse_configs")):
        ok &= h[name] <= P[key]
    n_fmt, n_acc, n_ax = h["n_fmt"], h["n_acc"], h["n_axons"]
    ok &= (n_acc <= np.maximum(n_fmt, 0)) & ((n_fmt == 0) == (n_ax == 0)) & ((n_acc == 0) == (n_fmt == 0))
    if not ok.all():
        return None
    cores: list[Any] = [None] * nc
    for idx, counts, length in layout_groups(h, _LOIHI_COUNTS, lens):
        if not _loihi_group(ld, buf8, cores_e, idx, offs[idx], h, counts, length, cores):
            return None
    return cores


def _loihi_group(ld: Any, buf8: np.ndarray, cores_e: list[dict], idx: np.ndarray,
                 so: np.ndarray, h: dict, k: dict, length: int, cores: list) -> bool:
    """Decode the cores ``idx`` (one layout ``k``) into ``cores``; False on any failed check."""
    P, m = ld.params, ld.meta
    g = idx.size
    n, n_ax, n_rt, n_words = k["n_neurons"], k["n_axons"], k["n_routes"], k["n_words"]
    n_sl, n_cx, n_vth, n_fmt, n_acc = k["n_slices"], k["n_cx"], k["n_vth"], k["n_fmt"], k["n_acc"]
    env = dict(int_env(ld))
    env.update(w_cx=F.bitlen(n_cx - 1), w_vth=F.bitlen(n_vth - 1), w_acc=F.bitlen(n_acc - 1),
               w_nidx=F.bitlen(n - 1), w_ptr=F.bitlen(n_words), w_chip=F.bitlen(m["n_chips"] - 1),
               w_x=F.bitlen(m["mesh_x"] - 1), w_y=F.bitlen(m["mesh_y"] - 1),
               w_axon=F.bitlen(P["core.axons_in"] - 1), w_nblk=k["w_nblk"], w_rlen=k["w_rlen"])
    H = F.LOIHI_CORE_HEADER
    sizes = [H.size, n_sl * F.SLICE.size, F.LOIHI_CX.nbytes(n_cx, env),
             F.LOIHI_VTH.nbytes(n_vth, env), F.LOIHI_ACC.nbytes(n_acc, env),
             F.LOIHI_FMT.nbytes(n_fmt, env), F.LOIHI_NEURON.nbytes(n, env),
             F.LOIHI_AXON.nbytes(n_ax, env), n_words * 8, F.LOIHI_ROUTE.nbytes(n_rt, env)]
    if sum(sizes) != length:
        return False
    at = H.size
    slices = _slices(ld, buf8, so + at, n_sl, n)
    if slices is None:
        return False
    at += n_sl * F.SLICE.size
    bits: dict[str, int] = {}

    def table(T: F.BitTable, cnt: int, name: str) -> dict[str, np.ndarray] | None:
        nonlocal at
        nb = T.nbytes(cnt, env)
        r = rows(buf8, so + at, nb)
        if not pad_ok(r, cnt * T.record_bits(env), nb):
            return None
        bits[name] = nb * 8
        at += nb
        return T.unpack_rows(r, cnt, env)

    cx = table(F.LOIHI_CX, n_cx, "cx")
    if cx is None or (cx["refractory"] > P["neuron.refractory_max"]).any():
        return False
    vt = table(F.LOIHI_VTH, n_vth, "vth")
    acc = table(F.LOIHI_ACC, n_acc, "acc")
    if vt is None or acc is None:
        return False
    ex = acc["weight_exp"]
    if ((ex < P["widths.weight_exp_min"]) | (ex > P["widths.weight_exp_max"])).any():
        return False
    fmt = table(F.LOIHI_FMT, n_fmt, "fmt")
    if fmt is None:
        return False
    if ((fmt["wb"] > P["widths.weight"]) | (fmt["sign"] > 2) | (fmt["db"] > P["widths.delay"])
            | ((fmt["dense"] != 0) & (fmt["ib"] != 0)) | (fmt["ib"] > 24)
            | (fmt["acc"] >= max(n_acc, 1))).any():
        return False
    nr = table(F.LOIHI_NEURON, n, "neurons")
    if nr is None or (nr["cx"] >= n_cx).any() or (nr["vth"] >= n_vth).any() \
            or (nr["n_routes"].sum(axis=1) != n_rt).any():
        return False
    axs = table(F.LOIHI_AXON, n_ax, "axons")
    if axs is None or (axs["base"] >= max(n, 1)).any():
        return False
    mem_at = at
    at += n_words * 8
    bits["synapse_words"] = n_words * 64
    syn = _loihi_synapses(ld, buf8, so, mem_at, axs, fmt, n, n_ax, n_words, n_fmt)
    if syn is None:
        return False
    route_at = at
    rt = table(F.LOIHI_ROUTE, n_rt, "routes")
    if rt is None or (rt["chip"] >= m["n_chips"]).any() or (rt["x"] >= m["mesh_x"]).any() \
            or (rt["y"] >= m["mesh_y"]).any():
        return False
    rb = F.LOIHI_ROUTE.record_bits(env)
    route_pos = np.stack([rt["chip"], rt["x"], rt["y"], rt["axon"]], 2)
    route_ptr = np.zeros((g, n + 1), np.int64)
    np.cumsum(nr["n_routes"], axis=1, out=route_ptr[:, 1:])
    tables_at = getattr(ld, "route_tables_at", None)
    if tables_at is None:
        tables_at = ld.route_tables_at = {}
    chip, x, y = (h[c][idx].tolist() for c in ("chip", "x", "y"))
    s_ptr, s_comp, s_w, s_delay, s_acc = (list(a) for a in syn)
    # per-core row views, made in one C-level pass per array
    cx, fmt, nr, axs = ({c: list(v) for c, v in d.items()} for d in (cx, fmt, nr, axs))
    slices, vth, ex, route_ptr, route_axon, route_pos = (
        list(a) for a in (slices, vt["vth_mant"], ex, route_ptr, rt["axon"], route_pos))
    for j, ci in enumerate(idx.tolist()):
        e = cores_e[ci]
        cid = e["index"]
        tables_at[cid] = (e["offset"] + route_at, rb, "LOIHI_ROUTE")
        cores[ci] = LoihiCore(
            id=cid, chip=chip[j], x=x[j], y=y[j], n_neurons=n, n_axons=n_ax, n_routes=n_rt,
            n_words=n_words, slices=slices[j], cx={c: v[j] for c, v in cx.items()},
            vth=vth[j], acc_exp=ex[j], fmt={c: v[j] for c, v in fmt.items()},
            neuron={c: v[j] for c, v in nr.items()}, axon={c: v[j] for c, v in axs.items()},
            syn_ptr=s_ptr[j], syn_comp=s_comp[j], syn_w=s_w[j], syn_delay=s_delay[j],
            syn_acc=s_acc[j], route_ptr=route_ptr[j], route_core=np.zeros(n_rt, np.int64),
            route_axon=route_axon[j], route_pos=route_pos[j], bits=dict(bits))
    return True


def _slices(ld: Any, buf8: np.ndarray, starts: np.ndarray, n_sl: int, n: int) -> np.ndarray | None:
    """``(g, n_sl, 3)`` slices (population, start, stop), or None when one is out of range or
    they do not hold ``n`` neurons."""
    sl = records(buf8, starts, F.SLICE, n_sl)
    if not struct_ok(F.SLICE, sl):
        return None
    p, s, t = (sl[c].astype(np.int64) for c in ("population", "start", "stop"))
    npop = len(ld.pops)
    psize = np.array([q.size for q in ld.pops] + [0], np.int64)
    known = p < npop
    if not (known & (s < t) & (t <= psize[np.where(known, p, npop)])).all():
        return None
    if ((t - s).sum(axis=1) != n).any():
        return None
    return np.stack([p, s, t], 2)


def _loihi_synapses(ld: Any, buf8: np.ndarray, so: np.ndarray, mem_at: int, axs: dict,
                    fmt: dict, n: int, n_ax: int, n_words: int, n_fmt: int) -> tuple | None:
    """The synapse lists of the group's cores, per core: (ptr, comp, w, delay, acc); None when a
    check fails or the layout is not handled here.

    The block walk is the per-core one (``_Loader._loihi_synapses``), vectorised over the axons
    of all cores: round ``j`` reads the ``j``-th block header of every axon that has one."""
    P = ld.params
    g = so.size
    fb, cb = P["synapse.fmt_bits"], P["synapse.count_bits"]
    hb = fb + cb
    group = P["synapse.group_size"]
    if n_ax == 0:
        if n_words:
            return None
        z = [np.zeros(0, np.int64)] * g
        return [np.zeros(1, np.int64) for _ in range(g)], z, z, z, z
    if hb >= 64:
        return None
    ptr, nblk, base = axs["ptr"], axs["n_blocks"], axs["base"]
    if (nblk.sum(axis=1) > n_words).any() or (nblk < 1).any() or (ptr >= n_words).any():
        return None
    # 64-bit words of the whole file, starting where every core's synapse memory is aligned
    # (sections start at multiples of 8, so mem_at % 8 is the same for every core)
    r0 = mem_at % 8
    W = np.frombuffer(ld.data, "<u8", (len(ld.data) - r0) // 8, r0)
    word0 = (so + mem_at - r0) // 8
    A = g * n_ax
    row = np.repeat(np.arange(g, dtype=np.int64), n_ax)
    wbase = np.repeat(word0, n_ax)
    sb_flat = (fmt["wb"] + fmt["db"] + fmt["ib"]).reshape(-1)
    uni = _uniform_blocks(W, word0, ptr, nblk, fmt, n_ax, n_words, n_fmt, hb, fb, group)
    if uni is not None:
        counts, nws, fv, check = uni
        if not check():
            return None
        out = _loihi_periodic(ld, buf8, so, mem_at, base, fv, counts, nws, n, n_ax, hb)
        if out is not False:
            return out
        at_ax = np.tile(np.arange(n_ax, dtype=np.int64) * sum(nws), g)
        everyone = np.arange(A, dtype=np.int64)
        rounds = [(everyone, at_ax + sum(nws[:j]), np.full(A, c, np.int64), None, None)
                  for j, c in enumerate(counts)]
        one = {c: np.array([v], np.int64) for c, v in fv.items()}
        return _loihi_general(ld, W, rounds, wbase, one, np.zeros(A, np.int64), base, n, n_ax,
                              g, hb)
    cur = ptr.reshape(-1).copy()
    nb_flat = nblk.reshape(-1)
    ax_fmt = np.full(A, -1, np.int64)
    active = np.arange(A, dtype=np.int64)
    hmask = np.uint64((1 << hb) - 1)
    rounds = []
    j = 0
    while active.size:
        pos = cur[active]
        if (pos >= n_words).any():
            return None
        wb_ = wbase[active]
        hdr = (W[wb_ + pos] & hmask).astype(np.int64)
        f = hdr & ((1 << fb) - 1)
        cnt = (hdr >> fb) + 1
        if (f >= n_fmt).any() or (cnt > group).any():
            return None
        if j == 0:
            ax_fmt[active] = f
        elif (f != ax_fmt[active]).any():
            return None
        used = hb + cnt * sb_flat[row[active] * n_fmt + f]
        nw = (used + 63) >> 6
        end = pos + nw
        if (end > n_words).any():
            return None
        # zero padding: the top (64 * nw - used) bits of the block's last word
        last = W[wb_ + end - 1]
        last >>= (np.int64(63) - (nw * 64 - used)).astype(np.uint64)
        last >>= np.uint64(1)
        if last.any():
            return None
        rounds.append((active, pos, cnt, f, nw))
        cur[active] = end
        j += 1
        active = active[nb_flat[active] > j]
    cur2 = cur.reshape(g, n_ax)
    if (ptr[:, 1:] != cur2[:, :-1]).any() or (ptr[:, 0] != 0).any() or (cur2[:, -1] != n_words).any():
        return None
    # the formats of all cores as values, one id per distinct (ib, wb, db, sign, dense, acc)
    keys = np.stack([fmt[c].reshape(-1) for c in _FMT_KEYS], 1)
    ukeys, fid = np.unique(keys, axis=0, return_inverse=True)
    gfmt = {c: ukeys[:, i] for i, c in enumerate(_FMT_KEYS)}
    ax_fid = fid.reshape(-1)[row * n_fmt + ax_fmt]
    uniform = bool((ax_fid == ax_fid[0]).all()) and bool((nb_flat == nb_flat[0]).all()) \
        and all(bool((rd[2] == rd[2][0]).all()) for rd in rounds)
    if uniform:
        out = _loihi_periodic(ld, buf8, so, mem_at, base,
                              {c: int(v[ax_fid[0]]) for c, v in gfmt.items()},
                              [int(rd[2][0]) for rd in rounds], [int(rd[4][0]) for rd in rounds],
                              n, n_ax, hb)
        if out is not False:
            return out
    return _loihi_general(ld, W, rounds, wbase, gfmt, ax_fid, base, n, n_ax, g, hb)


def _uniform_blocks(W: np.ndarray, word0: np.ndarray, ptr: np.ndarray, nblk: np.ndarray,
                    fmt: dict, n_ax: int, n_words: int, n_fmt: int, hb: int, fb: int,
                    group: int) -> tuple | None:
    """The common layout: every axon of every core holds the blocks of core 0's axon 0 (same
    headers, same format values), axons back to back. Returns the blocks' counts and words, the
    format's values and ``check()``, which checks every block header and padding of the group's
    cores against that layout (one strided read per block of an axon, over all the cores); None
    when core 0's axon 0, the pointers or the formats already disagree (the round walk then
    checks the layout)."""
    K = int(nblk[0, 0])
    if not (nblk == K).all() or int(ptr[0, 0]) != 0:
        return None
    hmask = (1 << hb) - 1
    w0 = int(word0[0])
    q, hdrs, counts, nws, pads = [], [], [], [], []
    p, f0 = 0, None
    for _ in range(K):
        if p >= n_words:
            return None
        hdr = int(W[w0 + p]) & hmask
        f, cnt = hdr & ((1 << fb) - 1), (hdr >> fb) + 1
        if f >= n_fmt or cnt > group or (f0 is not None and f != f0):
            return None
        f0 = f
        used = hb + cnt * int(fmt["wb"][0, f] + fmt["db"][0, f] + fmt["ib"][0, f])
        nw = -(-used // 64)
        q.append(p)
        hdrs.append(hdr)
        counts.append(cnt)
        nws.append(nw)
        pads.append(nw * 64 - used)
        p += nw
    if n_words != n_ax * p or not (ptr == np.arange(n_ax, dtype=np.int64) * p).all():
        return None
    fv = {}
    for c in _FMT_KEYS:
        col = fmt[c][:, f0]
        if not (col == col[0]).all():
            return None
        fv[c] = int(col[0])
    step = evenly_spaced(word0)

    def check() -> bool:
        """Block j of every axon of every core: its header, and the zero top of its last word."""
        for j in range(K):
            if step is not None:
                at = int(word0[0]) + q[j]
                first = as_strided(W[at:], shape=(word0.size, n_ax), strides=(step * 8, p * 8),
                                   writeable=False)
                last = as_strided(W[at + nws[j] - 1:], shape=(word0.size, n_ax),
                                  strides=(step * 8, p * 8), writeable=False)
            else:
                at = word0[:, None] + (np.arange(n_ax, dtype=np.int64) * p + q[j])[None, :]
                first, last = W[at], W[at + nws[j] - 1]
            if not ((first & np.uint64(hmask)) == hdrs[j]).all():
                return False
            if pads[j] and (last >> np.uint64(64 - pads[j])).any():
                return False
        return True

    return counts, nws, fv, check


CHUNK_BYTES = 1 << 20
"""Synapse memory decoded per chunk of about this many bytes (the shifted copy stays in the
caches)."""


def _loihi_periodic(ld: Any, buf8: np.ndarray, so: np.ndarray, mem_at: int, base: np.ndarray,
                    f: dict[str, int], counts: list[int], nws: list[int], n: int, n_ax: int,
                    hb: int) -> tuple | None | bool:
    """Every axon of every core has the same blocks (format, counts): the memory is periodic
    with one axon's words as its period, and synapse ``i`` of block ``j`` of every axon sits at
    one constant bit. When the records are a whole number of bytes (the common case: 8-bit
    weights, no index, no delay) the memory is shifted by the header's odd bits (a few cores at
    a time, in cache), each block's records are then a strided view of it, and the fields come
    out of that view in one vectorised pass each. The block headers are already checked. False
    when the records are not byte-sized (the general path decodes them), None when a check
    fails."""
    ib, wb, db, sign, dense, acc = (f[c] for c in _FMT_KEYS)
    sb = ib + wb + db
    if sb == 0 or sb % 8 or sb > 56:
        return False
    dmax = ld.params["synapse.delay_max"]
    g = so.size
    S = sum(counts)
    pw = sum(nws)
    nbytes = n_ax * pw * 8
    stride = evenly_spaced(so)
    lo = int(so[0]) + mem_at
    if stride is None or lo + (g - 1) * stride + nbytes + 8 > buf8.size:
        # one contiguous copy of the memories (with room for the widest read past the end)
        src = np.zeros(g * nbytes + 8, np.uint8)
        for j, s0 in enumerate((so + mem_at).tolist()):
            src[j * nbytes:(j + 1) * nbytes] = buf8[s0:s0 + nbytes]
        stride, lo = nbytes, 0
    else:
        src = buf8
    # the checks that need no decoding
    if dense and (base + S > n).any():
        return None
    if not dense and not ib and (base >= n).any():
        return None
    comp = np.empty((g, n_ax, S), np.int64)
    w = np.empty((g, n_ax, S), np.int64)
    delay = np.empty((g, n_ax, S), np.int64) if db else np.ones((g, n_ax, S), np.int64)
    same_base = bool((base == base[0]).all())
    if dense:  # the i-th synapse of an axon feeds base + i
        if same_base:  # one core's lists, copied (cheaper than the broadcast add)
            np.add(base[0][:, None], np.arange(S, dtype=np.int64), out=comp[0])
            comp[1:] = comp[0]
        else:
            np.add(base[:, :, None], np.arange(S, dtype=np.int64), out=comp)
    elif not ib:  # every synapse feeds base
        comp[...] = base[:, :, None]
    # runs of equal blocks: (first column, blocks, count, words, first word)
    runs = []
    col, word_at, j = 0, 0, 0
    while j < len(counts):
        k = j
        while k + 1 < len(counts) and counts[k + 1] == counts[j] and nws[k + 1] == nws[j]:
            k += 1
        runs.append((col, k - j + 1, counts[j], nws[j], word_at))
        col += (k - j + 1) * counts[j]
        word_at += (k - j + 1) * nws[j]
        j = k + 1
    step = sb // 8
    dt = np.dtype({1: "<u1", 2: "<u2", 3: "<u4", 4: "<u4"}.get(step, "<u8"))
    s = hb % 8
    per = max(1, CHUNK_BYTES // max(stride, 1))
    if s:
        tw = (min(g, per) * stride + nbytes) // 8 + 4
        tbuf = np.zeros(tw * 8, np.uint8)
        t64, tmp = tbuf.view("<u8"), np.empty(tw, np.uint64)
    for c0 in range(0, g, per):
        c1 = min(g, c0 + per)
        a = lo + c0 * stride
        if s:
            # the stream shifted by s bits, one 64-bit word at a time: byte k of tbuf holds bits
            # 8k + s .. 8k + s + 7 of the stream from byte a8 (a rounded down to 8)
            a8 = a - a % 8
            nw = (a + (c1 - c0 - 1) * stride + nbytes - a8) // 8 + 2
            if a8 + nw * 8 <= src.size:
                x = src[a8:a8 + nw * 8].view("<u8")
            else:  # the file ends within the last word: pad a copy
                xb = np.zeros(nw * 8, np.uint8)
                xb[:src.size - a8] = src[a8:]
                x = xb.view("<u8")
            np.right_shift(x[:-1], np.uint64(s), out=t64[:nw - 1])
            np.left_shift(x[1:], np.uint64(64 - s), out=tmp[:nw - 1])
            t64[:nw - 1] |= tmp[:nw - 1]
            rs, ra = tbuf, a - a8
        else:
            rs, ra = src, a
        for col, kb, c, nw, wa in runs:
            rec = np.ndarray((c1 - c0, n_ax, kb, c), dt, rs, ra + wa * 8 + hb // 8,
                             (stride, pw * 8, nw * 8, step))
            shape, cols = (c1 - c0, n_ax, kb, c), (slice(c0, c1), slice(None), slice(col, col + kb * c))

            def out(arr: np.ndarray, shape=shape, cols=cols) -> np.ndarray:
                return arr[cols].reshape(shape)

            if ib:
                idx = rec & ((1 << ib) - 1)
                if (idx.max(axis=(2, 3)).astype(np.int64) + base[c0:c1] >= n).any():
                    return None
                np.add(base[c0:c1, :, None, None], idx, out=out(comp), dtype=np.int64)
            wv = out(w)
            if wb == 0:
                wv[...] = 0
            elif ib == 0 and db == 0 and wb == 8 and sign == 0:
                np.left_shift(rec.view(np.int8), 1, out=wv, dtype=np.int64)
            else:
                wf = ((rec >> ib) & ((1 << wb) - 1)).astype(np.int16)  # wb <= 8
                if sign == 0:
                    half = 1 << (wb - 1)
                    wf ^= half
                    wf -= half
                np.left_shift(wf, (9 if sign == 0 else 8) - wb, out=wv, dtype=np.int64)
                if sign == 2:
                    np.negative(wv, out=wv)
            if db:
                dl = (rec >> (ib + wb)) & ((1 << db) - 1)
                if (1 << db) > dmax and (dl >= dmax).any():
                    return None
                np.add(dl, 1, out=out(delay), dtype=np.int64)
    accs = np.zeros((g, n_ax * S), np.int64) if acc == 0 else np.full((g, n_ax * S), acc, np.int64)
    ptr = np.arange(n_ax + 1, dtype=np.int64) * S
    return ([ptr.copy() for _ in range(g)], comp.reshape(g, -1), w.reshape(g, -1),
            delay.reshape(g, -1), accs)


def _loihi_general(ld: Any, W: np.ndarray, rounds: list, wbase: np.ndarray,
                   gfmt: dict[str, np.ndarray], ax_fid: np.ndarray, base: np.ndarray, n: int,
                   n_ax: int, g: int, hb: int) -> tuple | None:
    """Any block layout: :func:`decode_blocks` over the axons of all the group's cores at once
    (``ax_fid``: each axon's format, a column of ``gfmt``), then the synapse lists split per
    core."""
    b_ax = np.concatenate([rd[0] for rd in rounds])
    b_pos = np.concatenate([wbase[rd[0]] + rd[1] for rd in rounds])
    b_cnt = np.concatenate([rd[2] for rd in rounds])
    b_round = np.concatenate([np.full(rd[0].size, r, np.int64) for r, rd in enumerate(rounds)])
    b_fmt = ax_fid[b_ax]
    res = decode_blocks(W, b_ax, b_pos, b_cnt, b_fmt, b_round, gfmt, base.reshape(-1), n,
                        g * n_ax, hb, ld.params["synapse.delay_max"])
    if res is None:
        return None
    ptr_all = res["ptr"]
    out: tuple[list, ...] = ([], [], [], [], [])
    for j in range(g):
        lo, hi = int(ptr_all[j * n_ax]), int(ptr_all[(j + 1) * n_ax])
        out[0].append(ptr_all[j * n_ax:(j + 1) * n_ax + 1] - lo)
        for o, c in zip(out[1:], ("comp", "w", "delay", "acc"), strict=True):
            o.append(res[c][lo:hi])
    return out


def decode_blocks(words: np.ndarray, b_ax: np.ndarray, b_pos: np.ndarray, b_cnt: np.ndarray,
                  b_fmt: np.ndarray, b_round: np.ndarray, fmt: dict, base: np.ndarray, n: int,
                  n_ax: int, hb: int, dmax: int) -> dict[str, np.ndarray] | None:
    """Decode the synapse fields of checked blocks as whole 2-D arrays (blocks x slots).

    ``words``: 64-bit synapse words; block ``k`` of axon ``b_ax[k]`` (its ``b_round[k]``-th)
    starts at word ``b_pos[k]``, holds ``b_cnt[k]`` synapses of format ``b_fmt[k]`` (an index
    into the columns of ``fmt``); ``base``: per axon; ``n``: compartments.

    Within a block every synapse of the format has the same width, so synapse ``j`` sits at the
    constant bit ``hb + j * sbits`` from the block's first word: its word and shift are per-slot
    constants. The blocks' words are gathered once (aligned), each synapse record (<= 64 bits)
    is assembled from two words with per-slot shifts, and its three fields come out by scalar
    shifts and masks. Returns the CSR lists (``ptr`` by axon, ``comp``, ``w``, ``delay``,
    ``acc``), or None when a record is wider than 64 bits or a synapse fails a range check (the
    caller then takes a path that words the error)."""
    order = np.lexsort((b_round, b_ax))  # axon order, then block order
    b_ax, b_pos, b_cnt, b_fmt = (a[order] for a in (b_ax, b_pos, b_cnt, b_fmt))
    first = np.zeros(b_ax.size + 1, np.int64)
    np.cumsum(b_cnt, out=first[1:])
    total = int(first[-1])
    # a block's first synapse's index within its axon (dense formats count from there)
    ax_first = np.zeros(n_ax + 1, np.int64)
    np.cumsum(np.bincount(b_ax, weights=b_cnt, minlength=n_ax).astype(np.int64), out=ax_first[1:])
    b_in_ax = first[:-1] - ax_first[b_ax]
    outs = {k: np.empty(total, np.int64) for k in ("comp", "w", "delay", "acc")}
    fmts = np.unique(b_fmt)
    for g in fmts.tolist():
        ib, wb, db = (int(fmt[k][g]) for k in ("ib", "wb", "db"))
        sign, dense, acc = int(fmt["sign"][g]), int(fmt["dense"][g]), int(fmt["acc"][g])
        sb = ib + wb + db
        if sb > 64:
            return None
        sel = b_fmt == g if fmts.size > 1 else slice(None)
        bp, bc, bax, bin_ax = b_pos[sel], b_cnt[sel], b_ax[sel], b_in_ax[sel]
        c_max = int(bc.max())
        slot = hb + np.arange(c_max, dtype=np.int64) * sb
        # the block's words (aligned gather), then per slot a constant word and bit offset
        wi = slot >> 6
        bo = (slot & 63).astype(np.uint64)
        n_cols = int(wi[-1]) + 2
        rows_at = bp[:, None] + np.arange(n_cols, dtype=np.int64)[None, :]
        # slots past a short block's end may point past the memory: read any word there
        np.minimum(rows_at, words.size - 1, out=rows_at)
        rw = words[rows_at]
        v = np.take(rw, wi, axis=1)
        v >>= bo[None, :]
        hi = np.take(rw, wi + 1, axis=1)
        hi <<= np.uint64(1)
        hi <<= (np.uint64(63) - bo)[None, :]  # 0 when the field starts on a word boundary
        v |= hi
        del hi
        v = v.view(np.int64)  # every field is < 2**57 after masking
        if ib:
            idx = v & ((1 << ib) - 1)
        wf = (v >> ib) & ((1 << wb) - 1)
        dl = (v >> (ib + wb)) & ((1 << db) - 1)
        dl += 1
        if db and (1 << db) > dmax and bool((dl > dmax).any()):
            return None
        # stored weight -> weight (see LOIHI_FMT.sign and format.loihi_weight_decode)
        if sign == 0:
            if wb:
                half = 1 << (wb - 1)
                wf ^= half
                wf -= half
            wf <<= 9 - wb
        else:
            wf <<= 8 - wb
            if sign == 2:
                np.negative(wf, out=wf)
        if dense:  # the i-th synapse of the axon feeds base + i
            comp = (base[bax] + bin_ax)[:, None] + np.arange(c_max, dtype=np.int64)[None, :]
        elif not ib:  # sparse with 0 index bits: every synapse feeds base
            comp = np.repeat(base[bax][:, None], c_max, axis=1)
        else:
            comp = idx
            comp += base[bax][:, None]
        full = bool((bc == c_max).all())
        ok_comp = comp < n
        if full:
            if not bool(ok_comp.all()):
                return None
        else:
            valid = np.arange(c_max)[None, :] < bc[:, None]
            if bool((~ok_comp & valid).any()):
                return None
        if fmts.size == 1 and full:
            outs["comp"] = comp.reshape(-1)
            outs["w"] = wf.reshape(-1)
            outs["delay"] = dl.reshape(-1)
            outs["acc"] = np.full(total, acc, np.int64)
            break
        dest = first[:-1][sel][:, None] + np.arange(c_max, dtype=np.int64)[None, :]
        if not full:
            dest, comp, wf, dl = dest[valid], comp[valid], wf[valid], dl[valid]
        outs["comp"][dest.reshape(-1)] = comp.reshape(-1)
        outs["w"][dest.reshape(-1)] = wf.reshape(-1)
        outs["delay"][dest.reshape(-1)] = dl.reshape(-1)
        outs["acc"][dest.reshape(-1)] = acc
    return dict(ptr=ax_first, comp=outs["comp"], w=outs["w"], delay=outs["delay"],
                acc=outs["acc"])


# ------------------------------------------------------------------------------------------
# TrueNorth
# ------------------------------------------------------------------------------------------
_TN_COUNTS = ("n_neurons", "n_axons", "n_routes", "n_slices", "w_rlen")


def truenorth_cores(ld: Any, cores_e: list[dict]) -> list | None:
    """Every TrueNorth CORE section decoded and checked, or None (decode core by core)."""
    from emulator.chip import TrueNorthCore

    nc = len(cores_e)
    if nc == 0:
        return []
    P = ld.params
    H = F.TN_CORE_HEADER
    got = core_headers(ld, cores_e, H, _TN_COUNTS)
    if got is None:
        return None
    buf8, offs, lens, h, ok = got
    ok &= (h["n_neurons"] <= P["core.neurons"]) & (h["n_axons"] <= P["core.axons"])
    ok &= h["n_routes"] <= P["core.neurons"] * P["core.targets_per_neuron"]
    if not ok.all():
        return None
    cores: list[Any] = [None] * nc
    for idx, counts, length in layout_groups(h, _TN_COUNTS, lens):
        if not _tn_group(ld, buf8, cores_e, idx, offs[idx], h, counts, length, cores,
                         TrueNorthCore):
            return None
    return cores


def _tn_group(ld: Any, buf8: np.ndarray, cores_e: list[dict], idx: np.ndarray, so: np.ndarray,
              h: dict, k: dict, length: int, cores: list, core_type: type) -> bool:
    """Decode the TrueNorth cores ``idx`` (one layout ``k``) into ``cores``; False on any failed
    check."""
    P, m = ld.params, ld.meta
    g = idx.size
    n, n_ax, n_rt, n_sl = k["n_neurons"], k["n_axons"], k["n_routes"], k["n_slices"]
    env = dict(int_env(ld))
    env["w_rlen"] = k["w_rlen"]
    H = F.TN_CORE_HEADER
    sizes = [H.size, n_sl * F.SLICE.size, F.TN_AXON.nbytes(n_ax, env), F.TN_NEURON.nbytes(n, env),
             F.TN_CROSSBAR.nbytes(n_ax * n, env), F.TN_ROUTE.nbytes(n_rt, env)]
    if sum(sizes) != length:
        return False
    at = H.size
    slices = _slices(ld, buf8, so + at, n_sl, n)
    if slices is None:
        return False
    at += n_sl * F.SLICE.size
    bits: dict[str, int] = {}

    def table(T: F.BitTable, cnt: int, name: str, decode: bool = True) -> Any:
        nonlocal at
        nb = T.nbytes(cnt, env)
        r = rows(buf8, so + at, nb)
        if not pad_ok(r, cnt * T.record_bits(env), nb):
            return None
        bits[name] = nb * 8
        at += nb
        return T.unpack_rows(r, cnt, env) if decode else r

    axs = table(F.TN_AXON, n_ax, "axons")
    if axs is None or ((axs["delay"] < 1) | (axs["delay"] >= P["core.scheduler_slots"])).any():
        return False
    nr = table(F.TN_NEURON, n, "neurons")
    if nr is None or (nr["gamma"] > 2).any() or (nr["v_bits"] < 2).any() \
            or (nr["v_bits"] > 32).any() or (nr["tm"] > P["widths.tm"]).any() \
            or (nr["n_routes"].sum(axis=1) != n_rt).any() \
            or (nr["n_routes"] > P["core.targets_per_neuron"]).any():
        return False
    raw = table(F.TN_CROSSBAR, n_ax * n, "crossbar", decode=False)
    if raw is None:
        return False
    nbits = n_ax * n
    # every bit set (dense layers): the raw bytes say so without unpacking
    full = bool((raw[:, :nbits // 8] == 0xFF).all()) and (
        nbits % 8 == 0 or bool((raw[:, nbits // 8] == (1 << nbits % 8) - 1).all()))
    crossbar = np.unpackbits(raw, axis=1, count=nbits, bitorder="little").view(bool)
    crossbar = crossbar.reshape(g, n_ax, n)
    route_at = at
    rt = table(F.TN_ROUTE, n_rt, "routes")
    if rt is None:
        return False
    mx, my = m["mesh_x"], m["mesh_y"]
    gx = (h["chip"][idx] * mx + h["x"][idx])[:, None] + rt["dx"]
    gy = h["y"][idx][:, None] + rt["dy"]
    if ((gx < 0) | (gx >= m["n_chips"] * mx) | (gy < 0) | (gy >= my)).any():
        return False
    route_pos = np.stack([gx // mx, gx % mx, gy, rt["axon"]], 2)
    rb = F.TN_ROUTE.record_bits(env)
    route_ptr = np.zeros((g, n + 1), np.int64)
    np.cumsum(nr["n_routes"], axis=1, out=route_ptr[:, 1:])
    # the synapse lists: one synapse per crossbar bit, axon-major
    per_axon = np.full((g, n_ax), n, np.int64) if full else np.count_nonzero(crossbar, axis=2)
    syn_ptr = np.zeros((g, n_ax + 1), np.int64)
    np.cumsum(per_axon, axis=1, out=syn_ptr[:, 1:])
    typ, dly = axs["type"], axs["delay"]
    counts = syn_ptr[:, -1].tolist()
    # every synapse has weight 1: one read-only array of ones, viewed by every core
    ones = _read_only(np.ones(max(counts + [0]), np.int64))
    if full:
        # every core lists the same compartments (0..n-1 per axon), and cores whose axons have
        # the same types (delays) have the same groups (delays): one read-only array each,
        # viewed by every core that has it
        comp = _read_only(np.tile(np.arange(n, dtype=np.int64), n_ax))
        syn = list(zip([comp] * g, _per_axon_lists(typ, n), _per_axon_lists(dly, n),
                       [ones] * g, strict=True))
    else:
        core_i, ax_i, comp = np.nonzero(crossbar)
        group = typ[core_i, ax_i]
        delay = dly[core_i, ax_i]
        del core_i, ax_i
        cut = np.concatenate([[0], syn_ptr[:, -1]]).cumsum().tolist()
        syn = [tuple(a[cut[j]:cut[j + 1]] for a in (comp, group, delay))
               + (ones[:counts[j]],) for j in range(g)]
    tables_at = getattr(ld, "route_tables_at", None)
    if tables_at is None:
        tables_at = ld.route_tables_at = {}
    chip, x, y = (h[c][idx].tolist() for c in ("chip", "x", "y"))
    for j, ci in enumerate(idx.tolist()):
        e = cores_e[ci]
        cid = e["index"]
        tables_at[cid] = (e["offset"] + route_at, rb, "TN_ROUTE")
        cj, gj, dj, wj = syn[j]
        cores[ci] = core_type(
            id=cid, chip=chip[j], x=x[j], y=y[j], n_neurons=n, n_axons=n_ax, n_routes=n_rt,
            slices=slices[j], axon={c: v[j] for c, v in axs.items()},
            neuron={c: v[j] for c, v in nr.items()}, crossbar=crossbar[j], syn_ptr=syn_ptr[j],
            syn_comp=cj, syn_group=gj, syn_w=wj, syn_delay=dj,
            route_ptr=route_ptr[j], route_core=np.zeros(n_rt, np.int64), route_axon=rt["axon"][j],
            route_pos=route_pos[j], bits=dict(bits))
    return True


def _read_only(a: np.ndarray) -> np.ndarray:
    """``a``, made read-only: it is shared by several cores, so an in-place write (which nothing
    should make) fails instead of changing them all."""
    a.flags.writeable = False
    return a


def _per_axon_lists(v: np.ndarray, n: int) -> list[np.ndarray]:
    """For every core ``j`` of a group of full crossbars, ``v[j]`` (one value per axon) repeated
    for the ``n`` synapses of each axon: one read-only array per distinct row of ``v``, shared
    by the cores that have that row (a chip's cores often share their axon types and delays)."""
    u, inv = distinct_rows(v)
    rep = np.empty((u.shape[0], u.shape[1], n), np.int64)
    rep[...] = u[:, :, None]
    _read_only(rep)
    lists = [r.reshape(-1) for r in rep]
    return [lists[i] for i in inv.reshape(-1).tolist()]


def distinct_rows(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows ``u`` of the 2-d int64 ``v`` and, per row, its index in ``u`` (``v ==
    u[inv]``), by a hash of each row (``np.unique(axis=0)`` sorts rows as byte strings, which is
    slow); the result is checked, and on a hash collision the rows are sorted after all."""
    g = v.shape[0]
    if g == 0 or bool((v == v[0]).all()):
        return v[:1], np.zeros(g, np.int64)
    mult = np.random.default_rng(0x6E6D63).integers(1, 1 << 62, v.shape[1], np.int64) | 1
    with np.errstate(over="ignore"):
        h = (v.astype(np.uint64) * mult.astype(np.uint64)).sum(axis=1, dtype=np.uint64)
    _, first, inv = np.unique(h, return_index=True, return_inverse=True)
    inv = inv.reshape(-1)
    u = v[first]
    if not bool((u[inv] == v).all()):
        u, inv = np.unique(v, axis=0, return_inverse=True)
        inv = inv.reshape(-1)
    return u, inv
