"""`flask export readings|tickets`: the CSV the billing system imports (DESIGN §4)."""
import csv
import io
import json
from datetime import date, datetime
from decimal import Decimal
from unittest import mock

import pytest

import exporter
import models
from models import AuditLog, Customer, Reading, SupplyPoint, Ticket, TicketMessage, User
from tests.factories import make_customer, make_supply_point, make_user

READING_HEADER = (
    "supply_point_code,pod_pdr,customer_code,date,register,value,status,submitted_at,submitted_by"
)
TICKET_HEADER = (
    "ticket_id,customer_code,supply_point_code,category,status,subject,opened_at,updated_at,"
    "messages,last_message_from,last_message_at,message_from,message_at,message"
)


def export(app, *args):
    result = app.test_cli_runner().invoke(args=["export", *args])
    assert result.exit_code == 0, result.output
    return result


def rows_of(text):
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def readings(app):
    """Self-readings around --since 2026-01-01 (Rome midnight = 2025-12-31 23:00 UTC)."""
    customer = make_customer(code="004321")
    gas = make_supply_point(customer, code="PR000777", commodity="gas", pod_pdr="00881234567890")
    power = make_supply_point(customer, code="PR000778", pod_pdr="IT001E12345678")
    owner = make_user(customer, username="mrossi")
    delegate = make_user(customer, role="delegate", email="delega@example.it")

    def reading(point, day, created_at, **values):
        values.setdefault("register", "total")
        values.setdefault("value", Decimal(100))
        values.setdefault("source", "customer")
        return Reading.create(supply_point=point, date=day, created_at=created_at, **values)

    # 23:30 on 31 December in Rome: before --since although it is already "2025-12-31" in UTC too.
    reading(gas, date(2025, 12, 30), datetime(2025, 12, 31, 22, 30), status=Reading.VALIDATED, submitted_by=owner)
    # 00:30 on 1 January in Rome (still 31 December in UTC): included, first.
    reading(gas, date(2025, 12, 31), datetime(2025, 12, 31, 23, 30), status=Reading.REJECTED,
            value=Decimal("12.5"))
    reading(power, date(2026, 1, 14), datetime(2026, 1, 15, 8, 15), register="F1",
            value=Decimal("1234.5"), status=Reading.PENDING, submitted_by=owner)
    reading(gas, date(2026, 7, 9), datetime(2026, 7, 10, 7, 0), value=Decimal("98765.432"),
            status=Reading.VALIDATED, submitted_by=delegate)
    # Not self-readings: never exported.
    reading(gas, date(2026, 2, 1), datetime(2026, 2, 2, 6, 0), source="distributor")
    reading(power, date(2026, 3, 1), datetime(2026, 3, 2, 6, 0), source="estimated")
    return customer


def test_readings_export_only_self_readings_since_the_rome_day(app, readings):
    result = export(app, "readings", "--since", "2026-01-01")

    assert result.stdout.splitlines()[0] == READING_HEADER
    rows = rows_of(result.stdout)
    assert [(r["date"], r["register"]) for r in rows] == [
        ("2025-12-31", "total"), ("2026-01-14", "F1"), ("2026-07-09", "total"),
    ]
    assert rows[1] == {
        "supply_point_code": "PR000778",
        "pod_pdr": "IT001E12345678",
        "customer_code": "004321",  # text: the leading zeros stay
        "date": "2026-01-14",
        "register": "F1",
        "value": "1234.500",
        "status": "pending",
        "submitted_at": "2026-01-15T09:15:00+01:00",  # winter: CET
        "submitted_by": "mrossi",
    }
    july = rows[2]
    assert july["pod_pdr"] == "00881234567890"
    assert july["value"] == "98765.432"
    assert july["submitted_at"] == "2026-07-10T09:00:00+02:00"  # summer: CEST
    assert july["submitted_by"] == "delega@example.it"  # no username: the email
    assert [r["status"] for r in rows] == ["rejected", "pending", "validated"]
    assert rows[0]["submitted_at"] == "2026-01-01T00:30:00+01:00"
    assert rows[0]["value"] == "12.500"
    assert rows[0]["submitted_by"] == ""
    assert "3 readings exported to standard output" in result.stderr


