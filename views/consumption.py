"""Prelievi Fatturati: billed withdrawals by month, as charts, a table and a CSV."""
import io
from datetime import timedelta

from babel.dates import get_month_names
from flask import abort, current_app, g, make_response, redirect, request, stream_with_context, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

import bands
import charts
import forms
import i18n
import measure_files
import spreadsheets
from forms import MEASURE_PERIODS, WITHDRAWAL_VIEWS, MeasuresFilterForm, WithdrawalsFilterForm
from i18n import rome_today
from models import Measure, MonthlyConsumption, Reading, utcnow
from views.common import RecentPages, svg_response
from views.customer_area import area_blueprint, selected_point_or_404, serves_a_file
from views.rendering import render, requested_block

bp = area_blueprint("consumption", __name__)

# --- Prelievi Fatturati -------------------------------------------------------------------------------


def withdrawals_choice():
    """(year, years, view): the year asked for if the point has data then, else its newest; the
    point's years with data; the view asked for, else the first."""
    form = WithdrawalsFilterForm()
    years = charts.years_with_data(current_user.customer_id, g.supply_point)
    year = form.chosen("anno")
    if year not in years:
        year = years[0] if years else rome_today().year
    return year, years, form.chosen("vista") or next(iter(WITHDRAWAL_VIEWS))


@bp.route("/prelievi-fatturati")
def billed_withdrawals():
    point = g.supply_point
    if point is None:
        return render("consumption/withdrawals.html", title=_("Prelievi Fatturati"), rows=None)
    year, years, view = withdrawals_choice()
    customer = current_user.customer_id
    rows, previous = charts.monthly(customer, point, year), charts.monthly(customer, point, year - 1)
    key = charts.total_key(point)
    return render("consumption/withdrawals.html", title=_("Prelievi Fatturati"), rows=rows, previous=previous,
                  year=year, years=years, view=view, views=WITHDRAWAL_VIEWS, key=key,
                  comparison=charts.year_on_year(rows, previous, key), months=charts.month_names(i18n.language()))


@bp.route("/prelievi-fatturati.svg")
@serves_a_file
def billed_withdrawals_chart():
    point = selected_point_or_404()
    year, _years, view = withdrawals_choice()
    unit = "Smc" if point.is_gas else "kWh"
    customer, colour = current_user.customer_id, current_app.config["PORTAL_COLOR"]
    rows = charts.monthly(customer, point, year)
    if view == "confronto":
        texts = {"unit": unit, "title": _("Prelievi fatturati %(year)d e %(previous)d, %(point)s",
                                          year=year, previous=year - 1, point=point.code)}
        previous = charts.monthly(customer, point, year - 1)
        svg = charts.comparison_svg(point, rows, previous, year, i18n.language(), colour, texts)
    else:
        texts = {"unit": unit, "title": _("Prelievi fatturati %(year)d, %(point)s", year=year, point=point.code)}
        svg = charts.chart_svg(point, rows, i18n.language(), colour, texts)
    return svg_response(svg)


