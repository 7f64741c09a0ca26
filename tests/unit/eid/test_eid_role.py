"""eID as a node role: routes from the node's settings, the login published for the other roles."""

from __future__ import annotations

from pathlib import Path

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
