"""Exports for the billing system: customers' self-readings, tickets and contact changes, as CSV.

The files follow the data contract (DESIGN §4) the other way round: UTF-8, comma separated,
one header row, dates YYYY-MM-DD, decimals with '.', timestamps ISO 8601 with the Europe/Rome
offset. Text cells a spreadsheet would run as a formula get an apostrophe in front (see
`spreadsheets`); numbers are written as numbers. `since` is a day in Rome: an export "since
2026-11-01" starts at that day's local midnight, whatever the season.

Each export is one query that joins what it prints (no query per row) and is read with
`.iterator()` as plain tuples, so peewee keeps no model instances and rows are written as they
come. (On SQLite that streams from the database; psycopg2's default cursor still receives the
whole result at once, as the pooled PostgreSQL database has no server-side cursors.)
"""
import io
import os
import sys
from datetime import datetime, timezone
from decimal import Decimal

import peewee as pw

import audit
import spreadsheets
from i18n import ROME, rome_midnight_utc
from models import ContactChange, Customer, Reading, SupplyPoint, Ticket, TicketMessage, User

READING_COLUMNS = (
    "supply_point_code", "pod_pdr", "customer_code", "date", "register", "value", "status",
    "submitted_at", "submitted_by",
)
TICKET_COLUMNS = (
    "ticket_id", "customer_code", "supply_point_code", "category", "status", "subject",
    "opened_at", "updated_at", "messages", "last_message_from", "last_message_at",
    "message_from", "message_at", "message",  # one row per message: the conversation itself
)


def since_utc(since):
    """Midnight in Rome of the day `since`, as the naive UTC datetime the database stores."""
    return rome_midnight_utc(since_day(since))


def local_timestamp(value):
    """A stored naive UTC datetime as ISO 8601 Rome time with its offset (+01:00 or +02:00)."""
    if value is None:
        return ""
    return value.replace(tzinfo=timezone.utc).astimezone(ROME).isoformat(timespec="seconds")


def writer_for(out):
    # "\n" whatever the platform: the billing system reads the same bytes from every server.
    return spreadsheets.writer(out, lineterminator="\n")


def export_readings(since, out):
    """Write the customers' self-readings created since the Rome day `since`; return the count."""
    query = (
        Reading.select(
            SupplyPoint.code, SupplyPoint.pod_pdr, Customer.code, Reading.date, Reading.register,
            Reading.value, Reading.status, Reading.created_at, User.username, User.email,
        )
        .join(SupplyPoint)
        .join(Customer)
        .switch(Reading)
        .join(User, pw.JOIN.LEFT_OUTER, on=(Reading.submitted_by == User.id))
        .where(Reading.source == "customer", Reading.created_at >= since_utc(since))
        .order_by(Reading.created_at, Reading.id)
        .tuples()
    )
    writer = writer_for(out)
    writer.writerow(READING_COLUMNS)
    rows = 0
    for code, pod_pdr, customer_code, day, register, value, status, created_at, username, email in query.iterator():
        writer.writerow((
            code, pod_pdr, customer_code, day.isoformat(), register, three_decimals(value), status,
            local_timestamp(created_at), username or email or "",
        ))
        rows += 1
    return rows


def three_decimals(value):
    """The value with the column's three decimals (written 12.300): PostgreSQL returns 12.300 but
    SQLite 12.3 for the same stored number, and the file must not depend on the database. A
    Decimal, not text, so that the writer leaves it alone even when negative."""
    return value.quantize(Decimal(1).scaleb(-Reading.value.decimal_places))


