"""Delegati in a real browser: the owner invites a person from Privacy e account, the person
accepts from the mail's link and logs in with their own username; the owner revokes them and
their open session ends. With JavaScript and without."""
import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import log_in, wait_for_htmx, wait_for_mail
from tests.factories import make_customer, make_invoice, make_supply_point, make_user
from tests.helpers import text_of

DELEGATE_PASSWORD = "Delegata-Sicura-2026"


@pytest.fixture
def owner(live_server):
    customer = make_customer(code="005007", name="ROSSI MARIO")
    point = make_supply_point(customer, code="PR002874", pod_pdr="IT001E00287400")
    owner = make_user(customer, username="mario.rossi", email="mario@example.it")
    owner.invoice = make_invoice(customer, point)
    return owner


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_invite_accept_from_the_mail_log_in_as_the_delegate_and_revoke(live_server, owner, smtp, new_page, javascript):
    owners_page = new_page(java_script_enabled=javascript)
    owners_page.on("dialog", lambda dialog: dialog.accept())  # hx-confirm before revoking
    log_in(owners_page, live_server)
    owners_page.get_by_role("link", name="Dati Anagrafici").click()
    owners_page.get_by_role("link", name="Vai a Privacy e account").click()
    expect(owners_page.get_by_role("heading", name="Privacy e account", exact=True)).to_be_visible()
    owners_page.get_by_role("link", name="Gestisci i delegati").click()
    expect(owners_page.get_by_text("Nessuno accede per tuo conto.")).to_be_visible()

    # A wrong address first: the message next to the field, what was typed kept.
    owners_page.get_by_label("Email del delegato").fill("studio@")
    owners_page.get_by_role("button", name="Invia l'invito").click()
    if javascript:
        wait_for_htmx(owners_page)
    expect(owners_page.locator("#err-email")).to_have_text("Questo indirizzo email non è valido.")
    expect(owners_page.get_by_label("Email del delegato")).to_have_value("studio@")

    owners_page.get_by_label("Email del delegato").fill("studio@example.it")
    owners_page.get_by_role("radio", name=re.compile("Completi")).check()
    owners_page.get_by_role("button", name="Invia l'invito").click()
    if javascript:
        wait_for_htmx(owners_page)
    expect(owners_page.get_by_text("Invito inviato a studio@example.it.")).to_be_visible()
    row = owners_page.locator("#delegates tbody tr")
    expect(row).to_contain_text("studio@example.it")
    expect(row).to_contain_text("in attesa")

    (mail,) = wait_for_mail(smtp)
    assert mail.envelope_to == ["studio@example.it"]
    link = re.search(r"http://127\.0\.0\.1:\d+/invito/\S+", text_of(mail)).group(0)

    # The invited person, in their own browser.
    delegates_page = new_page(java_script_enabled=javascript)
    delegates_page.goto(link)
    expect(delegates_page.locator("h1")).to_have_text("Invito al portale clienti")
    expect(delegates_page.locator("main")).to_contain_text("con permessi completi")
    delegates_page.get_by_label("Nome", exact=True).fill("Anna")
    delegates_page.get_by_label("Cognome", exact=True).fill("Bianchi")
    delegates_page.get_by_label("Username", exact=True).fill("studio.bianchi")
    delegates_page.get_by_label("Password", exact=True).fill(DELEGATE_PASSWORD)
    delegates_page.get_by_label("Ripeti password", exact=True).fill(DELEGATE_PASSWORD)
    delegates_page.get_by_label("Ho letto l'informativa").check()
    delegates_page.get_by_role("button", name="Accetta l'invito").click()
    expect(delegates_page).to_have_url(live_server.url + "/login")
    expect(delegates_page.locator(".flash-success")).to_contain_text("ora accedi con lo username studio.bianchi")

    delegates_page.get_by_label("User", exact=True).fill("studio.bianchi")
    delegates_page.get_by_label("Password", exact=True).fill(DELEGATE_PASSWORD)
    delegates_page.get_by_role("button", name="Accedi").click()
    expect(delegates_page.locator(".welcome")).to_contain_text("Benvenuto Anna Bianchi")
    delegates_page.get_by_role("link", name="Elenco fatture").click()
    expect(delegates_page.locator("main")).to_contain_text(owner.invoice.number)

    # The owner sees the delegate active, and revokes them.
    owners_page.reload()
    expect(row).to_contain_text("Anna Bianchi")
    expect(row).to_contain_text("attivo dal")
    row.get_by_role("button", name="Revoca").click()
    if javascript:
        wait_for_htmx(owners_page)
    expect(owners_page.get_by_text("Nessuno accede per tuo conto.")).to_be_visible()
    expect(owners_page.get_by_role("status").filter(has_text="revocato")).to_have_text(
        "Accesso di studio@example.it revocato.")

    delegates_page.get_by_role("link", name="Home Page").click()
    expect(delegates_page).to_have_url(re.compile(re.escape(live_server.url) + "/login"))
