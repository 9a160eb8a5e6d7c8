"""Privacy e account: the user's consents (see and change the optional ones), "Scarica i miei
dati" (a ZIP, privacy.export_zip) and "Chiudi l'account" (privacy.close_account).

Reached from Dati Anagrafici. They are about the user's own login, so a read-only delegate may
use them too (can_write guards the customer's records, not one's own consents).
"""
from flask import current_app, flash, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, logout_user

import audit
import privacy
import ratelimit
from database import write_transaction
from forms import CloseAccountForm, ConsentsForm
from models import Consent, User
from views.common import too_many
from views.customer_area import area_blueprint, form_address_opens, portal_url, serves_a_file
from views.rendering import is_htmx, render

bp = area_blueprint("privacy", __name__)

OPTIONAL_CONSENTS = ("marketing", "third_parties", "profiling")


def consents_form(user):
    """The form with the user's current answers (no answer yet: not given)."""
    latest = Consent.latest_by_user([user]).get(user.id, {})
    return ConsentsForm(formdata=None, data={
        name: "yes" if kind in latest and latest[kind].granted else "no" for kind, name in ConsentsForm.KINDS.items()})


def privacy_page(form=None, close_form=None, saved=False):
    user = current_user._get_current_object()
    history = list(Consent.select().where(Consent.user == user).order_by(Consent.recorded_at.desc(), Consent.id.desc()))
    latest = Consent.latest_by_user([user]).get(user.id, {})
    return render("privacy/privacy.html", title=_("Privacy e account"), form=form or consents_form(user),
                  close_form=close_form or CloseAccountForm(), history=history, privacy_consent=latest.get("privacy"),
                  saved=saved, is_owner=user.role == User.OWNER,
                  delegates=list(User.delegates_of(user.customer_id)) if user.role == User.OWNER else [])


@bp.route("/privacy-e-account")
def privacy_and_account():
    return privacy_page()


@bp.route("/privacy-e-account/consensi", methods=["POST"])
def change_consents():
    """Only the answers that changed are written (a double click writes nothing twice); each
    with its time, IP and the notice's version."""
    user = current_user._get_current_object()
    form = ConsentsForm()
    if form.is_submitted():
        wait = ratelimit.hit("consents-change", user.id)  # each change is a row kept for good
        if wait:
            too_many(form.consent_marketing, wait)
            return privacy_page(form=form), 429
    if not form.validate_on_submit():
        return privacy_page(form=form), 422
    latest = Consent.latest_by_user([user]).get(user.id, {})
    changed = {kind: granted for kind, granted in form.answers().items()
               if kind not in latest or latest[kind].granted != granted}
    if changed:
        with write_transaction():
            for kind, granted in changed.items():
                Consent.create(user=user, kind=kind, granted=granted, text_version=Consent.TEXT_VERSION,
                               ip=request.remote_addr)
            audit.record("consents_changed", user=user, granted=[kind for kind, given in changed.items() if given],
                         withdrawn=[kind for kind, given in changed.items() if not given])
    if is_htmx():
        return privacy_page(saved=True)
    flash(_("Consensi salvati."), "success")
    return redirect(portal_url("privacy.privacy_and_account"), 303)


@bp.route("/privacy-e-account/i-miei-dati.zip")
@serves_a_file
def export_my_data():
    """The ZIP of everything about the user (GDPR articles 15 and 20). Limited: each one reads
    every table of the customer."""
    user = current_user._get_current_object()
    wait = ratelimit.hit("data-export", user.id)
    if wait:
        flash(_("Hai già scaricato i tuoi dati più volte nell'ultima ora: riprova tra %(num)d minuti.",
                num=max(1, round(wait / 60))), "error")
        return redirect(portal_url("privacy.privacy_and_account"), 303)
    body = privacy.export_zip(user, current_app.config["PORTAL_NAME"])
    with write_transaction():
        audit.record("data_exported", user=user)
    response = current_app.response_class(body, mimetype="application/zip")
    name, code = _("i-miei-dati"), user.customer.code if user.customer_id else _("utente")
    response.headers["Content-Disposition"] = f"attachment; filename={name}-{code}.zip"
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.route("/privacy-e-account/chiudi", methods=["POST"])
def close_account():
    """The password confirms; the login's data are erased, its sessions end, a goodbye mail
    goes to the old address. The next page is the login's, with a word of what happened."""
    user = current_user._get_current_object()
    form = CloseAccountForm()
    form.user = user
    if form.is_submitted():
        wait = ratelimit.hit("close-account", user.id)  # the password could be guessed here
        if wait:
            too_many(form.password, wait)
            return privacy_page(close_form=form), 429
    if not form.validate_on_submit():
        return privacy_page(close_form=form), 422
    with write_transaction():
        privacy.close_account(user)
    logout_user()
    session.clear()
    flash(_("Il tuo accesso è stato chiuso e i suoi dati cancellati. Ti abbiamo inviato un'email di conferma."), "success")
    return redirect(url_for("auth.login"), 303)


# Where a refused form leaves a browser without JavaScript, opened again: the form's page.
form_address_opens(bp, "/privacy-e-account/consensi", "privacy.privacy_and_account")
form_address_opens(bp, "/privacy-e-account/chiudi", "privacy.privacy_and_account")
