"""``oots eid``: the test identity provider."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from oots.errors import ConfigError

app = typer.Typer(help="eID: the test identity provider (OpenID Connect and SAML/eIDAS).", no_args_is_help=True)


@app.command("serve")
def serve(  # noqa: PLR0917 - typer maps parameters to options
    port: Annotated[int, typer.Option("--port", help="TCP port to listen on.")] = 9000,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    data: Annotated[
        Path | None, typer.Option("--data", help="JSON file of test identities (default: the shipped one).")
    ] = None,
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Where the signing key is kept (generated on first start).")
    ] = Path("var/eid-testidp"),
    issuer: Annotated[str | None, typer.Option("--issuer", help="Public base URL (default http://HOST:PORT).")] = None,
    client: Annotated[
        list[str] | None,
        typer.Option("--client", help="Allowed client as ID=SECRET (repeatable); none given: any client id."),
    ] = None,
    sp_metadata: Annotated[
        list[Path] | None, typer.Option("--sp-metadata", help="SAML service provider metadata file (repeatable).")
    ] = None,
    key_file: Annotated[
        Path | None, typer.Option("--key-file", help="RSA signing key (PEM) instead of the generated one.")
    ] = None,
    cert_file: Annotated[Path | None, typer.Option("--cert-file", help="Certificate (PEM) of --key-file.")] = None,
    single_sign_on: Annotated[
        bool,
        typer.Option(
            "--single-sign-on",
            help="Keep a session and log a browser straight back in, unless the application asks for a new login.",
        ),
    ] = False,
) -> int:
    """Run the test identity provider (OpenID Provider + SAML IdP) until Ctrl-C."""
    from oots.node.memory import limit_malloc_arenas

    limit_malloc_arenas()  # before any thread: see oots.node.memory
    import uvicorn

    from oots.eid.testidp import IdpConfig, create_idp_app

    clients: dict[str, str] = {}
    for item in client or []:
        cid, sep, secret = item.partition("=")
        if not sep or not cid or not secret:
            raise ConfigError(f"--client must be ID=SECRET, got {item!r}")
        clients[cid] = secret
    url = (issuer or f"http://{host}:{port}").rstrip("/")
    config = IdpConfig(
        issuer=url,
        data_dir=data_dir,
        people_file=data,
        clients=clients,
        sp_metadata_files=tuple(sp_metadata or ()),
        key_file=key_file,
        cert_file=cert_file,
        single_sign_on=single_sign_on,
    )
    application = create_idp_app(config)
    typer.echo(f"oots test identity provider at {url}/  (discovery: {url}/.well-known/openid-configuration)")
    uvicorn.Server(uvicorn.Config(application, host=host, port=port, log_level="warning")).run()
    return 0


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="eid")
