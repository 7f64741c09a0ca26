"""The verifying client against the real server app in process: typed results, one error type, trust."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx
import pytest

from cs.cs_helpers import DEMO, AppTransport
from oots import edm
from oots.cs.catalogue import Catalogue
from oots.cs.client import AdditionalInputRequired, CommonServicesClient, RegistryError
from oots.cs.datafile import load_catalogue
from oots.cs.keys import CsPki
from oots.cs.server import create_app
from oots.cs.trust import TrustStore
from oots.errors import ConfigError, SecurityError
from oots.settings import Settings

BASE = "http://testserver"


@pytest.fixture(scope="module")
def demo() -> Catalogue:
    return load_catalogue(DEMO)


def make_client(app: Any, root: Any, **kw: Any) -> tuple[CommonServicesClient, AppTransport]:
    transport = AppTransport(app, kw.pop("mangle", None))
    client = CommonServicesClient(
        eb_url=BASE, dsd_url=BASE + "/dsd", trust=TrustStore((root,)), transport=transport, **kw
    )
    return client, transport


def test_journey(demo: Catalogue, pki: CsPki) -> None:
    client, _ = make_client(create_app(demo, pki.signer()), pki.root)
    (req,) = client.requirements(procedure_id="R1", country_code="DE")
    assert isinstance(req, edm.Requirement)
    with_lists = client.evidence_types(req.identifier, country_code="DE")
    etc = with_lists.evidence_type_lists[0].evidence_types[0].evidence_type_classification
    with pytest.raises(AdditionalInputRequired) as info:
        client.data_services(etc, "DE")
    more = info.value
    assert more.code == "DSD:ERR:0005"
    assert more.jurisdiction_determination is not None
    assert more.data_service_evidence_type is not None
    (dset,) = client.data_services(
        etc,
        "DE",
        jurisdiction_admin_l2="DE6",
        jurisdiction_context_id=more.jurisdiction_determination.jurisdiction_context_id,
    )
    assert dset.access_services[0].publisher.names[0].value == "Registry Office Hamburg-Mitte"


def test_classification_values(demo: Catalogue, pki: CsPki) -> None:
    client, _ = make_client(create_app(demo, pki.signer()), pki.root)
    etc = next(
        e.classification for e in demo.evidence_types if e.country == "IT" and e.titles[0][1] == "Degree certificate"
    )
    with pytest.raises(AdditionalInputRequired) as info:
        client.data_services(etc, "IT")
    (concept,) = info.value.classification_concepts
    (dset,) = client.data_services(etc, "IT", classification_values={concept.identifier.value: "AFAM"})
    assert dset.access_services[0].publisher.identifier.value == "m_univ-afam"


def test_regrep_errors_are_registry_errors(demo: Catalogue, pki: CsPki) -> None:
    client, _ = make_client(create_app(demo, pki.signer()), pki.root)
    with pytest.raises(RegistryError) as info:
        client.requirements(procedure_id="W2")
    assert info.value.code == "EB:ERR:0001"
    with pytest.raises(RegistryError) as info:
        client.evidence_types("https://sr.example/requirements/none")
    assert info.value.code == "EB:ERR:0002"


def test_cache_reuses_answers_until_ttl(demo: Catalogue, pki: CsPki) -> None:
    now = [0.0]
    client, transport = make_client(create_app(demo, pki.signer()), pki.root, cache_ttl=60, clock=lambda: now[0])
    client.requirements(country_code="NL")
    client.requirements(country_code="NL")
    assert transport.requests == 1
    now[0] = 61
    client.requirements(country_code="NL")
    assert transport.requests == 2


def test_the_dsds_question_is_kept_like_an_answer(demo: Catalogue, pki: CsPki) -> None:
    # DSD:ERR:0005 depends on the query alone: asked again, the same question comes from the cache
    now = [0.0]
    client, transport = make_client(create_app(demo, pki.signer()), pki.root, cache_ttl=60, clock=lambda: now[0])
    (req,) = client.requirements(procedure_id="R1", country_code="DE")
    etc = client.evidence_types(req.identifier, country_code="DE").evidence_type_lists[0].evidence_types[0]
    classification = etc.evidence_type_classification
    asked = transport.requests
    with pytest.raises(AdditionalInputRequired) as first:
        client.data_services(classification, "DE")
    assert transport.requests == asked + 1
    with pytest.raises(AdditionalInputRequired) as again:
        client.data_services(classification, "DE")
    assert transport.requests == asked + 1
    assert again.value.code == "DSD:ERR:0005"
    assert again.value.jurisdiction_determination == first.value.jurisdiction_determination
    assert again.value.data_service_evidence_type == first.value.data_service_evidence_type
    now[0] = 61
    with pytest.raises(AdditionalInputRequired):
        client.data_services(classification, "DE")
    assert transport.requests == asked + 2


def test_other_refusals_are_not_kept(demo: Catalogue, pki: CsPki) -> None:
    client, transport = make_client(create_app(demo, pki.signer()), pki.root, cache_ttl=60)
    for expected_requests in (1, 2):
        with pytest.raises(RegistryError) as info:
            client.requirements(procedure_id="W2")
        assert info.value.code == "EB:ERR:0001"
        assert transport.requests == expected_requests


def test_unsigned_answers_are_refused(demo: Catalogue, pki: CsPki) -> None:
    client, _ = make_client(create_app(demo, None), pki.root)
    with pytest.raises(SecurityError) as info:
        client.requirements(country_code="NL")
    assert info.value.code == "unsigned"


def test_tampered_answers_are_refused(demo: Catalogue, pki: CsPki) -> None:
    def tamper(body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
        return body.replace(b"Proof of", b"Proof on"), headers

    client, _ = make_client(create_app(demo, pki.signer()), pki.root, mangle=tamper)
    with pytest.raises(SecurityError) as info:
        client.requirements(country_code="NL")
    assert info.value.code == "bad-digest"


def test_untrusted_signer_is_refused(demo: Catalogue, pki: CsPki, other_pki: CsPki) -> None:
    client, _ = make_client(create_app(demo, other_pki.signer()), pki.root)
    with pytest.raises(SecurityError) as info:
        client.requirements(country_code="NL")
    assert info.value.code == "untrusted-chain"


def test_http_failures_are_registry_errors(pki: CsPki) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    trust = TrustStore((pki.root,))
    down = CommonServicesClient(eb_url=BASE, dsd_url=BASE, trust=trust, transport=httpx.MockTransport(refuse))
    with pytest.raises(RegistryError) as info:
        down.requirements()
    assert info.value.http_status is None
    broken = CommonServicesClient(
        eb_url=BASE, dsd_url=BASE, trust=trust, transport=httpx.MockTransport(lambda r: httpx.Response(503))
    )
    with pytest.raises(RegistryError) as info:
        broken.requirements()
    assert info.value.http_status == 503


def test_v1_api_without_signatures(demo: Catalogue, pki: CsPki) -> None:
    client, _ = make_client(create_app(demo, None), pki.root, version=edm.Version.EDM_V1, require_signature=False)
    assert (
        client.requirements(procedure_id="X1", country_code="ES")[0].names[0].value
        == "Proof of registration of a company"
    )


class Naptr:
    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers

    def resolve(self, qname: str, rdtype: str) -> Iterable[Any]:
        import dns.rdata
        import dns.rdataclass
        import dns.rdatatype

        return [
            dns.rdata.from_text(
                dns.rdataclass.IN, dns.rdatatype.NAPTR, f'10 10 "U" "x" "!^.*$!{self.answers[qname]}!" .'
            )
        ]


def test_from_settings_discovers_the_commission(clean_env: pytest.MonkeyPatch) -> None:
    settings = Settings(node={"country": "FR"}, common_services={"environment": "acc"})
    resolver = Naptr(
        {
            "fr.eb.v2.cs.acc.oots.tech.ec.europa.eu": "https://query.cs.acc.oots.tech.ec.europa.eu/eb",
            "fr.dsd.v2.cs.acc.oots.tech.ec.europa.eu": "https://query.cs.acc.oots.tech.ec.europa.eu/dsd",
        }
    )
    client = CommonServicesClient.from_settings(settings, resolver=resolver)
    assert client.eb_url.endswith("/eb")
    assert client.dsd_url.endswith("/dsd")
    assert client.trust is not None
    assert "2 test" in client.trust.roots[0].subject.rfc4514_string()
    with pytest.raises(ConfigError):
        CommonServicesClient.from_settings(Settings(common_services={"environment": "local"}))


def test_async_client_journey_and_refusals(demo: Catalogue, pki: CsPki, other_pki: CsPki) -> None:
    import asyncio

    from oots.cs.client import AsyncCommonServicesClient

    async def journey() -> None:
        transport = httpx.ASGITransport(app=create_app(demo, pki.signer()))
        async with AsyncCommonServicesClient(
            eb_url=BASE, dsd_url=BASE, trust=TrustStore((pki.root,)), transport=transport
        ) as client:
            (req,) = await client.requirements(procedure_id="T3", country_code="ES")
            lists = (await client.evidence_types(req.identifier, country_code="ES")).evidence_type_lists
            etc = lists[0].evidence_types[0].evidence_type_classification
            (dset,) = await client.data_services(etc, "ES")
            assert dset.access_services[0].identifier.value == "AP_ES_01"
            de = next(e for e in demo.evidence_types if e.country == "DE" and e.titles[0][1] == "Birth certificate")
            with pytest.raises(AdditionalInputRequired):
                await client.data_services(de.classification, "DE")
            with pytest.raises(RegistryError) as info:
                await client.requirements(procedure_id="W1")
            assert info.value.code == "EB:ERR:0001"
        untrusted = httpx.ASGITransport(app=create_app(demo, other_pki.signer()))
        async with AsyncCommonServicesClient(
            eb_url=BASE, dsd_url=BASE, trust=TrustStore((pki.root,)), transport=untrusted
        ) as client:
            with pytest.raises(SecurityError):
                await client.requirements()

    asyncio.run(journey())


def test_the_core_works_without_a_transport(demo: Catalogue, pki: CsPki) -> None:
    """The sans-I/O core: a query is data, the reply is status, headers and bytes; the cache answers repeats."""
    from oots.cs.client import ClientCore

    now = [0.0]
    core = ClientCore(eb_url=BASE + "/", dsd_url=BASE + "/dsd", trust=TrustStore((pki.root,)), clock=lambda: now[0])
    query = core.requirements_query(procedure_id="R1", country_code="DE")
    assert query.url == BASE + "/rest/search"
    assert dict(query.params)["procedure-id"] == "R1"
    assert core.cached(query) is None
    request = httpx.Request("GET", query.url, params=query.params, headers=core.headers)
    reply = AppTransport(create_app(demo, pki.signer())).handle_request(request)
    (req,) = core.receive(query, reply.status_code, reply.headers, reply.content)
    assert core.cached(query) == (req,)
    now[0] = 301.0
    assert core.cached(query) is None
    with pytest.raises(SecurityError):
        core.receive(query, 200, {}, reply.content)  # the signature headers are gone
    with pytest.raises(RegistryError) as info:
        core.receive(query, 503, {}, b"")
    assert info.value.http_status == 503


class Replay(httpx.BaseTransport):
    """Answers every request with one genuine signed reply recorded earlier (what a forged DNS record could do)."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.reply = (status, {k: v for k, v in headers.items() if k.lower() != "content-length"}, body)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        status, headers, body = self.reply
        return httpx.Response(status, headers=headers, content=body)


