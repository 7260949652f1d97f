"""Emulator throughput on the peers' workload, against the peers' plain numpy loop.

Workload (``../shared/peers/common.py``): Bernoulli input spikes (5% per step), dense int8
weights in [-32, 32], integer Loihi CUBA LIF neurons (du = 1024, dv = 256, vth = 1000, no bias,
one-step synaptic delay), ``large`` = 4096 -> 4096, 1000 steps, seed 0. In Loihi native kinds the
weights are ``2 * w`` with ``weight_exp = -1`` (8 weight bits, mixed sign), so the synapse output
is the int8 sum exactly.

The script expresses the workload as a native graph, compiles it with the real passes for the
``loihi`` profile, writes the image, loads it, and runs it on the emulator in fast mode: one
sample, then batches of 8 and 64 (sample 0 is the peers' raster, the others other seeds). In the
same process it runs the peers' numpy loop (``bench_numpy.py``'s ``lif_step``), checks that the
raster digest of the emulator's sample 0 equals the numpy loop's, and prints events per second
(events = input spikes x fan-out, summed over the batch) and the ratio to the numpy loop. Each
timing is the best of ``--repeat`` runs, alternating numpy and emulator so that load from other
processes hits both.

    python3 bench/emulator_throughput.py [--size large] [--steps 1000] [--batches 1,8,64]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT.parent / "shared" / "peers"


def peers():
    """The peers' common.py and bench_numpy.py modules."""
    if not PEERS.is_dir():
        sys.exit(f"{PEERS} is missing: the benchmark needs ../shared/peers beside the repository")
    sys.path.insert(0, str(PEERS))
    import bench_numpy
    import common

    return common, bench_numpy


def build_graph(sizes, weights, du: int, dv: int, vth: int):
    """The workload as a quantized graph of Loihi native kinds (one layer per weight matrix)."""
    from ir.graph import GraphBuilder, Stage
    from ir.native.loihi import LoihiCompartment, LoihiDense
    from ir.nodes import Input, Output

    b = GraphBuilder(f"peers_{'_'.join(map(str, sizes))}", stage=Stage.QUANTIZED,
                     attrs={"target": "loihi"})
    src = b.add(Input(name="x", shape=(sizes[0],)))
    for k, w in enumerate(weights):
        n_post, n_pre = w.shape
        syn = b.add(LoihiDense(name=f"w{k + 1}", in_features=n_pre, out_features=n_post,
                               weight=b.const(f"w{k + 1}", 2 * w.astype(np.int64)), weight_exp=-1,
                               num_weight_bits=8, sign_mode="mixed"), src)
        src = b.add(LoihiCompartment(name=f"h{k + 1}", shape=(n_post,), du=du, dv=dv,
                                     vth_mant=vth), syn)
        b.add(Output(name=f"out{k + 1}", shape=(n_post,)), src)
    return b.build()


