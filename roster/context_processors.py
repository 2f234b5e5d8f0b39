"""Template context for every page: the signed-in user's unread notifications, for the top bar.

Lazy: the count is queried only when a template shows it (base.html does; the admin does not).
"""

from django.utils.functional import SimpleLazyObject

from roster.notifications import notification_unread_counts


def notifications(request) -> dict:
    return {"unread_notifications": SimpleLazyObject(lambda: notification_unread_counts(request.user))}


def duty_roster(request) -> dict:
    """The top bar's "duty roster" link, for the people who keep a duty table: principals and district centres."""

    def link() -> str:
        from django.urls import reverse

        from roster.roles import Role
        from roster.scoping import scope_for

        user = getattr(request, "user", None)
        if user is None or not scope_for(user).roles & {Role.PRINCIPAL, Role.DISTRICT_CENTRE}:
            return ""
        return reverse("duty")

    return {"duty_roster_url": SimpleLazyObject(link)}
