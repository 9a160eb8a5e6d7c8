"""Ticket, the customer's side: the list, a new ticket (every category, the optional point, the
prefilled link, attachments), the conversation and replies, reopening, the menu's badge and the
Home Page; ownership, CSRF, escaping, double submits, read-only users and rate limits."""
import io
import re
from datetime import timedelta
from html import unescape

import pytest
from PIL import Image

import ratelimit
import uploads
from models import AuditLog, Ticket, TicketAttachment, TicketMessage, User, utcnow
from tests.factories import PASSWORD, make_customer, make_user
from tests.helpers import csrf_from, htmx_headers, logged_in_customer, login
from tests.import_data import pdf_bytes

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'
LONG = "Parola " * 1400 + "🙂 Ελληνικά 中文 العربية"  # long, emoji, other scripts: kept whole


def png_bytes():
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def form_page(client, url="/ticket/nuovo?sp=PR002874"):
    response = client.get(url)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    key = re.search(r'name="idempotency_key" type="hidden" value="([0-9a-f]{32})"', html)
    assert key, "no idempotency key in the form"
    return csrf_from(response), key.group(1), html


def new_ticket(client, headers=None, files=(), **fields):
    token, key, _ = form_page(client)
    data = {"csrf_token": token, "idempotency_key": key, "category": "billing", "supply_point": "PR002874",
            "subject": "Bolletta troppo alta", "message": "Perché questo mese ho pagato il doppio?"}
    data.update(fields)
    if files:
        data["attachments"] = [(io.BytesIO(content), name) for name, content in files]
    return client.post("/ticket/nuovo?sp=PR002874", data=data, headers=headers or {},
                       content_type="multipart/form-data")


def reply(client, ticket, message="Grazie, ecco la foto.", headers=None, files=(), key=None):
    page = client.get(f"/ticket/{ticket.id}?sp=PR002874")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    data = {"csrf_token": csrf_from(page), "message": message,
            "idempotency_key": key or re.search(r'name="idempotency_key" type="hidden" value="(\w+)"', html).group(1)}
    if files:
        data["attachments"] = [(io.BytesIO(content), name) for name, content in files]
    return client.post(f"/ticket/{ticket.id}/risposta?sp=PR002874", data=data, headers=headers or {},
                       content_type="multipart/form-data")


def staff_reply(ticket, body="Gentile cliente, abbiamo verificato.", status=Ticket.WAITING_CUSTOMER, internal=False):
    TicketMessage.create(ticket=ticket, from_staff=True, internal=internal, body=body)
    Ticket.update(status=status, updated_at=utcnow(), closed_at=utcnow() if status == Ticket.CLOSED else None).where(
        Ticket.id == ticket.id).execute()
    return Ticket.get_by_id(ticket.id)


# --- the menu, the list -----------------------------------------------------------------------------

def test_the_menu_links_to_tickets_with_a_badge_for_answers_waiting(logged_in, owner):
    page = logged_in.get("/?sp=PR002874").get_data(as_text=True)
    assert 'href="/ticket?sp=PR002874"' in page
    assert 'class="badge"' not in page
    for n in range(2):
        ticket = Ticket.create(customer=owner.customer, subject=f"Domanda {n}", opened_by=owner)
        staff_reply(ticket)
    Ticket.create(customer=owner.customer, subject="Ancora aperto", opened_by=owner)
    response = logged_in.get("/ticket?sp=PR002874")
    assert response.status_code == 200
    badge = re.search(r'<span id="ticket-badge">(.*?)</span></a>', response.get_data(as_text=True), re.S).group(1)
    assert '<span class="badge">2<span class="visually-hidden"> risposte in attesa</span></span>' in badge
    # The frame a supply-point switch swaps carries it too.
    fragment = logged_in.get("/ticket?sp=PR002875", headers=htmx_headers("frame"))
    assert fragment.status_code == 200 and 'class="badge">2<' in fragment.get_data(as_text=True)
    assert "HX-Target" in fragment.headers["Vary"]


