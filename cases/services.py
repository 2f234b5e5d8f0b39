"""The case's business rules: opening (from a flag, by hand), triage, staffing, the records each step writes,
approvals (escalation, de-escalation, referral, closure) and reopening.

Views, flows, admin actions and tasks all call these. Each checks who may act, in the service, not only in a view:
Viewflow's transitions check nothing. Every write leaves a history row with the acting user and a change reason.
May import: roster, screening.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Case as DbCase
from django.db.models import When
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from cases import access
from cases.models import (
    ACTIVE_STATUSES,
    EMERGENCY_ACCESS_ROLES,
    EMERGENCY_REASON_MIN_LENGTH,
    Agency,
    Case,
    CaseSource,
    CaseStatus,
    CaseTeamMember,
    Closure,
    ClosureEvaluation,
    CoordinationEntry,
    Decision,
    EmergencyAccess,
    FollowUp,
    InterventionPlan,
    InterviewNote,
    ParentContact,
    PlanMeasure,
    Referral,
    Reporter,
    SafetyAssessment,
    SafetyOutcome,
    Signal,
    SignalSource,
    SignalStatus,
    SupportRequest,
    SupportStatus,
    TeamSeat,
    TierChange,
)
from cases.notices import emergency_access_enqueue, red_case_enqueue
from cases.signal_queue import signal_raise
from cases.tiers import peak_tier, rank, tier_rule
from roster import audit, scoping
from roster.models import AccessAction, AccessLogEntry, AccessOutcome, RoleAssignment, School, Student, User
from roster.roles import Role
from screening.definitions import RiskTier

# --- Recording ------------------------------------------------------------------------------------------------


def _decide(request, actor, approve: bool, what: str, note: str = "", **fields):
    """Record the decision on a pending request (a Decided row), re-read under lock: decided once, never twice.
    Call inside a transaction. `fields` set alongside when given (e.g. the closure's evaluation)."""
    request = type(request).objects.select_for_update().get(pk=request.pk)
    if request.decision != Decision.PENDING:
        raise ValidationError(_("This request has already been decided."))
    request.decision = Decision.APPROVED if approve else Decision.REJECTED
    request.decided_by, request.decided_at = actor, timezone.now()
    for name, value in fields.items():
        if value is not None:
            setattr(request, name, value)
    _save(request, actor, f"{what} {request.decision}: {note}".strip(": "))
    return request


def _save(obj, actor, reason: str) -> None:
    obj._history_user = actor
    # simple-history keeps the reason in a varchar(100): PostgreSQL refuses a longer one (a person's free text).
    obj._change_reason = reason if len(reason) <= 100 else reason[:99] + "…"
    obj.save()


# --- Opening ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Opening:
    case: Case
    outcome: str  # "opened" (a new case, perhaps following an ended one), "raised" (tier went up) or "unchanged"


def case_open_for_flag(result, now=None) -> Opening:
    """A flagged screening result (yellow or above) → the student's case: opened, or, when one is active, updated (its
    tier only ever raised here; lowering needs approval). A student whose latest case ended (closed, or handed over
    outside the system) gets a new case at their school now, linked to it by `follows` (一生一案 across years and
    schools); reopening an ended case is a person's decision (case_reopen), never a flag's.

    Access: the system (the `student_flagged` event). Audit: the case's history row with the reason.
    """
    if result.tier == RiskTier.GREEN:
        raise ValidationError("a green result opens no case")
    now = now or timezone.now()
    student = result.student
    for attempt in range(2):  # a flag for the same student committed meanwhile: the second try finds its case
        try:
            with transaction.atomic():
                return _open_for_flag(result, student, now)
        except IntegrityError:
            if attempt:
                raise
    raise AssertionError("unreachable")


def _open_for_flag(result, student: Student, now) -> Opening:
    # One query for the student's active case and latest ended one (a student has few cases).
    cases = list(
        Case.objects.select_for_update().filter(student=student, status__in=(*ACTIVE_STATUSES, *ENDED_STATUSES))
        .order_by("-opened_at", "-pk")
    )  # fmt: skip
    # This result, at this tier, was delivered before (a task run again): never reopen or re-raise. A result
    # re-scored to another tier is a new flag.
    applied = next((c for c in cases if c.screening_result_id == result.pk and c.screened_tier == result.tier), None)
    if applied is not None:
        return Opening(applied, "unchanged")
    active = next((c for c in cases if c.status in ACTIVE_STATUSES), None)
    if active is not None:
        active.screening_result = result
        active.screened_tier = result.tier
        if rank(result.tier) > rank(active.tier):
            reason = f"screening flag raised the tier {active.tier} → {result.tier}"
            _tier_raise(None, active, result.tier, reason, why=_("raised to red by a new screening"), now=now)
            return _flag_signal(result, Opening(active, "raised"), now)
        _save(active, None, f"screening flag ({result.tier}) on an open case")
        return _flag_signal(result, Opening(active, "unchanged"), now)
    ended = next((c for c in cases if c.status in ENDED_STATUSES), None)
    opening = _open(student, ended, now, None, "a screening flag", source=CaseSource.SCREENING, tier=result.tier,
                    screening_result=result)  # fmt: skip
    return _flag_signal(result, opening, now)


# --- A flag is a signal too (issue 20): one triage queue, the flag's triage being its case's own triage step ----------


def flag_signal_source(result) -> str:
    """The signal source of a flagged result: a teacher checklist (排查表, an observer-rated instrument) or a
    screening."""
    from screening.models import ResultSource

    return SignalSource.CHECKLIST if result.source == ResultSource.OBSERVER else SignalSource.SCREENING


def _flag_reason(source: str) -> str:
    # Stored once in the deployment's language, as notices are (a reason is short and never clinical).
    with translation.override(settings.LANGUAGE_CODE):
        return str(SignalSource(source).label)


def _flag_signal(result, opening: Opening, now) -> Opening:
    """Record the flag in the school's signal queue, already decided: a new case, or added to the active one. One per
    result (key "result:<pk>"). Call inside the opening's transaction."""
    source = flag_signal_source(result)
    status = SignalStatus.CASE_OPENED if opening.outcome == "opened" else SignalStatus.ADDED_TO_CASE
    signal_raise(
        result.student, source=source, tier=result.tier, reason=_flag_reason(source), key=f"result:{result.pk}",
        now=now, status=status, case=opening.case,
    )  # fmt: skip
    return opening


# A case that ended: closed after its evaluation, or handed over outside the system when the student left.
ENDED_STATUSES = (CaseStatus.CLOSED, CaseStatus.TRANSFERRED)


def _open(student: Student, earlier: Case | None, now, actor, by: str, *, source: str, tier: str,
          **fields) -> Opening:  # fmt: skip
    """Open a new case at the student's school now, waiting for triage; linked to the student's latest ended case
    (`earlier`, at whichever school it was) so that the archive reads as one story. The earlier case stays as it
    ended, at its own school: its records are read under its school's rules, not handed to the new one."""
    case = Case(student=student, opened_at=now, opened_by=actor, follows=earlier)
    case.school_id = student.school_id
    if Student.school.is_cached(student):  # loaded with the result: the process start reads it
        case.school = student.school
    case.source, case.tier, case.screened_tier = source, tier, tier
    case.triaged, case.status, case.closed_at, case.clock_from = False, CaseStatus.OPEN, None, now
    for name, value in fields.items():
        setattr(case, name, value)
    _save(case, actor, f"opened by {by}")
    return Opening(case, "opened")


def cases_open_for_flags(results, now=None) -> list[Opening]:
    """`case_open_for_flag` for a batch (a large import): the students without any case get theirs in a few bulk
    statements; the rest (an active or closed case, or two results of one student) go one by one. Call inside a
    transaction. Access: the system. Audit: a history row per case, as one by one.
    """
    now = now or timezone.now()
    results = [r for r in results if r.tier != RiskTier.GREEN]
    students = {r.student_id for r in results}
    with_cases = set(
        Case.objects.select_for_update()
        .filter(student_id__in=students, status__in=(*ACTIVE_STATUSES, *ENDED_STATUSES))
        .values_list("student_id", flat=True)
    )
    fresh, later, seen = [], [], set()
    for result in results:
        if result.student_id in with_cases or result.student_id in seen:
            later.append(result)
        else:
            seen.add(result.student_id)
            fresh.append(result)
    cases = [
        Case(
            student_id=r.student_id,
            school_id=r.student.school_id,
            source=CaseSource.SCREENING,
            screening_result=r,
            tier=r.tier,
            screened_tier=r.tier,
            status=CaseStatus.OPEN,
            opened_at=now,
            clock_from=now,
        )  # fmt: skip
        for r in fresh
    ]
    Case.objects.bulk_create(cases)
    Case.history.bulk_history_create(cases, default_change_reason="opened by a screening flag", default_date=now)
    for case, result in zip(cases, fresh, strict=True):
        case.student = result.student  # loaded with the result: its school is what the process start reads
    _flag_signals_bulk(fresh, cases, now)
    return [Opening(case, "opened") for case in cases] + [case_open_for_flag(r, now) for r in later]


def _flag_signals_bulk(results, cases: list[Case], now) -> list[Signal]:
    """`_flag_signal` for the new cases of a batch, in three statements whatever its size (a key raised before,
    e.g. by a teacher checklist's own signal, is left as it is)."""
    if not results:
        return []
    keys = {f"result:{r.pk}" for r in results}
    taken = set(Signal.objects.filter(key__in=keys).values_list("key", flat=True))
    reasons = {source: _flag_reason(source) for source in (SignalSource.SCREENING, SignalSource.CHECKLIST)}
    signals = []
    for result, case in zip(results, cases, strict=True):
        if f"result:{result.pk}" in taken:
            continue
        source = flag_signal_source(result)
        signals.append(Signal(
            student_id=result.student_id, school_id=case.school_id, source=source, tier=result.tier,
            reason=reasons[source], reporter=Reporter.SYSTEM, raised_at=now, key=f"result:{result.pk}",
            status=SignalStatus.CASE_OPENED, decided_at=now, case=case,
        ))  # fmt: skip
    Signal.objects.bulk_create(signals)
    for source in {s.source for s in signals}:
        Signal.history.bulk_history_create(
            [s for s in signals if s.source == source], default_change_reason=f"raised: {source}", default_date=now
        )
    return signals


def case_refer(actor, student: Student, reason: str, tier: str = RiskTier.YELLOW) -> Opening:
    """Any staff member who can see the student refers them (seed 001's warning network); the case waits for a
    psychology teacher's triage. An active case is returned as it is, with the referral in its history.
    """
    if not reason.strip():
        raise ValidationError(_("Say why you are referring this student."))
    if RiskTier(tier) == RiskTier.GREEN:
        raise ValidationError(_("A referral needs a tier of yellow or above."))
    if not scoping.can_view(actor, student):
        raise PermissionDenied(_("You cannot refer a student you cannot see."))
    return _refer(actor, student, reason, tier)


def case_refer_for_system(student: Student, reason: str, tier: str) -> Opening:
    """`case_refer` by a rule, not a person (a red signal nobody raised by hand, e.g. a red teacher checklist scored
    by the system): the same case and crisis path, with no one to check.

    Access: the system (workflows' receiver of a new red signal); never called for a person's request. Audit: the
    case's history row with no user."""
    if RiskTier(tier) == RiskTier.GREEN:
        raise ValidationError(_("A referral needs a tier of yellow or above."))
    return _refer(None, student, reason, tier)


def _refer(actor, student: Student, reason: str, tier: str) -> Opening:
    now = timezone.now()
    with transaction.atomic():
        active = Case.objects.select_for_update().filter(student=student, status__in=ACTIVE_STATUSES).first()
        if active is not None:
            if rank(tier) > rank(active.tier):
                _tier_raise(actor, active, tier, f"raised by staff concern: {active.tier} → {tier}: {reason}",
                            why=_("raised to red by a staff concern"), now=now)  # fmt: skip
                return Opening(active, "raised")
            _save(active, actor, f"referred again by staff: {reason}")
            return Opening(active, "unchanged")
        ended = (
            Case.objects.select_for_update().filter(student=student, status__in=ENDED_STATUSES)
            .order_by("-opened_at", "-pk").first()
        )  # fmt: skip
        opening = _open(student, ended, now, actor, "a staff referral", source=CaseSource.TEACHER_REFERRAL,
                        tier=tier, reason=reason)  # fmt: skip
        red_case_enqueue(opening.case, "", _("referred as red by staff"))
        return opening


def case_signal_add(actor, case: Case, note: str) -> Case:
    """A signal triaged into the student's open case (issue 20): the case's history says so; its tier and clocks
    stay (raising the tier is "open a case" on the signal, which goes through case_refer).

    Access: the school's psychology teachers. Audit: the case's history row with the triager's note."""
    access.require(actor, case, Role.PSYCHOLOGY_TEACHER)
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case.pk)
        if case.status not in ACTIVE_STATUSES:
            raise ValidationError(_("The student's case is no longer open: open a new case instead."))
        _save(case, actor, f"signal added to the case: {note}".strip(": "))
    return case


