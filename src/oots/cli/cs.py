"""``oots cs``: run a local Evidence Broker + Data Service Directory, verify signed answers, query registries."""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from oots.errors import ConfigError, SecurityError

if TYPE_CHECKING:
    from oots import edm
    from oots.cs.client import CommonServicesClient, RegistryError
    from oots.cs.trust import TrustStore

app = typer.Typer(help="Common Services: Evidence Broker and Data Service Directory.", no_args_is_help=True)
keys_app = typer.Typer(help="Signing keys of a local Common Services instance.", no_args_is_help=True)
query_app = typer.Typer(help="Ask an Evidence Broker or Data Service Directory.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(query_app, name="query")


# ---- serve -------------------------------------------------------------------------------------


@app.command("serve")
def serve(  # noqa: PLR0917
    data: Annotated[Path, typer.Option("--data", help="The catalogue data file (TOML).")],
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8090,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    keys: Annotated[
        Path | None,
        typer.Option(
            "--keys", help="Directory made by `oots cs keys init` (default: the configured key, else fresh keys)."
        ),
    ] = None,
    lcm: Annotated[
        list[Path] | None, typer.Option("--lcm", help="LCM SubmitObjectsRequest documents to add (repeatable).")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", help="Node configuration (database, ...).")] = None,
    database: Annotated[
        str | None, typer.Option("--database", help="Database URL (default: the node's, a SQLite file in var/).")
    ] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="Server processes.")] = 1,
) -> int:
    """Serve the EB and the DSD at /rest/search (v1.x and signed oots-cs:v2.0 answers) and /health.

    The catalogue (data file plus LCM documents) is stored in the database, then served from there.
    """
    from oots.node.memory import limit_malloc_arenas

    arenas = limit_malloc_arenas()  # before any thread: see oots.node.memory
    if arenas is not None and workers > 1:
        # uvicorn's worker processes are new interpreters, which glibc gives the limit from the environment
        os.environ["MALLOC_ARENA_MAX"] = str(arenas)
    import uvicorn

    from oots.cs.datafile import load_catalogue
    from oots.cs.keys import CHAIN_FILE, KEY_FILE, TRUST_FILE, generate_pki, write_pki
    from oots.cs.lcm import catalogue_from_lcm
    from oots.cs.repository import save_catalogue
    from oots.settings import load_settings
    from oots.store import open_database

    catalogue = load_catalogue(data)  # fail early, with the file's problems, before starting workers
    for path in lcm or []:
        try:
            catalogue = catalogue.merged(catalogue_from_lcm(path.read_bytes()))
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    configured = load_settings(config).common_services
    if keys is None and configured.signing_key_file and configured.signing_chain_file:
        key_file, chain_file = configured.signing_key_file, configured.signing_chain_file
    else:
        if keys is None:
            keys = Path(tempfile.mkdtemp(prefix="oots-cs-keys-"))
            write_pki(generate_pki(), keys)
            typer.echo(f"fresh signing keys in {keys}; clients trust {keys / TRUST_FILE}")
        key_file, chain_file = keys / KEY_FILE, keys / CHAIN_FILE
    for path in (key_file, chain_file):
        if not path.is_file():
            raise ConfigError(f"{path} is missing (create the keys with `oots cs keys init DIR`)")
    if config is not None:
        os.environ["OOTS_CONFIG"] = str(config.resolve())
    if database is not None:
        os.environ["OOTS_DATABASE__URL"] = database
    os.environ["OOTS_COMMON_SERVICES__CATALOGUE_FILE"] = str(data.resolve())
    os.environ["OOTS_COMMON_SERVICES__SIGNING_KEY_FILE"] = str(key_file.resolve())
    os.environ["OOTS_COMMON_SERVICES__SIGNING_CHAIN_FILE"] = str(chain_file.resolve())
    settings = load_settings(config)
    db = open_database(settings)
    try:
        with db.session(immediate=True) as session:
            revision = save_catalogue(session, catalogue)
    finally:
        db.dispose()
    typer.echo(
        f"Common Services on http://{host}:{port}/rest/search ({len(catalogue.requirements)} requirements, "
        f"{len(catalogue.data_services)} data services; catalogue revision {revision} in {db.safe_url}); "
        "Ctrl-C stops"
    )
    uvicorn.run(
        "oots.cs.server:app_factory",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )
    return 0


