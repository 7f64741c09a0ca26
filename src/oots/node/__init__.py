"""A node: one ASGI application and one worker composed from its settings (see ``oots.node.app``)."""

from oots.node.app import NodeWorker, build_context, check_node, create_app, create_worker
from oots.node.gateway import As4Gateway
from oots.node.roles import NodeContext, Role

__all__ = [
    "As4Gateway",
    "NodeContext",
    "NodeWorker",
    "Role",
    "build_context",
    "check_node",
    "create_app",
    "create_worker",
]
