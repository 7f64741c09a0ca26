"""Rows as the nodes store them, for tests that fill a database directly: only what a test cares
about is a parameter, the rest is filler the columns require."""

from __future__ import annotations

import datetime as dt

from oots.as4.models import As4Inbound, As4Outbound
from oots.requester.models import RequesterExchange
from oots.store.base import utcnow


def inbound_row(
    message_id: str, *, partner: str = "blue", state: str = "delivered", received_at: dt.datetime | None = None
) -> As4Inbound:
    """A message the access point received from ``partner`` (its receipt and header left empty)."""
    return As4Inbound(
        message_id=message_id,
        header={},
        from_party=f"|{partner}_gw",
        partner=partner,
        leg="l",
        state=state,
        received_at=received_at or utcnow(),
        signer=b"",
        references=[],
        receipt_content_type="application/soap+xml",
        receipt=b"<receipt/>",
    )


def outbound_row(
    message_id: str, *, partner: str = "red", state: str = "sent", first_sent_at: dt.datetime | None = None
) -> As4Outbound:
    """A message the access point sent to ``partner`` (its body left empty)."""
    return As4Outbound(
        message_id=message_id,
        partner=partner,
        leg="l",
        state=state,
        content_type="x",
        body=b"",
        references=[],
        first_sent_at=first_sent_at,
    )


def exchange_row(
    exchange_id: str, *, state: str = "completed", created_at: dt.datetime | None = None
) -> RequesterExchange:
    """A requester's exchange of procedure R1 asking FR, created (and last changed) at ``created_at``."""
    at = created_at or utcnow()
    return RequesterExchange(
        id=exchange_id,
        client_id="p",
        procedure="R1",
        country="FR",
        subject={},
        wanted=[],
        requirements=[],
        state=state,
        preview=False,
        version=1,
        created_at=at,
        updated_at=at,
        deadline=at + dt.timedelta(minutes=1),
    )
