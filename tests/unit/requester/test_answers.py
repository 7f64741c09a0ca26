"""What the requester keeps of a provider's answer, and what makes an answer the provider's error."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from sqlalchemy import func, select

from oots import edm
from oots.as4 import profile
from oots.as4.model import PartyId, Payload
from oots.as4.msh import VerifiedMessage
from oots.cs.keys import CsPki
from oots.requester.models import RequesterEvidence
from requester.helpers import Node, Provider, make_node
from requester.test_journeys import _journal, api, explicit, start, state


def _asked(tmp_path: Path, pki: CsPki, **options: object) -> tuple[Node, str, VerifiedMessage]:
    """A node whose exchange waits for its (first) answer, and that answer as the provider sends it."""
    node = make_node(tmp_path, pki, preview=False, **options)  # type: ignore[arg-type]
    client = api(node)
    ex_id = start(node, client)
    explicit(node, client, ex_id)
    return node, ex_id, Provider().evidence(*node.outbox.last_request())


def _with_evidences(
    answer: VerifiedMessage, hrefs: Sequence[str], attachments: Sequence[Payload] | None = None
) -> VerifiedMessage:
    """``answer`` with one evidence (a copy of its first) per href, and ``attachments`` (else its own)."""
    doc = edm.parse(answer.payloads[0].data)
    assert isinstance(doc, edm.QueryResponse)
    first = doc.packages[0].evidences[0]
    evidences = tuple(
        dataclasses.replace(
            first,
            id=f"urn:uuid:{i:08d}-0000-4000-8000-000000000000",
            attachment=dataclasses.replace(first.attachment, href=href),
        )
        for i, href in enumerate(hrefs)
    )
    doc = dataclasses.replace(doc, packages=(dataclasses.replace(doc.packages[0], evidences=evidences),))
    regrep = Payload(answer.payloads[0].content_id, profile.REGREP_MIME_TYPE, edm.to_xml(doc))
    return VerifiedMessage(answer.user_message, (regrep, *(attachments or answer.payloads[1:])), None, ())


def _stored(node: Node, ex_id: str) -> tuple[int, int]:
    with node.ctx.database.session() as session:
        count, size = session.execute(
            select(func.count(), func.coalesce(func.sum(func.length(RequesterEvidence.content)), 0)).where(
                RequesterEvidence.exchange_id == ex_id
            )
        ).one()
    return int(count), int(size)


def _failed_by_the_provider(node: Node, ex_id: str) -> str:
    view = state(api(node), ex_id)
    assert (view["state"], view["reason"]) == ("failed", "provider_error"), view
    assert view["evidence"] == []
    assert ("exchange_failed", "provider_error") in [(r["event"], r["outcome"]) for r in _journal(node)]
    return str(view["detail"])


def test_an_attachment_backs_one_evidence_only(tmp_path: Path, pki: CsPki) -> None:
    # Before, 50 evidences naming one 1 MiB attachment were kept as 50 copies of it.
    node, ex_id, answer = _asked(tmp_path, pki)
    cid = answer.payloads[1].content_id
    node.deliver(_with_evidences(answer, [f"cid:{cid}"] * 3))
    assert "names an attachment another evidence of the answer names too" in _failed_by_the_provider(node, ex_id)
    assert _stored(node, ex_id) == (0, 0)


def test_an_answer_carries_at_most_max_evidence_per_answer(tmp_path: Path, pki: CsPki) -> None:
    node, ex_id, answer = _asked(tmp_path, pki, requester={"max_evidence_per_answer": 2})
    parts = [Payload(f"ev{i}@provider.oots", "application/pdf", b"%PDF-1.7 " + bytes([i])) for i in range(3)]
    node.deliver(_with_evidences(answer, [f"cid:{p.content_id}" for p in parts], parts))
    assert "carries 3 evidences, more than the 2 taken" in _failed_by_the_provider(node, ex_id)
    assert _stored(node, ex_id) == (0, 0)


def test_two_evidences_each_with_its_attachment_are_kept(tmp_path: Path, pki: CsPki) -> None:
    node, ex_id, answer = _asked(tmp_path, pki, requester={"max_evidence_per_answer": 2})
    parts = [Payload(f"ev{i}@provider.oots", "application/pdf", b"%PDF-1.7 " + bytes([i])) for i in range(2)]
    node.deliver(_with_evidences(answer, [f"cid:{p.content_id}" for p in parts], parts))
    assert state(api(node), ex_id)["state"] == "completed"
    assert _stored(node, ex_id) == (2, 2 * 10)


def test_the_evidence_of_an_exchange_is_capped_in_bytes(tmp_path: Path, pki: CsPki) -> None:
    provider = Provider()
    node = make_node(tmp_path, pki, two_requirements=True, preview=False)
    client = api(node)
    ex_id = start(node, client)
    explicit(node, client, ex_id)
    first = provider.evidence(*node.outbox.last_request())
    size = sum(len(p.data) for p in first.payloads[1:])
    # the same node, its exchange's evidence capped at the first answer's bytes
    capped = make_node(
        tmp_path, pki, two_requirements=True, preview=False, requester={"max_evidence_bytes_per_exchange": size}
    )
    capped.outbox.sent.extend(node.outbox.sent)
    capped.deliver(first)  # exactly the cap: kept
    assert state(client, ex_id)["state"] == "requesting"
    capped.deliver(Provider("BE", "residence").evidence(*capped.outbox.last_request()))
    view = state(client, ex_id)
    assert (view["state"], view["reason"]) == ("failed", "provider_error")
    assert view["detail"] == f"the evidence of the exchange is larger than {size} bytes"
    assert _stored(node, ex_id) == (1, size)  # the first answer's evidence stays


def _with_first_evidence(answer: VerifiedMessage, **changes: object) -> VerifiedMessage:
    """``answer`` with its first evidence changed: ``title`` of its attachment, ``format`` of its
    distribution, or the evidence's own fields."""
    doc = edm.parse(answer.payloads[0].data)
    assert isinstance(doc, edm.QueryResponse)
    evidence = doc.packages[0].evidences[0]
    if "title" in changes:
        evidence = dataclasses.replace(
            evidence, attachment=dataclasses.replace(evidence.attachment, title=changes.pop("title"))
        )
    if "format" in changes:
        metadata = evidence.metadata
        distribution = dataclasses.replace(metadata.distribution, format=changes.pop("format"))
        evidence = dataclasses.replace(evidence, metadata=dataclasses.replace(metadata, distribution=distribution))
    evidence = dataclasses.replace(evidence, **changes)  # type: ignore[arg-type]
    package = dataclasses.replace(doc.packages[0], evidences=(evidence, *doc.packages[0].evidences[1:]))
    doc = dataclasses.replace(doc, packages=(package, *doc.packages[1:]))
    regrep = Payload(answer.payloads[0].content_id, profile.REGREP_MIME_TYPE, edm.to_xml(doc))
    return VerifiedMessage(answer.user_message, (regrep, *answer.payloads[1:]), None, ())


