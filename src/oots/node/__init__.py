"""A node: one ASGI application composed from its settings, plus workers (see ``create_app``)."""

from oots.node.app import create_app

__all__ = ["create_app"]
