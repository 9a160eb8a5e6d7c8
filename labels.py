"""The words a person reads for each code the database stores: one place, both languages.

Italian is the source language (the msgids); English comes from the translations. Templates
write `label("invoice_status", invoice.status)`, never the stored code. A code with no label
(one the billing system starts sending, say) shows as stored, so that it is noticed: the back
office's test of raw codes fails on it.
"""
import json

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

LABELS = {
    "customer_kind": {"person": _l("persona"), "company": _l("ditta"), "public_body": _l("ente")},
    "commodity": {"electricity": _l("energia elettrica"), "gas": _l("gas")},
    "point_status": {"active": _l("Attiva"), "ceased": _l("Cessata")},
    "role": {
        "owner": _l("Titolare"), "delegate": _l("Delegato"),
        "operator": _l("Operatore"), "admin": _l("Amministratore"),
    },
    "delegate_rights": {"read": _l("sola lettura"), "full": _l("permessi completi")},
    "consent": {
        "privacy": _l("Privacy"), "marketing": _l("Marketing"), "third_parties": _l("Terzi"),
        "profiling": _l("Profilazione"),
    },
    "invoice_status": {"paid": _l("pagata"), "unpaid": _l("da pagare"), "partial": _l("parzialmente pagata")},
    "reading_source": {"distributor": _l("distributore"), "customer": _l("autolettura"), "estimated": _l("stimata")},
    "reading_status": {"pending": _l("da validare"), "validated": _l("validata"), "rejected": _l("respinta")},
    # The same as the customer reads it: their reading is sent, the validating is the utility's.
    "reading_status_for_customer": {"pending": _l("inviata"), "validated": _l("validata"), "rejected": _l("respinta")},
    # F1, F2 and F3 are the time bands' own names, on the bill too.
    "register": {"F1": "F1", "F2": "F2", "F3": "F3", "total": _l("totale")},
    "ticket_status": {
        "open": _l("aperto"), "in_progress": _l("in lavorazione"),
        "waiting_customer": _l("in attesa del cliente"), "closed": _l("chiuso"),
    },
    "ticket_category": {
        "billing": _l("bolletta"), "readings": _l("letture"), "contract": _l("contratto"),
        "fault": _l("guasto"), "other": _l("altro"),
    },
    "import_status": {
        "queued": _l("in coda"), "running": _l("in corso"), "done": _l("completata"),
        "refused": _l("rifiutata"), "failed": _l("non riuscita"),
    },
    "document_section": {
        "modulistica": _l("Modulistica"), "normative": _l("Normative"), "comunicati": _l("Comunicati"),
        "informazioni": _l("Informazioni"), "storico": _l("Storico"),
        "personal": _l("Personale"), "report": _l("Report"),
    },
    # Every action that audit.record() writes (a test reads the calls in the code).
    "audit_action": {
        "login": _l("Accesso riuscito"),
        "login_password_ok": _l("Password corretta, in attesa del codice"),
        "login_failed": _l("Accesso non riuscito"),
        "login_failed_second_factor": _l("Codice del secondo fattore sbagliato"),
        "login_locked": _l("Accesso bloccato per troppi tentativi"),
        "login_throttled": _l("Troppi tentativi dallo stesso indirizzo"),
        "login_refused_disabled": _l("Accesso rifiutato: utente disattivato"),
        "second_factor_enrolled": _l("Secondo fattore attivato"),
        "logout": _l("Uscita"),
        "registration": _l("Registrazione"),
        "registration_confirmed": _l("Registrazione confermata"),
        "registration_mismatch": _l("Registrazione: dati che non corrispondono"),
        "registration_repeated": _l("Registrazione tentata su un accesso già attivo"),
        "confirmation_resent": _l("Conferma inviata di nuovo"),
        "password_reset_requested": _l("Nuova password chiesta"),
        "password_reset": _l("Nuova password scelta dal link"),
        "password_changed": _l("Password cambiata"),
        "password_change_failed": _l("Cambio password non riuscito"),
        "username_reminder": _l("Promemoria degli accessi inviato"),
        "notifications_changed": _l("Avvisi per email cambiati"),
        "api_token_created": _l("Chiave API creata"),
        "api_token_revoked": _l("Chiave API revocata"),
        "operator_viewed_customer": _l("Scheda cliente consultata"),
        "operator_resend_user": _l("Conferma inviata di nuovo da un operatore"),
        "operator_unlock_user": _l("Accesso sbloccato da un operatore"),
        "operator_disable_user": _l("Accesso disattivato da un operatore"),
        "operator_enable_user": _l("Accesso riattivato da un operatore"),
        "operator_created": _l("Operatore creato"),
        "operator_reset_second_factor": _l("Secondo fattore di un operatore azzerato"),
        "operator_disable": _l("Operatore disattivato"),
        "operator_enable": _l("Operatore riattivato"),
        "import_uploaded": _l("File caricati per l'importazione"),
        "import": _l("Importazione completata"),
        "import_refused": _l("Importazione rifiutata"),
        "document_published": _l("Documento pubblicato"),
        "document_unpublished": _l("Documento ritirato"),
        "export_readings": _l("Esportazione delle letture"),
        "reading_submitted": _l("Autolettura inviata"),
        "reading_validated": _l("Autolettura validata"),
        "reading_validated_by_import": _l("Autolettura validata dall'importazione"),
        "reading_rejected": _l("Autolettura respinta"),
        "reading_reminder_changed": _l("Promemoria dell'autolettura cambiato"),
        "reading_reminders": _l("Promemoria dell'autolettura inviati"),
        "export_tickets": _l("Esportazione dei ticket"),
        "consents_changed": _l("Consensi cambiati"),
        "data_exported": _l("Dati personali scaricati"),
        "account_closed": _l("Account chiuso, dati di accesso cancellati"),
        "delegate_invited": _l("Delegato invitato"),
        "delegate_invitation_accepted": _l("Invito da delegato accettato"),
        "delegate_revoked": _l("Delegato revocato"),
        "ticket_opened": _l("Ticket aperto"),
        "ticket_replied": _l("Risposta del cliente a un ticket"),
        "ticket_reopened": _l("Ticket riaperto dal cliente"),
        "operator_ticket_replied": _l("Risposta a un ticket"),
        "operator_ticket_note": _l("Nota interna su un ticket"),
        "operator_ticket_assigned": _l("Ticket assegnato"),
        "operator_ticket_status": _l("Stato di un ticket cambiato"),
        "canned_reply_created": _l("Risposta predefinita creata"),
        "canned_reply_changed": _l("Risposta predefinita modificata"),
        "canned_reply_deleted": _l("Risposta predefinita eliminata"),
        "contact_changed": _l("Contatto cambiato dal cliente"),
        "email_change_requested": _l("Nuovo indirizzo email chiesto, link inviato"),
        "login_email_changed": _l("Email di accesso cambiata"),
        "contact_change_overridden": _l("Contatto cambiato nel portale, sostituito dall'importazione"),
        "export_contacts": _l("Esportazione dei contatti cambiati"),
    },
    # The keys of an audit entry's details (the keyword arguments of audit.record()).
    "audit_detail": {
        "identifier": _l("Identificativo"),
        "customer_code": _l("Codice cliente"),
        "notify_invoices": _l("Avvisi di nuove fatture"),
        "target_user": _l("Utente"),
        "role": _l("Ruolo"),
        "job": _l("Importazione"),
        "files": _l("File"),
        "summary": _l("Riepilogo"),
        "problems": _l("Problemi"),
        "server": _l("Server"),  # host and process that ran an import
        "document": _l("Documento"),
        "section": _l("Sezione"),
        "title": _l("Titolo"),
        "rows": _l("Righe"),
        "since": _l("Dal"),
        "output": _l("Destinazione"),
        "name": _l("Nome"),
        "point": _l("Punto di fornitura"),
        "date": _l("Data"),
        "values": _l("Letture"),
        "reason": _l("Motivo"),
        "notify_readings": _l("Promemoria dell'autolettura"),
        "rights": _l("Permessi"),
        "granted": _l("Consensi dati"),
        "withdrawn": _l("Consensi revocati"),
        "ticket": _l("Ticket"),
        "ticket_status": _l("Stato del ticket"),
        "ticket_category": _l("Categoria del ticket"),
        "assignee": _l("Assegnato a"),
        "attachments": _l("Allegati"),
        "canned_reply": _l("Risposta predefinita"),
        "field": _l("Campo"),
        "old": _l("Prima"),
        "new": _l("Dopo"),
        "portal": _l("Valore nel portale"),
        "billing": _l("Valore del gestionale"),
    },
    # The contact data a customer edits (contacts.py), by ContactChange.field.
    "contact_field": {
        "email": _l("Email"), "phone": _l("Telefono"), "fax": _l("Fax"), "mobile": _l("Cellulare"),
    },
}

