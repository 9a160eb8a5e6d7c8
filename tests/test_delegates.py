"""Delegati: the owner invites a person by email (read-only or full rights), the invitation's
link lets them choose their own login, the owner sees and revokes them. A read-only delegate
is refused every write of the customer's records; a delegate never invites others."""
import re

import pyotp
import pytest

import accounts
from models import ApiToken, AuditLog, Consent, EmailToken, User, UserSession, token_digest, utcnow
from tests.factories import make_customer, make_supply_point, make_user
from tests.helpers import (
    csrf_from,
    customer_area_blueprints,
    deliver,
    htmx_headers,
    link_in,
    login,
    post_form,
    route_urls,
    sent_to_login,
    text_of,
)

DELEGATE_PASSWORD = "Delegata-Sicura-2026"
PAGE = "/delegati?sp=PR002874"


def invite(client, email="studio@example.it", rights="read", headers=None):
    return post_form(client, "/delegati", {"email": email, "rights": rights}, page=PAGE, headers=headers)


def make_delegate(owner, rights=User.READ, username="studio.bianchi", **overrides):
    """An accepted delegate of the owner's customer, as the invitation leaves it."""
    values = dict(role=User.DELEGATE, delegate_rights=rights, invited_by=owner, username=username,
                  first_name="Anna", last_name="Bianchi", email=f"{username}@example.it")
    values.update(overrides)
    return make_user(owner.customer, password=DELEGATE_PASSWORD, **values)


def logged_in_as(app, user_name, password=DELEGATE_PASSWORD):
    client = app.test_client()
    assert login(client, user_name, password).status_code == 303
    return client


def accept_form(client, link, **overrides):
    data = {"first_name": "Anna", "last_name": "Bianchi", "username": "studio.bianchi", "password": DELEGATE_PASSWORD,
            "password_repeat": DELEGATE_PASSWORD, "consent_privacy": "y", "consent_marketing": "no",
            "consent_third_parties": "no", "consent_profiling": "yes"}
    data.update(overrides)
    return post_form(client, link, data)


# --- inviting --------------------------------------------------------------------------------------

def test_the_owner_invites_by_email_and_the_mail_arrives_through_smtp(app, logged_in, owner, smtp):
    page = logged_in.get(PAGE)
    assert page.status_code == 200
    assert "Nessuno accede per tuo conto." in page.get_data(as_text=True)
    response = invite(logged_in, email="  Studio@Example.IT ")
    assert response.status_code == 303 and response.headers["Location"] == PAGE
    delegate = User.get(User.role == User.DELEGATE)
    assert (delegate.email, delegate.delegate_rights, delegate.invited_by_id, delegate.customer_id) == (
        "studio@example.it", "read", owner.id, owner.customer_id)
    assert delegate.confirmed_at is None and not accounts.check_password(delegate, "")
    assert AuditLog.get(AuditLog.action == "delegate_invited").user_id == owner.id

    assert deliver(app) == 1
    (mail,) = smtp.messages
    assert mail.envelope_to == ["studio@example.it"]
    assert "ROSSI MARIO" in mail["Subject"]
    assert "in sola lettura" in text_of(mail) and "005007" in text_of(mail)
    assert link_in(mail, "/invito/")

    listed = logged_in.get(PAGE).get_data(as_text=True)
    assert "studio@example.it" in listed and "in attesa" in listed and "Annulla l'invito" in listed


def test_with_htmx_the_list_and_form_come_back_as_a_fragment(app, logged_in, smtp):
    response = invite(logged_in, rights="full", headers=htmx_headers("delegates"))
    body = response.get_data(as_text=True)
    assert response.status_code == 201
    assert "<html" not in body and "Invito inviato a studio@example.it." in body
    assert "permessi completi" in body
    assert "HX-Target" in response.headers["Vary"]
    assert User.get(User.role == User.DELEGATE).delegate_rights == User.FULL


@pytest.mark.parametrize("email, rights, message", [
    ("", "read", "Scrivi l&#39;indirizzo email della persona da invitare."),
    ("non-una-email", "read", "Questo indirizzo email non è valido."),
    ("studio@example.it", "admin", "Scegli i permessi."),
    ("x" * 250 + "@example.it", "read", "Al massimo 254 caratteri."),
])
@pytest.mark.parametrize("htmx", [False, True])
def test_a_bad_invitation_is_said_next_to_the_field_and_keeps_what_was_typed(logged_in, email, rights, message, htmx):
    response = invite(logged_in, email=email, rights=rights, headers=htmx_headers("delegates") if htmx else None)
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert message in body
    if email:
        assert f'value="{email}"' in body
    assert ("<html" in body) != htmx
    assert not User.select().where(User.role == User.DELEGATE).exists()


