"""Emulator throughput per family on the peers' workload, against the peers' plain numpy loop.

Workload (``../shared/peers/common.py``): Bernoulli input spikes (5% per step) on 4096 inputs,
dense int8 weights in [-32, 32], integer Loihi CUBA LIF neurons (du = 1024, dv = 256, vth = 1000,
no bias, one-step synaptic delay), ``large`` = 4096 -> 4096, 1000 steps, seed 0. Every family
gets the same input spikes, expressed in its own native kinds and compiled by the real passes
(built-in profile; BrainScaleS-2 with ``chip.max_chips`` raised, as in ``compile_scaling``):

* ``loihi``: one ``LoihiDense`` 4096 -> 4096 (weights ``2 * w``, ``weight_exp = -1``, 8 bits,
  mixed sign, so the synapse output is the int8 sum exactly) into 4096 ``LoihiCompartment``
  (137 cores). Sample 0's raster digest must equal the numpy loop's.
* ``truenorth``: a neuron sees at most 256 axons, so the inputs form 16 groups of 256 and each
  group drives its own 4096 neurons through a dense ``TrueNorthCrossbar`` (every bit on, random
  axon types 0/1, per-neuron weights ``s0`` in 1..32 and ``s1`` in -32..-1, ``alpha`` =
  :data:`TN_ALPHA`, negative side held at 0): 16.8 M synapses and 4096 events per input spike as
  in the Loihi workload, 65,536 neurons on 256 cores.
* ``brainscales2``: a hemisphere has 256 rows and the chip 2**16 labels, so 16 groups of 256
  inputs (Dale's law: the first 128 of a group excite, the others inhibit; 6-bit weights 1..32)
  each drive their own 2048 neurons (``gain`` :data:`BSS2_GAIN`, threshold code
  :data:`BSS2_THRESHOLD`): 8.4 M synapses, 2048 events per input spike, 32,768 neurons on 128
  hemispheres.

TrueNorth and BrainScaleS-2 runs are checked against the integer reference interpreter
(``ir.interp_int.run_int``) on a short run of two samples, fast and cycle mode, spike for spike.

Events = input spikes x fan-out (4096, 4096, 2048), summed over the batch; the numpy loop's are
counted the same way. Fast mode: one sample given as ``(T, N)`` ("single") and batches; cycle
mode: fewer steps (it models every packet). Each fast timing is the best of ``--repeat`` runs,
the numpy loop and the emulator alternating so that load from other processes hits both; the
ratio is the emulator's events/s over the numpy loop's best in the same process.

Also: the cycle mode's packets/s on a 64-core TrueNorth network (``compile_scaling``'s block
network: 16 layers x 4 blocks of 256 neurons, block b of layer l+1 fed by block b of layer l
through a dense crossbar; one packet per spike that has a target), with the fast mode on the same
network for comparison.

    python3 bench/emulator_throughput.py [--family loihi,truenorth,brainscales2] [--steps 1000]
        [--batches 1,8,64] [--repeat 3] [--cycle-steps 20] [--cycle-batches 1,8] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT.parent / "shared" / "peers"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FAMILIES = ("loihi", "truenorth", "brainscales2")
GROUP = 256
"""Inputs per group (TrueNorth: axons of a core; BrainScaleS-2: rows of a hemisphere)."""
TN_ALPHA = 300
"""TrueNorth threshold of the benchmark neurons (about 9% of neurons spike per tick)."""
BSS2_OUT = 2048
"""BrainScaleS-2 neurons per input group (16 x 2048 neurons + 4096 inputs fit 2**16 labels)."""
BSS2_GAIN = 64
BSS2_THRESHOLD = 400
"""BrainScaleS-2 synaptic gain and threshold code of the benchmark (about 7% spike per tick)."""


def peers():
    """The peers' common.py and bench_numpy.py modules."""
    if not PEERS.is_dir():
        sys.exit(f"{PEERS} is missing: the benchmark needs ../shared/peers beside the repository")
    if str(PEERS) not in sys.path:
        sys.path.insert(0, str(PEERS))
    import bench_numpy
    import common

    return common, bench_numpy


# ---- the workload in each family's native kinds ------------------------------------------------
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


