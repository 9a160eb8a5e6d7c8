"""The customer's own account: "Cambio Password" (a dialog over the page, or a plain page
without JavaScript; staff have the same in the back office), the language, and Dati Anagrafici
(the contact data the customer edits, the mail preference, the API keys)."""
import secrets
from datetime import timedelta
from urllib.parse import urlencode

from flask import Blueprint, abort, current_app, flash, g, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from werkzeug.routing import BuildError

import accounts
import audit
import contacts
import i18n
import mailer
import ratelimit
from database import write_transaction
from forms import ApiTokenForm, ChangePasswordForm, ContactDataForm, EmptyForm, NotificationsForm, RevokeApiTokenForm
from mailer import mail_link, notify_password_changed
from models import ApiToken, Customer, EmailToken, User, token_digest, utcnow
from views.common import invalid_link, read_only_refusal, safe_next, too_many
from views.customer_area import area_blueprint, form_address_opens, portal_url
from views.rendering import is_htmx, render, render_fragment

bp = area_blueprint("account", __name__)


@bp.route("/cambio-password", methods=["GET", "POST"])
def change_password():
    return password_change(portal_url("account.change_password"), portal_url("home.home"), url_for("home.home"))


def password_change(form_url, cancel_url, done_url):
    """Cambio Password for the logged-in user, a customer's or staff (the back office's page
    calls it too): the same form, rules and template. With htmx the answer is the `dialog_slot`
    block (a modal <dialog>); without, a page, and `done_url` once the password is changed."""
    user = current_user._get_current_object()
    form = ChangePasswordForm()
    form.user = user
    urls = {"form_url": form_url, "cancel_url": cancel_url}
    status = 200
    if form.is_submitted():
        wait = ratelimit.hit("password-change", user.id)
        if wait:
            too_many(form.current_password, wait)
            return render("account/password.html", form=form, **urls), 429
    if form.validate_on_submit():
        with write_transaction():
            accounts.set_password(user, form.password.data)
            accounts.end_all_sessions(user)  # every other device is logged out...
            accounts.start_session(user, new_login=False)  # ...and this one gets a new session
            notify_password_changed(user)
            audit.record("password_changed", user=user)
        if is_htmx():
            return render("account/password.html", form=form, done=True, **urls)
        flash(_("Password cambiata."), "success")
        return redirect(done_url, 303)
    if form.is_submitted():
        status = 422
        if form.current_password.errors:
            audit.record("password_change_failed", user=user)
    return render("account/password.html", form=form, **urls), status


lang_bp = Blueprint("language", __name__)


@lang_bp.route("/lingua", methods=["POST"])
def set_language():
    """Open to everyone (the login page has the switch too)."""
    EmptyForm().validate_on_submit() or abort(400)
    language = request.form.get("lang")
    if language not in i18n.LANGUAGES:
        abort(400)
    session["lang"] = language
    if current_user.is_authenticated:
        with write_transaction():
            User.update(language=language).where(User.id == current_user.id).execute()
    return redirect(safe_next(request.form.get("next")) or url_for("auth.login"), 303)


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
        return redirect(portal_url("account.customer_data"), 303)
    return customer_data_page(form)


def customer_data_page(form=None, token_form=None, new_token=None, contact_form=None, contact_notice=None,
                       customer=None):
    """Dati Anagrafici, or (htmx) the block its HX-Target names: the contact data after they are
    sent (with `customer` as just saved), the API keys' list after a key is made or revoked.
    `new_token` is the key just made, shown this once and never again."""
    customer = customer or current_user.customer
    return render("account/customer_data.html", title=_("Dati Anagrafici"), customer=customer,
                  form=form or NotificationsForm(obj=current_user), token_form=token_form or ApiTokenForm(),
                  revoke_form=RevokeApiTokenForm(), api_tokens=list(ApiToken.live_of(current_user.id)), new_token=new_token,
                  api_url=current_app.config["PORTAL_BASE_URL"] + url_for("api.supply_points"),
                  contact_form=contact_form or stored_contacts_form(customer), contact_notice=contact_notice,
                  pending_email=accounts.live_token(current_user.id, EmailToken.NEW_EMAIL),
                  change_request_url=change_request_url())


# --- Dati Anagrafici: the contact data ----------------------------------------------------------------
#
# Which email: the form's Email is the customer's contact address (Customer.email, what the
# billing system holds and gets back in the contacts export). Once the new address is confirmed
# it is also the login and notification address (User.email) of the user who confirmed it, if
# that user is the holder (owner): one address for the holder, proved by the link. A delegate
# changes the customer's address only; their own login address stays theirs, and they never
# move the holder's (where the holder's password resets go).