# --- Triage and staffing ----------------------------------------------------------------------------------------


def case_triage(actor, case: Case, tier: str, reason: str) -> Case:
    """The triage interview confirms or changes the screening tier. Green proposes closing it as a false positive
    (the principal decides). Access: the school's psychology teachers."""
    access.require(actor, case, Role.PSYCHOLOGY_TEACHER)
    if not reason.strip():
        raise ValidationError(_("Give the reason for the tier."))
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case.pk)
        previous = case.tier
        if lowering_needs_approval(case, tier) and tier != RiskTier.GREEN:
            # Never lowered by the triage alone: an independent approver decides (the tier stays until then).
            case.triaged = True
            _save(case, actor, f"triage asks to lower the tier {previous} → {tier}: {reason}")
            _tier_change_request(actor, case, tier, reason)
            return case
        case.tier, case.triaged = tier, True
        if rank(tier) > rank(previous):
            case.clock_from = timezone.now()
        _save(case, actor, f"triage: {previous} → {tier}: {reason}")
        red_case_enqueue(case, previous, _("raised to red at triage"))
        if rank(tier) > rank(previous) and case.team.filter(left_at__isnull=True).exists():
            restaff(case, actor)
        if tier == RiskTier.GREEN:
            closure_propose(actor, case, _("False positive at triage: %(reason)s") % {"reason": reason})
    return case


