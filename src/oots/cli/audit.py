"""``oots audit``: verify, purge and export a node's audit journal, print its head.

Every command works on the journal as it is: none creates a database, a schema or keys (a missing one
is an error saying what is missing), and only ``purge`` writes.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from oots.errors import ConfigError

if TYPE_CHECKING:
    from oots.audit.journal import Journal
    from oots.settings import Settings
    from oots.store import Database

app = typer.Typer(
    help="The audit journal: verify its seal chain, purge old entries, export for an authority.",
    no_args_is_help=True,
)

Config = Annotated[Path, typer.Argument(help="The node's TOML configuration file.")]


def _open(config: Path) -> tuple[Settings, Database, Journal]:
    """The node's settings, its existing database and its journal with its existing keys."""
    from oots.audit.journal import load_journal
    from oots.settings import load_settings
    from oots.store import open_existing_database

    settings = load_settings(config)
    db = open_existing_database(settings)
    try:
        journal = load_journal(settings, generate_keys=False)
    except BaseException:
        db.dispose()
        raise
    return settings, db, journal


def _recorded_head(value: str) -> tuple[int, str]:
    seq, _, seal = value.partition(":")
    if not seq.isdigit() or len(seal) != 64:
        raise typer.BadParameter("give the head as `oots audit head` printed it: SEQ:SEAL", param_hint="--head")
    return int(seq), seal.lower()


@app.command("verify")
def verify(
    config: Config,
    head: Annotated[
        str | None,
        typer.Option(
            "--head",
            metavar="SEQ:SEAL",
            help="A head recorded earlier with `oots audit head`: check the journal still holds it.",
        ),
    ] = None,
) -> int:
    """Check that no entry was edited, deleted or reordered; exit 0 when the chain holds, 1 otherwise."""
    recorded = _recorded_head(head) if head is not None else None
    settings, db, journal = _open(config)
    with db, db.snapshot() as session:  # one consistent view while the node appends and purges
        report = journal.verify(session)
        breaks = [f"entry {br.seq}: {br.reason}" for br in report.breaks]
        if recorded is not None:
            seq, seal = recorded
            if seq > report.head_seq:
                breaks.append(f"entry {seq}: recorded as the head, but the journal ends at entry {report.head_seq}")
            elif seq > report.anchor_seq and journal.seal_of(session, seq) != seal:
                breaks.append(f"entry {seq}: its seal is not the one recorded with the head")
            elif seq <= report.anchor_seq:
                typer.echo(f"note: entry {seq} of the recorded head was purged; it cannot be compared", err=True)
    span = f"entries {report.anchor_seq + 1}..{report.head_seq}" if report.head_seq else "no entries"
    if not report.head_keyed and not breaks:
        typer.echo(
            "note: the journal's head has no MAC yet (it was last moved by an earlier oots); "
            "the node's next append gives it one",
            err=True,
        )
    if not breaks:
        typer.echo(f"audit journal of {settings.node.name}: intact ({report.entries} entries, {span})")
        return 0
    typer.echo(f"audit journal of {settings.node.name}: {len(breaks)} problem(s) ({span})", err=True)
    for line in breaks:
        typer.echo(f"  {line}", err=True)
    return 1


@app.command("head")
def head(config: Config) -> int:
    """Print the journal's head as SEQ:SEAL, to keep elsewhere and check later with `verify --head`."""
    _, db, journal = _open(config)
    with db, db.session() as session:
        current = journal.head(session)
    typer.echo(f"{current.seq}:{current.seal}")
    return 0


@app.command("purge")
def purge(
    config: Config,
    older_than_days: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Remove entries older than this; at least audit.retention_days (its default).",
        ),
    ] = None,
) -> int:
    """Remove entries past the retention period; the chain stays verifiable from its new anchor.

    The entries to remove are verified first: a journal that does not verify is left as it is (exit 1).
    """
    from oots.settings import load_settings

    settings = load_settings(config)
    retention = settings.audit.retention_days
    days = older_than_days if older_than_days is not None else retention
    if days < retention:
        raise ConfigError(
            f"--older-than-days {days} is shorter than the retention period (audit.retention_days = {retention}): "
            "entries younger than that must be kept; if the period really is shorter, change audit.retention_days"
        )
    _, db, journal = _open(config)
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    with db, db.session(immediate=True) as session:
        removed = journal.purge(session, older_than=cutoff)
    typer.echo(f"removed {removed} entries recorded before {cutoff:%Y-%m-%d %H:%M} UTC")
    return 0


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (it holds personal data in clear)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            os.fchmod(fh.fileno(), 0o600)  # a file that existed keeps its mode otherwise
            fh.write(text)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None


@app.command("export")
def export(
    config: Config,
    exchange: Annotated[str | None, typer.Option(help="Entries of this exchange id.")] = None,
    person: Annotated[str | None, typer.Option(help="Entries about this person identifier (CC/CC/...).")] = None,
    out: Annotated[Path | None, typer.Option(help="Write JSON here (mode 0600) instead of standard output.")] = None,
) -> int:
    """Export entries (personal data decrypted) for an authority's request, as JSON.

    Exit 1 when the personal data of an entry cannot be decrypted (it is exported without it).
    """
    if not exchange and not person:
        raise typer.BadParameter("give --exchange or --person")
    if person is not None:
        from oots.eid.identity import check_eidas_identifier
        from oots.errors import ModelError

        try:
            check_eidas_identifier(person, "--person")
        except ModelError as exc:
            raise typer.BadParameter(exc.message, param_hint="--person") from None
    _, db, journal = _open(config)
    with db, db.session() as session:
        rows = journal.search(session, exchange_id=exchange, subject=person, limit=100_000)
        data = journal.export(rows)
    text = json.dumps(data, indent=2, ensure_ascii=False)
    if out is None:
        typer.echo(text)
    else:
        _write_private(out, text + "\n")
        typer.echo(f"wrote {len(data)} entries to {out}")
    if not data:
        typer.echo("no entries match", err=True)
    failed = [entry["personal_error"] for entry in data if "personal_error" in entry]
    for problem in failed:
        typer.echo(f"error: {problem}", err=True)
    return 1 if failed else 0


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="audit")
