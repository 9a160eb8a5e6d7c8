"""015: the contact data a customer changes in the portal (models.ContactChange): what the
contacts export sends the billing system, and what keeps the import from undoing a change the
billing system has not taken yet (contacts.py)."""

import peewee as pw
from peewee_migrate import Migrator


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    """Write your migrations here."""

    @migrator.create_model
    class ContactChange(pw.Model):
        id = pw.AutoField()
        customer = pw.ForeignKeyField(column_name='customer_id', field='id', model=migrator.orm['customer'], on_delete='CASCADE')
        field = pw.CharField(max_length=6)
        old_value = pw.CharField(max_length=255, null=True)
        new_value = pw.CharField(max_length=255, null=True)
        changed_at = pw.DateTimeField(index=True)
        changed_by = pw.ForeignKeyField(column_name='changed_by_id', field='id', model=migrator.orm['user'], null=True, on_delete='SET NULL')
        settled_at = pw.DateTimeField(null=True)

        class Meta:
            table_name = "contactchange"
            indexes = [(('customer', 'field'), False)]


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    """Write your rollback migrations here."""

    migrator.remove_model('contactchange')
