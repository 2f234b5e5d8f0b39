"""Who may read, change, approve or see names on a case: the one home of every case-access rule (DESIGN §2, §5).

Rows are scoped by roster.scoping (CasesConfig.ready registers the case models: readers, the team rule for homeroom
teachers, restricted notes, emergency grants). This module answers the questions about one case on top of it:
whether someone holds a role over the case's school (role and place in ONE assignment, roster.scoping.holds_over),
sits on its team, may take a seat, decides its requests, sees names or clinical text, and may do each action a case
page offers. Pages reach a case through `access_case_by_id`, which checks, logs the reading or the refusal with its
real outcome, and answers forbidden and missing with the same 404. A change is logged by `change_logged` with the
outcome it had: refused is never written as "ok".

Which rows of each case model a role reads at all (readers, the team rule, restricted notes, emergency grants) is
registered here too (`register_case_models`, run by CasesConfig.ready). Services call `require*` (PermissionDenied);
pages and flows call the predicates. Nothing else decides case access.
May import: roster, screening.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from enum import StrEnum

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import F, Q
from django.http import Http404
from django.utils.translation import gettext as _

from cases.models import Case, CaseTransfer, Closure, Decision, InterviewNote, TransferStatus
from cases.tiers import SEAT_ROLE, peak_tier, tier_rule
from roster import audit, scoping
from roster.models import AccessAction, AccessOutcome, RoleAssignment, School, Student, User
from roster.roles import Role
from screening.models import ScreeningResult

# --- Roles over the case's school, the team, seats ------------------------------------------------------------------


def holds(user, roles: str | Iterable[str], case: Case) -> bool:
    """Whether the user holds any of `roles` over the case's school (at it, its district or its city), in one
    assignment: a principal of one school who audits a district is no principal of that district's schools."""
    return scoping.holds_over(user, roles, case.school)


def on_team(user, case: Case, seat: str | None = None) -> bool:
    members = case.team.filter(user=user, left_at__isnull=True)
    return (members.filter(seat=seat) if seat else members).exists()


def seat_allowed(user: User, seat: str, case: Case) -> bool:
    """Whether `user` may take `seat`: the seat's role at the case's school (homeroom: at any of its classes)."""
    role = SEAT_ROLE[seat]
    mine = RoleAssignment.objects.filter(user=user, role=role, user__is_active=True)
    if role == Role.HOMEROOM_TEACHER:
        return mine.filter(school_class__school_id=case.school_id).exists()
    return mine.filter(school_id=case.school_id).exists()


def _refusal() -> PermissionDenied:
    return PermissionDenied(_("You may not do this for this case."))


def require(user, case: Case, *roles: str) -> None:
    """The user sees the case and holds one of `roles` over its school; PermissionDenied otherwise."""
    if not scoping.can_view(user, case) or not holds(user, roles, case):
        raise _refusal()


def require_seat_or_role(user, case: Case, seat: str, role: str) -> None:
    """The user sits in `seat` on the case's team, or sees the case and holds `role` over its school."""
    if on_team(user, case, seat) or (scoping.can_view(user, case) and holds(user, role, case)):
        return
    raise _refusal()


def require_independent(user, case: Case, requested_by_id: int | None = None) -> None:
    """Separation of duties: nobody approves their own request, nor a request about a case whose team they sit on."""
    if user.pk == requested_by_id or on_team(user, case):
        raise PermissionDenied(_("You cannot approve a request about a case whose team you are on."))


# --- Who decides ----------------------------------------------------------------------------------------------------


def approver_role(case: Case, role: str = Role.PRINCIPAL) -> str:
    """Who decides a request about the case: `role` (a principal) when the school has one who is not on the case's
    team, else the district centre, a level up. (三包一 seats a school leader: in a school with one principal,
    nobody at the school could decide otherwise.)"""
    if role != Role.PRINCIPAL:
        return role
    seated = case.team.filter(left_at__isnull=True).values("user_id")
    free = RoleAssignment.objects.filter(role=Role.PRINCIPAL, school_id=case.school_id, user__is_active=True)
    return Role.PRINCIPAL if free.exclude(user_id__in=seated).exists() else Role.DISTRICT_CENTRE


def closure_chain(case: Case) -> tuple[str, ...]:
    """Who evaluates the case's closure, level by level (the tier rules): for the case's peak tier, so a red
    screening lowered at triage still closes through the district centre and the city crisis centre."""
    return tier_rule(peak_tier(case)).closure_chain


