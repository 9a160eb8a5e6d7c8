"""Billed withdrawals (Prelievi Fatturati): the figures per month of a year, and their SVG chart.

Each invoice counts in the month and year of its period's start. Electricity: energy by band
(F1, F2, F3), their total and the peak power; gas: Smc. Charts are pygal SVG documents served on
their own (an <img>): no script of theirs runs, nothing is fetched from another host.
"""
import math
import re
from datetime import UTC, date, timedelta
from decimal import Decimal

import pygal
from babel.dates import get_day_names, get_month_names
from babel.numbers import format_decimal
from flask_babel import gettext
from pygal.style import Style
from pygal.util import decorate

import bands
from i18n import ROME, local_date, rome_midnight_utc
from models import Invoice, Reading, daily_totals, measures_between, monthly_totals


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


# --- Grafici avanzati: consumption by competence date ------------------------------------------
#
# A chart covers a local (Europe/Rome) day, week (Monday to Sunday), month or year. A day is
# drawn from its raw measures (at most 100: 25 hours of quarter-hours); longer periods from the
# per-day and per-month totals (DailyConsumption, MonthlyConsumption), so a year reads 12 rows
# whatever the resolution. A bar is a dict: "key" (what lines it up with the year before's),
# "label" (the chart's), "long_label" (the table's), "day" (a day the table links to), the bands'
# kWh "f1" "f2" "f3", "total" (None: no data), "intervals", "estimated", "quality" ("actual",
# "estimated", "mixed"; gas: a reading's source or "billed") and "previous" (the year before's
# total). Gas points have no bands: "smc" per day or month, spread from readings and invoices.

PERIODS = ("giorno", "settimana", "mese", "anno")
GAS_PERIODS = ("settimana", "mese", "anno")  # a gas meter is read monthly: no day of hours
MAX_MAJOR_LABELS = 12
CHART_WIDTH, CHART_HEIGHT = 700, 360  # drawn about life-size beside the summary
PREVIOUS_COLOUR = "#9aa5b1"


def period_bounds(period, day):
    """(first, last) local day of the period that holds `day`."""
    if period == "giorno":
        return day, day
    if period == "settimana":
        first = day - timedelta(days=day.weekday())
        return first, first + timedelta(days=6)
    if period == "mese":
        first = day.replace(day=1)
        return first, add_months(first, 1) - timedelta(days=1)
    return date(day.year, 1, 1), date(day.year, 12, 31)


def add_months(first_of_month, months):
    index = first_of_month.year * 12 + first_of_month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def step_period(period, first, steps):
    """The first day of the period `steps` periods after (before, when negative) the one at `first`."""
    if period == "giorno":
        return first + timedelta(days=steps)
    if period == "settimana":
        return first + timedelta(weeks=steps)
    if period == "mese":
        return add_months(first, steps)
    return date(first.year + steps, 1, 1)


def year_before(period, first):
    """The same period a year before: a day or a week 52 weeks earlier (the same weekdays, which
    a household's use follows), a month or a year by the calendar."""
    if period in ("giorno", "settimana"):
        return first - timedelta(weeks=52)
    return step_period(period, first, -12 if period == "mese" else -1)


def days_of(first, last):
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def to_rome(utc):
    return utc.replace(tzinfo=UTC).astimezone(ROME)


def is_repeated(local):
    """Whether this wall-clock time happens twice that day (the hour the clocks go back)."""
    return local.replace(fold=1 - local.fold).utcoffset() != local.utcoffset()


def wall_clock(local):
    """A local time as people read it: the hour the clocks go back is told apart ("02:00 bis")."""
    text = local.strftime("%H:%M")
    return gettext("%(time)s bis", time=text) if local.fold else text


def quality_of(intervals, estimated):
    if not intervals:
        return None
    return "actual" if not estimated else "estimated" if estimated >= intervals else "mixed"


def empty_bar(key, label, long_label, day=None):
    return {"key": key, "label": label, "long_label": long_label, "day": day, "f1": None, "f2": None, "f3": None,
            "total": None, "smc": None, "intervals": 0, "estimated": 0, "quality": None, "previous": None}


