"""Load: simulated customers against gunicorn (2 sync workers), on SQLite and on PostgreSQL.

For each database: the demo's data (init-db, demo), a login for --users of its customers, then
gunicorn with 2 workers behind one trusted proxy (PROXY_COUNT=1: each simulated customer comes
from its own address, as customers do behind nginx) and locust's --users customers for
--seconds (bench/locustfile.py: log in, switch points, list and filter invoices, open charts,
download a CSV, send self-readings and tickets). Printed: requests/s, p50/p95/p99 and errors,
per request and in all, and the writes the portal acknowledged (a 303) against those found in
the database afterwards: none may be lost. Mail goes as in production: the portal queues it, a
mail worker (`flask send-mail --loop`) delivers it to an SMTP server on loopback (aiosmtpd); at
the end every mail the outbox sent must have arrived once, by its Message-ID.

--fault makes one thing fail --fault-after seconds into the run, for --fault-for seconds:
  worker    one gunicorn worker SIGKILLed (as the OOM killer would); its master starts another
  smtp      the SMTP server stopped, then started again: mail waits in the outbox, none lost
            or doubled
  redis     the rate limits' Redis (a redis-server of the run's own) stopped, then started
            again: the limits count in the database meanwhile
  postgres  the database (a PostgreSQL of the run's own, initdb'd; SQLite is not run) stopped,
            then started: requests in between get the clean 503 page, the same processes
            serve again after
Failures are counted before, during and after the fault.

Locust lives in a virtualenv of its own (.venv/load: `make load` makes it), since it brings
its own Flask and gevent; this script runs in the portal's.

    make load                                           # SQLite, then the PostgreSQL of LOAD_POSTGRES
    .venv/bin/python bench/load.py [--users 20] [--seconds 60] [--postgres postgresql://…/bench]
        [--fault worker|smtp|redis|postgres [--fault-after 20] [--fault-for 15]]
"""
import argparse
import collections
import contextlib
import csv
import json
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import demo  # noqa: E402
import mailer  # noqa: E402
import models  # noqa: E402
import schema  # noqa: E402
import self_readings  # noqa: E402
from bench import bench_app  # noqa: E402
from bench.run import environment, prepare, serving  # noqa: E402
from tests.conftest import SmtpServer  # noqa: E402
from tests.factories import PASSWORD, make_user  # noqa: E402
from tests.helpers import RedisServer, private_postgres  # noqa: E402

MAIL_DRAIN_SECONDS = 120  # after the run, how long the mail worker may take to empty the outbox


def customers_with_logins(database_url, count):
    """The demo customer and `count - 1` others with points and no login yet, each given one; for each, its
    points and the next reading of each register (one more than the last validated one)."""
    app = bench_app(database_url)
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
    app = bench_app(database_url)
    with app.app_context():
        found_readings = {r.submission for r in models.Reading.select(models.Reading.submission)
                          .where(models.Reading.submission.in_(list(readings) or [""]))}
        found_tickets = {t.subject for t in models.Ticket.select(models.Ticket.subject)
                         .where(models.Ticket.subject.in_(list(tickets) or [""]))}
        counted_in_database = models.RateCounter.select().count()
    return {"self-readings": (len(readings), len(found_readings)), "tickets": (len(tickets), len(found_tickets)),
            "rate counters in the database": counted_in_database}


