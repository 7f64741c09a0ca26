"""A citizen applies through the demo procedure portal in headless Chromium, logging in with the test eID.

The test identity provider and the portal (the requester's demo pages over a requester with the real
Common Services app in process) run as HTTP servers in threads; a helper thread plays the worker and
the provider (the provider's sample data service answers; the eID test people are not in the sample
registers, so it answers for the register's Peeters). Screenshots go to ``test-artifacts/`` (git-ignored);
the explicit request is given with the keyboard only; axe-core (fetched by scripts/sysdeps.sh, see axe_helper) finds no
serious or critical violation on each page.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))

from axe_helper import axe_source
from browser_helpers import chromium, screenshot_and_scan
from requester.helpers import Node, Provider, make_node
from test_eid_login import pick

from oots import edm
from oots.cs.keys import generate_pki
from oots.eid import EidLogin
from oots.eid.testidp import IdpConfig, create_idp_app
from oots.network.local import ServerThread, free_port
from oots.provider.samples import load_people
from oots.requester.portal import Portal
from oots.settings import EidSettings

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "requester-portal"


class Playing:
    """Drains the node's queue and answers its requests, every 50 ms, until stopped."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.provider = Provider("BE", "births")
        register = next(p for p in load_people() if p.family_name == "Peeters")
        self.register_person = edm.Person(
            family_name=register.family_name,
            given_name=register.given_name,
            date_of_birth=register.date_of_birth,
            identifier=edm.Identifier(register.identifier, "eidas"),
            level_of_assurance=edm.LevelOfAssurance.HIGH,
        )

    def _run(self) -> None:
        answered: set[str] = set()
        while not self.stop.is_set():
            self.node.drain()
            for message, payloads in list(self.node.outbox.sent):
                if message.message_info.message_id in answered:
                    continue
                answered.add(message.message_info.message_id)
                request = edm.parse(payloads[0].data)
                assert isinstance(request, edm.QueryRequest)
                self.node.deliver(self.provider.evidence(message, request, as_person=self.register_person))
            time.sleep(0.05)

    def __enter__(self) -> Playing:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    idp_port, portal_port = free_port(), free_port()
    idp_url, portal_url = f"http://127.0.0.1:{idp_port}", f"http://127.0.0.1:{portal_port}"
    node = make_node(tmp_path_factory.mktemp("node"), generate_pki(), preview=False)
    login = EidLogin(
        EidSettings(issuer=idp_url, client_id="portal", session_secret="browser-test-secret-0123456789"), portal_url
    )
    portal = Portal(node.role.requester, node.ctx.database, login)
    app = Starlette(routes=[login.mount(), *portal.routes()])
    idp_app = create_idp_app(IdpConfig(issuer=idp_url, data_dir=tmp_path_factory.mktemp("idp")))
    with ServerThread(idp_app, idp_port), ServerThread(app, portal_port), Playing(node):
        yield portal_url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from chromium()


def _check_accessibility(page: Any, axe: str | None, name: str) -> None:
    screenshot_and_scan(page, axe, ARTIFACTS / f"{name}.png", name)


def test_apply_retrieve_and_see_the_evidence(site: str, browser: Any) -> None:
    axe = axe_source()
    context = browser.new_context(bypass_csp=True)  # lets the test inject axe-core into the pages
    page = context.new_page()
    page.goto(site + "/portal/")
    _check_accessibility(page, axe, "1-home")
    page.get_by_role("link", name="Log in with eID").click()
    # the login component may offer a choice of methods; only OpenID Connect is configured here
    if "/login/" not in page.url:
        page.get_by_role("link", name="Log in with your national eID (OpenID Connect)").click()
    pick(page, "BE", "be-1", "high")
    page.wait_for_url(site + "/portal/")
    page.get_by_label("Procedure").select_option("R1")
    page.get_by_label("Country that holds your documents").select_option("BE")
    page.get_by_role("button", name="Start").click()
    page.get_by_role("button", name="Request the evidence").wait_for(timeout=30_000)
    assert "FPS Justice" in page.content()  # who will be asked
    _check_accessibility(page, axe, "2-explicit-request")
    # keyboard only: tab to the button and press Enter
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.textContent.trim()") == (
            "Request the evidence"
        ):
            break
    else:
        pytest.fail("the explicit request button cannot be reached with the keyboard")
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Evidence attached to your application").wait_for(timeout=30_000)
    _check_accessibility(page, axe, "3-evidence")
    # each document named by what it is (a row header) and who issued it, not by its file name
    assert page.get_by_role("rowheader").first.inner_text() == "Birth certificate"
    assert page.get_by_role("cell", name="FPS Justice - Civil Status Database").count() == 1
    link = page.get_by_role("link", name="Open Birth certificate")
    assert ".pdf, PDF" in page.locator("td small").first.inner_text()  # the file, as a detail
    href = link.get_attribute("href")
    reply = context.request.get(site + href)
    assert reply.body().startswith(b"%PDF")
    page.goto(site + "/portal/?lang=de")
    assert page.locator("html").get_attribute("lang") == "de"
    context.close()
