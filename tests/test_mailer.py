"""The outbox: written with the change, delivered by the app itself, never lost."""
import re
import socket
import threading
import time
from datetime import date, timedelta
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import pytest

import delegation
import importer
import mailer
import privacy
import self_readings
from database import write_transaction
from models import OutboxMail, Ticket, TicketMessage, User, utcnow
from tests.conftest import SmtpServer, free_port
from tests.factories import PASSWORD, make_customer, make_supply_point, make_user
from tests.helpers import deliver, html_of, link_in, post_form, text_of
from tests.import_data import write_data_set
from tests.test_auth import STEP2 as REGISTRATION
from views.account import apply_new_email, send_email_confirmation
from views.backoffice.tickets import notify_customer


def queue_one(app, to="mario@example.it"):
    with app.test_request_context(), write_transaction():
        mailer.queue(to, "Prova", "password_changed", user=None, when=utcnow(), reset_url="http://x")


def test_a_mail_has_text_and_html_parts(app, smtp):
    queue_one(app)
    assert deliver(app) == 1
    [message] = smtp.messages
    assert message["From"] == "Sportello <noreply@portal.test>"
    assert message.envelope_to == ["mario@example.it"]
    assert "la password del tuo accesso" in text_of(message)
    assert "<p>" in html_of(message)
    assert OutboxMail.get().sent_at is not None


def test_a_rolled_back_change_sends_no_mail(app, smtp):
    with app.test_request_context(), pytest.raises(RuntimeError), write_transaction():
        mailer.queue("x@example.it", "Prova", "password_changed", when=utcnow(), reset_url="u")
        raise RuntimeError("the change failed")
    assert OutboxMail.select().count() == 0
    assert deliver(app) == 0


def test_smtp_down_then_up_loses_no_mail(make_app):
    port = free_port()
    app = make_app(MAIL_PORT=port)
    queue_one(app, "a@example.it")
    queue_one(app, "b@example.it")
    assert deliver(app) == 0  # nobody listens on the port
    first = OutboxMail.get(OutboxMail.recipient == "a@example.it")
    assert first.attempts == 1 and first.sent_at is None and first.last_error
    server = SmtpServer(port).start()
    try:
        assert deliver(app) == 2
        assert sorted(m["To"] for m in server.messages) == ["a@example.it", "b@example.it"]
        assert deliver(app) == 0  # and only once
    finally:
        server.stop()


def test_a_mail_sent_again_after_its_sender_died_has_the_same_message_id(app, smtp):
    """A sender killed after the server took a mail and before marking it sent: the mail goes
    again when its claim ends, and the recipient's mail program can tell it is the same."""
    queue_one(app, "a@example.it")
    queue_one(app, "b@example.it")
    assert deliver(app) == 2
    first = OutboxMail.get(OutboxMail.recipient == "a@example.it")
    OutboxMail.update(sent_at=None, claimed_until=utcnow() - timedelta(seconds=1)).where(
        OutboxMail.id == first.id).execute()  # as the killed sender left it
    assert deliver(app) == 1
    ids = [(m["To"], m["Message-ID"]) for m in smtp.messages]
    assert [to for to, _ in ids] == ["a@example.it", "b@example.it", "a@example.it"]
    assert ids[0][1] == ids[2][1] != ids[1][1]
    assert re.fullmatch(r"<sportello\.\d+\.\d{14}@portal\.test>", ids[0][1])


def test_retries_wait_longer_each_time(make_app):
    app = make_app(MAIL_PORT=free_port(), MAIL_RETRY_SECONDS=30)
    queue_one(app)
    deliver(app)
    mail = OutboxMail.get()
    assert 25 < (mail.next_attempt_at - utcnow()).total_seconds() <= 30
    assert deliver(app) == 0  # not due yet: no new attempt
    OutboxMail.update(next_attempt_at=utcnow()).execute()
    deliver(app)
    mail = OutboxMail.get()
    assert mail.attempts == 2
    assert 55 < (mail.next_attempt_at - utcnow()).total_seconds() <= 60


