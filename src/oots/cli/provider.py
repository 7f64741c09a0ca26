"""``oots provider``: the evidence provider's data services, registers and test people."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer

from oots.errors import ConfigError, NotFound

__all__ = ["app"]

app = typer.Typer(help="Evidence provider: data services, registers, identity matching.", no_args_is_help=True)

ConfigArg = Annotated[Path, typer.Argument(help="The node's configuration file.", show_default=False)]


@app.command("services")
def services(config: ConfigArg) -> None:
    """List the data services of a node: identifier, title, formats, register (and why it is unavailable)."""
    from oots.provider.config import build_data_services, unavailable_services
    from oots.settings import load_settings

    services = build_data_services(load_settings(config))
    missing = unavailable_services(services)
    for service in services:
        formats = ", ".join(service.formats)
        state = f"  UNAVAILABLE: {missing[service.identifier]}" if service.identifier in missing else ""
        typer.echo(f"{service.identifier}  {service.title()}  [{formats}]  register {service.register.name}{state}")


@app.command("build-keys")
def build_keys(config: ConfigArg) -> None:
    """(Re)build the match-key tables of the SQL registers that name one (``keys_table``)."""
    from oots.provider.config import build_register
    from oots.provider.registers import SqlRegister
    from oots.settings import load_settings

    built = 0
    for reg in load_settings(config).provider.registers:
        if reg.kind != "sql" or not reg.keys_table:
            continue
        register = build_register(reg)
        assert isinstance(register, SqlRegister)
        count = register.build_keys()
        typer.echo(f"{reg.name}: {count} keys in {reg.keys_table}")
        built += 1
    if not built:
        typer.echo("no SQL register with a keys_table is configured")


@app.command("lookup")
def lookup(
    config: ConfigArg,
    service_id: Annotated[str, typer.Argument(help="Identifier of the data service.", show_default=False)],
    *,
    family_name: Annotated[str, typer.Option("--family-name", help="Family name as the request gives it.")],
    given_name: Annotated[str, typer.Option("--given-name", help="Given name(s).")],
    born: Annotated[str, typer.Option("--born", help="Date of birth, YYYY-MM-DD.")],
    identifier: Annotated[str | None, typer.Option("--identifier", help="eIDAS identifier CC/DD/value.")] = None,
    place_of_birth: Annotated[str | None, typer.Option("--place-of-birth")] = None,
    render_as: Annotated[
        str | None, typer.Option("--render", help="Also render: application/pdf, application/xml, ...")
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Directory for rendered documents.")] = Path("."),
) -> int:
    """Match a person against a data service's register; print the outcome and its reason code.

    Exit 0 on exactly one match, 1 on no match or several.
    """
    from oots.edm import EvidenceTypeDistribution, Identifier, LevelOfAssurance, Person
    from oots.provider.config import build_data_services
    from oots.settings import load_settings

    try:
        day = dt.date.fromisoformat(born)
    except ValueError:
        raise ConfigError(f"--born: {born!r} is not a date (YYYY-MM-DD)") from None
    found = [s for s in build_data_services(load_settings(config)) if s.identifier == service_id]
    if not found:
        raise NotFound(f"no data service {service_id} in {config}")
    service = found[0]
    person = Person(
        family_name,
        given_name,
        day,
        LevelOfAssurance.HIGH,
        Identifier(identifier, "eidas") if identifier else None,
        place_of_birth=place_of_birth,
    )
    result = service.identify(person)
    typer.echo(f"{result.outcome.value} {result.reason} (candidates: {result.candidates})")
    if result.record is None:
        return 1
    if render_as:
        out.mkdir(parents=True, exist_ok=True)
        for evidence in service.render(result.record, [EvidenceTypeDistribution(render_as)], subject=person):
            path = out / evidence.document.filename
            path.write_bytes(evidence.document.content)
            typer.echo(f"wrote {path}")
    return 0


@app.command("people")
def people() -> None:
    """Print the demo network's test people (JSON), as the eID test provider offers them."""
    from oots.provider.samples import load_people

    typer.echo(json.dumps([p.raw for p in load_people()], ensure_ascii=False, indent=2))


def register(root: typer.Typer) -> None:
    """Add ``oots provider`` to the root command."""
    root.add_typer(app, name="provider")
