"""Resource guards: estimate the memory a job needs before doing it, and refuse it above a limit.

A model file can ask for far more than a machine has: a ``model.json`` population of 10**12
neurons, a weight file whose header claims a shape of 10**15 elements, an HDF5 dataset declared
(but never written) at a terabyte. Without a guard such a file ends in a ``MemoryError``, in the
kernel's out-of-memory killer, or in an hour of swapping. nmc therefore estimates what a step will
allocate *before* it allocates, and refuses with a :class:`~ir.errors.ResourceError` that gives the
estimate, the limit and the fix::

    model.json: /populations/0/shape: 1000000000000 neurons need about 24 TB of state
    (limit 8 GB); shrink the population, or raise --max-memory if the machine has the memory

The limit
    ``--max-memory SIZE`` on ``nmc check``, ``nmc compile`` and ``nmc run`` (e.g. ``8G``,
    ``512M``, ``2GiB``, ``1e9``); else the environment variable ``NMC_MAX_MEMORY``; else
    :data:`DEFAULT_FRACTION` of the machine's physical memory (``os.sysconf``, or
    ``/proc/meminfo``). The limit in force is held in a context variable (:func:`memory_limit`),
    so the frontends, which know nothing of the command line, read it with :func:`current_limit`.

Estimates
    They are deliberately simple upper-bound-ish sums over the graph's sizes (see
    :func:`estimate_compile` and :func:`estimate_run`), meant to catch the absurd (10x or more above
    what the machine has), not to predict the peak to the byte. Sizes use decimal units (1 GB =
    10**9 bytes) throughout, in parsing (``8G``) and in messages, except for the explicit binary
    suffixes ``KiB``, ``MiB``, ``GiB``, ``TiB``.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import os
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ir.errors import ResourceError

DEFAULT_FRACTION = 0.5
"""Share of the machine's physical memory a job may use when no limit is given: half, so that the
operating system, the shell and a second job still fit."""

FALLBACK_LIMIT = 8 * 10**9
"""The limit when the machine's memory cannot be read (not Linux, no ``/proc``)."""

STATE_BYTES_PER_NEURON = 24
"""Bytes of simulation state per neuron: three float64 (or int64) variables (membrane potential,
synaptic current, refractory counter / spike flag), the common case over the neuron kinds."""

ENV_VAR = "NMC_MAX_MEMORY"

_UNITS = {
    "": 1, "b": 1,
    "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
    "t": 10**12, "tb": 10**12, "p": 10**15, "pb": 10**15,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "pib": 2**50,
}
_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*$")

_LIMIT: contextvars.ContextVar[int | None] = contextvars.ContextVar("nmc_memory_limit", default=None)


# ------------------------------------------------------------------------------------------
# Sizes and limits
# ------------------------------------------------------------------------------------------
def parse_size(text: str | int | float) -> int:
    """Bytes from a size such as ``"8G"``, ``"512 MB"``, ``"2GiB"``, ``"1e9"`` or a number.

    Decimal suffixes (K, M, G, T, P, with or without B) are powers of 1000; KiB..PiB powers of
    1024. Raises ValueError (with the accepted forms) for anything else, zero or a negative size.
    """
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a size")
    if isinstance(text, int | float):
        value, unit = float(text), ""
    else:
        m = _SIZE_RE.match(str(text))
        if m is None or m.group(2).lower() not in _UNITS:
            raise ValueError(
                f"{text!r} is not a size; write a number of bytes with an optional unit, e.g. "
                "8G, 512M, 2GiB or 1e9"
            )
        value, unit = float(m.group(1)), m.group(2).lower()
    n = value * _UNITS[unit]
    if not math.isfinite(n) or n < 1:
        raise ValueError(f"{text!r} is not a size of at least 1 byte")
    return int(n)


