"""The outbox sends each mail exactly once, with several senders and a slow mail server."""
import asyncio
import collections
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import psycopg2
import pytest

import mailer
from database import is_sqlite
from models import OutboxMail, db_wrapper, utcnow
from tests.conftest import MailSink, SmtpServer
from tests.helpers import deliver
from tests.test_mailer import queue_one

ROOT = Path(__file__).resolve().parent.parent
SECONDS_PER_MAIL = 0.2


class SlowMailSink(MailSink):
    """A mail server that takes its time over every message, as a real one under load does. It
    keeps a message as soon as it has it and answers later: a sender killed before the answer
    has still had that mail delivered."""

    async def handle_DATA(self, server, session, envelope):
        answer = await super().handle_DATA(server, session, envelope)
        self.messages[-1].envelope_from = envelope.mail_from
        await asyncio.sleep(SECONDS_PER_MAIL)
        return answer


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
    app = make_app(MAIL_PORT=slow_smtp.port, MAIL_CLAIM_SECONDS=3 * SECONDS_PER_MAIL)
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


# --- senders in processes of their own, as `flask send-mail` runs from cron or as a worker -------

@pytest.fixture
def start_sender(migrated_database, slow_smtp):
    """Starts `flask send-mail` against the test database and the slow server; a sender still
    running when the test ends (it failed) is killed."""
    processes = []

    def start(envelope_from="noreply@portal.test", **settings):
        env = dict(os.environ, PORTAL_ENV="development", SECRET_KEY="outbox-test", DATABASE_URL=migrated_database,
                   MAIL_SERVER="127.0.0.1", MAIL_PORT=str(slow_smtp.port), MAIL_DELIVERY_THREAD="false",
                   MAIL_DEFAULT_SENDER=f"Sportello <{envelope_from}>", **settings)
        process = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "send-mail"], cwd=ROOT, env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.communicate()


def delivered_by(process):
    """How many mails a finished sender says it delivered."""
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    return int(out.split()[0])  # "7 mail(s) delivered."


def test_three_sender_processes_send_each_mail_once(app, slow_smtp, start_sender):
    """Claims here last longer than a mail takes, less than a sender's round; the senders start
    one after the other, as cron and the app's threads do (issue 12)."""
    recipients = [f"u{n}@example.it" for n in range(30)]
    for recipient in recipients:
        queue_one(app, recipient)

    senders = []
    for _ in range(3):
        senders.append(start_sender(MAIL_CLAIM_SECONDS="1"))
        time.sleep(3 * SECONDS_PER_MAIL)
    counts = [delivered_by(sender) for sender in senders]

    deliveries = collections.Counter(m.envelope_to[0] for m in slow_smtp.messages)
    assert {r: n for r, n in deliveries.items() if n != 1} == {}  # no mail went twice
    assert sorted(deliveries) == sorted(recipients)
    assert sum(counts) == 30
    assert sum(1 for n in counts if n > 0) >= 2, counts  # they did send side by side
    assert OutboxMail.select().where(OutboxMail.sent_at.is_null()).count() == 0


def test_a_killed_sender_process_leaves_at_most_its_last_mail_to_go_twice(app, slow_smtp, start_sender):
    """SIGKILL one of three senders while the server holds a mail of its: the others send the
    rest; once its claim has run out, another sender sends that mail again, the one repeat
    allowed. Every other mail goes exactly once."""
    claim_seconds = 1
    recipients = [f"u{n}@example.it" for n in range(20)]
    for recipient in recipients:
        queue_one(app, recipient)

    victim = start_sender("victim@portal.test", MAIL_CLAIM_SECONDS=str(claim_seconds))
    others = [start_sender(MAIL_CLAIM_SECONDS=str(claim_seconds)) for _ in range(2)]

    def victims_mails():
        return [m.envelope_to[0] for m in slow_smtp.messages if m.envelope_from == "victim@portal.test"]

    deadline = time.monotonic() + 30
    while len(victims_mails()) < 2 and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert victim.poll() is None, "the sender finished before it could be killed"
    assert len(victims_mails()) >= 2
    victim.send_signal(signal.SIGKILL)  # the server has just taken its second mail, not answered yet
    victim.wait()
    killed_at = time.monotonic()
    last_of_victim = victims_mails()[-1]
    for other in others:
        delivered_by(other)

    time.sleep(max(0.0, killed_at + claim_seconds + 0.2 - time.monotonic()))  # the claim has run out
    delivered_by(start_sender())

    deliveries = collections.Counter(m.envelope_to[0] for m in slow_smtp.messages)
    assert sorted(deliveries) == sorted(recipients)  # none lost
    assert {r: n for r, n in deliveries.items() if n != 1} in ({}, {last_of_victim: 2})
    assert OutboxMail.select().where(OutboxMail.sent_at.is_null()).count() == 0


