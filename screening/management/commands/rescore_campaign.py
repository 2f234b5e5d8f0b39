from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError

from roster.models import User
from screening.models import Campaign, RuleSet
from screening.rescoring import RescoreRefused, campaign_rescore


class Command(BaseCommand):
    help = (
        "Re-score every stored result of a campaign under another rule-set version (pins the campaign to it). "
        "Changed results keep their earlier values in history."
    )

    def add_arguments(self, parser):
        parser.add_argument("--campaign", type=int, required=True)
        parser.add_argument("--ruleset", required=True, metavar="CODE:VERSION", help="e.g. adolescent-default:2")
        parser.add_argument(
            "--user", required=True, help="act as this user (city admin or city centre), recorded in the history"
        )
        parser.add_argument("--dry-run", action="store_true", help="count what would change, write nothing")

    def handle(self, *args, campaign, ruleset, user, dry_run, **options):
        code, _sep, version = ruleset.rpartition(":")
        if not code or not version.isdigit():
            raise CommandError(f"--ruleset must be CODE:VERSION, e.g. adolescent-default:2 (got “{ruleset}”).")
        ruleset_obj = RuleSet.objects.filter(code=code, version=int(version)).first()
        if ruleset_obj is None:
            raise CommandError(f"No rule set {code} version {version}; add it first (load_instruments or the admin).")
        campaign_obj = Campaign.objects.filter(pk=campaign).first()
        if campaign_obj is None:
            raise CommandError(f"No campaign {campaign}.")
        actor = User.objects.filter(username=user, is_active=True).first()
        if actor is None:
            raise CommandError(f"No active user “{user}”.")
        try:
            report = campaign_rescore(actor=actor, campaign=campaign_obj, ruleset=ruleset_obj, dry_run=dry_run)
        except PermissionDenied as denied:
            raise CommandError(str(denied) or "Permission denied.") from None
        except RescoreRefused as refused:
            raise CommandError(str(refused)) from None
        tiers = ", ".join(
            f"{tier} {report.tiers_before[tier]} → {report.tiers_after[tier]}" for tier in report.tiers_before
        )
        verb = "would change" if dry_run else "changed"
        self.stdout.write(
            self.style.SUCCESS(
                f"{report.ruleset_before} → {report.ruleset_after}: {report.total} results, {verb} "
                f"{report.changed}, tier rose for {report.rose}. Tiers: {tiers}."
            )
        )
