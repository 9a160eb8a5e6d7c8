"""Registration in two steps (customer code, codice fiscale or partita IVA and one thing printed on
a bill; then the login's data), the privacy notice, and the confirmation by email."""
import time
from datetime import timedelta

from flask import Blueprint, abort, current_app, flash, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

import accounts
import audit
import i18n
import identifiers
import mailer
import ratelimit
from database import write_transaction
from forms import EmptyForm, RegisterCustomerForm, RegisterUserForm
from mailer import mail_link
from models import AuditLog, Consent, Customer, EmailToken, Invoice, SupplyPoint, User, utcnow
from views.common import invalid_link, too_many
from views.rendering import render, render_fragment

bp = Blueprint("registration", __name__)

REGISTRATION_STEP_TIMEOUT = 30 * 60  # seconds between step 1 and step 2
PROOF_INVOICE_MONTHS = 24


# --- registration -----------------------------------------------------------------------------

@bp.route("/registrazione", methods=["GET", "POST"])
def register():
    form = RegisterCustomerForm()
    status = 200
    if form.validate_on_submit():
        wait = ratelimit.hit("register-ip", request.remote_addr) or ratelimit.hit(
            "register-account", form.customer_code.data)
        if wait:
            too_many(form.customer_code, wait)
            return render("registration/register_customer.html", form=form), 429
        customer = find_registering_customer(form)
        if customer is not None:
            session["registration"] = {"customer_id": customer.id, "at": int(time.time())}
            return redirect(url_for("registration.register_user"), 303)
        audit.record("registration_mismatch", customer_code=form.customer_code.data)
        form.bill_proof.errors.append(
            _("Questi dati non corrispondono a un nostro cliente: controlla codice cliente, "
              "codice fiscale o partita IVA e il dato della bolletta.")
        )
        status = 422
    elif form.is_submitted():
        status = 422
    return render("registration/register_customer.html", form=form), status


