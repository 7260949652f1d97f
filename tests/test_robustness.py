"""Robustness: the fuzzing harness shared by the ``test_fuzz_*`` files and ``bench/fuzz.py``.

The rule every reader of untrusted input keeps: bad input gives a user error (``ir.errors.NmcError``
or ``emulator.errors.EmulatorError``, printed as one ``Error: ...`` line), never another exception
type, never a hang. :func:`failure_of` runs one case under a time limit and says how it broke
that rule, or returns None.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import threading
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import nmc.cli
from ir.errors import ResourceError
from nmc.errors import USER_ERRORS
from tests.conftest import need

ROOT = Path(__file__).resolve().parent.parent

CASE_SECONDS = 10.0
"""Time one fuzz case may take before it counts as a hang (generous: CI machines are slow, and
a real hang never ends)."""

FUZZ_MEMORY = 256 * 10**6
"""The memory limit fuzz cases run under (``nmc.resources.memory_limit``): small, so a mutated
file that declares a huge array must be refused by a resource guard, not allocated."""


class CaseTimeout(BaseException):
    """Raised by :func:`time_limit` (a BaseException, so that no ``except Exception`` in the code
    under test can swallow it)."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`CaseTimeout` in the block after ``seconds`` (SIGALRM; main thread only, else
    the block runs unbounded)."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise CaseTimeout(f"no result within {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def crash_site(exc: BaseException) -> str:
    """``path:line`` of the innermost traceback frame inside the repository (else the innermost
    frame): where a crash comes from, used to group failures."""
    frames = traceback.extract_tb(exc.__traceback__)
    inside = [f for f in frames if f.filename.startswith(str(ROOT)) and "/tests/" not in f.filename]
    f = (inside or frames or [None])[-1]
    if f is None:
        return "?"
    name = os.path.relpath(f.filename, ROOT) if f.filename.startswith(str(ROOT)) else f.filename
    return f"{name}:{f.lineno}"


def failure_of(fn: Callable[..., Any], *args: Any, timeout: float = CASE_SECONDS,
               **kwargs: Any) -> str | None:
    """Run ``fn(*args, **kwargs)``; None when it returns or raises a user error, else one line:
    ``"<Type> at <site>: <message>"`` (``hang`` for a time-out). Warnings are silenced;
    ``KeyboardInterrupt`` passes through."""
    from nmc.resources import memory_limit, read_deadline

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            # The HDF5 readers run in a child process with their own deadline (a hang in C code
            # cannot be interrupted by a signal): shorter than the case's, so it is the guard.
            with memory_limit(FUZZ_MEMORY), read_deadline(timeout / 2), time_limit(timeout):
                fn(*args, **kwargs)
        except USER_ERRORS:
            return None
        except CaseTimeout as e:
            return f"hang at {crash_site(e)}: {e}"
        except KeyboardInterrupt:
            raise
        except BaseException as e:  # noqa: BLE001 - any other type is the finding
            msg = str(e).splitlines()[0][:200] if str(e) else ""
            return f"{type(e).__name__} at {crash_site(e)}: {msg}"
    return None


# ==========================================================================================
# The bad-input corpus of the NIR, netx and .nmir readers, through `nmc check`
# ==========================================================================================

DATA = Path(__file__).parent / "data"
BAD = DATA / "bad"
MODELS = DATA / "models"
CORPUS = {"nir": ".nir", "netx": ".net", "nmir": ".nmir"}
BAD_CASES = [(fmt, p.name) for fmt in CORPUS for p in sorted((BAD / fmt).iterdir()) if p.is_dir()]
NEEDS = {"nir": "nir", "netx": "h5py", "nmir": "lark"}


def invoke(*args: str, **kwargs: Any):
    return CliRunner().invoke(nmc.cli.cli, list(args), **kwargs)


def errors_only(stderr: str) -> str:
    """stderr from the ``Error: ...`` line on: warnings come before it (the NIR reader always says
    what it assumed), in Python's format under click's test runner."""
    m = re.search(r"^Error: ", stderr, flags=re.M)
    return stderr[m.start():] if m else stderr


def test_bad_corpus_is_complete():
    required = {
        "nir": {"not_hdf5", "truncated", "huge_dataset", "huge_input_shape", "nan_tau",
                "negative_tau", "edge_to_unknown_node", "unknown_node_type", "no_node_group"},
        "netx": {"not_hdf5", "truncated", "huge_dataset", "huge_input_shape", "nan_weight",
                 "unknown_layer_type", "missing_threshold", "dense_weight_mismatch",
                 "zero_stride"},
        "nmir": {"syntax_error", "unknown_kind", "unknown_field", "missing_sidecar",
                 "sidecar_hash_mismatch", "not_utf8", "zero_delay_cycle", "empty"},
    }
    for fmt, suffix in CORPUS.items():
        cases = {c for f, c in BAD_CASES if f == fmt}
        assert required[fmt] <= cases, fmt
        for case in cases:
            assert (BAD / fmt / case / f"model{suffix}").is_file(), (fmt, case)
            text = (BAD / fmt / case / "expected.txt").read_text(encoding="utf-8")
            assert text.startswith(f"Error: model{suffix}"), (fmt, case)
            if fmt != "nmir":  # .nmir syntax errors add the line and a caret
                assert text.count("\n") == 1, (fmt, case)


@pytest.mark.parametrize(("fmt", "case"), BAD_CASES)
def test_bad_input(fmt: str, case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    need(NEEDS[fmt])
    folder = tmp_path / case
    shutil.copytree(BAD / fmt / case, folder)
    monkeypatch.chdir(folder)
    monkeypatch.setenv("NMC_READ_TIMEOUT", "3")  # the case where the HDF5 library hangs
    # A fixed limit: the resource messages state it, and must not depend on this machine.
    r = invoke("check", "--max-memory", "1G", f"model{CORPUS[fmt]}")
    assert (r.exit_code, r.stdout) == (1, "")
    assert errors_only(r.stderr) == (BAD / fmt / case / "expected.txt").read_text(encoding="utf-8")


def test_netx_corpus_base_network_is_good():
    """The undamaged netx network of the corpus reads: each case is that one damage."""
    need("h5py")
    r = invoke("check", str(BAD / "netx" / "good.net"))
    assert r.exit_code == 0, r.stderr
    assert r.stdout.endswith("neurons:     28\nconnections: 2\nsynapses:    60\nOK\n")



# ==========================================================================================
# Resource guards (nmc.resources, --max-memory)
# ==========================================================================================
def test_sizes_parse_and_print():
    from nmc.resources import format_size, parse_size

    assert [parse_size(t) for t in ("8G", "512 MB", "2GiB", "1e9", "100", "1.5k")] == [
        8 * 10**9, 512 * 10**6, 2 * 2**30, 10**9, 100, 1500]
    assert [format_size(n) for n in (24e12, 8e9, 1.5e9, 512e6, 800, 2**31, 1e21)] == [
        "24 TB", "8 GB", "1.5 GB", "512 MB", "800 bytes", "2.15 GB", "1000 EB"]
    for bad in ("", "8X", "-1G", "0", "G8", "nan"):
        with pytest.raises(ValueError, match=r"is not a size"):
            parse_size(bad)


def test_default_limit(monkeypatch: pytest.MonkeyPatch):
    from nmc.resources import DEFAULT_FRACTION, current_limit, default_limit, machine_memory

    monkeypatch.delenv("NMC_MAX_MEMORY", raising=False)
    total = machine_memory()
    assert total and total > 10**8
    assert default_limit() == int(total * DEFAULT_FRACTION) == current_limit()
    monkeypatch.setenv("NMC_MAX_MEMORY", "3G")
    assert current_limit() == 3 * 10**9
    monkeypatch.setenv("NMC_MAX_MEMORY", "lots")
    with pytest.raises(ResourceError, match=r"^environment variable NMC_MAX_MEMORY: 'lots' is "
                                            r"not a size; "):
        current_limit()


HUGE_POPULATION = {
    "format": "nmc-model", "version": 1, "name": "huge", "dt": 0.001,
    "inputs": [{"name": "x", "shape": [4]}],
    "populations": [{"name": "h", "kind": "IF", "shape": [10**12],
                     "params": {"v_threshold": 1.0}}],
    "connections": [], "outputs": [{"name": "y", "source": "h"}],
}


def test_absurd_population_is_refused_with_the_estimate(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch):
    import json

    (tmp_path / "model.json").write_text(json.dumps(HUGE_POPULATION))
    monkeypatch.chdir(tmp_path)
    r = invoke("check", "--max-memory", "8G", "model.json")
    assert (r.exit_code, r.stdout) == (1, "")
    assert r.stderr == (
        "Error: model.json: /populations/0/shape: 1000000000000 neurons need about 24 TB of "
        "state (limit 8 GB); shrink the population, or raise --max-memory (or NMC_MAX_MEMORY) "
        "if the machine has the memory\n")
    # the same limit from the environment; and a limit large enough lets it through the guard
    monkeypatch.setenv("NMC_MAX_MEMORY", "8G")
    assert invoke("check", "model.json").stderr == r.stderr
    HUGE_POPULATION["populations"][0]["shape"] = [1000]
    (tmp_path / "model.json").write_text(json.dumps(HUGE_POPULATION))
    assert invoke("check", "--max-memory", "24k", "model.json").exit_code == 0
    assert invoke("check", "--max-memory", "23k", "model.json").exit_code == 1


def test_forged_weight_header_is_refused_before_allocation(tmp_path: Path):
    """A .npy whose header declares 8 TB: refused from the header, without a MemoryError or
    any large allocation (tracemalloc sees the peak)."""
    import json
    import tracemalloc

    from nmc.frontends.model_json import load_model_json

    doc = dict(HUGE_POPULATION, populations=[{"name": "h", "kind": "IF", "shape": [3],
                                             "params": {"v_threshold": 1.0}}],
               connections=[{"source": "x", "target": "h", "type": "dense",
                             "weight": {"file": "w.npz", "key": "w"}}])
    (tmp_path / "model.json").write_text(json.dumps(doc))
    import zipfile

    with zipfile.ZipFile(tmp_path / "w.npz", "w") as z, z.open("w.npy", "w") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)})
        f.write(b"\0" * 64)
    tracemalloc.start()
    try:
        with pytest.raises(ResourceError) as info:
            load_model_json(tmp_path / "model.json")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(info.value) == (
        f'{tmp_path / "model.json"}: /connections/0/weight/file: "w.npz" key "w": the header '
        "declares shape [1000000, 1000000] float64 (8 TB) but the file holds only 64 bytes of "
        "data; the file is truncated or damaged: save it again")
    assert peak < 50 * 10**6


