from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from workflows.demo import build_case_demo, write_move_example


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{step} {n}" for step, n in counts.items()) or "-"


class Command(BaseCommand):
    help = "Open the demo district's flagged cases and work some through every step, so each demo login has tasks."

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=2026)
        parser.add_argument("--force", action="store_true", help="run even with DEBUG off (never on a real deployment)")

    def handle(self, *args, seed, force, **options):
        if not settings.DEBUG and not force:
            raise CommandError(
                "seed_case_demo writes synthetic cases as the demo logins; it runs only with DEBUG=1 (or --force)."
            )
        demo = build_case_demo(seed=seed)
        if demo["changed"]:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Demo cases: {demo['flags_delivered']} queued flags delivered, {demo['cases_opened']} cases "
                    f"opened one by one, {len(demo['worked'])} cases worked at {demo['school'] or '-'}."
                )
            )
        else:
            self.stdout.write("Demo cases already present; nothing changed.")
        if demo["note"]:
            self.stdout.write(f"  ({demo['note']})")
        for label in demo["worked"]:
            self.stdout.write(f"  worked: {label}")
        for label in demo["skipped"]:
            self.stdout.write(self.style.WARNING(f"  skipped (no flagged case left to use): {label}"))
        self.stdout.write("\nOpen tasks per step (demo district):")
        for step, n in demo["steps"].items():
            self.stdout.write(f"  {step:<24} {n}")
        if demo["logins"]:
            self.stdout.write("\nWhat each demo login has to do:")
        for username, lists in demo["logins"].items():
            self.stdout.write(f"  {username:<16} my tasks: {_counts(lists['inbox'])}")
            self.stdout.write(f"  {'':<16} to take:  {_counts(lists['queue'])}")
        move = write_move_example(settings.DEMO_OUTPUT_DIR)
        if move:
            self.stdout.write(
                f"\nA school move to try (the record follows the student): sign in as {move['school_admin']} "
                f"({move['to_school']}), import {move['path']} under Students, confirm the move under School moves; "
                f"then as {move['psychology_teacher']} accept case #{move['case']} in the inbox; as counselor "
                f"({move['from_school']}) the case is then read-only."
            )
