"""Notifying staff: in-app notifications (the link in the top bar) and their email copies.

Every app notifies people through `notify()` and never writes Notification rows itself. A notification carries no
screening answers and no full names: a masked name, the class and a link (DESIGN §5, README "Who sees what").
Log lines carry ids and counts only.

May import: roster only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.core import mail
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from roster.models import Notification, User

logger = logging.getLogger(__name__)


class NotificationEmailsFailed(Exception):
    """Some emails could not be sent; their rows stay un-emailed, so running the sender again sends them."""


def _checked_link(link: str) -> str:
    # The notifications page redirects to the link: only a path on this site, never another host ("//evil").
    if link and (not link.startswith("/") or link.startswith("//") or "\\" in link):
        raise ValueError(f"a notification link is a path on this site, not {link!r}")
    return link


def notify(
    recipients: Iterable[User | int], *, kind: str, title: str, body: str = "", link: str = "", subject_key: str,
    urgent: bool = False,
) -> int:  # fmt: skip
    """Notify each recipient once about `subject_key`; returns how many were newly notified.

    Access: services and tasks, after deciding who may know about the subject. Audit: the rows themselves (who was
    told what and when, when they read it, when it was emailed). Idempotent: a recipient already notified of
    (kind, subject_key) is skipped, and the unique constraint keeps a concurrent run from adding a second row.
    """
    ids = {getattr(r, "pk", r) for r in recipients}
    if not ids:
        return 0
    link = _checked_link(link)
    already = set(
        Notification.objects.filter(kind=kind, subject_key=subject_key, recipient_id__in=ids).values_list(
            "recipient_id", flat=True
        )
    )
    rows = [
        Notification(
            recipient_id=pk, kind=kind, title=title[:200], body=body, link=link, subject_key=subject_key, urgent=urgent
        )
        for pk in sorted(ids - already)
    ]
    Notification.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def notification_emails_send(
    *, kind: str, subject_key: str, subject: str, body: str, recipients: Iterable[User | int] | None = None
) -> int:
    """Email the notifications of (kind, subject_key) not emailed yet to recipients with an address; returns the count.

    Access: tasks, right after `notify()`. Audit: `emailed_at` on each row. A re-run emails nobody twice: each row is
    claimed before its email goes out; a failed email is released so that running the sender again sends it, and
    the others still go out first (then NotificationEmailsFailed is raised).
    """
    pending = Notification.objects.filter(kind=kind, subject_key=subject_key, emailed_at__isnull=True).exclude(
        recipient__email=""
    )
    if recipients is not None:
        pending = pending.filter(recipient_id__in={getattr(r, "pk", r) for r in recipients})
    pending = list(pending.select_related("recipient").order_by("pk"))
    if not pending:
        return 0
    sent, failed = 0, []
    with mail.get_connection() as connection:
        for notification in pending:
            if not Notification.objects.filter(pk=notification.pk, emailed_at__isnull=True).update(
                emailed_at=timezone.now()
            ):
                continue  # another run claimed it
            message = mail.EmailMessage(subject, body, to=[notification.recipient.email], connection=connection)
            try:
                message.send()
            except Exception:
                Notification.objects.filter(pk=notification.pk).update(emailed_at=None)
                failed.append(notification.pk)
                logger.warning("email for notification %s failed", notification.pk, exc_info=True)
            else:
                sent += 1
    if failed:
        raise NotificationEmailsFailed(f"emails for notifications {failed} failed; a retry sends them")
    return sent


def notifications_for(user) -> QuerySet[Notification]:
    """The user's own notifications, newest first.

    Access: the signed-in user, for themselves only; nobody reads another person's notifications.
    """
    return Notification.objects.filter(recipient_id=user.pk).order_by("-created_at", "-pk")


def notification_unread_counts(user) -> dict[str, int]:
    """Unread notifications of the user: {"total": n, "urgent": m} (one query)."""
    if not getattr(user, "is_authenticated", False):
        return {"total": 0, "urgent": 0}
    return (
        notifications_for(user)
        .filter(read_at__isnull=True)
        .aggregate(total=Count("pk"), urgent=Count("pk", filter=Q(urgent=True)))
    )


def notification_mark_read(user, pk: int) -> Notification:
    """Mark one of the user's own notifications read (again: no change) and return it.

    Access: the recipient only; another person's notification raises Notification.DoesNotExist like a missing one.
    Audit: `read_at`.
    """
    notification = notifications_for(user).get(pk=pk)
    if notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at"])
    return notification


def notifications_mark_all_read(user) -> int:
    """Mark all of the user's unread notifications read; returns how many. Access: the recipient only."""
    return notifications_for(user).filter(read_at__isnull=True).update(read_at=timezone.now())
