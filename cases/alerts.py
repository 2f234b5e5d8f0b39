"""Crisis alerts (DESIGN §3, the crisis loop): from a critical answer or a red tier to a named adult who has the
student.

An alert is raised once per student and event. Its first level goes to the school's psychology teacher on duty now
(roster.duty), or out of school hours to the district centre's duty line; the proctor of the class (its homeroom
teacher) gets a care instruction with no result in it ("请留下该生，心理教师马上到"). Unacknowledged after the window
of its kind (the tier rules: acute 5 min, red 10 min, other critical answers 30 min) it climbs to the next level of
the chain; one click ("我来处理") by anyone it reached, or who may act on the school's cases, stops it. Every step is a
CrisisAlertStep row and every change a history row: who was told, when, who took it.

Escalations run on time: each raise or climb schedules a one-off django-q2 run at the next window's end, and the
per-minute workflow tick sweeps any that slipped (crisis_alerts_escalate_due).
May import: roster, screening.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from cases.models import ACTIVE_STATUSES, AlertKind, AlertStatus, Case, CrisisAlert, CrisisAlertStep
from cases.tiers import Audience, alert_rules
from roster import scoping
from roster.masking import mask_name
from roster.models import DutyKind, Notification, RoleAssignment, School, Student, User
from roster.notifications import notify
from roster.roles import Role
from screening.alerts import CARE_KIND, CARE_PREFIX
from screening.definitions import RiskTier

logger = logging.getLogger(__name__)

ALERT_NOTICE_KIND = "crisis_alert"
PROCTOR = "proctor"  # the audience of the care instruction (a CrisisAlertStep's `audiences`)
ALERT_PATH = "/work/alerts/{pk}/"

# Who may take an alert of a school besides the people it reached: the school's psychology teachers and principals,
# the district centre, the city centre (never a homeroom teacher: an alert carries a result).
ACTING_ROLES = frozenset({Role.PSYCHOLOGY_TEACHER, Role.PRINCIPAL, Role.DISTRICT_CENTRE, Role.CITY_CENTRE})


class AlertAlreadyTaken(ValidationError):
    """Someone else acknowledged the alert first; nothing was changed."""


def care_subject_key(result_id: int) -> str:
    """The care instruction of a screening result (the proctor page looks for it to show "keep this student")."""
    return f"{CARE_PREFIX}{result_id}"


def _subject_key(alert: CrisisAlert) -> str:
    return f"crisis_alert:{alert.pk}"


# --- Who is told ----------------------------------------------------------------------------------------------


def _holders(role: str, node) -> set[int]:
    return set(scoping.holders_over(node, role).values_list("pk", flat=True))


def audience_members(audience: str, school: School, at: datetime) -> set[int]:
    """The user ids an audience of the tier rules names at `school` now. The duty audiences fall back to everyone
    holding the role when nobody is on duty: an alert never waits for a gap in the roster."""
    from roster import duty

    if audience == Audience.DUTY_PSYCHOLOGY:
        on_duty = {u.pk for u in duty.on_duty_now(school, at, kind=DutyKind.PSYCHOLOGY_TEACHER)}
        return on_duty or _holders(Role.PSYCHOLOGY_TEACHER, school)
    if audience == Audience.PSYCHOLOGY_TEACHERS:
        return _holders(Role.PSYCHOLOGY_TEACHER, school)
    if audience == Audience.PRINCIPAL:
        return _holders(Role.PRINCIPAL, school)
    if audience == Audience.DISTRICT_DUTY:
        on_duty = {u.pk for u in duty.on_duty_now(school.district, at, kind=DutyKind.DISTRICT_CENTRE)}
        return on_duty or _holders(Role.DISTRICT_CENTRE, school.district)
    if audience == Audience.CITY_CENTRE:
        return _holders(Role.CITY_CENTRE, school.district.city)
    raise ValueError(f"audience {audience!r} is not one an alert climbs to")


def proctors_of(student: Student) -> set[int]:
    """Who has the student's class now: its homeroom teacher(s)."""
    return _holders(Role.HOMEROOM_TEACHER, student.school_class)


# --- Texts (stored once, in the working language; never the full name, never an answer) -------------------------


def _where(student: Student) -> dict[str, str]:
    return {"student": mask_name(student.name), "school": str(student.school), "class": str(student.school_class)}


