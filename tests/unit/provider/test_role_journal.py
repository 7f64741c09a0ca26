"""What the provider role writes in the audit journal for a request it answers."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from oots.audit.journal import Event
from oots.provider.intake import Answer
from oots.provider.role import ProviderRole

from .parties import GARCIA
from .test_intake import NOW, intake, request


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
