"""Every rule of the app's URL map, read from the map itself: a route added tomorrow is checked
here at once, or makes the first test fail until it is classified below.

- anonymous: every method of every route is sent to the login (401 for htmx and the API, 404
  when nothing is there) unless it is one of the PUBLIC pages;
- a logged-in customer gets 404 on every back-office route, an operator 403 on the customer's;
- every id a customer's request carries (in the path, ?sp=, the form, the API's path and query)
  answers 404 to another customer, with real rows of the owner made by the factories;
- every state-changing request without a CSRF token (plain and htmx) is refused with a 400
  page and changes nothing in the database; the API (no cookie, no CSRF) is read-only: 405.

Each test goes through all the routes and lists every failure in one message, naming the
endpoint, rather than one test per route (the set-up would be most of the time).
"""
import itertools
import re

import pyotp
import pytest
from flask import url_for
from werkzeug.routing import AnyConverter, IntegerConverter

import accounts
import forms
import models
from models import (
    ApiToken,
    CannedReply,
    ImportJob,
    User,
    token_digest,
)
from tests.factories import PASSWORD, make_customer, make_invoice, make_supply_point, make_user, store_pdf
from tests.helpers import csrf_from, customer_area_blueprints, login, post_form, routes_app, sent_to_login
from tests.import_data import pdf_bytes
from tests.test_documents import store_document
from tests.test_security import self_reading_with_photo, ticket_with_attachment

ROUTES_APP = routes_app()  # at import: reading its routes binds the models to it
STAFF_PASSWORD = "Sportello-Staff-2026!"

# --- what each endpoint is -----------------------------------------------------------------------

PUBLIC = "public"      # anyone: the pages before a login, the emailed links, assets
SIGNED_IN = "signed-in"  # any session, whoever's (logout, the second factor's step)
CUSTOMER = "customer"  # the customer's area (blueprints that load it)
STAFF = "staff"        # the back office
API = "api"            # the personal data API: a Bearer key, never the session

# Endpoints outside the customer's area, the back office and the API, each with its audience.
# A new one fails test_every_endpoint_is_classified until it is added here.
OUTSIDE_THE_AREAS = {
    "auth.login": PUBLIC,
    "errors.too_large": PUBLIC,  # nginx's page for a request over its size limit
    "auth.forgot_password": PUBLIC,
    "auth.forgot_password_sent": PUBLIC,
    "auth.forgot_username": PUBLIC,
    "auth.forgot_username_sent": PUBLIC,
    "auth.reset_password": PUBLIC,  # the emailed token is the key
    "registration.register": PUBLIC,
    "registration.register_user": PUBLIC,  # step 2: sent back to step 1 without it
    "registration.register_validate": PUBLIC,
    "registration.registration_sent": PUBLIC,
    "registration.resend_confirmation": PUBLIC,
    "registration.confirm": PUBLIC,
    "registration.privacy_notice": PUBLIC,
    "invitation.accept": PUBLIC,
    "email_change.confirm_email": PUBLIC,
    "language.set_language": PUBLIC,
    "branding_css": PUBLIC,
    "favicon_ico": PUBLIC,
    "favicon_svg": PUBLIC,
    "static": PUBLIC,
    "health.healthz": PUBLIC,  # the load balancer's and monitoring's probe
    "api.openapi": PUBLIC,  # the API's description needs no key
    "auth.logout": SIGNED_IN,
    "auth.second_factor": SIGNED_IN,
}


def audience(app, endpoint):
    """Who may use the endpoint (one of the names above), or None: not classified."""
    if endpoint in OUTSIDE_THE_AREAS:
        return OUTSIDE_THE_AREAS[endpoint]
    blueprint = endpoint.rpartition(".")[0]
    if blueprint in customer_area_blueprints(app):
        return CUSTOMER
    return {"backoffice": STAFF, "api": API}.get(blueprint)


# What each path argument names: (endpoint, argument) first, then the argument alone. A new
# argument fails test_every_endpoint_is_classified until it is added here.
ARGUMENT_KINDS = {
    ("backoffice.customer", "code"): "customer_code",
    "code": "point_code",  # the API's supply point
    "invoice_id": "invoice",
    "document_id": "document",
    "reading_id": "reading",
    "ticket_id": "ticket",
    "attachment_id": "attachment",
    "reply_id": "canned_reply",
    "job_id": "import_job",
    "user_id": "user",
    "token": "emailed_token",
    "step": "registration_step",
    "filename": "static_file",
    "path": "api_path",
    "action": "choice",  # an `any(...)`: each of its values
}
# The kinds that belong to one customer: another customer's must be a 404.
CUSTOMERS_KINDS = {"point_code", "invoice", "document", "reading", "ticket", "attachment"}
# Ids that travel in a form's body rather than the path: (endpoint, field, kind). Every form
# with an id field (forms.py, NumberRange up to 2**63 - 1) must be here.
BODY_IDS = {
    "RevokeApiTokenForm": ("account.revoke_api_token", "token", "api_token"),
    "RevokeDelegateForm": ("delegates.revoke_delegate", "delegate", "delegate"),
}
# Query arguments of the API that name a customer's object.
API_QUERY_IDS = {"api.invoices": ("supply_point", "point_code")}

