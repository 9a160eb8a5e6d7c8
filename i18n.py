"""Languages and the formats of numbers, money and dates: one place for each.

Italian is the default; English is the second language. The choice is kept in the session
(and on the user, once logged in). Money reads "€ 1.234,56" in Italian, as the bills print it.
"""
from datetime import datetime

from flask import has_request_context, session
from flask_babel import format_date, format_datetime, format_decimal, get_locale
from flask_login import current_user

LANGUAGES = {"it": "Italiano", "en": "English"}
DEFAULT_LANGUAGE = "it"
DATE_FORMATS = {"it": "dd/MM/yyyy", "en": "d MMM yyyy"}
DATETIME_FORMATS = {"it": "dd/MM/yyyy HH:mm", "en": "d MMM yyyy HH:mm"}
MONEY_FORMAT = "¤\u00a0#,##0.00;-¤\u00a0#,##0.00"


def select_locale():
    if not has_request_context():  # the CLI (import reports): the default language
        return DEFAULT_LANGUAGE
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return chosen
    if current_user and current_user.is_authenticated and current_user.language in LANGUAGES:
        return current_user.language
    return DEFAULT_LANGUAGE


def language():
    return str(get_locale() or DEFAULT_LANGUAGE)


def local_date(value):
    """A date (or a UTC datetime, shown as its Rome date) as the locale writes it."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return format_datetime(value, DATE_FORMATS[language()])
    return format_date(value, DATE_FORMATS[language()])


def local_datetime(value):
    """A naive UTC datetime shown in Europe/Rome time."""
    if value is None:
        return ""
    return format_datetime(value, DATETIME_FORMATS[language()])


def local_time(value):
    """The Rome time of day of a naive UTC datetime: 12:30."""
    if value is None:
        return ""
    return format_datetime(value, "HH:mm")


def money(value):
    if value is None:
        return ""
    from babel.numbers import format_currency

    return format_currency(value, "EUR", format=MONEY_FORMAT, locale=get_locale(), currency_digits=False)


def number(value, decimals=0):
    if value is None:
        return ""
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    return format_decimal(value, format=pattern)


def init_app(app):
    app.jinja_env.filters.update(
        date=local_date, datetime=local_datetime, time=local_time, money=money, number=number
    )
    app.jinja_env.globals.update(LANGUAGES=LANGUAGES, current_language=language)