def _recorded(app: Any, query: Any, core: Any) -> Replay:
    request = httpx.Request("GET", query.url, params=query.params, headers=core.headers)
    reply = AppTransport(app).handle_request(request)
    return Replay(reply.status_code, dict(reply.headers), reply.content)


def _classification(demo: Catalogue, country: str, title: str) -> str:
    return next(e.classification for e in demo.evidence_types if e.country == country and e.titles[0][1] == title)


def test_a_signed_answer_to_another_question_is_refused(demo: Catalogue, pki: CsPki) -> None:
    app = create_app(demo, pki.signer())
    trust = TrustStore((pki.root,))
    honest = CommonServicesClient(eb_url=BASE, dsd_url=BASE + "/dsd", trust=trust, transport=AppTransport(app))
    be = _classification(demo, "BE", "Birth certificate")
    fr = _classification(demo, "FR", "Birth certificate")
    replay = _recorded(app, honest.data_services_query(be, "BE"), honest)
    victim = CommonServicesClient(eb_url=BASE, dsd_url=BASE + "/dsd", trust=trust, transport=replay)
    with pytest.raises(RegistryError) as info:
        victim.data_services(fr, "FR")
    assert info.value.code == "answer-mismatch"
    assert "BE" in info.value.message
    # the same evidence type asked for in another country: the providers are Belgian
    with pytest.raises(RegistryError, match="competent in BE, not in FR"):
        victim.data_services(be, "FR")
    # the answer to the question asked is accepted, in either Semantic Repository spelling
    (dset,) = victim.data_services(be.replace("sr.oots.tech.ec.europa.eu", "sr.oots.tech.europa.eu"), "BE")
    assert dset.access_services[0].publisher.jurisdiction.admin_unit_level_1 == "BE"


