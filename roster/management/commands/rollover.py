"""`manage.py rollover --district 510402 --year 2026 [--preview | --undo]`: the school-year rollover (roster.rollover)
from the command line, over a district or a city (by division code), as the system or as --user (their scope)."""

from django.core.management.base import BaseCommand, CommandError
from django.http import Http404

from roster.models import City, District, Rollover, RolloverStatus, User, school_year_label
from roster.rollover import RolloverRefused, current_school_year, rollover_preview, rollover_run, rollover_undo


class Command(BaseCommand):
    help = (
        "Roll a district or a city into a new school year: every class up a grade, the top grade of each school's "
        "stage graduates. --preview shows what would change; --undo reverses the last run for that year."
    )

    def add_arguments(self, parser):
        where = parser.add_mutually_exclusive_group(required=True)
        where.add_argument("--district", help="the district's division code")
        where.add_argument("--city", help="the city's division code")
        parser.add_argument("--year", type=int, help="the calendar year the school year starts in (default: now's)")
        parser.add_argument("--user", help="act as this user: their scope applies and history names them")
        what = parser.add_mutually_exclusive_group()
        what.add_argument("--preview", action="store_true", help="show what would change; change nothing")
        what.add_argument("--undo", action="store_true", help="undo the applied run for this year and place")

    def handle(self, *args, district, city, year, user, preview, undo, **options):
        scope = (District if district else City).objects.filter(division_code=(district or city).strip()).first()
        if scope is None:
            raise CommandError(f"No {'district' if district else 'city'} with the division code “{district or city}”.")
        actor = None
        if user:
            actor = User.objects.filter(username=user, is_active=True).first()
            if actor is None:
                raise CommandError(f"No active user “{user}”.")
        year = year or current_school_year()
        try:
            if undo:
                self._undo(actor, scope, year)
            elif preview:
                self._show(rollover_preview(actor=actor, scope=scope, school_year=year))
            else:
                result = rollover_run(actor=actor, scope=scope, school_year=year)
                self._show(result.preview)
                self.stdout.write(self.style.SUCCESS(result.message) if result.run else result.message)
        except Http404:
            raise CommandError(f"{user} may not roll over {scope}.") from None
        except RolloverRefused as refusal:
            raise CommandError(str(refusal)) from None

    def _undo(self, actor, scope, year):
        field = "district" if isinstance(scope, District) else "city"
        run = Rollover.objects.filter(**{field: scope}, school_year=year, status=RolloverStatus.APPLIED).first()
        if run is None:
            raise CommandError(f"No applied rollover of {scope} into {school_year_label(year)}.")
        rollover_undo(actor=actor, run=run)
        self.stdout.write(self.style.SUCCESS(f"Undone: rollover #{run.pk} of {scope} into {school_year_label(year)}."))

    def _show(self, preview):
        self.stdout.write(f"{preview.scope} → {school_year_label(preview.school_year)}")
        self.stdout.write(f"{'school':<12} {'up':>5} {'grad':>5} {'students up':>12} {'graduating':>11}  state")
        for s in preview.schools:
            state = "done already" if s.skipped else ("held back" if s.problems else "ready")
            self.stdout.write(
                f"{s.code:<12} {s.classes_up:>5} {s.classes_graduating:>5} {s.students_up:>12} "
                f"{s.students_graduating:>11}  {state}"
            )
            for line in [*s.problems, *s.notes]:
                self.stdout.write(f"    {line}")
        totals = preview.totals()
        self.stdout.write(
            f"ready: {len(preview.ready)} schools, {totals['classes_up']} classes up, "
            f"{totals['classes_graduating']} classes and {totals['students_graduating']} students graduating"
        )
