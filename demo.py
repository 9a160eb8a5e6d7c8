"""The demo utility: a small Romagna seller of electricity and gas, the same on every run.

`flask demo` (app.py) calls `load()`, which writes:

- customer 005007, ROSSI MARIO, with a login (005007 or mario.rossi / Demo-Sportello-2026),
  an electricity point (PR002874) and a gas point (PR002875), monthly invoices since January
  2014 (the last two years' with a PDF bill, but for a few), two years of meter readings,
  15-minute measures since the first of the month 13 months back (both DST changes, three
  estimated days, a gap of 30 hours), a ticket waiting for his reply and a closed one, his own documents;
- customer 005008, a person with no login yet, to try the registration;
- about 300 other customers (people, firms, town halls) with their points and invoices, and
  hourly measures for their electricity points over the same months;
- the daily and monthly totals by band of every point's measures (totals.py), as the import
  keeps them;
- the generic documents (forms, notices...) as small PDF files in instance/files.

"Today" is the day the demo is loaded (in Rome), or the day given to load(today=...) and
`flask demo --today`: the last complete month is billed, measures go up to yesterday, and the
logins, the ticket, the announcements and the reports are dated relative to it. Every random
choice comes from one random.Random(2014), so two runs with the same today give the same
customers, codes, invoice numbers, amounts and PDFs. Only the password hashes differ between
runs: argon2 salts them.
"""
import calendar
import hashlib
import json
import os
import random
import tempfile
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

import holidays
import peewee as pw
import psycopg2.extras
from babel.dates import format_date
from flask import current_app
from stdnum import luhn
from stdnum.it import codicefiscale

import accounts
import bands
import files
import models
import partitions
import totals
from database import is_sqlite, write_transaction
from demo_pdf import bill_pdf, minimal_pdf
from i18n import ROME, rome_midnight_utc, rome_today
from models import Consent, Customer, Document, Invoice, Measure, Reading, SupplyPoint, Ticket, TicketMessage, User

SEED = 2014
DEMO_CUSTOMER = "005007"
DEMO_USERNAME = "mario.rossi"
DEMO_PASSWORD = "Demo-Sportello-2026"
REGISTRATION_CUSTOMER = "005008"  # a person without a login, to try the registration
OTHER_CUSTOMERS = 300
CHUNK = 500  # rows per INSERT: well under SQLite's limit of bound variables
CENT = Decimal("0.01")

FIRST_BILLED = (2014, 1)
RECENT_MONTHS = 24  # Mario's bills of the last 24 months have a PDF (but for a few)

# --- the demo's Italy ---------------------------------------------------------------------

# (town, province, postcodes, Belfiore code for the codice fiscale, phone prefix, weight):
# most customers live around Ravenna, where the utility is.
TOWNS = [
    ("RAVENNA", "RA", ("48121", "48122", "48123", "48124", "48125"), "H199", "0544", 30),
    ("FAENZA", "RA", ("48018",), "D458", "0546", 8),
    ("LUGO", "RA", ("48022",), "E730", "0545", 6),
    ("CERVIA", "RA", ("48015",), "C553", "0544", 6),
    ("RUSSI", "RA", ("48026",), "H642", "0544", 4),
    ("BAGNACAVALLO", "RA", ("48012",), "A547", "0545", 4),
    ("ALFONSINE", "RA", ("48011",), "A191", "0544", 3),
    ("FORLÌ", "FC", ("47121", "47122"), "D704", "0543", 8),
    ("CESENA", "FC", ("47521", "47522"), "C573", "0547", 6),
    ("FORLIMPOPOLI", "FC", ("47034",), "D705", "0543", 2),
    ("CESENATICO", "FC", ("47042",), "C574", "0547", 3),
    ("RIMINI", "RN", ("47921", "47922", "47923", "47924"), "H294", "0541", 6),
    ("RICCIONE", "RN", ("47838",), "H274", "0541", 3),
    ("SANTARCANGELO DI ROMAGNA", "RN", ("47822",), "I304", "0541", 2),
    ("BOLOGNA", "BO", ("40121", "40122", "40123", "40124", "40125", "40126", "40127", "40128",
                       "40129", "40131", "40132", "40133", "40134", "40135", "40136", "40137",
                       "40138", "40139", "40141"), "A944", "051", 6),
    ("IMOLA", "BO", ("40026",), "E289", "0542", 4),
    ("CASALECCHIO DI RENO", "BO", ("40033",), "B880", "051", 2),
    ("SAN LAZZARO DI SAVENA", "BO", ("40068",), "H945", "051", 2),
]
TOWN_WEIGHTS = [town[5] for town in TOWNS]
# Birthplaces further away (Belfiore codes), for some of the people.
OTHER_BIRTHPLACES = ["F205", "H501", "F839", "D548", "G273", "A662", "L219", "C351"]
# The 3 digits of a partita IVA after the company's number: the provincial office.
VAT_OFFICE = {"RA": "039", "FC": "040", "RN": "099", "BO": "037"}

MALE_NAMES = [
    "MARCO", "LUCA", "ANDREA", "GIUSEPPE", "FRANCESCO", "ALESSANDRO", "MATTEO", "LORENZO",
    "DAVIDE", "STEFANO", "PAOLO", "ROBERTO", "GIOVANNI", "ANTONIO", "FABIO", "SIMONE",
    "RICCARDO", "NICOLA", "MASSIMO", "CLAUDIO", "MAURIZIO", "GIORGIO", "FEDERICO", "ENRICO",
]
FEMALE_NAMES = [
    "GIULIA", "FRANCESCA", "CHIARA", "SARA", "ELENA", "VALENTINA", "SILVIA", "LAURA",
    "ALESSANDRA", "MARTINA", "FEDERICA", "ELISA", "ANNA", "MARIA", "PAOLA", "BARBARA",
    "MONICA", "CRISTINA", "ROBERTA", "SIMONA", "ELEONORA", "SERENA", "GIORGIA", "DANIELA",
]
SURNAMES = [
    "BIANCHI", "FERRARI", "ESPOSITO", "RUSSO", "ROMANO", "COLOMBO", "RICCI", "MARINO",
    "GRECO", "BRUNO", "GALLO", "CONTI", "COSTA", "GIORDANO", "MANCINI", "RIZZO", "LOMBARDI",
    "MORETTI", "BARBIERI", "FONTANA", "SANTORO", "MARIANI", "RINALDI", "CARUSO", "GALLI",
    "MARTINI", "LEONE", "LONGO", "GENTILE", "MARTINELLI", "VITALE", "CASADEI", "MONTANARI",
    "ZANNONI", "GUERRINI", "BALDINI", "BERTOZZI", "PAZZAGLIA", "GARDINI", "RAVAIOLI",
    "FABBRI", "TONINI", "VALENTINI", "MAZZOTTI",
]
STREETS = [
    "VIA ROMA", "VIA GIUSEPPE GARIBALDI", "VIA GIUSEPPE MAZZINI", "CORSO CAVOUR",
    "VIA DANTE ALIGHIERI", "VIALE DELLA REPUBBLICA", "VIA GIACOMO MATTEOTTI",
    "VIA ANTONIO GRAMSCI", "VIA GIUSEPPE VERDI", "VIA EMILIA", "VIA DEI MILLE",
    "VIA XX SETTEMBRE", "VIA IV NOVEMBRE", "VIA CESARE BATTISTI", "VIA DELLA LIBERTÀ",
    "VIA PIETRO NENNI", "VIA ALDO MORO", "VIA GUGLIELMO MARCONI", "VIA DON GIOVANNI MINZONI",
    "VIA FAENTINA", "VIA RAVEGNANA", "VIA TRIESTE", "VIA MARCO POLO", "VIA SAN VITALE",
    "VIALE EUROPA", "VIA DELLE ROSE", "VIA GIOSUÈ CARDUCCI", "VIA GIOVANNI PASCOLI",
]
BUSINESS_STREETS = ["VIA DELL'INDUSTRIA", "VIA DELL'ARTIGIANATO", "VIA DEL LAVORO", "VIA BAIONA", "VIA DELLE INDUSTRIE"]
BUSINESSES = [
    "FERRAMENTA", "PANIFICIO", "AUTOFFICINA", "BAR", "RISTORANTE", "IDRAULICA", "EDILIZIA",
    "TRATTORIA", "ALIMENTARI", "TIPOGRAFIA", "CARROZZERIA", "HOTEL", "PASTICCERIA",
    "ELETTRAUTO", "FALEGNAMERIA", "AGRITURISMO", "LAVANDERIA", "GELATERIA",
]
LEGAL_FORMS = ["S.R.L.", "S.R.L.", "S.R.L.", "S.N.C.", "S.A.S.", "S.P.A."]
MOBILE_PREFIXES = ["320", "328", "333", "338", "340", "347", "348", "349", "366", "380", "388", "393"]

