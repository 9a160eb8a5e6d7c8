"""Autolettura Contatore (issue 14): the page, every rule through HTTP (plain and htmx), the
photo, the operator's queue and the mails, the import and export, the reminder."""
import io
import re
from datetime import date, timedelta
from decimal import Decimal
from html import unescape

import pyotp
import pytest
from babel.dates import format_date
from babel.numbers import format_decimal
from PIL import Image

import accounts
import importer
import self_readings
import uploads
from i18n import rome_today
from models import AuditLog, Reading, ReadingReminder, User
from tests.factories import PASSWORD, make_customer, make_supply_point, make_user
from tests.helpers import csrf_from, deliver, htmx_headers, login, post_form, text_of
from tests.import_data import pdf_bytes

TODAY = rome_today()
PREVIOUS = TODAY - timedelta(days=30)  # the last validated reading
OLDER = TODAY - timedelta(days=60)  # the one before: 10 kWh (or 1 m³) a day in between
START = {"F1": Decimal("1000"), "F2": Decimal("2000"), "F3": Decimal("3000"), "total": Decimal("500")}
DAILY = {"F1": 10, "F2": 10, "F3": 10, "total": 1}


def validated(point, day, register, value, source="distributor"):
    return Reading.create(supply_point=point, date=day, register=register, value=value, source=source,
                          status=Reading.VALIDATED)


@pytest.fixture
def history(points):
    """Two months of validated readings on both of Mario's points."""
    electricity, gas = points
    for register in ("F1", "F2", "F3"):
        validated(electricity, OLDER, register, START[register])
        validated(electricity, PREVIOUS, register, START[register] + 30 * DAILY[register])
    validated(gas, OLDER, "total", START["total"])
    validated(gas, PREVIOUS, "total", START["total"] + 30)
    return points


def last(register):
    return START[register] + 30 * DAILY[register]


def plausible(register, days=30):
    """A value that continues the point's usual consumption for `days` days."""
    return last(register) + days * DAILY[register]


def italian(value):
    """A number as an Italian types it; text is sent as it is."""
    return value if isinstance(value, str) else str(value).replace(".", ",")


def form_fields(page):
    """The hidden one-time key of the form on the page."""
    match = re.search(r'name="submission"[^>]*value="([^"]+)"', page)
    assert match, "no submission key on the page"
    return match.group(1)


def send(client, point="PR002874", day=TODAY, values=None, confirm=False, photo=None, htmx=False,
         submission=None, kept_photo=None):
    """Fill the form as a browser does: the page first (CSRF token, one-time key)."""
    page = fetched(client.get(f"/autolettura?sp={point}"))
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    if values is None:
        values = ({"total": plausible("total")} if point == "PR002875"
                  else {r: plausible(r) for r in ("F1", "F2", "F3")})
    data = {"csrf_token": csrf_from(page), "date": day.isoformat() if isinstance(day, date) else day,
            "submission": submission or form_fields(html)}
    data.update({f"value_{register}": italian(value) for register, value in values.items()})
    if confirm:
        data["confirm_implausible"] = "y"
    if kept_photo:
        data["kept_photo"] = kept_photo
    if photo is not None:
        data["photo"] = (io.BytesIO(photo[1]), photo[0])
    headers = {**htmx_headers("self-reading"), "HX-Current-URL": f"http://localhost/autolettura?sp={point}"} if htmx else {}
    return client.post(f"/autolettura?sp={point}", data=data, headers=headers, content_type="multipart/form-data")


def image_bytes(kind="JPEG", exif=True):
    image = Image.new("RGB", (64, 48), (200, 30, 30))
    out = io.BytesIO()
    if kind == "JPEG" and exif:
        data = Image.Exif()
        data[0x010E] = "SECRET-COMMENT"  # ImageDescription
        data[0x8825] = {2: (44.0, 25.0, 0.0)}  # a GPS position
        image.save(out, kind, exif=data.tobytes())
    else:
        image.save(out, kind)
    return out.getvalue()


def body(response):
    return response.get_data(as_text=True)


def fetched(response):
    """A page read on the way (for its CSRF token, or to look at it): it must have answered 200."""
    assert response.status_code == 200, response.status_code
    return response


def ok(response):
    return body(fetched(response))


# --- the page -----------------------------------------------------------------------------------

def test_the_menu_leads_to_the_page(logged_in):
    home = logged_in.get("/?sp=PR002874")
    assert home.status_code == 200
    assert 'href="/autolettura?sp=PR002874"' in body(home)
    assert logged_in.get("/autolettura").status_code == 302  # to its URL with the point


def test_electricity_shows_three_registers_with_their_last_validated_reading(logged_in, history):
    response = logged_in.get("/autolettura?sp=PR002874")
    page = body(response)
    assert response.status_code == 200
    assert "Autolettura Contatore" in page and "<html" in page
    for register in ("F1", "F2", "F3"):
        assert f'name="value_{register}"' in page
        assert f"Lettura {register} (kWh)" in page
    assert 'name="value_total"' not in page
    assert "1.300,000" in page and PREVIOUS.strftime("%d/%m/%Y") in page and "distributore" in page
    assert f'value="{TODAY.isoformat()}"' in page  # today by default
    assert f'max="{TODAY.isoformat()}"' in page  # the picker offers no future day


def test_gas_shows_one_register(logged_in, history):
    page = ok(logged_in.get("/autolettura?sp=PR002875"))
    assert 'name="value_total"' in page and "Lettura (m³)" in page
    assert 'name="value_F1"' not in page
    assert "530,000" in page


def test_a_point_without_readings_offers_its_commodity_registers(logged_in, points):
    page = ok(logged_in.get("/autolettura?sp=PR002874"))
    assert "Nessuna lettura validata." in page and 'name="value_F3"' in page
    assert "Nessuna lettura per questo punto." in page


def history_dates(page):
    """The dates of the history's rows, as the page lists them."""
    table = re.search(r'<table class="cards reading-history">.*?</table>', page, re.S).group(0)
    return re.findall(r'<tr><td data-label="Data">([^<]+)</td>', table)


