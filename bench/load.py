"""Load: simulated customers against gunicorn (2 sync workers), on SQLite and on PostgreSQL.

For each database: the demo's data (init-db, demo), a login for --users of its customers, then
gunicorn with 2 workers behind one trusted proxy (PROXY_COUNT=1: each simulated customer comes
from its own address, as customers do behind nginx) and locust's --users customers for
--seconds (bench/locustfile.py: log in, switch points, list and filter invoices, open charts,
download a CSV, send self-readings and tickets). Printed: requests/s, p50/p95/p99 and errors,
per request and in all, and the writes the portal acknowledged (a 303) against those found in
the database afterwards: none may be lost.

Locust lives in a virtualenv of its own (.venv/load: `make load` makes it), since it brings
its own Flask and gevent; this script runs in the portal's.

    make load                                           # SQLite, then the PostgreSQL of LOAD_POSTGRES
    .venv/bin/python bench/load.py [--users 20] [--seconds 60] [--postgres postgresql://…/bench]
        [--kill-worker-after 30]                        # a worker SIGKILLed mid-run
"""
import argparse
import csv
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import demo  # noqa: E402
import models  # noqa: E402
import schema  # noqa: E402
import self_readings  # noqa: E402
from app import create_app  # noqa: E402
from bench.run import prepare, serving  # noqa: E402
from tests.factories import PASSWORD, make_user  # noqa: E402


def customers_with_logins(database_url, count):
    """The demo customer and `count - 1` others with points and no login yet, each given one; for each, its
    points and the next reading of each register (one more than the last validated one)."""
    app = create_app({"PORTAL_ENV": "development", "SECRET_KEY": "bench", "DATABASE_URL": database_url,
                      "MAIL_DELIVERY_THREAD": False})
    users = []
    with app.app_context():
        mario = models.Customer.get(models.Customer.code == demo.DEMO_CUSTOMER)
        with_login = models.User.select(models.User.customer).where(models.User.customer.is_null(False))
        others = (models.Customer.select().join(models.SupplyPoint).where(models.Customer.id.not_in(with_login))
                  .group_by(models.Customer.id).order_by(models.Customer.id).limit(count - 1))
        for customer in [mario, *others]:
            if customer.id == mario.id:
                password = demo.DEMO_PASSWORD
            else:
                password = PASSWORD
                make_user(customer)
            points = []
            for point in models.SupplyPoint.for_customer(customer):
                next_values = {}  # none for a ceased point: it takes no self-reading
                for register in self_readings.registers_of(point) if point.status == "active" else ():
                    last = self_readings.last_validated(point, register)
                    next_values[register] = str(int(last.value) + 1 if last else 1)
                points.append({"code": point.code, "electricity": not point.is_gas, "next_values": next_values})
            users.append({"code": customer.code, "password": password, "points": points})
    return users


def acknowledged_and_found(database_url, acks_path):
    """The writes the portal acknowledged, by kind, and how many of them the database holds."""
    acks = [json.loads(line) for line in Path(acks_path).read_text().splitlines()] if Path(acks_path).exists() else []
    readings = {a["submission"] for a in acks if a["kind"] == "reading"}
    tickets = {a["subject"] for a in acks if a["kind"] == "ticket"}
    app = create_app({"PORTAL_ENV": "development", "SECRET_KEY": "bench", "DATABASE_URL": database_url,
                      "MAIL_DELIVERY_THREAD": False})
    with app.app_context():
        found_readings = {r.submission for r in models.Reading.select(models.Reading.submission)
                          .where(models.Reading.submission.in_(list(readings) or [""]))}
        found_tickets = {t.subject for t in models.Ticket.select(models.Ticket.subject)
                         .where(models.Ticket.subject.in_(list(tickets) or [""]))}
    return {"self-readings": (len(readings), len(found_readings)), "tickets": (len(tickets), len(found_tickets))}


