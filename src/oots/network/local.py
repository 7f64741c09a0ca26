"""Serving on loopback for tests, benchmarks and local experiments: free ports, an app in a thread.

:func:`free_port` asks the kernel for a port nobody holds now; :func:`free_base_port` finds a base port
whose offsets (the ports a planned network derives from it) are all free now. :class:`ServerThread`
serves an ASGI application with uvicorn in a daemon thread for the length of a ``with`` block.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterable
from typing import Any

import uvicorn

__all__ = ["ServerThread", "free_base_port", "free_port"]

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
        self.server = uvicorn.Server(uvicorn.Config(app, host=HOST, port=port, log_level=log_level))
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
