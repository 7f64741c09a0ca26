"""The ``[eid]`` settings section."""

from __future__ import annotations

from pathlib import Path

import pytest

from oots.errors import ConfigError
from oots.settings import load_settings


def test_eid_section_with_secrets_from_files(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "client").write_text("s3cret\n", encoding="utf-8")
    (tmp_path / "session").write_text("0123456789abcdef0123\n", encoding="utf-8")
    config = tmp_path / "node.toml"
    config.write_text(
        "[eid]\n"
        'issuer = "https://idp.example.gov"\n'
        'client_id = "portal"\n'
        f'client_secret_file = "{tmp_path / "client"}"\n'
        f'session_secret_file = "{tmp_path / "session"}"\n'
        'acr_map = { eidas2 = "substantial" }\n',
        encoding="utf-8",
    )
    clean_env.setenv("OOTS_EID__REQUIRED_LEVEL", "high")
    eid = load_settings(config).eid
    assert eid.client_secret is not None
    assert eid.client_secret.get_secret_value() == "s3cret"
    assert eid.session_secret is not None
    assert eid.required_level == "high"
    assert eid.acr_map == {"eidas2": "substantial"}
    assert "s3cret" not in repr(eid)


def test_unknown_level_and_key_are_named(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "node.toml"
    config.write_text('[eid]\nrequired_level = "medium"\nissuer_url = "x"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    paths = [path for path, _ in info.value.problems]
    assert "eid.required_level" in paths
    assert "eid.issuer_url" in paths


def test_login_component_needs_a_provider(clean_env: pytest.MonkeyPatch) -> None:
    from oots.eid import EidLogin
    from oots.settings import EidSettings

    with pytest.raises(ConfigError, match=r"eid\.issuer"):
        EidLogin(EidSettings(), "http://sp.test")
    with pytest.raises(ConfigError, match="client_id"):
        EidLogin(EidSettings(issuer="http://idp.test"), "http://sp.test")
