"""Every command the README shows works: each one in its ```sh blocks is run, or skipped here
with the reason.

The commands run for real, as a newcomer types them, in a scratch copy of the project: Flask's
instance folder is the project's instance/, so the copy's demo database, secret key, files and
mails are its own and the developer's instance/ is never touched. The copy uses the project's
virtualenv (a link). "Try it" is the demo, run from the project's folder in a clean shell; every
other section is the deployment, with the settings Deploy exports (its PostgreSQL replaced by a
SQLite file: the suite runs on SQLite). Servers are started on a free port, asked for /login,
then stopped. What the installation does as root to this machine (packages, users, /etc, systemd,
nginx) is not run here: tests/test_deploy.py runs the files it installs.

A command added to the README is run as well, if it is one of the kinds below; anything else
fails as unchecked until this file learns to run it or gives the reason it cannot.
"""
import getpass
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from app import SETTINGS
from tests.conftest import free_port
from tests.helpers import stop_process_group
from tests.import_data import write_data_set

ROOT = Path(__file__).resolve().parent.parent
DEMO_SECTIONS = {"Try it"}  # run by a developer in a clean shell; the others are the deployment
DEPLOY_SECTION = "Install on Debian"

# Commands that cannot run in a test on this machine, and why. Keep it short.
AS_ROOT = ("changes this machine as root (packages, users, /etc, /var); the test's copy stands in for "
           "/opt/sportello, deploy/env.example for /etc/sportello/env, the user running the suite for sportello")
NO_SYSTEMD = ("no systemd runs here (`systemctl is-system-running`: offline); tests/test_deploy.py checks the "
              "units with `systemd-analyze verify`, starts the web unit's gunicorn and runs the backup script")
NGINX = ("would change this machine's nginx and ask a public CA for a certificate; tests/test_deploy.py runs "
         "`nginx -t` and nginx itself on deploy/nginx/sportello.conf with a self-signed one, in a folder of its own")
PRODUCTION_POSTGRESQL = ("a production PostgreSQL role and database; these commands run on SQLite here, and "
                         "tests/test_deploy.py serves from the suite's PostgreSQL with TEST_DATABASE_URL")
