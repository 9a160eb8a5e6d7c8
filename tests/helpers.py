"""Helpers for tests: act like a browser (CSRF token from the page), read delivered mail, serve
the app with gunicorn, a PostgreSQL of a test's own."""
import contextlib
import dataclasses
import getpass
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import mailer
import models


def deliver(app):
    """Run one delivery of the outbox, as the app's mail thread would."""
    with app.app_context():
        return mailer.deliver_pending()


def text_of(message):
    return message.get_body(("plain",)).get_content()


def html_of(message):
    return message.get_body(("html",)).get_content()


def link_in(message, path_prefix):
    """The link in the mail's text that starts with the portal's address + path_prefix."""
    match = re.search(r"http://portal\.test(%s\S+)" % re.escape(path_prefix), text_of(message))
    assert match, f"no {path_prefix} link in:\n{text_of(message)}"
    return match.group(1)


# --- browser-like helpers ------------------------------------------------------------------------

def csrf_from(response):
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', response.get_data(as_text=True))
    assert match, "no CSRF token on the page"
    return match.group(1)


def post_form(client, url, data, page=None, headers=None):
    """POST like a browser: first load the page (or `page`) for its CSRF token."""
    token = csrf_from(client.get(page or url, follow_redirects=True))
    return client.post(url, data=dict(data, csrf_token=token), headers=headers or {})


# Every detail the footer can show (the partita IVA made up, with a valid check digit, written
# as a person might: checked and compacted at start).
COMPANY_SETTINGS = dict(
    PORTAL_LEGAL_NAME="Energia & Gas Romagna S.p.A.", PORTAL_ADDRESS="Via Esempio 1, 48121 Ravenna (RA)",
    PORTAL_VAT_NUMBER="IT 0123456 0397", PORTAL_SUPPORT_PHONE="0544 123456",
    PORTAL_OFFICE_HOURS="lun-ven 8:30-17:30", PORTAL_GAS_EMERGENCY_PHONE="800 900 999")


def login(client, user, password):
    return post_form(client, "/login", {"user": user, "password": password})


HTMX = {"HX-Request": "true"}


def htmx_headers(target):
    return {"HX-Request": "true", "HX-Target": target}


def logged_in_customer(app, code="005007", password=None):
    """A test client of a customer with a supply point, logged in; returns (client, user)."""
    from tests.factories import PASSWORD, make_customer, make_supply_point, make_user

    customer = make_customer(code=code)
    make_supply_point(customer)
    user = make_user(customer, password=password or PASSWORD)
    client = app.test_client()
    login(client, code, password or PASSWORD)
    return client, user


def sent_to_login(response):
    """The answer to an anonymous visitor: a redirect to the login page (not just any 302)."""
    return response.status_code == 302 and response.headers["Location"].startswith("/login")


# --- the app's own URLs ----------------------------------------------------------------------------

def routes_app():
    """An app to read routes from; the database is never opened."""
    import tempfile

    from app import create_app
    from tests.conftest import TEST_CONFIG

    return create_app(dict(TEST_CONFIG, DATABASE_URL="sqlite:///" + tempfile.gettempdir() + "/routes-only.db"))


def customer_area_blueprints(app=None):
    """The blueprints of the customer's menu areas: those whose pages load the customer area.
    Without `app`, one is made to read them (which binds the models to it: call it at import)."""
    from views.customer_area import load_customer_area

    app = app or routes_app()
    return tuple(name for name, functions in app.before_request_funcs.items() if load_customer_area in functions)


def route_urls(*blueprints, app=None):
    """[(method, url, endpoint)] of every route of these blueprints, read from the app's URL
    map, so a new route is tested without anyone adding it to a list. Path arguments get a
    plain sample value (ids 1, the first choice of an `any`)."""
    from werkzeug.routing import AnyConverter, IntegerConverter

    app = app or routes_app()
    urls = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint.split(".")[0] not in blueprints:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            url = rule.rule
            for name, converter in rule._converters.items():
                value = ("1" if isinstance(converter, IntegerConverter) else sorted(converter.items)[0]
                         if isinstance(converter, AnyConverter) else "005007")
                url = re.sub(r"<[^>]*\b%s>" % name, value, url)
            urls.append((method, url, rule.endpoint))
    return urls


# --- the app served by gunicorn, as in production -------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_PROGRAMS = sorted(glob.glob("/usr/lib/postgresql/*/bin"))  # initdb, pg_ctl


