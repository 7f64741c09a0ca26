"""``oots eid serve``: the test identity provider as a process."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from oots.cli import main
from oots.network.local import free_port, oots_process, wait_until_up


def test_serve_runs_the_provider_and_makes_its_key(tmp_path: Path) -> None:
    port = free_port()
    proc = oots_process(
        *("eid", "serve", "--port", str(port), "--data-dir", str(tmp_path)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        health = wait_until_up(base + "/health", proc)
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
