"""A city's daily attendance (issue 20, Numbers): a day's list of 100,000 absence rows imported and the care rules
evaluated, under 60 s on PostgreSQL.

    .venv/bin/python benchmarks/attendance_bench.py --database-url postgres://postgres@127.0.0.1:5432/xinqiao_attendance
    .venv/bin/python benchmarks/attendance_bench.py                                   # SQLite, /tmp
    .venv/bin/python benchmarks/attendance_bench.py --students 20000 --absent 10000    # smaller

The database is made afresh (the SQLite file deleted, the PostgreSQL database dropped and created), then seeded with
a city (fictional codes): 4 districts, --schools junior secondary schools (grades 7-9) sharing --students, and each
school's psychology teacher. The day measured is the latest school day up to today on the district calendar. The
earlier 30 days hold the absences that make the rules fire for a share of the day's list (written in bulk, not
measured):
- --run-share of the day's absent students were absent unexplained (旷课/未说明) on the two school days before: today
  unexplained again, they complete a run of 3 (连续3个上学日无故缺勤);
- --window-share had four unexplained days scattered over the month (never two in a row): today's is the fifth in 30
  days (30天内5天无故缺勤);
- every other absent student has two earlier absences of any type (mostly 病假/事假), which the rules read and
  which raise nothing, and today's type is drawn as a school reports them (病假 60%, 事假 25%, 未说明 10%, 旷课 5%).

Measured: the day's list as one CSV file (学校代码, 学号, 日期, 类型) through roster.importing.run_import (what
`manage.py import_attendance` and the admin's import job run): the check alone (the admin's preview), the import
with the rules (the bar), and the same file again (nothing changes, nothing raised). Queries are counted.
tests/benchmarks/test_attendance_bench_smoke.py runs a tiny pass.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import io
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CITY = ("考勤基准市", "990500")
DISTRICTS = [("东城区", "990501"), ("西城区", "990502"), ("南城区", "990503"), ("北城区", "990504")]
HEADER = ["学校代码", "学号", "日期", "类型"]
TODAY_KINDS = [("病假", 0.60), ("事假", 0.25), ("未说明", 0.10), ("旷课", 0.05)]


def school_days_before(day: datetime.date, count: int) -> list[datetime.date]:
    """The `count` school days before `day` (national calendar; the seeded districts have no rows of their own)."""
    from roster.duty import default_school_day

    found = []
    while len(found) < count:
        day -= datetime.timedelta(days=1)
        if default_school_day(day):
            found.append(day)
    return found


def the_day() -> datetime.date:
    from django.utils import timezone

    from roster.duty import default_school_day

    day = timezone.localdate()
    while not default_school_day(day):
        day -= datetime.timedelta(days=1)
    return day


def seed(*, students: int = 200_000, schools: int = 200, absent: int = 100_000, run_share: float = 0.01,
         window_share: float = 0.005, seed_value: int = 2026, stdout=sys.stdout) -> dict:  # fmt: skip
    """The city and its month of absences into the (migrated, empty) database; returns the day's list as CSV bytes
    and counts."""
    from django.contrib.auth.hashers import make_password
    from django.db import transaction

    from benchmarks.reports_bench import Rows, _analyze
    from roster.demo import _Names
    from roster.models import (
        Absence,
        AbsenceKind,
        City,
        District,
        Gender,
        RoleAssignment,
        School,
        SchoolClass,
        Student,
        User,
    )
    from roster.roles import Role

    started = time.perf_counter()
    rng = random.Random(seed_value)
    names = _Names(rng)
    rows = Rows()
    password = make_password(None)
    day = the_day()
    before = school_days_before(day, 30)
    month = [d for d in before if (day - d).days < 30]
    per_school = max(1, students // schools)
    classes_per_grade = max(1, per_school // (3 * 40))
    with transaction.atomic():
        city = City(id=rows.ids(City, 1)[0], name=CITY[0], division_code=CITY[1])
        rows.write(City, [city])
        districts = [District(id=rows.ids(District, 1)[0], city=city, name=n, division_code=c) for n, c in DISTRICTS]
        rows.write(District, districts)
        school_rows, class_rows, pupils, users, grants = [], [], [], [], []
        student_ids = iter(rows.ids(Student, per_school * schools))
        for n in range(schools):
            district = districts[n % len(districts)]
            code, name = f"{district.division_code}{n:04d}", f"{district.name[:2]}第{n + 1}中学"
            school = School(id=rows.ids(School, 1)[0], district=district, stage="junior", code=code, name=name)
            school_rows.append(school)
            user = User(id=rows.ids(User, 1)[0], username=f"psy_{school.code}", name=names.person(),
                        password=password, school=school)  # fmt: skip
            users.append(user)
            grants.append(RoleAssignment(id=rows.ids(RoleAssignment, 1)[0], user=user,
                                         role=Role.PSYCHOLOGY_TEACHER, school=school))  # fmt: skip
            made = 0
            for grade in (7, 8, 9):
                for number in range(1, classes_per_grade + 1):
                    klass = SchoolClass(id=rows.ids(SchoolClass, 1)[0], school=school, grade=grade, number=number)
                    class_rows.append(klass)
                    size = per_school // (3 * classes_per_grade) + (1 if number == 1 and grade == 7 else 0)
                    for seq in range(1, size + 1):
                        if made >= per_school:
                            break
                        pupils.append(Student(
                            id=next(student_ids), school=school, school_class=klass,
                            student_no=f"{grade:02d}{number:02d}{seq:03d}", name=names.person(),
                            gender=rng.choice((Gender.MALE, Gender.FEMALE)),
                        ))  # fmt: skip
                        made += 1
        rows.write(School, school_rows)
        rows.write(SchoolClass, class_rows)
        rows.write(User, users)
        rows.write(RoleAssignment, grants)
        rows.write(Student, pupils)

        codes = {s.pk: s.code for s in school_rows}
        chosen = rng.sample(pupils, min(absent, len(pupils)))
        runs = int(len(chosen) * run_share)
        windows = int(len(chosen) * window_share)
        history, today_rows = [], []
        unexplained = (AbsenceKind.UNEXPLAINED, AbsenceKind.TRUANCY)
        kinds_any = [AbsenceKind.SICK] * 5 + [AbsenceKind.PERSONAL] * 3 + [AbsenceKind.UNEXPLAINED]

        def earlier(pupil, when, kind):
            history.append(Absence(id=None, student=pupil, school_id=pupil.school_id, date=when, kind=kind))

        for index, pupil in enumerate(chosen):
            if index < runs:
                for when in before[:2]:
                    earlier(pupil, when, rng.choice(unexplained))
                today = rng.choice(["未说明", "旷课"])
            elif index < runs + windows:
                for when in month[2:12:3][:4]:  # every third school day: never two in a row
                    earlier(pupil, when, rng.choice(unexplained))
                today = rng.choice(["未说明", "旷课"])
            else:
                for when in rng.sample(month[3:], 2):
                    earlier(pupil, when, rng.choice(kinds_any))
                today = rng.choices([k for k, _w in TODAY_KINDS], [w for _k, w in TODAY_KINDS])[0]
            today_rows.append([codes[pupil.school_id], pupil.student_no, day.isoformat(), today])
        for absence, pk in zip(history, rows.ids(Absence, len(history)), strict=True):
            absence.id = pk
        rows.write(Absence, history)
        rows.reset_sequences()
    _analyze()
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    writer.writerows(today_rows)
    seconds = time.perf_counter() - started
    print(f"  city: {len(districts)} districts, {len(school_rows)} schools, {len(pupils)} students; "
          f"{len(history)} earlier absences; the day {day}: {len(today_rows)} rows ({runs} completing a run, "
          f"{windows} a window) in {seconds:.1f} s", file=stdout, flush=True)  # fmt: skip
    return {"csv": buffer.getvalue().encode("utf-8"), "day": day, "rows": len(today_rows), "students": len(pupils),
            "schools": len(school_rows), "history": len(history), "runs": runs, "windows": windows}  # fmt: skip


def measure(data: bytes, *, stdout=sys.stdout) -> list[dict]:
    """The check, the import with the rules, the same file again; one row each."""
    from django.db import connection

    from cases import absence_rules
    from cases.models import Signal, SignalSource
    from roster.attendance import AttendanceImport  # noqa: F401 (registers the import)
    from roster.importing import ImportRequest, run_import
    from roster.models import Absence

    results = []
    spent = {"rules": 0.0, "signals": 0.0}

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - started

        return wrapper

    # The care rules' share of the import: all of absence_signals_raise, and within it the signal_raise calls.
    originals = absence_rules.absence_signals_raise, absence_rules._raise
    absence_rules.absence_signals_raise = timed("rules", originals[0])
    absence_rules._raise = timed("signals", originals[1])

    def step(label: str, goal: str = "", **request):
        spent.update(rules=0.0, signals=0.0)
        absences, signals = Absence.objects.count(), Signal.objects.filter(source=SignalSource.ABSENCE).count()
        queries = []

        def count(execute, sql, params, many, context):
            queries.append(1)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count):
            started = time.perf_counter()
            report = run_import(ImportRequest(kind="attendance", data=data, filename="absences.csv", actor=None,
                                              **request))  # fmt: skip
            seconds = time.perf_counter() - started
        raised = Signal.objects.filter(source=SignalSource.ABSENCE).count() - signals
        detail = (f"{report.total} rows: {report.new} new, {report.updated} changed, {report.unchanged} unchanged, "
                  f"{len(report.error_lines)} errors; {Absence.objects.count() - absences} absences stored, "
                  f"{raised} signals raised; {len(queries)} queries; care rules {spent['rules']:.1f} s of which "
                  f"signal_raise {spent['signals']:.1f} s")  # fmt: skip
        if report.refused:
            detail = f"REFUSED: {report.refused}"
        results.append({"step": label, "seconds": seconds, "goal": goal, "detail": detail, "raised": raised,
                        "new": report.new, "unchanged": report.unchanged, "queries": len(queries),
                        "errors": len(report.error_lines), "rules": spent["rules"]})  # fmt: skip
        print(f"  {label}: {seconds:.2f} s  {detail}", file=stdout, flush=True)

    try:
        step("check only (the admin's preview)", dry_run=True)
        step("import + care rules", "< 60 s on PostgreSQL", dry_run=False)
        step("the same file again", dry_run=False)
    finally:
        absence_rules.absence_signals_raise, absence_rules._raise = originals
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default="sqlite:////tmp/xinqiao-attendance-bench.sqlite3")
    parser.add_argument("--students", type=int, default=200_000)
    parser.add_argument("--schools", type=int, default=200)
    parser.add_argument("--absent", type=int, default=100_000, help="rows in the day's list")
    parser.add_argument("--run-share", type=float, default=0.01)
    parser.add_argument("--window-share", type=float, default=0.005)
    args = parser.parse_args()
    from benchmarks.reports_bench import fresh_database, machine, setup_django

    fresh_database(args.database_url)
    setup_django(args.database_url)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    print(f"seeding {args.students} students …", flush=True)
    made = seed(students=args.students, schools=args.schools, absent=args.absent, run_share=args.run_share,
                window_share=args.window_share)  # fmt: skip
    print("measuring …", flush=True)
    results = measure(made["csv"])
    print(f"\nmachine: {machine()}")
    print(f"{'step':<34} {'seconds':>8}  {'goal':<22} detail")
    for r in results:
        print(f"{r['step']:<34} {r['seconds']:>8.2f}  {r['goal']:<22} {r['detail']}")


if __name__ == "__main__":
    main()
