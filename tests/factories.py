"""Test data as plain functions: make_customer(**overrides) and friends."""
import itertools
from datetime import date
from decimal import Decimal

from stdnum import luhn
from stdnum.it import codicefiscale

import accounts
import importer
from i18n import rome_today
from models import Customer, Invoice, SupplyPoint, User, utcnow

PASSWORD = "Sicura-Prova-2026"
_sequence = itertools.count(1)


def valid_tax_code(stem="RSSMRA70A01H199"):
    """A codice fiscale with the right check character."""
    return stem + codicefiscale.calc_check_digit(stem)


def valid_vat_number(stem="0123456039"):  # 039: the Ravenna office
    return stem + luhn.calc_check_digit(stem)  # the partita IVA check digit is Luhn


def make_customer(**overrides):
    n = next(_sequence)
    values = dict(
        code=f"{100000 + n:06d}",
        name=f"ROSSI MARIO {n}",
        kind="person",
        tax_code=valid_tax_code(),
        address="VIA PROVA 5",
        postcode="48124",
        city="RAVENNA",
        province="RA",
        email=f"cliente{n}@example.it",
    )
    values.update(overrides)
    return Customer.create(**values)


def make_supply_point(customer, **overrides):
    n = next(_sequence)
    commodity = overrides.get("commodity", "electricity")
    values = dict(
        code=f"PR{500000 + n:06d}",  # far from the codes tests write themselves (PR002874…)
        customer=customer,
        commodity=commodity,
        pod_pdr=f"{n:014d}" if commodity == "gas" else f"IT001E{n:08d}",
        address="VIA PROVA 5",
        postcode="48124",
        city="RAVENNA",
        province="RA",
        start_date=date(2014, 1, 1),
    )
    values.update(overrides)
    return SupplyPoint.create(**values)


def make_user(customer, password=PASSWORD, confirmed=True, **overrides):
    n = next(_sequence)
    values = dict(
        customer=customer,
        role=User.OWNER,
        email=f"utente{n}@example.it",
        password_hash=accounts.hash_password(password),
        confirmed_at=utcnow() if confirmed else None,
    )
    values.update(overrides)
    return User.create(**values)


def make_invoice(customer, supply_point=None, **overrides):
    n = next(_sequence)
    issue = overrides.pop("issue_date", rome_today())
    values = dict(
        customer=customer,
        supply_point=supply_point,
        number=f"FT{issue.year}-{n:06d}",
        year=issue.year,
        issue_date=issue,
        total=Decimal("123.45"),
        status="unpaid",
    )
    values.update(overrides)
    return Invoice.create(**values)


def store_pdf(app, content):
    """A PDF's `content` in the app's file store, as the import leaves it: (its path there, SHA-256)."""
    source = app.config["FILE_STORE"] + "-incoming.pdf"
    with open(source, "wb") as f:
        f.write(content)
    store = importer.FileStore(app.config["FILE_STORE"])
    problem, sha256 = store.check(source)
    assert problem is None, problem
    return store.store(source, sha256), sha256
