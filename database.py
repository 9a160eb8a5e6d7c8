"""The database plumbing: connections, the PostgreSQL pool and its statement cache, the session
cache that PostgreSQL invalidates, prepared queries, transactions. models.py holds the data and
its queries; this module, how they reach the database.
"""
import collections
import contextlib
import inspect
import itertools
import os
import re
import select
import threading
import time

import peewee as pw
import psycopg2.extensions
from flask import request
from playhouse.db_url import connect as connect_database
from playhouse.db_url import parse as parse_database_url
from playhouse.flask_utils import FlaskDB
from playhouse.pool import PooledPostgresqlDatabase


class PortalDB(FlaskDB):
    """FlaskDB that keeps an SQLite connection open for the worker's thread (measured +23%
    throughput, DESIGN §7) and hands pooled PostgreSQL connections back after each request."""

    def connect_db(self):
        if request.endpoint in self._excluded_routes:  # /healthz connects by itself, to tell a failure
            return
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


db_wrapper = PortalDB(excluded_routes=("health.healthz",))


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
    if isinstance(value, pw.Model):  # as peewee binds a model in a query it builds: by its id
        value = value.get_id()
    return slot.converter(value) if slot.converter and value is not None else value


def open_database(url, session_cache_seconds=0):
    if url.startswith("sqlite:"):
        return connect_database(
            url,
            pragmas={
                "journal_mode": "wal",
                "synchronous": "normal",
                "foreign_keys": 1,
                "busy_timeout": 5000,
            },
            timeout=5,
        )
    if url.startswith(("postgres://", "postgresql://")):
        # A connection per request was 6x slower than a pool (DESIGN §7).
        return PortalPostgresqlDatabase(**parse_database_url(url), max_connections=20, stale_timeout=300, timeout=10,
                                        session_cache_seconds=session_cache_seconds)
    return connect_database(url)


def init_database(app):
    app.config["DATABASE"] = open_database(app.config["DATABASE_URL"], app.config["SESSION_CACHE_SECONDS"])
    db_wrapper.init_app(app)
