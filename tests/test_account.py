"""Cambio Password: a dialog with htmx, a page without; it ends the other sessions. Staff have the
same in the back office."""

import re
import time

import pyotp
import pytest

import accounts
from models import AuditLog, UserSession
from tests.factories import PASSWORD
from tests.helpers import csrf_from, deliver, htmx_headers, login, post_form, sent_to_login

NEW_PASSWORD = "Nuova-Chiave-2027"
OPERATOR_PASSWORD = "Sportello-Staff-2026!"


def change(client, current, new, repeat=None, htmx=True):
    token = csrf_from(client.get("/", follow_redirects=True))
    return client.post(
        "/cambio-password",
        data={"current_password": current, "password": new, "password_repeat": repeat or new, "csrf_token": token},
        headers=htmx_headers("dialog-slot") if htmx else {},
    )


def test_htmx_gets_a_modal_dialog(logged_in):
    response = logged_in.get("/cambio-password", headers=htmx_headers("dialog-slot"))
    body = response.get_data(as_text=True).strip()
    assert body.startswith("<dialog") and "data-modal" in body
    assert "Annulla" in body and "Conferma" in body and "Password attuale" in body
    assert "<html" not in body
    assert "HX-Target" in response.headers["Vary"]


def test_without_javascript_it_is_a_page(logged_in):
    page = logged_in.get("/cambio-password", follow_redirects=True).get_data(as_text=True)
    assert "<html" in page and "<dialog" not in page
    assert 'name="current_password"' in page


def test_wrong_current_password_is_said_in_the_dialog(logged_in):
    response = change(logged_in, "Sbagliata-2026!", NEW_PASSWORD)
    body = response.get_data(as_text=True)
    assert response.status_code == 422  # swapped by htmx (configured in the layout)
    assert body.strip().startswith("<dialog")
    assert "La password attuale non è giusta." in body
    assert AuditLog.select().where(AuditLog.action == "password_change_failed").count() == 1


def test_the_policy_applies(logged_in):
    response = change(logged_in, PASSWORD, "semplice")
    assert response.status_code == 422
    assert "La password deve contenere anche" in response.get_data(as_text=True)


def test_change_rotates_this_session_and_ends_the_others(app, logged_in, smtp):
    other_device = app.test_client()
    login(other_device, "005007", PASSWORD)
    old_cookie = logged_in.get_cookie("sportello_session").value

    response = change(logged_in, PASSWORD, NEW_PASSWORD)
    assert response.status_code == 200
    assert "Password cambiata" in response.get_data(as_text=True)

    assert "Benvenuto" in logged_in.get("/", follow_redirects=True).get_data(as_text=True)  # carries on
    assert sent_to_login(other_device.get("/"))
    replay = app.test_client()
    replay.set_cookie("sportello_session", old_cookie)
    assert sent_to_login(replay.get("/"))
    assert UserSession.select().count() == 1

    assert login(app.test_client(), "005007", NEW_PASSWORD).status_code == 303
    deliver(app)
    assert [m["Subject"] for m in smtp.messages] == ["La tua password è cambiata"]


def test_plain_post_redirects_home(logged_in):
    response = change(logged_in, PASSWORD, NEW_PASSWORD, htmx=False)
    assert response.status_code == 303 and response.headers["Location"] == "/"


def test_a_long_passphrase_without_digits_or_capitals_is_a_good_password(logged_in):
    """ASVS 5.0: no composition rule for a passphrase (16 characters or more), as the hint says."""
    passphrase = "la bicicletta azzurra della nonna sta in cantina dal millenovecentoottanta"[:64]
    assert len(passphrase) == 64 and passphrase.islower()
    hint = logged_in.get("/cambio-password?sp=PR002874").get_data(as_text=True)
    assert "oppure una frase di almeno 16 caratteri, senza altre regole" in hint
    response = change(logged_in, PASSWORD, passphrase)
    assert response.status_code == 200 and "Password cambiata" in response.get_data(as_text=True)


# --- staff: the same dialog in the back office ---------------------------------------------------

STAFF_URL = "/backoffice/cambio-password"


@pytest.fixture
def operator_client(app):
    """An operator logged in (password and second factor); `.secret` is the authenticator's."""
    with app.app_context():
        user = accounts.create_staff("operatore@utility.it", OPERATOR_PASSWORD)
    client = app.test_client()
    assert login(client, "operatore@utility.it", OPERATOR_PASSWORD).headers["Location"] == "/login/codice"
    enrolment = client.get("/login/codice")
    assert enrolment.status_code == 200
    client.secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', enrolment.get_data(as_text=True)).group(1)
    assert post_form(client, "/login/codice", {"code": pyotp.TOTP(client.secret).now()}).status_code == 303
    client.user = user
    return client


