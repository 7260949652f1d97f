"""The trained tempotron, loaded from model.json and run by the float interpreter, makes the same
fire / stay-silent decisions as during training on the held-out jittered patterns."""

from __future__ import annotations

import json
from pathlib import Path

from common import evaluate, stored_test_inputs

HERE = Path(__file__).resolve().parent
RESULTS = json.loads((HERE / "results.json").read_text())
FLOOR = 0.93  # stated in README.md


def test_tempotron_decisions(runner):
    row = RESULTS["models"][0]
    x, labels = stored_test_inputs(HERE)  # written by train.py; label 1 = fire
    assert x.shape == (400, 100, 100) and (x.sum(axis=1) == 1).all()  # one spike per afferent
    graph = runner.load(HERE / "model.json")
    res = evaluate(graph, x, labels, "fires", runner=runner.run)
    assert res["accuracy"] >= FLOOR
    # Up to its first spike the IR neuron's v is the tempotron's V: the decisions are identical.
    assert abs(res["accuracy"] - row["snn_accuracy"]) <= 0.0025, (res["accuracy"], row)
    assert 0.3 < res["predictions"].mean() < 0.7  # both answers occur
