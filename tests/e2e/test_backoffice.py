"""The back office in a real browser: an operator enrols the second factor, uploads the
billing system's files and watches the import's progress bar reach 100%."""
import re
import zipfile

import pyotp
from playwright.sync_api import expect

import accounts
from models import Customer
from tests.import_data import write_data_set

PASSWORD = "Sportello-Staff-2026!"


def test_operator_uploads_an_import_and_sees_it_finish(live_server, page, tmp_path):
    with live_server.app.app_context():
        accounts.create_staff("operatore@utility.it", PASSWORD)
    # Enough measures (324,000) for the import to take a few seconds: the page sees it run.
    written = write_data_set(tmp_path / "set", customers=150, days_of_measures=90)
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in (tmp_path / "set").rglob("*"):
            if path.is_file():
                zipped.write(path, str(path.relative_to(tmp_path / "set")))

    # Password, then the first login's enrolment of the authenticator.
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
