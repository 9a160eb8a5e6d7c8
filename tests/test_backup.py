"""`flask backup` and `flask restore` (backups.py), as the IT person runs them: a backup taken
while customers keep writing, restored into a new instance where a customer logs in and gets their
invoice's PDF; what restore refuses (a damaged backup, a target that is not empty, another kind of
database) and what backup refuses (an existing destination). On SQLite and PostgreSQL: with a
PostgreSQL TEST_DATABASE_URL, the restore goes into a database of its own, made and dropped here."""
import hashlib
import io
import json
import re
import secrets
import threading
import urllib.parse
from pathlib import Path

import peewee as pw
import psycopg2
import pytest

import backups
import models
import schema
from models import Invoice, Ticket, TicketAttachment, TicketMessage
from tests.factories import PASSWORD, make_customer, make_invoice, make_supply_point, make_user, store_pdf
from tests.helpers import csrf_from, login, release_connections
from tests.import_data import pdf_bytes

INVOICE_PDF = pdf_bytes("Fattura FT2026-000001 di ROSSI MARIO")
REPLIES_PER_WRITER = 50  # under the customers' limit of 60 replies an hour


# --- a new, empty database of the suite's kind ----------------------------------------------------

@pytest.fixture(scope="module")
def postgres_databases(migrated_database):
    """Two PostgreSQL databases of this module's own (none on SQLite), made and dropped once:
    CREATE and DROP DATABASE each wait for a checkpoint, seconds on a busy server."""
    if migrated_database.startswith("sqlite"):
        yield []
        return
    names = [f"h_backup_{secrets.token_hex(4)}" for _ in range(2)]
    with server_connection(migrated_database) as cursor:
        for name in names:
            cursor.execute(f'CREATE DATABASE "{name}"')
    yield [urllib.parse.urlsplit(migrated_database)._replace(path="/" + name).geturl() for name in names]
    with server_connection(migrated_database) as cursor:
        for name in names:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def new_database(migrated_database, postgres_databases, tmp_path):
    """Hands out new, empty databases of the suite's kind (their URLs)."""
    handed_out = iter(postgres_databases)

    def make():
        if migrated_database.startswith("sqlite"):
            instance = tmp_path / f"instance-{secrets.token_hex(4)}"  # not made here: restore makes it
            return "sqlite:///" + str(instance / "sportello.db")
        url = next(handed_out)
        schema.empty_postgres(url)  # what an earlier test restored into it
        return url

    return make


@pytest.fixture
def fresh_database_url(new_database):
    return new_database()


class server_connection:
    """A cursor on the PostgreSQL server of `url`, outside any transaction (CREATE DATABASE)."""

    def __init__(self, url):
        self.connection = psycopg2.connect(url)
        self.connection.autocommit = True

    def __enter__(self):
        return self.connection.cursor()

    def __exit__(self, *exc):
        self.connection.close()


# --- customers writing ----------------------------------------------------------------------------

class Writers:
    """Customers replying to their tickets, each with a PDF attached, in threads and through the
    portal's pages, as fast as the portal answers. `acknowledged` holds each reply the portal
    confirmed (303), in order."""

    def __init__(self, app, count=2):
        self.app = app
        self.acknowledged = []
        self.failures = []
        self.changed = threading.Condition()
        self.stopping = threading.Event()
        self.tickets = []
        with app.app_context():
            for n in range(count):
                customer = make_customer(code=f"00610{n}")
                make_supply_point(customer, code=f"PR00610{n}", pod_pdr=f"IT001E0061{n:04d}")
                make_user(customer, username=f"writer{n}", email=f"writer{n}@example.it")
                self.tickets.append(Ticket.create(customer=customer, subject="Letture", category="other",
                                                  status=Ticket.OPEN).id)
        self.threads = [threading.Thread(target=self.write, args=(n,)) for n in range(count)]

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in self.threads)

    def write(self, n):
        try:
            client = self.app.test_client()
            assert login(client, f"writer{n}", PASSWORD).status_code == 303
            ticket, point = self.tickets[n], f"sp=PR00610{n}"
            for reply in range(REPLIES_PER_WRITER):
                if self.stopping.is_set():
                    return
                page = client.get(f"/ticket/{ticket}?{point}")
                assert page.status_code == 200
                key = re.search(r'name="idempotency_key" type="hidden" value="(\w+)"', page.get_data(as_text=True))
                body = f"writer {n} reply {reply}"
                response = client.post(f"/ticket/{ticket}/risposta?{point}", content_type="multipart/form-data", data={
                    "csrf_token": csrf_from(page), "idempotency_key": key.group(1), "message": body,
                    "attachments": [(io.BytesIO(pdf_bytes(body)), f"lettura-{reply}.pdf")]})
                assert response.status_code == 303, response.status_code
                with self.changed:
                    self.acknowledged.append(body)
                    self.changed.notify_all()
        except BaseException as error:  # seen by the test, not lost in the thread
            with self.changed:
                self.failures.append(error)
                self.changed.notify_all()

    def wait_for(self, count):
        """Until `count` replies are acknowledged (a writer that failed ends the wait)."""
        with self.changed:
            reached = self.changed.wait_for(lambda: len(self.acknowledged) >= count or self.failures, timeout=60)
        assert reached and not self.failures, self.failures