# Detail values that are codes themselves, by the detail's key.
DETAIL_VALUE_LABELS = {"role": "role", "section": "document_section", "rights": "delegate_rights", "granted": "consent", "withdrawn": "consent", "ticket_status": "ticket_status",
                      "ticket_category": "ticket_category", "field": "contact_field"}


def label(group, code):
    """The words for a stored code; the code itself when it has none."""
    words = LABELS[group].get(code)
    return code if words is None else str(words)


def words(group):
    """{code: words} of a group, translated once: for a list that labels many rows."""
    return {code: str(text) for code, text in LABELS[group].items()}


def yes_no(value):
    return _("sì") if value else _("no")


def detail_values(detail):
    """An audit entry's details (JSON text, "" for none) as a dict."""
    try:
        values = json.loads(detail) if detail else {}
    except ValueError:
        return {"": detail}  # not JSON: shown as it is
    return values if isinstance(values, dict) else {"": detail}


def describe_detail(values, emails=None):
    """"Ruolo: Operatore; Utente: anna@utility.it": the details as a person reads them. `emails`
    maps user ids to addresses, for the users an entry names."""
    parts = []
    for key, value in values.items():
        text = detail_value(key, value, emails or {})
        parts.append(f"{label('audit_detail', key)}: {text}" if key else text)
    return "; ".join(parts)


def detail_value(key, value, emails):
    if isinstance(value, bool):
        return yes_no(value)
    if isinstance(value, list):
        return ", ".join(detail_value(key, item, emails) for item in value)
    if key in DETAIL_VALUE_LABELS:
        return label(DETAIL_VALUE_LABELS[key], value)
    if key == "target_user":
        return emails.get(value, f"#{value}")
    return str(value)


def init_app(app):
    # Every template may label a code: the back office's and the customer's alike.
    app.jinja_env.globals.update(label=label, yes_no=yes_no)
