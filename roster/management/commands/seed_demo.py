from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from roster.demo import DEMO_PASSWORD, build_demo_district


class Command(BaseCommand):
    help = (
        "Create the synthetic demo district once (12 schools, ~6,000 students) and print its logins. Every demo "
        "student has a synthetic national student number (全国学籍号) to type in a walk-through: G + the school code + "
        "the student number, e.g. G99010100012023040101 (roster.demo.demo_national_id)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--students-per-class", type=int, default=42)
        parser.add_argument("--seed", type=int, default=2026)
        parser.add_argument("--force", action="store_true", help="run even with DEBUG off (never on a real deployment)")

    def handle(self, *args, students_per_class, seed, force, **options):
        if not settings.DEBUG and not force:
            raise CommandError(
                "seed_demo creates accounts with a published password; it runs only with DEBUG=1 (or --force)."
            )
        result = build_demo_district(seed=seed, students_per_class=students_per_class)
        if result.created:
            self.stdout.write(
                self.style.SUCCESS(f"Demo district created: {result.schools} schools, {result.students} students.")
            )
        else:
            self.stdout.write("Demo district already present; nothing changed.")
        self.stdout.write(f"\nDemo logins (password for all: {DEMO_PASSWORD})")
        for login in result.logins:
            self.stdout.write(f"  {login.username:<18} {login.role}  ·  {login.scope}")
