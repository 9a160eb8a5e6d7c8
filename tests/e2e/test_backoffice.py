"""The back office in a real browser: an operator enrols the second factor, uploads the
billing system's files and watches the import's progress bar reach 100%; reads the audit log
of some days; searches a customer by codice fiscale, which stays out of every URL; changes
their password."""
import re
import zipfile
from datetime import timedelta

import pyotp
from playwright.sync_api import expect

import accounts
from i18n import rome_today
from models import Customer
from tests.e2e.conftest import wait_for_htmx
from tests.e2e.test_flows import NEW_PASSWORD, open_password_dialog, submit_password_change
from tests.factories import make_customer, valid_tax_code
from tests.import_data import write_data_set

PASSWORD = "Sportello-Staff-2026!"


def enrol_operator(page, live_server):
    """A new operator's first login: the password, then the enrolment of the authenticator."""
    with live_server.app.app_context():
        accounts.create_staff("operatore@utility.it", PASSWORD)
    page.goto(live_server.url + "/login")
    page.get_by_label("User", exact=True).fill("operatore@utility.it")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Accedi").click()
    expect(page.get_by_role("heading", name="Codice di verifica")).to_be_visible()
    expect(page.get_by_role("img", name="Codice QR per l'app di autenticazione")).to_be_visible()
    secret = page.locator("code.secret").inner_text()
    page.get_by_label("Codice", exact=True).fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Verifica").click()
    expect(page.get_by_role("heading", name="Clienti")).to_be_visible()


def test_operator_uploads_an_import_and_sees_it_finish(live_server, page, tmp_path):
    # Enough measures (324,000) for the import to take a few seconds: the page sees it run.
    written = write_data_set(tmp_path / "set", customers=150, days_of_measures=90)
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in (tmp_path / "set").rglob("*"):
            if path.is_file():
                zipped.write(path, str(path.relative_to(tmp_path / "set")))

    enrol_operator(page, live_server)

    # The upload, then the job's page: htmx polls it until the bar is full.
    page.get_by_role("link", name="Importazioni").click()
    page.get_by_label("File", exact=True).set_input_files(str(archive))
    page.get_by_role("button", name="Importa").click()
    expect(page).to_have_url(re.compile(r"/backoffice/importazioni/\d+$"))
    page.evaluate("window.__sameDocument = true")  # a full reload would lose it
    progress = page.locator("#job-progress")
    expect(progress).to_have_attribute("data-status", re.compile("queued|running"))
    expect(progress).to_have_attribute("data-status", "done", timeout=60_000)
    expect(progress).to_have_attribute("value", "100")
    expect(page.get_by_text("Importazione completata.")).to_be_visible()
    expect(page.locator("pre.report")).to_contain_text(
        f"measures.csv: added {written['counts']['measures.csv']}, updated 0, unchanged 0")
    assert page.evaluate("window.__sameDocument") is True  # updated in place, not reloaded
    assert Customer.select().count() == 150


