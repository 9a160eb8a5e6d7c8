"""Accessibility in a real browser: axe-core on every page a customer, a visitor and an operator
sees (the dialogs and the states forms show after an error too), the main paths done with the
keyboard alone, and the same paths with JavaScript switched off.

axe-core comes from axe-playwright-python (pinned in requirements-dev.txt), which ships axe's
own script: nothing is fetched at run time and nothing of it is served by the portal. The
script goes in as the context's init script (the DevTools protocol's way, which the portal's
CSP does not see, as it would an injected <script>), and axe.run is called as a function,
not an eval'd string (the CSP refuses 'unsafe-eval').

The pages are read by one browser context per kind of user, logged in once for the module
(the data below is made once too): a page's test only navigates and runs axe.
"""
import json
import os
import re
import threading
from datetime import date, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pyotp
import pytest
from axe_playwright_python.base import AXE_SCRIPT
from playwright.sync_api import expect
from werkzeug.serving import make_server

import accounts
from i18n import rome_today
from models import ApiToken, CannedReply, EmailToken, ImportJob, Reading, Ticket, TicketMessage, User, utcnow
from tests.conftest import TEST_CONFIG, empty_tables, free_port
from tests.e2e.conftest import TIMEOUT_MS, is_csp_violation, log_in, wait_for_htmx
from tests.factories import PASSWORD, make_customer, make_invoice, make_supply_point, make_user, valid_tax_code
from tests.test_advanced_charts import add_measures, fill_totals
from tests.test_documents import store_document

# What fails a page: what stops or seriously hinders someone using a screen reader, the
# keyboard, or a low-vision setting. Minor and moderate findings are reported, not failed.
FAILING_IMPACTS = ("serious", "critical")
CHART_MONTH = "2026-10-01"
# The brand colour of the portal under test: the lightest kind the portal accepts (4.58:1 on the
# page's background, branding.MIN_CONTRAST), so every colour derived from it is checked at its
# worst.
BORDERLINE_BRAND = "#038200"
STAFF_EMAIL, STAFF_PASSWORD = "admin@utility.it", "Sportello-Staff-2026!"
SHOTS = os.environ.get("A11Y_SHOTS")  # a folder: the states the fixes are about, as PNGs to look at


def shot(page, name):
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        # caret="initial": hiding the caret injects a style, which the CSP (rightly) reports.
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True, caret="initial")
TODAY = rome_today()


# --- the portal, its data and its users, once for the module -----------------------------------

@pytest.fixture(scope="module")
def site(migrated_database, smtp_session, tmp_path_factory):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app_ = _make_app(migrated_database, smtp_session, tmp_path_factory, url)
    with app_.app_context():
        empty_tables()
        data = _fill(app_)
    server = make_server("127.0.0.1", port, app_, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="a11y-server", daemon=True)
    thread.start()
    yield SimpleNamespace(url=url, app=app_, port=port, **data)
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
    with app_.app_context():
        empty_tables()


def _make_app(database_url, smtp_server, tmp_path_factory, url):
    from app import create_app

    return create_app(dict(TEST_CONFIG, DATABASE_URL=database_url, MAIL_SERVER="127.0.0.1",
                           MAIL_PORT=smtp_server.port, PORTAL_BASE_URL=url, PORTAL_COLOR=BORDERLINE_BRAND,
                           FILE_STORE=str(tmp_path_factory.mktemp("a11y-store"))))


