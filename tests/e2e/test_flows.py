"""The portal in a real browser: registration through the real mail thread, the supply-point
selector (htmx, history), the modal "Cambio Password" dialog, inline validation, and the same
portal with JavaScript switched off."""
import re
from datetime import timedelta

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

from models import utcnow
from tests.e2e.conftest import log_in, wait_for_htmx, wait_for_mail
from tests.factories import PASSWORD, make_customer, make_invoice, make_supply_point, make_user
from tests.helpers import text_of

NEW_PASSWORD = "Nuova-Chiave-2027"
# The change-password form says "Nuova password" / "Ripeti la nuova password"; accept the plain
# "Password" / "Ripeti password" of the registration form too.
NEW_PASSWORD_LABEL = re.compile(r"^(Nuova )?password$", re.IGNORECASE)
REPEAT_PASSWORD_LABEL = re.compile(r"^Ripeti (la nuova )?password$", re.IGNORECASE)


@pytest.fixture
def customer(live_server):
    """Customer 005007 with an electricity and a gas point; created before the browser starts."""
    customer = make_customer(code="005007", name="ROSSI MARIO")
    electricity = make_supply_point(customer, code="PR002874", pod_pdr="IT001E00287400")
    make_supply_point(customer, code="PR002875", commodity="gas", pod_pdr="01234567891011",
                      address="VIA PROVA 5", postcode="48124", city="RAVENNA", province="RA")
    customer.invoice = make_invoice(customer, electricity, issue_date=utcnow().date() - timedelta(days=30))
    return customer


def open_password_dialog(page):
    page.get_by_role("link", name="Cambio Password").click()
    dialog = page.locator("dialog[open]")
    dialog.wait_for()
    wait_for_htmx(page)
    return dialog


def submit_password_change(page, dialog, current):
    """Fill the dialog as a customer does (the current password, the new one twice) and confirm."""
    dialog.get_by_label("Password attuale").fill(current)
    dialog.get_by_label(NEW_PASSWORD_LABEL).fill(NEW_PASSWORD)
    dialog.get_by_label(REPEAT_PASSWORD_LABEL).fill(NEW_PASSWORD)
    dialog.get_by_role("button", name="Conferma").click()
    wait_for_htmx(page)


def is_modal(page):
    return page.evaluate("document.querySelector('dialog') !== null && document.querySelector('dialog').matches(':modal')")


def document_requests(page, since):
    return [r for r in page.requests_log[since:] if r[0] == "document"]


