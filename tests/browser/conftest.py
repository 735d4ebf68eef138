"""Browser tests: Debian's chromium driven by Playwright against the app served on loopback.

Screenshots of the key pages go to ``test-artifacts/screenshots`` for a person to look at.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests import services
from tests.integration.conftest import (  # noqa: F401 - fixtures reused here
    PASSWORDS,
    backend,
    databases,
    instance_keys,
    make_app,
)

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in item.nodeid:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.xdist_group("browser"))


@pytest.fixture(scope="session")
def chromium():
    executable = shutil.which("chromium")
    if executable is None:
        message = "chromium is not installed (make test installs it when run as root)"
        if services.required():
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class LiveServer:
    def __init__(self, app):
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.thread.join(timeout=10)


@pytest.fixture(params=["sqlite"])
def backend(request):  # noqa: F811 - the browser suite runs on SQLite (the app code is the same)
    return request.param


@pytest.fixture
def live(make_app):  # noqa: F811
    app = make_app("org")
    server = LiveServer(app)
    yield server
    server.stop()


@pytest.fixture
def new_page(chromium, live):
    contexts = []

    def make(username: str | None = None, **options):
        context = chromium.new_context(locale="fr-FR", **options)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15000)
        if username:
            login(page, live.url, username)
        return page

    yield make
    for context in contexts:
        context.close()


def login(page, base: str, username: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Identifiant").fill(username)
    page.get_by_label("Mot de passe").fill(PASSWORDS[username])
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(lambda url: "/login" not in url)


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")  # lazy page images load
    wait_until(page, "Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(path), full_page=True)
    return path


def wait_until(page, expression: str, timeout: float = 15.0) -> None:
    """Poll a JavaScript expression from the test side: ``wait_for_function`` evaluates strings inside the
    page, which our Content-Security-Policy (no 'unsafe-eval') rightly forbids."""
    import time

    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {expression}")
        page.wait_for_timeout(100)
