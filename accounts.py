"""Customer accounts: passwords, emailed tokens, server-side sessions and the login lockout.

A login session lives in the UserSession table; the cookie only carries its random token
(Flask-Login's "alternative id"). Logout, a password change and the timeouts delete the row,
so a replayed cookie is anonymous from then on.
"""
import re
import secrets
from datetime import timedelta
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from babel.lists import format_list
from flask import current_app, g, request, session
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_login import login_user, logout_user

import ratelimit
from extensions import login_manager
from models import EmailToken, User, UserSession, token_digest, utcnow

PASSWORD_MIN_LENGTH = 8
PASSPHRASE_LENGTH = 16  # from here on no composition rule, only not guessable
PASSWORD_MAX_LENGTH = 128  # the policy wants at least 64 accepted; argon2 takes any length
TOKEN_LIFETIME = timedelta(hours=1)
SESSION_TOUCH_EVERY = timedelta(minutes=1)  # write last_seen_at at most this often

# argon2id with the library's (RFC 9106 low-memory) parameters. The tests swap in a cheap
# hasher (tests/conftest.py): at these parameters their set-up spent most of its time hashing.
hasher = PasswordHasher()


@lru_cache(maxsize=1)
def dummy_hash(hasher):
    """A hash made by `hasher`, verified against when the user does not exist, so both answers
    take the same time (made with the hasher in use, whichever that is)."""
    return hasher.hash(secrets.token_hex(16))


dummy_hash(hasher)  # made now, so the first unknown login takes no longer than any other


def init_app(app):
    login_manager.user_loader(load_user)  # unauthorized_handler: views/auth.py
    app.permanent_session_lifetime = timedelta(hours=app.config["SESSION_MAX_HOURS"])


# --- passwords -------------------------------------------------------------------------

def hash_password(password):
    return hasher.hash(password)


def check_password(user, password):
    """True if `password` is the user's; with user None, spends the same time and says no."""
    try:
        if user is None:
            hasher.verify(dummy_hash(hasher), password)
            return False
        hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
    if hasher.check_needs_rehash(user.password_hash):
        User.update(password_hash=hash_password(password)).where(User.id == user.id).execute()
    return True


