"""Import from the billing system: the CSV files of the data contract (DESIGN §4).

A run has two phases. First every file is read and every row checked: formats, codes (check
digits by python-stdnum), references between files and to what the portal already holds,
duplicate keys, the PDFs and documents named. Every problem is collected as
`file:line: column: reason` (physical lines; the header is line 1). If there is any, nothing
is written. Otherwise the second phase writes everything in one transaction: a run killed
halfway leaves the database as it was, the same files twice change nothing, and a changed row
updates the record its natural key names (a supply point or invoice that moves to another
customer moves).

Small files are compared in memory. measures.csv (a year of hourly data for 1,000 points is
8.76 million rows) is streamed into a temporary staging table while it is read, checked there
with SQL, and merged with one INSERT ... ON CONFLICT DO UPDATE; in the same transaction the
daily and monthly totals of the (point, local day) pairs it has rows for are summed again
(totals.py), and on PostgreSQL the month partitions it writes into are created first.
"""
import csv
import io
import json
import os
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path

import peewee as pw
from flask_babel import lazy_gettext as _l

import contacts
import identifiers
import partitions
import self_readings
import totals
from database import is_sqlite, refresh_statistics, write_transaction
from files import CONTENT_TYPES, EXTENSIONS, FileStore
from i18n import ROME, rome_today
from models import Customer, Document, Invoice, Reading, SupplyPoint, User, db_wrapper, utcnow


class Problem(ValueError):
    """A bad cell: raised by the parsers, collected by the reader."""


# --- cell parsers: text in, value out, or Problem ---------------------------------------------------

def text(max_length=255):
    def parse(value):
        if len(value) > max_length:
            raise Problem(f"più di {max_length} caratteri")
        return value
    return parse


def choice(*allowed):
    def parse(value):
        if value not in allowed:
            raise Problem(f"{value!r} non è tra i valori ammessi ({', '.join(allowed)})")
        return value
    return parse


def code(clean):
    def parse(value):
        try:
            return clean(value)
        except identifiers.InvalidCode as error:
            raise Problem(str(error)) from None
    return parse


def parse_date(value):
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            return date.fromisoformat(value)
        if re.fullmatch(r"\d{2}/\d{2}/\d{4}", value):
            day, month, year = value.split("/")
            return date(int(year), int(month), int(day))
    except ValueError:
        pass
    raise Problem(f"{value!r} non è una data (AAAA-MM-GG o GG/MM/AAAA)")


def decimal(places):
    quantum = Decimal(1).scaleb(-places)

    def parse(value):
        try:
            number = Decimal(value.replace(",", "."))
        except InvalidOperation:
            raise Problem(f"{value!r} non è un numero (decimali con . o ,, senza separatore delle migliaia)") from None
        if not number.is_finite():
            raise Problem(f"{value!r} non è un numero")
        if number != number.quantize(quantum):
            raise Problem(f"{value!r} ha più di {places} decimali")
        return number.quantize(quantum)
    return parse


def email(value):
    if len(value) > 254 or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
        raise Problem(f"{value!r} non è un indirizzo email")
    return value.lower()


PLAIN_NUMBER = re.compile(r"-?\d+(?:[.,]\d+)?")  # float() would also take "1_000", "nan", "1e3"


def number(value):
    if not PLAIN_NUMBER.fullmatch(value):
        raise Problem(f"{value!r} non è un numero (decimali con . o ,)")
    return float(value.replace(",", "."))


