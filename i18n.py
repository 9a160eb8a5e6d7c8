"""Languages and the formats of numbers, money and dates: one place for each.

Italian is the default; English is the second language. The choice is kept in the session
(and on the user, once logged in). Money reads "€ 1.234,56" in Italian, as the bills print it.

The utility's clock is Rome's: the database stores naive UTC, pages show Rome time, and a day
(a filter's date, an export's "since", the demo's months) starts at Rome's midnight.
"""
from datetime import UTC, datetime, time
from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel import Locale, support
from babel.dates import get_month_names
from babel.numbers import parse_pattern
from flask import has_request_context, session
from flask_babel import format_datetime, get_locale, get_translations
from flask_login import current_user
from jinja2 import pass_context
from wtforms.i18n import messages_path

LANGUAGES = {"it": "Italiano", "en": "English"}
DEFAULT_LANGUAGE = "it"
DATE_FORMATS = {"it": "dd/MM/yyyy", "en": "d MMM yyyy"}
DATETIME_FORMATS = {"it": "dd/MM/yyyy HH:mm", "en": "d MMM yyyy HH:mm"}
ROME = ZoneInfo("Europe/Rome")


def rome_today():
    """The day it is in Rome (the server's own clock may be UTC: after 22:00 or 23:00 UTC it is
    already tomorrow in Rome)."""
    return datetime.now(ROME).date()


def rome_midnight_utc(day):
    """The instant a Rome day starts, as the naive UTC datetime the database stores: 23:00 UTC of
    the day before in winter, 22:00 in summer."""
    return datetime.combine(day, time(), tzinfo=ROME).astimezone(UTC).replace(tzinfo=None)


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
    locale = get_locale()  # our locales have no territory: the language is the whole code
    return locale.language if locale else DEFAULT_LANGUAGE


class FormMessages:
    """wtforms' own messages ("Not a valid date value.") in the request's language for every form
    (forms.Form): Flask-WTF reads their catalogue from disk at each request, about 0.2 ms."""

    def gettext(self, string):
        return wtforms_catalogue(language()).ugettext(string)

    def ngettext(self, singular, plural, n):
        return wtforms_catalogue(language()).ungettext(singular, plural, n)


FORM_MESSAGES = FormMessages()


@lru_cache(maxsize=None)
def wtforms_catalogue(code):
    return support.Translations.load(messages_path(), [code], domain="wtforms")


def local_date(value, code=None):
    """A date (or a UTC datetime, shown as its Rome date) as the locale writes it."""
    if value is None:
        return ""
    code = code or language()
    if isinstance(value, datetime):
        return format_datetime(value, DATE_FORMATS[code])
    # A list shows hundreds of dates: the same result as format_date, without its cost.
    if code == "it":
        return "%02d/%02d/%04d" % (value.day, value.month, value.year)
    return "%d %s %04d" % (value.day, month_abbreviations(code)[value.month], value.year)


@lru_cache(maxsize=None)
def month_abbreviations(code):
    return get_month_names("abbreviated", locale=code)


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


def money(value, code=None):
    """'€ 1.234,56' (it), '€ 1,234.56' (en): Babel's "¤ #,##0.00" with the locale's own symbols
    and rounding (half to even), but no "-€ 0,00". Written out because an invoice list shows
    hundreds of amounts and Babel's formatter costs 50-75 µs each (a test compares the two)."""
    if value is None:
        return ""
    group, point = number_symbols(code or language())
    cents = Decimal(value).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    whole, fraction = f"{abs(cents):.2f}".split(".")
    grouped = f"{int(whole):,}".replace(",", group)
    return f"{'-' if cents < 0 else ''}€\u00a0{grouped}{point}{fraction}"


@lru_cache(maxsize=None)
def number_symbols(code):
    symbols = Locale.parse(code).number_symbols["latn"]
    return symbols["group"], symbols["decimal"]


def number(value, decimals=0, code=None):
    """'1.234,5' (it), '1,234.5' (en) with `decimals` digits after the point: Babel's pattern
    and locale, each parsed once (Flask-Babel's format_decimal parses both at every value)."""
    if value is None:
        return ""
    return decimal_pattern(decimals).apply(value, babel_locale(code or language()))


@lru_cache(maxsize=None)
def decimal_pattern(decimals):
    return parse_pattern("#,##0" + ("." + "0" * decimals if decimals else ""))


@lru_cache(maxsize=None)
def babel_locale(code):
    return Locale.parse(code)


@pass_context
def number_in_page_language(context, value, decimals=0):
    return number(value, decimals, context.get("page_language"))


def in_page_language(formatter):
    """A formatter as a template filter that takes the language from the template's context,
    looked up once per render: asking Flask-Babel at every value cost a third of a 50-row
    invoice list. (A mail rendered under force_locale gets its own language the same way.)"""
    @pass_context
    def template_filter(context, value):
        return formatter(value, context.get("page_language"))
    return template_filter


# The templates' _() and ngettext(): Flask-Babel looks the catalogue up at every text (a page
# has dozens); these take the one the context processor below looked up for the page.
@pass_context
def page_gettext(context, string):
    return page_translations(context).ugettext(string)


@pass_context
def page_ngettext(context, singular, plural, n):
    return page_translations(context).ungettext(singular, plural, n)


def page_translations(context):
    return context.get("page_translations") or get_translations()  # a macro imported without context


def init_app(app):
    app.jinja_env.filters.update(
        date=in_page_language(local_date), datetime=local_datetime, time=local_time,
        money=in_page_language(money), number=number_in_page_language
    )
    app.jinja_env.globals.update(LANGUAGES=LANGUAGES, current_language=language)
    app.jinja_env.install_gettext_callables(page_gettext, page_ngettext, newstyle=True)
    app.context_processor(lambda: {"page_language": language(), "page_translations": get_translations()})


