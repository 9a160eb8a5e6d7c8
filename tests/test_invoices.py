"""Elenco fatture: the selected point's invoices, filters, totals of the whole filtered list,
paging with htmx, "Tutti i punti", the PDF (only to its customer) and the ZIP of PDFs."""
import io
import re
import zipfile
from datetime import date, timedelta
from decimal import Decimal

import pytest

import i18n
import importer
from models import Invoice
from tests.factories import PASSWORD, make_customer, make_invoice, make_supply_point, make_user, store_pdf
from tests.helpers import htmx_headers, login
from tests.import_data import pdf_bytes
from views.invoices import INVOICE_PAGE


@pytest.fixture
def data(app):
    customer = make_customer(code="005007")
    light = make_supply_point(customer, code="PR002874")
    gas = make_supply_point(customer, code="PR002875", commodity="gas")
    make_user(customer)
    for n in range(60):  # monthly since 2021 for the electricity point
        issue = date(2021, 1, 10) + timedelta(days=31 * n)
        pdf = store_pdf(app, pdf_bytes(f"Fattura {n}"))[0] if n % 10 == 0 else None
        make_invoice(customer, light, number=f"E{n:03d}", issue_date=issue, total=Decimal("10.00") + n,
                     due_date=issue + timedelta(days=20), status="paid" if n < 58 else "unpaid", pdf_path=pdf)
    make_invoice(customer, gas, number="G001", issue_date=date(2026, 1, 10), total=Decimal("99.99"))
    make_invoice(customer, None, number="C001", issue_date=date(2025, 6, 1), total=Decimal("5.00"), status="paid")
    other = make_customer(code="009999")
    foreign = make_invoice(other, make_supply_point(other), number="X001", pdf_path="ab/x.pdf")
    client = app.test_client()
    login(client, "005007", PASSWORD)
    return client, foreign


def numbers(html):
    return re.findall(r"<td[^>]*>([EGCX]\d{3})</td>", html)


def test_the_selected_points_invoices_newest_first_with_count_and_total(data):
    client, _ = data
    page = client.get("/fatture?sp=PR002874").get_data(as_text=True)
    shown = numbers(page)
    assert len(shown) == INVOICE_PAGE and shown[0] == "E059" and "G001" not in shown and "C001" not in shown
    assert "60 fatture" in page
    assert "totale €\xa02.370,00" in page  # the sum of all 60 (10+n for n < 60), not just the page's
    assert "Mostra altre" in page


def test_filters_by_year_and_status(data):
    client, _ = data
    page = client.get("/fatture?sp=PR002874&anno=2022").get_data(as_text=True)
    assert all(n in numbers(page) for n in ("E012", "E023"))
    assert f"{len(numbers(page))} fatture" in page
    unpaid = client.get("/fatture?sp=PR002874&stato=unpaid").get_data(as_text=True)
    assert numbers(unpaid) == ["E059", "E058"]
    overdue = client.get("/fatture?sp=PR002874&stato=overdue").get_data(as_text=True)
    assert numbers(overdue) == ["E059", "E058"] and "scaduta" in overdue  # due in 2025


def test_filtering_with_htmx_swaps_just_the_list(data):
    client, _ = data
    response = client.get("/fatture?sp=PR002874&anno=2021", headers=htmx_headers("invoice-list"))
    body = response.get_data(as_text=True)
    assert "<html" not in body and "<select" not in body and "E000" in body
    assert "HX-Target" in response.headers["Vary"]