def closure_approver_role(case: Case, closure: Closure | None = None) -> str:
    """The role that evaluates the closure now: the chain's next level (seed 001: 结案评估 a level higher)."""
    if closure is None:
        closure = case.closures.filter(decision=Decision.PENDING).first()
    level = closure.levels_approved if closure is not None else 0
    chain = closure_chain(case)
    return approver_role(case, chain[min(level, len(chain) - 1)])


# --- What a reader sees, and what a case page offers ----------------------------------------------------------------


class CaseAction(StrEnum):
    READ = "read"  # the case page (roster.scoping: readers, the team rule, emergency grants)
    NAMES = "names"  # full names instead of masked ones
    CLINICAL = "clinical"  # tiers, results, clinical free text (triage reasons, closure reasons)
    REVIEW = "review"  # the auditor's review of every change and reading
    REOPEN = "reopen"
    PARENT_CONTACT = "parent_contact"  # a contact outside the flow's step
    REQUEST_SUPPORT = "request_support"  # 申请区县支持
    COORDINATE = "coordinate"  # the coordination log with outside agencies
    REQUEST_NOTES = "request_notes"  # 档案移交: ask the school a case came from to release its restricted notes
    RELEASE_NOTES = "release_notes"  # release them to the case's school now


# Beyond reading the case: whether its team may, and which roles held over its school may. A role held elsewhere
# (a principal of another school who also audits this district) gives nothing here.
_ALLOWED: dict[str, tuple[bool, frozenset[str]]] = {
    CaseAction.NAMES: (True, frozenset({Role.PSYCHOLOGY_TEACHER, Role.PRINCIPAL})),
    CaseAction.REVIEW: (False, frozenset({Role.DISTRICT_AUDITOR})),
    CaseAction.REOPEN: (False, frozenset({Role.PSYCHOLOGY_TEACHER, Role.PRINCIPAL})),
    CaseAction.PARENT_CONTACT: (True, frozenset({Role.PSYCHOLOGY_TEACHER})),
    CaseAction.REQUEST_SUPPORT: (True, frozenset({Role.PSYCHOLOGY_TEACHER, Role.PRINCIPAL})),
    CaseAction.COORDINATE: (True, frozenset({Role.PSYCHOLOGY_TEACHER, Role.PRINCIPAL, Role.DISTRICT_CENTRE})),
}
# What only reads: an action outside these is a change, logged and refused as one.
_READS = frozenset({CaseAction.READ, CaseAction.NAMES, CaseAction.CLINICAL, CaseAction.REVIEW})


def reads_clinical(user, case: Case) -> bool:
    """Whether the user reads the case's screening result and clinical records: a role that reads results over the
    case's school (psychology teacher, principal, district centre and auditor, city centre), or an emergency grant.
    A homeroom teacher on the team reads the plan and contacts, never a tier or a colleague's clinical words."""
    case_qs = Case.objects.filter(pk=case.pk)
    if scoping.within_readers_scope(user, case_qs, ScreeningResult).exists():
        return True
    return scoping.visible_by_grant(user, case_qs).exists() or left_by_readers_school(user, case)


# --- A case handed over to another school (档案移交, cases.transfers) ----------------------------------------------

# Who keeps reading a case after it moved to another school (what was written before the acceptance), and who reads
# a case waiting for their school's acceptance (the case alone: its records once it is theirs).
HANDOVER_READERS = frozenset(
    {Role.PSYCHOLOGY_TEACHER, Role.PRINCIPAL, Role.DISTRICT_CENTRE, Role.DISTRICT_AUDITOR, Role.CITY_CENTRE}
)
# Who reads a restricted note: the psychology teachers and principal of the school it was written at (or released to).
NOTE_CLEARED_ROLES = frozenset({Role.PSYCHOLOGY_TEACHER, Role.PRINCIPAL})
# Who releases a school's restricted notes to the case's new school: that school's, or its district centre.
NOTE_RELEASERS = frozenset({Role.PSYCHOLOGY_TEACHER, Role.PRINCIPAL, Role.DISTRICT_CENTRE})


def handed_over_at(user, case: Case):
    """When the case was last accepted away from a school the user holds a reader's role over (that school's
    psychology teachers and principal, its district and city), while they hold none over the case's school now;
    None otherwise. The user reads the case as it was up to then."""
    if holds(user, HANDOVER_READERS, case):
        return None
    transfers = case.transfers.filter(status=TransferStatus.ACCEPTED).select_related("from_school__district")
    left = [t.accepted_at for t in transfers if scoping.holds_over(user, HANDOVER_READERS, t.from_school)]
    return max(left, default=None)


