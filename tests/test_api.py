"""The personal data API: keys made and revoked under Dati Anagrafici (page and htmx fragment),
and /api/v1 as a program sees it: Bearer keys only (never the session cookie), one customer's
data only, every grouping of the consumption, the period's checks, paging links, the rate
limit, no CORS, problem+json errors and the OpenAPI document that describes it."""
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

import ratelimit
from i18n import ROME
from models import ApiToken, AuditLog, DailyConsumption, Measure, MonthlyConsumption, token_digest, utcnow
from tests.factories import make_customer, make_invoice, make_supply_point, make_user
from tests.helpers import csrf_from, htmx_headers, post_form

PAGE = "/dati-anagrafici?sp=PR002874"
CREATE = "/dati-anagrafici/chiavi-api?sp=PR002874"
REVOKE = "/dati-anagrafici/chiavi-api/revoca?sp=PR002874"
KEY = re.compile(r"spt_[A-Za-z0-9_-]{20,}")


def create_key(client, name="Domotica", headers=None):
    """Make a key as the customer does; returns (response, the key shown on the page)."""
    response = post_form(client, CREATE, {"name": name}, page=PAGE, headers=headers)
    shown = KEY.findall(response.get_data(as_text=True))
    return response, shown[0] if shown else None


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def key(logged_in):
    response, key = create_key(logged_in)
    assert response.status_code == 201
    return key


@pytest.fixture
def api(app):
    return app.test_client(use_cookies=False)


def rome(*args):
    """A Rome wall-clock time as the naive UTC instant the database stores."""
    return datetime(*args, tzinfo=ROME).astimezone(UTC).replace(tzinfo=None)


@pytest.fixture
def measures(point):
    """15-minute measures of PR002874 over Saturday 28 and Sunday 29 March 2026 (Rome), the day
    the clocks go forward: 96 + 92 quarters of 0.25 kWh, the first hour of the 29th estimated."""
    start, end = rome(2026, 3, 28), rome(2026, 3, 30)
    rows, instant = [], start
    while instant < end:
        estimated = rome(2026, 3, 29) <= instant < rome(2026, 3, 29, 1)
        rows.append(dict(supply_point=point.id, start=instant, kwh=0.25, interval_minutes=15,
                         quality="estimated" if estimated else "actual"))
        instant += timedelta(minutes=15)
    Measure.insert_many(rows).execute()
    # The totals the import would keep (its own tests check they equal the measures' sums).
    DailyConsumption.create(supply_point=point, day=date(2026, 3, 28), f1=0, f2=16, f3=8, intervals=96,
                            estimated=0, peak_kwh=1.0, peak_start=rome(2026, 3, 28, 10))
    DailyConsumption.create(supply_point=point, day=date(2026, 3, 29), f1=0, f2=0, f3=23, intervals=92,
                            estimated=4, peak_kwh=1.0, peak_start=rome(2026, 3, 29, 0))
    # Whole months, with figures of their own: a month grouping must read these, not the days.
    MonthlyConsumption.create(supply_point=point, month=date(2026, 2, 1), f1=100, f2=50, f3=25, intervals=2688)
    MonthlyConsumption.create(supply_point=point, month=date(2026, 3, 1), f1=200, f2=60, f3=40, intervals=2972,
                              estimated=4, peak_kwh=2.5, peak_start=rome(2026, 3, 12, 19))
    return len(rows)


def consumption(api, key, code="PR002874", **params):
    return api.get(f"/api/v1/supply-points/{code}/consumption", query_string=params, headers=bearer(key))


# --- the keys, under Dati Anagrafici --------------------------------------------------------------

def test_a_key_is_shown_once_and_stored_as_a_digest(logged_in, owner):
    response, key = create_key(logged_in, "Domotica di casa")
    assert response.status_code == 201
    page = response.get_data(as_text=True)
    assert key and "Domotica di casa" in page and "non la mostreremo più" in page
    token = ApiToken.get(ApiToken.user == owner)
    assert token.token_hash == token_digest(key) and key not in token.token_hash
    assert (token.name, token.last_used_at, token.revoked_at) == ("Domotica di casa", None, None)
    entry = AuditLog.get(AuditLog.action == "api_token_created")
    assert entry.user_id == owner.id and key not in entry.detail
    again = logged_in.get(PAGE)
    assert again.status_code == 200
    assert "Domotica di casa" in again.get_data(as_text=True) and key not in again.get_data(as_text=True)
    assert "Set-Cookie" not in response.headers or key not in response.headers["Set-Cookie"]


