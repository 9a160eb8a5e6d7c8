"""The database layer's own tuning: `prepared` queries (SQL built once, on PostgreSQL also
planned once per connection) and the PostgreSQL pool that skips the check-out round trip."""
import os
import time
from contextlib import closing
from datetime import date, timedelta
from decimal import Decimal

import pytest

import models
from models import Invoice, prepared
from tests.factories import make_customer, make_invoice, make_supply_point
from tests.helpers import csrf_from, htmx_headers, logged_in_customer, sent_to_login

on_postgres = pytest.mark.skipif(not os.environ.get("TEST_DATABASE_URL", "").startswith("postgres"),
                                 reason="PostgreSQL only: CI runs the suite again with TEST_DATABASE_URL")


@pytest.fixture
def invoices(app):
    with app.app_context():
        customer = make_customer()
        point = make_supply_point(customer)
        other = make_supply_point(customer)
        for n in range(7):
            make_invoice(customer, point if n % 2 else other, number=f"N{n}", issue_date=date(2025, 1, 1) + timedelta(days=40 * n),
                         due_date=date(2025, 2, 1) + timedelta(days=40 * n), total=Decimal("10.25") * (n + 1),
                         status="paid" if n < 4 else "unpaid")
        make_invoice(customer, None, number="NONE", issue_date=date(2025, 3, 3))
        make_invoice(make_customer(), None, number="FOREIGN", issue_date=date(2025, 3, 3))
        yield customer, point


def filters(customer, point, **shape):
    values = dict(customer=customer.id, point=point.id, year=2025, status="unpaid", today=date(2025, 9, 1))
    values.update(scope="point", by_year=False, by_status=None)
    values.update(shape)
    return values


SHAPES = [dict(), dict(by_year=True), dict(scope="all"), dict(scope="none"), dict(by_status="overdue"),
          dict(by_status="status", by_year=True, scope="all")]


@pytest.mark.parametrize("shape", SHAPES)
def test_a_prepared_page_is_what_peewee_itself_answers(invoices, shape):
    customer, point = invoices
    arguments = filters(customer, point, **shape)
    for _ in range(2):  # the second call reuses the SQL (and on PostgreSQL the statement)
        rows = list(models.invoice_page(**arguments, offset=1, limit=2))
        query = Invoice.filtered(**arguments).order_by(*Invoice.newest_first())
        everything = list(query)
        assert [r["number"] for r in rows] == [i.number for i in everything[1:3]]
        if rows:
            assert rows[0]["filtered_count"] == len(everything)
            assert Invoice.total.python_value(rows[0]["filtered_total"]) == sum(i.total for i in everything)
            assert isinstance(rows[0]["issue_date"], date)  # converted as peewee converts


def test_the_home_pages_queries_answer_what_peewee_itself_answers(invoices):
    customer, point = invoices
    newest = Invoice.for_customer(customer).order_by(*Invoice.newest_first())
    unpaid = [invoice for invoice in Invoice.for_customer(customer) if invoice.status != "paid"]
    for _ in range(2):
        of_point = list(models.latest_invoice(customer=customer.id, point=point.id, of_point=True))
        assert [i.number for i in of_point] == [newest.where(Invoice.supply_point == point).first().number]
        of_customer = list(models.latest_invoice(customer=customer.id, point=None, of_point=False))
        assert [i.number for i in of_customer] == [newest.first().number]
        count, total, _pdfs = next(iter(models.unpaid_invoices(customer=customer.id)))
        assert (count, Invoice.total.python_value(total)) == (len(unpaid), sum(i.total for i in unpaid))


def test_parameters_are_converted_as_peewee_converts_them(invoices):
    customer, point = invoices

    @prepared
    def by_customer_and_due(customer, due):
        return Invoice.select(Invoice.number).where(Invoice.customer == customer, Invoice.due_date < due).tuples()

    # A model for a foreign key, a date for a date: as a plain peewee query takes them.
    rows = list(by_customer_and_due(customer=customer, due=date(2025, 4, 1)))
    assert sorted(n for (n,) in rows) == ["N0", "N1"]
    assert list(by_customer_and_due(customer=customer.id, due=date(2025, 1, 1))) == []


def test_each_shape_has_its_own_sql(invoices):
    customer, point = invoices
    for shape in SHAPES:
        list(models.invoice_page(**filters(customer, point, **shape), offset=0, limit=5))
    database_kind = type(models.db_wrapper.database.obj)
    compiled = [value for key, value in models.invoice_page._compiled.items() if key[0] is database_kind]
    assert len({sql for _, _, sql, _ in compiled}) >= len(SHAPES)
    assert len({name for name, _, _, _ in compiled}) == len(compiled)


# --- PostgreSQL ------------------------------------------------------------------------------

