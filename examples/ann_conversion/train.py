"""ANN-to-SNN conversion on the 8x8 digits: an MLP and a small CNN.

1. Train a ReLU network without biases (numpy, Adam, cross-entropy).
2. Data-based normalisation (Diehl et al. 2015, with the robust percentile of Rueckauer et al.
   2017): lambda_l = the 99.9th percentile of layer l's ReLU activations over the training set;
   W_l <- W_l * lambda_{l-1} / lambda_l, so every layer's activation lies in [0, ~1] and an
   integrate-and-fire neuron with threshold 1 can represent it as a firing rate <= 1 per step.
3. Build the SNN: IF neurons, threshold 1; input pixels as deterministic rate codes
   (``common.rate_encode``); readout: the output neuron with the most spikes. Two resets:
   ``zero`` (``mlp/``, ``cnn/``: the one every chip family has natively -- a Loihi compartment
   resets v to 0) and ``subtract`` (``mlp_subtract/``: keeps the charge above threshold,
   Rueckauer 2017's recommendation). With weights normalised so a layer's drive rarely exceeds
   one threshold per step, both give the same accuracy here (README table).

The SNN is simulated here with exactly the IR's semantics (``IF``: v += I; spike if v >= 1;
then reset), so ``ir.interp_float.run_float`` on the written ``model.json`` gives the same spikes.

Run: ``python3 examples/ann_conversion/train.py`` (about 15 s on 2 cores). Writes
``<model>/model.json`` + ``<model>/model.npz`` and the encoded test split
``<model>/test_inputs.npz`` for ``mlp``, ``cnn`` and ``mlp_subtract``, and ``results.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from common import (  # noqa: E402
    Adam,
    ModelWriter,
    Timer,
    interpreter_accuracy,
    load_digits_split,
    predict,
    rate_encode,
    save_test_inputs,
    softmax_xent,
    write_results,
)

SEED = 0
PERCENTILE = 99.9
STEPS = 32  # simulation length of the deployed models (and of the tests)
STEPS_SWEEP = (8, 16, 32, 64, 128)


# ------------------------------------------------------------------------------------------
# ANNs (numpy)
# ------------------------------------------------------------------------------------------
def im2col(x: np.ndarray) -> np.ndarray:
    """(B, 1, 8, 8) -> (B, 64, 9) patches of a 3x3 convolution with zero padding 1."""
    b, _, h, w = x.shape
    xp = np.pad(x[:, 0], ((0, 0), (1, 1), (1, 1)))
    cols = np.stack([xp[:, u : u + h, v : v + w] for u in range(3) for v in range(3)], axis=-1)
    return cols.reshape(b, h * w, 9)


class MLP:
    """64 -> 100 ReLU -> 10, no biases."""

    def __init__(self, rng: np.random.Generator, hidden: int = 100):
        self.p = {
            "w1": rng.normal(0, np.sqrt(2 / 64), (hidden, 64)),
            "w2": rng.normal(0, np.sqrt(2 / hidden), (10, hidden)),
        }

    def forward(self, x: np.ndarray) -> list[np.ndarray]:
        h = np.maximum(x @ self.p["w1"].T, 0)
        return [x, h, h @ self.p["w2"].T]

    def grads(self, acts: list[np.ndarray], g_out: np.ndarray) -> dict:
        x, h, _ = acts
        gh = (g_out @ self.p["w2"]) * (h > 0)
        return {"w2": g_out.T @ h, "w1": gh.T @ x}


class CNN:
    """1x8x8 -> conv 3x3 (8 ch, pad 1) ReLU -> avgpool 2x2 -> dense 128 -> 10, no biases."""

    def __init__(self, rng: np.random.Generator, ch: int = 8):
        self.ch = ch
        self.p = {
            "wc": rng.normal(0, np.sqrt(2 / 9), (ch, 1, 3, 3)),
            "wd": rng.normal(0, np.sqrt(2 / (ch * 16)), (10, ch * 16)),
        }

    def forward(self, x: np.ndarray) -> list[np.ndarray]:
        b = x.shape[0]
        cols = im2col(x.reshape(b, 1, 8, 8))  # (B, 64, 9)
        pre = cols @ self.p["wc"].reshape(self.ch, 9).T  # (B, 64, ch)
        c = np.maximum(pre, 0).transpose(0, 2, 1).reshape(b, self.ch, 8, 8)
        pool = c.reshape(b, self.ch, 4, 2, 4, 2).mean(axis=(3, 5))  # (B, ch, 4, 4)
        out = pool.reshape(b, -1) @ self.p["wd"].T
        return [cols, c, pool, out]

    def grads(self, acts: list[np.ndarray], g_out: np.ndarray) -> dict:
        cols, c, pool, _ = acts
        b = cols.shape[0]
        g_wd = g_out.T @ pool.reshape(b, -1)
        g_pool = (g_out @ self.p["wd"]).reshape(b, self.ch, 4, 1, 4, 1)
        g_c = np.broadcast_to(g_pool / 4, (b, self.ch, 4, 2, 4, 2)).reshape(b, self.ch, 8, 8)
        g_pre = (g_c * (c > 0)).reshape(b, self.ch, 64).transpose(0, 2, 1)  # (B, 64, ch)
        g_wc = np.einsum("bpc,bpk->ck", g_pre, cols).reshape(self.ch, 1, 3, 3)
        return {"wc": g_wc, "wd": g_wd}


def train_ann(
    net,
    xtr,
    ytr,
    rng,
    epochs: int,
    lr: float = 2e-3,
    batch: int = 32,
    wd: float = 1e-4,
    positive: float = 1.0,
    margin: float = 1.0,
) -> None:
    """Mini-batch Adam on softmax cross-entropy plus ``positive * relu(margin - z_label)``
    (see below), L2 weight decay ``wd``."""
    opt = Adam(net.p, lr=lr)
    for _ in range(epochs):
        order = rng.permutation(len(xtr))
        for k in range(0, len(order), batch):
            idx = order[k : k + batch]
            acts = net.forward(xtr[idx])
            _, g = softmax_xent(acts[-1], ytr[idx])
            # Spike counts cannot be negative: push the correct class's output above `margin`
            # (a hinge), so the IF output layer sees a positive drive for the right answer.
            z_y = acts[-1][np.arange(len(idx)), ytr[idx]]
            g[np.arange(len(idx)), ytr[idx]] -= positive * (z_y < margin) / len(idx)
            grads = net.grads(acts, g)
            opt.step({n: grads[n] + wd * net.p[n] for n in grads})


def ann_accuracy(net, x, y) -> float:
    return float(np.mean(np.argmax(net.forward(x)[-1], axis=1) == y))


# ------------------------------------------------------------------------------------------
# Conversion
# ------------------------------------------------------------------------------------------
def normalise_mlp(net: MLP, xtr: np.ndarray) -> dict:
    """Scale weights layer by layer so the p-th percentile activation becomes 1."""
    _, h, out = net.forward(xtr)
    lam0 = 1.0  # input pixels are already in [0, 1]
    lam1 = np.percentile(h[h > 0], PERCENTILE)
    lam2 = np.percentile(np.maximum(out, 0)[out > 0], PERCENTILE)
    return {
        "w1": net.p["w1"] * lam0 / lam1,
        "w2": net.p["w2"] * lam1 / lam2,
        "lambda": [lam0, float(lam1), float(lam2)],
    }


def normalise_cnn(net: CNN, xtr: np.ndarray) -> dict:
    """As :func:`normalise_mlp`; the average pool needs no scale of its own (a mean of values in
    [0, 1] stays in [0, 1]), so its IF neurons use threshold 1 and lambda_pool = lambda_conv."""
    _, c, _, out = net.forward(xtr)
    lam_c = np.percentile(c[c > 0], PERCENTILE)
    lam_o = np.percentile(np.maximum(out, 0)[out > 0], PERCENTILE)
    return {
        "wc": net.p["wc"] / lam_c,
        "wd": net.p["wd"] * lam_c / lam_o,
        "lambda": [1.0, float(lam_c), float(lam_c), float(lam_o)],
    }


def if_layer_step(v: np.ndarray, drive: np.ndarray, reset: str) -> tuple[np.ndarray, np.ndarray]:
    """IR ``IF`` with r = 1 and threshold 1: ``v += I; s = v >= 1``, then ``reset``:
    ``"subtract"`` (v -= 1, keeps the charge above threshold) or ``"zero"`` (v = 0)."""
    v = v + drive
    s = (v >= 1.0).astype(np.float64)
    return (v - s if reset == "subtract" else np.where(s > 0, 0.0, v)), s


def simulate_mlp(w: dict, spikes: np.ndarray, reset: str) -> np.ndarray:
    """Output spikes (B, T, 10) of the converted MLP for input spikes (B, T, 64)."""
    b, t_len, _ = spikes.shape
    v1, v2 = np.zeros((b, w["w1"].shape[0])), np.zeros((b, 10))
    out = np.zeros((b, t_len, 10))
    for t in range(t_len):  # connections are instantaneous: all layers see step t
        v1, s1 = if_layer_step(v1, spikes[:, t] @ w["w1"].T, reset)
        v2, out[:, t] = if_layer_step(v2, s1 @ w["w2"].T, reset)
    return out


def simulate_cnn(w: dict, spikes: np.ndarray, reset: str) -> np.ndarray:
    """Output spikes (B, T, 10) of the converted CNN for input spikes (B, T, 64)."""
    b, t_len, _ = spikes.shape
    ch = w["wc"].shape[0]
    vc, vp, vo = np.zeros((b, ch, 8, 8)), np.zeros((b, ch, 4, 4)), np.zeros((b, 10))
    out = np.zeros((b, t_len, 10))
    wc = w["wc"].reshape(ch, 9)
    for t in range(t_len):
        cols = im2col(spikes[:, t].reshape(b, 1, 8, 8))
        drive_c = (cols @ wc.T).transpose(0, 2, 1).reshape(b, ch, 8, 8)
        vc, sc = if_layer_step(vc, drive_c, reset)
        vp, sp = if_layer_step(vp, sc.reshape(b, ch, 4, 2, 4, 2).mean(axis=(3, 5)), reset)
        vo, out[:, t] = if_layer_step(vo, sp.reshape(b, -1) @ w["wd"].T, reset)
    return out


# ------------------------------------------------------------------------------------------
# Export
# ------------------------------------------------------------------------------------------
PROVENANCE = {
    "rule": "ANN-to-SNN conversion",
    "script": "examples/ann_conversion/train.py",
    "papers": [
        "Diehl et al. 2015, Fast-classifying, high-accuracy spiking deep networks through "
        "weight and threshold balancing (IJCNN)",
        "Rueckauer et al. 2017, Conversion of continuous-valued deep networks to efficient "
        "event-driven networks for image classification (Front. Neurosci.)",
    ],
    "dataset": "sklearn load_digits, /16, stratified 80/20 split, random_state=0",
    "encoding": "deterministic rate code, rate = pixel/16 spikes per step (common.rate_encode)",
    "readout": "count",
    "steps": STEPS,
    "percentile": PERCENTILE,
    "seed": SEED,
}


def export_mlp(w: dict, path: Path, reset: str) -> None:
    m = ModelWriter(f"digits_mlp_converted_{reset}", dt=1e-3)
    m.input("x", [64])
    m.population("h", "IF", [w["w1"].shape[0]], v_threshold=1.0, reset=reset)
    m.population("out", "IF", [10], v_threshold=1.0, reset=reset)
    m.connection("x", "h", "dense", weight=m.array("w1", w["w1"]))
    m.connection("h", "out", "dense", weight=m.array("w2", w["w2"]))
    m.output("y", "out")
    m.provenance(**PROVENANCE, network="64-100-10 MLP", normalisation_lambda=w["lambda"])
    m.write(path)


def export_cnn(w: dict, path: Path, reset: str) -> None:
    ch = w["wc"].shape[0]
    m = ModelWriter(f"digits_cnn_converted_{reset}", dt=1e-3)
    m.input("x", [1, 8, 8])
    m.population("conv", "IF", [ch, 8, 8], v_threshold=1.0, reset=reset)
    m.population("pool", "IF", [ch, 4, 4], v_threshold=1.0, reset=reset)
    m.population("out", "IF", [10], v_threshold=1.0, reset=reset)
    m.connection(
        "x", "conv", "conv2d", weight=m.array("wc", w["wc"]), stride=[1, 1], padding=[1, 1]
    )
    m.connection("conv", "pool", "avgpool2d", kernel=[2, 2], stride=[2, 2])
    m.connection("pool", "out", "dense", weight=m.array("wd", w["wd"]))
    m.output("y", "out")
    m.provenance(
        **PROVENANCE, network="conv3x3(8)-avgpool2-dense10 CNN", normalisation_lambda=w["lambda"]
    )
    m.write(path)


def main() -> None:
    timer = Timer()
    xtr, ytr, xte, yte = load_digits_split()
    rng = np.random.default_rng(SEED)

    mlp = MLP(rng)
    train_ann(mlp, xtr, ytr, rng, epochs=60)
    cnn = CNN(rng)
    train_ann(cnn, xtr.reshape(-1, 1, 8, 8), ytr, rng, epochs=60)
    acc = {
        "mlp_ann": ann_accuracy(mlp, xte, yte),
        "cnn_ann": ann_accuracy(cnn, xte.reshape(-1, 1, 8, 8), yte),
    }

    wm = normalise_mlp(mlp, xtr)
    wc = normalise_cnn(cnn, xtr.reshape(-1, 1, 8, 8))
    # (folder, network, weights, simulator, reset, input shape)
    models = [
        ("mlp", "MLP 64-100-10", wm, simulate_mlp, "zero", (64,)),
        ("cnn", "CNN conv3x3x8-avgpool2-dense10", wc, simulate_cnn, "zero", (1, 8, 8)),
        ("mlp_subtract", "MLP 64-100-10", wm, simulate_mlp, "subtract", (64,)),
    ]
    rows = []
    for folder, network, w, simulate, reset, shape in models:
        sweep = {}
        for steps in STEPS_SWEEP:
            out = simulate(w, rate_encode(xte, steps), reset)
            sweep[str(steps)] = float(np.mean(predict(out, "count") == yte))
        export = export_mlp if simulate is simulate_mlp else export_cnn
        export(w, HERE / folder / "model.json", reset)
        spk = rate_encode(xte, STEPS).reshape(len(xte), STEPS, *shape)
        save_test_inputs(HERE / folder, spk, yte)
        ann = acc["cnn_ann" if simulate is simulate_cnn else "mlp_ann"]
        rows.append(
            dict(
                rule="ANN-to-SNN conversion (data-based normalisation)",
                dataset=f"digits 8x8, test split ({len(yte)} images)",
                steps=STEPS,
                encoding="deterministic rate",
                readout="spike count",
                file=f"{folder}/model.json",
                network=f"{network}, IF (reset {reset})",
                reference_label="ANN (ReLU, float)",
                reference_accuracy=ann,
                snn_accuracy=sweep[str(STEPS)],
                # The written file, loaded and run by nmc's own loader and float interpreter
                # (None until those exist): must agree with the simulation above.
                interp_accuracy=interpreter_accuracy(HERE / folder / "model.json", spk, yte),
                sweep=sweep,
            )
        )
        print(f"{folder}: ANN {ann:.4f}  SNN by steps {sweep}")
    results = {"example": "ann_conversion", "train_seconds": timer.seconds(), "models": rows}
    write_results(HERE, results)
    print(f"done in {timer.seconds()} s")


if __name__ == "__main__":
    main()
