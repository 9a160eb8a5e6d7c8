"""Ticket, the utility's side: the queue (filtered by status, category, assignee and age), a
ticket's page (the conversation with the internal notes; reply, note, assign, change status)
and the canned replies the utility writes once.

The customer is mailed on a reply or a status change (notify_customer), never on an internal
note. Every action is in the audit log.
"""
from datetime import timedelta

from flask import abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from peewee import IntegrityError
from playhouse.flask_utils import get_object_or_404

import audit
import files
import labels
import mailer
from database import write_transaction
from forms import (
    CannedReplyForm,
    EmptyForm,
    StaffNoteForm,
    StaffReplyForm,
    TicketAssignForm,
    TicketQueueFilterForm,
    TicketStatusForm,
)
from models import CannedReply, Customer, Ticket, TicketAttachment, TicketMessage, User, utcnow
from views.backoffice import PAGE_SIZE, bp
from views.rendering import is_htmx, render
from views.tickets import attach, store_files

# --- the queue ------------------------------------------------------------------------------------

@bp.route("/ticket")
def tickets():
    staff = list(User.staff())
    filters = TicketQueueFilterForm(staff=staff)
    query = Ticket.queue()
    status = filters.chosen("stato")
    if status is None:
        query = query.where(Ticket.status != Ticket.CLOSED)
    elif status != "tutti":
        query = query.where(Ticket.status == status)
    if filters.chosen("categoria"):
        query = query.where(Ticket.category == filters.chosen("categoria"))
    assignee = filters.chosen("assegnatario")
    if assignee == "miei":
        query = query.where(Ticket.assignee == current_user.id)
    elif assignee == "nessuno":
        query = query.where(Ticket.assignee.is_null())
    elif assignee:
        query = query.where(Ticket.assignee == int(assignee))
    if filters.chosen("eta"):
        # "Fermi da più di N giorni": nothing has happened on the ticket for N days.
        query = query.where(Ticket.updated_at < utcnow() - timedelta(days=int(filters.chosen("eta"))))
    page = filters.chosen("pagina") or 1
    rows = list(query.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1))
    args = {name: value for name, value in request.args.items() if name != "pagina"}
    return render("backoffice/tickets.html", title=_("Ticket"), filters=filters, tickets=rows[:PAGE_SIZE],
                  more=len(rows) > PAGE_SIZE, page=page, args=args, now=utcnow())


# --- one ticket -----------------------------------------------------------------------------------

def ticket_or_404(ticket_id):
    return get_object_or_404(Ticket.select(Ticket, Customer).join(Customer), Ticket.id == ticket_id)


def staff_choices():
    return [("", _("Nessuno"))] + [(str(user.id), user.email) for user in User.staff() if not user.disabled]


def canned_choices():
    return [("", _("Scegli una risposta predefinita"))] + [
        (str(reply.id), reply.title) for reply in CannedReply.by_title()]


@bp.route("/ticket/<int:ticket_id>")
def ticket(ticket_id):
    return ticket_page(ticket_or_404(ticket_id))


def ticket_page(ticket, reply_form=None, note_form=None, assign_form=None, status_form=None, done=None):
    """The ticket's page, or (htmx) the block a form named; `done`: what was just written."""
    reply_form = reply_form or StaffReplyForm(formdata=None)
    reply_form.canned.choices = canned_choices()
    assign_form = assign_form or TicketAssignForm(formdata=None, assignee=str(ticket.assignee_id or ""))
    assign_form.assignee.choices = staff_choices()
    messages = list(TicketMessage.all_of(ticket))
    authors = {user.id: user for user in User.select().where(User.id.in_({m.author_id for m in messages if m.author_id}))}
    return render("backoffice/ticket.html", title=_("Ticket %(id)d", id=ticket.id), ticket=ticket, messages=messages,
                  authors=authors, attachments=TicketAttachment.of_messages(m.id for m in messages),
                  reply_form=reply_form, note_form=note_form or StaffNoteForm(formdata=None), assign_form=assign_form,
                  status_form=status_form or TicketStatusForm(formdata=None, status=ticket.status), done=done)


def back_to(ticket, message):
    """After a write: htmx gets the ticket's block again, as it is now, saying what was done; a
    plain request the ticket's page, by a redirect (its reload posts nothing)."""
    if is_htmx():
        return ticket_page(ticket_or_404(ticket.id), done=message)
    flash(message, "success")
    return redirect(url_for("backoffice.ticket", ticket_id=ticket.id), 303)