def test_more_rows_with_htmx(data):
    client, _ = data
    shown = []
    for page in range(2, 60 // INVOICE_PAGE + 2):
        response = client.get(f"/fatture?sp=PR002874&pagina={page}", headers=htmx_headers("invoice-more"))
        body = response.get_data(as_text=True)
        assert body.strip().startswith("<tr") and ("Mostra altre" in body) == (page * INVOICE_PAGE < 60)
        shown += numbers(body)
    assert shown == [f"E{n:03d}" for n in range(59 - INVOICE_PAGE, -1, -1)]  # the rest, newest first, once each


def test_all_points_include_invoices_without_a_point(data):
    client, _ = data
    page = client.get("/fatture?sp=PR002874&ambito=tutti").get_data(as_text=True)
    assert "62 fatture" in page and "G001" in numbers(page) and "C001" in numbers(page)


def test_the_gas_point_shows_its_own(data):
    client, _ = data
    fragment = client.get("/fatture?sp=PR002875", headers=htmx_headers("frame")).get_data(as_text=True)
    assert numbers(fragment) == ["G001"] and "<html" not in fragment


def test_pdf_only_to_its_customer(data):
    client, foreign = data
    invoice = Invoice.get(Invoice.number == "E050")
    response = client.get(f"/fatture/{invoice.id}/pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.data == pdf_bytes("Fattura 50")
    assert "no-store" in response.headers["Cache-Control"]
    assert client.get(f"/fatture/{invoice.id}/pdf?scarica=1").headers["Content-Disposition"] == \
        "attachment; filename=Fattura-E050.pdf"
    assert client.get(f"/fatture/{foreign.id}/pdf").status_code == 404
    no_pdf = Invoice.get(Invoice.number == "E051")
    assert client.get(f"/fatture/{no_pdf.id}/pdf").status_code == 404
    assert client.get("/fatture/999999/pdf").status_code == 404
    page = client.get("/fatture?sp=PR002874&anno=2025").get_data(as_text=True)
    assert f'/fatture/{invoice.id}/pdf"' in page and f'/fatture/{no_pdf.id}/pdf"' not in page


def test_zip_of_the_filtered_lists_pdfs(data):
    client, _ = data
    response = client.get("/fatture/pdf.zip?sp=PR002874")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    assert sorted(archive.namelist()) == [f"Fattura-E{n:03d}.pdf" for n in range(0, 60, 10)]
    assert archive.read("Fattura-E050.pdf") == pdf_bytes("Fattura 50")
    only_2021 = zipfile.ZipFile(io.BytesIO(client.get("/fatture/pdf.zip?sp=PR002874&anno=2021").data))
    assert only_2021.namelist() == ["Fattura-E010.pdf", "Fattura-E000.pdf"]
    assert client.get("/fatture/pdf.zip?sp=PR002875").status_code == 303  # no PDFs there: back to the list


def test_home_page_latest_invoice_unpaid_total_and_small_chart(data):
    client, _ = data
    home = client.get("/?sp=PR002874").get_data(as_text=True)
    assert "Ultima fattura: E059" in home and "da pagare" in home and "scaduta" in home
    # Unpaid across all points: E058, E059 (68 + 69) and G001 (99.99).
    assert "3 fatture da pagare, in tutto €\xa0236,99." in home
    assert '<img class="small-chart" src="/consumi-recenti.svg?sp=PR002874"' in home
    svg = client.get("/consumi-recenti.svg?sp=PR002874")
    assert svg.mimetype == "image/svg+xml" and "Ultimi 12 mesi (kWh)" in svg.get_data(as_text=True)
    assert not re.search(r'(href|src)\s*=\s*"(https?:)?//', svg.get_data(as_text=True))
    assert client.get("/consumi-recenti.svg?sp=PR999999").status_code == 404


def test_twelve_months_before_this_one(app):
    import charts

    customer = make_customer()
    point = make_supply_point(customer)
    make_invoice(customer, point, issue_date=date(2026, 3, 5), period_start=date(2026, 2, 1),
                 energy_f1_kwh=Decimal(10), energy_f2_kwh=Decimal(5), energy_f3_kwh=Decimal(1))
    months = charts.last_twelve_months(customer, point, date(2026, 11, 23))
    assert [(y, m) for y, m, _ in months][0] == (2025, 11) and [(y, m) for y, m, _ in months][-1] == (2026, 10)
    assert dict(((y, m), v) for y, m, v in months)[(2026, 2)] == Decimal(16)
    assert dict(((y, m), v) for y, m, v in months)[(2026, 3)] is None


def test_counts_totals_and_figures_match_the_imported_files(app, tmp_path):
    """What the billing system's files say is what the customer reads: the list's count and
    total, the PDFs, and Prelievi Fatturati's figures (Italian dialect: 12,25 and 31/01/2026)."""
    import csv as csv_module

    from tests.import_data import write_data_set

    folder = tmp_path / "set"
    written = write_data_set(folder, customers=2, months=4, italian=True)
    with app.app_context():
        report = importer.run([str(folder)], app.config["FILE_STORE"])
    assert report.problems == []
    with open(folder / "invoices.csv", encoding="utf-8-sig") as f:
        rows = list(csv_module.DictReader(f, delimiter=";"))
    code = written["customers"][0]
    mine = [r for r in rows if r["customer_code"] == code]
    light = next(r["supply_point_code"] for r in mine if r["energy_f1_kwh"])
    make_user(Invoice.get(Invoice.number == mine[0]["number"]).customer)
    client = app.test_client()
    login(client, code, PASSWORD)

    def amount(text):
        return Decimal(text.replace(",", "."))

    for scope, expected in (("", [r for r in mine if r["supply_point_code"] == light]), ("&ambito=tutti", mine)):
        page = client.get(f"/fatture?sp={light}{scope}").get_data(as_text=True)
        total = sum(amount(r["total"]) for r in expected)
        assert f"{len(expected)} fatture" in page
        assert "totale " + i18n.money(total, "it") in page
        assert sorted(re.findall(r"<td[^>]*>(FT2026-\d+)</td>", page)) == sorted(r["number"] for r in expected)
        assert page.count(">PDF</a>") == sum(1 for r in expected if r["pdf"])

    with_pdf = next(r for r in mine if r["pdf"])
    invoice = Invoice.get(Invoice.number == with_pdf["number"])
    assert client.get(f"/fatture/{invoice.id}/pdf").data == (folder / with_pdf["pdf"]).read_bytes()

    # Prelievi Fatturati: each invoice in its period's start month, bands as the file gives them.
    exported = client.get(f"/prelievi-fatturati.csv?sp={light}&anno=2026").get_data(as_text=True).lstrip("\ufeff")
    lines = exported.splitlines()[1:]
    points_rows = [r for r in mine if r["supply_point_code"] == light]
    assert len(lines) == len(points_rows)
    for line, row in zip(lines, sorted(points_rows, key=lambda r: r["period_start"][3:5])):
        month, f1, f2, f3, total, peak = line.split(";")
        assert month == f"2026-{row['period_start'][3:5]}"
        bands = [amount(row[f"energy_f{n}_kwh"]) for n in (1, 2, 3)]
        assert [amount(f1), amount(f2), amount(f3)] == bands and amount(total) == sum(bands)
        assert amount(peak) == amount(row["peak_power_kw"])
