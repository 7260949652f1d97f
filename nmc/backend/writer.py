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
import tempfile
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


def _put_bits(values: np.ndarray, starts: np.ndarray, widths: np.ndarray, total_bits: int) -> bytes:
    """The same bytes as :func:`emulator.format.put_bits` (fields of width <= 32, LSB first, no
    overlap), built over 32-bit words: a field touches at most two words, so two weighted counts
    over the words instead of five over the bytes. Every word's contributions are disjoint bits of
    one 32-bit pattern, so their float64 sum is exact."""
    nbytes = (int(total_bits) + 7) // 8
    keep = widths > 0
    if not keep.all():
        values, starts = values[keep], starts[keep]
    n_words = (nbytes + 3) // 4 + 2
    buf = np.zeros(n_words, np.uint64)
    if values.size:
        v = values.astype(np.uint64)
        bit = (starts & 31).astype(np.uint64)
        w0 = starts >> 5
        shifted = v << bit  # < 2**63 (width <= 32, shift <= 31)
        lo = (shifted & np.uint64(0xFFFFFFFF)).astype(np.float64)
        buf += np.bincount(w0, weights=lo, minlength=n_words).astype(np.uint64)
        hi = shifted >> np.uint64(32)
        nz = hi != 0
        if nz.any():
            buf += np.bincount(w0[nz] + 1, weights=hi[nz].astype(np.float64),
                               minlength=n_words).astype(np.uint64)
    return buf.astype("<u4").view(np.uint8)[:nbytes].tobytes()


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
        h.update(a.tobytes())
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
    pre: np.ndarray  # sorted by (pre, post), stable
    post: np.ndarray
    w: np.ndarray
    indptr: np.ndarray  # by pre
    row_ptr: np.ndarray  # by post: entries row_order[row_ptr[r]:row_ptr[r+1]] have post r
    row_order: np.ndarray
    delay: int
    weight_exp: int = 0  # loihi
    nwb: int = 8  # loihi
    sign: int = 0  # loihi
    axon_types: np.ndarray | None = None  # truenorth: the type of every source's axon


