"""`flask backup DEST` and `flask restore SRC`: the database and the file store, copied while the
portal serves, with a manifest of checksums; restored into an empty instance only.

A backup is a folder:
    manifest.json        what is in it: every file's path, size and SHA-256, the schema's
                         migrations, the database's kind, the time, the tools' versions
    database.sqlite3     SQLite: a copy made by SQLite's backup API (one snapshot)
    database.dump        PostgreSQL: `pg_dump --format=custom` (one snapshot)
    files/...            the file store: invoices' PDFs, documents, tickets' attachments, photos

Consistency: the database is copied first, then the file store. Stored files are named by their
SHA-256, written before the row that names them is committed, and never changed or deleted, so
every file the copied database names is already in the store when the store is copied (files
stored later may be in the backup too: nothing names them, they do no harm).

The backup is written in a hidden folder beside DEST and renamed to DEST at the end, the
manifest last: a folder named DEST with a manifest is a whole backup, anything else is not.
"""
import datetime
import hashlib
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import tempfile
import time
import urllib.parse
from contextlib import closing
from pathlib import Path

import peewee
from playhouse.db_url import parse as parse_database_url

import schema
from database import db_wrapper, is_sqlite

FORMAT = 1  # of the manifest; a later Sportello that changes the layout raises it
MANIFEST = "manifest.json"
SQLITE_FILE = "database.sqlite3"
POSTGRES_FILE = "database.dump"
FILES = "files"  # the file store's copy, inside the backup
CHUNK = 1 << 20


class BackupError(Exception):
    """A backup or restore that cannot be done; str() says why, for the person who ran it."""


# --- backup ---------------------------------------------------------------------------------------

def backup(config, destination):
    """Write a backup of the configured database and file store to `destination` (a new or empty
    folder). Returns a one-line summary."""
    started = time.monotonic()
    destination = Path(destination).absolute()
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise BackupError(f"{destination} already exists and is not an empty folder: "
                          "give a new name for each backup (for example with the date).")
    if destination.resolve().is_relative_to(Path(config["FILE_STORE"]).resolve()):
        raise BackupError(f"{destination} is inside the file store, which the backup copies: choose a folder outside it.")
    destination.parent.mkdir(parents=True, exist_ok=True)
    database = db_wrapper.database
    kind = "sqlite" if is_sqlite(database) else "postgresql"
    migrations = applied_migrations(database)
    # Personal data and password hashes: mkdtemp makes the folder readable by its owner only.
    working = Path(tempfile.mkdtemp(prefix=f".{destination.name}.incomplete-", dir=destination.parent))
    try:
        if kind == "sqlite":
            copy_sqlite(sqlite_path(config["DATABASE_URL"]), working / SQLITE_FILE)
            versions = {"sqlite": sqlite3.sqlite_version}
            database_file = SQLITE_FILE
        else:
            versions = dump_postgres(config["DATABASE_URL"], working / POSTGRES_FILE)
            database_file = POSTGRES_FILE
        entries = [entry(working, working / database_file)]
        entries += copy_file_store(Path(config["FILE_STORE"]), working / FILES)
        manifest = {
            "format": FORMAT,
            "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "database": {"kind": kind, "file": database_file},
            "schema": {"migrations": migrations, "last": migrations[-1] if migrations else None},
            "versions": dict(versions, python=platform.python_version(), peewee=peewee.__version__),
            "files": entries,
        }
        write_durably(working / MANIFEST, json.dumps(manifest, indent=1).encode())
        sync_folder(working)
        if destination.exists():
            destination.rmdir()  # empty (checked above): rename() takes its place
        os.rename(working, destination)
        sync_folder(destination.parent)
    except BaseException:
        shutil.rmtree(working, ignore_errors=True)
        raise
    stored = [e for e in entries if e["path"].startswith(FILES + "/")]
    return (f"Backup written to {destination}: {kind} database {megabytes(entries[0]['size'])}, "
            f"{len(stored)} stored file(s) {megabytes(sum(e['size'] for e in stored))}, "
            f"schema {manifest['schema']['last']}, in {time.monotonic() - started:.1f} s.")


def applied_migrations(database):
    try:
        if "migratehistory" not in tables_of(database):
            raise BackupError("The database has no schema: nothing to back up (run init-db first).")
        return [name for (name,) in database.execute_sql("SELECT name FROM migratehistory ORDER BY id")]
    finally:
        if not is_sqlite(database) and not database.is_closed():
            database.close()  # back to the pool: the rest of the backup does not use it


def tables_of(database):
    try:
        return database.get_tables()
    except peewee.OperationalError as error:
        raise BackupError(f"The database DATABASE_URL names does not answer: {str(error).strip()}") from None


