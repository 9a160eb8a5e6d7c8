"""The outbox: written with the change, delivered by the app itself, never lost."""
import socket
import threading
import time
from email import message_from_bytes
from email.policy import default as default_policy

import pytest

import mailer
from models import OutboxMail, User, utcnow, write_transaction
from tests.conftest import SmtpServer, free_port
from tests.factories import make_customer, make_user
from tests.helpers import deliver, html_of, post_form, text_of


def queue_one(app, to="mario@example.it"):
    with app.test_request_context():
        with write_transaction():
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
    with app.test_request_context():
        with pytest.raises(RuntimeError):
            with write_transaction():
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
    with app.test_request_context():
        with write_transaction():
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
