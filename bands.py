"""ARERA time bands (DESIGN §5), the one place that decides them.

F1: Monday to Friday 08:00-19:00. F2: Monday to Friday 07:00-08:00 and 19:00-23:00, Saturday
07:00-23:00. F3: Monday to Saturday 23:00-07:00, all Sunday and the national holidays (the
`holidays` package, country IT). The hours are Rome's: instants are stored in naive UTC and
converted here, so a DST day's 23 or 25 hours each get the band of their local hour.
"""
from datetime import UTC, timedelta
from functools import lru_cache

import holidays

from i18n import ROME

BANDS = ("F1", "F2", "F3")


@lru_cache(maxsize=None)
def national_holidays(year):
    """The Italian national holidays of one year (a frozenset of dates), computed once per year."""
    return frozenset(holidays.Italy(years=year))


def is_holiday(day):
    return day in national_holidays(day.year)


def local_band(day, hour):
    """The band of the local hour `hour` (0-23) of the Rome day `day`."""
    weekday = day.weekday()
    if weekday == 6 or hour < 7 or hour == 23 or is_holiday(day):
        return "F3"
    if weekday == 5 or hour == 7 or hour >= 19:
        return "F2"
    return "F1"


def to_rome(start_utc):
    """A naive UTC instant as an aware Europe/Rome datetime."""
    return start_utc.replace(tzinfo=UTC).astimezone(ROME)


def band(start_utc):
    """The band of the interval starting at the naive UTC instant `start_utc`."""
    local = to_rome(start_utc)
    return local_band(local.date(), local.hour)


def utc_hours(first_utc, end_utc):
    """Every whole UTC hour from the one holding `first_utc` up to `end_utc` (excluded), naive."""
    hour = first_utc.replace(minute=0, second=0, microsecond=0)
    while hour < end_utc:
        yield hour
        hour += timedelta(hours=1)
