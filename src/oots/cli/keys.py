"""``oots keys``: keys and certificates for access points (a development PKI for local networks)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Keys and certificates for access points.", no_args_is_help=True)


@app.command("init")
def init(
    directory: Annotated[Path, typer.Argument(help="Where to write the PKI (created if missing).")],
    names: Annotated[list[str], typer.Argument(help="Access point names (one key set each).")],
    days: Annotated[int, typer.Option(help="Validity of the access point certificates.")] = 825,
) -> int:
    """Create a development PKI: a CA and, per access point, signing and encryption keys (PEM)."""
    from oots.as4 import keys

    made = keys.init_dev_pki(directory, names, now=datetime.now(UTC), days=days)
    typer.echo(f"CA: {made.ca_certificate}")
    for name, paths in made.access_points.items():
        typer.echo(f"{name}: " + ", ".join(str(p) for p in paths.values()))
    typer.echo("development keys only: never use them on a real network")
    return 0


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="keys")
