"""``GET /api/v1/exchanges``: the calling client's exchanges, newest first, by state, page by page."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from cs.cs_helpers import AppTransport
from starlette.applications import Starlette

from oots.cs.keys import CsPki
from requester.helpers import API_KEY, OTHER_KEY, Node, make_node, person_json

MINE = {"Authorization": f"Bearer {API_KEY}"}
THEIRS = {"Authorization": f"Bearer {OTHER_KEY}"}


def client_of(node: Node) -> httpx.Client:
    return httpx.Client(
        transport=AppTransport(Starlette(routes=list(node.role.routes()))), base_url="https://portal.example"
    )


@pytest.fixture
def node(tmp_path: Path, pki: CsPki) -> Node:
    return make_node(tmp_path, pki)


def start(client: httpx.Client, headers: dict[str, str]) -> str:
    reply = client.post(
        "/api/v1/exchanges", json={"procedure": "R1", "country": "BE", "person": person_json()}, headers=headers
    )
    assert reply.status_code == 202, reply.text
    return str(reply.json()["id"])


def listed(client: httpx.Client, headers: dict[str, str], **params: object) -> httpx.Response:
    return client.get("/api/v1/exchanges", params=params, headers=headers)


def test_a_client_lists_its_own_exchanges_newest_first(node: Node) -> None:
    client = client_of(node)
    mine = []
    for _ in range(3):
        mine.append(start(client, MINE))
        node.clock.advance(1)
    theirs = start(client, THEIRS)
    page = listed(client, MINE)
    assert page.status_code == 200, page.text
    assert page.headers["cache-control"] == "no-store"
    body = page.json()
    assert [e["id"] for e in body["exchanges"]] == mine[::-1]
    assert body["next_cursor"] is None
    assert body["next"] is None
    first = body["exchanges"][0]
    assert first["href"] == f"https://portal.example/api/v1/exchanges/{mine[-1]}"
    assert (first["state"], first["version"], first["procedure"], first["country"]) == ("discovering", 1, "R1", "BE")
    assert [e["id"] for e in listed(client, THEIRS).json()["exchanges"]] == [theirs]
    assert listed(client, {}).status_code == 401


def test_the_list_by_state(node: Node) -> None:
    client = client_of(node)
    ended, going = start(client, MINE), start(client, MINE)
    client.post(f"/api/v1/exchanges/{ended}/cancel", headers=MINE)
    assert [e["id"] for e in listed(client, MINE, state="failed").json()["exchanges"]] == [ended]
    failed = listed(client, MINE, state="failed").json()["exchanges"][0]
    assert (failed["reason"], failed["reason_text"]) == ("cancelled", "The request was cancelled.")
    assert [e["id"] for e in listed(client, MINE, state="discovering").json()["exchanges"]] == [going]
    assert listed(client, MINE, state="completed").json()["exchanges"] == []
    assert listed(client, THEIRS, state="failed").json()["exchanges"] == []


def test_the_list_page_by_page(node: Node) -> None:
    pages_through(node)


@pytest.mark.postgres
def test_the_list_page_by_page_on_postgresql(tmp_path: Path, pki: CsPki, postgres_database: Callable[[], str]) -> None:
    node = make_node(tmp_path, pki, database_url=postgres_database())
    node.ctx.database.migrate()
    pages_through(node)


def pages_through(node: Node) -> None:
    client = client_of(node)
    made = []
    for n in range(7):  # several made at the same instant: the cursor tells them apart by id
        made.append(start(client, MINE))
        if n % 3 == 2:
            node.clock.advance(1)
    start(client, THEIRS)
    seen: list[str] = []
    params: dict[str, object] = {"limit": 3}
    pages = 0
    while True:
        body = listed(client, MINE, **params).json()
        pages += 1
        assert len(body["exchanges"]) <= 3
        seen += [e["id"] for e in body["exchanges"]]
        if body["next_cursor"] is None:
            break
        assert body["next"].startswith("https://portal.example/api/v1/exchanges?limit=3&cursor=")
        params = {"limit": 3, "cursor": body["next_cursor"]}
    assert pages == 3
    assert sorted(seen) == sorted(made)
    assert len(seen) == len(set(seen))
    created = [e["created_at"] for e in listed(client, MINE, limit=200).json()["exchanges"]]
    assert created == sorted(created, reverse=True)


def test_the_default_and_the_most_in_a_page(node: Node) -> None:
    client = client_of(node)
    for _ in range(51):
        start(client, MINE)
    assert len(listed(client, MINE).json()["exchanges"]) == 50
    assert len(listed(client, MINE, limit=200).json()["exchanges"]) == 51


@pytest.mark.parametrize(
    ("params", "where"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"state": "asleep"}, "state"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "WyJ4IiwgInkiXQ"}, "cursor"),  # a list, but no time in it
    ],
)
def test_the_list_refuses_what_does_not_fit(node: Node, params: dict[str, object], where: str) -> None:
    reply = listed(client_of(node), MINE, **params)
    assert reply.status_code == 422, reply.text
    assert where in reply.json()["detail"]
