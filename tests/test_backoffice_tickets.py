"""Ticket, the utility's side: the queue and every value of its filters, a ticket's page, reply
(with canned replies inserted, with and without htmx), internal notes, assignment, status; the
canned replies' page; the customer mailed on replies and status changes, never on notes; and the
round trip with the customer, where an internal note reaches no page, fragment, mail or export."""
import io
import re
from datetime import timedelta

import pyotp
import pytest

import accounts
from models import AuditLog, CannedReply, OutboxMail, Ticket, TicketMessage, User, utcnow
from tests.factories import PASSWORD, make_customer, make_supply_point, make_user
from tests.helpers import csrf_from, deliver, html_of, htmx_headers, login, text_of
from tests.import_data import pdf_bytes
from tests.test_backoffice import OPERATOR_PASSWORD, enroll, enter_code
from tests.test_tickets import XSS

NOTE = "Cliente già sentito al telefono: non citare il rimborso"


def staff_client(app, email):
    with app.app_context():
        user = accounts.create_staff(email, OPERATOR_PASSWORD)
    client = app.test_client()
    secret = enroll(client, email.lower())
    assert enter_code(client, pyotp.TOTP(secret).now()).status_code == 303
    client.user = user
    return client


@pytest.fixture
def staff(app):
    return staff_client(app, "anna@utility.it")


@pytest.fixture
def mario(app):
    customer = make_customer(code="005007", name="ROSSI MARIO")
    make_supply_point(customer, code="PR002874", pod_pdr="IT001E00287400")
    user = make_user(customer, username="mario.rossi", email="mario@example.it")
    return customer, user


def open_ticket(customer, user=None, **values):
    values.setdefault("subject", "Bolletta troppo alta")
    ticket = Ticket.create(customer=customer, opened_by=user, **values)
    TicketMessage.create(ticket=ticket, author=user, body="Perché ho pagato il doppio?")
    return ticket


def form_of(client, url):
    page = client.get(url)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    keys = re.findall(r'name="idempotency_key" type="hidden" value="(\w+)"', html)
    return csrf_from(page), keys, html


def staff_post(client, ticket, action, headers=None, **data):
    token, keys, _ = form_of(client, f"/backoffice/ticket/{ticket.id}")
    if action in ("risposta", "nota"):
        data.setdefault("idempotency_key", keys[0] if action == "risposta" else keys[1])
    return client.post(f"/backoffice/ticket/{ticket.id}/{action}", data={"csrf_token": token, **data}, headers=headers or {})


# --- the queue --------------------------------------------------------------------------------------

@pytest.fixture
def queue(staff, mario, app):
    customer, user = mario
    colleague = staff_client(app, "bruno@utility.it").user
    now = utcnow()
    tickets = {
        "new_billing": open_ticket(customer, user, category="billing", subject="Nuovo bolletta"),
        "mine_fault": open_ticket(customer, user, category="fault", status=Ticket.IN_PROGRESS,
                                  assignee=staff.user, subject="Mio guasto", updated_at=now - timedelta(days=3)),
        "bruno_readings": open_ticket(customer, user, category="readings", status=Ticket.WAITING_CUSTOMER,
                                      assignee=colleague, subject="Di Bruno letture",
                                      updated_at=now - timedelta(days=8)),
        "closed_contract": open_ticket(customer, user, category="contract", status=Ticket.CLOSED,
                                       subject="Chiuso contratto", closed_at=now, updated_at=now - timedelta(days=20)),
        "other": open_ticket(customer, user, category="other", subject="Altro argomento"),
    }
    return tickets, colleague


def shown(response):
    return set(re.findall(r'<a href="/backoffice/ticket/\d+">([^<]+)</a>', response.get_data(as_text=True)))


