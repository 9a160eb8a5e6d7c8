"""The personal data API against its own OpenAPI document, property-based (schemathesis): the app
served on a real port, the document read from it, requests generated from the document with a
valid key (examples, then random values of every parameter). No answer may be a server error,
and every answer (2xx or problem) must be one the document describes: status, content type,
headers and body."""
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode, checks
from werkzeug.serving import make_server

import ratelimit
from i18n import ROME
from models import ApiToken, DailyConsumption, Measure, MonthlyConsumption, token_digest
from tests.conftest import free_port
from tests.factories import make_invoice, make_supply_point, make_user

KEY = "spt_schema-test-key-0123456789abcdefghijklmn"


@pytest.fixture
def api_server(make_app, customer, points, monkeypatch):
    """The app on a real port, with a customer who has measures, totals, invoices and a key."""
    monkeypatch.setitem(ratelimit.LIMITS, "api-token", (100_000, 60))  # the test's own pace is not the point
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = make_app(PORTAL_BASE_URL=url)
    electricity, gas = points
    user = make_user(customer)
    ApiToken.create(user=user, name="schemathesis", token_hash=token_digest(KEY))
    start = datetime(2026, 1, 1, tzinfo=ROME).astimezone(UTC).replace(tzinfo=None)
    Measure.insert_many([dict(supply_point=electricity.id, start=start + timedelta(hours=n), kwh=0.5,
                              interval_minutes=60, quality="estimated" if n % 10 == 0 else "actual")
                         for n in range(24 * 40)]).execute()
    for n in range(40):
        DailyConsumption.create(supply_point=electricity, day=date(2026, 1, 1) + timedelta(days=n), f1=5, f2=4, f3=3,
                                intervals=24, estimated=3, peak_kwh=0.5, peak_start=start + timedelta(days=n))
    MonthlyConsumption.create(supply_point=electricity, month=date(2026, 1, 1), f1=155, f2=124, f3=93,
                              intervals=744, estimated=75, peak_kwh=0.5, peak_start=start)
    make_invoice(customer, electricity, energy_f1_kwh=Decimal("1.5"), energy_f2_kwh=Decimal(2),
                 energy_f3_kwh=None, peak_power_kw=Decimal("3.3"))
    make_invoice(customer, gas, gas_smc=Decimal("12.5"), status="paid", total=Decimal("-4.20"))
    make_invoice(customer, None, total=Decimal("1000000.00"))
    make_supply_point(customer, code="PR002876", status="closed", end_date=date(2025, 6, 30))
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="api-schema-server", daemon=True)
    thread.start()
    yield url
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


# What the document promises; not schemathesis's checks that a value the document allows is
# accepted: a period's end before its start, or bounds not on the grouping's hours or days,
# are refused (422, described) though each parameter alone is a valid string.
CONFORMANCE = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


def test_every_answer_is_one_the_document_describes(api_server):
    """The document as the running app serves it; each operation's examples, then generated
    requests valid by the document (GenerationMode.POSITIVE) and invalid ones (NEGATIVE: a
    group_by not in the list, a page_size of 0, a parameter left out...).

    Hypothesis driven by hand rather than by schemathesis's pytest plugin, whose fixture-loaded
    schemas rename pytest's nodes through an attribute pytest 9.2 no longer has."""
    api_schema = schemathesis.openapi.from_url(f"{api_server}/api/v1/openapi.json")
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) == 5
    answered = []

    def run(strategy):
        @settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=strategy)
        def check(case):
            response = case.call_and_validate(headers={"Authorization": f"Bearer {KEY}"}, checks=CONFORMANCE)
            answered.append(response.status_code)

        check()

    for operation in operations:
        for strategy in api_schema.get_strategies_from_examples(operation):
            run(strategy)
    run(api_schema.as_strategy(GenerationMode.POSITIVE))
    run(api_schema.as_strategy(GenerationMode.NEGATIVE))
    assert 200 in answered and 422 in answered and 404 in answered
