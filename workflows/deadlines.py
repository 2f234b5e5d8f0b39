"""A clock on every human step of a case (DESIGN §3, the crisis loop; issue 16 item 5): when each task is due, from
the tier rules (cases.tiers), and the overdue chain that climbs from the assignee to the principal to the district
centre while the task waits.

- Every human task of the case process gets its TaskClock when it is created (workflows.flows.CaseTask's activation;
  workflows.services.case_processes_start_new writes them in bulk). A step is due its tier's deadline after the
  task opened; the first interview and the parent contact count from the start of the case's current process (the
  opening, a reopening or the restart after a raise of tier), so a reopened case's clocks start at the reopening.
- `task_deadlines_sweep` (every minute, inside workflows.services.workflow_tick) sends each due step of the tier's
  overdue chain once (roster.notifications, kind "task_overdue") and moves the clock to the next step. A task done or
  cancelled reminds nobody: the sweep only reads active tasks and clears the clocks of the others.
- `task_clocks_reset_for_case` after a change of tier: open tasks' due times are recomputed; a raise only ever brings
  a due time earlier.

May import: roster, screening, cases, workflows.models (workflows.flows lazily: it imports this module).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from viewflow.workflow.models import Task
from viewflow.workflow.status import STATUS

from cases import alerts
from cases.models import Case, CaseTransfer
from cases.tiers import TRANSFER_STEP, Audience, ChainStep, TierRule, rules, tier_rule
from roster import scoping
from roster.masking import mask_name
from roster.models import School
from roster.notifications import notify
from workflows.models import TaskClock

logger = logging.getLogger(__name__)

OVERDUE_KIND = "task_overdue"
ACTIVE = (STATUS.NEW, STATUS.ASSIGNED, STATUS.STARTED)
SWEEP_BATCH = 500  # clocks per sweep; the rest wait a minute (a backlog never holds the tick for long)

# Flow node name → the deadline step of cases.tiers.STEPS. Every other human node is an approval.
NODE_STEPS = {
    "triage": "triage",
    "staffing": "staffing",
    "interview": "interview",
    "parent_contact": "parent_contact",
    "plan": "plan",
    "request_referral": "request_referral",
    "make_referral": "make_referral",
    "follow_up": "follow_up",
    "safety_assessment": "safety_assessment",
    "district_support": "district_support",
    "accept_transfer": TRANSFER_STEP,
}
# The process data key naming the CaseTransfer a transfer's side process is about (workflows.flows.side_begin).
TRANSFER_KEY = "transfer"
# Steps counted from the start of the case's current process, not from the task's creation.
FROM_PROCESS_START = frozenset({"interview", "parent_contact"})


def step_of(flow_task) -> str:
    return NODE_STEPS.get(getattr(flow_task, "name", ""), "approval")


def _rule(tier: str) -> TierRule:
    # A case triaged green waits for its false positive's approval: the lowest tier's clock applies.
    return tier_rule(tier) if str(tier) in rules().tiers else tier_rule("yellow")


def _start(task: Task, step: str, case: Case) -> datetime:
    """When the step's clock starts: the task's creation; for the first interview and the parent contact the start of
    the case's current clocks, the later of its process's start and Case.clock_from (the opening, the reopening or
    the last raise of the tier)."""
    if step not in FROM_PROCESS_START:
        return task.created
    return max(moment for moment in (task.process.created, case.clock_from) if moment is not None)


def _due(tier: str, step: str, start: datetime, school: School) -> datetime:
    due_at = _rule(tier).deadline(step).after(start, school)
    if step == "safety_assessment":  # NIMH ASQ: seen before the student goes home, the end of that school day
        from roster import duty

        due_at = min(due_at, duty.school_day_end(school, start))
    return due_at


def _reminder_at(rule: TierRule, due_at: datetime, reminded: int, school: School, step: str) -> datetime | None:
    """When the step's chain's next step (index `reminded`) is due, or None when the chain is done."""
    chain = rule.chain(step)
    if reminded >= len(chain):
        return None
    return chain[reminded].after.after(due_at, school)


def transfer_of(task: Task) -> CaseTransfer | None:
    """The transfer a task of a transfer's side process is about (its acceptance), with both schools; else None."""
    pk = (task.process.data or {}).get(TRANSFER_KEY)
    if pk is None:
        return None
    related = ("from_school__district__city", "to_school__district__city")
    return CaseTransfer.objects.select_related(*related).filter(pk=pk).first()


def _chain_school(task: Task, step: str, case: Case) -> tuple[School, CaseTransfer | None]:
    """Whose chain an overdue step climbs: the case's school; for a transfer's acceptance the receiving school (and
    its district), the sending district being the transfer's own audience."""
    transfer = transfer_of(task) if step == TRANSFER_STEP else None
    if transfer is not None:
        return transfer.to_school, transfer
    return School.objects.select_related("district").get(pk=case.school_id), None


