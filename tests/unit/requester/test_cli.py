"""``oots request`` (its driver) against the portal API in process, the provider played between polls."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from cs.cs_helpers import AppTransport
from sqlalchemy import func, select
from starlette.applications import Starlette

from oots import edm
from oots.cli import main
from oots.cs.keys import CsPki
from oots.errors import ConfigError, TransportError
from oots.requester.cli_driver import START_ATTEMPTS, STEP_ATTEMPTS, ExchangeFailed, RequestOptions, drive
from oots.requester.models import RequesterExchange
from requester.helpers import API_KEY, Node, Provider, make_node, person_json


def client_of(node: Node) -> httpx.Client:
    app = Starlette(routes=list(node.role.routes()))
    return httpx.Client(
        transport=AppTransport(app), base_url="https://portal.example", headers={"Authorization": f"Bearer {API_KEY}"}
    )


def playing(node: Node, provider: Provider, *, refuse: bool = False) -> object:
    answered: set[str] = set()

    def step(_seconds: float) -> None:
        node.drain()
        for message, payloads in list(node.outbox.sent):
            mid = message.message_info.message_id
            if mid in answered:
                continue
            answered.add(mid)
            request = edm.parse(payloads[0].data)
            assert isinstance(request, edm.QueryRequest)
            node.deliver(
                provider.error(message, request, "EDM:ERR:0004") if refuse else provider.evidence(message, request)
            )

    return step


def test_drive_with_follow_up_question(tmp_path: Path, pki: CsPki) -> None:
    node = make_node(tmp_path, pki, preview=False)
    said: list[str] = []
    opts = RequestOptions(
        procedure="R1",
        country="DE",
        person=person_json("Müller"),
        out=tmp_path / "out",
        answers={"jurisdiction": "DE6"},
    )
    saved = drive(client_of(node), opts, say=said.append, sleep=playing(node, Provider("DE", "births")))  # type: ignore[arg-type]
    (pdf,) = saved
    assert pdf.read_bytes().startswith(b"%PDF")
    assert any("Registry Office Hamburg-Mitte" in line for line in said)


def test_drive_without_an_answer_is_unusable_input(tmp_path: Path, pki: CsPki) -> None:
    node = make_node(tmp_path, pki, preview=False)
    opts = RequestOptions(procedure="R1", country="DE", person=person_json("Müller"), out=tmp_path / "out")
    with pytest.raises(ConfigError, match="needs an answer"):
        drive(client_of(node), opts, say=lambda _: None, sleep=lambda _: node.drain())


def test_drive_with_an_answer_not_accepted(tmp_path: Path, pki: CsPki) -> None:
    # The question comes back marked invalid_answer: the same answer is not sent again and again.
    node = make_node(tmp_path, pki, preview=False)
    opts = RequestOptions(
        procedure="R1",
        country="DE",
        person=person_json("Müller"),
        out=tmp_path / "out",
        answers={"jurisdiction": "DE9"},
    )
    with pytest.raises(ConfigError, match="was not accepted: give another in --answers"):
        drive(client_of(node), opts, say=lambda _: None, sleep=lambda _: node.drain())
    asked: list[str] = []

    def ask(label: str, _hints: list[str]) -> str:
        asked.append(label)
        return "DE6"

    opts = RequestOptions(
        procedure="R1",
        country="DE",
        person=person_json("Müller"),
        out=tmp_path / "out",
        answers={"jurisdiction": "DE9"},
    )
    saved = drive(client_of(node), opts, ask=ask, say=lambda _: None, sleep=playing(node, Provider("DE", "births")))  # type: ignore[arg-type]
    assert len(saved) == 1
    assert asked == ["Place of birth (the answer was not accepted; try again)"]


def test_drive_reports_a_failure(tmp_path: Path, pki: CsPki) -> None:
    node = make_node(tmp_path, pki, preview=False)
    opts = RequestOptions(procedure="R1", country="BE", person=person_json(), out=tmp_path / "out")
    step = playing(node, Provider(), refuse=True)
    with pytest.raises(ExchangeFailed, match="found no record"):
        drive(client_of(node), opts, say=lambda _: None, sleep=step)  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists()


class LosingStarts(httpx.BaseTransport):
    """The node in process behind a network that loses the answer to the first ``lost`` starts.

    ``after_node``: the start reached the node (the exchange is made) and its answer was lost on the
    way back; otherwise a gateway in front of the node answered 503 without passing it on."""

    def __init__(self, node: Node, lost: int, *, after_node: bool) -> None:
        self.app = AppTransport(Starlette(routes=list(node.role.routes())))
        self.lost = lost
        self.after_node = after_node
        self.keys: list[str | None] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "POST" or request.url.path != "/api/v1/exchanges":
            return self.app.handle_request(request)
        self.keys.append(request.headers.get("idempotency-key"))
        if len(self.keys) > self.lost:
            return self.app.handle_request(request)
        if not self.after_node:
            return httpx.Response(503, text="upstream unavailable")
        self.app.handle_request(request)
        raise httpx.ReadTimeout("the answer was lost", request=request)


def exchanges(node: Node) -> int:
    with node.ctx.database.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(RequesterExchange)).scalar_one())


@pytest.mark.parametrize("after_node", [True, False], ids=["answer-lost", "gateway-503"])
def test_a_start_whose_answer_was_lost_is_sent_again_with_its_key(tmp_path: Path, pki: CsPki, after_node: bool) -> None:
    # Before, the start went without Idempotency-Key and a lost answer ended the command ("cannot reach
    # the node") though the exchange was made; sent again, it would have made a second one.
    node = make_node(tmp_path, pki, preview=False)
    net = LosingStarts(node, START_ATTEMPTS - 1, after_node=after_node)
    client = httpx.Client(
        transport=net, base_url="https://portal.example", headers={"Authorization": f"Bearer {API_KEY}"}
    )
    opts = RequestOptions("R1", "DE", person_json("Müller"), tmp_path / "out", answers={"jurisdiction": "DE6"})
    slept: list[float] = []
    play = playing(node, Provider("DE", "births"))

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        play(seconds)  # type: ignore[operator]

    (pdf,) = drive(client, opts, say=lambda _: None, sleep=sleep)
    assert pdf.read_bytes().startswith(b"%PDF")
    assert exchanges(node) == 1
    assert len(net.keys) == START_ATTEMPTS
    assert net.keys[0]
    assert set(net.keys) == {net.keys[0]}  # one key, sent with every attempt of the start
    assert slept[: START_ATTEMPTS - 1] == [1.0, 2.0]
    # the next exchange is another start: a new key
    drive(client, opts, say=lambda _: None, sleep=play)  # type: ignore[arg-type]
    assert exchanges(node) == 2
    assert net.keys[-1] != net.keys[0]


def test_a_start_lost_every_time_is_given_up(tmp_path: Path, pki: CsPki) -> None:
    node = make_node(tmp_path, pki, preview=False)
    net = LosingStarts(node, START_ATTEMPTS, after_node=True)
    client = httpx.Client(
        transport=net, base_url="https://portal.example", headers={"Authorization": f"Bearer {API_KEY}"}
    )
    opts = RequestOptions("R1", "DE", person_json("Müller"), tmp_path / "out")
    with pytest.raises(httpx.ReadTimeout):
        drive(client, opts, say=lambda _: None, sleep=lambda _: None)
    assert len(net.keys) == START_ATTEMPTS
    assert exchanges(node) == 1


def test_command_needs_a_key(tmp_path: Path, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    person = tmp_path / "p.json"
    person.write_text(json.dumps(person_json()), encoding="utf-8")
    with pytest.raises(SystemExit) as info:
        main(
            ["request", "--node", "http://127.0.0.1:9", "--procedure", "R1", "--country", "BE", "--person", str(person)]
        )
    assert info.value.code == 2
    assert "API key" in capsys.readouterr().err


class LosingSteps(httpx.BaseTransport):
    """The node in process behind a network that loses the answer to the first call of each path ending
    in one of ``ends`` (the node took the call), and answers ``gateway`` (503) to the first ``reads`` reads
    without passing them on."""

    def __init__(self, node: Node, ends: tuple[str, ...], *, reads: int = 0, always: bool = False) -> None:
        self.app = AppTransport(Starlette(routes=list(node.role.routes())))
        self.ends = ends
        self.reads = reads
        self.always = always
        self.calls: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.calls.append(f"{request.method} {path.rpartition('/')[2]}")
        if request.method == "GET" and path.count("/") == 4 and self.reads:
            self.reads -= 1
            return httpx.Response(503, text="upstream unavailable")
        reply = self.app.handle_request(request)
        if path.endswith(self.ends) and (self.always or self.calls.count(self.calls[-1]) == 1):
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return reply


def test_steps_and_reads_whose_answer_was_lost_are_read_again_not_repeated(tmp_path: Path, pki: CsPki) -> None:
    # Before, only the start was sent again: a lost answer to the choices, the explicit request or a read
    # ended `oots request` although the node had taken the step and the exchange went on without it.
    node = make_node(tmp_path, pki, preview=False)
    net = LosingSteps(node, ("/choices", "/explicit-request"), reads=2)
    client = httpx.Client(
        transport=net, base_url="https://portal.example", headers={"Authorization": f"Bearer {API_KEY}"}
    )
    opts = RequestOptions("R1", "DE", person_json("Müller"), tmp_path / "out", answers={"jurisdiction": "DE6"})
    said: list[str] = []
    slept: list[float] = []
    play = playing(node, Provider("DE", "births"))

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        play(seconds)  # type: ignore[operator]

    (pdf,) = drive(client, opts, say=said.append, sleep=sleep)
    assert pdf.read_bytes().startswith(b"%PDF")
    assert exchanges(node) == 1
    assert len(node.outbox.sent) == 1  # the explicit request went once: one request to the provider
    assert net.calls.count("POST choices") == 1  # taken the first time: read again, not sent again
    assert net.calls.count("POST explicit-request") == 1
    assert "no answer to the choices; reading the exchange again in 1 s" in said
    assert "no answer to the read; reading the exchange again in 1 s" in said
    assert {1.0, 2.0} <= set(slept)


def test_a_node_that_never_answers_a_step_is_given_up_plainly(tmp_path: Path, pki: CsPki) -> None:
    node = make_node(tmp_path, pki, preview=False)
    net = LosingSteps(node, (), reads=100)
    client = httpx.Client(
        transport=net, base_url="https://portal.example", headers={"Authorization": f"Bearer {API_KEY}"}
    )
    opts = RequestOptions("R1", "DE", person_json("Müller"), tmp_path / "out", answers={"jurisdiction": "DE6"})
    with pytest.raises(
        TransportError, match=rf"did not answer the (read|choices) of exchange .* {STEP_ATTEMPTS} times"
    ):
        drive(client, opts, say=lambda _: None, sleep=lambda _: None)
    assert exchanges(node) == 1