class LocalTimes:
    """ISO 8601 timestamps to naive UTC; without an offset they are Europe/Rome local time.

    In the autumn change the local hour 02:00-03:00 happens twice: the second time a point's
    rows name the same local time, it is the later one (fold=1). A local time skipped in spring is an error.
    Conversions are cached: the same timestamps recur for every supply point."""

    def __init__(self):
        self.cache = {}
        self.ambiguous_seen = {}  # supply point -> the ambiguous local times met once already

    def parse(self, value, point=None):
        cached = self.cache.get(value)
        if cached is not None:
            return cached
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise Problem(f"{value!r} non è un istante ISO 8601 (es. 2026-03-29T01:00:00+01:00)") from None
        if moment.tzinfo is not None:
            result = moment.astimezone(timezone.utc).replace(tzinfo=None)
            self.cache[value] = result
            return result
        first = moment.replace(tzinfo=ROME, fold=0)
        second = moment.replace(tzinfo=ROME, fold=1)
        if first.astimezone(timezone.utc).astimezone(ROME).replace(tzinfo=None) != moment:
            # Skipped in spring (02:00-03:00 on the last Sunday of March).
            raise Problem(f"{value!r} non esiste nell'ora locale italiana (cambio dell'ora legale)")
        if first.utcoffset() == second.utcoffset():
            result = first.astimezone(timezone.utc).replace(tzinfo=None)
            self.cache[value] = result
            return result
        # Ambiguous: the first time for this point it is the earlier hour, then the later one
        # (02:00, 02:15, ... 02:45, then 02:00 again for 15-minute data).
        seen = self.ambiguous_seen.setdefault(point, set())
        chosen = second if moment in seen else first
        seen.add(moment)
        return chosen.astimezone(timezone.utc).replace(tzinfo=None)


# --- the files of the contract ------------------------------------------------------------------------

@dataclass
class Column:
    parse: object
    required: bool = False
    default: object = None


@dataclass
class FileSpec:
    name: str
    key: tuple
    columns: dict
    extra_prefixes: tuple = ()


SPECS = {
    "customers.csv": FileSpec("customers.csv", ("customer_code",), {
        "customer_code": Column(code(identifiers.clean_customer_code), True),
        "name": Column(text(), True),
        "kind": Column(choice(*Customer.KINDS), True),
        "tax_code": Column(code(identifiers.clean_tax_code), True),
        "vat_number": Column(code(identifiers.clean_vat_number)),
        "email": Column(email),
        "phone": Column(text(40)),
        "fax": Column(text(40)),
        "mobile": Column(text(40)),
        "address": Column(text()),
        "postcode": Column(text(5)),
        "city": Column(text()),
        "province": Column(text(2)),
    }),
    "supply_points.csv": FileSpec("supply_points.csv", ("code",), {
        "code": Column(text(30), True),
        "customer_code": Column(code(identifiers.clean_customer_code), True),
        "commodity": Column(choice(*SupplyPoint.COMMODITIES), True),
        "pod_pdr": Column(text(20), True),  # checked with the commodity, per row
        "address": Column(text()),
        "postcode": Column(text(5)),
        "city": Column(text()),
        "province": Column(text(2)),
        "status": Column(choice("active", "ceased"), default="active"),
        "start_date": Column(parse_date),
        "end_date": Column(parse_date),
    }, extra_prefixes=("tech_", "contract_")),
    "invoices.csv": FileSpec("invoices.csv", ("number", "issue_date"), {
        "number": Column(text(40), True),
        "customer_code": Column(code(identifiers.clean_customer_code), True),
        "supply_point_code": Column(text(30)),
        "issue_date": Column(parse_date, True),
        "due_date": Column(parse_date),
        "period_start": Column(parse_date),
        "period_end": Column(parse_date),
        "total": Column(decimal(2), True),
        "status": Column(choice(*Invoice.STATUSES), default="unpaid"),
        "energy_f1_kwh": Column(decimal(3)),
        "energy_f2_kwh": Column(decimal(3)),
        "energy_f3_kwh": Column(decimal(3)),
        "peak_power_kw": Column(decimal(3)),
        "gas_smc": Column(decimal(3)),
        "pdf": Column(text()),
    }),
    "readings.csv": FileSpec("readings.csv", ("supply_point_code", "date", "register"), {
        "supply_point_code": Column(text(30), True),
        "date": Column(parse_date, True),
        "register": Column(choice(*Reading.REGISTERS), True),
        "value": Column(decimal(3), True),
        "source": Column(choice(*Reading.SOURCES), default="distributor"),
    }),
    "measures.csv": FileSpec("measures.csv", ("supply_point_code", "start"), {
        "supply_point_code": Column(text(30), True),
        "start": Column(None, True),  # LocalTimes, per point
        "kwh": Column(number, True),
        "interval_minutes": Column(choice("15", "60"), default="60"),
        "quality": Column(choice("actual", "estimated"), default="actual"),
    }),
    "documents.csv": FileSpec("documents.csv", ("file", "customer_code"), {
        "file": Column(text(), True),
        "title": Column(text(), True),
        "section": Column(choice(*Document.GENERIC_SECTIONS, *Document.CUSTOMER_SECTIONS), True),
        "customer_code": Column(code(identifiers.clean_customer_code)),
        "published_on": Column(parse_date),
        "period_start": Column(parse_date),
        "period_end": Column(parse_date),
    }),
}
ORDER = list(SPECS)  # customers first: each file refers only to the ones before it


