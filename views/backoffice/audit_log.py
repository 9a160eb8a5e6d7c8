"""Registro attività: the audit log, filtered by user, customer, action and dates."""
from datetime import timedelta

from flask import request
from flask_babel import gettext as _

import labels
from forms import AuditLogFilterForm
from i18n import rome_midnight_utc
from models import AuditLog, User
from views.backoffice import PAGE_SIZE, bp
from views.rendering import render


@bp.route("/registro")
def audit_log():
    """Filter by user (email or username), customer code, action and dates (whole days of Rome)."""
    filters = AuditLogFilterForm()
    # Whole days of Rome, as the customer's Download reads its dates (the same form).
    since, until = filters.chosen("dal"), filters.chosen("al")
    query = AuditLog.search(user=filters.chosen("utente"), customer_code=filters.chosen("cliente"),
                            action=filters.chosen("azione"), since=since and rome_midnight_utc(since),
                            before=until and rome_midnight_utc(until + timedelta(days=1)))
    page = filters.chosen("pagina") or 1
    entries = list(query.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1))
    # The filter offers the actions the log holds, by their labels: (code, label).
    actions = sorted(((code, labels.label("audit_action", code)) for code in AuditLog.actions_used()),
                     key=lambda pair: pair[1].lower())
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
