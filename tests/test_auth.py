"""Login, registration with email confirmation, reset, forgot username, sessions, lockout."""
import re
from datetime import timedelta

import pytest

import accounts
from models import AuditLog, Consent, EmailToken, RateCounter, User, UserSession, utcnow
from tests.factories import (
    PASSWORD,
    make_customer,
    make_invoice,
    make_supply_point,
    make_user,
    valid_tax_code,
    valid_vat_number,
)
from tests.helpers import csrf_from, deliver, html_of, htmx_headers, link_in, login, post_form, sent_to_login, text_of

NEW_PASSWORD = "Nuova-Chiave-2027"


def actions():
    return [row.action for row in AuditLog.select().order_by(AuditLog.id)]


# --- login --------------------------------------------------------------------------------------

def test_login_page_has_the_seed_labels(client):
    response = client.get("/login")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    for label in ("User", "Password"):
        assert label in page
    # Italian puts no space before "?", and "password" is an ordinary word in a sentence.
    assert '<a href="/password-dimenticata">Hai dimenticato la password?</a>' in page
    assert '<a href="/registrazione">Sei un cliente e vuoi registrarti?</a>' in page
    assert " ?" not in page


@pytest.mark.parametrize("user_field", ["005007", "mario.rossi", "MARIO.ROSSI"])
def test_login_with_customer_code_or_username(client, owner, user_field):
    response = login(client, user_field, PASSWORD)
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    home = client.get("/", follow_redirects=True).get_data(as_text=True)
    assert "Benvenuto ROSSI MARIO" in home
    assert actions() == ["login"]


def test_wrong_password_and_unknown_code_get_the_same_answer(client, owner):
    wrong_password = login(client, "005007", "Sbagliata-2026!")
    unknown_code = login(client, "999999", "Sbagliata-2026!")
    assert wrong_password.status_code == unknown_code.status_code == 422
    message = "Codice cliente, username o password non corretti."
    assert message in wrong_password.get_data(as_text=True)
    assert message in unknown_code.get_data(as_text=True)
    assert actions() == ["login_failed", "login_failed"]


def test_last_access_shows_the_login_before_this_one(client, owner):
    before = utcnow() - timedelta(days=3)
    User.update(last_login_at=before).where(User.id == owner.id).execute()
    login(client, "005007", PASSWORD)
    page = client.get("/", follow_redirects=True).get_data(as_text=True)
    assert "Ultimo accesso:" in page
    assert owner.previous_login_at is None  # the object read before login
    assert User.get_by_id(owner.id).previous_login_at == before


def login_answer(client, user, password):
    """A login attempt's status and the errors shown next to its fields, times masked."""
    response = login(client, user, password)
    errors = re.findall(r'class="field-error"[^>]*>(.*?)</', response.get_data(as_text=True), re.S)
    return response.status_code, [re.sub(r"\d{1,2}:\d{2}", "HH:MM", e.strip()) for e in errors]


def test_ten_failures_lock_the_account_even_for_the_right_password(client, owner):
    for _ in range(9):
        assert login(client, "005007", "Sbagliata-2026!").status_code == 422
    tenth = login(client, "005007", "Sbagliata-2026!")
    assert tenth.status_code == 429
    assert "l&#39;accesso è bloccato fino alle" in tenth.get_data(as_text=True)
    locked = login(client, "005007", PASSWORD)
    assert locked.status_code == 429
    assert "«Hai dimenticato la password?»" in locked.get_data(as_text=True)  # the way in for the owner
    assert User.get_by_id(owner.id).locked_until > utcnow() + timedelta(minutes=14)
    assert "login" not in actions()

    # After the lock expires the right password works and the count starts again.
    RateCounter.update(window_ends=utcnow() - timedelta(seconds=1)).execute()
    User.update(locked_until=utcnow() - timedelta(seconds=1)).execute()
    assert login(client, "005007", PASSWORD).status_code == 303


def test_a_successful_login_resets_the_failure_count(app, client, owner):
    for _ in range(9):
        assert login(client, "005007", "Sbagliata-2026!").status_code == 422
    assert login(client, "005007", PASSWORD).status_code == 303
    other = app.test_client()
    for _ in range(9):
        assert login(other, "mario.rossi", "Sbagliata-2026!").status_code == 422  # the same account
    assert login(other, "005007", "Sbagliata-2026!").status_code == 429


