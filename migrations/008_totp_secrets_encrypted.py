"""008: staff's TOTP secrets encrypted at rest, and the one being enrolled kept on the server.

Adds user.totp_pending_secret (it was in the session cookie) and encrypts, in place, every
totp_secret stored as plain base32 before, with the key of the app that runs the migration
(`flask init-db`: TOTP_KEY, or the key derived from SECRET_KEY; see totp.encryption_key).
Run it with the production settings, or the secrets are encrypted with another key and every
operator must have the second factor reset. Written by hand: a data migration.
"""
import re

import peewee as pw
from peewee_migrate import Migrator

PLAIN_BASE32 = re.compile(r"[A-Z2-7]+=*")  # what totp_secret held before this migration


def users(database):
    return pw.Table("user", ("id", "totp_secret")).bind(database)


def encrypt_plain_secrets(database):
    from flask import current_app, has_app_context

    import totp

    table = users(database)
    rows = [(user_id, secret) for user_id, secret in table.select(table.id, table.totp_secret)
            .where(table.totp_secret.is_null(False)).tuples() if PLAIN_BASE32.fullmatch(secret)]
    if not rows:
        return
    if not has_app_context():
        raise RuntimeError("Migration 008 encrypts the stored TOTP secrets with the app's key: run it "
                           "with `flask init-db`.")
    key = totp.encryption_key(current_app.config)
    for user_id, secret in rows:
        table.update(totp_secret=totp.encrypt_secret(user_id, secret, key)).where(table.id == user_id).execute()


def decrypt_secrets(database):
    """Back to plain base32; a secret this key cannot read is cleared (enrolled again)."""
    from flask import current_app

    import totp

    table = users(database)
    key = totp.encryption_key(current_app.config)
    for user_id, stored in (table.select(table.id, table.totp_secret)
                            .where(table.totp_secret.is_null(False)).tuples()):
        table.update(totp_secret=totp.decrypt_secret(user_id, stored, key)).where(table.id == user_id).execute()


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.add_fields('user', totp_pending_secret=pw.CharField(max_length=255, null=True))
    migrator.run(encrypt_plain_secrets, database)


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.run(decrypt_secrets, database)
    migrator.remove_fields('user', 'totp_pending_secret')
