# ruff: noqa: F811  (fixtures are imported from msh_doubles / msh_world and used as arguments)
from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from msh_doubles import cert_file, make_cert, partner_cert  # noqa: F401 - fixtures

from oots.as4 import pmode as pm
from oots.errors import ConfigError, NotFound
from oots.settings import load_settings

DOMIBUS = "edelivery/domibus-pmode-oots-example.xml"


@pytest.fixture
def domibus_bytes(spec_dir: Path) -> bytes:
    return (spec_dir / DOMIBUS).read_bytes()


def test_domibus_example_loads(domibus_bytes: bytes) -> None:
    pmodes = pm.load_domibus_pmode(domibus_bytes)
    assert pmodes.own == pm.Party("blue_gw", pm.OOTS_PARTY_ID_TYPE, pm.GATEWAY_ROLE)
    assert [p.name for p in pmodes.partners] == ["blue_gw"]
    assert pmodes.partners[0].endpoint == "http://localhost:8080/domibus/services/msh"
    assert [leg.name for leg in pmodes.legs] == ["ootsRequestLeg", "ootsResponseLeg", "ootsErrorLeg", "testServiceCase"]
    request = pmodes.leg("QueryManager", "ExecuteQueryRequest", "urn:oasis:names:tc:ebcore:ebrs:ebms:binding:1.0")
    assert request.payload_service.compression_type == "application/gzip"
    assert pmodes.leg("QueryManager", "ExecuteQueryResponse").payload_service.compression_type is None
    assert pm.PropertyDef("originalSender", True) in request.business_info.properties
    assert pm.PropertyDef("ExchangeId", False) in request.business_info.properties
    assert request.business_info.mpc == pm.DEFAULT_MPC
    assert pmodes.test_leg().is_test
    # "12;4;CONSTANT": four retries spread evenly over twelve minutes.
    ra = request.reception_awareness
    assert ra is not None
    assert ra.retry.offsets == (180.0, 360.0, 540.0, 720.0)
    assert ra.retry.strategy is pm.RetryStrategy.CONSTANT
    assert ra.duplicate_detection.enabled
    assert pmodes.mep == pm.MEP_ONE_WAY
    assert pmodes.mep_binding == pm.MEP_PUSH
    assert pmodes.agreement is None  # agreementEmpty: no eb:AgreementRef
    assert request.security.send_receipt_non_repudiation


def test_domibus_example_validates_except_certificates(domibus_bytes: bytes) -> None:
    pmodes = pm.load_domibus_pmode(domibus_bytes)
    assert pm.validate(pmodes, require_certificates=False) == []
    problems = pm.validate(pmodes)
    assert [p.path for p in problems] == [
        "partners[blue_gw].signing_certificate",
        "partners[blue_gw].encryption_certificate",
    ]
    with pytest.raises(ConfigError) as info:
        pmodes.check()
    assert ("partners[blue_gw].signing_certificate", "is missing") in info.value.problems


def test_domibus_import_collects_every_broken_reference(domibus_bytes: bytes) -> None:
    broken = (
        domibus_bytes.replace(b'action="executeQueryRequest"', b'action="nope"')
        .replace(b'<leg name="ootsErrorLeg"/>', b'<leg name="missingLeg"/>')
        .replace(b'retry="12;4;CONSTANT"', b'retry="12;four;CONSTANT"')
    )
    with pytest.raises(ConfigError) as info:
        pm.load_domibus_pmode(broken)
    paths = [p for p, _ in info.value.problems]
    assert "legConfigurations[ootsRequestLeg].action" in paths
    assert "process[ootsProcess].legs[missingLeg]" in paths
    assert "as4.receptionAwareness[receptionAwareness].retry" in paths


@pytest.mark.parametrize(
    "data",
    [b"<configuration/>", b"not xml", b'<!DOCTYPE x [<!ENTITY a "b">]><x/>'],
)
def test_domibus_import_refuses_other_documents(data: bytes) -> None:
    with pytest.raises(ConfigError):
        pm.load_domibus_pmode(data)


