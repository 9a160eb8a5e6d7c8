"""The back office: the utility's staff find customers, look after their accounts and read the
audit log. Staff only (password and second factor); for a customer every URL here is a 404.
Every action is in the audit log with the operator who did it."""
import secrets
import shutil
import tempfile
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from peewee import JOIN
from werkzeug.utils import secure_filename

import accounts
import audit
import files
import identifiers
import import_jobs
import labels
import mailer
from extensions import csrf, login_manager
from forms import DocumentForm, EmptyForm, OperatorForm
from mailer import mail_link
from models import (
    AuditLog,
    Consent,
    Customer,
    Document,
    EmailToken,
    ImportJob,
    Invoice,
    Reading,
    SupplyPoint,
    Ticket,
    User,
    UserSession,
    utcnow,
    write_transaction,
)
from views.rendering import render

bp = Blueprint("backoffice", __name__, url_prefix="/backoffice")
ROME = ZoneInfo("Europe/Rome")

PAGE_SIZE = 50
STAFF_MENU = [
    ("backoffice.home", _l("Clienti")),
    ("backoffice.imports", _l("Importazioni")),
    ("backoffice.documents", _l("Documenti")),
    ("backoffice.audit_log", _l("Registro attività")),
]


@bp.before_request
def require_staff():
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if not current_user.is_staff:
        abort(404)  # a customer learns nothing of what is here


ADMIN_MENU = [("backoffice.operators", _l("Operatori"))]


def require_admin():
    if current_user.role != User.ADMIN:
        abort(403)


@bp.app_context_processor
def staff_context():
    # current_user is None outside a request (a mail rendered by the import, say).
    is_admin = bool(current_user) and current_user.is_authenticated and current_user.role == User.ADMIN
    return {"staff_menu": STAFF_MENU + (ADMIN_MENU if is_admin else [])}


# --- customers ---------------------------------------------------------------------------------------

def search_customers(text):
    """Customers matching a code, a name, a codice fiscale / partita IVA, a POD/PDR or an email."""
    text = text.strip()
    if not text:
        return Customer.select().where(False)
    query = Customer.select().order_by(Customer.code)
    upper = text.upper().replace(" ", "")
    if text.isdigit() and len(text) <= 6:
        return query.where(Customer.code.startswith(text.zfill(6) if len(text) == 6 else text))
    if "@" in text:
        users = User.select(User.customer).where(User.email.contains(text.lower()))
        return query.where(Customer.email.contains(text.lower()) | Customer.id.in_(users))
    points = SupplyPoint.select(SupplyPoint.customer).where(SupplyPoint.pod_pdr == upper)
    return query.where(
        Customer.name.contains(text.upper()) | (Customer.tax_code == upper) | (Customer.vat_number == upper)
        | Customer.id.in_(points)
    )


@bp.route("/")
def home():
    """Customers: active search (htmx swaps the results as one types; the URL keeps the text)."""
    text = request.args.get("q", "")[:100]
    page = max(request.args.get("page", 1, type=int), 1)
    results = list(search_customers(text).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1))
    return render("backoffice/customers.html", title=_("Clienti"), q=text, page=page,
                  customers=results[:PAGE_SIZE], more=len(results) > PAGE_SIZE)


@bp.route("/clienti/<code>")
def customer(code):
    customer = Customer.get_or_none(Customer.code == code)
    if customer is None:
        abort(404)
    # Seeing a customer's personal data is itself on the record.
    audit.record("operator_viewed_customer", user=current_user._get_current_object(), customer=customer)
    users = list(User.select().where(User.customer == customer).order_by(User.id))
    consents = {}
    for consent in Consent.select().where(Consent.user.in_([u.id for u in users])).order_by(Consent.recorded_at):
        consents.setdefault(consent.user_id, {})[consent.kind] = consent  # the newest wins
    return render(
        "backoffice/customer.html",
        title=customer.name,
        customer=customer,
        points=list(SupplyPoint.for_customer(customer)),
        invoices=list(Invoice.for_customer(customer).order_by(Invoice.issue_date.desc()).limit(12)),
        invoice_count=Invoice.for_customer(customer).count(),
        readings=list(Reading.select(Reading, SupplyPoint).join(SupplyPoint)
                      .where(SupplyPoint.customer == customer).order_by(Reading.date.desc()).limit(12)),
        tickets=list(Ticket.for_customer(customer).order_by(Ticket.updated_at.desc()).limit(10)),
        users=users,
        consents=consents,
        now=utcnow(),
        trail=list(AuditLog.select(AuditLog, User).join(User, on=(AuditLog.user == User.id), join_type=JOIN.LEFT_OUTER)
                   .where(AuditLog.customer == customer).order_by(AuditLog.id.desc()).limit(30)),
        masked_tax_code=identifiers.mask(customer.tax_code),
        form=EmptyForm(),
    )


