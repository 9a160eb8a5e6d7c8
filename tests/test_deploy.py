"""deploy/, as "Install on Debian" installs it, run as far as this machine allows.

No systemd runs here (a container: `systemctl is-system-running` says offline), and the suite
must not change the machine (users, /etc, the machine's nginx). So:
- the units are checked by `systemd-analyze verify` (which loads them as systemd would and
  checks that every ExecStart's program exists), their /opt/sportello being this project;
- the web unit's ExecStart (gunicorn with deploy/gunicorn.conf.py) is started with the settings of
  deploy/env.example, read as systemd reads an EnvironmentFile, after `sportello init-db` and
  `sportello create-operator` (deploy/sportello, the README's `sportello`), on a fresh SQLite
  file (or the suite's PostgreSQL with TEST_DATABASE_URL);
- nginx runs deploy/nginx/sportello.conf in the foreground, in a folder of its own, on free
  ports, with a self-signed certificate, in front of that gunicorn;
- deploy/nightly-backup runs against a stand-in for `flask backup` (another part of the
  project), to check its dated folders and its 14 days' retention.
"""
import datetime
import getpass
import http.client
import os
import re
import secrets
import shlex
import shutil
import ssl
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.helpers import stop_process_group

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
UNITS = sorted((DEPLOY / "systemd").iterdir())
NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)
REDIS_URL = "redis://127.0.0.1:6379/15"  # tests/test_workers.py's Redis database
NAME = "clienti.example.it"  # the public name in deploy/
STARTUP_SECONDS = 60


def unit(name):
    """A unit's [Service]/[Timer]... keys: {key: [values]} (systemd's syntax is simple enough)."""
    keys = {}
    for line in (DEPLOY / "systemd" / name).read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            keys.setdefault(key.strip(), []).append(value.strip())
    return keys


def systemd_environment_file(path):
    """NAME=value lines as systemd's EnvironmentFile= reads them: comments and blank lines
    skipped, one pair of surrounding quotes removed."""
    settings = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, value = line.split("=", 1)
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        settings[name] = value
    return settings


# --- the units --------------------------------------------------------------------------------------

