"""Nobody learns who is a customer from how the portal answers: the same status and text
(tests/test_auth.py, tests/test_workers.py for several processes) and the same time.

The timing tests run many alternated pairs and take the median of the pairs' differences, so
the machine's noise falls on both sides alike; the margin is far below the gaps they guard against (an existing code's "forgot
password" took twice as long, a registered customer's step 2 a tenth as long).
"""
import statistics
import time

import argon2
import pytest

import accounts
import ratelimit
from models import AuditLog, User
from tests.factories import make_customer, make_supply_point, make_user
from tests.helpers import csrf_from, deliver, htmx_headers, post_form
from tests.test_auth import STEP2, register_step1

PAIRS = 60
MARGIN = 0.2  # of the quicker median


@pytest.fixture
def unlimited(monkeypatch):
    """Rate limits out of the way: what is measured is the work behind each answer."""
    for name, (_, seconds) in list(ratelimit.LIMITS.items()):
        monkeypatch.setitem(ratelimit.LIMITS, name, (10**6, seconds))


def alternated_pairs(first, second, pairs=PAIRS):
    """(duration of first(n), duration of second(n)) for each n, run in alternated order: a
    pair's two runs meet the same load on the machine."""
    durations = []
    for n in range(pairs):
        pair = [None, None]
        for which in ((0, 1) if n % 2 == 0 else (1, 0)):
            pair[which] = (first, second)[which](n)
        durations.append(pair)
    return durations


def timed_post(client, url, data, expected_status, **kwargs):
    """POST and return how long the answer took."""
    start = time.perf_counter()
    response = client.post(url, data=data, **kwargs)
    seconds = time.perf_counter() - start
    assert response.status_code == expected_status
    return seconds


def assert_same_cost(pairs):
    """The median of the pairs' differences is within MARGIN of the median duration: a load
    that comes and goes falls on both runs of a pair, so it cancels out of their difference."""
    known = statistics.median(k for k, _ in pairs)
    unknown = statistics.median(u for _, u in pairs)
    difference = statistics.median(k - u for k, u in pairs)
    print(f"existing {known * 1000:.2f} ms, unknown {unknown * 1000:.2f} ms, "
          f"median difference {difference * 1000:.2f} ms")  # shown with -s
    assert abs(difference) <= MARGIN * min(known, unknown), (
        f"existing {known * 1000:.2f} ms, unknown {unknown * 1000:.2f} ms, difference {difference * 1000:.2f} ms")


def deliver_all(app):
    sent = 0
    while batch := deliver(app):
        sent += batch
    return sent


@pytest.mark.parametrize("url, field, existing, unknown", [
    ("/password-dimenticata", "user", "005007", "999999"),
    ("/username-dimenticato", "email", "mario@example.it", "nessuno@example.it"),
])
def test_forgotten_password_and_username_cost_the_same_for_anyone(app, client, owner, unlimited, smtp,
                                                                    url, field, existing, unknown):
    page = client.get(url)
    assert page.status_code == 200
    token = csrf_from(page)

    def ask(value):
        return lambda n: timed_post(client, url, {field: value, "csrf_token": token}, 303)

    assert_same_cost(alternated_pairs(ask(existing), ask(unknown)))
    # Every request for the existing login was answered: a mail each, once the sender has run.
    assert deliver_all(app) == PAIRS


def test_registration_step_two_costs_the_same_for_anyone(app, unlimited, monkeypatch, smtp):
    # Production's argon2 parameters: hashing is the costly step that only one path used to take.
    monkeypatch.setattr(accounts, "hasher", argon2.PasswordHasher())
    registered = make_customer(code="005007")
    make_user(registered, email="mario@example.it")
    newcomer = make_customer(code="005008")
    proofs = {c.code: make_supply_point(c).pod_pdr for c in (registered, newcomer)}

    def register(customer):
        def run(n):  # step 1 (the same for both) untimed, then step 2 timed
            client = app.test_client()
            step1 = register_step1(client, customer.code, customer.tax_code, proofs[customer.code])
            assert step1.status_code == 303
            page = client.get("/registrazione/dati")
            assert page.status_code == 200
            email = f"n{n}@example.it"
            data = dict(STEP2, username="", email=email, email_repeat=email, csrf_token=csrf_from(page))
            return timed_post(client, "/registrazione/dati", data, 303)
        return run

    assert_same_cost(alternated_pairs(register(registered), register(newcomer), pairs=20))
    actions = [entry.action for entry in AuditLog.select().where(AuditLog.action.startswith("registration"))]
    assert actions.count("registration_repeated") == actions.count("registration") == 20


def test_the_inline_check_never_says_a_username_is_taken(app, client, owner, customer, point):
    assert register_step1(client, "005007", customer.tax_code, point.pod_pdr).status_code == 303
    page = client.get("/registrazione/dati")
    assert page.status_code == 200
    token = csrf_from(page)
    headers = dict(htmx_headers("err-username"), **{"HX-Trigger-Name": "username"})
    for name in ("mario.rossi", "libero.2026"):
        response = client.post("/registrazione/verifica/dati", data={"username": name, "csrf_token": token},
                               headers=headers)
        assert response.status_code == 200
        assert "già in uso" not in response.get_data(as_text=True)
    # The final submit does say it, next to the field, keeping what was typed.
    data = dict(STEP2, username="mario.rossi")
    final = post_form(client, "/registrazione/dati", data)
    assert final.status_code == 422
    body = final.get_data(as_text=True)
    assert "Questo username è già in uso" in body
    assert 'value="mario.rossi"' in body


def test_username_checks_are_rate_limited(app, client, owner, customer, point):
    assert register_step1(client, "005007", customer.tax_code, point.pod_pdr).status_code == 303
    page = client.get("/registrazione/dati")
    token = csrf_from(page)
    headers = dict(htmx_headers("err-username"), **{"HX-Trigger-Name": "username"})
    allowed = ratelimit.LIMITS["register-check"][0]
    statuses = [
        client.post("/registrazione/verifica/dati", data={"username": f"nome{n}", "csrf_token": token},
                    headers=headers).status_code
        for n in range(allowed + 3)
    ]
    assert statuses == [200] * allowed + [429] * 3
    # The final submit counts too: no way round the limit, and a clear message on the page.
    final = post_form(client, "/registrazione/dati", dict(STEP2, username="mario.rossi"))
    assert final.status_code == 429
    body = final.get_data(as_text=True)
    assert "Troppi tentativi. Riprova tra" in body
    assert "già in uso" not in body
    assert not User.select().where(User.email == STEP2["email"], User.id != owner.id).exists()
    assert not AuditLog.select().where(AuditLog.action == "registration").exists()
