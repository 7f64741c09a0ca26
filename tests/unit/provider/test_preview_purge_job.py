"""The retention purge of the preview space runs in a provider node's workers: one chain, however many."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select

from oots.network.pair import write_node_configs
from oots.node import build_context
from oots.node.app import create_worker
from oots.provider.previews import PURGE_JOB
from oots.settings import load_settings
from oots.store.models import QueueJob

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


def _purge_jobs(config: Path, *, workers: int) -> tuple[list[QueueJob], list[set[str]]]:
    ctx = build_context(load_settings(config))
    try:
        kinds = [set(create_worker(ctx).worker.handlers) for _ in range(workers)]
        with ctx.database.session() as session:
            jobs = list(session.scalars(select(QueueJob).where(QueueJob.kind == PURGE_JOB)))
            session.expunge_all()
        return jobs, kinds
    finally:
        ctx.services["as4"].close()
        ctx.database.dispose()


def test_each_worker_of_a_preview_space_schedules_the_one_purge_chain(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    config = _red(tmp_path, f"preview_retention_seconds = 86400\n\n{EID}")
    jobs, kinds = _purge_jobs(config, workers=3)
    (job,) = jobs  # three workers starting, one job
    assert all(PURGE_JOB in k for k in kinds)
    assert job.status == "queued"
    assert NOW < job.run_at <= NOW + dt.timedelta(hours=1)
    ctx = build_context(load_settings(config))
    try:
        (role,) = ctx.services["roles"]
        assert role.previews.retention == dt.timedelta(days=1)
    finally:
        ctx.services["as4"].close()
        ctx.database.dispose()


def test_a_provider_without_a_preview_space_has_no_purge(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    jobs, kinds = _purge_jobs(_red(tmp_path, ""), workers=1)
    assert jobs == []
    assert PURGE_JOB not in kinds[0]