def run_locust(locust, port, users, seconds, folder, users_file, acks):
    prefix = os.path.join(folder, "locust")
    with open(prefix + ".log", "w") as log:  # locust's own tables: the figures come from its CSV
        subprocess.run([locust, "-f", str(ROOT / "bench" / "locustfile.py"), "--headless", "--users", str(users),
                        "--spawn-rate", str(max(1, users // 5)), "--run-time", f"{seconds}s",
                        "--host", f"http://127.0.0.1:{port}", "--csv", prefix, "--only-summary"],
                       env=dict(os.environ, LOAD_USERS=users_file, LOAD_ACKS=acks), check=False, cwd=ROOT,
                       stdout=log, stderr=subprocess.STDOUT)
    if not os.path.exists(prefix + "_stats.csv"):
        raise SystemExit("locust failed:\n" + Path(prefix + ".log").read_text()[-3000:])
    errors = re.findall(r"^\s*\d+\s+(?:GET|POST) .*$", Path(prefix + ".log").read_text(), re.MULTILINE)
    with open(prefix + "_stats.csv") as stats:
        return list(csv.DictReader(stats)), errors


def report(engine, rows, errors, writes, args):
    print(f"\n{engine}: {args.users} customers, {args.seconds} s, gunicorn 2 sync workers; load "
          f"{os.getloadavg()[0]:.1f}")
    print(f"{'request':34} {'count':>6} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'errors':>6}")
    for row in rows:
        print(f"{row['Name'][:34]:34} {int(row['Request Count']):6d} {float(row['Requests/s']):7.1f} "
              f"{row['50%']:>7} {row['95%']:>7} {row['99%']:>7} {int(row['Failure Count']):6d}")
    for line in errors:
        print("error:", line.strip())
    for kind, (acknowledged, found) in writes.items():
        print(f"{kind}: {acknowledged} acknowledged, {found} in the database, {acknowledged - found} lost")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20, help="simulated customers (each logs in once)")
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--postgres", help="also run on this PostgreSQL database (it is emptied)")
    parser.add_argument("--locust", default=str(ROOT / ".venv" / "load" / "bin" / "locust"))
    parser.add_argument("--kill-worker-after", type=float, metavar="SECONDS",
                        help="SIGKILL one gunicorn worker this long after the start: no acknowledged write may be lost")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        databases = [("SQLite", "sqlite:///" + os.path.join(folder, "load.db"))]
        if args.postgres:
            schema.empty_postgres(args.postgres)
            databases.append(("PostgreSQL", args.postgres))
        for engine, database_url in databases:
            prepare(database_url)
            users_file, acks = os.path.join(folder, f"{engine}-users.json"), os.path.join(folder, f"{engine}-acks")
            Path(users_file).write_text(json.dumps(customers_with_logins(database_url, args.users)))
            with serving(2) as (serve, servers):
                serve(engine, database_url, PROXY_COUNT="1")
                port, _cookie = servers[engine]
                killer = threading.Timer(args.kill_worker_after, kill_a_worker, (port,)) if args.kill_worker_after else None
                if killer:
                    killer.start()
                rows, errors = run_locust(args.locust, port, args.users, args.seconds, folder, users_file, acks)
            report(engine, rows, errors, acknowledged_and_found(database_url, acks), args)


def kill_a_worker(port):
    """SIGKILL one of the workers of the gunicorn on `port`, as the kernel's OOM killer would:
    its requests in flight are lost to their clients, its master starts another worker."""
    master = int(subprocess.run(["pgrep", "-o", "-f", f"gunicorn.*--bind 127.0.0.1:{port}"], capture_output=True, text=True,
                                check=True).stdout)
    workers = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True, check=True).stdout.split()
    os.kill(int(workers[0]), signal.SIGKILL)
    print(f"killed worker {workers[0]} of gunicorn {master} with SIGKILL", flush=True)


if __name__ == "__main__":
    main()