def lowering_needs_approval(case: Case, tier: str) -> bool:
    """Lowering an orange or red tier, at triage or later, takes an independent approval (DESIGN §3)."""
    return rank(tier) < rank(case.tier) and case.tier in (RiskTier.ORANGE, RiskTier.RED)


def _tier_raise(actor, case: Case, to_tier: str, reason: str, *, why: str, now=None) -> None:
    """Raise the tier at once: the new tier's team (三包一 for orange and red) and clocks, and red tells the district
    centre now. Call inside a transaction with the case locked."""
    previous = case.tier
    case.tier, case.triaged, case.clock_from = to_tier, False, now or timezone.now()
    _save(case, actor, reason)
    red_case_enqueue(case, previous, why)
    if case.team.filter(left_at__isnull=True).exists():
        restaff(case, actor)


def case_tier_raise(actor, case: Case, to_tier: str, reason: str) -> Case:
    """A raise asked for by the team (a follow-up that finds the student worse): takes effect at once, no approval.
    Access: the case's team or the school's psychology teachers."""
    if not access.on_team(actor, case):
        access.require(actor, case, Role.PSYCHOLOGY_TEACHER)
    if rank(to_tier) <= rank(case.tier):
        raise ValidationError(_("A raise needs a higher tier than the case has."))
    if not reason.strip():
        raise ValidationError(_("Give the reason for the tier."))
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case.pk)
        _tier_raise(actor, case, to_tier, f"tier raised {case.tier} → {to_tier}: {reason}",
                    why=_("raised to red by the case's team"))  # fmt: skip
    return case


