"""The test identity provider: its data, metadata and the checks of its endpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
from eid_helpers import AppClient

from oots.eid import LegalPerson, NaturalPerson
from oots.eid.testidp import IdpConfig, create_idp_app, load_people
from oots.eid.testidp.keys import SigningKey, load_or_create
from oots.errors import ConfigError

IDP = "http://idp.test"


@pytest.fixture
def client(idp_dir: Path, idp_key: SigningKey) -> AppClient:
    app = create_idp_app(IdpConfig(issuer=IDP, data_dir=idp_dir, clients={"portal": "s3cret"}))
    return AppClient(app, IDP)


def test_people_cover_the_demo_countries() -> None:
    people = load_people()
    pairs = 0
    for code in ("BE", "FR", "DE", "IT", "ES", "EL", "NL", "PL"):
        country = people.country(code)
        assert country is not None, code
        persons = [p.subject for p in country.people if isinstance(p.subject, NaturalPerson)]
        assert len([p for p in country.people if not p.key.endswith("-nobody")]) >= 3
        assert any("matches nobody" in p.note for p in country.people)
        assert country.companies
        assert all(isinstance(c.subject, LegalPerson) and c.representative for c in country.companies)
        names = [(p.family_name, p.given_name, p.date_of_birth) for p in persons]
        same = [p for p in persons if names.count((p.family_name, p.given_name, p.date_of_birth)) == 2]
        assert len({p.person_identifier for p in same}) == len(same)
        pairs += len(same) // 2
    assert pairs >= 3  # people who match ambiguously: same names and birth date, other identifiers


def test_identifiers_are_unique() -> None:
    ids = [
        item.subject.identifier for country in load_people().countries for item in (*country.people, *country.companies)
    ]
    assert len(ids) == len(set(ids))


def test_a_broken_data_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "people.json"
    bad.write_text('{"countries": {"BE": {"people": [{"key": "x"}]}}}', encoding="utf-8")
    with pytest.raises(ConfigError, match="not a usable test identity file"):
        load_people(bad)


def test_key_is_generated_once(tmp_path: Path) -> None:
    first = load_or_create(tmp_path)
    second = load_or_create(tmp_path)
    assert first.kid == second.kid
    assert (tmp_path / "idp-key.pem").stat().st_mode & 0o077 == 0


def test_discovery_jwks_health_metadata(client: AppClient, idp_key: SigningKey) -> None:
    doc = client.get("/.well-known/openid-configuration").json()
    assert doc["issuer"] == IDP
    assert doc["jwks_uri"] == IDP + "/jwks"
    assert "S256" in doc["code_challenge_methods_supported"]
    assert "http://eidas.europa.eu/LoA/high" in doc["acr_values_supported"]
    keys = client.get("/jwks").json()["keys"]
    assert keys[0]["kid"] == idp_key.kid
    assert "d" not in keys[0]  # never the private part
    assert client.get("/health").json()["status"] == "ok"
    md = client.get("/saml/metadata")
    assert md.headers["content-type"].startswith("application/samlmetadata+xml")
    assert IDP + "/saml/sso" in md.text
    assert idp_key.cert_base64[:40] in md.text.replace("\n", "")


def test_unknown_client_is_refused(client: AppClient) -> None:
    resp = client.get("/authorize?client_id=intruder&redirect_uri=http://x.test/cb&response_type=code")
    assert resp.status_code == 400
    assert "not known" in resp.text


def test_authorize_without_pkce_goes_back_with_an_error(client: AppClient) -> None:
    resp = client.get(
        "/authorize?client_id=portal&redirect_uri=http://sp.test/cb&response_type=code&scope=openid&state=s&nonce=n"
    )
    assert resp.status_code == 303
    assert resp.headers["location"].startswith("http://sp.test/cb?error=invalid_request")
    assert "state=s" in resp.headers["location"]


def test_token_endpoint_checks_the_client_secret(client: AppClient) -> None:
    resp = client.post("/token", data={"grant_type": "authorization_code", "code": "x"}, auth=("portal", "wrong"))
    assert resp.status_code == 401
    assert resp.json()["error"] == "invalid_client"


def test_token_endpoint_refuses_an_unknown_code(client: AppClient) -> None:
    resp = client.post("/token", data={"grant_type": "authorization_code", "code": "nope"}, auth=("portal", "s3cret"))
    assert resp.json()["error"] == "invalid_grant"


def test_expired_login_page(client: AppClient) -> None:
    resp = client.get("/login/unknown-txn")
    assert resp.status_code == 404
    assert "expired or is unknown" in resp.text


def test_sso_without_request(client: AppClient) -> None:
    resp = client.get("/saml/sso")
    assert resp.status_code == 400
    assert "No SAML authentication request" in resp.text


def test_sso_from_an_unknown_sp_is_refused(idp_dir: Path, idp_key: SigningKey) -> None:
    from oots.eid import LevelOfAssurance
    from oots.eid.saml import SamlServiceProvider, redirect_query

    app = create_idp_app(IdpConfig(issuer=IDP, data_dir=idp_dir, fetch_sp_metadata=False))
    idp = AppClient(app, IDP)
    sp = SamlServiceProvider("http://sp.test/md", "http://sp.test/acs", idp.get("/saml/metadata").text)
    query = redirect_query(sp.start(LevelOfAssurance.LOW, "r").redirect_url)
    resp = idp.get("/saml/sso", params=query)
    assert resp.status_code == 400
    assert "does not know the service provider" in resp.text


def test_picker_page_is_labelled(client: AppClient) -> None:
    resp = client.get(
        "/authorize?client_id=portal&redirect_uri=http://sp.test/cb&response_type=code&scope=openid"
        "&state=s&nonce=n&code_challenge=abc&code_challenge_method=S256"
    )
    page = client.get(resp.headers["location"] + "?country=PL").text
    assert '<html lang="en">' in page
    assert '<label for="country">' in page
    assert "Kowalska" in page
    assert "<legend>Level of assurance</legend>" in page
    for field in ("person_identifier", "family_name", "given_name", "date_of_birth"):
        assert f'<label for="{field}">' in page


def test_the_provider_offers_the_people_of_the_demo_registers() -> None:
    samples = pytest.importorskip("oots.provider.samples", reason="the demo registers (oots.provider) are not here")
    import json
    from importlib import resources

    offered = {
        item.subject.identifier: item.subject
        for country in load_people().countries
        for item in (*country.people, *country.companies)
    }
    for person in samples.load_people():
        subject = offered.get(person.identifier)
        assert isinstance(subject, NaturalPerson), person.identifier
        assert (subject.family_name, subject.given_name, subject.date_of_birth) == (
            person.family_name,
            person.given_name,
            person.date_of_birth,
        )
        assert (subject.birth_name, subject.place_of_birth) == (person.birth_name, person.place_of_birth)
        assert subject.gender is not None
        assert subject.gender.value == person.gender
    data = resources.files("oots.provider").joinpath("data/companies.json").read_text(encoding="utf-8")
    for company in json.loads(data)["companies"]:
        subject = offered.get(company["legal_person_identifier"])
        assert isinstance(subject, LegalPerson)
        assert subject.legal_name == company["legal_name"]
