"""Misure elettriche: every measure of the chosen Rome days, newest first and paged, the meter
readings beside them, the presets, the bad dates said next to their field; the CSV, the CSV
for Italian Excel and the Green Button XML of the interval (sums, DST days, interval count);
a gas point's polite answer and another customer's point's 404."""
import csv
import io
import re
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bands
import views.consumption
from i18n import ROME, rome_midnight_utc
from models import Measure, Reading
from tests.factories import make_customer, make_supply_point
from tests.helpers import htmx_headers

TODAY = date(2026, 3, 31)  # the presets' "today": a month before is the end of February
ATOM, ESPI = "{http://www.w3.org/2005/Atom}", "{http://naesb.org/espi}"
PAGE = views.consumption.MEASURES_PAGE
# What htmx sends when the interval's form, a preset, or a page link swaps the list in place.
HTMX = dict(htmx_headers("measures"), **{"HX-Current-URL": "http://localhost/misure-elettriche?sp=PR002874"})


def add_measures(point, first, last, minutes=15, estimated_every=7):
    """Measures for the Rome days first..last (both included): kWh that differ row by row, every
    `estimated_every`-th estimated. Returns [(start, kwh, quality)], oldest first."""
    start, end = rome_midnight_utc(first), rome_midnight_utc(last + timedelta(days=1))
    rows, index = [], 0
    while start < end:
        rows.append((start, round(0.05 + (index % 37) * 0.011, 3), "estimated" if index % estimated_every == 0 else "actual"))
        start += timedelta(minutes=minutes)
        index += 1
    Measure.insert_many([{"supply_point": point, "start": s, "kwh": k, "interval_minutes": minutes, "quality": q}
                         for s, k, q in rows]).execute()
    return rows


def rome_day(start):
    return start.replace(tzinfo=UTC).astimezone(ROME).date()


def in_days(rows, first, last):
    return [row for row in rows if first <= rome_day(row[0]) <= last]


@pytest.fixture
def today(monkeypatch):
    monkeypatch.setattr(views.consumption, "rome_today", lambda: TODAY)
    return TODAY


@pytest.fixture
def measures(points, today):
    """Quarter hours from 1 February to 31 March 2026 (summer time starts on 29 March)."""
    electricity, _gas = points
    return add_measures(electricity, date(2026, 2, 1), TODAY)


@pytest.fixture
def stranger(app):
    other = make_supply_point(make_customer(code="009999"), code="PR999999", pod_pdr="IT001E99999900")
    add_measures(other, date(2026, 3, 1), date(2026, 3, 2))
    return other


def page_of(client, query, headers=None):
    response = client.get("/misure-elettriche?" + query, headers=headers or {})
    assert response.status_code == 200, query
    return response.get_data(as_text=True)


def shown_times(html):
    """(day, start) of the listed measures, as the page shows them."""
    return re.findall(r'<td data-label="Giorno">([^<]+)</td>\s*<td data-label="Ora di inizio">([^<]+)</td>', html)


def local_label(start):
    local = start.replace(tzinfo=UTC).astimezone(ROME)
    return local.strftime("%d/%m/%Y"), local.strftime("%H:%M")


def csv_rows(response):
    assert response.status_code == 200
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


# --- the page ---------------------------------------------------------------------------------------

def test_the_menu_offers_the_page_for_electricity_only(logged_in, measures):
    electricity = page_of(logged_in, "sp=PR002874")
    assert '<a href="/misure-elettriche?sp=PR002874" aria-current="page">Misure elettriche</a>' in electricity
    assert "in arrivo" not in electricity
    response = logged_in.get("/prelievi-fatturati?sp=PR002875")
    assert response.status_code == 200 and "Misure elettriche" not in response.get_data(as_text=True)


