"""The demo portal's pages without a browser: login, choices, explicit request, preview, evidence, CSRF."""

from __future__ import annotations

import datetime as dt
import html
import re
import threading
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest
from sqlalchemy import select, update
from starlette.applications import Starlette
from starlette.requests import Request

from oots.cs.keys import CsPki
from oots.eid.identity import Identity, LevelOfAssurance, NaturalPerson
from oots.provider.samples import load_people
from oots.requester.discovery import text_of
from oots.requester.exchange import DISCOVER_JOB
from oots.requester.models import RequesterEvidence
from oots.requester.portal import Portal, code_hint
from oots.settings import EidSettings
from oots.store.models import QueueJob
from requester.helpers import RESIDENCE_REQUIREMENT, ListTransport, Node, Provider, catalogue_text, make_node


class CookieLogin:
    """The tests' login: the cookie ``who`` holds a sample person's identifier (a node uses EidLogin)."""

    async def ready(self) -> None:
        pass

    def current_identity(self, request: Request) -> Identity | None:
        who = request.cookies.get("who")
        person = next((p for p in load_people() if p.identifier == who), None)
        if person is None:
            return None
        subject = NaturalPerson(person.identifier, person.family_name, person.given_name, person.date_of_birth)
        return Identity(subject, LevelOfAssurance.HIGH, "test", "oidc", dt.datetime.now(dt.UTC))

    def login_url(self, next_path: str = "/") -> str:
        return f"/login?next={next_path}"


def browser(node: Node, who: str | None = "Peeters") -> httpx.Client:
    portal = Portal(node.role.requester, node.ctx.database, CookieLogin())
    app = Starlette(routes=list(portal.routes()))
    client = httpx.Client(transport=ListTransport(app), base_url="https://portal.example")
    if who:
        client.cookies.set("who", next(p.identifier for p in load_people() if p.family_name == who))
    return client


def csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def start(web: httpx.Client, country: str, procedure: str = "R1") -> str:
    """Start an application from the portal's home page, as its form does; the application page's address."""
    home = web.get("/portal/")
    started = web.post("/portal/applications", data={"procedure": procedure, "country": country, "csrf": csrf(home)})
    assert started.status_code == 303, started.text
    return started.headers["location"]


def test_a_wrong_answer_shows_the_question_again_marked(tmp_path: Path, pki: CsPki) -> None:
    # Before, an answer the DSD did not accept failed the application (no_provider).
    node = make_node(tmp_path, pki, preview=False)
    web = browser(node, "Müller")
    page_url = start(web, "DE")
    node.drain()
    page = web.get(page_url)
    chosen = web.post(page_url + "/choices", data={"csrf": csrf(page), "r0-how": "oots", "r0-t0-q0": "DE9"})
    assert chosen.status_code == 303, chosen.text
    node.drain()
    page = web.get(page_url)
    assert "Your answer was not accepted; please check it." in page.text
    assert 'name="r0-t0-q0"' in page.text  # asked again
    field = re.search(r'<input id="r0-t0-q0"[^>]*>', page.text)
    assert field, page.text
    assert 'aria-invalid="true"' in field.group(0)
    assert 'aria-describedby="r0-t0-refused r0-t0-q0-hint"' in field.group(0)
    assert 'id="r0-t0-refused"' in page.text
    chosen = web.post(page_url + "/choices", data={"csrf": csrf(page), "r0-how": "oots", "r0-t0-q0": "DE6"})
    node.drain()
    page = web.get(page_url)
    assert "Registry Office Hamburg-Mitte" in page.text
    assert "not accepted" not in page.text


