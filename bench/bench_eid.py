"""eID figures: ID token verification, sealed cookies, SAML response checking, a whole OIDC login."""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import jwt

from oots.eid import Identity, LevelOfAssurance, NaturalPerson
from oots.eid.attributes import identity_to_claims
from oots.eid.oidc import verify_id_token
from oots.eid.saml import SamlServiceProvider, redirect_query
from oots.eid.session import Sealer, identity_from_json, identity_to_json
from oots.eid.testidp import load_people
from oots.eid.testidp.keys import load_or_create
from oots.eid.testidp.saml_idp import SamlIdentityProvider


def rate(label: str, fn: Callable[[], object], seconds: float = 1.0) -> None:
    fn()
    n, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        fn()
        n += 1
    elapsed = time.perf_counter() - started
    print(f"   {label:<44} {n / elapsed:10.0f} /s  ({elapsed / n * 1000:.2f} ms each)")


def run() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-eid-") as name:
        _run(Path(name))


def _run(tmp: Path) -> None:
    key = load_or_create(tmp)
    person = load_people().find("be-1")
    assert person is not None
    assert isinstance(person.subject, NaturalPerson)
    now = time.time()
    identity = Identity(person.subject, LevelOfAssurance.HIGH, "http://idp", "oidc", dt.datetime.now(dt.UTC))
    claims = {**identity_to_claims(identity), "iss": "http://idp", "aud": "c", "exp": now + 300, "nonce": "n"}
    token = jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid})
    keys = jwt.PyJWKSet.from_dict({"keys": [key.jwk()]})
    rate(
        "ID token verify (RS256, claims checks)",
        lambda: verify_id_token(token, keys, issuer="http://idp", client_id="c", nonce="n", now=now),
    )

    sealer = Sealer(b"0123456789abcdef0123", "session")
    sealed = sealer.seal(identity_to_json(identity))
    print(f"   session cookie size: {len(sealed)} bytes")
    rate("session cookie open + identity", lambda: identity_from_json(sealer.open(sealed, 600)))

    idp = SamlIdentityProvider("http://idp/saml/metadata", "http://idp/saml/sso", key)
    sp = SamlServiceProvider("http://sp/md", "http://sp/acs", idp.metadata_xml())
    idp.add_service_provider(sp.metadata_xml())

    def saml_round() -> None:
        login = sp.start(LevelOfAssurance.SUBSTANTIAL, "r")
        q = redirect_query(login.redirect_url)
        pending = idp.parse_request(q["SAMLRequest"], None)
        response = idp.respond(pending, person.subject, None, LevelOfAssurance.HIGH)
        sp.consume(response, login.request_id, LevelOfAssurance.SUBSTANTIAL)

    rate("SAML request + signed response + check", saml_round, 3.0)

    network = _network(tmp)

    async def oidc_login() -> None:
        async with httpx.AsyncClient(transport=network, base_url="http://sp.test") as client:
            resp = await client.get("/eid/login?next=/me")
            resp = await client.get(resp.headers["location"])
            picker = "http://idp.test" + resp.headers["location"]
            resp = await client.post(picker, data={"subject": "be-1", "level": "high"})
            resp = await client.get(resp.headers["location"])
            assert resp.status_code == 303
            assert (await client.get("/me")).status_code == 200

    rate("whole OIDC login in memory (7 HTTP steps)", lambda: asyncio.run(oidc_login()), 3.0)


class _Hosts(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.apps: dict[str, httpx.ASGITransport] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.apps[request.url.host].handle_async_request(request)


def _network(tmp: Path) -> _Hosts:
    """The test provider at idp.test and a one-page portal at sp.test, in this process."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from oots.eid import EidLogin
    from oots.eid.testidp import IdpConfig, create_idp_app
    from oots.settings import EidSettings

    hosts = _Hosts()
    settings = EidSettings(issuer="http://idp.test", client_id="portal", session_secret="bench-secret-0123456789")
    login = EidLogin(settings, "http://sp.test", oidc_transport=hosts)

    async def me(request: Request) -> PlainTextResponse:
        return PlainTextResponse(login.require(request).level.value)

    idp = create_idp_app(IdpConfig(issuer="http://idp.test", data_dir=tmp, fetch_sp_metadata=False))
    hosts.apps["idp.test"] = httpx.ASGITransport(app=idp)
    hosts.apps["sp.test"] = httpx.ASGITransport(app=Starlette(routes=[login.mount(), Route("/me", me)]))
    return hosts
