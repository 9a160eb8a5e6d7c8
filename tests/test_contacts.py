"""Dati Anagrafici's contact data: every rule of every field (plain form, htmx submit, inline
check), the email that changes only once its link is followed (real SMTP on loopback), the
contacts export and the import that does not undo a change the billing system has not taken."""
import csv
import io
import re
from datetime import timedelta

import pyotp
import pytest

import accounts
import contacts
import importer
import ratelimit
from models import AuditLog, ContactChange, Customer, EmailToken, User, utcnow
from tests.factories import PASSWORD, make_customer, make_supply_point, make_user
from tests.helpers import csrf_from, deliver, html_of, htmx_headers, link_in, login, post_form, text_of

PAGE = "/dati-anagrafici?sp=PR002874"
SAVE = "/dati-anagrafici/contatti?sp=PR002874"
CHECK = "/dati-anagrafici/contatti/verifica?sp=PR002874"
HTMX_SUBMIT = dict(htmx_headers("contact-data"), **{"HX-Current-URL": "http://localhost" + PAGE})
STAFF_PASSWORD = "Sportello-Staff-2026!"
STORED = {"email": "mario@example.it", "phone": "0544 401234", "mobile": "333 1234567", "fax": ""}

# (field, typed, stored in E.164) — Italian landlines, mobiles, foreign numbers with + or 00.
VALID = [
    ("phone", "0544 401234", "+390544401234"),
    ("phone", "06/1234.5678", "+390612345678"),
    ("phone", "(06) 1234-5678", "+390612345678"),
    ("phone", "333 765 4321", "+393337654321"),  # a mobile as the main phone is fine
    ("phone", "+41 44 668 18 00", "+41446681800"),
    ("phone", "0044 20 7946 0958", "+442079460958"),
    ("mobile", "347 1234567", "+393471234567"),
    ("mobile", "+39 347 123 4567", "+393471234567"),
    ("mobile", "+44 7911 123456", "+447911123456"),
    ("fax", "0544 401235", "+390544401235"),
    ("fax", "+33 1 42 68 53 00", "+33142685300"),
    ("email", "Mario.Rossi@Example.IT", "mario.rossi@example.it"),
    ("email", "  nuovo@posta.example.com ", "nuovo@posta.example.com"),
]
# The valid numbers that differ from what is stored (the others change nothing: a test below).
NEW_NUMBERS = [v for v in VALID if v[0] != "email" and v[2] != contacts.comparable(v[0], STORED[v[0]])]
# (field, typed, the message next to the field)
INVALID = [
    ("phone", "telefono", "Scrivi solo cifre e spazi"),
    ("phone", "0544-ABCDEF", "Scrivi solo cifre e spazi"),
    ("phone", "333+1234567", "Scrivi solo cifre e spazi"),
    ("phone", "12", "Questo numero italiano non esiste"),
    ("phone", "0544 401234 99999999", "Troppe cifre per un numero di telefono."),
    ("phone", "+999 1234 5678", "Questo prefisso internazionale non esiste."),
    ("phone", "+44 20", "Questo numero non esiste"),
    ("phone", "+", "Questo non sembra un numero di telefono"),
    ("phone", "0" * 31, "Al massimo 30 caratteri."),
    ("mobile", "0544 401234", "Questo non è un numero di cellulare"),
    ("mobile", "+41 44 668 18 00", "Questo non è un numero di cellulare"),
    ("mobile", "3", "Questo non sembra un numero di telefono."),
    ("mobile", "347 12", "Questo numero italiano non esiste"),
    ("fax", "333 1234567", "Questo è un numero di cellulare, non di fax."),
    ("fax", "fax!", "Scrivi solo cifre e spazi"),
    ("email", "mario", "Questo indirizzo email non è valido."),
    ("email", "mario@", "Questo indirizzo email non è valido."),
    ("email", "mario rossi@example.it", "Questo indirizzo email non è valido."),
    ("email", "a" * 250 + "@example.it", "Al massimo 254 caratteri."),
    ("email", "", "Scrivi l'indirizzo email"),
]


