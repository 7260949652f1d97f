"""Image load speed: MB/s of ``emulator.load`` on a large chip image (target >= 200 MB/s).

    python -m bench.load_speed [--blocks 256] [--repeat 5] [--families loihi,truenorth,brainscales2]

The headline image is the Loihi benchmark network of :mod:`bench.compile_scaling` (``blocks``
dense 256 x 256 blocks; 256 blocks = 65,536 neurons, 16.8 M synapses, about 19 MB), compiled and
written once. ``emulator.load(bytes)`` (every check the loader makes: CRC per section, field
ranges, decode into the chip's arrays) is timed best of ``repeat``; MB/s = image bytes / 1e6 /
seconds. One extra load under cProfile names the functions that take the time.

The other families load images of about the same size, from the same benchmark networks:
TrueNorth ``5 * blocks`` blocks (one 256 x 256 crossbar core each, every bit set: 84 M synapses
for 256), BrainScaleS-2 ``3 * blocks / 4`` blocks (one hemisphere of 6-bit synapses each). Their
figures are under ``families`` (the top-level keys are Loihi's).
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
FAMILIES = ("loihi", "truenorth", "brainscales2")


def family_blocks(family: str, blocks: int) -> int:
    """Blocks of ``family`` whose image is about as large as the Loihi image of ``blocks``
    (a multiple of 16 from 16 blocks on, as :func:`bench.compile_scaling.shape_of` needs)."""
    k = {"loihi": blocks, "truenorth": 5 * blocks, "brainscales2": 3 * blocks // 4}[family]
    return max(1, k // 16 * 16) if k >= 16 else k


def make_image(blocks: int, family: str = "loihi") -> bytes:
    """The chip image of the ``family`` block network of ``blocks`` blocks."""
    from bench.compile_scaling import block_network, scaled_profile
    from nmc.backend.writer import write_image
    from nmc.passes.flow import compile_graph
    from nmc.targets import load_profile

    prof = load_profile(scaled_profile(family, blocks, Path(tempfile.mkdtemp(prefix="nmc-"))))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        routed = compile_graph(block_network(family, blocks), prof).graph
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


def measure_one(family: str, blocks: int, repeat: int) -> dict[str, Any]:
    """Compile, write and load one family's image: ``{"image_mb", "load_s", "mb_per_s", ...}``."""
    import emulator

    t0 = time.perf_counter()
    image = make_image(blocks, family)
    build_s = time.perf_counter() - t0
    best = float("inf")
    cores, chip = 0, None
    for _ in range(max(1, repeat)):
        chip = None  # the previous chip is freed first (a TrueNorth chip holds GBs of synapses)
        t0 = time.perf_counter()
        chip = emulator.load(image)
        best = min(best, time.perf_counter() - t0)
        cores = len(chip.cores)
    del chip
    mb = len(image) / 1e6
    return {"family": family, "blocks": blocks, "image_mb": round(mb, 2), "cores": cores,
            "compile_and_write_s": round(build_s, 2), "load_s": round(best, 3),
            "mb_per_s": round(mb / best, 1), "target_mb_per_s": TARGET_MBS,
            "meets_target": mb / best >= TARGET_MBS,
            "hot_spots": hot_spots(lambda: emulator.load(image))}


def measure(blocks: int = 256, repeat: int = 5,
            families: tuple[str, ...] = FAMILIES) -> dict[str, Any]:
    """Loihi's figures (``{"image_mb", "load_s", "mb_per_s", "target_mb_per_s", "hot_spots",
    ...}``) plus ``families``: the same figures per family."""
    per = {f: measure_one(f, family_blocks(f, blocks), repeat) for f in families}
    head = dict(per.get("loihi") or next(iter(per.values())))
    head["families"] = {f: {k: v for k, v in r.items() if k != "family"} for f, r in per.items()}
    return head


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=256, help="Loihi blocks (the other families "
                    "scale to about the same image size)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--families", default=",".join(FAMILIES),
                    help="comma-separated: " + ", ".join(FAMILIES))
    a = ap.parse_args(argv)
    fams = tuple(f for f in a.families.split(",") if f)
    bad = [f for f in fams if f not in FAMILIES]
    if bad:
        ap.error(f"unknown family {bad[0]!r}; families: {', '.join(FAMILIES)}")
    print(json.dumps(measure(a.blocks, a.repeat, fams), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
