"""Whole exchanges through the portal API against the real Common Services and sample provider answers."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import httpx
import pytest
from cs.cs_helpers import AppTransport
from sqlalchemy import select
from starlette.applications import Starlette

from oots import edm
from oots.as4 import profile
from oots.as4.model import Payload
from oots.as4.msh import VerifiedMessage
from oots.cs.keys import CsPki
from oots.errors import XmlError
from oots.provider.intake import Intake
from oots.provider.samples import sample_data_service
from oots.requester import discovery
from oots.requester.exchange import EXPIRE_JOB, _preview_location_ok
from oots.store.models import QueueJob
from oots.validation import validate
from requester.helpers import (
    API_KEY,
    BIRTH_REQUIREMENT,
    OTHER_KEY,
    RESIDENCE_REQUIREMENT,
    Node,
    Provider,
    catalogue_text,
    make_node,
    person_json,
)

AUTH = {"Authorization": f"Bearer {API_KEY}"}


def api(node: Node) -> httpx.Client:
    app = Starlette(routes=list(node.role.routes()))
    return httpx.Client(transport=AppTransport(app), base_url="https://portal.example")


def start(node: Node, client: httpx.Client, **body: Any) -> str:
    payload = {"procedure": "R1", "country": "BE", "person": person_json(), **body}
    reply = client.post("/api/v1/exchanges", json=payload, headers=AUTH)
    assert reply.status_code == 202, reply.text
    assert reply.json()["state"] == "discovering"
    node.drain()
    return str(reply.json()["id"])


def state(client: httpx.Client, ex_id: str) -> dict[str, Any]:
    reply = client.get(f"/api/v1/exchanges/{ex_id}", headers=AUTH)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def explicit(node: Node, client: httpx.Client, ex_id: str) -> None:
    reply = client.post(f"/api/v1/exchanges/{ex_id}/explicit-request", headers=AUTH)
    assert reply.status_code == 202, reply.text


def requesting(tmp_path: Path, pki: CsPki) -> tuple[Node, httpx.Client, str]:
    """A node without preview, its API client, and an exchange whose request has gone out."""
    node = make_node(tmp_path, pki, preview=False)
    client = api(node)
    ex_id = start(node, client)
    explicit(node, client, ex_id)
    return node, client, ex_id


def test_without_preview(tmp_path: Path, pki: CsPki) -> None:
    node = make_node(tmp_path, pki, preview=False)
    client = api(node)
    ex_id = start(node, client)
    view = state(client, ex_id)
    assert view["state"] == "awaiting_explicit_request"
    (req,) = view["requirements"]
    assert req["id"] == BIRTH_REQUIREMENT
    assert req["chosen_list"]
    assert node.outbox.sent == []  # nothing goes out before the explicit request
    explicit(node, client, ex_id)
    message, request = node.outbox.last_request()
    assert request.explicit_request_given is True
    assert request.possibility_for_preview is False
    assert request.specification is edm.Version.EDM_V1  # the access service conforms to v1.0
    assert request.procedure == "R1"
    props = {p.name: p.value for p in message.message_properties}
    assert props["finalRecipient"] == "0308357159"
    assert props["originalSender"] == "NL12345678"
    assert message.party_info.to_party.party_id.value == "AP_BE_01"
    report = validate(node.outbox.sent[-1][1][0].data)
    assert report.valid, report
    assert state(client, ex_id)["state"] == "requesting"

    node.deliver(Provider().evidence(message, request))
    view = state(client, ex_id)
    assert view["state"] == "completed"
    read = client.get(f"/api/v1/exchanges/{ex_id}", headers=AUTH)
    assert read.headers["cache-control"] == "no-store"  # the exchange holds names and choices too
    (pdf,) = view["evidence"]  # the request asks for one distribution (the first the DSD offers: PDF)
    assert pdf["media_type"] == "application/pdf"
    assert pdf["requirement"] == BIRTH_REQUIREMENT
    assert pdf["title"].endswith(".pdf")  # the attachment's title: the file name the provider gave
    assert pdf["evidence_type_title"] == "Birth certificate"  # what it is
    assert pdf["issuing_authority"]  # who issued it (the evidence's IssuingAuthority)
    got = client.get(pdf["href"].removeprefix("https://portal.example"), headers=AUTH)
    assert got.status_code == 200
    assert got.content.startswith(b"%PDF")
    assert got.headers["cache-control"] == "no-store"  # personal data: no cache keeps it
    assert got.headers["content-disposition"] == f'attachment; filename="evidence-{pdf["id"]}.pdf"'
    assert pdf["size"] == len(got.content)  # counted by the database: the view leaves the document there
    listed = client.get(f"/api/v1/exchanges/{ex_id}/evidence", headers=AUTH).json()
    assert listed == view["evidence"]

    # a document is found only through its own exchange, by the exchange's own client
    other_ex = start(node, client)
    wrong = [
        (f"/api/v1/exchanges/{other_ex}/evidence/{pdf['id']}", AUTH, f"the exchange has no evidence {pdf['id']}"),
        (f"/api/v1/exchanges/{ex_id}/evidence/{pdf['id'] + 1}", AUTH, f"the exchange has no evidence {pdf['id'] + 1}"),
        (f"/api/v1/exchanges/{ex_id}/evidence/{2**64}", AUTH, f"the exchange has no evidence {2**64}"),
        (f"/api/v1/exchanges/{ex_id}/evidence/-1", AUTH, "the exchange has no evidence -1"),
        (f"/api/v1/exchanges/nope/evidence/{pdf['id']}", AUTH, "there is no exchange"),
        (f"/api/v1/exchanges/{ex_id}/evidence/{pdf['id']}", {"Authorization": f"Bearer {OTHER_KEY}"}, "no exchange"),
    ]
    for url, headers, detail in wrong:
        reply = client.get(url, headers=headers)
        assert reply.status_code == 404, url
        assert detail in reply.json()["detail"]


def test_with_preview_accepted(tmp_path: Path, pki: CsPki) -> None:
    node = make_node(tmp_path, pki)
    client = api(node)
    ex_id = start(node, client, return_url="https://portal.example/application/7")
    explicit(node, client, ex_id)
    first_message, first = node.outbox.last_request()
    assert first.possibility_for_preview is True
    assert first.preview_location is None
    provider = Provider()
    node.deliver(provider.preview(first_message, first, "https://ep.example/preview/abc"))
    view = state(client, ex_id)
    assert view["state"] == "awaiting_preview"
    assert view["preview"] == {"location": "https://ep.example/preview/abc", "method": "GET"}
    second_message, second = node.outbox.last_request()
    assert len(node.outbox.sent) == 2
    assert second.preview_location == "https://ep.example/preview/abc"
    assert second.id != first.id
    conv = second_message.collaboration_info.conversation_id
    assert conv == first_message.collaboration_info.conversation_id
    assert validate(node.outbox.sent[-1][1][0].data).valid

    back = client.get(f"/requester/return/{ex_id}", follow_redirects=False)
    assert back.status_code == 303
    assert back.headers["location"] == f"https://portal.example/application/7?exchange={ex_id}"

    node.deliver(provider.evidence(second_message, second))
    assert state(client, ex_id)["state"] == "completed"


def test_with_preview_someone_else_logged_in(tmp_path: Path, pki: CsPki) -> None:
    """EDM:ERR:0004 to the second request: the preview's login was not the applicant, not a refusal."""
    node = make_node(tmp_path, pki)
    client = api(node)
    ex_id = start(node, client)
    explicit(node, client, ex_id)
    provider = Provider()
    node.deliver(provider.preview(*node.outbox.last_request(), "https://ep.example/preview/x"))
    node.deliver(provider.error(*node.outbox.last_request(), "EDM:ERR:0004"))
    view = state(client, ex_id)
    assert view["state"] == "failed"
    assert view["reason"] == "preview_not_the_subject"
    assert view["reason_text"].startswith("The person who logged in at the preview was not the applicant")
    assert view["detail"].startswith("EDM:ERR:0004")