def task_clock_start(task: Task, *, case: Case | None = None, now: datetime | None = None) -> TaskClock:
    """The clock of a new human task of a case process (idempotent: a second call returns the clock there is).

    Access: the flow's activation, when the task is created; no user. Audit: the clock row itself."""
    case = case or Case.objects.get(processes__pk=task.process_id)
    step = step_of(task.flow_task)
    school, transfer = _chain_school(task, step, case)
    if task.created is None:
        task.created = now or timezone.now()
    # A transfer is due when the transfer says (cases.transfers: the tier rules, on the receiving district's calendar).
    due_at = transfer.due_at if transfer is not None else _due(case.tier, step, _start(task, step, case), school)
    clock, _created = TaskClock.objects.get_or_create(
        task=task, defaults={"case": case, "step": step, "due_at": due_at,
                             "next_reminder_at": _reminder_at(_rule(case.tier), due_at, 0, school, step)},
    )  # fmt: skip
    return clock


def task_clocks_start_bulk(tasks: list[Task], cases: list[Case]) -> list[TaskClock]:
    """The clocks of tasks created together in bulk (workflows.services.case_processes_start_new), one statement; a
    deadline is worked out once per tier and school for tasks created at the same moment.

    Access: the bulk opening of cases; no user. Audit: the clock rows."""
    schools = School.objects.select_related("district").in_bulk({case.school_id for case in cases})
    known: dict[tuple, tuple[datetime, datetime | None]] = {}
    clocks = []
    for task, case in zip(tasks, cases, strict=True):
        step = step_of(task.flow_task)
        start = _start(task, step, case)
        key = (case.tier, case.school_id, step, start)
        if key not in known:
            school = schools[case.school_id]
            due_at = _due(case.tier, step, start, school)
            known[key] = (due_at, _reminder_at(_rule(case.tier), due_at, 0, school, step))
        due_at, next_at = known[key]
        clocks.append(TaskClock(task=task, case=case, step=step, due_at=due_at, next_reminder_at=next_at))
    return TaskClock.objects.bulk_create(clocks)


def task_clock_stop(task: Task) -> None:
    """A finished task's clock reminds nobody any more (the sweep also clears clocks of tasks no longer active).

    Access: the system. Audit: none (the task row records its end)."""
    TaskClock.objects.filter(task_id=task.pk).update(next_reminder_at=None)


def task_clocks_reset_for_case(case: Case, *, now: datetime | None = None) -> int:
    """After a change of the case's tier: each open task's due time under the new tier, counted from the change
    (`now`), when that is earlier than the one it has; a due time never moves later. Returns how many moved.

    Access: cases' tier-change services, inside their transaction; no user. Audit: the clock rows (the tier change
    is recorded by the caller)."""
    now = now or timezone.now()
    school = School.objects.select_related("district").get(pk=case.school_id)
    rule = _rule(case.tier)
    moved = 0
    # A transfer's acceptance keeps the due time it was given (its chain is the receiving school's).
    clocks = (
        TaskClock.objects.select_for_update().filter(case=case, task__status__in=ACTIVE).exclude(step=TRANSFER_STEP)
    )
    with transaction.atomic():
        for clock in clocks:
            due_at = _due(case.tier, clock.step, now, school)
            if due_at >= clock.due_at:
                continue
            clock.due_at = due_at
            clock.next_reminder_at = _reminder_at(rule, due_at, clock.reminded, school, clock.step)
            clock.save(update_fields=["due_at", "next_reminder_at"])
            moved += 1
    return moved


def task_clocks_shift(case: Case, pause: timedelta) -> int:
    """A stopped case's clocks run again (cases.leavers.cases_resume): each open task's due time and next reminder
    move on by the length of the pause, wall-clock (a school-day deadline may land a little early or late). Returns
    how many moved.

    Access: workflows.leavers, inside the resuming transaction; no user. Audit: the clock rows (the case's history
    records the resumption)."""
    if pause <= timedelta(0):
        return 0
    clocks = TaskClock.objects.filter(case=case, task__status__in=ACTIVE)
    moved = clocks.update(due_at=F("due_at") + pause)
    clocks.filter(next_reminder_at__isnull=False).update(next_reminder_at=F("next_reminder_at") + pause)
    return moved


# --- The overdue chain --------------------------------------------------------------------------------------------


def _queue_holders(task: Task, case: Case, school: School) -> list[int]:
    """Everyone who may take the unassigned task from the school's queue (its role permission over the school), less
    the case's team for an approval (workflows.flows.IndependentView)."""
    from roster.auth_backends import PREFIX
    from workflows.flows import IndependentView

    permission = task.owner_permission or ""
    if not permission.startswith(PREFIX):
        return []
    holders = scoping.holders_over(school, permission[len(PREFIX) :])
    if isinstance(task.flow_task, IndependentView):
        holders = holders.exclude(pk__in=case.team.filter(left_at__isnull=True).values("user_id"))
    return list(holders.values_list("pk", flat=True))