def change_staff(client, current, new, repeat=None, htmx=True):
    token = csrf_from(client.get("/backoffice/"))
    return client.post(
        STAFF_URL,
        data={"current_password": current, "password": new, "password_repeat": repeat or new, "csrf_token": token},
        headers=htmx_headers("dialog-slot") if htmx else {},
    )


def test_staff_have_the_dialog_in_the_back_office_menu(operator_client):
    home = operator_client.get("/backoffice/")
    assert home.status_code == 200
    assert f'<a href="{STAFF_URL}" hx-get="{STAFF_URL}" hx-target="#dialog-slot">Cambio Password</a>' in home.get_data(
        as_text=True)  # a dialog, as the customers' menu opens it
    response = operator_client.get(STAFF_URL, headers=htmx_headers("dialog-slot"))
    assert response.status_code == 200
    body = response.get_data(as_text=True).strip()
    assert body.startswith("<dialog") and "data-modal" in body and "<html" not in body
    assert f'hx-post="{STAFF_URL}"' in body and "Password attuale" in body and "Conferma" in body
    page = operator_client.get(STAFF_URL)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "<html" in text and "<dialog" not in text and 'name="current_password"' in text
    assert re.search(rf'<a href="{STAFF_URL}" aria-current="page"[^>]*>Cambio Password</a>', text)
    assert "Area operatori" in text
    assert 'href="/backoffice/">Annulla</a>' in text


def test_staff_wrong_current_password_and_policy(operator_client):
    wrong = change_staff(operator_client, "Sbagliata-2026!", NEW_PASSWORD)
    assert wrong.status_code == 422
    assert wrong.get_data(as_text=True).strip().startswith("<dialog")
    assert "La password attuale non è giusta." in wrong.get_data(as_text=True)
    entry = AuditLog.get(AuditLog.action == "password_change_failed")
    assert entry.user_id == operator_client.user.id
    weak = change_staff(operator_client, OPERATOR_PASSWORD, "semplice", htmx=False)
    assert weak.status_code == 422
    assert "<html" in weak.get_data(as_text=True) and "La password deve contenere anche" in weak.get_data(as_text=True)
    mismatch = change_staff(operator_client, OPERATOR_PASSWORD, NEW_PASSWORD, repeat=NEW_PASSWORD + "x")
    assert mismatch.status_code == 422


def test_staff_change_ends_the_other_sessions_and_mails(app, operator_client, smtp):
    other_device = app.test_client()
    next_code = pyotp.TOTP(operator_client.secret).at((int(time.time()) // 30 + 1) * 30)
    assert login(other_device, "operatore@utility.it", OPERATOR_PASSWORD).status_code == 303
    assert post_form(other_device, "/login/codice", {"code": next_code}).status_code == 303
    assert other_device.get("/backoffice/").status_code == 200

    response = change_staff(operator_client, OPERATOR_PASSWORD, NEW_PASSWORD)
    assert response.status_code == 200 and "Password cambiata" in response.get_data(as_text=True)
    assert operator_client.get("/backoffice/").status_code == 200  # carries on
    assert sent_to_login(other_device.get("/backoffice/"))
    assert UserSession.select().count() == 1
    assert AuditLog.select().where(AuditLog.action == "password_changed").get().user_id == operator_client.user.id

    assert login(app.test_client(), "operatore@utility.it", OPERATOR_PASSWORD).status_code == 422
    again = login(app.test_client(), "operatore@utility.it", NEW_PASSWORD)
    assert again.status_code == 303 and again.headers["Location"] == "/login/codice"  # the code comes next
    deliver(app)
    assert [m["Subject"] for m in smtp.messages] == ["La tua password è cambiata"]
    assert smtp.messages[0]["To"] == "operatore@utility.it"


def test_staff_plain_post_goes_back_to_the_back_office(operator_client):
    response = change_staff(operator_client, OPERATOR_PASSWORD, NEW_PASSWORD, htmx=False)
    assert response.status_code == 303 and response.headers["Location"] == "/backoffice/"
    page = operator_client.get("/backoffice/")
    assert page.status_code == 200 and "Password cambiata." in page.get_data(as_text=True)


def test_staff_changes_are_rate_limited(operator_client):
    for _ in range(10):
        assert change_staff(operator_client, "Sbagliata-2026!", NEW_PASSWORD).status_code == 422
    response = change_staff(operator_client, OPERATOR_PASSWORD, NEW_PASSWORD)
    assert response.status_code == 429 and response.get_data(as_text=True).strip().startswith("<dialog")
    assert login(operator_client.application.test_client(), "operatore@utility.it", NEW_PASSWORD).status_code == 422


def test_customers_do_not_reach_the_staff_page(logged_in):
    assert logged_in.get(STAFF_URL).status_code == 404