def test_an_evidence_type_the_provider_does_not_offer_is_not_available_not_unknown_person(
    tmp_path: Path, pki: CsPki
) -> None:
    """A real intake offering no data service for the evidence type asked: the applicant reads that the
    evidence is not available there, not that the authority has no record of them."""
    node = make_node(tmp_path, pki)
    client = api(node)
    ex_id = start(node, client)
    explicit(node, client, ex_id)
    message, _ = node.outbox.last_request()
    sent = message.message_info.timestamp
    intake = Intake([sample_data_service("BE", "diplomas")], clock=lambda: sent)
    answer = intake.answer(node.outbox.sent[-1][1][0].data, sent=sent)
    node.deliver(Provider().answered(message, answer.action, answer.payloads))
    view = state(client, ex_id)
    assert view["state"] == "failed"
    assert view["reason"] == "evidence_not_available"
    assert view["detail"].startswith("EDM:ERR:0006")


def test_with_preview_request_refused(tmp_path: Path, pki: CsPki) -> None:
    """EDM:ERR:0003 to the second request keeps its own reason: the user did not refuse anything."""
    node = make_node(tmp_path, pki)
    client = api(node)
    ex_id = start(node, client)
    explicit(node, client, ex_id)
    provider = Provider()
    node.deliver(provider.preview(*node.outbox.last_request(), "https://ep.example/preview/x"))
    node.deliver(provider.error(*node.outbox.last_request(), "EDM:ERR:0003"))
    assert state(client, ex_id)["reason"] == "request_refused"


def test_with_preview_everything_refused(tmp_path: Path, pki: CsPki) -> None:
    """The provider's answer when the user refused every document: an empty response (TC08)."""
    node = make_node(tmp_path, pki)
    client = api(node)
    ex_id = start(node, client)
    explicit(node, client, ex_id)
    provider = Provider()
    node.deliver(provider.preview(*node.outbox.last_request(), "https://ep.example/preview/x"))
    message, second = node.outbox.last_request()
    empty = edm.evidence_response(second, provider=provider.agent, evidences=[])
    regrep = Payload("regrep@provider.oots", profile.REGREP_MIME_TYPE, edm.to_xml(empty))
    um = provider._message(message, profile.ACTION_EXECUTE_QUERY_RESPONSE)
    node.deliver(VerifiedMessage(um, (regrep,), None, ()))
    view = state(client, ex_id)
    assert (view["state"], view["reason"]) == ("failed", "preview_refused")
    assert view["evidence"] == []


