"""Exports for the person who asked for them (roster.exports): the answer of an export link (the file at once, or a
job and its progress page), the progress page and its JSON, and the download.

Only the requester sees a job; anyone else gets the same logged 404 as for a job that does not exist.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from roster import exports
from roster.models import ExportJob, ExportStatus

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def export_response(request, *, kind: str, parameters: dict, rows: int):
    """The answer of an export link whose rows the view has scoped and counted: the file at once when small,
    else a job for the task worker and its progress page."""
    if exports.export_in_background(rows):
        job = exports.export_job_start(
            actor=request.user, kind=kind, parameters=parameters, rows=rows, language=request.LANGUAGE_CODE
        )
        return redirect("export_job", job.pk)
    spool, filename = exports.export_write_now(user=request.user, kind=kind, parameters=parameters)
    return FileResponse(spool, as_attachment=True, filename=filename, content_type=XLSX_TYPE)


def _own_job(request, pk: int) -> ExportJob:
    try:
        return exports.export_job_for(request.user, pk)
    except ExportJob.DoesNotExist:
        raise Http404 from None


def _page(request, job: ExportJob, *, message: str = "", status: int = 200):
    expired = exports.export_job_expired(job)
    context = {
        "job": job,
        "title": exports.export_job_title(job),
        "running": job.status in exports.RUNNING,
        "ready": job.status == ExportStatus.DONE and not expired,
        "expired_message": exports.export_job_expired_message() if expired else "",
        "message": message,
        "again_url": exports.export_job_again_url(job),
    }
    return render(request, "roster/export_job.html", context, status=status)


@never_cache
@login_required
@require_GET
def export_job(request, pk: int):
    return _page(request, _own_job(request, pk))


@never_cache
@login_required
@require_GET
def export_job_progress(request, pk: int):
    return JsonResponse(exports.export_job_progress(_own_job(request, pk)))


@never_cache
@login_required
@require_GET
def export_download(request, pk: int):
    """The file, logged as an export by the person downloading; an expired or unfinished job's page says why (410
    for an expired one: the link is gone for good)."""
    job = _own_job(request, pk)
    try:
        spool, filename = exports.export_job_download(user=request.user, job=job)
    except exports.ExportRefused:
        raise Http404 from None
    except exports.ExportUnavailable as unavailable:
        return _page(request, job, message=str(unavailable), status=410 if exports.export_job_expired(job) else 409)
    return FileResponse(spool, as_attachment=True, filename=filename, content_type=XLSX_TYPE)
