"""The demo data (demo.py): valid codes, consistent figures, real PDFs (the documents, and the
demo customer's recent bills, seen through the portal), and the same data on every run with
the same "today". The demo is loaded once for the module (a few seconds) into the suite's
database, as of TODAY; the determinism test loads it again into a second, separate SQLite file,
and the moving-today test a third time, as of another day, through `flask demo --today`."""
import hashlib
import io
import os
import re
import zipfile
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from peewee import fn
from stdnum.it import codicefiscale, iva

import accounts
import demo
import identifiers
import models
import schema
from app import create_app
from i18n import ROME, rome_midnight_utc
from models import (
    AuditLog,
    Consent,
    Customer,
    DailyConsumption,
    Document,
    Invoice,
    Measure,
    MonthlyConsumption,
    Reading,
    SupplyPoint,
    Ticket,
    User,
)
from tests.factories import make_customer, make_invoice, make_supply_point, make_user
from tests.helpers import login, post_form

TODAY = date(2026, 11, 20)  # the module's demo is loaded as of this day
CONFIG = {
    "PORTAL_ENV": "development",
    "TESTING": True,
    "SECRET_KEY": "test",
    "PORTAL_BASE_URL": "http://portal.test",
    "MAIL_DELIVERY_THREAD": False,
}


def demo_app_for(database_url, instance):
    # The PDFs go to the test's folder, not instance/.
    return create_app(dict(CONFIG, DATABASE_URL=database_url, FILE_STORE=os.path.join(str(instance), "files")))


def bind(app):
    """The models' database is one proxy for every app: point it at this app's database."""
    models.db_wrapper.database.initialize(app.config["DATABASE"])


def empty_tables():
    for model in reversed(models.ALL_MODELS):
        model.delete().execute()


@pytest.fixture(scope="module")
def loaded(migrated_database, tmp_path_factory):
    """The suite's database (SQLite, or PostgreSQL in CI) with the demo loaded once."""
    app = demo_app_for(migrated_database, tmp_path_factory.mktemp("demo"))
    lines = []
    with app.app_context():
        empty_tables()  # other modules' tests leave their rows behind
        demo.load(echo=lines.append, today=TODAY)
    yield app, lines
    bind(app)
    with app.app_context():
        empty_tables()


@pytest.fixture(autouse=True)
def demo_db(loaded):
    app, lines = loaded
    bind(app)  # another app (another test's) may have taken the proxy
    return lines


def fingerprint():
    """What must come out the same on every run, on either database. Sorted in Python, since
    PostgreSQL's collation orders text differently from SQLite; amounts compared as numbers,
    since the two spell the same Decimal differently (123.40 and 123.4)."""
    return dict(
        customers=sorted(Customer.select(Customer.code, Customer.tax_code).tuples()),
        points=sorted(SupplyPoint.select(SupplyPoint.code, SupplyPoint.pod_pdr, SupplyPoint.status).tuples()),
        invoices=sorted(Invoice.select(Invoice.number, Invoice.total, Invoice.status, Invoice.issue_date,
                                       Invoice.pdf_path, Invoice.pdf_sha256).tuples(), key=str),
        invoice_sum=sum(total for (total,) in Invoice.select(Invoice.total).tuples()),
        readings=sorted((str(d), r, v) for d, r, v in Reading.select(Reading.date, Reading.register, Reading.value).tuples()),
        # Three million rows: the demo customer's own, and a digest per point of all (the sum in
        # Wh, whole numbers: PostgreSQL sums kWh as REAL, SQLite as double).
        measures=sorted((start, round(kwh, 3)) for start, kwh in Measure.select(Measure.start, Measure.kwh)
                        .join(SupplyPoint).where(SupplyPoint.code == "PR002874").tuples()),
        every_point_measures=sorted((code, n, first, last, int(wh)) for code, n, first, last, wh in (
            Measure.select(SupplyPoint.code, fn.COUNT(Measure.id), fn.MIN(Measure.start), fn.MAX(Measure.start),
                           fn.SUM(fn.ROUND(Measure.kwh * 1000))).join(SupplyPoint).group_by(SupplyPoint.code).tuples())),
        totals=sorted((code, str(month), n, estimated) for code, month, n, estimated in (
            MonthlyConsumption.select(SupplyPoint.code, MonthlyConsumption.month, MonthlyConsumption.intervals,
                                      MonthlyConsumption.estimated).join(SupplyPoint).tuples())),
        documents=sorted(Document.select(Document.file, Document.sha256, Document.published_on).tuples()),
        users=sorted(User.select(User.email, User.tax_code, User.password_changed_at).tuples()),
        tickets=sorted(Ticket.select(Ticket.subject, Ticket.created_at, Ticket.updated_at).tuples()),
    )


