"""013: self-readings (issue 14): a reading's photo, one-time form key, confirmation of an
implausible value and the operator's decision; one live reading per point, day and register
(a rejected one leaves the day free); the reminder's opt-in and its sent log."""

from contextlib import suppress

import peewee as pw
from peewee_migrate import Migrator


with suppress(ImportError):
    import playhouse.postgres_ext as pw_pext


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    """Write your migrations here."""

    migrator.add_fields(
        'reading',

        submission=pw.CharField(max_length=36, null=True, index=True),
        photo_path=pw.CharField(max_length=100, null=True),
        confirmed_implausible=pw.BooleanField(default=False),
        reviewed_by=pw.ForeignKeyField(column_name='reviewed_by_id', field='id', model=migrator.orm['user'],
                                       null=True, on_delete='SET NULL'),
        reviewed_at=pw.DateTimeField(null=True),
        rejection_reason=pw.CharField(max_length=300, null=True))

    migrator.drop_index('reading', 'supply_point', 'date', 'register')
    migrator.add_index('reading', 'supply_point', 'date', 'register', unique=True,
                       where=pw.SQL("status <> 'rejected'"))

    migrator.add_fields(
        'user',

        notify_readings=pw.BooleanField(default=False))

    @migrator.create_model
    class ReadingReminder(pw.Model):
        id = pw.AutoField()
        user = pw.ForeignKeyField(column_name='user_id', field='id', model=migrator.orm['user'], on_delete='CASCADE')
        commodity = pw.CharField(max_length=11)
        window_start = pw.DateField()
        sent_at = pw.DateTimeField()

        class Meta:
            table_name = "readingreminder"
            indexes = [(('user', 'commodity', 'window_start'), True)]


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    """Write your rollback migrations here."""

    migrator.remove_model('readingreminder')
    migrator.remove_fields('user', 'notify_readings')
    migrator.drop_index('reading', 'supply_point', 'date', 'register')
    migrator.add_index('reading', 'supply_point', 'date', 'register', unique=True)
    migrator.remove_fields('reading', 'submission', 'photo_path', 'confirmed_implausible', 'reviewed_by',
                           'reviewed_at', 'rejection_reason')