def test_the_running_app_delivers_within_seconds_and_after_an_outage(make_app):
    """No second process: the app's own thread sends, also once the server comes back."""
    port = free_port()
    app = make_app(MAIL_PORT=port, MAIL_DELIVERY_THREAD=True, MAIL_RETRY_SECONDS=1)
    customer = make_customer(code="005007")
    make_user(customer, username="mario.rossi", email="mario@example.it")
    client = app.test_client()
    post_form(client, "/password-dimenticata", {"user": "005007"})  # starts the thread, queues
    time.sleep(1)
    assert OutboxMail.get().sent_at is None  # server down: waiting
    server = SmtpServer(port).start()
    try:
        deadline = time.monotonic() + 15
        while not server.messages and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [m["To"] for m in server.messages] == ["mario@example.it"]
        assert OutboxMail.get().attempts >= 1
    finally:
        server.stop()


def test_a_silent_smtp_server_does_not_hang_delivery(make_app):
    """A server that accepts the connection and never answers: the timeout ends the attempt."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    accepted = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    try:
        app = make_app(MAIL_PORT=listener.getsockname()[1], MAIL_TIMEOUT=1)
        queue_one(app)
        started = time.monotonic()
        assert deliver(app) == 0
        assert time.monotonic() - started < 5
        assert "timed out" in OutboxMail.get().last_error
    finally:
        listener.close()


def test_without_mail_server_mails_are_files_for_the_operator(make_app, tmp_path, caplog):
    app = make_app(MAIL_SERVER=None)
    app.config["MAIL_STORE_DIR"] = str(tmp_path)
    with app.test_request_context(), write_transaction():
        mailer.queue("m@example.it", "Conferma", "reset_password", link="http://portal.test/password/nuova/abc")
    with caplog.at_level("INFO", logger="mailer"):
        assert deliver(app) == 1
    [eml] = list(tmp_path.glob("*.eml"))
    message = message_from_bytes(eml.read_bytes(), policy=default_policy)
    assert message["To"] == "m@example.it"
    assert "http://portal.test/password/nuova/abc" in caplog.text


def test_two_processes_never_send_the_same_mail(app, smtp):
    """Claims are atomic: concurrent deliveries split the outbox between them."""
    for n in range(20):
        queue_one(app, f"u{n}@example.it")
    results = []
    threads = [threading.Thread(target=lambda: results.append(deliver(app))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(results) == 20
    assert len(smtp.messages) == 20
    assert len({m["To"] for m in smtp.messages}) == 20


def test_mail_is_in_the_recipients_language(app, smtp):
    customer = make_customer(code="005007")
    user = make_user(customer, language="en", email="en@example.it")
    client = app.test_client()
    post_form(client, "/password-dimenticata", {"user": "005007"})
    deliver(app)
    [message] = smtp.messages
    assert message["Subject"] == "Choose a new password"
    assert User.get_by_id(user.id).language == "en"


# --- every mail the app sends, as its recipient reads it --------------------------------------------

MAIL_TEMPLATES = sorted(path.stem for path in (Path(__file__).parent.parent / "templates/mail").glob("*.txt")
                        if not path.stem.startswith("_"))

# The text part of each mail as its recipient reads it, line by line: <token> stands for a link's
# secret, <date> and <time> for the moment of the change. Every mail ends with the footer.
FOOTER = {
    "it": """
--
Questa email è stata inviata automaticamente dal portale clienti di Sportello: non rispondere a questo indirizzo.
""",
    "en": """
--
This email was sent automatically by the Sportello customer portal: please do not reply to this address.
""",
}

EXPECTED = {
    "it": {
        "confirm_registration": """\
Gentile cliente,

per completare la registrazione al portale clienti di Sportello (codice cliente 005007) apri questo link entro un'ora:

http://portal.test/registrazione/conferma/<token>

Se non hai chiesto tu la registrazione, ignora questa email: senza conferma l'accesso non si attiva.
""",
        "registration_exists": """\
Gentile cliente,

qualcuno ha appena provato a registrarsi al portale clienti con il tuo codice cliente 005007, che ha già un accesso attivo. Non abbiamo creato nessun nuovo accesso.

Se eri tu, accedi qui: http://portal.test/login
Se non ricordi la password, chiedine una nuova: http://portal.test/password-dimenticata

Se non eri tu, non devi fare nulla; se ricapita, avvisa il servizio clienti.
""",
        "reset_password": """\
Gentile cliente,

per scegliere una nuova password apri questo link entro un'ora:

http://portal.test/password/nuova/<token>

Se non l'hai chiesto tu, ignora questa email: la password resta quella di prima.
""",
        "password_changed": """\
