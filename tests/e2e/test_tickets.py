"""Ticket in a real browser, with and without JavaScript: the customer opens a ticket with a
photo, the operator answers it from the back office with a canned reply (and an internal
note), the customer sees the badge in the menu and the answer, and replies.

With E2E_SHOTS=<folder> each state is also saved there as a PNG, to be looked at."""
import io
import os

import pyotp
import pytest
from PIL import Image
from playwright.sync_api import expect

import accounts
from models import CannedReply, Ticket, TicketMessage
from tests.e2e.conftest import log_in, wait_for_htmx
from tests.factories import make_customer, make_supply_point, make_user
from tests.import_data import pdf_bytes

STAFF_PASSWORD = "Sportello-Staff-2026!"
SHOTS = os.environ.get("E2E_SHOTS")
NOTE = "Nota solo per noi: già chiamato"


def shot(page, name):
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        # caret="initial": hiding the caret injects a style, which the CSP (rightly) reports.
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True, caret="initial")


@pytest.fixture
def mario(live_server):
    customer = make_customer(code="005007", name="ROSSI MARIO")
    make_supply_point(customer, code="PR002874", pod_pdr="IT001E00287400")
    make_user(customer, username="mario.rossi", email="mario@example.it")
    CannedReply.create(title="Lettura stimata", body="Quando il distributore non legge il contatore, i consumi sono stimati.")
    return customer


def operator_logs_in(page, live_server):
    with live_server.app.app_context():
        accounts.create_staff("operatore@utility.it", STAFF_PASSWORD)
    page.goto(live_server.url + "/login")
    page.get_by_label("User", exact=True).fill("operatore@utility.it")
    page.get_by_label("Password", exact=True).fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Accedi").click()
    secret = page.locator("code.secret").inner_text()
    page.get_by_label("Codice", exact=True).fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Verifica").click()
    expect(page.get_by_role("heading", name="Clienti")).to_be_visible()
    page.wait_for_load_state("load")