@pytest.fixture
def mario(app):
    """Customer 005007 with contacts as the billing system sent them, and the holder's login."""
    customer = make_customer(code="005007", name="ROSSI MARIO", email="mario@example.it",
                             phone="0544 401234", mobile="333 1234567", fax=None)
    make_supply_point(customer, code="PR002874", pod_pdr="IT001E00287400")
    owner = make_user(customer, username="mario.rossi", email="mario@example.it")
    client = app.test_client()
    assert login(client, "005007", PASSWORD).status_code == 303
    return client, customer, owner


def send(client, values, headers=None):
    page = client.get(PAGE)
    assert page.status_code == 200
    return client.post(SAVE, data=dict(STORED, **values, csrf_token=csrf_from(page)), headers=headers or {})


def field_error(body, field):
    match = re.search(r'<p class="field-error" id="err-%s"[^>]*>(.*?)</p>' % field, body, re.S)
    assert match, f"no error slot for {field}"
    return match.group(1)


def input_value(body, field):
    tag = re.search(r'<input[^>]*\bname="%s"[^>]*>' % field, body).group(0)
    value = re.search(r'value="([^"]*)"', tag)
    return value.group(1) if value else ""


def stored(field):
    return getattr(Customer.get(Customer.code == "005007"), field)


# --- the rules, one place ---------------------------------------------------------------------------

@pytest.mark.parametrize("field, typed, expected", [v for v in VALID if v[0] != "email"])
def test_every_valid_number_is_stored_in_e164(field, typed, expected):
    assert contacts.clean_phone(typed, field) == expected


@pytest.mark.parametrize("field, typed, message", [v for v in INVALID if v[0] != "email"])
def test_every_invalid_number_is_refused_with_its_reason(app, field, typed, message):
    with app.test_request_context():
        with pytest.raises(contacts.InvalidContact) as refused:
            contacts.clean_phone(typed, field)
        assert message in str(refused.value)


@pytest.mark.parametrize("stored_value, shown", [
    ("+390544401234", "0544 401234"), ("+393331234567", "333 123 4567"),
    ("+442079460958", "+44 20 7946 0958"), ("0544 401234", "0544 401234"),
    ("un testo del gestionale", "un testo del gestionale"), (None, ""),
])
def test_numbers_are_shown_nationally_when_italian(stored_value, shown):
    assert contacts.display_phone(stored_value) == shown


# --- the page -------------------------------------------------------------------------------------

def test_the_page_shows_the_form_filled_in_and_the_read_only_data_with_a_change_request(mario):
    client, _customer, _owner = mario
    response = client.get(PAGE)
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert input_value(body, "email") == "mario@example.it"
    assert input_value(body, "phone") == "0544 401234"
    assert input_value(body, "mobile") == "333 123 4567"
    assert input_value(body, "fax") == ""
    assert "Chiedi una modifica" in body
    link = re.search(r'<a href="([^"]*)">Chiedi una modifica</a>', body).group(1).replace("&amp;", "&")
    assert link.startswith("/ticket/nuovo?") and "category=contract" in link and "sp=PR002874" in link
    assert "subject=Correzione+dei+dati+anagrafici" in link and "005007" in link
    # the notifications and the API keys are still there
    assert "Avvisi per email" in body and "Accesso ai tuoi dati (API)" in body


def test_chiedi_una_modifica_opens_the_new_ticket_form_filled_in(mario):
    client, _customer, _owner = mario
    body = client.get(PAGE).get_data(as_text=True)
    link = re.search(r'<a href="([^"]*)">Chiedi una modifica</a>', body).group(1).replace("&amp;", "&")
    response = client.get(link)
    form = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'value="Correzione dei dati anagrafici"' in form
    assert "Vi chiedo di correggere questi dati del cliente 005007" in form
    assert re.search(r'<option[^>]*value="contract"[^>]*selected|<option[^>]*selected[^>]*value="contract"', form)