NOT_RUN = {
    "apt-get install python3-venv postgresql redis-server nginx certbot":
        "installs Debian's packages (network, root); .ci/run installs PostgreSQL, Redis and nginx the same way",
    "adduser --system --group --home /opt/sportello/instance --no-create-home sportello": AS_ROOT,
    "install -d -o sportello -g sportello -m 750 instance": AS_ROOT,
    "install -m 755 deploy/sportello /usr/local/bin/sportello": AS_ROOT,
    "install -d -m 750 -g sportello /etc/sportello": AS_ROOT,
    "install -m 640 -g sportello deploy/env.example /etc/sportello/env": AS_ROOT,
    "editor /etc/sportello/env": "interactive; the test's copy of deploy/env.example gets its values from placeholders",
    "runuser -u postgres -- createuser sportello": PRODUCTION_POSTGRESQL,
    "runuser -u postgres -- createdb --owner sportello sportello": PRODUCTION_POSTGRESQL,
    "install -d -o sportello -g sportello -m 700 /var/backups/sportello": AS_ROOT,
    "cp deploy/systemd/* /etc/systemd/system/": NO_SYSTEMD,
    "systemctl daemon-reload": NO_SYSTEMD,
    "systemctl enable --now sportello sportello-mail sportello-remind-readings.timer sportello-backup.timer": NO_SYSTEMD,
    'certbot certonly --webroot -w /var/www/html -d clienti.example.it --deploy-hook "systemctl reload nginx"': NGINX,
    "cp deploy/nginx/sportello.conf /etc/nginx/sites-available/sportello": NGINX,
    "editor /etc/nginx/sites-available/sportello": NGINX,
    "ln -s /etc/nginx/sites-available/sportello /etc/nginx/sites-enabled/sportello": NGINX,
    "rm /etc/nginx/sites-enabled/default": NGINX,
    "nginx -t": NGINX,
    "systemctl reload nginx": NGINX,
    "curl -fsS http://127.0.0.1:8000/healthz":
        "needs the services running; tests/test_deploy.py asks gunicorn's /healthz, started as the unit does",
    "curl -fsS --resolve clienti.example.it:443:127.0.0.1 https://clienti.example.it/healthz":
        "needs the services running; tests/test_deploy.py asks /healthz through nginx and TLS",
    "systemctl status sportello sportello-mail": NO_SYSTEMD,
    "journalctl -u sportello -n 50": NO_SYSTEMD,
    "make test": "the whole suite, this test included; .ci/run runs it on SQLite and PostgreSQL",
    "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt":
        "downloads the pinned packages from PyPI (network, minutes); `make` installs the same ones "
        "into the .venv every other command here runs with",
    'curl -H "Authorization: Bearer $SPORTELLO_KEY" "https://clienti.example.it/api/v1/supply-points/PR002874/'
    'consumption?period_from=2026-11-01&period_to=2026-12-01&group_by=day"':
        "needs a key made under Dati Anagrafici and the public address; tests/test_api.py calls the same URL "
        "and tests/test_api_schema.py checks the running app against the OpenAPI document",
    'psql sportello -c "ALTER TABLE measure DETACH PARTITION measure_2025_01"':
        "archives a month of a production PostgreSQL database; tests/test_totals.py detaches a month "
        "the same way on the test database and checks that the totals stay",
    "pg_dump --format=custom --table=measure_2025_01 sportello > measure_2025_01.dump":
        "archives a month of a production PostgreSQL database; tests/test_totals.py detaches a month "
        "the same way on the test database and checks that the totals stay",
    'psql sportello -c "DROP TABLE measure_2025_01"':
        "archives a month of a production PostgreSQL database; tests/test_totals.py detaches a month "
        "the same way on the test database and checks that the totals stay",
}

OPERATOR_PASSWORD = "Readme-Prova-2026!"  # typed (twice) when create-operator asks for one
COMMAND_TIMEOUT = 180  # seconds; the demo's data takes about 21 (13 months of measures for 300 points)


def readme_commands():
    """[(section, [command, ...]), ...]: one entry per ```sh block, in the README's order; a
    command's continuation lines are joined, blank and comment-only lines left out."""
    blocks, section = [], None
    lines = iter((ROOT / "README.md").read_text().splitlines())
    for line in lines:
        if line.startswith("## "):
            section = line[3:].strip()
        elif line.strip() == "```sh":
            commands, pending = [], ""
            for code in lines:
                if code.strip() == "```":
                    break
                pending += code
                if pending.endswith("\\"):
                    pending = pending[:-1] + " "
                    continue
                if tokens(pending):
                    commands.append(pending.strip())
                pending = ""
            blocks.append((section, commands))
    return blocks


def tokens(command):
    """The shell's words of a command, without its comment; `&&`, `;` and `|` are words of their own."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    return list(lexer)


def words_of(command):
    """The program's words: without leading `cd DIR &&` steps and NAME=value prefixes."""
    words = tokens(command)
    while len(words) > 3 and words[0] == "cd" and words[2] == "&&":
        words = words[3:]
    while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
        words = words[1:]
    return words


def kind_of(command):
    """How the test checks a command: "state" (cd and export, which the commands after them in
    the session run with), "run" (exits 0), "serve" (answers /login), "skip" (NOT_RUN), or None
    when it does not know."""
    if any(tokens(command) == tokens(skipped) for skipped in NOT_RUN):
        return "skip"
    words = words_of(command)
    if {"&&", "||", ";", "|", "&"} & set(words):
        return None
    program, arguments = words[0], words[1:]
    if program in ("cd", "export") and words == tokens(command):
        return "state"
    if program == "make" and arguments[:1] == ["run"]:
        return "serve"
    if program == "make" and arguments[:1] == ["operator"]:
        return "run"
    if program == ".venv/bin/flask" and arguments[:2] == ["--app", "app"]:
        return "serve" if arguments[2:3] == ["run"] else "run"
    if program == "sportello":  # deploy/sportello, installed as /usr/local/bin/sportello
        return "run"
    if program == "sed" and arguments[-1:] == ["/etc/sportello/env"]:  # the settings' file (its copy here)
        return "run"
    if program == ".venv/bin/gunicorn":
        return "serve"
    if program == ".venv/bin/pybabel" and arguments[:1] == ["compile"]:
        return "run"
    return None


