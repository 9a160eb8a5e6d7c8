"""Misure elettriche's downloads at scale: ten years of one point's quarter-hours (350,640 rows).

Prints, each a median over the rounds (this machine is shared and noisy, so each figure is a
ratio measured in the same run):
  - the CSV download's rows/s through the app (the route, the streamed body read to its end, in
    a process that has served one small download before) / `sqlite3 -csv` of the same rows
    with the same query                                                 (target >= 0.3)
  - the same for the CSV for Italian Excel and the Green Button XML (for information)
  - peak RSS of a process that downloads one year and of one that downloads ten years, each a
    fresh process on the same database                                 (target: within 10%)

    .venv/bin/python bench/measures_csv_bench.py [--years 10] [--rounds 3]
"""
import argparse
import dataclasses
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import argon2  # noqa: E402

import accounts  # noqa: E402
import models  # noqa: E402
import schema  # noqa: E402
from bench import bench_app  # noqa: E402
from i18n import rome_midnight_utc  # noqa: E402

LAST_DAY = date(2026, 11, 30)
PASSWORD = "Bench-password-1"
QUERY = ("SELECT m.start, m.kwh, m.interval_minutes, m.quality FROM measure m WHERE m.supply_point_id = "
         "(SELECT id FROM supplypoint WHERE code = 'PR002874') AND m.start >= '{since}' AND m.start < '{before}' "
         "ORDER BY m.start")
PATHS = {"csv": "/misure-elettriche.csv", "excel": "/misure-elettriche-excel.csv", "xml": "/misure-elettriche.xml"}


def cheap_hashing():
    """Logins at argon2's least cost, as the tests do: the production cost (64 MiB) would be
    most of each process's peak memory and hide the download's."""
    parameters = dataclasses.replace(argon2.profiles.RFC_9106_LOW_MEMORY, time_cost=1, memory_cost=8, parallelism=1)
    accounts.hasher = argon2.PasswordHasher.from_parameters(parameters)


def make_app(database_url):
    return bench_app(database_url)


def build(database_url, years):
    """Customer 005007 with point PR002874 and `years` years of quarter-hours up to LAST_DAY."""
    cheap_hashing()
    app = make_app(database_url)
    with app.app_context():
        database = models.db_wrapper.database
        schema.upgrade(database)
        customer = models.Customer.create(code="005007", name="ROSSI MARIO", kind="person", tax_code="RSSMRA70A01H199Z")
        point = models.SupplyPoint.create(code="PR002874", customer=customer, commodity="electricity", pod_pdr="IT001E00287400")
        models.User.create(customer=customer, role=models.User.OWNER, email="bench@example.it",
                           password_hash=accounts.hash_password(PASSWORD), confirmed_at=models.utcnow())
        start = rome_midnight_utc(date(LAST_DAY.year - years, LAST_DAY.month, LAST_DAY.day) + timedelta(days=1))
        end = rome_midnight_utc(LAST_DAY + timedelta(days=1))
        rows, index = [], 0
        with database.atomic():
            while start < end:
                rows.append((point.id, start, 0.05 + (index % 37) * 0.011, 15, "estimated" if index % 97 == 0 else "actual"))
                start += timedelta(minutes=15)
                index += 1
                if len(rows) == 50000:
                    database.cursor().executemany("INSERT INTO measure (supply_point_id, start, kwh, interval_minutes, quality) "
                                                  "VALUES (?, ?, ?, ?, ?)", rows)
                    rows.clear()
            database.cursor().executemany("INSERT INTO measure (supply_point_id, start, kwh, interval_minutes, quality) "
                                          "VALUES (?, ?, ?, ?, ?)", rows)
    return index


