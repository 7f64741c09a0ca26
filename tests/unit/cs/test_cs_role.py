"""The Common Services role mounted on an app, as a node composes it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from starlette.applications import Starlette

from cs.cs_helpers import DEMO, EB1, app_client
from oots import edm
from oots.cs.jades import verify_answer
from oots.cs.keys import CsPki, write_pki
from oots.cs.role import create_role
from oots.cs.trust import TrustStore
from oots.errors import ConfigError
from oots.settings import Settings
from oots.store import Database


@dataclass
class Context:
    settings: Settings
    database: Database
    services: dict[str, Any] = field(default_factory=dict)


def test_role_serves_signed_answers_under_cs(tmp_path: Path, pki: CsPki, clean_env: pytest.MonkeyPatch) -> None:
    paths = write_pki(pki, tmp_path / "keys")
    settings = Settings(
        database={"url": f"sqlite:///{tmp_path / 'node.db'}"},
        common_services={
            "catalogue_file": str(DEMO),
            "signing_key_file": str(paths["key"]),
            "signing_chain_file": str(paths["chain"]),
        },
    )
    db = Database(settings.database_url)
    db.migrate()
    try:
        role = create_role(Context(settings, db))
        assert role.job_handlers() == {}
        client = app_client(Starlette(routes=list(role.routes())))
        reply = client.get(
            "/cs/rest/search?" + urlencode([("queryId", EB1), ("procedure-id", "R1"), ("country-code", "IT")]),
            headers={"Accept-Version": "oots-cs:v2.0"},
        )
        verify_answer(reply.content, reply.headers, TrustStore((pki.root,)))
        doc = edm.parse(reply.content)
        assert isinstance(doc, edm.CommonServicesResponse)
        assert doc.requirements[0].names[0].value == "Proof of birth"
        assert client.get("/cs/health").json()["signed"] is True
        with pytest.raises(ConfigError):
            create_role(Context(Settings(database={"url": settings.database.url}), db))
        from oots.node.app import _load_role
        from oots.node.roles import NodeContext

        loaded = _load_role("common_services", NodeContext(settings=settings, database=db))
        assert loaded.name == "common_services"
    finally:
        db.dispose()


def test_a_common_services_node(tmp_path: Path, pki: CsPki, clean_env: pytest.MonkeyPatch) -> None:
    """``[node] roles = ["common_services"]``: the node serves the EB and DSD under /cs, no access point needed."""
    from oots.node.app import build_context, create_app

    paths = write_pki(pki, tmp_path / "keys")
    settings = Settings(
        node={"roles": ["common_services"], "data_dir": str(tmp_path / "var")},
        common_services={
            "catalogue_file": str(DEMO),
            "signing_key_file": str(paths["key"]),
            "signing_chain_file": str(paths["chain"]),
        },
    )
    ctx = build_context(settings)
    try:
        assert "as4" not in ctx.services
        client = app_client(create_app(ctx))
        reply = client.get(
            "/cs/dsd/rest/search?" + urlencode([("queryId", "urn:x")]), headers={"Accept-Version": "oots-cs:v2.0"}
        )
        verify_answer(reply.content, reply.headers, TrustStore((pki.root,)))
        doc = edm.parse(reply.content)
        assert isinstance(doc, edm.CommonServicesError)
        assert doc.code == "DSD:ERR:0004"
    finally:
        ctx.database.dispose()
