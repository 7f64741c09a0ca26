"""``oots.node.server``: a response in one send, and nothing else about HTTP changed."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from oots.errors import ConfigError
from oots.network.local import ServerThread, free_port
from oots.node.server import FLUSH_BYTES, _GatheringTransport, bind


class FakeTransport:
    def __init__(self) -> None:
        self.sent: list[list[bytes]] = []
        self.closing = False
        self.closed = False

    def writelines(self, data: list[bytes]) -> None:
        self.sent.append(list(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def gathering(fake: FakeTransport) -> _GatheringTransport:
    transport: Any = fake
    return _GatheringTransport(transport, asyncio.get_running_loop())


def test_the_writes_of_one_turn_go_out_together_at_its_end() -> None:
    async def scenario() -> list[list[bytes]]:
        fake = FakeTransport()
        transport = gathering(fake)
        transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        transport.write(b"")
        transport.write(b"ok")
        assert fake.sent == []  # not before the turn ends
        await asyncio.sleep(0)
        transport.write(b"next")
        await asyncio.sleep(0)
        return fake.sent

    assert asyncio.run(scenario()) == [[b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n", b"ok"], [b"next"]]


def test_a_large_body_goes_out_at_once_and_close_sends_what_waits() -> None:
    async def scenario() -> FakeTransport:
        fake = FakeTransport()
        transport = gathering(fake)
        transport.write(b"head")
        transport.write(b"x" * FLUSH_BYTES)
        assert fake.sent == [[b"head", b"x" * FLUSH_BYTES]]  # uvicorn's flow control sees it written
        transport.write(b"tail")
        transport.close()
        assert fake.sent[-1] == [b"tail"]
        assert fake.closed
        assert transport.get_extra_info("peername") == "info:peername"  # the rest passes through
        await asyncio.sleep(0)
        return fake

    assert len(asyncio.run(scenario()).sent) == 2  # nothing twice


def test_nothing_is_written_to_a_transport_that_is_closing() -> None:
    async def scenario() -> list[list[bytes]]:
        fake = FakeTransport()
        transport = gathering(fake)
        transport.write(b"late")
        fake.closing = True  # the client went away meanwhile
        await asyncio.sleep(0)
        return fake.sent

    assert asyncio.run(scenario()) == []


async def _chunks() -> AsyncIterator[bytes]:
    for n in range(3):
        yield f"chunk {n}\n".encode()
        await asyncio.sleep(0.01)


async def _small(request: Request) -> Response:
    return PlainTextResponse("ok", headers={"X-Test": "1"})


async def _large(request: Request) -> Response:
    return Response(bytes(range(256)) * 8192, media_type="application/octet-stream")  # 2 MiB


async def _streamed(request: Request) -> Response:
    return StreamingResponse(_chunks(), media_type="text/plain")


async def _echo(request: Request) -> Response:
    return Response(await request.body(), media_type="application/octet-stream")


APP = Starlette(
    routes=[
        Route("/small", _small),
        Route("/large", _large),
        Route("/streamed", _streamed),
        Route("/echo", _echo, methods=["POST"]),
    ]
)


def test_a_server_with_it_answers_whole_responses_on_a_kept_alive_connection() -> None:
    with ServerThread(APP, free_port()) as server, httpx.Client(base_url=server.url) as client:
        for _ in range(3):  # the same connection each time
            small = client.get("/small")
            assert (small.status_code, small.text, small.headers["x-test"]) == (200, "ok", "1")
        assert client.get("/large").content == bytes(range(256)) * 8192
        assert client.get("/streamed").text == "chunk 0\nchunk 1\nchunk 2\n"
        body = b"as4" * 100_000
        assert client.post("/echo", content=body).content == body


def _node_config(tmp_path: Path, port: int) -> Path:
    config = tmp_path / "node.toml"
    config.write_text(
        f'[node]\nname = "be-node"\ncountry = "BE"\ndata_dir = "{tmp_path.as_posix()}"\n'
        f'base_url = "http://127.0.0.1:{port}"\n[log]\njson = true\n',
        encoding="utf-8",
    )
    return config


def test_a_port_in_use_is_told_before_the_node_says_it_serves(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match="in use"):
            bind("127.0.0.1", port)
        done = subprocess.run(
            [sys.executable, "-m", "oots", "serve", str(_node_config(tmp_path, port))],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2, done.stderr
    assert "serving on" not in done.stdout
    assert f"cannot listen on 127.0.0.1:{port}: the port is in use" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "oots.db").exists()  # refused before the database was opened


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_serve_stops_on_a_signal_with_exit_code_0(tmp_path: Path, stop: signal.Signals) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "oots", "serve", str(_node_config(tmp_path, port))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the node did not start"
            assert server.poll() is None, server.communicate()
            time.sleep(0.2)
        server.send_signal(stop)
        out, err = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    assert server.returncode == 0, err
    assert "serving on" in out
    assert "Traceback" not in err


_HELD_SERVER = """
import asyncio, sys
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route
from oots.node.observe import configure_logging
from oots.node.server import serve
from oots.settings import LogSettings

async def held(request):
    await asyncio.sleep(60)
    return PlainTextResponse("too late")

async def forever():
    yield b"begun"
    await asyncio.sleep(60)

async def streamed(request):
    return StreamingResponse(forever(), media_type="text/plain")

async def ok(request):
    return PlainTextResponse("ok")

configure_logging(LogSettings(level="INFO"), node="be-node")
app = Starlette(routes=[Route("/held", held), Route("/streamed", streamed), Route("/ok", ok)])
serve(app, host="127.0.0.1", port=int(sys.argv[1]), shutdown_seconds=1)
"""


def test_requests_cut_off_at_the_shutdown_limit_are_one_warning_and_503(tmp_path: Path) -> None:
    script = tmp_path / "held_server.py"
    script.write_text(_HELD_SERVER, encoding="utf-8")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, str(script), str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    answers: dict[str, object] = {}

    def ask(path: str) -> None:
        try:
            with httpx.stream("GET", f"http://127.0.0.1:{port}{path}", timeout=30) as response:
                answers[path] = response.status_code
                answers[path + " body"] = response.read()
        except httpx.HTTPError as exc:
            answers[path + " error"] = type(exc).__name__

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ok", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            assert server.poll() is None, server.communicate()
            time.sleep(0.1)
        askers = [threading.Thread(target=ask, args=(path,)) for path in ("/held", "/streamed")]
        for asker in askers:
            asker.start()
        time.sleep(0.5)  # both are held
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=30)
        for asker in askers:
            asker.join(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    assert server.returncode == 0, err
    assert answers["/held"] == 503
    assert answers["/held body"] == b"The server is stopping; please try again.\n"
    assert answers["/streamed"] == 200  # begun: cut short
    assert "/streamed body" not in answers
    assert "Traceback" not in err
    assert "CancelledError" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "WARNING oots.node.server" in lines[0]
    assert lines[0].endswith("shutdown limit reached (node.shutdown_seconds = 1): 2 request(s) cut off")