def assert_same_data(first, second):
    """Name the first difference instead of printing two data sets of 40,000 rows."""
    for key, expected in first.items():
        got = second[key]
        if got == expected:
            continue
        if isinstance(expected, list):
            at = next((i for i, (a, b) in enumerate(zip(expected, got)) if a != b), min(len(expected), len(got)))
            pytest.fail(f"{key} differ at row {at}: {expected[at:at + 1]} != {got[at:at + 1]} "
                        f"({len(expected)} and {len(got)} rows)")
        pytest.fail(f"{key}: {expected} != {got}")


def counts():
    return {model.__name__: model.select().count() for model in models.ALL_MODELS}


def customer(code):
    return Customer.get(Customer.code == code)


def months(first, last):
    """The first day of every month from `first` to `last`, both included."""
    result, day = [], first
    while day <= last:
        result.append(day)
        day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return result


# --- the demo customer -------------------------------------------------------------------------

def test_demo_customer_and_points():
    mario = customer("005007")
    assert (mario.name, mario.kind, mario.email) == ("ROSSI MARIO", "person", "mario.rossi@example.it")
    assert mario.full_address == "VIA PROVA 5 - 48124 RAVENNA (RA)"
    assert codicefiscale.is_valid(mario.tax_code) and mario.tax_code.startswith("RSSMRA")
    assert codicefiscale.get_gender(mario.tax_code) == "M"

    points = {p.code: p for p in SupplyPoint.for_customer(mario)}
    assert set(points) == {"PR002874", "PR002875"}
    electricity, gas = points["PR002874"], points["PR002875"]
    assert (electricity.commodity, gas.commodity) == ("electricity", "gas")
    assert identifiers.POD_RE.fullmatch(electricity.pod_pdr)
    assert gas.pod_pdr == "01234567891011"
    for point in points.values():
        assert point.full_address == "VIA PROVA 5 - 48124 RAVENNA (RA)"
        assert (point.status, point.start_date, point.end_date) == ("active", date(2014, 1, 1), None)
    assert electricity.technical["Potenza impegnata"] == "3 kW"
    assert electricity.contractual["Modalità di pagamento"] == "Domiciliazione bancaria"
    assert gas.technical["Classe contatore"] == "G4"
    assert "Uso" in gas.contractual


def test_demo_owner_logs_in_with_the_demo_password(loaded):
    app, _ = loaded
    owner = customer("005007").owner()
    assert owner.username == demo.DEMO_USERNAME == "mario.rossi"
    assert owner.email == "mario.rossi@example.it"
    assert owner.tax_code == customer("005007").tax_code
    assert owner.is_active and owner.language == "it"
    assert owner.previous_login_at < owner.last_login_at < datetime(2026, 11, 20)
    assert accounts.check_password(owner, demo.DEMO_PASSWORD)
    assert not accounts.check_password(owner, "Demo-Sportello-2025")

    consents = {c.kind: c for c in owner.consents}
    assert set(consents) == set(Consent.KINDS)
    assert consents["privacy"].granted
    assert {c.text_version for c in consents.values()} == {"2026-11"}

    for identifier in ("005007", "mario.rossi"):
        response = login(app.test_client(), identifier, demo.DEMO_PASSWORD)
        assert response.status_code == 303, identifier


def test_other_users_share_the_demo_password():
    others = User.select().where(User.username.is_null())
    assert 80 <= others.count() <= 120  # about a third of 300
    assert all(u.is_active and u.role == User.OWNER and u.customer_id for u in others)
    assert len({u.email for u in others}) == others.count()
    assert accounts.check_password(others.order_by(User.id.desc()).first(), demo.DEMO_PASSWORD)


# --- codes -------------------------------------------------------------------------------------

def test_every_code_is_valid_and_unique():
    customers = list(Customer.select())
    assert 290 <= len(customers) <= 310
    kinds = Counter(c.kind for c in customers)
    assert kinds["company"] >= 25 and kinds["public_body"] >= 5 and kinds["person"] >= 200
    assert all(re.fullmatch(r"\d{6}", c.code) for c in customers)
    for c in customers:
        if c.kind == "person":
            assert codicefiscale.is_valid(c.tax_code) and len(c.tax_code) == 16, c.code
            assert c.vat_number is None
        else:
            assert iva.is_valid(c.tax_code) and c.vat_number == c.tax_code, c.code
        assert identifiers.clean_tax_id(c.tax_code) == c.tax_code  # what the registration accepts
        assert c.postcode and len(c.postcode) == 5 and len(c.province) == 2
    assert len({c.tax_code for c in customers}) == len(customers)

    points = list(SupplyPoint.select())
    assert len({p.code for p in points}) == len(points)
    assert len({p.pod_pdr for p in points}) == len(points)
    assert all(re.fullmatch(r"PR\d{6}", p.code) for p in points)
    for p in points:
        if p.commodity == "electricity":
            assert identifiers.POD_RE.fullmatch(p.pod_pdr), p.pod_pdr
        else:
            assert re.fullmatch(r"\d{14}", p.pod_pdr), p.pod_pdr
        assert (p.status == "ceased") == (p.end_date is not None)
    commodities = Counter(p.commodity for p in points)
    assert 0.5 < commodities["electricity"] / len(points) < 0.8


