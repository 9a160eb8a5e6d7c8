"""Headers, CSRF, cookies, configuration at start-up, the audit log, the vendored htmx."""
import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

import models
import schema
from app import ConfigError, create_app
from models import AuditLog
from tests.conftest import TEST_CONFIG
from tests.factories import PASSWORD, make_customer, make_supply_point, make_user
from tests.helpers import csrf_from, deliver, logged_in_customer, login, post_form

ROOT = Path(__file__).resolve().parent.parent
HTMX_SHA256 = "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"


def test_security_headers(client):
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    for directive in ("default-src 'self'", "script-src 'self'", "style-src 'self'", "object-src 'none'",
                      "base-uri 'none'", "frame-ancestors 'none'"):
        assert directive in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_session_cookie_flags(make_app):
    app = make_app(PORTAL_BASE_URL="https://clienti.example.it")
    customer = make_customer(code="005007")
    make_supply_point(customer)
    make_user(customer)
    client = app.test_client()
    response = login(client, "005007", PASSWORD)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie
    assert "Strict-Transport-Security" in response.headers


def test_the_session_cookie_ends_with_the_session_and_is_sent_only_when_it_changes(app, owner, points):
    """It expires with the absolute limit (SESSION_MAX_HOURS), and a page that changes nothing in
    it sends no new one (no signing at every answer); switching the point does."""
    client = app.test_client()
    response = login(client, "005007", PASSWORD)
    assert response.status_code == 303
    cookie = response.headers["Set-Cookie"]
    expires = parsedate_to_datetime(re.search(r"Expires=([^;]+)", cookie).group(1))
    lasts = expires - datetime.now(UTC)
    assert timedelta(hours=app.config["SESSION_MAX_HOURS"], minutes=-5) < lasts <= timedelta(hours=app.config["SESSION_MAX_HOURS"])
    electricity, gas = points
    first = client.get(f"/?sp={electricity.code}")
    assert first.status_code == 200  # the point chosen: the cookie remembers it
    page = client.get(f"/fatture?sp={electricity.code}")
    assert page.status_code == 200 and "Set-Cookie" not in page.headers
    switched = client.get(f"/?sp={gas.code}")
    assert switched.status_code == 200 and "sportello_session=" in switched.headers["Set-Cookie"]
    remembered = client.get("/fatture", follow_redirects=True)
    assert remembered.status_code == 200 and remembered.request.args["sp"] == gas.code


def test_htmx_requests_need_the_csrf_header(app):
    client, _ = logged_in_customer(app)
    token = csrf_from(client.get("/", follow_redirects=True))
    data = {"current_password": "x", "password": "y", "password_repeat": "y"}
    htmx = {"HX-Request": "true", "HX-Target": "dialog-slot"}
    assert client.post("/cambio-password", data=data, headers=htmx).status_code == 400
    with_header = client.post("/cambio-password", data=data, headers=dict(htmx, **{"X-CSRFToken": token}))
    assert with_header.status_code == 422  # past CSRF, refused by the form


def test_the_layout_hands_htmx_the_csrf_token_and_a_defensive_config(client):
    response = client.get("/login")
    page = response.get_data(as_text=True)
    headers = json.loads(re.search(r"<body hx-headers='([^']+)'", page).group(1))
    assert headers["X-CSRFToken"] == csrf_from(response)  # the same page's (tokens carry a timestamp)
    config = json.loads(re.search(r'<meta name="htmx-config" content=\'([^\']+)\'', page).group(1))
    assert config["selfRequestsOnly"] is True
    assert config["allowEval"] is False and config["allowScriptTags"] is False
    assert config["historyCacheSize"] == 0


def test_nothing_is_loaded_from_another_host():
    for template in (ROOT / "templates").rglob("*.html"):
        if "mail" in template.parts:
            continue  # mails link to the portal by its public address, on purpose
        text = template.read_text()
        assert not re.search(r'(src|href)="(https?:)?//', text), template
        assert "<script>" not in text and not re.search(r"\son[a-z]+=", text), template
        assert 'style="' not in text, template


def test_vendored_htmx_is_the_pinned_file():
    data = (ROOT / "static/vendor/htmx-2.0.11.min.js").read_bytes()
    assert hashlib.sha256(data).hexdigest() == HTMX_SHA256


def test_the_audit_log_holds_no_secret(client, app):
    customer = make_customer(code="005007", tax_code="RSSMRA70A01H501S")
    make_supply_point(customer)
    make_user(customer)
    login(client, "005007", "Sbagliata-2026!")
    login(client, "005007", PASSWORD)
    post_form(client, "/password-dimenticata", {"user": "005007"})
    deliver(app)  # the mail sender answers the request
    post_form(client, "/registrazione", {"customer_code": "005007", "tax_id": "RSSMRA70A01H501S", "bill_proof": "x"})
    rows = list(AuditLog.select())
    assert {r.action for r in rows} >= {"login_failed", "login", "password_reset_requested", "registration_mismatch"}
    dump = " ".join(f"{r.detail} {r.ip}" for r in rows)
    assert PASSWORD not in dump and "Sbagliata" not in dump and "RSSMRA70A01H501S" not in dump
    assert all(r.ip == "127.0.0.1" for r in rows)


