"""Dati Tecnici / Contrattuali, the customer's documents and reports, Documentazione Generica,
and the download of a document: only to the customer it is for."""
import itertools
import json
import re
from datetime import date

import pytest

from models import Document, SupplyPoint, utcnow
from tests.factories import PASSWORD, make_customer, make_supply_point, make_user, store_pdf
from tests.helpers import htmx_headers, login
from tests.import_data import pdf_bytes


@pytest.fixture
def mario(app):
    customer = make_customer(code="005007", name="ROSSI MARIO")
    point = make_supply_point(customer, code="PR002874", pod_pdr="IT001E00287400",
                              technical_data=json.dumps({"Potenza impegnata": "3 kW", "Tensione": "230 V"}),
                              contract_data=json.dumps({"Offerta": "Casa Luce Fissa"}))
    make_user(customer)
    return customer, point


@pytest.fixture
def client(app, mario):
    client = app.test_client()
    login(client, "005007", PASSWORD)
    return client


def store_document(app, title, section, customer=None, published_on=date(2026, 3, 1), content=None, **fields):
    content = content or pdf_bytes(title)
    path, sha256 = store_pdf(app, content)
    return Document.create(file=path, title=title, section=section, customer=customer,
                           published_on=published_on, size=len(content), sha256=sha256, **fields)


def test_technical_and_contract_data(client):
    technical = client.get("/dati-tecnici?sp=PR002874").get_data(as_text=True)
    assert "Potenza impegnata" in technical and "3 kW" in technical and "IT001E00287400" in technical
    assert "servizio clienti" in technical  # how to ask for a change
    contract = client.get("/dati-contrattuali?sp=PR002874").get_data(as_text=True)
    assert "Casa Luce Fissa" in contract and "Potenza impegnata" not in contract


def test_the_data_follow_the_selected_point_in_place(client, mario):
    customer, _ = mario
    make_supply_point(customer, code="PR002875", commodity="gas", pod_pdr="01234567891011",
                      technical_data=json.dumps({"Classe contatore": "G4"}))
    response = client.get("/dati-tecnici?sp=PR002875", headers=htmx_headers("frame"))
    body = response.get_data(as_text=True)
    assert "<html" not in body and "G4" in body and "3 kW" not in body


def test_my_documents_and_their_download(app, client, mario):
    customer, _ = mario
    mine = store_document(app, "Contratto di fornitura luce", "personal", customer)
    other = store_document(app, "Contratto altrui", "personal", make_customer(code="009999"), content=pdf_bytes("altro"))
    page = client.get("/documenti?sp=PR002874").get_data(as_text=True)
    assert "Contratto di fornitura luce" in page and "Contratto altrui" not in page

    response = client.get(f"/documenti/{mine.id}/file")
    assert response.status_code == 200
    assert response.data == pdf_bytes("Contratto di fornitura luce")
    assert response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"].startswith("inline")
    assert "private" in response.headers["Cache-Control"] and "no-store" in response.headers["Cache-Control"]
    attachment = client.get(f"/documenti/{mine.id}/file?scarica=1")
    assert attachment.headers["Content-Disposition"] == "attachment; filename=Contratto-di-fornitura-luce.pdf"

    assert client.get(f"/documenti/{other.id}/file").status_code == 404  # another customer's
    assert client.get("/documenti/999999/file").status_code == 404
    Document.update(unpublished_at=utcnow()).where(Document.id == mine.id).execute()
    assert client.get(f"/documenti/{mine.id}/file").status_code == 404  # withdrawn


def test_documents_need_a_login(app, mario):
    customer, _ = mario
    document = store_document(app, "Contratto", "personal", customer)
    response = app.test_client().get(f"/documenti/{document.id}/file")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_reports_filtered_by_deposit_date(app, client, mario):
    customer, _ = mario
    store_document(app, "Report gennaio", "report", customer, published_on=date(2026, 2, 5),
                   period_start=date(2026, 1, 1), period_end=date(2026, 1, 31), content=pdf_bytes("gen"))
    store_document(app, "Report giugno", "report", customer, published_on=date(2026, 7, 3), content=pdf_bytes("giu"))
    page = client.get("/download?sp=PR002874").get_data(as_text=True)
    assert page.index("Report giugno") < page.index("Report gennaio")  # newest first
    filtered = client.get("/download?sp=PR002874&dal=2026-06-01&al=2026-12-31", headers=htmx_headers("document-list"))
    body = filtered.get_data(as_text=True)
    assert "<html" not in body and "Report giugno" in body and "Report gennaio" not in body
    assert "01/01/2026 – 31/01/2026" in client.get("/download?sp=PR002874&al=2026-03-01").get_data(as_text=True)
    bad = client.get("/download?sp=PR002874&dal=ieri").get_data(as_text=True)
    assert "Data non valida" in bad and "Report giugno" in bad  # the bad filter is said, not applied