def download(database_url, kind, first, last):
    """In this process: log in, download, read to the end. Prints rows, seconds, peak RSS (KiB)."""
    cheap_hashing()
    from tests.helpers import login

    app = make_app(database_url)
    client = app.test_client()
    assert login(client, "005007", PASSWORD).status_code == 303
    # A worker that has served a download before (the first one imports and caches what every
    # later one uses): one day, then the measured interval.
    warm = client.get(f"{PATHS[kind]}?sp=PR002874&dal={last}&al={last}")
    assert warm.status_code == 200 and warm.data
    started = time.perf_counter()
    response = client.get(f"{PATHS[kind]}?sp=PR002874&dal={first}&al={last}", buffered=False)
    assert response.status_code == 200, response.status_code
    size = lines = 0
    for chunk in response.response:
        size += len(chunk)
        lines += chunk.count(b"<espi:IntervalReading>" if kind == "xml" else b"\n")
    seconds = time.perf_counter() - started
    rows = lines if kind == "xml" else lines - 1
    print(rows, seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, size)


def in_process(database_url, kind, first, last):
    output = subprocess.run([sys.executable, __file__, "--download", database_url, kind, first.isoformat(), last.isoformat()],
                            check=True, capture_output=True, text=True, cwd=ROOT).stdout.split()
    rows, seconds, rss, size = int(output[0]), float(output[1]), int(output[2]), int(output[3])
    return rows, seconds, rss, size


def sqlite_csv(path, first, last):
    since, before = rome_midnight_utc(first), rome_midnight_utc(last + timedelta(days=1))
    sql = QUERY.format(since=since, before=before)
    started = time.perf_counter()
    output = subprocess.run(["sqlite3", "-csv", str(path), sql], check=True, capture_output=True).stdout
    return output.count(b"\n"), time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--download", nargs=4)
    arguments = parser.parse_args()
    if arguments.download:
        return download(*arguments.download)
    folder = Path(tempfile.mkdtemp(prefix="measures-bench-"))
    try:
        path = folder / "bench.db"
        url = f"sqlite:///{path}"
        built = build(url, arguments.years)
        print(f"{built:,} quarter-hours of PR002874 ({arguments.years} years to {LAST_DAY}) in {path}")
        whole = (date(LAST_DAY.year - arguments.years, LAST_DAY.month, LAST_DAY.day) + timedelta(days=1), LAST_DAY)
        one_year = (date(LAST_DAY.year - 1, LAST_DAY.month, LAST_DAY.day) + timedelta(days=1), LAST_DAY)
        figures = {kind: [] for kind in PATHS}
        shell, rss = [], {"one": [], "all": []}
        for _round in range(arguments.rounds):
            rows, seconds = sqlite_csv(path, *whole)
            assert rows == built, (rows, built)
            shell.append(rows / seconds)
            for kind in PATHS:
                rows, seconds, peak, _size = in_process(url, kind, *whole)
                assert rows == built, (kind, rows, built)
                figures[kind].append(rows / seconds)
                if kind == "csv":
                    rss["all"].append(peak)
            rss["one"].append(in_process(url, "csv", *one_year)[2])
        base = statistics.median(shell)
        print(f"sqlite3 -csv: {base:,.0f} rows/s")
        for kind, rates in figures.items():
            ratios = [rate / shell_rate for rate, shell_rate in zip(rates, shell, strict=True)]
            print(f"{kind:5}: {statistics.median(rates):,.0f} rows/s, ratio to sqlite3 -csv {statistics.median(ratios):.2f} "
                  f"(rounds {min(ratios):.2f}-{max(ratios):.2f}){'  target >= 0.3' if kind == 'csv' else ''}")
        one, everything = statistics.median(rss["one"]), statistics.median(rss["all"])
        print(f"peak RSS, CSV of one year: {one / 1024:.1f} MiB; of {arguments.years} years: {everything / 1024:.1f} MiB; "
              f"ratio {everything / one:.3f}  target <= 1.10")

    finally:
        shutil.rmtree(folder, ignore_errors=True)  # the database: tens of MB a run

if __name__ == "__main__":
    main()
