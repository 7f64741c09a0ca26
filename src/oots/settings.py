"""Typed settings: a TOML file, ``OOTS_`` environment overrides, secrets from files.

``load_settings(path)`` is the only way in. Nothing is read at import time and there is no global
settings object: the result is passed explicitly to whatever needs it (``create_app(settings)``).

* Every section rejects keys it does not know, and the error names the key's full path
  (``database.urll: unknown key``).
* ``OOTS_<SECTION>__<KEY>`` overrides ``[section] key`` (``OOTS_DATABASE__URL=...``); environment
  wins over the file, the file over the defaults.
* A secret field ``x`` may instead be given as ``x_file = "/run/secrets/x"``: the file's content
  (trailing newline removed) becomes the value, so secrets never need to sit in the config file.
* One rule for relative paths: a relative file path (every ``Path`` setting, ``eid.saml_idp_metadata``
  when it is not an URL, every ``<secret>_file``), from the file or from an ``OOTS_`` variable, is read
  from the configuration file's folder; absolute paths and URLs are kept. With no file: the working
  directory. :meth:`Settings.resolved` is where the rule lives; ``load_settings`` applies it.

Sections are added here as the parts of oots grow; each is a frozen pydantic model.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from oots.errors import ConfigError

__all__ = [
    "AdminSettings",
    "As4PartnerSettings",
    "As4Settings",
    "AuditSettings",
    "CommonServicesSettings",
    "DatabaseSettings",
    "EidSettings",
    "LogSettings",
    "NodeSettings",
    "ProviderDataServiceSettings",
    "ProviderRegisterSettings",
    "ProviderSettings",
    "QueueSettings",
    "RequesterClientSettings",
    "RequesterSettings",
    "Section",
    "Settings",
    "describe_problems",
    "load_settings",
    "read_toml",
]

ENV_PREFIX = "OOTS_"
#: Environment variables with the prefix that are not settings.
_ENV_NOT_SETTINGS = ("OOTS_CONFIG", "OOTS_TEST_")
#: The configuration file's folder while ``load_settings`` validates it: where a relative ``<secret>_file``
#: is read from (the files are read during validation, before :meth:`Settings.resolved` can run).
_CONFIG_DIR: ContextVar[Path | None] = ContextVar("oots_config_dir", default=None)


@contextmanager
def _reading_from(config_dir: Path | None) -> Iterator[None]:
    token = _CONFIG_DIR.set(config_dir)
    try:
        yield
    finally:
        _CONFIG_DIR.reset(token)


class Section(BaseModel):
    """Base of every settings section: frozen, unknown keys refused, ``<secret>_file`` resolved.

    Its ``Path`` fields are file paths taken from the configuration file's folder by
    :meth:`Settings.resolved`; ``paths_or_urls`` names its ``str`` fields that hold a file path or an URL.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    paths_or_urls: ClassVar[tuple[str, ...]] = ()

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
            file = Path(str(value))
            config_dir = _CONFIG_DIR.get()
            if config_dir is not None:
                file = config_dir / file  # an absolute path stays as it is
            try:
                out[name] = file.read_text(encoding="utf-8").rstrip("\r\n")
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
    roles: tuple[Literal["requester", "provider", "common_services"], ...] = Field(
        (),
        description="What this node does in OOTS; a requester or provider node runs an access point.",
    )
    threads: int = Field(
        0,
        ge=0,
        le=256,
        description="Threads of a web process for database and crypto work; 0: four per core.",
    )
    shutdown_seconds: int = Field(
        10,
        ge=1,
        le=300,
        description="How long a stopping process waits for requests and AS4 sends in flight before it exits.",
    )


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
    batch_size: int = Field(
        100, ge=1, le=1000, description="Most jobs claimed per round trip (fewer while jobs run slowly)."
    )
    group_commit_seconds: float = Field(
        0.05, ge=0, description="Jobs finished within this long share one commit (0: every job commits alone)."
    )


