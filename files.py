"""Serving files from the portal's file store (invoices' PDFs, documents): the right type, a safe
name, and no copy in a shared cache."""
import re
import unicodedata
from pathlib import Path

from flask import abort, current_app, send_file
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
