"""Prelievi Fatturati: the figures per month (each invoice in its period's start month), the SVG
chart with no outside reference, the table, the year switch and the CSV for Italian Excel."""
import re
from datetime import date, timedelta
from decimal import Decimal

import pytest

from i18n import rome_today
from tests.factories import PASSWORD, make_customer, make_invoice, make_supply_point, make_user
from tests.helpers import htmx_headers, login


@pytest.fixture
def client(app):
    customer = make_customer(code="005007")
    light = make_supply_point(customer, code="PR002874")
    gas = make_supply_point(customer, code="PR002875", commodity="gas")
    make_user(customer)
    for year, base in ((2025, 100), (2026, 200)):
        for month in (1, 2, 7):
            make_invoice(customer, light, issue_date=date(year, month, 28), period_start=date(year, month, 1),
                         period_end=date(year, month, 28), energy_f1_kwh=Decimal(base + month),
                         energy_f2_kwh=Decimal("50.5"), energy_f3_kwh=Decimal(1000), peak_power_kw=Decimal("3.2"))
    # Issued in January 2027 for December 2026: counts in December 2026.
    make_invoice(customer, light, issue_date=date(2027, 1, 10), period_start=date(2026, 12, 1),
                 period_end=date(2026, 12, 31), energy_f1_kwh=Decimal(1), energy_f2_kwh=Decimal(1), energy_f3_kwh=Decimal(1))
    make_invoice(customer, gas, issue_date=date(2026, 2, 10), period_start=date(2026, 1, 1), gas_smc=Decimal("180.25"))
    make_supply_point(make_customer(code="009999"), code="PR999999")
    client = app.test_client()
    login(client, "005007", PASSWORD)
    return client


def test_table_by_month_with_last_year(client):
    page = client.get("/prelievi-fatturati?sp=PR002874&anno=2026&vista=tabella").get_data(as_text=True)
    january = re.search(r"<tr><td[^>]*>gen</td>(.*?)</tr>", page, re.S).group(1)
    cells = re.findall(r'<td class="num"[^>]*>([^<]*)</td>', january)
    # F1 F2 F3 total peak, then 2025's total; halves round to even (50.5 -> 50, 1251.5 -> 1252).
    assert cells == ["201", "50", "1.000", "1.252", "3,2", "1.152"]
    december = re.search(r"<tr><td[^>]*>dic</td>(.*?)</tr>", page, re.S).group(1)
    assert re.findall(r'<td class="num"[^>]*>([^<]*)</td>', december)[3] == "3"
    assert "Totale 2026: 3.764 kWh" in page and "stessi mesi del 2025: 3.462 kWh" in page and "(+8,8%)" in page
    assert "tutto il 2025" not in page  # 2025 was billed in no other month


def test_a_year_still_being_billed_is_compared_with_the_same_months(client):
    """2025 has January, February and July; 2024 only January: 2025 is set against January 2024."""
    from models import Invoice, SupplyPoint

    point = SupplyPoint.get(SupplyPoint.code == "PR002874")
    for month, f1 in ((1, 500), (9, 700)):
        Invoice.create(customer=point.customer_id, supply_point=point, number=f"OLD{month}", year=2024,
                       issue_date=date(2024, month, 28), period_start=date(2024, month, 1), total=10,
                       energy_f1_kwh=Decimal(f1), energy_f2_kwh=0, energy_f3_kwh=0)
    page = client.get("/prelievi-fatturati?sp=PR002874&anno=2025&vista=tabella").get_data(as_text=True)
    # 2025: (101 + 102 + 107) + 3 x 1050.5 = 3461.5; January 2024 = 500; all of 2024 = 1200.
    assert "Totale 2025: 3.462 kWh" in page and "stessi mesi del 2024: 500 kWh" in page
    assert "(+592,3%)" in page and "tutto il 2024: 1.200 kWh" in page


def test_chart_view_and_switch_in_place(client):
    page = client.get("/prelievi-fatturati?sp=PR002874&anno=2026").get_data(as_text=True)
    assert '<img src="/prelievi-fatturati.svg?sp=PR002874&amp;anno=2026"' in page and 'alt="' in page
    fragment = client.get("/prelievi-fatturati?sp=PR002874&anno=2025&vista=tabella", headers=htmx_headers("withdrawals"))
    body = fragment.get_data(as_text=True)
    assert "<html" not in body and "<table" in body and "Totale 2025" in body
    assert "HX-Target" in fragment.headers["Vary"]