# `{{ number|phone }}` in every template (the back office's customer page too): a stored number
# as people read it (contacts.display_phone).
bp.add_app_template_filter(contacts.display_phone, "phone")

EMAIL_RESEND_AFTER = timedelta(minutes=1)  # the same new address again sooner: a double click, no new mail


def stored_contacts_form(customer):
    """The form as the data are stored: Italian phones as Italians write them."""
    return ContactDataForm(formdata=None, data={
        "email": customer.email or "",
        **{name: contacts.display_phone(getattr(customer, name)) for name in contacts.PHONE_FIELDS},
    })


def contacts_form(customer):
    form = ContactDataForm()
    form.current_email = customer.email
    return form


def change_request_url():
    """"Chiedi una modifica" of the read-only data: the new-ticket form, filled in."""
    values = {
        "category": "contract",
        "subject": str(_l("Correzione dei dati anagrafici")),
        "message": str(_l("Vi chiedo di correggere questi dati del cliente %(code)s (scrivi quali e come):",
                          code=current_user.customer.code)),
    }
    try:
        return portal_url("tickets.new_ticket", **values)
    except BuildError:  # the tickets' form is not part of this portal (yet): its path
        if g.get("supply_point") is not None:
            values["sp"] = g.supply_point.code
        return "/ticket/nuovo?" + urlencode(values)


@bp.route("/dati-anagrafici/contatti/verifica", methods=["POST"])
def validate_contact():
    """Inline validation (htmx, on change): just the error of the field that changed."""
    customer = current_user.customer
    form = contacts_form(customer)
    name = request.headers.get("HX-Trigger-Name", "")
    if name not in contacts.FIELDS:
        abort(400)
    if ratelimit.hit("contacts-check", current_user.id):
        return "", 204  # nothing to say now: the save checks everything again
    form.validate()
    return render_fragment("registration/_field_error.html", field=form[name], errors=form[name].errors)


@bp.route("/dati-anagrafici/contatti", methods=["POST"])
def save_contacts():
    """The phones change at once; a new email is mailed a confirmation link and changes when it
    is followed (confirm_email). 422 with what was typed on errors; 303 (or, with htmx, the
    section again) once saved. Sent twice, it changes things once: each field is compared with
    the stored value inside the write transaction."""
    if not current_user.can_write:
        return read_only_refusal()
    user = current_user._get_current_object()
    form = contacts_form(user.customer)
    wait = ratelimit.hit("contacts-change", user.id)
    if wait:
        too_many(form.email, wait)
        return customer_data_page(contact_form=form), 429
    if not form.validate():
        return customer_data_page(contact_form=form), 422
    with write_transaction():
        customer = Customer.get_by_id(user.customer_id)  # as it is now, under the write lock
        new_email = form.cleaned["email"]
        email_sent = False
        if new_email and not contacts.same("email", new_email, customer.email):
            pending = accounts.live_token(user, EmailToken.NEW_EMAIL)
            if pending and pending.new_email == new_email and utcnow() - pending.created_at < EMAIL_RESEND_AFTER:
                email_sent = True  # the same form again: the mail is on its way
            else:
                wait = ratelimit.hit("email-change", user.id)
                if wait:
                    too_many(form.email, wait)
                    return customer_data_page(contact_form=form), 429
                send_email_confirmation(user, customer, new_email)
                email_sent = True
        changed = [name for name in contacts.PHONE_FIELDS
                   if contacts.record_change(customer, name, form.cleaned[name], user)]
    notice = contacts_notice(changed, new_email if email_sent else None)
    if is_htmx():
        return customer_data_page(contact_notice=notice, customer=customer)
    flash(notice, "success")
    return redirect(portal_url("account.customer_data"), 303)


def contacts_notice(changed, new_email):
    if new_email:
        return _("Ti abbiamo mandato un link a %(email)s: l'indirizzo cambierà quando lo aprirai (vale un'ora).", email=new_email)
    if changed:
        return _("Contatti salvati.")
    return _("Nessuna modifica: i contatti erano già questi.")


