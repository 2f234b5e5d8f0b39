"""Working a case's tasks: start the process, claim a task, do a step (the step's record written by cases.services
inside the task's activation, under the flow lock), and the background tick that fires due timers.

Viewflow's transitions check no permissions (only its views do), so every function here checks `can_assign` or
`can_execute` itself. A task someone else has already done or taken answers with TaskUnavailable and changes nothing.
May import: roster, screening, cases.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from viewflow.fsm import TransitionNotAllowed
from viewflow.workflow.exceptions import FlowLockFailed
from viewflow.workflow.models import Task
from viewflow.workflow.status import STATUS

from cases import alerts, help_records
from cases import services as case_services
from cases.models import AlertKind, Case, Decision, FollowUpOutcome, SupportStatus
from screening.definitions import RiskTier
from workflows import leavers, models
from workflows.deadlines import task_clocks_reset_for_case, task_clocks_start_bulk, task_deadlines_sweep
from workflows.flows import SAFETY, SUPPORT, CaseFlow
from workflows.models import CaseProcess

logger = logging.getLogger(__name__)


class TaskUnavailable(Exception):
    """The task was done, cancelled or taken by someone else meanwhile."""

    def __init__(self):
        super().__init__(_("This task has already been done or taken by someone else. Nothing was changed."))


class CaseBusy(Exception):
    """Someone else is completing a step of the same case at this moment (the flow lock stayed taken)."""

    def __init__(self):
        super().__init__(_("Someone else is saving a step of this case right now. Please try again in a moment."))


# --- Starting -----------------------------------------------------------------------------------------------------


def main_processes(case: Case):
    """The case's own processes (not the side processes beside them), newest first."""
    return models.main_processes().filter(case=case).order_by("-pk")


def _running(case: Case) -> CaseProcess | None:
    return main_processes(case).exclude(status__in=(STATUS.DONE, STATUS.CANCELED)).first()


def case_process_start(case: Case, *, new: bool = False) -> CaseProcess:
    """A process for an opened (`new`: it has none) or reopened case; a case has at most one running process."""
    running = None if new else _running(case)
    return running or CaseFlow.start.run(case=case)


def case_raised_continue(case: Case) -> None:
    """After a raise of tier from outside the process (a new screening, a staff concern): before the team is seated
    the waiting triage and staffing simply take the new tier (their clocks recomputed, earlier only); once the team
    works the case, its process gives way to a new one that starts the new tier's interview and parent contact (the
    raise already re-staffed the team). Access: the system, right after the raise."""
    running = _running(case)
    if running is not None and not case.team.filter(left_at__isnull=True).exists():
        task_clocks_reset_for_case(case)
        return
    if running is not None:
        CaseFlow.instance.cancel(running)
    CaseFlow.start_raised.run(case=case)


def on_student_flagged(sender, result, in_batch: bool = False, **kwargs) -> None:
    """`student_flagged` (screening, after the result's commit): the crisis alert at once, in the submitting
    request, and the case by the task worker, so that a student's submission costs a few queries and one queued
    task, not a case and a process. The alert never waits behind the worker's queue of case openings (at a
    city's screening rate that queue runs minutes behind); if raising it fails here, the worker raises it."""
    if in_batch:  # opened with the batch by on_students_flagged
        return
    from django_q.tasks import async_task

    try:
        alerts.crisis_alert_raise_for_result(result.pk)
    except Exception:  # the student's answers are stored: never fail their page; the worker's task raises it
        logger.exception("crisis alert of screening result %s not raised at submit; left to the task worker", result.pk)
    async_task("workflows.tasks.case_open_for_result", result.pk, group="cases")


def case_open_for_result(result_id: int) -> str:
    """Open or update the case of one flagged result, and start its process when it (re)opens; the result's crisis
    alert (raised at submit, or now if that failed) is linked to the case. Returns the outcome."""
    from screening.models import ScreeningResult

    result = ScreeningResult.objects.select_related("student__school").get(pk=result_id)
    with transaction.atomic():
        opening = case_services.case_open_for_flag(result)
        _continue(opening)
        alerts.crisis_alert_link_case(opening.case)
    logger.info("case %s %s by screening result %s", opening.case.pk, opening.outcome, result.pk)
    alert = alerts.crisis_alert_raise_for_result(result.pk)  # the one raised at submit, or a new one
    if alert is not None:
        safety_assessment_start(alert)
    return opening.outcome