def test_register_confirm_login_switch_point_and_password_dialog(live_server, customer, smtp, page):
    # --- step 1: who the customer is -------------------------------------------------------------
    page.goto(live_server.url + "/login")
    page.get_by_role("link", name="Sei un cliente e vuoi registrarti?").click()
    expect(page).to_have_url(live_server.url + "/registrazione")
    page.get_by_label("Codice cliente", exact=True).fill("005007")
    page.get_by_label("Codice fiscale o partita IVA", exact=True).fill(customer.tax_code)
    page.get_by_label("Numero di una fattura o POD/PDR", exact=True).fill(customer.invoice.number)
    wait_for_htmx(page)  # the inline checks of the fields left so far
    page.get_by_role("button", name="Avanti").click()

    # --- step 2: the login data ------------------------------------------------------------------
    expect(page).to_have_url(live_server.url + "/registrazione/dati")
    summary = page.locator("dl.summary")
    expect(summary).to_contain_text("ROSSI MARIO")
    expect(summary).to_contain_text("VIA PROVA 5 - 48124 RAVENNA (RA)")
    page.get_by_label("Email", exact=True).fill("mario@example.it")
    page.get_by_label("Conferma email", exact=True).fill("mario@example.it")
    page.get_by_label("Username").fill("Mario.Rossi")
    page.get_by_label("Password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Ripeti password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Ho letto l'informativa").check()
    wait_for_htmx(page)  # the inline checks of the fields left so far
    page.get_by_role("button", name="Registrati").click()
    expect(page.get_by_role("heading", name="Controlla la tua email")).to_be_visible()

    # --- the mail, sent by the app's own delivery thread ------------------------------------------
    [mail] = wait_for_mail(smtp)
    assert mail["To"] == "mario@example.it"
    assert mail["Subject"] == "Conferma la registrazione"
    match = re.search(re.escape(live_server.url) + r"(/registrazione/conferma/\S+)", text_of(mail))
    assert match, text_of(mail)
    page.goto(live_server.url + match.group(1))
    page.get_by_role("button", name="Conferma").click()
    expect(page).to_have_url(live_server.url + "/login")
    expect(page.get_by_role("status")).to_contain_text("Registrazione confermata")

    # --- log in with the username ------------------------------------------------------------------
    page.get_by_label("User", exact=True).fill("mario.rossi")
    page.get_by_label("Password", exact=True).fill(NEW_PASSWORD)
    page.get_by_role("button", name="Accedi").click()
    expect(page.get_by_text("Benvenuto ROSSI MARIO")).to_be_visible()
    main = page.locator("#main")
    expect(main).to_contain_text("Punto di fornitura PR002874")
    expect(main).to_contain_text("IT001E00287400")

    # --- switch to the gas point: htmx swaps #frame, no page load, URL pushed ----------------------
    url_before = page.url
    page.evaluate("window.__marker = 42")
    before = len(page.requests_log)
    page.get_by_label("Punto di fornitura", exact=True).select_option("PR002875")
    wait_for_htmx(page)
    expect(page).to_have_url(re.compile(r"\?sp=PR002875$"))
    expect(main).to_contain_text("Punto di fornitura PR002875")
    expect(main).to_contain_text("01234567891011")
    expect(main).to_contain_text("Gas naturale")
    assert page.evaluate("window.__marker") == 42, "the page was reloaded"
    assert document_requests(page, before) == []
    assert any(r[0] in ("xhr", "fetch") and r[2].endswith("/?sp=PR002875") for r in page.requests_log[before:])
    # The menu follows the point: no "Misure elettriche" for gas.
    expect(page.get_by_role("link", name="Misure elettriche")).to_have_count(0)

    # --- back: htmx keeps no history cache, so the previous URL is loaded again -------------------
    page.go_back()
    page.wait_for_function("() => window.__marker === undefined")  # reloaded
    page.wait_for_load_state()
    expect(page).to_have_url(url_before)
    expect(page.get_by_label("Punto di fornitura", exact=True),
           "back must show the point the page showed before the switch, not the last one chosen"
           ).to_have_value("PR002874")
    expect(main).to_contain_text("Punto di fornitura PR002874")
    expect(main).to_contain_text("IT001E00287400")
    expect(main).to_contain_text("Energia elettrica")

    # --- "Cambio Password": a modal dialog, the rest of the page inert ---------------------------
    dialog = open_password_dialog(page)
    expect(dialog.get_by_role("heading", name="Cambio Password")).to_be_visible()
    assert is_modal(page)
    with pytest.raises(PlaywrightTimeoutError) as blocked:
        page.get_by_role("link", name="Home Page").click(timeout=1000)
    assert "intercepts pointer events" in str(blocked.value)  # blocked by the dialog, not missing
    dialog.get_by_role("button", name="Annulla").click()
    expect(page.locator("dialog")).to_have_count(0)
    page.get_by_role("link", name="Home Page").click(timeout=2000)
    expect(page).to_have_url(re.compile(r"/\?sp=PR002874$"))
    expect(page.get_by_role("heading", name="Home Page", level=1)).to_be_visible()


def test_password_dialog_shows_errors_inline_and_changes_the_password(live_server, customer, page):
    make_user(customer, username="mario.rossi", email="mario@example.it")
    log_in(page, live_server, "005007", PASSWORD)

    dialog = open_password_dialog(page)
    page.evaluate("window.__marker = 42")
    submit_password_change(page, dialog, "Sbagliata-2026!")
    expect(dialog).to_contain_text("La password attuale non è giusta.")
    expect(dialog).to_be_visible()
    assert is_modal(page)

    submit_password_change(page, dialog, PASSWORD)
    expect(dialog.get_by_role("status")).to_contain_text("Password cambiata")
    dialog.get_by_role("button", name="Chiudi").click()
    expect(page.locator("dialog")).to_have_count(0)
    assert page.evaluate("window.__marker") == 42, "the page was reloaded"

    page.get_by_role("button", name="Esci").click()
    expect(page, "after a password change in the dialog, the page's forms must still be accepted "
                 "(a 400 here is a stale CSRF token)").to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("status")).to_contain_text("Sei uscito dal portale.")
    page.get_by_label("User", exact=True).fill("mario.rossi")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Accedi").click()
    expect(page.get_by_text("Codice cliente, username o password non corretti.")).to_be_visible()
    log_in(page, live_server, "mario.rossi", NEW_PASSWORD)


