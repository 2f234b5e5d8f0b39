"""The case process (seed 002's six steps; seed 001's 二包一/三包一 and 结案评估), one Viewflow flow.

start → triage → (green: the principal confirms the false positive) → staffing → interview ∥ parent contact (orange
and red) → plan → (referral: requested, approved by the principal, made) → follow-up loop (each due the tier's
interval after the last) → escalation or de-escalation approved by the principal, or closure approved a level higher
→ end. A closed case that is reopened runs a new process. Every human step has a clock (workflows.deadlines).

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
from viewflow.workflow.nodes.view import ViewActivation

from cases import access as case_access
from cases.models import Case, CaseStatus, Decision, FollowUpOutcome, TeamSeat
from cases.tiers import tier_rule
from roster.auth_backends import role_permission
from roster.roles import Role
from workflows.models import SIDE, CaseProcess

PSYCHOLOGY = role_permission(Role.PSYCHOLOGY_TEACHER)
DISTRICT_CENTRE = role_permission(Role.DISTRICT_CENTRE)
SUPPORT, SAFETY = "district_support", "safety_assessment"
HANDOVER = "hand_over"  # the side process of a leaver's case (workflows.leavers)
TRANSFER = "transfer"  # 档案移交: the side process of a case's transfer to the school its student moved to


def _case(process):
    # Viewflow hands over the base Process where it reads tasks back (permission checks): reach the case row.
    return process.case if isinstance(process, CaseProcess) else process.coerced.case


def _school(process):
    return _case(process).school


def _transfer(process):
    from cases.models import CaseTransfer
    from workflows.deadlines import TRANSFER_KEY

    data = process.data or {}
    return CaseTransfer.objects.select_related("to_school").get(pk=data[TRANSFER_KEY])


def _receiving_school(process):
    # The school the student moved to: the case's school is still the sending one until the transfer is accepted.
    return _transfer(process).to_school


def _sole_receiver(activation):
    """The receiving school's psychology teacher when it has exactly one (the task goes to their inbox); otherwise
    the task waits in that school's queue for one of them to take."""
    from roster.models import RoleAssignment

    held = RoleAssignment.objects.filter(
        role=Role.PSYCHOLOGY_TEACHER, school=_receiving_school(activation.process), user__is_active=True
    ).select_related("user")[:2]
    held = list(held)
    return held[0].user if len(held) == 1 else None


def _seat(seat: str):
    def holder(activation):
        member = activation.process.case.team.filter(seat=seat, left_at__isnull=True).select_related("user").first()
        return member.user if member else None

    return holder


def _last_follow_up_outcome(activation):
    return activation.process.case.follow_ups.values_list("outcome", flat=True).first()


def _lowering_pending(activation) -> bool:
    return activation.process.case.tier_changes.filter(decision=Decision.PENDING).exists()


def _closure_permission(activation):
    # Evaluated a level higher (seed 001): the principal for yellow, the district centre for orange and red.
    return role_permission(case_access.closure_approver_role(activation.process.case))


def _approver_permission(activation):
    # A principal not on the case's team; the district centre when every principal of the school sits on it.
    return role_permission(case_access.approver_role(activation.process.case))


def _view(name):
    def view(request, **kwargs):
        from workflows import views  # the views import the services, which import this module

        return getattr(views, name)(request, **kwargs)

    view.__name__ = name
    return view


class CaseTaskActivation(ViewActivation):
    """A human step's task starts its clock when it is created (workflows.deadlines: every human step has a due time
    from the tier rules), and records when it was handed out (Viewflow never writes `assigned`)."""

    @classmethod
    def create(cls, flow_task, prev_activation, token, data=None, seed=None):
        from workflows.deadlines import task_clock_start

        activation = super().create(flow_task, prev_activation, token, data=data, seed=seed)
        task = activation.task
        if task.owner_id:
            task.assigned = task.created
            task.save(update_fields=["assigned"])
        if flow_task.clocked:
            task_clock_start(task, case=_case(activation.process))
        return activation


