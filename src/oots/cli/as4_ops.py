"""``oots as4 ping``: operate the built-in AS4 access point.

Kept apart from the message tools of :mod:`oots.cli.as4` (pack, inspect); ``oots.cli._register`` adds
these commands to the same ``as4`` group.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def ping_command(
    party: Annotated[str, typer.Argument(help="The partner's name or party id (as configured in [as4]).")],
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="The node's TOML configuration (default: OOTS_ env only).")
    ] = None,
) -> int:
    """Send the AS4 test service to PARTY and wait for its signed receipt; exit 0 when it came, 1 otherwise,
    2 when the configuration is unusable or names no such partner."""
    from oots.as4.msh import OutboundState
    from oots.as4.service import load_access_point, ping
    from oots.errors import ConfigError, NotFound
    from oots.settings import load_settings

    settings = load_settings(config)
    base = config.resolve().parent if config is not None else None
    ap = load_access_point(settings, base_dir=base)
    try:
        try:
            partner = ap.pmodes.partner(party)
        except NotFound:
            names = ", ".join(p.name for p in ap.pmodes.partners) or "none"
            raise ConfigError(
                f"no AS4 partner {party!r} is configured (partners in [as4]: {names})",
                [("as4.partners", f"no partner {party!r}")],
            ) from None
        record = ping(ap, party)
    finally:
        ap.sender.close()
    if record.state is OutboundState.RECEIPT:
        typer.echo(f"{partner.name}: receipt for test message {record.message_id} from {partner.endpoint}")
        return 0
    typer.echo(
        f"{partner.name}: no receipt for test message {record.message_id} ({record.error_code}: {record.error_detail})",
        err=True,
    )
    return 1


def register(root: typer.Typer) -> None:
    from oots.cli import as4

    as4.app.command("ping")(ping_command)
