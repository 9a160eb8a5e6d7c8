"""Grafici avanzati's year view under load: its htmx fragment and its chart, at 350,000 and at 35
million measures, on SQLite and on PostgreSQL, side by side in one run.

Two databases per engine: --small points (10) and --big points (1,000), each with a year (2025)
of 15-minute measures, 35,040 a point; one point of each belongs to the demo customer, who asks
for the pages. The measures are written in bulk SQL (a year of quarters crossed with the points,
a point at a time, in one transaction; on PostgreSQL into the month partitions, the foreign-key
triggers off); the daily and monthly totals of the first point are made by the import's own code
(totals.Totals) and copied to the others, whose measures are the same: what the import would
write, without summing 35 million rows again. The time of each step is printed.

Then one gunicorn per database (bench/run.py's way: the demo customer logged in, N connections,
rounds of a few seconds, the servers taking turns on each URL) serves:
  - the bare route (`return "ok"`);
  - the year fragment, as the page's controls ask for it (GET /grafici-avanzati?sp=..&vista=anno
    &data=2025-01-01&mostra=grafico with HX-Request and HX-Target: advanced-charts);
  - the year chart, the SVG the fragment's <img> loads.
Printed: requests/s, each ÷ the bare route (target: fragment >= 0.25), and big ÷ small (target:
fragment >= 0.85), with the range of the ratio round by round. The server loaded second in each
turn may gain from the first's warm caches: --big-first swaps the two, to see how much.

Each process keeps the Grafici avanzati blocks it made until the point's next import
(CHART_BLOCKS_SECONDS), so the same view asked again costs no query: the two servers above
answer the fragment from what they kept. A third server on the small database keeps nothing
(CHART_BLOCKS_SECONDS=0): what a view costs the first time it is asked.

    .venv/bin/python bench/charts_throughput.py [--small 10] [--big 1000] [--big-first]
        [--database-url postgresql://postgres@127.0.0.1:5432/helper_bench
         --big-database-url postgresql://postgres@127.0.0.1:5432/helper_bench_big] [--baseline REV]

With --baseline REV one more server per engine runs that commit's code on the small database,
making every view anew too: a change's cost to a first view, side by side.

The PostgreSQL databases given are emptied (every table dropped) before and after; the SQLite
files live in a temporary folder under /tmp (35 million rows: about 3 GB) and go at the end.
"""
import contextlib
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import demo  # noqa: E402
import models  # noqa: E402
import partitions  # noqa: E402
import schema  # noqa: E402
import totals  # noqa: E402
from bench import bench_app  # noqa: E402
from bench.run import by_round, checked_out, interleaved, options, pooled, prepare, serving  # noqa: E402
from database import is_sqlite, write_transaction  # noqa: E402
from i18n import rome_midnight_utc  # noqa: E402

YEAR = 2025
QUARTERS = 365 * 96  # 2025 has both clock changes: 35,040 quarter-hours
FIRST_CODE = "PB000000"  # the demo customer's bench point, the one the pages show


def targets():
    here = f"sp={FIRST_CODE}&vista=anno&data={YEAR}-01-01"
    page = f"/grafici-avanzati?{here}&mostra=grafico"
    htmx = {"HX-Request": "true", "HX-Target": "advanced-charts", "HX-Current-URL": f"http://127.0.0.1{page}"}
    return [("bare ok route", "/bench/ok", {}, False, None),
            ("year fragment (htmx)", page, htmx, True, None),
            ("year chart (SVG)", f"/grafici-avanzati.svg?{here}", {}, True, None)]


def timed(label, work, steps):
    started = time.perf_counter()
    result = work()
    steps.append((label, time.perf_counter() - started))
    print(f"  {label}: {steps[-1][1]:.1f} s", flush=True)
    return result


def add_points(points):
    """`points` electricity points, the first the demo customer's, the others a bench customer's."""
    mario = models.Customer.get(models.Customer.code == demo.DEMO_CUSTOMER)
    other = models.Customer.create(code="900000", name="CLIENTE BENCH", kind="person", tax_code="BNCCLN70A01H199Z")
    models.SupplyPoint.insert_many(
        [{"code": f"PB{n:06d}", "customer": mario if n == 0 else other, "commodity": "electricity",
          "pod_pdr": f"IT001E9{n:07d}"} for n in range(points)]).execute()
    return [p.id for p in models.SupplyPoint.select(models.SupplyPoint.id)
            .where(models.SupplyPoint.code.startswith("PB")).order_by(models.SupplyPoint.id)]