@bp.route("/prelievi-fatturati.csv")
@serves_a_file
def billed_withdrawals_csv():
    """For Italian Excel: semicolons, decimal commas, a BOM."""
    point = selected_point_or_404()
    year, _years, _view = withdrawals_choice()
    rows = charts.monthly(current_user.customer_id, point, year)
    out = io.StringIO()
    writer = spreadsheets.writer(out, delimiter=";", lineterminator="\r\n")
    comma = lambda value: "" if value is None else spreadsheets.DecimalComma(value)  # noqa: E731
    if point.is_gas:
        writer.writerow(["Mese", "Smc"])
        writer.writerows([f"{year}-{r['month']:02d}", comma(r["smc"])] for r in rows if r["invoices"])
    else:
        writer.writerow(["Mese", "F1 kWh", "F2 kWh", "F3 kWh", "Totale kWh", "Potenza massima kW"])
        writer.writerows([f"{year}-{r['month']:02d}", comma(r["f1"]), comma(r["f2"]), comma(r["f3"]),
                          comma(r["total"]), comma(r["peak"])] for r in rows if r["invoices"])
    response = current_app.response_class("\ufeff" + out.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = f"attachment; filename=prelievi-{point.code}-{year}.csv"
    response.headers["Cache-Control"] = "private, no-store"
    return response


# --- Grafici avanzati ----------------------------------------------------------------------------


def chart_choice(point, updated=None):
    """(period, day, first, last, display, form) asked for in the URL: the period holding `day`,
    which is `data`, else the newest day with data (`updated`, charts.last_update), else today; a
    period a gas point has not (a day) is a month. The view's links to another period or display
    keep `day`, so the year and back to Mese is the month one came from, not January."""
    form = forms.AdvancedChartsForm()
    periods = charts.GAS_PERIODS if point.is_gas else charts.PERIODS
    period = form.chosen("vista")
    if period not in periods:
        period = forms.DEFAULT_CHART_PERIOD
    day = form.chosen("data")
    if day is None:
        updated = updated or charts.last_update(current_user.customer_id, point)
        day = updated["day"] if updated else rome_today()
    first, last = charts.period_bounds(period, day)
    return period, day, first, last, form.chosen("mostra") or next(iter(forms.CHART_DISPLAYS)), form


def period_name(period, first):
    """A period in words: "02/11/2026", "dal 02/11/2026 al 08/11/2026", "novembre 2026", "2026"."""
    language = i18n.language()
    if period == "giorno":
        return i18n.local_date(first, language)
    if period == "settimana":
        last = charts.period_bounds(period, first)[1]
        return _("dal %(first)s al %(last)s", first=i18n.local_date(first, language), last=i18n.local_date(last, language))
    if period == "mese":
        return f"{get_month_names('wide', locale=language)[first.month]} {first.year}"
    return str(first.year)


def chart_texts(point, period, first):
    """The period's name, the year before's, the chart's title and its other labels."""
    name, before_name = period_name(period, first), period_name(period, charts.year_before(period, first))
    return {"name": name, "before_name": before_name, "unit": "Smc" if point.is_gas else "kWh",
            "title": _("Consumi %(period)s, %(point)s", period=name, point=point.code),
            "previous": _("Un anno prima (%(period)s)", period=before_name)}


def chart_data(point, period, first, last):
    customer, language = current_user.customer_id, i18n.language()
    data = charts.consumption(customer, point, period, first, last, language)
    before = charts.year_before(period, first)
    previous = charts.consumption(customer, point, period, before, charts.period_bounds(period, before)[1], language)
    has_previous = charts.with_year_before(data, previous)
    return data, has_previous


# The Grafici avanzati block htmx swaps (a period, a step back or forth) and its chart are the
# same for anyone who asks for the same view of a point until an import brings the point new
# measures: each process keeps the blocks and charts it made, keyed by that import's time, and
# answers them again without a query. CHART_BLOCKS_SECONDS at most (five minutes), because a month's comparison moves with
# other households' imports. Points whose measures came otherwise (no import time) are not
# kept. One store per app: tests make many apps, whose databases reuse ids.
def recent_chart_blocks():
    return current_app.extensions.setdefault(
        "recent_chart_blocks", RecentPages(entries=2000, seconds=current_app.config["CHART_BLOCKS_SECONDS"]))


def kept_view_key(point, period, day, display, form):
    """What a view's block or chart is kept by (None: not kept). For a block, `day` is the day in
    view, which its links carry; for the chart, which has no links, the period's first day and
    `display` None."""
    if (point.is_gas or point.measures_imported_at is None or form["data"].errors  # the block says what is wrong
            or not current_app.config["CHART_BLOCKS_SECONDS"]):
        return None
    return (point.id, point.measures_imported_at, period, day, display, i18n.language(), rome_today())


@bp.route("/grafici-avanzati")
def advanced_charts():
    point = g.supply_point
    if point is None:
        return render("consumption/advanced.html", title=_("Grafici avanzati"), data=None)
    customer = current_user.customer_id
    updated = charts.last_update(customer, point) if "data" not in request.args else None
    period, day, first, last, display, form = chart_choice(point, updated)
    key = kept_view_key(point, period, day, display, form) if requested_block() == "advanced_charts" else None
    block = recent_chart_blocks().get(key) if key else None
    if block is not None:
        return make_response(block)
    response = advanced_charts_page(point, period, day, first, last, display, form, updated)
    if key:
        recent_chart_blocks().put(key, response.get_data(as_text=True))
    return response


def advanced_charts_page(point, period, day, first, last, display, form, updated):
    customer = current_user.customer_id
    updated = updated or charts.last_update(customer, point)
    data, has_previous = chart_data(point, period, first, last)
    comparison = None
    if period == "mese":
        comparison = MonthlyConsumption.household_comparison(customer, point.id, first)
    earlier = charts.step_period(period, first, -1)
    later = charts.step_period(period, first, 1)
    return render("consumption/advanced.html", title=_("Grafici avanzati"), data=data,
                  summary=charts.consumption_summary(data), peak=charts.peak_hour(data), has_previous=has_previous, comparison=comparison,
                  period=period, day=day, first=first, last=last, display=display, form=form,
                  periods={p: forms.CHART_PERIODS[p] for p in (charts.GAS_PERIODS if point.is_gas else charts.PERIODS)},
                  displays=forms.CHART_DISPLAYS, texts=chart_texts(point, period, first),
                  earlier=earlier if earlier.year >= 1900 else None, later=later if later <= rome_today() else None,
                  updated=updated, chart_size=(charts.CHART_WIDTH, charts.CHART_HEIGHT))


@bp.route("/grafici-avanzati.svg")
@serves_a_file
def advanced_charts_chart():
    point = selected_point_or_404()
    period, _day, first, last, _display, form = chart_choice(point)
    key = kept_view_key(point, period, first, None, form)
    svg = recent_chart_blocks().get(key) if key else None
    if svg is None:
        data, has_previous = chart_data(point, period, first, last)
        svg = charts.consumption_svg(point, data, has_previous, i18n.language(), current_app.config["PORTAL_COLOR"],
                                     chart_texts(point, period, first))
        if key:
            recent_chart_blocks().put(key, svg)
    return svg_response(svg)


# --- Misure elettriche ---------------------------------------------------------------------------

MEASURES_PAGE = 96  # rows at a time: a day of quarter-hours, four days of hours
MEASURE_QUALITY = {"actual": _l("rilevata"), "estimated": _l("stimata")}


def measures_interval(point):
    """(form, first day, last day): the Rome days asked for (a preset's, or the dates), an open
    start being the day of the point's oldest measure and an open end today."""
    form = MeasuresFilterForm()
    first, last = form.interval(rome_today())
    if form.chosen("periodo"):  # the date fields show the preset's days
        form.dal.raw_data, form.al.raw_data = [first.isoformat()], [last.isoformat()]
    last = last or rome_today()
    if first is None:
        oldest = Measure.first_start(current_user.customer_id, point)
        first = min(bands.to_rome(oldest).date(), last) if oldest else last
    return form, first, last


def in_utc(first, last):
    """The instants of Rome's days first..last (both included) as the database stores them."""
    return i18n.rome_midnight_utc(first), i18n.rome_midnight_utc(last + timedelta(days=1))


def measure_row(measure):
    """A measure as the list shows it: its Rome day and start time; on the night summer time
    ends, the hour that comes twice says which one it is."""
    local = bands.to_rome(measure.start)
    repeated = local.replace(fold=1 - local.fold).utcoffset() != local.utcoffset()
    return {"day": local.date(), "start": local.strftime("%H:%M"),
            "clock": (_("ora legale") if local.dst() else _("ora solare")) if repeated else None,
            "kwh": measure.kwh, "quality": measure.quality, "band": bands.band(measure.start)}


@bp.route("/misure-elettriche")
def measures():
    point = g.supply_point
    if point is None or point.is_gas:
        # The menu offers this page for electricity only; a gas point reached by the point
        # selector or an old bookmark gets a page saying where its figures are.
        return render("consumption/measures.html", title=_("Misure elettriche"), point=point)
    form, first, last = measures_interval(point)
    customer = current_user.customer_id
    page = form.chosen("pagina") or 1
    since, before = in_utc(first, last)
    rows = list(Measure.between(customer, point, since, before).order_by(Measure.start.desc())
                .offset((page - 1) * MEASURES_PAGE).limit(MEASURES_PAGE + 1))
    readings = (Reading.for_point(customer, point).where(Reading.date.between(first, last))
                .order_by(Reading.date.desc(), Reading.register))
    args = {key: value for key, value in request.args.items() if key != "pagina"}
    return render("consumption/measures.html", title=_("Misure elettriche"), point=point, form=form,
                  first=first, last=last, rows=[measure_row(m) for m in rows[:MEASURES_PAGE]],
                  more=len(rows) > MEASURES_PAGE, page=page, args=args, readings=list(readings),
                  presets=MEASURE_PERIODS, preset=form.chosen("periodo"), qualities=MEASURE_QUALITY,
                  updated=charts.last_update(customer, point))


def measures_file(make, mimetype, extension):
    """A download of the interval asked for, streamed as it is made. Its links carry valid
    dates; a hand-made URL with bad ones goes back to the page, which says what is wrong."""
    point = selected_point_or_404()
    if point.is_gas:
        abort(404)
    form, first, last = measures_interval(point)
    if form.dal.errors or form.al.errors:  # other values that are none are ignored, as on the page
        return redirect(url_for("consumption.measures", **request.args), 303)
    batches = Measure.batches_between(current_user.customer_id, point, *in_utc(first, last))
    response = current_app.response_class(stream_with_context(make(point, first, last, batches)), mimetype=mimetype)
    name = f"misure-{point.code}-{first.isoformat()}-{last.isoformat()}{extension}"
    response.headers["Content-Disposition"] = f"attachment; filename={name}"
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.route("/misure-elettriche.csv")
@serves_a_file
def measures_csv():
    return measures_file(lambda point, first, last, batches: measure_files.iso_csv(batches), "text/csv", ".csv")


@bp.route("/misure-elettriche-excel.csv")
@serves_a_file
def measures_excel_csv():
    """For Italian Excel: semicolons, decimal commas, a BOM."""
    return measures_file(lambda point, first, last, batches: measure_files.excel_csv(batches), "text/csv", "-excel.csv")


@bp.route("/misure-elettriche.xml")
@serves_a_file
def measures_green_button():
    """Green Button "Download My Data" (ESPI Atom/XML)."""
    def feed(point, first, last, batches):
        minutes = Measure.newest_interval_minutes(current_user.customer_id, point) or 60
        return measure_files.espi_feed(batches, point.code, first, last, minutes, utcnow())
    return measures_file(feed, "application/atom+xml", ".xml")