class LogSettings(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_format: bool = Field(False, alias="json", description="One JSON object per line.")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# Component sections. Each part of oots adds its section class in its own slot below (keeps merges clean).
# --- section: as4 ---


class As4PartnerSettings(Section):
    """One partner access point (``[[as4.partners]]``)."""

    name: str = Field(..., min_length=1, description="Short name used by `oots as4 ping NAME` and in logs.")
    party_id: str = Field("", description="Its eb:PartyId (default: the name).")
    party_id_type: str = Field("urn:oasis:names:tc:ebcore:partyid-type:unregistered:oots")
    endpoint: str = Field("", description="Its AS4 endpoint URL (may come from the pmode_file).")
    signing_certificate: Path | None = Field(None, description="PEM/DER certificate its messages are signed with.")
    encryption_certificate: Path | None = Field(None, description="Certificate we encrypt to (default: signing).")
    trust_anchors: list[Path] = Field(default_factory=list, description="CA certificates its certificates chain to.")
    retry_offsets_seconds: list[float] | None = Field(None, description="Overrides as4.retry_offsets_seconds.")


#: Shortest Domibus push token accepted.
PUSH_TOKEN_BYTES = 16


class As4Settings(Section):
    """The eDelivery AS4 access point (built in, or an existing Domibus in front of the node)."""

    mode: Literal["builtin", "domibus"] = Field("builtin", description="Own access point, or a Domibus.")
    party_id: str = Field("oots-node", description="This access point's eb:PartyId.")
    party_id_type: str = Field("urn:oasis:names:tc:ebcore:partyid-type:unregistered:oots")
    role: str = Field("http://sdg.europa.eu/edelivery/gateway")
    signing_key: Path | None = Field(None, description="PEM private key messages and receipts are signed with.")
    signing_certificate: Path | None = Field(None, description="PEM certificate of the signing key.")
    decryption_key: Path | None = Field(
        None, description="PEM private key payloads are encrypted to (default: signing)."
    )
    decryption_certificate: Path | None = None
    key_password: SecretStr | None = Field(None, description="Password of encrypted private keys.")
    pmode_file: Path | None = Field(None, description="A Domibus PMode XML to take legs and partners from.")
    retry_offsets_seconds: list[float] = Field(
        default_factory=lambda: [60.0, 180.0, 600.0],
        description="Seconds after the first send at which a message without receipt is sent again.",
    )
    receipt_timeout_seconds: float = Field(60.0, gt=0, description="HTTP wait for the synchronous receipt.")
    duplicate_detection: bool = True
    duplicate_window_seconds: float = Field(7 * 24 * 3600.0, gt=0, description="How long message ids are remembered.")
    purge_interval_seconds: float = Field(
        3600.0, gt=0, description="How often received messages past the duplicate window are purged (node worker)."
    )
    max_message_bytes: int = Field(64 * 1024 * 1024, ge=1024, description="Largest AS4 request body accepted.")
    connect_timeout_seconds: float = Field(10.0, gt=0)
    tls_ca_file: Path | None = Field(None, description="CA bundle for partners' TLS (default: system store).")
    tls_client_certificate: Path | None = Field(None, description="Client certificate for mutual TLS.")
    tls_client_key: Path | None = None
    partners: list[As4PartnerSettings] = Field(default_factory=list)
    domibus_url: str = Field("", description="Domibus WS plugin URL (mode = domibus).")
    domibus_username: str = ""
    domibus_password: SecretStr | None = None
    domibus_poll_seconds: float = Field(30.0, gt=0, description="Sweep for pending messages this often.")
    domibus_push_token: SecretStr | None = Field(
        None,
        description="Shared secret a push notification must carry (Authorization: Bearer, the basic-auth password "
        "or ?token= in the push URL), 16 bytes or more.",
    )
    domibus_push_from: tuple[str, ...] = Field(
        (), description="Addresses or networks (10.0.0.5, 10.0.0.0/24) push notifications may come from."
    )

    def resolved(self, base_dir: Path | None) -> As4Settings:
        """These settings with every relative file path taken from ``base_dir`` (:meth:`Settings.resolved`)."""
        return self if base_dir is None else _taken_from(self, base_dir.absolute())

    @field_validator("domibus_push_token")
    @classmethod
    def _long_push_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < PUSH_TOKEN_BYTES:
            raise ValueError(
                f"the push token has fewer than {PUSH_TOKEN_BYTES} bytes; "
                "make a longer one (such as openssl rand -hex 32)"
            )
        return value

    @field_validator("domibus_push_from")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an IP address or network (such as 10.0.0.5 or 10.0.0.0/24)"
                ) from None
        return value