# Prices by the billed period's year (they changed a bit, and a lot in 2022; later years keep
# the last one, see price()), and the fixed monthly fees by kind of customer.
ELECTRICITY_PRICE = {
    2014: "0.238", 2015: "0.231", 2016: "0.219", 2017: "0.224", 2018: "0.232", 2019: "0.236",
    2020: "0.215", 2021: "0.262", 2022: "0.348", 2023: "0.301", 2024: "0.268", 2025: "0.274",
    2026: "0.259",
}
GAS_PRICE = {
    2014: "0.86", 2015: "0.83", 2016: "0.80", 2017: "0.81", 2018: "0.85", 2019: "0.84",
    2020: "0.80", 2021: "0.97", 2022: "1.29", 2023: "1.12", 2024: "1.04", 2025: "1.08",
    2026: "1.01",
}
ELECTRICITY_FEE = {"person": Decimal("9.60"), "company": Decimal("24.50"), "public_body": Decimal("31.00")}
GAS_FEE = {"person": Decimal("7.20"), "company": Decimal("14.80"), "public_body": Decimal("18.90")}

# Share of a year's consumption in each month (January first): electricity is higher in
# winter (light, heaters) and summer (air conditioning), gas is almost all winter heating.
ELECTRICITY_SEASON = [1.15, 1.08, 0.98, 0.90, 0.88, 0.96, 1.14, 1.12, 0.94, 0.93, 1.02, 1.17]
GAS_SEASON = [200, 180, 130, 75, 32, 17, 14, 14, 18, 55, 120, 175]
# Mario's gas, Smc per month (low, high): heating from October to April.
DEMO_GAS_RANGES = [
    (180, 220), (160, 200), (110, 150), (60, 90), (25, 40), (12, 22),
    (10, 18), (10, 18), (12, 25), (40, 70), (100, 140), (150, 200),
]
# A household's kWh in each hour of a working day and of a weekend day (local time): low at
# night, a morning and an evening peak, more at midday when people are at home.
WEEKDAY_PROFILE = [
    0.18, 0.16, 0.15, 0.15, 0.15, 0.16, 0.25, 0.80, 0.50, 0.22, 0.20, 0.20,
    0.32, 0.38, 0.22, 0.20, 0.22, 0.35, 0.60, 0.90, 1.10, 0.85, 0.50, 0.28,
]
WEEKEND_PROFILE = [
    0.22, 0.18, 0.16, 0.15, 0.15, 0.15, 0.18, 0.25, 0.45, 0.70, 0.75, 0.70,
    0.85, 0.80, 0.50, 0.38, 0.38, 0.48, 0.68, 0.95, 1.05, 0.90, 0.60, 0.34,
]


def price(prices, year):
    return Decimal(prices[min(year, max(prices))])


# --- dates ----------------------------------------------------------------------------------

def next_month(year, month):
    return (year + 1, 1) if month == 12 else (year, month + 1)


def previous_month(year, month):
    return (year - 1, 12) if month == 1 else (year, month - 1)


def last_billed(today):
    """The last complete month before `today`: the newest one billed."""
    return previous_month(today.year, today.month)


def italian_holidays(first_year, last_year):
    """National holidays (F3 all day, and people at home): a plain set, looked up 100,000 times."""
    return frozenset(holidays.Italy(years=range(first_year, last_year + 1)))


def last_day(year, month):
    return date(year, month, calendar.monthrange(year, month)[1])


def months_from(first, last):
    """(year, month) pairs from `first` to `last`, both included."""
    month = first
    while month <= last:
        yield month
        month = next_month(*month)


