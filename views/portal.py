"""The customer's portal: the menu, the supply-point selector and the Home Page.

The selected supply point travels in the URL (`?sp=PR002874`), so reload, back and bookmarks
show the same point; a page asked for without it is redirected to the URL with the last choice
(kept in the session) or the customer's first point. The point
is looked up among the logged-in customer's own: another customer's code is a 404.
"""
import csv
import io
from datetime import date
from decimal import Decimal

from babel.lists import format_list
from flask import Blueprint, abort, current_app, flash, g, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from extensions import login_manager
import audit
import charts
import files
import i18n
import labels
from forms import NotificationsForm
from models import (Document, Invoice, User, invoice_page, latest_announcements, latest_invoice, unpaid_invoices,
                    write_transaction)
from views.rendering import is_htmx, render

bp = Blueprint("portal", __name__)

# The seed's menu, in its order: (endpoint, label). "account.change_password" opens a dialog.
MENU = [
    ("portal.home", _l("Home Page")),
    ("portal.invoices", _l("Elenco fatture")),
    ("account.change_password", _l("Cambio Password")),
    ("portal.self_reading", _l("Autolettura Contatore")),
    ("portal.customer_data", _l("Dati Anagrafici")),
    ("portal.billed_withdrawals", _l("Prelievi Fatturati")),
    ("portal.tickets", _l("Ticket")),
    ("portal.technical_data", _l("Dati Tecnici")),
    ("portal.contract_data", _l("Dati Contrattuali")),
    ("portal.measures", _l("Misure elettriche")),
    ("portal.my_documents", _l("I miei documenti")),
    ("portal.downloads", _l("Download")),
    ("portal.advanced_charts", _l("Grafici avanzati")),
]
ELECTRICITY_ONLY = {"portal.measures"}
GENERIC_DOCUMENTS = [
    ("modulistica", _l("Modulistica")),
    ("normative", _l("Normative")),
    ("comunicati", _l("Comunicati")),
    ("informazioni", _l("Informazioni")),
    ("storico", _l("Storico")),
]

# Sections that later work fills in; until then they say so. endpoint -> URL path.
COMING_SOON = {
    "self_reading": "/autolettura",
    "tickets": "/ticket",
    "measures": "/misure-elettriche",
    "advanced_charts": "/grafici-avanzati",
}


# Files, not pages: no ?sp= redirect for them (the ZIP keeps the list's own URL arguments).
FILE_ENDPOINTS = {"portal.document_file", "portal.invoice_pdf", "portal.invoices_zip",
                  "portal.billed_withdrawals_chart", "portal.billed_withdrawals_csv", "portal.recent_consumption_chart"}


def load_customer_area():
    """before_request of every customer blueprint: a logged-in customer, their points, the
    selected one."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if current_user.customer_id is None:
        abort(403)
    g.supply_points = current_user.supply_points
    g.supply_point = choose_supply_point(g.supply_points)
    is_page = request.endpoint not in FILE_ENDPOINTS
    if g.supply_point is not None and "sp" not in request.args and request.method == "GET" and is_page and not is_htmx():
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


@bp.app_context_processor
def portal_context():
    return {"portal_url": portal_url, "menu": menu, "generic_documents": GENERIC_DOCUMENTS}


bp.before_request(load_customer_area)


@bp.route("/")
def home():
    customer, point = current_user.customer_id, g.supply_point
    latest = next(iter(latest_invoice(customer=customer, point=point and point.id, of_point=point is not None)), None)
    unpaid_count, unpaid_total, _pdfs = next(iter(unpaid_invoices(customer=customer)))
    return render("portal/home.html", announcements=list(latest_announcements(limit=3)), latest=latest,
                  unpaid_count=unpaid_count, unpaid_total=Invoice.total.python_value(unpaid_total) or 0,
                  today=date.today(), status_labels=labels.words("invoice_status"), what_you_can_do=what_you_can_do())


# What the Home Page's welcome says the customer can do here, by the section that does it: a
# section still "in arrivo" promises nothing.
PROMISES = [
    ("portal.invoices", _l("consultare e scaricare le tue fatture")),
    ("portal.billed_withdrawals", _l("vedere i consumi fatturati")),
    ("portal.self_reading", _l("comunicare l'autolettura del contatore")),
    ("portal.tickets", _l("aprire un ticket e seguirne le risposte")),
    ("portal.customer_data", _l("controllare i tuoi dati anagrafici")),
    ("portal.my_documents", _l("scaricare i tuoi documenti")),
]


def what_you_can_do():
    """"a, b e c": the promises of the sections that are built, in the user's language."""
    built = [str(text) for endpoint, text in PROMISES if endpoint.partition(".")[2] not in COMING_SOON]
    return format_list(built, locale=i18n.language())