@bp.route("/ticket/<int:ticket_id>/risposta")
@bp.route("/ticket/<int:ticket_id>/nota")
def ticket_form_address(ticket_id):
    """Without JavaScript a refused reply or note is shown again (422) at the address it was
    posted to. Opened anew (a new tab, a bookmark, a restored session) that address is the
    ticket; a reload posts the same form again, which writes nothing twice (idempotency_key)."""
    return redirect(url_for("backoffice.ticket", ticket_id=ticket_id))


def already_written(ticket, key):
    return TicketMessage.select().where(TicketMessage.ticket == ticket, TicketMessage.idempotency_key == key).exists()


@bp.route("/ticket/<int:ticket_id>/risposta", methods=["POST"])
def reply(ticket_id):
    """Send an answer (the customer is mailed), or, with "Inserisci", put a canned reply into
    the text and show the form again: nothing is sent then."""
    ticket = ticket_or_404(ticket_id)
    form = StaffReplyForm()
    form.canned.choices = canned_choices()
    if "insert" in request.form:
        # One of the choices just listed, or none: any other text (a number past 64 bits, "²",
        # which isdigit() took) reached the query, a 500.
        offered = {value for value, _label in form.canned.choices if value}
        canned = CannedReply.get_or_none(CannedReply.id == int(form.canned.data)) if form.canned.data in offered else None
        if canned is None:
            form.canned.errors = [_("Scegli una risposta predefinita.")]
            return ticket_page(ticket, reply_form=form), 422
        form.message.data = "\n\n".join(text for text in ((form.message.data or "").rstrip(), canned.body) if text)
        form.canned.data = ""
        return ticket_page(ticket, reply_form=form)
    if not form.validate_on_submit():
        return ticket_page(ticket, reply_form=form), 422
    if not already_written(ticket, form.idempotency_key.data):
        operator = current_user._get_current_object()
        stored = store_files(form.clean_files)
        try:
            with write_transaction():
                now = utcnow()
                message = TicketMessage.create(ticket=ticket, author=operator, from_staff=True, body=form.message.data,
                                               created_at=now, idempotency_key=form.idempotency_key.data)
                attach(message, stored)
                changes = status_changes(form.status.data, now)
                Ticket.update(updated_at=now, **changes).where(Ticket.id == ticket.id).execute()
                ticket = ticket_or_404(ticket.id)
                notify_customer(ticket, reply=form.message.data, attachments=[name for name, _clean, _path in stored])
                audit.record("operator_ticket_replied", user=operator, customer=ticket.customer_id, ticket=ticket.id,
                             ticket_status=ticket.status, attachments=len(stored))
        except IntegrityError:
            pass  # sent twice at once: the other request kept it
    return back_to(ticket, _("Risposta inviata: il cliente riceve un'email."))


def notify_customer(ticket, reply=None, attachments=()):
    """Mail who opened the ticket (or the customer's address, if that login is gone): the
    reply's text and its files' names (the files stay in the portal, behind the login), or the
    new status, and the link to the ticket. Call inside the transaction."""
    user = ticket.opened_by if ticket.opened_by_id else None
    if user is not None and (user.disabled or user.confirmed_at is None):
        user = None
    recipient = user.email if user is not None else ticket.customer.email
    if not recipient:
        return
    template = "ticket_reply" if reply is not None else "ticket_status"
    subject = (_l("Risposta al tuo ticket «%(subject)s»", subject=ticket.subject) if reply is not None
               else _l("Il tuo ticket «%(subject)s» è %(status)s", subject=ticket.subject,
                       status=labels.LABELS["ticket_status"].get(ticket.status, ticket.status)))
    mailer.queue(recipient, subject, template, language=user.language if user is not None else "it",
                 ticket=ticket, reply=reply, attachments=attachments,
                 link=mailer.mail_link("tickets.ticket", ticket_id=ticket.id))


def status_changes(status, now):
    """The columns a new status sets: closed_at is when it was closed, and only then."""
    return {"status": status, "closed_at": now if status == Ticket.CLOSED else None}


@bp.route("/ticket/<int:ticket_id>/nota", methods=["POST"])
def note(ticket_id):
    """An internal note: for the staff only, no mail, the status unchanged."""
    ticket = ticket_or_404(ticket_id)
    form = StaffNoteForm()
    if not form.validate_on_submit():
        return ticket_page(ticket, note_form=form), 422
    if not already_written(ticket, form.idempotency_key.data):
        operator = current_user._get_current_object()
        try:
            with write_transaction():
                TicketMessage.create(ticket=ticket, author=operator, from_staff=True, internal=True,
                                     body=form.note.data, idempotency_key=form.idempotency_key.data)
                audit.record("operator_ticket_note", user=operator, customer=ticket.customer_id, ticket=ticket.id)
        except IntegrityError:
            pass
    return back_to(ticket, _("Nota interna salvata."))


