"""NAPTR discovery of the Commission's Common Services, with an injected resolver."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import pytest

from oots.cs.discovery import discover, naptr_name, rewrite
from oots.errors import ConfigError, NotFound, TransportError


class FakeResolver:
    """Answers NAPTR queries from a table of zone-file records (parsed by dnspython itself)."""

    def __init__(self, zone: dict[str, list[str]]) -> None:
        self.zone = zone
        self.asked: list[tuple[str, str]] = []

    def resolve(self, qname: str, rdtype: str) -> Iterable[Any]:
        self.asked.append((qname, rdtype))
        if qname not in self.zone:
            raise dns.resolver.NXDOMAIN()
        return [dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.NAPTR, text) for text in self.zone[qname]]


def test_name() -> None:
    assert naptr_name("FR", "dsd", 2, "acc") == "fr.dsd.v2.cs.acc.oots.tech.ec.europa.eu"
    with pytest.raises(ConfigError):
        naptr_name("FRA", "dsd", 2, "acc")


def test_discovers_by_order_and_preference() -> None:
    name = "fr.eb.v2.cs.acc.oots.tech.ec.europa.eu"
    resolver = FakeResolver(
        {
            name: [
                '100 20 "U" "Meta:SMP" "!^.*$!https://second.example/eb!" .',
                '100 10 "U" "Meta:SMP" "!^.*$!https://query.cs.acc.oots.tech.ec.europa.eu/eb/!" .',
                '50 10 "S" "x" "" other.example.',
            ]
        }
    )
    url = discover("FR", "eb", environment="acc", resolver=resolver)
    assert url == "https://query.cs.acc.oots.tech.ec.europa.eu/eb"
    assert resolver.asked == [(name, "NAPTR")]


def test_plain_http_and_missing_records_are_not_found() -> None:
    name = "de.dsd.v2.cs.prod.oots.tech.ec.europa.eu"
    resolver = FakeResolver({name: ['10 10 "U" "x" "!^.*$!http://insecure.example/!" .']})
    with pytest.raises(NotFound):
        discover("DE", "dsd", resolver=resolver)
    with pytest.raises(NotFound):
        discover("NL", "dsd", resolver=resolver)


def test_rewrite_with_back_reference() -> None:
    assert rewrite("!^([a-z]{2})\\..*$!https://cs.example/\\1!", "fr.eb.v2") == "https://cs.example/fr"
    with pytest.raises(TransportError):
        rewrite("!(!x!", "a")
    with pytest.raises(TransportError):
        rewrite("!a!b", "a")


def test_a_registry_outside_the_allowed_domains_is_not_used() -> None:
    from oots.errors import SecurityError

    name = "fr.dsd.v2.cs.prod.oots.tech.ec.europa.eu"
    forged = FakeResolver({name: ['10 10 "U" "x" "!^.*$!https://dsd.attacker.example/dsd!" .']})
    with pytest.raises(SecurityError) as info:
        discover("FR", "dsd", resolver=forged)
    assert info.value.code == "registry-domain"
    assert "dsd.attacker.example" in info.value.message
    assert "registry_domains" in info.value.message
    for url in (
        "https://ec.europa.eu.attacker.example/dsd",
        "https://notec.europa.eu/dsd",
        "https://query.cs.oots.tech.ec.europa.eu@attacker.example/dsd",
    ):
        resolver = FakeResolver({name: [f'10 10 "U" "x" "!^.*$!{url}!" .']})
        with pytest.raises(SecurityError):
            discover("FR", "dsd", resolver=resolver)
    # a forged record beside the Commission's is skipped, whatever its order
    mixed = FakeResolver(
        {
            name: [
                '10 10 "U" "x" "!^.*$!https://dsd.attacker.example/dsd!" .',
                '20 10 "U" "x" "!^.*$!https://query.cs.oots.tech.ec.europa.eu/dsd!" .',
            ]
        }
    )
    assert discover("FR", "dsd", resolver=mixed) == "https://query.cs.oots.tech.ec.europa.eu/dsd"
    # an operator can allow another domain
    assert discover("FR", "dsd", resolver=forged, allowed_domains=["attacker.example"]).startswith("https://dsd.")


def test_registry_domains_come_from_the_settings(clean_env: pytest.MonkeyPatch) -> None:
    from oots.cs.client import CommonServicesClient
    from oots.errors import SecurityError
    from oots.settings import Settings

    zone = {
        "fr.eb.v2.cs.acc.oots.tech.ec.europa.eu": ['10 10 "U" "x" "!^.*$!https://cs.example.org/eb!" .'],
        "fr.dsd.v2.cs.acc.oots.tech.ec.europa.eu": ['10 10 "U" "x" "!^.*$!https://cs.example.org/dsd!" .'],
    }
    settings = Settings(node={"country": "FR"}, common_services={"environment": "acc"})
    with pytest.raises(SecurityError):
        CommonServicesClient.from_settings(settings, resolver=FakeResolver(zone))
    allowed = Settings(
        node={"country": "FR"}, common_services={"environment": "acc", "registry_domains": ["example.org"]}
    )
    client = CommonServicesClient.from_settings(allowed, resolver=FakeResolver(zone))
    assert client.dsd_url == "https://cs.example.org/dsd"