def test_plain_http_preview_locations_only_from_allowed_hosts() -> None:
    allowed = ("127.0.0.1", "localhost")
    assert _preview_location_ok("https://ep.example/preview/x", ())
    assert not _preview_location_ok("http://127.0.0.1:8011/preview/x", ())
    assert _preview_location_ok("http://127.0.0.1:8011/preview/x", allowed)
    assert _preview_location_ok("http://localhost/preview/x", allowed)
    assert not _preview_location_ok("http://ep.example/preview/x", allowed)
    assert not _preview_location_ok("http://127.0.0.1.evil.example/preview/x", allowed)
    assert not _preview_location_ok("javascript:alert(1)", allowed)


def test_person_not_found(tmp_path: Path, pki: CsPki) -> None:
    node, client, ex_id = requesting(tmp_path, pki)
    node.deliver(Provider().error(*node.outbox.last_request(), "EDM:ERR:0004"))
    view = state(client, ex_id)
    assert (view["state"], view["reason"]) == ("failed", "person_not_found")


def test_additional_input(tmp_path: Path, pki: CsPki) -> None:
    node = make_node(tmp_path, pki, preview=False)
    client = api(node)
    ex_id = start(node, client, country="DE")
    view = state(client, ex_id)
    assert view["state"] == "awaiting_user_choice"
    (req,) = view["requirements"]
    ((cls, slot),) = req["types"].items()
    (question,) = slot["questions"]
    assert question["kind"] == "jurisdiction"
    assert question["level"] == "NUTS1"
    bad = client.post(
        f"/api/v1/exchanges/{ex_id}/choices",
        json={"requirements": {req["id"]: {"answers": {cls: {"jurisdiction": "not a code"}}}}},
        headers=AUTH,
    )
    assert bad.status_code == 422
    reply = client.post(
        f"/api/v1/exchanges/{ex_id}/choices",
        json={"requirements": {req["id"]: {"answers": {cls: {"jurisdiction": "DE6"}}}}},
        headers=AUTH,
    )
    assert reply.status_code == 202, reply.text
    node.drain()
    view = state(client, ex_id)
    assert view["state"] == "awaiting_explicit_request"
    (provider,) = view["requirements"][0]["types"][cls]["providers"]
    assert provider["name"] == "Registry Office Hamburg-Mitte"
    explicit(node, client, ex_id)
    _message, request = node.outbox.last_request()
    assert request.evidence_provider.names[0].value == "Registry Office Hamburg-Mitte"


def _answer(client: httpx.Client, ex_id: str, req_id: str, cls: str, value: str, **more: Any) -> httpx.Response:
    choice = {"answers": {cls: {"jurisdiction": value}}, **more}
    return client.post(f"/api/v1/exchanges/{ex_id}/choices", json={"requirements": {req_id: choice}}, headers=AUTH)


def test_new_answers_and_an_old_provider_in_one_choice_are_refused(tmp_path: Path, pki: CsPki) -> None:
    # Before, the provider checked against the old list was kept with the new answers' providers,
    # and the explicit request never answered (a StopIteration in the step's thread).
    node = make_node(tmp_path, pki, preview=False)
    client = api(node)
    ex_id = start(node, client, country="DE")
    (req,) = state(client, ex_id)["requirements"]
    ((cls, _slot),) = req["types"].items()
    assert _answer(client, ex_id, req["id"], cls, "DE6").status_code == 202
    node.drain()
    (old,) = state(client, ex_id)["requirements"][0]["types"][cls]["providers"]
    both = _answer(client, ex_id, req["id"], cls, "DE2", providers={cls: old["id"]})
    assert both.status_code == 422, both.text
    assert "after answering its questions" in both.json()["detail"]
    view = state(client, ex_id)
    assert view["state"] == "awaiting_explicit_request"  # nothing was recorded
    assert view["requirements"][0]["types"][cls]["chosen_provider"] == old["id"]
    # the new answers alone: the new providers, the old choice gone, and the explicit request goes out
    assert _answer(client, ex_id, req["id"], cls, "DE2").status_code == 202
    node.drain()
    slot = state(client, ex_id)["requirements"][0]["types"][cls]
    assert old["id"] not in {p["id"] for p in slot["providers"]}
    assert slot["chosen_provider"] in {p["id"] for p in slot["providers"]} | {None}
    if slot["chosen_provider"] is None:
        pick = slot["providers"][0]["id"]
        reply = client.post(
            f"/api/v1/exchanges/{ex_id}/choices",
            json={"requirements": {req["id"]: {"providers": {cls: pick}}}},
            headers=AUTH,
        )
        assert reply.status_code == 202, reply.text
        node.drain()
    explicit(node, client, ex_id)
    assert state(client, ex_id)["state"] == "requesting"


