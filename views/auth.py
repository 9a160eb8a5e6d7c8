"""Login (and staff's second factor), logout, forgotten password and username.

No answer tells whether a customer code or an email exists: a wrong code and a wrong password
get the same message, and "forgot" forms always answer that a mail is on its way.
"""
import time
from datetime import timedelta
from urllib.parse import urlencode

from flask import Blueprint, abort, current_app, flash, g, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

import accounts
import audit
import i18n
import identifiers
import mailer
import ratelimit
import totp
from database import write_transaction
from extensions import login_manager
from forms import (
    EmptyForm,
    ForgotPasswordForm,
    ForgotUsernameForm,
    LoginForm,
    ResetPasswordForm,
    SecondFactorForm,
)
from mailer import mail_link, notify_password_changed
from models import Customer, EmailToken, User
from views.common import invalid_link, safe_next, too_many
from views.rendering import is_htmx, render

bp = Blueprint("auth", __name__)



# --- login and logout ------------------------------------------------------------------------

@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("home.home"))
    form = LoginForm()
    status = 200
    resend = None
    if form.validate_on_submit():
        status, resend = attempt_login(form)
        if status == 303 and session.get("second_factor"):  # staff: the code comes next
            return redirect(url_for("auth.second_factor"), 303)
        if status == 303:
            return redirect(safe_next(request.args.get("next")) or url_for("home.home"), 303)
    elif form.is_submitted():
        status = 422
    return render("auth/login.html", form=form, resend=resend), status


def attempt_login(form):
    """Check the credentials; returns (HTTP status, resend form or None). 303 means logged in."""
    identifier = form.user.data.strip()
    wait = ratelimit.hit("login-ip", request.remote_addr)
    if wait:
        too_many(form.user, wait)
        audit.record("login_throttled", identifier=identifiers.mask(identifier))
        return 429, None

    user = accounts.find_login(identifier)
    # Attempt by attempt, an account and a code nobody has get the same answers (status and
    # text), so neither the lock nor its timing tells who exists.
    until = accounts.login_locked_until(user, identifier)
    if until is not None:
        form.user.errors.append(locked_message(until))
        audit.record("login_locked", user=user, identifier=identifiers.mask(identifier))
        accounts.check_password(None, form.password.data)  # same time as any other answer
        return 429, None

    if not accounts.check_password(user, form.password.data):
        until = accounts.record_failed_login(user, identifier)
        audit.record("login_failed", user=user, identifier=identifiers.mask(identifier))
        if until:
            form.user.errors.append(locked_message(until))
            return 429, None
        form.password.errors.append(_("Codice cliente, username o password non corretti."))
        return 422, None

    if user.disabled:
        audit.record("login_refused_disabled", user=user)
        form.user.errors.append(_("Questo accesso è stato disattivato: contatta il servizio clienti."))
        return 403, None
    if user.confirmed_at is None:
        session["resend_user_id"] = user.id
        form.user.errors.append(
            _("Non hai ancora confermato la registrazione: apri il link che ti abbiamo inviato per email.")
        )
        return 403, EmptyForm()

    if user.is_staff:
        # The password alone opens nothing: the second factor finishes the login.
        session["second_factor"] = {"user_id": user.id, "at": int(time.time())}
        audit.record("login_password_ok", user=user)
        return 303, None
    with write_transaction():
        accounts.start_session(user)
        audit.record("login", user=user)
    return 303, None


SECOND_FACTOR_TIMEOUT = 5 * 60  # seconds between the password and the code


