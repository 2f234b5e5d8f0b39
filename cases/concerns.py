"""Concerns from anyone (关注上报, issue 20 item 2) and the district's hotline: two sources of the school's signal
queue (cases.signal_queue). A teacher who teaches the student (homeroom, subject teacher, mentor), or the school's
psychology teacher or principal, says what was seen and how urgent it is, for themselves, a classmate (班级心理委员)
or a parent; the district centre records a call to its 24-hour line (seed 004) and it lands in the student's school's
queue. Urgency maps to a tier: 关注 yellow, 尽快 orange, 紧急危险 red (red follows the crisis path: workflows puts a
new red signal into a red case at once).

May import: roster, screening.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from cases import care_access
from cases.models import Reporter, Signal, SignalSource
from cases.signal_queue import signal_raise
from roster.models import Student, StudentStatus, User
from screening.definitions import RiskTier

DETAIL_MAX = 2000  # what was seen, in the teacher's words


class Urgency(models.TextChoices):
    """How urgent the raiser thinks it is: the three big buttons."""

    WATCH = "watch", gettext_lazy("Keep an eye on")  # 关注
    SOON = "soon", gettext_lazy("Soon")  # 尽快
    DANGER = "danger", gettext_lazy("Urgent: in danger")  # 紧急危险


URGENCY_TIER = {Urgency.WATCH: RiskTier.YELLOW, Urgency.SOON: RiskTier.ORANGE, Urgency.DANGER: RiskTier.RED}


class Seen(models.TextChoices):
    """What was seen: the chips. Plain words a teacher uses, not a diagnosis."""

    MOOD = "mood", gettext_lazy("Low mood, crying")
    WITHDRAWN = "withdrawn", gettext_lazy("Withdrawn, alone")
    DEATH_TALK = "death_talk", gettext_lazy("Talks of death or self-harm")
    INJURY = "injury", gettext_lazy("Injuries, self-harm marks")
    CONFLICT = "conflict", gettext_lazy("Conflict or bullying")
    SCHOOL = "school", gettext_lazy("Sudden change at school")
    HOME = "home", gettext_lazy("Trouble at home")
    BEHAVIOUR = "behaviour", gettext_lazy("Unusual behaviour")


# Whom a teacher may record a concern for (the hotline's caller is its own).
CONCERN_REPORTERS = (Reporter.STAFF, Reporter.PEER, Reporter.PARENT)


def _reason(what_was_seen: Iterable[str]) -> tuple[str, list[str]]:
    """The signal's short reason (the chips' words, stored in the deployment's language) and the chips' codes."""
    codes = []
    for code in what_was_seen or ():
        if code not in Seen.values:
            raise ValidationError(_("Choose what was seen from the list."))
        if code not in codes:
            codes.append(code)
    with translation.override(settings.LANGUAGE_CODE):
        return "、".join(str(Seen(code).label) for code in codes), codes


def _checked(what_was_seen, urgency: str, detail: str) -> tuple[str, str, str]:
    if urgency not in Urgency.values:
        raise ValidationError(_("Choose how urgent it is."))
    reason, codes = _reason(what_was_seen)
    detail = (detail or "").strip()
    if not codes and not detail:
        raise ValidationError(_("Say what was seen: tap one of the choices or write a few words."))
    if len(detail) > DETAIL_MAX:
        raise ValidationError(_("Write at most %(count)s characters.") % {"count": DETAIL_MAX})
    if not reason:
        with translation.override(settings.LANGUAGE_CODE):
            reason = _("See what was written")
    return URGENCY_TIER[Urgency(urgency)], reason, detail


def _enrolled(student: Student) -> None:
    if student.status != StudentStatus.ACTIVE:
        raise ValidationError(_("This student is no longer enrolled at a school here."))


def concern_raise(
    actor: User, student: Student, *, what_was_seen: Iterable[str], urgency: str, reporter: str = Reporter.STAFF,
    detail: str = "",
) -> Signal:  # fmt: skip
    """A concern about a student in the school's signal queue (关注上报): what was seen (chips and/or a few words) and
    how urgent (关注 yellow, 尽快 orange, 紧急危险 red: a red one opens a red case and raises the crisis alert at once).
    `reporter`: the teacher themselves, or a classmate or a parent they record it for.

    Access: someone who teaches the student (homeroom, subject teacher, mentor) or the school's psychology teachers
    and principal (cases.care_access.may_raise_concern); PermissionDenied otherwise. Audit: the signal's history row
    (raised_by = the actor)."""
    if reporter not in CONCERN_REPORTERS:
        raise ValidationError(_("Choose who saw it."))
    tier, reason, detail = _checked(what_was_seen, urgency, detail)
    if not care_access.may_raise_concern(actor, student):
        raise PermissionDenied(_("You can raise a concern only about a student you teach."))
    _enrolled(student)
    with transaction.atomic():
        signal, _created = signal_raise(
            student, source=SignalSource.CONCERN, tier=tier, reason=reason, detail=detail, reporter=reporter,
            raised_by=actor,
        )  # fmt: skip
    return signal


def hotline_call_record(actor: User, student: Student, *, what_was_seen: Iterable[str], urgency: str,
                        detail: str = "") -> Signal:  # fmt: skip
    """A call to the district's 24-hour line (seed 004) about a student, recorded by the district centre and routed
    to the student's school's queue (a red call follows the crisis path at once).

    Access: the district centre of the student's district, on duty or not (cases.care_access.may_record_hotline).
    Audit: the signal's history row."""
    tier, reason, detail = _checked(what_was_seen, urgency, detail)
    if not care_access.may_record_hotline(actor, student):
        raise PermissionDenied(_("Only the district centre of the student's district records a hotline call."))
    _enrolled(student)
    with transaction.atomic():
        signal, _created = signal_raise(
            student, source=SignalSource.HOTLINE, tier=tier, reason=reason, detail=detail, reporter=Reporter.CALLER,
            raised_by=actor,
        )  # fmt: skip
    return signal
