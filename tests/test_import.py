"""The import from the billing system: idempotent, all or nothing, every problem reported."""
import csv
import hashlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

import importer
import models
from database import is_sqlite
from models import AuditLog, Customer, Document, Invoice, Measure, Reading, SupplyPoint
from tests.import_data import write_data_set

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def store(tmp_path):
    return tmp_path / "store"


@pytest.fixture
def data(tmp_path):
    folder = tmp_path / "set"
    written = write_data_set(folder)
    return folder, written


def run(app, paths, store):
    with app.app_context():
        return importer.run([str(p) for p in paths], str(store))


def fingerprint():
    """Everything the import writes, comparable across runs (not when: a point's
    measures_imported_at is the import's own time)."""
    def rows(model, *fields):
        return sorted(tuple(str(v) for v in row) for row in model.select(*fields).tuples())
    return {
        "customers": rows(Customer, *Customer._meta.sorted_fields[1:]),
        "points": rows(SupplyPoint, *[f for f in SupplyPoint._meta.sorted_fields[1:] if f.name != "measures_imported_at"]),
        "invoices": rows(Invoice, *Invoice._meta.sorted_fields[1:]),
        "readings": rows(Reading, Reading.supply_point, Reading.date, Reading.register, Reading.value, Reading.source),
        "measures": rows(Measure, *Measure._meta.sorted_fields[1:]),
        "documents": rows(Document, *Document._meta.sorted_fields[1:]),
    }