def test_an_unknown_account_locks_the_same_way(app, owner):
    """The lock must not reveal which codes exist: attempt by attempt the same status and text."""
    known, unknown = app.test_client(), app.test_client()
    for attempt in range(13):
        password = PASSWORD if attempt == 11 else "Sbagliata-2026!"
        assert login_answer(known, "005007", password) == login_answer(unknown, "123456", password), attempt
    assert login_answer(unknown, "123456", "x")[0] == 429


def test_the_reset_link_lets_the_owner_in_while_locked(app, client, owner, smtp):
    for _ in range(10):
        login(client, "005007", "Sbagliata-2026!")
    assert login(client, "005007", PASSWORD).status_code == 429
    assert post_form(client, "/password-dimenticata", {"user": "005007"}).status_code == 303
    deliver(app)
    link = link_in(smtp.messages[0], "/password/nuova/")
    changed = post_form(client, link, {"password": NEW_PASSWORD, "password_repeat": NEW_PASSWORD})
    assert changed.status_code == 303
    assert login(app.test_client(), "005007", NEW_PASSWORD).status_code == 303


def test_login_is_rate_limited_per_ip(client, owner):
    for n in range(30):
        login(client, f"9{n:05d}", "Sbagliata-2026!")
    response = login(client, "005007", PASSWORD)
    assert response.status_code == 429
    assert "Troppi tentativi. Riprova tra" in response.get_data(as_text=True)


def test_unconfirmed_account_cannot_log_in_and_can_ask_the_link_again(client, customer, point, smtp, app):
    make_user(customer, confirmed=False, email="nuovo@example.it")
    response = login(client, "005007", PASSWORD)
    assert response.status_code == 403
    page = response.get_data(as_text=True)
    assert "Non hai ancora confermato la registrazione" in page
    resend = client.post("/registrazione/reinvia", data={"csrf_token": csrf_from(response)})
    assert resend.status_code == 303
    deliver(app)
    assert [m["To"] for m in smtp.messages] == ["nuovo@example.it"]


def test_disabled_user_is_refused(client, customer, point):
    make_user(customer, disabled=True)
    response = login(client, "005007", PASSWORD)
    assert response.status_code == 403
    assert "disattivato" in response.get_data(as_text=True)


@pytest.mark.parametrize("target, expected", [
    ("/dati-anagrafici", "/dati-anagrafici"),
    ("https://evil.example/", "/"),
    ("//evil.example/", "/"),
    ("/\\evil.example", "/"),
])
def test_next_is_followed_only_inside_the_portal(client, owner, target, expected):
    token = csrf_from(client.get("/login"))
    response = client.post("/login", query_string={"next": target},
                           data={"user": "005007", "password": PASSWORD, "csrf_token": token})
    assert response.headers["Location"] == expected


def test_login_requires_csrf(client, owner):
    response = client.post("/login", data={"user": "005007", "password": PASSWORD})
    assert response.status_code == 400
    assert UserSession.select().count() == 0


# --- sessions -----------------------------------------------------------------------------------

def test_a_cookie_replayed_after_logout_is_anonymous(app, owner):
    client = app.test_client()
    login(client, "005007", PASSWORD)
    stolen = client.get_cookie("sportello_session").value
    token = csrf_from(client.get("/", follow_redirects=True))
    assert client.post("/logout", data={"csrf_token": token}).status_code == 303
    assert UserSession.select().count() == 0

    attacker = app.test_client()
    attacker.set_cookie("sportello_session", stolen)
    response = attacker.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")
    assert actions() == ["login", "logout"]


def test_login_starts_a_new_session(app, owner):
    client = app.test_client()
    client.get("/login")
    before = client.get_cookie("sportello_session").value
    login(client, "005007", PASSWORD)
    assert client.get_cookie("sportello_session").value != before


def test_idle_session_expires_after_30_minutes(client, owner):
    login(client, "005007", PASSWORD)
    UserSession.update(last_seen_at=utcnow() - timedelta(minutes=31)).execute()
    response = client.get("/")
    assert response.status_code == 302
    assert UserSession.select().count() == 0
    assert "La sessione è scaduta" in client.get(response.headers["Location"]).get_data(as_text=True)


