"""The surrogate-gradient LIF network keeps its accuracy when loaded from model.json and run by
the float interpreter (deterministic rate code, 20 steps, spike-count readout)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from common import evaluate, load_digits_split, rate_encode, stored_test_inputs

HERE = Path(__file__).resolve().parent
RESULTS = json.loads((HERE / "results.json").read_text())
STEPS = 20
FLOOR = 0.95  # stated in README.md


def test_surrogate_accuracy(runner):
    row = RESULTS["models"][0]
    assert row["steps"] == STEPS
    graph = runner.load(HERE / "model.json")
    _, _, xte, yte = load_digits_split()
    x = rate_encode(xte, STEPS)
    stored = stored_test_inputs(HERE)  # what `nmc run --input` reads
    assert np.array_equal(stored[0], x) and np.array_equal(stored[1], yte)
    res = evaluate(graph, x, yte, "count", runner=runner.run)
    assert res["accuracy"] >= FLOOR
    assert abs(res["accuracy"] - row["snn_accuracy"]) <= 0.01, (res["accuracy"], row)
    assert res["outputs"].shape == (len(yte), STEPS, 10)
    assert set(np.unique(res["outputs"])) <= {0.0, 1.0}


def test_lif_parameters_are_the_beta_form():
    """tau_mem and r encode v = beta v + I with beta = 0.9 (snnTorch's Leaky), exactly."""
    doc = json.loads((HERE / "model.json").read_text())
    for pop in doc["populations"]:
        p = pop["params"]
        a = np.exp(-doc["dt"] / p["tau_mem"])
        assert abs(a - 0.9) < 1e-12
        assert abs((1 - a) * p["r"] - 1.0) < 1e-12