def test_closing_the_password_dialog_gives_the_focus_back_to_its_link(live_server, customer, page):
    make_user(customer)
    log_in(page, live_server, "005007", PASSWORD)
    link = page.get_by_role("link", name="Cambio Password")

    dialog = open_password_dialog(page)
    dialog.get_by_role("button", name="Annulla").click()
    expect(page.locator("dialog")).to_have_count(0)
    expect(link).to_be_focused()

    # After an error the server's answer replaces the dialog: Esc still goes back to the link.
    dialog = open_password_dialog(page)
    submit_password_change(page, dialog, "Sbagliata-2026!")
    expect(dialog).to_contain_text("La password attuale non è giusta.")
    page.keyboard.press("Escape")
    expect(page.locator("dialog")).to_have_count(0)
    expect(link).to_be_focused()
    assert page.evaluate("() => document.activeElement.textContent") == "Cambio Password"


def test_inline_validation_in_registration(live_server, page):
    page.goto(live_server.url + "/registrazione")
    page.evaluate("window.__marker = 42")
    before = len(page.requests_log)
    code = page.get_by_label("Codice cliente", exact=True)
    code.fill("12")
    code.press("Tab")
    error = page.locator("#err-customer_code")
    expect(error).to_be_visible()
    expect(error).to_contain_text("Il codice cliente è di 6 cifre")
    expect(code).to_have_accessible_description(re.compile("Il codice cliente è di 6 cifre"))  # announced with the field
    wait_for_htmx(page)
    assert page.evaluate("window.__marker") == 42
    assert document_requests(page, before) == []
    expect(page.get_by_label("Codice fiscale o partita IVA", exact=True)).to_be_focused()

    # A right code takes the error away again.
    code.fill("005007")
    code.press("Tab")
    expect(error).to_be_hidden()


def test_the_portal_works_without_javascript(live_server, customer, new_page):
    make_user(customer, username="mario.rossi", email="mario@example.it")
    page = new_page(java_script_enabled=False)
    log_in(page, live_server, "005007", PASSWORD)
    main = page.locator("#main")
    expect(main).to_contain_text("IT001E00287400")

    page.get_by_label("Punto di fornitura", exact=True).select_option("PR002875")
    page.get_by_role("button", name="Cambia").click()
    expect(page).to_have_url(re.compile(r"\?sp=PR002875$"))
    expect(main).to_contain_text("01234567891011")
    expect(main).to_contain_text("Gas naturale")

    page.get_by_role("link", name="Cambio Password").click()
    expect(page).to_have_url(re.compile(r"/cambio-password\?sp=PR002875$"))
    expect(page.get_by_role("heading", name="Cambio Password", level=1)).to_be_visible()
    expect(page.locator("dialog")).to_have_count(0)
    page.get_by_label("Password attuale").fill(PASSWORD)
    page.get_by_label(NEW_PASSWORD_LABEL).fill(NEW_PASSWORD)
    page.get_by_label(REPEAT_PASSWORD_LABEL).fill(NEW_PASSWORD)
    page.get_by_role("button", name="Conferma").click()
    expect(page.get_by_role("status")).to_contain_text("Password cambiata.")
    expect(main).to_contain_text("Home Page")


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_a_locked_out_owner_gets_in_through_the_reset_link(live_server, customer, smtp, new_page, javascript):
    """Anyone can lock a login with ten wrong passwords; the lock message shows the owner the
    way in, and the reset link's new password opens it at once (mail through the app's thread)."""
    make_user(customer, email="mario@example.it")
    page = new_page(java_script_enabled=javascript)

    def try_login(password):
        page.goto(live_server.url + "/login")
        page.get_by_label("User", exact=True).fill("005007")
        page.get_by_label("Password", exact=True).fill(password)
        page.get_by_role("button", name="Accedi").click()
        page.wait_for_load_state("load")

    for _ in range(10):
        try_login("Sbagliata-2026!")
    try_login(PASSWORD)
    expect(page.get_by_text("l'accesso è bloccato fino alle")).to_be_visible()
    page.screenshot(path=f"/tmp/shots/locked-{javascript}.png", full_page=True)

    page.get_by_role("link", name="Hai dimenticato la password?").click()
    page.get_by_label("Codice cliente o username").fill("005007")
    page.get_by_role("button", name="Invia il link").click()
    expect(page.get_by_role("heading", name="Controlla la tua email")).to_be_visible()
    [mail] = wait_for_mail(smtp)
    link = re.search(r"http://\S+/password/nuova/\S+", text_of(mail)).group(0)

    page.goto(link)
    page.get_by_label(NEW_PASSWORD_LABEL).fill(NEW_PASSWORD)
    page.get_by_label(REPEAT_PASSWORD_LABEL).fill(NEW_PASSWORD)
    page.get_by_role("button", name="Salva la password").click()
    page.wait_for_load_state("load")
    log_in(page, live_server, password=NEW_PASSWORD)
    page.screenshot(path=f"/tmp/shots/unlocked-{javascript}.png", full_page=True)