def test_compile_estimate_is_checked_before_the_passes(monkeypatch: pytest.MonkeyPatch):
    import nmc.api

    def no_compile(*a, **k):  # the guard must stop the command before this is reached
        raise AssertionError("compiled despite the memory limit")

    monkeypatch.setattr(nmc.api, "compile", no_compile)
    monkeypatch.chdir(MODELS / "loihi_native")
    r = invoke("compile", "model.json", "-t", "loihi", "--emit", "nmir", "--max-memory", "1000")
    assert (r.exit_code, r.stdout) == (1, "")
    assert r.stderr == (
        "Error: model.json: compiling it needs about 1.64 kB (limit 1 kB): mapping tables "
        "768 bytes, in synapses 384 bytes, hid synapses 288 bytes; prune or shrink the largest "
        "layers, or raise --max-memory (or NMC_MAX_MEMORY) if the machine has the memory\n")


def test_estimates_scale_with_the_sizes():
    """Dense weights count out x in, convolutions out x taps x channels; the run estimate
    scales with batch x neurons and batch x ticks."""
    from ir.graph import GraphBuilder
    from ir.nodes import IF, Conv2d, Dense, Input, Output, Ref
    from nmc.resources import STATE_BYTES_PER_NEURON, estimate_compile, estimate_run

    b = GraphBuilder("g")
    b.add(Input(name="x", shape=(1, 100, 100)))
    b.add(Conv2d(name="conv", input_shape=(1, 100, 100), out_channels=8, kernel=(3, 3),
                 weight=b.const("conv.weight", np.ones((8, 1, 3, 3)))), "x")
    b.add(IF(name="h", shape=(8, 98, 98), v_threshold=1.0), "conv")
    b.add(Dense(name="fc", in_features=8 * 98 * 98, out_features=10,
                weight=Ref("fc.weight")), "h")
    b.constants["fc.weight"] = np.zeros((1, 1))  # size is read from the node, not the constant
    b.add(IF(name="o", shape=(10,), v_threshold=1.0), "fc")
    b.add(Output(name="y", shape=(10,)), "o")
    g = b.build()
    e = estimate_compile(g)
    neurons = 8 * 98 * 98 + 10
    assert e.parts["conv synapses"] == 8 * 98 * 98 * 9 * 24 * 4
    assert e.parts["fc synapses"] == 10 * 8 * 98 * 98 * 8 * 4
    assert e.parts["mapping tables"] == neurons * 128
    r1, r2 = estimate_run(g, 1, 100), estimate_run(g, 4, 200)
    assert r1.parts["neuron state"] == neurons * (STATE_BYTES_PER_NEURON + 8)
    assert r2.parts["neuron state"] == 4 * r1.parts["neuron state"]
    assert (r1.parts["input spikes"], r2.parts["input spikes"]) == (10**6, 8 * 10**6)
    assert r2.parts["output spikes"] == 4 * 200 * 10