def test_with_htmx_a_key_is_made_in_the_list_only(logged_in):
    response, key = create_key(logged_in, "Energy manager", headers=htmx_headers("api-tokens"))
    assert response.status_code == 201
    body = response.get_data(as_text=True)
    assert key and "Energy manager" in body and "<html" not in body and "Avvisi per email" not in body
    assert "HX-Target" in response.headers["Vary"]


@pytest.mark.parametrize("headers", [None, htmx_headers("api-tokens")], ids=["page", "htmx"])
@pytest.mark.parametrize("name, message", [("  ", "Dai un nome alla chiave"), ("x" * 61, "Al massimo 60 caratteri")])
def test_a_key_needs_a_short_name(logged_in, owner, headers, name, message):
    response, key = create_key(logged_in, name, headers=headers)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True) and key is None
    assert ApiToken.select().count() == 0


def test_at_most_ten_live_keys(logged_in, owner):
    for n in range(ApiToken.LIVE_LIMIT):
        assert create_key(logged_in, f"chiave {n}")[0].status_code == 201
    response, key = create_key(logged_in, "una di troppo", headers=htmx_headers("api-tokens"))
    assert response.status_code == 422 and key is None
    assert "Hai già 10 chiavi attive" in response.get_data(as_text=True)
    token = ApiToken.live_of(owner).first()
    page = logged_in.get(PAGE)
    assert page.status_code == 200
    revoked = logged_in.post(REVOKE, data={"csrf_token": csrf_from(page), "token": token.id})
    assert revoked.status_code == 303
    assert create_key(logged_in, "al posto di una revocata")[0].status_code == 201


def test_making_or_revoking_a_key_needs_the_csrf_token(logged_in, owner, key):
    assert logged_in.post(CREATE, data={"name": "senza token"}).status_code == 400
    token = ApiToken.get(ApiToken.user == owner)
    assert logged_in.post(REVOKE, data={"token": token.id}).status_code == 400
    assert ApiToken.select().count() == 1 and ApiToken.get_by_id(token.id).revoked_at is None


@pytest.mark.parametrize("with_htmx", [False, True], ids=["page", "htmx"])
def test_a_revoked_key_opens_nothing(logged_in, owner, key, api, with_htmx):
    assert api.get("/api/v1/supply-points", headers=bearer(key)).status_code == 200
    token = ApiToken.get(ApiToken.user == owner)
    headers = htmx_headers("api-tokens") if with_htmx else {}
    response = post_form(logged_in, REVOKE, {"token": token.id}, page=PAGE, headers=headers)
    if with_htmx:
        assert response.status_code == 200
        assert "Non hai chiavi attive" in response.get_data(as_text=True)
        assert "<html" not in response.get_data(as_text=True)
    else:
        assert response.status_code == 303 and response.headers["Location"].endswith(PAGE)
        page = logged_in.get(response.headers["Location"])
        assert page.status_code == 200 and "Chiave «Domotica» revocata" in page.get_data(as_text=True)
    assert ApiToken.get_by_id(token.id).revoked_at is not None
    assert AuditLog.select().where(AuditLog.action == "api_token_revoked", AuditLog.user == owner).count() == 1
    refused = api.get("/api/v1/supply-points", headers=bearer(key))
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == 'Bearer realm="api", error="invalid_token"'
    assert refused.mimetype == "application/problem+json" and refused.json["status"] == 401
    again = post_form(logged_in, REVOKE, {"token": token.id}, page=PAGE, headers=headers)
    assert again.status_code == 404  # revoked already


def test_another_users_key_cannot_be_revoked(app, logged_in, owner):
    stranger = make_user(make_customer(code="009999"))
    token = ApiToken.create(user=stranger, name="altrui", token_hash=token_digest("spt_altrui"))
    for value in (token.id, "", "abc", 2**70):
        response = post_form(logged_in, REVOKE, {"token": value}, page=PAGE)
        assert response.status_code == 404, value
    assert ApiToken.get_by_id(token.id).revoked_at is None


