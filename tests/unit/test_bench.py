"""``make bench`` without a PostgreSQL server where it looks for one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # closed again: nothing listens there


def run_bench(name: str, settings: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``python -m bench NAME`` from the repository, with ``settings`` for the environment's OOTS_ and BENCH_
    variables; it must end well."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OOTS_", "BENCH_"))} | settings
    done = subprocess.run(
        [sys.executable, "-m", "bench", name],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    return done


def test_the_queue_bench_skips_postgresql_when_no_server_answers() -> None:
    # Before, `make bench` (which names a local server by default) ended in a traceback without one.
    url = f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/test"
    done = run_bench("queue", {"OOTS_BENCH_POSTGRES_URL": url, "OOTS_BENCH_QUEUE_JOBS": "20"})
    assert "Traceback" not in done.stderr
    assert "sqlite  : completed" in done.stdout
    assert f"postgres: skipped (no PostgreSQL server answers at {url};" in done.stdout


def test_a_server_is_used_only_when_it_answers(capsys: pytest.CaptureFixture[str]) -> None:
    sys.path.insert(0, str(ROOT))
    try:
        from bench.postgres import answering
    finally:
        sys.path.remove(str(ROOT))
    url = f"postgresql+psycopg://postgres:secret@127.0.0.1:{_closed_port()}/test"
    assert answering(url, "scale-out") is None
    out = capsys.readouterr().out
    assert out.startswith("   scale-out: skipped (no PostgreSQL server answers at postgresql+psycopg://postgres:***@")
    assert "secret" not in out
    assert answering(None, "scale-out") is None
    assert "scale-out: skipped (set OOTS_BENCH_POSTGRES_URL" in capsys.readouterr().out
    server = os.environ.get("OOTS_TEST_POSTGRES_URL")
    if server:
        assert answering(server, "scale-out") == server
        assert capsys.readouterr().out == ""


def test_the_provider_flow_bench_times_the_evidence_path() -> None:
    # Before, its request named an evidence provider the register's service does not issue for, so every
    # request was answered EDM:ERR:0006 and the bench timed the error path.
    done = run_bench("provider_flow", {"BENCH_REQUESTS": "3"})
    assert "3 requests, sample PDF rendered each time" in done.stdout
