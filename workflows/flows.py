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

from django.urls import path
from django.utils.translation import gettext_lazy as _
from viewflow import this
from viewflow.workflow import flow, lock

from cases import services as case_services
from cases.models import Case, CaseStatus, Decision, FollowUpOutcome, TeamSeat
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


def _view(name):
    def view(request, **kwargs):
        from workflows import views  # the views import the services, which import this module

        return getattr(views, name)(request, **kwargs)

    view.__name__ = name
    return view


class CaseTask(flow.View):
    """A human step of a case. Its pages are workflows.views' own: the step's form runs the step through
    workflows.services (checks, the record and the transition in one transaction under the flow lock), and a task
    out of the user's scope is missing (404), not forbidden. Viewflow's stock wrappers would complete a task from an
    empty form and answer a task done meanwhile with a bare 403."""

    def __init__(self, title, **kwargs):
        super().__init__(_view("task_execute"), **kwargs)
        self.task_title = title

    def can_view(self, user, task):
        return self.flow_class.instance.has_view_permission(user, task.process)

    @property
    def index_path(self):
        return path(f"<int:process_pk>/{self.name}/<int:task_pk>/", _view("task_open"), name="index")

    @property
    def detail_path(self):
        return path(f"<int:process_pk>/{self.name}/<int:task_pk>/detail/", _view("task_open"), name="detail")

    @property
    def view_path(self):
        return path(f"<int:process_pk>/{self.name}/<int:task_pk>/execute/", self.view, name="execute")

    @property
    def assign_path(self):
        return path(f"<int:process_pk>/{self.name}/<int:task_pk>/assign/", _view("task_claim"), name="assign")

    @property
    def unassign_path(self):
        return path(f"<int:process_pk>/{self.name}/<int:task_pk>/unassign/", _view("task_release"), name="unassign")


class IndependentView(CaseTask):
    """A decision about a case (approval): never taken or done by a member of the case's team."""

    def _independent(self, user, task) -> bool:
        return not case_services.on_team(user, _case(task.process))

    def can_assign(self, user, task):
        return super().can_assign(user, task) and self._independent(user, task)

    def can_execute(self, user, task):
        return super().can_execute(user, task) and self._independent(user, task)


class CaseFlow(flow.Flow):
    """Student case"""

    process_title = _("Student case")

    process_class = CaseProcess
    lock_impl = lock.select_for_update_lock  # PostgreSQL; SQLite's IMMEDIATE transactions serialise writers
    process_summary_template = "{{ process.case }} {{ process.case.tier }}"

    start = flow.StartHandle(this.start_case).Next(this.triage)

    triage = CaseTask(_("Triage: confirm the tier")).Permission(PSYCHOLOGY, obj=_school).Next(this.after_triage)
    after_triage = (
        flow.If(lambda a: a.process.case.status == CaseStatus.CLOSING)
        .Then(this.approve_false_positive)
        .Else(this.staffing)
    )
    approve_false_positive = (
        IndependentView(_("Confirm the false positive"))
        .Permission(_closure_permission, obj=_school)
        .Next(this.after_closure)
    )

    staffing = CaseTask(_("Staff the case team")).Permission(PSYCHOLOGY, obj=_school).Next(this.first_steps)
    first_steps = (
        flow.Split()
        .Next(this.interview)
        .Next(this.parent_contact, case=lambda a: tier_rule(a.process.case.tier).parent_contact_required)
    )
    # SLA (DESIGN §3): the first interview and the parent contact are due a tier's time after the case opened. A due
    # task stays where it is; the overdue path only tells the principal and ends at once (a path that opened a task
    # inside the split would keep the join waiting forever).
    interview = (
        CaseTask(_("Interview the student"))
        .Assign(_seat(TeamSeat.PSYCHOLOGY_TEACHER))
        .Permission(PSYCHOLOGY, obj=_school)
        .onCreate(this.mark_due)
        .OnTimeout(this.interview_due, this.overdue_notice, interrupting=False)
        .Next(this.first_steps_done)
    )
    parent_contact = (
        CaseTask(_("Contact the parents"))
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
        CaseTask(_("Write the plan"))
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
        CaseTask(_("Request a referral"))
        .Assign(_seat(TeamSeat.PSYCHOLOGY_TEACHER))
        .Permission(PSYCHOLOGY, obj=_school)
        .Next(this.approve_referral)
    )
    approve_referral = (
        IndependentView(_("Approve the referral"))
        .Permission(_approver_permission, obj=_school)
        .Next(this.referral_approved)
    )
    referral_approved = (
        flow.If(lambda a: a.process.case.referrals.values_list("decision", flat=True).first() == Decision.APPROVED)
        .Then(this.make_referral)
        .Else(this.wait_follow_up)
    )
    make_referral = (
        CaseTask(_("Make the referral"))
        .Assign(_seat(TeamSeat.PSYCHOLOGY_TEACHER))
        .Permission(PSYCHOLOGY, obj=_school)
        .Next(this.wait_follow_up)
    )

    wait_follow_up = flow.Timer(this.follow_up_interval).Next(this.follow_up)
    follow_up = (
        CaseTask(_("Follow-up session"))
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
        IndependentView(_("Approve the tier change"))
        .Permission(_approver_permission, obj=_school)
        .Next(this.wait_follow_up)
    )
    approve_closure = (
        IndependentView(_("Approve the closure")).Permission(_closure_permission, obj=_school).Next(this.after_closure)
    )
    after_closure = (
        flow.If(lambda a: a.process.case.status == CaseStatus.CLOSED).Then(this.end).Else(this.wait_follow_up)
    )
    end = flow.End()

    def _get_urls(self):
        """The pages of the machine's own steps (decisions, timers, joins, functions…), and the undo/cancel/revive
        pages of every step, all go to one view that answers like a step's link: the case page when the user may see
        the case, a logged 404 otherwise; nothing is done there. Viewflow's stock pages answered 403 out of scope,
        telling that the case exists, and would let a manager rewind a case outside its services."""
        patterns = super()._get_urls()
        nodes = {node.name: node for node in self.nodes()}

        def guard(resolver, human: bool):
            for i, pattern in enumerate(resolver.urlconf_name):
                if hasattr(pattern, "urlconf_name"):
                    guard(pattern, human)
                elif not human or pattern.name in ("undo", "cancel", "revive"):  # (a manager's repairs: not here)
                    resolver.urlconf_name[i] = path(str(pattern.pattern), _view("machine_step_page"), name=pattern.name)

        for resolver in patterns:
            node = nodes.get(getattr(resolver, "namespace", None))
            if node is not None:
                guard(resolver, human=isinstance(node, CaseTask))
        return patterns

    def has_view_permission(self, user, obj=None):
        """The frontend's gate: anyone who may read some case; for one process, whoever may see its case
        (roster.scoping). Viewflow's own check is a model permission nobody here holds."""
        from roster import scoping

        if not user.is_authenticated:
            return False
        if obj is None:
            return scoping.scope_for(user).unrestricted or scoping.may_read_some(user, Case)
        process = obj if isinstance(obj, CaseProcess) else obj.coerced
        return scoping.visible(user, Case).filter(pk=process.case_id).exists()

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

        # The notice's task follows the deadline's timer, which follows the step that is late: name that step.
        host = activation.task.previous.first()
        while host is not None and host.flow_task_type != "HUMAN":
            host = host.previous.first()
        overdue_notify(activation.process.case, host)

    def follow_up_interval(self, activation):
        return tier_rule(activation.process.case.tier).follow_up_every