def fill_from_totals(bar, row):
    """A bar's figures from a DailyConsumption or MonthlyConsumption row."""
    bar.update(f1=row.f1, f2=row.f2, f3=row.f3, total=row.f1 + row.f2 + row.f3, intervals=row.intervals,
               estimated=row.estimated, quality=quality_of(row.intervals, row.estimated))
    return bar


def electricity_day(customer, point, day):
    """The day's bars from its measures: one a slot of the data's resolution (an hour, or a
    quarter-hour for 15-minute data), walked in UTC so a day has 23 or 25 hours when the clocks
    change; and its peak hour (kWh, UTC start), quarter-hours summed into hours."""
    start, end = rome_midnight_utc(day), rome_midnight_utc(day + timedelta(days=1))
    measures = {m.start: m for m in measures_between(customer=customer, point=point, since=start, before=end)}
    minutes = 15 if any(m.interval_minutes == 15 for m in measures.values()) else 60
    bars, hours = [], {}
    slot = start
    while slot < end:
        local = to_rome(slot)
        label = wall_clock(local)
        bar = empty_bar((local.strftime("%H:%M"), local.fold), label,
                        gettext("%(time)s (ora solare)", time=local.strftime("%H:%M")) if local.fold
                        else gettext("%(time)s (ora legale)", time=local.strftime("%H:%M")) if is_repeated(local)
                        else label)
        bar["repeated"] = is_repeated(local)
        bar["minute"] = local.minute
        measure = measures.get(slot)
        if measure is not None:
            band = bands.band(slot).lower()
            bar.update(f1=0.0, f2=0.0, f3=0.0, total=measure.kwh, intervals=1,
                       estimated=int(measure.quality == "estimated"))
            bar[band] = measure.kwh
            bar["quality"] = quality_of(1, bar["estimated"])
            hour = slot.replace(minute=0)
            hours[hour] = hours.get(hour, 0.0) + measure.kwh
        bars.append(bar)
        slot += timedelta(minutes=minutes)
    peak = max(hours.items(), key=lambda item: item[1], default=None)
    return {"bars": bars, "resolution": minutes, "peak": (peak[1], peak[0]) if peak else None}


def day_key(period, day):
    """What lines a day up with the year before's: its weekday in a week, its date in a month."""
    return day.weekday() if period == "settimana" else day.day


def electricity_days(customer, point, period, first, last, label_of):
    """A bar a day from the daily totals; the largest hour of them all."""
    rows = {row.day: row for row in daily_totals(customer=customer, point=point, first_day=first, last_day=last)}
    bars = []
    for day in days_of(first, last):
        label, long_label = label_of(day)
        bar = empty_bar(day_key(period, day), label, long_label, day)
        if day in rows:
            fill_from_totals(bar, rows[day])
        bars.append(bar)
    return {"bars": bars, "resolution": None, "peak": largest_peak(rows.values())}


def electricity_months(customer, point, year, month_names):
    rows = {row.month: row for row in monthly_totals(customer=customer, point=point, first_month=date(year, 1, 1),
                                                       last_month=date(year, 12, 1))}
    bars = []
    for month in range(1, 13):
        first = date(year, month, 1)
        bar = empty_bar(month, month_names[month - 1], month_names[month - 1], first)
        if first in rows:
            fill_from_totals(bar, rows[first])
        bars.append(bar)
    return {"bars": bars, "resolution": None, "peak": largest_peak(rows.values())}


def largest_peak(rows):
    peaks = [(row.peak_kwh, row.peak_start) for row in rows if row.peak_kwh is not None and row.peak_start]
    return max(peaks, key=lambda peak: peak[0], default=None)


# Gas: a reading's source says where a day's Smc come from; invoices fill the days no two
# readings enclose. Ordered from the least to the most reliable, for a month of several.
GAS_SOURCES = ("estimated", "billed", "customer", "distributor")


