"""Daily and monthly consumption by band (models.DailyConsumption, MonthlyConsumption), made from
the measures.

The import calls `update_from_staging()` in its transaction, after merging measures.csv: every
(point, local day) the file has rows for is summed again from the measure table, so a re-sent or
changed row counts once, with its new value; then the months of those days are summed from the
days, in SQL. `rebuild()` (`flask rebuild-totals`) does the same for every day of every point
that has measures, a batch of points per transaction. Both also keep each point's
`measures_until`, the end of its newest measure ("l'ultima misura finisce il"), so that a page
never looks for it among the measures (on PostgreSQL that search opens every month partition).

Which local day and band an instant belongs to is decided in Python (bands.py, zoneinfo), once
per hour: so SQLite, which knows no time zones, and PostgreSQL get the same answer, DST days
have their 23 or 25 hours, and the band rule and the holidays stay in one place. A temporary
table of those hours lets the database find the touched (point, day) pairs; the days' measures
are then read in (point, start) order, one index range per run of consecutive touched days, and
summed in one streaming pass (on SQLite four times cheaper than the same sums in SQL). A day's
peak is its largest hourly sum (the four quarters of an hour added up), with that hour's UTC
start, the earliest of equal ones.
"""
from datetime import datetime, timedelta

import psycopg2.extras

import bands
from database import is_sqlite, write_transaction
from i18n import rome_midnight_utc
from partitions import month_after

HOUR_TABLE, DAY_TABLE, TOUCHED_TABLE, RUN_TABLE = "totals_hour", "totals_day", "totals_touched", "totals_run"


