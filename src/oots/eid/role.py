"""eID as a role of a node: the login routes, and the login component for the other roles.

``EidRole(context)`` builds an :class:`~oots.eid.web.EidLogin` from ``context.settings.eid`` and the
node's public URL, with used SAML assertions kept in the node's database, and publishes it as
``context.services["eid"]`` so that the portal and the preview space call
``context.services["eid"].require(request, level)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx
from starlette.routing import BaseRoute

from oots.eid.web import EidLogin

if TYPE_CHECKING:
    from oots.node.roles import NodeContext

__all__ = ["EidRole"]


class EidRole:
    """The node role serving ``/eid/...`` (login, callback, SAML endpoints, logout)."""

    name = "eid"

    def __init__(
        self, context: NodeContext, *, prefix: str = "/eid", oidc_transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.login = EidLogin.for_node(context.settings, context.database, prefix=prefix, oidc_transport=oidc_transport)
        context.services["eid"] = self.login

    def routes(self) -> Sequence[BaseRoute]:
        return [self.login.mount()]

    def job_handlers(self) -> Mapping[str, Any]:
        return {}

    def as4_handlers(self) -> Mapping[str, Any]:
        return {}
