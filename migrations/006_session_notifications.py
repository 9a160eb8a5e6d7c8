"""006: on PostgreSQL, tell every process when what it caches of a session may be stale.

models.SessionCache keeps, per process, the rows of the session query (session, user, customer,
supply points). These triggers NOTIFY its channel with the token's hash when a session or its
user changes or goes, and with "*" when customers or supply points change (the nightly import:
one notification per statement, not per row). Written by hand: it changes no model.
SQLite has no cache and needs nothing.
"""
import peewee as pw
from peewee_migrate import Migrator

CHANNEL = "sportello_sessions"  # models.SessionCache.CHANNEL, as it was when this was written

CREATE = f"""
CREATE FUNCTION sportello_session_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', OLD.token_hash);
    RETURN NULL;
END $$;

CREATE FUNCTION sportello_user_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', s.token_hash) FROM usersession AS s WHERE s.user_id = OLD.id;
    RETURN NULL;
END $$;

CREATE FUNCTION sportello_sessions_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', '*');
    RETURN NULL;
END $$;

CREATE TRIGGER session_changed AFTER UPDATE OR DELETE ON usersession
    FOR EACH ROW EXECUTE FUNCTION sportello_session_changed();
CREATE TRIGGER user_changed AFTER UPDATE OR DELETE ON "user"
    FOR EACH ROW EXECUTE FUNCTION sportello_user_changed();
CREATE TRIGGER sessions_emptied AFTER TRUNCATE ON usersession
    FOR EACH STATEMENT EXECUTE FUNCTION sportello_sessions_changed();
CREATE TRIGGER users_emptied AFTER TRUNCATE ON "user"
    FOR EACH STATEMENT EXECUTE FUNCTION sportello_sessions_changed();
CREATE TRIGGER customers_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON customer
    FOR EACH STATEMENT EXECUTE FUNCTION sportello_sessions_changed();
CREATE TRIGGER supply_points_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON supplypoint
    FOR EACH STATEMENT EXECUTE FUNCTION sportello_sessions_changed();
"""

DROP = """
DROP TRIGGER session_changed ON usersession;
DROP TRIGGER user_changed ON "user";
DROP TRIGGER sessions_emptied ON usersession;
DROP TRIGGER users_emptied ON "user";
DROP TRIGGER customers_changed ON customer;
DROP TRIGGER supply_points_changed ON supplypoint;
DROP FUNCTION sportello_session_changed();
DROP FUNCTION sportello_user_changed();
DROP FUNCTION sportello_sessions_changed();
"""


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    if isinstance(database, pw.PostgresqlDatabase):
        migrator.sql(CREATE)


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    if isinstance(database, pw.PostgresqlDatabase):
        migrator.sql(DROP)
