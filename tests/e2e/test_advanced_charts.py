"""Grafici avanzati in a real browser: a month's chart stepped back a month, switched to the table
and back, the date picker, the back button; and the same view without JavaScript."""
import os
import re
from datetime import date, timedelta

import pytest
from playwright.sync_api import expect

from i18n import rome_midnight_utc
from models import Measure, MonthlyConsumption, Reading
from tests.e2e.conftest import log_in, wait_for_htmx
from tests.factories import make_customer, make_invoice, make_supply_point, make_user
from tests.test_advanced_charts import fill_totals, keep_measures_until

SHOTS = "/tmp/shots"


def shot(page, name):
    os.makedirs(SHOTS, exist_ok=True)
    # caret="initial": hiding the caret sets a style attribute on inputs, which htmx then copies.
    page.screenshot(path=f"{SHOTS}/charts-{name}.png", full_page=True, caret="initial")


@pytest.fixture
def mario(live_server):
    customer = make_customer(code="005007", name="ROSSI MARIO")
    point = make_supply_point(customer, code="PR002874")
    make_user(customer)
    # October and November 2026, and November 2025, hourly: more by day than by night, a few
    # estimated hours on 10 October.
    rows, utc = [], rome_midnight_utc(date(2025, 11, 1))
    end = rome_midnight_utc(date(2026, 12, 1))
    while utc < end:
        if utc >= rome_midnight_utc(date(2026, 10, 1)) or utc < rome_midnight_utc(date(2025, 12, 1)):
            hour = (utc.hour + 1) % 24
            kwh = 0.2 + 0.5 * (8 <= hour < 20) + 0.4 * (19 <= hour < 22) + 0.01 * (utc.day % 7)
            estimated = utc.date() == date(2026, 10, 10) and 6 <= utc.hour < 12
            rows.append(dict(supply_point=point, start=utc, kwh=round(kwh, 3), interval_minutes=60,
                             quality="estimated" if estimated else "actual"))
        utc += timedelta(hours=1)
    for start in range(0, len(rows), 500):
        Measure.insert_many(rows[start:start + 500]).execute()
    fill_totals(point)
    keep_measures_until(point)
    # Gas: monthly readings (one a self-reading, one estimated) and an invoice before them.
    gas = make_supply_point(customer, code="PR002875", commodity="gas")
    for month, value, source in ((6, 900, "distributor"), (7, 905, "estimated"), (8, 912, "distributor"),
                                 (9, 925, "distributor"), (10, 980, "customer"), (11, 1090, "distributor")):
        Reading.create(supply_point=gas, date=date(2026, month + 1, 1) - timedelta(days=1), register="total",
                       value=value, source=source)
    make_invoice(customer, gas, issue_date=date(2026, 6, 10), period_start=date(2026, 1, 1),
                 period_end=date(2026, 5, 31), gas_smc=640)
    # 24 similar households with an October: the comparison shows.
    for n in range(24):
        other = make_customer(province="RA")
        MonthlyConsumption.create(supply_point=make_supply_point(other, province="RA"), month=date(2026, 10, 1),
                                  f1=250 + 9 * n, f2=60, f3=80, intervals=745)
    return point


def image_loaded(page):
    """The chart's <img> has arrived and decoded (naturalWidth is 0 for a broken image)."""
    page.wait_for_function("() => { const i = document.querySelector('figure.chart img');"
                           " return i && i.complete && i.naturalWidth > 0; }")


