"""The portal API's boundary: keys, ownership, states, input errors, the OpenAPI description, webhooks."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from cs.cs_helpers import AppTransport
from starlette.applications import Starlette

from oots.cs.keys import CsPki
from oots.errors import SecurityError
from oots.requester import Reason, RequestStatus, State, verify_webhook
from oots.requester.api import MAX_BODY_BYTES, _BodyLimit
from oots.requester.webhooks import DELIVERY_HEADER, SIGNATURE_HEADER, sign, webhook_handler
from oots.settings import RequesterSettings
from oots.store.queue import Job
from requester.helpers import API_KEY, OTHER_KEY, Node, make_node, person_json

AUTH = {"Authorization": f"Bearer {API_KEY}"}


def client_of(node: Node) -> httpx.Client:
    return httpx.Client(
        transport=AppTransport(Starlette(routes=list(node.role.routes()))), base_url="https://portal.example"
    )


@pytest.fixture
def node(tmp_path: Path, pki: CsPki) -> Node:
    return make_node(tmp_path, pki)


def create(client: httpx.Client, **extra: object) -> httpx.Response:
    body = {"procedure": "R1", "country": "BE", "person": person_json(), **extra}
    return client.post("/api/v1/exchanges", json=body, headers=AUTH)


def test_keys(node: Node) -> None:
    client = client_of(node)
    body = {"procedure": "R1", "country": "BE", "person": person_json()}
    assert client.post("/api/v1/exchanges", json=body).status_code == 401
    wrong = client.post("/api/v1/exchanges", json=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == "Bearer"
    assert wrong.headers["content-type"] == "application/problem+json"
    by_header = client.post("/api/v1/exchanges", json=body, headers={"X-API-Key": API_KEY})
    assert by_header.status_code == 202
    assert by_header.headers["location"].endswith(by_header.json()["id"])


def test_exchanges_belong_to_their_client(node: Node) -> None:
    client = client_of(node)
    ex_id = create(client).json()["id"]
    other = {"Authorization": f"Bearer {OTHER_KEY}"}
    assert client.get(f"/api/v1/exchanges/{ex_id}", headers=other).status_code == 404
    assert client.post(f"/api/v1/exchanges/{ex_id}/cancel", headers=other).status_code == 404
    assert client.get(f"/api/v1/exchanges/{ex_id}", headers=AUTH).status_code == 200
    assert client.get("/api/v1/exchanges/nope", headers=AUTH).status_code == 404


def test_steps_out_of_order_conflict(node: Node) -> None:
    client = client_of(node)
    ex_id = create(client).json()["id"]
    early = client.post(f"/api/v1/exchanges/{ex_id}/explicit-request", headers=AUTH)
    assert early.status_code == 409
    assert "discovering" in early.json()["detail"]
    cancelled = client.post(f"/api/v1/exchanges/{ex_id}/cancel", headers=AUTH)
    assert cancelled.json()["state"] == "failed"
    assert cancelled.json()["reason"] == "cancelled"
    assert client.post(f"/api/v1/exchanges/{ex_id}/cancel", headers=AUTH).status_code == 409
    node.drain()  # the discovery job finds the exchange ended and does nothing
    assert client.get(f"/api/v1/exchanges/{ex_id}", headers=AUTH).json()["state"] == "failed"


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"country": "Belgium"}, "country"),
        ({"person": {"natural_person": {"family_name": "X"}}}, "Person needs"),
        ({"person": {"robot": {}}}, "robot"),
        ({"person": {"natural_person": {**person_json()["natural_person"], "level_of_assurance": None}}}, "level"),
        ({"surprise": 1}, "surprise"),
        ({"return_url": "javascript:alert(1)"}, "return_url"),
        ({"preview": "yes"}, "preview: Input should be a valid boolean"),  # before, "yes" was true
        ({"preview": 1}, "preview: Input should be a valid boolean"),
        (
            {"person": {"natural_person": {**person_json()["natural_person"], "family_name": "P" * 201}}},
            "person.natural_person.family_name is longer than 200 characters",
        ),
        (
            {"person": {"natural_person": {**person_json()["natural_person"], "place_of_birth": "B" * 1001}}},
            "person.natural_person.place_of_birth is longer than 1000 characters",
        ),
    ],
)
def test_bad_input_is_422_with_the_place(node: Node, change: dict[str, object], where: str) -> None:
    reply = create(client_of(node), **change)
    assert reply.status_code == 422, reply.text
    assert where in reply.json()["detail"]


def test_a_body_too_large_is_413_and_nothing_is_started(node: Node) -> None:
    # Before, a 5 MB family name was accepted and sent; the provider refused it (EDM:ERR:0003).
    client = client_of(node)
    huge = {"natural_person": {**person_json()["natural_person"], "family_name": "P" * 70_000}}
    reply = create(client, person=huge)
    assert reply.status_code == 413, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
    assert "larger than 65536 bytes" in reply.json()["detail"]
    assert node.drain() == 0
    assert create(client).status_code == 202  # a body of the usual size still goes through


def test_a_body_without_length_is_counted_as_it_comes() -> None:
    reached: list[bytes] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append((await receive())["body"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def post(chunks: int) -> int:
        parts = [{"type": "http.request", "body": b"x" * 1000, "more_body": True} for _ in range(chunks)]
        parts.append({"type": "http.request", "body": b"", "more_body": False})
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return parts.pop(0)

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "POST", "headers": [(b"content-type", b"application/json")]}
        await _BodyLimit(app, limit=MAX_BODY_BYTES)(scope, receive, send)
        return int(sent[0]["status"])

    assert asyncio.run(post(100)) == 413
    assert reached == []
    assert asyncio.run(post(10)) == 204
    assert reached == [b"x" * 10_000]


@pytest.mark.parametrize("upload", ["yes", "true", 1])
def test_a_choice_to_upload_is_a_json_boolean(node: Node, upload: object) -> None:
    # Before, {"upload": "yes"} was taken as true.
    client = client_of(node)
    ex_id = create(client).json()["id"]
    node.drain()
    (req,) = client.get(f"/api/v1/exchanges/{ex_id}", headers=AUTH).json()["requirements"]
    choice = {"requirements": {req["id"]: {"upload": upload}}}
    reply = client.post(f"/api/v1/exchanges/{ex_id}/choices", json=choice, headers=AUTH)
    assert reply.status_code == 422, reply.text
    assert reply.json()["detail"].endswith("upload: Input should be a valid boolean")


def test_openapi_description(node: Node) -> None:
    doc = client_of(node).get("/api/openapi.json").json()
    assert {"/v1/exchanges", "/v1/exchanges/{exchange_id}/choices"} <= set(doc["paths"])


def test_openapi_names_states_and_reasons_as_the_code_does(node: Node) -> None:
    # Before, state and reason were plain strings in the description.
    schemas = client_of(node).get("/api/openapi.json").json()["components"]["schemas"]
    assert schemas["State"]["enum"] == [s.value for s in State]
    assert schemas["Reason"]["enum"] == [r.value for r in Reason]
    state, reason = {"$ref": "#/components/schemas/State"}, {"$ref": "#/components/schemas/Reason"}
    for model in ("Accepted", "ExchangeOut", "ExchangeSummaryOut"):
        assert schemas[model]["properties"]["state"] == state
    for model in ("ExchangeOut", "ExchangeSummaryOut"):
        assert reason in schemas[model]["properties"]["reason"]["anyOf"]


def test_openapi_names_a_request_status_as_the_code_does(node: Node) -> None:
    # Before, requests[].status was a plain string whose values only its description listed.
    schemas = client_of(node).get("/api/openapi.json").json()["components"]["schemas"]
    assert schemas["RequestStatus"]["enum"] == [s.value for s in RequestStatus]
    assert schemas["RequestOut"]["properties"]["status"]["$ref"] == "#/components/schemas/RequestStatus"


def test_openapi_declares_the_headers_of_a_start(node: Node) -> None:
    # Before, Idempotent-Replayed (and Location) were answered but not declared: a generated client
    # had no way to read them.
    client = client_of(node)
    responses = client.get("/api/openapi.json").json()["paths"]["/v1/exchanges"]["post"]["responses"]
    for status in ("200", "202"):
        headers = responses[status]["headers"]
        assert headers["Idempotent-Replayed"]["schema"] == {"type": "string", "enum": ["true"]}
        assert {"Location", "Preference-Applied"} <= set(headers)
    page = client.get("/api/docs").text  # the reference page lists them with the answers
    assert "<code>Idempotent-Replayed</code> (`true` when this start was sent before" in page


def test_openapi_declares_the_errors_each_call_gives(node: Node) -> None:
    # Before, the description listed only 200/202/422 (FastAPI's validation error, not the API's shape).
    doc = client_of(node).get("/api/openapi.json").json()
    errors = {
        ("post", "/v1/exchanges"): {"401", "403", "413", "422"},
        ("get", "/v1/exchanges"): {"401", "403", "422"},
        ("get", "/v1/exchanges/{exchange_id}"): {"401", "403", "404", "422"},
        ("post", "/v1/exchanges/{exchange_id}/choices"): {"401", "403", "404", "409", "413", "422"},
        ("post", "/v1/exchanges/{exchange_id}/explicit-request"): {"400", "401", "403", "404", "409", "413"},
        ("post", "/v1/exchanges/{exchange_id}/cancel"): {"401", "403", "404", "409", "413"},
        ("get", "/v1/exchanges/{exchange_id}/evidence"): {"401", "403", "404"},
        ("get", "/v1/exchanges/{exchange_id}/evidence/{evidence_row}"): {"401", "403", "404", "422"},
    }
    for (method, path), statuses in errors.items():
        responses = doc["paths"][path][method]["responses"]
        assert {s for s in responses if s >= "400"} == statuses, (method, path)
        for status in statuses:
            content = responses[status]["content"]
            assert content == {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    problem = doc["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"title", "status", "detail", "error_id"}
    assert "HTTPValidationError" not in json.dumps(doc)


def test_signed_webhooks_on_every_change(tmp_path: Path, pki: CsPki) -> None:
    calls: list[httpx.Request] = []

    def hook(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503 if len(calls) == 1 else 204)

    node = make_node(
        tmp_path, pki, webhook_url="https://portal.example/hook", webhook_transport=httpx.MockTransport(hook)
    )
    client = client_of(node)
    ex_id = create(client).json()["id"]
    node.drain()  # discovery, then the webhooks (the first delivery fails once and is retried)
    for _ in range(5):  # the retry is due after the back-off (on the node's clock)
        node.clock.advance(1)
        node.drain()
    assert len(calls) == 3
    bodies = [json.loads(c.content) for c in calls]
    delivered = {(b["version"], b["state"]) for b in bodies}
    assert delivered == {(1, "discovering"), (2, "awaiting_explicit_request")}
    assert all(b["exchange"] == ex_id for b in bodies)
    for call in calls:
        verify_webhook(b"s3cret-webhook-key", call.content, call.headers[SIGNATURE_HEADER])
    with pytest.raises(SecurityError):
        verify_webhook(b"another key", calls[0].content, calls[0].headers[SIGNATURE_HEADER])
    with pytest.raises(SecurityError, match="too old"):
        verify_webhook(b"k", b"{}", sign(b"k", b"{}", 1000), now=5000)


def test_a_webhook_delivery_keeps_its_id_on_every_attempt(tmp_path: Path, pki: CsPki) -> None:
    # Before, a retried webhook carried nothing to tell it from a new call of the same change.
    calls: list[httpx.Request] = []

    def hook(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503 if len(calls) == 1 else 204)

    node = make_node(
        tmp_path, pki, webhook_url="https://portal.example/hook", webhook_transport=httpx.MockTransport(hook)
    )
    create(client_of(node))
    node.drain()
    for _ in range(5):
        node.clock.advance(1)
        node.drain()
    by_version: dict[int, set[str]] = {}
    for call in calls:
        body = json.loads(call.content)
        assert body["delivery"] == call.headers[DELIVERY_HEADER]
        by_version.setdefault(body["version"], set()).add(call.headers[DELIVERY_HEADER])
        verify_webhook(
            b"s3cret-webhook-key", call.content, call.headers[SIGNATURE_HEADER], delivery=call.headers[DELIVERY_HEADER]
        )
    first, retried = calls[0], next(c for c in calls[1:] if json.loads(c.content)["version"] == 1)
    assert retried.headers[DELIVERY_HEADER] == first.headers[DELIVERY_HEADER]  # the retry: the same id
    assert [len(ids) for ids in by_version.values()] == [1, 1]
    assert by_version[1] != by_version[2]  # two deliveries, two ids
    with pytest.raises(SecurityError, match="delivery"):  # the header alone changed
        verify_webhook(b"s3cret-webhook-key", first.content, first.headers[SIGNATURE_HEADER], delivery="other")
    forged = first.content.replace(first.headers[DELIVERY_HEADER].encode(), b"0" * 32)
    with pytest.raises(SecurityError, match="does not match"):  # the body's id is signed
        verify_webhook(b"s3cret-webhook-key", forged, first.headers[SIGNATURE_HEADER], delivery="0" * 32)


def test_a_webhook_queued_before_delivery_ids_is_named_by_its_job() -> None:
    calls: list[httpx.Request] = []
    config = RequesterSettings.model_validate(
        {
            "identifier": "NL12345678",
            "scheme_id": "urn:cef.eu:names:identifier:EAS:0106",
            "clients": [
                {
                    "id": "portal",
                    "api_key_sha256": "a" * 64,
                    "webhook_url": "https://portal.example/hook",
                    "webhook_secret": "s" * 16,
                }
            ],
        }
    )
    handle = webhook_handler(config, transport=httpx.MockTransport(lambda r: calls.append(r) or httpx.Response(204)))
    payload = {"client": "portal", "exchange": "x", "state": "failed", "reason": "timeout", "version": 3, "at": "t"}
    job = Job(7, "requester.webhook", "x:3", payload, 1, 5, dt.datetime.now(dt.UTC))
    handle(None, job)  # type: ignore[arg-type]
    handle(None, replace(job, attempts=2))  # type: ignore[arg-type]
    assert [c.headers[DELIVERY_HEADER] for c in calls] == ["job-7", "job-7"]
    assert json.loads(calls[0].content)["delivery"] == "job-7"


def test_waiting_for_the_next_change(node: Node) -> None:
    # a portal without webhooks asks for the exchange once its version is above the one it has
    client = client_of(node)
    created = create(client).json()
    ex_id, version = created["id"], created["version"]
    url = f"/api/v1/exchanges/{ex_id}"
    unchanged = client.get(url, params={"version_after": version, "wait": 0.05}, headers=AUTH)
    assert unchanged.status_code == 200
    assert (unchanged.json()["state"], unchanged.json()["version"]) == ("discovering", version)

    waiting = ThreadPoolExecutor(1)
    answer = waiting.submit(
        lambda: client_of(node).get(url, params={"version_after": version, "wait": 60}, headers=AUTH)
    )
    assert node.drain() >= 1  # discovery: the exchange now waits for the user's explicit request
    got = answer.result(timeout=60)
    waiting.shutdown()
    assert got.status_code == 200
    assert got.json()["state"] == "awaiting_explicit_request"
    assert got.json()["version"] > version
    # already above: no wait at all
    assert client.get(url, params={"version_after": version}, headers=AUTH).json() == got.json()


@pytest.mark.parametrize(
    ("params", "status"),
    [({"version_after": -1}, 422), ({"version_after": 1, "wait": 0}, 422), ({"version_after": 1, "wait": 61}, 422)],
)
def test_waiting_bad_input(node: Node, params: dict[str, float], status: int) -> None:
    client = client_of(node)
    ex_id = create(client).json()["id"]
    assert client.get(f"/api/v1/exchanges/{ex_id}", params=params, headers=AUTH).status_code == status


def test_waiting_on_an_unknown_or_foreign_exchange_is_404(node: Node) -> None:
    client = client_of(node)
    ex_id = create(client).json()["id"]
    other = {"Authorization": f"Bearer {OTHER_KEY}"}
    params = {"version_after": 0, "wait": 1}
    assert client.get(f"/api/v1/exchanges/{ex_id}", params=params, headers=other).status_code == 404
    assert client.get("/api/v1/exchanges/nope", params=params, headers=AUTH).status_code == 404


def test_discovery_asks_the_common_services_before_its_transaction(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    # the discovery job's preparer asks the Common Services without the database's write lock; the
    # job's transaction then only records what they said
    from oots.requester.exchange import Discovered

    asked: list[bool] = []
    ask = node.role.requester._ask

    def watched(ex: object) -> Discovered:
        writers = node.ctx.database._writers
        asked.append(writers is not None and writers.held())
        return ask(ex)  # type: ignore[arg-type]

    monkeypatch.setattr(node.role.requester, "_ask", watched)
    client = client_of(node)
    ex_id = create(client).json()["id"]
    assert node.drain() == 1
    assert asked == [False]  # asked once, outside any write transaction
    assert client.get(f"/api/v1/exchanges/{ex_id}", headers=AUTH).json()["state"] == "awaiting_explicit_request"


def test_an_answer_learnt_ahead_for_an_older_version_is_not_used(node: Node) -> None:
    from oots.requester.exchange import Discovered

    client = client_of(node)
    ex_id = create(client).json()["id"]
    version = client.get(f"/api/v1/exchanges/{ex_id}", headers=AUTH).json()["version"]
    stale = Discovered(version - 1, [], complete=True)  # would end the exchange: nothing left to ask
    with node.ctx.database.session(immediate=True) as session:
        node.role.requester.discover(session, ex_id, ahead=stale)
    assert client.get(f"/api/v1/exchanges/{ex_id}", headers=AUTH).json()["state"] == "awaiting_explicit_request"