def left_by_readers_school(user, case: Case) -> bool:
    """Whether the user reads the case as the school it left (see handed_over_at)."""
    return handed_over_at(user, case) is not None


def read_only_here(user, case: Case) -> bool:
    """Whether the user reads the case only because it was handed over from their school: every change refused."""
    return left_by_readers_school(user, case) and not on_team(user, case)


def pending_transfer(case: Case) -> CaseTransfer | None:
    return case.transfers.filter(status=TransferStatus.PENDING).select_related("from_school", "to_school").first()


def withheld_note_schools(case: Case) -> list:
    """The schools whose restricted notes on the case its school cannot read: written elsewhere, not released."""
    notes = InterviewNote.objects.filter(case=case, restricted=True).exclude(school_id=case.school_id)
    notes = notes.exclude(released_to_id=case.school_id).exclude(school__isnull=True)
    return list(School.objects.filter(pk__in=notes.values("school_id")).select_related("district"))


def note_schools_released_by(user, case: Case) -> list:
    """The schools of withheld notes the user may release to the case's school (their psychology teachers and
    principal, their district centre)."""
    return [school for school in withheld_note_schools(case) if scoping.holds_over(user, NOTE_RELEASERS, school)]


def may(user, case: Case, action: str) -> bool:
    """Whether the user may do `action` on a case they can see (the caller checked that, or `access_case_by_id`
    did). The case's state (closed, a request open) is the page's and the service's to check."""
    if action == CaseAction.READ:
        return scoping.can_view(user, case)
    if action == CaseAction.CLINICAL:
        return reads_clinical(user, case)
    if action == CaseAction.REQUEST_NOTES:
        return holds(user, Role.PSYCHOLOGY_TEACHER, case) and bool(withheld_note_schools(case))
    if action == CaseAction.RELEASE_NOTES:
        return bool(note_schools_released_by(user, case))
    if action == CaseAction.REVIEW and scoping.scope_for(user).unrestricted:
        return True
    team, roles = _ALLOWED[action]
    return (team and on_team(user, case)) or holds(user, roles, case)


def names_shown(user, case: Case) -> bool:
    """Full names on a case page: its team and the school's psychology teachers and principals; others see them
    masked (the district level works on numbers and tiers, not names)."""
    return may(user, case, CaseAction.NAMES)


# --- Reaching a case, logged ----------------------------------------------------------------------------------------


def _log(action: str, case_ids, outcome: str = AccessOutcome.OK, object_type: str = "") -> None:
    audit.record(action, object_type=object_type or audit.label(Case), object_ids=case_ids, outcome=outcome)


def access_case_by_id(
    user, case_id, *, action: str = CaseAction.READ, writing: bool = False, logged_as: str = AccessAction.VIEW
) -> Case:
    """The case, when the user may see it and do `action` on it; its reading logged. Otherwise a 404, the same for
    a case that does not exist and one out of reach, with the refusal logged (a change refused when the action
    changes something or the request is `writing`). `logged_as` names the reading (an export, say).

    Access: everyone; the rules above decide. Audit: one access-log entry, "view ok" or "<view|change> denied".
    """
    case = None
    try:
        case_id = int(case_id)
    except (TypeError, ValueError):
        case_id = None
    if case_id is not None:
        case = (
            scoping.visible(user, Case).select_related("student__school_class", "school__district")
            .filter(pk=case_id).first()
        )  # fmt: skip
    refused_here = case is not None and writing and action in _READS and read_only_here(user, case)
    if case is None or refused_here or (action != CaseAction.READ and not may(user, case, action)):
        changing = writing or action not in _READS
        _log(AccessAction.CHANGE if changing else logged_as, [case_id], AccessOutcome.DENIED)
        raise Http404()
    if writing:  # the change's own entry (change_logged, change_refused) replaces this reading
        audit.defer(logged_as, object_type=audit.label(Case), object_ids=[case.pk])
    else:
        _log(logged_as, [case.pk])
    return case


def refused(object_type: str, object_id=None, *, writing: bool = False, action: str = "") -> Http404:
    """A thing of a case (a task, a process, a ledger of cases) missing or out of reach: the refusal logged (as
    `action`, else a change when `writing`, else a view), answered 404."""
    action = action or (AccessAction.CHANGE if writing else AccessAction.VIEW)
    _log(action, [] if object_id is None else [object_id], AccessOutcome.DENIED, object_type)
    return Http404()


