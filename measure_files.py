"""The files of a point's measures (Misure elettriche's downloads), each made as a stream of text
chunks from rows read a batch at a time, so memory stays flat whatever the interval:

- CSV: ISO 8601 instants with the Europe/Rome offset (2025-10-26T02:00:00+02:00), kWh as stored,
  quality and band: for programs, unambiguous on every row;
- CSV for Italian Excel: `;`, decimal comma, a BOM, the Rome date and time in cells Excel reads
  as a date and a time, and a column saying "legale" or "solare": on the night summer time ends
  the two 02:00 rows are told apart by it (a suffix such as "02:00 (2)" would make those cells
  text, and an offset "+02:00" means nothing to most readers and starts like a formula);
- Green Button "Download My Data": ESPI Atom/XML, one IntervalBlock per Rome day, each reading
  with its start (epoch seconds), duration, value in Wh and ReadingQuality.

Each takes batches of rows (start, kwh, interval_minutes, quality) as the database driver
gives them (Measure.batches_between): `start` is naive UTC, text on SQLite and a datetime on
PostgreSQL.
What a row's time says is worked out once per UTC hour (`Hours`): a year of quarter-hours is
35,040 rows but 8,760 hours, and converting each row's instant cost more than writing it.
"""
import io
import itertools
import uuid
from datetime import datetime, timedelta
from typing import NamedTuple
from xml.sax.saxutils import escape, quoteattr

import bands
import spreadsheets
from i18n import ROME

QUALITY_IN_ITALIAN = {"actual": "rilevata", "estimated": "stimata"}
# ESPI's QualityOfReading: 0 valid; 8 a value computed from the history of the same measure,
# which is how Italian distributors estimate a missing interval.
ESPI_QUALITY = {"actual": 0, "estimated": 8}


class Hour(NamedTuple):
    """One UTC hour as the files write it (all of an hour's minutes share it: Rome's offset
    changes only on the hour)."""

    text: str  # the Rome date and hour, ISO: "2025-10-26T02"
    offset: str  # "+02:00"
    band: str  # F1, F2, F3
    next_key: str  # the next UTC hour's key
    local: datetime  # the hour's start in Rome


def make_hour(key):
    """The Hour of a UTC hour key ("2025-10-26 01"). Every text is sliced from isoformat (C), as
    strftime and formatted numbers cost most of a file's time."""
    start = datetime.fromisoformat(key + ":00+00:00")
    local = start.astimezone(ROME)
    stamp = local.isoformat()  # 2025-10-26T02:00:00+02:00
    return Hour(stamp[:13], stamp[19:], bands.local_band(local.date(), local.hour),
                str(start + ONE_HOUR)[:13], local)


ONE_HOUR = timedelta(hours=1)


class Hours(dict):
    """The Hours of one file's rows, by key, made when first needed. The rows come in time
    order, so only the last few are kept: memory stays flat."""

    def __missing__(self, key):
        if len(self) > 48:
            self.clear()
        hour = self[key] = make_hour(key)
        return hour


def start_text(start):
    """A row's start as text, "2025-10-26 01:15:00": as SQLite gives it, or PostgreSQL's datetime
    written so. Its first 13 characters are the UTC hour's key, 14-16 the minute."""
    return start if start.__class__ is str else start.isoformat(" ")


class Encoded(dict):
    """Text cells (a tuple) -> their text as spreadsheets.writer writes them (the CSV injection
    rule, the quoting), written the first time they come."""

    def __init__(self, delimiter):
        super().__init__()
        self.delimiter = delimiter

    def __missing__(self, cells):
        out = io.StringIO()
        spreadsheets.writer(out, delimiter=self.delimiter, lineterminator="\n").writerow(cells)
        text = self[cells] = out.getvalue()[:-1]
        return text


# A row is written by joining its parts, not by a csv writer: a writer call a row cost three
# times the rest of the file (bench/measures_csv_bench.py). The parts: the text that comes from
# the database (quality) with the band, through spreadsheets.writer once for each distinct pair
# (Encoded); the instants, dates and times, which this module makes from numbers (digits and
# "-", "/", ":", "T", "+" inside: nothing a spreadsheet runs, nothing to quote); the kWh as csv
# writes a float (repr), or for Excel with three decimals and a comma (as DecimalComma). A test
# reads each file back and writes it again with spreadsheets.writer: the same bytes. Each batch
# of rows (Measure.batches_between's) becomes one chunk of the response.

