"""Privacy e account: the consents (seen, changed, each change kept with time, IP and the
notice's version), "Scarica i miei dati" (a ZIP of JSON and CSV) and "Chiudi l'account"."""
import csv
import io
import json
import zipfile
from datetime import date
from decimal import Decimal

import pytest

from models import (
    ApiToken,
    AuditLog,
    Consent,
    ContactChange,
    Invoice,
    Reading,
    Ticket,
    TicketAttachment,
    TicketMessage,
    User,
    UserSession,
    token_digest,
)
from tests.factories import PASSWORD, make_customer, make_invoice, make_supply_point, make_user
from tests.helpers import csrf_from, deliver, htmx_headers, login, post_form, text_of

PAGE = "/privacy-e-account?sp=PR002874"
EXPORT = "/privacy-e-account/i-miei-dati.zip"


def give_consents(user, **answers):
    for kind in Consent.KINDS:
        Consent.create(user=user, kind=kind, granted=answers.get(kind, kind == "privacy"), text_version="2026-11", ip="10.0.0.1")


def consents_of(user):
    return {kind: c.granted for kind, c in Consent.latest_by_user([user]).get(user.id, {}).items()}


def send_consents(client, headers=None, **answers):
    data = {"consent_marketing": "no", "consent_third_parties": "no", "consent_profiling": "no"}
    data.update({f"consent_{kind}": value for kind, value in answers.items()})
    return post_form(client, "/privacy-e-account/consensi", data, page=PAGE, headers=headers)


# --- the page ----------------------------------------------------------------------------------------

def test_dati_anagrafici_leads_to_the_page(logged_in, owner):
    give_consents(owner, marketing=True)
    data_page = logged_in.get("/dati-anagrafici?sp=PR002874")
    assert data_page.status_code == 200 and 'href="/privacy-e-account?sp=PR002874"' in data_page.get_data(as_text=True)
    response = logged_in.get(PAGE)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "I tuoi consensi" in page and "Scarica i miei dati" in page and "Chiudi l'account" in page
    assert "Per revocarlo chiudi l'account" in page  # what withdrawing the required one means
    assert 'checked id="consent_marketing-0"' in page and 'checked id="consent_profiling-1"' in page  # yes; no
    assert 'href="/delegati?sp=PR002874"' in page


# --- consents ----------------------------------------------------------------------------------------

def test_changing_a_consent_keeps_each_change_with_its_time_ip_and_version(logged_in, owner):
    give_consents(owner)
    response = send_consents(logged_in, marketing="yes", profiling="no")
    assert response.status_code == 303 and response.headers["Location"] == PAGE
    assert consents_of(owner) == {"privacy": True, "marketing": True, "third_parties": False, "profiling": False}
    new = Consent.select().where(Consent.user == owner, Consent.ip == "127.0.0.1")
    assert [(c.kind, c.granted, c.text_version) for c in new] == [("marketing", True, Consent.TEXT_VERSION)]
    assert Consent.select().where(Consent.user == owner).count() == 5  # the old answers stay
    entry = AuditLog.get(AuditLog.action == "consents_changed")
    assert entry.user_id == owner.id and json.loads(entry.detail) == {"granted": ["marketing"], "withdrawn": []}
    page = logged_in.get(PAGE).get_data(as_text=True)
    assert "Consensi salvati." in page and "Storico dei consensi" in page


def test_the_same_answers_twice_write_nothing_more(logged_in, owner):
    """A double click: only what changed is written."""
    give_consents(owner)
    assert send_consents(logged_in, third_parties="yes").status_code == 303
    assert send_consents(logged_in, third_parties="yes").status_code == 303
    assert Consent.select().where(Consent.user == owner).count() == 5
    assert AuditLog.select().where(AuditLog.action == "consents_changed").count() == 1


def test_with_htmx_the_consents_block_comes_back(logged_in, owner):
    give_consents(owner)
    response = send_consents(logged_in, headers=htmx_headers("consents"), profiling="yes")
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" not in body and "Consensi salvati." in body and "Scarica i miei dati" not in body
    assert "HX-Target" in response.headers["Vary"]
    assert consents_of(owner)["profiling"] is True
    fragment = logged_in.get(PAGE, headers=htmx_headers("consents"))
    assert fragment.status_code == 200 and "<html" not in fragment.get_data(as_text=True)


