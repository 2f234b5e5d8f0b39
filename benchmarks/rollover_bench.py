"""A city's September (issue 19, Numbers): the school-year rollover of 100,000 students, then the re-import of the new
class lists with 3,000 students moving between schools.

    .venv/bin/python benchmarks/rollover_bench.py --database-url postgres://postgres@127.0.0.1:5432/xinqiao_rollover
    .venv/bin/python benchmarks/rollover_bench.py                                   # SQLite, /tmp
    .venv/bin/python benchmarks/rollover_bench.py --students 5000 --moves 150        # smaller

The database is made afresh (the SQLite file deleted, the PostgreSQL database dropped and created: nothing is
flushed), then seeded with a city (fictional division codes; names from roster.demo's generator): 2 districts,
schools of every stage in turn (primary 1-6, junior 7-9, senior 10-12, nine-year 1-9, complete secondary 7-12,
twelve-year 1-12), 38-46 students a class, about 1,000 a school, each student with a national student number
(全国学籍号, stored as roster.identity's keyed hash and tail), a few on leave and a few transferred out; a city
admin, district admins and a school admin per school. Seeding writes no history (nothing measured reads it).

Measured, each once, as the city admin (roster.rollover) and each school's admin (roster.importing.run_import):
1. the preview of the city's rollover into 2026–2027, the rollover, its undo, the rollover again, and a second run
   (nothing to do). Issue 19's bar: the rollover under 60 s on PostgreSQL.
2. the new class lists, one CSV file per school, every enrolled student in their class after the rollover:
   - baseline: every student in their own school's file (nothing changes: the import's fixed cost at this size);
   - with moves: the same files but --moves students (not graduates) each in another school's file (a school of a
     stage that has their grade), with a new 学号 and their 全国学籍号, and no longer in their old school's file.
   The import stages a school move (roster.moves) for each; the table counts the SchoolMove rows created. The
   baseline runs again after (warm, as the import with moves is); the bar: with moves at most 2x the quicker one.
tests/benchmarks/test_rollover_bench_smoke.py runs a tiny pass.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import io
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CITY = ("升级基准市", "990300")
DISTRICTS = [("东城区", "990301"), ("西城区", "990302")]
# (name, stage, grades, classes a grade at full size)
SCHOOL_KINDS = [
    ("第{n}小学", "primary", range(1, 7), 4),
    ("第{n}初级中学", "junior", range(7, 10), 8),
    ("第{n}高级中学", "senior", range(10, 13), 8),
    ("第{n}九年一贯制学校", "nine_year", range(1, 10), 3),
    ("第{n}完全中学", "complete_secondary", range(7, 13), 4),
    ("第{n}十二年一贯制学校", "twelve_year", range(1, 13), 2),
]
FULL_SIZE = 20_000  # from this many students, classes have their full count and size
YEAR = 2026
HEADER = ["学校代码", "年级", "班级", "学号", "姓名", "性别", "出生日期", "全国学籍号"]


def national_id(pk: int) -> str:
    return f"G9903{pk:014d}"


def seed(*, students: int = 100_000, seed_value: int = 2026, stdout=sys.stdout) -> dict:
    """The city into the (migrated, empty) database. Returns counts and the seconds it took."""
    from django.contrib.auth.hashers import make_password
    from django.db import transaction

    from benchmarks.reports_bench import Rows, _analyze, _chinese
    from roster.demo import SURNAMES, _Names
    from roster.identity import national_id_digest, national_id_tail
    from roster.models import City, District, Gender, RoleAssignment, School, SchoolClass, Student, StudentStatus, User
    from roster.roles import Role

    started = time.perf_counter()
    rng = random.Random(seed_value)
    names = _Names(rng)
    rows = Rows()
    full = students >= FULL_SIZE
    class_size = (38, 46) if full else (3, 5)
    password = make_password(None)  # nobody signs in here
    users, grants, schools, classes, pupils = [], [], [], [], []

    def staff(username: str, role: str, node_field: str, node, school=None) -> None:
        user = User(id=rows.ids(User, 1)[0], username=username, name=names.person(), password=password, school=school)
        users.append(user)
        grants.append(RoleAssignment(id=rows.ids(RoleAssignment, 1)[0], user=user, role=role, **{node_field: node}))

    with transaction.atomic():
        city = City(id=rows.ids(City, 1)[0], name=CITY[0], division_code=CITY[1])
        rows.write(City, [city])
        staff("city_admin", Role.CITY_ADMIN, "city", city)
        districts = [District(id=rows.ids(District, 1)[0], city=city, name=n, division_code=c) for n, c in DISTRICTS]
        rows.write(District, districts)
        for index, district in enumerate(districts, start=1):
            staff(f"district_admin_{index}", Role.DISTRICT_ADMIN, "district", district)
        made, kind_index, serials = 0, 0, defaultdict(int)
        student_ids = iter(rows.ids(Student, students))
        while made < students:
            label, stage, grades, per_grade = SCHOOL_KINDS[kind_index % len(SCHOOL_KINDS)]
            district = districts[(kind_index // len(SCHOOL_KINDS)) % len(districts)]
            kind_index += 1
            serials[district.pk] += 1
            serials[(district.pk, label)] += 1
            name = district.name[:2] + label.format(n=_chinese(serials[(district.pk, label)]))
            code = f"{district.division_code}{serials[district.pk]:04d}"
            school = School(id=rows.ids(School, 1)[0], district=district, stage=stage, code=code, name=name)
            schools.append(school)
            staff(f"admin_{school.code}", Role.SCHOOL_ADMIN, "school", school, school)
            for grade in grades:
                for number in range(1, (per_grade if full else 1) + 1):
                    if made >= students:
                        break
                    klass = SchoolClass(id=rows.ids(SchoolClass, 1)[0], school=school, grade=grade, number=number)
                    classes.append(klass)
                    for seq in range(1, min(rng.randint(*class_size), students - made) + 1):
                        pk = next(student_ids)
                        surname = rng.choice(SURNAMES)
                        draw = rng.random()
                        status = (
                            StudentStatus.ON_LEAVE if draw < 0.004
                            else StudentStatus.TRANSFERRED if draw < 0.007 else StudentStatus.ACTIVE
                        )  # fmt: skip
                        number_text = national_id(pk)
                        pupils.append(Student(
                            id=pk, school=school, school_class=klass, student_no=f"{grade:02d}{number:02d}{seq:02d}",
                            name=names.person(surname), gender=rng.choice((Gender.MALE, Gender.FEMALE)),
                            birth_date=datetime.date(2019 - grade, 9, 1) + datetime.timedelta(days=rng.randrange(365)),
                            status=status, national_id_digest=national_id_digest(number_text),
                            national_id_tail=national_id_tail(number_text),
                        ))  # fmt: skip
                        made += 1
        rows.write(School, schools)
        rows.write(SchoolClass, classes)
        rows.write(User, users)
        rows.write(RoleAssignment, grants)
        rows.write(Student, pupils)
        rows.reset_sequences()
    _analyze()
    seconds = time.perf_counter() - started
    print(f"  city: {len(districts)} districts, {len(schools)} schools, {len(classes)} classes, {made} students in "
          f"{seconds:.1f} s", file=stdout, flush=True)  # fmt: skip
    return {"students": made, "schools": len(schools), "classes": len(classes), "seconds": seconds}


def _timed(fn):
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def class_lists(*, moves: int, seed_value: int = 2026) -> tuple[dict, dict, int]:
    """(school code → CSV bytes) without moves and with `moves` students moved, and how many moved. Every enrolled
    student in their class as it is now (after the rollover)."""
    from roster.models import School, Student, StudentStatus

    rng = random.Random(seed_value + 1)
    schools = {s.pk: s for s in School.objects.all()}
    rows_of: dict[int, list[list]] = defaultdict(list)
    enrolled = (
        Student.objects.filter(status=StudentStatus.ACTIVE)
        .order_by("school_id", "student_no")
        .values_list("pk", "school_id", "school_class__grade", "school_class__number", "student_no", "name", "gender",
                     "birth_date")
    )  # fmt: skip
    everyone = []
    for pk, school_id, grade, number, student_no, name, gender, birth in enrolled:
        row = [schools[school_id].code, grade, number, student_no, name, "男" if gender == "M" else "女",
               birth.isoformat() if birth else "", national_id(pk)]  # fmt: skip
        rows_of[school_id].append(row)
        everyone.append((school_id, grade, row))
    baseline = {schools[s].code: _csv(rows) for s, rows in rows_of.items()}

    by_grade: dict[int, list[int]] = defaultdict(list)
    for school in schools.values():
        from roster.stages import stage_grades

        for grade in stage_grades(school.stage):
            by_grade[grade].append(school.pk)
    moved_rows: dict[int, list[list]] = {s: list(rows) for s, rows in rows_of.items()}
    leaving: dict[int, set[str]] = defaultdict(set)
    moved = 0
    for school_id, grade, row in rng.sample(everyone, min(moves, len(everyone))):
        targets = [s for s in by_grade[grade] if s != school_id]
        if not targets:
            continue
        target = rng.choice(targets)
        leaving[school_id].add(row[3])
        new = [schools[target].code, grade, 1, f"M{moved:06d}", *row[4:]]
        moved_rows[target].append(new)
        moved += 1
    with_moves = {
        schools[s].code: _csv([r for r in rows if not (r[0] == schools[s].code and r[3] in leaving[s])])
        for s, rows in moved_rows.items()
    }
    return baseline, with_moves, moved


def _csv(rows: list[list]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def import_all(files: dict[str, bytes], label: str) -> dict:
    """Each school's file imported (written) by the school's admin; seconds and the reports' sums."""
    from django.utils import translation

    from roster.importing import ImportRequest, run_import
    from roster.models import School, User

    admins = {u.username.removeprefix("admin_"): u for u in User.objects.filter(username__startswith="admin_")}
    schools = {s.code: s for s in School.objects.all()}
    totals = defaultdict(int)
    started = time.perf_counter()
    with translation.override("zh-hans"):
        for code, data in sorted(files.items()):
            report = run_import(
                ImportRequest(kind="students", data=data, filename=f"{label}-{code}.csv", actor=admins[code],
                              school=schools[code], dry_run=False)
            )  # fmt: skip
            totals["rows"] += report.total
            totals["new"] += report.new
            totals["updated"] += report.updated
            totals["unchanged"] += report.unchanged
            totals["errors"] += len(report.error_lines)
            totals["refused"] += bool(report.refused)
            totals["written"] += report.written
    totals["seconds"] = time.perf_counter() - started
    totals["files"] = len(files)
    return dict(totals)


