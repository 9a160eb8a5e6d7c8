"""The portal's data, and the queries that belong to it.

Every query that a customer's request may run is a classmethod scoped to the customer
(`Invoice.for_customer(customer)`), so ownership is enforced by the query itself and a
foreign id is simply not found (404).

Times are stored as naive UTC datetimes (`utcnow()`); pages show them in Europe/Rome.
Codes (customer code, POD/PDR, codice fiscale) are text: leading zeros are significant.
"""
import hashlib
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import peewee as pw

from database import db_wrapper, prepared


def money(total):
    """A sum of money as Decimal: SQLite sums DECIMAL columns as floats. No rows: 0."""
    return Invoice.total.python_value(total) or Decimal(0)


def utcnow():
    """Naive UTC now: the one form of 'now' the database sees."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def token_digest(token):
    """Tokens and session ids are stored hashed, so a leaked database opens no account."""
    return hashlib.sha256(token.encode()).hexdigest()


class BaseModel(db_wrapper.Model):
    pass


class Customer(BaseModel):
    KINDS = ("person", "company", "public_body")

    code = pw.CharField(max_length=6, unique=True)
    name = pw.CharField()
    kind = pw.CharField(max_length=12)
    tax_code = pw.CharField(max_length=16, index=True)
    vat_number = pw.CharField(max_length=11, null=True)
    email = pw.CharField(null=True)
    phone = pw.CharField(null=True)
    fax = pw.CharField(null=True)
    mobile = pw.CharField(null=True)
    address = pw.CharField(null=True)
    postcode = pw.CharField(max_length=5, null=True)
    city = pw.CharField(null=True)
    province = pw.CharField(max_length=2, null=True)
    updated_at = pw.DateTimeField(default=utcnow)

    @property
    def is_person(self):
        return self.kind == "person"

    @property
    def full_address(self):
        return format_address(self.address, self.postcode, self.city, self.province)

    def owner(self):
        """The user who registered with the customer code (None before registration, or once
        their account is closed)."""
        return self.users.where(User.role == User.OWNER, User.closed_at.is_null()).order_by(User.id).first()

    @classmethod
    def search(cls, text):
        """Customers matching a code, a name, a codice fiscale / partita IVA, a POD/PDR or an email."""
        text = text.strip()
        if not text:
            return cls.select().where(False)
        query = cls.select().order_by(cls.code)
        upper = text.upper().replace(" ", "")
        if text.isdigit() and len(text) <= 6:
            return query.where(cls.code.startswith(text.zfill(6) if len(text) == 6 else text))
        if "@" in text:
            users = User.select(User.customer).where(User.email.contains(text.lower()))
            return query.where(cls.email.contains(text.lower()) | cls.id.in_(users))
        points = SupplyPoint.select(SupplyPoint.customer).where(SupplyPoint.pod_pdr == upper)
        return query.where(
            cls.name.contains(text.upper()) | (cls.tax_code == upper) | (cls.vat_number == upper)
            | cls.id.in_(points)
        )


class SupplyPoint(BaseModel):
    COMMODITIES = ("electricity", "gas")

    code = pw.CharField(unique=True)
    customer = pw.ForeignKeyField(Customer, backref="supply_points", on_delete="CASCADE")
    commodity = pw.CharField(max_length=11)
    pod_pdr = pw.CharField(max_length=16, index=True)
    address = pw.CharField(null=True)
    postcode = pw.CharField(max_length=5, null=True)
    city = pw.CharField(null=True)
    province = pw.CharField(max_length=2, null=True)
    status = pw.CharField(max_length=6, default="active")
    start_date = pw.DateField(null=True)
    end_date = pw.DateField(null=True)
    # The billing system's tech_* and contract_* columns, as JSON objects {label: value}.
    technical_data = pw.TextField(default="{}")
    contract_data = pw.TextField(default="{}")
    # When an import last brought measures for the point: what "Dati aggiornati al" tells.
    measures_imported_at = pw.DateTimeField(null=True)
    # The end of its newest measure (naive UTC), kept by totals.py with the totals.
    measures_until = pw.DateTimeField(null=True)

    class Meta:
        indexes = ((("customer", "code"), False),)

    @classmethod
    def for_customer(cls, customer):
        return cls.select().where(cls.customer == customer).order_by(*cls.selector_order())

    @classmethod
    def owned(cls, customer, point):
        """The point's id if it is the customer's, else NULL: a scalar subquery that a query of a
        point's rows (`supply_point == owned(...)`) runs once, rather than a join to every row;
        `=`, not IN, so that the (point, day or start) index gives the order and nothing is sorted."""
        return cls.select(cls.id).where(cls.customer == customer, cls.id == point)

    @classmethod
    def of_customer(cls, customer, code):
        """The customer's point with this code (a query: another customer's code finds nothing).
        Pages pick it from the points the session already loaded; this is for callers without one."""
        return cls.for_customer(customer).where(cls.code == code)

    @classmethod
    def selector_order(cls):
        """Active points first, then by code: the selector's order."""
        return cls.status, cls.code

    @property
    def is_gas(self):
        return self.commodity == "gas"

    @property
    def full_address(self):
        return format_address(self.address, self.postcode, self.city, self.province)

    @property
    def technical(self):
        return json.loads(self.technical_data or "{}")

    @property
    def contractual(self):
        return json.loads(self.contract_data or "{}")


def format_address(street, postcode, city, province):
    """'VIA PROVA 5 - 48124 RAVENNA (RA)', the way bills print it."""
    place = " ".join(part for part in (postcode, city) if part)
    if province:
        place += f" ({province})"
    return " - ".join(part for part in (street, place) if part)


