"""The personal data API, /api/v1: the customer's supply points, their metered consumption and
their invoices as JSON, for home automation and energy managers. Read-only.

- Who: `Authorization: Bearer <key>`, a key the customer made under Dati Anagrafici
  (models.ApiToken). Nothing else authenticates: the session cookie is never read, so a page of
  another site cannot borrow a logged-in browser, and no CSRF token is asked (app.py exempts
  the blueprint).
- CORS closed: no Access-Control-* header is ever sent, so no other origin's script reads an
  answer (a key belongs in a program or a server, not in a web page).
- Each key is rate-limited (ratelimit "api-token"): over it, 429 with Retry-After.
- Errors are RFC 9457 problem details (application/problem+json), never an HTML page.
- Time: instants in ISO 8601 with the Europe/Rome offset; a query's instant without an offset
  is Rome's. Energy in kWh.
- Consumption grouped by hour is summed from the measures; by day, week or month it is read
  from the daily and monthly totals the import keeps (models.DailyConsumption,
  MonthlyConsumption), so a year by day is 365 rows whatever the meter's resolution.

OPENAPI below, served at /api/v1/openapi.json, describes exactly this (tests/test_api_schema.py
checks the running app against it).
"""
import json
import re
from datetime import UTC, date, datetime, time, timedelta

import peewee as pw
from flask import Blueprint, current_app, g, request, stream_with_context, url_for
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.http import HTTP_STATUS_CODES

import measure_files
import ratelimit
from bands import band
from database import is_sqlite, write_transaction
from i18n import ROME
from models import ApiToken, DailyConsumption, Invoice, Measure, MonthlyConsumption, SupplyPoint, db_wrapper, utcnow

bp = Blueprint("api", __name__, url_prefix="/api/v1")

GROUPS = ("none", "hour", "day", "week", "month")
PAGE_SIZE_DEFAULT = 100
PAGE_SIZE_MAX = 5000  # a month of 15-minute measures in two pages, a year of days in one
PAGE_MAX = 1_000_000  # beyond any data: keeps the offset a number every database takes
YEARS = (1900, 2999)  # an instant outside them is no meter's
TOUCH_EVERY = timedelta(minutes=1)  # how often a key's last use is written
PUBLIC = {"api.openapi"}  # the description of the API needs no key
PROBLEM = "application/problem+json"


class InvalidQuery(Exception):
    """The query string's problems: [{"parameter", "detail"}] (a 422)."""

    def __init__(self, errors):
        super().__init__(errors)
        self.errors = errors


# --- answers ----------------------------------------------------------------------------------

def json_response(body, status=200, mimetype="application/json", headers=None):
    response = current_app.response_class(json.dumps(body, ensure_ascii=False), status=status, mimetype=mimetype)
    response.headers.update(headers or {})
    return response


def problem(status, detail, headers=None, **extra):
    """An RFC 9457 problem: the status's standard title and what went wrong, in words."""
    body = {"type": "about:blank", "title": HTTP_STATUS_CODES.get(status, "Error"), "status": status,
            "detail": detail, **extra}
    return json_response(body, status, PROBLEM, headers)


def unauthorized(detail, invalid):
    """401 with the challenge RFC 6750 asks for; error="invalid_token" when a key was sent."""
    challenge = 'Bearer realm="api"' + (', error="invalid_token"' if invalid else "")
    return problem(401, detail, {"WWW-Authenticate": challenge})


@bp.errorhandler(HTTPException)
def http_error(error):
    if isinstance(error, NotFound):
        return problem(404, "Not found: no such resource among this key's customer's.")
    headers = {"Allow": ", ".join(error.valid_methods)} if isinstance(error, MethodNotAllowed) else None
    return problem(error.code or 500, error.description, headers)


@bp.errorhandler(InvalidQuery)
def invalid_query(error):
    return problem(422, "Some query parameters are not valid: see errors.", errors=error.errors)


# --- who is asking ------------------------------------------------------------------------------