def test_the_same_address_twice_invites_once(app, logged_in, smtp):
    """A double click: the second answer says so next to the field, one mail goes."""
    assert invite(logged_in).status_code == 303
    again = invite(logged_in, email="STUDIO@example.it")
    assert again.status_code == 422
    assert "già tra i tuoi delegati" in again.get_data(as_text=True)
    assert User.select().where(User.role == User.DELEGATE).count() == 1
    assert deliver(app) == 1


def test_invitations_are_limited_per_customer_and_rate_limited(app, logged_in, owner):
    for n in range(User.DELEGATE_LIMIT):
        make_delegate(owner, username=f"delegato{n}")
    response = invite(logged_in)
    assert response.status_code == 422 and "Hai già 10 delegati" in response.get_data(as_text=True)
    for _ in range(9):  # ten counted: the limit is 10 an hour
        invite(logged_in)
    response = invite(logged_in)
    assert response.status_code == 429 and "Troppi tentativi" in response.get_data(as_text=True)


def test_the_invitation_needs_a_csrf_token(logged_in):
    response = logged_in.post("/delegati", data={"email": "studio@example.it", "rights": "read"})
    assert response.status_code == 400
    assert not User.select().where(User.role == User.DELEGATE).exists()


# --- accepting -------------------------------------------------------------------------------------

def invitation_link(app, logged_in, smtp, **kwargs):
    assert invite(logged_in, **kwargs).status_code == 303
    deliver(app)
    return link_in(smtp.messages[-1], "/invito/")


def test_the_invited_person_chooses_a_login_and_logs_in_with_the_username(app, logged_in, owner, smtp):
    link = invitation_link(app, logged_in, smtp)
    visitor = app.test_client()
    form = visitor.get(link)
    page = form.get_data(as_text=True)
    assert form.status_code == 200
    assert form.headers["Referrer-Policy"] == "no-referrer"  # the token is in the address
    assert "ROSSI MARIO" in page and "in sola lettura" in page and "studio@example.it" in page

    response = accept_form(visitor, link)
    assert response.status_code == 303 and response.headers["Location"] == "/login"
    delegate = User.get(User.role == User.DELEGATE)
    assert (delegate.username, delegate.first_name, delegate.confirmed_at is not None) == ("studio.bianchi", "Anna", True)
    latest = Consent.latest_by_user([delegate])[delegate.id]
    assert {kind: c.granted for kind, c in latest.items()} == {
        "privacy": True, "marketing": False, "third_parties": False, "profiling": True}
    assert AuditLog.get(AuditLog.action == "delegate_invitation_accepted").user_id == delegate.id
    login_page = visitor.get("/login").get_data(as_text=True)
    assert "ora accedi con lo username studio.bianchi" in login_page

    # The link works once; the delegate logs in by username, never by the customer code.
    assert accept_form(app.test_client(), link).status_code == 410
    assert login(visitor, "studio.bianchi", DELEGATE_PASSWORD).status_code == 303
    home = visitor.get("/", follow_redirects=True)
    assert home.status_code == 200 and "Benvenuto Anna Bianchi" in home.get_data(as_text=True)
    assert login(app.test_client(), "005007", DELEGATE_PASSWORD).status_code == 422


@pytest.mark.parametrize("overrides, message", [
    ({"username": ""}, "Scegli uno username."),
    ({"username": "123456"}, "sembra un codice cliente"),
    ({"username": "mario.rossi"}, "Questo username è già in uso"),
    ({"password_repeat": "Altra-Password-2026"}, "Le due password non coincidono."),
    ({"password": "semplice", "password_repeat": "semplice"}, "La password deve contenere anche"),
    # The length is said apart from what the password must contain (not "contenere anche almeno").
    ({"password": "corta", "password_repeat": "corta"},
     "La password deve avere almeno 8 caratteri e contenere anche un numero, una maiuscola e un carattere speciale."),
    ({"password": "Corta1!", "password_repeat": "Corta1!"}, "La password deve avere almeno 8 caratteri.</p>"),
    ({"consent_privacy": ""}, "Senza questo consenso non possiamo attivare l&#39;accesso."),
    ({"first_name": ""}, "Scrivi il nome."),
])
def test_a_bad_answer_to_the_invitation_is_said_next_to_the_field(app, logged_in, owner, smtp, overrides, message):
    link = invitation_link(app, logged_in, smtp)
    visitor = app.test_client()
    response = accept_form(visitor, link, **overrides)
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert message in body
    assert 'value="Bianchi"' in body  # what was typed stays
    assert User.get(User.role == User.DELEGATE).confirmed_at is None
    assert accept_form(visitor, link).status_code == 303  # the link still works