def test_the_history_shows_the_newest_readings_and_all_of_them_on_request(logged_in, points):
    """Three years of monthly readings and four more: the newest 36, then "Mostra tutto lo
    storico" lists all 40, as a page and as the history's block for htmx."""
    gas = points[1]
    days = [TODAY - timedelta(days=30 * n) for n in range(40)]
    for n, day in enumerate(reversed(days)):
        validated(gas, day, "total", START["total"] + n)
    shown = [format_date(day, "dd/MM/yyyy", locale="it") for day in days]
    page = ok(logged_in.get("/autolettura?sp=PR002875"))
    assert history_dates(page) == shown[:36]
    link = re.search(r'<a href="([^"]+)" hx-get="\1" hx-target="#reading-history" hx-push-url="true">Mostra tutto lo storico</a>', page)
    assert link and unescape(link.group(1)) == "/autolettura?storico=tutto&sp=PR002875"
    whole = ok(logged_in.get(unescape(link.group(1))))
    assert history_dates(whole) == shown and "Mostra tutto lo storico" not in whole and "<html" in whole
    fragment = logged_in.get(unescape(link.group(1)), headers={
        **htmx_headers("reading-history"), "HX-Current-URL": "http://localhost/autolettura?sp=PR002875"})
    assert fragment.status_code == 200
    assert "<html" not in body(fragment) and body(fragment).lstrip().startswith('<h2 id="history-title">')
    assert history_dates(body(fragment)) == shown
    assert "Mostra tutto lo storico" not in ok(logged_in.get("/autolettura?sp=PR002874"))  # a short history


def test_switching_point_answers_the_frame(logged_in, history):
    response = logged_in.get("/autolettura?sp=PR002875", headers={
        **htmx_headers("frame"), "HX-Current-URL": "http://localhost/autolettura?sp=PR002874"})
    assert response.status_code == 200
    assert "<html" not in body(response) and 'name="value_total"' in body(response)
    assert {"HX-Request", "HX-Target"} <= set(response.headers["Vary"].split(", "))


# --- a reading accepted -------------------------------------------------------------------------

@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_a_plausible_reading_is_sent_and_shown_as_inviata(app, logged_in, history, smtp, htmx):
    response = send(logged_in, htmx=htmx)
    if htmx:
        assert response.status_code == 200
        fragment = body(response)
        assert "<html" not in fragment and "Autolettura inviata" in fragment
        assert "inviata" in fragment and "1.600,000" in fragment
        assert {"HX-Request", "HX-Target"} <= set(response.headers["Vary"].split(", "))
        # a fresh form for the next one: today's date and a new one-time key
        assert f'value="{TODAY.isoformat()}"' in fragment
        assert re.search(r'<input [^>]*name="value_F1"[^>]*value="">', fragment)
    else:
        assert response.status_code == 303 and response.headers["Location"] == "/autolettura?sp=PR002874"
        page = fetched(logged_in.get(response.headers["Location"]))
        assert page.status_code == 200 and "Autolettura inviata" in body(page)
    rows = list(Reading.select().where(Reading.source == "customer").order_by(Reading.register))
    assert [(r.register, r.value, r.status, r.date) for r in rows] == [
        (register, plausible(register), Reading.PENDING, TODAY) for register in ("F1", "F2", "F3")]
    assert all(r.submitted_by.username == "mario.rossi" for r in rows)
    assert AuditLog.select().where(AuditLog.action == "reading_submitted").count() == 1
    assert deliver(app) == 1
    [mail] = smtp.messages
    assert mail["To"] == "mario@example.it" and mail["Subject"] == \
        "Abbiamo ricevuto la tua autolettura"
    assert "F1: 1.600,000 kWh" in text_of(mail) and "http://portal.test/autolettura?sp=PR002874" in text_of(mail)


def test_a_double_click_writes_the_reading_once(logged_in, history):
    page = fetched(logged_in.get("/autolettura?sp=PR002875"))
    key = form_fields(body(page))
    first = send(logged_in, point="PR002875", submission=key)
    second = send(logged_in, point="PR002875", submission=key)
    third = send(logged_in, point="PR002875", submission=key, htmx=True)
    assert first.status_code == 303 and second.status_code == 303 and third.status_code == 200
    assert "Autolettura inviata" in body(third)
    assert Reading.select().where(Reading.source == "customer").count() == 1
    assert AuditLog.select().where(AuditLog.action == "reading_submitted").count() == 1


def test_a_decimal_comma_and_spaces_are_read(logged_in, history):
    response = send(logged_in, point="PR002875", values={"total": "54 0,25"})
    assert response.status_code == 303
    assert Reading.get(Reading.source == "customer").value == Decimal("540.25")


@pytest.mark.parametrize("language", ["it", "en"])
def test_a_value_is_read_as_the_page_writes_numbers(logged_in, history, language):
    """The page shows the last reading as 24.171,000 (English 24,171.000): a value typed the
    same way means the same number, thousands separators included."""
    assert post_form(logged_in, "/lingua", {"lang": language}, page="/login").status_code == 303
    values = {register: plausible(register) + Decimal("0.5") for register in ("F1", "F2", "F3")}
    typed = {register: format_decimal(value, format="#,##0.0##", locale=language) for register, value in values.items()}
    assert all(text.count(",") + text.count(".") == 2 for text in typed.values()), typed  # 12.345,5 / 12,345.5
    response = send(logged_in, point="PR002874", values=typed)
    assert response.status_code == 303, body(response)
    assert {r.register: r.value for r in Reading.select().where(Reading.source == "customer")} == values


def test_a_value_the_language_cannot_mean_is_refused_not_guessed(logged_in, history):
    """24.5 is no Italian number (the point groups thousands): refused, not read as 245 or 24,5."""
    typed = f"{int(plausible('total'))}.5"
    refused(send(logged_in, point="PR002875", values={"total": typed}), False, "value_total",
            "Scrivi solo le cifre del contatore, con al più 3 decimali (per esempio 12.345 o 12.345,6).")
    assert not Reading.select().where(Reading.source == "customer").exists()


# --- the rules, each refused with its reason next to the field --------------------------------------

