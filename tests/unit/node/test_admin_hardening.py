"""The admin area's answers: headers on every one, form limits, cross-site posts, error ids."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from itsdangerous import TimestampSigner
from starlette.applications import Starlette
from starlette.routing import Route

from oots.node import build_context, create_app
from oots.node.admin import FAILURES_ALLOWED, FORM_LIMIT, SECURITY_HEADERS, hash_password
from oots.settings import load_settings

from . import test_node_ops
from .test_node_ops import PASSWORD, AppClient, login, node_config

#: The node with a password-protected admin area, as the other admin tests use it.
admin_client = test_node_ops.admin_client


def _check_headers(response: httpx.Response, what: str) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (what, name)
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy


def _admin_paths(client: AppClient) -> list[tuple[str, str]]:
    paths = []
    for route in client.app.routes:
        if isinstance(route, Route) and route.path.startswith("/admin"):
            path = route.path.replace("{rest:path}", "nothing-here")
            paths += [(method, path) for method in sorted(route.methods or ()) if method != "HEAD"]
    return paths


def test_every_admin_route_refuses_a_stranger_and_carries_the_headers(admin_client: AppClient) -> None:
    paths = _admin_paths(admin_client)
    assert ("GET", "/admin/queue") in paths
    assert ("POST", "/admin/logout") in paths
    for method, path in paths:
        response = admin_client.request(method, path, data={"job": "all"} if method == "POST" else None)
        _check_headers(response, f"{method} {path}")
        if path == "/admin/login":
            assert response.status_code in (200, 401), path  # the login page, or a wrong (empty) password
        elif path == "/admin/logout":
            assert response.status_code == 303
            assert response.headers["location"] == "/admin/login"
        elif "nothing-here" in path:
            assert response.status_code == 404
        else:
            assert response.status_code == 303, f"{method} {path}"
            assert response.headers["location"] == "/admin/login"
    assert login(admin_client) == 303
    page = admin_client.get("/admin")
    _check_headers(page, "overview")
    # the page's only style is the one the policy names by its hash: no inline style attributes
    assert " style=" not in page.text


def test_the_area_that_is_off_carries_the_headers_too(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    with AppClient(create_app(load_settings(node_config(tmp_path)))) as client:
        _check_headers(client.get("/admin/queue"), "off")
        _check_headers(client.post("/admin/login"), "off, a form")  # was Starlette's 405 without them


def test_concurrent_wrong_passwords_get_no_more_tries_than_the_limit(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    digest = hash_password(PASSWORD, iterations=1000)
    app = create_app(build_context(load_settings(node_config(tmp_path, f'[admin]\npassword_hash = "{digest}"\n'))))
    statuses = asyncio.run(_guess_all([app]))
    assert statuses.count(401) == FAILURES_ALLOWED
    assert statuses.count(429) == 30 - FAILURES_ALLOWED


async def _guess_all(apps: list[Starlette], tries: int = 30) -> list[int]:
    """``tries`` wrong passwords from one client address, all at once, spread over ``apps``."""
    clients = [
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=("192.0.2.7", 4000)), base_url="http://node.test"
        )
        for app in apps
    ]
    try:
        answers = await asyncio.gather(
            *(clients[i % len(clients)].post("/admin/login", data={"password": f"guess {i}"}) for i in range(tries))
        )
    finally:
        for client in clients:
            await client.aclose()
    return [a.status_code for a in answers]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shared_database(request: pytest.FixtureRequest) -> str:
    """The ``[database]`` section of a node: its SQLite file in the data directory, or a fresh PostgreSQL
    database (skipped, saying why, when ``OOTS_TEST_POSTGRES_URL`` names no server)."""
    if request.param == "sqlite":
        return ""
    make: Callable[[], str] = request.getfixturevalue("postgres_database")
    return f'[database]\nurl = "{make()}"\n'


def test_concurrent_wrong_passwords_to_two_processes_get_no_more_tries_than_the_limit(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, shared_database: str
) -> None:
    """Two applications on one database (two processes of one node): the count is the database's."""
    digest = hash_password(PASSWORD, iterations=1000)
    settings = load_settings(node_config(tmp_path, f'{shared_database}[admin]\npassword_hash = "{digest}"\n'))
    contexts = [build_context(settings), build_context(settings)]
    try:
        statuses = asyncio.run(_guess_all([create_app(ctx) for ctx in contexts]))
        assert statuses.count(401) == FAILURES_ALLOWED
        assert statuses.count(429) == 30 - FAILURES_ALLOWED
        with AppClient(create_app(contexts[1])) as other:  # another address is not held up
            assert login(other) == 303
    finally:
        for ctx in contexts:
            ctx.database.dispose()


