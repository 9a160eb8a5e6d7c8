"""Prelievi Fatturati: billed withdrawals by month, as charts, a table and a CSV."""
import io

from flask import current_app, g
from flask_babel import gettext as _
from flask_login import current_user

import charts
import i18n
import spreadsheets
from forms import WITHDRAWAL_VIEWS, WithdrawalsFilterForm
from i18n import rome_today
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