def truenorth_graph(n_in: int = 4096, n_out: int = 4096, seed: int = 0, group: int = GROUP):
    """``n_in / group`` inputs of ``group`` channels, each into its own ``n_out`` TrueNorth
    neurons through a dense crossbar (module doc)."""
    from ir.graph import GraphBuilder, Stage
    from ir.native.truenorth import TrueNorthCrossbar, TrueNorthNeuron
    from ir.nodes import Input, Output

    rng = np.random.default_rng(seed)
    b = GraphBuilder(f"truenorth_dense_{n_in}_{n_out}", stage=Stage.QUANTIZED,
                     attrs={"target": "truenorth"})
    for i in range(n_in // group):
        b.add(Input(name=f"x{i}", shape=(group,)))
        types = rng.integers(0, 2, group).astype(np.int8)
        b.add(TrueNorthCrossbar(name=f"w{i}", in_features=group, out_features=n_out,
                                crossbar=b.const(f"w{i}.crossbar", np.ones((n_out, group), bool)),
                                axon_types=b.const(f"w{i}.types", types)), f"x{i}")
        s0 = b.const(f"h{i}.s0", rng.integers(1, 33, n_out).astype(np.int16))
        s1 = b.const(f"h{i}.s1", -rng.integers(1, 33, n_out).astype(np.int16))
        b.add(TrueNorthNeuron(name=f"h{i}", shape=(n_out,), s0=s0, s1=s1, alpha=TN_ALPHA,
                              kappa=1), f"w{i}")
        b.add(Output(name=f"y{i}", shape=(n_out,)), f"h{i}")
    return b.build()


def brainscales2_graph(n_in: int = 4096, n_out: int = BSS2_OUT, seed: int = 0,
                       group: int = GROUP):
    """``n_in / group`` inputs of ``group`` channels, each into its own ``n_out`` BrainScaleS-2
    neurons, dense, the first half of each group excitatory, the second inhibitory."""
    from ir.graph import GraphBuilder, Stage
    from ir.native.brainscales2 import BSS2Neuron, BSS2Synapses
    from ir.nodes import Input, Output

    rng = np.random.default_rng(seed)
    b = GraphBuilder(f"brainscales2_dense_{n_in}_{n_out}", stage=Stage.QUANTIZED,
                     attrs={"target": "brainscales2"})
    for i in range(n_in // group):
        b.add(Input(name=f"x{i}", shape=(group,)))
        w = rng.integers(1, 33, (1, n_out, group)).astype(np.uint8)
        exc, inh = w.copy(), w
        exc[..., group // 2:] = 0
        inh[..., :group // 2] = 0
        b.add(BSS2Synapses(name=f"w{i}", in_features=group, out_features=n_out,
                           exc=b.const(f"w{i}.exc", exc), inh=b.const(f"w{i}.inh", inh)), f"x{i}")
        b.add(BSS2Neuron(name=f"h{i}", shape=(n_out,), v_leak=300, v_threshold=BSS2_THRESHOLD,
                         v_reset=300, c_mem=100, gain_exc=BSS2_GAIN, gain_inh=BSS2_GAIN),
              f"w{i}")
        b.add(Output(name=f"y{i}", shape=(n_out,)), f"h{i}")
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


@dataclass
class Workload:
    """One family's version of the workload, compiled, written and loaded."""

    family: str
    graph: Any  # the routed graph (what the image holds)
    chip: Any
    image_bytes: int
    fanout: int  # synapses per input channel
    n_in: int
    setup_s: dict

    def inputs(self, x: np.ndarray) -> Any:
        """The chip's inputs for spikes ``x`` (``(T, n_in)`` or ``(B, T, n_in)``)."""
        ports = self.chip.inputs
        if len(ports) == 1:
            return x
        w = ports[0].width
        return {p.name: x[..., k * w:(k + 1) * w] for k, p in enumerate(ports)}

    def outputs(self, res: Any) -> list[np.ndarray]:
        """The run's output spikes, port by port (``(B, T, n)`` or ``(T, n)`` arrays)."""
        return [np.asarray(res.outputs[p.name]) for p in self.chip.outputs]

    def events(self, x: np.ndarray) -> int:
        return int(np.count_nonzero(x)) * self.fanout


def profile_for(family: str, chips: int | None = None) -> Any:
    """The built-in profile, or a copy with ``chip.max_chips`` raised to ``chips``."""
    from nmc.targets import load_profile

    if chips is None:
        return load_profile(family)
    from bench.mapping_quality import profile_with

    return load_profile(profile_with(family, Path(tempfile.mkdtemp(prefix="nmc-bench-")),
                                     **{"chip.max_chips": chips}))


def workload(family: str, steps: int = 1000, seed: int = 0) -> Workload:
    """Build, compile (real passes), write and load ``family``'s version of the workload; the
    fast mode's tables are built by a two-tick run (cached on the chip)."""
    import emulator
    from nmc.backend.writer import write_image
    from nmc.passes.flow import compile_graph

    common, _ = peers()
    sizes, weights, _raster = common.make_workload("large", 1, seed)
    n_in = sizes[0]
    t0 = time.perf_counter()
    if family == "loihi":
        graph, fanout, prof = build_graph(sizes, weights, common.DU, common.DV, common.VTH), \
            sizes[1], profile_for("loihi")
    elif family == "truenorth":
        graph, fanout, prof = truenorth_graph(n_in, sizes[1], seed), sizes[1], \
            profile_for("truenorth")
    elif family == "brainscales2":
        n_hemi = n_in // GROUP * BSS2_OUT // 256
        graph, fanout, prof = brainscales2_graph(n_in, BSS2_OUT, seed), BSS2_OUT, \
            profile_for("brainscales2", n_hemi // 2 + 1)
    else:
        raise SystemExit(f"unknown family {family!r}; families: {', '.join(FAMILIES)}")
    t1 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        routed = compile_graph(graph, prof).graph
    t2 = time.perf_counter()
    image = write_image(routed, prof)
    t3 = time.perf_counter()
    chip = emulator.load(image)
    t4 = time.perf_counter()
    w = Workload(family, routed, chip, len(image), fanout, n_in, {})
    chip.run(w.inputs(np.zeros((2, n_in), bool)))  # the fast engine's tables
    t5 = time.perf_counter()
    w.setup_s = {"build": round(t1 - t0, 2), "compile": round(t2 - t1, 2),
                 "write": round(t3 - t2, 2), "load": round(t4 - t3, 2),
                 "tables": round(t5 - t4, 2)}
    return w


def check_reference(w: Workload, x: np.ndarray) -> bool:
    """Fast and cycle mode outputs equal ``run_int`` on the routed graph (spikes of output
    ``o`` at tick ``t + latency[o]`` equal the interpreter's at ``t``), for ``x`` (B, T, n_in)."""
    from ir.interp_int import run_int

    ins = w.inputs(x)
    ref = run_int(w.graph, ins)
    ok = True
    for mode in ("fast", "cycle"):
        res = w.chip.run(ins, mode=mode)
        for name, want in ref.outputs.items():
            want = np.asarray(want).reshape(x.shape[0], x.shape[1], -1)
            got = res.outputs[name]
            lat = res.latency.get(name, 0)
            ok &= bool(np.array_equal(want[:, :x.shape[1] - lat], got[:, lat:]))
    return ok


# ---- measurements ------------------------------------------------------------------------------
def measure(families=FAMILIES, steps: int = 1000, batches=(1, 8, 64), repeat: int = 3,
            cycle_steps: int = 20, cycle_batches=(1, 8), threads: int | None = None,
            cycle_limit_s: float = 200.0, check_steps: int = 12, log=print) -> dict[str, Any]:
    """Every family's fast and cycle rows plus the numpy loop's (module doc). Returns
    ``{"rows", "numpy", "families", "digest_numpy"}``; a row has family, mode, batch ("single"
    for a ``(T, N)`` input), steps, threads, seconds, events_per_s, ratio_to_numpy, same
    (raster digest equal to the numpy loop's for loihi; run_int agreement for the others)."""
    from emulator.runner import fast_threads

    common, bench_numpy = peers()
    sizes, weights, raster = common.make_workload("large", steps, 0)
    B_max = max(batches + tuple(cycle_batches), default=1)
    X = np.stack([raster] + [common.make_workload("large", steps, 1000 + k)[2]
                             for k in range(B_max - 1)])  # (B, T, 4096); sample 0: the peers'

    def np_events(x: np.ndarray, rec: list[np.ndarray]) -> int:
        return common.synaptic_events(sizes, [int(x.sum())] + [int(r.sum()) for r in rec])

    wl: dict[str, Workload] = {}
    info: dict[str, Any] = {}
    for fam in families:
        w = wl[fam] = workload(fam, steps)
        info[fam] = {"cores": len(w.chip.cores), "neurons": int(w.chip.n_neurons),
                     "synapses": int(w.chip.n_synapses), "image_bytes": w.image_bytes,
                     "fanout": w.fanout, "setup_s": w.setup_s}
        if fam != "loihi":
            info[fam]["matches_run_int"] = check_reference(w, X[:2, :check_steps])
        log(f"  {fam}: {info[fam]['cores']} cores, {info[fam]['neurons']} neurons, "
            f"{info[fam]['synapses']} synapses, setup {w.setup_s}"
            + (f", run_int agrees: {info[fam]['matches_run_int']}" if fam != "loihi" else ""))

    cases = [None, *batches]  # None: one sample as (T, N)
    best = {(f, b): np.inf for f in families for b in cases}
    same: dict[tuple, bool] = {}
    np_best, digest_np, np_rate = np.inf, None, None
    for _ in range(repeat):
        rec, dt = numpy_loop(bench_numpy, weights, raster)
        if dt < np_best:
            np_best = dt
            np_rate = np_events(raster, rec) / dt
        digest_np = common.raster_digest(rec)
        for fam in families:
            w = wl[fam]
            for b in cases:
                x = raster if b is None else X[:b]
                t0 = time.perf_counter()
                res = w.chip.run(w.inputs(x), mode="fast", threads=threads)
                best[fam, b] = min(best[fam, b], time.perf_counter() - t0)
                if fam == "loihi":
                    outs = w.outputs(res)
                    same[fam, b] = common.raster_digest(
                        [o if b is None else o[0] for o in outs]) == digest_np
                else:
                    same[fam, b] = info[fam]["matches_run_int"]
    rows = [dict(family="numpy loop (peers)", mode="-", batch=1, steps=steps, threads=1,
                 seconds=round(np_best, 4), events_per_s=np_rate, same=True)]
    for fam in families:
        w = wl[fam]
        for b in cases:
            x = raster if b is None else X[:b]
            rows.append(dict(family=fam, mode="fast", batch="single" if b is None else b,
                             steps=steps, threads=fast_threads(1 if b is None else b, threads),
                             seconds=round(best[fam, b], 4),
                             events_per_s=w.events(x) / best[fam, b], same=same[fam, b]))
    # cycle mode: fewer steps; loihi against the numpy loop's digest of those steps
    rec_c, _ = numpy_loop(bench_numpy, weights, raster[:cycle_steps])
    digest_c = common.raster_digest(rec_c)
    for fam in families:
        w = wl[fam]
        for b in [None, *cycle_batches]:
            x = raster[:cycle_steps] if b is None else X[:b, :cycle_steps]
            t0 = time.perf_counter()
            res = w.chip.run(w.inputs(x), mode="cycle")
            dt = time.perf_counter() - t0
            ok = (common.raster_digest([o if b is None else o[0] for o in w.outputs(res)])
                  == digest_c) if fam == "loihi" else info[fam]["matches_run_int"]
            rows.append(dict(family=fam, mode="cycle", batch="single" if b is None else b,
                             steps=cycle_steps, threads=1, seconds=round(dt, 4),
                             events_per_s=w.events(x) / dt, same=ok,
                             packets_per_s=res.stats["counters"]["packets"] / dt))
            if dt > cycle_limit_s:
                break  # a larger batch would take too long
    for r in rows:
        r["ratio_to_numpy"] = round(r["events_per_s"] / np_rate, 3)
        r["events_per_s"] = float(f"{r['events_per_s']:.4g}")
    return {"rows": rows, "families": info, "digest_numpy": digest_np,
            "numpy_events_per_s": float(f"{np_rate:.4g}"),
            "workload": f"peers 'large' {sizes}, 5% input, {steps} steps"}


def cycle_packets(steps: int = 50, batches=(1, 8), seed: int = 0, log=print) -> dict[str, Any]:
    """Cycle-mode packets/s (and fast mode on the same chip) on a 64-core TrueNorth network
    (``compile_scaling.block_network("truenorth", 64)``), 5% input spikes; both modes must give
    the same spikes (the image's overrun policy is ``stretch``)."""
    import emulator
    from bench.compile_scaling import block_network
    from nmc.backend.writer import write_image
    from nmc.passes.flow import compile_graph

    g = block_network("truenorth", 64, seed=seed)
    routed = compile_graph(g, "truenorth").graph
    chip = emulator.load(write_image(routed, "truenorth"))
    n_in = chip.inputs[0].width
    rng = np.random.default_rng(seed)
    X = rng.random((max(batches), steps, n_in)) < 0.05
    chip.run(X[0, :2])  # tables
    rows = []
    for b in batches:
        x = X[:b]
        out = {}
        for mode in ("cycle", "fast"):
            t0 = time.perf_counter()
            res = chip.run(x, mode=mode)
            dt = time.perf_counter() - t0
            c = res.stats["counters"]
            out[mode] = (res, dt, c)
        rc, dtc, cc = out["cycle"]
        rf, dtf, cf = out["fast"]
        same = all(np.array_equal(rc.outputs[k], rf.outputs[k]) for k in rc.outputs)
        rows.append(dict(batch=b, steps=steps, packets=cc["packets"],
                         packets_per_tick=round(cc["packets"] / (b * steps), 1),
                         cycle_s=round(dtc, 3), cycle_packets_per_s=float(f"{cc['packets'] / dtc:.4g}"),
                         fast_s=round(dtf, 3), fast_packets_per_s=float(f"{cf['packets'] / dtf:.4g}"),
                         cycle_sops_per_s=float(f"{cc['synaptic_ops'] / dtc:.4g}"),
                         overruns=cc["overruns"], same_spikes=same))
        log(f"  truenorth 64 cores, batch {b}: cycle {rows[-1]['cycle_packets_per_s']:.3e} "
            f"packets/s ({rows[-1]['packets_per_tick']} packets per tick and sample), fast "
            f"{rows[-1]['fast_packets_per_s']:.3e}; same spikes: {same}")
    return {"network": f"truenorth block network: {len(chip.cores)} cores, {chip.n_neurons} "
                       f"neurons, {chip.n_synapses} synapses, 5% input on {n_in} channels",
            "cores": len(chip.cores), "rows": rows}


def print_rows(rows: list[dict], log=print) -> None:
    for r in rows:
        extra = f"  {r['packets_per_s']:9.3e} packets/s" if r.get("packets_per_s") else ""
        log(f"  {r['family']:<18} {r['mode']:<5} batch {str(r['batch']):<6} threads "
            f"{r['threads']:<2} {r['seconds']:8.3f} s {r['events_per_s']:10.3e} events/s "
            f"{r['ratio_to_numpy']:8.3g}x numpy  same: {r['same']}{extra}")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--family", default=",".join(FAMILIES))
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--batches", default="1,8,64")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cycle-steps", type=int, default=20)
    ap.add_argument("--cycle-batches", default="1,8", help="empty: no cycle-mode rows")
    ap.add_argument("--threads", type=int, default=None,
                    help="fast-mode worker threads (default: the emulator's, "
                         "emulator.runner.fast_threads)")
    ap.add_argument("--no-packets", action="store_true",
                    help="skip the 64-core TrueNorth cycle-mode packets/s")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = ap.parse_args(argv)
    fams = tuple(f for f in args.family.split(",") if f)
    batches = tuple(int(b) for b in args.batches.split(",") if b)
    cbatches = tuple(int(b) for b in args.cycle_batches.split(",") if b)
    res = measure(fams, args.steps, batches, args.repeat, args.cycle_steps, cbatches,
                  args.threads)
    print(f"numpy loop (peers): {res['numpy_events_per_s']:.3e} events/s, digest "
          f"{res['digest_numpy']}")
    print_rows(res["rows"])
    if not args.no_packets:
        res["cycle_packets"] = cycle_packets()
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1, default=str) + "\n")
    if not all(r["same"] for r in res["rows"]):
        print("MISMATCH: a run differs from its reference (numpy loop digest or run_int)")
        sys.exit(1)
    return res


if __name__ == "__main__":
    main()
