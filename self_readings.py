"""Autolettura: the rules a customer's meter reading meets, the reading windows, and what
happens to a reading afterwards (recorded, validated or rejected by an operator, mails).
Testable without a request: views/readings.py and the back office call it.

The rules, each with the reason the customer reads (`check`):
- a ceased supply point takes no readings;
- the date is not in the future, nor more than MAX_AGE_DAYS back;
- a register's value is not lower than its last validated reading before that date, nor
  higher than a validated reading after it (the billing system's imported readings are
  validated; estimated ones are no meter's reading and are not compared against);
- no duplicate: a live (not rejected) reading of the registers on that day already exists
  (said once, next to the date; the values are still checked);
- gas: at most one live self-reading per calendar month;
- windows: when the utility configures READING_WINDOW_ELECTRICITY / READING_WINDOW_GAS
  ("25-31": days of the month, the end clipped to the month's length; "28-3" runs into the
  next month), a reading is accepted only while a window is open, dated inside it; outside,
  the message gives the next window's dates;
- plausibility: the consumption per day since the previous validated reading is implausible
  when it is more than PLAUSIBILITY_FACTOR times the point's usual consumption per day, the
  usual being the register's average over its validated readings of the HISTORY_DAYS before
  the previous one (at least MINIMUM_HISTORY_DAYS apart). With less history than that nothing
  is implausible: there is nothing to compare with. An implausible reading is accepted only
  when the customer confirms it.
"""
import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import peewee as pw
from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

import audit
import i18n
import mailer
from database import write_transaction
from models import Reading, ReadingReminder, SupplyPoint, User, utcnow

MAX_AGE_DAYS = 90
PLAUSIBILITY_FACTOR = 3
HISTORY_DAYS = 365
MINIMUM_HISTORY_DAYS = 20
ELECTRICITY_REGISTERS = ("F1", "F2", "F3")
GAS_REGISTERS = ("total",)
WINDOW_SETTINGS = {"electricity": "READING_WINDOW_ELECTRICITY", "gas": "READING_WINDOW_GAS"}
UNITS = {"electricity": "kWh", "gas": "m³"}  # what the meter's display counts


def unit(point):
    return UNITS[point.commodity]


def registers_of(point):
    """The registers the point's meter shows: those of its newest validated reading, else
    F1/F2/F3 for electricity and one register for gas."""
    newest = (Reading.select(Reading.date).where(Reading.supply_point == point, Reading.status == Reading.VALIDATED)
              .order_by(Reading.date.desc()).first())
    if newest is not None:
        found = {register for (register,) in Reading.select(Reading.register).where(
            Reading.supply_point == point, Reading.status == Reading.VALIDATED, Reading.date == newest.date).tuples()}
        return tuple(r for r in Reading.REGISTERS if r in found)
    return GAS_REGISTERS if point.is_gas else ELECTRICITY_REGISTERS


def comparable():
    """Validated readings that a meter showed (not estimates)."""
    return Reading.select().where(Reading.status == Reading.VALIDATED, Reading.source != "estimated")


def last_validated(point, register, before=None):
    """The newest validated meter reading of the register (before the day `before`, if given)."""
    query = comparable().where(Reading.supply_point == point, Reading.register == register)
    if before is not None:
        query = query.where(Reading.date < before)
    return query.order_by(Reading.date.desc()).first()


def first_validated_after(point, register, day):
    return (comparable().where(Reading.supply_point == point, Reading.register == register, Reading.date > day)
            .order_by(Reading.date).first())


def usual_daily(point, register, previous):
    """The register's average consumption per day over the HISTORY_DAYS before `previous`
    (a validated reading), or None without enough history."""
    oldest = (comparable().where(Reading.supply_point == point, Reading.register == register,
                                 Reading.date >= previous.date - timedelta(days=HISTORY_DAYS),
                                 Reading.date < previous.date)
              .order_by(Reading.date).first())
    if oldest is None or (previous.date - oldest.date).days < MINIMUM_HISTORY_DAYS:
        return None
    return (previous.value - oldest.value) / (previous.date - oldest.date).days


# --- windows ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Window:
    first: date
    last: date

    def __contains__(self, day):
        return self.first <= day <= self.last


