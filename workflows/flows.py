"""The case process (seed 002's six steps; seed 001's 二包一/三包一 and 结案评估), one Viewflow flow.

start → triage → (green: the principal confirms the false positive) → staffing → interview ∥ parent contact (orange
and red) → plan → (referral: requested, approved by the principal, made) → follow-up loop on a timer → escalation or
de-escalation approved by the principal, or closure approved a level higher → end. A closed case that is reopened
runs a new process.

Tasks go to the case's team (the seat's holder) or, when nobody holds the seat, to a role's queue at the case's
school: `roster.role_<role>` object permissions on the school (roster.auth_backends). Approvals are
`IndependentView`s: nobody on the case's team may take or do them. The work each step records is done by
workflows.services, which call cases.services.

Node and class names are stored in task rows: rename only with a data migration.
"""

from viewflow import this
from viewflow.workflow import flow, lock
from viewflow.workflow.flow.views import UpdateProcessView

from cases import services as case_services
from cases.models import CaseStatus, Decision, FollowUpOutcome, TeamSeat
from cases.tiers import tier_rule
from roster.auth_backends import role_permission
from roster.roles import Role
from workflows.models import CaseProcess

PSYCHOLOGY = role_permission(Role.PSYCHOLOGY_TEACHER)


def _case(process):
    # Viewflow hands over the base Process where it reads tasks back (permission checks): reach the case row.
    return process.case if isinstance(process, CaseProcess) else process.coerced.case


def _school(process):
    return _case(process).school


def _seat(seat: str):
    def holder(activation):
        member = activation.process.case.team.filter(seat=seat, left_at__isnull=True).select_related("user").first()
        return member.user if member else None

    return holder


TIER_CHANGES = (FollowUpOutcome.ESCALATE, FollowUpOutcome.DE_ESCALATE)


def _last_follow_up_outcome(activation):
    return activation.process.case.follow_ups.values_list("outcome", flat=True).first()


def _closure_permission(activation):
    # Evaluated a level higher (seed 001): the principal for yellow, the district centre for orange and red.
    return role_permission(case_services.closure_approver_role(activation.process.case))


def _approver_permission(activation):
    # A principal not on the case's team; the district centre when every principal of the school sits on it.
    return role_permission(case_services.approver_role(activation.process.case))


def _task_view():
    # The step's form is workflows' own task page (the frontend issue); the flow runs through workflows.services.
    return UpdateProcessView.as_view(fields=[])


class IndependentView(flow.View):
    """A decision about a case (approval): never taken or done by a member of the case's team."""

    def _independent(self, user, task) -> bool:
        return not case_services.on_team(user, _case(task.process))

    def can_assign(self, user, task):
        return super().can_assign(user, task) and self._independent(user, task)

    def can_execute(self, user, task):
        return super().can_execute(user, task) and self._independent(user, task)