class User(BaseModel):
    """A login. Customers' users (owner, delegate) belong to a customer; staff do not."""

    OWNER, DELEGATE, OPERATOR, ADMIN = "owner", "delegate", "operator", "admin"
    CUSTOMER_ROLES = (OWNER, DELEGATE)
    STAFF_ROLES = (OPERATOR, ADMIN)
    READ, FULL = "read", "full"  # a delegate's rights: read only, or all the owner may do
    DELEGATE_RIGHTS = (READ, FULL)
    DELEGATE_LIMIT = 10  # live delegates and invitations per customer

    customer = pw.ForeignKeyField(Customer, null=True, backref="users", on_delete="CASCADE")
    role = pw.CharField(max_length=8, default=OWNER)
    username = pw.CharField(null=True, unique=True)  # stored lower-case
    email = pw.CharField(index=True)
    password_hash = pw.CharField()
    first_name = pw.CharField(null=True)
    last_name = pw.CharField(null=True)
    tax_code = pw.CharField(max_length=16, null=True)  # of the person who registered
    mobile = pw.CharField(null=True)
    language = pw.CharField(max_length=2, default="it")
    notify_invoices = pw.BooleanField(default=True)
    notify_readings = pw.BooleanField(default=False)  # a mail when a self-reading window opens
    totp_secret = pw.CharField(null=True)  # staff's second factor, encrypted (totp.encrypt_secret)
    totp_pending_secret = pw.CharField(null=True)  # the one being enrolled, encrypted, until a code proves it
    totp_last_step = pw.BigIntegerField(null=True)  # the last 30-second step used: no replay
    created_at = pw.DateTimeField(default=utcnow)
    confirmed_at = pw.DateTimeField(null=True)
    disabled = pw.BooleanField(default=False)
    locked_until = pw.DateTimeField(null=True)
    last_login_at = pw.DateTimeField(null=True)
    previous_login_at = pw.DateTimeField(null=True)
    password_changed_at = pw.DateTimeField(default=utcnow)
    # A delegate's rights (READ or FULL; None for the others) and who invited them. A revoked
    # delegate and a closed account keep their row (disabled), so the audit log still names them.
    delegate_rights = pw.CharField(max_length=4, null=True)
    invited_by = pw.ForeignKeyField("self", null=True, backref="delegates_invited", on_delete="SET NULL")
    revoked_at = pw.DateTimeField(null=True)
    closed_at = pw.DateTimeField(null=True)  # "Chiudi l'account": the login's data erased then

    # Flask-Login's interface. The id Flask-Login keeps in the cookie is the server-side
    # session's token (see UserSession), never the user's primary key.
    is_anonymous = False
    session_token = None
    _supply_points = None  # the session's query brings them along (UserSession.with_user)

    @property
    def supply_points(self):
        """The customer's supply points in the selector's order ([] for staff)."""
        if self._supply_points is None:
            self._supply_points = list(SupplyPoint.for_customer(self.customer_id)) if self.customer_id else []
        return self._supply_points

    @property
    def is_authenticated(self):
        return True

    @property
    def is_active(self):
        return not self.disabled and self.confirmed_at is not None

    def get_id(self):
        return self.session_token

    @classmethod
    def staff(cls):
        """Operators and administrators, by email."""
        return cls.select().where(cls.role.in_(cls.STAFF_ROLES)).order_by(cls.email)

    @classmethod
    def of_customer(cls, customer):
        """The customer's logins (holder and delegates), oldest first."""
        return cls.select().where(cls.customer == customer).order_by(cls.id)

    @property
    def is_staff(self):
        return self.role in self.STAFF_ROLES

    @property
    def can_write(self):
        """May this customer's user send what changes the customer's records (self-readings,
        tickets, contact data, delegates)? Every customer write view asks this one place; a
        delegate with read-only rights may not."""
        return self.customer_id is not None and (
            self.role == self.OWNER or (self.role == self.DELEGATE and self.delegate_rights == self.FULL))

    @classmethod
    def delegates_of(cls, customer):
        """The customer's delegates, invited or active, not revoked nor closed, oldest first."""
        return cls.select().where(cls.customer == customer, cls.role == cls.DELEGATE,
                                  cls.revoked_at.is_null(), cls.closed_at.is_null()).order_by(cls.id)

    @property
    def display_name(self):
        if self.customer_id and self.role == self.OWNER:
            return self.customer.name
        return " ".join(p for p in (self.first_name, self.last_name) if p) or self.email


class UserSession(BaseModel):
    """A login session kept on the server, so that logout really ends it."""

    token_hash = pw.CharField(max_length=64, unique=True)
    user = pw.ForeignKeyField(User, backref="sessions", on_delete="CASCADE")
    created_at = pw.DateTimeField(default=utcnow)
    last_seen_at = pw.DateTimeField(default=utcnow)
    ip = pw.CharField(max_length=45, null=True)
    user_agent = pw.CharField(null=True)

    @classmethod
    def with_user(cls, token_hash):
        """The session of this token with its user and, for a customer's user, the customer
        and its supply points, which every customer page shows: one query, not three."""
        cache = getattr(db_wrapper.database.obj, "session_cache", None)
        if cache is not None:
            rows = list(session_user_points.cached(cache, token_hash, token_hash=token_hash))
        else:
            rows = list(session_user_points(token_hash=token_hash))
        if not rows:
            return None
        session = rows[0]
        session.user._supply_points = [row.user.point for row in rows if row.user.point is not None]
        return session


@prepared
def session_user_points(token_hash):
    """One row per supply point of the session's customer, with the user and the customer
    (the header's "Benvenuto"); one row, with neither customer nor point, for staff."""
    return (UserSession.select(UserSession, User, Customer, SupplyPoint)
            .join(User)
            .join(Customer, pw.JOIN.LEFT_OUTER)
            .join_from(User, SupplyPoint, pw.JOIN.LEFT_OUTER, on=(SupplyPoint.customer == User.customer), attr="point")
            .where(UserSession.token_hash == token_hash)
            .order_by(*SupplyPoint.selector_order()))