def test_standard_output_is_only_the_csv_in_utf8_without_bom(app, readings):
    result = export(app, "readings", "--since", "2026-01-01")
    assert result.stdout_bytes.startswith(READING_HEADER.encode() + b"\n")
    assert b"\r" not in result.stdout_bytes
    assert "exported" not in result.stdout


def test_readings_export_to_a_file(app, readings, tmp_path):
    path = tmp_path / "letture.csv"
    result = export(app, "readings", "--since", "2026-07-01", "--output", str(path))

    assert result.stdout == ""
    assert f"1 readings exported to {path}" in result.stderr
    assert list(tmp_path.iterdir()) == [path]  # no .tmp file left behind
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["supply_point_code"], r["value"], r["status"]) for r in rows] == [("PR000777", "98765.432", "validated")]


def test_a_failed_export_leaves_the_previous_file_alone(app, readings, tmp_path):
    path = tmp_path / "letture.csv"
    path.write_text("previous export\n")

    def broken(since, out):
        out.write("supply_point_code,half a line")
        raise RuntimeError("database went away")

    with mock.patch.dict(exporter.EXPORTS, readings=broken):
        result = app.test_cli_runner().invoke(args=["export", "readings", "--since", "2026-01-01", "--output", str(path)])
    assert result.exit_code != 0
    assert path.read_text() == "previous export\n"
    assert list(tmp_path.iterdir()) == [path]


def test_an_export_is_audited(app, readings):
    export(app, "readings", "--since", "2026-01-01")
    entry = AuditLog.get(AuditLog.action == "export_readings")
    assert json.loads(entry.detail) == {"rows": 3, "since": "2026-01-01", "output": "stdout"}
    assert entry.ip is None and entry.user is None


@pytest.mark.parametrize("args", [
    ["--since", "01/01/2026"],
    ["--since", "2026-02-30"],
    [],
])
def test_since_is_a_required_date(app, args):
    result = app.test_cli_runner().invoke(args=["export", "readings", *args])
    assert result.exit_code == 2
    assert "--since" in result.output
    assert not AuditLog.select().exists()


def make_ticket(customer, updated_at, supply_point=None, **values):
    values.setdefault("subject", "Lettura non accettata")
    return Ticket.create(customer=customer, supply_point=supply_point, created_at=datetime(2025, 12, 1, 9, 0),
                         updated_at=updated_at, **values)


def message(ticket, created_at, from_staff=False, body="...", internal=False):
    return TicketMessage.create(ticket=ticket, from_staff=from_staff, body=body, created_at=created_at,
                                internal=internal)