def test_run_guard_message():
    from nmc.resources import check_run

    g = nmc_models_graph("loihi_native")
    with pytest.raises(ResourceError, match=r"^net: emulating 1000000 sample\(s\) x 1000 ticks "
                                            r"needs about [0-9.]+ GB \(limit 1 GB\): "
                                            r"input spikes [0-9.]+ GB, .*; use a smaller "
                                            r"--batch-size, fewer --ticks or --limit, or raise "
                                            r"--max-memory"):
        check_run(g, 10**6, 1000, where="net", limit=10**9)
    assert check_run(g, 1, 10, where="net", limit=10**9).total < 10**4


def nmc_models_graph(name: str):
    from nmc.frontends import load_model

    return load_model(MODELS / name / "model.json")


def test_run_refuses_forged_input_arrays(tmp_path: Path):
    import zipfile

    p = tmp_path / "inputs.npz"
    with zipfile.ZipFile(p, "w") as z, z.open("spikes.npy", "w") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "|u1", "fortran_order": False, "shape": (10**5, 10**4, 10**4)})
    r = invoke("run", str(MODELS / "loihi_native" / "model.json"), "-t", "loihi", "--input",
               str(p))
    assert (r.exit_code, r.stdout) == (1, "")
    assert r.stderr == (
        f"Error: {p}: array 'spikes': the header declares shape [100000, 10000, 10000] uint8 "
        "(10 TB) but the file holds only 0 bytes of data; the file is truncated or damaged: "
        "save it again\n")