class EmailToken(BaseModel):
    """A single-use, expiring link sent by email (confirm registration, reset password...)."""

    CONFIRM, RESET, NEW_EMAIL, INVITE = "confirm", "reset", "new_email", "invite"

    token_hash = pw.CharField(max_length=64, unique=True)
    user = pw.ForeignKeyField(User, backref="tokens", on_delete="CASCADE")
    purpose = pw.CharField(max_length=10)
    new_email = pw.CharField(null=True)
    created_at = pw.DateTimeField(default=utcnow)
    expires_at = pw.DateTimeField()
    used_at = pw.DateTimeField(null=True)


class Consent(BaseModel):
    """A privacy consent as given: one row per answer, the newest one counts."""

    KINDS = ("privacy", "marketing", "third_parties", "profiling")
    TEXT_VERSION = "2026-11"  # of the privacy notice the answers refer to (auth/privacy.html)

    user = pw.ForeignKeyField(User, backref="consents", on_delete="CASCADE")
    kind = pw.CharField(max_length=14)
    granted = pw.BooleanField()
    text_version = pw.CharField(max_length=20)
    recorded_at = pw.DateTimeField(default=utcnow)
    ip = pw.CharField(max_length=45, null=True)

    @classmethod
    def latest_by_user(cls, users):
        """{user id: {kind: the newest answer}} of these users."""
        latest = {}
        for consent in cls.select().where(cls.user.in_([user.id for user in users])).order_by(cls.recorded_at):
            latest.setdefault(consent.user_id, {})[consent.kind] = consent  # a newer one replaces it
        return latest


class Invoice(BaseModel):
    STATUSES = ("paid", "unpaid", "partial")

    customer = pw.ForeignKeyField(Customer, backref="invoices", on_delete="CASCADE")
    supply_point = pw.ForeignKeyField(SupplyPoint, null=True, backref="invoices", on_delete="SET NULL")
    number = pw.CharField()
    year = pw.IntegerField()  # issue_date's year: with number, the natural key
    issue_date = pw.DateField()
    due_date = pw.DateField(null=True)
    period_start = pw.DateField(null=True)
    period_end = pw.DateField(null=True)
    total = pw.DecimalField(max_digits=12, decimal_places=2)
    status = pw.CharField(max_length=7, default="unpaid")
    energy_f1_kwh = pw.DecimalField(max_digits=12, decimal_places=3, null=True)
    energy_f2_kwh = pw.DecimalField(max_digits=12, decimal_places=3, null=True)
    energy_f3_kwh = pw.DecimalField(max_digits=12, decimal_places=3, null=True)
    peak_power_kw = pw.DecimalField(max_digits=10, decimal_places=3, null=True)
    gas_smc = pw.DecimalField(max_digits=12, decimal_places=3, null=True)
    pdf_path = pw.CharField(null=True)  # inside the file store
    pdf_sha256 = pw.CharField(max_length=64, null=True)

    class Meta:
        indexes = (
            (("number", "year"), True),
            # The list's order, newest first, straight from the index: a page reads its rows
            # without sorting the point's (or, for "Tutti i punti", the customer's) invoices.
            (("customer", "supply_point", "issue_date", "id"), False),
            (("customer", "issue_date", "id"), False),
        )

    @classmethod
    def for_customer(cls, customer):
        return cls.select().where(cls.customer == customer)

    @classmethod
    def billed_withdrawals(cls, customer, point, first_day, last_day):
        """Prelievi Fatturati's figures: (period start, F1, F2, F3 kWh, peak kW, Smc) of the
        customer's invoices of `point` whose period starts between the two days (included)."""
        return (cls.for_customer(customer)
                .select(cls.period_start, cls.energy_f1_kwh, cls.energy_f2_kwh, cls.energy_f3_kwh, cls.peak_power_kw,
                        cls.gas_smc)
                .where(cls.supply_point == point, cls.period_start.between(first_day, last_day))
                .tuples())

    @classmethod
    def billed_years(cls, customer, point):
        """The years in which the periods of the customer's invoices of `point` start, newest first."""
        starts = (cls.for_customer(customer).select(cls.period_start)
                  .where(cls.supply_point == point, cls.period_start.is_null(False)).tuples())
        return sorted({start.year for (start,) in starts}, reverse=True)

    @classmethod
    def newest_first(cls):
        """The list's order, which its indexes hold: by issue date, the same date by id."""
        return cls.issue_date.desc(), cls.id.desc()

    @classmethod
    def count_and_total(cls, query):
        """How many invoices `query` has, their total (a float on SQLite: python_value makes
        it money) and how many of them have a PDF."""
        return query.select(pw.fn.COUNT(cls.id), pw.fn.SUM(cls.total), pw.fn.COUNT(cls.pdf_path))

    # The list's Stato filter: its value -> how `filtered` selects it. "unpaid" is every invoice
    # not fully paid (partly paid too), as the Home Page counts them; "overdue" those of them
    # past their due date.
    STATUS_FILTERS = {"unpaid": "not_paid", "overdue": "overdue", "partial": "status", "paid": "status"}

    @classmethod
    def list_filters(cls, customer, point, today, year=None, status=None, all_points=False):
        """The arguments of `filtered` and `invoice_page` for the list's choices (`point` an id or
        None, `today` Rome's); the query's shape (scope, by_year, by_status) follows from them."""
        return dict(customer=customer, point=point, year=year, status=status, today=today,
                    scope="all" if all_points else "point" if point else "none",
                    by_year=year is not None, by_status=cls.STATUS_FILTERS.get(status))

    @classmethod
    def page_and_figures(cls, filters, offset, limit):
        """A page of the filtered list (dicts) and the whole list's count, total and PDFs."""
        rows = list(invoice_page(**filters, offset=offset, limit=limit))
        if rows:
            count, total, pdfs = rows[0]["filtered_count"], rows[0]["filtered_total"], rows[0]["filtered_pdfs"]
        else:  # past the last page, or nothing at all: the figures had no row to ride on
            count, total, pdfs = cls.count_and_total(cls.filtered(**filters)).scalar(as_tuple=True)
        return rows, count, money(total), pdfs

    @classmethod
    def years_in_scope(cls, filters):
        """The years of the list's points (whatever year and status are chosen), newest first."""
        scope = cls.filtered(**dict(filters, by_year=False, by_status=None))
        return [y for (y,) in scope.select(cls.year).distinct().order_by(cls.year.desc()).tuples()]

    @classmethod
    def filtered(cls, customer, point, year, status, today, *, scope, by_year, by_status):
        """The customer's invoices as the list's filters choose them. scope: "point" (of
        `point`), "none" (those tied to no point) or "all"; by_status: None, "overdue" (not
        paid and due before `today`), "not_paid" (unpaid or partly paid: what the Home Page
        counts as still to pay) or "status" (in `status`). Values or `Parameter`s."""
        query = cls.for_customer(customer)
        if scope == "point":
            query = query.where(cls.supply_point == point)
        elif scope == "none":
            query = query.where(cls.supply_point.is_null())
        if by_year:
            query = query.where(cls.year == year)
        if by_status == "overdue":
            query = query.where(cls.status != "paid", cls.due_date < today)
        elif by_status == "not_paid":
            query = query.where(cls.status != "paid")
        elif by_status == "status":
            query = query.where(cls.status == status)
        return query


