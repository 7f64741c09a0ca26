"""A node: one ASGI application and one worker composed from its settings (see ``oots.node.app``).

The names below are loaded at first use: importing a submodule alone (``oots.node.models``, which the
store imports with every table) does not load the application, the gateway or the roles.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

#: Where each public name lives.
_HOMES = {
    "As4Gateway": "oots.node.gateway",
    "NodeContext": "oots.node.roles",
    "NodeWorker": "oots.node.app",
    "Role": "oots.node.roles",
    "build_context": "oots.node.app",
    "check_node": "oots.node.app",
    "create_app": "oots.node.app",
    "create_worker": "oots.node.app",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value  # once: the next look-up finds it without this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