def test_forms_are_limited_in_size_and_type(admin_client: AppClient) -> None:
    big = admin_client.post("/admin/login", data={"password": "x" * (FORM_LIMIT + 1)})
    assert big.status_code == 413
    _check_headers(big, "413")
    chunked = admin_client.post("/admin/login", content=iter([b"password=", b"x" * (FORM_LIMIT + 1)]))
    assert chunked.status_code == 413  # no length given: counted while read
    json_body = admin_client.post("/admin/login", json={"password": PASSWORD})
    assert json_body.status_code == 415
    multipart = admin_client.post("/admin/login", files={"password": ("p", PASSWORD.encode())})
    assert multipart.status_code == 415
    assert login(admin_client) == 303  # a plain form still logs in


def test_forms_posted_from_another_site_are_refused(admin_client: AppClient) -> None:
    cross = admin_client.post("/admin/login", data={"password": PASSWORD}, headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403
    _check_headers(cross, "403")
    assert "oots_admin" not in cross.headers.get("set-cookie", "")
    same = admin_client.post("/admin/login", data={"password": PASSWORD}, headers={"Sec-Fetch-Site": "same-origin"})
    assert same.status_code == 303


def test_a_form_whose_origin_is_another_site_is_refused_when_the_browser_sends_no_fetch_metadata(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    digest = hash_password(PASSWORD, iterations=1000)
    extra = f'base_url = "http://admin.example.org:8000"\n[admin]\npassword_hash = "{digest}"\n'
    with AppClient(create_app(load_settings(node_config(tmp_path, extra)))) as client:
        for origin in (
            "https://evil.example",
            "http://node.test:8080",
            "https://node.test",
            "http://admin.example.org",
            "null",
            "garbage",
        ):
            refused = client.post("/admin/login", data={"password": PASSWORD}, headers={"Origin": origin})
            assert refused.status_code == 403, origin
            assert "A form posted from another site is refused." in refused.text
            _check_headers(refused, "403 by Origin")
            assert "oots_admin" not in refused.headers.get("set-cookie", "")
        # the request's own origin (default port or not), the node's base_url (behind a reverse proxy)
        for origin in ("http://node.test", "http://NODE.test:80", "http://admin.example.org:8000"):
            assert (
                client.post("/admin/login", data={"password": PASSWORD}, headers={"Origin": origin}).status_code == 303
            )
        # no Origin and no Sec-Fetch-Site (an old client): let through, as before
        assert login(client) == 303
        # Sec-Fetch-Site decides when it is there: the browser knows better than the Origin check
        same = client.post(
            "/admin/login",
            data={"password": PASSWORD},
            headers={"Sec-Fetch-Site": "same-origin", "Origin": "https://evil.example"},
        )
        assert same.status_code == 303
        token = re.search(r"name='csrf' value='([0-9a-f]+)'", client.get("/admin").text)
        assert token is not None
        foreign = client.post(
            "/admin/logout", data={"csrf": token.group(1)}, headers={"Origin": "https://evil.example"}
        )
        assert foreign.status_code == 403
        assert client.get("/admin").status_code == 200  # still logged in


@contextmanager
def two_processes_one_session(config: Path) -> Iterator[tuple[AppClient, AppClient, str]]:
    """Two apps of one node (as two processes), logged in on the first, its session cookie (yielded third)
    copied to the second."""
    with AppClient(create_app(load_settings(config))) as one, AppClient(create_app(load_settings(config))) as two:
        assert login(one) == 303
        cookie = one.cookies.get("oots_admin")
        assert cookie
        two.cookies.set("oots_admin", cookie)
        yield one, two, cookie


def test_logout_revokes_the_session_for_every_copy_of_the_cookie(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    digest = hash_password(PASSWORD, iterations=1000)
    config = node_config(tmp_path, f'[admin]\npassword_hash = "{digest}"\n')
    with two_processes_one_session(config) as (one, two, cookie):
        assert two.get("/admin").status_code == 200  # the copy works in another process of the node
        token = re.search(r"name='csrf' value='([0-9a-f]+)'", one.get("/admin").text)
        assert token is not None
        out = one.post("/admin/logout", data={"csrf": token.group(1)})
        assert out.status_code == 303
        assert (copied := two.get("/admin")).status_code == 303  # the copy is refused now, though signed and young
        assert copied.headers["location"] == "/admin/login"
        one.cookies.set("oots_admin", cookie)  # and so is the cookie itself, sent again
        assert one.get("/admin").status_code == 303
        one.cookies.clear()
        assert login(one) == 303  # a new login is a new session
        assert one.cookies.get("oots_admin") != cookie
        assert one.get("/admin").status_code == 200


def test_a_signed_cookie_without_a_session_row_opens_nothing(admin_client: AppClient) -> None:
    from oots.audit.journal import load_journal
    from oots.node.admin import COOKIE, _session_secret

    settings = admin_client.app.state.context.settings
    assert login(admin_client) == 303  # the keys exist
    secret = _session_secret(
        settings, settings.admin.password_hash.get_secret_value(), load_journal(settings).derive_key("admin-session")
    )
    forged = TimestampSigner(secret, salt="oots-admin").sign("0" * 64).decode()
    admin_client.cookies.set(COOKIE, forged)
    assert admin_client.get("/admin").status_code == 303


def test_expired_sessions_are_refused_and_removed_at_the_next_login(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    import datetime as dt

    from sqlalchemy import func, select

    from oots.node.models import AdminSession

    digest = hash_password(PASSWORD, iterations=1000)
    ctx = build_context(
        load_settings(node_config(tmp_path, f'[admin]\npassword_hash = "{digest}"\nsession_minutes = 5\n'))
    )
    now = [dt.datetime.now(dt.UTC)]
    ctx.clock = lambda: now[0]

    def rows() -> int:
        with ctx.database.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(AdminSession)).scalar_one())

    with AppClient(create_app(ctx)) as client:
        assert login(client) == 303
        assert client.get("/admin").status_code == 200
        now[0] += dt.timedelta(minutes=5)
        assert client.get("/admin").status_code == 303  # expired by the database's row, not only the cookie
        assert rows() == 1
        assert login(client) == 303
        assert rows() == 1  # the expired one went when the new one came
        assert client.get("/admin").status_code == 200


@pytest.mark.parametrize("login_with", ["password", "eid"])
def test_building_the_admin_routes_writes_no_file(
    login_with: str, tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    """Neither the journal's keys nor (eID admin login on, no ``eid.session_secret``) the eID cookies'
    key are written while the routes are built; the first request that needs them makes them."""
    from oots.eid.web import SESSION_KEY_FILE
    from oots.node.admin import admin_routes

    digest = hash_password(PASSWORD, iterations=1000)
    if login_with == "password":
        extra = f'[admin]\npassword_hash = "{digest}"\n'
    else:
        extra = (
            'base_url = "http://node.test"\n[eid]\nissuer = "http://idp.test"\nclient_id = "be-node"\n'
            '[admin]\neid_login = true\neid_admins = ["BE/BE/85072312345"]\n'
        )
    ctx = build_context(load_settings(node_config(tmp_path, extra)))
    before = sorted(p.name for p in tmp_path.iterdir())
    assert "audit.keys" not in before
    assert SESSION_KEY_FILE not in before
    routes = admin_routes(ctx)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    app = Starlette(routes=routes)
    with AppClient(app) as client:
        if login_with == "password":  # the first login derives the keys (and makes the journal's)
            assert login(client) == 303
            assert (tmp_path / "audit.keys").exists()
        else:  # no eID login yet: on to it, with the eID cookies' key read (made) on the way
            response = client.get("/admin/eid")
            assert response.status_code == 303
            assert response.headers["location"].startswith("/eid/login?")
            assert (tmp_path / SESSION_KEY_FILE).exists()
    ctx.database.dispose()


def test_an_unexpected_failure_shows_an_error_id_that_the_log_has(
    admin_client: AppClient, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from oots.store import queue

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("secret detail BE/BE/85072312345")

    assert login(admin_client) == 303
    monkeypatch.setattr(queue, "counts", broken)
    with caplog.at_level(logging.ERROR, logger="oots.node.admin"):
        page = admin_client.get("/admin")
    assert page.status_code == 500
    _check_headers(page, "500")
    found = re.search(r"Error id: <code>([0-9a-f]{12})</code>", page.text)
    assert found is not None
    assert found.group(1) in caplog.text
    assert "secret detail" not in page.text
    assert "Traceback" not in page.text


def test_the_journal_page_pages_finds_old_entries_and_refuses_bad_input(admin_client: AppClient) -> None:
    from oots.audit.journal import load_journal

    ctx = admin_client.app.state.context
    journal = load_journal(ctx.settings)
    with ctx.database.session() as session:
        journal.append(session, side="requester", event="request_sent", exchange_id="oldest", message_ids=["m-0@oots"])
        for i in range(1, 120):
            journal.append(session, side="requester", event="evidence_received", exchange_id=f"ex-{i}")
    assert login(admin_client) == 303
    first = admin_client.get("/admin/audit")
    assert first.text.count("<tr><td>") == 50
    assert "Next page" in first.text
    assert " UTC</td>" in first.text
    assert "<select id='event' name='event'>" in first.text
    assert "<option value='request_sent'>" in first.text
    token = re.search(r"name='csrf' value='([0-9a-f]+)'", first.text)
    assert token is not None
    third = admin_client.post("/admin/audit", data={"csrf": token.group(1), "page": "3"})
    assert third.text.count("<tr><td>") == 20
    assert "oldest" in third.text
    assert "Next page" not in third.text
    assert "Previous page" in third.text
    found = admin_client.get("/admin/audit", params={"message_id": "m-0@oots"})
    assert "oldest" in found.text
    assert found.text.count("<tr><td>") == 1
    by_event = admin_client.get("/admin/audit", params={"event": "request_sent"})
    assert by_event.text.count("<tr><td>") == 1
    assert "<option value='request_sent' selected>" in by_event.text
    for bad in ({"page": "0"}, {"page": "two"}, {"event": "no_such_event"}, {"exchange_id": "x" * 201}):
        refused = admin_client.get("/admin/audit", params=bad)
        assert refused.status_code == 400, bad
        assert "Traceback" not in refused.text
        _check_headers(refused, "400")


def test_sessions_are_keyed_from_the_seal_key_shared_by_processes(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    import hashlib

    from itsdangerous import TimestampSigner

    digest = hash_password(PASSWORD, iterations=1000)
    config = node_config(tmp_path, f'[admin]\npassword_hash = "{digest}"\n')
    with two_processes_one_session(config) as (_, two, cookie):
        assert two.get("/admin").status_code == 200  # another process of the node takes the session
        # who knows only the password hash (a configuration file) cannot make a session
        from_hash = hashlib.sha256(b"oots-admin-session\0" + digest.encode()).digest()
        forged = TimestampSigner(from_hash, salt="oots-admin").sign("password:abc").decode()
        two.cookies.set("oots_admin", forged)
        assert two.get("/admin").status_code == 303
    other = tmp_path / "other"
    other.mkdir()
    moved = node_config(other, f'[admin]\npassword_hash = "{digest}"\n')  # another data directory: other keys
    with AppClient(create_app(load_settings(moved))) as three:
        three.cookies.set("oots_admin", cookie)
        assert three.get("/admin").status_code == 303


def test_the_exchanges_and_queue_tables_are_paged(admin_client: AppClient) -> None:
    from oots.store import queue

    ctx = admin_client.app.state.context
    with ctx.database.session() as session:
        for _ in range(60):
            queue.enqueue(session, "demo.fail", {}, max_attempts=1)
    with ctx.database.session() as session:
        session.execute(queue.QueueJob.__table__.update().values(status="dead", last_error="boom"))
    assert login(admin_client) == 303
    first = admin_client.get("/admin/queue").text
    assert first.count("<button>Requeue</button>") == 50
    assert "<a href='/admin/queue?page=2'>Next page</a>" in first
    second = admin_client.get("/admin/queue", params={"page": "2"}).text
    assert second.count("<button>Requeue</button>") == 10
    assert "<a href='/admin/queue?page=1'>Previous page</a>" in second
    assert admin_client.get("/admin/queue", params={"page": "-1"}).status_code == 400
    assert admin_client.get("/admin/exchanges", params={"page": "x"}).status_code == 400
    assert admin_client.get("/admin/exchanges", params={"page": "2"}).status_code == 200


def test_another_method_is_refused_with_the_headers_and_what_the_page_takes(admin_client: AppClient) -> None:
    # Before, Starlette answered these itself: a 405 without the area's headers
    for method, path, allow in [
        ("PUT", "/admin", "GET, HEAD"),
        ("DELETE", "/admin/login", "GET, HEAD, POST"),
        ("PATCH", "/admin/logout", "POST"),
        ("PUT", "/admin/nothing-here", "GET, HEAD, POST"),
    ]:
        response = admin_client.request(method, path)
        assert response.status_code == 405, (method, path)
        _check_headers(response, f"{method} {path}")
        assert response.headers["allow"] == allow, (method, path)
    assert admin_client.get("/administrator").status_code == 404  # not the area's


def test_the_exchanges_page_says_how_long_received_messages_are_kept(admin_client: AppClient) -> None:
    assert login(admin_client) == 303
    page = admin_client.get("/admin/exchanges").text
    assert "is purged with its payloads 7 days after it was received" in page
    assert "One whose delivery failed is kept past that while its dead <code>as4.deliver</code> job" in page


def test_the_retention_note_names_the_window_in_its_unit() -> None:
    from oots.node.admin import _retention

    assert [_retention(s).split(" after it was received")[0].split("payloads ")[1] for s in (86400, 7200, 90, 60)] == [
        "1 day",
        "2 hours",
        "90 seconds",
        "1 minute",
    ]
