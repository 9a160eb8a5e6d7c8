"""The back office: operators with a second factor, customers' search and page, account
actions, the audit log; and no way in for customers."""
import ast
import hashlib
import io
import json
import re
import threading
import time
import zipfile
from datetime import date, datetime, timedelta
from html import unescape
from pathlib import Path

import pyotp
import pytest
from babel.messages.pofile import read_po
from flask import url_for
from flask_babel import force_locale

import accounts
import import_jobs
import labels
import totp
from i18n import rome_today
from models import (
    AuditLog,
    CannedReply,
    Consent,
    Customer,
    Document,
    ImportJob,
    Invoice,
    OutboxMail,
    Reading,
    SupplyPoint,
    Ticket,
    User,
    UserSession,
    db_wrapper,
    utcnow,
)
from tests.factories import (
    PASSWORD,
    make_customer,
    make_invoice,
    make_supply_point,
    make_user,
    valid_tax_code,
)
from tests.helpers import (
    csrf_from,
    logged_in_customer,
    login,
    post_form,
    route_urls,
    sent_to_login,
)
from tests.import_data import pdf_bytes, write_data_set, zipped

OPERATOR_PASSWORD = "Sportello-Staff-2026!"


@pytest.fixture
def operator(app):
    with app.app_context():
        return accounts.create_staff("Operatore@Utility.it", OPERATOR_PASSWORD)


def enroll(client, email="operatore@utility.it"):
    """Password, then the first-login enrolment; returns the secret the page showed."""
    response = login(client, email, OPERATOR_PASSWORD)
    assert response.status_code == 303 and response.headers["Location"] == "/login/codice"
    page = client.get("/login/codice").get_data(as_text=True)
    assert 'src="data:image/svg+xml' in page  # the QR code
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', page).group(1)
    return secret


def enter_code(client, code):
    return post_form(client, "/login/codice", {"code": code})


def enrolled_secret(app, user):
    """The user's enrolled secret as the app reads it (stored encrypted)."""
    with app.app_context():
        return totp.active_secret(User.get_by_id(user.id))


@pytest.fixture
def staff(app, operator):
    """A logged-in operator's client."""
    client = app.test_client()
    secret = enroll(client)
    assert enter_code(client, pyotp.TOTP(secret).now()).status_code == 303
    return client


# --- operators ---------------------------------------------------------------------------------