def test_tickets_export_counts_messages_and_says_who_wrote_last(app):
    customer = make_customer(code="004321")
    point = make_supply_point(customer, code="PR000777")
    answered = make_ticket(customer, datetime(2026, 7, 2, 10, 0), point, category="readings",
                           status=Ticket.WAITING_CUSTOMER, subject="Perché è stimata?")
    message(answered, datetime(2026, 7, 1, 8, 0), body="La lettura\nè stimata?")
    message(answered, datetime(2026, 7, 2, 10, 0), from_staff=True, body="Sì, il distributore non l'ha letta.")
    message(answered, datetime(2026, 7, 2, 11, 0), from_staff=True, internal=True, body="NOTA INTERNA")
    reopened = make_ticket(customer, datetime(2026, 1, 20, 12, 0))
    message(reopened, datetime(2026, 1, 10, 8, 0))
    message(reopened, datetime(2026, 1, 12, 8, 0), from_staff=True)
    message(reopened, datetime(2026, 1, 20, 12, 0))
    silent = make_ticket(customer, datetime(2026, 1, 5, 12, 0))
    old = make_ticket(customer, datetime(2025, 12, 31, 22, 59))  # 23:59 in Rome: before --since
    message(old, datetime(2025, 12, 31, 22, 59))

    result = export(app, "tickets", "--since", "2026-01-01")

    assert result.stdout.splitlines()[0] == TICKET_HEADER
    assert "NOTA INTERNA" not in result.stdout  # never an internal note
    rows = rows_of(result.stdout)
    # By updated_at, one row per message (the silent ticket has one row all the same).
    assert [int(r["ticket_id"]) for r in rows] == [silent.id] + [reopened.id] * 3 + [answered.id] * 2
    assert [r["message_from"] for r in rows] == ["", "customer", "staff", "customer", "customer", "staff"]
    assert rows[4]["message"] == "La lettura\nè stimata?" and rows[4]["message_at"] == "2026-07-01T10:00:00+02:00"
    assert rows[5] == {
        "ticket_id": str(answered.id),
        "customer_code": "004321",
        "supply_point_code": "PR000777",
        "category": "readings",
        "status": "waiting_customer",
        "subject": "Perché è stimata?",
        "opened_at": "2025-12-01T10:00:00+01:00",
        "updated_at": "2026-07-02T12:00:00+02:00",
        "messages": "2",
        "last_message_from": "staff",
        "last_message_at": "2026-07-02T12:00:00+02:00",
        "message_from": "staff",
        "message_at": "2026-07-02T12:00:00+02:00",
        "message": "Sì, il distributore non l'ha letta.",
    }
    assert (rows[1]["messages"], rows[1]["last_message_from"], rows[1]["last_message_at"]) == (
        "3", "customer", "2026-01-20T13:00:00+01:00",
    )
    assert rows[1]["supply_point_code"] == ""
    assert (rows[0]["messages"], rows[0]["last_message_from"], rows[0]["last_message_at"], rows[0]["message"]) == (
        "0", "", "", "")
    assert "3 tickets exported to standard output" in result.stderr


def test_messages_written_in_the_same_second_are_ordered_by_id(app):
    customer = make_customer()
    ticket = make_ticket(customer, datetime(2026, 3, 1, 9, 0))
    message(ticket, datetime(2026, 3, 1, 9, 0))
    message(ticket, datetime(2026, 3, 1, 9, 0), from_staff=True)
    rows = rows_of(export(app, "tickets", "--since", "2026-01-01").stdout)
    assert [r["last_message_from"] for r in rows] == ["staff", "staff"]
    assert [r["message_from"] for r in rows] == ["customer", "staff"]


def count_ticket_export_queries(tickets):
    customer = make_customer()
    point = make_supply_point(customer)
    for n in range(tickets):
        ticket = make_ticket(customer, datetime(2026, 2, 1, 9, n), point if n % 2 else None)
        message(ticket, datetime(2026, 2, 1, 9, n))
        message(ticket, datetime(2026, 2, 1, 10, n), from_staff=True)
    database = models.db_wrapper.database.obj
    out = io.StringIO()
    with mock.patch.object(database, "execute_sql", wraps=database.execute_sql) as execute_sql:
        assert exporter.export_tickets(date(2026, 1, 1), out) == tickets
    assert len(rows_of(out.getvalue())) == 2 * tickets  # a row per message
    return execute_sql.call_count


def test_the_tickets_export_runs_the_same_queries_for_3_or_30_tickets(make_app):
    from tests.conftest import empty_tables

    app = make_app()
    few = count_ticket_export_queries(3)
    with app.app_context():
        empty_tables()
    many = count_ticket_export_queries(30)
    assert few == many