# --- actions on a customer's users -----------------------------------------------------------------

ACTIONS = {
    "resend": _l("Email di conferma inviata di nuovo."),
    "unlock": _l("Accesso sbloccato."),
    "disable": _l("Accesso disattivato: le sue sessioni sono chiuse."),
    "enable": _l("Accesso riattivato."),
}


@bp.route("/utenti/<int:user_id>/<any(resend, unlock, disable, enable):action>", methods=["POST"])
def user_action(user_id, action):
    EmptyForm().validate_on_submit() or abort(400)
    user = User.get_or_none(User.id == user_id, User.role.in_(User.CUSTOMER_ROLES))
    if user is None:
        abort(404)
    operator = current_user._get_current_object()
    with write_transaction():
        if action == "resend":
            if user.confirmed_at is not None:
                abort(409)
            token = accounts.issue_token(user, EmailToken.CONFIRM)
            mailer.queue(user.email, _l("Conferma la registrazione"), "confirm_registration",
                         language=user.language, user=user, customer=user.customer,
                         link=mail_link("auth.confirm", token=token))
        elif action == "unlock":
            User.update(locked_until=None, failed_logins=0).where(User.id == user.id).execute()
        elif action == "disable":
            User.update(disabled=True).where(User.id == user.id).execute()
            UserSession.delete().where(UserSession.user == user).execute()
        else:
            User.update(disabled=False).where(User.id == user.id).execute()
        audit.record(f"operator_{action}_user", user=operator, customer=user.customer_id, target_user=user.id)
    flash(str(ACTIONS[action]), "success")
    return redirect(url_for("backoffice.customer", code=user.customer.code), 303)


def rome_midnight_utc(day):
    """The start of a Rome day as the naive UTC the database stores."""
    return datetime.combine(day, time.min, tzinfo=ROME).astimezone(UTC).replace(tzinfo=None)


# --- imports from the browser -------------------------------------------------------------------

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
            folder = Path(current_app.config["FILE_STORE"]).parent / "imports" / secrets.token_hex(8)
            try:
                names = import_jobs.save_upload(request.files.getlist("files"), folder,
                                                current_app.config["IMPORT_MAX_BYTES"])
            except import_jobs.UploadProblem as problem:
                shutil.rmtree(folder, ignore_errors=True)
                error = str(problem)
            else:
                with write_transaction():
                    job = import_jobs.create(current_user._get_current_object(), folder, names)
                    audit.record("import_uploaded", user=current_user._get_current_object(), job=job.id, files=names)
                import_jobs.start(current_app._get_current_object())
                return redirect(url_for("backoffice.import_job", job_id=job.id), 303)
        else:
            abort(400)
    jobs = list(ImportJob.select(ImportJob, User).join(User, JOIN.LEFT_OUTER).order_by(ImportJob.id.desc()).limit(20))
    return render("backoffice/imports.html", title=_("Importazioni"),
                  form=form, error=error, jobs=jobs), 422 if error else 200


@bp.route("/importazioni/<int:job_id>")
def import_job(job_id):
    """The job's progress; while it runs, htmx polls the `job` block every second."""
    job = ImportJob.get_or_none(ImportJob.id == job_id)
    if job is None:
        abort(404)
    return render("backoffice/import_job.html", title=_("Importazione %(n)d", n=job.id), job=job)


# --- documents -------------------------------------------------------------------------------------

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
                        published_on=form.published_on.data or datetime.now(ROME).date(),
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
    listed = list(Document.select(Document, Customer).join(Customer, JOIN.LEFT_OUTER)
                  .order_by(Document.published_on.desc(), Document.id.desc()).limit(100))
    return render("backoffice/documents.html", title=_("Documenti"), form=form,
                  documents=listed, action_form=EmptyForm()), status


@bp.route("/documenti/<int:document_id>/<any(unpublish, publish):action>", methods=["POST"])
def document_action(document_id, action):
    EmptyForm().validate_on_submit() or abort(400)
    document = Document.get_or_none(Document.id == document_id)
    if document is None:
        abort(404)
    with write_transaction():
        Document.update(unpublished_at=utcnow() if action == "unpublish" else None).where(
            Document.id == document.id).execute()
        audit.record(f"document_{action}ed", user=current_user._get_current_object(), customer=document.customer_id,
                     document=document.id, title=document.title)
    flash(_("Documento ritirato: i clienti non lo vedono più.") if action == "unpublish" else _("Documento di nuovo pubblicato."), "success")
    return redirect(url_for("backoffice.documents"), 303)