def _students_read(user):
    return scoping.within_readers_scope(user, scoping.visible(user, Student), ScreeningResult)


def access_student_by_id(user, student_id, *, logged_as: str = AccessAction.VIEW) -> Student:
    """The student whose record (screenings and cases: the individual report) the user reads: psychology teacher and
    above of their school. Logged as read, or refused; 404 for missing and forbidden alike."""
    student = _students_read(user).select_related("school__district", "school_class").filter(pk=student_id).first()
    if student is None:
        raise refused(audit.label(Student), student_id, action=logged_as)
    audit.record(logged_as, object_type=audit.label(Student), object_ids=[student.pk])
    return student


def reads_student(user, student_id: int) -> bool:
    """Whether access_student_by_id would let the user in (one query, nothing logged): for a link to the report."""
    return _students_read(user).filter(pk=student_id).exists()


def change_refused(user, case: Case) -> None:
    """Log a change to the case that a rule refused (a task not the user's to do, one already done)."""
    _log(AccessAction.CHANGE, [case.pk], AccessOutcome.DENIED)


@contextmanager
def change_logged(user, case: Case) -> Iterator[None]:
    """Log a change to the case with the outcome it had: "change ok" when the block ends, "change denied" when it
    raised (a rule refused it, someone else did the task first). Input refused (ValidationError) changed nothing: the
    request's reading of the case (access_case_by_id) is its entry."""
    try:
        yield
    except ValidationError:
        raise
    except Exception:  # refused by a rule, taken or done by someone meanwhile, the case busy: nothing changed
        change_refused(user, case)
        raise
    else:
        _log(AccessAction.CHANGE, [case.pk])


# --- Who reads which case record (the rows, through roster.scoping) -------------------------------------------------


def _handover_schools(scope):
    """The schools in the subtree of the scope's handover readers' roles (a query), or None when there are none."""
    nodes = scope.nodes(HANDOVER_READERS)
    if not any(nodes.values()):
        return None
    return School.objects.filter(scoping.subtree_q(School, nodes)).values("pk")


def _handed_over(model, prefix: str, written_at: str | None, *, incoming: bool = False):
    """The `also` rule of a case record (roster.scoping): the readers of a school a case left keep reading what was
    written before the acceptance (`written_at` no later than the transfer's accepted_at; the case row itself when
    None). With `incoming`, the readers of the school a case is waiting to be accepted by read the case row."""
    lookup = f"{prefix}transfers"

    def rule(scope):
        schools = _handover_schools(scope)
        if schools is None:
            return None
        left = {f"{lookup}__status": TransferStatus.ACCEPTED, f"{lookup}__from_school__in": schools}
        if written_at:
            left[f"{written_at}__lte"] = F(f"{lookup}__accepted_at")
        q = Q(pk__in=model._default_manager.filter(**left).values("pk"))
        if incoming:
            waiting = CaseTransfer.objects.filter(status=TransferStatus.PENDING, to_school__in=schools)
            q |= Q(pk__in=waiting.values("case_id"))
        return q

    return rule


def _written_at_school(scope):
    """An interview note stays with the school it was written at (its readers), wherever its case is now."""
    schools = _handover_schools(scope)
    return None if schools is None else Q(school__in=schools)


def _between_schools(scope):
    schools = _handover_schools(scope)
    return None if schools is None else Q(from_school__in=schools) | Q(to_school__in=schools)


