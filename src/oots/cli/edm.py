"""``oots edm``: convert OOTS documents between XML and their JSON form, and between versions."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from oots.errors import ModelError, XmlError

app = typer.Typer(help="Convert OOTS documents: XML ⇄ JSON, v1.0 ⇄ v2.0.", no_args_is_help=True)

#: The values of ``oots.edm.Version``, spelt out so that ``oots`` loads the data model only when an
#: ``oots edm`` command runs; a test checks that the two agree.
VERSIONS = ("oots-edm:v1.0", "oots-edm:v2.0", "oots-cs:v2.0")
_VERSIONS = ", ".join(VERSIONS)


def _read(file: str) -> bytes:
    if file == "-":
        return sys.stdin.buffer.read()
    path = Path(file)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise XmlError(f"cannot read {file}: {exc.strerror or exc}") from None


def _write(data: bytes, output: Path | None) -> None:
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        output.write_bytes(data)


def _unusable(exc: ModelError, file: str) -> int:
    typer.echo(f"error: {file}: {exc.message} (error id {exc.error_id})", err=True)
    return 2


@app.command("to-json")
def to_json(
    file: Annotated[str, typer.Argument(help="An OOTS XML document, or - for standard input.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
) -> int:
    """Print the JSON form of an OOTS XML document (kind and version are detected)."""
    from oots import edm

    try:
        doc = edm.parse(_read(file))
    except ModelError as exc:
        return _unusable(exc, file)
    text = json.dumps(edm.to_json(doc), ensure_ascii=False, indent=2) + "\n"
    _write(text.encode("utf-8"), output)
    return 0


@app.command("from-json")
def from_json(
    file: Annotated[str, typer.Argument(help="A JSON document (see docs/edm.md), or - for standard input.")],
    version: Annotated[
        str | None, typer.Option("--version", help=f"Write this version instead of the document's ({_VERSIONS}).")
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
) -> int:
    """Write the conformant XML of a document given in its JSON form."""
    from oots import edm

    try:
        data = json.loads(_read(file))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        typer.echo(f"error: {file}: not JSON: {exc}", err=True)
        return 2
    try:
        _write(edm.to_xml(edm.from_json(data), version), output)
    except ModelError as exc:
        return _unusable(exc, file)
    return 0


@app.command("convert")
def convert(
    file: Annotated[str, typer.Argument(help="An OOTS XML document, or - for standard input.")],
    version: Annotated[str, typer.Option("--to", help=f"The version to write ({_VERSIONS}).")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
) -> int:
    """Rewrite an OOTS XML document in another version of the exchange data model."""
    from oots import edm

    try:
        _write(edm.to_xml(edm.parse(_read(file)), version), output)
    except ModelError as exc:
        return _unusable(exc, file)
    return 0


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="edm")