@pytest.mark.parametrize("headers", [{}, htmx_headers("frame")], ids=["page", "selector"])
def test_a_gas_point_is_told_where_its_figures_are(logged_in, measures, headers):
    """Reached by the point selector or a bookmark: a page (200, the URL is fine and the point
    the customer's), not an error, with the links to the gas point's figures."""
    body = page_of(logged_in, "sp=PR002875", headers)
    assert "Il punto PR002875 è una fornitura di gas: le misure elettriche non lo riguardano." in body
    assert 'href="/grafici-avanzati?sp=PR002875"' in body and 'href="/prelievi-fatturati?sp=PR002875"' in body
    assert "<table" not in body and ".csv" not in body
    for path in ("/misure-elettriche.csv", "/misure-elettriche-excel.csv", "/misure-elettriche.xml"):
        assert logged_in.get(path + "?sp=PR002875").status_code == 404


def test_another_customers_point_is_404(logged_in, measures, stranger):
    for path in ("/misure-elettriche", "/misure-elettriche.csv", "/misure-elettriche-excel.csv", "/misure-elettriche.xml"):
        assert logged_in.get(path + "?sp=PR999999&dal=2026-03-01&al=2026-03-02").status_code == 404, path
        assert logged_in.get(path + "?sp=PR999999", headers=HTMX).status_code == 404, path
    # The query itself is scoped: asked for the stranger's point id on Mario's behalf, nothing.
    mario = measures and Measure.select().first().supply_point.customer_id
    assert list(Measure.batches_between(mario, stranger.id)) == []


def test_without_an_interval_every_measure_on_record_newest_first(logged_in, measures):
    body = page_of(logged_in, "sp=PR002874")
    assert "Dal 01/02/2026 al 31/03/2026" in body
    assert shown_times(body) == [local_label(start) for start, _kwh, _q in reversed(measures[-PAGE:])]
    assert shown_times(body)[0] == ("31/03/2026", "23:45")
    assert 'class="field-error" id="err-dal" hidden' in body and 'class="field-error" id="err-al" hidden' in body


@pytest.mark.parametrize("preset, first, label", [
    ("7-giorni", date(2026, 3, 25), "Ultimi 7 giorni"),
    ("mese", date(2026, 3, 1), "Ultimo mese"),  # 31 March: a month before is 28 February
    ("anno", date(2025, 4, 1), "Ultimo anno"),
])
@pytest.mark.parametrize("headers", [{}, HTMX], ids=["page", "htmx"])
def test_presets(logged_in, measures, preset, first, label, headers):
    response = logged_in.get(f"/misure-elettriche?sp=PR002874&periodo={preset}", headers=headers)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert ("<html" in body) == (not headers)
    assert f"Dal {first:%d/%m/%Y} al 31/03/2026" in body
    assert f'name="dal" type="date" value="{first.isoformat()}"' in body and 'name="al" type="date" value="2026-03-31"' in body
    assert f'aria-current="true">{label}</a>' in body
    # The downloads carry the preset's days, so the file is what the page shows.
    assert f"/misure-elettriche.csv?sp=PR002874&amp;dal={first.isoformat()}&amp;al=2026-03-31" in body
    expected = in_days(measures, first, TODAY)
    assert shown_times(body) == [local_label(s) for s, _k, _q in reversed(expected[-PAGE:])]
    if headers:
        assert "HX-Target" in response.headers["Vary"]


def test_dates_both_included(logged_in, measures):
    body = page_of(logged_in, "sp=PR002874&dal=2026-02-10&al=2026-02-10")
    assert shown_times(body) == [("10/02/2026", f"{h:02d}:{m:02d}") for h in reversed(range(24)) for m in (45, 30, 15, 0)]
    assert "Meno recenti" not in body and "Più recenti" not in body


