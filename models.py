"""The portal's data, and the queries that belong to it.

Every query that a customer's request may run is a classmethod scoped to the customer
(`Invoice.for_customer(customer)`), so ownership is enforced by the query itself and a
foreign id is simply not found (404).

Times are stored as naive UTC datetimes (`utcnow()`); pages show them in Europe/Rome.
Codes (customer code, POD/PDR, codice fiscale) are text: leading zeros are significant.
"""
import collections
import contextlib
import hashlib
import inspect
import itertools
import json
import os
import re
import select
import threading
import time
from datetime import datetime, timezone

import peewee as pw
import psycopg2.extensions
from playhouse.flask_utils import FlaskDB
from playhouse.pool import PooledPostgresqlDatabase


class PortalDB(FlaskDB):
    """FlaskDB that keeps an SQLite connection open for the worker's thread (measured +23%
    throughput, DESIGN §7) and hands pooled PostgreSQL connections back after each request."""

    def connect_db(self):
        self.database.connect(reuse_if_open=True)

    def close_db(self, exc):
        if not is_sqlite(self.database) and not self.database.is_closed():
            self.database.close()


class StatementCachingConnection(psycopg2.extensions.connection):
    """A psycopg2 connection that knows which statements it has prepared on the server."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.prepared_statements = set()


class PortalPostgresqlDatabase(PooledPostgresqlDatabase):
    """The pool, tuned so that a page costs about what it costs on SQLite:

    - no round trip at every check-out. peewee's pool sends `SELECT 1` before handing out a
      connection; one handed back moments ago is alive, so only one idle for longer than
      RECHECK_AFTER seconds is tried first (HikariCP's "alive bypass window");
    - the `prepared` queries every page runs are prepared on the server once per connection:
      planning the session's three-table join took longer (0.5 ms) than running it.
      (Server-side statements need a session per connection: no PgBouncer in transaction mode.)
    """

    RECHECK_AFTER = 1.0
    # What a statement starts with when it changes nothing (see execute_sql). EXECUTE runs a
    # `prepared` query, which is always a SELECT.
    READS = ("SELECT", "EXECUTE", "PREPARE", "BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "SET", "SHOW",
             "LISTEN")

    def __init__(self, *args, session_cache_seconds=0, **kwargs):
        kwargs.setdefault("connection_factory", StatementCachingConnection)
        super().__init__(*args, **kwargs)
        self._checked_in = {}  # connection key -> monotonic time it came back to the pool
        # A connection of its own (not from the pool) to LISTEN on.
        listen = lambda: pw.PostgresqlDatabase._connect(self)  # noqa: E731
        self.session_cache = SessionCache(listen, session_cache_seconds) if session_cache_seconds > 0 else None

    def execute_sql(self, sql, params=None):
        # Only the head is upper-cased (SAVEPOINT, the longest of READS, has 9 letters): a hot path.
        if self.session_cache is not None and not sql.lstrip()[:9].upper().startswith(self.READS):
            self.session_cache.written()
        return super().execute_sql(sql, params)

    def _close(self, conn, close_conn=False):
        if close_conn:
            self._checked_in.pop(self.conn_key(conn), None)
        else:
            self._checked_in[self.conn_key(conn)] = time.monotonic()
        super()._close(conn, close_conn)

    def _is_closed(self, conn):
        checked_in = self._checked_in.pop(self.conn_key(conn), None)
        fresh = checked_in is not None and time.monotonic() - checked_in < self.RECHECK_AFTER
        if fresh and not conn.closed and self._adapter.txn_status(conn) == self._adapter.txn_idle:
            return False
        return super()._is_closed(conn)

    def execute_prepared(self, name, sql, params):
        """Run `sql` (with %s placeholders) as the server-side prepared statement `name`."""
        connection = self.connection()
        if name not in connection.prepared_statements:
            numbers = itertools.count(1)
            self.execute_sql(f"PREPARE {name} AS " + re.sub("%s", lambda _: f"${next(numbers)}", sql))
            connection.prepared_statements.add(name)
        arguments = " (%s)" % ", ".join(["%s"] * len(params)) if params else ""
        return self.execute_sql(f"EXECUTE {name}{arguments}", params)


class SessionCache:
    """PostgreSQL only: the session query's rows (UserSession.with_user) for the sessions this
    process served lately, so that a page makes one round trip to the database, not two (issue
    #4: PostgreSQL reached 0.83-0.89 of SQLite's throughput with two; SQLite, in-process, has no
    round trip to save and no cache).

    An entry goes as soon as it may be stale:
      - the database says so: triggers (migration 006) NOTIFY CHANNEL with the token's hash
        when a session or its user changes or goes, and with "*" when customers or supply
        points change. Every process LISTENs and reads what came before each lookup; a
        notification arrives within a millisecond of the commit (a logout in one process ends
        the session in the others that soon);
      - after this process wrote something, its next lookup first waits for the notifications
        of all that is committed (catch_up): its own logout, say, counts on its next page;
      - it is older than max_age seconds, should a notification be lost with its connection;
      - the listening connection broke: all go, and nothing is kept until it is back.
    Entries hold raw rows: every request builds its own models from them, as from a cursor.
    """

    CHANNEL = "sportello_sessions"
    LIMIT = 10_000  # entries; when full, the cache starts over
    CATCH_UP_SECONDS = 2  # for catch_up's marker to come back; then the cache starts over

    def __init__(self, connect, max_age):
        self.connect = connect  # a new connection to the database, for LISTEN
        self.max_age = max_age
        self.lock = threading.RLock()  # the development server serves in threads
        self.entries = {}  # token hash -> (time.monotonic() when read, (description, rows))
        self.listener = None
        self.pid = None  # the process that opened the listener (gunicorn forks)
        self.behind = False  # this process wrote since it last caught up
        self.markers = itertools.count(1)

    def rows(self, key, read):
        """What `read()` answers, (cursor description, rows), from the cache if still current."""
        with self.lock:
            if not self.listening():
                return read()
            now = time.monotonic()
            entry = self.entries.get(key)
            if entry is not None and now - entry[0] < self.max_age:
                return entry[1]
            description, rows = read()
            if rows:  # no session: not kept, or made-up cookies would fill the cache
                if len(self.entries) >= self.LIMIT:
                    self.entries.clear()
                self.entries[key] = (now, (description, rows))
            return description, rows

    def written(self):
        """This process may have changed what is cached (any statement but a read)."""
        self.behind = True

    def listening(self):
        """Applies the notifications received so far; False when there is no listener (then
        nothing may be cached: changes would go unnoticed)."""
        if self.pid != os.getpid():  # a new process: the listener it inherited is not its own
            self.entries.clear()
            self.listener, self.pid = None, os.getpid()
        try:
            if self.listener is None:
                self.entries.clear()  # what changed while nobody listened is unknown
                listener = self.connect()
                listener.cursor().execute(f"LISTEN {self.CHANNEL}")
                self.listener, self.behind = listener, False
            if self.behind:
                self.catch_up()
            else:
                self.listener.poll()  # reads what has arrived; does not wait
        except (psycopg2.Error, TimeoutError):
            self.entries.clear()
            self.listener = None
            return False
        for notification in self.listener.notifies:
            if notification.payload == "*":
                self.entries.clear()
            else:
                self.entries.pop(notification.payload, None)
        self.listener.notifies.clear()
        return True

    def catch_up(self):
        """Waits for the notifications of all that is committed by now, this process's own
        changes included: PostgreSQL delivers them in commit order, so a marker notified now
        comes after them all. One round trip, and only after this process wrote."""
        self.behind = False
        marker = f"caught up {os.getpid()} {next(self.markers)}"
        self.listener.cursor().execute("SELECT pg_notify(%s, %s)", (self.CHANNEL, marker))
        deadline = time.monotonic() + self.CATCH_UP_SECONDS
        while not any(notification.payload == marker for notification in self.listener.notifies):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.listener], [], [], remaining)[0]:
                raise TimeoutError("the database's notification did not come back")
            self.listener.poll()


class ReplayedCursor:
    """A cursor over rows read earlier (SessionCache), for peewee to build models from."""

    def __init__(self, description, rows):
        self.description = description
        self._rows = iter(rows)

    def fetchone(self):
        return next(self._rows, None)

    def close(self):
        pass


def is_sqlite(database):
    return isinstance(getattr(database, "obj", database), pw.SqliteDatabase)


db_wrapper = PortalDB()


def write_transaction():
    """The transaction for every change. On SQLite it takes the write lock at BEGIN
    (IMMEDIATE): a read-then-write transaction that starts as a reader fails at once with
    "database is locked" under several workers (DESIGN §7)."""
    database = db_wrapper.database
    if is_sqlite(database):
        return database.atomic(lock_type="IMMEDIATE")
    return database.atomic()


@contextlib.contextmanager
def one_at_a_time(lock):
    """A write transaction that no other process runs beside it for the same `lock` (an
    integer), for a decision read from the database ("no import is running: start this one").
    SQLite's BEGIN IMMEDIATE already admits one writer at a time; on PostgreSQL two transactions
    would both read "none running", so this one waits for an advisory lock, freed at commit."""
    with write_transaction():
        if not is_sqlite(db_wrapper.database):
            db_wrapper.database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (lock,))
        yield


def refresh_statistics():
    """After a bulk change (the nightly import), so the query planner knows the new sizes at
    once: PostgreSQL's autovacuum catches up only within minutes, and meanwhile planned a page
    by guesses; SQLite never does by itself. Both sample a table rather than read it all."""
    database = db_wrapper.database
    if is_sqlite(database):
        database.execute_sql("PRAGMA analysis_limit = 1000")
    database.execute_sql("ANALYZE")


class Parameter(pw.Node):
    """A named placeholder in a `prepared` query, filled in at each execution."""

    def __init__(self, name):
        super().__init__()
        self.name = name

    def __sql__(self, ctx):
        # Where peewee would put the value in the parameter list, put what fills it in later:
        # the name, and the conversion of the field it is compared to (a model to its id...).
        ctx._values.append(Slot(self.name, ctx.state.converter))
        return ctx.literal(ctx.state.param or "?")


Slot = collections.namedtuple("Slot", "name converter")


class prepared:
    """A SELECT whose SQL peewee builds once per process, not at every request.

    For the queries every page runs, building the SQL costs more than running it (100-240 µs
    each, against 5 µs to run on SQLite), a quarter of a page's time. Decorate a function that
    builds the query: its positional parameters become placeholders, filled in at each call;
    its keyword-only parameters choose the query's shape (which filters it has), and each
    shape's SQL is built once. A call answers the rows the query itself would (models,
    named tuples...):

        @prepared
        def sessions(token_hash):
            return UserSession.select().where(UserSession.token_hash == token_hash)

        rows = list(sessions(token_hash=digest))
    """

    def __init__(self, build):
        self.build = build
        self.__doc__ = build.__doc__
        parameters = inspect.signature(build).parameters.values()
        self.placeholders = [p.name for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD]
        self.shapes = [p.name for p in parameters if p.kind is p.KEYWORD_ONLY]
        self._compiled = {}  # (database class, shape) -> (name, query, sql, params with Slots)

    def compiled(self, database, shape):
        key = (type(database), tuple(shape.items()))
        if key not in self._compiled:
            query = self.build(*(Parameter(name) for name in self.placeholders), **shape)
            sql, params = database.get_sql_context().sql(query).query()
            self._compiled[key] = (f"sportello_{next(STATEMENT_NUMBERS)}", query, sql, params)
        return self._compiled[key]

    def __call__(self, **values):
        database, name, query, sql, bound = self.statement(values)
        return query._get_cursor_wrapper(self.run(database, name, sql, bound))

    def cached(self, cache, key, **values):
        """As a call, but the rows come from `cache` (a SessionCache) under `key` if current."""
        database, name, query, sql, bound = self.statement(values)

        def read():
            cursor = self.run(database, name, sql, bound)
            return cursor.description, cursor.fetchall()

        return query._get_cursor_wrapper(ReplayedCursor(*cache.rows(key, read)))

    def statement(self, values):
        """(the database, the statement's name, the query, its SQL, the values to bind)."""
        database = db_wrapper.database.obj
        shape = {name: values.pop(name) for name in self.shapes}
        name, query, sql, params = self.compiled(database, shape)
        return database, name, query, sql, [fill(p, values) if isinstance(p, Slot) else p for p in params]

    @staticmethod
    def run(database, name, sql, bound):
        if isinstance(database, PortalPostgresqlDatabase):
            return database.execute_prepared(name, sql, bound)
        return database.execute_sql(sql, bound)


STATEMENT_NUMBERS = itertools.count(1)  # names of server-side statements, unique in the process


def fill(slot, values):
    value = values[slot.name]
    return slot.converter(value) if slot.converter and value is not None else value


def utcnow():
    """Naive UTC now: the one form of 'now' the database sees."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def token_digest(token):
    """Tokens and session ids are stored hashed, so a leaked database opens no account."""
    return hashlib.sha256(token.encode()).hexdigest()


class BaseModel(db_wrapper.Model):
    pass


class Customer(BaseModel):
    KINDS = ("person", "company", "public_body")

    code = pw.CharField(max_length=6, unique=True)
    name = pw.CharField()
    kind = pw.CharField(max_length=12)
    tax_code = pw.CharField(max_length=16, index=True)
    vat_number = pw.CharField(max_length=11, null=True)
    email = pw.CharField(null=True)
    phone = pw.CharField(null=True)
    fax = pw.CharField(null=True)
    mobile = pw.CharField(null=True)
    address = pw.CharField(null=True)
    postcode = pw.CharField(max_length=5, null=True)
    city = pw.CharField(null=True)
    province = pw.CharField(max_length=2, null=True)
    updated_at = pw.DateTimeField(default=utcnow)

    @property
    def is_person(self):
        return self.kind == "person"

    @property
    def full_address(self):
        return format_address(self.address, self.postcode, self.city, self.province)

    def owner(self):
        """The user who registered with the customer code (None before registration)."""
        return self.users.where(User.role == User.OWNER).order_by(User.id).first()


class SupplyPoint(BaseModel):
    COMMODITIES = ("electricity", "gas")

    code = pw.CharField(unique=True)
    customer = pw.ForeignKeyField(Customer, backref="supply_points", on_delete="CASCADE")
    commodity = pw.CharField(max_length=11)
    pod_pdr = pw.CharField(max_length=16, index=True)
    address = pw.CharField(null=True)
    postcode = pw.CharField(max_length=5, null=True)
    city = pw.CharField(null=True)
    province = pw.CharField(max_length=2, null=True)
    status = pw.CharField(max_length=6, default="active")
    start_date = pw.DateField(null=True)
    end_date = pw.DateField(null=True)
    # The billing system's tech_* and contract_* columns, as JSON objects {label: value}.
    technical_data = pw.TextField(default="{}")
    contract_data = pw.TextField(default="{}")

    class Meta:
        indexes = ((("customer", "code"), False),)

    @classmethod
    def for_customer(cls, customer):
        return cls.select().where(cls.customer == customer).order_by(*cls.selector_order())

    @classmethod
    def selector_order(cls):
        """Active points first, then by code: the selector's order."""
        return cls.status, cls.code

    @property
    def is_gas(self):
        return self.commodity == "gas"

    @property
    def full_address(self):
        return format_address(self.address, self.postcode, self.city, self.province)

    @property
    def technical(self):
        return json.loads(self.technical_data or "{}")

    @property
    def contractual(self):
        return json.loads(self.contract_data or "{}")


def format_address(street, postcode, city, province):
    """'VIA PROVA 5 - 48124 RAVENNA (RA)', the way bills print it."""
    place = " ".join(part for part in (postcode, city) if part)
    if province:
        place += f" ({province})"
    return " - ".join(part for part in (street, place) if part)


class User(BaseModel):
    """A login. Customers' users (owner, delegate) belong to a customer; staff do not."""

    OWNER, DELEGATE, OPERATOR, ADMIN = "owner", "delegate", "operator", "admin"
    CUSTOMER_ROLES = (OWNER, DELEGATE)
    STAFF_ROLES = (OPERATOR, ADMIN)

    customer = pw.ForeignKeyField(Customer, null=True, backref="users", on_delete="CASCADE")
    role = pw.CharField(max_length=8, default=OWNER)
    username = pw.CharField(null=True, unique=True)  # stored lower-case
    email = pw.CharField(index=True)
    password_hash = pw.CharField()
    first_name = pw.CharField(null=True)
    last_name = pw.CharField(null=True)
    tax_code = pw.CharField(max_length=16, null=True)  # of the person who registered
    mobile = pw.CharField(null=True)
    language = pw.CharField(max_length=2, default="it")
    notify_invoices = pw.BooleanField(default=True)
    totp_secret = pw.CharField(null=True)  # staff's second factor (base32)
    totp_last_step = pw.BigIntegerField(null=True)  # the last 30-second step used: no replay
    created_at = pw.DateTimeField(default=utcnow)
    confirmed_at = pw.DateTimeField(null=True)
    disabled = pw.BooleanField(default=False)
    failed_logins = pw.IntegerField(default=0)
    locked_until = pw.DateTimeField(null=True)
    last_login_at = pw.DateTimeField(null=True)
    previous_login_at = pw.DateTimeField(null=True)
    password_changed_at = pw.DateTimeField(default=utcnow)

    # Flask-Login's interface. The id Flask-Login keeps in the cookie is the server-side
    # session's token (see UserSession), never the user's primary key.
    is_anonymous = False
    session_token = None
    _supply_points = None  # the session's query brings them along (UserSession.with_user)

    @property
    def supply_points(self):
        """The customer's supply points in the selector's order ([] for staff)."""
        if self._supply_points is None:
            self._supply_points = list(SupplyPoint.for_customer(self.customer_id)) if self.customer_id else []
        return self._supply_points

    @property
    def is_authenticated(self):
        return True

    @property
    def is_active(self):
        return not self.disabled and self.confirmed_at is not None

    def get_id(self):
        return self.session_token

    @property
    def is_staff(self):
        return self.role in self.STAFF_ROLES

    @property
    def display_name(self):
        if self.customer_id and self.role == self.OWNER:
            return self.customer.name
        return " ".join(p for p in (self.first_name, self.last_name) if p) or self.email


class UserSession(BaseModel):
    """A login session kept on the server, so that logout really ends it."""

    token_hash = pw.CharField(max_length=64, unique=True)
    user = pw.ForeignKeyField(User, backref="sessions", on_delete="CASCADE")
    created_at = pw.DateTimeField(default=utcnow)
    last_seen_at = pw.DateTimeField(default=utcnow)
    ip = pw.CharField(max_length=45, null=True)
    user_agent = pw.CharField(null=True)

    @classmethod
    def with_user(cls, token_hash):
        """The session of this token with its user and, for a customer's user, the customer
        and its supply points, which every customer page shows: one query, not three."""
        cache = getattr(db_wrapper.database.obj, "session_cache", None)
        if cache is not None:
            rows = list(session_user_points.cached(cache, token_hash, token_hash=token_hash))
        else:
            rows = list(session_user_points(token_hash=token_hash))
        if not rows:
            return None
        session = rows[0]
        session.user._supply_points = [row.user.point for row in rows if row.user.point is not None]
        return session


@prepared
def session_user_points(token_hash):
    """One row per supply point of the session's customer, with the user and the customer
    (the header's "Benvenuto"); one row, with neither customer nor point, for staff."""
    return (UserSession.select(UserSession, User, Customer, SupplyPoint)
            .join(User)
            .join(Customer, pw.JOIN.LEFT_OUTER)
            .join_from(User, SupplyPoint, pw.JOIN.LEFT_OUTER, on=(SupplyPoint.customer == User.customer), attr="point")
            .where(UserSession.token_hash == token_hash)
            .order_by(*SupplyPoint.selector_order()))


class EmailToken(BaseModel):
    """A single-use, expiring link sent by email (confirm registration, reset password...)."""

    CONFIRM, RESET, NEW_EMAIL = "confirm", "reset", "new_email"

    token_hash = pw.CharField(max_length=64, unique=True)
    user = pw.ForeignKeyField(User, backref="tokens", on_delete="CASCADE")
    purpose = pw.CharField(max_length=10)
    new_email = pw.CharField(null=True)
    created_at = pw.DateTimeField(default=utcnow)
    expires_at = pw.DateTimeField()
    used_at = pw.DateTimeField(null=True)


class Consent(BaseModel):
    """A privacy consent as given: one row per answer, the newest one counts."""

    KINDS = ("privacy", "marketing", "third_parties", "profiling")

    user = pw.ForeignKeyField(User, backref="consents", on_delete="CASCADE")
    kind = pw.CharField(max_length=14)
    granted = pw.BooleanField()
    text_version = pw.CharField(max_length=20)
    recorded_at = pw.DateTimeField(default=utcnow)
    ip = pw.CharField(max_length=45, null=True)


class Invoice(BaseModel):
    STATUSES = ("paid", "unpaid", "partial")

    customer = pw.ForeignKeyField(Customer, backref="invoices", on_delete="CASCADE")
    supply_point = pw.ForeignKeyField(SupplyPoint, null=True, backref="invoices", on_delete="SET NULL")
    number = pw.CharField()
    year = pw.IntegerField()  # issue_date's year: with number, the natural key
    issue_date = pw.DateField()
    due_date = pw.DateField(null=True)
    period_start = pw.DateField(null=True)
    period_end = pw.DateField(null=True)
    total = pw.DecimalField(max_digits=12, decimal_places=2)
    status = pw.CharField(max_length=7, default="unpaid")
    energy_f1_kwh = pw.DecimalField(max_digits=12, decimal_places=3, null=True)
    energy_f2_kwh = pw.DecimalField(max_digits=12, decimal_places=3, null=True)
    energy_f3_kwh = pw.DecimalField(max_digits=12, decimal_places=3, null=True)
    peak_power_kw = pw.DecimalField(max_digits=10, decimal_places=3, null=True)
    gas_smc = pw.DecimalField(max_digits=12, decimal_places=3, null=True)
    pdf_path = pw.CharField(null=True)  # inside the file store
    pdf_sha256 = pw.CharField(max_length=64, null=True)

    class Meta:
        indexes = (
            (("number", "year"), True),
            # The list's order, newest first, straight from the index: a page reads its rows
            # without sorting the point's (or, for "Tutti i punti", the customer's) invoices.
            (("customer", "supply_point", "issue_date", "id"), False),
            (("customer", "issue_date", "id"), False),
        )

    @classmethod
    def for_customer(cls, customer):
        return cls.select().where(cls.customer == customer)

    @classmethod
    def newest_first(cls):
        """The list's order, which its indexes hold: by issue date, the same date by id."""
        return cls.issue_date.desc(), cls.id.desc()

    @classmethod
    def count_and_total(cls, query):
        """How many invoices `query` has, their total (a float on SQLite: python_value makes
        it money) and how many of them have a PDF."""
        return query.select(pw.fn.COUNT(cls.id), pw.fn.SUM(cls.total), pw.fn.COUNT(cls.pdf_path))

    @classmethod
    def filtered(cls, customer, point, year, status, today, *, scope, by_year, by_status):
        """The customer's invoices as the list's filters choose them. scope: "point" (of
        `point`), "none" (those tied to no point) or "all"; by_status: None, "overdue" (not
        paid and due before `today`), "not_paid" (unpaid or partly paid: what the Home Page
        counts as still to pay) or "status" (in `status`). Values or `Parameter`s."""
        query = cls.for_customer(customer)
        if scope == "point":
            query = query.where(cls.supply_point == point)
        elif scope == "none":
            query = query.where(cls.supply_point.is_null())
        if by_year:
            query = query.where(cls.year == year)
        if by_status == "overdue":
            query = query.where(cls.status != "paid", cls.due_date < today)
        elif by_status == "not_paid":
            query = query.where(cls.status != "paid")
        elif by_status == "status":
            query = query.where(cls.status == status)
        return query


@prepared
def invoice_page(customer, point, year, status, today, offset, limit, *, scope, by_year, by_status):
    """A page of the filtered invoices, newest first, as dicts of the columns the list shows;
    each row also carries the count, the total and the PDFs of the whole filtered list. One
    query: the figures are subqueries, which both databases run once (window functions made SQLite
    sort the whole list, a second query cost PostgreSQL a round trip)."""
    query = Invoice.filtered(customer, point, year, status, today, scope=scope, by_year=by_year, by_status=by_status)
    return (query.select(Invoice.id, Invoice.number, Invoice.issue_date, Invoice.period_start, Invoice.period_end,
                         Invoice.total, Invoice.due_date, Invoice.status, Invoice.pdf_path,
                         Invoice.supply_point.alias("supply_point_id"),
                         query.select(pw.fn.COUNT(Invoice.id)).alias("filtered_count"),
                         query.select(pw.fn.SUM(Invoice.total)).alias("filtered_total"),
                         query.select(pw.fn.COUNT(Invoice.pdf_path)).alias("filtered_pdfs"))
            .order_by(*Invoice.newest_first())
            .offset(offset).limit(limit)
            .dicts())


@prepared
def latest_invoice(customer, point, *, of_point):
    """The Home Page's latest invoice: the selected point's, or the customer's when it has none."""
    query = Invoice.for_customer(customer)
    if of_point:
        query = query.where(Invoice.supply_point == point)
    return query.order_by(*Invoice.newest_first()).limit(1)


@prepared
def unpaid_invoices(customer):
    """How many of the customer's invoices are not (or only partly) paid, their total and
    PDFs: exactly the invoice list's "Da pagare" over every year and point."""
    query = Invoice.filtered(customer, None, None, None, None, scope="all", by_year=False, by_status="not_paid")
    return Invoice.count_and_total(query).tuples()


class Reading(BaseModel):
    """A meter reading: from the distributor, estimated, or sent by the customer."""

    REGISTERS = ("F1", "F2", "F3", "total")
    SOURCES = ("distributor", "customer", "estimated")
    PENDING, VALIDATED, REJECTED = "pending", "validated", "rejected"

    supply_point = pw.ForeignKeyField(SupplyPoint, backref="readings", on_delete="CASCADE")
    date = pw.DateField()
    register = pw.CharField(max_length=5)
    value = pw.DecimalField(max_digits=12, decimal_places=3)
    source = pw.CharField(max_length=11, default="distributor")
    status = pw.CharField(max_length=9, default=VALIDATED)
    submitted_by = pw.ForeignKeyField(User, null=True, backref="readings", on_delete="SET NULL")
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("supply_point", "date", "register"), True),)


