"""Typed settings: a TOML file, ``OOTS_`` environment overrides, secrets from files.

``load_settings(path)`` is the only way in. Nothing is read at import time and there is no global
settings object: the result is passed explicitly to whatever needs it (``create_app(settings)``).

* Every section rejects keys it does not know, and the error names the key's full path
  (``database.urll: unknown key``).
* ``OOTS_<SECTION>__<KEY>`` overrides ``[section] key`` (``OOTS_DATABASE__URL=...``); environment
  wins over the file, the file over the defaults.
* A secret field ``x`` may instead be given as ``x_file = "/run/secrets/x"``: the file's content
  (trailing newline removed) becomes the value, so secrets never need to sit in the config file.

Sections are added here as the parts of oots grow; each is a frozen pydantic model.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from oots.errors import ConfigError

__all__ = [
    "CommonServicesSettings",
    "DatabaseSettings",
    "LogSettings",
    "NodeSettings",
    "QueueSettings",
    "Section",
    "Settings",
    "load_settings",
]

ENV_PREFIX = "OOTS_"
#: Environment variables with the prefix that are not settings.
_ENV_NOT_SETTINGS = ("OOTS_CONFIG", "OOTS_TEST_")


class Section(BaseModel):
    """Base of every settings section: frozen, unknown keys refused, ``<secret>_file`` resolved."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _secrets_from_files(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        out = dict(data)
        for key, value in data.items():
            if not (isinstance(key, str) and key.endswith("_file")):
                continue
            name = key[: -len("_file")]
            field = cls.model_fields.get(name)
            if field is None or field.annotation not in (SecretStr, SecretStr | None):
                continue
            if name in data:
                raise ValueError(f"give either {name} or {key}, not both")
            try:
                out[name] = Path(str(value)).read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise ValueError(f"{key}: cannot read the secret file {value}: {exc.strerror}") from None
            del out[key]
        return out


class NodeSettings(Section):
    """Who this node is and where it keeps its files."""

    name: str = Field("oots-node", description="Short name of the node, used in logs and page titles.")
    country: str = Field("EU", pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 code (EL for Greece).")
    data_dir: Path = Field(Path("var"), description="Directory for the SQLite database, keys and files.")
    base_url: str = Field("http://127.0.0.1:8000", description="Public URL of the node's web endpoint.")


class DatabaseSettings(Section):
    """Where all state lives. Empty ``url`` means a SQLite file in ``node.data_dir``."""

    url: str = Field("", description="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db.")
    pool_size: int = Field(5, ge=1, le=100)
    echo: bool = False


class QueueSettings(Section):
    """The durable work queue every background task runs through."""

    lease_seconds: float = Field(30.0, gt=0, description="How long a claimed job is held before others may take it.")
    max_attempts: int = Field(8, ge=1, description="Attempts before a job is dead-lettered.")
    backoff_base_seconds: float = Field(1.0, gt=0)
    backoff_max_seconds: float = Field(300.0, gt=0)
    poll_interval_seconds: float = Field(0.2, gt=0)
    batch_size: int = Field(32, ge=1, le=1000, description="Jobs claimed per round trip.")


class LogSettings(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_format: bool = Field(False, alias="json", description="One JSON object per line.")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# Component sections. Each part of oots adds its section class in its own slot below (keeps merges clean).
# --- section: as4 ---
# --- section: common services ---


class CommonServicesSettings(Section):
    """The Evidence Broker and Data Service Directory: the client's targets and trust, the server's keys."""

    environment: Literal["acc", "prod", "local"] = Field(
        "prod", description="Whose registries: the Commission's acceptance or production ones, or a local instance."
    )
    eb_url: str = Field("", description="Base URL of the Evidence Broker; empty: found by DNS NAPTR.")
    dsd_url: str = Field("", description="Base URL of the Data Service Directory; empty: found by DNS NAPTR.")
    country: str = Field("", description="Country whose NAPTR records are used (default: node.country).")
    accept_version: Literal["oots-cs:v2.0", "oots-edm:v1.0"] = Field(
        "oots-cs:v2.0", description="API version asked for with the Accept-Version header."
    )
    trust_roots: tuple[Path, ...] = Field(
        (), description="PEM files of the roots that may sign answers; empty: the Commission's root of the environment."
    )
    require_signature: bool = Field(True, description="Refuse unsigned answers (v2.0 answers are always signed).")
    cache_ttl_seconds: float = Field(300.0, ge=0, description="How long answers are reused; 0 turns the cache off.")
    timeout_seconds: float = Field(10.0, gt=0)
    catalogue_file: Path | None = Field(
        None, description="Server: the catalogue data file (TOML) that fills an empty database."
    )
    signing_key_file: Path | None = Field(None, description="Server: PEM EC private key that signs answers.")
    signing_chain_file: Path | None = Field(None, description="Server: PEM chain of the signing key, leaf first.")


# --- section: eid ---
# --- section: provider ---
# --- section: requester ---
# --- section: audit ---
# --- section: admin ---


class Settings(BaseSettings):
    """All settings of one node."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        case_sensitive=False,
    )

    node: NodeSettings = NodeSettings()
    database: DatabaseSettings = DatabaseSettings()
    queue: QueueSettings = QueueSettings()
    log: LogSettings = LogSettings()
    # --- field: as4 ---
    # --- field: common services ---
    common_services: CommonServicesSettings = CommonServicesSettings()
    # --- field: eid ---
    # --- field: provider ---
    # --- field: requester ---
    # --- field: audit ---
    # --- field: admin ---

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides the file (passed in as init values), which overrides defaults.
        return (env_settings, init_settings)

    @property
    def database_url(self) -> str:
        """The effective database URL (a SQLite file in the data directory when none is set)."""
        if self.database.url:
            return self.database.url
        return f"sqlite:///{(self.node.data_dir / 'oots.db').as_posix()}"


def _describe(exc: ValidationError, source: str) -> ConfigError:
    problems: list[tuple[str, str]] = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"]) or "(top level)"
        reason = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        problems.append((path, reason))
    lines = "; ".join(f"{p}: {r}" for p, r in problems)
    return ConfigError(f"{source} has {len(problems)} problem(s): {lines}", problems)


def _unknown_env(env: Mapping[str, str]) -> list[tuple[str, str]]:
    problems = []
    sections = Settings.model_fields
    for name in env:
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper.startswith(_ENV_NOT_SETTINGS):
            continue
        parts = upper[len(ENV_PREFIX) :].lower().split("__")
        section = sections.get(parts[0])
        if section is None:
            problems.append((name, "unknown setting (no such section)"))
            continue
        model = section.annotation
        if len(parts) == 2 and isinstance(model, type) and issubclass(model, BaseModel):
            known = set(model.model_fields)
            known |= {f.alias for f in model.model_fields.values() if f.alias}
            if parts[1] not in known and not parts[1].endswith("_file"):
                problems.append((name, f"unknown setting ({parts[0]}.{parts[1]})"))
    return problems


def load_settings(path: str | Path | None = None) -> Settings:
    """Read settings from the TOML file at ``path`` (optional) and the ``OOTS_`` environment.

    Raises :class:`ConfigError` listing every problem with its key path.
    """
    data: dict[str, Any] = {}
    source = "the settings"
    if path is not None:
        source = str(path)
        try:
            with Path(path).open("rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"the configuration file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    env_problems = _unknown_env(os.environ)
    if env_problems:
        lines = "; ".join(f"{p}: {r}" for p, r in env_problems)
        raise ConfigError(f"the environment has {len(env_problems)} problem(s): {lines}", env_problems)
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise _describe(exc, source) from None
