"""Grafici avanzati: consumption by day (hours or quarter-hours, 23 or 25 on DST days), week,
month and year, split by band, with the year before, a table, the comparison with similar
households, gas points, and every control through HTTP, as a page and as an htmx fragment."""
import re
from datetime import date, datetime, timedelta
from html import unescape

import pytest

import bands
from i18n import rome_midnight_utc
from models import DailyConsumption, Measure, MonthlyConsumption, Reading
from tests.factories import PASSWORD, make_customer, make_invoice, make_supply_point, make_user
from tests.helpers import login, post_form

PAGE = "/grafici-avanzati"
CHART = "/grafici-avanzati.svg"


def htmx(url="http://localhost/grafici-avanzati"):
    return {"HX-Request": "true", "HX-Target": "advanced-charts", "HX-Current-URL": url}


# --- data ------------------------------------------------------------------------------------------

def add_measures(point, first_day, last_day, kwh=lambda utc: 1.0, minutes=60, estimated=lambda utc: False):
    """Measures from Rome midnight of first_day to Rome midnight after last_day, walked in UTC."""
    rows, utc, end = [], rome_midnight_utc(first_day), rome_midnight_utc(last_day + timedelta(days=1))
    while utc < end:
        rows.append(dict(supply_point=point, start=utc, kwh=kwh(utc), interval_minutes=minutes,
                         quality="estimated" if estimated(utc) else "actual"))
        utc += timedelta(minutes=minutes)
    for start in range(0, len(rows), 500):
        Measure.insert_many(rows[start:start + 500]).execute()
    keep_measures_until(point)


def keep_measures_until(point):
    """The point's newest measure's end, as the import keeps it with the totals."""
    import totals
    from models import db_wrapper

    totals.extend_measures_until_of(db_wrapper.database, [point.id])


def fill_totals(point):
    """The daily and monthly totals of the point's measures, as the import keeps them (summed
    here in Python from the measures, each in its Rome day and band)."""
    DailyConsumption.delete().where(DailyConsumption.supply_point == point).execute()
    MonthlyConsumption.delete().where(MonthlyConsumption.supply_point == point).execute()
    days, months = {}, {}
    hours = {}
    for measure in Measure.select().where(Measure.supply_point == point):
        day = bands.to_rome(measure.start).date()
        for key, table in ((day, days), (day.replace(day=1), months)):
            row = table.setdefault(key, {"f1": 0.0, "f2": 0.0, "f3": 0.0, "intervals": 0, "estimated": 0})
            row[bands.band(measure.start).lower()] += measure.kwh
            row["intervals"] += 1
            row["estimated"] += measure.quality == "estimated"
        hour = measure.start.replace(minute=0)
        hours[hour] = hours.get(hour, 0.0) + measure.kwh
    peaks = {}
    for hour, kwh in hours.items():
        day = bands.to_rome(hour).date()
        for key in (day, day.replace(day=1)):
            if key not in peaks or kwh > peaks[key][0]:
                peaks[key] = (kwh, hour)
    for day, row in days.items():
        DailyConsumption.create(supply_point=point, day=day, peak_kwh=peaks[day][0], peak_start=peaks[day][1], **row)
    for month, row in months.items():
        MonthlyConsumption.create(supply_point=point, month=month, **row)


@pytest.fixture
def client(app):
    customer = make_customer(code="005007", name="ROSSI MARIO")
    make_supply_point(customer, code="PR002874")
    make_supply_point(customer, code="PR002875", commodity="gas")
    make_user(customer)
    make_supply_point(make_customer(code="009999"), code="PR999999")
    client = app.test_client()
    assert login(client, "005007", PASSWORD).status_code == 303
    return client


def point(code="PR002874"):
    from models import SupplyPoint
    return SupplyPoint.get(SupplyPoint.code == code)


def get(client, url, headers=None, status=200):
    response = client.get(url, headers=headers or {})
    assert response.status_code == status, (url, response.status_code)
    return response


def page_of(client, url, **kwargs):
    return get(client, url, **kwargs).get_data(as_text=True)