def test_the_chart_is_an_svg_with_no_outside_reference(client):
    response = client.get("/prelievi-fatturati.svg?sp=PR002874&anno=2026")
    svg = response.get_data(as_text=True)
    assert response.mimetype == "image/svg+xml"
    assert "Prelievi fatturati 2026, PR002874" in svg and ">F1<" in svg and ">gen<" in svg
    assert not re.search(r'(href|src)\s*=\s*"(https?:)?//', svg)  # nothing fetched from anywhere
    assert "script-src" not in response.headers["Content-Security-Policy"]
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_gas_shows_smc(client):
    page = client.get("/prelievi-fatturati?sp=PR002875&anno=2026&vista=tabella").get_data(as_text=True)
    assert "180" in page and "Smc" in page and "F1" not in page


def test_csv_for_italian_excel(client):
    response = client.get("/prelievi-fatturati.csv?sp=PR002874&anno=2026")
    assert response.data.startswith("\ufeff".encode())
    lines = response.get_data(as_text=True).lstrip("\ufeff").splitlines()
    assert lines[0] == "Mese;F1 kWh;F2 kWh;F3 kWh;Totale kWh;Potenza massima kW"
    assert lines[1] == "2026-01;201,000;50,500;1000,000;1251,500;3,200"
    assert len(lines) == 1 + 4  # January, February, July, December
    assert "attachment; filename=prelievi-PR002874-2026.csv" == response.headers["Content-Disposition"]


def test_another_customers_point_is_404(client):
    for url in ("/prelievi-fatturati?sp=PR999999", "/prelievi-fatturati.svg?sp=PR999999", "/prelievi-fatturati.csv?sp=PR999999"):
        assert client.get(url).status_code == 404


def test_year_on_year_comparison_chart(client):
    page = client.get("/prelievi-fatturati?sp=PR002874&anno=2026&vista=confronto", headers=htmx_headers("withdrawals"))
    body = page.get_data(as_text=True)
    assert '<img src="/prelievi-fatturati.svg?sp=PR002874&amp;anno=2026&amp;vista=confronto"' in body
    assert "2026 accanto a 2025" in body  # the text alternative
    assert 'aria-current="true">Confronto' in body
    svg = client.get("/prelievi-fatturati.svg?sp=PR002874&anno=2026&vista=confronto").get_data(as_text=True)
    assert "Prelievi fatturati 2026 e 2025, PR002874" in svg
    assert ">2025<" in svg and ">2026<" in svg and ">F1<" not in svg  # one series a year, totals
    assert not re.search(r'(href|src)\s*=\s*"(https?:)?//', svg)
    # January's bars: 2025's total (101 + 50.5 + 1000) and 2026's (201 + 50.5 + 1000), labelled
    # as Italian writes numbers.
    values = re.findall(r'<desc class="value">([^<]+)</desc>', svg)
    assert "1.151,5" in values and "1.251,5" in values


def test_the_year_switch_keeps_the_view(client):
    body = client.get("/prelievi-fatturati?sp=PR002874&anno=2025&vista=confronto").get_data(as_text=True)
    assert '<input type="hidden" name="vista" value="confronto">' in body
    assert "vista=confronto" in body and "2025 accanto a 2024" in body


def scale_top(svg):
    """The value axis' highest mark, read from pygal's SVG (Italian numbers: 1.250,5)."""
    axis = re.search(r'<g class="axis y[^"]*">(.*?)</g></g>(?!<g class="guides")', svg, re.S)
    assert axis, "no value axis in the chart"
    marks = re.findall(r'<text[^>]*>([\d.,]+)</text>', axis.group(1))
    assert marks, "no marks on the value axis"
    return max(Decimal(mark.replace(".", "").replace(",", ".")) for mark in marks)


@pytest.mark.parametrize("url, largest", [
    # Stacked bands: the tallest month is July 2026's 207 + 50.5 + 1000 kWh.
    ("/prelievi-fatturati.svg?sp=PR002874&anno=2026", Decimal("1257.5")),
    ("/prelievi-fatturati.svg?sp=PR002874&anno=2025", Decimal("1157.5")),
    # Side by side: the larger of each month's two totals.
    ("/prelievi-fatturati.svg?sp=PR002874&anno=2026&vista=confronto", Decimal("1257.5")),
    ("/prelievi-fatturati.svg?sp=PR002875&anno=2026", Decimal("180.25")),
    ("/prelievi-fatturati.svg?sp=PR002875&anno=2026&vista=confronto", Decimal("180.25")),
])
def test_every_charts_scale_covers_its_tallest_bar(client, url, largest):
    """The axis' top mark is at or above the largest value, and not absurdly far above it."""
    response = client.get(url)
    assert response.status_code == 200 and response.mimetype == "image/svg+xml"
    top = scale_top(response.get_data(as_text=True))
    assert largest <= top < 2 * largest