@pytest.mark.parametrize("query, expected", [
    ("", {"Nuovo bolletta", "Mio guasto", "Di Bruno letture", "Altro argomento"}),
    ("stato=tutti", {"Nuovo bolletta", "Mio guasto", "Di Bruno letture", "Chiuso contratto", "Altro argomento"}),
    ("stato=open", {"Nuovo bolletta", "Altro argomento"}),
    ("stato=in_progress", {"Mio guasto"}),
    ("stato=waiting_customer", {"Di Bruno letture"}),
    ("stato=closed", {"Chiuso contratto"}),
    ("stato=tutti&categoria=billing", {"Nuovo bolletta"}),
    ("stato=tutti&categoria=readings", {"Di Bruno letture"}),
    ("stato=tutti&categoria=contract", {"Chiuso contratto"}),
    ("stato=tutti&categoria=fault", {"Mio guasto"}),
    ("stato=tutti&categoria=other", {"Altro argomento"}),
    ("assegnatario=miei", {"Mio guasto"}),
    ("assegnatario=nessuno", {"Nuovo bolletta", "Altro argomento"}),
    ("assegnatario=BRUNO", {"Di Bruno letture"}),
    ("eta=2", {"Mio guasto", "Di Bruno letture"}),
    ("eta=7", {"Di Bruno letture"}),
    ("stato=tutti&eta=7", {"Di Bruno letture", "Chiuso contratto"}),
    ("stato=nonsense&categoria=nonsense&assegnatario=999&eta=3", {"Nuovo bolletta", "Mio guasto", "Di Bruno letture",
                                                                  "Altro argomento"}),  # ignored, as old bookmarks
])
@pytest.mark.parametrize("htmx", [False, True])
def test_the_queue_filters(staff, queue, query, expected, htmx):
    _tickets, colleague = queue
    url = "/backoffice/ticket?" + query.replace("BRUNO", str(colleague.id))
    response = staff.get(url, headers=htmx_headers("ticket-queue") if htmx else {})
    assert response.status_code == 200
    assert shown(response) == expected
    body = response.get_data(as_text=True)
    assert ("<html" in body) == (not htmx)
    if htmx:
        assert {"HX-Request", "HX-Target"} <= set(response.headers["Vary"].split(", "))
    else:
        assert 'href="/backoffice/ticket"' in body  # in the staff menu
        assert re.search(rf'<option[^>]*value="{colleague.id}"[^>]*>bruno@utility.it</option>', body)


def test_an_empty_queue_says_so(staff):
    response = staff.get("/backoffice/ticket")
    assert response.status_code == 200
    assert "Nessun ticket con questi filtri." in response.get_data(as_text=True)


# --- a ticket: reply, note, assign, status ----------------------------------------------------------

def test_a_reply_is_mailed_to_the_customer_and_a_note_is_not(app, staff, mario, smtp):
    customer, user = mario
    ticket = open_ticket(customer, user)
    response = staff_post(staff, ticket, "nota", note=NOTE)
    assert response.status_code == 303
    assert OutboxMail.select().count() == 0
    response = staff_post(staff, ticket, "risposta", message="Gentile cliente, la bolletta comprende il conguaglio.",
                          status="waiting_customer", canned="")
    assert response.status_code == 303 and response.headers["Location"] == f"/backoffice/ticket/{ticket.id}"
    ticket = Ticket.get_by_id(ticket.id)
    assert ticket.status == Ticket.WAITING_CUSTOMER
    deliver(app)
    (mail,) = smtp.messages
    assert mail.envelope_to == ["mario@example.it"]
    assert mail["Subject"] == "Risposta al tuo ticket «Bolletta troppo alta»"
    assert "la bolletta comprende il conguaglio" in text_of(mail) and "in attesa del cliente" in text_of(mail)
    assert f"http://portal.test/ticket/{ticket.id}" in text_of(mail)
    assert NOTE not in text_of(mail) and NOTE not in html_of(mail)
    page = staff.get(f"/backoffice/ticket/{ticket.id}").get_data(as_text=True)
    assert "Nota interna — il cliente non la vede" in page and NOTE in page
    actions = [entry.action for entry in AuditLog.select().order_by(AuditLog.id) if entry.action.startswith("operator_t")]
    assert actions == ["operator_ticket_note", "operator_ticket_replied"]


@pytest.mark.parametrize("status", ["open", "in_progress", "waiting_customer", "closed"])
def test_a_reply_sets_the_status_chosen(staff, mario, status):
    ticket = open_ticket(*mario)
    assert staff_post(staff, ticket, "risposta", message="Risposta", status=status).status_code == 303
    ticket = Ticket.get_by_id(ticket.id)
    assert ticket.status == status
    assert (ticket.closed_at is not None) == (status == "closed")


