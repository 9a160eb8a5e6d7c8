"""Home Page, and the selected point's Dati Tecnici / Dati Contrattuali."""

from babel.lists import format_list
from flask import current_app, g
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

import charts
import i18n
import labels
from i18n import rome_today
from models import Ticket, latest_announcements, latest_invoice, money, unpaid_invoices
from views.common import svg_response
from views.customer_area import area_blueprint, selected_point_or_404, serves_a_file
from views.rendering import render

bp = area_blueprint("home", __name__)


@bp.route("/")
def home():
    customer, point = current_user.customer_id, g.supply_point
    latest = next(iter(latest_invoice(customer=customer, point=point and point.id, of_point=point is not None)), None)
    unpaid_count, unpaid_total, _pdfs = next(iter(unpaid_invoices(customer=customer)))
    # A customer has a few open tickets: all of them in one query, which also answers the
    # menu's badge (customer_area.tickets_waiting) without its own COUNT.
    open_tickets = list(Ticket.for_customer(customer).where(Ticket.status != Ticket.CLOSED)
                        .order_by(Ticket.updated_at.desc(), Ticket.id.desc()))
    g.tickets_waiting = sum(ticket.status == Ticket.WAITING_CUSTOMER for ticket in open_tickets)
    return render("home/home.html", announcements=list(latest_announcements(limit=3)), latest=latest,
                  unpaid_count=unpaid_count, unpaid_total=money(unpaid_total),
                  today=rome_today(), status_labels=labels.words("invoice_status"), what_you_can_do=what_you_can_do(),
                  open_tickets=open_tickets)


# What the Home Page's welcome says the customer can do here, by the section that does it.
PROMISES = [
    ("invoices.invoices", _l("consultare e scaricare le tue fatture")),
    ("consumption.billed_withdrawals", _l("vedere i consumi fatturati")),
    ("readings.self_reading", _l("comunicare l'autolettura del contatore")),
    ("tickets.tickets", _l("aprire un ticket e seguirne le risposte")),
    ("account.customer_data", _l("controllare i tuoi dati anagrafici")),
    ("documents.my_documents", _l("scaricare i tuoi documenti")),
]


def what_you_can_do():
    """"a, b e c": the promises, in the user's language."""
    return format_list([str(text) for _endpoint, text in PROMISES], locale=i18n.language())


@bp.route("/consumi-recenti.svg")
@serves_a_file
def recent_consumption_chart():
    point = selected_point_or_404()
    months = charts.last_twelve_months(current_user.customer_id, point, rome_today())
    title = _("Ultimi 12 mesi (%(unit)s)", unit="Smc" if point.is_gas else "kWh")
    return svg_response(charts.small_chart_svg(point, months, i18n.language(), current_app.config["PORTAL_COLOR"], title))


# --- the selected point's data ---------------------------------------------------------------

@bp.route("/dati-tecnici")
def technical_data():
    return render("home/point_data.html", title=_("Dati Tecnici"), kind="technical")


@bp.route("/dati-contrattuali")
def contract_data():
    return render("home/point_data.html", title=_("Dati Contrattuali"), kind="contractual")