# --- section: common services ---


class CommonServicesSettings(Section):
    """The Evidence Broker and Data Service Directory: the client's targets and trust, the server's keys."""

    environment: Literal["acc", "prod", "local"] = Field(
        "prod", description="Whose registries: the Commission's acceptance or production ones, or a local instance."
    )
    eb_url: str = Field("", description="Base URL of the Evidence Broker; empty: found by DNS NAPTR.")
    dsd_url: str = Field("", description="Base URL of the Data Service Directory; empty: found by DNS NAPTR.")
    country: str = Field("", description="Country whose NAPTR records are used (default: node.country).")
    registry_domains: tuple[str, ...] = Field(
        ("ec.europa.eu",),
        description="Domains a registry URL found by DNS NAPTR may be in (the host or a subdomain of it).",
    )
    accept_version: Literal["oots-cs:v2.0", "oots-edm:v1.0"] = Field(
        "oots-cs:v2.0", description="API version asked for with the Accept-Version header."
    )
    trust_roots: tuple[Path, ...] = Field(
        (), description="PEM files of the roots that may sign answers; empty: the Commission's root of the environment."
    )
    allowed_signers: tuple[str, ...] = Field(
        (),
        description="Who may sign answers: subject patterns ('OU=OOTS,CN=EC-OOTS-CS-*') or SHA-256 fingerprints; "
        "empty: the Commission's OOTS signers under its roots, any signer under other roots.",
    )
    require_signature: bool = Field(True, description="Refuse unsigned answers (v2.0 answers are always signed).")
    cache_ttl_seconds: float = Field(300.0, ge=0, description="How long answers are reused; 0 turns the cache off.")
    signature_max_age_seconds: float = Field(
        3600.0, gt=0, description="Refuse a signed answer signed longer ago than this (an old answer replayed)."
    )
    clock_skew_seconds: float = Field(
        300.0, ge=0, le=3600, description="How far in the future an answer's signing time may be (clocks differ)."
    )
    timeout_seconds: float = Field(10.0, gt=0)
    catalogue_file: Path | None = Field(
        None, description="Server: the catalogue data file (TOML) that fills an empty database."
    )
    signing_key_file: Path | None = Field(None, description="Server: PEM EC private key that signs answers.")
    signing_chain_file: Path | None = Field(None, description="Server: PEM chain of the signing key, leaf first.")


# --- section: eid ---


class EidSettings(Section):
    """eID login of the node's web pages: an OpenID provider and/or a SAML (eIDAS) identity provider."""

    issuer: str = Field("", description="OpenID provider issuer URL; empty turns OpenID Connect login off.")
    client_id: str = Field("", description="Client id registered at the OpenID provider.")
    client_secret: SecretStr | None = Field(None, description="Client secret (or client_secret_file).")
    redirect_url: str = Field("", description="OIDC redirect URL; empty means <node.base_url>/eid/callback.")
    scope: str = Field("openid profile", description="Scopes asked for at the OpenID provider.")
    userinfo: bool = Field(False, description="Also read the identity claims at the provider's userinfo endpoint.")
    claim_map: dict[str, str] = Field(
        default_factory=dict, description="Provider claim name -> oots claim name (e.g. birthplace = place_of_birth)."
    )
    acr_map: dict[str, Literal["low", "substantial", "high"]] = Field(
        default_factory=dict, description="Provider acr value -> eIDAS level (e.g. eidas2 = substantial)."
    )
    paths_or_urls = ("saml_idp_metadata",)

    saml_idp_metadata: str = Field("", description="SAML IdP / eIDAS node metadata: a file path or an URL.")
    saml_idp_metadata_cert: Path | None = Field(
        None, description="Certificate (PEM) whose key must have signed the SAML IdP metadata."
    )
    saml_entity_id: str = Field("", description="SAML entity id; empty means <node.base_url>/eid/saml/metadata.")
    saml_key_file: Path | None = Field(None, description="SP key (PEM) to sign requests and decrypt assertions.")
    saml_cert_file: Path | None = Field(None, description="SP certificate (PEM) matching saml_key_file.")
    required_level: Literal["low", "substantial", "high"] = Field(
        "substantial", description="Lowest eIDAS level of assurance accepted for a login."
    )
    session_secret: SecretStr | None = Field(
        None,
        description="Secret sealing the login cookies (>= 16 bytes); empty: generated into <data_dir>/eid-session.key.",
    )
    session_minutes: int = Field(30, ge=1, le=24 * 60, description="How long a login stays valid.")
    login_minutes: int = Field(10, ge=1, le=60, description="How long a started login may take.")
    clock_skew_seconds: int = Field(60, ge=0, le=600, description="Clock difference tolerated on tokens.")