def test_the_list_shows_name_creation_and_last_use(logged_in, key, api):
    page = logged_in.get(PAGE)
    assert page.status_code == 200
    assert "Domotica" in page.get_data(as_text=True) and "mai" in page.get_data(as_text=True)
    assert api.get("/api/v1/supply-points", headers=bearer(key)).status_code == 200
    page = logged_in.get(PAGE)
    assert page.status_code == 200
    row = re.search(r"<td>Domotica</td>(.*?)</tr>", page.get_data(as_text=True), re.S).group(1)
    assert len(re.findall(r"\d\d/\d\d/\d{4} \d\d:\d\d", row)) == 2  # created, last used


# --- who the API answers --------------------------------------------------------------------------

def test_without_a_key_401_with_the_bearer_challenge(api):
    for headers in ({}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer "}):
        response = api.get("/api/v1/supply-points", headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'
        assert response.mimetype == "application/problem+json"
        assert set(response.json) >= {"type", "title", "status", "detail"}
    for secret in ("spt_wrong", "x" * 500):
        response = api.get("/api/v1/supply-points", headers=bearer(secret))
        assert response.status_code == 401 and 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_the_session_cookie_alone_opens_nothing(logged_in, key):
    """The logged-in browser's cookie is sent, and ignored: only the key counts."""
    for url in ("/api/v1/supply-points", "/api/v1/supply-points/PR002874", "/api/v1/invoices",
                "/api/v1/supply-points/PR002874/consumption?period_from=2026-03-28&period_to=2026-03-29"):
        response = logged_in.get(url)
        assert response.status_code == 401, url
    assert logged_in.get("/api/v1/supply-points", headers=bearer(key)).status_code == 200


def test_a_disabled_users_key_opens_nothing(api, owner, key):
    owner.disabled = True
    owner.save()
    assert api.get("/api/v1/supply-points", headers=bearer(key)).status_code == 401


def test_a_key_sees_its_customer_only(api, key, points):
    stranger = make_customer(code="009999")
    make_supply_point(stranger, code="PR999999")
    make_invoice(stranger, number="ALTRUI")
    listing = api.get("/api/v1/supply-points", headers=bearer(key))
    assert listing.status_code == 200 and listing.mimetype == "application/json"
    assert [point["code"] for point in listing.json["results"]] == ["PR002874", "PR002875"]
    assert listing.json["count"] == 2
    electricity = listing.json["results"][0]
    assert electricity["pod_pdr"] == "IT001E00287400" and electricity["commodity"] == "electricity"
    assert electricity["links"]["consumption"] == "http://portal.test/api/v1/supply-points/PR002874/consumption"
    assert "consumption" not in listing.json["results"][1]["links"]  # gas
    for url in ("/api/v1/supply-points/PR999999", "/api/v1/invoices?supply_point=PR999999",
                "/api/v1/supply-points/PR999999/consumption?period_from=2026-03-28&period_to=2026-03-29"):
        response = api.get(url, headers=bearer(key))
        assert response.status_code == 404, url
        assert response.mimetype == "application/problem+json" and response.json["status"] == 404
    invoices = api.get("/api/v1/invoices", headers=bearer(key))
    assert invoices.status_code == 200 and invoices.json["results"] == []


def test_a_gas_point_has_no_intervals(api, key):
    response = consumption(api, key, "PR002875", period_from="2026-03-28", period_to="2026-03-29")
    assert response.status_code == 404 and "electricity" in response.json["detail"]


def test_no_cookie_is_set_and_nothing_is_cached(api, key):
    response = api.get("/api/v1/supply-points", headers=bearer(key))
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"


def test_last_use_is_written_at_most_once_a_minute(api, owner, key):
    assert api.get("/api/v1/supply-points", headers=bearer(key)).status_code == 200
    first = ApiToken.get(ApiToken.user == owner).last_used_at
    assert first is not None and utcnow() - first < timedelta(seconds=10)
    assert api.get("/api/v1/supply-points", headers=bearer(key)).status_code == 200
    assert ApiToken.get(ApiToken.user == owner).last_used_at == first
    ApiToken.update(last_used_at=first - timedelta(minutes=2)).execute()
    assert api.get("/api/v1/supply-points", headers=bearer(key)).status_code == 200
    assert ApiToken.get(ApiToken.user == owner).last_used_at > first - timedelta(minutes=1)


def test_rate_limited_per_key(api, logged_in, key, monkeypatch):
    monkeypatch.setitem(ratelimit.LIMITS, "api-token", (3, 60))
    for _ in range(3):
        assert api.get("/api/v1/supply-points", headers=bearer(key)).status_code == 200
    response = api.get("/api/v1/supply-points", headers=bearer(key))
    assert response.status_code == 429 and response.mimetype == "application/problem+json"
    assert 1 <= int(response.headers["Retry-After"]) <= 61
    _, other = create_key(logged_in, "un'altra")
    assert api.get("/api/v1/supply-points", headers=bearer(other)).status_code == 200  # each key its own count


def test_cors_stays_closed(api, key):
    response = api.get("/api/v1/supply-points", headers={**bearer(key), "Origin": "https://evil.example"})
    assert response.status_code == 200
    assert not [name for name in response.headers.keys() if name.lower().startswith("access-control-")]
    preflight = api.options("/api/v1/supply-points", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization"})
    assert preflight.status_code == 200
    assert not [name for name in preflight.headers.keys() if name.lower().startswith("access-control-")]


def test_other_methods_and_paths_answer_as_json(api, key):
    response = api.post("/api/v1/supply-points", headers=bearer(key))
    assert response.status_code == 405 and response.mimetype == "application/problem+json"
    assert "GET" in response.headers["Allow"]
    response = api.get("/api/v1/nothing-here", headers=bearer(key))
    assert response.status_code == 404 and response.mimetype == "application/problem+json"


# --- consumption ------------------------------------------------------------------------------------

def test_group_by_none_lists_each_measure_with_its_offset(api, key, measures):
    response = consumption(api, key, period_from="2026-03-28", period_to="2026-03-30", page_size=500)
    assert response.status_code == 200
    body = response.json
    assert body["count"] == measures == 96 + 92 and len(body["results"]) == measures
    assert body["period_from"] == "2026-03-28T00:00:00+01:00" and body["period_to"] == "2026-03-30T00:00:00+02:00"
    first, last = body["results"][0], body["results"][-1]
    assert first == {"interval_start": "2026-03-28T00:00:00+01:00", "interval_end": "2026-03-28T00:15:00+01:00",
                     "consumption": 0.25, "quality": "actual", "band": "F3"}
    assert last["interval_start"] == "2026-03-29T23:45:00+02:00"
    starts = [row["interval_start"] for row in body["results"]]
    assert "2026-03-29T01:45:00+01:00" in starts and "2026-03-29T03:00:00+02:00" in starts
    assert not any(start.startswith("2026-03-29T02:") for start in starts)  # the hour that does not exist
    assert sum(row["quality"] == "estimated" for row in body["results"]) == 4
    assert {row["band"] for row in body["results"] if row["interval_start"].startswith("2026-03-28T10:")} == {"F2"}


def test_group_by_hour_sums_the_quarters(api, key, measures):
    response = consumption(api, key, period_from="2026-03-29", period_to="2026-03-30", group_by="hour")
    assert response.status_code == 200
    rows = response.json["results"]
    assert response.json["count"] == len(rows) == 23  # the day the clocks go forward
    assert all(row["consumption"] == 1.0 and row["intervals"] == 4 for row in rows)
    assert rows[0]["quality"] == "estimated" and rows[0]["estimated_intervals"] == 4
    assert rows[1]["quality"] == "actual"
    assert [row["interval_start"][11:] for row in rows[1:3]] == ["01:00:00+01:00", "03:00:00+02:00"]
    assert rows[1]["interval_end"] == "2026-03-29T03:00:00+02:00"
    # A Rome date-time with its offset, the "+" written %2B.
    response = api.get("/api/v1/supply-points/PR002874/consumption?group_by=hour"
                       "&period_from=2026-03-28T10:00:00%2B01:00&period_to=2026-03-28T12:00:00Z", headers=bearer(key))
    assert response.status_code == 200
    assert [row["interval_start"] for row in response.json["results"]] == [
        "2026-03-28T10:00:00+01:00", "2026-03-28T11:00:00+01:00", "2026-03-28T12:00:00+01:00"]


def test_group_by_day_reads_the_daily_totals(api, key, measures):
    response = consumption(api, key, period_from="2026-03-28", period_to="2026-03-30", group_by="day")
    assert response.status_code == 200
    saturday, sunday = response.json["results"]
    assert saturday["interval_start"] == "2026-03-28T00:00:00+01:00"
    assert saturday["interval_end"] == sunday["interval_start"] == "2026-03-29T00:00:00+01:00"
    assert sunday["interval_end"] == "2026-03-30T00:00:00+02:00"  # 23 hours
    assert saturday["consumption"] == 24.0 and saturday["bands"] == {"F1": 0.0, "F2": 16.0, "F3": 8.0}
    assert saturday["quality"] == "actual" and saturday["intervals"] == 96
    assert sunday["consumption"] == 23.0 and sunday["quality"] == "estimated" and sunday["estimated_intervals"] == 4
    assert sunday["peak_hour"] == {"interval_start": "2026-03-29T00:00:00+01:00", "consumption": 1.0}


def test_group_by_week_cuts_the_week_at_the_period(api, key, measures):
    response = consumption(api, key, period_from="2026-03-28", period_to="2026-04-06", group_by="week")
    assert response.status_code == 200
    (week,) = response.json["results"]  # Saturday and Sunday of the week of Monday 23 March
    assert week["interval_start"] == "2026-03-28T00:00:00+01:00"
    assert week["interval_end"] == "2026-03-30T00:00:00+02:00"
    assert week["consumption"] == 47.0 and week["intervals"] == 188 and week["quality"] == "estimated"


def test_group_by_month_reads_whole_months_from_the_monthly_totals(api, key, measures):
    response = consumption(api, key, period_from="2026-02-01", period_to="2026-04-01", group_by="month")
    assert response.status_code == 200
    february, march = response.json["results"]
    assert (february["interval_start"], february["interval_end"]) == ("2026-02-01T00:00:00+01:00",
                                                                      "2026-03-01T00:00:00+01:00")
    assert february["consumption"] == 175.0 and february["quality"] == "actual" and february["peak_hour"] is None
    assert march["consumption"] == 300.0 and march["interval_end"] == "2026-04-01T00:00:00+02:00"
    assert march["peak_hour"] == {"interval_start": "2026-03-12T19:00:00+01:00", "consumption": 2.5}
    # A month cut by the period: from its days.
    response = consumption(api, key, period_from="2026-03-29", period_to="2026-05-01", group_by="month")
    assert response.status_code == 200
    (march,) = response.json["results"]
    assert march["interval_start"] == "2026-03-29T00:00:00+01:00" and march["consumption"] == 23.0


@pytest.mark.parametrize("params, wrong", [
    ({}, {"period_from", "period_to"}),
    ({"period_from": "2026-03-28"}, {"period_to"}),
    ({"period_from": "28/03/2026", "period_to": "2026-03-29"}, {"period_from"}),
    ({"period_from": "2026-02-30", "period_to": "2026-03-29"}, {"period_from"}),
    ({"period_from": "0001-01-01", "period_to": "9999-12-31T23:59:59-23:59"}, {"period_from", "period_to"}),
    ({"period_from": "2026-03-29", "period_to": "2026-03-28"}, {"period_to"}),
    ({"period_from": "2026-03-29", "period_to": "2026-03-29"}, {"period_to"}),
    ({"period_from": "2026-03-28T10:30", "period_to": "2026-03-29", "group_by": "hour"}, {"period_from"}),
    ({"period_from": "2026-03-28T10:00", "period_to": "2026-03-29", "group_by": "day"}, {"period_from"}),
    ({"period_from": "2026-03-28", "period_to": "2026-03-29T01:00", "group_by": "month"}, {"period_to"}),
    ({"period_from": "2026-03-28", "period_to": "2026-03-29", "group_by": "year"}, {"group_by"}),
    ({"period_from": "2026-03-28", "period_to": "2026-03-29", "page_size": "0"}, {"page_size"}),
    ({"period_from": "2026-03-28", "period_to": "2026-03-29", "page_size": "5001"}, {"page_size"}),
    ({"period_from": "2026-03-28", "period_to": "2026-03-29", "page": "-1"}, {"page"}),
    ({"period_from": "2026-03-28", "period_to": "2026-03-29", "page": "99999999999999999999"}, {"page"}),
])
def test_a_wrong_query_is_a_422_naming_each_parameter(api, key, params, wrong):
    response = consumption(api, key, **params)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.json["status"] == 422 and response.json["title"]
    assert {error["parameter"] for error in response.json["errors"]} == wrong


def test_a_naive_time_is_romes_and_an_unencoded_plus_is_understood(api, key, measures):
    for period_from in ("2026-03-28T10:00", "2026-03-28T10:00:00+01:00", "2026-03-28T09:00:00Z"):
        response = api.get("/api/v1/supply-points/PR002874/consumption?period_to=2026-03-28T10:30"
                           f"&period_from={period_from}", headers=bearer(key))
        assert response.status_code == 200, period_from
        assert [row["interval_start"] for row in response.json["results"]] == [
            "2026-03-28T10:00:00+01:00", "2026-03-28T10:15:00+01:00"]


def test_paging_links_walk_the_whole_period(api, key, measures):
    """next and previous are absolute URLs with the period normalised (the "+" encoded)."""
    url = ("http://portal.test/api/v1/supply-points/PR002874/consumption"
           "?period_from=2026-03-28&period_to=2026-03-30&page_size=50")
    bodies, urls = [], []
    while url:
        response = api.get(url, headers=bearer(key))
        assert response.status_code == 200
        bodies.append(response.json)
        urls.append(url)
        url = response.json["next"]
    assert len(bodies) == 4 and [body["page"] for body in bodies] == [1, 2, 3, 4]
    assert all(body["count"] == measures and body["page_size"] == 50 for body in bodies)
    assert bodies[0]["previous"] is None
    assert [body["previous"] for body in bodies[2:]] == urls[1:3]
    assert "period_from=2026-03-28T00:00:00%2B01:00" in urls[1] and "page=2" in urls[1]
    seen = [row["interval_start"] for body in bodies for row in body["results"]]
    assert len(seen) == len(set(seen)) == measures
    assert seen == sorted(seen, key=datetime.fromisoformat)
    beyond = consumption(api, key, period_from="2026-03-28", period_to="2026-03-30", page_size=50, page=9)
    assert beyond.status_code == 200 and beyond.json["results"] == [] and beyond.json["next"] is None
    assert "page=4" in beyond.json["previous"]


# --- invoices ---------------------------------------------------------------------------------------

def test_invoices_newest_first_paged_and_by_point(api, key, customer, points):
    electricity, gas = points
    for day in (1, 2, 3):
        make_invoice(customer, electricity, number=f"E{day}", issue_date=date(2026, 1, day),
                     energy_f1_kwh=Decimal("10.5"), energy_f2_kwh=Decimal(2), energy_f3_kwh=Decimal(3))
    make_invoice(customer, gas, number="G1", issue_date=date(2026, 2, 1), gas_smc=Decimal("42.125"),
                 total=Decimal("7.10"), status="paid")
    response = api.get("/api/v1/invoices?page_size=2", headers=bearer(key))
    assert response.status_code == 200
    body = response.json
    assert body["count"] == 4 and [invoice["number"] for invoice in body["results"]] == ["G1", "E3"]
    gas_invoice, electricity_invoice = body["results"]
    assert gas_invoice["total"] == "7.10" and gas_invoice["gas_smc"] == 42.125 and gas_invoice["energy_kwh"] is None
    assert gas_invoice["supply_point"] == "PR002875" and gas_invoice["status"] == "paid"
    assert electricity_invoice["energy_kwh"] == {"F1": 10.5, "F2": 2.0, "F3": 3.0}
    assert body["next"] == "http://portal.test/api/v1/invoices?page=2&page_size=2" and body["previous"] is None
    second = api.get(body["next"], headers=bearer(key))
    assert second.status_code == 200 and [i["number"] for i in second.json["results"]] == ["E2", "E1"]
    assert second.json["next"] is None
    only_gas = api.get("/api/v1/invoices?supply_point=PR002875", headers=bearer(key))
    assert only_gas.status_code == 200 and [i["number"] for i in only_gas.json["results"]] == ["G1"]
    wrong = api.get("/api/v1/invoices?page_size=lots", headers=bearer(key))
    assert wrong.status_code == 422 and wrong.json["errors"][0]["parameter"] == "page_size"


# --- the OpenAPI document ----------------------------------------------------------------------------

def test_the_openapi_document_describes_every_route(app, api):
    response = api.get("/api/v1/openapi.json")  # no key needed to read it
    assert response.status_code == 200 and response.mimetype == "application/json"
    document = response.json
    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": "http://portal.test/api/v1"}]
    routes = {re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))
              for rule in app.url_map.iter_rules()
              if rule.endpoint.startswith("api.") and rule.endpoint not in ("api.unknown", "api.openapi")}
    assert routes == set(document["paths"])
    for path, operations in document["paths"].items():
        assert set(operations) == {"get"}, path
        assert "401" in operations["get"]["responses"] and "429" in operations["get"]["responses"]
    consumption_parameters = {p["name"]: p for p in document["paths"]["/supply-points/{code}/consumption"]["get"]
                              ["parameters"]}
    assert consumption_parameters["group_by"]["schema"]["enum"] == ["none", "hour", "day", "week", "month"]
    assert consumption_parameters["period_from"]["required"] and consumption_parameters["period_to"]["required"]


# --- Green Button ---------------------------------------------------------------------------------

ESPI = "{http://naesb.org/espi}"


def green_button(api, key, code="PR002874", **params):
    return api.get(f"/api/v1/supply-points/{code}/green-button", query_string=params, headers=bearer(key))


def test_green_button_is_the_espi_feed_of_the_days_asked_for(api, key, measures):
    import xml.etree.ElementTree as ET

    response = green_button(api, key, period_from="2026-03-28", period_to="2026-03-30")
    assert response.status_code == 200
    assert response.mimetype == "application/atom+xml"
    assert response.headers["Content-Disposition"] == "attachment; filename=misure-PR002874-2026-03-28-2026-03-29.xml"
    feed = ET.fromstring(response.get_data())  # well-formed XML
    blocks = feed.findall(f".//{ESPI}IntervalBlock")
    assert [len(block.findall(ESPI + "IntervalReading")) for block in blocks] == [96, 92]  # the clocks went forward
    values = [int(r.findtext(ESPI + "value")) for r in feed.findall(f".//{ESPI}IntervalReading")]
    assert sum(values) == measures * 250  # Wh
    # One day only: the period's end is excluded.
    one_day = ET.fromstring(green_button(api, key, period_from="2026-03-29", period_to="2026-03-30").get_data())
    assert [len(b.findall(ESPI + "IntervalReading")) for b in one_day.findall(f".//{ESPI}IntervalBlock")] == [92]


@pytest.mark.parametrize("params, wrong", [
    ({}, {"period_from", "period_to"}),
    ({"period_from": "2026-03-28T10:00", "period_to": "2026-03-30"}, {"period_from"}),
    ({"period_from": "2026-03-30", "period_to": "2026-03-28"}, {"period_to"}),
    ({"period_from": "ieri", "period_to": "2026-03-28"}, {"period_from"}),
])
def test_green_button_wants_two_dates_in_order(api, key, params, wrong):
    response = green_button(api, key, **params)
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    assert {error["parameter"] for error in response.json["errors"]} == wrong


def test_green_button_only_for_the_keys_customer_and_electricity(api, key, points):
    make_supply_point(make_customer(code="009999"), code="PR999999")
    dates = dict(period_from="2026-03-28", period_to="2026-03-29")
    assert green_button(api, key, "PR999999", **dates).status_code == 404
    assert green_button(api, key, "PR002875", **dates).status_code == 404  # gas
    assert api.get("/api/v1/supply-points/PR002874/green-button", query_string=dates).status_code == 401
