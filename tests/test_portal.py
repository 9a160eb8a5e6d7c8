"""The page frame, the supply-point selector, the menu, languages and formats."""
import re
import subprocess
import sys
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from flask import url_for
from flask_babel import force_locale
from werkzeug.routing import IntegerConverter

import i18n
from models import SupplyPoint, User, utcnow
from tests.factories import PASSWORD, make_customer, make_supply_point, make_user
from tests.helpers import (
    COMPANY_SETTINGS,
    csrf_from,
    customer_area_blueprints,
    htmx_headers,
    logged_in_customer,
    login,
    post_form,
    route_urls,
    routes_app,
)
from views.rendering import UnknownTarget

# Every route of the customer's area, from the app's URL map: a new one is covered at once.
ROUTES_APP = routes_app()  # at import: reading its routes binds the models to it
CUSTOMER_ROUTES = route_urls(*customer_area_blueprints(ROUTES_APP), app=ROUTES_APP)
CUSTOMER_GETS = [url for method, url, _endpoint in CUSTOMER_ROUTES if method == "GET"]
CUSTOMER_POSTS = [url for method, url, _endpoint in CUSTOMER_ROUTES if method == "POST"]
FILES = [url for _method, url, endpoint in CUSTOMER_ROUTES
         if getattr(ROUTES_APP.view_functions[endpoint], "serves_a_file", False)]
# A page of one record (/ticket/<int:ticket_id>) needs that record: its own tests show it.
ONE_RECORD = {endpoint for endpoint, rules in ROUTES_APP.url_map._rules_by_endpoint.items()
              if any(isinstance(c, IntegerConverter) for rule in rules for c in rule._converters.values())}
# A form's POST-only address opened anew is its page's (customer_area.form_address_opens).
FORM_ADDRESSES = {url: ROUTES_APP.view_functions[endpoint].opens for method, url, endpoint in CUSTOMER_ROUTES
                  if method == "GET" and hasattr(ROUTES_APP.view_functions[endpoint], "opens")}
PAGES = [url for method, url, endpoint in CUSTOMER_ROUTES
         if method == "GET" and url not in FILES and endpoint not in ONE_RECORD and url not in FORM_ADDRESSES]


@pytest.mark.parametrize("url", FORM_ADDRESSES)
def test_a_forms_address_opened_anew_is_its_page(app, url):
    """Without JavaScript a refused form is shown again at the address it posted to; opened
    again (a new tab, a bookmark), that address is the form's page, with the selected point."""
    client, user = logged_in_customer(app)
    code = SupplyPoint.get(SupplyPoint.customer == user.customer_id).code
    response = client.get(f"{url}?sp={code}")
    assert response.status_code == 302
    with app.test_request_context():
        page = url_for(FORM_ADDRESSES[url], sp=code)
    assert response.headers["Location"] == page
    assert client.get(page).status_code == 200


def test_the_route_lists_are_complete():
    assert set(customer_area_blueprints()) == {"customer_area", "home", "invoices", "consumption", "documents", "account",
                                             "tickets", "readings", "privacy", "delegates"}
    assert {"/", "/fatture", "/fatture/1/pdf", "/cambio-password", "/documentazione/comunicati"} <= set(CUSTOMER_GETS)
    assert {"/cambio-password", "/dati-anagrafici"} <= set(CUSTOMER_POSTS)
    assert "/fatture/pdf.zip" not in PAGES and "/fatture" in PAGES
    assert {"/dati-anagrafici/contatti", "/privacy-e-account/chiudi", "/delegati/revoca"} <= set(FORM_ADDRESSES)
    assert {"/fatture/pdf.zip", "/fatture/1/pdf", "/prelievi-fatturati.svg", "/consumi-recenti.svg"} <= set(FILES)


@pytest.mark.parametrize("url", CUSTOMER_GETS)
def test_every_customer_url_needs_a_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")
    assert "HX-Request" in response.headers["Vary"]  # htmx gets another answer (below)