def _error(node: Node, code: str, **changes: object) -> VerifiedMessage:
    """An error answer to the node's last request, with ``code`` and the preview ``changes``."""
    message, request = node.outbox.last_request()
    if code == "EDM:ERR:0002":
        answer = Provider().preview(message, request, "https://ep.example/preview/1")
    else:
        answer = Provider().error(message, request, "EDM:ERR:0008")
    doc = edm.parse(answer.payloads[0].data)
    assert isinstance(doc, edm.QueryError)
    doc = dataclasses.replace(doc, code=code, **changes)  # type: ignore[arg-type]
    regrep = Payload(answer.payloads[0].content_id, profile.REGREP_MIME_TYPE, edm.to_xml(doc))
    return VerifiedMessage(answer.user_message, (regrep,), None, ())


def check_provider_texts_longer_than_their_columns(
    tmp_path: Path, pki: CsPki, database: Callable[[], str] | None = None
) -> None:
    """Before, on PostgreSQL, a text longer than its column stopped the answer's delivery job for good
    (StringDataRightTruncation, tried again until dead) and the exchange ended as "no answer"."""

    def asked(name: str) -> tuple[Node, str, VerifiedMessage]:
        return _asked(tmp_path / name, pki, database_url=database() if database is not None else "")

    node, ex_id, answer = asked("title")
    node.deliver(_with_first_evidence(answer, title="x" * 600 + ".pdf"))
    view = state(api(node), ex_id)
    assert view["state"] == "completed"  # a title is only shown: shortened
    assert view["evidence"][0]["title"] == "x" * 499 + "…"

    node, ex_id, answer = asked("id")
    node.deliver(_with_first_evidence(answer, id="urn:uuid:" + "1" * 300))
    assert _failed_by_the_provider(node, ex_id) == "an evidence id is longer than 255 characters"

    node, ex_id, answer = asked("format")
    node.deliver(_with_first_evidence(answer, format="application/" + "x" * 300))
    assert "is longer than 255 characters" in _failed_by_the_provider(node, ex_id)

    node, ex_id, _ = asked("code")
    node.deliver(_error(node, "EDM:ERR:" + "9" * 40))
    assert _failed_by_the_provider(node, ex_id) == "the provider's error code is longer than 40 characters"

    node, ex_id, _ = asked("location")
    node.deliver(_error(node, "EDM:ERR:0002", preview_location="https://ep.example/" + "p" * 2000))
    assert _failed_by_the_provider(node, ex_id) == "the preview location is longer than 2000 characters"

    node, ex_id, _ = asked("method")
    node.deliver(_error(node, "EDM:ERR:0002", preview_method="DELETE-EVERYTHING"))
    assert _failed_by_the_provider(node, ex_id) == "the preview method is neither GET nor POST"


