"""A believable data set in the billing system's CSV format (DESIGN §4), for tests and bench.

write_data_set(folder) writes customers.csv, supply_points.csv, invoices.csv (with PDFs),
readings.csv, measures.csv and documents.csv; options scale it and switch the dialect
(semicolons, BOM, Italian decimals and dates) the contract allows.
"""
import csv
import io
import zipfile
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from stdnum import luhn
from stdnum.it import codicefiscale

from demo import minimal_pdf
from i18n import ROME


def tax_code(n):
    stem = f"RSSMRA{70 + n % 20:02d}A{1 + n % 28:02d}H199"
    return stem + codicefiscale.calc_check_digit(stem)


def vat_number(n):
    stem = f"{1000000 + n:07d}039"
    return stem + luhn.calc_check_digit(stem)


def pdf_bytes(title):
    """A small, valid one-page PDF (the demo's builder)."""
    return minimal_pdf(title, [title])


class Dialect:
    def __init__(self, italian=False):
        self.italian = italian
        self.separator = ";" if italian else ","
        self.encoding = "utf-8-sig" if italian else "utf-8"  # Excel's BOM

    def date(self, value):
        return value.strftime("%d/%m/%Y") if self.italian else value.isoformat()

    def number(self, value):
        text = str(value)
        return text.replace(".", ",") if self.italian else text


