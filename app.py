"""The application factory: configuration, extensions, blueprints, error pages, CLI."""
import logging
import os
import re
import secrets
import sys
from datetime import timedelta
from pathlib import Path

import click
import stdnum.exceptions
from flask import Flask
from jinja2 import ChoiceLoader, FileSystemLoader
from stdnum.it import iva
from werkzeug.middleware.proxy_fix import ProxyFix

import accounts
import i18n
import labels
import mailer
import ratelimit
import self_readings
from database import init_database, write_transaction
from extensions import babel, csrf, login_manager, mail
from models import db_wrapper

# Every setting, its default, and how an environment variable's text becomes its value.
# The README's configuration table lists the same names.
SETTINGS = {
    "PORTAL_ENV": ("production", str),  # "development" for the demo and tests
    "SECRET_KEY": (None, str),
    "TOTP_KEY": (None, str),  # encrypts staff's TOTP secrets (totp.encryption_key); default: derived from SECRET_KEY
    "DATABASE_URL": (None, str),  # default: SQLite file in instance/
    "PORTAL_BASE_URL": (None, str),  # public address, used for links in mails
    "PORTAL_NAME": ("Sportello", str),
    "PORTAL_COLOR": ("#0b5cab", str),
    "PORTAL_SUPPORT_EMAIL": (None, str),
    "PORTAL_SUPPORT_PHONE": (None, str),
    "PORTAL_OFFICE_HOURS": (None, str),  # customer service's hours, beside its phone: "lun-ven 8:30-17:30"
    "PORTAL_GAS_EMERGENCY_PHONE": (None, str),  # the gas emergency service (pronto intervento), 24 hours a day
    # Who runs the portal, in every page's footer (an Italian company's site must show its partita IVA).
    "PORTAL_LEGAL_NAME": (None, str),  # default: PORTAL_NAME
    "PORTAL_ADDRESS": (None, str),  # the registered office
    "PORTAL_VAT_NUMBER": (None, str),  # the partita IVA, checked at start
    "REGISTRATION_PROOF": ("invoice_or_point", str),  # or "invoice", "point"
    "REDIS_URL": (None, str),
    "MAIL_SERVER": (None, str),
    "MAIL_BACKEND": (None, str),  # "files": keep mails as .eml files (the demo's default; in production only on purpose)
    "MAIL_PORT": (25, int),
    "MAIL_USE_TLS": (False, "bool"),
    "MAIL_USE_SSL": (False, "bool"),
    "MAIL_USERNAME": (None, str),
    "MAIL_PASSWORD": (None, str),
    "MAIL_DEFAULT_SENDER": ("Sportello <noreply@localhost>", str),
    "MAIL_TIMEOUT": (10, int),
    "MAIL_RETRY_SECONDS": (30, int),  # the first retry of a mail the server did not take; doubled each time, at most an hour
    "MAIL_CLAIM_SECONDS": (120, int),  # how long a sender holds the mail it sends (mailer.claim_duration)
    "MAIL_DELIVERY_THREAD": (True, "bool"),  # deliver the outbox from inside each process
    "MAIL_KEEP_DAYS": (30, int),  # a sent mail is deleted from the outbox after these days; 0 keeps them
    "SESSION_IDLE_MINUTES": (30, int),
    "SESSION_MAX_HOURS": (12, int),
    "SESSION_CACHE_SECONDS": (10, int),  # PostgreSQL: how long a process may reuse a session's rows; 0: never
    "CHART_BLOCKS_SECONDS": (300, int),  # how long a process answers a Grafici avanzati view it made, again, without a query; 0: never
    "PROXY_COUNT": (0, int),  # reverse proxies in front of the app that set X-Forwarded-*
    "MAX_CONTENT_LENGTH": (20 * 1024 * 1024, int),
    "FILE_STORE": (None, str),  # invoices' PDFs and documents; default: instance/files
    "IMPORT_MAX_BYTES": (1024 * 1024 * 1024, int),  # an upload to the back office's import
    # Self-reading windows, days of the month ("25-31"; "28-3" runs into the next month); none: any day.
    "READING_WINDOW_ELECTRICITY": (None, str),
    "READING_WINDOW_GAS": (None, str),
    "TICKET_REOPEN_DAYS": (30, int),  # a closed ticket may be reopened by its customer this many days
}


class ConfigError(RuntimeError):
    pass