@pytest.mark.parametrize("headers", [{}, HTMX], ids=["page", "htmx"])
def test_paging_newest_first(logged_in, measures, headers):
    """Two days of quarter hours: two full pages, then nothing more."""
    query = "sp=PR002874&dal=2026-02-10&al=2026-02-11"
    expected = [local_label(s) for s, _k, _q in reversed(in_days(measures, date(2026, 2, 10), date(2026, 2, 11)))]
    first = page_of(logged_in, query, headers)
    assert shown_times(first) == expected[:PAGE]
    assert f'href="/misure-elettriche?{query.replace("&", "&amp;")}&amp;pagina=2"' in first and "Più recenti" not in first
    second = page_of(logged_in, query + "&pagina=2", headers)
    assert shown_times(second) == expected[PAGE:]
    assert f'href="/misure-elettriche?{query.replace("&", "&amp;")}&amp;pagina=1"' in second and "Meno recenti" not in second
    third = page_of(logged_in, query + "&pagina=3", headers)
    assert shown_times(third) == [] and "Non ci sono altre misure in questo periodo." in third
    assert "Più recenti" in third


def test_paging_keeps_a_preset(logged_in, measures):
    body = page_of(logged_in, "sp=PR002874&periodo=7-giorni&pagina=2")
    assert 'href="/misure-elettriche?sp=PR002874&amp;periodo=7-giorni&amp;pagina=3"' in body
    assert len(shown_times(body)) == PAGE


@pytest.mark.parametrize("query, field, message", [
    ("dal=31/12/2026", "dal", "Data non valida: usa il calendario o AAAA-MM-GG."),
    ("al=2026-02-30", "al", "Data non valida: usa il calendario o AAAA-MM-GG."),
    ("dal=2026-03-10&al=2026-03-01", "al", "La data finale viene prima di quella iniziale."),
    ("dal=1999-12-31", "dal", "Scegli un giorno tra il 01/01/2000 e il 31/12/2099."),
    ("al=9999-12-31", "al", "Scegli un giorno tra il 01/01/2000 e il 31/12/2099."),
])
@pytest.mark.parametrize("headers", [{}, HTMX], ids=["page", "htmx"])
def test_bad_dates_are_said_next_to_their_field(logged_in, measures, query, field, message, headers):
    body = page_of(logged_in, "sp=PR002874&" + query, headers)
    assert f'<p class="field-error" id="err-{field}">{message}</p>' in body
    assert f'id="{field}" name="{field}" type="date"' in body and 'aria-invalid="true"' in body
    assert shown_times(body)  # the list still shows, without the bad date
    # A download asked for with them goes to the page, which says what is wrong.
    response = logged_in.get("/misure-elettriche.csv?sp=PR002874&" + query)
    assert response.status_code == 303 and response.headers["Location"].startswith("/misure-elettriche?")


@pytest.mark.parametrize("query", ["pagina=0", "pagina=abc", "pagina=99999999999999999999", "periodo=secolo", "periodo="])
@pytest.mark.parametrize("headers", [{}, HTMX], ids=["page", "htmx"])
def test_values_that_are_none_are_ignored(logged_in, measures, query, headers):
    body = page_of(logged_in, "sp=PR002874&" + query, headers)
    assert shown_times(body)[0] == ("31/03/2026", "23:45") and "Dal 01/02/2026 al 31/03/2026" in body


def test_a_page_past_the_last_is_empty_not_an_error(logged_in, measures):
    assert "Non ci sono altre misure" in page_of(logged_in, "sp=PR002874&pagina=1000000")


def test_no_measures(logged_in, points, today):
    body = page_of(logged_in, "sp=PR002874")
    assert "Nessuna misura in questo periodo." in body and "Dal 31/03/2026 al 31/03/2026" in body


