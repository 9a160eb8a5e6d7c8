"""The audit log: one call per event, with the request's IP and the acting user.

Details are short and never hold a password, a token or a full codice fiscale (mask them
with identifiers.mask)."""
import json

from flask import has_request_context, request

from models import AuditLog


def record(action, user=None, customer=None, **detail):
    if customer is None and user is not None and user.customer_id:
        customer = user.customer_id
    AuditLog.create(
        action=action,
        user=user,
        customer=customer,
        ip=request.remote_addr if has_request_context() else None,
        detail=json.dumps(detail, ensure_ascii=False, sort_keys=True) if detail else "",
    )
