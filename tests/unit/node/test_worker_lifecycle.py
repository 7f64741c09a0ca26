"""A node's background work through a database outage and a SIGTERM, with real processes.

* ``oots worker`` on PostgreSQL lives through a database that refuses connections (its connections
  terminated) and runs jobs again once it is back.
* ``/ready`` of ``oots serve --with-worker`` says not ready once the in-process worker has died.
* After SIGTERM, ``oots worker`` exits within ``node.shutdown_seconds`` though its sender threads are
  stuck in sends to a partner that never answers, and gives back the messages it claimed and had not
  started; ``oots serve`` exits within ``node.shutdown_seconds`` though a client holds a POST unfinished.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from oots.as4 import service
from oots.network.local import ServerThread, oots_process, wait_until_up
from oots.network.pair import write_node_configs
from oots.node import build_context, create_app
from oots.settings import load_settings
from oots.store import Database
from oots.store import queue as q
from oots.store.database import normalise_url
from oots.store.queue import Worker

#: Guards against a hang (never a timing assertion): how long to wait for progress at all.
PATIENCE = 60.0
#: ``node.shutdown_seconds`` of the nodes started here.
SHUTDOWN_SECONDS = 2
#: A stop that waits out a few seconds of grace ends well within this, even on a loaded machine; before
#: the fix the same stops took 40 s (the worker) and never came (oots serve, a request held open).
EXIT_SECONDS = 20


def port() -> int:
    """A free port of the range these tests may use (9400-9449)."""
    for candidate in range(9400, 9450):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return candidate
    pytest.skip("no free port in 9400-9449")


def wait_for(condition: Callable[[], bool], what: str, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the process exited ({proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)


def configs(directory: Path, red_endpoint: str, *, database: str = "") -> Path:
    """``blue.toml``: a node whose access point sends to partner red at ``red_endpoint``."""
    tables = {"blue": f'[database]\nurl = "{database}"'} if database else None
    return write_node_configs(
        directory,
        {"blue": "http://127.0.0.1:1/as4", "red": red_endpoint},
        node={"blue": f"shutdown_seconds = {SHUTDOWN_SECONDS}"},
        queue="poll_interval_seconds = 0.05",
        as4="receipt_timeout_seconds = 60\nconnect_timeout_seconds = 5",
        tables=tables,
    )["blue"]


@contextlib.contextmanager
def running(*args: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = oots_process(*args, stdout=out, stderr=out)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def stopped_within(proc: subprocess.Popen[bytes], seconds: float) -> tuple[int, float]:
    """SIGTERM ``proc``; its exit status and how long it took (it is killed after ``seconds`` + 60)."""
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(seconds + 60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        pytest.fail(f"still running {seconds + 60} s after SIGTERM")
    return code, time.monotonic() - started


# --- a database outage ------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.slow
def test_oots_worker_lives_through_a_postgresql_outage_and_works_again(
    tmp_path: Path, postgres_server: str, postgres_database: Callable[[], str]
) -> None:
    url = postgres_database()
    name = make_url(url).database
    config = configs(tmp_path, "http://127.0.0.1:1/as4", database=url)
    admin = create_engine(normalise_url(postgres_server), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    log = tmp_path / "worker.log"

    def outage(on: bool) -> None:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"false" if on else "true"}'))
            if on:  # and every connection open now is cut
                conn.execute(
                    text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name}
                )

    try:
        with running("worker", str(config), log=log) as worker:
            wait_for(lambda: "started for" in log.read_text(), "the worker to start", worker)
            outage(on=True)
            wait_for(lambda: ": database unreachable" in log.read_text(), "the worker to meet the outage", worker)
            time.sleep(3)  # several retries
            assert worker.poll() is None, log.read_text()
            outage(on=False)
            db = Database(url)
            try:
                with db.session() as session:
                    job = q.enqueue(session, "as4.purge_inbound", {"at": "now"}, key="after-the-outage")

                def done() -> bool:
                    with db.session() as session:
                        return session.get(q.QueueJob, job).status == "done"  # type: ignore[union-attr]

                wait_for(done, "the worker to run a job after the outage", worker)
            finally:
                db.dispose()
            code, _ = stopped_within(worker, EXIT_SECONDS)
            assert code == 0, log.read_text()
    finally:
        outage(on=False)
        admin.dispose()
    text_ = log.read_text()
    assert "StoreError" not in text_, text_
    assert "Traceback" not in text_, text_
    assert "database reachable again" in text_


def test_ready_says_not_ready_once_the_in_process_worker_has_died(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "node.toml"
    config.write_text(
        f'[node]\nname = "be-node"\ndata_dir = "{tmp_path.as_posix()}"\n\n[queue]\npoll_interval_seconds = 0.05\n',
        encoding="utf-8",
    )
    ctx = build_context(load_settings(config))
    listen = port()
    with ServerThread(create_app(ctx, with_worker=True), listen):
        ready = f"http://127.0.0.1:{listen}/ready"
        assert httpx.get(ready).status_code == 200

        def broken(self: Worker) -> int:
            raise RuntimeError("a bug in the worker")

        monkeypatch.setattr(Worker, "run_once", broken)  # the fault: the worker's thread ends on it
        wait_for(lambda: httpx.get(ready).status_code == 503, "/ready to say the node is not ready")
        assert httpx.get(ready).json()["status"] == "unavailable"
    ctx.database.dispose()


# --- SIGTERM ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def silent_partner() -> Iterator[str]:
    """An endpoint that takes connections and never answers (a partner hanging mid-receipt)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port()))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/as4"


