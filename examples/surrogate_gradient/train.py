"""Surrogate-gradient training (BPTT) of a LIF network on the 8x8 digits.

Network: 64 rate-coded inputs -> 100 LIF -> 10 LIF; the class is the output neuron with the most
spikes. The spike nonlinearity ``s = H(v - 1)`` has no useful derivative, so the backward pass
replaces it by SuperSpike's fast-sigmoid surrogate ``1 / (1 + k|v - 1|)^2`` (Zenke & Ganguli
2018); everything else is exact backpropagation through time. The reset is left out of the
gradient (a common choice that trains more stably).

Neuron semantics are exactly the IR's LIF: ``v[t] = a v[t-1] + (1 - a) r I[t]`` with
``a = exp(-dt/tau_mem)``. We train in the snnTorch form ``v = beta v + I`` and export
``tau_mem = -dt / ln(beta)``, ``r = 1 / (1 - beta)`` -- the same neuron.

Run: ``python3 examples/surrogate_gradient/train.py`` (about a minute on 2 cores).
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
STEPS = 20
HIDDEN = 100
BETA = 0.9  # membrane decay per step
DT = 1e-3
K_SURR = 10.0  # steepness of the fast-sigmoid surrogate
EPOCHS = 40
BATCH = 32
LR = 2e-3
COUNT_SCALE = 0.5  # logits = COUNT_SCALE * spike count (a softmax temperature)


def surrogate(v: np.ndarray) -> np.ndarray:
    """SuperSpike fast-sigmoid derivative, centred on the threshold 1."""
    return 1.0 / (1.0 + K_SURR * np.abs(v - 1.0)) ** 2


def forward(p: dict, x: np.ndarray, keep: bool = False):
    """Run the network on input spikes ``x`` (B, T, 64) with the IR's LIF semantics
    (beta form, threshold 1, reset to zero). Returns output spikes (B, T, 10) and,
    with ``keep``, the pre-reset membranes and spikes needed by the backward pass."""
    b, t_len, _ = x.shape
    v1, v2 = np.zeros((b, HIDDEN)), np.zeros((b, 10))
    rec = {"v1": [], "s1": [], "v2": [], "s2": []}
    for t in range(t_len):
        v1 = BETA * v1 + x[:, t] @ p["w1"].T
        s1 = (v1 >= 1.0).astype(np.float64)
        v2 = BETA * v2 + s1 @ p["w2"].T
        s2 = (v2 >= 1.0).astype(np.float64)
        if keep:
            rec["v1"].append(v1)
            rec["s1"].append(s1)
            rec["v2"].append(v2)
        rec["s2"].append(s2)
        v1 = np.where(s1 > 0, 0.0, v1)  # reset to zero (every chip family has it natively)
        v2 = np.where(s2 > 0, 0.0, v2)
    out = np.stack(rec["s2"], axis=1)
    return (out, rec) if keep else out


def backward(p: dict, x: np.ndarray, rec: dict, g_count: np.ndarray) -> dict:
    """BPTT with the surrogate; ``g_count`` = dLoss/d(spike count of each output) (B, 10)."""
    b, t_len, _ = x.shape
    gw1, gw2 = np.zeros_like(p["w1"]), np.zeros_like(p["w2"])
    d1, d2 = np.zeros((b, HIDDEN)), np.zeros((b, 10))
    for t in reversed(range(t_len)):
        # dL/dv2[t]: through this step's spike, plus the leak path from v2[t+1].
        d2 = g_count * surrogate(rec["v2"][t]) + BETA * d2
        gw2 += d2.T @ rec["s1"][t]
        d1 = (d2 @ p["w2"]) * surrogate(rec["v1"][t]) + BETA * d1
        gw1 += d1.T @ x[:, t]
    return {"w1": gw1, "w2": gw2}


def accuracy(p: dict, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(predict(forward(p, x), "count") == y))


def export(p: dict, path: Path, acc: float) -> None:
    tau = -DT / np.log(BETA)
    r = 1.0 / (1.0 - BETA)
    m = ModelWriter("digits_lif_surrogate", dt=DT)
    m.input("x", [64])
    lif = dict(tau_mem=tau, r=r, v_threshold=1.0, reset="zero")
    m.population("h", "LIF", [HIDDEN], **lif)
    m.population("out", "LIF", [10], **lif)
    m.connection("x", "h", "dense", weight=m.array("w1", p["w1"]))
    m.connection("h", "out", "dense", weight=m.array("w2", p["w2"]))
    m.output("y", "out")
    m.provenance(
        rule="surrogate-gradient BPTT (SuperSpike fast sigmoid)",
        script="examples/surrogate_gradient/train.py",
        papers=[
            "Zenke & Ganguli 2018, SuperSpike: supervised learning in multilayer spiking "
            "neural networks (Neural Computation)",
            "Neftci, Mostafa & Zenke 2019, Surrogate gradient learning in spiking neural "
            "networks (IEEE Signal Processing Magazine)",
        ],
        dataset="sklearn load_digits, /16, stratified 80/20 split, random_state=0",
        encoding="deterministic rate code, rate = pixel/16 spikes per step (common.rate_encode)",
        readout="count",
        steps=STEPS,
        beta=BETA,
        seed=SEED,
        test_accuracy=acc,
    )
    m.write(path)


def main() -> None:
    timer = Timer()
    xtr, ytr, xte, yte = load_digits_split()
    str_, ste = rate_encode(xtr, STEPS), rate_encode(xte, STEPS)
    rng = np.random.default_rng(SEED)
    p = {
        "w1": rng.normal(0, 1.0 / np.sqrt(64), (HIDDEN, 64)) * 1.5,
        "w2": rng.normal(0, 1.0 / np.sqrt(HIDDEN), (10, HIDDEN)) * 1.5,
    }
    opt = Adam(p, lr=LR)
    for epoch in range(EPOCHS):
        order = rng.permutation(len(xtr))
        losses = []
        for k in range(0, len(order), BATCH):
            idx = order[k : k + BATCH]
            out, rec = forward(p, str_[idx], keep=True)
            loss, g = softmax_xent(COUNT_SCALE * out.sum(axis=1), ytr[idx])
            losses.append(loss)
            opt.step(backward(p, str_[idx], rec, COUNT_SCALE * g))
        if epoch % 10 == 9:
            print(
                f"epoch {epoch + 1}: loss {np.mean(losses):.3f} "
                f"train {accuracy(p, str_, ytr):.4f} test {accuracy(p, ste, yte):.4f}"
            )
    acc_train, acc_test = accuracy(p, str_, ytr), accuracy(p, ste, yte)
    export(p, HERE / "model.json", acc_test)
    save_test_inputs(HERE, ste, yte)
    interp = interpreter_accuracy(HERE / "model.json", ste, yte)
    write_results(
        HERE,
        {
            "example": "surrogate_gradient",
            "train_seconds": timer.seconds(),
            "models": [
                {
                    "file": "model.json",
                    "rule": "surrogate gradient (BPTT, SuperSpike)",
                    "network": "64-100-10 LIF (reset zero)",
                    "dataset": f"digits 8x8, test split ({len(yte)} images)",
                    "encoding": "deterministic rate",
                    "steps": STEPS,
                    "readout": "spike count",
                    "reference_label": "train split",
                    "reference_accuracy": acc_train,
                    "snn_accuracy": acc_test,
                    "interp_accuracy": interp,
                }
            ],
        },
    )
    print(
        f"train {acc_train:.4f} test {acc_test:.4f} interpreter {interp}; "
        f"done in {timer.seconds()} s"
    )


if __name__ == "__main__":
    main()
