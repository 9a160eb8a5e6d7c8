"""Ticket, the customer's side: their tickets (newest first), a new ticket, a ticket's
conversation with a reply form, and the attachments.

Ownership is the query's: every ticket is looked up in Ticket.for_customer, so another
customer's id is a 404; an attachment is reached through its ticket, and never through an
internal note (TicketMessage.visible). A write asks `current_user.can_write` first.

A form sent twice (a double click, a reload after a timeout) writes once: each form carries an
idempotency key stored with the ticket or message it makes (unique), and a second send with
the same key is shown what the first made.

GET /ticket/nuovo?category=contract&subject=...&message=... opens the form filled in (other
pages link to it, e.g. Dati Anagrafici's "ask for a change"); values that are no choice or too
long are left out or cut.
"""
from flask import abort, current_app, flash, g, redirect, request
from flask_babel import gettext as _
from flask_login import current_user
from peewee import IntegrityError

import audit
import files
import ratelimit
from database import write_transaction
from forms import TicketForm, TicketReplyForm
from models import Ticket, TicketAttachment, TicketMessage, utcnow
from views.common import read_only_refusal, too_many
from views.customer_area import area_blueprint, portal_url, serves_a_file
from views.rendering import is_htmx, render

bp = area_blueprint("tickets", __name__)


@bp.route("/ticket")
def tickets():
    listed = list(Ticket.for_customer(current_user.customer_id).order_by(Ticket.created_at.desc(), Ticket.id.desc()))
    return render("tickets/tickets.html", title=_("Ticket"), tickets=listed)


def point_choices():
    return [("", _("Nessuno in particolare"))] + [
        (point.code, f"{point.code} ({'PDR' if point.is_gas else 'POD'} {point.pod_pdr})") for point in g.supply_points]


@bp.route("/ticket/nuovo", methods=["GET", "POST"])
def new_ticket():
    if not current_user.can_write:
        return read_only_refusal()
    if request.method == "GET":
        form = TicketForm(formdata=None, data=prefill(request.args))
    else:
        form = TicketForm()
    form.supply_point.choices = point_choices()
    if form.is_submitted():
        if not form.validate():
            return new_ticket_page(form), 422
        customer_id = current_user.customer_id
        made = Ticket.for_customer(customer_id).where(Ticket.idempotency_key == form.idempotency_key.data).first()
        if made is None:
            wait = ratelimit.hit("ticket-new", current_user.id)
            if wait:
                too_many(form.message, wait)
                return new_ticket_page(form), 429
            made = open_ticket(form)
        return redirect(portal_url("tickets.ticket", ticket_id=made.id), 303)
    return new_ticket_page(form)


def prefill(args):
    """The new-ticket form's values from a link: a category that is none is left out, texts
    are cut to what the form takes (the form still checks everything when it is sent)."""
    values = {}
    if args.get("category") in Ticket.CATEGORIES:
        values["category"] = args["category"]
    if args.get("subject"):
        values["subject"] = args["subject"].replace("\x00", "")[:Ticket.SUBJECT_MAX]
    if args.get("message"):
        values["message"] = args["message"].replace("\x00", "")[:Ticket.BODY_MAX]
    point = g.supply_point
    values["supply_point"] = point.code if point is not None else ""
    return values


def new_ticket_page(form):
    return render("tickets/new.html", title=_("Nuovo ticket"), form=form)


def open_ticket(form):
    """Create the ticket with its first message and attachments; the same key twice (two
    requests at once) makes one ticket and answers both with it."""
    user = current_user._get_current_object()
    point = next((p for p in g.supply_points if p.code == form.supply_point.data), None)
    stored = store_files(form.clean_files)
    try:
        with write_transaction():
            now = utcnow()
            ticket = Ticket.create(customer=user.customer_id, supply_point=point, opened_by=user,
                                   subject=form.subject.data, category=form.category.data, status=Ticket.OPEN,
                                   created_at=now, updated_at=now, idempotency_key=form.idempotency_key.data)
            message = TicketMessage.create(ticket=ticket, author=user, body=form.message.data, created_at=now)
            attach(message, stored)
            audit.record("ticket_opened", user=user, ticket=ticket.id, ticket_category=ticket.category,
                         attachments=len(stored))
    except IntegrityError:
        return Ticket.for_customer(user.customer_id).where(Ticket.idempotency_key == form.idempotency_key.data).get()
    flash(_("Ticket aperto: ti risponderemo qui e ti avviseremo per email."), "success")
    return ticket


def store_files(clean_files):
    """Keep accepted uploads in the file store (named by content: a failed write leaves at
    most a file that the next identical upload reuses)."""
    store = files.FileStore(current_app.config["FILE_STORE"])
    return [(name, clean, store.store_bytes(clean.data, clean.extension)) for name, clean in clean_files]