@bp.route("/login/codice", methods=["GET", "POST"])
def second_factor():
    """Staff: the authenticator app's code; at the first login, its enrolment (QR code and the
    secret as text), saved only once a code from it proves the app has it."""
    pending = session.get("second_factor") or {}
    user = User.get_or_none(User.id == pending.get("user_id"))
    if user is None or not user.is_staff or time.time() - pending.get("at", 0) > SECOND_FACTOR_TIMEOUT:
        session.pop("second_factor", None)
        flash(_("Accedi di nuovo: il tempo per il codice è scaduto."), "info")
        return redirect(url_for("auth.login"), 303)
    enrolling = user.totp_secret is None
    if enrolling:
        # The secret stays on the server (encrypted); the session only says that this login has
        # started an enrolment, so a reload shows the same QR code and a new login a new one.
        secret = pending.get("enrolling") and totp.pending_secret(user)
        if not secret:
            with write_transaction():
                secret = totp.start_enrolment(user)
            session["second_factor"] = dict(pending, enrolling=True)
    else:
        secret = totp.active_secret(user)
    form = SecondFactorForm()
    status = 200
    if secret is None:
        # Encrypted with another key (TOTP_KEY or SECRET_KEY changed): no code can be checked,
        # and enrolling again on the password alone would skip the second factor.
        current_app.logger.warning("The TOTP secret of user %s does not decrypt: TOTP_KEY or SECRET_KEY "
                                   "changed? An administrator resets it in Operatori.", user.id)
        form.code.errors = [_("Il secondo fattore di questo accesso non si può verificare: chiedi a "
                              "un amministratore di azzerarlo, poi accedi di nuovo per attivarlo.")]
        if form.is_submitted():
            audit.record("login_failed_second_factor", user=user)
            status = 422
    elif form.validate_on_submit():
        wait = ratelimit.hit("second-factor", user.id)
        if wait:
            too_many(form.code, wait)
            status = 429
        elif accounts.locked_until(user) is None and totp.check_totp(user, secret, form.code.data):
            with write_transaction():
                if enrolling:
                    totp.finish_enrolment(user, secret)
                    audit.record("second_factor_enrolled", user=user)
                accounts.start_session(user)
                audit.record("login", user=user)
            return redirect(url_for("backoffice.home"), 303)
        else:
            until = accounts.locked_until(user) or accounts.record_failed_login(user)
            audit.record("login_failed_second_factor", user=user)
            form.code.errors.append(locked_message(until) if until else _("Il codice non è giusto (o è già stato usato)."))
            status = 429 if until else 422
    elif form.is_submitted():
        status = 422
    qr = totp.totp_qr(user, secret) if enrolling else None
    return render("auth/second_factor.html", form=form, enrolling=enrolling, qr=qr,
                  secret=secret if enrolling else None), status


def locked_message(until):
    return _(
        "Troppi tentativi falliti: l'accesso è bloccato fino alle %(time)s. Se l'accesso è tuo, puoi "
        "entrare subito: chiedi una nuova password con «Hai dimenticato la password?» e il link che "
        "ricevi sblocca l'accesso.",
        time=i18n.local_time(until + timedelta(minutes=1)),
    )


@bp.route("/logout", methods=["POST"])
def logout():
    EmptyForm().validate_on_submit() or abort(400)
    if current_user.is_authenticated:
        user = current_user._get_current_object()
        with write_transaction():
            audit.record("logout", user=user)
            accounts.end_session(user)
    flash(_("Sei uscito dal portale."), "info")
    return redirect(url_for("auth.login"), 303)




# --- forgotten password and username ------------------------------------------------------------

@bp.route("/password-dimenticata", methods=["GET", "POST"])
def forgot_password():
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        wait = ratelimit.hit("reset-ip", request.remote_addr)
        if wait:
            too_many(form.user, wait)
            return render("auth/forgot_password.html", form=form), 429
        identifier = form.user.data.strip()
        # The same answer, as quick, whether or not the login exists: the lookup and the mail
        # come after it (send_reset_link). The per-login limit stops mail bombing silently.
        if not ratelimit.hit("reset-account", identifier):
            with write_transaction():
                mailer.request_mail("reset_password", identifier)
        return redirect(url_for("auth.forgot_password_sent"), 303)
    return render("auth/forgot_password.html", form=form), 422 if form.is_submitted() else 200


