"""007: rate-limit counters in the database (shared by all processes, the fallback when Redis is
away) and the forgotten-password/username requests the mail sender answers."""

from contextlib import suppress

import peewee as pw
from peewee_migrate import Migrator


with suppress(ImportError):
    import playhouse.postgres_ext as pw_pext


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    """Write your migrations here."""
    
    @migrator.create_model
    class MailRequest(pw.Model):
        id = pw.AutoField()
        kind = pw.CharField(max_length=20)
        subject = pw.CharField(max_length=254)
        ip = pw.CharField(max_length=45, null=True)
        created_at = pw.DateTimeField()

        class Meta:
            table_name = "mailrequest"

    @migrator.create_model
    class RateCounter(pw.Model):
        key = pw.CharField(max_length=80, primary_key=True)
        count = pw.IntegerField()
        window_ends = pw.DateTimeField(index=True)

        class Meta:
            table_name = "ratecounter"

    # Failed logins are counted by the rate limiter now (ratelimit.py), for every login alike.
    migrator.remove_fields('user', 'failed_logins')


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    """Write your rollback migrations here."""
    
    migrator.add_fields('user', failed_logins=pw.IntegerField(default=0))

    migrator.remove_model('ratecounter')

    migrator.remove_model('mailrequest')