def test_the_list_is_newest_first_with_status_and_last_update(logged_in, owner):
    other = make_customer()
    Ticket.create(customer=other, subject="Di un altro cliente")
    old = Ticket.create(customer=owner.customer, subject="Vecchio", created_at=utcnow() - timedelta(days=9),
                        status=Ticket.CLOSED)
    new = Ticket.create(customer=owner.customer, subject="Nuovo", status=Ticket.IN_PROGRESS, category="fault")
    response = logged_in.get("/ticket?sp=PR002874")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert page.index(f'/ticket/{new.id}?') < page.index(f'/ticket/{old.id}?')
    assert "in lavorazione" in page and "chiuso" in page and "guasto" in page
    assert "Di un altro cliente" not in page
    assert "Aggiornato il" in page


def test_an_empty_list_says_so(logged_in):
    response = logged_in.get("/ticket?sp=PR002874")
    assert response.status_code == 200
    assert "Non hai ancora aperto nessun ticket." in response.get_data(as_text=True)


# --- a new ticket -----------------------------------------------------------------------------------

@pytest.mark.parametrize("category, label", [
    ("billing", "bolletta"), ("readings", "letture"), ("contract", "contratto"), ("fault", "guasto"), ("other", "altro")])
@pytest.mark.parametrize("point", ["PR002874", "PR002875", ""])
def test_a_new_ticket_in_every_category_with_or_without_a_point(logged_in, owner, category, label, point):
    response = new_ticket(logged_in, category=category, supply_point=point)
    assert response.status_code == 303
    ticket = Ticket.get()
    assert response.headers["Location"] == f"/ticket/{ticket.id}?sp=PR002874"
    assert (ticket.category, ticket.status, ticket.opened_by_id) == (category, Ticket.OPEN, owner.id)
    assert (ticket.supply_point.code if ticket.supply_point else "") == point
    (message,) = ticket.messages
    assert (message.body, message.from_staff, message.internal) == ("Perché questo mese ho pagato il doppio?", False, False)
    page = logged_in.get(response.headers["Location"])
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Ticket aperto" in html and label in html and "Perché questo mese ho pagato il doppio?" in html
    entry = AuditLog.get(AuditLog.action == "ticket_opened")
    assert entry.user_id == owner.id and f'"ticket": {ticket.id}' in entry.detail


def test_the_form_offers_the_categories_and_the_customers_points(logged_in):
    _, _, html = form_page(logged_in)
    for label in ("bolletta", "letture", "contratto", "guasto", "altro"):
        assert f">{label}</option>" in html
    assert '<option selected value="PR002874">' in html and 'value="PR002875"' in html
    assert 'enctype="multipart/form-data"' in html


def test_a_link_prefills_the_form(logged_in):
    """Dati Anagrafici's "ask for a change" links here: category, subject and message."""
    _, _, html = form_page(logged_in, "/ticket/nuovo?sp=PR002874&category=contract&subject=Cambio+indirizzo"
                                      "&message=Vorrei+cambiare+il+mio+indirizzo.%0ANuovo%3A+via+Roma+1")
    assert '<option selected value="contract">' in html
    assert 'value="Cambio indirizzo"' in html
    assert "Vorrei cambiare il mio indirizzo.\nNuovo: via Roma 1</textarea>" in html


def test_a_link_with_values_that_are_none_is_still_a_form(logged_in):
    _, _, html = form_page(logged_in, "/ticket/nuovo?sp=PR002874&category=%3Cscript%3E&subject=" + "x" * 500
                           + "&message=%3Cb%3Eciao%3C%2Fb%3E")
    assert '<option selected value="other">' in html  # no such category: the default
    subject = re.search(r'<input[^>]*id="subject"[^>]*>', html).group(0)
    assert 'value="' + "x" * 200 + '"' in subject
    assert "&lt;b&gt;ciao&lt;/b&gt;</textarea>" in html


