"""The Viewflow process of a case: viewflow's Process with a real foreign key to the case record.

Node and flow class names are stored in task rows (`flow_task`, `flow_class`): renaming a node or the flow orphans
running cases, so treat those names as a schema and rename only with a data migration.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _
from viewflow.workflow.models import Process

# A side process of a case (beside its main process: a district support, a brief safety assessment) says so in its
# data: {"side": "district_support"}. Lists and links lead to the case's main process.
SIDE = "side"


def main_processes():
    """The case processes that are a case's own path (not side processes)."""
    return CaseProcess.objects.exclude(data__has_key=SIDE)


class CaseProcess(Process):
    case = models.ForeignKey("cases.Case", on_delete=models.PROTECT, related_name="processes", verbose_name=_("case"))

    class Meta:
        verbose_name = _("case process")
        verbose_name_plural = _("case processes")
        ordering = ["-created"]


class TaskClock(models.Model):
    """When a human step of a case is due, and how far its overdue chain has climbed (cases.tiers: every human step
    has a due time; overdue, it reminds the assignee, then the principal, then the district centre). Viewflow keeps
    neither, and the lists order by it."""

    task = models.OneToOneField(
        "viewflow.Task", on_delete=models.CASCADE, primary_key=True, related_name="clock", verbose_name=_("task")
    )
    case = models.ForeignKey("cases.Case", on_delete=models.CASCADE, related_name="task_clocks", verbose_name=_("case"))
    step = models.CharField(_("step"), max_length=32)  # a deadline step of cases.tiers.STEPS
    due_at = models.DateTimeField(_("due at"))
    reminded = models.PositiveSmallIntegerField(_("reminders sent"), default=0)  # steps of the overdue chain done
    # The next step of the chain; null once the chain is done or the task is finished.
    next_reminder_at = models.DateTimeField(_("next reminder at"), null=True, blank=True)

    class Meta:
        verbose_name = _("task deadline")
        verbose_name_plural = _("task deadlines")
        indexes = [
            models.Index(fields=["next_reminder_at"], name="task_clock_next_reminder"),
            models.Index(fields=["case", "due_at"], name="task_clock_case_due"),
        ]

    def __str__(self) -> str:
        return f"{self.task_id}:{self.step}@{self.due_at:%Y-%m-%d %H:%M}"
