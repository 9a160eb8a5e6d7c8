"""Benchmarks: each script prints its figures beside a reference measured in the same run."""
from app import create_app


def bench_app(database_url, **settings):
    """The portal on `database_url` as a bench builds its data with it: development settings,
    and mails left in the outbox (no delivery thread)."""
    return create_app({"PORTAL_ENV": "development", "SECRET_KEY": "bench", "DATABASE_URL": database_url,
                       "MAIL_DELIVERY_THREAD": False, **settings})