@pytest.mark.parametrize("fields, field_id, message", [
    ({"subject": ""}, "subject", "Scrivi l&#39;oggetto."),
    ({"subject": "   "}, "subject", "Scrivi l&#39;oggetto."),
    ({"subject": "x" * 201}, "subject", "Al massimo 200 caratteri."),
    ({"message": ""}, "message", "Scrivi il messaggio."),
    ({"message": " \n "}, "message", "Scrivi il messaggio."),
    ({"message": "x" * 10_001}, "message", "Al massimo 10000 caratteri."),
    ({"category": "urgent"}, "category", "Non è una opzione valida"),
    ({"supply_point": "PR999999"}, "supply_point", "Non è una opzione valida"),
])
def test_bad_input_is_said_next_to_its_field_and_nothing_is_saved(logged_in, fields, field_id, message):
    typed = {"subject": "Il mio oggetto", "message": "Il mio messaggio, da non perdere"}
    typed.update(fields)
    response = new_ticket(logged_in, **typed)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    error = re.search(rf'<p class="field-error" id="err-{field_id}">(.*?)</p>', html, re.S)
    assert error and message in error.group(1), html
    if "message" not in fields:
        assert "Il mio messaggio, da non perdere</textarea>" in html  # nothing typed is lost
    if "subject" not in fields:
        assert 'value="Il mio oggetto"' in html
    assert Ticket.select().count() == 0 and TicketMessage.select().count() == 0


def test_a_double_submit_opens_one_ticket(logged_in):
    token, key, _ = form_page(logged_in)
    data = {"csrf_token": token, "idempotency_key": key, "category": "fault", "supply_point": "",
            "subject": "Contatore guasto", "message": "Il display è spento."}
    first = logged_in.post("/ticket/nuovo?sp=PR002874", data=data)
    second = logged_in.post("/ticket/nuovo?sp=PR002874", data=data)
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert Ticket.select().count() == 1 and TicketMessage.select().count() == 1
    assert AuditLog.select().where(AuditLog.action == "ticket_opened").count() == 1
    # A form shown again has a new key: a second ticket on purpose is a second ticket.
    assert new_ticket(logged_in, subject="Un'altra cosa").status_code == 303
    assert Ticket.select().count() == 2


def test_a_write_without_its_csrf_token_is_refused(logged_in):
    _, key, _ = form_page(logged_in)
    response = logged_in.post("/ticket/nuovo?sp=PR002874", data={
        "idempotency_key": key, "category": "other", "subject": "x", "message": "y"})
    assert response.status_code == 400
    assert Ticket.select().count() == 0


def test_texts_full_of_html_are_shown_as_text(logged_in, app, smtp):
    response = new_ticket(logged_in, subject=XSS, message=XSS + "\n" + LONG)
    assert response.status_code == 303
    ticket = Ticket.get()
    assert ticket.subject == XSS and ticket.messages[0].body == XSS + "\n" + LONG  # kept whole
    for url in ("/ticket?sp=PR002874", response.headers["Location"], "/?sp=PR002874"):
        page = logged_in.get(url)
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        assert "<script>alert" not in html and "<img src=x" not in html, url
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html, url
    html = logged_in.get(response.headers["Location"]).get_data(as_text=True)
    assert LONG in html


