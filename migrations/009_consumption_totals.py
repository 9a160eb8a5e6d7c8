"""009: per point, local day and month, kWh by ARERA band (models.DailyConsumption and
MonthlyConsumption), kept by the import so charts never read a year of raw measures."""

from contextlib import suppress

import peewee as pw
from peewee_migrate import Migrator


with suppress(ImportError):
    import playhouse.postgres_ext as pw_pext


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    """Write your migrations here."""
    
    @migrator.create_model
    class DailyConsumption(pw.Model):
        id = pw.AutoField()
        supply_point = pw.ForeignKeyField(column_name='supply_point_id', field='id', model=migrator.orm['supplypoint'], on_delete='CASCADE')
        day = pw.DateField()
        f1 = pw.FloatField(default=0.0)
        f2 = pw.FloatField(default=0.0)
        f3 = pw.FloatField(default=0.0)
        intervals = pw.IntegerField(default=0)
        estimated = pw.IntegerField(default=0)
        peak_kwh = pw.FloatField(null=True)
        peak_start = pw.DateTimeField(null=True)

        class Meta:
            table_name = "dailyconsumption"
            indexes = [(('supply_point', 'day'), True)]

    @migrator.create_model
    class MonthlyConsumption(pw.Model):
        id = pw.AutoField()
        supply_point = pw.ForeignKeyField(column_name='supply_point_id', field='id', model=migrator.orm['supplypoint'], on_delete='CASCADE')
        month = pw.DateField()
        f1 = pw.FloatField(default=0.0)
        f2 = pw.FloatField(default=0.0)
        f3 = pw.FloatField(default=0.0)
        intervals = pw.IntegerField(default=0)
        estimated = pw.IntegerField(default=0)
        peak_kwh = pw.FloatField(null=True)
        peak_start = pw.DateTimeField(null=True)

        class Meta:
            table_name = "monthlyconsumption"
            indexes = [(('supply_point', 'month'), True)]


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    """Write your rollback migrations here."""
    
    migrator.remove_model('monthlyconsumption')

    migrator.remove_model('dailyconsumption')
