"""SAML/eIDAS service provider against the test provider's SAML half: the good path and every refusal."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from oots.eid import AssuranceTooLow, LegalPerson, LevelOfAssurance, LoginRefused, NaturalPerson
from oots.eid.saml import SamlLogin, SamlServiceProvider, redirect_query
from oots.eid.testidp import load_people
from oots.eid.testidp.keys import SigningKey, load_or_create
from oots.eid.testidp.saml_idp import PendingSamlLogin, SamlIdentityProvider

IDP_ID = "http://idp.test/saml/metadata"
SP_ID = "http://sp.test/eid/saml/metadata"
ACS = "http://sp.test/eid/saml/acs"

L = LevelOfAssurance


def make_idp(key: SigningKey, entity: str = IDP_ID, lifetime: float = 5) -> SamlIdentityProvider:
    return SamlIdentityProvider(entity, entity.replace("metadata", "sso"), key, lifetime_minutes=lifetime)


@pytest.fixture(scope="module")
def idp(idp_key: SigningKey) -> SamlIdentityProvider:
    return make_idp(idp_key)


@pytest.fixture
def sp(idp: SamlIdentityProvider) -> SamlServiceProvider:
    sp = SamlServiceProvider(SP_ID, ACS, idp.metadata_xml())
    return sp


def begin(
    sp: SamlServiceProvider, idp: SamlIdentityProvider, level: LevelOfAssurance = L.SUBSTANTIAL
) -> tuple[SamlLogin, PendingSamlLogin]:
    idp.add_service_provider(sp.metadata_xml())  # the provider learns the SP's metadata (as --sp-metadata does)
    login = sp.start(level, "relay-1")
    query = redirect_query(login.redirect_url)
    assert login.redirect_url.startswith("http://idp.test/saml/sso?")
    return login, idp.parse_request(query["SAMLRequest"], query.get("RelayState"))


def person(key: str = "de-2") -> NaturalPerson:
    item = load_people().find(key)
    assert item is not None
    assert isinstance(item.subject, NaturalPerson)
    return item.subject


def refused(sp: SamlServiceProvider, response: str, request_id: str, level: LevelOfAssurance = L.SUBSTANTIAL) -> str:
    with pytest.raises(LoginRefused) as info:
        sp.consume(response, request_id, level)
    assert info.value.message
    return str(info.value.code)


def test_request_asks_for_the_level_and_the_acs(sp: SamlServiceProvider, idp: SamlIdentityProvider) -> None:
    _, pending = begin(sp, idp, L.HIGH)
    assert pending.sp_entity_id == SP_ID
    assert pending.acs_url == ACS
    assert pending.requested_level is L.HIGH
    assert pending.relay_state == "relay-1"


def test_person_attributes_and_level_come_back_exactly(sp: SamlServiceProvider, idp: SamlIdentityProvider) -> None:
    login, pending = begin(sp, idp)
    subject = person("de-2")
    identity = sp.consume(idp.respond(pending, subject, None, L.HIGH), login.request_id, L.SUBSTANTIAL)
    assert identity.subject == subject  # every attribute, the address included
    assert identity.level is L.HIGH
    assert identity.protocol == "saml"
    assert identity.issuer == IDP_ID
    assert identity.representative is None


def test_company_with_representative(sp: SamlServiceProvider, idp: SamlIdentityProvider) -> None:
    item = load_people().find("de-company-1")
    assert item is not None
    login, pending = begin(sp, idp)
    identity = sp.consume(
        idp.respond(pending, item.subject, item.representative, L.SUBSTANTIAL), login.request_id, L.LOW
    )
    assert isinstance(identity.subject, LegalPerson)
    assert identity.subject == item.subject
    assert identity.representative == item.representative


def test_wrong_signature(sp: SamlServiceProvider, idp: SamlIdentityProvider, tmp_path: Path) -> None:
    login, pending = begin(sp, idp)
    impostor = make_idp(load_or_create(tmp_path))  # same entity id, another key
    impostor.add_service_provider(sp.metadata_xml())
    assert refused(sp, impostor.respond(pending, person(), None, L.HIGH), login.request_id) == "signature"


def test_tampered_attribute(sp: SamlServiceProvider, idp: SamlIdentityProvider) -> None:
    login, pending = begin(sp, idp)
    xml = base64.b64decode(idp.respond(pending, person(), None, L.HIGH))
    forged = base64.b64encode(xml.replace(b"Anna-Lena", b"Anna-Lene")).decode()
    assert refused(sp, forged, login.request_id) == "signature"


def test_wrong_issuer(sp: SamlServiceProvider, idp: SamlIdentityProvider, idp_key: SigningKey) -> None:
    login, pending = begin(sp, idp)
    other = make_idp(idp_key, "http://other-idp.test/saml/metadata")
    other.add_service_provider(sp.metadata_xml())
    assert refused(sp, other.respond(pending, person(), None, L.HIGH), login.request_id) == "issuer"


def test_wrong_audience(sp: SamlServiceProvider, idp: SamlIdentityProvider) -> None:
    login, pending = begin(sp, idp)
    response = idp.respond(pending, person(), None, L.HIGH, audience="http://another-sp.test/metadata")
    assert refused(sp, response, login.request_id) == "audience"


def test_answer_to_another_request(sp: SamlServiceProvider, idp: SamlIdentityProvider) -> None:
    _, pending = begin(sp, idp)
    second, _ = begin(sp, idp)
    assert refused(sp, idp.respond(pending, person(), None, L.HIGH), second.request_id) == "state"


def test_expired_assertion(sp: SamlServiceProvider, idp_key: SigningKey) -> None:
    stale = make_idp(idp_key, lifetime=-10)  # the assertion's NotOnOrAfter lies ten minutes in the past
    login, pending = begin(sp, stale)
    assert refused(sp, stale.respond(pending, person(), None, L.HIGH), login.request_id) == "expired"


def test_replayed_assertion(sp: SamlServiceProvider, idp: SamlIdentityProvider) -> None:
    login, pending = begin(sp, idp)
    response = idp.respond(pending, person(), None, L.HIGH)
    sp.consume(response, login.request_id, L.SUBSTANTIAL)
    assert refused(sp, response, login.request_id) == "replay"


def test_a_replay_within_the_clock_skew_after_not_on_or_after_is_refused(
    idp_key: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pysaml2 takes an assertion until NotOnOrAfter + the allowed skew: the replay cache keeps it that long."""
    import time

    import saml2.time_util

    shift = [0.0]
    real = saml2.time_util.utc_now
    monkeypatch.setattr(saml2.time_util, "utc_now", lambda: real() + shift[0])
    short = make_idp(idp_key, lifetime=1)  # NotOnOrAfter one minute after the answer
    sp = SamlServiceProvider(
        SP_ID, ACS, short.metadata_xml(), accepted_time_diff=60, clock=lambda: time.time() + shift[0]
    )
    login, pending = begin(sp, short)
    response = short.respond(pending, person(), None, L.HIGH)
    shift[0] = 50
    sp.consume(response, login.request_id, L.SUBSTANTIAL)
    shift[0] = 75  # past NotOnOrAfter, within the skew: pysaml2 would take it again
    assert refused(sp, response, login.request_id) == "replay"


