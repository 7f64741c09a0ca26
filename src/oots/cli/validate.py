"""``oots validate``: check OOTS documents against the XML Schemas, the official Schematron rules and code lists."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from oots.errors import XmlError

__all__ = ["validate"]


#: Exit codes, the worst file decides (in this order of precedence: 2, 1, 3, 0).
EXIT_VALID = 0
EXIT_INVALID = 1
EXIT_UNUSABLE = 2
EXIT_UNCONFIRMED = 3
_PRECEDENCE = (EXIT_VALID, EXIT_UNCONFIRMED, EXIT_INVALID, EXIT_UNUSABLE)


def _worse(a: int, b: int) -> int:
    return max(a, b, key=_PRECEDENCE.index)


def validate(
    files: Annotated[list[Path], typer.Argument(help="XML documents to validate.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list, one object per file.")] = False,
    rules: Annotated[
        Path | None,
        typer.Option("--rules", help="A rule set directory (xsd/, sch/, ...), e.g. the official 2.0.1 files."),
    ] = None,
) -> int:
    """Validate each FILE; exit 0 when all are valid, 1 when one is invalid, 2 when one cannot be read as
    XML, 3 when one failed only provisional (not official) checks."""
    from oots.validation import Validator, Verdict

    validator = Validator(rules)
    results: list[dict[str, Any]] = []
    worst = EXIT_VALID
    for file in files:
        entry: dict[str, Any] = {"file": str(file)}
        try:
            data = file.read_bytes()
        except OSError as exc:
            entry.update(_unusable(f"cannot read: {exc.strerror}"))
            worst = EXIT_UNUSABLE
        else:
            try:
                report = validator.validate(data)
            except XmlError as exc:
                entry.update(_unusable(exc.message))
                worst = EXIT_UNUSABLE
            else:
                entry.update(report.as_dict())
                if report.verdict is Verdict.INVALID:
                    worst = _worse(worst, EXIT_INVALID)
                elif report.verdict is Verdict.UNCONFIRMED:
                    worst = _worse(worst, EXIT_UNCONFIRMED)
        results.append(entry)
        if not as_json:
            _print_text(entry)
    if as_json:
        typer.echo(json.dumps(results, indent=2, ensure_ascii=False))
    unused = validator.unused_schematron()
    if unused:
        typer.echo(f"not used (no document kind runs them): {', '.join(unused)}", err=True)
    return worst


def _unusable(error: str) -> dict[str, Any]:
    return {
        "valid": False,
        "invalid": None,
        "verdict": "UNUSABLE",
        "kind": None,
        "version": None,
        "rule_set": None,
        "checks": 0,
        "checks_by_layer": {},
        "provisional": False,
        "findings": [],
        "error": error,
    }


def _print_text(entry: dict[str, Any]) -> None:
    if "error" in entry:
        typer.echo(f"{entry['file']}: UNUSABLE — {entry['error']}")
        return
    typer.echo(f"{entry['file']}: {_summary(entry)}")
    _print_details(entry, "  ")


def _summary(report: dict[str, Any]) -> str:
    """``valid (edm-request, v1.0; oots-edm-v1.0, 312 checks: xsd 1, schematron 300, codelist 11), 0 finding(s)``."""
    verdict = "valid" if report["valid"] else report["verdict"]
    version = f"v{report['version']}" if report["version"] else "version unknown"
    rules = report["rule_set"] or "no rules"
    provisional = ", provisional" if report["provisional"] else ""
    layers = ", ".join(f"{layer} {n}" for layer, n in report["checks_by_layer"].items())
    scope = " (payloads included)" if report.get("parts") else ""
    checks = f"{report['checks']} checks{scope}" + (f": {layers}" if layers else "")
    return (
        f"{verdict} ({report['kind']}, {version}; {rules}{provisional}, {checks}), {len(report['findings'])} finding(s)"
    )


def _print_details(report: dict[str, Any], indent: str) -> None:
    if "found_at" in report:
        typer.echo(f"{indent}found at {report['found_at']}")
    for f in report["findings"]:
        typer.echo(f"{indent}{f['severity']:<7} {f['rule']} [{f['layer']}] {f['location']}: {f['message']}")
    for part in report.get("parts", ()):
        head = f"{indent}part {part['where']} ({part['content_type'] or 'no content type'})"
        if part["checked"]:
            typer.echo(f"{head}: {_summary(part['report'])}")
            _print_details(part["report"], indent + "  ")
        else:
            typer.echo(f"{head}: not checked — {part['note']}")


def register(root: typer.Typer) -> None:
    root.command("validate")(validate)