def refused(response, htmx, field, text):
    """A refusal: 422, the form again with the message next to `field`, nothing written."""
    page = body(response)
    assert response.status_code == 422
    error = re.search(rf'<p class="field-error" id="err-{field}">([^<]*)</p>', page)
    assert error, f"no error next to {field}"
    assert text in error.group(1).replace("&#39;", "'"), error.group(1)
    assert ("<html" in page) is not htmx
    assert Reading.select().where(Reading.source == "customer", Reading.status == Reading.PENDING).count() == 0
    return page


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_a_reading_lower_than_the_last_validated_is_refused(logged_in, history, htmx):
    values = {"F1": last("F1") - 1, "F2": plausible("F2"), "F3": plausible("F3")}
    page = refused(send(logged_in, values=values, htmx=htmx), htmx, "value_F1",
                   f"La lettura è più bassa dell'ultima lettura validata, 1.300 del {PREVIOUS.strftime('%d/%m/%Y')}")
    assert 'value="1299"' in page and f'value="{italian(plausible("F2"))}"' in page  # what was typed stays


def test_the_same_value_as_the_last_validated_is_accepted(logged_in, history):
    """No consumption is possible (a holiday home): equal is not lower."""
    assert send(logged_in, point="PR002875", values={"total": last("total")}).status_code == 303


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_a_reading_higher_than_a_later_validated_one_is_refused(logged_in, history, htmx):
    gas = history[1]
    later = validated(gas, TODAY - timedelta(days=5), "total", last("total") + 20)
    refused(send(logged_in, point="PR002875", day=TODAY - timedelta(days=10), values={"total": later.value + 1},
                 htmx=htmx), htmx, "value_total", "La lettura è più alta di quella validata del")


def test_a_reading_between_two_validated_ones_is_accepted(logged_in, history):
    gas = history[1]
    validated(gas, TODAY - timedelta(days=5), "total", last("total") + 20)
    response = send(logged_in, point="PR002875", day=TODAY - timedelta(days=10), values={"total": last("total") + 10})
    assert response.status_code == 303


def field_errors(page):
    """{field: its error messages} of a page or fragment."""
    errors = {}
    for field, text in re.findall(r'<p class="field-error" id="err-([\w]+)"[^>]*>([^<]+)</p>', page):
        errors.setdefault(field, []).append(unescape(text))
    return errors


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_a_duplicate_of_a_reading_already_sent_is_refused(logged_in, history, htmx):
    """Said once, next to the date (the day is what to change), not under each register; a value
    lower than the last validated reading is still said next to its register."""
    assert send(logged_in).status_code == 303
    refused_page = send(logged_in, values={"F1": plausible("F1") + 1, "F2": Decimal(1), "F3": plausible("F3") + 1},
                        htmx=htmx)
    assert refused_page.status_code == 422
    errors = field_errors(body(refused_page))
    assert errors["date"] == ["Hai già inviato una lettura con questa data: la stiamo verificando."]
    assert set(errors) == {"date", "value_F2"} and errors["value_F2"][0].startswith("La lettura è più bassa")
    assert Reading.select().where(Reading.source == "customer").count() == 3


@pytest.mark.parametrize("point, values, shown", [
    ("PR002875", {"total": last("total")}, "(530)"),
    ("PR002874", {r: last(r) for r in ("F1", "F2", "F3")}, "(F1 1.300; F2 2.300; F3 3.300)"),
])
def test_a_reading_on_the_day_of_a_validated_one_is_refused(logged_in, history, point, values, shown):
    for htmx in (False, True):
        response = send(logged_in, point=point, day=PREVIOUS, values=values, htmx=htmx)
        assert response.status_code == 422
        assert field_errors(body(response)) == {"date": [f"Per questa data c'è già una lettura validata {shown}."]}


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_gas_accepts_one_reading_a_month(logged_in, history, htmx):
    first_day = TODAY.replace(day=1)
    if first_day <= PREVIOUS:
        pytest.skip("the month's first day is not after the last validated reading")  # never: 30 days back
    assert send(logged_in, point="PR002875", day=first_day,
                values={"total": last("total") + (first_day - PREVIOUS).days}).status_code == 303
    second_day = first_day + timedelta(days=1)
    if second_day > TODAY:
        second_day = first_day  # the 1st of the month: the same day is a duplicate, still refused
    response = send(logged_in, point="PR002875", day=second_day, values={"total": plausible("total")}, htmx=htmx)
    assert response.status_code == 422
    assert "Per il gas si accetta una sola autolettura al mese" in body(response)


def test_a_ceased_point_takes_no_reading(logged_in, history):
    gas = history[1]
    page = fetched(logged_in.get("/autolettura?sp=PR002875"))
    token, key = csrf_from(page), form_fields(body(page))
    gas.status = "ceased"
    gas.save()
    shown = logged_in.get("/autolettura?sp=PR002875")
    assert shown.status_code == 200 and "Questa fornitura è cessata" in body(shown) and 'name="value_total"' not in body(shown)
    assert "530,000" in body(shown)  # its history stays
    response = logged_in.post("/autolettura?sp=PR002875", data={
        "csrf_token": token, "submission": key, "date": TODAY.isoformat(), "value_total": "560"})
    assert response.status_code == 422 and "Questa fornitura è cessata" in body(response)
    assert Reading.select().where(Reading.source == "customer").count() == 0


def test_two_gas_readings_sent_at_once_are_not_both_accepted(app, owner, history):
    """Two devices send this month's gas reading (different days) at the same moment: the rules
    and the write run one after the other per point, so the month's rule still holds."""
    import threading

    days = [TODAY - timedelta(days=1), TODAY]
    if days[0].month != TODAY.month:
        days = [TODAY, TODAY]  # the 1st of the month: the same day, refused as a duplicate instead
    prepared = []
    for day in days:
        client = app.test_client()
        assert login(client, "005007", PASSWORD).status_code == 303
        page = fetched(client.get("/autolettura?sp=PR002875"))
        prepared.append((client, {"csrf_token": csrf_from(page), "submission": form_fields(body(page)),
                                  "date": day.isoformat(), "value_total": italian(plausible("total"))}))
    start, answers = threading.Barrier(len(prepared)), []

    def send_now(client, data):
        start.wait()
        answers.append(client.post("/autolettura?sp=PR002875", data=data).status_code)

    threads = [threading.Thread(target=send_now, args=item) for item in prepared]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(answers) == [303, 422]
    assert Reading.select().where(Reading.source == "customer").count() == 1


