"""``oots db`` and ``oots queue`` against a node's SQLite database."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from clirun import run_cli
from oots.settings import QueueSettings, load_settings
from oots.store import open_database
from oots.store import queue as q


@pytest.fixture
def config(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(f'[node]\ndata_dir = "{(tmp_path / "data").as_posix()}"\n', encoding="utf-8")
    return path


def test_db_status_then_migrate(capsys: pytest.CaptureFixture[str], config: Path) -> None:
    code, out, _ = run_cli(capsys, "db", "status", str(config))
    assert code == 1
    assert "pending: " in out
    assert "store_0001" in out
    code, out, _ = run_cli(capsys, "db", "migrate", str(config))
    assert code == 0, out
    assert "store_0001" in out
    code, out, _ = run_cli(capsys, "db", "status", str(config))
    assert code == 0
    assert "up to date" in out


def test_queue_stats_dead_requeue_purge(capsys: pytest.CaptureFixture[str], config: Path) -> None:
    with open_database(load_settings(config)) as db:
        with db.session() as s:
            q.enqueue(s, "send", {}, max_attempts=1)
            q.enqueue(s, "send", {})

        def boom(session: Session, job: q.Job) -> None:
            raise RuntimeError("peer down")

        q.Worker(db, QueueSettings(), handlers={"send": boom}).run_once()
    code, out, _ = run_cli(capsys, "queue", "stats", str(config))
    assert code == 0
    assert out.splitlines()[1].split() == ["send", "1", "0", "0", "1"]
    code, out, _ = run_cli(capsys, "queue", "dead", str(config))
    assert code == 0
    assert "RuntimeError" in out
    assert "peer down" not in out  # a foreign exception's message may quote data: only its type is kept
    dead_id = out.split()[0]
    code, _, err = run_cli(capsys, "queue", "requeue", str(config), "999")
    assert code == 1
    assert "no dead job 999" in err
    code, _, err = run_cli(capsys, "queue", "requeue", str(config))
    assert code == 2
    code, out, _ = run_cli(capsys, "queue", "requeue", str(config), dead_id)
    assert (code, out.strip()) == (0, "re-queued 1 job(s)")
    code, out, _ = run_cli(capsys, "queue", "stats", str(config), "--json")
    assert '"queued": 2' in out
    for days in ("0", "0.5", "-3", "nan", "inf"):
        code, _, err = run_cli(capsys, "queue", "purge", str(config), "--older-than-days", days)
        assert code == 2, days
        assert "--older-than-days must be at least 1" in err
    assert '"queued": 2' in run_cli(capsys, "queue", "stats", str(config), "--json")[1]
    code, out, _ = run_cli(capsys, "queue", "purge", str(config), "--older-than-days", "1")
    assert (code, out.strip()) == (0, "deleted 0 done job(s)")
    code, out, _ = run_cli(capsys, "queue", "dead", str(config))
    assert out.strip() == "no dead jobs"


def test_queue_discard(capsys: pytest.CaptureFixture[str], config: Path) -> None:
    with open_database(load_settings(config)) as db:
        with db.session() as s:
            dead = [q.enqueue(s, kind, {}, max_attempts=1) for kind in ("send", "send", "send", "mail")]
            waiting = q.enqueue(s, "other", {})

        def boom(session: Session, job: q.Job) -> None:
            raise RuntimeError("peer down")

        q.Worker(db, QueueSettings(), handlers={"send": boom, "mail": boom}).run_once()
    code, _, err = run_cli(capsys, "queue", "discard", str(config))
    assert code == 2
    assert "give either job ids or --all" in err
    code, _, err = run_cli(capsys, "queue", "discard", str(config), str(dead[0]), "--all")
    assert code == 2
    code, _, err = run_cli(capsys, "queue", "discard", str(config), str(dead[0]), str(waiting))
    assert code == 1
    assert f"no dead job {waiting}: it is queued, and only a dead job can be discarded" in err
    code, out, _ = run_cli(capsys, "queue", "dead", str(config))
    assert len(out.splitlines()) == 4  # all or nothing: the first was not discarded either
    code, out, _ = run_cli(capsys, "queue", "discard", str(config), str(dead[0]), str(dead[1]))
    assert (code, out.strip()) == (0, "discarded 2 job(s)")
    code, out, _ = run_cli(capsys, "queue", "discard", str(config), "--all", "--kind", "mail")
    assert (code, out.strip()) == (0, "discarded 1 job(s)")
    code, out, _ = run_cli(capsys, "queue", "dead", str(config))
    assert out.split()[0] == str(dead[2])
    code, out, _ = run_cli(capsys, "queue", "discard", str(config), "--all")
    assert (code, out.strip()) == (0, "discarded 1 job(s)")
    code, out, _ = run_cli(capsys, "queue", "stats", str(config), "--json")
    assert '"done": 3' in out
    assert '"dead"' not in out
    with open_database(load_settings(config)) as db, db.session() as s:
        row = s.get(q.QueueJob, dead[0])
        assert row is not None
        assert row.status == "done"
        assert row.last_error is not None
        assert row.last_error.startswith("RuntimeError; discarded unrun by an operator at ")
    code, out, _ = run_cli(capsys, "queue", "purge", str(config), "--older-than-days", "1")
    assert (code, out.strip()) == (0, "deleted 0 done job(s)")  # kept until a day after their discarding


def test_db_status_and_queue_commands_create_no_database(capsys: pytest.CaptureFixture[str], config: Path) -> None:
    # Before, `queue requeue` and `queue purge` created and migrated a database where none was.
    data = config.parent / "data"
    code, out, _ = run_cli(capsys, "db", "status", str(config))
    assert code == 1
    assert f"database: {data / 'oots.db'} (does not exist yet)" in out
    commands = (("stats",), ("dead",), ("requeue", "--all"), ("discard", "--all"), ("purge", "--older-than-days", "7"))
    for command in commands:
        code, _, err = run_cli(capsys, "queue", command[0], str(config), *command[1:])
        assert code == 1
        assert f"there is no database at {data / 'oots.db'}" in err
    assert not data.exists()
