"""The supervisor takes a service for up only when the answer on its port is its own, and notices when one stops."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from oots.network.local import ServerThread
from oots.network.plan import ServiceSpec
from oots.network.supervisor import (
    PortsInUse,
    ServiceStopped,
    StartFailed,
    Supervisor,
    listens_on,
    ports_in_use,
)

#: The ports these tests may listen on.
PORTS = range(9500, 9600)


def free_ports(count: int) -> list[int]:
    free = [p for p in PORTS if not ports_in_use([p])]
    if len(free) < count:
        pytest.skip(f"fewer than {count} free ports in {PORTS}")
    return free[:count]


@pytest.fixture
def listening() -> Iterator[int]:
    """A port of :data:`PORTS` that a real socket listens on."""
    port = free_ports(1)[0]
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as a server does
        sock.bind(("127.0.0.1", port))
        sock.listen()
        yield port


def python(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", textwrap.dedent(code))


def health_app(said: dict[str, str]) -> Starlette:
    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", **said})

    return Starlette(routes=[Route("/health", health)])


def test_a_port_a_program_listens_on_is_in_use(listening: int) -> None:
    other = next(p for p in free_ports(2) if p != listening)
    assert ports_in_use([listening, other]) == [listening]


def test_a_closed_connection_does_not_hold_its_port() -> None:
    """After a demo stops, its server side of closed connections waits in TIME_WAIT; uvicorn binds anyway."""
    port = free_ports(1)[0]
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen()
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # the server closes first: its end of the connection is left in TIME_WAIT
        client.close()
    time.sleep(0.1)
    assert ports_in_use([port]) == []


def test_nothing_starts_when_a_port_is_taken(listening: int, tmp_path: Path) -> None:
    first = ServiceSpec("first", "the first service", python("import time; time.sleep(30)"), 0, tmp_path / "1.log")
    busy = ServiceSpec("busy", "the busy service", python("pass"), listening, tmp_path / "2.log")
    supervisor = Supervisor([first, busy], progress=lambda line: None)
    with pytest.raises(PortsInUse) as info:
        supervisor.start()
    assert info.value.ports == (listening,)
    assert info.value.exit_code == 2
    assert f"{listening} (the busy service)" in info.value.message
    assert supervisor.procs == {}
    assert not (tmp_path / "1.log").exists()


#: A child that, as a server that comes up late, tries to listen on the port (and fails when it is taken).
LATE_BINDER = """
    import socket, sys, time
    time.sleep(1.5)
    socket.socket().bind(("127.0.0.1", int(sys.argv[1])))
    time.sleep(30)
"""


@pytest.mark.parametrize("identity", [("node", "be-node"), ("node", "fr-node")], ids=["same-name", "other-name"])
def test_another_program_answering_on_the_port_is_not_taken_for_the_service(
    identity: tuple[str, str], tmp_path: Path
) -> None:
    """The port was taken after the check (or by a program the check missed): the answer is not the child's."""
    port = free_ports(1)[0]
    if identity[1] == "be-node" and not Path("/proc/net/tcp").exists():
        pytest.skip("no /proc here to tell which process listens on a port")
    service = ServiceSpec("be-node", "BE node", (*python(LATE_BINDER), str(port)), port, tmp_path / "be.log", identity)
    supervisor = Supervisor([service], progress=lambda line: None)
    with ServerThread(health_app({"node": "be-node"}), port):
        with service.log.open("ab") as log:
            supervisor.procs[service.name] = subprocess.Popen(list(service.argv), stdout=log, stderr=log)
        try:
            with pytest.raises(StartFailed) as info:
                supervisor._wait_healthy(service, timeout=20)
        finally:
            supervisor.stop(grace=2)
    assert "stopped while starting" in info.value.message
    assert "Address already in use" in info.value.message


#: A child that serves ``/health`` with its identity, as ``oots serve`` does.
SERVER = """
    import json, sys
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Health(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"status": "ok", "node": sys.argv[2]}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    HTTPServer(("127.0.0.1", int(sys.argv[1])), Health).serve_forever()
"""


def test_a_service_is_up_when_it_answers_as_itself_and_stopping_is_noticed(tmp_path: Path) -> None:
    port = free_ports(1)[0]
    node = ServiceSpec(
        "be-node", "BE node", (*python(SERVER), str(port), "be-node"), port, tmp_path / "be.log", ("node", "be-node")
    )
    short = ServiceSpec("short", "a short worker", python("import time; time.sleep(3)"), 0, tmp_path / "short.log")
    supervisor = Supervisor([node, short], progress=lambda line: None)
    try:
        supervisor.start(timeout=30)
        assert listens_on(supervisor.procs["be-node"].pid, port) in (True, None)
        supervisor.check()  # all running
        supervisor.procs["short"].wait(10)
        with pytest.raises(ServiceStopped) as info:
            supervisor.check()
    finally:
        supervisor.stop(grace=2)
    assert info.value.exit_code == 1
    log = tmp_path / "short.log"
    assert info.value.message == f"short (a short worker) stopped unexpectedly (exit 0); its log: {log}"