class CaseFlow(flow.Flow):
    """Student case"""

    process_class = CaseProcess
    lock_impl = lock.select_for_update_lock  # PostgreSQL; SQLite's IMMEDIATE transactions serialise writers
    process_summary_template = "{{ process.case }} {{ process.case.tier }}"

    start = flow.StartHandle(this.start_case).Next(this.triage)

    triage = flow.View(_task_view()).Permission(PSYCHOLOGY, obj=_school).Next(this.after_triage)
    after_triage = (
        flow.If(lambda a: a.process.case.status == CaseStatus.CLOSING)
        .Then(this.approve_false_positive)
        .Else(this.staffing)
    )
    approve_false_positive = (
        IndependentView(_task_view()).Permission(_closure_permission, obj=_school).Next(this.after_closure)
    )

    staffing = flow.View(_task_view()).Permission(PSYCHOLOGY, obj=_school).Next(this.first_steps)
    first_steps = (
        flow.Split()
        .Next(this.interview)
        .Next(this.parent_contact, case=lambda a: tier_rule(a.process.case.tier).parent_contact_required)
    )
    # SLA (DESIGN §3): the first interview and the parent contact are due a tier's time after the case opened. A due
    # task stays where it is; the overdue path only tells the principal and ends at once (a path that opened a task
    # inside the split would keep the join waiting forever).
    interview = (
        flow.View(_task_view())
        .Assign(_seat(TeamSeat.PSYCHOLOGY_TEACHER))
        .Permission(PSYCHOLOGY, obj=_school)
        .onCreate(this.mark_due)
        .OnTimeout(this.interview_due, this.overdue_notice, interrupting=False)
        .Next(this.first_steps_done)
    )
    parent_contact = (
        flow.View(_task_view())
        .Assign(_seat(TeamSeat.HOMEROOM_TEACHER))
        .Permission(PSYCHOLOGY, obj=_school)
        .onCreate(this.mark_due)
        .OnTimeout(this.parent_contact_due, this.overdue_notice, interrupting=False)
        .Next(this.first_steps_done)
    )
    first_steps_done = flow.Join().Next(this.plan)
    overdue_notice = flow.Function(this.notify_overdue).Next(this.overdue_noticed)
    overdue_noticed = flow.End()

    plan = (
        flow.View(_task_view())
        .Assign(_seat(TeamSeat.PSYCHOLOGY_TEACHER))
        .Permission(PSYCHOLOGY, obj=_school)
        .Next(this.plan_calls_for_referral)
    )
    plan_calls_for_referral = (
        flow.If(lambda a: a.process.case.plans.values_list("needs_referral", flat=True).first() or False)
        .Then(this.request_referral)
        .Else(this.wait_follow_up)
    )
    request_referral = (
        flow.View(_task_view())
        .Assign(_seat(TeamSeat.PSYCHOLOGY_TEACHER))
        .Permission(PSYCHOLOGY, obj=_school)
        .Next(this.approve_referral)
    )
    approve_referral = (
        IndependentView(_task_view()).Permission(_approver_permission, obj=_school).Next(this.referral_approved)
    )
    referral_approved = (
        flow.If(lambda a: a.process.case.referrals.values_list("decision", flat=True).first() == Decision.APPROVED)
        .Then(this.make_referral)
        .Else(this.wait_follow_up)
    )
    make_referral = (
        flow.View(_task_view())
        .Assign(_seat(TeamSeat.PSYCHOLOGY_TEACHER))
        .Permission(PSYCHOLOGY, obj=_school)
        .Next(this.wait_follow_up)
    )

    wait_follow_up = flow.Timer(this.follow_up_interval).Next(this.follow_up)
    follow_up = (
        flow.View(_task_view())
        .Assign(_seat(TeamSeat.PSYCHOLOGY_TEACHER))
        .Permission(PSYCHOLOGY, obj=_school)
        .Next(this.after_follow_up)
    )
    after_follow_up = (
        flow.Switch()
        .Case(this.approve_tier_change, lambda a: _last_follow_up_outcome(a) in TIER_CHANGES)
        .Case(this.approve_closure, lambda a: _last_follow_up_outcome(a) == FollowUpOutcome.PROPOSE_CLOSURE)
        .Default(this.wait_follow_up)
    )
    approve_tier_change = (
        IndependentView(_task_view()).Permission(_approver_permission, obj=_school).Next(this.wait_follow_up)
    )
    approve_closure = (
        IndependentView(_task_view()).Permission(_closure_permission, obj=_school).Next(this.after_closure)
    )
    after_closure = (
        flow.If(lambda a: a.process.case.status == CaseStatus.CLOSED).Then(this.end).Else(this.wait_follow_up)
    )
    end = flow.End()

    def start_case(self, activation, case):
        activation.process.case = case
        activation.process.save()
        return activation.process

    def interview_due(self, activation):
        case = activation.process.case
        return case.opened_at + tier_rule(case.tier).first_interview_within

    def parent_contact_due(self, activation):
        case = activation.process.case
        return case.opened_at + (tier_rule(case.tier).parent_contact_within or tier_rule(case.tier).follow_up_every)

    def mark_due(self, activation):
        """Record when the task was handed out and when it is due, for the inbox and lists (Viewflow keeps neither)."""
        due = self.interview_due if activation.flow_task is self.interview else self.parent_contact_due
        task = activation.task
        task.data = {**(task.data or {}), "due": due(activation).isoformat()}
        if task.owner_id:
            task.assigned = task.created
        task.save(update_fields=["data", "assigned"])

    def notify_overdue(self, activation):
        from workflows.notices import overdue_notify

        host = activation.task.previous.first()
        overdue_notify(activation.process.case, host)

    def follow_up_interval(self, activation):
        return tier_rule(activation.process.case.tier).follow_up_every
