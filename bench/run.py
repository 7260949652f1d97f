"""The one entry point of the benchmarks: ``python -m bench [--quick] [--only NAME,...]``.

Runs, in this order (names for ``--only``):

* ``memory``: the machine's streaming-read bandwidth (:mod:`bench.memory`);
* ``emulator``: synaptic events/s of the emulator on the peers' workload expressed in each
  family's native kinds (loihi, truenorth, brainscales2), single sample and batches 1, 8, 64, fast
  and cycle modes, against the peers' plain numpy loop run in this process on the same input
  spikes; the raster digest of sample 0 must equal the numpy loop's (loihi) and the chip must
  equal the integer reference interpreter (the others); the fraction of the streaming-read
  ceiling (events/s x 1 byte per int8 weight / bandwidth); the cycle mode's packets/s on a
  64-core TrueNorth network;
* ``compile``: compile scaling from 1e3 to 1e6 neurons per family (:mod:`bench.compile_scaling`);
* ``load``: image load speed (:mod:`bench.load_speed`);
* ``mapping``: cores vs lower bound and spike-hops per strategy (``bench/mapping_quality.py``);
* ``peers``: the optional peer simulators, when their venvs exist (:mod:`bench.peers`).

Writes ``bench/results/results.json`` (everything) and ``bench/results/results.md`` (the tables)
and replaces the README's text between ``<!-- bench:start -->`` and ``<!-- bench:end -->`` with
results.md. With ``--only``, sections not run keep their previous values from results.json.
``--quick`` (smaller sizes, fewer steps and repeats) takes a few minutes on 2 cores; the full run
takes about half an hour.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
README = ROOT / "README.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"
SECTIONS = ("memory", "emulator", "compile", "load", "mapping", "dist", "peers")
BYTES_PER_EVENT = 1
"""Bytes a synaptic event must read at least: one int8 weight (the workload's weights are int8;
the emulator's fast mode keeps them as int8 rows when they fit)."""


def log(msg: str) -> None:
    print(msg, flush=True)


# ---- emulator throughput -----------------------------------------------------------------------
def bench_emulator(quick: bool, ceiling_gbs: float | None) -> dict[str, Any]:
    """Events/s of the emulator per family (fast and cycle mode; single sample and batches) and
    of the numpy loop on the peers' ``large`` workload (:func:`bench.emulator_throughput.measure`);
    digests / run_int agreement; ratios; fraction of the bandwidth ceiling; the cycle mode's
    packets/s on a 64-core TrueNorth network (:func:`bench.emulator_throughput.cycle_packets`)."""
    import bench.emulator_throughput as et

    t0 = time.perf_counter()
    res = et.measure(steps=200 if quick else 1000, batches=(1, 8) if quick else (1, 8, 64),
                     repeat=2 if quick else 3, cycle_steps=10 if quick else 20,
                     cycle_batches=(1,) if quick else (1, 8, 64),
                     cycle_limit_s=60 if quick else 200, log=log)
    for r in res["rows"]:
        if ceiling_gbs:
            r["fraction_of_bandwidth"] = round(r["events_per_s"] * BYTES_PER_EVENT
                                               / (ceiling_gbs * 1e9), 4)
    et.print_rows(res["rows"], log=log)
    res["cycle_packets"] = et.cycle_packets(steps=20 if quick else 50,
                                            batches=(1,) if quick else (1, 8), log=log)
    res["bytes_per_event"] = BYTES_PER_EVENT
    res["seconds"] = round(time.perf_counter() - t0, 1)
    return res


# ---- mapping quality ---------------------------------------------------------------------------
def bench_mapping(quick: bool) -> dict[str, Any]:
    """The output of bench/mapping_quality.py (its own bars are printed in its lines)."""
    cmd = [sys.executable, str(ROOT / "bench" / "mapping_quality.py")] + (["--quick"] if quick
                                                                           else [])
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    lines = [ln.rstrip() for ln in p.stdout.splitlines() if ln.strip()]
    for ln in lines:
        log("  " + ln)
    return {"ok": p.returncode == 0, "lines": lines, "seconds": round(time.perf_counter() - t0, 1),
            "error": None if p.returncode == 0 else (p.stderr.strip().splitlines() or [""])[-1]}


# ---- report ------------------------------------------------------------------------------------
def _fmt_s(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def _ratio(x: float) -> str:
    return f"{x:.2f}" if x >= 0.1 else f"{x:.2g}"


def markdown(res: dict[str, Any]) -> str:
    """results.md: the tables of every section that has results."""
    out: list[str] = []
    m = res.get("machine", {})
    out.append(f"Measured {res.get('date', '?')} with `python -m bench{' --quick' if res.get('quick') else ''}` "
               f"on {m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('memory_gib', '?')} GiB, "
               f"Python {m.get('python', '?')}, numpy {m.get('numpy', '?')}. "
               "Details and what limits each figure: [docs/performance.md](docs/performance.md).")
    mem = res.get("memory")
    if mem:
        out += ["", f"**Streaming read** (numpy sum over {mem['array_mib']} MiB): "
                f"{mem['ceiling_gbs']} GB/s (float64 sum {mem['float64_sum_gbs']} GB/s, int8 row "
                f"sum {mem['int8_rowsum_gbs']} GB/s)."]
    emu = res.get("emulator")
    if emu and emu.get("rows"):
        fams = emu.get("families", {})
        desc = "; ".join(f"{f} {d['cores']} cores, {d['neurons']:,} neurons, fan-out {d['fanout']}"
                         for f, d in fams.items())
        out += ["", f"**Emulator throughput**, {emu['workload']} in each family's native kinds "
                f"({desc}; `bench/emulator_throughput.py` says how); events = input spikes x "
                "fan-out; numpy loop = the peers' plain loop in the same process; same = sample "
                "0's raster digest equals the numpy loop's (loihi), or the chip equals run_int "
                "(truenorth, brainscales2):", "",
                "| family | mode | batch | threads | steps | events/s | x numpy | of bandwidth "
                "| same |", "|---|---|---|---|---|---|---|---|---|"]
        for r in emu["rows"]:
            frac = r.get("fraction_of_bandwidth")
            out.append(f"| {r.get('family', r.get('engine'))} | {r['mode']} | {r['batch']} | "
                       f"{r.get('threads', 1)} | {r['steps']} | {r['events_per_s']:.3g} | "
                       f"{_ratio(r['ratio_to_numpy'])} | "
                       f"{'-' if frac is None else f'{100 * frac:.1f}%'} | "
                       f"{'yes' if r.get('same', r.get('same_raster')) else 'NO'} |")
        cp = emu.get("cycle_packets")
        if cp and cp.get("rows"):
            parts = [f"batch {r['batch']}: {r['cycle_packets_per_s']:.3g} packets/s "
                     f"({r['packets_per_tick']:.0f} packets per tick and sample; fast mode "
                     f"{r['fast_packets_per_s']:.3g}; same spikes: "
                     f"{'yes' if r['same_spikes'] else 'NO'})" for r in cp["rows"]]
            out.append(f"\nCycle mode on a {cp['cores']}-core TrueNorth network ({cp['network']}): "
                       + "; ".join(parts) + ".")
    comp = res.get("compile")
    if comp and comp.get("rows"):
        out += ["", "**Compile scaling** (layered 256 x 256 blocks; per-pass seconds; peak RSS "
                "of the compiling process; loihi from float, the others from native graphs):", "",
                "| family | neurons | synapses | cores | legalize+quantize | legalize_family | "
                "partition | place | route | verify | image write | total s | peak MiB | image MB |",
                "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in comp["rows"]:
            if not r.get("ok"):
                out.append(f"| {r['family']} | {r['blocks']} blocks | FAILED: {r.get('error', '')} "
                           "| | | | | | | | | | | |")
                continue
            p = r["passes"]
            lq = p.get("legalize", 0) + p.get("quantize", 0)
            img = "-" if r.get("image_bytes") is None else f"{r['image_bytes'] / 1e6:.1f}"
            out.append(f"| {r['family']} | {r['neurons']:,} | {r['synapses']:,} | {r['cores']} | "
                       f"{lq:.2f} | {_fmt_s(p.get('legalize_family'))} | "
                       f"{_fmt_s(p.get('partition'))} | {_fmt_s(p.get('place'))} | "
                       f"{_fmt_s(p.get('route'))} | {_fmt_s(p.get('verify'))} | "
                       f"{_fmt_s(p.get('write_image'))} | {r['compile_s']:.2f} | "
                       f"{r['peak_rss_mib']:.0f} | {img} |")
        t = comp.get("targets", {})
        sl = ", ".join(f"{f} {s}" for f, s in comp.get("slopes", {}).items() if s is not None)
        out.append(f"\nLog-log slope of compile time vs synapses (points >= 1e6 synapses): {sl} "
                   f"(target <= {t.get('slope')}).")
        fc = comp.get("full_chip", {})
        if fc:
            out.append("Full TrueNorth-chip size (1,048,576 neurons, 268,435,456 synapses): "
                       + "; ".join(f"{f} {v['compile_s']:.1f} s, {v['peak_rss_mib'] / 1024:.2f} GiB"
                                   for f, v in fc.items())
                       + f" (targets < {t.get('full_chip_seconds'):.0f} s, "
                         f"< {t.get('full_chip_gib'):.0f} GiB).")
        for fam in sorted({r["family"] for r in comp["rows"]}):
            noted = [r for r in comp["rows"] if r["family"] == fam and r.get("image_note")]
            if noted:
                out.append(f"{fam}: no image from {min(r['neurons'] for r in noted):,} neurons on "
                           f"(the compile itself ran): {noted[0]['image_note']}.")
        for fam in sorted({r["family"] for r in comp["rows"]} - set(fc)):
            big = max((r for r in comp["rows"] if r["family"] == fam and r.get("ok")),
                      key=lambda r: r["synapses"], default=None)
            if big is not None:
                out.append(f"{fam}: not run at full-chip size in this run (largest point "
                           f"{big['neurons']:,} neurons, {big['compile_s']:.1f} s); "
                           f"`python -m bench.compile_scaling --one {fam} --blocks 4096` runs it.")
    ld = res.get("load")
    if ld and "mb_per_s" in ld:
        hs = ", ".join(f"`{h['where']}` {h['own_s']:.2f} s" for h in ld.get("hot_spots", [])[:3])
        out += ["", f"**Image load**: `emulator.load` of a {ld['image_mb']} MB image "
                f"({ld['cores']} cores): {ld['load_s']:.2f} s = **{ld['mb_per_s']} MB/s** "
                f"(target >= {ld['target_mb_per_s']:.0f} MB/s). Top own time: {hs}."]
    mp = res.get("mapping")
    if mp and mp.get("lines"):
        out += ["", "**Mapping quality** (`bench/mapping_quality.py`):", "", "```"]
        out += mp["lines"]
        out += ["```"]
    ds = res.get("dist")
    if ds and ds.get("rows"):
        from bench import dist_scaling

        out += dist_scaling.markdown(ds)
    pe = res.get("peers")
    if pe is not None:
        if pe.get("results"):
            out += ["", "**Peers** (their own venvs, large workload):", "",
                    "| peer | mode | events/s | same raster as numpy |", "|---|---|---|---|"]
            dig = (res.get("emulator") or {}).get("digest_numpy")
            for r in pe["results"]:
                if not r.get("ok"):
                    out.append(f"| {r['peer']} | FAILED: {r.get('error', '')} | | |")
                else:
                    same = "yes" if dig and r.get("raster_digest") == dig else "no"
                    out.append(f"| {r['peer_key']} | {r.get('mode', '')} | "
                               f"{r['events_per_s']:.3g} | {same} |")
        else:
            out += ["", f"**Peers**: no peer venvs found under `{pe.get('dir')}` (made by "
                    "`../shared/peers/setup_peers.sh`; not installed by the benchmark)."]
    return "\n".join(out) + "\n"


def update_readme(md: str, readme: Path = README) -> bool:
    """Replace the text between the bench markers of the README's Performance section with
    ``md``; False (README unchanged) when the markers are missing."""
    text = readme.read_text()
    i, j = text.find(START), text.find(END)
    if i < 0 or j < i:
        return False
    new = text[:i + len(START)] + "\n" + md.rstrip("\n") + "\n" + text[j:]
    if new != text:
        tmp = readme.with_name(f".{readme.name}.bench.tmp")
        tmp.write_text(new)
        os.replace(tmp, readme)
    return True


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes: a few minutes on 2 cores")
    ap.add_argument("--only", default=None, help=f"comma-separated: {','.join(SECTIONS)}")
    ap.add_argument("--no-readme", action="store_true", help="do not touch README.md")
    ap.add_argument("--report", action="store_true",
                    help="only rewrite results.md and the README from results.json")
    a = ap.parse_args(argv)
    if a.report:
        res = json.loads((RESULTS / "results.json").read_text())
        md = markdown(res)
        _atomic_text(RESULTS / "results.md", md)
        if not a.no_readme:
            update_readme(md)
        return 0
    only = SECTIONS if not a.only else tuple(s.strip() for s in a.only.split(",") if s.strip())
    bad = [s for s in only if s not in SECTIONS]
    if bad:
        ap.error(f"unknown section(s) {', '.join(bad)}; sections: {', '.join(SECTIONS)}")
    os.environ.setdefault("PYTHONHASHSEED", "0")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "results.json"
    res: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    from bench import memory

    res.update(date=time.strftime("%Y-%m-%d"), quick=a.quick, machine=memory.machine())
    t_all = time.perf_counter()
    timings = res.setdefault("section_seconds", {})
    for name in only:
        log(f"== {name}")
        t0 = time.perf_counter()
        try:
            if name == "memory":
                res["memory"] = memory.stream_read(512 if a.quick else 2048, 3 if a.quick else 5)
                log(f"  streaming read {res['memory']['ceiling_gbs']} GB/s")
            elif name == "emulator":
                ceiling = (res.get("memory") or {}).get("ceiling_gbs")
                res["emulator"] = bench_emulator(a.quick, ceiling)
            elif name == "compile":
                from bench import compile_scaling

                res["compile"] = compile_scaling.run(a.quick, log=log)
                log(f"  slopes {res['compile']['slopes']}")
            elif name == "load":
                from bench import load_speed

                res["load"] = load_speed.measure(64 if a.quick else 256, 2 if a.quick else 3)
                log(f"  load {res['load']['mb_per_s']} MB/s of a {res['load']['image_mb']} MB image")
            elif name == "mapping":
                res["mapping"] = bench_mapping(a.quick)
            elif name == "dist":
                from bench import dist_scaling

                res["dist"] = dist_scaling.run(360 if a.quick else 1440, log=log)
            elif name == "peers":
                from bench import peers

                res["peers"] = peers.run("large", 200 if a.quick else 1000)
                log(f"  peers found: {res['peers']['found'] or 'none'}")
        except Exception as e:  # a failing section is reported, the others still run
            import traceback

            traceback.print_exc()
            res[name] = {"error": f"{type(e).__name__}: {e}"}
        timings[name] = round(time.perf_counter() - t0, 1)
        _atomic_text(path, json.dumps(res, indent=1, default=str) + "\n")  # kept if stopped
    res["total_seconds"] = round(time.perf_counter() - t_all, 1)
    _atomic_text(path, json.dumps(res, indent=1, default=str) + "\n")
    md = markdown(res)
    _atomic_text(RESULTS / "results.md", md)
    log(f"wrote {path} and {RESULTS / 'results.md'} ({res['total_seconds']} s)")
    if not a.no_readme:
        log("README.md Performance section updated" if update_readme(md)
            else "README.md has no bench markers; not updated")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
