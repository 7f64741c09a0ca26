"""The public API of oots.provider is what its __all__ says, and the matching core stays pure."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import oots.provider


def test_all_names_exist_and_are_sorted() -> None:
    for name in oots.provider.__all__:
        assert hasattr(oots.provider, name), name
    assert oots.provider.__all__ == sorted(oots.provider.__all__, key=lambda n: (not n.isupper(), n))


def test_matching_and_normalisation_are_pure() -> None:
    """matching.py and normalise.py import only the standard library and each other (no I/O layer)."""
    allowed = set(sys.stdlib_module_names) | {"oots"}
    for module in ("matching", "normalise"):
        tree = ast.parse((Path(oots.provider.__file__).parent / f"{module}.py").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, (module, name)
                if name.startswith("oots."):
                    assert name in {"oots.provider.normalise", "oots.errors"}, (module, name)