def settle(page, javascript):
    if javascript:
        wait_for_htmx(page)
    else:
        page.wait_for_load_state("load")


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_a_ticket_from_the_customer_to_the_operator_and_back(live_server, new_page, mario, tmp_path, javascript):
    mode = "js" if javascript else "nojs"
    photo = tmp_path / "contatore.png"
    out = io.BytesIO()
    Image.new("RGB", (60, 40), (30, 90, 200)).save(out, "PNG")
    photo.write_bytes(out.getvalue())

    # The customer opens a ticket from the menu.
    customer_page = new_page(java_script_enabled=javascript)
    log_in(customer_page, live_server)
    customer_page.get_by_role("navigation", name="Menu").get_by_role("link", name="Ticket").click()
    expect(customer_page.get_by_text("Non hai ancora aperto nessun ticket.")).to_be_visible()
    shot(customer_page, f"01-list-empty-{mode}")
    customer_page.get_by_role("link", name="Apri un nuovo ticket").click()
    customer_page.get_by_role("button", name="Invia il ticket").click()  # empty: the errors say what is missing
    expect(customer_page.locator("#err-subject")).to_have_text("Scrivi l'oggetto.")
    expect(customer_page.locator("#err-message")).to_have_text("Scrivi il messaggio.")
    shot(customer_page, f"02-new-errors-{mode}")
    customer_page.get_by_label("Categoria").select_option(label="letture")
    customer_page.get_by_label("Oggetto").fill("Lettura <b>stimata</b>")
    customer_page.get_by_label("Messaggio").fill("Perché la lettura di ottobre è stimata?\nIl contatore è accessibile.")
    customer_page.get_by_label("Allegati (facoltativi)").set_input_files(str(photo))
    customer_page.get_by_role("button", name="Invia il ticket").click()
    expect(customer_page.get_by_text("Ticket aperto: ti risponderemo qui")).to_be_visible()
    expect(customer_page.get_by_role("heading", name="Lettura <b>stimata</b>")).to_be_visible()
    expect(customer_page.get_by_role("link", name="contatore.png")).to_be_visible()
    shot(customer_page, f"03-ticket-opened-{mode}")

    # The operator finds it in the queue, notes, inserts the canned reply, answers.
    staff_page = new_page(java_script_enabled=javascript)
    operator_logs_in(staff_page, live_server)
    staff_page.get_by_role("navigation", name="Area operatori").get_by_role("link", name="Ticket").click()
    staff_page.get_by_label("Categoria").select_option(label="letture")
    if not javascript:
        staff_page.get_by_role("button", name="Filtra").click()
    settle(staff_page, javascript)
    shot(staff_page, f"04-queue-{mode}")
    staff_page.get_by_role("link", name="Lettura <b>stimata</b>").click()
    staff_page.get_by_label("Nota interna (il cliente non la vede)").fill(NOTE)
    staff_page.get_by_role("button", name="Salva la nota").click()
    expect(staff_page.get_by_text("Nota interna — il cliente non la vede")).to_be_visible()
    staff_page.get_by_label("Risposta al cliente").fill("Gentile cliente,")
    staff_page.get_by_label("Risposta predefinita").select_option(label="Lettura stimata")
    staff_page.get_by_role("button", name="Inserisci nel testo").click()
    settle(staff_page, javascript)
    expect(staff_page.get_by_label("Risposta al cliente")).to_have_value(
        "Gentile cliente,\n\nQuando il distributore non legge il contatore, i consumi sono stimati.")
    notice = tmp_path / "avviso lettura.pdf"
    notice.write_bytes(pdf_bytes("Avviso"))
    staff_page.get_by_label("Allegati (facoltativi)").set_input_files(str(notice))
    shot(staff_page, f"05-staff-ticket-{mode}")
    staff_page.get_by_role("button", name="Invia risposta").click()
    expect(staff_page.get_by_text("Risposta inviata: il cliente riceve un'email.")).to_be_visible()
    expect(staff_page.locator(".conversation .from-staff").last.get_by_role("link", name="avviso lettura.pdf")).to_be_visible()

    # The customer sees the badge, the answer and no note; replies.
    customer_page.goto(live_server.url + "/")
    badge = customer_page.locator("#ticket-badge .badge")
    expect(badge).to_contain_text("1")
    shot(customer_page, f"06-home-badge-{mode}")
    customer_page.get_by_role("navigation", name="Menu").get_by_role("link", name="Ticket").click()
    expect(customer_page.get_by_text("in attesa del cliente")).to_be_visible()
    customer_page.get_by_role("link", name="Lettura <b>stimata</b>").click()
    expect(customer_page.get_by_text("Quando il distributore non legge il contatore")).to_be_visible()
    expect(customer_page.get_by_text(NOTE)).to_have_count(0)
    with customer_page.expect_download() as download:
        customer_page.get_by_role("link", name="avviso lettura.pdf").click()
    assert open(download.value.path(), "rb").read() == notice.read_bytes()
    shot(customer_page, f"07-answer-{mode}")
    customer_page.get_by_label("La tua risposta").fill("Grazie, farò l'autolettura.")
    customer_page.get_by_role("button", name="Invia risposta").click()
    settle(customer_page, javascript)
    expect(customer_page.locator(".conversation .from-customer").last).to_contain_text("Grazie, farò l'autolettura.")
    expect(customer_page.locator("#ticket-badge .badge")).to_have_count(0)
    expect(customer_page.get_by_label("La tua risposta")).to_have_value("")
    shot(customer_page, f"08-replied-{mode}")
    with live_server.app.app_context():
        assert Ticket.get().status == Ticket.OPEN