def test_quality_band_and_kwh_shown(logged_in, measures):
    body = page_of(logged_in, "sp=PR002874&dal=2026-03-02&al=2026-03-02")
    # Monday 2 March 2026, 10:00: F1; 07:00: F2; 23:00: F3.
    rows = re.findall(r'<td data-label="Ora di inizio">([^<]+)</td>\s*<td class="num" data-label="kWh">([^<]+)</td>\s*'
                      r'<td data-label="Qualità">([^<]+)</td>\s*<td data-label="Fascia">([^<]+)</td>', body)
    by_time = {time: (kwh, quality, band) for time, kwh, quality, band in rows}
    assert by_time["10:00"][2] == "F1" and by_time["07:00"][2] == "F2" and by_time["23:00"][2] == "F3"
    stored = {local_label(s)[1]: (k, q) for s, k, q in in_days(measures, date(2026, 3, 2), date(2026, 3, 2))}
    for time, (kwh, quality, _band) in by_time.items():
        assert kwh == f"{stored[time][0]:.3f}".replace(".", ",")
        assert quality == {"actual": "rilevata", "estimated": "stimata"}[stored[time][1]]


def test_readings_of_the_interval_with_their_source(logged_in, measures, point):
    Reading.create(supply_point=point, date=date(2026, 2, 28), register="F1", value=Decimal("1234.5"), source="distributor")
    Reading.create(supply_point=point, date=date(2026, 3, 15), register="total", value=Decimal("2000"), source="customer",
                   status="pending")
    Reading.create(supply_point=point, date=date(2026, 3, 20), register="total", value=Decimal("1900"), source="customer",
                   status="rejected", rejection_reason="Cifre illeggibili")
    Reading.create(supply_point=point, date=date(2025, 12, 31), register="F2", value=Decimal(7), source="estimated")
    body = page_of(logged_in, "sp=PR002874&dal=2026-02-01&al=2026-03-31")
    readings = re.findall(r"<tr><td data-label=\"Data\">([^<]+)</td>\s*<td data-label=\"Registro\">([^<]+)</td>\s*"
                          r"<td class=\"num\" data-label=\"Lettura\">([^<]+)</td>\s*<td data-label=\"Fonte\">([^<]+)</td>", body)
    # A self-reading's status in the words Autolettura uses: the customer's reading is "inviata".
    assert readings == [("20/03/2026", "totale", "1.900,000", "autolettura (respinta)"),
                        ("15/03/2026", "totale", "2.000,000", "autolettura (inviata)"),
                        ("28/02/2026", "F1", "1.234,500", "distributore")]
    assert "Nessuna lettura in questo periodo." in page_of(logged_in, "sp=PR002874&dal=2026-03-21&al=2026-03-31")


# --- DST days -------------------------------------------------------------------------------------------

@pytest.fixture
def hourly_dst(points, today):
    """Hours of the two days of 2026 whose clocks change: 29 March (23 hours), 25 October (25)."""
    electricity, _gas = points
    return (add_measures(electricity, date(2026, 3, 29), date(2026, 3, 29), minutes=60)
            + add_measures(electricity, date(2026, 10, 25), date(2026, 10, 25), minutes=60))


def test_dst_days_on_the_page(logged_in, hourly_dst):
    spring = shown_times(page_of(logged_in, "sp=PR002874&dal=2026-03-29&al=2026-03-29"))
    assert len(spring) == 23 and ("29/03/2026", "02:00") not in spring
    autumn = page_of(logged_in, "sp=PR002874&dal=2026-10-25&al=2026-10-25")
    times = [time for _day, time in shown_times(autumn)]
    assert len(times) == 25
    assert times[20:24] == ["03:00", "02:00 (ora solare)", "02:00 (ora legale)", "01:00"]  # newest first
    assert times.count("01:00") == 1


def test_dst_days_in_the_csv(logged_in, hourly_dst):
    spring = csv_rows(logged_in.get("/misure-elettriche.csv?sp=PR002874&dal=2026-03-29&al=2026-03-29"))
    assert len(spring) == 23
    assert [r["start"] for r in spring[1:3]] == ["2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00"]
    assert spring[1]["end"] == "2026-03-29T03:00:00+02:00"
    autumn = csv_rows(logged_in.get("/misure-elettriche.csv?sp=PR002874&dal=2026-10-25&al=2026-10-25"))
    assert len(autumn) == 25
    assert [(r["start"], r["end"]) for r in autumn[2:4]] == [
        ("2026-10-25T02:00:00+02:00", "2026-10-25T02:00:00+01:00"), ("2026-10-25T02:00:00+01:00", "2026-10-25T03:00:00+01:00")]
    assert all(r["band"] == "F3" for r in autumn)  # a Sunday
    assert len({r["start"] for r in autumn}) == 25  # every row its own instant


