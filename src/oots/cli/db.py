"""``oots db``: the node's database schema (migrations)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="The node's database: apply and inspect schema migrations.", no_args_is_help=True)

ConfigArg = Annotated[Path, typer.Argument(help="The node's TOML configuration file.")]


@app.command("migrate")
def migrate(config: ConfigArg) -> None:
    """Bring the database to the newest schema (every owner's migration branch to its head)."""
    from oots.settings import load_settings
    from oots.store import open_database

    with open_database(load_settings(config), migrate=False) as db:
        before = db.revisions()
        after = db.migrate()
        typer.echo(f"{db.safe_url}: at {', '.join(sorted(after))}" + (" (unchanged)" if before == after else ""))


@app.command("status")
def status(config: ConfigArg) -> int:
    """Show the schema revisions of the database and of this oots; exit 1 when migrations are pending."""
    from oots.settings import load_settings
    from oots.store import open_database
    from oots.store.database import schema_heads, sqlite_file

    heads = schema_heads()
    settings = load_settings(config)
    path = sqlite_file(settings)
    if path is not None and not path.is_file():  # nothing to read; a status creates no database
        current: set[str] = set()
        typer.echo(f"database: {path} (does not exist yet)")
    else:
        with open_database(settings, migrate=False, create=False) as db:
            current = db.revisions()
            typer.echo(f"database: {db.safe_url}")
    typer.echo(f"  applied: {', '.join(sorted(current)) or '(none: an empty database)'}")
    typer.echo(f"  newest:  {', '.join(sorted(heads))}")
    pending = heads - current
    if pending:
        typer.echo(f"  pending: {', '.join(sorted(pending))} (run: oots db migrate {config})")
        return 1
    typer.echo("  up to date")
    return 0


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="db")
