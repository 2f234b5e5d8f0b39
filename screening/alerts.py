"""Red alerts: a red screening result tells the school's psychology teachers and principal, and the district centre,
at once (in the app and by email), so that someone sees the student before they leave the room (DESIGN §3: red is
"district notified at once").

The `student_flagged` receiver only queues the django-q2 task `screening.tasks.red_alert_send`; the task re-reads
the result, so a result lowered in the meantime alerts nobody. Messages carry the masked name, school, class and a
link, never answers, scores or the full name. Log lines carry ids and counts only.

May import: roster, screening.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from roster.masking import mask_name
from roster.notifications import (
    NotificationEmailsFailed,
    notification_emails_send,
    notify,
)
from roster.roles import Role
from roster.scoping import holders_over
from screening.definitions import RiskTier
from screening.models import ScreeningResult

logger = logging.getLogger(__name__)

ALERT_KIND = "red_alert"
# A failed email is tried again after these delays, then given up (the in-app notification stands). Failed tasks are
# acknowledged (Q_CLUSTER ack_failures), so django-q2 itself would not run the task again.
EMAIL_RETRY_MINUTES = (1, 5, 15, 60)
# Who is told of a red result at once, for information: the district centre (DESIGN §3: red is "district notified
# at once"). The school's people are reached by the crisis alert (cases.alerts): the psychology teacher on duty first,
# climbing until someone takes it; the proctor gets a care instruction. A deployment may widen this with
# settings.SCREENING_ALERT_ROLES.
DEFAULT_ALERT_ROLES = frozenset({Role.DISTRICT_CENTRE})
# The care instruction to a class's proctor ("keep this student; a psychology teacher is coming"), sent by
# cases.alerts with the subject CARE_PREFIX + result id; the proctor page shows it. It never carries a result.
CARE_KIND = "care_instruction"
CARE_PREFIX = "care:"
# Who may watch a class's completion live during a screening (the proctor page); they get the proctor page's link.
PROCTOR_ROLES = frozenset({Role.HOMEROOM_TEACHER, Role.PSYCHOLOGY_TEACHER, Role.PRINCIPAL})


def alert_roles() -> frozenset[str]:
    return frozenset(getattr(settings, "SCREENING_ALERT_ROLES", DEFAULT_ALERT_ROLES))


def alert_subject_key(result_id: int) -> str:
    return f"screening_result:{result_id}"


# --- Queueing ---------------------------------------------------------------------------------------------------


def red_alert_enqueue(result: ScreeningResult) -> bool:
    """Queue the red alert of a just-recorded result; other tiers alert nobody here (their cases follow). Returns
    whether a task was queued.

    Access: the `student_flagged` receiver, after commit. Audit: the task's own record in django-q2.
    """
    if result.tier != RiskTier.RED:
        return False
    from django_q.tasks import async_task

    async_task("screening.tasks.red_alert_send", result.pk, group=ALERT_KIND)
    return True


def on_student_flagged(sender, result, in_batch: bool = False, **kwargs) -> None:
    if not in_batch:  # a batch's results were queued by on_students_flagged
        _enqueue_safely(result)


def on_students_flagged(sender, results, **kwargs) -> None:
    for result in results:
        _enqueue_safely(result)


def _enqueue_safely(result) -> None:
    # A broken queue must not stop the other receivers (the case workflow) or fail the student's submission.
    try:
        red_alert_enqueue(result)
    except Exception:
        logger.exception("red alert for screening result %s could not be queued", result.pk)


# --- Sending (in the task worker) -------------------------------------------------------------------------------


def _texts(result: ScreeningResult, *, with_number: bool) -> tuple[str, str]:
    """Title and text in the active language: masked name, school and class; never answers or the full name."""
    student = result.student
    params = {
        "student": mask_name(student.name),
        "number": student.student_no,
        "school": str(student.school),
        "class": str(student.school_class),
        "campaign": result.campaign.name,
    }
    title = _("Red alert: %(student)s, %(school)s, %(class)s") % params
    if with_number:
        who = _("%(student)s (student number %(number)s), %(school)s, %(class)s") % params
    else:
        who = _("%(student)s, %(school)s, %(class)s") % params
    body = _(
        "A screening answer in “%(campaign)s” needs attention now: %(who)s. See the student in person before they "
        "leave; keep them in the room until a psychology teacher arrives."
    ) % {"campaign": params["campaign"], "who": who}
    return title, body


def _email(result: ScreeningResult, url: str) -> tuple[str, str]:
    """Subject and body in Chinese first, then English, whatever language the worker runs in."""
    parts, titles = [], []
    for language in ("zh-hans", "en"):
        with translation.override(language):
            # No student number in email: it leaves the system; the link leads to it behind a login.
            title, body = _texts(result, with_number=False)
            footer = _("Open: %(url)s") % {"url": url}
            note = _("This message contains no screening answers.")
        titles.append(title)
        parts.append(f"{body}\n\n{footer}\n{note}")
    return " / ".join(titles), "\n\n----\n\n".join(parts)


def _email_retry_schedule(result_id: int, attempt: int) -> None:
    from django_q.models import Schedule
    from django_q.tasks import schedule

    if attempt > len(EMAIL_RETRY_MINUTES):
        logger.error("red alert for screening result %s: emails still failing after %d attempts", result_id, attempt)
        return
    with contextlib.suppress(IntegrityError):  # a concurrent run scheduled it already (the name is the key)
        schedule(
            "screening.tasks.red_alert_send", result_id, attempt + 1, name=f"red alert {result_id} retry {attempt}",
            schedule_type=Schedule.ONCE, next_run=timezone.now() + timedelta(minutes=EMAIL_RETRY_MINUTES[attempt - 1]),
        )  # fmt: skip


def red_alert_send(result_id: int, attempt: int = 1) -> int:
    """Notify the people who must see a red-tier student now (in the app and by email); returns how many were newly
    notified.

    Access: the task worker only. Audit: the Notification rows (who was told, when; read and emailed times); log
    lines carry ids and counts. Idempotent: a re-run notifies and emails nobody twice. A result that is no longer red
    (re-scored) or gone alerts nobody. Failed emails are tried again later (EMAIL_RETRY_MINUTES) by a scheduled run.
    """
    result = (
        ScreeningResult.objects.select_related("campaign", "student__school__district", "student__school_class")
        .filter(pk=result_id)
        .first()
    )
    if result is None or result.tier != RiskTier.RED:
        logger.info("red alert for screening result %s skipped: not red (any more)", result_id)
        return 0
    student, roles = result.student, alert_roles()
    proctors = set(holders_over(student, roles & PROCTOR_ROLES).values_list("pk", flat=True))
    others = set(holders_over(student, roles - PROCTOR_ROLES).values_list("pk", flat=True)) - proctors
    if not proctors | others:
        logger.warning("red alert for screening result %s: nobody holds an alert role over student %s", result_id,
                       student.pk)  # fmt: skip
        return 0
    key = alert_subject_key(result.pk)
    proctor_path = reverse(
        "screening:proctor", kwargs={"campaign_id": result.campaign_id, "class_id": student.school_class_id}
    )
    # Proctors get the class's proctor page; the district centre cannot open it and gets its notifications page.
    groups = [
        (recipients, path, link)
        for recipients, path, link in ((proctors, proctor_path, proctor_path), (others, reverse("notifications"), ""))
        if recipients
    ]
    with translation.override(settings.LANGUAGE_CODE):  # stored once, in the working language
        title, body = _texts(result, with_number=True)
    # Everybody is notified in the app before any email goes out: a mail server down delays nobody's alert.
    created = sum(
        notify(recipients, kind=ALERT_KIND, title=title, body=body, link=link, subject_key=key, urgent=True)
        for recipients, _path, link in groups
    )
    emailed, failure = 0, None
    for recipients, path, _link in groups:
        subject, text = _email(result, f"{settings.SITE_URL}{path}")
        try:
            emailed += notification_emails_send(
                kind=ALERT_KIND, subject_key=key, subject=subject, body=text, recipients=recipients
            )
        except NotificationEmailsFailed as error:  # send the other group's emails first
            failure = error
    logger.info(
        "red alert for screening result %s: %d recipients, %d newly notified, %d emailed",
        result_id, len(proctors | others), created, emailed,
    )  # fmt: skip
    if failure is not None:
        _email_retry_schedule(result_id, attempt)
        raise failure  # the task shows as failed in the admin's task list
    return created