Gentile cliente,

la password del tuo accesso al portale clienti è stata cambiata il <date> alle <time>. Gli altri dispositivi collegati sono stati disconnessi.

Se non sei stato tu, avvisa il servizio clienti e chiedi subito una nuova password: http://portal.test/password-dimenticata
""",
        "forgot_username, one account": """\
Gentile cliente,

ecco gli accessi al portale clienti collegati a questo indirizzo email:
- codice cliente 005007 (ROSSI MARIO): username mario.rossi

Nel campo User puoi scrivere il codice cliente o lo username: http://portal.test/login
""",
        "forgot_username, several accounts": """\
Gentile cliente,

ecco gli accessi al portale clienti collegati a questo indirizzo email:
- codice cliente 005008 (ROSSI ANNA): username anna.rossi
- codice cliente 005009 (BIANCHI ANNA)

Nel campo User puoi scrivere il codice cliente o lo username: http://portal.test/login
""",
        "new_invoices": """\
Gentile cliente,

sono disponibili 2 nuove fatture per il codice cliente 200000:
- FT2026-000001: €\xa051,25, scadenza 02/03/2026
- FT2026-000002: €\xa052,25, scadenza 02/03/2026

Le trovi nel portale: http://portal.test/fatture

Non vuoi più questi avvisi? Disattivali in Dati Anagrafici: http://portal.test/dati-anagrafici
""",
    },
    "en": {
        "confirm_registration": """\
Dear customer,

To complete your registration on the Sportello customer portal (customer code 005007), open this link within one hour:

http://portal.test/registrazione/conferma/<token>

If you didn't ask to register, please ignore this email: without confirmation, no account will be activated.
""",
        "registration_exists": """\
Dear customer,

Someone has just tried to register on the customer portal with your customer code 005007, which already has an active account. We have not created a new account.

If it was you, log in here: http://portal.test/login
If you can't remember your password, request a new one here: http://portal.test/password-dimenticata

If it wasn't you, there's nothing you need to do; if it happens again, please let customer service know.
""",
        "reset_password": """\
Dear customer,

To choose a new password, open this link within one hour:

http://portal.test/password/nuova/<token>

If you didn't request this, please ignore this email: your password will stay the same.
""",
        "password_changed": """\
Dear customer,

The password for your customer portal account was changed on <date> at <time>. Any other devices that were logged in have been logged out.

If this wasn't you, please let customer service know and request a new password straight away: http://portal.test/password-dimenticata
""",
        "forgot_username, one account": """\
Dear customer,

Here are the customer portal accounts linked to this email address:
- Customer code 005007 (ROSSI MARIO): username mario.rossi

In the User field you can enter either your customer code or your username: http://portal.test/login
""",
        "forgot_username, several accounts": """\
Dear customer,

Here are the customer portal accounts linked to this email address:
- Customer code 005008 (ROSSI ANNA): username anna.rossi
- Customer code 005009 (BIANCHI ANNA)

In the User field you can enter either your customer code or your username: http://portal.test/login
""",
        "new_invoices": """\
Dear customer,

2 new invoices are available for customer code 200000:
- FT2026-000001: €\xa051.25, due 2 Mar 2026
- FT2026-000002: €\xa052.25, due 2 Mar 2026

You will find them in the portal: http://portal.test/fatture

Don't want these notices any more? Turn them off under Personal details: http://portal.test/dati-anagrafici
""",
    },
}

# The mails of the customers' writes, as EXPECTED above (made by the test below).
EXPECTED_CUSTOMER_WRITES = {
    "it": {
        "email_change": """\
Gentile cliente,

nel portale clienti è stato chiesto di usare questo indirizzo (mario.nuovo@example.it) per il cliente 005007. Per confermarlo apri questo link entro un'ora:

http://portal.test/email/conferma/<token>

Se non l'hai chiesto tu, ignora questa email: non cambierà nulla.
""",
        "email_changed": """\
Gentile cliente,

il <date> alle <time> l'indirizzo email del cliente 005007 nel portale clienti è diventato mario.nuovo@example.it. Da ora le nostre email andranno a quell'indirizzo.

Se non sei stato tu, avvisa subito il servizio clienti.
""",
        "reading_received": """\
Gentile cliente,

