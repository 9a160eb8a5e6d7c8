"""Fixtures: the app on a real database, a real SMTP server on loopback, client helpers.

The database is a temp-file SQLite (not :memory:, which loses its tables when a request closes
the connection), or PostgreSQL when TEST_DATABASE_URL names one (CI runs the suite twice). The
schema is built once by the migrations and emptied between tests. CSRF stays on, as in
production: helpers read the token from the page like a browser does.
"""
import dataclasses
import email
import email.policy
import os
import socket

import argon2
import flask
import jinja2
import pytest
from aiosmtpd.controller import Controller

import accounts
import mailer
import models
import schema
from app import create_app
from database import is_sqlite
from tests.helpers import release_connections

TEST_CONFIG = {
    "PORTAL_ENV": "development",
    "TESTING": True,
    "SECRET_KEY": "test-secret-key",
    "PORTAL_BASE_URL": "http://portal.test",
    "MAIL_DEFAULT_SENDER": "Sportello <noreply@portal.test>",
    "MAIL_DELIVERY_THREAD": False,  # tests deliver the outbox when they choose (deliver())
    "MAIL_RETRY_SECONDS": 0,
    "MAIL_TIMEOUT": 3,
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- passwords ---------------------------------------------------------------------------------

# Production's argon2id hash (RFC 9106 low-memory) at the least cost argon2 allows. At
# production's cost (64 MiB, 3 passes) each user a test makes and each login took 0.1-0.3 s,
# most of the suite's set-up. Logins still verify real argon2id hashes, and every hash the
# tests make has these parameters, so check_password never rehashes them. Processes the tests
# start (flask commands, gunicorn) hash as production does: test_identifiers checks that.
CHEAP_PASSWORD_HASHING = dataclasses.replace(
    argon2.profiles.RFC_9106_LOW_MEMORY, time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing():
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(accounts, "hasher", argon2.PasswordHasher.from_parameters(CHEAP_PASSWORD_HASHING))
        yield


# --- templates ---------------------------------------------------------------------------------

class CompiledTemplates(jinja2.BytecodeCache):
    """Templates compiled once for the whole run. Each test makes its own app, which compiled
    again every template it rendered: a third of the page tests' CPU time. An entry is
    used only while its template's source is unchanged (Jinja checks the checksum)."""

    def __init__(self):
        self.compiled = {}

    def load_bytecode(self, bucket):
        if bucket.key in self.compiled:
            bucket.bytecode_from_string(self.compiled[bucket.key])

    def dump_bytecode(self, bucket):
        self.compiled[bucket.key] = bucket.bytecode_to_string()


@pytest.fixture(scope="session", autouse=True)
def compiled_templates():
    # Every test app's Jinja environment is made with these options (all apps configure Jinja
    # alike, in create_app, so the compiled code is the same for all).
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(flask.Flask, "jinja_options", dict(flask.Flask.jinja_options, bytecode_cache=CompiledTemplates()))
        yield


# --- database ----------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        schema.empty_postgres(url)  # the suite owns this database
        return url
    return "sqlite:///" + str(tmp_path_factory.mktemp("db") / "sportello.db")


@pytest.fixture(scope="session")
def migrated_database(database_url):
    app = create_app(dict(TEST_CONFIG, DATABASE_URL=database_url))
    with app.app_context():
        schema.upgrade(models.db_wrapper.database)
    return database_url


def empty_tables():
    database = models.db_wrapper.database
    tables = [m._meta.table_name for m in models.ALL_MODELS]
    if is_sqlite(database):
        with database.atomic():
            for table in reversed(tables):
                database.execute_sql(f'DELETE FROM "{table}"')
    else:
        database.execute_sql("TRUNCATE %s RESTART IDENTITY CASCADE" % ", ".join(f'"{t}"' for t in tables))


@pytest.fixture
def make_app(migrated_database, smtp, tmp_path):
    """create_app with the test configuration and extra settings; tables start empty."""
    apps = []

    def make(**settings):
        config = dict(TEST_CONFIG, DATABASE_URL=migrated_database, MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp.port,
                      FILE_STORE=str(tmp_path / "file-store"))
        config.update(settings)
        app = create_app(config)
        apps.append(app)
        return app

    first = make()
    with first.app_context():
        empty_tables()
    yield make
    for app in apps:
        mailer.stop_thread(app)
    release_connections()


@pytest.fixture
def app(make_app):
    # No app context is held open here: Flask would reuse it for every request of the test
    # client, and `g` (with Flask-Login's user) would leak from one request to the next.
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


# --- mail ----------------------------------------------------------------------------------------

class MailSink:
    """An aiosmtpd handler keeping what it receives, parsed."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        message.envelope_to = list(envelope.rcpt_tos)
        self.messages.append(message)
        return "250 Message accepted"


class SmtpServer:
    def __init__(self, port=None):
        self.port = port or free_port()
        self.sink = MailSink()
        self.controller = None

    @property
    def messages(self):
        return self.sink.messages

    def start(self):
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture(scope="session")
def smtp_session():
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def smtp(smtp_session):
    smtp_session.messages.clear()
    return smtp_session


# --- the tests' usual customer --------------------------------------------------------------------

@pytest.fixture
def customer(app):
    """ROSSI MARIO, customer 005007."""
    from tests.factories import make_customer

    return make_customer(code="005007", name="ROSSI MARIO")


@pytest.fixture
def points(customer):
    """Their electricity point PR002874 and gas point PR002875."""
    from tests.factories import make_supply_point

    electricity = make_supply_point(customer, code="PR002874", pod_pdr="IT001E00287400")
    gas = make_supply_point(customer, code="PR002875", commodity="gas", pod_pdr="01234567891011",
                            address="VIA PROVA 5", postcode="48124", city="RAVENNA", province="RA")
    return electricity, gas


@pytest.fixture
def point(points):
    return points[0]


@pytest.fixture
def owner(customer, points):
    """Their login: User 005007 or mario.rossi, password factories.PASSWORD."""
    from tests.factories import make_user

    return make_user(customer, username="mario.rossi", email="mario@example.it")


@pytest.fixture
def logged_in(app, owner):
    """A test client logged in as the owner."""
    from tests.factories import PASSWORD
    from tests.helpers import login

    client = app.test_client()
    assert login(client, "005007", PASSWORD).status_code == 303
    return client