class CaseTask(flow.View):
    """A human step of a case. Its pages are workflows.views' own: the step's form runs the step through
    workflows.services (checks, the record and the transition in one transaction under the flow lock), and a task
    out of the user's scope is missing (404), not forbidden. Viewflow's stock wrappers would complete a task from an
    empty form and answer a task done meanwhile with a bare 403. Its task gets a clock when created."""

    activation_class = CaseTaskActivation
    clocked = True  # the step has a due time (workflows.deadlines)

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
        return not case_access.on_team(user, _case(task.process))

    def can_assign(self, user, task):
        return super().can_assign(user, task) and self._independent(user, task)

    def can_execute(self, user, task):
        return super().can_execute(user, task) and self._independent(user, task)


class UnclockedTask(CaseTask):
    """A human step with no due time: the hand-over of a leaver's case. The student has left; what the team does
    next has no crisis clock (the district centre was told of an orange or red case at once)."""

    clocked = False


class CaseFlow(flow.Flow):
    """Student case"""

    process_title = _("Student case")

    process_class = CaseProcess
    lock_impl = lock.select_for_update_lock  # PostgreSQL; SQLite's IMMEDIATE transactions serialise writers
    process_summary_template = "{{ process.case }} {{ process.case.get_tier_display }}"

    start = flow.StartHandle(this.start_case).Next(this.triage)
    # A raised tier (a new screening, a staff concern, a follow-up) once the team works the case: the team was
    # re-staffed by the raise; the new tier's interview and parent contact start now, then a new plan.
    start_raised = flow.StartHandle(this.start_case).Next(this.first_steps)
    # 申请区县支持: the district centre's task, in a side process beside the case's.
    start_support = flow.StartHandle(this.side_begin).Next(this.district_support)
    # A non-acute critical answer (NIMH ASQ pathway): a brief safety assessment before the student goes home today.
    start_safety = flow.StartHandle(this.side_begin).Next(this.safety_assessment)
    # The student left the system (workflows.leavers): "hand over or close" beside the stopped case. Closing it takes
    # the case's own path to the closure's evaluation (a new main process, its earlier steps cancelled).
    start_handover = flow.StartHandle(this.side_begin).Next(this.hand_over)
    start_closing = flow.StartHandle(this.start_case).Next(this.approve_closure)
    # 档案移交: the student moved school; the receiving school's psychology teacher accepts the case (cases.transfers).
    start_transfer = flow.StartHandle(this.transfer_begin).Next(this.accept_transfer)

    triage = CaseTask(_("Triage: confirm the tier")).Permission(PSYCHOLOGY, obj=_school).Next(this.after_triage)
    after_triage = (
        flow.Switch()
        .Case(this.approve_false_positive, lambda a: a.process.case.status == CaseStatus.CLOSING)
        .Case(this.approve_lowering, lambda a: _lowering_pending(a))
        .Default(this.staffing)
    )
    approve_false_positive = (
        IndependentView(_("Confirm the false positive"))
        .Permission(_closure_permission, obj=_school)
        .Next(this.after_false_positive)
    )
    after_false_positive = (
        flow.Switch()
        .Case(this.end, lambda a: a.process.case.status == CaseStatus.CLOSED)
        .Case(this.approve_false_positive, lambda a: a.process.case.status == CaseStatus.CLOSING)  # next level
        .Default(this.staffing)
    )
    # Lowering an orange or red tier at triage: an independent approver decides; the tier stands until then.
    approve_lowering = (
        IndependentView(_("Approve lowering the tier"))
        .Permission(_approver_permission, obj=_school)
        .Next(this.staffing)
    )

    staffing = CaseTask(_("Staff the case team")).Permission(PSYCHOLOGY, obj=_school).Next(this.first_steps)
    first_steps = (
        flow.Split()
        .Next(this.interview)
        .Next(this.parent_contact, case=lambda a: tier_rule(a.process.case.tier).parent_contact_required)
    )
    # Deadlines (DESIGN §3): every human step's task has a clock (CaseTaskActivation, workflows.deadlines); the first
    # interview and the parent contact count from the start of this process. An overdue task stays where it is.
    interview = (
        CaseTask(_("Interview the student"))
        .Assign(_seat(TeamSeat.PSYCHOLOGY_TEACHER))
        .Permission(PSYCHOLOGY, obj=_school)
        .Next(this.first_steps_done)
    )
    parent_contact = (
        CaseTask(_("Contact the parents"))
        .Assign(_seat(TeamSeat.HOMEROOM_TEACHER))
        .Permission(PSYCHOLOGY, obj=_school)
        .Next(this.first_steps_done)
    )
    first_steps_done = flow.Join().Next(this.plan)

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

    # The next follow-up opens at once, due the tier's interval after the last follow-up, plan or approval (its
    # clock): the inbox shows it coming. (A routing node, so every step back into the loop names one place.)
    wait_follow_up = flow.Switch().Default(this.follow_up)
    follow_up = (
        CaseTask(_("Follow-up session"))
        .Assign(_seat(TeamSeat.PSYCHOLOGY_TEACHER))
        .Permission(PSYCHOLOGY, obj=_school)
        .Next(this.after_follow_up)
    )
    after_follow_up = (
        flow.Switch()
        .Case(this.raised, lambda a: _last_follow_up_outcome(a) == FollowUpOutcome.ESCALATE)
        .Case(this.approve_tier_change, lambda a: _last_follow_up_outcome(a) == FollowUpOutcome.DE_ESCALATE)
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
    # The closure chain (tier rules): each level that approves passes it to the next (red: the district centre, then
    # the city crisis centre); the last approval closes the case, any refusal sends it back to follow-ups.
    after_closure = (
        flow.Switch()
        .Case(this.end, lambda a: a.process.case.status == CaseStatus.CLOSED)
        .Case(this.approve_closure, lambda a: a.process.case.status == CaseStatus.CLOSING)
        .Default(this.wait_follow_up)
    )
    # A follow-up that raised the tier: this process ends and a new one starts the new tier's first steps.
    raised = flow.Function(this.restart_raised).Next(this.raised_end)
    raised_end = flow.End()

    district_support = (
        CaseTask(_("Support the case (district centre)"))
        .Permission(DISTRICT_CENTRE, obj=_school)
        .Next(this.support_end)
    )
    support_end = flow.End()
    safety_assessment = CaseTask(_("Brief safety assessment")).Permission(PSYCHOLOGY, obj=_school).Next(this.safety_end)
    safety_end = flow.End()
    hand_over = (
        UnclockedTask(_("Hand over or close"))
        .Assign(_seat(TeamSeat.PSYCHOLOGY_TEACHER))
        .Permission(PSYCHOLOGY, obj=_school)
        .Next(this.handover_end)
    )
    handover_end = flow.End()
    accept_transfer = (
        CaseTask(_("Accept the transferred case"))
        .Assign(_sole_receiver)
        .Permission(PSYCHOLOGY, obj=_receiving_school)
        .Next(this.transfer_end)
    )
    transfer_end = flow.End()
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

    def side_begin(self, activation, case, side: str):
        activation.process.case = case
        activation.process.data = {**(activation.process.data or {}), SIDE: side}
        activation.process.save()
        return activation.process

    def transfer_begin(self, activation, case, transfer):
        from workflows.deadlines import TRANSFER_KEY

        activation.process.case = case
        activation.process.data = {**(activation.process.data or {}), SIDE: TRANSFER, TRANSFER_KEY: transfer.pk}
        activation.process.save()
        return activation.process

    def restart_raised(self, activation):
        from django.db import transaction

        case = activation.process.case
        transaction.on_commit(lambda: CaseFlow.start_raised.run(case=case))
