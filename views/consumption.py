"""Prelievi Fatturati: billed withdrawals by month, as charts, a table and a CSV."""
import io

from babel.dates import get_month_names
from flask import current_app, g
from flask_babel import gettext as _
from flask_login import current_user

import charts
import forms
import i18n
import spreadsheets
from forms import WITHDRAWAL_VIEWS, WithdrawalsFilterForm
from i18n import rome_today
from models import MonthlyConsumption
from views.common import svg_response
from views.customer_area import area_blueprint, selected_point_or_404, serves_a_file
from views.rendering import render

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
    """(period, first, last, display, form) asked for in the URL: the period holding `data`, else
    the newest day with data (`updated`, charts.last_update), else today; a period a gas point
    has not (a day) is a month."""
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
    return period, first, last, form.chosen("mostra") or next(iter(forms.CHART_DISPLAYS)), form


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


@bp.route("/grafici-avanzati")
def advanced_charts():
    point = g.supply_point
    if point is None:
        return render("consumption/advanced.html", title=_("Grafici avanzati"), data=None)
    customer = current_user.customer_id
    updated = charts.last_update(customer, point)
    period, first, last, display, form = chart_choice(point, updated)
    data, has_previous = chart_data(point, period, first, last)
    comparison = None
    if period == "mese":
        comparison = MonthlyConsumption.household_comparison(customer, point.id, first)
    earlier = charts.step_period(period, first, -1)
    later = charts.step_period(period, first, 1)
    return render("consumption/advanced.html", title=_("Grafici avanzati"), data=data,
                  summary=charts.consumption_summary(data), peak=charts.peak_hour(data), has_previous=has_previous, comparison=comparison,
                  period=period, first=first, last=last, display=display, form=form,
                  periods={p: forms.CHART_PERIODS[p] for p in (charts.GAS_PERIODS if point.is_gas else charts.PERIODS)},
                  displays=forms.CHART_DISPLAYS, texts=chart_texts(point, period, first),
                  earlier=earlier if earlier.year >= 1900 else None, later=later if later <= rome_today() else None,
                  updated=updated, chart_size=(charts.CHART_WIDTH, charts.CHART_HEIGHT))


@bp.route("/grafici-avanzati.svg")
@serves_a_file
def advanced_charts_chart():
    point = selected_point_or_404()
    period, first, last, _display, _form = chart_choice(point)
    data, has_previous = chart_data(point, period, first, last)
    svg = charts.consumption_svg(point, data, has_previous, i18n.language(), current_app.config["PORTAL_COLOR"],
                                 chart_texts(point, period, first))
    return svg_response(svg)
