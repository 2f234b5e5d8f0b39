from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from roster.models import User
from screening.import_mappings import AUTO, platforms
from screening.models import Campaign
from screening.results_import import ResultsImport, import_results


class Command(BaseCommand):
    help = "Import screening results (学校代码, 学号, PHQ9_1 … ASQ_5) into a campaign; scored like the portal."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--campaign", type=int, required=True)
        parser.add_argument("--user", help="import as this user (psychology roles; their scope applies)")
        parser.add_argument("--skip-invalid", action="store_true")
        parser.add_argument("--dry-run", action="store_true")
        parser.add_argument(
            "--platform", default=AUTO, choices=[AUTO, *platforms()],
            help="the mapping the file is read with (screening/platforms/); default: told by the headers",
        )  # fmt: skip

    def handle(self, *args, file, campaign, user, skip_invalid, dry_run, platform, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        campaign_obj = Campaign.objects.filter(pk=campaign).first()
        if campaign_obj is None:
            raise CommandError(f"No campaign {campaign}.")
        actor = User.objects.filter(username=user, is_active=True).first() if user else None
        if user and actor is None:
            raise CommandError(f"No active user “{user}”.")
        report = import_results(
            ResultsImport(
                campaign=campaign_obj, data=path.read_bytes(), filename=path.name, actor=actor,
                dry_run=dry_run, skip_invalid=skip_invalid, platform=platform,
            )
        )  # fmt: skip
        if report.refused:
            raise CommandError(report.refused)
        for error in report.errors:
            self.stderr.write(f"line {error.line} · {error.column} · “{error.value}”: {error.message}")
        summary = f"{report.total} rows, {report.new} new, {report.updated} changed, {report.unchanged} unchanged"
        if report.written:
            self.stdout.write(self.style.SUCCESS(f"Imported. {summary}"))
        elif report.error_lines:
            raise CommandError(f"Nothing imported: {len(report.error_lines)} rows have errors. {summary}")
        else:
            self.stdout.write(f"Checked, nothing written. {summary}")