@pytest.mark.parametrize(
    ("text", "offsets"),
    [
        ("12;4;CONSTANT", (180.0, 360.0, 540.0, 720.0)),
        ("60;5;CONSTANT", (720.0, 1440.0, 2160.0, 2880.0, 3600.0)),
        ("9;1;2;PROGRESSIVE", (60.0, 120.0, 240.0, 480.0)),
        ("5;0;SEND_ONCE", ()),
        ("5;0;CONSTANT", ()),
    ],
)
def test_retry_schedule_from_domibus(text: str, offsets: tuple[float, ...]) -> None:
    schedule = pm.RetrySchedule.parse_domibus(text)
    assert schedule.offsets == offsets
    assert schedule.attempts == 1 + len(offsets)


@pytest.mark.parametrize("text", ["", "12;4", "a;b;CONSTANT", "12;4;SOMETIMES"])
def test_retry_schedule_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="CONSTANT"):
        pm.RetrySchedule.parse_domibus(text)


def test_next_attempt() -> None:
    s = pm.RetrySchedule((10.0, 30.0))
    assert [s.next_attempt_after(n) for n in range(4)] == [0.0, 10.0, 30.0, None]


NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
MakeCert = Callable[..., tuple[object, x509.Certificate]]


@pytest.fixture
def red_cert(make_cert: MakeCert) -> x509.Certificate:
    return make_cert("red")[1]


def _set(cert: x509.Certificate, **partner: object) -> pm.PModeSet:
    fields: dict[str, object] = {
        "name": "red",
        "party": pm.Party("red_gw"),
        "endpoint": "https://red.example/as4",
        "signing_certificate": cert,
        "encryption_certificate": cert,
    }
    fields.update(partner)
    return pm.PModeSet(own=pm.Party("blue_gw"), partners=(pm.Partner(**fields),), legs=pm.oots_legs())  # type: ignore[arg-type]


def test_validator_reports_each_problem_with_its_path(make_cert: MakeCert, red_cert: x509.Certificate) -> None:
    _, old = make_cert("old", not_before=NOW - dt.timedelta(days=800), days=30)
    bad_retry = pm.ReceptionAwareness(retry=pm.RetrySchedule((30.0, 10.0)))
    pmodes = _set(red_cert, endpoint="ftp://x", signing_certificate=old, reception_awareness=bad_retry)
    legs = (*pmodes.legs[:3], dataclasses.replace(pmodes.legs[0], name="copy"))
    insecure = dataclasses.replace(legs[1], security=pm.Security(sign=False))
    pmodes = dataclasses.replace(pmodes, legs=(legs[0], insecure, legs[2], legs[3]))
    problems = {p.path: p.message for p in pm.validate(pmodes)}
    assert problems["partners[red].endpoint"].startswith("must be an http")
    assert "partners[red].signing_certificate" not in problems  # an expired certificate: a notice, see below
    assert problems["partners[red].reception_awareness.retry.offsets"] == "retry offsets must increase"
    assert problems["legs[ootsResponseLeg].security.sign"] == "AS4 1.15 requires signed messages"
    assert "legs[copy]" in problems  # a second leg for the same service and action
    assert problems["legs"].startswith("the test service leg")


def test_valid_set_passes_and_resolves(red_cert: x509.Certificate) -> None:
    pmodes = _set(red_cert).check()
    partner = pmodes.partner("red")
    assert pmodes.partner("red_gw", pm.OOTS_PARTY_ID_TYPE) is partner
    mode = pmodes.resolve(partner, pmodes.test_leg())
    assert mode.initiator.party_id == "blue_gw"
    assert mode.responder.party_id == "red_gw"
    assert mode.address == "https://red.example/as4"
    incoming = pmodes.resolve_incoming(
        from_party=(pm.OOTS_PARTY_ID_TYPE, "red_gw"),
        to_party=(pm.OOTS_PARTY_ID_TYPE, "blue_gw"),
        service="QueryManager",
        action="ExecuteQueryResponse",
        service_type="urn:oasis:names:tc:ebcore:ebrs:ebms:binding:1.0",
    )
    assert incoming.initiator.party_id == "red_gw"
    assert incoming.leg.name == "ootsResponseLeg"


