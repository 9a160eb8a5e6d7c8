"""More than one server: two gunicorns on their own ports, as two VMs behind nginx's upstream,
with the same SECRET_KEY, database, Redis and file store (README, More than one server). What
one server does holds on the other: sessions and their end, rate limits, the outbox, imports.

The two servers start once for the module, on a database of their own (a new PostgreSQL
database beside TEST_DATABASE_URL's, or an SQLite file), which the tests empty in turn."""
import json
import os
import re
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pyotp
import pytest
import redis
import requests

import accounts
import models
import schema
from app import create_app
from files import FileStore
from models import AuditLog, ImportJob, MailRequest, OutboxMail, RateCounter, utcnow
from ratelimit import LIMITS
from tests.conftest import TEST_CONFIG, empty_tables
from tests.factories import PASSWORD, make_customer, make_supply_point, make_user
from tests.helpers import gunicorn, release_connections
from tests.import_data import pdf_bytes, write_data_set, zipped

REDIS_URL = "redis://127.0.0.1:6379/12"  # a database of its own, flushed before each test
OPERATOR_PASSWORD = "Sportello-Staff-2026!"
SESSION_CACHE_SECONDS = 300  # far beyond the test: only the database's notification ends a cached session


def own_database(database_url, tmp_path):
    """The servers' database: a new PostgreSQL database named after the suite's, or an SQLite file."""
    if not database_url or not database_url.startswith("postgres"):
        return "sqlite:///" + str(tmp_path / "servers.db"), None
    parts = urlsplit(database_url)
    name = parts.path.lstrip("/") + "_two_servers"
    with admin_connection(database_url) as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path="/" + name)), name


class admin_connection:
    """A cursor on the server's maintenance database, outside any transaction (CREATE DATABASE)."""

    def __init__(self, database_url):
        self.connection = psycopg2.connect(urlunsplit(urlsplit(database_url)._replace(path="/postgres")))
        self.connection.autocommit = True

    def __enter__(self):
        return self.connection.cursor()

    def __exit__(self, *exc):
        self.connection.close()


@pytest.fixture(scope="module")
def servers(tmp_path_factory, smtp_session):
    tmp_path = tmp_path_factory.mktemp("servers")
    database_url, pg_name = own_database(os.environ.get("TEST_DATABASE_URL"), tmp_path)
    store = tmp_path / "nfs" / "files"  # the shared file store, which each server mounts where it likes
    store.mkdir(parents=True)
    mounts = {}
    for vm in ("a", "b"):
        mounts[vm] = tmp_path / f"vm-{vm}" / "files"
        mounts[vm].parent.mkdir()
        mounts[vm].symlink_to(store, target_is_directory=True)
    app = create_app(dict(TEST_CONFIG, DATABASE_URL=database_url, FILE_STORE=str(store)))
    with app.app_context():
        schema.upgrade(models.db_wrapper.database)
    settings = dict(
        PORTAL_ENV="development", SECRET_KEY="two-servers-secret", DATABASE_URL=database_url,
        REDIS_URL=REDIS_URL, PORTAL_BASE_URL="http://portal.test",  # nginx's address
        MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp_session.port, MAIL_DELIVERY_THREAD="true",
        SESSION_CACHE_SECONDS=SESSION_CACHE_SECONDS,
    )
    try:
        with (gunicorn(dict(settings, FILE_STORE=mounts["a"]), tmp_path) as a,
              gunicorn(dict(settings, FILE_STORE=mounts["b"]), tmp_path) as b):
            yield SimpleNamespace(app=app, a=a, b=b, store=store, smtp=smtp_session, settings=settings, logs=tmp_path)
    finally:
        release_connections()
        if pg_name:
            with admin_connection(os.environ["TEST_DATABASE_URL"]) as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


@pytest.fixture(autouse=True)
def fresh(servers):
    """Empty tables, counters and mailbox before each test."""
    with servers.app.app_context():
        empty_tables()
    redis.Redis.from_url(REDIS_URL).flushdb()
    servers.smtp.messages.clear()


def query(servers, function):
    """`function()` run on the servers' database, from the test."""
    with servers.app.app_context(), models.db_wrapper.database.connection_context():
        return function()


# --- a browser -----------------------------------------------------------------------------------

def csrf_token(response):
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', response.text)
    assert match, f"no CSRF token on {response.url}"
    return match.group(1)


def post(session, url, data, page=None, **kwargs):
    """POST like a browser: first the page, for its CSRF token. Redirects are not followed."""
    page = session.get(page or url, timeout=30)
    assert page.status_code == 200
    return session.post(url, data=dict(data, csrf_token=csrf_token(page)), allow_redirects=False, timeout=60, **kwargs)


def home(session, server):
    """The home page on `server`, redirects followed (to the current supply point's, or to login)."""
    response = session.get(server.url + "/", timeout=30)
    assert response.status_code == 200
    return response


def logged_in(response):
    return urlsplit(response.url).path == "/" and "Benvenuto" in response.text


def sent_to_login(response):
    return urlsplit(response.url).path == "/login" and "Benvenuto" not in response.text