abbiamo ricevuto l'autolettura del punto PR002874 (IT001E00287400) con data 03/11/2026:
- F1: 1.600,000 kWh
- F2: 900,000 kWh
- F3: 1.200,000 kWh

La verifichiamo e ti scriviamo appena è validata. Nel portale la trovi come «inviata»: http://portal.test/autolettura?sp=PR002874
""",
        "reading_validated": """\
Gentile cliente,

l'autolettura del punto PR002874 (IT001E00287400) con data 02/11/2026 è stata validata:
- F1: 1.600,000 kWh
- F2: 900,000 kWh
- F3: 1.200,000 kWh

La useremo per la prossima bolletta. Lo storico delle letture: http://portal.test/autolettura?sp=PR002874
""",
        "reading_rejected": """\
Gentile cliente,

non abbiamo potuto accettare l'autolettura del punto PR002874 (IT001E00287400) con data 03/11/2026:
- F1: 1.600,000 kWh
- F2: 900,000 kWh
- F3: 1.200,000 kWh

Il motivo: Foto illeggibile

Puoi inviarne una nuova dal portale: http://portal.test/autolettura?sp=PR002874
""",
        "reading_reminder": """\
Gentile cliente,

dal 01/11/2026 al 30/11/2026 puoi inviare l'autolettura del contatore:
- PR002874 (IT001E00287400), VIA PROVA 5 - 48124 RAVENNA (RA)

Invia la lettura dal portale: http://portal.test/autolettura?sp=PR002874

Ricevi questo promemoria perché l'hai chiesto nella pagina Autolettura Contatore, dove puoi anche disattivarlo.
""",
        "ticket_reply": """\
Gentile cliente,

il servizio clienti ha risposto al tuo ticket n. 1 «Bolletta <b>alta</b>»:

Gentile cliente,
la bolletta comprende il conguaglio <dell'anno>.

Stato del ticket: in attesa del cliente.
Per leggere la conversazione e rispondere: http://portal.test/ticket/1
""",
        "ticket_status": """\
Gentile cliente,

il tuo ticket n. 1 «Bolletta <b>alta</b>» ora è: chiuso.
Se la tua richiesta non è risolta, puoi riaprirlo rispondendo entro 30 giorni.

Per leggere la conversazione: http://portal.test/ticket/1
""",
        "delegate_invitation": """\
Buongiorno,

ROSSI MARIO (codice cliente 005007) ti invita ad accedere ai suoi dati sul portale clienti di Sportello, in sola lettura.

Per accettare, apri questo link entro il <date> e scegli username e password:

http://portal.test/invito/<token>

Se non conosci chi ti invita, ignora questa email: senza la tua risposta non si attiva nulla.
""",
        "delegate_revoked": """\
Buongiorno,

ROSSI MARIO ha revocato il tuo accesso ai suoi dati sul portale clienti di Sportello: da ora non puoi più entrare con lo username studio.bianchi.

Se ti serve ancora, chiedi un nuovo invito a chi ti aveva invitato.
""",
        "account_closed": """\
Gentile cliente,

come hai chiesto, il <date> alle <time> abbiamo chiuso il tuo accesso al portale clienti di Sportello e cancellato i suoi dati (username, email, password, nome, sessioni).

I dati del contratto 005007 (forniture, fatture, letture) restano nei nostri archivi, come la legge richiede. Se vorrai tornare, potrai registrarti di nuovo: http://portal.test/registrazione

Se non sei stato tu, contatta subito il servizio clienti.
""",
    },
    "en": {
        "email_change": """\
Dear customer,

someone asked in the customer portal to use this address (mario.nuovo@example.it) for customer 005007. To confirm it, open this link within an hour:

http://portal.test/email/conferma/<token>

If it was not you, ignore this email: nothing will change.
""",
        "email_changed": """\
Dear customer,

on <date> at <time> the email address of customer 005007 in the customer portal became mario.nuovo@example.it. From now on our emails will go to that address.

If it was not you, tell customer service at once.
""",
        "reading_received": """\
Dear customer,

we have received the meter reading of point PR002874 (IT001E00287400) dated 3 Nov 2026:
- F1: 1,600.000 kWh
- F2: 900.000 kWh
- F3: 1,200.000 kWh

We will check it and write to you as soon as it is validated. In the portal it shows as “sent”: http://portal.test/autolettura?sp=PR002874
""",
        "reading_validated": """\
Dear customer,

