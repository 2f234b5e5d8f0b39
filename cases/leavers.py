"""The case of a student who left the system (issue 19 item 5: 转出本市, 毕业 with no next school, 退学; 休学 is not
leaving): its clocks stop, the district centre hears of an orange or red one at once, and the team then hands it
over outside the system or proposes its closure; a student enrolled again (or found at another school) gets the
clocks back, moved on by the time they stood still. Nothing is deleted.

`Case.paused_at` is the one mark: the overdue sweep (workflows.deadlines), the crisis alerts' climbing (cases.alerts)
and the lists of overdue steps all skip a case that has it. The flow side (the "hand over or close" task, the task
clocks moved on) is workflows.leavers'; it calls these.
May import: roster, screening.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from cases import access
from cases.models import (
    ACTIVE_STATUSES,
    Agency,
    AlertStatus,
    Case,
    CaseStatus,
    CoordinationEntry,
    CrisisAlert,
    TeamSeat,
)
from cases.services import _save
from roster.masking import mask_name
from roster.models import LEAVING_STATUSES, StudentStatus
from roster.notifications import notify
from roster.roles import Role
from roster.scoping import holders_over
from screening.definitions import RiskTier

logger = logging.getLogger(__name__)

LEAVER_KIND = "case_leaver"  # the district centre's notice of an orange or red case whose student left
CHUNK = 500  # student ids per statement (SQLite's bound parameters; a rollover graduates a city's top grades)


def _chunks(ids: Iterable[int]) -> Iterator[list[int]]:
    ids = sorted(set(ids))
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def cases_pause_for_leavers(*, student_ids: Iterable[int], status: str, actor=None, now: datetime | None = None
                            ) -> list[Case]:  # fmt: skip
    """Stop the clocks of the leavers' active cases (paused_at = now), in a few statements whatever their number.
    A case already paused keeps its first moment. Returns the cases paused now, each with its student and school.

    Access: the system (roster's `students_left`, inside the transaction that wrote the statuses). Audit: a history
    row per case with the acting user and the reason naming the status.
    """
    if status not in LEAVING_STATUSES:
        raise ValueError(f"{status!r} is not leaving the system")
    now = now or timezone.now()
    paused: list[Case] = []
    for chunk in _chunks(student_ids):
        cases = list(
            Case.objects.select_for_update(of=("self",))
            .filter(student_id__in=chunk, status__in=ACTIVE_STATUSES, paused_at__isnull=True)
            .select_related("student__school_class", "school__district")
            .order_by("pk")
        )
        if not cases:
            continue
        Case.objects.filter(pk__in=[case.pk for case in cases]).update(paused_at=now)
        for case in cases:
            case.paused_at = now
        Case.history.bulk_history_create(
            cases, update=True, default_user=actor, default_date=now,
            default_change_reason=f"clocks stopped: the student left ({status})",
        )  # fmt: skip
        paused.extend(cases)
    if paused:
        logger.info("%s cases paused: their students left (%s)", len(paused), status)
    return paused


def leaver_notice(case: Case, *, status: str, link: str) -> int:
    """An orange or red case whose student left: the district centre of the case's school is told at once (the masked
    name, the school, the case's link), once per pause. Returns how many were told.

    Access: the system, right after the pause. Audit: the notification rows.
    """
    if case.tier not in (RiskTier.ORANGE, RiskTier.RED) or case.paused_at is None:
        return 0
    student = case.student
    centre = holders_over(case.school, [Role.DISTRICT_CENTRE])
    with translation.override(settings.LANGUAGE_CODE):  # stored once, read in the deployment's language
        params = {
            "case": case.pk, "school": case.school, "student": mask_name(student.name), "class": student.school_class,
            "status": StudentStatus(status).label, "tier": RiskTier(case.tier).label,
        }  # fmt: skip
        title = _("A %(tier)s case's student left: case #%(case)s at %(school)s") % params
        body = _(
            "%(student)s (%(class)s) left the school system (%(status)s). The case's clocks are stopped; its team "
            "hands it over or proposes its closure."
        ) % params  # fmt: skip
    return notify(centre, kind=LEAVER_KIND, subject_key=f"case:{case.pk}:left:{case.paused_at:%Y%m%d%H%M%S}",
                  title=title, body=body, link=link, urgent=case.tier == RiskTier.RED)  # fmt: skip


def cases_resume(*, student_ids: Iterable[int], actor=None, moved: bool = False, now: datetime | None = None
                 ) -> list[tuple[Case, timedelta]]:  # fmt: skip
    """The paused active cases of students back in the system (enrolled again, or found at another school: `moved`):
    the clocks run again from where they stood. The case's clock start and its open crisis alerts' next climb move
    on by the length of the pause, so that nothing is overdue merely because the student was away; the caller moves
    the task clocks (workflows). Returns each resumed case with its pause length.

    Access: the system (roster's `students_returned` and `student_moved`). Audit: a history row per case, and per
    alert moved.
    """
    now = now or timezone.now()
    resumed: list[tuple[Case, timedelta]] = []
    for chunk in _chunks(student_ids):
        cases = list(
            Case.objects.select_for_update()
            .filter(student_id__in=chunk, status__in=ACTIVE_STATUSES, paused_at__isnull=False)
            .order_by("pk")
        )
        for case in cases:
            pause = max(now - case.paused_at, timedelta(0))
            case.paused_at = None
            if case.clock_from is not None:
                case.clock_from += pause
            reason = (
                "clocks run again: the student moved school" if moved
                else "clocks run again: the student is enrolled again"
            )  # fmt: skip
            _save(case, actor, reason)
            resumed.append((case, pause))
        pauses = {case.pk: pause for case, pause in resumed}
        alerts = CrisisAlert.objects.select_for_update().filter(
            case__in=cases, status=AlertStatus.OPEN, next_escalation_at__isnull=False
        )
        for alert in alerts:
            alert.next_escalation_at += pauses[alert.case_id]
            alert._history_user = actor
            alert._change_reason = "crisis alert window moved by the pause"
            alert.save(update_fields=["next_escalation_at"])
    if resumed:
        logger.info("%s cases resumed: their students are back", len(resumed))
    return resumed


def case_hand_over(actor, case: Case, *, institution: str, agency: str = Agency.SCHOOL, note: str = "",
                   now: datetime | None = None) -> Case:  # fmt: skip
    """移交: the case of a student who left is handed over to an institution or school outside the system. The case
    ends as "transferred" (closed_at set, the team stands down) and the coordination log says to whom.

    Access: the case's psychology teacher, or a psychology teacher of its school; only an open case whose clocks
    stopped because the student left. Audit: the coordination entry and the case's history (reason names the
    institution).
    """
    access.require_seat_or_role(actor, case, TeamSeat.PSYCHOLOGY_TEACHER, Role.PSYCHOLOGY_TEACHER)
    institution, note = (institution or "").strip(), (note or "").strip()
    if not institution:
        raise ValidationError(_("Name the school or institution that takes the case over."))
    if agency not in Agency.values:
        raise ValidationError(_("Choose who was contacted."))
    now = now or timezone.now()
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case.pk)
        if case.status != CaseStatus.OPEN or case.paused_at is None:
            raise ValidationError(_("Only an open case of a student who has left can be handed over."))
        entry = CoordinationEntry(case=case, agency=agency, contact=institution[:100], agreed=note or institution,
                                  author=actor, recorded_at=now)  # fmt: skip
        _save(entry, actor, "coordination recorded")
        for member in case.team.select_for_update().filter(left_at__isnull=True):
            member.left_at = now
            _save(member, actor, "case closed")
        case.status, case.closed_at = CaseStatus.TRANSFERRED, now
        _save(case, actor, f"handed over to {institution}: {note}".strip(": "))
    return case