def test_an_unknown_expired_or_revoked_invitation_is_gone(app, logged_in, smtp):
    assert app.test_client().get("/invito/not-a-token").status_code == 410
    link = invitation_link(app, logged_in, smtp)
    EmailToken.update(expires_at=utcnow()).execute()
    expired = app.test_client().get(link)
    assert expired.status_code == 410 and "Questo invito non è più valido" in expired.get_data(as_text=True)
    link = invitation_link(app, logged_in, smtp, email="altro@example.it")
    delegate = User.get(User.email == "altro@example.it")
    assert post_form(logged_in, "/delegati/revoca", {"delegate": delegate.id}, page=PAGE).status_code == 303
    assert app.test_client().get(link).status_code == 410


# --- seeing the customer, and revoking -----------------------------------------------------------------

def test_a_delegate_sees_the_customer_and_a_revoked_one_does_not(app, logged_in, owner, smtp):
    delegate = make_delegate(owner)
    delegates_client = logged_in_as(app, "studio.bianchi")
    invoices = delegates_client.get("/fatture", follow_redirects=True)
    assert invoices.status_code == 200 and "PR002874" in invoices.get_data(as_text=True)
    assert "studio.bianchi@example.it" in logged_in.get(PAGE).get_data(as_text=True)
    ApiToken.create(user=delegate, name="Foglio di calcolo", token_hash=token_digest("spt_secret"))

    response = post_form(logged_in, "/delegati/revoca", {"delegate": delegate.id}, page=PAGE)
    assert response.status_code == 303
    assert "Accesso di studio.bianchi@example.it revocato." in logged_in.get(PAGE).get_data(as_text=True)
    delegate = User.get_by_id(delegate.id)
    assert delegate.disabled and delegate.revoked_at is not None
    assert not UserSession.select().where(UserSession.user == delegate).exists()
    assert ApiToken.get(ApiToken.user == delegate).revoked_at is not None
    assert AuditLog.get(AuditLog.action == "delegate_revoked").user_id == owner.id

    assert sent_to_login(delegates_client.get("/fatture?sp=PR002874"))  # at once, mid-session
    refused = login(app.test_client(), "studio.bianchi", DELEGATE_PASSWORD)
    assert refused.status_code == 403 and "disattivato" in refused.get_data(as_text=True)
    assert "studio.bianchi@example.it" not in logged_in.get(PAGE).get_data(as_text=True)
    assert deliver(app) == 1
    assert smtp.messages[-1].envelope_to == ["studio.bianchi@example.it"]
    assert "ha revocato il tuo accesso" in text_of(smtp.messages[-1])


def test_revoking_with_htmx_answers_the_list(logged_in, owner):
    delegate = make_delegate(owner)
    page = logged_in.get(PAGE)
    assert page.status_code == 200
    response = logged_in.post("/delegati/revoca", data={"delegate": delegate.id, "csrf_token": csrf_from(page)},
                              headers={**htmx_headers("delegates"), "HX-Current-URL": "http://localhost" + PAGE})
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "<html" not in body and "Nessuno accede per tuo conto." in body
    # The same words as the plain request's flash after its redirect.
    assert '<p class="flash flash-success" role="status">Accesso di studio.bianchi@example.it revocato.</p>' in body
    assert "HX-Target" in response.headers["Vary"]
    assert User.get_by_id(delegate.id).revoked_at is not None


def test_only_the_customers_own_delegate_can_be_revoked(app, logged_in, owner):
    stranger = make_customer(code="009999")
    make_supply_point(stranger)
    strangers_delegate = make_delegate(make_user(stranger), username="altro.studio")
    for delegate_id in (strangers_delegate.id, owner.id, 987654, "x"):
        response = post_form(logged_in, "/delegati/revoca", {"delegate": delegate_id}, page=PAGE)
        assert response.status_code == 404, delegate_id
    assert not User.get_by_id(strangers_delegate.id).disabled
    mine = make_delegate(owner)
    assert post_form(logged_in, "/delegati/revoca", {"delegate": mine.id}, page=PAGE).status_code == 303
    assert post_form(logged_in, "/delegati/revoca", {"delegate": mine.id}, page=PAGE).status_code == 404  # twice


@pytest.mark.parametrize("rights", [User.READ, User.FULL])
def test_a_delegate_cannot_invite_nor_see_the_delegates(app, owner, rights):
    make_delegate(owner, rights=rights)
    client = logged_in_as(app, "studio.bianchi")
    page = client.get(PAGE)
    assert page.status_code == 403
    assert "Solo il titolare del contratto" in page.get_data(as_text=True)
    token = csrf_from(client.get("/fatture", follow_redirects=True))
    response = client.post("/delegati", data={"email": "terzo@example.it", "rights": "full", "csrf_token": token})
    assert response.status_code == 403
    assert User.select().where(User.role == User.DELEGATE).count() == 1


