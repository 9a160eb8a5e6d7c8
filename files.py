"""The portal's file store (invoices' PDFs, documents): checking and keeping the files the import
and the back office bring in, and serving them with the right type, a safe name, and no copy in a
shared cache."""
import hashlib
import os
import re
import secrets
import shutil
import unicodedata
import zipfile
from pathlib import Path

from flask import abort, current_app, send_file, stream_with_context
from werkzeug.security import safe_join


def download_name(title, suffix):
    """'Report consumi 2026' -> 'Report-consumi-2026.pdf': ASCII, no path, no quotes."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    stem = re.sub(r"[^A-Za-z0-9]+", "-", ascii_title).strip("-")[:80] or "documento"
    return stem + suffix


def send_stored(relative, content_type, title, as_attachment=False):
    path = safe_join(current_app.config["FILE_STORE"], relative)
    if path is None or not Path(path).is_file():
        abort(404)
    response = send_file(path, mimetype=content_type, as_attachment=as_attachment,
                         download_name=download_name(title, Path(relative).suffix), conditional=True,
                         etag=True, max_age=0)
    # Personal data: the browser may keep it, no proxy or shared cache may.
    response.headers["Cache-Control"] = "private, no-store"
    return response


class _Chunks:
    """A write-only file whose writes are collected and handed out as they come."""

    def __init__(self):
        self.parts = []

    def write(self, data):
        self.parts.append(bytes(data))
        return len(data)

    def flush(self):
        pass

    def take(self):
        data, self.parts = b"".join(self.parts), []
        return data


def send_zip(entries, name):
    """A ZIP of stored files [(name in the zip, path in the store)], streamed file by file: the
    whole archive is never in memory (PDFs are already compressed: stored, not deflated)."""
    root = current_app.config["FILE_STORE"]

    def generate():
        sink = _Chunks()
        used = set()
        with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as archive:
            for entry_name, relative in entries:
                path = safe_join(root, relative)
                if path is None or not Path(path).is_file():
                    continue
                while entry_name in used:  # two invoices with the same name in the list
                    entry_name = "_" + entry_name
                used.add(entry_name)
                with open(path, "rb") as source, archive.open(entry_name, "w") as target:
                    for block in iter(lambda: source.read(1 << 16), b""):
                        target.write(block)
                        yield sink.take()
                yield sink.take()
        yield sink.take()

    response = current_app.response_class(stream_with_context(generate()), mimetype="application/zip")
    response.headers["Content-Disposition"] = f"attachment; filename={name}"
    response.headers["Cache-Control"] = "private, no-store"
    return response


# --- storing ----------------------------------------------------------------------------------------

MAX_FILE_BYTES = 20 * 1024 * 1024  # a PDF or document, named in a CSV or uploaded
EXTENSIONS = {  # what a document may be, and how its first bytes look
    ".pdf": (b"%PDF-",),
    ".csv": None,
    ".txt": None,
    ".xlsx": (b"PK\x03\x04",),
}
CONTENT_TYPES = {".pdf": "application/pdf", ".csv": "text/csv", ".txt": "text/plain",
                 ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


class FileStore:
    """The portal's copies of PDFs and documents, named by their SHA-256 (so the same file is
    stored once, and a copy left by an aborted run is simply reused by the next)."""

    def __init__(self, root):
        self.root = Path(root)

    def check(self, source, allowed=(".pdf",)):
        """The problem with a named file, or None; returns (problem, sha256)."""
        path = Path(source)
        extension = path.suffix.lower()
        if extension not in allowed:
            return f"tipo di file non ammesso ({extension or 'senza estensione'})", None
        if not path.is_file():
            return f"il file {path.name} non c'è", None
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return f"il file {path.name} supera {MAX_FILE_BYTES // (1024 * 1024)} MB", None
        magic = EXTENSIONS[extension]
        digest = hashlib.sha256()
        with path.open("rb") as f:
            head = f.read(8)
            if magic and not head.startswith(magic):
                return f"il file {path.name} non è un {extension[1:].upper()} valido", None
            digest.update(head)
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        if extension == ".pdf" and b"%%EOF" not in tail(path):
            return f"il file {path.name} è un PDF troncato", None
        return None, digest.hexdigest()

    def store(self, source, sha256):
        """Copy into the store; returns the path inside it."""
        suffix = Path(source).suffix.lower()
        relative = f"{sha256[:2]}/{sha256}{suffix}"
        target = self.root / relative
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = part_file(target)
            shutil.copyfile(source, temporary)
            os.replace(temporary, target)
        return relative


    def store_bytes(self, data, suffix):
        """Keep bytes (an upload already checked by uploads.accept); returns the path inside
        the store, named by the SHA-256 like every stored file."""
        sha256 = hashlib.sha256(data).hexdigest()
        relative = f"{sha256[:2]}/{sha256}{suffix}"
        target = self.root / relative
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = part_file(target)
            temporary.write_bytes(data)
            os.replace(temporary, target)
        return relative


def part_file(target):
    """A name of its own to write `target` under before renaming it into place: two processes
    (or servers, on a shared store) storing the same file at once must not write into, nor
    rename away, each other's copy."""
    return target.with_name(f"{target.name}.{secrets.token_hex(8)}.part")


def tail(path, size=1024):
    """The last `size` bytes of a file: where a whole PDF has its %%EOF."""
    with open(path, "rb") as f:
        f.seek(max(path.stat().st_size - size, 0))
        return f.read()