def _fill(app):
    """Mario (005007) with an electricity and a gas point and something on every page; a
    customer without a login yet (for the registration); canned replies for the back office."""
    mario = make_customer(code="005007", name="ROSSI MARIO", email="mario@example.it", phone="0544 123456")
    electricity = make_supply_point(mario, code="PR002874", pod_pdr="IT001E00287400")
    gas = make_supply_point(mario, code="PR002875", commodity="gas", pod_pdr="01234567891011",
                            address="VIA PROVA 5", postcode="48124", city="RAVENNA", province="RA")
    owner = make_user(mario, username="mario.rossi", email="mario@example.it")
    for months, status in ((1, "unpaid"), (2, "paid"), (3, "paid"), (14, "unpaid")):
        issued = TODAY - timedelta(days=30 * months)
        make_invoice(mario, electricity, issue_date=issued, period_start=issued - timedelta(days=60),
                     period_end=issued - timedelta(days=1), due_date=issued + timedelta(days=20), status=status,
                     energy_f1_kwh=Decimal(120), energy_f2_kwh=Decimal(80), energy_f3_kwh=Decimal(90))
    add_measures(electricity, date(2026, 10, 1), date(2026, 10, 31),
                 kwh=lambda utc: 0.2 + 0.5 * (7 <= utc.hour < 19))
    fill_totals(electricity)
    for days, value in ((60, 500), (30, 530)):
        Reading.create(supply_point=gas, date=TODAY - timedelta(days=days), register="total", value=Decimal(value),
                       source="distributor", status=Reading.VALIDATED)
    ticket = Ticket.create(customer=mario, supply_point=electricity, opened_by=owner, subject="Lettura stimata",
                           category="readings", status=Ticket.WAITING_CUSTOMER)
    TicketMessage.create(ticket=ticket, author=owner, body="Perché la lettura di ottobre è stimata?")
    TicketMessage.create(ticket=ticket, from_staff=True, body="Il distributore non ha letto il contatore.")
    CannedReply.create(title="Lettura stimata", body="Quando il distributore non legge il contatore, i consumi sono stimati.")
    store_document(app, "Bolletta 2030 spiegata", "report", mario, published_on=TODAY - timedelta(days=10))
    store_document(app, "Modulo di voltura", "modulistica", published_on=TODAY - timedelta(days=10))
    make_user(mario, role=User.DELEGATE, delegate_rights=User.READ, invited_by=owner, username="studio.bianchi",
              first_name="Anna", last_name="Bianchi", email="studio.bianchi@example.it")
    ApiToken.create(user=owner, name="Domotica di casa", token_hash="0" * 64)
    newcomer = make_customer(code="005008", name="BIANCHI LUCA", tax_code=valid_tax_code("BNCLCU80A01H199"))
    make_invoice(newcomer, make_supply_point(newcomer, code="PR009999"), number="FT2026-NEW001")
    # A self-reading waiting for the back office (another customer's: Mario sends his own here).
    verdi = make_customer(code="005009", name="VERDI ANNA")
    verdi_gas = make_supply_point(verdi, code="PR009998", commodity="gas")
    Reading.create(supply_point=verdi_gas, date=TODAY - timedelta(days=40), register="total", value=Decimal(100),
                   source="distributor", status=Reading.VALIDATED)
    Reading.create(supply_point=verdi_gas, date=TODAY - timedelta(days=1), register="total", value=Decimal(139),
                   source="customer", status=Reading.PENDING, submitted_by=make_user(verdi))
    accounts.create_staff(STAFF_EMAIL, STAFF_PASSWORD, role=User.ADMIN)  # an admin: Operatori too
    job = ImportJob.create(folder="gone", status=ImportJob.DONE, progress=1, finished_at=utcnow(), report=json.dumps(
        {"summary": ["4 clienti, 6 punti di fornitura"], "problems": ["riga 7: POD non valido"]}))
    # The pages a mailed link opens: an invitation, a new email to confirm, a registration.
    invited = User.create(customer=mario, role=User.DELEGATE, email="invitato@example.it", password_hash="",
                          delegate_rights=User.READ, invited_by=owner)
    tokens = dict(reset_token=accounts.issue_token(owner, EmailToken.RESET),
                  email_token=accounts.issue_token(owner, EmailToken.NEW_EMAIL, new_email="mario.nuovo@example.it"),
                  invite_token=accounts.issue_token(invited, EmailToken.INVITE),
                  confirm_token=accounts.issue_token(make_user(verdi, confirmed=False), EmailToken.CONFIRM))
    return dict(ticket_id=ticket.id, job_id=job.id, canned_reply_id=CannedReply.get().id, **tokens)


def run_axe(page):
    """axe-core's violations on the page as it is now (the whole document)."""
    return page.evaluate("(options) => axe.run(document, options)", {"resultTypes": ["violations"]})["violations"]


def serious_violations(page):
    # What a user sees is the end of an animation (the dialog's pop-in), not its first frame.
    page.wait_for_function("() => document.getAnimations().every(a => a.playState !== 'running')")
    return [v for v in run_axe(page) if v["impact"] in FAILING_IMPACTS]