def test_every_readme_command_is_run_or_skipped_with_a_reason():
    fences = {line.strip() for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("```")}
    assert fences <= {"```sh", "```nginx", "```"}, "write commands in ```sh blocks, which this test reads"
    assert "```sh" in fences
    commands = [command for _, block in readme_commands() for command in block]
    assert len(commands) >= 10, "the README's ```sh blocks were not found"
    unchecked = [command for command in commands if kind_of(command) is None]
    assert unchecked == [], "README commands this test does not run: teach kind_of() or add them to NOT_RUN"
    shown = [tokens(command) for command in commands]
    assert all(tokens(skipped) in shown for skipped in NOT_RUN), "NOT_RUN names commands the README no longer shows"
    sections = {section for section, _ in readme_commands()}
    assert DEMO_SECTIONS | {DEPLOY_SECTION} <= sections


def test_the_nginx_example_is_whole_and_keeps_every_token_path_out_of_the_log():
    """deploy/nginx/sportello.conf, which the README installs, is configuration to copy: its braces
    balance, every directive ends, and it names every path of the app that carries an email
    link's token (tests/test_deploy.py runs it)."""
    assert "deploy/nginx/sportello.conf" in (ROOT / "README.md").read_text()
    blocks = [(ROOT / "deploy" / "nginx" / "sportello.conf").read_text()]
    for block in blocks:
        depth = 0
        for line in block.splitlines():
            code = line.split("#", 1)[0].strip()
            depth += code.count("{") - code.count("}")
            assert depth >= 0 and (not code or code.endswith(("{", "}", ";"))), line
        assert depth == 0, "unbalanced braces in the nginx example"
    views = "\n".join(path.read_text() for path in (ROOT / "views").rglob("*.py"))
    token_paths = re.findall(r'route\("/([^"<]+)/<token>"', views)
    assert token_paths and all(path in "\n".join(blocks) for path in token_paths), token_paths
    assert "if=$sportello_loggable" in "\n".join(blocks)


# --- running them --------------------------------------------------------------------------------

class Scratch:
    """A copy of the project with an instance/ of its own, the environment of a new terminal,
    and the things the README's deployment names on a real server."""

    def __init__(self, tmp_path):
        require_installed_virtualenv()
        self.folder = tmp_path
        self.project = tmp_path / "sportello"
        copy_project(self.project)
        self.billing_export = tmp_path / "billing-export"
        write_data_set(self.billing_export, customers=3)
        # /etc/sportello/env as installed (from deploy/env.example) and `editor` left it.
        self.settings = tmp_path / "etc-sportello-env"
        shutil.copy(ROOT / "deploy" / "env.example", self.settings)
        self.env = new_terminal_environment()
        # `sportello`: the copy's deploy/sportello, on PATH as if installed in /usr/local/bin,
        # run as the user running the suite.
        bin_folder = tmp_path / "usr-local-bin"
        bin_folder.mkdir()
        (bin_folder / "sportello").symlink_to(self.project / "deploy" / "sportello")
        self.env.update(PATH=f"{bin_folder}{os.pathsep}{self.env['PATH']}", SPORTELLO_HOME=str(self.project),
                        SPORTELLO_ENV=str(self.settings), SPORTELLO_USER=getpass.getuser())
        # What the README writes for a real server, and what stands in for it here.
        self.placeholders = {
            "/opt/sportello": str(self.project),
            "/srv/billing/export/": f"{self.billing_export}/",
            "/var/backups/sportello": str(tmp_path / "backups"),
            "/etc/sportello/env": str(self.settings),
            "/tmp/readings.csv": str(tmp_path / "readings.csv"),
        }
        # The suite runs on SQLite: the one PostgreSQL test database belongs to `make test`.
        text = self.settings.read_text()
        for placeholder, value in {"postgresql:///sportello": "sqlite:///" + str(tmp_path / "production.db"),
                                   "REDIS_URL=redis://127.0.0.1:6379/0": "REDIS_URL=redis://127.0.0.1:6379/15"}.items():
            assert placeholder in text
            text = text.replace(placeholder, value)
        self.settings.write_text(text)

    def path(self, text):
        """A path the README names, as it is in the test."""
        for placeholder, value in self.placeholders.items():
            text = text.replace(placeholder, value)
        return text

    def script(self, state, command):
        text = "\n".join(state + [command])
        for placeholder, value in self.placeholders.items():
            text = text.replace(placeholder, value)
        return ["bash", "-e", "-c", text]


