"""Start the processes of a network, wait until each answers ``/health``, stop them all cleanly.

A service counts as up only when the answer is its own: the port was free before it started, the
``/health`` answer carries the service's identity (:attr:`ServiceSpec.identity`), the process is still
running, and (where ``/proc`` tells) the socket listening on the port is that process's.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import httpx

from oots.errors import OotsError
from oots.network.plan import ServiceSpec

__all__ = [
    "WORKER_SETTLE_SECONDS",
    "PortsInUse",
    "ServiceStopped",
    "StartFailed",
    "Supervisor",
    "listens_on",
    "ports_in_use",
]

#: How long a service without a port (``oots worker``) must keep running to count as started.
WORKER_SETTLE_SECONDS = 2.0
HOST = "127.0.0.1"
_TCP_LISTEN = "0A"


class StartFailed(OotsError):
    """A service of the network did not come up."""


class PortsInUse(StartFailed):
    """A port the network needs is taken by another program (``ports``: which)."""

    exit_code = 2

    def __init__(self, message: str, ports: Sequence[int]) -> None:
        super().__init__(message)
        self.ports = tuple(ports)


class ServiceStopped(OotsError):
    """A service of the running network stopped on its own."""


def ports_in_use(ports: Iterable[int]) -> list[int]:
    """The ``ports`` a server could not listen on now on loopback (bound the way uvicorn binds them)."""
    taken = []
    for port in ports:
        with socket.socket() as probe:
            if os.name == "posix":  # as uvicorn: a closed connection's TIME_WAIT does not hold the port
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((HOST, port))
            except OSError:
                taken.append(port)
    return taken


def _listening_inodes(port: int) -> set[str] | None:
    """The inodes of the TCP sockets listening on ``port`` (``None``: no ``/proc/net/tcp`` here)."""
    found: set[str] = set()
    readable = False
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        try:
            rows = table.read_text(encoding="ascii").splitlines()[1:]
        except OSError:
            continue
        readable = True
        for row in rows:
            fields = row.split()
            # sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            if len(fields) > 9 and fields[3] == _TCP_LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                found.add(fields[9])
    return found if readable else None


def listens_on(pid: int, port: int) -> bool | None:
    """Whether process ``pid`` holds a socket listening on TCP ``port`` (``None``: cannot tell here)."""
    inodes = _listening_inodes(port)
    if inodes is None:
        return None
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return True
    return False


class Supervisor:
    """Runs :class:`ServiceSpec` processes; ``progress`` receives one line per step."""

    def __init__(self, services: Sequence[ServiceSpec], *, progress: Callable[[str], None] = print) -> None:
        self.services = list(services)
        self.progress = progress
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def _env(self) -> dict[str, str]:
        # The children read their own config files; the caller's OOTS_ settings must not leak into them.
        env = {k: v for k, v in os.environ.items() if not k.startswith("OOTS_")}
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def start(self, *, timeout: float = 60.0) -> None:
        """Start every service in order and wait for each to be healthy (raises :class:`StartFailed`;
        :class:`PortsInUse` before anything starts when a port a service needs is taken)."""
        total = len(self.services)
        taken = ports_in_use(s.port for s in self.services if s.port)
        if taken:
            named = ", ".join(f"{s.port} ({s.title})" for s in self.services if s.port in taken)
            raise PortsInUse(
                f"port(s) already in use: {named}; stop the program that listens there or choose other ports",
                taken,
            )
        for i, service in enumerate(self.services, 1):
            self.progress(f"[{i}/{total}] starting {service.title} on {service.url} ...")
            service.log.parent.mkdir(parents=True, exist_ok=True)
            with service.log.open("ab") as log:
                self.procs[service.name] = subprocess.Popen(
                    list(service.argv), stdout=log, stderr=subprocess.STDOUT, env=self._env(), start_new_session=True
                )
            self._wait_healthy(service, timeout)
        self.progress(f"all {total} services are up")

    def _wait_healthy(self, service: ServiceSpec, timeout: float) -> None:
        proc = self.procs[service.name]
        deadline = time.monotonic() + timeout
        # A service without a port (a worker) is up when it is still running a moment after its start.
        settled = time.monotonic() + WORKER_SETTLE_SECONDS
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = service.log.read_text(encoding="utf-8", errors="replace")[-1500:]
                raise StartFailed(
                    f"{service.title} stopped while starting (exit {proc.returncode}); its log ends:\n{tail}"
                )
            if not service.port:
                if time.monotonic() >= settled:
                    return
                time.sleep(0.1)
                continue
            if self._answers(service, proc):
                return
            time.sleep(0.1)
        raise StartFailed(
            f"{service.title} did not answer {service.health_url} within {timeout:.0f} s (log: {service.log})"
        )

    @staticmethod
    def _answers(service: ServiceSpec, proc: subprocess.Popen[bytes]) -> bool:
        """Whether ``proc`` itself answers ``/health`` as ``service`` (another program on the port does not)."""
        try:
            answer = httpx.get(service.health_url, timeout=1.0)
        except httpx.HTTPError:
            return False
        if answer.status_code != 200:
            return False
        if service.identity is not None:
            key, value = service.identity
            try:
                said = answer.json()
            except ValueError:
                return False
            if not isinstance(said, dict) or said.get(key) != value:
                return False
        return proc.poll() is None and listens_on(proc.pid, service.port) is not False

    def kill(self, name: str) -> None:
        """SIGKILL one service (fault tests: a node dying mid-work)."""
        proc = self.procs[name]
        proc.kill()
        proc.wait(10)

    def restart(self, name: str, *, timeout: float = 60.0) -> None:
        """Start one service again (after :meth:`kill`) and wait until it is healthy."""
        service = next(s for s in self.services if s.name == name)
        old = self.procs.get(name)
        if old is not None and old.poll() is None:
            raise StartFailed(f"{service.title} is still running")
        self.progress(f"restarting {service.title} on {service.url} ...")
        with service.log.open("ab") as log:
            self.procs[name] = subprocess.Popen(
                list(service.argv), stdout=log, stderr=subprocess.STDOUT, env=self._env(), start_new_session=True
            )
        self._wait_healthy(service, timeout)

    def running(self) -> list[str]:
        return [name for name, proc in self.procs.items() if proc.poll() is None]

    def check(self) -> None:
        """Raise :class:`ServiceStopped` naming every started service that has stopped, and its log."""
        gone = [(s, self.procs[s.name]) for s in self.services if s.name in self.procs]
        gone = [(s, proc) for s, proc in gone if proc.poll() is not None]
        if gone:
            what = "; ".join(
                f"{s.name} ({s.title}) stopped unexpectedly (exit {p.returncode}); its log: {s.log}" for s, p in gone
            )
            raise ServiceStopped(what)

    def stop(self, *, grace: float = 10.0) -> None:
        """SIGTERM every process (last started first), wait up to ``grace`` seconds, then SIGKILL."""
        for name in reversed(list(self.procs)):
            proc = self.procs[name]
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.procs.values():
            remaining = max(0.0, deadline - time.monotonic())
            try:
                proc.wait(remaining)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.procs.clear()
