"""Compile and evaluate variants of one model (targets x option values) and tabulate them.

A variant is one target profile plus one value for each swept setting. Settings are
``partition``, ``place``, ``seed`` and ``quantize.<field>`` for any field of
:class:`nmc.passes.quantize.QuantizeOptions` (e.g. ``quantize.weight_bits=4,6,8``).

With Dask workers each variant is one task (compile, then evaluate in batched fast mode on the
worker); the model file must be readable by the workers (true for a local cluster).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from ir.errors import NmcError

TOP_LEVEL = ("partition", "place", "seed")


def parse_settings(items: list[str]) -> dict[str, list[Any]]:
    """``["quantize.weight_bits=4,6", "partition=mincut"]`` -> {key: [values]} (numbers parsed)."""
    from nmc.passes.quantize import QuantizeOptions

    qfields = {f.name for f in fields(QuantizeOptions)} - {"calibration"}
    out: dict[str, list[Any]] = {}
    for item in items:
        if "=" not in item:
            raise NmcError(f"--set {item!r}: expected KEY=V1,V2,...")
        key, vals = item.split("=", 1)
        key = key.strip()
        if key.startswith("quantize."):
            if key[9:] not in qfields:
                raise NmcError(f"--set {key}: unknown quantize option; known: "
                               f"{', '.join('quantize.' + f for f in sorted(qfields))}")
        elif key not in TOP_LEVEL:
            raise NmcError(f"--set {key}: unknown setting; known: {', '.join(TOP_LEVEL)}, "
                           "quantize.<option>")
        out[key] = [_value(v.strip()) for v in vals.split(",") if v.strip()]
        if not out[key]:
            raise NmcError(f"--set {key}: no values")
    return out


def _value(s: str) -> Any:
    for cast in (int, float):
        try:
            return cast(s)
        except ValueError:
            pass
    return {"none": None, "true": True, "false": False}.get(s.lower(), s)


def variants(targets: list[str], settings: dict[str, list[Any]]) -> list[dict[str, Any]]:
    keys = list(settings)
    out = []
    for t in targets:
        for combo in itertools.product(*(settings[k] for k in keys)):
            out.append({"target": t, **dict(zip(keys, combo, strict=True))})
    return out


def compile_and_evaluate(model: str, variant: dict[str, Any], x: np.ndarray,
                         labels: np.ndarray | None, batch_size: int = 64) -> dict[str, Any]:
    """One row of the sweep table (runs in this process or as a Dask task)."""
    from nmc import api
    from nmc.dist import evaluate

    q = {k[9:]: v for k, v in variant.items() if k.startswith("quantize.")}
    top = {k: variant[k] for k in TOP_LEVEL if k in variant}
    row: dict[str, Any] = dict(variant)
    t0 = time.perf_counter()
    try:
        c = api.compile(model, variant["target"], options=q, **top)
    except NmcError as e:
        row.update(error=str(e).splitlines()[0])
        return row
    row["compile_s"] = round(time.perf_counter() - t0, 3)
    ev = evaluate(c.image, x, batch_size=batch_size)
    row["cores"] = c.utilization.get("cores_used")
    row["accuracy"] = None if labels is None else ev.accuracy(labels)
    e = ev.stats.get("energy", {}).get("total_j")
    row["energy_per_sample_j"] = None if e is None else e / max(1, x.shape[0])
    row["samples_per_s"] = round(ev.samples_per_s, 2)
    return row


def sweep(model: str | Path, targets: list[str], settings: dict[str, list[Any]], x: np.ndarray,
          labels: np.ndarray | None, *, workers: int | None = None,
          scheduler: str | None = None) -> list[dict[str, Any]]:
    """Every variant's row, in variant order."""
    vs = variants(targets, settings)
    model = str(model)
    if workers is None and scheduler is None:
        return [compile_and_evaluate(model, v, x, labels) for v in vs]
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise NmcError("--workers/--scheduler need Dask: pip install 'nmc[dist]'") from None
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, host="127.0.0.1")
    client = Client(scheduler or cluster)
    try:
        xs = client.scatter(x, broadcast=True)
        futs = [client.submit(compile_and_evaluate, model, v, xs, labels, pure=False, retries=2)
                for v in vs]
        return client.gather(futs)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def to_markdown(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table (columns in first-seen order)."""
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]

    def fmt(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"
