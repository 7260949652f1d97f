"""Streaming-read bandwidth of this machine: the ceiling of any memory-bound numpy kernel.

    python -m bench.memory [--mib 1024] [--repeat 5]

A large array (much larger than the last-level cache) is summed with numpy, best of ``repeat``
runs; bandwidth = bytes read / seconds. Two kernels: ``float64`` sum (pairwise, vectorised: reads
8 bytes per element and is memory-bound on common x86 machines) and ``int8 -> int64`` row sum of a
(rows, 4096) int8 matrix along axis 0 (the emulator's and the numpy peer's kind of gather-sum).
The ceiling reported is the larger of the two. A synaptic event of an int8 weight gather reads
one byte, so ``events/s x 1 B / ceiling`` is the fraction of the machine's bandwidth a simulator
reaches.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from typing import Any

import numpy as np


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def stream_read(mib: int = 1024, repeat: int = 5) -> dict[str, Any]:
    """Bytes per second of streaming reads: ``{"float64_sum_gbs", "int8_rowsum_gbs",
    "ceiling_gbs", "array_mib"}`` (GB = 1e9 bytes)."""
    n = mib * (1 << 20) // 8
    a = np.ones(n, dtype=np.float64)  # touched once so every page is mapped before timing
    t = _best(a.sum, repeat)  # a bound method: `del a` below frees the array
    f64 = a.nbytes / t / 1e9
    del a
    m = np.ones((mib * (1 << 20) // 4096, 4096), dtype=np.int8)
    t = _best(functools.partial(m.sum, axis=0, dtype=np.int16), repeat)
    i8 = m.nbytes / t / 1e9
    del m
    return {"array_mib": mib, "float64_sum_gbs": round(f64, 2), "int8_rowsum_gbs": round(i8, 2),
            "ceiling_gbs": round(max(f64, i8), 2)}


def machine() -> dict[str, Any]:
    """CPU model, cores, memory, Python and numpy versions (for the results header)."""
    import os
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    mem = round(int(line.split()[1]) / (1 << 20), 1)
                    break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": mem,
            "python": platform.python_version(), "numpy": np.__version__,
            "platform": platform.platform()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args(argv)
    print(json.dumps({"machine": machine(), "stream": stream_read(a.mib, a.repeat)}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