def measure(*, moves: int = 3000, stdout=sys.stdout) -> list[dict]:
    """The steps of the module docstring, in order; one row each."""
    from roster.models import City, SchoolMove, Student, StudentStatus, User
    from roster.rollover import rollover_preview, rollover_run, rollover_undo

    actor = User.objects.get(username="city_admin")
    city = City.objects.get(division_code=CITY[1])
    students = Student.objects.count()
    results = []

    def row(step: str, seconds: float, detail: str, goal: str = "") -> None:
        results.append({"step": step, "seconds": seconds, "detail": detail, "goal": goal})
        print(f"  {step}: {seconds:.2f} s  {detail}", file=stdout, flush=True)

    preview, seconds = _timed(lambda: rollover_preview(actor=actor, scope=city, school_year=YEAR))
    totals = preview.totals()
    row("preview", seconds, f"{len(preview.schools)} schools, {students} students")
    result, seconds = _timed(lambda: rollover_run(actor=actor, scope=city, school_year=YEAR))
    detail = (f"{totals['classes_up']} classes up, {totals['classes_graduating']} classes and "
              f"{totals['students_graduating']} students graduated")  # fmt: skip
    row("rollover", seconds, detail, "< 60 s")
    _, seconds = _timed(lambda: rollover_undo(actor=actor, run=result.run))
    row("undo", seconds, f"{Student.objects.filter(status=StudentStatus.GRADUATED).count()} graduated left")
    again, seconds = _timed(lambda: rollover_run(actor=actor, scope=city, school_year=YEAR))
    row("rollover again", seconds, detail, "< 60 s")
    nothing, seconds = _timed(lambda: rollover_run(actor=actor, scope=city, school_year=YEAR))
    row("second run (nothing to do)", seconds, "run: none" if nothing.run is None else "CHANGED SOMETHING")

    (baseline, with_moves, moved), seconds = _timed(lambda: class_lists(moves=moves))
    row("class lists built", seconds, f"{len(baseline)} files, {moved} students moved")
    base = import_all(baseline, "baseline")
    row("import, no moves (baseline)", base["seconds"],
        f"{base['rows']} rows: {base['new']} new, {base['updated']} changed, {base['unchanged']} unchanged, "
        f"{base['errors']} errors")  # fmt: skip
    before = SchoolMove.objects.count()
    moving = import_all(with_moves, "moves")
    staged = SchoolMove.objects.count() - before
    # The baseline again, warm as the import with moves was (the first import of a run pays for cold caches):
    # the movers' old schools' files still hold them, unchanged; the ratio is against the quicker baseline.
    again = import_all(baseline, "baseline-again")
    row("import, no moves, again", again["seconds"], f"{again['rows']} rows: {again['unchanged']} unchanged")
    quickest = min(base["seconds"], again["seconds"])
    ratio = moving["seconds"] / quickest if quickest else 0
    row("import, with moves", moving["seconds"],
        f"{moving['rows']} rows: {moving['new']} new, {moving['updated']} changed, {moving['errors']} errors; "
        f"{staged} school moves staged; {ratio:.2f}x the quicker baseline", "<= 2x baseline")  # fmt: skip
    results[-1].update(ratio=ratio, staged=staged, moved=moved, new=moving["new"], errors=moving["errors"])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default="sqlite:////tmp/xinqiao-rollover-bench.sqlite3")
    parser.add_argument("--students", type=int, default=100_000)
    parser.add_argument("--moves", type=int, default=3000)
    args = parser.parse_args()
    from benchmarks.reports_bench import fresh_database, machine, setup_django

    fresh_database(args.database_url)
    setup_django(args.database_url)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    print(f"seeding {args.students} students …", flush=True)
    seed(students=args.students)
    print("measuring …", flush=True)
    results = measure(moves=args.moves)
    print(f"\nmachine: {machine()}")
    print(f"{'step':<30} {'seconds':>8}  {'goal':<15} detail")
    for r in results:
        print(f"{r['step']:<30} {r['seconds']:>8.2f}  {r['goal']:<15} {r['detail']}")


if __name__ == "__main__":
    main()