# --- reading ----------------------------------------------------------------------------------------

@dataclass
class Row:
    line: int
    values: dict  # column -> parsed value, only for the columns the file has
    extra: dict = field(default_factory=dict)  # tech_/contract_ columns


@dataclass
class Report:
    problems: list = field(default_factory=list)
    summary: dict = field(default_factory=dict)  # file -> (added, updated, unchanged)
    notes: list = field(default_factory=list)  # what else the run wants said (values it kept)

    def problem(self, file, line, column, reason):
        self.problems.append(f"{file}:{line}: {column}: {reason}")

    def lines(self):
        return [f"{name}: added {a}, updated {u}, unchanged {n}" for name, (a, u, n) in self.summary.items()] + self.notes


def open_csv(path):
    """A csv.reader over the file, with the header, whatever the separator; BOM accepted."""
    handle = open(path, encoding="utf-8-sig", newline="")
    first = handle.readline()
    handle.seek(0)
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(handle, delimiter=delimiter)
    return handle, reader


def read_file(path, spec, report, progress=None, on_row=None, fast_row=None):
    """Check every row of one file; returns the good rows (or hands each to `on_row`).

    `fast_row(cells, header)`, if given, turns a well-formed row straight into what `on_row`
    takes, or returns None; rows it refuses go through the full check, which says what is wrong.
    """
    rows = []
    try:
        handle, reader = open_csv(path)
    except OSError as error:
        report.problem(spec.name, 0, "-", f"il file non si apre: {error}")
        return rows
    size = max(os.path.getsize(path), 1)
    times = LocalTimes()
    with handle:
        try:
            header = [name.strip() for name in next(reader)]
        except StopIteration:
            report.problem(spec.name, 1, "-", "il file è vuoto: manca la riga di intestazione")
            return rows
        except (UnicodeDecodeError, csv.Error) as error:
            report.problem(spec.name, 1, "-", f"non è un CSV in UTF-8: {error}")
            return rows
        if not check_header(spec, header, report):
            return rows
        positions = [(i, name, spec.columns.get(name)) for i, name in enumerate(header)]
        if fast_row is not None:
            fast_row = fast_row(header)
        line_after = reader.line_num  # physical line where the next row starts, minus one
        count = 0
        try:
            for cells in reader:
                line, line_after = line_after + 1, reader.line_num
                count += 1
                if progress is not None and count % 20000 == 0:
                    # The buffer's position: the text layer cannot tell() while csv iterates it.
                    progress(spec.name, min(handle.buffer.tell() / size, 1.0))
                if fast_row is not None:
                    fast = fast_row(cells, times, line)
                    if fast is not None:
                        on_row(fast)
                        continue
                if not any(cell.strip() for cell in cells):
                    continue  # a blank line
                row = parse_row(spec, positions, cells, line, report, times)
                if row is None:
                    continue
                if on_row is not None:
                    on_row(row)
                else:
                    rows.append(row)
        except (UnicodeDecodeError, csv.Error) as error:
            report.problem(spec.name, line_after + 1, "-", f"riga illeggibile: {error}")
    if progress is not None:
        progress(spec.name, 1.0)
    return rows


def check_header(spec, header, report):
    good = True
    for name in header:
        extra = bool(spec.extra_prefixes) and name.startswith(spec.extra_prefixes)
        if name not in spec.columns and not extra:
            report.problem(spec.name, 1, name, "colonna sconosciuta")
            good = False
    for name, column in spec.columns.items():
        if column.required and name not in header:
            report.problem(spec.name, 1, name, "colonna obbligatoria mancante")
            good = False
    if len(set(header)) != len(header):
        report.problem(spec.name, 1, "-", "colonne ripetute")
        good = False
    return good


