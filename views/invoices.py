"""Elenco fatture: the list and its filters, an invoice's PDF, the ZIP of the list's PDFs."""

from flask import flash, g, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from playhouse.flask_utils import get_object_or_404

import files
import labels
from forms import INVOICE_STATUSES, InvoiceFilterForm
from i18n import rome_today
from models import Invoice
from views.customer_area import area_blueprint, serves_a_file
from views.rendering import render

bp = area_blueprint("invoices", __name__)

# --- invoices -----------------------------------------------------------------------------------------

INVOICE_PAGE = 24  # rows at a time: two years of monthly bills, four of bimonthly ones


def invoice_filters():
    """The list's choices (InvoiceFilterForm reads them from the URL) as Invoice.filtered's
    arguments; and the page asked for."""
    form = InvoiceFilterForm()
    point = g.supply_point
    filters = Invoice.list_filters(current_user.customer_id, point.id if point else None, year=form.chosen("anno"),
                                   status=form.chosen("stato"), all_points=form.chosen("ambito") == "tutti",
                                   today=rome_today())
    return form, filters, form.chosen("pagina") or 1


@bp.route("/fatture")
def invoices():
    form, filters, page = invoice_filters()
    rows, count, total, pdfs = Invoice.page_and_figures(filters, offset=(page - 1) * INVOICE_PAGE, limit=INVOICE_PAGE)

    def years():  # called by the filter form only, so a fragment does not run the query
        return Invoice.years_in_scope(filters)

    points = {p.id: p.code for p in g.supply_points}
    return render("invoices/invoices.html", title=_("Elenco fatture"), invoices=rows,
                  more=page * INVOICE_PAGE < count, page=page, count=count, total=total, pdfs=pdfs, years=years,
                  year=filters["year"], status=filters["status"], everything=filters["scope"] == "all",
                  statuses={value: label for value, label in INVOICE_STATUSES.items() if value}, today=filters["today"], point_codes=points,
                  status_labels=labels.words("invoice_status"), overdue_label=_("scaduta"))


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
    _form, filters, _page = invoice_filters()
    rows = list(Invoice.filtered(**filters).where(Invoice.pdf_path.is_null(False))
                .select(Invoice.number, Invoice.pdf_path).order_by(*Invoice.newest_first()).tuples())
    if not rows:
        # The list offers no ZIP then; an old link or bookmark gets the list and a sentence.
        flash(_("In questo elenco non ci sono fatture con il PDF da scaricare."), "info")
        return redirect(url_for("invoices.invoices", **request.args), 303)
    entries = [(files.download_name(f"Fattura {number}", ".pdf"), path) for number, path in rows]
    return files.send_zip(entries, "fatture.zip")
