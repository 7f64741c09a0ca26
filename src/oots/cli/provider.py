"""``oots provider``: the evidence provider's data services, registers and test people."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from oots.errors import ConfigError

if TYPE_CHECKING:
    from oots.edm import LegalPerson, Person
    from oots.provider.dataservice import DataService

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


def _subject(
    service: DataService,
    *,
    family_name: str | None,
    given_name: str | None,
    born: str | None,
    identifier: str | None,
    birth_name: str | None,
    place_of_birth: str | None,
    gender: str | None,
    post_code: str | None,
    legal_name: str | None,
    legal_identifiers: list[str],
) -> Person | LegalPerson:
    """The request's subject as the options give it, of the kind the data service is about."""
    from oots.edm import Address, Gender, Identifier, LegalPerson, LevelOfAssurance, Person
    from oots.provider.dataservice import SubjectKind

    address = Address(service.jurisdiction.admin_unit_level_1, post_code=post_code) if post_code else None
    if service.subject_kind is SubjectKind.LEGAL_PERSON:
        given = {
            "--family-name": family_name,
            "--given-name": given_name,
            "--born": born,
            "--birth-name": birth_name,
            "--place-of-birth": place_of_birth,
            "--gender": gender,
        }
        natural = [name for name, value in given.items() if value]
        if natural:
            raise ConfigError(
                f"data service {service.identifier} is about legal persons: {', '.join(natural)} do not apply "
                "(give --legal-name, and --legal-identifier SCHEME:VALUE, --identifier, --post-code)"
            )
        if not legal_name:
            raise ConfigError(f"data service {service.identifier} is about legal persons: give --legal-name")
        pairs = []
        for text in legal_identifiers:
            scheme, colon, value = text.partition(":")
            if not (colon and scheme.strip() and value.strip()):
                raise ConfigError(f"--legal-identifier: {text!r} is not SCHEME:VALUE (e.g. VAT:BE0999000001)")
            pairs.append(Identifier(value.strip(), scheme.strip()))
        return LegalPerson(
            legal_name,
            LevelOfAssurance.HIGH,
            identifiers=tuple(pairs),
            legal_person_identifier=Identifier(identifier, "eidas") if identifier else None,
            registered_address=address,
        )
    if legal_name or legal_identifiers:
        raise ConfigError(
            f"data service {service.identifier} is about natural persons: --legal-name and --legal-identifier "
            "do not apply"
        )
    missing = [
        name
        for name, value in (("--family-name", family_name), ("--given-name", given_name), ("--born", born))
        if not value
    ]
    if missing:
        raise ConfigError(f"data service {service.identifier} is about natural persons: give {', '.join(missing)}")
    assert family_name is not None
    assert given_name is not None
    assert born is not None
    try:
        day = dt.date.fromisoformat(born)
    except ValueError:
        raise ConfigError(f"--born: {born!r} is not a date (YYYY-MM-DD)") from None
    sex = None
    if gender:
        sex = next((g for g in Gender if g.value.casefold() == gender.strip().casefold()), None)
        if sex is None:
            raise ConfigError(f"--gender: {gender!r} is not one of {', '.join(g.value for g in Gender)}")
    return Person(
        family_name,
        given_name,
        day,
        LevelOfAssurance.HIGH,
        Identifier(identifier, "eidas") if identifier else None,
        birth_name=birth_name,
        place_of_birth=place_of_birth,
        current_address=address,
        gender=sex,
    )


#: ``oots provider lookup``'s exit codes (docs/cli.md).
EXIT_FOUND, EXIT_NO_MATCH, EXIT_REGISTER_FAILED = 0, 1, 3


@app.command("lookup")
def lookup(
    config: ConfigArg,
    service_id: Annotated[str, typer.Argument(help="Identifier of the data service.", show_default=False)],
    *,
    family_name: Annotated[
        str | None, typer.Option("--family-name", help="Family name as the request gives it.")
    ] = None,
    given_name: Annotated[str | None, typer.Option("--given-name", help="Given name(s).")] = None,
    born: Annotated[str | None, typer.Option("--born", help="Date of birth, YYYY-MM-DD.")] = None,
    identifier: Annotated[
        str | None, typer.Option("--identifier", help="eIDAS identifier CC/DD/value (of the person or company).")
    ] = None,
    birth_name: Annotated[str | None, typer.Option("--birth-name")] = None,
    place_of_birth: Annotated[str | None, typer.Option("--place-of-birth")] = None,
    gender: Annotated[str | None, typer.Option("--gender", help="Male, Female or Unspecified.")] = None,
    post_code: Annotated[
        str | None, typer.Option("--post-code", help="Post code of the current (or registered) address.")
    ] = None,
    legal_name: Annotated[str | None, typer.Option("--legal-name", help="A legal person's name.")] = None,
    legal_identifier: Annotated[
        list[str] | None,
        typer.Option("--legal-identifier", help="A legal person's identifier SCHEME:VALUE (VAT, LEI, EORI, ...)."),
    ] = None,
    render_as: Annotated[
        str | None, typer.Option("--render", help="Also render: application/pdf, application/xml, ...")
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Directory for rendered documents.")] = Path("."),
) -> int:
    """Match a person or a company against a data service's register; print the outcome and its reason code.

    A natural person needs --family-name, --given-name and --born; a legal person (a service about
    companies) --legal-name. Exit 0 on exactly one match, 1 on no match or several, 2 on bad input,
    3 when the register failed or is unavailable.
    """
    from oots.edm import EvidenceTypeDistribution
    from oots.errors import RegisterError
    from oots.provider.config import build_data_services
    from oots.settings import load_settings

    found = [s for s in build_data_services(load_settings(config)) if s.identifier == service_id]
    if not found:
        raise ConfigError(f"no data service {service_id} in {config}")
    service = found[0]
    subject = _subject(
        service,
        family_name=family_name,
        given_name=given_name,
        born=born,
        identifier=identifier,
        birth_name=birth_name,
        place_of_birth=place_of_birth,
        gender=gender,
        post_code=post_code,
        legal_name=legal_name,
        legal_identifiers=legal_identifier or [],
    )
    try:
        result = service.identify(subject)
        typer.echo(f"{result.outcome.value} {result.reason} (candidates: {result.candidates})")
        if result.record is None:
            return EXIT_NO_MATCH
        if render_as:
            out.mkdir(parents=True, exist_ok=True)
            for evidence in service.render(result.record, [EvidenceTypeDistribution(render_as)], subject=subject):
                path = out / evidence.document.filename
                path.write_bytes(evidence.document.content)
                typer.echo(f"wrote {path}")
    except RegisterError as exc:
        typer.echo(f"the register failed: {exc.message}", err=True)
        return EXIT_REGISTER_FAILED
    return EXIT_FOUND


@app.command("people")
def people() -> None:
    """Print the demo network's test people (JSON), as the eID test provider offers them."""
    from oots.provider.samples import load_people

    typer.echo(json.dumps([p.raw for p in load_people()], ensure_ascii=False, indent=2))


def register(root: typer.Typer) -> None:
    """Add ``oots provider`` to the root command."""
    root.add_typer(app, name="provider")
