"""The image writer: a routed graph and its target profile -> the bytes of a chip image (``.nmb``).

The layout comes from ``emulator/format.py`` (the hardware contract); this module only decides
*what* goes into each table. The writer is deterministic (the same graph and profile give the same
bytes: no timestamps, no dict-order or hash-seed dependence) and refuses anything the chip could
not hold or that would make a silently wrong chip:

* a graph that is not routed, or whose mapping breaks the contract of docs/architecture.md;
* node kinds outside the profile's family;
* values that do not fit the hardware widths of the profile (bias, threshold, decays, delays);
* more config entries, axons, route entries or synapse words than a core holds;
* an axon fed by no route or by two, a synapse no axon reaches, a route to the wrong axon.

Every refusal is a :class:`ir.errors.CompileError` naming the core, the object, the value, the
limit and the fix.

Loihi synapse memory follows the nengo-loihi model used by the partitioner's cost model
(``nmc.passes.cost``): per axon, blocks of up to ``synapse.group_size`` synapses, each block a
header (format, count - 1) and the synapses, rounded up to whole words; a (connection, core) pair
uses the *dense* encoding (a weight for every compartment the connection feeds on the core, no
index) when that takes no more words than the *sparse* one (index + weight per non-zero synapse).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emulator import format as F
from ir.errors import CompileError
from ir.graph import Graph, Stage
from ir.nodes import Ref

# Loihi synapse-memory encoding defaults (nengo-loihi SynapseConfig), shared with the cost model
# when it is importable so that the writer and the partitioner count words the same way.
_ENCODING_DEFAULTS: dict[str, Any] = {
    "synapse.group_size": 64,
    "synapse.group_header_bits": 10,
    "synapse.index_bits": [0, 6, 7, 8, 9, 10, 11, 12],
    "synapse.weight_bits": [0, 1, 2, 3, 4, 5, 6, 8],
}


def _encoding(profile: Any) -> dict[str, Any]:
    try:
        from nmc.passes.cost import LOIHI_ENCODING_DEFAULTS as defaults
    except ImportError:  # pragma: no cover - the cost model is another part of the project
        defaults = _ENCODING_DEFAULTS
    return {k: profile.get(k, v) for k, v in defaults.items()}


def _round_up(choices: list[int], bits: int) -> int | None:
    for c in choices:
        if c >= bits:
            return int(c)
    return None


def _block_words(n: np.ndarray | int, bits: int, group: int, header: int, word: int) -> np.ndarray:
    n = np.asarray(n, dtype=np.int64)
    full, rest = n // group, n % group
    per_full = -(-(group * bits + header) // word)
    return full * per_full + np.where(rest > 0, -(-(rest * bits + header) // word), 0)


_FAST_DENSE = True
"""Read dense Loihi weight matrices block-wise per core (False: through the synapse list, the
general path; both give the same bytes, tests compare them)."""


def _or_fields(buf: np.ndarray, values: np.ndarray, starts: np.ndarray) -> None:
    """OR bit fields into ``buf`` (uint64 words of an LSB-first bit stream, little-endian):
    ``values[i]`` (an unsigned pattern of at most 64 bits) at bit ``starts[i]``. Fields must not
    overlap (so OR is the sum of their bits). Sorted starts take one OR-reduction per run of
    fields in the same word; a field crossing a word boundary adds its top bits to the next."""
    starts = np.asarray(starts, np.int64).reshape(-1)
    if starts.size == 0:
        return
    v = np.asarray(values).astype(np.uint64, copy=False).reshape(-1)
    w0 = starts >> 6
    bit = (starts & 63).astype(np.uint64)
    lo = v << bit
    hi = (v >> np.uint64(1)) >> (np.uint64(63) - bit)  # v >> (64 - bit), 0 when bit = 0
    if w0.size < 2 or bool(np.all(w0[1:] >= w0[:-1])):
        first = np.flatnonzero(np.concatenate(([True], w0[1:] != w0[:-1])))
        buf[w0[first]] |= np.bitwise_or.reduceat(lo, first)
    else:
        np.bitwise_or.at(buf, w0, lo)
    nz = np.flatnonzero(hi)
    if nz.size:
        np.bitwise_or.at(buf, w0[nz] + 1, hi[nz])


_TEMPLATES: dict[tuple[int, ...], tuple] = {}


def _axon_template(width: int, sbits: int, group: int, header: int, word: int) -> tuple:
    """Where the ``width`` records of ``sbits`` bits of one axon go, relative to its first word
    (``word`` a multiple of 64): (words, word and bit of each record, first record of each run
    of records in one word, records crossing a word boundary and their shift)."""
    key = (width, sbits, group, header, word)
    t = _TEMPLATES.get(key)
    if t is None:
        k = np.arange(width, dtype=np.int64)
        full = -(-(header + group * sbits) // word) * word
        off = (k // group) * full + header + (k % group) * sbits
        n_blocks = -(-width // group)
        last = width - (n_blocks - 1) * group
        total = (n_blocks - 1) * full + -(-(header + last * sbits) // word) * word
        wi = off >> 6
        bit = (off & 63).astype(np.uint64)
        first = np.flatnonzero(np.concatenate(([True], wi[1:] != wi[:-1])))
        cross = np.flatnonzero((off & 63) + sbits > 64)
        t = (total // 64, bit, first, wi[first], cross, wi[cross] + 1,
             np.uint64(63) - bit[cross])
        _TEMPLATES[key] = t
    return t


def _or_template(buf: np.ndarray, rec: np.ndarray, base_words: np.ndarray, sbits: int,
                 group: int, header: int, word: int, work: np.ndarray | None = None,
                 by_column: bool = False) -> None:
    """OR the records ``rec`` (axons x width, uint64; width x axons with ``by_column``) of axons
    whose blocks start at 64-bit word ``base_words`` into ``buf``: every axon has the same
    layout, so the records of all axons are shifted and OR-ed into their words together.
    ``work``: an array like ``rec`` to shift into (saves allocating one per core)."""
    if by_column:
        width, n_ax = rec.shape
    else:
        n_ax, width = rec.shape
    wpa, bit, first, wfirst, cross, wcross, shift = _axon_template(width, sbits, group, header,
                                                                   word)
    if by_column:
        words_t = np.zeros((wpa, n_ax), np.uint64)
        words_t[wfirst] = np.bitwise_or.reduceat(np.left_shift(rec, bit[:, None], out=work),
                                                 first, axis=0)
        if cross.size:
            words_t[wcross] |= (rec[cross] >> np.uint64(1)) >> shift[:, None]
        words = words_t.T
    else:
        words = np.zeros((n_ax, wpa), np.uint64)
        words[:, wfirst] = np.bitwise_or.reduceat(np.left_shift(rec, bit, out=work), first,
                                                  axis=1)
        if cross.size:
            words[:, wcross] |= (rec[:, cross] >> np.uint64(1)) >> shift
    b0 = int(base_words[0])
    if n_ax == 1 or bool(np.all(np.diff(base_words) == wpa)):
        buf[b0:b0 + n_ax * wpa] |= words.reshape(-1)
    else:
        buf[base_words[:, None] + np.arange(wpa)] |= words


_TABLE_BOUNDS: dict[tuple, tuple] = {}


def _pack_table(table: Any, n: int, columns: dict[str, Any], env: dict[str, int]) -> bytes:
    """``table.pack(n, columns, env)`` (the same bytes): one record word per row, the fields
    checked together; any value that does not fit is left to ``table.pack`` for its error."""
    ws = table.widths(env)
    rb = sum(ws)
    if n == 0 or rb == 0:
        return b""
    if rb > 64 or max(ws) > 32:
        return table.pack(n, columns, env)
    key = (id(table), tuple(ws))
    bounds = _TABLE_BOUNDS.get(key)
    if bounds is None:
        fields = list(zip(table.fields, ws, strict=True))
        lo = np.array([-(1 << (w - 1)) if f.signed and w else 0 for f, w in fields], np.int64)
        hi = np.array([((1 << (w - 1)) - 1 if f.signed else (1 << w) - 1) if w else 0
                       for f, w in fields], np.int64)
        mask = np.array([(1 << w) - 1 for w in ws], np.int64)[:, None]
        offs = np.concatenate([[0], np.cumsum(ws)[:-1]]).astype(np.uint64)[:, None]
        bounds = _TABLE_BOUNDS[key] = (lo, hi, mask, offs, [f.name for f in table.fields])
    lo, hi, mask, offs, names = bounds
    if n <= 16:  # a few records (config tables): Python integers cost less than numpy calls
        lo_l, hi_l = lo.tolist(), hi.tolist()
        total, pos = 0, 0
        try:
            cols = []
            for name in names:
                v = np.asarray(columns.get(name, 0), np.int64)
                cols.append([int(v)] * n if v.ndim == 0 else v.tolist())
            for i in range(n):
                for j, w in enumerate(ws):
                    x = cols[j][i]
                    if not lo_l[j] <= x <= hi_l[j]:
                        return table.pack(n, columns, env)
                    total |= (x & ((1 << w) - 1)) << pos
                    pos += w
        except (IndexError, TypeError, ValueError, OverflowError):
            return table.pack(n, columns, env)
        if any(len(c) != n for c in cols):
            return table.pack(n, columns, env)
        return total.to_bytes((n * rb + 7) // 8, "little")
    vals = np.empty((len(ws), n), np.int64)
    try:
        for j, name in enumerate(names):
            vals[j] = np.asarray(columns.get(name, 0), np.int64)
    except (ValueError, TypeError, OverflowError):
        return table.pack(n, columns, env)
    if bool(np.any(vals.min(axis=1) < lo)) or bool(np.any(vals.max(axis=1) > hi)):
        return table.pack(n, columns, env)
    vals &= mask
    rec = np.bitwise_or.reduce(vals.astype(np.uint64) << offs, axis=0)
    # the low rb bits of every record, one after the other, LSB first
    bits = np.unpackbits(rec.astype("<u8", copy=False).view(np.uint8).reshape(n, 8), axis=1,
                         bitorder="little")
    return np.packbits(bits[:, :rb].reshape(-1), bitorder="little").tobytes()


def _legal_as_is(w: np.ndarray, sign_mode: str, nwb: int) -> np.ndarray | None:
    """``w`` as int16 when it already holds legal Loihi weights (integers in the sign mode's
    range whose dropped low bits are 0: ``legalize_weights`` returns them unchanged), else None
    (the caller legalizes)."""
    from ir.native.loihi import SIGN_MODES, WEIGHT_BITS

    if w.dtype.kind not in "iu" or sign_mode not in SIGN_MODES or not 0 <= int(nwb) <= WEIGHT_BITS:
        return None
    top = (1 << WEIGHT_BITS) - 1
    lo, hi = {"mixed": (-top - 1, top), "excitatory": (0, top), "inhibitory": (-top, 0)}[sign_mode]
    if w.size:
        k = WEIGHT_BITS - int(nwb) + (sign_mode == "mixed")
        if int(w.min()) < lo or int(w.max()) > hi:
            return None
        if int(np.bitwise_or.reduce(w, axis=None)) & ((1 << k) - 1):
            return None
    return w if w.dtype == np.int16 else w.astype(np.int16)


def _weights_fit(lo: int, hi: int, bits: int, wb: int, sign: int) -> bool | None:
    """Whether every weight of a set with minimum ``lo``, maximum ``hi`` and bitwise OR ``bits``
    is stored exactly in ``wb`` bits (what :func:`emulator.format.loihi_weight_encode` accepts:
    the bits it shifts out are 0 and the field is in range); None outside 0..8 bits."""
    if not 0 <= wb <= 8 or sign not in (0, 1, 2):
        return None
    shift = (9 if sign == 0 else 8) - wb
    if bits & ((1 << shift) - 1):
        return False
    if sign == 0:
        f_lo, f_hi = (-(1 << (wb - 1)), (1 << (wb - 1)) - 1) if wb else (0, 0)
        return (f_lo << shift) <= lo and hi <= (f_hi << shift)
    top = ((1 << wb) - 1) << shift
    return 0 <= lo and hi <= top if sign == 1 else -top <= lo and hi <= 0


def _encode_weights(w: np.ndarray, wb: int, sign: int) -> np.ndarray:
    """The stored fields of weights known to fit ``wb`` bits (see _weights_fit): the values of
    :func:`emulator.format.loihi_weight_encode` without its checks."""
    if sign == 0:
        return (w >> (9 - wb)) & ((1 << wb) - 1) if wb else np.zeros(w.shape, np.int64)
    return (w if sign == 1 else -w) >> (8 - wb)


# ------------------------------------------------------------------------------------------
# Public API
# ------------------------------------------------------------------------------------------
def write_image(graph: Graph, profile: Any) -> bytes:
    """The chip image of a routed ``graph`` for ``profile`` (a Profile, a name or a path).

    Raises CompileError when the graph is not routed, does not belong to the profile's family,
    or does not fit (see the module doc)."""
    from nmc.targets import load_profile

    prof = load_profile(profile)
    if prof.family not in WRITERS:
        # a family whose writer lives in a module of its own: nmc.backend.<family>,
        # function write_<family>(graph, profile)
        import importlib

        try:
            mod = importlib.import_module(f"nmc.backend.{prof.family}")
        except ImportError:
            mod = None
        fn = getattr(mod, f"write_{prof.family}", None)
        if fn is not None:
            _check_routed(graph, prof)
            return fn(graph, prof)
    if F.family_layout(prof.family) is None or prof.family not in WRITERS:
        raise CompileError(
            f"target {prof.name}: the image writer has no layout for family {prof.family!r} yet "
            f"(families with a layout: {', '.join(sorted(WRITERS))})"
        )
    _check_routed(graph, prof)
    return WRITERS[prof.family](graph, prof).image()


def save_image(graph: Graph, profile: Any, path: str | os.PathLike) -> Path:
    """Write the image of ``graph`` to ``path`` atomically (temporary file in the same folder,
    then rename): a failed compile leaves no partial image. Returns the path."""
    data = write_image(graph, profile)
    return atomic_write(Path(path), data)


def atomic_write(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and os.replace."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise CompileError(f"cannot write {path}: folder {folder} does not exist")
    from nmc.fileio import atomic_write_bytes

    return atomic_write_bytes(path, data)


# ------------------------------------------------------------------------------------------
# Checks on the mapping
# ------------------------------------------------------------------------------------------
def _check_routed(graph: Graph, prof: Any) -> None:
    if not isinstance(graph, Graph):
        raise CompileError(f"write_image needs an ir.Graph, got {type(graph).__name__}")
    if graph.stage != Stage.ROUTED:
        raise CompileError(
            f"graph {graph.name} is at stage {graph.stage.value}; a chip image needs a routed graph "
            "(run the partition, place and route passes, e.g. nmc.passes.flow.compile_graph)"
        )
    m = graph.mapping
    if not isinstance(m, dict):
        raise CompileError(f"graph {graph.name} is routed but has no mapping dict")
    for key in ("cores", "routes", "inputs", "outputs"):
        if key not in m:
            raise CompileError(
                f"graph {graph.name}: mapping has no {key!r} (docs/architecture.md, Mapping "
                "contract); run the route pass"
            )
    target = graph.attrs.get("target")
    if target is not None and target != prof.name:
        raise CompileError(
            f"graph {graph.name} was compiled for target {target!r}, not {prof.name!r}; "
            f"compile it for {prof.name} or write the image for {target}"
        )
    cores = m["cores"]
    if not isinstance(cores, list) or not cores:
        raise CompileError(f"graph {graph.name}: mapping['cores'] is empty; nothing to place")
    for i, c in enumerate(cores):
        if not isinstance(c, dict) or c.get("id") != i:
            raise CompileError(
                f"graph {graph.name}: mapping core entry {i} has id {c.get('id') if isinstance(c, dict) else c!r}; "
                "core ids must be 0..n-1 in order"
            )
        for key in ("slices", "chip", "x", "y", "axons"):
            if key not in c:
                raise CompileError(f"graph {graph.name}: core {i} has no {key!r}; run place and route")


def _json_safe(v: Any) -> Any:
    """A JSON-compatible copy (tuples -> lists, numpy scalars -> Python; others -> str)."""
    if isinstance(v, dict):
        return {str(k): _json_safe(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_safe(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    if v is None or isinstance(v, bool | int | float | str):
        return v
    return str(v)


def model_hash(graph: Graph) -> str:
    """sha256 of what the graph computes: name, dt, nodes (kind and fields), edges, constants.

    Mapping and attrs are left out, so the hash names the model, not how it was placed."""
    h = hashlib.sha256()
    head = {
        "name": graph.name, "dt": repr(graph.dt),
        "nodes": [[n.kind, n.name, [[k, repr(v)] for k, v in n.fields().items()]]
                  for n in graph.nodes.values()],
        "edges": [list(e) for e in graph.edges],
    }
    h.update(json.dumps(head, sort_keys=True).encode())
    for k in sorted(graph.constants):
        a = np.ascontiguousarray(graph.constants[k])
        h.update(f"{k}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.reshape(-1).view(np.uint8).data)  # the bytes of a.tobytes(), not copied
    return h.hexdigest()


# ------------------------------------------------------------------------------------------
# Shared section builders
# ------------------------------------------------------------------------------------------
class Strings:
    """The STRINGS table: every name interned once, ids in order of first use."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.items: list[str] = []

    def __call__(self, s: str) -> int:
        s = str(s)
        if s not in self.ids:
            self.ids[s] = len(self.items)
            self.items.append(s)
        return self.ids[s]

    def payload(self) -> bytes:
        blobs = [s.encode("utf-8") for s in self.items]
        offs = np.zeros(len(blobs) + 1, np.uint32)
        np.cumsum([len(b) for b in blobs], out=offs[1:])
        return (F.STRINGS_HEADER.pack(dict(n_strings=len(blobs), blob_bytes=int(offs[-1])))
                + offs.astype("<u4").tobytes() + b"".join(blobs))