@prepared
def invoice_page(customer, point, year, status, today, offset, limit, *, scope, by_year, by_status):
    """A page of the filtered invoices, newest first, as dicts of the columns the list shows;
    each row also carries the count, the total and the PDFs of the whole filtered list. One
    query: the figures are subqueries, which both databases run once (window functions made SQLite
    sort the whole list, a second query cost PostgreSQL a round trip)."""
    query = Invoice.filtered(customer, point, year, status, today, scope=scope, by_year=by_year, by_status=by_status)
    return (query.select(Invoice.id, Invoice.number, Invoice.issue_date, Invoice.period_start, Invoice.period_end,
                         Invoice.total, Invoice.due_date, Invoice.status, Invoice.pdf_path,
                         Invoice.supply_point.alias("supply_point_id"),
                         query.select(pw.fn.COUNT(Invoice.id)).alias("filtered_count"),
                         query.select(pw.fn.SUM(Invoice.total)).alias("filtered_total"),
                         query.select(pw.fn.COUNT(Invoice.pdf_path)).alias("filtered_pdfs"))
            .order_by(*Invoice.newest_first())
            .offset(offset).limit(limit)
            .dicts())


@prepared
def latest_invoice(customer, point, *, of_point):
    """The Home Page's latest invoice: the selected point's, or the customer's when it has none."""
    query = Invoice.for_customer(customer)
    if of_point:
        query = query.where(Invoice.supply_point == point)
    return query.order_by(*Invoice.newest_first()).limit(1)


@prepared
def unpaid_invoices(customer):
    """How many of the customer's invoices are not (or only partly) paid, their total and
    PDFs: exactly the invoice list's "Da pagare" over every year and point."""
    query = Invoice.filtered(customer, None, None, None, None, scope="all", by_year=False, by_status="not_paid")
    return Invoice.count_and_total(query).tuples()


class Reading(BaseModel):
    """A meter reading: from the distributor, estimated, or sent by the customer."""

    REGISTERS = ("F1", "F2", "F3", "total")
    SOURCES = ("distributor", "customer", "estimated")
    PENDING, VALIDATED, REJECTED = "pending", "validated", "rejected"

    supply_point = pw.ForeignKeyField(SupplyPoint, backref="readings", on_delete="CASCADE")
    date = pw.DateField()
    register = pw.CharField(max_length=5)
    value = pw.DecimalField(max_digits=12, decimal_places=3)
    source = pw.CharField(max_length=11, default="distributor")
    status = pw.CharField(max_length=9, default=VALIDATED)
    submitted_by = pw.ForeignKeyField(User, null=True, backref="readings", on_delete="SET NULL")
    created_at = pw.DateTimeField(default=utcnow)
    # A self-reading (self_readings.py): the form's one-time key (a double click sends it
    # twice, it is written once), the photo in the file store, whether the customer confirmed
    # a consumption far above the usual, and the operator's decision.
    submission = pw.CharField(max_length=36, null=True, index=True)
    photo_path = pw.CharField(max_length=100, null=True)
    confirmed_implausible = pw.BooleanField(default=False)
    reviewed_by = pw.ForeignKeyField(User, null=True, backref="reviewed_readings", on_delete="SET NULL")
    reviewed_at = pw.DateTimeField(null=True)
    rejection_reason = pw.CharField(max_length=300, null=True)

    @classmethod
    def for_customer(cls, customer):
        """The readings of all the customer's points, newest first, each with its point."""
        return (cls.select(cls, SupplyPoint).join(SupplyPoint).where(SupplyPoint.customer == customer)
                .order_by(cls.date.desc()))

    @classmethod
    def for_point(cls, customer, point):
        """The readings of one of the customer's points (another customer's point has none)."""
        return cls.for_customer(customer).where(cls.supply_point == point)

    @classmethod
    def live(cls):
        """The readings that count: a rejected one is kept for the history, and no more."""
        return cls.select().where(cls.status != cls.REJECTED)

    @property
    def photo_content_type(self):
        return "image/png" if (self.photo_path or "").endswith(".png") else "image/jpeg"


# One live reading per point, day and register. A rejected one leaves the day free for a new
# reading, and the billing system's import finds (and validates) the customer's own row.
Reading.add_index(Reading.index(Reading.supply_point, Reading.date, Reading.register, unique=True,
                                where=Reading.status != Reading.REJECTED))


class ReadingReminder(BaseModel):
    """A reminder mail sent when a self-reading window opened (`flask remind-readings`): one
    per user, commodity and window, however often the command runs."""

    user = pw.ForeignKeyField(User, backref="reading_reminders", on_delete="CASCADE")
    commodity = pw.CharField(max_length=11)
    window_start = pw.DateField()
    sent_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("user", "commodity", "window_start"), True),)


