"""Fixtures of the eID tests: a signing key per session, the in-memory network."""

from __future__ import annotations

from pathlib import Path

import pytest
from eid_helpers import Network

from oots.eid.testidp.keys import SigningKey, load_or_create


@pytest.fixture(scope="session")
def idp_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("idp")


@pytest.fixture(scope="session")
def idp_key(idp_dir: Path) -> SigningKey:
    return load_or_create(idp_dir)


@pytest.fixture
def network(idp_dir: Path, idp_key: SigningKey) -> Network:
    return Network(idp_dir)
