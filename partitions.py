"""PostgreSQL only: the measure table is partitioned by month (migration 010), so that an old
month can be detached and archived (README) while its daily and monthly totals stay.

A partition holds one local (Europe/Rome) calendar month: from Rome's midnight of the 1st to
Rome's midnight of the next 1st, in the naive UTC that `start` stores. So a local day, and a
local month, always lies in one partition (a day's query reads one partition). Rows for which no
month partition exists yet go to measure_default; creating the month's partition moves them.
On SQLite every function here does nothing.
"""
from datetime import date

from database import is_sqlite
from i18n import rome_midnight_utc

DEFAULT = "measure_default"


def month_after(month):
    return date(month.year + (month.month == 12), month.month % 12 + 1, 1)


def name(month):
    return f"measure_{month.year:04d}_{month.month:02d}"


def bounds(month):
    """The UTC instants a local month's partition runs from (included) and to (excluded)."""
    return rome_midnight_utc(month), rome_midnight_utc(month_after(month))


def is_partitioned(database):
    if is_sqlite(database):
        return False
    row = database.execute_sql("SELECT relkind FROM pg_class WHERE relname = 'measure' "
                               "AND relnamespace = current_schema()::regnamespace").fetchone()
    return row is not None and row[0] == "p"


def existing(database):
    """The names of the measure table's partitions."""
    return {relname for (relname,) in database.execute_sql(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'measure'::regclass")}


def ensure(database, months):
    """Create the partitions of the local months `months` (first days) that are missing, moving
    their rows out of measure_default. Call it inside the transaction that writes the rows."""
    if not is_partitioned(database):
        return []
    present = existing(database)
    created = []
    for month in sorted(set(months)):
        table = name(month)
        if table in present:
            continue
        start, end = bounds(month)
        sql = database.execute_sql
        sql(f"CREATE TABLE {table} (LIKE measure INCLUDING DEFAULTS)")
        if DEFAULT in present:  # ATTACH refuses a range the default partition has rows of
            sql(f"WITH moved AS (DELETE FROM {DEFAULT} WHERE start >= %s AND start < %s RETURNING *) "
                f"INSERT INTO {table} SELECT * FROM moved", (start, end))
        sql(f"ALTER TABLE measure ATTACH PARTITION {table} FOR VALUES FROM (%s) TO (%s)", (start, end))
        created.append(table)
    return created


def ensure_for_table(database, table):
    """The partitions for the rows of `table` (the import's staging table), before they are merged."""
    if not is_partitioned(database):
        return []
    months = [month for (month,) in database.execute_sql(
        "SELECT DISTINCT CAST(date_trunc('month', (start AT TIME ZONE 'UTC') AT TIME ZONE 'Europe/Rome') AS DATE) "
        f"FROM {table}")]
    return ensure(database, months)


def months_between(first, last):
    """The first days of the local months from `first`'s to `last`'s (dates), both included."""
    month, months = first.replace(day=1), []
    while month <= last:
        months.append(month)
        month = month_after(month)
    return months