def write_measures(database, point_ids):
    """A year of quarter-hours for every point, the same figures for each, a point at a time (in
    the order of the (point, start) index), in one transaction."""
    sql = database.execute_sql
    base = rome_midnight_utc(date(YEAR, 1, 1))
    with write_transaction():
        if is_sqlite(database):
            sql("CREATE TEMPORARY TABLE quarter AS WITH RECURSIVE q(n) AS "
                f"(SELECT 0 UNION ALL SELECT n + 1 FROM q WHERE n + 1 < {QUARTERS}) "
                "SELECT n, datetime(?, '+' || (n * 15) || ' minutes') AS start FROM q",
                (base.strftime("%Y-%m-%d %H:%M:%S"),))
            insert = ("INSERT INTO measure (supply_point_id, start, kwh, interval_minutes, quality) "
                      "SELECT ?, start, 0.05 + (n % 37) * 0.011, 15, "
                      "CASE WHEN n % 997 = 0 THEN 'estimated' ELSE 'actual' END FROM quarter ORDER BY n")
        else:
            partitions.ensure(database, [date(YEAR, month, 1) for month in range(1, 13)])
            sql("SET LOCAL session_replication_role = replica")  # no per-row foreign-key trigger
            insert = ("INSERT INTO measure (supply_point_id, start, kwh, interval_minutes, quality) "
                      "SELECT %s, %s::timestamp + n * interval '15 minutes', 0.05 + (n %% 37) * 0.011, 15, "
                      "CASE WHEN n %% 997 = 0 THEN 'estimated' ELSE 'actual' END "
                      f"FROM generate_series(0, {QUARTERS - 1}) AS n")
        for point_id in point_ids:
            sql(insert, (point_id,) if is_sqlite(database) else (point_id, base))
        if is_sqlite(database):
            sql("DROP TABLE quarter")


def write_totals(database, point_ids):
    """The first point's totals by the import's code, then the same rows for the other points,
    and each point's import time and newest measure's end as the import sets them."""
    sums = totals.Totals(database)
    try:
        with write_transaction():
            sums.touch_points(point_ids[:1])
            sums.recompute()
            models.SupplyPoint.update(measures_imported_at=models.utcnow(), measures_until=rome_midnight_utc(
                date(YEAR + 1, 1, 1))).where(models.SupplyPoint.id.in_(point_ids)).execute()
    finally:
        sums.drop()
    if len(point_ids) == 1:
        return
    with write_transaction():
        for model in (models.DailyConsumption, models.MonthlyConsumption):
            table = model._meta.table_name
            columns = [f.column_name for f in model._meta.sorted_fields if f.name not in ("id", "supply_point")]
            listed = ", ".join(columns)
            database.execute_sql(
                f"INSERT INTO {table} (supply_point_id, {listed}) SELECT p.id, {listed} "
                f"FROM {table} t CROSS JOIN supplypoint p WHERE t.supply_point_id = {point_ids[0]} "
                f"AND p.id IN ({', '.join(map(str, point_ids[1:]))})")


