"""In a browser, with and without JavaScript: the customer makes a key to the personal data API
under Dati Anagrafici, a program reads the API with it, the customer revokes it (confirming the
dialog, with htmx), and the program is refused from then on."""
import json
import re
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import log_in, wait_for_htmx
from tests.factories import make_customer, make_supply_point, make_user


@pytest.fixture
def customer(live_server):
    customer = make_customer(code="005007", name="ROSSI MARIO")
    make_supply_point(customer, code="PR002874", pod_pdr="IT001E00287400")
    make_user(customer)
    return customer


def api_status(live_server, key):
    request = urllib.request.Request(live_server.url + "/api/v1/supply-points",
                                     headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_a_key_made_used_and_revoked(live_server, customer, new_page, javascript):
    page = new_page(java_script_enabled=javascript)
    log_in(page, live_server)
    page.get_by_role("link", name="Dati Anagrafici").click()
    expect(page.get_by_role("heading", name="Accesso ai tuoi dati (API)")).to_be_visible()
    expect(page.locator("#api-tokens")).to_contain_text("Non hai chiavi attive.")
    address = page.url

    page.get_by_label("Nome della chiave").fill("Domotica di casa")
    page.get_by_role("button", name="Crea una chiave").click()
    shown = page.locator("#api-tokens code.secret").first
    expect(shown).to_contain_text("spt_")
    key = shown.inner_text().strip()
    assert re.fullmatch(r"spt_[A-Za-z0-9_-]{40,}", key)
    row = page.get_by_role("row", name=re.compile("Domotica di casa"))
    expect(row).to_contain_text("mai")
    if javascript:
        wait_for_htmx(page)
        assert page.url == address  # swapped in place: the page's other sections stay
        expect(page.get_by_role("heading", name="Avvisi per email")).to_be_visible()

    status, body = api_status(live_server, key)
    assert status == 200 and [point["code"] for point in body["results"]] == ["PR002874"]

    if javascript:
        page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoca").click()
    expect(page.locator("#api-tokens")).to_contain_text("Non hai chiavi attive.")
    expect(page.locator("#api-tokens")).not_to_contain_text(key)
    if not javascript:
        expect(page.get_by_role("status")).to_contain_text("Chiave «Domotica di casa» revocata.")
    status, body = api_status(live_server, key)
    assert status == 401 and body["status"] == 401
