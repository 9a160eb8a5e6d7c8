"""Clienti: the search, a customer's page, and the actions on a customer's users."""
from flask import abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from playhouse.flask_utils import get_object_or_404

import accounts
import audit
import identifiers
import mailer
from database import write_transaction
from forms import CustomerSearchForm, EmptyForm
from mailer import mail_link
from models import (
    AuditLog,
    Consent,
    Customer,
    EmailToken,
    Invoice,
    Reading,
    SupplyPoint,
    Ticket,
    User,
    UserSession,
    utcnow,
)
from views.backoffice import PAGE_SIZE, bp
from views.rendering import render


@bp.route("/", methods=["GET", "POST"])
def home():
    """Customers: active search (htmx swaps the results as one types).

    The text is posted and never put in a URL, nor are its pages: it may be a codice fiscale,
    and a URL stays in the access log, the browser's history and the Referer of the next click.
    An old bookmark's ?q= is sent to the empty search, and its text leaves the address bar. A
    search changes nothing: its answer is the page (or the results, to htmx), not a redirect,
    which would need the text in the URL again. CSRFProtect checked the token already."""
    if request.method == "GET" and request.args:
        return redirect(url_for("backoffice.home"), 303)
    search = CustomerSearchForm()
    text, page = search.q.data or "", search.page()
    results = list(Customer.search(text).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1))
    return render("backoffice/customers.html", title=_("Clienti"), search=search, q=text, page=page,
                  customers=results[:PAGE_SIZE], more=len(results) > PAGE_SIZE)


@bp.route("/clienti/<code>")
def customer(code):
    customer = get_object_or_404(Customer, Customer.code == code)
    # Seeing a customer's personal data is itself on the record.
    audit.record("operator_viewed_customer", user=current_user._get_current_object(), customer=customer)
    users = list(User.of_customer(customer))
    return render(
        "backoffice/customer.html",
        title=customer.name,
        customer=customer,
        points=list(SupplyPoint.for_customer(customer)),
        invoices=list(Invoice.for_customer(customer).order_by(Invoice.issue_date.desc()).limit(12)),
        invoice_count=Invoice.for_customer(customer).count(),
        readings=list(Reading.for_customer(customer).limit(12)),
        tickets=list(Ticket.for_customer(customer).order_by(Ticket.updated_at.desc()).limit(10)),
        users=users,
        consents=Consent.latest_by_user(users),
        now=utcnow(),
        trail=list(AuditLog.for_customer(customer).limit(30)),
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
    user = get_object_or_404(User, User.id == user_id, User.role.in_(User.CUSTOMER_ROLES))
    operator = current_user._get_current_object()
    with write_transaction():
        if action == "resend":
            if user.confirmed_at is not None or user.role != User.OWNER:  # a delegate's is an invitation
                abort(409)
            token = accounts.issue_token(user, EmailToken.CONFIRM)
            mailer.queue(user.email, _l("Conferma la registrazione"), "confirm_registration",
                         language=user.language, user=user, customer=user.customer,
                         link=mail_link("registration.confirm", token=token))
        elif action == "unlock":
            accounts.unlock(user)
        elif action == "disable":
            User.update(disabled=True).where(User.id == user.id).execute()
            UserSession.delete().where(UserSession.user == user).execute()
        else:
            if user.revoked_at or user.closed_at:  # a revoked delegate or a closed account stays so
                abort(409)
            User.update(disabled=False).where(User.id == user.id).execute()
        audit.record(f"operator_{action}_user", user=operator, customer=user.customer_id, target_user=user.id)
    flash(str(ACTIONS[action]), "success")
    return redirect(url_for("backoffice.customer", code=user.customer.code), 303)
