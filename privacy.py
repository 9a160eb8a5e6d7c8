"""The user's rights over the data the portal holds (GDPR): the export of everything about
them and their customer (articles 15 and 20), and closing the account (article 17, within
what the law lets the utility keep).

`personal_data(user)` gathers the data as tables of plain rows; `export_zip(user)` writes
them as one JSON file (everything) and one CSV file per table. An owner's export holds the
user and the customer; a delegate's holds the delegate's own login only (the customer's data
are the owner's, not the delegate's). Secrets never leave: no password hash, no token or key
digest, no second-factor secret, no operator's internal ticket note, no invoice's PDF (they
are downloaded from Elenco fatture).

`close_account(user)` erases the login's personal data but keeps its row, so the audit log's
entries (kept as the law requires) still point at it; the customer's billing data (customer,
supply points, invoices, readings, tickets) stay: they are the utility's records.
"""
import csv
import io
import json
import zipfile
from datetime import date, datetime
from decimal import Decimal

import peewee as pw
from flask_babel import lazy_gettext as _l

import accounts
import audit
import delegation
import mailer
from mailer import mail_link
from models import (
    ApiToken,
    AuditLog,
    Consent,
    ContactChange,
    DailyConsumption,
    Document,
    EmailToken,
    Invoice,
    Reading,
    ReadingReminder,
    SupplyPoint,
    Ticket,
    TicketAttachment,
    TicketMessage,
    User,
    UserSession,
    utcnow,
)

# Columns that never leave the portal, whatever the table (secrets and internal keys).
SECRET_COLUMNS = {"password_hash", "token_hash", "totp_secret", "totp_pending_secret", "totp_last_step",
                  "idempotency_key", "submission", "pdf_path", "file", "photo_path", "sha256"}
USER_COLUMNS = ("id", "role", "username", "email", "first_name", "last_name", "tax_code", "mobile", "language",
                "notify_invoices", "created_at", "confirmed_at", "last_login_at", "previous_login_at",
                "password_changed_at", "delegate_rights", "revoked_at")


def plain(value):
    """A value as JSON and CSV write it: instants in ISO 8601 (UTC), money as text."""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds") + "Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def row_of(instance, only=None, leave_out=()):
    """A model instance as {column: value}, without SECRET_COLUMNS (foreign keys as their ids)."""
    fields = instance._meta.sorted_fields
    names = only or [f.name for f in fields]
    row = {}
    for field in fields:
        if field.name not in names or field.name in SECRET_COLUMNS or field.name in leave_out:
            continue
        column = field.column_name if hasattr(field, "rel_model") else field.name  # customer -> customer_id
        value = getattr(instance, column if hasattr(field, "rel_model") else field.name)
        if isinstance(field, pw.DecimalField) and value is not None:
            # SQLite hands back 1234.5 where PostgreSQL says 1234.500: the column's places, always.
            value = Decimal(value).quantize(Decimal(1).scaleb(-field.decimal_places))
        row[column] = plain(value)
    return row