def test_an_evidence_broker_answer_about_another_requirement_is_refused(demo: Catalogue, pki: CsPki) -> None:
    app = create_app(demo, pki.signer())
    trust = TrustStore((pki.root,))
    honest = CommonServicesClient(eb_url=BASE, dsd_url=BASE + "/dsd", trust=trust, transport=AppTransport(app))
    (birth,) = honest.requirements(procedure_id="R1", country_code="DE")
    (company,) = honest.requirements(procedure_id="X1", country_code="DE")
    replay = _recorded(app, honest.evidence_types_query(birth.identifier, country_code="DE"), honest)
    victim = CommonServicesClient(eb_url=BASE, dsd_url=BASE + "/dsd", trust=trust, transport=replay)
    with pytest.raises(RegistryError, match="instead of"):
        victim.evidence_types(company.identifier, country_code="DE")
    with pytest.raises(RegistryError, match="not one of FR"):
        victim.evidence_types(birth.identifier, country_code="FR")
    assert victim.evidence_types(birth.identifier, country_code="DE").identifier == birth.identifier
    replay = _recorded(app, honest.requirements_query(procedure_id="R1", country_code="DE"), honest)
    victim = CommonServicesClient(eb_url=BASE, dsd_url=BASE + "/dsd", trust=trust, transport=replay)
    with pytest.raises(RegistryError, match="no procedure in FR"):
        victim.requirements(procedure_id="R1", country_code="FR")
    with pytest.raises(RegistryError, match="not one of procedure X1"):
        victim.requirements(procedure_id="X1", country_code="DE")