@dataclasses.dataclass
class Gunicorn:
    url: str
    process: subprocess.Popen
    log: Path  # gunicorn's error log: the app's own log lines too

    def worker_pids(self):
        """The worker processes' ids (the master's children), as the app sees os.getpid()."""
        pid = self.process.pid
        return {int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


@contextlib.contextmanager
def gunicorn(settings, log_dir, workers=1, access_log=None):
    """The app served by gunicorn (sync workers) on a free port until the block ends; yields a
    Gunicorn. `settings` are environment variables over the test run's own (None removes one);
    PORTAL_BASE_URL defaults to the server's own address."""
    from tests.conftest import free_port

    port = free_port()
    env = dict(os.environ, PORTAL_BASE_URL=f"http://127.0.0.1:{port}")
    for name, value in settings.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = str(value)
    log = Path(log_dir) / f"gunicorn-{port}.log"
    # No control socket: its default path is one per user, which several gunicorns would share.
    command = [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind", f"127.0.0.1:{port}",
               "--no-control-socket"]
    if access_log:
        command += ["--access-logfile", str(access_log), "--access-logformat", "%(p)s %(m)s %(s)s"]
    with log.open("w") as error_log:
        process = subprocess.Popen(
            command + ["app:create_app()"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=error_log,
            start_new_session=True,  # its own process group: the workers go down with it
        )
    server = Gunicorn(f"http://127.0.0.1:{port}", process, log)
    try:
        wait_until_serving(server)
        yield server
    finally:
        stop_process_group(process)


def release_connections():
    """Close the current app's database connections (a PostgreSQL pool's idle ones too): before
    another app takes db_wrapper, or a test drops the database they are open on."""
    database = models.db_wrapper.database
    if not database.is_closed():
        database.close()
    if hasattr(database.obj, "close_all"):
        database.obj.close_all()


def stop_process_group(process, seconds=10):
    """Stop a server started in a session of its own (start_new_session=True) with its workers:
    SIGTERM to the whole group, then SIGKILL if it has not gone after `seconds`."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_until_serving(server):
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(server.url + "/login", timeout=5)
            return
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline or server.process.poll() is not None:
                raise RuntimeError("gunicorn did not start: " + server.log.read_text()[-3000:]) from None
            time.sleep(0.2)


class PrivateCluster:
    """A throwaway PostgreSQL server in `folder`, started, stopped and started again by a test
    (tests/test_outage.py) or a benchmark (bench/load.py --fault postgres): stopping the
    machine's own would stop every other test."""

    def __init__(self, folder):
        from tests.conftest import free_port

        self.folder, self.port = folder, free_port()
        self.data = folder / "data"
        # PostgreSQL refuses to run as root: then it runs as the machine's postgres user.
        self.as_user = ["runuser", "-u", "postgres", "--"] if getpass.getuser() == "root" else []
        if self.as_user:
            shutil.chown(folder, "postgres")
        self.run("initdb", "--auth=trust", "--username=postgres", "--no-sync", "-D", str(self.data))

    def run(self, program, *args):
        subprocess.run([*self.as_user, os.path.join(POSTGRES_PROGRAMS[-1], program), *args], check=True, capture_output=True)

    def start(self):
        self.run("pg_ctl", "-D", str(self.data), "-w", "-l", str(self.folder / "log"), "-o",
                 f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c fsync=off", "start")

    def stop(self):
        self.run("pg_ctl", "-D", str(self.data), "-w", "-m", "fast", "stop")

    @property
    def url(self):
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"


@contextlib.contextmanager
def private_postgres():
    """A PrivateCluster, started, until the block ends."""
    # Not under pytest's tmp_path: the postgres user may not enter root's folder of them.
    folder = Path(tempfile.mkdtemp(prefix="sportello-postgres-"))
    server = PrivateCluster(folder)
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # stopped already
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)


class RedisServer:
    """A redis-server of a test's or a benchmark's own on a free port, keeping nothing on disk
    (restarted, it is empty, as a Redis without persistence); stopped and started again."""

    def __init__(self):
        from tests.conftest import free_port

        self.port, self.process = free_port(), None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.process = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                         "--appendonly", "no"], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True,
                             text=True).stdout.strip() != "PONG":
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.1)
        return self

    def stop(self):
        if self.process is not None:
            self.process.terminate()
            self.process.wait()
            self.process = None
