"""Notices the case process sends: an overdue first step tells the school's principals (in the app, and by email
through the task worker). Messages name the case number and the step, never the student's name or any answers.
"""

from __future__ import annotations

import logging

from django.utils.translation import gettext as _

from roster.notifications import notify, staff_holding_roles_over
from roster.roles import Role

logger = logging.getLogger(__name__)

OVERDUE_KIND = "case_task_overdue"


def overdue_notify(case, task) -> int:
    """Tell the principals of the case's school that `task` (the interview or the parent contact) is overdue."""
    student = type(case.student).objects.select_related("school__district").get(pk=case.student_id)
    principals = staff_holding_roles_over(student, [Role.PRINCIPAL]).filter(role_assignments__school_id=case.school_id)
    step = str(task.flow_task.task_title or task.flow_task.name) if task is not None else ""
    told = notify(
        principals, kind=OVERDUE_KIND, subject_key=f"task:{getattr(task, 'pk', case.pk)}",
        title=_("Case #%(case)s: “%(step)s” is overdue") % {"case": case.pk, "step": step},
        body=_("The step is past the time the case's tier allows. Please check with the case's team."),
        urgent=True,
    )  # fmt: skip
    logger.info("case %s: overdue notice for task %s to %s principals", case.pk, getattr(task, "pk", None), told)
    return told
