"""Admin login with eID: a node's /admin area against the test identity provider, all in memory (OIDC).

The node's own eID relying party logs the person in; only the identifiers in ``[admin] eid_admins``
at ``[admin] eid_level`` get an admin session. Logout needs the form token and ends the eID login too.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from eid_helpers import IDP, SECRET, SP, HostRouter, run
from itsdangerous import TimestampSigner

from oots.audit.journal import load_journal
from oots.eid.testidp import IdpConfig, create_idp_app, load_people
from oots.eid.testidp.keys import SigningKey
from oots.eid.web import EidLogin
from oots.errors import ConfigError
from oots.node import build_context, create_app
from oots.node.admin import COOKIE, _session_secret, hash_password
from oots.settings import Settings, load_settings

PEOPLE = load_people()


def _identifier(key: str) -> str:
    person = PEOPLE.find(key)
    assert person is not None
    return person.subject.identifier


ADMIN = _identifier("de-2")


def node_settings(tmp_path: Path, admin: str) -> Settings:
    config = tmp_path / "node.toml"
    config.write_text(
        f"""
[node]
name = "de-node"
country = "DE"
data_dir = "{tmp_path.as_posix()}"
base_url = "{SP}"

[eid]
issuer = "{IDP}"
client_id = "de-node"
session_secret = "{SECRET}"
required_level = "low"

[admin]
{admin}
""",
        encoding="utf-8",
    )
    return load_settings(config)


class Node:
    """The node at sp.test and the test provider at idp.test, reached through one cookie-keeping client."""

    def __init__(self, settings: Settings, idp_dir: Path) -> None:
        self.router = HostRouter()
        self.router.add(IDP, create_idp_app(IdpConfig(issuer=IDP, data_dir=idp_dir, fetch_sp_metadata=False)))
        ctx = build_context(settings)
        # The node's relying party, with the in-memory network as its way to the provider.
        ctx.services["eid_login"] = EidLogin(settings.eid, SP, oidc_transport=self.router)
        self.ahead = dt.timedelta(0)  # how far the node's clock is ahead of the real one
        ctx.clock = lambda: dt.datetime.now(dt.UTC) + self.ahead
        self.router.add(SP, create_app(ctx))
        self.settings = settings

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.router, base_url=SP, follow_redirects=False)


async def follow(client: httpx.AsyncClient, response: httpx.Response) -> httpx.Response:
    assert response.status_code in (302, 303), response.text
    return await client.get(response.headers["location"])


async def eid_admin_login(client: httpx.AsyncClient, key: str, level: str) -> httpx.Response:
    """From the admin login page through the provider's picker; the answer of the last redirect."""
    page = await client.get("/admin/login")
    assert "Log in with eID" in page.text
    response = await client.get("/admin/eid")  # no eID session yet: on to the node's eID login
    assert response.headers["location"].startswith("/eid/login?")
    response = await follow(client, response)  # /eid/login -> provider
    assert response.headers["location"].startswith(IDP + "/authorize?")
    response = await follow(client, response)  # /authorize -> picker
    picker = response.headers["location"]
    await client.get(IDP + picker + "?country=" + key[:2].upper())
    response = await client.post(IDP + picker, data={"subject": key, "level": level})
    response = await client.get(response.headers["location"])  # the callback
    if response.status_code != 303:
        return response  # refused by the relying party
    return await follow(client, response)  # back at /admin/eid


@pytest.fixture
def node(tmp_path: Path, idp_dir: Path, idp_key: SigningKey, clean_env: pytest.MonkeyPatch) -> Node:
    return Node(node_settings(tmp_path, f'eid_login = true\neid_admins = ["{ADMIN}"]\neid_level = "high"'), idp_dir)


