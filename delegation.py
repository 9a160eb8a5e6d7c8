"""Delegates: a second login on a customer, for an accountant or a public body's energy manager.

The owner invites a person by email with read-only or full rights (User.delegate_rights); the
invitation is a delegate User row not yet confirmed, with no password, and an emailed token
(EmailToken.INVITE, valid INVITATION_LIFETIME). Accepting it sets the delegate's name, username
and password; from then on the delegate logs in with the username (the customer code logs in
the owner only: accounts.find_login). A delegate cannot invite others.

Revoking disables the login at once (its sessions, emailed links and API keys end with it) and
keeps the row, so the audit log and the back office still show who acted for whom.
"""
from datetime import timedelta

from flask_babel import lazy_gettext as _l

import accounts
import audit
import mailer
from mailer import mail_link
from models import ApiToken, Consent, EmailToken, User, utcnow

INVITATION_LIFETIME = timedelta(days=7)


def invite(owner, email, rights):
    """A new invitation (call inside a write transaction); returns the delegate's row."""
    delegate = User.create(
        customer=owner.customer_id, role=User.DELEGATE, email=email,
        password_hash="",  # no password opens it until the invitation is accepted
        delegate_rights=rights, invited_by=owner, language=owner.language,
    )
    secret = accounts.issue_token(delegate, EmailToken.INVITE, lifetime=INVITATION_LIFETIME)
    mailer.queue(
        email, _l("Invito al portale clienti di %(customer)s", customer=owner.customer.name),
        "delegate_invitation", language=owner.language, customer=owner.customer, owner=owner,
        rights=rights, link=mail_link("invitation.accept", token=secret),
        expires_at=utcnow() + INVITATION_LIFETIME,
    )
    audit.record("delegate_invited", user=owner, target_user=delegate.id, rights=rights)
    return delegate


def find_invitation(secret):
    """The live invitation of this link, or None (expired, used, revoked)."""
    token = accounts.find_token(secret, EmailToken.INVITE)
    if token is None or token.user.role != User.DELEGATE or token.user.revoked_at or token.user.disabled:
        return None
    return token


def accept(token, form, ip):
    """The invited person's login, from the accepted form (call inside a write transaction);
    False if another request used the link first."""
    if not accounts.use_token(token):
        return False
    delegate = token.user
    delegate.username = form.username.data
    delegate.first_name = form.first_name.data
    delegate.last_name = form.last_name.data
    delegate.confirmed_at = utcnow()  # the link proved the address
    accounts.set_password(delegate, form.password.data)  # saves the row
    answers = {"privacy": True, "marketing": form.consent_marketing.data == "yes",
               "third_parties": form.consent_third_parties.data == "yes",
               "profiling": form.consent_profiling.data == "yes"}
    for kind, granted in answers.items():
        Consent.create(user=delegate, kind=kind, granted=granted, text_version=Consent.TEXT_VERSION, ip=ip)
    audit.record("delegate_invitation_accepted", user=delegate, rights=delegate.delegate_rights)
    return True


def revoke(delegate, by, notify=True):
    """End a delegate's access now (call inside a write transaction). `by` is the owner, or
    the owner closing their account. An accepted delegate is told by mail when `notify`."""
    now = utcnow()
    User.update(disabled=True, revoked_at=now).where(User.id == delegate.id).execute()
    accounts.end_all_sessions(delegate)
    EmailToken.update(used_at=now).where(EmailToken.user == delegate, EmailToken.used_at.is_null()).execute()
    ApiToken.update(revoked_at=now).where(ApiToken.user == delegate, ApiToken.revoked_at.is_null()).execute()
    if notify and delegate.confirmed_at is not None:
        mailer.queue(
            delegate.email, _l("Il tuo accesso per %(customer)s è stato revocato", customer=delegate.customer.name),
            "delegate_revoked", language=delegate.language, delegate=delegate, customer=delegate.customer,
        )
    audit.record("delegate_revoked", user=by, customer=delegate.customer_id, target_user=delegate.id)
