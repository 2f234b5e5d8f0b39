"""What a person's task lists hold: my tasks (inbox) and my school's queue, scoped by roster.scoping, risk first.

Viewflow's own list managers are not scoped per object (upstream #505) and match a task's permission against the
user's permissions anywhere: these are the querysets every task list uses instead. A constant number of queries
whatever the number of rows (the case, its student and class come in the same query).
May import: roster, screening, cases.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from django.db.models import Case as SqlCase
from django.db.models import CharField, Exists, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from viewflow.workflow.models import Task
from viewflow.workflow.status import STATUS

from cases.models import (
    ACTIVE_STATUSES,
    AlertStatus,
    Case,
    CaseTeamMember,
    CaseTransfer,
    Closure,
    ClosureEvaluation,
    CoordinationEntry,
    CrisisAlert,
    EmergencyAccess,
    FollowUp,
    InterventionPlan,
    InterviewNote,
    ParentContact,
    PlanMeasure,
    Referral,
    SafetyAssessment,
    SupportRequest,
    TierChange,
)  # fmt: skip
from cases.reasons import reason_display
from roster import scoping
from roster.auth_backends import role_permission
from roster.models import RoleAssignment, School, User
from roster.roles import Role
from screening.definitions import RiskTier
from workflows import history_display
from workflows.flows import CaseFlow, IndependentView
from workflows.models import CaseProcess, TaskClock, main_processes

ACTIVE = (STATUS.NEW, STATUS.ASSIGNED, STATUS.STARTED)


def _case_tasks(user) -> QuerySet[Task]:
    """Human tasks of case processes whose case the user may see, with what a list row shows.

    The scope is checked row by row (a correlated EXISTS), not as `IN (every visible case)`: a list reads a page of
    rows, and a district's visible cases run to the hundred thousand."""
    visible = scoping.visible(user, Case).filter(pk=OuterRef("process__caseprocess__case_id"))
    return (
        Task.objects.filter(Exists(visible), flow_task_type="HUMAN")
        .select_related("process__caseprocess__case__student__school_class", "owner")
        .annotate(due=F("clock__due_at"))  # the step's due time (workflows.deadlines)
    )


# Risk first (issue 16, item 4): a case's open crisis alert, then its tier, then the step's due time, then age.
TIER_RANK = ((RiskTier.RED, 1), (RiskTier.ORANGE, 2), (RiskTier.YELLOW, 3))


def tier_rank(path: str) -> SqlCase:
    """0 is never used by a tier: rank 0 is kept for an open crisis alert (`urgency`)."""
    return SqlCase(*(When(**{path: tier}, then=Value(rank)) for tier, rank in TIER_RANK), default=Value(9),
                   output_field=IntegerField())  # fmt: skip


def _alerted_cases() -> QuerySet[CrisisAlert]:
    # Not correlated: the database reads the few open alerts once (a hashed subplan), not once per task row.
    return CrisisAlert.objects.filter(status=AlertStatus.OPEN, case__isnull=False).values("case_id")


def urgency(case_id: str, tier: str) -> SqlCase:
    """A case's rank in a list: 0 with an open crisis alert, else its tier's rank (red 1, orange 2, yellow 3);
    `case_id` and `tier` are the paths from the listed row to the case's id and tier."""
    return SqlCase(When(**{f"{case_id}__in": _alerted_cases()}, then=Value(0)), default=tier_rank(tier),
                   output_field=IntegerField())  # fmt: skip


def _risk_first(queryset: QuerySet[Task]) -> QuerySet[Task]:
    """Open crisis alert, red, orange, yellow; then the step's due time (its TaskClock; before the clocks, the due
    time the flow kept in the task's data, ISO text), tasks without one after; then the oldest first."""
    case = "process__caseprocess__case"
    return queryset.annotate(urgency=urgency(f"{case}_id", f"{case}__tier"), clock_due=F("clock__due_at")).order_by(
        "urgency", F("clock_due").asc(nulls_last=True), F("due").asc(nulls_last=True), "created", "pk"
    )


def inbox(user) -> QuerySet[Task]:
    """Tasks assigned to the user, on cases they may see."""
    return _risk_first(_case_tasks(user).filter(owner=user, status__in=(STATUS.ASSIGNED, STATUS.STARTED)))