@mailer.answers("reset_password")
def send_reset_link(identifier):
    user = accounts.find_login(identifier)
    if user is None or not user.is_active:
        return
    token = accounts.issue_token(user, EmailToken.RESET)
    mailer.queue(
        user.email, _l("Scegli una nuova password"), "reset_password", language=user.language,
        user=user, link=mail_link("auth.reset_password", token=token),
    )
    audit.record("password_reset_requested", user=user)


@bp.route("/password-dimenticata/inviata")
def forgot_password_sent():
    return render("auth/message.html", title=_("Controlla la tua email"), message=_(
        "Se il codice cliente o lo username corrisponde a un accesso attivo, ti abbiamo inviato un'email con un link "
        "per scegliere una nuova password. Il link vale un'ora."))


@bp.route("/password/nuova/<token>", methods=["GET", "POST"])
def reset_password(token):
    found = accounts.find_token(token, EmailToken.RESET)
    if found is None:
        return invalid_link()
    form = ResetPasswordForm()
    form.user = found.user
    if form.validate_on_submit():
        with write_transaction():
            if not accounts.use_token(found):
                return invalid_link()
            user = found.user
            accounts.set_password(user, form.password.data)
            accounts.end_all_sessions(user)
            notify_password_changed(user)
            audit.record("password_reset", user=user)
        flash(_("Password cambiata: accedi con quella nuova."), "success")
        return redirect(url_for("auth.login"), 303)
    return render("auth/reset_password.html", form=form), 422 if form.is_submitted() else 200


@bp.route("/username-dimenticato", methods=["GET", "POST"])
def forgot_username():
    form = ForgotUsernameForm()
    if form.validate_on_submit():
        wait = ratelimit.hit("username-ip", request.remote_addr)
        if wait:
            too_many(form.email, wait)
            return render("auth/forgot_username.html", form=form), 429
        email = form.email.data.strip().lower()
        if not ratelimit.hit("username-email", email):  # as for the password: answered later
            with write_transaction():
                mailer.request_mail("forgot_username", email)
        return redirect(url_for("auth.forgot_username_sent"), 303)
    return render("auth/forgot_username.html", form=form), 422 if form.is_submitted() else 200


@mailer.answers("forgot_username")
def send_usernames(email):
    users = list(
        User.select(User, Customer).join(Customer)
        .where(User.email == email, User.role.in_(User.CUSTOMER_ROLES), User.confirmed_at.is_null(False),
               User.revoked_at.is_null())  # a revoked delegate's login opens nothing any more
        .order_by(Customer.code)
    )
    if not users:
        return
    mailer.queue(
        email, _l("I tuoi accessi"), "forgot_username", language=users[0].language,
        users=users, login_url=mail_link("auth.login"),
    )
    for user in users:
        audit.record("username_reminder", user=user)


@bp.route("/username-dimenticato/inviata")
def forgot_username_sent():
    return render("auth/message.html", title=_("Controlla la tua email"), message=_(
        "Se l'indirizzo corrisponde a uno o più accessi, ti abbiamo inviato un'email con i "
        "codici e gli username con cui entrare."))


@login_manager.unauthorized_handler
def unauthorized():
    """Flask-Login's answer to an anonymous visitor of a protected page."""
    if g.get("session_expired"):
        flash(_("La sessione è scaduta: accedi di nuovo."), "info")
    else:
        flash(_("Accedi per continuare."), "info")
    # The page asked for, to come back to after the login; without a search term (`q`), which
    # would be carried into the login page's address (a codice fiscale in the logs).
    query = [(name, value) for name, value in request.args.items(multi=True) if name != "q"]
    target = url_for("auth.login", next=request.path + ("?" + urlencode(query) if query else ""))
    if is_htmx():  # a fragment request: make htmx load the login page as a whole page
        response = current_app.make_response(("", 401))
        response.headers["HX-Redirect"] = target
        return response
    return redirect(target)
