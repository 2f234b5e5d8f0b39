from django.core.management.base import BaseCommand, CommandError

from roster import two_factor
from roster.models import User


class Command(BaseCommand):
    help = (
        "Print a one-time code with which a staff member sets up their authenticator app the first time (for "
        "superusers and anyone without an administrator in the system; others get theirs from the staff list)."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username, **options):
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No account named {username!r}.")
        try:
            code = two_factor.otp_enrolment_code_issue(actor=None, user=user)
        except two_factor.AlreadyEnrolled:
            raise CommandError(f"{username} already has an authenticator; nothing to enrol.") from None
        self.stdout.write(
            f"Enrolment code for {username}: {two_factor.code_groups(code)} "
            f"(works once, within {two_factor.ENROLMENT_CODE_HOURS} hours)"
        )