def _claimable_q(user) -> Q:
    """Unassigned tasks whose role permission the user holds over the task's school."""
    q = Q(pk__in=[])
    for role, school_id, district_id, city_id in RoleAssignment.objects.filter(user=user).values_list(
        "role", "school_id", "district_id", "city_id"
    ):
        if school_id:  # the school's id as a literal: the queue index then finds this school's tasks alone
            q |= Q(owner_permission=role_permission(role), owner_permission_obj_pk=str(school_id))
            continue
        if district_id:
            where = Q(district_id=district_id)
        else:
            where = Q(district__city_id=city_id)
        schools = School.objects.filter(where).annotate(key=Cast("pk", CharField())).values("key")
        q |= Q(owner_permission=role_permission(role), owner_permission_obj_pk__in=schools)
    return q


def queue(user) -> QuerySet[Task]:
    """Tasks the user may take: unassigned, their role at the task's school, and for approvals not on the team."""
    tasks = _case_tasks(user).filter(status=STATUS.NEW, owner__isnull=True)
    if not scoping.scope_for(user).unrestricted:
        tasks = tasks.filter(_claimable_q(user))
    approvals = [node for node in CaseFlow.instance.nodes() if isinstance(node, IndependentView)]
    # The processes of the cases the user sits on: a short list computed once, not a subquery per task row.
    seated = CaseProcess.objects.filter(
        case__in=CaseTeamMember.objects.filter(user=user, left_at__isnull=True).values("case_id")
    ).values("pk")
    return _risk_first(tasks.exclude(Q(flow_task__in=approvals) & Q(process_id__in=seated)))


def archive(user) -> QuerySet[Task]:
    """Tasks the user did, on cases they may still see, latest first."""
    return _case_tasks(user).filter(owner=user, status=STATUS.DONE).order_by("-finished", "-pk")


def case_tasks(user) -> QuerySet[Task]:
    """Every human task of the cases the user may see (the stock "all tasks" page)."""
    return _case_tasks(user).order_by("-created", "-pk")


def case_list(user) -> QuerySet[Case]:
    """The cases the user may see, risk first (then newest), each with its latest process (`process_pk`, for its
    page's URL). Driven from the case rows, whose scope filters the database can weigh (a school's cases are a
    small slice)."""
    latest = main_processes().filter(case=OuterRef("pk")).order_by("-pk").values("pk")[:1]
    cases = scoping.visible(user, Case)
    schools = scoping.scope_for(user).school_ids()
    if schools is not None:  # redundant with the scope, but lets the (school, -id) index serve the page
        # A case reached by an emergency access lies outside those schools: kept (no subquery for roles without one).
        granted = scoping.visible_by_grant(user, Case).values("pk")
        # A case handed over to another school (the school it left reads it) or waiting for this school's acceptance.
        handed = scoping.visible_by_rule(user, Case).values("pk")
        cases = cases.filter(Q(school_id__in=sorted(schools)) | Q(pk__in=granted) | Q(pk__in=handed))
    # Risk first: open crisis alert, then the open cases by tier, then the earliest due step; closed cases last.
    next_due = (
        TaskClock.objects.filter(case=OuterRef("pk"), task__status__in=ACTIVE).order_by("due_at").values("due_at")[:1]
    )  # fmt: skip
    return (
        cases.select_related("student__school_class", "school")
        .annotate(
            process_pk=Subquery(latest), urgency=urgency("pk", "tier"), next_due=Subquery(next_due),
            closed=SqlCase(When(status__in=ACTIVE_STATUSES, then=Value(0)), default=Value(1),
                           output_field=IntegerField()),
        )
        .order_by("closed", "urgency", F("next_due").asc(nulls_last=True), "-pk")
    )  # fmt: skip


def case_processes(user) -> QuerySet[CaseProcess]:
    """The processes of the cases the user may see, with the case, student and class in the same query."""
    visible = scoping.visible(user, Case).filter(pk=OuterRef("case_id"))  # row by row, as in _case_tasks
    return (
        CaseProcess.objects.filter(Exists(visible))
        .select_related("case__student__school_class", "case__school")
        .order_by("-pk")  # newest first, along the primary key's index
    )