def parse_window(text):
    """"25-31" -> (25, 31); "" or None -> None (no window). ValueError for anything else."""
    if not text:
        return None
    match = re.fullmatch(r"\s*(\d{1,2})\s*-\s*(\d{1,2})\s*", text)
    if not match or not all(1 <= int(n) <= 31 for n in match.groups()):
        raise ValueError(f"{text!r} is not a window of days of the month like 25-31")
    return int(match.group(1)), int(match.group(2))


def month_day(year, month, day):
    """That day of the month, or the month's last day (31 -> 30 November)."""
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def add_months(year, month, months):
    year, month = divmod(year * 12 + month - 1 + months, 12)
    return year, month + 1


def windows_near(days, today):
    """The windows starting in the month before today's, today's and the next two."""
    first, last = days
    for offset in (-1, 0, 1, 2):
        year, month = add_months(today.year, today.month, offset)
        start = month_day(year, month, first)
        end_year, end_month = (year, month) if first <= last else add_months(year, month, 1)
        yield Window(start, month_day(end_year, end_month, last))


def window_setting(point):
    """The point's commodity's window as (first day, last day), or None when there is none."""
    return parse_window(current_app.config.get(WINDOW_SETTINGS[point.commodity]))


def open_window(point, today):
    """(the window open today or None, the next one) for the point; (None, None) when the
    utility has no window for its commodity."""
    days = window_setting(point)
    if days is None:
        return None, None
    windows = list(windows_near(days, today))
    current = next((w for w in windows if today in w), None)
    upcoming = next(w for w in windows if w.first > today)
    return current, upcoming


# --- the rules ---------------------------------------------------------------------------------

@dataclass
class Problem:
    """A reason a reading is refused; `field` is "date" or a register; an `implausible` one
    only asks for the customer's confirmation."""

    field: str
    message: str
    implausible: bool = False


def check(point, day, values, today, confirmed=False):
    """The problems of a reading of `point` on `day`, `values` {register: Decimal}; [] when it
    may be recorded."""
    if point.status == "ceased":
        return [Problem("date", _("Questa fornitura è cessata: non servono più autoletture."))]
    if day > today:
        return [Problem("date", _("La data della lettura non può essere nel futuro."))]
    if day < today - timedelta(days=MAX_AGE_DAYS):
        return [Problem("date", _("Si possono inviare solo letture degli ultimi %(days)d giorni.", days=MAX_AGE_DAYS))]
    current, upcoming = open_window(point, today)
    if upcoming is not None:
        if current is None:
            return [Problem("date", _(
                "Ora non è il periodo per inviare l'autolettura. La prossima finestra va dal %(first)s al %(last)s.",
                first=i18n.local_date(upcoming.first), last=i18n.local_date(upcoming.last)))]
        if day not in current:
            return [Problem("date", _(
                "La data deve essere nella finestra di autolettura in corso, dal %(first)s al %(last)s.",
                first=i18n.local_date(current.first), last=i18n.local_date(current.last)))]
    problems = same_day(point, day, values)
    if point.is_gas and not problems:
        month_start = day.replace(day=1)
        sent = (Reading.live().where(Reading.supply_point == point, Reading.source == "customer",
                                     Reading.date.between(month_start, month_day(day.year, day.month, 31)))
                .order_by(Reading.date).first())
        if sent is not None:
            problems.append(Problem("date", _(
                "Per il gas si accetta una sola autolettura al mese: ne hai già inviata una con data %(day)s.",
                day=i18n.local_date(sent.date))))
    for register, value in values.items():
        problems += check_register(point, register, day, value, confirmed)
    return problems


def same_day(point, day, values):
    """A reading of these registers on `day` already: one problem, the date's (the day is what to
    change, whichever register), and the values are still checked on their own."""
    readings = list(Reading.live().where(Reading.supply_point == point, Reading.register.in_(list(values)),
                                         Reading.date == day).order_by(Reading.register))
    validated = [r for r in readings if r.status == Reading.VALIDATED]
    if validated:
        shown = "; ".join(i18n.number(r.value) if r.register == "total" else f"{r.register} {i18n.number(r.value)}"
                          for r in validated)
        return [Problem("date", _("Per questa data c'è già una lettura validata (%(value)s).", value=shown))]
    if readings:
        return [Problem("date", _("Hai già inviato una lettura con questa data: la stiamo verificando."))]
    return []


