"""Fixtures of the Common Services tests: the Commission's acceptance captures and a local test PKI."""

from __future__ import annotations

from pathlib import Path

import pytest

from cs.cs_helpers import CAPTURES, Capture, read_headers
from oots.cs.keys import CsPki, generate_pki


@pytest.fixture(scope="session")
def captures(spec_dir: Path) -> list[Capture]:
    folder = spec_dir / "common-services" / "acceptance-captures"
    return [
        Capture(name, (folder / f"{name}.xml").read_bytes(), read_headers(folder / f"{name}.headers"))
        for name in CAPTURES
    ]


@pytest.fixture(scope="session")
def pki() -> CsPki:
    """A fresh local Common Services PKI per test session (never committed)."""
    return generate_pki()


@pytest.fixture(scope="session")
def other_pki() -> CsPki:
    return generate_pki(organisation="someone else")
