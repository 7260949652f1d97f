"""Evaluate a chip image over many samples, in process or on a Dask cluster (extra ``nmc[dist]``).

What travels: the image *bytes* go to every worker once (scattered, broadcast) and each worker loads
them once into an emulator chip, cached by the image's SHA-256; after that a task ships only its
batch of input spikes and brings back that batch's output spikes and counters. No Python object of
the compiler crosses the wire, so a worker needs only ``numpy`` and the ``emulator`` package.

Batches run in the emulator's batched fast mode. Results are put back in sample order. When a worker
dies, Dask's scheduler re-runs its unfinished batches on the others (``retries`` more times if a
batch keeps failing); a batch that raises is split into single samples, and a sample that fails on
its own is reported with its index (:class:`SampleFailure`), never dropped silently.

Without ``workers`` or ``scheduler`` everything runs in this process and Dask is not imported.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ir.errors import NmcError

_CHIPS: dict[str, Any] = {}  # per process: image sha256 -> loaded chip


def _chip_for(image: bytes):
    key = hashlib.sha256(image).hexdigest()
    chip = _CHIPS.get(key)
    if chip is None:
        import emulator

        chip = _CHIPS[key] = emulator.load(image)
    return chip


def run_batch(image: bytes, x: np.ndarray, options: dict[str, Any]) -> dict[str, Any]:
    """Run one batch on the (cached) chip of ``image``; returns plain arrays and stats.

    This is the task a worker executes. ``options`` are the emulator's run options; the private
    option ``_sleep_s`` slows a batch down (used by the fault-tolerance test)."""
    opts = dict(options)
    sleep = opts.pop("_sleep_s", 0.0)
    if sleep:
        time.sleep(sleep)
    res = _chip_for(image).run(x, **opts)
    return {"outputs": {k: np.asarray(v) for k, v in res.outputs.items()},
            "stats": dict(res.stats)}


@dataclass
class SampleFailure:
    """A sample whose run raised, with the message."""

    index: int
    error: str


@dataclass
class Evaluation:
    """Outputs per port (B, T, n) in sample order, merged counters, failures, throughput."""

    outputs: dict[str, np.ndarray]
    stats: dict[str, Any]
    failures: list[SampleFailure] = field(default_factory=list)
    samples: int = 0
    seconds: float = 0.0
    workers: int = 0

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else float("nan")

    def accuracy(self, labels: np.ndarray, port: str | None = None) -> float:
        """Argmax-of-counts accuracy over the samples that ran."""
        out = self.outputs[port] if port else next(iter(self.outputs.values()))
        pred = out.sum(axis=1).argmax(axis=-1)
        ok = np.ones(len(pred), bool)
        for f in self.failures:
            ok[f.index] = False
        return float((pred[ok] == np.asarray(labels)[ok]).mean())


def merge_stats(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Add counters and energies of several batches; keep per-run constants from the first.

    Numbers under ``counters`` and ``energy`` (recursively) and the top-level ``batch`` are summed;
    everything else is taken from the first batch.
    """
    if not parts:
        return {}

    def add(a: Any, b: Any) -> Any:
        if isinstance(a, dict) and isinstance(b, dict):
            return {k: add(a[k], b[k]) if k in b else a[k] for k in a}
        if isinstance(a, bool) or isinstance(b, bool):
            return a
        if isinstance(a, int | float) and isinstance(b, int | float):
            return a + b
        if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            return [add(x, y) for x, y in zip(a, b, strict=True)]
        return a

    out = dict(parts[0])
    for p in parts[1:]:
        for k in ("counters", "energy", "batch"):
            if k in out and k in p:
                out[k] = add(out[k], p[k])
    energy = out.get("energy")
    if isinstance(energy, dict) and "per_sample_joules" in energy and out.get("batch"):
        # a per-sample figure is an average, not a sum: recompute it from the merged total
        total = energy.get("total_joules", energy.get("total_j"))
        if total is not None:
            out["energy"] = {**energy, "per_sample_joules": total / out["batch"]}
    return out


def _batches(n: int, size: int) -> list[tuple[int, int]]:
    return [(s, min(n, s + size)) for s in range(0, n, size)]


