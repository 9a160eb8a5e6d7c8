"""Rate limits: how many times something may happen per key (an IP, an account) in a window.

With REDIS_URL the counters live in Redis, so several worker processes share them; without
it they live in the process, which is right for the single-process demo (and the account
lockout, kept in the database, still holds across processes).
If Redis cannot be reached the request is let through and the failure logged: a limiter
outage must not lock every customer out.
"""
import hashlib
import logging
import threading
import time

from flask import current_app

log = logging.getLogger(__name__)

# name: (how many, per how many seconds)
LIMITS = {
    "login-ip": (30, 15 * 60),
    "login-account": (10, 15 * 60),  # failures; mirrors the lockout for unknown accounts too
    "register-ip": (20, 60 * 60),
    "register-account": (10, 60 * 60),  # step-1 attempts on one customer code
    "reset-ip": (10, 60 * 60),
    "reset-account": (3, 60 * 60),
    "username-ip": (10, 60 * 60),
    "username-email": (3, 60 * 60),
    "resend-account": (3, 60 * 60),
    "password-change": (10, 15 * 60),
    "second-factor": (10, 15 * 60),
}


class MemoryCounters:
    def __init__(self):
        self._lock = threading.Lock()
        self._windows = {}  # key -> (count, ends_at)

    def add(self, key, seconds):
        now = time.monotonic()
        with self._lock:
            if len(self._windows) > 100_000:  # forget finished windows now and then
                self._windows = {k: v for k, v in self._windows.items() if v[1] > now}
            count, ends = self._windows.get(key, (0, 0))
            if ends <= now:
                count, ends = 0, now + seconds
            self._windows[key] = (count + 1, ends)
            return count + 1, ends - now

    def get(self, key):
        count, ends = self._windows.get(key, (0, 0))
        remaining = ends - time.monotonic()
        return (count, remaining) if remaining > 0 else (0, 0)

    def clear(self, key):
        with self._lock:
            self._windows.pop(key, None)


class RedisCounters:
    def __init__(self, url):
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)

    def add(self, key, seconds):
        pipe = self._redis.pipeline()
        pipe.incr(key)
        pipe.expire(key, seconds, nx=True)  # the window starts with its first hit
        pipe.ttl(key)
        count, _, ttl = pipe.execute()
        return count, max(ttl, 1)

    def get(self, key):
        pipe = self._redis.pipeline()
        pipe.get(key)
        pipe.ttl(key)
        count, ttl = pipe.execute()
        return (int(count), max(ttl, 1)) if count else (0, 0)

    def clear(self, key):
        self._redis.delete(key)


def init_app(app):
    url = app.config.get("REDIS_URL")
    app.extensions["ratelimit"] = RedisCounters(url) if url else MemoryCounters()


def _key(name, subject):
    # Hashed, so no IP address or account name sits in Redis in the clear.
    digest = hashlib.sha256(str(subject).strip().lower().encode()).hexdigest()[:32]
    return f"sportello:rl:{name}:{digest}"


def _counters():
    return current_app.extensions["ratelimit"]


def hit(name, subject):
    """Count one more; returns the seconds to wait if this one is over the limit, else 0."""
    allowed, seconds = LIMITS[name]
    try:
        count, remaining = _counters().add(_key(name, subject), seconds)
    except Exception:  # noqa: BLE001 - any Redis failure: let it through, say so in the log
        log.exception("rate limiter unavailable")
        return 0
    return int(remaining) + 1 if count > allowed else 0


def exceeded(name, subject):
    """Like hit() without counting: the seconds to wait if the limit is already reached."""
    allowed, _ = LIMITS[name]
    try:
        count, remaining = _counters().get(_key(name, subject))
    except Exception:  # noqa: BLE001
        log.exception("rate limiter unavailable")
        return 0
    return int(remaining) + 1 if count >= allowed else 0


def clear(name, subject):
    try:
        _counters().clear(_key(name, subject))
    except Exception:  # noqa: BLE001
        log.exception("rate limiter unavailable")
