"""A case that turns red tells the district centre at once (DESIGN §3: red is "district notified at once").

A red screening result already alerts the district (screening.alerts); this covers a case that becomes red any other
way: a triage that raises the tier, an approved escalation, a staff referral opened red. The service queues
`red_case_notify` on the task worker after its transaction commits; the task re-reads the case, so a case no longer
red by then tells nobody. Messages name the case number, school and the masked name, never answers or notes.
May import: roster, screening.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils.translation import gettext as _

from roster.masking import mask_name
from roster.notifications import notify
from roster.roles import Role
from roster.scoping import holders_over
from screening.definitions import RiskTier

logger = logging.getLogger(__name__)

RED_CASE_KIND = "case_red"


def red_case_enqueue(case, previous_tier: str, why: str) -> bool:
    """Queue the district's notice when `case` has just become red (it was not red before). Returns whether queued."""
    if case.tier != RiskTier.RED or previous_tier == RiskTier.RED:
        return False
    from django_q.tasks import async_task

    case_id, history_count = case.pk, case.history.count()
    transaction.on_commit(
        lambda: async_task("cases.notices.red_case_notify", case_id, why, history_count, group="alerts")
    )
    return True


def red_case_notify(case_id: int, why: str, version: int = 0) -> int:
    """Tell the district centre of the case's district that the case is red now. Idempotent per case version."""
    from cases.models import Case

    case = Case.objects.select_related("student__school__district", "student__school_class").get(pk=case_id)
    if case.tier != RiskTier.RED:
        return 0
    student = case.student
    centre = holders_over(student, [Role.DISTRICT_CENTRE])
    told = notify(
        centre, kind=RED_CASE_KIND, subject_key=f"case:{case.pk}:{version}", urgent=True,
        title=_("Red case #%(case)s at %(school)s") % {"case": case.pk, "school": student.school},
        body=_("%(student)s (%(class)s) is now red: %(why)s. The school's team is working the case.")
        % {"student": mask_name(student.name), "class": student.school_class, "why": why},
    )  # fmt: skip
    logger.info("case %s: red notice to %s district centre staff", case.pk, told)
    return told


EMERGENCY_ACCESS_KIND = "emergency_access"


def emergency_access_enqueue(grant) -> None:
    """Queue the notice of an emergency access, sent once the grant is committed (a rolled-back grant tells nobody)."""
    from django_q.tasks import async_task

    grant_id = grant.pk
    transaction.on_commit(lambda: async_task("cases.notices.emergency_access_notify", grant_id, group="alerts"))


def emergency_access_notify(grant_id: int) -> int:
    """Tell the district centre of the case's district and the case school's principals who broke the glass on which
    case, why and until when. Idempotent per grant."""
    from django.utils import timezone

    from cases.models import EmergencyAccess

    related = ("user", "case__school__district", "case__student__school_class")
    grant = EmergencyAccess.objects.select_related(*related).get(pk=grant_id)
    case, student, user = grant.case, grant.case.student, grant.user
    recipients = holders_over(case.school, [Role.DISTRICT_CENTRE, Role.PRINCIPAL]).exclude(pk=user.pk)
    who = str(user)  # name（username）: the district knows whom to call
    told = notify(
        recipients, kind=EMERGENCY_ACCESS_KIND, subject_key=f"emergency_access:{grant.pk}", urgent=True,
        title=_("Emergency access to case #%(case)s by %(user)s") % {"case": case.pk, "user": who},
        body=_("%(user)s opened case #%(case)s at %(school)s (%(student)s, %(class)s) under emergency access, until "
               "%(until)s. Reason: %(reason)s. Every reading is logged.")
        % {"user": who, "case": case.pk, "school": case.school, "student": mask_name(student.name),
           "class": student.school_class, "until": timezone.localtime(grant.expires_at).strftime("%Y-%m-%d %H:%M"),
           "reason": grant.reason},
    )  # fmt: skip
    logger.info("emergency access %s to case %s: notice to %s staff", grant.pk, case.pk, told)
    return told
