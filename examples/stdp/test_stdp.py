"""The STDP-trained winner-take-all network, loaded from model.json and run by the float
interpreter, classifies the test digits through the label assignment stored in its provenance."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from common import evaluate, load_digits_split, rate_encode, stored_test_inputs

HERE = Path(__file__).resolve().parent
RESULTS = json.loads((HERE / "results.json").read_text())
DOC = json.loads((HERE / "model.json").read_text())
FLOOR = 0.83  # stated in README.md


def test_stdp_accuracy(runner):
    row = RESULTS["models"][0]
    prov = DOC["provenance"]
    assignment = np.asarray(prov["assignment"])
    assert assignment.shape == (100,) and set(assignment) == set(range(10))
    graph = runner.load(HERE / "model.json")
    _, _, xte, yte = load_digits_split()
    x = rate_encode(xte, prov["steps"], max_rate=prov["max_rate"])
    stored = stored_test_inputs(HERE)  # what `nmc run --input` reads
    assert np.array_equal(stored[0], x) and np.array_equal(stored[1], yte)
    res = evaluate(
        graph, x, yte, "assigned", runner=runner.run, assignment=assignment, n_classes=10
    )
    assert res["accuracy"] >= FLOOR
    assert abs(res["accuracy"] - row["snn_accuracy"]) <= 0.01, (res["accuracy"], row)
    # Lateral inhibition keeps the code sparse: few spikes per digit, and every digit answers.
    per_sample = res["outputs"].sum(axis=(1, 2))
    assert per_sample.min() >= 1 and per_sample.mean() < 15


def test_inhibition_is_recurrent_and_delayed():
    rec = [c for c in DOC["connections"] if c["source"] == c["target"] == "exc"]
    assert len(rec) == 1 and rec[0]["delay"] == 1