def test_generic_documentation_and_announcements_on_the_home_page(app, client):
    store_document(app, "Modulo di voltura", "modulistica")
    store_document(app, "Sportello chiuso", "comunicati", published_on=date(2026, 4, 20), content=pdf_bytes("a"))
    store_document(app, "Nuove tariffe", "comunicati", published_on=date(2026, 11, 16), content=pdf_bytes("b"))
    withdrawn = store_document(app, "Vecchio avviso", "comunicati", published_on=date(2026, 1, 2), content=pdf_bytes("c"))
    Document.update(unpublished_at=utcnow()).where(Document.id == withdrawn.id).execute()
    assert "Modulo di voltura" in client.get("/documentazione/modulistica?sp=PR002874").get_data(as_text=True)
    home = client.get("/?sp=PR002874").get_data(as_text=True)
    assert home.index("Nuove tariffe") < home.index("Sportello chiuso")
    assert "Vecchio avviso" not in home
    generic = Document.get(Document.title == "Modulo di voltura")
    assert client.get(f"/documenti/{generic.id}/file").status_code == 200  # for everybody


def test_a_file_missing_from_the_store_is_a_404_not_a_500(app, client, mario):
    customer, _ = mario
    Document.create(file="ab/missing.pdf", title="Perso", section="personal", customer=customer,
                    published_on=date(2026, 1, 1))
    assert client.get(f"/documenti/{Document.get().id}/file").status_code == 404
    assert SupplyPoint.select().count() == 1


REPORTS = {"Report gennaio": date(2026, 2, 5), "Report giugno": date(2026, 7, 3), "Report ottobre": date(2026, 10, 20)}
DATES = ("", "2026-02-05", "2026-07-01", "2026-10-20", "2026-13-01")  # the last: a date that does not exist


@pytest.fixture
def reports(app, client, mario):
    customer, _ = mario
    for title, published in REPORTS.items():
        store_document(app, title, "report", customer, published_on=published, content=pdf_bytes(title))
    store_document(app, "Report di un altro", "report", make_customer(), published_on=date(2026, 7, 3))
    return client


def expected_reports(since, until):
    """What the labels promise: deposited from `since` to `until`, both included; a bad date, or
    an end before the start, is not applied. Newest first."""
    def day(text):
        try:
            return date.fromisoformat(text) if text else None
        except ValueError:
            return None
    since, until = day(since), day(until)
    if since and until and until < since:
        until = None
    return [title for title, published in sorted(REPORTS.items(), key=lambda item: item[1], reverse=True)
            if (since is None or published >= since) and (until is None or published <= until)]


def listed_reports(html):
    return re.findall(r">(Report [a-z ]+)</a>", html)


def date_errors(html):
    return {name: bool(re.search(r'<p class="field-error" id="err-%s">\S' % name, html)) for name in ("dal", "al")}


@pytest.mark.parametrize("since, until", list(itertools.product(DATES, DATES)))
def test_every_deposit_date_filter_as_a_plain_request_and_with_htmx(reports, since, until):
    url = f"/download?sp=PR002874&dal={since}&al={until}"
    bad = {"dal": since == "2026-13-01", "al": until == "2026-13-01" or (
        since not in ("", "2026-13-01") and until not in ("", "2026-13-01") and until < since)}
    headers = {"HX-Request": "true", "HX-Target": "document-list", "HX-Trigger": "al",
               "HX-Current-URL": "http://localhost/download?sp=PR002874"}
    for response in (reports.get(url), reports.get(url, headers=headers)):
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        assert listed_reports(html) == expected_reports(since, until)
        # The fields show what was chosen, and each refusal is said next to its field.
        assert f'id="dal" name="dal" type="date" value="{since}"' in html
        assert f'id="al" name="al" type="date" value="{until}"' in html
        assert date_errors(html) == bad
    assert "<html" not in html and {"HX-Request", "HX-Target"} <= set(response.headers["Vary"].split(", "))
