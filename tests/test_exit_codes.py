"""Exit codes of real ``nmc`` commands (README table): 0 ok, 1 user error, 2 usage error,
3 internal error (a bug), 130 interrupted. Run through click's test runner."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import nmc.cli
from nmc.cli import EXIT_INTERNAL, EXIT_INTERRUPT, EXIT_OK, EXIT_USAGE, EXIT_USER

MODELS = Path(__file__).parent / "data" / "models"
MODEL = str(MODELS / "nir_lif" / "model.json")


def invoke(*args: str):
    return CliRunner().invoke(nmc.cli.cli, list(args))


def test_the_codes_are_the_readme_table():
    assert (EXIT_OK, EXIT_USER, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPT) == (0, 1, 2, 3, 130)
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    for code in (0, 1, 2, 3, 130):
        assert f"\n| {code} | " in readme, code


def test_ok():
    r = invoke("check", MODEL)
    assert (r.exit_code, r.stderr) == (0, "")
    assert r.stdout.endswith("OK\n")
    r = invoke("compile", MODEL, "--emit", "nmir")
    assert (r.exit_code, r.stderr) == (0, "")
    assert r.stdout.startswith("nmir 1\ngraph nir_lif stage=float dt=0.0001\n")


def test_user_error(tmp_path: Path):
    bad = tmp_path / "model.json"
    bad.write_text("{")
    for args in (("check", str(bad)), ("compile", str(bad), "--emit", "nmir")):
        r = invoke(*args)
        assert (r.exit_code, r.stdout) == (1, "")
        assert r.stderr == f"Error: {bad}:1:2: malformed JSON: Expecting property name enclosed " \
                           "in double quotes\n"


@pytest.mark.parametrize("args", [
    ("check", MODEL, "--no-such-option"),
    ("compile", MODEL, "--emit", "bitstream"),
    ("check",),
    ("no-such-command",),
])
def test_usage_error(args):
    r = invoke(*args)
    assert r.exit_code == 2
    assert r.stdout == ""
    assert r.stderr.splitlines()[-1].startswith("Error: ")


def test_internal_error_is_exit_3_without_a_traceback(monkeypatch: pytest.MonkeyPatch):
    import nmc.commands.check as check

    def bug(*a, **k):
        return {}["missing"]  # a KeyError: a bug in nmc, not bad input

    monkeypatch.delenv("NMC_DEBUG", raising=False)
    monkeypatch.setattr(check, "summarize", bug)
    r = invoke("check", MODEL)
    assert (r.exit_code, r.stdout) == (3, "")
    assert r.stderr == (
        "Internal error: KeyError: 'missing'\n"
        "This is a bug in nmc; rerun with NMC_DEBUG=1 for the traceback and report it.\n")


def test_internal_error_in_compile(monkeypatch: pytest.MonkeyPatch):
    import ir.text

    monkeypatch.delenv("NMC_DEBUG", raising=False)
    monkeypatch.setattr(ir.text, "print_graph", lambda g: 1 / 0)
    r = invoke("compile", MODEL, "--emit", "nmir")
    assert (r.exit_code, r.stdout) == (3, "")
    assert r.stderr.startswith("Internal error: ZeroDivisionError: division by zero\n")


def test_keyboard_interrupt_is_exit_130(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    import ir.text

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(ir.text, "print_graph", interrupted)
    out = tmp_path / "out.nmir"
    r = invoke("compile", MODEL, "--emit", "nmir", "-o", str(out))
    assert (r.exit_code, r.stdout, r.stderr) == (130, "", "Interrupted.\n")
    assert list(tmp_path.iterdir()) == []  # no partial output


def test_interrupt_while_writing_leaves_no_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Ctrl-C in the middle of writing the output: exit 130, the old file intact, no temp file."""
    import os

    out = tmp_path / "out.nmir"
    out.write_text("old\n")
    real_fsync = os.fsync

    def interrupt(fd):
        real_fsync(fd)
        raise KeyboardInterrupt  # after the data went out, before the rename

    monkeypatch.setattr(os, "fsync", interrupt)
    r = invoke("compile", MODEL, "--emit", "nmir", "-o", str(out))
    assert (r.exit_code, r.stderr) == (130, "Interrupted.\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nmir"]
    assert out.read_text() == "old\n"