@dataclass
class _Net:
    pops: dict[str, Any]
    pop_index: dict[str, int]
    inputs: dict[str, Any]
    conns: dict[str, _Conn]
    outputs: dict[str, str]
    into: dict[str, list[str]] = field(default_factory=dict)


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
            post, pre, vals, extra = self._read_conn(node)
            if post.size and (post.min() < 0 or post.max() >= n_out or pre.min() < 0
                              or pre.max() >= n_in):
                raise CompileError(f"connection {node.name}: COO index out of range")
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
            conns[node.name] = _Conn(
                name=node.name, node=node, source=src, targets=targets, n_in=n_in, n_out=n_out,
                pre=pre, post=post, w=vals, indptr=indptr, row_ptr=row_ptr,
                row_order=row_order, delay=int(node.delay), **extra)
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
        net.into = {p: [c for c, cc in conns.items() if p in cc.targets] for p in pops}
        return net

    def _pop_param(self, pop: str, fname: str) -> np.ndarray:
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
        cc = self.net.conns[conn]
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
        core_payloads = [self._core(i) for i in range(self.n_cores)]
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
    def _core_pop_mask(self, cid: int, pop: str) -> np.ndarray:
        mask = np.zeros(self.core_neurons[cid], bool)
        on = self.core_of[pop] == cid
        mask[self.local_of[pop][on]] = True
        return mask

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
        lat = self.m.get("latency") or {}
        extra = self.m.get("extra_latency") or {}
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
        for o, pop in net.outputs.items():
            onode = self.g.nodes[o]
            width = int(onode.size)
            if width != net.pops[pop].size:
                raise CompileError(f"Output {o}: width {width} differs from population {pop}")
            covered = np.zeros(width, np.int64)
            first = len(out_entries)
            for ei, ent in enumerate(self.m["outputs"].get(o, [])):
                try:
                    core, base, s, e = int(ent[0]), int(ent[1]), int(ent[2]), int(ent[3])
                except (TypeError, ValueError, IndexError):
                    raise CompileError(f"outputs[{o}][{ei}] = {ent!r} is not [core, local_base, "
                                       "start, stop]") from None
                if not 0 <= s < e <= width:
                    raise CompileError(f"outputs[{o}][{ei}]: elements {s}..{e} outside 0..{width}")
                ks = np.arange(s, e)
                if not (np.all(self.core_of[pop][ks] == core)
                        and np.all(self.local_of[pop][ks] == base + ks - s)):
                    raise CompileError(f"outputs[{o}][{ei}]: core {core} compartments {base}.. do "
                                       f"not hold {pop}[{s}:{e}]")
                covered[s:e] += 1
                out_entries.append(dict(core=core, neuron=base, start=s, stop=e))
            if np.any(covered != 1):
                k = int(np.flatnonzero(covered != 1)[0])
                raise CompileError(f"Output {o}: element {k} is mapped {int(covered[k])} times; "
                                   "every output element needs exactly one entry")
            nd, dims = _dims(onode.in_shape)
            lv = lat.get(o)
            ports.append(dict(name=self.strings(o), width=width,
                              kind=int(bool(getattr(net.pops[pop], "readout", False))), ndim=nd,
                              dims=dims,
                              first=first, count=len(out_entries) - first,
                              latency=-1 if lv is None else int(lv),
                              extra_latency=int(extra.get(o) or 0)))
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

    def _read_conn(self, node: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
        from ir.native.loihi import legalize_weights

        g = self.g
        n_in, n_out = int(node.in_features), int(node.out_features)
        if node.kind == "LoihiDense":
            w = np.asarray(g.const(node.weight)).reshape(n_out, n_in)
            # column-major (by source, then target): the order _network keeps, so it need not
            # sort; legal weights fit int16 (8 bits and a sign)
            lw = np.ascontiguousarray(legalize_weights(w, node.sign_mode,
                                                       node.num_weight_bits).T).astype(np.int16)
            pre, post = np.nonzero(lw)
            vals = lw[pre, post]
            del lw
        else:
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
        cols = {k: np.concatenate(v) for k, v in cols.items()}
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

        # -- synapses of every axon
        ac, ap = self.axon_conn[cid], self.axon_pre[cid]
        conn_names = list(net.conns)
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
            cc = net.conns[conn]
            ax = np.flatnonzero(ac == self.conn_ids[conn])
            ent, ent_axon, comp = self._conn_synapses(cid, conn, ax, where)
            tpops = cc.targets
            # the compartments this connection feeds on the core (for the dense encoding)
            tcomp = np.concatenate([np.flatnonzero(self._core_pop_mask(cid, tp)) for tp in tpops]) \
                if tpops else np.zeros(0, np.int64)
            tcomp = np.unique(tcomp)
            contiguous = tcomp.size > 0 and tcomp[-1] - tcomp[0] + 1 == tcomp.size
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
            counts = np.bincount(ent_axon, minlength=ac.size)[ax]
            sparse_words = int(_block_words(counts, wb + db + ib_sparse, group, header_bits,
                                            word).sum())
            dense_words = (ax.size * int(_block_words(tcomp.size, wb + db, group, header_bits, word))
                           if contiguous else None)
            key = ent_axon * (n + 1) + comp
            dup = _has_duplicates(key, ac.size * (n + 1))
            dense = dense_words is not None and not dup and dense_words <= sparse_words
            per_conn[conn] = dict(ax=ax, ent=ent, ent_axon=ent_axon, comp=comp, wb=wb, db=db,
                                  dense=dense, tcomp=tcomp, w=w)

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

        # -- synapse lists per axon (in axon order), then blocks and words
        n_ax = ac.size
        ax_fmt = np.zeros(n_ax, np.int64)
        ax_base = np.zeros(n_ax, np.int64)
        syn_axon, syn_idx, syn_w, syn_d = [], [], [], []
        for conn in used:
            cc, pc = net.conns[conn], per_conn[conn]
            ax_fmt[pc["ax"]] = pc["fmt"]
            if pc["dense"]:
                base = int(pc["tcomp"][0])
                width = pc["tcomp"].size
                ax_base[pc["ax"]] = base
                dense = np.zeros((pc["ax"].size, width), np.int64)
                # each axon's row in the block: a lookup table (ax is sorted and distinct)
                row_of = np.zeros(n_ax, np.int64)
                row_of[pc["ax"]] = np.arange(pc["ax"].size)
                row = row_of[pc["ent_axon"]]
                dense[row, pc["comp"] - base] = pc["w"]
                syn_axon.append(np.repeat(pc["ax"], width))
                syn_idx.append(np.tile(np.arange(width, dtype=np.int64), pc["ax"].size))
                syn_w.append(dense.ravel())
            else:
                syn_axon.append(pc["ent_axon"])
                syn_idx.append(pc["comp"])
                syn_w.append(pc["w"])
            syn_d.append(np.full(syn_axon[-1].size, cc.delay - 1, np.int64))
        if syn_axon:
            sa, si, sw, sd = (np.concatenate(x) for x in (syn_axon, syn_idx, syn_w, syn_d))
            # by axon, then compartment (stable for duplicates); one connection in dense
            # encoding is already in that order, and the sort is the writer's largest cost
            ok = sa.size < 2 or bool(np.all((sa[1:] > sa[:-1])
                                            | ((sa[1:] == sa[:-1]) & (si[1:] >= si[:-1]))))
            if not ok:
                order = np.lexsort((si, sa))
                sa, si, sw, sd = sa[order], si[order], sw[order], sd[order]
        else:
            sa = si = sw = sd = np.zeros(0, np.int64)
        syn_per_axon = np.bincount(sa, minlength=n_ax)
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
        # bit fields: block headers, then every synapse's idx / weight / delay
        fb, cb = int(P("synapse.fmt_bits")), int(P("synapse.count_bits"))
        if group > (1 << cb):
            raise CompileError(f"target {self.prof.name}: synapse.group_size {group} does not fit "
                               f"synapse.count_bits {cb}")
        v_parts = [ax_fmt[blk_axon], blk_count - 1]
        s_parts = [blk_word0 * word, blk_word0 * word + fb]
        w_parts = [np.full(blk_axon.size, fb), np.full(blk_axon.size, cb)]
        if sa.size:
            first_syn = np.concatenate([[0], np.cumsum(syn_per_axon)[:-1]])
            j = np.arange(sa.size) - first_syn[sa]
            blk = blk_first[sa] + j // group
            pos = blk_word0[blk] * word + header_bits + (j % group) * ax_sbits[sa]
            wf = np.zeros(sa.size, np.int64)
            for fi, (wbits, sign, *_rest) in enumerate(fmt_table):
                sel = ax_fmt[sa] == fi
                if sel.any():
                    wf[sel] = F.loihi_weight_encode(sw[sel], wbits, sign)
            ibs, wbs, dbs = ax_ib[sa], ax_wb[sa], ax_db[sa]
            # fields of width 0 write nothing (dense blocks have no index, delay 1 no delay
            # field): leave them out rather than pack and drop them
            for vals, start, wid in ((si, pos, ibs), (wf, pos + ibs, wbs),
                                     (sd, pos + ibs + wbs, dbs)):
                if wid.any():
                    v_parts.append(vals)
                    s_parts.append(start)
                    w_parts.append(wid)
        synmem = _put_bits(np.concatenate(v_parts), np.concatenate(s_parts),
                           np.concatenate(w_parts), n_words * word)

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
                F.LOIHI_CX.pack(len(cx_table), dict(du=cx_table[:, 0], dv=cx_table[:, 1],
                                                    refractory=cx_table[:, 2],
                                                    readout=cx_table[:, 3]), env),
                F.LOIHI_VTH.pack(len(vth_table), dict(vth_mant=vth_table[:, 0]), env),
                F.LOIHI_ACC.pack(len(acc_exps), dict(weight_exp=np.array(acc_exps, np.int64)), env),
                F.LOIHI_FMT.pack(len(fmt_table), dict(zip(
                    ("wb", "sign", "db", "dense", "ib", "acc"),
                    fmt_arr.T if len(fmt_table) else [np.zeros(0, np.int64)] * 6, strict=True)), env),
                F.LOIHI_NEURON.pack(n, dict(cx=cx_id, vth=vth_id, bias_mant=cols["bias_mant"],
                                            bias_exp=cols["bias_exp"], n_routes=routes_per), env),
                F.LOIHI_AXON.pack(n_ax, dict(ptr=ax_ptr, n_blocks=ax_blocks, base=ax_base), env),
                synmem,
                F.LOIHI_ROUTE.pack(n_routes, dict(chip=r_dest["chip"], x=r_dest["x"],
                                                  y=r_dest["y"], axon=r_dest["axon"]), env),
            ]
        except ValueError as e:
            raise CompileError(f"{where}: {e}; the value does not fit the hardware width of target "
                               f"{self.prof.name}") from None
        return b"".join(parts)

    def _env(self, n: int, n_cx: int, n_vth: int, n_acc: int, n_words: int) -> dict[str, int]:
        P = self.P
        env = {k: int(v[0]) for k, v in self.params.items() if isinstance(v[0], int)}
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

    def _read_conn(self, node: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
        g = self.g
        if node.copies != 1:
            raise CompileError(
                f"TrueNorthCrossbar {node.name}: copies = {node.copies}; the image holds one axon "
                "per source (run legalize_family, which splits copies into crossbars)")
        cb = np.asarray(g.const(node.crossbar)).astype(bool).reshape(node.out_features,
                                                                       node.in_features)
        types = np.asarray(g.const(node.axon_types), np.int64).reshape(node.in_features)
        post, pre = np.nonzero(cb)
        return post, pre, np.ones(post.size, np.int64), dict(axon_types=types)

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
