"""Start the processes of a network, wait until each answers ``/health``, stop them all cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence

import httpx

from oots.errors import OotsError
from oots.network.plan import ServiceSpec

__all__ = ["WORKER_SETTLE_SECONDS", "StartFailed", "Supervisor"]

#: How long a service without a port (``oots worker``) must keep running to count as started.
WORKER_SETTLE_SECONDS = 2.0


class StartFailed(OotsError):
    """A service of the network did not come up."""


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
        """Start every service in order and wait for each to be healthy (raises :class:`StartFailed`)."""
        total = len(self.services)
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
            try:
                if httpx.get(service.health_url, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise StartFailed(
            f"{service.title} did not answer {service.health_url} within {timeout:.0f} s (log: {service.log})"
        )

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
