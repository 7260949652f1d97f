"""Make the bad NIR cases of this folder from the NIR paper's LIF file (``../shared``).

    python3 tests/data/bad/nir/make_cases.py      # rewrites every <case>/model.nir

Each case is one damage to ``nir_lif/lif_norse.nir`` (Input -> Affine -> LIF -> Output); its
``expected.txt`` holds the exact ``Error: ...`` line of ``nmc check --max-memory 1G model.nir``
(reviewed by hand, not generated: see tests/test_robustness.py).

``hdf5_library_hangs/model.nir`` is not made here: bench/fuzz.py found it (a byte flipped in a
global heap makes the HDF5 library spin forever reading a string); it is kept as found, and the
test runs it with ``NMC_READ_TIMEOUT=3``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parents[4] / "shared" / "conformance" / "nir_lif" / "lif_norse.nir"


def put(f: h5py.File, key: str, value) -> None:
    if key in f:
        del f[key]
    f[key] = value


CASES: dict[str, Callable[[h5py.File], None]] = {
    "edge_to_unknown_node": lambda f: put(
        f, "node/edges", np.array([[b"input", b"0"], [b"0", b"ghost"], [b"1", b"output"]])),
    "edge_not_a_pair": lambda f: put(f, "node/edges", np.array([[b"input", b"0", b"1"]])),
    "nan_tau": lambda f: put(f, "node/nodes/1/tau", np.array([np.nan], np.float32)),
    "negative_tau": lambda f: put(f, "node/nodes/1/tau", np.array([-0.0025], np.float32)),
    "tau_shorter_than_dt": lambda f: put(f, "node/nodes/1/tau", np.array([1e-4], np.float32)),
    "weight_3d": lambda f: put(f, "node/nodes/0/weight", np.ones((1, 1, 1), np.float32)),
    "complex_weight": lambda f: put(f, "node/nodes/0/weight", np.array([[1 + 1j]])),
    "input_shape_zero": lambda f: put(f, "node/nodes/input/shape", np.array([0])),
    "input_shape_text": lambda f: put(f, "node/nodes/input/shape", b"one"),
    "huge_input_shape": lambda f: put(f, "node/nodes/input/shape", np.array([10**12])),
    "huge_dataset": lambda f: (f.__delitem__("node/nodes/0/weight"), f.create_dataset(
        "node/nodes/0/weight", shape=(10**6, 10**6), dtype="f4", chunks=(1, 1024))),
    "unknown_node_type": lambda f: put(f, "node/nodes/1/type", b"Resonator"),
    "no_node_group": lambda f: f.__delitem__("node"),
}


def make_bytes_cases() -> None:
    data = SOURCE.read_bytes()
    for name, content in (("not_hdf5", b"this is not an HDF5 file\n"),
                          ("truncated", data[:4000])):
        (HERE / name).mkdir(exist_ok=True)
        (HERE / name / "model.nir").write_bytes(content)


def main() -> None:
    for name, damage in CASES.items():
        folder = HERE / name
        folder.mkdir(exist_ok=True)
        path = folder / "model.nir"
        shutil.copyfile(SOURCE, path)
        with h5py.File(path, "r+") as f:
            damage(f)
    make_bytes_cases()


if __name__ == "__main__":
    main()
