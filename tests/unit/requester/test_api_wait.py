"""Waiting on the node for the portal's turn: ``Prefer: wait=N`` on the steps, ``until=actionable`` on reads."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cs.cs_helpers import AppTransport
from sqlalchemy import select
from starlette.applications import Starlette

from oots import edm
from oots.audit.journal import load_journal
from oots.cs.keys import CsPki
from oots.requester.api import _wait_preference
from oots.requester.cli_driver import RequestOptions, drive
from oots.requester.discovery import CachedOnly, NotCached
from oots.requester.exchange import DISCOVER_JOB
from oots.requester.states import ACTIONABLE, State
from oots.store.models import QueueJob
from oots.threads import run_in_thread
from requester.helpers import API_KEY, Node, Provider, make_node, person_json

AUTH = {"Authorization": f"Bearer {API_KEY}"}
BODY = {"procedure": "R1", "country": "BE", "person": person_json()}


def transport(node: Node) -> AppTransport:
    return AppTransport(Starlette(routes=list(node.role.routes())))


def client_of(node: Node, via: AppTransport | None = None) -> httpx.Client:
    return httpx.Client(transport=via or transport(node), base_url="https://portal.example", headers=AUTH)


class Player:
    """The rest of the node and the provider, in a thread of their own: the queue worker runs, and every
    request that goes out is answered (with the evidence, or the error ``refuse`` names)."""

    def __init__(self, node: Node, *, refuse: str | None = None, preview: str | None = None) -> None:
        self.node = node
        self.refuse = refuse
        self.preview = preview  # ask for a preview there (the first request), then answer with the evidence
        self.provider = Provider()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.answered = 0

    def _run(self) -> None:
        while not self.stop.wait(0.01):
            self.node.drain()
            for message, payloads in self.node.outbox.sent[self.answered :]:
                request = edm.parse(payloads[0].data)
                assert isinstance(request, edm.QueryRequest)
                if self.refuse:
                    self.node.deliver(self.provider.error(message, request, self.refuse))
                elif self.preview and request.preview_location is None:
                    self.node.deliver(self.provider.preview(message, request, self.preview))
                else:
                    self.node.deliver(self.provider.evidence(message, request))
                self.answered += 1


@pytest.fixture
def node(tmp_path: Path, pki: CsPki) -> Node:
    return make_node(tmp_path, pki, preview=False)


@pytest.fixture
def played(node: Node) -> Iterator[Player]:
    player = Player(node)
    player.thread.start()
    yield player
    player.stop.set()
    player.thread.join(10)


def test_prefer_wait_answers_each_step_with_the_exchange_at_the_portals_turn(node: Node, played: Player) -> None:
    client = client_of(node)
    created = client.post("/api/v1/exchanges", json=BODY, headers={"Prefer": "wait=30"})
    assert created.status_code == 200, created.text
    assert created.headers["preference-applied"] == "wait=30"
    view = created.json()
    assert view["state"] == "awaiting_explicit_request"  # discovery ran while the call waited
    assert created.headers["location"] == view["href"] == f"https://portal.example/api/v1/exchanges/{view['id']}"
    assert view["requirements"][0]["chosen_list"]
    # the answer is the exchange as a read gives it
    assert view == client.get(f"/api/v1/exchanges/{view['id']}").json()

    asked = client.post(f"/api/v1/exchanges/{view['id']}/explicit-request", headers={"Prefer": "wait=30"})
    assert asked.status_code == 200, asked.text
    assert asked.headers["preference-applied"] == "wait=30"
    assert "location" not in asked.headers
    done = asked.json()
    assert done["state"] == "completed"  # the request went out and the answer came back meanwhile
    (evidence,) = done["evidence"]
    assert evidence["size"] > 0
    assert done == client.get(f"/api/v1/exchanges/{view['id']}").json()


def test_a_step_with_prefer_wait_looks_at_the_exchange_in_its_own_thread(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    # After its commit the step watches the exchange and peeks at it in the same worker thread: the wait
    # begins without a thread hop of its own (a commit in between is still seen, by the peek).
    from oots.requester import api

    requester = node.role.requester
    threads: dict[str, list[int]] = {"create": [], "peek": []}
    for name in threads:
        original = getattr(requester, name)

        def recorded(*args: Any, _original: Any = original, _name: str = name, **kwargs: Any) -> Any:
            threads[_name].append(threading.get_ident())
            return _original(*args, **kwargs)

        monkeypatch.setattr(requester, name, recorded)
    hops: list[str] = []

    async def counted(function: Any, *args: Any, **kwargs: Any) -> Any:
        hops.append(function.__name__)
        return await run_in_thread(function, *args, **kwargs)

    monkeypatch.setattr(api, "run_in_thread", counted)
    # nobody runs the queue, and the wait runs out at once: the step, then the read of the answer
    created = client_of(node).post("/api/v1/exchanges", json=BODY, headers={"Prefer": "wait=0"})
    assert (created.status_code, created.json()["state"]) == (202, "discovering")
    assert hops == ["step", "read"]  # one hop for the step (its look included), one for the read
    assert len(threads["peek"]) == 1
    assert threads["peek"] == threads["create"]


def test_a_waiting_step_of_a_known_exchange_reads_nothing_after_its_commit(
    node: Node, played: Player, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The explicit request watches its exchange before its write (its own commit muted): the wait begins
    # from the version and state the step left, with no peek after the commit, and ends at the answer.
    requester = node.role.requester
    client = client_of(node)
    view = client.post("/api/v1/exchanges", json=BODY, headers={"Prefer": "wait=30"}).json()
    assert view["state"] == "awaiting_explicit_request"
    peeks: list[str] = []
    original = requester.peek

    def peek(*args: Any, **kwargs: Any) -> tuple[int, str]:
        peeks.append(args[1])
        return original(*args, **kwargs)

    monkeypatch.setattr(requester, "peek", peek)
    asked = client.post(f"/api/v1/exchanges/{view['id']}/explicit-request", headers={"Prefer": "wait=30"})
    assert (asked.status_code, asked.json()["state"]) == (200, "completed")
    assert peeks == []


def test_prefer_wait_ends_at_an_error_too(node: Node) -> None:
    player = Player(node, refuse="EDM:ERR:0004")
    player.thread.start()
    try:
        client = client_of(node)
        view = client.post("/api/v1/exchanges", json=BODY, headers={"Prefer": "wait=30"}).json()
        asked = client.post(f"/api/v1/exchanges/{view['id']}/explicit-request", headers={"Prefer": "wait=30"})
    finally:
        player.stop.set()
        player.thread.join(10)
    assert asked.status_code == 200
    assert (asked.json()["state"], asked.json()["reason"]) == ("failed", "person_not_found")


def _discovery_jobs(node: Node) -> list[str]:
    with node.ctx.database.session() as session:
        return list(session.scalars(select(QueueJob.key).where(QueueJob.kind == DISCOVER_JOB).order_by(QueueJob.id)))


def _journaled(node: Node, exchange_id: str) -> list[tuple[str, str | None]]:
    journal = load_journal(node.ctx.settings)
    with node.ctx.database.session() as session:
        assert journal.verify(session).ok
        return [(e.event, e.outcome) for e in journal.entries(session) if e.exchange_id == exchange_id]


def test_a_waiting_start_whose_discovery_answers_are_cached_is_discovered_in_its_own_transaction(node: Node) -> None:
    client = client_of(node)
    # the first start: the Common Services are asked by the discovery job (nothing is cached yet)
    first = client.post("/api/v1/exchanges", json=BODY, headers={"Prefer": "wait=0"}).json()
    assert first["state"] == "discovering"
    node.drain()
    assert _discovery_jobs(node) == [f"{first['id']}:1"]
    # nobody runs the queue now: the answer comes from the start itself, with the state discovery leads to
    created = client.post("/api/v1/exchanges", json=BODY, headers={"Prefer": "wait=30"})
    assert created.status_code == 200, created.text
    view = created.json()
    assert (view["state"], view["version"]) == ("awaiting_explicit_request", 2)
    assert view["requirements"] == client.get(f"/api/v1/exchanges/{first['id']}").json()["requirements"]
    assert _discovery_jobs(node) == [f"{first['id']}:1"]  # no job for the second
    assert _journaled(node, view["id"]) == [
        ("exchange_created", "discovering"),
        ("discovery_done", "awaiting_explicit_request"),
    ]
    assert node.drain() == 0


def test_a_waiting_start_whose_dsd_question_is_cached_asks_it_at_once(node: Node) -> None:
    # A German birth certificate needs a jurisdiction first (DSD:ERR:0005): the node keeps the question
    client = client_of(node)
    body = {**BODY, "country": "DE"}
    first = client.post("/api/v1/exchanges", json=body, headers={"Prefer": "wait=0"}).json()
    node.drain()
    asked = client.get(f"/api/v1/exchanges/{first['id']}").json()
    assert asked["state"] == "awaiting_user_choice"
    jobs = _discovery_jobs(node)
    created = client.post("/api/v1/exchanges", json=body, headers={"Prefer": "wait=30"})
    assert created.status_code == 200, created.text
    view = created.json()
    assert (view["state"], view["version"]) == ("awaiting_user_choice", 2)
    assert view["requirements"] == asked["requirements"]
    assert _discovery_jobs(node) == jobs  # no job for the second
    assert node.drain() == 0


def test_a_start_that_does_not_wait_leaves_discovery_to_its_job_even_when_cached(node: Node) -> None:
    client = client_of(node)
    client.post("/api/v1/exchanges", json=BODY)
    node.drain()
    second = client.post("/api/v1/exchanges", json=BODY)
    assert (second.status_code, second.json()["state"]) == (202, "discovering")
    assert _discovery_jobs(node)[-1] == f"{second.json()['id']}:1"


def test_a_waiting_start_whose_discovery_fails_from_the_cache_ends_in_its_own_transaction(node: Node) -> None:
    client = client_of(node)
    body = {**BODY, "requirements": ["https://example.org/no-such-requirement"]}
    client.post("/api/v1/exchanges", json=BODY)  # caches the procedure's requirements
    node.drain()
    failed = client.post("/api/v1/exchanges", json=body, headers={"Prefer": "wait=30"})
    assert failed.status_code == 200, failed.text
    assert (failed.json()["state"], failed.json()["reason"]) == ("failed", "procedure_unknown")
    assert _journaled(node, failed.json()["id"]) == [
        ("exchange_created", "discovering"),
        ("exchange_failed", "procedure_unknown"),
    ]


def test_cached_only_common_services_ask_nobody(node: Node) -> None:
    client = node.ctx.services["cs_client"]
    cached = CachedOnly(client)
    with pytest.raises(NotCached):
        cached.requirements(procedure_id="R1", country_code="BE")
    assert client.requirements(procedure_id="R1", country_code="BE") == cached.requirements(
        procedure_id="R1", country_code="BE"
    )
    with pytest.raises(NotCached):
        cached.requirements(procedure_id="R2", country_code="BE")


def test_prefer_wait_runs_out_with_the_exchange_as_it_is(node: Node) -> None:
    # nobody runs the queue: discovery does not happen, the wait runs out (0 s: at once)
    client = client_of(node)
    created = client.post("/api/v1/exchanges", json=BODY, headers={"Prefer": "wait=0"})
    assert created.status_code == 202
    assert created.headers["preference-applied"] == "wait=0"
    assert created.json()["state"] == "discovering"
    assert created.json()["requirements"] == []  # the whole exchange, not only its id and state
    assert created.headers["location"] == created.json()["href"]
    node.drain()
    assert client.get(f"/api/v1/exchanges/{created.json()['id']}").json()["state"] == "awaiting_explicit_request"


def test_without_prefer_or_with_a_wait_that_is_no_number_a_step_answers_at_once(node: Node) -> None:
    client = client_of(node)
    for headers in ({}, {"Prefer": "wait=soon"}, {"Prefer": "respond-async"}, {"Prefer": "wait=-1"}):
        reply = client.post("/api/v1/exchanges", json=BODY, headers=headers)
        assert reply.status_code == 202
        assert "preference-applied" not in reply.headers
        assert set(reply.json()) == {"id", "state", "version", "href"}


def test_a_step_the_state_does_not_allow_is_409_with_or_without_wait(node: Node) -> None:
    client = client_of(node)
    ex_id = client.post("/api/v1/exchanges", json=BODY).json()["id"]
    early = client.post(f"/api/v1/exchanges/{ex_id}/explicit-request", headers={"Prefer": "wait=5"})
    assert early.status_code == 409


def test_until_actionable_passes_over_the_nodes_own_states(node: Node) -> None:
    client = client_of(node)
    ex_id = client.post("/api/v1/exchanges", json=BODY).json()["id"]
    node.drain()
    asked = client.post(f"/api/v1/exchanges/{ex_id}/explicit-request").json()
    assert asked["state"] == "requesting"
    url = f"/api/v1/exchanges/{ex_id}"
    # a plain long poll answers with the change to requesting; until=actionable waits on
    assert client.get(url, params={"version_after": asked["version"] - 1, "wait": 5}).json()["state"] == "requesting"
    params: dict[str, Any] = {"version_after": asked["version"] - 1, "until": "actionable", "wait": 0.2}
    not_yet = client.get(url, params=params)
    assert not_yet.status_code == 200
    assert not_yet.json()["state"] == "requesting"  # the wait ran out: the exchange as it is
    player = Player(node)
    player.thread.start()
    try:
        params["wait"] = 30
        assert client.get(url, params=params).json()["state"] == "completed"
    finally:
        player.stop.set()
        player.thread.join(10)
    # already there: at once, with or without version_after
    assert client.get(url, params={"until": "actionable"}).json()["state"] == "completed"


def test_a_long_poll_on_an_exchange_that_has_ended_answers_at_once(node: Node) -> None:
    # Before, it waited the whole time: a finished exchange's version never goes above version_after.
    client = client_of(node)
    ex_id = client.post("/api/v1/exchanges", json=BODY).json()["id"]
    ended = client.post(f"/api/v1/exchanges/{ex_id}/cancel").json()
    assert ended["state"] == "failed"
    url = f"/api/v1/exchanges/{ex_id}"
    for until in ("actionable", "change"):
        began = time.monotonic()
        params: dict[str, Any] = {"version_after": ended["version"], "until": until, "wait": 5}
        reply = client.get(url, params=params)
        assert time.monotonic() - began < 2.5
        assert (reply.status_code, reply.json()["state"]) == (200, "failed")


def test_until_must_be_a_known_word(node: Node) -> None:
    client = client_of(node)
    ex_id = client.post("/api/v1/exchanges", json=BODY).json()["id"]
    assert client.get(f"/api/v1/exchanges/{ex_id}", params={"until": "later"}).status_code == 422


def test_drive_waits_on_the_node_three_calls_for_an_exchange(node: Node, played: Player, tmp_path: Path) -> None:
    via = transport(node)
    opts = RequestOptions(procedure="R1", country="BE", person=person_json(), out=tmp_path / "out", preview=False)
    slept: list[float] = []
    (pdf,) = drive(client_of(node, via), opts, say=lambda _: None, sleep=slept.append, wait=30)
    assert pdf.read_bytes().startswith(b"%PDF")
    # start (answered at the explicit request's turn), explicit request (answered completed), download
    assert via.requests == 3
    assert slept == []


def test_drive_waits_through_a_preview(tmp_path: Path, pki: CsPki) -> None:
    node = make_node(tmp_path, pki)
    player = Player(node, preview="https://ep.example/preview/p1")
    player.thread.start()
    via = transport(node)
    said: list[str] = []
    opts = RequestOptions(procedure="R1", country="BE", person=person_json(), out=tmp_path / "out")
    try:
        (pdf,) = drive(client_of(node, via), opts, say=said.append, sleep=lambda _: None, wait=30)
    finally:
        player.stop.set()
        player.thread.join(10)
    assert pdf.read_bytes().startswith(b"%PDF")
    assert "preview required: open https://ep.example/preview/p1 (GET)" in said
    # start, explicit request (answered awaiting_preview), one read until the end (passing over
    # requesting, the second request's state), download
    assert via.requests == 4


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        (["wait=10"], 10),
        (["respond-async, wait=5"], 5),
        (["wait = 7 ; foo=bar"], 7),
        (['wait="3"'], 3),
        (["WAIT=4"], 4),
        (["return=minimal", "wait=2"], 2),
        (["wait=2, wait=9"], 2),  # the first one counts
        (["wait=0"], 0),
        (["wait=100"], 60),
        (["wait=" + "9" * 5000], 60),
        (["wait=abc"], None),
        (["wait=-3"], None),
        (["wait=١٢"], None),  # digits, but not ASCII ones
        (["wait"], None),
        (["respond-async"], None),
        ([], None),
    ],
)
def test_wait_preference(headers: list[str], seconds: int | None) -> None:
    assert _wait_preference(headers) == seconds


def test_actionable_states() -> None:
    assert {State.DISCOVERING, State.REQUESTING}.isdisjoint(ACTIONABLE)
    assert ACTIONABLE | {State.DISCOVERING, State.REQUESTING} == set(State)


def test_a_change_made_by_another_process_is_found_without_a_wake_up(node: Node) -> None:
    # Another process of the node on SQLite (a worker of its own) moves the exchange on: its commit wakes
    # nothing in this process; the waiting calls' shared look at the versions finds the change.
    from sqlalchemy import update

    from oots.requester.models import RequesterExchange

    client = client_of(node)
    ex_id = client.post("/api/v1/exchanges", json=BODY).json()["id"]
    node.drain()

    def elsewhere() -> None:
        time.sleep(0.5)  # (ordering only) the step below is waiting by then
        with node.ctx.database.connect(immediate=True) as conn:
            conn.execute(
                update(RequesterExchange)
                .where(RequesterExchange.id == ex_id)
                .values(state="completed", version=RequesterExchange.version + 1)
            )

    other = threading.Thread(target=elsewhere)
    other.start()
    asked = client.post(f"/api/v1/exchanges/{ex_id}/explicit-request", headers={"Prefer": "wait=60"})
    other.join()
    assert asked.status_code == 200  # found while waiting (202: only when the wait ran out)
    assert asked.json()["state"] == "completed"