def export_tickets(since, out):
    """Write the tickets updated since the Rome day `since`, one row per message of each (the
    ticket's columns repeated; a ticket without messages has one row with empty message
    columns); return the number of tickets. Internal notes are never exported: the counts
    and "last message" are of what the customer sees too."""
    start = since_utc(since)
    # The messages, their count and the newest come from one windowed subquery joined to the
    # tickets, so the export is a single query however many tickets it holds. The subquery
    # reads only the visible messages of the tickets being exported.
    Message = TicketMessage.alias("m")
    Exported = Ticket.alias("exported")
    exported = Exported.select(Exported.id).where(Exported.updated_at >= start)
    newest_first = [Message.created_at.desc(), Message.id.desc()]
    messages = (
        Message.select(
            Message.ticket.alias("ticket_id"),
            Message.id.alias("message_id"),
            Message.from_staff.alias("from_staff"),
            Message.created_at.alias("created_at"),
            Message.body.alias("body"),
            pw.fn.COUNT(Message.id).over(partition_by=[Message.ticket]).alias("message_count"),
            pw.fn.FIRST_VALUE(Message.from_staff).over(partition_by=[Message.ticket], order_by=newest_first)
            .alias("last_from"),
            pw.fn.MAX(Message.created_at).over(partition_by=[Message.ticket]).alias("last_at"),
        )
        .where(Message.ticket.in_(exported), Message.internal == False)  # noqa: E712 - never a note
        .alias("messages")
    )
    query = (
        Ticket.select(
            Ticket.id, Customer.code, SupplyPoint.code, Ticket.category, Ticket.status,
            Ticket.subject, Ticket.created_at, Ticket.updated_at,
            messages.c.message_count, messages.c.last_from, messages.c.last_at,
            messages.c.from_staff, messages.c.created_at, messages.c.body,
        )
        .join(Customer)
        .switch(Ticket)
        .join(SupplyPoint, pw.JOIN.LEFT_OUTER)
        .switch(Ticket)
        .join(messages, pw.JOIN.LEFT_OUTER, on=(messages.c.ticket_id == Ticket.id))
        .where(Ticket.updated_at >= start)
        .order_by(Ticket.updated_at, Ticket.id, messages.c.created_at, messages.c.message_id)
        .tuples()
    )
    writer = writer_for(out)
    writer.writerow(TICKET_COLUMNS)
    tickets, previous = 0, None
    for (ticket_id, customer_code, point_code, category, status, subject, opened_at, updated_at,
         count, last_from, last_at, from_staff, message_at, body) in query.iterator():
        writer.writerow((
            ticket_id, customer_code, point_code or "", category, status, subject,
            local_timestamp(opened_at), local_timestamp(updated_at), count or 0,
            who_wrote(last_from), local_timestamp(TicketMessage.created_at.python_value(last_at)),
            who_wrote(from_staff), local_timestamp(TicketMessage.created_at.python_value(message_at)), body or "",
        ))
        if ticket_id != previous:
            tickets, previous = tickets + 1, ticket_id
    return tickets


def who_wrote(from_staff):
    """"staff", "customer", or "" for no message. The subquery's columns come back raw (SQLite:
    0/1), so the field converts them."""
    from_staff = TicketMessage.from_staff.python_value(from_staff)
    return "" if from_staff is None else ("staff" if from_staff else "customer")


CONTACT_COLUMNS = ("customer_code", "field", "old_value", "new_value", "changed_at", "changed_by")


def export_contacts(since, out):
    """Write the contact fields customers changed since the Rome day `since`, one row per field
    changed (models.ContactChange); return the count.
    (Rewritten by the tickets helper after its edit of export_tickets overwrote this function.)"""
    query = (
        ContactChange.select(
            Customer.code, ContactChange.field, ContactChange.old_value, ContactChange.new_value,
            ContactChange.changed_at, User.username, User.email,
        )
        .join(Customer)
        .switch(ContactChange)
        .join(User, pw.JOIN.LEFT_OUTER, on=(ContactChange.changed_by == User.id))
        .where(ContactChange.changed_at >= since_utc(since))
        .order_by(ContactChange.changed_at, ContactChange.id)
        .tuples()
    )
    writer = writer_for(out)
    writer.writerow(CONTACT_COLUMNS)
    rows = 0
    for customer_code, field, old_value, new_value, changed_at, username, email in query.iterator():
        writer.writerow((customer_code, field, old_value or "", new_value or "", local_timestamp(changed_at),
                         username or email or ""))
        rows += 1
    return rows


EXPORTS = {"readings": export_readings, "tickets": export_tickets, "contacts": export_contacts}


def run(kind, since, output=None):
    """Export `kind` ("readings" or "tickets") to the file `output`, or to standard output;
    record it in the audit log and return the number of rows."""
    export = EXPORTS[kind]
    if output is None:
        sys.stdout.flush()
        rows = write_stream(export, since, sys.stdout.buffer)
    else:
        rows = write_file(export, since, output)
    audit.record(f"export_{kind}", rows=rows, since=since_day(since).isoformat(), output=output or "stdout")
    return rows


def since_day(since):
    return since.date() if isinstance(since, datetime) else since


def write_stream(export, since, binary):
    # Wrap the binary stream: the contract says UTF-8 whatever the terminal's locale, and
    # newline="" keeps the csv module's line endings as they are. No BOM.
    text = io.TextIOWrapper(binary, encoding="utf-8", newline="")
    try:
        rows = export(since, text)
        text.flush()
    finally:
        text.detach()  # leave standard output open for whoever owns it
    return rows


def write_file(export, since, path):
    # The billing system may pick the file up at any moment: write a temporary file next to
    # it and rename it into place, so a half-written export never exists under its name.
    temporary = f"{path}.tmp"
    try:
        with open(temporary, "w", encoding="utf-8", newline="") as out:
            rows = export(since, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    return rows