def svg_response(svg):
    response = current_app.response_class(svg, mimetype="image/svg+xml")
    # An image: pygal's own styles may apply inside it, nothing else may load or run.
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.route("/consumi-recenti.svg")
def recent_consumption_chart():
    point = selected_point_or_404()
    months = charts.last_twelve_months(point, date.today())
    title = _("Ultimi 12 mesi (%(unit)s)", unit="Smc" if point.is_gas else "kWh")
    return svg_response(charts.small_chart_svg(point, months, i18n.language(), current_app.config["PORTAL_COLOR"], title))


# --- invoices -----------------------------------------------------------------------------------------

INVOICE_PAGE = 24  # rows at a time: two years of monthly bills, four of bimonthly ones


# The Stato filter: value -> (label, how Invoice.filtered selects it). "Da pagare" is every
# invoice not fully paid (unpaid or partly paid), as the Home Page counts them; "Scadute" those
# of them past their due date.
INVOICE_STATUSES = {
    "unpaid": (_l("Da pagare"), "not_paid"),
    "overdue": (_l("Scadute"), "overdue"),
    "partial": (_l("Parzialmente pagate"), "status"),
    "paid": (_l("Pagate"), "status"),
}


def invoice_filters():
    """The list's filters from the URL (unknown values are ignored, not an error), as the
    arguments of Invoice.filtered; and the page asked for."""
    args = request.args
    year = args.get("anno", type=int)
    status = args.get("stato") if args.get("stato") in INVOICE_STATUSES else None
    point = g.supply_point
    filters = dict(
        customer=current_user.customer_id, point=point.id if point else None, year=year, status=status,
        today=date.today(), scope="all" if args.get("ambito") == "tutti" else "point" if point else "none",
        by_year=year is not None, by_status=INVOICE_STATUSES[status][1] if status else None)
    return filters, max(args.get("pagina", 1, type=int), 1)


@bp.route("/fatture")
def invoices():
    filters, page = invoice_filters()
    rows = list(invoice_page(**filters, offset=(page - 1) * INVOICE_PAGE, limit=INVOICE_PAGE))
    if rows:
        count, total, pdfs = rows[0]["filtered_count"], rows[0]["filtered_total"], rows[0]["filtered_pdfs"]
    else:  # past the last page, or nothing at all: the figures had no row to ride on
        count, total, pdfs = Invoice.count_and_total(Invoice.filtered(**filters)).scalar(as_tuple=True)
    total = Invoice.total.python_value(total)  # a sum is a float on SQLite: money is Decimal
    everything = filters["scope"] == "all"

    def years():  # the years of the list's scope; called by the filter form only (not by a fragment)
        scope = Invoice.filtered(**dict(filters, by_year=False, by_status=None))
        return [y for (y,) in scope.select(Invoice.year).distinct().order_by(Invoice.year.desc()).tuples()]

    points = {p.id: p.code for p in g.supply_points}
    return render("portal/invoices.html", title=_("Elenco fatture"), invoices=rows,
                  more=page * INVOICE_PAGE < count, page=page, count=count, total=total or 0, pdfs=pdfs, years=years,
                  year=filters["year"], status=filters["status"], everything=everything,
                  statuses={value: label for value, (label, _how) in INVOICE_STATUSES.items()},
                  today=filters["today"], point_codes=points, status_labels=labels.words("invoice_status"),
                  overdue_label=_("scaduta"))


