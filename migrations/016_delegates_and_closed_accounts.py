"""016: delegates (a customer's second logins: their rights, who invited them, when revoked) and
closed accounts (when the login's data were erased)."""

import peewee as pw
from peewee_migrate import Migrator


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    """Write your migrations here."""

    migrator.add_fields(
        'user',

        delegate_rights=pw.CharField(max_length=4, null=True),
        invited_by=pw.ForeignKeyField(column_name='invited_by_id', field='id', model=migrator.orm['user'],
                                      null=True, on_delete='SET NULL'),
        revoked_at=pw.DateTimeField(null=True),
        closed_at=pw.DateTimeField(null=True))


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    """Write your rollback migrations here."""

    migrator.remove_fields('user', 'delegate_rights', 'invited_by', 'revoked_at', 'closed_at')