def test_the_units_verify_as_systemd_loads_them(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    for path in UNITS:  # /opt/sportello is this project
        (tmp_path / path.name).write_text(path.read_text().replace("/opt/sportello", str(ROOT)))
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", *sorted(p.name for p in tmp_path.iterdir())],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    # Unknown keys, bad values and missing programs are reported; container noise is not.
    problems = [line for line in (result.stdout + result.stderr).splitlines() if "sportello" in line]
    assert result.returncode == 0 and problems == [], result.stdout + result.stderr


def test_the_units_run_the_portal_as_its_own_user_with_its_settings():
    services = [path.name for path in UNITS if path.suffix == ".service"]
    assert {"sportello.service", "sportello-mail.service"} <= set(services)
    commands = app_commands()
    for name in services:
        keys = unit(name)
        assert keys["User"] == ["sportello"] and keys["EnvironmentFile"] == ["/etc/sportello/env"], name
        assert keys["WorkingDirectory"] == ["/opt/sportello"], name
        assert keys["NoNewPrivileges"] == ["yes"] and keys["ProtectSystem"] == ["strict"], name
        assert keys["PrivateTmp"] == ["yes"] and keys["CapabilityBoundingSet"] == [""], name
        assert "/opt/sportello/instance" in keys["ReadWritePaths"][0].split(), name
        program, *arguments = shlex.split(keys["ExecStart"][0])
        assert program.startswith("/opt/sportello/"), name
        assert (ROOT / program.removeprefix("/opt/sportello/")).exists(), name  # the venv's, or deploy/'s
        if program.endswith("/flask"):  # a command the app has
            assert arguments[:2] == ["--app", "app"] and arguments[2] in commands, name
    assert shlex.split(unit("sportello-mail.service")["ExecStart"][0])[-2:] == ["send-mail", "--loop"]
    settings = systemd_environment_file(DEPLOY / "env.example")
    assert settings["MAIL_DELIVERY_THREAD"] == "false"  # the mail worker delivers, not the web workers
    assert settings["PROXY_COUNT"] == "1"  # nginx in front
    for timer in ("sportello-remind-readings.timer", "sportello-backup.timer"):
        assert (DEPLOY / "systemd" / timer.replace(".timer", ".service")).exists()
        assert unit(timer)["OnCalendar"] and unit(timer)["Persistent"] == ["true"]


def app_commands():
    from tests.helpers import routes_app

    return set(routes_app().cli.list_commands(None))


# --- the backup's schedule ---------------------------------------------------------------------------

def days_ago(days):
    return (datetime.date.today() - datetime.timedelta(days=days)).isoformat()


def run_nightly_backup(tmp_path, exit_status):
    """deploy/nightly-backup as sportello-backup.service runs it, with a stand-in for `flask
    backup DEST` (refuses a DEST that exists; writes a manifest) that exits with `exit_status`."""
    home = tmp_path / "opt-sportello"
    (home / ".venv" / "bin").mkdir(parents=True, exist_ok=True)
    flask = home / ".venv" / "bin" / "flask"
    flask.write_text('#!/bin/sh\n[ "$3" = backup ] && [ ! -e "$4" ] || exit 2\n'
                     f'mkdir "$4" && echo manifest > "$4/manifest.json"\nexit {exit_status}\n')
    flask.chmod(0o755)
    env = dict(os.environ, BACKUPS=str(tmp_path / "backups"), KEEP_DAYS=unit("sportello-backup.service")
               ["Environment"][0].split("KEEP_DAYS=")[1])
    return subprocess.run([DEPLOY / "nightly-backup"], cwd=home, env=env, capture_output=True, text=True, timeout=30)


def test_the_nightly_backup_makes_a_dated_folder_and_keeps_fourteen_days(tmp_path):
    backups = tmp_path / "backups"
    earlier = {days: backups / f"{days_ago(days)}_033012" for days in (30, 15, 14, 1)}
    for folder in earlier.values():
        folder.mkdir(parents=True)
    (backups / "keep-me").mkdir()  # not one of the script's folders

    failed = run_nightly_backup(tmp_path, exit_status=1)
    assert failed.returncode != 0
    assert all(folder.exists() for folder in earlier.values()), "a failed backup deletes nothing"

    shutil.rmtree(next(p for p in backups.iterdir() if p.name.startswith(datetime.date.today().isoformat())))
    result = run_nightly_backup(tmp_path, exit_status=0)
    assert result.returncode == 0, result.stdout + result.stderr
    made = [p for p in backups.iterdir() if p.name.startswith(datetime.date.today().isoformat())]
    assert len(made) == 1 and (made[0] / "manifest.json").exists()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d_\d{6}", made[0].name)
    assert not earlier[30].exists() and not earlier[15].exists()
    assert earlier[14].exists() and earlier[1].exists() and (backups / "keep-me").exists()


# --- gunicorn and nginx, as installed ----------------------------------------------------------------

def wait_for(process, ready, what, log):
    deadline = time.monotonic() + STARTUP_SECONDS
    while not ready():
        assert process.poll() is None, f"{what} stopped:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"{what} did not start:\n{log.read_text()[-3000:]}"
        time.sleep(0.1)


def answers(port):
    try:
        with http_get(port, "/healthz") as response:
            return response.status in (200, 503)
    except OSError:
        return False


class http_get:
    """GET on 127.0.0.1:port (TLS with `context`): the response, its body read."""

    def __init__(self, port, path, context=None, headers=None):
        self.connection = (http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10) if context
                           else http.client.HTTPConnection("127.0.0.1", port, timeout=10))
        self.path, self.headers = path, {"Host": NAME, **(headers or {})}

    def __enter__(self):
        self.connection.request("GET", self.path, headers=self.headers)
        response = self.connection.getresponse()
        response.body = response.read()
        return response

    def __exit__(self, *exc):
        self.connection.close()


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The portal as the README installs it: settings from deploy/env.example (a SECRET_KEY made
    as the README makes it), `sportello init-db` and `sportello create-operator`, then the web
    unit's ExecStart. Yields (gunicorn's port, its log, the settings)."""
    folder = tmp_path_factory.mktemp("installed")
    settings_file = folder / "env"
    text = (DEPLOY / "env.example").read_text()
    text = text.replace("SECRET_KEY=\n", f"SECRET_KEY={secrets.token_hex(32)}\n")
    database = os.environ.get("TEST_DATABASE_URL") or "sqlite:///" + str(folder / "sportello.db")
    text = text.replace("DATABASE_URL=postgresql:///sportello", f"DATABASE_URL={database}")
    text = text.replace("REDIS_URL=redis://127.0.0.1:6379/0", f"REDIS_URL={REDIS_URL}")
    text += f"FILE_STORE={folder / 'files'}\nWEB_CONCURRENCY=2\n"  # two workers are enough for a test
    settings_file.write_text(text)
    env = {name: value for name, value in os.environ.items() if name not in systemd_environment_file(settings_file)}
    env.update(SPORTELLO_HOME=str(ROOT), SPORTELLO_ENV=str(settings_file), SPORTELLO_USER=getpass.getuser())

    administrator = f"it-{secrets.token_hex(4)}@example.it"  # the suite's PostgreSQL may hold an earlier run's
    environment_administrator = {"ADMINISTRATOR": administrator, "ADMINISTRATOR_PASSWORD": "Prova-Deploy-2026!"}
    for command in (["init-db"], ["create-operator", administrator, "--admin", "--password", "Prova-Deploy-2026!"]):
        result = subprocess.run([DEPLOY / "sportello", *command], env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr

    # The web unit's command, its paths this project's, with the settings as systemd passes them.
    port = free_port()
    program, *arguments = shlex.split(unit("sportello.service")["ExecStart"][0].replace("/opt/sportello", str(ROOT)))
    environment = dict(env, **systemd_environment_file(settings_file))
    log = folder / "gunicorn.log"
    with log.open("w") as output:
        process = subprocess.Popen([program, *arguments, "--bind", f"127.0.0.1:{port}"], cwd=ROOT, env=environment,
                                   stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(process, lambda: answers(port), "gunicorn", log)
        yield port, log, dict(environment, **environment_administrator)
    finally:
        stop_process_group(process, seconds=20)


def test_gunicorn_serves_as_the_unit_starts_it(installed):
    port, log, environment = installed
    with http_get(port, "/healthz") as response:
        assert response.status == 200
        assert response.body == b"database ok\nredis ok\n"
        assert response.getheader("Set-Cookie") is None
    with http_get(port, "/login") as response:
        assert response.status == 200
        assert b'name="password"' in response.body
    workers = int(environment["WEB_CONCURRENCY"])
    deadline = time.monotonic() + STARTUP_SECONDS  # the first worker may answer before the others boot
    while log.read_text().count("Booting worker with pid") < workers and time.monotonic() < deadline:
        time.sleep(0.1)
    text = log.read_text()
    assert text.count("Booting worker with pid") == workers and "Traceback" not in text, text
    assert "healthz" not in text and "/login" not in text  # no access log


@pytest.fixture(scope="module")
def nginx(installed, tmp_path_factory):
    """deploy/nginx/sportello.conf in front of that gunicorn: its own prefix, free ports, a
    self-signed certificate for the example's name. Yields (http port, https port, SSL context
    trusting the certificate, the access log, the installed settings)."""
    if NGINX is None:
        pytest.skip("nginx is not installed (.ci/run installs it)")
    gunicorn_port = installed[0]
    folder = tmp_path_factory.mktemp("nginx")
    certificate, key = folder / "fullchain.pem", folder / "privkey.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={NAME}",
                    "-addext", f"subjectAltName=DNS:{NAME},IP:127.0.0.1", "-keyout", key, "-out", certificate],
                   check=True, capture_output=True, timeout=60)
    http_port, https_port = free_port(), free_port()
    site = (DEPLOY / "nginx" / "sportello.conf").read_text()
    for example, here in {
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
        f"/etc/letsencrypt/live/{NAME}/fullchain.pem": str(certificate),
        f"/etc/letsencrypt/live/{NAME}/privkey.pem": str(key),
        "server 127.0.0.1:8000;": f"server 127.0.0.1:{gunicorn_port};",
        "/opt/sportello/": f"{ROOT}/",
        "/var/log/nginx/": f"{folder}/",
        "/var/www/html": str(folder),
    }.items():
        assert example in site, example
        site = site.replace(example, here)
    site = "\n".join(line for line in site.splitlines() if "listen [::]" not in line)  # IPv6 may be absent here
    (folder / "sportello.conf").write_text(site)
    # What Debian's /etc/nginx/nginx.conf gives the site, in this folder.
    (folder / "nginx.conf").write_text(f"""
        {"user root;" if os.geteuid() == 0 else ""}
        worker_processes 1;
        daemon off;
        pid {folder}/nginx.pid;
        error_log {folder}/error.log;
        events {{ worker_connections 64; }}
        http {{
            include /etc/nginx/mime.types;
            default_type application/octet-stream;
            client_body_temp_path {folder}/body;
            proxy_temp_path {folder}/proxy;
            fastcgi_temp_path {folder}/fastcgi;
            uwsgi_temp_path {folder}/uwsgi;
            scgi_temp_path {folder}/scgi;
            access_log off;
            include {folder}/sportello.conf;
        }}
    """)
    command = [NGINX, "-p", str(folder), "-c", str(folder / "nginx.conf")]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    log = folder / "error.log"
    log.touch()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    context = ssl.create_default_context(cafile=str(certificate))
    try:
        def serving():
            try:
                with http_get(https_port, "/healthz", context):
                    return True
            except OSError:
                return False

        wait_for(process, serving, "nginx", log)
        yield http_port, https_port, context, folder / "sportello.log", installed[2]
    finally:
        stop_process_group(process, seconds=20)


def test_nginx_sends_http_to_https(nginx):
    http_port, _, _, _, _ = nginx
    with http_get(http_port, "/login?next=/fatture") as response:
        assert response.status == 301
        assert response.getheader("Location") == f"https://{NAME}/login?next=/fatture"


def test_nginx_passes_pages_and_healthz_to_the_app_over_tls(nginx):
    _, https_port, context, _, _ = nginx
    with http_get(https_port, "/healthz", context) as response:
        assert response.status == 200
        assert response.body == b"database ok\nredis ok\n"
        assert response.getheader("Cache-Control") == "no-store"
    with http_get(https_port, "/login", context) as response:
        assert response.status == 200
        assert b'name="password"' in response.body
        assert response.getheader("Content-Security-Policy")  # the app's own headers
        assert "Secure" in response.getheader("Set-Cookie", "Secure")


def test_nginx_serves_the_static_files_itself(nginx):
    _, https_port, context, _, _ = nginx
    with http_get(https_port, "/static/style.css", context) as response:
        assert response.status == 200
        assert response.body == (ROOT / "static" / "style.css").read_bytes()
        assert response.getheader("Cache-Control") == "no-cache"  # the same name in every version
        assert response.getheader("X-Content-Type-Options") == "nosniff"
        assert response.getheader("Content-Security-Policy") is None  # not the app's answer
    htmx = next((ROOT / "static" / "vendor").glob("htmx-*.min.js")).name
    with http_get(https_port, f"/static/vendor/{htmx}", context) as response:
        assert response.status == 200
        assert "max-age=31536000" in response.getheader("Cache-Control")


def test_nginx_logs_neither_email_links_nor_probes(nginx):
    _, https_port, context, access_log, _ = nginx
    link = "/password/nuova/" + secrets.token_urlsafe(16)
    requests = [("/healthz", {}, 200), (link, {}, 410),  # a made-up token: a link no longer valid
                ("/static/style.css", {"Referer": f"https://{NAME}{link}"}, 200), ("/login", {}, 200)]
    for path, headers, status in requests:
        with http_get(https_port, path, context, headers) as response:
            assert response.status == status, path
    logged = access_log.read_text()
    assert "GET /login " in logged
    assert "healthz" not in logged and "password/nuova" not in logged


def test_nginx_takes_a_large_upload_only_on_the_import(nginx):
    _, https_port, context, _, _ = nginx
    body = b"x" * (21 * 1024 * 1024)  # over MAX_CONTENT_LENGTH's 20 MiB
    statuses = {}
    for path in ("/login", "/backoffice/importazioni"):
        connection = http.client.HTTPSConnection("127.0.0.1", https_port, context=context, timeout=30)
        try:
            connection.request("POST", path, body=body, headers={"Host": NAME, "Content-Type": "text/plain"})
            statuses[path] = connection.getresponse().status
        except (BrokenPipeError, ConnectionResetError):  # nginx may answer 413 before the body is sent
            statuses[path] = 413
        finally:
            connection.close()
    assert statuses["/login"] == 413
    assert statuses["/backoffice/importazioni"] != 413  # passed to the app, which wants a logged-in operator


def test_a_request_over_the_limit_gets_the_portals_page(nginx):
    """nginx refuses it on its Content-Length, before any body, and shows the portal's 413 page
    (the limit of a file, in the portal's layout) instead of its own."""
    _, https_port, context, _, _ = nginx
    connection = http.client.HTTPSConnection("127.0.0.1", https_port, context=context, timeout=30)
    try:
        connection.putrequest("POST", "/dati-anagrafici/contatti", skip_host=True)
        for name, value in (("Host", NAME), ("Content-Type", "multipart/form-data; boundary=x"),
                            ("Content-Length", str(21 * 1024 * 1024))):
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        page = response.read().decode()
    finally:
        connection.close()
    assert response.status == 413
    assert "ogni file può essere al massimo di 5 MB" in page and '<html lang="it">' in page
    assert "nginx" not in page and response.getheader("Content-Security-Policy")


def test_the_administrator_logs_in_through_nginx(nginx):
    """The app sees the scheme and host the browser used (nginx's Host and X-Forwarded-Proto):
    over HTTPS the CSRF check also wants a Referer of the same host (Flask-WTF's strict check),
    so a POST without one is refused and one with it passes."""
    _, https_port, context, _, settings = nginx
    connection = http.client.HTTPSConnection("127.0.0.1", https_port, context=context, timeout=30)
    try:
        connection.request("GET", "/login", headers={"Host": NAME})
        page = connection.getresponse()
        html = page.read().decode()
        assert page.status == 200
        cookie = page.getheader("Set-Cookie").split(";")[0]
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)
        form = urllib.parse.urlencode({"csrf_token": token, "user": settings["ADMINISTRATOR"],
                                       "password": settings["ADMINISTRATOR_PASSWORD"]})
        headers = {"Host": NAME, "Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
        connection.request("POST", "/login", body=form, headers=headers)  # no Referer: refused over HTTPS
        refused = connection.getresponse()
        refused.read()
        assert refused.status == 400
        connection.request("POST", "/login", body=form, headers=dict(headers, Referer=f"https://{NAME}/login"))
        answer = connection.getresponse()
        answer.read()
        assert answer.status == 303
        assert answer.getheader("Location") == "/login/codice"  # the password is right: on to the second factor
    finally:
        connection.close()