def test_session_ends_after_12_hours_even_when_active(client, owner):
    login(client, "005007", PASSWORD)
    UserSession.update(created_at=utcnow() - timedelta(hours=12, minutes=1), last_seen_at=utcnow()).execute()
    assert sent_to_login(client.get("/"))


def test_activity_keeps_the_session_alive(client, owner):
    login(client, "005007", PASSWORD)
    UserSession.update(last_seen_at=utcnow() - timedelta(minutes=20)).execute()
    assert client.get("/", follow_redirects=True).status_code == 200
    assert UserSession.get().last_seen_at > utcnow() - timedelta(minutes=1)


def test_an_htmx_request_without_session_is_sent_to_login(client):
    response = client.get("/", headers=htmx_headers("frame"))
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/login")


# --- registration -------------------------------------------------------------------------------

def register_step1(client, customer_code, tax_id, proof):
    return post_form(client, "/registrazione", {"customer_code": customer_code, "tax_id": tax_id, "bill_proof": proof})


STEP2 = {
    "email": "mario@example.it",
    "email_repeat": "mario@example.it",
    "mobile": "+39 333 1234567",
    "username": "Mario.Rossi",
    "password": NEW_PASSWORD,
    "password_repeat": NEW_PASSWORD,
    "consent_privacy": "y",
    "consent_marketing": "yes",
    "consent_third_parties": "no",
    "consent_profiling": "no",
}


def test_registration_confirmation_and_login_through_real_smtp(app, client, customer, point, smtp):
    invoice = make_invoice(customer, point, issue_date=utcnow().date() - timedelta(days=40))
    step1 = register_step1(client, "005007", customer.tax_code, invoice.number)
    assert step1.status_code == 303 and step1.headers["Location"] == "/registrazione/dati"

    page = client.get("/registrazione/dati").get_data(as_text=True)
    assert "ROSSI MARIO" in page and "VIA PROVA 5 - 48124 RAVENNA (RA)" in page
    assert 'name="first_name"' not in page  # a person: the customer's own name, not asked

    done = post_form(client, "/registrazione/dati", STEP2)
    assert done.status_code == 303 and done.headers["Location"] == "/registrazione/inviata"
    user = User.get(User.customer == customer)
    assert user.confirmed_at is None and user.username == "mario.rossi"
    assert user.password_hash.startswith("$argon2id$")
    consents = {c.kind: c.granted for c in Consent.select().where(Consent.user == user)}
    assert consents == {"privacy": True, "marketing": True, "third_parties": False, "profiling": False}
    assert {c.text_version for c in Consent.select()} == {"2026-11"}

    # Not yet confirmed: no login.
    assert login(app.test_client(), "005007", NEW_PASSWORD).status_code == 403

    assert deliver(app) == 1
    [mail] = smtp.messages
    assert mail["To"] == "mario@example.it"
    assert mail["Subject"] == "Conferma la registrazione"
    assert html_of(mail) and "005007" in text_of(mail)
    link = link_in(mail, "/registrazione/conferma/")

    confirm_page = client.get(link)
    assert confirm_page.status_code == 200  # opening the link alone confirms nothing
    assert User.get_by_id(user.id).confirmed_at is None
    confirmed = client.post(link, data={"csrf_token": csrf_from(confirm_page)})
    assert confirmed.status_code == 303
    assert User.get_by_id(user.id).confirmed_at is not None

    fresh = app.test_client()
    assert login(fresh, "mario.rossi", NEW_PASSWORD).status_code == 303
    assert login(app.test_client(), "005007", NEW_PASSWORD).status_code == 303
    assert actions()[:2] == ["registration", "registration_confirmed"]

    # The link is single-use.
    again = client.get(link)
    assert again.status_code == 410


def test_registration_of_a_firm_asks_who_is_registering(client, point, app):
    firm = make_customer(code="005100", name="FERRAMENTA BIANCHI S.R.L.", kind="company",
                         tax_code=valid_vat_number("0212345039"), vat_number=valid_vat_number("0212345039"))
    firm_point = make_supply_point(firm, commodity="gas", pod_pdr="01234567891011")
    assert register_step1(client, "005100", firm.vat_number, "01234567891011").status_code == 303
    page = client.get("/registrazione/dati").get_data(as_text=True)
    assert 'name="first_name"' in page and 'name="tax_code"' in page
    missing = post_form(client, "/registrazione/dati", STEP2)
    assert missing.status_code == 422
    assert "Scrivi il nome." in missing.get_data(as_text=True)
    complete = post_form(client, "/registrazione/dati", dict(
        STEP2, first_name="Anna", last_name="Bianchi", tax_code=valid_tax_code("BNCNNA80A41D458")))
    assert complete.status_code == 303
    user = User.get(User.customer == firm)
    assert (user.first_name, user.last_name) == ("Anna", "Bianchi")
    assert firm_point.customer_id == firm.id