# --- invoices ----------------------------------------------------------------------------------

def test_demo_invoices_cover_every_month_since_2014():
    mario = customer("005007")
    expected = months(date(2014, 1, 1), date(2026, 10, 1))
    for point in SupplyPoint.for_customer(mario):
        invoices = list(Invoice.for_customer(mario).where(Invoice.supply_point == point)
                        .order_by(Invoice.period_start))
        assert [i.period_start for i in invoices] == expected
        assert [i for i in invoices if i.status == "unpaid"] == [invoices[-1]]
        for i in invoices:
            assert i.period_end == months(i.period_start, i.period_start + timedelta(days=31))[-1] - timedelta(days=1)
            assert i.period_end < i.issue_date <= TODAY
            assert i.due_date == i.issue_date + timedelta(days=20)
            assert i.year == i.issue_date.year and i.number.startswith(f"FT{i.year}-")
            assert i.total > 0
            if point.is_gas:
                assert i.gas_smc > 0 and i.energy_f1_kwh is None
            else:
                assert i.energy_f1_kwh > 0 and i.gas_smc is None
                assert Decimal("1.5") <= i.peak_power_kw <= Decimal("3.3")

    partial = Invoice.for_customer(mario).where(Invoice.status == "partial")
    assert [i.year for i in partial] == [2025]
    without_point = Invoice.for_customer(mario).where(Invoice.supply_point.is_null())
    assert without_point.count() == 2


def test_demo_gas_is_seasonal():
    gas = SupplyPoint.get(SupplyPoint.code == "PR002875")
    for invoice in Invoice.select().where(Invoice.supply_point == gas):
        month = invoice.period_start.month
        if month in (1, 2, 12):
            assert 150 <= invoice.gas_smc <= 220
        if month in (6, 7, 8):
            assert 10 <= invoice.gas_smc <= 25


def test_invoice_numbers_are_unique_and_count_up_within_the_year():
    assert 30_000 <= Invoice.select().count() <= 70_000
    numbers = [(n, y) for n, y in Invoice.select(Invoice.number, Invoice.year).tuples()]
    assert len(set(numbers)) == len(numbers)
    by_year = {}
    for number, issued in Invoice.select(Invoice.number, Invoice.issue_date).order_by(Invoice.issue_date).tuples():
        by_year.setdefault(issued.year, []).append(int(number.split("-")[1]))
    for sequence in by_year.values():
        assert sorted(sequence) == list(range(1, len(sequence) + 1))
    # No invoice after its point ended; every active point has exactly one unpaid invoice.
    unpaid = Counter(Invoice.select(Invoice.supply_point).where(Invoice.status == "unpaid").tuples())
    active = SupplyPoint.select().where(SupplyPoint.status == "active").count()
    assert len(unpaid) == active and set(unpaid.values()) == {1}
    for point in SupplyPoint.select().where(SupplyPoint.status == "ceased"):
        assert max(i.period_end for i in point.invoices) == point.end_date


# --- readings and measures ---------------------------------------------------------------------

def test_readings_add_up_to_the_invoices():
    electricity = SupplyPoint.get(SupplyPoint.code == "PR002874")
    gas = SupplyPoint.get(SupplyPoint.code == "PR002875")
    for point, registers in ((electricity, ("F1", "F2", "F3")), (gas, ("total",))):
        readings = {}
        for reading in point.readings.where(Reading.status == Reading.VALIDATED):
            readings.setdefault(reading.date, {})[reading.register] = reading.value
        dates = sorted(readings)
        assert len(dates) == 24 and dates[-1] == date(2026, 10, 31)
        assert all(set(readings[d]) == set(registers) for d in dates)
        for before, after in zip(dates, dates[1:]):
            invoice = Invoice.get(Invoice.supply_point == point, Invoice.period_end == after)
            for register in registers:
                field = "gas_smc" if register == "total" else f"energy_{register.lower()}_kwh"
                assert readings[after][register] - readings[before][register] == getattr(invoice, field)
    sources = Counter(Reading.select(Reading.source).where(Reading.status == Reading.VALIDATED).tuples())
    assert sources[("customer",)] == 2 and sources[("estimated",)] >= 1
    assert sources[("distributor",)] > sources[("estimated",)]
    for reading in Reading.select().where(Reading.source == "customer"):
        assert reading.submitted_by.username == "mario.rossi"


def test_the_self_readings_show_every_state():
    """Autolettura's history has an electricity reading waiting for an operator and a gas one
    rejected with its reason, each continuing the validated ones (the rules would accept them)."""
    sent = {(r.supply_point.code, r.status) for r in Reading.select().where(Reading.source == "customer",
                                                                            Reading.status != Reading.VALIDATED)}
    assert sent == {("PR002874", Reading.PENDING), ("PR002875", Reading.REJECTED)}
    pending = list(Reading.select().where(Reading.status == Reading.PENDING))
    assert sorted(r.register for r in pending) == ["F1", "F2", "F3"] and {r.date for r in pending} == {TODAY - timedelta(days=1)}
    for reading in pending:
        last = (Reading.select().where(Reading.supply_point == reading.supply_point, Reading.register == reading.register,
                                       Reading.status == Reading.VALIDATED).order_by(Reading.date.desc()).first())
        assert reading.value > last.value
    assert Reading.get(Reading.status == Reading.REJECTED).rejection_reason


