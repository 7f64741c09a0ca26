"""eID as a node role: routes from the node's settings, the login published for the other roles."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from eid_helpers import IDP, AppClient, HostRouter
from starlette.applications import Starlette

from oots.eid import EidLogin
from oots.eid.role import EidRole
from oots.eid.testidp import IdpConfig, create_idp_app
from oots.eid.testidp.keys import SigningKey
from oots.node.roles import NodeContext
from oots.settings import EidSettings, NodeSettings, Settings
from oots.store import Database


def test_role_serves_the_login_and_publishes_it(
    clean_env: pytest.MonkeyPatch, sqlite_url: str, idp_dir: Path, idp_key: SigningKey
) -> None:
    settings = Settings(
        node=NodeSettings(base_url="http://portal.test"),
        eid=EidSettings(issuer=IDP, client_id="portal", session_secret="role-test-secret-0123456789"),
    )
    database = Database(sqlite_url)
    database.migrate()
    router = HostRouter()
    router.add(IDP, create_idp_app(IdpConfig(issuer=IDP, data_dir=idp_dir)))
    context = NodeContext(settings=settings, database=database)
    role = EidRole(context, oidc_transport=router)
    assert isinstance(context.services["eid"], EidLogin)
    assert role.name == "eid"
    assert role.job_handlers() == {}
    app = Starlette(routes=list(role.routes()))
    resp = AppClient(app, "http://portal.test").get("/eid/login?next=/procedure")
    assert resp.status_code == 303
    assert resp.headers["location"].startswith(IDP + "/authorize?")
    assert "redirect_uri=http%3A%2F%2Fportal.test%2Feid%2Fcallback" in resp.headers["location"]
    database.dispose()


def test_the_processes_of_a_node_accept_each_others_logins_without_a_session_secret(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, sqlite_url: str, idp_dir: Path, idp_key: SigningKey
) -> None:
    """Two processes serving one node (one data directory, one database): a login made on one is a login
    on the other, though ``eid.session_secret`` is not set; the key is generated once, readable by the
    node's user only."""
    from eid_helpers import SP, protected_app, run
    from test_eid_web import follow, login_until_callback

    from oots.eid.replay import DatabaseReplayCache
    from oots.eid.web import SESSION_KEY_FILE

    settings = Settings(
        node=NodeSettings(base_url=SP, data_dir=tmp_path / "node"),
        eid=EidSettings(issuer=IDP, client_id="portal"),
    )
    database = Database(sqlite_url)
    database.migrate()
    router = HostRouter()
    router.add(IDP, create_idp_app(IdpConfig(issuer=IDP, data_dir=idp_dir, fetch_sp_metadata=False)))
    first, second = (EidRole(NodeContext(settings=settings, database=database), oidc_transport=router) for _ in "12")
    assert isinstance(first.login._replay, DatabaseReplayCache)  # a SAML replay to the other process is seen

    async def scenario() -> int:
        async with httpx.AsyncClient(transport=router, base_url=SP, follow_redirects=False) as client:
            router.add(SP, protected_app(first.login))
            answer, _ = await login_until_callback(client, "de-2", "substantial")
            assert (await follow(client, answer)).status_code == 200
            router.add(SP, protected_app(second.login))  # the next request reaches the other process
            return (await client.get("/me")).status_code

    assert run(scenario()) == 200
    assert ((tmp_path / "node" / SESSION_KEY_FILE).stat().st_mode & 0o777) == 0o600
    database.dispose()


def test_the_cookie_key_is_made_at_the_first_request_once_for_every_process(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, sqlite_url: str
) -> None:
    """Building a node's login writes nothing; the logins of several processes, reaching their first
    request together, end up with the one key the data directory keeps (one seals, the others open)."""
    import threading

    from oots.eid.web import SESSION_KEY_FILE

    data_dir = tmp_path / "node"
    settings = Settings(
        node=NodeSettings(base_url="http://portal.test", data_dir=data_dir),
        eid=EidSettings(issuer=IDP, client_id="portal"),
    )
    database = Database(sqlite_url)
    logins = [EidLogin.for_node(settings, database) for _ in range(6)]
    assert not data_dir.exists()  # nothing written while the applications are built
    start = threading.Barrier(len(logins) * 2)  # two threads per process, all at once
    failures: list[BaseException] = []

    def first_request(login: EidLogin) -> None:
        start.wait()
        try:
            login._sealers_now()
        except BaseException as exc:  # reported by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=first_request, args=(login,)) for login in logins for _ in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert [p.name for p in data_dir.iterdir()] == [SESSION_KEY_FILE]  # one key, no drafts left
    for sealing in logins:
        token = sealing._session_sealer.seal({"who": "someone"})
        assert all(other._session_sealer.open(token, 60) == {"who": "someone"} for other in logins)
    database.dispose()


def test_a_configured_session_secret_writes_no_key_file(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, sqlite_url: str
) -> None:
    settings = Settings(
        node=NodeSettings(base_url="http://portal.test", data_dir=tmp_path / "node"),
        eid=EidSettings(issuer=IDP, client_id="portal", session_secret="role-test-secret-0123456789"),
    )
    database = Database(sqlite_url)
    login = EidLogin.for_node(settings, database)
    login._sealers_now()
    assert not (tmp_path / "node").exists()
    database.dispose()