# --- the whole round -----------------------------------------------------------------------------

def test_a_backup_taken_while_customers_write_restores_into_a_new_instance(
        app, make_app, customer, points, owner, fresh_database_url, tmp_path, monkeypatch):
    with app.app_context():
        pdf_path, _ = store_pdf(app, INVOICE_PDF)
        invoice = make_invoice(customer, points[0], pdf_path=pdf_path)
    destination = tmp_path / "backups" / "2026-12-02"  # backups/ made by the command
    # Between the database's snapshot and the copy of the file store, customers go on writing:
    # the copy waits until two more replies (each with a new file) are acknowledged.
    writers = Writers(app)
    copy_file_store = backups.copy_file_store

    def copy_after_more_writes(store, target):
        writers.wait_for(len(writers.acknowledged) + 2)
        return copy_file_store(store, target)

    monkeypatch.setattr(backups, "copy_file_store", copy_after_more_writes)
    with writers:
        writers.wait_for(5)
        acknowledged_before = list(writers.acknowledged)
        result = app.test_cli_runner().invoke(args=["backup", str(destination)])
        acknowledged_after = len(writers.acknowledged)
    acknowledged_in_all = len(writers.acknowledged)  # the writers stopped: every committed reply is counted
    assert result.exit_code == 0, result.output
    assert re.fullmatch(rf"Backup written to {destination}: \w+ database [\d.]+ MB, \d+ stored file\(s\) [\d.]+ MB, "
                        r"schema 0\d\d_\w+, in [\d.]+ s\.\n", result.output)
    assert acknowledged_after >= len(acknowledged_before) + 2  # writes went on during the backup
    assert not list(destination.parent.glob(".*incomplete*"))  # the working folder became DEST
    check_manifest(destination, app.config["DATABASE_URL"])
    release_connections()

    restored_store = tmp_path / "restored-files"
    restored = make_app(DATABASE_URL=fresh_database_url, FILE_STORE=str(restored_store))
    result = restored.test_cli_runner().invoke(args=["restore", str(destination)])
    assert result.exit_code == 0, result.output
    assert f"Restored {destination}" in result.output

    client = restored.test_client()
    assert login(client, "005007", PASSWORD).status_code == 303
    response = client.get(f"/fatture/{invoice.id}/pdf")
    assert response.status_code == 200
    assert response.data == INVOICE_PDF

    with restored.app_context():
        replies = {m.body: m for m in TicketMessage.select()}
        assert set(acknowledged_before) <= set(replies)  # every write acknowledged before the backup began
        assert len(replies) <= acknowledged_in_all  # and nothing else
        for message in replies.values():  # each reply came with its file, in the same transaction
            (attachment,) = TicketAttachment.select().where(TicketAttachment.message == message)
            assert (restored_store / attachment.file).read_bytes() == pdf_bytes(message.body)
        assert orphans() == []
        stored = [path for (path,) in Invoice.select(Invoice.pdf_path).where(Invoice.pdf_path.is_null(False)).tuples()]
        stored += [path for (path,) in TicketAttachment.select(TicketAttachment.file).tuples()]
        for path in stored:  # a stored file is named by its SHA-256
            assert hashlib.sha256((restored_store / path).read_bytes()).hexdigest() == Path(path).stem
        # The portal writes on where it was (PostgreSQL's sequences came with the dump).
        newest = max(replies.values(), key=lambda m: m.id)
        assert TicketMessage.create(ticket=newest.ticket_id, body="Dopo il ripristino").id > newest.id