# --- every value through HTTP: plain form, htmx submit, inline check ---------------------------------

@pytest.mark.parametrize("field, typed, message", INVALID)
def test_an_invalid_value_as_a_plain_post_is_a_422_page_with_the_message_and_what_was_typed(mario, field, typed, message):
    client, _customer, _owner = mario
    response = send(client, {field: typed})
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "<html" in body
    assert message in field_error(body, field).replace("&#39;", "'")
    assert input_value(body, field) == typed.replace('"', "&#34;")
    assert stored(field) == (STORED[field] or None)  # nothing saved
    assert ContactChange.select().count() == 0


@pytest.mark.parametrize("field, typed, message", INVALID)
def test_an_invalid_value_with_htmx_is_a_422_fragment_with_the_message(mario, field, typed, message):
    client, _customer, _owner = mario
    response = send(client, {field: typed}, HTMX_SUBMIT)
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "<html" not in body and 'name="phone"' in body
    assert message in field_error(body, field).replace("&#39;", "'")
    assert input_value(body, field) == typed.replace('"', "&#34;")
    assert {"HX-Request", "HX-Target"} <= set(response.headers["Vary"].replace(" ", "").split(","))
    assert ContactChange.select().count() == 0


@pytest.mark.parametrize("field, typed, message", INVALID)
def test_the_inline_check_answers_just_the_fields_error(mario, field, typed, message):
    client, _customer, _owner = mario
    token = csrf_from(client.get(PAGE))
    response = client.post(CHECK, data=dict(STORED, **{field: typed}, csrf_token=token),
                           headers=dict(htmx_headers(f"err-{field}"), **{"HX-Trigger-Name": field}))
    body = response.get_data(as_text=True).strip()
    assert response.status_code == 200
    assert body.startswith(f'<p class="field-error" id="err-{field}"') and body.endswith("</p>")
    assert message in body.replace("&#39;", "'")
    assert "HX-Target" in response.headers["Vary"]


@pytest.mark.parametrize("field, typed, expected", VALID)
def test_the_inline_check_of_a_valid_value_is_an_empty_hidden_slot(mario, field, typed, expected):
    client, _customer, _owner = mario
    token = csrf_from(client.get(PAGE))
    response = client.post(CHECK, data=dict(STORED, **{field: typed}, csrf_token=token),
                           headers=dict(htmx_headers(f"err-{field}"), **{"HX-Trigger-Name": field}))
    assert response.status_code == 200
    assert response.get_data(as_text=True).strip() == f'<p class="field-error" id="err-{field}" hidden></p>'


def test_the_inline_check_names_a_contact_field(mario):
    client, _customer, _owner = mario
    token = csrf_from(client.get(PAGE))
    for name in ("csrf_token", "password", ""):
        response = client.post(CHECK, data={"csrf_token": token}, headers=dict(htmx_headers("x"), **{"HX-Trigger-Name": name}))
        assert response.status_code == 400


@pytest.mark.parametrize("field, typed, expected", NEW_NUMBERS)
def test_a_valid_number_as_a_plain_post_is_saved_audited_and_redirected(mario, field, typed, expected):
    client, customer, owner = mario
    before = getattr(customer, field)
    response = send(client, {field: typed})
    assert response.status_code == 303 and response.headers["Location"] == PAGE
    assert stored(field) == expected
    change = ContactChange.get()
    assert (change.field, change.old_value, change.new_value, change.changed_by_id) == (field, before, expected, owner.id)
    entry = AuditLog.get(AuditLog.action == "contact_changed")
    assert entry.user_id == owner.id and entry.customer_id == customer.id
    assert f'"new": "{expected}"' in entry.detail and f'"field": "{field}"' in entry.detail
    page = client.get(PAGE)
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "Contatti salvati." in body
    assert input_value(body, field) == contacts.display_phone(expected)