@app.command("load")
def load(
    data: Annotated[Path | None, typer.Option("--data", help="A catalogue data file (TOML).")] = None,
    lcm: Annotated[
        list[Path] | None, typer.Option("--lcm", help="LCM SubmitObjectsRequest documents (repeatable).")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", help="Node configuration (database, ...).")] = None,
    database: Annotated[str | None, typer.Option("--database", help="Database URL (default: the node's).")] = None,
) -> int:
    """Replace the catalogue in the database; running servers pick it up within seconds."""
    from oots.cs.catalogue import Catalogue
    from oots.cs.datafile import load_catalogue
    from oots.cs.lcm import catalogue_from_lcm
    from oots.cs.repository import save_catalogue
    from oots.settings import load_settings
    from oots.store import open_database

    if data is None and not lcm:
        raise ConfigError("give a catalogue: --data FILE and/or --lcm FILE")
    catalogue = load_catalogue(data) if data is not None else Catalogue()
    for path in lcm or []:
        try:
            catalogue = catalogue.merged(catalogue_from_lcm(path.read_bytes()))
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    if database is not None:
        os.environ["OOTS_DATABASE__URL"] = database
    db = open_database(load_settings(config))
    try:
        with db.session(immediate=True) as session:
            revision = save_catalogue(session, catalogue)
    finally:
        db.dispose()
    typer.echo(
        f"catalogue revision {revision} in {db.safe_url}: {len(catalogue.procedures)} procedures, "
        f"{len(catalogue.requirements)} requirements, {len(catalogue.evidence_type_lists)} evidence type lists, "
        f"{len(catalogue.data_services)} data services"
    )
    return 0


# ---- keys --------------------------------------------------------------------------------------


@keys_app.command("init")
def keys_init(
    directory: Annotated[Path, typer.Argument(help="Where to write the key, its chain and the trust root.")],
    name: Annotated[str, typer.Option("--name", help="Common name of the signer.")] = "OOTS-CS-LOCAL",
    force: Annotated[bool, typer.Option("--force", help="Replace existing keys.")] = False,
) -> int:
    """Create a root CA, an issuing CA and an ES256 signing key for a local Common Services instance."""
    from oots.cs.keys import generate_pki, write_pki

    paths = write_pki(generate_pki(signer_name=name), directory, overwrite=force)
    typer.echo(f"signing key  {paths['key']}")
    typer.echo(f"chain        {paths['chain']}")
    typer.echo(f"trust root   {paths['trust']}   (give this to clients: common_services.trust_roots)")
    return 0


# ---- verify ------------------------------------------------------------------------------------


def _read_headers(path: Path) -> dict[str, str]:
    headers: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith(("HTTP/", "#")):
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ConfigError(f"{path}:{number}: not a 'name: value' header line")
        headers[name.strip().lower()] = value.strip()
    return headers


def _trust(trust: list[Path] | None) -> TrustStore:
    from oots.cs.trust import TrustStore, commission_roots

    if trust:
        return TrustStore.from_pem_files(trust)
    return TrustStore(commission_roots("acc").roots + commission_roots("prod").roots)


@app.command("verify")
def verify(
    body: Annotated[Path, typer.Argument(help="The answer body (XML) exactly as received.")],
    headers: Annotated[Path, typer.Argument(help="The answer's HTTP headers, one 'name: value' per line.")],
    trust: Annotated[
        list[Path] | None,
        typer.Option("--trust", help="PEM roots to trust (repeatable; default: the Commission's acc + prod roots)."),
    ] = None,
    at: Annotated[
        str | None, typer.Option("--at", help="Check at this ISO time (when the answer came) instead of now.")
    ] = None,
    max_age: Annotated[
        float, typer.Option("--max-age", min=1, help="Refuse an answer signed more than this many seconds before.")
    ] = 3600,
) -> int:
    """Check the signature, digest, certificate chain and signing time of a Common Services answer (exit 0 or 1)."""
    from oots.cs.jades import verify_answer

    try:
        data = body.read_bytes()
        found = _read_headers(headers)
    except OSError as exc:
        raise ConfigError(f"cannot read {exc.filename}: {exc.strerror}") from None
    when = None
    if at is not None:
        try:
            when = dt.datetime.fromisoformat(at)
        except ValueError:
            raise ConfigError(f"--at {at!r} is not an ISO date and time") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
    try:
        verified = verify_answer(data, found, _trust(trust), at=when, max_age=dt.timedelta(seconds=max_age))
    except SecurityError as exc:
        typer.echo(f"REFUSED ({exc.code}): {exc.message}", err=True)
        if exc.code == "signing-time":
            typer.echo("  (a saved answer: give --at the time it came, or a larger --max-age)", err=True)
        return 1
    typer.echo(f"OK: signed by {verified.signer_name}")
    typer.echo(f"  issued by {verified.signer.issuer.rfc4514_string()}")
    typer.echo(f"  signed at {verified.signed_at.isoformat()}")
    return 0


# ---- query -------------------------------------------------------------------------------------


class ApiVersion(StrEnum):
    V2 = "2"
    V1 = "1"


def _client(url: str, trust: list[Path] | None, api: ApiVersion, insecure: bool) -> CommonServicesClient:
    from oots import edm
    from oots.cs.client import CommonServicesClient

    version = edm.Version.CS_V2 if api is ApiVersion.V2 else edm.Version.EDM_V1
    return CommonServicesClient(
        eb_url=url,
        dsd_url=url,
        trust=None if insecure and api is ApiVersion.V1 else _trust(trust),
        version=version,
        require_signature=not insecure,
        cache_ttl=0,
    )


def _text(texts: tuple[edm.Text, ...]) -> str:
    for t in texts:
        if (t.lang or "").upper() == "EN":
            return t.value
    return texts[0].value if texts else ""


def _procedure(f: edm.ReferenceFramework) -> str:
    code = f.related_to[0].identifier if f.related_to else "?"
    country = f.jurisdiction.admin_unit_level_1 if f.jurisdiction else "?"
    return f"{code}/{country}"


def _emit(rows: list[dict[str, Any]], as_json: bool, columns: list[str]) -> None:
    if as_json:
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        typer.echo("(nothing)")
        return
    widths = {c: min(110, max(len(c), *(len(str(r.get(c, ""))) for r in rows))) for c in columns}
    typer.echo("  ".join(c.ljust(widths[c]) for c in columns))
    typer.echo("  ".join("-" * widths[c] for c in columns))
    for r in rows:
        typer.echo("  ".join(str(r.get(c, ""))[: widths[c]].ljust(widths[c]) for c in columns))


def _registry_error(exc: RegistryError, as_json: bool) -> int:
    from oots.cs.client import AdditionalInputRequired

    if isinstance(exc, AdditionalInputRequired):
        ask: dict[str, Any] = {"code": exc.code, "detail": exc.detail}
        jd = exc.jurisdiction_determination
        if jd is not None:
            ask["jurisdiction-context-id"] = jd.jurisdiction_context_id
            ask["jurisdiction-level"] = jd.jurisdiction_level
            ask["context"] = _text(jd.jurisdiction_contexts)
        ask["classifications"] = [
            {"id": k.identifier.value, "value-expression": k.value_expression, "description": _text(k.descriptions)}
            for k in exc.classification_concepts
        ]
        if as_json:
            typer.echo(json.dumps(ask, indent=2, ensure_ascii=False))
        else:
            typer.echo(f"{exc.code}: more input needed ({exc.detail})")
            for key, value in ask.items():
                if key not in ("code", "detail"):
                    typer.echo(f"  {key}: {value}")
        return 1
    typer.echo(f"error: {exc.message}", err=True)
    return 1


@contextmanager
def _asking(
    url: str, trust: list[Path] | None, api: ApiVersion, insecure: bool, as_json: bool
) -> Iterator[CommonServicesClient]:
    """The client for one query; what the registry answers instead (more input needed, an error) is
    printed by :func:`_registry_error` and ends the command with its exit code."""
    from oots.cs.client import RegistryError

    with _client(url, trust, api, insecure) as client:
        try:
            yield client
        except RegistryError as exc:
            raise typer.Exit(_registry_error(exc, as_json)) from None


UrlOpt = Annotated[str, typer.Option("--url", help="Base URL of the registry (before /rest/search).")]
TrustOpt = Annotated[list[Path] | None, typer.Option("--trust", help="PEM roots to trust (repeatable).")]
ApiOpt = Annotated[ApiVersion, typer.Option("--api", help="API major version: 2 (signed) or 1.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
InsecureOpt = Annotated[bool, typer.Option("--no-verify", help="1.x API only: accept unsigned answers.")]


@query_app.command("requirements")
def query_requirements(  # noqa: PLR0917
    url: UrlOpt,
    procedure: Annotated[str | None, typer.Option("--procedure", help="Procedure code (R1, S1, T2 ...).")] = None,
    country: Annotated[str | None, typer.Option("--country", help="Country code.")] = None,
    trust: TrustOpt = None,
    api: ApiOpt = ApiVersion.V2,
    as_json: JsonOpt = False,
    insecure: InsecureOpt = False,
) -> int:
    """EB query 1: the requirements of a procedure in a country."""
    with _asking(url, trust, api, insecure, as_json) as client:
        found = client.requirements(procedure_id=procedure, country_code=country)
    rows = [
        {
            "requirement": r.identifier,
            "name": _text(r.names),
            "procedures": " ".join(_procedure(f) for f in r.reference_frameworks),
        }
        for r in found
    ]
    _emit(rows, as_json, ["requirement", "name", "procedures"])
    return 0


@query_app.command("evidence-types")
def query_evidence_types(  # noqa: PLR0917
    url: UrlOpt,
    requirement: Annotated[str, typer.Option("--requirement", help="The requirement's identifier (URL).")],
    country: Annotated[str | None, typer.Option("--country", help="Country code.")] = None,
    trust: TrustOpt = None,
    api: ApiOpt = ApiVersion.V2,
    as_json: JsonOpt = False,
    insecure: InsecureOpt = False,
) -> int:
    """EB query 2: the evidence type lists (alternatives) that prove a requirement in a country."""
    with _asking(url, trust, api, insecure, as_json) as client:
        req = client.evidence_types(requirement, country_code=country)
    rows = [
        {
            "list": etl.identifier,
            "evidence type": _text(et.titles),
            "classification": et.evidence_type_classification,
        }
        for etl in req.evidence_type_lists
        for et in etl.evidence_types
    ]
    _emit(rows, as_json, ["list", "evidence type", "classification"])
    return 0


@query_app.command("data-services")
def query_data_services(  # noqa: PLR0917
    url: UrlOpt,
    classification: Annotated[str, typer.Option("--classification", help="Evidence type classification URL.")],
    country: Annotated[str, typer.Option("--country", help="Country code.")],
    nuts: Annotated[str | None, typer.Option("--nuts", help="jurisdiction-admin-l2 (NUTS code).")] = None,
    lau: Annotated[str | None, typer.Option("--lau", help="jurisdiction-admin-l3 (LAU code).")] = None,
    context: Annotated[str | None, typer.Option("--context", help="jurisdiction-context-id.")] = None,
    value: Annotated[
        list[str] | None, typer.Option("--value", help="A classification answer: CONCEPT-ID=VALUE (repeatable).")
    ] = None,
    trust: TrustOpt = None,
    api: ApiOpt = ApiVersion.V2,
    as_json: JsonOpt = False,
    insecure: InsecureOpt = False,
) -> int:
    """DSD query: the data services (access points, providers) of an evidence type in a country."""
    values = {}
    for item in value or []:
        key, sep, val = item.partition("=")
        if not sep:
            raise ConfigError(f"--value {item!r} is not CONCEPT-ID=VALUE")
        values[key] = val
    with _asking(url, trust, api, insecure, as_json) as client:
        found = client.data_services(
            classification,
            country,
            jurisdiction_admin_l2=nuts,
            jurisdiction_admin_l3=lau,
            jurisdiction_context_id=context,
            classification_values=values,
        )
    rows = [
        {
            "evidence type": _text(ds.titles),
            "access point": a.identifier.value,
            "conforms to": a.conforms_to,
            "provider": _text(a.publisher.names),
            "provider id": a.publisher.identifier.value,
        }
        for ds in found
        for a in ds.access_services
    ]
    _emit(rows, as_json, ["evidence type", "access point", "conforms to", "provider", "provider id"])
    return 0


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="cs")
