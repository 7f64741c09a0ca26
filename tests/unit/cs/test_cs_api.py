"""The public API of oots.cs is what __all__ says, and every name in it exists."""

from __future__ import annotations

import oots.cs


def test_all_names_exist_and_are_sorted() -> None:
    for name in oots.cs.__all__:
        assert hasattr(oots.cs, name), name
    assert oots.cs.__all__ == sorted(oots.cs.__all__, key=lambda n: (not n.isupper(), n))
