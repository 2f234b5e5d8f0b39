"""The Viewflow process of a case: viewflow's Process with a real foreign key to the case record.

Node and flow class names are stored in task rows (`flow_task`, `flow_class`): renaming a node or the flow orphans
running cases, so treat those names as a schema and rename only with a data migration.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _
from viewflow.workflow.models import Process


class CaseProcess(Process):
    case = models.ForeignKey("cases.Case", on_delete=models.PROTECT, related_name="processes", verbose_name=_("case"))

    class Meta:
        verbose_name = _("case process")
        verbose_name_plural = _("case processes")
        ordering = ["-created"]
