"""A round-robin TCP balancer for a node served by several web processes on one machine.

The stand-in for the reverse proxy of docs/deploy.md in the load tests and the benchmark: it listens
on the node's own port (the one in its ``base_url`` and in its partners' ``endpoint``) and hands each
new connection to the next web process, copying bytes both ways until either side closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import Sequence

from oots.errors import OotsError

__all__ = ["Balancer"]

_CHUNK = 64 * 1024


class Balancer:
    """Listens on ``127.0.0.1:port`` and spreads connections over ``upstreams`` (ports on 127.0.0.1)."""

    def __init__(self, port: int, upstreams: Sequence[int]) -> None:
        if not upstreams:
            raise OotsError("a balancer needs at least one upstream port")
        self.port = port
        self.upstreams = list(upstreams)
        self._next = itertools.cycle(self.upstreams)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self._server: asyncio.Server | None = None

    def start(self) -> None:
        """Start listening (in a thread of its own); raises :class:`OotsError` if the port is taken."""
        self._thread = threading.Thread(target=self._run, name=f"balancer-{self.port}", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._failed is not None:
            raise OotsError(f"the balancer cannot listen on port {self.port}: {self._failed}")

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            self._server = loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", self.port))
        except OSError as exc:
            self._failed = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            loop.run_until_complete(self._server.wait_closed())
            loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", next(self._next))
        except OSError:  # that web process is down: the client sees the connection close, as with a proxy
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(_CHUNK):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            writer.close()
