"""Settings → registers and data services (the ``[provider]`` section of ``oots.settings``)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Collection, Iterable, Sequence
from dataclasses import fields as dataclass_fields
from functools import partial
from pathlib import Path

import sqlalchemy as sa

from oots.edm import Jurisdiction, LevelOfAssurance
from oots.errors import ConfigError, NotFound, RegisterError
from oots.provider.adapters import python_register
from oots.provider.datamodels import MODELS, DataModel, model_by_name
from oots.provider.dataservice import DataService, PreviewPolicy
from oots.provider.matching import Attribute, MatchRules, NameLevel
from oots.provider.registers import (
    CsvRegister,
    FieldMap,
    HttpJsonRegister,
    Register,
    SqlRegister,
    UnavailableRegister,
)
from oots.provider.render import Authority
from oots.provider.samples import SAMPLE_COUNTRIES, sample_data_services, sample_register
from oots.settings import ProviderAuthoritySettings, ProviderMatchingSettings, ProviderRegisterSettings, Settings

__all__ = [
    "build_data_services",
    "build_register",
    "build_registers",
    "evidence_fields",
    "load_register",
    "match_rules",
    "register_problems",
    "unavailable_services",
]

log = logging.getLogger(__name__)

_FIELD_NAMES = {f.name for f in dataclass_fields(FieldMap)} - {"legal_identifiers", "evidence"}


def _model_field_names(models: Iterable[DataModel]) -> set[str]:
    return {f.key for model in models for f in (*model.subject, *model.details)}


def evidence_fields(settings: Settings, register: str) -> frozenset[str]:
    """The fields the data models of the data services reading ``register`` (and their annexes) read;
    every data model's when none reads it."""
    models = []
    for ds in settings.provider.data_services:
        if ds.register_name == register:
            for name in (ds.model, *ds.annexes):
                try:
                    models.append(model_by_name(name))
                except NotFound:
                    continue  # told by build_data_services, with the setting's path
    return frozenset(_model_field_names(models or MODELS))


def _field_map(reg: ProviderRegisterSettings, known: Collection[str] | None = None) -> FieldMap:
    """The field map of ``reg``: each key of ``fields`` is an identity attribute, or a field of the data
    models (``known``, all of them by default) held in another column."""
    setting = f"provider.registers.{reg.name}.fields"
    base = FieldMap()
    legal = dict(reg.legal_identifiers) or dict(base.legal_identifiers)
    identity = {k: v for k, v in reg.fields.items() if k in _FIELD_NAMES}
    evidence = {k: v for k, v in reg.fields.items() if k not in _FIELD_NAMES}
    fields = FieldMap(**{**{k: getattr(base, k) for k in _FIELD_NAMES}, **identity}, legal_identifiers=legal)
    allowed = set(known) if known is not None else _model_field_names(MODELS)
    by_identity = {name: attr for name, attr in _IDENTITY_MODEL_NAMES.items() if name not in _FIELD_NAMES}
    reasons = []
    for key in sorted(evidence):
        if key in by_identity:
            reasons.append((key, f"{key} is an identity attribute: map it with {by_identity[key]}"))
        elif key not in allowed:
            reasons.append((key, "neither an identity attribute nor a field of the data model"))
    if reasons:
        listed = "; ".join(f"{setting}.{key}: {reason}" for key, reason in reasons)
        raise ConfigError(
            f"{listed} (the identity attributes are {', '.join(sorted(_FIELD_NAMES))}; "
            f"the data model's fields {', '.join(sorted(allowed))})",
            [(f"{setting}.{key}", reason) for key, reason in reasons],
        )
    return dataclasses.replace(fields, evidence=evidence)


#: Data model field names given by the identity mapping → the setting that maps them.
_IDENTITY_MODEL_NAMES = {
    "eidas_identifier": "legal_person_identifier",
    "vat": "legal_identifiers.VAT",
    "lei": "legal_identifiers.LEI",
    "eori": "legal_identifiers.EORI",
    "business_code": "legal_identifiers.BusinessCode",
}


def build_register(reg: ProviderRegisterSettings, known: Collection[str] | None = None) -> Register:
    """One register adapter from its settings (``known``: the data model fields its field map may name,
    :func:`evidence_fields`)."""
    if reg.kind == "python":
        return python_register(reg)
    fields = _field_map(reg, known)
    if reg.kind == "sample":
        return sample_register(reg.source, reg.country)
    if reg.kind == "csv":
        assert reg.path is not None
        return CsvRegister(reg.path, name=reg.name, fields=fields, where=reg.where)
    if reg.kind == "sql":
        engine = sa.create_engine(reg.url)
        keys_engine = sa.create_engine(reg.keys_url) if reg.keys_url else None
        return SqlRegister(
            engine,
            reg.source,
            name=reg.name,
            fields=fields,
            where=reg.where,
            keys_table=reg.keys_table or None,
            keys_engine=keys_engine,
        )
    headers = {"Authorization": f"Bearer {reg.bearer_token.get_secret_value()}"} if reg.bearer_token else {}
    return HttpJsonRegister(reg.url, name=reg.name, fields=fields, timeout=reg.timeout_seconds, headers=headers)


