"""Template context for every page: the signed-in user's unread notifications, for the top bar.

Lazy: the count is queried only when a template shows it (base.html does; the admin does not).
"""

from django.utils.functional import SimpleLazyObject

from roster.notifications import notification_unread_counts


def notifications(request) -> dict:
    return {"unread_notifications": SimpleLazyObject(lambda: notification_unread_counts(request.user))}