def test_measures_are_quarters_of_the_last_13_months_with_a_gap():
    # From the 1st of the month 13 months back (October 2025: both DST changes) to yesterday.
    first, end = rome_midnight_utc(date(2025, 10, 1)), rome_midnight_utc(TODAY)
    every = [first + n * timedelta(minutes=15) for n in range(int((end - first) / timedelta(minutes=15)))]
    electricity = SupplyPoint.get(SupplyPoint.code == "PR002874")
    measures = list(Measure.select().where(Measure.supply_point == electricity).order_by(Measure.start))
    starts = [m.start for m in measures]
    missing = sorted(set(every) - set(starts))
    assert len(missing) == 30 * 4 and missing[-1] - missing[0] == timedelta(hours=30) - timedelta(minutes=15)
    assert starts == [s for s in every if s not in set(missing)]

    # Local days have 96 quarters, except the DST days and the gap's two (15 December from 08:00
    # to 16 December 14:00).
    per_day = Counter(s.replace(tzinfo=timezone.utc).astimezone(ROME).date() for s in starts)
    assert (per_day[date(2025, 10, 26)], per_day[date(2026, 3, 29)], per_day[date(2026, 10, 25)]) == (100, 92, 100)
    assert (per_day[date(2025, 12, 15)], per_day[date(2025, 12, 16)]) == (8 * 4, 10 * 4)
    assert sorted(Counter(per_day.values()).items()) == [(32, 1), (40, 1), (92, 1), (96, len(per_day) - 5), (100, 2)]

    assert all(m.interval_minutes == 15 and 0 < m.kwh < 3 for m in measures)
    assert Counter(m.quality for m in measures)["estimated"] in range(96, 96 * 3 + 1)
    night = [m.kwh for m in measures if m.start.replace(tzinfo=timezone.utc).astimezone(ROME).hour == 3]
    evening = [m.kwh for m in measures if m.start.replace(tzinfo=timezone.utc).astimezone(ROME).hour == 20]
    assert 0.025 < sum(night) / len(night) < 0.075 < 0.2 < sum(evening) / len(evening) < 0.375


def test_the_other_electricity_points_have_hourly_measures():
    first, end = rome_midnight_utc(date(2025, 10, 1)), rome_midnight_utc(TODAY)
    hours = int((end - first) / timedelta(hours=1))
    others = {code: (n, minutes) for code, n, minutes in Measure.select(
        SupplyPoint.code, fn.COUNT(Measure.id), fn.MAX(Measure.interval_minutes)).join(SupplyPoint)
        .where(SupplyPoint.code != "PR002874").group_by(SupplyPoint.code).tuples()}
    points = SupplyPoint.select().where(SupplyPoint.code != "PR002874")
    active = {p.code for p in points if p.commodity == "electricity"
              and (p.end_date is None or p.end_date >= date(2025, 10, 1))}
    assert set(others) == active and len(active) > 250  # gas points have none
    assert {minutes for _, minutes in others.values()} == {60}
    always = [p.code for p in points if p.code in active and p.start_date <= date(2025, 10, 1) and p.end_date is None]
    assert always and all(others[code][0] == hours for code in always)


def test_totals_are_built_from_the_measures():
    """As the import keeps them: a day per point and local day, a month per point and month."""
    assert DailyConsumption.select(fn.SUM(DailyConsumption.intervals)).scalar() == Measure.select().count()
    assert (MonthlyConsumption.select(fn.SUM(MonthlyConsumption.intervals)).scalar() == Measure.select().count())
    electricity = SupplyPoint.get(SupplyPoint.code == "PR002874")
    days = {d.day: d for d in DailyConsumption.select().where(DailyConsumption.supply_point == electricity)}
    assert (days[date(2026, 3, 29)].intervals, days[date(2026, 10, 25)].intervals) == (92, 100)
    assert sum(d.estimated for d in days.values()) == Measure.select().where(
        Measure.supply_point == electricity, Measure.quality == "estimated").count()
    october = MonthlyConsumption.get(MonthlyConsumption.supply_point == electricity,
                                     MonthlyConsumption.month == date(2026, 10, 1))
    invoice = Invoice.get(Invoice.supply_point == electricity, Invoice.period_start == date(2026, 10, 1))
    for measured, billed in ((october.f1, invoice.energy_f1_kwh), (october.f2, invoice.energy_f2_kwh),
                             (october.f3, invoice.energy_f3_kwh)):
        assert abs(Decimal(str(measured)) - billed) <= 1  # the bill counts whole kWh per band
    assert 0.5 < october.peak_kwh < 3 and october.peak_start.month == 10