class Measure(BaseModel):
    """An interval of metered energy; `start` is the interval's start in UTC."""

    supply_point = pw.ForeignKeyField(SupplyPoint, backref="measures", on_delete="CASCADE")
    start = pw.DateTimeField()
    kwh = pw.FloatField()
    interval_minutes = pw.SmallIntegerField(default=60)
    quality = pw.CharField(max_length=9, default="actual")

    class Meta:
        indexes = ((("supply_point", "start"), True),)


class Ticket(BaseModel):
    OPEN, ANSWERED, CLOSED = "open", "answered", "closed"

    customer = pw.ForeignKeyField(Customer, backref="tickets", on_delete="CASCADE")
    supply_point = pw.ForeignKeyField(SupplyPoint, null=True, backref="tickets", on_delete="SET NULL")
    opened_by = pw.ForeignKeyField(User, null=True, backref="tickets", on_delete="SET NULL")
    subject = pw.CharField()
    category = pw.CharField(max_length=20, default="other")
    status = pw.CharField(max_length=8, default=OPEN)
    created_at = pw.DateTimeField(default=utcnow)
    updated_at = pw.DateTimeField(default=utcnow)

    @classmethod
    def for_customer(cls, customer):
        return cls.select().where(cls.customer == customer)


class TicketMessage(BaseModel):
    ticket = pw.ForeignKeyField(Ticket, backref="messages", on_delete="CASCADE")
    author = pw.ForeignKeyField(User, null=True, backref="ticket_messages", on_delete="SET NULL")
    from_staff = pw.BooleanField(default=False)
    body = pw.TextField()
    created_at = pw.DateTimeField(default=utcnow)


