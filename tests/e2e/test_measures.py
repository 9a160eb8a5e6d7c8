"""Misure elettriche in a real browser, with JavaScript (htmx swaps the list in place and pushes
the URL) and without (plain links and the form's Mostra button): a preset, a page further and
back, dates chosen in the form, a download; each step's URL shows the same page on a reload."""
import os
import re
from datetime import date

import pytest
from playwright.sync_api import expect

import views.consumption
from tests.e2e.conftest import log_in, wait_for_htmx
from tests.test_measures import TODAY, add_measures

SHOTS = "/tmp/shots"
# caret="initial": Playwright hides the caret with a style attribute left on every input, which
# htmx's settle then copies onto the swapped-in inputs, and the CSP refuses.


def first_row(page):
    cells = page.locator("table.measures tbody tr").first.locator("td")
    return cells.nth(0).inner_text(), cells.nth(1).inner_text()


def follow(page, javascript, act):
    """Do `act` (a click) as the customer would: with JavaScript htmx answers in place, without
    the browser loads the page. The answer's status."""
    if javascript:
        with page.expect_response(lambda r: "/misure-elettriche?" in r.url and r.request.headers.get("hx-request") == "true") as answer:
            act()
        wait_for_htmx(page)
    else:
        with page.expect_navigation() as answer:
            act()
    return answer.value.status


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
def test_preset_pages_and_dates_in_the_browser(live_server, new_page, points, owner, monkeypatch, javascript):
    monkeypatch.setattr(views.consumption, "rome_today", lambda: TODAY)
    add_measures(points[0], date(2026, 2, 1), TODAY)
    os.makedirs(SHOTS, exist_ok=True)
    name = "js" if javascript else "nojs"
    page = new_page(java_script_enabled=javascript)
    log_in(page, live_server)
    page.get_by_role("link", name="Misure elettriche").click()
    expect(page.locator("h1")).to_have_text("Misure elettriche")
    assert first_row(page) == ("31/03/2026", "23:45")
    if javascript:
        page.evaluate("window.__sameDocument = true")

    assert follow(page, javascript, lambda: page.get_by_role("link", name="Ultimi 7 giorni").click()) == 200
    expect(page).to_have_url(re.compile(r"periodo=7-giorni"))
    expect(page.locator(".totals")).to_contain_text("Dal 25/03/2026 al 31/03/2026")
    expect(page.locator("#dal")).to_have_value("2026-03-25")
    expect(page.get_by_role("link", name="Ultimi 7 giorni")).to_have_attribute("aria-current", "true")
    page.screenshot(path=f"{SHOTS}/measures-{name}-preset.png", full_page=True, caret="initial")

    assert follow(page, javascript, lambda: page.get_by_role("link", name="Meno recenti").click()) == 200
    expect(page).to_have_url(re.compile(r"periodo=7-giorni&pagina=2"))
    expect(page.locator("table.measures caption")).to_contain_text("pagina 2")
    assert first_row(page) == ("30/03/2026", "23:45")  # a page is 96 quarter hours: a day
    page.screenshot(path=f"{SHOTS}/measures-{name}-page-2.png", full_page=True, caret="initial")
    page.reload()  # the pushed URL is a whole page
    assert first_row(page) == ("30/03/2026", "23:45")
    if javascript:
        page.evaluate("window.__sameDocument = true")
    assert follow(page, javascript, lambda: page.get_by_role("link", name="Più recenti").click()) == 200
    assert first_row(page) == ("31/03/2026", "23:45")

    if javascript:  # each date is applied as it changes
        for field, value in (("#dal", "2026-02-10"), ("#al", "2026-02-10")):
            with page.expect_response(lambda r: "/misure-elettriche?" in r.url and r.request.headers.get("hx-request") == "true"):
                page.locator(field).fill(value)
            wait_for_htmx(page)
    else:
        page.locator("#dal").fill("2026-02-10")
        page.locator("#al").fill("2026-02-10")
        assert follow(page, javascript, lambda: page.get_by_role("button", name="Mostra").click()) == 200
    expect(page).to_have_url(re.compile(r"dal=2026-02-10&al=2026-02-10"))
    expect(page.locator(".totals")).to_contain_text("Dal 10/02/2026 al 10/02/2026")
    assert first_row(page) == ("10/02/2026", "23:45")
    expect(page.locator("table.measures tbody tr")).to_have_count(96)
    expect(page.get_by_role("link", name="Meno recenti")).to_have_count(0)
    page.screenshot(path=f"{SHOTS}/measures-{name}-dates.png", full_page=True, caret="initial")

    with page.expect_download() as download:
        page.get_by_role("link", name="CSV per Excel").click()
    assert download.value.suggested_filename == "misure-PR002874-2026-02-10-2026-02-10-excel.csv"
    if javascript:
        assert page.evaluate("window.__sameDocument") is True  # every step was swapped in place


def test_a_gas_point_chosen_in_the_selector(live_server, new_page, points, owner):
    page = new_page()
    log_in(page, live_server)
    page.goto(live_server.url + "/misure-elettriche?sp=PR002874")
    with page.expect_response(lambda r: "sp=PR002875" in r.url):
        page.locator("#sp").select_option("PR002875")
    wait_for_htmx(page)
    expect(page.locator("#frame")).to_contain_text("è una fornitura di gas")
    expect(page.locator("nav.menu")).not_to_contain_text("Misure elettriche")
    os.makedirs(SHOTS, exist_ok=True)
    page.screenshot(path=f"{SHOTS}/measures-gas.png", full_page=True, caret="initial")
    page.get_by_role("link", name="Prelievi Fatturati").last.click()
    expect(page.locator("h1")).to_have_text("Prelievi Fatturati")
