"""The TTFS network, loaded from model.json and run by the float interpreter, classifies the
latency-coded test digits by its first output spike, early in the window."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from common import (
    evaluate,
    first_spike_times,
    latency_encode,
    load_digits_split,
    stored_test_inputs,
)

HERE = Path(__file__).resolve().parent
RESULTS = json.loads((HERE / "results.json").read_text())
DOC = json.loads((HERE / "model.json").read_text())
FLOOR = 0.89  # stated in README.md


def test_ttfs_accuracy(runner):
    row = RESULTS["models"][0]
    prov = DOC["provenance"]
    graph = runner.load(HERE / "model.json")
    _, _, xte, yte = load_digits_split()
    x = latency_encode(xte, prov["steps"], t_max=prov["t_max"])
    assert (x.sum(axis=1) <= 1).all()  # at most one spike per input
    stored = stored_test_inputs(HERE)  # what `nmc run --input` reads
    assert np.array_equal(stored[0], x) and np.array_equal(stored[1], yte)
    res = evaluate(graph, x, yte, "first_spike", runner=runner.run)
    assert res["accuracy"] >= FLOOR
    assert abs(res["accuracy"] - row["snn_accuracy"]) <= 0.01, (res["accuracy"], row)
    decided = first_spike_times(res["outputs"]).min(axis=1)
    assert (decided < prov["steps"]).mean() > 0.99  # practically every digit gets an answer
    assert decided.mean() < 6  # ... within a few steps
