"""The node's periodic work — each role's ``periodic()``, the access point's purge of received messages —
runs in the node's worker, each in a thread of its own."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from oots.as4.models import As4Inbound
from oots.as4.store import RETIRED_PURGE_JOB
from oots.network.pair import write_node_configs
from oots.node import build_context, create_worker
from oots.node.roles import Periodic
from oots.settings import load_settings
from oots.store import queue
from stored_rows import inbound_row

from .test_node_ops import node_config


class _Sweeper:
    name = "sweeper"

    def __init__(self) -> None:
        self.ticks = 0
        self.threads: set[str] = set()
        self.ticked = threading.Event()

    def routes(self) -> Sequence[Any]:
        return []

    def job_handlers(self) -> Mapping[str, Any]:
        return {}

    def as4_handlers(self) -> Mapping[str, Any]:
        return {}

    def periodic(self) -> Sequence[Periodic]:
        return [Periodic("sweeper-loop", self.tick, every_seconds=0.01)]

    def tick(self) -> int:
        self.ticks += 1
        self.threads.add(threading.current_thread().name)
        if self.ticks >= 3:
            self.ticked.set()
        return 0  # nothing done: the loop waits every_seconds


def test_the_worker_runs_each_roles_periodic_work(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    ctx = build_context(load_settings(node_config(tmp_path)))
    sweeper = _Sweeper()
    ctx.services["roles"] = [*ctx.services.get("roles", []), sweeper]
    worker = create_worker(ctx)
    try:
        worker.start()
        assert sweeper.ticked.wait(10), sweeper.ticks
        assert sweeper.threads == {"sweeper-loop"}
    finally:
        worker.stop(timeout=5.0)
        ctx.database.dispose()


def _access_point_node(tmp_path: Path) -> Path:
    """A provider node (so with the built-in access point) whose purge runs every 2 minutes, window 1 hour."""
    configs = write_node_configs(
        tmp_path,
        {"blue": "http://blue.test/as4", "red": "http://127.0.0.1:9/as4"},
        node={"red": 'country = "ES"\nroles = ["provider"]\nbase_url = "http://127.0.0.1:9"'},
        as4="purge_interval_seconds = 120\nduplicate_window_seconds = 3600",
        tables={"red": "[provider]\nsamples = true\n"},
    )
    return configs["red"]


def test_every_worker_purges_received_messages_past_the_duplicate_window(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    ctx = build_context(load_settings(_access_point_node(tmp_path)))
    try:
        now = ctx.clock()
        with ctx.database.session() as session:
            session.add(inbound_row("old@blue", received_at=now - dt.timedelta(hours=2)))
            session.add(inbound_row("young@blue", received_at=now - dt.timedelta(minutes=10)))
            session.add(inbound_row("waiting@blue", received_at=now - dt.timedelta(hours=2), state="received"))
        worker = create_worker(ctx)
        (purge,) = [loop for loop in worker._loops._loops if loop.name == "as4-inbound-purge"]
        assert purge.poll_seconds == 120  # [as4] purge_interval_seconds
        assert purge.tick() == 1  # the window is [as4] duplicate_window_seconds
        assert purge.tick() == 0
        with ctx.database.session() as session:
            assert sorted(session.scalars(select(As4Inbound.message_id))) == ["waiting@blue", "young@blue"]
    finally:
        ctx.services["as4"].close()
        ctx.database.dispose()


def test_purge_jobs_an_older_version_left_are_completed_by_the_workers(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    ctx = build_context(load_settings(_access_point_node(tmp_path)))
    try:
        now = ctx.clock()
        with ctx.database.session() as session:  # the self-scheduling purge's next run, and a stuck one
            queue.enqueue(session, RETIRED_PURGE_JOB, {"at": "later"}, key="3600:2", run_at=now, now=now)
            queue.enqueue(session, RETIRED_PURGE_JOB, {"at": "then"}, key="3600:1", run_at=now, now=now)
            session.execute(
                text("UPDATE queue_jobs SET status = 'running', locked_by = 'gone', locked_until = :t"), {"t": now}
            )
        worker = create_worker(ctx)
        assert worker.worker.drain() == 2
        with ctx.database.session() as session:
            assert queue.counts(session)[RETIRED_PURGE_JOB] == {"done": 2}  # not queued for ever, not dead
    finally:
        ctx.services["as4"].close()
        ctx.database.dispose()