def rewrite(path, change):
    """Edit a CSV: change(rows) gets the rows (header first) and edits them in place."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    change(rows)
    with open(path, "w", encoding="utf-8", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)


def column(rows, name):
    return rows[0].index(name)


# --- a whole data set ------------------------------------------------------------------------

def test_a_data_set_imports_completely(app, data, store):
    folder, written = data
    report = run(app, [folder], store)
    assert report.problems == []
    assert report.lines() == [f"{name}: added {n}, updated 0, unchanged 0" for name, n in written["counts"].items()]

    person = Customer.get(Customer.code == written["customers"][0])
    assert (person.kind, person.name, person.email) == ("person", "ROSSI MARIO 0", "cliente0@example.it")
    firm = Customer.get(Customer.code == written["customers"][2])
    assert firm.kind == "company" and firm.vat_number == firm.tax_code

    point = SupplyPoint.get(SupplyPoint.code == written["points"][0])
    assert point.customer_id == person.id and point.start_date == date(2020, 1, 1)
    assert point.technical == {"Potenza impegnata": "3 kW"}
    assert point.contractual == {"Offerta": "Casa Luce Fissa"}
    gas = SupplyPoint.get(SupplyPoint.code == written["points"][1])
    assert gas.commodity == "gas" and len(gas.pod_pdr) == 14 and gas.pod_pdr.isdigit()

    invoice = Invoice.get(Invoice.number == "FT2026-000001")
    assert (invoice.year, invoice.total, invoice.status) == (2026, Decimal("51.25"), "paid")
    assert invoice.energy_f1_kwh == Decimal("100")
    source = (folder / "pdf/FT2026-000001.pdf").read_bytes()
    assert invoice.pdf_sha256 == hashlib.sha256(source).hexdigest()
    assert (store / invoice.pdf_path).read_bytes() == source
    assert Invoice.get(Invoice.number == "FT2026-000002").pdf_path is None  # no "pdf": no document

    report_doc = Document.get(Document.section == "report")
    assert report_doc.customer_id == person.id and report_doc.period_end == date(2026, 6, 30)
    assert report_doc.source_name == "docs/report-2026.pdf"
    assert (store / report_doc.file).read_bytes()[:5] == b"%PDF-"
    assert Document.get(Document.section == "modulistica").customer_id is None


def test_an_import_leaves_the_planner_the_new_sizes(app, data, store):
    """Without statistics PostgreSQL planned the invoice page by guesses until autovacuum came
    by, and SQLite never gathers them by itself: the import refreshes them."""
    folder, written = data
    assert run(app, [folder], store).problems == []
    database = models.db_wrapper.database
    if is_sqlite(database):
        stats = database.execute_sql("SELECT stat FROM sqlite_stat1 WHERE tbl = 'invoice'").fetchall()
        counted = {int(stat.split()[0]) for (stat,) in stats}  # each index's stat starts with the rows
    else:
        counted = {int(n) for (n,) in database.execute_sql("SELECT reltuples FROM pg_class WHERE relname = 'invoice'")}
    assert counted == {written["counts"]["invoices.csv"]} == {Invoice.select().count()}


def test_the_same_files_twice_change_nothing(app, data, store):
    folder, written = data
    run(app, [folder], store)
    before = fingerprint()
    report = run(app, [folder], store)
    assert report.lines() == [f"{name}: added 0, updated 0, unchanged {n}" for name, n in written["counts"].items()]
    assert fingerprint() == before


def test_a_changed_row_updates_its_record(app, data, store):
    folder, written = data
    run(app, [folder], store)

    def change_total(rows):
        rows[1][column(rows, "total")] = "99.90"
        rows[1][column(rows, "status")] = "partial"

    rewrite(folder / "invoices.csv", change_total)
    rewrite(folder / "customers.csv", lambda rows: rows[1].__setitem__(column(rows, "phone"), "0544 999999"))
    report = run(app, [folder], store)
    assert "invoices.csv: added 0, updated 1, unchanged 17" in report.lines()
    assert "customers.csv: added 0, updated 1, unchanged 2" in report.lines()
    invoice = Invoice.get(Invoice.number == "FT2026-000001")
    assert (invoice.total, invoice.status) == (Decimal("99.90"), "partial")
    assert invoice.pdf_path is not None  # the other fields stay
    assert Customer.get(Customer.code == written["customers"][0]).phone == "0544 999999"


def test_a_supply_point_and_its_invoice_move_to_another_customer(app, data, store):
    folder, written = data
    run(app, [folder], store)
    first, second = written["customers"][:2]
    moving = written["points"][0]

    def move_point(rows):
        for row in rows[1:]:
            if row[0] == moving:
                row[column(rows, "customer_code")] = second

    def move_invoices(rows):
        for row in rows[1:]:
            if row[column(rows, "supply_point_code")] == moving:
                row[column(rows, "customer_code")] = second

    rewrite(folder / "supply_points.csv", move_point)
    rewrite(folder / "invoices.csv", move_invoices)
    report = run(app, [folder], store)
    assert report.problems == []
    assert "supply_points.csv: added 0, updated 1, unchanged 5" in report.lines()
    point = SupplyPoint.get(SupplyPoint.code == moving)
    assert point.customer.code == second
    assert {i.customer.code for i in Invoice.select().where(Invoice.supply_point == point)} == {second}
    assert not Invoice.select().join(Customer).where(Customer.code == first, Invoice.supply_point == point).exists()


def test_a_column_left_out_keeps_the_stored_values(app, data, store):
    folder, written = data
    run(app, [folder], store)
    with open(folder / "customers.csv", "w", encoding="utf-8") as f:
        f.write("customer_code,name,kind,tax_code\n")
        f.write(f"{written['customers'][0]},ROSSI MARIO 0,person,{Customer.get(Customer.code == written['customers'][0]).tax_code}\n")
    report = run(app, [folder / "customers.csv"], store)
    assert report.lines() == ["customers.csv: added 0, updated 0, unchanged 1"]
    assert Customer.get(Customer.code == written["customers"][0]).email == "cliente0@example.it"


def test_italian_dialect_gives_the_same_data(app, tmp_path, store):
    write_data_set(tmp_path / "iso")
    write_data_set(tmp_path / "it", italian=True)  # ; separator, BOM, 12,50 and 31/01/2026
    assert run(app, [tmp_path / "iso"], store).problems == []
    iso = fingerprint()
    report = run(app, [tmp_path / "it"], store)
    assert report.problems == []
    assert all(", updated 0," in line for line in report.lines()), report.lines()
    assert fingerprint() == iso


def test_files_are_imported_in_dependency_order_whatever_the_arguments(app, data, store):
    folder, _ = data
    names = ["documents.csv", "measures.csv", "readings.csv", "invoices.csv", "supply_points.csv", "customers.csv"]
    report = run(app, [folder / name for name in names], store)
    assert report.problems == []
    assert [line.split(":")[0] for line in report.lines()] == list(reversed(names))


# --- all or nothing -----------------------------------------------------------------------------

def test_any_bad_row_imports_nothing_and_every_problem_is_reported(app, data, store):
    folder, written = data

    def break_customers(rows):
        rows[2][column(rows, "tax_code")] = "RSSMRA70A01H199X"  # wrong check character
        rows[3][column(rows, "kind")] = "alien"

    def break_invoices(rows):
        rows[4][column(rows, "issue_date")] = "2026-02-30"
        rows[5][column(rows, "total")] = "1.234,56"
        rows[6][column(rows, "supply_point_code")] = "PR999999"

    def break_measures(rows):
        rows[7][column(rows, "supply_point_code")] = "PR888888"
        rows[8][column(rows, "kwh")] = "tanto"

    rewrite(folder / "customers.csv", break_customers)
    rewrite(folder / "invoices.csv", break_invoices)
    rewrite(folder / "measures.csv", break_measures)
    report = run(app, [folder], store)
    assert report.summary == {}
    problems = report.problems
    assert "customers.csv:3: tax_code: Il codice fiscale non è valido: controlla di averlo scritto bene." in problems
    assert "customers.csv:4: kind: 'alien' non è tra i valori ammessi (person, company, public_body)" in problems
    assert "invoices.csv:5: issue_date: '2026-02-30' non è una data (AAAA-MM-GG o GG/MM/AAAA)" in problems
    assert any(p.startswith("invoices.csv:6: total: '1.234,56' non è un numero") for p in problems)
    assert "invoices.csv:7: supply_point_code: il punto di fornitura PR999999 non esiste" in problems
    assert "measures.csv:8: supply_point_code: il punto di fornitura PR888888 non esiste" in problems
    assert "measures.csv:9: kwh: 'tanto' non è un numero (decimali con . o ,)" in problems
    # The customer of line 3 is refused, so the points and invoices that name it cannot go in either.
    assert any(p.startswith("supply_points.csv:") and "non esiste" in p for p in problems)
    assert all(model.select().count() == 0 for model in (Customer, SupplyPoint, Invoice, Reading, Measure, Document))
    assert not store.exists() or not any(store.rglob("*.pdf"))


def test_line_numbers_are_physical_lines(app, data, store):
    """A quoted cell across two lines moves the following rows' numbers, as an editor shows them."""
    folder, _ = data

    def multiline(rows):
        rows[1][column(rows, "address")] = "VIA PROVA 5\nSCALA B"
        rows[3][column(rows, "province")] = "RAVENNA"

    rewrite(folder / "customers.csv", multiline)
    problems = run(app, [folder], store).problems
    assert "customers.csv:5: province: più di 2 caratteri" in problems