def gas_days(customer, point, first, last):
    """{day: (Smc, source)} from `first` to `last`: the Smc between two readings of the meter
    spread evenly over the days between them (the later reading's source), and an invoice's Smc
    over its period's days that no readings cover ("billed")."""
    readings = list(Reading.for_point(customer, point)
                    .where(Reading.register == "total", Reading.status == Reading.VALIDATED,
                           Reading.date.between(first - timedelta(days=400), last + timedelta(days=400)))
                    .order_by(Reading.date))
    days = {}
    for before, after in zip(readings, readings[1:], strict=False):
        span = (after.date - before.date).days
        if span <= 0 or after.value < before.value:
            continue  # a meter changed or a wrong reading: no consumption to read from them
        per_day = float(after.value - before.value) / span
        for n in range(1, span + 1):
            day = before.date + timedelta(days=n)
            if first <= day <= last:
                days[day] = (per_day, after.source)
    invoices = (Invoice.for_customer(customer)
                .select(Invoice.period_start, Invoice.period_end, Invoice.gas_smc)
                .where(Invoice.supply_point == point, Invoice.gas_smc.is_null(False),
                       Invoice.period_start <= last, Invoice.period_end >= first).tuples())
    for start, end, smc in invoices:
        span = (end - start).days + 1
        if span <= 0:
            continue
        for day in days_of(max(start, first), min(end, last)):
            days.setdefault(day, (float(smc) / span, "billed"))
    return days


def gas_bar(bar, values):
    """A gas bar from its days' (Smc, source): the sum, and the least reliable source."""
    if values:
        bar["smc"] = bar["total"] = sum(smc for smc, _source in values)
        bar["quality"] = min((source for _smc, source in values), key=GAS_SOURCES.index)
        bar["intervals"] = len(values)
    return bar


def gas_period(customer, point, period, first, last, label_of, month_names):
    days = gas_days(customer, point, first, last)
    if period == "anno":
        bars = []
        for month in range(1, 13):
            start = date(first.year, month, 1)
            bar = empty_bar(month, month_names[month - 1], month_names[month - 1], start)
            values = [days[d] for d in days_of(start, add_months(start, 1) - timedelta(days=1)) if d in days]
            bars.append(gas_bar(bar, values))
    else:
        bars = []
        for day in days_of(first, last):
            label, long_label = label_of(day)
            bar = empty_bar(day_key(period, day), label, long_label, day)
            bars.append(gas_bar(bar, [days[day]] if day in days else []))
    return {"bars": bars, "resolution": None, "peak": None}


def day_labeller(period, locale):
    """The chart's and the table's names of a day: "lun 2" and "lunedì 02/11/2026" in a week,
    "2" and "lunedì 2" in a month."""
    short_days = get_day_names("abbreviated", locale=locale)
    long_days = get_day_names("wide", locale=locale)

    def label_of(day):
        if period == "settimana":
            return f"{short_days[day.weekday()]} {day.day}", f"{long_days[day.weekday()]} {local_date(day, locale)}"
        return str(day.day), f"{long_days[day.weekday()]} {day.day}"
    return label_of


def consumption(customer, point, period, first, last, locale):
    """The period's bars and peak (see above), for an electricity or a gas point."""
    names = month_names(locale)
    if point.is_gas:
        return gas_period(customer, point, period, first, last, day_labeller(period, locale), names)
    if period == "giorno":
        return electricity_day(customer, point, first)
    if period == "anno":
        return electricity_months(customer, point, first.year, names)
    return electricity_days(customer, point, period, first, last, day_labeller(period, locale))


def with_year_before(current, previous):
    """The year before's totals set on the bars they line up with (same hour, weekday, day of
    the month or month); whether there were any."""
    totals = {bar["key"]: bar["total"] for bar in previous["bars"] if bar["total"] is not None}
    for bar in current["bars"]:
        bar["previous"] = totals.get(bar["key"])
    return any(bar["previous"] is not None for bar in current["bars"])


def consumption_summary(data):
    """What stands beside the chart: the bands' totals, the whole, F1's share, the peak hour,
    how many intervals were estimated, and the year before's total over the same bars."""
    bars = [bar for bar in data["bars"] if bar["total"] is not None]
    total = sum(bar["total"] for bar in bars)
    summary = {"total": total, "bars_with_data": len(bars), "peak": data["peak"],
               "intervals": sum(bar["intervals"] for bar in bars),
               "estimated": sum(bar["estimated"] for bar in bars),
               "previous": sum(bar["previous"] for bar in data["bars"] if bar["previous"] is not None)}
    for band in ("f1", "f2", "f3"):
        summary[band] = sum(bar[band] or 0 for bar in bars)
    summary["f1_share"] = summary["f1"] / total * 100 if total else None
    return summary


