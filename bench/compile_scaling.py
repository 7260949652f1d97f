"""Compile scaling: wall time per pass, peak memory and image size from 1e3 to ~1e6 neurons.

    python -m bench.compile_scaling [--quick] [--family loihi,truenorth,brainscales2]
    python -m bench.compile_scaling --one truenorth --blocks 4096     # one point, JSON on stdout

Workload (every family): ``layers`` x ``per_layer`` blocks of 256 neurons; block ``b`` of layer
``l+1`` listens to block ``b`` of layer ``l`` through a dense 256 x 256 connection (layer 0 to
one host input of 256). 4096 blocks = 1,048,576 neurons and 268,435,456 synapses: the size of a
full TrueNorth chip (4096 cores of 256 x 256 crossbars).

* ``loihi``: a *float* graph (Dense + LIF, normal weights), compiled by the whole default flow
  (legalize, quantize, legalize_family, partition, place, route) and written as an image.
* ``truenorth``: a *native* graph (TrueNorthCrossbar, every crossbar bit on, random axon types
  0/1, per-neuron weights s0 > 0 > s1): a TrueNorth neuron sees 4 weight levels through axon
  types, so a float 256-input signed layer cannot fit a 256-axon core; the flow starts at
  legalize_family. No image (the writer has a layout for loihi only so far).
* ``brainscales2``: a *native* graph (BSS2Synapses, excitatory 6-bit weights, one row per source
  so a block fills one 256-row hemisphere); flow from legalize_family; no image.

The built-in profiles hold 16 Loihi chips (2048 cores), 16 TrueNorth chips and one BrainScaleS-2
chip (2 hemispheres); the benchmark compiles against a copy of the profile whose
``chip.max_chips`` is raised to what the network needs (a design-space profile, everything else
unchanged), so the same network size runs on every family.

Each point runs in a fresh subprocess; peak memory is that process's high-water resident memory
(``VmHWM``; its whole life: imports, building the graph, compiling, writing the image). Passes are verified after each
run as in a user compile; ``verify`` is the time the verifier took (total minus the passes).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FAMILIES = ("loihi", "truenorth", "brainscales2")
BLOCK = 256
SIZES_FULL = (4, 16, 64, 256, 1024, 4096)
SIZES_QUICK = (4, 16, 64, 256)
MAX_BLOCKS: dict[str, int] = {}
"""Largest point per family in the full run (none is capped: every family compiles the full chip
in well under a minute since the Loihi flow's quantizer, mapping view and image writer work per
weight block; ``--one loihi --blocks 4096`` runs that point alone)."""
TARGETS = {"full_chip_seconds": 60.0, "full_chip_gib": 8.0, "slope": 1.15}
"""The bars: a full-chip (4096-block) compile under 60 s and 8 GiB; time ~ synapses^slope."""


def shape_of(blocks: int) -> tuple[int, int]:
    """(layers, blocks per layer) of a network of ``blocks`` blocks: 16 layers once there are
    16 blocks or more (a 16 x 256 full chip), else one block per layer."""
    layers = min(16, blocks)
    if blocks % layers:
        raise ValueError(f"{blocks} blocks do not split into {layers} layers")
    return layers, blocks // layers


def block_network(family: str, blocks: int, size: int = BLOCK, seed: int = 0):
    """The benchmark network of ``blocks`` blocks of ``size`` neurons for ``family`` (module doc)."""
    from ir.graph import GraphBuilder, Stage
    from ir.nodes import Input, Output

    layers, per_layer = shape_of(blocks)
    rng = np.random.default_rng(seed)
    native = family != "loihi"
    b = GraphBuilder(f"blocks{blocks}", stage=Stage.QUANTIZED if native else Stage.FLOAT,
                     attrs={"target": family} if native else {})
    b.add(Input(name="x", shape=(size,)))
    prev = ["x"] * per_layer
    for layer in range(layers):
        cur = []
        for k in range(per_layer):
            name = f"l{layer}b{k}"
            _add_block(b, family, name, prev[k], size, rng)
            cur.append(name)
        prev = cur
    for k in range(per_layer):
        b.add(Output(name=f"y{k}", shape=(size,)), prev[k])
    return b.build()


def _add_block(b, family: str, name: str, src: str, size: int, rng: np.random.Generator) -> None:
    if family == "loihi":
        from ir.nodes import LIF, Dense

        w = rng.standard_normal((size, size), dtype=np.float32) * np.float32(2.0 / size ** 0.5)
        b.add(Dense(name=f"c_{name}", in_features=size, out_features=size,
                    weight=b.const(f"c_{name}.w", w)), src)
        b.add(LIF(name=name, shape=(size,), tau_mem=0.02, v_threshold=1.0), f"c_{name}")
    elif family == "truenorth":
        from ir.native.truenorth import TrueNorthCrossbar, TrueNorthNeuron

        cb = np.ones((size, size), dtype=bool)
        types = rng.integers(0, 2, size=size).astype(np.int8)
        b.add(TrueNorthCrossbar(name=f"c_{name}", in_features=size, out_features=size,
                                crossbar=b.const(f"c_{name}.cb", cb),
                                axon_types=b.const(f"c_{name}.types", types)), src)
        s0 = b.const(f"{name}.s0", rng.integers(1, 5, size=size).astype(np.int16))
        s1 = b.const(f"{name}.s1", -rng.integers(1, 5, size=size).astype(np.int16))
        b.add(TrueNorthNeuron(name=name, shape=(size,), s0=s0, s1=s1, alpha=16, leak=0),
              f"c_{name}")
    elif family == "brainscales2":
        from ir.native.brainscales2 import BSS2Neuron, BSS2Synapses

        exc = rng.integers(0, 64, size=(1, size, size)).astype(np.uint8)
        b.add(BSS2Synapses(name=f"c_{name}", in_features=size, out_features=size,
                           exc=b.const(f"c_{name}.exc", exc)), src)
        b.add(BSS2Neuron(name=name, shape=(size,), v_leak=300, v_threshold=700, v_reset=300,
                         c_mem=100), f"c_{name}")
    else:
        raise ValueError(f"unknown family {family!r}; families: {', '.join(FAMILIES)}")


def chips_needed(family: str, blocks: int) -> int:
    """A generous chip count for the scaled profile: the blocks' cores over the cores per chip."""
    from nmc.targets import load_profile

    prof = load_profile(family)
    per_chip = int(prof.get("chip.mesh_x")) * int(prof.get("chip.mesh_y"))
    # Loihi keeps one dense 256 x 256 block of 8-bit weights per core (synapse memory).
    return max(int(prof.get("chip.max_chips")), math.ceil(2 * blocks / per_chip) + 1)


