"""``oots config check``: check a node's configuration file as ``oots serve`` does at start."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from oots.errors import ConfigError

if TYPE_CHECKING:
    from oots.settings import Settings

app = typer.Typer(help="Inspect and check configuration files.", no_args_is_help=True)


def _report(file: Path, problems: list[tuple[str, str]]) -> int:
    typer.echo(f"{file}: {len(problems)} problem(s)", err=True)
    for path, reason in problems:
        typer.echo(f"  {path}: {reason}", err=True)
    return 2


@app.command("check")
def check(
    file: Annotated[Path, typer.Argument(help="The node's TOML configuration file.")],
) -> int:
    """Explain every problem `oots serve` would refuse to start with; exit 0 when there is none, 2 otherwise.

    What `oots serve` warns about at start (a partner's certificate expired, one of the node's own
    certificates ending within 30 days, its TLS client certificate expired) is printed as `warning:` lines;
    warnings alone still exit 0.

    The file and the OOTS_ environment are read as `oots serve` reads them, and the keys, certificates,
    PModes, database URL, audit keys and admin password hash are checked as it checks them, without
    connecting to the database or writing anything. The CSV and SQL registers are read: one that
    cannot be loaded is a problem here, though the node would start and serve without it.
    """
    from oots.node import check_node
    from oots.settings import load_settings
    from oots.store.database import normalise_url

    try:
        settings = load_settings(file)
        _check_register_factories(settings)
    except ConfigError as exc:
        if not exc.problems:
            typer.echo(f"{file}: {exc.message}", err=True)
            return 2
        return _report(file, exc.problems)
    warnings: list[str] = []
    problems = check_node(settings, config_dir=file.resolve().parent, warnings=warnings) + _register_problems(settings)
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)
    if problems:
        return _report(file, problems)
    typer.echo(f"{file}: OK (node {settings.node.name}, country {settings.node.country})")
    typer.echo(f"  database: {normalise_url(settings.database_url).render_as_string(hide_password=True)}")
    return 0


def _check_register_factories(settings: Settings) -> None:
    """The factories of ``kind = "python"`` registers can be imported (they are not called here)."""
    from oots.provider.adapters import factory_problems

    problems = [p for reg in settings.provider.registers if reg.kind == "python" for p in factory_problems(reg)]
    if problems:
        raise ConfigError(f"{len(problems)} problem(s) with register factories", problems)


def _register_problems(settings: Settings) -> list[tuple[str, str]]:
    """The CSV and SQL registers load (a running node serves without one that does not, answering its
    data services EDM:ERR:0008: here it is an error)."""
    from oots.provider.config import register_problems

    return register_problems(settings)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="config")
