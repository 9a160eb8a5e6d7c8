"""The portal on a phone (390×844) and on a wide screen (1280×800): the menu closed to one line
that names the section on a phone, with or without JavaScript, and always open on a wide
screen; every table a customer reads fits the phone's width, its rows shown as cards.

With E2E_SHOTS=<folder> each state is also saved there as a PNG, to be looked at."""
import json
import os
import re
from datetime import date, timedelta
from decimal import Decimal

import pyotp
import pytest
from playwright.sync_api import expect

import accounts
import totp
from models import User, utcnow
from tests.e2e.conftest import log_in, wait_for_htmx
from tests.factories import make_customer, make_invoice, make_supply_point, make_user, store_pdf
from tests.import_data import pdf_bytes
from tests.test_documents import store_document

PHONE = {"width": 390, "height": 844}
WIDE = {"width": 1280, "height": 800}
SHOTS = os.environ.get("E2E_SHOTS")


def shot(page, name):
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"))


@pytest.fixture
def customer(live_server):
    """005007 with an electricity point (a year of invoices, the newest overdue with its PDF,
    technical and contract data) and a gas point; a document in each kind of list."""
    app = live_server.app
    customer = make_customer(code="005007", name="ROSSI MARIO")
    point = make_supply_point(customer, code="PR002874", pod_pdr="IT001E00287400",
                              technical_data=json.dumps({"Potenza impegnata": "3 kW", "Tensione": "230 V"}),
                              contract_data=json.dumps({"Offerta": "Casa Luce Fissa Web Bioraria"}))
    make_supply_point(customer, code="PR002875", commodity="gas", pod_pdr="01234567891011")
    make_user(customer)
    this_year = utcnow().date().year
    for month in range(1, 13):
        issue = date(this_year - 1, month, 10)
        make_invoice(customer, point, number=f"FT{this_year - 1}-{month:06d}", issue_date=issue,
                     period_start=date(this_year - 1, month, 1), period_end=date(this_year - 1, month, 28),
                     due_date=issue + timedelta(days=20), total=Decimal("84.19"), status="paid",
                     energy_f1_kwh=Decimal(110 + month), energy_f2_kwh=Decimal(95), energy_f3_kwh=Decimal(130),
                     peak_power_kw=Decimal("2.8"))
    newest = date(this_year, 1, 10)
    make_invoice(customer, point, number=f"FT{this_year}-000001", issue_date=newest,
                 period_start=date(this_year - 1, 12, 1), period_end=date(this_year - 1, 12, 31),
                 due_date=newest + timedelta(days=20), total=Decimal("1234.56"), status="unpaid",
                 pdf_path=store_pdf(app, pdf_bytes("Fattura"))[0])
    with app.app_context():
        store_document(app, "Contratto di fornitura energia elettrica", "personal", customer=customer)
        store_document(app, "Report consumi 4° trimestre", "report", customer=customer,
                       period_start=date(this_year - 1, 10, 1), period_end=date(this_year - 1, 12, 31))
        store_document(app, "Nuove tariffe dal 1° gennaio", "comunicati")
    return customer


def menu_summary(page):
    return page.get_by_role("navigation", name="Menu").locator("summary")


def assert_on_first_screen(page, locator):
    box = locator.bounding_box()
    assert box is not None and box["y"] + box["height"] <= page.viewport_size["height"], box


def assert_within_width(page, locator):
    box = locator.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= page.viewport_size["width"], box


def assert_no_sideways_scroll(page):
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"the page is {width} px wide"


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_on_a_phone_the_menu_is_one_line_naming_the_section(live_server, customer, new_page, javascript):
    page = new_page(viewport=PHONE, java_script_enabled=javascript)
    state = "js" if javascript else "nojs"
    log_in(page, live_server)
    page.goto(live_server.url + "/fatture")

    summary = menu_summary(page)
    expect(summary).to_have_text("Menu · Elenco fatture")
    expect(page.get_by_role("link", name="Prelievi Fatturati")).to_be_hidden()
    heading = page.get_by_role("heading", name="Elenco fatture", level=1)
    expect(heading).to_be_visible()
    assert_on_first_screen(page, heading)
    shot(page, f"phone-menu-closed-{state}")

    summary.click()
    link = page.get_by_role("link", name="Prelievi Fatturati")
    expect(link).to_be_visible()
    expect(page.get_by_role("link", name="Comunicati")).to_be_visible()
    shot(page, f"phone-menu-open-{state}")
    link.click()
    expect(page).to_have_url(re.compile(r"/prelievi-fatturati\?sp=PR002874$"))
    heading = page.get_by_role("heading", name="Prelievi Fatturati", level=1)
    expect(heading).to_be_visible()
    expect(menu_summary(page)).to_have_text("Menu · Prelievi Fatturati")
    expect(page.get_by_role("link", name="Elenco fatture")).to_be_hidden()  # closed again
    assert_on_first_screen(page, heading)

    if javascript:  # the selector swaps the frame, menu included, in place
        page.evaluate("window.__sameDocument = true")
        page.get_by_label("Punto di fornitura", exact=True).select_option("PR002875")
        wait_for_htmx(page)
        expect(page).to_have_url(re.compile(r"sp=PR002875"))
        assert page.evaluate("window.__sameDocument") is True
        expect(menu_summary(page)).to_have_text("Menu · Prelievi Fatturati")
        menu_summary(page).click()
        expect(page.get_by_role("link", name="Dati Tecnici")).to_be_visible()
        shot(page, "phone-menu-open-after-point-switch")