def parse_row(spec, positions, cells, line, report, times):
    if len(cells) != len(positions):
        report.problem(spec.name, line, "-", f"{len(cells)} campi invece di {len(positions)}")
        return None
    values, extra, good = {}, {}, True
    for (_index, name, column), cell in zip(positions, cells):
        cell = cell.strip()
        if column is None:  # tech_* / contract_*
            if cell:
                extra[name] = cell
            continue
        if not cell:
            if column.required:
                report.problem(spec.name, line, name, "obbligatorio, è vuoto")
                good = False
            values[name] = column.default
            continue
        try:
            if name == "start":
                values[name] = times.parse(cell, values.get("supply_point_code"))
            else:
                values[name] = column.parse(cell)
        except Problem as problem:
            report.problem(spec.name, line, name, str(problem))
            good = False
    if not good:
        return None
    if spec.name == "supply_points.csv":
        try:
            values["pod_pdr"] = identifiers.clean_pod_pdr(values["pod_pdr"], values["commodity"])
        except identifiers.InvalidCode as error:
            report.problem(spec.name, line, "pod_pdr", str(error))
            return None
    return Row(line, values, extra)


def check_duplicates(spec, rows, report, key=None):
    key = key or (lambda row: tuple(row.values[k] for k in spec.key))
    seen = {}
    unique = []
    for row in rows:
        k = key(row)
        if k in seen:
            report.problem(spec.name, row.line, "/".join(spec.key), f"ripete la riga {seen[k]}")
        else:
            seen[k] = row.line
            unique.append(row)
    return unique


def fast_measure_row(header, stored):
    """measures.csv's fast path (8.76 million rows a year for 1,000 points): a row that is
    plainly right becomes a staging tuple at once (`stored` gives the start's stored form);
    anything else returns None and gets the full check. It accepts nothing that check would
    refuse."""
    column = {name: index for index, name in enumerate(header)}
    width = len(header)
    code_at, start_at, kwh_at = column["supply_point_code"], column["start"], column["kwh"]
    minutes_at, quality_at = column.get("interval_minutes"), column.get("quality")

    def fast(cells, times, line):
        if len(cells) != width:
            return None
        code, kwh = cells[code_at].strip(), cells[kwh_at].strip()
        minutes = cells[minutes_at].strip() if minutes_at is not None else ""
        quality = cells[quality_at].strip() if quality_at is not None else ""
        if (not code or len(code) > 30 or minutes not in ("60", "15", "") or quality not in ("actual", "estimated", "")
                or not PLAIN_NUMBER.fullmatch(kwh)):
            return None
        try:
            start = times.parse(cells[start_at].strip(), code)  # last: it remembers the point's hours
        except Problem:
            return None
        return (line, code, stored(start), float(kwh.replace(",", ".")), int(minutes or 60), quality or "actual")

    return fast


# --- the run ----------------------------------------------------------------------------------------

def collect(paths):
    """The contract's files among `paths` (files or folders), in dependency order."""
    found, unknown = {}, []
    for path in map(Path, paths):
        candidates = sorted(path.iterdir()) if path.is_dir() else [path]
        for candidate in candidates:
            if not candidate.exists():
                unknown.append(candidate)
            elif candidate.name in SPECS:
                found[candidate.name] = candidate
            elif not path.is_dir():
                unknown.append(candidate)
    return [found[name] for name in ORDER if name in found], unknown


def run(paths, file_store, progress=None):
    """Import the files; returns a Report. Nothing is written when report.problems is not empty."""
    report = Report()
    files, unknown = collect(paths)
    for path in unknown:
        reason = "non è un file del tracciato (" + ", ".join(ORDER) + ")" if path.exists() else "il file non esiste"
        report.problem(str(path), 0, "-", reason)
    if not files and not unknown:
        report.problem("-", 0, "-", "nessun file del tracciato trovato")
    if report.problems:
        return report
    importing = ImportRun(report, FileStore(file_store), progress)
    try:
        importing.read(files)
        if not report.problems:
            importing.write()
    finally:
        importing.drop_staging()  # also after a failure: pooled connections live on
    return report


