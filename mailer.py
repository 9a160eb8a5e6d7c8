"""Mail through an outbox in the database.

`queue()` renders a mail (plain text and HTML, in the recipient's language) and writes it to
OutboxMail inside the caller's transaction: the mail exists exactly when the change that
causes it does. A thread in every app process delivers the outbox within seconds (woken at
the end of the request that queued a mail, and every few seconds otherwise); `flask send-mail
--loop` does the same as a separate worker for larger installs. A mail is claimed before it is
sent, so several processes never send it twice; a failed delivery is retried with a growing
delay, so a mail server that is down delays mail and loses none.

Forgotten password and username: the form only writes a request (MailRequest), the sender
answers it (looks the login up, queues the mail), so the answer costs the same for everyone.

The mails more than one view sends, and `mail_link()` for the portal's links in a mail, live
here too: a view module never imports another one.

Without MAIL_SERVER (the demo; in production only with MAIL_BACKEND=files), delivery writes
each mail as an .eml file under instance/mail; the demo also logs its links.
"""
import logging
import os
import re
import smtplib
import threading
from datetime import datetime, timedelta
from email.utils import parseaddr

from flask import current_app, g, has_request_context, render_template, request, url_for
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from flask_mail import Message

from database import is_sqlite, write_transaction
from models import MailRequest, OutboxMail, db_wrapper, utcnow

log = logging.getLogger(__name__)

POLL_SECONDS = 5
MAX_RETRY_DELAY = timedelta(hours=1)
BATCH = 50


def init_app(app):
    app.extensions["mailer"] = None  # the delivery thread, started by the first request
    app.before_request(_ensure_thread)
    app.teardown_request(_wake_after_request)


# --- queueing ------------------------------------------------------------------------------

def queue(recipient, subject, template, language="it", **context):
    """Write a mail to the outbox; `template` names mail/<template>.txt and .html."""
    context.setdefault("portal_name", current_app.config["PORTAL_NAME"])
    context.setdefault("base_url", current_app.config["PORTAL_BASE_URL"])
    with force_locale(language):
        subject = str(subject)
        text = render_template(f"mail/{template}.txt", subject=subject, **context)
        html = render_template(f"mail/{template}.html", subject=subject, **context)
    mail = OutboxMail.create(recipient=recipient, subject=subject, body_text=text, body_html=html)
    g.mail_queued = True
    return mail


def mail_link(endpoint, **values):
    """Links in mails come from PORTAL_BASE_URL, never from the request's Host header. Outside a
    request (an import run by a worker or a command) the path comes from the URL map alone: a
    request context pushed there would close the database connection, and its transaction, when
    popped."""
    if has_request_context():
        path = url_for(endpoint, **values)
    else:
        path = current_app.url_map.bind("portal").build(endpoint, values)
    return current_app.config["PORTAL_BASE_URL"] + path


def notify_password_changed(user):
    """Tell the user their password changed, with a way back if it was not them: after a reset
    link and after "Cambio Password"."""
    queue(
        user.email, _l("La tua password è cambiata"), "password_changed", language=user.language,
        user=user, when=utcnow(), reset_url=mail_link("auth.forgot_password"),
    )


# --- requests answered after the response ------------------------------------------------------

# MailRequest.kind -> the function that answers it, given what the visitor typed. The views
# register them (@mailer.answers): a view module's logic, run by the sender.
ANSWERS = {}


def answers(kind):
    def register(function):
        ANSWERS[kind] = function
        return function
    return register


def request_mail(kind, subject):
    """Write a request for the sender to answer: the same row, and the same time spent, whether
    or not `subject` names someone (call inside the caller's transaction)."""
    MailRequest.create(kind=kind, subject=subject[:254], ip=request.remote_addr)
    g.mail_queued = True


def answer_requests():
    """Answer the waiting requests, each exactly once however many senders run: the one whose
    DELETE removes the row answers it, in the same transaction (a crash answers it later)."""
    app = current_app._get_current_object()
    answered = 0
    while rows := list(MailRequest.select().order_by(MailRequest.id).limit(BATCH)):
        for row in rows:
            # A request context as the visitor's was: links are built from PORTAL_BASE_URL and
            # the audit log records the visitor's IP.
            with app.test_request_context(base_url=app.config["PORTAL_BASE_URL"], environ_base={"REMOTE_ADDR": row.ip}):
                try:
                    with write_transaction():
                        if MailRequest.delete().where(MailRequest.id == row.id).execute() != 1:
                            continue  # another sender has answered it
                        ANSWERS[row.kind](row.subject)
                        answered += 1
                except Exception:  # noqa: BLE001 - one bad request must not hold up the others
                    log.exception("mail request %s (%s) could not be answered: dropped", row.id, row.kind)
                    MailRequest.delete().where(MailRequest.id == row.id).execute()
    return answered


