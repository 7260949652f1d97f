"""Unsupervised STDP with lateral inhibition and label assignment (Diehl & Cook 2015) on digits.

Network: 64 rate-coded inputs -> 100 excitatory LIF neurons, all-to-all plastic; every
excitatory neuron inhibits all others (Diehl & Cook use a separate inhibitory population wired
one-to-one; here the inhibition is folded into direct exc -> exc connections of weight -10,
delivered one step later, so the network is one population and one recurrent connection).

Learning (no labels), sample by sample, Poisson input for 50 steps:

* STDP, Diehl & Cook's "postsynaptic-trace" form: at each postsynaptic spike of neuron i,
  ``dw_ij = eta (x_j - x_tar) (w_max - w_ij)^mu``, where ``x_j`` is the presynaptic trace
  (+1 per input spike, decaying with tau = 20 steps). Inputs that fired recently are potentiated,
  the others depressed.
* After each sample, weights are clipped to [0, w_max] and each neuron's incoming weights are
  normalised to a fixed sum (Diehl & Cook's weight normalisation).
* Homeostasis: an adaptive threshold ``theta_i`` grows by alpha at each of the neuron's spikes and
  decays slowly, so no neuron wins every sample.

After learning, theta is frozen into per-neuron thresholds and the network is run (exactly as
deployed: IR LIF semantics, deterministic rate code) on the training split; each neuron is assigned
the class it responded to most on average. A test digit is classified by the class whose assigned
neurons spiked most on average (``common.predict(..., "assigned", assignment=...)``).

Run: ``python3 examples/stdp/train.py`` (about 20 s on 2 cores).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from common import (  # noqa: E402
    ModelWriter,
    Timer,
    interpreter_accuracy,
    load_digits_split,
    predict,
    rate_encode,
    save_test_inputs,
    write_results,
)

SEED = 0
N_EXC = 100
STEPS = 50
DT = 1e-3
TAU_MEM = 20e-3
MAX_RATE = 0.25  # input spikes per step at full pixel intensity
V_THRESHOLD = 4.0  # base threshold; theta is added per neuron
W_INH = 10.0  # lateral inhibition weight (exc -> every other exc), delay 1 step
EPOCHS = 6
ETA = 0.001
X_TAR = 0.4
MU = 0.2
W_MAX = 1.0
W_SUM = 6.0  # fixed sum of each neuron's incoming weights
TAU_PRE = 20.0  # steps
ALPHA = 0.3  # theta increment per spike
TAU_THETA = 2e4  # steps


def lif_decay() -> float:
    """a = exp(-dt/tau_mem); with r = 1/(1-a) the IR LIF is v = a v + I."""
    return float(np.exp(-DT / TAU_MEM))


def normalise(w: np.ndarray) -> np.ndarray:
    np.clip(w, 0.0, W_MAX, out=w)
    w *= W_SUM / w.sum(axis=1, keepdims=True)
    return w


def train(xtr: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list]:
    """STDP + homeostasis, one sample at a time. Returns weights (N_EXC, 64), theta, and the mean
    number of excitatory spikes per sample in each epoch."""
    a = lif_decay()
    pre_decay = np.exp(-1.0 / TAU_PRE)
    w = normalise(rng.uniform(0, 1, (N_EXC, 64)))
    theta = np.zeros(N_EXC)
    inh = W_INH * (1.0 - np.eye(N_EXC))
    activity = []
    for _ in range(EPOCHS):
        n_spikes = 0.0
        for k in rng.permutation(len(xtr)):
            s_in = (rng.random((STEPS, 64)) < MAX_RATE * xtr[k]).astype(np.float64)  # Poisson
            v, s, x = np.zeros(N_EXC), np.zeros(N_EXC), np.zeros(64)
            for t in range(STEPS):
                x = x * pre_decay + s_in[t]
                v = a * v + w @ s_in[t] - inh @ s  # inhibition from the previous step's spikes
                s = (v >= V_THRESHOLD + theta).astype(np.float64)
                v[s > 0] = 0.0
                if s.any():
                    post = s > 0
                    w[post] += (
                        ETA * (x - X_TAR)[None, :] * (W_MAX - np.clip(w[post], 0, W_MAX)) ** MU
                    )
                    theta[post] += ALPHA
                    n_spikes += s.sum()
            normalise(w)
            theta *= np.exp(-STEPS / TAU_THETA)
        activity.append(n_spikes / len(xtr))
    return w, theta, activity


def run_deployed(w: np.ndarray, thr: np.ndarray, spikes: np.ndarray) -> np.ndarray:
    """The deployed network, IR semantics: LIF (v = a v + I, reset to zero, per-neuron threshold),
    input connection instantaneous, inhibition delayed by one step. Spikes (B, T, N_EXC)."""
    a = lif_decay()
    b, t_len, _ = spikes.shape
    inh = W_INH * (1.0 - np.eye(N_EXC))
    v, s = np.zeros((b, N_EXC)), np.zeros((b, N_EXC))
    out = np.zeros((b, t_len, N_EXC))
    for t in range(t_len):
        v = a * v + spikes[:, t] @ w.T - s @ inh.T
        s = (v >= thr).astype(np.float64)
        v = np.where(s > 0, 0.0, v)
        out[:, t] = s
    return out


def assign_labels(spikes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each neuron's class: the one with the highest mean spike count (Diehl & Cook 2015)."""
    counts = spikes.sum(axis=1)
    resp = np.stack([counts[labels == c].mean(axis=0) for c in range(10)])
    return np.argmax(resp, axis=0)


