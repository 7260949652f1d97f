"""The layering rule, checked by parsing imports: the emulator sees bytes only."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

ALLOWED = {
    "emulator": {"numpy", "emulator"},
    "ir": {"numpy", "lark", "networkx", "ir"},
}


def imported_top_levels(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    tops = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            tops |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            tops.add(node.module.split(".")[0])
    return tops


def project_imports(package: str) -> dict[str, set[str]]:
    project = {"ir", "nmc", "emulator", "numpy", "lark", "networkx", "click"}
    return {
        str(p.relative_to(ROOT)): imported_top_levels(p) & project
        for p in sorted((ROOT / package).rglob("*.py"))
    }


def test_emulator_imports_neither_ir_nor_nmc():
    bad = {f: sorted(tops - ALLOWED["emulator"]) for f, tops in project_imports("emulator").items()}
    assert {f: t for f, t in bad.items() if t} == {}


def test_ir_does_not_import_nmc_or_emulator():
    bad = {f: sorted(tops - ALLOWED["ir"]) for f, tops in project_imports("ir").items()}
    assert {f: t for f, t in bad.items() if t} == {}


def test_the_checker_sees_a_forbidden_import(tmp_path):
    f = tmp_path / "x.py"
    f.write_text("import os\nfrom nmc.api import compile\nimport ir.graph as g\n")
    assert imported_top_levels(f) >= {"nmc", "ir"}