def major_labels(bars):
    """At most twelve labels to print: evenly spaced (on whole hours in a day), and both of the
    hour that happens twice when the clocks go back."""
    candidates = [bar for bar in bars if bar.get("minute", 0) == 0]
    step = math.ceil(len(candidates) / MAX_MAJOR_LABELS) or 1
    if any(bar.get("repeated") for bar in candidates):
        step = max(step, math.ceil(len(candidates) / (MAX_MAJOR_LABELS - 2)))
    chosen = [bar["label"] for bar in candidates[::step]]
    chosen += [bar["label"] for bar in candidates if bar.get("repeated") and bar["label"] not in chosen]
    return chosen[:MAX_MAJOR_LABELS]


def hatch(pattern_id, colour, angle):
    """A striped fill for bars that are not plain measured figures (the figcaption says which)."""
    return (f'<pattern id="{pattern_id}" width="6" height="6" patternUnits="userSpaceOnUse" '
            f'patternTransform="rotate({angle})"><rect width="6" height="6" fill="{mix(colour, 0.7)}"/>'
            f'<rect width="3" height="6" fill="{colour}"/></pattern>')


# How a bar of each quality is filled: None plain, else the pattern's angle (or "light").
QUALITY_FILLS = {"actual": None, "distributor": None, "estimated": 45, "mixed": 45, "customer": 90, "billed": "light"}


def bar_value(value, quality, series_index, colour):
    if value is None:
        return None
    fill = QUALITY_FILLS.get(quality)
    if fill is None:
        return value
    style = f"fill:{mix(colour, 0.55)}" if fill == "light" else f"fill:url(#q{series_index}-{fill})"
    return {"value": value, "style": style}


class LeanStackedBar(pygal.StackedBar):
    """pygal's stacked bars, drawing only what an <img> shows: a bar is one <rect>, without the
    group, value and tooltip coordinates that only pygal's scripts read (never sent) nor
    confidence intervals, and with a style only when it has one. A day of quarter-hours and the
    year before are 192 bars; a month's 31 days in three bands and the year before, 124. (pygal
    is pinned: this leans on its Bar.bar of 3.x.)"""

    def __getattribute__(self, name):
        # pygal's BaseGraph.__getattribute__ answers from the render's state when it holds the
        # name, and finds that state by calling itself: each attribute read cost three lookups
        # through Python code, a quarter of a day chart's time. The same answer, read directly.
        state = object.__getattribute__(self, "__dict__").get("state")
        if state is not None and name != "state" and name in state.__dict__ and not name.startswith("__"):
            return getattr(state, name)
        return object.__getattribute__(self, name)

    def _pre_compute_secondary(self, positive_vals, negative_vals):
        # The year before on the bars' own scale: pygal's stacked bars scale a secondary series to
        # its own largest value, ignoring secondary_range, which made last year's bars look taller.
        self._secondary_min, self._secondary_max = self._box.ymin, self._box.ymax

    def _compute_secondary(self):
        super()._compute_secondary()
        self._y_2nd_labels = None  # the same marks again on the right would say nothing new

    def _draw(self):
        # js=[] still leaves pygal's config as an inline script (6 KB here): nothing runs it.
        self.svg.add_scripts = lambda: None
        super()._draw()

    def bar(self, serie, rescale=False):
        """pygal's StackedBar.bar and _bar for values of 0 and more, with the chart's attributes
        read once a series: pygal's attribute lookup was half of a 200-bar chart's time."""
        svg, view, cumulation = self.svg, self.view, (
            self.secondary_positive_cumulation if rescale else self.positive_cumulation)
        bars = svg.node(svg.serie(serie)["plot"], class_="bars")
        points = self._rescale(serie.points) if rescale and self.secondary_series else serie.points
        width = (view.x(1) - view.x(0)) / self._len
        offset = width * self._series_margin
        width -= 2 * offset
        if self.secondary_series:  # the year before's bar beside the period's stack
            width /= 2
            offset += int(rescale) * width + width * self._serie_margin
            width -= 2 * width * self._serie_margin
        for i, (x, y) in enumerate(points):
            if y is None:  # strict: an empty value stays None and draws nothing
                continue
            base = cumulation[i]
            cumulation[i] = base + y
            left, top = view((x, base + y))
            rect = svg.node(bars, "rect", x=left + offset, y=top, width=width, height=view.y(base) - top,
                            class_="rect reactive")
            decorate(svg, rect, serie.metadata.get(i))


