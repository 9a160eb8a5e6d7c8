"""Autolettura Contatore: the selected point's registers with their last validated readings,
the form for a new reading (checked on change with htmx, and again on submit, the same rules
for a plain post: self_readings.py), the history of the point's readings and the reminder's
opt-in. A reading's photo is shown only to its customer (and to operators, in the back office).
"""
import uuid
from dataclasses import dataclass

from flask import abort, current_app, flash, g, redirect, request
from flask_babel import gettext as _
from flask_login import current_user
from itsdangerous import BadSignature, URLSafeSerializer
from peewee import IntegrityError

import audit
import ratelimit
import self_readings
import uploads
from database import one_at_a_time, write_transaction
from files import FileStore, send_stored
from forms import EmptyForm, SelfReadingForm
from i18n import rome_today
from models import Reading, User
from views.common import read_only_refusal, too_many
from views.customer_area import area_blueprint, form_address_opens, portal_url, serves_a_file
from views.rendering import is_htmx, render

bp = area_blueprint("readings", __name__)

HISTORY_ROWS = 36  # three years of monthly readings
TEMPLATE = "readings/self_reading.html"


def reading_form(point, fresh=False):
    """The form as posted, or (`fresh`, or a GET) empty: today's date and a new one-time key."""
    registers, unit = self_readings.registers_of(point), self_readings.unit(point)
    if request.method == "POST" and not fresh:
        return SelfReadingForm.for_registers(registers, unit)
    form = SelfReadingForm.for_registers(registers, unit, formdata=None)
    form.date.data = rome_today()
    form.submission.data = str(uuid.uuid4())
    return form


def photo_signer():
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="self-reading-photo")


def page(form=None, status=200, sent=None, checking=False):
    """The page, or (htmx) the block its HX-Target names."""
    point = g.supply_point
    context = {"title": _("Autolettura Contatore"), "point": point, "sent": sent, "checking": checking,
               "today_iso": rome_today().isoformat(),
               "reminder_form": EmptyForm(), "notify_readings": current_user.notify_readings}
    if point is not None:
        registers = self_readings.registers_of(point)
        current, upcoming = self_readings.open_window(point, rome_today())
        context.update(
            form=form or reading_form(point, fresh=True), unit=self_readings.unit(point),
            last_readings=[(register, self_readings.last_validated(point, register)) for register in registers],
            registers=registers,
            window=current, next_window=upcoming,
            implausible=bool(form is not None and getattr(form, "implausible", False)),
        )
        # The newest HISTORY_ROWS readings; "Mostra tutto lo storico" (?storico=tutto) every one.
        context["history"], context["more_history"] = history(point, registers, whole=request.args.get("storico") == "tutto")
    return render(TEMPLATE, **context), status


@dataclass
class HistoryRow:
    """One reading as the meter showed it: every register of one day, one source, one state."""

    first: Reading  # its first register's row: date, source, state, photo
    values: dict  # register -> value


def history(point, registers, whole=False):
    """The point's readings, newest first, a row per day, source and state (a rejected
    self-reading and the reading that replaced it are two rows): the newest HISTORY_ROWS, or
    every one (`whole`); and whether there are more than those shown."""
    rows = {}
    query = Reading.for_point(current_user.customer_id, point).order_by(Reading.date.desc(), Reading.id.desc())
    if not whole:
        query = query.limit((HISTORY_ROWS + 1) * len(registers))  # one row more tells there are more
    for reading in query:
        key = (reading.date, reading.source, reading.status, reading.submission)
        row = rows.setdefault(key, HistoryRow(reading, {}))
        row.values[reading.register] = reading.value
    rows = list(rows.values())
    return (rows, False) if whole else (rows[:HISTORY_ROWS], len(rows) > HISTORY_ROWS)


@bp.route("/autolettura", methods=["GET", "POST"])
def self_reading():
    point = g.supply_point
    if request.method == "GET" or point is None:
        return page()
    if not current_user.can_write:
        return read_only_refusal()
    form = reading_form(point)
    if not form.validate_on_submit() and form.csrf_token.errors:
        abort(400)
    wait = ratelimit.hit("self-reading", current_user.id)
    if wait:
        too_many(form.date, wait)
        return page(form, 429)
    user = current_user._get_current_object()
    photo_path = checked_photo(form, user)
    try:
        # The rules and the write in one transaction that no other reading of the point runs
        # beside: two readings sent at once (gas, the same month) cannot both pass the rules,
        # and the twin of a double click finds the first one written.
        with one_at_a_time(self_readings.point_lock(point)):
            readings = already_sent(point, form.submission.data)
            if not readings and judge(form, point):
                readings = self_readings.record(point, user, form.date.data, form.values(), form.submission.data or None,
                                                photo_path=photo_path,
                                                confirmed_implausible=form.confirm_implausible.data)
        if not readings:
            return page(form, 422)
    except IntegrityError:
        # Another request wrote the same day's reading between the check and the write: the
        # double click's twin, or a real duplicate that the rules now name.
        replay = already_sent(point, form.submission.data)
        if replay:
            return answer_sent(replay)
        judge(form, point)
        return page(form, 422)
    return answer_sent(readings)


