"""Import throughput: a year of hourly measures for 1,000 supply points (8.76 million rows).

Generates the data set once (bench/out/), then in one run, side by side:
  - `flask import` of measures.csv (and the customers and points it needs) into a fresh SQLite
    database, then the same files again (all unchanged);
  - the sqlite3 shell's own `.import` of the same measures.csv into a bare table (no checks,
    no indexes): the floor any importer on SQLite is compared with.
Prints rows per second and the ratio. Needs the sqlite3 shell (apt-get install sqlite3).

    .venv/bin/python bench/import_bench.py [--points 1000] [--days 365]
"""
import argparse
import os
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.import_data import write_data_set  # noqa: E402

OUT = ROOT / "bench" / "out"


def timed(command, env=None, stdin=None):
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=env, input=stdin, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{command[:4]} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return elapsed, result.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1000, help="electricity points with measures")
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()
    if not shutil.which("sqlite3"):
        raise SystemExit("the sqlite3 shell is missing: apt-get install sqlite3")

    data = OUT / f"import-{args.points}x{args.days}"
    if not (data / "measures.csv").exists():
        print(f"generating {args.points} points x {args.days} days of hourly measures in {data} ...")
        write_data_set(data, customers=args.points, months=1, days_of_measures=args.days, first_day=date(2025, 11, 1))
    rows = sum(1 for _ in open(data / "measures.csv")) - 1
    size = (data / "measures.csv").stat().st_size

    database = OUT / "import-bench.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    env = dict(os.environ, PORTAL_ENV="development", SECRET_KEY="bench", DATABASE_URL=f"sqlite:///{database}",
               FILE_STORE=str(OUT / "import-files"), MAIL_DELIVERY_THREAD="false")
    flask = [sys.executable, "-m", "flask", "--app", "app"]
    timed(flask + ["init-db"], env)
    first, summary = timed(flask + ["import", str(data)], env)
    again, summary_again = timed(flask + ["import", str(data)], env)

    bare = OUT / "bare.db"
    bare.unlink(missing_ok=True)
    script = (".mode csv\nCREATE TABLE measure_bare (supply_point_code TEXT, start TEXT, kwh REAL, "
              "interval_minutes INTEGER, quality TEXT);\n"
              f".import --skip 1 {data / 'measures.csv'} measure_bare\n")
    shell, _ = timed(["sqlite3", str(bare)], stdin=script)

    print(f"\nmeasures.csv: {rows:,} rows, {size / 1e6:.0f} MB ({args.points} points x {args.days} days, hourly)")
    print(summary.strip())
    print(f"{'':32} {'seconds':>8} {'rows/s':>10} {'vs .import':>10}")
    print(f"{'sqlite3 shell .import (bare)':32} {shell:8.1f} {rows / shell:10,.0f} {1:10.2f}")
    print(f"{'flask import (first run)':32} {first:8.1f} {rows / first:10,.0f} {shell / first:10.2f}")
    print(f"{'flask import (same files again)':32} {again:8.1f} {rows / again:10,.0f} {shell / again:10.2f}")
    print(summary_again.strip().splitlines()[-2])


if __name__ == "__main__":
    main()