def test_step_one_accepts_a_pod_and_rejects_wrong_data_without_saying_which(client, customer, point):
    bad_proof = register_step1(client, "005007", customer.tax_code, "IT001E99999999")
    assert bad_proof.status_code == 422
    page = bad_proof.get_data(as_text=True)
    assert "non corrispondono a un nostro cliente" in page
    bad_tax = register_step1(client, "005007", valid_tax_code("BNCNNA80A41D458"), point.pod_pdr)
    assert "non corrispondono a un nostro cliente" in bad_tax.get_data(as_text=True)
    ok = register_step1(client, "005007", customer.tax_code.lower(), point.pod_pdr)
    assert ok.status_code == 303


def test_an_old_invoice_does_not_prove_a_bill(client, customer, point):
    old = make_invoice(customer, point, issue_date=utcnow().date() - timedelta(days=800))
    assert register_step1(client, "005007", customer.tax_code, old.number).status_code == 422


def test_proof_can_be_limited_to_invoices(make_app):
    app = make_app(REGISTRATION_PROOF="invoice")
    with app.app_context():
        customer = make_customer(code="005007")
        point = make_supply_point(customer)
        client = app.test_client()
        assert "Numero di una fattura" in client.get("/registrazione").get_data(as_text=True)
        assert register_step1(client, "005007", customer.tax_code, point.pod_pdr).status_code == 422


def test_check_digits_are_checked_before_any_lookup(client, customer, point):
    response = register_step1(client, "5007", "RSSMRA70A01H199A", "x")
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Il codice cliente è di 6 cifre" in page
    assert "Il codice fiscale non è valido" in page
    assert actions() == []  # nothing was looked up


def test_inline_validation_returns_just_the_fields_error(client, customer, point):
    token = csrf_from(client.get("/registrazione"))
    response = client.post(
        "/registrazione/verifica/cliente",
        data={"customer_code": "12", "tax_id": "", "bill_proof": "", "csrf_token": token},
        headers=dict(htmx_headers("err-customer_code"), **{"HX-Trigger-Name": "customer_code"}),
    )
    body = response.get_data(as_text=True).strip()
    assert response.status_code == 200
    assert body.startswith('<p class="field-error" id="err-customer_code"')
    assert "6 cifre" in body and "<html" not in body
    assert "HX-Request" in response.headers["Vary"]

    fine = client.post(
        "/registrazione/verifica/cliente",
        data={"customer_code": "005007", "csrf_token": token},
        headers={"HX-Request": "true", "HX-Trigger-Name": "customer_code"},
    )
    assert "hidden" in fine.get_data(as_text=True)


def test_inline_validation_of_the_password_policy(client, customer, point):
    register_step1(client, "005007", customer.tax_code, point.pod_pdr)
    token = csrf_from(client.get("/registrazione/dati"))

    def check(name, **data):
        response = client.post("/registrazione/verifica/dati", data=dict(data, csrf_token=token),
                               headers={"HX-Request": "true", "HX-Trigger-Name": name})
        return response.get_data(as_text=True)

    assert "La password deve contenere anche un numero, una maiuscola e un carattere speciale." in check(
        "password", password="abcdefgh")
    assert "troppo comune" in check("password", password="Password1!")
    assert "codice cliente" in check("password", password="Ab!005007x")
    assert "non coincidono" in check("password_repeat", password=NEW_PASSWORD, password_repeat="Altro-2026!")
    assert "hidden" in check("password", password=NEW_PASSWORD)


def test_registration_without_step_one_goes_back_to_it(client):
    response = client.get("/registrazione/dati")
    assert response.status_code == 303 and response.headers["Location"] == "/registrazione"


