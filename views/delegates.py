"""Delegati: the owner invites people to the same customer (an accountant, an energy manager),
with read-only or full rights, sees them and revokes them (delegation.py holds the rules).
Only the owner: a delegate cannot invite others, nor see who else has access.

The invitation's link leads to a public page (`invitation` blueprint, the token in the path,
so no Referer carries it) where the invited person chooses name, username and password.
"""
from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

import delegation
import ratelimit
from database import write_transaction
from forms import AcceptInvitationForm, InviteDelegateForm, RevokeDelegateForm
from models import User
from views.common import read_only_refusal, too_many
from views.customer_area import area_blueprint, form_address_opens, portal_url
from views.rendering import is_htmx, render, render_page

bp = area_blueprint("delegates", __name__)


@bp.before_request
def owners_only():
    """Delegates do not manage delegates; an owner with full rights does (can_write)."""
    if current_user.role != User.OWNER:
        return render_page("errors/error.html", code=403, message=_(
            "Solo il titolare del contratto può invitare e revocare i delegati.")), 403
    if not current_user.can_write:
        return read_only_refusal()
    return None


def delegates_page(form=None, done=None):
    """The page, or (htmx) its list and form; `done`: what a change did, said above the list
    (a plain request gets it as a flash after the redirect, see changed())."""
    owner = current_user._get_current_object()
    # After a change the form starts empty (not refilled from the request that made it).
    return render("delegates/delegates.html", title=_("Delegati"), form=form or InviteDelegateForm(formdata=None),
                  revoke_form=RevokeDelegateForm(), delegates=list(User.delegates_of(owner.customer_id)),
                  done=done, limit=User.DELEGATE_LIMIT)


def changed(message, htmx_status=200):
    """The answer to an invitation or a revocation, the same words with or without htmx."""
    if is_htmx():
        return delegates_page(done=message), htmx_status
    flash(message, "success")
    return redirect(portal_url("delegates.delegates"), 303)


@bp.route("/delegati")
def delegates():
    return delegates_page()


@bp.route("/delegati", methods=["POST"])
def invite_delegate():
    """A new invitation, mailed. The same address twice is refused next to the field (a
    double click invites once)."""
    owner = current_user._get_current_object()
    form = InviteDelegateForm()
    form.customer = owner.customer_id
    if form.is_submitted():
        wait = ratelimit.hit("delegate-invite", owner.id)  # each one sends a mail to anyone
        if wait:
            too_many(form.email, wait)
            return delegates_page(form=form), 429
    if not form.validate_on_submit():
        return delegates_page(form=form), 422
    with write_transaction():
        delegate = delegation.invite(owner, form.email.data, form.rights.data)
    return changed(_("Invito inviato a %(email)s.", email=delegate.email), htmx_status=201)


@bp.route("/delegati/revoca", methods=["POST"])
def revoke_delegate():
    """The delegate's access ends at once. (CSRF is checked before the view: an invalid form
    here is an id that is no delegate of this customer.)"""
    owner = current_user._get_current_object()
    form = RevokeDelegateForm()
    form.validate_on_submit() or abort(404)
    with write_transaction():
        delegate = User.delegates_of(owner.customer_id).where(User.id == form.delegate.data).first() or abort(404)
        delegation.revoke(delegate, by=owner)
    return changed(_("Accesso di %(email)s revocato.", email=delegate.email))


# --- the invited person's side: public, reached from the mail ---------------------------------------

invitation_bp = Blueprint("invitation", __name__)


@invitation_bp.route("/invito/<token>", methods=["GET", "POST"])
def accept(token):
    """GET shows the form (a mail scanner that opens the link accepts nothing); POST creates
    the delegate's login and sends them to the login page."""
    found = delegation.find_invitation(token)
    if found is None:
        return invalid_invitation()
    delegate = found.user
    form = AcceptInvitationForm()
    form.customer_code = delegate.customer.code
    form.invited_email = delegate.email
    context = {"delegate": delegate, "customer": delegate.customer, "inviter": delegate.invited_by}
    if form.is_submitted():
        # Whether a username is taken must not be asked without limit.
        wait = ratelimit.hit("invitation-ip", request.remote_addr) or ratelimit.hit("invitation", delegate.id)
        if wait:
            too_many(form.username, wait)
            return render("delegates/accept.html", form=form, **context), 429
    if not form.validate_on_submit():
        return render("delegates/accept.html", form=form, **context), 422 if form.is_submitted() else 200
    with write_transaction():
        if not delegation.accept(found, form, request.remote_addr):
            return invalid_invitation()
    flash(_("Fatto: ora accedi con lo username %(username)s e la tua password.", username=form.username.data), "success")
    return redirect(url_for("auth.login"), 303)


def invalid_invitation():
    return render("auth/message.html", title=_("Invito non valido"), message=_(
        "Questo invito non è più valido: è scaduto (vale 7 giorni), è già stato usato oppure è "
        "stato revocato. Chiedi a chi ti ha invitato di mandartene un altro.")), 410


# Where a refused form leaves a browser without JavaScript, opened again: the form's page.
form_address_opens(bp, "/delegati/revoca", "delegates.delegates")