the meter reading of point PR002874 (IT001E00287400) dated 2 Nov 2026 has been validated:
- F1: 1,600.000 kWh
- F2: 900.000 kWh
- F3: 1,200.000 kWh

We will use it for the next bill. The reading history: http://portal.test/autolettura?sp=PR002874
""",
        "reading_rejected": """\
Dear customer,

we could not accept the meter reading of point PR002874 (IT001E00287400) dated 3 Nov 2026:
- F1: 1,600.000 kWh
- F2: 900.000 kWh
- F3: 1,200.000 kWh

The reason: Foto illeggibile

You can send a new one from the portal: http://portal.test/autolettura?sp=PR002874
""",
        "reading_reminder": """\
Dear customer,

from 1 Nov 2026 to 30 Nov 2026 you can send your meter reading:
- PR002874 (IT001E00287400), VIA PROVA 5 - 48124 RAVENNA (RA)

Send the reading from the portal: http://portal.test/autolettura?sp=PR002874

You receive this reminder because you asked for it on the Autolettura Contatore page, where you can also turn it off.
""",
        "ticket_reply": """\
Dear customer,

customer service has answered your ticket no. 1 “Bolletta <b>alta</b>”:

Gentile cliente,
la bolletta comprende il conguaglio <dell'anno>.

Ticket status: waiting for the customer.
To read the conversation and reply: http://portal.test/ticket/1
""",
        "ticket_status": """\
Dear customer,

your ticket no. 1 “Bolletta <b>alta</b>” is now: closed.
If your request is not solved, you can reopen it by replying within 30 days.

To read the conversation: http://portal.test/ticket/1
""",
        "delegate_invitation": """\
Hello,

ROSSI MARIO (customer code 005007) invites you to access their data on the customer portal of Sportello, read only.

To accept, open this link by <date> and choose a username and password:

http://portal.test/invito/<token>

If you do not know who is inviting you, ignore this email: nothing is activated without your answer.
""",
        "delegate_revoked": """\
Hello,

ROSSI MARIO has revoked your access to their data on the customer portal of Sportello: from now on you can no longer log in with the username studio.bianchi.

If you still need it, ask whoever invited you for a new invitation.
""",
        "account_closed": """\
Dear customer,

as you asked, on <date> at <time> we closed your login to the customer portal of Sportello and erased its data (username, email, password, name, sessions).

The data of contract 005007 (supplies, invoices, readings) stay in our records, as the law requires. If you want to come back, you can register again: http://portal.test/registrazione