def test_a_chosen_provider_no_longer_on_offer_is_chosen_again() -> None:
    offered = [{"id": "a"}, {"id": "b"}]
    slot = {"questions": [], "answers": {}, "providers": offered, "chosen_provider": "gone", "error": None}
    lists = [{"id": "l", "evidence_types": [{"classification": "c"}]}]
    entry = {"id": "r", "name": "R", "upload": False, "lists": lists, "chosen_list": "l", "types": {"c": slot}}
    assert not discovery.resolve(None, [entry], "DE")  # type: ignore[arg-type]  # the DSD is not asked
    assert slot["chosen_provider"] is None
    slot["providers"] = offered[:1]
    assert discovery.resolve(None, [entry], "DE")  # type: ignore[arg-type]
    assert slot["chosen_provider"] == "a"


def test_an_explicit_request_with_a_provider_not_on_offer_is_409(tmp_path: Path, pki: CsPki) -> None:
    # Before, making the requests raised StopIteration in the step's thread: the call never answered.
    import copy

    from oots.requester.models import RequesterExchange

    node = make_node(tmp_path, pki, preview=False)
    client = api(node)
    ex_id = start(node, client, country="DE")
    (req,) = state(client, ex_id)["requirements"]
    ((cls, _slot),) = req["types"].items()
    assert _answer(client, ex_id, req["id"], cls, "DE6").status_code == 202
    node.drain()
    with node.ctx.database.session() as session:  # as an exchange stored by an older version may be
        row = session.get(RequesterExchange, ex_id)
        assert row is not None
        entries = copy.deepcopy(row.requirements)
        entries[0]["types"][cls]["chosen_provider"] = "gone|gone"
        row.requirements = entries
    reply = client.post(f"/api/v1/exchanges/{ex_id}/explicit-request", headers=AUTH, timeout=10)
    assert reply.status_code == 409, reply.text
    assert "no provider offered is chosen" in reply.json()["detail"]


@pytest.mark.parametrize("wrong", ["FR1", "DE9"])
def test_a_wrong_answer_asks_the_question_again(tmp_path: Path, pki: CsPki, wrong: str) -> None:
    # FR1: the DSD refuses the value (DSD:ERR:0006); DE9: no data service there (DSD:ERR:0001).
    # Before, either failed the exchange with no_provider.
    node = make_node(tmp_path, pki, preview=False)
    client = api(node)
    ex_id = start(node, client, country="DE")
    (req,) = state(client, ex_id)["requirements"]
    ((cls, slot),) = req["types"].items()
    assert _answer(client, ex_id, req["id"], cls, wrong).status_code == 202
    node.drain()
    view = state(client, ex_id)
    assert (view["state"], view["reason"]) == ("awaiting_user_choice", None)
    again = view["requirements"][0]["types"][cls]
    assert again["error"] == "invalid_answer"
    assert again["questions"] == slot["questions"]
    assert (again["answers"], again["providers"], again["chosen_provider"]) == ({}, [], None)
    assert _answer(client, ex_id, req["id"], cls, "DE6").status_code == 202
    node.drain()
    view = state(client, ex_id)
    assert view["state"] == "awaiting_explicit_request"
    assert view["requirements"][0]["types"][cls]["error"] is None


def test_alternative_lists(tmp_path: Path, pki: CsPki) -> None:
    node = make_node(tmp_path, pki, preview=False)
    client = api(node)
    ex_id = start(node, client, procedure="S1", country="FR", person=person_json("Lefèvre"))
    view = state(client, ex_id)
    assert view["state"] == "awaiting_user_choice"
    (req,) = view["requirements"]
    assert req["id"] == RESIDENCE_REQUIREMENT
    assert len(req["lists"]) == 2
    assert req["chosen_list"] is None
    chosen = req["lists"][1]
    wrong = client.post(
        f"/api/v1/exchanges/{ex_id}/choices",
        json={"requirements": {req["id"]: {"list": "no-such-list"}}},
        headers=AUTH,
    )
    assert wrong.status_code == 422
    reply = client.post(
        f"/api/v1/exchanges/{ex_id}/choices", json={"requirements": {req["id"]: {"list": chosen["id"]}}}, headers=AUTH
    )
    assert reply.status_code == 202
    node.drain()
    view = state(client, ex_id)
    while view["state"] == "awaiting_user_choice":  # a list may need answers or a provider choice too
        entry = view["requirements"][0]
        choice: dict[str, Any] = {"answers": {}, "providers": {}}
        for cls, slot in entry["types"].items():
            if slot["questions"] and not slot["answers"]:
                choice["answers"][cls] = {q["id"]: (q.get("values") or ["FR1"])[0] for q in slot["questions"]}
            elif slot["providers"] and slot["chosen_provider"] is None:
                choice["providers"][cls] = slot["providers"][0]["id"]
        client.post(f"/api/v1/exchanges/{ex_id}/choices", json={"requirements": {entry["id"]: choice}}, headers=AUTH)
        node.drain()
        view = state(client, ex_id)
    assert view["state"] == "awaiting_explicit_request"
    explicit(node, client, ex_id)
    wanted = [t["classification"].rpartition("/")[2] for t in chosen["evidence_types"]]
    asked = []
    while True:  # every type of the chosen list is asked for, one after the other
        message, request = node.outbox.last_request()
        asked.append(request.evidence_request.evidence_type_classification.rpartition("/")[2])
        node.deliver(Provider("FR", "residence").evidence(message, request))
        if state(client, ex_id)["state"] != "requesting":
            break
    assert asked == wanted
    assert state(client, ex_id)["state"] == "completed"