def require_installed_virtualenv():
    """make run and make operator install the requirements first when they are newer than the
    virtualenv, which would be the project's .venv (the copy links it): not from a test."""
    installed = ROOT / ".venv" / ".installed"
    newest = max((ROOT / name).stat().st_mtime for name in ("requirements.txt", "requirements-dev.txt"))
    if not installed.exists() or installed.stat().st_mtime < newest:
        pytest.fail("the requirements changed since .venv was installed: `make install` first (`make test` does)")


def copy_project(destination):
    """The working tree as it is, without its instance/, build output or git; .venv is a link."""
    def ignore(folder, names):
        folder = Path(folder)
        left_out = {name for name in names if name in ("__pycache__", ".pytest_cache") or name.endswith(".mo")}
        if folder == ROOT:
            left_out |= {".git", ".venv", "instance"} & set(names)
        if folder == ROOT / "bench":
            left_out |= {"out"} & set(names)
        return left_out

    shutil.copytree(ROOT, destination, ignore=ignore)
    (destination / ".venv").symlink_to(ROOT / ".venv")


def new_terminal_environment():
    """os.environ without the portal's settings, make's variables or the virtualenv on PATH."""
    dropped = set(SETTINGS) | {"PORT", "VIRTUAL_ENV", "PYTHONPATH", "MAKEFLAGS", "MFLAGS", "MAKELEVEL",
                               "MAKEOVERRIDES", "EMAIL", "PASSWORD", "ADMIN"}
    env = {name: value for name, value in os.environ.items() if name not in dropped and not name.startswith("FLASK_")}
    virtualenv = str(ROOT / ".venv")
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(virtualenv))
    return env


def run(scratch, state, command):
    words = words_of(command)
    asks_password = "create-operator" in words and "--password" not in words
    result = subprocess.run(
        scratch.script(state, command), check=False, cwd=scratch.project, env=scratch.env, text=True,
        input=f"{OPERATOR_PASSWORD}\n{OPERATOR_PASSWORD}\n" if asks_password else "",
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=COMMAND_TIMEOUT,
        start_new_session=True,  # no terminal: a password prompt reads standard input
    )
    assert result.returncode == 0, f"`{command}` failed ({result.returncode}):\n{result.stdout[-3000:]}"
    return result.stdout


def serve(scratch, state, command):
    """Start the server on a free port, return /login's HTML once it answers 200, stop it."""
    port = free_port()
    command = re.sub(r"--bind \S+", f"--bind 127.0.0.1:{port}", command)
    env = dict(scratch.env, PORT=str(port), FLASK_RUN_PORT=str(port))  # make run, flask run
    log_path = scratch.folder / f"server-{port}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(scratch.script(state, command), cwd=scratch.project, env=env,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + COMMAND_TIMEOUT
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=10) as response:
                    assert response.status == 200
                    return response.read().decode()
            except urllib.error.HTTPError as error:
                pytest.fail(f"`{command}` answered /login with {error.code}:\n{log_path.read_text()[-3000:]}")
            except OSError:  # not listening yet (URLError), or its workers still starting (timeout)
                failed = process.poll() is not None or time.monotonic() > deadline
                assert not failed, f"`{command}` did not serve /login:\n{log_path.read_text()[-3000:]}"
                time.sleep(0.2)
    finally:
        stop_process_group(process)  # the server and its workers: their own session