def wait_for(condition, seconds=20):
    deadline = time.monotonic() + seconds
    while not (result := condition()):
        assert time.monotonic() < deadline, "the condition did not come true"
        time.sleep(0.05)
    return result


# --- data ------------------------------------------------------------------------------------------

def customer_with_login(servers, code, email):
    def make():
        customer = make_customer(code=code, name=f"CLIENTE {code}", email=email)
        make_supply_point(customer)
        return make_user(customer, email=email)
    return query(servers, make)


def operator_session(servers, server):
    """An operator logged in on `server` (password, then the authenticator's first enrolment)."""
    query(servers, lambda: accounts.create_staff("operatore@utility.it", OPERATOR_PASSWORD))
    session = requests.Session()
    response = post(session, server.url + "/login", {"user": "operatore@utility.it", "password": OPERATOR_PASSWORD})
    assert response.status_code == 303 and response.headers["Location"] == "/login/codice"
    page = session.get(server.url + "/login/codice", timeout=30)
    assert page.status_code == 200
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', page.text).group(1)
    response = post(session, server.url + "/login/codice", {"code": pyotp.TOTP(secret).now()})
    assert response.status_code == 303
    return session, secret


def upload(session, server, name, content):
    """The back office's import form on `server`; returns the job's id."""
    response = post(session, server.url + "/backoffice/importazioni", {}, files={"files": (name, content)})
    assert response.status_code == 303, response.text
    return int(response.headers["Location"].rsplit("/", 1)[1])


# --- the tests -------------------------------------------------------------------------------------

def test_a_session_made_on_one_server_works_on_the_other(servers):
    customer_with_login(servers, "005007", "mario@example.it")
    browser = requests.Session()
    assert post(browser, servers.a.url + "/login", {"user": "005007", "password": PASSWORD}).status_code == 303
    on_b = home(browser, servers.b)
    assert logged_in(on_b) and "CLIENTE 005007" in on_b.text
    assert logged_in(home(browser, servers.a))


def test_a_logout_on_one_server_ends_the_session_on_the_other(servers):
    customer_with_login(servers, "005007", "mario@example.it")
    browser = requests.Session()
    assert post(browser, servers.a.url + "/login", {"user": "005007", "password": PASSWORD}).status_code == 303
    assert logged_in(home(browser, servers.a))  # on PostgreSQL, A now keeps the session's rows
    cookie = browser.cookies.get("sportello_session")

    logout = post(browser, servers.b.url + "/logout", {}, page=servers.b.url + "/")
    assert logout.status_code == 303
    logged_out_at = time.monotonic()

    replay = requests.Session()  # the old cookie, replayed on A
    replay.cookies.set("sportello_session", cookie)
    if servers.app.config["DATABASE_URL"].startswith("sqlite"):
        assert sent_to_login(home(replay, servers.a))  # no cache: every request reads the session
    else:  # as soon as the database's notification arrives
        wait_for(lambda: sent_to_login(home(replay, servers.a)), seconds=5)
    assert time.monotonic() - logged_out_at < 5 < SESSION_CACHE_SECONDS  # not the cache's expiry
    assert sent_to_login(home(replay, servers.b))


def test_an_operator_enrolled_on_one_server_logs_in_on_the_other(servers):
    """The authenticator's secret, stored encrypted by A (under the key both derive from the same
    SECRET_KEY), is read by B."""
    _, secret = operator_session(servers, servers.a)
    browser = requests.Session()
    response = post(browser, servers.b.url + "/login", {"user": "operatore@utility.it", "password": OPERATOR_PASSWORD})
    assert response.status_code == 303 and response.headers["Location"] == "/login/codice"
    next_code = pyotp.TOTP(secret).at(time.time() + 30)  # the code A took is used up: the next one
    response = post(browser, servers.b.url + "/login/codice", {"code": next_code})
    assert response.status_code == 303 and urlsplit(response.headers["Location"]).path == "/backoffice/"


@pytest.fixture(params=["redis", "database"])
def counting_servers(request, servers):
    """The module's two servers, counting in Redis; or two more without REDIS_URL, counting in
    the database."""
    if request.param == "redis":
        yield servers.a, servers.b
        assert redis.Redis.from_url(REDIS_URL).keys(), "the counters are not in Redis"
        return
    settings = dict(servers.settings, REDIS_URL=None, FILE_STORE=servers.store)
    with gunicorn(settings, servers.logs) as a, gunicorn(settings, servers.logs) as b:
        yield a, b
    assert not redis.Redis.from_url(REDIS_URL).keys()
    assert query(servers, lambda: RateCounter.select().count()) > 0, "the counters are not in the database"