@bp.before_request
def authenticate():
    """The key's customer in g.api_customer, or the answer that refuses the request. A
    preflight (OPTIONS) gets Flask's plain answer: no CORS header, so the browser stops there."""
    if request.endpoint in PUBLIC or request.method == "OPTIONS":
        return None
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        return unauthorized("Send the key made under Dati Anagrafici as 'Authorization: Bearer <key>'.", False)
    token = ApiToken.with_user(secret) if len(secret) <= 100 else None
    if token is None or not token.user.is_active:
        return unauthorized("This key is not valid: it was revoked, or mistyped.", True)
    wait = ratelimit.hit("api-token", token.id)
    if wait:
        return problem(429, f"Too many requests with this key: try again in {wait} seconds.",
                       {"Retry-After": str(wait)})
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at >= TOUCH_EVERY:
        with write_transaction():
            ApiToken.update(last_used_at=now).where(ApiToken.id == token.id).execute()
    g.api_customer = token.user.customer
    return None


# --- the resources ------------------------------------------------------------------------------

@bp.route("/openapi.json")
def openapi():
    return json_response(dict(OPENAPI, servers=[{"url": absolute_url("api.openapi").rsplit("/", 1)[0]}]))


@bp.route("/supply-points")
def supply_points():
    points = list(SupplyPoint.for_customer(g.api_customer))
    return json_response({"count": len(points), "results": [point_json(point) for point in points]})


@bp.route("/supply-points/<code>")
def supply_point(code):
    return json_response(point_json(customer_point(code)))


@bp.route("/supply-points/<code>/consumption")
def consumption(code):
    point = customer_point(code)
    if point.is_gas:
        return problem(404, "Metered intervals exist for electricity points only; this is a gas point.")
    query = consumption_query(request.args)
    rows, count = CONSUMPTION_READERS[query["group_by"]](point, query)
    body = {"supply_point": point.code, "unit": "kWh", "group_by": query["group_by"],
            "period_from": iso(query["period_from"]), "period_to": iso(query["period_to"]),
            **page_links("api.consumption", dict(code=point.code, period_from=iso(query["period_from"]),
                                                  period_to=iso(query["period_to"]), group_by=query["group_by"]),
                         query, count),
            "results": rows}
    return json_response(body)


@bp.route("/supply-points/<code>/green-button")
def green_button(code):
    """Green Button "Download My Data": the days from period_from to period_to (excluded) as an
    ESPI Atom feed, the same file as Misure elettriche's, streamed."""
    point = customer_point(code)
    if point.is_gas:
        return problem(404, "Metered intervals exist for electricity points only; this is a gas point.")
    query = consumption_query(dict(request.args.items(), group_by="day"))  # dates, in order
    first, end = to_rome(query["period_from"]).date(), to_rome(query["period_to"]).date()
    batches = Measure.batches_between(g.api_customer, point, query["period_from"], query["period_to"])
    minutes = Measure.newest_interval_minutes(g.api_customer, point) or 60
    feed = measure_files.espi_feed(batches, point.code, first, end - timedelta(days=1), minutes, utcnow())
    response = current_app.response_class(stream_with_context(feed), mimetype="application/atom+xml")
    response.headers["Content-Disposition"] = (
        f"attachment; filename=misure-{point.code}-{first.isoformat()}-{(end - timedelta(days=1)).isoformat()}.xml")
    return response


@bp.route("/invoices")
def invoices():
    """The customer's invoices, newest first; ?supply_point=CODE for one point's."""
    errors = []
    paging = page_arguments(request.args, errors)
    if errors:
        raise InvalidQuery(errors)
    query = Invoice.for_customer(g.api_customer)
    arguments = {}
    if "supply_point" in request.args:
        point = customer_point(request.args["supply_point"])
        query = query.where(Invoice.supply_point == point)
        arguments["supply_point"] = point.code
    count = query.count()
    page = (query.select(Invoice, SupplyPoint.code.alias("point_code"))
            .join(SupplyPoint, pw.JOIN.LEFT_OUTER, on=(Invoice.supply_point == SupplyPoint.id))
            .order_by(*Invoice.newest_first())
            .offset((paging["page"] - 1) * paging["page_size"]).limit(paging["page_size"]).objects())
    return json_response({**page_links("api.invoices", arguments, paging, count),
                          "results": [invoice_json(invoice) for invoice in page]})


