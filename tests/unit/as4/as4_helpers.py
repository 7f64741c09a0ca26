"""Helpers and fixtures of the AS4 tests: pinned time, a test PKI (generated per session, never committed),
a seeded random source, an OOTS message. Test modules import the fixtures they use from here (a
conftest.py in this folder would shadow other folders' ``conftest`` imports)."""

from __future__ import annotations

import random as pyrandom
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from oots.as4 import keys, model, profile
from oots.as4.trust import TrustStore

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Pki:
    ca: keys.KeyPair
    sender_sign: keys.KeyPair
    sender_encrypt: keys.KeyPair
    receiver_sign: keys.KeyPair
    receiver_encrypt: keys.KeyPair
    stranger_sign: keys.KeyPair  # issued by another CA
    expired_sign: keys.KeyPair  # issued by our CA, expired before NOW

    @property
    def trust(self) -> TrustStore:
        return TrustStore.of([self.ca.certificate])


def make_pki() -> Pki:
    start = NOW - timedelta(days=1)
    ca = keys.make_ca("test CA", now=start)
    other = keys.make_ca("other CA", now=start)
    return Pki(
        ca=ca,
        sender_sign=keys.issue(ca, "sender sign", now=start, purpose="sign"),
        sender_encrypt=keys.issue(ca, "sender encrypt", now=start, purpose="encrypt"),
        receiver_sign=keys.issue(ca, "receiver sign", now=start, purpose="sign"),
        receiver_encrypt=keys.issue(ca, "receiver encrypt", now=start, purpose="encrypt"),
        stranger_sign=keys.issue(other, "stranger sign", now=start, purpose="sign"),
        expired_sign=keys.issue(
            ca, "expired sign", now=start, purpose="sign", days=1, not_before=NOW - timedelta(days=1, hours=1)
        ),
    )


def oots_message(message_id: str = "m-1@sender.example") -> model.UserMessage:
    return profile.user_message(
        message_id=message_id,
        timestamp=NOW,
        from_party=model.PartyId("sender-ap", profile.PARTY_ID_TYPE),
        to_party=model.PartyId("receiver-ap", profile.PARTY_ID_TYPE),
        original_sender=model.PartyId("C1", "urn:oasis:names:tc:ebcore:partyid-type:unregistered:BE"),
        final_recipient=model.PartyId("C4", "urn:cef.eu:names:identifier:EAS:9930"),
        conversation_id="5a0f0d4e-7a8f-4f1c-9d1a-1f6c2b5e9a11",
        exchange_id="0b7e9c52-31d3-4f8b-a1b2-7c3d4e5f6a7b",
        specification_id=profile.SPECIFICATION_ID_V2,
    )


@pytest.fixture(scope="session", name="pki")
def pki_fixture() -> Pki:
    return make_pki()


@pytest.fixture(name="rng")
def rng_fixture() -> Callable[[int], bytes]:
    """Deterministic bytes (tests only: production passes os.urandom)."""
    return pyrandom.Random(20261127).randbytes


@pytest.fixture(name="oots_message")
def oots_message_fixture() -> Callable[..., model.UserMessage]:
    """Builds an OOTS v2.0 UserMessage from sender-ap to receiver-ap (message id as argument)."""
    return oots_message
