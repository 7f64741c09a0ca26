"""``Idempotency-Key`` on the start of an exchange: a start sent again answers the exchange it made."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from cs.cs_helpers import AppTransport
from sqlalchemy import event, func, select
from starlette.applications import Starlette

from oots.cs.keys import CsPki
from oots.requester import idempotency
from oots.requester.models import RequesterExchange, RequesterIdempotencyKey
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


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def either_node(request: pytest.FixtureRequest, tmp_path: Path, pki: CsPki) -> Node:
    """A node on SQLite or on PostgreSQL (the key's row is written in each one's own SQL)."""
    if request.param == "sqlite":
        return make_node(tmp_path, pki)
    node = make_node(tmp_path, pki, database_url=request.getfixturevalue("postgres_database")())
    node.ctx.database.migrate()
    return node


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


def keys_kept(node: Node) -> int:
    with node.ctx.database.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(RequesterIdempotencyKey)).scalar_one())


def test_a_key_past_its_day_is_not_honoured_before_its_row_is_dropped(either_node: Node) -> None:
    node = either_node
    client = client_of(node)
    first = start(client, "k-1").json()
    node.clock.advance(24 * 3600 + 10)
    assert keys_kept(node) == 1  # k-1's row is still there (no drop has run since) ...
    later = start(client, "k-1", {**START, "country": "DE"})
    assert later.status_code == 202, later.text  # ... but not honoured: a new exchange, another body allowed
    assert later.json()["id"] != first["id"]
    assert "idempotent-replayed" not in later.headers
    again = start(client, "k-1", {**START, "country": "DE"})  # and the key now answers with the new exchange
    assert again.json()["id"] == later.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"


def test_a_key_within_its_day_is_not_written_over(either_node: Node) -> None:
    node = either_node
    # What a start finds when another start with its key committed after its own look (PostgreSQL).
    first = start(client_of(node), "k-1").json()
    other = idempotency.Remembered("another-exchange", 202, {})
    with pytest.raises(idempotency.KeyInUse), node.ctx.database.connect() as conn:
        idempotency.remember(conn, "portal", "k-1", "digest", now=node.clock(), done=other)
    with node.ctx.database.connect() as conn:
        kept = conn.execute(select(RequesterIdempotencyKey.exchange_id, RequesterIdempotencyKey.body_sha256)).one()
    assert kept.exchange_id == first["id"]
    assert kept.body_sha256 != "digest"


def test_keys_past_their_day_are_dropped_by_the_workers_not_by_the_starts(node: Node) -> None:
    # Before, every start with a key also deleted the keys past their day: a statement, and a range of
    # the index searched, per start on the node's write lock.
    client = client_of(node)
    drops: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.lstrip().upper().startswith("DELETE FROM REQUESTER_IDEMPOTENCY_KEYS"):
            drops.append(statement)

    event.listen(node.ctx.database.engine, "before_cursor_execute", seen)
    start(client, "old")
    node.clock.advance(24 * 3600 + 1)
    for n in range(5):
        assert start(client, f"k-{n}").status_code == 202
    assert drops == []  # no start drops anything
    assert keys_kept(node) == 6
    (keys,) = [p for p in node.role.periodic() if p.name == "requester-idempotency-keys"]
    assert keys.every_seconds == 60
    assert keys.tick() == 0  # the workers' minute: one statement drops every key past its day
    assert len(drops) == 1
    assert keys_kept(node) == 5


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
