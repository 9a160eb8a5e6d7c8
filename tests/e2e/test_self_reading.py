"""In a browser, with and without JavaScript: Mario sends a gas self-reading. A value lower than
the last validated one is refused next to its field; a value far above the usual asks for his
confirmation (with JavaScript already on change); confirmed, it is sent, shown in the history as
"inviata", and the confirmation mail arrives. Then an operator rejects it with a reason."""
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from i18n import rome_today
from models import Reading, SupplyPoint
from tests.e2e.conftest import log_in, wait_for_htmx, wait_for_mail
from tests.factories import make_customer, make_supply_point, make_user

TODAY = rome_today()


@pytest.fixture
def customer(live_server):
    customer = make_customer(code="005007", name="ROSSI MARIO")
    make_supply_point(customer, code="PR002874", pod_pdr="IT001E00287400")
    gas = make_supply_point(customer, code="PR002875", commodity="gas", pod_pdr="01234567891011")
    make_user(customer, email="mario@example.it")
    for days, value in ((60, 500), (30, 530)):  # 1 m³ a day
        Reading.create(supply_point=gas, date=TODAY - timedelta(days=days), register="total", value=Decimal(value),
                       source="distributor", status=Reading.VALIDATED)
    return customer


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_a_gas_self_reading_with_its_confirmation_step(live_server, customer, new_page, smtp, javascript):
    page = new_page(java_script_enabled=javascript)
    log_in(page, live_server)
    page.get_by_role("link", name="Autolettura Contatore").first.click()
    page.get_by_label("Punto di fornitura").select_option("PR002875")
    if not javascript:
        page.get_by_role("button", name="Cambia").click()
    expect(page.get_by_label("Lettura (m³)")).to_be_visible()
    expect(page.get_by_role("table").first).to_contain_text("530,000")
    expect(page.get_by_label("Data della lettura")).to_have_value(TODAY.isoformat())
    address = page.url

    value = page.get_by_label("Lettura (m³)")
    value.fill("529")
    if javascript:
        value.press("Tab")  # the change event: checked at once, nothing sent yet
        wait_for_htmx(page)
        expect(page.locator("#err-value_total")).to_contain_text("più bassa dell'ultima lettura validata")
        assert Reading.select().where(Reading.source == "customer").count() == 0
    page.get_by_role("button", name="Invia lettura").click()
    if javascript:
        wait_for_htmx(page)
    expect(page.locator("#err-value_total")).to_contain_text("più bassa dell'ultima lettura validata")
    expect(page.get_by_label("Lettura (m³)")).to_have_value("529")  # what was typed stays

    page.get_by_label("Lettura (m³)").fill("680")  # 5 m³ a day where 1 is usual
    if javascript:
        page.get_by_label("Lettura (m³)").press("Tab")
        wait_for_htmx(page)
        expect(page.get_by_label("Confermo che la lettura è giusta")).to_be_visible()
    page.get_by_role("button", name="Invia lettura").click()
    if javascript:
        wait_for_htmx(page)
    expect(page.locator("#err-value_total")).to_contain_text("molto più del solito")
    confirm = page.get_by_label("Confermo che la lettura è giusta")
    expect(confirm).to_be_visible()
    assert Reading.select().where(Reading.source == "customer").count() == 0
    confirm.check()
    page.get_by_role("button", name="Invia lettura").click()
    if javascript:
        wait_for_htmx(page)
        assert page.url == address  # swapped in place
    expect(page.locator(".flash-success")).to_contain_text("Autolettura inviata")
    history = page.locator("table").last
    expect(history.get_by_role("row", name=re.compile("680,000"))).to_contain_text("inviata")
    expect(page.get_by_label("Lettura (m³)")).to_have_value("")  # a fresh form for the next one

    reading = Reading.get(Reading.source == "customer")
    assert reading.value == Decimal(680) and reading.confirmed_implausible and reading.status == Reading.PENDING
    [mail] = wait_for_mail(smtp)
    assert mail["Subject"] == "Abbiamo ricevuto la tua autolettura" and mail["To"] == "mario@example.it"


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_an_operator_rejects_a_reading_with_a_reason(live_server, customer, new_page, smtp, javascript):
    from tests.e2e.test_backoffice import enrol_operator

    gas = SupplyPoint.get(SupplyPoint.code == "PR002875")
    Reading.create(supply_point=gas, date=TODAY, register="total", value=Decimal(560), source="customer",
                   status=Reading.PENDING, submitted_by=customer.users.get())
    page = new_page(java_script_enabled=javascript)
    enrol_operator(page, live_server)
    page.get_by_role("link", name="Autoletture").click()
    card = page.locator("section.reading-review")
    expect(card).to_contain_text("PR002875 · ROSSI MARIO (005007)")
    expect(card).to_contain_text("560,000")
    expect(card).to_contain_text("1,0 m³")  # 30 m³ in 30 days since the last validated reading

    card.get_by_role("button", name="Respingi").click()
    if javascript:
        wait_for_htmx(page)
    expect(page.locator("section.reading-review .field-error")).to_contain_text("Scrivi il motivo")
    page.locator("section.reading-review").get_by_label("Motivo").fill("La foto non mostra il contatore.")
    page.locator("section.reading-review").get_by_role("button", name="Respingi").click()
    if javascript:
        wait_for_htmx(page)
    expect(page.get_by_text("Nessuna autolettura da validare.")).to_be_visible()
    expect(page.locator(".flash-success")).to_contain_text("respinta")
    [mail] = wait_for_mail(smtp)
    assert mail["Subject"] == "La tua autolettura non è stata accettata"
    assert "La foto non mostra il contatore." in mail.get_body(("plain",)).get_content()
    assert Reading.get(Reading.source == "customer").status == Reading.REJECTED


