"""In a browser, with and without JavaScript: the customer corrects their phone numbers under Dati
Anagrafici (the mistake said next to the field, as they leave it with htmx and on sending in both
cases, with what they typed kept), then changes their email, which changes only once the link
mailed to the new address is followed; the old address is told."""
import re

import pytest
from playwright.sync_api import expect

from models import Customer, User
from tests.e2e.conftest import log_in, wait_for_htmx, wait_for_mail
from tests.factories import make_customer, make_supply_point, make_user
from tests.helpers import text_of


@pytest.fixture
def customer(live_server):
    customer = make_customer(code="005007", name="ROSSI MARIO", email="mario@example.it",
                             phone="0544 401234", mobile="333 1234567")
    make_supply_point(customer, code="PR002874", pod_pdr="IT001E00287400")
    make_user(customer, email="mario@example.it")
    return customer


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_phones_corrected_and_email_changed_through_its_link(live_server, customer, new_page, smtp, javascript):
    page = new_page(java_script_enabled=javascript)
    log_in(page, live_server)
    page.get_by_role("link", name="Dati Anagrafici").click()
    expect(page.get_by_role("heading", name="Contatti")).to_be_visible()
    expect(page.get_by_label("Telefono")).to_have_value("0544 401234")
    expect(page.get_by_label("Cellulare")).to_have_value("333 123 4567")
    address = page.url

    mobile = page.get_by_label("Cellulare")
    mobile.fill("0544 401299")  # a landline in the mobile's field
    error = page.locator("#err-mobile")
    if javascript:
        mobile.blur()  # htmx checks the field as the customer leaves it
        expect(error).to_contain_text("Questo non è un numero di cellulare")
        wait_for_htmx(page)
    page.get_by_role("button", name="Salva i contatti").click()
    if javascript:
        wait_for_htmx(page)  # the 422's section replaces the form (the inline error was there already)
    expect(error).to_contain_text("Questo non è un numero di cellulare")
    expect(mobile).to_have_value("0544 401299")  # what was typed stays
    assert Customer.get(Customer.code == "005007").mobile == "333 1234567"

    page.get_by_label("Cellulare").fill("347 765 4321")
    page.get_by_label("Telefono").fill("+41 44 668 18 00")
    page.get_by_role("button", name="Salva i contatti").click()
    expect(page.get_by_role("status").filter(has_text="Contatti salvati.")).to_be_visible()
    expect(page.get_by_label("Cellulare")).to_have_value("347 765 4321")
    expect(page.get_by_label("Telefono")).to_have_value("+41 44 668 18 00")
    saved = Customer.get(Customer.code == "005007")
    assert (saved.mobile, saved.phone) == ("+393477654321", "+41446681800")
    if javascript:
        wait_for_htmx(page)
        assert page.url == address  # swapped in place
        expect(page.get_by_role("heading", name="Avvisi per email")).to_be_visible()

    page.get_by_label("Email", exact=True).fill("mario.nuovo@example.com")
    page.get_by_role("button", name="Salva i contatti").click()
    expect(page.get_by_text("Ti abbiamo mandato un link a mario.nuovo@example.com")).to_be_visible()
    expect(page.get_by_text("In attesa di conferma: mario.nuovo@example.com")).to_be_visible()
    assert Customer.get(Customer.code == "005007").email == "mario@example.it"

    [mail] = wait_for_mail(smtp, 1)
    assert mail.envelope_to == ["mario.nuovo@example.com"]
    link = re.search(r"(http://127\.0\.0\.1:\d+/email/conferma/\S+)", text_of(mail)).group(1)
    page.goto(link)
    expect(page.get_by_text("mario.nuovo@example.com")).to_be_visible()
    page.get_by_role("button", name="Conferma").click()
    expect(page.get_by_role("status")).to_contain_text("Indirizzo email cambiato: ora è mario.nuovo@example.com.")
    expect(page.get_by_label("Email", exact=True)).to_have_value("mario.nuovo@example.com")
    assert Customer.get(Customer.code == "005007").email == "mario.nuovo@example.com"
    assert User.get(User.customer == customer).email == "mario.nuovo@example.com"

    told = wait_for_mail(smtp, 2)[1]
    assert told.envelope_to == ["mario@example.it"] and told["Subject"] == "Il tuo indirizzo email è cambiato"

    page.goto(link)  # the link works once
    expect(page.get_by_role("heading", name="Link non valido")).to_be_visible()