def test_the_ticket_pages_on_a_phone(live_server, new_page, mario):
    """390 px wide: the list as cards, the conversation and the form within the width."""
    from models import TicketMessage

    ticket = Ticket.create(customer=mario, subject="Una domanda con un oggetto piuttosto lungo da leggere",
                           category="billing", status=Ticket.WAITING_CUSTOMER)
    TicketMessage.create(ticket=ticket, body="https://example.it/" + "lunghissimo" * 20)
    TicketMessage.create(ticket=ticket, from_staff=True, body="Risposta del servizio clienti.")
    page = new_page(viewport={"width": 390, "height": 844})
    log_in(page, live_server)
    page.goto(live_server.url + "/ticket")
    shot(page, "09-phone-list")
    # A card: each value starts after its column's name, the status too (no overlap).
    subject = page.get_by_role("link", name="Una domanda con un oggetto").bounding_box()
    status = page.locator("td .ticket-status").bounding_box()
    assert abs(status["x"] - subject["x"]) < 2 and status["x"] + status["width"] <= 390, (subject, status)
    page.get_by_role("link", name="Una domanda con un oggetto").click()
    for locator in (page.locator(".conversation"), page.get_by_label("La tua risposta")):
        box = locator.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    shot(page, "10-phone-ticket")


def test_the_back_office_queue_on_a_phone(live_server, new_page, mario):
    """390 px: each ticket of the queue is a card whose every value is within the screen (seven
    columns in a row were cut off at the right, the status and assignee out of sight)."""
    with live_server.app.app_context():
        colleague = accounts.create_staff("assistenza.clienti.reclami@utility-energia.example.it", STAFF_PASSWORD)
    for n in range(3):
        Ticket.create(customer=mario, subject=f"Una domanda con un oggetto piuttosto lungo da leggere {n}",
                      category="billing", status=Ticket.WAITING_CUSTOMER, assignee=colleague)
    page = new_page(viewport={"width": 390, "height": 844})
    operator_logs_in(page, live_server)
    page.goto(live_server.url + "/backoffice/ticket")
    queue = page.locator("table.ticket-queue")
    expect(queue.locator("tbody tr")).to_have_count(3)
    shot(page, "11-phone-backoffice-queue")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    wrapper = queue.locator("xpath=..")
    assert wrapper.evaluate("wrap => wrap.scrollWidth <= wrap.clientWidth"), "the queue scrolls sideways"
    first = queue.locator("tbody tr").first
    for text in ("Una domanda con un oggetto", "005007", "bolletta", "in attesa del cliente", "assistenza.clienti", "oggi"):
        cell = first.locator("td", has_text=text)
        expect(cell).to_be_visible()
        box = cell.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, (text, box)
        assert cell.evaluate("td => td.scrollWidth <= td.clientWidth"), f"{text} overflows its cell"
    first.get_by_role("link", name="Una domanda con un oggetto").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Una domanda con un oggetto")


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_a_refused_note_or_reply_keeps_its_text_and_a_reload_posts_nothing(live_server, new_page, mario, javascript):
    """An empty note, a canned reply inserted without choosing one: each is refused next to its
    field, the reply's text kept. With JavaScript the address stays the ticket's, so a reload
    asks for the page again; without, the address posted to, opened anew, is the ticket."""
    ticket = Ticket.create(customer=mario, subject="Bolletta troppo alta", category="billing")
    page = new_page(java_script_enabled=javascript)
    operator_logs_in(page, live_server)
    address = f"{live_server.url}/backoffice/ticket/{ticket.id}"
    page.goto(address)

    page.get_by_role("button", name="Salva la nota").click()
    settle(page, javascript)
    expect(page.locator("#err-note")).to_have_text("Scrivi la nota.")
    expect(page).to_have_url(address if javascript else address + "/nota")

    page.get_by_label("Risposta al cliente").fill("Gentile cliente, ho controllato la bolletta.")
    page.get_by_role("button", name="Inserisci nel testo").click()
    settle(page, javascript)
    expect(page.locator("#err-canned")).to_have_text("Scegli una risposta predefinita.")
    expect(page.get_by_label("Risposta al cliente")).to_have_value("Gentile cliente, ho controllato la bolletta.")
    if javascript:
        expect(page).to_have_url(address)
        page.requests_log.clear()
        page.reload()
        expect(page.get_by_role("heading", name="Rispondi al cliente")).to_be_visible()
        assert [(method, url) for kind, method, url in page.requests_log if kind == "document"] == [("GET", address)]
    else:
        expect(page).to_have_url(address + "/risposta")
        page.goto(page.url)  # the address bar's address, opened again
        expect(page).to_have_url(address)
        expect(page.get_by_role("heading", name="Rispondi al cliente")).to_be_visible()
    with live_server.app.app_context():
        assert not TicketMessage.select().where(TicketMessage.ticket == ticket).exists()


