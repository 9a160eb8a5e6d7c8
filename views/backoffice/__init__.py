"""The back office: the utility's staff find customers, look after their accounts and read the
audit log. Staff only (password and second factor); for a customer every URL here is a 404.
Every action is in the audit log with the operator who did it.

This package holds the blueprint, who may enter, and the staff menu; each page is a module of
its own (customers, imports, documents, operators, audit_log, password) that adds its routes to `bp`, so
every endpoint is still backoffice.<view>."""
from flask import Blueprint, abort, redirect, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from extensions import login_manager
from models import User

bp = Blueprint("backoffice", __name__, url_prefix="/backoffice")

PAGE_SIZE = 50
STAFF_MENU = [
    ("backoffice.home", _l("Clienti")),
    ("backoffice.imports", _l("Importazioni")),
    ("backoffice.documents", _l("Documenti")),
    ("backoffice.readings", _l("Autoletture")),
    ("backoffice.tickets", _l("Ticket")),
    ("backoffice.audit_log", _l("Registro attività")),
    ("backoffice.change_password", _l("Cambio Password")),
]
ADMIN_MENU = [("backoffice.operators", _l("Operatori"))]


@bp.before_request
def require_staff():
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if not current_user.is_staff:
        abort(404)  # a customer learns nothing of what is here


# URL arguments are Italian, as the paths are; links and bookmarks with the English names that
# earlier versions used are sent to the same page with the new names.
RENAMED_ARGUMENTS = {"page": "pagina", "user": "utente", "customer": "cliente", "action": "azione",
                     "since": "dal", "until": "al"}
# The customers' search is posted now; its text (a codice fiscale, maybe) is not carried on.
DROPPED_ARGUMENTS = {"q"}


@bp.before_request
def renamed_arguments():
    if request.method == "GET" and not RENAMED_ARGUMENTS.keys().isdisjoint(request.args.keys()):
        args = {}
        for name, values in request.args.lists():
            if name not in DROPPED_ARGUMENTS:
                args[RENAMED_ARGUMENTS.get(name, name)] = values
        return redirect(url_for(request.endpoint, **(request.view_args or {}), **args), 301)


def require_admin():
    if current_user.role != User.ADMIN:
        abort(403)


@bp.app_context_processor
def staff_context():
    # current_user is None outside a request (a mail rendered by the import, say).
    is_admin = bool(current_user) and current_user.is_authenticated and current_user.role == User.ADMIN
    return {"staff_menu": STAFF_MENU + (ADMIN_MENU if is_admin else [])}


# Each page module adds its routes to bp.
from views.backoffice import audit_log, customers, documents, imports, operators, password, readings, tickets  # noqa: F401
