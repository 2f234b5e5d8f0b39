"""The administration site, scoped: who may enter is decided by roster.scoping, not by Django's is_staff flag."""

from functools import wraps

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop

from roster import scoping


class ScopedAdminSite(admin.AdminSite):
    site_header = _("Student mental health: administration")
    site_title = _("Administration")
    index_title = _("Organisation, staff and rosters")
    enable_nav_sidebar = False

    def has_permission(self, request) -> bool:
        return request.user.is_active and scoping.can_use_admin(request.user)

    def admin_view(self, view, cacheable=False):
        inner = super().admin_view(view, cacheable)

        @wraps(inner)
        def guarded(request, *args, **kwargs):
            # Signed in but not an admin role (a teacher typing /admin/): a plain 403, not a login loop.
            if request.user.is_authenticated and not self.has_permission(request):
                # The same answer for every admin address, so it tells nothing of what is there (logged by
                # roster.audit's middleware).
                raise PermissionDenied
            return inner(request, *args, **kwargs)

        return guarded

    def index(self, request, extra_context=None):
        """The school moves' entry says how many wait for this admin's decision (roster.moves): on the index only,
        not in the app list every admin page builds."""
        response = super().index(request, extra_context)
        for app in response.context_data.get("app_list", []):
            for model in app["models"]:
                if model.get("object_name") == "SchoolMove":
                    from roster.moves import pending_moves_to_decide

                    waiting = pending_moves_to_decide(request.user).count()
                    if waiting:
                        model["name"] = _("%(name)s (%(count)d waiting for review)") % {
                            "name": model["name"],
                            "count": waiting,
                        }
        return response

    def login(self, request, extra_context=None):
        # One login page for the whole product.
        return redirect_to_login(request.GET.get("next", request.get_full_path()), settings.LOGIN_URL)


# Django 5.2's own Chinese catalog lacks the admin index's visually hidden table headers (read out by screen
# readers): marked here so that `makemessages` keeps their translations in ours, which comes first.
DJANGO_ADMIN_STRINGS_MISSING_IN_ZH = (
    gettext_noop("Model name"),
    gettext_noop("Add link"),
    gettext_noop("Change or view list link"),
)