def watcher(database):
    """Another connection to the same database, closed after use."""
    import psycopg2

    params = dict(database.connect_params, dbname=database.database)
    params.pop("connection_factory", None)
    connection = psycopg2.connect(**{k: v for k, v in params.items() if v is not None})
    connection.autocommit = True
    return closing(connection)


def backend_query(database, pid):
    """What a backend last ran, seen from another connection."""
    with watcher(database) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone()[0]


@on_postgres
def test_a_connection_handed_back_moments_ago_is_reused_without_a_ping(invoices):
    database = models.db_wrapper.database.obj
    database.close()
    database.connect()
    database.execute_sql("SELECT 4242")
    pid = database.connection().get_backend_pid()
    database.close()
    database.connect()  # at once: no SELECT 1 first
    assert database.connection().get_backend_pid() == pid
    assert backend_query(database, pid) == "SELECT 4242"
    database.close()


@on_postgres
def test_a_connection_idle_for_long_is_checked_and_a_dead_one_replaced(invoices, monkeypatch):
    database = models.db_wrapper.database.obj
    monkeypatch.setattr(database, "RECHECK_AFTER", 0.05)
    database.close()
    database.connect()
    pid = database.connection().get_backend_pid()
    database.close()
    with watcher(database) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    time.sleep(0.1)
    database.connect()
    assert database.connection().get_backend_pid() != pid
    assert database.execute_sql("SELECT 1").fetchone() == (1,)
    database.close()


@on_postgres
def test_prepared_queries_are_prepared_once_per_connection(invoices):
    customer, point = invoices
    database = models.db_wrapper.database.obj
    database.close()
    database.connect()
    arguments = filters(customer, point)
    first = list(models.invoice_page(**arguments, offset=0, limit=10))
    name = models.invoice_page.compiled(database, {"scope": "point", "by_year": False, "by_status": None})[0]
    assert name in database.connection().prepared_statements
    statements = database.execute_sql("SELECT name FROM pg_prepared_statements").fetchall()
    assert (name,) in statements
    assert list(models.invoice_page(**arguments, offset=0, limit=10)) == first
    pid = database.connection().get_backend_pid()
    assert backend_query(database, pid).startswith(f"EXECUTE {name} (")
    database.close()


# --- PostgreSQL: the session cache -------------------------------------------------------------

def welcome(client):
    """The header's "Benvenuto ..." line of the Home Page, which the session's rows fill in."""
    page = client.get("/", follow_redirects=True).get_data(as_text=True)
    return page.split('<span class="welcome">')[1].split("</span>")[0]


def statements_of(database, monkeypatch):
    """The statements `database` sends from now on (the prepared ones too: they go through
    execute_sql as EXECUTE)."""
    sent = []
    execute_sql = database.execute_sql

    def counting(sql, params=None):
        sent.append(sql)
        return execute_sql(sql, params)

    monkeypatch.setattr(database, "execute_sql", counting)
    return sent


def changed_elsewhere(database, sql, params=(), notify=True):
    """`sql` run as another process would: on a connection of its own, so only the database's
    notification can tell this process. notify=False: with the triggers off, as if the
    notification were lost."""
    with watcher(database) as connection, connection.cursor() as cursor:
        if not notify:
            cursor.execute("SET session_replication_role = replica")  # no triggers fire
        cursor.execute(sql, params)


