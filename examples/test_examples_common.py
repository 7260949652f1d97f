"""The shared helpers of the examples: encoders, readouts, the model writer and the tables."""

from __future__ import annotations

import json

import make_tables
import numpy as np
import pytest
from common import (
    ModelWriter,
    first_spike_times,
    latency_encode,
    load_digits_split,
    predict,
    rate_encode,
    rate_encode_sequence,
    sequential_digits,
)

from ir.errors import NmcError


def test_digits_split_is_fixed():
    xtr, ytr, xte, yte = load_digits_split()
    assert xtr.shape == (1437, 64) and xte.shape == (360, 64)
    assert xtr.min() == 0.0 and xtr.max() == 1.0
    assert np.bincount(yte).tolist() == [36, 36, 35, 37, 36, 37, 36, 36, 35, 36]
    assert yte[:12].tolist() == [7, 6, 3, 7, 7, 3, 2, 8, 9, 3, 2, 6]
    assert xte.sum() * 16 == 112350  # the same images, not just the same labels


def test_rate_encode_deterministic():
    s = rate_encode(np.array([[0.0, 0.25, 0.5, 1.0]]), 8)
    assert s[0].T.tolist() == [
        [0, 0, 0, 0, 0, 0, 0, 0],
        [0, 1, 0, 0, 0, 1, 0, 0],
        [1, 0, 1, 0, 1, 0, 1, 0],
        [1, 1, 1, 1, 1, 1, 1, 1],
    ]
    seq = rate_encode_sequence(np.repeat(np.array([[0.25, 0.5]])[:, None], 8, axis=1))
    assert np.array_equal(seq, rate_encode(np.array([[0.25, 0.5]]), 8))


def test_rate_encode_poisson_needs_rng():
    with pytest.raises(ValueError, match=r"^rate_encode\(method='poisson'\) needs rng="):
        rate_encode(np.ones((1, 2)), 4, method="poisson")
    a = rate_encode(np.full((1, 3), 0.5), 5, method="poisson", rng=np.random.default_rng(1))
    b = rate_encode(np.full((1, 3), 0.5), 5, method="poisson", rng=np.random.default_rng(1))
    assert np.array_equal(a, b) and set(np.unique(a)) <= {0.0, 1.0}


def test_latency_encode():
    s = latency_encode(np.array([[1.0, 0.5, 0.0]]), 6, t_max=4)
    assert first_spike_times(s).tolist() == [[0, 2, 6]]
    assert s.sum() == 2


def test_sequential_digits_shape_and_silence():
    x = np.zeros((1, 64))
    x[0, 8:16] = 1.0  # row 1 fully on
    s = sequential_digits(x, 2, 3)
    assert s.shape == (1, 19, 8)
    assert s[0, 2:4].sum() == 16 and s.sum() == 16  # only row 1's two steps spike


def test_readouts():
    out = np.zeros((2, 5, 3))
    out[0, 1, 2] = out[0, 3, 0] = out[0, 4, 0] = 1  # sample 0: class 2 first, class 0 most
    out[1, 0, 1] = 1
    assert predict(out, "count").tolist() == [0, 1]
    assert predict(out, "first_spike").tolist() == [2, 1]
    assert predict(out, "count", window=(0, 2)).tolist() == [2, 1]
    assert predict(out[:, :, :1], "fires").tolist() == [1, 0]
    assign = np.array([1, 0, 0])
    assert predict(out, "assigned", assignment=assign, n_classes=2).tolist() == [1, 0]
    assert predict(out, "mean_value").tolist() == [0, 1]
    with pytest.raises(NmcError, match=r"^readout 'max' is not one of count, first_spike"):
        predict(out, "max")


def test_model_writer_round_trip(tmp_path):
    w = np.arange(6.0).reshape(2, 3)
    m = ModelWriter("tiny", dt=1e-3)
    m.input("x", [3])
    m.population("h", "LIF", [2], tau_mem=0.01, v_threshold=m.array("thr", [1.0, 2.0]))
    m.connection("x", "h", "dense", weight=m.array("w", w))
    m.output("y", "h")
    m.provenance(rule="none")
    path = m.write(tmp_path / "net.json")
    doc = json.loads(path.read_text())
    assert doc["connections"][0]["weight"] == {"file": "net.npz", "key": "w"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.json", "net.npz"]
    from common import load_model

    g = load_model(path)
    assert g.attrs["provenance"] == {"rule": "none"}
    dense = next(g.by_kind("Dense"))
    assert np.array_equal(g.const(dense.weight), w)


def test_readme_tables_are_current():
    assert make_tables.main(["--check"]) == 0, "run python3 examples/make_tables.py"