ISO_HEADER = "start,end,kwh,quality,band\n"
EXCEL_HEADER = "\ufeffData;Ora;Ora legale o solare;kWh;Qualità;Fascia\r\n"


QUARTER_ENDS = {"00": "15", "15": "30", "30": "45"}  # the minute a quarter ends, in its hour


class Numbers(dict):
    """kWh -> its text as csv writes a float (repr), kept for the values seen last: a meter's
    values repeat (Wh steps), and repr cost more than the rest of the row."""

    def __missing__(self, kwh):
        if len(self) > 20000:
            self.clear()
        text = self[kwh] = repr(kwh)
        return text


def iso_csv(batches):
    hours, tails, numbers, key, following = Hours(), Encoded(","), Numbers(), None, None
    yield ISO_HEADER
    for batch in batches:
        lines = []
        for start, kwh, minutes, quality in batch:
            text = start if start.__class__ is str else start_text(start)
            if text[:13] != key:
                key = text[:13]
                hour = hours[key]
                here, offset, band = hour.text, hour.offset, hour.band
                actual = tails["actual", band]
            minute = text[14:16]
            # A quarter's start is most often the end of the row before: written once.
            if following is not None and following[0] == key and following[1] == minute:
                begin = following[2]
            else:
                begin = f"{here}:{minute}:00{offset}"
            if minutes == 15 and minute in QUARTER_ENDS:
                end = QUARTER_ENDS[minute]
                until = f"{here}:{end}:00{offset}"
                following = (key, end, until)
            else:  # ends in the next hour (or, off the quarter, wherever it ends)
                end = int(minute) + minutes
                after = hours[hour.next_key] if end >= 60 else hour
                until = f"{after.text}:{end % 60:02d}:00{after.offset}"
                following = None
            tail = actual if quality == "actual" else tails[quality, band]
            lines.append(f"{begin},{until},{numbers[kwh]},{tail}\n")
        yield "".join(lines)


def excel_csv(batches):
    hours, tails, key = Hours(), Encoded(";"), None
    yield EXCEL_HEADER
    for batch in batches:
        lines = []
        for start, kwh, _minutes, quality in batch:
            text = start_text(start)
            if text[:13] != key:
                key = text[:13]
                hour = hours[key]
                # 26/10/2025;02: and the clock, "legale" (summer time) or "solare"
                local = hour.text
                here = f"{local[8:10]}/{local[5:7]}/{local[:4]};{local[11:13]}:"
                clock = ";legale;" if hour.local.dst() else ";solare;"
            number = f"{kwh:.3f}".replace(".", ",")
            lines.append(f"{here}{text[14:16]}{clock}{number};{tails[QUALITY_IN_ITALIAN.get(quality, quality), hour.band]}\r\n")
        yield "".join(lines)


# --- Green Button ---------------------------------------------------------------------------------

ATOM, ESPI = "http://www.w3.org/2005/Atom", "http://naesb.org/espi"
# Europe's summer time as ESPI's DstRuleType bit map (month << 28 | operator << 25 | day of the
# week << 17 | hour << 12): the last (operator 7) Sunday (7) of March at 02:00, of October at 03:00.
DST_START_RULE, DST_END_RULE = "3E0E2000", "AE0E3000"


def espi_entry(entry_id, title, href, up, content, updated, related=()):
    links = f'<link rel="self" href={quoteattr(href)}/>'
    if up:
        links += f'<link rel="up" href={quoteattr(up)}/>'
    links += "".join(f'<link rel="related" href={quoteattr(link)}/>' for link in related)
    return (f"<entry><id>urn:uuid:{entry_id}</id>{links}<title>{escape(title)}</title>"
            f'<content type="xml">{content}</content><published>{updated}</published>'
            f"<updated>{updated}</updated></entry>\n")


