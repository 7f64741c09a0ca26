"""Two access points, blue and red, as separate processes on loopback (keys from the core's dev PKI), and
a node built in this process with a small test role (:class:`InProcessNode`, :class:`As4Role`)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, Self, TypeVar

from starlette.routing import BaseRoute

from oots.network.local import ServerThread, free_port, oots_process, wait_until_up
from oots.network.pair import write_node_configs
from oots.node import NodeContext, build_context, create_app
from oots.settings import load_settings
from oots.store.queue import Handler

__all__ = [  # free_port: kept for the tests importing it here
    "As4Role",
    "InProcessNode",
    "Node",
    "free_port",
    "node_env",
    "serve_and_work",
    "stop_all",
    "wait_for",
    "wait_ready",
    "without_oots_settings",
    "write_configs",
]

HERE = Path(__file__).resolve().parent


def write_configs(directory: Path, ports: dict[str, int], *, retry: str, **more: Any) -> dict[str, Path]:
    """``blue.toml`` and ``red.toml`` for two nodes on loopback ``ports`` (``more``: see ``write_node_configs``)."""
    return write_node_configs(
        directory,
        {name: f"http://127.0.0.1:{ports[name]}/as4" for name in ("blue", "red")},
        queue="lease_seconds = 2\npoll_interval_seconds = 0.05\nbackoff_base_seconds = 0.2\nbackoff_max_seconds = 1",
        as4=f"retry_offsets_seconds = {retry}\nreceipt_timeout_seconds = 10\nconnect_timeout_seconds = 2",
        **more,
    )


def node_env() -> dict[str, str]:
    """This environment without the caller's ``OOTS_`` settings (``OOTS_TEST_`` ones stay): a node reads its file."""
    return {k: v for k, v in os.environ.items() if not k.startswith("OOTS_") or k.startswith("OOTS_TEST_")}


@contextlib.contextmanager
def without_oots_settings() -> Iterator[None]:
    """``os.environ`` without the caller's ``OOTS_`` settings for the block (for nodes built in this process)."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("OOTS_") and not k.startswith("OOTS_TEST_")}
    for k in saved:
        del os.environ[k]
    try:
        yield
    finally:
        os.environ.update(saved)


def serve_and_work(config: Path, port: int, log: Path) -> list[subprocess.Popen[bytes]]:
    """``oots serve`` (on ``port``) and ``oots worker`` for ``config``, two processes appending to ``log``."""
    with log.open("ab") as out:
        serve = oots_process("serve", str(config), "--port", str(port), stdout=out, stderr=out)
        return [serve, oots_process("worker", str(config), stdout=out, stderr=out)]


def wait_ready(port: int, proc: subprocess.Popen[bytes] | None = None, log: Path | None = None) -> None:
    """Until the node on ``port`` answers ``/ready`` (60 s); ``proc`` exiting first fails with ``log``'s end."""
    wait_until_up(f"http://127.0.0.1:{port}/ready", proc, log=log)


class As4Role:
    """A test role that only takes AS4 messages (no pages, no jobs): a subclass names its handlers."""

    name = "test"

    def routes(self) -> Sequence[BaseRoute]:
        return []

    def job_handlers(self) -> Mapping[str, Handler]:
        return {}

    def as4_handlers(self) -> Mapping[str, Any]:
        return {}


R = TypeVar("R", bound=As4Role)


class InProcessNode(Generic[R]):
    """A node built in this process from ``config`` with a test role added (``role(ctx)``), served with its
    worker on ``port``; ``with`` starts it and waits until it is ready."""

    def __init__(self, config: Path, port: int, role: Callable[[NodeContext], R]) -> None:
        self.ctx = build_context(load_settings(config))
        self.role = role(self.ctx)
        self.ctx.services["roles"].append(self.role)
        self.server = ServerThread(create_app(self.ctx, with_worker=True), port)
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def __enter__(self) -> Self:
        self.server.__enter__()
        wait_ready(self.port)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)


def stop_all(procs: Iterable[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to every process, then wait for each (15 s, then SIGKILL)."""
    procs = list(procs)
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class Node:
    """One access point process."""

    def __init__(self, name: str, config: Path, port: int, directory: Path) -> None:
        self.name, self.config, self.port, self.directory = name, config, port, directory
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = directory / f"{name}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/as4"

    @property
    def db_path(self) -> Path:
        return self.directory / self.name / "oots.db"

    def start(self, *, crash: str = "", gate: Path | None = None) -> None:
        env = node_env()
        if crash:
            env["FLOW_CRASH"] = crash
        if gate is not None:
            env["FLOW_CRASH_GATE"] = str(gate)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(HERE / "as4_node.py"), str(self.config), str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        wait_until_up(self.url + "/health", self.proc, seconds=30, log=self.log)

    def wait_dead(self, timeout: float = 20) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def query(self, sql: str, *args: object) -> list[tuple[object, ...]]:
        con = sqlite3.connect(self.db_path, timeout=10)
        try:
            return con.execute(sql, args).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise
        finally:
            con.close()

    def deliveries(self) -> list[str]:
        return [str(r[0]) for r in self.query("SELECT message_id FROM flow_deliveries ORDER BY message_id")]

    def outbound(self, message_id: str) -> tuple[object, ...] | None:
        rows = self.query(
            "SELECT state, attempts, error_code, error_detail FROM as4_outbound WHERE message_id = ?", message_id
        )
        return rows[0] if rows else None


def wait_for(condition, timeout: float = 30, what: str = "condition"):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
