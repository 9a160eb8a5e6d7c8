"""Cambio Password: a dialog with htmx, a page without; it ends the other sessions."""

from models import AuditLog, UserSession
from tests.factories import PASSWORD
from tests.helpers import csrf_from, deliver, htmx_headers, login, sent_to_login

NEW_PASSWORD = "Nuova-Chiave-2027"


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