@pytest.mark.parametrize("field, typed, expected", NEW_NUMBERS)
def test_a_valid_number_with_htmx_answers_the_section_saved(mario, field, typed, expected):
    client, _customer, _owner = mario
    response = send(client, {field: typed}, HTMX_SUBMIT)
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" not in body and "Contatti salvati." in body
    assert input_value(body, field) == contacts.display_phone(expected)
    assert "HX-Target" in response.headers["Vary"]
    assert stored(field) == expected


def test_emptying_a_phone_removes_it_and_the_email_cannot_be_emptied(mario):
    client, _customer, _owner = mario
    assert send(client, {"mobile": ""}).status_code == 303
    assert stored("mobile") is None
    change = ContactChange.get()
    assert (change.old_value, change.new_value) == ("333 1234567", None)


def test_the_same_values_again_change_nothing(mario):
    """The form as shown (national formats) sent back, or sent twice by a double click."""
    client, _customer, _owner = mario
    response = send(client, {"phone": "+39 0544 401234", "mobile": "3331234567"})
    assert response.status_code == 303
    assert ContactChange.select().count() == 0
    assert "Nessuna modifica" in client.get(PAGE).get_data(as_text=True)
    token = csrf_from(client.get(PAGE))
    data = dict(STORED, phone="0544 999999", csrf_token=token)
    first, second = client.post(SAVE, data=data), client.post(SAVE, data=data)
    assert (first.status_code, second.status_code) == (303, 303)
    assert ContactChange.select().count() == 1
    assert AuditLog.select().where(AuditLog.action == "contact_changed").count() == 1


def test_a_form_without_csrf_token_changes_nothing(mario):
    client, _customer, _owner = mario
    response = client.post(SAVE, data=dict(STORED, phone="0544 999999"))
    assert response.status_code == 400
    assert stored("phone") == "0544 401234"


def test_the_form_is_rate_limited(mario):
    client, _customer, _owner = mario
    token = csrf_from(client.get(PAGE))
    for n in range(20):
        assert client.post(SAVE, data=dict(STORED, phone=f"0544 4012{n:02d}", csrf_token=token)).status_code == 303
    response = client.post(SAVE, data=dict(STORED, phone="0544 777777", csrf_token=token))
    assert response.status_code == 429
    assert "Troppi tentativi" in field_error(response.get_data(as_text=True), "email")
    assert stored("phone") == "+390544401219"


def test_the_inline_check_is_rate_limited_and_the_save_still_checks(mario, monkeypatch):
    """Past its limit the on-change check says nothing (204: htmx leaves the page as it is),
    and the form's save still refuses what is wrong, next to the field."""
    monkeypatch.setitem(ratelimit.LIMITS, "contacts-check", (3, 60 * 60))
    client, _customer, _owner = mario
    token = csrf_from(client.get(PAGE))
    field, typed, message = INVALID[0]
    headers = dict(htmx_headers(f"err-{field}"), **{"HX-Trigger-Name": field,
                                                  "HX-Current-URL": f"http://localhost{PAGE}"})
    answers = [client.post(CHECK, data=dict(STORED, **{field: typed}, csrf_token=token), headers=headers)
               for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 204]
    assert message in answers[2].get_data(as_text=True).replace("&#39;", "'") and answers[3].get_data() == b""
    saved = client.post(SAVE, data=dict(STORED, **{field: typed}, csrf_token=token))
    assert saved.status_code == 422
    assert message in field_error(saved.get_data(as_text=True), field)


def test_a_read_only_delegate_sees_the_contacts_and_may_not_change_them(app, mario):
    _client, customer, _owner = mario
    make_user(customer, role=User.DELEGATE, username="commercialista", delegate_rights="read")
    delegate = app.test_client()
    assert login(delegate, "commercialista", PASSWORD).status_code == 303
    page = delegate.get(PAGE)
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'name="phone"' not in body and "0544 401234" in body and "333 123 4567" in body
    assert "Il tuo accesso è in sola lettura" in body
    response = delegate.post(SAVE, data=dict(STORED, phone="0544 999999", csrf_token=csrf_from(page)))
    assert response.status_code == 403
    assert "Il tuo accesso è in sola lettura" in response.get_data(as_text=True)
    assert stored("phone") == "0544 401234"


