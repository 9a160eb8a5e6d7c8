"""The staff's second factor: a time-based one-time code (TOTP, RFC 6238) from an authenticator
app, enrolled with a QR code at the first login.

The secrets are stored encrypted (AES-GCM, authenticated) with a key of their own: TOTP_KEY, or
one derived from SECRET_KEY for this purpose alone. A copy of the database without the key gives
no one the second factor. A secret that does not decrypt (the key changed, the row was altered or
copied from another user) reads as None: that operator's second factor must be reset by an
administrator (Operatori), and is enrolled again at the next login."""
import base64
import hmac
import os
import re
import time

import pyotp
import segno
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

from models import User

TOTP_STEP = 30  # seconds
KEY_PURPOSE = b"sportello totp secret"  # HKDF's label: the key derived from SECRET_KEY is for this alone
STORED_FORMAT = "v1:"  # then base64 of AES-GCM's 12-byte nonce, the ciphertext and its tag
NONCE_BYTES = 12


def new_totp_secret():
    return pyotp.random_base32()


def encryption_key(config=None):
    """The 32-byte key of stored secrets: TOTP_KEY (64 hex digits, checked at start-up) or, when
    it is unset, HKDF-SHA256 of SECRET_KEY with KEY_PURPOSE."""
    config = config if config is not None else current_app.config
    if config.get("TOTP_KEY"):
        return bytes.fromhex(config["TOTP_KEY"])
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=KEY_PURPOSE)
    return hkdf.derive(config["SECRET_KEY"].encode())


def owner_label(user_id):
    # Authenticated with the ciphertext: a secret copied into another user's row does not decrypt.
    return b"user %d" % user_id


def encrypt_secret(user_id, secret, key=None):
    """The text to store for `user_id`'s base32 secret."""
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key or encryption_key()).encrypt(nonce, secret.encode(), owner_label(user_id))
    return STORED_FORMAT + base64.urlsafe_b64encode(nonce + sealed).decode()


def decrypt_secret(user_id, stored, key=None):
    """The base32 secret stored for `user_id`, or None when there is none or it cannot be read."""
    if not stored or not stored.startswith(STORED_FORMAT):
        return None
    try:
        raw = base64.urlsafe_b64decode(stored[len(STORED_FORMAT):])
        return AESGCM(key or encryption_key()).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:],
                                                       owner_label(user_id)).decode()
    except (ValueError, InvalidTag):  # bad base64 or nonce (ValueError), another key or altered (InvalidTag)
        return None


def active_secret(user):
    """The user's enrolled secret, or None (not enrolled yet, or unreadable)."""
    return decrypt_secret(user.id, user.totp_secret)


def start_enrolment(user):
    """A new secret for `user` to enrol: kept on the server, encrypted, until a code proves the
    authenticator app has it (the session only says whose enrolment is under way)."""
    secret = new_totp_secret()
    User.update(totp_pending_secret=encrypt_secret(user.id, secret)).where(User.id == user.id).execute()
    return secret


def pending_secret(user):
    """The secret of the enrolment under way, or None."""
    return decrypt_secret(user.id, user.totp_pending_secret)


def finish_enrolment(user, secret):
    User.update(totp_secret=encrypt_secret(user.id, secret), totp_pending_secret=None).where(
        User.id == user.id).execute()


def totp_qr(user, secret):
    """The enrolment QR code as a data: URI image (the CSP allows data: images, no inline SVG)."""
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=current_app.config["PORTAL_NAME"])
    return segno.make(uri, error="m").svg_data_uri(scale=5, border=2)


def check_totp(user, secret, code):
    """True for the code of the current 30-second step (or the one either side, for clocks a
    little off) that is newer than the last one this user used: a code works once."""
    code = re.sub(r"\s", "", code or "")
    if not re.fullmatch(r"\d{6}", code):
        return False
    totp = pyotp.TOTP(secret)
    now_step = int(time.time()) // TOTP_STEP
    for step in (now_step - 1, now_step, now_step + 1):
        if hmac.compare_digest(totp.at(step * TOTP_STEP), code):
            # Taken atomically: two requests with the same code cannot both pass.
            return bool(User.update(totp_last_step=step).where(
                User.id == user.id, User.totp_last_step.is_null() | (User.totp_last_step < step)
            ).execute())
    return False
