"""``oots eid serve``: the test identity provider as a process."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from oots.cli import main
from oots.network.local import free_port


def test_serve_runs_the_provider_and_makes_its_key(tmp_path: Path) -> None:
    port = free_port()
    cmd = [sys.executable, "-m", "oots", "eid", "serve", "--port", str(port), "--data-dir", str(tmp_path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(base + "/health", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "the provider did not start"
                time.sleep(0.2)
        assert health.json()["status"] == "ok"
        assert httpx.get(base + "/.well-known/openid-configuration").json()["issuer"] == base
        assert (tmp_path / "idp-key.pem").exists()
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    assert f"oots test identity provider at {base}/" in out


def test_serve_refuses_a_malformed_client(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        main(["eid", "serve", "--client", "no-secret", "--data-dir", str(tmp_path)])
    assert info.value.code == 2
    assert "--client must be ID=SECRET" in capsys.readouterr().err
