"""Two access points, blue and red, for the message handler tests (the real core codec and keys)."""

from __future__ import annotations

import datetime as dt
import itertools
import os

import pytest

from oots.as4 import msh
from oots.as4 import pmode as pm
from oots.as4.keys import KeyPair
from oots.as4.model import (
    CollaborationInfo,
    MessageInfo,
    Party,
    PartyId,
    PartyInfo,
    Property,
    Service,
    UserMessage,
)

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
T = pm.OOTS_PARTY_ID_TYPE


def side(
    own: str,
    other: str,
    pki: dict[str, object],
    *,
    endpoint: str | None = None,
    offsets: tuple[float, ...] = (10.0, 30.0),
) -> tuple[pm.PModeSet, msh.CoreCodec]:
    """The PModes and codec of access point ``own`` with ``other`` as its one partner."""
    ca, o_sign, o_enc = pki["ca"], pki[f"{other}_sign"], pki[f"{other}_encrypt"]
    assert isinstance(ca, KeyPair)
    assert isinstance(o_sign, KeyPair)
    assert isinstance(o_enc, KeyPair)
    partner = pm.Partner(
        other,
        pm.Party(f"{other}_gw"),
        endpoint or f"http://{other}.test/as4",
        o_sign.certificate,
        o_enc.certificate,
        (ca.certificate,),
    )
    ra = pm.ReceptionAwareness(retry=pm.RetrySchedule(offsets))
    pmodes = pm.PModeSet(pm.Party(f"{own}_gw"), (partner,), pm.oots_legs(), reception_awareness=ra)
    sign, enc = pki[f"{own}_sign"], pki[f"{own}_encrypt"]
    assert isinstance(sign, KeyPair)
    assert isinstance(enc, KeyPair)
    return pmodes, msh.CoreCodec(sign, enc, os.urandom)


def user_message(message_id: str, *, sender: str = "blue", receiver: str = "red", test: bool = False) -> UserMessage:
    if test:
        collab = CollaborationInfo(Service(pm.TEST_SERVICE), pm.TEST_ACTION, "c-test")
        props: tuple[Property, ...] = ()
    else:
        collab = CollaborationInfo(
            Service("QueryManager", "urn:oasis:names:tc:ebcore:ebrs:ebms:binding:1.0"), "ExecuteQueryRequest", "c-1"
        )
        props = (
            Property("originalSender", "BE1", "urn:cef.eu:names:identifier:EAS:0208"),
            Property("finalRecipient", "FR2", "urn:cef.eu:names:identifier:EAS:0009"),
        )
    return UserMessage(
        MessageInfo(message_id, NOW),
        PartyInfo(
            Party(PartyId(f"{sender}_gw", T), pm.GATEWAY_ROLE), Party(PartyId(f"{receiver}_gw", T), pm.GATEWAY_ROLE)
        ),
        collab,
        props,
    )


class MemoryInbox:
    """An Inbox in memory (the durable one is oots.as4.store; this one is for the pipeline tests)."""

    def __init__(self) -> None:
        self.records: dict[str, msh.InboundRecord] = {}
        self.fail = False

    def seen(self, message_id: str) -> msh.PriorReceipt | None:
        rec = self.records.get(message_id)
        if rec is None:
            return None
        partner = rec.message.pmode.partner.name if rec.message.pmode is not None else None
        return msh.PriorReceipt(rec.received_at, rec.receipt.content_type, rec.receipt.body, partner)

    def accept(self, record: msh.InboundRecord) -> msh.PriorReceipt | None:
        from oots.errors import StoreError

        if self.fail:
            raise StoreError("the database is down")
        prior = self.seen(record.message.message_id)
        if prior is None:
            self.records[record.message.message_id] = record
        return prior


def receiver(pmodes: pm.PModeSet, codec: msh.CoreCodec, inbox: MemoryInbox) -> msh.Receiver:
    ids = itertools.count(1)
    return msh.Receiver(pmodes, codec, inbox.seen, lambda: f"signal-{next(ids)}@{pmodes.own.party_id}")


# -- a real development PKI (the core's keys API) for the core codec and the flow tests -----------------


@pytest.fixture(scope="session")
def dev_pki() -> dict[str, object]:
    """A CA and, for blue, red and green, signing and encryption key pairs (generated per test session)."""
    from oots.as4 import keys

    ca = keys.make_ca("oots test CA", now=NOW)
    out: dict[str, object] = {"ca": ca}
    for name in ("blue", "red", "green"):
        out[f"{name}_sign"] = keys.issue(ca, f"{name} sign", now=NOW, purpose="sign")
        out[f"{name}_encrypt"] = keys.issue(ca, f"{name} encrypt", now=NOW, purpose="encrypt")
    return out
