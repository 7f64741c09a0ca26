"""A login asked for again (``again=1``): the identity provider must ask even when it has a session.

The test provider keeps a session here (``single_sign_on``), as real ones do: without ``again`` a browser
that logged in is logged straight back in; with it, the authorization request carries ``prompt=login``
(OIDC) or ``ForceAuthn="true"`` (SAML) and the provider shows its login page again.
"""

from __future__ import annotations

import base64
import re
import zlib
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
from eid_helpers import IDP, SP, AppClient, HostRouter, Network, run

from oots.eid.testidp import IdpConfig, create_idp_app
from oots.eid.testidp.keys import SigningKey


async def follow(client: httpx.AsyncClient, resp: httpx.Response) -> httpx.Response:
    assert resp.status_code in (302, 303), resp.text
    return await client.get(resp.headers["location"])


async def first_login(client: httpx.AsyncClient, key: str) -> None:
    """Log in as ``key`` through the provider's page (the provider then keeps its session)."""
    resp = await follow(client, await client.get("/eid/login?next=/me"))  # /authorize: to the provider's page
    assert resp.headers["location"].startswith("/login/")
    resp = await client.post(IDP + resp.headers["location"], data={"subject": key, "level": "high"})
    assert resp.headers["location"].startswith(SP + "/eid/callback?")
    resp = await follow(client, resp)
    assert resp.status_code == 303, resp.text


async def who(client: httpx.AsyncClient) -> str:
    me = await client.get("/me")
    assert me.status_code == 200, me.text
    return str(me.json()["subject"]["family_name"])


def sso_network(idp_dir: Path) -> Network:
    return Network(idp_dir, {"single_sign_on": True})


def test_without_again_the_provider_logs_the_browser_straight_back_in(idp_dir: Path, idp_key: SigningKey) -> None:
    network = sso_network(idp_dir)

    async def scenario() -> str:
        async with network.client() as client:
            await first_login(client, "de-2")
            client.cookies.delete("oots_eid_session", domain="sp.test")  # out of the application only
            resp = await follow(client, await client.get("/eid/login?next=/me"))
            assert "prompt" not in parse_qs(urlsplit(str(resp.url)).query)
            assert resp.headers["location"].startswith(SP + "/eid/callback?")  # no page: the same person
            await follow(client, resp)
            return await who(client)

    assert run(scenario()) == "Schmidt"


def test_again_sends_prompt_login_and_the_provider_asks_again(idp_dir: Path, idp_key: SigningKey) -> None:
    network = sso_network(idp_dir)

    async def scenario() -> str:
        async with network.client() as client:
            await first_login(client, "de-2")
            resp = await client.get("/eid/login?next=/me&again=1")
            authorize = resp.headers["location"]
            assert authorize.startswith(IDP + "/authorize?")
            assert parse_qs(urlsplit(authorize).query)["prompt"] == ["login"]
            resp = await follow(client, resp)
            assert "/login/" in resp.headers["location"]  # the provider's page, despite its session
            page = IDP + resp.headers["location"]
            resp = await client.post(page, data={"subject": "fr-1", "level": "high"})
            await follow(client, resp)
            return await who(client)

    assert run(scenario()) != "Schmidt"  # someone else could log in


def test_prompt_none_without_a_session_goes_back_with_login_required(idp_dir: Path, idp_key: SigningKey) -> None:
    app = create_idp_app(IdpConfig(issuer=IDP, data_dir=idp_dir, fetch_sp_metadata=False, single_sign_on=True))
    query = "client_id=c&redirect_uri=https://rp.example/cb&response_type=code&scope=openid&state=s&nonce=n"
    resp = AppClient(app, IDP).get(f"/authorize?{query}&code_challenge=x&code_challenge_method=S256&prompt=none")
    assert resp.status_code == 303
    assert parse_qs(urlsplit(resp.headers["location"]).query)["error"] == ["login_required"]


class IgnoresPrompt(HostRouter):
    """A provider that ignores ``prompt=login``: the parameter never reaches it."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == httpx.URL(IDP).host and request.url.path == "/authorize":
            request.url = request.url.copy_remove_param("prompt")
        return await super().handle_async_request(request)


def test_an_earlier_login_sent_back_instead_of_a_new_one_is_refused(idp_dir: Path, idp_key: SigningKey) -> None:
    network = sso_network(idp_dir)
    router = IgnoresPrompt()
    router.apps = network.router.apps

    async def scenario() -> httpx.Response:
        async with network.client() as client:
            await first_login(client, "de-2")
        clock = network.login._clock
        network.login._clock = lambda: clock() + 600  # the login is asked for again ten minutes later
        async with httpx.AsyncClient(transport=router, base_url=SP, cookies=client.cookies) as later:
            resp = await follow(later, await later.get("/eid/login?next=/me&again=1"))
            assert resp.headers["location"].startswith(SP + "/eid/callback?")  # its session, not its page
            return await later.get(resp.headers["location"])

    resp = run(scenario())
    assert resp.status_code == 400
    assert "sent back an earlier login instead of asking you to log in again" in resp.text


# ---- SAML ---------------------------------------------------------------------------------------------


def saml_network(idp_dir: Path) -> Network:
    idp_app = create_idp_app(IdpConfig(issuer=IDP, data_dir=idp_dir, fetch_sp_metadata=False, single_sign_on=True))
    idp_metadata = AppClient(idp_app, IDP).get("/saml/metadata").text
    network = Network(idp_dir, saml_idp_metadata=idp_metadata)
    network.router.add(IDP, idp_app)

    async def sp_metadata() -> str:
        async with network.client() as client:
            return (await client.get("/eid/saml/metadata")).text

    idp_app.state.saml_idp.add_service_provider(run(sp_metadata()))
    return network


def authn_request(location: str) -> str:
    raw = parse_qs(urlsplit(location).query)["SAMLRequest"][0]
    return zlib.decompress(base64.b64decode(raw), -15).decode("utf-8")


async def saml_answer(client: httpx.AsyncClient, page: httpx.Response) -> None:
    fields = dict(re.findall(r'name="(SAMLResponse|RelayState)" value="([^"]*)"', page.text))
    resp = await client.post("/eid/saml/acs", data=fields)
    assert resp.status_code == 303, resp.text


def test_saml_again_sends_force_authn_and_the_provider_asks_again(idp_dir: Path, idp_key: SigningKey) -> None:
    network = saml_network(idp_dir)

    async def scenario() -> tuple[str, str]:
        async with network.client() as client:
            resp = await client.get("/eid/login?next=/me&method=saml")
            assert "ForceAuthn" not in authn_request(resp.headers["location"])
            resp = await follow(client, resp)
            page = await client.post(IDP + resp.headers["location"], data={"subject": "it-1", "level": "high"})
            await saml_answer(client, page)
            # without again: the provider's session answers at once (the form posting back, no login page)
            resp = await follow(client, await client.get("/eid/login?next=/me&method=saml"))
            assert resp.status_code == 200
            assert 'action="http://sp.test/eid/saml/acs"' in resp.text
            await saml_answer(client, resp)
            first = await who(client)
            # again: ForceAuthn="true", and the provider shows its page
            resp = await client.get("/eid/login?next=/me&method=saml&again=1")
            assert 'ForceAuthn="true"' in authn_request(resp.headers["location"])
            resp = await follow(client, resp)
            assert resp.status_code == 303
            assert "/login/" in resp.headers["location"]
            page = await client.post(IDP + resp.headers["location"], data={"subject": "fr-1", "level": "high"})
            await saml_answer(client, page)
            return first, await who(client)

    first, second = run(scenario())
    assert first != second
