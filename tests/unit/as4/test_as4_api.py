"""The public API of oots.as4 is what ``__all__`` says, and every name in it exists."""

from __future__ import annotations

import importlib

import pytest

import oots.as4

MODULES = ["compression", "envelope", "errors", "keys", "message", "mime", "model", "profile", "trust", "wss"]


def test_package_all_resolves() -> None:
    for name in oots.as4.__all__:
        assert hasattr(oots.as4, name), name
    assert sorted(oots.as4.__all__, key=str.lower) == sorted(set(oots.as4.__all__), key=str.lower)


@pytest.mark.parametrize("module", MODULES)
def test_module_all_resolves(module: str) -> None:
    mod = importlib.import_module(f"oots.as4.{module}")
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name}"
