"""017: the end of a supply point's newest measure, kept with the totals (totals.py), so that
"l'ultima misura finisce il" is not looked for among the measures on every page; filled here
from the measures already stored."""

import peewee as pw
from peewee_migrate import Migrator

# A migration keeps its SQL (totals.measure_end's) rather than import the app's code, which
# will change after it.
NEWEST_END = {  # of the point's newest measure: its start plus its minutes
    "sqlite": "SELECT datetime(m.start, '+' || m.interval_minutes || ' minutes')",
    "postgres": "SELECT m.start + m.interval_minutes * INTERVAL '1 minute'",
}


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.add_fields('supplypoint', measures_until=pw.DateTimeField(null=True))
    dialect = "sqlite" if isinstance(database, pw.SqliteDatabase) else "postgres"
    migrator.sql(f"UPDATE supplypoint SET measures_until = ({NEWEST_END[dialect]} FROM measure m "
                 "WHERE m.supply_point_id = supplypoint.id ORDER BY m.start DESC LIMIT 1)")


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.remove_fields('supplypoint', 'measures_until')