def _dims(shape: tuple[int, ...]) -> tuple[int, list[int]]:
    shape = tuple(int(s) for s in shape)
    if len(shape) > 4:  # the image keeps up to 4 axes; a longer shape is stored flat
        shape = (math.prod(shape),)
    return len(shape), list(shape) + [0] * (4 - len(shape))


@dataclass
class _Conn:
    """A connection node as the writer sees it: legal weights by source (CSC order)."""

    name: str
    node: Any
    source: str
    targets: list[str]
    n_in: int
    n_out: int
    pre: np.ndarray | None  # sorted by (pre, post), stable (None until _coo builds it)
    post: np.ndarray | None
    w: np.ndarray | None
    indptr: np.ndarray | None  # by pre
    row_ptr: np.ndarray | None  # by post: entries row_order[row_ptr[r]:row_ptr[r+1]] have post r
    row_order: np.ndarray | None
    delay: int
    weight_exp: int = 0  # loihi
    nwb: int = 8  # loihi
    sign: int = 0  # loihi
    axon_types: np.ndarray | None = None  # truenorth: the type of every source's axon
    dense: np.ndarray | None = None  # the (out, in) matrix: loihi legal weights, truenorth crossbar


@dataclass
class _Net:
    pops: dict[str, Any]
    pop_index: dict[str, int]
    inputs: dict[str, Any]
    conns: dict[str, _Conn]
    outputs: dict[str, str]
    into: dict[str, list[str]] = field(default_factory=dict)


def _coo_fields(n_in: int, n_out: int, post: np.ndarray, pre: np.ndarray, vals: np.ndarray
                ) -> dict[str, np.ndarray]:
    """The synapse-list fields of a :class:`_Conn` from COO triplets (indices in range)."""
    # Whole-network synapse arrays are kept compact (int32 indices, int16 weights when
    # they fit): at chip size they are the writer's largest memory. Per-core slices are
    # widened back to int64 in _conn_synapses, so the arithmetic is unchanged.
    idx_t = np.int32 if max(n_in, n_out, post.size) < 2 ** 31 else np.int64
    pre, post = pre.astype(idx_t, copy=False), post.astype(idx_t, copy=False)
    key = pre.astype(np.int64) * n_out + post
    # stable (pre, post) order; readers that emit it already (dense weights read
    # column-major) skip the sort: an already-sorted array is the stable sort's identity
    if key.size > 1 and not bool(np.all(key[1:] >= key[:-1])):
        order = np.argsort(key, kind="stable")
        pre, post, vals = pre[order], post[order], vals[order]
    del key
    vals = np.asarray(vals)
    if vals.size and int(vals.min()) >= -(1 << 15) and int(vals.max()) < (1 << 15):
        vals = vals.astype(np.int16, copy=False)
    else:
        vals = vals.astype(np.int64, copy=False)
    indptr = np.zeros(n_in + 1, np.int64)
    np.cumsum(np.bincount(pre, minlength=n_in), out=indptr[1:])
    # by post, then pre (entries are by pre); a 16-bit key lets numpy radix-sort
    skey = post.astype(np.uint16) if n_out <= (1 << 16) else post
    row_order = np.argsort(skey, kind="stable").astype(idx_t, copy=False)
    del skey
    row_ptr = np.zeros(n_out + 1, np.int64)
    np.cumsum(np.bincount(post, minlength=n_out), out=row_ptr[1:])
    return dict(pre=pre, post=post, w=vals, indptr=indptr, row_ptr=row_ptr, row_order=row_order)


