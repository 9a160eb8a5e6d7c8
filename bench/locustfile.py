"""The simulated customers of bench/load.py (locust; run by it, not by hand).

Each simulated customer comes from an address of its own (X-Forwarded-For, the server trusts
one proxy as behind nginx), logs in once with the code on its bill, then, at a customer's pace,
switches between its points, lists and filters its invoices, opens Grafici avanzati's views and
chart, downloads a CSV of its measures, and writes: one self-reading a point (the portal takes
one a day) and a few tickets (within the portal's hourly limits). A write counts as acknowledged
only when the portal answers it with its 303; each is appended to LOAD_ACKS (a JSON line), so
bench/load.py can check afterwards that every acknowledged write is in the database.

The customers come from LOAD_USERS (JSON written by bench/load.py): their code, password,
points and the next value of each register to read. Every failed request is appended to
LOAD_FAILURES (when, status, request), so that bench/load.py can tell the failures before,
during and after a fault; a 503 says whether it was the portal's clean outage page.
"""
import html
import itertools
import json
import os
import random
import re
import time
import uuid
from datetime import date

from locust import HttpUser, between, task

USERS = json.load(open(os.environ["LOAD_USERS"]))
ACKS = os.environ["LOAD_ACKS"]
FAILURES = os.environ["LOAD_FAILURES"]
OUTAGE_PAGE = "Il servizio non è disponibile in questo momento"  # views/errors.py, database_unavailable
NEXT_USER = itertools.count()
TICKETS_EACH = 5  # the portal takes 10 new tickets an hour from a customer
INPUT = re.compile(r"<input\b[^>]*>")
HTMX = {"HX-Request": "true"}
FIELD_ERROR = re.compile(r'<p class="field-error" id="err-[^"]*">([^<]+)</p>')


def hidden_fields(page):
    """The name and value of every hidden input of a page (the CSRF token, a form's one-time key)."""
    fields = {}
    for tag in INPUT.findall(page):
        if 'type="hidden"' in tag:
            name, value = re.search(r'name="([^"]*)"', tag), re.search(r'value="([^"]*)"', tag)
            if name:
                fields[name.group(1)] = html.unescape(value.group(1)) if value else ""
    return fields


def acknowledge(kind, **what):
    append(ACKS, dict(what, kind=kind))


def append(path, line):
    with open(path, "a") as out:  # one short line: appends from several processes do not interleave
        out.write(json.dumps(line) + "\n")


def failed(response, name, detail=""):
    """Mark the request failed, saying what came back: for a 503, whether it was the clean outage
    page (with its Retry-After) or something else."""
    status = response.status_code
    if status == 503:
        clean = OUTAGE_PAGE in response.text and response.headers.get("Retry-After") == "60"
        detail = "the outage page" if clean else "NOT the outage page"
    append(FAILURES, {"at": time.time(), "status": status, "request": name})
    response.failure(f"{status} {detail}".strip())


class Customer(HttpUser):
    wait_time = between(0.5, 2)

    def on_start(self):
        self.me = USERS[next(NEXT_USER) % len(USERS)]
        number = len(self.me["code"]) + int(self.me["code"][-4:])
        self.client.headers["X-Forwarded-For"] = f"10.{number // 65536 % 256}.{number // 256 % 256}.{number % 256}"
        self.read = set()  # the points read today
        self.tickets = 0
        self.point = self.me["points"][0]
        page = self.get("/login", "/login")
        with self.client.post("/login", name="/login (POST)", allow_redirects=False, catch_response=True,
                              data={"user": self.me["code"], "password": self.me["password"],
                                    "csrf_token": hidden_fields(page.text).get("csrf_token", "")}) as response:
            if response.status_code != 303:
                failed(response, "/login (POST)")

    def get(self, path, name, **kwargs):
        with self.client.get(path, name=name, catch_response=True, allow_redirects=False, **kwargs) as response:
            if response.status_code != 200:
                failed(response, name)
        return response

    @task(3)
    def switch_point(self):
        self.point = random.choice(self.me["points"])
        self.get(f"/?sp={self.point['code']}", "/?sp= (switch, htmx)", headers=dict(HTMX, **{"HX-Target": "frame"}))

    @task(6)
    def invoices(self):
        status = random.choice(["", "unpaid", "overdue", "partial", "paid"])
        self.get(f"/fatture?sp={self.point['code']}&stato={status}", "/fatture?stato= (htmx)",
                 headers=dict(HTMX, **{"HX-Target": "invoice-list"}))

    @task(2)
    def invoices_page(self):
        self.get(f"/fatture?sp={self.point['code']}", "/fatture (page)")

    @task(4)
    def charts(self):
        view = random.choice(["giorno", "settimana", "mese", "anno"])
        here = f"sp={self.point['code']}&vista={view}"
        self.get(f"/grafici-avanzati?{here}&mostra={random.choice(['grafico', 'tabella'])}",
                 "/grafici-avanzati (htmx)", headers=dict(HTMX, **{"HX-Target": "advanced-charts"}))
        self.get(f"/grafici-avanzati.svg?{here}", "/grafici-avanzati.svg")

    @task(1)
    def measures_csv(self):
        if not self.point["electricity"]:
            return
        self.get(f"/misure-elettriche.csv?sp={self.point['code']}&periodo=mese", "/misure-elettriche.csv")

    @task(1)
    def self_reading(self):
        point = self.point
        if point["code"] in self.read or not point["next_values"]:
            return
        page = self.get(f"/autolettura?sp={point['code']}", "/autolettura")
        if page.status_code != 200:
            return
        form = dict(hidden_fields(page.text), date=date.today().isoformat(),
                    **{f"value_{register}": value for register, value in point["next_values"].items()})
        for attempt in range(2):  # the second with the confirmation of an unusual value
            with self.client.post(f"/autolettura?sp={point['code']}", data=form, name="/autolettura (POST)",
                                  catch_response=True, allow_redirects=False) as response:
                if response.status_code == 303:
                    self.read.add(point["code"])
                    acknowledge("reading", point=point["code"], submission=form.get("submission"))
                    return
                if response.status_code == 422 and "confirm_implausible" in response.text and attempt == 0:
                    form.update(hidden_fields(response.text), confirm_implausible="y")
                    response.success()
                    continue
                failed(response, "/autolettura (POST)", str(FIELD_ERROR.findall(response.text)[:1]))
                return

    @task(1)
    def ticket(self):
        if self.tickets >= TICKETS_EACH:
            return
        page = self.get(f"/ticket/nuovo?sp={self.point['code']}", "/ticket/nuovo")
        if page.status_code != 200:
            return
        subject = f"Prova di carico {uuid.uuid4()}"
        form = dict(hidden_fields(page.text), category="other", supply_point="", subject=subject,
                    message="Un messaggio del test di carico.")
        with self.client.post(f"/ticket/nuovo?sp={self.point['code']}", data=form, name="/ticket/nuovo (POST)", catch_response=True,
                              allow_redirects=False) as response:
            if response.status_code == 303:
                self.tickets += 1
                acknowledge("ticket", subject=subject)
            else:
                failed(response, "/ticket/nuovo (POST)", str(FIELD_ERROR.findall(response.text)[:1]))