NOWHERE = {"invoice": 987654, "document": 987654, "reading": 987654, "ticket": 987654, "attachment": 987654,
           "canned_reply": 987654, "import_job": 987654, "user": 987654, "point_code": "PR999999",
           "customer_code": "999999", "emailed_token": "not-a-token", "registration_step": "cliente",
           "static_file": "style.css", "api_path": "nothing-here"}


def argument_kind(endpoint, argument):
    return ARGUMENT_KINDS.get((endpoint, argument)) or ARGUMENT_KINDS.get(argument)


def all_rules(app):
    return sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint))


def methods_of(rule):
    return sorted(rule.methods - {"HEAD", "OPTIONS"})


def urls_of(app, rule, values, **query):
    """The rule's URLs with `values` (kind -> value) for its arguments; an `any(...)` gives one
    URL per choice."""
    choices = []
    for name, converter in rule._converters.items():
        if isinstance(converter, AnyConverter):
            choices.append([(name, item) for item in sorted(converter.items)])
        else:
            choices.append([(name, values[argument_kind(rule.endpoint, name)])])
    with app.test_request_context():  # closed before the requests: g would leak into them
        return [url_for(rule.endpoint, **dict(combination), **rule.defaults or {}, **query)
                for combination in itertools.product(*choices)]


def test_every_endpoint_is_classified():
    problems = []
    for rule in all_rules(ROUTES_APP):
        if audience(ROUTES_APP, rule.endpoint) is None:
            problems.append(f"{rule.endpoint} ({rule.rule}): who may use it? Add it to OUTSIDE_THE_AREAS")
        for name, converter in rule._converters.items():
            if not isinstance(converter, AnyConverter) and argument_kind(rule.endpoint, name) is None:
                problems.append(f"{rule.endpoint} ({rule.rule}): what is <{name}>? Add it to ARGUMENT_KINDS")
            if (isinstance(converter, IntegerConverter) and audience(ROUTES_APP, rule.endpoint) == CUSTOMER
                    and argument_kind(rule.endpoint, name) not in CUSTOMERS_KINDS):
                problems.append(f"{rule.endpoint}: <{name}> in a customer's URL must be a kind of CUSTOMERS_KINDS")
    endpoints = {rule.endpoint for rule in ROUTES_APP.url_map.iter_rules()}
    problems += [f"{name}: in OUTSIDE_THE_AREAS but no such endpoint" for name in OUTSIDE_THE_AREAS
                 if name not in endpoints]
    assert not problems, "\n".join(problems)


def test_every_form_that_carries_an_id_is_known():
    """An id in a form's body is checked like one in the path (test_body_ids_...)."""
    from wtforms import Form, IntegerField
    from wtforms.validators import NumberRange

    with_ids = set()
    for name, form in vars(forms).items():
        if isinstance(form, type) and issubclass(form, Form):
            for field in vars(form).values():
                validators = getattr(field, "kwargs", {}).get("validators", [])
                if getattr(field, "field_class", None) is IntegerField and any(
                        isinstance(v, NumberRange) and v.max == 2**63 - 1 for v in validators):
                    with_ids.add(name)
    assert with_ids == set(BODY_IDS), f"forms with an id field: {sorted(with_ids)}; add the new ones to BODY_IDS"


# --- the people and their objects -------------------------------------------------------------------