def safety_assessment_start(alert) -> bool:
    """A non-acute critical answer (NIMH ASQ pathway): a brief safety assessment task in the school's queue, due
    before the end of that school day. Once per alert. Returns whether a task was opened."""
    if alert.kind != AlertKind.CRITICAL or alert.case_id is None:
        return False
    side = CaseProcess.objects.filter(case_id=alert.case_id, data__side=SAFETY, created__gte=alert.raised_at)
    if side.exists():
        return False
    CaseFlow.start_safety.run(case=alert.case, side=SAFETY)
    return True


def safety_assessment_done(user, task, **fields):
    def record(case):
        alert = case.crisis_alerts.filter(kind=AlertKind.CRITICAL).order_by("-raised_at").first()
        previous = case.tier
        assessment = case_services.safety_assessment_record(user, case, alert=alert, **fields)
        case.refresh_from_db()
        if case.tier != previous:  # not safe: red now, so the case's own steps take red's clocks (its process)
            transaction.on_commit(lambda: case_raised_continue(case))
        return assessment

    return _do(user, task, CaseFlow.safety_assessment, record)


def _continue(opening) -> None:
    if opening.outcome in ("opened", "reopened"):
        case_process_start(opening.case, new=opening.outcome == "opened")
    elif opening.outcome == "raised":
        case_raised_continue(opening.case)


def crisis_alerts_raise_for_results(result_ids: list[int]) -> int:
    """The crisis alerts of a batch of flagged results (a large import), after their cases. Returns how many."""
    raised = [alerts.crisis_alert_raise_for_result(pk) for pk in result_ids]
    for alert in raised:
        if alert is not None:
            safety_assessment_start(alert)
    return sum(alert is not None for alert in raised)


def on_students_flagged(sender, results, **kwargs) -> None:
    """`students_flagged` (a large import's chunk, inside its transaction): the cases in bulk, then their processes."""
    with transaction.atomic():  # all or nothing for the batch: never a case without its process
        openings = case_services.cases_open_for_flags(results)
        new = [o.case for o in openings if o.outcome == "opened"]  # opened in bulk just now: no process yet
        case_processes_start_new(new)
        for opening in openings:
            if opening.outcome in ("reopened", "raised"):
                _continue(opening)
    logger.info("cases for %s flagged results: %s opened", len(results), len(new))
    from django_q.tasks import async_task

    ids = [r.pk for r in results]
    transaction.on_commit(lambda: async_task("workflows.services.crisis_alerts_raise_for_results", ids, group="alerts"))


def case_processes_start_new(cases: list[Case]) -> list[CaseProcess]:
    """Processes for newly opened cases in a few bulk statements, each waiting for triage: the same rows
    `CaseFlow.start.run(case=...)` writes one process at a time (tests/workflows compare them)."""
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection
    from viewflow.workflow.models import Process
    from viewflow.workflow.token import Token

    from roster.models import School
    from workflows.flows import PSYCHOLOGY

    if not cases:
        return []
    now = timezone.now()
    processes = Process.objects.bulk_create(
        [Process(flow_class=CaseFlow, status=STATUS.NEW, created=now, data={}) for _ in cases]
    )
    with connection.cursor() as cursor:  # the child rows of the multi-table model, which bulk_create cannot write
        cursor.executemany(
            "INSERT INTO workflows_caseprocess (process_ptr_id, case_id) VALUES (%s, %s)",
            [(process.pk, case.pk) for process, case in zip(processes, cases, strict=True)],
        )
    starts = Task.objects.bulk_create(
        [
            Task(
                process=p,
                flow_task=CaseFlow.start,
                flow_task_type="START",
                status=STATUS.DONE,
                created=now,
                started=now,
                finished=now,
                token=Token("start"),
                data={},
            )  # fmt: skip
            for p in processes
        ]
    )
    school_type = ContentType.objects.get_for_model(School)
    triages = Task.objects.bulk_create(
        [
            Task(
                process=p,
                flow_task=CaseFlow.triage,
                flow_task_type="HUMAN",
                status=STATUS.NEW,
                created=now,
                token=Token("start"),
                owner_permission=PSYCHOLOGY,
                owner_permission_content_type=school_type,
                owner_permission_obj_pk=str(case.school_id),
                data={},
            )  # fmt: skip
            for p, case in zip(processes, cases, strict=True)
        ]
    )
    Task.previous.through.objects.bulk_create(
        [Task.previous.through(from_task=t, to_task=s) for t, s in zip(triages, starts, strict=True)]
    )
    task_clocks_start_bulk(triages, cases)  # what CaseTaskActivation does for one task
    return list(CaseProcess.objects.filter(pk__in=[p.pk for p in processes]))