def test_each_message_says_who_wrote_it(logged_in, app, owner, answered):
    """The owner's own words are "Tu"; a delegate's carry the delegate's name, the utility's
    "Servizio clienti", and the delegate sees the owner's as the customer's."""
    delegate = make_user(owner.customer, role=User.DELEGATE, delegate_rights=User.FULL, username="studio.bianchi",
                         first_name="Anna", last_name="Bianchi", email="studio@example.it")
    TicketMessage.create(ticket=answered, author=delegate, body="Allego la lettura del commercialista.")
    page = logged_in.get(f"/ticket/{answered.id}?sp=PR002874")
    assert page.status_code == 200
    authors = re.findall(r'<p class="message-meta"><strong>([^<]+)</strong>', page.get_data(as_text=True))
    assert authors == ["Tu", "Servizio clienti", "Anna Bianchi"]
    other = app.test_client()
    assert login(other, "studio.bianchi", PASSWORD).status_code == 303
    page = other.get(f"/ticket/{answered.id}?sp=PR002874")
    assert page.status_code == 200
    authors = re.findall(r'<p class="message-meta"><strong>([^<]+)</strong>', page.get_data(as_text=True))
    assert authors == [owner.customer.name, "Servizio clienti", "Tu"]


def test_control_characters_and_reversing_marks_are_dropped_any_script_kept(logged_in, app):
    """A bell, a NUL or U+202E (which showed the subject reversed, in the page and the mail's
    Subject) is nothing a customer means to type; accents, emoji and other scripts stay."""
    response = new_ticket(logged_in, subject="Bolletta \u202ealta\x07 è 😀 Счёт",
                          message="Riga uno\x01\nRiga due\x00 \u2066عربى\u2069\tfine")
    assert response.status_code == 303
    ticket = Ticket.get()
    assert ticket.subject == "Bolletta alta è 😀 Счёт"
    assert ticket.messages[0].body == "Riga uno\nRiga due عربى\tfine"


# --- attachments ------------------------------------------------------------------------------------

def test_attachments_are_kept_and_given_back_to_their_owner_only(app, logged_in):
    response = new_ticket(logged_in, files=[("foto contatore.png", png_bytes()), ("bolletta.pdf", pdf_bytes("Fattura"))])
    assert response.status_code == 303
    ticket = Ticket.get()
    png, pdf = TicketAttachment.select().order_by(TicketAttachment.id)
    assert (png.name, png.content_type, pdf.name, pdf.content_type) == (
        "foto contatore.png", "image/png", "bolletta.pdf", "application/pdf")
    html = logged_in.get(response.headers["Location"]).get_data(as_text=True)
    assert "foto contatore.png" in html and "bolletta.pdf" in html
    download = logged_in.get(f"/ticket/{ticket.id}/allegati/{pdf.id}")
    assert download.status_code == 200
    assert download.headers["Content-Type"] == "application/pdf"
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert download.data == pdf_bytes("Fattura")
    assert logged_in.get(f"/ticket/{ticket.id}/allegati/{png.id}").data.startswith(b"\x89PNG")
    # Another customer's ticket id or attachment id: not found.
    other_client, _ = logged_in_customer(app, code="006001")
    assert other_client.get(f"/ticket/{ticket.id}/allegati/{pdf.id}").status_code == 404
    other = Ticket.create(customer=make_customer(), subject="Altro")
    assert logged_in.get(f"/ticket/{other.id}/allegati/{pdf.id}").status_code == 404


@pytest.mark.parametrize("files, message", [
    ([("nota.txt", b"solo testo")], "nota.txt: Sono ammessi solo file JPEG, PNG o PDF."),
    ([("finto.pdf", b"%PDF-1.4 troncato")], "finto.pdf: Il PDF è incompleto o danneggiato."),
    ([("foto.jpg", b"\xff\xd8\xff\xe0 non una foto")], "foto.jpg: Sono ammessi solo file JPEG, PNG o PDF."),
    ([(f"f{n}.png", png_bytes()) for n in range(4)], "Al massimo 3 allegati."),
])
def test_bad_attachments_are_refused_next_to_the_field(logged_in, files, message):
    response = new_ticket(logged_in, files=files, subject="Con allegati")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    error = re.search(r'<p class="field-error" id="err-attachments">(.*?)</p>', html, re.S).group(1)
    assert message in unescape(error)
    assert 'value="Con allegati"' in html
    assert Ticket.select().count() == 0 and TicketAttachment.select().count() == 0