def _file_stamp(path: Path) -> object:
    """What changes when a CSV file is written again (``None`` while there is no file)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_size, stat.st_mtime_ns)


def load_register(reg: ProviderRegisterSettings, known: Collection[str] | None = None) -> Register:
    """The register of ``reg`` for a running node: a CSV or SQL register that cannot be loaded (a bad
    row, its database unreachable) becomes an :class:`UnavailableRegister` that loads it later, instead
    of stopping the node. A mistake in the settings themselves (a column the register lacks, an unknown
    attribute) still raises :class:`ConfigError`."""
    try:
        return build_register(reg, known)
    except RegisterError as exc:
        if reg.kind not in ("csv", "sql"):
            raise
        stamp = partial(_file_stamp, reg.path) if reg.kind == "csv" and reg.path is not None else None
        return UnavailableRegister(reg.name, partial(build_register, reg, known), exc.message, stamp=stamp)


def build_registers(settings: Settings) -> dict[str, Register]:
    return {reg.name: load_register(reg, evidence_fields(settings, reg.name)) for reg in settings.provider.registers}


def register_problems(settings: Settings) -> list[tuple[str, str]]:
    """``(setting, reason)`` of each CSV or SQL register that cannot be loaded now (``oots config check``):
    the file or database read as the node reads it at start."""
    problems: list[tuple[str, str]] = []
    for reg in settings.provider.registers:
        if reg.kind not in ("csv", "sql"):
            continue
        try:
            build_register(reg, evidence_fields(settings, reg.name))
        except ConfigError as exc:
            problems += exc.problems or [(f"provider.registers.{reg.name}", exc.message)]
        except RegisterError as exc:
            problems.append((f"provider.registers.{reg.name}", exc.message))
    return problems


def unavailable_services(services: Sequence[DataService]) -> dict[str, str]:
    """Data service identifier → why its register is unavailable, for each that is now (a register due
    for a new attempt is tried first: this may wait for a database to answer)."""
    out = {}
    for service in services:
        register = service.register
        if isinstance(register, UnavailableRegister) and (problem := register.refresh()) is not None:
            out[service.identifier] = problem
    return out


_LEVELS = {"exact": NameLevel.EXACT, "reordered": NameLevel.REORDERED, "partial": NameLevel.PARTIAL}


def match_rules(m: ProviderMatchingSettings) -> MatchRules:
    return MatchRules(
        use_identifier=m.use_identifier,
        identifier_fallback=m.identifier_fallback,
        min_family_level=_LEVELS[m.min_family_level],
        min_given_level=_LEVELS[m.min_given_level],
        allow_swapped_names=m.allow_swapped_names,
        tie_breakers=tuple(Attribute(a) for a in m.tie_breakers),
        reject_on_conflict=tuple(Attribute(a) for a in m.reject_on_conflict),
        legal_name_fallback=m.legal_name_fallback,
    )


def _authority(a: ProviderAuthoritySettings) -> Authority:
    return Authority(a.identifier, a.scheme_id, a.name, tuple(a.names.items()))


def build_data_services(settings: Settings) -> list[DataService]:
    """The node's data services: the configured ones, plus the samples of ``node.country`` when asked."""
    provider = settings.provider
    registers = build_registers(settings)
    services: list[DataService] = []
    if provider.samples:
        if settings.node.country not in SAMPLE_COUNTRIES:
            raise ConfigError(
                f"provider.samples: there are no sample registers for {settings.node.country} "
                f"(there are for {', '.join(SAMPLE_COUNTRIES)})"
            )
        services += sample_data_services(settings.node.country)
    for n, ds in enumerate(provider.data_services):
        try:
            model = model_by_name(ds.model)
            annexes = tuple(model_by_name(a) for a in ds.annexes)
        except NotFound as exc:
            raise ConfigError(f"provider.data_services.{n}.model: {exc}") from None
        services.append(
            DataService(
                identifier=ds.identifier,
                evidence_type_classification=ds.evidence_type_classification,
                titles={k.upper(): v for k, v in ds.titles.items()},
                descriptions={k.upper(): v for k, v in ds.descriptions.items()},
                model=model,
                annexes=annexes,
                register=registers[ds.register_name],
                authority=_authority(ds.authority),
                other_authorities=tuple(_authority(a) for a in ds.other_authorities),
                jurisdiction=Jurisdiction(ds.jurisdiction, ds.jurisdiction_nuts or None),
                formats=tuple(ds.formats),
                level_of_assurance=LevelOfAssurance(ds.level_of_assurance),
                preview=PreviewPolicy(ds.preview),
                rules=match_rules(ds.matching),
                language=ds.language,
            )
        )
    ids = [s.identifier for s in services]
    if len(set(ids)) != len(ids):
        raise ConfigError("provider: two data services have the same identifier")
    for service in services:
        if isinstance(service.register, UnavailableRegister):
            log.error(
                "provider: data service %s is unavailable (setting provider.registers.%s): %s. It is answered "
                "EDM:ERR:0008 until the register loads; the node tries again by itself",
                service.identifier,
                service.register.name,
                service.register.problem,
            )
    return services