def as_datetime(value):
    """SQLite hands timestamps back as text."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


class Totals:
    """The temporary tables of one run: the hours and days covered so far, and the (point, day)
    pairs to sum again."""

    def __init__(self, database):
        self.database = database
        self.sqlite = is_sqlite(database)
        self.days = set()  # local days already in DAY_TABLE (and their hours in HOUR_TABLE)
        self.hours = {}  # hour key (see hour_key) -> (its local day, its band)
        timestamp, day = ("TEXT", "TEXT") if self.sqlite else ("TIMESTAMP", "DATE")
        sql = database.execute_sql
        self.drop()
        sql(f"CREATE TEMPORARY TABLE {HOUR_TABLE} (hour {timestamp} PRIMARY KEY, day {day} NOT NULL, "
            "band CHAR(2) NOT NULL)")
        sql(f"CREATE TEMPORARY TABLE {DAY_TABLE} (day {day} PRIMARY KEY, month {day} NOT NULL, "
            f"next_month {day} NOT NULL, start_utc {timestamp} NOT NULL, end_utc {timestamp} NOT NULL)")
        sql(f"CREATE TEMPORARY TABLE {TOUCHED_TABLE} (supply_point_id INTEGER NOT NULL, day {day} NOT NULL, "
            "PRIMARY KEY (supply_point_id, day))")
        sql(f"CREATE TEMPORARY TABLE {RUN_TABLE} (supply_point_id INTEGER NOT NULL, start_utc {timestamp} NOT NULL, "
            f"end_utc {timestamp} NOT NULL)")

    def drop(self):
        for table in (HOUR_TABLE, DAY_TABLE, TOUCHED_TABLE, RUN_TABLE):
            self.database.execute_sql(f"DROP TABLE IF EXISTS {table}")

    def stored(self, value):
        """A timestamp or date as the database keeps it (SQLite: text, as peewee writes it)."""
        return str(value) if self.sqlite else value

    def hour_of(self, column):
        """SQL for the hour key of a timestamp column (as hour_key)."""
        return f"substr({column}, 1, 13)" if self.sqlite else f"date_trunc('hour', {column})"

    def fetched(self, cursor, size=20000):
        while True:
            rows = self.database.execute_sql(f"FETCH {size} FROM {cursor}").fetchall()
            if not rows:
                return
            yield from rows

    def daily_totals(self, rows):
        """(point, start, kWh, quality) rows, ordered by point and start, summed by local day into
        dailyconsumption rows: kWh by band, intervals, estimated ones, and the largest hourly sum
        with its hour (the earliest of equal ones). Streams: one day in memory at a time."""
        hour_of, key_of = self.hours, self.hour_key
        day_key, by_band, counts, hours = None, {}, [0, 0], {}
        for point, start, kwh, quality in rows:
            hour = key_of(start)
            day, band = hour_of[hour]
            if (point, day) != day_key:
                if day_key is not None:
                    yield self.day_row(day_key, by_band, counts, hours)
                day_key, by_band, counts, hours = (point, day), {"F1": 0.0, "F2": 0.0, "F3": 0.0}, [0, 0], {}
            by_band[band] += kwh
            counts[0] += 1
            counts[1] += quality == "estimated"
            hours[hour] = hours.get(hour, 0.0) + kwh
        if day_key is not None:
            yield self.day_row(day_key, by_band, counts, hours)

    def day_row(self, day_key, by_band, counts, hours):
        peak = max(hours, key=hours.get)  # the first of equal ones: hours are in time order
        return (*day_key, by_band["F1"], by_band["F2"], by_band["F3"], *counts, hours[peak], self.hour_start(peak))

    def hour_key(self, start):
        """The key of the hour holding `start` (SQLite: the text up to the hour)."""
        return start[:13] if self.sqlite else start.replace(minute=0, second=0, microsecond=0)

    def hour_start(self, key):
        return key + ":00:00" if self.sqlite else key

    def cover(self, first_utc, last_utc):
        """Make sure every local day from the one holding `first_utc` to the one holding
        `last_utc` (naive UTC) has its row and its hours' rows."""
        first, last = bands.to_rome(first_utc).date(), bands.to_rome(last_utc).date()
        day_rows, hour_rows = [], []
        day = first
        while day <= last:
            if day not in self.days:
                start, end = rome_midnight_utc(day), rome_midnight_utc(day + timedelta(days=1))
                month = day.replace(day=1)
                day_rows.append(tuple(map(self.stored, (day, month, month_after(month), start, end))))
                for hour in bands.utc_hours(start, end):
                    key = self.hour_key(str(hour) if self.sqlite else hour)
                    self.hours[key] = (self.stored(day), bands.band(hour))
                    hour_rows.append((key, *self.hours[key]))
                self.days.add(day)
            day += timedelta(days=1)
        self.insert(DAY_TABLE, day_rows)
        self.insert(HOUR_TABLE, hour_rows)
        if day_rows and not self.sqlite:
            self.database.execute_sql(f"ANALYZE {DAY_TABLE}; ANALYZE {HOUR_TABLE}")  # temp tables: no autovacuum

    def insert(self, table, rows, upsert=""):
        if not rows:
            return
        if self.sqlite:
            marks = ", ".join("?" * len(rows[0]))
            self.database.cursor().executemany(f"INSERT INTO {table} VALUES ({marks}) {upsert}", rows)
        else:  # psycopg2's executemany makes a round trip per row
            psycopg2.extras.execute_values(self.database.cursor(), f"INSERT INTO {table} VALUES %s {upsert}", rows,
                                           page_size=5000)

    def touch_staged(self):
        """The (point, local day) pairs of the import's staging table (import_measure)."""
        first, last = self.database.execute_sql("SELECT MIN(start), MAX(start) FROM import_measure").fetchone()
        if first is None:
            return
        self.cover(as_datetime(first), as_datetime(last))
        self.database.execute_sql(
            f"INSERT INTO {TOUCHED_TABLE} (supply_point_id, day) SELECT DISTINCT p.id, h.day "
            "FROM import_measure s JOIN supplypoint p ON p.code = s.supply_point_code "
            f"JOIN {HOUR_TABLE} h ON h.hour = {self.hour_of('s.start')}")

    def touch_points(self, point_ids):
        """Every day the points have measures on."""
        marks = ", ".join([self.database.param] * len(point_ids))
        first, last = self.database.execute_sql(
            f"SELECT MIN(start), MAX(start) FROM measure WHERE supply_point_id IN ({marks})", point_ids).fetchone()
        if first is None:
            return
        self.cover(as_datetime(first), as_datetime(last))
        self.database.execute_sql(
            f"INSERT INTO {TOUCHED_TABLE} (supply_point_id, day) SELECT DISTINCT m.supply_point_id, h.day "
            f"FROM measure m JOIN {HOUR_TABLE} h ON h.hour = {self.hour_of('m.start')} "
            f"WHERE m.supply_point_id IN ({marks})", point_ids)

    def recompute(self):
        """Sum the touched days again from the measures, then their months from the days."""
        sql = self.database.execute_sql
        if not self.sqlite:
            sql(f"ANALYZE {TOUCHED_TABLE}")
        # Runs of consecutive touched days, one range of the (point, start) index each: a
        # planner offered one join per (point, day) read the index of whole months instead.
        runs = []
        for point, start, end in sql(f"SELECT t.supply_point_id, d.start_utc, d.end_utc FROM {TOUCHED_TABLE} t "
                                     f"JOIN {DAY_TABLE} d ON d.day = t.day ORDER BY t.supply_point_id, t.day"):
            if runs and runs[-1][0] == point and runs[-1][2] == start:
                runs[-1][2] = end
            else:
                runs.append([point, start, end])
        sql(f"DELETE FROM {RUN_TABLE}")
        self.insert(RUN_TABLE, [tuple(run) for run in runs])
        if not self.sqlite:
            sql(f"ANALYZE {RUN_TABLE}")
        query = (f"SELECT r.supply_point_id, m.start, m.kwh, m.quality FROM {RUN_TABLE} r "
                 "JOIN measure m ON m.supply_point_id = r.supply_point_id AND m.start >= r.start_utc "
                 "AND m.start < r.end_utc ORDER BY r.supply_point_id, r.start_utc, m.start")
        updated = ", ".join(f"{column} = excluded.{column}" for column in
                            ("f1", "f2", "f3", "intervals", "estimated", "peak_kwh", "peak_start"))
        upsert = f"ON CONFLICT (supply_point_id, day) DO UPDATE SET {updated}"
        columns = "dailyconsumption (supply_point_id, day, f1, f2, f3, intervals, estimated, peak_kwh, peak_start)"
        if self.sqlite:
            rows = self.database.cursor().execute(query)
        else:
            sql(f"DECLARE totals_measures NO SCROLL CURSOR FOR {query}")  # streamed (we are in a transaction)
            rows = self.fetched("totals_measures")
        days = []
        for day in self.daily_totals(rows):  # written as they come: memory stays flat
            days.append(day)
            if len(days) == 5000:
                self.insert(columns, days, upsert)
                days.clear()
        self.insert(columns, days, upsert)
        if not self.sqlite:
            sql("CLOSE totals_measures")
        sql(
            "WITH months AS ("
            "  SELECT DISTINCT t.supply_point_id, d.month, d.next_month"
            f"  FROM {TOUCHED_TABLE} t JOIN {DAY_TABLE} d ON d.day = t.day"
            "), ranked AS ("
            "  SELECT c.*, x.month,"
            "         ROW_NUMBER() OVER (PARTITION BY c.supply_point_id, x.month ORDER BY c.peak_kwh DESC, c.peak_start)"
            "         AS peak_order"
            "  FROM months x JOIN dailyconsumption c ON c.supply_point_id = x.supply_point_id"
            "   AND c.day >= x.month AND c.day < x.next_month"
            ") "
            "INSERT INTO monthlyconsumption (supply_point_id, month, f1, f2, f3, intervals, estimated, peak_kwh, "
            "peak_start) "
            "SELECT supply_point_id, month, SUM(f1), SUM(f2), SUM(f3), SUM(intervals), SUM(estimated), "
            "MAX(CASE WHEN peak_order = 1 THEN peak_kwh END), MAX(CASE WHEN peak_order = 1 THEN peak_start END) "
            "FROM ranked GROUP BY supply_point_id, month "
            f"ON CONFLICT (supply_point_id, month) DO UPDATE SET {updated}"
        )
        sql(f"DELETE FROM {TOUCHED_TABLE}")


