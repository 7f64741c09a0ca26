"""Helpers of the eID tests: the test provider and a relying party in memory, one client between them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from oots.eid import EidLogin
from oots.eid.session import identity_to_json
from oots.eid.testidp import IdpConfig, create_idp_app
from oots.settings import EidSettings

IDP = "http://idp.test"
SP = "http://sp.test"
SECRET = "a-test-session-secret-of-32-bytes!"

T = TypeVar("T")


def run(coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await coro

    return asyncio.run(main())


class HostRouter(httpx.AsyncBaseTransport):
    """Routes each request to the in-process application of its host, as a browser on a network would."""

    def __init__(self) -> None:
        self.apps: dict[str, httpx.ASGITransport] = {}

    def add(self, base: str, app: Any) -> None:
        self.apps[httpx.URL(base).host] = httpx.ASGITransport(app=app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.apps[request.url.host].handle_async_request(request)


def protected_app(login: EidLogin) -> Starlette:
    """A small portal: ``/me`` needs a login and answers the identity as JSON."""

    async def me(request: Request) -> JSONResponse:
        identity = login.require(request)
        return JSONResponse(identity_to_json(identity))

    async def high(request: Request) -> JSONResponse:
        from oots.eid import LevelOfAssurance

        identity = login.require(request, LevelOfAssurance.HIGH)
        return JSONResponse(identity_to_json(identity))

    return Starlette(routes=[login.mount(), Route("/me", me), Route("/high", high)])


class Network:
    """The test provider at idp.test and a portal at sp.test, reached through one cookie-keeping client."""

    def __init__(self, idp_dir: Path, idp_options: dict[str, Any] | None = None, **eid: Any) -> None:
        self.router = HostRouter()
        options = {"fetch_sp_metadata": False, **(idp_options or {})}
        self.idp = create_idp_app(IdpConfig(issuer=IDP, data_dir=idp_dir, **options))
        settings = EidSettings(issuer=IDP, client_id="portal", session_secret=SECRET, **eid)
        self.login = EidLogin(settings, SP, oidc_transport=self.router)
        self.router.add(IDP, self.idp)
        self.router.add(SP, protected_app(self.login))

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.router, base_url=SP, follow_redirects=False)


Step = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


class AppClient:
    """A synchronous client for one in-process application (Starlette's TestClient wants httpx2)."""

    def __init__(self, app: Any, base_url: str) -> None:
        self.app = app
        self.base_url = base_url

    async def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url=self.base_url, follow_redirects=False) as client:
            return await client.request(method, url, **kwargs)

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return run(self._request("GET", url, **kwargs))

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return run(self._request("POST", url, **kwargs))