def test_attachments_over_the_total_size_are_refused(logged_in, monkeypatch):
    monkeypatch.setattr(TicketAttachment, "MAX_TOTAL_BYTES", 1000)
    response = new_ticket(logged_in, files=[("a.pdf", pdf_bytes("A")), ("b.pdf", pdf_bytes("B"))])
    assert response.status_code == 422
    assert "Gli allegati superano in tutto" in response.get_data(as_text=True)
    assert Ticket.select().count() == 0


def test_the_attachments_field_carries_the_limits_the_server_checks(logged_in, answered):
    """What static/app.js reads to refuse a file before sending it: the same numbers and words as
    the server's own refusal, on the new ticket's form and on a reply's (a page or the thread
    htmx swaps in)."""
    each = f'data-max-bytes="{uploads.MAX_UPLOAD_BYTES}" data-max-total-bytes="{TicketAttachment.MAX_TOTAL_BYTES}"'
    words = 'data-too-large="Il file supera 5 MB." data-total-too-large="Gli allegati superano in tutto 10 MB."'
    _token, _key, html = form_page(logged_in)
    thread = logged_in.get(f"/ticket/{answered.id}?sp=PR002874", headers={
        **htmx_headers("ticket-thread"), "HX-Current-URL": f"http://localhost/ticket/{answered.id}"})
    assert thread.status_code == 200 and "<html" not in thread.get_data(as_text=True)
    for page in (html, thread.get_data(as_text=True)):
        field = re.search(r'<input [^>]*id="attachments"[^>]*>', page).group(0)
        assert each in field and words in field and "multiple" in field


@pytest.mark.parametrize("htmx", [False, True], ids=["new ticket, plain", "reply, htmx"])
def test_a_request_over_the_size_limit_says_the_limit_and_to_go_back(logged_in, answered, htmx):
    """Without JavaScript nothing stops a file of 21 MiB being sent: past MAX_CONTENT_LENGTH
    nothing of the form is read, and the page says the limit of a file and what to do. (htmx
    does not swap a 413: it is the page a reply's request gets if app.js did not run.)"""
    files = [("scansione.pdf", b"%PDF-1.4 " + b"0" * (21 * 1024 * 1024))]
    if htmx:
        response = reply(logged_in, answered, files=files, headers={
            **htmx_headers("ticket-thread"), "HX-Current-URL": f"http://localhost/ticket/{answered.id}"})
    else:
        response = new_ticket(logged_in, files=files)
    assert response.status_code == 413
    html = response.get_data(as_text=True)
    assert "<h1>File troppo grande</h1>" in html
    assert ("<p>Il file è troppo grande: ogni file può essere al massimo di 5 MB. Torna indietro e scegli un "
            "file più piccolo.</p>") in html
    assert Ticket.select().count() == 1 and len(TicketMessage.visible(answered)) == 2  # nothing written


# --- one ticket: the conversation, replies ------------------------------------------------------------

@pytest.fixture
def answered(owner):
    ticket = Ticket.create(customer=owner.customer, subject="Lettura stimata", opened_by=owner, category="readings")
    TicketMessage.create(ticket=ticket, author=owner, body="Perché la lettura è stimata?")
    staff_reply(ticket, "Nota: il cliente ha già chiamato due volte", internal=True)
    return staff_reply(ticket, "Il distributore non ha letto il contatore.")


def test_the_conversation_never_shows_internal_notes(logged_in, answered):
    for headers in ({}, htmx_headers("frame")):
        response = logged_in.get(f"/ticket/{answered.id}?sp=PR002874", headers=headers)
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        assert "Perché la lettura è stimata?" in html and "Il distributore non ha letto il contatore." in html
        assert "già chiamato" not in html
        assert "in attesa del cliente" in html


