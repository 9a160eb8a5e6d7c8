"""Elenco fatture: the list and its filters, an invoice's PDF, the ZIP of the list's PDFs."""
from datetime import date

from flask import flash, g, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from playhouse.flask_utils import get_object_or_404

import files
import labels
from models import Invoice, invoice_page
from views.customer_area import area_blueprint, serves_a_file
from views.rendering import render

bp = area_blueprint("invoices", __name__)

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
@serves_a_file
def invoice_pdf(invoice_id):
    """The invoice's PDF, only to its customer (a foreign or unknown id: 404)."""
    invoice = get_object_or_404(Invoice.for_customer(current_user.customer_id),
                                Invoice.id == invoice_id, Invoice.pdf_path.is_null(False))
    return files.send_stored(invoice.pdf_path, "application/pdf", f"Fattura {invoice.number}",
                             as_attachment=request.args.get("scarica") == "1")


@bp.route("/fatture/pdf.zip")
@serves_a_file
def invoices_zip():
    """All PDFs of the filtered list in one ZIP, streamed as it is made."""
    filters, _page = invoice_filters()
    rows = list(Invoice.filtered(**filters).where(Invoice.pdf_path.is_null(False))
                .select(Invoice.number, Invoice.pdf_path).order_by(*Invoice.newest_first()).tuples())
    if not rows:
        # The list offers no ZIP then; an old link or bookmark gets the list and a sentence.
        flash(_("In questo elenco non ci sono fatture con il PDF da scaricare."), "info")
        return redirect(url_for("invoices.invoices", **request.args), 303)
    entries = [(files.download_name(f"Fattura {number}", ".pdf"), path) for number, path in rows]
    return files.send_zip(entries, "fatture.zip")
