"""Serving on loopback: free ports and an application served in a thread."""

from __future__ import annotations

import socket

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from oots.network.local import ServerThread, free_base_port, free_port


def test_free_base_port_leaves_every_offset_free() -> None:
    base = free_base_port((0, 1, 10))
    assert base <= 60000
    for offset in (0, 1, 10):
        with socket.socket() as s:
            s.bind(("127.0.0.1", base + offset))  # raises if taken


def test_no_range_found_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="no free port range"):
        free_base_port((0,), highest=0, tries=3)


def test_server_thread_serves_until_the_block_ends() -> None:
    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hello")

    port = free_port()
    with ServerThread(Starlette(routes=[Route("/", hello)]), port) as server:
        assert httpx.get(server.url + "/").text == "hello"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
