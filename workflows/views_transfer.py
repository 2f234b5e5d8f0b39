"""The case page's transfer panel (档案移交) and its two forms: the receiving school asks for the restricted notes the
sending school kept, and the sending school (or its district centre) releases them, each with a reason.

Thin: the rules are cases.transfers' and cases.access'; the acceptance itself is the task's page (workflows.views).
May import: roster, screening, cases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST
from viewflow.workflow.models import Task

from cases import access as case_access
from cases import transfers
from cases.access import CaseAction
from cases.models import Case, CaseTransfer
from roster import scoping
from workflows.flows import CaseFlow
from workflows.selectors import ACTIVE
from workflows.views import _case_url, _visible_process


class ReasonForm(forms.Form):
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=500, widget=forms.Textarea(attrs={"rows": 2}))


@dataclass
class TransferPanel:
    transfer: CaseTransfer | None = None
    history: list[CaseTransfer] = field(default_factory=list)  # every transfer of the case the reader may see
    accept_url: str = ""  # the acceptance task, for a psychology teacher of the receiving school
    read_only: bool = False  # the reader's school handed the case over: read only
    read_until: datetime | None = None  # …and reads its history up to the acceptance
    withheld_schools: list = field(default_factory=list)  # schools whose restricted notes the case's school lacks
    request_url: str = ""
    release_url: str = ""
    form: ReasonForm | None = None

    @property
    def shown(self) -> bool:
        return bool(self.history) or self.read_only


def transfer_panel(user, case: Case, process) -> TransferPanel:
    """What the case page's transfer panel holds for this reader (a few queries)."""
    history = list(
        scoping.visible(user, CaseTransfer).filter(case=case).select_related("from_school", "to_school", "accepted_by")
    )  # fmt: skip
    panel = TransferPanel(transfer=history[0] if history else None, history=history)
    panel.read_until = case_access.handed_over_at(user, case)
    panel.read_only = panel.read_until is not None and not case_access.on_team(user, case)
    pending = next((t for t in history if t.status == "pending"), None)
    if pending is not None and transfers.may_accept(user, pending):
        task = (
            Task.objects.filter(process__caseprocess__case=case, flow_task=CaseFlow.accept_transfer,
                                status__in=ACTIVE).first()
        )  # fmt: skip
        if task is not None:
            panel.accept_url = task.flow_task.reverse("index", args=[task.process_id, task.pk])
    if case.active or panel.read_only:
        panel.withheld_schools = case_access.withheld_note_schools(case)
    if panel.withheld_schools and case.active:
        if case_access.may(user, case, CaseAction.REQUEST_NOTES):
            panel.request_url = CaseFlow.instance.reverse("transfer_release_request", args=[process.pk])
        if case_access.may(user, case, CaseAction.RELEASE_NOTES):
            panel.release_url = CaseFlow.instance.reverse("transfer_release", args=[process.pk])
        if panel.request_url or panel.release_url:
            panel.form = ReasonForm()
    return panel


def _reason_action(request, process_pk: int, action: str, run, done: str):
    process = _visible_process(request, process_pk, action)
    case = process.case
    form = ReasonForm(request.POST)
    if form.is_valid():
        try:
            with case_access.change_logged(request.user, case):
                run(request.user, case, form.cleaned_data["reason"], link=_case_url(process))
        except (ValidationError, PermissionDenied) as error:
            messages.error(request, " ".join(error.messages) if isinstance(error, ValidationError) else str(error))
        else:
            messages.success(request, done)
    else:
        messages.error(request, _("Say why (a reason is required)."))
    return HttpResponseRedirect(_case_url(process))


@login_required
@require_POST
def release_request(request, process_pk: int):
    """The receiving school asks for the restricted notes the sending school kept."""
    return _reason_action(
        request, process_pk, CaseAction.REQUEST_NOTES, transfers.note_release_request,
        _("The school the case came from has been asked to release its restricted notes."),
    )  # fmt: skip


@login_required
@require_POST
def release(request, process_pk: int):
    """The school a note was written at (or its district centre) releases its restricted notes to the case's school."""
    return _reason_action(
        request, process_pk, CaseAction.RELEASE_NOTES, transfers.notes_release,
        _("The restricted notes are released to the case's school."),
    )  # fmt: skip