def test_measures_of_a_month_match_its_invoice():
    electricity = SupplyPoint.get(SupplyPoint.code == "PR002874")
    invoice = Invoice.get(Invoice.supply_point == electricity, Invoice.period_start == date(2026, 10, 1))
    start, end = rome_midnight_utc(date(2026, 10, 1)), rome_midnight_utc(date(2026, 11, 1))
    measured = sum(m.kwh for m in electricity.measures.where(Measure.start >= start, Measure.start < end))
    billed = invoice.energy_f1_kwh + invoice.energy_f2_kwh + invoice.energy_f3_kwh
    assert abs(Decimal(str(measured)) - billed) <= 2  # the bill counts whole kWh per band


# --- ticket, documents, registration -----------------------------------------------------------

def test_demo_ticket_has_a_question_and_an_answer():
    ticket = Ticket.for_customer(customer("005007")).where(Ticket.status != Ticket.CLOSED).get()
    assert (ticket.status, ticket.category, ticket.supply_point.code) == (Ticket.WAITING_CUSTOMER, "billing", "PR002874")
    question, answer = ticket.messages.order_by(models.TicketMessage.created_at)
    assert not question.from_staff and question.author.username == "mario.rossi"
    assert answer.from_staff and answer.author is None


def test_demo_has_a_closed_ticket_with_an_internal_note_and_canned_replies():
    ticket = Ticket.for_customer(customer("005007")).where(Ticket.status == Ticket.CLOSED).get()
    assert (ticket.category, ticket.supply_point.code) == ("fault", "PR002875")
    assert ticket.closed_at == ticket.updated_at > ticket.created_at
    assert [m.internal for m in models.TicketMessage.all_of(ticket)] == [False, True, False]
    assert models.CannedReply.select().count() == 2


def pdf_problems(data):
    """A byte-level check of a PDF: header, EOF, xref offsets that point at their objects,
    stream lengths that match."""
    if not data.startswith(b"%PDF-") or not data.rstrip().endswith(b"%%EOF"):
        return "header or trailer"
    xref_at = int(re.search(rb"startxref\s+(\d+)\s+%%EOF\s*$", data).group(1))
    if not data[xref_at:].startswith(b"xref"):
        return "startxref"
    size = int(re.search(rb"/Size (\d+)", data).group(1))
    entries = re.findall(rb"(\d{10}) (\d{5}) ([nf]) ?\r?\n", data[xref_at:])
    if len(entries) != size:
        return "xref entries"
    for number, (offset, _, kind) in enumerate(entries):
        if kind == b"n" and not data[int(offset):].startswith(b"%d 0 obj" % number):
            return f"offset of object {number}"
    streams = re.findall(rb"/Length (\d+)\s*>>\s*stream\r?\n(.*?)\r?\nendstream", data, re.S)
    if not streams:
        return "no stream"
    for length, stream in streams:
        if int(length) != len(stream):
            return "stream length"
    return None


def pdf_text(data):
    """The text a PDF shows, read back without a PDF reader: the demo's PDFs are not
    compressed, and fpdf2 writes each piece of text as a (literal) Tj in cp1252."""
    pieces = re.findall(rb"\(((?:[^\\)]|\\.)*)\) ?Tj", data)
    unescape = {b"\\(": b"(", b"\\)": b")", b"\\\\": b"\\"}
    return "\n".join(re.sub(rb"\\[()\\]", lambda m: unescape[m.group()], piece).decode("cp1252")
                     for piece in pieces)


def test_documents_are_valid_pdfs(loaded):
    app, _ = loaded
    store = app.config["FILE_STORE"]
    documents = list(Document.select())
    sections = Counter(d.section for d in documents)
    assert sections == {"modulistica": 2, "normative": 1, "comunicati": 3, "informazioni": 1,
                        "storico": 1, "personal": 2, "report": 3}
    for document in documents:
        path = os.path.join(store, document.file)
        data = open(path, "rb").read()
        assert data.startswith(b"%PDF-")
        assert pdf_problems(data) is None, document.file
        assert (document.size, document.sha256) == (len(data), hashlib.sha256(data).hexdigest())
        assert document.content_type == "application/pdf"
        assert document.title in pdf_text(data)
        if document.section in Document.CUSTOMER_SECTIONS:
            assert document.customer.code == "005007"
        else:
            assert document.customer is None
    comunicati = Document.generic("comunicati")
    assert len({d.published_on for d in comunicati}) == 3
    assert all(TODAY - timedelta(days=90) < d.published_on < TODAY for d in comunicati)
    assert "Nuove tariffe dal 1° gennaio 2027" in {d.title for d in comunicati}
    for report in Document.for_customer(customer("005007")).where(Document.section == "report"):
        assert report.period_start < report.period_end < report.published_on <= TODAY