@pytest.mark.parametrize("htmx", [False, True])
@pytest.mark.parametrize("value", ["forse", ""])
def test_an_answer_that_is_neither_is_said_next_to_the_field(logged_in, owner, value, htmx):
    give_consents(owner)
    response = send_consents(logged_in, headers=htmx_headers("consents") if htmx else None, marketing=value)
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Scegli una delle due risposte." in body and 'id="err-consent_marketing"' in body
    assert ("<html" in body) != htmx
    assert Consent.select().where(Consent.user == owner).count() == 4


def test_consents_need_the_csrf_token(logged_in, owner):
    give_consents(owner)
    response = logged_in.post("/privacy-e-account/consensi", data={"consent_marketing": "yes"})
    assert response.status_code == 400
    assert consents_of(owner)["marketing"] is False


# --- the export -----------------------------------------------------------------------------------------

def fill_customer(owner, point, invoice_number="FT2026-000777"):
    """Consents, a reading, a ticket with a reply and an internal note, an invoice, an API key."""
    give_consents(owner, marketing=True)
    Reading.create(supply_point=point, date=date(2026, 11, 30), register="F1", value=Decimal("1234.5"),
                   source="customer", status="pending", submitted_by=owner)
    ticket = Ticket.create(customer=owner.customer, supply_point=point, opened_by=owner, subject="Bolletta alta")
    question = TicketMessage.create(ticket=ticket, author=owner, body="Perché così alta?")
    TicketAttachment.create(message=question, file="ab/foto.jpg", name="bolletta.jpg", content_type="image/jpeg", size=1234)
    TicketMessage.create(ticket=ticket, from_staff=True, body="Abbiamo ricontrollato i consumi.")
    note = TicketMessage.create(ticket=ticket, from_staff=True, internal=True, body="NOTA INTERNA: cliente insistente")
    TicketAttachment.create(message=note, file="cd/interno.pdf", name="verifica-interna.pdf", content_type="application/pdf", size=99)
    ContactChange.create(customer=owner.customer, field="mobile", old_value=None, new_value="+393331234567", changed_by=owner)
    make_invoice(owner.customer, point, number=invoice_number, pdf_path="ab/cd/segreto.pdf")
    ApiToken.create(user=owner, name="Domotica", token_hash=token_digest("spt_segreto" + invoice_number))


def read_zip(response):
    assert response.status_code == 200
    assert response.mimetype == "application/zip"
    assert response.headers["Content-Disposition"].startswith(("attachment; filename=i-miei-dati-",
                                                               "attachment; filename=my-data-"))
    return zipfile.ZipFile(io.BytesIO(response.get_data()))


def test_the_export_holds_the_users_consents_readings_and_tickets_and_nothing_of_another_customer(app, logged_in, owner, point):
    fill_customer(owner, point)
    stranger = make_customer(code="009999", name="VERDI LUIGI")
    strangers_point = make_supply_point(stranger, code="PR009999")
    fill_customer(make_user(stranger, username="luigi.verdi", email="luigi@example.it"), strangers_point, "FT2026-000999")

    archive = read_zip(logged_in.get(EXPORT))
    names = set(archive.namelist())
    assert {"README.txt", "tutto.json", "utente.csv", "consensi.csv", "letture.csv", "ticket.csv",
            "messaggi_ticket.csv", "fatture.csv", "cliente.csv", "punti_di_fornitura.csv",
            "consumi_giornalieri.csv", "registro_attivita.csv", "chiavi_api.csv", "delegati.csv"} <= names
    everything = json.loads(archive.read("tutto.json"))
    assert everything["utente"][0]["username"] == "mario.rossi" and everything["utente"][0]["customer_code"] == "005007"
    assert {(c["kind"], c["granted"]) for c in everything["consensi"]} == {
        ("privacy", True), ("marketing", True), ("third_parties", False), ("profiling", False)}
    assert [(r["supply_point_code"], r["value"], r["source"]) for r in everything["letture"]] == [("PR002874", "1234.500", "customer")]
    assert [t["subject"] for t in everything["ticket"]] == ["Bolletta alta"]
    assert [m["body"] for m in everything["messaggi_ticket"]] == ["Perché così alta?", "Abbiamo ricontrollato i consumi."]
    assert [(i["number"], i["pdf"]) for i in everything["fatture"]] == [("FT2026-000777", True)]
    assert [(a["name"], a["size"]) for a in everything["allegati_ticket"]] == [("bolletta.jpg", 1234)]
    assert [(c["field"], c["new_value"], c["changed_by_you"]) for c in everything["modifiche_contatti"]] == [
        ("mobile", "+393331234567", True)]
    assert [k["name"] for k in everything["chiavi_api"]] == ["Domotica"]
    assert {p["code"] for p in everything["punti_di_fornitura"]} == {"PR002874", "PR002875"}

    raw = b"".join(archive.read(name) for name in names).decode("utf-8", "replace")
    for foreign in ("VERDI", "PR009999", "luigi", "009999"):
        assert foreign not in raw, foreign
    for secret in ("NOTA INTERNA", "verifica-interna", "ab/foto.jpg", owner.password_hash, token_digest("spt_segretoFT2026-000777"), "segreto.pdf", "password_hash",
                   "token_hash"):
        assert secret not in raw, secret

    rows = list(csv.DictReader(io.StringIO(archive.read("letture.csv").decode("utf-8-sig"))))
    assert [(r["supply_point_code"], r["register"], r["value"]) for r in rows] == [("PR002874", "F1", "1234.500")]
    assert AuditLog.get(AuditLog.action == "data_exported").user_id == owner.id