def test_dst_days_in_the_excel_csv(logged_in, hourly_dst):
    response = logged_in.get("/misure-elettriche-excel.csv?sp=PR002874&dal=2026-10-25&al=2026-10-25")
    assert response.status_code == 200 and response.data.startswith("\ufeff".encode())
    lines = response.get_data(as_text=True).lstrip("\ufeff").split("\r\n")
    assert lines[0] == "Data;Ora;Ora legale o solare;kWh;Qualità;Fascia" and lines[-1] == ""
    rows = [line.split(";") for line in lines[1:-1]]
    assert len(rows) == 25
    assert [row[:3] for row in rows[2:4]] == [["25/10/2026", "02:00", "legale"], ["25/10/2026", "02:00", "solare"]]
    assert len({tuple(row[:3]) for row in rows}) == 25
    spring = logged_in.get("/misure-elettriche-excel.csv?sp=PR002874&dal=2026-03-29&al=2026-03-29")
    assert spring.status_code == 200 and len(spring.get_data(as_text=True).split("\r\n")) == 1 + 23 + 1


# --- downloads ----------------------------------------------------------------------------------------

def test_csv_rows_and_name(logged_in, measures):
    response = logged_in.get("/misure-elettriche.csv?sp=PR002874&dal=2026-03-02&al=2026-03-02")
    assert response.status_code == 200 and response.is_streamed and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == "attachment; filename=misure-PR002874-2026-03-02-2026-03-02.csv"
    assert response.headers["Cache-Control"] == "private, no-store"
    rows = csv_rows(response)
    stored = in_days(measures, date(2026, 3, 2), date(2026, 3, 2))
    assert len(rows) == 96
    assert rows[0] == {"start": "2026-03-02T00:00:00+01:00", "end": "2026-03-02T00:15:00+01:00",
                       "kwh": repr(stored[0][1]), "quality": stored[0][2], "band": "F3"}
    assert rows[-1]["start"] == "2026-03-02T23:45:00+01:00" and rows[-1]["end"] == "2026-03-03T00:00:00+01:00"
    for row, (start, kwh, quality) in zip(rows, stored, strict=True):
        assert datetime.fromisoformat(row["start"]).astimezone(UTC).replace(tzinfo=None) == start
        assert float(row["kwh"]) == kwh and row["quality"] == quality and row["band"] == bands.band(start)


def test_excel_csv_rows(logged_in, measures):
    response = logged_in.get("/misure-elettriche-excel.csv?sp=PR002874&dal=2026-03-02&al=2026-03-02")
    assert response.status_code == 200 and response.is_streamed
    assert response.headers["Content-Disposition"] == "attachment; filename=misure-PR002874-2026-03-02-2026-03-02-excel.csv"
    lines = response.get_data(as_text=True).lstrip("\ufeff").split("\r\n")[1:-1]
    stored = in_days(measures, date(2026, 3, 2), date(2026, 3, 2))
    assert len(lines) == 96
    kwh, quality = stored[40][1], {"actual": "rilevata", "estimated": "stimata"}[stored[40][2]]
    assert lines[40] == f"02/03/2026;10:00;solare;{kwh:.3f};{quality};F1".replace(".", ",", 1)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=st.dates(date(2026, 1, 25), date(2026, 4, 5)), days=st.integers(0, 70))
