"""Daily and monthly totals by band, kept by the import (totals.py): after imports that add,
change and re-send measures they equal the raw sums computed here in Python, DST days included;
`flask rebuild-totals` makes the same; on PostgreSQL the measures live in month partitions."""
import csv
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bands
import importer
from database import is_sqlite
from models import DailyConsumption, Measure, MonthlyConsumption, SupplyPoint, db_wrapper
from tests.import_data import write_data_set

QUARTER = timedelta(minutes=15)
# Three stretches worth summing right: the spring change (Sunday 29 March 2026, 23 hours), the
# autumn change (Sunday 25 October 2026, 25 hours), and the end of May into 2 June (a Rome
# month and day that start at 22:00 UTC, then a national holiday).
STRETCHES = [datetime(2026, 3, 28, 20, 0), datetime(2026, 10, 24, 20, 0), datetime(2026, 5, 31, 20, 0)]
QUARTERS_PER_STRETCH = 3 * 96


@pytest.fixture
def points(app, tmp_path):
    """Two customers with an electricity and a gas point each, imported, no measures."""
    folder = tmp_path / "points"
    written = write_data_set(folder, customers=2, months=1, days_of_measures=0)
    report = run(app, [folder / "customers.csv", folder / "supply_points.csv"], tmp_path / "store")
    assert not report.problems
    with app.app_context():
        return [p for p in written["points"] if SupplyPoint.get(SupplyPoint.code == p).commodity == "electricity"]


def run(app, paths, store):
    with app.app_context():
        return importer.run([str(p) for p in paths], str(store))