def team_proposal(case: Case) -> dict[str, User | None]:
    """The team the roster suggests for the case's tier: the student's homeroom teacher, a psychology teacher and
    (三包一) the principal of the school. Seats with nobody to fill them are None."""
    school_roles = RoleAssignment.objects.filter(school_id=case.school_id, user__is_active=True).order_by("pk")
    homeroom = (
        RoleAssignment.objects.filter(role=Role.HOMEROOM_TEACHER, school_class_id=case.student.school_class_id)
        .filter(user__is_active=True)
        .first()
    )
    psychology = school_roles.filter(role=Role.PSYCHOLOGY_TEACHER).first()
    leader = school_roles.filter(role=Role.PRINCIPAL).first()
    found = {
        TeamSeat.HOMEROOM_TEACHER: homeroom.user if homeroom else None,
        TeamSeat.PSYCHOLOGY_TEACHER: psychology.user if psychology else None,
        TeamSeat.SCHOOL_LEADER: leader.user if leader else None,
    }
    return {seat: found[seat] for seat in tier_rule(case.tier).seats}


def team_set(actor, case: Case, members: dict[str, User], reason: str = "staffing") -> list[CaseTeamMember]:
    """Seat the team for the case's tier: every seat of 二包一/三包一 filled, each by someone holding its role at the
    school; seats the tier does not have are vacated. Access: the school's psychology teachers and principals, or
    `actor=None` for the system (re-staffing after an approved tier change)."""
    if actor is not None:
        access.require(actor, case, Role.PSYCHOLOGY_TEACHER, Role.PRINCIPAL)
    seats = tier_rule(case.tier).seats
    missing = [str(TeamSeat(s).label) for s in seats if members.get(s) is None]
    if missing:
        raise ValidationError(_("Every seat of the team needs a person: %(seats)s.") % {"seats": "、".join(missing)})
    for seat in seats:
        if not access.seat_allowed(members[seat], seat, case):
            raise ValidationError(
                _("%(name)s cannot take the seat “%(seat)s” at this school.")
                % {"name": members[seat].name or members[seat].username, "seat": str(TeamSeat(seat).label)}
            )
    now = timezone.now()
    with transaction.atomic():
        current = {m.seat: m for m in case.team.select_for_update().filter(left_at__isnull=True)}
        for seat, member in current.items():
            if seat not in seats or members[seat].pk != member.user_id:
                member.left_at = now
                _save(member, actor, reason)
        seated = []
        for seat in seats:
            member = current.get(seat)
            if member is None or member.left_at is not None:
                member = CaseTeamMember(case=case, user=members[seat], seat=seat, joined_at=now)
                _save(member, actor, reason)
            seated.append(member)
    return seated


# --- What the steps write ---------------------------------------------------------------------------------------


def interview_record(actor, case: Case, note: str, *, held_at=None, restricted: bool = False) -> InterviewNote:
    """调研访谈. Access: the case's psychology teacher (or any of the school's)."""
    access.require_seat_or_role(actor, case, TeamSeat.PSYCHOLOGY_TEACHER, Role.PSYCHOLOGY_TEACHER)
    if not note.strip():
        raise ValidationError(_("Write what the interview found."))
    # Written at the case's school: a restricted note stays that school's when the case moves (cases.transfers).
    interview = InterviewNote(
        case=case, author=actor, held_at=held_at or timezone.now(), note=note, restricted=restricted,
        school_id=case.school_id,
    )  # fmt: skip
    _save(interview, actor, "interview")
    return interview


def parent_contact_record(actor, case: Case, *, guardian: str, channel: str, outcome: str, consent: str,
                          contacted_at=None) -> ParentContact:  # fmt: skip
    """Parent contact. Access: the case's team (usually the homeroom teacher) or the school's psychology teachers."""
    if not access.on_team(actor, case):
        access.require(actor, case, Role.PSYCHOLOGY_TEACHER, Role.PRINCIPAL)
    contact = ParentContact(
        case=case, contacted_by=actor, contacted_at=contacted_at or timezone.now(), guardian=guardian,
        channel=channel, outcome=outcome, consent=consent,
    )  # fmt: skip
    contact.full_clean(exclude=["case", "contacted_by"])
    _save(contact, actor, "parent contact")
    return contact


def plan_record(actor, case: Case, *, goals: str, review_on, needs_referral: bool,
                measures: list[tuple[str, User]]) -> InterventionPlan:  # fmt: skip
    """一生一策: goals, measures each with a responsible team member, a review date. Access: psychology teachers."""
    access.require_seat_or_role(actor, case, TeamSeat.PSYCHOLOGY_TEACHER, Role.PSYCHOLOGY_TEACHER)
    if not goals.strip() or not measures:
        raise ValidationError(_("A plan needs goals and at least one measure."))
    team = set(case.team.filter(left_at__isnull=True).values_list("user_id", flat=True))
    if any(user.pk not in team for _, user in measures):
        raise ValidationError(_("Each measure's responsible person must be on the case's team."))
    with transaction.atomic():
        plan = InterventionPlan(
            case=case, goals=goals, review_on=review_on, needs_referral=needs_referral, author=actor,
            created_at=timezone.now(),
        )  # fmt: skip
        _save(plan, actor, "intervention plan")
        for description, user in measures:
            _save(PlanMeasure(plan=plan, description=description, responsible=user), actor, "intervention plan")
    return plan