def test_the_contacts_urls_need_a_login(client, mario):
    token = csrf_from(client.get("/login"))
    for url in (SAVE, CHECK):
        response = client.post(url, data=dict(STORED, csrf_token=token))
        assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_the_back_office_shows_the_numbers_as_people_read_them(app, mario):
    client, _customer, _owner = mario
    assert send(client, {"phone": "+41 44 668 18 00", "fax": "0544/401235"}).status_code == 303
    with app.app_context():
        accounts.create_staff("operatore@utility.it", STAFF_PASSWORD)
    staff = app.test_client()
    assert login(staff, "operatore@utility.it", STAFF_PASSWORD).headers["Location"] == "/login/codice"
    enrolment = staff.get("/login/codice")
    assert enrolment.status_code == 200
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', enrolment.get_data(as_text=True)).group(1)
    assert post_form(staff, "/login/codice", {"code": pyotp.TOTP(secret).now()}).status_code == 303
    response = staff.get("/backoffice/clienti/005007")
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "mario@example.it · +41 44 668 18 00 · 333 123 4567 · 0544 401235" in body


# --- a new email: only once its link is followed --------------------------------------------------

def ask_new_email(client, address, headers=None):
    return send(client, {"email": address}, headers)


def test_a_new_email_changes_only_when_its_link_is_followed_and_the_old_one_is_told(app, mario, smtp):
    client, customer, owner = mario
    response = ask_new_email(client, "Mario.Nuovo@Example.com")
    assert response.status_code == 303
    assert stored("email") == "mario@example.it"  # not yet
    page = client.get(PAGE).get_data(as_text=True)
    assert "Ti abbiamo mandato un link a mario.nuovo@example.com" in page
    assert "In attesa di conferma: mario.nuovo@example.com" in page
    assert ContactChange.select().count() == 0

    deliver(app)
    [mail] = smtp.messages
    assert mail.envelope_to == ["mario.nuovo@example.com"]
    assert mail["Subject"] == "Conferma il nuovo indirizzo email"
    link = link_in(mail, "/email/conferma/")
    assert link in html_of(mail)

    shown = app.test_client().get(link)  # opened from the mailbox, without a login
    assert shown.status_code == 200
    assert "mario.nuovo@example.com" in shown.get_data(as_text=True)
    assert shown.headers["Referrer-Policy"] == "no-referrer"
    assert stored("email") == "mario@example.it"  # a GET (a mail scanner) confirms nothing

    confirmed = client.post(link, data={"csrf_token": csrf_from(client.get(link))})
    assert confirmed.status_code == 303 and confirmed.headers["Location"] == "/dati-anagrafici"
    assert stored("email") == "mario.nuovo@example.com"
    assert User.get_by_id(owner.id).email == "mario.nuovo@example.com"  # the holder's login address too
    change = ContactChange.get()
    assert (change.field, change.old_value, change.new_value) == ("email", "mario@example.it", "mario.nuovo@example.com")
    assert AuditLog.select().where(AuditLog.action == "contact_changed").count() == 1

    deliver(app)
    told = smtp.messages[1]
    assert told.envelope_to == ["mario@example.it"]
    assert told["Subject"] == "Il tuo indirizzo email è cambiato"
    assert "mario.nuovo@example.com" in text_of(told) and "005007" in text_of(told)

    again = client.get(link)  # single use
    assert again.status_code == 410
    assert client.post(link, data={"csrf_token": csrf_from(client.get(PAGE))}).status_code == 410


def test_an_expired_link_changes_nothing(app, mario, smtp):
    client, _customer, _owner = mario
    assert ask_new_email(client, "nuovo@example.com").status_code == 303
    deliver(app)
    link = link_in(smtp.messages[0], "/email/conferma/")
    with app.app_context():
        EmailToken.update(expires_at=utcnow() - timedelta(seconds=1)).execute()
    assert client.get(link).status_code == 410
    assert client.post(link, data={"csrf_token": csrf_from(client.get(PAGE))}).status_code == 410
    assert stored("email") == "mario@example.it"