def audience_members(
    audience: str, task: Task, case: Case, school: School, transfer: CaseTransfer | None = None
) -> list[int]:
    """The user ids an overdue chain's audience names for a task (cases.tiers.Audience): the assignee (or whoever may
    take the task from the queue) here; the school's and district's people as a crisis alert names them; for a
    transfer's acceptance, the sending school's district centre too."""
    if audience == Audience.ASSIGNEE:
        return [task.owner_id] if task.owner_id else _queue_holders(task, case, school)
    if audience == Audience.SENDING_DISTRICT_DUTY:
        if transfer is None:
            return []
        return sorted(alerts.audience_members(Audience.DISTRICT_DUTY, transfer.from_school, timezone.now()))
    return sorted(alerts.audience_members(audience, school, timezone.now()))


def _task_link(task: Task) -> str:
    from workflows.flows import CaseFlow

    # Through the flow's viewset: a node's own reverse needs the request's namespace, and the sweep has none.
    return CaseFlow.instance.reverse(f"{task.flow_task.name}:index", args=[task.process_id, task.pk])


def _remind(task: Task, case: Case, school: School, index: int, chain_step: ChainStep, due_at: datetime,
            transfer: CaseTransfer | None = None) -> int:  # fmt: skip
    step = str(task.flow_task.task_title or task.flow_task.name)
    with translation.override(settings.LANGUAGE_CODE):  # sent by the worker, read in the deployment's language
        title = _("Overdue: %(step)s, case #%(case)s (%(student)s)") % {
            "step": step, "case": case.pk, "student": mask_name(case.student.name),
        }  # fmt: skip
        body = _("“%(step)s” of case #%(case)s, %(student)s · %(class)s, was due %(due)s. Please see to it now.") % {
            "step": step, "case": case.pk, "student": mask_name(case.student.name),
            "class": case.student.school_class, "due": timezone.localtime(due_at).strftime("%Y-%m-%d %H:%M"),
        }  # fmt: skip
    # Both district centres of a move are one centre within a district: each person is told once.
    recipients = {
        pk for audience in chain_step.audiences for pk in audience_members(audience, task, case, school, transfer)
    }
    return notify(recipients, kind=OVERDUE_KIND, subject_key=f"task:{task.pk}:overdue:{index}", title=title,
                  body=body, link=_task_link(task), urgent=True)  # fmt: skip


def _advance(clock_pk: int, now: datetime) -> int:
    """Send every step of one clock's chain that is due by `now`, each once; returns how many notifications."""
    with transaction.atomic():
        # The row lock (PostgreSQL) or the writer lock (SQLite) makes a concurrent sweep wait, then find it done.
        clock = TaskClock.objects.select_for_update().filter(pk=clock_pk, next_reminder_at__lte=now).first()
        if clock is None:
            return 0
        task = Task.objects.get(pk=clock.task_id)
        if task.status not in ACTIVE:
            clock.next_reminder_at = None
            clock.save(update_fields=["next_reminder_at"])
            return 0
        case = Case.objects.select_related("student__school_class").get(pk=clock.case_id)
        if case.paused_at is not None:  # stopped since the sweep read it
            return 0
        school, transfer = _chain_school(task, clock.step, case)
        rule = _rule(case.tier)
        chain = rule.chain(clock.step)
        told = 0
        while clock.next_reminder_at is not None and clock.next_reminder_at <= now:
            if clock.reminded >= len(chain):
                clock.next_reminder_at = None
                break
            told += _remind(task, case, school, clock.reminded, chain[clock.reminded], clock.due_at, transfer)
            clock.reminded += 1
            clock.next_reminder_at = _reminder_at(rule, clock.due_at, clock.reminded, school, clock.step)
        clock.save(update_fields=["reminded", "next_reminder_at"])
    logger.info("task %s overdue: chain at step %s, %s told", clock.task_id, clock.reminded, told)
    return told


def task_deadlines_sweep(now: datetime | None = None) -> int:
    """Send the due steps of every overdue chain (run every minute by workflows.services.workflow_tick). Returns how
    many notifications were sent. Safe to run concurrently: each clock is advanced under its row lock.

    Access: the scheduler; no user. Audit: the notifications (who was told what, when) and the clocks' progress."""
    now = now or timezone.now()
    # Clocks of tasks done or cancelled before their next reminder: cleared when it comes (the index stays small).
    TaskClock.objects.filter(next_reminder_at__lte=now).exclude(task__status__in=ACTIVE).update(next_reminder_at=None)
    # A stopped case (its student left the system: cases.leavers) reminds nobody; its clocks wait where they are.
    due = (
        TaskClock.objects.filter(next_reminder_at__lte=now, task__status__in=ACTIVE, case__paused_at__isnull=True)
        .order_by("next_reminder_at")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    return sum(_advance(pk, now) for pk in list(due))