def output_ports(g: Graph, outputs: dict[str, str], pops: dict[str, Any], m: dict,
                 core_of: dict[str, np.ndarray], local_of: dict[str, np.ndarray], strings: Any,
                 ports: list[dict], out_entries: list[dict], unit: str = "neurons") -> None:
    """Append the PORT record and OUT_ENTRY records of every Output (chip -> host): each entry
    ``[core, local_base, start, stop]`` of ``m["outputs"]`` is checked against where the mapping
    placed the population (``core_of``/``local_of``), and every element must be covered exactly
    once. Shared by every family's writer."""
    lat = m.get("latency") or {}
    extra = m.get("extra_latency") or {}
    for o, pop in outputs.items():
        onode = g.nodes[o]
        width = int(onode.size)
        if width != pops[pop].size:
            raise CompileError(f"Output {o}: width {width} differs from population {pop}")
        covered = np.zeros(width, np.int64)
        first = len(out_entries)
        for ei, ent in enumerate(m["outputs"].get(o, [])):
            try:
                core, base, s, e = int(ent[0]), int(ent[1]), int(ent[2]), int(ent[3])
            except (TypeError, ValueError, IndexError):
                raise CompileError(f"outputs[{o}][{ei}] = {ent!r} is not [core, local_base, "
                                   "start, stop]") from None
            if not 0 <= s < e <= width:
                raise CompileError(f"outputs[{o}][{ei}]: elements {s}..{e} outside 0..{width}")
            ks = np.arange(s, e)
            if not (np.all(core_of[pop][ks] == core)
                    and np.all(local_of[pop][ks] == base + ks - s)):
                raise CompileError(f"outputs[{o}][{ei}]: core {core} {unit} {base}.. do not hold "
                                   f"{pop}[{s}:{e}]")
            covered[s:e] += 1
            out_entries.append(dict(core=core, neuron=base, start=s, stop=e))
        if np.any(covered != 1):
            k = int(np.flatnonzero(covered != 1)[0])
            raise CompileError(f"Output {o}: element {k} is mapped {int(covered[k])} times; "
                               "every output element needs exactly one entry")
        nd, dims = _dims(onode.in_shape)
        lv = lat.get(o)
        ports.append(dict(name=strings(o), width=width,
                          kind=int(bool(getattr(pops[pop], "readout", False))), ndim=nd,
                          dims=dims, first=first, count=len(out_entries) - first,
                          latency=-1 if lv is None else int(lv),
                          extra_latency=int(extra.get(o) or 0)))


def _resolve(graph: Graph, name: str) -> str:
    seen = set()
    while graph.nodes[name].kind == "Flatten" and name not in seen:
        seen.add(name)
        ps = graph.predecessors(name)
        if len(ps) != 1:
            raise CompileError(f"Flatten {name}: needs exactly one source, has {len(ps)}")
        name = ps[0]
    return name