class ImportRun:
    new_invoices = ()  # the rows of invoices.csv this run added (for the customers' mail)
    validated_self_readings = ()  # ids of customers' pending readings this run validated (their mail)

    def __init__(self, report, store, progress):
        self.report = report
        self.store = store
        self.progress = progress
        self.rows = {}  # file name -> rows
        self.folders = {}  # file name -> its folder (PDFs are relative to it)
        self.files = {}  # (file name, line) -> (stored path, sha256) for named files
        self.database = db_wrapper.database
        self.staged_measures = False

    # Phase 1: read and check, writing nothing but the staging table (a temporary one).

    def read(self, files):
        for path in files:
            spec = SPECS[path.name]
            self.folders[spec.name] = path.parent
            if spec.name == "measures.csv":
                self.stage_measures(path, spec)
            else:
                rows = read_file(path, spec, self.report, self.progress)
                self.rows[spec.name] = check_duplicates(spec, rows, self.report, self.key_function(spec))
        self.check_references()
        self.check_named_files()

    @staticmethod
    def key_function(spec):
        if spec.name == "invoices.csv":  # an invoice number is unique within its issue year
            return lambda row: (row.values["number"], row.values["issue_date"].year)
        return None

    def known_codes(self, file_name, column, model_field):
        in_run = {row.values[column] for row in self.rows.get(file_name, [])}
        return in_run | {code for (code,) in model_field.model.select(model_field).tuples()}

    def check_references(self):
        customers = self.known_codes("customers.csv", "customer_code", Customer.code)
        points = self.known_codes("supply_points.csv", "code", SupplyPoint.code)
        owner = {code: customer for code, customer in
                 SupplyPoint.select(SupplyPoint.code, Customer.code).join(Customer).tuples()}
        owner.update({row.values["code"]: row.values["customer_code"] for row in self.rows.get("supply_points.csv", [])})
        for name in ("supply_points.csv", "invoices.csv", "documents.csv"):
            for row in self.rows.get(name, []):
                code = row.values.get("customer_code")
                if code and code not in customers:
                    self.report.problem(name, row.line, "customer_code", f"il cliente {code} non esiste")
        for name in ("invoices.csv", "readings.csv"):
            for row in self.rows.get(name, []):
                code = row.values.get("supply_point_code")
                if not code:
                    continue
                if code not in points:
                    self.report.problem(name, row.line, "supply_point_code", f"il punto di fornitura {code} non esiste")
                elif name == "invoices.csv" and owner.get(code) != row.values["customer_code"]:
                    self.report.problem(name, row.line, "supply_point_code",
                                        f"il punto {code} non è del cliente {row.values['customer_code']}")
        for row in self.rows.get("documents.csv", []):
            section = row.values["section"]
            problem = Document.customer_problem(section, bool(row.values.get("customer_code")))
            if problem:  # the file's own codes, for whoever fixes the file
                self.report.problem("documents.csv", row.line, "customer_code", {
                    "required": f"obbligatorio per la sezione {section}",
                    "forbidden": f"la sezione {section} è per tutti: lascialo vuoto"}[problem])
        if self.staged_measures:
            self.check_staged_measures(points)

    def check_named_files(self):
        for name, column, allowed in (("invoices.csv", "pdf", (".pdf",)), ("documents.csv", "file", tuple(EXTENSIONS))):
            for row in self.rows.get(name, []):
                relative = row.values.get(column)
                if not relative:
                    continue
                source = (self.folders[name] / relative).resolve()
                if self.folders[name].resolve() not in source.parents:
                    self.report.problem(name, row.line, column, "il file deve stare nella cartella del CSV")
                    continue
                problem, sha256 = self.store.check(source, allowed)
                if problem:
                    self.report.problem(name, row.line, column, problem)
                else:
                    self.files[(name, row.line)] = (source, sha256)

    # measures: streamed into a temporary table

    def stage_measures(self, path, spec):
        self.create_staging()
        batch = []
        sqlite = is_sqlite(self.database)

        def flush():
            self.insert_staging(batch)
            batch.clear()

        stored_form = {}  # SQLite keeps timestamps as text; a year has only 8,760 distinct hours

        def stored(start):
            if not sqlite:
                return start
            text = stored_form.get(start)
            if text is None:
                text = stored_form[start] = start.strftime("%Y-%m-%d %H:%M:%S")
            return text

        def on_row(row):
            if isinstance(row, Row):  # a row that went through the full check
                v = row.values
                row = (row.line, v["supply_point_code"], stored(v["start"]), v["kwh"],
                       int(v["interval_minutes"]), v["quality"])
            batch.append(row)
            if len(batch) >= 50000:
                flush()

        read_file(path, spec, self.report, self.progress, on_row=on_row,
                  fast_row=lambda header: fast_measure_row(header, stored))
        flush()
        self.staged_measures = True

    def create_staging(self):
        self.database.execute_sql("DROP TABLE IF EXISTS import_measure")
        self.database.execute_sql(
            "CREATE TEMPORARY TABLE import_measure (line INTEGER, supply_point_code VARCHAR(30), "
            "start TIMESTAMP, kwh REAL, interval_minutes INTEGER, quality VARCHAR(9))"  # REAL: Measure.kwh's type
        )

    def insert_staging(self, batch):
        if not batch:
            return
        if is_sqlite(self.database):
            with self.database.atomic():  # the temp schema only: no lock on the portal's tables
                self.database.cursor().executemany("INSERT INTO import_measure VALUES (?, ?, ?, ?, ?, ?)", batch)
            return
        buffer = io.StringIO()
        for line, point, start, kwh, minutes, quality in batch:
            buffer.write(f"{line}\t{point}\t{start.isoformat(' ')}\t{kwh!r}\t{minutes}\t{quality}\n")
        buffer.seek(0)
        self.database.cursor().copy_expert("COPY import_measure FROM STDIN", buffer)

    def check_staged_measures(self, known_points):
        sql = self.database.execute_sql
        for code, _line in sql("SELECT supply_point_code, MIN(line) FROM import_measure GROUP BY supply_point_code"):
            if code not in known_points:
                for (bad_line,) in sql("SELECT line FROM import_measure WHERE supply_point_code = %s ORDER BY line"
                                       .replace("%s", self.database.param), (code,)):
                    self.report.problem("measures.csv", bad_line, "supply_point_code",
                                        f"il punto di fornitura {code} non esiste")
        for code, start, first, _lines in sql(
            "SELECT supply_point_code, start, MIN(line), COUNT(*) FROM import_measure "
            "GROUP BY supply_point_code, start HAVING COUNT(*) > 1"
        ):
            for (line,) in sql("SELECT line FROM import_measure WHERE supply_point_code = %s AND start = %s "
                               "AND line > %s ORDER BY line".replace("%s", self.database.param), (code, start, first)):
                self.report.problem("measures.csv", line, "supply_point_code/start", f"ripete la riga {first}")

    def drop_staging(self):
        if self.staged_measures:
            self.database.execute_sql("DROP TABLE IF EXISTS import_measure")

    # Phase 2: write, in one transaction.

    def write(self):
        with write_transaction():
            self.write_customers()
            self.write_supply_points()
            self.write_invoices()
            self.write_readings()
            if self.staged_measures:
                self.merge_measures()
            self.write_documents()
            notify_new_invoices(self.new_invoices)  # in the same transaction: mail iff invoices
            self_readings.validated_by_import(self.validated_self_readings)
        refresh_statistics()

    def upsert(self, file_name, model, rows, key_of, fields_of, existing):
        """Insert what is new, update what changed; `existing` maps key -> model instance."""
        added = updated = unchanged = 0
        new_rows = []
        for row in rows:
            fields = fields_of(row)
            current = existing.get(key_of(row))
            if current is None:
                new_rows.append(fields)
                added += 1
                continue
            # __data__ holds the stored values, foreign keys as ids: no query per row.
            changes = {name: value for name, value in fields.items() if current.__data__.get(name) != value}
            if changes:
                model.update(**changes).where(model.id == current.id).execute()
                updated += 1
            else:
                unchanged += 1
        for start in range(0, len(new_rows), 500):
            model.insert_many(new_rows[start:start + 500]).execute()
        if file_name in self.rows:
            self.report.summary[file_name] = (added, updated, unchanged)

    @staticmethod
    def present(row, mapping):
        """Only the columns the file has: a column left out keeps the stored value."""
        return {field_name: row.values[column] for column, field_name in mapping.items() if column in row.values}

    def customer_ids(self):
        return dict(Customer.select(Customer.code, Customer.id).tuples())

    def point_ids(self):
        return dict(SupplyPoint.select(SupplyPoint.code, SupplyPoint.id).tuples())

    def write_customers(self):
        rows = self.rows.get("customers.csv", [])
        mapping = {name: name for name in SPECS["customers.csv"].columns if name != "customer_code"}
        mapping["customer_code"] = "code"
        existing = {c.code: c for c in Customer.select()}
        # A contact the customer changed in the portal is left alone while the billing system
        # has not taken it yet (contacts.import_keeps says until when).
        incoming = {existing[r.values["customer_code"]].id: {f: r.values[f] for f in contacts.FIELDS if f in r.values}
                    for r in rows if r.values["customer_code"] in existing}
        keeps = contacts.import_keeps(incoming) if incoming else {}

        def fields(row):
            values = self.present(row, mapping)
            current = existing.get(row.values["customer_code"])
            for name in keeps.get(current.id if current else None, ()):
                values.pop(name, None)
            return values

        self.upsert("customers.csv", Customer, rows, lambda r: r.values["customer_code"], fields, existing)
        kept = sum(len(names) for names in keeps.values())
        if kept:
            self.report.notes.append(f"customers.csv: kept {kept} contact value(s) changed in the portal "
                                     "and not yet in the billing system (flask export contacts)")

    def write_supply_points(self):
        rows = self.rows.get("supply_points.csv", [])
        customers = self.customer_ids()
        mapping = {name: name for name in SPECS["supply_points.csv"].columns if name != "customer_code"}

        def fields(row):
            values = self.present(row, mapping)
            values["customer"] = customers[row.values["customer_code"]]
            values["technical_data"] = labelled(row.extra, "tech_")
            values["contract_data"] = labelled(row.extra, "contract_")
            return values

        existing = {p.code: p for p in SupplyPoint.select()}
        self.upsert("supply_points.csv", SupplyPoint, rows, lambda r: r.values["code"], fields, existing)

    def write_invoices(self):
        rows = self.rows.get("invoices.csv", [])
        if not rows:
            return
        customers, points = self.customer_ids(), self.point_ids()
        mapping = {name: name for name in SPECS["invoices.csv"].columns
                   if name not in ("customer_code", "supply_point_code", "pdf")}

        def fields(row):
            values = self.present(row, mapping)
            values["year"] = row.values["issue_date"].year
            values["customer"] = customers[row.values["customer_code"]]
            if "supply_point_code" in row.values:
                code = row.values["supply_point_code"]
                values["supply_point"] = points[code] if code else None
            if "pdf" in row.values:
                named = self.files.get(("invoices.csv", row.line))
                values["pdf_path"] = self.store.store(*named) if named else None
                values["pdf_sha256"] = named[1] if named else None
            return values

        years = {row.values["issue_date"].year for row in rows}
        existing = {}
        for invoice in Invoice.select().where(Invoice.year.in_(sorted(years))):
            existing[(invoice.number, invoice.year)] = invoice
        key = lambda r: (r.values["number"], r.values["issue_date"].year)  # noqa: E731
        self.upsert("invoices.csv", Invoice, rows, key, fields, existing)
        self.new_invoices = [row.values for row in rows if key(row) not in existing]

    def write_readings(self):
        rows = self.rows.get("readings.csv", [])
        if not rows:
            return
        points = self.point_ids()
        mapping = {"date": "date", "register": "register", "value": "value", "source": "source"}

        def fields(row):
            values = self.present(row, mapping)
            values["supply_point"] = points[row.values["supply_point_code"]]
            # What the billing system sends is validated: a customer's pending self-reading of
            # the same day and register is that row, now validated, not a second one.
            values["status"] = Reading.VALIDATED
            return values

        ids = sorted({points[r.values["supply_point_code"]] for r in rows})
        existing = {}
        for start in range(0, len(ids), 500):
            # A rejected self-reading is history: the billing system's reading is a new row.
            for reading in Reading.live().where(Reading.supply_point.in_(ids[start:start + 500])):
                existing[(reading.supply_point_id, reading.date, reading.register)] = reading
        key = lambda r: (points[r.values["supply_point_code"]], r.values["date"], r.values["register"])  # noqa: E731
        self.upsert("readings.csv", Reading, rows, key, fields, existing)
        sent_back = {key(row) for row in rows}
        self.validated_self_readings = [reading.id for reading_key, reading in existing.items()
                                        if reading.status == Reading.PENDING and reading_key in sent_back]

    def merge_measures(self):
        """Count, then upsert from the staging table: two statements for any number of rows."""
        sql = self.database.execute_sql
        differs = ("m.kwh <> s.kwh OR m.interval_minutes <> s.interval_minutes OR m.quality <> s.quality")
        staged = ("SELECT p.id AS supply_point_id, s.start, s.kwh, s.interval_minutes, s.quality "
                  "FROM import_measure s JOIN supplypoint p ON p.code = s.supply_point_code")
        counts = sql(
            "SELECT COUNT(*) - COUNT(m.id), "
            f"SUM(CASE WHEN m.id IS NOT NULL AND ({differs}) THEN 1 ELSE 0 END), COUNT(m.id) "
            f"FROM ({staged}) s LEFT JOIN measure m ON m.supply_point_id = s.supply_point_id AND m.start = s.start"
        ).fetchone()
        added, updated, matched = (int(n or 0) for n in counts)
        partitions.ensure_for_table(self.database, "import_measure")
        sql(
            "INSERT INTO measure (supply_point_id, start, kwh, interval_minutes, quality) "
            f"SELECT supply_point_id, start, kwh, interval_minutes, quality FROM ({staged}) s WHERE TRUE "
            "ON CONFLICT (supply_point_id, start) DO UPDATE SET kwh = excluded.kwh, "
            "interval_minutes = excluded.interval_minutes, quality = excluded.quality "
            "WHERE measure.kwh <> excluded.kwh OR measure.interval_minutes <> excluded.interval_minutes "
            "OR measure.quality <> excluded.quality"
        )
        self.report.summary["measures.csv"] = (added, updated, matched - updated)
        totals.update_from_staging(self.database)
        # Every point the file names was brought up to date, changed rows or not.
        SupplyPoint.update(measures_imported_at=utcnow()).where(SupplyPoint.code.in_(
            pw.SQL("(SELECT DISTINCT supply_point_code FROM import_measure)"))).execute()

    def write_documents(self):
        rows = self.rows.get("documents.csv", [])
        if not rows:
            return
        customers = self.customer_ids()
        today = rome_today()

        def stored(row):
            return self.store.store(*self.files[("documents.csv", row.line)])

        def fields(row):
            source, sha256 = self.files[("documents.csv", row.line)]
            code = row.values.get("customer_code")
            return {
                "file": stored(row),
                "source_name": row.values["file"],
                "title": row.values["title"],
                "section": row.values["section"],
                "customer": customers[code] if code else None,
                "published_on": row.values.get("published_on") or today,
                "period_start": row.values.get("period_start"),
                "period_end": row.values.get("period_end"),
                "content_type": CONTENT_TYPES[source.suffix.lower()],
                "size": source.stat().st_size,
                "sha256": sha256,
                "unpublished_at": None,
            }

        existing = {(d.source_name, d.customer_id): d for d in Document.select()}

        def key(row):
            code = row.values.get("customer_code")
            return (row.values["file"], customers[code] if code else None)

        self.upsert("documents.csv", Document, rows, key, fields, existing)


def notify_new_invoices(invoices):
    """One mail per run to each confirmed user of a customer who got new invoices (not one per
    invoice), unless they opted out in Dati Anagrafici."""
    import mailer

    by_customer = {}
    for values in invoices:
        by_customer.setdefault(values["customer_code"], []).append(values)
    if not by_customer:
        return
    link, settings = mailer.mail_link("invoices.invoices"), mailer.mail_link("account.customer_data")
    users = (User.select(User, Customer).join(Customer)
             .where(Customer.code.in_(list(by_customer)), User.confirmed_at.is_null(False),
                    User.disabled == False, User.notify_invoices == True))  # noqa: E712
    for user in users:
        listed = sorted(by_customer[user.customer.code], key=lambda v: v["issue_date"])
        mailer.queue(user.email, _l("Nuove fatture disponibili"), "new_invoices", language=user.language,
                     customer=user.customer, invoices=listed, link=link, settings_link=settings)


def labelled(extra, prefix):
    """tech_potenza_impegnata -> {"Potenza impegnata": value}, as JSON text."""
    data = {name[len(prefix):].replace("_", " ").capitalize(): value
            for name, value in extra.items() if name.startswith(prefix)}
    return json.dumps(data, ensure_ascii=False, sort_keys=True)
