"""The converted digits MLP and CNN keep their accuracy when loaded from model.json and run by
the float interpreter (deterministic rate code, 32 steps, spike-count readout)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from common import evaluate, load_digits_split, rate_encode, stored_test_inputs

HERE = Path(__file__).resolve().parent
RESULTS = json.loads((HERE / "results.json").read_text())
STEPS = 32


@pytest.mark.parametrize(
    "model_file,floor",
    [
        ("mlp/model.json", 0.95),
        ("cnn/model.json", 0.94),
        ("mlp_subtract/model.json", 0.95),
    ],  # floors stated in README.md
)
def test_converted_accuracy(runner, model_file, floor):
    row = next(m for m in RESULTS["models"] if m["file"] == model_file)
    assert row["steps"] == STEPS
    graph = runner.load(HERE / model_file)
    _, _, xte, yte = load_digits_split()
    spikes = rate_encode(xte, STEPS)
    if model_file == "cnn/model.json":  # the CNN's input is an image (1, 8, 8)
        spikes = spikes.reshape(len(xte), STEPS, 1, 8, 8)
    stored = stored_test_inputs((HERE / model_file).parent)  # what `nmc run --input` reads
    assert np.array_equal(stored[0], spikes) and np.array_equal(stored[1], yte)
    res = evaluate(graph, spikes, yte, "count", runner=runner.run)
    # The interpreter runs the same semantics as train.py's simulation: the accuracy may differ
    # only through float rounding at exact threshold crossings.
    assert res["accuracy"] >= floor
    assert abs(res["accuracy"] - row["snn_accuracy"]) <= 0.01, (res["accuracy"], row)
    assert res["outputs"].shape == (len(yte), STEPS, 10)
    assert set(np.unique(res["outputs"])) <= {0.0, 1.0}