def _alert_texts(alert: CrisisAlert) -> tuple[str, str]:
    params = _where(alert.student)
    title = _("Crisis alert: %(student)s, %(school)s, %(class)s") % params
    bodies = {
        AlertKind.ACUTE: _(
            "An acute answer: the student has thoughts of suicide right now. Go to the student at "
            "once and do not leave them alone."
        ),  # fmt: skip
        AlertKind.RED: _("A red-tier student needs to be seen today, in person."),
        AlertKind.CRITICAL: _(
            "A critical answer (self-harm or suicide item). See the student for a brief safety "
            "assessment before they go home today."
        ),  # fmt: skip
    }
    body = (
        bodies[AlertKind(alert.kind)]
        + " "
        + _(
            "Press “I'll handle it” so that the others know the student is being seen; until someone does, the alert "
            "goes to more people."
        )
    )
    return title, body


def _care_texts(student: Student) -> tuple[str, str]:
    params = _where(student)
    title = _("Please keep the student: a psychology teacher is on the way")
    body = _("%(class)s, %(student)s: please keep this student with you; a psychology teacher is coming now.") % params
    return title, body


# --- Raising ----------------------------------------------------------------------------------------------------


def alert_kind(tier: str, critical: list) -> str | None:
    """The alert a screening result raises: acute (an acuity item), red, another critical answer, or none."""
    if any(answer.acute for answer in critical):
        return AlertKind.ACUTE
    if tier == RiskTier.RED:
        return AlertKind.RED
    if critical:
        return AlertKind.CRITICAL
    return None


def crisis_alert_raise_for_result(result_id: int, *, now: datetime | None = None) -> CrisisAlert | None:
    """Raise the alert of a just-recorded screening result, when it has a critical answer or a red tier; tell the
    first level and the proctor. Returns the alert (the existing one when run again: raised once per result).

    Access: the task worker (after the student's case is opened). Audit: the alert, its steps, the notifications.
    """
    from screening.critical import critical_answers
    from screening.models import CampaignInstrument, ScreeningResult

    result = (
        ScreeningResult.objects.select_related("student__school__district", "student__school_class")
        .filter(pk=result_id)
        .first()
    )
    if result is None:
        return None
    links = CampaignInstrument.objects.filter(campaign_id=result.campaign_id).select_related("instrument")
    instruments = {link.instrument.code: link.instrument.parsed() for link in links.order_by("position")}
    critical = critical_answers(instruments, result.answers)
    kind = alert_kind(result.tier, critical)
    if kind is None:
        return None
    return crisis_alert_raise(
        result.student, kind=kind, event_key=f"screening_result:{result.pk}", screening_result=result,
        critical_items=[[a.instrument, a.item] for a in critical], now=now,
    )  # fmt: skip


def crisis_alert_raise(student: Student, *, kind: str, event_key: str, screening_result=None, critical_items=(),
                       case: Case | None = None, now: datetime | None = None) -> CrisisAlert:  # fmt: skip
    """Raise one alert per student and event (idempotent) and tell its first level now.

    Access: services and tasks (a screening result, a tier raised to red). Audit: as crisis_alert_raise_for_result.
    """
    from roster import duty

    now = now or timezone.now()
    school = student.school
    if case is None:
        case = Case.objects.filter(student=student, status__in=ACTIVE_STATUSES).first()
    existing = CrisisAlert.objects.filter(student=student, event_key=event_key).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            alert = CrisisAlert(
                student=student, school=school, case=case, screening_result=screening_result, kind=kind,
                event_key=event_key, critical_items=list(critical_items), raised_at=now,
                in_school_hours=duty.in_school_hours(school, now),
            )  # fmt: skip
            alert._change_reason = "crisis alert raised"
            alert.save()
            _climb(alert, now)
            if alert.in_school_hours and screening_result is not None:
                _care_instruction(alert, screening_result, now)
    except IntegrityError:  # raised meanwhile by a concurrent run of the same event
        return CrisisAlert.objects.get(student=student, event_key=event_key)
    logger.info("crisis alert %s (%s) raised for case %s, level %s", alert.pk, kind, alert.case_id, alert.level)
    return alert


def crisis_alert_link_case(case: Case) -> int:
    """Attach to the case the student's alerts raised before it existed (an alert is raised at submit, the case is
    opened by the task worker just after). Returns how many. Audit: a history row per alert."""
    linked = 0
    for alert in CrisisAlert.objects.filter(student_id=case.student_id, case__isnull=True):
        alert.case = case
        alert._change_reason = "crisis alert linked to its case"
        alert.save(update_fields=["case"])
        linked += 1
    return linked


def _care_instruction(alert: CrisisAlert, result, now: datetime) -> None:
    proctors = proctors_of(alert.student)
    if not proctors:
        return
    from django.conf import settings
    from django.urls import reverse

    with translation.override(settings.LANGUAGE_CODE):
        title, body = _care_texts(alert.student)
    link = reverse(
        "screening:proctor", kwargs={"campaign_id": result.campaign_id, "class_id": alert.student.school_class_id}
    )
    notify(proctors, kind=CARE_KIND, title=title, body=body, link=link, subject_key=care_subject_key(result.pk),
           urgent=True)  # fmt: skip
    CrisisAlertStep.objects.create(alert=alert, level=0, audiences=PROCTOR, recipients=sorted(proctors), at=now)