def create_app(config=None):
    app = Flask(__name__, instance_relative_config=True)
    load_config(app, config or {})
    configure_logging(app)

    if app.config["PROXY_COUNT"]:
        n = app.config["PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)

    # A utility's own templates (privacy notice, texts, mails) in instance/templates win.
    app.jinja_loader = ChoiceLoader([FileSystemLoader(os.path.join(app.instance_path, "templates")), app.jinja_loader])

    init_database(app)
    babel.init_app(app, locale_selector=i18n.select_locale, default_timezone="Europe/Rome")
    i18n.init_app(app)
    labels.init_app(app)
    csrf.init_app(app)
    mail.init_app(app)
    login_manager.init_app(app)
    accounts.init_app(app)
    ratelimit.init_app(app)
    mailer.init_app(app)

    from views import (
        account,
        api,
        auth,
        backoffice,
        branding,
        common,
        consumption,
        customer_area,
        delegates,
        documents,
        errors,
        health,
        home,
        invoices,
        privacy,
        readings,
        registration,
        rendering,
        tickets,
    )

    app.url_map.converters["int"] = common.DatabaseId  # before any route is added
    rendering.init_app(app)
    branding.init_app(app)
    customer_areas = (customer_area.bp, home.bp, invoices.bp, consumption.bp, documents.bp, account.bp, tickets.bp,
                      readings.bp)
    for blueprint in (errors.bp, auth.bp, registration.bp, *customer_areas, account.lang_bp, account.email_bp, backoffice.bp):
        app.register_blueprint(blueprint)
    for blueprint in (privacy.bp, delegates.bp, delegates.invitation_bp):  # Privacy e account, Delegati
        app.register_blueprint(blueprint)
    health.init_app(app)  # /healthz, for monitoring, and the session that a probe does not have
    csrf.exempt(api.bp)  # a Bearer key, never a cookie, authenticates it: nothing for a CSRF token to guard
    app.register_blueprint(api.bp)

    register_commands(app)
    return app


def load_config(app, overrides):
    """Defaults, then instance/config.py, then the environment, then `overrides` (tests)."""
    for name, (default, _) in SETTINGS.items():
        app.config[name] = default
    app.config.from_pyfile("config.py", silent=True)
    for name, (_, kind) in SETTINGS.items():
        if name in os.environ:
            app.config[name] = parse_setting(name, os.environ[name], kind)
    app.config.update(overrides)

    development = app.config["PORTAL_ENV"] == "development"
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    if not app.config["SECRET_KEY"]:
        if not development:
            raise ConfigError(
                "SECRET_KEY is not set. Set it to a long random string (for example the output "
                "of `python -c 'import secrets; print(secrets.token_hex(32))'`), or set "
                "PORTAL_ENV=development to run the demo."
            )
        app.config["SECRET_KEY"] = development_secret_key(Path(app.instance_path))
    if not app.config["PORTAL_BASE_URL"]:
        if not development:
            raise ConfigError(
                "PORTAL_BASE_URL is not set: the public address of the portal, for example "
                "https://clienti.example.it. Links in mails are built from it."
            )
        app.config["PORTAL_BASE_URL"] = "http://127.0.0.1:%s" % os.environ.get("PORT", "5000")
    app.config["PORTAL_BASE_URL"] = app.config["PORTAL_BASE_URL"].rstrip("/")
    if not app.config["MAIL_SERVER"] and app.config["MAIL_BACKEND"] != "files" and not development:
        raise ConfigError(
            "MAIL_SERVER is not set: the SMTP server the portal's mails go through. For a test "
            "installation that keeps every mail as a file under instance/mail, set MAIL_BACKEND=files."
        )
    if app.config["TOTP_KEY"] and not re.fullmatch(r"[0-9a-fA-F]{64}", app.config["TOTP_KEY"]):
        raise ConfigError(
            "TOTP_KEY must be 64 hexadecimal digits (32 random bytes), for example the output of "
            "`python -c 'import secrets; print(secrets.token_hex(32))'`."
        )
    if not re.fullmatch(r"#[0-9a-fA-F]{6}", app.config["PORTAL_COLOR"]):
        raise ConfigError("PORTAL_COLOR must be a colour like #0b5cab.")
    from views import branding

    contrast = branding.contrast_ratio(app.config["PORTAL_COLOR"], branding.PAGE_BACKGROUND)
    if contrast < branding.MIN_CONTRAST:
        raise ConfigError(
            f"PORTAL_COLOR {app.config['PORTAL_COLOR']} is too light: links in it on the page's background "
            f"have a contrast of {contrast:.1f}:1, and at least {branding.MIN_CONTRAST}:1 is needed to be "
            "readable (WCAG AA). Choose a darker shade of the same colour."
        )
    if app.config["PORTAL_VAT_NUMBER"]:
        try:
            app.config["PORTAL_VAT_NUMBER"] = iva.validate(app.config["PORTAL_VAT_NUMBER"])
        except stdnum.exceptions.ValidationError:
            raise ConfigError(
                f"PORTAL_VAT_NUMBER {app.config['PORTAL_VAT_NUMBER']!r} is not a valid partita IVA: 11 digits, "
                "the last one a check digit (an IT in front is allowed)."
            ) from None
    if app.config["REGISTRATION_PROOF"] not in ("invoice_or_point", "invoice", "point"):
        raise ConfigError("REGISTRATION_PROOF must be invoice_or_point, invoice or point.")
    for name in ("READING_WINDOW_ELECTRICITY", "READING_WINDOW_GAS"):
        try:
            self_readings.parse_window(app.config[name])
        except ValueError:
            raise ConfigError(f"{name} must be days of the month like 25-31, not {app.config[name]!r}.") from None
    if not app.config["FILE_STORE"]:
        app.config["FILE_STORE"] = os.path.join(app.instance_path, "files")
    if not app.config["DATABASE_URL"]:
        app.config["DATABASE_URL"] = "sqlite:///" + os.path.join(app.instance_path, "sportello.db")

    https = app.config["PORTAL_BASE_URL"].startswith("https://")
    app.config.update(
        SESSION_COOKIE_NAME="sportello_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=https,
        REMEMBER_COOKIE_SECURE=https,
        REMEMBER_COOKIE_HTTPONLY=True,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the (server-checked) session
        # The cookie ends with the session's absolute limit (the server ends it then anyway), so
        # nothing is gained by signing and sending it again with every answer: only when it changes.
        PERMANENT_SESSION_LIFETIME=timedelta(hours=app.config["SESSION_MAX_HOURS"]),
        SESSION_REFRESH_EACH_REQUEST=False,
        BABEL_TRANSLATION_DIRECTORIES=os.path.join(app.root_path, "translations"),
        MAIL_STORE_DIR=os.path.join(app.instance_path, "mail"),
    )


def parse_setting(name, text, kind):
    if kind == "bool":
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{name} must be true or false, not {text!r}.")
    try:
        return kind(text)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {text!r}.") from None


def development_secret_key(instance):
    """The demo keeps one random key in instance/, so sessions survive a restart."""
    path = instance / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def configure_logging(app):
    if not app.debug and not app.testing:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


class TerminalProgress:
    """`file  42%` on a terminal's standard error while an import reads; silent otherwise."""

    def __init__(self):
        self.enabled = sys.stderr.isatty()

    def __call__(self, name, fraction):
        if self.enabled:
            end = "\n" if fraction >= 1 else ""
            sys.stderr.write(f"\r{name:<20} {fraction:4.0%}{end}")
            sys.stderr.flush()


def register_commands(app):
    import audit
    import demo
    import importer
    import schema

    @app.cli.command("init-db")
    def init_db_command():
        """Create the database schema, or upgrade it to the current version."""
        applied = schema.upgrade(db_wrapper.database)
        click.echo(f"Database ready ({applied} migration(s) applied).")

    @app.cli.command("backup")
    @click.argument("destination", type=click.Path())
    def backup_command(destination):
        """Back up the database and the file store into DESTINATION, a new folder, while the
        portal serves (see README, Backup and restore)."""
        import backups

        try:
            click.echo(backups.backup(app.config, destination))
        except backups.BackupError as error:
            raise click.ClickException(str(error)) from None

    @app.cli.command("restore")
    @click.argument("source", type=click.Path(exists=True, file_okay=False))
    def restore_command(source):
        """Restore a backup made by `backup` into this instance's empty database and file store."""
        import backups

        try:
            click.echo(backups.restore(app.config, source))
        except backups.BackupError as error:
            raise click.ClickException(str(error)) from None

    @app.cli.command("make-migration")
    @click.argument("name")
    def make_migration_command(name):
        """(Developers) write a migration for what models.py changed since the last one."""
        click.echo(schema.make_migration(db_wrapper.database, name) or "No changes.")

    @app.cli.command("demo")
    @click.option("--reset", is_flag=True, help="Delete all data first.")
    @click.option("--today", type=click.DateTime(formats=["%Y-%m-%d"]),
                  help="The demo's today, YYYY-MM-DD (default: today in Rome).")
    def demo_command(reset, today):
        """Load the demo utility's data (the same for the same today), unless there is already data."""
        schema.upgrade(db_wrapper.database)
        demo.load(reset=reset, echo=click.echo, today=today and today.date())

    @app.cli.command("import")
    @click.argument("paths", nargs=-1, required=True, type=click.Path())
    def import_command(paths):
        """Import the billing system's CSV files, or folders holding them: all or nothing."""
        report = importer.run(paths, app.config["FILE_STORE"], progress=TerminalProgress())
        for problem in report.problems:
            click.echo(problem, err=True)
        if report.problems:
            audit.record("import_refused", files=[os.path.basename(p) for p in paths], problems=len(report.problems))
            raise SystemExit(1)
        for line in report.lines():
            click.echo(line)
        audit.record("import", summary=report.lines())

    @app.cli.command("rebuild-totals")
    def rebuild_totals_command():
        """Sum every point's daily and monthly consumption by band again from its measures (the
        import keeps them; this is for after a fix, or a change of the band rules or holidays)."""
        import totals

        points = totals.rebuild(db_wrapper.database, echo=lambda line: click.echo(line, err=True))
        click.echo(f"Totals rebuilt for {points} supply point(s) with measures.")

    @app.cli.command("create-operator")
    @click.argument("email")
    @click.option("--password", help="For scripts; asked for (twice, hidden) when left out.")
    @click.option("--admin", is_flag=True, help="An administrator rather than an operator.")
    def create_operator_command(email, password, admin):
        """Create a back-office account; its second factor is set up at the first login."""
        if password is None:
            password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        role = "admin" if admin else "operator"
        try:
            with write_transaction():
                user = accounts.create_staff(email, password, role)
                audit.record("operator_created", user=user, role=role)
        except ValueError as error:
            raise click.ClickException(str(error)) from None
        click.echo(f"{role} {user.email} created: log in with the email in the User field.")

    @app.cli.command("remind-readings")
    @click.option("--today", type=click.DateTime(formats=["%Y-%m-%d"]), help="The day to act as (default: today in Rome).")
    def remind_readings_command(today):
        """(Daily) mail the customers who asked for it that a self-reading window is open: once per window."""
        from i18n import rome_today

        sent = self_readings.remind(today.date() if today else rome_today())
        click.echo(f"{sent} reminder(s) queued.")

    @app.cli.command("send-mail")
    @click.option("--loop", is_flag=True, help="Keep running: a separate mail worker.")
    def send_mail_command(loop):
        """Deliver the mails waiting in the outbox."""
        if loop:
            mailer.run_worker()
        else:
            sent = mailer.deliver_pending()
            forgotten = mailer.forget_sent_mails()
            click.echo(f"{sent} mail(s) delivered; {forgotten} sent more than MAIL_KEEP_DAYS ago deleted.")

    # --- export: CSV for the billing system (exporter.py). The CSV alone goes to standard
    # output, so it can be piped; the summary goes to standard error.
    @app.cli.group("export")
    def export_group():
        """Export customers' readings, tickets or contact changes as CSV for the billing system."""

    since_option = click.option(
        "--since", required=True, type=click.DateTime(formats=["%Y-%m-%d"]),
        help="First day (YYYY-MM-DD, Rome time) to export.",
    )
    output_option = click.option(
        "--output", type=click.Path(dir_okay=False), help="Write to this file instead of standard output.",
    )

    def run_export(kind, since, output):
        import exporter

        rows = exporter.run(kind, since.date(), output)
        click.echo(f"{rows} {kind} exported to {output or 'standard output'}", err=True)

    @export_group.command("readings")
    @since_option
    @output_option
    def export_readings_command(since, output):
        """Customers' self-readings created since --since, with their validation state."""
        run_export("readings", since, output)

    @export_group.command("tickets")
    @since_option
    @output_option
    def export_tickets_command(since, output):
        """Tickets updated since --since, with their message count and last message."""
        run_export("tickets", since, output)

    @export_group.command("contacts")
    @since_option
    @output_option
    def export_contacts_command(since, output):
        """Contact data (email, phone, fax, mobile) customers changed since --since, one row per change."""
        run_export("contacts", since, output)