def check_manifest(backup, database_url):
    """The manifest lists every file of the backup with its size and SHA-256, and says what
    database and schema it holds."""
    manifest = json.loads((backup / "manifest.json").read_text())
    on_disk = {p.relative_to(backup).as_posix() for p in backup.rglob("*") if p.is_file()} - {"manifest.json"}
    assert {e["path"] for e in manifest["files"]} == on_disk
    for listed in manifest["files"]:
        data = (backup / listed["path"]).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (listed["size"], listed["sha256"])
    kind = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    assert manifest["database"] == {"kind": kind, "file": {"sqlite": "database.sqlite3", "postgresql": "database.dump"}[kind]}
    latest = max(p.stem for p in schema.MIGRATIONS.glob("[0-9]*.py"))
    assert manifest["schema"]["last"] == latest == manifest["schema"]["migrations"][-1]
    assert {"python", "peewee", "sqlite" if kind == "sqlite" else "pg_dump"} <= set(manifest["versions"])
    assert manifest["created_at"].endswith("+00:00")


def orphans():
    """Rows whose foreign key names a row that is not there: [(table, column, count)]."""
    found = []
    for model in models.ALL_MODELS:
        for field in model._meta.sorted_fields:
            if isinstance(field, pw.ForeignKeyField):
                target = field.rel_model.alias()  # an alias: a table may point at itself
                key = getattr(target, field.rel_field.name)
                count = (model.select().join(target, pw.JOIN.LEFT_OUTER, on=(field == key))
                         .where(field.is_null(False), key.is_null()).count())
                if count:
                    found.append((model._meta.table_name, field.column_name, count))
    return found


def no_tables(app):
    with app.app_context():
        url = app.config["DATABASE_URL"]
        if url.startswith("sqlite") and not backups.sqlite_path(url).exists():
            return True
        return models.db_wrapper.database.get_tables() == []


# --- refusals ------------------------------------------------------------------------------------

@pytest.fixture
def backup_folder(app, customer, points, tmp_path):
    """A backup of an instance with an invoice's PDF in its file store."""
    with app.app_context():
        pdf_path, _ = store_pdf(app, INVOICE_PDF)
        make_invoice(customer, points[0], pdf_path=pdf_path)
    destination = tmp_path / "backup"
    result = app.test_cli_runner().invoke(args=["backup", str(destination)])
    assert result.exit_code == 0, result.output
    release_connections()
    return destination