def referral_request(actor, case: Case, *, institution: str, reason: str, parental_consent: str) -> Referral:
    """转介 asked for by the psychology teacher; the principal decides. Without the parents' consent nobody is
    referred: the request is stored and the principal sees it, but approving it is refused."""
    access.require_seat_or_role(actor, case, TeamSeat.PSYCHOLOGY_TEACHER, Role.PSYCHOLOGY_TEACHER)
    referral = Referral(
        case=case, institution=institution, reason=reason, parental_consent=parental_consent, requested_by=actor,
        requested_at=timezone.now(),
    )  # fmt: skip
    referral.full_clean(exclude=["case", "requested_by", "decided_by"])
    _save(referral, actor, "referral requested")
    return referral


def referral_decide(actor, referral: Referral, approve: bool, note: str = "") -> Referral:
    """Access: a principal of the school who is not on the case's team (separation of duties); the district centre
    when every principal of the school sits on it."""
    case = referral.case
    access.require(actor, case, access.approver_role(case))
    access.require_independent(actor, case, referral.requested_by_id)
    if approve and referral.parental_consent != "given":
        raise ValidationError(_("A referral needs the parents' consent; record it first."))
    with transaction.atomic():
        return _decide(referral, actor, approve, "referral", note)


def referral_record_outcome(actor, referral: Referral, *, referred_on=None, outcome: str = "",
                            feedback_received_on=None, feedback: str = "") -> Referral:  # fmt: skip
    """The referral made, and later the institution's feedback. Access: the case's psychology teacher."""
    access.require_seat_or_role(actor, referral.case, TeamSeat.PSYCHOLOGY_TEACHER, Role.PSYCHOLOGY_TEACHER)
    with transaction.atomic():
        referral = Referral.objects.select_for_update().get(pk=referral.pk)
        if referral.decision != Decision.APPROVED:
            raise ValidationError(_("Only an approved referral can be made."))
        for name, value in (("referred_on", referred_on), ("outcome", outcome),
                            ("feedback_received_on", feedback_received_on), ("feedback", feedback)):  # fmt: skip
            if value:
                setattr(referral, name, value)
        _save(referral, actor, "referral feedback" if feedback else "referral made")
    return referral


def followup_record(actor, case: Case, *, note: str, outcome: str, reassessment_score: int | None = None) -> FollowUp:
    """A follow-up session. Access: the case's team or the school's psychology teachers."""
    if not access.on_team(actor, case):
        access.require(actor, case, Role.PSYCHOLOGY_TEACHER)
    followup = FollowUp(
        case=case, held_by=actor, held_at=timezone.now(), note=note, outcome=outcome,
        reassessment_score=reassessment_score,
    )  # fmt: skip
    followup.full_clean(exclude=["case", "held_by"])
    _save(followup, actor, "follow-up")
    return followup


# --- Approvals --------------------------------------------------------------------------------------------------


def tier_change_request(actor, case: Case, to_tier: str, reason: str) -> TierChange:
    """Escalation or de-escalation, asked for by the team; the principal decides (DESIGN §3)."""
    if not access.on_team(actor, case):
        access.require(actor, case, Role.PSYCHOLOGY_TEACHER)
    if to_tier == case.tier or RiskTier(to_tier) == RiskTier.GREEN:
        raise ValidationError(_("Choose another tier of yellow or above; to end the case, propose closure."))
    if rank(to_tier) > rank(case.tier):
        raise ValidationError(_("A raise takes effect at once: raise the tier instead of asking for it."))
    return _tier_change_request(actor, case, to_tier, reason)


def _tier_change_request(actor, case: Case, to_tier: str, reason: str) -> TierChange:
    if not reason.strip():
        raise ValidationError(_("Give the reason for lowering the tier."))
    change = TierChange(
        case=case, from_tier=case.tier, to_tier=to_tier, reason=reason, requested_by=actor, requested_at=timezone.now()
    )
    _save(change, actor, "tier change requested")
    return change


def tier_change_decide(actor, change: TierChange, approve: bool) -> TierChange:
    """Access: a principal of the school not on the team (else the district centre). Approved, the case takes the
    tier and is re-staffed."""
    case = change.case
    access.require(actor, case, access.approver_role(case))
    access.require_independent(actor, case, change.requested_by_id)
    with transaction.atomic():
        change = _decide(change, actor, approve, "tier change")
        if approve:
            case = Case.objects.select_for_update().get(pk=case.pk)
            previous, case.tier = case.tier, change.to_tier
            _save(case, actor, f"tier change approved: {change.from_tier} → {change.to_tier}")
            red_case_enqueue(case, previous, _("escalation approved"))
            if case.team.filter(left_at__isnull=True).exists():
                restaff(case, actor)
    return change


def restaff(case: Case, actor=None) -> None:
    """After a tier change: keep who sits on the seats the new tier still has, fill new seats from the roster."""
    current = {m.seat: m.user for m in case.team.filter(left_at__isnull=True).select_related("user")}
    proposal = team_proposal(case)
    members = {seat: current.get(seat) or proposal.get(seat) for seat in tier_rule(case.tier).seats}
    team_set(None, case, members, reason=f"re-staffed for {case.tier}")