# What a spreadsheet would run as a formula (OWASP's CSV injection cheat sheet).
FORMULAS = ['=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]


def raw_rows(result):
    # From the bytes: a quoted carriage return inside a cell must reach the csv reader as it is.
    return rows_of(result.stdout_bytes.decode("utf-8"))


def fitted(field, text):
    """`text` as far as the column holds it."""
    return text[:field.max_length] if getattr(field, "max_length", None) else text


@pytest.mark.parametrize("formula", FORMULAS, ids=repr)
def test_the_readings_export_writes_formulas_as_text_and_numbers_as_numbers(app, formula):
    """Every text cell someone else typed (the billing system's codes, the register, the
    submitter's e-mail) starts with an apostrophe; a negative value stays a number."""
    # Each column holds the payload as far as its length allows (PostgreSQL enforces it): the
    # customer code has 6 characters, so "=HYPERLINK(…" arrives as "=HYPER", still a formula.
    values = {"customer_code": fitted(Customer.code, formula), "supply_point_code": fitted(SupplyPoint.code, formula),
              "pod_pdr": fitted(SupplyPoint.pod_pdr, formula), "register": fitted(Reading.register, formula),
              "submitted_by": fitted(User.email, formula)}
    customer = make_customer(code=values["customer_code"])
    point = make_supply_point(customer, code=values["supply_point_code"], pod_pdr=values["pod_pdr"])
    submitter = make_user(customer, email=values["submitted_by"])
    Reading.create(supply_point=point, date=date(2026, 3, 1), created_at=datetime(2026, 3, 2, 8, 0),
                   register=values["register"], value=Decimal("-12.5"), source="customer", status=Reading.PENDING,
                   submitted_by=submitter)

    result = export(app, "readings", "--since", "2026-01-01")

    [row] = raw_rows(result)
    for column, value in values.items():
        assert row[column] == "'" + value, column
    assert row["value"] == "-12.500"  # data, not a formula: no apostrophe
    assert row["date"] == "2026-03-01" and row["status"] == "pending"
    assert ",-12.500," in result.stdout  # unquoted too, so a spreadsheet reads a number


@pytest.mark.parametrize("formula", FORMULAS, ids=repr)
def test_the_tickets_export_writes_formulas_as_text_and_numbers_as_numbers(app, formula):
    values = {"customer_code": fitted(Customer.code, formula), "supply_point_code": fitted(SupplyPoint.code, formula),
              "subject": fitted(Ticket.subject, formula)}
    customer = make_customer(code=values["customer_code"])
    point = make_supply_point(customer, code=values["supply_point_code"])
    ticket = make_ticket(customer, datetime(2026, 3, 1, 9, 0), point, subject=values["subject"])
    message(ticket, datetime(2026, 3, 1, 9, 0))

    result = export(app, "tickets", "--since", "2026-01-01")

    [row] = raw_rows(result)
    for column, value in values.items():
        assert row[column] == "'" + value, column
    assert (row["ticket_id"], row["messages"]) == (str(ticket.id), "1")
    assert result.stdout.splitlines()[1].startswith(f"{ticket.id},")


def test_text_that_only_contains_a_formula_character_is_unchanged(app):
    customer = make_customer(code="004321")
    make_ticket(customer, datetime(2026, 3, 1, 9, 0), subject="Bolletta 2026-03: +20% = errore?")
    [row] = raw_rows(export(app, "tickets", "--since", "2026-01-01"))
    assert row["subject"] == "Bolletta 2026-03: +20% = errore?"


def test_a_carriage_return_inside_a_subject_does_not_start_a_row(app):
    """Python's csv would leave it bare (the line terminator is "\\n"); a spreadsheet would then
    start a new row at "=1", a formula in its first cell."""
    customer = make_customer(code="004321")
    ticket = make_ticket(customer, datetime(2026, 3, 1, 9, 0), subject="Bolletta\r=1")
    result = export(app, "tickets", "--since", "2026-01-01")
    [row] = raw_rows(result)
    assert row["subject"] == "Bolletta\r=1" and row["ticket_id"] == str(ticket.id)
    assert '"Bolletta\r=1"' in result.stdout