def check_register(point, register, day, value, confirmed):
    previous = last_validated(point, register, before=day)
    if previous is not None and value < previous.value:
        return [Problem(register, _(
            "La lettura è più bassa dell'ultima lettura validata, %(value)s del %(day)s: controlla le cifre.",
            value=i18n.number(previous.value), day=i18n.local_date(previous.date)))]
    later = first_validated_after(point, register, day)
    if later is not None and value > later.value:
        return [Problem(register, _(
            "La lettura è più alta di quella validata del %(day)s, %(value)s, che è successiva: controlla la data e le cifre.",
            value=i18n.number(later.value), day=i18n.local_date(later.date)))]
    if previous is not None and not confirmed:
        usual = usual_daily(point, register, previous)
        daily = (value - previous.value) / (day - previous.date).days
        if usual is not None and daily > PLAUSIBILITY_FACTOR * max(usual, Decimal("0.1")):
            return [Problem(register, _(
                "Dal %(day)s risulterebbero %(daily)s %(unit)s al giorno, molto più del solito (%(usual)s %(unit)s "
                "al giorno): controlla le cifre. Se la lettura è giusta, confermala qui sotto.",
                day=i18n.local_date(previous.date), daily=i18n.number(daily, 1), usual=i18n.number(usual, 1),
                unit=unit(point)), implausible=True)]
    return []


def implied_daily(reading, previous):
    """Consumption per day between a validated reading and a newer one (None without one)."""
    if previous is None or reading.date <= previous.date:
        return None
    return (reading.value - previous.value) / (reading.date - previous.date).days


# --- what happens to a reading ----------------------------------------------------------------

POINT_LOCKS = 0x5E1F << 32  # PostgreSQL advisory locks of the points' readings: far from other locks' numbers


def point_lock(point):
    """The advisory lock (database.one_at_a_time) under which a reading of `point` is checked
    and written."""
    return POINT_LOCKS + point.id


def record(point, user, day, values, submission, photo_path=None, confirmed_implausible=False):
    """Write the reading (one row per register) as "inviata", tell the customer, audit it.
    Call inside a write transaction, after `check`."""
    readings = []
    for register, value in values.items():
        readings.append(Reading.create(
            supply_point=point, date=day, register=register, value=value, source="customer",
            status=Reading.PENDING, submitted_by=user, submission=submission, photo_path=photo_path,
            confirmed_implausible=confirmed_implausible))
    audit.record("reading_submitted", user=user, identifier=readings[0].id, point=point.code,
                 date=day.isoformat(), values=[f"{register} {value}" for register, value in values.items()])
    tell(user, point, readings, "reading_received", _l("Abbiamo ricevuto la tua autolettura"))
    return readings


def submission_of(reading):
    """Every row sent with the same form as `reading` (one per register), by register order."""
    query = Reading.select().where(Reading.supply_point == reading.supply_point_id, Reading.date == reading.date,
                                   Reading.source == "customer", Reading.status == reading.status)
    if reading.submission:
        query = query.where(Reading.submission == reading.submission)
    return sorted(query, key=lambda r: Reading.REGISTERS.index(r.register))


def pending_queue():
    """The back office's queue: the pending self-readings, oldest first, each submission as
    one list of rows, with point, customer and the user who sent it."""
    from models import Customer

    rows = (Reading.select(Reading, SupplyPoint, Customer, User)
            .join(SupplyPoint).join(Customer)
            .switch(Reading).join(User, pw.JOIN.LEFT_OUTER, on=(Reading.submitted_by == User.id))
            .where(Reading.status == Reading.PENDING, Reading.source == "customer")
            .order_by(Reading.created_at, Reading.id))
    groups = {}
    for reading in rows:
        groups.setdefault((reading.supply_point_id, reading.date, reading.submission), []).append(reading)
    queue = []
    for group in groups.values():
        group.sort(key=lambda r: Reading.REGISTERS.index(r.register))
        for reading in group:
            reading.previous = last_validated(reading.supply_point_id, reading.register, before=reading.date)
            reading.daily = implied_daily(reading, reading.previous)
        queue.append(group)
    return queue


def validate(readings, operator):
    """The operator accepts a pending submission. Call inside a write transaction."""
    decide(readings, operator, Reading.VALIDATED, None)
    audit.record("reading_validated", user=operator, customer=readings[0].supply_point.customer_id,
                 identifier=readings[0].id, point=readings[0].supply_point.code)
    if readings[0].submitted_by_id:
        tell(readings[0].submitted_by, readings[0].supply_point, readings, "reading_validated",
             _l("La tua autolettura è stata validata"))


