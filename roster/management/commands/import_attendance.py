from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from roster.attendance import AttendanceImport  # noqa: F401 (registers the "attendance" import)
from roster.importing import ImportRequest, run_import
from roster.models import School, User


class Command(BaseCommand):
    help = (
        "Import a daily absence list (学校代码, 学号, 日期, 类型: 病假/事假/旷课/未说明) from XLSX, XLS or CSV, "
        "then check the care rules for its students. Writes nothing when any row has an error, unless --skip-invalid "
        "is given (valid rows imported, bad rows still listed)."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--school", help="school code for files without a 学校代码 column")
        parser.add_argument("--user", help="import as this user: their scope applies and the rows name them")
        parser.add_argument("--skip-invalid", action="store_true")
        parser.add_argument("--dry-run", action="store_true", help="check and report only")

    def handle(self, *args, file, school, user, skip_invalid, dry_run, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        actor = None
        if user:
            actor = User.objects.filter(username=user, is_active=True).first()
            if actor is None:
                raise CommandError(f"No active user “{user}”.")
        school_obj = None
        if school:
            school_obj = School.objects.filter(code=school.strip()).first()
            if school_obj is None:
                raise CommandError(f"Unknown school code “{school}”.")
        report = run_import(
            ImportRequest(
                kind="attendance", data=path.read_bytes(), filename=path.name, actor=actor, school=school_obj,
                dry_run=dry_run, skip_invalid=skip_invalid,
            )
        )  # fmt: skip
        if report.refused:
            raise CommandError(report.refused)
        for error in report.errors:
            self.stderr.write(f"line {error.line} · {error.column} · “{error.value}”: {error.message}")
        summary = (
            f"attendance: {report.total} rows, {report.new} new, {report.updated} changed, "
            f"{report.unchanged} unchanged, {len(report.error_lines)} with errors"
        )
        if report.written:
            self.stdout.write(
                self.style.SUCCESS(f"Imported. {summary}, {report.signals_raised} absence signals raised")
            )
        elif dry_run and not report.error_lines:
            self.stdout.write(f"Checked, nothing written (dry run). {summary}")
        elif not report.error_lines:
            self.stdout.write(f"Nothing to import. {summary}")
        if report.error_lines and not report.written:
            raise CommandError(f"Nothing imported: {len(report.error_lines)} rows have errors. {summary}")
