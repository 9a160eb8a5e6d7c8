"""Invoices and billed consumption in a real browser: more rows and a filter by year in place;
the chart switched to the table and to the year-on-year chart in place (the charts' images
really load)."""
import re
from datetime import date
from decimal import Decimal

from playwright.sync_api import expect

from tests.e2e.conftest import wait_for_htmx
from tests.factories import PASSWORD, make_customer, make_invoice, make_supply_point, make_user
from views.invoices import INVOICE_PAGE


def test_filter_invoices_by_year_and_switch_chart_to_table(live_server, page):
    customer = make_customer(code="005007", name="ROSSI MARIO")
    point = make_supply_point(customer, code="PR002874")
    make_user(customer)
    for year in (2025, 2026):
        for month in range(1, 13):
            make_invoice(customer, point, number=f"F{year}-{month:02d}", issue_date=date(year, month, 10),
                         period_start=date(year, month, 1), period_end=date(year, month, 28),
                         energy_f1_kwh=Decimal(100 + month), energy_f2_kwh=Decimal(50), energy_f3_kwh=Decimal(80),
                         total=Decimal("42.00"), status="paid")
    for month in (11, 12):  # two more than a page holds
        make_invoice(customer, point, number=f"F2024-{month}", issue_date=date(2024, month, 10), total=Decimal("40.00"))

    page.goto(live_server.url + "/login")
    page.get_by_label("User", exact=True).fill("005007")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Accedi").click()
    expect(page.locator(".welcome")).to_have_text("Benvenuto ROSSI MARIO")

    page.get_by_role("link", name="Elenco fatture").click()
    expect(page.locator(".totals")).to_contain_text("26 fatture")
    rows = page.locator("table.invoices tbody tr:not(#invoice-more) td:first-child")
    expect(rows).to_have_count(INVOICE_PAGE)
    page.evaluate("window.__sameDocument = true")
    page.get_by_role("link", name="Mostra altre").click()
    expect(rows).to_have_count(26)
    assert rows.all_inner_texts()[-2:] == ["F2024-12", "F2024-11"]
    expect(page.get_by_role("link", name="Mostra altre")).to_have_count(0)
    page.get_by_label("Anno").select_option("2025")
    wait_for_htmx(page)
    expect(page.locator(".totals")).to_contain_text("12 fatture")
    expect(page).to_have_url(re.compile(r"anno=2025"))
    numbers = rows.all_inner_texts()
    assert len(numbers) == 12 and all(n.startswith("F2025-") for n in numbers)
    assert page.evaluate("window.__sameDocument") is True

    page.get_by_role("link", name="Prelievi Fatturati").click()
    chart = page.locator("figure.chart img")
    expect(chart).to_be_visible()
    page.wait_for_function("() => document.querySelector('figure.chart img').complete")
    assert page.evaluate("document.querySelector('figure.chart img').naturalWidth") > 0  # the SVG loaded
    page.evaluate("window.__sameDocument = true")
    page.get_by_role("link", name="Tabella").click()
    wait_for_htmx(page)
    expect(page.locator("#withdrawals table")).to_be_visible()
    expect(page.locator("figure.chart")).to_have_count(0)
    expect(page).to_have_url(re.compile(r"vista=tabella"))
    assert page.evaluate("window.__sameDocument") is True

    page.get_by_role("link", name="Confronto con l'anno prima").click()
    wait_for_htmx(page)
    expect(page).to_have_url(re.compile(r"vista=confronto"))
    page.wait_for_function("() => document.querySelector('figure.chart img').complete")
    assert page.evaluate("document.querySelector('figure.chart img').naturalWidth") > 0
    expect(page.locator(".totals")).to_contain_text("stessi mesi del 2025")
    assert page.evaluate("window.__sameDocument") is True