# ------------------------------------------------------------------------------------------
# Loihi
# ------------------------------------------------------------------------------------------
class _Writer:
    """Builds the family-independent sections of an image and the checks on the mapping; a
    family subclass reads its connections (:meth:`_read_conn`) and lays out its cores
    (:meth:`_core`)."""

    NEURON_KINDS: tuple[str, ...] = ()
    CONN_KINDS: tuple[str, ...] = ()
    NATIVE = ""  # the ir.native module whose constants the image records
    NATIVE_SOURCE = "code: {module}.{const} (the family's datapath)"
    AXONS_KEY = "core.axons_in"  # the profile key bounding a core's input axons

    def __init__(self, graph: Graph, prof: Any):
        self.g = graph
        self.prof = prof
        self.m = graph.mapping
        self.strings = Strings()
        self.strings("")  # id 0 is the empty string
        self._param_cache: dict[tuple[str, str], np.ndarray] = {}
        self.params = self._params()
        self.net = self._network()

    # ---- parameters ------------------------------------------------------------------------
    def _params(self) -> dict[str, tuple[Any, str]]:
        import importlib

        native = importlib.import_module(self.NATIVE)
        prof = self.prof
        out: dict[str, tuple[Any, str]] = {}
        for p in F.PARAMS_BY_FAMILY[prof.family]:
            if p.derive:
                if p.derive == "weight_exp":
                    out[p.key] = (4, "ours: format field width (signed -8..7)")
                elif p.derive == "bitlen:synapse.group_size-1":
                    gs = int(prof.get("synapse.group_size", 64))
                    out[p.key] = (F.bitlen(gs - 1), "derived: bits of synapse.group_size - 1")
                elif p.derive == "header-count":
                    continue  # after the loop: needs synapse.count_bits
                elif p.derive == "zero":
                    out[p.key] = (0, "derived: a TrueNorth core scans every axon for every "
                                     "neuron, whatever the activity (RANC)")
                elif p.derive == "axons+2":
                    out[p.key] = (int(prof.get("core.axons")) + 2,
                                  "derived: core.axons + 2 clocks per neuron (RANC: neurons x "
                                  "(axons + 2) clocks per tick)")
                elif p.derive.startswith("bitlen:"):
                    src = p.derive.split(":", 1)[1]
                    minus = src.endswith("-1")
                    src = src[:-2] if minus else src
                    out[p.key] = (F.bitlen(int(prof.get(src)) - minus),
                                  f"derived: bit length of {src}{' - 1' if minus else ''}")
                elif p.derive.startswith("native:"):
                    const = p.derive.split(":", 1)[1]
                    out[p.key] = (int(getattr(native, const)),
                                  self.NATIVE_SOURCE.format(module=self.NATIVE, const=const))
                continue
            value = prof.get(p.profile_key, None)
            if value is not None:
                out[p.key] = (value, prof.source(p.profile_key) if p.profile_key in prof.sources
                              else "ours: profile value without a source tag")
            elif p.default is not None:
                out[p.key] = (p.default, p.default_source)
            else:
                raise CompileError(
                    f"target {prof.name}: the profile has no {p.profile_key}, which the chip image "
                    "needs; add it to the profile"
                )
            if p.type == "int" and not isinstance(out[p.key][0], int):
                raise CompileError(f"target {prof.name}: {p.key} = {out[p.key][0]!r} must be an integer")
        self._check_params(out)
        return out

    def _check_params(self, out: dict[str, tuple[Any, str]]) -> None:
        """Rules between parameters of the family (raise CompileError)."""

    def _read_conn(self, node: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
        """A connection node's synapses as COO ``(post, pre, value)`` (zeros dropped) and the
        family's extra fields for :class:`_Conn`."""
        raise NotImplementedError

    def _core(self, cid: int) -> bytes:
        raise NotImplementedError

    def P(self, key: str) -> Any:
        return self.params[key][0]

    # ---- network view ----------------------------------------------------------------------
    def _network(self) -> _Net:
        g = self.g
        pops: dict[str, Any] = {}
        inputs: dict[str, Any] = {}
        conns: dict[str, _Conn] = {}
        outputs: dict[str, str] = {}
        for node in g.nodes.values():
            if node.kind == "Input":
                inputs[node.name] = node
            elif node.category == "neuron":
                if node.kind not in self.NEURON_KINDS:
                    raise CompileError(
                        f"population {node.name} is of kind {node.kind}; a {self.prof.family} image "
                        f"holds {', '.join(self.NEURON_KINDS)} only (quantize for {self.prof.name})"
                    )
                pops[node.name] = node
        for node in g.nodes.values():
            if node.kind in ("Input", "Output", "Flatten") or node.category == "neuron":
                continue
            if node.kind not in self.CONN_KINDS:
                raise CompileError(
                    f"node {node.name} is of kind {node.kind}; a {self.prof.family} image holds "
                    f"connections of kinds {', '.join(self.CONN_KINDS)} only"
                )
            preds = g.predecessors(node.name)
            if len(preds) != 1:
                raise CompileError(f"connection {node.name}: needs exactly one source")
            src = _resolve(g, preds[0])
            if src not in pops and src not in inputs:
                raise CompileError(f"connection {node.name}: source {src} is neither a population "
                                   "nor an input")
            if src in pops and getattr(pops[src], "readout", False):
                raise CompileError(f"connection {node.name}: source {src} is a readout "
                                   "population; it does not spike")
            targets = []
            stack = list(g.successors(node.name))
            while stack:
                s = stack.pop(0)
                k = g.nodes[s]
                if k.kind == "Flatten":
                    stack.extend(g.successors(s))
                elif s in pops:
                    targets.append(s)
                else:
                    raise CompileError(f"connection {node.name} feeds {k.kind} {s}; a connection "
                                       "must feed populations")
            n_in, n_out = int(node.in_features), int(node.out_features)
            dense = self._read_dense(node)
            if dense is not None:
                # the synapse list (_coo) is built only if a core needs it (_conn_synapses)
                mat, extra = dense
                conns[node.name] = _Conn(
                    name=node.name, node=node, source=src, targets=targets, n_in=n_in,
                    n_out=n_out, pre=None, post=None, w=None, indptr=None, row_ptr=None,
                    row_order=None, delay=int(node.delay), dense=mat, **extra)
                continue
            post, pre, vals, extra = self._read_conn(node)
            if post.size and (post.min() < 0 or post.max() >= n_out or pre.min() < 0
                              or pre.max() >= n_in):
                raise CompileError(f"connection {node.name}: COO index out of range")
            conns[node.name] = _Conn(name=node.name, node=node, source=src, targets=targets,
                                     n_in=n_in, n_out=n_out, delay=int(node.delay), **extra,
                                     **_coo_fields(n_in, n_out, post, pre, vals))
        for o in g.outputs:
            ps = g.predecessors(o.name)
            if len(ps) != 1:
                raise CompileError(f"Output {o.name}: needs exactly one source")
            src = _resolve(g, ps[0])
            if src not in pops:
                raise CompileError(f"Output {o.name}: reads {src}, which is not a population on "
                                   "the chip")
            outputs[o.name] = src
        net = _Net(pops=pops, pop_index={p: i for i, p in enumerate(pops)}, inputs=inputs,
                   conns=conns, outputs=outputs)
        net.into = {p: [] for p in pops}
        for c, cc in conns.items():
            for t in dict.fromkeys(cc.targets):
                if t in net.into:
                    net.into[t].append(c)
        return net

    def _core_payloads(self) -> list[bytes]:
        """Every core's CORE payload, in core order. A connection read as a matrix gets its
        synapse list only while cores that use it are written: after its last core the list is
        dropped (it would be rebuilt, identically, from the matrix), so at chip size the writer
        never holds the whole network's synapse list."""
        names = list(self.net.conns)
        last: dict[int, int] = {}
        for cid in range(self.n_cores):
            for k in np.unique(self.axon_conn[cid]).tolist():
                last[k] = cid
        done: dict[int, list[str]] = {}
        for k, cid in last.items():
            done.setdefault(cid, []).append(names[k])
        out = []
        for cid in range(self.n_cores):
            out.append(self._core(cid))
            for conn in done.get(cid, ()):
                cc = self.net.conns[conn]
                if cc.dense is not None:
                    cc.pre = cc.post = cc.w = cc.indptr = cc.row_ptr = cc.row_order = None
        return out

    def _coo(self, conn: str) -> _Conn:
        """The connection with its synapse list (built from the dense matrix on first use)."""
        cc = self.net.conns[conn]
        if cc.pre is None:
            post, pre, vals = self._coo_of_dense(cc)
            for k, v in _coo_fields(cc.n_in, cc.n_out, post, pre, vals).items():
                setattr(cc, k, v)
        return cc

    def _coo_of_dense(self, cc: _Conn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _read_dense(self, node: Any) -> tuple[np.ndarray, dict] | None:
        """A family's dense-matrix reader (None: the node is read as a synapse list)."""
        return None

    def _pop_param(self, pop: str, fname: str) -> np.ndarray:
        """A population parameter as int64 per neuron (computed once per population)."""
        key = (pop, fname)
        if key not in self._param_cache:
            self._param_cache[key] = self._pop_param_uncached(pop, fname)
        return self._param_cache[key]

    def _pop_param_uncached(self, pop: str, fname: str) -> np.ndarray:
        node = self.net.pops[pop]
        v = getattr(node, fname)
        arr = self.g.const(v) if isinstance(v, Ref) else np.asarray(v)
        a = np.broadcast_to(np.asarray(arr), node.out_shape).reshape(-1)
        if a.dtype.kind == "f":
            if not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
                raise CompileError(f"population {pop}: {fname} holds non-integer values")
        return a.astype(np.int64)

    def _slices(self, cid: int) -> list[tuple[str, int, int]]:
        return [(s[0], int(s[1]), int(s[2])) for s in self.m["cores"][cid]["slices"]]

    def _conn_synapses(self, cid: int, conn: str, ax: np.ndarray, where: str
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The synapses of ``conn`` onto core ``cid``'s compartments: (entry ids, axon,
        compartment), one per entry and target population (a connection may feed several); every
        one must have an axon on the core (the route pass's job) or this is a CompileError."""
        cc = self._coo(conn)
        axon_of_pre = np.full(cc.n_in, -1, np.int64)
        axon_of_pre[self.axon_pre[cid][ax]] = ax
        e_l, a_l, c_l = [], [], []
        local = 0
        for p, s, e in self._slices(cid):
            if p in cc.targets:
                ents = cc.row_order[cc.row_ptr[s]:cc.row_ptr[e]].astype(np.int64)
                a = axon_of_pre[cc.pre[ents]]
                if np.any(a < 0):
                    k = int(np.flatnonzero(a < 0)[0])
                    raise CompileError(
                        f"{where}: connection {conn} has a synapse from source "
                        f"{int(cc.pre[ents[k]])} onto {p}[{int(cc.post[ents[k]])}] on this core "
                        "but no axon for that source here; the route pass must give every "
                        "source with a synapse on the core an axon")
                e_l.append(ents)
                a_l.append(a)
                c_l.append(local + cc.post[ents].astype(np.int64) - s)
            local += e - s
        z = np.zeros(0, np.int64)
        return (np.concatenate(e_l) if e_l else z, np.concatenate(a_l) if a_l else z,
                np.concatenate(c_l) if c_l else z)


    # ---- image -------------------------------------------------------------------------------
    def image(self) -> bytes:
        cores = self.m["cores"]
        self.n_cores = len(cores)
        mesh_x, mesh_y = int(self.prof.get("chip.mesh_x")), int(self.prof.get("chip.mesh_y"))
        self.mesh = (mesh_x, mesh_y)
        max_chips = int(self.prof.get("chip.max_chips"))
        coords = set()
        for c in cores:
            ch, x, y = int(c["chip"]), int(c["x"]), int(c["y"])
            if not (0 <= ch < max_chips and 0 <= x < mesh_x and 0 <= y < mesh_y):
                raise CompileError(
                    f"core {c['id']}: position chip {ch} ({x}, {y}) is outside the mesh of target "
                    f"{self.prof.name} ({max_chips} chips of {mesh_x} x {mesh_y}); re-run place"
                )
            if (ch, x, y) in coords:
                raise CompileError(f"core {c['id']}: position chip {ch} ({x}, {y}) is used twice")
            coords.add((ch, x, y))
        self.n_chips = max(int(c["chip"]) for c in cores) + 1
        self._locate()
        self._axon_tables()
        self._build_routes()
        core_payloads = self._core_payloads()
        iomap = self._iomap()
        self._check_feeds()
        symbols = self._symbols()
        params = self._params_payload()
        prov = self._provenance()
        meta = F.META.pack(dict(
            family=F.FAMILY_IDS[self.prof.family], n_cores=self.n_cores, n_chips=self.n_chips,
            mesh_x=mesh_x, mesh_y=mesh_y, profile_name=self.strings(self.prof.name),
            graph_name=self.strings(self.g.name),
            profile_sha256=bytes.fromhex(self.prof.sha256), dt=float(self.g.dt),
            n_populations=len(self.net.pops), n_inputs=len(self.net.inputs),
            n_outputs=len(self.net.outputs)))
        sections = [(F.Kind.META, 0, meta), (F.Kind.STRINGS, 0, self.strings.payload()),
                    (F.Kind.PARAMS, 0, params), (F.Kind.IOMAP, 0, iomap),
                    (F.Kind.SYMBOLS, 0, symbols), (F.Kind.PROVENANCE, 0, prov)]
        sections += [(F.Kind.CORE, i, p) for i, p in enumerate(core_payloads)]
        return F.assemble(sections)

    def _params_payload(self) -> bytes:
        return params_payload(self.strings, self.params, F.PARAMS_BY_FAMILY[self.prof.family])

    def _provenance(self) -> bytes:
        return provenance_bytes(self.g, self.prof, self.m)

    def _symbols(self) -> bytes:
        recs = []
        for p, node in self.net.pops.items():
            nd, dims = _dims(node.out_shape)
            recs.append(dict(name=self.strings(p), size=int(node.size),
                             readout=int(bool(getattr(node, "readout", False))), ndim=nd,
                             dims=dims))
        return F.COUNT_HEADER.pack(dict(count=len(recs))) + F.POPULATION.pack(recs)

    # ---- where every neuron lives ----------------------------------------------------------------
    def _locate(self) -> None:
        net = self.net
        self.core_of = {p: np.full(n.size, -1, np.int64) for p, n in net.pops.items()}
        self.local_of = {p: np.full(n.size, -1, np.int64) for p, n in net.pops.items()}
        self.core_neurons: list[int] = []
        for cid, c in enumerate(self.m["cores"]):
            base = 0
            for sl in c["slices"]:
                if not (isinstance(sl, list | tuple) and len(sl) == 3):
                    raise CompileError(f"core {cid}: slice {sl!r} is not [population, start, stop]")
                p, s, e = sl[0], int(sl[1]), int(sl[2])
                if p not in net.pops:
                    raise CompileError(f"core {cid}: slice names {p!r}, which is not a population")
                if not 0 <= s < e <= net.pops[p].size:
                    raise CompileError(f"core {cid}: slice {p}[{s}:{e}] is outside 0..{net.pops[p].size}")
                if np.any(self.core_of[p][s:e] >= 0):
                    raise CompileError(f"core {cid}: neurons of {p}[{s}:{e}] are already on another core")
                self.core_of[p][s:e] = cid
                self.local_of[p][s:e] = np.arange(base, base + e - s)
                base += e - s
            self.core_neurons.append(base)
            limit = int(self.P("core.neurons"))
            if base > limit:
                raise CompileError(f"core {cid}: {base} compartments > {limit} (target "
                                   f"{self.prof.name}); partition with fewer neurons per core")
            if base == 0:
                raise CompileError(f"core {cid}: holds no neurons")
        for p, arr in self.core_of.items():
            if np.any(arr < 0):
                k = int(np.flatnonzero(arr < 0)[0])
                raise CompileError(f"population {p}: neuron {k} is on no core; run partition")

    # ---- axon groups: which (connection, source) each core axon carries --------------------------
    def _axon_tables(self) -> None:
        net = self.net
        self.axon_conn: list[np.ndarray] = []
        self.axon_pre: list[np.ndarray] = []
        conn_ids = {c: i for i, c in enumerate(net.conns)}
        self.conn_ids = conn_ids
        self.conn_names = list(net.conns)
        limit = int(self.P(self.AXONS_KEY))
        for cid, c in enumerate(self.m["cores"]):
            cs, ps = [], []
            for grp in c["axons"]:
                if not (isinstance(grp, list | tuple) and len(grp) == 3) or grp[0] not in net.conns:
                    raise CompileError(f"core {cid}: axon group {grp!r} is not [connection, start, stop]")
                conn, a, b = grp[0], int(grp[1]), int(grp[2])
                if not 0 <= a < b <= net.conns[conn].n_in:
                    raise CompileError(f"core {cid}: axon group {conn}[{a}:{b}] is outside the "
                                       f"connection's {net.conns[conn].n_in} sources")
                cs.append(np.full(b - a, conn_ids[conn], np.int64))
                ps.append(np.arange(a, b, dtype=np.int64))
            ac = np.concatenate(cs) if cs else np.zeros(0, np.int64)
            ap = np.concatenate(ps) if ps else np.zeros(0, np.int64)
            if ac.size > limit:
                raise CompileError(f"core {cid}: {ac.size} input axons > {limit} ({self.AXONS_KEY}, "
                                   f"target {self.prof.name}); partition with fewer neurons per "
                                   "core")
            key = ac * (1 << 32) + ap
            if np.unique(key).size != key.size:
                raise CompileError(f"core {cid}: two axons carry the same (connection, source); "
                                   "the route pass must give each source one axon per core")
            self.axon_conn.append(ac)
            self.axon_pre.append(ap)

    # ---- one core ----------------------------------------------------------------------------------
    # ---- routes and inputs: every axon fed exactly once --------------------------------------
    def _axon_index(self, core: np.ndarray | int, conn: np.ndarray | str, pre: np.ndarray,
                    axon: np.ndarray, what: Any) -> None:
        """Check that ``axon`` of ``core`` carries (conn, pre) for every element and count the
        feeds. ``core``/``conn`` are scalars or per-element arrays; ``what(k)`` names element k."""
        pre = np.asarray(pre, np.int64)
        axon = np.asarray(axon, np.int64)
        core = np.broadcast_to(np.asarray(core, np.int64), pre.shape)
        cid = (np.broadcast_to(np.asarray(self.conn_ids[conn] if isinstance(conn, str) else conn,
                                          np.int64), pre.shape))
        name = (lambda k: what) if isinstance(what, str) else what
        bad = np.flatnonzero((core < 0) | (core >= self.n_cores))
        if bad.size:
            k = int(bad[0])
            raise CompileError(f"{name(k)}: target core {int(core[k])} does not exist "
                               f"(0..{self.n_cores - 1})")
        n_ax = self.ax_count[core]
        bad = np.flatnonzero((axon < 0) | (axon >= n_ax))
        if bad.size:
            k = int(bad[0])
            raise CompileError(f"{name(k)}: axon {int(axon[k])} of core {int(core[k])} does not "
                               f"exist (the core has {int(n_ax[k])} axons)")
        g = self.ax_off[core] + axon
        bad = np.flatnonzero((self.g_ax_conn[g] != cid) | (self.g_ax_pre[g] != pre))
        if bad.size:
            k = int(bad[0])
            conns = list(self.net.conns)
            raise CompileError(
                f"{name(k)}: source {int(pre[k])} of {conns[cid[k]]} is sent to axon "
                f"{int(axon[k])} of core {int(core[k])}, which carries {conns[self.g_ax_conn[g[k]]]} "
                f"source {int(self.g_ax_pre[g[k]])}; the route does not match the core's axon groups")
        np.add.at(self.g_feeds, g, 1)

    def _build_routes(self) -> None:
        net = self.net
        self.ax_count = np.array([a.size for a in self.axon_conn], np.int64)
        self.ax_off = np.concatenate([[0], np.cumsum(self.ax_count)]).astype(np.int64)
        self.g_ax_conn = np.concatenate(self.axon_conn) if self.axon_conn else np.zeros(0, np.int64)
        self.g_ax_pre = np.concatenate(self.axon_pre) if self.axon_pre else np.zeros(0, np.int64)
        self.g_feeds = np.zeros(self.g_ax_conn.size, np.int64)
        pops = list(net.pops)
        pop_id = {p: i for i, p in enumerate(pops)}
        pop_off = np.concatenate([[0], np.cumsum([net.pops[p].size for p in pops])]).astype(np.int64)
        g_core = np.concatenate([self.core_of[p] for p in pops])
        g_local = np.concatenate([self.local_of[p] for p in pops])
        rows = []  # (route index, target index, population, start, stop, core, connection, base)
        for ri, r in enumerate(self.m["routes"]):
            try:
                src, s, e, targets = r["source"], int(r["start"]), int(r["stop"]), r["targets"]
            except (KeyError, TypeError, ValueError):
                raise CompileError(f"routes[{ri}] = {r!r} is not {{source, start, stop, targets}}") from None
            if src not in net.pops:
                raise CompileError(f"routes[{ri}]: source {src!r} is not a population")
            if not 0 <= s < e <= net.pops[src].size:
                raise CompileError(f"routes[{ri}]: {src}[{s}:{e}] is outside the population")
            for ti, t in enumerate(targets):
                try:
                    core, conn, base = int(t[0]), t[1], int(t[2])
                except (TypeError, ValueError, IndexError):
                    raise CompileError(f"routes[{ri}]: target {t!r} is not [core, connection, "
                                       "axon_base]") from None
                if conn not in net.conns or net.conns[conn].source != src:
                    raise CompileError(f"routes[{ri}]: connection {conn!r} is not fed by {src}")
                rows.append((ri, ti, pop_id[src], s, e, core, self.conn_ids[conn], base))
        empty = np.zeros(0, np.int64)
        self.route_dest = {cid: dict(local=empty, chip=empty, x=empty, y=empty, axon=empty, n=0)
                           for cid in range(self.n_cores)}
        if not rows:
            return
        R = np.array(rows, np.int64)
        ln = R[:, 4] - R[:, 3]
        row = np.repeat(np.arange(len(R)), ln)
        k = np.repeat(R[:, 3], ln) + np.arange(int(ln.sum())) - np.repeat(np.cumsum(ln) - ln, ln)
        core, conn, base, s0 = R[row, 5], R[row, 6], R[row, 7], R[row, 3]
        axon = base + k - s0

        def what(i: int) -> str:
            r = R[row[i]]
            return (f"routes[{r[0]}] ({pops[r[2]]}[{r[3]}:{r[4]}] -> core {r[5]} "
                    f"{list(net.conns)[r[6]]})")

        self._axon_index(core, conn, k, axon, what)
        gi = pop_off[R[row, 2]] + k
        src_core = g_core[gi]
        pos = np.array([[int(c["chip"]), int(c["x"]), int(c["y"])] for c in self.m["cores"]],
                       np.int64)
        key = R[row, 0] * (1 << 24) + R[row, 1]
        order = np.lexsort((key, g_local[gi], src_core))  # by core, compartment, route order
        src_core, loc, dest, axon = src_core[order], g_local[gi][order], core[order], axon[order]
        bounds = np.searchsorted(src_core, np.arange(self.n_cores + 1))
        for cid in range(self.n_cores):
            a, b = bounds[cid], bounds[cid + 1]
            if a == b:
                continue
            self.route_dest[cid] = dict(local=loc[a:b], chip=pos[dest[a:b], 0], x=pos[dest[a:b], 1],
                                        y=pos[dest[a:b], 2], axon=axon[a:b], n=int(b - a))

    def _check_feeds(self) -> None:
        for cid in range(self.n_cores):
            f = self.g_feeds[self.ax_off[cid]:self.ax_off[cid + 1]]
            if f.size and np.any(f != 1):
                k = int(np.flatnonzero(f != 1)[0])
                conn = list(self.net.conns)[self.axon_conn[cid][k]]
                raise CompileError(
                    f"core {cid}: axon {k} ({conn} source {int(self.axon_pre[cid][k])}) is fed "
                    f"{int(f[k])} times; every axon needs exactly one route or input entry")

    # ---- I/O map ------------------------------------------------------------------------------
    def _iomap(self) -> bytes:
        net = self.net
        ports, in_entries, out_entries = [], [], []
        for x, node in net.inputs.items():
            first = len(in_entries)
            for ei, ent in enumerate(self.m["inputs"].get(x, [])):
                try:
                    core, conn, base, s, e = int(ent[0]), ent[1], int(ent[2]), int(ent[3]), int(ent[4])
                except (TypeError, ValueError, IndexError):
                    raise CompileError(f"inputs[{x}][{ei}] = {ent!r} is not [core, connection, "
                                       "axon_base, start, stop]") from None
                if conn not in net.conns or net.conns[conn].source != x:
                    raise CompileError(f"inputs[{x}][{ei}]: connection {conn!r} is not fed by {x}")
                if not 0 <= s < e <= node.size:
                    raise CompileError(f"inputs[{x}][{ei}]: elements {s}..{e} outside 0..{node.size}")
                ks = np.arange(s, e, dtype=np.int64)
                self._axon_index(core, conn, ks, base + ks - s, f"inputs[{x}][{ei}]")
                in_entries.append(dict(core=core, axon=base, start=s, stop=e))
            nd, dims = _dims(node.out_shape)
            ports.append(dict(name=self.strings(x), width=int(node.size), kind=0, ndim=nd,
                              dims=dims, first=first, count=len(in_entries) - first, latency=-1,
                              extra_latency=0))
        output_ports(self.g, net.outputs, net.pops, self.m, self.core_of, self.local_of,
                     self.strings, ports, out_entries, unit="compartments")
        head = F.IOMAP_HEADER.pack(dict(n_inputs=len(net.inputs), n_outputs=len(net.outputs),
                                        n_in_entries=len(in_entries),
                                        n_out_entries=len(out_entries)))
        return (head + F.PORT.pack(ports) + F.IN_ENTRY.pack(in_entries)
                + F.OUT_ENTRY.pack(out_entries))


class _LoihiWriter(_Writer):
    """Builds the CORE sections of a loihi-family image."""

    NEURON_KINDS = ("LoihiCompartment",)
    CONN_KINDS = ("LoihiDense", "LoihiSparse")
    NATIVE = "ir.native.loihi"
    NATIVE_SOURCE = "code: Lava PyLifModelBitAcc via {module}.{const}"

    def __init__(self, graph: Graph, prof: Any):
        super().__init__(graph, prof)
        self.enc = _encoding(prof)
        self._env_base: dict[str, int] | None = None
        self._scratch: dict[str, np.ndarray] = {}

    def _read_dense(self, node: Any) -> tuple[np.ndarray, dict] | None:
        """A LoihiDense node's legal weights as an (out, in) int16 matrix (the graph's own array
        when it holds legal integers already), and the extra _Conn fields; None for other kinds."""
        from ir.native.loihi import legalize_weights

        if node.kind != "LoihiDense":
            return None
        n_in, n_out = int(node.in_features), int(node.out_features)
        w = np.asarray(self.g.const(node.weight)).reshape(n_out, n_in)
        lw = _legal_as_is(w, node.sign_mode, node.num_weight_bits)
        if lw is None:
            lw = legalize_weights(w, node.sign_mode, node.num_weight_bits).astype(np.int16)
        return lw, dict(weight_exp=int(node.weight_exp), nwb=int(node.num_weight_bits),
                        sign=F.LOIHI_SIGN_MODES.index(node.sign_mode))

    def _coo_of_dense(self, cc: _Conn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # column-major (by source, then target): the order _coo_conn keeps, so it need not sort
        lw = np.ascontiguousarray(cc.dense.T)
        pre, post = np.nonzero(lw)
        return post, pre, lw[pre, post]

    def _read_conn(self, node: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
        from ir.native.loihi import legalize_weights

        g = self.g
        if node.kind == "LoihiDense":  # read by _read_dense; here for completeness
            lw, extra = self._read_dense(node)
            post, pre, vals = self._coo_of_dense(_Conn(
                name=node.name, node=node, source="", targets=[], n_in=int(node.in_features),
                n_out=int(node.out_features), pre=None, post=None, w=None, indptr=None,
                row_ptr=None, row_order=None, delay=int(node.delay), dense=lw))
            return post, pre, vals, extra
        post = np.asarray(g.const(node.rows), np.int64).ravel()
        pre = np.asarray(g.const(node.cols), np.int64).ravel()
        vals = legalize_weights(g.const(node.values), node.sign_mode,
                                node.num_weight_bits).ravel()
        keep = vals != 0
        post, pre, vals = post[keep], pre[keep], vals[keep]
        return post, pre, vals, dict(weight_exp=int(node.weight_exp), nwb=int(node.num_weight_bits),
                                     sign=F.LOIHI_SIGN_MODES.index(node.sign_mode))

    def _check_params(self, out: dict[str, tuple[Any, str]]) -> None:
        prof = self.prof
        fmt_bits = int(out["synapse.group_header_bits"][0]) - int(out["synapse.count_bits"][0])
        if fmt_bits < max(1, F.bitlen(int(out["core.synapse_configs"][0]) - 1)):
            raise CompileError(
                f"target {prof.name}: synapse.group_header_bits = {out['synapse.group_header_bits'][0]}"
                f" leaves {fmt_bits} bits for the format index after the {out['synapse.count_bits'][0]}"
                f"-bit count; core.synapse_configs = {out['core.synapse_configs'][0]} needs more")
        out["synapse.fmt_bits"] = (fmt_bits, "derived: synapse.group_header_bits - synapse.count_bits")
        wbits = int(out["core.synapse_word_bits"][0])
        if wbits % 8:
            raise CompileError(f"target {prof.name}: core.synapse_word_bits = {wbits} must be a "
                               "multiple of 8")
        if int(out["core.synapse_configs"][0]) > (1 << int(out["synapse.fmt_bits"][0])):
            raise CompileError(f"target {prof.name}: core.synapse_configs exceeds what "
                               f"synapse.fmt_bits = {out['synapse.fmt_bits'][0]} can address")

    def _core(self, cid: int) -> bytes:
        net, P = self.net, self.P
        c = self.m["cores"][cid]
        slices = [(s[0], int(s[1]), int(s[2])) for s in c["slices"]]
        n = self.core_neurons[cid]
        where = f"core {cid} (chip {c['chip']}, x {c['x']}, y {c['y']})"

        # -- compartments: config tables and per-compartment fields
        cols = {k: [] for k in ("du", "dv", "ref", "readout", "vth", "bias_mant", "bias_exp")}
        for p, s, e in slices:
            node = net.pops[p]
            for f in ("du", "dv", "vth_mant", "bias_mant", "bias_exp"):
                cols["vth" if f == "vth_mant" else f].append(self._pop_param(p, f)[s:e])
            cols["ref"].append(np.full(e - s, int(node.refractory), np.int64))
            cols["readout"].append(np.full(e - s, int(bool(node.readout)), np.int64))
        cols = {k: v[0] if len(v) == 1 else np.concatenate(v) for k, v in cols.items()}
        if np.any(cols["ref"] > int(P("neuron.refractory_max"))):
            raise CompileError(f"{where}: refractory {int(cols['ref'].max())} > "
                               f"neuron.refractory_max {P('neuron.refractory_max')}")
        cx_rows = np.stack([cols["du"], cols["dv"], cols["ref"], cols["readout"]], 1)
        cx_table, cx_id = _first_unique(cx_rows)
        vth_table, vth_id = _first_unique(cols["vth"][:, None])
        for what, count, key in (("compartment configs", len(cx_table), "core.compartment_configs"),
                                 ("threshold configs", len(vth_table), "core.threshold_configs")):
            if count > int(P(key)):
                raise CompileError(
                    f"{where}: {count} {what} > {P(key)} ({key}, target {self.prof.name}); use "
                    "fewer distinct parameter values per core (partition max_neurons=...)")

        # -- synapses of every axon, one plan per connection (see _conn_plan)
        ac, ap = self.axon_conn[cid], self.axon_pre[cid]
        conn_names = self.conn_names
        used = [conn_names[i] for i in dict.fromkeys(ac.tolist())]
        group = int(P("synapse.group_size"))
        header_bits = int(P("synapse.fmt_bits")) + int(P("synapse.count_bits"))
        word = int(P("core.synapse_word_bits"))
        ib_sparse = _round_up(list(self.enc["synapse.index_bits"]),
                              max(0, F.log2ceil(max(n, 1))))
        if ib_sparse is None:
            ib_sparse = F.bitlen(n - 1)
        wchoices = list(self.enc["synapse.weight_bits"])
        per_conn: dict[str, dict] = {}
        for conn in used:
            per_conn[conn] = self._conn_plan(cid, conn, slices, ac, ap, n, where, wchoices,
                                             ib_sparse, group, header_bits, word)

        # -- accumulator groups: shared by connections whose exponent sums exactly together
        acc_exps: list[int] = []
        acc_members: list[np.ndarray] = []
        for conn in used:
            cc, pc = net.conns[conn], per_conn[conn]
            targets = pc["tcomp"]
            chosen = None
            for gi, e in enumerate(acc_exps):
                if e != cc.weight_exp:
                    continue
                # floor shifts (e < 0) only commute with the sum over disjoint compartments
                if e >= 0 or not np.intersect1d(acc_members[gi], targets).size:
                    chosen = gi
                    break
            if chosen is None:
                acc_exps.append(cc.weight_exp)
                acc_members.append(targets)
                chosen = len(acc_exps) - 1
            else:
                acc_members[chosen] = np.union1d(acc_members[chosen], targets)
            pc["acc"] = chosen
        fmt_rows = []
        for conn in used:
            pc = per_conn[conn]
            fmt_rows.append((pc["wb"], net.conns[conn].sign, pc["db"], int(pc["dense"]),
                             0 if pc["dense"] else ib_sparse, pc["acc"]))
        fmt_table = list(dict.fromkeys(fmt_rows))
        for conn, row in zip(used, fmt_rows, strict=True):
            per_conn[conn]["fmt"] = fmt_table.index(row)
        if len(fmt_table) > int(P("core.synapse_configs")):
            raise CompileError(
                f"{where}: {len(fmt_table)} synapse formats > {P('core.synapse_configs')} "
                f"(core.synapse_configs, target {self.prof.name}); feed the core's populations "
                "from fewer distinct synapse formats or give fewer neurons per core")

        # -- synapses per axon (every axon belongs to one connection), then blocks and words
        n_ax = ac.size
        ax_fmt = np.zeros(n_ax, np.int64)
        ax_base = np.zeros(n_ax, np.int64)
        syn_per_axon = np.zeros(n_ax, np.int64)
        for conn in used:
            pc = per_conn[conn]
            ax_fmt[pc["ax"]] = pc["fmt"]
            syn_per_axon[pc["ax"]] = pc["counts"]
            if pc["dense"]:
                ax_base[pc["ax"]] = int(pc["tcomp"][0])
        if n_ax and np.any(syn_per_axon == 0):
            k = int(np.flatnonzero(syn_per_axon == 0)[0])
            raise CompileError(f"{where}: axon {k} ({conn_names[ac[k]]} source {ap[k]}) has no "
                               "synapse on this core; the route pass must not waste axons")
        fmt_arr = np.array(fmt_table, np.int64).reshape(-1, 6)
        ax_wb = fmt_arr[ax_fmt, 0] if n_ax else np.zeros(0, np.int64)
        ax_db = fmt_arr[ax_fmt, 2] if n_ax else np.zeros(0, np.int64)
        ax_ib = fmt_arr[ax_fmt, 4] if n_ax else np.zeros(0, np.int64)
        ax_sbits = ax_wb + ax_db + ax_ib
        ax_blocks = -(-syn_per_axon // group)
        blk_axon = np.repeat(np.arange(n_ax), ax_blocks)
        blk_first = (np.cumsum(ax_blocks) - ax_blocks).astype(np.int64)
        blk_j = np.arange(blk_axon.size) - np.repeat(blk_first, ax_blocks)
        blk_count = np.minimum(group, syn_per_axon[blk_axon] - blk_j * group)
        blk_words = -(-(header_bits + blk_count * ax_sbits[blk_axon]) // word)
        blk_word0 = (np.cumsum(blk_words) - blk_words).astype(np.int64)
        n_words = int(blk_words.sum())
        if n_words > int(P("core.synapse_words")):
            raise CompileError(
                f"{where}: synapse memory needs {n_words} words > {P('core.synapse_words')} "
                f"(core.synapse_words, target {self.prof.name}); reduce the weight bits "
                "(quantize weight_bits=...) or give fewer neurons per core")
        ax_ptr = np.zeros(n_ax, np.int64)
        if n_ax:
            ax_ptr = blk_word0[blk_first]
        # bit fields: block headers (format, count - 1), then every synapse's record
        # (idx | weight << ib | delay - 1 << (ib + wb)), OR-ed into 64-bit words
        fb, cb = int(P("synapse.fmt_bits")), int(P("synapse.count_bits"))
        if group > (1 << cb):
            raise CompileError(f"target {self.prof.name}: synapse.group_size {group} does not fit "
                               f"synapse.count_bits {cb}")
        total_bits = n_words * word
        buf = np.zeros((total_bits + 63) // 64 + 2, np.uint64)
        if blk_axon.size:
            _or_fields(buf, (ax_fmt[blk_axon] | ((blk_count - 1) << fb)).astype(np.uint64),
                       blk_word0 * word)
        for conn in used:
            pc = per_conn[conn]
            self._pack_plan(buf, pc, ax_ptr, group, header_bits, word)
        synmem = buf.astype("<u8", copy=False).view(np.uint8)[:(total_bits + 7) // 8].tobytes()

        # -- routes (output axons) of this core's compartments
        r_dest = self.route_dest[cid]
        n_routes = r_dest["n"]
        if n_routes > int(P("core.axons_out")):
            raise CompileError(f"{where}: {n_routes} output axons > {P('core.axons_out')} "
                               f"(core.axons_out, target {self.prof.name}); give fewer neurons per core")
        routes_per = np.bincount(r_dest["local"], minlength=n) if n_routes else np.zeros(n, np.int64)
        w_rlen = F.bitlen(int(routes_per.max()) if n else 0)
        w_nblk = F.bitlen(int(ax_blocks.max()) if n_ax else 0)

        # -- pack the section
        env = self._env(n, len(cx_table), len(vth_table), len(acc_exps), n_words)
        env.update(w_rlen=w_rlen, w_nblk=w_nblk)
        try:
            parts = [
                F.LOIHI_CORE_HEADER.pack(dict(
                    chip=int(c["chip"]), x=int(c["x"]), y=int(c["y"]), n_neurons=n, n_axons=n_ax,
                    n_routes=n_routes, n_words=n_words, n_slices=len(slices), n_cx=len(cx_table),
                    n_vth=len(vth_table), n_fmt=len(fmt_table), n_acc=len(acc_exps),
                    w_nblk=w_nblk, w_rlen=w_rlen)),
                F.SLICE.pack([dict(population=net.pop_index[p], start=s, stop=e)
                              for p, s, e in slices]),
                _pack_table(F.LOIHI_CX, len(cx_table), dict(du=cx_table[:, 0], dv=cx_table[:, 1],
                                                            refractory=cx_table[:, 2],
                                                            readout=cx_table[:, 3]), env),
                _pack_table(F.LOIHI_VTH, len(vth_table), dict(vth_mant=vth_table[:, 0]), env),
                _pack_table(F.LOIHI_ACC, len(acc_exps),
                            dict(weight_exp=np.array(acc_exps, np.int64)), env),
                _pack_table(F.LOIHI_FMT, len(fmt_table), dict(zip(
                    ("wb", "sign", "db", "dense", "ib", "acc"),
                    fmt_arr.T if len(fmt_table) else [np.zeros(0, np.int64)] * 6, strict=True)), env),
                _pack_table(F.LOIHI_NEURON, n, dict(cx=cx_id, vth=vth_id, bias_mant=cols["bias_mant"],
                                                    bias_exp=cols["bias_exp"], n_routes=routes_per),
                            env),
                _pack_table(F.LOIHI_AXON, n_ax, dict(ptr=ax_ptr, n_blocks=ax_blocks, base=ax_base),
                            env),
                synmem,
                _pack_table(F.LOIHI_ROUTE, n_routes, dict(chip=r_dest["chip"], x=r_dest["x"],
                                                          y=r_dest["y"], axon=r_dest["axon"]), env),
            ]
        except ValueError as e:
            raise CompileError(f"{where}: {e}; the value does not fit the hardware width of target "
                               f"{self.prof.name}") from None
        return b"".join(parts)

    # ---- the synapses of one connection on one core --------------------------------------------
    def _conn_plan(self, cid: int, conn: str, slices: list[tuple[str, int, int]], ac: np.ndarray,
                   ap: np.ndarray, n: int, where: str, wchoices: list[int], ib_sparse: int,
                   group: int, header_bits: int, word: int) -> dict:
        """How ``conn``'s synapses onto core ``cid`` are stored: its axons, the stored weight and
        delay widths, dense or sparse encoding, the compartments it feeds (``tcomp``), the
        synapses per axon (``counts``) and the records to pack (:meth:`_pack_plan`).

        A dense weight matrix (LoihiDense) is read block-wise, without a synapse list; anything
        unusual about it (a synapse without an axon, a weight no width holds) is left to the
        general path (:meth:`_conn_plan_coo`), which raises the error."""
        P = self.P
        cc = self.net.conns[conn]
        ax = np.flatnonzero(ac == self.conn_ids[conn])
        plan = None
        if cc.dense is not None and _FAST_DENSE:
            plan = self._conn_plan_dense(cc, slices, ax, ap, wchoices)
        if plan is None:
            plan = self._conn_plan_coo(cid, conn, ax, where, wchoices)
        wb = plan["wb"]
        if cc.delay > int(P("synapse.delay_max")):
            raise CompileError(f"{where}: connection {conn}: delay {cc.delay} > "
                               f"synapse.delay_max {P('synapse.delay_max')}")
        db = 0 if cc.delay <= 1 else F.log2ceil(cc.delay)
        if db > int(P("widths.delay")):
            raise CompileError(f"{where}: connection {conn}: delay {cc.delay} needs {db} bits > "
                               f"widths.delay {P('widths.delay')}")
        e_min, e_max = int(P("widths.weight_exp_min")), int(P("widths.weight_exp_max"))
        if not e_min <= cc.weight_exp <= e_max:
            raise CompileError(f"{where}: connection {conn}: weight_exp {cc.weight_exp} outside "
                               f"{e_min}..{e_max} (target {self.prof.name})")
        tcomp, counts = plan["tcomp"], plan["nnz"]
        contiguous = tcomp.size > 0 and tcomp[-1] - tcomp[0] + 1 == tcomp.size
        sparse_words = int(_block_words(counts, wb + db + ib_sparse, group, header_bits,
                                        word).sum())
        dense_words = (ax.size * int(_block_words(tcomp.size, wb + db, group, header_bits, word))
                       if contiguous else None)
        dense = dense_words is not None and not plan["dup"] and dense_words <= sparse_words
        plan.update(ax=ax, db=db, dense=dense, delay=cc.delay, sign=cc.sign,
                    ib=0 if dense else ib_sparse)
        if dense:
            plan["counts"] = np.full(ax.size, tcomp.size, np.int64)
        else:
            plan["counts"] = counts
        return plan

    def _conn_plan_dense(self, cc: _Conn, slices: list[tuple[str, int, int]], ax: np.ndarray,
                         ap: np.ndarray, wchoices: list[int]) -> dict | None:
        """The plan of a dense weight matrix on one core, or None when the general path must
        decide (it then raises the error)."""
        W = cc.dense
        parts, tcs = [], []
        local = 0
        for p, s, e in slices:
            if p in cc.targets:
                parts.append(W[s:e])
                tcs.append(np.arange(local, local + e - s, dtype=np.int64))
            local += e - s
        if not parts:
            return None
        B = parts[0] if len(parts) == 1 else np.concatenate(parts)
        tcomp = tcs[0] if len(tcs) == 1 else np.concatenate(tcs)
        pre_ax = ap[ax]
        # DT: compartments x axons (C order); the plan's matrix is its transpose, axons x
        # compartments, as a view (no transposed copy)
        if pre_ax.size == cc.n_in and (pre_ax.size == 0 or (
                pre_ax[0] == 0 and bool(np.all(pre_ax[1:] == pre_ax[:-1] + 1)))):
            DT = np.ascontiguousarray(B)  # every source has its axon, in source order
        else:
            has = np.zeros(cc.n_in, bool)
            has[pre_ax] = True
            if not has.all() and bool(np.any(B[:, ~has])):
                return None  # a synapse without an axon: the general path names it
            DT = np.ascontiguousarray(B[:, pre_ax])
        D = DT.T
        if D.size:
            lo, hi = int(DT.min()), int(DT.max())
            bits = int(np.bitwise_or.reduce(DT, axis=None))
        else:
            lo = hi = bits = 0
        start_bits = cc.nwb if cc.sign != 0 else max(cc.nwb, 1)
        wb = None
        for cand in [x for x in wchoices if x >= start_bits]:
            ok = _weights_fit(lo, hi, bits, cand, cc.sign)
            if ok is None:
                return None
            if ok:
                wb = cand
                break
        if wb is None:
            return None
        nnz = np.count_nonzero(DT, axis=0).astype(np.int64)
        return dict(wb=wb, tcomp=tcomp, nnz=nnz, dup=False, matrix=D)

    def _conn_plan_coo(self, cid: int, conn: str, ax: np.ndarray, where: str,
                       wchoices: list[int]) -> dict:
        """The plan from the connection's synapse list (any connection kind)."""
        cc = self._coo(conn)
        ent, ent_axon, comp = self._conn_synapses(cid, conn, ax, where)
        tcomp = self._target_comps(cid, cc)
        # stored weight width: the smallest allowed width holding every legal weight exactly
        w = cc.w[ent].astype(np.int64)
        wb = None
        start_bits = cc.nwb if cc.sign != 0 else max(cc.nwb, 1)
        for cand in [x for x in wchoices if x >= start_bits]:
            try:
                F.loihi_weight_encode(w, cand, cc.sign)
                wb = cand
                break
            except ValueError:
                continue
        if wb is None:
            raise CompileError(
                f"{where}: connection {conn}: weights {sorted(set(w.tolist()))[:4]} cannot be "
                f"stored with num_weight_bits {cc.nwb} ({F.LOIHI_SIGN_MODES[cc.sign]}); "
                "use more weight bits")
        ac = self.axon_conn[cid]
        counts = np.bincount(ent_axon, minlength=ac.size)[ax]
        n = self.core_neurons[cid]
        key = ent_axon * (n + 1) + comp
        dup = _has_duplicates(key, ac.size * (n + 1))
        return dict(wb=wb, tcomp=tcomp, nnz=counts, dup=dup, ent_axon=ent_axon, comp=comp, w=w)

    def _work(self, name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """A work array reused from core to core (one per name, the last shape): a fresh array
        of a core's synapses costs a page fault per 4 KiB when first written."""
        a = self._scratch.get(name)
        if a is None or a.shape != shape or a.dtype != dtype:
            a = self._scratch[name] = np.empty(shape, dtype)
        return a

    def _target_comps(self, cid: int, cc: _Conn) -> np.ndarray:
        """Core-local compartments of the populations ``cc`` feeds, sorted (the slices of a core
        are consecutive compartments, so this is their concatenation)."""
        parts = []
        local = 0
        for p, s, e in self._slices(cid):
            if p in cc.targets:
                parts.append(np.arange(local, local + e - s, dtype=np.int64))
            local += e - s
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    def _pack_plan(self, buf: np.ndarray, pc: dict, ax_ptr: np.ndarray, group: int,
                   header_bits: int, word: int) -> None:
        """OR the synapse records of one connection's plan into the core's synapse memory."""
        ax = pc["ax"]
        if ax.size == 0:
            return
        wb, db, ib, sign = pc["wb"], pc["db"], pc["ib"], pc["sign"]
        sbits = wb + db + ib
        dtail = (pc["delay"] - 1) << (ib + wb) if db else 0
        if pc["dense"]:
            width = pc["tcomp"].size
            if "matrix" in pc:
                mat = pc["matrix"]
            else:  # the general path: lay the synapse list out as a matrix
                base = int(pc["tcomp"][0])
                mat = np.zeros((ax.size, width), np.int64)
                row_of = np.zeros(int(ax.max()) + 1, np.int64)
                row_of[ax] = np.arange(ax.size)
                mat[row_of[pc["ent_axon"]], pc["comp"] - base] = pc["w"]
            if sbits == 0 or width == 0:
                return
            if word % 64 == 0 and mat.T.flags.c_contiguous:  # compartments x axons in memory
                rec_t = self._work("rec_t", mat.T.shape, np.uint64)
                np.copyto(rec_t, _encode_weights(mat.T, wb, sign), casting="unsafe")
                if dtail:
                    rec_t |= np.uint64(dtail)
                _or_template(buf, rec_t, ax_ptr[ax] * (word // 64), sbits, group, header_bits,
                             word, self._work("shifted_t", rec_t.shape, np.uint64), by_column=True)
                return
            rec = self._work("rec", mat.shape, np.uint64)
            np.copyto(rec, _encode_weights(mat, wb, sign), casting="unsafe")
            if dtail:
                rec |= np.uint64(dtail)
            if word % 64 == 0:
                _or_template(buf, rec, ax_ptr[ax] * (word // 64), sbits, group, header_bits, word,
                             self._work("shifted", rec.shape, np.uint64))
                return
            j = np.broadcast_to(np.arange(width, dtype=np.int64), rec.shape)
            start = ax_ptr[ax][:, None] * word
            full = -(-(header_bits + group * sbits) // word) * word
            pos = start + (j // group) * full + header_bits + (j % group) * sbits
            _or_fields(buf, rec.ravel(), pos.ravel())
            return
        # sparse encoding: the non-zero synapses of every axon, by compartment
        if "matrix" in pc:
            mat = pc["matrix"]
            rows, cidx = np.nonzero(mat)
            wv = mat[rows, cidx]
            comp = pc["tcomp"][cidx]
        else:
            ac_local = np.zeros(int(ax.max()) + 1, np.int64)
            ac_local[ax] = np.arange(ax.size)
            rows = ac_local[pc["ent_axon"]]
            order = np.lexsort((pc["comp"], rows))
            rows, comp, wv = rows[order], pc["comp"][order], pc["w"][order]
        if sbits == 0 or rows.size == 0:
            return
        rec = (comp.astype(np.uint64) & np.uint64((1 << ib) - 1)) if ib else np.zeros(rows.size, np.uint64)
        if wb:
            rec |= _encode_weights(wv, wb, sign).astype(np.uint64) << np.uint64(ib)
        if dtail:
            rec |= np.uint64(dtail)
        counts = pc["counts"]
        first = np.cumsum(counts) - counts
        j = np.arange(rows.size, dtype=np.int64) - first[rows]
        full = -(-(header_bits + group * sbits) // word) * word
        pos = ax_ptr[ax][rows] * word + (j // group) * full + header_bits + (j % group) * sbits
        _or_fields(buf, rec, pos)

    def _env(self, n: int, n_cx: int, n_vth: int, n_acc: int, n_words: int) -> dict[str, int]:
        P = self.P
        if self._env_base is None:
            self._env_base = {k: int(v[0]) for k, v in self.params.items() if isinstance(v[0], int)}
        env = dict(self._env_base)
        env.update(
            w_cx=F.bitlen(n_cx - 1), w_vth=F.bitlen(n_vth - 1), w_acc=F.bitlen(n_acc - 1),
            w_nidx=F.bitlen(n - 1), w_ptr=F.bitlen(n_words), w_chip=F.bitlen(self.n_chips - 1),
            w_x=F.bitlen(self.mesh[0] - 1), w_y=F.bitlen(self.mesh[1] - 1),
            w_axon=F.bitlen(int(P("core.axons_in")) - 1))
        return env

def params_payload(strings: Any, params: dict[str, tuple[Any, str]], specs: Any) -> bytes:
    """The PARAMS section: one record per profile number the emulator needs, with its source."""
    by_key = {p.key: p for p in specs}
    recs = []
    for key in sorted(params):
        value, source = params[key]
        spec = by_key[key]
        r = dict(key=strings(key), source=strings(source))
        if spec.type == "int":
            r.update(type=1, ivalue=int(value))
        elif spec.type == "float":
            r.update(type=2, fvalue=float(value))
        else:
            r.update(type=3, svalue=strings(str(value)))
        recs.append(r)
    return F.COUNT_HEADER.pack(dict(count=len(recs))) + F.PARAM_RECORD.pack(recs)


def provenance_bytes(graph: Graph, profile: Any, mapping: dict[str, Any]) -> bytes:
    """The PROVENANCE section: compiler version, model and profile hashes, pass options (no
    timestamps, so identical input gives identical bytes), as canonical JSON."""
    import nmc

    passes = graph.attrs.get("passes", {})
    options = {}
    if isinstance(passes, dict):
        for k, v in passes.items():
            if isinstance(v, dict) and "options" in v:
                options[k] = v["options"]
    prov = {
        "format": "nmc-image",
        "compiler": f"nmc {nmc.__version__}",
        "graph": graph.name,
        "model_sha256": model_hash(graph),
        "target": profile.name,
        "profile_sha256": profile.sha256,
        "strategy": mapping.get("strategy"),
        "pass_options": options,
    }
    for key in ("source_sha256", "provenance"):
        if key in graph.attrs:
            prov[key] = graph.attrs[key]
    text = json.dumps(_json_safe(prov), sort_keys=True, separators=(",", ":"),
                      allow_nan=False, default=str)
    return text.encode("utf-8")


def _has_duplicates(key: np.ndarray, span: int) -> bool:
    """True when the non-negative integer ``key`` (all < ``span``) holds a value twice: a count
    over the span when that is small (linear), else a sort."""
    if key.size < 2:
        return False
    if span <= 8 * key.size + 65536:
        return bool(np.bincount(key, minlength=0).max() > 1)
    return np.unique(key).size != key.size


def _first_unique(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows in order of first appearance, and each row's index into them."""
    rows = np.asarray(rows, np.int64)
    if rows.size == 0:
        return rows.reshape(0, rows.shape[1] if rows.ndim == 2 else 1), np.zeros(0, np.int64)
    if rows.ndim == 2 and bool((rows == rows[0]).all()):
        return rows[:1].copy(), np.zeros(rows.shape[0], np.int64)
    uniq, first, inv = np.unique(rows, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return uniq[order], rank[inv.reshape(-1)]


class _TrueNorthWriter(_Writer):
    """Builds the CORE sections of a truenorth-family image: axon types and delays, neuron
    records, the binary crossbar and one packet (dx, dy, axon) per route entry."""

    NEURON_KINDS = ("TrueNorthNeuron",)
    CONN_KINDS = ("TrueNorthCrossbar",)
    NATIVE = "ir.native.truenorth"
    AXONS_KEY = "core.axons"
    FIELDS = ("s0", "s1", "s2", "s3", "stoch_syn", "leak", "leak_rev", "stoch_leak", "alpha",
              "beta", "tm", "gamma", "kappa", "v_reset")

    def _read_dense(self, node: Any) -> tuple[np.ndarray, dict]:
        """The crossbar as a bool (out, in) matrix; its synapse list is built per use
        (:meth:`_coo_of_dense`) and dropped after the connection's last core."""
        g = self.g
        if node.copies != 1:
            raise CompileError(
                f"TrueNorthCrossbar {node.name}: copies = {node.copies}; the image holds one axon "
                "per source (run legalize_family, which splits copies into crossbars)")
        cb = np.asarray(g.const(node.crossbar)).astype(bool, copy=False).reshape(
            node.out_features, node.in_features)
        types = np.asarray(g.const(node.axon_types), np.int64).reshape(node.in_features)
        return cb, dict(axon_types=types)

    def _coo_of_dense(self, cc: _Conn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pre, post = np.nonzero(cc.dense.T)  # (pre, post) order: _coo_fields needs no sort
        # every crossbar weight is 1: a read-only broadcast, not 2 bytes per synapse
        return post, pre, np.broadcast_to(np.int16(1), post.shape)

    def _core(self, cid: int) -> bytes:
        net, P = self.net, self.P
        c = self.m["cores"][cid]
        slices = self._slices(cid)
        n = self.core_neurons[cid]
        where = f"core {cid} (chip {c['chip']}, x {c['x']}, y {c['y']})"
        cols: dict[str, list] = {f: [] for f in (*self.FIELDS, "v_bits", "overflow", "seed", "nid")}
        for p, s, e in slices:
            node = net.pops[p]
            for f in self.FIELDS:
                cols[f].append(self._pop_param(p, f)[s:e])
            cols["v_bits"].append(np.full(e - s, int(node.v_bits), np.int64))
            cols["overflow"].append(np.full(e - s, int(node.overflow == "wrap"), np.int64))
            cols["seed"].append(np.full(e - s, int(node.seed), np.int64))
            cols["nid"].append(int(node.id_base) + np.arange(s, e, dtype=np.int64))
        cols = {k: np.concatenate(v) for k, v in cols.items()}
        if np.any(cols["tm"] > int(P("widths.tm"))):
            raise CompileError(f"{where}: tm {int(cols['tm'].max())} > widths.tm {P('widths.tm')}")
        if np.any(cols["nid"] >= 1 << 32):
            raise CompileError(f"{where}: neuron id {int(cols['nid'].max())} does not fit 32 bits")
        ac, ap = self.axon_conn[cid], self.axon_pre[cid]
        conn_names = list(net.conns)
        n_ax = ac.size
        if n_ax > int(P("core.axons")):
            raise CompileError(f"{where}: {n_ax} axons > {P('core.axons')} (core.axons, target "
                               f"{self.prof.name}); give fewer neurons per core")
        types = np.zeros(n_ax, np.int64)
        delays = np.zeros(n_ax, np.int64)
        crossbar = np.zeros((n_ax, n), bool)
        for conn in dict.fromkeys(conn_names[i] for i in ac.tolist()):
            cc = net.conns[conn]
            ax = np.flatnonzero(ac == self.conn_ids[conn])
            types[ax] = cc.axon_types[ap[ax]]
            if not 1 <= cc.delay < int(P("core.scheduler_slots")):
                raise CompileError(f"{where}: connection {conn}: delay {cc.delay} outside 1.."
                                   f"{int(P('core.scheduler_slots')) - 1} (the core's scheduler)")
            delays[ax] = cc.delay
            _, ent_axon, comp = self._conn_synapses(cid, conn, ax, where)
            crossbar[ent_axon, comp] = True
        want = (c.get("truenorth") or {}).get("axon_types")
        if want is not None and list(map(int, want)) != types.tolist():
            raise CompileError(f"{where}: the mapping's axon types {want} differ from the "
                               f"crossbars' {types.tolist()}")
        r = self.route_dest[cid]
        routes_per = np.bincount(r["local"], minlength=n) if r["n"] else np.zeros(n, np.int64)
        lim = int(P("core.targets_per_neuron"))
        if routes_per.size and routes_per.max() > lim:
            j = int(np.argmax(routes_per))
            raise CompileError(
                f"{where}: compartment {j} sends to {int(routes_per[j])} destinations; a "
                f"TrueNorth neuron has {lim} (legalize_family adds copies or splitters)")
        mx = self.mesh[0]
        sx, sy = int(c["chip"]) * mx + int(c["x"]), int(c["y"])
        dx = r["chip"] * mx + r["x"] - sx
        dy = r["y"] - sy
        env = {k: int(v[0]) for k, v in self.params.items() if isinstance(v[0], int)}
        env["w_rlen"] = F.bitlen(int(routes_per.max()) if n else 0)
        try:
            parts = [
                F.TN_CORE_HEADER.pack(dict(chip=int(c["chip"]), x=int(c["x"]), y=int(c["y"]),
                                           n_neurons=n, n_axons=n_ax, n_routes=r["n"],
                                           n_slices=len(slices), w_rlen=env["w_rlen"])),
                F.SLICE.pack([dict(population=net.pop_index[p], start=s, stop=e)
                              for p, s, e in slices]),
                F.TN_AXON.pack(n_ax, dict(type=types, delay=delays), env),
                F.TN_NEURON.pack(n, dict(cols, n_routes=routes_per), env),
                F.TN_CROSSBAR.pack(crossbar.size, dict(bit=crossbar.reshape(-1).astype(np.int64)),
                                   env),
                F.TN_ROUTE.pack(r["n"], dict(dx=dx, dy=dy, axon=r["axon"]), env),
            ]
        except ValueError as e:
            raise CompileError(f"{where}: {e}; the value does not fit the hardware width of "
                               f"target {self.prof.name}") from None
        return b"".join(parts)


WRITERS: dict[str, type[_Writer]] = {"loihi": _LoihiWriter, "truenorth": _TrueNorthWriter}
"""The image writer of each family (the layout is ``emulator.format.CORE_LAYOUTS``)."""