# --- section: provider ---
_MEDIA = Literal["application/pdf", "application/xml", "application/json"]
_LEVEL = Literal["exact", "reordered", "partial"]
_TIE_BREAKER = Literal["birth_name", "place_of_birth", "gender", "post_code"]


class ProviderRegisterSettings(Section):
    """One register an evidence provider reads (``[[provider.registers]]``)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="Name the data services refer to.")
    kind: Literal["sample", "csv", "sql", "http", "python"] = Field(
        description="Adapter: sample register, CSV, SQL, HTTP JSON, or your own (python)."
    )
    path: Path | None = Field(None, description="csv: the CSV file (UTF-8, header row).")
    url: str = Field("", description="sql: SQLAlchemy URL of the register's database; http: base URL of its API.")
    source: str = Field("", description="sql: table name or SELECT statement; sample: births, diplomas, ...")
    country: str = Field("", pattern=r"^([A-Z]{2})?$", description="sample: whose part of the sample register.")
    keys_table: str = Field("", description="sql: table of match keys (built by `oots provider build-keys`).")
    keys_url: str = Field("", description="sql: database of the key table when not the register's own.")
    where: dict[str, str] = Field(default_factory=dict, description="csv, sql: only rows with these field values.")
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="Register field of each identity attribute, and of any other field of the data model.",
    )
    legal_identifiers: dict[str, str] = Field(
        default_factory=dict, description="Identifier scheme (VAT, LEI, ...) → register field."
    )
    timeout_seconds: float = Field(10.0, gt=0, description="http: timeout of one call.")
    bearer_token: SecretStr | None = Field(None, description="http: token sent as Authorization: Bearer.")
    factory: str = Field(
        "", description="python: module:attribute of the adapter's factory (the module importable by the node)."
    )
    options: dict[str, Any] = Field(default_factory=dict, description="python: keyword arguments of the factory.")
    secret_files: dict[str, Path] = Field(
        default_factory=dict, description="python: keyword arguments read from files (secrets), name → file."
    )

    @field_validator("factory")
    @classmethod
    def _factory(cls, value: str) -> str:
        module, colon, attribute = value.partition(":")
        dotted = [*module.split("."), *attribute.split(".")]
        if value and not (colon and all(part.isidentifier() for part in dotted)):
            raise ValueError(f"{value!r} is not module:attribute (e.g. my_package.registers:CivilRegister)")
        return value

    @field_validator("options", "secret_files")
    @classmethod
    def _keyword_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        bad = [k for k in value if not k.isidentifier()]
        if bad:
            raise ValueError(f"{', '.join(map(repr, bad))} cannot be a keyword argument (letters, digits, _)")
        return value

    @model_validator(mode="after")
    def _complete(self) -> ProviderRegisterSettings:
        needs = {
            "csv": ("path",),
            "sql": ("url", "source"),
            "http": ("url",),
            "sample": ("source", "country"),
            "python": ("factory",),
        }
        missing = [k for k in needs[self.kind] if not getattr(self, k)]
        if missing:
            raise ValueError(f"a {self.kind} register needs {', '.join(missing)}")
        python_only = [k for k in ("factory", "options", "secret_files") if getattr(self, k)]
        if self.kind != "python" and python_only:
            raise ValueError(f'{", ".join(python_only)}: only for kind = "python"')
        if self.kind == "python" and (self.fields or self.legal_identifiers):
            raise ValueError("a python register makes its records itself: fields and legal_identifiers do not apply")
        both = sorted(set(self.options) & set(self.secret_files))
        if both:
            raise ValueError(f"{', '.join(both)}: given in both options and secret_files")
        return self


class ProviderMatchingSettings(Section):
    """Identity-matching rules of a data service (``docs/provider.md`` explains each)."""

    use_identifier: bool = True
    identifier_fallback: bool = Field(True, description="Go on with names when no record holds the identifier.")
    min_family_level: _LEVEL = "partial"
    min_given_level: _LEVEL = "partial"
    allow_swapped_names: bool = False
    tie_breakers: tuple[_TIE_BREAKER, ...] = ("birth_name", "place_of_birth", "gender", "post_code")
    reject_on_conflict: tuple[_TIE_BREAKER, ...] = ()
    legal_name_fallback: bool = True


class ProviderAuthoritySettings(Section):
    """The issuing authority written into the evidence and its metadata."""

    identifier: str
    scheme_id: str = Field(pattern=r"^urn:", description="EAS scheme URN, e.g. urn:cef.eu:names:identifier:EAS:9930.")
    name: str = Field(description="The name the documents show.")
    names: dict[str, str] = Field(
        default_factory=dict,
        description="The name per language code (EN, DE, ...), as the DSD lists the publisher: each is sent "
        "as an sdg:Name of its language; without them, name is sent in the service's language.",
    )

    @field_validator("names")
    @classmethod
    def _language_codes(cls, names: dict[str, str]) -> dict[str, str]:
        wrong = [code for code in names if not (len(code) == 2 and code.isascii() and code.isalpha())]
        if wrong:
            raise ValueError(f"{', '.join(map(repr, wrong))}: a language is a two-letter code (EN, DE, ...)")
        if len({code.upper() for code in names}) != len(names):
            raise ValueError("a language is given twice (codes are compared in capitals)")
        return {code.upper(): name for code, name in names.items()}


class ProviderDataServiceSettings(Section):
    """One data service: an evidence type offered from one register (``[[provider.data_services]]``)."""

    identifier: str = Field(description="DataServiceEvidenceType identifier (UUID) as the DSD lists it.")
    evidence_type_classification: str = Field(pattern=r"^https://")
    titles: dict[str, str] = Field(min_length=1, description="Title per language code (EN, DE, ...).")
    descriptions: dict[str, str] = Field(default_factory=dict)
    model: str = Field(description="Data model of the evidence (birth-certificate, ...).")
    annexes: tuple[str, ...] = Field((), description="Data models of annex documents sent with it.")
    formats: tuple[_MEDIA, ...] = ("application/pdf", "application/xml", "application/json")
    level_of_assurance: Literal["Low", "Substantial", "High"] = "Substantial"
    preview: Literal["required", "if_possible", "never"] = "if_possible"
    jurisdiction: str = Field(pattern=r"^[A-Z]{2}$")
    jurisdiction_nuts: str = ""
    language: str = Field("EN", pattern=r"^[A-Z]{2}$")
    register_name: str = Field(alias="register", description="Name of the register it reads.")
    authority: ProviderAuthoritySettings
    other_authorities: tuple[ProviderAuthoritySettings, ...] = Field(
        (), description="Further authorities it issues for: the one a request names (EvidenceProvider) is used."
    )
    matching: ProviderMatchingSettings = ProviderMatchingSettings()

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ProviderSettings(Section):
    """The evidence provider: its registers and data services."""

    samples: bool = Field(False, description="Offer the sample data services of node.country (demo network).")
    registers: tuple[ProviderRegisterSettings, ...] = ()
    data_services: tuple[ProviderDataServiceSettings, ...] = ()
    answer_deadline_seconds: float = Field(
        300,
        gt=0,
        le=86400,
        description="A request older than this (from its ebMS timestamp) is answered EDM:ERR:0005.",
    )
    max_request_bytes: int = Field(
        1_000_000, ge=10_000, description="A larger request payload is refused (EDM:ERR:0003) unread."
    )
    preview_timeout_seconds: float = Field(
        1200,
        gt=0,
        le=86400,
        description="How long a preview stays open after EDM:ERR:0002; then the held request gets EDM:ERR:0005.",
    )
    preview_retention_seconds: float = Field(
        7 * 24 * 3600.0,
        gt=0,
        description=(
            "An open preview past its deadline by this much is closed and its personal data deleted, even if "
            "its answer could not be sent (each node worker, every preview_purge_interval_seconds)."
        ),
    )
    preview_purge_interval_seconds: float = Field(
        3600.0,
        gt=0,
        description="How often each worker closes the previews past preview_retention_seconds (so at most this late).",
    )
    preview_return_origins: tuple[str, ...] = Field(
        (),
        description="Origins (scheme://host[:port]) of the requester portals the preview space may send users back to.",
    )

    @field_validator("preview_return_origins")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        out = []
        for origin in value:
            parts = urlsplit(origin.strip())
            if (
                parts.scheme not in ("http", "https")
                or not parts.hostname
                or parts.username is not None
                or parts.path not in ("", "/")
                or parts.query
                or parts.fragment
            ):
                raise ValueError(f"{origin!r} is not an origin (scheme://host[:port])")
            out.append(f"{parts.scheme}://{parts.netloc.lower()}")
        return tuple(out)

    @model_validator(mode="after")
    def _references(self) -> ProviderSettings:
        names = [r.name for r in self.registers]
        if len(set(names)) != len(names):
            raise ValueError("register names must be unique")
        for service in self.data_services:
            if service.register_name not in names:
                raise ValueError(
                    f"data service {service.identifier} names an unknown register {service.register_name!r}"
                )
        ids = [s.identifier for s in self.data_services]
        if len(set(ids)) != len(ids):
            raise ValueError("data service identifiers must be unique")
        return self


# --- section: requester ---


#: The fewest bytes of a webhook secret (an HMAC key shorter than that is guessed too easily).
WEBHOOK_SECRET_BYTES = 16


class RequesterClientSettings(Section):
    """One procedure portal allowed to use the portal API (``[[requester.clients]]``)."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="The portal's client id.")
    api_key_sha256: str = Field(
        "",
        pattern=r"^([0-9a-f]{64})?$",
        description="SHA-256 (hex) of the portal's API key; the key itself is never stored. Empty: no API key.",
    )
    client_secret_sha256: str = Field(
        "",
        pattern=r"^([0-9a-f]{64})?$",
        description="SHA-256 (hex) of the portal's OAuth2 client secret (client credentials grant). Empty: no OAuth2.",
    )
    scopes: tuple[Literal["exchanges:read", "exchanges:write"], ...] = Field(
        ("exchanges:read", "exchanges:write"), min_length=1, description="What the client may do (key and tokens)."
    )
    webhook_url: str = Field(
        "", description="Where state changes are posted (http or https); empty: no webhooks. Needs webhook_secret."
    )
    webhook_secret: SecretStr | None = Field(
        None, description=f"HMAC-SHA256 key of the webhook signatures ({WEBHOOK_SECRET_BYTES} bytes or more)."
    )

    @field_validator("webhook_url")
    @classmethod
    def _http_webhook(cls, value: str) -> str:
        if value and (urlsplit(value).scheme.lower() not in ("http", "https") or not urlsplit(value).hostname):
            raise ValueError(f"{value[:100]!r} is not an http(s) URL (such as https://portal.example/oots-webhook)")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _long_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < WEBHOOK_SECRET_BYTES:
            raise ValueError(
                f"the webhook secret has fewer than {WEBHOOK_SECRET_BYTES} bytes; make a longer one "
                "(such as openssl rand -hex 32)"
            )
        return value

    @model_validator(mode="after")
    def _some_credential(self) -> RequesterClientSettings:
        if not self.api_key_sha256 and not self.client_secret_sha256:
            raise ValueError(f"requester client {self.id!r} needs api_key_sha256 or client_secret_sha256")
        if self.webhook_url and self.webhook_secret is None:
            raise ValueError(
                f"requester client {self.id!r} has a webhook_url but no webhook_secret: its webhooks would go "
                "out unsigned (set webhook_secret or webhook_secret_file)"
            )
        return self


