"""Samples per second of a chip evaluation in process, on 1 and on 2 Dask workers (this machine).

Workload: the bundled digits MLP (examples/ann_conversion/mlp) compiled for ``loihi``, its 360 held
test samples repeated to ``n`` samples, evaluated in batches by :func:`nmc.dist.evaluate`.
``python -m bench.dist_scaling [--n 1440]`` prints a table.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "examples" / "ann_conversion" / "mlp"


def run(n: int = 1440, log=print) -> dict:
    import nmc
    from nmc.dist import evaluate

    z = np.load(MODEL / "test_inputs.npz")
    x = np.concatenate([z["spikes"]] * (n // len(z["spikes"]) + 1))[:n]
    compiled = nmc.compile(MODEL / "model.json", "loihi")
    rows = []
    ref = None
    for label, workers in (("in process", None), ("1 worker", 1), ("2 workers", 2)):
        t0 = time.perf_counter()
        ev = evaluate(compiled.image, x, batch_size=64, workers=workers)
        wall = time.perf_counter() - t0  # includes starting the local cluster
        out = ev.outputs["y"] if "y" in ev.outputs else next(iter(ev.outputs.values()))
        same = True if ref is None else bool(np.array_equal(ref, out))
        ref = out if ref is None else ref
        rows.append({"mode": label, "samples": n, "samples_per_s": round(n / ev.seconds, 1),
                     "wall_s_with_startup": round(wall, 2), "identical_to_in_process": same})
        log(f"  {label:11s} {n / ev.seconds:8.1f} samples/s (wall {wall:.1f} s incl. cluster start)")
    return {"model": str(MODEL.relative_to(ROOT)), "image_bytes": len(compiled.image),
            "rows": rows}


def markdown(res: dict) -> list[str]:
    out = ["", f"**Scale-out** (`bench/dist_scaling.py`, `{res['model']}` on loihi, "
           f"{res['rows'][0]['samples']} samples, batches of 64; image {res['image_bytes']} bytes "
           "shipped once per worker):", "",
           "| mode | samples/s | wall s incl. cluster start | same outputs |", "|---|---|---|---|"]
    for r in res["rows"]:
        out.append(f"| {r['mode']} | {r['samples_per_s']} | {r['wall_s_with_startup']} | "
                   f"{'yes' if r['identical_to_in_process'] else 'NO'} |")
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1440)
    print(run(ap.parse_args().n))
