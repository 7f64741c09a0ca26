"""The Common Services as a role of a node (``[node] roles = ["common_services"]``).

The role serves the EB and DSD of :mod:`oots.cs.server` under ``/cs`` on the node's web endpoint
(``/cs/rest/search``, ``/cs/eb/rest/search``, ``/cs/dsd/rest/search``, ``/cs/health``), from the
catalogue in the node's database (filled from ``common_services.catalogue_file`` when empty), signing
2.0 answers with ``common_services.signing_key_file`` / ``signing_chain_file``. It runs no jobs and
consumes no AS4 messages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from starlette.routing import BaseRoute, Mount

from oots.cs import repository
from oots.cs.datafile import load_catalogue
from oots.cs.keys import load_signer
from oots.cs.server import StoredCatalogue, create_app
from oots.errors import ConfigError

__all__ = ["PREFIX", "CommonServicesRole", "create_role"]

PREFIX = "/cs"


class CommonServicesRole:
    """Evidence Broker + Data Service Directory on a node."""

    name = "common_services"

    def __init__(self, ctx: Any) -> None:
        cs = ctx.settings.common_services
        if cs.signing_key_file is None or cs.signing_chain_file is None:
            raise ConfigError(
                "common_services: the common_services role signs its answers; set signing_key_file and "
                "signing_chain_file (made by `oots cs keys init DIR`)",
                [("common_services.signing_key_file", "missing")],
            )
        self.signer = load_signer(cs.signing_key_file, cs.signing_chain_file)
        database = ctx.database
        with database.session(immediate=True) as session:
            if repository.revision(session) == 0:
                if cs.catalogue_file is None:
                    raise ConfigError(
                        "common_services.catalogue_file: the database holds no catalogue yet",
                        [("common_services.catalogue_file", "missing")],
                    )
                repository.save_catalogue(session, load_catalogue(cs.catalogue_file))
        self.catalogue = StoredCatalogue(database)
        self.app = create_app(self.catalogue, self.signer)

    def routes(self) -> Sequence[BaseRoute]:
        return [Mount(PREFIX, app=self.app)]

    def job_handlers(self) -> Mapping[str, Any]:
        return {}

    def as4_handlers(self) -> Mapping[str, Any]:
        return {}


def create_role(ctx: Any) -> CommonServicesRole:
    """The role factory named in the node's role table."""
    return CommonServicesRole(ctx)
