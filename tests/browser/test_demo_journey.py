"""The whole citizen journey in headless Chromium against the processes ``oots demo`` starts.

``oots demo`` runs as a subprocess, as ``make run`` runs it (free base port, a temporary data directory);
the test waits for its guide, then a French citizen (``fr-1``, Élodie Lefèvre) applies at the Belgian
procedure portal for a study grant (T3), chooses which of France's two authorities should provide her
diploma certificate, retrieves her diplomas from France through OOTS, is sent to the French provider's
preview space, logs in there, views the diploma and its supplement, accepts one and refuses the other,
comes back to the portal (the EDM v1.0 request has no ReturnLocation: the portal adds ``?returnurl=``)
and opens the evidence that arrived: a PDF issued by the authority she chose. Every step is done with the keyboard only
(Tab, Enter, Space, arrows, type-ahead in selects). Each page gets a screenshot under
``test-artifacts/demo-journey/`` (git-ignored) and an axe-core scan with no serious or critical violation
(axe-core from scripts/sysdeps.sh, see axe_helper; the scan skips without it). At the end the demo gets
SIGINT, as Ctrl-C does, and must stop every process it started and exit 0.
"""

from __future__ import annotations

import html
import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest
from axe_helper import axe_source
from browser_helpers import (
    WAIT_MS,
    choose_option,
    choose_radio,
    chromium,
    log_in_with_keyboard,
    press_on,
    screenshot_and_scan,
)
from pypdf import PdfReader

from oots.network.local import free_base_port

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "demo-journey"
#: The demo's default topology: Common Services, eID provider, BE, FR and DE nodes from base + 10.
PORTS = (0, 1, 10, 11, 12)
#: Generous: five Python processes start one after the other on a loaded 2-core machine.
READY_SECONDS = 300.0
#: The second authority the demo catalogue lists for France's diploma certificate: the one chosen.
RECTORATE = "Rectorate of the Académie de Paris"
RECTORATE_FR = "Rectorat de l'académie de Paris"  # its name in French, the language of its documents
RECTORATE_ID = "17750001500019"