def test_bad_max_memory_is_a_usage_error():
    r = invoke("check", "--max-memory", "lots", str(MODELS / "nir_lif"))
    assert r.exit_code == 2
    assert r.stderr.splitlines()[-1] == (
        "Error: Invalid value for '--max-memory': 'lots' is not a size; write a number of bytes "
        "with an optional unit, e.g. 8G, 512M, 2GiB or 1e9")


# ==========================================================================================
# Atomic outputs: a failure or Ctrl-C part-way leaves the old file (or none), never half a file
# ==========================================================================================
class Boom(Exception):
    pass


FAILURES = [Boom, KeyboardInterrupt]


def _listing(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("exc", FAILURES)
@pytest.mark.parametrize("existing", [False, True])
def test_fileio_atomic_open_and_path(tmp_path: Path, exc, existing: bool):
    from nmc.fileio import atomic_open, atomic_path

    target = tmp_path / "image.nmb"
    if existing:
        target.write_bytes(b"old image")
    before = _listing(tmp_path)
    with pytest.raises(exc), atomic_open(target, "wb") as f:
        f.write(b"half of the new ima")
        raise exc()
    assert _listing(tmp_path) == before
    with pytest.raises(exc), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise exc()
    assert _listing(tmp_path) == before


@pytest.mark.parametrize("exc", FAILURES)
def test_fileio_write_helpers_fail_after_the_data(tmp_path: Path, monkeypatch, exc):
    """The failure comes after every byte was written (in fsync, before the rename)."""
    import nmc.fileio as fileio

    target = tmp_path / "report.json"
    target.write_text("old")

    def fail(fd):
        raise exc()

    monkeypatch.setattr(fileio.os, "fsync", fail)
    for write in (lambda: fileio.atomic_write_text(target, "new" * 1000),
                  lambda: fileio.atomic_write_bytes(target, b"new" * 1000)):
        with pytest.raises(exc):
            write()
        assert _listing(tmp_path) == {"report.json": b"old"}


@pytest.mark.parametrize("exc", FAILURES)
def test_saved_model_json_is_atomic(tmp_path: Path, monkeypatch, exc):
    """save_model_json writes the arrays, then the model: a failure in the middle of the arrays
    leaves both old files as they were."""
    from nmc.frontends import load_model
    from nmc.frontends.model_json import save_model_json

    graph = load_model(MODELS / "mlp_recurrent" / "model.json")
    save_model_json(graph, tmp_path)
    before = _listing(tmp_path)
    assert set(before) == {"model.json", "weights.npz"}
    real_savez = np.savez

    def half_then_fail(f, **arrays):
        real_savez(f, **dict(list(arrays.items())[:1]))  # part of the archive is out
        raise exc()

    monkeypatch.setattr(np, "savez", half_then_fail)
    with pytest.raises(exc):
        save_model_json(graph, tmp_path)
    assert _listing(tmp_path) == before


@pytest.mark.parametrize("exc", FAILURES)
def test_compiled_image_save_is_atomic(tmp_path: Path, monkeypatch, exc):
    import os

    from nmc.api import Compiled

    out = tmp_path / "net.nmb"
    out.write_bytes(b"old image")
    compiled = Compiled(graph=None, profile=None, image=b"\x01" * 100_000)

    def fail(fd):
        raise exc()

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(exc):
        compiled.save(out)
    assert _listing(tmp_path) == {"net.nmb": b"old image"}


@pytest.mark.parametrize("exc", FAILURES)
def test_ir_text_save_is_atomic(tmp_path: Path, monkeypatch, exc):
    """ir.text.save (the .nmir writer, in ir/): a failure while writing the sidecar, or after the
    text was written, leaves the old .nmir and .npz untouched and no temporary file."""
    import os

    import ir.text
    from ir.text import parse, save

    golden = Path(__file__).parent / "data" / "golden"
    graph = parse((golden / "large_constants.nmir").read_text(),
                  sidecar=golden / "large_constants.npz")
    out = tmp_path / "g.nmir"
    save(graph, out)
    before = _listing(tmp_path)
    assert set(before) == {"g.nmir", "g.npz"}
    real = ir.text._write_npz

    def half_then_fail(f, arrays):
        real(f, dict(list(arrays.items())[:1]))
        raise exc()

    monkeypatch.setattr(ir.text, "_write_npz", half_then_fail)
    with pytest.raises(exc):
        save(graph.replace(name="other"), out)
    assert _listing(tmp_path) == before
    monkeypatch.setattr(ir.text, "_write_npz", real)
    calls = []
    real_fsync = os.fsync

    def fail_second(fd):  # the sidecar goes through; the text fails after its bytes are out
        calls.append(fd)
        real_fsync(fd)
        if len(calls) == 2:
            raise exc()

    monkeypatch.setattr(os, "fsync", fail_second)
    with pytest.raises(exc):
        save(graph.replace(name="other"), out)
    after = _listing(tmp_path)
    assert set(after) == {"g.nmir", "g.npz"} and after["g.nmir"] == before["g.nmir"]


def test_run_estimate_is_checked_before_emulating(tmp_path: Path, monkeypatch):
    """`nmc run` compiles (small), then refuses a batch x ticks that does not fit the limit
    before the emulator allocates anything."""
    import nmc.dist

    def no_run(*a, **k):
        raise AssertionError("emulated despite the memory limit")

    monkeypatch.setattr(nmc.dist, "evaluate", no_run)
    p = tmp_path / "inputs.npz"
    np.savez_compressed(p, spikes=np.zeros((64, 2000, 3), np.uint8))  # 384 kB: it fits
    r = invoke("run", str(MODELS / "loihi_native" / "model.json"), "-t", "loihi", "--input",
               str(p), "--max-memory", "1M", "--ticks", "4000", "--batch-size", "64")
    assert (r.exit_code, r.stdout) == (1, "")
    assert re.fullmatch(
        r"Error: \S+model\.json: emulating 64 sample\(s\) x 4000 ticks needs about [0-9.]+ MB "
        r"\(limit 1 MB\): input spikes 768 kB, output spikes 512 kB, neuron state [0-9.]+ kB; "
        r"use a smaller --batch-size, fewer --ticks or --limit, or raise --max-memory \(or "
        r"NMC_MAX_MEMORY\) if the machine has the memory\n", r.stderr), r.stderr


# ==========================================================================================
# Corrupt chip images: the loader refuses them (EmulatorError), whatever the damage
# ==========================================================================================
_IMAGES: dict[str, bytes] = {}


def image_of(model: str) -> bytes:
    if model not in _IMAGES:
        import nmc.api

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _IMAGES[model] = nmc.api.compile(MODELS / model / "model.json", "loihi").image
    return _IMAGES[model]


def image_case(model: str, rnd: Any) -> str | None:
    """Damage a compiled image (bytes flipped, words overwritten, truncation), then load it and
    run a few ticks; the failure or None."""
    import emulator

    b = bytearray(image_of(model))
    for _ in range(rnd.randint(1, 4)):
        if not b:
            break
        i = rnd.randrange(len(b))
        op = rnd.randrange(3)
        if op == 0:
            b[i] = rnd.randrange(256)
        elif op == 1:
            b = b[:i]
        else:
            b[i:i + 4] = rnd.randrange(2**32).to_bytes(4, "little")

    def go() -> None:
        chip = emulator.load(bytes(b))
        n_in = int(sum(np.prod(s) for s in getattr(chip, "input_shapes", {}).values()) or 1)
        chip.run(np.zeros((1, 4, n_in), np.uint8))

    return failure_of(go)


def _image_strategy():
    from hypothesis import strategies as st

    return st.tuples(st.sampled_from(["loihi_native", "nir_lif"]),
                     st.randoms(use_true_random=True))


FORMATS = {"chip image (loihi)": (_image_strategy(), lambda case: image_case(*case))}
"""For bench/fuzz.py: format -> (strategy, case function returning a failure or None)."""


def test_fuzz_corrupt_images():
    from hypothesis import HealthCheck, given, settings

    try:
        from emulator import load  # noqa: F401
    except ImportError as e:
        pytest.skip(f"emulator.load is not there yet ({e})")

    @settings(max_examples=200, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(_image_strategy())
    def run(case) -> None:
        failure = image_case(*case)
        assert failure is None, failure

    run()