@dataclass(frozen=True)
class TimelineEntry:
    when: datetime
    who: object  # a User or None (the system)
    what: str
    detail: str = ""
    kind: str = "record"  # "record" (a change to the case's records) or "task" (a workflow step)

    @property
    def who_label(self) -> str:
        return person(self.who)


def person(user) -> str:
    """How a staff member is named on a page; "" for nobody."""
    return user.get_short_name() if user else ""


# The case's records whose history the timeline shows: (model, path from the record to its case).
TIMELINE_MODELS = (
    (Case, "id"),
    (CaseTeamMember, "case_id"),
    (InterviewNote, "case_id"),
    (ParentContact, "case_id"),
    (InterventionPlan, "case_id"),
    (PlanMeasure, "plan__case_id"),
    (Referral, "case_id"),
    (FollowUp, "case_id"),
    (TierChange, "case_id"),
    (Closure, "case_id"),
    (ClosureEvaluation, "closure__case_id"),
    (CrisisAlert, "case_id"),
    (SafetyAssessment, "case_id"),
    (SupportRequest, "case_id"),
    (CoordinationEntry, "case_id"),
    (CaseTransfer, "case_id"),
)
_CHANGE = {"+": _("recorded"), "~": _("changed"), "-": _("deleted")}


def case_timeline(user, case: Case, *, tiers: bool = True, until: datetime | None = None) -> list[TimelineEntry]:
    """Who did what when on a case: its workflow steps merged with the history of its records, newest first. A
    record the user may not read (a homeroom teacher and the interview notes) is left out, entry and all. Change
    reasons in the reader's language (cases.reasons); `tiers=False` leaves tiers out; `until` leaves out what happened
    later (a school that handed the case over reads it up to the acceptance). A constant number of queries: one per
    record model and one for the tasks."""
    entries: list[TimelineEntry] = []
    for model, to_case in TIMELINE_MODELS:
        rows = model.history.filter(id__in=_readable_ids(user, model, to_case, case))
        if until is not None:
            rows = rows.filter(history_date__lte=until)
        rows = rows.select_related("history_user").order_by("-history_date")[:200]
        withheld = _withheld_ids(user, model, to_case, case)
        for row in rows:
            # A case row's state at that moment: the tier and status it moved to.
            changed = ""
            if model is Case:
                changed = " · ".join([str(row.get_tier_display())] * tiers + [str(row.get_status_display())])
            reason = reason_display(row.history_change_reason or "", tiers=tiers)
            entries.append(
                TimelineEntry(
                    when=row.history_date, who=row.history_user,
                    what=f"{model._meta.verbose_name} {_CHANGE.get(row.history_type, '')}",
                    detail=str(RESTRICTED) if row.id in withheld else " · ".join(x for x in (reason, changed) if x),
                )
            )  # fmt: skip
    entries.extend(e for e in timeline_steps(case) if until is None or e.when <= until)
    entries.sort(key=lambda e: e.when, reverse=True)
    return entries


RESTRICTED = _("Restricted: psychology teachers and the principal only")


def _readable_ids(user, model, to_case: str, case: Case) -> QuerySet:
    """The ids of the case's records of `model` whose history the user may see: those they may read, and restricted
    ones they may know of (shown without their content)."""
    readable = scoping.visible(user, model)
    if hasattr(model, "restricted"):
        readable = readable | scoping.visible_withheld(user, model)
    return readable.filter(**{to_case: case.pk}).values("pk")


def _withheld_ids(user, model, to_case: str, case: Case) -> set[int]:
    """The case's records of `model` the user may know of but not read (restricted notes): one query, for notes."""
    if not hasattr(model, "restricted"):
        return set()
    return set(scoping.visible_withheld(user, model).filter(**{to_case: case.pk}).values_list("pk", flat=True))


def interview_notes(user, case: Case) -> list[tuple[InterviewNote, bool]]:
    """The case's interview notes the user may know of, newest first, each with whether its content may be shown."""
    readable = scoping.visible(user, InterviewNote).filter(case=case).select_related("author")
    withheld = scoping.visible_withheld(user, InterviewNote).filter(case=case).select_related("author")
    notes = [(n, True) for n in readable] + [(n, False) for n in withheld]
    notes.sort(key=lambda pair: pair[0].held_at, reverse=True)
    return notes