def children_of(pid: int) -> set[int]:
    """The processes whose parent is ``pid`` (Linux /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ')'
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@dataclass
class Demo:
    proc: subprocess.Popen[str]
    base: int
    output: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)

    @property
    def portal(self) -> str:
        return f"http://127.0.0.1:{self.base + 10}"

    @property
    def fr_node(self) -> str:
        return f"http://127.0.0.1:{self.base + 11}"

    def read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line.rstrip("\n"))
            if "Press Ctrl-C to stop everything." in line:
                self.ready.set()
        self.ready.set()  # the output ended: the demo stopped (the fixture then fails with its output)

    def text(self) -> str:
        return "\n".join(self.output)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    oots = Path(sys.executable).with_name("oots")
    if not oots.exists():
        pytest.skip(f"the oots command is not installed next to {sys.executable} (make install)")
    base = free_base_port(PORTS)
    data = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OOTS_")}
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen(
        [str(oots), "demo", "--base-port", str(base), "--data-dir", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,  # Ctrl-C is played by the test alone
    )
    running = Demo(proc, base)
    reader = threading.Thread(target=running.read, daemon=True)
    reader.start()
    try:
        if not running.ready.wait(READY_SECONDS) or proc.poll() is not None:
            pytest.fail(f"oots demo did not print its guide in {READY_SECONDS:.0f} s:\n{running.text()}")
        for offset in PORTS:
            assert httpx.get(f"http://127.0.0.1:{base + offset}/health", timeout=10).status_code == 200
        yield running
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        reader.join(10)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from chromium()


class Steps:
    """Screenshots numbered in order, each page scanned with axe-core."""

    def __init__(self) -> None:
        self.n = 0
        self.axe = axe_source()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for old in ARTIFACTS.glob("*.png"):
            old.unlink()

    def check(self, page: Any, name: str) -> None:
        self.n += 1
        screenshot_and_scan(page, self.axe, ARTIFACTS / f"{self.n:02d}-{name}.png", name)


def test_citizen_journey_across_two_countries_with_preview(demo: Demo, browser: Any) -> None:
    # the guide names where to start, the person and what to try
    guide = demo.text()
    assert f"Start here: {demo.portal}/portal/" in guide
    assert "Élodie Lefèvre" in guide
    assert "T3" in guide
    steps = Steps()
    context = browser.new_context(bypass_csp=True)  # lets the test inject axe-core into the pages
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)

    # 1. the portal; log in with eID (keyboard only from here on)
    page.goto(demo.portal + "/portal/")
    steps.check(page, "portal-home")
    press_on(page, text="Log in with eID")
    if "/login/" not in page.url:  # the login component may offer a choice of methods
        steps.check(page, "portal-login-methods")
        press_on(page, text="Log in with your national eID")
    steps.check(page, "eid-login")
    assert log_in_with_keyboard(page, "fr-1", "FR", "high") == "fr-1", "the guide names the first of the list"
    page.wait_for_url(demo.portal + "/portal/", timeout=WAIT_MS)
    steps.check(page, "portal-logged-in")

    # 2. the procedure (T3, a study grant) and the country that holds the documents (FR)
    choose_option(page, "procedure", "Ap", "T3")
    choose_option(page, "country", "F", "FR")
    press_on(page, text="Start", tag="BUTTON")

    # 3. what the procedure needs, retrieved through OOTS: two French authorities issue the diploma
    # certificate (the demo catalogue lists the service under both), so the portal asks which one
    page.get_by_role("heading", name="What the procedure needs").wait_for(timeout=WAIT_MS)
    page.get_by_role("group", name="Who should provide it").wait_for(timeout=WAIT_MS)
    steps.check(page, "choose-a-provider")
    choose_radio(page, "r0-t0-provider", f"AP_FR_01|{RECTORATE_ID}")
    press_on(page, text="Continue", tag="BUTTON")
    page.get_by_role("heading", name="Ask for the evidence").wait_for(timeout=WAIT_MS)
    asked = page.locator("main li").all_inner_texts()
    assert any(f"We will ask {RECTORATE}" in item and "diploma" in item.lower() for item in asked), asked
    steps.check(page, "explicit-request")

    # 4. the explicit request; the FR diplomas service (level High, which the guide says) asks for a preview
    press_on(page, text="Request the evidence", tag="BUTTON")
    page.get_by_role("heading", name="Preview the evidence").wait_for(timeout=WAIT_MS)
    steps.check(page, "go-to-the-preview")
    # a waiting page (as after the preview, the answer still on its way): it polls, it does not refresh
    application = page.url.split("?")[0]
    page.goto(f"{application}?exchange={application.rsplit('/', 1)[1]}")
    page.get_by_role("status").filter(has_text="We are waiting for the authority's answer.").wait_for(timeout=WAIT_MS)
    page.locator("#poll-note").wait_for(state="visible", timeout=WAIT_MS)  # the script runs
    assert page.locator("meta[http-equiv]").count() == 0
    steps.check(page, "waiting-page")
    page.goto(application)
    page.get_by_role("heading", name="Preview the evidence").wait_for(timeout=WAIT_MS)
    link = page.get_by_role("link", name="Go to the preview").get_attribute("href")
    assert link is not None
    assert link.startswith(demo.fr_node + "/preview/")
    assert "returnurl=" in link  # EDM v1.0: the return address rides on the PreviewLocation
    press_on(page, text="Go to the preview", tag="A")

    # 5. the provider's preview space: its own eID login, then the documents
    steps.check(page, "preview-eid-login")
    assert log_in_with_keyboard(page, "fr-1", "FR", "high") == "fr-1"
    page.wait_for_url(re.compile(re.escape(demo.fr_node) + r"/preview/[^/]+(\?.*)?$"), timeout=WAIT_MS)
    page.locator("input[name=d1]").first.wait_for(timeout=WAIT_MS)
    assert RECTORATE in page.locator("main").inner_text()  # the preview names the chosen authority
    steps.check(page, "preview-documents")
    choose_radio(page, "d0", "accept")
    choose_radio(page, "d1", "refuse")
    steps.check(page, "preview-decided")
    press_on(page, tag="BUTTON", text="Confirm")

    # 6. back at the portal: the accepted document is attached, the refused one is not
    page.wait_for_url(re.compile(re.escape(demo.portal) + r"/portal/applications/.*"), timeout=WAIT_MS)
    page.get_by_role("heading", name="Evidence attached to your application").wait_for(timeout=WAIT_MS)
    steps.check(page, "evidence-attached")
    opens = page.get_by_role("link", name=re.compile("^Open"))
    assert opens.count() == 1
    href = opens.first.get_attribute("href")
    assert href is not None
    reply = context.request.get(demo.portal + href)
    assert reply.headers["content-type"] == "application/pdf"
    assert reply.body().startswith(b"%PDF")
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(reply.body()), strict=True).pages)
    assert RECTORATE_FR in text, text[:500]  # issued by the authority she chose
    context.close()


def portal_user(demo: Demo, person: str) -> httpx.Client:
    """A citizen logged in at the portal over plain HTTP (the test eID provider's form, level High)."""
    user = httpx.Client(follow_redirects=True, timeout=60)
    home = user.get(demo.portal + "/portal/")
    link = re.search(r'<a class="button" href="([^"]+)">Log in with eID', home.text)
    assert link, home.text
    page = user.get(urljoin(str(home.url), html.unescape(link.group(1))))
    assert "/login/" in str(page.url)
    done = user.post(str(page.url), data={"subject": person, "level": "high"})
    assert str(done.url) == demo.portal + "/portal/", done.text[:500]
    return user


def form_token(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


def apply(user: httpx.Client, demo: Demo, procedure: str, country: str, **extra: str) -> str:
    """Start an application and give the explicit request when asked; the application's URL."""
    home = user.get(demo.portal + "/portal/")
    data = {"procedure": procedure, "country": country, "csrf": form_token(home), **extra}
    return str(user.post(demo.portal + "/portal/applications", data=data).url)


def wait_for(user: httpx.Client, url: str, *words: str) -> httpx.Response:
    """Poll the application page (it refreshes itself too) until one of ``words`` shows."""
    deadline = time.monotonic() + WAIT_MS / 1000 * 2
    while time.monotonic() < deadline:
        page = user.get(url)
        if any(w in page.text for w in words):
            return page
        time.sleep(1)
    raise AssertionError(f"{url} never showed {words}; it shows:\n{page.text[-1500:]}")


def test_what_the_guide_says_to_try_works(demo: Demo) -> None:
    """The guide's other suggestions: no preview, a refused preview, a follow-up question, an unknown person."""
    guide = demo.text()
    assert '"no preview"' in guide
    assert "R1 with the documents held by DE: the portal first asks where you were born" in guide
    assert "DE6 for Hamburg" in guide
    assert "as Outis Nemo (FR/FR/999999990), whom no register knows" in guide
    elodie, nemo = portal_user(demo, "fr-1"), portal_user(demo, "fr-nobody")
    try:
        at_once = apply(elodie, demo, "R1", "FR", no_preview="yes")
        refused = apply(elodie, demo, "R1", "FR")
        wrong = apply(elodie, demo, "R1", "FR")
        question = apply(elodie, demo, "R1", "DE")
        unknown = apply(nemo, demo, "R1", "FR", no_preview="yes")
        for user, url in ((elodie, at_once), (elodie, refused), (elodie, wrong), (nemo, unknown)):
            page = wait_for(user, url, "Request the evidence")
            user.post(url + "/request", data={"csrf": form_token(page)})
        # without preview: the birth certificate arrives at once, a PDF
        page = wait_for(elodie, at_once, "Evidence attached to your application")
        pdf = re.search(r'href="(/portal/applications/[^"]+/evidence/\d+)"', page.text)
        assert pdf
        assert elodie.get(demo.portal + pdf.group(1)).content.startswith(b"%PDF")
        # with preview, refused there: back at the portal, a clear reason
        page = wait_for(elodie, refused, "Go to the preview")
        link = re.search(r'<a class="button" href="([^"]+)">Go to the preview', page.text)
        assert link
        location = html.unescape(link.group(1))
        shown = elodie.get(location)
        assert "/login/" in str(shown.url)
        shown = elodie.post(str(shown.url), data={"subject": "fr-1", "level": "high"})
        action = re.search(r'<form method="post" action="([^"]+)"', shown.text)
        assert action, shown.text[:500]
        back = elodie.post(urljoin(str(shown.url), action.group(1)), data={"csrf": form_token(shown), "d0": "refuse"})
        assert str(back.url).startswith(refused)  # the returnurl brought the user back
        wait_for(elodie, refused, "You chose not to share the evidence after previewing it.")
        # someone else logs in at the preview and goes back to the portal: the portal says so, not "you chose"
        page = wait_for(elodie, wrong, "Go to the preview")
        link = re.search(r'<a class="button" href="([^"]+)">Go to the preview', page.text)
        assert link
        for cookie in list(elodie.cookies.jar):  # out of the preview space's eID session of the step before
            if cookie.name.startswith("oots_eid_session_preview"):
                elodie.cookies.delete(cookie.name, cookie.domain, cookie.path)
        shown = elodie.get(html.unescape(link.group(1)))
        assert "/login/" in str(shown.url)
        shown = elodie.post(str(shown.url), data={"subject": "fr-2", "level": "high"})
        assert "You are not the person these documents are about" in shown.text
        assert "Log out and log in again" in shown.text
        action = re.search(r'<form method="post" action="([^"]+)"', shown.text)
        assert action, shown.text[:500]
        end = {"csrf": form_token(shown), "choice": "end"}
        back = elodie.post(urljoin(str(shown.url), action.group(1)), data=end)
        assert str(back.url).startswith(wrong)
        page = wait_for(elodie, wrong, "The person who logged in at the preview was not the applicant")
        assert "You chose not to share" not in page.text
        # DE asks a follow-up question before it knows whom to ask
        page = wait_for(elodie, question, "What the procedure needs")
        assert "Place of birth" in page.text
        assert 'name="r0-t0-q0"' in page.text
        answer = {"csrf": form_token(page), "r0-how": "oots", "r0-t0-q0": "DE6"}  # the guide's example
        elodie.post(question + "/choices", data=answer)
        page = wait_for(elodie, question, "Request the evidence")  # now the portal knows whom it will ask
        assert "Hamburg" in page.text
        # a person no register knows: a clear refusal
        wait_for(nemo, unknown, "The authority found no record for you")

    finally:
        elodie.close()
        nemo.close()


def test_ctrl_c_stops_the_whole_network(demo: Demo) -> None:
    children = children_of(demo.proc.pid)
    assert len(children) == len(PORTS)
    demo.proc.send_signal(signal.SIGINT)
    assert demo.proc.wait(60) == 0  # docs/cli.md: 0 after Ctrl-C
    assert not [pid for pid in children if alive(pid)]
    assert "oots demo: stopped" in demo.text()
    for offset in PORTS:
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{demo.base + offset}/health", timeout=2)
