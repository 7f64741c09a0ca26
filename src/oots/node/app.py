"""The node's ASGI application.

``create_app(settings)`` builds the application from explicit settings; nothing is read from globals.
The roles (requester, provider, access point) mount their routes here as they are built.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from oots import __version__
from oots.settings import Settings

__all__ = ["create_app"]


def create_app(settings: Settings) -> Starlette:
    """Return the node's ASGI application for ``settings``."""

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "node": settings.node.name, "version": __version__})

    async def home(request: Request) -> HTMLResponse:
        name = settings.node.name
        return HTMLResponse(
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{name} — oots node</title></head><body><main>"
            f"<h1>{name}</h1><p>oots {__version__} node for country {settings.node.country}.</p>"
            "<p><a href='/health'>Health</a></p></main></body></html>"
        )

    app = Starlette(routes=[Route("/", home), Route("/health", health)])
    app.state.settings = settings
    return app