@pytest.mark.parametrize("status, words", [
    ("in_progress", "in lavorazione"), ("waiting_customer", "in attesa del cliente"), ("closed", "chiuso"),
    ("open", "aperto")])
def test_a_status_change_is_mailed(app, staff, mario, smtp, status, words):
    ticket = open_ticket(*mario, status=Ticket.OPEN if status != "open" else Ticket.CLOSED)
    response = staff_post(staff, ticket, "stato", status=status)
    assert response.status_code == 303
    ticket = Ticket.get_by_id(ticket.id)
    assert ticket.status == status and (ticket.closed_at is not None) == (status == "closed")
    deliver(app)
    (mail,) = smtp.messages
    assert mail["Subject"] == f"Il tuo ticket «Bolletta troppo alta» è {words}"
    assert f"ora è: {words}." in text_of(mail)
    assert ("riaprirlo rispondendo entro 30 giorni" in text_of(mail)) == (status == "closed")
    entry = AuditLog.get(AuditLog.action == "operator_ticket_status")
    assert entry.user_id == staff.user.id and f'"ticket_status": "{status}"' in entry.detail


def test_the_same_status_again_mails_nothing(staff, mario):
    ticket = open_ticket(*mario)
    assert staff_post(staff, ticket, "stato", status="open").status_code == 303
    assert OutboxMail.select().count() == 0 and not AuditLog.select().where(
        AuditLog.action == "operator_ticket_status").exists()


def test_assign_to_a_colleague_and_to_nobody(app, staff, mario):
    ticket = open_ticket(*mario)
    colleague = staff_client(app, "bruno@utility.it").user
    assert staff_post(staff, ticket, "assegna", assignee=str(colleague.id)).status_code == 303
    assert Ticket.get_by_id(ticket.id).assignee_id == colleague.id
    html = staff.get(f"/backoffice/ticket/{ticket.id}").get_data(as_text=True)
    assert f'<option selected value="{colleague.id}">bruno@utility.it</option>' in html
    assert staff_post(staff, ticket, "assegna", assignee="").status_code == 303
    assert Ticket.get_by_id(ticket.id).assignee_id is None
    entries = AuditLog.select().where(AuditLog.action == "operator_ticket_assigned").order_by(AuditLog.id)
    assert ['"assignee": "bruno@utility.it"' in e.detail for e in entries] == [True, False]
    assert '"assignee": ""' in entries[1].detail
    assert OutboxMail.select().count() == 0  # an assignment is the utility's own business


@pytest.mark.parametrize("action, data, field_id, message", [
    ("risposta", {"message": "  ", "status": "waiting_customer"}, "message", "Scrivi la risposta."),
    ("risposta", {"message": "x", "status": "lost"}, "status", "Non è una opzione valida"),
    ("nota", {"note": ""}, "note", "Scrivi la nota."),
    ("assegna", {"assignee": "999999"}, "assignee", "Non è una opzione valida"),
    ("stato", {"status": "answered"}, "new_status", "Non è una opzione valida"),
])
def test_bad_input_is_said_next_to_its_field(staff, mario, action, data, field_id, message):
    ticket = open_ticket(*mario)
    response = staff_post(staff, ticket, action, **data)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    error = re.search(rf'<p class="field-error" id="err-{field_id}">(.*?)</p>', html, re.S)
    assert error and message in error.group(1)
    assert TicketMessage.select().count() == 1 and OutboxMail.select().count() == 0
    assert Ticket.get_by_id(ticket.id).status == Ticket.OPEN


THE_TICKET = {"HX-Request": "true", "HX-Target": "ticket-page"}


