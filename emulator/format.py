"""The chip image format (``.nmb``): the hardware contract between the compiler and the emulator.

The compiler (``nmc/backend/writer.py``) writes images with the tables below; the loader
(``emulator/loader.py``) reads them with the same tables. ``docs/image-format.md`` explains the
format in prose; :func:`describe` prints these tables, and a test holds the document to them.

Container (all integers little-endian)::

    file header      32 bytes: magic, version, section count, file size, CRC32 of header+table
    section table    32 bytes per section: kind, index, offset, length, CRC32 of the payload
    sections         each starts at a multiple of 8 bytes; gaps are zero bytes
    trailer          4 bytes: CRC32 of every byte before it

Sections: META (family, geometry, profile name and sha256), STRINGS (every name, interned),
PARAMS (the run-time numbers of the profile, each with its source), IOMAP (input channels ->
core axons, output ports <- core compartments), SYMBOLS (populations, for probes and the
disassembler), PROVENANCE (compiler version, model hash, pass options: JSON, no timestamps) and
one CORE section per used core, laid out by the family (:data:`CORE_LAYOUTS`).

Two kinds of layout tables, both declarative:

* :class:`Struct`: byte-aligned records (field widths 8/16/32/64 bits, integers or IEEE floats),
  read and written through a numpy structured dtype;
* :class:`BitTable`: bit-packed records whose field widths are hardware widths, given by name and
  resolved from the image's PARAMS (``widths.*``) or from counts in the core header. Records are
  concatenated LSB-first (bit ``i`` of the stream is bit ``i % 8`` of byte ``i // 8``); a table
  ends on a byte boundary with zero padding bits. Signed fields are two's complement in their
  width; a field of width 0 holds the value 0.

Hardware numbers appear here only as format defaults for profile keys a profile may lack (each
with its source string) and as the fixed widths of format fields.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MAGIC = b"\x89NMC\r\n\x1a\n"
"""Eight bytes. The high-bit first byte catches 7-bit transfers, CR LF catches line-ending
conversion, 0x1A stops DOS ``type`` (the PNG trick)."""

VERSION_MAJOR = 1
VERSION_MINOR = 0
"""A loader reads images of its major version and any minor version up to its own. A minor
version may only add *optional* sections (kind >= :data:`OPTIONAL_KIND`), which older loaders
skip; anything else changes the major version."""

HEADER_BYTES = 32
SECTION_ENTRY_BYTES = 32
SECTION_ALIGN = 8
TRAILER_BYTES = 4
MAX_SECTIONS = 1 << 16

FAMILY_IDS: dict[str, int] = {"loihi": 1, "truenorth": 2, "brainscales2": 3}
"""Family codes stored in META.family."""
FAMILY_NAMES: dict[int, str] = {v: k for k, v in FAMILY_IDS.items()}


class Kind:
    """Section kinds (``SECTION_ENTRY.kind``)."""

    META = 1
    STRINGS = 2
    PARAMS = 3
    IOMAP = 4
    SYMBOLS = 5
    PROVENANCE = 6
    CORE = 16


OPTIONAL_KIND = 0x8000
"""Section kinds at or above this value are optional: a loader that does not know one skips it."""

SECTION_NAMES: dict[int, str] = {
    Kind.META: "META", Kind.STRINGS: "STRINGS", Kind.PARAMS: "PARAMS", Kind.IOMAP: "IOMAP",
    Kind.SYMBOLS: "SYMBOLS", Kind.PROVENANCE: "PROVENANCE", Kind.CORE: "CORE",
}
REQUIRED_ORDER = (Kind.META, Kind.STRINGS, Kind.PARAMS, Kind.IOMAP, Kind.SYMBOLS,
                  Kind.PROVENANCE)
"""The singleton sections, in file order; CORE sections follow, by core id."""


# ------------------------------------------------------------------------------------------
# Declarative layout tables
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Field:
    """One field of a record.

    ``bits``: the width, a number or (bit tables only) the name of a width resolved at run time.
    ``kind``: ``int`` (``signed`` or not), ``float`` (IEEE, 64 bits), ``bytes`` (``bits / 8``
    raw bytes) or ``reserved`` (an unsigned integer that must be zero). ``count`` > 1 makes an
    array field. ``lo``/``hi`` bound the value beyond what the width allows (checked on load).
    """

    name: str
    bits: int | str
    signed: bool = False
    count: int = 1
    kind: str = "int"
    lo: int | None = None
    hi: int | None = None
    doc: str = ""


def _np_type(f: Field) -> str:
    if f.kind == "float":
        if f.bits != 64:
            raise ValueError(f"field {f.name}: floats are 64-bit")
        return "<f8"
    if f.kind == "bytes":
        return f"S{int(f.bits) // 8}"
    if f.bits not in (8, 16, 32, 64):
        raise ValueError(f"field {f.name}: byte-aligned widths are 8/16/32/64, got {f.bits}")
    return f"<{'i' if f.signed else 'u'}{int(f.bits) // 8}"


class Struct:
    """A byte-aligned little-endian record, read and written through a numpy structured dtype."""

    def __init__(self, name: str, fields: Sequence[Field], doc: str = ""):
        self.name = name
        self.fields = tuple(fields)
        self.doc = doc
        self.dtype = np.dtype([
            (f.name, _np_type(f)) if f.count == 1 else (f.name, _np_type(f), (f.count,))
            for f in self.fields
        ])
        self.size = self.dtype.itemsize

    def pack(self, rows: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> bytes:
        """Records from dicts (missing fields are zero) as bytes."""
        if isinstance(rows, Mapping):
            rows = [rows]
        arr = np.zeros(len(rows), self.dtype)
        for i, r in enumerate(rows):
            for k, v in r.items():
                if k not in self.dtype.names:
                    raise KeyError(f"{self.name}: no field {k!r}")
                arr[i][k] = v
        return arr.tobytes()

    def pack_columns(self, n: int, columns: Mapping[str, Any]) -> bytes:
        """``n`` records from whole columns (arrays or scalars; missing fields are zero)."""
        arr = np.zeros(n, self.dtype)
        for k, v in columns.items():
            arr[k] = v
        return arr.tobytes()

    def unpack(self, buf: bytes | memoryview, offset: int = 0, count: int = 1) -> np.ndarray:
        """``count`` records starting at ``offset`` (the caller checks the length)."""
        return np.frombuffer(buf, self.dtype, count=count, offset=offset)


class BitTable:
    """Bit-packed records (see the module doc); widths may name run-time widths."""

    def __init__(self, name: str, fields: Sequence[Field], doc: str = ""):
        self.name = name
        self.fields = tuple(fields)
        self.doc = doc

    def widths(self, env: Mapping[str, int]) -> list[int]:
        """The field widths with names resolved from ``env``."""
        return [int(env[f.bits]) if isinstance(f.bits, str) else int(f.bits) for f in self.fields]

    def record_bits(self, env: Mapping[str, int]) -> int:
        return sum(self.widths(env))

    def nbytes(self, n: int, env: Mapping[str, int]) -> int:
        return (n * self.record_bits(env) + 7) // 8

    def pack(self, n: int, columns: Mapping[str, Any], env: Mapping[str, int]) -> bytes:
        """``n`` records from columns (arrays of length n or scalars) as bytes.

        Raises ValueError naming the field when a value does not fit its width (the writer turns
        it into a CompileError)."""
        ws = self.widths(env)
        rb = sum(ws)
        if n == 0 or rb == 0:
            return b""
        if ws == [1]:  # a bit map (the TrueNorth crossbar): records are consecutive bits
            f = self.fields[0]
            v = np.broadcast_to(np.asarray(columns.get(f.name, 0), np.int64), (n,))
            u = to_field(v, 1, f.signed, f"{self.name}.{f.name}")
            return np.packbits(u.astype(np.uint8), bitorder="little").tobytes()
        vals = np.zeros((n, len(ws)), np.uint64)
        for j, (f, w) in enumerate(zip(self.fields, ws, strict=True)):
            v = np.broadcast_to(np.asarray(columns.get(f.name, 0), np.int64), (n,))
            vals[:, j] = to_field(v, w, f.signed, f"{self.name}.{f.name}")
        starts = (np.arange(n, dtype=np.int64)[:, None] * rb
                  + np.concatenate([[0], np.cumsum(ws)[:-1]])[None, :])
        return put_bits(vals.ravel(), starts.ravel(), np.tile(ws, n), n * rb)

    def unpack(self, buf: np.ndarray, n: int, env: Mapping[str, int]) -> dict[str, np.ndarray]:
        """Columns (int64) of ``n`` records from ``buf`` (uint8, at least :meth:`nbytes`)."""
        buf = buf if isinstance(buf, BitReader) else BitReader(buf)
        ws = self.widths(env)
        rb = sum(ws)
        out: dict[str, np.ndarray] = {}
        base = np.arange(n, dtype=np.int64) * rb
        off = 0
        if 0 < rb <= 64:
            # the whole record in one read, then each field by a scalar shift and mask
            rec = buf.get(base, rb).view(np.int64) if rb < 64 else buf.get(base, rb)
            for f, w in zip(self.fields, ws, strict=True):
                if rb == 64:
                    u = (rec >> np.uint64(off)) & np.uint64((1 << w) - 1) if w < 64 else rec
                    out[f.name] = from_field(u, w, f.signed)
                else:
                    out[f.name] = from_field((rec >> off) & ((1 << w) - 1), w, f.signed)
                off += w
            return out
        for f, w in zip(self.fields, ws, strict=True):
            out[f.name] = from_field(get_bits(buf, base + off, w), w, f.signed)
            off += w
        return out

    def unpack_rows(self, rows: np.ndarray, n: int, env: Mapping[str, int]) -> dict[str, np.ndarray]:
        """Columns (int64, shape ``(g, n)``) of ``g`` tables of ``n`` records each, one table per
        row of ``rows`` (uint8, ``(g, nbytes)`` with nbytes >= :meth:`nbytes`): the same table
        of ``g`` cores decoded in one pass."""
        rows = np.asarray(rows, np.uint8)
        g, nb = rows.shape
        ws = self.widths(env)
        rb = sum(ws)
        if n == 0 or rb == 0:
            return {f.name: np.zeros((g, n), np.int64) for f in self.fields}
        out: dict[str, np.ndarray] = {}
        base = np.arange(n, dtype=np.int64) * rb
        if max(ws) <= 57:
            # runs of consecutive fields of up to 57 bits (25 bits: 4-byte words), each run read
            # once per record as an unaligned little-endian word from its first byte and shifted
            # by its bit phase, then every field of the run by a shift and a mask
            padded = _padded_rows(rows, 8)
            # one allocation for all columns: large blocks are faulted in as huge pages, many
            # column-sized ones page by page (several times slower)
            cols = np.empty((len(ws), g, n), np.int64)
            i = off = 0
            while i < len(ws):
                j, run = i, 0
                while j < len(ws) and run + ws[j] <= 57:
                    run += ws[j]
                    j += 1
                dt = np.uint32 if run <= 25 else np.uint64
                start = base + off
                rec = _gather(_unaligned_view(padded, nb, dt), start >> 3)
                rec >>= (start & 7).astype(dt)
                at, tmp = 0, None
                last = max([k for k in range(i, j) if ws[k]] + [i])
                for k in range(i, j):
                    f, w = self.fields[k], ws[k]
                    col = out[f.name] = cols[k]
                    if not w:
                        col[...] = 0
                        continue
                    if not at:
                        src = rec
                    elif k == last:  # rec is not needed any more
                        src = np.right_shift(rec, dt(at), out=rec)
                    else:
                        src = tmp = np.right_shift(rec, dt(at), out=tmp)
                    np.bitwise_and(src, dt((1 << w) - 1), out=col, casting="unsafe")
                    _signed(col, w, f.signed)
                    at += w
                off += run
                i = j
            return out
        words = _row_words(rows)
        if rb <= 64:
            rec = _read_rows(words, base, rb)
            if rb < 64:
                rec = rec.view(np.int64)
            off = 0
            for f, w in zip(self.fields, ws, strict=True):
                if w == 0:
                    out[f.name] = np.zeros((g, n), np.int64)
                elif rb == 64:
                    u = (rec >> np.uint64(off)) & np.uint64((1 << w) - 1) if w < 64 else rec.copy()
                    out[f.name] = _signed(u.view(np.int64), w, f.signed)
                else:
                    u = (rec >> off) if off else rec.copy()
                    if off + w < rb:
                        u &= (1 << w) - 1
                    out[f.name] = _signed(u, w, f.signed)
                off += w
            return out
        # records wider than 64 bits: each record's bits as a few 64-bit words aligned to its
        # start (one read per word, not per field), then each field by shifts of those words
        rec = [_read_rows(words, base + 64 * k, min(64, rb - 64 * k)) for k in range((rb + 63) // 64)]
        off = 0
        for f, w in zip(self.fields, ws, strict=True):
            if w == 0:
                out[f.name] = np.zeros((g, n), np.int64)
            else:
                k, b = off >> 6, off & 63
                u = rec[k] >> np.uint64(b)
                if b + w > 64:
                    u |= rec[k + 1] << np.uint64(64 - b)
                if w < 64:
                    u &= np.uint64((1 << w) - 1)
                out[f.name] = _signed(u.view(np.int64), w, f.signed)  # u is a fresh array
            off += w
        return out


def _row_words(rows: np.ndarray) -> np.ndarray:
    """uint8 ``(g, nb)`` as zero-padded little-endian 64-bit words ``(g, nb // 8 + 2)``."""
    g, nb = rows.shape
    nw = nb // 8 + 2
    padded = np.zeros((g, nw * 8), np.uint8)
    padded[:, :nb] = rows
    return padded.view("<u8")


def _padded_rows(rows: np.ndarray, pad: int) -> np.ndarray:
    """A copy of uint8 ``(g, nb)`` with ``pad`` zero bytes after every row."""
    g, nb = rows.shape
    padded = np.zeros((g, nb + pad), np.uint8)
    padded[:, :nb] = rows
    return padded


def _unaligned_view(padded: np.ndarray, nb: int, dt: type) -> np.ndarray:
    """The rows of ``padded`` (:func:`_padded_rows` of ``nb`` bytes, padded by at least the size
    of ``dt``) as ``(g, nb + 1)`` little-endian words of ``dt``: element ``[i, b]`` starts at byte
    ``b`` of row ``i`` (an unaligned view)."""
    return np.ndarray((padded.shape[0], nb + 1), np.dtype(dt).newbyteorder("<"), padded, 0,
                      (padded.shape[1], 1))


GATHER_TAKE = 4096
"""From this many records per row on, :func:`_gather` reads with ``np.take`` along the rows."""


def _gather(view: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``view[:, idx]``. Fancy indexing is fastest for short rows but lays the result out
    transposed (so only temporaries take it: the columns are written C-ordered by the ufunc that
    masks them); ``np.take`` along the rows is C-ordered and faster for long rows."""
    return np.ascontiguousarray(view[:, idx]) if idx.size < GATHER_TAKE else \
        np.take(view, idx, axis=1)


def _read_rows(words: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
    """Unsigned fields (width 1..64) at bit ``starts`` of every row of ``words``: ``(g, len)``
    (C-ordered: ``np.take`` along the rows, where ``words[:, idx]`` would give a transposed
    layout that makes every later per-core pass stride through memory)."""
    wi = starts >> 6
    bit = (starts & 63).astype(np.uint64)
    v = np.take(words, wi, axis=1)
    v >>= bit
    hi = np.take(words, wi + 1, axis=1)
    hi <<= np.uint64(1)
    hi <<= np.uint64(63) - bit  # a shift by 64 - bit that gives 0 for bit = 0
    v |= hi
    if width < 64:
        v &= np.uint64((1 << width) - 1)
    return v


def _signed(v: np.ndarray, width: int, signed: bool) -> np.ndarray:
    """int64 ``width``-bit patterns (in place) as two's complement values when ``signed``."""
    if signed and 0 < width < 64:
        half = 1 << (width - 1)
        v ^= half
        v -= half
    return v


def bitlen(n: int) -> int:
    """Bits needed to hold every value 0..n (0 for n <= 0)."""
    return int(n).bit_length() if n > 0 else 0


def to_field(v: np.ndarray, width: int, signed: bool, what: str = "field") -> np.ndarray:
    """Values as unsigned ``width``-bit patterns (two's complement when signed).

    ValueError when a value does not fit."""
    v = np.asarray(v, np.int64)
    if v.size == 0:
        return v.astype(np.uint64)
    if signed:
        lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if width else (0, 0)
    else:
        lo, hi = 0, (1 << width) - 1
    bad = (v < lo) | (v > hi)
    if bad.any():
        raise ValueError(f"{what}: value {int(v[bad][0])} does not fit {width} "
                         f"{'signed' if signed else 'unsigned'} bits ({lo}..{hi})")
    return (v & ((1 << width) - 1)).astype(np.uint64) if width < 64 else v.astype(np.uint64)


def from_field(u: np.ndarray, width: int, signed: bool) -> np.ndarray:
    """Unsigned ``width``-bit patterns back to int64 values."""
    v = np.asarray(u).astype(np.int64)
    if signed and width:
        v = np.where(v >= (1 << (width - 1)), v - (1 << width), v)
    return v


def put_bits(values: np.ndarray, starts: np.ndarray, widths: np.ndarray | int,
             total_bits: int) -> bytes:
    """A bit stream of ``total_bits`` (rounded up to bytes) holding ``values[i]`` (already
    unsigned patterns, width <= 32) at bit ``starts[i]``, LSB first. Fields must not overlap."""
    nbytes = (int(total_bits) + 7) // 8
    values = np.asarray(values, np.uint64)
    starts = np.asarray(starts, np.int64)
    widths = np.broadcast_to(np.asarray(widths, np.int64), starts.shape)
    keep = widths > 0
    values, starts = values[keep], starts[keep]
    buf = np.zeros(nbytes + 8, np.uint64)
    if values.size:
        shifted = values << (starts & 7).astype(np.uint64)  # < 2**40
        byte0 = starts >> 3
        # Spread each field over the (at most 5) bytes it touches; fields never share a bit, so
        # adding the byte contributions is the same as OR-ing them.
        for k in range(5):
            part = (shifted >> np.uint64(8 * k)) & np.uint64(0xFF)
            nz = part != 0
            if nz.any():
                buf[:] += np.bincount(byte0[nz] + k, weights=part[nz].astype(np.float64),
                                      minlength=buf.size).astype(np.uint64)
    return buf[:nbytes].astype(np.uint8).tobytes()


class BitReader:
    """Reads unsigned fields (width <= 57) at arbitrary bit offsets of an LSB-first byte stream.

    The stream is copied once into 64-bit words (zero-padded), so each read is a couple of
    vectorised shifts: field = (word[s >> 6] >> (s & 63)) | (word[(s >> 6) + 1] << (64 - (s & 63)))."""

    def __init__(self, buf: np.ndarray | bytes):
        b = np.frombuffer(buf, np.uint8) if isinstance(buf, bytes | bytearray | memoryview) else \
            np.asarray(buf, np.uint8)
        n = (b.size + 7) // 8 + 2
        padded = np.zeros(n * 8, np.uint8)
        padded[:b.size] = b
        self.words = padded.view("<u8")
        self.nbits = b.size * 8

    def get(self, starts: np.ndarray, width: int | np.ndarray) -> np.ndarray:
        """Unsigned fields of ``width`` bits (a scalar or one per start) at bit ``starts``."""
        starts = np.asarray(starts, np.int64)
        if starts.size == 0:
            return np.zeros(starts.shape, np.uint64)
        wi = starts >> 6
        bit = (starts & 63).astype(np.uint64)
        v = self.words[wi]
        v >>= bit
        # The upper part comes from the next word. Shifting by 1 and then by 63 - bit (both
        # < 64) is a shift by 64 - bit that gives 0 when the field starts on a word boundary,
        # without a select over the whole array.
        hi = self.words[wi + 1]
        hi <<= np.uint64(1)
        hi <<= np.uint64(63) - bit
        v |= hi
        if np.ndim(width) == 0:
            w = int(width)
            if w < 64:
                v &= np.uint64((1 << w) - 1)
            return v
        w = np.asarray(width, np.uint64)
        # (1 << w) - 1 for w < 64; w >= 64 keeps every bit (1 << 0 wraps to all ones below)
        mask = (np.uint64(1) << (w & np.uint64(63))) - np.uint64(1)
        mask = np.where(w >= 64, np.uint64(0xFFFFFFFFFFFFFFFF), mask) if bool((w >= 64).any()) \
            else mask
        return v & mask


def get_bits(buf: np.ndarray | BitReader, starts: np.ndarray, width: int | np.ndarray) -> np.ndarray:
    """Read unsigned fields (width <= 57) at bit offsets ``starts`` of the LSB-first stream
    ``buf`` (uint8 bytes or a :class:`BitReader`). The caller guarantees the fields lie inside."""
    r = buf if isinstance(buf, BitReader) else BitReader(buf)
    return r.get(starts, width)


# ------------------------------------------------------------------------------------------
# Container
# ------------------------------------------------------------------------------------------
FILE_HEADER = Struct("FILE_HEADER", [
    Field("magic", 64, kind="bytes", doc="b'\\x89NMC\\r\\n\\x1a\\n'"),
    Field("version_major", 16),
    Field("version_minor", 16),
    Field("n_sections", 32, lo=1, hi=MAX_SECTIONS),
    Field("file_bytes", 64, doc="size of the whole file, trailer included"),
    Field("table_crc", 32, doc="CRC32 of the header (this field as zero) and the section table"),
    Field("reserved", 32, kind="reserved"),
], doc="At byte 0.")

SECTION_ENTRY = Struct("SECTION_ENTRY", [
    Field("kind", 16, doc="Kind.*; >= 0x8000: optional"),
    Field("index", 16, doc="core id for CORE sections, else 0"),
    Field("reserved", 32, kind="reserved"),
    Field("offset", 64, doc="byte offset of the payload (multiple of 8)"),
    Field("length", 64, doc="payload bytes"),
    Field("crc", 32, doc="CRC32 of the payload"),
    Field("reserved2", 32, kind="reserved"),
], doc="n_sections entries right after the file header.")


def crc32(data: bytes | memoryview) -> int:
    """CRC-32 (zlib / IEEE 802.3 polynomial) of ``data``."""
    return zlib.crc32(data) & 0xFFFFFFFF


_CRC_POLY = 0xEDB88320  # CRC-32 polynomial, bit-reflected (zlib)


def _multmodp(a: int, b: int) -> int:
    """a * b modulo the CRC-32 polynomial (reflected bit order; ``a`` nonzero), as zlib's
    ``multmodp``."""
    m = 1 << 31
    p = 0
    while True:
        if a & m:
            p ^= b
            if not a & (m - 1):
                return p
        m >>= 1
        b = (b >> 1) ^ _CRC_POLY if b & 1 else b >> 1


_X2N = [1 << 30]  # x^(2^k) modulo the polynomial, k = 0..31 (x^1 = 1 << 30)
for _k in range(31):
    _X2N.append(_multmodp(_X2N[-1], _X2N[-1]))
_X8N: dict[int, int] = {}


def _x8nmodp(n: int) -> int:
    """x^(8 n) modulo the polynomial: appending n zero bytes (cached by n)."""
    p = _X8N.get(n)
    if p is None:
        p, k, m = 1 << 31, 3, n  # x^0
        while m:
            if m & 1:
                p = _multmodp(_X2N[k & 31], p)
            m >>= 1
            k += 1
        if len(_X8N) < 4096:
            _X8N[n] = p
    return p


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC-32 of ``A + B`` from ``crc1`` (of A), ``crc2`` (of B) and ``len2`` (bytes of B),
    without reading A or B (zlib's ``crc32_combine``)."""
    return (_multmodp(_x8nmodp(len2), crc1) if len2 else crc1) ^ crc2


def align(n: int, a: int = SECTION_ALIGN) -> int:
    return (n + a - 1) // a * a


def assemble(sections: Sequence[tuple[int, int, bytes]],
             version: tuple[int, int] = (VERSION_MAJOR, VERSION_MINOR)) -> bytes:
    """The bytes of an image from ``(kind, index, payload)`` sections, in the given order."""
    n = len(sections)
    pos = align(HEADER_BYTES + n * SECTION_ENTRY_BYTES)
    entries = []
    body = bytearray()
    for kind, index, payload in sections:
        entries.append(dict(kind=kind, index=index, offset=pos, length=len(payload),
                            crc=crc32(payload)))
        body += payload
        pad = align(len(payload)) - len(payload)
        body += b"\0" * pad
        pos += len(payload) + pad
    file_bytes = pos + TRAILER_BYTES
    table = SECTION_ENTRY.pack(entries)
    head = dict(magic=MAGIC, version_major=version[0], version_minor=version[1], n_sections=n,
                file_bytes=file_bytes, table_crc=0)
    hdr = FILE_HEADER.pack(head)
    head["table_crc"] = crc32(hdr + table)
    hdr = FILE_HEADER.pack(head)
    gap = align(HEADER_BYTES + len(table)) - (HEADER_BYTES + len(table))
    out = hdr + table + b"\0" * gap + bytes(body)
    return out + struct.pack("<I", crc32(out))


# ------------------------------------------------------------------------------------------
# Family-independent sections
# ------------------------------------------------------------------------------------------
META = Struct("META", [
    Field("family", 8, doc="FAMILY_IDS"),
    Field("reserved0", 8, kind="reserved", count=3),
    Field("n_cores", 32, lo=1, doc="CORE sections that follow (ids 0..n_cores-1)"),
    Field("n_chips", 16, lo=1, doc="chips used; chip c spans global x c*mesh_x .. c*mesh_x+mesh_x-1"),
    Field("mesh_x", 16, lo=1, doc="cores per chip along x"),
    Field("mesh_y", 16, lo=1, doc="cores per chip along y"),
    Field("reserved1", 16, kind="reserved"),
    Field("profile_name", 32, doc="string id"),
    Field("graph_name", 32, doc="string id"),
    Field("profile_sha256", 256, kind="bytes", doc="sha256 of the profile file"),
    Field("dt", 64, kind="float", doc="model seconds per tick (the graph's dt)"),
    Field("n_populations", 32),
    Field("n_inputs", 32),
    Field("n_outputs", 32),
    Field("reserved2", 32, kind="reserved"),
])

STRINGS_HEADER = Struct("STRINGS_HEADER", [
    Field("n_strings", 32),
    Field("blob_bytes", 32),
], doc="Followed by n_strings + 1 u32 offsets into the blob (first 0, non-decreasing, last "
       "blob_bytes), then the UTF-8 blob. String id i is blob[offsets[i]:offsets[i+1]].")

PARAM_TYPES = {1: "int", 2: "float", 3: "str"}
PARAM_RECORD = Struct("PARAM_RECORD", [
    Field("key", 32, doc="string id; records sorted by key text, no duplicates"),
    Field("type", 8, lo=1, hi=3, doc="1 int, 2 float, 3 string"),
    Field("reserved", 8, kind="reserved", count=3),
    Field("ivalue", 64, signed=True, doc="int value (0 unless type 1)"),
    Field("fvalue", 64, kind="float", doc="float value (0 unless type 2)"),
    Field("svalue", 32, doc="string id (0 unless type 3)"),
    Field("source", 32, doc="string id of the value's source tag ('code: ...', 'ours: ...')"),
], doc="PARAMS = u32 count, u32 reserved, then the records.")

COUNT_HEADER = Struct("COUNT_HEADER", [
    Field("count", 32),
    Field("reserved", 32, kind="reserved"),
])

IOMAP_HEADER = Struct("IOMAP_HEADER", [
    Field("n_inputs", 32),
    Field("n_outputs", 32),
    Field("n_in_entries", 32),
    Field("n_out_entries", 32),
], doc="Followed by n_inputs then n_outputs PORT records, n_in_entries IN_ENTRY and "
       "n_out_entries OUT_ENTRY records.")

PORT_KINDS = {0: "spikes", 1: "values"}
PORT = Struct("PORT", [
    Field("name", 32, doc="string id"),
    Field("width", 32, lo=1, doc="elements (flat, C order)"),
    Field("kind", 8, hi=1, doc="0 spikes; 1 values (readout compartments' v)"),
    Field("ndim", 8, lo=1, hi=4),
    Field("reserved", 16, kind="reserved"),
    Field("dims", 32, count=4, doc="shape, unused dims 0"),
    Field("first", 32, doc="first entry of this port in IN_ENTRY / OUT_ENTRY"),
    Field("count", 32, doc="entries of this port"),
    Field("latency", 32, signed=True, doc="ticks from input to earliest output (-1: none/unknown)"),
    Field("extra_latency", 32, doc="ticks the mapping adds: chip output at t + extra equals "
                                   "the reference at t"),
    Field("reserved2", 32, kind="reserved"),
])

IN_ENTRY = Struct("IN_ENTRY", [
    Field("core", 32),
    Field("axon", 32, doc="axon of element start; element k goes to axon + (k - start)"),
    Field("start", 32),
    Field("stop", 32),
])

OUT_ENTRY = Struct("OUT_ENTRY", [
    Field("core", 32),
    Field("neuron", 32, doc="compartment of element start; element k reads neuron + (k - start)"),
    Field("start", 32),
    Field("stop", 32),
])

POPULATION = Struct("POPULATION", [
    Field("name", 32, doc="string id"),
    Field("size", 32, lo=1),
    Field("readout", 8, hi=1, doc="1: non-spiking readout (its output is v)"),
    Field("ndim", 8, lo=1, hi=4),
    Field("reserved", 16, kind="reserved"),
    Field("dims", 32, count=4),
    Field("reserved2", 32, kind="reserved"),
], doc="SYMBOLS = COUNT_HEADER then one record per population; the CORE slices place them.")

SLICE = Struct("SLICE", [
    Field("population", 32, doc="index into SYMBOLS"),
    Field("start", 32),
    Field("stop", 32),
], doc="A core's compartments are its slices' neurons in order.")


# ------------------------------------------------------------------------------------------
# Run-time parameters (PARAMS)
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Param:
    """A PARAMS key: its type and range; where the writer finds it; a default when the profile
    lacks the key (with the default's source). ``derive`` names a rule the writer applies."""

    key: str
    type: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple | None = None
    profile_key: str | None = None
    default: Any = None
    default_source: str = ""
    derive: str = ""
    doc: str = ""


def _p(key: str, type_: str, lo=None, hi=None, choices=None, *, profile: str | None = "same",
       default=None, source: str = "", derive: str = "", doc: str = "") -> Param:
    return Param(key, type_, lo, hi, choices, key if profile == "same" else profile, default,
                 source, derive, doc)


_OURS_DEFAULT = "ours: emulator/format.py default (the profile does not define {key})"

COMMON_PARAMS: tuple[Param, ...] = (
    _p("chip.tick_seconds", "float", 0.0, None, doc="wall-clock seconds of one tick"),
    _p("chip.speedup", "float", 1e-12, None, doc="biological time / chip time"),
    _p("noc.hop_cycles", "int", 0, 1 << 16, doc="cycles a packet takes over one link"),
    _p("noc.port_cycles_per_packet", "int", 1, 1 << 16, doc="cycles an output port is busy"),
    _p("noc.fifo_depth", "int", 1, 1 << 16, doc="packets per router input FIFO"),
    _p("noc.clock_hz", "float", 1.0, None, doc="router and core clock"),
    _p("noc.cycles_per_sop", "int", 0, 1 << 16, default=1,
       source=_OURS_DEFAULT.format(key="noc.cycles_per_sop") + "; one synaptic op per cycle",
       doc="core cycles per synaptic operation"),
    _p("noc.cycles_per_update", "int", 0, 1 << 16, default=1,
       source=_OURS_DEFAULT.format(key="noc.cycles_per_update") + "; one compartment per cycle",
       doc="core cycles per compartment update"),
    _p("noc.overrun", "str", choices=("stretch", "drop"), default="stretch",
       source=_OURS_DEFAULT.format(key="noc.overrun")
       + "; Loihi's tick is barrier-synchronised, so a late tick lasts longer (stretch)",
       doc="a tick that overruns its period: stretch (lasts longer, nothing lost) or drop "
           "(packets undelivered at the deadline are dropped and counted)"),
    _p("energy.sop", "float", 0.0, None, doc="J per synaptic operation"),
    _p("energy.spike", "float", 0.0, None, doc="J per spike sent"),
    _p("energy.update_active", "float", 0.0, None, doc="J per active compartment update"),
    _p("energy.update_idle", "float", 0.0, None, doc="J per idle compartment update"),
    _p("energy.hop_ew", "float", 0.0, None, doc="J per packet hop east-west"),
    _p("energy.hop_ns", "float", 0.0, None, doc="J per packet hop north-south"),
    _p("energy.static_watts", "float", 0.0, None, doc="static power of one chip"),
    _p("core.neurons", "int", 1, 1 << 20),
)

LOIHI_PARAMS: tuple[Param, ...] = COMMON_PARAMS + (
    _p("core.axons_in", "int", 1, 1 << 20),
    _p("core.axons_out", "int", 1, 1 << 24),
    _p("core.synapse_words", "int", 1, 1 << 28),
    _p("core.synapse_word_bits", "int", 8, 1024, doc="a multiple of 8"),
    _p("core.compartment_configs", "int", 1, 1 << 16),
    _p("core.threshold_configs", "int", 1, 1 << 16),
    _p("core.synapse_configs", "int", 1, 16, doc="at most 2**synapse.fmt_bits"),
    _p("widths.weight", "int", 0, 8, doc="largest stored weight bits"),
    _p("widths.weight_exp_min", "int", -8, 0),
    _p("widths.weight_exp_max", "int", 0, 7),
    _p("widths.decay", "int", 1, 16, doc="du, dv bits; decays are (x * (2**decay - d)) >> decay"),
    _p("widths.u", "int", 2, 32, doc="current register bits (signed)"),
    _p("widths.v", "int", 2, 32, doc="voltage register bits (signed)"),
    _p("widths.vth_mant", "int", 1, 24),
    _p("widths.bias_mant", "int", 2, 24, doc="signed"),
    _p("widths.bias_exp", "int", 0, 4),
    _p("widths.weight_exp", "int", 4, 4, profile=None, derive="weight_exp",
       doc="bits of the signed weight exponent (fixed by the format)"),
    _p("widths.refractory", "int", 0, 8, profile=None, derive="bitlen:neuron.refractory_max"),
    _p("widths.delay", "int", 0, 8, profile=None, derive="bitlen:synapse.delay_max",
       doc="bits of a stored delay - 1"),
    _p("neuron.refractory_max", "int", 0, 255),
    _p("synapse.delay_max", "int", 1, 256),
    _p("synapse.group_size", "int", 1, 1 << 12, default=64,
       source="code: nengo-loihi SynapseConfig (up to 64 synapses per block; 6-bit count)"),
    _p("synapse.group_header_bits", "int", 2, 32, default=10,
       source="code: nengo-loihi SynapseConfig (10-bit block header: 4-bit format, 6-bit count)"),
    _p("synapse.count_bits", "int", 1, 16, profile=None, derive="bitlen:synapse.group_size-1",
       doc="block header: bits of count - 1"),
    _p("synapse.fmt_bits", "int", 1, 16, profile=None, derive="header-count",
       doc="block header: bits of the format index (group_header_bits - count_bits)"),
    _p("overflow.u", "str", choices=("wrap",), doc="u wraps into (-2**(u-1), 2**(u-1)]"),
    _p("overflow.v", "str", choices=("saturate",), doc="v saturates at +-(2**(v-1) - 1)"),
    _p("datapath.du_offset", "int", 0, 1, profile=None, derive="native:DS_OFFSET",
       doc="added to du: the current decays by 2**decay - (du + du_offset)"),
    _p("datapath.dv_offset", "int", 0, 1, profile=None, derive="native:DM_OFFSET"),
    _p("datapath.act_shift", "int", 0, 16, profile=None, derive="native:ACT_SHIFT",
       doc="u += a << act_shift; threshold = vth_mant << act_shift"),
)
"""PARAMS of a loihi image. Every key is required on load; unknown keys are refused."""

TRUENORTH_PARAMS: tuple[Param, ...] = tuple(
    p for p in COMMON_PARAMS if p.key not in ("noc.cycles_per_sop", "noc.cycles_per_update")) + (
    _p("noc.cycles_per_sop", "int", 0, 1 << 16, profile=None, derive="zero",
       doc="core cycles per synaptic event (0: a TrueNorth core scans every axon anyway)"),
    _p("noc.cycles_per_update", "int", 0, 1 << 24, profile=None, derive="axons+2",
       doc="core cycles per neuron: core.axons + 2 (RANC: neurons x (axons + 2) per tick)"),
    _p("core.axons", "int", 1, 1 << 12),
    _p("core.axon_types", "int", 4, 4),
    _p("core.scheduler_slots", "int", 2, 16),
    _p("core.targets_per_neuron", "int", 1, 1),
    _p("core.tick_cycles", "int", 1, None),
    _p("widths.weight", "int", 2, 9, doc="signed s0..s3 bits"),
    _p("widths.leak", "int", 2, 9, doc="signed leak bits"),
    _p("widths.threshold", "int", 1, 18, doc="alpha, beta magnitude bits"),
    _p("widths.reset", "int", 1, 18, doc="signed reset value bits"),
    _p("widths.membrane", "int", 2, 32, doc="default membrane width (a population may declare its own)"),
    _p("widths.tm", "int", 0, 18, doc="largest threshold PRN mask width"),
    _p("widths.prn_compare", "int", 8, 8, doc="bits of the random number a stochastic synapse or leak compares"),
    _p("widths.delay", "int", 1, 4, profile=None, derive="bitlen:core.scheduler_slots-1",
       doc="bits of an axon's delay (1 .. scheduler_slots - 1)"),
    _p("widths.tm_field", "int", 0, 5, profile=None, derive="bitlen:widths.tm",
       doc="bits of a neuron's tm field"),
    _p("overflow.membrane", "str", choices=("saturate", "wrap"),
       doc="the profile's default; every neuron record carries its own policy"),
    _p("noc.dx_bits", "int", 2, 16, doc="signed relative x offset of a route"),
    _p("noc.dy_bits", "int", 2, 16, doc="signed relative y offset of a route"),
    _p("noc.axon_bits", "int", 1, 16, doc="target axon bits of a route"),
    _p("datapath.draw_threshold", "int", 0, 0, profile=None, derive="native:DRAW_THRESHOLD",
       doc="PRNG draw index of the threshold offset"),
    _p("datapath.draw_leak", "int", 1, 1, profile=None, derive="native:DRAW_LEAK",
       doc="PRNG draw index of the stochastic leak"),
    _p("datapath.draw_synapse", "int", 2, 2, profile=None, derive="native:DRAW_SYNAPSE",
       doc="PRNG draw index of synapse k of type G: draw_synapse + 4 k + G"),
)
"""PARAMS of a truenorth image."""

PARAMS_BY_FAMILY: dict[str, tuple[Param, ...]] = {"loihi": LOIHI_PARAMS,
                                                  "truenorth": TRUENORTH_PARAMS}


# ------------------------------------------------------------------------------------------
# Loihi core section
# ------------------------------------------------------------------------------------------
LOIHI_SIGN_MODES = ("mixed", "excitatory", "inhibitory")
"""FMT.sign codes 0, 1, 2."""

LOIHI_CORE_HEADER = Struct("LOIHI_CORE_HEADER", [
    Field("chip", 16),
    Field("x", 16),
    Field("y", 16),
    Field("reserved", 16, kind="reserved"),
    Field("n_neurons", 32, lo=1, doc="compartments"),
    Field("n_axons", 32, doc="input axons"),
    Field("n_routes", 32, doc="output axons (route entries)"),
    Field("n_words", 32, doc="synapse memory words used"),
    Field("n_slices", 16, lo=1),
    Field("n_cx", 16, lo=1, doc="compartment configs"),
    Field("n_vth", 16, lo=1, doc="threshold configs"),
    Field("n_fmt", 16, doc="synapse formats"),
    Field("n_acc", 16, doc="dendritic accumulator groups"),
    Field("reserved2", 16, kind="reserved"),
    Field("w_nblk", 8, hi=32, doc="bits of AXON.n_blocks"),
    Field("w_rlen", 8, hi=32, doc="bits of NEURON.n_routes"),
    Field("reserved3", 8, kind="reserved", count=6),
], doc="Then SLICE x n_slices, then the bit tables CX, VTH, ACC, FMT, NEURON, AXON, the "
       "synapse memory (n_words words of core.synapse_word_bits) and ROUTE, each starting on a "
       "byte boundary. Derived widths: w_cx = bitlen(n_cx-1), w_vth = bitlen(n_vth-1), "
       "w_acc = bitlen(n_acc-1), w_nidx = bitlen(n_neurons-1), w_ptr = bitlen(n_words), "
       "w_chip = bitlen(n_chips-1), w_x = bitlen(mesh_x-1), w_y = bitlen(mesh_y-1), "
       "w_axon = bitlen(core.axons_in-1).")

LOIHI_CX = BitTable("LOIHI_CX", [
    Field("du", "widths.decay", doc="current decay (Lava's du)"),
    Field("dv", "widths.decay", doc="voltage decay"),
    Field("refractory", "widths.refractory", doc="ticks v is held at 0 after a spike"),
    Field("readout", 1, doc="1: never spikes; output is v"),
], doc="Compartment configs.")

LOIHI_VTH = BitTable("LOIHI_VTH", [
    Field("vth_mant", "widths.vth_mant", doc="threshold = vth_mant << act_shift"),
], doc="Threshold configs.")

LOIHI_ACC = BitTable("LOIHI_ACC", [
    Field("weight_exp", "widths.weight_exp", signed=True,
          doc="the group's per-tick sum a is shifted: a << e (e > 0) or a >> -e (floor)"),
], doc="Dendritic accumulator groups. Synapses of one group into one compartment are summed per "
       "arrival tick, then shifted by the group's exponent (Lava's per-connection weight "
       "exponent), then the groups are added.")

LOIHI_FMT = BitTable("LOIHI_FMT", [
    Field("wb", 4, hi=8, doc="stored weight bits"),
    Field("sign", 2, hi=2, doc="0 mixed (wb-bit two's complement, w = s << (9 - wb)); "
                               "1 excitatory (w = s << (8 - wb)); 2 inhibitory (w = -(s << (8 - wb)))"),
    Field("db", 4, hi=8, doc="bits of the stored delay - 1 (0: every synapse has delay 1)"),
    Field("dense", 1, doc="1: no index; the i-th synapse of an axon feeds compartment base + i"),
    Field("ib", 5, hi=24, doc="index bits (sparse): synapse feeds compartment base + idx"),
    Field("acc", "w_acc", doc="accumulator group"),
], doc="Synapse formats.")

LOIHI_NEURON = BitTable("LOIHI_NEURON", [
    Field("cx", "w_cx"),
    Field("vth", "w_vth"),
    Field("bias_mant", "widths.bias_mant", signed=True, doc="bias = bias_mant << bias_exp"),
    Field("bias_exp", "widths.bias_exp"),
    Field("n_routes", "w_rlen", doc="route entries of this compartment (ROUTE, in order)"),
], doc="One record per compartment.")

LOIHI_AXON = BitTable("LOIHI_AXON", [
    Field("ptr", "w_ptr", doc="first synapse word; equals the end of the previous axon's blocks"),
    Field("n_blocks", "w_nblk", doc="synapse blocks of this axon"),
    Field("base", "w_nidx", doc="compartment base"),
], doc="One record per input axon.")

LOIHI_BLOCK_HEADER = BitTable("LOIHI_BLOCK_HEADER", [
    Field("fmt", "synapse.fmt_bits"),
    Field("count_minus_1", "synapse.count_bits", doc="synapses in the block - 1 (<= group_size - 1)"),
], doc="A block starts on a word boundary: this header, then count synapses of the format "
       "(LOIHI_SYNAPSE), then zero bits up to the next word. All blocks of an axon share a format.")

LOIHI_SYNAPSE = BitTable("LOIHI_SYNAPSE", [
    Field("idx", "ib", doc="sparse formats only"),
    Field("weight", "wbits", doc="stored weight (see FMT.sign); wbits = max(wb, 0)"),
    Field("delay_minus_1", "db", doc="synaptic delay - 1 (delay >= 1)"),
])

LOIHI_ROUTE = BitTable("LOIHI_ROUTE", [
    Field("chip", "w_chip"),
    Field("x", "w_x"),
    Field("y", "w_y"),
    Field("axon", "w_axon", doc="input axon of the destination core"),
], doc="Output axons: a spike of a compartment sends one packet per route entry.")


# ------------------------------------------------------------------------------------------
# TrueNorth core section
# ------------------------------------------------------------------------------------------
TN_CORE_HEADER = Struct("TN_CORE_HEADER", [
    Field("chip", 16),
    Field("x", 16),
    Field("y", 16),
    Field("reserved", 16, kind="reserved"),
    Field("n_neurons", 32, lo=1),
    Field("n_axons", 32),
    Field("n_routes", 32, doc="route entries (at most core.targets_per_neuron per neuron)"),
    Field("n_slices", 16, lo=1),
    Field("w_rlen", 8, hi=8, doc="bits of TN_NEURON.n_routes"),
    Field("reserved2", 8, kind="reserved"),
], doc="Then SLICE x n_slices and the bit tables TN_AXON, TN_NEURON, TN_CROSSBAR, TN_ROUTE, "
       "each starting on a byte boundary.")

TN_AXON = BitTable("TN_AXON", [
    Field("type", 2, doc="axon type G (selects s_G of the neuron)"),
    Field("delay", "widths.delay", doc="ticks from the source's spike to its effect (1 .. "
                                        "scheduler_slots - 1; ours: kept with the axon, RANC "
                                        "carries it in the packet)"),
], doc="One record per input axon.")

TN_NEURON = BitTable("TN_NEURON", [
    Field("s0", "widths.weight", signed=True),
    Field("s1", "widths.weight", signed=True),
    Field("s2", "widths.weight", signed=True),
    Field("s3", "widths.weight", signed=True),
    Field("stoch_syn", 4, doc="bit G: synapses of type G are stochastic"),
    Field("leak", "widths.leak", signed=True),
    Field("leak_rev", 1),
    Field("stoch_leak", 1),
    Field("alpha", "widths.threshold"),
    Field("beta", "widths.threshold"),
    Field("tm", "widths.tm_field"),
    Field("gamma", 2, hi=2, doc="reset: 0 to v_reset, 1 subtract, 2 none"),
    Field("kappa", 1),
    Field("v_reset", "widths.reset", signed=True),
    Field("v_bits", 6, lo=2, hi=32, doc="membrane width"),
    Field("overflow", 1, doc="0 saturate, 1 wrap"),
    Field("seed", 32, doc="PRNG seed"),
    Field("nid", 32, doc="PRNG neuron id (the population's id_base + index)"),
    Field("n_routes", "w_rlen"),
], doc="One record per neuron (ir/native/truenorth.py gives the update rule and the PRNG).")

TN_CROSSBAR = BitTable("TN_CROSSBAR", [
    Field("bit", 1),
], doc="n_axons x n_neurons bits, axon-major: bit (a, j) connects axon a to neuron j.")

TN_ROUTE = BitTable("TN_ROUTE", [
    Field("dx", "noc.dx_bits", signed=True, doc="relative x of the destination core (global grid)"),
    Field("dy", "noc.dy_bits", signed=True),
    Field("axon", "noc.axon_bits", doc="input axon of the destination core"),
], doc="The packet a spike sends (RANC: dx, dy relative; the delay is the axon's).")


@dataclass(frozen=True)
class CoreLayout:
    """The CORE section of one family: its header and its tables, in file order."""

    family: str
    header: Struct
    tables: tuple[Any, ...] = field(default_factory=tuple)


CORE_LAYOUTS: dict[str, CoreLayout] = {
    "loihi": CoreLayout("loihi", LOIHI_CORE_HEADER,
                        (SLICE, LOIHI_CX, LOIHI_VTH, LOIHI_ACC, LOIHI_FMT, LOIHI_NEURON,
                         LOIHI_AXON, LOIHI_BLOCK_HEADER, LOIHI_SYNAPSE, LOIHI_ROUTE)),
    "truenorth": CoreLayout("truenorth", TN_CORE_HEADER,
                            (SLICE, TN_AXON, TN_NEURON, TN_CROSSBAR, TN_ROUTE)),
}
"""Per-family CORE layouts. A new family adds its header and tables here, a ``*_PARAMS`` tuple,
a decoder in ``emulator/loader.py`` and a datapath module (see docs/image-format.md)."""


def _family_module(family: str) -> Any:
    """``emulator.format_<family>`` when the family keeps its layout in a module of its own."""
    import importlib

    try:
        return importlib.import_module(f"emulator.format_{family}")
    except ImportError:
        return None


def family_params(family: str) -> tuple[Param, ...] | None:
    """The PARAMS keys of a family: :data:`PARAMS_BY_FAMILY`, or ``PARAMS`` of the family's
    own format module ``emulator/format_<family>.py`` (None when the family has none)."""
    if family in PARAMS_BY_FAMILY:
        return PARAMS_BY_FAMILY[family]
    mod = _family_module(family)
    params = getattr(mod, "PARAMS", None)
    if params is not None:
        PARAMS_BY_FAMILY[family] = params
    return params


def family_layout(family: str) -> CoreLayout | None:
    """The CORE layout of a family: :data:`CORE_LAYOUTS`, or ``LAYOUT`` of
    ``emulator/format_<family>.py``."""
    if family in CORE_LAYOUTS:
        return CORE_LAYOUTS[family]
    layout = getattr(_family_module(family), "LAYOUT", None)
    if layout is not None:
        CORE_LAYOUTS[family] = layout
    return layout


def loihi_weight_decode(s: np.ndarray, wb: np.ndarray, sign: np.ndarray) -> np.ndarray:
    """Stored weight fields back to the synapse's integer weight (see LOIHI_FMT.sign)."""
    s = np.asarray(s, np.int64)
    wb = np.asarray(wb, np.int64)
    sign = np.asarray(sign, np.int64)
    mixed = sign == 0
    sv = np.where(mixed & (wb > 0), np.where(s >= (np.int64(1) << np.maximum(wb - 1, 0)),
                                              s - (np.int64(1) << wb), s), s)
    shift = np.where(mixed, 9 - wb, 8 - wb)
    mag = sv << shift
    return np.where(sign == 2, -mag, mag)


def loihi_weight_encode(w: np.ndarray, wb: int, sign: int) -> np.ndarray:
    """A legal integer weight as its stored field of ``wb`` bits (ValueError if not exact)."""
    w = np.asarray(w, np.int64)
    if sign == 0:
        shift = 9 - wb
        s = w >> shift
        field_ = s & ((1 << wb) - 1) if wb else s * 0
        lo, hi = (-(1 << (wb - 1)), (1 << (wb - 1)) - 1) if wb else (0, 0)
    else:
        shift = 8 - wb
        s = (w if sign == 1 else -w) >> shift
        field_ = s
        lo, hi = 0, (1 << wb) - 1
    bad = ((s << shift) != (w if sign != 2 else -w)) | (s < lo) | (s > hi)
    if bad.any():
        raise ValueError(f"weight {int(w[bad][0])} cannot be stored in {wb} bits "
                         f"({LOIHI_SIGN_MODES[sign]})")
    return field_.astype(np.int64)


# ------------------------------------------------------------------------------------------
# Description (for docs/image-format.md)
# ------------------------------------------------------------------------------------------
def _width_text(f: Field) -> str:
    w = f.bits if isinstance(f.bits, str) else str(f.bits)
    if f.kind == "float":
        return "f64"
    if f.kind == "bytes":
        return f"{int(f.bits) // 8} bytes"
    t = ("i" if f.signed else "u") + w if not isinstance(f.bits, str) else (
        f"{'signed ' if f.signed else ''}{w}")
    return t + (f" x {f.count}" if f.count > 1 else "")


def describe(families: tuple[str, ...] = ("loihi", "truenorth")) -> str:
    """The layout tables as Markdown (the reference part of docs/image-format.md): the container
    and family-independent sections, then the CORE tables and PARAMS keys of ``families``."""
    tables: list[Any] = [FILE_HEADER, SECTION_ENTRY, META, STRINGS_HEADER, PARAM_RECORD,
                         COUNT_HEADER, IOMAP_HEADER, PORT, IN_ENTRY, OUT_ENTRY, POPULATION, SLICE]
    for fam in families:
        lay = family_layout(fam)
        if lay is None:
            continue
        tables.append(lay.header)
        tables.extend(t for t in lay.tables if t not in tables)
    out = []
    for t in tables:
        kind = "bytes" if isinstance(t, Struct) else "bits"
        size = f" ({t.size} bytes)" if isinstance(t, Struct) else " (bit-packed)"
        out.append(f"### {t.name}{size}\n")
        if t.doc:
            out.append(t.doc + "\n")
        out.append(f"| field | {kind} | notes |\n|---|---|---|")
        for f in t.fields:
            note = f.doc
            rng = []
            if f.kind == "reserved":
                rng.append("must be 0")
            if f.lo is not None:
                rng.append(f">= {f.lo}")
            if f.hi is not None:
                rng.append(f"<= {f.hi}")
            if rng:
                note = (note + "; " if note else "") + ", ".join(rng)
            out.append(f"| {f.name} | {_width_text(f)} | {note} |")
        out.append("")
    for fam in families:
        params = family_params(fam)
        if params is None:
            continue
        out.append(f"### PARAMS keys ({fam})\n")
        out.append("| key | type | range | default (when the profile lacks it) |\n|---|---|---|---|")
        for p in params:
            rng = (", ".join(map(str, p.choices)) if p.choices else
                   f"{'' if p.lo is None else p.lo}..{'' if p.hi is None else p.hi}")
            dflt = (f"{p.default}" if p.default is not None else
                    (f"derived ({p.derive})" if p.derive else "-"))
            out.append(f"| {p.key} | {p.type} | {rng} | {dflt} |")
        out.append("")
    return "\n".join(out)


def log2ceil(n: int) -> int:
    """ceil(log2(n)) for n >= 1."""
    return int(math.ceil(math.log2(n))) if n > 1 else 0