def test_step_back_a_month_switch_to_the_table_and_back(live_server, new_page, mario):
    page = new_page()
    log_in(page, live_server)
    page.get_by_role("link", name="Grafici avanzati").click()
    expect(page.get_by_role("heading", name="Grafici avanzati", level=1)).to_be_visible()
    page.goto(live_server.url + "/grafici-avanzati?sp=PR002874&vista=mese&data=2026-11-01")
    image_loaded(page)
    expect(page.locator(".chart-period-name")).to_have_text("novembre 2026")
    # The live region a screen reader reads out stays in the page (htmx swaps what is beside
    # it): empty when the page loads, the new period once a step has swapped the chart.
    announcer = page.locator("#announcer")
    expect(announcer).to_have_attribute("aria-live", "polite")
    expect(announcer).to_have_text("")
    announcer.evaluate("element => { element.dataset.since = 'the page loaded'; }")
    shot(page, "month")

    with page.expect_response(lambda r: "/grafici-avanzati?" in r.url) as answer:
        page.get_by_role("link", name="← Precedente").click()
    wait_for_htmx(page)
    assert answer.value.status == 200
    expect(page.locator(".chart-period-name")).to_have_text("ottobre 2026")
    expect(announcer).to_have_text("ottobre 2026")
    expect(announcer).to_have_attribute("data-since", "the page loaded")  # the same element, not a new one
    assert "data=2026-10-01" in page.url and "vista=mese" in page.url
    assert "data=2026-10-01" in page.locator("figure.chart img").get_attribute("src")
    image_loaded(page)
    expect(page.locator("section.comparison")).to_contain_text("Tra 25 famiglie della tua provincia")
    shot(page, "month-back")

    page.get_by_role("link", name="Tabella").click()
    wait_for_htmx(page)
    expect(page.locator("#advanced-charts table")).to_be_visible()
    assert "mostra=tabella" in page.url
    expect(page.locator("tbody tr")).to_have_count(31)
    expect(page.locator("tbody tr").nth(9)).to_contain_text("Stimata in parte (6 su 24)")
    shot(page, "table")

    page.get_by_role("link", name="Grafico").click()
    wait_for_htmx(page)
    image_loaded(page)
    expect(page.locator("#advanced-charts table")).to_have_count(0)
    assert "mostra=grafico" in page.url

    # Back: the table of October again, whole (htmx keeps no history copy: the URL is loaded).
    page.go_back()
    expect(page.locator("#advanced-charts table")).to_be_visible()
    expect(page.locator(".chart-period-name")).to_have_text("ottobre 2026")

    # The date picker: a day of the week view.
    page.get_by_role("link", name="Settimana").click()
    wait_for_htmx(page)
    with page.expect_response(lambda r: "/grafici-avanzati?" in r.url) as answer:
        page.get_by_label("Vai alla data").fill("2026-10-25")
    wait_for_htmx(page)
    assert answer.value.status == 200
    expect(page.locator(".chart-period-name")).to_have_text("dal 19/10/2026 al 25/10/2026")
    expect(page.locator("tbody tr").last).to_contain_text("domenica 25/10/2026")
    shot(page, "week-table")

    # A DST day's hours, from the week's table: 25 of them.
    page.get_by_role("link", name="domenica 25/10/2026").click()
    wait_for_htmx(page)
    expect(page.locator("tbody tr")).to_have_count(25)
    page.get_by_role("link", name="Grafico").click()
    wait_for_htmx(page)
    image_loaded(page)
    shot(page, "dst-day")
    page.reload()
    expect(page.locator(".chart-period-name")).to_have_text("25/10/2026")

    # The gas point, chosen in the selector: no day view, Smc by month from readings and invoices.
    page.goto(live_server.url + "/grafici-avanzati?sp=PR002875&vista=anno&data=2026-01-01")
    image_loaded(page)
    expect(page.get_by_role("link", name="Giorno")).to_have_count(0)
    expect(page.locator(".summary-total dd")).to_have_text("830,0 Smc")
    shot(page, "gas-year")


def test_without_a_date_the_newest_month_opens_and_a_step_back_is_read_out(live_server, new_page, mario):
    """Opened without a date, the chart shows the month of the point's newest measure (kept by
    the import as measures_until) and says when it ends; a step back swaps the block in place
    and its period reaches the page's live region."""
    page = new_page()
    log_in(page, live_server)
    assert page.goto(live_server.url + "/grafici-avanzati?sp=PR002874&vista=mese").status == 200
    expect(page.locator(".chart-period-name")).to_have_text("novembre 2026")
    expect(page.locator(".chart-updated")).to_contain_text("01/12/2026 00:00")
    with page.expect_response(lambda r: "/grafici-avanzati?" in r.url) as answer:
        page.get_by_role("link", name="← Precedente").click()
    wait_for_htmx(page)
    assert answer.value.status == 200
    expect(page.locator(".chart-period-name")).to_have_text("ottobre 2026")
    expect(page.locator("#announcer")).to_have_text("ottobre 2026")
    image_loaded(page)
    # Up to the year and down again: the month one came from, not January.
    for link, name in (("Anno", "2026"), ("Mese", "ottobre 2026")):
        with page.expect_response(lambda r: "/grafici-avanzati?" in r.url) as answer:
            page.get_by_role("link", name=link, exact=True).click()
        wait_for_htmx(page)
        assert answer.value.status == 200
        expect(page.locator(".chart-period-name")).to_have_text(name)
    assert "vista=mese" in page.url and "data=2026-10-01" in page.url


def test_the_same_view_without_javascript(live_server, new_page, mario):
    page = new_page(java_script_enabled=False)
    log_in(page, live_server)
    page.goto(live_server.url + "/grafici-avanzati?sp=PR002874&vista=mese&data=2026-11-01")
    expect(page.locator(".chart-period-name")).to_have_text("novembre 2026")
    with page.expect_navigation() as answer:
        page.get_by_role("link", name="← Precedente").click()
    assert answer.value.status == 200
    expect(page.locator(".chart-period-name")).to_have_text("ottobre 2026")
    image_loaded(page)
    with page.expect_navigation():
        page.get_by_role("link", name="Tabella").click()
    expect(page.locator("tbody tr")).to_have_count(31)
    shot(page, "nojs-table")
    with page.expect_navigation():
        page.get_by_role("link", name="Grafico").click()
    image_loaded(page)
    page.get_by_label("Vai alla data").fill("2026-10-25")
    with page.expect_navigation() as answer:
        page.get_by_role("button", name="Mostra").click()
    assert answer.value.status == 200
    expect(page.locator(".chart-period-name")).to_have_text("ottobre 2026")
    assert re.search(r"data=2026-10-25", page.url)
    with page.expect_navigation():
        page.get_by_role("link", name="Giorno").click()
    expect(page.locator(".chart-period-name")).to_have_text("25/10/2026")  # the day picked, the clocks going back
    image_loaded(page)
    shot(page, "nojs-day")
