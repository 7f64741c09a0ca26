"""What the browser tests share: headless Chromium, the axe-core scan with its screenshot, keyboard focus and
the keyboard-only login at the test eID provider.

Imported as ``from browser_helpers import ...`` (the test folders are not packages; pytest puts this folder
on ``sys.path``), like :mod:`axe_helper`.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "ARGS",
    "CHROMIUM",
    "WAIT_MS",
    "assert_accessible",
    "choose_option",
    "choose_radio",
    "chromium",
    "focused",
    "log_in_with_keyboard",
    "press_on",
    "screenshot_and_scan",
    "tab_to",
]

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: How long a page may take to come (generous: the machine running the tests may be loaded).
WAIT_MS = 60_000


def chromium() -> Iterator[Any]:
    """Headless Chromium for a module's ``browser`` fixture (``yield from chromium()``); skips without it."""
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (scripts/sysdeps.sh installs it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


def assert_accessible(page: Any, axe: str | None, name: str) -> None:
    """axe-core over the page: no serious or critical violation (nothing is checked when ``axe`` is None)."""
    if axe is None:
        return
    page.add_script_tag(content=axe)
    found = page.evaluate("async () => (await axe.run(document)).violations.map(v => [v.id, v.impact])")
    assert [v for v in found if v[1] in ("serious", "critical")] == [], f"{name}: {found}"


def screenshot_and_scan(page: Any, axe: str | None, path: Path, name: str) -> None:
    """A full-page screenshot to ``path`` (its folder is made), then :func:`assert_accessible`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    assert_accessible(page, axe, name)


def focused(page: Any) -> dict[str, str]:
    """The focused element: tag, id, name, value, text, checked, outline style and class."""
    return dict(
        page.evaluate(
            "() => { const e = document.activeElement || document.body; const s = getComputedStyle(e);"
            " return {tag: e.tagName, id: e.id || '', name: e.getAttribute('name') || '', value: e.value || '',"
            " text: (e.innerText || e.textContent || '').trim(), checked: String(!!e.checked),"
            " outline: s.outlineStyle, cls: e.className || ''}; }"
        )
    )


def tab_to(page: Any, limit: int = 80, **want: str) -> dict[str, str]:
    """Press Tab until the focused element has the attributes in ``want`` (``text`` may be a prefix)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        now = focused(page)
        if all(now.get(k, "").startswith(v) if k == "text" else now.get(k) == v for k, v in want.items()):
            return now
    raise AssertionError(f"Tab never reached {want} on {page.url}")


def choose_radio(page: Any, name: str, value: str) -> None:
    """Tab into the radio group ``name`` and arrow to ``value`` (arrows check as they move)."""
    tab_to(page, name=name)
    for _ in range(20):
        if focused(page)["value"] == value:
            page.keyboard.press("Space")
            assert focused(page)["checked"] == "true"
            return
        page.keyboard.press("ArrowDown")
    raise AssertionError(f"the arrows never reached {name}={value}")


def choose_option(page: Any, select_id: str, typed: str, expected: str) -> None:
    """Tab to a select and type the start of an option's text (the browser's type-ahead)."""
    tab_to(page, id=select_id)
    page.keyboard.type(typed, delay=50)
    assert page.locator(f"#{select_id}").input_value() == expected


def press_on(page: Any, key: str = "Enter", **want: str) -> None:
    """Tab to an element and press ``key`` on it; it leads to another page, whose load is awaited."""
    tab_to(page, **want)
    with page.expect_navigation(timeout=WAIT_MS):
        page.keyboard.press(key)


def log_in_with_keyboard(page: Any, person: str, country: str, level: str) -> str:
    """At the test eID provider, with the keyboard only: the country (type-ahead on its name), then the
    person and the level (arrows in their radio groups), then Log in. Gives the person the list offered
    first (the one checked before the arrows moved)."""
    page.wait_for_url(re.compile(r".*/login/.*"), timeout=WAIT_MS)
    name = page.locator(f"#country option[value='{country}']").inner_text()
    choose_option(page, "country", name, country)
    press_on(page, text="Show test identities")
    page.get_by_role("heading", name=re.compile("Test identity in")).wait_for(timeout=WAIT_MS)
    first = page.locator("input[name=subject]:checked").get_attribute("value")
    choose_radio(page, "subject", person)
    choose_radio(page, "level", level)
    press_on(page, text="Log in", tag="BUTTON")
    return str(first)
