"""Serving on loopback for tests, benchmarks and local experiments: free ports, an app in a thread, a
command in a process.

:func:`free_port` asks the kernel for a port nobody holds now; :func:`free_base_port` finds a base port
whose offsets (the ports a planned network derives from it) are all free now. :class:`ServerThread`
serves an ASGI application with uvicorn in a daemon thread for the length of a ``with`` block.
:func:`oots_process` runs an ``oots`` command as a child process that only its own options and files
configure, and :func:`wait_until_up` waits for a server to answer.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from oots.node.server import HttpProtocol

__all__ = ["ServerThread", "free_base_port", "free_port", "oots_process", "wait_until_up"]

HOST = "127.0.0.1"


def free_port() -> int:
    """A loopback port that is free right now (another process may take it before it is used)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def free_base_port(offsets: Iterable[int], *, highest: int = 60000, tries: int = 50) -> int:
    """A base port at most ``highest`` such that ``base + offset`` is free for every offset."""
    wanted = tuple(offsets)
    for _ in range(tries):
        base = free_port()
        if base <= highest and all(_free(base + offset) for offset in wanted):
            return base
    raise RuntimeError("no free port range")


class ServerThread:
    """``with ServerThread(app, port):`` serves ``app`` on loopback until the block ends."""

    def __init__(self, app: Any, port: int, *, log_level: str = "warning", start_seconds: float = 20.0) -> None:
        self.port = port
        self.url = f"http://{HOST}:{port}"
        self.start_seconds = start_seconds
        config = uvicorn.Config(app, host=HOST, port=port, log_level=log_level, http=HttpProtocol)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + self.start_seconds
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"the server on port {self.port} did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(20)


def oots_process(*args: str, **popen: Any) -> subprocess.Popen[Any]:
    """``python -m oots ARGS`` as a child process (``popen``: more ``subprocess.Popen`` arguments).

    The caller's ``OOTS_`` settings do not reach it: its options and files configure it alone
    (``OOTS_TEST_`` variables, which only the tests read, stay).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("OOTS_") or k.startswith("OOTS_TEST_")}
    return subprocess.Popen([sys.executable, "-m", "oots", *args], env=env, **popen)


def wait_until_up(
    url: str, proc: subprocess.Popen[Any] | None = None, *, seconds: float = 60.0, log: Path | None = None
) -> httpx.Response:
    """Ask ``url`` until it answers 200, and give that answer; ``RuntimeError`` after ``seconds``, or as
    soon as ``proc`` has exited (with the end of its ``log`` when there is one)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log is not None else ""
            raise RuntimeError(f"the server at {url} exited (code {proc.returncode}) {tail}".rstrip())
        try:
            answer = httpx.get(url, timeout=1.0)
            if answer.status_code == 200:
                return answer
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server at {url} did not start within {seconds:g} s")