# --- delivery ------------------------------------------------------------------------------

class SmtpTransport:
    """One SMTP connection for a round of deliveries, opened on first use, with a timeout
    (Flask-Mail's own connection has none: a silent server would hang the sender)."""

    def __init__(self, config):
        self.config = config
        self.smtp = None

    def send(self, sender, mail, data):
        if self.smtp is None:
            c = self.config
            cls = smtplib.SMTP_SSL if c["MAIL_USE_SSL"] else smtplib.SMTP
            self.smtp = cls(c["MAIL_SERVER"], c["MAIL_PORT"], timeout=c["MAIL_TIMEOUT"])
            if c["MAIL_USE_TLS"]:
                self.smtp.starttls()
            if c["MAIL_USERNAME"]:
                self.smtp.login(c["MAIL_USERNAME"], c["MAIL_PASSWORD"] or "")
        self.smtp.sendmail(sender, [mail.recipient], data)

    def close(self, broken=False):
        if self.smtp is not None:
            try:
                self.smtp.close() if broken else self.smtp.quit()
            except (smtplib.SMTPException, OSError):
                pass
            self.smtp = None


class FileTransport:
    """The demo's mail server: a folder of .eml files. Only the demo (development) logs the
    mails' links, so its console can follow them: anywhere else a link may carry a token (a
    reset, a confirmation) and logs are read by more people than the mail's recipient."""

    def __init__(self, config):
        self.folder = config["MAIL_STORE_DIR"]
        self.log_links = config["PORTAL_ENV"] == "development"
        os.makedirs(self.folder, exist_ok=True)

    def send(self, sender, mail, data):
        path = os.path.join(self.folder, f"{mail.id:06d}.eml")
        with open(path, "wb") as f:
            f.write(data)
        links = " ".join(re.findall(r"https?://\S+", mail.body_text)) if self.log_links else ""
        log.info("mail to %s written to %s: %s %s", mail.recipient, path, mail.subject, links)

    def close(self, broken=False):
        pass


def compose(mail, sender):
    message = Message(
        subject=mail.subject,
        recipients=[mail.recipient],
        body=mail.body_text,
        html=mail.body_html,
        sender=sender,
    )
    message.msgId = message_id(mail, sender)
    return message.as_bytes()