MB = 1024 * 1024


def pdf_of(name, size):
    """A file to choose of `size` bytes, whole enough for uploads.accept."""
    head, tail = b"%PDF-1.4\n", b"\n%%EOF\n"
    return {"name": name, "mimeType": "application/pdf", "buffer": head + b"0" * (size - len(head) - len(tail)) + tail}


def test_with_javascript_a_file_over_the_limit_is_refused_before_sending(live_server, new_page, mario):
    """The limits are the field's (uploads.MAX_UPLOAD_BYTES a file, 10 MB in all): a file over
    them is said next to the field as soon as it is chosen, and the form is not sent, so what
    was typed stays. A file within them clears the message and the ticket is opened."""
    page = new_page()
    log_in(page, live_server)
    page.goto(live_server.url + "/ticket/nuovo")
    page.get_by_label("Oggetto").fill("Bolletta di ottobre")
    page.get_by_label("Messaggio").fill("Allego la scansione.")
    field = page.get_by_label("Allegati (facoltativi)")
    error = page.locator("#err-attachments")

    field.set_input_files([pdf_of("scansione.pdf", 6 * MB)])
    expect(error).to_have_text("scansione.pdf: Il file supera 5 MB.")
    expect(field).to_have_attribute("aria-invalid", "true")
    page.requests_log.clear()
    page.get_by_role("button", name="Invia il ticket").click()
    expect(field).to_be_focused()
    assert not [request for request in page.requests_log if request[1] == "POST"]
    expect(page.get_by_label("Oggetto")).to_have_value("Bolletta di ottobre")

    field.set_input_files([pdf_of(f"pagina{n}.pdf", 4 * MB) for n in range(3)])
    expect(error).to_have_text("Gli allegati superano in tutto 10 MB.")

    field.set_input_files([pdf_of("pagina1.pdf", 1 * MB)])
    expect(error).to_be_hidden()
    page.get_by_role("button", name="Invia il ticket").click()
    expect(page.get_by_text("Ticket aperto: ti risponderemo qui")).to_be_visible()
    expect(page.get_by_role("link", name="pagina1.pdf")).to_be_visible()


def test_without_javascript_a_request_over_the_limit_says_the_limit_and_to_go_back(live_server, new_page, mario):
    page = new_page(java_script_enabled=False)
    log_in(page, live_server)
    page.goto(live_server.url + "/ticket/nuovo")
    page.get_by_label("Oggetto").fill("Bolletta di ottobre")
    page.get_by_label("Messaggio").fill("Allego la scansione.")
    page.get_by_label("Allegati (facoltativi)").set_input_files([pdf_of("scansione.pdf", 21 * MB)])
    with page.expect_response(lambda response: response.request.method == "POST") as posted:
        page.get_by_role("button", name="Invia il ticket").click()
    assert posted.value.status == 413
    expect(page.get_by_role("heading", level=1)).to_have_text("File troppo grande")
    expect(page.locator("main")).to_contain_text("ogni file può essere al massimo di 5 MB. Torna indietro e scegli un file più piccolo.")