def test_a_partner_certificate_out_of_its_validity_is_a_notice_and_refuses_sending(
    make_cert: MakeCert, red_cert: x509.Certificate
) -> None:
    _, old = make_cert("old", not_before=NOW - dt.timedelta(days=800), days=30)
    _, future = make_cert("future", not_before=NOW + dt.timedelta(days=3))
    pmodes = _set(red_cert, encryption_certificate=old, trust_anchors=(future,)).check()  # no problem: usable
    notices = {p.path: p.message for p in pm.certificate_notices(pmodes, NOW)}
    assert notices == {
        "partners[red].encryption_certificate": f"expired on {old.not_valid_after_utc:%Y-%m-%d %H:%M} UTC: "
        "messages to partner red (red_gw) fail until a valid one is configured",
        "partners[red].trust_anchors[0]": f"is not valid before {future.not_valid_before_utc:%Y-%m-%d %H:%M} UTC: "
        "messages from partner red (red_gw) that rely on it are refused",
    }
    problem = pmodes.partner("red").sending_problem(NOW)
    assert problem is not None
    assert problem.startswith("the encryption certificate of AS4 partner red (red_gw) expired on ")
    assert _set(red_cert).partner("red").sending_problem(NOW) is None
    assert pm.certificate_notices(_set(red_cert), NOW) == []


@pytest.mark.parametrize(
    ("from_id", "to_id", "action"),
    [
        ("green_gw", "blue_gw", "ExecuteQueryRequest"),
        ("red_gw", "other", "ExecuteQueryRequest"),
        ("red_gw", "blue_gw", "X"),
    ],
)
def test_resolve_incoming_refuses_unknown(from_id: str, to_id: str, action: str, red_cert: x509.Certificate) -> None:
    pmodes = _set(red_cert)
    with pytest.raises(NotFound):
        pmodes.resolve_incoming(
            from_party=(pm.OOTS_PARTY_ID_TYPE, from_id),
            to_party=(pm.OOTS_PARTY_ID_TYPE, to_id),
            service="QueryManager",
            action=action,
        )


def test_from_settings(tmp_path: Path, cert_file: Path, clean_env: pytest.MonkeyPatch) -> None:
    config = tmp_path / "node.toml"
    config.write_text(
        f"""
[as4]
party_id = "blue_gw"
retry_offsets_seconds = [5, 15]
duplicate_window_seconds = 3600

[[as4.partners]]
name = "red"
party_id = "red_gw"
endpoint = "http://127.0.0.1:9/as4"
signing_certificate = "{cert_file.name}"
trust_anchors = ["{cert_file.name}"]
""",
        encoding="utf-8",
    )
    settings = load_settings(config)
    pmodes = pm.pmodes_from_settings(settings.as4, base_dir=tmp_path).check()
    red = pmodes.partner("red")
    assert red.signing_certificate is not None
    assert red.encryption_certificate == red.signing_certificate
    assert len(red.trust_anchors) == 1
    mode = pmodes.resolve(red, pmodes.leg("QueryManager", "ExecuteQueryRequest"))
    assert mode.reception_awareness.retry.offsets == (5.0, 15.0)
    assert mode.reception_awareness.duplicate_detection.window == 3600.0


def test_from_settings_with_domibus_file(
    tmp_path: Path, cert_file: Path, spec_dir: Path, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("OOTS_AS4__PARTY_ID", "blue_gw")
    clean_env.setenv("OOTS_AS4__PMODE_FILE", str(spec_dir / DOMIBUS))
    settings = load_settings()
    pmodes = pm.pmodes_from_settings(settings.as4)
    assert pmodes.partners == ()  # the file's only party is ourselves
    assert len(pmodes.legs) == 4


def test_from_settings_names_unreadable_files(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    (tmp_path / "junk.pem").write_text("nothing here", encoding="utf-8")
    config = tmp_path / "node.toml"
    config.write_text(
        '[[as4.partners]]\nname = "red"\nendpoint = "http://x/"\nsigning_certificate = "junk.pem"\n'
        'trust_anchors = ["missing.pem"]\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        pm.pmodes_from_settings(load_settings(config).as4, base_dir=tmp_path)
    paths = [p for p, _ in info.value.problems]
    assert "as4.partners[0].signing_certificate" in paths
    assert "as4.partners[0].trust_anchors[0]" in paths


def test_unknown_partner_key_is_refused(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    config = tmp_path / "node.toml"
    config.write_text('[[as4.partners]]\nname = "red"\nendpont = "http://x/"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"as4\.partners\.0\.endpont: unknown key"):
        load_settings(config)