def sqlite_path(url):
    path = parse_database_url(url).get("database")
    if not path or path == ":memory:":
        raise BackupError("DATABASE_URL names no SQLite file.")
    return Path(path)


def copy_sqlite(source, target):
    """One snapshot of a live SQLite database: the backup API copies it in a single step, inside
    one read transaction, which in WAL mode lets the portal's writers go on."""
    with closing(sqlite3.connect(source, timeout=30)) as live, \
            closing(sqlite3.connect(target)) as copy:
        live.backup(copy)
        copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file, no -wal beside it
    with open(target, "rb") as f:
        os.fsync(f.fileno())


def dump_postgres(url, target):
    """pg_dump's snapshot of the database; returns the versions of pg_dump and the server."""
    dbname, environment = postgres_connection(url)
    pg_dump = tool("pg_dump")
    result = subprocess.run([pg_dump, "--format=custom", f"--file={target}", f"--dbname={dbname}"],
                            env=environment, capture_output=True, text=True)
    if result.returncode != 0:
        raise BackupError(f"pg_dump failed: {result.stderr.strip()}")
    with open(target, "rb") as f:
        os.fsync(f.fileno())
    server = db_wrapper.database.execute_sql("SHOW server_version").fetchone()[0]
    db_wrapper.database.close()
    return {"pg_dump": tool_version(pg_dump), "postgresql": server}


def copy_file_store(store, target):
    """Copy every file of the store, hashing as it copies; the manifest's entries."""
    entries = []
    if not store.is_dir():
        return entries
    for folder, subfolders, names in os.walk(store):
        subfolders.sort()
        for name in sorted(names):
            if name.endswith(".part"):  # a file being written: its final name comes with its row
                continue
            source = Path(folder) / name
            relative = source.relative_to(store)
            copied = target / relative
            copied.parent.mkdir(parents=True, exist_ok=True)
            try:
                digest, size = copy_hashing(source, copied)
            except FileNotFoundError:  # gone meanwhile (an import's upload folder, done)
                continue
            entries.append({"path": f"{FILES}/{relative.as_posix()}", "size": size, "sha256": digest})
    return entries


def copy_hashing(source, target):
    digest, size = hashlib.sha256(), 0
    with open(source, "rb") as reader, open(target, "wb") as writer:
        for block in iter(lambda: reader.read(CHUNK), b""):
            digest.update(block)
            size += len(block)
            writer.write(block)
        writer.flush()
        os.fsync(writer.fileno())
    shutil.copystat(source, target)
    return digest.hexdigest(), size


def entry(root, path):
    digest, size = sha256_of(path)
    return {"path": path.relative_to(root).as_posix(), "size": size, "sha256": digest}


# --- restore --------------------------------------------------------------------------------------

def restore(config, source):
    """Restore the backup in `source` into the configured database and file store, which must be
    empty; then bring the schema up to date. Returns a one-line summary."""
    source = Path(source).absolute()
    manifest = read_manifest(source)
    verify(source, manifest)
    database = db_wrapper.database
    kind = "sqlite" if is_sqlite(database) else "postgresql"
    if manifest["database"]["kind"] != kind:
        raise BackupError(f"This backup is of a {manifest['database']['kind']} database and DATABASE_URL names a "
                          f"{kind} one: restore it into the same kind of database.")
    unknown = [name for name in manifest["schema"]["migrations"] if name not in known_migrations()]
    if unknown:
        raise BackupError(f"This backup was made by a newer Sportello (its schema has {unknown[-1]}): "
                          "install that version (or a later one) first.")
    if kind == "sqlite":
        sqlite_path(config["DATABASE_URL"]).parent.mkdir(parents=True, exist_ok=True)
    tables = tables_of(database)
    database.close()  # the copy below replaces what this connection saw
    if tables:
        raise BackupError(f"The database DATABASE_URL names is not empty ({len(tables)} tables): restore only into "
                          "a new, empty database (restore before init-db).")
    store = Path(config["FILE_STORE"])
    backed_up = {e["path"].removeprefix(FILES + "/") for e in manifest["files"] if e["path"].startswith(FILES + "/")}
    foreign = [path for path in stored_files(store) if path.removesuffix(".part") not in backed_up]
    if foreign:
        raise BackupError(f"The file store {store} is not empty ({foreign[0]}...): restore only into an empty one.")

    # The files first, the database last: copying the database is all or nothing, so a restore
    # interrupted before it ends leaves an empty database, and can be run again (the store may
    # then hold some of this backup's files: they are copied again).
    for listed in manifest["files"]:
        if not listed["path"].startswith(FILES + "/"):
            continue
        target = store / listed["path"].removeprefix(FILES + "/")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        digest, _ = copy_hashing(source / listed["path"], partial)
        if digest != listed["sha256"]:  # changed since it was verified
            raise BackupError(f"The backup is damaged: {listed['path']} changed while it was restored.")
        os.replace(partial, target)
    database_file = source / manifest["database"]["file"]
    if kind == "sqlite":
        restore_sqlite(database_file, sqlite_path(config["DATABASE_URL"]))
    else:
        restore_postgres(database_file, config["DATABASE_URL"])
    applied = schema.upgrade(database)
    upgraded = f", schema upgraded by {applied} migration(s)" if applied else ""
    return (f"Restored {source} (made {manifest['created_at']}): {kind} database, "
            f"{len(backed_up)} stored file(s){upgraded}.")