def case_refer_and_start(actor, student, reason: str, tier: str) -> Case:
    """A staff referral: the case (opened, or the active one) and its process, waiting for triage. `actor` None: a
    rule's red signal nobody raised by hand (cases.services.case_refer_for_system), on the same path."""
    with transaction.atomic():
        if actor is None:
            opening = case_services.case_refer_for_system(student, reason, tier)
        else:
            opening = case_services.case_refer(actor, student, reason, tier)
        _continue(opening)
        if tier == RiskTier.RED and opening.outcome != "unchanged":
            # A teacher who sees a red student now: the same alert chain as a red screening.
            alerts.crisis_alert_raise(
                opening.case.student, kind=AlertKind.RED, case=opening.case,
                event_key=f"staff_concern:{opening.case.pk}:{opening.case.history.count()}",
            )  # fmt: skip
    return opening.case


def case_reopen_and_start(actor, case: Case, reason: str) -> CaseProcess:
    """A closed case reopened by hand (its history kept) and a new process for it, waiting for triage."""
    with transaction.atomic():
        case = case_services.case_reopen(actor, case, reason)
        return case_process_start(case)


# --- Tasks --------------------------------------------------------------------------------------------------------


def task_claim(user, task) -> None:
    """Take a task from the school's queue."""
    task.refresh_from_db()
    if task.status != STATUS.NEW:
        raise TaskUnavailable
    if not task.flow_task.can_assign(user, task):
        raise PermissionDenied(_("This task is not yours to take."))
    try:
        with task.activation() as activation:
            activation.assign(user)
    except TransitionNotAllowed:
        raise TaskUnavailable from None
    except FlowLockFailed:
        raise CaseBusy from None


def task_release(user, task) -> None:
    """Put a task one has taken back in the school's queue."""
    if not task.flow_task.can_unassign(user, task):
        raise PermissionDenied(_("This task is not yours to release."))
    try:
        with task.activation() as activation:
            activation.unassign()
    except TransitionNotAllowed:
        raise TaskUnavailable from None


def _do(user, task, expected_nodes, record: Callable[[Case], object]):
    """Run `record(case)` and complete the task, in one transaction under the flow lock; or change nothing."""
    expected = expected_nodes if isinstance(expected_nodes, tuple) else (expected_nodes,)
    if task.flow_task not in expected:
        raise ValueError(f"task {task.pk} is {task.flow_task}, not {expected}")
    task.refresh_from_db()
    if task.status != STATUS.ASSIGNED:
        raise TaskUnavailable
    if not task.flow_task.can_execute(user, task):
        raise PermissionDenied(_("This task is not yours to do."))
    try:
        with task.activation() as activation:
            if activation.task.status != STATUS.ASSIGNED:  # re-read under the lock: done by someone meanwhile
                raise TaskUnavailable
            activation.start(request=None)
            outcome = record(activation.process.case)
            activation.process.case.refresh_from_db()  # the next nodes' conditions read what the step wrote
            activation.execute()
    except TransitionNotAllowed:
        raise TaskUnavailable from None
    except FlowLockFailed:
        raise CaseBusy from None
    return outcome


def _pending(requests):
    """The case's request waiting for this approval task (the flow opens the task only when one is pending)."""
    pending = requests.filter(decision=Decision.PENDING).first()
    if pending is None:
        raise TaskUnavailable
    return pending


def triage_done(user, task, *, tier: str, reason: str):
    return _do(user, task, CaseFlow.triage, lambda case: case_services.case_triage(user, case, tier, reason))


def staffing_done(user, task, members: dict):
    return _do(user, task, CaseFlow.staffing, lambda case: case_services.team_set(user, case, members))


