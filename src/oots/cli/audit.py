"""``oots audit``: verify, purge and export a node's audit journal."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="The audit journal: verify its seal chain, purge old entries, export for an authority.")

Config = Annotated[Path, typer.Argument(help="The node's TOML configuration file.")]


@app.command("verify")
def verify(config: Config) -> int:
    """Check that no entry was edited, deleted or reordered; exit 0 when the chain holds, 1 otherwise."""
    from oots.audit.journal import load_journal
    from oots.settings import load_settings
    from oots.store import open_database

    settings = load_settings(config)
    journal = load_journal(settings)
    with open_database(settings).session() as session:
        report = journal.verify(session)
    span = f"entries {report.anchor_seq + 1}..{report.head_seq}" if report.head_seq else "no entries"
    if report.ok:
        typer.echo(f"audit journal of {settings.node.name}: intact ({report.entries} entries, {span})")
        return 0
    typer.echo(f"audit journal of {settings.node.name}: {len(report.breaks)} problem(s) ({span})", err=True)
    for br in report.breaks:
        typer.echo(f"  entry {br.seq}: {br.reason}", err=True)
    return 1


@app.command("purge")
def purge(
    config: Config,
    older_than_days: Annotated[
        int | None, typer.Option(help="Remove entries older than this (default: audit.retention_days).")
    ] = None,
) -> int:
    """Remove entries past the retention period; the chain stays verifiable from its new anchor."""
    from oots.audit.journal import load_journal
    from oots.settings import load_settings
    from oots.store import open_database

    settings = load_settings(config)
    journal = load_journal(settings)
    days = older_than_days if older_than_days is not None else settings.audit.retention_days
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    with open_database(settings).session(immediate=True) as session:
        removed = journal.purge(session, older_than=cutoff)
    typer.echo(f"removed {removed} entries recorded before {cutoff:%Y-%m-%d %H:%M} UTC")
    return 0


@app.command("export")
def export(
    config: Config,
    exchange: Annotated[str | None, typer.Option(help="Entries of this exchange id.")] = None,
    person: Annotated[str | None, typer.Option(help="Entries about this person identifier (CC/CC/...).")] = None,
    out: Annotated[Path | None, typer.Option(help="Write JSON here instead of standard output.")] = None,
) -> int:
    """Export entries (personal data decrypted) for an authority's request, as JSON."""
    if not exchange and not person:
        raise typer.BadParameter("give --exchange or --person")
    from oots.audit.journal import load_journal
    from oots.settings import load_settings
    from oots.store import open_database

    settings = load_settings(config)
    journal = load_journal(settings)
    with open_database(settings).session() as session:
        rows = journal.search(session, exchange_id=exchange, subject=person, limit=100_000)
        data = journal.export(rows)
    text = json.dumps(data, indent=2, ensure_ascii=False)
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")
        typer.echo(f"wrote {len(data)} entries to {out}")
    return 0


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="audit")