def write_measures(path, rows):
    """rows: (point code, start as written, kWh, quality, minutes)."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["supply_point_code", "start", "kwh", "interval_minutes", "quality"])
        for code, start, kwh, quality, minutes in rows:
            writer.writerow([code, start, f"{kwh:.3f}", minutes, quality])


def utc_text(moment):
    return moment.isoformat() + "+00:00"


def expected_totals(sent):
    """{(code, UTC start): (kWh, quality)} summed by Rome day and month, in plain Python."""
    days = defaultdict(lambda: {"F1": 0.0, "F2": 0.0, "F3": 0.0, "intervals": 0, "estimated": 0,
                                "hours": defaultdict(float)})
    for (code, start), (kwh, quality) in sent.items():
        local = bands.to_rome(start)
        day = days[code, local.date()]
        day[bands.band(start)] += kwh
        day["intervals"] += 1
        day["estimated"] += quality == "estimated"
        day["hours"][start.replace(minute=0)] += kwh
    months = defaultdict(lambda: {"F1": 0.0, "F2": 0.0, "F3": 0.0, "intervals": 0, "estimated": 0, "hours": {}})
    for (code, day), values in days.items():
        month = months[code, day.replace(day=1)]
        for key in ("F1", "F2", "F3", "intervals", "estimated"):
            month[key] += values[key]
        month["hours"].update(values["hours"])
    return days, months


def stored_totals(model, period):
    codes = dict(SupplyPoint.select(SupplyPoint.id, SupplyPoint.code).tuples())
    return {(codes[row.supply_point_id], getattr(row, period)): row for row in model.select()}


def assert_totals_match(sent):
    days, months = expected_totals(sent)
    for model, period, expected in ((DailyConsumption, "day", days), (MonthlyConsumption, "month", months)):
        stored = stored_totals(model, period)
        assert set(stored) == set(expected), model.__name__
        for key, values in expected.items():
            row = stored[key]
            close = lambda value: pytest.approx(value, rel=1e-5, abs=1e-4)  # noqa: E731 (PostgreSQL's REAL)
            assert (row.f1, row.f2, row.f3) == (close(values["F1"]), close(values["F2"]), close(values["F3"])), key
            assert (row.intervals, row.estimated) == (values["intervals"], values["estimated"]), key
            peak = max(values["hours"].values())
            assert row.peak_kwh == close(peak), key
            # Ties (or sums a rounding apart) may pick either hour: the one picked holds the peak.
            assert values["hours"][row.peak_start] == close(peak), key
    # Each point's newest measure's end ("l'ultima misura finisce il"), kept with the totals.
    newest = {}
    for code, start in sent:
        newest[code] = max(newest.get(code, start), start)
    kept = dict(SupplyPoint.select(SupplyPoint.code, SupplyPoint.measures_until).tuples())
    assert {code: kept[code] for code in newest} == {code: start + QUARTER for code, start in newest.items()}
    assert all(kept[code] is None for code in kept if code not in newest)


measure_rows = st.lists(
    st.tuples(st.integers(0, 1), st.integers(0, len(STRETCHES) - 1), st.integers(0, QUARTERS_PER_STRETCH - 1),
              st.integers(0, 3000), st.sampled_from(["actual", "actual", "estimated"])),
    max_size=60)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(imports=st.lists(st.tuples(measure_rows, st.integers(0, 2)), min_size=1, max_size=3), data=st.data())
def test_totals_equal_the_raw_sums_after_imports_that_add_change_and_resend(app, points, tmp_path, imports, data):
    with app.app_context():
        for model in (Measure, DailyConsumption, MonthlyConsumption):
            model.delete().execute()
        SupplyPoint.update(measures_until=None).execute()
    sent = {}
    for number, (rows, resend_mode) in enumerate(imports):
        batch = {}
        for point, stretch, quarter, milli_kwh, quality in rows:
            batch[points[point], STRETCHES[stretch] + quarter * QUARTER] = (milli_kwh / 1000, quality)
        if sent and resend_mode:
            # Rows sent before come again: unchanged (1) or with new values (2).
            again = data.draw(st.lists(st.sampled_from(sorted(sent)), max_size=20, unique=True))
            for key in again:
                kwh, quality = sent[key]
                batch[key] = (kwh, quality) if resend_mode == 1 else (round(kwh + 0.5, 3), "actual")
        if not batch:
            continue
        folder = tmp_path / f"import-{number}"
        folder.mkdir(exist_ok=True)
        write_measures(folder / "measures.csv",
                       [(code, utc_text(start), kwh, quality, 15) for (code, start), (kwh, quality) in batch.items()])
        report = run(app, [folder / "measures.csv"], tmp_path / "store")
        assert not report.problems, report.problems
        sent.update(batch)
        with app.app_context():
            assert_totals_match(sent)


def test_dst_days_have_23_and_25_hours_and_the_repeated_hour_counts_twice(app, points, tmp_path):
    """Local times without an offset, as a billing system writes them: on 25 October the hour
    02:00 comes twice (the second time an hour later in UTC) and its second turn is the peak."""
    rows = []
    for day in (date(2026, 3, 29), date(2026, 10, 25)):
        moment = datetime.combine(day, datetime.min.time(), bands.ROME)
        while moment.astimezone(bands.ROME).date() == day:
            local = moment.astimezone(bands.ROME)
            utc = moment.astimezone(UTC).replace(tzinfo=None)
            kwh = 2.0 if utc.replace(minute=0) == datetime(2026, 10, 25, 1, 0) else 0.1 + local.hour / 100
            rows.append((points[0], local.strftime("%Y-%m-%d %H:%M"), kwh,
                         "estimated" if local.hour == 5 else "actual", 15))
            moment = (moment.astimezone(UTC) + QUARTER).astimezone(bands.ROME)
    write_measures(tmp_path / "measures.csv", rows)
    report = run(app, [tmp_path / "measures.csv"], tmp_path / "store")
    assert not report.problems, report.problems
    with app.app_context():
        spring = DailyConsumption.get(DailyConsumption.day == date(2026, 3, 29))
        autumn = DailyConsumption.get(DailyConsumption.day == date(2026, 10, 25))
        assert (spring.intervals, autumn.intervals) == (23 * 4, 25 * 4)
        assert (spring.estimated, autumn.estimated) == (4, 4)
        assert spring.f1 == spring.f2 == autumn.f1 == autumn.f2 == 0  # Sundays: all F3
        spring_kwh = sum(4 * (0.1 + hour / 100) for hour in range(24) if hour != 2)
        assert spring.f3 == pytest.approx(spring_kwh, rel=1e-5)
        autumn_kwh = sum(4 * (0.1 + hour / 100) for hour in range(24)) + 4 * 2.0  # 02:00 twice, once at 2 kWh
        assert autumn.f3 == pytest.approx(autumn_kwh, rel=1e-5)
        assert autumn.peak_kwh == pytest.approx(8.0, rel=1e-5)  # four quarters of the second 02:00
        assert autumn.peak_start == datetime(2026, 10, 25, 1, 0)  # 02:00 CET, not 02:00 CEST (00:00 UTC)
        assert spring.peak_start == datetime(2026, 3, 29, 21, 0)  # 23:00 CEST, the day's last hour
        assert MonthlyConsumption.get(MonthlyConsumption.month == date(2026, 10, 1)).intervals == 100
        assert MonthlyConsumption.get(MonthlyConsumption.month == date(2026, 3, 1)).f3 == pytest.approx(
            spring_kwh, rel=1e-5)


def test_hourly_measures_and_a_day_s_first_hour_in_utc(app, points, tmp_path):
    """Hourly data: 1 June starts at 22:00 UTC of 31 May, and 2 June is a holiday (all F3)."""
    rows = [(points[1], utc_text(datetime(2026, 5, 31, 21, 0) + timedelta(hours=h)), 1.0, "actual", 60)
            for h in range(1 + 48)]
    write_measures(tmp_path / "measures.csv", rows)
    assert not run(app, [tmp_path / "measures.csv"], tmp_path / "store").problems
    with app.app_context():
        days = {row.day: row for row in DailyConsumption.select()}
        assert sorted(days) == [date(2026, 5, 31), date(2026, 6, 1), date(2026, 6, 2)]
        assert days[date(2026, 5, 31)].intervals == 1  # 23:00 local
        june_1, june_2 = days[date(2026, 6, 1)], days[date(2026, 6, 2)]
        assert (june_1.f1, june_1.f2, june_1.f3) == (11, 5, 8)  # a Monday
        assert (june_2.f1, june_2.f2, june_2.f3) == (0, 0, 24)  # Festa della Repubblica
        assert june_1.peak_start == datetime(2026, 5, 31, 22, 0)  # all equal: the first hour
        months = {row.month: row.intervals for row in MonthlyConsumption.select()}
        assert months == {date(2026, 5, 1): 1, date(2026, 6, 1): 48}


def test_a_refused_import_changes_no_totals(app, points, tmp_path):
    rows = [(points[0], utc_text(datetime(2026, 7, 1, 8, 0)), 1.0, "actual", 60)]
    write_measures(tmp_path / "measures.csv", rows)
    assert not run(app, [tmp_path / "measures.csv"], tmp_path / "store").problems
    rows += [(points[0], utc_text(datetime(2026, 7, 1, 9, 0)), 1.0, "actual", 60), ("PR999999", rows[0][1], 1, "actual", 60)]
    write_measures(tmp_path / "measures.csv", rows)
    assert run(app, [tmp_path / "measures.csv"], tmp_path / "store").problems
    with app.app_context():
        assert [(row.intervals, row.f1) for row in DailyConsumption.select()] == [(1, 1.0)]


def test_rebuild_totals_command_makes_them_again_from_the_measures(app, points, tmp_path):
    rows = [(points[n % 2], utc_text(datetime(2026, 10, 20) + n * QUARTER), (n % 7) / 10, "actual", 15)
            for n in range(96 * 10)]
    write_measures(tmp_path / "measures.csv", rows)
    assert not run(app, [tmp_path / "measures.csv"], tmp_path / "store").problems
    with app.app_context():
        imported = {model: model.select().count() for model in (DailyConsumption, MonthlyConsumption)}
        # Totals gone wrong (a fix in the measures made by hand, a change of the band rules...).
        DailyConsumption.update(f1=0).execute()
        MonthlyConsumption.delete().execute()
        SupplyPoint.update(measures_until=None).execute()
        # A day whose measures were archived (README) has totals and no measures: they stay.
        point = SupplyPoint.get(SupplyPoint.code == points[0])
        DailyConsumption.create(supply_point=point, day=date(2020, 1, 1), f1=5, intervals=1)
    result = app.test_cli_runner().invoke(args=["rebuild-totals"])
    assert result.exit_code == 0, result.output
    assert "Totals rebuilt for 2 supply point(s) with measures." in result.output
    with app.app_context():
        archived = DailyConsumption.get(DailyConsumption.day == date(2020, 1, 1))
        assert (archived.f1, archived.intervals) == (5, 1)
        archived.delete_instance()
        assert {model: model.select().count() for model in imported} == imported
        sent = {(code, datetime.fromisoformat(start[:-6])): (kwh, quality) for code, start, kwh, quality, _ in rows}
        assert_totals_match({key: (round(kwh, 3), quality) for key, (kwh, quality) in sent.items()})


def test_the_upgrade_that_keeps_the_newest_measure_end_fills_it_from_the_measures_stored(app, points, tmp_path):
    """Migration 017, on an instance that has measures from before it: each point's
    measures_until is its newest measure's end (hourly and quarter-hour), no measures no end."""
    import schema

    rows = [(points[0], utc_text(datetime(2026, 10, 20, 22, 0)), 1.0, "actual", 60),
            (points[0], utc_text(datetime(2026, 10, 20, 21, 0)), 1.0, "actual", 60),
            (points[1], utc_text(datetime(2026, 10, 25, 0, 45)), 1.0, "actual", 15)]
    write_measures(tmp_path / "measures.csv", rows)
    assert not run(app, [tmp_path / "measures.csv"], tmp_path / "store").problems
    with app.app_context():
        router = schema.router(db_wrapper.database)
        assert router.done[-1] == "017_point_measures_until"
        try:
            router.rollback()  # the instance as it was before 017
            assert "measures_until" not in [c.name for c in db_wrapper.database.get_columns("supplypoint")]
            router.run()
        finally:
            schema.upgrade(db_wrapper.database)  # the next tests find the schema whole
        kept = dict(SupplyPoint.select(SupplyPoint.code, SupplyPoint.measures_until).tuples())
    assert kept[points[0]] == datetime(2026, 10, 20, 23, 0)
    assert kept[points[1]] == datetime(2026, 10, 25, 1, 0)
    assert [until for code, until in kept.items() if code not in points[:2]] == [None] * (len(kept) - 2)


