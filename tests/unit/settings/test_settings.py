from __future__ import annotations

from pathlib import Path

import pytest

from oots.errors import ConfigError
from oots.settings import AS4_FILES, As4PartnerSettings, As4Settings, load_settings


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
    as4 = settings.resolved(tmp_path).as4
    assert as4.tls_ca_file == tmp_path / "tls" / "ca.pem"
    assert as4.tls_client_key == tmp_path / "tls" / "key.pem"
    assert as4.tls_client_certificate == Path("/etc/oots/tls.pem")  # absolute: as it is
    assert as4.signing_key is None
    red = as4.partners[0]
    assert red.signing_certificate == tmp_path / "red" / "sign.pem"
    assert red.encryption_certificate is None
    assert red.trust_anchors == [tmp_path / "red" / "ca.pem", Path("/etc/oots/ca.pem")]
    assert as4.resolved(tmp_path) == as4  # taken once, taken for good
    assert settings.resolved(None) is settings  # without a file: from the working directory
    assert settings.as4.tls_ca_file == Path("tls/ca.pem")  # the settings read are left as they are


def test_every_as4_file_setting_is_taken_from_the_configuration_files_folder() -> None:
    def files(model: type[As4Settings] | type[As4PartnerSettings]) -> set[str]:
        return {name for name, field in model.model_fields.items() if "Path" in str(field.annotation)}

    assert files(As4Settings) == set(AS4_FILES)
    assert files(As4PartnerSettings) == {"signing_certificate", "encryption_certificate", "trust_anchors"}
