"""The provider's preview space end to end: two nodes over real AS4, a real eID login, a user over HTTP.

The provider ("red", Spain's sample registers; its diplomas service requires a preview) runs as its own
processes (``oots serve`` and ``oots worker``) with eID login at the test identity provider (in this
process, on its own port). The requester side ("blue") runs in this process and records the answers.
Each case sends the first request (``PossibilityForPreview``), receives ``EDM:ERR:0002`` with its
PreviewLocation, sends the second request in the same conversation, plays the user with httpx (login
at the test IdP, the preview page's form with its CSRF token), and checks the exact EDM answer to the
second request, validated by the official rules.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))

from as4_flow_nodes import (
    free_port,
    serve_and_work,
    stop_all,
    wait_ready,
    without_oots_settings,
    write_configs,
)
from provider.parties import query_request
from test_provider_flow import RecorderNode

from oots import edm
from oots.as4 import msh, profile
from oots.edm import QueryError, QueryResponse
from oots.eid.testidp import IdpConfig, create_idp_app
from oots.network.local import ServerThread
from oots.validation import validate

pytestmark = pytest.mark.slow

CORNER = "urn:oasis:names:tc:ebcore:partyid-type:unregistered:ES"


class Blue(RecorderNode):
    """The requester's side: sends requests in chosen conversations, records the answers."""

    #: Stops the provider's processes and starts them again (set by the fixture).
    restart_red: Any = None

    def __init__(self, config: Path, port: int, red_url: str, red_db: Path) -> None:
        super().__init__(config, port)
        self.red_url = red_url
        self.red_db = red_db

    def send(self, request: edm.QueryRequest, conversation: str) -> str:
        v2 = request.specification is edm.Version.EDM_V2
        return self.submit(edm.to_xml(request), conversation=conversation, exchange_id=conversation if v2 else None)

    def quiet(self, message_id: str, seconds: float = 1.5) -> bool:
        """True when no answer to ``message_id`` arrives within ``seconds`` (the request is held)."""
        time.sleep(seconds)
        return message_id not in self.role.messages


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Blue]:
    with without_oots_settings():
        yield from _network(tmp_path_factory.mktemp("previewflow"))


def _network(directory: Path) -> Iterator[Blue]:
    ports = {"blue": free_port(), "red": free_port(), "idp": free_port()}
    idp_url, red_url = f"http://127.0.0.1:{ports['idp']}", f"http://127.0.0.1:{ports['red']}"
    configs = write_configs(directory, ports, retry="[0.5, 1, 2]")
    red = configs["red"]
    red.write_text(
        red.read_text(encoding="utf-8").replace(
            '[node]\nname = "red"\n',
            f'[node]\nname = "red"\ncountry = "ES"\nroles = ["provider"]\nbase_url = "{red_url}"\n',
        )
        + f"""
[provider]
samples = true
preview_timeout_seconds = 600
preview_return_origins = ["http://127.0.0.1:{ports["blue"]}"]

[eid]
issuer = "{idp_url}"
client_id = "red"
session_secret = "preview-flow-test-secret-0123456789"
required_level = "low"
""",
        encoding="utf-8",
    )
    log = directory / "red.log"
    # the identity provider keeps a session, as real ones do: a new login must be asked for explicitly
    idp_config = IdpConfig(issuer=idp_url, data_dir=directory / "idp", single_sign_on=True)
    idp = ServerThread(create_idp_app(idp_config), ports["idp"])
    procs: list[subprocess.Popen[bytes]] = []

    def start_red() -> None:
        procs.extend(serve_and_work(red, ports["red"], log))
        wait_ready(ports["red"], procs[-2], log)

    def stop_red() -> None:
        stop_all(procs)
        procs.clear()

    def restart_red() -> None:
        stop_red()
        start_red()

    try:
        start_red()
        with idp:
            blue = Blue(configs["blue"], ports["blue"], red_url, directory / "red" / "oots.db")
            blue.restart_red = restart_red
            with blue:
                yield blue
    finally:
        stop_red()


def checked(message: msh.VerifiedMessage, request: edm.QueryRequest, *, tolerate: frozenset[str] = frozenset()) -> Any:
    body = message.payloads[0].data
    report = validate(body)
    blocking = {f.rule for f in report.findings if f.blocking}
    assert blocking <= tolerate, [f.as_dict() for f in report.findings if f.blocking]
    document = edm.parse(body)
    assert isinstance(document, QueryResponse | QueryError)
    assert document.request_id == request.id
    return document