def random_datetime(rng, start, end):
    """A datetime between start and end, to the minute."""
    minutes = int((end - start).total_seconds() // 60)
    return start + timedelta(minutes=rng.randrange(minutes))


# --- codes ----------------------------------------------------------------------------------

MONTH_LETTERS = "ABCDEHLMPRST"


def _consonants_and_vowels(text):
    letters = [c for c in text.upper() if "A" <= c <= "Z"]
    return [c for c in letters if c not in "AEIOU"], [c for c in letters if c in "AEIOU"]


def surname_letters(surname):
    consonants, vowels = _consonants_and_vowels(surname)
    return "".join(consonants + vowels + ["X"] * 3)[:3]


def first_name_letters(name):
    consonants, vowels = _consonants_and_vowels(name)
    if len(consonants) >= 4:  # the rule: 1st, 3rd and 4th consonant
        consonants = [consonants[0], consonants[2], consonants[3]]
    return "".join(consonants + vowels + ["X"] * 3)[:3]


def codice_fiscale(surname, first_name, birth_date, female, birthplace):
    """A person's codice fiscale by the real algorithm (no omocodia)."""
    day = birth_date.day + (40 if female else 0)
    body = (
        surname_letters(surname) + first_name_letters(first_name) + f"{birth_date.year % 100:02d}"
        + MONTH_LETTERS[birth_date.month - 1] + f"{day:02d}" + birthplace
    )
    return body + codicefiscale.calc_check_digit(body)


def partita_iva(rng, province):
    """An 11-digit partita IVA: company number, provincial office, check digit (a Luhn digit:
    stdnum.it.iva has no calc_check_digit, its validate() checks stdnum.luhn)."""
    body = f"0{rng.randrange(10**5, 10**6)}" + VAT_OFFICE[province]
    return body + luhn.calc_check_digit(body)


def unique(make, used):
    """Call make() until it gives a value not in `used`; remember it."""
    while True:
        value = make()
        if value not in used:
            used.add(value)
            return value


def kw(value):
    """3 -> '3 kW', 4.95 -> '4,95 kW', as the contracts print powers."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return text.replace(".", ",") + " kW"


def thousands(value):
    return f"{value:,}".replace(",", ".")


def money(value):
    return "€ " + f"{value:,.2f}".replace(",", "X").replace(".", ",").replace("X", ".")


# --- loading --------------------------------------------------------------------------------

def load(reset=False, echo=print, today=None):
    """Fill the database with the demo utility as it is on `today` (default: today in Rome).
    With data already there (and no reset) it adds nothing and only prints the demo
    credentials again."""
    today = today or rome_today()
    with write_transaction():
        if reset:
            delete_everything()
        elif Customer.select().exists():
            echo(f"The database already has {Customer.select().count()} customers: nothing loaded "
                 "(flask demo --reset deletes everything and loads the demo again).")
            echo_credentials(echo)
            return
        fill(random.Random(SEED), today)
    echo(
        f"Demo data loaded: {Customer.select().count()} customers, "
        f"{SupplyPoint.select().count()} supply points, {Invoice.select().count()} invoices "
        f"({Invoice.select().where(Invoice.pdf_path.is_null(False)).count()} with a PDF), "
        f"{Measure.select().count()} measures, as of {today:%d/%m/%Y}."
    )
    echo_credentials(echo)


def delete_everything():
    # Children before parents, so no foreign key complains.
    for model in reversed(pw.sort_models(models.ALL_MODELS)):
        model.delete().execute()


def echo_credentials(echo):
    if not Customer.select().where(Customer.code == DEMO_CUSTOMER).exists():
        echo(f"(No demo customer {DEMO_CUSTOMER} in this database.)")
        return
    echo(f"Log in at the portal with User {DEMO_CUSTOMER} (or {DEMO_USERNAME}) and password {DEMO_PASSWORD}")
    example = registration_example()
    if example:
        echo(
            f"Try registration with customer code {example['customer_code']}, codice fiscale "
            f"{example['tax_code']}, invoice number {example['invoice_number']} "
            f"(or its POD {example['pod']})"
        )
    echo(f"Mail is written under {current_app.config['MAIL_STORE_DIR']} (the portal prints links in its log).")


def registration_example():
    """What customer 005008 would type to register: a dict(customer_code, tax_code,
    invoice_number, pod) read from the database, or None if 005008 is not there."""
    customer = Customer.get_or_none(Customer.code == REGISTRATION_CUSTOMER)
    if customer is None:
        return None
    invoice = Invoice.for_customer(customer).order_by(*Invoice.newest_first()).first()
    point = (SupplyPoint.for_customer(customer)
             .where(SupplyPoint.commodity == "electricity").first())
    return dict(
        customer_code=customer.code,
        tax_code=customer.tax_code,
        invoice_number=invoice.number if invoice else None,
        pod=point.pod_pdr if point else None,
    )


def insert_rows(model, rows):
    for start in range(0, len(rows), CHUNK):
        model.insert_many(rows[start:start + CHUNK]).execute()


def fill(rng, today):
    """Write everything, parents first; ids are read back by code after each bulk insert."""
    customers = [demo_customer()] + other_customers(rng, today)
    nightly_import = datetime.combine(today - timedelta(days=1), time(2, 0))
    for customer in customers:
        customer["row"]["updated_at"] = nightly_import

    insert_rows(Customer, [c["row"] for c in customers])
    customer_ids = dict(Customer.select(Customer.code, Customer.id).tuples())

    point_rows = []
    for customer in customers:
        for point in customer["points"]:
            point["row"]["customer"] = customer_ids[customer["row"]["code"]]
            point_rows.append(point["row"])
    insert_rows(SupplyPoint, point_rows)
    point_ids = dict(SupplyPoint.select(SupplyPoint.code, SupplyPoint.id).tuples())

    mario = customers[0]
    mario_id = customer_ids[DEMO_CUSTOMER]
    owner = create_demo_owner(mario_id, mario["row"]["tax_code"], today)
    insert_other_users(rng, customers[1:], customer_ids, today)

    # Mario's electricity comes from one hourly series: its last 13 months are his measures
    # (each hour split in four quarters), its monthly sums his bills, so the chart and the bills
    # agree (but for the month with the gap: the meter did not report, the bill was estimated).
    hourly = household_hours(rng, date(*FIRST_BILLED, 1), today, first_measured_day(today))

    invoices = []  # (sort key, row)
    electricity = point_ids["PR002874"]
    gas = point_ids["PR002875"]
    invoices += demo_electricity_invoices(rng, mario_id, electricity, hourly["months"], today)
    gas_smc = demo_gas_smc(rng, today)
    invoices += demo_gas_invoices(mario_id, gas, gas_smc, today)
    invoices += demo_invoices_without_point(mario_id, today)
    for customer in customers[1:]:
        for point in customer["points"]:
            invoices += point_invoices(rng, customer, point, customer_ids, point_ids, today)
    rows = number_invoices(invoices)
    set_invoice_statuses(rng, rows, mario_id, point_rows, point_ids, today)
    attach_demo_bills(rng, rows, mario, mario_id, point_ids, today)
    insert_rows(Invoice, rows)

    insert_rows(Reading, demo_readings(rng, rows, electricity, gas, owner.id, today))
    insert_measures(electricity, hourly["measures"], customers[1:], point_ids, today)
    create_demo_ticket(mario_id, electricity, owner, rows, today)
    create_demo_closed_ticket(mario_id, gas, owner, today)
    create_documents(mario_id, rows, electricity, gas, today)
    create_demo_contact_change(mario_id, owner, today)
    create_demo_delegate(mario_id, owner, today)
    create_demo_self_readings(electricity, gas, owner.id, today)


# --- customers ------------------------------------------------------------------------------

DEMO_ELECTRICITY_TECH = {
    "Tensione": "230 V", "Potenza impegnata": "3 kW", "Potenza disponibile": "3,3 kW",
    "Tipo contatore": "Elettronico orario", "Distributore": "e-distribuzione",
}
DEMO_ELECTRICITY_CONTRACT = {
    "Offerta": "Casa Luce Fissa", "Tipo cliente": "Domestico residente",
    "Data attivazione": "01/01/2014", "Modalità di pagamento": "Domiciliazione bancaria",
    "Invio fattura": "Email",
}
DEMO_GAS_TECH = {
    "Classe contatore": "G4", "Matricola contatore": "13G4587121", "Codice REMI": "34751200",
    "Pressione di fornitura": "Bassa pressione", "Distributore": "INRETE Distribuzione Energia",
}
DEMO_GAS_CONTRACT = {
    "Offerta": "Casa Gas Fissa", "Uso": "Riscaldamento e cottura", "Tipo cliente": "Domestico",
    "Consumo annuo stimato": "1.050 Smc", "Data attivazione": "01/01/2014",
    "Modalità di pagamento": "Domiciliazione bancaria", "Invio fattura": "Email",
}
DEMO_BIRTH = date(1971, 4, 18)


def as_json(data):
    return json.dumps(data, ensure_ascii=False)


def customer_row(code, name, kind, tax_code, vat_number, email, phone, mobile, address, postcode, town):
    return dict(
        code=code, name=name, kind=kind, tax_code=tax_code, vat_number=vat_number, email=email,
        phone=phone, fax=None, mobile=mobile, address=address, postcode=postcode, city=town[0],
        province=town[1], updated_at=None,  # the nightly import: fill() sets it
    )


def point_row(code, commodity, pod_pdr, address, postcode, town, start, end, technical, contract):
    return dict(
        code=code, customer=None, commodity=commodity, pod_pdr=pod_pdr, address=address,
        postcode=postcode, city=town[0], province=town[1], status="ceased" if end else "active",
        start_date=start, end_date=end, technical_data=as_json(technical), contract_data=as_json(contract),
    )


def demo_customer():
    ravenna = TOWNS[0]
    tax_code = codice_fiscale("ROSSI", "MARIO", DEMO_BIRTH, False, ravenna[3])
    start = date(2014, 1, 1)
    return dict(
        row=customer_row(DEMO_CUSTOMER, "ROSSI MARIO", "person", tax_code, None, "mario.rossi@example.it",
                         "0544 401234", "333 1234567", "VIA PROVA 5", "48124", ravenna),
        points=[
            dict(row=point_row("PR002874", "electricity", "IT001E00287400", "VIA PROVA 5", "48124", ravenna,
                               start, None, DEMO_ELECTRICITY_TECH, DEMO_ELECTRICITY_CONTRACT)),
            dict(row=point_row("PR002875", "gas", "01234567891011", "VIA PROVA 5", "48124", ravenna,
                               start, None, DEMO_GAS_TECH, DEMO_GAS_CONTRACT)),
        ],
        user=None,
        billing_day=10,
    )


def random_person(rng, birthplace_town):
    female = rng.random() < 0.5
    first = rng.choice(FEMALE_NAMES if female else MALE_NAMES)
    surname = rng.choice(SURNAMES)
    born = date(1940, 1, 1) + timedelta(days=rng.randrange(62 * 365))
    birthplace = rng.choice(OTHER_BIRTHPLACES) if rng.random() < 0.15 else birthplace_town[3]
    return dict(first=first, surname=surname, tax_code=codice_fiscale(surname, first, born, female, birthplace))


def random_address(rng, town, business=False):
    street = rng.choice(BUSINESS_STREETS if business else STREETS)
    number = str(rng.randint(1, 180)) + (rng.choice(["/A", "/B"]) if rng.random() < 0.08 else "")
    return f"{street} {number}", rng.choice(town[2])


def other_customers(rng, today):
    """About 300 customers after 005007, as dicts: row, points, user (or None), billing day."""
    used_tax_codes, used_pods, used_pdrs, used_names = set(), {"IT001E00287400"}, {"01234567891011"}, set()
    # About one customer in 33 is a town hall of the utility's own area (Ravenna, Forlì-Cesena).
    town_halls = [town for town in TOWNS if town[1] in ("RA", "FC") and town[0] not in ("FORLÌ", "CESENA")]
    town_halls = rng.sample(town_halls, len(town_halls))
    customers = []
    customer_number = 5007
    point_number = 2875
    email_number = 0
    for index in range(OTHER_CUSTOMERS):
        customer_number += 1 if index == 0 else rng.randint(1, 5)  # codes with gaps, like real ones
        code = f"{customer_number:06d}"
        for_registration = code == REGISTRATION_CUSTOMER
        kind = "company" if rng.random() < 0.155 else "person"
        if index % 33 == 16 and town_halls:
            kind = "public_body"
        if for_registration:
            kind = "person"
        town = town_halls.pop() if kind == "public_body" else rng.choices(TOWNS, TOWN_WEIGHTS)[0]
        address, postcode = random_address(rng, town, business=kind == "company")
        landline = f"{town[4]} {rng.randrange(200000, 999999)}"
        mobile = f"{rng.choice(MOBILE_PREFIXES)} {rng.randrange(10**6, 10**7)}"
        email_number += 1
        if kind == "person":
            person = random_person(rng, town)
            while person["tax_code"] in used_tax_codes:
                person = random_person(rng, town)
            used_tax_codes.add(person["tax_code"])
            contact = person  # the person who would register
            name, tax_code, vat_number = f"{person['surname']} {person['first']}", person["tax_code"], None
            phone = landline if rng.random() < 0.3 else None
            customer_email = f"{person['first']}.{person['surname']}{email_number}@example.it".lower()
        else:
            contact = random_person(rng, town)  # the firm's employee who would register
            vat_number = tax_code = unique(lambda: partita_iva(rng, town[1]), used_tax_codes)  # noqa: B023 (called at once)
            if kind == "company":
                name = unique(lambda: f"{rng.choice(BUSINESSES)} {rng.choice(SURNAMES)} {rng.choice(LEGAL_FORMS)}",
                              used_names)
                customer_email = f"amministrazione{email_number}@example.it"
            else:
                name = f"COMUNE DI {town[0]}"
                customer_email = f"protocollo{email_number}@example.it"
            phone, mobile = landline, None
        email = f"{contact['first']}.{contact['surname']}{email_number}@example.it".lower()
        if rng.random() < 0.2 and kind == "person":
            customer_email = None  # not everybody gave an email to the billing office

        points = []
        for _ in range(1 if for_registration else 1 + (rng.random() < 0.6)):
            point_number += rng.randint(1, 3)
            commodity = "electricity" if for_registration or rng.random() < 0.65 else "gas"
            points.append(random_point(rng, f"PR{point_number:06d}", commodity, kind, town, address,
                                       postcode, used_pods, used_pdrs, may_cease=not for_registration,
                                       today=today))
        user = None
        if not for_registration and rng.random() < 1 / 3:
            user = dict(email=email, first=contact["first"].title(), last=contact["surname"].title(),
                        tax_code=contact["tax_code"])
        customers.append(dict(
            row=customer_row(code, name, kind, tax_code, vat_number, customer_email, phone, mobile,
                             address, postcode, town),
            points=points, user=user, billing_day=rng.randint(6, 14),
        ))
    return customers


def random_point(rng, code, commodity, kind, town, address, postcode, used_pods, used_pdrs, may_cease, today):
    """A supply point and how much it uses: its row, plus the figures its invoices need."""
    start = date(rng.randint(2014, 2024), rng.randint(1, 12), 1)
    end = None
    if may_cease and rng.random() < 0.05:
        months = (today.year - start.year) * 12 - start.month  # months left before this year
        if months > 12:
            year, month = start.year, start.month
            for _ in range(rng.randint(12, months)):
                year, month = next_month(year, month)
            end = last_day(year, month)
    if kind == "company" and rng.random() < 0.3:
        address, postcode = random_address(rng, town, business=True)  # the shop, not the office
    payment = rng.choice(["Domiciliazione bancaria", "Domiciliazione bancaria", "Bollettino postale",
                          "Bonifico bancario"])
    sending = rng.choice(["Email", "Email", "Posta"])
    activated = start.strftime("%d/%m/%Y")
    if commodity == "electricity":
        pod = unique(lambda: f"IT001E{rng.randrange(10**7, 10**8)}", used_pods)
        if kind == "person":
            annual, f1, f2 = rng.randint(1600, 3600), rng.uniform(0.30, 0.38), rng.uniform(0.28, 0.34)
            power = rng.choice([3, 3, 3, 3, 4.5, 6])
            customer_type = "Domestico residente" if rng.random() < 0.85 else "Domestico non residente"
            offer = rng.choice(["Casa Luce Fissa", "Casa Luce Variabile"])
        else:
            annual, f1, f2 = rng.randint(6000, 45000), rng.uniform(0.50, 0.62), rng.uniform(0.18, 0.25)
            power = rng.choice([10, 15, 20, 30, 50])
            customer_type = "Altri usi" if kind == "company" else "Altri usi - Pubblica amministrazione"
            offer = "Business Luce" if kind == "company" else "Enti Luce"
            if kind == "public_body":
                annual *= 3
        technical = {"Tensione": "230 V" if power <= 6 else "400 V trifase", "Potenza impegnata": kw(power),
                     "Potenza disponibile": kw(power * 1.1), "Tipo contatore": "Elettronico orario",
                     "Distributore": "e-distribuzione"}
        contract = {"Offerta": offer, "Tipo cliente": customer_type, "Data attivazione": activated,
                    "Modalità di pagamento": payment, "Invio fattura": sending}
        usage = dict(annual=annual, f1=f1, f2=f2, power=power, fee=ELECTRICITY_FEE[kind])
        return dict(row=point_row(code, commodity, pod, address, postcode, town, start, end, technical, contract),
                    usage=usage)
    pdr = unique(lambda: f"{rng.randrange(10**13):014d}", used_pdrs)
    if kind == "person":
        annual, meter = rng.randint(500, 1400), "G4"
        use = rng.choice(["Riscaldamento e cottura", "Riscaldamento e cottura", "Riscaldamento",
                          "Cottura e acqua calda"])
        offer, customer_type = rng.choice(["Casa Gas Fissa", "Casa Gas Variabile"]), "Domestico"
    else:
        annual, meter = rng.randint(1500, 9000), rng.choice(["G6", "G10", "G16"])
        use = rng.choice(["Riscaldamento", "Tecnologico (artigianale-industriale)"])
        offer, customer_type = "Business Gas", "Altri usi"
        if kind == "public_body":
            annual, use, customer_type = annual * 4, "Riscaldamento", "Altri usi - Pubblica amministrazione"
    technical = {"Classe contatore": meter, "Matricola contatore": f"{rng.randrange(10**7, 10**8)}",
                 "Codice REMI": f"3475{TOWNS.index(town):02d}00", "Pressione di fornitura": "Bassa pressione",
                 "Distributore": "INRETE Distribuzione Energia"}
    contract = {"Offerta": offer, "Uso": use, "Tipo cliente": customer_type,
                "Consumo annuo stimato": f"{thousands(annual)} Smc", "Data attivazione": activated,
                "Modalità di pagamento": payment, "Invio fattura": sending}
    usage = dict(annual=annual, fee=GAS_FEE[kind])
    return dict(row=point_row(code, commodity, pdr, address, postcode, town, start, end, technical, contract),
                usage=usage)


# --- users ----------------------------------------------------------------------------------

def days_before(today, days, hour, minute):
    """A naive UTC datetime `days` before `today`, at hour:minute."""
    return datetime.combine(today - timedelta(days=days), time(hour, minute))


def create_demo_owner(customer_id, tax_code, today):
    registered = datetime(2019, 5, 14, 8, 2)
    previous_login = days_before(today, 18, 7, 15)
    owner = User.create(
        customer=customer_id, role=User.OWNER, username=DEMO_USERNAME, email="mario.rossi@example.it",
        password_hash=accounts.hash_password(DEMO_PASSWORD), first_name="Mario", last_name="Rossi",
        tax_code=tax_code, mobile="333 1234567", language="it", created_at=registered,
        confirmed_at=registered + timedelta(minutes=4), last_login_at=days_before(today, 2, 18, 42),
        previous_login_at=previous_login, password_changed_at=days_before(today, 629, 19, 30),
    )
    recorded = previous_login + timedelta(minutes=1)  # consents asked again at that login
    answers = {"privacy": True, "marketing": False, "third_parties": False, "profiling": True}
    Consent.insert_many([
        dict(user=owner.id, kind=kind, granted=answers[kind], text_version=Consent.TEXT_VERSION,
             recorded_at=recorded, ip="93.45.120.17")
        for kind in Consent.KINDS
    ]).execute()
    return owner


def create_demo_delegate(customer_id, owner, today):
    """Mario's accountant, a read-only delegate he invited a few months ago: logs in as
    studio.bianchi with the demo password (issue 14's Delegati)."""
    invited = days_before(today, 96, 10, 12)
    delegate = User.create(
        customer=customer_id, role=User.DELEGATE, delegate_rights=User.READ, invited_by=owner,
        username="studio.bianchi", email="studio.bianchi@example.it", first_name="Anna", last_name="Bianchi",
        password_hash=accounts.hash_password(DEMO_PASSWORD), language="it", created_at=invited,
        confirmed_at=invited + timedelta(hours=3), password_changed_at=invited + timedelta(hours=3),
        last_login_at=days_before(today, 9, 11, 5),
    )
    Consent.insert_many([
        dict(user=delegate.id, kind=kind, granted=kind == "privacy", text_version=Consent.TEXT_VERSION,
             recorded_at=invited + timedelta(hours=3), ip="151.38.77.201")
        for kind in Consent.KINDS
    ]).execute()


def insert_other_users(rng, customers, customer_ids, today):
    # One argon2 hash for all of them: hashing each would take minutes.
    password_hash = accounts.hash_password(DEMO_PASSWORD)
    rows = []
    for customer in customers:
        user = customer["user"]
        if user is None:
            continue
        created = random_datetime(rng, datetime(2016, 1, 1), days_before(today, 20, 0, 0))
        last_login = random_datetime(rng, created + timedelta(hours=1), days_before(today, 1, 20, 0))
        previous = random_datetime(rng, created, last_login) if rng.random() < 0.8 else None
        rows.append(dict(
            customer=customer_ids[customer["row"]["code"]], role=User.OWNER, username=None,
            email=user["email"], password_hash=password_hash, first_name=user["first"],
            last_name=user["last"], tax_code=user["tax_code"], mobile=customer["row"]["mobile"],
            language="it", created_at=created, confirmed_at=created + timedelta(minutes=rng.randint(1, 90)),
            last_login_at=last_login, previous_login_at=previous, password_changed_at=created,
        ))
    insert_rows(User, rows)
    # Every registered user accepted the privacy notice when registering.
    consents = [dict(user=user_id, kind="privacy", granted=True, text_version=Consent.TEXT_VERSION,
                     recorded_at=created, ip=None)
                for user_id, created in User.select(User.id, User.created_at)
                .where(User.username.is_null()).order_by(User.id).tuples()]
    insert_rows(Consent, consents)


# --- Mario's hours --------------------------------------------------------------------------

def first_measured_day(today):
    """Measures start on the 1st of the month 13 months back: a whole month a year before the
    last complete one, and both DST changes, whatever the day."""
    year, month = today.year - 1, today.month - 1
    if month == 0:
        year, month = year - 1, 12
    return date(year, month, 1)


def quarters(rng, hours):
    """Mario's (UTC start, kWh, quality) hours as 15-minute measures that add up to them; an
    estimated hour is split evenly (an estimate is a flat profile), and 30 hours are missing."""
    gap_from = hours[0][0] + timedelta(days=75, hours=9)
    gap_to = gap_from + timedelta(hours=30)
    quarter = timedelta(minutes=15)
    for start, kwh, quality in hours:
        if gap_from <= start < gap_to:
            continue
        if quality == "estimated":
            parts = [round(kwh / 4, 3)] * 3
        else:
            weights = [0.7 + 0.6 * rng.random() for _ in range(4)]
            parts = [round(kwh * w / sum(weights), 3) for w in weights[:3]]
        parts.append(round(kwh - sum(parts), 3))
        for n, part in enumerate(parts):
            yield start + n * quarter, part, 15, quality


# A business's hours: open on working days from 8 to 19, something always on.
BUSINESS_WEEKDAY = [0.35] * 7 + [0.7] + [1.6] * 11 + [0.7] * 2 + [0.35] * 3
BUSINESS_CLOSED = [0.35] * 24


def other_points_hours(database, customers, point_ids, today):
    """Hourly measures for every other electricity point: its annual kWh spread by a household's
    or a business's day and the season, from the first measured day (or its start) to yesterday
    (or its end); returns the points' ids. Three million rows: written by one INSERT ... SELECT
    over two small temporary tables (the hours, the points), each row's noise a hash of its
    point and hour, so the database does the work; in whole numbers (Wh), so that SQLite and
    PostgreSQL, and any two runs, give the same rows."""
    first = first_measured_day(today)
    hours, utc, end = [], rome_midnight_utc(first), rome_midnight_utc(today)
    while utc < end:
        local = bands.to_rome(utc)
        working = local.weekday() < 5 and not bands.is_holiday(local.date())
        season = ELECTRICITY_SEASON[local.month - 1]
        household = round((WEEKDAY_PROFILE if working else WEEKEND_PROFILE)[local.hour] * season * 1000)
        business = round((BUSINESS_WEEKDAY if working else BUSINESS_CLOSED)[local.hour] * season * 1000)
        hours.append((len(hours), str(utc), str(local.date()), household, business))
        utc += timedelta(hours=1)
    per_week = {"household": sum(WEEKDAY_PROFILE) * 5 + sum(WEEKEND_PROFILE) * 2,
                "business": sum(BUSINESS_WEEKDAY) * 5 + sum(BUSINESS_CLOSED) * 2}
    points = []
    for customer in customers:
        shape = "household" if customer["row"]["kind"] == "person" else "business"
        for point in customer["points"]:
            row = point["row"]
            if row["commodity"] == "electricity":
                scale = round(point["usage"]["annual"] / 52.18 / per_week[shape] * 10000)
                # The noise's seed is the point's place in the demo, not its id: ids depend on
                # what the database held before (a sequence is not reset by deleting rows).
                points.append((point_ids[row["code"]], len(points), shape == "business", scale,
                               str(row["start_date"]), str(row["end_date"] or today)))
    sql = database.execute_sql
    sql("CREATE TEMPORARY TABLE demo_hour (n INTEGER, start TIMESTAMP, day DATE, household BIGINT, business BIGINT)")
    sql("CREATE TEMPORARY TABLE demo_point (id INTEGER, seed INTEGER, business BOOLEAN, scale BIGINT, since DATE, "
        "until DATE)")
    database.cursor().executemany(f"INSERT INTO demo_hour VALUES ({', '.join([database.param] * 5)})", hours)
    database.cursor().executemany(f"INSERT INTO demo_point VALUES ({', '.join([database.param] * 6)})", points)
    sql("INSERT INTO measure (supply_point_id, start, kwh, interval_minutes, quality) "
        # Wh = shape (1/1000) x scale (1/10000) x noise (0.75 to 1.25, 1/10000), the noise from
        # (hour * a + point's seed * b) mod 10007, written without % (psycopg2 takes it for a parameter).
        "SELECT p.id, h.start, ((CASE WHEN p.business THEN h.business ELSE h.household END) * p.scale"
        "  * (7500 + 5000 * (h.n * 104729 + p.seed * 7919 - 10007 * ((h.n * 104729 + p.seed * 7919) / 10007)) / 10007)"
        "  / 100000000) / 1000.0, 60, 'actual' "
        "FROM demo_point p JOIN demo_hour h ON h.day >= p.since AND h.day <= p.until")
    sql("DROP TABLE demo_hour")
    sql("DROP TABLE demo_point")
    return [point[0] for point in points]


def insert_measures(electricity, mario_hours, customers, point_ids, today):
    """Mario's quarters (through the driver: the ORM's insert_many is slow for 40,000 rows) and
    the other points' hours, then their totals, in the demo's transaction. On PostgreSQL the
    month partitions come first."""
    database = models.db_wrapper.database
    partitions.ensure(database, partitions.months_between(first_measured_day(today), today))
    rows = [(electricity, str(start), kwh, minutes, quality)
            for start, kwh, minutes, quality in quarters(random.Random(SEED + 1), mario_hours)]
    insert = "INSERT INTO measure (supply_point_id, start, kwh, interval_minutes, quality) VALUES "
    if is_sqlite(database):
        database.cursor().executemany(insert + "(?, ?, ?, ?, ?)", rows)
    else:  # psycopg2's executemany makes a round trip per row
        psycopg2.extras.execute_values(database.cursor(), insert + "%s", rows, page_size=2000)
    measured = [electricity] + other_points_hours(database, customers, point_ids, today)
    totals.update_points(database, measured)
    # As if last night's import (02:00 in Rome) had brought them.
    SupplyPoint.update(measures_imported_at=rome_midnight_utc(today) + timedelta(hours=2)).where(
        SupplyPoint.id.in_(measured)).execute()


def household_hours(rng, first_day, end_day, measures_from_day):
    """Mario's kWh in each hour from local midnight of first_day to local midnight of
    end_day, walked in UTC so that DST days have 23 or 25 hours. Returns the totals by billed
    month {(year, month): {"F1", "F2", "F3", "max"}} and the measures (naive UTC start, kWh,
    quality) of the hours from local midnight of measures_from_day on, three days of which
    the distributor estimated."""
    measures_from = rome_midnight_utc(measures_from_day)
    holiday_days = italian_holidays(first_day.year, end_day.year)
    estimated = {measures_from_day + timedelta(days=d) for d in rng.sample(range(10, 360), 3)}
    months, measures = {}, []
    hour = timedelta(hours=1)
    utc, end = rome_midnight_utc(first_day), rome_midnight_utc(end_day)  # naive UTC, as stored
    while utc < end:
        local = utc.replace(tzinfo=timezone.utc).astimezone(ROME)
        month, day, weekday = local.month, local.date(), local.weekday()
        holiday = day in holiday_days
        profile = WEEKEND_PROFILE if weekday >= 5 or holiday else WEEKDAY_PROFILE
        expected = profile[local.hour] * ELECTRICITY_SEASON[month - 1] * (1 - 0.01 * (local.year - 2014))
        if month in (6, 7, 8) and 13 <= local.hour <= 18:
            expected += 0.35 if month != 6 else 0.15  # the air conditioner
        is_estimated = day in estimated
        if is_estimated:
            kwh = expected  # the distributor's estimate is the bare profile
        else:
            kwh = expected * rng.uniform(0.75, 1.25)
            if 7 <= local.hour <= 22 and rng.random() < 0.04:
                kwh += rng.uniform(0.4, 1.0)  # the washing machine, the oven
        kwh = round(min(kwh, 2.9), 3)
        totals = months.setdefault((local.year, month), {"F1": 0.0, "F2": 0.0, "F3": 0.0, "max": 0.0})
        totals[bands.local_band(day, local.hour)] += kwh
        totals["max"] = max(totals["max"], kwh)
        if utc >= measures_from:
            measures.append((utc, kwh, "estimated" if is_estimated else "actual"))
        utc += hour
    return {"months": months, "measures": measures}


# --- invoices -------------------------------------------------------------------------------

def invoice_row(customer_id, point_id, year, month, billing_day, total, today,
                f1=None, f2=None, f3=None, peak=None, smc=None):
    """A monthly invoice, issued on the billing day of the month after the period; the last
    month's, when that day is still to come, today."""
    issue = min(date(*next_month(year, month), billing_day), today)
    return dict(
        customer=customer_id, supply_point=point_id, number=None, year=issue.year, issue_date=issue,
        due_date=issue + timedelta(days=20), period_start=date(year, month, 1),
        period_end=last_day(year, month), total=total, status="paid",
        energy_f1_kwh=f1, energy_f2_kwh=f2, energy_f3_kwh=f3, peak_power_kw=peak, gas_smc=smc,
        pdf_path=None, pdf_sha256=None,
    )


def electricity_total(kwh, year, fee):
    return (kwh * price(ELECTRICITY_PRICE, year) + fee).quantize(CENT, ROUND_HALF_UP)


def gas_total(smc, year, fee):
    return (smc * price(GAS_PRICE, year) + fee).quantize(CENT, ROUND_HALF_UP)


def demo_electricity_invoices(rng, customer_id, point_id, months, today):
    """Mario's electricity bills: each band's kWh is the month's hours summed (whole kWh, as
    the meter counts them)."""
    rows = []
    for year, month in months_from(FIRST_BILLED, last_billed(today)):
        totals = months[year, month]
        f1, f2, f3 = (Decimal(round(totals[b])) for b in ("F1", "F2", "F3"))
        peak = Decimal(str(round(min(max(totals["max"] * rng.uniform(1.2, 1.5), 2.0), 3.2), 2)))
        total = electricity_total(f1 + f2 + f3, year, ELECTRICITY_FEE["person"])
        rows.append(((DEMO_CUSTOMER, "PR002874"), invoice_row(
            customer_id, point_id, year, month, 10, total, today, f1=f1, f2=f2, f3=f3, peak=peak)))
    return rows


def demo_gas_smc(rng, today):
    return {(year, month): Decimal(rng.randint(*DEMO_GAS_RANGES[month - 1]))
            for year, month in months_from(FIRST_BILLED, last_billed(today))}


def demo_gas_invoices(customer_id, point_id, smc_by_month, today):
    return [((DEMO_CUSTOMER, "PR002875"), invoice_row(
        customer_id, point_id, year, month, 10, gas_total(smc, year, GAS_FEE["person"]), today, smc=smc))
        for (year, month), smc in smc_by_month.items()]


def demo_invoices_without_point(customer_id, today):
    """Two invoices that belong to no supply point: a meter check five years ago and the
    adjustment of a whole year, issued on the last 12 March (so it is recent)."""
    check = date(today.year - 5, 9, 15)
    adjustment = date(today.year if today > date(today.year, 3, 12) else today.year - 1, 3, 12)
    adjusted = adjustment.year - 1
    rows = []
    for issue, start, end, total in (
        (check, None, None, Decimal("25.00")),
        (adjustment, date(adjusted, 1, 1), date(adjusted, 12, 31), Decimal("38.40")),
    ):
        rows.append(((DEMO_CUSTOMER, ""), dict(
            customer=customer_id, supply_point=None, number=None, year=issue.year, issue_date=issue,
            due_date=issue + timedelta(days=20), period_start=start, period_end=end, total=total,
            status="paid", energy_f1_kwh=None, energy_f2_kwh=None, energy_f3_kwh=None,
            peak_power_kw=None, gas_smc=None, pdf_path=None, pdf_sha256=None,
        )))
    return rows


def point_invoices(rng, customer, point, customer_ids, point_ids, today):
    """Monthly invoices of another customer's point, from its start to its end (or last month)."""
    row, usage = point["row"], point["usage"]
    customer_id, point_id = customer_ids[customer["row"]["code"]], point_ids[row["code"]]
    key = (customer["row"]["code"], row["code"])
    start, end = row["start_date"], row["end_date"]
    last = (end.year, end.month) if end else last_billed(today)
    rows = []
    for year, month in months_from((start.year, start.month), last):
        if row["commodity"] == "electricity":
            kwh = usage["annual"] * ELECTRICITY_SEASON[month - 1] / sum(ELECTRICITY_SEASON) * rng.uniform(0.9, 1.1)
            f1, f2 = round(kwh * usage["f1"]), round(kwh * usage["f2"])
            f3 = max(round(kwh) - f1 - f2, 0)
            f1, f2, f3 = Decimal(f1), Decimal(f2), Decimal(f3)
            peak = Decimal(str(round(usage["power"] * rng.uniform(0.5, 1.0), 2)))
            total = electricity_total(f1 + f2 + f3, year, usage["fee"])
            rows.append((key, invoice_row(customer_id, point_id, year, month, customer["billing_day"], total,
                                          today, f1=f1, f2=f2, f3=f3, peak=peak)))
        else:
            smc = Decimal(max(round(usage["annual"] * GAS_SEASON[month - 1] / sum(GAS_SEASON)
                                    * rng.uniform(0.85, 1.15)), 1))
            total = gas_total(smc, year, usage["fee"])
            rows.append((key, invoice_row(customer_id, point_id, year, month, customer["billing_day"], total,
                                          today, smc=smc)))
    return rows


def number_invoices(keyed_rows):
    """Number the invoices in the order they were issued: FT{year}-{seq:06d}, seq restarting
    every year across all customers (so number and year are unique together)."""
    keyed_rows.sort(key=lambda item: (item[1]["issue_date"], item[0]))
    sequence = {}
    rows = []
    for _, row in keyed_rows:
        sequence[row["year"]] = sequence.get(row["year"], 0) + 1
        row["number"] = f"FT{row['year']}-{sequence[row['year']]:06d}"
        rows.append(row)
    return rows


def set_invoice_statuses(rng, rows, mario_id, point_rows, point_ids, today):
    """All paid, except the newest invoice of each active point (unpaid) and one of Mario's
    invoices of last year, paid in part."""
    active = {point_ids[p["code"]] for p in point_rows if p["status"] == "active"}
    newest = {}
    for row in rows:
        point = row["supply_point"]
        if point in active and (point not in newest or row["issue_date"] > newest[point]["issue_date"]):
            newest[point] = row
    for row in newest.values():
        row["status"] = "unpaid"
    candidates = [row for row in rows
                  if row["customer"] == mario_id and row["year"] == today.year - 1 and row["supply_point"]]
    rng.choice(candidates)["status"] = "partial"


def invoice_description(row, point):
    """What a bill says it is for."""
    if point is not None:
        return "Fornitura di gas naturale" if point["commodity"] == "gas" else "Fornitura di energia elettrica"
    if row["period_start"]:
        return f"Conguaglio dei consumi {row['period_start'].year}"
    return "Contributo per la verifica del contatore"


def attach_demo_bills(rng, rows, mario, mario_id, point_ids, today):
    """A PDF bill for each of Mario's invoices of the last RECENT_MONTHS months, stored the
    way the importer stores invoices' PDFs (named by SHA-256); but one a year stays without,
    as the billing system sometimes hands over an invoice with no PDF (no Doc link for it)."""
    first_recent = last_billed(today)
    for _ in range(RECENT_MONTHS - 1):
        first_recent = previous_month(*first_recent)
    first_recent = date(*first_recent, 1)
    points = {point_ids[p["row"]["code"]]: p["row"] for p in mario["points"]}
    recent = [row for row in rows if row["customer"] == mario_id
              and (row["period_start"] if row["supply_point"] else row["issue_date"]) >= first_recent]
    newest = {max((r for r in recent if r["supply_point"] == point), key=lambda r: r["period_start"])["number"]
              for point in points}
    by_year = {}
    for row in recent:
        if row["supply_point"] and row["number"] not in newest:
            by_year.setdefault(row["year"], []).append(row["number"])
    without = {rng.choice(numbers) for numbers in by_year.values()}

    config = current_app.config
    utility = dict(name=config["PORTAL_NAME"], email=config["PORTAL_SUPPORT_EMAIL"],
                   phone=config["PORTAL_SUPPORT_PHONE"])
    store = files.FileStore(config["FILE_STORE"])
    with tempfile.TemporaryDirectory() as folder:
        for row in recent:
            if row["number"] in without:
                continue
            point = points.get(row["supply_point"])
            path = os.path.join(folder, f"{row['number']}.pdf")
            with open(path, "wb") as f:
                f.write(bill_pdf(utility, mario["row"], point, row, invoice_description(row, point)))
            problem, sha256 = store.check(path)
            if problem:
                raise RuntimeError(f"demo bill {row['number']}: {problem}")
            row["pdf_path"], row["pdf_sha256"] = store.store(path, sha256), sha256


# --- Mario's readings, ticket and documents ---------------------------------------------------

def demo_readings(rng, invoices, electricity, gas, owner_id, today):
    """A reading at the end of each of the last 24 billed months: the start value plus every
    invoiced kWh / Smc up to then. Mostly the distributor's, three estimated, two sent by Mario
    (gas, in January)."""
    wanted = list(months_from(FIRST_BILLED, last_billed(today)))[-24:]
    estimated = set(rng.sample(wanted, 3))
    self_read = {month for month in wanted if month[1] == 1}
    counters = {"F1": Decimal(rng.randint(8000, 12000)), "F2": Decimal(rng.randint(6000, 9000)),
                "F3": Decimal(rng.randint(9000, 14000)), "total": Decimal(rng.randint(3000, 5000))}
    by_month = {}
    for row in sorted((r for r in invoices if r["supply_point"] in (electricity, gas)),
                      key=lambda r: r["period_start"]):
        if row["supply_point"] == electricity:
            counters["F1"] += row["energy_f1_kwh"]
            counters["F2"] += row["energy_f2_kwh"]
            counters["F3"] += row["energy_f3_kwh"]
        else:
            counters["total"] += row["gas_smc"]
        by_month[row["period_start"].year, row["period_start"].month] = dict(counters)
    rows = []
    for year, month in wanted:
        day = last_day(year, month)
        values = by_month[year, month]
        for point, registers in ((electricity, ("F1", "F2", "F3")), (gas, ("total",))):
            source, submitted_by = "estimated" if (year, month) in estimated else "distributor", None
            created = datetime.combine(min(day + timedelta(days=3), today), time(5, 30))
            if point == gas and (year, month) in self_read:
                source, submitted_by = "customer", owner_id
                created = datetime.combine(day, time(19, 12))
            for register in registers:
                rows.append(dict(supply_point=point, date=day, register=register, value=values[register],
                                 source=source, status=Reading.VALIDATED, submitted_by=submitted_by,
                                 created_at=created))
    return rows


def create_demo_self_readings(electricity, gas, owner_id, today):
    """Autolettura's other states: an electricity reading Mario sent yesterday, waiting for an
    operator ("inviata"), and a gas one an operator rejected with a reason (so this month's gas
    reading may still be sent). Both continue the validated readings at their usual pace."""
    rows = []
    for point, registers, per_day, sent_days_ago, status in (
            (electricity, ("F1", "F2", "F3"), {"F1": 4, "F2": 3, "F3": 5}, 1, Reading.PENDING),
            (gas, ("total",), {"total": 2}, 6, Reading.REJECTED)):
        last = {r.register: r for r in Reading.select().where(Reading.supply_point == point, Reading.status == Reading.VALIDATED)
                .order_by(Reading.date.desc()).limit(len(registers))}
        day = min(today, max(today - timedelta(days=sent_days_ago), last[registers[0]].date + timedelta(days=1)))
        days = (day - last[registers[0]].date).days
        sent = datetime.combine(day, time(20, 41))
        for register in registers:
            rows.append(dict(
                supply_point=point, date=day, register=register, value=last[register].value + per_day[register] * days,
                source="customer", status=status, submitted_by=owner_id, created_at=sent,
                submission=f"demo-{point}-{day.isoformat()}",
                reviewed_at=sent + timedelta(hours=14) if status == Reading.REJECTED else None,
                rejection_reason="La lettura non corrisponde alla foto: inviala di nuovo controllando le cifre."
                if status == Reading.REJECTED else None))
    insert_rows(Reading, rows)


def create_demo_ticket(customer_id, point_id, owner, invoices, today):
    """Mario asks to pay his newest (unpaid) electricity bill in instalments, two days after
    it came (or today, if it came today), and the answer comes the next day (or today)."""
    unpaid = next(r for r in invoices if r["supply_point"] == point_id and r["status"] == "unpaid")
    asked = datetime.combine(min(unpaid["issue_date"] + timedelta(days=2), today), time(8, 34))
    answered = min(asked + timedelta(days=1, hours=1, minutes=31), datetime.combine(today, time(10, 5)))
    ticket = Ticket.create(
        customer=customer_id, supply_point=point_id, opened_by=owner.id,
        subject="Richiesta rateizzazione fattura", category="billing", status=Ticket.WAITING_CUSTOMER,
        created_at=asked, updated_at=answered,
    )
    TicketMessage.insert_many([
        dict(ticket=ticket.id, author=owner.id, from_staff=False, created_at=asked, body=(
            f"Buongiorno, vorrei sapere se è possibile pagare a rate la fattura n. {unpaid['number']} "
            f"di {money(unpaid['total'])}, in scadenza il {unpaid['due_date']:%d/%m/%Y}. Questo mese ho "
            "avuto alcune spese impreviste. Grazie, Mario Rossi")),
        dict(ticket=ticket.id, author=None, from_staff=True, created_at=answered, body=(
            "Gentile cliente, la rateizzazione è possibile per le fatture sopra i 50 euro. Può "
            "scaricare il modulo \"Richiesta di rateizzazione\" dalla sezione Download, compilarlo "
            "e rispedircelo via email: la fattura resterà sospesa fino alla nostra risposta. "
            "Cordiali saluti, il Servizio Clienti")),
    ]).execute()


def create_demo_closed_ticket(customer_id, point_id, owner, today):
    """A gas meter that stopped, fixed by the distributor and closed 40 days ago (past the
    30 days to reopen it), with an operator's internal note the customer never sees; and the
    canned replies the operators start from."""
    asked = datetime.combine(today - timedelta(days=47), time(18, 12))
    noted = asked + timedelta(hours=15, minutes=3)
    answered = asked + timedelta(days=2, hours=-2, minutes=40)
    closed = datetime.combine(today - timedelta(days=40), time(9, 30))
    ticket = Ticket.create(
        customer=customer_id, supply_point=point_id, opened_by=owner.id, subject="Contatore del gas fermo",
        category="fault", status=Ticket.CLOSED, created_at=asked, updated_at=closed, closed_at=closed,
    )
    TicketMessage.insert_many([
        dict(ticket=ticket.id, author=owner.id, from_staff=False, created_at=asked, body=(
            "Buonasera, da tre giorni il contatore del gas segna sempre la stessa lettura anche se la "
            "caldaia funziona. Può essere guasto?")),
        dict(ticket=ticket.id, author=None, from_staff=True, internal=True, created_at=noted, body=(
            "Segnalato al distributore (pratica 2026/4471); intervento previsto entro 48 ore.")),
        dict(ticket=ticket.id, author=None, from_staff=True, created_at=answered, body=(
            "Gentile cliente, il distributore ha sostituito il contatore: i consumi dei giorni in cui "
            "era fermo saranno stimati nella prossima bolletta. Cordiali saluti, il Servizio Clienti")),
    ]).execute()
    models.CannedReply.insert_many([
        dict(title="Rateizzazione", updated_at=closed, body=(
            "Gentile cliente, la rateizzazione è possibile per le fatture sopra i 50 euro: scarichi il "
            "modulo \"Richiesta di rateizzazione\" dalla sezione Download e ce lo rispedisca compilato.")),
        dict(title="Lettura stimata", updated_at=closed, body=(
            "Gentile cliente, quando il distributore non riesce a leggere il contatore i consumi sono "
            "stimati; con un'autolettura la prossima bolletta sarà calcolata sui consumi reali.")),
    ]).execute()


def create_demo_contact_change(customer_id, owner, today):
    """Mario gave a new mobile number under Dati Anagrafici three days ago. The billing system
    has not sent it back yet: `flask export contacts` carries it and the nightly import leaves
    it alone (contacts.py)."""
    changed = datetime.combine(today - timedelta(days=3), time(18, 12))
    old_mobile = Customer.get_by_id(customer_id).mobile
    new_mobile = "+393471234567"
    Customer.update(mobile=new_mobile).where(Customer.id == customer_id).execute()
    models.ContactChange.create(customer=customer_id, field="mobile", old_value=old_mobile, new_value=new_mobile,
                                changed_at=changed, changed_by=owner.id)


# The utility's documents that do not age: (section, slug, title, published on, lines).
LASTING_DOCUMENTS = [
    ("modulistica", "modulo-di-voltura", "Modulo di voltura", date(2024, 3, 1), [
        "Per intestare a sé una fornitura già attiva (voltura) compilare questo modulo e",
        "inviarlo allo Sportello con un documento d'identità e l'ultima lettura del contatore.",
        "", "Nuovo intestatario: ____________________________  Codice fiscale: ________________",
        "Codice POD / PDR: ____________________  Lettura alla data: ____________",
        "", "Data ____________            Firma ______________________________",
    ]),
    ("modulistica", "richiesta-di-rateizzazione", "Richiesta di rateizzazione", date(2025, 2, 10), [
        "Il cliente chiede di pagare a rate la fattura indicata (importo minimo 50 euro).",
        "", "Codice cliente: ________  Numero fattura: ______________  Numero rate (2-6): ____",
        "", "Data ____________            Firma ______________________________",
    ]),
    ("normative", "carta-dei-servizi", "Carta dei servizi e standard di qualità", date(2025, 6, 30), [
        "Risposta ai reclami scritti: entro 30 giorni solari.",
        "Rettifica di fatturazione: entro 60 giorni solari.",
        "Indennizzo automatico in caso di mancato rispetto degli standard: 25 euro.",
        "Il testo completo è disponibile presso lo Sportello e sul sito dell'Autorità (ARERA).",
    ]),
    ("informazioni", "come-leggere-la-bolletta", "Come leggere la bolletta", date(2025, 5, 12), [
        "In alto trovi il codice cliente (6 cifre) e il numero della fattura.",
        "Il POD (luce) o il PDR (gas) identificano il punto di fornitura.",
        "I consumi della luce sono divisi per fasce: F1, F2 e F3.",
    ]),
]


def italian_day(day, weekday=False):
    """'1° gennaio 2027', or 'venerdì 1° gennaio 2027' with the weekday, as a notice writes it."""
    text = f"{day.day}{'°' if day.day == 1 else ''} {format_date(day, 'MMMM yyyy', locale='it')}"
    return f"{format_date(day, 'EEEE', locale='it')} {text}" if weekday else text


def generic_documents(today):
    """The utility's documents as of `today`: the lasting ones, the announcements of the last
    weeks, and last year's price list."""
    closed = [day for day in sorted(italian_holidays(today.year, today.year + 1))
              if day > today and day.weekday() != 6][:2]
    change = date(*next_month(*next_month(today.year, today.month)), 1)
    listed = today.year - 1
    return LASTING_DOCUMENTS + [
        ("comunicati", "sportello-chiuso-festivita", "Sportello chiuso per festività",
         today - timedelta(days=10), [
             f"Lo Sportello resterà chiuso {' e '.join(italian_day(day, weekday=True) for day in closed)}.",
             "Il portale clienti resta sempre disponibile; per i guasti chiamare il numero verde",
             "del distributore indicato in bolletta.",
         ]),
        ("comunicati", "nuovo-sportello-online", "Nuovo Sportello online per i clienti",
         today - timedelta(days=66), [
             "Da oggi fatture, letture, consumi e richieste sono disponibili nello Sportello online.",
             "Per registrarsi servono il codice cliente, il codice fiscale e una fattura recente.",
         ]),
        ("comunicati", f"nuove-tariffe-{change:%Y-%m}", f"Nuove tariffe dal {italian_day(change)}",
         today - timedelta(days=4), [
             f"Dal {italian_day(change)} i prezzi delle offerte a prezzo fisso saranno:",
             "Casa Luce Fissa: 0,252 €/kWh; Casa Gas Fissa: 0,99 €/Smc.",
             "Le quote fisse mensili restano invariate.",
         ]),
        ("storico", f"listino-prezzi-{listed}", f"Listino prezzi {listed}", date(listed, 1, 2), [
            f"Casa Luce Fissa: {str(price(ELECTRICITY_PRICE, listed)).replace('.', ',')} €/kWh, quota fissa "
            f"{money(ELECTRICITY_FEE['person'])} al mese.",
            f"Casa Gas Fissa: {str(price(GAS_PRICE, listed)).replace('.', ',')} €/Smc, quota fissa "
            f"{money(GAS_FEE['person'])} al mese.",
        ]),
    ]


def last_quarters(today, count=3):
    """The last `count` quarters whose report is out by `today` (20 days after the quarter's
    end), oldest first: [(year, quarter, first day, last day, published on)]."""
    quarters = []
    year, quarter = today.year, (today.month - 1) // 3 + 1
    while len(quarters) < count:
        year, quarter = (year - 1, 4) if quarter == 1 else (year, quarter - 1)
        end = last_day(year, quarter * 3)
        published = end + timedelta(days=20)
        if published <= today:
            quarters.append((year, quarter, date(year, quarter * 3 - 2, 1), end, published))
    return quarters[::-1]


def create_documents(mario_id, invoices, electricity, gas, today):
    """The PDFs in instance/files and their Document rows."""
    store = current_app.config["FILE_STORE"]
    rows = []
    for section, slug, title, published, lines in generic_documents(today):
        rows.append(document_row(store, f"{section}/{slug}.pdf", title, lines, section, None, published))
    contract_lines = [
        f"Cliente: ROSSI MARIO, codice cliente {DEMO_CUSTOMER}, VIA PROVA 5 - 48124 RAVENNA (RA).",
        "Decorrenza: 01/01/2014. Durata: indeterminata, con recesso libero senza penali.",
    ]
    for slug, title, details in (
        ("contratto-fornitura-luce", "Contratto di fornitura luce", DEMO_ELECTRICITY_CONTRACT | DEMO_ELECTRICITY_TECH),
        ("contratto-fornitura-gas", "Contratto di fornitura gas", DEMO_GAS_CONTRACT | DEMO_GAS_TECH),
    ):
        lines = contract_lines + [f"{label}: {value}" for label, value in details.items()]
        rows.append(document_row(store, f"clienti/{DEMO_CUSTOMER}/{slug}.pdf", title, lines, "personal",
                                 mario_id, date(2013, 12, 18)))
    for year, quarter, start, end, published in last_quarters(today):
        billed = [r for r in invoices if r["supply_point"] in (electricity, gas) and start <= r["period_start"] <= end]
        kwh = {b: sum(r[f"energy_{b.lower()}_kwh"] for r in billed if r["supply_point"] == electricity)
               for b in ("F1", "F2", "F3")}
        smc = sum(r["gas_smc"] for r in billed if r["supply_point"] == gas)
        lines = [
            f"Periodo: dal {start:%d/%m/%Y} al {end:%d/%m/%Y}.",
            f"Luce (POD IT001E00287400): F1 {kwh['F1']} kWh, F2 {kwh['F2']} kWh, F3 {kwh['F3']} kWh, "
            f"totale {sum(kwh.values())} kWh.",
            f"Gas (PDR 01234567891011): {smc} Smc.",
            f"Totale fatturato nel periodo: {money(sum(r['total'] for r in billed))}.",
        ]
        rows.append(document_row(store, f"clienti/{DEMO_CUSTOMER}/report-consumi-{year}-t{quarter}.pdf",
                                 f"Report consumi {quarter}° trimestre {year}", lines, "report", mario_id,
                                 published, start, end))
    insert_rows(Document, rows)


def document_row(store, relative, title, lines, section, customer_id, published, start=None, end=None):
    data = minimal_pdf(title, lines, published)
    path = os.path.join(store, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return dict(
        file=relative, title=title, section=section, customer=customer_id, published_on=published,
        period_start=start, period_end=end, content_type="application/pdf", size=len(data),
        sha256=hashlib.sha256(data).hexdigest(), unpublished_at=None,
    )
