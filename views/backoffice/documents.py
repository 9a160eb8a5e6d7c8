"""Documenti: publish a document (for everyone, or one customer's), withdraw it, publish it again."""
import tempfile
from pathlib import Path

from flask import abort, current_app, flash, redirect, url_for
from flask_babel import gettext as _
from flask_login import current_user
from playhouse.flask_utils import get_object_or_404
from werkzeug.utils import secure_filename

import audit
import files
from database import write_transaction
from forms import DocumentForm, EmptyForm
from i18n import rome_today
from models import Customer, Document, utcnow
from views.backoffice import bp
from views.rendering import render


@bp.route("/documenti", methods=["GET", "POST"])
def documents():
    """Publish a document (for everyone, or one customer's) and see what is published."""
    form = DocumentForm()
    status = 200
    if form.validate_on_submit():
        upload = form.file.data
        name = secure_filename(upload.filename or "") or "documento"
        with tempfile.TemporaryDirectory() as folder:
            source = Path(folder) / name
            upload.save(source)
            store = files.FileStore(current_app.config["FILE_STORE"])
            problem, sha256 = store.check(source, tuple(files.EXTENSIONS))
            if problem:
                form.file.errors.append(problem)
            else:
                customer = Customer.get_or_none(Customer.code == form.customer_code.data) if form.customer_code.data else None
                with write_transaction():
                    document = Document.create(
                        file=store.store(source, sha256), source_name=name, title=form.title.data,
                        section=form.section.data, customer=customer,
                        published_on=form.published_on.data or rome_today(),
                        period_start=form.period_start.data, period_end=form.period_end.data,
                        content_type=files.CONTENT_TYPES[source.suffix.lower()], size=source.stat().st_size,
                        sha256=sha256,
                    )
                    audit.record("document_published", user=current_user._get_current_object(), customer=customer,
                                 document=document.id, section=document.section, title=document.title)
                flash(_("Documento pubblicato."), "success")
                return redirect(url_for("backoffice.documents"), 303)
    if form.is_submitted():
        status = 422
    listed = list(Document.for_staff().limit(100))
    return render("backoffice/documents.html", title=_("Documenti"), form=form,
                  documents=listed, action_form=EmptyForm()), status


@bp.route("/documenti/<int:document_id>/<any(unpublish, publish):action>", methods=["POST"])
def document_action(document_id, action):
    EmptyForm().validate_on_submit() or abort(400)
    document = get_object_or_404(Document, Document.id == document_id)
    with write_transaction():
        Document.update(unpublished_at=utcnow() if action == "unpublish" else None).where(
            Document.id == document.id).execute()
        audit.record(f"document_{action}ed", user=current_user._get_current_object(), customer=document.customer_id,
                     document=document.id, title=document.title)
    flash(_("Documento ritirato: i clienti non lo vedono più.") if action == "unpublish" else _("Documento di nuovo pubblicato."), "success")
    return redirect(url_for("backoffice.documents"), 303)