def outbound(db_path: Path) -> list[tuple[str, int, str | None]]:
    con = sqlite3.connect(db_path, timeout=10)
    try:
        return con.execute("SELECT state, attempts, locked_until FROM as4_outbound").fetchall()
    finally:
        con.close()


@pytest.mark.slow
def test_oots_worker_stops_promptly_and_gives_back_the_messages_it_had_not_started(tmp_path: Path) -> None:
    with silent_partner() as red:
        config = configs(tmp_path, red)
        ctx = build_context(load_settings(config))
        gateway = ctx.services["as4"]
        ap = gateway.access_point
        with ctx.database.session() as session:
            for _ in range(8):  # four sender threads, two messages claimed each
                service.submit(ap, gateway.store, session, service.test_message(ap, ap.pmodes.partner("red")), [])
        ctx.database.dispose()
        db_path = tmp_path / "blue" / "oots.db"
        log = tmp_path / "worker.log"
        with running("worker", str(config), log=log) as worker:
            # Every message claimed: one per thread in a send that never ends, one per thread waiting.
            wait_for(lambda: all(row[2] is not None for row in outbound(db_path)), "the senders to claim all", worker)
            time.sleep(0.5)
            code, took = stopped_within(worker, EXIT_SECONDS)
        assert code == 0, log.read_text()
        assert took < EXIT_SECONDS, f"the worker took {took:.1f} s to stop"
        rows = outbound(db_path)
        given_back = [row for row in rows if row[2] is None]
        assert len(given_back) == 4, rows  # due again at once, for any worker
        assert all(state == "created" and attempts == 0 for state, attempts, _ in given_back)
        assert "4 claimed message(s) given back unsent" in log.read_text()


@pytest.mark.slow
def test_oots_serve_stops_within_its_grace_though_a_client_holds_a_post_unfinished(tmp_path: Path) -> None:
    config = configs(tmp_path, "http://127.0.0.1:1/as4")
    listen = port()
    log = tmp_path / "serve.log"
    with running("serve", str(config), "--port", str(listen), log=log) as serve:
        wait_until_up(f"http://127.0.0.1:{listen}/ready", serve, log=log)
        with socket.create_connection(("127.0.0.1", listen)) as client:
            head = b"POST /as4 HTTP/1.1\r\nHost: node\r\nContent-Type: application/soap+xml\r\n"
            client.sendall(head + b"Content-Length: 100000\r\n\r\n" + b"<" * 100)  # and the rest never comes
            time.sleep(0.5)
            _, took = stopped_within(serve, EXIT_SECONDS)
    assert took < EXIT_SECONDS, f"oots serve took {took:.1f} s to stop"