def test_two_requirements_in_sequence(tmp_path: Path, pki: CsPki) -> None:
    node = make_node(tmp_path, pki, two_requirements=True, preview=False)
    client = api(node)
    ex_id = start(node, client)
    view = state(client, ex_id)
    assert [r["id"] for r in view["requirements"]] == [BIRTH_REQUIREMENT, RESIDENCE_REQUIREMENT]
    assert view["state"] == "awaiting_explicit_request", view
    explicit(node, client, ex_id)
    assert len(node.outbox.sent) == 1  # one at a time
    provider = Provider()
    node.deliver(provider.evidence(*node.outbox.last_request()))
    view = state(client, ex_id)
    assert view["state"] == "requesting"
    assert len(node.outbox.sent) == 2
    _, second = node.outbox.last_request()
    # (a v1.0 request names the Semantic Repository by its v1.0 domain)
    assert second.requirements[0].identifier.rpartition("/")[2] == RESIDENCE_REQUIREMENT.rpartition("/")[2]
    node.deliver(Provider("BE", "residence").evidence(*node.outbox.last_request()))
    view = state(client, ex_id)
    assert view["state"] == "completed"
    assert {e["requirement"] for e in view["evidence"]} == {BIRTH_REQUIREMENT, RESIDENCE_REQUIREMENT}


def test_the_first_request_is_made_and_packed_before_the_explicit_request_step(tmp_path: Path, pki: CsPki) -> None:
    # the API makes (and has the outbox pack) the first request in a read transaction, then the step
    # sends exactly that one; the second request of the exchange is made in its own step as before
    node = make_node(tmp_path, pki, two_requirements=True, preview=False)
    client = api(node)
    ex_id = start(node, client)
    explicit(node, client, ex_id)
    first, _ = node.outbox.last_request()
    assert node.outbox.packed == [("packed", first.message_info.message_id)]
    node.deliver(Provider().evidence(*node.outbox.last_request()))
    assert len(node.outbox.sent) == 2
    assert node.outbox.packed[1] is None  # the next request: made and packed in the answer's transaction


def test_a_request_made_ahead_for_an_older_version_is_not_sent(tmp_path: Path, pki: CsPki) -> None:
    node = make_node(tmp_path, pki, preview=False)
    client = api(node)
    ex_id = start(node, client)
    requester = node.role.requester
    with node.ctx.database.session() as session:
        ahead = requester.explicit_request_ahead(session, ex_id, "portal")
    assert ahead is not None
    stale = dataclasses.replace(ahead, version=ahead.version - 1)
    with node.ctx.database.session(immediate=True) as session:
        requester.give_explicit_request(session, ex_id, "portal", ahead=stale)
    message, request = node.outbox.last_request()
    assert message.message_info.message_id != ahead.message.message_info.message_id
    assert request.id != ahead.request.id
    assert node.outbox.packed == [None]  # made in the step itself
    assert state(client, ex_id)["state"] == "requesting"


def test_nothing_is_made_ahead_for_an_unknown_partner_or_another_state(tmp_path: Path, pki: CsPki) -> None:
    node = make_node(tmp_path, pki, preview=False)
    client = api(node)
    ex_id = start(node, client)
    requester = node.role.requester
    node.outbox.known.clear()
    with node.ctx.database.session() as session:
        assert requester.explicit_request_ahead(session, ex_id, "portal") is None
    node.outbox.known.add("AP_BE_01")
    explicit(node, client, ex_id)
    with node.ctx.database.session() as session:
        assert requester.explicit_request_ahead(session, ex_id, "portal") is None  # requesting now


def test_unreachable_provider(tmp_path: Path, pki: CsPki) -> None:
    node = make_node(tmp_path, pki, preview=False)
    node.outbox.known.clear()
    client = api(node)
    ex_id = start(node, client)
    explicit(node, client, ex_id)
    view = state(client, ex_id)
    assert (view["state"], view["reason"]) == ("failed", "provider_unreachable")


def test_a_provider_whose_certificate_expired_ends_the_exchange_with_a_reason(tmp_path: Path, pki: CsPki) -> None:
    node = make_node(tmp_path, pki, preview=False)
    reason = "the encryption certificate of AS4 partner be (AP_BE_01) expired on 2026-05-01 00:00 UTC"
    node.outbox.unusable["AP_BE_01"] = reason
    client = api(node)
    ex_id = start(node, client)
    requester = node.role.requester
    with node.ctx.database.session() as session:
        assert requester.explicit_request_ahead(session, ex_id, "portal") is None
    explicit(node, client, ex_id)
    view = state(client, ex_id)
    assert (view["state"], view["reason"], view["detail"]) == ("failed", "provider_unreachable", reason)
    assert node.outbox.sent == []


