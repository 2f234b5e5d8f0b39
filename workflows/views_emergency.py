"""Emergency access ("break the glass"): a psychology teacher, principal or centre reads one case outside their scope,
found by the student's exact student number at the school they name in their own city, for a reason they type, for
a day.

The page only collects the school, the number and the reason; cases.services.emergency_access_grant decides, writes
the grant, logs it and has the district told. The case page then reads the case through roster.scoping like any
other (and logs each reading); its banner (workflows.templatetags.emergency_access) says until when.
May import: roster, screening, cases.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext as _

from cases import services as case_services
from workflows import forms
from workflows.flows import CaseFlow
from workflows.models import main_processes


def _warning() -> str:
    return _(
        "Use this only to act on a crisis. The district centre and the case's school are told at once who opened "
        "which case and why; every reading is logged. The access is read only and ends after %(hours)s hours."
    ) % {"hours": settings.EMERGENCY_ACCESS_HOURS}


@login_required
def emergency_access(request):
    """The form; on success, the case page. Every refusal is a message on the form and writes no grant."""
    eligible = case_services.emergency_access_may_request(request.user)
    form = forms.EmergencyAccessForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            outcome = case_services.emergency_access_grant(
                request.user, school=form.cleaned_data["school"].pk, student_no=form.cleaned_data["student_no"],
                reason=form.cleaned_data["reason"],
            )  # fmt: skip
        except case_services.EmergencyAccessRefused as error:
            form.add_error(None, error.messages)
        else:
            return _to_case(request, outcome)
    context = {
        "form": form, "heading": _("Emergency access"), "now": timezone.now(), "warning": _warning(),
        "refused": "" if eligible else _(
            "Emergency access is for psychology teachers, principals and the district and city centres."
        ),
    }  # fmt: skip
    return TemplateResponse(request, "workflows/emergency_access.html", context, status=200 if eligible else 403)


def _to_case(request, outcome):
    process_pk = main_processes().filter(case=outcome.case).order_by("-pk").values_list("pk", flat=True).first()
    if outcome.grant is None:
        messages.info(request, _("This case is in your scope already: no emergency access was needed."))
    else:
        until = timezone.localtime(outcome.grant.expires_at).strftime("%Y-%m-%d %H:%M")
        messages.warning(
            request, _("Emergency access to case %(case)s until %(until)s. The district has been told; every reading "
                       "is logged.") % {"case": outcome.case, "until": until},
        )  # fmt: skip
    if process_pk is None:  # its process is being started by the task worker: the case list shows it meanwhile
        return HttpResponseRedirect(CaseFlow.instance.reverse("process_list"))
    return HttpResponseRedirect(CaseFlow.instance.reverse("process_detail", args=[process_pk]))
