"""``Idempotency-Key`` on the start of an exchange: a start sent again answers the exchange it made."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from cs.cs_helpers import AppTransport
from sqlalchemy import func, select
from starlette.applications import Starlette

from oots.cs.keys import CsPki
from oots.requester.models import RequesterExchange
from requester.helpers import API_KEY, OTHER_KEY, Node, make_node, person_json

AUTH = {"Authorization": f"Bearer {API_KEY}"}
START = {"procedure": "R1", "country": "BE", "person": person_json()}


def client_of(node: Node) -> httpx.Client:
    return httpx.Client(
        transport=AppTransport(Starlette(routes=list(node.role.routes()))), base_url="https://portal.example"
    )


def exchanges(node: Node) -> int:
    with node.ctx.database.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(RequesterExchange)).scalar_one())


@pytest.fixture
def node(tmp_path: Path, pki: CsPki) -> Node:
    return make_node(tmp_path, pki)


def start(client: httpx.Client, key: str, body: dict[str, object] = START, **headers: str) -> httpx.Response:
    return client.post("/api/v1/exchanges", json=body, headers={**AUTH, "Idempotency-Key": key, **headers})


def test_the_same_start_sent_again_answers_the_first_exchange(node: Node) -> None:
    # Before, each retry of a start whose answer was lost made another exchange.
    client = client_of(node)
    first = start(client, "k-1")
    assert first.status_code == 202, first.text
    assert "idempotent-replayed" not in first.headers
    node.drain()  # the exchange moves on: the replay still answers what the start answered
    again = start(client, "k-1", {"country": "BE", "person": person_json(), "procedure": "R1"})  # keys reordered
    assert again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["cache-control"] == "no-store"
    assert exchanges(node) == 1
    assert start(client, "k-2").json()["id"] != first.json()["id"]  # a new key, a new exchange
    assert exchanges(node) == 2


def test_a_replay_that_waits_waits_on_the_first_exchange(node: Node) -> None:
    client = client_of(node)
    first = start(client, "k-1").json()
    node.drain()
    again = start(client, "k-1", Prefer="wait=1")
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first["id"]
    assert again.json()["state"] == "awaiting_explicit_request"
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["preference-applied"] == "wait=1"
    assert exchanges(node) == 1


def test_the_same_key_with_another_body_is_refused(node: Node) -> None:
    client = client_of(node)
    start(client, "k-1")
    other = start(client, "k-1", {**START, "country": "DE"})
    assert other.status_code == 422, other.text
    assert other.headers["content-type"] == "application/problem+json"
    assert "another body" in other.json()["detail"]
    assert exchanges(node) == 1


def test_keys_are_the_clients_own(node: Node) -> None:
    client = client_of(node)
    mine = start(client, "shared").json()
    theirs = client.post(
        "/api/v1/exchanges", json=START, headers={"Authorization": f"Bearer {OTHER_KEY}", "Idempotency-Key": "shared"}
    )
    assert theirs.status_code == 202
    assert "idempotent-replayed" not in theirs.headers
    assert theirs.json()["id"] != mine["id"]


def test_a_key_is_forgotten_after_a_day(node: Node) -> None:
    client = client_of(node)
    first = start(client, "k-1").json()
    node.clock.advance(23 * 3600)
    assert start(client, "k-1").json()["id"] == first["id"]
    node.clock.advance(3600)
    later = start(client, "k-1", {**START, "country": "DE"})  # even with another body
    assert later.status_code == 202
    assert later.json()["id"] != first["id"]
    assert "idempotent-replayed" not in later.headers


@pytest.mark.parametrize("key", [b"", b"x" * 256, b"tab\there", "é".encode()])
def test_a_key_that_is_not_printable_ascii_is_422(node: Node, key: bytes) -> None:
    reply = client_of(node).post(
        "/api/v1/exchanges",
        json=START,
        headers=[(b"Authorization", f"Bearer {API_KEY}".encode()), (b"Idempotency-Key", key)],
    )
    assert reply.status_code == 422, reply.text
    assert "Idempotency-Key" in reply.json()["detail"]
    assert exchanges(node) == 0


@pytest.mark.postgres
def test_two_starts_with_one_key_at_once_make_one_exchange(
    tmp_path: Path, pki: CsPki, postgres_database: Callable[[], str]
) -> None:
    node = make_node(tmp_path, pki, database_url=postgres_database())
    node.ctx.database.migrate()
    app = Starlette(routes=list(node.role.routes()))

    async def both() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://portal.example") as c:
            headers = {**AUTH, "Idempotency-Key": "once"}
            return list(
                await asyncio.gather(*(c.post("/api/v1/exchanges", json=START, headers=headers) for _ in range(4)))
            )

    replies = asyncio.run(both())
    assert {r.status_code for r in replies} == {202}
    assert len({r.json()["id"] for r in replies}) == 1
    assert exchanges(node) == 1