def find_registering_customer(form):
    """The customer the three answers prove, or None (without saying which one was wrong)."""
    customer = Customer.get_or_none(Customer.code == form.customer_code.data)
    if customer is None or form.tax_id.data not in (customer.tax_code, customer.vat_number):
        return None
    proof = form.bill_proof.data.strip().upper()
    kind = current_app.config["REGISTRATION_PROOF"]
    if kind in ("invoice_or_point", "invoice"):
        since = utcnow().date() - timedelta(days=PROOF_INVOICE_MONTHS * 366 // 12)
        if Invoice.for_customer(customer).where(
            Invoice.number == proof, Invoice.issue_date >= since
        ).exists():
            return customer
    if kind in ("invoice_or_point", "point"):
        try:
            code = identifiers.clean_pod_pdr(proof)
        except identifiers.InvalidCode:
            return None
        if SupplyPoint.for_customer(customer).where(SupplyPoint.pod_pdr == code).exists():
            return customer
    return None


def registering_customer():
    """The customer step 1 proved, if it was proved in the last 30 minutes."""
    state = session.get("registration") or {}
    if time.time() - state.get("at", 0) > REGISTRATION_STEP_TIMEOUT:
        return None
    return Customer.get_or_none(Customer.id == state.get("customer_id"))


def registration_user_form(customer):
    form = RegisterUserForm()
    form.customer_code = customer.code
    if customer.is_person:  # the person is the customer: name and codice fiscale are known
        del form.first_name, form.last_name, form.tax_code
    return form


@bp.route("/registrazione/dati", methods=["GET", "POST"])
def register_user():
    customer = registering_customer()
    if customer is None:
        flash(_("La registrazione è scaduta: ricomincia dal primo passo."), "info")
        return redirect(url_for("registration.register"), 303)
    form = registration_user_form(customer)
    status = 200
    if form.is_submitted() and (wait := checks_exceeded()):
        too_many(form.username, wait)
        return render("registration/register_user.html", form=form, customer=customer), 429
    if form.validate_on_submit():
        with write_transaction():
            create_registration(customer, form)
        session.pop("registration", None)
        return redirect(url_for("registration.registration_sent"), 303)
    if form.is_submitted():
        status = 422
    return render("registration/register_user.html", form=form, customer=customer), status


@bp.route("/registrazione/verifica/<step>", methods=["POST"])
def register_validate(step):
    """Inline validation (htmx): just the error of the field that changed."""
    if step == "cliente":
        form = RegisterCustomerForm()
    elif step == "dati" and (customer := registering_customer()) is not None:
        form = registration_user_form(customer)
    else:
        abort(404)
    name = request.headers.get("HX-Trigger-Name", "")
    field = form._fields.get(name)
    if field is None or name == "csrf_token":
        abort(400)
    if step == "dati":
        if checks_exceeded():
            return "", 429  # htmx swaps nothing; the final submit still checks every field
        form.tell_if_username_taken = False  # only the final submit says so, and it is limited too
    form.validate()
    return render_fragment("registration/_field_error.html", field=field, errors=field.errors)


def checks_exceeded():
    """Step 2's checks (inline and submits), counted per IP and per registration under way:
    whether a username is taken must not be asked without limit. The seconds to wait, or 0."""
    state = session.get("registration") or {}
    return ratelimit.hit("register-check-ip", request.remote_addr) or ratelimit.hit(
        "register-check", f"{state.get('customer_id')}:{state.get('at')}")


def create_registration(customer, form):
    # Hashed on both paths: an already registered customer's answer takes as long as a new one's.
    password_hash = accounts.hash_password(form.password.data)
    owner = customer.owner()
    if owner is not None and owner.confirmed_at is not None:
        # Already registered: the same answer on screen, and a word to the real owner, once a
        # day at most (more would let anyone with a bill flood the owner's mailbox).
        if not AuditLog.recorded_since("registration_repeated", owner, utcnow() - timedelta(days=1)):
            mailer.queue(
                owner.email, _l("Tentativo di registrazione"), "registration_exists",
                language=owner.language, user=owner, login_url=mail_link("auth.login"),
                reset_url=mail_link("auth.forgot_password"),
            )
        audit.record("registration_repeated", user=owner)
        return
    if owner is not None:  # an unconfirmed earlier attempt: this one replaces it
        owner.delete_instance()
    user = User.create(
        customer=customer,
        role=User.OWNER,
        username=form.username.data or None,
        email=form.email.data,
        password_hash=password_hash,
        first_name=form.first_name.data if "first_name" in form else None,
        last_name=form.last_name.data if "last_name" in form else None,
        tax_code=form.tax_code.data if "tax_code" in form else customer.tax_code,
        mobile=form.mobile.data or None,
        language=i18n.language(),
    )
    answers = {
        "privacy": True,
        "marketing": form.consent_marketing.data == "yes",
        "third_parties": form.consent_third_parties.data == "yes",
        "profiling": form.consent_profiling.data == "yes",
    }
    for kind, granted in answers.items():
        Consent.create(user=user, kind=kind, granted=granted, text_version=Consent.TEXT_VERSION, ip=request.remote_addr)
    token = accounts.issue_token(user, EmailToken.CONFIRM)
    mailer.queue(
        user.email, _l("Conferma la registrazione"), "confirm_registration", language=user.language,
        user=user, customer=customer, link=mail_link("registration.confirm", token=token),
    )
    audit.record("registration", user=user)


@bp.route("/informativa-privacy")
def privacy_notice():
    """The notice the consents refer to. A utility puts its own text in
    instance/templates/auth/privacy.html."""
    return render("auth/privacy.html", version=Consent.TEXT_VERSION)


@bp.route("/registrazione/inviata")
def registration_sent():
    return render("auth/message.html", title=_("Controlla la tua email"), message=_(
        "Ti abbiamo inviato un'email con un link per confermare la registrazione. Il link vale "
        "un'ora. Se non la trovi, guarda anche nella posta indesiderata."))


@bp.route("/registrazione/conferma/<token>", methods=["GET", "POST"])
def confirm(token):
    """GET shows a button, POST confirms: a mail scanner that opens links confirms nothing."""
    found = accounts.find_token(token, EmailToken.CONFIRM)
    form = EmptyForm()
    if found is None:
        return invalid_link()
    if form.validate_on_submit():
        with write_transaction():
            if not accounts.use_token(found):
                return invalid_link()
            User.update(confirmed_at=utcnow()).where(User.id == found.user_id).execute()
            audit.record("registration_confirmed", user=found.user)
        flash(_("Registrazione confermata: ora puoi accedere."), "success")
        return redirect(url_for("auth.login"), 303)
    return render("registration/confirm.html", form=form)


@bp.route("/registrazione/reinvia", methods=["POST"])
def resend_confirmation():
    """After a right password on an unconfirmed account: a fresh confirmation link."""
    EmptyForm().validate_on_submit() or abort(400)
    user = User.get_or_none(User.id == session.pop("resend_user_id", None))
    if user is not None and user.confirmed_at is None and not ratelimit.hit("resend-account", user.id):
        with write_transaction():
            token = accounts.issue_token(user, EmailToken.CONFIRM)
            mailer.queue(
                user.email, _l("Conferma la registrazione"), "confirm_registration",
                language=user.language, user=user, customer=user.customer,
                link=mail_link("registration.confirm", token=token),
            )
            audit.record("confirmation_resent", user=user)
    return redirect(url_for("registration.registration_sent"), 303)
