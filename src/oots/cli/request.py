"""``oots request``: drive one evidence exchange through a node's portal API, without a browser."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from oots.errors import ConfigError


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} file {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError(f"the {what} file {path} is not JSON: {exc}") from None


def _ask(question: str, hints: list[str]) -> str:
    if hints:
        typer.echo("  " + "\n  ".join(hints))
    return str(typer.prompt(question))


def request(  # noqa: PLR0917 - one parameter per command-line option
    node: Annotated[str, typer.Option("--node", help="Base URL of the requester node (its portal API).")],
    procedure: Annotated[str, typer.Option("--procedure", help="Procedure code (R1, S1, ...).")],
    country: Annotated[str, typer.Option("--country", help="Country of the evidence provider (BE, DE, ...).")],
    person: Annotated[Path, typer.Option("--person", help='JSON file: {"natural_person": {...}} (docs/requester.md).')],
    evidence_type: Annotated[
        str | None, typer.Option("--evidence-type", help="Evidence type (list) to choose when several.")
    ] = None,
    provider: Annotated[str | None, typer.Option("--provider", help="Provider to choose when several.")] = None,
    answers: Annotated[
        Path | None, typer.Option("--answers", help="JSON file of answers to follow-up questions.")
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Directory for the evidence.")] = Path("evidence"),
    no_preview: Annotated[bool, typer.Option("--no-preview", help="Do not allow a preview.")] = False,
    api_key: Annotated[
        str | None, typer.Option("--api-key", help="Portal API key (default: $OOTS_API_KEY).", show_default=False)
    ] = None,
    client_id: Annotated[
        str | None, typer.Option("--client-id", help="OAuth2 client id (instead of an API key).", show_default=False)
    ] = None,
    client_secret: Annotated[
        str | None,
        typer.Option(
            "--client-secret", help="OAuth2 client secret (default: $OOTS_CLIENT_SECRET).", show_default=False
        ),
    ] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Give up after this many seconds.")] = 600.0,
) -> None:
    """Start an exchange, answer its choices, give the explicit request, save the evidence (exit 0 only then)."""
    import httpx

    from oots.requester.cli_driver import WAIT_SECONDS, ClientCredentials, RequestOptions, drive

    base = node.rstrip("/")
    auth: httpx.Auth | None = None
    headers: dict[str, str] = {}
    if client_id:
        secret = client_secret or os.environ.get("OOTS_CLIENT_SECRET", "")
        if not secret:
            raise ConfigError("--client-id needs a client secret: --client-secret or $OOTS_CLIENT_SECRET")
        if api_key:
            raise ConfigError("give either --api-key or --client-id, not both")
        auth = ClientCredentials(f"{base}/api/v1/oauth/token", client_id, secret)
    else:
        key = api_key or os.environ.get("OOTS_API_KEY", "")
        if not key:
            raise ConfigError("an API key is needed: --api-key or $OOTS_API_KEY (or --client-id and a client secret)")
        headers["Authorization"] = f"Bearer {key}"
    options = RequestOptions(
        procedure=procedure,
        country=country.upper(),
        person=_read_json(person, "person"),
        out=out,
        evidence_type=evidence_type,
        provider=provider,
        answers=_read_json(answers, "answers") if answers else {},
        preview=not no_preview,
        timeout=timeout,
    )
    with httpx.Client(base_url=base, headers=headers, auth=auth, timeout=30) as client:
        try:
            drive(client, options, ask=_ask if sys.stdin.isatty() else None, say=typer.echo, wait=WAIT_SECONDS)
        except httpx.HTTPError as exc:
            raise ConfigError(f"cannot reach the node at {node}: {type(exc).__name__}") from None


def register(root: typer.Typer) -> None:
    root.command("request")(request)