def export(w: np.ndarray, thr: np.ndarray, assignment: np.ndarray, path: Path) -> None:
    a = lif_decay()
    m = ModelWriter("digits_stdp_wta", dt=DT)
    m.input("x", [64])
    m.population(
        "exc",
        "LIF",
        [N_EXC],
        tau_mem=TAU_MEM,
        r=1.0 / (1.0 - a),
        v_threshold=m.array("v_threshold", thr),
        reset="zero",
    )
    m.connection("x", "exc", "dense", weight=m.array("w_in", w))
    m.connection(
        "exc", "exc", "dense", weight=m.array("w_inh", -W_INH * (1.0 - np.eye(N_EXC))), delay=1
    )
    m.output("y", "exc")
    m.provenance(
        rule="unsupervised STDP + lateral inhibition + adaptive thresholds, label assignment",
        script="examples/stdp/train.py",
        papers=[
            "Diehl & Cook 2015, Unsupervised learning of digit recognition using "
            "spike-timing-dependent plasticity (Front. Comput. Neurosci. 9:99)",
            "Masquelier & Thorpe 2007, Unsupervised learning of visual features through "
            "spike timing dependent plasticity (PLoS Comput. Biol. 3:e31)",
        ],
        dataset="sklearn load_digits, /16, stratified 80/20 split, random_state=0",
        encoding=f"deterministic rate code, {MAX_RATE} spikes per step at full intensity "
        "(common.rate_encode(x, steps, max_rate=...)); Poisson during learning",
        readout="assigned",
        steps=STEPS,
        max_rate=MAX_RATE,
        seed=SEED,
        assignment=[int(c) for c in assignment],
        assignment_doc="class of each excitatory neuron, by its mean response on the training "
        "split; predict the class whose neurons spike most on average",
    )
    m.write(path)


def main() -> None:
    timer = Timer()
    xtr, ytr, xte, yte = load_digits_split()
    rng = np.random.default_rng(SEED)
    w, theta, activity = train(xtr, rng)
    thr = V_THRESHOLD + theta
    spk_tr = rate_encode(xtr, STEPS, max_rate=MAX_RATE)
    spk_te = rate_encode(xte, STEPS, max_rate=MAX_RATE)
    assignment = assign_labels(run_deployed(w, thr, spk_tr), ytr)
    kw = dict(assignment=assignment, n_classes=10)
    acc_tr = float(np.mean(predict(run_deployed(w, thr, spk_tr), "assigned", **kw) == ytr))
    acc_te = float(np.mean(predict(run_deployed(w, thr, spk_te), "assigned", **kw) == yte))
    export(w, thr, assignment, HERE / "model.json")
    save_test_inputs(HERE, spk_te, yte)
    interp = interpreter_accuracy(HERE / "model.json", spk_te, yte, "assigned", **kw)
    write_results(
        HERE,
        {
            "example": "stdp",
            "train_seconds": timer.seconds(),
            "models": [
                {
                    "file": "model.json",
                    "rule": "unsupervised STDP, lateral inhibition (Diehl & Cook)",
                    "network": f"64-{N_EXC} LIF, exc->exc inhibition (delay 1)",
                    "dataset": f"digits 8x8, test split ({len(yte)} images)",
                    "encoding": f"deterministic rate (max {MAX_RATE}/step)",
                    "steps": STEPS,
                    "readout": "assigned labels",
                    "reference_label": "train split",
                    "reference_accuracy": acc_tr,
                    "snn_accuracy": acc_te,
                    "interp_accuracy": interp,
                    "spikes_per_sample_by_epoch": activity,
                    "neurons_per_class": np.bincount(assignment, minlength=10).tolist(),
                }
            ],
        },
    )
    print(
        f"spikes/sample by epoch {np.round(activity, 1)}; assignment counts "
        f"{np.bincount(assignment, minlength=10)}"
    )
    print(f"train {acc_tr:.4f} test {acc_te:.4f} interpreter {interp}; done in {timer.seconds()} s")


if __name__ == "__main__":
    main()
