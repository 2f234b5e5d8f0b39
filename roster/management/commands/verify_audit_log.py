from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from roster import audit


class Command(BaseCommand):
    help = (
        "Check the access log's hash chain, its database checkpoints and its anchor file (settings.AUDIT_ANCHOR_FILE); "
        "name the first entry or anchor line that does not hold (exit status 1 if any)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--anchor-file",
            help="check against this copy of the anchor file, or a task worker's log with its anchor lines "
            "(e.g. the copy shipped off the host) instead of AUDIT_ANCHOR_FILE",
        )
        parser.add_argument(
            "--anchored-until",
            type=datetime.fromisoformat,
            help="only the anchor lines written until this time (ISO, e.g. 2026-12-01T02:30): a restored backup "
            "lacks the entries written after it",
        )

    def handle(self, *args, **options):
        until = options["anchored_until"]
        if until is not None and timezone.is_naive(until):
            until = timezone.make_aware(until)
        verdict = audit.verify(anchor_file=options["anchor_file"], anchored_until=until)
        if verdict.anchor_line is not None:
            raise CommandError(
                f"Access log contradicts its anchor file {verdict.anchor_file}, line {verdict.anchor_line}: "
                f"{verdict.reason} ({verdict.entries} entries read)."
            )
        if not verdict.ok:
            raise CommandError(
                f"Access log broken at entry {verdict.broken_at}: {verdict.reason} ({verdict.entries} entries read)."
            )
        if verdict.anchors is None:
            self.stderr.write(
                f"No anchor file at {verdict.anchor_file or '(AUDIT_ANCHOR_FILE is empty)'}: only the chain and the "
                "database checkpoints were checked."
            )
            self.stdout.write(
                self.style.SUCCESS(f"Access log intact: {verdict.entries} entries, chain and checkpoints.")
            )
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Access log intact: {verdict.entries} entries, chain, checkpoints and {verdict.anchors} anchor lines "
                f"({verdict.anchor_file})."
            )
        )
