"""The case page's district-support actions (申请区县支持): the team asks the district centre to join the case, and
anyone working the case adds a line to its coordination log (who outside the school was contacted, what was agreed).

Thin: the rules are cases.services' (support_request, coordination_record), the task is workflows.services'.
May import: roster, screening, cases.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.utils.translation import gettext as _

from cases import access as case_access
from cases import services as case_services
from cases.access import CaseAction
from cases.models import SupportStatus
from workflows import forms, services
from workflows.views import _case_url, _form_page, _visible_process, student_label


@login_required
def support_request(request, process_pk: int):
    """Ask the district centre to support the case: a task in its queue, the request on the case page."""
    process = _visible_process(request, process_pk, CaseAction.REQUEST_SUPPORT)
    case = process.case
    form = forms.SupportRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            with case_access.change_logged(request.user, case):
                services.support_request_and_start(request.user, case, form.cleaned_data["reason"])
        except (ValidationError, PermissionDenied) as error:
            form.add_error(None, error.messages if isinstance(error, ValidationError) else str(error))
        else:
            messages.success(request, _("The district centre has been asked to support the case."))
            return HttpResponseRedirect(_case_url(process))
    return _form_page(
        request, "workflows/case_form.html", form, heading=_("Ask the district centre for support"), case=case,
        case_url=_case_url(process), student=student_label(request.user, case),
    )  # fmt: skip


@login_required
def coordination_add(request, process_pk: int):
    """A line of the coordination log (health, police, community…)."""
    process = _visible_process(request, process_pk, CaseAction.COORDINATE)
    case = process.case
    form = forms.CoordinationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        support = case.support_requests.filter(status=SupportStatus.ACCEPTED).first()
        try:
            with case_access.change_logged(request.user, case):
                case_services.coordination_record(request.user, case, request=support, **form.cleaned_data)
        except (ValidationError, PermissionDenied) as error:
            form.add_error(None, error.messages if isinstance(error, ValidationError) else str(error))
        else:
            messages.success(request, _("The coordination is recorded."))
            return HttpResponseRedirect(_case_url(process))
    return _form_page(
        request, "workflows/case_form.html", form, heading=_("Record a coordination"), case=case,
        case_url=_case_url(process), student=student_label(request.user, case),
    )  # fmt: skip
