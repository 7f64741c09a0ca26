"""The login component in a small portal, against the test provider, all in memory (OIDC)."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from eid_helpers import IDP, SP, Network, run

from oots.eid import LevelOfAssurance
from oots.eid.testidp import load_people
from oots.eid.testidp.keys import SigningKey
from oots.eid.web import FLOW_COOKIE, SESSION_COOKIE, safe_next


async def follow(client: httpx.AsyncClient, resp: httpx.Response) -> httpx.Response:
    assert resp.status_code in (302, 303), resp.text
    return await client.get(resp.headers["location"])


async def login_until_callback(
    client: httpx.AsyncClient, key: str, level: str, path: str = "/me"
) -> tuple[httpx.Response, str]:
    resp = await client.get(path)  # not logged in: sent to the login
    resp = await follow(client, resp)  # /eid/login -> provider
    assert resp.headers["location"].startswith(IDP + "/authorize?")
    resp = await follow(client, resp)  # /authorize -> picker page
    picker = resp.headers["location"]
    resp = await client.get(IDP + picker + "?country=" + key[:2].upper())
    assert resp.status_code == 200
    resp = await client.post(IDP + picker, data={"subject": key, "level": level})
    assert resp.status_code == 303
    callback = resp.headers["location"]
    assert callback.startswith(SP + "/eid/callback?")
    return await client.get(callback), callback


async def login(network: Network, key: str, level: str = "substantial", path: str = "/me") -> httpx.Response:
    async with network.client() as client:
        resp, _ = await login_until_callback(client, key, level, path)
        if resp.status_code != 303:
            return resp
        return await follow(client, resp)


def test_login_reads_back_the_exact_attributes(network: Network) -> None:
    resp = run(login(network, "de-2", "high"))
    assert resp.status_code == 200
    data = resp.json()
    person = load_people().find("de-2")
    assert person is not None
    subject = data["subject"]
    assert subject["person_identifier"] == person.subject.identifier
    assert subject["family_name"] == "Schmidt"
    assert subject["given_name"] == "Anna-Lena"
    assert subject["date_of_birth"] == "1988-12-01"
    assert subject["birth_name"] == "Weber"
    assert subject["place_of_birth"] == "Hamburg"
    assert subject["gender"] == "Female"
    assert subject["current_address"]["thoroughfare"] == "Mönckebergstraße"
    assert subject["current_address"]["post_code"] == "20095"
    assert data["level"] == "high"
    assert data["protocol"] == "oidc"
    assert data["issuer"] == IDP
    assert data["representative"] is None


def test_company_login_carries_the_representative(network: Network) -> None:
    data = run(login(network, "fr-company-1")).json()
    assert data["subject"]["type"] == "legal"
    assert data["subject"]["legal_name"] == "Atelier Lumière SAS"
    assert data["subject"]["legal_person_identifier"] == "FR/FR/999000202"
    assert data["subject"]["vat_registration"] == "FR99999000202"
    assert data["representative"]["family_name"] == "Lefèvre"


def test_a_login_below_the_required_level_is_refused_plainly(network: Network) -> None:
    resp = run(login(network, "de-1", "low"))
    assert resp.status_code == 403
    assert "level of assurance Low" in resp.text
    assert "at least Substantial" in resp.text
    assert SESSION_COOKIE not in resp.cookies


def test_a_page_needing_high_steps_up(network: Network) -> None:
    async def scenario() -> httpx.Response:
        async with network.client() as client:
            resp, _ = await login_until_callback(client, "it-1", "substantial")
            resp = await follow(client, resp)
            assert resp.status_code == 200
            resp = await client.get("/high")  # substantial is not enough here
            assert resp.status_code == 303
            assert "level=high" in resp.headers["location"]
            resp = await follow(client, resp)
            assert "acr_values=http%3A%2F%2Feidas.europa.eu%2FLoA%2Fhigh" in resp.headers["location"]
            return resp

    run(scenario())


def test_the_callback_cannot_be_replayed(network: Network) -> None:
    async def scenario() -> httpx.Response:
        async with network.client() as client:
            resp, callback = await login_until_callback(client, "nl-1", "substantial")
            assert resp.status_code == 303
            return await client.get(callback)  # the flow cookie is gone: refused

    resp = run(scenario())
    assert resp.status_code == 400
    assert "expired or was already completed" in resp.text


def test_a_foreign_state_is_refused(network: Network) -> None:
    async def scenario() -> httpx.Response:
        async with network.client() as client:
            await client.get("/eid/login?next=/me")
            return await client.get("/eid/callback?code=abc&state=not-the-one")

    resp = run(scenario())
    assert resp.status_code == 400
    assert "does not belong to this login" in resp.text


def test_a_tampered_session_cookie_is_not_a_login(network: Network) -> None:
    async def scenario() -> httpx.Response:
        async with network.client() as client:
            client.cookies.set(SESSION_COOKIE, "gAAAAABforged", domain="sp.test")
            return await client.get("/me")

    assert run(scenario()).status_code == 303


def test_logout_ends_the_session(network: Network) -> None:
    async def scenario() -> tuple[int, int]:
        async with network.client() as client:
            resp, _ = await login_until_callback(client, "pl-1", "substantial")
            assert (await follow(client, resp)).status_code == 200
            resp = await client.post("/eid/logout")
            assert resp.headers["location"].startswith(IDP + "/logout?")
            after = await client.get("/me")
            return resp.status_code, after.status_code

    assert run(scenario()) == (303, 303)


def test_the_flow_is_kept_in_an_encrypted_cookie_only(network: Network) -> None:
    async def scenario() -> httpx.Response:
        async with network.client() as client:
            return await client.get("/eid/login?next=/me")

    resp = run(scenario())
    cookie = resp.cookies[FLOW_COOKIE]
    query = parse_qs(urlsplit(resp.headers["location"]).query)
    assert query["state"][0] not in cookie
    assert query["code_challenge_method"] == ["S256"]
    assert "httponly" in resp.headers["set-cookie"].lower()


def test_no_personal_data_in_logs_or_urls(network: Network, caplog: pytest.LogCaptureFixture) -> None:
    person = load_people().find("es-3")
    assert person is not None
    urls: list[str] = []

    async def scenario() -> None:
        async with network.client() as client:
            client.event_hooks["request"] = [lambda request: _record(urls, request)]
            resp, _ = await login_until_callback(client, "es-3", "high")
            assert (await follow(client, resp)).status_code == 200
        async with network.client() as client:  # a refused login is logged too
            client.event_hooks["request"] = [lambda request: _record(urls, request)]
            resp, _ = await login_until_callback(client, "es-3", "low")
            assert resp.status_code == 403

    async def _record(store: list[str], request: httpx.Request) -> None:
        store.append(str(request.url))

    with caplog.at_level(logging.DEBUG):
        run(scenario())
    subject = person.subject
    secrets_ = [subject.identifier, "Fernández de Córdoba", "José Luis", "1970-05-25", "Córdoba", "Calle Cruz Conde"]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "eid login: natural person via oidc at level high" in logged  # the login was logged ...
    assert "eid login refused: assurance" in logged
    for value in secrets_:
        assert value not in logged  # ... without personal data
        assert all(value not in url and value.replace(" ", "+") not in url for url in urls)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("/me?x=1", "/me?x=1"), ("//evil.example/", "/"), ("https://evil.example/", "/"), ("/\\evil", "/"), (None, "/")],
)
def test_only_local_paths_are_returned_to(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected


def test_a_level_in_the_query_cannot_lower_the_requirement(network: Network) -> None:
    async def scenario() -> httpx.Response:
        async with network.client() as client:
            return await client.get("/eid/login?next=/me&level=low")

    location = run(scenario()).headers["location"]
    assert LevelOfAssurance.LOW.uri.replace(":", "%3A").replace("/", "%2F") not in location


def test_claims_from_the_userinfo_endpoint(idp_dir: Path, idp_key: SigningKey) -> None:
    network = Network(idp_dir, {"claims_in_id_token": False}, userinfo=True)
    data = run(login(network, "el-1", "high")).json()
    assert data["subject"]["family_name"] == "Papadopoulou"
    assert data["subject"]["person_identifier"].startswith("EL/EL/")
    assert data["level"] == "high"


def test_without_userinfo_a_bare_id_token_is_refused(idp_dir: Path, idp_key: SigningKey) -> None:
    network = Network(idp_dir, {"claims_in_id_token": False})
    resp = run(login(network, "el-2", "high"))
    assert resp.status_code == 502
    assert "claims are unusable" in resp.text


def test_a_saml_post_without_the_flow_cookie_is_posted_again_from_our_page(network: Network) -> None:
    async def scenario() -> tuple[httpx.Response, httpx.Response]:
        async with network.client() as client:
            first = await client.post("/eid/saml/acs", data={"SAMLResponse": "PHg+", "RelayState": "r"})
            second = await client.post(
                "/eid/saml/acs", data={"SAMLResponse": "PHg+", "RelayState": "r", "_resent": "1"}
            )
            return first, second

    first, second = run(scenario())
    assert first.status_code == 200
    assert 'name="_resent" value="1"' in first.text
    assert 'action="/eid/saml/acs"' in first.text
    assert second.status_code == 400
    assert "expired or was already completed" in second.text


def saml_network(idp_dir: Path) -> Network:
    from eid_helpers import AppClient

    from oots.eid.testidp import IdpConfig, create_idp_app

    idp_app = create_idp_app(IdpConfig(issuer=IDP, data_dir=idp_dir, fetch_sp_metadata=False))
    idp_metadata = AppClient(idp_app, IDP).get("/saml/metadata").text
    network = Network(idp_dir, saml_idp_metadata=idp_metadata)
    network.router.add(IDP, idp_app)
    sp_metadata = run(_get(network, "/eid/saml/metadata")).text
    idp_app.state.saml_idp.add_service_provider(sp_metadata)
    return network


async def _get(network: Network, path: str) -> httpx.Response:
    async with network.client() as client:
        return await client.get(path)


async def saml_until_acs(client: httpx.AsyncClient, key: str, level: str) -> dict[str, str]:
    import re

    resp = await client.get("/eid/login?next=/me&method=saml")
    assert resp.headers["location"].startswith(IDP + "/saml/sso?SAMLRequest=")
    resp = await follow(client, resp)
    picker = IDP + resp.headers["location"]
    page = await client.post(picker, data={"subject": key, "level": level})
    assert page.status_code == 200
    assert 'action="http://sp.test/eid/saml/acs"' in page.text
    fields = dict(re.findall(r'name="(SAMLResponse|RelayState)" value="([^"]*)"', page.text))
    assert set(fields) == {"SAMLResponse", "RelayState"}
    return fields


def test_saml_login_through_the_routes(idp_dir: Path, idp_key: SigningKey) -> None:
    network = saml_network(idp_dir)

    async def scenario() -> httpx.Response:
        async with network.client() as client:
            fields = await saml_until_acs(client, "it-company-1", "high")
            resp = await client.post("/eid/saml/acs", data=fields)
            assert resp.status_code == 303, resp.text
            assert FLOW_COOKIE not in resp.cookies or not resp.cookies[FLOW_COOKIE]
            return await follow(client, resp)

    data = run(scenario()).json()
    assert data["protocol"] == "saml"
    assert data["level"] == "high"
    assert data["subject"]["legal_name"] == "Rossi Costruzioni S.r.l."
    assert data["representative"]["family_name"] == "Rossi"


def test_saml_answer_with_another_relay_state_is_refused(idp_dir: Path, idp_key: SigningKey) -> None:
    network = saml_network(idp_dir)

    async def scenario() -> httpx.Response:
        async with network.client() as client:
            fields = await saml_until_acs(client, "it-1", "high")
            return await client.post("/eid/saml/acs", data={**fields, "RelayState": "someone-elses"})

    resp = run(scenario())
    assert resp.status_code == 400
    assert "does not belong to this login (RelayState)" in resp.text


def test_saml_level_below_the_requirement_is_refused(idp_dir: Path, idp_key: SigningKey) -> None:
    network = saml_network(idp_dir)

    async def scenario() -> httpx.Response:
        async with network.client() as client:
            fields = await saml_until_acs(client, "it-1", "low")
            return await client.post("/eid/saml/acs", data=fields)

    resp = run(scenario())
    assert resp.status_code == 403
    assert "needs at least Substantial" in resp.text


async def post_typed(client: httpx.AsyncClient, **typed: str) -> httpx.Response:
    """Open the login and post a person typed at the test provider's picker (its ``custom`` form)."""
    resp = await follow(client, await client.get("/eid/login?next=/me"))
    return await client.post(IDP + resp.headers["location"], data={"custom": "1", **typed})