def scaled_profile(family: str, blocks: int, folder: Path) -> Path:
    """A copy of the built-in profile of ``family`` with ``chip.max_chips`` raised for ``blocks``."""
    from bench.mapping_quality import profile_with

    return profile_with(family, folder, **{"chip.max_chips": chips_needed(family, blocks)})


def peak_rss_mib() -> float:
    """This process's peak resident memory in MiB: ``VmHWM`` of /proc/self/status (the high-water
    mark of this process image; ``ru_maxrss`` is not used because Linux carries it over from the
    parent through fork and exec, so a child of a large parent reports the parent's peak)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def measure_one(family: str, blocks: int, verify: bool = True) -> dict[str, Any]:
    """Build and compile one network in this process; the figures of one point."""
    import warnings

    from nmc.passes.flow import compile_graph
    from nmc.targets import load_profile

    rss0 = peak_rss_mib()
    tmp = Path(tempfile.mkdtemp(prefix="nmc-bench-"))
    prof = load_profile(scaled_profile(family, blocks, tmp))
    t0 = time.perf_counter()
    g = block_network(family, blocks)
    build_s = time.perf_counter() - t0
    neurons = sum(n.size for n in g.by_category("neuron"))
    synapses = _synapses(g)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = compile_graph(g, prof, verify=verify)
    compile_s = time.perf_counter() - t0
    timings = {k: round(v, 4) for k, v in run.timings.items()}
    if verify:
        timings["verify"] = round(compile_s - sum(run.timings.values()), 4)
    image_bytes = image_note = None
    from emulator import format as F
    from ir.errors import CompileError

    if F.family_layout(prof.family) is not None:  # every family with an image layout
        from nmc.backend.writer import write_image

        t0 = time.perf_counter()
        try:
            image = write_image(run.graph, prof)
        except CompileError as e:  # e.g. BrainScaleS-2's 16-bit label space on big networks
            image_note = str(e)
        else:
            timings["write_image"] = round(time.perf_counter() - t0, 4)
            image_bytes = len(image)
            del image
    total = sum(v for v in timings.values())
    return dict(family=family, blocks=blocks, layers=shape_of(blocks)[0], neurons=int(neurons),
                synapses=int(synapses), cores=len(run.graph.mapping["cores"]),
                chips=len({c["chip"] for c in run.graph.mapping["cores"]}),
                start_stage=g.stage.value, build_s=round(build_s, 3), passes=timings,
                compile_s=round(total, 3), image_bytes=image_bytes, image_note=image_note,
                peak_rss_mib=peak_rss_mib(), import_rss_mib=rss0, profile=f"{family} (max_chips "
                f"{chips_needed(family, blocks)})")


def _synapses(g) -> int:
    n = 0
    for node in g.by_category("connection"):
        for f in ("weight", "values", "crossbar", "exc", "inh"):
            ref = getattr(node, f, None)
            if ref is not None and hasattr(ref, "name"):
                n += int(np.count_nonzero(g.const(ref)))
    return n


def run_point(family: str, blocks: int, timeout: float = 1800) -> dict[str, Any]:
    """:func:`measure_one` in a fresh subprocess (so peak memory is this point's alone)."""
    cmd = [sys.executable, "-m", "bench.compile_scaling", "--one", family, "--blocks", str(blocks)]
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return dict(family=family, blocks=blocks, ok=False, error=f"timeout after {timeout:.0f} s")
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode or not lines:
        err = (p.stderr.strip().splitlines() or ["(no output)"])[-1][:400]
        return dict(family=family, blocks=blocks, ok=False, error=err)
    out = json.loads(lines[-1])
    out["ok"] = True
    out["process_s"] = round(time.perf_counter() - t0, 2)
    return out


def slope(rows: list[dict[str, Any]], min_synapses: float = 1e6) -> float | None:
    """Least-squares slope of log(compile seconds) against log(synapses) over the points with at
    least ``min_synapses`` synapses (below that, fixed costs dominate and flatten the curve);
    without the image write when only some of the points wrote an image."""
    ok = [r for r in rows if r.get("ok") and r["synapses"] >= min_synapses]
    # Where some points wrote no image (BrainScaleS-2 beyond its label space), fit the passes
    # alone, so that every point measures the same work.
    same = all("write_image" in r["passes"] for r in ok)
    pts = [(r["synapses"], r["compile_s"] - (0 if same else r["passes"].get("write_image", 0)))
           for r in ok]
    pts = [p for p in pts if p[1] > 0]
    if len(pts) < 2:
        return None
    x, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
    return round(float(np.polyfit(x, y, 1)[0]), 3)


def run(quick: bool = False, families: tuple[str, ...] = FAMILIES,
        sizes: tuple[int, ...] | None = None, log=print) -> dict[str, Any]:
    """Every point of every family; returns ``{"rows", "slopes", "targets", "full_chip"}``."""
    sizes = sizes or (SIZES_QUICK if quick else SIZES_FULL)
    rows = []
    for fam in families:
        for blocks in sizes:
            if blocks > MAX_BLOCKS.get(fam, blocks):
                continue
            r = run_point(fam, blocks)
            rows.append(r)
            if r["ok"]:
                log(f"  compile {fam:<12} {r['neurons']:>9,} neurons {r['synapses']:>12,} syn "
                    f"{r['cores']:>5} cores  {r['compile_s']:7.2f} s  {r['peak_rss_mib']:8.0f} MiB")
            else:
                log(f"  compile {fam:<12} {blocks} blocks FAILED: {r['error']}")
    slopes = {fam: slope([r for r in rows if r["family"] == fam]) for fam in families}
    full = {r["family"]: r for r in rows if r.get("ok") and r["blocks"] == 4096}
    return {"rows": rows, "slopes": slopes, "targets": TARGETS,
            "full_chip": {f: {"compile_s": r["compile_s"], "peak_rss_mib": r["peak_rss_mib"]}
                          for f, r in full.items()}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help=f"sizes {SIZES_QUICK} blocks only")
    ap.add_argument("--family", default=",".join(FAMILIES))
    ap.add_argument("--sizes", default=None, help="comma-separated block counts")
    ap.add_argument("--one", default=None, help="measure one family in this process (JSON out)")
    ap.add_argument("--blocks", type=int, default=4096)
    ap.add_argument("--no-verify", action="store_true")
    a = ap.parse_args(argv)
    if a.one:
        print(json.dumps(measure_one(a.one, a.blocks, verify=not a.no_verify)))
        return 0
    sizes = tuple(int(s) for s in a.sizes.split(",")) if a.sizes else None
    res = run(a.quick, tuple(a.family.split(",")), sizes)
    print(json.dumps({"slopes": res["slopes"], "full_chip": res["full_chip"]}, indent=1))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