def test_electricity_may_be_read_more_than_once_a_month(logged_in, history):
    assert send(logged_in, day=TODAY - timedelta(days=1), values={r: plausible(r, 29) for r in ("F1", "F2", "F3")}
                ).status_code == 303
    assert send(logged_in).status_code == 303
    assert Reading.select().where(Reading.source == "customer").count() == 6


@pytest.mark.parametrize("day, message", [
    (TODAY + timedelta(days=1), "La data della lettura non può essere nel futuro."),
    (TODAY - timedelta(days=self_readings.MAX_AGE_DAYS + 1), "Si possono inviare solo letture degli ultimi 90 giorni."),
    ("31/02/2026", "Data non valida: usa il calendario o AAAA-MM-GG."),
    ("", "Scegli la data della lettura."),
], ids=["future", "too-old", "not-a-date", "empty"])
@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_the_date_is_checked(logged_in, history, day, message, htmx):
    page = refused(send(logged_in, point="PR002875", day=day, htmx=htmx), htmx, "date", message)
    if isinstance(day, str) and day:
        assert f'value="{day}"' in page


@pytest.mark.parametrize("value, message", [
    ("", "Scrivi la lettura che vedi sul contatore."),
    ("12a45", "Scrivi solo le cifre del contatore"),
    ("1234.5", "Scrivi solo le cifre del contatore"),  # no Italian number: 12.345 or 1234,5?
    ("1.23,4", "Scrivi solo le cifre del contatore"),  # thousands in groups of three, or none
    ("123,4567", "Scrivi solo le cifre del contatore"),
    ("-5", "Scrivi solo le cifre del contatore"),
    ("1234567890", "Scrivi solo le cifre del contatore"),
], ids=["empty", "letters", "point", "bad-groups", "four-decimals", "negative", "too-long"])
def test_the_value_is_checked(logged_in, history, value, message):
    page = refused(send(logged_in, point="PR002875", values={"total": value}), False, "value_total", message)
    assert f'value="{value}"' in page


# --- implausible: only with the customer's confirmation -------------------------------------------

@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_an_implausible_reading_is_accepted_only_after_confirmation(logged_in, history, htmx):
    high = {"total": last("total") + 4 * 30}  # 4 m³ a day where 1 is usual
    first = send(logged_in, point="PR002875", values=high, htmx=htmx)
    page = refused(first, htmx, "value_total", "risulterebbero 4,0 m³ al giorno, molto più del solito (1,0 m³ al giorno)")
    assert 'name="confirm_implausible"' in page and "Confermo che la lettura è giusta" in page
    confirmed = send(logged_in, point="PR002875", values=high, confirm=True, htmx=htmx)
    assert confirmed.status_code == (200 if htmx else 303)
    reading = Reading.get(Reading.source == "customer")
    assert reading.value == high["total"] and reading.confirmed_implausible is True


def test_the_confirmation_box_is_not_shown_for_a_plausible_reading(logged_in, history):
    page = ok(logged_in.get("/autolettura?sp=PR002875"))
    assert 'name="confirm_implausible"' not in page
    response = send(logged_in, point="PR002875", values={"total": last("total") - 1})
    assert response.status_code == 422 and 'name="confirm_implausible"' not in body(response)


def test_without_history_nothing_is_implausible(logged_in, points):
    gas = points[1]
    validated(gas, PREVIOUS, "total", Decimal(500))
    assert send(logged_in, point="PR002875", values={"total": Decimal(5000)}).status_code == 303


def test_estimated_readings_are_not_compared_against(logged_in, history):
    gas = history[1]
    validated(gas, TODAY - timedelta(days=3), "total", last("total") + 500, source="estimated")
    assert send(logged_in, point="PR002875", values={"total": plausible("total")}).status_code == 303


# --- the on-change check ----------------------------------------------------------------------------

def check(client, point="PR002875", **fields):
    page = fetched(client.get(f"/autolettura?sp={point}"))
    data = {"csrf_token": csrf_from(page), "date": TODAY.isoformat(), "value_total": "", **fields}
    return client.post(f"/autolettura/verifica?sp={point}", data=data, headers={
        **htmx_headers("reading-check"), "HX-Current-URL": f"http://localhost/autolettura?sp={point}"})


def test_the_on_change_check_says_only_the_filled_fields_problems(logged_in, history):
    untouched = check(logged_in)
    assert untouched.status_code == 200
    assert "<html" not in body(untouched) and 'hx-swap-oob="outerHTML"' in body(untouched)
    assert "Scrivi la lettura" not in body(untouched)  # not filled in yet: nothing to say
    assert {"HX-Request", "HX-Target"} <= set(untouched.headers["Vary"].split(", "))
    lower = check(logged_in, value_total="1")
    assert lower.status_code == 422
    assert re.search(r'<p class="field-error" id="err-value_total" hx-swap-oob="outerHTML">La lettura è più bassa',
                     body(lower))
    implausible = check(logged_in, value_total=str(last("total") + 200))
    assert implausible.status_code == 422 and 'name="confirm_implausible"' in body(implausible)
    future = check(logged_in, date=(TODAY + timedelta(days=2)).isoformat())
    assert "non può essere nel futuro" in body(future)
    assert Reading.select().where(Reading.source == "customer").count() == 0
    page = fetched(logged_in.get("/autolettura?sp=PR002875"))
    plain = logged_in.post("/autolettura/verifica?sp=PR002875",
                           data={"csrf_token": csrf_from(page), "date": TODAY.isoformat(), "value_total": "1"})
    assert plain.status_code == 422 and "<html" in body(plain) and "hx-swap-oob" not in body(plain)
    assert body(plain).count('id="err-value_total"') == 1


# --- reading windows -------------------------------------------------------------------------------

def window_without(today):
    """A window of days of the month that excludes today."""
    return "20-25" if today.day < 15 else "2-6"