def attach(message, stored):
    for name, clean, path in stored:
        TicketAttachment.create(message=message, file=path, name=name, content_type=clean.content_type,
                                size=len(clean.data))


# --- one ticket ---------------------------------------------------------------------------------

def customer_ticket_or_404(ticket_id):
    return Ticket.for_customer(current_user.customer_id).where(Ticket.id == ticket_id).first() or abort(404)


@bp.route("/ticket/<int:ticket_id>")
def ticket(ticket_id):
    return ticket_page(customer_ticket_or_404(ticket_id), TicketReplyForm(formdata=None))


def ticket_page(ticket, form):
    """The ticket and its conversation, or (htmx) the block its HX-Target names: the thread
    after a reply, with the menu's badge out of band."""
    messages = list(TicketMessage.visible(ticket))
    days = current_app.config["TICKET_REOPEN_DAYS"]
    blocks = ("ticket_badge",) if request.method == "POST" else ()
    return render("tickets/ticket.html", *blocks, title=ticket.subject, ticket=ticket, messages=messages,
                  attachments=TicketAttachment.of_messages(m.id for m in messages), form=form,
                  reopenable=ticket.reopenable(days), reopen_days=days)


@bp.route("/ticket/<int:ticket_id>/risposta")
def reply_address(ticket_id):
    """Without JavaScript a refused reply is shown again (422) at the address it was posted to.
    Opened anew (a new tab, a bookmark, a restored session), that address is the ticket's page."""
    return redirect(portal_url("tickets.ticket", ticket_id=customer_ticket_or_404(ticket_id).id))


@bp.route("/ticket/<int:ticket_id>/risposta", methods=["POST"])
def reply(ticket_id):
    """The customer's reply. It puts the ticket back in the utility's hands (waiting_customer ->
    open); on a closed ticket it reopens it, within TICKET_REOPEN_DAYS of its closing."""
    if not current_user.can_write:
        return read_only_refusal()
    ticket = customer_ticket_or_404(ticket_id)
    form = TicketReplyForm()
    if not form.validate():
        return ticket_page(ticket, form), 422
    if ticket.is_closed and not ticket.reopenable(current_app.config["TICKET_REOPEN_DAYS"]):
        form.message.errors.append(_("Questo ticket è chiuso da più di %(days)d giorni: aprine uno nuovo.",
                                     days=current_app.config["TICKET_REOPEN_DAYS"]))
        return ticket_page(ticket, form), 422
    user = current_user._get_current_object()
    sent_before = TicketMessage.select().where(TicketMessage.ticket == ticket,
                                              TicketMessage.idempotency_key == form.idempotency_key.data).exists()
    if not sent_before:
        wait = ratelimit.hit("ticket-reply", user.id)
        if wait:
            too_many(form.message, wait)
            return ticket_page(ticket, form), 429
        stored = store_files(form.clean_files)
        try:
            with write_transaction():
                now = utcnow()
                message = TicketMessage.create(ticket=ticket, author=user, body=form.message.data, created_at=now,
                                               idempotency_key=form.idempotency_key.data)
                attach(message, stored)
                reopened = ticket.is_closed
                status = Ticket.OPEN if ticket.status in (Ticket.CLOSED, Ticket.WAITING_CUSTOMER) else ticket.status
                Ticket.update(status=status, updated_at=now, closed_at=None).where(Ticket.id == ticket.id).execute()
                audit.record("ticket_reopened" if reopened else "ticket_replied", user=user, ticket=ticket.id,
                             attachments=len(stored))
        except IntegrityError:
            pass  # the same reply, sent twice at once: the other request kept it
    ticket = customer_ticket_or_404(ticket_id)
    if is_htmx():
        return ticket_page(ticket, TicketReplyForm(formdata=None))
    flash(_("Risposta inviata."), "success")
    return redirect(portal_url("tickets.ticket", ticket_id=ticket.id), 303)


@bp.route("/ticket/<int:ticket_id>/allegati/<int:attachment_id>")
@serves_a_file
def attachment(ticket_id, attachment_id):
    """A file of the conversation, as a download (a PDF is never shown inline)."""
    ticket = customer_ticket_or_404(ticket_id)
    found = (TicketAttachment.select().join(TicketMessage)
             .where(TicketAttachment.id == attachment_id, TicketMessage.ticket == ticket,
                    TicketMessage.internal == False)  # noqa: E712
             .first()) or abort(404)
    return files.send_stored(found.file, found.content_type, found.name.rsplit(".", 1)[0], as_attachment=True)