def evaluate(
    image: bytes,
    inputs: np.ndarray,
    *,
    batch_size: int = 64,
    workers: int | None = None,
    scheduler: str | None = None,
    run_options: dict[str, Any] | None = None,
    retries: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> Evaluation:
    """Run ``inputs`` (B, T, N) through the chip of ``image`` in batches of ``batch_size``.

    ``workers``: start a local Dask cluster of that many worker processes; ``scheduler``: connect
    to an existing one (``tcp://host:port``); neither: run here. ``progress(done, total)`` is called
    as samples finish.
    """
    x = np.asarray(inputs)
    if x.ndim == 2:
        x = x[None]
    if x.ndim < 3:
        raise NmcError(f"inputs of shape {list(x.shape)}: expected (batch, steps, neurons)")
    if batch_size < 1:
        raise NmcError(f"batch size {batch_size} must be >= 1")
    opts = dict(run_options or {})
    spans = _batches(x.shape[0], batch_size)
    t0 = time.perf_counter()
    if workers is None and scheduler is None:
        results, failures = _run_local(image, x, spans, opts, progress)
        nworkers = 0
    else:
        results, failures, nworkers = _run_dask(image, x, spans, opts, workers, scheduler, retries,
                                                progress)
    seconds = time.perf_counter() - t0
    outputs, stats = _assemble(x.shape[0], results)
    return Evaluation(outputs=outputs, stats=stats, failures=sorted(failures, key=lambda f: f.index),
                      samples=int(x.shape[0]), seconds=seconds, workers=nworkers)


def _assemble(n: int, results: dict[tuple[int, int], dict]) -> tuple[dict, dict]:
    """Put batch results back in sample order (missing samples stay zero)."""
    if not results:
        return {}, {}
    first = next(iter(results.values()))
    outputs = {k: np.zeros((n, *v.shape[1:]), dtype=v.dtype) for k, v in first["outputs"].items()}
    for (s, e), r in sorted(results.items()):
        for k, v in r["outputs"].items():
            outputs[k][s:e] = v
    stats = merge_stats([r["stats"] for _, r in sorted(results.items())])
    return outputs, stats


def _run_local(image, x, spans, opts, progress):
    results: dict[tuple[int, int], dict] = {}
    failures: list[SampleFailure] = []
    done = 0
    for s, e in spans:
        try:
            results[(s, e)] = run_batch(image, x[s:e], opts)
        except Exception:  # noqa: BLE001 - isolate the failing samples below
            for i in range(s, e):
                try:
                    results[(i, i + 1)] = run_batch(image, x[i:i + 1], opts)
                except Exception as err:  # noqa: BLE001
                    failures.append(SampleFailure(i, f"{type(err).__name__}: {err}"))
        done += e - s
        if progress:
            progress(done, x.shape[0])
    return results, failures


def _run_dask(image, x, spans, opts, workers, scheduler, retries, progress):
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise NmcError("--workers/--scheduler need Dask: pip install 'nmc[dist]'") from None
    cluster = None
    if scheduler is None:
        if workers < 1:
            raise NmcError(f"--workers {workers} must be >= 1")
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, host="127.0.0.1")
        client = Client(cluster)
    else:
        try:
            client = Client(scheduler, timeout=10)
        except OSError as e:
            raise NmcError(f"cannot reach the Dask scheduler at {scheduler}: {e}") from e
    try:
        nworkers = len(client.scheduler_info().get("workers", {}))
        img = client.scatter(image, broadcast=True, hash=True)
        digest = hashlib.sha256(image).hexdigest()[:12]
        futs = {}
        for s, e in spans:
            f = client.submit(run_batch, img, x[s:e], opts, key=f"nmc-{digest}-{s}-{e}",
                              retries=retries, pure=False)
            futs[f] = (s, e)
        results: dict[tuple[int, int], dict] = {}
        failures: list[SampleFailure] = []
        done = 0
        for f in as_completed(list(futs)):
            s, e = futs[f]
            if f.status == "finished":
                results[(s, e)] = f.result()
            else:  # split into single samples to name the ones that fail
                singles = {client.submit(run_batch, img, x[i:i + 1], opts, retries=retries,
                                         pure=False): i for i in range(s, e)}
                for g in as_completed(list(singles)):
                    i = singles[g]
                    if g.status == "finished":
                        results[(i, i + 1)] = g.result()
                    else:
                        err = g.exception()
                        failures.append(SampleFailure(i, f"{type(err).__name__}: {err}"))
            done += e - s
            if progress:
                progress(done, x.shape[0])
        return results, failures, nworkers
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def default_batch_size(n_samples: int, workers: int | None) -> int:
    """Enough batches to keep every worker busy (about 4 per worker), at most 64 samples each."""
    w = max(1, workers or 1)
    return max(1, min(64, math.ceil(n_samples / (4 * w))))
