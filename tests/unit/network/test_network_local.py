"""Serving on loopback: free ports, an application served in a thread, an ``oots`` command in a process."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from oots.network.local import ServerThread, free_base_port, free_port, oots_process, wait_until_up


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


def test_an_oots_process_reads_its_own_file_not_the_callers_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "node.toml"
    config.write_text(f'[node]\nname = "from-file"\ndata_dir = "{tmp_path.as_posix()}"\n', encoding="utf-8")
    monkeypatch.setenv("OOTS_NODE__NAME", "from-the-caller")
    out, _ = oots_process("config", "check", str(config), stdout=subprocess.PIPE, text=True).communicate(timeout=60)
    assert "(node from-file," in out


def test_waiting_for_a_server_gives_its_first_good_answer() -> None:
    async def ready(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ready")

    with ServerThread(Starlette(routes=[Route("/ready", ready)]), free_port()) as server:
        assert wait_until_up(server.url + "/ready", seconds=10).text == "ready"


def test_a_server_process_that_exits_is_not_waited_for(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("boom: the port is taken\n", encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    proc.wait()
    with pytest.raises(RuntimeError, match=r"exited \(code 3\) boom: the port is taken"):
        wait_until_up(f"http://127.0.0.1:{free_port()}/ready", proc, seconds=30, log=log)


def test_a_server_that_never_answers_is_given_up_on() -> None:
    with pytest.raises(RuntimeError, match=r"did not start within 0\.3 s"):
        wait_until_up(f"http://127.0.0.1:{free_port()}/ready", seconds=0.3)