def format_size(n: float) -> str:
    """A byte count for messages, in decimal units with 3 significant digits: ``24 TB``,
    ``1.5 GB``, ``512 MB``, ``800 bytes``."""
    n = float(n)
    if not math.isfinite(n):
        return "an unbounded amount"
    for factor, unit in ((10**18, "EB"), (10**15, "PB"), (10**12, "TB"), (10**9, "GB"),
                         (10**6, "MB"), (10**3, "kB")):
        if n >= factor * 0.9995:
            v = n / factor
            if v >= 1000:  # only EB gets here
                return f"{v:.0f} {unit}"
            return f"{float(f'{v:.3g}'):g} {unit}"
    return f"{int(n)} bytes"


def machine_memory() -> int | None:
    """The machine's physical memory in bytes (``os.sysconf``, else ``/proc/meminfo``), or None."""
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        if pages > 0 and size > 0:
            return int(pages) * int(size)
    except (ValueError, OSError, AttributeError):
        pass
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def default_limit() -> int:
    """The limit without ``--max-memory``: ``NMC_MAX_MEMORY`` if set (a bad value is a
    ResourceError naming it), else :data:`DEFAULT_FRACTION` of the machine's memory."""
    env = os.environ.get(ENV_VAR)
    if env:
        try:
            return parse_size(env)
        except ValueError as e:
            raise ResourceError(f"environment variable {ENV_VAR}: {e}") from None
    total = machine_memory()
    return int(total * DEFAULT_FRACTION) if total else FALLBACK_LIMIT


def current_limit() -> int:
    """The memory limit in force: the innermost :func:`memory_limit`, else :func:`default_limit`."""
    limit = _LIMIT.get()
    return default_limit() if limit is None else limit


@contextlib.contextmanager
def memory_limit(limit: int | str | None) -> Iterator[int]:
    """Run a block with ``limit`` (bytes or a size text; None: the default) as the limit."""
    value = current_limit() if limit is None else (
        parse_size(limit) if isinstance(limit, str) else int(limit))
    token = _LIMIT.set(value)
    try:
        yield value
    finally:
        _LIMIT.reset(token)


def _fix(extra: str) -> str:
    more = "raise --max-memory (or NMC_MAX_MEMORY) if the machine has the memory"
    return f"{extra}, or {more}" if extra else more


def require(need: float, what: str, *, where: str, fix: str = "", of: str = "",
            detail: str = "", verb: str | None = None, limit: int | None = None) -> None:
    """Refuse a step that needs ``need`` bytes above the limit.

    The message reads ``{where}: {what} need(s) about {need}{of} (limit {limit}){detail}; {fix},
    or raise --max-memory ...``; ``what`` is the subject (``"1000 neurons"``), ``of`` what the
    memory is for (``" of state"``), ``detail`` the largest parts (``": fc1 synapses 20 GB"``),
    ``fix`` what the user can change in the model.
    """
    limit = current_limit() if limit is None else limit
    if need <= limit:
        return
    if verb is None:
        verb = "needs" if what.startswith(("a ", "an ", "the ", "1 ", "its ")) else "need"
    raise ResourceError(
        f"{where}: {what} {verb} about {format_size(need)}{of} (limit {format_size(limit)})"
        f"{detail}; {_fix(fix)}"
    )


# ------------------------------------------------------------------------------------------
# Checks the frontends make before they allocate
# ------------------------------------------------------------------------------------------
def check_neurons(n: int, where: str, *, fix: str = "shrink the population",
                  limit: int | None = None) -> None:
    """Refuse a population (or input) of ``n`` neurons whose state alone exceeds the limit
    (:data:`STATE_BYTES_PER_NEURON` each)."""
    require(int(n) * STATE_BYTES_PER_NEURON, f"{int(n)} neurons", where=where, fix=fix,
            of=" of state", limit=limit)


def check_array(shape: tuple[int, ...], dtype: Any, where: str, *, fix: str = "",
                limit: int | None = None) -> None:
    """Refuse to allocate an array of ``shape`` and ``dtype`` above the limit."""
    itemsize = np.dtype(dtype).itemsize if dtype is not None else 8
    count = math.prod(int(s) for s in shape)
    require(count * max(itemsize, 1), f"an array of shape {list(map(int, shape))} ({np.dtype(dtype)})",
            where=where, fix=fix or "use a smaller array", limit=limit)