def test_csv_sums_equal_the_stored_sums(logged_in, measures, first, days):
    """For any interval (around and beyond the data too), the files hold exactly the stored rows."""
    last = first + timedelta(days=days)
    query = f"sp=PR002874&dal={first.isoformat()}&al={last.isoformat()}"
    stored = [kwh for _start, kwh, _q in in_days(measures, first, last)]
    rows = csv_rows(logged_in.get("/misure-elettriche.csv?" + query))
    assert len(rows) == len(stored)
    assert sum(float(r["kwh"]) for r in rows) == pytest.approx(sum(stored), abs=1e-9)
    excel = logged_in.get("/misure-elettriche-excel.csv?" + query)
    assert excel.status_code == 200
    cells = [line.split(";")[3] for line in excel.get_data(as_text=True).split("\r\n")[1:-1]]
    assert sum(Decimal(cell.replace(",", ".")) for cell in cells) == sum(Decimal(f"{kwh:.3f}") for kwh in stored)


def test_green_button_xml(logged_in, measures):
    response = logged_in.get("/misure-elettriche.xml?sp=PR002874&dal=2026-03-28&al=2026-03-30")
    assert response.status_code == 200 and response.is_streamed and response.mimetype == "application/atom+xml"
    assert response.headers["Content-Disposition"] == "attachment; filename=misure-PR002874-2026-03-28-2026-03-30.xml"
    feed = ET.fromstring(response.data)  # well-formed, or this raises
    assert feed.tag == ATOM + "feed"
    contents = [entry.find(ATOM + "content")[0].tag for entry in feed.findall(ATOM + "entry")]
    assert contents == [ESPI + "UsagePoint", ESPI + "LocalTimeParameters", ESPI + "MeterReading", ESPI + "ReadingType"] + [
        ESPI + "IntervalBlock"] * 3
    reading_type = feed.find(f".//{ESPI}ReadingType")
    assert reading_type.findtext(ESPI + "uom") == "72" and reading_type.findtext(ESPI + "intervalLength") == "900"
    blocks = feed.findall(f".//{ESPI}IntervalBlock")
    # 28 March 24 hours, 29 March (summer time starts) 23, 30 March 24: quarters of each.
    assert [len(block.findall(ESPI + "IntervalReading")) for block in blocks] == [96, 92, 96]
    assert [int(block.findtext(f"{ESPI}interval/{ESPI}duration")) for block in blocks] == [86400, 82800, 86400]
    stored = in_days(measures, date(2026, 3, 28), date(2026, 3, 30))
    readings = feed.findall(f".//{ESPI}IntervalReading")
    assert len(readings) == len(stored)
    for reading, (start, kwh, quality) in zip(readings, stored, strict=True):
        assert [child.tag for child in reading] == [ESPI + "ReadingQuality", ESPI + "timePeriod", ESPI + "value"]
        assert int(reading.findtext(f"{ESPI}timePeriod/{ESPI}start")) == int(start.replace(tzinfo=UTC).timestamp())
        assert reading.findtext(f"{ESPI}timePeriod/{ESPI}duration") == "900"
        assert int(reading.findtext(ESPI + "value")) == round(kwh * 1000)
        assert reading.findtext(f"{ESPI}ReadingQuality/{ESPI}quality") == {"actual": "0", "estimated": "8"}[quality]
    first_block = blocks[0]
    assert int(first_block.findtext(f"{ESPI}interval/{ESPI}start")) == int(rome_midnight_utc(date(2026, 3, 28)).replace(tzinfo=UTC).timestamp())


def test_green_button_of_an_empty_interval_is_a_valid_feed(logged_in, measures):
    response = logged_in.get("/misure-elettriche.xml?sp=PR002874&dal=2025-01-01&al=2025-01-31")
    assert response.status_code == 200
    feed = ET.fromstring(response.data)
    assert feed.findall(f".//{ESPI}IntervalBlock") == [] and feed.find(f".//{ESPI}UsagePoint") is not None


def test_downloads_are_offered_for_the_interval_shown(logged_in, measures):
    body = page_of(logged_in, "sp=PR002874&dal=2026-03-02&al=2026-03-09&pagina=2")
    for path in ("/misure-elettriche.csv", "/misure-elettriche-excel.csv", "/misure-elettriche.xml"):
        link = f'href="{path}?sp=PR002874&amp;dal=2026-03-02&amp;al=2026-03-09"'
        assert link in body, path