def test_another_customers_ticket_is_not_found(app, logged_in, answered):
    other_client, _ = logged_in_customer(app, code="006001")
    page = other_client.get("/", follow_redirects=True)
    assert other_client.get(f"/ticket/{answered.id}", follow_redirects=True).status_code == 404
    response = other_client.post(f"/ticket/{answered.id}/risposta", data={
        "csrf_token": csrf_from(page), "message": "intruso", "idempotency_key": "a" * 32})
    assert response.status_code == 404
    assert not TicketMessage.select().where(TicketMessage.body == "intruso").exists()


def test_a_reply_without_javascript(logged_in, owner, answered):
    response = reply(logged_in, answered, files=[("foto.png", png_bytes())])
    assert response.status_code == 303
    assert response.headers["Location"] == f"/ticket/{answered.id}?sp=PR002874"
    ticket = Ticket.get_by_id(answered.id)
    assert ticket.status == Ticket.OPEN  # the utility's turn again
    last = TicketMessage.visible(ticket)[-1]
    assert (last.body, last.author_id, last.from_staff) == ("Grazie, ecco la foto.", owner.id, False)
    assert [a.name for a in last.attachments] == ["foto.png"]
    page = logged_in.get(response.headers["Location"])
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Risposta inviata." in html and "Grazie, ecco la foto." in html
    assert 'class="badge"' not in html
    assert AuditLog.select().where(AuditLog.action == "ticket_replied").count() == 1


def test_the_address_a_refused_reply_leaves_is_the_tickets_page_when_opened_anew(app, logged_in, answered):
    """Without JavaScript a refused reply is a 422 page at /ticket/<id>/risposta; opened again
    (a new tab, a bookmark) that address leads to the ticket, and only for its own customer."""
    refused = reply(logged_in, answered, message="  ")
    assert refused.status_code == 422
    opened = logged_in.get(f"/ticket/{answered.id}/risposta?sp=PR002874")
    assert opened.status_code == 302 and opened.headers["Location"] == f"/ticket/{answered.id}?sp=PR002874"
    assert logged_in.get(opened.headers["Location"]).status_code == 200
    other_client, _ = logged_in_customer(app, code="006001")
    assert other_client.get(f"/ticket/{answered.id}/risposta", follow_redirects=True).status_code == 404


def test_a_reply_with_htmx_swaps_the_thread_and_the_badge(logged_in, answered):
    response = reply(logged_in, answered, headers={**htmx_headers("ticket-thread"),
                                                   "HX-Current-URL": f"http://localhost/ticket/{answered.id}"})
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "<html" not in body and "<main" not in body
    assert "Grazie, ecco la foto." in body and "aperto" in body
    assert 'name="message"' in body and "Grazie, ecco la foto.</textarea>" not in body  # an empty form again
    assert body.endswith('<div id="ticket-badge" hx-swap-oob="innerHTML"></div>')  # no answer waiting now
    assert {"HX-Request", "HX-Target"} <= set(response.headers["Vary"].split(", "))


@pytest.mark.parametrize("headers", [{}, htmx_headers("ticket-thread")])
def test_an_empty_reply_is_said_next_to_the_field(logged_in, answered, headers):
    response = reply(logged_in, answered, message="  ", headers=headers)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert re.search(r'<p class="field-error" id="err-message">Scrivi la risposta.</p>', html)
    assert ("<html" in html) == (not headers)
    assert len(TicketMessage.visible(answered)) == 2


def test_a_double_submitted_reply_is_kept_once(logged_in, answered):
    key = "b" * 32
    assert reply(logged_in, answered, key=key).status_code == 303
    assert reply(logged_in, answered, key=key).status_code == 303
    assert TicketMessage.select().where(TicketMessage.body == "Grazie, ecco la foto.").count() == 1