def test_restore_refuses_a_damaged_backup_naming_the_file(backup_folder, make_app, fresh_database_url, tmp_path):
    manifest = json.loads((backup_folder / "manifest.json").read_text())
    damaged = next(e["path"] for e in manifest["files"] if e["path"].endswith(".pdf"))
    data = bytearray((backup_folder / damaged).read_bytes())
    data[len(data) // 2] ^= 1  # one bit, same size
    (backup_folder / damaged).write_bytes(bytes(data))
    target = make_app(DATABASE_URL=fresh_database_url, FILE_STORE=str(tmp_path / "restored-files"))
    result = target.test_cli_runner().invoke(args=["restore", str(backup_folder)])
    assert result.exit_code == 1
    assert f"Error: The backup is damaged: {damaged} is not the file that was backed up" in result.output
    assert no_tables(target)  # nothing was written
    assert not (tmp_path / "restored-files").exists()


def test_restore_refuses_a_target_that_is_not_empty(backup_folder, make_app, owner, fresh_database_url, tmp_path):
    # Into the instance the backup came from: its database has tables and data.
    source = make_app()
    result = source.test_cli_runner().invoke(args=["restore", str(backup_folder)])
    assert result.exit_code == 1
    assert "Error: The database DATABASE_URL names is not empty" in result.output
    release_connections()
    # An empty database but a file store holding files of its own.
    store = tmp_path / "used-store"
    (store / "ab").mkdir(parents=True)
    (store / "ab" / "other.pdf").write_bytes(b"%PDF-1.4 someone else's")
    target = make_app(DATABASE_URL=fresh_database_url, FILE_STORE=str(store))
    result = target.test_cli_runner().invoke(args=["restore", str(backup_folder)])
    assert result.exit_code == 1
    assert f"Error: The file store {store} is not empty (ab/other.pdf...)" in result.output
    assert (store / "ab" / "other.pdf").read_bytes() == b"%PDF-1.4 someone else's"
    assert no_tables(target)


def test_restore_refuses_another_kind_of_database(backup_folder, make_app, tmp_path):
    manifest = json.loads((backup_folder / "manifest.json").read_text())
    kind = manifest["database"]["kind"]
    manifest["database"]["kind"] = {"sqlite": "postgresql", "postgresql": "sqlite"}[kind]
    (backup_folder / "manifest.json").write_text(json.dumps(manifest))
    target = make_app(FILE_STORE=str(tmp_path / "restored-files"))  # refused before its emptiness is asked
    result = target.test_cli_runner().invoke(args=["restore", str(backup_folder)])
    assert result.exit_code == 1
    assert f"and DATABASE_URL names a {kind} one: restore it into the same kind of database" in result.output


def test_backup_refuses_an_existing_destination_or_one_inside_the_file_store(app, tmp_path):
    destination = tmp_path / "backup"
    destination.mkdir()
    (destination / "notes.txt").write_text("yesterday's")
    result = app.test_cli_runner().invoke(args=["backup", str(destination)])
    assert result.exit_code == 1
    assert f"Error: {destination} already exists and is not an empty folder" in result.output
    assert [p.name for p in destination.iterdir()] == ["notes.txt"]
    assert [p.name for p in tmp_path.iterdir() if "backup" in p.name] == ["backup"]  # no working folder left
    inside = Path(app.config["FILE_STORE"]) / "backups" / "2026-12-02"
    result = app.test_cli_runner().invoke(args=["backup", str(inside)])
    assert result.exit_code == 1
    assert f"Error: {inside} is inside the file store, which the backup copies" in result.output


def test_an_interrupted_backup_leaves_nothing_taken_for_a_backup(app, tmp_path, monkeypatch):
    def disk_full(store, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(backups, "copy_file_store", disk_full)
    destination = tmp_path / "backup"
    result = app.test_cli_runner().invoke(args=["backup", str(destination)])
    assert result.exit_code == 1
    assert not destination.exists()
    assert not [p for p in tmp_path.iterdir() if "backup" in p.name]


def test_pg_dump_and_pg_restore_get_the_password_from_the_environment_not_the_command_line():
    dbname, environment = backups.postgres_connection(
        "postgresql://sportello:s%40cr%3Aet@db.example.it:5433/sportello?sslmode=require")
    assert dbname == "postgresql://sportello@db.example.it:5433/sportello?sslmode=require"
    assert environment["PGPASSWORD"] == "s@cr:et"
    dbname, environment = backups.postgres_connection("postgresql://sportello@127.0.0.1/sportello")
    assert dbname == "postgresql://sportello@127.0.0.1/sportello" and "PGPASSWORD" not in environment
    assert backups.postgres_connection("postgresql:///sportello")[0] == "postgresql:///sportello"  # the socket


def test_a_backup_of_an_older_schema_is_restored_and_upgraded(make_app, new_database, tmp_path):
    migrations = sorted(p.stem for p in schema.MIGRATIONS.glob("[0-9]*.py"))
    older_database = new_database()
    if older_database.startswith("sqlite"):
        backups.sqlite_path(older_database).parent.mkdir()
    older = make_app(DATABASE_URL=older_database, FILE_STORE=str(tmp_path / "older-files"))
    with older.app_context():  # the portal as it was one release ago
        schema.router(models.db_wrapper.database).run(migrations[-2])
        models.db_wrapper.database.execute_sql(  # SQL, not the model: models.py is one migration ahead
            "INSERT INTO customer (code, name, kind, tax_code, updated_at) "
            "VALUES ('005007', 'ROSSI MARIO', 'person', 'RSSMRA70A01H199X', '2026-12-01 10:00:00')")
    result = older.test_cli_runner().invoke(args=["backup", str(tmp_path / "backup")])
    assert result.exit_code == 0, result.output
    assert f"schema {migrations[-2]}" in result.output
    release_connections()

    target = make_app(DATABASE_URL=new_database(), FILE_STORE=str(tmp_path / "restored-files"))
    result = target.test_cli_runner().invoke(args=["restore", str(tmp_path / "backup")])
    assert result.exit_code == 0, result.output
    assert "schema upgraded by 1 migration(s)" in result.output
    with target.app_context():
        assert schema.pending(models.db_wrapper.database) == []
        assert [c.name for c in models.Customer.select()] == ["ROSSI MARIO"]