def interview_done(user, task, *, note: str, restricted: bool = False):
    return _do(
        user, task, CaseFlow.interview,
        lambda case: case_services.interview_record(user, case, note, restricted=restricted),
    )  # fmt: skip


def parent_contact_done(user, task, **fields):
    return _do(
        user, task, CaseFlow.parent_contact, lambda case: case_services.parent_contact_record(user, case, **fields)
    )


def plan_done(user, task, **fields):
    return _do(user, task, CaseFlow.plan, lambda case: case_services.plan_record(user, case, **fields))


def referral_requested(user, task, **fields):
    return _do(user, task, CaseFlow.request_referral, lambda case: case_services.referral_request(user, case, **fields))


def referral_decided(user, task, *, approve: bool, note: str = ""):
    def decide(case):
        return case_services.referral_decide(user, _pending(case.referrals), approve, note)

    return _do(user, task, CaseFlow.approve_referral, decide)


def referral_made(user, task, **fields):
    def made(case):
        referral = case.referrals.filter(decision="approved").first()
        return case_services.referral_record_outcome(user, referral, **fields)

    return _do(user, task, CaseFlow.make_referral, made)


def follow_up_done(user, task, *, note: str, outcome: str, reassessment_score=None, to_tier: str = "",
                   reason: str = ""):  # fmt: skip
    """A follow-up session; escalate/de-escalate also asks the principal for the tier, propose_closure proposes."""

    def record(case):
        followup = case_services.followup_record(
            user, case, note=note, outcome=outcome, reassessment_score=reassessment_score
        )
        if outcome == FollowUpOutcome.ESCALATE:  # at once: the flow then restarts the new tier's first steps
            case_services.case_tier_raise(user, case, to_tier, reason or note)
        elif outcome == FollowUpOutcome.DE_ESCALATE:
            case_services.tier_change_request(user, case, to_tier, reason or note)
        elif outcome == FollowUpOutcome.PROPOSE_CLOSURE:
            case_services.closure_propose(user, case, reason or note)
        return followup

    return _do(user, task, CaseFlow.follow_up, record)


def tier_change_decided(user, task, *, approve: bool):
    def decide(case):
        return case_services.tier_change_decide(user, _pending(case.tier_changes), approve)

    return _do(user, task, (CaseFlow.approve_tier_change, CaseFlow.approve_lowering), decide)


def support_request_and_start(actor, case: Case, reason: str):
    """申请区县支持: the request on the case and the district centre's task in its queue."""
    with transaction.atomic():
        request = case_services.support_request(actor, case, reason)
        CaseFlow.start_support.run(case=case, side=SUPPORT)
    return request


def support_done(user, task, *, agency: str, contact: str, agreed: str):
    """The district centre joins the case: the request accepted and the first line of the coordination log."""

    def record(case):
        request = case.support_requests.filter(status=SupportStatus.OPEN).first()
        if request is None:
            raise TaskUnavailable
        request = case_services.support_accept(user, request)
        return case_services.coordination_record(user, case, agency=agency, contact=contact, agreed=agreed,
                                                 request=request)  # fmt: skip

    return _do(user, task, CaseFlow.district_support, record)


def closure_decided(user, task, *, approve: bool, evaluation: str = ""):
    def decide(case):
        return case_services.closure_decide(user, _pending(case.closures), approve, evaluation)

    outcome = _do(user, task, (CaseFlow.approve_closure, CaseFlow.approve_false_positive), decide)
    leavers.handover_again_if_stopped(outcome.case_id)  # a leaver's closure not approved: back to "hand over or close"
    return outcome


# What each human step's page runs (workflows.views): node name → the step function above.
STEPS: dict[str, Callable] = {
    "triage": triage_done,
    "approve_false_positive": closure_decided,
    "staffing": staffing_done,
    "interview": interview_done,
    "parent_contact": parent_contact_done,
    "plan": plan_done,
    "request_referral": referral_requested,
    "approve_referral": referral_decided,
    "make_referral": referral_made,
    "follow_up": follow_up_done,
    "approve_tier_change": tier_change_decided,
    "approve_lowering": tier_change_decided,
    "district_support": support_done,
    "safety_assessment": safety_assessment_done,
    "approve_closure": closure_decided,
    "accept_transfer": lambda user, task, **fields: _transfers().transfer_accept_done(user, task, **fields),
    "hand_over": leavers.handover_done,
}