def test_more_input_asked_about_another_evidence_type_is_refused(demo: Catalogue, pki: CsPki) -> None:
    app = create_app(demo, pki.signer())
    trust = TrustStore((pki.root,))
    honest = CommonServicesClient(eb_url=BASE, dsd_url=BASE + "/dsd", trust=trust, transport=AppTransport(app))
    de = _classification(demo, "DE", "Birth certificate")
    replay = _recorded(app, honest.data_services_query(de, "DE"), honest)
    victim = CommonServicesClient(eb_url=BASE, dsd_url=BASE + "/dsd", trust=trust, transport=replay)
    with pytest.raises(AdditionalInputRequired):
        victim.data_services(de, "DE")
    with pytest.raises(RegistryError) as info:
        victim.data_services(_classification(demo, "FR", "Birth certificate"), "FR")
    assert not isinstance(info.value, AdditionalInputRequired)
    assert info.value.code == "answer-mismatch"


def test_a_cached_answer_is_checked_against_its_question_too(demo: Catalogue, pki: CsPki) -> None:
    from oots.cs.client import ClientCore, Query

    core = ClientCore(eb_url=BASE, dsd_url=BASE + "/dsd", trust=TrustStore((pki.root,)))
    be = _classification(demo, "BE", "Birth certificate")
    query = core.data_services_query(be, "BE")
    replay = _recorded(create_app(demo, pki.signer()), query, core)
    status, headers, body = replay.reply
    core.receive(query, status, headers, body)
    assert core.cached(query)
    # an entry kept under a question it does not answer (a bug, a poisoned cache) is not used
    wrong = Query(query.base, tuple((k, "FR" if k == "country-code" else v) for k, v in query.params), query.pick)
    core._cache[(wrong.base, wrong.params)] = core._cache[(query.base, query.params)]
    with pytest.raises(RegistryError, match="not in FR"):
        core.cached(wrong)


