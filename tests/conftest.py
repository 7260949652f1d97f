"""Shared fixtures: the repository root, the shared/ folder beside it, and the optional-package rule.

A test that needs ``../shared`` or an optional package skips with a reason on a developer machine,
but fails under CI (``CI=true``): CI installs every extra, so a skip there hides a broken set-up.
"""

from __future__ import annotations

import importlib
import os

# Small matrix products are much slower with OpenBLAS threads on a loaded 2-core machine
# (measured 31 ms vs 0.26 ms for one emulator product); set before numpy is imported by tests.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
CONFORMANCE = SHARED / "conformance"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(module: str):
    """Import an optional module, or skip (fail in CI) when it is missing."""
    try:
        return importlib.import_module(module)
    except ImportError:
        if IN_CI:
            pytest.fail(f"optional package {module!r} is missing in CI; add it to .ci/run's extras")
        pytest.skip(f"optional package {module!r} is not installed")


def need_path(path: Path) -> Path:
    """Return ``path`` if it exists, else skip (fail in CI) naming it."""
    if not path.exists():
        if IN_CI:
            pytest.fail(f"{path} is missing in CI (shared/ should sit beside the clone)")
        pytest.skip(f"{path} is not present")
    return path


@pytest.fixture
def _only_when_asked(request):
    """Slow tests run only when selected (``-m slow``); a plain ``pytest`` (CI) skips them even
    when they are named on the command line."""
    mark = request.config.getoption("markexpr") or ""
    if "slow" not in mark or "not slow" in mark:
        pytest.skip("slow: run with -m slow")


@pytest.fixture
def conformance() -> Path:
    return need_path(CONFORMANCE)