def test_registering_again_mails_the_owner_and_changes_nothing(app, client, customer, point, owner, smtp):
    assert register_step1(client, "005007", customer.tax_code, point.pod_pdr).status_code == 303
    response = post_form(client, "/registrazione/dati", dict(STEP2, email="intruso@example.it", email_repeat="intruso@example.it", username=""))
    assert response.status_code == 303 and response.headers["Location"] == "/registrazione/inviata"
    assert User.select().count() == 1
    deliver(app)
    [mail] = smtp.messages
    assert mail["To"] == "mario@example.it"  # the owner, not the address typed
    assert "già un accesso attivo" in text_of(mail)


def test_registration_is_rate_limited_per_ip(client, customer, point):
    for _ in range(20):
        register_step1(client, "005007", customer.tax_code, "nope")
    response = register_step1(client, "005007", customer.tax_code, point.pod_pdr)
    assert response.status_code == 429


# --- forgotten password -------------------------------------------------------------------------

def test_reset_password_through_real_smtp(app, client, owner, smtp):
    response = post_form(client, "/password-dimenticata", {"user": "005007"})
    assert response.status_code == 303
    deliver(app)
    [mail] = smtp.messages
    link = link_in(mail, "/password/nuova/")
    other_device = app.test_client()
    login(other_device, "005007", PASSWORD)

    changed = post_form(client, link, {"password": NEW_PASSWORD, "password_repeat": NEW_PASSWORD})
    assert changed.status_code == 303
    assert login(app.test_client(), "005007", PASSWORD).status_code == 422
    assert login(app.test_client(), "005007", NEW_PASSWORD).status_code == 303
    # The reset ended the other device's session and told the owner by mail.
    assert sent_to_login(other_device.get("/"))
    deliver(app)
    assert smtp.messages[-1]["Subject"] == "La tua password è cambiata"
    # The link is dead now.
    assert client.get(link).status_code == 410
    assert "password_reset" in actions()


def test_forgot_password_answers_the_same_for_unknown_codes(client, owner, app, smtp):
    known = post_form(client, "/password-dimenticata", {"user": "005007"})
    unknown = post_form(client, "/password-dimenticata", {"user": "999999"})
    assert known.status_code == unknown.status_code == 303
    assert known.headers["Location"] == unknown.headers["Location"]
    pages = [client.get(response.headers["Location"]) for response in (known, unknown)]
    assert [page.status_code for page in pages] == [200, 200]
    # The CSRF token is signed with the second it is made: the only difference allowed.
    page_known, page_unknown = (re.sub(r'"X-CSRFToken": "[^"]+"', "TOKEN", page.get_data(as_text=True)) for page in pages)
    assert page_known == page_unknown
    assert deliver(app) == 1


def test_reset_links_expire_after_an_hour(app, client, owner, smtp):
    post_form(client, "/password-dimenticata", {"user": "mario.rossi"})
    deliver(app)
    link = link_in(smtp.messages[0], "/password/nuova/")
    EmailToken.update(expires_at=utcnow() - timedelta(seconds=1)).execute()
    response = client.get(link)
    assert response.status_code == 410
    assert "Link non valido" in response.get_data(as_text=True)


def test_a_password_change_kills_links_sent_before(app, client, owner, smtp):
    post_form(client, "/password-dimenticata", {"user": "005007"})
    deliver(app)
    link = link_in(smtp.messages[0], "/password/nuova/")
    with app.app_context():
        accounts.set_password(User.get_by_id(owner.id), NEW_PASSWORD)
    assert client.get(link).status_code == 410


def test_reset_requests_per_account_are_limited_silently(app, client, owner, smtp):
    for _ in range(5):
        assert post_form(client, "/password-dimenticata", {"user": "005007"}).status_code == 303
    deliver(app)
    assert len(smtp.messages) == 3


def test_new_password_must_follow_the_policy(app, client, owner, smtp):
    post_form(client, "/password-dimenticata", {"user": "005007"})
    deliver(app)
    link = link_in(smtp.messages[0], "/password/nuova/")
    weak = post_form(client, link, {"password": "corta", "password_repeat": "corta"})
    assert weak.status_code == 422
    assert "La password deve avere almeno 8 caratteri e contenere anche" in weak.get_data(as_text=True)
    assert EmailToken.get().used_at is None  # a failed attempt does not use the link up


