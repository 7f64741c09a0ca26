"""``oots request`` (its driver) against the portal API in process, the provider played between polls."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from cs.cs_helpers import AppTransport
from starlette.applications import Starlette

from oots import edm
from oots.cli import main
from oots.cs.keys import CsPki
from oots.errors import ConfigError
from oots.requester.cli_driver import ExchangeFailed, RequestOptions, drive
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


def test_command_needs_a_key(tmp_path: Path, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    person = tmp_path / "p.json"
    person.write_text(json.dumps(person_json()), encoding="utf-8")
    with pytest.raises(SystemExit) as info:
        main(
            ["request", "--node", "http://127.0.0.1:9", "--procedure", "R1", "--country", "BE", "--person", str(person)]
        )
    assert info.value.code == 2
    assert "API key" in capsys.readouterr().err
