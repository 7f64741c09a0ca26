"""``oots admin``: what an operator needs to set up the node's admin area."""

from __future__ import annotations

from typing import Annotated

import typer

#: ``oots.node.admin.DEFAULT_ITERATIONS``, spelt out so that ``oots`` loads the node only when a command
#: needs it (a test checks the two agree).
DEFAULT_ITERATIONS = 600_000

admin_app = typer.Typer(help="The node's admin area (/admin).", no_args_is_help=True)


@admin_app.command("hash-password")
def hash_password_command(
    ctx: typer.Context,
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True, help="The admin password.")
    ],
    iterations: Annotated[int, typer.Option(min=100_000, help="PBKDF2 iterations.")] = DEFAULT_ITERATIONS,
) -> int:
    """Print the hash to put in ``[admin] password_hash`` (the password itself is never stored)."""
    from oots.node.admin import hash_password

    source = ctx.get_parameter_source("password")  # typer's own click: compared by name
    if getattr(source, "name", None) != "PROMPT":
        typer.echo(
            "warning: a password given with --password lands in the shell's history and in the process list;"
            " leave the option out to be asked for it (it is not echoed)",
            err=True,
        )
    typer.echo(hash_password(password, iterations=iterations))
    return 0


def register(root: typer.Typer) -> None:
    root.add_typer(admin_app, name="admin")