def personal_data(user):
    """{table name: [rows]} of everything the portal holds about `user` (and, for an owner,
    about the customer). Table names are the files' names in the ZIP."""
    data = {
        "utente": [dict(row_of(user, only=USER_COLUMNS),
                        customer_code=user.customer.code if user.customer_id else None,
                        invited_by=user.invited_by.email if user.invited_by_id else None)],
        "consensi": [row_of(c, leave_out=("user",)) for c in Consent.select().where(Consent.user == user).order_by(Consent.id)],
        "sessioni": [row_of(s, leave_out=("user",)) for s in UserSession.select().where(UserSession.user == user).order_by(UserSession.id)],
        "chiavi_api": [row_of(t, leave_out=("user",)) for t in ApiToken.select().where(ApiToken.user == user).order_by(ApiToken.id)],
        "registro_attivita": audit_rows(user),
        "promemoria_autolettura": [row_of(r, leave_out=("user",)) for r in
                                   ReadingReminder.select().where(ReadingReminder.user == user).order_by(ReadingReminder.id)],
    }
    if user.role != User.OWNER or not user.customer_id:
        return data
    customer = user.customer
    points = list(SupplyPoint.for_customer(customer))
    codes = {point.id: point.code for point in points}
    data["cliente"] = [row_of(customer)]
    data["punti_di_fornitura"] = [dict(row_of(p, leave_out=("technical_data", "contract_data")),
                                       dati_tecnici=json.dumps(p.technical, ensure_ascii=False),
                                       dati_contrattuali=json.dumps(p.contractual, ensure_ascii=False)) for p in points]
    data["fatture"] = [dict(row_of(i), pdf=bool(i.pdf_path)) for i in Invoice.for_customer(customer).order_by(Invoice.issue_date, Invoice.id)]
    data["letture"] = [dict(row_of(r), supply_point_code=codes.get(r.supply_point_id))
                       for r in Reading.for_customer(customer).order_by(Reading.date, Reading.id)]
    tickets = list(Ticket.for_customer(customer).order_by(Ticket.id))
    data["ticket"] = [row_of(t, leave_out=("assignee",)) for t in tickets]
    messages = TicketMessage.select().join(Ticket).where(Ticket.customer == customer).order_by(TicketMessage.id)
    internal = getattr(TicketMessage, "internal", None)  # operators' notes to each other, never shown
    if internal is not None:
        messages = messages.where(internal == False)  # noqa: E712 - a SQL comparison
    messages = list(messages)
    data["messaggi_ticket"] = [row_of(m, leave_out=("author", "internal")) for m in messages]
    # The attachments' names and sizes (the files are on the ticket's page), of visible messages only.
    data["allegati_ticket"] = [row_of(a) for a in TicketAttachment.select().where(
        TicketAttachment.message.in_([m.id for m in messages] or [0])).order_by(TicketAttachment.id)]
    data["modifiche_contatti"] = [dict(row_of(c, leave_out=("changed_by",)), changed_by_you=c.changed_by_id == user.id)
                                  for c in ContactChange.select().where(ContactChange.customer == customer).order_by(ContactChange.id)]
    data["consumi_giornalieri"] = [
        dict(row_of(d), supply_point_code=codes.get(d.supply_point_id))
        for d in DailyConsumption.select().where(DailyConsumption.supply_point.in_(list(codes) or [0]))
        .order_by(DailyConsumption.supply_point, DailyConsumption.day)]
    data["documenti"] = [row_of(d, only=("id", "title", "section", "published_on", "period_start", "period_end"))
                         for d in Document.for_customer(customer)]
    data["delegati"] = [dict(row_of(d, only=("id", "email", "first_name", "last_name", "username", "delegate_rights",
                                             "created_at", "confirmed_at", "revoked_at", "last_login_at")))
                        for d in User.select().where(User.customer == customer, User.role == User.DELEGATE).order_by(User.id)]
    return data


def audit_rows(user):
    """The audit entries about the user: what they did, and (an owner) what was done on the
    customer's behalf by anyone, staff included; others' IP addresses are not theirs to get."""
    query = AuditLog.select(AuditLog, User).join(User, on=(AuditLog.user == User.id), join_type=pw.JOIN.LEFT_OUTER).order_by(AuditLog.id)
    if user.role == User.OWNER and user.customer_id:
        query = query.where((AuditLog.user == user) | (AuditLog.customer == user.customer_id))
    else:
        query = query.where(AuditLog.user == user)
    rows = []
    for entry in query:
        mine = entry.user_id == user.id
        by = str(_l("tu")) if mine else (entry.user.role if entry.user_id else "")
        rows.append({"at": plain(entry.at), "action": entry.action, "by": by,
                     "ip": entry.ip if mine else None, "detail": entry.detail})
    return rows


