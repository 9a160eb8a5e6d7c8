"""I miei documenti, Download (periodic reports) and Documentazione Generica, and a document's file."""

from flask import request
from flask_babel import gettext as _
from flask_login import current_user
from playhouse.flask_utils import get_object_or_404

import files
from forms import DateRangeForm
from models import Document
from views.customer_area import GENERIC_DOCUMENTS, area_blueprint, serves_a_file
from views.rendering import render

bp = area_blueprint("documents", __name__)

# --- documents ------------------------------------------------------------------------------------


@bp.route("/documenti")
def my_documents():
    documents = Document.for_customer(current_user.customer_id).where(Document.section == "personal")
    return render("documents/documents.html", title=_("I miei documenti"),
                  documents=list(documents.order_by(Document.published_on.desc())))


@bp.route("/download")
def downloads():
    """Periodic reports, filtered by deposit date (htmx swaps the list with its form, so a
    date's error shows next to it; the URL keeps the filter). A bad date is said, not applied."""
    reports = Document.for_customer(current_user.customer_id).where(Document.section == "report")
    dates = DateRangeForm()
    if dates.chosen("dal"):
        reports = reports.where(Document.published_on >= dates.chosen("dal"))
    if dates.chosen("al"):
        reports = reports.where(Document.published_on <= dates.chosen("al"))
    return render("documents/documents.html", title=_("Download"), dates=dates,
                  documents=list(reports.order_by(Document.published_on.desc())))


def generic_documents(section):
    documents = Document.generic(section).order_by(Document.published_on.desc(), Document.id.desc())
    return render("documents/documents.html", title=dict(GENERIC_DOCUMENTS)[section], documents=list(documents))


@bp.route("/documenti/<int:document_id>/file")
@serves_a_file
def document_file(document_id):
    """A document, only to a customer it is for: one of theirs or one for everybody."""
    document = get_object_or_404(Document.visible_to(current_user.customer_id), Document.id == document_id)
    return files.send_stored(document.file, document.content_type, document.title,
                             as_attachment=request.args.get("scarica") == "1")


bp.add_url_rule("/documentazione/<any(%s):section>" % ",".join(s for s, _ in GENERIC_DOCUMENTS),
                "generic_documents", generic_documents)
