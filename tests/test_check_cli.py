"""``nmc check``: summaries of good models (golden text and JSON) and the bad-model corpus.

Each folder in ``tests/data/bad/model_json/`` is one bad model: ``model.json`` (plus any files it
names) and ``expected.txt``, the exact error line ``nmc check model.json`` must print on stderr
(run from inside the folder, so the message names ``model.json``). Two cases need files that are
not committed: a pickled object array (never commit a pickle) and a symlink that leaves the folder;
the test makes them in a temporary copy.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import nmc.cli
from nmc.commands.check import check_model, format_summary, summarize
from nmc.frontends import _REGISTRY, Frontend, load_model

DATA = Path(__file__).parent / "data"
BAD = DATA / "bad" / "model_json"
MODELS = DATA / "models"
BAD_CASES = sorted(p.name for p in BAD.iterdir() if p.is_dir())


def _make_pickled(folder: Path) -> None:
    # An object array can only be saved as a pickle: exactly what the loader must refuse.
    np.save(folder / "w2.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)


def _make_symlink(folder: Path) -> None:
    outside = folder.parent / "outside.npy"
    np.save(outside, np.zeros((2, 3)))
    os.symlink(outside, folder / "link.npy")


MAKERS = {"pickled_weight_file": _make_pickled, "symlink_leaves_folder": _make_symlink}


def invoke(*args: str):
    return CliRunner().invoke(nmc.cli.cli, list(args))


def test_corpus_is_complete():
    required = {
        "malformed_json", "wrong_type", "nan", "infinity", "number_overflow", "shape_mismatch",
        "unknown_population", "unknown_kind", "unknown_param", "negative_tau", "zero_tau",
        "threshold_zero", "zero_delay_cycle", "missing_weight_file", "pickled_weight_file",
        "path_leaves_folder", "symlink_leaves_folder", "absolute_path", "missing_npz_key",
        "duplicate_names", "bad_dt",
    }
    assert required <= set(BAD_CASES)
    for case in BAD_CASES:
        assert (BAD / case / "model.json").is_file(), case
        text = (BAD / case / "expected.txt").read_text()
        assert text.startswith("Error: model.json") and text.count("\n") == 1, case


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_model(case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    folder = tmp_path / "model"
    shutil.copytree(BAD / case, folder)
    if case in MAKERS:
        MAKERS[case](folder)
    monkeypatch.chdir(folder)
    r = invoke("check", "model.json")
    assert r.exit_code == 1
    assert r.stdout == ""
    assert r.stderr == (BAD / case / "expected.txt").read_text()


NIR_LIF_TEXT = """\
model:       nir_lif
stage:       float
dt:          0.0001 s
inputs:      x [1]
outputs:     y [1]
populations: 1
neurons:     1
connections: 1
synapses:    1
rule:        hand-set parameters (no training)
OK
"""


def test_check_text_summary(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(MODELS / "nir_lif")
    r = invoke("check", "model.json")
    assert (r.exit_code, r.stderr) == (0, "")
    assert r.stdout == NIR_LIF_TEXT


def test_check_folder_argument_reads_its_model_json(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(MODELS)
    r = invoke("check", "nir_lif")
    assert r.exit_code == 0
    assert r.stdout == NIR_LIF_TEXT


def test_check_json_summary(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(MODELS)
    r = invoke("check", "mlp_recurrent/model.json", "--json")
    assert (r.exit_code, r.stderr) == (0, "")
    assert json.loads(r.stdout) == {
        "file": "mlp_recurrent/model.json",
        "name": "mlp_recurrent",
        "stage": "float",
        "dt": 0.001,
        "nodes": 11,
        "inputs": {"img": [1, 4, 4]},
        "outputs": {"y": [3], "spikes": [6]},
        "populations": 2,
        "neurons": 9,
        "connections": 3,  # fc1, h1_to_h1, fc2 (a Flatten is not a connection)
        "synapses": 120,   # 96 + 6 + 18: weights stored, all non-zero
        "rule": "surrogate gradient (BPTT)",
    }


def test_check_native_model_summary(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(MODELS / "loihi_native")
    r = invoke("check", "model.json")
    assert r.exit_code == 0
    assert r.stdout == (
        "model:       loihi_native\n"
        "stage:       quantized\n"
        "dt:          0.001 s\n"
        "inputs:      x [3]\n"
        "outputs:     y [2]\n"
        "populations: 2\n"
        "neurons:     6\n"
        "connections: 2\n"
        "synapses:    15\n"  # 12 dense + 3 sparse, all non-zero
        "rule:        quantization-aware training (hand-made example)\n"
        "OK\n"
    )


def test_check_missing_file(tmp_path: Path):
    r = invoke("check", str(tmp_path / "nope.json"))
    assert r.exit_code == 1
    assert r.stderr == f"Error: {tmp_path / 'nope.json'}: no such file\n"


def test_check_unknown_suffix(tmp_path: Path):
    p = tmp_path / "model.txt"
    p.write_text("hello\n")
    r = invoke("check", str(p))
    assert r.exit_code == 1
    assert r.stderr == (
        f"Error: {p}: unknown model file type '.txt'; known: .json (model.json), .nir (NIR), "
        ".net (lava-dl netx), .nmir (nmir text)\n"
    )


def test_check_sniffs_json_content(tmp_path: Path):
    p = tmp_path / "model.txt"
    shutil.copy(MODELS / "nir_lif" / "model.json", p)
    r = invoke("check", str(p))
    assert r.exit_code == 0
    assert r.stdout.splitlines()[0] == "model:       nir_lif"


def test_missing_frontend_module_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(
        _REGISTRY, ".fake", Frontend("Fake", "nmc_test_no_such_module.reader:load", "fake")
    )
    p = tmp_path / "m.fake"
    p.write_text("")
    r = invoke("check", str(p))
    assert r.exit_code == 1
    assert r.stderr == (
        "Error: reading Fake files needs the module nmc_test_no_such_module, which is not "
        "available; install the extra: pip install 'nmc[fake]'\n"
    )


def test_registry_table():
    assert {s: (f.format, f.reader, f.extra) for s, f in _REGISTRY.items()} == {
        ".json": ("model.json", "nmc.frontends.model_json:load_model_json", None),
        ".nir": ("NIR", "nmc.frontends.nir:load_nir", "nir"),
        ".net": ("lava-dl netx", "nmc.frontends.netx:load_netx", "nir"),
        ".nmir": ("nmir text", "ir.text:load", None),
    }


def test_check_model_api_and_target_hook():
    path = MODELS / "nir_lif" / "model.json"
    s = check_model(path)
    assert s == summarize(load_model(path), path)
    assert format_summary(s) + "\n" == NIR_LIF_TEXT
    seen = []

    def rules(graph, target):
        seen.append((graph.name, target))
        return {"fits": True}

    s = check_model(path, target="loihi", rules=rules)
    assert seen == [("nir_lif", "loihi")]
    assert s["target"] == {"fits": True}