def test_an_arbitrary_company_typed_at_the_provider(network: Network) -> None:
    async def scenario() -> httpx.Response:
        async with network.client() as client:
            typed = await post_typed(
                client,
                person_identifier="AT/BE/77",
                family_name="Gruber",
                given_name="Anna",
                date_of_birth="1970-01-02",
                legal_person_identifier="AT/BE/FN123456",
                legal_name="Gruber GmbH",
                level="substantial",
            )
            return await follow(client, await client.get(typed.headers["location"]))

    data = run(scenario()).json()
    assert data["subject"]["legal_name"] == "Gruber GmbH"
    assert data["subject"]["legal_person_identifier"] == "AT/BE/FN123456"
    assert data["representative"]["family_name"] == "Gruber"


def test_a_typed_person_with_a_bad_identifier_is_explained(network: Network) -> None:
    async def scenario() -> httpx.Response:
        async with network.client() as client:
            return await post_typed(
                client,
                person_identifier="12345",
                family_name="A",
                given_name="B",
                date_of_birth="1970-01-02",
                level="low",
            )

    resp = run(scenario())
    assert resp.status_code == 400
    assert "CC/CC/identifier" in resp.text


def test_fastapi_dependency(idp_dir: Path, idp_key: SigningKey) -> None:
    from fastapi import Depends, FastAPI

    from oots.eid import Identity

    network = Network(idp_dir)
    api = FastAPI()
    api.router.routes.append(network.login.mount())

    @api.get("/me")
    def me(identity: Identity = Depends(network.login.dependency(LevelOfAssurance.SUBSTANTIAL))) -> dict[str, str]:
        return {"identifier": identity.subject.identifier, "level": identity.level.value}

    network.router.add(SP, api)

    async def scenario() -> tuple[httpx.Response, httpx.Response]:
        async with network.client() as client:
            first = await client.get("/me")
            resp, _ = await login_until_callback(client, "nl-2", "high")
            return first, await follow(client, resp)

    first, after = run(scenario())
    assert first.status_code == 303
    assert first.headers["location"].startswith("/eid/login?next=%2Fme")
    assert after.json() == {"identifier": "NL/NL/999990020", "level": "high"}
