"""Time-to-first-spike (TTFS) coding with a first-spike readout, on the 8x8 digits.

Coding: every pixel brighter than zero spikes exactly once, at step ``round((1 - x) * 15)`` --
bright pixels first (``common.latency_encode``). The answer is the output neuron that spikes
*first* (``common.predict(..., "first_spike")``); the network can answer as soon as that spike
arrives, long before the window ends.

Loss (Mostafa 2018; Goltz et al. 2021; Comsa et al. 2020): a softmax over the negative
first-spike times of the outputs, ``L = -log softmax(-t / tau0)[label]``: the correct output is
pushed to spike early, the others late. An output that should spike but stays silent gets its
membrane peak pushed up instead.

Gradients in discrete time (the IR is discrete, so we train in its exact semantics rather than
convert a continuous-time solution): a first spike at step t* moves earlier when the membrane at
t* rises, by about ``dt*/dv = -1 / (v[t*] - v[t*-1])`` (the crossing slope, as in SpikeProp);
from there the error flows back through the output membranes exactly, and through the hidden
spikes with the SuperSpike surrogate (Zenke & Ganguli 2018), as in ``examples/surrogate_gradient``.

Network: 64 inputs -> 100 LIF -> 10 LIF, IR LIF semantics in the ``v = beta v + I`` form
(``tau_mem = -dt / ln(beta)``, ``r = 1/(1 - beta)``), threshold 1, reset to zero.

Run: ``python3 examples/ttfs/train.py`` (about a minute on 2 cores).
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
    first_spike_times,
    interpreter_accuracy,
    latency_encode,
    load_digits_split,
    predict,
    save_test_inputs,
    write_results,
)

SEED = 0
DT = 1e-3
STEPS = 32
T_MAX_IN = 15  # latest input spike step
HIDDEN = 100
BETA_H = 0.97
BETA_O = 0.95
TAU0 = 2.0  # softmax temperature on spike times, in steps
K_SURR = 10.0
MIN_SLOPE = 0.1  # floor of the crossing slope in dt*/dv (avoids huge steps on grazing crossings)
PUSH = 1.0  # gradient that lifts the membrane peak of a silent correct output
EPOCHS = 60
BATCH = 32
LR = 2e-3
WEIGHT_DECAY = 1e-3
INPUT_DROP = 0.1  # training only: each input spike is left out with this probability
INIT_GAIN = 1.0


def surrogate(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + K_SURR * np.abs(v - 1.0)) ** 2


def forward(p: dict, x: np.ndarray):
    """IR semantics: v = beta v + I, spike if v >= 1, reset to zero. Returns output spikes
    (B, T, 10) and the pre-reset membranes / hidden spikes for the backward pass."""
    b, t_len, _ = x.shape
    v1, v2 = np.zeros((b, HIDDEN)), np.zeros((b, 10))
    rec = {
        "v1": np.zeros((b, t_len, HIDDEN)),
        "s1": np.zeros((b, t_len, HIDDEN)),
        "v2": np.zeros((b, t_len, 10)),
        "s2": np.zeros((b, t_len, 10)),
    }
    for t in range(t_len):
        v1 = BETA_H * v1 + x[:, t] @ p["w1"].T
        s1 = (v1 >= 1.0).astype(np.float64)
        v2 = BETA_O * v2 + s1 @ p["w2"].T
        s2 = (v2 >= 1.0).astype(np.float64)
        rec["v1"][:, t], rec["s1"][:, t], rec["v2"][:, t], rec["s2"][:, t] = v1, s1, v2, s2
        v1 = np.where(s1 > 0, 0.0, v1)
        v2 = np.where(s2 > 0, 0.0, v2)
    return rec["s2"], rec


def loss_and_grads(p: dict, x: np.ndarray, y: np.ndarray) -> tuple[float, dict]:
    b, t_len, _ = x.shape
    _, rec = forward(p, x)
    first = first_spike_times(rec["s2"])  # (B, 10); t_len = silent
    fired = first < t_len
    z = -first / TAU0
    pz = np.exp(z - z.max(axis=1, keepdims=True))
    pz /= pz.sum(axis=1, keepdims=True)
    rows = np.arange(b)
    loss = -float(np.mean(np.log(pz[rows, y] + 1e-12)))
    # dL/dt_k = -(p_k - onehot_k) / TAU0; only outputs that fired have a differentiable time.
    d_t = -(pz - np.eye(10)[y]) / TAU0 / b
    g_v2 = np.zeros((b, t_len, 10))
    bi, ki = np.nonzero(fired)
    ts = first[bi, ki]
    v_now = rec["v2"][bi, ts, ki]
    v_before = np.where(ts > 0, rec["v2"][bi, np.maximum(ts - 1, 0), ki], 0.0)
    slope = np.maximum(v_now - v_before, MIN_SLOPE)
    g_v2[bi, ts, ki] = d_t[bi, ki] * (-1.0 / slope)
    # A silent correct output: lift its membrane where it came closest to the threshold.
    silent = ~fired[rows, y]
    if silent.any():
        sb = rows[silent]
        tpk = np.argmax(rec["v2"][sb, :, y[sb]], axis=1)
        g_v2[sb, tpk, y[sb]] -= PUSH / b
    # Backward through time. Outputs: before their first spike there was no reset, so the
    # membrane recursion is exact; the hidden layer uses the surrogate.
    gw1, gw2 = np.zeros_like(p["w1"]), np.zeros_like(p["w2"])
    d2, d1 = np.zeros((b, 10)), np.zeros((b, HIDDEN))
    for t in reversed(range(t_len)):
        d2 = g_v2[:, t] + BETA_O * d2
        gw2 += d2.T @ rec["s1"][:, t]
        d1 = (d2 @ p["w2"]) * surrogate(rec["v1"][:, t]) + BETA_H * d1
        gw1 += d1.T @ x[:, t]
    return loss, {"w1": gw1, "w2": gw2}


def accuracy(p: dict, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Accuracy and the mean step of the deciding (earliest) output spike."""
    out, _ = forward(p, x)
    first = first_spike_times(out).min(axis=1)
    return float(np.mean(predict(out, "first_spike") == y)), float(first.mean())


