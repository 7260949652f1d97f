"""The image loader: bytes (or a file) -> a validated :class:`emulator.chip.Chip`.

Every check names the section and the byte offset of what it rejects (:class:`LoadError`); no
other exception escapes and no image loads into a chip that differs from what its bytes say.
Order of checks:

1. file header: size, magic, version, reserved fields, section count, file size, header CRC;
2. section table: kinds, order, offsets (8-byte aligned, contiguous, zero gaps), lengths;
3. CRC32 of every section, then of the whole file (the trailer);
4. every section decoded with the tables of ``emulator/format.py``, each field range-checked
   (widths, counts against the image's own limits, references between tables);
5. cross-section rules: every population covered exactly once by core slices, route entries
   pointing at existing cores and axons, no axon fed by two sources, output ports reading
   compartments of the right kind, every output element mapped exactly once.

Speed (``bench/load_speed.py``): the section table, SYMBOLS, the CORE sections
(:mod:`emulator.loader_batch`, or a family module's ``decode_cores``: all cores of one layout at
once) and the cross-section rules are first checked by vectorised fast paths that make the same
checks as booleans over whole arrays; when one of them fails, the step runs again in the order
above, which words the error, so the errors are those of the sequential checks. On large images
the CRCs of step 3 are computed in a worker thread while steps 4-5 run; a CRC error is still the
one reported. Decoded tables and synapse lists are views of a few large arrays rather than many
per-core ones: a fresh large allocation is faulted in as huge pages, hundreds of per-core ones
page by page, which costs more than decoding them.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from emulator import format as F
from emulator.chip import Chip, LoihiCore, Population, Port, TrueNorthCore
from emulator.errors import LoadError
from emulator.loader_batch import decode_blocks, loihi_cores, truenorth_cores

ImageSource = bytes | bytearray | memoryview | str | os.PathLike

COMBINE_BYTES_PER_SECTION = 1 << 15
"""From this many bytes per section on average, the file CRC is combined from the section CRCs
(a few microseconds per section) rather than computed over the file again."""
ZERO_CRC = [F.crc32(bytes(k)) for k in range(F.SECTION_ALIGN)]
"""CRC-32 of 0..7 zero bytes (the padding after a section)."""
THREAD_CRC_BYTES = 1 << 20
"""Images from this size on have their CRCs checked in a worker thread while the sections are
decoded (zlib and numpy release the GIL); the result, and the error reported, are the same."""


class _CrcJob:
    """Step 3 of the checks: the CRC of every section in file order, then the file's trailer."""

    def __init__(self, data: bytes, entries: list[dict]):
        self.data, self.entries = data, entries
        self.error: LoadError | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self.run, name="nmc-crc", daemon=True)
        self.thread.start()

    def run(self) -> None:
        try:
            self.error = self._check()
        except BaseException as e:  # pragma: no cover - reported by the loader
            self.error = LoadError(f"unexpected {type(e).__name__} while checking CRCs ({e})",
                                   "trailer", len(self.data) - F.TRAILER_BYTES)

    def wait(self) -> None:
        if self.thread is not None:
            self.thread.join()

    def _check(self) -> LoadError | None:
        d, entries = self.data, self.entries
        mv = memoryview(d)
        for e in entries:
            got = F.crc32(mv[e["offset"]:e["offset"] + e["length"]])
            if got != e["crc"]:
                return LoadError(f"CRC mismatch (stored {e['crc']:#010x}, computed {got:#010x}): "
                                 "the section's bytes are corrupted", e["name"], e["offset"])
        stored = int.from_bytes(d[-4:], "little")
        if self.thread is None and len(d) >= COMBINE_BYTES_PER_SECTION * len(entries):
            # large sections: combine the CRCs just checked (the bytes between sections are zero,
            # checked with the table) instead of reading the file again (not in the worker
            # thread: zlib releases the GIL, this Python loop would hold it)
            got = F.crc32(mv[:entries[0]["offset"]])
            for e in entries:
                ln = F.align(e["length"])
                got = F.crc32_combine(got, F.crc32_combine(e["crc"], ZERO_CRC[ln - e["length"]],
                                                           ln - e["length"]), ln)
        else:
            got = F.crc32(mv[:-4])
        if got != stored:
            return LoadError(f"file CRC mismatch (stored {stored:#010x}, computed {got:#010x})",
                             "trailer", len(d) - F.TRAILER_BYTES)
        return None


def load(src: ImageSource) -> Chip:
    """Load a chip image from bytes or from a file path; LoadError on anything wrong."""
    if isinstance(src, str | os.PathLike):
        path = Path(src)
        try:
            data = path.read_bytes()
        except OSError as e:
            raise LoadError(f"cannot read chip image {path}: {e.strerror or e}") from None
        where = str(path)
    elif isinstance(src, bytes | bytearray | memoryview):
        data = bytes(src)
        where = "<bytes>"
    else:
        raise LoadError(f"load() takes bytes or a path, not {type(src).__name__}")
    return _Loader(data, where).chip()


