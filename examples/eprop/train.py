"""e-prop (Bellec et al. 2020): a recurrent network of adaptive LIF neurons learns a delayed
sequential classification task with local eligibility traces and a broadcast learning signal.

Task ("delayed sequential digits"): an 8x8 digit is shown one row at a time, 4 steps per row, on
8 input channels (deterministic rate code of the pixels of that row); then 8 silent steps; the
network's answer is read out over the last 8 steps (the whole silence). No input pixel is visible
when the answer is read, so the class has to be integrated over the rows and held in memory.

Network: 8 inputs -> 100 recurrent neurons (50 plain LIF, 50 with threshold adaptation;
IR kind ``AdaptiveLIF`` for all, ``beta_adapt = 0`` for the plain ones) -> 10 leaky-integrator
readouts (IR ``LI``). Recurrence goes through a connection with a one-step delay.

Neuron semantics are exactly the IR's ``AdaptiveLIF`` (ir/nodes.py), with r = 1/(1 - a) so that
``v[t] = a v[t-1] + I[t]``; ``I[t] = W_in x[t] + W_rec z[t-1]``; threshold
``A[t] = v_th + beta b[t-1]``; ``z[t] = v[t] >= A[t]``; ``b[t] = rho b[t-1] + z[t]``; reset to zero.
Readout ``y[t] = k y[t-1] + W_out z[t]`` (IR ``LI`` with r = 1/(1 - k)).

e-prop, for this discretisation (the reset is ignored in the traces, as in the paper):

* pseudo-derivative ``psi[t] = (gamma / v_th) max(0, 1 - |v[t] - A[t]| / v_th)``;
* eligibility vectors per synapse ``eps_v[t] = a eps_v[t-1] + pre[t]`` and
  ``eps_b[t] = psi[t] eps_v[t] + (rho - psi[t] beta) eps_b[t-1]``;
  eligibility trace ``e[t] = psi[t] (eps_v[t] - beta eps_b[t-1])``;
  ``pre`` is the input at step t for W_in and the recurrent spikes of step t-1 for W_rec;
* learning signal ``L_j[t] = sum_k B_jk (pi_k[t] - onehot_k)`` in the answer window, with
  ``pi = softmax(y)`` and symmetric feedback ``B = W_out^T`` ("symmetric e-prop");
* ``dE/dW_ji = sum_t L_j[t] ebar_ji[t]``, ``ebar`` = e low-pass filtered with the readout's k;
  ``dE/dW_out = sum_t (pi - onehot) zbar``; plus a firing-rate regulariser (target 10 Hz).

Everything is computed forward in time (no backpropagation through time); Adam applies the
summed updates after each mini-batch.

Run: ``python3 examples/eprop/train.py`` (about 3 minutes on 2 cores for both models).
Writes ``model.json`` (adaptive) and ``lif/model.json`` (no adaptation: runs on chip families
without threshold adaptation), each with its ``.npz`` and ``test_inputs.npz``, and ``results.json``.
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
    save_test_inputs,
    sequential_digits,
    write_results,
)

SEED = 0
DT = 1e-3
STEPS_PER_ROW = 4
DELAY = 8
STEPS = 8 * STEPS_PER_ROW + DELAY
WINDOW = (STEPS - DELAY, STEPS)  # answer window: the silent steps
N_IN, N_LIF, N_ALIF, N_OUT = 8, 50, 50, 10
N_REC = N_LIF + N_ALIF
TAU_MEM = 20e-3
TAU_ADAPT = 200e-3
TAU_OUT = 20e-3
V_TH = 0.6
BETA_ALIF = 0.07  # threshold increase per unit of b (b grows by 1 per spike)
GAMMA = 0.3  # pseudo-derivative height
F_TARGET = 0.01  # target firing rate, spikes per step (10 Hz)
C_REG = 0.5
EPOCHS = 30
BATCH = 32
LR = 3e-3

A = float(np.exp(-DT / TAU_MEM))
RHO = float(np.exp(-DT / TAU_ADAPT))
KAPPA = float(np.exp(-DT / TAU_OUT))


def betas(n_alif: int) -> np.ndarray:
    """Per-neuron beta_adapt: 0 for the first N_REC - n_alif neurons (plain LIF), then BETA_ALIF."""
    return np.concatenate([np.zeros(N_REC - n_alif), np.full(n_alif, BETA_ALIF)])


def simulate(p: dict, x: np.ndarray, targets: np.ndarray | None = None, n_alif: int = N_ALIF):
    """Run the network (IR semantics) on inputs (B, T, 8). Returns readout y (B, T, 10), spikes
    (B, T, N_REC) and, given one-hot ``targets`` (B, 10), the e-prop gradients of the batch.
    The last ``n_alif`` recurrent neurons adapt their threshold; the others are plain LIF."""
    learn = targets is not None
    beta = betas(n_alif)
    n_lif = N_REC - n_alif
    b, t_len, _ = x.shape
    w_in, w_rec, w_out = p["w_in"], p["w_rec"], p["w_out"]
    v = np.zeros((b, N_REC))
    adapt = np.zeros((b, N_REC))
    z = np.zeros((b, N_REC))
    y = np.zeros((b, N_OUT))
    ys, zs = np.zeros((b, t_len, N_OUT)), np.zeros((b, t_len, N_REC))
    if learn:
        # Presynaptic side, shared by every postsynaptic neuron: the inputs of step t and the
        # recurrent spikes of step t-1, side by side (columns of [W_in | W_rec]).
        n_pre = N_IN + N_REC
        ev = np.zeros((b, n_pre))  # eps_v: the same for every postsynaptic neuron
        eb = np.zeros((b, n_alif, n_pre))  # eps_b: only adaptive neurons have one
        ebar = np.zeros((b, N_REC, n_pre))  # e filtered with the readout decay
        e_sum = np.zeros((N_REC, n_pre))  # sum of e over time and batch (rate regulariser)
        zbar = np.zeros((b, N_REC))
        g = {k: np.zeros_like(val) for k, val in p.items()}
        g_pre = np.zeros((N_REC, n_pre))
    for t in range(t_len):
        z_prev = z
        v = A * v + x[:, t] @ w_in.T + z_prev @ w_rec.T
        thr = V_TH + beta * adapt
        z = (v >= thr).astype(np.float64)
        if learn:
            psi = (GAMMA / V_TH) * np.maximum(0.0, 1.0 - np.abs(v - thr) / V_TH)
            ev = A * ev + np.concatenate([x[:, t], z_prev], axis=1)
            e = psi[:, :, None] * ev[:, None, :]
            psi_a = psi[:, n_lif:, None]
            # e[t] uses eps_b[t-1]; then eps_b is updated (equations in the module doc).
            e[:, n_lif:] -= (psi_a * BETA_ALIF) * eb
            eb = psi_a * ev[:, None, :] + (RHO - psi_a * BETA_ALIF) * eb
            ebar *= KAPPA
            ebar += e
            e_sum += e.sum(axis=0)
        adapt = RHO * adapt + z
        v = np.where(z > 0, 0.0, v)  # reset to zero
        y = KAPPA * y + z @ w_out.T
        ys[:, t], zs[:, t] = y, z
        if learn:
            zbar = KAPPA * zbar + z
            if WINDOW[0] <= t < WINDOW[1]:
                pi = np.exp(y - y.max(axis=1, keepdims=True))
                pi /= pi.sum(axis=1, keepdims=True)
                err = (pi - targets) / (b * (WINDOW[1] - WINDOW[0]))
                sig = err @ w_out  # learning signal (B, N_REC), B = W_out^T
                g_pre += np.einsum("bj,bji->ji", sig, ebar)
                g["w_out"] += err.T @ zbar
    if learn:
        rate = zs.mean(axis=1)  # (B, N_REC)
        dreg = C_REG * (rate.mean(axis=0) - F_TARGET) / (t_len * b)
        g_pre += dreg[:, None] * e_sum
        g["w_in"] += g_pre[:, :N_IN]
        g["w_rec"] += g_pre[:, N_IN:]
        np.fill_diagonal(g["w_rec"], 0.0)  # no self-connections
        return ys, zs, g
    return ys, zs


def accuracy(p: dict, x: np.ndarray, y: np.ndarray, n_alif: int) -> float:
    ys, _ = simulate(p, x, n_alif=n_alif)
    return float(np.mean(predict(ys, "mean_value", window=WINDOW) == y))


def export(p: dict, path: Path, n_alif: int) -> None:
    """Write the network; with no adaptive neuron, the recurrent layer is a plain ``LIF``."""
    m = ModelWriter("seqdigits_alif_eprop" if n_alif else "seqdigits_lif_eprop", dt=DT)
    m.input("x", [N_IN])
    lif = dict(tau_mem=TAU_MEM, r=1.0 / (1.0 - A), v_threshold=V_TH, reset="zero")
    if n_alif:
        m.population(
            "rec",
            "AdaptiveLIF",
            [N_REC],
            tau_adapt=TAU_ADAPT,
            beta_adapt=m.array("beta_adapt", betas(n_alif)),
            **lif,
        )
    else:
        m.population("rec", "LIF", [N_REC], **lif)
    m.population("out", "LI", [N_OUT], tau_mem=TAU_OUT, r=1.0 / (1.0 - KAPPA))
    m.connection("x", "rec", "dense", weight=m.array("w_in", p["w_in"]))
    m.connection("rec", "rec", "dense", weight=m.array("w_rec", p["w_rec"]), delay=1)
    m.connection("rec", "out", "dense", weight=m.array("w_out", p["w_out"]))
    m.output("y", "out")
    m.provenance(
        rule="e-prop (symmetric), eligibility propagation",
        script="examples/eprop/train.py",
        papers=[
            "Bellec et al. 2020, A solution to the learning dilemma for recurrent networks "
            "of spiking neurons (Nature Communications 11:3625)",
            "Bellec et al. 2018, Long short-term memory and learning-to-learn in networks of "
            "spiking neurons (NeurIPS)",
        ],
        dataset="sklearn load_digits, /16, stratified 80/20 split, random_state=0",
        encoding=f"common.sequential_digits(x, steps_per_row={STEPS_PER_ROW}, delay={DELAY})",
        readout="mean_value",
        window=list(WINDOW),
        steps=STEPS,
        seed=SEED,
        steps_per_row=STEPS_PER_ROW,
        delay=DELAY,
    )
    m.write(path)


def train_variant(n_alif: int, data: tuple, timer: Timer) -> tuple[dict, dict]:
    """Train one network (``n_alif`` adaptive neurons out of N_REC); returns the weights and its
    row of the results table (without the interpreter's figure)."""
    str_, ytr, ste, yte = data
    rng = np.random.default_rng(SEED)
    p = {
        "w_in": rng.normal(0, 1.0, (N_REC, N_IN)) / np.sqrt(N_IN),
        "w_rec": rng.normal(0, 1.0, (N_REC, N_REC)) / np.sqrt(N_REC),
        "w_out": rng.normal(0, 1.0, (N_OUT, N_REC)) / np.sqrt(N_REC),
    }
    np.fill_diagonal(p["w_rec"], 0.0)
    opt = Adam(p, lr=LR)
    for epoch in range(EPOCHS):
        order = rng.permutation(len(str_))
        for k in range(0, len(order), BATCH):
            idx = order[k : k + BATCH]
            _, _, g = simulate(p, str_[idx], np.eye(N_OUT)[ytr[idx]], n_alif)
            opt.step(g)
            np.fill_diagonal(p["w_rec"], 0.0)
        if epoch % 5 == 4:
            _, zs = simulate(p, ste, n_alif=n_alif)
            print(
                f"[{n_alif} adaptive] epoch {epoch + 1}: train "
                f"{accuracy(p, str_, ytr, n_alif):.4f} test {accuracy(p, ste, yte, n_alif):.4f} "
                f"rate {zs.mean():.3f}/step ({timer.seconds()} s)",
                flush=True,
            )
    _, zs = simulate(p, ste, n_alif=n_alif)
    kinds = f"{N_REC - n_alif} LIF + {n_alif} adaptive" if n_alif else f"{N_REC} LIF"
    row = {
        "rule": "e-prop (symmetric feedback)",
        "network": f"8-{N_REC} recurrent ({kinds}, delay 1)-10 LI",
        "dataset": f"delayed sequential digits, test split ({len(yte)} images)",
        "encoding": f"row by row, {STEPS_PER_ROW} steps/row, deterministic rate; "
        f"{DELAY} silent steps",
        "steps": STEPS,
        "readout": f"mean LI membrane, steps {WINDOW[0]}-{WINDOW[1] - 1}",
        "reference_label": "train split",
        "reference_accuracy": accuracy(p, str_, ytr, n_alif),
        "snn_accuracy": accuracy(p, ste, yte, n_alif),
        "mean_rate_per_step": float(zs.mean()),
    }
    return p, row


def main() -> None:
    timer = Timer()
    xtr, ytr, xte, yte = load_digits_split()
    ste = sequential_digits(xte, STEPS_PER_ROW, DELAY)
    data = (sequential_digits(xtr, STEPS_PER_ROW, DELAY), ytr, ste, yte)
    rows = []
    # The LSNN of Bellec et al. (half the neurons adaptive), and the same network without
    # adaptation: plain LIF neurons, which chip families without threshold adaptation can run.
    for folder, n_alif in ((HERE, N_ALIF), (HERE / "lif", 0)):
        p, row = train_variant(n_alif, data, timer)
        export(p, folder / "model.json", n_alif)
        save_test_inputs(folder, ste, yte)
        row["file"] = str((folder / "model.json").relative_to(HERE))
        row["interp_accuracy"] = interpreter_accuracy(
            folder / "model.json", ste, yte, "mean_value", window=WINDOW
        )
        rows.append(row)
        print(
            f"{row['file']}: train {row['reference_accuracy']:.4f} test "
            f"{row['snn_accuracy']:.4f} interpreter {row['interp_accuracy']}"
        )
    write_results(HERE, {"example": "eprop", "train_seconds": timer.seconds(), "models": rows})
    print(f"done in {timer.seconds()} s")


if __name__ == "__main__":
    main()