def test_login_attempts_on_both_servers_count_towards_one_limit(servers, counting_servers):
    """Wrong passwords on one account, one on A, the next on B: the lock comes at the configured
    count, whichever server answers."""
    customer_with_login(servers, "005007", "mario@example.it")
    allowed = LIMITS["login-account"][0]
    statuses = []
    for attempt in range(allowed + 2):
        server = counting_servers[attempt % 2]
        response = post(requests.Session(), server.url + "/login", {"user": "005007", "password": "Sbagliata-2026!"})
        statuses.append(response.status_code)
    assert statuses == [422] * (allowed - 1) + [429] * 3
    locked = post(requests.Session(), counting_servers[0].url + "/login", {"user": "005007", "password": PASSWORD})
    assert locked.status_code == 429  # the right password too, on either server, until the window ends


def test_mails_queued_on_both_servers_are_sent_once_each(servers):
    """Password reset requests, half on A and half on B; both servers deliver the outbox: each
    mail reaches the SMTP server once."""
    addresses = [f"cliente{n}@example.it" for n in range(6)]
    for n, address in enumerate(addresses):
        customer_with_login(servers, f"00700{n}", address)
    for n in range(len(addresses)):
        server = (servers.a, servers.b)[n % 2]
        response = post(requests.Session(), server.url + "/password-dimenticata", {"user": f"00700{n}"})
        assert response.status_code == 303

    def all_sent():
        return (MailRequest.select().count() == 0 and OutboxMail.select().count() == len(addresses)
                and OutboxMail.select().where(OutboxMail.sent_at.is_null()).count() == 0)

    wait_for(lambda: query(servers, all_sent))
    received = sorted(recipient for message in servers.smtp.messages for recipient in message.envelope_to)
    assert received == sorted(addresses)


def test_an_import_uploaded_on_one_server_is_run_by_the_other(servers, tmp_path):
    """An operator uploads on A while an import runs elsewhere: A's turn to claim passes. The
    upload waits in the shared file store, queued; the next upload, on B, runs the queue there,
    oldest first: A's job is claimed once, by B, and what it imported shows on B."""
    operator, _ = operator_session(servers, servers.a)
    running = query(servers, lambda: ImportJob.create(  # another import, still alive: started a minute ago
        folder="imports/elsewhere", status=ImportJob.RUNNING, heartbeat_at=utcnow() - timedelta(minutes=1)))

    written = write_data_set(tmp_path / "set", customers=2)
    on_a = upload(operator, servers.a, "export.zip", zipped(tmp_path / "set").getvalue())
    wait_for(lambda: "another import is running" in servers.a.log.read_text())
    job = query(servers, lambda: ImportJob.get_by_id(on_a))
    # A tried, found the other running, and left the job queued with its files in the store.
    assert job.status == ImportJob.QUEUED and job.folder.startswith("imports/")
    assert (servers.store / job.folder / "export" / "customers.csv").is_file()

    query(servers, lambda: ImportJob.update(status=ImportJob.DONE).where(ImportJob.id == running.id).execute())
    on_b = upload(operator, servers.b, "readings.csv", (tmp_path / "set" / "readings.csv").read_bytes())

    def finished():
        return all(ImportJob.get_by_id(n).status not in (ImportJob.QUEUED, ImportJob.RUNNING) for n in (on_a, on_b))

    wait_for(lambda: query(servers, finished), seconds=60)
    job = query(servers, lambda: ImportJob.get_by_id(on_a))
    assert job.status == ImportJob.DONE, job.report
    runs = query(servers, lambda: [json.loads(entry.detail) for entry in AuditLog.select().where(
        AuditLog.action.in_(("import", "import_refused")))])
    assert sorted(run["job"] for run in runs) == sorted([on_a, on_b])  # each job ran once
    ran_a = next(run for run in runs if run["job"] == on_a)
    assert int(ran_a["server"].rsplit(" ", 1)[1]) in servers.b.worker_pids()
    assert not (servers.store / job.folder).exists()  # B removed the files A received

    page = operator.get(servers.b.url + f"/backoffice/clienti/{written['customers'][0]}", timeout=30)
    assert page.status_code == 200
    page = operator.get(servers.b.url + f"/backoffice/importazioni/{on_a}", timeout=30)
    assert page.status_code == 200
    assert f"customers.csv: added {written['counts']['customers.csv']}, updated 0, unchanged 0" in page.text


def test_two_servers_storing_the_same_file_at_once_both_succeed(servers, tmp_path, monkeypatch):
    """The same PDF reaches the shared store from two servers at once (the same invoice's PDF in
    two imports, the same attachment twice): the second writes and renames its own copy while
    the first is between its write and its rename, and both end with the whole file."""
    data = pdf_bytes("Fattura")
    store, rename = FileStore(tmp_path / "store"), os.replace
    stored = []

    def the_other_server_meanwhile(source, target):
        monkeypatch.setattr(os, "replace", rename)
        stored.append(FileStore(tmp_path / "store").store_bytes(data, ".pdf"))
        rename(source, target)

    monkeypatch.setattr(os, "replace", the_other_server_meanwhile)
    stored.append(store.store_bytes(data, ".pdf"))
    assert stored[0] == stored[1]
    assert (tmp_path / "store" / stored[0]).read_bytes() == data
    assert [p.name for p in (tmp_path / "store" / stored[0]).parent.iterdir()] == [Path(stored[0]).name]