def _care_taken(alert: CrisisAlert, actor: User) -> None:
    """The proctors who were asked to keep the student learn who is coming (still nothing about why)."""
    from django.conf import settings

    proctors = set()
    for step in alert.steps.filter(audiences=PROCTOR):
        proctors.update(step.recipients)
    if not proctors or alert.screening_result_id is None:
        return
    params = {**_where(alert.student), "name": actor.name or actor.username}
    with translation.override(settings.LANGUAGE_CODE):
        title = _("%(name)s is coming for the student") % params
        body = _("%(class)s, %(student)s: %(name)s has taken over and is on the way; please keep the student with "
                 "you until then.") % params  # fmt: skip
    link = Notification.objects.filter(kind=CARE_KIND, subject_key=care_subject_key(alert.screening_result_id))
    notify(proctors, kind=CARE_KIND, title=title, body=body, link=getattr(link.first(), "link", ""),
           subject_key=f"{care_subject_key(alert.screening_result_id)}:taken", urgent=True)  # fmt: skip


def _climb(alert: CrisisAlert, now: datetime) -> None:
    """Tell the next level of the chain (and the one after, when nobody is there), then schedule the next climb.
    Call inside a transaction with the alert locked or new."""
    from django.conf import settings

    levels = alert_rules().levels(alert.in_school_hours)
    told = set()
    for step in alert.steps.exclude(audiences=PROCTOR):
        told.update(step.recipients)
    while alert.level < len(levels):
        audiences = levels[alert.level]
        recipients = set()
        for audience in audiences:
            recipients |= audience_members(audience, alert.school, now)
        alert.level += 1
        new = recipients - told
        CrisisAlertStep.objects.create(
            alert=alert, level=alert.level, audiences=",".join(audiences), recipients=sorted(new), at=now
        )
        if new:
            with translation.override(settings.LANGUAGE_CODE):
                title, body = _alert_texts(alert)
            notify(new, kind=ALERT_NOTICE_KIND, title=title, body=body, link=ALERT_PATH.format(pk=alert.pk),
                   subject_key=_subject_key(alert), urgent=True)  # fmt: skip
            break
        told |= recipients
    if alert.level < len(levels):
        alert.next_escalation_at = now + alert_rules().windows[alert.kind].as_timedelta()
        transaction.on_commit(lambda: _escalation_schedule(alert.pk, alert.next_escalation_at))
    else:
        alert.next_escalation_at = None
    alert._change_reason = f"crisis alert level {alert.level}"
    alert.save(update_fields=["level", "next_escalation_at"])


def _escalation_schedule(alert_id: int, at: datetime) -> None:
    """A one-off run at the window's end, so that a climb is not left to the next minute's sweep."""
    from django_q.models import Schedule
    from django_q.tasks import schedule

    try:
        schedule("cases.alerts.crisis_alerts_escalate_due", name=f"crisis alert {alert_id} at {at:%Y%m%d%H%M%S}",
                 schedule_type=Schedule.ONCE, next_run=at, repeats=1)  # fmt: skip
    except Exception:  # the minute sweep still climbs it
        logger.exception("crisis alert %s: could not schedule its escalation", alert_id)


def crisis_alerts_escalate_due(now: datetime | None = None) -> int:
    """Climb every open alert whose window has ended; returns how many climbed. Safe to run concurrently (each alert
    is locked and re-checked).

    Access: the task worker (one-off schedules and the per-minute tick). Audit: the steps and history rows.
    """
    now = now or timezone.now()
    # An alert of a stopped case (its student left the system: cases.leavers) climbs no further until it runs again.
    running = Q(case__isnull=True) | Q(case__paused_at__isnull=True)
    due = list(
        CrisisAlert.objects.filter(running, status=AlertStatus.OPEN, next_escalation_at__lte=now)
        .order_by("next_escalation_at")
        .values_list("pk", flat=True)[:500]
    )
    climbed = 0
    for pk in due:
        with transaction.atomic():
            alert = (
                CrisisAlert.objects.select_for_update(of=("self",))  # the alert row alone (PostgreSQL: no outer joins)
                .select_related("student__school__district__city", "student__school_class", "school__district")
                .filter(pk=pk, status=AlertStatus.OPEN, next_escalation_at__lte=now)
                .first()
            )
            if alert is None:
                continue
            if alert.case_id and Case.objects.filter(pk=alert.case_id, paused_at__isnull=False).exists():
                continue  # stopped since the list was read
            _climb(alert, now)
            climbed += 1
    if climbed:
        logger.info("crisis alerts: %s climbed a level", climbed)
    return climbed