@lru_cache(maxsize=1)
def common_passwords():
    """The 30,000 most common passwords, from zxcvbn's frequency lists."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def password_problems(password, personal=()):
    """What the password lacks under the policy, as messages for the form ([] when fine).

    Policy: a password of 8 to 15 characters has a digit, a lower-case and an upper-case letter
    and a special character (the seed's rule); a passphrase of PASSPHRASE_LENGTH characters or
    more needs none of them (ASVS 5.0 forbids composition rules), only not to be guessable
    (zxcvbn's score 3 or more). Neither may be a common password with digits and symbols stuck
    on, nor hold any of `personal` (customer code, username, email's name).
    """
    if len(password) > PASSWORD_MAX_LENGTH:
        return [_l("Al massimo %(n)d caratteri.", n=PASSWORD_MAX_LENGTH)]
    if len(password) >= PASSPHRASE_LENGTH:
        from zxcvbn import zxcvbn  # here, not at start-up: it loads its word lists

        if zxcvbn(password[:72])["score"] < 3:  # zxcvbn reads at most 72 characters
            return [_l("È una frase troppo prevedibile: usa parole meno ovvie o aggiungine una.")]
        return personal_problems(password, personal)
    missing = []
    if not re.search(r"\d", password):
        missing.append(_l("un numero"))
    if not re.search(r"[a-zà-ÿ]", password):
        missing.append(_l("una minuscola"))
    if not re.search(r"[A-ZÀ-Þ]", password):
        missing.append(_l("una maiuscola"))
    if not re.search(r"[^\w\s]|_", password):
        missing.append(_l("un carattere speciale"))
    # The length apart from what it must contain: "contenere anche almeno 8 caratteri" is not Italian.
    listed = format_list([str(m) for m in missing], locale=get_locale()) if missing else ""
    if len(password) < PASSWORD_MIN_LENGTH:
        if missing:
            return [_l("La password deve avere almeno %(n)d caratteri e contenere anche %(what)s.",
                       n=PASSWORD_MIN_LENGTH, what=listed)]
        return [_l("La password deve avere almeno %(n)d caratteri.", n=PASSWORD_MIN_LENGTH)]
    if missing:
        return [_l("La password deve contenere anche %(what)s.", what=listed)]
    lowered = password.lower()
    core = re.sub(r"^[\W\d_]+|[\W\d_]+$", "", lowered)
    if lowered in common_passwords() or core in common_passwords():
        return [_l("È una password troppo comune: scegline una meno prevedibile.")]
    return personal_problems(password, personal)


def personal_problems(password, personal):
    lowered = password.lower()
    for item in personal:
        if item and len(item) >= 4 and item.lower() in lowered:
            return [_l("Non usare il codice cliente, lo username o l'email nella password.")]
    return []


def set_password(user, password):
    """Change the password; every emailed token issued before now dies with the old one."""
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()
    user.save()
    unlock(user)  # a reset link lets the rightful owner in even while the login is locked
    EmailToken.update(used_at=utcnow()).where(
        EmailToken.user == user, EmailToken.used_at.is_null()
    ).execute()


# --- emailed tokens ----------------------------------------------------------------------

def issue_token(user, purpose, new_email=None, lifetime=TOKEN_LIFETIME):
    """A new single-use token; returns the secret for the link (only its digest is stored)."""
    secret = secrets.token_urlsafe(32)
    EmailToken.create(
        token_hash=token_digest(secret),
        user=user,
        purpose=purpose,
        new_email=new_email,
        expires_at=utcnow() + lifetime,
    )
    return secret


def find_token(secret, purpose):
    """The valid, unused token for this secret, or None. Does not use it up."""
    if not secret or len(secret) > 100:
        return None
    token = (
        EmailToken.select(EmailToken, User)
        .join(User)
        .where(
            EmailToken.token_hash == token_digest(secret),
            EmailToken.purpose == purpose,
            EmailToken.used_at.is_null(),
            EmailToken.expires_at > utcnow(),
        )
        .first()
    )
    if token is None or token.created_at < token.user.password_changed_at:
        return None
    return token


def use_token(token):
    """Mark the token used; False if another request used it first."""
    return bool(
        EmailToken.update(used_at=utcnow())
        .where(EmailToken.id == token.id, EmailToken.used_at.is_null())
        .execute()
    )


def live_token(user, purpose):
    """The user's newest unused, unexpired token of `purpose` (a new email waiting for its
    confirmation), or None."""
    return (EmailToken.select()
            .where(EmailToken.user == user, EmailToken.purpose == purpose,
                   EmailToken.used_at.is_null(), EmailToken.expires_at > utcnow())
            .order_by(EmailToken.id.desc()).first())


def void_tokens(user, purpose):
    """Use up the user's live tokens of `purpose`: a newer request replaces them."""
    EmailToken.update(used_at=utcnow()).where(
        EmailToken.user == user, EmailToken.purpose == purpose, EmailToken.used_at.is_null()
    ).execute()


# --- sessions ----------------------------------------------------------------------------

def start_session(user, new_login=True):
    """Log the user in with a brand-new server session; the cookie's content is dropped but
    for the language. With new_login False (a password change: the same person, same page)
    the CSRF token and the supply point stay too, so the page's forms keep working, and the
    login times are left alone."""
    kept = ("lang",) if new_login else ("lang", "csrf_token", "sp")
    keep = {name: session[name] for name in kept if name in session}
    session.clear()
    session.update(keep)
    secret = secrets.token_urlsafe(32)
    UserSession.create(
        token_hash=token_digest(secret),
        user=user,
        ip=request.remote_addr,
        user_agent=(request.user_agent.string or "")[:255],
    )
    user.session_token = secret
    if new_login:
        User.update(previous_login_at=User.last_login_at, last_login_at=utcnow()).where(User.id == user.id).execute()
        unlock(user)
    session.permanent = True  # the cookie expires with the absolute session limit
    login_user(user)


def end_session(user):
    """Logout: the session row goes, so the cookie is worthless even if replayed."""
    if user.is_authenticated and user.session_token:
        UserSession.delete().where(UserSession.token_hash == token_digest(user.session_token)).execute()
    logout_user()
    session.clear()


def end_all_sessions(user):
    UserSession.delete().where(UserSession.user == user).execute()


def load_user(secret):
    """Flask-Login's user loader: the session's token → its user, if the session is alive."""
    row = UserSession.with_user(token_digest(secret))
    if row is None:
        return None
    now = utcnow()
    idle = timedelta(minutes=current_app.config["SESSION_IDLE_MINUTES"])
    maximum = timedelta(hours=current_app.config["SESSION_MAX_HOURS"])
    user = row.user
    if now - row.last_seen_at > idle or now - row.created_at > maximum or not user.is_active:
        row.delete_instance()
        g.session_expired = True
        return None
    if now - row.last_seen_at > SESSION_TOUCH_EVERY:
        UserSession.update(last_seen_at=now).where(UserSession.id == row.id).execute()
    user.session_token = secret
    return user


def create_staff(email, password, role=User.OPERATOR):
    """A back-office account; raises ValueError with the reason. Its second factor is enrolled
    at the first login."""
    from email_validator import EmailNotValidError, validate_email

    try:
        email = validate_email(email, check_deliverability=False).normalized.lower()
    except EmailNotValidError as error:
        raise ValueError(f"{email}: {error}") from None
    if User.select().where(User.email == email, User.role.in_(User.STAFF_ROLES)).exists():
        raise ValueError(f"{email}: esiste già un operatore con questa email")
    problems = password_problems(password, (email.split("@")[0],))
    if problems:
        raise ValueError(str(problems[0]))
    return User.create(role=role, email=email, password_hash=hash_password(password), confirmed_at=utcnow())


# --- failed logins -----------------------------------------------------------------------

# At most this many wrong passwords per login in a window; the one that reaches the limit locks
# the login until the window ends. The same numbers for an account and for a code or username
# nobody has, so the lock tells nothing about who exists.
MAX_FAILED_LOGINS = ratelimit.LIMITS["login-account"][0]


def _failure_key(user, identifier):
    # An account's failures count together whichever of its names (code, username) is typed.
    return f"user:{user.id}" if user is not None else identifier


def login_locked_until(user, identifier):
    """When the lock on this login ends, or None."""
    if user is not None:
        return locked_until(user)
    wait = ratelimit.exceeded("login-account", identifier)
    return utcnow() + timedelta(seconds=wait) if wait else None


def locked_until(user):
    if user is not None and user.locked_until and user.locked_until > utcnow():
        return user.locked_until
    return None


def record_failed_login(user, identifier=None):
    """Count a wrong password (or second-factor code); returns the lock's end when this one
    reaches the limit. An account's lock is kept in its row too, where staff see and lift it."""
    so_far, remaining = ratelimit.count("login-account", _failure_key(user, identifier))
    if so_far < MAX_FAILED_LOGINS:
        return None
    until = utcnow() + timedelta(seconds=remaining)
    if user is not None:
        User.update(locked_until=until).where(User.id == user.id).execute()
    return until


def unlock(user):
    """Lift the lock and forget the failures: a successful login or reset, or staff."""
    ratelimit.clear("login-account", _failure_key(user, None))
    User.update(locked_until=None).where(User.id == user.id).execute()
    user.locked_until = None


def find_login(identifier):
    """The user a login's "User" field names: a 6-digit customer code, a username, or (staff)
    an email address."""
    from models import Customer

    identifier = identifier.strip()
    if re.fullmatch(r"\d{6}", identifier):
        return (
            User.select(User, Customer)
            .join(Customer)
            .where(Customer.code == identifier, User.role == User.OWNER, User.closed_at.is_null())
            .first()
        )
    if "@" in identifier:
        return User.select().where(User.email == identifier.lower(), User.role.in_(User.STAFF_ROLES)).first()
    return User.select().where(
        User.username == identifier.lower(), User.role.in_(User.CUSTOMER_ROLES)
    ).first()