@bp.route("/fatture/<int:invoice_id>/pdf")
def invoice_pdf(invoice_id):
    """The invoice's PDF, only to its customer (a foreign or unknown id: 404)."""
    invoice = Invoice.for_customer(current_user.customer_id).where(
        Invoice.id == invoice_id, Invoice.pdf_path.is_null(False)).first()
    if invoice is None:
        abort(404)
    return files.send_stored(invoice.pdf_path, "application/pdf", f"Fattura {invoice.number}",
                             as_attachment=request.args.get("scarica") == "1")


@bp.route("/fatture/pdf.zip")
def invoices_zip():
    """All PDFs of the filtered list in one ZIP, streamed as it is made."""
    filters, _page = invoice_filters()
    rows = list(Invoice.filtered(**filters).where(Invoice.pdf_path.is_null(False))
                .select(Invoice.number, Invoice.pdf_path).order_by(*Invoice.newest_first()).tuples())
    if not rows:
        # The list offers no ZIP then; an old link or bookmark gets the list and a sentence.
        flash(_("In questo elenco non ci sono fatture con il PDF da scaricare."), "info")
        return redirect(url_for("portal.invoices", **request.args), 303)
    entries = [(files.download_name(f"Fattura {number}", ".pdf"), path) for number, path in rows]
    return files.send_zip(entries, "fatture.zip")


# --- Prelievi Fatturati -------------------------------------------------------------------------------

def withdrawals_year():
    """The year asked for, else the newest with data; plus the point's years with data."""
    years = charts.years_with_data(g.supply_point)
    year = request.args.get("anno", type=int)
    if year not in years:
        year = years[0] if years else date.today().year
    return year, years


WITHDRAWAL_VIEWS = {  # ?vista= -> label; the first is the default
    "grafico": _l("Grafico"), "confronto": _l("Confronto con l'anno prima"), "tabella": _l("Tabella"),
}


def withdrawals_view():
    view = request.args.get("vista")
    return view if view in WITHDRAWAL_VIEWS else "grafico"


@bp.route("/prelievi-fatturati")
def billed_withdrawals():
    point = g.supply_point
    if point is None:
        return render("portal/withdrawals.html", title=_("Prelievi Fatturati"), rows=None)
    year, years = withdrawals_year()
    rows, previous = charts.monthly(point, year), charts.monthly(point, year - 1)
    key = charts.total_key(point)
    return render("portal/withdrawals.html", title=_("Prelievi Fatturati"), rows=rows, previous=previous,
                  year=year, years=years, view=withdrawals_view(), views=WITHDRAWAL_VIEWS, key=key,
                  comparison=charts.year_on_year(rows, previous, key), months=charts.month_names(i18n.language()))


@bp.route("/prelievi-fatturati.svg")
def billed_withdrawals_chart():
    point = selected_point_or_404()
    year, _years = withdrawals_year()
    unit = "Smc" if point.is_gas else "kWh"
    colour, rows = current_app.config["PORTAL_COLOR"], charts.monthly(point, year)
    if withdrawals_view() == "confronto":
        texts = {"unit": unit, "title": _("Prelievi fatturati %(year)d e %(previous)d, %(point)s",
                                          year=year, previous=year - 1, point=point.code)}
        svg = charts.comparison_svg(point, rows, charts.monthly(point, year - 1), year, i18n.language(), colour, texts)
    else:
        texts = {"unit": unit, "title": _("Prelievi fatturati %(year)d, %(point)s", year=year, point=point.code)}
        svg = charts.chart_svg(point, rows, i18n.language(), colour, texts)
    return svg_response(svg)


