"""A role's periodic work (``periodic()``) runs in the node's worker, in a thread of its own."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from oots.node import build_context, create_worker
from oots.node.roles import Periodic
from oots.settings import load_settings

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
