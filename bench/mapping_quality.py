"""Mapping quality and speed: the bars of docs/mapping.md, measured and printed.

    python3 bench/mapping_quality.py            # all three
    python3 bench/mapping_quality.py --quick    # skip the full TrueNorth chip

1. Dense layers (Loihi): cores used against the lower bound (bar: <= 1.1 x).
2. Layered, locally connected network of >= 64 cores: spike-hops per tick of mincut + annealed
   placement against contiguous + row-major at the same core count (bar: >= 30% fewer).
3. A network the size of a full TrueNorth chip (1,048,576 neurons on 4096 cores): the default
   flow from quantized to routed, timed pass by pass.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ir.graph import GraphBuilder, Stage  # noqa: E402
from ir.nodes import Input, Output  # noqa: E402
from nmc.passes import run_passes  # noqa: E402
from nmc.passes.utilization import (  # noqa: E402
    dense_quality,
    loihi_conv_network,
    loihi_dense_network,
    traffic_quality,
)
from nmc.targets import PROFILE_DIR, load_profile  # noqa: E402


def profile_with(base: str, folder: Path, **values) -> Path:
    """A copy of a built-in profile with some ``section.key`` values replaced."""
    import re

    section, out = None, []
    for line in (PROFILE_DIR / f"{base}.toml").read_text().splitlines():
        m = re.match(r"^\[(.+)\]$", line)
        section = m.group(1) if m else section
        km = re.match(r"^(\w+) = ", line)
        if km and f"{section}.{km.group(1)}" in values:
            line = f"{km.group(1)} = {values[f'{section}.{km.group(1)}']}"
        out.append(line)
    path = folder / f"{base}-bench.toml"
    path.write_text("\n".join(out).replace(f'name = "{base}"', f'name = "{base}-bench"') + "\n")
    return path


def truenorth_chip_network(layers: int = 16, blocks: int = 256, size: int = 256,
                           fan_in: int = 16, seed: int = 0):
    """``layers`` x ``blocks`` populations of ``size`` TrueNorth neurons (16 x 256 x 256 =
    1,048,576 neurons, one core each); block b of layer l+1 listens to ``fan_in`` random
    neurons of block b of layer l (one crossbar each), the first layer to one host input."""
    from ir.native.truenorth import TrueNorthCrossbar, TrueNorthNeuron

    rng = np.random.default_rng(seed)
    b = GraphBuilder("truenorth_chip", stage=Stage.QUANTIZED, attrs={"target": "truenorth"})
    b.add(Input(name="x", shape=(size,)))
    types = b.const("types", np.zeros(size, np.int8))
    prev = ["x"] * blocks
    for layer in range(layers):
        cur = []
        for k in range(blocks):
            cb = np.zeros((size, size), dtype=bool)
            cols = rng.integers(0, size, size=(size, fan_in))
            cb[np.arange(size)[:, None], cols] = True
            name = f"l{layer}b{k}"
            b.add(TrueNorthCrossbar(name=f"c_{name}", in_features=size, out_features=size,
                                    crossbar=b.const(f"c_{name}.cb", cb), axon_types=types),
                  prev[k])
            b.add(TrueNorthNeuron(name=name, shape=(size,), s0=1, alpha=3, leak=0), f"c_{name}")
            cur.append(name)
        prev = cur
    for k in range(blocks):
        b.add(Output(name=f"y{k}", shape=(size,)), prev[k])
    return b.build()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="skip the full TrueNorth chip")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())

    print("1. dense layers, contiguous partition")
    for prof, sizes in (("loihi", (784, 1024, 1024, 10)), ("loihi-mini", (200, 250, 200, 10))):
        t0 = time.perf_counter()
        q = dense_quality(prof, loihi_dense_network(sizes))
        dt = time.perf_counter() - t0
        ok = "ok" if q["ratio"] <= 1.1 else "ABOVE BAR"
        print(f"   {prof:<11} {'-'.join(map(str, sizes)):<18} cores {q['cores']:>3}  lower bound "
              f"{q['lower_bound']:>3} ({q['resource']})  ratio {q['ratio']:.3f}  [{ok}]  "
              f"{dt:.2f} s")

    print("2. layered conv network: contiguous+greedy vs mincut+anneal (uniform rate 0.05)")
    prof = profile_with("loihi-mini", tmp, **{"core.axons_in": 1024, "core.axons_out": 1024,
                                              "core.synapse_words": 4096, "chip.mesh_x": 8,
                                              "chip.mesh_y": 8})
    for side, channels in ((16, (2, 4, 4, 4, 4)), (16, (2, 8, 8, 8, 8))):
        g = loihi_conv_network(side=side, channels=channels)
        t0 = time.perf_counter()
        q = traffic_quality(prof, g)
        dt = time.perf_counter() - t0
        ok = "ok" if q["reduction"] >= 0.30 and q["cores_baseline"] == q["cores_optimized"] else "BELOW BAR"
        print(f"   {side}x{side} channels {channels}: cores {q['cores_baseline']} / "
              f"{q['cores_optimized']}, spike-hops/tick {q['hops_baseline']:.1f} -> "
              f"{q['hops_optimized']:.1f}, reduction {100 * q['reduction']:.1f}%  [{ok}]  "
              f"{dt:.2f} s")

    if args.quick:
        return
    print("3. full TrueNorth chip: 16 layers x 256 cores x 256 neurons")
    t0 = time.perf_counter()
    g = truenorth_chip_network()
    print(f"   built the quantized graph ({sum(n.size for n in g.by_category('neuron'))} neurons, "
          f"{len(g.nodes)} nodes) in {time.perf_counter() - t0:.1f} s")
    from nmc.passes.flow import default_flow

    passes = default_flow({})[2:]
    t0 = time.perf_counter()
    run = run_passes(g, passes, load_profile("truenorth"), verify=False)
    total = time.perf_counter() - t0
    m = run.graph.mapping
    print(f"   mapped to {len(m['cores'])} cores on "
          f"{len({c['chip'] for c in m['cores']})} chip(s) in {total:.1f} s: "
          + ", ".join(f"{k} {v:.1f} s" for k, v in run.timings.items()))
    print(f"   spike-hops/tick {run.graph.attrs['passes']['place']['spike_hops_per_tick']:.1f}, "
          f"routes {len(m['routes'])}")


if __name__ == "__main__":
    main()