# The tables' names in the user's language: the ZIP's file names and its JSON's keys. Columns
# keep the database's names, the same in every language.
TABLE_NAMES = {
    "utente": _l("utente"), "consensi": _l("consensi"), "sessioni": _l("sessioni"), "chiavi_api": _l("chiavi_api"),
    "registro_attivita": _l("registro_attivita"), "promemoria_autolettura": _l("promemoria_autolettura"),
    "cliente": _l("cliente"), "punti_di_fornitura": _l("punti_di_fornitura"), "fatture": _l("fatture"),
    "letture": _l("letture"), "ticket": _l("ticket"), "messaggi_ticket": _l("messaggi_ticket"),
    "allegati_ticket": _l("allegati_ticket"), "modifiche_contatti": _l("modifiche_contatti"),
    "consumi_giornalieri": _l("consumi_giornalieri"), "documenti": _l("documenti"), "delegati": _l("delegati"),
}
ALL_IN_ONE = _l("tutto.json")
README = _l("""I tuoi dati nel portale clienti (%(portal)s), esportati il %(when)s (UTC).

%(all)s   tutti i dati in un solo file JSON, tabella per tabella
*.csv        le stesse tabelle, una per file (UTF-8, separatore virgola)

Istanti in UTC (ISO 8601), importi in euro. Le fatture in PDF si scaricano da Elenco fatture.
Non sono esportati password, codici di accesso e chiavi (solo la loro data) né le note interne
degli operatori.
""")


def export_zip(user, portal_name="Sportello"):
    """The ZIP's bytes: README.txt, everything in one JSON file, one CSV per table, named in the
    language of the page that asks for it. Small (daily totals, not the raw measures), so it is
    made in memory."""
    data = {str(TABLE_NAMES[table]): rows for table, rows in personal_data(user).items()}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("README.txt", README % {"portal": portal_name, "when": plain(utcnow()), "all": ALL_IN_ONE})
        archive.writestr(str(ALL_IN_ONE), json.dumps(data, ensure_ascii=False, indent=2))
        for table, rows in data.items():
            archive.writestr(f"{table}.csv", csv_text(rows).encode("utf-8-sig"))
    return buffer.getvalue()


def csv_text(rows):
    columns = list(dict.fromkeys(column for row in rows for column in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


# --- closing the account ---------------------------------------------------------------------------

def close_account(user):
    """Erase the login (call inside a write transaction). The goodbye mail is queued first, to
    the address about to be erased. An owner's delegates lose their access with the owner's:
    they were the owner's to give."""
    mailer.queue(user.email, _l("Il tuo accesso al portale è stato chiuso"), "account_closed",
                 language=user.language, user=user, customer=user.customer if user.customer_id else None,
                 when=utcnow(), register_url=mail_link("registration.register"))
    if user.role == User.OWNER and user.customer_id:
        for delegate in User.delegates_of(user.customer_id):
            delegation.revoke(delegate, by=user)
    audit.record("account_closed", user=user, role=user.role)
    now = utcnow()
    accounts.end_all_sessions(user)
    EmailToken.delete().where(EmailToken.user == user).execute()
    ApiToken.update(revoked_at=now).where(ApiToken.user == user, ApiToken.revoked_at.is_null()).execute()
    erased = dict(
        username=None, email="", password_hash="", first_name=None, last_name=None, tax_code=None, mobile=None,
        totp_secret=None, totp_pending_secret=None, totp_last_step=None, notify_invoices=False,
        last_login_at=None, previous_login_at=None, locked_until=None,
        disabled=True, closed_at=now,
    )
    # Every other mail preference off too (Autolettura's reminder, and any a later page adds).
    erased.update({field.name: False for field in User._meta.sorted_fields
                   if field.name.startswith("notify_") and isinstance(field, pw.BooleanField)})
    User.update(**erased).where(User.id == user.id).execute()