def test_windows_are_read_and_clipped(app):
    with app.app_context():
        assert self_readings.parse_window("25-31") == (25, 31)
        assert self_readings.parse_window(None) is None
        for bad in ("25", "0-3", "25-32", "a-b"):
            with pytest.raises(ValueError):
                self_readings.parse_window(bad)
        windows = list(self_readings.windows_near((25, 31), date(2027, 2, 10)))
        assert self_readings.Window(date(2027, 2, 25), date(2027, 2, 28)) in windows  # end clipped
        wrapping = list(self_readings.windows_near((28, 3), date(2026, 12, 30)))
        assert self_readings.Window(date(2026, 12, 28), date(2027, 1, 3)) in wrapping


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_outside_the_window_the_reading_is_refused_with_the_next_dates(make_app, owner, history, htmx):
    windowed = make_app(READING_WINDOW_GAS=window_without(TODAY))
    client = windowed.test_client()
    assert login(client, "005007", PASSWORD).status_code == 303
    with windowed.app_context():
        _, upcoming = self_readings.open_window(history[1], TODAY)
    dates = f"dal {upcoming.first.strftime('%d/%m/%Y')} al {upcoming.last.strftime('%d/%m/%Y')}"
    page = ok(client.get("/autolettura?sp=PR002875"))
    assert "La prossima finestra va " + dates in page and "Avvisami per email" in page
    refused(send(client, point="PR002875", htmx=htmx), htmx, "date",
            "Ora non è il periodo per inviare l'autolettura. La prossima finestra va " + dates)
    # electricity has no window configured: any day
    assert send(client).status_code == 303


def test_inside_the_window_the_date_must_be_in_it(make_app, owner, history):
    window = f"{TODAY.day}-{TODAY.day}"
    windowed = make_app(READING_WINDOW_GAS=window)
    client = windowed.test_client()
    login(client, "005007", PASSWORD)
    response = send(client, point="PR002875", day=TODAY - timedelta(days=1))
    assert response.status_code == 422 and "La data deve essere nella finestra di autolettura in corso" in body(response)
    assert send(client, point="PR002875").status_code == 303


def test_a_bad_window_setting_stops_the_start(migrated_database):
    from app import ConfigError, create_app
    from tests.conftest import TEST_CONFIG

    with pytest.raises(ConfigError, match="READING_WINDOW_GAS"):
        create_app(dict(TEST_CONFIG, DATABASE_URL=migrated_database, READING_WINDOW_GAS="ultima settimana"))


# --- the photo -----------------------------------------------------------------------------------

def test_a_photo_is_kept_as_pixels_only_and_shown_to_its_owner(app, logged_in, history):
    original = image_bytes()
    assert b"SECRET-COMMENT" in original
    response = send(logged_in, point="PR002875", photo=("contatore.jpg", original))
    assert response.status_code == 303
    reading = Reading.get(Reading.source == "customer")
    assert reading.photo_path.endswith(".jpg")
    page = ok(logged_in.get("/autolettura?sp=PR002875"))
    assert f'href="/autolettura/{reading.id}/foto?sp=PR002875"' in page
    photo = logged_in.get(f"/autolettura/{reading.id}/foto")
    assert photo.status_code == 200 and photo.mimetype == "image/jpeg"
    assert photo.headers["Cache-Control"] == "private, no-store"
    assert b"SECRET-COMMENT" not in photo.data and Image.open(io.BytesIO(photo.data)).getexif() == {}
    stranger = make_customer(code="009999")
    make_supply_point(stranger)
    make_user(stranger)
    other = app.test_client()
    login(other, "009999", PASSWORD)
    assert other.get(f"/autolettura/{reading.id}/foto").status_code == 404
    assert other.get("/autolettura/987654/foto").status_code == 404


@pytest.mark.parametrize("name, data", [
    ("contatore.jpg", pdf_bytes("Non una foto")),  # a PDF renamed .jpg
    ("contatore.gif", b""),  # filled below: a real GIF
    ("contatore.jpg", b"\xff\xd8\xff\xe0 not really a jpeg"),
], ids=["pdf-renamed-jpg", "gif", "broken-jpeg"])
@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_a_photo_that_is_no_jpeg_or_png_is_refused(logged_in, history, name, data, htmx):
    if name.endswith(".gif"):
        data = image_bytes("GIF")
    page = refused(send(logged_in, point="PR002875", photo=(name, data), htmx=htmx), htmx, "photo",
                   "Sono ammesse solo immagini JPEG o PNG.")
    assert f'value="{italian(plausible("total"))}"' in page  # the reading typed stays


def test_a_photo_over_the_size_limit_is_refused(logged_in, history):
    import uploads

    too_big = b"\xff\xd8\xff" + b"0" * uploads.MAX_UPLOAD_BYTES
    refused(send(logged_in, point="PR002875", photo=("grande.jpg", too_big)), False, "photo", "Il file supera 5 MB.")


def test_a_photo_sent_with_a_refused_reading_is_kept_for_the_next_attempt(logged_in, history):
    """The confirmation step must not lose the photo: a browser cannot refill a file field."""
    high = {"total": last("total") + 4 * 30}
    first = send(logged_in, point="PR002875", values=high, photo=("contatore.png", image_bytes("PNG")))
    assert first.status_code == 422 and "La foto che hai scelto è già allegata" in body(first)
    kept = re.search(r'name="kept_photo" type="hidden" value="([^"]+)"', body(first)).group(1)
    assert send(logged_in, point="PR002875", values=high, confirm=True, kept_photo=kept).status_code == 303
    assert Reading.get(Reading.source == "customer").photo_path.endswith(".png")


def test_a_forged_kept_photo_is_ignored(logged_in, history):
    assert send(logged_in, point="PR002875", kept_photo="ab/forged.jpg").status_code == 303
    assert Reading.get(Reading.source == "customer").photo_path is None


# --- who may write -----------------------------------------------------------------------------------

