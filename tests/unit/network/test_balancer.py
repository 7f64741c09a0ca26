"""The round-robin balancer of the scale-out load: connections alternate, a dead upstream closes."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator

import pytest

from oots.errors import OotsError
from oots.network.balancer import Balancer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Named(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data = self.request.recv(1024)
        self.request.sendall(self.server.name.encode() + b":" + data)  # type: ignore[attr-defined]


@pytest.fixture
def upstreams() -> Iterator[list[int]]:
    servers = []
    for name in ("a", "b"):
        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Named)
        server.name = name  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    yield [s.server_address[1] for s in servers]
    for server in servers:
        server.shutdown()
        server.server_close()


def ask(port: int, text: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(text)
        chunks = []
        while chunk := conn.recv(1024):
            chunks.append(chunk)
        return b"".join(chunks)


def test_connections_go_round_the_upstreams_and_bytes_pass_both_ways(upstreams: list[int]) -> None:
    balancer = Balancer(free_port(), upstreams)
    balancer.start()
    try:
        answers = [ask(balancer.port, f"hello {i}".encode()) for i in range(4)]
    finally:
        balancer.stop()
    assert answers == [b"a:hello 0", b"b:hello 1", b"a:hello 2", b"b:hello 3"]


def test_a_dead_upstream_closes_the_connection() -> None:
    balancer = Balancer(free_port(), [free_port()])  # nothing listens there
    balancer.start()
    try:
        assert ask(balancer.port, b"anyone?") == b""
    finally:
        balancer.stop()


def test_a_taken_port_or_no_upstream_is_refused(upstreams: list[int]) -> None:
    with pytest.raises(OotsError, match="at least one upstream"):
        Balancer(free_port(), [])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OotsError, match="cannot listen"):
            Balancer(taken.getsockname()[1], upstreams).start()