def test_a_sender_skips_a_mail_another_is_claiming_rather_than_wait(app, migrated_database, smtp):
    """On PostgreSQL a claim is FOR UPDATE SKIP LOCKED: a row another sender holds locked is
    passed over at once, not waited for."""
    if is_sqlite(db_wrapper.database):
        pytest.skip("row locks: PostgreSQL only (SQLite has one writer at a time)")
    for n in range(3):
        queue_one(app, f"u{n}@example.it")
    locked = OutboxMail.select().order_by(OutboxMail.id).first()
    other_sender = psycopg2.connect(migrated_database)
    try:
        other_sender.cursor().execute(
            f'SELECT id FROM "{OutboxMail._meta.table_name}" WHERE id = %s FOR UPDATE', (locked.id,))
        release = threading.Timer(3, other_sender.rollback)  # should the sender wait after all
        release.start()
        started = time.monotonic()
        sent = deliver(app)
        took = time.monotonic() - started
        release.cancel()
        other_sender.rollback()  # the lock is gone once this returns (not so once close() does)
    finally:
        other_sender.close()
    assert took < 2  # not waiting for the other sender's lock
    assert sent == 2
    assert sorted(m.envelope_to[0] for m in smtp.messages) == ["u1@example.it", "u2@example.it"]
    assert deliver(app) == 1  # the lock is gone: the mail goes


def aged(mail_id, sent_days_ago=None, created_days_ago=0, due_in_days=0):
    """Move a queued mail back in time: sent that many days ago, or not sent and not due yet."""
    now = utcnow()
    OutboxMail.update(created_at=now - timedelta(days=created_days_ago),
                      sent_at=None if sent_days_ago is None else now - timedelta(days=sent_days_ago),
                      next_attempt_at=now + timedelta(days=due_in_days)).where(OutboxMail.id == mail_id).execute()


def test_sent_mails_are_deleted_after_mail_keep_days_and_unsent_ones_never(make_app, smtp):
    """A sent mail's text holds personal data and links: after MAIL_KEEP_DAYS it goes, by
    `flask send-mail` and by each process's sender once an hour; a mail still to be sent stays,
    however old; MAIL_KEEP_DAYS=0 keeps everything."""
    app = make_app(MAIL_KEEP_DAYS=30)
    for name in ("old", "recent", "unsent"):
        queue_one(app, f"{name}@example.it")
    with app.app_context():
        old, recent, unsent = (OutboxMail.get(OutboxMail.recipient == f"{name}@example.it").id
                               for name in ("old", "recent", "unsent"))
        aged(old, sent_days_ago=31, created_days_ago=31)
        aged(recent, sent_days_ago=29, created_days_ago=29)
        aged(unsent, created_days_ago=40, due_in_days=1)  # the server has refused it for 40 days
    result = app.test_cli_runner().invoke(args=["send-mail"])
    assert result.exit_code == 0, result.output
    assert result.output == "0 mail(s) delivered; 1 sent more than MAIL_KEEP_DAYS ago deleted.\n"
    with app.app_context():
        assert sorted(m.id for m in OutboxMail.select()) == sorted([recent, unsent])
        aged(recent, sent_days_ago=31)
    mailer.deliver_round(app)  # the delivery thread's round: its first look this hour
    with app.app_context():
        assert [m.id for m in OutboxMail.select()] == [unsent]
        aged(unsent, sent_days_ago=31)
    mailer.deliver_round(app)  # within the hour: not looked at again
    with app.app_context():
        assert [m.id for m in OutboxMail.select()] == [unsent]
    keeping = make_app(MAIL_KEEP_DAYS=0)
    assert keeping.test_cli_runner().invoke(args=["send-mail"]).output.endswith("; 0 sent more than MAIL_KEEP_DAYS ago deleted.\n")
    with keeping.app_context():
        assert [m.id for m in OutboxMail.select()] == [unsent]