class _Loader:
    """One load: the bytes, the section being decoded (for error messages) and the results."""

    batched = True
    """Try the batched CORE decoders of :mod:`emulator.loader_batch` first (tests turn it off to
    compare the two paths)."""

    def __init__(self, data: bytes, where: str):
        self.data = data
        self.where = where
        self.section = "header"
        self.base = 0

    # ---- error helpers ---------------------------------------------------------------------
    def fail(self, msg: str, offset: int | None = None, section: str | None = None) -> LoadError:
        return LoadError(msg, section or self.section, self.base if offset is None else offset)

    def need(self, cond: Any, msg: str | Callable[[], str], offset: int | None = None) -> None:
        if not cond:
            raise self.fail(msg() if callable(msg) else msg, offset)

    # ---- top level --------------------------------------------------------------------------
    def chip(self) -> Chip:
        self._crc_job: _CrcJob | None = None
        try:
            chip = self._chip()
        except LoadError:
            crc = self._crc_error()
            if crc is not None:
                raise crc from None
            raise
        except (ValueError, IndexError, KeyError, OverflowError, TypeError, UnicodeError,
                MemoryError, ZeroDivisionError) as e:  # pragma: no cover - a missed check
            crc = self._crc_error()
            if crc is not None:
                raise crc from None
            # A bug in a check must still not crash the caller; say where it happened.
            raise LoadError(f"unexpected {type(e).__name__} while decoding ({e}); the image is "
                            "malformed", self.section, self.base) from None
        crc = self._crc_error()
        if crc is not None:
            raise crc
        return chip

    def _crc_error(self) -> LoadError | None:
        """Wait for the CRC checks running beside the decoding (large images): their error is
        the one to report, whatever the decoding made of the corrupted bytes."""
        job, self._crc_job = self._crc_job, None
        if job is None:
            return None
        job.wait()
        return job.error

    def _chip(self) -> Chip:
        entries = self._container()
        by_kind: dict[int, list[dict]] = {}
        for e in entries:
            by_kind.setdefault(e["kind"], []).append(e)
        self.meta = self._meta(by_kind[F.Kind.META][0])
        self.strings = self._strings(by_kind[F.Kind.STRINGS][0])
        self._resolve_meta()
        self.params, self.sources = self._params(by_kind[F.Kind.PARAMS][0])
        self.pops = self._symbols(by_kind[F.Kind.SYMBOLS][0])
        inputs, outputs = self._iomap(by_kind[F.Kind.IOMAP][0])
        provenance = self._provenance(by_kind[F.Kind.PROVENANCE][0])
        cores_e = by_kind.get(F.Kind.CORE, [])
        self.section = "META"
        self.need(len(cores_e) == self.meta["n_cores"],
                  f"META.n_cores = {self.meta['n_cores']} but the image has {len(cores_e)} CORE "
                  "sections")
        mod = self._family_module()
        builtin = {"loihi": self._loihi_core, "truenorth": self._tn_core}
        hook = getattr(mod, "decode_core", None)
        decode = builtin.get(self.family) or (lambda e: hook(self, e))
        # the batched decoder checks every core in one pass; when it is unsure (a check fails or
        # a layout it does not handle) the cores are decoded one by one, with exact errors
        batched = {"loihi": loihi_cores, "truenorth": truenorth_cores}.get(self.family) or (
            None if self.family in builtin else getattr(mod, "decode_cores", None))
        cores = batched(self, cores_e) if batched is not None and self.batched else None
        if cores is None:
            cores = [decode(e) for e in cores_e]
        cross = getattr(mod, "cross_check", None) if self.family not in builtin else None
        if cross is not None:
            cross(self, cores, inputs, outputs, cores_e, by_kind[F.Kind.IOMAP][0])
        else:
            if not (self.batched and self._cross_fast(cores, inputs, outputs)):
                self._cross(cores, inputs, outputs, cores_e, by_kind[F.Kind.IOMAP][0])
        return Chip(
            family=self.family, version=(self.vmaj, self.vmin),
            profile_name=self.profile_name, profile_sha256=self.meta["sha"],
            graph_name=self.graph_name, dt=self.meta["dt"], n_chips=self.meta["n_chips"],
            mesh=(self.meta["mesh_x"], self.meta["mesh_y"]), params=self.params,
            sources=self.sources, populations=self.pops, inputs=inputs, outputs=outputs,
            cores=cores, provenance=provenance, image_bytes=len(self.data))

    # ---- container ---------------------------------------------------------------------------
    def _container(self) -> list[dict]:
        d = self.data
        self.section, self.base = "header", 0
        self.need(len(d) >= F.HEADER_BYTES + F.TRAILER_BYTES,
                  f"image is {len(d)} bytes; the smallest image has "
                  f"{F.HEADER_BYTES + F.TRAILER_BYTES}")
        self.need(d[:8] == F.MAGIC, f"bad magic {d[:8]!r}: not an nmc chip image "
                  f"(expected {F.MAGIC!r})", 0)
        h = F.FILE_HEADER.unpack(d, 0)[0]
        self.vmaj, self.vmin = int(h["version_major"]), int(h["version_minor"])
        self.need(self.vmaj == F.VERSION_MAJOR and self.vmin <= F.VERSION_MINOR,
                  f"format version {self.vmaj}.{self.vmin} is not supported (this emulator reads "
                  f"{F.VERSION_MAJOR}.0 .. {F.VERSION_MAJOR}.{F.VERSION_MINOR}); use a matching "
                  "nmc version", 8)
        self.need(int(h["reserved"]) == 0, "reserved field is not zero", 28)
        n = int(h["n_sections"])
        self.need(1 <= n <= F.MAX_SECTIONS, f"section count {n} is out of range", 12)
        fb = int(h["file_bytes"])
        self.need(fb == len(d), f"header says the file has {fb} bytes, it has {len(d)} "
                  "(truncated or extended)", 16)
        table_end = F.HEADER_BYTES + n * F.SECTION_ENTRY_BYTES
        self.need(table_end + F.TRAILER_BYTES <= len(d),
                  f"section table of {n} entries runs past the end of the file", 12)
        head = bytearray(d[:F.HEADER_BYTES])
        head[24:28] = b"\0\0\0\0"
        crc = F.crc32(bytes(head) + d[F.HEADER_BYTES:table_end])
        self.need(crc == int(h["table_crc"]),
                  f"CRC mismatch of header and section table (stored {int(h['table_crc']):#010x}, "
                  f"computed {crc:#010x}): corrupted", 24)
        table = F.SECTION_ENTRY.unpack(d, F.HEADER_BYTES, n)
        self.section = "section table"
        entries = self._table_fast(table, table_end) if self.batched else None
        if entries is None:
            entries = self._table(table, table_end)
        job = _CrcJob(d, entries)
        if self.batched and len(d) >= THREAD_CRC_BYTES:
            job.start()  # the decoding goes on; chip() reports a CRC error first
            self._crc_job = job
        else:
            job.run()
            if job.error is not None:
                raise job.error
        return [e for e in entries if e["kind"] < F.OPTIONAL_KIND]

    def _table_fast(self, table: np.ndarray, table_end: int) -> list[dict] | None:
        """The section entries when every rule of :meth:`_table` holds (checked over the whole
        table at once), else None."""
        d = self.data
        kind = table["kind"].astype(np.int64)
        index = table["index"].astype(np.int64)
        off = table["offset"].astype(np.int64)
        length = table["length"].astype(np.int64)
        if (table["reserved"] != 0).any() or (table["reserved2"] != 0).any():
            return None
        if (table["offset"] > len(d)).any() or (table["length"] > len(d)).any():
            return None
        end = off + length
        nxt = (end + F.SECTION_ALIGN - 1) // F.SECTION_ALIGN * F.SECTION_ALIGN
        if off[0] != F.align(table_end) or (off[1:] != nxt[:-1]).any():
            return None
        if (length > len(d) - F.TRAILER_BYTES - off).any() or \
                int(nxt[-1]) + F.TRAILER_BYTES != len(d):
            return None
        req = kind < F.OPTIONAL_KIND
        nr = len(F.REQUIRED_ORDER)
        seq, seq_i = kind[req], index[req]
        if seq.size < nr or (seq[:nr] != F.REQUIRED_ORDER).any() or (seq_i[:nr] != 0).any():
            return None
        if (seq[nr:] != F.Kind.CORE).any() or (seq_i[nr:] != np.arange(seq.size - nr)).any():
            return None
        # the zero bytes between the table and the first section, and after each section
        gap_at = np.concatenate([[table_end], end])[:, None] + np.arange(F.SECTION_ALIGN)[None, :]
        gap_to = np.concatenate([[off[0]], nxt])[:, None]
        gap_at = gap_at[gap_at < gap_to]
        if gap_at.size and np.frombuffer(d, np.uint8)[gap_at].any():
            return None
        names = [f"CORE {i}" if k == F.Kind.CORE else F.SECTION_NAMES[k] if k < F.OPTIONAL_KIND
                 else f"optional {k:#06x}" for k, i in zip(kind.tolist(), index.tolist(), strict=True)]
        crc = table["crc"].tolist()
        return [dict(kind=k, index=i, offset=o, length=ln, crc=c, name=nm,
                     entry=F.HEADER_BYTES + j * F.SECTION_ENTRY_BYTES)
                for j, (k, i, o, ln, c, nm) in enumerate(zip(
                    kind.tolist(), index.tolist(), off.tolist(), length.tolist(), crc, names,
                    strict=True))]

    def _table(self, table: np.ndarray, table_end: int) -> list[dict]:
        """The section entries, each rule checked in file order with its exact error."""
        d = self.data
        n = table.size
        pos = F.align(table_end)
        self._zero_gap(table_end, pos)
        entries = []
        seen_required = []
        core_next = 0
        for i in range(n):
            off0 = F.HEADER_BYTES + i * F.SECTION_ENTRY_BYTES
            t = table[i]
            kind, index = int(t["kind"]), int(t["index"])
            self.need(int(t["reserved"]) == 0 and int(t["reserved2"]) == 0,
                      f"entry {i}: reserved field is not zero", off0)
            off, length = int(t["offset"]), int(t["length"])
            self.need(off == pos, f"entry {i}: section offset {off}, expected {pos} "
                      "(sections are contiguous, 8-byte aligned)", off0 + 8)
            self.need(length <= len(d) - F.TRAILER_BYTES - off,
                      f"entry {i}: section of {length} bytes at {off} runs past the end", off0 + 16)
            if kind == F.Kind.CORE:
                self.need(len(seen_required) == len(F.REQUIRED_ORDER),
                          f"entry {i}: CORE section before the {len(F.REQUIRED_ORDER)} required "
                          "sections", off0)
                self.need(index == core_next, f"entry {i}: CORE section index {index}, expected "
                          f"{core_next} (cores in id order)", off0 + 2)
                core_next += 1
                name = f"CORE {index}"
            elif kind in F.REQUIRED_ORDER:
                k = len(seen_required)
                self.need(k < len(F.REQUIRED_ORDER) and F.REQUIRED_ORDER[k] == kind and core_next == 0,
                          f"entry {i}: section {F.SECTION_NAMES[kind]} out of order (order: "
                          + ", ".join(F.SECTION_NAMES[x] for x in F.REQUIRED_ORDER) + ", CORE...)",
                          off0)
                self.need(index == 0, f"entry {i}: index {index} of a singleton section", off0 + 2)
                seen_required.append(kind)
                name = F.SECTION_NAMES[kind]
            elif kind >= F.OPTIONAL_KIND:
                name = f"optional {kind:#06x}"
            else:
                raise self.fail(f"entry {i}: unknown section kind {kind}", off0)
            entries.append(dict(kind=kind, index=index, offset=off, length=length,
                                crc=int(t["crc"]), name=name, entry=off0))
            end = off + length
            pos = F.align(end)
            self.need(pos <= len(d) - F.TRAILER_BYTES,
                      f"entry {i}: padding of section {name} runs past the end", off0 + 16)
            self._zero_gap(end, pos)
        self.section = "section table"
        self.need(len(seen_required) == len(F.REQUIRED_ORDER),
                  "missing sections: " + ", ".join(F.SECTION_NAMES[k] for k in F.REQUIRED_ORDER
                                                  if k not in seen_required), F.HEADER_BYTES)
        self.need(pos + F.TRAILER_BYTES == len(d),
                  f"{len(d) - F.TRAILER_BYTES - pos} stray bytes after the last section", pos)
        return entries

    def _zero_gap(self, a: int, b: int) -> None:
        if b > a:
            gap = self.data[a:b]
            self.need(gap == b"\0" * (b - a), "padding bytes are not zero", a)

    def _payload(self, e: dict) -> bytes:
        self.section, self.base = e["name"], e["offset"]
        return self.data[e["offset"]:e["offset"] + e["length"]]

    def _slice_table(self, buf: bytes, at: int, n_sl: int, n: int) -> tuple[np.ndarray, int]:
        """A core's SLICE records at ``at`` as (n_sl, 3) [population, start, stop], checked to lie
        inside the populations and to hold the core's ``n`` neurons; and the offset after them."""
        sl = self._struct(F.SLICE, buf, at, n_sl, "SLICE")
        slices = np.stack([sl[k].astype(np.int64) for k in ("population", "start", "stop")], 1)
        for i, (p, s, t) in enumerate(slices.tolist()):
            self.need(p < len(self.pops) and s < t <= self.pops[p].size,
                      f"SLICE[{i}] = population {p} [{s}:{t}] is outside the populations",
                      self.base + at + 12 * i)
        held = int((slices[:, 2] - slices[:, 1]).sum())
        self.need(held == n, f"slices hold {held} neurons, n_neurons = {n}", self.base + at)
        return slices, at + n_sl * F.SLICE.size

    def _struct(self, st: F.Struct, buf: bytes, at: int, count: int = 1, what: str = "") -> np.ndarray:
        need = at + st.size * count
        self.need(need <= len(buf), f"{what or st.name}: {count} record(s) of {st.size} bytes at "
                  f"{at} need {need} bytes, the section has {len(buf)}", self.base + min(at, len(buf)))
        arr = st.unpack(buf, at, count)
        for f in st.fields:
            col = arr[f.name]
            if f.kind == "reserved":
                bad = np.flatnonzero(np.asarray(col).reshape(count, -1).any(axis=1))
                self.need(bad.size == 0, f"{what or st.name}[{int(bad[0]) if bad.size else 0}]."
                          f"{f.name}: reserved field is not zero",
                          self.base + at + (int(bad[0]) if bad.size else 0) * st.size)
            elif f.kind == "float":
                bad = np.flatnonzero(~np.isfinite(col))
                self.need(bad.size == 0, f"{what or st.name}[{int(bad[0]) if bad.size else 0}]."
                          f"{f.name} is not a finite number", self.base + at)
            if f.kind in ("int", "reserved") and (f.lo is not None or f.hi is not None):
                c = np.asarray(col).astype(np.int64) if f.bits < 64 else np.asarray(col)
                bad = np.zeros(c.shape, bool)
                if f.lo is not None:
                    bad |= c < f.lo
                if f.hi is not None:
                    bad |= c > f.hi
                idx = np.flatnonzero(bad.reshape(count, -1).any(axis=1))
                if idx.size:
                    k0 = int(idx[0])
                    raise self.fail((
                    f"{what or st.name}[{k0}].{f.name} = "
                    f"{np.asarray(col).reshape(count, -1)[k0].tolist()} is out of range "
                    f"({f.lo if f.lo is not None else ''}..{f.hi if f.hi is not None else ''})"),
                                    self.base + at + (k0 if idx.size else 0) * st.size)
        return arr

    # ---- META and STRINGS --------------------------------------------------------------------
    def _meta(self, e: dict) -> dict:
        buf = self._payload(e)
        self.need(len(buf) == F.META.size, f"length {len(buf)}, META has {F.META.size} bytes")
        m = self._struct(F.META, buf, 0)[0]
        fam = int(m["family"])
        self.need(fam in F.FAMILY_NAMES, f"family code {fam} is unknown "
                  f"(known: {', '.join(f'{v} {k}' for k, v in F.FAMILY_IDS.items())})")
        self.family = F.FAMILY_NAMES[fam]
        self.need(F.family_layout(self.family) is not None
                  and F.family_params(self.family) is not None,
                  f"family {self.family} has no core layout in this emulator version")
        n_chips, mx, my = int(m["n_chips"]), int(m["mesh_x"]), int(m["mesh_y"])
        self.need(n_chips * mx * my >= int(m["n_cores"]),
                  f"{int(m['n_cores'])} cores do not fit {n_chips} chip(s) of {mx} x {my}", self.base + 4)
        return dict(n_cores=int(m["n_cores"]), n_chips=n_chips, mesh_x=mx, mesh_y=my,
                    profile_name=int(m["profile_name"]), graph_name=int(m["graph_name"]),
                    sha=bytes(m["profile_sha256"]).ljust(32, b"\0").hex(), dt=float(m["dt"]),
                    n_pops=int(m["n_populations"]), n_inputs=int(m["n_inputs"]),
                    n_outputs=int(m["n_outputs"]), meta_offset=self.base)

    def _resolve_meta(self) -> None:
        self.section, self.base = "META", self.meta["meta_offset"]
        self.profile_name = self.string(self.meta["profile_name"], "META.profile_name", self.base + 20)
        self.graph_name = self.string(self.meta["graph_name"], "META.graph_name", self.base + 24)
        self.need(self.meta["dt"] > 0, f"dt = {self.meta['dt']} must be > 0", self.base + 60)

    def _strings(self, e: dict) -> list[str]:
        buf = self._payload(e)
        h = self._struct(F.STRINGS_HEADER, buf, 0)[0]
        n, blob = int(h["n_strings"]), int(h["blob_bytes"])
        need = F.STRINGS_HEADER.size + 4 * (n + 1) + blob
        self.need(need == len(buf), f"{n} strings of {blob} bytes need {need} bytes, the section "
                  f"has {len(buf)}")
        offs = np.frombuffer(buf, "<u4", n + 1, F.STRINGS_HEADER.size).astype(np.int64)
        self.need(offs[0] == 0 and offs[-1] == blob and np.all(np.diff(offs) >= 0),
                  "string offsets are not non-decreasing from 0 to blob_bytes",
                  self.base + F.STRINGS_HEADER.size)
        start = F.STRINGS_HEADER.size + 4 * (n + 1)
        out = []
        for i in range(n):
            raw = buf[start + offs[i]:start + offs[i + 1]]
            try:
                out.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                raise self.fail(f"string {i} is not valid UTF-8", self.base + start + int(offs[i])) from None
        return out

    def string(self, sid: int, what: str, offset: int) -> str:
        self.need(0 <= sid < len(self.strings),
                  f"{what} = string {sid}, the string table has {len(self.strings)}", offset)
        return self.strings[sid]

    # ---- PARAMS ------------------------------------------------------------------------------
    def _params(self, e: dict) -> tuple[dict, dict]:
        buf = self._payload(e)
        h = self._struct(F.COUNT_HEADER, buf, 0)[0]
        n = int(h["count"])
        need = F.COUNT_HEADER.size + n * F.PARAM_RECORD.size
        self.need(need == len(buf), f"{n} records need {need} bytes, the section has {len(buf)}")
        recs = self._struct(F.PARAM_RECORD, buf, F.COUNT_HEADER.size, n, "PARAM_RECORD")
        specs = {p.key: p for p in F.family_params(self.family)}
        params: dict[str, Any] = {}
        sources: dict[str, str] = {}
        prev = None
        for i in range(n):
            r = recs[i]
            at = self.base + F.COUNT_HEADER.size + i * F.PARAM_RECORD.size
            key = self.string(int(r["key"]), f"PARAM_RECORD[{i}].key", at)
            self.need(prev is None or key > prev,
                      f"PARAM_RECORD[{i}]: key {key!r} after {prev!r}: keys must be sorted and unique", at)
            prev = key
            self.need(key in specs, f"PARAM_RECORD[{i}]: unknown key {key!r} for family "
                      f"{self.family}", at)
            spec = specs[key]
            typ = F.PARAM_TYPES.get(int(r["type"]))
            self.need(typ == spec.type, f"PARAM_RECORD[{i}] {key}: type {typ}, expected {spec.type}",
                      at + 4)
            if typ == "int":
                self.need(float(r["fvalue"]) == 0.0 and int(r["svalue"]) == 0,
                          f"{key}: unused value fields are not zero", at)
                v: Any = int(r["ivalue"])
            elif typ == "float":
                self.need(int(r["ivalue"]) == 0 and int(r["svalue"]) == 0,
                          f"{key}: unused value fields are not zero", at)
                v = float(r["fvalue"])
            else:
                self.need(int(r["ivalue"]) == 0 and float(r["fvalue"]) == 0.0,
                          f"{key}: unused value fields are not zero", at)
                v = self.string(int(r["svalue"]), f"{key} value", at + 24)
            if typ in ("int", "float"):
                self.need((spec.lo is None or v >= spec.lo) and (spec.hi is None or v <= spec.hi),
                          f"{key} = {v} is out of range ({spec.lo}..{spec.hi})", at + 8)
            if spec.choices is not None:
                self.need(v in spec.choices, f"{key} = {v!r} is not one of "
                          f"{', '.join(map(str, spec.choices))}", at + 24)
            params[key] = v
            sources[key] = self.string(int(r["source"]), f"{key} source", at + 28)
        missing = [k for k in specs if k not in params]
        self.need(not missing, f"missing keys: {', '.join(missing)}")
        if self.family == "loihi":
            self._loihi_params(params)
        hook = getattr(self._family_module(), "check_params", None)
        if hook is not None:
            hook(self, params)
        return params, sources

    def _family_module(self) -> Any:
        """``emulator.<family>``: a family may decode its cores (``decode_core(loader, entry)``;
        optionally all at once first, ``decode_cores(loader, entries)``, which returns the cores
        or None to fall back to ``decode_core``), check its parameters (``check_params(loader,
        params)``) and the cross-section rules (``cross_check(loader, cores, inputs, outputs,
        core_entries, iomap_entry)``) itself."""
        import importlib

        try:
            return importlib.import_module(f"emulator.{self.family}")
        except ImportError:
            return None

    def _loihi_params(self, params: dict) -> None:
        self.need(params["core.synapse_word_bits"] % 8 == 0,
                  f"core.synapse_word_bits = {params['core.synapse_word_bits']} is not a multiple of 8")
        self.need(params["widths.weight_exp_min"] <= params["widths.weight_exp_max"],
                  "widths.weight_exp_min is above widths.weight_exp_max")
        self.need(params["core.synapse_configs"] <= (1 << params["synapse.fmt_bits"]),
                  "core.synapse_configs exceeds what synapse.fmt_bits can address")
        self.need(params["synapse.group_size"] <= (1 << params["synapse.count_bits"]),
                  "synapse.group_size exceeds what synapse.count_bits can count")
        self.need(params["synapse.fmt_bits"] + params["synapse.count_bits"]
                  == params["synapse.group_header_bits"],
                  "synapse.fmt_bits + synapse.count_bits differs from synapse.group_header_bits")
        self.need(params["synapse.delay_max"] <= (1 << params["widths.delay"]),
                  "synapse.delay_max needs more bits than widths.delay")
        self.need(params["neuron.refractory_max"] < (1 << params["widths.refractory"])
                  or params["neuron.refractory_max"] == 0,
                  "neuron.refractory_max needs more bits than widths.refractory")

    # ---- SYMBOLS ------------------------------------------------------------------------------
    def _symbols(self, e: dict) -> list[Population]:
        buf = self._payload(e)
        h = self._struct(F.COUNT_HEADER, buf, 0)[0]
        n = int(h["count"])
        need = F.COUNT_HEADER.size + n * F.POPULATION.size
        self.need(need == len(buf), f"{n} populations need {need} bytes, the section has {len(buf)}")
        self.need(n == self.meta["n_pops"], f"{n} populations, META says {self.meta['n_pops']}")
        recs = self._struct(F.POPULATION, buf, F.COUNT_HEADER.size, n, "POPULATION")
        fast = self._symbols_fast(recs) if self.batched else None
        if fast is not None:
            return fast
        out, names = [], set()
        for i in range(n):
            r = recs[i]
            at = self.base + F.COUNT_HEADER.size + i * F.POPULATION.size
            name = self.string(int(r["name"]), f"POPULATION[{i}].name", at)
            self.need(name and name not in names, f"POPULATION[{i}]: name {name!r} is empty or "
                      "repeated", at)
            names.add(name)
            shape = self._shape(r, f"POPULATION[{i}]", at + 12)
            self.need(math.prod(shape) == int(r["size"]),
                      f"POPULATION[{i}] {name}: shape {shape} does not hold size {int(r['size'])}", at + 4)
            out.append(Population(name=name, size=int(r["size"]), shape=shape,
                                  readout=bool(r["readout"])))
        return out

    def _symbols_fast(self, recs: np.ndarray) -> list[Population] | None:
        """The populations when every rule of :meth:`_symbols` holds, else None."""
        sid = recs["name"].tolist()
        if any(i >= len(self.strings) for i in sid):
            return None
        names = [self.strings[i] for i in sid]
        if "" in names or len(set(names)) != len(names):
            return None
        out = []
        for name, nd, dims, size, ro in zip(names, recs["ndim"].tolist(), recs["dims"].tolist(),
                                            recs["size"].tolist(), recs["readout"].tolist(),
                                            strict=True):
            shape = tuple(dims[:nd])
            if min(shape) < 1 or any(dims[nd:]) or math.prod(shape) != size:
                return None
            out.append(Population(name=name, size=size, shape=shape, readout=bool(ro)))
        return out

    def _shape(self, r: np.void, what: str, at: int) -> tuple[int, ...]:
        nd = int(r["ndim"])
        dims = [int(x) for x in r["dims"]]
        self.need(all(d >= 1 for d in dims[:nd]) and all(d == 0 for d in dims[nd:]),
                  f"{what}: dims {dims} do not match ndim {nd}", at)
        return tuple(dims[:nd])

    # ---- IOMAP -------------------------------------------------------------------------------
    def _iomap(self, e: dict) -> tuple[list[Port], list[Port]]:
        buf = self._payload(e)
        h = self._struct(F.IOMAP_HEADER, buf, 0)[0]
        ni, no, nie, noe = (int(h[k]) for k in ("n_inputs", "n_outputs", "n_in_entries",
                                                  "n_out_entries"))
        need = (F.IOMAP_HEADER.size + (ni + no) * F.PORT.size
                + nie * F.IN_ENTRY.size + noe * F.OUT_ENTRY.size)
        self.need(need == len(buf), f"{ni}+{no} ports and {nie}+{noe} entries need {need} bytes, "
                  f"the section has {len(buf)}")
        self.need(ni == self.meta["n_inputs"] and no == self.meta["n_outputs"],
                  f"{ni} inputs / {no} outputs, META says {self.meta['n_inputs']} / "
                  f"{self.meta['n_outputs']}")
        at = F.IOMAP_HEADER.size
        ports = self._struct(F.PORT, buf, at, ni + no, "PORT")
        at_in = at + (ni + no) * F.PORT.size
        ins = self._struct(F.IN_ENTRY, buf, at_in, nie, "IN_ENTRY")
        at_out = at_in + nie * F.IN_ENTRY.size
        outs = self._struct(F.OUT_ENTRY, buf, at_out, noe, "OUT_ENTRY")
        self.io_offsets = (at_in, at_out)
        result: tuple[list[Port], list[Port]] = ([], [])
        names: set[str] = set()
        for side, (lo, hi, table, n_ent) in enumerate(((0, ni, ins, nie), (ni, ni + no, outs, noe))):
            nxt = 0
            for i in range(lo, hi):
                r = ports[i]
                pat = self.base + at + i * F.PORT.size
                name = self.string(int(r["name"]), f"PORT[{i}].name", pat)
                self.need(name and name not in names, f"PORT[{i}]: name {name!r} is empty or "
                          "repeated", pat)
                names.add(name)
                shape = self._shape(r, f"PORT[{i}] {name}", pat + 12)
                width = int(r["width"])
                self.need(math.prod(shape) == width,
                          f"PORT[{i}] {name}: shape {shape} does not hold width {width}", pat + 4)
                first, count = int(r["first"]), int(r["count"])
                self.need(first == nxt and first + count <= n_ent,
                          f"PORT[{i}] {name}: entries {first}..{first + count} are not the next "
                          f"{count} of {n_ent}", pat + 28)
                nxt += count
                kind = int(r["kind"])
                self.need(side == 1 or kind == 0, f"PORT[{i}] {name}: an input carries spikes", pat + 8)
                rows = table[first:first + count]
                ent = np.stack([rows[k].astype(np.int64) for k in table.dtype.names], 1) \
                    if count else np.zeros((0, 4), np.int64)
                bad = np.flatnonzero(~((ent[:, 2] < ent[:, 3]) & (ent[:, 3] <= width)))
                if bad.size:
                    k0 = int(bad[0])
                    raise self.fail(f"PORT[{i}] {name}: entry {first + k0} "
                          f"elements {ent[k0, 2]}..{ent[k0, 3]} are outside 0..{width}",
                                    self.base + (at_in if side == 0 else at_out) + (first + k0) * 16)
                lat = int(r["latency"])
                self.need(lat >= -1, f"PORT[{i}] {name}: latency {lat} < -1", pat + 36)
                result[side].append(Port(name=name, width=width, kind=F.PORT_KINDS[kind], shape=shape,
                                         entries=ent, latency=None if lat < 0 else lat,
                                         extra_latency=int(r["extra_latency"])))
            self.need(nxt == n_ent, f"{n_ent - nxt} {'IN' if side == 0 else 'OUT'}_ENTRY records "
                      "belong to no port")
        self.iomap_base = self.base
        return result

    # ---- PROVENANCE --------------------------------------------------------------------------
    def _provenance(self, e: dict) -> dict:
        buf = self._payload(e)
        try:
            prov = json.loads(buf.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as err:
            raise self.fail(f"not UTF-8 JSON ({err})") from None
        self.need(isinstance(prov, dict), "provenance is not a JSON object")
        return prov

    # ---- Loihi core --------------------------------------------------------------------------
    def _bits_table(self, table: F.BitTable, buf: bytes, at: int, n: int, env: dict,
                    what: str) -> tuple[dict[str, np.ndarray], int]:
        """Decode a bit table at byte ``at``; check its zero padding; return columns and the
        byte offset after it."""
        nb = table.nbytes(n, env)
        self.need(at + nb <= len(buf), f"{what}: table needs {nb} bytes at {at}, the section has "
                  f"{len(buf) - at} left", self.base + at)
        raw = np.frombuffer(buf, np.uint8, nb, at)
        cols = {k: v[0] for k, v in table.unpack_rows(raw[None, :], n, env).items()}
        used = n * table.record_bits(env)
        if nb * 8 > used and raw[nb - 1] >> (used - 8 * (nb - 1)):
            self._zero_pad(F.BitReader(raw), used, nb * 8, what, at)
        return cols, at + nb

    def _zero_pad(self, raw: F.BitReader, used: int, total: int, what: str, at: int) -> None:
        if total > used:
            starts = np.arange(used, total, 32, dtype=np.int64)
            vals = F.get_bits(raw, starts, np.minimum(32, total - starts))
            self.need(not vals.any(), f"{what}: padding bits are not zero", self.base + at + used // 8)

    def _check_col(self, ok: np.ndarray, what: str, col: np.ndarray, at: int, rec_bits: int,
                   limit: str) -> None:
        bad = np.flatnonzero(~ok)
        if bad.size:
            k = int(bad[0])
            raise self.fail(f"{what}[{k}] = {int(col[k])} is out of range ({limit})",
                            self.base + at + (k * rec_bits) // 8)

    def _loihi_core(self, e: dict) -> LoihiCore:
        buf = self._payload(e)
        P = self.params
        cid = e["index"]
        H = F.LOIHI_CORE_HEADER
        h = self._struct(H, buf, 0, 1, "LOIHI_CORE_HEADER")[0]
        chip, x, y = int(h["chip"]), int(h["x"]), int(h["y"])
        m = self.meta
        self.need(chip < m["n_chips"] and x < m["mesh_x"] and y < m["mesh_y"],
                  f"position chip {chip} ({x}, {y}) is outside {m['n_chips']} chip(s) of "
                  f"{m['mesh_x']} x {m['mesh_y']}")
        n, n_ax, n_rt, n_words = (int(h[k]) for k in ("n_neurons", "n_axons", "n_routes", "n_words"))
        n_sl, n_cx, n_vth, n_fmt, n_acc = (int(h[k]) for k in ("n_slices", "n_cx", "n_vth", "n_fmt",
                                                              "n_acc"))
        limits = (("n_neurons", n, "core.neurons", 8), ("n_axons", n_ax, "core.axons_in", 12),
                  ("n_routes", n_rt, "core.axons_out", 16), ("n_words", n_words, "core.synapse_words", 20),
                  ("n_cx", n_cx, "core.compartment_configs", 26),
                  ("n_vth", n_vth, "core.threshold_configs", 28),
                  ("n_fmt", n_fmt, "core.synapse_configs", 30))
        for name, v, key, off in limits:
            self.need(v <= P[key], f"LOIHI_CORE_HEADER.{name} = {v} > {key} = {P[key]}",
                      self.base + off)
        self.need(n_acc <= max(n_fmt, 0) and (n_fmt == 0) == (n_ax == 0) and (n_acc == 0) == (n_fmt == 0),
                  f"n_acc = {n_acc}, n_fmt = {n_fmt}, n_axons = {n_ax} are inconsistent", self.base + 32)
        word = P["core.synapse_word_bits"]
        env = {k: v for k, v in P.items() if isinstance(v, int)}
        env.update(w_cx=F.bitlen(n_cx - 1), w_vth=F.bitlen(n_vth - 1), w_acc=F.bitlen(n_acc - 1),
                   w_nidx=F.bitlen(n - 1), w_ptr=F.bitlen(n_words), w_chip=F.bitlen(m["n_chips"] - 1),
                   w_x=F.bitlen(m["mesh_x"] - 1), w_y=F.bitlen(m["mesh_y"] - 1),
                   w_axon=F.bitlen(P["core.axons_in"] - 1), w_nblk=int(h["w_nblk"]),
                   w_rlen=int(h["w_rlen"]))
        sizes = [H.size, n_sl * F.SLICE.size, F.LOIHI_CX.nbytes(n_cx, env),
                 F.LOIHI_VTH.nbytes(n_vth, env), F.LOIHI_ACC.nbytes(n_acc, env),
                 F.LOIHI_FMT.nbytes(n_fmt, env), F.LOIHI_NEURON.nbytes(n, env),
                 F.LOIHI_AXON.nbytes(n_ax, env), n_words * word // 8,
                 F.LOIHI_ROUTE.nbytes(n_rt, env)]
        self.need(sum(sizes) == len(buf), f"the header's counts need {sum(sizes)} bytes, the "
                  f"section has {len(buf)}")
        slices, at = self._slice_table(buf, H.size, n_sl, n)
        bits = {}
        cx, at2 = self._bits_table(F.LOIHI_CX, buf, at, n_cx, env, "LOIHI_CX")
        bits["cx"] = (at2 - at) * 8
        self._check_col(cx["refractory"] <= P["neuron.refractory_max"], "LOIHI_CX.refractory",
                        cx["refractory"], at, F.LOIHI_CX.record_bits(env),
                        f"<= neuron.refractory_max {P['neuron.refractory_max']}")
        at = at2
        vt, at2 = self._bits_table(F.LOIHI_VTH, buf, at, n_vth, env, "LOIHI_VTH")
        bits["vth"] = (at2 - at) * 8
        at = at2
        acc, at2 = self._bits_table(F.LOIHI_ACC, buf, at, n_acc, env, "LOIHI_ACC")
        bits["acc"] = (at2 - at) * 8
        ex = acc["weight_exp"]
        self._check_col((ex >= P["widths.weight_exp_min"]) & (ex <= P["widths.weight_exp_max"]),
                        "LOIHI_ACC.weight_exp", ex, at, F.LOIHI_ACC.record_bits(env),
                        f"{P['widths.weight_exp_min']}..{P['widths.weight_exp_max']}")
        at = at2
        fmt, at2 = self._bits_table(F.LOIHI_FMT, buf, at, n_fmt, env, "LOIHI_FMT")
        bits["fmt"] = (at2 - at) * 8
        rb = F.LOIHI_FMT.record_bits(env)
        self._check_col(fmt["wb"] <= P["widths.weight"], "LOIHI_FMT.wb", fmt["wb"], at, rb,
                        f"<= widths.weight {P['widths.weight']}")
        self._check_col(fmt["sign"] <= 2, "LOIHI_FMT.sign", fmt["sign"], at, rb, "0..2")
        self._check_col(fmt["db"] <= P["widths.delay"], "LOIHI_FMT.db", fmt["db"], at, rb,
                        f"<= widths.delay {P['widths.delay']}")
        self._check_col((fmt["dense"] == 0) | (fmt["ib"] == 0), "LOIHI_FMT.ib", fmt["ib"], at, rb,
                        "0 for a dense format")
        self._check_col(fmt["ib"] <= 24, "LOIHI_FMT.ib", fmt["ib"], at, rb, "<= 24")
        self._check_col(fmt["acc"] < max(n_acc, 1), "LOIHI_FMT.acc", fmt["acc"], at, rb,
                        f"< n_acc {n_acc}")
        at = at2
        nr, at2 = self._bits_table(F.LOIHI_NEURON, buf, at, n, env, "LOIHI_NEURON")
        bits["neurons"] = (at2 - at) * 8
        rb = F.LOIHI_NEURON.record_bits(env)
        self._check_col(nr["cx"] < n_cx, "LOIHI_NEURON.cx", nr["cx"], at, rb, f"< n_cx {n_cx}")
        self._check_col(nr["vth"] < n_vth, "LOIHI_NEURON.vth", nr["vth"], at, rb, f"< n_vth {n_vth}")
        self.need(int(nr["n_routes"].sum()) == n_rt, f"compartments list "
                  f"{int(nr['n_routes'].sum())} route entries, n_routes = {n_rt}", self.base + at)
        at = at2
        axs, at2 = self._bits_table(F.LOIHI_AXON, buf, at, n_ax, env, "LOIHI_AXON")
        bits["axons"] = (at2 - at) * 8
        self._check_col(axs["base"] < max(n, 1), "LOIHI_AXON.base", axs["base"], at,
                        F.LOIHI_AXON.record_bits(env), f"< n_neurons {n}")
        ax_at = at
        at = at2
        mem_at = at
        mem = F.BitReader(np.frombuffer(buf, np.uint8, n_words * word // 8, at))
        at += n_words * word // 8
        bits["synapse_words"] = n_words * word
        syn = self._loihi_synapses(mem, mem_at, ax_at, axs, fmt, n, n_words, env)
        rt, at2 = self._bits_table(F.LOIHI_ROUTE, buf, at, n_rt, env, "LOIHI_ROUTE")
        bits["routes"] = (at2 - at) * 8
        route_pos = np.stack([rt["chip"], rt["x"], rt["y"], rt["axon"]], 1) if n_rt else \
            np.zeros((0, 4), np.int64)
        rb = F.LOIHI_ROUTE.record_bits(env)
        self._check_col(rt["chip"] < m["n_chips"], "LOIHI_ROUTE.chip", rt["chip"], at, rb,
                        f"< n_chips {m['n_chips']}")
        self._check_col(rt["x"] < m["mesh_x"], "LOIHI_ROUTE.x", rt["x"], at, rb, f"< mesh_x {m['mesh_x']}")
        self._check_col(rt["y"] < m["mesh_y"], "LOIHI_ROUTE.y", rt["y"], at, rb, f"< mesh_y {m['mesh_y']}")
        self.route_tables_at = getattr(self, "route_tables_at", {})
        self.route_tables_at[cid] = (e["offset"] + at, rb, "LOIHI_ROUTE")
        route_ptr = np.zeros(n + 1, np.int64)
        np.cumsum(nr["n_routes"], out=route_ptr[1:])
        return LoihiCore(
            id=cid, chip=chip, x=x, y=y, n_neurons=n, n_axons=n_ax, n_routes=n_rt, n_words=n_words,
            slices=slices, cx=cx, vth=vt["vth_mant"], acc_exp=ex, fmt=fmt, neuron=nr, axon=axs,
            syn_ptr=syn["ptr"], syn_comp=syn["comp"], syn_w=syn["w"], syn_delay=syn["delay"],
            syn_acc=syn["acc"], route_ptr=route_ptr, route_core=np.zeros(n_rt, np.int64),
            route_axon=rt["axon"], route_pos=route_pos, bits=bits)

    def _loihi_synapses(self, mem: F.BitReader, mem_at: int, ax_at: int, axs: dict,
                        fmt: dict, n: int, n_words: int, env: dict) -> dict[str, np.ndarray]:
        """Parse the synapse blocks of every axon (vectorised over axons, one round per block
        index) and check that the axons' blocks tile the used words exactly, in axon order."""
        P = self.params
        word = P["core.synapse_word_bits"]
        group = P["synapse.group_size"]
        fb, cb = P["synapse.fmt_bits"], P["synapse.count_bits"]
        hb = fb + cb
        ptr, nblk, base = axs["ptr"], axs["n_blocks"], axs["base"]
        n_ax = ptr.size
        arb = F.LOIHI_AXON.record_bits(env)
        z = np.zeros(0, np.int64)
        if n_ax == 0:
            self.need(n_words == 0, f"{n_words} synapse words but no axons", self.base + mem_at)
            return dict(ptr=np.zeros(1, np.int64), comp=z, w=z, delay=z, acc=z)
        self.need(int(nblk.sum()) <= n_words, f"axons list {int(nblk.sum())} synapse blocks in "
                  f"{n_words} words (a block takes at least one word)", self.base + ax_at)
        self._check_col(nblk >= 1, "LOIHI_AXON.n_blocks", nblk, ax_at, arb, ">= 1")
        expect = np.zeros(n_ax, np.int64)
        sbits_f = fmt["wb"] + fmt["db"] + fmt["ib"]
        n_fmt = fmt["wb"].size
        cur = ptr.copy()
        self._check_col(cur < n_words, "LOIHI_AXON.ptr", cur, ax_at, arb, f"< n_words {n_words}")
        blocks = []  # (axon, word, count, fmt) per round
        ax_fmt = np.full(n_ax, -1, np.int64)
        active = np.arange(n_ax)
        j = 0
        while active.size:
            pos = cur[active]
            ok = pos < n_words
            self._check_col(ok, "LOIHI_AXON (block past the used words) ptr", ptr[active], ax_at, arb,
                            f"blocks within {n_words} words")
            starts = pos * word
            # the header's two fields in one read
            hdr = F.get_bits(mem, starts, hb).astype(np.int64)
            f = hdr & ((1 << fb) - 1)
            cnt = (hdr >> fb) + 1
            bad = np.flatnonzero(f >= n_fmt)
            if bad.size:
                k0 = int(bad[0])
                raise self.fail(f"synapse block of axon {int(active[k0])}: format "
                      f"{int(f[k0])} >= n_fmt {n_fmt}",
                                self.base + mem_at + int(pos[k0] if bad.size else 0) * word // 8)
            if j == 0:
                ax_fmt[active] = f
            bad = np.flatnonzero(f != ax_fmt[active])
            if bad.size:
                k0 = int(bad[0])
                raise self.fail(f"synapse block {j} of axon {int(active[k0])} has "
                      f"format {int(f[k0])}, its first block {int(ax_fmt[active[k0]])}",
                                self.base + mem_at + int(pos[k0] if bad.size else 0) * word // 8)
            bad = np.flatnonzero(cnt > group)
            if bad.size:
                k0 = int(bad[0])
                raise self.fail(f"synapse block of axon {int(active[k0])} holds "
                      f"{int(cnt[k0])} synapses > synapse.group_size {group}",
                                self.base + mem_at + int(pos[k0] if bad.size else 0) * word // 8)
            used = hb + cnt * sbits_f[f]
            words = -(-used // word)
            end = pos + words
            bad = np.flatnonzero(end > n_words)
            if bad.size:
                k0 = int(bad[0])
                raise self.fail(f"synapse block of axon {int(active[k0])} ends at "
                      f"word {int(end[k0])} > n_words {n_words}",
                                self.base + mem_at + int(pos[k0] if bad.size else 0) * word // 8)
            # zero padding after the block's last synapse
            pad_start = starts + used
            pad_total = words * word - used
            if word == 64 and pad_total.size:
                # the padding is the top of the block's last word: one read per block; only a
                # failure goes through the chunked scan below (it words the error)
                last = mem.words[end - 1]
                sh = (word - pad_total).astype(np.uint64)  # 1..64
                last >>= sh - np.uint64(1)
                last >>= np.uint64(1)
                pad_rounds = 0 if not last.any() else int(pad_total.max())
            else:
                pad_rounds = int(pad_total.max()) if pad_total.size else 0
            for k in range(0, pad_rounds, 32):
                sel = pad_total > k
                w_ = np.minimum(32, pad_total[sel] - k)
                v = F.get_bits(mem, pad_start[sel] + k, w_)
                bad = np.flatnonzero(v != 0)
                if bad.size:
                    k0 = int(bad[0])
                    raise self.fail("synapse block padding bits are not zero",
                                    self.base + mem_at + int(pos[sel][k0] if bad.size else 0) * word // 8)
            blocks.append((active, pos, cnt, f))
            cur[active] = end
            j += 1
            active = active[nblk[active] > j]
        expect[1:] = cur[:-1]
        bad = np.flatnonzero(ptr != expect)
        if bad.size:
            k0 = int(bad[0])
            raise self.fail(f"LOIHI_AXON[{k0}].ptr = {int(ptr[k0])}, the "
                  f"previous axon's blocks end at word {int(expect[k0])}",
                            self.base + ax_at + (k0 * arb) // 8)
        self.need(int(cur[-1]) == n_words, f"the last axon's blocks end at word {int(cur[-1])}, "
                  f"n_words = {n_words}", self.base + mem_at)
        # synapse fields, block by block (vectorised)
        fast = self._loihi_synapses_fast(mem, blocks, fmt, base, n, n_ax)
        if fast is not None:
            return fast
        b_ax = np.concatenate([b[0] for b in blocks])
        b_pos = np.concatenate([b[1] for b in blocks])
        b_cnt = np.concatenate([b[2] for b in blocks])
        b_fmt = np.concatenate([b[3] for b in blocks])
        b_round = np.concatenate([np.full(b[0].size, r, np.int64) for r, b in enumerate(blocks)])
        order = np.lexsort((b_round, b_ax))  # axon order, then block order
        b_ax, b_pos, b_cnt, b_fmt, b_round = (a[order] for a in (b_ax, b_pos, b_cnt, b_fmt, b_round))
        total = int(b_cnt.sum())
        s_blk = np.repeat(np.arange(b_ax.size), b_cnt)
        first = np.concatenate([[0], np.cumsum(b_cnt)[:-1]])
        s_j = np.arange(total) - first[s_blk]
        s_fmt = b_fmt[s_blk]
        sb = sbits_f[s_fmt]
        s_start = b_pos[s_blk] * word + hb + s_j * sb
        ib, wb, db = fmt["ib"][s_fmt], fmt["wb"][s_fmt], fmt["db"][s_fmt]
        idx = F.get_bits(mem, s_start, ib).astype(np.int64)
        wf = F.get_bits(mem, s_start + ib, wb).astype(np.int64)
        dl = F.get_bits(mem, s_start + ib + wb, db).astype(np.int64) + 1
        s_ax = b_ax[s_blk]
        syn_ptr = np.zeros(n_ax + 1, np.int64)
        np.cumsum(np.bincount(s_ax, minlength=n_ax), out=syn_ptr[1:])
        pos_in_axon = np.arange(total) - syn_ptr[s_ax]
        dense = fmt["dense"][s_fmt] == 1
        comp = base[s_ax] + np.where(dense, pos_in_axon, idx)
        bad = np.flatnonzero(comp >= n)
        if bad.size:
            k0 = int(bad[0])
            raise self.fail(f"synapse {int(pos_in_axon[k0])} of axon "
                  f"{int(s_ax[k0])} feeds compartment {int(comp[k0])} >= n_neurons {n}",
                            self.base + mem_at + int(s_start[k0] if bad.size else 0) // 8)
        bad = np.flatnonzero(dl > P["synapse.delay_max"])
        if bad.size:
            k0 = int(bad[0])
            raise self.fail(f"synapse {int(pos_in_axon[k0])} of axon "
                  f"{int(s_ax[k0])}: delay {int(dl[k0])} > synapse.delay_max "
                  f"{P['synapse.delay_max']}",
                            self.base + mem_at + int(s_start[k0] if bad.size else 0) // 8)
        w = F.loihi_weight_decode(wf, wb, fmt["sign"][s_fmt])
        return dict(ptr=syn_ptr, comp=comp, w=w, delay=dl, acc=fmt["acc"][s_fmt])

    def _loihi_synapses_fast(self, mem: F.BitReader, blocks: list, fmt: dict, base: np.ndarray,
                             n: int, n_ax: int) -> dict[str, np.ndarray] | None:
        """Decode the synapse fields of checked blocks as whole 2-D arrays
        (:func:`emulator.loader_batch.decode_blocks`). Returns None (the caller then runs the
        general per-synapse path, which also words the error) when the words are not a multiple
        of 64 bits, a record is wider than 64 bits or a synapse fails a range check."""
        P = self.params
        word = P["core.synapse_word_bits"]
        if word % 64:
            return None
        b_ax = np.concatenate([b[0] for b in blocks])
        b_pos = np.concatenate([b[1] for b in blocks]) * (word // 64)
        b_cnt = np.concatenate([b[2] for b in blocks])
        b_fmt = np.concatenate([b[3] for b in blocks])
        b_round = np.concatenate([np.full(b[0].size, r, np.int64) for r, b in enumerate(blocks)])
        return decode_blocks(mem.words, b_ax, b_pos, b_cnt, b_fmt, b_round, fmt, base, n, n_ax,
                             P["synapse.fmt_bits"] + P["synapse.count_bits"],
                             P["synapse.delay_max"])

    # ---- TrueNorth core ----------------------------------------------------------------------
    def _tn_core(self, e: dict) -> TrueNorthCore:
        buf = self._payload(e)
        P = self.params
        m = self.meta
        cid = e["index"]
        H = F.TN_CORE_HEADER
        h = self._struct(H, buf, 0, 1, "TN_CORE_HEADER")[0]
        chip, x, y = int(h["chip"]), int(h["x"]), int(h["y"])
        self.need(chip < m["n_chips"] and x < m["mesh_x"] and y < m["mesh_y"],
                  f"position chip {chip} ({x}, {y}) is outside {m['n_chips']} chip(s) of "
                  f"{m['mesh_x']} x {m['mesh_y']}")
        n, n_ax, n_rt, n_sl = (int(h[k]) for k in ("n_neurons", "n_axons", "n_routes", "n_slices"))
        for name, v, key, off in (("n_neurons", n, "core.neurons", 8), ("n_axons", n_ax, "core.axons", 12),
                                  ("n_routes", n_rt, "core.neurons", 16)):
            self.need(v <= P[key] * (P["core.targets_per_neuron"] if name == "n_routes" else 1),
                      f"TN_CORE_HEADER.{name} = {v} exceeds {key} = {P[key]}", self.base + off)
        env = {k: v for k, v in P.items() if isinstance(v, int)}
        env["w_rlen"] = int(h["w_rlen"])
        sizes = [H.size, n_sl * F.SLICE.size, F.TN_AXON.nbytes(n_ax, env),
                 F.TN_NEURON.nbytes(n, env), F.TN_CROSSBAR.nbytes(n_ax * n, env),
                 F.TN_ROUTE.nbytes(n_rt, env)]
        self.need(sum(sizes) == len(buf), f"the header's counts need {sum(sizes)} bytes, the "
                  f"section has {len(buf)}")
        slices, at = self._slice_table(buf, H.size, n_sl, n)
        bits = {}
        axs, at2 = self._bits_table(F.TN_AXON, buf, at, n_ax, env, "TN_AXON")
        rb = F.TN_AXON.record_bits(env)
        self._check_col((axs["delay"] >= 1) & (axs["delay"] < P["core.scheduler_slots"]),
                        "TN_AXON.delay", axs["delay"], at, rb,
                        f"1..{P['core.scheduler_slots'] - 1}")
        bits["axons"] = (at2 - at) * 8
        at = at2
        nr, at2 = self._bits_table(F.TN_NEURON, buf, at, n, env, "TN_NEURON")
        rb = F.TN_NEURON.record_bits(env)
        for f, ok, lim in (
                ("gamma", nr["gamma"] <= 2, "0..2"),
                ("v_bits", (nr["v_bits"] >= 2) & (nr["v_bits"] <= 32), "2..32"),
                ("tm", nr["tm"] <= P["widths.tm"], f"<= widths.tm {P['widths.tm']}")):
            self._check_col(ok, f"TN_NEURON.{f}", nr[f], at, rb, lim)
        self.need(int(nr["n_routes"].sum()) == n_rt, f"neurons list {int(nr['n_routes'].sum())} "
                  f"route entries, n_routes = {n_rt}", self.base + at)
        self._check_col(nr["n_routes"] <= P["core.targets_per_neuron"], "TN_NEURON.n_routes",
                        nr["n_routes"], at, rb, f"<= core.targets_per_neuron "
                        f"{P['core.targets_per_neuron']}")
        bits["neurons"] = (at2 - at) * 8
        at = at2
        cb, at2 = self._bits_table(F.TN_CROSSBAR, buf, at, n_ax * n, env, "TN_CROSSBAR")
        crossbar = cb["bit"].astype(bool).reshape(n_ax, n)
        bits["crossbar"] = (at2 - at) * 8
        at = at2
        rt, at2 = self._bits_table(F.TN_ROUTE, buf, at, n_rt, env, "TN_ROUTE")
        bits["routes"] = (at2 - at) * 8
        rb = F.TN_ROUTE.record_bits(env)
        mx, my = m["mesh_x"], m["mesh_y"]
        gx = chip * mx + x + rt["dx"]
        gy = y + rt["dy"]
        ok = (gx >= 0) & (gx < m["n_chips"] * mx) & (gy >= 0) & (gy < my)
        self._check_col(ok, "TN_ROUTE.dx/dy (destination off the mesh) dx", rt["dx"], at, rb,
                        f"inside {m['n_chips']} chip(s) of {mx} x {my}")
        route_pos = (np.stack([gx // mx, gx % mx, gy, rt["axon"]], 1) if n_rt
                     else np.zeros((0, 4), np.int64))
        self.route_tables_at = getattr(self, "route_tables_at", {})
        self.route_tables_at[cid] = (e["offset"] + at, rb, "TN_ROUTE")
        # one synapse per crossbar bit, axon-major
        ax_i, comp = np.nonzero(crossbar)
        syn_ptr = np.zeros(n_ax + 1, np.int64)
        np.cumsum(crossbar.sum(axis=1), out=syn_ptr[1:])
        route_ptr = np.zeros(n + 1, np.int64)
        np.cumsum(nr["n_routes"], out=route_ptr[1:])
        return TrueNorthCore(
            id=cid, chip=chip, x=x, y=y, n_neurons=n, n_axons=n_ax, n_routes=n_rt, slices=slices,
            axon=axs, neuron=nr, crossbar=crossbar, syn_ptr=syn_ptr, syn_comp=comp.astype(np.int64),
            syn_group=axs["type"][ax_i], syn_w=np.ones(comp.size, np.int64),
            syn_delay=axs["delay"][ax_i], route_ptr=route_ptr, route_core=np.zeros(n_rt, np.int64),
            route_axon=rt["axon"], route_pos=route_pos, bits=bits)

    # ---- cross-section rules -----------------------------------------------------------------
    def _cross_fast(self, cores: list, inputs: list[Port], outputs: list[Port]) -> bool:
        """Every rule of :meth:`_cross` checked over all cores at once; True when all hold (and
        the routes' cores and the populations' places are then set), False to run
        :meth:`_cross`, which words the error."""
        nc = len(cores)
        if nc == 0 or any(c.id != i for i, c in enumerate(cores)):
            return False
        mx, my, nch = self.meta["mesh_x"], self.meta["mesh_y"], self.meta["n_chips"]
        pos = np.array([(c.chip, c.x, c.y) for c in cores], np.int64).reshape(nc, 3)
        key = (pos[:, 0] * mx + pos[:, 1]) * my + pos[:, 2]
        grid = np.full(nch * mx * my, -1, np.int64)
        grid[key] = np.arange(nc)
        if not (grid[key] == np.arange(nc)).all():  # two cores at one position
            return False
        n_axons = np.array([c.n_axons for c in cores], np.int64)
        ax_off = np.zeros(nc + 1, np.int64)
        np.cumsum(n_axons, out=ax_off[1:])
        # routes: to a placed core, to one of its axons
        n_rt = np.array([c.n_routes for c in cores], np.int64)
        rp = np.concatenate([c.route_pos.reshape(-1, 4) for c in cores]) if n_rt.sum() else \
            np.zeros((0, 4), np.int64)
        dest = grid[(rp[:, 0] * mx + rp[:, 1]) * my + rp[:, 2]]
        if (dest < 0).any() or (rp[:, 3] >= n_axons[dest]).any():
            return False
        feeds = np.bincount(ax_off[dest] + rp[:, 3], minlength=int(ax_off[-1]))
        # populations: covered exactly once by the core slices, with the right readout flags
        sizes = np.array([p.size for p in self.pops], np.int64)
        pop_off = np.zeros(sizes.size + 1, np.int64)
        np.cumsum(sizes, out=pop_off[1:])
        sl = np.concatenate([c.slices.reshape(-1, 3) for c in cores])
        lens = sl[:, 2] - sl[:, 1]
        n_neur = np.array([c.n_neurons for c in cores], np.int64)
        comp_off = np.zeros(nc + 1, np.int64)
        np.cumsum(n_neur, out=comp_off[1:])
        total = int(lens.sum())
        if total != int(pop_off[-1]) or total != int(comp_off[-1]):
            return False
        # slice k's neurons in core order are the compartments comp_off[core] + local, which run
        # through 0..total-1 in order (each core's slices hold its n_neurons compartments)
        first = np.zeros(lens.size, np.int64)
        np.cumsum(lens[:-1], out=first[1:])
        shift = pop_off[sl[:, 0]] + sl[:, 1] - first
        if (shift == 0).all():  # the populations in order, core after core
            gidx = None
        else:
            gidx = np.repeat(shift, lens) + np.arange(total)
            if not (np.bincount(gidx, minlength=total) == 1).all():
                return False
        readout = np.concatenate([np.asarray(c.readout, bool) for c in cores])
        pop_ro = np.array([p.readout for p in self.pops], bool)
        if not (readout == np.repeat(pop_ro[sl[:, 0]], lens)).all():
            return False
        # host inputs: to existing axons; no axon fed twice
        diff = np.zeros(int(ax_off[-1]) + 1, np.int64)
        for port in inputs:
            c, a, s, t = (port.entries[:, i] for i in range(4))
            if ((c < 0) | (c >= nc)).any():
                return False
            if (a + (t - s) > n_axons[c]).any():
                return False
            np.add.at(diff, ax_off[c] + a, 1)
            np.add.at(diff, ax_off[c] + a + t - s, -1)
        feeds += np.cumsum(diff)[:-1]
        if (feeds > 1).any():
            return False
        # outputs: existing compartments of the port's kind, every element exactly once
        for port in outputs:
            c, nn, s, t = (port.entries[:, i] for i in range(4))
            if ((c < 0) | (c >= nc)).any() or (nn + (t - s) > n_neur[c]).any():
                return False
            ln = t - s
            m = int(ln.sum())
            fo = np.zeros(ln.size, np.int64)
            if ln.size:
                np.cumsum(ln[:-1], out=fo[1:])
            at = np.repeat(comp_off[c] + nn - fo, ln) + np.arange(m)
            if not (readout[at] == (port.kind == "values")).all():
                return False
            el = np.repeat(s - fo, ln) + np.arange(m)
            if not (np.bincount(el, minlength=port.width) == 1).all() or el.size != port.width:
                return False
        # everything holds: set the routes' destination cores and the populations' places
        r_off = np.zeros(nc + 1, np.int64)
        np.cumsum(n_rt, out=r_off[1:])
        for i, c in enumerate(cores):
            if c.n_routes:
                c.route_core = dest[r_off[i]:r_off[i + 1]]
        core_of = np.repeat(np.arange(nc), n_neur)
        local_of = np.arange(total) - np.repeat(comp_off[:-1], n_neur)
        if gidx is not None:
            core_of[gidx], local_of[gidx] = core_of.copy(), local_of.copy()
        for i, p in enumerate(self.pops):
            p.core = core_of[pop_off[i]:pop_off[i + 1]].copy()
            p.local = local_of[pop_off[i]:pop_off[i + 1]].copy()
        return True

    def _cross(self, cores: list[LoihiCore], inputs: list[Port], outputs: list[Port],
               cores_e: list[dict], iomap_e: dict) -> None:
        # unique positions; route entries to existing cores and axons
        pos = {}
        for c, e in zip(cores, cores_e, strict=True):
            key = (c.chip, c.x, c.y)
            self.section, self.base = e["name"], e["offset"]
            self.need(key not in pos, f"position chip {c.chip} ({c.x}, {c.y}) is also core "
                      f"{pos.get(key)}")
            pos[key] = c.id
        mx, my = self.meta["mesh_x"], self.meta["mesh_y"]
        grid = np.full(self.meta["n_chips"] * mx * my, -1, np.int64)
        for (ch, x, y), cid in pos.items():
            grid[(ch * mx + x) * my + y] = cid
        n_axons = np.array([c.n_axons for c in cores], np.int64)
        feeds = [np.zeros(c.n_axons, np.int64) for c in cores]
        for c, e in zip(cores, cores_e, strict=True):
            self.section, self.base = e["name"], e["offset"]
            if not c.n_routes:
                continue
            rp = c.route_pos
            dest = grid[(rp[:, 0] * mx + rp[:, 1]) * my + rp[:, 2]]
            at, rb, tname = self.route_tables_at[c.id]
            bad = np.flatnonzero(dest < 0)
            if bad.size:
                k0 = int(bad[0])
                raise self.fail(f"{tname}[{k0}] goes to chip "
                      f"{int(rp[k0, 0])} ({int(rp[k0, 1])}, {int(rp[k0, 2])}), where no "
                      "core is placed",
                                at + (k0 * rb) // 8)
            bad = np.flatnonzero(rp[:, 3] >= n_axons[dest])
            if bad.size:
                k0 = int(bad[0])
                raise self.fail(f"{tname}[{k0}] goes to axon "
                      f"{int(rp[k0, 3])} of core {int(dest[k0])}, which has "
                      f"{int(n_axons[dest[k0]])} axons",
                                at + (k0 * rb) // 8)
            c.route_core = dest
            for d in np.unique(dest):
                np.add.at(feeds[d], rp[dest == d, 3], 1)
        # populations covered exactly once by core slices
        for p in self.pops:
            p.core = np.full(p.size, -1, np.int64)
            p.local = np.full(p.size, -1, np.int64)
        for c, e in zip(cores, cores_e, strict=True):
            self.section, self.base = e["name"], e["offset"]
            local = 0
            for i, (pi, s, t) in enumerate(c.slices.tolist()):
                p = self.pops[pi]
                self.need(np.all(p.core[s:t] < 0), f"SLICE[{i}] {p.name}[{s}:{t}] overlaps "
                          "another slice", self.base + F.LOIHI_CORE_HEADER.size + 12 * i)
                p.core[s:t] = c.id
                p.local[s:t] = np.arange(local, local + t - s)
                ro = c.readout[local:local + t - s]
                self.need(np.all(ro == p.readout), f"SLICE[{i}] {p.name}: compartments "
                          f"disagree with the population's readout flag ({p.readout})",
                          self.base + F.LOIHI_CORE_HEADER.size + 12 * i)
                local += t - s
        self.section, self.base = "SYMBOLS", 0
        for p in self.pops:
            self.need(np.all(p.core >= 0), f"population {p.name}: neuron "
                      f"{int(np.flatnonzero(p.core < 0)[0]) if np.any(p.core < 0) else 0} is on no core")
        # I/O entries
        self.section, self.base = "IOMAP", iomap_e["offset"]
        at_in, at_out = self.io_offsets
        k = 0
        for port in inputs:
            for c, a, s, t in port.entries.tolist():
                self.need(c < len(cores) and a + (t - s) <= cores[c].n_axons,
                          f"input {port.name}[{s}:{t}] -> core {c} axons {a}.. does not exist",
                          self.base + at_in + 16 * k)
                feeds[c][a:a + t - s] += 1
                k += 1
        for c, e in zip(cores, cores_e, strict=True):
            bad = np.flatnonzero(feeds[c.id] > 1)
            self.section, self.base = e["name"], e["offset"]
            if bad.size:
                k0 = int(bad[0])
                raise self.fail(f"axon {k0} is fed by "
                      f"{int(feeds[c.id][k0])} sources (routes or inputs); an axon carries one")
        self.section, self.base = "IOMAP", iomap_e["offset"]
        k = 0
        for port in outputs:
            cover = np.zeros(port.width, np.int64)
            for c, nn, s, t in port.entries.tolist():
                self.need(c < len(cores) and nn + (t - s) <= cores[c].n_neurons,
                          f"output {port.name}[{s}:{t}] <- core {c} compartments {nn}.. do not exist",
                          self.base + at_out + 16 * k)
                ro = cores[c].readout[nn:nn + t - s]
                self.need(np.all(ro == (port.kind == "values")),
                          f"output {port.name} ({port.kind}) reads compartments of the other kind "
                          f"on core {c}", self.base + at_out + 16 * k)
                cover[s:t] += 1
                k += 1
            self.need(np.all(cover == 1), f"output {port.name}: element "
                      f"{int(np.flatnonzero(cover != 1)[0]) if np.any(cover != 1) else 0} is mapped "
                      f"{int(cover[cover != 1][0]) if np.any(cover != 1) else 1} times")
