"""How a node's web endpoint is served: uvicorn (httptools, uvloop), a response in one send.

uvicorn's httptools protocol writes the status line and headers of a response, then its body, each
with its own ``transport.write``: two ``send`` system calls and two TCP segments for the small answers
of the portal API and the AS4 receipts, and a client that wakes up twice to read them.
:class:`HttpProtocol` gives the protocol a transport that gathers what one turn of the event loop
writes and sends it at the end of the turn, in one go (at once when 64 KiB are waiting, so that
uvicorn's flow control still sees a large body being written). :func:`serve` runs an application
with it, as ``oots serve`` does, on a socket :func:`bind` took first (so that a port in use is told
before the node says it serves), and returns once SIGINT or SIGTERM has stopped it gracefully (uvicorn
would raise the signal again, and the process would end by it rather than with exit code 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from oots.errors import ConfigError

__all__ = ["FLUSH_BYTES", "SHUTDOWN_SECONDS", "HttpProtocol", "bind", "serve"]

#: Bytes gathered at most before they are handed to the socket within the turn.
FLUSH_BYTES = 64 * 1024


class _GatheringTransport:
    """A transport that sends the writes of one event loop turn together; everything else passes through."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(bytes(data))
        self._size += len(data)
        if self._size >= FLUSH_BYTES:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending, self._size = self._pending, [], 0
        if not self._transport.is_closing():
            self._transport.writelines(pending)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, writing through a :class:`_GatheringTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        gathering: Any = _GatheringTransport(transport, self.loop)
        super().connection_made(gathering)


#: Seconds a stopping server waits for requests in flight by default (``node.shutdown_seconds``).
SHUTDOWN_SECONDS = 10


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` for :func:`serve`; a port in use is a :class:`ConfigError`."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        reason = "the port is in use by another process" if exc.errno == errno.EADDRINUSE else exc.strerror
        raise ConfigError(
            f"cannot listen on {host}:{port}: {reason} (choose another with --port, or stop the other process)",
            [("--port", f"{port}: {reason}")],
        ) from None
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server, which returns after the graceful stop a signal asked for instead of raising it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            getattr(self, "_captured_signals", []).clear()


def serve(
    app: Any,
    *,
    host: str,
    port: int,
    sock: socket.socket | None = None,
    shutdown_seconds: int = SHUTDOWN_SECONDS,
) -> None:
    """Serve ``app`` until SIGINT or SIGTERM, then return (no access log: requests are counted in
    ``/metrics``; uvicorn's own records go to the node's log handler, JSON with ``[log] json``).

    After the signal no new connection is taken; requests in flight get ``shutdown_seconds`` to end
    (a client still sending a body, or a long poll, is then cut off), and the application's shutdown
    (its in-process worker's stop) runs.
    """
    listening = sock if sock is not None else bind(host, port)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        log_config=None,
        access_log=False,
        http=HttpProtocol,
        timeout_graceful_shutdown=shutdown_seconds,
    )
    try:
        _Server(config).run(sockets=[listening])
    finally:
        listening.close()