If it was not you, contact customer service at once.
""",
    },
}

MOMENT = {  # how <date> and <time> are written in each language
    "it": (r"\d\d/\d\d/\d{4}", r"\d\d:\d\d"),
    "en": (r"\d{1,2} [A-Z][a-z]{2} \d{4}", r"\d\d:\d\d"),
}


def text_lines(name, message, language):
    """The text part's lines, with the secret of a link and the moment of a change made
    comparable; and the checks any text part must pass."""
    text = text_of(message)
    for leftover in ("{{", "}}", "{%", "%}", "{#", "None"):
        assert leftover not in text, f"{name}: {leftover!r} in:\n{text}"
    assert "<p>" in html_of(message) and "</html>" in html_of(message), name
    text = re.sub(r"(http://portal\.test/(?:registrazione/conferma|password/nuova|email/conferma|invito)/)[\w-]{20,}",
                  r"\1<token>", text)
    if name in ("password_changed", "email_changed", "account_closed", "delegate_invitation"):
        date_pattern, time_pattern = MOMENT[language]
        text = re.sub(time_pattern, "<time>", re.sub(date_pattern, "<date>", text))
    return text.splitlines()


@pytest.mark.parametrize("language", ["it", "en"])
def test_every_mail_reads_as_its_template_lays_it_out(app, smtp, tmp_path, monkeypatch, language):
    """Each mail the app sends, triggered the way a person (or the import) triggers it, read
    from the real SMTP server: the text part has exactly the template's lines, no line glued
    to the next, no template syntax, no None; and an HTML part."""
    sent_templates = []
    queue = mailer.queue

    def queue_and_note(recipient, subject, template, *args, **kwargs):
        sent_templates.append(template)
        return queue(recipient, subject, template, *args, **kwargs)

    monkeypatch.setattr(mailer, "queue", queue_and_note)
    received = {}

    def receive(name, recipient):
        assert deliver(app) == 1, name
        message = smtp.messages[-1]
        assert message["To"] == recipient
        received[name] = message

    customer = make_customer(code="005007", name="ROSSI MARIO")
    point = make_supply_point(customer, pod_pdr="IT001E00287400")
    client = app.test_client()
    assert post_form(client, "/lingua", {"lang": language}, page="/login").status_code == 303

    # Registration: the confirmation link, then someone registering the same code again.
    assert post_form(client, "/registrazione", {"customer_code": "005007", "tax_id": customer.tax_code,
                                                "bill_proof": point.pod_pdr}).status_code == 303
    assert post_form(client, "/registrazione/dati", REGISTRATION).status_code == 303
    receive("confirm_registration", "mario@example.it")
    link = link_in(received["confirm_registration"], "/registrazione/conferma/")
    assert post_form(client, link, {}).status_code == 303
    intruder = app.test_client()
    assert post_form(intruder, "/lingua", {"lang": language}, page="/login").status_code == 303
    assert post_form(intruder, "/registrazione", {"customer_code": "005007", "tax_id": customer.tax_code,
                                                  "bill_proof": point.pod_pdr}).status_code == 303
    assert post_form(intruder, "/registrazione/dati", dict(REGISTRATION, email="altro@example.it",
                                                           email_repeat="altro@example.it", username="")).status_code == 303
    receive("registration_exists", "mario@example.it")

    # A forgotten password, and the notice that it changed.
    assert post_form(client, "/password-dimenticata", {"user": "005007"}).status_code == 303
    receive("reset_password", "mario@example.it")
    link = link_in(received["reset_password"], "/password/nuova/")
    assert post_form(client, link, {"password": PASSWORD, "password_repeat": PASSWORD}).status_code == 303
    receive("password_changed", "mario@example.it")

    # A forgotten username: one account for the address, and several.
    assert post_form(client, "/username-dimenticato", {"email": "mario@example.it"}).status_code == 303
    receive("forgot_username, one account", "mario@example.it")
    make_user(make_customer(code="005008", name="ROSSI ANNA"), email="anna@example.it", username="anna.rossi",
              language=language)
    make_user(make_customer(code="005009", name="BIANCHI ANNA"), email="anna@example.it", language=language)
    assert post_form(client, "/username-dimenticato", {"email": "anna@example.it"}).status_code == 303
    receive("forgot_username, several accounts", "anna@example.it")

    # New invoices, from the billing system's import.
    written = write_data_set(tmp_path / "set", customers=1, months=1)
    make_user(make_customer(code=written["customers"][0]), email="fatture@example.it", language=language)
    with app.app_context():
        report = importer.run([str(tmp_path / "set")], str(tmp_path / "store"))
    assert report.problems == []
    receive("new_invoices", "fatture@example.it")

    assert sorted(set(sent_templates)) == ACCOUNT_MAILS
    for name, message in received.items():
        expected = (EXPECTED[language][name] + FOOTER[language]).splitlines()
        assert text_lines(name, message, language) == expected, name


# The mails of the two tests above and below: a new mail template needs its case in one of them.
ACCOUNT_MAILS = ["confirm_registration", "forgot_username", "new_invoices", "password_changed",
                 "registration_exists", "reset_password"]
CUSTOMER_WRITE_MAILS = ["account_closed", "delegate_invitation", "delegate_revoked", "email_change", "email_changed",
                        "reading_received", "reading_rejected", "reading_reminder", "reading_validated",
                        "ticket_reply", "ticket_status"]


def test_every_mail_template_has_its_case():
    assert sorted(ACCOUNT_MAILS + CUSTOMER_WRITE_MAILS) == MAIL_TEMPLATES


@pytest.mark.parametrize("language", ["it", "en"])
def test_every_mail_of_the_customers_writes_reads_as_its_template_lays_it_out(make_app, smtp, monkeypatch, language):
    """The mails of self-readings, tickets, contact data, delegates and closing an account, each
    made by the code that sends it (the flows themselves are tested in their own files), read
    from the real SMTP server and compared line by line, as above."""
    app = make_app(READING_WINDOW_ELECTRICITY="1-31")
    sent_templates = []
    queue = mailer.queue
    monkeypatch.setattr(mailer, "queue", lambda recipient, subject, template, *args, **kwargs: (
        sent_templates.append(template), queue(recipient, subject, template, *args, **kwargs))[1])
    received = {}

    def receive(name, recipient):
        assert deliver(app) == 1, name
        message = smtp.messages[-1]
        assert message["To"] == recipient
        received[name] = message

    with app.test_request_context(base_url="http://portal.test"):
        customer = make_customer(code="005007", name="ROSSI MARIO", email="mario@example.it")
        point = make_supply_point(customer, code="PR002874", pod_pdr="IT001E00287400")
        owner = make_user(customer, email="mario@example.it", username="mario.rossi", language=language,
                          notify_readings=True)
        operator = make_user(None, role=User.OPERATOR, email="anna@utility.it")

        with write_transaction():
            send_email_confirmation(owner, customer, "mario.nuovo@example.it")
        receive("email_change", "mario.nuovo@example.it")
        with write_transaction():
            apply_new_email(owner, "mario.nuovo@example.it")
        receive("email_changed", "mario@example.it")
        owner = User.get_by_id(owner.id)

        for template, decide in (("reading_validated", lambda r: self_readings.validate(r, operator)),
                                 ("reading_rejected", lambda r: self_readings.reject(r, operator, "Foto illeggibile"))):
            day = date(2026, 11, 2) if template == "reading_validated" else date(2026, 11, 3)
            with write_transaction():
                readings = self_readings.record(point, owner, day, {"F1": 1600, "F2": 900, "F3": 1200}, template)
            receive("reading_received", "mario.nuovo@example.it")
            with write_transaction():
                decide(readings)
            receive(template, "mario.nuovo@example.it")
        assert self_readings.remind_in_request(date(2026, 11, 25)) == 1
        receive("reading_reminder", "mario.nuovo@example.it")

        ticket = Ticket.create(customer=customer, supply_point=point, opened_by=owner, subject="Bolletta <b>alta</b>",
                               category="billing", status=Ticket.WAITING_CUSTOMER)
        reply = "Gentile cliente,\nla bolletta comprende il conguaglio <dell'anno>."
        TicketMessage.create(ticket=ticket, author=operator, from_staff=True, body=reply)
        with write_transaction():
            notify_customer(ticket, reply)
        receive("ticket_reply", "mario.nuovo@example.it")
        ticket.status = Ticket.CLOSED
        ticket.save()
        with write_transaction():
            notify_customer(ticket)
        receive("ticket_status", "mario.nuovo@example.it")

        with write_transaction():
            delegate = delegation.invite(owner, "studio@example.it", User.READ)
        receive("delegate_invitation", "studio@example.it")
        User.update(confirmed_at=utcnow(), username="studio.bianchi", first_name="Anna",
                    last_name="Bianchi").where(User.id == delegate.id).execute()
        with write_transaction():
            delegation.revoke(User.get_by_id(delegate.id), by=owner)
        receive("delegate_revoked", "studio@example.it")

        with write_transaction():
            privacy.close_account(owner)
        receive("account_closed", "mario.nuovo@example.it")

    assert sorted(set(sent_templates)) == CUSTOMER_WRITE_MAILS
    for name, message in received.items():
        expected = (EXPECTED_CUSTOMER_WRITES[language][name] + FOOTER[language]).splitlines()
        assert text_lines(name, message, language) == expected, name
    assert "Bolletta &lt;b&gt;alta&lt;/b&gt;" in html_of(received["ticket_reply"])  # the customer's text, as text


def test_outside_the_demo_no_link_reaches_the_log(make_app, tmp_path, caplog):
    """A reset link is a key to the account: in production (mails kept as files on purpose) the
    log says a mail was written, never its links."""
    app = make_app(MAIL_SERVER=None, MAIL_BACKEND="files", PORTAL_ENV="production", PORTAL_BASE_URL="https://portal.test")
    app.config["MAIL_STORE_DIR"] = str(tmp_path)
    with app.test_request_context(), write_transaction():
        mailer.queue("m@example.it", "Conferma", "reset_password", link="https://portal.test/password/nuova/abc")
    with caplog.at_level("INFO", logger="mailer"):
        assert deliver(app) == 1
    assert "written to" in caplog.text and "/password/nuova/" not in caplog.text
    [eml] = list(tmp_path.glob("*.eml"))
    assert b"/password/nuova/abc" in eml.read_bytes()  # the mail itself has it, for its recipient