def test_downgraded_level(sp: SamlServiceProvider, idp: SamlIdentityProvider) -> None:
    login, pending = begin(sp, idp, L.HIGH)
    with pytest.raises(AssuranceTooLow) as info:
        sp.consume(idp.respond(pending, person(), None, L.SUBSTANTIAL), login.request_id, L.HIGH)
    assert info.value.got is L.SUBSTANTIAL
    assert "needs at least High" in info.value.message


def test_hostile_xml_is_refused_before_pysaml2(sp: SamlServiceProvider) -> None:
    doc = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x "y">]><r>&x;</r>'
    assert refused(sp, base64.b64encode(doc).decode(), "id-1") == "malformed"


def test_not_base64(sp: SamlServiceProvider) -> None:
    assert refused(sp, "%%%not base64%%%", "id-1") == "malformed"


def test_sp_metadata_names_the_acs(sp: SamlServiceProvider) -> None:
    xml = sp.metadata_xml()
    assert SP_ID in xml
    assert ACS in xml


def test_unknown_acs_is_refused_by_the_provider(sp: SamlServiceProvider, idp: SamlIdentityProvider) -> None:
    from oots.errors import RemoteProtocolError

    begin(sp, idp)
    rogue = SamlServiceProvider(SP_ID, "http://evil.test/acs", idp.metadata_xml())
    query = redirect_query(rogue.start(L.LOW, "r").redirect_url)
    with pytest.raises(RemoteProtocolError, match="AssertionConsumerServiceURL"):
        idp.parse_request(query["SAMLRequest"], None)


