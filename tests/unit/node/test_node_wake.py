"""A node's wake-up listener (PostgreSQL) lives as long as what started it: the app's lifespan, a worker."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from oots.node import build_context, create_app, create_worker
from oots.store import Database
from oots.store.wake import LISTENER_THREAD

from .test_node_ops import node_config

pytestmark = pytest.mark.postgres


def listeners(db: Database) -> list[threading.Thread]:
    """The threads relaying ``db``'s notifications in this process (a stopped one may still be ending)."""
    return [t for t in threading.enumerate() if t.name == f"{LISTENER_THREAD} {db.safe_url}"]


def no_listener_left(db: Database) -> bool:
    """Whether every thread that relayed ``db``'s notifications ends (a stopped one within
    ``LISTENER_STOP_SECONDS``; waited for here much longer, so that a slow machine does not fail it)."""
    for thread in listeners(db):
        thread.join(10.0)
    return listeners(db) == []


def test_no_listener_outlives_the_apps_lifespan_nor_the_worker(
    tmp_path: Path,
    clean_env: pytest.MonkeyPatch,
    postgres_database: Callable[[], str],
) -> None:
    from oots.settings import load_settings

    ctx = build_context(load_settings(node_config(tmp_path, f'[database]\nurl = "{postgres_database()}"\n')))
    try:
        app = create_app(ctx)
        assert listeners(ctx.database) == []  # building the app starts no thread

        async def serve(worker_too: bool) -> int:
            async with app.router.lifespan_context(app):
                serving = len(listeners(ctx.database))
                if worker_too:
                    worker.start()
            return serving

        assert asyncio.run(serve(worker_too=False)) == 1
        assert no_listener_left(ctx.database)  # the lifespan ended: so did the listener
        worker = create_worker(ctx)
        assert asyncio.run(serve(worker_too=True)) == 1  # app and worker share one thread
        assert len(listeners(ctx.database)) == 1  # the worker still runs, and listens
        worker.stop(timeout=5.0)
        assert no_listener_left(ctx.database)
    finally:
        ctx.database.dispose()
