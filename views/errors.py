"""Error pages: the layout, a sentence in the user's language, the right status. Never a
stack trace."""
import peewee as pw
from flask import Blueprint, abort, current_app, g, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from playhouse.pool import MaxConnectionsExceeded
from werkzeug.exceptions import HTTPException, InternalServerError, RequestEntityTooLarge

import uploads
from extensions import login_manager
from views.rendering import render_page

bp = Blueprint("errors", __name__)

MESSAGES = {
    400: lambda: _("La richiesta non è valida."),
    403: lambda: _("Non hai accesso a questa pagina."),
    404: lambda: _("La pagina che cerchi non c'è."),
    405: lambda: _("La richiesta non è valida."),
    # Past MAX_CONTENT_LENGTH nothing of the form is read: what can be said is the customer's
    # per-file limit (with JavaScript static/app.js refuses such a file before sending it).
    413: lambda: _("Il file è troppo grande: ogni file può essere al massimo di %(mb)d MB. Torna indietro e "
                   "scegli un file più piccolo.", mb=uploads.MAX_UPLOAD_MB),
    429: lambda: _("Troppe richieste: riprova tra qualche minuto."),
}


@bp.before_app_request
def refuse_nul_characters():
    """A NUL character in the address or a form is nobody's typing, and PostgreSQL refuses it in
    any text (it was a 500 wherever a search or a form field reached a query): a 400 before any
    view. A multipart body is not read here (an upload's view raises its size limit first);
    its text fields go through their forms' filters."""
    values = [*request.args.items(multi=True), *(request.view_args or {}).items()]
    if request.mimetype == "application/x-www-form-urlencoded":
        values += request.form.items(multi=True)
    if any("\x00" in str(name) + str(value) for name, value in values):
        abort(400)


@bp.app_errorhandler(CSRFError)
def csrf_error(error):
    return render_page("errors/error.html", code=400, message=_(
        "Il modulo è scaduto o non viene da questa pagina. Torna indietro, ricarica la pagina e "
        "riprova: per sicurezza non abbiamo salvato nulla.")), 400


@bp.app_errorhandler(HTTPException)
def http_error(error):
    code = error.code or 500
    if code >= 500:
        return server_error(error)
    message = MESSAGES.get(code, MESSAGES[400])()
    return render_page("errors/error.html", code=code, message=message), code


@bp.route("/file-troppo-grande")
def too_large():
    """The page nginx shows instead of its own when a request is over its client_max_body_size
    (deploy/nginx/sportello.conf, error_page 413): this one, in the visitor's language."""
    return http_error(RequestEntityTooLarge())


@bp.app_errorhandler(InternalServerError)
def server_error(error):
    # Flask has logged the exception already (and re-raises it in tests).
    return render_page("errors/error.html", code=500, message=_(
        "Qualcosa non ha funzionato da parte nostra. Riprova tra poco; se continua, contatta "
        "il servizio clienti.")), 500


# The database not answering (restarted, unreachable, every pooled connection busy) is a moment's
# outage, not a fault of the page: a 503 that says to come back, and the next request connects
# anew (a broken connection leaves the pool). Nothing was written: a write's transaction either
# committed before its answer or is rolled back with the connection.
@bp.app_errorhandler(pw.OperationalError)
@bp.app_errorhandler(pw.InterfaceError)
@bp.app_errorhandler(MaxConnectionsExceeded)
def database_unavailable(error):
    current_app.logger.error("The database did not answer: %s", error)
    # The page must ask the database nothing: not who is logged in, nor the menu's badge.
    g._login_user = login_manager.anonymous_user()
    g.pop("supply_points", None)
    if request.blueprint == "api":
        from views.api import problem
        return problem(503, "The service is not available at the moment: retry in a minute.", {"Retry-After": "60"})
    response = render_page("errors/error.html", code=503, message=_(
        "Il servizio non è disponibile in questo momento: riprova tra qualche minuto."))
    response.status_code = 503
    response.headers["Retry-After"] = "60"
    return response