def customers_objects(app, code):
    """A customer with a login and one of each object a URL names: kind -> id or code."""
    customer = make_customer(code=code)
    point = make_supply_point(customer)
    user = make_user(customer, username=f"utente{code}")
    invoice = make_invoice(customer, point, pdf_path=store_pdf(app, pdf_bytes("Fattura " + code))[0])
    document = store_document(app, "Contratto", "personal", customer=customer)
    reading = self_reading_with_photo(app, customer)
    ticket, attachment = ticket_with_attachment(app, customer)
    api_token = ApiToken.create(user=user, name="Domotica", token_hash=token_digest("spt_key_" + code))
    delegate = make_user(customer, role=User.DELEGATE, delegate_rights=User.READ, invited_by=user,
                         username=f"delegato{code}", email=f"delegato{code}@example.it")
    return {"customer_code": code, "point_code": point.code, "invoice": invoice.id, "document": document.id,
            "reading": reading.id, "ticket": ticket.id, "attachment": attachment.id, "api_token": api_token.id,
            "delegate": delegate.id, "user": user.id, "api_key": "spt_key_" + code,
            "emailed_token": "not-a-token", "registration_step": "cliente", "static_file": "style.css",
            "api_path": "nothing-here"}


def staff_client(app):
    """An administrator, logged in with password and second factor (enrolled on the way)."""
    with app.app_context():
        accounts.create_staff("operatore@utility.it", STAFF_PASSWORD, User.ADMIN)
    staff = app.test_client()
    assert login(staff, "operatore@utility.it", STAFF_PASSWORD).status_code == 303
    page = staff.get("/login/codice")
    assert page.status_code == 200
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', page.get_data(as_text=True)).group(1)
    assert post_form(staff, "/login/codice", {"code": pyotp.TOTP(secret).now()}).status_code == 303
    return staff


@pytest.fixture
def people(app):
    """The owner's and a stranger's objects, a staff member's, and their logged-in clients."""
    owner = customers_objects(app, "005007")
    stranger = customers_objects(app, "009999")
    staff = staff_client(app)
    operator = User.get(User.email == "operatore@utility.it")
    canned = CannedReply.create(title="Grazie", body="Grazie della segnalazione.")
    job = ImportJob.create(started_by=operator, folder="/nowhere", status=ImportJob.FAILED, report='{"problems": ["x"]}')
    staff_objects = dict(owner, canned_reply=canned.id, import_job=job.id, user=operator.id)

    clients = {"staff": staff}
    for name, code in (("owner", "005007"), ("stranger", "009999")):
        clients[name] = app.test_client()
        assert login(clients[name], code, PASSWORD).status_code == 303
    return {"owner": owner, "stranger": stranger, "staff": staff_objects, "clients": clients}


def database_rows():
    """Every row of every table: what a refused request must leave as it was."""
    return {model.__name__: sorted(map(repr, model.select().tuples())) for model in models.ALL_MODELS}


HTMX = {"HX-Request": "true", "HX-Target": "frame", "HX-Current-URL": "http://localhost/"}


# --- anonymous ---------------------------------------------------------------------------------------

def test_anonymous_visitors_reach_only_the_public_pages(app):
    client = app.test_client()
    token = csrf_from(client.get("/login"))  # valid: the login check answers, not CSRF's
    problems = []
    for rule in all_rules(app):
        who = audience(app, rule.endpoint)
        for method, url in itertools.product(methods_of(rule), urls_of(app, rule, NOWHERE)):
            data = {"csrf_token": token} if method != "GET" else None
            for headers in ({}, HTMX):
                response = client.open(url, method=method, data=data, headers=headers)
                status = response.status_code
                label = f"{rule.endpoint}: {method} {url}{' (htmx)' if headers else ''} -> {status}"
                if status >= 500:
                    problems.append(label)
                elif who == PUBLIC:
                    continue
                elif who == API:
                    if status != 401 or response.mimetype != "application/problem+json":
                        problems.append(label + ", not the API's 401")
                elif headers and who in (CUSTOMER, STAFF):
                    if status != 401 or not response.headers.get("HX-Redirect", "").startswith("/login"):
                        problems.append(label + ", not a 401 sending htmx to the login")
                elif not (sent_to_login(response) or status == 303 and response.headers["Location"] == "/login"
                          or status == 404):
                    problems.append(label + ": a page for anyone? Then list it in OUTSIDE_THE_AREAS as PUBLIC")
    assert not problems, "\n".join(problems)


def test_the_public_pages_open_without_a_login(app):
    client = app.test_client()
    problems = []
    for rule in all_rules(app):
        if audience(app, rule.endpoint) != PUBLIC or "GET" not in rule.methods:
            continue
        for url in urls_of(app, rule, NOWHERE):
            response = client.get(url)
            # 200, or a page that says why not: an emailed link that is no longer valid (410),
            # step 2 of the registration before step 1 (303 to it), the page nginx shows for a
            # request over its size limit (413).
            if response.status_code not in (200, 303, 410, 413) or sent_to_login(response):
                problems.append(f"{rule.endpoint}: GET {url} -> {response.status_code}")
    assert not problems, "\n".join(problems)


