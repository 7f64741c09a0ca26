"""The retention purge of the preview space is periodic work of a provider node's every worker."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import text

from oots.network.pair import write_node_configs
from oots.node import build_context
from oots.node.app import create_worker
from oots.provider.previews import RETIRED_PURGE_JOB
from oots.settings import load_settings
from oots.store import queue

NOW = dt.datetime.now(dt.UTC)
EID = '[eid]\nissuer = "http://127.0.0.1:9/idp"\nclient_id = "red"\nsession_secret = "preview-purge-0123456789"\n'


def _red(tmp_path: Path, tables: str) -> Path:
    configs = write_node_configs(
        tmp_path,
        {"blue": "http://blue.test/as4", "red": "http://127.0.0.1:9/as4"},
        now=NOW,
        node={"red": 'country = "ES"\nroles = ["provider"]\nbase_url = "http://127.0.0.1:9"'},
        tables={"red": f"[provider]\nsamples = true\n{tables}"},
    )
    return configs["red"]


def _periodic(config: Path) -> tuple[list[str], object]:
    """The names of the periodic work a worker of the node runs, and the provider role."""
    ctx = build_context(load_settings(config))
    try:
        worker = create_worker(ctx)
        (role,) = ctx.services["roles"]
        return [loop.name for loop in worker._loops._loops], role
    finally:
        ctx.services["as4"].close()
        ctx.database.dispose()


def test_every_worker_of_a_preview_space_runs_the_retention_purge_hourly(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    names, role = _periodic(_red(tmp_path, f"preview_retention_seconds = 86400\n\n{EID}"))
    assert "provider-preview-purge" in names
    (purge,) = [p for p in role.periodic() if p.name == "provider-preview-purge"]  # type: ignore[attr-defined]
    assert purge.every_seconds == 3600  # the default of provider.preview_purge_interval_seconds
    assert role.previews.retention == dt.timedelta(days=1)  # type: ignore[attr-defined]
    assert role.purge_previews() == 0  # type: ignore[attr-defined]  # nothing open: nothing closed


def test_the_purge_runs_as_often_as_the_setting_says(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    tables = f"preview_retention_seconds = 86400\npreview_purge_interval_seconds = 600\n\n{EID}"
    names, role = _periodic(_red(tmp_path, tables))
    assert "provider-preview-purge" in names
    (purge,) = [p for p in role.periodic() if p.name == "provider-preview-purge"]  # type: ignore[attr-defined]
    assert purge.every_seconds == 600


def test_a_provider_without_a_preview_space_has_no_purge(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    names, role = _periodic(_red(tmp_path, ""))
    assert "provider-preview-purge" not in names
    assert role.periodic() == []  # type: ignore[attr-defined]


@pytest.mark.parametrize("tables", [f"preview_retention_seconds = 86400\n\n{EID}", ""], ids=["preview", "no-preview"])
def test_purge_jobs_an_older_version_left_are_completed_unrun(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, tables: str
) -> None:
    ctx = build_context(load_settings(_red(tmp_path, tables)))
    try:
        now = ctx.clock()
        with ctx.database.session() as session:  # the hourly chain of the self-scheduling job, and a dead one
            queue.enqueue(session, RETIRED_PURGE_JOB, {"chain": "3600:1", "batch": 0}, key="3600:1", now=now)
            dead = queue.enqueue(session, RETIRED_PURGE_JOB, {"chain": "3600:0", "batch": 0}, key="3600:0", now=now)
            session.execute(text("UPDATE queue_jobs SET status = 'dead' WHERE id = :id"), {"id": dead})
            queue.requeue(session, dead, now=now)
        worker = create_worker(ctx)
        assert worker.worker.drain() == 2
        with ctx.database.session() as session:
            assert queue.counts(session)[RETIRED_PURGE_JOB] == {"done": 2}  # not left queued or dead
    finally:
        ctx.services["as4"].close()
        ctx.database.dispose()