def readable(user, model):
    """A case record model's rows the user may read (roster.scoping), for pages that act on one record."""
    return scoping.visible(user, model)


def schools_led_by(user) -> QuerySet[School]:
    """The schools where the user is a principal (who hand over a leaving colleague's work)."""
    return School.objects.filter(
        pk__in=RoleAssignment.objects.filter(user=user, role=Role.PRINCIPAL).values("school_id")
    ).order_by("code")


def timeline_steps(case: Case) -> list[TimelineEntry]:
    """The case's workflow steps (human tasks of all its processes): done, or waiting, with who holds them."""
    entries: list[TimelineEntry] = []
    tasks = (
        Task.objects.filter(process__in=CaseProcess.objects.filter(case=case).values("pk"), flow_task_type="HUMAN")
        .select_related("owner")
        .order_by("-created")
    )
    for task in tasks:
        done = task.status == STATUS.DONE
        entries.append(
            TimelineEntry(
                when=task.finished if done and task.finished else task.created, who=task.owner,
                what=str(task.flow_task.task_title or task.flow_task.name),
                detail=str(STATUS(task.status).label) if not done else str(_("done")), kind="task",
            )
        )  # fmt: skip
    return entries


# --- The auditor's review of one case -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewEntry:
    when: datetime
    who: str  # the person's name (their username when the roster has none); "" for the system
    kind: str  # "change" (a record's history), "step" (a workflow task) or "access" (the access log)
    what: str
    detail: str = ""
    reason: str = ""
    login: str = ""  # their username, which the person filter also matches

    @property
    def kind_label(self) -> str:
        return str(REVIEW_KINDS.get(self.kind, self.kind))


REVIEW_KINDS = {
    "change": _("Record change"),
    "step": _("Workflow step"),
    "emergency": _("Emergency access"),
    "access": _("Access"),
}


def _roles_label(roles: str) -> str:
    """The access log's "psychology_teacher@school:12, …" as the roles' names (the node is the actor's scope)."""
    from roster.roles import Role

    names = []
    for held in filter(None, (part.strip() for part in roles.split(","))):
        role = held.split("@", 1)[0]
        names.append(str(Role(role).label) if role in Role.values else role)
    return "、".join(dict.fromkeys(names))


def _changes(previous, row, model) -> str:
    """What a history row changed against the record's previous version, as "field: old → new", in the reader's
    language (workflows.history_display)."""
    renderer = history_display.ChangeRenderer()
    return renderer.render(renderer.collect(history_display.diff(previous, row, model)))


def _access_entries_q(case: Case) -> Q:
    """Access-log entries about the case: reads and lists naming its id, refusals naming one of its processes."""
    from roster.models import AccessLogEntry  # noqa: F401 (the model the Q is for)

    pk = str(case.pk)
    as_case = Q(object_type="cases.case") & (
        Q(object_ids=pk) | Q(object_ids__startswith=f"{pk},") | Q(object_ids__endswith=f",{pk}")
        | Q(object_ids__contains=f",{pk},")
    )  # fmt: skip
    processes = [str(p) for p in CaseProcess.objects.filter(case=case).values_list("pk", flat=True)]
    return as_case | Q(object_type="workflows.caseprocess", object_ids__in=processes)


EMERGENCY_ACCESS = _("Emergency access")