class Document(BaseModel):
    """A file published to customers: generic documentation, or one customer's own."""

    GENERIC_SECTIONS = ("modulistica", "normative", "comunicati", "informazioni", "storico")
    CUSTOMER_SECTIONS = ("personal", "report")

    file = pw.CharField()  # path inside the file store
    source_name = pw.CharField(null=True)  # the name it came with: with customer, the natural key
    title = pw.CharField()
    section = pw.CharField(max_length=12)
    customer = pw.ForeignKeyField(Customer, null=True, backref="documents", on_delete="CASCADE")
    published_on = pw.DateField()
    period_start = pw.DateField(null=True)
    period_end = pw.DateField(null=True)
    content_type = pw.CharField(default="application/pdf")
    size = pw.IntegerField(default=0)
    sha256 = pw.CharField(max_length=64, null=True)
    unpublished_at = pw.DateTimeField(null=True)

    class Meta:
        indexes = ((("source_name", "customer"), False), (("section", "published_on"), False))

    @classmethod
    def customer_problem(cls, section, has_customer):
        """"required" when a document of `section` needs a customer and has none, "forbidden"
        when it is for everybody and has one, None when right (each caller words it)."""
        if section in cls.CUSTOMER_SECTIONS and not has_customer:
            return "required"
        if section in cls.GENERIC_SECTIONS and has_customer:
            return "forbidden"
        return None

    @classmethod
    def generic(cls, section):
        return cls.select().where(
            cls.section == section, cls.customer.is_null(), cls.unpublished_at.is_null()
        )

    @classmethod
    def for_customer(cls, customer):
        return cls.select().where(cls.customer == customer, cls.unpublished_at.is_null())