def test_an_old_signed_answer_is_refused(demo: Catalogue, pki: CsPki) -> None:
    import datetime as dt

    def signed_two_hours_ago(body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
        old = pki.signer().headers(body, now=dt.datetime.now(dt.UTC) - dt.timedelta(hours=2))
        return body, {**headers, **old}

    client, _ = make_client(create_app(demo, pki.signer()), pki.root, mangle=signed_two_hours_ago)
    with pytest.raises(SecurityError) as info:
        client.requirements(country_code="NL")
    assert info.value.code == "signing-time"
    lenient, _ = make_client(create_app(demo, pki.signer()), pki.root, mangle=signed_two_hours_ago, max_age=3 * 3600)
    assert lenient.requirements(country_code="NL")


def test_signing_time_bounds_come_from_the_settings(clean_env: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from oots.cs.keys import generate_pki, write_pki

    paths = write_pki(generate_pki(), tmp_path)
    settings = Settings(
        common_services={
            "environment": "local",
            "eb_url": BASE,
            "dsd_url": BASE,
            "trust_roots": [str(paths["trust"])],
            "signature_max_age_seconds": 120,
            "clock_skew_seconds": 30,
        }
    )
    client = CommonServicesClient.from_settings(settings)
    assert client.max_age.total_seconds() == 120
    assert client.clock_skew.total_seconds() == 30
    defaults = CommonServicesClient.from_settings(
        Settings(
            common_services={
                "environment": "local",
                "eb_url": BASE,
                "dsd_url": BASE,
                "trust_roots": [str(paths["trust"])],
            }
        )
    )
    assert defaults.max_age.total_seconds() == 3600


def test_allowed_signers_come_from_the_settings(clean_env: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from oots.cs.keys import generate_pki, write_pki

    paths = write_pki(generate_pki(), tmp_path)
    local = {"environment": "local", "eb_url": BASE, "dsd_url": BASE, "trust_roots": [str(paths["trust"])]}
    client = CommonServicesClient.from_settings(Settings(common_services={**local, "allowed_signers": ["CN=X"]}))
    assert client.trust is not None
    assert client.trust.signers == ("CN=X",)
    acc = CommonServicesClient.from_settings(
        Settings(common_services={"environment": "acc", "eb_url": BASE, "dsd_url": BASE})
    )
    assert acc.trust is not None
    assert acc.trust.signer_rules(acc.trust.roots[0]) == ("OU=OOTS,CN=EC-OOTS-CS-*",)
    with pytest.raises(ConfigError, match="allowed signer"):
        CommonServicesClient.from_settings(Settings(common_services={**local, "allowed_signers": ["nobody"]}))
