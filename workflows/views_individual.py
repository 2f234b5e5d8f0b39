"""The individual report of one student (cases.individual): its page, printable page and PDF, each reading logged.

Thin views: who may read it and what it holds are decided in cases.individual (roster.scoping).
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Max
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from cases import access as case_access
from cases import individual
from cases.models import Case
from roster import audit
from roster.models import AccessAction
from roster.pdf import pdf_available, pdf_response, unavailable_redirect
from workflows.flows import CaseFlow
from workflows.models import main_processes


def _context(request, student_id: int, action: str) -> dict:
    student = case_access.access_student_by_id(request.user, student_id, logged_as=action)
    report = individual.individual_report(request.user, student)
    processes = dict(
        main_processes().filter(case__in=[s.case for s in report.cases]).values("case_id").annotate(pk=Max("pk"))
        .values_list("case_id", "pk")
    )  # fmt: skip
    for summary in report.cases:
        if summary.case.pk in processes:
            summary.url = CaseFlow.instance.reverse("process_detail", args=[processes[summary.case.pk]])
    for line in report.archive.cases:  # the same readable cases as the summaries (roster.scoping)
        if line.readable and line.case_id in processes:
            line.url = CaseFlow.instance.reverse("process_detail", args=[processes[line.case_id]])
    # Each case the report summarises (so the case's audit review lists this reading too).
    if report.cases:
        audit.record(action, object_type=audit.label(Case), object_ids=[s.case.pk for s in report.cases])
    return {"report": report, "student": student, "generated_at": timezone.localtime()}


@never_cache  # a named student's scores and case history
@login_required
@require_GET
def student_report(request, student_id: int):
    return render(request, "reports/individual.html", _context(request, student_id, AccessAction.VIEW))


@never_cache
@login_required
@require_GET
def student_report_print(request, student_id: int):
    return render(request, "reports/individual_print.html", _context(request, student_id, AccessAction.VIEW))


@never_cache
@login_required
@require_GET
def student_report_pdf(request, student_id: int):
    """The printable page as a PDF (Chinese font embedded); a message where this server cannot make one."""
    if not pdf_available():
        return unavailable_redirect(request, reverse("reports:student_report_print", args=[student_id]))
    context = _context(request, student_id, AccessAction.EXPORT)
    filename = f"student-report-{student_id}-{timezone.localdate().isoformat()}.pdf"
    return pdf_response(request, "reports/individual_print.html", context, filename)
