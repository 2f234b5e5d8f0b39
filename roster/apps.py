from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RosterConfig(AppConfig):
    name = "roster"
    verbose_name = _("Organisation and roster")

    def ready(self):
        from django.contrib.auth import signals

        from roster import audit

        # Every sign-in, sign-out and failed sign-in goes to the access log.
        signals.user_logged_in.connect(audit.on_logged_in, dispatch_uid="audit_login")
        signals.user_logged_out.connect(audit.on_logged_out, dispatch_uid="audit_logout")
        signals.user_login_failed.connect(audit.on_login_failed, dispatch_uid="audit_login_failed")

        from django.db.models.signals import post_delete, post_migrate, post_save, pre_save

        # The database cache's table (settings.CACHES without Redis): made by every `migrate`, so no deployment
        # forgets it, also one that later drops Redis.
        post_migrate.connect(create_cache_tables, sender=self, dispatch_uid="roster_cache_tables")

        from roster import sessions, two_factor
        from roster import signals as roster_signals
        from roster.models import RoleAssignment, User

        # Sessions: the sign-in time (10-hour lifetime), the session recorded under its person (ended all at once
        # when they are deactivated or change password), and whether they have an authenticator.
        signals.user_logged_in.connect(sessions.on_logged_in, dispatch_uid="sessions_login")
        signals.user_logged_out.connect(sessions.on_logged_out, dispatch_uid="sessions_logout")
        signals.user_logged_in.connect(two_factor.on_logged_in, dispatch_uid="two_factor_login")
        post_save.connect(sessions.on_user_saved, sender=User, dispatch_uid="sessions_user_saved")
        # A removed role is announced (roster.signals.role_removed) for the apps above roster.
        post_delete.connect(roster_signals.on_assignment_deleted, sender=RoleAssignment, dispatch_uid="role_deleted")
        pre_save.connect(roster_signals.on_assignment_saving, sender=RoleAssignment, dispatch_uid="role_saving")
        post_save.connect(roster_signals.on_assignment_saved, sender=RoleAssignment, dispatch_uid="role_saved")


def create_cache_tables(sender, using="default", verbosity=1, **kwargs):
    from django.core.management import call_command

    call_command("createcachetable", database=using, verbosity=verbosity)