@pytest.mark.parametrize("action, data, field_id, message, kept", [
    ("risposta", {"message": "x" * 10_001, "status": "waiting_customer"}, "message", "Al massimo 10000 caratteri.",
     "x" * 10_001 + "</textarea>"),
    ("nota", {"note": "   "}, "note", "Scrivi la nota.", None),
])
def test_a_refused_reply_or_note_with_htmx_stays_at_the_tickets_address(staff, mario, action, data, field_id,
                                                                          message, kept):
    """What the forms' hx-post sends: the ticket's block back with the error next to the field
    and the text as typed; the browser stays at the ticket's address (nothing pushed, no
    redirect), so a reload asks for the page and posts nothing."""
    ticket = open_ticket(*mario)
    address = f"http://localhost/backoffice/ticket/{ticket.id}"
    response = staff_post(staff, ticket, action, headers={**THE_TICKET, "HX-Current-URL": address}, **data)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "<html" not in html and "Location" not in response.headers and "HX-Push-Url" not in response.headers
    error = re.search(rf'<p class="field-error" id="err-{field_id}">(.*?)</p>', html, re.S)
    assert error and message in error.group(1)
    if kept:
        assert kept in html
    assert f'hx-post="/backoffice/ticket/{ticket.id}/{action}" hx-target="#ticket-page"' in html
    assert {"HX-Request", "HX-Target"} <= set(response.headers["Vary"].split(", "))
    assert TicketMessage.select().count() == 1 and OutboxMail.select().count() == 0


@pytest.mark.parametrize("action, data, said", [
    ("risposta", {"message": "Abbiamo controllato.", "status": "waiting_customer"}, "Risposta inviata: il cliente riceve un&#39;email."),
    ("nota", {"note": NOTE}, "Nota interna salvata."),
])
def test_a_reply_or_note_with_htmx_comes_back_in_the_tickets_block(staff, mario, action, data, said):
    ticket = open_ticket(*mario)
    address = f"http://localhost/backoffice/ticket/{ticket.id}"
    response = staff_post(staff, ticket, action, headers={**THE_TICKET, "HX-Current-URL": address}, **data)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<html" not in html and "Location" not in response.headers
    assert f'<p class="flash flash-success" role="status">{said}</p>' in html
    written = TicketMessage.select().order_by(TicketMessage.id.desc()).first()
    assert written.body == next(iter(data.values())) and written.body.replace("'", "&#39;") in html
    assert re.search(r'id="message"[^>]*>\s*</textarea>', html)  # the forms are empty again
    if action == "risposta":
        assert "in attesa del cliente" in html  # the facts it changed


@pytest.mark.parametrize("action", ["risposta", "nota"])
def test_a_refused_reply_or_note_without_javascript_leaves_an_address_that_is_the_ticket(staff, mario, action):
    """No JavaScript: the refusal is the page at the address posted to (422). Posted again (a
    reload) it writes nothing; opened anew (a new tab, a restored session) it is the ticket."""
    ticket = open_ticket(*mario)
    for _ in range(2):
        refused = staff_post(staff, ticket, action, message="  ", note="  ", status="waiting_customer",
                             idempotency_key="a" * 32)
        assert refused.status_code == 422 and "<html" in refused.get_data(as_text=True)
    assert TicketMessage.select().count() == 1
    opened_again = staff.get(f"/backoffice/ticket/{ticket.id}/{action}")
    assert opened_again.status_code == 302 and opened_again.headers["Location"] == f"/backoffice/ticket/{ticket.id}"
    page = staff.get(opened_again.headers["Location"])
    assert page.status_code == 200 and "Rispondi al cliente" in page.get_data(as_text=True)


def test_a_double_submitted_reply_or_note_is_written_once(staff, mario):
    ticket = open_ticket(*mario)
    for _ in range(2):
        assert staff_post(staff, ticket, "risposta", message="Una volta", status="waiting_customer",
                          idempotency_key="e" * 32).status_code == 303
        assert staff_post(staff, ticket, "nota", note="Una nota", idempotency_key="f" * 32).status_code == 303
    assert TicketMessage.select().where(TicketMessage.body == "Una volta").count() == 1
    assert TicketMessage.select().where(TicketMessage.body == "Una nota").count() == 1
    assert OutboxMail.select().count() == 1


def test_a_foreign_or_missing_ticket_is_not_found(staff):
    assert staff.get("/backoffice/ticket/424242").status_code == 404
    token = csrf_from(staff.get("/backoffice/ticket"))
    for action in ("risposta", "nota", "assegna", "stato"):
        assert staff.post(f"/backoffice/ticket/424242/{action}", data={"csrf_token": token}).status_code == 404


def test_the_staff_see_texts_as_text(staff, mario):
    customer, user = mario
    ticket = Ticket.create(customer=customer, opened_by=user, subject=XSS)
    TicketMessage.create(ticket=ticket, author=user, body=XSS)
    for url in ("/backoffice/ticket", f"/backoffice/ticket/{ticket.id}"):
        response = staff.get(url)
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html