def test_an_english_users_export_is_in_english(logged_in, owner, point):
    """Chosen on the page's language switch: the files, the JSON's tables, the README and the
    ZIP's own name in English; the columns and values are the same in both languages."""
    fill_customer(owner, point)
    italian = read_zip(logged_in.get(EXPORT))
    assert post_form(logged_in, "/lingua", {"lang": "en", "next": "/privacy-e-account"}, page="/privacy-e-account").status_code == 303
    response = logged_in.get(EXPORT)
    assert response.headers["Content-Disposition"] == "attachment; filename=my-data-005007.zip"
    english = read_zip(response)
    assert {"README.txt", "everything.json", "user.csv", "consents.csv", "invoices.csv", "ticket_messages.csv",
            "supply_points.csv", "daily_consumption.csv", "activity_log.csv", "delegates.csv"} <= set(english.namelist())
    assert not any(name in english.namelist() for name in ("tutto.json", "fatture.csv", "utente.csv"))
    readme = english.read("README.txt").decode()
    assert readme.startswith("Your data in the customer portal (Sportello), exported on ")
    assert "everything.json   all the data in one JSON file" in readme and "tutti" not in readme
    everything, tutto = json.loads(english.read("everything.json")), json.loads(italian.read("tutto.json"))
    assert everything["invoices"] == tutto["fatture"] and everything["ticket_messages"] == tutto["messaggi_ticket"]
    assert {row["by"] for row in everything["activity_log"]} == {"you"}
    assert {row["by"] for row in tutto["registro_attivita"]} == {"tu"}
    assert english.read("invoices.csv") == italian.read("fatture.csv")


def test_a_delegates_export_holds_their_own_login_only(app, owner, point):
    fill_customer(owner, point)
    delegate = make_user(owner.customer, role=User.DELEGATE, delegate_rights=User.READ, username="studio.bianchi",
                         invited_by=owner)
    client = app.test_client()
    assert login(client, "studio.bianchi", PASSWORD).status_code == 303
    everything = json.loads(read_zip(client.get(EXPORT)).read("tutto.json"))
    assert set(everything) == {"utente", "consensi", "sessioni", "chiavi_api", "registro_attivita", "promemoria_autolettura"}
    assert everything["utente"][0]["id"] == delegate.id
    assert everything["utente"][0]["invited_by"] == owner.email
    assert len(everything["sessioni"]) == 1


def test_the_export_is_rate_limited(logged_in, owner):
    for _ in range(5):
        assert logged_in.get(EXPORT).status_code == 200
    response = logged_in.get(EXPORT)
    assert response.status_code == 303 and response.headers["Location"] == PAGE
    assert "Hai già scaricato i tuoi dati più volte" in logged_in.get(PAGE).get_data(as_text=True)


# --- closing the account -------------------------------------------------------------------------------------

def close(client, password=PASSWORD, understood="y"):
    data = {"password": password}
    if understood:
        data["understood"] = understood
    return post_form(client, "/privacy-e-account/chiudi", data, page=PAGE)


@pytest.mark.parametrize("password, understood, message", [
    ("Sbagliata-2026!", "y", "La password non è giusta."),
    ("", "y", "Scrivi la tua password per confermare."),
    (PASSWORD, "", "Spunta la casella per confermare."),
])
def test_closing_needs_the_password_and_the_box(logged_in, owner, password, understood, message):
    response = close(logged_in, password, understood)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True).replace("&#39;", "'")
    assert User.get_by_id(owner.id).closed_at is None
    assert logged_in.get(PAGE).status_code == 200