@pytest.mark.parametrize("rights, may_write", [("read", False), ("full", True)])
def test_a_read_only_delegate_sees_the_readings_but_cannot_send_one(app, history, rights, may_write):
    make_user(history[0].customer, role=User.DELEGATE, delegate_rights=rights, username=f"delegato.{rights}")
    client = app.test_client()
    assert login(client, f"delegato.{rights}", PASSWORD).status_code == 303
    page = fetched(client.get("/autolettura?sp=PR002875"))
    assert page.status_code == 200 and "530,000" in body(page)
    assert ('name="value_total"' in body(page)) is may_write
    assert ("sola lettura" in body(page)) is not may_write
    token = csrf_from(page)
    data = {"csrf_token": token, "submission": "a-key", "date": TODAY.isoformat(), "value_total": "560"}
    response = client.post("/autolettura?sp=PR002875", data=data)
    if may_write:
        assert response.status_code == 303
    else:
        assert response.status_code == 403 and "Il tuo accesso è in sola lettura" in body(response)
        opt_in = client.post("/autolettura/promemoria?sp=PR002875", data={"csrf_token": token, "notify_readings": "yes"})
        assert opt_in.status_code == 403
    assert Reading.select().where(Reading.source == "customer").count() == (1 if may_write else 0)


def test_a_post_without_csrf_token_is_refused(logged_in, history):
    response = logged_in.post("/autolettura?sp=PR002875", data={"date": TODAY.isoformat(), "value_total": "600"})
    assert response.status_code == 400
    assert Reading.select().where(Reading.source == "customer").count() == 0


def test_sending_is_rate_limited(logged_in, history, monkeypatch):
    import ratelimit

    monkeypatch.setitem(ratelimit.LIMITS, "self-reading", (2, 3600))
    send(logged_in, point="PR002875", values={"total": "1"})
    send(logged_in, point="PR002875", values={"total": "1"})
    response = send(logged_in, point="PR002875")
    assert response.status_code == 429 and "Troppi tentativi" in body(response)
    assert Reading.select().where(Reading.source == "customer").count() == 0
    monkeypatch.setitem(ratelimit.LIMITS, "self-reading-check", (1, 3600))
    assert check(logged_in, value_total="1").status_code == 422
    quiet = check(logged_in, value_total="1")
    assert quiet.status_code == 204 and quiet.data == b""  # htmx swaps nothing; the submit checks again


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "frame"])
def test_the_photo_field_carries_the_limit_the_server_checks(logged_in, history, htmx):
    """What static/app.js reads to refuse a photo too large before sending the form: the
    server's own limit and words, and the hint says the same number."""
    headers = {**htmx_headers("frame"), "HX-Current-URL": "http://localhost/autolettura?sp=PR002874"} if htmx else {}
    html = ok(logged_in.get("/autolettura?sp=PR002875", headers=headers))
    assert ("<html" in html) is not htmx
    field = re.search(r'<input [^>]*id="photo"[^>]*>', html).group(0)
    assert f'data-max-bytes="{uploads.MAX_UPLOAD_BYTES}"' in field and 'data-too-large="Il file supera 5 MB."' in field
    assert "JPEG o PNG, al massimo 5 MB" in html


# --- the back office --------------------------------------------------------------------------------

OPERATOR_PASSWORD = "Sportello-Staff-2026!"


def operator_client(app, email):
    """A new operator, logged in with the second factor enrolled on the way."""
    with app.app_context():
        accounts.create_staff(email, OPERATOR_PASSWORD)
    client = app.test_client()
    assert login(client, email, OPERATOR_PASSWORD).status_code == 303
    page = ok(client.get("/login/codice"))
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', page).group(1)
    assert post_form(client, "/login/codice", {"code": pyotp.TOTP(secret).now()}).status_code == 303
    return client


@pytest.fixture
def staff(app):
    return operator_client(app, "operatore@utility.it")


def test_the_queue_lists_pending_readings_oldest_first_with_what_to_judge(logged_in, history, staff):
    assert send(logged_in, point="PR002875", values={"total": last("total") + 4 * 30}, confirm=True,
                photo=("c.png", image_bytes("PNG"))).status_code == 303
    assert send(logged_in).status_code == 303
    response = staff.get("/backoffice/letture")
    page = body(response)
    assert response.status_code == 200 and "Autoletture da validare" in page
    assert page.index("PR002875") < page.index("PR002874")  # oldest first
    assert "ROSSI MARIO (005007)" in page and "mario@example.it" in page
    assert "650,000" in page and "530,000" in page and "4,0 m³" in page  # value, previous, per day
    assert "1.600,000" in page and "10,0 kWh" in page
    assert "valore fuori dal solito, confermato dal cliente" in page
    gas_reading = Reading.get(Reading.source == "customer", Reading.register == "total")
    assert f'href="/backoffice/letture/{gas_reading.id}/foto"' in page
    photo = staff.get(f"/backoffice/letture/{gas_reading.id}/foto")
    assert photo.status_code == 200 and photo.mimetype == "image/png"
    assert "Autoletture" in ok(staff.get("/backoffice/"))  # in the staff menu


