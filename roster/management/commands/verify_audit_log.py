from django.core.management.base import BaseCommand, CommandError

from roster import audit


class Command(BaseCommand):
    help = "Check the access log's hash chain and checkpoints; name the first broken entry (exit status 1 if any)."

    def handle(self, *args, **options):
        verdict = audit.verify()
        if not verdict.ok:
            raise CommandError(
                f"Access log broken at entry {verdict.broken_at}: {verdict.reason} ({verdict.entries} entries read)."
            )
        self.stdout.write(self.style.SUCCESS(f"Access log intact: {verdict.entries} entries, chain and checkpoints."))
