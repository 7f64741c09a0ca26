"""Fixtures of the AS4 tests: the session's test PKI, a seeded random source, an OOTS message."""

from __future__ import annotations

import random as pyrandom
from collections.abc import Callable

import pytest
from as4_helpers import Pki, make_pki, oots_message

from oots.as4 import model


@pytest.fixture(scope="session")
def pki() -> Pki:
    return make_pki()


@pytest.fixture
def rng() -> Callable[[int], bytes]:
    """Deterministic bytes (tests only: production passes os.urandom)."""
    return pyrandom.Random(20261127).randbytes


@pytest.fixture(name="oots_message")
def oots_message_fixture() -> Callable[..., model.UserMessage]:
    """Builds an OOTS v2.0 UserMessage from sender-ap to receiver-ap (message id as argument)."""
    return oots_message