# --- PostgreSQL: measures partitioned by month ---------------------------------------------------

@pytest.fixture
def postgres(app):
    with app.app_context():
        if is_sqlite(db_wrapper.database):
            pytest.skip("PostgreSQL only: SQLite keeps one measure table")
        return db_wrapper.database


def partition_names(database):
    return {name for (name,) in database.execute_sql(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'measure'::regclass")}


def test_the_import_creates_the_partitions_of_the_months_it_writes(app, postgres, points, tmp_path):
    # 30 November 23:00 UTC is already 1 December in Rome: December's partition, not November's.
    starts = [datetime(2031, 11, 30, 22, 0), datetime(2031, 11, 30, 23, 0), datetime(2032, 2, 10, 12, 0)]
    write_measures(tmp_path / "measures.csv", [(points[0], utc_text(s), 1.0, "actual", 60) for s in starts])
    assert not run(app, [tmp_path / "measures.csv"], tmp_path / "store").problems
    with app.app_context():
        names = partition_names(postgres)
        assert {"measure_2031_11", "measure_2031_12", "measure_2032_02", "measure_default"} <= names
        assert "measure_2032_01" not in names  # only months with rows
        placed = dict(postgres.execute_sql("SELECT start, tableoid::regclass::text FROM measure "
                                           "WHERE start >= '2031-01-01'").fetchall())
        assert placed == {starts[0]: "measure_2031_11", starts[1]: "measure_2031_12", starts[2]: "measure_2032_02"}


def test_rows_waiting_in_the_default_partition_move_to_their_month(app, postgres, points, tmp_path):
    with app.app_context():
        point = SupplyPoint.get(SupplyPoint.code == points[0])
        postgres.execute_sql("DROP TABLE IF EXISTS measure_2033_05")
        Measure.create(supply_point=point, start=datetime(2033, 5, 3, 10, 0), kwh=1.5)  # no partition: default
        assert postgres.execute_sql("SELECT tableoid::regclass::text FROM measure WHERE start = '2033-05-03 10:00'"
                                    ).fetchone()[0] == "measure_default"
    write_measures(tmp_path / "measures.csv", [(points[0], utc_text(datetime(2033, 5, 4, 10, 0)), 2.0, "actual", 60)])
    assert not run(app, [tmp_path / "measures.csv"], tmp_path / "store").problems
    with app.app_context():
        assert dict(postgres.execute_sql("SELECT start, tableoid::regclass::text FROM measure "
                                         "WHERE start >= '2033-05-01' AND start < '2033-06-01'").fetchall()) == {
            datetime(2033, 5, 3, 10, 0): "measure_2033_05", datetime(2033, 5, 4, 10, 0): "measure_2033_05"}


def test_a_day_of_one_point_reads_one_partition(app, postgres, points, tmp_path):
    rows = [(points[0], utc_text(datetime(2034, month, 27, 23, 0) + h * timedelta(hours=1)), 1.0, "actual", 60)
            for month in (3, 4, 5) for h in range(24 * 4)]
    write_measures(tmp_path / "measures.csv", rows)
    assert not run(app, [tmp_path / "measures.csv"], tmp_path / "store").problems
    with app.app_context():
        point = SupplyPoint.get(SupplyPoint.code == points[0])
        # 1 April 2034 in Rome (summer time) runs from 31 March 22:00 UTC to 1 April 22:00 UTC.
        plan = "\n".join(line for (line,) in postgres.execute_sql(
            "EXPLAIN SELECT start, kwh FROM measure WHERE supply_point_id = %s AND start >= %s AND start < %s",
            (point.id, datetime(2034, 3, 31, 22, 0), datetime(2034, 4, 1, 22, 0))))
        scanned = {name for name in partition_names(postgres) if name in plan}
        assert scanned == {"measure_2034_04"}, plan


def test_detaching_a_month_keeps_its_totals(app, postgres, points, tmp_path):
    rows = [(points[0], utc_text(datetime(2035, 1, 10) + h * timedelta(hours=1)), 0.5, "actual", 60)
            for h in range(24 * 40)]  # 10 January to 19 February
    write_measures(tmp_path / "measures.csv", rows)
    assert not run(app, [tmp_path / "measures.csv"], tmp_path / "store").problems
    with app.app_context():
        january = MonthlyConsumption.get(MonthlyConsumption.month == date(2035, 1, 1))
        days = DailyConsumption.select().where(DailyConsumption.day < date(2035, 2, 1)).count()
        postgres.execute_sql("ALTER TABLE measure DETACH PARTITION measure_2035_01")
        postgres.execute_sql("DROP TABLE measure_2035_01")  # archived (README): gone from the database
        assert Measure.select().where(Measure.start < datetime(2035, 1, 31, 23, 0),
                                      Measure.start >= datetime(2035, 1, 1)).count() == 0
        assert Measure.select().where(Measure.start >= datetime(2035, 1, 31, 23, 0)).count() > 0
        kept = MonthlyConsumption.get(MonthlyConsumption.month == date(2035, 1, 1))
        # 10 January 00:00 UTC (01:00 in Rome) to Rome's end of January, 31 January 23:00 UTC.
        assert (kept.f1 + kept.f2 + kept.f3, kept.intervals) == (january.f1 + january.f2 + january.f3, 21 * 24 + 23)
        assert DailyConsumption.select().where(DailyConsumption.day < date(2035, 2, 1)).count() == days == 22
