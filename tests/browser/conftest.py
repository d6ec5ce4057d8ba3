"""Browser fixtures: the shared real stack served over HTTP, Debian's headless Chromium, and a
recorder of JavaScript errors that fails any flow in which a page logged one.

Screenshots go to tests/artifacts/browser/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from app.extensions import db
from app.services.accounts import create_user
from tests.support import ROOT, LiveServer

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "tests" / "artifacts" / "browser"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Milliseconds a browser action or assertion waits for the page before failing: generous,
#: because the machine is shared and a page load can stall behind Tesseract.
ACTION_TIMEOUT_MS = 20_000
expect.set_options(timeout=ACTION_TIMEOUT_MS)
PASSWORD = "browser-password"


@pytest.fixture(scope="session", autouse=True)
def chromium() -> Iterator[Browser]:
    """Debian's Chromium (Playwright's own download is not available here).

    Autouse and session-scoped so a machine without Chromium skips before the stack starts.
    """
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (make test installs it)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def live_server(stack) -> Iterator[LiveServer]:
    server = LiveServer(stack.app).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def editors(stack) -> dict[str, str]:
    """Two editors, username -> password, made once for the browser suite."""
    names = ("browser-edna", "browser-ravi")
    with stack.app.app_context():
        for name in names:
            create_user(name, PASSWORD, "editor")
        db.session.remove()
    return dict.fromkeys(names, PASSWORD)


class Ui:
    """Opens browser contexts on the live server and records what went wrong in them."""

    def __init__(self, browser: Browser, base_url: str):
        self.browser = browser
        self.base_url = base_url
        self.contexts: list[BrowserContext] = []
        #: Console errors and uncaught exceptions, as "<page url>: <message>".
        self.errors: list[str] = []
        #: Responses with an HTTP error status the flow provokes on purpose (e.g. 409).
        self.expected_statuses: set[int] = set()

    def new_page(self, *, javascript: bool = True) -> Page:
        context = self.browser.new_context(
            base_url=self.base_url,
            viewport={"width": 1280, "height": 900},
            java_script_enabled=javascript,
            # No bar transition or pulsing cells: screenshots show the page as it settles.
            reduced_motion="reduce",
        )
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        context.on("console", self._on_console)
        context.on("weberror", lambda error: self.errors.append(f"uncaught: {error.error}"))
        self.contexts.append(context)
        return context.new_page()

    def _on_console(self, message) -> None:
        if message.type != "error":
            return
        text = message.text
        # Chromium logs every response with an error status as a failed resource load; the
        # statuses a flow provokes on purpose (a save conflict answers 409) are not errors.
        if any(f"status of {status} " in text for status in self.expected_statuses):
            return
        self.errors.append(f"{message.location.get('url', '?')}: {text}")

    def sign_in(self, page: Page, username: str, password: str = PASSWORD) -> None:
        page.goto("/login")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator(".who")).to_contain_text(username)

    def sign_out(self, page: Page) -> None:
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    def shot(self, page: Page, name: str) -> Path:
        """Keep a full-page screenshot as tests/artifacts/browser/<name>.png."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def ui(chromium, live_server) -> Iterator[Ui]:
    """Browser contexts for one flow; the flow fails if any page logged a JavaScript error."""
    ui = Ui(chromium, live_server.url)
    yield ui
    ui.close()
    assert ui.errors == [], "JavaScript errors in the browser:\n" + "\n".join(ui.errors)