def closure_propose(actor, case: Case, reason: str, evaluation: str = "") -> Closure:
    """结案 proposed by the team (or by triage for a false positive). The case waits in status "closing"."""
    if not access.on_team(actor, case):
        access.require(actor, case, Role.PSYCHOLOGY_TEACHER)
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case.pk)
        if case.status != CaseStatus.OPEN:
            raise ValidationError(_("Only an open case can be proposed for closure."))
        closure = Closure(case=case, reason=reason, evaluation=evaluation, proposed_by=actor,
                          proposed_at=timezone.now())  # fmt: skip
        _save(closure, actor, "closure proposed")
        case.status = CaseStatus.CLOSING
        _save(case, actor, "closure proposed")
    return closure


def closure_decide(actor, closure: Closure, approve: bool, evaluation: str = "") -> Closure:
    """A level higher evaluates (seed 001): the principal for yellow (and false positives), the district centre for
    orange and red. Nobody decides a closure they proposed or of a case whose team they are on."""
    closure = Closure.objects.select_related("case").get(pk=closure.pk)  # the level it has reached now
    case = closure.case
    role = access.closure_approver_role(case, closure)
    access.require(actor, case, role)
    access.require_independent(actor, case, closure.proposed_by_id)
    if not approve and not evaluation.strip():
        raise ValidationError(_("Say why the closure is not approved."))
    with transaction.atomic():
        locked = Closure.objects.select_for_update().get(pk=closure.pk)
        if locked.decision != Decision.PENDING or locked.levels_approved != closure.levels_approved:
            raise ValidationError(_("This request has already been decided."))
        chain = access.closure_chain(case)
        now = timezone.now()
        verdict = "approved" if approve else "rejected"
        evaluated = ClosureEvaluation(closure=locked, level=locked.levels_approved, role=role, approved=approve,
                                      evaluation=evaluation, decided_by=actor, decided_at=now)  # fmt: skip
        _save(evaluated, actor, f"closure evaluated at level {locked.levels_approved + 1}: {verdict}")
        if approve and locked.levels_approved + 1 < len(chain):
            locked.levels_approved += 1
            _save(locked, actor, "closure approved at one level, next level to evaluate")
            return locked
        if approve:
            locked.levels_approved += 1
        closure = _decide(locked, actor, approve, "closure", evaluation=evaluation or None,
                          levels_approved=locked.levels_approved)  # fmt: skip
        case = Case.objects.select_for_update().get(pk=case.pk)
        if approve:
            case.status, case.closed_at = CaseStatus.CLOSED, now
            for member in case.team.filter(left_at__isnull=True):
                member.left_at = now
                _save(member, actor, "case closed")
        else:
            case.status = CaseStatus.OPEN
            if case.tier == RiskTier.GREEN:  # a false positive not confirmed: the screening's tier stands
                case.tier = peak_tier(case)
        _save(case, actor, "closed" if approve else "closure rejected")
    return closure


def case_reopen(actor, case: Case, reason: str) -> Case:
    """A closed case reopened by hand, its history kept. Access: the school's psychology teachers and principals."""
    access.require(actor, case, Role.PSYCHOLOGY_TEACHER, Role.PRINCIPAL)
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case.pk)
        if case.status != CaseStatus.CLOSED:
            raise ValidationError(_("Only a closed case can be reopened."))
        if Case.objects.filter(student_id=case.student_id, status__in=ACTIVE_STATUSES).exists():
            raise ValidationError(_("The student already has an open case."))
        case.status, case.closed_at, case.triaged = CaseStatus.OPEN, None, False
        case.clock_from = timezone.now()  # every clock restarts from the reopening
        _save(case, actor, f"reopened: {reason}")
    return case


# --- Brief safety assessment ------------------------------------------------------------------------------------


def safety_assessment_record(actor, case: Case, *, outcome: str, parents_informed: bool, note: str,
                             alert=None) -> SafetyAssessment:  # fmt: skip
    """The brief safety assessment of a non-acute critical answer, before the student goes home. "Not safe" turns
    the case red at once (the new tier's team and clocks; the district told). Access: the school's psychology
    teachers (or the case's)."""
    access.require_seat_or_role(actor, case, TeamSeat.PSYCHOLOGY_TEACHER, Role.PSYCHOLOGY_TEACHER)
    if outcome not in SafetyOutcome.values:
        raise ValidationError(_("Choose the outcome of the assessment."))
    if not note.strip():
        raise ValidationError(_("Write what the assessment found."))
    with transaction.atomic():
        assessment = SafetyAssessment(case=case, alert=alert, outcome=outcome, parents_informed=parents_informed,
                                      note=note, assessed_by=actor, assessed_at=timezone.now())  # fmt: skip
        _save(assessment, actor, "brief safety assessment")
        if outcome == SafetyOutcome.NOT_SAFE and case.tier != RiskTier.RED:
            case = Case.objects.select_for_update().get(pk=case.pk)
            _tier_raise(actor, case, RiskTier.RED, f"safety assessment: not safe: {case.tier} → red",
                        why=_("not safe to go home at the brief safety assessment"))  # fmt: skip
    return assessment


# --- District support (申请区县支持) --------------------------------------------------------------------------------


