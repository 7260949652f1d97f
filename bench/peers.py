"""Optional peers: other simulators on the same workload, from their own venvs.

    python -m bench.peers [--size large] [--steps 1000]

The venvs are made by ``../shared/peers/setup_peers.sh`` under ``$PEERS_DIR`` (default
``~/.cache/nmc-peers``); this module never installs them. Each peer found runs in its own
process (``../shared/peers/<script> --size ... --steps ...``) and its JSON line is collected; a
missing venv is reported as not found. The peers' plain numpy loop is also run in *this* process
by :mod:`bench.emulator_throughput`, which is the baseline of the emulator's ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PEERS_SRC = ROOT.parent / "shared" / "peers"


def peers_dir() -> Path:
    """Where setup_peers.sh puts the venvs."""
    return Path(os.environ.get("PEERS_DIR", os.path.expanduser("~/.cache/nmc-peers")))


def peer_table() -> dict[str, tuple[str, str, list[str]]]:
    """name -> (venv, script, extra args), as ``../shared/peers/run_all.py`` lists them."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("nmc_peers_run_all", PEERS_SRC / "run_all.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # only defines PEERS and functions; main() is not called
    return dict(mod.PEERS)


def run(size: str = "large", steps: int = 1000, timeout: float = 900) -> dict[str, Any]:
    """``{"dir", "found": [...], "missing": [...], "results": [...]}`` (results of found peers)."""
    out: dict[str, Any] = {"dir": str(peers_dir()), "found": [], "missing": [], "results": []}
    if not PEERS_SRC.is_dir():
        out["error"] = f"{PEERS_SRC} not found"
        return out
    for name, (venv, script, extra) in peer_table().items():
        py = peers_dir() / venv / "bin" / "python"
        if not py.exists():
            out["missing"].append(name)
            continue
        out["found"].append(name)
        cmd = [str(py), str(PEERS_SRC / script), "--size", size, "--steps", str(steps), *extra]
        t0 = time.perf_counter()
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            out["results"].append({"peer": name, "ok": False, "error": f"timeout {timeout} s"})
            continue
        lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
        if p.returncode or not lines:
            err = (p.stderr.strip().splitlines() or ["(no output)"])[-1][:300]
            out["results"].append({"peer": name, "ok": False, "error": err})
            continue
        r = json.loads(lines[-1])
        r.update(peer_key=name, ok=True, wall_s=round(time.perf_counter() - t0, 2))
        out["results"].append(r)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="large")
    ap.add_argument("--steps", type=int, default=1000)
    a = ap.parse_args(argv)
    print(json.dumps(run(a.size, a.steps), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
