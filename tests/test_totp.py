"""Staff's TOTP secrets at rest: encrypted with a key of their own (TOTP_KEY, or derived from
SECRET_KEY), and migration 008 that encrypts the secrets stored before it. The login's flows
(enrolment, the cookie, another key) are in test_backoffice.py."""
import importlib.util
from datetime import datetime
from pathlib import Path

import pyotp
import pytest
from flask import has_app_context

import accounts
import schema
import totp
from app import ConfigError, create_app
from models import User, db_wrapper
from tests.conftest import TEST_CONFIG

KEY = "0123456789abcdef" * 4  # a TOTP_KEY: 64 hex digits
MIGRATION_008 = Path(__file__).parent.parent / "migrations" / "008_totp_secrets_encrypted.py"


def test_a_secret_round_trips_and_the_stored_text_does_not_hold_it():
    secret = pyotp.random_base32()
    key = bytes.fromhex(KEY)
    stored = totp.encrypt_secret(7, secret, key)
    assert secret not in stored and stored.startswith("v1:")
    assert stored != totp.encrypt_secret(7, secret, key)  # a new nonce each time
    assert totp.decrypt_secret(7, stored, key) == secret


def test_a_secret_does_not_decrypt_with_another_key_for_another_user_or_altered():
    secret = pyotp.random_base32()
    key = bytes.fromhex(KEY)
    stored = totp.encrypt_secret(7, secret, key)
    assert totp.decrypt_secret(7, stored, bytes.fromhex("f" * 64)) is None
    assert totp.decrypt_secret(8, stored, key) is None  # copied into another operator's row
    tampered = stored[:-6] + ("AAAAAA" if not stored.endswith("AAAAAA") else "BBBBBB")
    assert totp.decrypt_secret(7, tampered, key) is None
    for broken in (secret, "v1:", "v1:!!", "v1:" + "A" * 8, None, ""):  # plain base32, too short, garbled
        assert totp.decrypt_secret(7, broken, key) is None


def test_the_key_is_totp_key_or_derived_from_secret_key_for_this_purpose_alone():
    derived = totp.encryption_key({"SECRET_KEY": "test-secret-key"})
    assert len(derived) == 32
    assert derived != b"test-secret-key" and b"test-secret-key" not in derived
    assert derived == totp.encryption_key({"SECRET_KEY": "test-secret-key", "TOTP_KEY": None})  # stable
    assert derived != totp.encryption_key({"SECRET_KEY": "another-secret-key"})
    assert totp.encryption_key({"SECRET_KEY": "test-secret-key", "TOTP_KEY": KEY}) == bytes.fromhex(KEY)
    # A secret key that is itself 64 hex digits is not used as it is.
    assert totp.encryption_key({"SECRET_KEY": KEY}) != bytes.fromhex(KEY)


@pytest.mark.parametrize("bad", ["short", "g" * 64, KEY + "00"])
def test_a_malformed_totp_key_stops_the_start(migrated_database, bad):
    with pytest.raises(ConfigError, match="TOTP_KEY must be 64 hexadecimal digits"):
        create_app(dict(TEST_CONFIG, DATABASE_URL=migrated_database, TOTP_KEY=bad))


def test_totp_key_comes_from_the_environment(monkeypatch, migrated_database):
    monkeypatch.setenv("TOTP_KEY", KEY.upper())
    app = create_app(dict(TEST_CONFIG, DATABASE_URL=migrated_database))
    assert totp.encryption_key(app.config) == bytes.fromhex(KEY)


# --- migration 008 ----------------------------------------------------------------------------------

def insert_row(model, **values):
    """A row of `model` as it was at some migration: `values`, and a plain value for every other
    column that needs one."""
    plain = {pw_type: value for pw_type, value in (("CharField", "x"), ("DateTimeField", datetime(2026, 1, 1)),
                                                   ("BooleanField", False), ("IntegerField", 0),
                                                   ("BigIntegerField", 0))}
    row = dict(values)
    for field in model._meta.sorted_fields:
        if field.name not in row and not field.primary_key and not field.null and field.default is None:
            row[field.name] = plain[type(field).__name__]
    return model.insert(**row).execute()


@pytest.mark.parametrize("settings", [{}, {"TOTP_KEY": KEY}])
def test_migration_008_encrypts_the_secrets_stored_before_it(tmp_path, settings):
    """A database at 007 with a plain base32 secret: `flask init-db` encrypts it with the app's key."""
    app = create_app(dict(TEST_CONFIG, DATABASE_URL="sqlite:///" + str(tmp_path / "old.db"), **settings))
    secret = pyotp.random_base32()
    with app.app_context():
        database = db_wrapper.database
        router = schema.router(database)
        router.run("007_rate_counters_and_mail_requests")
        old_user = router.migrator.orm["user"]
        enrolled = insert_row(old_user, email="operatore@utility.it", role="operator", totp_secret=secret)
        not_enrolled = insert_row(old_user, email="nuovo@utility.it", role="operator")

        result = app.test_cli_runner().invoke(args=["init-db"])
        assert result.exit_code == 0, result.output

        stored = User.get_by_id(enrolled).totp_secret
        assert secret not in stored
        assert totp.active_secret(User.get_by_id(enrolled)) == secret
        assert totp.decrypt_secret(enrolled, stored, totp.encryption_key(app.config)) == secret
        assert User.get_by_id(not_enrolled).totp_secret is None
        assert User.get_by_id(enrolled).totp_pending_secret is None
        assert schema.upgrade(database) == 0  # once: an encrypted secret is not encrypted again
        assert totp.active_secret(User.get_by_id(enrolled)) == secret
    database.close()


def load_migration_008():
    spec = importlib.util.spec_from_file_location("migration_008", MIGRATION_008)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_migration_008_leaves_encrypted_secrets_and_rolls_back_to_plain(app):
    migration = load_migration_008()
    secret = pyotp.random_base32()
    with app.app_context():
        user = accounts.create_staff("operatore@utility.it", "Sportello-Staff-2026!")
        User.update(totp_secret=secret).where(User.id == user.id).execute()
        migration.encrypt_plain_secrets(db_wrapper.database)
        encrypted = User.get_by_id(user.id).totp_secret
        assert encrypted.startswith("v1:")
        migration.encrypt_plain_secrets(db_wrapper.database)
        assert User.get_by_id(user.id).totp_secret == encrypted
        migration.decrypt_secrets(db_wrapper.database)  # the rollback: what 007's code read
        assert User.get_by_id(user.id).totp_secret == secret


def test_migration_008_needs_the_app_for_its_key(app):
    migration = load_migration_008()
    with app.app_context():
        user = accounts.create_staff("operatore@utility.it", "Sportello-Staff-2026!")
        User.update(totp_secret=pyotp.random_base32()).where(User.id == user.id).execute()
    assert not has_app_context()
    with pytest.raises(RuntimeError, match="flask init-db"):
        migration.encrypt_plain_secrets(db_wrapper.database)