class RequesterSettings(Section):
    """The evidence requester: who the portal is, its API clients, previews and timeouts."""

    identifier: str = Field("", description="The evidence requester's identifier (sdg:Agent/Identifier).")
    scheme_id: str = Field("urn:cef.eu:names:identifier:EAS:9930", description="EAS scheme of the identifier.")
    name: str = Field("", description="The evidence requester's name as providers show it to users.")
    possibility_for_preview: bool = Field(True, description="Let providers ask for a preview (PossibilityForPreview).")
    response_timeout_seconds: float = Field(
        300.0, gt=0, description="How long to wait for a provider's answer before the exchange expires."
    )
    preview_timeout_seconds: float = Field(
        1800.0, gt=0, description="How long a user may take in a provider's preview space."
    )
    choice_timeout_seconds: float = Field(
        3600.0, gt=0, description="How long an exchange may wait for the user's choices and explicit request."
    )
    expiry_interval_seconds: float = Field(
        5.0,
        gt=0,
        description="How often each worker ends the exchanges whose deadline has passed (so at most this late).",
    )
    clients: tuple[RequesterClientSettings, ...] = ()
    webhook_max_attempts: int = Field(8, ge=1, le=50, description="Attempts to deliver one webhook.")
    webhook_timeout_seconds: float = Field(5.0, gt=0)
    demo_portal: bool = Field(False, description="Serve the demo procedure portal at /portal (needs [eid]).")
    token_key: SecretStr | None = Field(
        None, description="Key (hex, 32+ bytes) signing OAuth2 access tokens; empty: generated into data_dir."
    )
    token_lifetime_seconds: int = Field(300, ge=30, le=3600, description="Lifetime of an OAuth2 access token.")
    allow_http_preview_hosts: tuple[str, ...] = Field(
        (),
        description="Hosts whose plain-http preview locations are accepted (a local demo network); https otherwise.",
    )
    max_evidence_per_answer: int = Field(
        20, ge=1, le=1000, description="Most evidence items one answer may carry; more is a provider error."
    )
    max_evidence_bytes_per_exchange: int = Field(
        100 * 1024 * 1024,
        ge=1024,
        description="Most bytes of evidence kept for one exchange (all its answers); more is a provider error.",
    )

    @model_validator(mode="after")
    def _unique_clients(self) -> RequesterSettings:
        ids = [c.id for c in self.clients]
        if len(set(ids)) != len(ids):
            raise ValueError("requester client ids must be unique")
        keys: dict[str, str] = {}
        for client in self.clients:
            if client.api_key_sha256 and client.api_key_sha256 in keys:
                raise ValueError(
                    f"requester clients {keys[client.api_key_sha256]!r} and {client.id!r} have the same "
                    "api_key_sha256: a key must name one client (give each portal its own key)"
                )
            keys.setdefault(client.api_key_sha256, client.id)
        return self