def _signals():
    from workflows import signals  # it uses case_refer_and_start above

    return signals


def _transfers():
    from workflows import transfers  # it uses `_do` above

    return transfers


def step_done(user, task, **fields):
    """Do the task's step with what its form collected (workflows.forms)."""
    return STEPS[task.flow_task.name](user, task, **fields)


def _held_at(user, school) -> list[Task]:
    """The open tasks `user` holds on the cases of `school`."""
    processes = CaseProcess.objects.filter(case__school=school).values("pk")
    return list(Task.objects.filter(owner=user, status__in=(STATUS.ASSIGNED, STATUS.STARTED), process__in=processes))


def work_hand_over(actor, leaver, successor, school) -> dict:
    """In one action, a leaver's team seats on the school's active cases and every task they hold on those cases
    pass to `successor` (DESIGN: assignment is never to hard-coded users). All or nothing; refused with a clear
    message when the successor cannot take a seat. Access: the school's principals (checked by cases.services).
    """
    with transaction.atomic():
        seats = case_services.seats_hand_over(actor, leaver, successor, school)
        tasks = _held_at(leaver, school)
        for task in tasks:
            with task.activation() as activation:
                activation.reassign(user=successor)
    logger.info("handover at school %s: %s seats, %s tasks", school.pk, len(seats), len(tasks))
    return {"seats": len(seats), "tasks": len(tasks)}


def tasks_return_to_queue(user, school) -> int:
    """Every task `user` holds on `school`'s cases goes back to the school's queue, for whoever holds the task's role
    there to take. The system does this when the person's role at the school is removed: no permission is checked.
    Their team seats stay (the principal hands them over with `work_hand_over`). Returns how many tasks."""
    with transaction.atomic():
        tasks = _held_at(user, school)
        for task in tasks:
            with task.activation() as activation:
                if activation.task.status == STATUS.STARTED:  # a step under way (only inside its own transaction)
                    activation.task.status = STATUS.ASSIGNED
                    activation.task.started = None
                activation.unassign()
    if tasks:
        logger.info("role removed at school %s: %s tasks of user %s back in the queue", school.pk, len(tasks), user.pk)
    return len(tasks)


def on_role_removed(sender, assignment, **kwargs) -> None:
    """`role_removed` (roster): the person's open tasks on the cases of each school under the removed role's node
    go back to that school's queue, unless another role of theirs still reaches the school (a psychology teacher
    who stops being a homeroom teacher keeps their work)."""
    from django.db.models import Q

    from roster import scoping
    from roster.models import School

    if assignment.school_id:
        node = Q(pk=assignment.school_id)
    elif assignment.school_class_id:
        node = Q(classes=assignment.school_class_id)
    elif assignment.district_id:
        node = Q(district_id=assignment.district_id)
    else:
        node = Q(district__city_id=assignment.city_id)
    held = Task.objects.filter(owner_id=assignment.user_id, status__in=(STATUS.ASSIGNED, STATUS.STARTED))
    schools = School.objects.filter(node, pk__in=held.values("process__caseprocess__case__school_id")).distinct()
    for school in schools:
        if not scoping.works_at(assignment.user, school):
            tasks_return_to_queue(assignment.user, school)


# --- Background ---------------------------------------------------------------------------------------------------


def workflow_tick() -> dict:
    """Fire due Viewflow timers, send the due reminders of overdue steps (workflows.deadlines) and climb the crisis
    alerts whose window ended (their own one-off runs do that on time; this catches any that slipped, e.g. after the
    worker was down). Run every minute by the django-q2 schedule."""
    from viewflow.workflow.timers import fire_due_conditions, fire_due_start_timers, fire_due_timers

    return {"timers": fire_due_timers(), "starts": fire_due_start_timers(), "conditions": fire_due_conditions(),
            "overdue": task_deadlines_sweep(), "alerts": alerts.crisis_alerts_escalate_due(),
            "signals": _signals().signals_overdue_sweep(),
            "help_reviews": help_records.help_reviews_due_signal(timezone.now())}  # fmt: skip
