from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from screening.demo import build_screening_demo


class Command(BaseCommand):
    help = "Add the demo district's screening: one open campaign, synthetic results, a class left to answer live."

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=2026)
        parser.add_argument("--force", action="store_true", help="run even with DEBUG off (never on a real deployment)")

    def handle(self, *args, seed, force, **options):
        if not settings.DEBUG and not force:
            raise CommandError("seed_screening_demo writes synthetic screening results; it runs only with DEBUG=1.")
        demo = build_screening_demo(seed=seed)
        state = "created" if demo.created else "already present; nothing changed"
        self.stdout.write(f"Demo campaign “{demo.campaign.name}” {state}: {demo.results} results.")
        self.stdout.write(
            f"Answer live: sign in as school_admin, print the access slips of {demo.live_class}, "
            f"then open {settings.SCREENING_PORTAL_URL} on a phone."
        )
