"""Settings → registers and data services (the ``[provider]`` section of ``oots.settings``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import fields as dataclass_fields
from functools import partial
from pathlib import Path

import sqlalchemy as sa

from oots.edm import Jurisdiction, LevelOfAssurance
from oots.errors import ConfigError, NotFound, RegisterError
from oots.provider.adapters import python_register
from oots.provider.datamodels import model_by_name
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
from oots.settings import ProviderMatchingSettings, ProviderRegisterSettings, Settings

__all__ = [
    "build_data_services",
    "build_register",
    "build_registers",
    "load_register",
    "match_rules",
    "register_problems",
    "unavailable_services",
]

log = logging.getLogger(__name__)

_FIELD_NAMES = {f.name for f in dataclass_fields(FieldMap)} - {"legal_identifiers"}


def _field_map(reg: ProviderRegisterSettings) -> FieldMap:
    unknown = sorted(set(reg.fields) - _FIELD_NAMES)
    if unknown:
        raise ConfigError(
            f"provider.registers.{reg.name}.fields: unknown attribute(s) {', '.join(unknown)}",
            [(f"provider.registers.{reg.name}.fields.{k}", "unknown attribute") for k in unknown],
        )
    base = FieldMap()
    legal = dict(reg.legal_identifiers) or dict(base.legal_identifiers)
    return FieldMap(**{**{k: getattr(base, k) for k in _FIELD_NAMES}, **reg.fields}, legal_identifiers=legal)


def build_register(reg: ProviderRegisterSettings) -> Register:
    """One register adapter from its settings."""
    if reg.kind == "python":
        return python_register(reg)
    fields = _field_map(reg)
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


def load_register(reg: ProviderRegisterSettings) -> Register:
    """The register of ``reg`` for a running node: a CSV or SQL register that cannot be loaded (a bad
    row, its database unreachable) becomes an :class:`UnavailableRegister` that loads it later, instead
    of stopping the node. A mistake in the settings themselves (a column the register lacks, an unknown
    attribute) still raises :class:`ConfigError`."""
    try:
        return build_register(reg)
    except RegisterError as exc:
        if reg.kind not in ("csv", "sql"):
            raise
        stamp = partial(_file_stamp, reg.path) if reg.kind == "csv" and reg.path is not None else None
        return UnavailableRegister(reg.name, partial(build_register, reg), exc.message, stamp=stamp)


def build_registers(settings: Settings) -> dict[str, Register]:
    return {reg.name: load_register(reg) for reg in settings.provider.registers}


def register_problems(settings: Settings) -> list[tuple[str, str]]:
    """``(setting, reason)`` of each CSV or SQL register that cannot be loaded now (``oots config check``):
    the file or database read as the node reads it at start."""
    problems: list[tuple[str, str]] = []
    for reg in settings.provider.registers:
        if reg.kind not in ("csv", "sql"):
            continue
        try:
            build_register(reg)
        except ConfigError as exc:
            problems += exc.problems or [(f"provider.registers.{reg.name}", exc.message)]
        except RegisterError as exc:
            problems.append((f"provider.registers.{reg.name}", exc.message))
    return problems


def unavailable_services(services: Sequence[DataService]) -> dict[str, str]:
    """Data service identifier → why its register is unavailable, for each that is now."""
    out = {}
    for service in services:
        register = service.register
        if isinstance(register, UnavailableRegister) and register.problem is not None:
            out[service.identifier] = register.problem
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
                authority=Authority(ds.authority.identifier, ds.authority.scheme_id, ds.authority.name),
                other_authorities=tuple(Authority(a.identifier, a.scheme_id, a.name) for a in ds.other_authorities),
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
