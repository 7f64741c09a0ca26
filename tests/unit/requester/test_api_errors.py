"""Every error answer of the portal API has one shape: ``{"title", "status", "detail", "error_id"}``."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from cs.cs_helpers import AppTransport
from starlette.applications import Starlette

from node_failures import NODE_FAILURES, SECRET_HOST
from oots.cs.keys import CsPki
from oots.errors import OotsError
from requester.helpers import API_KEY, Node, make_node, person_json

AUTH = {"Authorization": f"Bearer {API_KEY}"}
SECRET = "oauth-client-secret"


@pytest.fixture
def node(tmp_path: Path, pki: CsPki) -> Node:
    return make_node(tmp_path, pki, oauth_secret=SECRET)


def client_of(node: Node) -> httpx.Client:
    return httpx.Client(
        transport=AppTransport(Starlette(routes=list(node.role.routes()))), base_url="https://portal.example"
    )


def problem(reply: httpx.Response, status: int) -> dict[str, Any]:
    """The answer's body, checked to be the API's one error shape."""
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.headers["cache-control"] == "no-store"
    body: dict[str, Any] = reply.json()
    assert {"title", "status", "detail", "error_id"} <= set(body) <= {"title", "status", "detail", "error_id", "errors"}
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    assert len(body["error_id"]) == 12
    return body


def test_unauthorised_and_forbidden(node: Node) -> None:
    # Before, 401 and 403 had no error_id.
    client = client_of(node)
    body = problem(client.get("/api/v1/exchanges/x"), 401)
    assert "API key" in body["detail"]
    access = client.post(
        "/api/v1/oauth/token", data={"grant_type": "client_credentials"}, auth=("oauth-reader", SECRET)
    ).json()["access_token"]
    forbidden = client.post("/api/v1/exchanges/x/cancel", headers={"Authorization": f"Bearer {access}"})
    assert problem(forbidden, 403)["detail"] == "the call needs the scope exchanges:write"
    assert "insufficient_scope" in forbidden.headers["www-authenticate"]


def test_input_errors_name_every_field(node: Node) -> None:
    # Before, a validation error had no error_id and named only the first field.
    reply = client_of(node).post(
        "/api/v1/exchanges", json={"procedure": "", "country": "Belgium", "person": person_json()}, headers=AUTH
    )
    body = problem(reply, 422)
    assert body["title"] == "Invalid input"
    assert [e["field"] for e in body["errors"]] == ["procedure", "country"]
    assert body["detail"].startswith("procedure: String should have at least 1 character")
    assert "1 more" in body["detail"]
    query = problem(client_of(node).get("/api/v1/exchanges/x", params={"wait": -1}, headers=AUTH), 422)
    assert query["errors"][0]["field"] == "query.wait"


def test_an_unknown_address_and_a_method_not_taken(node: Node) -> None:
    # Before, both answered FastAPI's {"detail": "Not Found"} / {"detail": "Method Not Allowed"}.
    client = client_of(node)
    body = problem(client.get("/api/v1/nothing-here", headers=AUTH), 404)
    assert body["title"] == "Not found"
    assert "openapi.json" in body["detail"]
    wrong = client.delete("/api/v1/exchanges", headers=AUTH)
    body = problem(wrong, 405)
    assert body["title"] == "Method not allowed"
    assert "does not take DELETE" in body["detail"]
    assert "GET" in wrong.headers["allow"]


def test_the_api_s_own_errors_keep_their_ids(node: Node) -> None:
    client = client_of(node)
    problem(client.get("/api/v1/exchanges/nope", headers=AUTH), 404)
    ex_id = client.post(
        "/api/v1/exchanges", json={"procedure": "R1", "country": "BE", "person": person_json()}, headers=AUTH
    ).json()["id"]
    assert (
        "discovering"
        in problem(client.post(f"/api/v1/exchanges/{ex_id}/explicit-request", headers=AUTH), 409)["detail"]
    )
    huge = {"procedure": "R1", "country": "BE", "person": person_json(), "requirements": ["r" * 400] * 200}
    problem(client.post("/api/v1/exchanges", json=huge, headers=AUTH), 413)


def test_a_failure_of_the_node_is_a_500_of_the_same_shape(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> list[dict[str, Any]]:
        raise RuntimeError("a bug")

    monkeypatch.setattr(node.role.requester, "listing", broken)
    app = Starlette(routes=list(node.role.routes()))

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="https://portal.example") as client:
            return await client.get("/api/v1/exchanges", headers=AUTH)

    body = problem(asyncio.run(call()), 500)
    assert "a bug" not in body["detail"]
    assert "operator" in body["detail"]


API_LOG = "oots.requester.api"


def answered(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """What the API logged (every logger's records, so a second line anywhere would show)."""
    return [r for r in caplog.records if r.name.startswith(("oots", "uvicorn", "fastapi", "starlette"))]


def test_an_error_answer_is_logged_once(node: Node, caplog: pytest.LogCaptureFixture) -> None:
    # Before, an OotsError answered 400 was logged twice (a warning with its message, then an info line).
    caplog.set_level(logging.DEBUG)
    client = client_of(node)
    body = problem(client.get("/api/v1/exchanges/nope", headers=AUTH), 404)
    (line,) = answered(caplog)
    assert line.levelno == logging.INFO
    assert line.getMessage() == f"portal API answered 404 Not found (error id {body['error_id']})"

    caplog.clear()
    node.role.requester.listing = _raising(OotsError("the record of Anna Müller does not hold together"))  # type: ignore[method-assign]
    body = problem(client.get("/api/v1/exchanges", headers=AUTH), 400)
    (line,) = answered(caplog)
    assert line.levelno == logging.WARNING  # not the caller's mistake: the operator may have to look
    assert line.getMessage() == f"portal API answered 400 Request failed (error id {body['error_id']}): OotsError"
    assert "Müller" not in caplog.text


def _raising(exc: BaseException) -> Any:
    def failing(*args: object, **kwargs: object) -> list[dict[str, Any]]:
        raise exc

    return failing


@pytest.mark.parametrize(("exc", "status"), NODE_FAILURES)
def test_an_outage_is_a_503_and_a_failure_of_the_node_a_500_with_a_fixed_sentence(
    node: Node, exc: BaseException, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    # Before, StoreUnavailable, StoreError, ConfigError and TransportError answered 400 with their message
    # (the database's address, a host, a file of the node); a refused connection answered 500.
    node.role.requester.listing = _raising(exc)  # type: ignore[method-assign]
    app = Starlette(routes=list(node.role.routes()))

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="https://portal.example") as client:
            return await client.get("/api/v1/exchanges", headers=AUTH)

    caplog.set_level(logging.DEBUG)
    reply = asyncio.run(call())
    body = problem(reply, status)
    assert SECRET_HOST not in reply.text
    assert SECRET_HOST not in caplog.text
    if status == 503:
        assert body["title"] == "Service unavailable"
        assert reply.headers["retry-after"] == "30"
        assert "Retry-After" in body["detail"]
    else:
        assert body["title"] == "Server error"
        assert "retry-after" not in reply.headers
        assert "operator" in body["detail"]
    if isinstance(exc, OotsError):
        assert body["error_id"] == exc.error_id  # the same id as the error's, for the log


def test_a_failure_of_the_node_is_logged_without_its_message(
    node: Node, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Before, the API logged the type, then raised the exception on to the server, which logged its
    # traceback with the message ("Exception in ASGI application"): the message may hold personal data.
    def broken(*args: object, **kwargs: object) -> list[dict[str, Any]]:
        raise RuntimeError("no row for Anna Müller, born 1990-05-17")

    monkeypatch.setattr(node.role.requester, "listing", broken)
    app = Starlette(routes=list(node.role.routes()))
    caplog.set_level(logging.DEBUG)

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)  # an exception raised on to the server would come out here
        async with httpx.AsyncClient(transport=transport, base_url="https://portal.example") as client:
            return await client.get("/api/v1/exchanges", headers=AUTH)

    body = problem(asyncio.run(call()), 500)
    (line,) = answered(caplog)
    assert line.name == API_LOG
    assert line.levelno == logging.ERROR
    assert line.exc_info is None  # a handler would print the message with the traceback
    text = line.getMessage()
    assert text.startswith(f"portal API answered 500 Server error (error id {body['error_id']}): RuntimeError; ")
    assert re.search(r"test_api_errors\.py:\d+ in broken$", text)  # where it was raised
    assert "\n" not in text  # one line
    assert "Müller" not in caplog.text
    assert "1990" not in caplog.text
