"""``oots admin``: what an operator needs to set up the node's admin area."""

from __future__ import annotations

from typing import Annotated

import typer

from oots.node.admin import DEFAULT_ITERATIONS, hash_password

admin_app = typer.Typer(help="The node's admin area (/admin).", no_args_is_help=True)


@admin_app.command("hash-password")
def hash_password_command(
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True, help="The admin password.")
    ],
    iterations: Annotated[int, typer.Option(min=100_000, help="PBKDF2 iterations.")] = DEFAULT_ITERATIONS,
) -> int:
    """Print the hash to put in ``[admin] password_hash`` (the password itself is never stored)."""
    typer.echo(hash_password(password, iterations=iterations))
    return 0


def register(root: typer.Typer) -> None:
    root.add_typer(admin_app, name="admin")