def reject(staff, reading, reason, htmx=False):
    page = fetched(staff.get("/backoffice/letture"))
    headers = {**htmx_headers("reading-queue"), "HX-Current-URL": "http://localhost/backoffice/letture"} if htmx else {}
    return staff.post(f"/backoffice/letture/{reading.id}/respingi",
                      data={"csrf_token": csrf_from(page), f"r{reading.id}-reason": reason}, headers=headers)


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_reading_then_operator_rejects_then_customer_is_mailed(app, logged_in, history, staff, smtp, htmx):
    assert send(logged_in).status_code == 303
    deliver(app)
    smtp.messages.clear()
    first = Reading.get(Reading.source == "customer", Reading.register == "F1")

    empty = reject(staff, first, "   ", htmx=htmx)
    assert empty.status_code == 422
    assert re.search(rf'id="err-r{first.id}-reason">Scrivi il motivo: lo leggerà il cliente.', body(empty))
    assert Reading.select().where(Reading.status == Reading.PENDING).count() == 3

    reason = "La foto non è leggibile <e il valore non torna>"
    response = reject(staff, first, reason, htmx=htmx)
    if htmx:
        assert response.status_code == 200 and "respinta: il cliente riceve" in body(response)
        assert "Nessuna autolettura da validare." in body(response) and "<html" not in body(response)
        assert {"HX-Request", "HX-Target"} <= set(response.headers["Vary"].split(", "))
    else:
        assert response.status_code == 303 and response.headers["Location"] == "/backoffice/letture"
    rows = list(Reading.select().where(Reading.source == "customer"))
    assert {(r.status, r.rejection_reason) for r in rows} == {(Reading.REJECTED, reason)}
    assert all(r.reviewed_by.email == "operatore@utility.it" and r.reviewed_at for r in rows)
    entry = AuditLog.get(AuditLog.action == "reading_rejected")
    assert entry.user.email == "operatore@utility.it" and entry.customer.code == "005007"

    assert deliver(app) == 1
    [mail] = smtp.messages
    assert mail["To"] == "mario@example.it" and mail["Subject"] == "La tua autolettura non è stata accettata"
    assert reason in text_of(mail) and "F2: 2.600,000 kWh" in text_of(mail)
    assert "&lt;e il valore non torna&gt;" in mail.get_body(("html",)).get_content()

    # The customer's history, as a page or as the frame the point selector swaps in: the
    # reason on its own line after the pill, not a colon after the pill's padding.
    customer_headers = {**htmx_headers("frame"), "HX-Current-URL": "http://localhost/autolettura?sp=PR002875"} if htmx else {}
    history_page = ok(logged_in.get("/autolettura?sp=PR002874", headers=customer_headers))
    assert ('respinta</span><br><span class="rejection-reason">Motivo: La foto non è leggibile '
            '&lt;e il valore non torna&gt;</span>') in history_page
    assert ("<html" in history_page) is not htmx
    # the day is free again: a new reading for it is accepted
    assert send(logged_in).status_code == 303


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_operator_validates_and_customer_is_mailed(app, logged_in, history, staff, smtp, htmx):
    assert send(logged_in, point="PR002875").status_code == 303
    deliver(app)
    smtp.messages.clear()
    reading = Reading.get(Reading.source == "customer")
    page = fetched(staff.get("/backoffice/letture"))
    headers = {**htmx_headers("reading-queue"), "HX-Current-URL": "http://localhost/backoffice/letture"} if htmx else {}
    response = staff.post(f"/backoffice/letture/{reading.id}/valida", data={"csrf_token": csrf_from(page)},
                          headers=headers)
    assert response.status_code == (200 if htmx else 303)
    assert Reading.get_by_id(reading.id).status == Reading.VALIDATED
    assert AuditLog.select().where(AuditLog.action == "reading_validated").count() == 1
    assert deliver(app) == 1
    assert smtp.messages[0]["Subject"] == "La tua autolettura è stata validata"
    # the validated reading is now the one the next is compared with
    assert "560,000" in ok(logged_in.get("/autolettura?sp=PR002875"))
    # a second click on the same reading changes nothing
    again = staff.post(f"/backoffice/letture/{reading.id}/valida", data={"csrf_token": csrf_from(page)})
    assert again.status_code == 303
    assert "Hai già gestito questa autolettura" in ok(staff.get("/backoffice/letture"))
    assert deliver(app) == 0


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
@pytest.mark.parametrize("decided_by", ["same operator", "colleague", "billing system"])
def test_a_stale_decision_says_who_decided_first(app, logged_in, history, staff, tmp_path, htmx, decided_by):
    """The queue stays open in a tab while the reading is decided elsewhere: in another tab of
    the same operator, by a colleague, or by the billing system's own reading. The late click
    writes nothing and says which it was."""
    assert send(logged_in, point="PR002875").status_code == 303
    reading = Reading.get(Reading.source == "customer")
    stale_tab = fetched(staff.get("/backoffice/letture"))
    if decided_by == "same operator":
        other_tab = fetched(staff.get("/backoffice/letture"))
        assert staff.post(f"/backoffice/letture/{reading.id}/valida",
                          data={"csrf_token": csrf_from(other_tab)}).status_code == 303
        expected = "Hai già gestito questa autolettura, forse da un&#39;altra scheda: questa decisione non è stata registrata."
    elif decided_by == "colleague":
        colleague = operator_client(app, "collega@utility.it")
        colleagues_page = fetched(colleague.get("/backoffice/letture"))
        assert colleague.post(f"/backoffice/letture/{reading.id}/valida",
                              data={"csrf_token": csrf_from(colleagues_page)}).status_code == 303
        expected = "Questa autolettura è già stata gestita da un altro operatore."
    else:
        import_readings(app, tmp_path, [("PR002875", TODAY.isoformat(), "total", str(reading.value), "customer")])
        expected = "Questa autolettura è già stata gestita."
    assert Reading.get_by_id(reading.id).status == Reading.VALIDATED

    headers = {**htmx_headers("reading-queue"), "HX-Current-URL": "http://localhost/backoffice/letture"} if htmx else {}
    late = staff.post(f"/backoffice/letture/{reading.id}/respingi",
                      data={"csrf_token": csrf_from(stale_tab), f"r{reading.id}-reason": "Troppo tardi"}, headers=headers)
    if htmx:
        assert late.status_code == 200 and "<html" not in body(late)
        said = body(late)
    else:
        assert late.status_code == 303 and late.headers["Location"] == "/backoffice/letture"
        said = ok(staff.get("/backoffice/letture"))
    assert re.search(r'class="flash flash-error"[^>]*>%s</p>' % re.escape(expected), said), said
    assert "altro operatore" not in said or decided_by == "colleague"
    assert Reading.get_by_id(reading.id).status == Reading.VALIDATED
    assert not AuditLog.select().where(AuditLog.action == "reading_rejected").exists()


def test_a_decision_on_a_submission_another_operator_handled_meanwhile_writes_nothing(app, logged_in, history, staff):
    """The second of two operators deciding at once: the rows it read as pending are not any more."""
    assert send(logged_in, point="PR002875").status_code == 303
    reading = Reading.get(Reading.source == "customer")
    with app.test_request_context():  # the mail's link is built as in a request
        operator = User.get(User.email == "operatore@utility.it")
        stale = self_readings.submission_of(reading)
        self_readings.validate(self_readings.submission_of(reading), operator)
        with pytest.raises(self_readings.AlreadyHandled):
            self_readings.reject(stale, operator, "Troppo tardi")
    assert Reading.get_by_id(reading.id).status == Reading.VALIDATED
    assert AuditLog.select().where(AuditLog.action == "reading_rejected").count() == 0