def build(database_url, points):
    """The demo (its own measures and totals removed), `points` bench points with a year each.
    Answers the steps' times and the table sizes."""
    steps = []
    print(f"{database_url}, {points} points:", flush=True)
    timed("init-db and demo", lambda: prepare(database_url), steps)
    app = bench_app(database_url)
    with app.app_context():
        database = models.db_wrapper.database
        if is_sqlite(database):
            database.execute_sql("PRAGMA cache_size = -1000000")  # 1 GB for the index while writing
        with write_transaction():
            for table in ("measure", "dailyconsumption", "monthlyconsumption"):
                database.execute_sql(f"DELETE FROM {table}")
            point_ids = add_points(points)
        timed(f"measures ({points * QUARTERS:,} rows)", lambda: write_measures(database, point_ids), steps)
        timed("daily and monthly totals", lambda: write_totals(database, point_ids), steps)
        timed("ANALYZE", lambda: database.execute_sql("ANALYZE"), steps)
        sizes = {table: database.execute_sql(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                 for table in ("measure", "dailyconsumption", "monthlyconsumption")}
        print(f"  rows: {sizes}", flush=True)
        database.close()
    return steps, sizes


def main():
    parser = options(__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10, help="points of the small database")
    parser.add_argument("--big", type=int, default=1000, help="points of the big database")
    parser.add_argument("--database-url", help="also run on this PostgreSQL database (small; it is emptied)")
    parser.add_argument("--big-database-url", help="the big PostgreSQL database (it is emptied)")
    parser.add_argument("--big-first", action="store_true", help="load the big database's server before the small's")
    args = parser.parse_args()
    if args.database_url and not args.big_database_url:
        parser.error("--database-url needs --big-database-url")
    folder = tempfile.mkdtemp(prefix="charts-throughput-", dir="/tmp")
    databases = [("SQLite", "sqlite:///" + os.path.join(folder, "small.db"), "sqlite:///" + os.path.join(folder, "big.db"))]
    if args.database_url:
        databases.append(("PostgreSQL", args.database_url, args.big_database_url))
    urls = [url for _, small, big in databases for url in (small, big)]
    built = {}
    try:
        for engine, small, big in databases:
            for size, url, points in (("small", small, args.small), ("big", big, args.big)):
                if not is_sqlite_url(url):
                    schema.empty_postgres(url)
                built[engine, size] = build(url, points)
        with contextlib.ExitStack() as stack:
            baseline_code = stack.enter_context(checked_out(args.baseline, folder)) if args.baseline else None
            serve, servers = stack.enter_context(serving(args.workers))  # stopped before the worktree goes
            for engine, small, big in databases:  # each URL on the servers in this order, round after round
                for size, url in ((("big", big), ("small", small)) if args.big_first else (("small", small), ("big", big))):
                    serve((engine, size), url)
                serve((engine, "anew"), small, CHART_BLOCKS_SECONDS="0")  # every view made anew: no block kept
                if args.baseline:
                    serve((engine, "baseline"), small, root=baseline_code, CHART_BLOCKS_SECONDS="0")
            rounds = interleaved(servers, targets(), args)
        report(args, databases, built, rounds)
    finally:
        for url in urls:
            if is_sqlite_url(url):
                for suffix in ("", "-wal", "-shm"):
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(url.removeprefix("sqlite:///") + suffix)
            else:
                schema.empty_postgres(url)
        os.rmdir(folder)


def is_sqlite_url(url):
    return url.startswith("sqlite")


def report(args, databases, built, rounds):
    print(f"\nload: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}; gunicorn "
          f"{args.workers} sync workers, {args.connections} connections; {args.rounds} rounds of {args.seconds:g} s "
          "per URL, the servers in turn")
    names = [name for name, *_ in targets()]
    for engine, _small, _big in databases:
        for size, points in (("small", args.small), ("big", args.big), ("anew", args.small)):
            steps, sizes = built[engine, "big" if size == "big" else "small"]
            if size == "anew":
                print(f"\n{engine}, {points} points, each view made anew (CHART_BLOCKS_SECONDS=0: no block kept):")
            print(f"\n{engine}, {points} points, {sizes['measure']:,} measures, {sizes['dailyconsumption']:,} daily "
                  f"and {sizes['monthlyconsumption']:,} monthly totals; made in "
                  + ", ".join(f"{label} {seconds:.1f} s" for label, seconds in steps))
            figures = {name: pooled(rounds[engine, size][name]) for name in names}
            base = figures["bare ok route"]["rps"]
            print(f"{'URL':24} {'req/s':>8} {'/ ok':>6} {'p50 ms':>7} {'p99 ms':>7} {'bytes':>7} {'errors':>6}")
            for name, f in figures.items():
                print(f"{name:24} {f['rps']:8.0f} {f['rps'] / base:6.2f} {f['p50']:7.1f} {f['p99']:7.1f} "
                      f"{f['bytes']:7.0f} {f['errors']:6d}")
            for name in names[1:]:
                print(f"{name} / bare route by round: {by_round(rounds[engine, size][name], rounds[engine, size][names[0]])}")
        if args.baseline:
            print(f"\n{engine}, {args.small} points, the code of {args.baseline}, each view made anew:")
            figures = {name: pooled(rounds[engine, "baseline"][name]) for name in names}
            print(f"{'URL':24} {'req/s':>8} {'/ ok':>6} {'p50 ms':>7} {'p99 ms':>7}")
            for name, f in figures.items():
                print(f"{name:24} {f['rps']:8.0f} {f['rps'] / figures[names[0]]['rps']:6.2f} {f['p50']:7.1f} {f['p99']:7.1f}")
            for name in names:
                now, before = rounds[engine, "anew"][name], rounds[engine, "baseline"][name]
                print(f"this code / {args.baseline}, each view anew, {name}: {pooled(now)['rps'] / pooled(before)['rps']:.2f} "
                      f"(by round {by_round(now, before)})")
        print()
        for name in names:
            big, small = rounds[engine, "big"][name], rounds[engine, "small"][name]
            print(f"{engine}, {name}: {args.big} points / {args.small} points = "
                  f"{pooled(big)['rps'] / pooled(small)['rps']:.2f} (by round {by_round(big, small)})")


if __name__ == "__main__":
    main()
