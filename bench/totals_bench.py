"""Import of one day of 15-minute measures for 10,000 points (960,000 rows), with and without the
daily and monthly totals the import keeps (totals.py): the issue's bar is 60 s, aggregates
included.

Generates the files once (bench/out/), then, each on a fresh database: the customers and points
(not timed); measures.csv with the totals, the same file again (every row re-sent), and
measures.csv with the totals switched off; then `flask rebuild-totals`'s work for all points.

    .venv/bin/python bench/totals_bench.py [--points 10000] [--database-url postgresql://...]

Without --database-url it runs on a SQLite file in bench/out/. A PostgreSQL database given is
emptied (every table dropped) before each run.
"""
import argparse
import csv
import sys
import time
from datetime import UTC, date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import importer  # noqa: E402
import schema  # noqa: E402
import totals  # noqa: E402
from bench import bench_app  # noqa: E402
from i18n import ROME, rome_midnight_utc  # noqa: E402
from models import DailyConsumption, Measure, MonthlyConsumption, db_wrapper  # noqa: E402
from tests.import_data import tax_code  # noqa: E402

OUT = ROOT / "bench" / "out"
DAY = date(2026, 11, 10)  # a Tuesday


def write_files(folder, points):
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "customers.csv", "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["customer_code", "name", "kind", "tax_code", "province"])
        writer.writerows([f"{300000 + n:06d}", f"CLIENTE {n}", "person", tax_code(n), "RA"] for n in range(points))
    with open(folder / "supply_points.csv", "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["code", "customer_code", "commodity", "pod_pdr", "province"])
        writer.writerows([f"PR{400000 + n:06d}", f"{300000 + n:06d}", "electricity", f"IT001E{50000000 + n:08d}", "RA"]
                         for n in range(points))
    start = rome_midnight_utc(DAY)
    local = [(start + timedelta(minutes=15 * q)).replace(tzinfo=UTC).astimezone(ROME).strftime("%Y-%m-%d %H:%M")
             for q in range(96)]
    with open(folder / "measures.csv", "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["supply_point_code", "start", "kwh", "interval_minutes", "quality"])
        for n in range(points):
            code = f"PR{400000 + n:06d}"
            writer.writerows([code, stamp, f"{0.05 + ((n + q) % 17) / 100:.3f}", "15",
                              "estimated" if (n + q) % 97 == 0 else "actual"] for q, stamp in enumerate(local))


def fresh_app(url):
    if url.startswith("postgresql"):
        schema.empty_postgres(url)
    else:
        path = Path(url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    app = bench_app(url, TESTING=False, FILE_STORE=str(OUT / "totals-files"))
    with app.app_context():
        schema.upgrade(db_wrapper.database)
    return app


def timed_import(app, paths):
    with app.app_context():
        started = time.perf_counter()
        report = importer.run([str(p) for p in paths], str(OUT / "totals-files"))
        elapsed = time.perf_counter() - started
    if report.problems:
        raise SystemExit("\n".join(report.problems[:20]))
    return elapsed, report


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=10000)
    parser.add_argument("--database-url", default=f"sqlite:///{OUT / 'totals-bench.db'}")
    args = parser.parse_args()
    data = OUT / f"day-{args.points}"
    if not (data / "measures.csv").exists():
        print(f"generating one day of 15-minute measures for {args.points} points in {data} ...")
        write_files(data, args.points)
    rows = sum(1 for _ in open(data / "measures.csv")) - 1
    setup = [data / "customers.csv", data / "supply_points.csv"]
    measures = [data / "measures.csv"]

    spent = []  # seconds in the totals step of each import, measured inside the transaction
    keep = totals.update_from_staging

    def timed_totals(database):
        started = time.perf_counter()
        keep(database)
        spent.append(time.perf_counter() - started)

    totals.update_from_staging = timed_totals
    app = fresh_app(args.database_url)
    timed_import(app, setup)
    try:
        with_totals, _ = timed_import(app, measures)
        again, report = timed_import(app, measures)
    finally:
        totals.update_from_staging = keep
    with app.app_context():
        days, months = DailyConsumption.select().count(), MonthlyConsumption.select().count()
        assert Measure.select().count() == rows and days == args.points, (days, rows)
        started = time.perf_counter()
        totals.rebuild(db_wrapper.database, batch=500)
        rebuild = time.perf_counter() - started
        assert DailyConsumption.select().count() == days

    app = fresh_app(args.database_url)
    timed_import(app, setup)
    totals.update_from_staging = lambda database: None
    try:
        without, _ = timed_import(app, measures)
    finally:
        totals.update_from_staging = keep

    engine = "PostgreSQL" if args.database_url.startswith("postgresql") else "SQLite"
    print(f"\n{engine}: measures.csv, {rows:,} rows ({args.points:,} points x 96 quarters of {DAY}); "
          f"{days:,} daily and {months:,} monthly totals")
    print(f"{'':44} {'seconds':>8} {'rows/s':>10}")
    print(f"{'import without the totals':44} {without:8.1f} {rows / without:10,.0f}")
    print(f"{'import with the totals (first run)':44} {with_totals:8.1f} {rows / with_totals:10,.0f}")
    print(f"{'import with the totals (same file again)':44} {again:8.1f} {rows / again:10,.0f}")
    print(f"{'rebuild-totals, all points':44} {rebuild:8.1f} {rows / rebuild:10,.0f}")
    print(f"the totals step itself: {spent[0]:.1f} s in the first run, {spent[1]:.1f} s in the second "
          f"({spent[0] / with_totals:.0%} and {spent[1] / again:.0%} of the import); with - without: "
          f"{with_totals - without:+.1f} s; bar: 60 s with them -> {'met' if with_totals <= 60 else 'MISSED'}")
    print(report.lines()[-1])


if __name__ == "__main__":
    main()