# --- section: audit ---


class AuditSettings(Section):
    """The audit journal (IR 2022/1463 art. 17): keys, retention."""

    seal_key: SecretStr | None = Field(
        None, description="Key (hex, 32 bytes) sealing the hash chain; empty: generated into data_dir/audit.keys."
    )
    data_key: SecretStr | None = Field(
        None, description="Key (hex, 32 bytes) encrypting personal data at rest; empty: generated like seal_key."
    )
    retention_days: int = Field(365, ge=1, description="Entries older than this are purged by `oots audit purge`.")


# --- section: admin ---


class AdminSettings(Section):
    """The node's admin area (``/admin``): who may log in."""

    password_hash: SecretStr | None = Field(
        None,
        description="Hash of the admin password from `oots admin hash-password` (or password_hash_file); "
        "empty turns the admin area off.",
    )
    session_minutes: int = Field(60, ge=1, le=24 * 60, description="How long an admin login stays valid.")
    eid_login: bool = Field(
        False, description="Offer login with the node's eID relying party ([eid]) to the identities in eid_admins."
    )
    eid_admins: tuple[str, ...] = Field(
        (),
        description="Person identifiers (eIDAS unique identifiers, e.g. BE/BE/85072312345) allowed to log in "
        "to the admin area with eID.",
    )
    eid_level: Literal["low", "substantial", "high"] = Field(
        "high", description="Level of assurance an admin's eID login must reach."
    )

    @model_validator(mode="after")
    def _eid_needs_admins(self) -> AdminSettings:
        if self.eid_login and not self.eid_admins:
            raise ValueError("eid_login needs at least one identity in eid_admins")
        if any(not a.strip() for a in self.eid_admins):
            raise ValueError("eid_admins holds an empty identifier")
        return self


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
    as4: As4Settings = As4Settings()
    # --- field: common services ---
    common_services: CommonServicesSettings = CommonServicesSettings()
    # --- field: eid ---
    eid: EidSettings = EidSettings()
    # --- field: provider ---
    provider: ProviderSettings = ProviderSettings()
    # --- field: requester ---
    requester: RequesterSettings = RequesterSettings()
    # --- field: audit ---
    audit: AuditSettings = AuditSettings()
    # --- field: admin ---
    admin: AdminSettings = AdminSettings()

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

    def resolved(self, config_dir: Path | None) -> Settings:
        """These settings with every relative file path taken from ``config_dir``, the configuration file's
        folder, whether the path came from the file or from an ``OOTS_…`` variable: each ``Path`` setting of
        every section (``node.data_dir``, the ``[as4]`` keys, certificates, PMode and TLS files and the
        partners' certificates, ``common_services.trust_roots``, the ``[eid]`` SAML files, the CSV registers'
        ``path``, ...) and each ``paths_or_urls`` setting that is not an URL (``eid.saml_idp_metadata``).
        Absolute paths are kept. With no ``config_dir`` (settings without a file) they are kept as given:
        read from the working directory.

        The one place this rule lives (``load_settings`` applies it; ``<secret>_file`` follows it as it is
        read): whatever reads a file named in the settings reads it from the settings resolved here.
        """
        return self if config_dir is None else _taken_from(self, config_dir.absolute())

    @property
    def database_url(self) -> str:
        """The effective database URL (a SQLite file in the data directory when none is set)."""
        if self.database.url:
            return self.database.url
        return f"sqlite:///{(self.node.data_dir / 'oots.db').as_posix()}"


