"""Importazioni: the billing system's files uploaded from the browser, and each import's progress."""
from flask import abort, current_app, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from playhouse.flask_utils import get_object_or_404

import audit
import import_jobs
from database import write_transaction
from extensions import csrf
from forms import EmptyForm
from models import ImportJob
from views.backoffice import bp
from views.rendering import render


@bp.route("/importazioni", methods=["GET", "POST"])
@csrf.exempt  # checked below by the form, once the limit is raised for a known operator
def imports():
    """Upload the billing system's CSVs (or a zip with CSVs and PDFs); the import runs in the
    background and its page shows the progress."""
    error = None
    if request.method == "POST":
        # Uploads may be far larger than ordinary requests (a year of measures). The global
        # CSRF check would read the body before this view, with the ordinary limit and for
        # anyone; here require_staff has run first.
        request.max_content_length = current_app.config["IMPORT_MAX_BYTES"]
    form = EmptyForm()
    if request.method == "POST":
        if form.validate_on_submit():
            folder = import_jobs.new_folder()
            try:
                files = import_jobs.save_upload(request.files.getlist("files"), import_jobs.local_path(folder),
                                                current_app.config["IMPORT_MAX_BYTES"])
                with write_transaction():
                    job = import_jobs.create(current_user._get_current_object(), folder, files)
                    audit.record("import_uploaded", user=current_user._get_current_object(), job=job.id,
                                 files=files)
            except Exception as problem:
                import_jobs.remove_upload(folder)  # nothing of a refused or failed upload stays
                if not isinstance(problem, import_jobs.UploadProblem):
                    raise
                error = str(problem)
            else:
                import_jobs.start(current_app._get_current_object())
                return redirect(url_for("backoffice.import_job", job_id=job.id), 303)
        else:
            abort(400)
    jobs = list(ImportJob.recent(20))
    return render("backoffice/imports.html", title=_("Importazioni"),
                  form=form, error=error, jobs=jobs), 422 if error else 200


@bp.route("/importazioni/<int:job_id>")
def import_job(job_id):
    """The job's progress; while it runs, htmx polls the `job` block every second."""
    job = get_object_or_404(ImportJob, ImportJob.id == job_id)
    return render("backoffice/import_job.html", title=_("Importazione %(n)d", n=job.id), job=job)