def send_email_confirmation(user, customer, new_email):
    """Mail the link to the new address (an earlier link still waiting stops working)."""
    accounts.void_tokens(user, EmailToken.NEW_EMAIL)
    token = accounts.issue_token(user, EmailToken.NEW_EMAIL, new_email=new_email)
    mailer.queue(new_email, _l("Conferma il nuovo indirizzo email"), "email_change", language=user.language,
                 customer=customer, new_email=new_email, link=mail_link("email_change.confirm_email", token=token))
    audit.record("email_change_requested", user=user, new=new_email)


# The confirmation link works without a login (like registration's): whoever opens the mail
# holds the new mailbox, which is what it proves. GET shows a button, POST confirms: a mail
# scanner that opens links confirms nothing.
email_bp = Blueprint("email_change", __name__)


@email_bp.route("/email/conferma/<token>", methods=["GET", "POST"])
def confirm_email(token):
    found = accounts.find_token(token, EmailToken.NEW_EMAIL)
    if found is None or not found.user.is_active or not found.user.can_write:
        return invalid_link()
    form = EmptyForm()
    if form.validate_on_submit():
        with write_transaction():
            if not accounts.use_token(found):
                return invalid_link()
            apply_new_email(found.user, found.new_email)
        flash(_("Indirizzo email cambiato: ora è %(email)s.", email=found.new_email), "success")
        if current_user.is_authenticated and current_user.id == found.user_id:
            return redirect(url_for("account.customer_data"), 303)
        return redirect(url_for("auth.login"), 303)
    return render("account/contact_email_confirm.html", form=form, new_email=found.new_email)


def apply_new_email(user, new_email):
    """The confirmed address becomes the customer's (and the holder's login address); the old
    ones are told, with a way back if it was not the customer."""
    customer = Customer.get_by_id(user.customer_id)
    old_addresses = {address for address in (customer.email, user.email if user.role == User.OWNER else None)
                     if address and address != new_email}
    contacts.record_change(customer, "email", new_email, user)
    if user.role == User.OWNER and user.email != new_email:
        User.update(email=new_email).where(User.id == user.id).execute()
        audit.record("login_email_changed", user=user, old=user.email, new=new_email)
    for address in sorted(old_addresses):
        mailer.queue(address, _l("Il tuo indirizzo email è cambiato"), "email_changed", language=user.language,
                     customer=customer, new_email=new_email, when=utcnow(),
                     support_email=current_app.config["PORTAL_SUPPORT_EMAIL"],
                     support_phone=current_app.config["PORTAL_SUPPORT_PHONE"])


# --- Dati Anagrafici: keys to the personal data API (views/api.py) ----------------------------------

@bp.route("/dati-anagrafici/chiavi-api", methods=["POST"])
def create_api_token():
    """A new read-only key. Only its digest is stored, so the answer itself shows it (no
    redirect: a flash message would carry it in the session cookie)."""
    user = current_user._get_current_object()
    token_form = ApiTokenForm()
    token_form.user = user
    if not token_form.validate_on_submit():
        return customer_data_page(token_form=token_form), 422
    secret = "spt_" + secrets.token_urlsafe(32)  # the prefix lets secret scanners know it
    with write_transaction():
        token = ApiToken.create(user=user, name=token_form.name.data, token_hash=token_digest(secret))
        audit.record("api_token_created", user=user, identifier=token.id, name=token.name)
    return customer_data_page(new_token=secret), 201


@bp.route("/dati-anagrafici/chiavi-api/revoca", methods=["POST"])
def revoke_api_token():
    """The key stops working at once; its row stays, revoked, for the audit log. (CSRF is
    checked before the view: an invalid form here is a key id that is no key.)"""
    user = current_user._get_current_object()
    form = RevokeApiTokenForm()
    form.validate_on_submit() or abort(404)
    with write_transaction():
        token = ApiToken.live_of(user).where(ApiToken.id == form.token.data).first() or abort(404)
        ApiToken.update(revoked_at=utcnow()).where(ApiToken.id == token.id).execute()
        audit.record("api_token_revoked", user=user, identifier=token.id, name=token.name)
    if is_htmx():
        return customer_data_page()
    flash(_("Chiave «%(name)s» revocata.", name=token.name), "success")
    return redirect(portal_url("account.customer_data"), 303)


# Where a refused form leaves a browser without JavaScript, opened again: the form's page.
form_address_opens(bp, "/dati-anagrafici/contatti", "account.customer_data")
form_address_opens(bp, "/dati-anagrafici/chiavi-api", "account.customer_data")
form_address_opens(bp, "/dati-anagrafici/chiavi-api/revoca", "account.customer_data")