def test_header_problems(app, data, store):
    folder, _ = data
    rewrite(folder / "readings.csv", lambda rows: rows[0].__setitem__(column(rows, "source"), "origine"))
    def drop_kind(rows):
        index = column(rows, "kind")
        for row in rows:
            row.pop(index)

    rewrite(folder / "customers.csv", drop_kind)
    problems = run(app, [folder], store).problems
    assert "readings.csv:1: origine: colonna sconosciuta" in problems
    assert "customers.csv:1: kind: colonna obbligatoria mancante" in problems


def test_duplicate_natural_keys_in_a_file(app, data, store):
    folder, _ = data
    rewrite(folder / "invoices.csv", lambda rows: rows.append(list(rows[1])))
    rewrite(folder / "measures.csv", lambda rows: rows.append(list(rows[1])))
    problems = run(app, [folder], store).problems
    assert "invoices.csv:20: number/issue_date: ripete la riga 2" in problems
    assert any(p.startswith("measures.csv:") and "ripete la riga 2" in p for p in problems)


def test_a_missing_or_fake_pdf_refuses_the_run(app, data, store):
    folder, _ = data
    (folder / "pdf/FT2026-000001.pdf").unlink()
    (folder / "pdf/FT2026-000004.pdf").write_bytes(b"<html>not a pdf</html>")
    rewrite(folder / "invoices.csv", lambda rows: rows[2].__setitem__(column(rows, "pdf"), "../../etc/passwd.pdf"))
    problems = run(app, [folder], store).problems
    assert "invoices.csv:2: pdf: il file FT2026-000001.pdf non c'è" in problems
    assert "invoices.csv:5: pdf: il file FT2026-000004.pdf non è un PDF valido" in problems
    assert "invoices.csv:3: pdf: il file deve stare nella cartella del CSV" in problems
    assert Invoice.select().count() == 0


def test_documents_must_say_whose_they_are(app, data, store):
    folder, written = data

    def wrong(rows):
        rows[1][column(rows, "customer_code")] = written["customers"][0]  # generic with a customer
        rows[2][column(rows, "customer_code")] = ""  # a report without one

    rewrite(folder / "documents.csv", wrong)
    problems = run(app, [folder], store).problems
    assert "documents.csv:2: customer_code: la sezione modulistica è per tutti: lascialo vuoto" in problems
    assert "documents.csv:3: customer_code: obbligatorio per la sezione report" in problems


