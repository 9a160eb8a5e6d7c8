"""014: tickets as issue 14 wants them: four statuses (the old "answered" is now
"waiting_customer": the utility answered, the customer's turn), an assignee, when it was closed,
the new-ticket form's idempotency key; internal notes among the messages; attachments; the
utility's canned replies."""

from contextlib import suppress

import peewee as pw
from peewee_migrate import Migrator


with suppress(ImportError):
    import playhouse.postgres_ext as pw_pext


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    """Write your migrations here."""

    migrator.change_fields('ticket', status=pw.CharField(default='open', max_length=16))
    migrator.add_fields(
        'ticket',

        assignee=pw.ForeignKeyField(column_name='assignee_id', field='id', model=migrator.orm['user'], null=True,
                                    on_delete='SET NULL'),
        closed_at=pw.DateTimeField(null=True),
        idempotency_key=pw.CharField(max_length=32, null=True))
    migrator.sql("UPDATE ticket SET status = 'waiting_customer' WHERE status = 'answered'")
    migrator.sql("UPDATE ticket SET closed_at = updated_at WHERE status = 'closed'")
    migrator.add_index('ticket', 'customer', 'idempotency_key', unique=True)
    migrator.add_index('ticket', 'customer', 'status', unique=False)

    migrator.add_fields(
        'ticketmessage',

        internal=pw.BooleanField(default=False),
        idempotency_key=pw.CharField(max_length=32, null=True))
    migrator.add_index('ticketmessage', 'ticket', 'idempotency_key', unique=True)

    @migrator.create_model
    class TicketAttachment(pw.Model):
        id = pw.AutoField()
        message = pw.ForeignKeyField(column_name='message_id', field='id', model=migrator.orm['ticketmessage'],
                                     on_delete='CASCADE')
        file = pw.CharField(max_length=255)
        name = pw.CharField(max_length=200)
        content_type = pw.CharField(max_length=100)
        size = pw.IntegerField()

        class Meta:
            table_name = "ticketattachment"

    @migrator.create_model
    class CannedReply(pw.Model):
        id = pw.AutoField()
        title = pw.CharField(max_length=100)
        body = pw.TextField()
        updated_by = pw.ForeignKeyField(column_name='updated_by_id', field='id', model=migrator.orm['user'],
                                        null=True, on_delete='SET NULL')
        updated_at = pw.DateTimeField()

        class Meta:
            table_name = "cannedreply"


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    """Write your rollback migrations here."""

    migrator.remove_model('cannedreply')
    migrator.remove_model('ticketattachment')
    migrator.drop_index('ticketmessage', 'ticket', 'idempotency_key')
    migrator.remove_fields('ticketmessage', 'internal', 'idempotency_key')
    migrator.drop_index('ticket', 'customer', 'status')
    migrator.drop_index('ticket', 'customer', 'idempotency_key')
    migrator.drop_index('ticket', 'assignee')  # the foreign key's own index: SQLite drops no indexed column
    migrator.remove_fields('ticket', 'assignee', 'closed_at', 'idempotency_key')
    migrator.sql("UPDATE ticket SET status = 'answered' WHERE status = 'waiting_customer'")
    migrator.sql("UPDATE ticket SET status = 'open' WHERE status = 'in_progress'")
    migrator.change_fields('ticket', status=pw.CharField(default='open', max_length=8))
