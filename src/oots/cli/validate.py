"""``oots validate``: check OOTS documents against the XML Schemas, the official Schematron rules and code lists."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from oots.errors import XmlError

__all__ = ["validate"]


def validate(
    files: Annotated[list[Path], typer.Argument(help="XML documents to validate.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list, one object per file.")] = False,
    rules: Annotated[
        Path | None,
        typer.Option("--rules", help="A rule set directory (xsd/, sch/, ...), e.g. the official 2.0.1 files."),
    ] = None,
) -> int:
    """Validate each FILE; exit 0 when all are valid, 1 when one is not, 2 when one cannot be read as XML."""
    from oots.validation import Validator

    validator = Validator(rules)
    results: list[dict[str, Any]] = []
    worst = 0
    for file in files:
        entry: dict[str, Any] = {"file": str(file)}
        try:
            data = file.read_bytes()
        except OSError as exc:
            entry.update(valid=False, kind=None, version=None, findings=[], error=f"cannot read: {exc.strerror}")
            worst = 2
        else:
            try:
                report = validator.validate(data)
            except XmlError as exc:
                entry.update(valid=False, kind=None, version=None, findings=[], error=exc.message)
                worst = 2
            else:
                entry.update(report.as_dict())
                if not report.valid:
                    worst = max(worst, 1)
        results.append(entry)
        if not as_json:
            _print_text(entry)
    if as_json:
        typer.echo(json.dumps(results, indent=2, ensure_ascii=False))
    return worst


def _print_text(entry: dict[str, Any]) -> None:
    if "error" in entry:
        typer.echo(f"{entry['file']}: UNUSABLE — {entry['error']}")
        return
    verdict = "valid" if entry["valid"] else "INVALID"
    findings = entry["findings"]
    typer.echo(f"{entry['file']}: {verdict} ({entry['kind']}, v{entry['version']}), {len(findings)} finding(s)")
    for f in findings:
        typer.echo(f"  {f['severity']:<7} {f['rule']} [{f['layer']}] {f['location']}: {f['message']}")


def register(root: typer.Typer) -> None:
    root.command("validate")(validate)
