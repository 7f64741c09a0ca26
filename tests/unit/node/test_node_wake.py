"""A node's wake-up listener (PostgreSQL) lives as long as what started it: the app's lifespan, a worker."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from oots.node import build_context, create_app, create_worker
from wake_threads import listeners, no_listener_left

from .test_node_ops import node_config

pytestmark = pytest.mark.postgres


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