def test_the_home_pages_chart_scale_covers_its_tallest_bar(app):
    """The small chart of the last twelve months, with a month past a round mark (361 kWh)."""
    today = rome_today()
    customer = make_customer(code="005010")
    point = make_supply_point(customer, code="PR005010")
    make_user(customer)
    last_month = date(today.year, today.month, 1) - timedelta(days=1)
    for months_back, kwh in ((0, 361), (1, 120)):
        start = date(last_month.year, last_month.month, 1) - timedelta(days=31 * months_back)
        start = start.replace(day=1)
        make_invoice(customer, point, issue_date=today, period_start=start, energy_f1_kwh=Decimal(kwh),
                     energy_f2_kwh=Decimal(0), energy_f3_kwh=Decimal(0))
    client = app.test_client()
    assert login(client, "005010", PASSWORD).status_code == 303
    response = client.get("/consumi-recenti.svg?sp=PR005010")
    assert response.status_code == 200
    assert Decimal(361) <= scale_top(response.get_data(as_text=True)) < 2 * 361


def test_scale_marks_are_round_and_cover_the_value():
    import charts

    for largest in (0.4, 7, 59, 100, 360, 361, 999, 1257.5, 45678):
        marks = charts.scale_marks(largest)
        assert marks[0] == 0 and marks[-1] >= largest and 2 <= len(marks) <= 7
        step = marks[1] - marks[0]
        assert all(abs((b - a) - step) < 1e-9 for a, b in zip(marks, marks[1:]))


# Each year's total as the fixture bills it (each invoice in its period's start month).
YEAR_TOTALS = {2026: "3.764", 2025: "3.462"}


@pytest.mark.parametrize("year", sorted(YEAR_TOTALS))
@pytest.mark.parametrize("view", ["grafico", "confronto", "tabella"])
@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_every_year_and_view_as_a_plain_request_and_with_htmx(client, year, view, htmx):
    """The year select and the view links: 200, the year's own figures, the controls showing
    the choice (htmx swaps #withdrawals, form included)."""
    headers = {"HX-Request": "true", "HX-Target": "withdrawals", "HX-Trigger": "anno",
               "HX-Current-URL": "http://localhost/prelievi-fatturati?sp=PR002874"} if htmx else {}
    response = client.get(f"/prelievi-fatturati?sp=PR002874&anno={year}&vista={view}", headers=headers)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert ("<html" in html) != htmx
    assert re.findall(r"<option selected>(\d{4})</option>", html) == [str(year)]
    current = re.findall(r'<a [^>]*aria-current="true"[^>]*>', html)
    assert len(current) == 1 and f"vista={view}\"" in current[0]
    assert f"Totale {year}: {YEAR_TOTALS[year]} kWh" in html
    if view == "tabella":
        assert f"Prelievi fatturati {year} per mese (kWh)" in html and "<img" not in html
    else:
        image = re.search(r'<img src="([^"]+)"', html).group(1).replace("&amp;", "&")
        assert f"anno={year}" in image and ("vista=confronto" in image) == (view == "confronto")
        assert client.get(image).status_code == 200


def test_csv_writes_a_credit_notes_negative_figures_as_numbers(client):
    """A credit note takes kWh back: -50,000 is a number for Excel, not a formula, so it is
    written without the apostrophe that text starting with '-' gets. (The file has no text
    anyone types: months and figures only.)"""
    from models import Customer, SupplyPoint

    point = SupplyPoint.get(SupplyPoint.code == "PR002874")
    make_invoice(Customer.get_by_id(point.customer_id), point, issue_date=date(2026, 3, 31),
                 period_start=date(2026, 3, 1), period_end=date(2026, 3, 31), total=Decimal("-12.30"),
                 energy_f1_kwh=Decimal("-50"), energy_f2_kwh=Decimal(0), energy_f3_kwh=Decimal("-0.5"))
    response = client.get("/prelievi-fatturati.csv?sp=PR002874&anno=2026")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    lines = response.get_data(as_text=True).lstrip("\ufeff").splitlines()
    assert lines[3] == "2026-03;-50,000;0,000;-0,500;-50,500;"  # no peak billed: empty
    assert not any(cell.startswith("'") for line in lines for cell in line.split(";"))