def describe(violations):
    lines = []
    for violation in violations:
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']}")
        for node in violation["nodes"][:5]:
            lines.append(f"    {' '.join(map(str, node['target']))}: {node['failureSummary'].splitlines()[-1].strip()}")
            lines.append(f"      {node['html'][:160]}")
    return "\n".join(lines)


def assert_accessible(page):
    __tracebackhide__ = True
    found = serious_violations(page)
    assert not found, f"axe on {page.url}:\n{describe(found)}"
    # Two elements with one id: a label or an error then names the wrong field. axe leaves
    # that for a person to review; here it fails (hidden inputs aside: the forms' CSRF tokens,
    # which nothing names).
    duplicated = page.evaluate("""() => {
        const ids = [...document.querySelectorAll('[id]:not(input[type=hidden])')].map(e => e.id);
        return [...new Set(ids.filter((id, i) => ids.indexOf(id) !== i))];
    }""")
    assert not duplicated, f"ids used twice on {page.url}: {duplicated}"


def watched_context(browser, **options):
    """A context with axe in every page, whose pages record page errors and CSP violations."""
    settings = dict(viewport={"width": 1280, "height": 800}, locale="it-IT")
    settings.update(options)
    context = browser.new_context(**settings)
    context.set_default_timeout(TIMEOUT_MS)
    context.add_init_script(script=AXE_SCRIPT)
    context.problems = []
    context.on("page", lambda page: _watch(page, context.problems))
    return context


def _watch(page, problems):
    page.on("pageerror", lambda error: problems.append(f"pageerror: {error}"))
    page.on("console", lambda message: problems.append(f"console: {message.text}") if is_csp_violation(message.text) else None)


def check_and_close(context):
    problems = list(context.problems)
    context.close()
    assert not problems, "the browser reported:\n" + "\n".join(problems)


@pytest.fixture(scope="module")
def visitor(browser, site):
    context = watched_context(browser)
    page = context.new_page()
    yield page
    check_and_close(context)


@pytest.fixture(scope="module")
def customer_page(browser, site):
    context = watched_context(browser)
    page = context.new_page()
    log_in(page, site)
    yield page
    check_and_close(context)


@pytest.fixture(scope="module")
def staff_page(browser, site):
    context = watched_context(browser)
    page = context.new_page()
    staff_logs_in(page, site)
    yield page
    check_and_close(context)


def staff_logs_in(page, site):
    """The admin's first login: the password, then the enrolment of the authenticator."""
    page.goto(site.url + "/login")
    page.get_by_label("User", exact=True).fill(STAFF_EMAIL)
    page.get_by_label("Password", exact=True).fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Accedi").click()
    secret = page.locator("code.secret").inner_text()
    page.get_by_label("Codice", exact=True).fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Verifica").click()
    expect(page.get_by_role("heading", name="Clienti")).to_be_visible()
    page.wait_for_load_state("load")


def visit(page, site, path):
    response = page.goto(site.url + path)
    assert response.status == 200, f"{path}: {response.status}"
    page.wait_for_load_state("load")
    wait_for_htmx(page)


# --- axe: every page -----------------------------------------------------------------------------

