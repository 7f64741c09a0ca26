from __future__ import annotations

import datetime as dt
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from config_snippets import be_births_service
from oots.as4.keys import init_dev_pki
from oots.cs.client import CommonServicesClient
from oots.errors import ConfigError
from oots.provider.config import register_problems
from oots.settings import Settings, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_file(clean_env: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.node.name == "oots-node"
    assert settings.database_url == "sqlite:///var/oots.db"


def test_file_values_are_typed(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = write(tmp_path, '[node]\nname = "be-node"\ncountry = "BE"\n[queue]\nmax_attempts = 3\n')
    settings = load_settings(path)
    assert settings.node.country == "BE"
    assert settings.queue.max_attempts == 3


def test_unknown_keys_are_named_with_their_path(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = write(tmp_path, '[database]\nurll = "x"\n[nodes]\nname = "y"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    problems = dict(info.value.problems)
    assert problems["database.urll"] == "unknown key"
    assert problems["nodes"] == "unknown key"


def test_wrong_types_are_explained(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = write(tmp_path, '[node]\ncountry = "Belgium"\n[queue]\nmax_attempts = 0\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    paths = [p for p, _ in info.value.problems]
    assert paths == ["node.country", "queue.max_attempts"]


def test_environment_overrides_the_file(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = write(tmp_path, '[database]\nurl = "sqlite:///a.db"\n')
    clean_env.setenv("OOTS_DATABASE__URL", "sqlite:///b.db")
    assert load_settings(path).database_url == "sqlite:///b.db"


def test_unknown_environment_settings_are_refused(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("OOTS_DATABASE__URLL", "x")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.problems[0][0] == "OOTS_DATABASE__URLL"


def test_not_toml_is_a_config_error(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "[node\n"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")


_KEY = "a" * 64
_OTHER_KEY = "b" * 64


@pytest.mark.parametrize(
    ("clients", "path", "said"),
    [
        # before, each of these passed: webhooks went out unsigned, the key became the last client's, ...
        (
            f'[[requester.clients]]\nid = "p"\napi_key_sha256 = "{_KEY}"\nwebhook_url = "https://p.example/hook"\n',
            "requester.clients.0",
            "has a webhook_url but no webhook_secret",
        ),
        (
            f'[[requester.clients]]\nid = "p"\napi_key_sha256 = "{_KEY}"\n'
            f'[[requester.clients]]\nid = "q"\napi_key_sha256 = "{_KEY}"\n',
            "requester",
            "requester clients 'p' and 'q' have the same api_key_sha256",
        ),
        (
            f'[[requester.clients]]\nid = "p"\napi_key_sha256 = "{_KEY}"\nwebhook_url = "file:///etc/passwd"\n'
            'webhook_secret = "0123456789abcdef0123"\n',
            "requester.clients.0.webhook_url",
            "is not an http(s) URL",
        ),
        (
            f'[[requester.clients]]\nid = "p"\napi_key_sha256 = "{_KEY}"\nwebhook_url = "https://p.example/hook"\n'
            'webhook_secret = "short"\n',
            "requester.clients.0.webhook_secret",
            "fewer than 16 bytes",
        ),
    ],
)
def test_unsafe_requester_clients_are_refused_with_their_path(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, clients: str, path: str, said: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, clients))
    problems = dict(info.value.problems)
    assert said in problems[path], problems


def test_safe_requester_clients_pass(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    text = (
        f'[[requester.clients]]\nid = "p"\napi_key_sha256 = "{_KEY}"\nwebhook_url = "https://p.example/hook"\n'
        'webhook_secret = "0123456789abcdef"\n'
        f'[[requester.clients]]\nid = "q"\napi_key_sha256 = "{_OTHER_KEY}"\n'
        f'[[requester.clients]]\nid = "r"\nclient_secret_sha256 = "{_KEY}"\n'
    )
    clients = load_settings(write(tmp_path, text)).requester.clients
    assert [c.id for c in clients] == ["p", "q", "r"]


def test_open_previews_are_kept_a_bounded_time(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert load_settings().provider.preview_retention_seconds == 7 * 24 * 3600
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, "[provider]\npreview_retention_seconds = 0\n"))
    assert [p for p, _ in info.value.problems] == ["provider.preview_retention_seconds"]
    assert load_settings().provider.preview_purge_interval_seconds == 3600  # looked for hourly
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, "[provider]\npreview_purge_interval_seconds = 0\n"))
    assert [p for p, _ in info.value.problems] == ["provider.preview_purge_interval_seconds"]


def test_as4_file_paths_are_taken_from_the_configuration_files_folder(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = write(
        tmp_path,
        '[as4]\ntls_ca_file = "tls/ca.pem"\ntls_client_certificate = "/etc/oots/tls.pem"\n'
        '[[as4.partners]]\nname = "red"\nsigning_certificate = "red/sign.pem"\n'
        'trust_anchors = ["red/ca.pem", "/etc/oots/ca.pem"]\n',
    )
    clean_env.setenv("OOTS_AS4__TLS_CLIENT_KEY", "tls/key.pem")  # from the environment: the same rule
    settings = load_settings(config)
    as4 = settings.as4
    assert as4.tls_ca_file == tmp_path / "tls" / "ca.pem"
    assert as4.tls_client_key == tmp_path / "tls" / "key.pem"
    assert as4.tls_client_certificate == Path("/etc/oots/tls.pem")  # absolute: as it is
    assert as4.signing_key is None
    red = as4.partners[0]
    assert red.signing_certificate == tmp_path / "red" / "sign.pem"
    assert red.encryption_certificate is None
    assert red.trust_anchors == [tmp_path / "red" / "ca.pem", Path("/etc/oots/ca.pem")]
    assert settings.resolved(tmp_path / "other") == settings  # taken once, taken for good
    assert as4.resolved(tmp_path / "other") == as4
    assert settings.resolved(None) is settings


def test_without_a_file_relative_paths_are_read_from_the_working_directory(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("OOTS_NODE__DATA_DIR", "var/be")
    clean_env.setenv("OOTS_AS4__PMODE_FILE", "pmodes.xml")
    settings = load_settings()
    assert settings.node.data_dir == Path("var/be")
    assert settings.as4.pmode_file == Path("pmodes.xml")


HEADER = "id,family_name,given_name,date_of_birth,registration_number,registered_on,registry_office"


def test_every_relative_path_of_a_node_is_read_from_the_configuration_files_folder(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = tmp_path / "etc"
    (folder / "registers").mkdir(parents=True)
    (folder / "registers" / "births.csv").write_text(
        f"{HEADER}\n1,Dupont,Marie,1984-02-29,R-1,1984-03-01,Gent\n", encoding="utf-8"
    )
    (folder / "secrets").mkdir()
    (folder / "secrets" / "seal.key").write_text("ab" * 32 + "\n", encoding="utf-8")
    (folder / "secrets" / "data.key").write_text("cd" * 32 + "\n", encoding="utf-8")
    init_dev_pki(folder / "cs", ["cs"], now=dt.datetime.now(dt.UTC))
    (folder / "idp.xml").write_text("<md:EntityDescriptor/>", encoding="utf-8")
    config = folder / "node.toml"
    config.write_text(
        """[node]
country = "BE"
data_dir = "var/be-node"

[audit]
seal_key_file = "secrets/seal.key"

[common_services]
environment = "local"
eb_url = "http://127.0.0.1:9400"
dsd_url = "http://127.0.0.1:9400"
trust_roots = ["cs/ca.pem"]

[eid]
saml_idp_metadata = "idp.xml"

[[provider.registers]]
name = "births-file"
kind = "csv"
path = "registers/births.csv"
"""
        + be_births_service("from-file", "births-file"),
        encoding="utf-8",
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    clean_env.chdir(elsewhere)
    clean_env.setenv("OOTS_AUDIT__DATA_KEY_FILE", "secrets/data.key")  # an override: the same folder
    settings = load_settings(Path("..") / "etc" / "node.toml")
    assert settings.node.data_dir == folder / "var" / "be-node"
    assert settings.database_url == f"sqlite:///{(folder / 'var' / 'be-node' / 'oots.db').as_posix()}"
    assert settings.audit.seal_key is not None
    assert settings.audit.seal_key.get_secret_value() == "ab" * 32
    assert settings.audit.data_key is not None
    assert settings.audit.data_key.get_secret_value() == "cd" * 32
    assert settings.eid.saml_idp_metadata == str(folder / "idp.xml")
    assert register_problems(settings) == []  # the CSV file is read
    CommonServicesClient.from_settings(settings).close()  # the trust root is read


def test_a_relative_secret_file_missing_from_the_configuration_files_folder_is_named(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "seal.key").write_text("ab" * 32, encoding="utf-8")
    config = write(tmp_path, '[audit]\nseal_key_file = "seal.key"\ndata_key_file = "nosuch.key"\n')
    clean_env.chdir(Path("/"))
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    assert "nosuch.key" in dict(info.value.problems)["audit"]


def test_urls_and_absolute_paths_are_kept(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for kept in ("https://idp.example/metadata", "http://127.0.0.1:9/md", "/etc/oots/idp.xml", ""):
        config = write(tmp_path, f'[eid]\nsaml_idp_metadata = "{kept}"\n')
        assert load_settings(config).eid.saml_idp_metadata == kept
    config = write(tmp_path, '[database]\nurl = "sqlite:///var/oots.db"\n[node]\ndata_dir = "/srv/oots"\n')
    settings = load_settings(config)
    assert settings.database.url == "sqlite:///var/oots.db"  # an URL: as it is
    assert settings.node.data_dir == Path("/srv/oots")


def _models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def _settings_of(model: type[BaseModel], prefix: str = "") -> dict[str, Any]:
    """Every setting under ``model``, dotted name → its field (a list's or table's fields by its name)."""
    out: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        out[prefix + name] = field
        for sub in _models(field.annotation):
            out |= _settings_of(sub, f"{prefix}{name}.")
    return out


#: Every setting that names a file or folder, each read from the configuration file's folder when relative.
PATH_SETTINGS = {
    "node.data_dir",
    "as4.signing_key",
    "as4.signing_certificate",
    "as4.decryption_key",
    "as4.decryption_certificate",
    "as4.pmode_file",
    "as4.tls_ca_file",
    "as4.tls_client_certificate",
    "as4.tls_client_key",
    "as4.partners.signing_certificate",
    "as4.partners.encryption_certificate",
    "as4.partners.trust_anchors",
    "common_services.trust_roots",
    "common_services.catalogue_file",
    "common_services.signing_key_file",
    "common_services.signing_chain_file",
    "eid.saml_idp_metadata",  # a path or an URL
    "eid.saml_idp_metadata_cert",
    "eid.saml_key_file",
    "eid.saml_cert_file",
    "provider.registers.path",
    "provider.registers.secret_files",
}


def test_every_path_setting_is_read_from_the_configuration_files_folder(tmp_path: Path) -> None:
    settings = _settings_of(Settings)
    typed = {name for name, field in settings.items() if "Path" in str(field.annotation)}
    path_or_url = {
        f"{section}.{name}"
        for section, field in Settings.model_fields.items()
        for model in _models(field.annotation)
        for name in getattr(model, "paths_or_urls", ())
    }
    assert typed | path_or_url == PATH_SETTINGS
    # A text setting that speaks of a file is a path setting (or only mentions one).
    speaks_of_files = {n for n, f in settings.items() if f.annotation is str and "file" in (f.description or "")}
    assert speaks_of_files - path_or_url == {"as4.partners.endpoint"}

    # Each is taken from the folder: a setting made relative everywhere comes back under it.
    relative = Settings.model_validate(
        {
            "node": {"data_dir": "d"},
            "as4": {
                **{name.split(".")[1]: "f" for name in PATH_SETTINGS if name.count(".") == 1 and "as4." in name},
                "partners": [
                    {"name": "p", "signing_certificate": "f", "encryption_certificate": "f", "trust_anchors": ["f"]}
                ],
            },
            "common_services": {
                "trust_roots": ["f"],
                "catalogue_file": "f",
                "signing_key_file": "f",
                "signing_chain_file": "f",
            },
            "eid": {
                "saml_idp_metadata": "f",
                "saml_idp_metadata_cert": "f",
                "saml_key_file": "f",
                "saml_cert_file": "f",
            },
            "provider": {
                "registers": [
                    {"name": "r", "kind": "python", "factory": "m:f", "secret_files": {"k": "f"}},
                    {"name": "c", "kind": "csv", "path": "f"},
                ]
            },
        }
    ).resolved(tmp_path)
    for name in PATH_SETTINGS:
        values: list[Any] = [relative]
        for part in name.split("."):
            values = [getattr(v, part) for v in values]
            values = [x for v in values for x in (v if isinstance(v, list | tuple) else [v])]
        values = [x for v in values for x in (v.values() if isinstance(v, dict) else [v])]
        values = [v for v in values if v is not None]  # the setting of another kind of register
        assert values, name
        assert all(Path(v).parent == tmp_path for v in values), (name, values)
