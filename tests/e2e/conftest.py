"""End-to-end fixtures: the app served on a real port, a real Chromium driven by Playwright.

The browser is Debian's chromium (never `playwright install`). Every page records its console
messages, page errors and requests; a test fails at teardown if the page reported a
Content-Security-Policy violation or a JavaScript error.
"""
import threading
import time
from types import SimpleNamespace

import pytest
from playwright.sync_api import expect, sync_playwright
from werkzeug.serving import make_server

from tests.conftest import free_port
from tests.factories import PASSWORD
from tests.helpers import COMPANY_SETTINGS

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 10_000
MAIL_DEADLINE_SECONDS = 15


# --- the app on a real port --------------------------------------------------------------------

@pytest.fixture
def live_server(make_app):
    """The app in a thread, with its own mail delivery thread sending to the `smtp` sink, and the
    whole footer (the accessibility checks read it on every page)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = make_app(MAIL_DELIVERY_THREAD=True, MAIL_RETRY_SECONDS=1, PORTAL_BASE_URL=url, **COMPANY_SETTINGS)
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="e2e-server", daemon=True)
    thread.start()
    yield SimpleNamespace(url=url, app=app, port=port)
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


# --- the browser ---------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def playwright_driver():
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright_driver):
    browser = playwright_driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


def is_csp_violation(text):
    return "Content Security Policy" in text or "Refused to" in text


@pytest.fixture
def new_page(browser):
    """new_page(**context_options): a page in a fresh context (own cookies), watched for
    CSP violations and page errors. Checked and closed at the end of the test."""
    contexts, pages = [], []

    def make(**options):
        settings = dict(viewport={"width": 1280, "height": 800}, locale="it-IT")
        settings.update(options)
        context = browser.new_context(**settings)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.browser_log = []  # ("console.<type>" | "pageerror", text)
        page.requests_log = []  # (resource type, method, url)
        page.on("console", lambda message: page.browser_log.append((f"console.{message.type}", message.text)))
        page.on("pageerror", lambda error: page.browser_log.append(("pageerror", str(error))))
        page.on("request", lambda request: page.requests_log.append((request.resource_type, request.method, request.url)))
        pages.append(page)
        return page

    yield make

    problems = []
    for page in pages:
        for kind, text in page.browser_log:
            if kind == "pageerror" or is_csp_violation(text):
                problems.append(f"{kind}: {text}")
    for context in contexts:
        context.close()
    assert not problems, "the browser reported:\n" + "\n".join(problems)


@pytest.fixture
def page(new_page):
    return new_page()


# --- helpers ---------------------------------------------------------------------------------------

def wait_for_htmx(page, timeout=TIMEOUT_MS):
    """Wait until htmx has no request in flight and nothing swapping or settling.

    The predicate is written as a function: Playwright evaluates a bare expression with the
    page's eval(), which the portal's CSP (no 'unsafe-eval') refuses."""
    page.wait_for_function(
        "() => document.querySelectorAll('.htmx-request, .htmx-settling, .htmx-swapping').length === 0",
        timeout=timeout,
    )


def wait_for_mail(smtp, count=1, deadline=MAIL_DEADLINE_SECONDS):
    """The SMTP sink's messages once there are `count` of them (the app's thread sends them)."""
    end = time.monotonic() + deadline
    while len(smtp.messages) < count:
        if time.monotonic() > end:
            raise AssertionError(f"{len(smtp.messages)} mail(s) received in {deadline} s, expected {count}")
        time.sleep(0.1)
    return list(smtp.messages)


def log_in(page, live_server, user="005007", password=None):
    """Log in through the login page as a customer types it; the tests' customer is ROSSI MARIO."""
    page.goto(live_server.url + "/login")
    page.get_by_label("User", exact=True).fill(user)
    page.get_by_label("Password", exact=True).fill(password or PASSWORD)
    page.get_by_role("button", name="Accedi").click()
    expect(page.locator(".welcome")).to_contain_text("Benvenuto ROSSI MARIO")
    # htmx's script is deferred: a click before it ran would be a plain link (seen under load).
    page.wait_for_load_state("load")