def _taken_from(value: Any, base: Path) -> Any:
    """``value`` (a settings model, or part of one) with every relative path in it taken from ``base``."""
    if isinstance(value, Path):
        return base / value  # an absolute path stays as it is
    if isinstance(value, BaseModel):
        update = {name: _taken_from(getattr(value, name), base) for name in type(value).model_fields}
        for name in getattr(value, "paths_or_urls", ()):
            update[name] = _path_or_url(getattr(value, name), base)
        return value.model_copy(update=update)
    if isinstance(value, list | tuple):
        return type(value)(_taken_from(item, base) for item in value)
    if isinstance(value, dict):
        return {key: _taken_from(item, base) for key, item in value.items()}
    return value


def _path_or_url(value: str, base: Path) -> str:
    if not value or urlsplit(value).scheme.lower() in ("http", "https") or value.lstrip().startswith("<"):
        return value  # an URL, or the document itself
    return str(base / value)


def describe_problems(exc: ValidationError, source: str, *, shown: int | None = None) -> ConfigError:
    """A :class:`ConfigError` naming each problem of a validated TOML document by its key path."""
    problems: list[tuple[str, str]] = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"]) or "(top level)"
        reason = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        problems.append((path, reason))
    lines = "; ".join(f"{p}: {r}" for p, r in problems[:shown])
    return ConfigError(f"{source} has {len(problems)} problem(s): {lines}", problems)


