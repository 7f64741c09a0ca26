"""``oots queue``: inspect the durable work queue, re-queue or discard dead jobs."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from oots.errors import ConfigError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from oots.settings import Settings

app = typer.Typer(help="The durable work queue: counts, dead letters, re-queueing, discarding.", no_args_is_help=True)

ConfigArg = Annotated[Path, typer.Argument(help="The node's TOML configuration file.")]
KindOpt = Annotated[str | None, typer.Option("--kind", help="Only jobs of this kind.")]
JobIdsArg = Annotated[list[int] | None, typer.Argument(help="Ids of dead jobs.")]
AllDeadOpt = Annotated[bool, typer.Option("--all", help="Every dead job (of --kind).")]


def _settings(config: Path) -> Settings:
    from oots.settings import load_settings

    return load_settings(config)


@app.command("stats")
def stats(config: ConfigArg, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Number of jobs per kind and status."""
    from oots.store import open_existing_database
    from oots.store import queue as q

    with open_existing_database(_settings(config)) as db, db.session() as session:
        counts = q.counts(session)
    if as_json:
        typer.echo(json.dumps(counts, indent=2, sort_keys=True))
        return
    if not counts:
        typer.echo("the queue is empty")
        return
    typer.echo(f"{'kind':<32} " + " ".join(f"{s:>8}" for s in q.JOB_STATUSES))
    for kind in sorted(counts):
        typer.echo(f"{kind:<32} " + " ".join(f"{counts[kind].get(s, 0):>8}" for s in q.JOB_STATUSES))


@app.command("dead")
def dead(
    config: ConfigArg,
    kind: KindOpt = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 50,
) -> None:
    """List dead-lettered jobs, most recent first, with their last error."""
    from oots.store import open_existing_database
    from oots.store import queue as q

    with open_existing_database(_settings(config)) as db, db.session() as session:
        jobs = q.list_dead(session, kind=kind, limit=limit)
        for job in jobs:
            when = job.finished_at.isoformat(timespec="seconds") if job.finished_at else "?"
            typer.echo(f"{job.id}\t{job.kind}\t{when}\tattempts={job.attempts}\t{job.last_error or ''}")
    if not jobs:
        typer.echo("no dead jobs")


def _on_dead_jobs(
    config: Path,
    job_ids: list[int] | None,
    all_dead: bool,
    kind: str | None,
    *,
    one: Callable[[Session, int], str],
    every: Callable[..., int],
) -> int:
    """Apply ``one`` to each dead job of ``job_ids`` or ``every`` to all (of ``kind``); returns how many."""
    from oots.store import open_existing_database

    if bool(job_ids) == all_dead:
        raise ConfigError("give either job ids or --all")
    with open_existing_database(_settings(config)) as db, db.session() as session:
        if all_dead:
            return every(session, kind=kind)
        for job_id in job_ids or []:
            one(session, job_id)
        return len(job_ids or [])


@app.command("requeue")
def requeue(
    config: ConfigArg,
    job_ids: JobIdsArg = None,
    all_dead: AllDeadOpt = False,
    kind: KindOpt = None,
) -> None:
    """Put dead jobs back in the queue with fresh attempts."""
    from oots.store import queue as q

    n = _on_dead_jobs(config, job_ids, all_dead, kind, one=q.requeue, every=q.requeue_dead)
    typer.echo(f"re-queued {n} job(s)")


@app.command("discard")
def discard(
    config: ConfigArg,
    job_ids: JobIdsArg = None,
    all_dead: AllDeadOpt = False,
    kind: KindOpt = None,
) -> None:
    """End dead jobs without running them (done, their last error kept): for causes never to be mended."""
    from oots.store import queue as q

    n = _on_dead_jobs(config, job_ids, all_dead, kind, one=q.discard, every=q.discard_dead)
    typer.echo(f"discarded {n} job(s)")


#: The youngest done jobs ``oots queue purge`` deletes: a done job's key keeps a repeat of its work out.
PURGE_MIN_DAYS = 1


@app.command("purge")
def purge(
    config: ConfigArg,
    older_than_days: Annotated[
        float, typer.Option("--older-than-days", help=f"Age of done jobs to delete (at least {PURGE_MIN_DAYS}).")
    ],
) -> None:
    """Delete done jobs finished more than N days ago (their idempotency keys stop deduplicating)."""
    from oots.store import open_existing_database, utcnow
    from oots.store import queue as q

    if not math.isfinite(older_than_days) or older_than_days < PURGE_MIN_DAYS:
        raise ConfigError(
            f"--older-than-days must be at least {PURGE_MIN_DAYS} (got {older_than_days:g}): a done job's key keeps "
            "the same work from being queued again (a message received twice, a webhook), and only for as long "
            "as the job is kept"
        )
    with open_existing_database(_settings(config)) as db, db.session() as session:
        n = q.purge_done(session, older_than=utcnow() - timedelta(days=older_than_days))
    typer.echo(f"deleted {n} done job(s)")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="queue")