def test_operator_reads_the_audit_log_of_some_days(live_server, page):
    """Dal and Al change the list in place; a Dal after Al is said next to Al, and goes once
    the dates are right."""
    enrol_operator(page, live_server)
    page.get_by_role("link", name="Registro attività").click()
    expect(page.get_by_role("heading", name="Registro attività")).to_be_visible()
    page.wait_for_load_state()  # htmx is ready once the page has loaded, not when it shows
    today, tomorrow = rome_today().isoformat(), (rome_today() + timedelta(days=1)).isoformat()
    page.evaluate("window.__sameDocument = true")  # a full reload would lose it

    page.get_by_label("Dal", exact=True).fill(tomorrow)
    wait_for_htmx(page)
    expect(page.get_by_text("Nessuna attività con questi filtri.")).to_be_visible()
    page.get_by_label("Al", exact=True).fill(today)
    wait_for_htmx(page)
    expect(page.locator("#err-al")).to_have_text("La data finale viene prima di quella iniziale.")
    expect(page.get_by_label("Al", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page).to_have_url(re.compile(rf"dal={tomorrow}&al={today}"))

    page.get_by_label("Dal", exact=True).fill(today)
    wait_for_htmx(page)
    expect(page.locator("#err-al")).to_be_hidden()
    expect(page.get_by_role("cell", name="Secondo fattore attivato", exact=True)).to_be_visible()
    assert page.evaluate("window.__sameDocument") is True  # swapped in place, not reloaded


def test_operator_searches_by_codice_fiscale_and_no_url_has_it(live_server, page):
    """The results come as one types and page in place; the address bar, the history and the
    requests' URLs (an access log's lines) never hold the text."""
    tax_code = valid_tax_code("VTLMRC67E08D458")
    with live_server.app.app_context():
        make_customer(code="005007", name="ROSSI MARIO", tax_code=tax_code)
        for n in range(55):
            make_customer(code=f"{300000 + n:06d}", name=f"BIANCHI {n:02d}")
    enrol_operator(page, live_server)
    page.wait_for_load_state()  # htmx is ready once the page has loaded, not when it shows
    page.evaluate("window.__sameDocument = true")  # a full reload would lose it
    history = page.evaluate("history.length")

    search = page.get_by_role("searchbox")
    search.fill(tax_code.lower())
    wait_for_htmx(page)
    expect(page.get_by_role("link", name="005007")).to_be_visible()
    expect(page).to_have_url(live_server.url + "/backoffice/")

    rows = page.locator("#results tbody tr")
    search.fill("BIANCHI")
    wait_for_htmx(page)
    expect(rows).to_have_count(50)
    page.get_by_role("button", name="Successivi").click()
    wait_for_htmx(page)
    expect(rows).to_have_count(5)
    expect(page.get_by_role("link", name="300054")).to_be_visible()
    page.get_by_role("button", name="Precedenti").click()
    wait_for_htmx(page)
    expect(rows).to_have_count(50)
    page.get_by_role("button", name="Successivi").click()
    wait_for_htmx(page)
    expect(rows).to_have_count(5)
    search.press("Enter")  # the search again from its first page, not a page button
    wait_for_htmx(page)
    expect(rows).to_have_count(50)

    expect(page).to_have_url(live_server.url + "/backoffice/")
    assert page.evaluate("history.length") == history
    assert page.evaluate("window.__sameDocument") is True  # swapped in place, not reloaded
    urls = [url for _kind, _method, url in page.requests_log]
    assert [url for url in urls if tax_code.lower() in url.lower() or "BIANCHI" in url] == []
    assert ("xhr", "POST", live_server.url + "/backoffice/") in page.requests_log


def test_operator_changes_the_password(live_server, page):
    """Cambio Password in the back office's menu: the customers' dialog and rules; the next login
    takes the new password, then the code."""
    enrol_operator(page, live_server)
    page.wait_for_load_state("load")  # htmx is ready: the link opens the dialog
    dialog = open_password_dialog(page)
    expect(dialog.get_by_role("heading", name="Cambio Password")).to_be_visible()
    page.evaluate("window.__sameDocument = true")  # a full reload would lose it
    submit_password_change(page, dialog, "Sbagliata-2026!")
    expect(dialog).to_contain_text("La password attuale non è giusta.")
    submit_password_change(page, dialog, PASSWORD)
    expect(dialog.get_by_role("status")).to_contain_text("Password cambiata")
    dialog.get_by_role("button", name="Chiudi").click()
    expect(page.locator("dialog")).to_have_count(0)
    assert page.evaluate("window.__sameDocument") is True

    page.get_by_role("button", name="Esci").click()
    page.get_by_label("User", exact=True).fill("operatore@utility.it")
    page.get_by_label("Password", exact=True).fill(NEW_PASSWORD)
    page.get_by_role("button", name="Accedi").click()
    expect(page.get_by_role("heading", name="Codice di verifica")).to_be_visible()