def read_toml(path: str | Path, what: str = "configuration file") -> dict[str, Any]:
    """The TOML document at ``path``; a missing, unreadable or malformed file is a :class:`ConfigError`."""
    try:
        with Path(path).open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"the {what} {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None


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
    """Read settings from the TOML file at ``path`` (optional) and the ``OOTS_`` environment, with every
    relative file path taken from the file's folder (:meth:`Settings.resolved`).

    Raises :class:`ConfigError` listing every problem with its key path.
    """
    data: dict[str, Any] = {}
    source = "the settings"
    config_dir = None
    if path is not None:
        source = str(path)
        data = read_toml(path)
        config_dir = Path(path).resolve().parent
    env_problems = _unknown_env(os.environ)
    try:
        with _reading_from(config_dir):
            settings = Settings(**data)
    except ValidationError as exc:
        found = describe_problems(exc, source)
        # An unknown OOTS_ variable is listed under its own name, not again as the unknown key it makes.
        named = {name[len(ENV_PREFIX) :].lower().replace("__", ".") for name, _ in env_problems}
        rest = [(p, r) for p, r in found.problems if not (r == "unknown key" and p in named)]
        if not env_problems:
            raise found from None
        where = f"{source} and the environment" if rest else "the environment"
        raise _problems(where, env_problems + rest) from None
    if env_problems:
        raise _problems("the environment", env_problems)
    return settings.resolved(config_dir)


def _problems(source: str, problems: list[tuple[str, str]]) -> ConfigError:
    lines = "; ".join(f"{p}: {r}" for p, r in problems)
    return ConfigError(f"{source} has {len(problems)} problem(s): {lines}", problems)
