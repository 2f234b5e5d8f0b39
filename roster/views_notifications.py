"""The signed-in user's own notifications: the list (newest first, unread highlighted) and marking them read.

A notification can name a student (a red alert's masked name, class and student number): each page shown is logged
as a list of the notifications on it (roster.audit).
"""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from roster import audit
from roster.models import AccessAction, Notification
from roster.notifications import notification_mark_read, notifications_for, notifications_mark_all_read

PAGE_SIZE = 50


@never_cache
@login_required
def notification_list(request):
    page = Paginator(notifications_for(request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    audit.record(AccessAction.LIST, object_type=audit.label(Notification), object_ids=[n.pk for n in page])
    return render(request, "roster/notifications.html", {"page": page})


@login_required
@require_POST
def notification_read(request, pk: int):
    """Mark read, then follow the notification's link (a path on this site) or come back to the list."""
    try:
        notification = notification_mark_read(request.user, pk)
    except Notification.DoesNotExist:
        raise Http404 from None
    if notification.link and url_has_allowed_host_and_scheme(
        notification.link, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(notification.link)
    return redirect("notifications")


@login_required
@require_POST
def notification_read_all(request):
    notifications_mark_all_read(request.user)
    return redirect("notifications")