def test_journey_with_question_preview_and_evidence(tmp_path: Path, pki: CsPki) -> None:
    node = make_node(tmp_path, pki)
    web = browser(node, "Müller")
    home = web.get("/portal/?lang=de")
    assert home.status_code == 200
    assert 'lang="de"' in home.text
    assert "Online beantragen" in home.text
    started = web.post("/portal/applications", data={"procedure": "R1", "country": "DE", "csrf": csrf(home)})
    assert started.status_code == 303
    page_url = started.headers["location"]
    assert "Wir ermitteln" in web.get(page_url).text  # discovering, a waiting page
    node.drain()
    page = web.get(page_url)
    assert "Über OOTS abrufen" in page.text
    assert "Geburtsort" in page.text  # the DSD's question, in German as the DSD gave it
    chosen = web.post(page_url + "/choices", data={"csrf": csrf(page), "r0-how": "oots", "r0-t0-q0": "DE6"})
    assert chosen.status_code == 303, chosen.text
    node.drain()
    page = web.get(page_url)
    assert "Registry Office Hamburg-Mitte" in page.text  # who will be asked, for what, why
    assert "<strong>Geburtsurkunde</strong>" in page.text  # the evidence type, in German as the EB gave it
    asked = web.post(page_url + "/request", data={"csrf": csrf(page)})
    assert asked.status_code == 303
    provider = Provider("DE", "births")
    node.deliver(provider.preview(*node.outbox.last_request(), "https://ep.example/preview/1"))
    page = web.get(page_url + "?lang=en")
    # EDM v1.0 (the DE births service) has no ReturnLocation: the return address rides on the link
    sent = re.search(r'href="https://ep\.example/preview/1\?returnurl=([^"]+)"', page.text)
    assert sent, page.text
    ex_id = page_url.rsplit("/", 1)[1]
    assert unquote(sent.group(1)) == f"{node.ctx.settings.node.base_url.rstrip('/')}/requester/return/{ex_id}"
    with node.ctx.database.session() as session:  # where the return location sends the user: this page
        assert node.role.requester.load(session, ex_id).return_url == f"https://portal.example{page_url}"
    # back from the preview before the answer: the page waits (and refreshes) instead of offering the preview
    back = web.get(f"{page_url}?exchange={ex_id}")
    assert "waiting for the authority" in back.text
    assert 'data-poll="' in back.text
    assert "Go to the preview" not in back.text
    assert "Go to the preview" in web.get(page_url).text  # someone who did not go yet still can
    node.deliver(provider.evidence(*node.outbox.last_request()))
    page = web.get(page_url)
    assert "Evidence attached to your application" in page.text
    page = web.get(page_url + "?lang=fr")
    headers = re.findall(r'<th scope="col">([^<]*)</th>', page.text)
    assert headers == ["Document", "Délivré par", "Fichier"]  # none empty, all translated
    # each document by what it is and who issued it; its file name and format below, smaller
    row = re.search(r'<th scope="row">([^<]+)</th>\s*<td>([^<]+)</td>.*?<small>([^<]+)</small>', page.text, re.S)
    assert row, page.text
    assert row.group(1) == "Birth certificate"  # the evidence type's title: the EB gave no French one, English
    assert row.group(2) == "Registry Office Berlin-Mitte"  # the IssuingAuthority
    file_name, file_format = row.group(3).rsplit(", ", 1)
    assert file_name.endswith(".pdf")
    assert file_format == "PDF"
    page = web.get(page_url + "?lang=en")
    link = re.search(r'href="(/portal/applications/[^"]+/evidence/\d+)"', page.text)
    assert link
    pdf = web.get(link.group(1))
    assert pdf.content.startswith(b"%PDF")
    # a document in XML is shown as text, headed by what it is, not by its media type
    with node.ctx.database.session() as session:
        session.execute(update(RequesterEvidence).values(media_type="application/xml", content=b"<certificate/>"))
    shown = web.get(link.group(1) + "?lang=de")
    assert "<h1>Geburtsurkunde</h1>" in shown.text  # the evidence type's title in the page's language
    assert "<p>Ausgestellt von Registry Office Berlin-Mitte</p>" in shown.text
    assert re.search(r"<small>[^<]+\.pdf, XML</small>", shown.text)  # the file as the provider named it
    assert "&lt;certificate/&gt;" in shown.text
    assert "application/xml" not in shown.text


