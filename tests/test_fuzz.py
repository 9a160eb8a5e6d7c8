"""The forms and URL arguments of the portal, the back office and the API fuzzed with hypothesis:
long strings, unicode (right-to-left, combining marks, emoji, NUL and control characters), HTML
and JavaScript, SQL, huge and negative numbers, impossible dates. Whatever is sent: never a 5xx,
and an HTML answer never holds a payload's markup unescaped.

A form's fields are read from its page, so a field added tomorrow is fuzzed too. Examples are
few per form (EXAMPLES, 50 per URL list) and derandomized: the same inputs on every run, in CI as here.
"""
import os
from html.parser import HTMLParser
from urllib.parse import quote, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ratelimit
from models import ApiToken, Ticket, TicketMessage, token_digest
from tests.factories import PASSWORD, make_invoice
from tests.helpers import csrf_from, login
from tests.test_url_map import staff_client

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", 30))  # FUZZ_EXAMPLES=1000 for a deeper search by hand
FUZZ_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Payloads, each with the markup that must never come back as it was sent (only escaped).
MARKUP = {
    "<script>alert(1)</script>": "<script>alert(1)",
    '"><img src=x onerror=alert(1)>': "<img src=x onerror",
    "'><svg onload=alert(1)>": "<svg onload",
    '" autofocus onfocus="alert(1)': '" autofocus onfocus=',
    "</textarea><fuzz-marker>": "<fuzz-marker>",
    "javascript:alert(1)//<fuzz-marker>": "<fuzz-marker>",
}
OTHERS = [
    "' OR '1'='1", "1; DROP TABLE customer; --", "%' UNION SELECT password_hash FROM \"user\" --", "\\", "%", "_",
    "\x00", "a\x00b", "\x01\x02\x1b[31m\x7f", "\r\n\r\nSet-Cookie: x=1", "\u202egnp.exe", "\u200f\u05e9\u05dc\u05d5\u05dd",
    "e\u0301\u0301\u0301\u0301", "😀👨‍👩‍👧‍👦🇮🇹", "\ufeff", "\ud7ff\ue000\uffff", "ｆｕｌｌｗｉｄｔｈ",
    "A" * 5000, "😀" * 2000, "9" * 40, "-1", "0", "-9223372036854775809", "1e309", "NaN", "-0", "1.5", "1,5",
    "2026-02-30", "2026-13-01", "0000-00-00", "9999-12-31", "31/12/99999", "-2026-01-01", "2026-01-01T25:61",
    "../../../etc/passwd", "%00", "%2e%2e%2f", "{{7*7}}", "${7*7}", "%s%n%x", "null", "[]", "{}",
]
PAYLOADS = list(MARKUP) + OTHERS
TELLTALES = sorted(set(MARKUP.values()))

fuzz_text = st.one_of(
    st.sampled_from(PAYLOADS),
    st.text(max_size=80),  # any code point hypothesis likes: control characters, combining marks...
    st.builds(lambda before, payload, after: before + payload + after,
              st.text(max_size=10), st.sampled_from(PAYLOADS), st.text(max_size=10)),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.dates().map(lambda d: d.isoformat()),
    st.dates().map(lambda d: d.strftime("%d/%m/%Y")),
)


def check(response, what):
    """Never a 5xx; in an HTML answer, no payload's markup as it was sent."""
    assert response.status_code < 500, f"{what} -> {response.status_code}"
    if response.mimetype == "text/html":
        body = response.get_data(as_text=True)
        for telltale in TELLTALES:
            assert telltale not in body, f"{what}: {telltale!r} unescaped in the page"


# --- the forms of the pages, read from the pages -------------------------------------------------------

KEPT = {"sp"}  # the selected point as the page has it: a fuzzed one is a 404 before the filters (fuzzed below)


