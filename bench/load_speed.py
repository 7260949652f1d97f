"""Image load speed: MB/s of ``emulator.load`` on a large chip image (target >= 200 MB/s).

    python -m bench.load_speed [--blocks 256] [--repeat 3]

The image is the Loihi benchmark network of :mod:`bench.compile_scaling` (``blocks`` dense
256 x 256 blocks; 256 blocks = 65,536 neurons, 16.8 M synapses, about 19 MB), compiled and
written once. ``emulator.load(bytes)`` (every check the loader makes: CRC per section, field
ranges, decode into the chip's arrays) is timed best of ``repeat``; MB/s = image bytes / 1e6 /
seconds. One extra load under cProfile names the functions that take the time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGET_MBS = 200.0


def make_image(blocks: int) -> bytes:
    """The chip image of the Loihi block network of ``blocks`` blocks."""
    from bench.compile_scaling import block_network, scaled_profile
    from nmc.backend.writer import write_image
    from nmc.passes.flow import compile_graph
    from nmc.targets import load_profile

    prof = load_profile(scaled_profile("loihi", blocks, Path(tempfile.mkdtemp(prefix="nmc-"))))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        routed = compile_graph(block_network("loihi", blocks), prof).graph
    return write_image(routed, prof)


def hot_spots(fn, top: int = 4) -> list[dict[str, Any]]:
    """The ``top`` functions by own time of one call of ``fn`` (file:line(name), seconds)."""
    pr = cProfile.Profile()
    pr.enable()
    fn()
    pr.disable()
    st = pstats.Stats(pr, stream=io.StringIO())
    rows = []
    for (file, line, name), (_, _, tt, ct, _) in st.stats.items():
        short = Path(file).name if file != "~" else "builtin"
        rows.append({"where": f"{short}:{line}({name})", "own_s": round(tt, 4),
                     "cum_s": round(ct, 4)})
    rows.sort(key=lambda r: -r["own_s"])
    return rows[:top]


def measure(blocks: int = 256, repeat: int = 3) -> dict[str, Any]:
    """Compile, write and load the image; ``{"image_mb", "load_s", "mb_per_s", "target",
    "hot_spots", ...}``."""
    import emulator

    t0 = time.perf_counter()
    image = make_image(blocks)
    build_s = time.perf_counter() - t0
    best = float("inf")
    chip = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        chip = emulator.load(image)
        best = min(best, time.perf_counter() - t0)
    mb = len(image) / 1e6
    return {"blocks": blocks, "image_mb": round(mb, 2), "cores": len(chip.cores),
            "compile_and_write_s": round(build_s, 2), "load_s": round(best, 3),
            "mb_per_s": round(mb / best, 1), "target_mb_per_s": TARGET_MBS,
            "meets_target": mb / best >= TARGET_MBS,
            "hot_spots": hot_spots(lambda: emulator.load(image))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args(argv)
    print(json.dumps(measure(a.blocks, a.repeat), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
