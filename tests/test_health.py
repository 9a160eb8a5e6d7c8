"""/healthz, as a monitoring probe or a load balancer sees it: 200 while the database (and Redis,
when configured) answers, 503 when not; no session, nothing logged, never cached."""
import logging
from datetime import timedelta

import pytest
import redis

from models import UserSession, utcnow
from tests.conftest import free_port

REDIS_URL = "redis://127.0.0.1:6379/15"  # tests/test_workers.py's database of its own
NOBODY_LISTENS = free_port()  # a port nothing listens on: connections are refused at once


def probe(client):
    response = client.get("/healthz")
    assert response.mimetype == "text/plain"
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers
    return response


def test_healthy_when_the_database_answers(client):
    response = probe(client)  # SQLite, or PostgreSQL with TEST_DATABASE_URL
    assert response.status_code == 200
    assert response.text == "database ok\n"
    assert client.head("/healthz").status_code == 200


@pytest.mark.parametrize("unreachable_url", [
    "sqlite:////nonexistent-folder/sportello.db",  # a file that cannot be opened
    f"postgresql://sportello@127.0.0.1:{NOBODY_LISTENS}/sportello",  # a server that is down
], ids=["sqlite", "postgresql"])
def test_unhealthy_when_the_database_does_not_answer(make_app, unreachable_url):
    client = make_app(DATABASE_URL=unreachable_url).test_client()
    response = probe(client)
    assert response.status_code == 503
    assert response.text == "database unreachable\n"


def test_redis_is_checked_when_configured(make_app):
    redis.Redis.from_url(REDIS_URL).ping()  # the suite needs a Redis on loopback (tests/test_workers.py)
    response = probe(make_app(REDIS_URL=REDIS_URL).test_client())
    assert response.status_code == 200
    assert response.text == "database ok\nredis ok\n"

    response = probe(make_app(REDIS_URL=f"redis://127.0.0.1:{NOBODY_LISTENS}/0").test_client())
    assert response.status_code == 503
    assert response.text == "database ok\nredis unreachable\n"


def test_a_probe_neither_reads_nor_keeps_a_session_and_logs_nothing(app, logged_in, caplog):
    """A probe with a customer's session cookie: the session is not looked up (it stays as
    idle as it was), no cookie is set, and nothing is logged, however often it comes: more
    often than any per-IP limit allows a form."""
    idle_since = utcnow() - timedelta(minutes=5)
    UserSession.update(last_seen_at=idle_since).execute()
    caplog.set_level(logging.INFO)  # production's level (app.configure_logging)
    for _ in range(40):
        assert probe(logged_in).status_code == 200
    assert caplog.records == []
    assert [s.last_seen_at for s in UserSession.select()] == [idle_since]
    page = logged_in.get("/?sp=PR002874")
    assert page.status_code == 200, page.headers.get("Location")  # the session itself is alive: a page touches it
    assert UserSession.get().last_seen_at > idle_since


def test_unhealthy_probes_log_nothing_either(make_app, caplog):
    client = make_app(DATABASE_URL=f"postgresql://sportello@127.0.0.1:{NOBODY_LISTENS}/sportello",
                      REDIS_URL=f"redis://127.0.0.1:{NOBODY_LISTENS}/0").test_client()
    caplog.set_level(logging.INFO)
    for _ in range(5):
        response = probe(client)
        assert response.status_code == 503
        assert response.text == "database unreachable\nredis unreachable\n"
    assert caplog.records == []