def read_manifest(source):
    path = source / MANIFEST
    if not path.is_file():
        raise BackupError(f"{source} is not a whole Sportello backup: it has no {MANIFEST} "
                          "(an interrupted backup has none).")
    try:
        manifest = json.loads(path.read_text())
        if manifest["format"] != FORMAT:
            raise BackupError(f"{path} is of format {manifest['format']}, this Sportello reads {FORMAT}.")
        manifest["database"]["kind"], manifest["database"]["file"], manifest["schema"]["migrations"]
        files = {(e["path"], e["size"], e["sha256"]) for e in manifest["files"]}
    except (ValueError, KeyError, TypeError):
        raise BackupError(f"{path} is damaged (not the manifest a backup writes).") from None
    for relative, _, _ in files:
        if relative.startswith("/") or ".." in relative.split("/"):
            raise BackupError(f"{path} is damaged (a path outside the backup: {relative}).")
    return manifest


def verify(source, manifest):
    """Every file the manifest lists is there, with its size and SHA-256: a damaged backup is
    refused before anything is written."""
    for listed in manifest["files"]:
        path = source / listed["path"]
        if not path.is_file():
            raise BackupError(f"The backup is damaged: {listed['path']} is missing.")
        digest, size = sha256_of(path)
        if size != listed["size"] or digest != listed["sha256"]:
            raise BackupError(f"The backup is damaged: {listed['path']} is not the file that was backed up "
                              "(its size or SHA-256 differs). Restore another backup.")


def known_migrations():
    return {path.stem for path in schema.MIGRATIONS.glob("[0-9]*.py")}


def stored_files(store):
    if not store.is_dir():
        return []
    return sorted(path.relative_to(store).as_posix() for path in store.rglob("*") if not path.is_dir())


def restore_sqlite(backup_file, target):
    """Copy the file in under a temporary name, then rename it: all or nothing. The target has
    no tables (checked): an empty file and its -wal/-shm may go."""
    partial = target.with_name(f".{target.name}.restoring")
    shutil.copyfile(backup_file, partial)
    with open(partial, "rb") as f:
        os.fsync(f.fileno())
    for suffix in ("-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    os.replace(partial, target)
    sync_folder(target.parent)


def restore_postgres(dump, url):
    dbname, environment = postgres_connection(url)
    # --single-transaction: all or nothing. Ownership and grants are the old server's: the
    # tables belong to DATABASE_URL's user instead.
    result = subprocess.run([tool("pg_restore"), "--no-owner", "--no-privileges", "--single-transaction",
                             f"--dbname={dbname}", str(dump)], env=environment, capture_output=True, text=True)
    if result.returncode != 0:
        raise BackupError(f"pg_restore failed, nothing was restored into the database: {result.stderr.strip()}")


# --- shared ---------------------------------------------------------------------------------------

def postgres_connection(url):
    """DATABASE_URL without its password (for the command line, which any local user may read in
    the process list), and the environment with PGPASSWORD for pg_dump and pg_restore."""
    parts = urllib.parse.urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    environment = dict(os.environ)
    environment.pop("PGPASSWORD", None)
    if password:
        environment["PGPASSWORD"] = urllib.parse.unquote(password)
    query = f"?{parts.query}" if parts.query else ""
    # Not urlunsplit: it turns postgresql:///sportello (the local socket) into postgresql:/sportello.
    return f"{parts.scheme}://{user}{at}{host}{parts.path}{query}", environment


def tool(name):
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"{name} is not installed: `apt install postgresql-client` (the same major version as "
                          "the server, or later).")
    return path


def tool_version(path):
    return subprocess.run([path, "--version"], capture_output=True, text=True).stdout.strip()


def sha256_of(path):
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def write_durably(path, data):
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def sync_folder(path):
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def megabytes(size):
    return f"{size / 1e6:.1f} MB"