CUSTOMER_PAGES = {
    "home": "/?sp=PR002874",
    "home-gas": "/?sp=PR002875",
    "technical-data": "/dati-tecnici?sp=PR002874",
    "contract-data": "/dati-contrattuali?sp=PR002874",
    "invoices": "/fatture?sp=PR002874",
    "invoices-filtered": "/fatture?sp=PR002874&anno=&stato=unpaid&ambito=tutti",
    "invoices-none": f"/fatture?sp=PR002874&anno={TODAY.year - 3}&stato=paid&ambito=",
    "withdrawals-chart": "/prelievi-fatturati?sp=PR002874",
    "withdrawals-comparison": "/prelievi-fatturati?sp=PR002874&vista=confronto",
    "withdrawals-table": "/prelievi-fatturati?sp=PR002874&vista=tabella",
    "measures": "/misure-elettriche?sp=PR002874&dal=2026-10-01&al=2026-10-31",
    "advanced-charts-chart": f"/grafici-avanzati?sp=PR002874&vista=mese&data={CHART_MONTH}&mostra=grafico",
    "advanced-charts-table": f"/grafici-avanzati?sp=PR002874&vista=mese&data={CHART_MONTH}&mostra=tabella",
    "advanced-charts-day-table": "/grafici-avanzati?sp=PR002874&vista=giorno&data=2026-10-25&mostra=tabella",
    "advanced-charts-gas": f"/grafici-avanzati?sp=PR002875&vista=anno&data={CHART_MONTH}",
    "self-reading-electricity": "/autolettura?sp=PR002874",
    "self-reading-gas": "/autolettura?sp=PR002875",
    "tickets": "/ticket?sp=PR002874",
    "ticket-new": "/ticket/nuovo?sp=PR002874",
    "ticket": "/ticket/{ticket_id}?sp=PR002874",
    "my-documents": "/documenti?sp=PR002874",
    "downloads": "/download?sp=PR002874",
    "generic-documents": "/documentazione/modulistica?sp=PR002874",
    "customer-data": "/dati-anagrafici?sp=PR002874",
    "privacy-and-account": "/privacy-e-account?sp=PR002874",
    "delegates": "/delegati?sp=PR002874",
    "password-page": "/cambio-password?sp=PR002874",
}


@pytest.mark.parametrize("path", CUSTOMER_PAGES.values(), ids=CUSTOMER_PAGES.keys())
def test_customer_page_has_no_serious_violation(site, customer_page, path, request):
    visit(customer_page, site, path.format_map(vars(site)))
    assert_accessible(customer_page)
    shot(customer_page, f"customer-{request.node.callspec.id}")


PUBLIC_PAGES = {
    "login": "/login",
    "registration": "/registrazione",
    "forgot-password": "/password-dimenticata",
    "forgot-password-sent": "/password-dimenticata/inviata",
    "reset-password": "/password/nuova/{reset_token}",
    "forgot-username": "/username-dimenticato",
    "forgot-username-sent": "/username-dimenticato/inviata",
    "registration-sent": "/registrazione/inviata",
    "registration-confirm": "/registrazione/conferma/{confirm_token}",
    "new-email-confirm": "/email/conferma/{email_token}",
    "invitation": "/invito/{invite_token}",
    "privacy-notice": "/informativa-privacy",
}


@pytest.mark.parametrize("path", PUBLIC_PAGES.values(), ids=PUBLIC_PAGES.keys())
def test_public_page_has_no_serious_violation(site, visitor, path):
    visit(visitor, site, path.format_map(vars(site)))
    assert_accessible(visitor)


STAFF_PAGES = {
    "customers": "/backoffice/",
    "customer": "/backoffice/clienti/005007",
    "imports": "/backoffice/importazioni",
    "import": "/backoffice/importazioni/{job_id}",
    "tickets": "/backoffice/ticket",
    "ticket": "/backoffice/ticket/{ticket_id}",
    "readings": "/backoffice/letture",
    "operators": "/backoffice/operatori",
    "audit-log": "/backoffice/registro",
    "documents": "/backoffice/documenti",
    "canned-replies": "/backoffice/risposte-predefinite",
    "canned-reply": "/backoffice/risposte-predefinite/{canned_reply_id}",
    "password-page": "/backoffice/cambio-password",
}


@pytest.mark.parametrize("path", STAFF_PAGES.values(), ids=STAFF_PAGES.keys())
def test_back_office_page_has_no_serious_violation(site, staff_page, path, request):
    visit(staff_page, site, path.format_map(vars(site)))
    assert_accessible(staff_page)
    shot(staff_page, f"back-office-{request.node.callspec.id}")


# --- axe: the states a page shows after something was done ---------------------------------------

def test_login_with_a_wrong_password(site, visitor):
    visit(visitor, site, "/login")
    visitor.get_by_label("User", exact=True).fill("005007")
    visitor.get_by_label("Password", exact=True).fill("Sbagliata-2026!")
    visitor.get_by_role("button", name="Accedi").click()
    expect(visitor.get_by_text("Codice cliente, username o password non corretti.")).to_be_visible()
    assert_accessible(visitor)


