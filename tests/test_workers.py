"""Several worker processes: rate limits and the lockout hold across them, counted in the database,
in Redis, or in the database while the configured Redis does not answer (and after it is back)."""
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from http.cookiejar import CookieJar

import pytest
import redis

from ratelimit import LIMITS
from tests.factories import PASSWORD
from tests.helpers import RedisServer, csrf_from
from tests.helpers import gunicorn as serve

REDIS_URL = "redis://127.0.0.1:6379/15"  # a database of its own, flushed by the test


REDIS_DOWN = "redis://127.0.0.1:1/0"  # nothing listens there: every call fails at once
COUNTERS = {"database": None, "redis": REDIS_URL, "redis-down": REDIS_DOWN}


@pytest.fixture(params=COUNTERS)
def gunicorn(request, app, migrated_database, tmp_path):  # app: the tables start empty
    """Two worker processes on the test database, counting in the database (no REDIS_URL), in
    Redis, or in the database because the configured Redis does not answer."""
    redis.Redis.from_url(REDIS_URL).flushdb()
    access_log = tmp_path / "access.log"
    settings = dict(PORTAL_ENV="development", SECRET_KEY="workers-test", DATABASE_URL=migrated_database,
                    MAIL_DELIVERY_THREAD="false", REDIS_URL=COUNTERS[request.param])
    with serve(settings, tmp_path, workers=2, access_log=access_log) as server:
        yield server.url, access_log
    if request.param == "redis-down":
        assert "Redis is unreachable: rate limits count in the database" in server.log.read_text()


class Browser:
    """A visitor with cookies and the login form's CSRF token."""

    def __init__(self, url):
        self.url = url
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        page = self.opener.open(url + "/login").read().decode()
        self.token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)

    def login(self, user, password):
        """The answer's status and the messages next to its fields (times masked)."""
        data = urllib.parse.urlencode({"user": user, "password": password, "csrf_token": self.token})
        try:
            response = self.opener.open(self.url + "/login", data=data.encode(), timeout=60)
        except urllib.error.HTTPError as error:
            response = error
        body = response.read().decode()
        errors = re.findall(r'class="field-error"[^>]*>(.*?)</p>', body, re.S)
        return response.status, [re.sub(r"\d{1,2}:\d{2}", "HH:MM", e.strip()) for e in errors]


def workers_that_answered(access_log):
    time.sleep(0.5)  # the access log is written after the response
    return {line.split()[0] for line in access_log.read_text().splitlines() if " POST " in line}


def test_login_rate_limit_is_shared_by_all_workers(gunicorn):
    url, access_log = gunicorn
    browser = Browser(url)
    allowed = LIMITS["login-ip"][0]
    attempts = allowed + 15

    def attempt(n):
        return browser.login(f"9{n:05d}", "Sbagliata-2026!")[0]

    with ThreadPoolExecutor(max_workers=6) as pool:  # concurrent: spread over the workers
        statuses = Counter(pool.map(attempt, range(attempts)))

    # Wrong passwords are 422 until the shared counter says 429.
    assert statuses == {422: allowed, 429: attempts - allowed}
    assert len(workers_that_answered(access_log)) == 2, "the requests did not reach both workers"


def test_an_existing_and_an_unknown_code_get_the_same_answers(owner, gunicorn):
    """Ten wrong passwords on 005007 and on 999990, through both workers: the same status and
    text at every attempt, the lock included, and the right password locked out alike."""
    url, access_log = gunicorn
    known, unknown = Browser(url), Browser(url)
    passwords = ["Sbagliata-2026!"] * 11 + [PASSWORD]

    def attempts(browser, code):
        return [browser.login(code, password) for password in passwords]

    with ThreadPoolExecutor(max_workers=2) as pool:  # side by side: both workers serve both
        answers_known, answers_unknown = pool.map(attempts, (known, unknown), ("005007", "999990"))

    assert answers_known == answers_unknown
    assert [status for status, _ in answers_known] == [422] * 9 + [429] * 3
    assert len(workers_that_answered(access_log)) == 2, "the requests did not reach both workers"


def test_redis_stopped_and_started_again_under_a_guessing_visitor(make_app):
    """The rate limits' Redis stops mid-window: the database counts meanwhile, from the start of a
    window of its own (neither open nor closed to everyone), and once Redis answers again, empty
    as a Redis without persistence restarts, what the database counted still refuses."""
    server = RedisServer().start()
    try:
        client = make_app(REDIS_URL=server.url).test_client()
        token = csrf_from(client.get("/login"))
        allowed = LIMITS["login-ip"][0]

        def attempts(count, first):
            statuses = []
            for n in range(first, first + count):
                response = client.post("/login", data={"user": f"9{n:05d}", "password": "Sbagliata-2026!",
                                                       "csrf_token": token})
                statuses.append(response.status_code)
            return statuses

        assert attempts(20, 0) == [422] * 20  # counted in Redis
        assert redis.Redis.from_url(server.url).keys("sportello:rl:login-ip:*")
        server.stop()
        assert attempts(allowed + 1, 20) == [422] * allowed + [429]  # the database's own window
        server.start()
        assert not redis.Redis.from_url(server.url).keys()  # back, and empty
        assert attempts(1, 100) == [429]
    finally:
        server.stop()
