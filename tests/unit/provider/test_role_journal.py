"""What the provider role writes in the audit journal for a request it answers."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import text

from oots import edm
from oots.as4 import profile
from oots.as4.model import Payload
from oots.audit.journal import Event
from oots.provider.intake import Answer
from oots.provider.role import ProviderRole

from .parties import GARCIA
from .test_intake import NOW, intake, names_its_request, request


@dataclass
class _Journal:
    entries: list[dict[str, Any]] = field(default_factory=list)

    def append(self, session: object, **entry: Any) -> None:
        self.entries.append(entry)


def _message(message_id: str) -> Any:
    return SimpleNamespace(
        property=lambda name: None,
        collaboration_info=SimpleNamespace(conversation_id="conversation-1"),
        message_info=SimpleNamespace(message_id=message_id),
    )


def _journalled(answer: Answer) -> list[dict[str, Any]]:
    journal = _Journal()
    role = ProviderRole(SimpleNamespace(), intake(), journal)  # type: ignore[arg-type]
    role._journal(object(), _message("request@er"), _message("reply@ep"), answer)  # type: ignore[arg-type]
    return journal.entries


def _against_the_rules() -> Answer:
    req, body = request()
    return intake().answer(body.replace(req.id.encode(), b"request-1"), sent=NOW)


def _person_too_long() -> Answer:
    _, body = request(dataclasses.replace(GARCIA, family_name="A" * 201))
    return intake().answer(body, sent=NOW)


@pytest.mark.parametrize(
    ("make", "reason"), [(_against_the_rules, "INVALID:RULES"), (_person_too_long, "INVALID:PERSON_TOO_LONG")]
)
def test_a_request_refused_as_invalid_is_journalled_rejected_with_its_code(make: Any, reason: str) -> None:
    # Before, a request that could be read but broke the rules (or the person limits) was journalled accepted.
    answer = make()
    assert answer.reason == reason
    assert answer.request is not None  # it could be read
    received, sent = _journalled(answer)
    assert received["event"] is Event.REQUEST_RECEIVED
    assert received["outcome"] == "rejected"
    assert received["details"]["code"] == "EDM:ERR:0003"
    assert received["details"]["reason"] == reason
    assert sent["event"] is Event.ERROR_SENT
    assert sent["outcome"] == "EDM:ERR:0003"


def test_a_request_answered_with_evidence_is_journalled_accepted() -> None:
    _, body = request()
    answer = intake().answer(body, sent=NOW)
    assert answer.code is None
    received, sent = _journalled(answer)
    assert received["outcome"] == "accepted"
    assert "code" not in received["details"]
    assert sent["event"] is Event.EVIDENCE_SENT


def _delivered(body: bytes, *, conversation: str, exchange: str | None = None) -> Any:
    exchange_property = None if exchange is None else SimpleNamespace(value=exchange)
    um = SimpleNamespace(
        property=lambda name: exchange_property if name == profile.EXCHANGE_ID else None,
        collaboration_info=SimpleNamespace(conversation_id=conversation),
        message_info=SimpleNamespace(message_id="request@er", timestamp=NOW),
    )
    return SimpleNamespace(user_message=um, payloads=(Payload("request@er", profile.REGREP_MIME_TYPE, body),))


@pytest.mark.parametrize("version", [edm.Version.EDM_V1, edm.Version.EDM_V2])
@pytest.mark.parametrize(
    ("conversation", "exchange", "named"),
    [("c" * 201, None, "ConversationId"), ("conversation-1", "e" * 201, "ExchangeId")],
)
def test_an_id_longer_than_the_journal_keeps_is_a_bad_request(
    version: edm.Version, conversation: str, exchange: str | None, named: str
) -> None:
    # Before, the id went on to the journal, whose column (200 characters) PostgreSQL refused: the
    # delivery failed and was retried instead of answered.
    req, body = request(version=version)
    role = ProviderRole(SimpleNamespace(), intake(), _Journal())  # type: ignore[arg-type]
    answer = role.decide(_delivered(body, conversation=conversation, exchange=exchange))
    assert isinstance(answer, Answer)
    assert (answer.code, answer.reason) == ("EDM:ERR:0003", "INVALID:ID_TOO_LONG")
    document = names_its_request(answer, req, version)
    assert document.detail == f"The request is not acceptable: {named} is longer than 200 characters."
    assert answer.rejected
    within = role.decide(_delivered(body, conversation="c" * 200, exchange="e" * 200))
    assert isinstance(within, Answer)
    assert within.code is None  # at the limit: answered as any other


@pytest.mark.postgres
def test_a_refused_over_long_id_is_journalled_without_it_on_postgresql(postgres_database: Any) -> None:
    from oots.audit.journal import Journal
    from oots.store import Database

    db = Database(postgres_database())
    try:
        db.migrate()
        journal = Journal("es-node", b"s" * 32, b"d" * 32, clock=lambda: NOW)
        role = ProviderRole(SimpleNamespace(), intake(), journal)  # type: ignore[arg-type]
        _, body = request()
        long_id = "c" * 300
        delivered = _delivered(body, conversation=long_id, exchange="e" * 300)
        answer = role.decide(delivered)
        assert isinstance(answer, Answer)
        with db.session() as session:
            role._journal(session, delivered.user_message, _message("reply@ep"), answer)
        with db.session() as session:
            rows = session.execute(
                text("SELECT event, outcome, conversation_id, exchange_id FROM audit_entries ORDER BY seq")
            ).all()
        assert [tuple(r) for r in rows] == [
            ("request_received", "rejected", None, None),
            ("error_sent", "EDM:ERR:0003", None, None),
        ]
    finally:
        db.dispose()