def test_registration_steps_and_their_errors(site, visitor):
    visit(visitor, site, "/registrazione")
    visitor.get_by_role("button", name="Avanti").click()  # nothing filled: every field says so
    expect(visitor.locator(".field-error").first).to_be_visible()
    assert_accessible(visitor)
    visitor.get_by_label("Codice cliente", exact=True).fill("005008")
    visitor.get_by_label("Codice fiscale o partita IVA", exact=True).fill(valid_tax_code("BNCLCU80A01H199"))
    visitor.get_by_label("Numero di una fattura o POD/PDR", exact=True).fill("FT2026-NEW001")
    wait_for_htmx(visitor)
    visitor.get_by_role("button", name="Avanti").click()
    expect(visitor).to_have_url(re.compile("/registrazione/dati$"))
    wait_for_htmx(visitor)
    assert_accessible(visitor)
    visitor.get_by_role("button", name="Registrati").click()
    expect(visitor.locator(".field-error").first).to_be_visible()
    assert_accessible(visitor)


def test_the_customer_search_and_its_results(site, staff_page):
    visit(staff_page, site, "/backoffice/")
    staff_page.get_by_role("searchbox").fill("ROSSI")
    expect(staff_page.locator("#results")).to_contain_text("005007")
    wait_for_htmx(staff_page)
    assert_accessible(staff_page)


def test_the_password_dialog(site, customer_page):
    visit(customer_page, site, "/?sp=PR002874")
    customer_page.get_by_role("link", name="Cambio Password").click()
    dialog = customer_page.locator("dialog[open]")
    dialog.wait_for()
    wait_for_htmx(customer_page)
    assert_accessible(customer_page)
    dialog.get_by_role("button", name="Conferma").click()  # empty: the errors, in the dialog
    wait_for_htmx(customer_page)
    expect(dialog.locator(".field-error").first).to_be_visible()
    assert_accessible(customer_page)
    customer_page.keyboard.press("Escape")
    expect(customer_page.locator("dialog")).to_have_count(0)


def test_the_back_office_password_dialog(site, staff_page):
    visit(staff_page, site, "/backoffice/ticket")
    staff_page.get_by_role("link", name="Cambio Password").click()
    dialog = staff_page.locator("dialog[open]")
    dialog.wait_for()
    wait_for_htmx(staff_page)
    assert_accessible(staff_page)
    # Its last state: the password changed (the session goes on; nothing after this logs in again).
    dialog.get_by_label("Password attuale").fill(STAFF_PASSWORD)
    dialog.get_by_label("Nuova password", exact=True).fill("Nuova-Chiave-Staff-2027!")
    dialog.get_by_label("Ripeti la nuova password").fill("Nuova-Chiave-Staff-2027!")
    dialog.get_by_role("button", name="Conferma").click()
    wait_for_htmx(staff_page)
    expect(dialog.get_by_role("status")).to_contain_text("Password cambiata")
    assert_accessible(staff_page)
    staff_page.keyboard.press("Escape")
    expect(staff_page.locator("dialog")).to_have_count(0)


def test_contact_edit_with_an_error(site, customer_page):
    visit(customer_page, site, "/dati-anagrafici?sp=PR002874")
    email = customer_page.get_by_label("Email", exact=True)
    email.fill("mario@")
    email.press("Tab")
    wait_for_htmx(customer_page)
    expect(customer_page.locator("#err-email")).to_be_visible()
    assert_accessible(customer_page)


def test_a_new_api_key_shown_once(site, customer_page):
    visit(customer_page, site, "/dati-anagrafici?sp=PR002874")
    customer_page.get_by_label("Nome della chiave").fill("Energy manager")
    customer_page.get_by_role("button", name="Crea una chiave").click()
    wait_for_htmx(customer_page)
    expect(customer_page.locator("#api-tokens code.secret").first).to_contain_text("spt_")
    assert_accessible(customer_page)


def test_ticket_form_and_self_reading_with_errors(site, customer_page):
    visit(customer_page, site, "/ticket/nuovo?sp=PR002874")
    customer_page.get_by_role("button", name="Invia il ticket").click()
    wait_for_htmx(customer_page)
    expect(customer_page.locator("#err-subject")).to_be_visible()
    assert_accessible(customer_page)
    visit(customer_page, site, "/autolettura?sp=PR002875")
    customer_page.get_by_label("Lettura (m³)").fill("700")
    customer_page.get_by_role("button", name="Invia lettura").click()
    wait_for_htmx(customer_page)
    expect(customer_page.get_by_label("Confermo che la lettura è giusta")).to_be_visible()
    assert_accessible(customer_page)