@bp.route("/", defaults={"path": ""}, methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
@bp.route("/<path:path>", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def unknown(path):
    """Whatever else is asked under /api/v1 answers as JSON too: 405 for a method the path does
    not take, 404 for a path that is not there (the portal's error pages are HTML)."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    try:
        endpoint, _ = adapter.match(request.path, method="GET")
    except HTTPException:
        endpoint = None
    if endpoint and endpoint != "api.unknown":
        raise MethodNotAllowed(valid_methods=["GET", "HEAD", "OPTIONS"])
    raise NotFound()


def absolute_url(endpoint, **values):
    """Links come from PORTAL_BASE_URL, as the mails' do, never from the request's Host header."""
    return current_app.config["PORTAL_BASE_URL"] + url_for(endpoint, **values)


def customer_point(code):
    """The key's customer's point with this code: another customer's is not found (404)."""
    point = SupplyPoint.of_customer(g.api_customer, code).first()
    if point is None:
        raise NotFound()
    return point


# --- the query string -----------------------------------------------------------------------------

def consumption_query(args):
    """The consumption query's parameters, checked: period_from and period_to (naive UTC),
    group_by, page, page_size. Raises InvalidQuery with every problem at once."""
    errors = []
    group_by = args.get("group_by", "none")
    if group_by not in GROUPS:
        errors.append({"parameter": "group_by", "detail": "One of: %s." % ", ".join(GROUPS)})
    start = instant_argument(args, "period_from", errors)
    end = instant_argument(args, "period_to", errors)
    if start is not None and end is not None and start >= end:
        errors.append({"parameter": "period_to", "detail": "period_to must come after period_from."})
    if not errors and group_by != "none":
        for name, value in (("period_from", start), ("period_to", end)):
            local = to_rome(value)
            if group_by == "hour" and (local.minute or local.second or local.microsecond):
                errors.append({"parameter": name, "detail": "With group_by=hour, a whole hour."})
            elif group_by in ("day", "week", "month") and local.time() != time():
                errors.append({"parameter": name,
                               "detail": f"With group_by={group_by}, a date (a midnight in Rome)."})
    paging = page_arguments(args, errors)
    if errors:
        raise InvalidQuery(errors)
    return dict(paging, group_by=group_by, period_from=start, period_to=end)


def instant_argument(args, name, errors):
    """An ISO 8601 date or date-time as naive UTC; without an offset it is Rome's time."""
    text = args.get(name)
    if not text:
        errors.append({"parameter": name, "detail": "Required: an ISO 8601 date or date-time, e.g. 2026-01-31."})
        return None
    # A "+01:00" typed into a URL unencoded arrives as " 01:00".
    text = re.sub(r"(T[0-9:.]+) ([0-9]{2}(:?[0-9]{2})?)$", r"\1+\2", text.strip())
    try:
        value = datetime.fromisoformat(text)
        if not YEARS[0] <= value.year <= YEARS[1]:
            raise ValueError(text)
        if value.tzinfo is None:
            value = value.replace(tzinfo=ROME)
        return value.astimezone(UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        errors.append({"parameter": name, "detail": "Not an ISO 8601 date or date-time between %d and %d, "
                                                    "e.g. 2026-01-31 or 2026-01-31T08:00:00+01:00." % YEARS})
        return None


def page_arguments(args, errors):
    return {"page": whole_number(args, "page", 1, 1, PAGE_MAX, errors),
            "page_size": whole_number(args, "page_size", PAGE_SIZE_DEFAULT, 1, PAGE_SIZE_MAX, errors)}


def whole_number(args, name, default, low, high, errors):
    text = args.get(name)
    if text is None:
        return default
    if not re.fullmatch(r"[0-9]{1,9}", text.strip()) or not low <= int(text) <= high:
        errors.append({"parameter": name, "detail": f"A whole number from {low} to {high}."})
        return default
    return int(text)


def page_links(endpoint, arguments, paging, count):
    """count, page, page_size and the absolute URLs of the next and previous pages (or null)."""
    page, size = paging["page"], paging["page_size"]

    def link(number):
        return absolute_url(endpoint, **arguments, page=number, page_size=size)

    last = max(1, -(-count // size))
    return {"count": count, "page": page, "page_size": size,
            "next": link(page + 1) if page < last else None,
            "previous": link(min(page - 1, last)) if page > 1 else None}


# --- consumption, by grouping ---------------------------------------------------------------------

def to_rome(naive_utc):
    return naive_utc.replace(tzinfo=UTC).astimezone(ROME)


def iso(naive_utc):
    return to_rome(naive_utc).isoformat()


def local_midnight(day):
    """A Rome day's start as naive UTC."""
    return datetime.combine(day, time(), tzinfo=ROME).astimezone(UTC).replace(tzinfo=None)


def kwh(value):
    return round(value or 0.0, 6)  # float sums' noise off, a meter's resolution kept


def quality(estimated):
    """A figure is "estimated" if any measure in it is, "actual" otherwise."""
    return "estimated" if estimated else "actual"


def page_slice(query):
    return (query["page"] - 1) * query["page_size"], query["page_size"]


def measures(point, query):
    """The point's measures in the period (ownership: the key's customer's point)."""
    return (Measure.for_point(g.api_customer, point)
            .where(Measure.start >= query["period_from"], Measure.start < query["period_to"]))


def ungrouped(point, query):
    offset, limit = page_slice(query)
    selected = measures(point, query)
    count = selected.order_by().count()
    rows = (selected.select(Measure.start, Measure.kwh, Measure.interval_minutes, Measure.quality)
            .offset(offset).limit(limit).tuples())
    return [{"interval_start": iso(start), "interval_end": iso(start + timedelta(minutes=minutes)),
             "consumption": kwh(value), "quality": measured, "band": band(start)}
            for start, value, minutes, measured in rows], count


def by_hour(point, query):
    """Summed in the database, one row per UTC hour (Rome's offsets are whole hours, so a UTC
    hour is a Rome hour, the DST day's repeated one included)."""
    offset, limit = page_slice(query)
    if is_sqlite(db_wrapper.database):
        hour = pw.fn.strftime("%Y-%m-%d %H:00:00", Measure.start)
    else:
        hour = pw.fn.date_trunc("hour", Measure.start)
    selected = measures(point, query)
    count = selected.order_by().select(pw.fn.COUNT(pw.fn.DISTINCT(hour))).scalar() or 0
    estimated = pw.fn.SUM(pw.Case(None, [(Measure.quality == "estimated", 1)], 0))
    rows = (selected.select(hour, pw.fn.SUM(Measure.kwh), pw.fn.COUNT(Measure.id), estimated)
            .group_by(hour).order_by(hour).offset(offset).limit(limit).tuples())
    results = []
    for start, value, intervals, estimates in rows:
        start = start if isinstance(start, datetime) else datetime.fromisoformat(start)
        results.append({"interval_start": iso(start), "interval_end": iso(start + timedelta(hours=1)),
                        "consumption": kwh(value), "quality": quality(estimates), "band": band(start),
                        "intervals": intervals, "estimated_intervals": estimates or 0})
    return results, count


class Totals:
    """A group's sums of daily or monthly totals, clipped to the period at its edges."""

    def __init__(self, first_day, end_day):
        self.first_day, self.end_day = first_day, end_day  # end excluded
        self.f1 = self.f2 = self.f3 = 0.0
        self.intervals = self.estimated = 0
        self.peak_kwh, self.peak_start = None, None

    def add(self, row):
        self.f1 += row.f1
        self.f2 += row.f2
        self.f3 += row.f3
        self.intervals += row.intervals
        self.estimated += row.estimated
        if row.peak_kwh is not None and (self.peak_kwh is None or row.peak_kwh > self.peak_kwh):
            self.peak_kwh, self.peak_start = row.peak_kwh, row.peak_start

    def json(self):
        peak = None
        if self.peak_kwh is not None:
            peak = {"interval_start": iso(self.peak_start), "consumption": kwh(self.peak_kwh)}
        return {"interval_start": iso(local_midnight(self.first_day)),
                "interval_end": iso(local_midnight(self.end_day)),
                "consumption": kwh(self.f1 + self.f2 + self.f3), "quality": quality(self.estimated),
                "bands": {"F1": kwh(self.f1), "F2": kwh(self.f2), "F3": kwh(self.f3)},
                "intervals": self.intervals, "estimated_intervals": self.estimated, "peak_hour": peak}


def next_month(day):
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def period_days(query):
    """The period as Rome days: the first, and the one after the last."""
    return to_rome(query["period_from"]).date(), to_rome(query["period_to"]).date()


def daily_rows(point, first_day, end_day):
    if first_day >= end_day:
        return []
    # `point` is the key's customer's (customer_point): its totals are theirs.
    return list(DailyConsumption.select().where(DailyConsumption.supply_point == point,
                                                DailyConsumption.day >= first_day, DailyConsumption.day < end_day)
                .order_by(DailyConsumption.day))


def grouped_days(point, query, group_start, group_end):
    """Daily totals summed per group: group_start(day) is the group's first day, group_end(first
    day) the day after its last; groups are clipped to the period."""
    first_day, end_day = period_days(query)
    groups = {}
    for row in daily_rows(point, first_day, end_day):
        key = group_start(row.day)
        if key not in groups:
            groups[key] = Totals(max(key, first_day), min(group_end(key), end_day))
        groups[key].add(row)
    return groups


def by_day(point, query):
    groups = grouped_days(point, query, lambda day: day, lambda day: day + timedelta(days=1))
    return paged_groups(groups, query)


def by_week(point, query):
    """Monday to Sunday, Rome's weeks."""
    groups = grouped_days(point, query, lambda day: day - timedelta(days=day.weekday()),
                          lambda monday: monday + timedelta(days=7))
    return paged_groups(groups, query)


def by_month(point, query):
    """The months wholly inside the period from the monthly totals; a month cut by the period's
    edge from its days."""
    first_day, end_day = period_days(query)
    full_from = first_day if first_day.day == 1 else next_month(first_day)
    full_to = end_day.replace(day=1)  # months starting from full_from and before this are whole
    groups = {}
    if full_from < full_to:
        last_full = (full_to - timedelta(days=1)).replace(day=1)
        months = MonthlyConsumption.select().where(MonthlyConsumption.supply_point == point,
                                                   MonthlyConsumption.month.between(full_from, last_full))
        for row in months:
            groups[row.month] = Totals(row.month, next_month(row.month))
            groups[row.month].add(row)
        edges = daily_rows(point, first_day, full_from) + daily_rows(point, full_to, end_day)
    else:
        edges = daily_rows(point, first_day, end_day)
    for row in edges:
        key = row.day.replace(day=1)
        if key not in groups:
            groups[key] = Totals(max(key, first_day), min(next_month(key), end_day))
        groups[key].add(row)
    return paged_groups(groups, query)


def paged_groups(groups, query):
    offset, limit = page_slice(query)
    ordered = [groups[key] for key in sorted(groups)]
    return [group.json() for group in ordered[offset:offset + limit]], len(ordered)


CONSUMPTION_READERS = {"none": ungrouped, "hour": by_hour, "day": by_day, "week": by_week, "month": by_month}


# --- the resources as JSON ------------------------------------------------------------------------

def point_json(point):
    links = {"self": absolute_url("api.supply_point", code=point.code)}
    if not point.is_gas:
        links["consumption"] = absolute_url("api.consumption", code=point.code)
    return {"code": point.code, "commodity": point.commodity, "pod_pdr": point.pod_pdr,
            "address": point.full_address or None, "status": point.status,
            "start_date": point.start_date.isoformat() if point.start_date else None,
            "end_date": point.end_date.isoformat() if point.end_date else None, "links": links}


def optional_number(value):
    return None if value is None else float(value)


def invoice_json(invoice):
    energy = None
    if any(value is not None for value in (invoice.energy_f1_kwh, invoice.energy_f2_kwh, invoice.energy_f3_kwh)):
        energy = {"F1": optional_number(invoice.energy_f1_kwh), "F2": optional_number(invoice.energy_f2_kwh),
                  "F3": optional_number(invoice.energy_f3_kwh)}
    day = lambda value: value.isoformat() if value else None  # noqa: E731
    return {"number": invoice.number, "year": invoice.year, "issue_date": day(invoice.issue_date),
            "due_date": day(invoice.due_date), "period_start": day(invoice.period_start),
            "period_end": day(invoice.period_end), "total": format(invoice.total, ".2f"), "currency": "EUR",
            "status": invoice.status, "supply_point": invoice.point_code, "energy_kwh": energy,
            "peak_power_kw": optional_number(invoice.peak_power_kw), "gas_smc": optional_number(invoice.gas_smc)}


# --- the OpenAPI 3.1 description ------------------------------------------------------------------

def _nullable(schema):
    return {"anyOf": [schema, {"type": "null"}]}


_INSTANT = {"type": "string", "format": "date-time"}
_DAY = {"type": "string", "format": "date"}
_LINK = _nullable({"type": "string", "format": "uri"})
_KWH = {"type": "number"}
_PAGE = {
    "count": {"type": "integer", "minimum": 0, "description": "How many results in all the pages."},
    "page": {"type": "integer", "minimum": 1},
    "page_size": {"type": "integer", "minimum": 1, "maximum": PAGE_SIZE_MAX},
    "next": dict(_LINK, description="The next page's URL; null on the last page."),
    "previous": dict(_LINK, description="The previous page's URL; null on the first page."),
}
_PAGE_PARAMETERS = [
    {"name": "page", "in": "query", "required": False,
     "schema": {"type": "integer", "minimum": 1, "maximum": PAGE_MAX, "default": 1}},
    {"name": "page_size", "in": "query", "required": False,
     "schema": {"type": "integer", "minimum": 1, "maximum": PAGE_SIZE_MAX, "default": PAGE_SIZE_DEFAULT}},
]
_POINT_CODE = {"name": "code", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1},
               "description": "The supply point's code, as in the portal's ?sp=.", "example": "PR002874"}


def _problem_response(description):
    return {"description": description, "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}}


def _ok(description, schema_name):
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}}}


def _errors(*statuses):
    texts = {401: "No key, or a key that is not valid (revoked, mistyped). WWW-Authenticate: Bearer.",
             404: "Not among this key's customer's resources.",
             422: "Query parameters not valid: `errors` says which and why.",
             429: "Too many requests with this key: Retry-After says how many seconds to wait."}
    # Any request, before its key is looked at: a NUL character is refused by every page (views/errors.py).
    responses = {"400": _problem_response("A NUL character in the address: no request may carry one.")}
    responses.update({str(status): _problem_response(texts[status]) for status in statuses})
    responses["429"]["headers"] = {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}}
    responses["401"]["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    return responses


OPENAPI = {
    "openapi": "3.1.0",
    "info": {
        "title": "Sportello personal data API",
        "version": "1.0.0",
        "description": (
            "Read-only access to one customer's own data: supply points, metered electricity "
            "consumption, invoices. Make a key under Dati Anagrafici and send it as "
            "`Authorization: Bearer <key>`. Instants are ISO 8601 with the Europe/Rome offset; "
            "energy is in kWh. Errors are RFC 9457 problem details."),
    },
    "security": [{"bearer": []}],
    "paths": {
        "/supply-points": {"get": {
            "operationId": "listSupplyPoints", "summary": "The customer's supply points",
            "responses": {"200": _ok("The points, active first.", "SupplyPointList"), **_errors(401, 429)}}},
        "/supply-points/{code}": {"get": {
            "operationId": "getSupplyPoint", "summary": "One supply point", "parameters": [_POINT_CODE],
            "responses": {"200": _ok("The point.", "SupplyPoint"), **_errors(401, 404, 429)}}},
        "/supply-points/{code}/consumption": {"get": {
            "operationId": "getConsumption", "summary": "An electricity point's metered consumption",
            "description": (
                "The intervals from period_from (included) to period_to (excluded), oldest first. "
                "group_by none: each measure as metered (15 or 60 minutes); hour: summed per hour "
                "(the bounds must be whole hours); day, week (Monday to Sunday) or month: from the "
                "daily and monthly totals (the bounds must be dates; a week or month cut by the "
                "period is reported for the part inside it). Only intervals with data are listed: "
                "`intervals` tells how many measures a figure sums. A gas point has no intervals (404)."),
            "parameters": [
                _POINT_CODE,
                {"name": "period_from", "in": "query", "required": True, "schema": {"type": "string"},
                 "description": "ISO 8601 date or date-time, included; without an offset, Rome time. "
                                "Encode '+' as %2B.", "example": "2026-01-01"},
                {"name": "period_to", "in": "query", "required": True, "schema": {"type": "string"},
                 "description": "ISO 8601 date or date-time, excluded.", "example": "2026-02-01"},
                {"name": "group_by", "in": "query", "required": False,
                 "schema": {"type": "string", "enum": list(GROUPS), "default": "none"}},
                *_PAGE_PARAMETERS,
            ],
            "responses": {"200": _ok("A page of the intervals.", "Consumption"), **_errors(401, 404, 422, 429)}}},
        "/supply-points/{code}/green-button": {"get": {
            "operationId": "getGreenButton", "summary": "Green Button \"Download My Data\" (ESPI)",
            "description": (
                "The point's metered intervals of the days from period_from (included) to period_to "
                "(excluded) as an ESPI Atom feed: one IntervalBlock per Rome day, values in Wh, "
                "the quality of each reading. The same file as the Misure elettriche page's."),
            "parameters": [
                _POINT_CODE,
                {"name": "period_from", "in": "query", "required": True, "schema": {"type": "string", "format": "date"},
                 "description": "The first day, included.", "example": "2026-11-01"},
                {"name": "period_to", "in": "query", "required": True, "schema": {"type": "string", "format": "date"},
                 "description": "The day after the last, excluded.", "example": "2026-12-01"},
            ],
            "responses": {
                "200": {"description": "The ESPI feed.",
                        "content": {"application/atom+xml": {"schema": {"type": "string"}}}},
                **_errors(401, 404, 422, 429)}}},
        "/invoices": {"get": {
            "operationId": "listInvoices", "summary": "The customer's invoices, newest first",
            "parameters": [
                {"name": "supply_point", "in": "query", "required": False, "schema": {"type": "string"},
                 "description": "Only this point's invoices (its code)."},
                *_PAGE_PARAMETERS,
            ],
            "responses": {"200": _ok("A page of the invoices.", "InvoiceList"), **_errors(401, 404, 422, 429)}}},
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                       "description": "A key made under Dati Anagrafici."}},
        "schemas": {
            "Problem": {
                "type": "object", "required": ["type", "title", "status", "detail"],
                "properties": {
                    "type": {"type": "string"}, "title": {"type": "string"},
                    "status": {"type": "integer"}, "detail": {"type": "string"},
                    "errors": {"type": "array", "items": {
                        "type": "object", "required": ["parameter", "detail"],
                        "properties": {"parameter": {"type": "string"}, "detail": {"type": "string"}}}},
                },
            },
            "SupplyPoint": {
                "type": "object", "additionalProperties": False,
                "required": ["code", "commodity", "pod_pdr", "address", "status", "start_date", "end_date", "links"],
                "properties": {
                    "code": {"type": "string"},
                    "commodity": {"type": "string", "enum": list(SupplyPoint.COMMODITIES)},
                    "pod_pdr": {"type": "string", "description": "POD (electricity) or PDR (gas)."},
                    "address": _nullable({"type": "string"}),
                    "status": {"type": "string"},
                    "start_date": _nullable(_DAY), "end_date": _nullable(_DAY),
                    "links": {"type": "object", "required": ["self"], "properties": {
                        "self": {"type": "string", "format": "uri"},
                        "consumption": {"type": "string", "format": "uri",
                                        "description": "Electricity points only."}}},
                },
            },
            "SupplyPointList": {
                "type": "object", "required": ["count", "results"],
                "properties": {"count": {"type": "integer", "minimum": 0},
                               "results": {"type": "array", "items": {"$ref": "#/components/schemas/SupplyPoint"}}},
            },
            "Interval": {
                "type": "object", "additionalProperties": False,
                "required": ["interval_start", "interval_end", "consumption", "quality"],
                "properties": {
                    "interval_start": _INSTANT, "interval_end": _INSTANT,
                    "consumption": dict(_KWH, description="kWh."),
                    "quality": {"type": "string", "enum": ["actual", "estimated"],
                                "description": "estimated when any measure summed in it is."},
                    "band": {"type": "string", "enum": ["F1", "F2", "F3"],
                             "description": "ARERA band (group_by none and hour)."},
                    "bands": {"type": "object", "required": ["F1", "F2", "F3"],
                              "properties": {"F1": _KWH, "F2": _KWH, "F3": _KWH},
                              "description": "kWh by ARERA band (group_by day, week, month)."},
                    "intervals": {"type": "integer", "minimum": 0, "description": "Measures summed."},
                    "estimated_intervals": {"type": "integer", "minimum": 0},
                    "peak_hour": _nullable({"type": "object", "required": ["interval_start", "consumption"],
                                            "properties": {"interval_start": _INSTANT, "consumption": _KWH}}),
                },
            },
            "Consumption": {
                "type": "object",
                "required": ["supply_point", "unit", "group_by", "period_from", "period_to", *_PAGE, "results"],
                "properties": {
                    "supply_point": {"type": "string"}, "unit": {"const": "kWh"},
                    "group_by": {"type": "string", "enum": list(GROUPS)},
                    "period_from": _INSTANT, "period_to": _INSTANT, **_PAGE,
                    "results": {"type": "array", "items": {"$ref": "#/components/schemas/Interval"}},
                },
            },
            "Invoice": {
                "type": "object", "additionalProperties": False,
                "required": ["number", "year", "issue_date", "due_date", "period_start", "period_end", "total",
                             "currency", "status", "supply_point", "energy_kwh", "peak_power_kw", "gas_smc"],
                "properties": {
                    "number": {"type": "string"}, "year": {"type": "integer"},
                    "issue_date": _DAY, "due_date": _nullable(_DAY),
                    "period_start": _nullable(_DAY), "period_end": _nullable(_DAY),
                    "total": {"type": "string", "pattern": r"^-?[0-9]+\.[0-9]{2}$",
                              "description": "In euro, a decimal string."},
                    "currency": {"const": "EUR"},
                    "status": {"type": "string", "enum": list(Invoice.STATUSES)},
                    "supply_point": _nullable({"type": "string"}),
                    "energy_kwh": _nullable({"type": "object", "properties": {
                        "F1": _nullable({"type": "number"}), "F2": _nullable({"type": "number"}),
                        "F3": _nullable({"type": "number"})}}),
                    "peak_power_kw": _nullable({"type": "number"}),
                    "gas_smc": _nullable({"type": "number"}),
                },
            },
            "InvoiceList": {
                "type": "object", "required": [*_PAGE, "results"],
                "properties": {**_PAGE,
                               "results": {"type": "array", "items": {"$ref": "#/components/schemas/Invoice"}}},
            },
        },
    },
}
