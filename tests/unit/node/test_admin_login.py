"""Guessing the admin password: after a few wrong ones an address waits, without the node hashing."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pytest

from oots.node import build_context, create_app
from oots.node.admin import FAILURES_ALLOWED, LoginThrottle, hash_password
from oots.settings import load_settings
from oots.store import Database

from .test_node_ops import PASSWORD, AppClient, login, node_config


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


def test_an_address_waits_after_too_many_wrong_passwords(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    digest = hash_password(PASSWORD, iterations=1000)
    ctx = build_context(load_settings(node_config(tmp_path, f'[admin]\npassword_hash = "{digest}"\n')))
    clock = Clock()
    ctx.clock = clock
    with caplog.at_level(logging.WARNING, logger="oots.node.admin"), AppClient(create_app(ctx)) as client:
        for _ in range(FAILURES_ALLOWED):
            assert login(client, "guess") == 401
        assert "5 wrong from this address" in caplog.text
        refused = client.post("/admin/login", data={"password": PASSWORD})  # even the right one, for now
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "30"
        assert "Try again in 30 seconds" in refused.text
        clock.now += dt.timedelta(seconds=31)
        assert login(client, "guess") == 401  # the sixth wrong one: a longer wait
        clock.now += dt.timedelta(seconds=31)
        assert client.post("/admin/login", data={"password": PASSWORD}).status_code == 429
        clock.now += dt.timedelta(seconds=30)
        assert login(client) == 303
        # a right password clears the address: the next wrong one is counted from one again
        assert login(client, "guess") == 401
        assert login(client) == 303


def test_a_locked_client_and_a_live_session_outlast_a_restart(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    """Both are in the database: a new process (here a new application on the same data directory and
    database) still makes the client wait and still takes the session."""
    digest = hash_password(PASSWORD, iterations=1000)
    settings = load_settings(node_config(tmp_path, f'[admin]\npassword_hash = "{digest}"\n'))
    clock = Clock()
    first = build_context(settings)
    first.clock = clock
    with AppClient(create_app(first)) as client:
        assert login(client) == 303
        cookie = client.cookies.get("oots_admin")
        assert cookie
        for _ in range(FAILURES_ALLOWED):
            assert login(client, "guess") == 401
    first.database.dispose()
    clock.now += dt.timedelta(seconds=10)
    second = build_context(settings)
    second.clock = clock
    with AppClient(create_app(second)) as client:
        refused = client.post("/admin/login", data={"password": PASSWORD})
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "20"
        client.cookies.set("oots_admin", cookie)
        assert client.get("/admin").status_code == 200
    second.database.dispose()


def test_the_throttle_counts_before_the_check_and_forgets_old_failures(sqlite_url: str) -> None:
    from sqlalchemy import func, select

    from oots.node.models import AdminLoginFailure

    database = Database(sqlite_url)
    database.migrate()
    clock = Clock()
    throttle = LoginThrottle(database, clock)
    for n in range(1, FAILURES_ALLOWED):
        assert throttle.attempt("a") == (0, n)
    clock.now += dt.timedelta(minutes=16)  # the last one is older than the window: they no longer count
    assert throttle.wait("a") == 0
    assert throttle.attempt("a") == (0, 1)
    for n in range(1, FAILURES_ALLOWED + 1):
        assert throttle.attempt("b") == (0, n)  # the fifth try is still checked; it makes the next ones wait
    assert throttle.wait("b") == 30
    assert throttle.attempt("b") == (30, 0)  # refused, and not counted
    assert throttle.wait("c") == 0  # another client is not held up
    waits = []
    for _ in range(FAILURES_ALLOWED + 5):
        clock.now += dt.timedelta(seconds=throttle.wait("c"))
        assert throttle.attempt("c")[0] == 0
        waits.append(throttle.wait("c"))
    assert waits[FAILURES_ALLOWED - 1 :] == [30, 60, 120, 240, 480, 900]  # doubling up to the window, no further
    throttle.succeeded("b")
    assert throttle.wait("b") == 0
    clock.now += dt.timedelta(minutes=16)
    throttle.attempt("d")  # forgets the clients whose last wrong password is older than the window
    with database.connect() as connection:
        assert connection.execute(select(func.count()).select_from(AdminLoginFailure)).scalar_one() == 1
    database.dispose()
