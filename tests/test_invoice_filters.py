"""Elenco fatture's filters, every value of every control, as a customer uses them: a plain GET
(JavaScript off: the form submits), and the request htmx really sends when a select changes
(HX-Request, HX-Target, HX-Current-URL). For each: 200, exactly the expected rows, count and
total, and the control showing the chosen value. The expected rows come from the data below
through the rules the labels promise, not from the code under test."""
import io
import re
import zipfile
from datetime import date, timedelta
from decimal import Decimal
from itertools import product

import pytest

import i18n
from i18n import rome_today
from tests.factories import PASSWORD, make_customer, make_invoice, make_supply_point, make_user, store_pdf
from tests.helpers import login
from tests.import_data import pdf_bytes

TODAY = rome_today()  # the portal's today is Rome's
YEARS = (TODAY.year - 2, TODAY.year - 1, TODAY.year)

# What each Stato value promises, as a customer reads its label.
STATUS_RULES = {
    "": lambda i: True,  # Tutte
    "unpaid": lambda i: i["status"] != "paid",  # Da pagare: anything still to pay, partly paid too
    "overdue": lambda i: i["status"] != "paid" and i["due_date"] < TODAY,  # Scadute
    "partial": lambda i: i["status"] == "partial",
    "paid": lambda i: i["status"] == "paid",
}


@pytest.fixture
def customer_data(app):
    """Invoices of three years, of every status, due before and after today, on two points
    and on none; some with a PDF. Another customer's invoices must never show."""
    customer = make_customer(code="005007")
    light = make_supply_point(customer, code="PR002874")
    gas = make_supply_point(customer, code="PR002875", commodity="gas")
    make_user(customer)
    invoices = []
    statuses = ("paid", "unpaid", "partial")
    for n, (year, month) in enumerate(product(YEARS, (1, 4, 7, 10))):
        issue = min(date(year, month, 5), TODAY - timedelta(days=1))
        point, code = ((light, "PR002874"), (gas, "PR002875"), (None, None))[n % 3]
        status = statuses[n % len(statuses)] if n % 4 else "unpaid"
        due = issue + timedelta(days=20) if n % 5 else TODAY + timedelta(days=10)
        pdf = store_pdf(app, pdf_bytes(f"Fattura {n}"))[0] if n % 2 == 0 else None
        number = f"F{n:03d}"
        make_invoice(customer, point, number=number, issue_date=issue, due_date=due, status=status,
                     total=Decimal("10.50") + n, pdf_path=pdf)
        invoices.append(dict(number=number, year=issue.year, point=code, status=status, due_date=due,
                             total=Decimal("10.50") + n, pdf=pdf is not None))
    other = make_customer(code="009999")
    make_invoice(other, make_supply_point(other), number="X001", issue_date=date(TODAY.year, 1, 5))
    client = app.test_client()
    response = login(client, "005007", PASSWORD)
    assert response.status_code == 303
    return client, invoices


def expected(invoices, year, status, scope, point="PR002874"):
    return [i for i in invoices
            if (scope == "tutti" or i["point"] == point)
            and (not year or i["year"] == int(year))
            and STATUS_RULES[status](i)]


def numbers(html):
    return re.findall(r"<td[^>]*>([FX]\d{3})</td>", html)


def chosen(html, name):
    """The value the select `name` shows: its selected option, else its first."""
    select = re.search(r'<select id="%s" name="%s">(.*?)</select>' % (name, name), html, re.S)
    assert select, f"no select {name}"
    options = re.findall(r'<option value="([^"]*)"( selected)?', select.group(1))
    return next((value for value, selected in options if selected), options[0][0])


def options(html, name):
    select = re.search(r'<select id="%s" name="%s">(.*?)</select>' % (name, name), html, re.S)
    return re.findall(r'<option value="([^"]*)"', select.group(1))


def newest_first(rows):
    return [r["number"] for r in sorted(rows, key=lambda r: r["number"], reverse=True)]


def check_figures(html, rows):
    """The rows, and the line above them as a customer reads it: count, total and the ZIP only
    where there is something to zip."""
    assert numbers(html) == newest_first(rows)  # the numbers are in issue order
    count, pdfs = len(rows), sum(1 for r in rows if r["pdf"])
    line = f"{count} fatture" if count != 1 else "1 fattura"
    line += " · totale " + i18n.money(sum((r["total"] for r in rows), Decimal(0)), "it")
    if pdfs:
        line += " · " + (f"Scarica i {pdfs} PDF (ZIP)" if pdfs > 1 else "Scarica il PDF (ZIP)")
    totals = re.search(r'<p class="totals">(.*?)</p>', html, re.S).group(1)
    assert re.sub(r"[ \n]+", " ", re.sub(r"<[^>]+>", "", totals)).strip() == line