def case_review(user, case: Case, *, person: str = "", since=None, until=None) -> list[ReviewEntry]:
    """Everything that happened to a case, for the district auditor: every change of its records with the fields
    changed (old → new, who, when, reason), its workflow steps, its emergency accesses (who, when, until, why) and
    the access log (who read it, listed it or was refused), newest first, each person by name; filtered by person
    (name or username) and date. A query per record model, one for the steps, one for the emergency accesses, two
    for the log (its entries, their actors' names)."""
    from roster.models import AccessLogEntry

    entries: list[ReviewEntry] = []
    changes, pending = history_display.ChangeRenderer(), []
    for model, to_case in TIMELINE_MODELS:
        latest: dict[int, object] = {}  # each record's previous version, as the rows come in order
        rows = (
            model.history.filter(id__in=_readable_ids(user, model, to_case, case))
            .select_related("history_user")
            .order_by("history_date", "pk")
        )  # fmt: skip
        withheld = _withheld_ids(user, model, to_case, case)
        for row in rows:
            diffs = [] if row.id in withheld else changes.collect(history_display.diff(latest.get(row.id), row, model))
            pending.append((len(entries), diffs))
            entries.append(
                ReviewEntry(
                    when=row.history_date, who=person_name(row.history_user), login=_login(row.history_user),
                    kind="change", what=f"{model._meta.verbose_name} {_CHANGE.get(row.history_type, '')}",
                    detail=str(RESTRICTED) if row.id in withheld else "",
                    reason=reason_display(row.history_change_reason or ""),
                )
            )  # fmt: skip
            latest[row.id] = row
    # The fields changed, read in the reader's language, linked records named (one query per linked model).
    for index, diffs in pending:
        if diffs:
            entries[index] = replace(entries[index], detail=changes.render(diffs))
    for entry in timeline_steps(case):
        entries.append(ReviewEntry(when=entry.when, who=entry.who_label, login=_login(entry.who), kind="step",
                                   what=entry.what, detail=entry.detail))  # fmt: skip
    for grant in scoping.visible(user, EmergencyAccess).filter(case=case).select_related("user"):
        ends = timezone.localtime(grant.expires_at).strftime("%Y-%m-%d %H:%M")
        entries.append(
            ReviewEntry(
                when=grant.granted_at, who=person_name(grant.user), login=_login(grant.user), kind="emergency",
                what=str(EMERGENCY_ACCESS),
                detail=str(_("until %(until)s")) % {"until": ends}, reason=grant.reason,
            )
        )  # fmt: skip
    log = list(AccessLogEntry.objects.filter(_access_entries_q(case)).order_by("pk"))
    # The log keeps the actor's username only: their names, in one query.
    names = dict(User.objects.filter(username__in={row.actor for row in log}).values_list("username", "name"))
    names = {login: name.strip() for login, name in names.items() if name.strip()}
    for row in log:
        entries.append(
            ReviewEntry(
                when=row.at, who=names.get(row.actor) or row.actor, login=row.actor, kind="access",
                what=str(row.get_action_display()),
                detail=" · ".join(
                    part for part in (str(row.get_outcome_display()), _roles_label(row.roles), row.ip or "",
                                      row.request_id[:8]) if part
                ),
            )
        )  # fmt: skip
    if person:
        entries = [e for e in entries if person in (e.login, e.who)]
    if since:
        entries = [e for e in entries if timezone.localdate(e.when) >= since]
    if until:
        entries = [e for e in entries if timezone.localdate(e.when) <= until]
    entries.sort(key=lambda e: e.when, reverse=True)
    return entries


def person_name(user) -> str:
    """A person as the review names them: as every page does (`person`, which case_review's filter shadows)."""
    return person(user)


def _login(user) -> str:
    """A person's username, which the review's person filter matches (what the access log keeps); "" for nobody."""
    return user.get_username() if user else ""


# --- Crisis alerts ------------------------------------------------------------------------------------------------


def access_crisis_alert_by_id(user, pk: int, method: str = "GET") -> CrisisAlert:
    """The crisis alert `pk` with its student, class, school, case and taker, for its page.

    Access: someone the alert reached, or a psychology teacher or principal of its school, its district's centre or
    its city's centre (cases.alerts.may_act_on); anyone else, and a missing alert, get the same 404.
    Audit: the reading (or the taking, for a POST) of the alert; a refusal as denied."""
    from django.http import Http404

    from cases import alerts
    from roster import audit
    from roster.models import AccessAction, AccessOutcome

    action = AccessAction.VIEW if method in ("GET", "HEAD") else AccessAction.CHANGE
    alert = (
        CrisisAlert.objects.select_related("student__school_class", "school", "case", "acknowledged_by")
        .filter(pk=pk)
        .first()
    )  # fmt: skip
    if alert is None or not alerts.may_act_on(user, alert):
        audit.record(action, object_type=audit.label(CrisisAlert), object_ids=[pk], outcome=AccessOutcome.DENIED)
        raise Http404
    audit.record(action, object_type=audit.label(CrisisAlert), object_ids=[pk])
    return alert
