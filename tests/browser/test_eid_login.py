"""A person logs in through the test identity provider into a small portal, in headless Chromium.

Both run as real HTTP servers (uvicorn, in threads, on free ports): the portal mounts the login
component with OpenID Connect and SAML configured; the provider fetches the portal's SAML metadata.
The test reads back, from the portal's page, the exact attributes and the level of assurance.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from axe_helper import axe_source
from browser_helpers import assert_accessible, chromium
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from oots.eid import EidLogin, NaturalPerson
from oots.eid.testidp import IdpConfig, create_idp_app, load_people
from oots.network.local import ServerThread, free_port
from oots.settings import EidSettings

pytestmark = pytest.mark.browser


def portal(login: EidLogin) -> Starlette:
    async def me(request: Request) -> HTMLResponse:
        identity = login.require(request)
        subject = identity.subject
        rows = {"level": identity.level.value, "protocol": identity.protocol}
        if isinstance(subject, NaturalPerson):
            rows |= {
                "person_identifier": subject.person_identifier,
                "family_name": subject.family_name,
                "given_name": subject.given_name,
                "date_of_birth": subject.date_of_birth.isoformat(),
                "birth_name": subject.birth_name or "",
                "place_of_birth": subject.place_of_birth or "",
                "gender": subject.gender.value if subject.gender else "",
                "street": subject.current_address.thoroughfare or "" if subject.current_address else "",
            }
        else:
            rows |= {"legal_person_identifier": subject.legal_person_identifier, "legal_name": subject.legal_name}
        if identity.representative is not None:
            rows["representative"] = identity.representative.identifier
        items = "".join(f"<dt>{k}</dt><dd id='{k}'>{html.escape(v)}</dd>" for k, v in rows.items())
        return HTMLResponse(f"<!doctype html><html lang='en'><body><main><h1>You</h1><dl>{items}</dl></main></body>")

    return Starlette(routes=[login.mount(), Route("/me", me)])


@dataclass
class Setup:
    idp: str
    portal: str


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    idp_port, portal_port = free_port(), free_port()
    idp_url, portal_url = f"http://127.0.0.1:{idp_port}", f"http://127.0.0.1:{portal_port}"
    idp_dir = tmp_path_factory.mktemp("idp")
    idp_app = create_idp_app(IdpConfig(issuer=idp_url, data_dir=idp_dir))
    settings = EidSettings(
        issuer=idp_url,
        client_id="portal",
        saml_idp_metadata=idp_url + "/saml/metadata",
        saml_idp_metadata_cert=idp_dir / "idp-cert.pem",  # the metadata must be signed by the provider's key
        session_secret="browser-test-secret-0123456789",
    )
    login = EidLogin(settings, portal_url)
    with ServerThread(idp_app, idp_port), ServerThread(portal(login), portal_port):
        yield Setup(idp_url, portal_url)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from chromium()


def scan(page: Any, name: str) -> None:
    """axe-core over the page: no serious or critical accessibility violation (skipped without axe-core)."""
    assert_accessible(page, axe_source(), name)


def pick(page: Any, country: str, key: str, level: str) -> None:
    """On the provider's page: choose the country, the test identity and the level, by their labels."""
    page.get_by_label("Country of the test identity").select_option(country)
    page.get_by_role("button", name="Show test identities").click()
    scan(page, "provider's login page")
    page.locator(f"#s-{key}").check()
    page.locator(f"#list-level-{level}").check()
    page.get_by_role("button", name="Log in", exact=True).click()


def read(page: Any, *names: str) -> dict[str, str]:
    return {name: page.locator(f"#{name}").inner_text() for name in names}


def test_oidc_login_reads_back_attributes_and_level(servers: Setup, browser: Any) -> None:
    context = browser.new_context(bypass_csp=True)  # lets the test inject axe-core
    page = context.new_page()
    page.goto(servers.portal + "/me")
    scan(page, "method chooser")
    page.get_by_role("link", name="Log in with your national eID (OpenID Connect)").click()
    assert page.url.startswith(servers.idp + "/login/")
    pick(page, "FR", "fr-2", "high")
    page.wait_for_url(servers.portal + "/me")
    person = load_people().find("fr-2")
    assert person is not None
    assert isinstance(person.subject, NaturalPerson)
    assert read(page, "person_identifier", "family_name", "given_name", "date_of_birth", "level", "protocol") == {
        "person_identifier": person.subject.person_identifier,
        "family_name": "de La Fontaine",
        "given_name": "Jean-Luc",
        "date_of_birth": "1968-01-30",
        "level": "high",
        "protocol": "oidc",
    }
    assert read(page, "place_of_birth", "gender", "street") == {
        "place_of_birth": "Reims",
        "gender": "Male",
        "street": "Place Drouet-d'Erlon",
    }
    context.close()


def test_saml_login_reads_back_attributes_and_level(servers: Setup, browser: Any) -> None:
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    page.goto(servers.portal + "/me")
    page.get_by_role("link", name="Log in with an eID from another country (eIDAS)").click()
    assert page.url.startswith(servers.idp + "/login/")
    pick(page, "IT", "it-2", "substantial")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(servers.portal + "/me")
    assert read(page, "family_name", "given_name", "date_of_birth", "place_of_birth", "level", "protocol") == {
        "family_name": "Rossi",
        "given_name": "Marco",
        "date_of_birth": "1985-04-12",
        "place_of_birth": "Milano",
        "level": "substantial",
        "protocol": "saml",
    }
    assert read(page, "person_identifier")["person_identifier"] == "IT/IT/RSSMRC85D12F205X"
    context.close()


def test_saml_company_login_and_a_low_login_refused(servers: Setup, browser: Any) -> None:
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    page.goto(servers.portal + "/eid/login?next=/me&method=saml")
    pick(page, "PL", "pl-company-1", "high")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(servers.portal + "/me")
    values = read(page, "legal_name", "legal_person_identifier", "representative", "level")
    assert values["legal_name"] == "Bursztyn Sp. z o.o."
    assert values["legal_person_identifier"] == "PL/PL/0009991010"
    assert values["representative"] == "PL/PL/83021712345"
    assert values["level"] == "high"
    context.close()

    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    page.goto(servers.portal + "/eid/login?next=/me&method=oidc")
    pick(page, "NL", "nl-1", "low")
    assert page.get_by_role("heading", level=1).inner_text() == "Your login could not be accepted"
    scan(page, "refusal page")
    assert "needs at least Substantial" in page.locator("#reason").inner_text()
    context.close()


def test_custom_person_by_keyboard(servers: Setup, browser: Any, caplog: pytest.LogCaptureFixture) -> None:
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    page.goto(servers.portal + "/eid/login?next=/me&method=oidc")
    page.get_by_label("Person identifier (CC/CC/identifier)", exact=True).focus()
    page.keyboard.type("DE/FR/QX-4711")
    page.keyboard.press("Tab")
    page.keyboard.type("Zimmermann")
    page.keyboard.press("Tab")
    page.keyboard.type("Ida")
    page.get_by_label("Date of birth").fill("1950-02-03")
    page.locator("#custom-level-substantial").check()
    page.get_by_label("Given name").press("Enter")  # submits its form
    page.wait_for_url(servers.portal + "/me")
    assert read(page, "person_identifier", "family_name", "given_name", "date_of_birth") == {
        "person_identifier": "DE/FR/QX-4711",
        "family_name": "Zimmermann",
        "given_name": "Ida",
        "date_of_birth": "1950-02-03",
    }
    logged = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.DEBUG)
    assert "Zimmermann" not in logged
    assert "QX-4711" not in logged
    context.close()