class Forms(HTMLParser):
    """Each form of a page: {"action", "method", "target", "fields": [names]} (no file fields)."""

    def __init__(self):
        super().__init__()
        self.forms, self.form = [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            method = "post" if attrs.get("hx-post") else attrs.get("method", "get").lower()
            self.form = {"action": attrs.get("hx-post") or attrs.get("action"), "method": method,
                         "target": (attrs.get("hx-target") or "frame").lstrip("#"), "fields": [], "kept": {}}
            self.forms.append(self.form)
        elif (self.form is not None and tag in ("input", "select", "textarea", "button") and attrs.get("name")
              and attrs.get("type") != "file" and attrs["name"] != "csrf_token"
              and attrs["name"] not in self.form["fields"]):
            if attrs["name"] in KEPT:
                self.form["kept"][attrs["name"]] = attrs.get("value", "")
            else:
                self.form["fields"].append(attrs["name"])

    def handle_endtag(self, tag):
        if tag == "form":
            self.form = None


def form_on(client, page, method, action):
    """The page's form that sends to `action` (a path; None: the page's own) by `method`, the
    one with most fields (the supply-point switch is a GET form of every page too), with the
    page's URL and CSRF token."""
    response = client.get(page, follow_redirects=True)
    assert response.status_code == 200, page
    parser = Forms()
    parser.feed(response.get_data(as_text=True))
    page_url = response.request.path + ("?" + response.request.query_string.decode() if response.request.query_string else "")
    found = [form for form in parser.forms if form["method"] == method
             and urlsplit(form["action"] or page_url).path == (action or urlsplit(page_url).path)]
    assert found, f"no form sending to {action} on {page}: {[(f['method'], f['action']) for f in parser.forms]}"
    return max(found, key=lambda form: len(form["fields"])), page_url, csrf_from(response) if method == "post" else None


def fuzz_form(client, page, method, action):
    form, page_url, token = form_on(client, page, method, action)
    assert form["fields"], f"{page}: the form to {action} has no field"
    url = form["action"] or page_url
    headers_htmx = {"HX-Request": "true", "HX-Target": form["target"], "HX-Current-URL": "http://localhost" + page_url}

    @FUZZ_SETTINGS
    @given(values=st.fixed_dictionaries({name: fuzz_text for name in form["fields"]}), htmx=st.booleans())
    def send(values, htmx):
        headers = headers_htmx if htmx else {}
        if form["method"] == "post":
            response = client.post(url, data=dict(values, csrf_token=token, **form["kept"]), headers=headers)
        else:
            response = client.get(urlsplit(url).path, query_string=dict(values, **form["kept"]), headers=headers)
        check(response, f"{form['method'].upper()} {url} {values!r}")

    send()
    return form["fields"]


@pytest.fixture
def unlimited(monkeypatch):
    """Rate limits out of the way: every example reaches the form's own checks."""
    for name, (_, seconds) in list(ratelimit.LIMITS.items()):
        monkeypatch.setitem(ratelimit.LIMITS, name, (10**6, seconds))


@pytest.fixture
def customer_client(app, owner, point, unlimited):
    """The owner logged in, with an invoice and a ticket to filter and answer."""
    make_invoice(owner.customer, point)
    ticket = Ticket.create(customer=owner.customer, subject="Domanda")
    TicketMessage.create(ticket=ticket, body="Quando arriva la bolletta?")
    client = app.test_client()
    assert login(client, "005007", PASSWORD).status_code == 303
    return client


ANONYMOUS_FORMS = [
    ("/login", "post", "/login"),
    ("/registrazione", "post", "/registrazione"),
    ("/password-dimenticata", "post", "/password-dimenticata"),
    ("/username-dimenticato", "post", "/username-dimenticato"),
    ("/login", "post", "/lingua"),  # the language switch and the page to go back to
]
CUSTOMER_FORMS = [
    ("/dati-anagrafici", "post", "/dati-anagrafici/contatti"),
    ("/dati-anagrafici", "post", "/dati-anagrafici/chiavi-api"),
    ("/autolettura", "post", "/autolettura"),
    ("/ticket/nuovo", "post", "/ticket/nuovo"),
    ("/ticket/{ticket}", "post", "/ticket/{ticket}/risposta"),
    ("/fatture", "get", None),  # filters: year, status, scope, page
    ("/misure-elettriche", "get", None),  # the interval
    ("/grafici-avanzati", "get", None),  # the chart's date picker and view
    ("/prelievi-fatturati", "get", None),
    ("/download", "get", None),
    ("/delegati", "post", "/delegati"),
    ("/cambio-password", "post", "/cambio-password"),
]
STAFF_FORMS = [
    ("/backoffice/", "post", "/backoffice/"),  # the customers' search (htmx posts it)
    ("/backoffice/ticket", "get", None),
    ("/backoffice/registro", "get", None),
    ("/backoffice/risposte-predefinite", "post", "/backoffice/risposte-predefinite"),
    ("/backoffice/ticket/{ticket}", "post", "/backoffice/ticket/{ticket}/risposta"),
    ("/backoffice/ticket/{ticket}", "post", "/backoffice/ticket/{ticket}/nota"),
    ("/backoffice/ticket/{ticket}", "post", "/backoffice/ticket/{ticket}/assegna"),
    ("/backoffice/ticket/{ticket}", "post", "/backoffice/ticket/{ticket}/stato"),
    ("/backoffice/operatori", "post", "/backoffice/operatori"),
]


@pytest.mark.parametrize("page, method, action", ANONYMOUS_FORMS)
def test_anonymous_forms(app, unlimited, page, method, action):
    fuzz_form(app.test_client(), page, method, action)


@pytest.mark.parametrize("page, method, action", CUSTOMER_FORMS)
def test_customer_forms(app, customer_client, page, method, action):
    ticket = Ticket.get().id
    fuzz_form(customer_client, page.format(ticket=ticket), method, action and action.format(ticket=ticket))


@pytest.mark.parametrize("page, method, action", STAFF_FORMS)
def test_back_office_forms(app, customer_client, page, method, action):
    staff = staff_client(app)
    ticket = Ticket.get().id
    fuzz_form(staff, page.format(ticket=ticket), method, action and action.format(ticket=ticket))


def test_the_forms_fuzzed_are_the_ones_meant(app, customer_client):
    """Each target above found its form with the fields of today (a renamed form fails here
    rather than quietly fuzzing nothing)."""
    form, _, _ = form_on(customer_client, "/autolettura", "post", "/autolettura")
    assert {"date", "value_F1", "submission", "kept_photo"} <= set(form["fields"])
    form, _, _ = form_on(customer_client, "/misure-elettriche", "get", None)
    assert {"dal", "al"} <= set(form["fields"]) and form["kept"]["sp"] == "PR002874"
    form, _, _ = form_on(customer_client, "/ticket/nuovo", "post", "/ticket/nuovo")
    assert {"subject", "message", "category", "supply_point"} <= set(form["fields"])


# --- URL arguments -------------------------------------------------------------------------------------------

CUSTOMER_URLS = ["/ticket/{}", "/fatture/{}/pdf", "/documentazione/{}", "/fatture?sp={}", "/grafici-avanzati?data={}",
                 "/misure-elettriche.csv?dal={}&al={}", "/prelievi-fatturati.svg?anno={}&vista={}",
                 "/consumi-recenti.svg?sp={}", "/autolettura/{}/foto"]
PUBLIC_URLS = ["/password/nuova/{}", "/registrazione/conferma/{}", "/invito/{}", "/email/conferma/{}",
               "/login?next={}", "/static/{}"]
STAFF_URLS = ["/backoffice/clienti/{}", "/backoffice/?q={}&pagina={}", "/backoffice/ticket/{}",
              "/backoffice/importazioni/{}"]
API_URLS = ["/api/v1/supply-points/{}", "/api/v1/supply-points/PR002874/consumption?period_from={}&period_to={}",
            "/api/v1/supply-points/PR002874/consumption?group_by={}&page={}&page_size={}",
            "/api/v1/supply-points/PR002874/green-button?period_from={}", "/api/v1/invoices?supply_point={}&page={}",
            "/api/v1/{}"]


def fuzz_urls(client, templates, headers=None):
    @settings(FUZZ_SETTINGS, max_examples=EXAMPLES * 5 // 3)
    @given(template=st.sampled_from(templates), values=st.lists(fuzz_text, min_size=3, max_size=3))
    def send(template, values):
        url = template.format(*(quote(value, safe="") for value in values))
        check(client.get(url, headers=headers or {}), f"GET {url}")

    send()


def test_url_arguments_of_the_customers_area(app, customer_client):
    fuzz_urls(customer_client, CUSTOMER_URLS)


def test_url_arguments_of_the_public_pages(app, unlimited):
    fuzz_urls(app.test_client(), PUBLIC_URLS)


def test_url_arguments_of_the_back_office(app, customer_client):
    fuzz_urls(staff_client(app), STAFF_URLS)


def test_query_arguments_of_the_api(app, customer_client, owner):
    ApiToken.create(user=owner, name="fuzz", token_hash=token_digest("spt_fuzz"))
    fuzz_urls(app.test_client(), API_URLS, headers={"Authorization": "Bearer spt_fuzz"})


# --- what the fuzzing found ------------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["/backoffice/registro?al=9999-12-31", "/backoffice/registro?dal=0001-01-01",
                                 "/backoffice/registro?dal=1899-12-31&al=3000-01-01"])