@dataclasses.dataclass
class Preview:
    first: edm.QueryRequest
    conversation: str
    location: str


def start(blue: Blue, version: edm.Version = edm.Version.EDM_V2) -> Preview:
    """Request 1 → EDM:ERR:0002 PreviewRequired with a PreviewLocation on red."""
    first = query_request(kind="diplomas", procedure="T3", preview=True, version=version)
    conversation = str(uuid.uuid4())
    answer = blue.answer(blue.send(first, conversation))
    assert answer.user_message.collaboration_info.action == profile.ACTION_EXCEPTION_RESPONSE
    # a plain-http location (loopback demo) breaks only the https rule of the official v1.0 set
    error = checked(answer, first, tolerate=frozenset({"R-EDM-ERR-C019"}))
    assert isinstance(error, QueryError)
    assert error.code == "EDM:ERR:0002"
    assert error.preview_required
    assert error.preview_method == "GET"
    assert error.preview_location is not None
    assert re.fullmatch(re.escape(blue.red_url) + r"/preview/[A-Za-z0-9_-]{43}", error.preview_location)
    return Preview(first, conversation, error.preview_location)


def second(
    blue: Blue, preview: Preview, *, location: str | None = None, return_location: str | None = None
) -> tuple[edm.QueryRequest, str]:
    v2 = preview.first.specification is edm.Version.EDM_V2
    request = dataclasses.replace(
        preview.first,
        id=edm.new_urn_uuid(),
        preview_location=location or preview.location,
        return_location=(return_location or f"{blue.url}/requester/return/ex-1") if v2 else None,
    )
    return request, blue.send(request, preview.conversation)


def login(client: httpx.Client, location: str, person: str) -> httpx.Response:
    """The user opens the PreviewLocation and logs in at the test IdP as ``person``."""
    page = client.get(location)
    assert page.status_code == 200
    assert "/login/" in str(page.url)  # at the identity provider
    done = client.post(str(page.url), data={"subject": person, "level": "high"})
    return done


def form_of(page: httpx.Response) -> tuple[str, str]:
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    action = re.search(r'<form method="post" action="([^"]+)"', page.text)
    assert csrf is not None
    assert action is not None
    return action.group(1), csrf.group(1)


def test_one_evidence_accepted_and_one_refused(network: Blue) -> None:
    preview = start(network)
    request, message_id = second(network, preview)
    assert network.quiet(message_id)  # held, not answered
    with httpx.Client(follow_redirects=True, timeout=30) as user:
        page = login(user, preview.location, "es-1")
        assert page.status_code == 200, page.text[:500]
        assert str(page.url) == preview.location
        assert "<h1>Preview of your evidence</h1>" in page.text
        assert page.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["referrer-policy"] == "no-referrer"
        hrefs = re.findall(r'<iframe class="pdf" src="([^"]+)"', page.text)
        assert len(hrefs) == 2  # the diploma and its supplement
        pdf = user.get(network.red_url + hrefs[0])
        assert pdf.headers["content-type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF")
        action, csrf = form_of(page)
        decided = user.post(
            network.red_url + action, data={"csrf": csrf, "d0": "accept", "d1": "refuse"}, follow_redirects=False
        )
        assert decided.status_code == 303
        assert decided.headers["location"] == request.return_location
    answer = network.answer(message_id)
    assert answer.user_message.collaboration_info.action == profile.ACTION_EXECUTE_QUERY_RESPONSE
    assert answer.user_message.collaboration_info.conversation_id == preview.conversation
    document = checked(answer, request)
    assert isinstance(document, QueryResponse)
    (evidence,) = document.evidences
    attachment = next(p for p in answer.payloads if f"cid:{p.content_id}" == evidence.attachment.href)
    assert attachment.data == pdf.content  # exactly what the user saw is what is sent
    with httpx.Client(timeout=10) as late:
        assert late.get(preview.location).status_code == 404  # used: closed