def test_a_closed_ticket_is_reopened_by_a_reply_within_the_window(logged_in, answered):
    closed = staff_reply(answered, "Risolto.", status=Ticket.CLOSED)
    html = logged_in.get(f"/ticket/{closed.id}?sp=PR002874").get_data(as_text=True)
    assert "Riapri il ticket con una risposta" in html
    response = reply(logged_in, closed, message="Non è risolto, il contatore è ancora spento.")
    assert response.status_code == 303
    ticket = Ticket.get_by_id(closed.id)
    assert (ticket.status, ticket.closed_at) == (Ticket.OPEN, None)
    assert AuditLog.select().where(AuditLog.action == "ticket_reopened").count() == 1


def test_a_ticket_closed_too_long_ago_cannot_be_reopened(make_app, owner):
    app = make_app(TICKET_REOPEN_DAYS=5)
    client = app.test_client()
    assert login(client, "005007", PASSWORD).status_code == 303
    ticket = Ticket.create(customer=owner.customer, subject="Vecchio", status=Ticket.CLOSED,
                           closed_at=utcnow() - timedelta(days=6))
    page = client.get(f"/ticket/{ticket.id}?sp=PR002874")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "chiuso da più di 5 giorni" in html and 'name="message"' not in html
    response = client.post(f"/ticket/{ticket.id}/risposta?sp=PR002874", data={
        "csrf_token": csrf_from(page), "message": "Riapro?", "idempotency_key": "c" * 32})
    assert response.status_code == 422
    assert "Questo ticket è chiuso da più di 5 giorni: aprine uno nuovo." in response.get_data(as_text=True)
    assert Ticket.get_by_id(ticket.id).status == Ticket.CLOSED
    assert not TicketMessage.select().exists()


# --- who may write, how often -------------------------------------------------------------------------

def test_a_read_only_user_reads_but_cannot_write(logged_in, answered, monkeypatch):
    monkeypatch.setattr(User, "can_write", property(lambda user: False))
    page = logged_in.get(f"/ticket/{answered.id}?sp=PR002874")
    assert page.status_code == 200 and 'name="message"' not in page.get_data(as_text=True)
    assert "Apri un nuovo ticket" not in logged_in.get("/ticket?sp=PR002874").get_data(as_text=True)
    assert logged_in.get("/ticket/nuovo?sp=PR002874").status_code == 403
    response = logged_in.post(f"/ticket/{answered.id}/risposta?sp=PR002874", data={
        "csrf_token": csrf_from(page), "message": "Provo", "idempotency_key": "d" * 32})
    assert response.status_code == 403
    assert "sola lettura" in response.get_data(as_text=True)
    assert not TicketMessage.select().where(TicketMessage.body == "Provo").exists()


def test_new_tickets_are_rate_limited(logged_in, monkeypatch):
    monkeypatch.setitem(ratelimit.LIMITS, "ticket-new", (2, 3600))
    assert new_ticket(logged_in, subject="1").status_code == 303
    assert new_ticket(logged_in, subject="2").status_code == 303
    response = new_ticket(logged_in, subject="3")
    assert response.status_code == 429
    assert "Troppi tentativi" in response.get_data(as_text=True)
    assert 'value="3"' in response.get_data(as_text=True)
    assert Ticket.select().count() == 2


def test_replies_are_rate_limited(logged_in, answered, monkeypatch):
    monkeypatch.setitem(ratelimit.LIMITS, "ticket-reply", (1, 3600))
    assert reply(logged_in, answered, message="uno").status_code == 303
    response = reply(logged_in, answered, message="due")
    assert response.status_code == 429 and "Troppi tentativi" in response.get_data(as_text=True)
    assert not TicketMessage.select().where(TicketMessage.body == "due").exists()


# --- the Home Page --------------------------------------------------------------------------------------