def test_rows_are_read_in_batches_that_miss_nothing(measures, point):
    """The keyset batches meet exactly: every row once, in order, whatever the batch size."""
    customer = point.customer_id
    since, before = rome_midnight_utc(date(2026, 3, 1)), rome_midnight_utc(date(2026, 3, 3))
    expected = [start for start, _k, _q in measures if since <= start < before]
    for batch in (1, 7, 96, 192, 5000):
        starts = [row[0] for rows in Measure.batches_between(customer, point, since, before, batch=batch) for row in rows]
        as_datetimes = [s if isinstance(s, datetime) else datetime.fromisoformat(s) for s in starts]
        assert as_datetimes == expected, batch


def test_the_files_are_what_spreadsheets_writer_writes(logged_in, measures):
    """Rows are joined from parts (measure_files), not written one by one: read back and written
    again through spreadsheets.writer, each file is the same, byte for byte."""
    import spreadsheets

    query = "sp=PR002874&dal=2026-03-28&al=2026-03-30"
    body = logged_in.get("/misure-elettriche.csv?" + query).get_data(as_text=True)
    again = io.StringIO()
    writer = spreadsheets.writer(again, lineterminator="\n")
    for number, row in enumerate(csv.reader(io.StringIO(body))):
        writer.writerow(row if number == 0 else [row[0], row[1], float(row[2]), row[3], row[4]])
    assert again.getvalue() == body
    excel = logged_in.get("/misure-elettriche-excel.csv?" + query).get_data(as_text=True)
    again = io.StringIO()
    writer = spreadsheets.writer(again, delimiter=";", lineterminator="\r\n")
    for number, row in enumerate(csv.reader(io.StringIO(excel.lstrip("\ufeff")), delimiter=";")):
        writer.writerow(row if number == 0 else [*row[:3], spreadsheets.DecimalComma(row[3].replace(",", ".")), *row[4:]])
    assert "\ufeff" + again.getvalue() == excel


def test_text_from_the_database_cannot_run_in_a_spreadsheet(logged_in, point, today):
    """The import accepts only actual and estimated, but whatever the column holds is written
    through spreadsheets.writer's rule."""
    Measure.create(supply_point=point, start=datetime(2026, 3, 2, 9), kwh=-0.5, interval_minutes=60, quality="=1+1")
    rows = csv_rows(logged_in.get("/misure-elettriche.csv?sp=PR002874&dal=2026-03-02&al=2026-03-02"))
    assert rows == [{"start": "2026-03-02T10:00:00+01:00", "end": "2026-03-02T11:00:00+01:00", "kwh": "-0.5",
                     "quality": "'=1+1", "band": "F1"}]
    excel = logged_in.get("/misure-elettriche-excel.csv?sp=PR002874&dal=2026-03-02&al=2026-03-02")
    assert excel.get_data(as_text=True).split("\r\n")[1] == "02/03/2026;10:00;solare;-0,500;'=1+1;F1"


def test_dst_days_in_the_green_button_xml(logged_in, hourly_dst):
    response = logged_in.get("/misure-elettriche.xml?sp=PR002874&dal=2026-03-29&al=2026-10-25")
    assert response.status_code == 200
    blocks = ET.fromstring(response.data).findall(f".//{ESPI}IntervalBlock")
    assert [len(block.findall(ESPI + "IntervalReading")) for block in blocks] == [23, 25]
    assert [int(block.findtext(f"{ESPI}interval/{ESPI}duration")) for block in blocks] == [23 * 3600, 25 * 3600]
    starts = [int(reading.findtext(f"{ESPI}timePeriod/{ESPI}start")) for reading in blocks[1].findall(ESPI + "IntervalReading")]
    assert starts == [starts[0] + 3600 * n for n in range(25)]  # the repeated hour twice, an hour apart