def test_a_newer_request_voids_the_earlier_link(app, mario, smtp):
    client, _customer, _owner = mario
    assert ask_new_email(client, "primo@example.com").status_code == 303
    assert ask_new_email(client, "secondo@example.com").status_code == 303
    deliver(app)
    first, second = (link_in(m, "/email/conferma/") for m in smtp.messages)
    assert client.get(first).status_code == 410
    assert client.get(second).status_code == 200


def test_a_double_click_sends_one_link_and_the_links_are_rate_limited(app, mario, smtp):
    client, _customer, _owner = mario
    token = csrf_from(client.get(PAGE))
    data = dict(STORED, email="nuovo@example.com", csrf_token=token)
    assert [client.post(SAVE, data=data).status_code for _ in range(2)] == [303, 303]
    assert EmailToken.select().where(EmailToken.purpose == EmailToken.NEW_EMAIL).count() == 1
    for address in ("b@example.com", "c@example.com"):
        assert client.post(SAVE, data=dict(data, email=address)).status_code == 303
    response = client.post(SAVE, data=dict(data, email="d@example.com"), headers=HTMX_SUBMIT)
    assert response.status_code == 429
    assert "Troppi tentativi" in field_error(response.get_data(as_text=True), "email")
    deliver(app)
    assert [m.envelope_to for m in smtp.messages] == [["nuovo@example.com"], ["b@example.com"], ["c@example.com"]]


def test_a_new_email_with_htmx_says_the_link_is_on_its_way(app, mario, smtp):
    client, _customer, _owner = mario
    response = ask_new_email(client, "nuovo@example.com", HTMX_SUBMIT)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in body
    assert "Ti abbiamo mandato un link a nuovo@example.com" in body
    assert "In attesa di conferma: nuovo@example.com" in body


def test_a_delegate_changes_the_customers_email_not_the_holders_login(app, mario, smtp):
    _client, customer, owner = mario
    delegate_user = make_user(customer, role=User.DELEGATE, username="energy.manager", email="em@studio.it",
                              delegate_rights="full")
    delegate = app.test_client()
    assert login(delegate, "energy.manager", PASSWORD).status_code == 303
    assert ask_new_email(delegate, "ufficio@rossi.it").status_code == 303
    deliver(app)
    link = link_in(smtp.messages[0], "/email/conferma/")
    anonymous = app.test_client()
    response = anonymous.post(link, data={"csrf_token": csrf_from(anonymous.get(link))})
    assert response.status_code == 303 and response.headers["Location"] == "/login"
    assert stored("email") == "ufficio@rossi.it"
    assert User.get_by_id(owner.id).email == "mario@example.it"
    assert User.get_by_id(delegate_user.id).email == "em@studio.it"
    deliver(app)
    assert smtp.messages[1].envelope_to == ["mario@example.it"]


# --- the export for the billing system ---------------------------------------------------------------

def test_the_contacts_export_has_one_row_per_change_since_the_day(app, mario, smtp):
    client, customer, _owner = mario
    assert send(client, {"phone": "+41 44 668 18 00", "fax": "0544 401235"}).status_code == 303
    with app.app_context():
        ContactChange.create(customer=customer, field="mobile", old_value="1", new_value="2",
                             changed_at=utcnow() - timedelta(days=40))  # before --since
    since = (utcnow() - timedelta(days=2)).date().isoformat()
    result = app.test_cli_runner().invoke(args=["export", "contacts", "--since", since])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    # E.164 starts with +: like every text cell a spreadsheet would run, it gets an apostrophe.
    assert [(r["customer_code"], r["field"], r["old_value"], r["new_value"], r["changed_by"]) for r in rows] == [
        ("005007", "phone", "0544 401234", "'+41446681800", "mario.rossi"),
        ("005007", "fax", "", "'+390544401235", "mario.rossi"),
    ]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0[12]:00", r["changed_at"]) for r in rows)
    assert list(rows[0]) == ["customer_code", "field", "old_value", "new_value", "changed_at", "changed_by"]
    with app.app_context():
        assert AuditLog.select().where(AuditLog.action == "export_contacts").count() == 1


