"""Shared test fixtures. Test data comes from the specification kit in ../shared/spec."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPEC = Path(os.environ.get("OOTS_TEST_SPEC_DIR", ROOT.parent / "shared" / "spec"))


@pytest.fixture(scope="session")
def spec_dir() -> Path:
    """The read-only specification kit (official schemas, rules, samples, captures)."""
    if not SPEC.is_dir():
        pytest.skip(f"the specification kit is not at {SPEC} (set OOTS_TEST_SPEC_DIR)")
    return SPEC


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No OOTS_ settings from the caller's environment leak into a test."""
    for name in list(os.environ):
        if name.startswith("OOTS_") and not name.startswith("OOTS_TEST_"):
            monkeypatch.delenv(name)
    return monkeypatch