def test_minimal_pdf_writes_accents_and_brackets_and_wraps_long_lines():
    data = demo.minimal_pdf("Prova (1) \\ àèé €", ["riga con (parentesi)", "x" * 300])
    assert pdf_problems(data) is None
    text = pdf_text(data).splitlines()
    assert "Prova (1) \\ àèé €" in text and "riga con (parentesi)" in text
    wrapped = [line for line in text if set(line) == {"x"}]
    assert len(wrapped) > 1 and "".join(wrapped) == "x" * 300
    assert demo.minimal_pdf("Prova", ["a"]) == demo.minimal_pdf("Prova", ["a"])  # no clock inside


# --- the demo customer's bills -----------------------------------------------------------------

def italian_money(amount):
    return "€\xa0" + f"{amount:,.2f}".translate(str.maketrans(",.", ".,"))


def recent_bills():
    """The demo customer's invoices of the last 24 billed months (Nov 2024 - Oct 2026 for TODAY),
    and those without a point issued since."""
    mario = customer("005007")
    return list(Invoice.for_customer(mario).where(
        ((Invoice.supply_point.is_null(False)) & (Invoice.period_start >= date(2024, 11, 1)))
        | ((Invoice.supply_point.is_null()) & (Invoice.issue_date >= date(2024, 11, 1))))
        .order_by(Invoice.issue_date))


def test_recent_bills_have_pdfs_in_the_file_store_but_a_few(loaded):
    app, _ = loaded
    mario = customer("005007")
    recent = recent_bills()
    assert len(recent) == 24 * 2 + 1  # two points, and this year's adjustment
    with_pdf = [i for i in recent if i.pdf_path]
    without = [i for i in recent if not i.pdf_path]
    # One a year (2024, 2025, 2026) stays without, never the newest of a point.
    assert sorted(i.year for i in without) == [2024, 2025, 2026]
    assert all(i.supply_point and i.status != "unpaid" and i.pdf_sha256 is None for i in without)
    older = Invoice.for_customer(mario).where(Invoice.issue_date < date(2024, 11, 1))
    assert not older.where(Invoice.pdf_path.is_null(False)).exists()
    assert Invoice.select().where(Invoice.customer != mario, Invoice.pdf_path.is_null(False)).count() == 0

    store = app.config["FILE_STORE"]
    for invoice in with_pdf:
        data = open(os.path.join(store, invoice.pdf_path), "rb").read()
        # Stored as the importer stores a PDF: named by its SHA-256.
        assert invoice.pdf_path == f"{invoice.pdf_sha256[:2]}/{invoice.pdf_sha256}.pdf"
        assert hashlib.sha256(data).hexdigest() == invoice.pdf_sha256
        assert pdf_problems(data) is None, invoice.number
        assert 2_000 < len(data) < 10_000
        text = pdf_text(data)
        for expected in (f"Fattura n. {invoice.number}", italian_money(invoice.total), "ROSSI MARIO",
                         "Codice cliente 005007", f"Codice fiscale {mario.tax_code}",
                         f"emessa il {invoice.issue_date:%d/%m/%Y}", f"entro il {invoice.due_date:%d/%m/%Y}",
                         "Sportello"):
            assert expected in text, (invoice.number, expected)
        point = invoice.supply_point
        if point is None:
            assert "Nessun punto di fornitura" in text and "Conguaglio dei consumi 2025" in text
            continue
        assert f"dal {invoice.period_start:%d/%m/%Y} al {invoice.period_end:%d/%m/%Y}" in text
        assert f"{'PDR' if point.is_gas else 'POD'} {point.pod_pdr}" in text
        assert f"Punto di fornitura {point.code}" in text
        if point.is_gas:
            assert f"{invoice.gas_smc:,.0f} Smc".replace(",", ".") in text and "kWh" not in text
        else:
            for band in ("f1", "f2", "f3"):
                kwh = getattr(invoice, f"energy_{band}_kwh")
                assert f"Energia in fascia {band.upper()}\n{kwh:,.0f} kWh".replace(",", ".") in text
            assert f"{invoice.peak_power_kw:.2f} kW".replace(".", ",") in text


