"""``oots config``: check a node's configuration file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from oots.errors import ConfigError
from oots.settings import Settings, load_settings

app = typer.Typer(help="Inspect and check configuration files.", no_args_is_help=True)


@app.command("check")
def check(
    file: Annotated[Path, typer.Argument(help="The node's TOML configuration file.")],
) -> int:
    """Explain every problem in a configuration file; exit 0 when there is none, 2 otherwise."""
    try:
        settings = load_settings(file)
        _check_register_factories(settings)
    except ConfigError as exc:
        if not exc.problems:
            typer.echo(f"{file}: {exc.message}", err=True)
            return 2
        typer.echo(f"{file}: {len(exc.problems)} problem(s)", err=True)
        for path, reason in exc.problems:
            typer.echo(f"  {path}: {reason}", err=True)
        return 2
    typer.echo(f"{file}: OK (node {settings.node.name}, country {settings.node.country})")
    typer.echo(f"  database: {settings.database_url}")
    return 0


def _check_register_factories(settings: Settings) -> None:
    """The factories of ``kind = "python"`` registers can be imported (they are not called here)."""
    from oots.provider.adapters import factory_problems

    problems = [p for reg in settings.provider.registers if reg.kind == "python" for p in factory_problems(reg)]
    if problems:
        raise ConfigError(f"{len(problems)} problem(s) with register factories", problems)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="config")