# --- a read-only delegate writes nothing of the customer's ------------------------------------------------

# What a delegate may still send: their own login's (password, mail preferences, API keys,
# consents, closing their login) and inline checks that change nothing.
OWN_LOGIN_WRITES = {
    "account.change_password", "account.customer_data", "account.create_api_token", "account.revoke_api_token",
    "privacy.change_consents", "privacy.close_account", "readings.reading_reminder",
    "readings.check_self_reading", "account.validate_contact",
}
CUSTOMER_WRITES = [(url, endpoint) for method, url, endpoint in route_urls(*customer_area_blueprints())
                   if method == "POST" and endpoint not in OWN_LOGIN_WRITES]


def test_the_customer_writes_are_known():
    """The writes below exist today; a new one is tested by the next test without a word here."""
    assert {"delegates.invite_delegate", "delegates.revoke_delegate"} <= {endpoint for _, endpoint in CUSTOMER_WRITES}


@pytest.mark.parametrize("url, endpoint", CUSTOMER_WRITES)
@pytest.mark.parametrize("htmx", [False, True])
def test_a_read_only_delegate_is_refused_every_write(app, owner, url, endpoint, htmx):
    """Whatever the form holds: the refusal comes before reading it."""
    make_delegate(owner, rights=User.READ)
    client = logged_in_as(app, "studio.bianchi")
    token = csrf_from(client.get("/fatture", follow_redirects=True))
    before = {model: model.select().count() for model in (AuditLog, User, Consent)}
    headers = {"HX-Request": "true", "HX-Target": "frame", "HX-Current-URL": "http://localhost/"} if htmx else {}
    response = client.post(url + "?sp=PR002874", data={"csrf_token": token, "email": "x@example.it"}, headers=headers)
    assert response.status_code == 403, (endpoint, response.status_code)
    after = {model: model.select().count() for model in (AuditLog, User, Consent)}
    assert after == before
    # A whole page (htmx swaps no 403), its heading short and the sentence below it.
    page = response.get_data(as_text=True)
    assert "<html" in page, endpoint
    if endpoint.startswith("delegates."):  # no delegate manages delegates, whatever their rights
        heading, sentence = "Accesso non consentito", "Solo il titolare del contratto può invitare e revocare i delegati."
    else:
        heading, sentence = "Accesso in sola lettura", "Il tuo accesso è in sola lettura: puoi vedere i dati del cliente"
    assert f"<h1>{heading}</h1>\n  <p>{sentence}" in page, endpoint


def test_can_write_is_the_owners_and_a_full_delegates(owner):
    assert owner.can_write
    assert make_delegate(owner, rights=User.FULL, username="pieni").can_write
    assert not make_delegate(owner, rights=User.READ, username="lettura").can_write
    staff = User.create(role=User.OPERATOR, email="op@example.it", password_hash="")
    assert not staff.can_write


# --- the back office sees who acts for whom ------------------------------------------------------------------

@pytest.fixture
def staff(app):
    """An operator's client, logged in with the second factor enrolled at the first login."""
    with app.app_context():
        accounts.create_staff("operatore@utility.it", "Sportello-Staff-2026!")
    client = app.test_client()
    assert login(client, "operatore@utility.it", "Sportello-Staff-2026!").status_code == 303
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', client.get("/login/codice").get_data(as_text=True)).group(1)
    assert post_form(client, "/login/codice", {"code": pyotp.TOTP(secret).now()}).status_code == 303
    return client


def test_the_back_office_shows_role_rights_inviter_and_revocation(app, owner, staff):
    delegate = make_delegate(owner, rights=User.FULL)
    make_delegate(owner, username="vecchio", revoked_at=utcnow(), disabled=True)
    response = staff.get("/backoffice/clienti/005007")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    row = re.search(r"<tr>\s*<td>studio\.bianchi@example\.it</td>.*?</tr>", page, re.DOTALL).group(0)
    assert "Delegato" in row and "permessi completi" in row and "invitato da mario@example.it" in row
    old = re.search(r"<tr>\s*<td>vecchio@example\.it</td>.*?</tr>", page, re.DOTALL).group(0)
    assert "revocato" in old and "Riattiva" not in old
    assert delegate.id


def test_the_username_reminder_names_a_delegates_login_until_it_is_revoked(app, owner, smtp):
    delegate = make_delegate(owner)
    for expected in (1, 0):
        client = app.test_client()
        assert post_form(client, "/username-dimenticato", {"email": delegate.email}).status_code == 303
        deliver(app)
        reminders = [m for m in smtp.messages if "studio.bianchi" in text_of(m)]
        assert len(reminders) == expected
        smtp.messages.clear()
        User.update(disabled=True, revoked_at=utcnow()).where(User.id == delegate.id).execute()
