"""The flow side of a leaver's case (issue 19 item 5; cases.leavers holds the rules).

- roster's `students_left`: each active case of the leavers stops (Case.paused_at) and an open one gets a "hand over
  or close" task (移交或结案) in a side process, for the team's psychology teacher (the school's queue when the case
  has no team yet). The task has no due time: the student has left, and the district centre hears of an orange or
  red case at once. A case whose closure is already proposed gets no task: that closure's evaluation decides it.
- The task: handed over (to a school or institution outside the system) ends the case as "transferred" and cancels
  its open steps; close proposes the closure (cases.services.closure_propose), and a new main process waits at the
  closure's evaluation, the same approval chain as any closure (no direct close: nobody closes a case without the
  level above evaluating it). A rejected closure of a stopped case gives the team a new hand-over task.
- roster's `students_returned`, and `student_moved` (the student turns up at another school: the transfer of the
  case takes over as its hand-over): the clocks run again, the open hand-over task is cancelled, and every open
  task's due time and next reminder move on by the length of the pause (nothing is overdue from the pause alone;
  reminders already sent stay sent). 休学 (on leave) is not leaving: roster never announces it.

May import: roster, screening, cases, workflows.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import transaction
from viewflow.workflow.status import STATUS

from cases import leavers as case_leavers
from cases import services as case_services
from cases.models import Agency, Case, CaseStatus
from workflows.case_page import case_links
from workflows.deadlines import task_clocks_shift
from workflows.flows import HANDOVER, CaseFlow
from workflows.models import CaseProcess

logger = logging.getLogger(__name__)

HANDED_OVER, CLOSE = "handed_over", "close"
FINISHED = (STATUS.DONE, STATUS.CANCELED)


# --- Receivers (roster's signals, inside the transaction that changed the students) -------------------------------


def on_students_left(sender, student_ids, status, actor=None, **kwargs) -> None:
    leavers_pause(student_ids=student_ids, status=status, actor=actor)


def on_students_returned(sender, student_ids, actor=None, **kwargs) -> None:
    leavers_resume(student_ids=student_ids, actor=actor)


def on_student_moved(sender, move, actor=None, **kwargs) -> None:
    leavers_resume(student_ids=[move.student_id], actor=actor, moved=True)


# --- Services -----------------------------------------------------------------------------------------------------


def leavers_pause(*, student_ids: Iterable[int], status: str, actor=None) -> list[Case]:
    """Stop the leavers' cases, give each open one its hand-over task, tell the district centre of the orange and red
    ones. Access: the system (`students_left`). Audit: the cases' history, the tasks, the notifications."""
    with transaction.atomic():
        cases = case_leavers.cases_pause_for_leavers(student_ids=student_ids, status=status, actor=actor)
        links = case_links(case.pk for case in cases)
        for case in cases:
            if case.status == CaseStatus.OPEN:
                CaseFlow.start_handover.run(case=case, side=HANDOVER)
            case_leavers.leaver_notice(case, status=status, link=links.get(case.pk, ""))
    return cases


def _open_handovers(case: Case):
    return CaseProcess.objects.filter(case=case, data__side=HANDOVER).exclude(status__in=FINISHED)


def leavers_resume(*, student_ids: Iterable[int], actor=None, moved: bool = False) -> list[Case]:
    """The clocks of the returning students' stopped cases run again; their hand-over tasks are cancelled; their open
    tasks' clocks move on by the pause. Access: the system (`students_returned`, `student_moved`). Audit: the cases'
    history, the cancelled tasks."""
    with transaction.atomic():
        resumed = case_leavers.cases_resume(student_ids=student_ids, actor=actor, moved=moved)
        for case, pause in resumed:
            for process in _open_handovers(case):
                CaseFlow.instance.cancel(process)
            task_clocks_shift(case, pause)
    return [case for case, _pause in resumed]


def handover_done(user, task, *, outcome: str, institution: str = "", agency: str = Agency.EDUCATION,
                  note: str = "", reason: str = ""):  # fmt: skip
    """The "hand over or close" task. Handed over: the case ends as transferred and its other open steps are
    cancelled. Close: the closure is proposed and the case's path waits at its evaluation (a level higher). Either
    way in one transaction, or nothing changes."""
    from workflows.services import _do, _running

    def record(case):
        if outcome == HANDED_OVER:
            return case_leavers.case_hand_over(user, case, institution=institution, agency=agency, note=note)
        return case_services.closure_propose(user, case, reason)

    with transaction.atomic():
        done = _do(user, task, CaseFlow.hand_over, record)
        case = Case.objects.get(pk=task.process.coerced.case_id)
        running = _running(case)
        if outcome == HANDED_OVER:
            others = CaseProcess.objects.filter(case=case).exclude(pk=task.process_id).exclude(status__in=FINISHED)
            for process in others:
                CaseFlow.instance.cancel(process)
        else:
            if running is not None:
                CaseFlow.instance.cancel(running)
            CaseFlow.start_closing.run(case=case)
    logger.info("case %s of a leaver: %s", case.pk, outcome)
    return done


def handover_again_if_stopped(case_id: int) -> bool:
    """After a closure's evaluation: a stopped case whose closure was not approved is back with its team, who hand it
    over or propose again (a new hand-over task, unless one is open). Returns whether a task was opened."""
    case = Case.objects.get(pk=case_id)
    if case.paused_at is None or case.status != CaseStatus.OPEN or _open_handovers(case).exists():
        return False
    CaseFlow.start_handover.run(case=case, side=HANDOVER)
    return True
