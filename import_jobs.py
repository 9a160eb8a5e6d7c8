"""Imports started from the back office: the uploaded files are kept in a folder of their own
in the file store, and the import runs in a background thread of a web process, one at a time
across all processes and servers. The job's row carries its progress (polled by the page) and,
at the end, the same report the command prints.

The upload's folder is in FILE_STORE, which every server shares (README, More than one
server), and the job's row names it relative to FILE_STORE: whichever server claims the job
finds its files, wherever they were uploaded."""
import hashlib
import json
import logging
import os
import secrets
import shutil
import socket
import threading
import zipfile
import zlib
from datetime import timedelta
from pathlib import Path, PurePosixPath

from flask import current_app

import audit
import importer
from database import one_at_a_time, write_transaction
from models import ImportJob, db_wrapper, utcnow

log = logging.getLogger(__name__)

HEARTBEAT = 30  # seconds between signs of life of a running job
STALE = timedelta(minutes=5)  # a running job silent for longer has died with its process
CLAIM_LOCK = 4001  # the advisory lock of claim_next, on PostgreSQL
UPLOADS = "imports"  # the uploads' folder inside FILE_STORE
READING_SHARE = 0.9  # of the progress bar; writing to the database fills the rest
ALLOWED = {".csv", ".pdf", ".txt", ".xlsx"}


class UploadProblem(ValueError):
    pass


def save_upload(uploads, folder, limit):
    """Store the uploaded CSVs, PDFs or zips of them in `folder`. Returns what was received, each
    file as {name, size, sha256}, so a disputed import can be traced to its files: a zip and,
    after it, each file taken from it (with "zip", the zip's name). On an UploadProblem the
    caller removes the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files, total = [], 0
    for upload in uploads:
        name = PurePosixPath((upload.filename or "").replace("\\", "/")).name
        if not name:
            continue
        suffix = PurePosixPath(name).suffix.lower()
        if suffix == ".zip":
            files.append(dict(name=name, **fingerprint(upload.stream)))
            files += [dict(member, zip=name) for member in unpack(upload.stream, folder, limit - total)]
        elif suffix in ALLOWED:
            with open(folder / name, "wb") as out:
                files.append(dict(name=name, **copy(upload.stream, out)))
        else:
            raise UploadProblem(f"{name}: tipo di file non ammesso (CSV, PDF o uno zip che li contiene)")
        total = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        if total > limit:
            raise UploadProblem(f"i file superano {limit // (1024 * 1024)} MB")
    if not files:
        raise UploadProblem("nessun file caricato")
    return files


def copy(source, out=None):
    """Read a stream to its end, into `out` if given; returns the size and SHA-256 of what was read."""
    digest, size = hashlib.sha256(), 0
    for chunk in iter(lambda: source.read(1 << 20), b""):
        digest.update(chunk)
        if out is not None:
            out.write(chunk)
        size += len(chunk)
    return {"size": size, "sha256": digest.hexdigest()}


def fingerprint(stream):
    """The size and SHA-256 of a seekable stream, which is left at its start."""
    stream.seek(0)
    result = copy(stream)
    stream.seek(0)
    return result


def unpack(stream, folder, limit):
    """Extract a zip without trusting it: no path outside the folder, no more than `limit`
    bytes once unpacked (the sizes it declares are checked before anything is written); a
    damaged member is an UploadProblem, not an error. Returns each file taken as {name, size,
    sha256}."""
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, EOFError):
        raise UploadProblem("lo zip è illeggibile") from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if sum(m.file_size for m in members) > limit:
            raise UploadProblem(f"lo zip, estratto, supera {limit // (1024 * 1024)} MB")
        files = []
        for member in members:
            path = PurePosixPath(member.filename.replace("\\", "/"))
            if path.is_absolute() or ".." in path.parts:
                raise UploadProblem(f"{member.filename}: percorso non ammesso nello zip")
            if path.suffix.lower() not in ALLOWED or path.name.startswith("."):
                continue  # e.g. __MACOSX and other clutter
            if member.flag_bits & 0x1:
                raise UploadProblem(f"{member.filename}: il file nello zip è protetto da password")
            target = folder.joinpath(*path.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with archive.open(member) as source, open(target, "wb") as out:
                    files.append(dict(name=str(path), **copy(source, out)))
            except NotImplementedError:
                raise UploadProblem(f"{member.filename}: il file nello zip è compresso in un modo non supportato") from None
            except (zipfile.BadZipFile, zlib.error, EOFError):  # a bad CRC, truncated or garbled data
                raise UploadProblem(f"{member.filename}: il file nello zip è danneggiato") from None
        return files


def new_folder():
    """A new upload's folder, as the job's row names it: relative to FILE_STORE."""
    return f"{UPLOADS}/{secrets.token_hex(8)}"


def local_path(folder):
    """Where a job's folder is on this server: inside this server's FILE_STORE mount. A job
    queued before the uploads moved into the file store names an absolute path, which pathlib
    keeps as it is."""
    return Path(current_app.config["FILE_STORE"]) / folder


def remove_upload(folder):
    """Delete an upload's files: only ever a folder of the uploads, never the store around it."""
    path = local_path(folder)
    if path.name and path.parent.name == UPLOADS:
        shutil.rmtree(path, ignore_errors=True)


