"""Finding the Commission's Common Services by DNS NAPTR.

The Commission publishes, per country, service and API major version, a NAPTR record at
``<cc>.<eb|dsd>.v<major>.cs.<acc|prod>.oots.tech.ec.europa.eu`` whose regular expression rewrites to
the base URL of the registry (``!^.*$!https://query.cs.acc.oots.tech.ec.europa.eu/...!``). Records
are tried by ``order`` then ``preference``; only terminal (``U`` flag) records with an ``https`` URL
are used, and only when the URL's host is in one of the allowed registry domains (default: the
Commission's ``ec.europa.eu``): whoever can forge a DNS answer must not choose the registry the node
trusts with its questions. The resolver is injected (anything with dnspython's
``resolve(name, "NAPTR")``), so tests run without a network.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from oots.errors import ConfigError, NotFound, SecurityError, TransportError

__all__ = ["REGISTRY_DOMAINS", "NaptrRecord", "Resolver", "discover", "in_domains", "naptr_name", "rewrite"]

log = logging.getLogger(__name__)

#: Where the Commission's registries live (``query.cs.acc.oots.tech.ec.europa.eu``).
REGISTRY_DOMAINS = ("ec.europa.eu",)

Environment = Literal["acc", "prod"]
Registry = Literal["eb", "dsd"]


class Resolver(Protocol):
    def resolve(self, qname: str, rdtype: str) -> Iterable[Any]: ...


@dataclass(frozen=True, slots=True)
class NaptrRecord:
    order: int
    preference: int
    flags: str
    service: str
    regexp: str
    replacement: str


def naptr_name(country: str, registry: Registry, major: int, environment: Environment) -> str:
    """The DNS name of the NAPTR record for a country's registry."""
    if not re.fullmatch(r"[A-Za-z]{2}", country):
        raise ConfigError(f"{country!r} is not a two-letter country code")
    if registry not in ("eb", "dsd") or environment not in ("acc", "prod") or not 0 < major < 100:
        raise ConfigError("the registry is eb or dsd, the environment acc or prod, the major version 1 to 99")
    return f"{country.lower()}.{registry}.v{major}.cs.{environment}.oots.tech.ec.europa.eu"


def rewrite(regexp: str, name: str) -> str:
    """Apply a NAPTR substitution expression (``<delim>ERE<delim>replacement<delim>flags``) to ``name``."""
    if len(regexp) < 3:
        raise TransportError(f"NAPTR regexp {regexp!r} is malformed")
    delim = regexp[0]
    parts = regexp[1:].split(delim)
    if len(parts) != 3 or parts[2] not in ("", "i"):
        raise TransportError(f"NAPTR regexp {regexp!r} is malformed")
    pattern, replacement, flags = parts
    try:
        compiled = re.compile(pattern, re.IGNORECASE if flags == "i" else 0)
    except re.error:
        raise TransportError(f"NAPTR regexp {regexp!r} is malformed") from None
    match = compiled.search(name)
    if match is None:
        raise TransportError(f"NAPTR regexp {regexp!r} does not match {name}")
    # NAPTR back-references are \1..\9; Python's expand understands the same syntax.
    return match.expand(replacement)


def _text(value: Any) -> str:
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)


def _records(answer: Iterable[Any]) -> list[NaptrRecord]:
    out = []
    for rr in answer:
        out.append(
            NaptrRecord(
                order=int(rr.order),
                preference=int(rr.preference),
                flags=_text(rr.flags),
                service=_text(rr.service),
                regexp=_text(rr.regexp),
                replacement=_text(rr.replacement),
            )
        )
    return sorted(out, key=lambda r: (r.order, r.preference))


def in_domains(url: str, domains: Sequence[str]) -> bool:
    """Whether ``url`` is an ``https`` URL without user info whose host is one of ``domains`` or below one."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower().rstrip(".")
        parts.port  # noqa: B018 (a malformed port raises)
    except ValueError:
        return False
    if parts.scheme != "https" or "@" in parts.netloc or not host:
        return False
    return any(host == d or host.endswith("." + d) for d in (d.lower().strip(".") for d in domains) if d)


def discover(
    country: str,
    registry: Registry,
    *,
    major: int = 2,
    environment: Environment = "prod",
    resolver: Resolver | None = None,
    allowed_domains: Sequence[str] = REGISTRY_DOMAINS,
) -> str:
    """The base URL of the Commission's registry for ``country`` (``NotFound`` when there is none).

    A record naming a host outside ``allowed_domains`` is skipped; when only such records are found,
    :class:`SecurityError` (``code="registry-domain"``) names the host.
    """
    name = naptr_name(country, registry, major, environment)
    if resolver is None:
        import dns.resolver

        resolver = dns.resolver.Resolver()
    try:
        answer = resolver.resolve(name, "NAPTR")
    except Exception as exc:
        # dnspython raises NXDOMAIN, NoAnswer, Timeout, NoNameservers ...: all mean "not found here".
        raise NotFound(f"no NAPTR record at {name}: {type(exc).__name__}") from None
    refused: list[str] = []
    for record in _records(answer):
        if record.flags.upper() != "U" or not record.regexp:
            continue
        url = rewrite(record.regexp, name)
        if not url.startswith("https://"):
            continue
        if not in_domains(url, allowed_domains):
            host = urlsplit(url).hostname or url
            log.warning("the NAPTR record at %s names %s, outside the allowed registry domains; not used", name, host)
            refused.append(host)
            continue
        return url.rstrip("/")
    if refused:
        raise SecurityError(
            f"the NAPTR records at {name} name {', '.join(refused)}, outside the allowed registry domains "
            f"({', '.join(allowed_domains) or 'none'}): a forged DNS answer or a new registry host; set "
            "common_services.registry_domains (or eb_url / dsd_url) if the host is right",
            code="registry-domain",
        )
    raise NotFound(f"the NAPTR records at {name} name no https URL")