class Measure(BaseModel):
    """An interval of metered energy; `start` is the interval's start in UTC."""

    supply_point = pw.ForeignKeyField(SupplyPoint, backref="measures", on_delete="CASCADE")
    start = pw.DateTimeField()
    kwh = pw.FloatField()
    interval_minutes = pw.SmallIntegerField(default=60)
    quality = pw.CharField(max_length=9, default="actual")

    class Meta:
        indexes = ((("supply_point", "start"), True),)

    @classmethod
    def for_point(cls, customer, point):
        """The measures of one of the customer's points, oldest first (another customer's point
        has none)."""
        return (cls.select().join(SupplyPoint)
                .where(SupplyPoint.customer == customer, cls.supply_point == point).order_by(cls.start))

    @classmethod
    def between(cls, customer, point, since=None, before=None):
        """The measures of one of the customer's points starting from `since` and before `before`
        (naive UTC; None: no bound), oldest first."""
        query = cls.select().where(cls.supply_point == SupplyPoint.owned(customer, point))
        if since is not None:
            query = query.where(cls.start >= since)
        if before is not None:
            query = query.where(cls.start < before)
        return query.order_by(cls.start)

    @classmethod
    def newest_interval_minutes(cls, customer, point):
        """15 or 60: the length of the point's newest measure (a Green Button file's interval),
        None without measures."""
        newest = cls.between(customer, point).order_by(cls.start.desc()).first()
        return newest.interval_minutes if newest is not None else None

    @classmethod
    def batches_between(cls, customer, point, since=None, before=None, batch=10000):
        """`between`'s measures as lists of (start, kwh, interval_minutes, quality) tuples, as the
        driver gives them (start: text on SQLite, a datetime on PostgreSQL), `batch` rows at a
        time, each batch picking up after the last start (keyset): memory stays flat however long
        the interval, on both databases (psycopg2's ordinary cursor would fetch every row at once)."""
        columns = (cls.start, cls.kwh, cls.interval_minutes, cls.quality)
        query = cls.between(customer, point, since, before).select(*columns)
        while True:
            rows = cls._meta.database.execute(query.limit(batch)).fetchall()
            if rows:
                yield rows
            if len(rows) < batch:
                return
            # The next batch starts after this one's last row, with no other lower bound: given
            # two, SQLite walked the index from the first and filtered up to the second.
            query = cls.between(customer, point, None, before).select(*columns).where(cls.start > rows[-1][0])

    @classmethod
    def first_start(cls, customer, point):
        """The start of the point's oldest measure (naive UTC), None without measures."""
        oldest = cls.between(customer, point).select(cls.start).first()
        return oldest and oldest.start


class DailyConsumption(BaseModel):
    """A point's metered kWh over one local (Europe/Rome) day, by ARERA band (bands.py): what
    every chart longer than a day reads, so a year is 365 rows whatever the resolution. Kept
    by the import in the transaction that writes the measures; `flask rebuild-totals` makes
    them again from the measures."""

    supply_point = pw.ForeignKeyField(SupplyPoint, backref="daily_consumption", on_delete="CASCADE")
    day = pw.DateField()  # the local day
    f1 = pw.FloatField(default=0)
    f2 = pw.FloatField(default=0)
    f3 = pw.FloatField(default=0)
    intervals = pw.IntegerField(default=0)  # how many measures the day has
    estimated = pw.IntegerField(default=0)  # how many of them are estimated
    peak_kwh = pw.FloatField(null=True)  # the day's largest hourly consumption
    peak_start = pw.DateTimeField(null=True)  # that hour's start, UTC

    class Meta:
        indexes = ((("supply_point", "day"), True),)

    @classmethod
    def between(cls, customer, point, first_day, last_day):
        """The days of one of the customer's points from first_day to last_day (both included),
        oldest first (another customer's point has none)."""
        return (cls.select().where(cls.supply_point == SupplyPoint.owned(customer, point),
                                   cls.day.between(first_day, last_day))
                .order_by(cls.day))