def measure_end(database, table):
    """SQL for the end of a measure of `table` (its start plus its minutes), as the database
    keeps a timestamp."""
    if is_sqlite(database):
        return f"datetime({table}.start, '+' || {table}.interval_minutes || ' minutes')"
    return f"{table}.start + {table}.interval_minutes * INTERVAL '1 minute'"


def extend_measures_until(database, newest, params=()):
    """Move each point's measures_until to the newest end that `newest` (SQL giving
    supply_point_id and until) finds, if later: measures are added or changed, never removed
    (an archived month leaves the newest where it was)."""
    database.execute_sql(
        "UPDATE supplypoint SET measures_until = CASE WHEN measures_until IS NULL "
        "OR measures_until < n.until THEN n.until ELSE measures_until END "
        f"FROM ({newest}) n WHERE supplypoint.id = n.supply_point_id", params)


def update_from_staging(database):
    """In the import's transaction, after the measures are merged: the totals of every (point,
    local day) measures.csv has rows for, and of their months; the points' measures_until."""
    totals = Totals(database)
    try:
        totals.touch_staged()
        totals.recompute()
    finally:
        totals.drop()
    extend_measures_until(database, f"SELECT p.id AS supply_point_id, MAX({measure_end(database, 's')}) AS until "
                                    "FROM import_measure s JOIN supplypoint p ON p.code = s.supply_point_code "
                                    "GROUP BY p.id")


def extend_measures_until_of(database, point_ids):
    """measures_until of the points, from all their measures."""
    marks = ", ".join([database.param] * len(point_ids))
    extend_measures_until(database, f"SELECT supply_point_id, MAX({measure_end(database, 'measure')}) AS until "
                                    f"FROM measure WHERE supply_point_id IN ({marks}) GROUP BY supply_point_id",
                          point_ids)


def update_points(database, point_ids, batch=100):
    """In the caller's transaction: the totals of every day the points have measures on (the
    demo, after writing its measures)."""
    totals = Totals(database)
    try:
        for start in range(0, len(point_ids), batch):
            totals.touch_points(point_ids[start:start + batch])
            totals.recompute()
            extend_measures_until_of(database, point_ids[start:start + batch])
    finally:
        totals.drop()


def rebuild(database, batch=100, echo=None):
    """The totals of every day that has measures, and of its month, again from the measures: a
    batch of points per transaction, so memory and a transaction's size stay small whatever the
    history. A day without measures keeps its totals: its month may be archived (README).
    Returns how many points had measures."""
    point_ids = [i for (i,) in database.execute_sql("SELECT id FROM supplypoint ORDER BY id")]
    totals = Totals(database)
    done = 0
    try:
        for start in range(0, len(point_ids), batch):
            ids = point_ids[start:start + batch]
            with write_transaction():
                totals.touch_points(ids)
                done += database.execute_sql(f"SELECT COUNT(DISTINCT supply_point_id) FROM {TOUCHED_TABLE}"
                                             ).fetchone()[0]
                totals.recompute()
                extend_measures_until_of(database, ids)
            if echo is not None:
                echo(f"{min(start + batch, len(point_ids))}/{len(point_ids)} points")
    finally:
        totals.drop()
    return done
