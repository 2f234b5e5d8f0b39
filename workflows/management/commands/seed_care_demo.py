"""Demo data for care beyond screening (issue 20), after seed_demo, seed_screening_demo and seed_case_demo: mentors and
their talks, home visits, special-group help records, absences and a leave, concerns in the signal queue, a teacher
checklist. Synthetic, idempotent (a second run adds nothing)."""

from importlib import import_module

from django.core.management.base import BaseCommand
from django.db import transaction

# Each part's seed(out) lives beside the code it shows.
PARTS = (
    "workflows.demo_mentoring",
    "workflows.demo_ledgers",
    "workflows.demo_attendance",
    "screening.demo_checklists",
    "workflows.demo_signals",
)


class Command(BaseCommand):
    help = "Seed the demo's care data (mentors, home visits, help records, absences, concerns)."

    def handle(self, *args, **options):
        for part in PARTS:
            with transaction.atomic():
                import_module(part).seed(self.stdout)