def test_a_reply_full_of_html_is_mailed_as_text(app, staff, mario, smtp):
    ticket = open_ticket(*mario, subject=XSS)
    assert staff_post(staff, ticket, "risposta", message=XSS, status="waiting_customer").status_code == 303
    deliver(app)
    (mail,) = smtp.messages
    assert "<script>" not in html_of(mail) and "&lt;script&gt;" in html_of(mail)
    assert XSS in text_of(mail)  # plain text is not HTML: the words as written


# --- canned replies -----------------------------------------------------------------------------------

def test_canned_replies_are_written_edited_and_deleted(staff):
    page = staff.get("/backoffice/risposte-predefinite")
    assert page.status_code == 200 and "Ancora nessuna risposta predefinita." in page.get_data(as_text=True)
    response = staff.post("/backoffice/risposte-predefinite", data={
        "csrf_token": csrf_from(page), "title": "Rateizzazione", "body": "Gentile cliente, la rateizzazione..."})
    assert response.status_code == 303
    reply = CannedReply.get()
    assert (reply.title, reply.updated_by_id) == ("Rateizzazione", staff.user.id)
    edit = staff.get(f"/backoffice/risposte-predefinite/{reply.id}")
    assert edit.status_code == 200 and 'value="Rateizzazione"' in edit.get_data(as_text=True)
    response = staff.post(f"/backoffice/risposte-predefinite/{reply.id}", data={
        "csrf_token": csrf_from(edit), "title": "Rate", "body": "Nuovo testo"})
    assert response.status_code == 303
    assert (CannedReply.get().title, CannedReply.get().body) == ("Rate", "Nuovo testo")
    response = staff.post(f"/backoffice/risposte-predefinite/{reply.id}/elimina", data={"csrf_token": csrf_from(edit)})
    assert response.status_code == 303 and not CannedReply.select().exists()
    actions = [e.action for e in AuditLog.select().order_by(AuditLog.id) if e.action.startswith("canned")]
    assert actions == ["canned_reply_created", "canned_reply_changed", "canned_reply_deleted"]
    assert staff.get(f"/backoffice/risposte-predefinite/{reply.id}").status_code == 404


@pytest.mark.parametrize("data, field_id, message", [
    ({"title": "", "body": "x"}, "title", "Scrivi il titolo."),
    ({"title": "x" * 101, "body": "x"}, "title", "Al massimo 100 caratteri."),
    ({"title": "Titolo", "body": " "}, "body", "Scrivi il testo."),
])
def test_a_bad_canned_reply_is_said_next_to_its_field(staff, data, field_id, message):
    page = staff.get("/backoffice/risposte-predefinite")
    response = staff.post("/backoffice/risposte-predefinite", data={"csrf_token": csrf_from(page), **data})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert re.search(rf'<p class="field-error" id="err-{field_id}">[^<]*{re.escape(message)}', html)
    assert not CannedReply.select().exists()