def numpy_loop(bench_numpy, weights, raster):
    """The peers' plain numpy loop (bench_numpy.main without argument parsing); returns the
    rasters and the run time."""
    steps = raster.shape[0]
    sizes = [raster.shape[1]] + [w.shape[0] for w in weights]
    WT = [np.ascontiguousarray(w.T) for w in weights]
    u = [np.zeros(n, np.int32) for n in sizes[1:]]
    v = [np.zeros(n, np.int32) for n in sizes[1:]]
    prev = [np.zeros(n, bool) for n in sizes[:-1]]
    rec = [np.zeros((steps, n), bool) for n in sizes[1:]]
    t0 = time.perf_counter()
    for t in range(steps):
        spikes = [raster[t]]
        for k in range(len(WT)):
            a_in = WT[k][prev[k]].sum(axis=0, dtype=np.int32)
            spikes.append(bench_numpy.lif_step(u[k], v[k], a_in))
            rec[k][t] = spikes[-1]
        prev = spikes[:-1]
    return rec, time.perf_counter() - t0


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="large")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batches", default="1,8,64")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--target", default="loihi")
    ap.add_argument("--threads", type=int, default=1,
                    help="worker threads of the emulator's gathers for batches >= 8")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = ap.parse_args(argv)
    common, bench_numpy = peers()
    sys.path.insert(0, str(ROOT))
    import emulator
    from nmc.backend.writer import write_image
    from nmc.passes.flow import compile_graph

    sizes, weights, raster = common.make_workload(args.size, args.steps, args.seed)
    t0 = time.perf_counter()
    graph = build_graph(sizes, weights, common.DU, common.DV, common.VTH)
    routed = compile_graph(graph, args.target).graph
    t1 = time.perf_counter()
    image = write_image(routed, args.target)
    t2 = time.perf_counter()
    chip = emulator.load(image)
    t3 = time.perf_counter()
    chip.run(raster[:2])  # builds the fast engine's tables (cached on the chip)
    t4 = time.perf_counter()
    print(f"workload {args.size} {sizes}, {args.steps} steps; target {args.target}: "
          f"{len(chip.cores)} cores, {chip.n_synapses} synapses, image {len(image)} bytes")
    print(f"compile {t1 - t0:.1f} s, write {t2 - t1:.1f} s, load {t3 - t2:.1f} s, "
          f"fast-mode tables {t4 - t3:.1f} s")

    batches = [int(b) for b in args.batches.split(",")]
    B_max = max(batches)
    inputs = [raster] + [common.make_workload(args.size, args.steps, args.seed + 1000 + k)[2]
                         for k in range(B_max - 1)]
    X = np.stack(inputs)  # (B, T, N)

    def events(x: np.ndarray, rec: list[np.ndarray]) -> int:
        counts = [int(x.sum())] + [int(r.sum()) for r in rec]
        return common.synaptic_events(sizes, counts)

    np_best = np.inf
    emu_best = {b: np.inf for b in batches}
    digest_np = digest_emu = None
    ev_np = 0
    ev_emu = {}
    for _ in range(args.repeat):
        rec, dt = numpy_loop(bench_numpy, weights, raster)
        np_best = min(np_best, dt)
        digest_np = common.raster_digest(rec)
        ev_np = events(raster, rec)
        for B in batches:
            t = time.perf_counter()
            res = chip.run(X[:B], mode="fast", threads=args.threads if B >= 8 else 1)
            dt = time.perf_counter() - t
            emu_best[B] = min(emu_best[B], dt)
            outs = [res.outputs[f"out{k + 1}"] for k in range(len(weights))]
            if B == batches[0] or digest_emu is None:
                digest_emu = common.raster_digest([o[0] for o in outs])
            ev_emu[B] = sum(events(X[b], [o[b] for o in outs]) for b in range(B))
    same = digest_np == digest_emu
    rate_np = ev_np / np_best
    result = {"workload": args.size, "sizes": sizes, "steps": args.steps, "target": args.target,
              "cores": len(chip.cores), "digest_numpy": digest_np, "digest_emulator": digest_emu,
              "same_raster": same, "numpy_events_per_s": rate_np, "numpy_seconds": np_best,
              "emulator": {}}
    print(f"numpy loop        {np_best:8.3f} s  {rate_np:10.3e} events/s   digest {digest_np}")
    for B in batches:
        rate = ev_emu[B] / emu_best[B]
        result["emulator"][B] = {"seconds": emu_best[B], "events_per_s": rate,
                                 "ratio_to_numpy": rate / rate_np}
        print(f"emulator batch {B:<3}{emu_best[B]:8.3f} s  {rate:10.3e} events/s   "
              f"{rate / rate_np:5.2f}x numpy")
    print(f"raster digest of sample 0 {'equals' if same else 'DIFFERS FROM'} the numpy loop's "
          f"({digest_emu})")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    if not same:
        sys.exit(1)
    return result


if __name__ == "__main__":
    main()
