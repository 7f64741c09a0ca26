"""What the browser tests share: headless Chromium, the axe-core scan with its screenshot, and keyboard focus.

Imported as ``from browser_helpers import ...`` (the test folders are not packages; pytest puts this folder
on ``sys.path``), like :mod:`axe_helper`.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

__all__ = ["ARGS", "CHROMIUM", "assert_accessible", "chromium", "focused", "screenshot_and_scan", "tab_to"]

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
