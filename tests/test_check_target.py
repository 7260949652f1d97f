"""`nmc check --target`: every design-rule violation listed, exit 1 when the model does not fit."""

from __future__ import annotations

import numpy as np
from click.testing import CliRunner

import nmc.cli
from ir.graph import GraphBuilder
from ir.nodes import LIF, Dense, Input, Output
from nmc.frontends.model_json import save_model_json


def dense_net(tmp_path, sizes):
    rng = np.random.default_rng(0)
    b = GraphBuilder("wide")
    prev = b.add(Input(name="x", shape=(sizes[0],)))
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        w = b.const(f"fc{k}.weight", rng.normal(0, 0.1, (n_out, n_in)))
        fc = b.add(Dense(name=f"fc{k}", in_features=n_in, out_features=n_out, weight=w), prev)
        prev = b.add(LIF(name=f"h{k}", shape=(n_out,), tau_mem=0.02, v_threshold=1.0), fc)
    b.add(Output(name="y", shape=(sizes[-1],)), prev)
    save_model_json(b.build(), tmp_path)
    return tmp_path / "model.json"


def check(*args):
    return CliRunner().invoke(nmc.cli.cli, ["check", *map(str, args)])


def test_fits(tmp_path):
    r = check(dense_net(tmp_path, [20, 30, 10]), "--target", "loihi-mini")
    assert r.exit_code == 0, r.output
    assert r.stdout.endswith("OK\ntarget loihi-mini: fits on 1 core (lower bound 1), 1 chip\n")


def test_every_violation_is_listed(tmp_path):
    # two layers whose neurons each need more input axons than a loihi-mini core has (256)
    r = check(dense_net(tmp_path, [300, 20, 400, 5]), "--target", "loihi-mini", "--json")
    assert r.exit_code == 1
    import json

    t = json.loads(r.stdout)["target"]
    assert t["fits"] is False
    objects = sorted(v["object"] for v in t["violations"])
    assert objects == ["population h0 neuron 5", "population h2 neuron 3"]
    for v in t["violations"]:
        assert set(v) >= {"rule", "object", "value", "limit", "hint"}