def test_create_operator_command(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-operator", "Anna@Utility.it", "--password", OPERATOR_PASSWORD])
    assert result.exit_code == 0, result.output
    user = User.get(User.email == "anna@utility.it")
    assert user.role == User.OPERATOR and user.customer_id is None and user.totp_secret is None
    again = runner.invoke(args=["create-operator", "anna@utility.it", "--password", OPERATOR_PASSWORD])
    assert again.exit_code == 1 and "esiste già" in again.output
    weak = runner.invoke(args=["create-operator", "b@utility.it", "--password", "password"])
    assert weak.exit_code == 1 and "La password deve contenere anche" in weak.output
    admin = runner.invoke(args=["create-operator", "it@utility.it", "--admin"], input=f"{OPERATOR_PASSWORD}\n{OPERATOR_PASSWORD}\n")
    assert admin.exit_code == 0 and User.get(User.email == "it@utility.it").role == User.ADMIN
    assert AuditLog.select().where(AuditLog.action == "operator_created").count() == 2


def test_first_login_enrolls_the_second_factor(app, operator):
    client = app.test_client()
    secret = enroll(client)
    assert client.get("/backoffice/").status_code == 302  # the password alone opens nothing
    assert enter_code(client, "000000").status_code == 422
    assert User.get_by_id(operator.id).totp_secret is None  # saved only with a right code
    response = enter_code(client, pyotp.TOTP(secret).now())
    assert response.status_code == 303 and response.headers["Location"] == "/backoffice/"
    assert enrolled_secret(app, operator) == secret
    page = client.get("/backoffice/").get_data(as_text=True)
    assert "Area operatori" in page and "Registro attività" in page
    actions = [a.action for a in AuditLog.select().order_by(AuditLog.id)]
    assert actions[-4:] == ["login_password_ok", "login_failed_second_factor", "second_factor_enrolled", "login"]


def test_next_logins_ask_the_code_and_a_code_works_once(app, operator):
    first = app.test_client()
    secret = enroll(first)
    code = pyotp.TOTP(secret).now()
    assert enter_code(first, code).status_code == 303

    second = app.test_client()
    assert login(second, "operatore@utility.it", OPERATOR_PASSWORD).headers["Location"] == "/login/codice"
    page = second.get("/login/codice").get_data(as_text=True)
    assert "data:image/svg+xml" not in page and "secret" not in page  # no QR after enrolment
    assert enter_code(second, code).status_code == 422  # the same code again: refused
    step = int(time.time()) // 30 + 1
    assert enter_code(second, pyotp.TOTP(secret).at(step * 30)).status_code == 303  # the next one


def test_wrong_codes_count_towards_the_lockout(app, operator):
    client = app.test_client()
    enroll(client)
    for _ in range(9):
        enter_code(client, "000000")
    response = enter_code(client, "000000")
    assert response.status_code == 429
    assert User.get_by_id(operator.id).locked_until > utcnow()


def test_the_code_step_expires(app, operator):
    client = app.test_client()
    enroll(client)
    with client.session_transaction() as session:
        pending = session["second_factor"]
        pending["at"] -= 600  # the password was typed ten minutes ago
        session["second_factor"] = pending
    response = client.get("/login/codice")
    assert response.status_code == 303 and response.headers["Location"] == "/login"


def session_texts(app, client, *responses):
    """What the browser holds of the session: the Set-Cookie headers of `responses`, and the
    client's session cookie decoded (it is signed, not encrypted: anyone with it reads it)."""
    texts = [header for response in responses for header in response.headers.getlist("Set-Cookie")]
    cookie = client.get_cookie("sportello_session")
    if cookie is not None:
        texts.append(json.dumps(app.session_interface.get_signing_serializer(app).loads(cookie.value)))
    return texts


def test_the_secret_being_enrolled_stays_on_the_server(app, operator):
    client = app.test_client()
    responses = [login(client, "operatore@utility.it", OPERATOR_PASSWORD), client.get("/login/codice")]
    assert [r.status_code for r in responses] == [303, 200]
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', responses[1].get_data(as_text=True)).group(1)
    reload = client.get("/login/codice")
    assert reload.status_code == 200 and secret in reload.get_data(as_text=True)  # the same QR code
    responses.append(reload)
    assert enter_code(client, "000000").status_code == 422
    texts = session_texts(app, client, *responses)
    assert any('"second_factor"' in text for text in texts)  # the decoded session is among them
    assert not any(secret in text for text in texts)
    stored = User.get_by_id(operator.id)
    assert stored.totp_secret is None and stored.totp_pending_secret and secret not in stored.totp_pending_secret

    done = enter_code(client, pyotp.TOTP(secret).now())
    assert done.status_code == 303 and done.headers["Location"] == "/backoffice/"
    stored = User.get_by_id(operator.id)
    assert stored.totp_pending_secret is None and secret not in stored.totp_secret
    assert enrolled_secret(app, operator) == secret
    assert not any(secret in text for text in session_texts(app, client, done))


def test_a_new_login_enrols_a_new_secret(app, operator):
    first = app.test_client()
    old = enroll(first)
    second = app.test_client()
    new = enroll(second)
    assert new != old
    assert enter_code(first, pyotp.TOTP(old).now()).status_code == 422  # the first login's QR is gone
    assert enter_code(second, pyotp.TOTP(new).now()).status_code == 303
    assert enrolled_secret(app, operator) == new


UNREADABLE = "Il secondo fattore di questo accesso non si può verificare"


@pytest.mark.parametrize("changed", [{"TOTP_KEY": "ab" * 32}, {"SECRET_KEY": "another-secret-key"}])
def test_after_a_key_change_the_code_is_refused_with_a_message_until_a_reset(make_app, app, operator, changed):
    """The secrets stored with the old key cannot be read: no code passes, the page says why, and
    the password alone does not enrol a new authenticator. An administrator resets it."""
    first = app.test_client()
    secret = enroll(first)
    assert enter_code(first, pyotp.TOTP(secret).now()).status_code == 303

    moved = make_app(**changed)
    client = moved.test_client()
    assert login(client, "operatore@utility.it", OPERATOR_PASSWORD).headers["Location"] == "/login/codice"
    page = client.get("/login/codice")
    assert page.status_code == 200
    assert UNREADABLE in page.get_data(as_text=True) and "data:image/svg+xml" not in page.get_data(as_text=True)
    next_code = pyotp.TOTP(secret).at((int(time.time()) // 30 + 1) * 30)
    response = enter_code(client, next_code)
    assert response.status_code == 422 and UNREADABLE in response.get_data(as_text=True)
    assert sent_to_login(client.get("/backoffice/"))
    assert AuditLog.select().where(AuditLog.action == "login_failed_second_factor").count() == 1

    with moved.app_context():
        accounts.create_staff("it@utility.it", OPERATOR_PASSWORD, User.ADMIN)
    admin = moved.test_client()
    assert enter_code(admin, pyotp.TOTP(enroll(admin, "it@utility.it")).now()).status_code == 303
    token = csrf_from(admin.get("/backoffice/operatori"))
    reset = admin.post(f"/backoffice/operatori/{operator.id}/reset_second_factor", data={"csrf_token": token})
    assert reset.status_code == 303
    again = moved.test_client()
    new_secret = enroll(again)
    assert enter_code(again, pyotp.TOTP(new_secret).now()).status_code == 303


def test_operators_cannot_use_the_customer_area(staff):
    assert staff.get("/").status_code == 403


# --- no way in for customers ---------------------------------------------------------------------

BACKOFFICE_ROUTES = route_urls("backoffice")  # at import: reading them binds the models to another app
BACKOFFICE_URLS = [(method, url) for method, url, _endpoint in BACKOFFICE_ROUTES]


def test_the_url_list_is_complete():
    assert ("GET", "/backoffice/operatori") in BACKOFFICE_URLS
    assert ("POST", "/backoffice/utenti/1/disable") in BACKOFFICE_URLS
    assert len(BACKOFFICE_URLS) >= 12


@pytest.mark.parametrize("method, url", BACKOFFICE_URLS)
def test_customers_cannot_reach_the_back_office(app, method, url):
    client, _ = logged_in_customer(app)
    token = csrf_from(client.get("/", follow_redirects=True))
    response = client.open(url, method=method, data={"csrf_token": token} if method == "POST" else None)
    assert response.status_code == 404
    assert User.get().disabled is False


@pytest.mark.parametrize("method, url", BACKOFFICE_URLS)
def test_anonymous_visitors_are_sent_to_login(client, method, url):
    # A POST carries a valid token (an anonymous session has one too): without it CSRF would
    # answer 400 before the back office's own check, which would then go untested.
    token = csrf_from(client.get("/login"))
    response = client.open(url, method=method, data={"csrf_token": token} if method == "POST" else None)
    assert sent_to_login(response)
    assert AuditLog.select().count() == 0 and ImportJob.select().count() == 0


# --- customers ---------------------------------------------------------------------------------

MARIO_TAX_CODE = valid_tax_code("VTLMRC67E08D458")


@pytest.fixture
def customers():
    mario = make_customer(code="005007", name="ROSSI MARIO", email="mario@example.it", tax_code=MARIO_TAX_CODE)
    point = make_supply_point(mario, pod_pdr="IT001E00287400")
    firm = make_customer(code="005100", name="FERRAMENTA BIANCHI S.R.L.", kind="company",
                         tax_code="02123450390", vat_number="02123450390")
    make_supply_point(firm, commodity="gas", pod_pdr="01234567891011")
    make_invoice(mario, point)
    return mario, firm


# As htmx 2 posts the search form to swap #results.
HTMX_SEARCH = {"HX-Request": "true", "HX-Target": "results", "HX-Current-URL": "http://localhost/backoffice/"}


def search(client, text, htmx=False, **more):
    """The search as the page sends it: posted with the page's token, plainly (Enter without
    JavaScript) or by htmx as one types."""
    token = csrf_from(client.get("/backoffice/"))
    return client.post("/backoffice/", data={"csrf_token": token, "q": text, **more},
                       headers=HTMX_SEARCH if htmx else {})


def found(response):
    return re.findall(r'href="/backoffice/clienti/(\d{6})"', response.get_data(as_text=True))


def urls_of(response):
    """Every URL a response gives the browser: its redirect and history headers, and the links,
    form actions and htmx requests of its body; but the results' links to a customer's page,
    which is at the customer's code."""
    headers = [response.headers.get(name, "") for name in
               ("Location", "HX-Push-Url", "HX-Replace-Url", "HX-Redirect", "HX-Location")]
    body = re.findall(r'\s(?:href|src|action|formaction|hx-get|hx-post|hx-push-url|hx-replace-url)="([^"]*)"',
                      response.get_data(as_text=True))
    return [url for url in headers + body if not re.fullmatch(r"/backoffice/clienti/\d{6}", url)]


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
@pytest.mark.parametrize("query, expected", [
    ("005007", ["005007"]),
    ("0051", ["005100"]),
    ("rossi", ["005007"]),
    ("FERRAMENTA", ["005100"]),
    (MARIO_TAX_CODE, ["005007"]),
    (MARIO_TAX_CODE.lower(), ["005007"]),
    ("02123450390", ["005100"]),
    ("it001e00287400", ["005007"]),
    ("01234567891011", ["005100"]),
    ("mario@example", ["005007"]),
    ("nessuno", []),
])
def test_search(staff, customers, query, expected, htmx):
    """Posted, as a page or as the results htmx swaps in; the text is in no URL of the answer."""
    response = search(staff, query, htmx=htmx)
    assert response.status_code == 200
    assert found(response) == expected
    body = response.get_data(as_text=True)
    assert ("<html" in body) is not htmx
    assert ("HX-Target" in response.headers["Vary"]) is htmx and "HX-Request" in response.headers["Vary"]
    assert [url for url in urls_of(response) if query.lower() in url.lower()] == []


def test_search_is_in_no_url_and_no_log(staff, customers):
    """A codice fiscale searched for is in no URL: the page neither pushes one nor redirects,
    and its links and forms do not carry the text. Nor is it written to the audit log."""
    page = staff.get("/backoffice/")
    assert page.status_code == 200
    form = re.search(r'<form[^>]*role="search"[^>]*>', page.get_data(as_text=True)).group(0)
    assert 'method="post"' in form and "hx-post=" in form and "hx-push-url" not in form
    for htmx in (False, True):
        response = search(staff, MARIO_TAX_CODE, htmx=htmx)
        assert response.status_code == 200 and found(response) == ["005007"]
        assert "hx-push-url" not in response.get_data(as_text=True)
        assert all(MARIO_TAX_CODE not in url for url in urls_of(response))
    entries = [entry.detail for entry in AuditLog.select()]
    assert not any(MARIO_TAX_CODE in detail for detail in entries), entries


def test_a_search_in_the_url_is_not_run(staff, customers):
    """An old bookmark's ?q=: sent to the empty search, not run, and the text not carried on
    (it would be in the address bar and in the page's links, the language's next one say)."""
    for headers in ({}, HTMX_SEARCH):
        response = staff.get("/backoffice/", query_string={"q": MARIO_TAX_CODE, "pagina": "2"}, headers=headers)
        assert response.status_code == 303 and response.headers["Location"] == "/backoffice/"
    response = staff.get("/backoffice/", query_string={"q": MARIO_TAX_CODE, "page": "2"})  # the old English name
    assert response.status_code == 301 and MARIO_TAX_CODE not in response.headers["Location"]
    response = staff.get(response.headers["Location"])
    assert response.status_code == 303 and response.headers["Location"] == "/backoffice/"
    page = staff.get("/backoffice/")
    assert page.status_code == 200
    assert found(page) == [] and MARIO_TAX_CODE not in page.get_data(as_text=True)


def test_a_search_without_its_token_is_refused(staff, customers):
    for headers in ({}, HTMX_SEARCH):
        response = staff.post("/backoffice/", data={"q": MARIO_TAX_CODE}, headers=headers)
        assert response.status_code == 400
        assert found(response) == []


def test_the_customer_page(staff, customers):
    mario, _ = customers
    user = make_user(mario, username="mario.rossi", email="mario@example.it")
    Consent.create(user=user, kind="marketing", granted=True, text_version="2026-11")
    page = staff.get("/backoffice/clienti/005007").get_data(as_text=True)
    assert "ROSSI MARIO" in page and "IT001E00287400" in page and "mario.rossi" in page
    assert "Marketing: sì (2026-11)" in page
    assert mario.tax_code not in page  # masked
    assert staff.get("/backoffice/clienti/999999").status_code == 404


# --- actions ---------------------------------------------------------------------------------

def act(staff, user, action):
    token = csrf_from(staff.get(f"/backoffice/clienti/{user.customer.code}"))
    return staff.post(f"/backoffice/utenti/{user.id}/{action}", data={"csrf_token": token})


def test_unlock_disable_enable(app, staff, customers, operator):
    mario, _ = customers
    user = make_user(mario)
    customer_client = app.test_client()
    for _ in range(10):  # locked by wrong passwords
        login(customer_client, "005007", "Sbagliata-2026!")
    assert login(customer_client, "005007", PASSWORD).status_code == 429
    assert "bloccato fino alle" in staff.get("/backoffice/clienti/005007").get_data(as_text=True)
    assert act(staff, user, "unlock").status_code == 303
    assert User.get_by_id(user.id).locked_until is None
    assert login(customer_client, "005007", PASSWORD).status_code == 303

    assert act(staff, user, "disable").status_code == 303
    assert UserSession.select().where(UserSession.user == user).count() == 0  # logged out at once
    assert sent_to_login(customer_client.get("/"))
    assert login(app.test_client(), "005007", PASSWORD).status_code == 403

    assert act(staff, user, "enable").status_code == 303
    assert login(app.test_client(), "005007", PASSWORD).status_code == 303
    entries = AuditLog.select().where(AuditLog.action.startswith("operator_")).order_by(AuditLog.id)
    assert [(e.action, e.user_id) for e in entries if e.action not in ("operator_created", "operator_viewed_customer")] == [
        ("operator_unlock_user", operator.id), ("operator_disable_user", operator.id), ("operator_enable_user", operator.id)]


def test_resend_confirmation(staff, customers):
    mario, _ = customers
    pending = make_user(mario, confirmed=False, email="nuovo@example.it")
    assert act(staff, pending, "resend").status_code == 303
    assert OutboxMail.get().recipient == "nuovo@example.it"
    confirmed = make_user(make_customer(), email="ok@example.it")
    assert act(staff, confirmed, "resend").status_code == 409


def test_actions_need_csrf(staff, customers):
    mario, _ = customers
    user = make_user(mario)
    assert staff.post(f"/backoffice/utenti/{user.id}/disable").status_code == 400
    assert User.get_by_id(user.id).disabled is False


# --- the audit log -------------------------------------------------------------------------------

def test_audit_log_filters(app, staff, customers, operator):
    mario, firm = customers
    customer_user = make_user(mario, username="mario.rossi")
    login(app.test_client(), "005007", "Sbagliata-2026!")
    login(app.test_client(), "005007", PASSWORD)

    def shown(**filters):
        response = staff.get("/backoffice/registro", query_string=filters)
        assert response.status_code == 200
        return re.findall(r"<td>([^<]+)</td><td class=\"wrap\">", response.get_data(as_text=True))

    assert shown(cliente="005007") == ["Accesso riuscito", "Accesso non riuscito"]
    assert shown(azione="login_failed") == ["Accesso non riuscito"]
    assert shown(azione="login") == ["Accesso riuscito", "Accesso riuscito"]  # that action, not every login_*
    assert "Secondo fattore attivato" in shown(utente="operatore@utility.it")
    assert shown(utente="mario.rossi") == ["Accesso riuscito", "Accesso non riuscito"]
    today = rome_today().isoformat()  # the filter's days are Rome's (not UTC's, after 23:00 UTC)
    assert shown(cliente="005007", dal=today, al=today) == ["Accesso riuscito", "Accesso non riuscito"]
    assert shown(cliente="005007", al="2020-01-01") == []
    page = staff.get("/backoffice/registro").get_data(as_text=True)
    assert '<option value="login_failed">Accesso non riuscito</option>' in page  # chosen by its words, sent as its code
    bad = staff.get("/backoffice/registro?dal=ieri")
    assert bad.status_code == 200 and "Data non valida" in bad.get_data(as_text=True)
    assert customer_user.id


@pytest.mark.parametrize("day, rome_midnight_in_utc", [
    ("2026-01-15", datetime(2026, 1, 14, 23, 0)),   # winter: Rome is UTC+1
    ("2026-07-15", datetime(2026, 7, 14, 22, 0)),   # summer: UTC+2
    ("2026-10-25", datetime(2026, 10, 24, 22, 0)),  # the 25-hour day: begins in summer time, ends in winter time
])
def test_audit_log_dates_are_days_in_rome(staff, customers, day, rome_midnight_in_utc):
    """Dal and Al take whole days of Rome: an entry of the day's first and last minute is in, the
    minute before and after are out, and each reads in Rome time."""
    mario, _firm = customers
    next_midnight = rome_midnight_in_utc + timedelta(hours=25 if day == "2026-10-25" else 24)
    for moment in (rome_midnight_in_utc - timedelta(minutes=1), rome_midnight_in_utc,
                   next_midnight - timedelta(minutes=1), next_midnight):
        AuditLog.create(at=moment, action="login", customer=mario)
    response = staff.get("/backoffice/registro", query_string={"cliente": "005007", "dal": day, "al": day})
    assert response.status_code == 200
    shown = re.findall(r"<tr><td>(\d\d/\d\d/\d{4} \d\d:\d\d)</td>", response.get_data(as_text=True))
    rome_day = date.fromisoformat(day).strftime("%d/%m/%Y")
    assert shown == [f"{rome_day} 23:59", f"{rome_day} 00:00"]  # newest first


def test_audit_log_answers_a_fragment_to_htmx(staff):
    response = staff.get("/backoffice/registro?azione=login", headers={"HX-Request": "true", "HX-Target": "audit-entries"})
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "<html" not in body and "<table>" in body


@pytest.mark.parametrize("as_htmx", [False, True])
def test_audit_log_says_a_bad_range_next_to_its_date(staff, customers, as_htmx):
    """Dal after Al: Al's error shows next to it (htmx swaps the form with the entries), and
    the list is filtered by Dal alone, as on the customer's Download."""
    mario, _firm = customers
    AuditLog.create(at=datetime(2026, 3, 2, 9, 0), action="login", customer=mario)
    AuditLog.create(at=datetime(2026, 3, 20, 9, 0), action="login_failed", customer=mario)
    url = "/backoffice/registro?cliente=005007&dal=2026-03-10&al=2026-03-01"
    headers = ({"HX-Request": "true", "HX-Target": "audit-entries", "HX-Current-URL": "http://localhost/backoffice/registro"}
               if as_htmx else {})
    response = staff.get(url, headers=headers)
    assert response.status_code == 200
    assert "HX-Request" in response.headers["Vary"]
    body = response.get_data(as_text=True)
    assert ("<html" in body) is not as_htmx
    error = re.search(r'<p class="field-error" id="err-al">([^<]*)</p>', body)
    assert error and error.group(1) == "La data finale viene prima di quella iniziale."
    assert 'id="al" name="al" type="date" value="2026-03-01" aria-describedby="err-al" aria-invalid="true"' in body
    assert re.findall(r"<td>([^<]+)</td><td class=\"wrap\">", body) == ["Accesso non riuscito"]  # since 10 March


# --- imports from the browser ---------------------------------------------------------------------

def upload(staff, *files):
    token = csrf_from(staff.get("/backoffice/importazioni"))
    return staff.post("/backoffice/importazioni", data={"csrf_token": token, "files": list(files)},
                      content_type="multipart/form-data")


def wait_for_job(job_id, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = ImportJob.get_by_id(job_id)
        if job.status not in (ImportJob.QUEUED, ImportJob.RUNNING):
            return job
        time.sleep(0.1)
    raise AssertionError("the import job did not finish")


def test_upload_a_zip_and_follow_the_import(app, staff, tmp_path, operator):
    written = write_data_set(tmp_path / "set")
    response = upload(staff, (zipped(tmp_path / "set"), "export.zip"))
    assert response.status_code == 303
    job_id = int(response.headers["Location"].rsplit("/", 1)[1])
    job = wait_for_job(job_id)
    assert job.status == ImportJob.DONE and job.progress == 1.0
    page = staff.get(f"/backoffice/importazioni/{job_id}").get_data(as_text=True)
    assert f"invoices.csv: added {written['counts']['invoices.csv']}, updated 0, unchanged 0" in page
    assert 'value="100"' in page and "hx-trigger" not in page  # finished: no more polling
    assert Customer.select().count() == len(written["customers"])
    assert Invoice.select().where(Invoice.pdf_path.is_null(False)).count() == 6
    assert job.folder.startswith("imports/")  # in the file store, which every server shares
    assert not (Path(app.config["FILE_STORE"]) / job.folder).exists()  # the uploaded files are gone once imported
    actions = [(a.action, a.user_id) for a in AuditLog.select().where(AuditLog.action.startswith("import"))]
    assert actions == [("import_uploaded", operator.id), ("import", operator.id)]


def test_the_job_page_shows_the_size_and_checksum_of_each_file_received(staff, tmp_path):
    write_data_set(tmp_path / "set", customers=1)
    archive = zipped(tmp_path / "set").getvalue()
    customers = (tmp_path / "set/customers.csv").read_bytes()
    response = upload(staff, (io.BytesIO(archive), "export.zip"), (io.BytesIO(customers), "customers.csv"))
    assert response.status_code == 303
    job = wait_for_job(int(response.headers["Location"].rsplit("/", 1)[1]))
    response = staff.get(f"/backoffice/importazioni/{job.id}")
    assert response.status_code == 200
    rows = [(unescape(name), size, sha256) for name, size, sha256 in re.findall(
        r'<tr><td class="wrap">([^<]+)</td>\s*<td class="num">([^<]+)</td><td class="wrap"><code>(\w+)</code>',
        response.get_data(as_text=True))]
    def row(name, content):
        return (name, f"{len(content):,}".replace(",", "."), hashlib.sha256(content).hexdigest())
    assert rows[0] == row("export.zip", archive)
    assert row("export/customers.csv (dallo zip export.zip)", customers) in rows
    assert rows[-1] == row("customers.csv", customers)
    assert len(rows) == 2 + len(list((tmp_path / "set").rglob("*.*")))


def test_a_refused_upload_imports_nothing_and_lists_the_problems(staff, tmp_path):
    write_data_set(tmp_path / "set")
    customers = (tmp_path / "set/customers.csv")
    customers.write_text(customers.read_text().replace(",person,", ",alien,", 1))
    files = [(open(tmp_path / "set" / name, "rb"), name) for name in ("customers.csv", "supply_points.csv")]
    response = upload(staff, *files)
    job = wait_for_job(int(response.headers["Location"].rsplit("/", 1)[1]))
    assert job.status == ImportJob.REFUSED
    assert job.result["problems"][0].startswith("customers.csv:2: kind:")
    assert Customer.select().count() == 0
    page = staff.get(f"/backoffice/importazioni/{job.id}").get_data(as_text=True)
    assert "Importazione rifiutata" in page and "customers.csv:2: kind:" in page


def test_the_job_page_is_a_polling_fragment_while_it_runs(staff, operator):
    job = ImportJob.create(started_by=operator, folder="/nonexistent", status=ImportJob.RUNNING, progress=0.42,
                           current_file="measures.csv", heartbeat_at=utcnow())
    response = staff.get(f"/backoffice/importazioni/{job.id}", headers={"HX-Request": "true", "HX-Target": "job"})
    body = response.get_data(as_text=True).strip()
    assert body.startswith('<div id="job"') and 'hx-trigger="every 1s"' in body
    assert 'value="42"' in body and "measures.csv" in body
    assert "HX-Target" in response.headers["Vary"]


@pytest.mark.parametrize("name, content, message", [
    ("evil.zip", None, "percorso non ammesso"),
    ("notes.exe", b"MZ", "tipo di file non ammesso"),
    ("broken.zip", b"PK not really", "lo zip è illeggibile"),
])
def test_unsafe_uploads_are_refused(staff, name, content, message):
    if content is None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("../../customers.csv", "customer_code\n")
        content = buffer.getvalue()
    response = upload(staff, (io.BytesIO(content), name))
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert ImportJob.select().count() == 0


def zip_with_a_corrupted_member():
    """A valid zip whose customers.csv then has a byte flipped: the archive opens, reading the
    member fails its CRC check."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("customers.csv", "customer_code,name\n005007,Mario Rossi\n")
    content = bytearray(buffer.getvalue())
    content[content.index(b"005007")] ^= 0x01
    return bytes(content)


def uploaded_files_left(app):
    imports = Path(app.config["FILE_STORE"]) / "imports"
    return [p for p in imports.rglob("*") if p.is_file()] if imports.exists() else []


@pytest.mark.parametrize("name, content, message", [
    ("corrupted.zip", zip_with_a_corrupted_member(), "customers.csv: il file nello zip è danneggiato"),
    ("not-a-zip.zip", b"customer_code\n005007\n", "lo zip è illeggibile"),
])
def test_a_damaged_zip_is_a_message_and_leaves_nothing_on_disk(app, staff, name, content, message):
    good = io.BytesIO(b"customer_code\n")  # saved before the zip is unpacked: it goes too
    response = upload(staff, (good, "supply_points.csv"), (io.BytesIO(content), name))
    assert response.status_code == 422
    error = re.search(r'<p class="field-error" id="err-files">([^<]*)</p>', response.get_data(as_text=True))
    assert error and message in unescape(error.group(1))
    assert ImportJob.select().count() == 0
    assert uploaded_files_left(app) == []


def test_a_zip_with_a_path_outside_leaves_nothing_on_disk(app, staff):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("export/customers.csv", "customer_code\n")  # extracted before the bad one is met
        archive.writestr("../x.csv", "customer_code\n")
    response = upload(staff, (io.BytesIO(buffer.getvalue()), "export.zip"))
    assert response.status_code == 422
    assert "../x.csv: percorso non ammesso nello zip" in response.get_data(as_text=True)
    assert uploaded_files_left(app) == []


def test_a_job_whose_process_died_is_marked_failed_and_the_next_runs(app, staff, tmp_path, operator):
    ImportJob.create(started_by=operator, folder="/gone", status=ImportJob.RUNNING,
                     heartbeat_at=utcnow() - timedelta(minutes=30))
    write_data_set(tmp_path / "set", customers=1)
    response = upload(staff, (zipped(tmp_path / "set"), "export.zip"))
    job = wait_for_job(int(response.headers["Location"].rsplit("/", 1)[1]))
    assert job.status == ImportJob.DONE
    dead = ImportJob.get(ImportJob.folder == "/gone")
    assert dead.status == ImportJob.FAILED and "interrotta" in dead.result["problems"][0]


def test_a_job_queued_before_the_uploads_moved_into_the_file_store_still_runs(app, staff, tmp_path, operator):
    """Its row names the old absolute folder (instance/imports/...): the queue reads it there."""
    written = write_data_set(tmp_path / "instance" / "imports" / "0123456789abcdef", customers=1)
    old = ImportJob.create(started_by=operator, folder=str(tmp_path / "instance" / "imports" / "0123456789abcdef"))
    write_data_set(tmp_path / "set", customers=1)
    response = upload(staff, (zipped(tmp_path / "set"), "export.zip"))  # starts the queue, oldest first
    assert response.status_code == 303
    wait_for_job(int(response.headers["Location"].rsplit("/", 1)[1]))
    old = ImportJob.get_by_id(old.id)
    assert old.status == ImportJob.DONE
    assert "customers.csv: added 1, updated 0, unchanged 0" in old.result["summary"]  # it ran first: oldest first
    assert Customer.get(Customer.code == written["customers"][0])
    assert not Path(old.folder).exists()


def test_two_processes_claiming_at_once_start_one_import(app, operator, monkeypatch):
    """Every process runs the queue. With two jobs queued, one process finds none running, and
    another claims meanwhile: the other waits its turn and finds the first job running, rather
    than take the first job while the one process goes on to start the second beside it."""
    first = ImportJob.create(started_by=operator, folder="/first")
    ImportJob.create(started_by=operator, folder="/second")
    checked, go_on, claims = threading.Event(), threading.Event(), {}
    check = import_jobs.running_elsewhere

    def check_then_pause(fresh):
        running = check(fresh)
        if threading.current_thread().name == "one":
            checked.set()
            go_on.wait(10)
        return running

    monkeypatch.setattr(import_jobs, "running_elsewhere", check_then_pause)

    def claim():
        with app.app_context(), db_wrapper.database.connection_context():
            claims[threading.current_thread().name] = import_jobs.claim_next()

    one, other = threading.Thread(target=claim, name="one"), threading.Thread(target=claim, name="other")
    one.start()
    assert checked.wait(10)
    other.start()
    other.join(0.5)  # without turns, the other claim takes the first job meanwhile
    go_on.set()
    one.join(10)
    other.join(10)
    assert claims["one"].id == first.id and claims["other"] is None
    assert [job.status for job in ImportJob.select().order_by(ImportJob.id)] == [ImportJob.RUNNING, ImportJob.QUEUED]


def test_customers_cannot_upload(app):
    client, _ = logged_in_customer(app)
    token = csrf_from(client.get("/", follow_redirects=True))
    response = client.post("/backoffice/importazioni", data={"csrf_token": token, "files": [(io.BytesIO(b"x"), "customers.csv")]},
                           content_type="multipart/form-data")
    assert response.status_code == 404
    assert ImportJob.select().count() == 0


# --- documents -------------------------------------------------------------------------------------

def publish(staff, content=None, name="modulo.pdf", **fields):
    token = csrf_from(staff.get("/backoffice/documenti"))
    data = dict({"title": "Modulo di voltura", "section": "modulistica", "customer_code": "", "published_on": "",
                 "period_start": "", "period_end": ""}, **fields)
    data["file"] = (io.BytesIO(content if content is not None else pdf_bytes("Modulo")), name)
    return staff.post("/backoffice/documenti", data=dict(data, csrf_token=token), content_type="multipart/form-data")


def test_publish_a_generic_document(app, staff, operator):
    response = publish(staff)
    assert response.status_code == 303
    document = Document.get()
    assert (document.section, document.customer_id, document.source_name) == ("modulistica", None, "modulo.pdf")
    stored = Path(app.config["FILE_STORE"]) / document.file
    assert stored.read_bytes() == pdf_bytes("Modulo") and document.sha256 == hashlib.sha256(stored.read_bytes()).hexdigest()
    assert list(Document.generic("modulistica")) == [document]
    assert AuditLog.get(AuditLog.action == "document_published").user_id == operator.id


def test_publish_a_report_for_a_customer(staff, customers):
    mario, _ = customers
    response = publish(staff, title="Report consumi 2026", section="report", customer_code="005007",
                       published_on="2026-07-01", period_start="2026-01-01", period_end="2026-06-30")
    assert response.status_code == 303
    document = Document.get()
    assert document.customer_id == mario.id and str(document.period_end) == "2026-06-30"
    assert list(Document.for_customer(mario)) == [document]


@pytest.mark.parametrize("fields, content, name, message", [
    ({"section": "report"}, None, "r.pdf", "Scrivi il codice del cliente: la sezione Report è per un cliente."),
    ({"section": "modulistica", "customer_code": "005007"}, None, "m.pdf", "Lascialo vuoto: la sezione Modulistica è per tutti i clienti."),
    ({"section": "personal", "customer_code": "999999"}, None, "p.pdf", "Questo cliente non esiste."),
    ({"period_start": "2026-06-30", "period_end": "2026-01-01"}, None, "m.pdf", "La fine viene prima dell&#39;inizio."),
    ({}, b"<html>not a pdf</html>", "fake.pdf", "non è un PDF valido"),
    ({}, b"MZ", "tool.exe", "tipo di file non ammesso"),
    ({"title": ""}, None, "m.pdf", "Scrivi il titolo."),
])
def test_bad_documents_are_refused_next_to_the_field(staff, customers, fields, content, name, message):
    response = publish(staff, content=content, name=name, **fields)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert Document.select().count() == 0


def test_unpublish_and_publish_again(staff, customers):
    publish(staff)
    document = Document.get()
    token = csrf_from(staff.get("/backoffice/documenti"))
    assert staff.post(f"/backoffice/documenti/{document.id}/unpublish", data={"csrf_token": token}).status_code == 303
    assert list(Document.generic("modulistica")) == []
    assert staff.post(f"/backoffice/documenti/{document.id}/publish", data={"csrf_token": token}).status_code == 303
    assert list(Document.generic("modulistica")) == [document]
    assert [a.action for a in AuditLog.select().where(AuditLog.action.startswith("document_")).order_by(AuditLog.id)] == [
        "document_published", "document_unpublished", "document_published"]


# --- operators: administrators only ----------------------------------------------------------------

@pytest.fixture
def admin(app):
    with app.app_context():
        user = accounts.create_staff("it@utility.it", OPERATOR_PASSWORD, User.ADMIN)
    client = app.test_client()
    secret = enroll(client, "it@utility.it")
    assert enter_code(client, pyotp.TOTP(secret).now()).status_code == 303
    client.user = user
    return client


def test_only_administrators_manage_operators(staff, admin):
    assert staff.get("/backoffice/operatori").status_code == 403
    assert "Operatori" not in staff.get("/backoffice/").get_data(as_text=True)
    page = admin.get("/backoffice/operatori").get_data(as_text=True)
    assert "operatore@utility.it" in page and "it@utility.it" in page


def test_an_administrator_creates_an_operator(admin):
    response = post_form(admin, "/backoffice/operatori", {"email": "Nuovo@Utility.it", "role": "operator",
                                                          "password": OPERATOR_PASSWORD})
    assert response.status_code == 303
    created = User.get(User.email == "nuovo@utility.it")
    assert created.role == User.OPERATOR and created.totp_secret is None
    again = post_form(admin, "/backoffice/operatori", {"email": "nuovo@utility.it", "role": "admin", "password": OPERATOR_PASSWORD})
    assert again.status_code == 422 and "esiste già" in again.get_data(as_text=True)
    weak = post_form(admin, "/backoffice/operatori", {"email": "x@utility.it", "role": "admin", "password": "corta"})
    assert weak.status_code == 422 and User.select().where(User.email == "x@utility.it").count() == 0
    log = admin.get("/backoffice/registro", query_string={"azione": "operator_created"})
    assert log.status_code == 200
    assert "<td>Operatore creato</td><td class=\"wrap\">Ruolo: Operatore; Utente: nuovo@utility.it</td>" in log.get_data(as_text=True)


def test_reset_second_factor_and_disable(app, staff, admin, operator):
    token = csrf_from(admin.get("/backoffice/operatori"))
    assert admin.post(f"/backoffice/operatori/{operator.id}/reset_second_factor", data={"csrf_token": token}).status_code == 303
    assert User.get_by_id(operator.id).totp_secret is None
    assert sent_to_login(staff.get("/backoffice/"))  # the sessions opened with the old one ended
    fresh = app.test_client()
    enroll(fresh)  # the next login enrols again
    assert User.get_by_id(operator.id).totp_pending_secret is not None
    assert admin.post(f"/backoffice/operatori/{operator.id}/reset_second_factor", data={"csrf_token": token}).status_code == 303
    assert User.get_by_id(operator.id).totp_pending_secret is None  # an enrolment under way goes too
    assert admin.post(f"/backoffice/operatori/{operator.id}/disable", data={"csrf_token": token}).status_code == 303
    assert login(app.test_client(), "operatore@utility.it", OPERATOR_PASSWORD).status_code == 403
    assert admin.post(f"/backoffice/operatori/{admin.user.id}/disable", data={"csrf_token": token}).status_code == 409
    actions = [a.action for a in AuditLog.select().where(AuditLog.action.in_(
        ["operator_reset_second_factor", "operator_disable"])).order_by(AuditLog.id)]
    assert actions == ["operator_reset_second_factor", "operator_reset_second_factor", "operator_disable"]


def test_opening_a_customer_page_is_audited(staff, customers, operator):
    staff.get("/backoffice/clienti/005007")
    entry = AuditLog.get(AuditLog.action == "operator_viewed_customer")
    assert entry.user_id == operator.id and entry.customer.code == "005007"


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_search_pages_skip_nobody(staff, htmx):
    """The next page is the search posted again with its page number (buttons of a form that
    holds the text), not a link with the text in it."""
    for n in range(55):
        make_customer(code=f"{300000 + n:06d}", name=f"BIANCHI {n:02d}")
    first = search(staff, "BIANCHI", htmx=htmx)
    assert first.status_code == 200
    body = first.get_data(as_text=True)
    assert re.search(r'<input type="hidden" name="q" value="BIANCHI">', body)
    assert re.search(r'<button type="submit" name="pagina" value="2"[^>]*>Successivi</button>', body)
    assert "Precedenti" not in body and all("BIANCHI" not in url for url in urls_of(first))
    second = search(staff, "BIANCHI", htmx=htmx, pagina="2")
    assert second.status_code == 200
    assert re.search(r'<button type="submit" name="pagina" value="1"[^>]*>Precedenti</button>', second.get_data(as_text=True))
    assert "Successivi" not in second.get_data(as_text=True)
    assert len(found(first)) == 50 and len(found(second)) == 5 and not set(found(first)) & set(found(second))


# --- labels, never stored codes ---------------------------------------------------------------------

ROOT = Path(__file__).parent.parent


def audit_calls():
    """Every audit.record() call in the app's code: (where, action, detail keys). An action is a
    string, or a regex for an f-string (operator_{action}_user)."""
    calls = []
    for path in sorted([*ROOT.glob("*.py"), *ROOT.glob("views/**/*.py")]):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "record"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "audit"):
                continue
            first = node.args[0]
            choices = [first.body, first.orelse] if isinstance(first, ast.IfExp) else [first]
            keys = {k.arg for k in node.keywords} - {"user", "customer"}
            for choice in choices:
                if isinstance(choice, ast.JoinedStr):
                    action = re.compile("".join(re.escape(part.value) if isinstance(part, ast.Constant) else r"\w+"
                                                for part in choice.values) + "$")
                else:
                    action = choice.value
                calls.append((f"{path.name}:{node.lineno}", action, keys))
    return calls


def test_every_audit_action_and_detail_has_a_label():
    calls = audit_calls()
    assert len(calls) > 30  # the scan finds the calls
    actions = labels.LABELS["audit_action"]
    for where, action, keys in calls:
        if isinstance(action, str):
            assert action in actions, f"{where}: no label for the action {action!r}"
        else:
            assert any(action.match(code) for code in actions), f"{where}: no label matches {action.pattern}"
        assert keys <= set(labels.LABELS["audit_detail"]), f"{where}: no label for {keys - set(labels.LABELS['audit_detail'])}"
    for code in actions:  # and no label for an action nobody writes
        assert any(action == code if isinstance(action, str) else action.match(code) for _, action, _ in calls), code


MODEL_CODES = {  # the codes each model stores, as the models list them
    "customer_kind": Customer.KINDS,
    "commodity": SupplyPoint.COMMODITIES,
    "role": User.CUSTOMER_ROLES + User.STAFF_ROLES,
    "consent": Consent.KINDS,
    "delegate_rights": User.DELEGATE_RIGHTS,
    "invoice_status": Invoice.STATUSES,
    "reading_source": Reading.SOURCES,
    "reading_status": (Reading.PENDING, Reading.VALIDATED, Reading.REJECTED),
    "register": Reading.REGISTERS,
    "ticket_status": Ticket.STATUSES,
    "ticket_category": Ticket.CATEGORIES,
    "import_status": (ImportJob.QUEUED, ImportJob.RUNNING, ImportJob.DONE, ImportJob.REFUSED, ImportJob.FAILED),
    "document_section": Document.GENERIC_SECTIONS + Document.CUSTOMER_SECTIONS,
}


@pytest.mark.parametrize("group", MODEL_CODES)
def test_every_code_of_the_models_has_a_label(group):
    assert set(MODEL_CODES[group]) == set(labels.LABELS[group])


def visible_words(html):
    """The words a person reads on a page: the text between tags (attributes, hence links
    and option values, are not read)."""
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.DOTALL)
    return set(re.findall(r"\w+", unescape(re.sub(r"<[^>]*>", " ", text))))


def vocabulary(app, language):
    """The words of the interface's own texts in a language (the catalogue and the labels): a
    code that is one of them ("gas", or "paid" in English) cannot be told from the text."""
    catalogue = read_po((ROOT / "translations/en/LC_MESSAGES/messages.po").open("rb"))
    texts = []
    for message in catalogue:
        text = message.id if language == "it" else message.string
        texts.extend([text] if isinstance(text, str) else text)
    with app.test_request_context(), force_locale(language):
        texts.extend(str(words) for group in labels.LABELS.values() for words in group.values())
    return set(re.findall(r"\w+", re.sub(r"%\(\w+\)\w", " ", " ".join(texts))))  # not the %(total)s placeholders


@pytest.fixture
def everything(app, operator):
    """Data that puts every stored code on some back-office page."""
    mario = make_customer(code="005007", name="ROSSI MARIO")
    make_customer(code="005100", name="ROSSI FERRAMENTA S.R.L.", kind="company", vat_number="02123450390")
    make_customer(code="005200", name="COMUNE DI ROSSI", kind="public_body")
    electricity = make_supply_point(mario)
    gas = make_supply_point(mario, commodity="gas", status="ceased")
    for status in Invoice.STATUSES:
        make_invoice(mario, electricity, status=status)
    sources_and_states = zip(Reading.SOURCES, MODEL_CODES["reading_status"])
    for n, (source, status) in enumerate([*sources_and_states, *zip(Reading.SOURCES[::-1], MODEL_CODES["reading_status"])]):
        point = gas if n == 0 else electricity
        Reading.create(supply_point=point, date=date(2026, 1, 1) + timedelta(days=n), value=1000 + n, source=source,
                       status=status, register="total" if point is gas else Reading.REGISTERS[n % 3])
    for n, status in enumerate(MODEL_CODES["ticket_status"]):
        Ticket.create(customer=mario, subject=f"Richiesta {n}", status=status)
    for n, category in enumerate(MODEL_CODES["ticket_category"]):
        Ticket.create(customer=mario, subject=f"Domanda {n}", category=category)
    CannedReply.create(title="Lettura stimata", body="Gentile cliente, ...")
    owner = make_user(mario, username="mario.rossi")
    delegate = make_user(mario, role=User.DELEGATE, delegate_rights=User.READ, invited_by=owner)
    make_user(mario, role=User.DELEGATE, delegate_rights=User.FULL, invited_by=owner)
    for n, kind in enumerate(Consent.KINDS):
        Consent.create(user=owner, kind=kind, granted=n % 2 == 0, text_version="2026-11")
    for status in MODEL_CODES["import_status"]:
        ImportJob.create(started_by=operator, folder="/gone", status=status, files='["customers.csv"]',
                         report='{"summary": ["customers.csv: 1"], "problems": []}')
    for n, section in enumerate(MODEL_CODES["document_section"]):
        Document.create(file=f"{n}.pdf", title=f"Documento {n}", section=section, published_on=date(2026, 3, 1),
                        customer=mario if section in Document.CUSTOMER_SECTIONS else None)
    details = {"identifier": "00****07", "customer_code": "005007", "notify_invoices": False, "target_user": delegate.id,
               "role": User.OPERATOR, "job": 1, "files": ["customers.csv"], "summary": ["customers.csv: 1"],
               "problems": 0, "document": 1, "section": "personal", "title": "Report", "rows": 3, "since": "2026-01-01",
               "output": "letture.csv", "ticket": 1, "ticket_status": "waiting_customer",
               "ticket_category": "fault", "assignee": "anna@utility.it", "attachments": 2, "canned_reply": 1,
               "point": "PR002874", "date": "2026-11-30", "values": ["F1 1600.000"], "reason": "Foto illeggibile",
               "notify_readings": True, "server": "web-1 pid 4242",
               "rights": User.FULL, "granted": ["marketing"], "withdrawn": ["profiling"]}
    for action in labels.LABELS["audit_action"]:
        AuditLog.create(action=action, user=operator, customer=mario, detail=json.dumps(details))
    for field in labels.LABELS["contact_field"]:  # the contact data's changes name their field
        AuditLog.create(action="contact_changed", customer=mario, detail=json.dumps(
            {"field": field, "old": "0544 401234", "new": "+390544999999", "portal": "+390544999999", "billing": "0544 401234"}))
    return mario


def test_the_back_office_shows_labels_not_stored_codes(app, admin, operator, everything):
    """Every page of the back office, in both languages: no stored code is shown as it is
    stored (in an option's value or a link it is not read, and stays); the labels are there."""
    ids = {"code": everything.code, "job_id": ImportJob.select().first().id, "ticket_id": Ticket.select().first().id,
           "reply_id": CannedReply.select().first().id}
    pages = []
    for method, _url, endpoint in BACKOFFICE_ROUTES:
        # Files, and the address of a refused reply or note (a redirect to the ticket): not pages.
        if method == "GET" and endpoint not in ("backoffice.attachment", "backoffice.reading_photo",
                                                "backoffice.ticket_form_address"):
            arguments = app.url_map._rules_by_endpoint[endpoint][0].arguments
            assert arguments <= set(ids), f"{endpoint}: which {arguments - set(ids)} to show?"
            with app.test_request_context():
                pages.append(url_for(endpoint, **{name: ids[name] for name in arguments}))
    codes = {code for group in labels.LABELS.values() for code in group}
    codes |= {code for group in MODEL_CODES.values() for code in group}
    calls = audit_calls()
    codes |= {action for _, action, _ in calls if isinstance(action, str)} | {key for _, _, keys in calls for key in keys}
    for language in ("it", "en"):
        assert post_form(admin, "/lingua", {"lang": language}, page="/backoffice/").status_code == 303
        words = vocabulary(app, language)
        seen = set()
        for url in [*pages, "search"]:
            response = search(admin, "ROSSI") if url == "search" else admin.get(url)  # the search's results too
            assert response.status_code == 200, url
            shown = visible_words(response.get_data(as_text=True))
            raw = sorted(code for code in codes - words if code in shown)
            assert raw == [], f"{language} {url}: codes shown as stored: {raw}"
            seen |= shown
        with app.test_request_context(), force_locale(language):
            expected = {words for group in labels.LABELS.values() for words in map(str, group.values())}
        missing = sorted(text for text in expected if not set(re.findall(r"\w+", text)) <= seen)
        assert missing == [], f"{language}: labels no page showed: {missing}"


@pytest.mark.parametrize("old, new", [
    ("/backoffice/registro?user=anna%40utility.it&customer=005007&action=login&since=2026-03-01&until=2026-03-31&page=3",
     "/backoffice/registro?utente=anna@utility.it&cliente=005007&azione=login&dal=2026-03-01&al=2026-03-31&pagina=3"),
])
def test_links_with_the_old_english_arguments_still_work(staff, old, new):
    """The back office's URL arguments are Italian now; a bookmark with the old names is sent
    to the same page with the new ones, for good (301)."""
    response = staff.get(old)
    assert response.status_code == 301 and response.headers["Location"] == new
    assert staff.get(new).status_code == 200


def test_huge_page_numbers_are_the_first_page_not_a_500(staff):
    """SQLite cannot bind a 20-digit OFFSET: a page number past its range is ignored."""
    for url in ("/backoffice/registro?pagina=99999999999999999999", "/backoffice/importazioni/99999999999999999999"):
        assert staff.get(url).status_code == (404 if "importazioni" in url else 200), url
    make_customer(name="ROSSI ANNA")
    for page in ("99999999999999999999", "0", "due"):
        response = search(staff, "ROSSI", pagina=page)
        assert response.status_code == 200 and len(found(response)) == 1, page
