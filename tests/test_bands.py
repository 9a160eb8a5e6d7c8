"""ARERA bands against hand-computed cases: each instant is written in naive UTC, as stored, with
the Rome time it stands for (winter: UTC+1, summer: UTC+2)."""
from datetime import datetime

import pytest

import bands

CASES = [
    # (UTC start, Rome local time it is, band)
    # Winter (CET, UTC+1): Monday 12 January 2026, Saturday 17, Sunday 18.
    (datetime(2026, 1, 12, 6, 30), "Mon 12/01 07:30", "F2"),
    (datetime(2026, 1, 12, 5, 45), "Mon 12/01 06:45", "F3"),
    (datetime(2026, 1, 12, 7, 0), "Mon 12/01 08:00", "F1"),
    (datetime(2026, 1, 12, 17, 45), "Mon 12/01 18:45", "F1"),
    (datetime(2026, 1, 12, 18, 0), "Mon 12/01 19:00", "F2"),
    (datetime(2026, 1, 12, 21, 45), "Mon 12/01 22:45", "F2"),
    (datetime(2026, 1, 12, 22, 0), "Mon 12/01 23:00", "F3"),
    (datetime(2026, 1, 17, 9, 0), "Sat 17/01 10:00", "F2"),
    (datetime(2026, 1, 17, 5, 0), "Sat 17/01 06:00", "F3"),
    (datetime(2026, 1, 17, 22, 0), "Sat 17/01 23:00", "F3"),
    (datetime(2026, 1, 18, 9, 0), "Sun 18/01 10:00", "F3"),
    (datetime(2026, 1, 6, 10, 0), "Tue 06/01 11:00, Epiphany", "F3"),
    (datetime(2026, 1, 11, 23, 0), "Mon 12/01 00:00 (Sunday 23:00 UTC)", "F3"),
    # Summer (CEST, UTC+2): Monday 13 July 2026, Saturday 18, Sunday 19.
    (datetime(2026, 7, 13, 5, 30), "Mon 13/07 07:30", "F2"),
    (datetime(2026, 7, 13, 6, 0), "Mon 13/07 08:00", "F1"),
    (datetime(2026, 7, 13, 17, 0), "Mon 13/07 19:00", "F2"),
    (datetime(2026, 7, 13, 21, 0), "Mon 13/07 23:00", "F3"),
    (datetime(2026, 7, 18, 8, 0), "Sat 18/07 10:00", "F2"),
    (datetime(2026, 7, 19, 8, 0), "Sun 19/07 10:00", "F3"),
    (datetime(2026, 6, 2, 8, 0), "Tue 02/06 10:00, Festa della Repubblica", "F3"),
    (datetime(2025, 6, 2, 12, 0), "Mon 02/06/2025 14:00, Festa della Repubblica", "F3"),
    (datetime(2025, 8, 15, 8, 0), "Fri 15/08/2025 10:00, Ferragosto", "F3"),
    (datetime(2026, 4, 6, 8, 0), "Mon 06/04 10:00, Easter Monday", "F3"),
    (datetime(2026, 4, 7, 8, 0), "Tue 07/04 10:00, the day after", "F1"),
    (datetime(2027, 3, 29, 8, 0), "Mon 29/03/2027 10:00, Easter Monday", "F3"),
]


@pytest.mark.parametrize("start, local, expected", CASES, ids=[case[1] for case in CASES])
def test_band_of_a_local_time(start, local, expected):
    assert bands.band(start) == expected


def test_the_same_utc_hour_is_f1_in_summer_and_f2_in_winter():
    # 06:00 UTC is 08:00 in Rome in summer (F1) but 07:00 in winter (F2): the band is the local hour's.
    assert bands.band(datetime(2026, 7, 13, 6, 0)) == "F1"
    assert bands.band(datetime(2026, 1, 12, 6, 0)) == "F2"


def test_dst_days_band_each_local_hour():
    # Friday 30 October 2026 is an ordinary weekday; Sunday 25 October (25 hours) is all F3.
    autumn = [datetime(2026, 10, 24, 22, 0)]
    autumn += [autumn[0].replace(day=25, hour=h) for h in range(23)]
    autumn.append(datetime(2026, 10, 25, 23, 0))
    assert len(autumn) == 25 and {bands.band(h) for h in autumn} == {"F3"}
    # The Monday after the spring change (30 March 2026, now UTC+2): 08:00 local is 06:00 UTC.
    assert bands.band(datetime(2026, 3, 30, 5, 0)) == "F2"
    assert bands.band(datetime(2026, 3, 30, 6, 0)) == "F1"
    # The Friday before it (27 March, still UTC+1): 08:00 local is 07:00 UTC.
    assert bands.band(datetime(2026, 3, 27, 6, 0)) == "F2"
    assert bands.band(datetime(2026, 3, 27, 7, 0)) == "F1"


def test_holidays_come_from_the_holidays_package():
    # 4 October became a national holiday in 2026 (San Francesco): the package knows, a hand list would not.
    assert bands.band(datetime(2026, 10, 5, 8, 0)) == "F1"  # Monday 5 October, 10:00
    assert bands.band(datetime(2027, 10, 4, 8, 0)) == "F3"  # Monday 4 October 2027, 10:00
    assert bands.band(datetime(2025, 10, 6, 8, 0)) == "F1"