def export(p: dict, path: Path) -> None:
    m = ModelWriter("digits_ttfs", dt=DT)
    m.input("x", [64])
    for name, n, beta in (("h", HIDDEN, BETA_H), ("out", 10, BETA_O)):
        m.population(
            name,
            "LIF",
            [n],
            tau_mem=-DT / np.log(beta),
            r=1.0 / (1.0 - beta),
            v_threshold=1.0,
            reset="zero",
        )
    m.connection("x", "h", "dense", weight=m.array("w1", p["w1"]))
    m.connection("h", "out", "dense", weight=m.array("w2", p["w2"]))
    m.output("y", "out")
    m.provenance(
        rule="time-to-first-spike coding, first-spike softmax loss (discrete time, crossing-"
        "slope gradient + surrogate)",
        script="examples/ttfs/train.py",
        papers=[
            "Mostafa 2018, Supervised learning based on temporal coding in spiking neural "
            "networks (IEEE TNNLS 29:3227)",
            "Goltz et al. 2021, Fast and energy-efficient neuromorphic deep learning with "
            "first-spike times (Nature Machine Intelligence 3:823)",
            "Comsa et al. 2020, Temporal coding in spiking neural networks with alpha "
            "synaptic function (ICASSP)",
        ],
        dataset="sklearn load_digits, /16, stratified 80/20 split, random_state=0",
        encoding=f"latency: pixel > 0 spikes once at step round((1 - x) * {T_MAX_IN}) "
        "(common.latency_encode)",
        readout="first_spike",
        steps=STEPS,
        t_max=T_MAX_IN,
        seed=SEED,
    )
    m.write(path)


def main() -> None:
    timer = Timer()
    xtr, ytr, xte, yte = load_digits_split()
    str_ = latency_encode(xtr, STEPS, t_max=T_MAX_IN)  # for reporting the training accuracy
    ste = latency_encode(xte, STEPS, t_max=T_MAX_IN)
    rng = np.random.default_rng(SEED)
    p = {
        "w1": rng.normal(0, INIT_GAIN / np.sqrt(64), (HIDDEN, 64)),
        "w2": rng.normal(0, INIT_GAIN / np.sqrt(HIDDEN), (10, HIDDEN)),
    }
    opt = Adam(p, lr=LR)
    for epoch in range(EPOCHS):
        order = rng.permutation(len(xtr))
        losses = []
        for k in range(0, len(order), BATCH):
            idx = order[k : k + BATCH]
            # Augmentation: drop input spikes at random, so the decision cannot hinge on the
            # few earliest pixels (without it the network answers at step ~1 and overfits).
            keep = rng.random(xtr[idx].shape) >= INPUT_DROP
            loss, g = loss_and_grads(
                p, latency_encode(xtr[idx] * keep, STEPS, t_max=T_MAX_IN), ytr[idx]
            )
            losses.append(loss)
            opt.step({k: g[k] + WEIGHT_DECAY * p[k] for k in g})
        if epoch % 10 == 9:
            print(
                f"epoch {epoch + 1}: loss {np.mean(losses):.3f} train {accuracy(p, str_, ytr)} "
                f"test {accuracy(p, ste, yte)}",
                flush=True,
            )
    (acc_tr, _), (acc_te, t_decide) = accuracy(p, str_, ytr), accuracy(p, ste, yte)
    export(p, HERE / "model.json")
    save_test_inputs(HERE, ste, yte)
    interp = interpreter_accuracy(HERE / "model.json", ste, yte, "first_spike")
    write_results(
        HERE,
        {
            "example": "ttfs",
            "train_seconds": timer.seconds(),
            "models": [
                {
                    "file": "model.json",
                    "rule": "time-to-first-spike (first-spike softmax loss)",
                    "network": "64-100-10 LIF (reset zero)",
                    "dataset": f"digits 8x8, test split ({len(yte)} images)",
                    "encoding": f"latency (1 spike per pixel, steps 0-{T_MAX_IN})",
                    "steps": STEPS,
                    "readout": "first output spike",
                    "reference_label": "train split",
                    "reference_accuracy": acc_tr,
                    "snn_accuracy": acc_te,
                    "interp_accuracy": interp,
                    "mean_decision_step": t_decide,
                }
            ],
        },
    )
    print(
        f"train {acc_tr:.4f} test {acc_te:.4f} (decision at step {t_decide:.1f}) "
        f"interpreter {interp}; done in {timer.seconds()} s"
    )


if __name__ == "__main__":
    main()
