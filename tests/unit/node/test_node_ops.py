"""Operations of a node: /metrics, correlation ids and JSON logs, the admin area."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send
from typer.testing import CliRunner

from config_snippets import be_births_service, broken_births_register
from oots.as4.certificates import standing
from oots.as4.http import tls_context
from oots.as4.keys import init_dev_pki, issue, load_certificate, load_key_pair, make_ca
from oots.audit.journal import load_journal
from oots.cli import app as cli_app
from oots.cli import main as cli_main
from oots.errors import ConfigError, StoreError
from oots.network.pair import write_node_configs
from oots.node import NodeContext, build_context, create_app
from oots.node.admin import hash_password, verify_password
from oots.node.observe import CorrelationMiddleware, Metrics, configure_logging, correlation_id
from oots.provider.role import create_role
from oots.settings import LogSettings, load_settings
from oots.store import open_database, queue

PASSWORD = "correct horse battery staple"


class _SyncTransport(httpx.BaseTransport):
    def __init__(self, app: Starlette) -> None:
        self._inner = httpx.ASGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def go() -> httpx.Response:
            req = httpx.Request(request.method, request.url, headers=request.headers, content=request.read())
            response = await self._inner.handle_async_request(req)
            return httpx.Response(response.status_code, headers=response.headers, content=await response.aread())

        return asyncio.run(go())


class AppClient(httpx.Client):
    """A synchronous client of one in-process application (Starlette's own wants httpx2)."""

    def __init__(self, app: Starlette) -> None:
        super().__init__(transport=_SyncTransport(app), base_url="http://node.test")
        self.app = app


def node_config(tmp_path: Path, extra: str = "") -> Path:
    config = tmp_path / "node.toml"
    config.write_text(
        f'[node]\nname = "be-node"\ncountry = "BE"\ndata_dir = "{tmp_path.as_posix()}"\n{extra}', encoding="utf-8"
    )
    return config


@pytest.fixture
def admin_client(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> Iterator[AppClient]:
    digest = hash_password(PASSWORD, iterations=1000)
    settings = load_settings(node_config(tmp_path, f'[admin]\npassword_hash = "{digest}"\n'))
    with AppClient(create_app(settings)) as client:
        yield client


def login(client: AppClient, password: str = PASSWORD) -> int:
    return client.post("/admin/login", data={"password": password}).status_code


# --- metrics --------------------------------------------------------------------------------------------


def parse_exposition(text: str) -> dict[str, float]:
    samples = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        name, value = line.rsplit(" ", 1)
        samples[name] = float(value)
    return samples


def test_metrics_count_requests_and_read_the_queue(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    settings = load_settings(node_config(tmp_path))
    ctx = build_context(settings)
    with ctx.database.session() as session:
        queue.enqueue(session, "demo.work", {"n": 1})
        queue.enqueue(session, "demo.work", {"n": 2})
    with AppClient(create_app(ctx)) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/health").status_code == 200
        assert client.get("/no-such-page").status_code == 404
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    assert "# TYPE oots_http_requests_total counter" in text
    assert "# TYPE oots_http_request_duration_seconds histogram" in text
    samples = parse_exposition(text)
    assert samples['oots_http_requests_total{method="GET",route="/health",status="200"}'] == 2
    assert samples['oots_http_requests_total{method="GET",route="unmatched",status="404"}'] == 1
    assert samples['oots_http_request_duration_seconds_count{method="GET",route="/health"}'] == 2
    assert samples['oots_http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/health"}'] == 2
    assert samples['oots_queue_jobs{kind="demo.work",status="queued"}'] == 2
    assert samples["oots_database_up"] == 1


def test_every_sample_belongs_to_the_family_its_help_and_type_name() -> None:
    # Text format 0.0.4: a counter's samples carry the family's name as it is (``..._total`` in both);
    # only a histogram's add ``_bucket``, ``_sum`` and ``_count``.
    metrics = Metrics()
    metrics.observe_request("GET", "/health", 200, 0.01)
    families: dict[str, str] = {}
    helped: set[str] = set()
    for line in metrics.exposition().splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            families[name] = kind
        elif line.startswith("# HELP "):
            helped.add(line.split(" ")[2])
        elif line:
            name = re.split(r"[{ ]", line, maxsplit=1)[0]
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            kind = families.get(name) or families.get(base)
            assert kind is not None, f"{name} has no # TYPE line"
            assert name in families or kind == "histogram", name
    assert families["oots_http_requests_total"] == "counter"
    assert set(families) == helped


def test_routes_are_labelled_with_their_whole_path_template(tmp_path: Path) -> None:
    async def page(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def raw(scope: Scope, receive: Receive, send: Send) -> None:
        await PlainTextResponse("raw")(scope, receive, send)

    portal = Starlette(routes=[Route("/", page), Route("/applications/{ex}", page), Route("/login", page)])
    metrics = Metrics()
    app = Starlette(
        routes=[Route("/", page), Mount("/portal", app=portal), Mount("/files", app=raw)],
        middleware=[Middleware(CorrelationMiddleware, metrics=metrics)],
    )
    with AppClient(app) as client:
        for path in ("/", "/portal/", "/portal/applications/a1", "/portal/applications/b2", "/portal/login"):
            assert client.get(path).status_code == 200
        client.get("/files/x/y")
        client.get("/favicon.ico")
    samples = parse_exposition(metrics.exposition())
    routes = {re.search(r'route="([^"]*)"', name).group(1) for name in samples if "route=" in name}  # type: ignore[union-attr]
    assert routes == {"/", "/portal/", "/portal/applications/{ex}", "/portal/login", "/files/{path}", "unmatched"}
    assert samples['oots_http_requests_total{method="GET",route="/portal/applications/{ex}",status="200"}'] == 2
    assert samples['oots_http_requests_total{method="GET",route="/",status="200"}'] == 1


def _break_the_database(ctx: NodeContext) -> None:
    """A database that fails as a lost one does: its file is no database any more. Every handle of the
    process on it closes first (the pool's and the checkpoint thread's, which would otherwise go on
    using the log files removed here and fail with "disk I/O error" instead)."""
    ctx.database.dispose()
    path = Path(str(ctx.database.url.database))
    for extra in (Path(f"{path}-wal"), Path(f"{path}-shm")):
        extra.unlink(missing_ok=True)
    path.write_bytes(b"this is not a database, just as the server is gone" * 100)


def test_metrics_and_readiness_answer_while_the_database_is_down(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = build_context(load_settings(node_config(tmp_path)))
    with AppClient(create_app(ctx)) as client:
        assert client.get("/ready").status_code == 200
        _break_the_database(ctx)
        caplog.clear()
        with caplog.at_level(logging.INFO):
            ready = client.get("/ready")
            response = client.get("/metrics")
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"
    assert response.status_code == 200
    samples = parse_exposition(response.text)
    assert samples["oots_database_up"] == 0
    assert not [name for name in samples if name.startswith("oots_queue_jobs")]
    assert any(name.startswith("oots_http_requests_total") for name in samples)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.name for r in warnings] == ["oots.node.app", "oots.node.observe"], warnings
    assert all(r.exc_info is None for r in warnings)
    assert ready.json()["error_id"] in warnings[0].getMessage()
    assert "not a database" in warnings[0].getMessage()


def test_metrics_are_node_wide_whichever_process_answers(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    settings = load_settings(node_config(tmp_path))
    ctx = build_context(settings)
    other = Metrics(ctx.database, node="be-node")  # another process of the same node
    with ctx.database.session() as session:
        queue.enqueue(session, "demo.work", {"n": 1})
    assert parse_exposition(other.exposition())['oots_queue_jobs{kind="demo.work",status="queued"}'] == 1


def test_certificates_are_warned_at_start_and_their_ends_are_metrics(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=800)
    endpoints = {"blue": "http://blue.test/as4", "red": "http://red.test/as4"}
    configs = write_node_configs(tmp_path, endpoints, now=long_ago)  # blue's certificates end in 25 days
    init_dev_pki(tmp_path / "pki", ["red"], now=long_ago, days=30)  # red's ended 770 days ago
    with caplog.at_level(logging.WARNING, logger="oots.node.app"):
        ctx = build_context(load_settings(configs["blue"]))  # starts all the same
    told = [r.getMessage() for r in caplog.records if r.name == "oots.node.app"]
    red_ends = long_ago - dt.timedelta(minutes=5) + dt.timedelta(days=30)
    assert any(
        f"partners[red].encryption_certificate: expired on {red_ends:%Y-%m-%d %H:%M} UTC: messages to partner red"
        in line
        for line in told
    ), told
    assert any("as4.signing_certificate: the node's own signing certificate in " in line for line in told), told
    with AppClient(create_app(ctx)) as client:
        text = client.get("/metrics").text
    assert "# TYPE oots_certificate_expiry_timestamp_seconds gauge" in text
    samples = parse_exposition(text)
    blue_ends = (long_ago - dt.timedelta(minutes=5) + dt.timedelta(days=825)).timestamp()
    for use in ("signing", "encryption"):
        got = samples[f'oots_certificate_expiry_timestamp_seconds{{party="blue_gw",use="{use}"}}']
        assert abs(got - blue_ends) < 1
    red = samples['oots_certificate_expiry_timestamp_seconds{party="red_gw",use="partner"}']
    assert abs(red - red_ends.timestamp()) < 1


def test_label_values_are_escaped() -> None:
    metrics = Metrics()
    metrics.observe_request("GET", 'a"b\\c\nd', 200, 0.01)
    assert 'route="a\\"b\\\\c\\nd"' in metrics.exposition()


# --- correlation ids and logs ---------------------------------------------------------------------------


def logging_app() -> Starlette:
    async def work(request: Request) -> PlainTextResponse:
        logging.getLogger("oots.test").info("did the work", extra={"exchange_id": "x-1"})
        return PlainTextResponse(correlation_id() or "")

    return Starlette(routes=[Route("/work", work)], middleware=[Middleware(CorrelationMiddleware)])


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_correlation_id_is_kept_or_made_and_logged_as_json(restore_logging: None) -> None:
    handler = configure_logging(LogSettings(level="INFO", json=True), node="be-node")
    assert isinstance(handler, logging.StreamHandler)
    stream = io.StringIO()
    handler.setStream(stream)
    with AppClient(logging_app()) as client:
        given = client.get("/work", headers={"X-Correlation-ID": "req-42"})
        made = client.get("/work", headers={"X-Correlation-ID": "bad id <script>"})
    assert given.headers["x-correlation-id"] == "req-42" == given.text
    assert made.headers["x-correlation-id"] == made.text
    assert re.fullmatch(r"[0-9a-f]{16}", made.text)
    records = [json.loads(line) for line in stream.getvalue().splitlines() if "did the work" in line]
    assert [r["correlation_id"] for r in records] == ["req-42", made.text]
    first = records[0]
    assert (first["level"], first["logger"], first["node"], first["exchange_id"]) == (
        "INFO",
        "oots.test",
        "be-node",
        "x-1",
    )
    assert first["time"].endswith("Z")


@pytest.mark.parametrize("json_format", [True, False])
def test_a_logged_exception_keeps_its_places_but_not_what_it_quotes(restore_logging: None, json_format: bool) -> None:
    handler = configure_logging(LogSettings(level="INFO", json=json_format), node="fr-node")
    assert isinstance(handler, logging.StreamHandler)
    stream = io.StringIO()
    handler.setStream(stream)
    secret = "Dupont Marie 1980-02-29"

    def lookup() -> None:
        try:
            {"x": 1}[secret]
        except KeyError as exc:
            raise StoreError("the register failed") from exc

    try:
        lookup()
    except StoreError:
        logging.getLogger("oots.test").exception("lookup failed")
    out = stream.getvalue()
    assert "lookup failed" in out
    assert secret not in out  # neither the KeyError's message nor the source line quoting it
    text = json.loads(out.splitlines()[-1])["exception"] if json_format else out
    assert "StoreError: the register failed; raised through" in text
    assert "in lookup" in text
    assert "raised from or while handling: KeyError; raised through" in text


def test_plain_logs_carry_the_correlation_id_too(restore_logging: None) -> None:
    handler = configure_logging(LogSettings(level="INFO"), node="be-node")
    assert isinstance(handler, logging.StreamHandler)
    stream = io.StringIO()
    handler.setStream(stream)
    with AppClient(logging_app()) as client:
        client.get("/work", headers={"X-Correlation-ID": "req-7"})
    line = next(x for x in stream.getvalue().splitlines() if "did the work" in x)
    assert "be-node INFO oots.test [req-7]: did the work" in line


# --- admin area -----------------------------------------------------------------------------------------


def test_password_hashes() -> None:
    digest = hash_password("s3cret horses", iterations=1000)
    assert digest.startswith("pbkdf2_sha256$1000$")
    assert verify_password("s3cret horses", digest)
    assert not verify_password("s3cret horses ", digest)
    assert hash_password("s3cret horses", iterations=1000) != digest  # salted
    with pytest.raises(ConfigError):
        verify_password("x", "md5$abc")
    for short in ("", "x", "11 letters!"):
        with pytest.raises(ConfigError, match="too short: use at least 12 characters"):
            hash_password(short)
    assert verify_password("12 letters!!", hash_password("12 letters!!", iterations=1000))


def test_cli_prints_a_usable_hash() -> None:
    typed = "purple elephant lamp\n" * 2
    result = CliRunner().invoke(cli_app, ["admin", "hash-password", "--iterations", "100000"], input=typed)
    assert result.exit_code == 0, result.output
    digest = result.output.strip().splitlines()[-1]
    assert verify_password("purple elephant lamp", digest)


def test_cli_warns_that_a_password_option_lands_in_the_shell_history() -> None:
    given = CliRunner().invoke(
        cli_app, ["admin", "hash-password", "--iterations", "100000", "--password", "purple elephant lamp"]
    )
    assert given.exit_code == 0, given.output
    assert "lands in the shell's history" in given.stderr
    assert verify_password("purple elephant lamp", given.stdout.strip())
    typed = "purple elephant lamp\n" * 2
    asked = CliRunner().invoke(cli_app, ["admin", "hash-password", "--iterations", "100000"], input=typed)
    assert "history" not in asked.output


def test_cli_refuses_a_short_password(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli_main(["admin", "hash-password", "--password", "pw"])
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert "the admin password is too short: use at least 12 characters" in captured.err
    assert "pbkdf2" not in captured.out


def test_admin_area_is_off_without_a_password(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    with AppClient(create_app(load_settings(node_config(tmp_path)))) as client:
        page = client.get("/admin/queue")
    assert "Admin area is off" in page.text
    assert "password_hash" in page.text


def test_a_wrong_hash_is_a_configuration_error(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    settings = load_settings(node_config(tmp_path, '[admin]\npassword_hash = "plain-text"\n'))
    with pytest.raises(ConfigError, match="hash-password"):
        create_app(settings)


def test_admin_pages_need_a_login(admin_client: AppClient) -> None:
    for path in ("/admin", "/admin/queue", "/admin/audit", "/admin/exchanges", "/admin/partners"):
        response = admin_client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/admin/login"
    assert login(admin_client, "wrong") == 401
    forged = admin_client.get("/admin", headers={"Cookie": "oots_admin=admin.forged.signature"})
    assert forged.status_code == 303


def test_admin_overview_and_pages_after_login(admin_client: AppClient) -> None:
    response = admin_client.post("/admin/login", data={"password": PASSWORD})
    assert response.status_code == 303
    cookie = response.headers["set-cookie"].lower()
    assert "path=/admin" in cookie
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    overview = admin_client.get("/admin")
    assert overview.status_code == 200
    assert "be-node" in overview.text
    assert admin_client.get("/admin/exchanges").status_code == 200
    partners = admin_client.get("/admin/partners")
    assert "this node" in partners.text
    assert admin_client.post("/admin/logout").status_code == 400  # the logout form carries the session's token
    token = re.search(r"name='csrf' value='([0-9a-f]+)'", overview.text)
    assert token is not None
    out = admin_client.post("/admin/logout", data={"csrf": token.group(1)})
    assert out.headers["location"] == "/admin/login"
    assert admin_client.get("/admin", follow_redirects=False).status_code == 303


def test_dead_letters_are_requeued_with_the_form_token_only(
    admin_client: AppClient, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = admin_client.app.state.context
    with ctx.database.session() as session:
        job = queue.enqueue(session, "demo.fail", {}, max_attempts=1)
    with ctx.database.session() as session:
        session.execute(queue.QueueJob.__table__.update().values(status="dead", last_error="boom"))
    assert login(admin_client) == 303
    page = admin_client.get("/admin/queue").text
    assert "boom" in page
    token = re.search(r"name='csrf' value='([0-9a-f]+)'", page)
    assert token is not None
    refused = admin_client.post("/admin/queue", data={"job": str(job), "csrf": "0" * 64})
    assert "stale" in refused.text
    with ctx.database.session() as session:
        assert queue.counts(session)["demo.fail"] == {"dead": 1}
    with caplog.at_level(logging.INFO, logger="oots.node.admin"):
        done = admin_client.post("/admin/queue", data={"job": str(job), "csrf": token.group(1)})
    assert f"admin requeued dead job {job} (demo.fail)" in caplog.messages
    assert done.status_code == 303  # POST-redirect-GET: reloading the page that follows requeues nothing
    assert done.headers["location"] == f"/admin/queue?job={job}"
    assert f"Job {job} put back in the queue." in admin_client.get(done.headers["location"]).text
    with ctx.database.session() as session:
        assert queue.counts(session)["demo.fail"] == {"queued": 1}
    again = admin_client.post("/admin/queue", data={"job": str(job), "csrf": token.group(1)})
    assert again.headers["location"] == "/admin/queue?missing=1"
    assert "There is no such dead job." in admin_client.get(again.headers["location"]).text
    with caplog.at_level(logging.INFO, logger="oots.node.admin"):
        every = admin_client.post("/admin/queue", data={"job": "all", "csrf": token.group(1)})
    assert every.headers["location"] == "/admin/queue?requeued=0"
    assert "admin requeued every dead job (0)" in caplog.messages


def test_dead_letters_are_discarded_with_the_form_token_only(
    admin_client: AppClient, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = admin_client.app.state.context
    with ctx.database.session() as session:
        jobs = [queue.enqueue(session, kind, {}, max_attempts=1) for kind in ("demo.fail", "demo.fail", "demo.other")]
        waiting = queue.enqueue(session, "demo.later", {})
        session.execute(queue.QueueJob.__table__.update().where(queue.QueueJob.id.in_(jobs)).values(status="dead"))
    assert login(admin_client) == 303
    page = admin_client.get("/admin/queue").text
    assert page.count("<button name='action' value='discard'>Discard</button>") == 3
    assert "<button>Discard all dead jobs</button>" in page
    assert "<input type='checkbox' name='confirm' value='yes' required>" in page
    token = re.search(r"name='csrf' value='([0-9a-f]+)'", page)
    assert token is not None
    csrf = token.group(1)
    for stale in ({"job": str(jobs[0]), "action": "discard"}, {"job": "all", "action": "discard", "confirm": "yes"}):
        refused = admin_client.post("/admin/queue", data={**stale, "csrf": "0" * 64})
        assert (refused.status_code, "stale" in refused.text) == (400, True)
        refused = admin_client.post("/admin/queue", data=stale)
        assert refused.status_code == 400
    with ctx.database.session() as session:
        assert queue.counts(session)["demo.fail"] == {"dead": 2}
    with caplog.at_level(logging.INFO, logger="oots.node.admin"):
        done = admin_client.post("/admin/queue", data={"job": str(jobs[0]), "action": "discard", "csrf": csrf})
    assert done.status_code == 303  # POST-redirect-GET: reloading the page that follows discards nothing
    assert done.headers["location"] == f"/admin/queue?discarded_job={jobs[0]}"
    assert f"Job {jobs[0]} discarded: it will not run." in admin_client.get(done.headers["location"]).text
    assert f"admin discarded dead job {jobs[0]} (demo.fail), unrun" in caplog.messages
    with ctx.database.session() as session:
        assert queue.counts(session)["demo.fail"] == {"dead": 1, "done": 1}
        discarded = session.get(queue.QueueJob, jobs[0])
        assert discarded is not None
        assert (discarded.last_error or "").startswith("discarded unrun by an operator at ")
    for job in (jobs[0], waiting, "x"):  # no longer dead, never dead, no job at all
        again = admin_client.post("/admin/queue", data={"job": str(job), "action": "discard", "csrf": csrf})
        assert again.headers["location"] == "/admin/queue?missing=1"
    odd = admin_client.post("/admin/queue", data={"job": str(jobs[1]), "action": "delete", "csrf": csrf})
    assert (odd.status_code, "There is no such action" in odd.text) == (400, True)
    unconfirmed = admin_client.post("/admin/queue", data={"job": "all", "action": "discard", "csrf": csrf})
    assert unconfirmed.headers["location"] == "/admin/queue?unconfirmed=1"
    assert "Nothing was discarded" in admin_client.get(unconfirmed.headers["location"]).text
    with ctx.database.session() as session:
        assert len(queue.list_dead(session)) == 2
    every = {"job": "all", "action": "discard", "confirm": "yes", "csrf": csrf}
    with caplog.at_level(logging.INFO, logger="oots.node.admin"):
        assert admin_client.post("/admin/queue", data=every).headers["location"] == "/admin/queue?discarded=2"
    assert "admin discarded every dead job (2), unrun" in caplog.messages
    assert "2 dead jobs discarded: they will not run." in admin_client.get("/admin/queue?discarded=2").text
    with ctx.database.session() as session:
        assert queue.counts(session) == {
            "demo.fail": {"done": 2},
            "demo.other": {"done": 1},
            "demo.later": {"queued": 1},
        }
    assert "Discard all dead jobs" not in admin_client.get("/admin/queue").text  # no dead jobs left


def test_admin_database_work_runs_off_the_event_loop(admin_client: AppClient, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    ctx = admin_client.app.state.context
    assert login(admin_client) == 303
    threads: list[str] = []
    database = ctx.database
    for name in ("session", "connect", "snapshot"):
        original = getattr(database, name)

        def recording(*args: object, _original: object = original, **kwargs: object) -> object:
            threads.append(threading.current_thread().name)
            return _original(*args, **kwargs)  # type: ignore[operator]

        monkeypatch.setattr(database, name, recording)
    for path in ("/admin", "/admin/queue", "/admin/exchanges", "/admin/audit?verify=1"):
        threads.clear()
        assert admin_client.get(path).status_code == 200, path
        assert threads, path
        assert threading.main_thread().name not in threads, path  # the event loop runs in the main thread here


def test_audit_search_by_exchange_message_and_person(admin_client: AppClient) -> None:
    ctx = admin_client.app.state.context
    journal = load_journal(ctx.settings)
    with ctx.database.session() as session:
        journal.append(
            session,
            side="requester",
            event="request_sent",
            exchange_id="ex-1",
            message_ids=["msg-a@oots"],
            subject="BE/BE/85072312345",
            personal={"family_name": "Peeters"},
        )
        journal.append(session, side="requester", event="request_sent", exchange_id="ex-2", message_ids=["msg-b@oots"])
    assert login(admin_client) == 303
    everything = admin_client.get("/admin/audit").text
    assert "ex-1" in everything
    assert "ex-2" in everything
    assert "Peeters" not in everything  # personal data stays encrypted
    by_message = admin_client.get("/admin/audit", params={"message_id": "msg-b@oots"}).text
    assert "ex-2" in by_message
    assert "ex-1" not in by_message
    token = re.search(r"name='csrf' value='([0-9a-f]+)'", everything)
    assert token is not None
    assert "method='post' action='/admin/audit'" in everything  # a person identifier is never in an address
    by_person = admin_client.post("/admin/audit", data={"csrf": token.group(1), "subject": "BE/BE/85072312345"}).text
    assert "ex-1" in by_person
    assert "ex-2" not in by_person
    in_address = admin_client.get("/admin/audit", params={"subject": "BE/BE/85072312345"}).text
    assert "ignored" in in_address
    assert "ex-2" in in_address  # not searched by it
    assert admin_client.post("/admin/audit", data={"subject": "BE/BE/85072312345"}).status_code == 400  # no token
    verified = admin_client.get("/admin/audit", params={"verify": "1"}).text
    assert "Chain intact: 2 entries verified." in verified


# --- the web process's threads ---------------------------------------------------------------------------


def test_the_node_sizes_the_pool_of_its_web_threads(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    from oots import threads

    try:
        create_app(load_settings(node_config(tmp_path, "threads = 3\n")))
        assert threads._pool.size == 3
        create_app(load_settings(node_config(tmp_path)))
        assert threads._pool.size == threads.THREADS  # 0: four per core
    finally:
        threads.set_threads(0)


def test_a_data_service_whose_register_cannot_be_loaded_is_shown_unavailable(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    bad, register = broken_births_register(tmp_path)
    digest = hash_password(PASSWORD, iterations=1000)
    extra = f'[admin]\npassword_hash = "{digest}"\n[provider]\nsamples = true\n'
    extra += register + be_births_service("be-births-file", "births")
    settings = load_settings(node_config(tmp_path, extra))
    ctx = NodeContext(settings=settings, database=open_database(settings))
    ctx.services["roles"] = [create_role(ctx)]  # the role alone: no access point needed to show its state
    with AppClient(create_app(ctx)) as client:
        ready = client.get("/ready")
        assert ready.status_code == 200  # the node serves its other data services
        assert ready.json()["unavailable_data_services"] == ["be-births-file"]
        assert "births.csv" not in ready.text  # why is for the operator, not for anyone
        assert login(client) == 303
        partners = client.get("/admin/partners").text
        assert "unavailable: register births, line 2 of births.csv" in partners
        # fixed, it is loaded again without a request for it (as in a web process whose worker runs apart)
        bad.write_text("id,family_name,given_name,date_of_birth\n1,Dupont,Marie,1984-02-29\n", encoding="utf-8")
        ready = client.get("/ready")
        assert "unavailable_data_services" not in ready.json()
        assert "<td>be-births-file</td><td>Birth certificate</td><td>births</td><td>if_possible</td><td>available" in (
            client.get("/admin/partners").text
        )


# --- the certificates the node depends on -------------------------------------------------------------


def _issue(pki: Path, name: str, *, ends: dt.datetime, purpose: str = "sign") -> tuple[bytes, bytes]:
    """A certificate of the test PKI's CA (``pki/ca.pem``) that ends at ``ends``: its PEM and its key's."""
    ca = load_key_pair(pki / "ca.key.pem", pki / "ca.pem")
    start = ends - dt.timedelta(days=100)
    pair = issue(ca, name, now=start, not_before=start, days=100, purpose=purpose)
    key = pair.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pair.certificate.public_bytes(serialization.Encoding.PEM), key


def _tls_client_certificate(directory: Path, *, ends: dt.datetime) -> tuple[Path, str]:
    """A mutual-TLS client certificate ending at ``ends`` (with the test PKI's CA, made if missing): its
    file and the ``[as4]`` lines that configure it."""
    init_dev_pki(directory / "pki", [], now=ends - dt.timedelta(days=100))  # the CA only
    cert, key = _issue(directory / "pki", "blue tls", ends=ends)
    (directory / "tls.pem").write_bytes(cert)
    (directory / "tls.key.pem").write_bytes(key)
    lines = f"tls_client_certificate = {json.dumps(str(directory / 'tls.pem'))}\n"
    return directory / "tls.pem", lines + f"tls_client_key = {json.dumps(str(directory / 'tls.key.pem'))}\n"


def _admin_table() -> str:
    return f'[admin]\npassword_hash = "{hash_password(PASSWORD, iterations=1000)}"\n'


def _rows(page: str, heading: str) -> list[list[str]]:
    """The cells of the table after ``<h2>heading</h2>`` on ``page``."""
    part = page.split(f"<h2>{heading}</h2>", 1)[1].split("</table>", 1)[0]
    return [re.findall(r"<td>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", part) if "<td>" in row]


def _utc(moment: dt.datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def _metrics_and_partners_page(ctx: NodeContext) -> tuple[dict[str, float], str]:
    """The node's ``/metrics`` samples and its admin partners page, read by a logged-in admin; the node's
    access point and database are closed afterwards."""
    try:
        with AppClient(create_app(ctx)) as client:
            samples = parse_exposition(client.get("/metrics").text)
            assert login(client) == 303
            return samples, client.get("/admin/partners").text
    finally:
        access_point = ctx.services.get("as4")
        if access_point is not None:
            access_point.close()
        ctx.database.dispose()


def test_the_partners_page_lists_each_certificate_of_the_node_and_each_partners_first_end(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    tls_ends = now + dt.timedelta(days=10, hours=1)
    tls, lines = _tls_client_certificate(tmp_path, ends=tls_ends)
    endpoints = {"blue": "http://blue.test/as4", "red": "http://red.test/as4"}
    configs = write_node_configs(tmp_path, endpoints, as4=lines, tables={"blue": _admin_table()})
    red_ends = now + dt.timedelta(days=20, hours=1)  # red's encryption certificate ends before its signing one
    (tmp_path / "pki" / "red" / "encrypt.pem").write_bytes(
        _issue(tmp_path / "pki", "red encrypt", ends=red_ends, purpose="encrypt")[0]
    )
    with caplog.at_level(logging.WARNING, logger="oots.node.app"):
        ctx = build_context(load_settings(configs["blue"]))
    assert (
        f"as4.tls_client_certificate: the node's own TLS client certificate in {tls} expires on "
        f"{tls_ends:%Y-%m-%d %H:%M} UTC (in 10 day(s)): renew it before then: after that, connections to "
        "partners' access points that require mutual TLS fail"
    ) in caplog.text
    assert "as4.signing_certificate" not in caplog.text  # blue's AS4 certificates end in 825 days
    _, page = _metrics_and_partners_page(ctx)
    own = _rows(page, "Certificates of this node")
    pki = tmp_path / "pki" / "blue"
    assert [row[:3] for row in own] == [
        ["signing", "as4.signing_certificate", str(pki / "sign.pem")],
        ["encryption", "as4.decryption_certificate", str(pki / "encrypt.pem")],
        ["TLS client", "as4.tls_client_certificate", str(tls)],
    ]
    assert [row[4] for row in own[:2]] == ["824 days left", "824 days left"]
    assert own[2][3:] == [_utc(tls_ends), "10 days left"]
    partners = _rows(page, "Partner access points")
    assert partners == [["red", "red_gw", "http://red.test/as4", _utc(red_ends), "encryption", "20 days left"]]
    ctx.database.dispose()


def test_partners_trust_anchors_are_on_the_partners_page_and_in_the_metric(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    now = dt.datetime.now(dt.UTC)
    endpoints = {"blue": "http://blue.test/as4", "red": "http://red.test/as4"}
    configs = write_node_configs(tmp_path, endpoints, tables={"blue": _admin_table()})
    old = make_ca("red old CA", now=now - dt.timedelta(days=40), days=30).certificate  # ended 10 days ago
    (tmp_path / "old-ca.pem").write_bytes(old.public_bytes(serialization.Encoding.PEM))
    text = configs["blue"].read_text(encoding="utf-8")
    configs["blue"].write_text(text.replace("trust_anchors = [", 'trust_anchors = ["old-ca.pem", '), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="oots.node.app"):
        ctx = build_context(load_settings(configs["blue"]), config_dir=tmp_path)  # starts all the same
    assert f"partners[red].trust_anchors[0]: expired on {old.not_valid_after_utc:%Y-%m-%d %H:%M} UTC" in caplog.text
    ca = load_certificate(tmp_path / "pki" / "ca.pem")
    samples, page = _metrics_and_partners_page(ctx)
    assert _rows(page, "Trust anchors of partners") == [
        ["red", "red_gw", "red old CA", _utc(old.not_valid_after_utc), "EXPIRED"],
        ["red", "red_gw", "oots development CA", _utc(ca.not_valid_after_utc), standing(ca, dt.datetime.now(dt.UTC))],
    ]
    # the earliest end of red's trust anchors, beside the earlier end of its own certificates
    ends = samples['oots_certificate_expiry_timestamp_seconds{party="red_gw",use="trust_anchor"}']
    assert ends == old.not_valid_after_utc.timestamp()
    assert 'oots_certificate_expiry_timestamp_seconds{party="red_gw",use="partner"}' in samples
    assert not any('party="blue_gw",use="trust_anchor"' in name for name in samples)


def test_relative_tls_files_are_read_from_the_configuration_files_folder_wherever_the_node_starts(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    tls_ends = now + dt.timedelta(days=10, hours=1)
    _tls_client_certificate(tmp_path, ends=tls_ends)
    lines = 'tls_client_certificate = "tls.pem"\ntls_client_key = "tls.key.pem"\ntls_ca_file = "pki/ca.pem"\n'
    endpoints = {"blue": "http://blue.test/as4", "red": "http://red.test/as4"}
    configs = write_node_configs(tmp_path, endpoints, as4=lines, tables={"blue": _admin_table()})
    elsewhere = tmp_path / "elsewhere"  # as under systemd: started from another folder
    elsewhere.mkdir()
    clean_env.chdir(elsewhere)
    with caplog.at_level(logging.WARNING, logger="oots.node.app"):
        ctx = build_context(load_settings(configs["blue"]), config_dir=configs["blue"].parent)
    tls = tmp_path / "tls.pem"
    assert f"the node's own TLS client certificate in {tls} expires on {tls_ends:%Y-%m-%d %H:%M} UTC" in caplog.text
    ap = ctx.services["as4"].access_point
    assert (ap.sender.ca_file, ap.sender.client_certificate, ap.sender.client_key) == (
        tmp_path / "pki" / "ca.pem",
        tls,
        tmp_path / "tls.key.pem",
    )
    tls_context(ap.sender.ca_file, ap.sender.client_certificate, ap.sender.client_key)  # the sender's: reads them
    samples, page = _metrics_and_partners_page(ctx)
    ends = samples['oots_certificate_expiry_timestamp_seconds{party="blue_gw",use="tls"}']
    assert abs(ends - tls_ends.timestamp()) < 1
    assert _rows(page, "Certificates of this node")[2] == [
        "TLS client",
        "as4.tls_client_certificate",
        str(tls),
        _utc(tls_ends),
        "10 days left",
    ]


def test_in_domibus_mode_the_page_lists_the_tls_client_certificate_an_expired_one_as_expired(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    ended = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=3)
    tls, lines = _tls_client_certificate(tmp_path, ends=ended)
    red = init_dev_pki(tmp_path / "pki", ["red"], now=ended).access_points["red"]["sign_cert"]
    config = tmp_path / "blue.toml"
    config.write_text(
        f"""[node]
name = "blue"
data_dir = {json.dumps(str(tmp_path / "blue"))}

[as4]
mode = "domibus"
party_id = "blue_gw"
domibus_url = "http://domibus.test/domibus/services/wsplugin"
domibus_push_token = "blue-push-token-0123456789"
{lines}
[[as4.partners]]
name = "red"
party_id = "red_gw"
signing_certificate = {json.dumps(str(red))}

{_admin_table()}""",
        encoding="utf-8",
    )
    with caplog.at_level(logging.WARNING, logger="oots.node.app"):
        ctx = build_context(load_settings(config))  # starts all the same
    assert (
        f"as4.tls_client_certificate: the node's own TLS client certificate in {tls} expired on "
        f"{ended:%Y-%m-%d %H:%M} UTC: connections to a Domibus that requires mutual TLS fail until a new one is "
        "configured"
    ) in caplog.text
    _, page = _metrics_and_partners_page(ctx)
    assert "Domibus mode: Domibus signs and decrypts the AS4 messages with its own keys" in page
    assert _rows(page, "Certificates of this node") == [
        ["TLS client", "as4.tls_client_certificate", str(tls), _utc(ended), "EXPIRED"]
    ]
    red_ends = load_certificate(red).not_valid_after_utc  # red's encryption certificate is its signing one
    days = (red_ends - dt.datetime.now(dt.UTC)).days
    assert _rows(page, "Partner access points") == [
        ["red", "red_gw", "—", _utc(red_ends), "signing and encryption", f"{days} days left"]
    ]