@bp.route("/prelievi-fatturati.csv")
def billed_withdrawals_csv():
    """For Italian Excel: semicolons, decimal commas, a BOM."""
    point = selected_point_or_404()
    year, _years = withdrawals_year()
    rows = charts.monthly(point, year)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    # Always three decimals: the same file from SQLite and PostgreSQL (which keeps the scale).
    comma = lambda value: "" if value is None else format(Decimal(value), ".3f").replace(".", ",")  # noqa: E731
    if point.is_gas:
        writer.writerow(["Mese", "Smc"])
        writer.writerows([f"{year}-{r['month']:02d}", comma(r["smc"])] for r in rows if r["invoices"])
    else:
        writer.writerow(["Mese", "F1 kWh", "F2 kWh", "F3 kWh", "Totale kWh", "Potenza massima kW"])
        writer.writerows([f"{year}-{r['month']:02d}", comma(r["f1"]), comma(r["f2"]), comma(r["f3"]),
                          comma(r["total"]), comma(r["peak"])] for r in rows if r["invoices"])
    response = current_app.response_class("\ufeff" + out.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = f"attachment; filename=prelievi-{point.code}-{year}.csv"
    response.headers["Cache-Control"] = "private, no-store"
    return response


# --- Dati Anagrafici --------------------------------------------------------------------------------

@bp.route("/dati-anagrafici", methods=["GET", "POST"])
def customer_data():
    """The customer's data as the billing system has them, and the user's mail preference."""
    form = NotificationsForm(obj=current_user)
    if form.validate_on_submit():
        with write_transaction():
            User.update(notify_invoices=form.notify_invoices.data).where(User.id == current_user.id).execute()
            audit.record("notifications_changed", user=current_user._get_current_object(),
                         notify_invoices=form.notify_invoices.data)
        flash(_("Preferenze salvate."), "success")
        return redirect(portal_url("portal.customer_data"), 303)
    return render("portal/customer_data.html", title=_("Dati Anagrafici"), customer=current_user.customer, form=form)


# --- the selected point's data ---------------------------------------------------------------

@bp.route("/dati-tecnici")
def technical_data():
    return render("portal/point_data.html", title=_("Dati Tecnici"), kind="technical")


@bp.route("/dati-contrattuali")
def contract_data():
    return render("portal/point_data.html", title=_("Dati Contrattuali"), kind="contractual")


# --- documents ------------------------------------------------------------------------------------

@bp.route("/documenti")
def my_documents():
    documents = Document.for_customer(current_user.customer_id).where(Document.section == "personal")
    return render("portal/documents.html", title=_("I miei documenti"),
                  documents=list(documents.order_by(Document.published_on.desc())))


@bp.route("/download")
def downloads():
    """Periodic reports, filtered by deposit date (htmx swaps the list with its form, so a
    date's error shows next to it; the URL keeps the filter). A bad date is said, not applied."""
    reports = Document.for_customer(current_user.customer_id).where(Document.section == "report")
    errors, dates = {}, {}
    for name in ("dal", "al"):
        text = request.args.get(name, "").strip()
        if text:
            try:
                dates[name] = date.fromisoformat(text)
            except ValueError:
                errors[name] = _("Data non valida: usa il calendario o AAAA-MM-GG.")
    if "dal" in dates and "al" in dates and dates["al"] < dates["dal"]:
        errors["al"] = _("La data finale viene prima di quella iniziale.")
        del dates["al"]
    if "dal" in dates:
        reports = reports.where(Document.published_on >= dates["dal"])
    if "al" in dates:
        reports = reports.where(Document.published_on <= dates["al"])
    return render("portal/documents.html", title=_("Download"), filters=True, errors=errors,
                  documents=list(reports.order_by(Document.published_on.desc())))


def generic_documents(section):
    documents = Document.generic(section).order_by(Document.published_on.desc(), Document.id.desc())
    return render("portal/documents.html", title=dict(GENERIC_DOCUMENTS)[section], documents=list(documents))


@bp.route("/documenti/<int:document_id>/file")
def document_file(document_id):
    """A document, only to a customer it is for: one of theirs or one for everybody."""
    document = (Document.select()
                .where(Document.id == document_id, Document.unpublished_at.is_null(),
                       Document.customer.is_null() | (Document.customer == current_user.customer_id))
                .first())
    if document is None:
        abort(404)
    return files.send_stored(document.file, document.content_type, document.title,
                             as_attachment=request.args.get("scarica") == "1")


def coming_soon():
    return render("portal/coming_soon.html", title=dict(MENU)[request.endpoint])


for _endpoint, _path in COMING_SOON.items():
    bp.add_url_rule(_path, _endpoint, coming_soon)
bp.add_url_rule("/documentazione/<any(%s):section>" % ",".join(s for s, _ in GENERIC_DOCUMENTS),
                "generic_documents", generic_documents)