def test_a_second_request_to_a_provider_whose_certificate_expired_meanwhile_ends_the_exchange(
    tmp_path: Path, pki: CsPki, caplog: pytest.LogCaptureFixture
) -> None:
    # Before, the certificate error escaped the delivery of the preview answer: the delivery was
    # retried (then dead-lettered) and the exchange waited for its timeout.
    node = make_node(tmp_path, pki)
    client = api(node)
    ex_id = start(node, client)
    explicit(node, client, ex_id)
    first_message, first = node.outbox.last_request()
    reason = "the encryption certificate of AS4 partner be (AP_BE_01) expired on 2026-11-27 10:00 UTC"
    node.outbox.unusable["AP_BE_01"] = reason  # it expired while the provider was answering
    with caplog.at_level("WARNING", logger="oots.requester"):
        node.deliver(Provider().preview(first_message, first, "https://ep.example/preview/abc"))
    view = state(client, ex_id)
    assert (view["state"], view["reason"], view["detail"]) == ("failed", "provider_unreachable", reason)
    assert len(node.outbox.sent) == 1  # the second request was not sent
    with node.ctx.database.session() as session:
        entries = sorted(node.role.requester.journal.search(session, exchange_id=ex_id), key=lambda e: e.seq)
    steps = [(e.event, e.outcome) for e in entries]
    assert steps[-2:] == [("preview_required", "EDM:ERR:0002"), ("exchange_failed", "provider_unreachable")]
    (line,) = [r.getMessage() for r in caplog.records]
    assert ex_id in line
    assert reason in line


def test_preview_abandoned_times_out(tmp_path: Path, pki: CsPki) -> None:
    node = make_node(tmp_path, pki)
    client = api(node)
    ex_id = start(node, client)
    explicit(node, client, ex_id)
    provider = Provider()
    node.deliver(provider.preview(*node.outbox.last_request(), "https://ep.example/preview/y"))
    node.clock.advance(node.ctx.settings.requester.preview_timeout_seconds - 1)
    node.drain()
    assert state(client, ex_id)["state"] == "awaiting_preview"
    node.clock.advance(2)
    node.drain()
    view = state(client, ex_id)
    assert (view["state"], view["reason"]) == ("expired", "timeout")
    # a late answer changes nothing
    node.deliver(provider.evidence(*node.outbox.last_request()))
    assert state(client, ex_id)["state"] == "expired"


def test_unmatched_answer_is_dropped(tmp_path: Path, pki: CsPki) -> None:
    node, client, ex_id = requesting(tmp_path, pki)
    message, request = node.outbox.last_request()
    import dataclasses

    from oots.as4.model import CollaborationInfo

    other = dataclasses.replace(
        message,
        collaboration_info=CollaborationInfo(
            message.collaboration_info.service, message.collaboration_info.action, "another-conversation"
        ),
    )
    node.deliver(Provider().evidence(other, request))
    assert state(client, ex_id)["state"] == "requesting"


def _without_request_id(answer: VerifiedMessage, conversation: str | None = None) -> VerifiedMessage:
    doc = edm.parse(answer.payloads[0].data)
    assert isinstance(doc, edm.QueryError)
    payload = Payload(
        "regrep@provider.oots", profile.REGREP_MIME_TYPE, edm.to_xml(dataclasses.replace(doc, request_id=None))
    )
    message = answer.user_message
    if conversation is not None:
        info = message.collaboration_info
        message = dataclasses.replace(
            message, collaboration_info=dataclasses.replace(info, conversation_id=conversation)
        )
    return VerifiedMessage(message, (payload,), None, ())


def test_an_error_without_request_id_in_our_conversation_is_matched(tmp_path: Path, pki: CsPki) -> None:
    # A provider refusing a request it could not read (EDM:ERR:0003, too large) may name no request id.
    # Before, the answer was dropped (and not journaled) and the exchange expired with "did not answer".
    node, client, ex_id = requesting(tmp_path, pki)
    node.deliver(_without_request_id(Provider().error(*node.outbox.last_request(), "EDM:ERR:0003")))
    view = state(client, ex_id)
    assert (view["state"], view["reason"]) == ("failed", "request_refused")
    assert ("error_received", "EDM:ERR:0003") in [(r["event"], r["outcome"]) for r in _journal(node)]


def test_an_error_without_request_id_nor_our_conversation_is_journaled_dropped(tmp_path: Path, pki: CsPki) -> None:
    node, client, ex_id = requesting(tmp_path, pki)
    answer = Provider().error(*node.outbox.last_request(), "EDM:ERR:0003")
    node.deliver(_without_request_id(answer, conversation="another-conversation"))
    assert state(client, ex_id)["state"] == "requesting"
    (dropped,) = [r for r in _journal(node) if r["event"] == "answer_dropped"]
    assert (dropped["outcome"], dropped["conversation_id"]) == ("unmatched", "another-conversation")


@pytest.mark.parametrize("procedure", ["NO-SUCH-PROCEDURE"])
def test_unknown_procedure_fails(tmp_path: Path, pki: CsPki, procedure: str) -> None:
    node = make_node(tmp_path, pki)
    client = api(node)
    ex_id = start(node, client, procedure=procedure)
    view = state(client, ex_id)
    assert (view["state"], view["reason"]) == ("failed", "procedure_unknown")