def test_demo_customer_downloads_a_bill_and_the_years_zip(loaded):
    app, _ = loaded
    client = app.test_client()
    assert login(client, "005007", demo.DEMO_PASSWORD).status_code == 303
    electricity = [i for i in recent_bills() if i.supply_point and i.supply_point.code == "PR002874" and i.year == 2026]
    with_pdf = [i for i in electricity if i.pdf_path]
    without = [i for i in electricity if not i.pdf_path]
    assert len(with_pdf) >= 9 and len(without) <= 1

    page = client.get("/fatture?sp=PR002874&anno=2026")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert all(f'/fatture/{i.id}/pdf"' in html for i in with_pdf)  # the Doc column's link
    assert all(f'/fatture/{i.id}/pdf"' not in html for i in without)

    newest = max(with_pdf, key=lambda i: i.issue_date)
    response = client.get(f"/fatture/{newest.id}/pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    text = pdf_text(response.data)
    assert f"Fattura n. {newest.number}" in text and italian_money(newest.total) in text
    for invoice in without:
        assert client.get(f"/fatture/{invoice.id}/pdf").status_code == 404

    response = client.get("/fatture/pdf.zip?sp=PR002874&anno=2026")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    assert sorted(archive.namelist()) == sorted(f"Fattura-{i.number}.pdf" for i in with_pdf)
    store = app.config["FILE_STORE"]
    for invoice in with_pdf:
        data = archive.read(f"Fattura-{invoice.number}.pdf")
        assert data == open(os.path.join(store, invoice.pdf_path), "rb").read()
        assert f"Fattura n. {invoice.number}" in pdf_text(data)


def test_registration_example_is_a_person_with_no_login(loaded, demo_db):
    app, _ = loaded
    with app.app_context():
        example = demo.registration_example()
    registering = customer("005008")
    assert example["customer_code"] == "005008" and registering.kind == "person"
    assert example["tax_code"] == registering.tax_code and codicefiscale.is_valid(example["tax_code"])
    assert registering.users.count() == 0
    invoice = Invoice.get(Invoice.number == example["invoice_number"])
    assert invoice.customer_id == registering.id
    assert invoice.issue_date >= TODAY - timedelta(days=730)
    point = SupplyPoint.get(SupplyPoint.pod_pdr == example["pod"])
    assert point.customer_id == registering.id and identifiers.POD_RE.fullmatch(point.pod_pdr)

    printed = "\n".join(demo_db)
    assert "Log in at the portal with User 005007 (or mario.rossi) and password Demo-Sportello-2026" in printed
    assert example["tax_code"] in printed and example["invoice_number"] in printed and example["pod"] in printed

    # The first step of the registration takes these answers (the POD: the invoice's date
    # is checked against the real clock, this demo's today is TODAY).
    response = post_form(app.test_client(), "/registrazione", {
        "customer_code": example["customer_code"], "tax_id": example["tax_code"], "bill_proof": example["pod"],
    })
    assert response.status_code == 303 and "/registrazione/dati" in response.headers["Location"]


# --- loading again -----------------------------------------------------------------------------

def test_loading_again_adds_nothing(loaded):
    app, _ = loaded
    before = counts()
    lines = []
    with app.app_context():
        demo.load(echo=lines.append)
    assert counts() == before
    assert "nothing loaded" in lines[0]
    assert any("password Demo-Sportello-2026" in line for line in lines)


def add_a_bit_of_everything():
    """Rows in every table, linked to each other, for the reset to delete."""
    owner_customer = make_customer(code="999999")
    point = make_supply_point(owner_customer)
    user = make_user(owner_customer)
    make_invoice(owner_customer, point)
    Reading.create(supply_point=point, date=date(2026, 1, 31), register="F1", value=1)
    Measure.create(supply_point=point, start=datetime(2026, 1, 1), kwh=0.5)
    ticket = Ticket.create(customer=owner_customer, supply_point=point, opened_by=user, subject="?")
    message = models.TicketMessage.create(ticket=ticket, author=user, body="?")
    models.TicketAttachment.create(message=message, file="x.png", name="x.png", content_type="image/png", size=1)
    models.CannedReply.create(title="x", body="x", updated_by=user)
    Document.create(file="x.pdf", title="x", section="personal", customer=owner_customer, published_on=date(2026, 1, 1))
    Consent.create(user=user, kind="privacy", granted=True, text_version="1")
    models.UserSession.create(token_hash="a" * 64, user=user)
    models.EmailToken.create(token_hash="b" * 64, user=user, purpose="confirm", expires_at=datetime(2026, 1, 1))
    AuditLog.create(action="test", user=user, customer=owner_customer)
    models.OutboxMail.create(recipient="x@example.it", subject="x", body_text="x", body_html="x")
    models.ImportJob.create(started_by=user, folder="/tmp/x")
    models.ApiToken.create(user=user, name="x", token_hash="c" * 64)
    models.MailRequest.create(kind="reset_password", subject="999999")
    models.RateCounter.create(key="x", count=1, window_ends=datetime(2026, 1, 1))
    models.DailyConsumption.create(supply_point=point, day=date(2026, 1, 1), f3=0.5, intervals=1)
    models.MonthlyConsumption.create(supply_point=point, month=date(2026, 1, 1), f3=0.5, intervals=1)
    models.ContactChange.create(customer=owner_customer, field="phone", new_value="+390544401234", changed_by=user)
    models.ReadingReminder.create(user=user, commodity="gas", window_start=date(2026, 1, 25))
    return {model.__name__ for model in models.ALL_MODELS if model.select().exists()}


def test_reset_on_another_database_gives_the_same_data(tmp_path):
    """Deterministic: a second, separate database gets the same data; and --reset deletes
    every row of every table first (children before parents, with foreign keys enforced)."""
    first, first_counts = fingerprint(), counts()
    other = demo_app_for("sqlite:///" + str(tmp_path / "other.db"), tmp_path)
    with other.app_context():
        schema.upgrade(models.db_wrapper.database)
        assert add_a_bit_of_everything() == {model.__name__ for model in models.ALL_MODELS}
        lines = []
        demo.load(reset=True, echo=lines.append, today=TODAY)
        second, second_counts = fingerprint(), counts()
    assert lines[0].startswith("Demo data loaded: ")
    assert not any(c == "999999" for c, _ in second["customers"])
    assert_same_data(first, second)
    assert second["invoice_sum"] > 0 and len(second["customers"]) >= 290
    # Only the demo's own tables have rows (the other tests' logins wrote sessions and audit).
    for name in ("AuditLog", "UserSession", "EmailToken", "OutboxMail", "MailRequest", "RateCounter"):
        assert second_counts.pop(name) == 0
        first_counts.pop(name)
    assert second_counts == first_counts


def test_flask_demo_today_moves_the_demo_to_that_day(tmp_path):
    """`flask demo --today 2027-01-01`, a January and the 1st of a month: December is billed
    (issued on the 1st, its billing day being still to come), the measures end yesterday, and
    the readings, logins, ticket, announcements and reports follow the day."""
    mario = customer("005007")
    billed = Invoice.for_customer(mario).where(Invoice.supply_point.is_null(False))
    assert max(i.period_start for i in billed) == date(2026, 10, 1)  # as of TODAY

    later = demo_app_for("sqlite:///" + str(tmp_path / "later.db"), tmp_path)
    bind(later)
    result = later.test_cli_runner().invoke(args=["demo", "--reset", "--today", "2027-01-01"])
    assert result.exit_code == 0, result.output
    assert "as of 01/01/2027" in result.output
    with later.app_context():
        mario = customer("005007")
        for point in SupplyPoint.for_customer(mario):
            newest = (Invoice.for_customer(mario).where(Invoice.supply_point == point)
                      .order_by(Invoice.period_start.desc()).first())
            assert (newest.period_start, newest.period_end) == (date(2026, 12, 1), date(2026, 12, 31))
            assert (newest.issue_date, newest.year, newest.status) == (date(2027, 1, 1), 2027, "unpaid")
            assert newest.number.startswith("FT2027-") and newest.pdf_path
        assert Invoice.select(fn.MAX(Invoice.issue_date)).scalar() == date(2027, 1, 1)
        assert Invoice.select(fn.MAX(Invoice.period_end)).scalar() == date(2026, 12, 31)
        assert [i.year for i in Invoice.for_customer(mario).where(Invoice.status == "partial")] == [2026]

        assert Reading.select(fn.MAX(Reading.date)).where(Reading.status == Reading.VALIDATED).scalar() == date(2026, 12, 31)
        assert Reading.select(fn.MAX(Reading.date)).scalar() == date(2027, 1, 1)  # Mario's self-reading, sent today
        starts = [s for (s,) in Measure.select(Measure.start).join(SupplyPoint)
                  .where(SupplyPoint.code == "PR002874").order_by(Measure.start).tuples()]
        assert starts[0] == datetime(2025, 11, 30, 23, 0)  # local midnight of 1 December 2025
        assert starts[-1] == datetime(2026, 12, 31, 22, 45)  # the last quarter of yesterday, in Rome
        assert len(starts) == (31 + 365) * 96 - 30 * 4  # less the gap

        owner = mario.owner()
        assert datetime(2026, 12, 1) < owner.previous_login_at < owner.last_login_at < datetime(2027, 1, 1)
        ticket = Ticket.for_customer(mario).where(Ticket.status != Ticket.CLOSED).get()
        assert date(2027, 1, 1) == ticket.created_at.date() == ticket.updated_at.date()
        assert ticket.created_at < ticket.updated_at

        titles = {d.title: d for d in Document.select()}
        assert {t for t in titles if t.startswith("Report consumi")} == {
            f"Report consumi {q}° trimestre 2026" for q in (1, 2, 3)}  # the 4th comes out on 20 January
        assert "Nuove tariffe dal 1° marzo 2027" in titles and "Listino prezzi 2026" in titles
        closed = titles["Sportello chiuso per festività"]
        text = pdf_text(open(os.path.join(later.config["FILE_STORE"], closed.file), "rb").read())
        assert "chiuso mercoledì 6 gennaio 2027 e lunedì 29 marzo 2027." in text


def test_the_demo_customer_has_a_read_only_delegate():
    """Issue 14: Delegati shows Mario's accountant, who logs in with her own username."""
    mario = Customer.get(Customer.code == demo.DEMO_CUSTOMER)
    (delegate,) = User.delegates_of(mario)
    assert (delegate.username, delegate.delegate_rights, delegate.invited_by.username) == (
        "studio.bianchi", User.READ, demo.DEMO_USERNAME)
    assert delegate.is_active and not delegate.can_write
    assert accounts.check_password(delegate, demo.DEMO_PASSWORD)
    assert Consent.latest_by_user([delegate])[delegate.id]["privacy"].granted