def test_provider_texts_longer_than_their_columns(tmp_path: Path, pki: CsPki) -> None:
    check_provider_texts_longer_than_their_columns(tmp_path, pki)


@pytest.mark.postgres
def test_provider_texts_longer_than_their_columns_on_postgresql(
    tmp_path: Path, pki: CsPki, postgres_database: Callable[[], str]
) -> None:
    check_provider_texts_longer_than_their_columns(tmp_path, pki, postgres_database)


def _from(answer: VerifiedMessage, party: PartyId) -> VerifiedMessage:
    um = answer.user_message
    sender = dataclasses.replace(um.party_info.from_party, party_id=party)
    um = dataclasses.replace(um, party_info=dataclasses.replace(um.party_info, from_party=sender))
    return VerifiedMessage(um, answer.payloads, None, ())


def test_an_answer_from_another_access_point_is_dropped(tmp_path: Path, pki: CsPki) -> None:
    # Before, an answer naming our request id and conversation completed the exchange whichever access
    # point sent it (another country's, say).
    node, ex_id, answer = _asked(tmp_path, pki)
    asked = node.outbox.last_request()[0].party_info.to_party.party_id
    assert asked.value == "AP_BE_01"
    node.deliver(_from(answer, PartyId("AP_FR_01", profile.PARTY_ID_TYPE)))
    node.deliver(_from(answer, PartyId("AP_BE_01", "urn:example:another-party-id-type")))
    view = state(api(node), ex_id)
    assert (view["state"], view["evidence"]) == ("requesting", [])
    dropped = [r for r in _journal(node) if r["event"] == "answer_dropped"]
    assert [r["outcome"] for r in dropped] == ["unmatched", "unmatched"]
    node.deliver(answer)  # the access point asked
    assert state(api(node), ex_id)["state"] == "completed"


@pytest.mark.postgres
def test_an_unmatched_answer_with_a_long_conversation_id_is_journaled_without_it(
    tmp_path: Path, pki: CsPki, postgres_database: Callable[[], str]
) -> None:
    # Before, the journal entry of the dropped answer did not fit its column: the delivery failed for good.
    node, ex_id, answer = _asked(tmp_path, pki, database_url=postgres_database())
    um = answer.user_message
    info = dataclasses.replace(um.collaboration_info, conversation_id="c" * 300)
    node.deliver(VerifiedMessage(dataclasses.replace(um, collaboration_info=info), answer.payloads, None, ()))
    (dropped,) = [r for r in _journal(node) if r["event"] == "answer_dropped"]
    assert (dropped["outcome"], dropped["conversation_id"]) == ("unmatched", None)
    assert state(api(node), ex_id)["state"] == "requesting"