# --- Acknowledging ----------------------------------------------------------------------------------------------


def _reached(alert: CrisisAlert) -> set[int]:
    reached = set()
    for step in alert.steps.exclude(audiences=PROCTOR):
        reached.update(step.recipients)
    return reached


def may_act_on(user, alert: CrisisAlert) -> bool:
    """Whether `user` may see and take the alert: someone it reached, or an acting role over its school."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.pk in _reached(alert):
        return True
    return alerts_actable_q_for(user, CrisisAlert.objects.filter(pk=alert.pk)).exists()


def alerts_actable_q_for(user, alerts: QuerySet[CrisisAlert]) -> QuerySet[CrisisAlert]:
    """The alerts of the schools where `user` holds an acting role (psychology teacher, principal, district centre,
    city centre)."""
    held = RoleAssignment.objects.filter(user_id=user.pk, role__in=ACTING_ROLES)
    q = Q(pk__in=[])
    for school_id, district_id, city_id in held.values_list("school_id", "district_id", "city_id"):
        if school_id:
            q |= Q(school_id=school_id)
        elif district_id:
            q |= Q(school__district_id=district_id)
        elif city_id:
            q |= Q(school__district__city_id=city_id)
    return alerts.filter(q)


def crisis_alerts_open_for(user) -> QuerySet[CrisisAlert]:
    """The open alerts the user may act on, newest first, with student, class, school and case in the same query.

    Access: the signed-in user, for themselves. Audit: none (a list of masked names; the page that opens one logs).
    """
    if not getattr(user, "is_authenticated", False):
        return CrisisAlert.objects.none()
    return (
        alerts_actable_q_for(user, CrisisAlert.objects.filter(status=AlertStatus.OPEN))
        .select_related("student__school_class", "school", "case")
        .order_by("-raised_at", "-pk")
    )


def crisis_alert_acknowledge(actor: User, alert: CrisisAlert, *, now: datetime | None = None) -> CrisisAlert:
    """ "我来处理": the actor has the student; the chain stops and the case records who and when.

    Access: someone the alert reached or an acting role over its school (PermissionDenied otherwise). A second
    acknowledgement raises AlertAlreadyTaken naming who took it, and changes nothing. Audit: the alert's history row
    (history user = actor); the actor's notifications of this alert are marked read.
    """
    if not may_act_on(actor, alert):
        raise PermissionDenied(_("You may not take this alert."))
    now = now or timezone.now()
    with transaction.atomic():
        alert = CrisisAlert.objects.select_for_update(of=("self",)).select_related("acknowledged_by").get(pk=alert.pk)
        if alert.status != AlertStatus.OPEN:
            raise AlertAlreadyTaken(already_taken_message(alert))
        alert.status, alert.acknowledged_by, alert.acknowledged_at = AlertStatus.ACKNOWLEDGED, actor, now
        alert.next_escalation_at = None
        if alert.case_id is None:
            alert.case = Case.objects.filter(student_id=alert.student_id, status__in=ACTIVE_STATUSES).first()
        alert._history_user = actor
        alert._change_reason = "crisis alert taken"
        alert.save()
        Notification.objects.filter(
            recipient=actor, kind=ALERT_NOTICE_KIND, subject_key=_subject_key(alert), read_at__isnull=True
        ).update(read_at=now)
        _care_taken(alert, actor)
    logger.info("crisis alert %s taken by user %s", alert.pk, actor.pk)
    return alert


def already_taken_message(alert: CrisisAlert) -> str:
    if alert.status == AlertStatus.WITHDRAWN:
        return _("This alert was withdrawn. Nothing was changed.")
    who = alert.acknowledged_by
    return _("%(name)s already took this alert at %(time)s. Nothing was changed.") % {
        "name": (who.name or who.username) if who else "?",
        "time": timezone.localtime(alert.acknowledged_at).strftime("%H:%M") if alert.acknowledged_at else "?",
    }


# --- Links (the task pages live in workflows, which registers how to reach them) -------------------------------

_link_resolver: list[Callable[[CrisisAlert], str]] = []


def register_link_resolver(resolver: Callable[[CrisisAlert], str]) -> None:
    _link_resolver[:] = [resolver]


def alert_link(alert: CrisisAlert) -> str:
    """Where taking the alert leads: the case's triage task when it is open, else the case page (workflows decides);
    the alert's own page when no case exists yet."""
    if _link_resolver:
        link = _link_resolver[0](alert)
        if link:
            return link
    return ALERT_PATH.format(pk=alert.pk)