@pytest.mark.parametrize("htmx", [False, True])
def test_a_canned_reply_is_inserted_into_the_text_without_sending(staff, mario, htmx):
    ticket = open_ticket(*mario)
    canned = CannedReply.create(title="Lettura stimata", body="Quando il distributore non legge...")
    headers = {**htmx_headers("reply-form"), "HX-Trigger-Name": "insert"} if htmx else {}
    token, keys, _ = form_of(staff, f"/backoffice/ticket/{ticket.id}")
    response = staff.post(f"/backoffice/ticket/{ticket.id}/risposta", headers=headers, data={
        "csrf_token": token, "idempotency_key": keys[0], "message": "Gentile cliente,", "canned": str(canned.id),
        "status": "waiting_customer", "insert": "1"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Gentile cliente,\n\nQuando il distributore non legge...</textarea>" in html
    assert ("<html" in html) == (not htmx)
    assert TicketMessage.select().count() == 1 and OutboxMail.select().count() == 0
    if htmx:
        assert {"HX-Request", "HX-Target"} <= set(response.headers["Vary"].split(", "))


def test_inserting_without_choosing_says_so(staff, mario):
    ticket = open_ticket(*mario)
    token, keys, _ = form_of(staff, f"/backoffice/ticket/{ticket.id}")
    response = staff.post(f"/backoffice/ticket/{ticket.id}/risposta", data={
        "csrf_token": token, "idempotency_key": keys[0], "message": "Testo mio", "canned": "", "insert": "1"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Scegli una risposta predefinita." in html and "Testo mio</textarea>" in html


# --- the round trip ----------------------------------------------------------------------------------

def test_the_round_trip_never_shows_an_internal_note_to_the_customer(app, staff, mario, smtp):
    """The customer opens a ticket; the operator notes, replies, closes; the customer reopens
    it. The note is on no customer page, fragment, mail, nor in the export."""
    customer, user = mario
    client = app.test_client()
    assert login(client, "005007", PASSWORD).status_code == 303
    page = client.get("/ticket/nuovo?sp=PR002874")
    key = re.search(r'name="idempotency_key" type="hidden" value="(\w+)"', page.get_data(as_text=True)).group(1)
    response = client.post("/ticket/nuovo?sp=PR002874", data={
        "csrf_token": csrf_from(page), "idempotency_key": key, "category": "billing", "supply_point": "PR002874",
        "subject": "Conguaglio", "message": "Cos'è il conguaglio?"})
    assert response.status_code == 303
    ticket = Ticket.get()

    queue = staff.get("/backoffice/ticket")
    assert "Conguaglio" in queue.get_data(as_text=True)
    assert staff_post(staff, ticket, "nota", note=NOTE).status_code == 303
    assert staff_post(staff, ticket, "risposta", message="È la differenza tra stima e lettura reale.",
                      status="waiting_customer").status_code == 303
    assert staff_post(staff, ticket, "stato", status="closed").status_code == 303

    customer_views = [
        client.get(f"/ticket/{ticket.id}?sp=PR002874"),
        client.get(f"/ticket/{ticket.id}?sp=PR002874", headers=htmx_headers("frame")),
        client.get("/ticket?sp=PR002874"),
        client.get("/?sp=PR002874"),
    ]
    for response in customer_views:
        assert response.status_code == 200
        assert NOTE not in response.get_data(as_text=True)
    thread = customer_views[0].get_data(as_text=True)
    assert "È la differenza tra stima e lettura reale." in thread and "chiuso" in thread

    page = client.get(f"/ticket/{ticket.id}?sp=PR002874")
    key = re.search(r'name="idempotency_key" type="hidden" value="(\w+)"', page.get_data(as_text=True)).group(1)
    response = client.post(f"/ticket/{ticket.id}/risposta?sp=PR002874", headers=htmx_headers("ticket-thread"),
                           data={"csrf_token": csrf_from(page), "idempotency_key": key, "message": "Non ho capito."})
    assert response.status_code == 200
    assert NOTE not in response.get_data(as_text=True) and "Non ho capito." in response.get_data(as_text=True)
    assert Ticket.get_by_id(ticket.id).status == Ticket.OPEN

    deliver(app)
    assert len(smtp.messages) == 2  # the reply and the closing; the note mails nobody
    for mail in smtp.messages:
        assert mail.envelope_to == ["mario@example.it"]
        assert NOTE not in text_of(mail) and NOTE not in html_of(mail)
    since = (utcnow() - timedelta(days=1)).date().isoformat()
    result = app.test_cli_runner().invoke(args=["export", "tickets", "--since", since])
    assert result.exit_code == 0, result.output
    assert "Non ho capito." in result.stdout and "È la differenza" in result.stdout
    assert NOTE not in result.stdout
    staff_page = staff.get(f"/backoffice/ticket/{ticket.id}").get_data(as_text=True)
    assert NOTE in staff_page and "Non ho capito." in staff_page


def test_the_mail_goes_to_the_customers_address_when_the_login_is_gone(app, staff, mario, smtp):
    customer, user = mario
    User.update(disabled=True).where(User.id == user.id).execute()
    ticket = open_ticket(customer, user)
    assert staff_post(staff, ticket, "stato", status="in_progress").status_code == 303
    deliver(app)
    assert smtp.messages[0].envelope_to == [customer.email]


def test_the_staff_download_an_attachment_of_the_ticket(app, staff, mario):
    from tests.test_security import ticket_with_attachment

    ticket, attachment = ticket_with_attachment(app, mario[0])
    response = staff.get(f"/backoffice/ticket/{ticket.id}")
    assert response.status_code == 200
    link = f"/backoffice/ticket/{ticket.id}/allegati/{attachment.id}"
    assert f'href="{link}"' in response.get_data(as_text=True)
    download = staff.get(link)
    assert download.status_code == 200 and download.data.startswith(b"%PDF-")
    assert download.headers["Content-Disposition"].startswith("attachment;")
    other = open_ticket(*mario)
    assert staff.get(f"/backoffice/ticket/{other.id}/allegati/{attachment.id}").status_code == 404


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_an_operator_attaches_files_the_customer_downloads(app, staff, mario, smtp, htmx):
    """A copy of a bill with the reply: kept with it, named in the mail (the file stays in the
    portal, behind the login), downloaded by the customer from their ticket and by no one else."""
    customer, user = mario
    ticket = open_ticket(customer, user)
    token, keys, _ = form_of(staff, f"/backoffice/ticket/{ticket.id}")
    headers = {**htmx_headers("ticket-page"), "HX-Current-URL": f"http://localhost/backoffice/ticket/{ticket.id}"} if htmx else {}
    response = staff.post(f"/backoffice/ticket/{ticket.id}/risposta", headers=headers, content_type="multipart/form-data", data={
        "csrf_token": token, "idempotency_key": keys[0], "message": "Le allego la bolletta corretta.",
        "status": "waiting_customer", "canned": "", "attachments": [(io.BytesIO(pdf_bytes("Bolletta")), "bolletta corretta.pdf")]})
    assert response.status_code == (200 if htmx else 303)
    reply = TicketMessage.select().where(TicketMessage.from_staff == True).get()  # noqa: E712
    [attachment] = reply.attachments
    assert (attachment.name, attachment.content_type) == ("bolletta corretta.pdf", "application/pdf")
    assert '"attachments": 1' in AuditLog.get(AuditLog.action == "operator_ticket_replied").detail
    deliver(app)
    [mail] = smtp.messages
    assert "Allegati, da scaricare dal ticket nel portale: bolletta corretta.pdf." in text_of(mail)
    assert len(list(mail.iter_attachments())) == 0

    customer_client = app.test_client()
    assert login(customer_client, "005007", PASSWORD).status_code == 303
    page = customer_client.get(f"/ticket/{ticket.id}?sp=PR002874")
    assert page.status_code == 200
    link = f"/ticket/{ticket.id}/allegati/{attachment.id}"
    assert link in page.get_data(as_text=True)
    download = customer_client.get(link + "?sp=PR002874")
    assert download.status_code == 200 and download.data.startswith(b"%PDF-")
    stranger = make_customer(code="006001")
    make_supply_point(stranger, code="PR006001")
    make_user(stranger, username="luigi", email="luigi@example.it")
    other = app.test_client()
    assert login(other, "006001", PASSWORD).status_code == 303
    assert other.get(link, follow_redirects=True).status_code == 404


def test_a_file_an_operator_may_not_attach_is_said_next_to_the_field(staff, mario):
    ticket = open_ticket(*mario)
    token, keys, _ = form_of(staff, f"/backoffice/ticket/{ticket.id}")
    response = staff.post(f"/backoffice/ticket/{ticket.id}/risposta", content_type="multipart/form-data", data={
        "csrf_token": token, "idempotency_key": keys[0], "message": "Ecco il programma.", "status": "open", "canned": "",
        "attachments": [(io.BytesIO(b"MZ\x90\x00 not a document"), "programma.pdf")]})
    assert response.status_code == 422
    error = re.search(r'<p class="field-error" id="err-attachments">([^<]+)</p>', response.get_data(as_text=True))
    assert error and "Ecco il programma.</textarea>" in response.get_data(as_text=True)
    assert TicketMessage.select().where(TicketMessage.from_staff == True).count() == 0  # noqa: E712


def test_the_customers_page_links_to_their_tickets(staff, mario):
    ticket = open_ticket(*mario)
    response = staff.get("/backoffice/clienti/005007")
    assert response.status_code == 200
    assert f'<a href="/backoffice/ticket/{ticket.id}">Bolletta troppo alta</a>' in response.get_data(as_text=True)
