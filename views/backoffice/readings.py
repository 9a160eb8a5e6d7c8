"""Autoletture: the queue of the customers' self-readings waiting for an operator, oldest first;
each is validated, or rejected with a reason the customer reads. Either way the customer is
mailed and the audit log keeps who decided (self_readings.py does both)."""
from flask import abort, flash, redirect, url_for
from flask_babel import gettext as _
from flask_login import current_user

import self_readings
from database import write_transaction
from files import send_stored
from forms import EmptyForm, RejectReadingForm
from models import Reading
from views.backoffice import bp
from views.rendering import is_htmx, render


def reject_form_of(reading_id, formdata=None):
    """Each card's form has its own field names (and ids): r<id>-reason."""
    return RejectReadingForm(prefix=f"r{reading_id}", **({} if formdata else {"formdata": None}))


def queue_page(reject_form=None, rejecting=None, notice=None, notice_error=False, status=200):
    """The queue, or (htmx) its block. `rejecting`: the reading whose reason had a problem."""
    return render("backoffice/readings.html", title=_("Autoletture"), queue=self_readings.pending_queue(),
                  action_form=EmptyForm(), reject_form=reject_form, reject_form_of=reject_form_of,
                  rejecting=rejecting, notice=notice, notice_error=notice_error), status


@bp.route("/letture")
def readings():
    return queue_page()


def pending_submission(reading_id):
    """The pending submission a reading belongs to; None when it was handled meanwhile."""
    reading = Reading.get_or_none(Reading.id == reading_id, Reading.source == "customer")
    if reading is None:
        abort(404)
    if reading.status != Reading.PENDING:
        return None
    return self_readings.submission_of(reading)


def handled(reading_id):
    """The answer to a decision on a submission decided meanwhile, saying by whom: the same
    operator (a second tab, a double click), a colleague, or nobody (the billing system's
    reading validated it)."""
    reading = Reading.get_or_none(Reading.id == reading_id)
    decided_by = reading.reviewed_by_id if reading else None
    if decided_by == current_user.id:
        message = _("Hai già gestito questa autolettura, forse da un'altra scheda: questa decisione non è stata registrata.")
    elif decided_by is not None:
        message = _("Questa autolettura è già stata gestita da un altro operatore.")
    else:
        message = _("Questa autolettura è già stata gestita.")
    if is_htmx():
        return queue_page(notice=message, notice_error=True)  # swapped: htmx drops a 409
    flash(message, "error")
    return redirect(url_for("backoffice.readings"), 303)


def done(message):
    if is_htmx():
        return queue_page(notice=message)
    flash(message, "success")
    return redirect(url_for("backoffice.readings"), 303)


@bp.route("/letture/<int:reading_id>/valida", methods=["POST"])
def validate_reading(reading_id):
    EmptyForm().validate_on_submit() or abort(400)
    try:
        with write_transaction():
            readings = pending_submission(reading_id)
            if readings:
                self_readings.validate(readings, current_user._get_current_object())
    except self_readings.AlreadyHandled:
        readings = None
    if not readings:
        return handled(reading_id)
    return done(_("Autolettura del punto %(code)s validata: il cliente riceve un'email.",
                  code=readings[0].supply_point.code))


@bp.route("/letture/<int:reading_id>/respingi", methods=["POST"])
def reject_reading(reading_id):
    form = reject_form_of(reading_id, formdata=True)
    if not form.validate_on_submit():
        if form.csrf_token.errors:
            abort(400)
        pending_submission(reading_id)  # a reading that is none is a 404, not a form error
        return queue_page(reject_form=form, rejecting=reading_id, status=422)
    try:
        with write_transaction():
            readings = pending_submission(reading_id)
            if readings:
                self_readings.reject(readings, current_user._get_current_object(), form.reason.data)
    except self_readings.AlreadyHandled:
        readings = None
    if not readings:
        return handled(reading_id)
    return done(_("Autolettura del punto %(code)s respinta: il cliente riceve un'email con il motivo.",
                  code=readings[0].supply_point.code))


@bp.route("/letture/<int:reading_id>/foto")
def reading_photo(reading_id):
    reading = Reading.get_or_none(Reading.id == reading_id, Reading.photo_path.is_null(False))
    if reading is None:
        abort(404)
    return send_stored(reading.photo_path, reading.photo_content_type, f"autolettura-{reading.date.isoformat()}")
