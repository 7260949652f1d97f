"""The latency a routed mapping declares is what the chip shows, splitters included.

TrueNorth splitter cores add a tick that retiming moves into the connection delays; the declared
``latency`` (path delays) must therefore not add ``extra_latency`` a second time, and the readout's
shift against the float model is the chip's real lag."""

from __future__ import annotations

import numpy as np
import pytest

import nmc
from ir.interp_int import run_int
from nmc.readout import latency_shift

MLP = "examples/ann_conversion/mlp/model.json"


@pytest.mark.parametrize("fanout", ["copy", "splitter"])
def test_declared_latency_is_the_chips_lag(fanout):
    c = nmc.compile(MLP, "truenorth", options={"fanout": fanout})
    m = c.graph.mapping
    extra = m["extra_latency"]["y"]
    assert extra == (1 if fanout == "splitter" else 0)
    assert m["latency"]["y"] == 2 + extra  # two connections of delay 1, plus the splitter tick
    assert latency_shift(c.graph, c.source) == 2 + extra  # the float model's layers take 0 ticks
    rng = np.random.default_rng(0)
    x = rng.random((2, 12, 64)) < 0.3
    q = c.quantized
    want = np.asarray(run_int(q, {q.inputs[0].name: x}).outputs["y"])
    chip = c.chip()
    got = chip.run({chip.inputs[0].name: x}).outputs["y"]
    # the chip answers exactly `extra` ticks after the quantized graph (whose own delays the
    # declared latency also counts)
    assert np.array_equal(got[:, extra:], want[:, :12 - extra])
    assert chip.run({chip.inputs[0].name: x}).latency["y"] == extra