def test_a_plain_http_preview_location_is_refused(tmp_path: Path, pki: CsPki) -> None:
    import dataclasses

    from oots.as4 import profile
    from oots.as4.model import Payload
    from oots.as4.msh import VerifiedMessage

    node = make_node(tmp_path, pki)
    client = api(node)
    ex_id = start(node, client)
    explicit(node, client, ex_id)
    good = Provider().preview(*node.outbox.last_request(), "https://ep.example/preview/z")
    doc = edm.parse(good.payloads[0].data)
    assert isinstance(doc, edm.QueryError)
    bad = dataclasses.replace(doc, preview_location="http://ep.example/preview/z")
    payload = Payload("regrep@provider.oots", profile.REGREP_MIME_TYPE, edm.to_xml(bad))
    node.deliver(VerifiedMessage(good.user_message, (payload,), None, ()))
    view = state(client, ex_id)
    assert (view["state"], view["reason"]) == ("failed", "provider_error")
    assert len(node.outbox.sent) == 1  # no second request went out


def test_a_return_from_the_preview_after_the_evidence_is_journaled_too(tmp_path: Path, pki: CsPki) -> None:
    node = make_node(tmp_path, pki)
    client = api(node)
    ex_id = start(node, client, return_url="https://portal.example/application/9")
    assert client.get(f"/requester/return/{ex_id}", follow_redirects=False).status_code == 303  # no preview yet
    explicit(node, client, ex_id)
    provider = Provider()
    node.deliver(provider.preview(*node.outbox.last_request(), "https://ep.example/preview/z"))
    node.deliver(provider.evidence(*node.outbox.last_request()))  # the evidence is first...
    assert state(client, ex_id)["state"] == "completed"
    for _ in range(2):  # ...then the user is back: journaled once
        assert client.get(f"/requester/return/{ex_id}", follow_redirects=False).status_code == 303
    steps = [(r["event"], r["outcome"]) for r in _journal(node)]
    assert steps[-2:] == [("evidence_received", "evidence"), ("preview_returned", "completed")]
    assert [e for e, _ in steps].count("preview_returned") == 1


def _journal(node: Node) -> list[dict[str, Any]]:
    from oots.audit.journal import load_journal

    journal = load_journal(node.ctx.settings)
    with node.ctx.database.session() as session:
        rows = journal.export(list(journal.entries(session)))
        assert journal.verify(session).ok
    return rows


def test_the_requester_journals_every_step(tmp_path: Path, pki: CsPki) -> None:
    node = make_node(tmp_path, pki)
    client = api(node)
    ex_id = start(node, client, return_url="https://portal.example/application/9")
    explicit(node, client, ex_id)
    first_message, first = node.outbox.last_request()
    provider = Provider()
    preview = provider.preview(first_message, first, "https://ep.example/preview/secret-token")
    node.deliver(preview)
    second_message, second = node.outbox.last_request()
    assert client.get(f"/requester/return/{ex_id}", follow_redirects=False).status_code == 303
    assert client.get(f"/requester/return/{ex_id}", follow_redirects=False).status_code == 303  # journaled once
    answer = provider.evidence(second_message, second)
    node.deliver(answer)
    node.deliver(answer)  # a duplicate arrives late: dropped, and journaled as such
    assert state(client, ex_id)["state"] == "completed"

    rows = _journal(node)
    assert {r["side"] for r in rows} == {"requester"}
    steps = [(r["event"], r["outcome"], r["message_ids"]) for r in rows]
    assert steps == [
        ("exchange_created", "discovering", []),
        ("discovery_done", "awaiting_explicit_request", []),
        ("explicit_request_given", "requesting", []),
        ("request_sent", "sent", [first_message.message_info.message_id]),
        ("preview_required", "EDM:ERR:0002", [preview.message_id, first_message.message_info.message_id]),
        ("request_sent", "preview_done", [second_message.message_info.message_id]),
        ("preview_returned", "awaiting_preview", []),
        ("evidence_received", "evidence", [answer.message_id, second_message.message_info.message_id]),
        ("answer_dropped", "late", [answer.message_id, second_message.message_info.message_id]),
    ]
    conversation = first_message.collaboration_info.conversation_id
    assert {r["conversation_id"] for r in rows[3:]} == {conversation}
    assert rows[3]["details"]["request_id"] == first.id
    assert rows[5]["details"]["request_id"] == second.id
    assert rows[4]["details"] == {"preview_origin": "https://ep.example"}  # never the location's token
    assert rows[3]["personal"] == {"person_identifier": person_json()["natural_person"]["identifier"]["value"]}
    everything = str([(r["details"], r["outcome"]) for r in rows])
    assert "Peeters" not in everything
    assert person_json()["natural_person"]["identifier"]["value"] not in everything