def run_locust(locust, port, users, seconds, folder, users_file, acks, failures):
    prefix = os.path.join(folder, "locust")
    with open(prefix + ".log", "w") as log:  # locust's own tables: the figures come from its CSV
        subprocess.run([locust, "-f", str(ROOT / "bench" / "locustfile.py"), "--headless", "--users", str(users),
                        "--spawn-rate", str(max(1, users // 5)), "--run-time", f"{seconds}s",
                        "--host", f"http://127.0.0.1:{port}", "--csv", prefix, "--only-summary"],
                       env=dict(os.environ, LOAD_USERS=users_file, LOAD_ACKS=acks, LOAD_FAILURES=failures),
                       check=False, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    if not os.path.exists(prefix + "_stats.csv"):
        raise SystemExit("locust failed:\n" + Path(prefix + ".log").read_text()[-3000:])
    errors = re.findall(r"^\s*\d+\s+(?:GET|POST) .*$", Path(prefix + ".log").read_text(), re.MULTILINE)
    with open(prefix + "_stats.csv") as stats:
        return list(csv.DictReader(stats)), errors


def mails_sent_and_received(database_url, smtp, fault):
    """Once the mail worker has emptied the outbox (or MAIL_DRAIN_SECONDS have passed): the mails
    the outbox holds, those it sent, and of those how many the SMTP server received not at all
    or more than once (by Message-ID, which stays the same when a mail is sent again); and how
    many were held by the fault: queued before it ended, sent after."""
    app = bench_app(database_url)
    with app.app_context():
        deadline = time.monotonic() + MAIL_DRAIN_SECONDS
        while models.OutboxMail.select().where(models.OutboxMail.sent_at.is_null()).count() and time.monotonic() < deadline:
            time.sleep(1)
        sender = app.config["MAIL_DEFAULT_SENDER"]
        mails = list(models.OutboxMail.select())
        sent = {mailer.message_id(mail, sender) for mail in mails if mail.sent_at is not None}
    received = collections.Counter(message["Message-ID"] for message in smtp.messages)
    return {"queued": len(mails), "sent": len(sent), "received": sum(received.values()),
            "held": sum(1 for mail in mails if fault.ended and mail.sent_at
                        and mail.created_at < datetime.fromtimestamp(fault.ended, UTC).replace(tzinfo=None) <= mail.sent_at),
            "lost": len(sent - set(received)), "doubled": sum(1 for n in received.values() if n > 1),
            "unknown": len(set(received) - sent)}


def report(engine, rows, errors, writes, mails, fault, failures, args):
    print(f"\n{engine}: {args.users} customers, {args.seconds} s, gunicorn 2 sync workers; load "
          f"{os.getloadavg()[0]:.1f}")
    print(f"{'request':34} {'count':>6} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'errors':>6}")
    for row in rows:
        print(f"{row['Name'][:34]:34} {int(row['Request Count']):6d} {float(row['Requests/s']):7.1f} "
              f"{row['50%']:>7} {row['95%']:>7} {row['99%']:>7} {int(row['Failure Count']):6d}")
    for line in errors:
        print("error:", line.strip())
    for kind in ("self-readings", "tickets"):
        acknowledged, found = writes[kind]
        print(f"{kind}: {acknowledged} acknowledged, {found} in the database, {acknowledged - found} lost")
    if args.fault == "redis":
        print(f"rate limits' counters written to the database while Redis was away: "
              f"{writes['rate counters in the database']}")
    print(f"mails: {mails['queued']} queued ({mails['held']} of them held by the fault: queued before it ended, "
          f"sent after), {mails['sent']} sent, {mails['received']} received; "
          f"{mails['lost']} lost, {mails['doubled']} received twice, {mails['unknown']} unknown")
    if fault.began is not None:
        print(f"fault: {fault.what}")
        ended = fault.ended or fault.began
        phases = collections.Counter(
            "before" if f["at"] < fault.began else "during" if f["at"] < ended + FAULT_GRACE_SECONDS else "after"
            for f in failures)
        statuses = collections.Counter((f["status"], f["request"]) for f in failures)
        print(f"failed requests: {phases['before']} before the fault, {phases['during']} during it (and "
              f"{FAULT_GRACE_SECONDS} s after), {phases['after']} after")
        for (status, request), count in sorted(statuses.items()):
            print(f"  {count:5d} × {status} {request}")


FAULT_GRACE_SECONDS = 5  # after a fault ends, requests already waiting still meet it


class Fault:
    """One fault of --fault, begun and ended on timers; `what` says what happened, when."""

    def __init__(self, kind, after, lasting, started):
        self.kind, self.after, self.lasting, self.started = kind, after, lasting, started
        self.began = self.ended = None
        self.what = ""
        self.port = self.smtp = self.redis = self.cluster = None
        self.timers = []

    def arm(self, port, smtp, redis, cluster):
        self.port, self.smtp, self.redis, self.cluster = port, smtp, redis, cluster
        if self.kind:
            self.timers = [threading.Timer(self.after, self.begin)]
            if self.kind != "worker":
                self.timers.append(threading.Timer(self.after + self.lasting, self.end))
            for timer in self.timers:
                timer.start()

    def begin(self):
        self.began = time.time()
        if self.kind == "worker":
            self.what = kill_a_worker(self.port)
            self.ended = time.time()
        elif self.kind == "smtp":
            self.smtp.stop()
        elif self.kind == "redis":
            self.redis.stop()
        elif self.kind == "postgres":
            self.cluster.stop()
        print(f"{self.kind} fault began at {self.began - self.started:.1f} s", flush=True)

    def end(self):
        if self.kind == "smtp":
            self.smtp.start()
        elif self.kind == "redis":
            self.redis.start()
        elif self.kind == "postgres":
            self.cluster.start()
        self.ended = time.time()
        self.what = (f"{self.kind} stopped at {self.began - self.started:.0f} s, started again at "
                     f"{self.ended - self.started:.0f} s")
        print(f"{self.kind} fault ended at {self.ended - self.started:.1f} s", flush=True)

    def cancel(self):
        for timer in self.timers:
            timer.cancel()


@contextlib.contextmanager
def mail_worker(database_url, smtp):
    """`flask send-mail --loop`, as deploy/'s sportello-mail unit runs it."""
    env = environment(database_url, 0, MAIL_SERVER="127.0.0.1", MAIL_PORT=str(smtp.port), MAIL_RETRY_SECONDS="2",
                      MAIL_TIMEOUT="5")
    process = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "send-mail", "--loop"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait()


def main():
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's line per SMTP command
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20, help="simulated customers (each logs in once)")
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--postgres", help="also run on this PostgreSQL database (it is emptied)")
    parser.add_argument("--locust", default=str(ROOT / ".venv" / "load" / "bin" / "locust"))
    parser.add_argument("--fault", choices=["worker", "smtp", "redis", "postgres"], help="what fails during the run")
    parser.add_argument("--fault-after", type=float, default=20, help="seconds into the run")
    parser.add_argument("--fault-for", type=float, default=15, help="seconds the fault lasts (not a worker's)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, contextlib.ExitStack() as stack:
        if args.fault == "postgres":  # the machine's PostgreSQL serves others: stop one of the run's own
            cluster = stack.enter_context(private_postgres())
            databases = [("PostgreSQL (a server of the run's own)", cluster.url)]
        else:
            cluster = None
            databases = [("SQLite", "sqlite:///" + os.path.join(folder, "load.db"))]
            if args.postgres:
                schema.empty_postgres(args.postgres)
                databases.append(("PostgreSQL", args.postgres))
        for number, (engine, database_url) in enumerate(databases):
            prepare(database_url)
            files = {name: os.path.join(folder, f"{number}-{name}") for name in ("users.json", "acks", "failures")}
            Path(files["users.json"]).write_text(json.dumps(customers_with_logins(database_url, args.users)))
            smtp = SmtpServer().start()
            redis = RedisServer().start() if args.fault == "redis" else None
            settings = dict(PROXY_COUNT="1", MAIL_SERVER="127.0.0.1", MAIL_PORT=str(smtp.port))
            if redis:
                settings["REDIS_URL"] = redis.url
            fault = Fault(args.fault, args.fault_after, args.fault_for, time.time())
            try:
                with serving(2) as (serve, servers), mail_worker(database_url, smtp):
                    serve(engine, database_url, **settings)
                    port, _cookie = servers[engine]
                    fault.started = time.time()
                    fault.arm(port, smtp, redis, cluster)
                    rows, errors = run_locust(args.locust, port, args.users, args.seconds, folder, files["users.json"],
                                              files["acks"], files["failures"])
                    mails = mails_sent_and_received(database_url, smtp, fault)
            finally:
                fault.cancel()
                smtp.stop()
                if redis:
                    redis.stop()
            failures = [json.loads(line) for line in Path(files["failures"]).read_text().splitlines()] \
                if Path(files["failures"]).exists() else []
            report(engine, rows, errors, acknowledged_and_found(database_url, files["acks"]), mails, fault, failures,
                   args)


def kill_a_worker(port):
    """SIGKILL one of the workers of the gunicorn on `port`, as the kernel's OOM killer would:
    its requests in flight are lost to their clients, its master starts another worker."""
    master = int(subprocess.run(["pgrep", "-o", "-f", f"gunicorn.*--bind 127.0.0.1:{port}"], capture_output=True, text=True,
                                check=True).stdout)
    workers = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True, check=True).stdout.split()
    os.kill(int(workers[0]), signal.SIGKILL)
    return f"worker {workers[0]} of gunicorn {master} killed with SIGKILL"


if __name__ == "__main__":
    main()
