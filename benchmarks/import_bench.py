"""Roster import at city scale: 100,000 student rows through the admin's code path, against plain bulk_create.

    .venv/bin/python benchmarks/import_bench.py                        # SQLite file in /tmp, CSV and XLSX
    .venv/bin/python benchmarks/import_bench.py --database-url postgres://postgres@127.0.0.1:5432/xinqiao_bench

Phases run in separate processes so each reports its own peak memory (ru_maxrss):
  preview  – dry run of the file (nothing written)
  import   – the import itself (validation, scope, normalisation, classes, history)
  reimport – the same file again: must write zero rows and zero history
  baseline – plain bulk_create + bulk history of the same rows, values already clean (the yardstick)
The PostgreSQL database must exist; it is emptied (flush) first.
"""

import argparse
import csv
import importlib
import io
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
HEADER = ["学校代码", "年级", "班级", "学号", "姓名", "性别", "出生日期", "监护人", "监护人电话", "特殊群体"]
GROUPS = ["", "", "", "", "", "", "", "", "留守儿童", "单亲家庭、困境"]


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def rows_for(schools: list[str], total: int):
    """Realistic messy rows: Chinese grades, 班 suffixes, Chinese gender, dates in two formats."""
    grades = ["四年级", "五年级", "六年级", "初一", "初二", "高一", "高二"]
    for n in range(total):
        school = schools[n % len(schools)]
        grade = grades[(n // len(schools)) % len(grades)]
        yield [
            school, grade, f"{n % 12 + 1}班", f"B{n:07d}", f"王小{n % 997}", "男" if n % 2 else "女",
            f"201{n % 8}-0{n % 9 + 1}-1{n % 9}" if n % 3 else f"201{n % 8}年{n % 9 + 1}月1{n % 9}日",
            f"王大{n % 991}", f"139{n:08d}", GROUPS[n % len(GROUPS)],
        ]  # fmt: skip


def phase_setup(args) -> dict:
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if args.database_url.startswith("postgres"):
        from benchmarks.emptying import flush_database

        flush_database()
        # flush also empties rows that data migrations loaded: put the special-group vocabulary back
        from django.apps import apps

        importlib.import_module("roster.migrations.0002_special_groups").load(apps, None)
    call_command("seed_demo", students_per_class=1, force=True, stdout=io.StringIO())
    from roster.models import School

    schools = list(School.objects.order_by("code").values_list("code", flat=True))
    out = Path(args.workdir)
    with open(out / "students.csv", "w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows_for(schools, args.rows))
    import openpyxl

    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet()
    sheet.append(HEADER)
    for row in rows_for(schools, args.rows):
        sheet.append(row)
    workbook.save(out / "students.xlsx")
    return {"schools": len(schools)}


def _import(args, *, dry_run: bool) -> dict:
    from roster.importing import ImportRequest, run_import
    from roster.models import Student

    path = Path(args.workdir) / f"students.{args.format}"
    history_before = Student.history.count()
    started = time.perf_counter()
    report = run_import(
        ImportRequest(
            kind="students", data=path.read_bytes(), filename=path.name,
            actor=None, dry_run=dry_run,  # the command-line path: a file spanning all twelve schools
        )
    )  # fmt: skip
    seconds = time.perf_counter() - started
    assert not report.refused and not report.error_lines, (report.refused, report.errors[:3])
    return {
        "seconds": seconds,
        "new": report.new,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "history_rows_written": Student.history.count() - history_before,
    }


def phase_baseline(args) -> dict:
    """The same rows, values already clean, straight into bulk_create and bulk history (no m2m, no checks)."""
    from django.db import transaction

    from roster.models import School, SchoolClass, Student

    Student.special_groups.through.objects.filter(student__student_no__startswith="B").delete()
    Student.history.model.objects.filter(student_no__startswith="B").delete()
    Student.objects.filter(student_no__startswith="B").delete()
    school_ids = dict(School.objects.values_list("code", "pk"))
    classes = {(s, g, n): pk for pk, s, g, n in SchoolClass.objects.values_list("pk", "school_id", "grade", "number")}
    grade_of = {"四年级": 4, "五年级": 5, "六年级": 6, "初一": 7, "初二": 8, "高一": 10, "高二": 11}
    with open(Path(args.workdir) / "students.csv", encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    started = time.perf_counter()
    students = []
    for school, grade, klass, no, name, gender, _birth, guardian, phone, _groups in rows:
        school_id = school_ids[school]
        students.append(
            Student(
                school_id=school_id, school_class_id=classes[(school_id, grade_of[grade], int(klass[:-1]))],
                student_no=no, name=name, gender="M" if gender == "男" else "F", guardian_name=guardian,
                guardian_phone=phone,
            )
        )  # fmt: skip
    with transaction.atomic():
        for start in range(0, len(students), 2000):
            batch = Student.objects.bulk_create(students[start : start + 2000])
            Student.history.bulk_history_create(batch, default_change_reason="baseline")
    return {"seconds": time.perf_counter() - started, "rows": len(students)}


PHASES = {
    "setup": phase_setup,
    "preview": lambda args: _import(args, dry_run=True),
    "import": lambda args: _import(args, dry_run=False),
    "reimport": lambda args: _import(args, dry_run=False),
    "baseline": phase_baseline,
}


def run_phase(args) -> None:
    setup_django(args.database_url)
    result = PHASES[args.phase](args)
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--format", choices=["csv", "xlsx"], default="csv")
    parser.add_argument("--database-url", default=f"sqlite:///{tempfile.gettempdir()}/xinqiao-import-bench.sqlite3")
    parser.add_argument("--workdir", default=tempfile.gettempdir())
    parser.add_argument("--phase", choices=list(PHASES))
    args = parser.parse_args()
    if args.phase:
        return run_phase(args)

    if args.database_url.startswith("sqlite:///"):
        for suffix in ("", "-wal", "-shm"):
            Path(args.database_url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)

    def run(phase: str) -> dict:
        command = [sys.executable, __file__, "--phase", phase, "--rows", str(args.rows), "--format", args.format,
                   "--database-url", args.database_url, "--workdir", args.workdir]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode:
            sys.exit(done.stderr)
        return json.loads(done.stdout.strip().splitlines()[-1])

    run("setup")
    results = {phase: run(phase) for phase in ("preview", "import", "reimport", "baseline")}
    vendor = "postgresql" if args.database_url.startswith("postgres") else "sqlite"
    print(f"machine: {platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()} · {vendor}")
    print(f"{args.rows} student rows from {args.format.upper()}")
    for phase, r in results.items():
        if "new" in r:
            detail = (
                f"new {r['new']} updated {r['updated']} unchanged {r['unchanged']} history {r['history_rows_written']}"
            )
        else:
            detail = f"rows {r['rows']}"
        rate = args.rows / r["seconds"]
        print(f"  {phase:<9} {r['seconds']:7.1f} s  {rate:8.0f} rows/s  peak {r['peak_mb']:6.0f} MB  {detail}")
    print(f"  import / baseline = {results['import']['seconds'] / results['baseline']['seconds']:.2f}×")


if __name__ == "__main__":
    main()
