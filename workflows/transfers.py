"""The flow side of 档案移交 (issue 19 item 3): a confirmed school move of a student with an active case opens the
receiving school's "Accept the transferred case" task (a side process beside the case's own, with a clock from the
tier rules' `transfer_acceptance` deadline and its own overdue chain to both district centres); its acceptance moves
the case's open tasks to the receiving school (to the new seat holders, or its queue), their clocks keeping their due
times and climbing the receiving school's chain from then on.

The case's rules are cases.transfers'; the receiver of `roster.signals.student_moved` (workflows.apps) calls
`case_transfer_start` here, inside the move's transaction.
May import: roster, screening, cases.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

from django.db import transaction
from django.utils import timezone
from viewflow.workflow.models import Task
from viewflow.workflow.status import STATUS

from cases import transfers
from cases.models import Case, CaseTransfer
from roster.models import School
from workflows import models
from workflows.deadlines import ACTIVE, transfer_of
from workflows.flows import TRANSFER, CaseFlow
from workflows.models import CaseProcess

logger = logging.getLogger(__name__)


def case_link(case: Case) -> str:
    """The case page (its newest main process), for a notice; "" while the case has no process yet."""
    process = models.main_processes().filter(case=case).order_by("-pk").values_list("pk", flat=True).first()
    return CaseFlow.instance.reverse("process_detail", args=[process]) if process else ""


def on_student_moved(sender, move, actor=None, **kwargs) -> None:
    """`student_moved` (roster, inside the move's transaction): start the transfer of the student's active case."""
    case_transfer_start(move, actor=actor)


def _transfer_processes(case: Case):
    return CaseProcess.objects.filter(case=case, data__side=TRANSFER).exclude(status__in=(STATUS.DONE, STATUS.CANCELED))


def case_transfer_start(move, *, actor=None) -> CaseTransfer | None:
    """The student of `move` has moved: when they have an active case at another school, a pending transfer and the
    receiving school's acceptance task (a waiting one elsewhere is cancelled); a red case tells both district centres
    at once. Nothing else about the case changes until the acceptance. Returns the transfer, or None.

    Access: the system (the move's confirmation). Audit: cases.transfers' history rows; the task and its clock.
    """
    case = transfers.active_case_of(move.student_id)
    if case is None:
        return None
    with transaction.atomic():
        for process in _transfer_processes(case):  # the student moved again, or back, before an acceptance
            CaseFlow.instance.cancel(process)
        transfer = transfers.transfer_request(case, move, actor=actor)
        if transfer is None:
            return None
        CaseFlow.start_transfer.run(case=transfer.case, transfer=transfer)
        transfers.transfer_red_notify(transfer, link=case_link(transfer.case))
    return transfer


def transfer_accept_done(user, task, **fields):
    """The acceptance task: the case accepted (cases.transfers.transfer_accept) and its open tasks moved, in one
    transaction under the flow lock; the sending psychology teacher told who accepted it."""
    from workflows.services import TaskUnavailable, _do

    def record(case):
        transfer = transfer_of(task)
        if transfer is None:
            raise TaskUnavailable
        acceptance = transfers.transfer_accept(user, transfer)
        tasks_follow_case(acceptance.case, exclude=task.pk)
        return acceptance

    acceptance = _do(user, task, CaseFlow.accept_transfer, record)
    transfers.transfer_accepted_notify(acceptance, link=case_link(acceptance.case))
    return acceptance


def tasks_follow_case(case: Case, *, exclude: int | None = None) -> int:
    """After the case moved school: each open task of its processes takes the case's school as its permission's
    object, and goes to the holder of its seat on the new team (interview, plan… to the psychology teacher, the
    parent contact to the homeroom teacher) or back to the school's queue. Clocks keep their due times (the sweep
    reads the case's school: the receiving chain from now on). Call inside the acceptance's transaction.
    Returns how many tasks moved."""
    case = Case.objects.get(pk=case.pk)
    school = School.objects.get(pk=case.school_id)
    now = timezone.now()
    processes = CaseProcess.objects.filter(case=case).exclude(pk__in=_transfer_processes(case).values("pk"))
    tasks = (
        Task.objects.select_for_update()
        .filter(process__in=processes.values("pk"), flow_task_type="HUMAN", status__in=ACTIVE)
        .exclude(pk=exclude)
    )  # fmt: skip
    moved = 0
    for task in tasks:
        process = CaseProcess.objects.select_related("case").get(pk=task.process_id)
        owner = None
        if getattr(task.flow_task, "_owner", None) is not None:
            owner = task.flow_task.calc_owner(SimpleNamespace(process=process, task=task))
        if task.owner_permission:
            task.owner_permission_obj_pk = str(school.pk)
        task.started = None if task.status == STATUS.STARTED else task.started
        if owner is not None:
            task.owner, task.status, task.assigned = owner, STATUS.ASSIGNED, now
        else:
            task.owner, task.status = None, STATUS.NEW
        task.save()
        moved += 1
    logger.info("case %s: %s open tasks moved to school %s", case.pk, moved, school.pk)
    return moved