def register_case_models() -> None:
    """Register every case model with roster.scoping (called once, from CasesConfig.ready)."""
    from cases import models
    from roster.roles import Level
    from roster.scoping import register_scoped_model

    # Who reads case records (DESIGN §2): the school's psychology teachers and principal, the district centre and
    # auditor, the city centre; a homeroom teacher only the cases whose team they sit on. Admin roles never.
    readers = frozenset(
        {Role.PSYCHOLOGY_TEACHER, Role.PRINCIPAL, Role.HOMEROOM_TEACHER, Role.DISTRICT_CENTRE,
         Role.DISTRICT_AUDITOR, Role.CITY_CENTRE}
    )  # fmt: skip
    # Interview notes, follow-ups (with re-assessment scores) and referrals are clinical: never homeroom teachers.
    clinical = readers - {Role.HOMEROOM_TEACHER}
    team_roles = frozenset({Role.HOMEROOM_TEACHER})

    def grants(prefix: str) -> tuple[str, frozenset[str]]:
        # Break the glass (EmergencyAccess): a clinical role reads one case outside its scope, and its records,
        # for a day. Restricted notes stay withheld (the school's psychology teachers' and principal's alone).
        return (f"{prefix}emergency_grants", models.EMERGENCY_ACCESS_ROLES)

    def paths(prefix: str) -> dict[str, str]:
        return {
            Level.CITY: f"{prefix}school__district__city",
            Level.DISTRICT: f"{prefix}school__district",
            Level.SCHOOL: f"{prefix}school",
            Level.CLASS: f"{prefix}student__school_class",
        }

    register_scoped_model(
        models.Case, paths(""), readers=readers, team_roles=team_roles, team="team", grants=grants(""),
        also=_handed_over(models.Case, "", None, incoming=True),
    )  # fmt: skip
    for model, written_at in ((models.CaseTeamMember, "joined_at"), (models.InterventionPlan, "created_at"),
                              (models.ParentContact, "contacted_at"), (models.TierChange, "requested_at"),
                              (models.Closure, "proposed_at")):  # fmt: skip
        register_scoped_model(
            model, paths("case__"), readers=readers, team_roles=team_roles, team="case__team",
            grants=grants("case__"), also=_handed_over(model, "case__", written_at),
        )  # fmt: skip
    register_scoped_model(
        models.PlanMeasure, paths("plan__case__"), readers=readers, team_roles=team_roles, team="plan__case__team",
        grants=grants("plan__case__"), also=_handed_over(models.PlanMeasure, "plan__case__", "plan__created_at"),
    )  # fmt: skip
    for model, written_at in ((models.FollowUp, "held_at"), (models.Referral, "requested_at"),
                              (models.CrisisAlert, "raised_at"), (models.SafetyAssessment, "assessed_at"),
                              (models.SupportRequest, "requested_at"),
                              (models.CoordinationEntry, "recorded_at")):  # fmt: skip
        # A crisis alert carries a result (why it was raised): never for homeroom teachers, who get the care
        # instruction instead (cases.alerts).
        register_scoped_model(model, paths("case__"), readers=clinical, grants=grants("case__"),
                              also=_handed_over(model, "case__", written_at))  # fmt: skip
    register_scoped_model(
        models.ClosureEvaluation, paths("closure__case__"), readers=readers, team_roles=team_roles,
        team="closure__case__team", grants=grants("closure__case__"),
        also=_handed_over(models.ClosureEvaluation, "closure__case__", "decided_at"),
    )  # fmt: skip
    # A note marked restricted: the psychology teachers and principal of the school it was written at (not the
    # district centre), and of the school it was released to (档案移交: notes stay behind unless released). A note
    # stays readable by the school it was written at after the case moved on.
    register_scoped_model(
        models.InterviewNote, paths("case__"), readers=clinical,
        restricted=("restricted", NOTE_CLEARED_ROLES), cleared_at={Level.SCHOOL: ("school", "released_to")},
        grants=grants("case__"), also=_written_at_school,
    )  # fmt: skip
    # A transfer: the case's readers, and those of the two schools it is between.
    register_scoped_model(
        models.CaseTransfer, paths("case__"), readers=readers, team_roles=team_roles, team="case__team",
        also=_between_schools,
    )  # fmt: skip
    # Who broke the glass, when and why: the district's centre and auditor, the city centre, the case school's
    # principal (the grantee sees their own grants through cases.selectors, not through this).
    register_scoped_model(
        models.EmergencyAccess, paths("case__"),
        readers=frozenset({Role.PRINCIPAL, Role.DISTRICT_CENTRE, Role.DISTRICT_AUDITOR, Role.CITY_CENTRE}),
    )  # fmt: skip
    # Care beyond screening (issue 20). Signals, help records, mentors' talks and home visits are read by the school's
    # psychology teachers and principal, the district centre and auditor and the city centre; whoever wrote one (or
    # is responsible for a help record) reads it too, and nothing else of the student's: a mentor or a subject
    # teacher holds no reader role here. A raiser is only ever shown whether their signal was seen.
    care_readers = frozenset(
        {Role.PSYCHOLOGY_TEACHER, Role.PRINCIPAL, Role.DISTRICT_CENTRE, Role.DISTRICT_AUDITOR, Role.CITY_CENTRE}
    )
    register_scoped_model(models.Signal, paths(""), readers=care_readers, authors=("raised_by",))
    register_scoped_model(models.HelpRecord, paths(""), readers=care_readers, authors=("responsible", "created_by"))
    register_scoped_model(models.MentorTalk, paths(""), readers=care_readers, authors=("author",))
    register_scoped_model(models.HomeVisit, paths(""), readers=care_readers, authors=("author",))