def test_on_a_phone_a_rejected_readings_status_stays_after_its_column_name(live_server, customer, new_page):
    """390 px: the history is a list of cards, each value after its column's name; the
    "respinta" pill and its text stay there, not drawn back over the name "Stato"."""
    gas = SupplyPoint.get(SupplyPoint.code == "PR002875")
    Reading.create(supply_point=gas, date=TODAY, register="total", value=Decimal(560), source="customer",
                   status=Reading.REJECTED, rejection_reason="La foto non mostra il contatore.")
    page = new_page(viewport={"width": 390, "height": 844})
    log_in(page, live_server)
    page.goto(live_server.url + "/autolettura?sp=PR002875")
    pill = page.locator("table.reading-history .status-rejected")
    expect(pill).to_have_text("respinta")
    cell = pill.locator("xpath=ancestor::td")
    # The column's name is the cell's ::before, 7.5rem wide from the cell's left edge.
    name_right = cell.evaluate("cell => cell.getBoundingClientRect().left + parseFloat(getComputedStyle(cell, '::before').width)")
    text = pill.evaluate("""pill => {
        const range = document.createRange();
        range.selectNodeContents(pill);
        const box = range.getBoundingClientRect();
        return {x: box.left, width: box.width};
    }""")
    box = pill.bounding_box()
    assert box["x"] >= name_right and text["x"] >= name_right, (name_right, box, text)
    assert box["x"] <= text["x"] and text["x"] + text["width"] <= box["x"] + box["width"], (box, text)  # the pill holds its word
    assert box["x"] + box["width"] <= 390, box


def test_with_javascript_a_photo_over_the_limit_is_refused_before_sending(live_server, customer, new_page):
    """The form is sent by htmx: a photo over the limit is said next to its field when chosen,
    and Invia lettura sends nothing until a smaller one (or none) is chosen."""
    page = new_page()
    log_in(page, live_server)
    page.goto(live_server.url + "/autolettura?sp=PR002875")
    page.get_by_label("Lettura (m³)").fill("560")
    photo = page.get_by_label("Foto del contatore (facoltativa)")
    photo.set_input_files([{"name": "contatore.jpg", "mimeType": "image/jpeg", "buffer": b"\xff\xd8" + b"0" * (6 * 1024 * 1024)}])
    expect(page.locator("#err-photo")).to_have_text("Il file supera 5 MB.")
    wait_for_htmx(page)  # the reading's own check, on change
    page.requests_log.clear()
    page.get_by_role("button", name="Invia lettura").click()
    expect(photo).to_be_focused()
    wait_for_htmx(page)
    sent = [url for _kind, method, url in page.requests_log if method == "POST" and "/verifica" not in url]
    assert not sent, sent  # the value's own check on leaving its field is all that was asked
    assert Reading.select().where(Reading.source == "customer").count() == 0

    photo.set_input_files([])
    expect(page.locator("#err-photo")).to_be_hidden()
    page.get_by_role("button", name="Invia lettura").click()
    wait_for_htmx(page)
    expect(page.locator("table.reading-history")).to_contain_text("inviata")
    assert Reading.select().where(Reading.source == "customer").count() == 1


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_the_whole_history_on_request(live_server, customer, new_page, javascript):
    """Past the newest 36 readings, «Mostra tutto lo storico» lists every one: swapped in place
    with JavaScript (the address says so, for reload and back), a page without."""
    gas = SupplyPoint.get(SupplyPoint.code == "PR002875")
    for n in range(2, 40):  # with the fixture's two: 40 readings, a month apart
        Reading.create(supply_point=gas, date=TODAY - timedelta(days=30 * n + 1), register="total",
                       value=Decimal(400 - n), source="distributor", status=Reading.VALIDATED)
    page = new_page(java_script_enabled=javascript)
    log_in(page, live_server)
    assert page.goto(live_server.url + "/autolettura?sp=PR002875").status == 200
    rows = page.locator("table.reading-history tbody tr")
    expect(rows).to_have_count(36)
    page.get_by_role("link", name="Mostra tutto lo storico").click()
    if javascript:
        wait_for_htmx(page)
    expect(rows).to_have_count(40)
    expect(page.get_by_role("link", name="Mostra tutto lo storico")).to_have_count(0)
    assert re.search(r"storico=tutto", page.url)
    expect(page.get_by_label("Lettura (m³)")).to_be_visible()  # the form is still there
