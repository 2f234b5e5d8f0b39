"""The signal queue's work (issue 20 item 1): triage (open a case, add to the open case, or no action with a reason),
the crisis path of a new red signal, the overdue sweep, and the queue's reads (the list, the home page's panel, the
dashboards' counts per source).

Triage starts processes (a case opened here waits for its own triage step in the case flow), so it lives in
workflows, beside workflows.services. Who may triage is cases.care_access's; which signals a person reads at all is
roster.scoping's (cases.access registers Signal).
May import: roster, screening, cases, workflows.services.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Case as DbCase
from django.db.models import Count, F, IntegerField, Q, QuerySet, Value, When
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from cases import alerts, care_access
from cases import services as case_services
from cases.care_selectors import term_period
from cases.models import ACTIVE_STATUSES, Case, Signal, SignalSource, SignalStatus
from cases.signal_queue import TRIAGE_STEP
from cases.tiers import Audience, tier_rule
from roster import scoping
from roster.masking import mask_name
from roster.notifications import notify
from screening.definitions import RiskTier
from workflows import services

logger = logging.getLogger(__name__)

SEEN_KIND = "signal_seen"  # the raiser is told their signal was seen: nothing clinical
OVERDUE_KIND = "signal_overdue"
SWEEP_BATCH = 500  # signals per sweep; the rest wait a minute
CASE_TIERS = (RiskTier.YELLOW, RiskTier.ORANGE, RiskTier.RED)


class SignalAlreadyTriaged(ValidationError):
    """Someone triaged the signal first; nothing was changed."""


# --- Triage -----------------------------------------------------------------------------------------------------


def _require(actor, signal: Signal) -> None:
    if not care_access.may_triage(actor, signal):
        raise PermissionDenied(_("Only the school's psychology teachers triage its signals."))


def _open_locked(signal: Signal) -> Signal:
    """The signal re-read under lock; refused with who triaged it and when when it is no longer open."""
    locked = (
        Signal.objects.select_for_update(of=("self",)).select_related("student__school", "decided_by").get(pk=signal.pk)
    )  # PostgreSQL locks no outer-joined row (decided_by may be null)
    if locked.status != SignalStatus.OPEN:
        raise SignalAlreadyTriaged(already_triaged(locked))
    return locked


def already_triaged(signal: Signal) -> str:
    """Who triaged a decided signal and when ("已由…处理"), for the refusal of a second triage."""
    who = signal.decided_by
    name = (who.name or who.username) if who is not None else _("the system")
    when = timezone.localtime(signal.decided_at).strftime("%Y-%m-%d %H:%M") if signal.decided_at else ""
    return _("Already triaged by %(name)s at %(when)s (%(decision)s). Nothing was changed.") % {
        "name": name, "when": when, "decision": signal.get_status_display(),
    }  # fmt: skip


def _active_case(student_id: int) -> Case | None:
    return Case.objects.filter(student_id=student_id, status__in=ACTIVE_STATUSES).first()


def _save(signal: Signal, actor, reason: str, fields: list[str]) -> None:
    signal._history_user = actor
    # simple-history keeps the reason in a varchar(100) (cases.services._save).
    signal._change_reason = reason if len(reason) <= 100 else reason[:99] + "…"
    signal.save(update_fields=fields)


def _triage_record(actor, signal: Signal, status: str, note: str, case: Case | None) -> Signal:
    signal.status, signal.case = status, case
    signal.decided_by, signal.decided_at, signal.decision_note = actor, timezone.now(), note
    _save(signal, actor, f"triaged: {status}: {note}".strip(": "),
          ["status", "case", "decided_by", "decided_at", "decision_note"])  # fmt: skip
    _tell_raiser(signal, actor)
    return signal


def _tell_raiser(signal: Signal, actor, *, at_once: bool = False) -> int:
    """The person who raised the signal learns that it was seen, and nothing else: no tier, no decision, no note.
    `at_once`: an urgent one went to the psychology teachers on duty straight away (the crisis path), before anyone
    read it in the queue: the raiser is told that instead."""
    if signal.raised_by_id is None or (actor is not None and signal.raised_by_id == actor.pk):
        return 0
    params = {"student": mask_name(signal.student.name),
              "when": timezone.localtime(signal.raised_at).strftime("%m-%d %H:%M")}  # fmt: skip
    with translation.override(settings.LANGUAGE_CODE):  # read in the deployment's language, as every notice
        if at_once:
            title = _("Your concern about %(student)s was received") % params
            body = (
                _(
                    "What you reported about %(student)s (%(when)s) went to the school's psychology teachers at once. "
                    "Thank you: stay with the student if you can, and report again if you see something new."
                )
                % params
            )
        else:
            title = _("Your concern about %(student)s was seen") % params
            body = (
                _(
                    "The school's psychology teachers have seen what you reported about %(student)s (%(when)s). Thank "
                    "you: keep caring for the student as usual, and report again if you see something new."
                )
                % params
            )
    return notify([signal.raised_by_id], kind=SEEN_KIND, subject_key=f"signal:{signal.pk}:seen", title=title,
                  body=body, link=reverse("care:my_concerns"))  # fmt: skip


def signal_open_case(actor, signal: Signal, *, tier: str, note: str) -> Case:
    """Triage: open a case for the signal's student at `tier` (its process waits for the case's own triage). With
    an active case, the signal joins it and a higher tier raises it at once (cases.services.case_refer: red tells
    the district and raises the crisis alert).

    Access: the school's psychology teachers (cases.care_access.may_triage). A signal already triaged is refused
    with who and when (SignalAlreadyTriaged), changing nothing. Audit: the signal's history row, the case's."""
    _require(actor, signal)
    if tier not in CASE_TIERS:
        raise ValidationError(_("Choose the tier of the case: yellow, orange or red."))
    with transaction.atomic():
        signal = _open_locked(signal)
        joined = _active_case(signal.student_id) is not None
        reason = (note or "").strip() or signal.reason
        case = services.case_refer_and_start(actor, signal.student, reason, tier)
        status = SignalStatus.ADDED_TO_CASE if joined else SignalStatus.CASE_OPENED
        return _triage_record(actor, signal, status, (note or "").strip(), case).case


def signal_add_to_case(actor, signal: Signal, note: str = "") -> Case:
    """Triage: the signal joins the student's active case (its history says so; tier and clocks stay).

    Access: the school's psychology teachers. Refused when triaged already or when the student has no active case.
    Audit: the signal's and the case's history rows."""
    _require(actor, signal)
    with transaction.atomic():
        signal = _open_locked(signal)
        case = _active_case(signal.student_id)
        if case is None:
            raise ValidationError(_("The student has no open case: open one instead."))
        case_services.case_signal_add(actor, case, (note or "").strip())
        return _triage_record(actor, signal, SignalStatus.ADDED_TO_CASE, (note or "").strip(), case).case


def signal_no_action(actor, signal: Signal, reason: str) -> Signal:
    """Triage: no action, and why (never silently dropped).

    Access: the school's psychology teachers. The reason is required. Audit: the signal's history row."""
    _require(actor, signal)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError(_("Say why no action is needed."))
    with transaction.atomic():
        signal = _open_locked(signal)
        return _triage_record(actor, signal, SignalStatus.NO_ACTION, reason, None)


# --- Red follows the crisis path --------------------------------------------------------------------------------


def on_signal_raised(sender, instance: Signal, actor=None, **kwargs) -> None:
    """`signal_raised` (cases.signal_queue, inside the raising transaction): a new open red signal becomes a red case
    at once."""
    if instance.status == SignalStatus.OPEN and instance.tier == RiskTier.RED:
        signal_red_to_case(instance, actor)


def signal_red_to_case(signal: Signal, actor=None) -> Case:
    """A red signal takes the path of a red staff referral (workflows.services.case_refer_and_start): a red case (or
    the active one raised to red), its process, the district told and the crisis alert raised; the signal is marked
    decided and linked to the case. A raiser who may not see the student (or none: a rule) refers through the
    system's path: the signal's own source service already checked who may raise it.

    Access: the system, on a new red signal. Audit: the case's and the signal's history rows (no user for the
    signal's: nobody triaged it by hand)."""
    student = signal.student
    person = actor if actor is not None and scoping.can_view(actor, student) else None
    joined = _active_case(student.pk) is not None
    case = services.case_refer_and_start(person, student, signal.reason, RiskTier.RED)
    status = SignalStatus.ADDED_TO_CASE if joined else SignalStatus.CASE_OPENED
    signal.status, signal.case, signal.decided_at = status, case, timezone.now()
    _save(signal, None, f"triaged: {status}", ["status", "case", "decided_at"])
    _tell_raiser(signal, None, at_once=True)
    logger.info("red signal %s: case %s (%s)", signal.pk, case.pk, status)
    return case


# --- Overdue signals never sit silently -------------------------------------------------------------------------


def queue_tier(tier: str) -> str:
    return RiskTier.YELLOW if tier == RiskTier.GREEN else tier


def _chain(tier: str):
    return tier_rule(queue_tier(tier)).chain(TRIAGE_STEP)


def _candidates_q(now: datetime) -> Q:
    """Open signals whose next reminder may be due: per tier and level, due at least the step's length ago (a
    school-day length counted as calendar days, which it never exceeds: the exact moment is checked per signal)."""
    q = Q(pk__in=[])
    for tier in (RiskTier.GREEN, *CASE_TIERS):
        for level, step in enumerate(_chain(tier)):
            q |= Q(tier=tier, escalation_level=level, due_at__lte=now - step.after.as_timedelta())
    return q


def _recipients(audience: str, school, now: datetime) -> set[int]:
    if audience == Audience.ASSIGNEE:  # a signal is the school's psychology teachers' to triage
        audience = Audience.PSYCHOLOGY_TEACHERS
    if audience not in Audience.ALL - Audience.TRANSFER_ONLY:
        return set()
    return alerts.audience_members(audience, school, now)


def _remind(signal: Signal, level: int, audiences, now: datetime) -> int:
    student = signal.student
    with translation.override(settings.LANGUAGE_CODE):
        params = {"student": mask_name(student.name), "class": str(student.school_class),
                  "source": str(SignalSource(signal.source).label),
                  "due": timezone.localtime(signal.due_at).strftime("%Y-%m-%d %H:%M")}  # fmt: skip
        title = _("Overdue: a signal about %(student)s is waiting for triage") % params
        body = (
            _("A signal (%(source)s) about %(student)s · %(class)s was to be triaged by %(due)s. Please see to it now.")
            % params
        )
    recipients = {pk for audience in audiences for pk in _recipients(audience, signal.school, now)}
    return notify(recipients, kind=OVERDUE_KIND, subject_key=f"signal:{signal.pk}:overdue:{level}", title=title,
                  body=body, link=reverse("care:signal_detail", args=[signal.pk]), urgent=True)  # fmt: skip


def _advance(pk: int, now: datetime) -> int:
    """Send every step of one signal's overdue chain that is due by `now`, each once (Signal.escalation_level)."""
    with transaction.atomic():
        signal = (
            Signal.objects.select_for_update()
            .select_related("school__district__city", "student__school_class")
            .filter(pk=pk, status=SignalStatus.OPEN)
            .first()
        )
        if signal is None or signal.due_at is None:
            return 0
        chain = _chain(signal.tier)
        told, level = 0, signal.escalation_level
        while level < len(chain) and chain[level].after.after(signal.due_at, signal.school) <= now:
            told += _remind(signal, level, chain[level].audiences, now)
            level += 1
        if level != signal.escalation_level:
            signal.escalation_level = level
            _save(signal, None, f"triage overdue: reminder {level}", ["escalation_level"])
    return told


def signals_overdue_sweep(now: datetime | None = None) -> int:
    """Remind by the tier's overdue chain (the school's psychology teachers, then the principal, then the district
    centre on duty) for each open signal past its triage time, each level once. Run every minute by
    workflows.services.workflow_tick; returns how many notifications were sent.

    Access: the scheduler; no user. Audit: the notifications and the signals' history rows."""
    now = now or timezone.now()
    due = (
        Signal.objects.filter(_candidates_q(now), status=SignalStatus.OPEN)
        .order_by("due_at")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    return sum(_advance(pk, now) for pk in list(due))


# --- Reads ------------------------------------------------------------------------------------------------------

RISK = DbCase(
    When(tier=RiskTier.RED, then=Value(0)), When(tier=RiskTier.ORANGE, then=Value(1)),
    When(tier=RiskTier.YELLOW, then=Value(2)), default=Value(3), output_field=IntegerField(),
)  # fmt: skip
WAITING = DbCase(When(status=SignalStatus.OPEN, then=Value(0)), default=Value(1), output_field=IntegerField())


def may_read_queue(user) -> bool:
    """Whether the user holds a role that reads a signal queue (no query): the queue pages' gate."""
    scope = scoping.scope_for(user)
    return scope.unrestricted or bool(scope.roles & care_access.QUEUE_ROLES)


def queue_signals(user) -> QuerySet[Signal]:
    """The signals of the schools where the user reads the queue (never the ones they only raised themselves)."""
    return scoping.within_roles(user, scoping.visible(user, Signal), care_access.QUEUE_ROLES)


def signal_queue_for(user, *, source: str = "", status: str = SignalStatus.OPEN, school=None) -> QuerySet[Signal]:
    """The queue, risk first: waiting ones before decided ones, red, orange, yellow, then green; then the earliest
    due. `status` "" lists every status. Access: roster.scoping (queue roles only)."""
    signals = queue_signals(user)
    if source:
        signals = signals.filter(source=source)
    if status:
        signals = signals.filter(status=status)
    if school is not None:
        signals = signals.filter(school=school)
    return (
        signals.annotate(risk=RISK, waiting=WAITING)
        .select_related("student__school_class", "school", "raised_by", "decided_by")
        .order_by("waiting", "risk", F("due_at").asc(nulls_last=True), "-raised_at", "-pk")
    )


def my_concerns(user) -> QuerySet[Signal]:
    """The signals the user raised, newest first (their page shows only whether each was seen)."""
    return (
        scoping.visible(user, Signal).filter(raised_by_id=user.pk).select_related("student__school_class")
        .order_by("-raised_at", "-pk")
    )  # fmt: skip


@dataclass(frozen=True)
class QueueSummary:
    open: int
    overdue: int
    red: int


def queue_summary(user, now: datetime | None = None) -> QueueSummary:
    """How many signals wait in the user's queue, how many of them overdue and how many red (one query)."""
    now = now or timezone.now()
    row = (
        queue_signals(user)
        .filter(status=SignalStatus.OPEN)
        .aggregate(
            open=Count("pk"),
            overdue=Count("pk", filter=Q(due_at__lt=now)),
            red=Count("pk", filter=Q(tier=RiskTier.RED)),
        )
    )
    return QueueSummary(row["open"], row["overdue"], row["red"])


def term_start(now: datetime) -> datetime:
    """The start of the school term holding `now` (cases.care_selectors.term_period, the one home of the terms)."""
    start = term_period(timezone.localtime(now).date()).start
    return timezone.make_aware(datetime(start.year, start.month, start.day), timezone.get_current_timezone())


@dataclass(frozen=True)
class SourceCount:
    source: str
    label: str
    open: int
    this_term: int


def signal_counts(signals: QuerySet[Signal], now: datetime | None = None) -> list[SourceCount]:
    """Per source: signals waiting for triage and signals raised this term (one grouped query), every source listed."""
    since = term_start(now or timezone.now())
    rows = {
        row["source"]: row
        for row in signals.order_by()
        .values("source")
        .annotate(
            open=Count("pk", filter=Q(status=SignalStatus.OPEN)), term=Count("pk", filter=Q(raised_at__gte=since))
        )
    }
    return [
        SourceCount(source, str(label), rows.get(source, {}).get("open", 0), rows.get(source, {}).get("term", 0))
        for source, label in SignalSource.choices
    ]
