"""Unit tests of the domain's codes and of the password policy, without a request."""
import os
import subprocess
import sys
from pathlib import Path

import argon2
import pytest
from flask_babel import force_locale

import accounts
import identifiers
from models import User
from tests.factories import PASSWORD, valid_tax_code, valid_vat_number

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def context(app):
    with app.test_request_context(), force_locale("it"):
        yield


@pytest.mark.parametrize("text, expected", [("005007", "005007"), (" 005007 ", "005007")])
def test_customer_codes(context, text, expected):
    assert identifiers.clean_customer_code(text) == expected


@pytest.mark.parametrize("text", ["5007", "0050070", "00500A", ""])
def test_bad_customer_codes(context, text):
    with pytest.raises(identifiers.InvalidCode, match="6 cifre"):
        identifiers.clean_customer_code(text)


def test_tax_codes(context):
    code = valid_tax_code("RSSMRA70A01H199")
    assert identifiers.clean_tax_id(code.lower()) == code
    assert identifiers.clean_tax_id(" ".join([code[:6], code[6:]])) == code
    with pytest.raises(identifiers.InvalidCode, match="non è valido"):
        identifiers.clean_tax_id(code[:-1] + ("A" if code[-1] != "A" else "B"))
    with pytest.raises(identifiers.InvalidCode, match="16 caratteri"):
        identifiers.clean_tax_code("RSSMRA70")


def test_vat_numbers(context):
    vat = valid_vat_number()
    assert identifiers.clean_tax_id(vat) == vat
    assert identifiers.clean_tax_id("IT" + vat) == vat
    assert identifiers.clean_vat_number("IT " + vat) == vat
    wrong = vat[:-1] + str((int(vat[-1]) + 1) % 10)
    with pytest.raises(identifiers.InvalidCode, match="non è valida"):
        identifiers.clean_tax_id(wrong)


@pytest.mark.parametrize("text, expected", [
    ("IT001E12345678", "IT001E12345678"),
    ("it001e123456789", "IT001E123456789"),
    ("01234567891011", "01234567891011"),
    ("0123 4567 8910 11", "01234567891011"),
])
def test_pod_and_pdr(context, text, expected):
    assert identifiers.clean_pod_pdr(text) == expected


@pytest.mark.parametrize("text", ["IT001X12345678", "IT01E12345678", "IT001E1234567", "1234567890123"])
def test_bad_pod_and_pdr(context, text):
    with pytest.raises(identifiers.InvalidCode):
        identifiers.clean_pod_pdr(text)


def test_a_gas_point_wants_a_pdr(context):
    with pytest.raises(identifiers.InvalidCode, match="14 cifre"):
        identifiers.clean_pod_pdr("IT001E12345678", commodity="gas")


def test_masking_keeps_codes_out_of_logs():
    assert identifiers.mask("RSSMRA70A01H501S") == "RSS**********01S"
    assert "70A01H" not in identifiers.mask("RSSMRA70A01H501S")
    assert identifiers.mask("12") == "***"


@pytest.mark.parametrize("password, problem", [
    ("Corta1!", "almeno 8 caratteri"),
    ("tuttominuscol1!", "una maiuscola"),  # 15 characters: the composition rule applies
    ("TUTTOMAIUSCOL1!", "una minuscola"),
    ("SenzaNumeri!!", "un numero"),
    ("SenzaSpeciali12", "un carattere speciale"),
    ("Password123!", "troppo comune"),
    ("Qwerty!2024", "troppo comune"),
    ("Mario.Rossi-2026", "codice cliente, lo username o l'email"),
    ("passwordpasswordpassword", "troppo prevedibile"),  # a passphrase must not be guessable
    ("Aa1!" + "z" * 60, "troppo prevedibile"),
    ("il gatto di mario rossi dorme", "codice cliente, lo username o l'email"),
])
def test_password_policy_refuses(context, password, problem):
    problems = [str(p) for p in accounts.password_problems(password, ("005007", "mario.rossi", "mario"))]
    assert problems and problem in problems[0]


PASSPHRASE = "la bicicletta azzurra della nonna sta in cantina dal millenovecentoottanta"[:64]


@pytest.mark.parametrize("password", ["Nuova-Chiave-2027", "Città-del-Sole-9", PASSPHRASE,
                                      "gatto tetto merlo quattro"])  # 16+: lower case and spaces will do
def test_password_policy_accepts(context, password):
    assert accounts.password_problems(password, ("005007",)) == []


def test_passwords_are_hashed_with_argon2id():
    digest = accounts.hash_password("Nuova-Chiave-2027")
    assert digest.startswith("$argon2id$")
    assert "Nuova-Chiave-2027" not in digest


def test_the_app_outside_the_tests_hashes_at_production_cost(app, migrated_database):
    """The suite hashes cheaply (conftest.py); the app as an administrator runs it does not, and
    what it stores is a hash a login verifies."""
    env = dict(os.environ, PORTAL_ENV="development", SECRET_KEY="hash-test", DATABASE_URL=migrated_database,
               MAIL_DELIVERY_THREAD="false")
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "create-operator", "anna@utility.it", "--password", PASSWORD],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    operator = User.get(User.email == "anna@utility.it")
    assert argon2.extract_parameters(operator.password_hash) == argon2.profiles.RFC_9106_LOW_MEMORY
    assert not accounts.check_password(operator, PASSWORD + "!")
    assert accounts.check_password(operator, PASSWORD)
