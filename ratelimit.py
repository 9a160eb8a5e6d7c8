"""Rate limits: how many times something may happen per key (an IP, an account) in a window.

The counters live where every worker process sees them, so a limit holds however many
workers serve the portal:
- in the database (table ratecounter) by default: one small write per counted attempt, and
  only forms that are worth guessing at count (login, registration, forgotten password...);
- in Redis when REDIS_URL is set, which takes that write off the database. If Redis cannot be
  answered, the database counts instead and the log says so: an outage neither lifts the
  limits (fail open) nor locks every customer out (fail closed). Its windows start afresh in
  the database, and once Redis answers again what the database counted meanwhile still counts.
Hand-written rather than Flask-Limiter: its storages (memory, Redis, Memcached, MongoDB) have
no SQL database, and its fallback is in-memory, per worker: the split this module avoids.
"""
import hashlib
import logging
import random
import time
from datetime import timedelta

import peewee as pw
from flask import current_app

from database import write_transaction
from models import RateCounter, utcnow

log = logging.getLogger(__name__)

# name: (how many, per how many seconds)
LIMITS = {
    "login-ip": (30, 15 * 60),
    "login-account": (10, 15 * 60),  # wrong passwords for a code nobody has: the lockout's twin
    "register-ip": (20, 60 * 60),
    "register-account": (10, 60 * 60),  # step-1 attempts on one customer code
    "register-check-ip": (300, 60 * 60),  # step 2's inline checks and submits
    "register-check": (60, 60 * 60),  # the same, per registration under way
    "reset-ip": (10, 60 * 60),
    "reset-account": (3, 60 * 60),
    "username-ip": (10, 60 * 60),
    "username-email": (3, 60 * 60),
    "resend-account": (3, 60 * 60),
    "password-change": (10, 15 * 60),
    "second-factor": (10, 15 * 60),
    "api-token": (600, 10 * 60),  # personal data API calls per key: about one a second
    "self-reading": (20, 60 * 60),  # Autolettura's submits per user (a reading, its confirmation, retries)
    "self-reading-check": (300, 60 * 60),  # and its on-change checks
    "consents-change": (30, 60 * 60),  # Privacy e account's consents form sent, per user
    "data-export": (5, 60 * 60),  # "Scarica i miei dati": each reads every table of the customer
    "close-account": (5, 15 * 60),  # its password could be guessed
    "delegate-invite": (10, 60 * 60),  # each invitation mails an address the owner typed
    "invitation-ip": (30, 60 * 60),  # accepting an invitation asks whether a username is taken
    "invitation": (20, 60 * 60),  # the same, per invitation
    "ticket-new": (10, 60 * 60),  # new tickets per user
    "ticket-reply": (60, 60 * 60),  # customers' replies per user
    "contacts-change": (20, 60 * 60),  # Dati Anagrafici's contact form sent, per user
    "contacts-check": (300, 60 * 60),  # and its on-change checks
    "email-change": (3, 60 * 60),  # confirmation links to a new address, per user: no mail bombing
}
OUTAGE_LOG_EVERY = 60  # seconds: say that Redis is away once a minute, not once a request


class DatabaseCounters:
    def add(self, key, seconds):
        now = utcnow()
        ends = now + timedelta(seconds=seconds)
        expired = RateCounter.window_ends <= now
        with write_transaction():
            # One statement whoever else counts at the same time: a new window or one more.
            RateCounter.insert(key=key, count=1, window_ends=ends).on_conflict(
                conflict_target=[RateCounter.key],
                update={
                    RateCounter.count: pw.Case(None, [(expired, 1)], RateCounter.count + 1),
                    RateCounter.window_ends: pw.Case(None, [(expired, ends)], RateCounter.window_ends),
                },
            ).execute()
            count, window_ends = RateCounter.select(RateCounter.count, RateCounter.window_ends).where(
                RateCounter.key == key).tuples().get()
            if random.random() < 0.01:  # now and then, forget the windows that have ended
                RateCounter.delete().where(RateCounter.window_ends < now - timedelta(hours=1)).execute()
        return count, (window_ends - now).total_seconds()

    def get(self, key):
        now = utcnow()
        row = RateCounter.select(RateCounter.count, RateCounter.window_ends).where(
            RateCounter.key == key, RateCounter.window_ends > now).tuples().first()
        return (row[0], (row[1] - now).total_seconds()) if row else (0, 0)

    def clear(self, key):
        RateCounter.delete().where(RateCounter.key == key).execute()


class RedisCounters:
    """Redis first; the database whenever Redis does not answer."""

    def __init__(self, url):
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        self._fallback = DatabaseCounters()
        self._outage_logged_at = 0

    def _fall_back(self, method, *args):
        if time.monotonic() - self._outage_logged_at > OUTAGE_LOG_EVERY:
            self._outage_logged_at = time.monotonic()
            log.exception("Redis is unreachable: rate limits count in the database meanwhile")
        return getattr(self._fallback, method)(*args)

    def add(self, key, seconds):
        try:
            pipe = self._redis.pipeline()
            pipe.incr(key)
            pipe.expire(key, seconds, nx=True)  # the window starts with its first hit
            pipe.ttl(key)
            count, _, ttl = pipe.execute()
        except Exception:  # noqa: BLE001 - any Redis failure
            return self._fall_back("add", key, seconds)
        # What was counted in the database during an outage still counts (a read, no write).
        return max((count, max(ttl, 1)), self._fallback.get(key))

    def get(self, key):
        try:
            pipe = self._redis.pipeline()
            pipe.get(key)
            pipe.ttl(key)
            count, ttl = pipe.execute()
            found = (int(count), max(ttl, 1)) if count else (0, 0)
        except Exception:  # noqa: BLE001
            return self._fall_back("get", key)
        # What was counted in the database during an outage still counts.
        return max(found, self._fallback.get(key))

    def clear(self, key):
        try:
            self._redis.delete(key)
        except Exception:  # noqa: BLE001
            self._fall_back("clear", key)
        self._fallback.clear(key)

    def answers(self):
        """Whether Redis answers now (/healthz)."""
        try:
            return bool(self._redis.ping())
        except Exception:  # noqa: BLE001 - any Redis failure
            return False


def init_app(app):
    url = app.config.get("REDIS_URL")
    app.extensions["ratelimit"] = RedisCounters(url) if url else DatabaseCounters()


def redis_answers():
    """/healthz: whether the Redis the limits count in answers; None without REDIS_URL."""
    counters = _counters()
    return counters.answers() if isinstance(counters, RedisCounters) else None


def _key(name, subject):
    # Hashed, so no IP address or account name is stored in the clear.
    digest = hashlib.sha256(str(subject).strip().lower().encode()).hexdigest()[:32]
    return f"sportello:rl:{name}:{digest}"


def _counters():
    return current_app.extensions["ratelimit"]


def count(name, subject):
    """Count one more; returns (how many so far in the window, seconds until it ends)."""
    _, seconds = LIMITS[name]
    return _counters().add(_key(name, subject), seconds)


def hit(name, subject):
    """Count one more; returns the seconds to wait if this one is over the limit, else 0."""
    allowed, _ = LIMITS[name]
    so_far, remaining = count(name, subject)
    return int(remaining) + 1 if so_far > allowed else 0


def exceeded(name, subject):
    """Like hit() without counting: the seconds to wait if the limit is already reached."""
    allowed, _ = LIMITS[name]
    so_far, remaining = _counters().get(_key(name, subject))
    return int(remaining) + 1 if so_far >= allowed else 0


def clear(name, subject):
    _counters().clear(_key(name, subject))
