"""Schema creation and upgrades with peewee-migrate: `flask init-db` applies what is new in
migrations/, keeping the data; `flask make-migration NAME` writes the next step from the
difference between models.py and the migrations so far."""
from pathlib import Path

from peewee_migrate import Router

import models

MIGRATIONS = Path(__file__).parent / "migrations"


def router(database):
    database = getattr(database, "obj", database)  # the real database behind FlaskDB's proxy
    return Router(database, migrate_dir=str(MIGRATIONS), ignore=["basemodel"])


def upgrade(database):
    """Apply the migrations not applied yet; returns how many."""
    return len(router(database).run() or [])


def pending(database):
    return router(database).diff


def make_migration(database, name):
    created = router(database).create(name, auto=models.ALL_MODELS)
    if created:
        # peewee 4's DecimalField writes `rounding=ROUND_HALF_EVEN`; peewee-migrate does not
        # import the name.
        path = MIGRATIONS / f"{created}.py"
        text = path.read_text()
        if "ROUND_HALF_EVEN" in text and "from decimal import" not in text:
            path.write_text(text.replace("import peewee as pw\n", "from decimal import ROUND_HALF_EVEN\n\nimport peewee as pw\n", 1))
    return created


def empty_postgres(url):
    """Drop every table of a PostgreSQL database (its public schema). For the test suite and
    the benchmark, which own their databases; never called by the portal itself."""
    import psycopg2

    connection = psycopg2.connect(url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;")
    connection.close()