def test_on_a_wide_screen_the_menu_is_open_without_a_click(live_server, customer, new_page):
    page = new_page(viewport=WIDE)
    log_in(page, live_server)
    page.goto(live_server.url + "/fatture")
    expect(menu_summary(page)).to_be_hidden()
    for name in ("Home Page", "Elenco fatture", "Download", "Storico"):
        expect(page.get_by_role("link", name=name, exact=True)).to_be_visible()
    shot(page, "wide-menu")
    page.get_by_role("link", name="Download", exact=True).click()
    expect(page.get_by_role("heading", name="Download", level=1)).to_be_visible()


def test_on_a_phone_an_invoice_shows_amount_due_date_status_and_pdf_without_scrolling(live_server, customer, new_page):
    page = new_page(viewport=PHONE)
    log_in(page, live_server)
    page.goto(live_server.url + "/fatture")
    table = page.locator("table.invoices")
    expect(table).to_be_visible()
    headers = table.locator("thead th").all_text_contents()
    first_row = table.locator("tbody tr").first
    year = utcnow().date().year
    expected = {"Totale": "1.234,56", "Scadenza": f"30/01/{year}", "Stato": "da pagare"}
    for column, text in expected.items():
        cell = first_row.locator("td").nth(headers.index(column))
        expect(cell).to_contain_text(text)
        assert_within_width(page, cell)
    pdf = first_row.get_by_role("link", name=f"PDF della fattura FT{year}-000001")
    expect(pdf).to_be_visible()
    assert_within_width(page, pdf)
    assert_no_sideways_scroll(page)
    shot(page, "phone-invoices")
    # Still a table with its column headers for a screen reader.
    expect(page.get_by_role("columnheader", name="Totale")).to_have_count(1)
    expect(first_row.get_by_role("cell", name="1.234,56")).to_have_count(1)


@pytest.mark.parametrize("path", [
    "/fatture", "/prelievi-fatturati?vista=tabella", "/documenti", "/download", "/documentazione/comunicati",
    "/dati-tecnici", "/dati-contrattuali", "/dati-anagrafici", "/",
])
def test_on_a_phone_no_customer_page_scrolls_sideways(live_server, customer, new_page, path):
    page = new_page(viewport=PHONE)
    log_in(page, live_server)
    page.goto(live_server.url + path)
    expect(page.locator("h1")).to_be_visible()
    assert_on_first_screen(page, page.locator("h1"))
    assert_no_sideways_scroll(page)
    for table in page.locator("main table").all():
        first_row = table.locator("tbody tr").first
        for cell in first_row.locator("td").all():
            if cell.is_visible():  # an empty cell (no period, no PDF) is left out of the card
                assert_within_width(page, cell)
        expect(first_row.locator("td").first).to_be_visible()
    shot(page, "phone-page-" + (re.sub(r"\W+", "-", path).strip("-") or "home"))


def test_on_a_phone_the_back_office_menu_is_one_line_too(live_server, new_page):
    secret = pyotp.random_base32()
    with live_server.app.app_context():
        operator = accounts.create_staff("operatore@utility.it", "Sportello-Staff-2026!")
        User.update(totp_secret=totp.encrypt_secret(operator.id, secret)).where(User.id == operator.id).execute()
    page = new_page(viewport=PHONE)
    page.goto(live_server.url + "/login")
    page.get_by_label("User", exact=True).fill("operatore@utility.it")
    page.get_by_label("Password", exact=True).fill("Sportello-Staff-2026!")
    page.get_by_role("button", name="Accedi").click()
    page.get_by_label("Codice", exact=True).fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Verifica").click()

    heading = page.get_by_role("heading", name="Clienti", level=1)
    expect(heading).to_be_visible()
    assert_on_first_screen(page, heading)
    summary = page.get_by_role("navigation", name="Area operatori").locator("summary")
    expect(summary).to_have_text("Menu · Clienti")
    expect(page.get_by_role("link", name="Importazioni")).to_be_hidden()
    shot(page, "phone-backoffice-menu-closed")
    summary.click()
    page.get_by_role("link", name="Importazioni").click()
    expect(page.get_by_role("heading", name="Importazioni", level=1)).to_be_visible()
    expect(summary).to_have_text("Menu · Importazioni")
