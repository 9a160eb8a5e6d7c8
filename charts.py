"""Billed withdrawals (Prelievi Fatturati): the figures per month of a year, and their SVG chart.

Each invoice counts in the month and year of its period's start. Electricity: energy by band
(F1, F2, F3), their total and the peak power; gas: Smc. Charts are pygal SVG documents served on
their own (an <img>): no script of theirs runs, nothing is fetched from another host.
"""
import math
from datetime import date
from decimal import Decimal

import pygal
from babel.dates import get_month_names
from babel.numbers import format_decimal
from pygal.style import Style

from models import Invoice


def monthly(customer, point, year):
    """Twelve rows {month, f1, f2, f3, total, peak, smc} for the point's invoices of `year`."""
    rows = [{"month": m, "f1": Decimal(0), "f2": Decimal(0), "f3": Decimal(0), "total": Decimal(0),
             "peak": None, "smc": Decimal(0), "invoices": 0} for m in range(1, 13)]
    for start, f1, f2, f3, peak, smc in Invoice.billed_withdrawals(customer, point, date(year, 1, 1), date(year, 12, 31)):
        row = rows[start.month - 1]
        row["invoices"] += 1
        for band, value in (("f1", f1), ("f2", f2), ("f3", f3)):
            row[band] += value or 0
        row["total"] = row["f1"] + row["f2"] + row["f3"]
        if peak is not None:
            row["peak"] = max(row["peak"] or 0, peak)
        row["smc"] += smc or 0
    return rows


def total_key(point):
    """The figure a month adds up to: Smc for gas, the bands' kWh for electricity."""
    return "smc" if point.is_gas else "total"


def year_on_year(rows, previous, key):
    """The year's total against the year before's over the same months, so that a year still
    being billed is not set against a whole one; the year before's whole total too, and the
    change in percent (None without a base)."""
    billed = {r["month"] for r in rows if r["invoices"]}
    total = sum(r[key] for r in rows)
    same_months = sum(r[key] for r in previous if r["month"] in billed)
    change = float((total - same_months) / same_months * 100) if same_months else None
    return {"total": total, "same_months": same_months, "previous_total": sum(r[key] for r in previous),
            "change": change}


def years_with_data(customer, point):
    return Invoice.billed_years(customer, point)


def last_twelve_months(customer, point, today):
    """[(year, month, value)] for the twelve months before `today`'s month (kWh or Smc)."""
    months = []
    year, month = today.year, today.month
    for _ in range(12):
        month -= 1
        if month == 0:
            year, month = year - 1, 12
        months.append((year, month))
    months.reverse()
    by_year = {y: monthly(customer, point, y) for y in {y for y, _ in months}}
    key = total_key(point)
    return [(y, m, by_year[y][m - 1][key] if by_year[y][m - 1]["invoices"] else None) for y, m in months]


def small_chart_svg(point, months, locale, colour, title):
    """The Home Page's little chart: twelve bars, no legend."""
    style = Style(background="transparent", plot_background="transparent", colors=(colour,),
                  font_family="system-ui, sans-serif", foreground="#1f2933", foreground_strong="#1f2933",
                  foreground_subtle="#52606d", title_font_size=16, label_font_size=12)
    chart = pygal.Bar(js=[], style=style, width=480, height=220, show_legend=False, margin=10, title=title,
                      disable_xml_declaration=True)
    names = month_names(locale)
    chart.x_labels = [names[m - 1] for _, m, _ in months]
    values = [float(v) if v is not None else None for _, _, v in months]
    chart.add("Smc" if point.is_gas else "kWh", values)
    fit_scale(chart, max((v for v in values if v is not None), default=0), locale)
    return chart.render(is_unicode=True)


def month_names(locale):
    names = get_month_names("abbreviated", locale=locale)
    return [names[m] for m in range(1, 13)]


def year_style(palette):
    return Style(background="transparent", plot_background="transparent", colors=palette,
                 font_family="system-ui, sans-serif", foreground="#1f2933", foreground_strong="#1f2933",
                 foreground_subtle="#52606d", title_font_size=18, label_font_size=13, legend_font_size=13)


def year_chart(kind, palette, locale, labels):
    """An empty 800 x 380 chart of the twelve months: no script, nothing fetched."""
    chart = kind(js=[], style=year_style(palette), width=800, height=380, show_dots=False, legend_at_bottom=True,
                 print_values=False, margin=20, y_title=labels["unit"], title=labels["title"],
                 disable_xml_declaration=True)
    chart.x_labels = month_names(locale)
    return chart


def chart_svg(point, rows, locale, colour, labels):
    """The year's bars (bands stacked for electricity), titled, in the portal's colours."""
    palette = (colour, mix(colour, 0.55), mix(colour, 0.8)) if not point.is_gas else (colour,)
    chart = year_chart(pygal.StackedBar, palette, locale, labels)
    if point.is_gas:
        chart.add("Smc", [float(r["smc"]) if r["invoices"] else None for r in rows])
    else:
        for band in ("f1", "f2", "f3"):
            chart.add(band.upper(), [float(r[band]) if r["invoices"] else None for r in rows])
    fit_scale(chart, max(float(r[total_key(point)]) for r in rows), locale)  # a stack is as tall as its total
    return chart.render(is_unicode=True)


def comparison_svg(point, rows, previous, year, locale, colour, labels):
    """The year's monthly totals (kWh or Smc) beside the year before's, month by month."""
    chart = year_chart(pygal.Bar, (mix(colour, 0.6), colour), locale, labels)
    key = total_key(point)
    for label, months in ((str(year - 1), previous), (str(year), rows)):
        chart.add(label, [float(r[key]) if r["invoices"] else None for r in months])
    fit_scale(chart, max(float(r[key]) for r in rows + previous), locale)
    return chart.render(is_unicode=True)


def scale_marks(largest):
    """The value axis' marks: 0 up to a round number at or above `largest`, in at most six
    round steps (1, 2, 2.5 or 5 times a power of ten). pygal's own marks stop below the
    largest value, so the tallest bars could not be read off the axis."""
    if largest <= 0:
        return [0, 1]
    magnitude = Decimal(10) ** math.floor(math.log10(largest / 6))
    step = next(f * magnitude for f in (Decimal(1), Decimal(2), Decimal("2.5"), Decimal(5), Decimal(10))
                if largest / float(f * magnitude) <= 6)
    steps = math.ceil(Decimal(str(largest)) / step)
    return [float(step * n) for n in range(steps + 1)]


def fit_scale(chart, largest, locale):
    """The chart's scale from 0 to the top mark, marks written as the locale writes numbers."""
    marks = scale_marks(largest)
    chart.range = (0, marks[-1])
    chart.y_labels = marks
    chart.value_formatter = lambda value: format_decimal(value, locale=locale)


def mix(colour, towards_white):
    """The brand colour lightened: bands are shades of one hue, distinguishable in the legend."""
    red, green, blue = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return "#%02x%02x%02x" % tuple(round(c + (255 - c) * towards_white) for c in (red, green, blue))