class MonthlyConsumption(BaseModel):
    """The same per local calendar month (`month` is its first day): a year chart reads 12 rows."""

    supply_point = pw.ForeignKeyField(SupplyPoint, backref="monthly_consumption", on_delete="CASCADE")
    month = pw.DateField()
    f1 = pw.FloatField(default=0)
    f2 = pw.FloatField(default=0)
    f3 = pw.FloatField(default=0)
    intervals = pw.IntegerField(default=0)
    estimated = pw.IntegerField(default=0)
    peak_kwh = pw.FloatField(null=True)
    peak_start = pw.DateTimeField(null=True)

    class Meta:
        indexes = ((("supply_point", "month"), True),)

    # The comparison with similar households says nothing about a smaller group, and counts a
    # household's month only when at least this share of its hours was metered.
    COMPARISON_MINIMUM_GROUP = 20
    COMPARISON_MINIMUM_COVERAGE = 0.9

    @classmethod
    def between(cls, customer, point, first_month, last_month):
        """The months (first days) of one of the customer's points from first_month to last_month,
        both included, oldest first (another customer's point has none)."""
        return (cls.select().where(cls.supply_point == SupplyPoint.owned(customer, point),
                                   cls.month.between(first_month, last_month))
                .order_by(cls.month))

    @classmethod
    def household_comparison(cls, customer, point, month):
        """Where the customer's `month` ranks among the utility's households (Customer.kind
        "person") with a point of the same commodity in the same province: {"count", "own",
        "median", "efficient" (the 25th percentile), "using_more" (percent of the others above)},
        or None for a customer who is not a household, a month they have no figure for, or a
        group under COMPARISON_MINIMUM_GROUP. Each household counts once, with the sum of its
        points of the commodity. Only the aggregates leave this method, rounded to whole kWh, so
        no other customer's figure can be read from the page."""
        own = (SupplyPoint.select(SupplyPoint, Customer).join(Customer)
               .where(SupplyPoint.customer == customer, SupplyPoint.id == point).first())
        if own is None or own.customer.kind != "person":
            return None
        province = own.province or own.customer.province
        if not province:
            return None
        next_month = month.replace(year=month.year + month.month // 12, month=month.month % 12 + 1)
        minimum = (next_month - month).days * 24 * cls.COMPARISON_MINIMUM_COVERAGE
        total = cls.f1 + cls.f2 + cls.f3
        place = pw.fn.COALESCE(SupplyPoint.province, Customer.province)
        rows = (cls.select(SupplyPoint.customer, pw.fn.SUM(total))
                .join(SupplyPoint).join(Customer)
                .where(cls.month == month, cls.intervals >= minimum, Customer.kind == "person",
                       SupplyPoint.commodity == own.commodity, place == province)
                .group_by(SupplyPoint.customer).tuples())
        totals = dict(rows)
        mine = totals.pop(own.customer_id, None)
        if mine is None or len(totals) + 1 < cls.COMPARISON_MINIMUM_GROUP:
            return None
        ordered = sorted([*totals.values(), mine])
        return {"count": len(ordered), "own": mine, "median": round(percentile(ordered, 0.5)),
                "efficient": round(percentile(ordered, 0.25)),
                "using_more": round(100 * sum(1 for value in totals.values() if value > mine) / len(totals))}


def percentile(ordered, share):
    """The value below which `share` of the sorted values lie, interpolated between the two
    nearest (PostgreSQL's percentile_cont): seldom any one customer's own figure."""
    position = (len(ordered) - 1) * share
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


# What every Grafici avanzati view reads (the period's totals and the year before's, or a day's
# measures), their SQL built once per process (database.prepared): for such small reads building
# the SQL cost more than running it. Called with keywords only.
daily_totals = prepared(DailyConsumption.between)
monthly_totals = prepared(MonthlyConsumption.between)
measures_between = prepared(Measure.between)  # a day chart's; both bounds given


class Ticket(BaseModel):
    """A customer's question to the utility, and its conversation (TicketMessage).

    Status: open (the utility has to act), in_progress (an operator is on it),
    waiting_customer (answered: the ball is with the customer; the menu's badge counts these),
    closed (the customer may reopen it within TICKET_REOPEN_DAYS of closed_at)."""

    OPEN, IN_PROGRESS, WAITING_CUSTOMER, CLOSED = "open", "in_progress", "waiting_customer", "closed"
    STATUSES = (OPEN, IN_PROGRESS, WAITING_CUSTOMER, CLOSED)
    CATEGORIES = ("billing", "readings", "contract", "fault", "other")
    SUBJECT_MAX = 200
    BODY_MAX = 10_000  # characters of one message: a long letter, not a pasted log

    customer = pw.ForeignKeyField(Customer, backref="tickets", on_delete="CASCADE")
    supply_point = pw.ForeignKeyField(SupplyPoint, null=True, backref="tickets", on_delete="SET NULL")
    opened_by = pw.ForeignKeyField(User, null=True, backref="tickets", on_delete="SET NULL")
    subject = pw.CharField()  # 255 in the database; the form allows SUBJECT_MAX
    category = pw.CharField(max_length=20, default="other")
    status = pw.CharField(max_length=16, default=OPEN)
    assignee = pw.ForeignKeyField(User, null=True, backref="assigned_tickets", on_delete="SET NULL")
    created_at = pw.DateTimeField(default=utcnow)
    updated_at = pw.DateTimeField(default=utcnow)
    closed_at = pw.DateTimeField(null=True)
    # The new-ticket form's key: the same form sent twice (a double click) opens one ticket.
    idempotency_key = pw.CharField(max_length=32, null=True)

    class Meta:
        indexes = ((("customer", "idempotency_key"), True), (("customer", "status"), False))

    @classmethod
    def for_customer(cls, customer):
        return cls.select().where(cls.customer == customer)

    @classmethod
    def waiting_for(cls, customer):
        """How many of the customer's tickets have an answer waiting for them (the menu's badge)."""
        return cls.select().where(cls.customer == customer, cls.status == cls.WAITING_CUSTOMER).count()

    @classmethod
    def queue(cls):
        """The back office's queue: every ticket with its customer and assignee, oldest update first."""
        Assignee = User.alias("assignee")
        return (cls.select(cls, Customer, Assignee).join(Customer).switch(cls)
                .join(Assignee, pw.JOIN.LEFT_OUTER, on=(cls.assignee == Assignee.id))
                .order_by(cls.updated_at, cls.id))

    @property
    def is_closed(self):
        return self.status == self.CLOSED

    def reopenable(self, days, now=None):
        """A closed ticket the customer may still reopen by replying."""
        if not self.is_closed:
            return False
        return self.closed_at is None or (now or utcnow()) - self.closed_at <= timedelta(days=days)


class TicketMessage(BaseModel):
    """One message of a ticket: the customer's, an operator's reply, or an operator's internal
    note (`internal`), which the customer never sees: pages, mails and exports ask `visible()`."""

    ticket = pw.ForeignKeyField(Ticket, backref="messages", on_delete="CASCADE")
    author = pw.ForeignKeyField(User, null=True, backref="ticket_messages", on_delete="SET NULL")
    from_staff = pw.BooleanField(default=False)
    internal = pw.BooleanField(default=False)
    body = pw.TextField()
    created_at = pw.DateTimeField(default=utcnow)
    idempotency_key = pw.CharField(max_length=32, null=True)  # a reply sent twice is kept once

    class Meta:
        indexes = ((("ticket", "idempotency_key"), True),)

    @classmethod
    def visible(cls, ticket):
        """What the customer sees of a ticket, oldest first, each with its author (the page says
        who wrote it): never an internal note."""
        return (cls.select(cls, User).join(User, pw.JOIN.LEFT_OUTER, on=(cls.author == User.id))
                .where(cls.ticket == ticket, cls.internal == False).order_by(cls.created_at, cls.id))  # noqa: E712

    @classmethod
    def all_of(cls, ticket):
        """The whole conversation with the internal notes, for the staff, oldest first."""
        return cls.select().where(cls.ticket == ticket).order_by(cls.created_at, cls.id)


class TicketAttachment(BaseModel):
    """A file sent with a message (checked by uploads.accept), kept in the file store."""

    MAX_PER_MESSAGE = 3
    MAX_TOTAL_BYTES = 10 * 1024 * 1024

    message = pw.ForeignKeyField(TicketMessage, backref="attachments", on_delete="CASCADE")
    file = pw.CharField()  # path inside the file store
    name = pw.CharField(max_length=200)  # as the customer's computer called it, for display only
    content_type = pw.CharField(max_length=100)
    size = pw.IntegerField()

    @classmethod
    def of_messages(cls, message_ids):
        """{message id: [attachments]}: one query for a whole conversation."""
        found = {}
        for attachment in cls.select().where(cls.message.in_(list(message_ids))).order_by(cls.id):
            found.setdefault(attachment.message_id, []).append(attachment)
        return found


class CannedReply(BaseModel):
    """A reply the utility writes once and operators insert into their answers."""

    TITLE_MAX = 100

    title = pw.CharField(max_length=TITLE_MAX)
    body = pw.TextField()
    updated_by = pw.ForeignKeyField(User, null=True, backref="canned_replies", on_delete="SET NULL")
    updated_at = pw.DateTimeField(default=utcnow)

    @classmethod
    def by_title(cls):
        return cls.select().order_by(cls.title, cls.id)


class Document(BaseModel):
    """A file published to customers: generic documentation, or one customer's own."""

    GENERIC_SECTIONS = ("modulistica", "normative", "comunicati", "informazioni", "storico")
    CUSTOMER_SECTIONS = ("personal", "report")

    file = pw.CharField()  # path inside the file store
    source_name = pw.CharField(null=True)  # the name it came with: with customer, the natural key
    title = pw.CharField()
    section = pw.CharField(max_length=12)
    customer = pw.ForeignKeyField(Customer, null=True, backref="documents", on_delete="CASCADE")
    published_on = pw.DateField()
    period_start = pw.DateField(null=True)
    period_end = pw.DateField(null=True)
    content_type = pw.CharField(default="application/pdf")
    size = pw.IntegerField(default=0)
    sha256 = pw.CharField(max_length=64, null=True)
    unpublished_at = pw.DateTimeField(null=True)

    class Meta:
        indexes = ((("source_name", "customer"), False), (("section", "published_on"), False))

    @classmethod
    def customer_problem(cls, section, has_customer):
        """"required" when a document of `section` needs a customer and has none, "forbidden"
        when it is for everybody and has one, None when right (each caller words it)."""
        if section in cls.CUSTOMER_SECTIONS and not has_customer:
            return "required"
        if section in cls.GENERIC_SECTIONS and has_customer:
            return "forbidden"
        return None

    @classmethod
    def generic(cls, section):
        return cls.select().where(
            cls.section == section, cls.customer.is_null(), cls.unpublished_at.is_null()
        )

    @classmethod
    def for_customer(cls, customer):
        """The customer's own published documents (personal ones and reports)."""
        return cls.select().where(cls.customer == customer, cls.unpublished_at.is_null())

    @classmethod
    def for_staff(cls):
        """Every document, published or withdrawn, newest first, with its customer if it has one."""
        return (cls.select(cls, Customer).join(Customer, pw.JOIN.LEFT_OUTER)
                .order_by(cls.published_on.desc(), cls.id.desc()))

    @classmethod
    def visible_to(cls, customer):
        """Every published document the customer may open: their own and those for everybody."""
        return cls.select().where(cls.unpublished_at.is_null(), cls.customer.is_null() | (cls.customer == customer))


@prepared
def latest_announcements(limit):
    """The newest Comunicati, for the Home Page."""
    return Document.generic("comunicati").order_by(Document.published_on.desc()).limit(limit)


class AuditLog(BaseModel):
    """Who did what, when and from where. Never a password, a token or a full codice fiscale."""

    at = pw.DateTimeField(default=utcnow, index=True)
    user = pw.ForeignKeyField(User, null=True, backref="audit_entries", on_delete="SET NULL")
    customer = pw.ForeignKeyField(Customer, null=True, backref="audit_entries", on_delete="SET NULL")
    action = pw.CharField(max_length=40, index=True)
    ip = pw.CharField(max_length=45, null=True)
    detail = pw.TextField(default="")

    @classmethod
    def search(cls, user=None, customer_code=None, action=None, since=None, before=None):
        """Entries newest first, with their user and customer, as the Registro attività filters
        them: `user` an email or a username, `since` and `before` naive UTC instants."""
        query = (cls.select(cls, User, Customer)
                 .join(User, on=(cls.user == User.id), join_type=pw.JOIN.LEFT_OUTER)
                 .switch(cls)
                 .join(Customer, on=(cls.customer == Customer.id), join_type=pw.JOIN.LEFT_OUTER)
                 .order_by(cls.id.desc()))
        if user:
            query = query.where((User.email == user) | (User.username == user))
        if customer_code:
            query = query.where(Customer.code == customer_code)
        if action:
            query = query.where(cls.action == action)
        if since:
            query = query.where(cls.at >= since)
        if before:
            query = query.where(cls.at < before)
        return query

    @classmethod
    def for_customer(cls, customer):
        """What was done on the customer's behalf or to it, newest first, with who did it."""
        return (cls.select(cls, User).join(User, on=(cls.user == User.id), join_type=pw.JOIN.LEFT_OUTER)
                .where(cls.customer == customer).order_by(cls.id.desc()))

    @classmethod
    def recorded_since(cls, action, user, since):
        """Whether `action` was recorded for `user` since the naive UTC instant `since`."""
        return cls.select().where(cls.action == action, cls.user == user, cls.at >= since).exists()

    @classmethod
    def actions_used(cls):
        return [action for (action,) in cls.select(cls.action).distinct().tuples()]


class OutboxMail(BaseModel):
    """A mail waiting to be sent. Written in the transaction of the change that causes it."""

    recipient = pw.CharField()
    subject = pw.CharField()
    body_text = pw.TextField()
    body_html = pw.TextField()
    created_at = pw.DateTimeField(default=utcnow)
    attempts = pw.IntegerField(default=0)
    next_attempt_at = pw.DateTimeField(default=utcnow, index=True)
    claimed_until = pw.DateTimeField(null=True)
    sent_at = pw.DateTimeField(null=True, index=True)
    last_error = pw.TextField(null=True)


class MailRequest(BaseModel):
    """A "forgotten password" or "forgotten username" request, answered by the mail sender.

    The form writes one row whether or not the code or address exists and answers at once: the
    lookup and the mail happen after the answer (mailer.answer_requests), so how long the answer
    takes tells nothing about who is a customer."""

    kind = pw.CharField(max_length=20)  # the name of the function that answers it (mailer.answers)
    subject = pw.CharField(max_length=254)  # what the visitor typed: a code, a username, an email
    ip = pw.CharField(max_length=45, null=True)
    created_at = pw.DateTimeField(default=utcnow)


class RateCounter(BaseModel):
    """A rate limit's counter kept in the database (ratelimit.DatabaseCounters): shared by every
    process, and the fallback when Redis is away."""

    key = pw.CharField(max_length=80, primary_key=True)
    count = pw.IntegerField()
    window_ends = pw.DateTimeField(index=True)


class ImportJob(BaseModel):
    """An import started from the back office: it runs in the background, one at a time."""

    QUEUED, RUNNING, DONE, REFUSED, FAILED = "queued", "running", "done", "refused", "failed"

    started_by = pw.ForeignKeyField(User, null=True, backref="import_jobs", on_delete="SET NULL")
    folder = pw.CharField()  # where the uploaded files wait
    files = pw.TextField(default="[]")  # JSON: each file received, {name, size, sha256} (older jobs: only names)
    status = pw.CharField(max_length=8, default=QUEUED, index=True)
    progress = pw.FloatField(default=0)  # 0..1 over the files' bytes
    current_file = pw.CharField(null=True)
    report = pw.TextField(default="{}")  # JSON: problems, summary
    created_at = pw.DateTimeField(default=utcnow)
    heartbeat_at = pw.DateTimeField(null=True)  # a running job not heard of for long has died
    finished_at = pw.DateTimeField(null=True)

    @classmethod
    def recent(cls, limit):
        """The newest jobs, with who started them."""
        return cls.select(cls, User).join(User, pw.JOIN.LEFT_OUTER).order_by(cls.id.desc()).limit(limit)

    @property
    def result(self):
        return json.loads(self.report or "{}")

    @property
    def received_files(self):
        """Each file received, as {name, size, sha256, and "zip" for one taken from a zip}; the
        jobs from before checksums were kept have names only."""
        return [f if isinstance(f, dict) else {"name": f} for f in json.loads(self.files or "[]")]

    @property
    def file_names(self):
        return [f["name"] for f in self.received_files]


class ApiToken(BaseModel):
    """A read-only key to the personal data API (views/api.py), made under Dati Anagrafici by a
    customer's user. Only its digest is kept: the key is shown once, when it is made, and a
    leaked database opens no API. A revoked key keeps its row, for the audit log's sake."""

    LIVE_LIMIT = 10  # live keys per user: enough for a home and its energy manager, not a pile

    user = pw.ForeignKeyField(User, backref="api_tokens", on_delete="CASCADE")
    name = pw.CharField(max_length=60)
    token_hash = pw.CharField(max_length=64, unique=True)
    created_at = pw.DateTimeField(default=utcnow)
    last_used_at = pw.DateTimeField(null=True)  # written at most once a minute
    revoked_at = pw.DateTimeField(null=True)

    @classmethod
    def live_of(cls, user):
        """The user's keys not revoked, newest first (another user's key is not found)."""
        return cls.select().where(cls.user == user, cls.revoked_at.is_null()).order_by(cls.id.desc())

    @classmethod
    def with_user(cls, secret):
        """The live key `secret` opens, with its user and the user's customer; None if none."""
        return (cls.select(cls, User, Customer).join(User).join(Customer)
                .where(cls.token_hash == token_digest(secret), cls.revoked_at.is_null()).first())


class ContactChange(BaseModel):
    """A contact field (email, phone, fax, mobile) the customer changed in the portal, with the
    value before and after: what `flask export contacts` hands the billing system, and what keeps
    the nightly import from undoing the change before the billing system has taken it (the rule
    is contacts.import_keeps). `settled_at` is set once the import brought the same value back,
    or once the portal's time to win is over; until then the change is pending."""

    FIELDS = ("email", "phone", "fax", "mobile")

    customer = pw.ForeignKeyField(Customer, backref="contact_changes", on_delete="CASCADE")
    field = pw.CharField(max_length=6)
    old_value = pw.CharField(null=True)  # as the portal held it (the import's text, or E.164)
    new_value = pw.CharField(null=True)  # phones in E.164, emails in lower case; None: removed
    changed_at = pw.DateTimeField(default=utcnow, index=True)
    changed_by = pw.ForeignKeyField(User, null=True, backref="contact_changes", on_delete="SET NULL")
    settled_at = pw.DateTimeField(null=True)

    class Meta:
        indexes = ((("customer", "field"), False),)

    @classmethod
    def for_customer(cls, customer):
        """The customer's changes, newest first (another customer's are not found)."""
        return cls.select().where(cls.customer == customer).order_by(cls.changed_at.desc(), cls.id.desc())

    @classmethod
    def pending(cls):
        """Every change the import has not settled yet, oldest first: few rows, however many
        customers there are."""
        return cls.select().where(cls.settled_at.is_null()).order_by(cls.changed_at, cls.id)


ALL_MODELS = [
    Customer, SupplyPoint, User, UserSession, EmailToken, Consent, Invoice, Reading, Measure,
    Ticket, TicketMessage, TicketAttachment, CannedReply, Document, AuditLog, OutboxMail, ImportJob,
    MailRequest, RateCounter, DailyConsumption, MonthlyConsumption, ApiToken, ReadingReminder,
    ContactChange,
]