def test_a_date_past_the_years_of_a_url_is_said_not_a_500(app, url):
    """The audit log's "al" is read up to the end of its day: the day after 31/12/9999 overflowed."""
    response = staff_client(app).get(url)
    assert response.status_code == 200
    assert "Scegli una data tra il 1900 e il 2999." in response.get_data(as_text=True)


@pytest.mark.parametrize("canned", [str(2**63), "²", "1" * 40, " 1"])
def test_a_canned_reply_that_is_not_offered_is_said_not_a_500(app, customer_client, canned):
    """"Inserisci" with a value no option has: a number past 64 bits overflowed SQLite, and "²"
    (a digit to str.isdigit) was no integer to PostgreSQL."""
    staff = staff_client(app)
    ticket = Ticket.get().id
    page = staff.get(f"/backoffice/ticket/{ticket}")
    assert page.status_code == 200
    response = staff.post(f"/backoffice/ticket/{ticket}/risposta",
                          data={"csrf_token": csrf_from(page), "canned": canned, "insert": "", "message": "Buongiorno"})
    assert response.status_code == 422
    assert "Scegli una risposta predefinita." in response.get_data(as_text=True)
    assert TicketMessage.select().count() == 1  # nothing sent


@pytest.mark.parametrize("who, method, url, data", [
    ("anyone", "POST", "/password-dimenticata", {"user": "005007\x00"}),
    ("customer", "POST", "/dati-anagrafici/chiavi-api", {"name": "Domotica\x00"}),
    ("staff", "POST", "/backoffice/", {"q": "ROSSI\x00"}),
    ("staff", "GET", "/backoffice/registro?utente=a%00b", None),
    ("staff", "GET", "/backoffice/clienti/005007%00", None),
    ("customer", "GET", "/fatture?sp=PR002874&stato=%00", None),
])
def test_a_nul_character_is_a_400_not_a_500(app, customer_client, who, method, url, data):
    """PostgreSQL takes no NUL in a text: wherever one reached a query it was a 500 there."""
    client = {"anyone": app.test_client(), "customer": customer_client, "staff": None}[who] or staff_client(app)
    if data is not None:  # the session's token, from any of its pages
        page = client.get({"anyone": "/login", "customer": "/", "staff": "/backoffice/"}[who], follow_redirects=True)
        assert page.status_code == 200
        data = dict(data, csrf_token=csrf_from(page))
    response = client.open(url, method=method, data=data)
    assert response.status_code == 400
    assert "La richiesta non è valida." in response.get_data(as_text=True)


def test_a_nul_character_in_an_api_query_is_the_apis_400(app, customer_client, owner):
    ApiToken.create(user=owner, name="fuzz", token_hash=token_digest("spt_fuzz"))
    response = app.test_client().get("/api/v1/supply-points/PR002874%00", headers={"Authorization": "Bearer spt_fuzz"})
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json" and response.json["status"] == 400