def test_the_second_factor_enrolment(site, new_page):
    with site.app.app_context():
        accounts.create_staff("nuovo@utility.it", STAFF_PASSWORD)
    page = new_page()
    page.add_init_script(script=AXE_SCRIPT)
    page.goto(site.url + "/login")
    page.get_by_label("User", exact=True).fill("nuovo@utility.it")
    page.get_by_label("Password", exact=True).fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Accedi").click()
    expect(page.get_by_role("heading", name="Codice di verifica")).to_be_visible()
    assert_accessible(page)
    page.get_by_label("Codice", exact=True).fill("000000")
    page.get_by_role("button", name="Verifica").click()
    expect(page.locator(".field-error, .flash-error").first).to_be_visible()
    assert_accessible(page)


# --- the keyboard alone ------------------------------------------------------------------------------

FOCUSED = """() => {
    const e = document.activeElement;
    if (!e || e === document.body) return null;
    const style = getComputedStyle(e);
    return {
        id: e.id, tag: e.tagName.toLowerCase(), text: (e.textContent || '').trim().slice(0, 40),
        in_dialog: e.closest('dialog') !== null,
        outlined: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0,
        shadowed: style.boxShadow !== 'none',
    };
}"""


def focused(page):
    """What has the focus (None for the page itself), and whether it shows it."""
    return page.evaluate(FOCUSED)


def assert_focus_shown(page):
    __tracebackhide__ = True
    now = focused(page)
    assert now and (now["outlined"] or now["shadowed"]), f"the focus is not shown on {now}"


def tab_to(page, target, backwards=False, limit=60):
    """Press Tab (Shift+Tab) until `target` (a locator) has the focus; every control the focus
    passes on the way must show it."""
    for _ in range(limit):
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
        if focused(page) is not None:
            assert_focus_shown(page)
        if target.evaluate("element => element === document.activeElement"):
            return
    raise AssertionError(f"{target} not reached with {limit} presses of Tab")


def keyboard_log_in(page, site, user="005007", password=PASSWORD):
    page.goto(site.url + "/login")
    user_field = page.get_by_label("User", exact=True)
    expect(user_field).to_be_focused()  # the page starts where the customer types
    page.keyboard.type(user)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password", exact=True)).to_be_focused()
    assert_focus_shown(page)
    page.keyboard.type(password)
    page.keyboard.press("Enter")
    expect(page.locator(".welcome")).to_contain_text("Benvenuto ROSSI MARIO")
    page.wait_for_load_state("load")


def test_keyboard_login_and_the_skip_link(site, new_page):
    page = new_page()
    keyboard_log_in(page, site)
    page.keyboard.press("Tab")  # the first stop of every page: past the header and the menu
    skip = page.get_by_role("link", name="Vai al contenuto")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    assert_focus_shown(page)
    page.keyboard.press("Enter")
    assert focused(page)["id"] == "main"
    page.keyboard.press("Tab")  # the next stop is in the page's content, not the menu
    assert page.evaluate("() => document.getElementById('main').contains(document.activeElement)")


def test_keyboard_supply_point_switch(site, new_page):
    page = new_page()
    keyboard_log_in(page, site)
    selector = page.get_by_label("Punto di fornitura", exact=True)
    tab_to(page, selector)
    page.keyboard.press("ArrowDown")  # the next point, chosen as a keyboard chooses in a closed select
    wait_for_htmx(page)
    expect(page).to_have_url(re.compile(r"\?sp=PR002875$"))
    expect(page.locator("#main")).to_contain_text("01234567891011")
    expect(selector).to_be_focused()  # the frame changed around it: the customer is where they were
    shot(page, "selector-in-the-header-focused")
    page.keyboard.press("ArrowUp")
    wait_for_htmx(page)
    expect(page).to_have_url(re.compile(r"\?sp=PR002874$"))
    expect(page.locator("#main")).to_contain_text("IT001E00287400")