def reject(readings, operator, reason):
    """The operator refuses a pending submission, saying why. Call inside a write transaction."""
    decide(readings, operator, Reading.REJECTED, reason)
    audit.record("reading_rejected", user=operator, customer=readings[0].supply_point.customer_id,
                 identifier=readings[0].id, point=readings[0].supply_point.code, reason=reason)
    if readings[0].submitted_by_id:
        tell(readings[0].submitted_by, readings[0].supply_point, readings, "reading_rejected",
             _l("La tua autolettura non è stata accettata"), reason=reason)


def validated_by_import(reading_ids):
    """The customers' pending readings that the billing system's import sent back, and so
    validated: their senders are told, as when an operator validates (a mail a submission).
    Call inside the import's write transaction."""
    if not reading_ids:
        return
    readings = list(Reading.select(Reading, SupplyPoint).join(SupplyPoint)
                    .where(Reading.id.in_(list(reading_ids))).order_by(Reading.register))
    submissions = {}
    for reading in readings:
        submissions.setdefault(reading.submission or reading.id, []).append(reading)
    for group in submissions.values():
        first = group[0]
        audit.record("reading_validated_by_import", customer=first.supply_point.customer_id, identifier=first.id,
                     point=first.supply_point.code)
        if first.submitted_by_id:
            tell(first.submitted_by, first.supply_point, group, "reading_validated",
                 _l("La tua autolettura è stata validata"))


class AlreadyHandled(Exception):
    """Another operator decided on the submission first: this decision is not written."""


def decide(readings, operator, status, reason):
    """Only rows still pending change: of two operators deciding at once, the second finds
    none (on PostgreSQL its UPDATE waits for the first's row locks, then re-reads the status)
    and raises AlreadyHandled, which rolls its transaction back: one decision, one mail."""
    now = utcnow()
    changed = (Reading.update(status=status, reviewed_by=operator, reviewed_at=now, rejection_reason=reason)
               .where(Reading.id.in_([r.id for r in readings]), Reading.status == Reading.PENDING).execute())
    if changed != len(readings):
        raise AlreadyHandled()
    for reading in readings:
        reading.status, reading.reviewed_by, reading.reviewed_at, reading.rejection_reason = status, operator, now, reason


def tell(user, point, readings, template, subject, **context):
    mailer.queue(user.email, subject, template, language=user.language, user=user, point=point,
                 readings=readings, unit=unit(point),
                 url=mailer.mail_link("readings.self_reading", sp=point.code), **context)


# --- the reminder -----------------------------------------------------------------------------

def remind(today):
    """Mail every user who asked for it that a window of their points' commodity is open
    (`flask remind-readings`, daily): once per user, commodity and window. Returns how many."""
    app = current_app._get_current_object()
    # Links are built from PORTAL_BASE_URL, as in every mail; a daily command has no request.
    with app.test_request_context(base_url=app.config["PORTAL_BASE_URL"]):
        return remind_in_request(today)


def remind_in_request(today):
    sent = 0
    for commodity, setting in WINDOW_SETTINGS.items():
        days = parse_window(current_app.config.get(setting))
        if days is None:
            continue
        window = next((w for w in windows_near(days, today) if today in w), None)
        if window is None:
            continue
        users = (User.select().join(SupplyPoint, on=(SupplyPoint.customer == User.customer))
                 .where(User.notify_readings == True, User.disabled == False,  # noqa: E712 - SQL
                        User.confirmed_at.is_null(False), SupplyPoint.commodity == commodity,
                        SupplyPoint.status == "active")
                 .distinct())
        for user in users:
            with write_transaction():  # the unique index keeps a second, concurrent run from mailing twice
                reminded = ReadingReminder.select().where(
                    ReadingReminder.user == user, ReadingReminder.commodity == commodity,
                    ReadingReminder.window_start == window.first).exists()
                if reminded:
                    continue
                ReadingReminder.create(user=user, commodity=commodity, window_start=window.first)
                points = list(SupplyPoint.for_customer(user.customer_id).where(
                    SupplyPoint.commodity == commodity, SupplyPoint.status == "active"))
                mailer.queue(user.email, _l("È il momento dell'autolettura"), "reading_reminder",
                             language=user.language, user=user, points=points, window=window,
                             url=mailer.mail_link("readings.self_reading", sp=points[0].code))
                sent += 1
    if sent:
        audit.record("reading_reminders", rows=sent)
    return sent
