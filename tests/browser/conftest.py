"""A real server on a free local port and Debian's Chromium driven by Playwright; screenshots kept as artefacts."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from appliance.app import create_app
from appliance.services.context import Appliance
from tests.conftest import PASSWORD, create_open_round

ARTEFACTS = Path(__file__).resolve().parent.parent / "artefacts" / "screenshots"
AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def live_server(appliance: Appliance) -> Iterator[str]:
    """The appliance served over HTTP on 127.0.0.1 (uvicorn in a thread); its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(appliance.settings, appliance), host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def chromium() -> Iterator:
    """Debian's Chromium (apt package `chromium`), headless."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Chromium is missing: ./install.sh --dev installs Debian's chromium package"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def open_page(chromium, live_server: str) -> Iterator:
    """open_page(size, language) -> a new page of its own browser context (cookies), at the server's address."""
    contexts = []

    def make(viewport: dict[str, int] = PHONE, locale: str = "en-GB"):
        # bypass_csp lets the test inject axe-core; the pages themselves never need it.
        context = chromium.new_context(viewport=viewport, locale=locale, base_url=live_server, bypass_csp=True)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        return page

    yield make
    for context in contexts:
        context.close()


def screenshot(page, name: str) -> Path:
    """A full-page PNG under tests/artefacts/screenshots/."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTEFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def serious_accessibility_problems(page) -> list[str]:
    """axe-core's serious and critical violations on the page as it stands (WCAG 2.1 A and AA rules)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    result = page.evaluate("""() => axe.run(document, {runOnly: {type: 'tag',
        values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})""")
    return [f"{v['id']} ({v['impact']}): {v['help']} at {json.dumps([n['target'] for n in v['nodes']])}"
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


def sign_in(page, username: str, password: str) -> None:
    """Through the sign-in form, as a person does."""
    page.goto("/sign-in")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit].primary")
    page.wait_for_url("**/rounds")


def overflows_sideways(page) -> bool:
    """Whether the page is wider than the window (WCAG reflow: a phone never scrolls sideways)."""
    return page.evaluate("() => document.documentElement.scrollWidth > window.innerWidth")


def voter_on_a_round_of(api, open_page, texts: tuple[str, ...]):
    """A post-moderated round whose proposals are `texts` (by u01, u02...), and u05 on its page on a phone."""
    round_id = create_open_round(api("admin"), moderation="post", audience_groups=["staff"])
    for number, text in enumerate(texts, start=1):
        response = api(f"u{number:02d}").post(f"/api/v1/rounds/{round_id}/proposals", json={"text": text})
        assert response.status_code == 201, response.text
    phone = open_page(PHONE)
    sign_in(phone, "u05", PASSWORD)
    phone.goto(f"/rounds/{round_id}")
    return round_id, phone