def test_the_home_page_shows_the_open_tickets(logged_in, owner, answered):
    Ticket.create(customer=owner.customer, subject="Chiuso da tempo", status=Ticket.CLOSED)
    Ticket.create(customer=make_customer(), subject="Non mio")
    response = logged_in.get("/?sp=PR002874")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    section = html[html.index('id="tickets-title"'):]
    section = section[:section.index("</section>")]
    assert "Lettura stimata" in section and "ti abbiamo risposto" in section
    assert "Chiuso da tempo" not in section and "Non mio" not in section
    assert "aprire un ticket e seguirne le risposte" in html


def test_the_home_page_without_tickets(logged_in):
    html = logged_in.get("/?sp=PR002874").get_data(as_text=True)
    assert "Nessun ticket aperto." in html


def test_a_delegate_sees_the_customers_tickets(app, owner, answered):
    make_user(owner.customer, role=User.DELEGATE, username="contabile", email="contabile@example.it")
    client = app.test_client()
    assert login(client, "contabile", PASSWORD).status_code == 303
    response = client.get(f"/ticket/{answered.id}", follow_redirects=True)
    assert response.status_code == 200 and "Lettura stimata" in response.get_data(as_text=True)


def test_a_customer_without_points_can_open_a_ticket(app):
    customer = make_customer(code="007007")
    make_user(customer)
    client = app.test_client()
    assert login(client, "007007", PASSWORD).status_code == 303
    page = client.get("/ticket/nuovo")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    key = re.search(r'name="idempotency_key" type="hidden" value="(\w+)"', html).group(1)
    response = client.post("/ticket/nuovo", data={"csrf_token": csrf_from(page), "idempotency_key": key,
                                                   "category": "other", "supply_point": "", "subject": "Ciao",
                                                   "message": "Nessun punto"})
    assert response.status_code == 303
    assert Ticket.get().supply_point is None


def test_two_sends_at_the_same_moment_open_one_ticket(logged_in, monkeypatch):
    """The second send did not see the first one's ticket (they ran side by side): the unique
    key refuses its insert, and it answers with the first one's ticket."""
    token, key, _ = form_page(logged_in)
    data = {"csrf_token": token, "idempotency_key": key, "category": "fault", "supply_point": "",
            "subject": "Contatore guasto", "message": "Il display è spento."}
    first = logged_in.post("/ticket/nuovo?sp=PR002874", data=data)
    assert first.status_code == 303
    monkeypatch.setattr(ratelimit, "hit", lambda *args: 0)
    real_for_customer = Ticket.for_customer
    calls = []

    def blind_once(customer):  # the look-up before the insert misses the first ticket
        calls.append(customer)
        query = real_for_customer(customer)
        return query.where(Ticket.id < 0) if len(calls) == 1 else query

    monkeypatch.setattr(Ticket, "for_customer", blind_once)
    second = logged_in.post("/ticket/nuovo?sp=PR002874", data=data)
    assert second.status_code == 303 and second.headers["Location"] == first.headers["Location"]
    assert Ticket.select().count() == 1 and TicketMessage.select().count() == 1


def test_the_home_page_lists_three_and_counts_the_rest_with_one_query(logged_in, owner, monkeypatch):
    import models

    for n in range(5):
        ticket = Ticket.create(customer=owner.customer, subject=f"Domanda {n}", updated_at=utcnow() - timedelta(hours=n))
        if n % 2:
            staff_reply(Ticket.get_by_id(ticket.id), status=Ticket.WAITING_CUSTOMER)
    database = models.db_wrapper.database.obj
    sent = []
    execute_sql = database.execute_sql
    monkeypatch.setattr(database, "execute_sql", lambda sql, params=None: sent.append(sql) or execute_sql(sql, params))
    response = logged_in.get("/?sp=PR002874")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.count('class="home-tickets"') == 1 and html.count("ti abbiamo risposto") == 2
    assert "E altri 2 ticket aperti." in html
    assert '<span class="badge">2<' in html
    assert len([sql for sql in sent if '"ticket"' in sql]) == 1  # the list answers the badge too
