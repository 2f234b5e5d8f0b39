from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from roster.importing import ImportRequest, detect_kind, run_import
from roster.models import School, User


class Command(BaseCommand):
    help = (
        "Import students, classes or staff from an XLSX, XLS or CSV file. Writes nothing when any row has an error, "
        "unless --skip-invalid is given (valid rows imported, bad rows still listed)."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--school", help="school code for files without a 学校代码 column")
        parser.add_argument("--kind", choices=["students", "classes", "staff"], help="default: from the headers")
        parser.add_argument("--user", help="import as this user: their scope applies and history names them")
        parser.add_argument("--skip-invalid", action="store_true")
        parser.add_argument("--dry-run", action="store_true", help="check and report only")

    def handle(self, *args, file, school, kind, user, skip_invalid, dry_run, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        data = path.read_bytes()
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
                kind=kind or detect_kind(data, path.name),
                data=data,
                filename=path.name,
                actor=actor,
                school=school_obj,
                dry_run=dry_run,
                skip_invalid=skip_invalid,
            )
        )
        if report.refused:
            raise CommandError(report.refused)
        for error in report.errors:
            self.stderr.write(f"line {error.line} · {error.column} · “{error.value}”: {error.message}")
        summary = (
            f"{report.kind}: {report.total} rows, {report.new} new, {report.updated} changed, "
            f"{report.unchanged} unchanged, {len(report.error_lines)} with errors, "
            f"{report.classes_created} classes created"
        )
        if report.written:
            self.stdout.write(self.style.SUCCESS(f"Imported. {summary}"))
        elif dry_run and not report.error_lines:
            self.stdout.write(f"Checked, nothing written (dry run). {summary}")
        if report.error_lines and not report.written:
            raise CommandError(f"Nothing imported: {len(report.error_lines)} rows have errors. {summary}")