def notified(cache, token_hash):
    """Waits (up to 5 s) for this process to hear that the session's rows changed."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with cache.lock:
            cache.listening()
            if token_hash not in cache.entries:
                return True
        time.sleep(0.001)
    return False


@pytest.fixture
def cached_customer(app):
    with app.app_context():
        client, user = logged_in_customer(app)
        point = user.customer.supply_points[0]
        make_invoice(user.customer, point, number="N1", issue_date=date(2026, 1, 10))
    database = models.db_wrapper.database.obj
    assert welcome(client) == "Benvenuto " + user.customer.name  # now in the cache
    (token_hash,) = database.session_cache.entries
    return client, user, point.code, database, token_hash


@on_postgres
def test_a_page_with_its_session_cached_makes_one_statement(cached_customer, monkeypatch):
    client, user, point, database, token_hash = cached_customer
    fragment = htmx_headers("invoice-list")
    client.get(f"/fatture?sp={point}", headers=fragment)  # prepares the page's statement
    sent = statements_of(database, monkeypatch)
    response = client.get(f"/fatture?sp={point}", headers=fragment)
    assert "N1" in response.get_data(as_text=True)
    invoice_page = models.invoice_page.compiled(database, {"scope": "point", "by_year": False, "by_status": None})[0]
    assert [sql.split(" (")[0] for sql in sent] == [f"EXECUTE {invoice_page}"]


@on_postgres
def test_without_the_cache_a_page_reads_its_session_every_time(make_app, monkeypatch):
    app = make_app(SESSION_CACHE_SECONDS=0)
    with app.app_context():
        client, user = logged_in_customer(app)
        point = user.customer.supply_points[0]
        make_invoice(user.customer, point, number="N1", issue_date=date(2026, 1, 10))
        point = point.code
    database = models.db_wrapper.database.obj
    assert database.session_cache is None
    fragment = htmx_headers("invoice-list")
    client.get(f"/fatture?sp={point}", headers=fragment)  # prepares the statements
    sent = statements_of(database, monkeypatch)
    client.get(f"/fatture?sp={point}", headers=fragment)
    session_query = models.session_user_points.compiled(database, {})[0]
    assert [sql.split(" (")[0] for sql in sent][0] == f"EXECUTE {session_query}"
    assert len(sent) == 2


@on_postgres
@pytest.mark.parametrize("change", [
    "DELETE FROM usersession WHERE token_hash = %(token_hash)s",  # a logout
    'UPDATE "user" SET disabled = true WHERE id = %(user)s',  # staff disable the account
])
def test_a_session_ended_in_another_process_ends_here(cached_customer, change):
    client, user, _point, database, token_hash = cached_customer
    changed_elsewhere(database, change, {"token_hash": token_hash, "user": user.id})
    assert notified(database.session_cache, token_hash)
    assert sent_to_login(client.get("/"))


@on_postgres
def test_a_customer_changed_by_an_import_elsewhere_shows_at_once(cached_customer):
    client, user, _point, database, token_hash = cached_customer
    changed_elsewhere(database, "UPDATE customer SET name = 'BIANCHI ANNA' WHERE id = %s", [user.customer_id])
    assert notified(database.session_cache, token_hash)
    assert welcome(client) == "Benvenuto BIANCHI ANNA"


@on_postgres
def test_a_change_made_here_shows_on_the_next_page(cached_customer):
    client, user, _point, database, token_hash = cached_customer
    with client.application.app_context():
        models.Customer.update(name="BIANCHI ANNA").where(models.Customer.id == user.customer_id).execute()
    cache = database.session_cache
    assert cache.behind and token_hash in cache.entries  # the notification may still be on its way
    assert welcome(client) == "Benvenuto BIANCHI ANNA"  # but the next lookup waited for it
    assert not cache.behind


@on_postgres
def test_a_logout_here_forgets_only_that_session(cached_customer):
    client, user, _point, database, token_hash = cached_customer
    with client.application.app_context():
        other, _ = logged_in_customer(client.application, code="005008")
    welcome(other)
    entries = database.session_cache.entries
    other_hash = (set(entries) - {token_hash}).pop()
    kept = entries[other_hash]
    stolen = client.get_cookie("sportello_session").value
    assert client.post("/logout", data={"csrf_token": csrf_from(client.get("/", follow_redirects=True))}).status_code == 303
    replay = client.application.test_client()
    replay.set_cookie("sportello_session", stolen)
    assert sent_to_login(replay.get("/"))
    assert welcome(other).startswith("Benvenuto ")
    assert set(entries) == {other_hash} and entries[other_hash] is kept  # not read again


@on_postgres
def test_a_lost_notification_costs_at_most_the_entry_age(make_app):
    app = make_app(SESSION_CACHE_SECONDS=1)
    with app.app_context():
        client, user = logged_in_customer(app)
    database = models.db_wrapper.database.obj
    name = user.customer.name
    assert welcome(client) == "Benvenuto " + name
    changed_elsewhere(database, "UPDATE customer SET name = 'BIANCHI ANNA' WHERE id = %s", [user.customer_id],
                      notify=False)
    assert welcome(client) == "Benvenuto " + name  # served from the cache: nothing said it changed
    time.sleep(1.1)
    assert welcome(client) == "Benvenuto BIANCHI ANNA"


@on_postgres
def test_a_broken_listener_empties_the_cache_and_comes_back(cached_customer):
    client, user, _point, database, token_hash = cached_customer
    cache = database.session_cache
    with watcher(database) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [cache.listener.get_backend_pid()])
    time.sleep(0.1)
    changed_elsewhere(database, "UPDATE customer SET name = 'BIANCHI ANNA' WHERE id = %s", [user.customer_id],
                      notify=False)
    assert welcome(client) == "Benvenuto BIANCHI ANNA"  # the listener's loss emptied the cache
    assert welcome(client) == "Benvenuto BIANCHI ANNA"
    assert cache.listener is not None and token_hash in cache.entries  # listening again, caching again


@on_postgres
def test_a_forked_process_does_not_trust_what_its_parent_cached(cached_customer):
    client, user, _point, database, token_hash = cached_customer
    cache = database.session_cache
    parent_listener = cache.listener
    changed_elsewhere(database, "UPDATE customer SET name = 'BIANCHI ANNA' WHERE id = %s", [user.customer_id],
                      notify=False)
    cache.pid = -1  # as a child sees it after fork(): not the process that filled the cache
    assert welcome(client) == "Benvenuto BIANCHI ANNA"
    assert cache.listener is not parent_listener