# --- customers and staff, each on the other's side -----------------------------------------------------

def test_customers_get_404_on_every_back_office_route_and_staff_403_on_the_customers(app, people):
    customer, staff = people["clients"]["owner"], people["clients"]["staff"]
    customer_token = csrf_from(customer.get("/", follow_redirects=True))
    staff_token = csrf_from(staff.get("/backoffice/"))
    before = database_rows()
    problems = []
    for rule in all_rules(app):
        who = audience(app, rule.endpoint)
        if who == STAFF:
            client, token, expected, values = customer, customer_token, 404, people["staff"]
        elif who == CUSTOMER:
            client, token, expected, values = staff, staff_token, 403, people["owner"]
        else:
            continue
        for method, url in itertools.product(methods_of(rule), urls_of(app, rule, values)):
            for headers in ({}, HTMX):
                response = client.open(url, method=method, headers=headers,
                                       data={"csrf_token": token} if method != "GET" else None)
                if response.status_code != expected:
                    problems.append(f"{rule.endpoint}: {method} {url}{' (htmx)' if headers else ''} -> "
                                    f"{response.status_code}, not {expected}")
    assert not problems, "\n".join(problems)
    assert database_rows() == before


def test_a_customers_session_opens_nothing_of_the_api(app, people):
    client = people["clients"]["owner"]
    problems = []
    for rule in all_rules(app):
        if audience(app, rule.endpoint) != API:
            continue
        for method, url in itertools.product(methods_of(rule), urls_of(app, rule, people["owner"])):
            status = client.open(url, method=method).status_code
            if status != 401:
                problems.append(f"{rule.endpoint}: {method} {url} with a session, no key -> {status}")
    assert not problems, "\n".join(problems)


# --- another customer's ids ------------------------------------------------------------------------------

def test_every_id_in_a_customers_path_answers_404_to_another_customer(app, people):
    """The owner reaches each object; the stranger and an id that does not exist get the same
    404. Writes carry a valid token and an empty form: the owner's is refused by the form (422),
    the others by the ownership check, before the form."""
    owner, stranger = people["clients"]["owner"], people["clients"]["stranger"]
    tokens = {client: csrf_from(client.get("/", follow_redirects=True)) for client in (owner, stranger)}
    problems, checked = [], set()
    for rule in all_rules(app):
        if audience(app, rule.endpoint) != CUSTOMER or not {
                argument_kind(rule.endpoint, name) for name in rule.arguments} & CUSTOMERS_KINDS:
            continue
        checked.add(rule.endpoint)
        for method in methods_of(rule):
            mine = urls_of(app, rule, people["owner"])
            missing = urls_of(app, rule, NOWHERE)
            for client, urls, expected in ((owner, mine, "found"), (stranger, mine, 404), (owner, missing, 404)):
                for url in urls:
                    if method == "GET":
                        # A page is first sent to its URL with ?sp= (a file is not): the answer after that counts.
                        status = client.get(url, follow_redirects=True).status_code
                    else:
                        status = client.open(url, method=method, data={"csrf_token": tokens[client]}).status_code
                    if (status == 404) != (expected == 404) or status >= 500:
                        who = "owner" if client is owner else "stranger"
                        problems.append(f"{rule.endpoint}: {method} {url} by the {who} -> {status}")
    assert not problems, "\n".join(problems)
    # The walk met the id-bearing routes of today (a new one is walked without a word here).
    assert {"invoices.invoice_pdf", "documents.document_file", "readings.reading_photo", "tickets.ticket",
            "tickets.reply", "tickets.attachment"} <= checked


def test_another_customers_supply_point_is_a_404_on_every_customer_route(app, people):
    """?sp= names the point every page of the area shows; everything else in the URL is the
    stranger's own, so the 404 comes from the point."""
    stranger = people["clients"]["stranger"]
    token = csrf_from(stranger.get("/", follow_redirects=True))
    before = database_rows()
    problems = []
    for rule in all_rules(app):
        if audience(app, rule.endpoint) != CUSTOMER:
            continue
        for method, url in itertools.product(methods_of(rule),
                                             urls_of(app, rule, people["stranger"], sp=people["owner"]["point_code"])):
            for headers in ({}, HTMX):
                response = stranger.open(url, method=method, headers=headers,
                                         data={"csrf_token": token} if method != "GET" else None)
                if response.status_code != 404:
                    problems.append(f"{rule.endpoint}: {method} {url} -> {response.status_code}")
    assert not problems, "\n".join(problems)
    assert database_rows() == before