def test_keyboard_password_dialog(site, new_page):
    page = new_page()
    keyboard_log_in(page, site)
    link = page.get_by_role("link", name="Cambio Password")
    tab_to(page, link)
    page.keyboard.press("Enter")
    dialog = page.locator("dialog[open]")
    dialog.wait_for()
    wait_for_htmx(page)
    expect(dialog.get_by_label("Password attuale")).to_be_focused()  # the focus went in
    controls = dialog.locator("input:not([type=hidden]), button")
    count = controls.count()
    for backwards in (False, True):
        for step in range(count * 2 + 1):  # round the dialog twice, and one more
            page.keyboard.press("Shift+Tab" if backwards else "Tab")
            now = focused(page)
            assert now and now["in_dialog"], f"{'Shift+' if backwards else ''}Tab #{step + 1} left the dialog: {now}"
            assert_focus_shown(page)
            if step == count:
                shot(page, f"dialog-focus-wrapped-{'backwards' if backwards else 'forwards'}")
    page.keyboard.press("Escape")
    expect(page.locator("dialog")).to_have_count(0)
    expect(link).to_be_focused()  # back where the customer opened it
    assert_focus_shown(page)


def test_keyboard_self_reading(site, new_page):
    page = new_page()
    keyboard_log_in(page, site)
    selector = page.get_by_label("Punto di fornitura", exact=True)
    tab_to(page, selector)
    page.keyboard.press("ArrowDown")  # the gas point
    wait_for_htmx(page)
    tab_to(page, page.get_by_role("link", name="Autolettura Contatore"))
    with page.expect_navigation():
        page.keyboard.press("Enter")
    value = page.get_by_label("Lettura (m³)")
    tab_to(page, value)  # past the date's fields and its calendar button, each showing the focus
    page.keyboard.press("Shift+Tab")  # back on the date's calendar button
    assert focused(page)["id"] == "date"
    assert_focus_shown(page)
    shot(page, "self-reading-date-calendar-button-focused")
    page.keyboard.press("Tab")
    expect(value).to_be_focused()
    page.keyboard.type("700")  # far above the usual: the form asks to confirm
    page.keyboard.press("Enter")
    wait_for_htmx(page)
    confirm = page.get_by_label("Confermo che la lettura è giusta")
    expect(confirm).to_be_visible()
    tab_to(page, confirm)
    page.keyboard.press("Space")
    expect(confirm).to_be_checked()
    tab_to(page, page.get_by_role("button", name="Invia lettura"))
    page.keyboard.press("Enter")
    wait_for_htmx(page)
    expect(page.locator(".flash-success")).to_contain_text("Autolettura inviata")
    assert Reading.select().where(Reading.source == "customer", Reading.value == 700).count() == 1


def test_keyboard_new_ticket(site, new_page):
    page = new_page()
    keyboard_log_in(page, site)
    tab_to(page, page.get_by_role("navigation", name="Menu").get_by_role("link", name="Ticket"))
    with page.expect_navigation():
        page.keyboard.press("Enter")
    tab_to(page, page.get_by_role("link", name="Apri un nuovo ticket"))
    with page.expect_navigation():
        page.keyboard.press("Enter")
    tab_to(page, page.get_by_label("Categoria"))
    page.keyboard.type("letture")  # a closed select chooses the option typed
    expect(page.get_by_label("Categoria")).to_have_value("readings")
    tab_to(page, page.get_by_label("Oggetto"))
    page.keyboard.type("Contatore guasto")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Messaggio")).to_be_focused()
    page.keyboard.type("Il display è spento da ieri.")
    tab_to(page, page.get_by_role("button", name="Invia il ticket"))
    with page.expect_navigation():
        page.keyboard.press("Space")
    expect(page.get_by_text("Ticket aperto: ti risponderemo qui")).to_be_visible()
    expect(page.get_by_role("heading", name="Contatore guasto")).to_be_visible()
    assert Ticket.get(Ticket.subject == "Contatore guasto").category == "readings"


# --- without JavaScript: what tests/e2e's other files leave out -------------------------------------
# (Elsewhere without JavaScript: login and the switch on the home page, test_flows; every invoice
# filter value, test_filters; Grafici avanzati's previous, table and date picker,
# test_advanced_charts; a self-reading, test_self_reading; a ticket, test_tickets.)

