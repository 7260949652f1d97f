"""pytest set-up of the examples: make ``common`` importable and pick the float runner.

Each example's test loads its committed model with the real model.json loader and runs it with
the float reference interpreter (``ir.interp_float.run_float``). Chip families will be added as
more ``family`` values of the ``runner`` fixture (integer interpreter / emulator per family).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent
for p in (EXAMPLES, EXAMPLES.parent):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import common  # noqa: E402

FAMILIES = ["float"]


class Runner:
    """How a test loads a model file and runs it: ``load(path) -> graph``,
    ``run(graph, inputs, steps) -> {output: (B, T, n)}``; ``name`` for messages."""

    def __init__(self, name, load, run):
        self.name, self.load, self.run = name, load, run


def make_runner(family: str) -> Runner:
    if family != "float":
        pytest.skip(f"no runner for family {family!r} yet")
    return Runner("float", common.load_model, common.run_float_outputs)


@pytest.fixture(params=FAMILIES)
def runner(request) -> Runner:
    return make_runner(request.param)
