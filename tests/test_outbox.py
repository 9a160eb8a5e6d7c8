"""The outbox sends each mail exactly once, with several senders and a slow mail server."""
import asyncio
import collections
import threading
import time
from datetime import timedelta

import pytest

import mailer
from models import OutboxMail, utcnow
from tests.conftest import MailSink, SmtpServer
from tests.helpers import deliver
from tests.test_mailer import queue_one

SECONDS_PER_MAIL = 0.2


class SlowMailSink(MailSink):
    """A mail server that takes its time over every message, as a real one under load does."""

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(SECONDS_PER_MAIL)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def slow_smtp():
    server = SmtpServer()
    server.sink = SlowMailSink()
    server.start()
    yield server
    server.stop()


def test_three_senders_and_a_slow_server_send_each_mail_once(make_app, slow_smtp, monkeypatch):
    """Issue 12: a claim outlived by the round that took it let a sender started later send
    the same mails again. Claims here last longer than a mail takes, less than a round."""
    monkeypatch.setattr(mailer, "CLAIM_FOR", timedelta(seconds=3 * SECONDS_PER_MAIL))
    app = make_app(MAIL_PORT=slow_smtp.port)
    recipients = [f"u{n}@example.it" for n in range(18)]
    for recipient in recipients:
        queue_one(app, recipient)

    results = []

    def sender(delay):
        time.sleep(delay)  # senders start one after the other, as cron and the app's threads do
        results.append(deliver(app))

    threads = [threading.Thread(target=sender, args=(n * 4 * SECONDS_PER_MAIL,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    deliveries = collections.Counter(m.envelope_to[0] for m in slow_smtp.messages)
    assert {r: n for r, n in deliveries.items() if n != 1} == {}  # no mail went twice
    assert sorted(deliveries) == sorted(recipients)
    assert sum(results) == 18
    assert OutboxMail.select().where(OutboxMail.sent_at.is_null()).count() == 0


class SenderKilled(BaseException):
    """The sender's process dying: nothing in deliver_pending() catches it."""


def test_a_sender_killed_mid_round_holds_up_only_the_mail_it_was_sending(app, smtp, monkeypatch):
    """Killed after the server took a mail, before writing it down as sent: the other mails go at
    once; that one waits for its claim to run out, then goes once more (the allowed repeat)."""
    for n in range(3):
        queue_one(app, f"u{n}@example.it")
    send = mailer.SmtpTransport.send

    def send_then_die(transport, *args):
        send(transport, *args)
        raise SenderKilled

    monkeypatch.setattr(mailer.SmtpTransport, "send", send_then_die)
    with pytest.raises(SenderKilled):
        deliver(app)
    monkeypatch.setattr(mailer.SmtpTransport, "send", send)
    assert deliver(app) == 2  # the others, not the killed sender's mail
    assert deliver(app) == 0  # still claimed
    OutboxMail.update(claimed_until=utcnow() - timedelta(seconds=1)).where(OutboxMail.sent_at.is_null()).execute()
    assert deliver(app) == 1
    assert deliver(app) == 0
    deliveries = collections.Counter(m["To"] for m in smtp.messages)
    assert deliveries == {"u0@example.it": 2, "u1@example.it": 1, "u2@example.it": 1}