def follow(page, act):
    """Do `act` and wait for the page it loads; its status."""
    with page.expect_navigation() as answer:
        act()
    return answer.value.status


def test_without_javascript_the_switch_keeps_the_page_and_a_chart_steps_both_ways(site, new_page):
    page = new_page(java_script_enabled=False)
    log_in(page, site)
    visit(page, site, "/fatture?sp=PR002874")
    page.get_by_label("Punto di fornitura", exact=True).select_option("PR002875")
    assert follow(page, lambda: page.get_by_role("button", name="Cambia").click()) == 200
    expect(page).to_have_url(re.compile(r"/fatture\?sp=PR002875$"))  # the same page, for the other point
    expect(page.locator(".totals")).to_contain_text("0 fatture")

    visit(page, site, f"/grafici-avanzati?sp=PR002874&vista=mese&data={CHART_MONTH}")
    period = page.locator(".chart-period-name")
    expect(period).to_have_text("ottobre 2026")
    assert follow(page, lambda: page.get_by_role("link", name="Successivo →").click()) == 200
    expect(period).to_have_text("novembre 2026")
    assert follow(page, lambda: page.get_by_role("link", name="← Precedente").click()) == 200
    expect(period).to_have_text("ottobre 2026")
    assert follow(page, lambda: page.get_by_role("link", name="Settimana").click()) == 200
    page.get_by_label("Vai alla data").fill("2026-10-07")
    assert follow(page, lambda: page.get_by_role("button", name="Mostra").click()) == 200
    expect(period).to_have_text("dal 05/10/2026 al 11/10/2026")
    assert follow(page, lambda: page.get_by_role("link", name="Successivo →").click()) == 200
    expect(period).to_have_text("dal 12/10/2026 al 18/10/2026")
    assert follow(page, lambda: page.get_by_role("link", name="Tabella").click()) == 200
    expect(page.locator("#advanced-charts tbody tr")).to_have_count(7)
    assert "mostra=tabella" in page.url and "vista=settimana" in page.url


# --- no page left out --------------------------------------------------------------------------------

# GET pages without an axe test here, and why. Everything else the URL map has must be above,
# so a new page is checked (or named here) the day it is added.
NOT_CHECKED = {
    **{endpoint: "JSON for programs" for endpoint in (
        "api.consumption", "api.green_button", "api.invoices", "api.openapi", "api.supply_point",
        "api.supply_points", "api.unknown")},
    "health.healthz": "the health probe's answer, for a load balancer",
    "backoffice.ticket_form_address": "a redirect to the ticket's page (backoffice.ticket), no page of its own",
    "tickets.reply_address": "a redirect to the ticket's page (tickets.ticket), no page of its own",
    **{endpoint: "a file, not a page" for endpoint in (
        "backoffice.attachment", "backoffice.reading_photo", "branding_css", "favicon_ico", "favicon_svg", "static")},
}
CHECKED_ELSEWHERE = {  # pages reached by the tests of the states above, not in the lists
    "registration.register_user": "test_registration_steps_and_their_errors",
    "auth.second_factor": "test_the_second_factor_enrolment",
    "errors.too_large": "test_an_error_page",
}


def test_an_error_page(site, visitor):
    """Every error page is this layout: the one nginx shows for a request over its size limit."""
    response = visitor.goto(site.url + "/file-troppo-grande")
    assert response.status == 413
    expect(visitor.get_by_role("heading", level=1)).to_be_visible()
    assert_accessible(visitor)


def test_every_page_of_the_url_map_is_checked(site):
    adapter = site.app.url_map.bind("127.0.0.1")
    listed = {adapter.match(path.split("?")[0].format_map(vars(site)))[0]
              for pages in (CUSTOMER_PAGES, PUBLIC_PAGES, STAFF_PAGES) for path in pages.values()}
    pages = {rule.endpoint for rule in site.app.url_map.iter_rules()
             if "GET" in rule.methods and not getattr(site.app.view_functions[rule.endpoint], "serves_a_file", False)
             and not hasattr(site.app.view_functions[rule.endpoint], "opens")}  # a redirect to a listed page
    missing = pages - listed - set(NOT_CHECKED) - set(CHECKED_ELSEWHERE)
    assert not missing, f"pages without an axe test: {sorted(missing)}"