COMBINATIONS = list(product(("",) + tuple(str(y) for y in YEARS), STATUS_RULES, ("", "tutti")))


def query(year, status, scope):
    return f"/fatture?sp=PR002874&anno={year}&stato={status}&ambito={scope}"


def test_the_controls_offer_every_value(customer_data):
    client, invoices = customer_data
    response = client.get("/fatture?sp=PR002874&ambito=tutti")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert options(page, "anno") == [""] + [str(y) for y in sorted(YEARS, reverse=True)]
    assert options(page, "stato") == ["", "unpaid", "overdue", "partial", "paid"]
    assert options(page, "ambito") == ["", "tutti"]


@pytest.mark.parametrize("year, status, scope", COMBINATIONS)
def test_every_filter_combination_as_a_plain_request(customer_data, year, status, scope):
    """JavaScript off: the form's GET. The page lists the rows and shows what was chosen."""
    client, invoices = customer_data
    response = client.get(query(year, status, scope))
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    check_figures(page, expected(invoices, year, status, scope))
    assert (chosen(page, "anno"), chosen(page, "stato"), chosen(page, "ambito")) == (year, status, scope)


@pytest.mark.parametrize("year, status, scope", COMBINATIONS)
def test_every_filter_combination_as_htmx_sends_it(customer_data, year, status, scope):
    """A select changed: htmx GETs the form's values with its headers and swaps #invoice-list."""
    client, invoices = customer_data
    headers = {"HX-Request": "true", "HX-Target": "invoice-list", "HX-Trigger": "anno",
               "HX-Current-URL": "http://localhost/fatture?sp=PR002874"}
    response = client.get(query(year, status, scope), headers=headers)
    assert response.status_code == 200
    fragment = response.get_data(as_text=True)
    assert "<html" not in fragment and "<select" not in fragment  # the controls stay as chosen
    check_figures(fragment, expected(invoices, year, status, scope))
    assert {"HX-Request", "HX-Target"} <= set(response.headers["Vary"].split(", "))


def test_the_home_pages_unpaid_sentence_opens_exactly_those_invoices(customer_data):
    client, invoices = customer_data
    response = client.get("/?sp=PR002874")
    assert response.status_code == 200
    home = response.get_data(as_text=True)
    sentence = re.search(r"(\d+) fatture? da pagare, in tutto (€\xa0[\d.,]+)\.\s*<a href=\"([^\"]+)\">Vedile</a>", home)
    assert sentence, "no unpaid sentence on the Home Page"
    count, total, link = sentence.groups()
    link = link.replace("&amp;", "&")
    response = client.get(link)
    assert response.status_code == 200
    listed = response.get_data(as_text=True)
    unpaid = [i for i in invoices if i["status"] != "paid"]
    assert int(count) == len(unpaid) == len(numbers(listed))
    assert total == i18n.money(sum(i["total"] for i in unpaid), "it")
    assert f"{count} fatture · totale {total}" in re.sub(r"[ \n]+", " ", listed)
    assert sorted(numbers(listed)) == sorted(i["number"] for i in unpaid)


def test_the_zip_holds_the_filtered_lists_pdfs(customer_data):
    client, invoices = customer_data
    for year, status, scope in COMBINATIONS:
        rows = [r for r in expected(invoices, year, status, scope) if r["pdf"]]
        response = client.get(query(year, status, scope).replace("/fatture?", "/fatture/pdf.zip?"))
        if rows:
            assert response.status_code == 200 and response.mimetype == "application/zip"
            names = zipfile.ZipFile(io.BytesIO(response.data)).namelist()
            assert names == [f"Fattura-{number}.pdf" for number in newest_first(rows)]
        else:  # an old link or a bookmark: back to the list, with a sentence, never an error page
            assert response.status_code == 303
            assert response.headers["Location"] == query(year, status, scope)
            page = client.get(response.headers["Location"])
            assert page.status_code == 200
            assert "non ci sono fatture con il PDF" in page.get_data(as_text=True)
