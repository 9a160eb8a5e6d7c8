"""Helpers that several view modules share."""
import threading
import time
from collections import OrderedDict
from urllib.parse import urlsplit

from flask import current_app
from flask_babel import gettext as _
from flask_babel import ngettext
from werkzeug.routing import IntegerConverter

from views.rendering import render, render_page


class DatabaseId(IntegerConverter):
    """`<int:…>` in every URL: an id the database can hold. A longer number is no id of ours,
    a 404 (SQLite overflowed on it: a 500)."""

    def __init__(self, url_map, *args, **kwargs):
        kwargs.setdefault("max", 2**63 - 1)
        super().__init__(url_map, *args, **kwargs)


def svg_response(svg):
    response = current_app.response_class(svg, mimetype="image/svg+xml")
    # An image: pygal's own styles may apply inside it, nothing else may load or run.
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    response.headers["Cache-Control"] = "private, no-store"
    return response


def safe_next(target):
    """`next` is followed only to a path of this portal, never to another host."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


def too_many(form_field, seconds):
    """Put the rate-limit message on a field; the answer is then a 429."""
    minutes = max(1, round(seconds / 60))
    form_field.errors = list(form_field.errors or []) + [
        ngettext("Troppi tentativi. Riprova tra %(num)d minuto.", "Troppi tentativi. Riprova tra %(num)d minuti.", minutes)
    ]


def invalid_link():
    """The answer to an emailed link that has expired, was used, or a password change voided
    (registration's confirmation and the password reset)."""
    return render("auth/message.html", title=_("Link non valido"), message=_(
        "Questo link non è valido: è scaduto (vale un'ora), è già stato usato, oppure nel "
        "frattempo la password è cambiata. Puoi chiederne uno nuovo.")), 410


class RecentPages:
    """What a view made lately, by a key that changes whenever its content would: kept by this
    process for `seconds` at most, `entries` at most (the oldest go first). For content that
    only an import changes, keyed by the import's time."""

    def __init__(self, entries, seconds):
        self.entries, self.seconds = entries, seconds
        self.made = OrderedDict()  # key -> (time.monotonic() when made, content)
        self.lock = threading.Lock()  # the development server serves in threads

    def get(self, key):
        with self.lock:
            entry = self.made.get(key)
            if entry is None or time.monotonic() - entry[0] > self.seconds:
                return None
            self.made.move_to_end(key)
            return entry[1]

    def put(self, key, content):
        with self.lock:
            self.made[key] = (time.monotonic(), content)
            self.made.move_to_end(key)
            while len(self.made) > self.entries:
                self.made.popitem(last=False)

    def clear(self):
        with self.lock:
            self.made.clear()


def read_only_refusal():
    """The answer to a write that `current_user.can_write` refuses (a read-only delegate):
    `if not current_user.can_write: return read_only_refusal()`. Always the whole page: htmx
    does not swap a 403 (the layout's error line tells the user)."""
    return render_page("errors/error.html", code=403, heading=_("Accesso in sola lettura"), message=_(
        "Il tuo accesso è in sola lettura: puoi vedere i dati del cliente ma non cambiarli. "
        "Se ti serve, chiedi al titolare del contratto i permessi completi.")), 403