def judge(form, point):
    """The form's own checks, then the reading rules for the date and every value that passed
    them (so each field says all that is wrong at once); each problem next to its field. True
    when the reading may be written."""
    if not form.date.errors and form.date.data:
        values = {register: field.decimal for register, field in form.value_fields() if field.data and not field.errors}
        problems = self_readings.check(point, form.date.data, values, rome_today(),
                                       confirmed=form.confirm_implausible.data)
        for problem in problems:
            field = form.date if problem.field == "date" else form[f"value_{problem.field}"]
            field.errors = list(field.errors) + [problem.message]
            if problem.implausible:
                form.implausible = True
    return not any(field.errors for field in form)


def checked_photo(form, user):
    """The photo's path in the file store: a new upload (cleaned, or refused next to its
    field), or the one kept from an earlier attempt with this form; None without one."""
    upload = request.files.get(form.photo.name)
    if upload and upload.filename:
        try:
            clean = uploads.accept(upload.read(), kinds=("image",))
        except uploads.Refused as refusal:
            form.photo.errors = [str(refusal)]
            form.kept_photo.data = ""
            return None
        path = FileStore(current_app.config["FILE_STORE"]).store_bytes(clean.data, clean.extension)
        form.kept_photo.data = photo_signer().dumps([user.id, path])
        return path
    if form.kept_photo.data:
        try:
            owner, path = photo_signer().loads(form.kept_photo.data)
        except (BadSignature, ValueError, TypeError):
            form.kept_photo.data = ""
            return None
        if owner == user.id:
            return path
    return None


def already_sent(point, submission):
    if not submission:
        return []
    return list(Reading.select().where(Reading.supply_point == point, Reading.submission == submission))


def answer_sent(readings):
    if is_htmx():
        return page(sent=readings)
    flash(_("Autolettura inviata: la verifichiamo e ti scriviamo per email. Intanto la trovi nello storico come «inviata»."),
          "success")
    return redirect(portal_url("readings.self_reading"), 303)


@bp.route("/autolettura/verifica", methods=["POST"])
def check_self_reading():
    """htmx's check on change: each field's error (none for a field not filled in yet), swapped
    out of band, and the confirmation box when the value is implausible. Nothing is written."""
    point = g.supply_point
    if point is None:
        abort(404)
    form = reading_form(point)
    form.validate_on_submit()
    if form.csrf_token.errors:
        abort(400)
    if ratelimit.hit("self-reading-check", current_user.id):
        return "", 204  # nothing to say now; the submit checks everything again
    judge(form, point)
    for field in form:
        if not (field.raw_data and any(field.raw_data)) and field.name not in ("date",):
            field.errors = []  # not filled in yet: nothing to say
    # Asked without htmx (never by the page's own form), it is the page with the errors in place.
    return page(form, 422 if any(f.errors for f in form) else 200, checking=is_htmx())


@bp.route("/autolettura/<int:reading_id>/foto")
@serves_a_file
def reading_photo(reading_id):
    reading = (Reading.for_customer(current_user.customer_id)
               .where(Reading.id == reading_id, Reading.photo_path.is_null(False)).first())
    if reading is None:
        abort(404)
    return send_stored(reading.photo_path, reading.photo_content_type, f"autolettura-{reading.date.isoformat()}")


@bp.route("/autolettura/promemoria", methods=["POST"])
def reading_reminder():
    """The opt-in to a mail when a reading window opens."""
    if not current_user.can_write:
        return read_only_refusal()
    EmptyForm().validate_on_submit() or abort(400)
    wanted = request.form.get("notify_readings") == "yes"
    user = current_user._get_current_object()
    with write_transaction():
        User.update(notify_readings=wanted).where(User.id == user.id).execute()
        audit.record("reading_reminder_changed", user=user, notify_readings=wanted)
    flash(_("Ti scriveremo quando si apre la finestra di autolettura.") if wanted
          else _("Non ti scriveremo più quando si apre la finestra di autolettura."), "success")
    return redirect(portal_url("readings.self_reading"), 303)


# Where a refused form leaves a browser without JavaScript, opened again: the form's page.
form_address_opens(bp, "/autolettura/promemoria", "readings.self_reading")
