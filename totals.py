"""Daily and monthly consumption by band (models.DailyConsumption, MonthlyConsumption), made from
the measures in SQL.

The import calls `update_from_staging()` in its transaction, after merging measures.csv: every
(point, local day) the file has rows for is summed again from the measure table, so a re-sent or
changed row counts once, with its new value; then the months of those days are summed from the
days. `rebuild()` (`flask rebuild-totals`) does the same for every point, a batch of points per
transaction.

Which local day and band an instant belongs to is decided in Python (bands.py, zoneinfo), once
per hour, not in SQL: a temporary table maps every UTC hour of the span at hand to its Rome day
and band, and the database joins each measure to its hour. So SQLite, which knows no time zones,
and PostgreSQL get the same answer, DST days have their 23 or 25 hours, and the band rule and
the holidays stay in one place. A day's peak is its largest hourly sum (the four quarters of an
hour added up), with that hour's UTC start.
"""
from datetime import datetime, timedelta

import bands
from database import is_sqlite, write_transaction
from i18n import rome_midnight_utc
from partitions import month_after

HOUR_TABLE, DAY_TABLE, TOUCHED_TABLE = "totals_hour", "totals_day", "totals_touched"


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
        timestamp, day = ("TEXT", "TEXT") if self.sqlite else ("TIMESTAMP", "DATE")
        sql = database.execute_sql
        self.drop()
        sql(f"CREATE TEMPORARY TABLE {HOUR_TABLE} (hour {timestamp} PRIMARY KEY, day {day} NOT NULL, "
            "band CHAR(2) NOT NULL)")
        sql(f"CREATE TEMPORARY TABLE {DAY_TABLE} (day {day} PRIMARY KEY, month {day} NOT NULL, "
            f"next_month {day} NOT NULL, start_utc {timestamp} NOT NULL, end_utc {timestamp} NOT NULL)")
        sql(f"CREATE TEMPORARY TABLE {TOUCHED_TABLE} (supply_point_id INTEGER NOT NULL, day {day} NOT NULL, "
            "PRIMARY KEY (supply_point_id, day))")

    def drop(self):
        for table in (HOUR_TABLE, DAY_TABLE, TOUCHED_TABLE):
            self.database.execute_sql(f"DROP TABLE IF EXISTS {table}")

    def stored(self, value):
        """A timestamp or date as the database keeps it (SQLite: text, as peewee writes it)."""
        return str(value) if self.sqlite else value

    def hour_of(self, column):
        return f"strftime('%Y-%m-%d %H:00:00', {column})" if self.sqlite else f"date_trunc('hour', {column})"

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
                hour_rows += [(self.stored(hour), self.stored(day), bands.band(hour))
                              for hour in bands.utc_hours(start, end)]
                self.days.add(day)
            day += timedelta(days=1)
        cursor = self.database.cursor()
        marks = ", ".join([self.database.param] * 5)
        for start in range(0, len(day_rows), 5000):
            cursor.executemany(f"INSERT INTO {DAY_TABLE} VALUES ({marks})", day_rows[start:start + 5000])
        marks = ", ".join([self.database.param] * 3)
        for start in range(0, len(hour_rows), 5000):
            cursor.executemany(f"INSERT INTO {HOUR_TABLE} VALUES ({marks})", hour_rows[start:start + 5000])
        if day_rows and not self.sqlite:
            self.database.execute_sql(f"ANALYZE {DAY_TABLE}; ANALYZE {HOUR_TABLE}")  # temp tables: no autovacuum

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
        by_band = ", ".join(f"SUM(CASE WHEN band = '{b}' THEN kwh ELSE 0 END)" for b in bands.BANDS)
        updated = ", ".join(f"{column} = excluded.{column}" for column in
                            ("f1", "f2", "f3", "intervals", "estimated", "peak_kwh", "peak_start"))
        sql(
            "WITH hourly AS ("
            "  SELECT t.supply_point_id, t.day, h.hour, h.band, SUM(CAST(m.kwh AS DOUBLE PRECISION)) AS kwh,"
            "         COUNT(*) AS intervals, SUM(CASE WHEN m.quality = 'estimated' THEN 1 ELSE 0 END) AS estimated"
            f"  FROM {TOUCHED_TABLE} t JOIN {DAY_TABLE} d ON d.day = t.day"
            "  JOIN measure m ON m.supply_point_id = t.supply_point_id AND m.start >= d.start_utc"
            "   AND m.start < d.end_utc"
            f"  JOIN {HOUR_TABLE} h ON h.hour = {self.hour_of('m.start')}"
            "  GROUP BY t.supply_point_id, t.day, h.hour, h.band"
            "), ranked AS ("
            "  SELECT hourly.*, ROW_NUMBER() OVER (PARTITION BY supply_point_id, day ORDER BY kwh DESC, hour) AS peak_order"
            "  FROM hourly"
            ") "
            "INSERT INTO dailyconsumption (supply_point_id, day, f1, f2, f3, intervals, estimated, peak_kwh, peak_start) "
            f"SELECT supply_point_id, day, {by_band}, SUM(intervals), SUM(estimated), "
            "MAX(CASE WHEN peak_order = 1 THEN kwh END), MAX(CASE WHEN peak_order = 1 THEN hour END) "
            "FROM ranked GROUP BY supply_point_id, day "
            f"ON CONFLICT (supply_point_id, day) DO UPDATE SET {updated}"
        )
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


def update_from_staging(database):
    """In the import's transaction, after the measures are merged: the totals of every (point,
    local day) measures.csv has rows for, and of their months."""
    totals = Totals(database)
    try:
        totals.touch_staged()
        totals.recompute()
    finally:
        totals.drop()


def rebuild(database, batch=100, echo=None):
    """All totals again from the measures: a batch of points per transaction, so memory and a
    transaction's size stay small whatever the history. Returns how many points had measures."""
    point_ids = [i for (i,) in database.execute_sql("SELECT id FROM supplypoint ORDER BY id")]
    totals = Totals(database)
    done = 0
    try:
        for start in range(0, len(point_ids), batch):
            ids = point_ids[start:start + batch]
            marks = ", ".join([database.param] * len(ids))
            with write_transaction():
                for table in ("dailyconsumption", "monthlyconsumption"):
                    database.execute_sql(f"DELETE FROM {table} WHERE supply_point_id IN ({marks})", ids)
                totals.touch_points(ids)
                done += database.execute_sql(f"SELECT COUNT(DISTINCT supply_point_id) FROM {TOUCHED_TABLE}"
                                             ).fetchone()[0]
                totals.recompute()
            if echo is not None:
                echo(f"{min(start + batch, len(point_ids))}/{len(point_ids)} points")
    finally:
        totals.drop()
    return done
