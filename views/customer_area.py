"""The customer's area: what every page of it shares (the loader each area's blueprint runs, the
supply-point selector, the menu).

The selected supply point travels in the URL (`?sp=PR002874`), so reload, back and bookmarks
show the same point; a page asked for without it is redirected to the URL with the last choice
(kept in the session) or the customer's first point. The point
is looked up among the logged-in customer's own: another customer's code is a 404.
"""
from flask import Blueprint, abort, current_app, g, redirect, request, session, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from extensions import login_manager
from models import Ticket
from views.rendering import is_htmx

# The frame's own blueprint: the frame's template context.
bp = Blueprint("customer_area", __name__)


def area_blueprint(name, import_name):
    """The blueprint of a menu area: each of its pages needs a logged-in customer and knows the
    selected supply point (load_customer_area)."""
    area = Blueprint(name, import_name)
    area.before_request(load_customer_area)
    return area


# The seed's menu, in its order: (endpoint, label). "account.change_password" opens a dialog.
MENU = [
    ("home.home", _l("Home Page")),
    ("invoices.invoices", _l("Elenco fatture")),
    ("account.change_password", _l("Cambio Password")),
    ("readings.self_reading", _l("Autolettura Contatore")),
    ("account.customer_data", _l("Dati Anagrafici")),
    ("consumption.billed_withdrawals", _l("Prelievi Fatturati")),
    ("tickets.tickets", _l("Ticket")),
    ("home.technical_data", _l("Dati Tecnici")),
    ("home.contract_data", _l("Dati Contrattuali")),
    ("consumption.measures", _l("Misure elettriche")),
    ("documents.my_documents", _l("I miei documenti")),
    ("documents.downloads", _l("Download")),
    ("consumption.advanced_charts", _l("Grafici avanzati")),
]
ELECTRICITY_ONLY = {"consumption.measures"}
GENERIC_DOCUMENTS = [
    ("modulistica", _l("Modulistica")),
    ("normative", _l("Normative")),
    ("comunicati", _l("Comunicati")),
    ("informazioni", _l("Informazioni")),
    ("storico", _l("Storico")),
]

def serves_a_file(view):
    """Mark a view that answers a file (a PDF, a chart, a CSV), not a page: it is not
    redirected to its URL with ?sp= (the ZIP keeps the list's own URL arguments)."""
    view.serves_a_file = True
    return view


def is_file_view(endpoint):
    return getattr(current_app.view_functions.get(endpoint), "serves_a_file", False)


def load_customer_area():
    """before_request of every customer blueprint: a logged-in customer, their points, the
    selected one."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if current_user.customer_id is None:
        abort(403)
    g.supply_points = current_user.supply_points
    g.supply_point = choose_supply_point(g.supply_points)
    if (g.supply_point is not None and "sp" not in request.args and request.method == "GET"
            and not is_file_view(request.endpoint) and not is_htmx()):
        # Every page URL names its point, so back, reload and bookmarks show that point and
        # not whatever was chosen last in another tab.
        args = request.args.to_dict(flat=False)
        return redirect(url_for(request.endpoint, **(request.view_args or {}), **args, sp=g.supply_point.code))


def choose_supply_point(points):
    code = request.args.get("sp")
    if code is not None:
        point = next((p for p in points if p.code == code), None)
        if point is None:
            abort(404)
        if session.get("sp") != code:  # a changed session is re-signed and re-sent
            session["sp"] = code
        return point
    remembered = session.get("sp")
    return next((p for p in points if p.code == remembered), None) or (points[0] if points else None)


def selected_point_or_404():
    """For a point's chart or file: a customer with no points has none to show."""
    if g.supply_point is None:
        abort(404)
    return g.supply_point


def form_address_opens(bp, rule, page):
    """A GET of a form's POST-only address answers with the form's page (`page`, an endpoint).
    Without JavaScript a refused form is shown again (422) at the address it was posted to;
    opened anew (a new tab, a bookmark, a restored session) that address was a 405."""
    def opened_anew():
        return redirect(portal_url(page))
    opened_anew.opens = page  # not a page of its own: the tests that walk every page skip it
    bp.add_url_rule(rule, f"{rule.strip('/').replace('/', '_').replace('-', '_')}_address", opened_anew, methods=["GET"])


def portal_url(endpoint, **values):
    """url_for that keeps the selected supply point."""
    point = g.get("supply_point")
    if point is not None:
        values.setdefault("sp", point.code)
    return url_for(endpoint, **values)


def menu():
    point = g.get("supply_point")
    return [
        (endpoint, label) for endpoint, label in MENU
        if endpoint not in ELECTRICITY_ONLY or point is None or not point.is_gas
    ]


def tickets_waiting():
    """How many of the customer's tickets have an answer waiting (the menu's badge beside
    Ticket): one indexed COUNT, once per request, only when a menu is drawn."""
    if "tickets_waiting" not in g:
        g.tickets_waiting = Ticket.waiting_for(current_user.customer_id) if current_user.customer_id else 0
    return g.tickets_waiting


@bp.app_context_processor
def portal_context():
    return {"portal_url": portal_url, "menu": menu, "generic_documents": GENERIC_DOCUMENTS,
            "tickets_waiting": tickets_waiting}


bp.before_request(load_customer_area)

