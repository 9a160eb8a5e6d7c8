"""The customer's own account: "Cambio Password" (a dialog over the page, or a plain page
without JavaScript; staff have the same in the back office) and the language."""
import secrets

from flask import Blueprint, abort, current_app, flash, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user

import accounts
import audit
import i18n
import ratelimit
from database import write_transaction
from forms import ApiTokenForm, ChangePasswordForm, EmptyForm, NotificationsForm, RevokeApiTokenForm
from mailer import notify_password_changed
from models import ApiToken, User, token_digest, utcnow
from views.common import safe_next, too_many
from views.customer_area import area_blueprint, portal_url
from views.rendering import is_htmx, render

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


def customer_data_page(form=None, token_form=None, new_token=None):
    """Dati Anagrafici, or (htmx) the block its HX-Target names: the API keys' list after a key
    is made or revoked. `new_token` is the key just made, shown this once and never again."""
    return render("account/customer_data.html", title=_("Dati Anagrafici"), customer=current_user.customer,
                  form=form or NotificationsForm(obj=current_user), token_form=token_form or ApiTokenForm(),
                  revoke_form=RevokeApiTokenForm(), api_tokens=list(ApiToken.live_of(current_user.id)), new_token=new_token,
                  api_url=current_app.config["PORTAL_BASE_URL"] + url_for("api.supply_points"))


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