# pygal writes coordinates with 16 decimals; a hundredth of a pixel is plenty.
LONG_DECIMALS = re.compile(r'="(-?\d+\.\d\d)\d+"')


def consumption_svg(point, data, has_previous, locale, colour, labels):
    """The period's bars, the bands stacked (gas: Smc), estimated ones striped; the year before's
    totals as a grey bar beside each, on the same scale. Lean: no script, no dots, at most twelve
    labels, one value a bar."""
    palette = (colour,) if point.is_gas else (colour, mix(colour, 0.4), mix(colour, 0.65))
    defs = [hatch(f"q{index}-{angle}", shade, angle) for index, shade in enumerate(palette) for angle in (45, 90)]
    style = year_style(palette + (PREVIOUS_COLOUR,))
    style.major_label_font_size = style.label_font_size  # every label printed is a major one
    chart = LeanStackedBar(js=[], style=style, width=CHART_WIDTH, height=CHART_HEIGHT, show_dots=False, legend_at_bottom=True,
                             print_values=False, margin=20, y_title=labels["unit"], title=labels["title"],
                             disable_xml_declaration=True, defs=defs, show_minor_x_labels=False,
                             truncate_label=-1, truncate_legend=-1, strict=True)  # strict: no rect for a None
    bars = data["bars"]
    chart.x_labels = [bar["label"] for bar in bars]
    chart.x_labels_major = major_labels(bars)
    if any(bar.get("repeated") for bar in bars):
        chart.x_label_rotation = -40  # "02:00" and "02:00 bis" stand side by side
    series = (("smc", "Smc"),) if point.is_gas else (("f1", "F1"), ("f2", "F2"), ("f3", "F3"))
    for index, (key, name) in enumerate(series):
        # A zero is no bar at all: a quarter-hour is in one band, so two of its three values are 0.
        chart.add(name, [bar_value(bar[key] or None, bar["quality"], index, palette[index]) for bar in bars])
    largest = max([bar["total"] or 0 for bar in bars] + [bar["previous"] or 0 for bar in bars])
    fit_scale(chart, largest, locale)
    if has_previous:
        chart.add(labels["previous"], [bar["previous"] for bar in bars], secondary=True)
    return LONG_DECIMALS.sub(r'="\1"', chart.render(is_unicode=True))


def last_update(customer, point):
    """How fresh the point's data are: {"at", "kind", "day"}: for electricity the end of the
    newest measure ("measure", a naive UTC instant) and "imported_at", when an import last
    brought the point's measures (None for measures written otherwise); for gas the newest
    reading ("reading") or invoice period's end ("invoice"), a day. None without data."""
    if not point.is_gas:  # `point` is the customer's: the caller found it by the customer
        if point.measures_until is None:
            return None
        return {"at": point.measures_until, "kind": "measure",
                "day": to_rome(point.measures_until - timedelta(seconds=1)).date(),  # the newest measure's day
                "imported_at": point.measures_imported_at}
    reading = (Reading.for_point(customer, point).where(Reading.status == Reading.VALIDATED)
               .order_by(Reading.date.desc()).first())
    invoice = (Invoice.for_customer(customer).select(Invoice.period_end)
               .where(Invoice.supply_point == point, Invoice.gas_smc.is_null(False), Invoice.period_end.is_null(False))
               .order_by(Invoice.period_end.desc()).first())
    if reading is not None and (invoice is None or reading.date >= invoice.period_end):
        return {"at": reading.date, "kind": "reading", "day": reading.date}
    if invoice is not None:
        return {"at": invoice.period_end, "kind": "invoice", "day": invoice.period_end}
    return None


def peak_hour(data):
    """The period's peak as the page tells it: {"kwh", "day" (local), "hours": "19:00–20:00"}."""
    if data["peak"] is None:
        return None
    kwh, start = data["peak"]
    local = to_rome(start)
    return {"kwh": kwh, "day": local.date(), "hours": f"{wall_clock(local)}–{to_rome(start + timedelta(hours=1)):%H:%M}"}