def test_long_passwords_are_accepted(client, owner, app, smtp):
    long_password = ("Aa1! la bicicletta azzurra della nonna sta in cantina dal millenovecentoottanta, "
                     "ferma come un sasso")[:100]
    post_form(client, "/password-dimenticata", {"user": "005007"})
    deliver(app)
    link = link_in(smtp.messages[0], "/password/nuova/")
    assert post_form(client, link, {"password": long_password, "password_repeat": long_password}).status_code == 303
    assert login(app.test_client(), "005007", long_password).status_code == 303


# --- forgotten username -------------------------------------------------------------------------

def test_forgot_username_mails_every_login_for_the_address(app, client, owner, smtp):
    other = make_customer(code="005008", name="ROSSI ANNA")
    make_user(other, email="mario@example.it", username=None)
    response = post_form(client, "/username-dimenticato", {"email": "Mario@Example.it"})
    unknown = post_form(client, "/username-dimenticato", {"email": "nessuno@example.it"})
    assert response.headers["Location"] == unknown.headers["Location"]
    deliver(app)
    [mail] = smtp.messages
    body = text_of(mail)
    assert "005007" in body and "mario.rossi" in body and "005008" in body


def test_forgot_username_validates_the_email(client):
    response = post_form(client, "/username-dimenticato", {"email": "non-una-email"})
    assert response.status_code == 422
    assert "Questo indirizzo email non è valido." in response.get_data(as_text=True)


@pytest.mark.parametrize("language, message", [
    ("it", "Il valore non può essere più lungo di 254 caratteri."),
    ("en", "Field cannot be longer than 254 characters."),
])
def test_wtforms_own_messages_are_in_the_users_language(client, language, message):
    """A message wtforms writes itself (the email's length) speaks the page's language: the
    forms read wtforms' catalogue once a process, not at each request (i18n.FormMessages)."""
    assert post_form(client, "/lingua", {"lang": language}, page="/login").status_code == 303
    for _ in range(2):  # the second time from the catalogue kept
        response = post_form(client, "/username-dimenticato", {"email": "a" * 250 + "@example.it"})
        assert response.status_code == 422
        assert message in response.get_data(as_text=True)


def test_registration_is_rate_limited_per_customer_code(make_app, customer, point):
    """Guessing the bill data of one customer from many addresses is stopped too."""
    app = make_app()
    for n in range(10):
        client = app.test_client()
        register_step1(client, "005007", customer.tax_code, f"FT2026-{n:06d}")
    response = register_step1(app.test_client(), "005007", customer.tax_code, point.pod_pdr)
    assert response.status_code == 429
    other = make_customer(code="005008")
    make_supply_point(other, pod_pdr="IT001E55555555")
    assert register_step1(app.test_client(), "005008", other.tax_code, "IT001E55555555").status_code == 303


def test_the_privacy_notice_that_registration_links_to(client):
    """The registration form links to it in a new tab: it opens, with its text's version."""
    from models import Consent

    response = client.get("/informativa-privacy")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "<h1>" in page and Consent.TEXT_VERSION in page


def test_registration_attempts_on_a_registered_account_notify_its_owner_once_a_day(app, smtp, customer, point):
    """Anyone with a bill can repeat step 2 for a registered customer: each attempt answers as a
    new registration would, but the owner hears of it once a day, not once an attempt."""
    from datetime import timedelta

    from models import AuditLog
    from tests.helpers import deliver

    owner = make_user(customer, email="mario@example.it")

    def attempt():
        intruder = app.test_client()
        step1 = post_form(intruder, "/registrazione", {"customer_code": "005007", "tax_id": customer.tax_code,
                                                       "bill_proof": point.pod_pdr})
        assert step1.status_code == 303
        done = post_form(intruder, "/registrazione/dati", dict(STEP2, email="altro@example.it",
                                                              email_repeat="altro@example.it", username=""))
        assert done.status_code == 303 and done.headers["Location"] == "/registrazione/inviata"

    for _ in range(6):
        attempt()
    deliver(app)
    assert [m["To"] for m in smtp.messages] == ["mario@example.it"]
    assert AuditLog.select().where(AuditLog.action == "registration_repeated").count() == 6  # each is on record

    for entry in AuditLog.select():  # a day later
        AuditLog.update(at=entry.at - timedelta(hours=25)).where(AuditLog.id == entry.id).execute()
    attempt()
    deliver(app)
    assert [m["To"] for m in smtp.messages] == [owner.email, owner.email]
