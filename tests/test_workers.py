"""Several worker processes: the rate limit holds across them when Redis is configured."""
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from http.cookiejar import CookieJar
from pathlib import Path

import pytest
import redis

from ratelimit import LIMITS
from tests.conftest import free_port

REDIS_URL = "redis://127.0.0.1:6379/15"  # a database of its own, flushed by the test
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def gunicorn(migrated_database, tmp_path):
    redis.Redis.from_url(REDIS_URL).flushdb()
    port = free_port()
    access_log = tmp_path / "access.log"
    error_log = (tmp_path / "error.log").open("w")
    env = dict(
        os.environ,
        PORTAL_ENV="development",
        SECRET_KEY="workers-test",
        DATABASE_URL=migrated_database,
        REDIS_URL=REDIS_URL,
        MAIL_DELIVERY_THREAD="false",
        PORTAL_BASE_URL=f"http://127.0.0.1:{port}",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", "3", "--bind", f"127.0.0.1:{port}",
         "--access-logfile", str(access_log), "--access-logformat", "%(p)s %(m)s %(s)s",
         "app:create_app()"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=error_log,
        start_new_session=True,  # its own process group: the workers go down with it
    )
    try:
        yield wait_until_serving(process, port, tmp_path), access_log
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        error_log.close()


def wait_until_serving(process, port, tmp_path):
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/login", timeout=5)
            return url
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("gunicorn did not start: " + (tmp_path / "error.log").read_text()[-3000:]) from None
            time.sleep(0.2)


def test_login_rate_limit_is_shared_by_all_workers(gunicorn):
    url, access_log = gunicorn
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(url + "/login").read().decode()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    allowed = LIMITS["login-ip"][0]
    attempts = allowed + 15

    def attempt(n):
        data = urllib.parse.urlencode({"user": f"9{n:05d}", "password": "Sbagliata-2026!", "csrf_token": token})
        try:
            return opener.open(url + "/login", data=data.encode(), timeout=30).status
        except urllib.error.HTTPError as error:
            return error.code

    with ThreadPoolExecutor(max_workers=6) as pool:  # concurrent: spread over the workers
        statuses = Counter(pool.map(attempt, range(attempts)))

    # Wrong passwords are 422 until the shared counter says 429.
    assert statuses == {422: allowed, 429: attempts - allowed}
    time.sleep(0.5)  # the access log is written after the response
    workers = {line.split()[0] for line in access_log.read_text().splitlines() if " POST " in line}
    assert len(workers) >= 2, "the requests did not reach several workers"