@pytest.mark.parametrize("url", CUSTOMER_GETS)
def test_every_customer_url_asked_by_htmx_sends_htmx_to_the_login(client, url):
    """htmx does not follow a redirect into a swap: a 401 with HX-Redirect loads the login
    page as a whole page."""
    response = client.get(url, headers={"HX-Request": "true", "HX-Target": "frame",
                                        "HX-Current-URL": "http://localhost/"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/login?next=")
    assert "HX-Request" in response.headers["Vary"]


@pytest.mark.parametrize("url", CUSTOMER_POSTS)
def test_every_customer_write_needs_a_login(client, url):
    """With a valid CSRF token, so the login check, not CSRF's, is the one that answers."""
    response = client.post(url, data={"csrf_token": csrf_from(client.get("/login"))})
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


@pytest.mark.parametrize("url", PAGES)
def test_every_customer_page_renders_in_the_frame(logged_in, url):
    response = logged_in.get(url, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Benvenuto ROSSI MARIO" in page
    assert 'id="sp"' in page and "Home Page" in page
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("url", PAGES)
def test_every_customer_page_switches_point_as_a_fragment(logged_in, url):
    """What the supply-point selector asks: the frame of the same page for the other point,
    without the page around it, saying Vary so no cache mixes fragment and page."""
    separator = "&" if "?" in url else "?"
    response = logged_in.get(f"{url}{separator}sp=PR002875", headers={
        "HX-Request": "true", "HX-Target": "frame", "HX-Trigger": "sp",
        "HX-Current-URL": f"http://localhost{url}{separator}sp=PR002874"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" not in body and 'id="sp"' not in body and "<main" in body
    assert {"HX-Request", "HX-Target"} <= set(response.headers["Vary"].split(", "))


def test_the_selector_lists_the_customers_points_as_the_seed_does(logged_in):
    page = logged_in.get("/", follow_redirects=True).get_data(as_text=True)
    assert "PR002875 (Pdr: 01234567891011); VIA PROVA 5 - 48124 RAVENNA (RA)" in page
    assert "PR002874 (Pod: IT001E00287400)" in page


def test_switching_point_with_htmx_answers_just_the_frame(logged_in):
    full = logged_in.get("/?sp=PR002875")
    fragment = logged_in.get("/?sp=PR002875", headers=htmx_headers("frame"))
    body = fragment.get_data(as_text=True)
    assert fragment.status_code == 200
    assert "<html" not in body and 'id="sp"' not in body  # the selector is not swapped
    assert "01234567891011" in body and "Gas naturale" in body
    assert 'href="/fatture?sp=PR002875"' in body  # the menu keeps the selection
    assert set(fragment.headers["Vary"].split(", ")) >= {"HX-Request", "HX-Target"}
    assert "HX-Request" in full.headers["Vary"]
    assert body in full.get_data(as_text=True)  # the page's own frame, nothing around it


def test_plain_request_with_the_selection_renders_the_whole_page(logged_in):
    page = logged_in.get("/?sp=PR002875").get_data(as_text=True)
    assert "<html" in page
    assert re.search(r'<option value="PR002875" selected>', page)
    assert "Gas naturale" in page


def test_a_page_without_point_is_redirected_to_its_url_with_one(logged_in):
    """Every page URL names its point: back and reload then show that point."""
    first = logged_in.get("/fatture")
    assert first.status_code == 302 and first.headers["Location"] == "/fatture?sp=PR002874"
    logged_in.get("/?sp=PR002875")  # the last choice is the default for the next one
    kept = logged_in.get("/documentazione/modulistica?page=2")
    assert kept.headers["Location"] == "/documentazione/modulistica?page=2&sp=PR002875"
    assert logged_in.get("/", headers=htmx_headers("frame")).status_code == 200  # fragments: no


def test_another_customers_point_cannot_be_selected(logged_in):
    stranger = make_customer(code="009999")
    make_supply_point(stranger, code="PR999999")
    assert logged_in.get("/?sp=PR999999").status_code == 404
    assert logged_in.get("/?sp=PR999999", headers=htmx_headers("frame")).status_code == 404
    assert logged_in.get("/?sp=NOPE").status_code == 404


def test_electricity_measures_are_in_the_menu_only_for_electricity(logged_in):
    assert "Misure elettriche" in logged_in.get("/?sp=PR002874").get_data(as_text=True)
    assert "Misure elettriche" not in logged_in.get("/?sp=PR002875").get_data(as_text=True)


def test_a_customer_without_points_gets_a_clear_page(app):
    lonely = make_customer(code="005555")
    make_user(lonely)
    client = app.test_client()
    login(client, "005555", PASSWORD)
    response = client.get("/")
    assert response.status_code == 200  # nothing to select: no redirect
    page = response.get_data(as_text=True)
    assert "Nessun punto di fornitura" in page


def test_an_unknown_target_fails_loudly_in_tests_and_gets_the_whole_page_in_production(make_app):
    """A renamed id must not silently swap a whole page into a div: in tests and debug mode
    it raises; in production the customer still gets the page, and the log says why."""
    with pytest.raises(UnknownTarget, match="'nonexistent' names no block of home/home.html"):
        logged_in_customer(make_app())[0].get("/", headers=htmx_headers("nonexistent"))

    production = make_app(TESTING=False)
    client, _user = logged_in_customer(production, code="005009")
    response = client.get("/", headers=htmx_headers("nonexistent"))
    assert response.status_code == 200
    assert "<html" in response.get_data(as_text=True)
    assert {"HX-Request", "HX-Target"} <= set(response.headers["Vary"].split(", "))


def test_english_is_selectable_and_kept_on_the_user(logged_in, customer):
    response = post_form(logged_in, "/lingua", {"lang": "en", "next": "/"}, page="/")
    assert response.status_code == 303 and response.headers["Location"] == "/"
    page = logged_in.get("/", follow_redirects=True).get_data(as_text=True)
    assert '<html lang="en">' in page
    assert "Welcome ROSSI MARIO" in page
    assert User.get(User.customer == customer).language == "en"


def test_language_switch_refuses_unknown_languages_and_foreign_next(logged_in):
    assert post_form(logged_in, "/lingua", {"lang": "xx"}, page="/").status_code == 400
    response = post_form(logged_in, "/lingua", {"lang": "it", "next": "https://evil.example"}, page="/")
    assert response.headers["Location"] == "/login"


def test_formats_follow_the_locale(app):
    with app.test_request_context():
        with force_locale("it"):
            assert i18n.money(Decimal("1234.56")) == "€\u00a01.234,56"
            assert i18n.number(2969) == "2.969"
            assert i18n.local_date(date(2014, 9, 16)) == "16/09/2014"
            # Stored in UTC, shown in Rome time (UTC+2 in summer).
            assert i18n.local_datetime(datetime(2026, 7, 1, 10, 30)) == "01/07/2026 12:30"
        with force_locale("en"):
            assert i18n.money(Decimal("1234.56")) == "€\u00a01,234.56"
            assert i18n.local_date(date(2014, 9, 16)) in ("16 Sept 2014", "16 Sep 2014")  # CLDR varies


def test_the_staff_cannot_use_the_customer_area(app):
    staff = User.create(role=User.OPERATOR, email="op@utility.it", password_hash="x", confirmed_at=utcnow())
    assert staff.customer_id is None
    # Operators cannot log in yet (their second factor comes with the back office), and even a
    # session for one would be refused by the customer area.
    client = app.test_client()
    assert login(client, "op@utility.it", PASSWORD).status_code == 422


def test_every_text_has_its_english_translation(tmp_path):
    """A new or changed Italian text without its English: run `make messages`, translate."""
    root = Path(__file__).resolve().parent.parent
    pot = tmp_path / "messages.pot"
    subprocess.run(
        [str(Path(sys.executable).parent / "pybabel"), "extract", "--mapping-file", "babel.cfg", "--keywords", "_l",
         "--ignore-dirs", ".venv tests bench migrations", "--omit-header", "-o", str(pot), "."],
        cwd=root, capture_output=True, check=True,
    )
    sources = read_po(pot.open("rb"))
    english = read_po((root / "translations/en/LC_MESSAGES/messages.po").open("rb"))
    missing = []
    for message in sources:
        if not message.id:
            continue
        translated = english.get(message.id)
        strings = translated.string if translated else None
        if not strings or translated.fuzzy or (isinstance(strings, tuple) and not all(strings)):
            missing.append(message.id)
            continue
        placeholders = set(re.findall(r"%\((\w+)\)", str(message.id)))
        assert placeholders == set(re.findall(r"%\((\w+)\)", str(strings))), message.id
    assert missing == []


@pytest.mark.parametrize("language", ["it", "en"])
def test_money_is_babels_format(app, language):
    """i18n.money writes Babel's pattern out by hand, for speed: it must say the same."""
    from babel.numbers import format_currency

    values = [Decimal(n) / 100 for n in range(-150000, 150000, 997)] + [Decimal("1234567.125"), Decimal("0.015"), 7]
    with app.test_request_context(), force_locale(language):
        for value in values:
            expected = format_currency(value, "EUR", format="¤\u00a0#,##0.00;-¤\u00a0#,##0.00", locale=language,
                                       currency_digits=False)
            assert i18n.money(value) == expected, value


@pytest.mark.parametrize("language", ["it", "en"])
def test_number_is_babels_format(app, language):
    """i18n.number keeps Babel's pattern and locale parsed, for speed: it must say the same as
    Babel's format_decimal, and the template filter the page's language."""
    from babel.numbers import format_decimal

    values = [n / 7 for n in range(-150000, 150000, 997)] + [Decimal("1234567.125"), 0.05, 2.5, 7, 0]
    with app.test_request_context(), force_locale(language):
        for decimals in (0, 1, 2, 3):
            pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
            for value in values:
                assert i18n.number(value, decimals) == format_decimal(value, format=pattern, locale=language), value
        template = "{{ 1234.56|number(1) }} {{ none|number }}"
        assert app.jinja_env.from_string(template).render(page_language=language) == (
            "1.234,6 " if language == "it" else "1,234.6 ")


def test_the_brands_icon_is_served_to_every_page(make_app):
    """Browsers ask /favicon.ico on every page: it is the utility's icon, not a 404."""
    import io

    from PIL import Image

    app = make_app(PORTAL_COLOR="#7a1f5c", PORTAL_NAME="<Energia> Valle")
    client = app.test_client()
    page = client.get("/login")
    assert page.status_code == 200
    assert '<link rel="icon" href="/favicon.svg" type="image/svg+xml">' in page.get_data(as_text=True)

    svg = client.get("/favicon.svg")
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    assert 'fill="#7a1f5c"' in svg.get_data(as_text=True) and "&lt;</text>" in svg.get_data(as_text=True)

    ico = client.get("/favicon.ico")
    assert ico.status_code == 200 and ico.mimetype == "image/vnd.microsoft.icon"
    assert "public" in ico.headers["Cache-Control"]
    icon = Image.open(io.BytesIO(ico.data))
    assert icon.format == "ICO" and {(16, 16), (32, 32), (48, 48)} <= set(icon.info["sizes"])
    icon.size = (32, 32)
    assert icon.convert("RGB").getpixel((3, 16)) == (0x7A, 0x1F, 0x5C)  # the brand's colour at the edge


def test_the_welcome_promises_the_sections_that_do_it(app, logged_in):
    """Each promise of the Home Page's welcome names a section of the menu, which answers."""
    from views.customer_area import MENU
    from views.home import PROMISES

    response = logged_in.get("/?sp=PR002874")
    assert response.status_code == 200
    welcome = re.search(r'<p class="lead">(.*?)</p>', response.get_data(as_text=True), re.S).group(1)
    welcome = welcome.replace("&#39;", "'")
    menu = dict(MENU)
    for endpoint, promise in PROMISES:
        assert str(promise) in welcome and endpoint in menu, (endpoint, welcome)
        with app.test_request_context():
            url = url_for(endpoint)
        assert logged_in.get(url + "?sp=PR002874").status_code == 200, url
    assert re.search(r"Da qui puoi [^.]+, [^.]+ e [^.]+, quando vuoi\.", welcome)  # "a, b e c", as Italian lists


def test_an_htmx_answer_carries_more_blocks_out_of_band(app):
    """render(template, "block", ...): the target's block, then each other block wrapped to
    swap into the element of its id; a whole page is unchanged; a missing block is loud."""
    from jinja2 import ChoiceLoader, DictLoader

    from views.rendering import render

    app.jinja_loader = ChoiceLoader([DictLoader({"oob-test.html": (
        '{% extends "layout.html" %}{% block content %}<ul id="ticket-list">{% block ticket_list %}'
        '<li>{{ ticket }}</li>{% endblock %}</ul><div id="ticket-form">{% block ticket_form %}<form>ok</form>'
        '{% endblock %}</div>{% endblock %}')}), app.jinja_loader])
    htmx = {"HX-Request": "true", "HX-Target": "ticket-form"}
    with app.test_request_context("/", headers=htmx):
        body = render("oob-test.html", "ticket_list", ticket="<Guasto>").get_data(as_text=True)
    assert body == ('<form>ok</form><div id="ticket-list" hx-swap-oob="innerHTML"><li>&lt;Guasto&gt;</li></div>')
    with app.test_request_context("/"):
        page = render("oob-test.html", "ticket_list", ticket="Guasto").get_data(as_text=True)
    assert page.count("<li>Guasto</li>") == 1 and "hx-swap-oob" not in page
    with app.test_request_context("/", headers=htmx), pytest.raises(UnknownTarget, match="no block menu_badge"):
        render("oob-test.html", "menu_badge", ticket="Guasto")


def footer_of(response):
    assert response.status_code == 200
    return re.search(r'<footer class="footer">(.*?)</footer>', response.get_data(as_text=True), re.S).group(1)


def test_the_footer_says_who_runs_the_portal_and_how_to_reach_it(make_app):
    """Every page, before and after login, in both languages: the company, its office and partita
    IVA, customer service's phone (a link a phone dials) with its hours, and the gas emergency
    number. A page's htmx fragment carries no footer: the page around it has one."""
    app = make_app(**COMPANY_SETTINGS)
    customer = make_customer(code="005007", name="ROSSI MARIO")
    make_supply_point(customer, code="PR002874")
    make_user(customer)
    client = app.test_client()
    public = footer_of(client.get("/login"))
    login(client, "005007", PASSWORD)
    for footer in (public, footer_of(client.get("/fatture", follow_redirects=True))):
        assert "<span>Energia &amp; Gas Romagna S.p.A.</span>" in footer
        assert "<span>Via Esempio 1, 48121 Ravenna (RA)</span>" in footer
        assert "<span>P.IVA 01234560397</span>" in footer  # as checked at start, without the IT and spaces
        assert 'Servizio clienti: <a href="tel:0544123456">0544 123456</a> (lun-ven 8:30-17:30)</span>' in footer
        assert ('<span class="emergency">Pronto intervento gas, 24 ore su 24: '
                '<a href="tel:800900999">800 900 999</a></span>') in footer
    fragment = client.get("/fatture?sp=PR002874", headers={**htmx_headers("frame"), "HX-Current-URL": "http://localhost/fatture"})
    assert fragment.status_code == 200 and "<footer" not in fragment.get_data(as_text=True)
    assert post_form(client, "/lingua", {"lang": "en", "next": "/fatture"}, page="/fatture").status_code == 303
    english = footer_of(client.get("/fatture", follow_redirects=True))
    assert "<span>VAT no. 01234560397</span>" in english
    assert "Gas emergency service, 24 hours a day: " in english and "Customer service: " in english


def test_without_company_details_the_footer_shows_the_portals_name_alone(make_app):
    footer = footer_of(make_app(PORTAL_NAME="Sportello Test").test_client().get("/login"))
    assert "<span>Sportello Test</span>" in footer
    assert "P.IVA" not in footer and "Pronto intervento" not in footer and "tel:" not in footer


@pytest.mark.parametrize("number", ["01234560398", "0123456039", "IT01234560397X", "partita iva"])
def test_a_wrong_partita_iva_stops_the_start_saying_why(make_app, number):
    from app import ConfigError
    with pytest.raises(ConfigError, match=rf"PORTAL_VAT_NUMBER '{re.escape(number)}' is not a valid partita IVA"):
        make_app(PORTAL_VAT_NUMBER=number)