def test_a_listed_admin_logs_in_uses_the_forms_and_logs_out(node: Node) -> None:
    async def scenario() -> None:
        async with node.client() as client:
            response = await eid_admin_login(client, "de-2", "high")
            assert response.status_code == 303
            assert response.headers["location"] == "/admin"
            cookie = response.headers["set-cookie"].lower()
            assert cookie.startswith(COOKIE + "=")
            assert "path=/admin" in cookie
            assert "httponly" in cookie
            assert "samesite=strict" in cookie
            overview = await client.get("/admin")
            assert overview.status_code == 200
            assert "de-node" in overview.text
            assert "Schmidt" not in overview.text  # the admin's name is nowhere on the pages
            token = re.search(r"name='csrf' value='([0-9a-f]+)'", overview.text)
            assert token is not None
            # Logout without the form's token is refused and the session stays.
            refused = await client.post("/admin/logout", data={"csrf": "0" * 64})
            assert refused.status_code == 400
            assert (await client.get("/admin")).status_code == 200
            out = await client.post("/admin/logout", data={"csrf": token.group(1)})
            assert out.status_code == 303
            assert out.headers["location"] == "/eid/logout"  # the eID login ends too
            assert (await follow(client, out)).status_code == 303
            assert (await client.get("/admin")).headers["location"] == "/admin/login"
            again = await client.get("/admin/eid")  # no eID session left: back to the provider
            assert again.headers["location"].startswith("/eid/login?")

    run(scenario())


def test_a_listed_admin_below_the_admin_level_is_refused(node: Node) -> None:
    async def scenario() -> None:
        async with node.client() as client:
            response = await eid_admin_login(client, "de-2", "substantial")
            assert response.status_code == 403
            assert COOKIE not in response.headers.get("set-cookie", "")
            assert (await client.get("/admin")).status_code == 303

    run(scenario())


def test_a_person_not_on_the_list_gets_no_session(node: Node, caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with node.client() as client:
            response = await eid_admin_login(client, "de-1", "high")
            assert response.status_code == 403
            assert "Not an admin" in response.text
            assert COOKIE not in response.headers.get("set-cookie", "")
            assert (await client.get("/admin")).headers["location"] == "/admin/login"

    run(scenario())
    assert "not in admin.eid_admins" in caplog.text
    assert _identifier("de-1") not in caplog.text  # no personal data in the log


def test_an_expired_session_sends_back_to_the_login(node: Node) -> None:
    async def log_in() -> str:
        async with node.client() as client:
            response = await eid_admin_login(client, "de-2", "high")
            assert response.status_code == 303
            cookie = client.cookies.get(COOKIE)
            assert cookie
            return cookie

    async def status(cookie: str) -> Any:
        async with node.client() as client:
            return (await client.get("/admin", headers={"Cookie": f"{COOKIE}={cookie}"})).status_code

    cookie = run(log_in())
    secret = _session_secret(node.settings, None, load_journal(node.settings).derive_key("admin-session"))
    session_id = TimestampSigner(secret, salt="oots-admin").unsign(cookie).decode()
    old = time.time() - node.settings.admin.session_minutes * 60 - 5

    class Then(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(old)

    assert run(status(cookie)) == 200
    assert run(status(Then(secret, salt="oots-admin").sign(session_id).decode())) == 303  # an old cookie
    # a cookie signed with the right key but naming no session the node started opens nothing
    assert run(status(TimestampSigner(secret, salt="oots-admin").sign("eid:abc").decode())) == 303
    node.ahead = dt.timedelta(minutes=node.settings.admin.session_minutes)  # the row has expired, not the cookie
    assert run(status(cookie)) == 303


def test_password_login_is_refused_when_only_eid_is_on(node: Node) -> None:
    async def scenario() -> None:
        async with node.client() as client:
            page = await client.get("/admin/login")
            assert "password" not in page.text.lower()
            response = await client.post("/admin/login", data={"password": "anything"})
            assert response.status_code == 400

    run(scenario())


def test_password_and_eid_side_by_side(tmp_path: Path, idp_dir: Path, clean_env: pytest.MonkeyPatch) -> None:
    digest = hash_password("pw of the admin", iterations=1000)
    settings = node_settings(tmp_path, f'password_hash = "{digest}"\neid_login = true\neid_admins = ["{ADMIN}"]')
    node = Node(settings, idp_dir)

    async def scenario() -> None:
        async with node.client() as client:
            page = (await client.get("/admin/login")).text
            assert "type='password'" in page
            assert "Log in with eID" in page
            response = await client.post("/admin/login", data={"password": "pw of the admin"})
            assert response.status_code == 303
            assert (await client.get("/admin")).status_code == 200

    run(scenario())


def test_eid_login_settings_are_checked(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="eid_admins"):
        node_settings(tmp_path, "eid_login = true")
    config = tmp_path / "bare.toml"
    config.write_text(
        f'[node]\nname = "n"\ndata_dir = "{tmp_path.as_posix()}"\n'
        f'[admin]\neid_login = true\neid_admins = ["{ADMIN}"]\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="eid"):
        create_app(load_settings(config))  # eID admin login needs the node's relying party ([eid])