@bp.route("/ticket/<int:ticket_id>/assegna", methods=["POST"])
def assign(ticket_id):
    ticket = ticket_or_404(ticket_id)
    form = TicketAssignForm()
    form.assignee.choices = staff_choices()
    if not form.validate_on_submit():
        return ticket_page(ticket, assign_form=form), 422
    assignee = User.get_by_id(int(form.assignee.data)) if form.assignee.data else None
    with write_transaction():
        Ticket.update(assignee=assignee).where(Ticket.id == ticket.id).execute()
        # The colleague's email, as the log shows it; "" when the ticket is given back to nobody.
        audit.record("operator_ticket_assigned", user=current_user._get_current_object(), customer=ticket.customer_id,
                     ticket=ticket.id, assignee=assignee.email if assignee else "")
    return back_to(ticket, _("Assegnazione salvata."))


@bp.route("/ticket/<int:ticket_id>/stato", methods=["POST"])
def change_status(ticket_id):
    ticket = ticket_or_404(ticket_id)
    form = TicketStatusForm()
    if not form.validate_on_submit():
        return ticket_page(ticket, status_form=form), 422
    if form.status.data == ticket.status:
        return back_to(ticket, _("Lo stato era già questo: nessuna email al cliente."))
    with write_transaction():
        Ticket.update(updated_at=utcnow(), **status_changes(form.status.data, utcnow())).where(
            Ticket.id == ticket.id).execute()
        ticket = ticket_or_404(ticket.id)
        notify_customer(ticket)
        audit.record("operator_ticket_status", user=current_user._get_current_object(), customer=ticket.customer_id,
                     ticket=ticket.id, ticket_status=ticket.status)
    return back_to(ticket, _("Stato cambiato: il cliente riceve un'email."))


@bp.route("/ticket/<int:ticket_id>/allegati/<int:attachment_id>")
def attachment(ticket_id, attachment_id):
    found = (TicketAttachment.select().join(TicketMessage)
             .where(TicketAttachment.id == attachment_id, TicketMessage.ticket == ticket_id).first()) or abort(404)
    return files.send_stored(found.file, found.content_type, found.name.rsplit(".", 1)[0], as_attachment=True)


# --- canned replies -------------------------------------------------------------------------------

@bp.route("/risposte-predefinite", methods=["GET", "POST"])
def canned_replies():
    form = CannedReplyForm()
    if form.validate_on_submit():
        with write_transaction():
            reply = CannedReply.create(title=form.title.data, body=form.body.data, updated_by=current_user.id)
            audit.record("canned_reply_created", user=current_user._get_current_object(), canned_reply=reply.id,
                         title=reply.title)
        flash(_("Risposta predefinita salvata."), "success")
        return redirect(url_for("backoffice.canned_replies"), 303)
    return render("backoffice/canned_replies.html", title=_("Risposte predefinite"), form=form,
                  replies=list(CannedReply.by_title()), action_form=EmptyForm()), 422 if form.is_submitted() else 200


@bp.route("/risposte-predefinite/<int:reply_id>", methods=["GET", "POST"])
def canned_reply(reply_id):
    reply = get_object_or_404(CannedReply, CannedReply.id == reply_id)
    form = CannedReplyForm(obj=reply)
    if form.validate_on_submit():
        with write_transaction():
            CannedReply.update(title=form.title.data, body=form.body.data, updated_by=current_user.id,
                               updated_at=utcnow()).where(CannedReply.id == reply.id).execute()
            audit.record("canned_reply_changed", user=current_user._get_current_object(), canned_reply=reply.id,
                         title=form.title.data)
        flash(_("Risposta predefinita salvata."), "success")
        return redirect(url_for("backoffice.canned_replies"), 303)
    return render("backoffice/canned_reply.html", title=reply.title, form=form, reply=reply,
                  action_form=EmptyForm()), 422 if form.is_submitted() else 200


@bp.route("/risposte-predefinite/<int:reply_id>/elimina", methods=["POST"])
def delete_canned_reply(reply_id):
    EmptyForm().validate_on_submit() or abort(400)
    reply = get_object_or_404(CannedReply, CannedReply.id == reply_id)
    with write_transaction():
        CannedReply.delete().where(CannedReply.id == reply.id).execute()
        audit.record("canned_reply_deleted", user=current_user._get_current_object(), canned_reply=reply.id,
                     title=reply.title)
    flash(_("Risposta predefinita eliminata."), "success")
    return redirect(url_for("backoffice.canned_replies"), 303)