def support_request(actor, case: Case, reason: str) -> SupportRequest:
    """The team asks the district centre to join the case (seed 002: 县区…第一时间介入，协调卫健、公安、社区). One open
    request per case. Access: the case's team, the school's psychology teachers and principals."""
    if not access.on_team(actor, case):
        access.require(actor, case, Role.PSYCHOLOGY_TEACHER, Role.PRINCIPAL)
    if not reason.strip():
        raise ValidationError(_("Say what support the case needs."))
    with transaction.atomic():
        Case.objects.select_for_update().get(pk=case.pk)
        if case.support_requests.exclude(status=SupportStatus.ENDED).exists():
            raise ValidationError(_("The district centre has already been asked to support this case."))
        request = SupportRequest(case=case, reason=reason, requested_by=actor, requested_at=timezone.now())
        _save(request, actor, "district support requested")
    return request


def support_accept(actor, request: SupportRequest) -> SupportRequest:
    """The district centre takes the request: it joins the case. Access: the district centre of the case's
    district."""
    access.require(actor, request.case, Role.DISTRICT_CENTRE)
    with transaction.atomic():
        request = SupportRequest.objects.select_for_update().get(pk=request.pk)
        if request.status != SupportStatus.OPEN:
            raise ValidationError(_("This request has already been taken."))
        request.status, request.accepted_by, request.accepted_at = SupportStatus.ACCEPTED, actor, timezone.now()
        _save(request, actor, "district support accepted")
    return request


def coordination_record(actor, case: Case, *, agency: str, contact: str, agreed: str,
                        request: SupportRequest | None = None) -> CoordinationEntry:  # fmt: skip
    """A line of the case's coordination log: who outside the school was contacted (health, police, community…)
    and what was agreed. Access: the district centre, the case's team, the school's psychology teachers and
    principals."""
    if not access.on_team(actor, case):
        access.require(actor, case, Role.DISTRICT_CENTRE, Role.PSYCHOLOGY_TEACHER, Role.PRINCIPAL)
    if agency not in Agency.values:
        raise ValidationError(_("Choose who was contacted."))
    if not contact.strip() or not agreed.strip():
        raise ValidationError(_("Say who was contacted and what was agreed."))
    entry = CoordinationEntry(case=case, support_request=request, agency=agency, contact=contact, agreed=agreed,
                              author=actor, recorded_at=timezone.now())  # fmt: skip
    _save(entry, actor, "coordination recorded")
    return entry


def seats_hand_over(actor, leaver: User, successor: User, school) -> list[CaseTeamMember]:
    """A staff member leaves a role: every seat they hold on the school's active cases passes to `successor`, who
    must be able to take each seat (its role at the school). All or nothing. Access: the school's principals.

    Returns the new seats. Audit: each old seat closed and each new one opened with the reason "handover".
    """
    if leaver.pk == successor.pk:
        raise ValidationError(_("Choose someone else to take over."))
    if not RoleAssignment.objects.filter(user=actor, role=Role.PRINCIPAL, school=school).exists():
        raise PermissionDenied(_("Only a principal of the school hands over a colleague's work."))
    seats = list(
        CaseTeamMember.objects.select_for_update()
        .filter(user=leaver, left_at__isnull=True, case__school=school, case__status__in=ACTIVE_STATUSES)
        .select_related("case")
    )
    refused = sorted({str(TeamSeat(m.seat).label) for m in seats if not access.seat_allowed(successor, m.seat, m.case)})
    if refused:
        raise ValidationError(
            _("%(name)s cannot take these seats at this school: %(seats)s.")
            % {"name": successor.name or successor.username, "seats": "、".join(refused)}
        )
    now = timezone.now()
    reason = f"handover from {leaver.username} to {successor.username}"
    taken = []
    for member in seats:
        member.left_at = now
        _save(member, actor, reason)
        new = CaseTeamMember(case=member.case, user=successor, seat=member.seat, joined_at=now)
        _save(new, actor, reason)
        taken.append(new)
    return taken


# --- Emergency access ("break the glass") -----------------------------------------------------------------------


class EmergencyAccessRefused(ValidationError):
    """Breaking the glass was refused: the message says why; no grant was written."""


@dataclass(frozen=True)
class EmergencyAccessOutcome:
    case: Case
    grant: EmergencyAccess | None  # None: the case was in the user's scope already, nothing was granted


def emergency_access_may_request(user) -> bool:
    """Whether the user holds a role that may break the glass (no query: the scope is read once per request)."""
    return bool(scoping.scope_for(user).roles & EMERGENCY_ACCESS_ROLES)


def _emergency_cities(user) -> set[int]:
    """The cities where the user holds a role that may break the glass: the only place a student number is looked up."""
    rows = RoleAssignment.objects.filter(user_id=user.pk, role__in=list(EMERGENCY_ACCESS_ROLES)).values_list(
        "city_id", "district__city_id", "school__district__city_id", "school_class__school__district__city_id"
    )
    return {city for row in rows for city in row if city}


def emergency_access_schools(user):
    """The schools a user may name when breaking the glass: every school of their own city, by district then name.

    Access: anyone (the list of a city's schools is not personal data); empty without a role that may break the glass.
    Audit: none (no personal data)."""
    return (
        School.objects.filter(district__city_id__in=_emergency_cities(user))
        .select_related("district")
        .order_by("district__division_code", "name", "code")
    )