def test_the_requester_journals_errors_and_failures(tmp_path: Path, pki: CsPki) -> None:
    node, _, _ = requesting(tmp_path, pki)
    message, request = node.outbox.last_request()
    error = Provider().error(message, request, "EDM:ERR:0004")
    node.deliver(error)
    unreachable = make_node(tmp_path / "other", pki, preview=False)
    unreachable.outbox.known.clear()
    other = api(unreachable)
    other_id = start(unreachable, other)
    explicit(unreachable, other, other_id)
    cancelled = start(unreachable, other)
    assert other.post(f"/api/v1/exchanges/{cancelled}/cancel", headers=AUTH).status_code == 200

    steps = [(r["event"], r["outcome"]) for r in _journal(node)]
    assert steps[-2:] == [("error_received", "EDM:ERR:0004"), ("exchange_failed", "person_not_found")]
    assert _journal(node)[-2]["message_ids"] == [error.message_id, message.message_info.message_id]
    other_steps = [(r["exchange_id"], r["event"], r["outcome"]) for r in _journal(unreachable)]
    assert (other_id, "exchange_failed", "provider_unreachable") in other_steps
    assert not any(e == other_id and s == "request_sent" for e, s, _ in other_steps)  # nothing went out
    assert (cancelled, "cancelled", "cancelled") in other_steps


def test_the_requester_journals_timeouts(tmp_path: Path, pki: CsPki) -> None:
    node, client, ex_id = requesting(tmp_path, pki)
    node.clock.advance(node.ctx.settings.requester.response_timeout_seconds + 1)
    node.drain()
    assert state(client, ex_id)["state"] == "expired"
    last = _journal(node)[-1]
    assert (last["event"], last["outcome"], last["details"]["state"]) == ("timeout", "timeout", "expired")


@pytest.mark.parametrize("end", ["evidence", "error", "cancel", "unreachable"])
def test_an_exchange_that_ends_is_left_alone_past_its_deadline(tmp_path: Path, pki: CsPki, end: str) -> None:
    # An exchange has no timeout job (the sweep ends those due): nothing is left queued when it ends,
    # and the sweep leaves it as it ended.
    node = make_node(tmp_path, pki, preview=False)
    client = api(node)
    ex_id = start(node, client)
    if end == "cancel":
        assert client.post(f"/api/v1/exchanges/{ex_id}/cancel", headers=AUTH).status_code == 200
    else:
        if end == "unreachable":
            node.outbox.known.clear()
        explicit(node, client, ex_id)
        if end != "unreachable":  # (an unreachable provider ends the exchange in the explicit request's step)
            message, request = node.outbox.last_request()
            answer = Provider().evidence(message, request) if end == "evidence" else None
            node.deliver(answer or Provider().error(message, request, "EDM:ERR:0004"))
    ended = state(client, ex_id)
    assert ended["state"] == {"evidence": "completed"}.get(end, "failed")
    with node.ctx.database.session() as session:
        assert session.scalars(select(QueueJob.id).where(QueueJob.kind == EXPIRE_JOB)).all() == []
    node.clock.advance(node.ctx.settings.requester.choice_timeout_seconds + 1)
    assert node.drain() == 0  # nothing to end, nothing to claim
    assert state(client, ex_id) == ended


def test_the_request_names_the_requirement_in_every_language_the_broker_gave(tmp_path: Path, pki: CsPki) -> None:
    # Before, the requirement's name went to the provider in English only, even where the Evidence Broker
    # gave it in the provider's language too.
    text = catalogue_text().replace(
        'name = { EN = "Proof of birth" }', 'name = { EN = "Proof of birth", FR = "Preuve de naissance" }', 1
    )
    node = make_node(tmp_path, pki, catalogue=text, preview=False)
    client = api(node)
    ex_id = start(node, client)
    explicit(node, client, ex_id)
    _, request = node.outbox.last_request()
    (requirement,) = request.requirements
    assert {(t.value, t.lang) for t in requirement.names} == {("Proof of birth", "EN"), ("Preuve de naissance", "FR")}


def test_an_answer_is_parsed_by_its_deliverys_preparer_not_in_its_write_transaction(
    tmp_path: Path, pki: CsPki, monkeypatch: pytest.MonkeyPatch
) -> None:
    node, client, ex_id = requesting(tmp_path, pki)
    answer = Provider().evidence(*node.outbox.last_request())
    action = answer.user_message.collaboration_info.action
    prepare = node.role.as4_preparers()[action]
    assert node.role.as4_preparers().keys() == node.role.as4_handlers().keys()
    prepare(answer)  # before the transaction: parsed and kept for the handler
    parsed: list[bytes] = []
    real_parse = edm.parse

    def counted(data: bytes) -> Any:
        parsed.append(data)
        return real_parse(data)

    monkeypatch.setattr("oots.requester.exchange.edm.parse", counted)
    node.deliver(answer)
    assert parsed == []  # the handler took the document the preparer read
    assert state(client, ex_id)["state"] == "completed"


def test_an_answer_that_does_not_parse_ahead_is_dropped_by_its_handler(tmp_path: Path, pki: CsPki) -> None:
    node, client, ex_id = requesting(tmp_path, pki)
    answer = Provider().evidence(*node.outbox.last_request())
    broken = dataclasses.replace(answer, payloads=[dataclasses.replace(answer.payloads[0], data=b"<not-xml")])
    action = answer.user_message.collaboration_info.action
    with pytest.raises(XmlError):
        node.role.as4_preparers()[action](broken)  # the queue logs it; the handler does the work
    node.deliver(broken)
    assert state(client, ex_id)["state"] == "requesting"  # dropped as unmatched: the request still waits
    node.deliver(answer)
    assert state(client, ex_id)["state"] == "completed"