def makefile_default(name):
    return re.search(rf"^{name} \?= (.+)$", (ROOT / "Makefile").read_text(), re.MULTILINE).group(1)


def check(scratch, command, output):
    """What a command's output or files say beyond its exit status."""
    words = words_of(command)
    if words[:2] == ["make", "operator"]:
        email = next(w.split("=", 1)[1] for w in words if w.startswith("EMAIL="))
        password = re.search(r"^Password: (\S+)$", output, re.MULTILINE).group(1)
        with sqlite3.connect(scratch.project / "instance" / "sportello.db") as database:
            role, password_hash = database.execute(
                'SELECT role, password_hash FROM "user" WHERE email = ?', (email,)).fetchone()
        assert role == ("admin" if "ADMIN=1" in words else "operator")
        assert PasswordHasher().verify(password_hash, password)
    if words[:4] == [".venv/bin/flask", "--app", "app", "import"] or words[:2] == ["sportello", "import"]:
        assert re.search(r"^customers\.csv: added \d+, updated \d+, unchanged \d+$", output, re.MULTILINE), output
    if words[:2] == ["sportello", "backup"]:
        assert re.search(r"^Backup written to .+: sqlite database .+ stored file\(s\)", output, re.MULTILINE), output
        assert len(list((scratch.folder / "backups").glob("*/manifest.json"))) == 1
    if "--output" in words:
        assert (scratch.project / scratch.path(words[words.index("--output") + 1])).stat().st_size > 0


def run_session(scratch, blocks):
    """Run the blocks' commands in order, as in one shell: a cd or export holds for the commands
    after it. Returns the commands run."""
    state, ran = [], []
    for section, commands in blocks:
        for command in commands:
            kind = kind_of(command)
            if kind == "skip":
                continue
            if kind == "serve":
                page = serve(scratch, state, command)
                if section in DEMO_SECTIONS:  # the demo's customer service, from the Makefile
                    for name in ("PORTAL_SUPPORT_PHONE", "PORTAL_SUPPORT_EMAIL", "PORTAL_GAS_EMERGENCY_PHONE",
                                 "PORTAL_VAT_NUMBER"):
                        assert makefile_default(name) in page, name
            else:
                check(scratch, command, run(scratch, state, command))
                if kind == "state":
                    state.append(command)
            ran.append(command)
    return ran


@pytest.mark.skipif(bool(os.environ.get("TEST_DATABASE_URL")),
                    reason="the commands use SQLite files of their own: the SQLite run of the suite checks them")
@pytest.mark.slow  # 30-80 s, with the machine's load: the demo's data twice, two servers, a dozen app starts
def test_every_readme_command_works(tmp_path):
    scratch = Scratch(tmp_path)
    blocks = readme_commands()
    demo = [block for block in blocks if block[0] in DEMO_SECTIONS]
    # The deployment: Deploy first, whose cd and export the other sections' commands need.
    deployment = sorted((block for block in blocks if block[0] not in DEMO_SECTIONS),
                        key=lambda block: block[0] != DEPLOY_SECTION)
    # Two sessions on different databases: side by side, on the machine's two cores.
    with ThreadPoolExecutor(max_workers=2) as pool:
        sessions = [pool.submit(run_session, scratch, demo), pool.submit(run_session, scratch, deployment)]
        ran = [command for session in sessions for command in session.result()]
    assert len(ran) == sum(len(commands) for _, commands in blocks) - len(NOT_RUN)
    # The demo's instance is the copy's own.
    assert (scratch.project / "instance" / "secret_key").exists()
    assert (scratch.project / "instance" / "sportello.db").exists()
