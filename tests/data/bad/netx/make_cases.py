"""Make the bad lava-dl netx cases of this folder.

    python3 tests/data/bad/netx/make_cases.py     # rewrites every <case>/model.net

Each case is one damage to a tiny valid netx network written here (input 1x4x4 -> conv 2x2
(2 channels) -> dense 4, CUBA neurons); its ``expected.txt`` holds the exact ``Error: ...`` line
of ``nmc check --max-memory 1G model.net`` (reviewed by hand: see tests/test_robustness.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np

HERE = Path(__file__).resolve().parent


def neuron(g: h5py.Group) -> None:
    n = g.create_group("neuron")
    n["type"] = b"CUBA"
    n["iDecay"] = np.int64(4096)
    n["vDecay"] = np.int64(1024)
    n["vThMant"] = np.int64(25)
    n["refDelay"] = np.int64(1)


def write_good(path: Path) -> None:
    """The undamaged network (``nmc check`` reads it: see the test)."""
    with h5py.File(path, "w") as f:
        layer = f.create_group("layer")
        g = layer.create_group("0")
        g["type"] = np.array([b"input"], dtype="S10")
        g["shape"] = np.array([1, 4, 4])
        g["bias"] = np.array([10.0], np.float32)
        neuron(g)
        g = layer.create_group("1")
        g["type"] = np.array([b"conv"], dtype="S10")
        g["weight"] = np.arange(-4, 4, dtype=np.float32).reshape(2, 1, 2, 2, 1) * 8
        g["stride"] = np.array([2, 2])
        g["padding"] = np.array([0, 0])
        g["dilation"] = np.array([1, 1])
        g["groups"] = np.int64(1)
        neuron(g)
        g = layer.create_group("2")
        g["type"] = np.array([b"dense"], dtype="S10")
        g["weight"] = np.ones((4, 8), np.float32) * 16
        neuron(g)


def put(f: h5py.File, key: str, value) -> None:
    if key in f:
        del f[key]
    f[key] = value


CASES: dict[str, Callable[[h5py.File], None]] = {
    "no_layer_group": lambda f: f.__delitem__("layer"),
    "unknown_layer_type": lambda f: put(f, "layer/1/type", np.array([b"convT"], dtype="S10")),
    "unsupported_neuron_type": lambda f: put(f, "layer/2/neuron/type", b"SDNN"),
    "missing_neuron_group": lambda f: f.__delitem__("layer/2/neuron"),
    "missing_threshold": lambda f: f.__delitem__("layer/2/neuron/vThMant"),
    "text_decay": lambda f: put(f, "layer/2/neuron/iDecay", b"fast"),
    "dense_weight_mismatch": lambda f: put(f, "layer/2/weight", np.ones((4, 5), np.float32)),
    "nan_weight": lambda f: put(f, "layer/2/weight", np.full((4, 8), np.nan, np.float32)),
    "conv_first_layer": lambda f: f.__delitem__("layer/0"),
    "zero_stride": lambda f: put(f, "layer/1/stride", np.array([0, 2])),
    "kernel_larger_than_input": lambda f: put(
        f, "layer/1/weight", np.ones((2, 1, 5, 5, 1), np.float32)),
    "conv_channel_mismatch": lambda f: put(
        f, "layer/1/weight", np.ones((2, 3, 2, 2, 1), np.float32)),
    "bias_wrong_length": lambda f: put(f, "layer/2/bias", np.ones(3, np.float32)),
    "huge_input_shape": lambda f: put(f, "layer/0/shape", np.array([1, 10**6, 10**6])),
    "huge_dataset": lambda f: (f.__delitem__("layer/2/weight"), f.create_dataset(
        "layer/2/weight", shape=(10**6, 10**6), dtype="f4", chunks=(1, 1024))),
}


def main() -> None:
    good = HERE / "good.net"
    write_good(good)
    for name, damage in CASES.items():
        folder = HERE / name
        folder.mkdir(exist_ok=True)
        path = folder / "model.net"
        write_good(path)
        with h5py.File(path, "r+") as f:
            damage(f)
    data = good.read_bytes()
    for name, content in (("not_hdf5", b"this is not an HDF5 file\n"),
                          ("truncated", data[: len(data) // 2])):
        (HERE / name).mkdir(exist_ok=True)
        (HERE / name / "model.net").write_bytes(content)


if __name__ == "__main__":
    main()
