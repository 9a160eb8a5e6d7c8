"""Registro attività: the audit log, filtered by user, customer, action and dates."""
from datetime import timedelta

from flask import request
from flask_babel import gettext as _
from peewee import JOIN

import labels
from forms import AuditLogFilterForm
from i18n import rome_midnight_utc
from models import AuditLog, Customer, User
from views.backoffice import PAGE_SIZE, bp
from views.rendering import render


@bp.route("/registro")
def audit_log():
    """Filter by user (email or username), customer code, action and dates (whole days of Rome)."""
    filters = AuditLogFilterForm()
    query = (AuditLog.select(AuditLog, User, Customer)
             .join(User, on=(AuditLog.user == User.id), join_type=JOIN.LEFT_OUTER)
             .switch(AuditLog)
             .join(Customer, on=(AuditLog.customer == Customer.id), join_type=JOIN.LEFT_OUTER)
             .order_by(AuditLog.id.desc()))
    if filters.chosen("utente"):
        query = query.where((User.email == filters.utente.data) | (User.username == filters.utente.data))
    if filters.chosen("cliente"):
        query = query.where(Customer.code == filters.cliente.data)
    if filters.chosen("azione"):
        query = query.where(AuditLog.action == filters.azione.data)
    # Whole days of Rome, as the customer's Download reads its dates (the same form).
    if filters.chosen("dal"):
        query = query.where(AuditLog.at >= rome_midnight_utc(filters.dal.data))
    if filters.chosen("al"):
        query = query.where(AuditLog.at < rome_midnight_utc(filters.al.data + timedelta(days=1)))
    page = filters.chosen("pagina") or 1
    entries = list(query.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1))
    # The filter offers the actions the log holds, by their labels: (code, label).
    codes = [a for (a,) in AuditLog.select(AuditLog.action).distinct().tuples()]
    actions = sorted(((code, labels.label("audit_action", code)) for code in codes), key=lambda pair: pair[1].lower())
    return render("backoffice/audit.html", title=_("Registro attività"), entries=entries[:PAGE_SIZE],
                  details=described(entries[:PAGE_SIZE]), more=len(entries) > PAGE_SIZE, page=page,
                  args=request.args.to_dict(), filters=filters, actions=actions)


def described(entries):
    """Each entry's details as a person reads them ({entry id: text}), the users they name by
    their email (one query for the page)."""
    values = {entry.id: labels.detail_values(entry.detail) for entry in entries}
    user_ids = {v["target_user"] for v in values.values() if isinstance(v.get("target_user"), int)}
    emails = dict(User.select(User.id, User.email).where(User.id.in_(user_ids)).tuples()) if user_ids else {}
    return {entry_id: labels.describe_detail(v, emails) for entry_id, v in values.items()}
