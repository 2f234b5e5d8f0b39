"""Mentors' talks (谈心谈话, seed 004: 全员导师制) and home visits (家访, seed 003: every student at least once a school
year): the services that record them, and the concern a worrying one raises in the school's triage queue.

Who may record what is cases.care_access's (`may_record_talk`, `may_record_home_visit`); which rows anyone reads is
roster.scoping's (cases.access registers MentorTalk and HomeVisit: the school's care readers, and their author).
The author reads what they wrote and is told a concern was raised, never what triage made of it.
May import: roster, screening.
"""

from __future__ import annotations

from datetime import date

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from cases import care_access
from cases.models import HomeVisit, MentorTalk, Reporter, SignalSource
from cases.signal_queue import signal_raise
from roster.models import LEAVING_STATUSES, Student, User
from screening.definitions import RiskTier

# The reason a worrying talk or visit gives its concern: short and never clinical (the raiser's own words go in the
# signal's detail, read by the school's psychology teachers). Stored in the site's language.
TALK_CONCERN_REASON = gettext_noop("Something worrying came up in a mentor talk")
VISIT_CONCERN_REASON = gettext_noop("Something worrying came up in a home visit")
CONCERN_TIER = RiskTier.YELLOW  # "look at this student": the psychology teacher triages it (tier rules' yellow)


def _check_date(day: date, field: str, today: date) -> None:
    if day > today:
        raise ValidationError({field: _("The date cannot be in the future.")})


def _check_student(student: Student) -> None:
    if student.status in LEAVING_STATUSES:
        raise ValidationError(_("This student has left the school."))


def _concern(student: Student, *, actor: User, reason: str, detail: str, key: str, now):
    with translation.override(settings.LANGUAGE_CODE):
        text = gettext(reason)
    signal, _created = signal_raise(
        student, source=SignalSource.CONCERN, tier=CONCERN_TIER, reason=text, detail=detail,
        reporter=Reporter.STAFF, raised_by=actor, key=key, now=now,
    )  # fmt: skip
    return signal


@transaction.atomic
def talk_record(
    *, actor: User, student: Student, held_on: date, topic: str, note: str = "", worrying: bool = False, now=None
) -> MentorTalk:
    """Record a talk with a mentee; `worrying` raises a concern (a yellow signal) linked to the talk.

    Access: the student's current mentor (cases.care_access.may_record_talk); PermissionDenied otherwise. A date in
    the future, a blank topic or a student who left is refused (ValidationError), nothing written.
    Audit: the talk's history row (the author, "mentor talk recorded"); the concern's own history.
    """
    now = now or timezone.now()
    if not care_access.may_record_talk(actor, student):
        raise PermissionDenied(_("Only the student's mentor records talks with them."))
    _check_student(student)
    _check_date(held_on, "held_on", timezone.localdate(now))
    topic = (topic or "").strip()
    if not topic:
        raise ValidationError({"topic": _("Say what the talk was about.")})
    talk = MentorTalk(
        student=student, school_id=student.school_id, author=actor, held_on=held_on, topic=topic[:100],
        note=(note or "").strip(), worrying=worrying,
    )  # fmt: skip
    talk._history_user, talk._change_reason = actor, "mentor talk recorded"
    talk.save()
    if worrying:
        detail = f"{talk.topic}\n{talk.note}".strip()
        talk.signal = _concern(student, actor=actor, reason=TALK_CONCERN_REASON, detail=detail,
                               key=f"mentor_talk:{talk.pk}", now=now)  # fmt: skip
        talk._change_reason = "concern raised"
        talk.save(update_fields=["signal"])
    return talk


@transaction.atomic
def home_visit_record(
    *, actor: User, student: Student, visited_on: date, met: str, note: str = "", worrying: bool = False, now=None
) -> HomeVisit:
    """Record a home visit; `worrying` raises a concern (a yellow signal) linked to the visit.

    Access: the homeroom teacher of the student's class or the student's current mentor
    (cases.care_access.may_record_home_visit); PermissionDenied otherwise. A date in the future, nobody met or a
    student who left is refused (ValidationError), nothing written.
    Audit: the visit's history row (the author, "home visit recorded"); the concern's own history.
    """
    now = now or timezone.now()
    if not care_access.may_record_home_visit(actor, student):
        raise PermissionDenied(_("Only the student's homeroom teacher or mentor records home visits."))
    _check_student(student)
    _check_date(visited_on, "visited_on", timezone.localdate(now))
    met = (met or "").strip()
    if not met:
        raise ValidationError({"met": _("Say whom you met.")})
    visit = HomeVisit(
        student=student, school_id=student.school_id, author=actor, visited_on=visited_on, met=met[:100],
        note=(note or "").strip(), worrying=worrying,
    )  # fmt: skip
    visit._history_user, visit._change_reason = actor, "home visit recorded"
    visit.save()
    if worrying:
        visit.signal = _concern(student, actor=actor, reason=VISIT_CONCERN_REASON, detail=visit.note,
                                key=f"home_visit:{visit.pk}", now=now)  # fmt: skip
        visit._change_reason = "concern raised"
        visit.save(update_fields=["signal"])
    return visit