# --- operators (administrators only) ---------------------------------------------------------------

@bp.route("/operatori", methods=["GET", "POST"])
def operators():
    require_admin()
    form = OperatorForm()
    status = 200
    if form.validate_on_submit():
        try:
            with write_transaction():
                created = accounts.create_staff(form.email.data, form.password.data, form.role.data)
                audit.record("operator_created", user=current_user._get_current_object(),
                             target_user=created.id, role=created.role)
        except ValueError as error:
            form.email.errors.append(str(error))
            status = 422
        else:
            flash(_("Operatore creato: al primo accesso attiverà il secondo fattore."), "success")
            return redirect(url_for("backoffice.operators"), 303)
    elif form.is_submitted():
        status = 422
    staff = list(User.select().where(User.role.in_(User.STAFF_ROLES)).order_by(User.email))
    return render("backoffice/operators.html", title=_("Operatori"), form=form, staff=staff,
                  action_form=EmptyForm()), status


@bp.route("/operatori/<int:user_id>/<any(reset_second_factor, disable, enable):action>", methods=["POST"])
def operator_action(user_id, action):
    require_admin()
    EmptyForm().validate_on_submit() or abort(400)
    operator = User.get_or_none(User.id == user_id, User.role.in_(User.STAFF_ROLES))
    if operator is None:
        abort(404)
    if operator.id == current_user.id and action == "disable":
        abort(409)  # an administrator does not lock themselves out
    with write_transaction():
        if action == "reset_second_factor":
            # The next login enrols a new authenticator; the sessions opened with the old one end.
            User.update(totp_secret=None, totp_last_step=None).where(User.id == operator.id).execute()
            if operator.id != current_user.id:
                UserSession.delete().where(UserSession.user == operator).execute()
        else:
            User.update(disabled=action == "disable").where(User.id == operator.id).execute()
            if action == "disable":
                UserSession.delete().where(UserSession.user == operator).execute()
        audit.record(f"operator_{action}", user=current_user._get_current_object(), target_user=operator.id)
    flash(_("Fatto."), "success")
    return redirect(url_for("backoffice.operators"), 303)


# --- the audit log -----------------------------------------------------------------------------------

@bp.route("/registro")
def audit_log():
    """Filter by user (email, username or customer code), customer code, action and dates."""
    args = request.args
    query = (AuditLog.select(AuditLog, User, Customer)
             .join(User, on=(AuditLog.user == User.id), join_type=JOIN.LEFT_OUTER)
             .switch(AuditLog)
             .join(Customer, on=(AuditLog.customer == Customer.id), join_type=JOIN.LEFT_OUTER)
             .order_by(AuditLog.id.desc()))
    errors = {}
    if args.get("user"):
        who = args["user"].strip().lower()
        query = query.where((User.email == who) | (User.username == who))
    if args.get("customer"):
        query = query.where(Customer.code == args["customer"].strip())
    if args.get("action"):
        query = query.where(AuditLog.action == args["action"].strip())
    for name in ("since", "until"):
        if args.get(name):
            try:
                day = datetime.strptime(args[name], "%Y-%m-%d").date()
            except ValueError:
                errors[name] = _("Data non valida: usa il calendario o AAAA-MM-GG.")
                continue
            if name == "since":
                query = query.where(AuditLog.at >= rome_midnight_utc(day))
            else:
                query = query.where(AuditLog.at < rome_midnight_utc(day + timedelta(days=1)))
    page = max(args.get("page", 1, type=int), 1)
    entries = list(query.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1))
    # The filter offers the actions the log holds, by their labels: (code, label).
    codes = [a for (a,) in AuditLog.select(AuditLog.action).distinct().tuples()]
    actions = sorted(((code, labels.label("audit_action", code)) for code in codes), key=lambda pair: pair[1].lower())
    return render("backoffice/audit.html", title=_("Registro attività"), entries=entries[:PAGE_SIZE],
                  details=described(entries[:PAGE_SIZE]), more=len(entries) > PAGE_SIZE, page=page, args=args,
                  errors=errors, actions=actions)


def described(entries):
    """Each entry's details as a person reads them ({entry id: text}), the users they name by
    their email (one query for the page)."""
    values = {entry.id: labels.detail_values(entry.detail) for entry in entries}
    user_ids = {v["target_user"] for v in values.values() if isinstance(v.get("target_user"), int)}
    emails = dict(User.select(User.id, User.email).where(User.id.in_(user_ids)).tuples()) if user_ids else {}
    return {entry_id: labels.describe_detail(v, emails) for entry_id, v in values.items()}
