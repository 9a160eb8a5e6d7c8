"""/healthz: whether this server can serve, for the utility's monitoring and a load balancer.

200 when the database answers (and Redis, when REDIS_URL is set), 503 when not, with one line
per part in plain text. A probe comes every few seconds, so it is as cheap and as quiet as can
be: no session (the session cookie is not read, no Set-Cookie), no CSRF (a GET), no rate limit,
nothing logged (nginx's example leaves it out of its access log too), never cached.

The database's connection is opened here rather than before the request (database.PortalDB
leaves this endpoint out), so that an unreachable database is a 503 with its reason, not an
error before the view runs.
"""
import peewee as pw
from flask import Blueprint, make_response
from flask.sessions import SecureCookieSessionInterface
from playhouse.pool import MaxConnectionsExceeded

import ratelimit
from database import db_wrapper

bp = Blueprint("health", __name__)
PATH = "/healthz"


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session (Flask-Login's token lives in it), but none for a probe:
    a permanent session's cookie would otherwise be set again at every request, and a session
    cookie a probe sends would be looked up. The session opens before the URL is matched,
    hence the path."""

    def open_session(self, app, request):
        if request.path == PATH:
            return self.make_null_session(app)  # empty, and never saved
        return super().open_session(app, request)


def init_app(app):
    app.session_interface = SessionInterface()
    app.register_blueprint(bp)


@bp.get(PATH)
def healthz():
    parts = {"database": database_answers()}
    redis_answers = ratelimit.redis_answers()
    if redis_answers is not None:  # REDIS_URL is set
        parts["redis"] = redis_answers
    healthy = all(parts.values())
    body = "".join(f"{name} {'ok' if answers else 'unreachable'}\n" for name, answers in parts.items())
    response = make_response(body, 200 if healthy else 503)
    response.mimetype = "text/plain"
    response.headers["Cache-Control"] = "no-store"
    return response


def database_answers():
    database = db_wrapper.database
    try:
        database.connect(reuse_if_open=True)  # PostgreSQL's goes back to the pool after the request
        database.execute_sql("SELECT 1")
    except (pw.PeeweeException, MaxConnectionsExceeded):  # refused, or no pooled connection free in time
        return False
    return True

