"""Golden hexdumps of tiny multi-core images of the TrueNorth and BrainScaleS-2 families.

Each is compiled by the real flow from a small float network for a frozen copy of the family's
profile (tests/data/golden/golden-<family>.toml), so a change of the image layout, the writer or
a mapping pass that moves a byte shows here. Regenerate deliberately with NMC_REGEN_GOLDEN=1.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import emulator
from ir.graph import GraphBuilder
from ir.nodes import IF, Dense, Input, Output
from tests.test_image import GOLDEN, hexdump

REGEN = os.environ.get("NMC_REGEN_GOLDEN") == "1"


def tiny_net(n_in: int, n_hidden: int, n_out: int):
    rng = np.random.default_rng(7)
    b = GraphBuilder("tiny_two_core", dt=1e-3)
    b.add(Input(name="x", shape=(n_in,)))
    w1 = b.const("fc1.weight", np.round(rng.normal(0.2, 0.5, (n_hidden, n_in)), 2))
    b.add(Dense(name="fc1", in_features=n_in, out_features=n_hidden, weight=w1), "x")
    b.add(IF(name="h", shape=(n_hidden,), v_threshold=1.0), "fc1")
    w2 = b.const("fc2.weight", np.round(rng.normal(0.1, 0.5, (n_out, n_hidden)), 2))
    b.add(Dense(name="fc2", in_features=n_hidden, out_features=n_out, weight=w2), "h")
    b.add(IF(name="o", shape=(n_out,), v_threshold=1.0), "fc2")
    b.add(Output(name="y", shape=(n_out,)), "o")
    return b.build()


CASES = {
    # (profile, layer sizes, flow options): at most 16 neurons per core makes 24 + 4 neurons span
    # two cores (TrueNorth adds a third for the copy neurons of its one-target rule)
    "truenorth": (GOLDEN / "golden-truenorth.toml", (8, 24, 4), {"max_neurons": 16}),
    "brainscales2": (GOLDEN / "golden-brainscales2.toml", (8, 24, 4), {"max_neurons": 16}),
}


@pytest.mark.parametrize("family", sorted(CASES))
def test_golden_hexdump(family, monkeypatch):
    import nmc

    monkeypatch.setattr(nmc, "__version__", "golden")
    profile, sizes, opts = CASES[family]
    compiled = nmc.compile(tiny_net(*sizes), profile, quantize_options=opts)
    image = compiled.image
    chip = emulator.load(image)
    assert chip.family == family and len(chip.cores) >= 2
    again = nmc.compile(tiny_net(*sizes), profile, quantize_options=opts).image
    assert again == image  # deterministic bytes
    path = GOLDEN / f"{family}_two_core.hex"
    text = hexdump(image)
    if REGEN or not path.exists():
        path.write_text(text)
    assert text == path.read_text()
