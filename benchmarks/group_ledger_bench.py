"""The special-groups ledger at city scale (issue 20, Numbers: "every ledger under 1 s at city scale with constant
queries"): 200 schools, 100,000 students, ~15% of them in ledger groups (三个清单), about 60% of those with a 一人一案
help record (a third of them past their review date).

    .venv/bin/python benchmarks/group_ledger_bench.py --database-url postgres://postgres@127.0.0.1:5432/xinqiao_groups
    .venv/bin/python benchmarks/group_ledger_bench.py                                  # SQLite, /tmp
    .venv/bin/python benchmarks/group_ledger_bench.py --students 10000 --schools 20     # smaller

The database is made afresh and seeded in bulk (no history; fictional division codes): a city, 2 districts, junior
(grades 7-9) and senior (10-12) schools in turn, each with a principal and a psychology teacher; a district centre per
district and a city centre. Measured (median of --repeats after one warm-up, every query count seen): the ledger page
as the city centre (all rows, review overdue, no record yet, an exam-year group, one district), a district centre and
a principal, and the XLSX written in the request for a district and a school. Goal: each page under 1,000 ms.
tests/benchmarks/test_group_ledger_bench_smoke.py runs a tiny pass.
"""

from __future__ import annotations

import argparse
import datetime
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CITY = ("台账基准市", "990400")
DISTRICTS = [("东岸区", "990401"), ("西岸区", "990402")]
TAGGED_SHARE = 0.15
RECORD_SHARE = 0.6
GOAL_MS = 1000