def test_customers_cannot_reach_the_queue_nor_a_foreign_reading(logged_in, history, staff):
    assert logged_in.get("/backoffice/letture").status_code == 404
    assert staff.post("/backoffice/letture/987654/valida", data={"csrf_token": csrf_from(fetched(staff.get("/backoffice/letture")))}
                      ).status_code == 404
    assert staff.get("/backoffice/letture/987654/foto").status_code == 404


# --- import and export -----------------------------------------------------------------------------

def import_readings(app, tmp_path, rows):
    folder = tmp_path / "import"
    folder.mkdir(exist_ok=True)
    lines = ["supply_point_code,date,register,value,source"] + [",".join(row) for row in rows]
    (folder / "readings.csv").write_text("\n".join(lines) + "\n")
    with app.app_context():
        report = importer.run([str(folder / "readings.csv")], app.config["FILE_STORE"])
    assert report.problems == []
    return report


def test_the_billing_systems_reading_validates_the_customers_row(app, logged_in, history, tmp_path):
    assert send(logged_in, point="PR002875").status_code == 303
    sent = Reading.get(Reading.source == "customer")
    report = import_readings(app, tmp_path, [("PR002875", TODAY.isoformat(), "total", str(sent.value), "customer")])
    assert report.summary["readings.csv"] == (0, 1, 0)
    again = import_readings(app, tmp_path, [("PR002875", TODAY.isoformat(), "total", str(sent.value), "customer")])
    assert again.summary["readings.csv"] == (0, 0, 1)  # the same file twice changes nothing
    rows = list(Reading.select().where(Reading.date == TODAY))
    assert [(r.id, r.status, r.submitted_by_id) for r in rows] == [(sent.id, Reading.VALIDATED, sent.submitted_by_id)]


def test_the_customer_is_mailed_when_the_billing_system_validates_their_reading(app, logged_in, history, tmp_path, smtp):
    """As when an operator validates: one mail for the submission's three registers, with the
    values the billing system took (its F2 differs); importing the same file again mails no one."""
    assert send(logged_in).status_code == 303
    deliver(app)
    smtp.messages.clear()
    sent = {r.register: r.value for r in Reading.select().where(Reading.source == "customer")}
    rows = [("PR002874", TODAY.isoformat(), register, str(value + (5 if register == "F2" else 0)), "customer")
            for register, value in sent.items()]
    assert import_readings(app, tmp_path, rows).summary["readings.csv"] == (0, 3, 0)
    assert deliver(app) == 1
    [mail] = smtp.messages
    assert mail["Subject"] == "La tua autolettura è stata validata" and mail["To"] == "mario@example.it"
    text = text_of(mail)
    for register, value in sent.items():
        shown = value + (5 if register == "F2" else 0)
        assert f"- {register}: {format_decimal(shown, format='#,##0.000', locale='it')} kWh" in text
    assert f"{app.config['PORTAL_BASE_URL']}/autolettura?sp=PR002874" in text
    entry = AuditLog.get(AuditLog.action == "reading_validated_by_import")
    assert entry.user_id is None and '"point": "PR002874"' in entry.detail
    import_readings(app, tmp_path, rows)
    assert deliver(app) == 0


def test_after_a_rejection_the_billing_systems_reading_is_a_new_row(app, logged_in, history, staff, tmp_path):
    assert send(logged_in, point="PR002875").status_code == 303
    sent = Reading.get(Reading.source == "customer")
    assert reject(staff, sent, "Cifre sbagliate").status_code == 303
    report = import_readings(app, tmp_path, [("PR002875", TODAY.isoformat(), "total", "555", "distributor")])
    assert report.summary["readings.csv"] == (1, 0, 0)
    assert Reading.get_by_id(sent.id).status == Reading.REJECTED


def test_the_export_carries_the_self_readings(app, logged_in, history):
    import exporter

    assert send(logged_in, point="PR002875").status_code == 303
    out = io.StringIO()
    with app.test_request_context():
        assert exporter.export_readings(TODAY, out) == 1
    lines = out.getvalue().splitlines()
    assert lines[1].startswith(f"PR002875,01234567891011,005007,{TODAY.isoformat()},total,560.000,pending,")


# --- the reminder ----------------------------------------------------------------------------------

def test_the_reminder_opt_in_and_the_mail_once_per_window(make_app, owner, history, smtp):
    window = f"{TODAY.day}-{TODAY.day}"
    windowed = make_app(READING_WINDOW_GAS=window)
    client = windowed.test_client()
    login(client, "005007", PASSWORD)
    page = fetched(client.get("/autolettura?sp=PR002875"))
    response = client.post("/autolettura/promemoria?sp=PR002875",
                           data={"csrf_token": csrf_from(page), "notify_readings": "yes"})
    assert response.status_code == 303
    assert User.get_by_id(owner.id).notify_readings is True
    assert "Ti scriviamo quando si apre la finestra" in ok(client.get("/autolettura?sp=PR002875"))
    runner = windowed.test_cli_runner()
    first = runner.invoke(args=["remind-readings"])
    assert first.exit_code == 0 and "1 reminder(s) queued." in first.output
    second = runner.invoke(args=["remind-readings"])
    assert "0 reminder(s) queued." in second.output
    assert ReadingReminder.select().count() == 1
    deliver(windowed)
    [mail] = smtp.messages
    assert mail["Subject"] == "È il momento dell'autolettura" and "PR002875" in text_of(mail)
    assert "PR002874" not in text_of(mail)  # electricity has no window
    outside = runner.invoke(args=["remind-readings", "--today", (TODAY + timedelta(days=1)).isoformat()])
    assert "0 reminder(s) queued." in outside.output


def test_no_reminder_without_the_opt_in(make_app, owner, history):
    windowed = make_app(READING_WINDOW_GAS=f"{TODAY.day}-{TODAY.day}")
    result = windowed.test_cli_runner().invoke(args=["remind-readings"])
    assert "0 reminder(s) queued." in result.output
