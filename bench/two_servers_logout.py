"""How soon a logout on one server ends the session on another (README, More than one server).

Two gunicorns (one sync worker each) on one PostgreSQL database, as tests/test_servers.py
starts them, with SESSION_CACHE_SECONDS far beyond the run: only the database's notification
can end a session that server A keeps. --times times: log in on A, open a page on A (A now
keeps the session's rows), log out on B, then replay the old cookie on A until A answers as
to a visitor. Prints how many replays that took and how long after the logout's answer.

    .venv/bin/python bench/two_servers_logout.py postgresql://postgres@127.0.0.1:5432/bench
"""
import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

import models  # noqa: E402
import schema  # noqa: E402
from bench import bench_app  # noqa: E402
from tests.factories import PASSWORD, make_customer, make_supply_point, make_user  # noqa: E402
from tests.helpers import gunicorn  # noqa: E402
from tests.test_servers import home, logged_in, post, sent_to_login  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("postgres", help="a PostgreSQL database to empty and use")
    parser.add_argument("--times", type=int, default=100)
    args = parser.parse_args()

    schema.empty_postgres(args.postgres)
    app = bench_app(args.postgres)
    with app.app_context():
        schema.upgrade(models.db_wrapper.database)
        customer = make_customer(code="005007")
        make_supply_point(customer)
        make_user(customer)
    settings = dict(PORTAL_ENV="development", SECRET_KEY="bench", DATABASE_URL=args.postgres, REDIS_URL=None,
                    MAIL_DELIVERY_THREAD="false", SESSION_CACHE_SECONDS=3600, PORTAL_BASE_URL="http://portal.test",
                    PROXY_COUNT=1)  # each login from an address of its own: the limit per IP is 30
    replays, delays = Counter(), []
    with tempfile.TemporaryDirectory() as logs, gunicorn(settings, logs) as a, gunicorn(settings, logs) as b:
        for n in range(args.times):
            browser = requests.Session()
            address = {"X-Forwarded-For": f"10.1.{n // 250}.{n % 250 + 1}"}
            assert post(browser, a.url + "/login", {"user": "005007", "password": PASSWORD},
                        headers=address).status_code == 303
            assert logged_in(home(browser, a))
            cookie = browser.cookies.get("sportello_session")
            assert post(browser, b.url + "/logout", {}, page=b.url + "/").status_code == 303
            logged_out = time.perf_counter()
            replay, count = requests.Session(), 1
            replay.cookies.set("sportello_session", cookie)
            while not sent_to_login(home(replay, a)):
                count += 1
            delays.append((time.perf_counter() - logged_out) * 1000)
            replays[count] += 1
    print(f"{args.times} logouts on B: A answered the old cookie as a visitor's at replay "
          + ", ".join(f"{n} ({times} times)" for n, times in sorted(replays.items()))
          + f"; {statistics.median(delays):.1f} ms after the logout's answer (median, one replay included), "
          f"worst {max(delays):.1f} ms")


if __name__ == "__main__":
    main()