def espi_feed(batches, point_code, first_day, last_day, interval_minutes, now):
    """The Atom feed of one electricity point's readings from first_day to last_day (Rome days,
    both included): UsagePoint, LocalTimeParameters, MeterReading and ReadingType entries, then
    one IntervalBlock entry a day with measures. `interval_minutes` is the ReadingType's (the
    point's usual interval); each reading says its own duration anyway."""
    updated = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    name = f"sportello:{point_code}:{first_day.isoformat()}:{last_day.isoformat()}"

    def ids(part):  # the same interval gives the same ids: a file downloaded twice is the same file
        return uuid.uuid5(uuid.NAMESPACE_URL, f"{name}:{part}")

    base = f"espi/1_1/resource/Subscription/{point_code}/UsagePoint/1"
    reading_type = "espi/1_1/resource/ReadingType/1"
    local_time = "espi/1_1/resource/LocalTimeParameters/1"
    yield ('<?xml version="1.0" encoding="UTF-8"?>\n'
           f'<feed xmlns="{ATOM}" xmlns:espi="{ESPI}"><id>urn:uuid:{ids("feed")}</id>'
           f"<title>{escape(f'Green Button: {point_code}, {first_day.isoformat()} / {last_day.isoformat()}')}</title>"
           f"<updated>{updated}</updated>\n")
    yield espi_entry(ids("usage-point"), point_code, base, f"espi/1_1/resource/Subscription/{point_code}/UsagePoint",
                     "<espi:UsagePoint><espi:ServiceCategory><espi:kind>0</espi:kind></espi:ServiceCategory>"
                     "</espi:UsagePoint>", updated, related=(f"{base}/MeterReading", local_time))
    yield espi_entry(ids("local-time"), "Europe/Rome", local_time, "espi/1_1/resource/LocalTimeParameters",
                     f"<espi:LocalTimeParameters><espi:dstEndRule>{DST_END_RULE}</espi:dstEndRule>"
                     f"<espi:dstOffset>3600</espi:dstOffset><espi:dstStartRule>{DST_START_RULE}</espi:dstStartRule>"
                     "<espi:tzOffset>3600</espi:tzOffset></espi:LocalTimeParameters>", updated)
    reading = f"{base}/MeterReading/1"
    yield espi_entry(ids("meter-reading"), "kWh", reading, f"{base}/MeterReading", "<espi:MeterReading/>", updated,
                     related=(f"{reading}/IntervalBlock", reading_type))
    # Energy delivered to the customer (flow 1), per interval (accumulation 4), in Wh (uom 72).
    yield espi_entry(ids("reading-type"), "Wh", reading_type, "espi/1_1/resource/ReadingType",
                     "<espi:ReadingType><espi:accumulationBehaviour>4</espi:accumulationBehaviour>"
                     "<espi:commodity>1</espi:commodity><espi:dataQualifier>12</espi:dataQualifier>"
                     f"<espi:flowDirection>1</espi:flowDirection><espi:intervalLength>{interval_minutes * 60}"
                     "</espi:intervalLength><espi:kind>12</espi:kind>"
                     "<espi:powerOfTenMultiplier>0</espi:powerOfTenMultiplier><espi:timeAttribute>0</espi:timeAttribute>"
                     "<espi:uom>72</espi:uom></espi:ReadingType>", updated)
    day, readings, hours, key = None, [], Hours(), None
    for start, kwh, minutes, quality in itertools.chain.from_iterable(batches):
        text = start_text(start)
        if text[:13] != key:
            key = text[:13]
            hour = hours[key]
            epoch = int(hour.local.timestamp())
            if hour.local.date() != day:
                if readings:
                    yield interval_block(ids, reading, day, readings, updated)
                day, readings = hour.local.date(), []
        readings.append(f"<espi:IntervalReading><espi:ReadingQuality><espi:quality>{ESPI_QUALITY.get(quality, 14)}"
                        f"</espi:quality></espi:ReadingQuality><espi:timePeriod><espi:duration>{minutes * 60}"
                        f"</espi:duration><espi:start>{epoch + int(text[14:16]) * 60}</espi:start></espi:timePeriod>"
                        f"<espi:value>{round(kwh * 1000)}</espi:value></espi:IntervalReading>")
    if readings:
        yield interval_block(ids, reading, day, readings, updated)
    yield "</feed>\n"


def interval_block(ids, reading, day, readings, updated):
    """One Rome day's IntervalBlock entry: its interval is the day's 23, 24 or 25 hours."""
    start = datetime.combine(day, datetime.min.time(), tzinfo=ROME)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=ROME)
    epoch = int(start.timestamp())
    content = (f"<espi:IntervalBlock><espi:interval><espi:duration>{int(end.timestamp()) - epoch}</espi:duration>"
               f"<espi:start>{epoch}</espi:start></espi:interval>{''.join(readings)}</espi:IntervalBlock>")
    href = f"{reading}/IntervalBlock/{day.isoformat()}"
    return espi_entry(ids(day.isoformat()), day.isoformat(), href, f"{reading}/IntervalBlock", content, updated)
