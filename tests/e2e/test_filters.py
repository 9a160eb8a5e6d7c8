"""Every value of every filter in a real browser, with JavaScript (htmx swaps the list in place
and pushes the URL) and without (the form's Filtra button): each answer is a 200, the rows
are exactly those the data and the labels promise, and the control shows the chosen value,
after a reload too."""
import pytest

from tests.e2e.conftest import log_in, wait_for_htmx
from tests.test_documents import REPORTS, expected_reports, mario, store_document  # noqa: F401 (mario: a fixture)
from tests.test_invoice_filters import STATUS_RULES, YEARS, customer_data, expected, newest_first  # noqa: F401

INVOICE_CONTROLS = [("anno", ("",) + tuple(str(y) for y in sorted(YEARS, reverse=True)) + ("",)),
                    ("stato", tuple(STATUS_RULES) + ("",)),
                    ("ambito", ("tutti", ""))]


def choose(page, javascript, path, act):
    """Do `act` (change a control) and submit as the customer would; the answer's status."""
    if javascript:
        with page.expect_response(lambda r: path in r.url and r.request.headers.get("hx-request") == "true") as answer:
            act()
        wait_for_htmx(page)
    else:
        act()
        with page.expect_navigation() as answer:
            page.get_by_role("button", name="Filtra").click()
    return answer.value.status


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
def test_every_invoice_filter_value_in_the_browser(live_server, new_page, customer_data, javascript):  # noqa: F811
    _client, invoices = customer_data
    page = new_page(java_script_enabled=javascript)
    log_in(page, live_server)
    page.goto(live_server.url + "/fatture?sp=PR002874")
    chosen = {"anno": "", "stato": "", "ambito": ""}
    for name, values in INVOICE_CONTROLS:
        for value in values:
            status = choose(page, javascript, "/fatture?", lambda name=name, value=value: page.locator(f"#{name}").select_option(value))
            chosen[name] = value
            state = f"{name}={value!r} ({'js' if javascript else 'no js'})"
            assert status == 200, state
            rows = expected(invoices, chosen["anno"], chosen["stato"], chosen["ambito"])
            shown = page.locator("table.invoices tbody tr:not(#invoice-more) td:first-child").all_inner_texts()
            assert shown == newest_first(rows), state
            assert page.locator(".totals").inner_text().startswith(
                f"{len(rows)} fatture" if len(rows) != 1 else "1 fattura"), state
            assert page.locator(f"#{name}").input_value() == value, state
            assert f"{name}={value}" in page.url, state  # the URL says what the list shows
    page.reload()  # a bookmark or a reload shows the same choice
    assert {name: page.locator(f"#{name}").input_value() for name in chosen} == chosen


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
def test_every_download_date_in_the_browser(live_server, new_page, mario, javascript):  # noqa: F811
    customer, _point = mario
    for title, published in REPORTS.items():
        store_document(live_server.app, title, "report", customer, published_on=published)
    page = new_page(java_script_enabled=javascript)
    log_in(page, live_server)
    page.goto(live_server.url + "/download?sp=PR002874")
    chosen = {"dal": "", "al": ""}
    for name, value in (("dal", "2026-02-05"), ("dal", "2026-07-01"), ("al", "2026-10-20"), ("al", "2026-06-30"),
                        ("al", ""), ("dal", "")):
        status = choose(page, javascript, "/download?", lambda name=name, value=value: page.locator(f"#{name}").fill(value))
        chosen[name] = value
        state = f"{chosen} ({'js' if javascript else 'no js'})"
        assert status == 200, state
        assert page.locator("table.cards td a:not([download])").all_inner_texts() == expected_reports(
            chosen["dal"], chosen["al"]), state
        assert page.locator(f"#{name}").input_value() == value, state
        # An end before the start is said next to the end's field, and the list ignores it.
        backwards = bool(chosen["dal"] and chosen["al"] and chosen["al"] < chosen["dal"])
        assert page.locator("#err-al").is_visible() == backwards, state


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
def test_every_withdrawals_year_in_the_browser(live_server, new_page, javascript):
    """Prelievi Fatturati's year select (the noscript button is "Mostra"): each year its total."""
    from datetime import date
    from decimal import Decimal

    from tests.factories import make_customer, make_invoice, make_supply_point, make_user

    customer = make_customer(code="005007", name="ROSSI MARIO")
    point = make_supply_point(customer, code="PR002874")
    make_user(customer)
    for year, kwh in ((2024, 100), (2025, 200), (2026, 300)):
        make_invoice(customer, point, issue_date=date(year, 3, 5), period_start=date(year, 2, 1),
                     energy_f1_kwh=Decimal(kwh), energy_f2_kwh=Decimal(0), energy_f3_kwh=Decimal(0))
    page = new_page(java_script_enabled=javascript)
    log_in(page, live_server)
    page.goto(live_server.url + "/prelievi-fatturati?sp=PR002874&vista=tabella")
    for year, kwh in ((2024, 100), (2026, 300), (2025, 200)):
        if javascript:
            with page.expect_response(lambda r: "/prelievi-fatturati?" in r.url) as answer:
                page.locator("#anno").select_option(str(year))
            wait_for_htmx(page)
        else:
            page.locator("#anno").select_option(str(year))
            with page.expect_navigation() as answer:
                page.get_by_role("button", name="Mostra").click()
        assert answer.value.status == 200
        assert page.locator(".totals").inner_text().startswith(f"Totale {year}: {kwh} kWh")
        assert page.locator("#anno").input_value() == str(year) and f"anno={year}" in page.url
    page.reload()
    assert page.locator("#anno").input_value() == "2025"
