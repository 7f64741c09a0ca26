"""Fixtures of the requester tests: a Common Services PKI per session."""

from __future__ import annotations

import pytest

from oots.cs.keys import CsPki, generate_pki


@pytest.fixture(scope="session")
def pki() -> CsPki:
    return generate_pki()