def _emergency_refused(actor, message: str, *, ids=()) -> EmergencyAccessRefused:
    audit.record(AccessAction.CHANGE, object_type=audit.label(EmergencyAccess), object_ids=ids,
                 outcome=AccessOutcome.DENIED, user=actor)  # fmt: skip
    return EmergencyAccessRefused(message)


def emergency_access_grant(
    actor, *, school: int | None, student_no: str, reason: str, now=None
) -> EmergencyAccessOutcome:
    """Break the glass: read the case of the student with exactly this student number at the school named, in the
    actor's own city, for settings.EMERGENCY_ACCESS_HOURS, for the reason typed. Read only: the case's steps and
    services still ask for a role at the case's school, which a grant does not give.

    Access: psychology teachers, principals, district and city centres (EMERGENCY_ACCESS_ROLES); an exact number at
    one named school (student numbers are unique per school only), never a search; another city's students are
    never found. At most settings.EMERGENCY_ACCESS_DAILY_LIMIT attempts in 24 hours, counted under a lock on the
    actor's user row so parallel requests cannot pass it. A case already in scope is returned without a grant. The
    case picked is the student's active case, else their latest, among the cases out of scope.
    Audit: the grant row (who, case, reason, when, until, with history) and an access-log entry (change of
    cases.emergencyaccess, the grant's id); every refusal after the reason was checked is logged as denied. The
    district centre of the case's district and the case school's principal are notified after commit.
    """
    reason = (reason or "").strip()
    student_no = (student_no or "").strip()
    if len(reason) < EMERGENCY_REASON_MIN_LENGTH:
        raise EmergencyAccessRefused(
            _("Say why in at least %(count)s characters: the district reads it.")
            % {"count": EMERGENCY_REASON_MIN_LENGTH}
        )
    if not emergency_access_may_request(actor):
        raise _emergency_refused(
            actor, _("Emergency access is for psychology teachers, principals and the district and city centres.")
        )
    now = now or timezone.now()
    with transaction.atomic():
        # One person's requests queue here, so the count below and the entry this attempt writes happen together:
        # parallel posts cannot all read "4 of 5" (a row lock on PostgreSQL; SQLite lets one writer in at a time).
        list(User.objects.select_for_update().filter(pk=actor.pk).values_list("pk", flat=True))
        result = _emergency_attempt(actor, school=school, student_no=student_no, reason=reason, now=now)
    if isinstance(result, EmergencyAccessRefused):
        raise result  # its denied entry is committed: it counts against the limit
    return result


def _emergency_attempt(actor, *, school, student_no, reason, now) -> EmergencyAccessOutcome | EmergencyAccessRefused:
    """The limit, the look-up and the grant, under the actor's lock (emergency_access_grant). A refusal is logged and
    returned, not raised, so that its entry is written in the same transaction as the count it was checked against."""
    attempts = AccessLogEntry.objects.filter(
        actor_id=actor.pk, object_type=audit.label(EmergencyAccess), at__gte=now - timedelta(hours=24)
    )
    if attempts.count() >= settings.EMERGENCY_ACCESS_DAILY_LIMIT:
        return _emergency_refused(
            actor,
            _("You have asked for emergency access %(count)s times in 24 hours, the most allowed. Ask the district "
              "centre to open the case for you.") % {"count": settings.EMERGENCY_ACCESS_DAILY_LIMIT},
        )  # fmt: skip
    cases = (
        Case.objects.filter(
            student__school_id=school, student__student_no=student_no,
            student__school__district__city_id__in=_emergency_cities(actor),
        )
        .annotate(inactive=DbCase(When(status__in=ACTIVE_STATUSES, then=0), default=1))
        .order_by("inactive", "-opened_at", "-pk")
    ) if student_no and school else Case.objects.none()  # fmt: skip
    in_scope = set(scoping.visible(actor, cases).values_list("pk", flat=True))
    found = list(cases[:20])
    outside = [case for case in found if case.pk not in in_scope]
    # The same words whether the number is unknown, at another school or city, or a student without a case; and
    # should (school, number) ever name two students (student_no_unique_in_school), no guess is made between them.
    no_case = _(
        "No case was found for this student number at the school chosen. Check the school and the number and try again."
    )
    if len({case.student_id for case in found}) > 1:
        return _emergency_refused(actor, no_case)
    if not outside:
        if found:
            return EmergencyAccessOutcome(case=found[0], grant=None)
        return _emergency_refused(actor, no_case)
    case = outside[0]
    grant = EmergencyAccess(
        user=actor, case=case, reason=reason, granted_at=now,
        expires_at=now + timedelta(hours=settings.EMERGENCY_ACCESS_HOURS),
    )  # fmt: skip
    _save(grant, actor, "emergency access")
    audit.record(AccessAction.CHANGE, object_type=audit.label(EmergencyAccess), object_ids=[grant.pk], user=actor)
    emergency_access_enqueue(grant)
    return EmergencyAccessOutcome(case=case, grant=grant)


def emergency_access_current(user, case: Case) -> EmergencyAccess | None:
    """The user's own unexpired grant to the case, the one lasting longest; None without one.

    Access: the user, about themselves (the case page's banner)."""
    return (
        EmergencyAccess.objects.filter(user_id=user.pk, case_id=case.pk, expires_at__gt=timezone.now())
        .order_by("-expires_at")
        .first()
    )
