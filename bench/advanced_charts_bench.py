"""Grafici avanzati's charts: each view's SVG size, the time to build it and that time / its query's.

One point with 25 months of 15-minute measures (the year before included, as every view draws
it beside) and its daily and monthly totals made by `totals.rebuild`. For each view (a day of
quarter-hours, the 25-hour day the clocks go back, a week, a month, a year) it prints, medians of
--rounds runs in this process:
  - the SVG's size                                   (target <= 60 KB)
  - the chart's build time (pygal, from the figures)  (target <= 10 ms)
  - the query time (the figures of the period and of the year before, as the page reads them)
  - build time / query time
CPU time (process_time) is printed beside the wall-clock time: this machine is shared, and a
busy neighbour stretches wall-clock figures.

    .venv/bin/python bench/advanced_charts_bench.py [--rounds 30] [--pygal-lookup]

--pygal-lookup also builds each view's chart alternately with pygal's own attribute lookup and
with charts.LeanStackedBar's direct one, in this process, and prints the two CPU medians and
their ratio (and that the SVGs are the same but for pygal's random ids).
"""
import argparse
import re
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import charts  # noqa: E402
import models  # noqa: E402
import schema  # noqa: E402
import totals  # noqa: E402
from bench import bench_app  # noqa: E402
from i18n import rome_midnight_utc  # noqa: E402

FIRST_DAY, LAST_DAY = date(2024, 11, 1), date(2026, 11, 30)
VIEWS = (  # (name, period, a day in it)
    ("day, 96 quarter-hours", "giorno", date(2026, 11, 17)),
    ("day, 100 quarter-hours (DST)", "giorno", date(2026, 10, 25)),
    ("week", "settimana", date(2026, 11, 17)),
    ("month", "mese", date(2026, 11, 17)),
    ("year", "anno", date(2026, 11, 17)),
)


def build(database_url):
    app = bench_app(database_url)
    with app.app_context():
        database = models.db_wrapper.database
        schema.upgrade(database)
        customer = models.Customer.create(code="005007", name="ROSSI MARIO", kind="person", tax_code="RSSMRA70A01H199Z")
        point = models.SupplyPoint.create(code="PR002874", customer=customer, commodity="electricity",
                                          pod_pdr="IT001E00287400")
        start, end = rome_midnight_utc(FIRST_DAY), rome_midnight_utc(LAST_DAY + timedelta(days=1))
        rows, index = [], 0
        with database.atomic():
            while start < end:
                rows.append((point.id, start, 0.05 + (index % 37) * 0.011, 15, "estimated" if index % 997 == 0 else "actual"))
                start += timedelta(minutes=15)
                index += 1
            database.cursor().executemany("INSERT INTO measure (supply_point_id, start, kwh, interval_minutes, quality) "
                                          "VALUES (?, ?, ?, ?, ?)", rows)
        totals.rebuild(database)
    return app, index


def median_times(function, rounds):
    """(wall ms, CPU ms, last result): medians over `rounds` calls."""
    walls, cpus, result = [], [], None
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        result = function()
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return statistics.median(walls) * 1000, statistics.median(cpus) * 1000, result


def period_figures(point, period, first):
    """What the page queries for a period: its bars and the year before's, lined up."""
    last = charts.period_bounds(period, first)[1]
    before = charts.year_before(period, first)
    data = charts.consumption(point.customer_id, point, period, first, last, "it")
    previous = charts.consumption(point.customer_id, point, period, before, charts.period_bounds(period, before)[1], "it")
    return data, charts.with_year_before(data, previous)


def view_figures(name, point, period, day, colour, rounds):
    """One line of the table: SVG size, build and query medians, their ratio."""
    first = charts.period_bounds(period, day)[0]
    query_wall, query_cpu, (data, has_previous) = median_times(lambda: period_figures(point, period, first), rounds)
    labels = {"unit": "kWh", "title": f"Consumi {first}, PR002874", "previous": "Un anno prima"}
    build_wall, build_cpu, svg = median_times(
        lambda: charts.consumption_svg(point, data, has_previous, "it", colour, labels), rounds)
    return (f"{name:30} {len(svg.encode()) / 1000:7.1f} {build_wall:9.1f} {build_cpu:7.1f} "
            f"{query_wall:9.1f} {query_cpu:7.1f} {build_wall / query_wall:12.2f}")


def lookup_figures(name, point, period, day, colour, rounds):
    """The view's chart built `rounds` times with each attribute lookup, taking turns."""
    first = charts.period_bounds(period, day)[0]
    data, has_previous = period_figures(point, period, first)
    labels = {"unit": "kWh", "title": f"Consumi {first}, PR002874", "previous": "Un anno prima"}
    direct = charts.LeanStackedBar.__getattribute__
    times, svgs = {"pygal": [], "direct": []}, {}
    try:
        for _ in range(rounds):
            for lookup in times:
                if lookup == "pygal":
                    del charts.LeanStackedBar.__getattribute__
                else:
                    charts.LeanStackedBar.__getattribute__ = direct
                cpu = time.process_time()
                svgs[lookup] = charts.consumption_svg(point, data, has_previous, "it", colour, labels)
                times[lookup].append(time.process_time() - cpu)
    finally:
        charts.LeanStackedBar.__getattribute__ = direct
    ids = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
    same = ids.sub("", svgs["pygal"]) == ids.sub("", svgs["direct"])
    pygal_ms, direct_ms = (statistics.median(times[lookup]) * 1000 for lookup in ("pygal", "direct"))
    return f"{name:30} {pygal_ms:9.1f} {direct_ms:9.1f} {direct_ms / pygal_ms:7.2f}  {'same' if same else 'DIFFERENT'}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--pygal-lookup", action="store_true", help="also compare pygal's attribute lookup, side by side")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        app, count = build(f"sqlite:///{folder}/charts.db")
        print(f"{count:,} quarter-hours and their totals built in {time.perf_counter() - started:.0f} s (SQLite)\n")
        print(f"{'view':30} {'SVG KB':>7} {'build ms':>9} {'(CPU)':>7} {'query ms':>9} {'(CPU)':>7} {'build/query':>12}")
        with app.test_request_context():
            point = models.SupplyPoint.get(models.SupplyPoint.code == "PR002874")
            colour = app.config["PORTAL_COLOR"]
            for name, period, day in VIEWS:
                print(view_figures(name, point, period, day, colour, args.rounds))
            if args.pygal_lookup:
                print(f"\n{'chart build, CPU ms':30} {'pygal':>9} {'direct':>9} {'ratio':>7}  SVG")
                for name, period, day in VIEWS:
                    print(lookup_figures(name, point, period, day, colour, args.rounds))
        models.db_wrapper.database.close()


if __name__ == "__main__":
    main()
