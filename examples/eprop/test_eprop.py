"""The e-prop-trained recurrent networks (adaptive LIF, and the plain-LIF variant), loaded from
model.json and run by the float interpreter, solve the delayed sequential-digits task as well as
during training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from common import evaluate, load_digits_split, sequential_digits, stored_test_inputs

HERE = Path(__file__).resolve().parent
RESULTS = json.loads((HERE / "results.json").read_text())
FLOOR = 0.86  # stated in README.md
MODELS = ["model.json", "lif/model.json"]


@pytest.mark.parametrize("model_file", MODELS)
def test_eprop_accuracy(runner, model_file):
    row = next(m for m in RESULTS["models"] if m["file"] == model_file)
    path = HERE / model_file
    prov = json.loads(path.read_text())["provenance"]
    window = tuple(prov["window"])
    assert window == (32, 40) and prov["steps"] == 40
    graph = runner.load(path)
    _, _, xte, yte = load_digits_split()
    x = sequential_digits(xte, prov["steps_per_row"], prov["delay"])
    assert x.shape == (len(xte), 40, 8) and not x[:, 32:].any()  # silent while answering
    stored = stored_test_inputs(path.parent)  # what `nmc run --input` reads
    assert np.array_equal(stored[0], x) and np.array_equal(stored[1], yte)
    res = evaluate(graph, x, yte, "mean_value", runner=runner.run, window=window)
    assert res["accuracy"] >= FLOOR
    assert abs(res["accuracy"] - row["snn_accuracy"]) <= 0.01, (res["accuracy"], row)


@pytest.mark.parametrize(
    "model_file,kind", [("model.json", "AdaptiveLIF"), ("lif/model.json", "LIF")]
)
def test_recurrence_is_delayed(model_file, kind):
    path = HERE / model_file
    doc = json.loads(path.read_text())
    pops = {p["name"]: p for p in doc["populations"]}
    assert pops["rec"]["kind"] == kind and pops["out"]["kind"] == "LI"
    rec = [c for c in doc["connections"] if c["source"] == c["target"] == "rec"]
    assert len(rec) == 1 and rec[0]["delay"] == 1
    arrays = np.load(path.with_suffix(".npz"))
    assert (np.diag(arrays["w_rec"]) == 0).all()
    if kind == "AdaptiveLIF":
        beta = arrays["beta_adapt"]
        assert (beta[:50] == 0).all() and (beta[50:] > 0).all()  # 50 LIF + 50 adaptive