def test_refusing_everything_v1(network: Blue) -> None:
    preview = start(network, edm.Version.EDM_V1)
    request, message_id = second(network, preview)  # v1.0: no ReturnLocation slot
    back = f"{network.url}/requester/return/ex-v1"
    with httpx.Client(follow_redirects=True, timeout=30) as user:
        # the requester names its return address on the way in; another origin would be ignored
        user.get(f"{preview.location}?returnurl=https://evil.example.eu/x", follow_redirects=False)
        page = login(user, f"{preview.location}?{urlencode({'returnurl': back})}", "es-1")
        action, csrf = form_of(page)
        done = user.post(
            network.red_url + action, data={"csrf": csrf, "d0": "refuse", "d1": "refuse"}, follow_redirects=False
        )
        assert done.status_code == 303
        assert done.headers["location"] == back
    answer = network.answer(message_id)
    document = checked(answer, request)  # the official v1.0 rules: TC08's empty response
    assert isinstance(document, QueryResponse)
    assert document.evidences == ()
    assert len(answer.payloads) == 1


def test_someone_else_logs_in_then_the_applicant(network: Blue) -> None:
    """A wrong login shows nothing and closes nothing: the user logs out and in again as the applicant."""
    preview = start(network)
    request, message_id = second(network, preview)
    with httpx.Client(follow_redirects=True, timeout=30) as user:
        page = login(user, preview.location, "es-2")
        assert page.status_code == 403
        assert "You are not the person these documents are about" in page.text
        assert "María García López" in page.text  # who is logged in
        assert "Márquez" not in page.text  # not whom the documents are about
        assert 'iframe class="pdf"' not in page.text
        assert network.quiet(message_id)  # still held: the preview stays open
        action, csrf = form_of(page)
        assert action.endswith("/someone-else")
        again = user.post(network.red_url + action, data={"csrf": csrf, "choice": "again"})
        # logged out, and the identity provider asks again (prompt=login) instead of using its session
        assert "/login/" in str(again.url), again.text[:500]
        page = user.post(str(again.url), data={"subject": "es-1", "level": "high"})
        assert page.status_code == 200, page.text[:500]
        assert "<h1>Preview of your evidence</h1>" in page.text
        action, csrf = form_of(page)
        user.post(network.red_url + action, data={"csrf": csrf, "d0": "accept", "d1": "accept"}, follow_redirects=False)
    document = checked(network.answer(message_id), request)
    assert isinstance(document, QueryResponse)
    assert len(document.evidences) == 2


def test_someone_else_ends_the_request(network: Blue) -> None:
    preview = start(network)
    request, message_id = second(network, preview)
    with httpx.Client(follow_redirects=True, timeout=30) as user:
        page = login(user, preview.location, "es-2")
        action, csrf = form_of(page)
        ended = user.post(network.red_url + action, data={"csrf": csrf, "choice": "end"}, follow_redirects=False)
        assert ended.status_code == 303
        assert ended.headers["location"] == request.return_location  # back to the portal
    document = checked(network.answer(message_id), request)
    assert isinstance(document, QueryError)
    assert document.code == "EDM:ERR:0004"
    assert document.detail == "The person who logged in to the preview space is not the person the request is about."
    with httpx.Client(timeout=10) as late:
        assert late.get(preview.location).status_code == 404  # closed


def test_deadline_passed(network: Blue) -> None:
    preview = start(network)
    request, message_id = second(network, preview)
    assert network.quiet(message_id, 1.0)
    # fast-forward the provider's clock for this preview: its deadline and its timeout job are now
    con = sqlite3.connect(network.red_db, timeout=30)
    try:
        past = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S.%f")
        with con:
            (key,) = con.execute(
                "SELECT key FROM provider_previews WHERE conversation_id = ?", (preview.conversation,)
            ).fetchone()
            con.execute("UPDATE provider_previews SET deadline = ? WHERE key = ?", (past, key))
            con.execute(
                "UPDATE queue_jobs SET run_at = ? WHERE kind = 'provider.preview_expire' AND key = ?",
                (past, f"{key}:expire"),
            )
    finally:
        con.close()
    document = checked(network.answer(message_id), request)
    assert isinstance(document, QueryError)
    assert document.code == "EDM:ERR:0005"
    with httpx.Client(timeout=10) as user:
        assert user.get(preview.location).status_code == 404


def test_hostile_second_requests(network: Blue) -> None:
    preview = start(network)
    forged = preview.location[:-43] + "A" * 43
    request, message_id = second(network, preview, location=forged)
    document = checked(network.answer(message_id), request, tolerate=frozenset({"R-EDM-REQ-C005"}))
    assert (document.code, document.detail) == (
        "EDM:ERR:0003",
        "The PreviewLocation does not name an open preview of this conversation.",
    )
    request, message_id = second(network, preview, return_location="https://evil.example.eu/steal")
    document = checked(network.answer(message_id), request)
    assert document.code == "EDM:ERR:0003"
    assert "ReturnLocation" in (document.detail or "")
    # the preview is closed now: the right second request is refused as used
    request, message_id = second(network, preview)
    assert checked(network.answer(message_id), request).code == "EDM:ERR:0003"
    with httpx.Client(timeout=10) as user:
        assert user.get(preview.location).status_code == 404