def test_production_without_secret_key_refuses_to_start():
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app({"PORTAL_ENV": "production", "SECRET_KEY": None, "PORTAL_BASE_URL": "https://x.it"})


def test_production_without_base_url_refuses_to_start():
    with pytest.raises(ConfigError, match="PORTAL_BASE_URL"):
        create_app({"PORTAL_ENV": "production", "SECRET_KEY": "s" * 32, "PORTAL_BASE_URL": None})


def test_settings_come_from_the_environment(monkeypatch, migrated_database):
    monkeypatch.setenv("PORTAL_NAME", "Energia Romagnola")
    monkeypatch.setenv("MAIL_USE_TLS", "yes")
    monkeypatch.setenv("MAIL_PORT", "587")
    app = create_app(dict(TEST_CONFIG, DATABASE_URL=migrated_database))
    assert app.config["PORTAL_NAME"] == "Energia Romagnola"
    assert app.config["MAIL_USE_TLS"] is True and app.config["MAIL_PORT"] == 587
    monkeypatch.setenv("MAIL_PORT", "venticinque")
    with pytest.raises(ConfigError, match="MAIL_PORT"):
        create_app(dict(TEST_CONFIG, DATABASE_URL=migrated_database))


def test_a_bad_brand_colour_is_refused(migrated_database):
    with pytest.raises(ConfigError, match="PORTAL_COLOR"):
        create_app(dict(TEST_CONFIG, DATABASE_URL=migrated_database, PORTAL_COLOR="red;}body{"))


@pytest.mark.parametrize("colour, accepted", [
    ("#0b5cab", True), ("#038200", True),  # the default; a green just dark enough (4.58:1 on the page)
    ("#05a100", False), ("#f5a623", False), ("#ffffff", False),  # links and white text unreadable
])
def test_a_brand_colour_too_light_to_read_is_refused(migrated_database, colour, accepted):
    """The brand colour is the links' colour and the background of white text: one in which
    they fall under WCAG AA's 4.5:1 stops the portal at its start, saying why."""
    config = dict(TEST_CONFIG, DATABASE_URL=migrated_database, PORTAL_COLOR=colour)
    if accepted:
        assert create_app(config).config["PORTAL_COLOR"] == colour
    else:
        with pytest.raises(ConfigError, match=rf"PORTAL_COLOR {colour} is too light: .* contrast of \d\.\d:1"):
            create_app(config)


def test_the_migrations_match_the_models(app):
    """A model changed without `flask make-migration`: the diff would not be empty."""
    from peewee_migrate.auto import diff_many

    router = schema.router(models.db_wrapper.database)
    migrator = router.migrator  # the models as the migrations build them
    changes = diff_many(models.ALL_MODELS, list(migrator.orm), migrator=migrator)
    assert changes == []
    assert schema.pending(models.db_wrapper.database) == []


def test_init_db_upgrades_without_losing_data(app):
    customer = make_customer(code="005007")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["init-db"])
    assert result.exit_code == 0, result.output
    assert "0 migration(s) applied" in result.output
    assert models.Customer.get_by_id(customer.id).code == "005007"


def test_errors_are_pages_in_the_users_language(client):
    response = client.get("/non-esiste")
    assert response.status_code == 404
    assert "La pagina che cerchi non c&#39;è." in response.get_data(as_text=True)
    assert client.post("/login").status_code == 400  # CSRF missing: a page, not a stack trace


def test_form_errors_are_escaped_even_when_lazy(app):
    """flask-babel's lazy strings say they are safe HTML; the error macro must escape them."""
    from flask_babel import lazy_gettext

    with app.test_request_context():
        field = type("Field", (), {"id": "x"})()
        html = app.jinja_env.globals["forms"].field_error(field, [lazy_gettext("<b>%(v)s</b>", v="<script>")])
    assert "<script>" not in html and "&lt;b&gt;" in html


# --- ownership: every id a customer's URL carries ---------------------------------------------

def self_reading_with_photo(app, customer):
    """A pending self-reading of the customer's first point, with a photo in the file store."""
    import io
    from datetime import date

    from PIL import Image

    from files import FileStore
    from models import Reading, SupplyPoint

    photo = io.BytesIO()
    Image.new("RGB", (8, 8)).save(photo, "PNG")
    path = FileStore(app.config["FILE_STORE"]).store_bytes(photo.getvalue(), ".png")
    point = SupplyPoint.get(SupplyPoint.customer == customer)
    return Reading.create(supply_point=point, date=date(2026, 11, 30), register="total", value=1, source="customer",
                          status=Reading.PENDING, photo_path=path)