def table_rows(page):
    """[(first cell, [the other cells])] of the table."""
    body = re.search(r"<tbody>(.*?)</tbody>", page, re.S).group(1)
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        head = re.sub(r"<[^>]+>", "", re.search(r"<th[^>]*>(.*?)</th>", row, re.S).group(1)).strip()
        cells = [unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        rows.append((unescape(head), cells))
    return rows


def summary_of(page):
    """{term: value} of the summary beside the chart."""
    aside = re.search(r'<aside class="chart-summary".*?</aside>', page, re.S).group(0)
    return {unescape(t.strip()): unescape(re.sub(r"<[^>]+>", " ", d)).split("  ")[0].strip()
            for t, d in re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", aside, re.S)}


# --- the page and its controls -----------------------------------------------------------------------

def test_the_menu_opens_the_page_no_longer_coming_soon(client):
    response = get(client, PAGE, status=302)
    assert response.headers["Location"].endswith(f"{PAGE}?sp=PR002874")
    page = page_of(client, PAGE + "?sp=PR002874")
    assert "<h1>Grafici avanzati</h1>" in page and "in arrivo" not in page.lower()
    assert f'href="{PAGE}?sp=PR002874"' in page  # the menu's entry


def test_without_data_the_page_says_so(client):
    page = page_of(client, PAGE + "?sp=PR002874&vista=mese&data=2026-11-01")
    assert "Nessun dato di consumo per questo periodo." in page
    assert "Nessun dato ricevuto finora per questo punto." in page


@pytest.mark.parametrize("period", ["giorno", "settimana", "mese", "anno"])
@pytest.mark.parametrize("display", ["grafico", "tabella"])
def test_every_period_and_display_as_page_fragment_and_chart(client, period, display):
    add_measures(point(), date(2026, 10, 20), date(2026, 11, 3), minutes=15)
    fill_totals(point())
    url = f"{PAGE}?sp=PR002874&vista={period}&data=2026-10-25&mostra={display}"
    whole = page_of(client, url)
    assert "<html" in whole and 'id="advanced-charts"' in whole
    fragment = get(client, url, headers=htmx(url))
    body = fragment.get_data(as_text=True)
    assert "<html" not in body and 'class="chart-steps"' in body
    assert {"HX-Request", "HX-Target"} <= set(fragment.headers["Vary"].replace(" ", "").split(","))
    for text in (whole, body):
        assert f'aria-current="true">{dict(giorno="Giorno", settimana="Settimana", mese="Mese", anno="Anno")[period]}<' in text
        assert f'aria-current="true">{dict(grafico="Grafico", tabella="Tabella")[display]}<' in text
        assert ("<table" in text) == (display == "tabella") and ("<img src=\"/grafici-avanzati.svg" in text) == (display == "grafico")
    chart = get(client, f"{CHART}?sp=PR002874&vista={period}&data=2026-10-25")
    svg = chart.get_data(as_text=True)
    assert chart.mimetype == "image/svg+xml" and chart.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert len(chart.data) <= 60_000, len(chart.data)
    assert "<script" not in svg and not re.search(r'(href|src)\s*=\s*"(https?:)?//', svg)
    x_axis = re.search(r'<g class="axis x.*?</g></g>(?!<g class="guides")', svg, re.S).group(0)
    assert 1 <= len(re.findall(r"<text[^>]*>[^<]+</text>", x_axis)) <= 12


@pytest.mark.parametrize("period, data, name, earlier, later", [
    ("giorno", "2026-11-17", "17/11/2026", "2026-11-16", "2026-11-18"),
    ("settimana", "2026-11-18", "dal 16/11/2026 al 22/11/2026", "2026-11-09", "2026-11-23"),
    ("mese", "2026-11-18", "novembre 2026", "2026-10-01", "2026-12-01"),
    ("anno", "2026-11-18", "2026", "2025-01-01", None),  # 2027 has not begun
])
def test_previous_and_next_follow_the_links(client, period, data, name, earlier, later):
    url = f"{PAGE}?sp=PR002874&vista={period}&data={data}"
    for headers in ({}, htmx(url)):
        page = page_of(client, url, headers=headers)
        assert f'<strong class="chart-period-name" data-announce>{name}</strong>' in page
        previous = unescape(re.search(r'<a rel="prev" href="([^"]+)" hx-get="\1"', page).group(1))
        assert f"data={earlier}" in previous and f"vista={period}" in previous
        assert get(client, previous, headers=headers).status_code == 200
        following = re.search(r'<a rel="next" href="([^"]+)"', page)
        if later is None:
            assert following is None and '<span aria-disabled="true">Successivo →</span>' in page
        else:
            assert f"data={later}" in unescape(following.group(1))
            back = page_of(client, unescape(following.group(1)), headers=headers)
            assert "chart-period-name" in back


def test_the_date_picker_chooses_the_period_that_holds_the_date(client):
    for headers in ({}, htmx()):
        page = page_of(client, f"{PAGE}?sp=PR002874&vista=settimana&data=2026-11-19&mostra=tabella", headers=headers)
        assert "dal 16/11/2026 al 22/11/2026" in page
        assert 'name="data" type="date" min="1900-01-01" max="2999-12-31"\n             value="2026-11-19"' in page  # as picked
        assert '<input type="hidden" name="vista" value="settimana">' in page
        assert '<input type="hidden" name="mostra" value="tabella">' in page
        assert [head for head, _cells in table_rows(page)][0] == "lunedì 16/11/2026"


def period_link(page, label):
    """The address of the period switch's link `label` (Giorno, Settimana, Mese, Anno)."""
    nav = re.search(r'<nav class="view-switch chart-periods".*?</nav>', page, re.S).group(0)
    return unescape(re.search(rf'<a href="([^"]+)" hx-get="\1"[^>]*>{label}</a>', nav).group(1))


def test_switching_period_keeps_the_day_in_view(client):
    """From a day of November to the year and back to Mese is November, not January; from the
    month to Giorno is that day, not the 1st; the display switch keeps the day too."""
    start = f"{PAGE}?sp=PR002874&vista=giorno&data=2026-11-17"
    for headers in ({}, htmx(start)):
        day = page_of(client, start, headers=headers)
        year_url = period_link(day, "Anno")
        assert "vista=anno" in year_url and "data=2026-11-17" in year_url
        year = page_of(client, year_url, headers=headers)
        assert '<strong class="chart-period-name" data-announce>2026</strong>' in year
        assert 'value="2026-11-17"' in year  # the date field shows the day in view
        month = page_of(client, period_link(year, "Mese"), headers=headers)
        assert '<strong class="chart-period-name" data-announce>novembre 2026</strong>' in month
        week = page_of(client, period_link(month, "Settimana"), headers=headers)
        assert '<strong class="chart-period-name" data-announce>dal 16/11/2026 al 22/11/2026</strong>' in week
        table_url = unescape(re.search(r'<a href="([^"]+)" hx-get="\1"[^>]*>Tabella</a>', week).group(1))
        assert "mostra=tabella" in table_url and "data=2026-11-17" in table_url
        back = page_of(client, period_link(page_of(client, table_url, headers=headers), "Giorno"), headers=headers)
        assert '<strong class="chart-period-name" data-announce>17/11/2026</strong>' in back
        # A step moves to the next period's first day, which the switch then keeps.
        earlier = unescape(re.search(r'<a rel="prev" href="([^"]+)"', year).group(1))
        assert "data=2025-01-01" in earlier
        assert "gennaio 2025" in page_of(client, period_link(page_of(client, earlier, headers=headers), "Mese"), headers=headers)


@pytest.mark.parametrize("bad, message", [
    ("2026-13-01", "Data non valida: usa il calendario o AAAA-MM-GG."),
    ("ieri", "Data non valida: usa il calendario o AAAA-MM-GG."),
    ("0001-01-01", "Scegli una data tra il 1900 e il 2999."),
    ("9999-12-31", "Scegli una data tra il 1900 e il 2999."),
])
def test_a_bad_date_is_said_next_to_the_picker(client, bad, message):
    for headers in ({}, htmx()):
        page = page_of(client, f"{PAGE}?sp=PR002874&vista=giorno&data={bad}", headers=headers)
        assert f'<p class="field-error" id="err-data">{message}</p>' in page
        assert f'value="{bad}"' in page and 'aria-invalid="true"' in page
        assert 'class="chart-period-name"' in page  # the newest data's (or today's) day instead


def test_unknown_values_fall_back_to_a_month_chart(client):
    page = page_of(client, f"{PAGE}?sp=PR002874&vista=secolo&data=2026-11-05&mostra=torta")
    assert 'aria-current="true">Mese<' in page and 'aria-current="true">Grafico<' in page
    assert "novembre 2026" in page


def test_without_a_date_the_newest_data_is_shown(client):
    add_measures(point(), date(2025, 6, 29), date(2025, 7, 2))
    page = page_of(client, f"{PAGE}?sp=PR002874")
    assert 'chart-period-name" data-announce>luglio 2025<' in page
    assert "Dati aggiornati al 03/07/2025 00:00: la fine dell'ultima misura ricevuta per questo punto." in page


def test_the_first_year_has_no_earlier_link(client):
    page = page_of(client, f"{PAGE}?sp=PR002874&vista=anno&data=1900-06-01")
    assert '<span aria-disabled="true">← Precedente</span>' in page


# --- figures ---------------------------------------------------------------------------------------------

def test_a_weekday_split_by_band_with_totals_peak_and_f1_share(client):
    # Tuesday 17 November 2026: 1 kWh an hour, 3 kWh from 19:00 to 20:00 (local).
    peak = rome_midnight_utc(date(2026, 11, 17)) + timedelta(hours=19)
    add_measures(point(), date(2026, 11, 17), date(2026, 11, 17), kwh=lambda utc: 3.0 if utc == peak else 1.0)
    page = page_of(client, f"{PAGE}?sp=PR002874&vista=giorno&data=2026-11-17&mostra=tabella")
    rows = table_rows(page)
    assert len(rows) == 24 and rows[0][0] == "00:00" and rows[23][0] == "23:00"
    assert rows[8][1][:4] == ["1,000", "0,000", "0,000", "1,000"]  # 08:00 is F1
    assert rows[7][1][:4] == ["0,000", "1,000", "0,000", "1,000"]  # 07:00 is F2
    assert rows[23][1][:4] == ["0,000", "0,000", "1,000", "1,000"]  # 23:00 is F3
    assert rows[19][1][1] == "3,000" and rows[19][1][4] == "Effettiva"
    summary = summary_of(page)
    assert summary["F1"] == "11,0 kWh" and summary["F2"] == "7,0 kWh" and summary["F3"] == "8,0 kWh"
    assert summary["Totale"] == "26,0 kWh" and summary["Quota F1"] == "42%"
    assert summary["Ora di punta"] == "19:00–20:00 · 3,00 kWh"
    assert summary["Misure stimate"] == "0 su 24"


def test_quarter_hours_give_96_bars_and_an_hourly_peak(client):
    add_measures(point(), date(2026, 11, 17), date(2026, 11, 17), minutes=15, kwh=lambda utc: 0.25)
    page = page_of(client, f"{PAGE}?sp=PR002874&vista=giorno&data=2026-11-17&mostra=tabella")
    rows = table_rows(page)
    assert len(rows) == 96 and rows[1][0] == "00:15"
    assert summary_of(page)["Totale"] == "24,0 kWh" and summary_of(page)["Ora di punta"].endswith("· 1,00 kWh")
    page = page_of(client, f"{PAGE}?sp=PR002874&vista=giorno&data=2026-11-17")
    assert "Un valore ogni quarto d'ora." in page


@pytest.mark.parametrize("day, hours, minutes", [
    (date(2026, 3, 29), 23, 60), (date(2026, 10, 25), 25, 60), (date(2026, 3, 29), 23, 15), (date(2026, 10, 25), 25, 15),
])
def test_dst_days_have_23_or_25_hours(client, day, hours, minutes):
    add_measures(point(), day, day, minutes=minutes, kwh=lambda utc: minutes / 60)
    page = page_of(client, f"{PAGE}?sp=PR002874&vista=giorno&data={day}&mostra=tabella")
    rows = table_rows(page)
    assert len(rows) == hours * 60 // minutes
    assert summary_of(page)["Totale"] == f"{hours},0 kWh"
    labels = [head for head, _cells in rows]
    if hours == 23:
        assert "02:00" not in labels and labels[2 * 60 // minutes] == "03:00"
    else:  # the hour the clocks go back is charted twice, each told apart
        assert labels[2 * 60 // minutes] == "02:00 (ora legale)" and labels[3 * 60 // minutes] == "02:00 (ora solare)"
    svg = page_of(client, f"{CHART}?sp=PR002874&vista=giorno&data={day}")
    assert svg.count('class="rect reactive"') == hours * 60 // minutes  # a bar a slot, each slot in one band
    axis = re.findall(r'<text[^>]*class="major[^"]*"[^>]*>([^<]+)</text>', svg)
    assert len([label for label in axis if ":" in label]) <= 12
    if hours == 25:  # both 02:00 are on the axis, told apart
        assert "02:00" in axis and "02:00 bis" in axis
    else:
        assert "02:00" not in axis and "02:00 bis" not in axis


def test_a_week_across_the_clock_change_sums_its_days(client):
    # Monday 19 to Sunday 25 October 2026: the clocks go back on Sunday, a 25-hour day.
    add_measures(point(), date(2026, 10, 19), date(2026, 10, 25))
    fill_totals(point())
    for headers in ({}, htmx()):
        page = page_of(client, f"{PAGE}?sp=PR002874&vista=settimana&data=2026-10-21&mostra=tabella", headers=headers)
        rows = table_rows(page)
        assert [cells[3] for _head, cells in rows] == ["24,0"] * 6 + ["25,0"]
        assert summary_of(page)["Totale"] == "169,0 kWh"
    # And a month that holds both changes: March has 23 + 30 x 24 hours, October 25 + 30 x 24.
    add_measures(point(), date(2026, 3, 1), date(2026, 3, 31))
    fill_totals(point())
    march = page_of(client, f"{PAGE}?sp=PR002874&vista=mese&data=2026-03-10&mostra=tabella")
    assert summary_of(march)["Totale"] == "743,0 kWh"
    year = page_of(client, f"{PAGE}?sp=PR002874&vista=anno&data=2026-03-10&mostra=tabella")
    rows = dict(table_rows(year))
    assert rows["mar"][3] == "743" and rows["ott"][3] == "169"


def test_the_imports_totals_across_the_clock_change(client):
    """The same week with the totals as the import's own code keeps them (totals.rebuild)."""
    import totals
    from models import db_wrapper

    add_measures(point(), date(2026, 10, 19), date(2026, 10, 25), minutes=15, kwh=lambda utc: 0.25)
    totals.rebuild(db_wrapper.database)
    page = page_of(client, f"{PAGE}?sp=PR002874&vista=settimana&data=2026-10-25&mostra=tabella")
    assert [cells[3] for _head, cells in table_rows(page)] == ["24,0"] * 6 + ["25,0"]
    assert summary_of(page)["Totale"] == "169,0 kWh" and summary_of(page)["Misure stimate"] == "0 su 676"


def test_in_english(client):
    add_measures(point(), date(2026, 11, 2), date(2026, 11, 2))
    fill_totals(point())
    with client.session_transaction() as session:
        session["lang"] = "en"
    for period, name in (("giorno", "2 Nov 2026"), ("settimana", "2 Nov 2026"), ("mese", "November 2026"), ("anno", "2026")):
        page = page_of(client, f"{PAGE}?sp=PR002874&vista={period}&data=2026-11-02&mostra=tabella")
        assert name in page and '<html lang="en">' in page
        assert client.get(f"{CHART}?sp=PR002874&vista={period}&data=2026-11-02").status_code == 200


def test_estimated_intervals_show_on_the_bar_and_in_the_table(client):
    day = date(2026, 11, 17)
    estimated_hour = rome_midnight_utc(day) + timedelta(hours=3)
    add_measures(point(), day, date(2026, 11, 18), estimated=lambda utc: utc == estimated_hour)
    fill_totals(point())
    hours = table_rows(page_of(client, f"{PAGE}?sp=PR002874&vista=giorno&data=2026-11-17&mostra=tabella"))
    assert hours[3][1][4] == "Stimata" and hours[4][1][4] == "Effettiva"
    days = dict(table_rows(page_of(client, f"{PAGE}?sp=PR002874&vista=settimana&data=2026-11-17&mostra=tabella")))
    assert days["martedì 17/11/2026"][4] == "Stimata in parte (1 su 24)"
    assert days["mercoledì 18/11/2026"][4] == "Effettiva" and days["lunedì 16/11/2026"][4] == "–"
    svg = page_of(client, f"{CHART}?sp=PR002874&vista=settimana&data=2026-11-17")
    assert svg.count('style="fill:url(#q') == 3  # Tuesday's three bands are striped, no other day's
    assert "<pattern" in svg
    page = page_of(client, f"{PAGE}?sp=PR002874&vista=settimana&data=2026-11-17")
    assert "Righe oblique: misure stimate dal distributore" in page


def test_the_year_before_is_a_second_series_when_there_is_data(client):
    add_measures(point(), date(2026, 11, 1), date(2026, 11, 30))
    fill_totals(point())
    page = page_of(client, f"{PAGE}?sp=PR002874&vista=mese&data=2026-11-01&mostra=tabella")
    assert "Un anno prima" not in page
    assert "Un anno prima" not in page_of(client, f"{CHART}?sp=PR002874&vista=mese&data=2026-11-01")
    add_measures(point(), date(2025, 11, 1), date(2025, 11, 10), kwh=lambda utc: 0.5)
    fill_totals(point())
    page = page_of(client, f"{PAGE}?sp=PR002874&vista=mese&data=2026-11-01&mostra=tabella")
    rows = dict(table_rows(page))
    assert rows["martedì 10"][-1] == "12,0" and rows["mercoledì 11"][-1] == "–"
    assert summary_of(page)["Un anno prima"].startswith("120,0 kWh")
    svg = page_of(client, f"{CHART}?sp=PR002874&vista=mese&data=2026-11-01")
    assert ">Un anno prima (novembre 2025)<" in svg
    # A day is set against the same weekday 52 weeks before.
    add_measures(point(), date(2025, 11, 18), date(2025, 11, 18), kwh=lambda utc: 2.0)
    page = page_of(client, f"{PAGE}?sp=PR002874&vista=giorno&data=2026-11-17&mostra=tabella")
    assert table_rows(page)[0][1][-1] == "2,000" and "18/11/2025" in page


def test_drill_down_from_year_to_month_to_day(client):
    add_measures(point(), date(2026, 11, 1), date(2026, 11, 2))
    fill_totals(point())
    year = page_of(client, f"{PAGE}?sp=PR002874&vista=anno&data=2026-01-01&mostra=tabella")
    link = unescape(re.search(r'<a href="([^"]+)"[^>]*>nov</a>', year).group(1))
    assert "vista=mese" in link and "data=2026-11-01" in link
    month = page_of(client, link, headers=htmx(link))
    link = unescape(re.search(r'<a href="([^"]+)"[^>]*>lunedì 2</a>', month).group(1))
    assert "vista=giorno" in link and "data=2026-11-02" in link
    assert len(table_rows(page_of(client, link))) == 24


# --- compared with similar households ---------------------------------------------------------------------

def households(count, province="RA", kind="person", month=date(2026, 10, 1), base=100.0):
    """`count` other customers with an October 2026 of base + 7.3 n kWh each (odd figures, so
    that the page can be searched for any of them)."""
    figures = []
    for n in range(count):
        other = make_customer(kind=kind, province=province)
        p = make_supply_point(other, province=province)
        kwh = base + 7.3 * n
        figures.append(kwh)
        MonthlyConsumption.create(supply_point=p, month=month, f1=kwh, f2=0, f3=0, intervals=31 * 24 + 1)
    return figures


def my_october(kwh=200.0):
    MonthlyConsumption.create(supply_point=point(), month=date(2026, 10, 1), f1=kwh / 2, f2=kwh / 4, f3=kwh / 4,
                              intervals=745)


OCTOBER = f"{PAGE}?sp=PR002874&vista=mese&data=2026-10-01"


def test_compared_with_20_similar_households(client):
    figures = households(19)
    households(30, province="FC")  # another province
    households(30, kind="company")  # not households
    my_october(200.0)
    for headers in ({}, htmx()):
        page = page_of(client, OCTOBER, headers=headers)
        section = re.search(r'<section class="comparison".*?</section>', page, re.S).group(0)
        assert "Tra 20 famiglie della tua provincia" in section
        values = sorted(figures + [200.0])
        assert "<dt>Tu</dt><dd>200 kWh</dd>" in section
        median = round((values[9] + values[10]) / 2)
        assert f"<dt>Consumo mediano</dt><dd>{median} kWh</dd>" in section
        quartile = round(values[4] + (values[5] - values[4]) * 0.75)
        assert f"fino a {quartile} kWh" in section
        above = sum(1 for f in figures if f > 200)
        assert f"Consumi meno del {round(100 * above / 19)}% delle altre famiglie." in section
        # No other household's own figure, however written.
        for figure in figures:
            for text in (f"{figure:.1f}".replace(".", ","), f"{figure:.2f}".replace(".", ","), f"{figure:.1f}"):
                assert text not in page


def test_no_comparison_under_20_households_or_for_a_company_or_an_incomplete_month(client):
    households(18)
    my_october()
    assert "Confronto con famiglie simili" not in page_of(client, OCTOBER)
    households(1)
    assert "Confronto con famiglie simili" in page_of(client, OCTOBER)
    for period in ("giorno", "settimana", "anno"):  # a month's ranking, in the month view only
        assert "Confronto con famiglie simili" not in page_of(client, OCTOBER.replace("mese", period))
    MonthlyConsumption.update(intervals=100).where(MonthlyConsumption.supply_point == point()).execute()
    assert "Confronto con famiglie simili" not in page_of(client, OCTOBER)


def test_no_comparison_for_a_company(app):
    company = make_customer(code="005008", kind="company", name="ACME SRL")
    p = make_supply_point(company, code="PR002880")
    make_user(company)
    households(25)
    MonthlyConsumption.create(supply_point=p, month=date(2026, 10, 1), f1=500, f2=0, f3=0, intervals=745)
    client = app.test_client()
    assert login(client, "005008", PASSWORD).status_code == 303
    page = page_of(client, f"{PAGE}?sp=PR002880&vista=mese&data=2026-10-01")
    assert "ottobre 2026" in page and "Confronto con famiglie simili" not in page


# --- gas -------------------------------------------------------------------------------------------------

def test_a_gas_point_shows_smc_from_readings_and_invoices_without_bands(client):
    gas = point("PR002875")
    for day, value, source in ((date(2026, 9, 30), 1000, "distributor"), (date(2026, 10, 31), 1310, "distributor"),
                               (date(2026, 11, 30), 1370, "customer")):
        Reading.create(supply_point=gas, date=day, register="total", value=value, source=source)
    make_invoice(gas.customer, gas, issue_date=date(2026, 10, 5), period_start=date(2026, 8, 1),
                 period_end=date(2026, 9, 30), gas_smc=61)
    for headers in ({}, htmx()):
        page = page_of(client, f"{PAGE}?sp=PR002875&vista=mese&data=2026-10-01&mostra=tabella", headers=headers)
        rows = table_rows(page)
        assert len(rows) == 31 and rows[0][1] == ["10,0", "Lettura del distributore"]
        assert "F1" not in page and "Quota F1" not in page
        assert summary_of(page)["Totale"] == "310,0 Smc"
        assert "vista=giorno" not in page  # a gas meter has no hours to show
    november = dict(table_rows(page_of(client, f"{PAGE}?sp=PR002875&vista=mese&data=2026-11-01&mostra=tabella")))
    assert november["lunedì 2"] == ["2,0", "Autolettura"]
    year = dict(table_rows(page_of(client, f"{PAGE}?sp=PR002875&vista=anno&data=2026-01-01&mostra=tabella")))
    assert year["ago"] == ["31", "Da fattura"] and year["set"] == ["30", "Da fattura"]
    assert year["ott"] == ["310", "Lettura del distributore"] and year["nov"] == ["60", "Autolettura"]
    assert year["dic"] == ["–", "–"]
    # A day asked for is its month.
    page = page_of(client, f"{PAGE}?sp=PR002875&vista=giorno&data=2026-10-07")
    assert 'aria-current="true">Mese<' in page and "ottobre 2026" in page
    assert "Dati aggiornati al 30/11/2026: la lettura più recente di questo punto." in page
    svg = page_of(client, f"{CHART}?sp=PR002875&vista=anno&data=2026-01-01")
    assert ">Smc<" in svg and ">F1<" not in svg
    assert "style=\"fill:url(#q0-90)\"" in svg and "fill:#" in svg  # self-reading striped, invoice light


# --- ownership ------------------------------------------------------------------------------------------

def test_another_customers_point_is_404(client):
    for url in (f"{PAGE}?sp=PR999999", f"{CHART}?sp=PR999999", f"{PAGE}?sp=PR999999&vista=giorno&data=2026-11-01"):
        assert client.get(url).status_code == 404
        assert client.get(url, headers=htmx()).status_code == 404


def test_a_customer_without_points(app):
    customer = make_customer(code="005009")
    make_user(customer)
    client = app.test_client()
    assert login(client, "005009", PASSWORD).status_code == 303
    page = page_of(client, PAGE)
    assert "Non risultano punti di fornitura a tuo nome." in page
    assert client.get(CHART).status_code == 404


def test_anonymous_visitors_go_to_login(app):
    response = app.test_client().get(PAGE + "?sp=PR002874")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_the_times_shown_are_romes(client):
    """The newest measure ends at 23:00 UTC on 1 December, midnight in Rome."""
    Measure.create(supply_point=point(), start=datetime(2026, 12, 1, 22, 0), kwh=1.0)
    keep_measures_until(point())
    page = page_of(client, f"{PAGE}?sp=PR002874")
    assert "Dati aggiornati al 02/12/2026 00:00" in page
    assert 'chart-period-name" data-announce>dicembre 2026<' in page


def test_the_pages_say_when_an_import_last_brought_the_points_measures(client, app, tmp_path):
    """"Dati aggiornati al" is the last import that brought measures for the point, whatever
    their own dates; measures written otherwise (the demo's, a test's) say their end only."""
    import importer
    from models import SupplyPoint, utcnow

    (tmp_path / "measures.csv").write_text(
        "supply_point_code,start,kwh,interval_minutes,quality\n"
        "PR002874,2026-11-30T23:00:00+00:00,0.500,60,actual\n")
    before = utcnow()
    with app.app_context():
        assert not importer.run([str(tmp_path / "measures.csv")], str(tmp_path / "store")).problems
    imported = point().measures_imported_at
    assert imported is not None and imported >= before.replace(microsecond=0)
    assert point("PR002875").measures_imported_at is None  # not in the file
    assert SupplyPoint.get(SupplyPoint.code == "PR999999").measures_imported_at is None

    charts_page = page_of(client, f"{PAGE}?sp=PR002874&vista=giorno&data=2026-12-01")
    assert "con l'ultima importazione di misure per questo punto; l'ultima misura finisce il 01/12/2026 01:00" in charts_page
    measures_page = page_of(client, "/misure-elettriche?sp=PR002874&dal=2026-12-01&al=2026-12-01")
    assert "misure fino al 01/12/2026 01:00 · importate il " in measures_page


# --- a view asked again --------------------------------------------------------------------------

def import_measures(app, tmp_path, rows):
    import importer
    (tmp_path / "measures.csv").write_text("supply_point_code,start,kwh,interval_minutes,quality\n" + rows)
    with app.app_context():
        assert not importer.run([str(tmp_path / "measures.csv")], str(tmp_path / "store")).problems


def test_a_view_asked_again_is_answered_without_a_query_until_an_import_changes_it(client, app, tmp_path, monkeypatch):
    """The year block htmx swaps is kept by the process, keyed by the point's last import: the
    same view again sends the same HTML and asks the database nothing past the session; the
    next import's measures show at once."""
    import models
    import_measures(app, tmp_path, "PR002874,2026-03-10T10:00:00+00:00,15.000,60,actual\n")
    url = f"{PAGE}?sp=PR002874&vista=anno&data=2026-01-01&mostra=tabella"
    first = get(client, url, headers=htmx())
    assert {"HX-Request", "HX-Target"} <= {v.strip() for v in first.headers["Vary"].split(",")}
    assert dict(table_rows(first.get_data(as_text=True)))["mar"][3] == "15"

    database = models.db_wrapper.database.obj
    sent = []
    execute_sql = database.execute_sql
    monkeypatch.setattr(database, "execute_sql", lambda sql, params=None: sent.append(sql) or execute_sql(sql, params))
    again = get(client, url, headers=htmx())
    assert again.get_data() == first.get_data() and again.headers["Vary"] == first.headers["Vary"]
    assert not [sql for sql in sent if "usersession" not in sql.lower()], sent  # the session's own lookup only

    import_measures(app, tmp_path, "PR002874,2026-03-10T11:00:00+00:00,20.000,60,actual\n")
    after = get(client, url, headers=htmx())
    assert dict(table_rows(after.get_data(as_text=True)))["mar"][3] == "35"


def test_the_whole_page_and_other_views_are_not_taken_from_the_kept_block(client, app, tmp_path):
    import_measures(app, tmp_path, "PR002874,2026-03-10T10:00:00+00:00,1.500,60,actual\n")
    url = f"{PAGE}?sp=PR002874&vista=anno&data=2026-01-01&mostra=tabella"
    get(client, url, headers=htmx())
    page = page_of(client, url)
    assert page.startswith("<!doctype html>") and "<h1>Grafici avanzati</h1>" in page
    month = page_of(client, f"{PAGE}?sp=PR002874&vista=mese&data=2026-03-01&mostra=tabella", headers=htmx())
    assert 'data-announce>marzo 2026<' in month
    assert post_form(client, "/lingua", {"lang": "en"}, page=url).status_code == 303
    english = page_of(client, url, headers=htmx())
    assert "← Previous</a>" in english and "Precedente" not in english


def test_a_chart_asked_again_is_answered_without_a_query_until_an_import_changes_it(client, app, tmp_path, monkeypatch):
    import models
    import_measures(app, tmp_path, "PR002874,2026-03-10T10:00:00+00:00,15.000,60,actual\n")
    url = f"{CHART}?sp=PR002874&vista=giorno&data=2026-03-10"
    first = get(client, url)
    assert first.mimetype == "image/svg+xml" and first.get_data().count(b'class="rect reactive"') == 1

    database = models.db_wrapper.database.obj
    sent = []
    execute_sql = database.execute_sql
    monkeypatch.setattr(database, "execute_sql", lambda sql, params=None: sent.append(sql) or execute_sql(sql, params))
    again = get(client, url)
    assert again.get_data() == first.get_data()
    assert not [sql for sql in sent if "usersession" not in sql.lower()], sent

    import_measures(app, tmp_path, "PR002874,2026-03-10T11:00:00+00:00,20.000,60,actual\n")
    assert get(client, url).get_data().count(b'class="rect reactive"') == 2


def test_nothing_is_kept_when_the_setting_is_zero(make_app, tmp_path):
    app = make_app(CHART_BLOCKS_SECONDS=0)
    with app.app_context():
        customer = make_customer(code="005007")
        make_supply_point(customer, code="PR002874")
        make_user(customer)
        client = app.test_client()
        assert login(client, "005007", PASSWORD).status_code == 303
        import_measures(app, tmp_path, "PR002874,2026-03-10T10:00:00+00:00,15.000,60,actual\n")
        get(client, f"{CHART}?sp=PR002874&vista=giorno&data=2026-03-10")
        get(client, f"{PAGE}?sp=PR002874&vista=giorno&data=2026-03-10", headers=htmx())
        assert "recent_chart_blocks" not in app.extensions
