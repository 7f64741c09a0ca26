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
import logging
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from oots.errors import ConfigError

__all__ = ["FLUSH_BYTES", "SHUTDOWN_SECONDS", "HttpProtocol", "bind", "serve"]

log = logging.getLogger(__name__)

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


#: What uvicorn logs (as an error) when the shutdown limit is reached, before it cancels the requests.
_UVICORN_CUT_OFF = "Cancel %s running task(s), timeout graceful shutdown exceeded"


class _CutOff(logging.Filter):
    """On uvicorn's log during :func:`serve`: its error line of the requests cut off at the shutdown limit
    becomes one plain warning of ours, and what it would log of each one (a ``CancelledError``
    traceback) is not written. :class:`_AnswerCutOff` answers those requests ``503``."""

    def __init__(self, shutdown_seconds: int) -> None:
        super().__init__()
        self.shutdown_seconds = shutdown_seconds
        self.reached = False

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == _UVICORN_CUT_OFF and record.args:
            self.reached = True
            count = record.args[0] if isinstance(record.args, tuple) else record.args
            log.warning(
                "shutdown limit reached (node.shutdown_seconds = %d): %s request(s) cut off",
                self.shutdown_seconds,
                count,
            )
            return False
        return not (
            self.reached and record.exc_info is not None and isinstance(record.exc_info[1], asyncio.CancelledError)
        )


class _AnswerCutOff:
    """ASGI middleware: a request the server cancels at the shutdown limit is answered ``503`` (when its
    answer has not started) instead of uvicorn's ``500``, with ``Connection: close``."""

    def __init__(self, app: ASGIApp, cut_off: _CutOff) -> None:
        self.app = app
        self.cut_off = cut_off

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except asyncio.CancelledError:
            if not self.cut_off.reached or started:
                raise  # an answer begun is cut short (uvicorn closes the connection; no traceback is logged)
            else:  # the task ends here: nothing waits for it any more
                body = b"The server is stopping; please try again.\n"
                await send(
                    {
                        "type": "http.response.start",
                        "status": 503,
                        "headers": [
                            (b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"),
                            (b"retry-after", b"5"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})


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
    (a client still sending a body, or a long poll, is then cut off: answered ``503`` when its answer had
    not started, and counted in one warning line), and the application's shutdown (its in-process
    worker's stop) runs.
    """
    listening = sock if sock is not None else bind(host, port)
    cut_off = _CutOff(shutdown_seconds)
    config = uvicorn.Config(
        _AnswerCutOff(app, cut_off),
        host=host,
        port=port,
        log_level="warning",
        log_config=None,
        access_log=False,
        http=HttpProtocol,
        timeout_graceful_shutdown=shutdown_seconds,
    )
    uvicorn_log = logging.getLogger("uvicorn.error")
    uvicorn_log.addFilter(cut_off)
    try:
        _Server(config).run(sockets=[listening])
    finally:
        uvicorn_log.removeFilter(cut_off)
        listening.close()