def test_waiting_pages_poll_instead_of_refreshing(tmp_path: Path, pki: CsPki) -> None:
    """No <meta refresh> (axe's "meta-refresh", focus reset every 2 s): a script asks the state endpoint,
    the status is a polite live region, and "Check again" works without the script."""
    node = make_node(tmp_path, pki)
    web = browser(node)
    page_url = start(web, "BE")
    page = web.get(page_url)
    assert "We are finding out" in page.text
    assert "http-equiv" not in page.text
    assert '<script src="/portal/static/portal.js" defer></script>' in page.text
    assert re.search(r'<p role="status" aria-live="polite" id="poll-status">We are finding out', page.text)
    assert f'<a href="{page_url}">Check again</a>' in page.text
    assert f'data-poll="{page_url}/state" data-state="discovering"' in page.text
    script = web.get("/portal/static/portal.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "data-poll" in script.text
    assert web.get(page_url + "/state").json() == {"state": "discovering"}
    node.drain()
    assert web.get(page_url + "/state").json() == {"state": "awaiting_explicit_request"}
    assert "http-equiv" not in web.get(page_url).text
    assert "data-poll" not in web.get(page_url).text  # nothing to wait for: no polling
    assert browser(node, "Van den Broeck").get(page_url + "/state").status_code == 404  # only one's own
    assert browser(node, None).get(page_url + "/state").status_code == 401


def test_follow_up_question_hint_empty_and_wrong_answers(tmp_path: Path, pki: CsPki) -> None:
    """The hint says what to type; an empty answer is marked at its field; a wrong one's error page
    leads back to the page (GET) where it is answered again."""
    node = make_node(tmp_path, pki)
    web = browser(node, "Müller")
    page_url = start(web, "DE")
    node.drain()
    page = web.get(page_url)
    hint = "Type a region code (NUTS level 1): DE followed by one letter or digit, for example DE6 for Hamburg."
    assert f'<small id="r0-t0-q0-hint">{hint}</small>' in page.text
    assert "NUTS1" not in page.text
    assert "pour Hamburg" in web.get(page_url + "?lang=fr").text
    web.get(page_url + "?lang=en")

    empty = web.post(page_url + "/choices", data={"csrf": csrf(page), "r0-how": "oots", "r0-t0-q0": "  "})
    assert empty.status_code == 422
    assert '<span class="error" id="r0-t0-q0-error">Please answer “Place of birth”.</span>' in empty.text
    field = re.search(r'<input id="r0-t0-q0"[^>]*>', empty.text)
    assert field, empty.text
    assert 'aria-invalid="true"' in field.group(0)
    assert 'aria-describedby="r0-t0-q0-error r0-t0-q0-hint"' in field.group(0)
    assert "Please answer every question." in empty.text
    assert web.get(page_url + "/state").json() == {"state": "awaiting_user_choice"}  # nothing recorded

    wrong = web.post(page_url + "/choices", data={"csrf": csrf(page), "r0-how": "oots", "r0-t0-q0": "Hamburg"})
    assert wrong.status_code == 422
    assert "is not a NUTS or LAU code" in wrong.text
    back = re.search(r'<a href="([^"]+)">Continue</a>', wrong.text)
    assert back, wrong.text
    assert back.group(1) == page_url
    again = web.get(back.group(1))
    assert again.status_code == 200
    assert 'name="r0-t0-q0"' in again.text  # asked again


def test_names_and_titles_are_shown_in_the_page_language(tmp_path: Path, pki: CsPki) -> None:
    # Before, discovery kept only the English name of a requirement and title of an evidence type: the
    # French and German pages showed them in English though the Evidence Broker gave them in French.
    # (The demo catalogue names its requirements in English only: a French and German one is added.)
    english = 'name = { EN = "Proof of residence" }'
    text = catalogue_text()
    assert english in text
    text = text.replace(
        english, 'name = { EN = "Proof of residence", FR = "Justificatif de domicile", DE = "Wohnsitznachweis" }'
    )
    node = make_node(tmp_path, pki, catalogue=text)
    web = browser(node)
    page_url = start(web, "FR", "S1")  # France offers two alternative lists: the evidence types are listed
    node.drain()
    french = web.get(page_url + "?lang=fr").text
    assert "<legend>Justificatif de domicile</legend>" in french
    assert "Attestation de résidence fiscale" in french
    assert "Certificate of tax residence" not in french
    german = web.get(page_url + "?lang=de").text
    assert "<legend>Wohnsitznachweis</legend>" in german
    assert "Certificate of tax residence" in german  # no German title: the English one
    assert "<legend>Proof of residence</legend>" in web.get(page_url + "?lang=en").text
    # the API gives the English text and keeps every language beside it
    with node.ctx.database.session() as session:
        shown = node.role.requester.view(session, page_url.rsplit("/", 1)[1]).to_json("https://portal.example")
    (entry,) = shown["requirements"]
    assert entry["id"] == RESIDENCE_REQUIREMENT
    assert entry["name"] == "Proof of residence"
    assert {t["lang"]: t["value"] for t in entry["names"]} == {
        "EN": "Proof of residence",
        "FR": "Justificatif de domicile",
        "DE": "Wohnsitznachweis",
    }
    titles = [t["titles"] for lst in entry["lists"] for t in lst["evidence_types"]]
    assert {"value": "Attestation de résidence fiscale", "lang": "FR"} in [x for found in titles for x in found]


def test_a_text_is_taken_in_the_language_asked_else_english_else_the_first() -> None:
    texts = [{"value": "Acte de naissance", "lang": "FR"}, {"value": "Birth certificate", "lang": "EN"}]
    assert text_of(texts, "fr") == "Acte de naissance"
    assert text_of(texts, "DE") == "Birth certificate"
    assert text_of([{"value": "Geboorteakte", "lang": "NL"}, {"value": "Acte", "lang": "FR"}], "DE") == "Geboorteakte"
    assert text_of([], "FR") == ""


def test_the_hint_follows_the_level_and_the_country() -> None:
    assert code_hint("en", "NUTS2", "FR") == "a region code (NUTS level 2): FR followed by 2 letters or digits"
    assert code_hint("en", "NUTS1", "FR").endswith(", for example FR1 for Île-de-France")
    assert code_hint("de", "NUTS1", "DE").endswith(", zum Beispiel DE6 für Hamburg")
    assert code_hint("en", "LAU", "IT").startswith("a local administrative unit code (LAU)")
    assert code_hint("en", None, "PL") == "a region code (NUTS), starting with the country code PL"


def test_uploading_everything_is_not_a_failure(tmp_path: Path, pki: CsPki) -> None:
    node = make_node(tmp_path, pki)
    web = browser(node, "Müller")
    page_url = start(web, "DE")
    node.drain()
    page = web.get(page_url)
    chosen = web.post(page_url + "/choices", data={"csrf": csrf(page), "r0-how": "upload"})
    assert chosen.status_code == 303
    node.drain()
    page = web.get(page_url)
    assert "You will upload the documents yourself" in page.text
    assert "You chose to upload every document yourself" in page.text
    assert "could not be retrieved" not in page.text
    assert "cancelled" not in page.text


def test_every_word_of_the_pages_is_translated() -> None:
    """The templates' words, every reason an application ended, the error pages' messages and the
    procedures' titles: each in every language of the portal."""
    import ast
    from importlib import resources

    from oots.requester import i18n, portal
    from oots.requester.states import REASON_TEXT

    assert set(i18n._FR) == set(i18n._DE)
    used: set[str] = set()
    for page in resources.files("oots.requester").joinpath("templates").iterdir():
        if page.name.endswith(".html"):
            used |= set(re.findall(r"""_\(["']([^"']+)["']\)""", page.read_text("utf-8")))
    assert len(used) > 30
    reasons = set(REASON_TEXT.values())
    tree = ast.parse(Path(portal.__file__).read_text("utf-8"))
    errors = {
        call.args[2].value
        for call in ast.walk(tree)
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "_error"
        if len(call.args) > 2 and isinstance(call.args[2], ast.Constant)
    }
    assert len(errors) >= 4
    titles = {title for _, title in portal.DEMO_PROCEDURES}
    wanted = used | reasons | errors | titles
    assert sorted(s for s in wanted if s not in i18n._FR) == []


def test_csrf_login_and_ownership(tmp_path: Path, pki: CsPki) -> None:
    node = make_node(tmp_path, pki)
    anonymous = browser(node, None)
    assert "Log in with eID" in anonymous.get("/portal/").text
    web = browser(node)
    web.get("/portal/")
    forged = web.post("/portal/applications", data={"procedure": "R1", "country": "BE", "csrf": "forged"})
    assert forged.status_code == 403
    home = web.get("/portal/")
    started = web.post("/portal/applications", data={"procedure": "R1", "country": "BE", "csrf": csrf(home)})
    page_url = started.headers["location"]
    assert anonymous.get(page_url).status_code == 303  # to the login
    stranger = browser(node, "Van den Broeck")
    assert stranger.get(page_url).status_code == 404


def test_failure_in_plain_words(tmp_path: Path, pki: CsPki) -> None:
    node = make_node(tmp_path, pki, preview=False)
    web = browser(node, "Van den Broeck")
    home = web.get("/portal/?lang=fr")
    page_url = web.post("/portal/applications", data={"procedure": "R1", "country": "BE", "csrf": csrf(home)}).headers[
        "location"
    ]
    node.drain()
    page = web.get(page_url)
    web.post(page_url + "/request", data={"csrf": csrf(page)})
    node.deliver(Provider().error(*node.outbox.last_request(), "EDM:ERR:0004"))
    page = web.get(page_url)  # in the page's language (French here), not in English
    assert "L'autorité n'a trouvé aucun dossier à votre nom" in html.unescape(page.text)
    assert "Recommencer" in page.text
    assert "Die Behörde hat keinen Eintrag zu Ihnen gefunden" in web.get(page_url + "?lang=de").text
    assert "The authority found no record for you" in web.get(page_url + "?lang=en").text
    assert "Introuvable" in web.get(page_url + "x?lang=fr").text  # the error pages too


def test_someone_else_at_the_preview_is_not_a_refusal(tmp_path: Path, pki: CsPki) -> None:
    """The provider's EDM:ERR:0004 to the second request: the portal says who logged in, not "you chose"."""
    node = make_node(tmp_path, pki)
    web = browser(node, "Van den Broeck")
    page_url = start(web, "BE")
    node.drain()
    page = web.get(page_url)
    web.post(page_url + "/request", data={"csrf": csrf(page)})
    provider = Provider()
    node.deliver(provider.preview(*node.outbox.last_request(), "https://ep.example/preview/1"))
    node.deliver(provider.error(*node.outbox.last_request(), "EDM:ERR:0004"))
    page = web.get(page_url)
    assert "The person who logged in at the preview was not the applicant" in page.text
    assert "You chose not to share" not in page.text


def test_the_user_may_opt_out_of_the_preview(tmp_path: Path, pki: CsPki) -> None:
    node = make_node(tmp_path, pki)
    web = browser(node, "Peeters")
    home = web.get("/portal/")
    assert 'name="no_preview"' in home.text
    for form, allowed in (({}, True), ({"no_preview": "yes"}, False)):
        data = {"procedure": "R1", "country": "BE", "csrf": csrf(home), **form}
        page_url = web.post("/portal/applications", data=data).headers["location"]
        node.drain()
        page = web.get(page_url)
        web.post(page_url + "/request", data={"csrf": csrf(page)})
        _, request = node.outbox.last_request()
        assert request.possibility_for_preview is allowed


def test_pages_and_documents_are_kept_by_no_cache(tmp_path: Path, pki: CsPki) -> None:
    """The pages and the documents hold personal data: no browser or proxy may keep them."""
    node = make_node(tmp_path, pki, preview=False)
    web = browser(node, "Van den Broeck")
    assert web.get("/portal/").headers["cache-control"] == "no-store"
    page_url = start(web, "BE")
    node.drain()
    page = web.get(page_url)
    assert page.headers["cache-control"] == "no-store"
    web.post(page_url + "/request", data={"csrf": csrf(page)})
    node.deliver(Provider().evidence(*node.outbox.last_request()))
    page = web.get(page_url)
    assert page.headers["cache-control"] == "no-store"
    links = re.findall(r'href="(/portal/applications/[^"]+/evidence/\d+)"', page.text)
    assert links
    for link in links:
        document = web.get(link)
        assert document.status_code == 200
        assert document.headers["cache-control"] == "no-store", link
        assert document.headers["x-frame-options"] == "DENY", link


def test_a_company_keeps_its_application_when_its_representative_logs_in_at_another_level(
    tmp_path: Path, pki: CsPki
) -> None:
    from oots import edm
    from oots.eid.edm_mapping import edm_subjects
    from oots.eid.identity import LegalPerson

    node = make_node(tmp_path, pki)
    portal = Portal(node.role.requester, node.ctx.database, CookieLogin())
    company = LegalPerson("BE/BE/0123456789", "Acme Belgium")

    def login(level: LevelOfAssurance, who: LegalPerson = company) -> Identity:
        return Identity(who, level, "test", "oidc", dt.datetime.now(dt.UTC))

    subject, _ = edm_subjects(login(LevelOfAssurance.SUBSTANTIAL))
    stored = {"legal_person": edm.object_to_json(subject)}
    assert portal._owned(login(LevelOfAssurance.SUBSTANTIAL), stored)
    assert portal._owned(login(LevelOfAssurance.HIGH), stored)
    other = LegalPerson("BE/BE/9999999999", "Acme Belgium")
    assert not portal._owned(login(LevelOfAssurance.SUBSTANTIAL, other), stored)


def test_the_eid_login_key_is_read_off_the_event_loop(
    tmp_path: Path, pki: CsPki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node's eID login reads its cookies' key from the data directory (generated there once) at the first
    request that needs it: every page reading the login has it read in a worker thread, not on the loop."""
    import oots.store.files
    from oots.eid import EidLogin
    from oots.eid.web import SESSION_KEY_FILE

    node = make_node(tmp_path, pki, preview=False)
    eid = EidSettings(issuer="https://idp.example", client_id="portal")
    readers: list[threading.Thread] = []
    write_once = oots.store.files.write_once

    def recording(*args: object, **kwargs: object) -> str:
        readers.append(threading.current_thread())
        return write_once(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(oots.store.files, "write_once", recording)
    ex = "/portal/applications/x"
    pages = [("GET", "/portal/"), ("POST", "/portal/applications"), ("GET", ex), ("GET", f"{ex}/state")]
    pages += [("POST", f"{ex}/choices"), ("POST", f"{ex}/request"), ("GET", f"{ex}/evidence/0")]
    for method, path in pages:  # each with the login of a process that has not read the key yet
        login = EidLogin.for_node(node.ctx.settings, node.ctx.database, eid=eid)
        app = Starlette(routes=list(Portal(node.role.requester, node.ctx.database, login).routes()))
        web = httpx.Client(transport=ListTransport(app), base_url="https://portal.example")
        readers.clear()
        assert web.request(method, path).status_code in {200, 303, 401}, path
        assert readers, path
        assert threading.current_thread() not in readers, path  # ListTransport runs the loop in this thread
    assert (tmp_path / SESSION_KEY_FILE).is_file()


def test_the_pages_database_work_runs_off_the_event_loop(
    tmp_path: Path, pki: CsPki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every page that reads or writes the database (and signs the explicit request) does it in a worker
    thread: a slow database or a busy signer holds up that one page, not every request of the node."""
    node = make_node(tmp_path, pki, preview=False)
    web = browser(node, "Müller")
    database = node.ctx.database
    threads: list[threading.Thread] = []
    session = database.session

    def recording(*args: object, **kwargs: object) -> object:
        threads.append(threading.current_thread())
        return session(*args, **kwargs)  # type: ignore[arg-type]

    def page(method: str, url: str, **kwargs: object) -> httpx.Response:
        threads.clear()
        monkeypatch.setattr(database, "session", recording)
        try:
            answer = web.request(method, url, **kwargs)  # type: ignore[arg-type]
        finally:
            monkeypatch.setattr(database, "session", session)
        assert threads, url
        assert threading.current_thread() not in threads, url  # ListTransport runs the loop in this thread
        return answer

    home = web.get("/portal/")
    started = page("POST", "/portal/applications", data={"procedure": "R1", "country": "DE", "csrf": csrf(home)})
    assert started.status_code == 303, started.text
    page_url = started.headers["location"]
    node.drain()
    form = page("GET", page_url)
    chosen = page("POST", page_url + "/choices", data={"csrf": csrf(form), "r0-how": "oots", "r0-t0-q0": "DE6"})
    assert chosen.status_code == 303, chosen.text
    node.drain()
    form = page("GET", page_url)
    assert page("POST", page_url + "/request", data={"csrf": csrf(form)}).status_code == 303
    node.deliver(Provider("DE", "births").evidence(*node.outbox.last_request()))
    link = re.search(r'href="(/portal/applications/[^"]+/evidence/\d+)"', page("GET", page_url).text)
    assert link
    assert page("GET", link.group(1)).content.startswith(b"%PDF")
    assert page("GET", page_url + "/state").json() == {"state": "completed"}


def test_a_start_whose_common_services_answers_are_held_shows_the_next_step_at_once(tmp_path: Path, pki: CsPki) -> None:
    """The first application for a procedure and country waits for discovery (its job asks the Common
    Services); the next one is discovered as it starts, from the answers the node holds: no waiting page."""
    node = make_node(tmp_path, pki, preview=False)
    web = browser(node)
    first = start(web, "BE")
    assert "data-poll" in web.get(first).text  # discovering
    node.drain()
    second = start(web, "BE")  # nobody runs the queue now
    page = web.get(second)
    assert "data-poll" not in page.text
    assert 'action="' + second + '/request"' in page.text  # the explicit request, to give now
    assert web.get(second + "/state").json() == {"state": "awaiting_explicit_request"}
    with node.ctx.database.session() as session:  # and no discovery job was made for it
        keys = session.scalars(select(QueueJob.key).where(QueueJob.kind == DISCOVER_JOB))
        assert [k.split(":")[0] for k in keys] == [first.rsplit("/", 1)[1]]
