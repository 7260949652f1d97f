"""Make the bad ``.nmir`` cases of this folder (text, plus a sidecar where the case needs one).

    python3 tests/data/bad/nmir/make_cases.py     # rewrites every <case>/model.nmir

Each case is one mistake in a small valid graph (``GOOD``); its ``expected.txt`` holds the exact
error output of ``nmc check --max-memory 1G model.nmir`` (for syntax errors: the located line, the
source line and a caret), reviewed by hand (see tests/test_robustness.py).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

GOOD = """\
nmir 1
graph small stage=float dt=0.001

const fc.weight: f32[2, 3] = [[0.5, -0.5, 1.0], [0.25, 0.0, 2.0]]

node x = Input(shape=[3])
node fc = Dense(in_features=3, out_features=2, weight=@fc.weight)
node h = LIF(shape=[2], tau_mem=0.02, v_threshold=1.0)
node y = Output(shape=[2])

x -> fc
fc -> h
h -> y
"""

BIG = np.arange(20, dtype=np.float64)
BIG_LINE = "const big: f64[20] sha256:{hash}\n"

CASES: dict[str, str | bytes] = {
    "syntax_error": GOOD.replace("tau_mem=0.02, v_threshold=1.0)", "tau_mem=0.02, v_threshold=1.0"),
    "bad_version": GOOD.replace("nmir 1", "nmir 2"),
    "unknown_stage": GOOD.replace("stage=float", "stage=fried"),
    "unknown_kind": GOOD.replace("LIF(shape", "LIFF(shape"),
    "unknown_field": GOOD.replace("tau_mem=0.02", "tau=0.02"),
    "negative_tau": GOOD.replace("tau_mem=0.02", "tau_mem=-0.02"),
    "unknown_constant": GOOD.replace("weight=@fc.weight", "weight=@fc.weights"),
    "inline_shape_mismatch": GOOD.replace("f32[2, 3]", "f32[3, 2]"),
    "integer_overflow": GOOD.replace(
        "const fc.weight", "const n: i8[2] = [1, 300]\nconst fc.weight"),
    "duplicate_node": GOOD.replace("node y =", "node h = Output(shape=[2])\nnode y ="),
    "edge_to_unknown_node": GOOD.replace("h -> y", "h -> z"),
    "zero_delay_cycle": GOOD.replace(
        "node h = LIF(shape=[2], tau_mem=0.02, v_threshold=1.0)",
        "node h = LIF(shape=[2], tau_mem=0.02, v_threshold=1.0)\n"
        "node rec = Dense(in_features=2, out_features=2, weight=@rec.weight)").replace(
        "const fc.weight", "const rec.weight: f32[2, 2] = [[0.0, 1.0], [1.0, 0.0]]\n"
        "const fc.weight").replace("h -> y", "h -> y\nh -> rec\nrec -> h"),
    "missing_sidecar": GOOD.replace("const fc.weight", BIG_LINE.format(hash="0" * 16)
                                    + "const fc.weight"),
    "sidecar_hash_mismatch": "sidecar",  # made below
    "not_utf8": GOOD.encode().replace(b"small", b"sm\xffll"),
    "empty": "",
}


def main() -> None:
    from ir.graph import array_hash

    for name, text in CASES.items():
        folder = HERE / name
        folder.mkdir(exist_ok=True)
        path = folder / "model.nmir"
        if name == "sidecar_hash_mismatch":
            text = GOOD.replace("const fc.weight", BIG_LINE.format(hash=array_hash(BIG))
                                + "const fc.weight")
            buf = io.BytesIO()
            np.savez(buf, big=BIG + 1)  # same dtype and shape, other values
            (folder / "model.npz").write_bytes(buf.getvalue())
        path.write_bytes(text if isinstance(text, bytes) else text.encode())


if __name__ == "__main__":
    main()