@dataclass(frozen=True)
class ArrayHeader:
    """What a ``.npy`` header (or one member of an ``.npz``) declares, read without the data."""

    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool
    data_bytes: int       # bytes the file really holds after the header (compressed: stored size)
    compressed: bool = False

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


def _read_header(f: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) of the ``.npy`` stream ``f``; ValueError when damaged."""
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version in ((2, 0), (3, 0)):
            # 3.0 differs from 2.0 only in the header's text encoding (utf-8 for field names).
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")
    except ValueError:
        raise
    except Exception as e:  # noqa: BLE001 - numpy parses the header with ast/tokenize
        raise ValueError(f"damaged .npy header ({type(e).__name__}: {e})") from None
    if not isinstance(shape, tuple) or not all(isinstance(s, int) and s >= 0 for s in shape):
        raise ValueError(f"damaged .npy header (shape {shape!r})")
    return shape, fortran, dtype


def npy_header(path: str | os.PathLike, key: str | None = None) -> ArrayHeader:
    """The header of a ``.npy`` file, or of member ``key`` of an ``.npz`` archive, without reading
    the array. Raises ValueError/OSError/zipfile.BadZipFile/KeyError for a damaged file (the caller
    words the message)."""
    path = Path(path)
    if key is None:
        with open(path, "rb") as f:
            shape, fortran, dtype = _read_header(f)
            data = os.fstat(f.fileno()).st_size - f.tell()
        return ArrayHeader(tuple(shape), np.dtype(dtype), bool(fortran), data)
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(key if key.endswith(".npy") else key + ".npy")
        try:
            with z.open(info) as f:
                shape, fortran, dtype = _read_header(f)
                consumed = f.tell()
        except NotImplementedError as e:  # zipfile: a compression method it does not have
            raise ValueError(f"{e} (member {info.filename})") from None
        compressed = info.compress_type != zipfile.ZIP_STORED
        data = info.file_size - consumed
        return ArrayHeader(tuple(shape), np.dtype(dtype), bool(fortran), data, compressed)


def check_npy(header: ArrayHeader, where: str, *, limit: int | None = None) -> None:
    """Refuse an array file whose header claims more data than the file holds (a truncated or
    forged header: numpy would allocate the claimed size before noticing), or more memory than the
    limit. ``where`` names the file (and key)."""
    if header.dtype.hasobject:
        return  # refused elsewhere (pickles are never loaded)
    need = header.nbytes
    if need > header.data_bytes:
        raise ResourceError(
            f"{where}: the header declares shape {list(header.shape)} {header.dtype} "
            f"({format_size(need)}) but the file holds only {format_size(max(header.data_bytes, 0))} "
            "of data; the file is truncated or damaged: save it again"
        )
    require(need, f"an array of shape {list(header.shape)} ({header.dtype})", where=where,
            fix="use a smaller array", limit=limit)


def hdf5_payload(path: str | os.PathLike) -> tuple[int, str, tuple[int, ...], int]:
    """Bytes all datasets of an HDF5 file declare (shape x item size, not what is stored: a
    chunked dataset reads back at its full declared size), with the largest dataset's name,
    shape and bytes. Raises OSError for a file HDF5 cannot open or walk (a damaged file)."""
    import h5py

    total = 0
    largest: tuple[int, str, tuple[int, ...]] = (0, "", ())

    def visit(name: str, obj: Any) -> None:
        nonlocal total, largest
        if isinstance(obj, h5py.Dataset):
            shape = obj.shape or ()
            n = math.prod(int(s) for s in shape) * max(int(obj.dtype.itemsize), 1)
            total += n
            if n > largest[0]:
                largest = (n, name, tuple(int(s) for s in shape))

    try:
        with h5py.File(path, "r") as f:
            f.visititems(visit)
    except OSError:
        raise
    except (RuntimeError, ValueError, KeyError, TypeError) as e:
        # HDF5 reports a damaged file through many exception types, depending on where the
        # damage is; to the caller it is one thing: a file that cannot be read.
        raise OSError(f"damaged HDF5 file ({e})") from None
    return total, largest[1], largest[2], largest[0]


def check_hdf5(path: str | os.PathLike, display: str, *, limit: int | None = None) -> None:
    """Refuse an HDF5 model file whose datasets declare more than the limit (checked before the
    reader loads them all into memory)."""
    total, name, shape, nbytes = hdf5_payload(path)
    limit = current_limit() if limit is None else limit
    if total > limit:
        require(total, "its datasets", verb="need", detail=f": the largest is /{name}, shape "
                f"{list(shape)}, {format_size(nbytes)}", where=display,
                fix="check that this is the right file", limit=limit)


# ------------------------------------------------------------------------------------------
# A deadline for library code that can hang on damaged input
# ------------------------------------------------------------------------------------------
READ_SECONDS = 300.0
"""Time a model file's HDF5 reading may take (``NMC_READ_TIMEOUT`` overrides it). The HDF5 C
library can loop forever on a damaged file (found by bench/fuzz.py: a flipped byte in a global
heap makes ``H5HG__cache_heap_deserialize`` spin while reading a variable-length string), and a
signal cannot interrupt C code, so the reading runs in a forked child that is killed at the
deadline."""

_READ_LIMIT: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "nmc_read_timeout", default=None)


def read_timeout() -> float:
    """The deadline in force for :func:`call_with_deadline` (seconds)."""
    value = _READ_LIMIT.get()
    if value is not None:
        return value
    env = os.environ.get("NMC_READ_TIMEOUT")
    if env:
        try:
            return float(env)
        except ValueError:
            raise ResourceError(f"environment variable NMC_READ_TIMEOUT: {env!r} is not a "
                                "number of seconds") from None
    return READ_SECONDS


@contextlib.contextmanager
def read_deadline(seconds: float) -> Iterator[None]:
    """Run a block with ``seconds`` as the deadline of :func:`call_with_deadline`."""
    token = _READ_LIMIT.set(float(seconds))
    try:
        yield
    finally:
        _READ_LIMIT.reset(token)


def call_with_deadline(fn: Any, *args: Any, what: str, seconds: float | None = None) -> Any:
    """``fn(*args)`` in a forked child process, its result (or exception) sent back pickled; a
    child still running after ``seconds`` (default :func:`read_timeout`) is killed and a
    ResourceError says ``{what} did not finish within N s``. Without ``fork`` (not POSIX) the
    call runs here, unguarded."""
    import multiprocessing
    import pickle

    if "fork" not in multiprocessing.get_all_start_methods():
        return fn(*args)
    seconds = read_timeout() if seconds is None else seconds
    ctx = multiprocessing.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)

    def child() -> None:
        try:
            out = (True, fn(*args))
        except BaseException as e:  # noqa: BLE001 - sent to the parent, which re-raises it
            out = (False, e)
        try:
            send.send_bytes(pickle.dumps(out))
        except Exception as e:  # noqa: BLE001 - an unpicklable result or exception
            send.send_bytes(pickle.dumps((False, RuntimeError(f"{type(e).__name__}: {e}"))))
        send.close()

    proc = ctx.Process(target=child, daemon=True)
    proc.start()
    send.close()
    try:
        if not recv.poll(seconds):
            raise ResourceError(
                f"{what} did not finish within {seconds:g} s; the file is probably damaged (the "
                "HDF5 library can loop on a corrupt file); if it is very large, set "
                "NMC_READ_TIMEOUT to more seconds"
            )
        try:
            ok, value = pickle.loads(recv.recv_bytes())
        except EOFError:
            raise ResourceError(f"{what}: the reading process died (exit code "
                                f"{proc.exitcode}); the file is probably damaged") from None
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join()
        recv.close()
    if ok:
        return value
    raise value


# ------------------------------------------------------------------------------------------
# Estimates for compiling and emulating a graph
# ------------------------------------------------------------------------------------------
@dataclass
class Estimate:
    """An estimate of the bytes a job allocates: ``parts`` by what (largest first in ``text``)."""

    parts: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return float(sum(self.parts.values()))

    def add(self, what: str, nbytes: float) -> None:
        if nbytes > 0:
            self.parts[what] = self.parts.get(what, 0.0) + float(nbytes)

    def largest(self, k: int = 3) -> list[tuple[str, float]]:
        return sorted(self.parts.items(), key=lambda kv: (-kv[1], kv[0]))[:k]

    def text(self, k: int = 3) -> str:
        """``"fc1 weights 20 GB, h1 state 2.4 GB"``: the ``k`` largest parts."""
        return ", ".join(f"{what} {format_size(n)}" for what, n in self.largest(k))


# Copies of a connection's synapse table a compile holds at its peak: the float table, the
# scaled/quantized one, the cost model's CSR view and the encoded image section.
_COMPILE_COPIES = 4
# Bytes per stored synapse in COO form: row (int64), column (int64), value (float64).
_COO_BYTES = 24
# Per-neuron tables of the mapping passes (partition, place, route, cost model): a few int64
# and float64 columns per neuron.
_MAP_BYTES_PER_NEURON = 128


def _in_out(node: Any) -> tuple[int, int]:
    return math.prod(node.in_shape), math.prod(node.out_shape)


def _synapses(graph: Any, node: Any) -> tuple[float, bool]:
    """(stored synapses of a connection node, whether they are a dense matrix). Sizes come from
    the node's geometry where they define it (dense, convolution, pooling), else from the
    length of its COO table in the constant pool."""
    k = node.kind
    n_in, n_out = _in_out(node)
    if k in ("Conv2d", "Conv1d"):
        per_out = math.prod(node.kernel if isinstance(node.kernel, tuple) else (node.kernel,))
        return float(n_out) * per_out * (node.input_shape[0] // max(node.groups, 1)), False
    if k in ("SumPool2d", "AvgPool2d"):
        return float(n_out) * math.prod(node.kernel), False
    if "Dense" in k:  # Dense and the families' dense kinds: a full out x in matrix
        return float(n_in) * n_out, True
    for fname in ("values", "weight", "crossbar", "exc"):
        ref = getattr(node, fname, None)
        if ref is not None and hasattr(ref, "name") and ref.name in graph.constants:
            return float(graph.constants[ref.name].size), False
    return float(n_out), False  # Flatten, Scale: one per neuron


def estimate_compile(graph: Any) -> Estimate:
    """What compiling ``graph`` holds in memory at its peak, roughly.

    * the graph's constants (already in memory, counted once);
    * every connection's synapse table, :data:`_COMPILE_COPIES` times: a dense matrix stays
      ``out x in`` float64, a convolution or pooling lowers to COO triplets (``_COO_BYTES`` per
      stored synapse: one per output neuron and kernel tap and input channel of its group);
    * a connection that feeds another connection directly is composed into one by ``legalize``:
      the product may be a dense ``out x in`` matrix;
    * per neuron, the mapping passes' tables (:data:`_MAP_BYTES_PER_NEURON`).
    """
    e = Estimate()
    e.add("constants", sum(int(np.asarray(a).nbytes) for a in graph.constants.values()))
    neurons = 0
    for node in graph.nodes.values():
        if node.category == "neuron":
            neurons += math.prod(node.out_shape)
        elif node.category == "connection":
            n, dense = _synapses(graph, node)
            per = 8 if dense else _COO_BYTES
            e.add(f"{node.name} synapses", n * per * _COMPILE_COPIES)
    for a, b in graph.edges:
        na, nb = graph.nodes.get(a), graph.nodes.get(b)
        if (na is not None and nb is not None and na.category == "connection"
                and nb.category == "connection" and na.kind != "Flatten" and nb.kind != "Flatten"):
            n_in = math.prod(na.in_shape)
            n_out = math.prod(nb.out_shape)
            e.add(f"{a}*{b} composed", float(n_in) * n_out * 8)
    e.add("mapping tables", neurons * _MAP_BYTES_PER_NEURON)
    return e


def estimate_run(graph: Any, batch: int, ticks: int) -> Estimate:
    """What emulating ``graph`` on a batch holds, roughly: neuron state (``batch x neurons``,
    :data:`STATE_BYTES_PER_NEURON` each, plus a ring of pending synaptic input per delay step),
    synapse tables (``_COO_BYTES`` per stored synapse), input spikes (``batch x ticks x inputs``,
    one byte each) and recorded output spikes (``batch x ticks x outputs``, one byte each)."""
    e = Estimate()
    b, t = max(int(batch), 1), max(int(ticks), 1)
    neurons = sum(math.prod(n.out_shape) for n in graph.nodes.values() if n.category == "neuron")
    max_delay = 1
    for n in graph.nodes.values():
        d = getattr(n, "delay", None)
        if hasattr(d, "name") and d.name in graph.constants:
            arr = graph.constants[d.name]
            d = int(arr.max()) if arr.size else 0
        if isinstance(d, int | np.integer):
            max_delay = max(max_delay, int(d))
    e.add("neuron state", float(b) * neurons * (STATE_BYTES_PER_NEURON + 8 * max_delay))
    syn = 0.0
    for node in graph.nodes.values():
        if node.category == "connection":
            syn += _synapses(graph, node)[0]
    e.add("synapse tables", syn * _COO_BYTES)
    n_in = sum(math.prod(n.out_shape) for n in graph.inputs)
    n_out = sum(math.prod(n.in_shape) for n in graph.outputs)
    e.add("input spikes", float(b) * t * n_in)
    e.add("output spikes", float(b) * t * n_out)
    return e


def check_compile(graph: Any, where: str | None = None, *, limit: int | None = None) -> Estimate:
    """Refuse to compile ``graph`` when :func:`estimate_compile` exceeds the limit; return the
    estimate otherwise."""
    e = estimate_compile(graph)
    require(e.total, "compiling it", verb="needs", detail=f": {e.text()}",
            where=where or f"graph {graph.name}", fix="prune or shrink the largest layers",
            limit=limit)
    return e


def check_run(graph: Any, batch: int, ticks: int, where: str | None = None, *,
              limit: int | None = None) -> Estimate:
    """Refuse to emulate ``graph`` on ``batch`` samples x ``ticks`` when :func:`estimate_run`
    exceeds the limit; return the estimate otherwise."""
    e = estimate_run(graph, batch, ticks)
    require(e.total, f"emulating {batch} sample(s) x {ticks} ticks", verb="needs",
            detail=f": {e.text()}", where=where or f"graph {graph.name}",
            fix="use a smaller --batch-size, fewer --ticks or --limit", limit=limit)
    return e


# ------------------------------------------------------------------------------------------
# The command-line option
# ------------------------------------------------------------------------------------------
def _click_size(ctx: Any, param: Any, value: str | None) -> int | None:
    import click

    if value is None:
        return None
    try:
        return parse_size(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


def max_memory_option(fn: Any) -> Any:
    """Decorator of a click command's callback: adds ``--max-memory SIZE`` and runs the command
    under that limit (:func:`memory_limit`); the callback itself does not see the option."""
    import functools

    import click

    @functools.wraps(fn)
    def run(*args: Any, max_memory: int | None = None, **kwargs: Any) -> Any:
        with memory_limit(max_memory):
            return fn(*args, **kwargs)

    return click.option(
        "--max-memory", "max_memory", default=None, metavar="SIZE", callback=_click_size,
        help="Refuse jobs estimated to need more memory than SIZE (e.g. 8G, 512M; default: "
             f"${ENV_VAR} or {int(DEFAULT_FRACTION * 100)}% of this machine's memory).",
    )(run)
