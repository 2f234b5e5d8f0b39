from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from screening.definitions import DefinitionError
from screening.services import definitions_load


class Command(BaseCommand):
    help = "Store the shipped screening instruments and tiering rule sets (or the given YAML files). Idempotent."

    def add_arguments(self, parser):
        parser.add_argument("--instrument", action="append", type=Path, help="an instrument YAML file (repeatable)")
        parser.add_argument("--ruleset", action="append", type=Path, help="a rule-set YAML file (repeatable)")

    def handle(self, *args, instrument, ruleset, **options):
        try:
            report = definitions_load(instrument_files=instrument, ruleset_files=ruleset)
        except DefinitionError as error:
            raise CommandError(str(error)) from None
        for label in report.created:
            self.stdout.write(self.style.SUCCESS(f"added {label}"))
        if report.unchanged:
            self.stdout.write(f"already stored: {', '.join(report.unchanged)}")