# --- the import and the portal: which side wins, and when ----------------------------------------------

def write_customers(folder, **contact):
    """customers.csv with customer 005007 and the contact columns given."""
    folder.mkdir(exist_ok=True)
    columns = ["customer_code", "name", "kind", "tax_code", *contact]
    with open(folder / "customers.csv", "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        customer = Customer.get(Customer.code == "005007")
        writer.writerow(["005007", "ROSSI MARIO", "person", customer.tax_code, *contact.values()])
    return [str(folder / "customers.csv")]


def run_import(app, paths, tmp_path):
    with app.app_context():
        report = importer.run(paths, str(tmp_path / "store"))
    assert report.problems == []
    return report


def test_the_import_keeps_a_portal_change_until_the_billing_system_sends_it_back(app, mario, tmp_path):
    client, _customer, _owner = mario
    assert send(client, {"phone": "0544 999999"}).status_code == 303
    # The night after: the billing system has not loaded the export yet and sends the old phone,
    # and a new fax of its own.
    with app.app_context():
        paths = write_customers(tmp_path / "night1", phone="0544 401234", fax="0544 111111", mobile="333 1234567")
    report = run_import(app, paths, tmp_path)
    assert stored("phone") == "+390544999999"  # the portal's change stands
    assert stored("fax") == "0544 111111"  # a field the customer did not change: the import's
    assert any("kept 1 contact value" in line for line in report.lines())
    assert ContactChange.get().settled_at is None
    # Next night the billing system has it, in its own format: settled, and the import writes it.
    with app.app_context():
        paths = write_customers(tmp_path / "night2", phone="0544/999999")
    report = run_import(app, paths, tmp_path)
    assert stored("phone") == "0544/999999"
    assert ContactChange.get().settled_at is not None
    assert not any("kept" in line for line in report.lines())
    # From then on the billing system's changes win as always.
    with app.app_context():
        paths = write_customers(tmp_path / "night3", phone="0544 222222")
    run_import(app, paths, tmp_path)
    assert stored("phone") == "0544 222222"


def test_after_30_days_the_billing_system_wins(app, mario, tmp_path):
    client, customer, _owner = mario
    assert send(client, {"mobile": "347 7654321"}).status_code == 303
    with app.app_context():
        ContactChange.update(changed_at=utcnow() - contacts.PORTAL_WINS_FOR - timedelta(minutes=1)).execute()
        paths = write_customers(tmp_path / "late", mobile="333 1234567")
    run_import(app, paths, tmp_path)
    assert stored("mobile") == "333 1234567"
    assert ContactChange.get().settled_at is not None
    entry = AuditLog.get(AuditLog.action == "contact_change_overridden")
    assert entry.customer_id == customer.id and '"field": "mobile"' in entry.detail


def test_a_file_without_the_contact_columns_leaves_the_change_pending(app, mario, tmp_path):
    client, _customer, _owner = mario
    assert send(client, {"phone": "0544 999999"}).status_code == 303
    with app.app_context():
        paths = write_customers(tmp_path / "names")
    run_import(app, paths, tmp_path)
    assert stored("phone") == "+390544999999"
    assert ContactChange.get().settled_at is None


def test_an_email_confirmed_in_the_portal_is_kept_against_the_import(app, mario, smtp, tmp_path):
    client, _customer, _owner = mario
    assert ask_new_email(client, "nuovo@example.com").status_code == 303
    deliver(app)
    link = link_in(smtp.messages[0], "/email/conferma/")
    assert client.post(link, data={"csrf_token": csrf_from(client.get(link))}).status_code == 303
    with app.app_context():
        paths = write_customers(tmp_path / "night", email="mario@example.it")
    run_import(app, paths, tmp_path)
    assert stored("email") == "nuovo@example.com"
