"""Guessing the admin password: after a few wrong ones an address waits, without the node hashing."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pytest

from oots.node import build_context, create_app
from oots.node.admin import FAILURES_ALLOWED, LoginThrottle, hash_password
from oots.settings import load_settings

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


def test_the_throttle_forgets_old_failures_and_other_addresses() -> None:
    clock = Clock()
    throttle = LoginThrottle(clock, capacity=2)
    for _ in range(FAILURES_ALLOWED - 1):
        throttle.failed("a")
    clock.now += dt.timedelta(minutes=16)  # outside the window: those no longer count
    assert throttle.failed("a") == 1
    assert throttle.wait("a") == 0
    for _ in range(FAILURES_ALLOWED):
        throttle.failed("b")
    assert throttle.wait("b") == 30
    assert throttle.wait("c") == 0  # another address is not held up
    for _ in range(20):
        throttle.failed("c")
    assert throttle.wait("c") == 15 * 60  # the wait doubles up to the window, no further
    assert throttle.wait("a") == 0  # forgotten: at most two addresses remembered