def test_closing_erases_the_login_keeps_audit_and_invoices_and_says_goodbye(app, logged_in, owner, point, smtp):
    fill_customer(owner, point)
    delegate = make_user(owner.customer, role=User.DELEGATE, delegate_rights=User.FULL, username="studio.bianchi",
                         email="studio@example.it", invited_by=owner)
    other_device = app.test_client()
    assert login(other_device, "mario.rossi", PASSWORD).status_code == 303
    audit_before = AuditLog.select().where(AuditLog.user == owner).count()

    response = close(logged_in)
    assert response.status_code == 303 and response.headers["Location"] == "/login"
    assert "Il tuo accesso è stato chiuso" in logged_in.get("/login").get_data(as_text=True)

    closed = User.get_by_id(owner.id)
    assert closed.closed_at is not None and closed.disabled
    assert (closed.username, closed.email, closed.password_hash, closed.first_name, closed.tax_code, closed.mobile) == (
        None, "", "", None, None, None)
    assert not UserSession.select().where(UserSession.user == owner).exists()
    assert ApiToken.get(ApiToken.user == owner).revoked_at is not None
    # The audit trail stays, pointing at the same row; the customer's records stay.
    assert AuditLog.select().where(AuditLog.user == owner).count() == audit_before + 2  # + delegate_revoked, account_closed
    assert AuditLog.get(AuditLog.action == "account_closed").user_id == owner.id
    assert Invoice.select().where(Invoice.customer == owner.customer).count() == 1
    assert Reading.select().where(Reading.submitted_by == owner).count() == 1
    assert Ticket.get(Ticket.opened_by == owner).subject == "Bolletta alta"
    assert Consent.select().where(Consent.user == owner).count() == 4  # the proof of what was consented

    # No way in: the code, the old username, the other device, the delegate.
    for user in ("005007", "mario.rossi"):
        refused = login(app.test_client(), user, PASSWORD)
        assert refused.status_code == 422, user
    assert other_device.get("/fatture?sp=PR002874").status_code == 302
    assert User.get_by_id(delegate.id).revoked_at is not None
    assert login(app.test_client(), "studio.bianchi", PASSWORD).status_code == 403

    assert deliver(app) == 2
    by_address = {message.envelope_to[0]: message for message in smtp.messages}
    assert "abbiamo chiuso il tuo accesso" in text_of(by_address["mario@example.it"])
    assert "ha revocato il tuo accesso" in text_of(by_address["studio@example.it"])
    assert owner.customer.owner() is None  # the customer may register again


def test_a_delegate_closes_only_their_own_login(app, owner, smtp):
    delegate = make_user(owner.customer, role=User.DELEGATE, delegate_rights=User.READ, username="studio.bianchi",
                         invited_by=owner)
    client = app.test_client()
    assert login(client, "studio.bianchi", PASSWORD).status_code == 303
    page = client.get(PAGE).get_data(as_text=True)
    assert "Il titolare del contratto potrà invitarti di nuovo." in page and "Gestisci i delegati" not in page
    assert close(client).status_code == 303
    assert User.get_by_id(delegate.id).closed_at is not None
    assert User.get_by_id(owner.id).closed_at is None
    assert login(app.test_client(), "005007", PASSWORD).status_code == 303


def test_closing_is_rate_limited(logged_in, owner):
    for _ in range(5):
        assert close(logged_in, "Sbagliata-2026!").status_code == 422
    response = close(logged_in)
    assert response.status_code == 429 and "Troppi tentativi" in response.get_data(as_text=True)
    assert User.get_by_id(owner.id).closed_at is None


def test_the_close_form_needs_the_csrf_token(logged_in, owner):
    response = logged_in.post("/privacy-e-account/chiudi", data={"password": PASSWORD, "understood": "y"})
    assert response.status_code == 400
    assert User.get_by_id(owner.id).closed_at is None
    assert csrf_from(logged_in.get(PAGE))


def test_consents_changes_are_rate_limited(logged_in, owner):
    give_consents(owner)
    for n in range(30):
        assert send_consents(logged_in, marketing="yes" if n % 2 == 0 else "no").status_code == 303
    response = send_consents(logged_in, marketing="yes")
    assert response.status_code == 429 and "Troppi tentativi" in response.get_data(as_text=True)
    assert Consent.select().where(Consent.user == owner).count() == 4 + 30
