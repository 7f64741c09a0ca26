"""The limit on glibc malloc arenas an ``oots`` server process sets at start (``oots.node.memory``)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from oots.cs.keys import generate_pki, write_pki
from oots.node.memory import DEFAULT_ARENAS, limit_malloc_arenas

GLIBC = platform.libc_ver()[0] == "glibc"


def test_an_arena_limit_in_the_environment_is_left_to_glibc() -> None:
    assert limit_malloc_arenas(environ={"MALLOC_ARENA_MAX": "4"}) is None


@pytest.mark.skipif(not GLIBC, reason="mallopt(M_ARENA_MAX) is glibc's")
def test_without_one_the_process_gets_two_arenas() -> None:
    assert DEFAULT_ARENAS == 2
    # the test process's own threads exist already: the limit applies to arenas made from now on
    assert limit_malloc_arenas(environ={}) == DEFAULT_ARENAS


def test_fewer_than_one_arena_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        limit_malloc_arenas(0, environ={})


# --- every long-running oots process sets it at start --------------------------------------------------


def _started(args: list[str]) -> list[list[object]]:
    """``oots ARGS...`` in a fresh interpreter (no ``MALLOC_ARENA_MAX``) up to where uvicorn would serve:
    ``["limit", threads then]`` for each call of :func:`limit_malloc_arenas`, ``["serve", MALLOC_ARENA_MAX
    then]`` where uvicorn is started."""
    probe = (
        "import json, os, threading\n"
        "import uvicorn\n"
        "import oots.node.memory as memory\n"
        "calls = []\n"
        "real = memory.limit_malloc_arenas\n"
        "def limit(*a, **k):\n"
        "    calls.append(['limit', threading.active_count()])\n"
        "    return real(*a, **k)\n"
        "memory.limit_malloc_arenas = limit\n"
        "def serve(*a, **k):\n"
        "    calls.append(['serve', os.environ.get('MALLOC_ARENA_MAX')])\n"
        "uvicorn.run = serve\n"
        "uvicorn.Server.run = serve\n"
        "from oots.cli import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "print(json.dumps(calls))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX" and not k.startswith("OOTS_")}
    done = subprocess.run(
        [sys.executable, "-c", probe], check=True, timeout=120, capture_output=True, text=True, env=env
    )
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.parametrize("workers", [1, 2])
def test_the_common_services_limit_the_arenas_before_they_serve(tmp_path: Path, workers: int) -> None:
    keys = tmp_path / "keys"
    write_pki(generate_pki(), keys)
    catalogue = Path(str(resources.files("oots.cs").joinpath("data/demo-catalogue.toml")))
    args = ["cs", "serve", "--data", str(catalogue), "--keys", str(keys), "--workers", str(workers)]
    calls = _started([*args, "--database", f"sqlite:///{tmp_path / 'cs.db'}"])
    # uvicorn's worker processes are new interpreters: they have the limit from the environment
    inherited = str(DEFAULT_ARENAS) if GLIBC and workers > 1 else None
    assert calls == [["limit", 1], ["serve", inherited]]


def test_the_test_identity_provider_limits_the_arenas_before_it_serves(tmp_path: Path) -> None:
    assert _started(["eid", "serve", "--data-dir", str(tmp_path)]) == [["limit", 1], ["serve", None]]