def message_id(mail, sender):
    """The same Message-ID each time a mail is sent: if a sender dies after the server took a mail
    and before it was marked sent, the mail goes again when its claim ends, and the recipient's
    server and mail program can tell the copy (RFC 5322 §3.6.4). The outbox's id and creation
    time keep it unique across instances and a restored backup."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    return f"<sportello.{mail.id}.{mail.created_at:%Y%m%d%H%M%S}@{domain}>"


def claim_duration():
    """How long a sender holds the mail it is sending (MAIL_CLAIM_SECONDS); a claim older than
    this was a killed sender's, and another sender takes the mail. It must outlast sending one
    mail, whose SMTP steps (connect, TLS, login, MAIL, RCPT, DATA) each wait up to MAIL_TIMEOUT."""
    return timedelta(seconds=current_app.config["MAIL_CLAIM_SECONDS"])


def _claim(mail_id):
    """Take one mail for this sender, right before sending it: returns when the claim ends, or
    None if another sender has it, has sent it, or has postponed it. One UPDATE that re-checks
    the claim as it writes, so two senders never both win. On PostgreSQL it locks the row with
    FOR UPDATE SKIP LOCKED: a sender finds a row another one is claiming taken, rather than wait
    for that sender's lock (SQLite has one writer at a time and no row locks).
    `now` is read here, not once per round: a round lasts longer than a claim does."""
    now = utcnow()
    claimed_until = now + claim_duration()
    claimable = (
        (OutboxMail.id == mail_id)
        & OutboxMail.sent_at.is_null()
        & (OutboxMail.next_attempt_at <= now)
        & (OutboxMail.claimed_until.is_null() | (OutboxMail.claimed_until < now))
    )
    if not is_sqlite(db_wrapper.database):
        claimable = OutboxMail.id.in_(
            OutboxMail.select(OutboxMail.id).where(claimable).for_update(skip_locked=True))
    taken = OutboxMail.update(claimed_until=claimed_until).where(claimable).execute()
    return claimed_until if taken == 1 else None


def deliver_pending():
    """Send what is due; returns how many were sent. Safe to run in several processes: each
    mail is claimed on its own as its turn comes, so a sender killed mid-round holds up only the
    mail it was sending (sent again when its claim ends if the server had taken it: at most once)."""
    answer_requests()  # their mails go out in this same round
    config = current_app.config
    sender = config["MAIL_DEFAULT_SENDER"]
    envelope_sender = parseaddr(sender)[1]
    transport = SmtpTransport(config) if config.get("MAIL_SERVER") else FileTransport(config)
    sent = 0
    now = utcnow()
    due = list(  # candidates only: _claim decides
        OutboxMail.select(OutboxMail.id)
        .where(
            OutboxMail.sent_at.is_null(),
            OutboxMail.next_attempt_at <= now,
            OutboxMail.claimed_until.is_null() | (OutboxMail.claimed_until < now),
        )
        .order_by(OutboxMail.id)
        .limit(BATCH)
        .tuples()
    )
    try:
        for (mail_id,) in due:
            claimed_until = _claim(mail_id)
            if claimed_until is None:
                continue  # another sender has it
            mail = OutboxMail.get_by_id(mail_id)
            try:
                transport.send(envelope_sender, mail, compose(mail, sender))
            except (smtplib.SMTPException, OSError) as error:
                transport.close(broken=True)
                _postpone(mail, error)
                if isinstance(error, (smtplib.SMTPServerDisconnected, ConnectionError, TimeoutError)):
                    # The server is away: leave the rest for the next round.
                    break
                continue
            if utcnow() > claimed_until:
                log.warning("mail %s took longer to send than its claim lasts (%s): another sender may "
                            "have sent it too", mail.id, claim_duration())
            OutboxMail.update(sent_at=utcnow(), claimed_until=None, last_error=None).where(
                OutboxMail.id == mail.id
            ).execute()
            sent += 1
    finally:
        transport.close()
    return sent


def _postpone(mail, error):
    attempts = mail.attempts + 1
    delay = min(
        timedelta(seconds=current_app.config["MAIL_RETRY_SECONDS"] * 2 ** (attempts - 1)),
        MAX_RETRY_DELAY,
    )
    log.warning("mail %s to %s not sent (attempt %d), retry in %s: %s",
                mail.id, mail.recipient, attempts, delay, error)
    OutboxMail.update(
        attempts=attempts,
        next_attempt_at=utcnow() + delay,
        claimed_until=None,
        last_error=str(error)[:500],
    ).where(OutboxMail.id == mail.id).execute()


# --- the delivery thread --------------------------------------------------------------------

class DeliveryThread(threading.Thread):
    def __init__(self, app):
        super().__init__(name="sportello-mail", daemon=True)
        self.app = app
        self.pid = os.getpid()
        self.wake = threading.Event()
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            self.wake.wait(POLL_SECONDS)
            self.wake.clear()
            if self.stopping.is_set():
                break
            deliver_round(self.app)

    def stop(self):
        self.stopping.set()
        self.wake.set()
        self.join(timeout=5)


def deliver_round(app):
    with app.app_context():
        try:
            with db_wrapper.database.connection_context():
                while deliver_pending() == BATCH:
                    pass
                if utcnow() - app.extensions.get("mails_forgotten_at", datetime.min) > FORGET_EVERY:
                    app.extensions["mails_forgotten_at"] = utcnow()
                    forget_sent_mails()
        except Exception:  # noqa: BLE001 - a broken round must not kill the thread
            log.exception("mail delivery round failed")


FORGET_EVERY = timedelta(hours=1)  # how often a sender looks for sent mails past MAIL_KEEP_DAYS


def forget_sent_mails():
    """Delete the mails sent more than MAIL_KEEP_DAYS ago (0: keep them): a mail's text holds
    the customer's personal data, and the audit log keeps what happened. Mails not sent yet
    stay, however old. Returns how many went."""
    days = current_app.config["MAIL_KEEP_DAYS"]
    if not days:
        return 0
    with write_transaction():
        return OutboxMail.delete().where(OutboxMail.sent_at < utcnow() - timedelta(days=days)).execute()


def _ensure_thread():
    """Start the delivery thread in this process (again after a fork: gunicorn preload)."""
    app = current_app._get_current_object()
    if not app.config["MAIL_DELIVERY_THREAD"]:
        return
    thread = app.extensions["mailer"]
    if thread is None or thread.pid != os.getpid() or not thread.is_alive():
        thread = DeliveryThread(app)
        app.extensions["mailer"] = thread
        thread.start()


def _wake_after_request(exc):
    thread = current_app.extensions.get("mailer")
    if g.pop("mail_queued", False) and thread is not None:
        thread.wake.set()


def stop_thread(app):
    thread = app.extensions.get("mailer")
    if thread is not None:
        thread.stop()
        app.extensions["mailer"] = None


def run_worker():
    """`flask send-mail --loop`: deliver forever, in this process."""
    app = current_app._get_current_object()
    log.info("mail worker started")
    while True:
        deliver_round(app)
        threading.Event().wait(POLL_SECONDS)
