"""010: PostgreSQL only: the measure table partitioned by month of `start` (declarative RANGE
partitioning), so old months can be detached and archived (README) while their totals stay.

The rows are moved into the new table, one partition per local month that has rows (partitions.py
says where a month starts and ends), plus measure_default for rows no month partition holds yet
(the import creates its months' partitions before writing). A partitioned table's unique
indexes must hold the partition key: the primary key becomes (id, start), id still numbered by
the same sequence, and (supply_point_id, start) stays unique. The separate index on
supply_point_id goes: (supply_point_id, start) serves the same lookups. SQLite is unchanged.
Written by hand: peewee-migrate knows nothing of partitions.
"""
import peewee as pw
from peewee_migrate import Migrator


def is_postgres(database):
    return isinstance(getattr(database, "obj", database), pw.PostgresqlDatabase)


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    if fake or not is_postgres(database):
        return
    migrator.run(partition_measures, database)


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    if fake or not is_postgres(database):
        return
    migrator.run(unpartition_measures, database)


def partition_measures(database):
    import partitions

    sql = database.execute_sql
    sql("ALTER TABLE measure RENAME TO measure_unpartitioned")
    for index in ("measure_pkey", "measure_supply_point_id", "measure_supply_point_id_start"):
        sql(f"ALTER INDEX IF EXISTS {index} RENAME TO {index.replace('measure', 'measure_unpartitioned', 1)}")
    sql("CREATE TABLE measure (LIKE measure_unpartitioned INCLUDING DEFAULTS) PARTITION BY RANGE (start)")
    sql("ALTER TABLE measure ADD CONSTRAINT measure_pkey PRIMARY KEY (id, start)")
    sql("CREATE UNIQUE INDEX measure_supply_point_id_start ON measure (supply_point_id, start)")
    sql("ALTER TABLE measure ADD CONSTRAINT measure_supply_point_id_fkey FOREIGN KEY (supply_point_id) "
        "REFERENCES supplypoint (id) ON DELETE CASCADE")
    sql(f"CREATE TABLE {partitions.DEFAULT} PARTITION OF measure DEFAULT")
    months = [month for (month,) in sql(
        "SELECT DISTINCT CAST(date_trunc('month', (start AT TIME ZONE 'UTC') AT TIME ZONE 'Europe/Rome') AS DATE) "
        "FROM measure_unpartitioned")]
    partitions.ensure(database, months)
    sql("INSERT INTO measure SELECT * FROM measure_unpartitioned")
    sql("ALTER SEQUENCE measure_id_seq OWNED BY measure.id")  # or dropping the old table drops it
    sql("DROP TABLE measure_unpartitioned")
    sql("ANALYZE measure")


def unpartition_measures(database):
    sql = database.execute_sql
    sql("ALTER TABLE measure RENAME TO measure_partitioned")
    sql("ALTER INDEX measure_pkey RENAME TO measure_partitioned_pkey")
    sql("ALTER INDEX measure_supply_point_id_start RENAME TO measure_partitioned_supply_point_id_start")
    sql("CREATE TABLE measure (LIKE measure_partitioned INCLUDING DEFAULTS)")
    sql("INSERT INTO measure SELECT * FROM measure_partitioned")
    sql("ALTER TABLE measure ADD CONSTRAINT measure_pkey PRIMARY KEY (id)")
    sql("CREATE INDEX measure_supply_point_id ON measure (supply_point_id)")
    sql("CREATE UNIQUE INDEX measure_supply_point_id_start ON measure (supply_point_id, start)")
    sql("ALTER TABLE measure ADD CONSTRAINT measure_supply_point_id_fkey FOREIGN KEY (supply_point_id) "
        "REFERENCES supplypoint (id) ON DELETE CASCADE")
    sql("ALTER SEQUENCE measure_id_seq OWNED BY measure.id")
    sql("DROP TABLE measure_partitioned CASCADE")