def write_csv(path, header, rows, dialect):
    with open(path, "w", encoding=dialect.encoding, newline="") as f:
        writer = csv.writer(f, delimiter=dialect.separator, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def write_data_set(folder, customers=3, months=3, days_of_measures=2, first_day=date(2026, 10, 24),
                   italian=False, measures_with_offset=False):
    """Returns a dict of what was written (codes and counts), for the assertions."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    dialect = Dialect(italian)
    customer_rows, point_rows, invoice_rows, reading_rows, document_rows = [], [], [], [], []
    points = []
    for n in range(customers):
        code = f"{200000 + n:06d}"
        if n % 3 == 2:
            customer_rows.append([code, f"FERRAMENTA {n} S.R.L.", "company", vat_number(n), vat_number(n),
                                  f"ditta{n}@example.it", "0544 123456", "", "", "VIA ROMA 1", "48121", "RAVENNA", "RA"])
        else:
            customer_rows.append([code, f"ROSSI MARIO {n}", "person", tax_code(n), "",
                                  f"cliente{n}@example.it", "", "", "333 1234567", "VIA PROVA 5", "48124", "RAVENNA", "RA"])
        for commodity in ("electricity", "gas"):
            k = len(points)
            point = f"PR{300000 + k:06d}"
            pod_pdr = f"IT001E{40000000 + k:08d}" if commodity == "electricity" else f"{12345678900000 + k:014d}"
            points.append((point, code, commodity))
            point_rows.append([point, code, commodity, pod_pdr, "VIA PROVA 5", "48124", "RAVENNA", "RA", "active",
                               dialect.date(date(2020, 1, 1)), "", "3 kW" if commodity == "electricity" else "G4",
                               "Casa Luce Fissa" if commodity == "electricity" else "Casa Gas Fissa"])
    sequence = 0
    for point, code, commodity in points:
        for m in range(months):
            sequence += 1
            period_start = date(2026, 1 + m, 1)
            period_end = date(2026, 2 + m, 1) - timedelta(days=1)
            issue = period_end + timedelta(days=10)
            number = f"FT2026-{sequence:06d}"
            pdf = f"pdf/{number}.pdf" if m == 0 else ""
            if pdf:
                (folder / "pdf").mkdir(exist_ok=True)
                (folder / pdf).write_bytes(pdf_bytes(number))
            energy = [str(100 + m), str(60 + m), str(80 + m)] if commodity == "electricity" else ["", "", ""]
            invoice_rows.append([number, code, point, dialect.date(issue), dialect.date(issue + timedelta(days=20)),
                                 dialect.date(period_start), dialect.date(period_end),
                                 dialect.number("%.2f" % (50 + sequence + 0.25)), "paid" if m < months - 1 else "unpaid",
                                 *energy, "3" if commodity == "electricity" else "",
                                 dialect.number("%.3f" % (40.5 + m)) if commodity == "gas" else "", pdf])
            for register in (("F1", "F2", "F3") if commodity == "electricity" else ("total",)):
                reading_rows.append([point, dialect.date(period_end), register,
                                     dialect.number("%.3f" % (1000 + 100 * m + 0.5)), "distributor"])
    measure_rows = []
    electricity = [p for p, _, commodity in points if commodity == "electricity"]
    start = datetime.combine(first_day, datetime.min.time(), ROME)
    end = datetime.combine(first_day + timedelta(days=days_of_measures), datetime.min.time(), ROME)
    for point in electricity:
        moment = start.astimezone(ZoneInfo("UTC"))
        while moment < end.astimezone(ZoneInfo("UTC")):
            local = moment.astimezone(ROME)
            stamp = local.isoformat() if measures_with_offset else local.strftime("%Y-%m-%d %H:%M")
            measure_rows.append([point, stamp, dialect.number("%.3f" % (0.2 + (local.hour % 12) / 10)), "60", "actual"])
            moment += timedelta(hours=1)
    (folder / "docs").mkdir(exist_ok=True)
    (folder / "docs/modulo-voltura.pdf").write_bytes(pdf_bytes("Modulo di voltura"))
    (folder / "docs/report-2026.pdf").write_bytes(pdf_bytes("Report 2026"))
    document_rows.append(["docs/modulo-voltura.pdf", "Modulo di voltura", "modulistica", "", dialect.date(date(2026, 3, 1)), "", ""])
    document_rows.append(["docs/report-2026.pdf", "Report consumi 2026", "report", customer_rows[0][0],
                          dialect.date(date(2026, 7, 1)), dialect.date(date(2026, 1, 1)), dialect.date(date(2026, 6, 30))])

    write_csv(folder / "customers.csv", ["customer_code", "name", "kind", "tax_code", "vat_number", "email", "phone",
                                         "fax", "mobile", "address", "postcode", "city", "province"], customer_rows, dialect)
    write_csv(folder / "supply_points.csv", ["code", "customer_code", "commodity", "pod_pdr", "address", "postcode", "city",
                                             "province", "status", "start_date", "end_date", "tech_potenza_impegnata",
                                             "contract_offerta"], point_rows, dialect)
    write_csv(folder / "invoices.csv", ["number", "customer_code", "supply_point_code", "issue_date", "due_date",
                                        "period_start", "period_end", "total", "status", "energy_f1_kwh", "energy_f2_kwh",
                                        "energy_f3_kwh", "peak_power_kw", "gas_smc", "pdf"], invoice_rows, dialect)
    write_csv(folder / "readings.csv", ["supply_point_code", "date", "register", "value", "source"], reading_rows, dialect)
    write_csv(folder / "measures.csv", ["supply_point_code", "start", "kwh", "interval_minutes", "quality"],
              measure_rows, dialect)
    write_csv(folder / "documents.csv", ["file", "title", "section", "customer_code", "published_on", "period_start",
                                         "period_end"], document_rows, dialect)
    return {
        "customers": [row[0] for row in customer_rows],
        "points": [p for p, _, _ in points],
        "counts": {"customers.csv": len(customer_rows), "supply_points.csv": len(point_rows),
                   "invoices.csv": len(invoice_rows), "readings.csv": len(reading_rows),
                   "measures.csv": len(measure_rows), "documents.csv": len(document_rows)},
    }


def zipped(folder):
    """The data set's folder as a zip (in a subfolder export/), as an operator would upload it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in Path(folder).rglob("*"):
            if path.is_file():
                archive.write(path, "export/" + str(path.relative_to(folder)))
    buffer.seek(0)
    return buffer
