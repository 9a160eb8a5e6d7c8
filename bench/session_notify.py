"""How soon another process hears that a session changed (PostgreSQL's NOTIFY, database.SessionCache).

On a PostgreSQL database it empties and migrates, one connection LISTENs as every portal
process does and another updates a session (migration 006's trigger fires as for a logout);
it measures, --times times, from the writer's commit returning to the notification's arrival:
how long a session just ended may still be served from another process's cache.

    .venv/bin/python bench/session_notify.py postgresql://postgres@127.0.0.1:5432/bench
"""
import argparse
import select
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg2  # noqa: E402

import models  # noqa: E402
import schema  # noqa: E402
from bench import bench_app  # noqa: E402
from database import SessionCache  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("postgres", help="a PostgreSQL database to empty and use")
    parser.add_argument("--times", type=int, default=1000)
    args = parser.parse_args()

    schema.empty_postgres(args.postgres)
    app = bench_app(args.postgres)
    with app.app_context():
        schema.upgrade(models.db_wrapper.database)
        customer = models.Customer.create(code="005007", name="ROSSI MARIO", kind="person", tax_code="RSSMRA70A01H199Z")
        user = models.User.create(customer=customer, role="owner", email="mario@example.it", password_hash="-")
        session = models.UserSession.create(token_hash="0" * 64, user=user)

    listener, writer = psycopg2.connect(args.postgres), psycopg2.connect(args.postgres)
    listener.autocommit = writer.autocommit = True
    listener.cursor().execute(f"LISTEN {SessionCache.CHANNEL}")
    cursor = writer.cursor()
    delays = []
    for _ in range(args.times):
        cursor.execute("UPDATE usersession SET last_seen_at = last_seen_at WHERE id = %s", [session.id])
        committed = time.perf_counter()
        listener.poll()
        while not listener.notifies:
            select.select([listener], [], [], 5)
            listener.poll()
        delays.append((time.perf_counter() - committed) * 1000)
        listener.notifies.clear()
    delays.sort()
    print(f"{args.times} session changes: the notification came {statistics.median(delays):.3f} ms after the "
          f"commit returned (median), p99 {delays[int(len(delays) * 0.99) - 1]:.3f} ms, worst {delays[-1]:.3f} ms")


if __name__ == "__main__":
    main()