def test_unknown_files_are_refused(app, tmp_path, store):
    (tmp_path / "clienti.csv").write_text("x\n")
    problems = run(app, [tmp_path / "clienti.csv", tmp_path / "nothing.csv"], store).problems
    assert any("clienti.csv:0: -: non è un file del tracciato" in p for p in problems)
    assert any("nothing.csv:0: -: il file non esiste" in p for p in problems)


# --- time ------------------------------------------------------------------------------------------

def test_local_times_cross_the_autumn_change(app, tmp_path, store):
    """25 October 2026 has 25 hours in Rome: 02:00 happens twice and both are kept, in UTC."""
    written = write_data_set(tmp_path / "set", customers=1, days_of_measures=3, first_day=date(2026, 10, 24))
    assert run(app, [tmp_path / "set"], store).problems == []
    point = SupplyPoint.get(SupplyPoint.code == written["points"][0])
    starts = [m.start for m in Measure.select().where(Measure.supply_point == point).order_by(Measure.start)]
    assert len(starts) == 24 + 25 + 24
    assert datetime(2026, 10, 25, 0, 0) in starts and datetime(2026, 10, 25, 1, 0) in starts  # 02:00 +02, +01
    assert starts[0] == datetime(2026, 10, 23, 22, 0)


def test_quarter_hours_in_local_time_cross_the_autumn_change(app, data, store):
    """With 15-minute data 02:00 comes back after 02:45, not right after itself: still the later
    hour, not a repeated row."""
    folder, written = data
    point = written["points"][0]
    local = [f"2026-10-25 {hour:02d}:{minute:02d}" for hour in (1, 2, 2) for minute in (0, 15, 30, 45)]
    with open(folder / "measures.csv", "w", encoding="utf-8", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(
            [["supply_point_code", "start", "kwh", "interval_minutes", "quality"]]
            + [[point, stamp, "0.1", "15", "actual"] for stamp in local])
    report = run(app, [folder / "customers.csv", folder / "supply_points.csv", folder / "measures.csv"], store)
    assert report.problems == []
    starts = [m.start for m in Measure.select().join(SupplyPoint).where(SupplyPoint.code == point)
              .order_by(Measure.start)]
    assert starts == [datetime(2026, 10, 24, 23, 0) + timedelta(minutes=15 * n) for n in range(12)]


def test_offsets_and_local_times_agree(app, tmp_path, store):
    write_data_set(tmp_path / "local", customers=1, first_day=date(2026, 3, 28), days_of_measures=2)
    write_data_set(tmp_path / "offset", customers=1, first_day=date(2026, 3, 28), days_of_measures=2,
                   measures_with_offset=True)
    assert run(app, [tmp_path / "local"], store).problems == []
    local = fingerprint()["measures"]
    assert len(local) == 24 + 23  # 29 March 2026: 23 hours
    report = run(app, [tmp_path / "offset"], store)
    assert "measures.csv: added 0, updated 0, unchanged 47" in report.lines()


def test_a_local_time_that_does_not_exist_is_refused(app, data, store):
    folder, _ = data
    rewrite(folder / "measures.csv", lambda rows: rows[1].__setitem__(column(rows, "start"), "2026-03-29 02:30"))
    problems = run(app, [folder], store).problems
    assert any(p.startswith("measures.csv:2: start: '2026-03-29 02:30' non esiste nell'ora locale") for p in problems)


# --- the command -------------------------------------------------------------------------------------

def test_the_command_prints_the_summary_and_audits(app, data):
    folder, written = data
    result = app.test_cli_runner().invoke(args=["import", str(folder)])
    assert result.exit_code == 0, result.output
    assert f"invoices.csv: added {written['counts']['invoices.csv']}, updated 0, unchanged 0" in result.output
    entry = AuditLog.get(AuditLog.action == "import")
    assert "invoices.csv: added" in json.loads(entry.detail)["summary"][2]


def test_the_command_fails_with_every_problem(app, data):
    folder, _ = data
    rewrite(folder / "customers.csv", lambda rows: rows[1].__setitem__(column(rows, "kind"), "x"))
    result = app.test_cli_runner().invoke(args=["import", str(folder)])
    assert result.exit_code == 1
    assert "customers.csv:2: kind:" in result.output
    assert AuditLog.get().action == "import_refused"


def test_a_killed_import_leaves_the_database_as_it_was(app, migrated_database, tmp_path, store):
    """SIGKILL the import process while it writes: nothing of that run is in the database."""
    first = write_data_set(tmp_path / "first", customers=4)
    assert run(app, [tmp_path / "first"], store).problems == []
    before = fingerprint()
    # A second, larger run: new customers, changed totals, 100 days of measures to write.
    write_data_set(tmp_path / "second", customers=12, months=4, days_of_measures=100)
    env = dict(os.environ, PORTAL_ENV="development", SECRET_KEY="kill-test", DATABASE_URL=migrated_database,
               FILE_STORE=str(store), MAIL_DELIVERY_THREAD="false")
    process = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "import", str(tmp_path / "second")],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    writing = wait_until_writing(migrated_database, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert writing, "the import finished before it could be killed while writing"
    models.db_wrapper.database.close()  # see the database afresh
    assert fingerprint() == before
    assert first["customers"][0] in {c.code for c in Customer.select()}
    # And the same run, not killed, goes through.
    report = run(app, [tmp_path / "second"], store)
    assert report.problems == []
    assert Customer.select().count() == 12


def wait_until_writing(database_url, process, timeout=120):
    """True once the import process has begun its write transaction."""
    deadline = time.monotonic() + timeout
    if database_url.startswith("sqlite"):
        # The import holds the write lock exactly while it writes: try to take it, not waiting.
        connection = sqlite3.connect(database_url.split("sqlite:///", 1)[1], timeout=0, isolation_level=None)
        try:
            while process.poll() is None and time.monotonic() < deadline:
                try:
                    connection.execute("BEGIN IMMEDIATE")
                    connection.execute("ROLLBACK")
                except sqlite3.OperationalError:  # "database is locked": the import is writing
                    return True
                time.sleep(0.002)
        finally:
            connection.close()
        return False
    import psycopg2

    connection = psycopg2.connect(database_url)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            while process.poll() is None and time.monotonic() < deadline:
                cursor.execute(
                    "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                    "WHERE c.relname IN ('customer', 'measure', 'invoice') AND l.mode = 'RowExclusiveLock' "
                    "AND l.pid <> pg_backend_pid()"
                )
                if cursor.fetchone()[0]:
                    return True
                time.sleep(0.002)
    finally:
        connection.close()
    return False


@pytest.mark.parametrize("value", ["nan", "inf", "1_000", "1e3", "1.234,5", " "])
def test_measures_accept_only_plain_numbers(app, data, store, value):
    """float() would take most of these; the contract says decimals with . or , only."""
    folder, _ = data
    rewrite(folder / "measures.csv", lambda rows: rows[1].__setitem__(column(rows, "kwh"), value))
    problems = run(app, [folder], store).problems
    assert len(problems) == 1 and problems[0].startswith("measures.csv:2: kwh:")
    assert Measure.select().count() == 0


# --- the customers' mail about new invoices ------------------------------------------------------

def test_new_invoices_are_mailed_once_per_run_per_user(app, data, store, smtp):
    from models import OutboxMail, User
    from tests.factories import make_customer, make_user
    from tests.helpers import deliver, text_of

    folder, written = data
    customer = make_customer(code=written["customers"][0])  # registered before its invoices arrive
    make_user(customer, email="mario@example.it")
    make_user(customer, email="delegato@example.it", role=User.DELEGATE, notify_invoices=False)
    make_user(customer, email="nuovo@example.it", confirmed=False)
    report = run(app, [folder], store)
    assert report.problems == [], report.problems
    assert [m.recipient for m in OutboxMail.select()] == ["mario@example.it"]  # not per invoice, not opted out
    deliver(app)
    [message] = smtp.messages
    body = text_of(message)
    assert message["Subject"] == "Nuove fatture disponibili"
    assert "sono disponibili 6 nuove fatture per il codice cliente 200000" in body
    assert "FT2026-000001: €\xa051,25, scadenza 02/03/2026" in body
    assert "http://portal.test/fatture" in body and "http://portal.test/dati-anagrafici" in body
    run(app, [folder], store)  # the same files again: nothing new, no mail
    assert OutboxMail.select().count() == 1


def test_opting_out_in_dati_anagrafici(app):
    from models import User
    from tests.factories import PASSWORD, make_customer, make_supply_point, make_user
    from tests.helpers import login, post_form

    customer = make_customer(code="005007")
    make_supply_point(customer)
    user = make_user(customer)
    client = app.test_client()
    login(client, "005007", PASSWORD)
    page = client.get("/dati-anagrafici", follow_redirects=True).get_data(as_text=True)
    checkbox = re.search(r'<input[^>]*name="notify_invoices"[^>]*>', page).group(0)
    assert "005007" in page and "checked" in checkbox
    response = post_form(client, "/dati-anagrafici", {}, page="/dati-anagrafici")  # unticked
    assert response.status_code == 303
    assert User.get_by_id(user.id).notify_invoices is False
