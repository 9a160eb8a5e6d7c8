"""The staff's second factor: a time-based one-time code (TOTP, RFC 6238) from an authenticator
app, enrolled with a QR code at the first login."""
import hmac
import re
import time

import pyotp
import segno
from flask import current_app

from models import User

TOTP_STEP = 30  # seconds


def new_totp_secret():
    return pyotp.random_base32()


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