def create(user, folder, files):
    return ImportJob.create(started_by=user, folder=str(folder), files=json.dumps(files))


def import_folders(job):
    """The folders of the job that hold the contract's CSVs (a zip may put them in a subfolder)."""
    root = local_path(job.folder)
    return sorted({str(p.parent) for p in root.rglob("*.csv") if p.name in importer.SPECS})


def start(app):
    """Run the queued jobs in a background thread, unless one is already running."""
    threading.Thread(target=run_queue, args=(app,), name="sportello-import", daemon=True).start()


def run_queue(app):
    with app.app_context():
        while True:
            with db_wrapper.database.connection_context():
                job = claim_next()
                if job is None:
                    return
                run(app, job)


def claim_next():
    """The oldest queued job, now running; None if there is none or another job runs. Every
    process runs the queue, so the claims take turns: two at once could each find none running
    and start two jobs side by side."""
    with one_at_a_time(CLAIM_LOCK):
        if running_elsewhere(utcnow() - STALE):
            # Whoever runs that import (this server or another) takes the queue after it.
            log.info("another import is running: the queued ones wait for it")
            return None
        job = ImportJob.select().where(ImportJob.status == ImportJob.QUEUED).order_by(ImportJob.id).first()
        if job is None:
            return None
        claimed = ImportJob.update(status=ImportJob.RUNNING, heartbeat_at=utcnow()).where(
            ImportJob.id == job.id, ImportJob.status == ImportJob.QUEUED).execute()
        return ImportJob.get_by_id(job.id) if claimed else None


def running_elsewhere(fresh):
    """Whether a job is running in a live process. One silent since before `fresh` died with
    its process: it is marked failed."""
    for job in ImportJob.select().where(ImportJob.status == ImportJob.RUNNING):
        if job.heartbeat_at and job.heartbeat_at > fresh:
            return True
        job.status, job.finished_at = ImportJob.FAILED, utcnow()
        job.report = json.dumps({"problems": ["l'importazione si è interrotta (processo terminato)"], "summary": []})
        job.save()
        remove_upload(job.folder)  # an upload again starts afresh
    return False


def run(app, job):
    folders = import_folders(job)
    sizes = {}
    for folder in folders:
        for name in importer.SPECS:
            path = Path(folder) / name
            if path.exists():
                sizes[(folder, name)] = path.stat().st_size
    total = max(sum(sizes.values()), 1)
    done_before = {}
    running_total = 0
    for key in sorted(sizes, key=lambda k: importer.ORDER.index(k[1])):
        done_before[key[1]] = running_total
        running_total += sizes[key]
    sizes_by_name = {name: size for (_, name), size in sizes.items()}
    last = {"at": 0.0}

    def progress(name, fraction):
        share = (done_before.get(name, 0) + fraction * sizes_by_name.get(name, 0)) / total * READING_SHARE
        now = utcnow().timestamp()
        if fraction >= 1 or now - last["at"] > 0.5:  # a row update twice a second at most
            last["at"] = now
            ImportJob.update(progress=min(share, READING_SHARE), current_file=name, heartbeat_at=utcnow()).where(
                ImportJob.id == job.id).execute()

    beating = threading.Event()
    heart = threading.Thread(target=heartbeat, args=(app, job.id, beating), daemon=True)
    heart.start()
    try:
        if not folders:
            report = importer.Report()
            report.problem("-", 0, "-", "nessun file del tracciato tra quelli caricati (" + ", ".join(importer.ORDER) + ")")
        else:
            report = importer.run(folders, app.config["FILE_STORE"], progress=progress)
        status = ImportJob.REFUSED if report.problems else ImportJob.DONE
        result = {"problems": report.problems, "summary": report.lines()}
    except Exception as error:  # noqa: BLE001 - the job says it failed; the log has the rest
        log.exception("import job %s failed", job.id)
        status, result = ImportJob.FAILED, {"problems": [f"errore imprevisto: {error}"], "summary": []}
    finally:
        beating.set()
    with write_transaction():
        ImportJob.update(status=status, progress=1.0, report=json.dumps(result, ensure_ascii=False),
                         finished_at=utcnow(), current_file=None).where(ImportJob.id == job.id).execute()
        audit.record("import" if status == ImportJob.DONE else "import_refused", user=job.started_by,
                     job=job.id, summary=result["summary"], problems=len(result["problems"]), server=this_server())
    remove_upload(job.folder)  # the data now lives in the database


def this_server():
    """Which server and process ran a job, for its audit entry: with several servers, where to
    read its log."""
    return f"{socket.gethostname()} pid {os.getpid()}"


def heartbeat(app, job_id, stop):
    """A running job's sign of life, also during the long write at the end."""
    with app.app_context():
        while not stop.wait(HEARTBEAT):
            with db_wrapper.database.connection_context():
                ImportJob.update(heartbeat_at=utcnow()).where(ImportJob.id == job_id).execute()