def test_hostile_forms(network: Blue) -> None:
    preview = start(network)
    request, message_id = second(network, preview)
    with httpx.Client(follow_redirects=True, timeout=30) as user:
        page = login(user, preview.location, "es-1")
        action, csrf = form_of(page)
        url = network.red_url + action
        assert user.post(url, data={"d0": "accept", "d1": "accept"}).status_code == 403  # no CSRF token
        assert user.post(url, data={"csrf": "x" + csrf, "d0": "accept", "d1": "accept"}).status_code == 403
        huge = user.post(url, data={"csrf": csrf, "d0": "accept", "d1": "x" * 100_000})
        assert huge.status_code == 413
        garbage = user.post(url, content=b"\x00\xff" * 50, headers={"content-type": "multipart/form-data"})
        assert garbage.status_code == 400  # only URL-encoded forms
        urlencoded = {"content-type": "application/x-www-form-urlencoded"}
        assert user.post(url, content=b"csrf=\xff\xfe", headers=urlencoded).status_code == 400

        def endless() -> Iterator[bytes]:  # no Content-Length: the limit holds while reading
            yield f"csrf={csrf}&d0=accept&d1=".encode()
            for _ in range(100):
                yield b"x" * 1000

        assert user.post(url, content=endless(), headers=urlencoded).status_code == 413
        partial = user.post(url, data={"csrf": csrf, "d0": "accept", "d1": "perhaps"})
        assert partial.status_code == 422
        assert "Please answer for every document." in partial.text
        # a stranger without the login cannot decide, even with the token and the form
        with httpx.Client(timeout=10, cookies={"oots_preview_csrf_red": csrf}) as stranger:
            refused = stranger.post(url, data={"csrf": csrf, "d0": "accept", "d1": "accept"})
            assert refused.status_code == 303
            assert "/preview/eid/login" in refused.headers["location"]
        assert network.quiet(message_id, 0.5)  # still held: nothing was decided
        ok = user.post(url, data={"csrf": csrf, "d0": "accept", "d1": "accept"}, follow_redirects=False)
        assert ok.status_code == 303
    document = checked(network.answer(message_id), request)
    assert isinstance(document, QueryResponse)
    assert len(document.evidences) == 2


def test_a_held_request_survives_a_restart_of_the_provider(network: Blue) -> None:
    preview = start(network)
    request, message_id = second(network, preview)
    assert network.quiet(message_id, 1.0)  # held
    network.restart_red()  # every provider process stops (SIGTERM) and starts again
    with httpx.Client(follow_redirects=True, timeout=30) as user:
        page = login(user, preview.location, "es-1")
        assert page.status_code == 200
        action, csrf = form_of(page)
        decided = user.post(
            network.red_url + action, data={"csrf": csrf, "d0": "refuse", "d1": "accept"}, follow_redirects=False
        )
        assert decided.status_code == 303
    document = checked(network.answer(message_id), request)
    assert isinstance(document, QueryResponse)
    (evidence,) = document.evidences
    assert evidence.classification is not None
    assert evidence.classification.node == "Annex"  # the supplement, the one accepted


def test_the_journal_records_the_preview(network: Blue) -> None:
    con = sqlite3.connect(network.red_db, timeout=30)
    try:
        rows = con.execute("SELECT event, outcome FROM audit_entries WHERE side = 'provider'").fetchall()
        leftovers = con.execute(
            "SELECT count(*) FROM provider_previews WHERE state IN ('answered', 'expired') AND subject IS NOT NULL"
        ).fetchone()
        documents = con.execute(
            "SELECT count(*) FROM provider_preview_documents d JOIN provider_previews p ON p.key = d.preview_key "
            "WHERE p.state IN ('answered', 'expired')"
        ).fetchone()
    finally:
        con.close()
    events = {r[0] for r in rows}
    assert {"preview_required", "preview_shown", "preview_decision", "timeout", "evidence_sent"} <= events
    assert ("request_received", "held") in rows
    assert leftovers == (0,)
    assert documents == (0,)