@prepared
def latest_announcements(limit):
    """The newest Comunicati, for the Home Page."""
    return Document.generic("comunicati").order_by(Document.published_on.desc()).limit(limit)


class AuditLog(BaseModel):
    """Who did what, when and from where. Never a password, a token or a full codice fiscale."""

    at = pw.DateTimeField(default=utcnow, index=True)
    user = pw.ForeignKeyField(User, null=True, backref="audit_entries", on_delete="SET NULL")
    customer = pw.ForeignKeyField(Customer, null=True, backref="audit_entries", on_delete="SET NULL")
    action = pw.CharField(max_length=40, index=True)
    ip = pw.CharField(max_length=45, null=True)
    detail = pw.TextField(default="")


class OutboxMail(BaseModel):
    """A mail waiting to be sent. Written in the transaction of the change that causes it."""

    recipient = pw.CharField()
    subject = pw.CharField()
    body_text = pw.TextField()
    body_html = pw.TextField()
    created_at = pw.DateTimeField(default=utcnow)
    attempts = pw.IntegerField(default=0)
    next_attempt_at = pw.DateTimeField(default=utcnow, index=True)
    claimed_until = pw.DateTimeField(null=True)
    sent_at = pw.DateTimeField(null=True, index=True)
    last_error = pw.TextField(null=True)


class ImportJob(BaseModel):
    """An import started from the back office: it runs in the background, one at a time."""

    QUEUED, RUNNING, DONE, REFUSED, FAILED = "queued", "running", "done", "refused", "failed"

    started_by = pw.ForeignKeyField(User, null=True, backref="import_jobs", on_delete="SET NULL")
    folder = pw.CharField()  # where the uploaded files wait
    files = pw.TextField(default="[]")  # their names, JSON
    status = pw.CharField(max_length=8, default=QUEUED, index=True)
    progress = pw.FloatField(default=0)  # 0..1 over the files' bytes
    current_file = pw.CharField(null=True)
    report = pw.TextField(default="{}")  # JSON: problems, summary
    created_at = pw.DateTimeField(default=utcnow)
    heartbeat_at = pw.DateTimeField(null=True)  # a running job not heard of for long has died
    finished_at = pw.DateTimeField(null=True)

    @property
    def result(self):
        return json.loads(self.report or "{}")

    @property
    def file_names(self):
        return json.loads(self.files or "[]")


ALL_MODELS = [
    Customer, SupplyPoint, User, UserSession, EmailToken, Consent, Invoice, Reading, Measure,
    Ticket, TicketMessage, Document, AuditLog, OutboxMail, ImportJob,
]