def seed(*, students: int = 100_000, schools: int = 200, seed_value: int = 2026, stdout=sys.stdout) -> dict:
    """The city into the (migrated, empty) database. Returns counts and the seconds it took."""
    from django.contrib.auth.hashers import make_password
    from django.db import transaction
    from django.utils import timezone

    from benchmarks.reports_bench import Rows, _analyze
    from cases.models import HelpRecord, HelpStatus
    from roster.demo import SURNAMES, _Names
    from roster.models import City, District, Gender, RoleAssignment, School, SchoolClass, Student, User
    from roster.roles import Role
    from roster.special_groups import ledger_groups_in_use

    started = time.perf_counter()
    rng = random.Random(seed_value)
    names = _Names(rng)
    rows = Rows()
    password = make_password(None)
    users, grants, all_schools, classes, pupils, tags, records = [], [], [], [], [], [], []
    groups = list(ledger_groups_in_use().values_list("pk", flat=True))
    through = Student.special_groups.through
    today = timezone.localdate()
    now = timezone.now()

    def staff(username: str, role: str, node_field: str, node, school=None) -> User:
        user = User(id=rows.ids(User, 1)[0], username=username, name=names.person(), password=password, school=school)
        users.append(user)
        grants.append(RoleAssignment(id=rows.ids(RoleAssignment, 1)[0], user=user, role=role, **{node_field: node}))
        return user

    per_school = max(1, students // schools)
    with transaction.atomic():
        city = City(id=rows.ids(City, 1)[0], name=CITY[0], division_code=CITY[1])
        rows.write(City, [city])
        staff("city_centre", Role.CITY_CENTRE, "city", city)
        districts = [District(id=rows.ids(District, 1)[0], city=city, name=n, division_code=c) for n, c in DISTRICTS]
        rows.write(District, districts)
        for index, district in enumerate(districts, start=1):
            staff(f"district_centre_{index}", Role.DISTRICT_CENTRE, "district", district)
        student_ids = iter(rows.ids(Student, per_school * schools))
        for s in range(schools):
            district = districts[s % len(districts)]
            junior = s % 2 == 0
            code = f"{district.division_code}{s // len(districts) + 1:04d}"
            name = f"基准{'初级' if junior else '高级'}中学{s + 1}"
            school = School(id=rows.ids(School, 1)[0], district=district, code=code,
                            stage="junior" if junior else "senior", name=name)  # fmt: skip
            all_schools.append(school)
            staff(f"principal_{code}", Role.PRINCIPAL, "school", school, school)
            psychologist = staff(f"psy_{code}", Role.PSYCHOLOGY_TEACHER, "school", school, school)
            grades = (7, 8, 9) if junior else (10, 11, 12)
            per_class = 45
            class_count = max(1, per_school // per_class)
            school_classes = [
                SchoolClass(id=rows.ids(SchoolClass, 1)[0], school=school, grade=grades[n % 3], number=n // 3 + 1)
                for n in range(class_count)
            ]  # fmt: skip
            classes.extend(school_classes)
            for seq in range(per_school):
                klass = school_classes[seq % class_count]
                pk = next(student_ids)
                number = f"{klass.grade:02d}{klass.number:02d}{seq:04d}"
                pupils.append(Student(
                    id=pk, school=school, school_class=klass, student_no=number,
                    name=names.person(rng.choice(SURNAMES)), gender=rng.choice((Gender.MALE, Gender.FEMALE)),
                ))  # fmt: skip
                if rng.random() >= TAGGED_SHARE:
                    continue
                for group in rng.sample(groups, 2 if rng.random() < 0.1 else 1):
                    tags.append(through(id=rows.ids(through, 1)[0], student_id=pk, specialgroup_id=group))
                    if rng.random() < RECORD_SHARE:
                        records.append(HelpRecord(
                            id=rows.ids(HelpRecord, 1)[0], student_id=pk, school=school, group_id=group,
                            measures="每周谈心一次；每月联系监护人", responsible=psychologist, created_by=psychologist,
                            review_on=today + datetime.timedelta(days=rng.randint(-30, 60)),
                            status=HelpStatus.ACTIVE if rng.random() < 0.9 else HelpStatus.ENDED,
                            created_at=now, updated_at=now,
                        ))  # fmt: skip
        rows.write(School, all_schools)
        rows.write(SchoolClass, classes)
        rows.write(User, users)
        rows.write(RoleAssignment, grants)
        rows.write(Student, pupils)
        rows.write(through, tags)
        rows.write(HelpRecord, records)
        rows.reset_sequences()
    _analyze()
    seconds = time.perf_counter() - started
    print(f"  city: {len(all_schools)} schools, {len(pupils)} students, {len(tags)} ledger-group memberships, "
          f"{len(records)} help records in {seconds:.1f} s", file=stdout, flush=True)  # fmt: skip
    return {"schools": len(all_schools), "students": len(pupils), "memberships": len(tags), "records": len(records),
            "seconds": seconds}  # fmt: skip


def pages() -> list[tuple[str, str, str]]:
    """(username, url, what) of every page measured, read from the seeded database."""
    from django.urls import reverse

    from roster.models import District, School, SpecialGroup

    ledger, xlsx = reverse("reports:ledger_groups"), reverse("reports:ledger_groups_xlsx")
    first = School.objects.order_by("code").first()
    district = District.objects.order_by("division_code").first()
    grade_9 = SpecialGroup.objects.get(code="grade_9")
    return [
        ("city_centre", ledger, "city centre: all ledger groups"),
        ("city_centre", f"{ledger}?review_overdue=on", "city centre: review overdue"),
        ("city_centre", f"{ledger}?without_record=on", "city centre: no help record yet"),
        ("city_centre", f"{ledger}?group={grade_9.pk}", "city centre: 九年级 (exam year)"),
        ("city_centre", f"{ledger}?district={district.pk}", "city centre: one district"),
        ("district_centre_1", ledger, "district centre: all"),
        ("district_centre_1", f"{ledger}?school={first.pk}&without_record=on", "district centre: a school, no record"),
        (f"principal_{first.code}", ledger, "principal: the school"),
        ("district_centre_1", xlsx, "district centre: XLSX"),
        (f"principal_{first.code}", xlsx, "principal: XLSX"),
    ]


def measure(*, repeats: int = 5, stdout=sys.stdout) -> list[dict]:
    """Each page warmed once, then requested `repeats` times (reports_bench's measuring loop): median ms, queries."""
    from django.conf import settings
    from django.test.utils import override_settings

    from benchmarks.reports_bench import _measure

    if "testserver" not in settings.ALLOWED_HOSTS:
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    with override_settings(EXPORT_BACKGROUND_ROWS=sys.maxsize):  # the whole file written in the request
        return _measure(None, repeats=repeats, only="", pages=pages(), warm=True, stdout=stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default="sqlite:////tmp/xinqiao-group-ledger-bench.sqlite3")
    parser.add_argument("--students", type=int, default=100_000)
    parser.add_argument("--schools", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-seed", action="store_true", help="measure the database a previous run seeded")
    args = parser.parse_args()
    from benchmarks.reports_bench import fresh_database, machine, setup_django

    if not args.skip_seed:
        fresh_database(args.database_url)
    setup_django(args.database_url)
    if not args.skip_seed:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        print(f"seeding {args.students} students in {args.schools} schools …", flush=True)
        seed(students=args.students, schools=args.schools)
    print("measuring …", flush=True)
    results = measure(repeats=args.repeats)
    print(f"\nmachine: {machine()}")
    print(f"{'page':<42} {'median ms':>10} {'max ms':>8}  queries  goal")
    for r in results:
        if "XLSX" in r["page"]:  # above settings.EXPORT_BACKGROUND_ROWS rows the task worker writes it, not the page
            goal = "(in the request here)"
        else:
            goal = f"<{GOAL_MS} ms {'ok' if r['median_ms'] < GOAL_MS else 'SLOW'}"
        print(f"{r['page']:<42} {r['median_ms']:>10.1f} {r['max_ms']:>8.1f}  {r['queries']}  {goal}")


if __name__ == "__main__":
    main()