def test_signed_request_and_encrypted_assertion(idp: SamlIdentityProvider, tmp_path: Path) -> None:
    from oots.eid.testidp.keys import generate_key_files

    generate_key_files(tmp_path / "sp-key.pem", tmp_path / "sp-cert.pem", "portal")
    sp = SamlServiceProvider(
        SP_ID, ACS, idp.metadata_xml(), key_file=tmp_path / "sp-key.pem", cert_file=tmp_path / "sp-cert.pem"
    )
    assert 'use="encryption"' in sp.metadata_xml()
    login, pending = begin(sp, idp)
    query = redirect_query(login.redirect_url)
    assert "Signature" in query  # HTTP-Redirect binding signature
    assert query["SigAlg"].endswith("rsa-sha256")
    response = idp.respond(pending, person(), None, L.HIGH)
    raw = base64.b64decode(response)
    assert b"EncryptedAssertion" in raw
    assert b"Anna-Lena" not in raw  # the attributes travel encrypted
    identity = sp.consume(response, login.request_id, L.SUBSTANTIAL)
    assert identity.subject == person()


def test_refusals_log_no_personal_data(
    sp: SamlServiceProvider, idp: SamlIdentityProvider, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    subject = person()
    with caplog.at_level(logging.DEBUG):
        login, pending = begin(sp, idp)
        good = idp.respond(pending, subject, None, L.HIGH)
        xml = base64.b64decode(good)
        refused(sp, base64.b64encode(xml.replace(b"Anna-Lena", b"Anna-Lene")).decode(), login.request_id)
        refused(sp, idp.respond(pending, subject, None, L.HIGH, audience="http://x.test/md"), login.request_id)
        sp.consume(good, login.request_id, L.SUBSTANTIAL)
        refused(sp, good, login.request_id)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for value in (subject.family_name, subject.given_name, subject.person_identifier, "1988-12-01", "Weber"):
        assert value not in logged


class TestMetadataSignature:
    """The identity provider's metadata, pinned to the key that signs it."""

    def test_signed_metadata_verifies(self, idp: SamlIdentityProvider, idp_key: SigningKey) -> None:
        from oots.eid.saml import verify_metadata

        verify_metadata(idp.metadata_xml(), idp_key.cert_file)
        SamlServiceProvider(SP_ID, ACS, idp.metadata_xml(), idp_metadata_cert=idp_key.cert_file)

    def test_another_key(self, idp: SamlIdentityProvider, tmp_path: Path) -> None:
        from oots.eid.testidp.keys import generate_key_files
        from oots.errors import ConfigError

        generate_key_files(tmp_path / "k.pem", tmp_path / "c.pem")
        with pytest.raises(ConfigError, match="does not verify"):
            SamlServiceProvider(SP_ID, ACS, idp.metadata_xml(), idp_metadata_cert=tmp_path / "c.pem")

    def test_changed_endpoint(self, idp: SamlIdentityProvider, idp_key: SigningKey) -> None:
        from oots.eid.saml import verify_metadata
        from oots.errors import ConfigError

        forged = idp.metadata_xml().replace("http://idp.test/saml/sso", "http://evil.test/saml/sso")
        with pytest.raises(ConfigError, match="does not verify"):
            verify_metadata(forged, idp_key.cert_file)

    def test_unsigned(self, idp_key: SigningKey) -> None:
        from oots.eid.saml import verify_metadata
        from oots.errors import ConfigError

        with pytest.raises(ConfigError, match="not signed"):
            verify_metadata(f'<EntityDescriptor xmlns="{MD}" entityID="x" ID="a"/>', idp_key.cert_file)

    def test_signature_over_another_element(self, idp: SamlIdentityProvider, idp_key: SigningKey) -> None:
        from oots.eid.saml import verify_metadata
        from oots.errors import ConfigError

        xml = idp.metadata_xml()
        ident = xml.split(' ID="', 1)[1].split('"', 1)[0]
        wrapped = xml.replace(f' ID="{ident}"', ' ID="other"', 1)
        with pytest.raises(ConfigError, match="whole document"):
            verify_metadata(wrapped, idp_key.cert_file)

    def test_expired(self, idp: SamlIdentityProvider, idp_key: SigningKey) -> None:
        from oots.eid.saml import verify_metadata
        from oots.errors import ConfigError

        xml = idp.metadata_xml().replace(' entityID="', ' validUntil="2020-01-01T00:00:00Z" entityID="', 1)
        with pytest.raises(ConfigError, match="expired"):
            verify_metadata(xml, idp_key.cert_file)


MD = "urn:oasis:names:tc:SAML:2.0:metadata"