def ticket_with_attachment(app, customer):
    """A ticket of the customer with a PDF attached to its first message."""
    from files import FileStore
    from models import Ticket, TicketAttachment, TicketMessage
    from tests.import_data import pdf_bytes

    ticket = Ticket.create(customer=customer, subject="Domanda")
    message = TicketMessage.create(ticket=ticket, body="?")
    path = FileStore(app.config["FILE_STORE"]).store_bytes(pdf_bytes("Allegato"), ".pdf")
    return ticket, TicketAttachment.create(message=message, file=path, name="a.pdf", content_type="application/pdf",
                                           size=1)


def test_a_supply_point_is_found_by_code_only_among_its_customers(app):
    """SupplyPoint.of_customer: the lookup a caller without a session (the token API) uses."""
    from models import SupplyPoint

    mine, theirs = make_customer(code="005007"), make_customer(code="009999")
    point = make_supply_point(mine, code="PR002874")
    make_supply_point(theirs, code="PR009999")
    with app.app_context():
        assert SupplyPoint.of_customer(mine, "PR002874").get() == point
        assert SupplyPoint.of_customer(mine, "PR009999").first() is None
        assert SupplyPoint.of_customer(theirs, "PR002874").first() is None


def test_a_points_readings_and_measures_only_through_its_customer(app):
    """Reading.for_point and Measure.for_point take the customer: asked with another customer,
    the point has nothing (the queries Autolettura and Misure elettriche will build on)."""
    from datetime import date, datetime

    from models import Measure, Reading

    mine, theirs = make_customer(code="005007"), make_customer(code="009999")
    point = make_supply_point(mine, code="PR002874")
    with app.app_context():
        Reading.create(supply_point=point, date=date(2026, 10, 1), register="F1", value=1200, source="distributor")
        Measure.create(supply_point=point, start=datetime(2026, 10, 1, 0, 0), kwh=0.4)
        assert [r.value for r in Reading.for_point(mine, point)] == [1200]
        assert [m.kwh for m in Measure.for_point(mine, point)] == [0.4]
        assert list(Reading.for_point(theirs, point)) == [] and list(Measure.for_point(theirs, point)) == []


@pytest.mark.parametrize("url, status", [
    ("/fatture/99999999999999999999/pdf", 404),
    ("/documenti/99999999999999999999/file", 404),
    ("/fatture?sp=PR002874&pagina=99999999999999999999", 200),
    ("/fatture?sp=PR002874&anno=99999999999999999999", 200),
    ("/prelievi-fatturati?sp=PR002874&anno=99999999999999999999", 200),
])
def test_huge_numbers_in_urls_are_a_404_or_ignored_never_a_500(app, url, status):
    """SQLite cannot bind a 20-digit number (OverflowError): ids past 64 bits are no route, page
    and year numbers past their range are ignored."""
    customer = make_customer(code="005007", name="ROSSI MARIO")
    make_supply_point(customer, code="PR002874")
    make_user(customer)
    client = app.test_client()
    assert login(client, "005007", PASSWORD).status_code == 303
    response = client.get(url)
    assert response.status_code == status


def test_production_without_a_mail_server_refuses_to_start_unless_files_are_chosen(migrated_database):
    """Without MAIL_SERVER mails would quietly become files nobody reads, their links in a log."""
    production = {"PORTAL_ENV": "production", "SECRET_KEY": "s" * 32, "PORTAL_BASE_URL": "https://x.it",
                  "DATABASE_URL": migrated_database, "MAIL_DELIVERY_THREAD": False}
    with pytest.raises(ConfigError, match="MAIL_SERVER is not set"):
        create_app(dict(production, MAIL_SERVER=None))
    assert create_app(dict(production, MAIL_SERVER=None, MAIL_BACKEND="files")).config["MAIL_BACKEND"] == "files"
    assert create_app(dict(production, MAIL_SERVER="smtp.example.it")).config["MAIL_SERVER"] == "smtp.example.it"


def test_pages_with_a_token_in_their_address_send_no_referer(app, client, owner, smtp):
    """Their form, styles and the page after would carry the token in the Referer otherwise."""
    assert post_form(client, "/password-dimenticata", {"user": "005007"}).status_code == 303
    deliver(app)
    link = re.search(r"http://portal\.test(/password/nuova/\S+)", smtp.messages[0].get_body(("plain",)).get_content())
    page = client.get(link.group(1))
    assert page.status_code == 200
    assert page.headers["Referrer-Policy"] == "no-referrer"
    dead = client.get("/registrazione/conferma/not-a-token")
    assert dead.status_code == 410
    assert dead.headers["Referrer-Policy"] == "no-referrer"
    login_page = client.get("/login")
    assert login_page.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_a_search_term_is_not_carried_into_the_login_address(client):
    response = client.get("/backoffice/?q=VTLMRC67E08D458L&pagina=2")
    assert response.status_code == 302
    location = response.headers["Location"]
    assert "VTLMRC67E08D458L" not in location
    assert location == "/login?next=/backoffice/?pagina%3D2"