def test_ids_in_a_forms_body_answer_404_to_another_customer(app, people):
    stranger, owner = people["clients"]["stranger"], people["clients"]["owner"]
    for endpoint, field, kind in BODY_IDS.values():
        rule = next(app.url_map.iter_rules(endpoint))
        url = urls_of(app, rule, people["owner"])[0]
        token = csrf_from(stranger.get("/", follow_redirects=True))
        before = database_rows()
        for headers in ({}, HTMX):
            response = stranger.post(url, data={"csrf_token": token, field: people["owner"][kind]}, headers=headers)
            assert response.status_code == 404, (endpoint, response.status_code)
        assert database_rows() == before, endpoint
        # The owner's own id is taken (so the 404 above was the ownership check).
        token = csrf_from(owner.get("/", follow_redirects=True))
        response = owner.post(url, data={"csrf_token": token, field: people["owner"][kind]})
        assert response.status_code == 303, (endpoint, response.status_code)
    assert ApiToken.get_by_id(people["stranger"]["api_token"]).revoked_at is None
    assert ApiToken.get_by_id(people["owner"]["api_token"]).revoked_at is not None


def test_the_api_answers_404_to_another_customers_key(app, people):
    client = app.test_client()
    problems, checked = [], 0
    for rule in all_rules(app):
        if audience(app, rule.endpoint) != API or rule.endpoint == "api.unknown":
            continue
        kinds = {argument_kind(rule.endpoint, name) for name in rule.arguments}
        query_ids = API_QUERY_IDS.get(rule.endpoint)
        if not (kinds & CUSTOMERS_KINDS or query_ids):
            continue
        query = {query_ids[0]: people["owner"][query_ids[1]]} if query_ids else {}
        for url in urls_of(app, rule, people["owner"], **query):
            checked += 1
            # The owner's answer may refuse the query (consumption needs a period), after the point was found.
            for who, expected in (("owner", "found"), ("stranger", 404)):
                response = client.get(url, headers={"Authorization": f"Bearer {people[who]['api_key']}"})
                if (response.status_code == 404) != (expected == 404) or response.status_code >= 500:
                    problems.append(f"{rule.endpoint}: GET {url} with the {who}'s key -> {response.status_code}")
    assert not problems, "\n".join(problems)
    assert checked >= 4  # a point, its consumption and Green Button, the invoices of a point


# --- CSRF ------------------------------------------------------------------------------------------------

def test_every_write_without_a_csrf_token_is_refused_and_changes_nothing(app, people):
    """Each write sent by whoever could make it (anonymous for the public ones), with what its
    form would carry but no token: a 400 page, as a plain request and as htmx's."""
    clients = {PUBLIC: app.test_client(), SIGNED_IN: people["clients"]["owner"],
               CUSTOMER: people["clients"]["owner"], STAFF: people["clients"]["staff"]}
    values = {PUBLIC: NOWHERE, SIGNED_IN: people["owner"], CUSTOMER: people["owner"], STAFF: people["staff"]}
    before = database_rows()
    problems = []
    for rule in all_rules(app):
        who = audience(app, rule.endpoint)
        if who == API:
            continue  # below
        for method, url in itertools.product((m for m in methods_of(rule) if m != "GET"),
                                             urls_of(app, rule, values[who])):
            for headers in ({}, HTMX):
                response = clients[who].open(url, method=method, headers=headers,
                                             data={"message": "x", "password": "x", "email": "x@example.it"})
                body = response.get_data(as_text=True)
                if response.status_code != 400 or (not headers and "<html" not in body):
                    problems.append(f"{rule.endpoint}: {method} {url}{' (htmx)' if headers else ''} without a "
                                    f"token -> {response.status_code}")
    assert not problems, "\n".join(problems)
    assert database_rows() == before


def test_the_api_takes_no_write(app, people):
    client = app.test_client()
    key = {"Authorization": f"Bearer {people['owner']['api_key']}"}
    before = database_rows()
    problems = []
    for rule in all_rules(app):
        if audience(app, rule.endpoint) != API:
            continue
        for url in urls_of(app, rule, people["owner"]):
            for method in ("POST", "PUT", "PATCH", "DELETE"):
                status = client.open(url, method=method, headers=key).status_code
                if status not in (404, 405):
                    problems.append(f"{rule.endpoint}: {method} {url} -> {status}")
    assert not problems, "\n".join(problems)
    # The key's last use is written once a minute by any request: the only change allowed.
    after = database_rows()
    assert {name for name in after if after[name] != before[name]} <= {"ApiToken", "RateCounter"}
