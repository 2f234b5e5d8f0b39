"""Exports too large to write during a request (a city's ledgers): a job the task worker writes, with progress, a
notification when it is ready, a file that expires, and every download logged.

The exports themselves belong to the apps that own their rows. Each registers an `ExportKind` here (from its
AppConfig.ready), naming how to write its file; roster never imports them. A view counts its rows and calls
roster.views_exports.export_response: at most settings.EXPORT_BACKGROUND_ROWS rows are written at once, as before;
more start a job (`export_job_start`) and the person is shown its progress page.

Access is checked three times: by the view before the job starts, by the kind's writer when the job runs (the
requester's scope then), and by the kind's `may_download` at each download (their scope now): a role revoked in
between gets nothing. Only the requester sees or downloads a job. Files live in settings.EXPORT_ROOT (not served by
the web server) and are deleted by the hourly sweep `export_sweep_expired` (a django-q2 schedule, migration 0012)
settings.EXPORT_KEEP_HOURS after they were written.

May import: roster only.
"""

from __future__ import annotations

import logging
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import BinaryIO

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from roster import audit
from roster.import_jobs import RUNNING_GRACE
from roster.models import AccessAction, AccessOutcome, ExportJob, ExportStatus, User
from roster.notifications import notify

logger = logging.getLogger(__name__)

NOTIFICATION_KIND = "export_ready"
RUNNING = (ExportStatus.PENDING, ExportStatus.RUNNING)


class ExportRefused(Exception):
    """The requester may not (or no longer) export these rows, or the filters are not valid: nothing is written."""


class ExportUnavailable(Exception):
    """The job's file is not there to download: expired, failed or not written yet (the message says which)."""


@dataclass
class ExportWritten:
    """What a kind's writer wrote: the records the file holds (logged with every download) and its row count."""

    object_type: str
    object_ids: list = field(default_factory=list)
    rows: int = 0


@dataclass(frozen=True)
class ExportKind:
    """An export an app registers. `write(user, parameters, out, progress)` writes the XLSX to `out`, calling
    `progress(rows_done)` now and then, and raises ExportRefused when the user may not have it; it runs in the task
    worker (and in the request for small exports) with the user's scope at that moment. `may_download(user, job)`
    is asked again at every download. `again_url(parameters)` is the page where the export was asked for."""

    name: str
    title: Callable[[], str]
    write: Callable[[User, dict, BinaryIO, Callable[[int], None]], ExportWritten]
    may_download: Callable[[User, ExportJob], bool]
    filename: Callable[[dict], str]
    again_url: Callable[[dict], str]


_KINDS: dict[str, ExportKind] = {}


def export_kind_register(kind: ExportKind) -> None:
    """Make an export kind known (from the owning app's AppConfig.ready; registering it again replaces it)."""
    _KINDS[kind.name] = kind


def export_kind(name: str) -> ExportKind:
    try:
        return _KINDS[name]
    except KeyError:
        raise ExportRefused(f"no export kind {name!r}") from None


def export_in_background(rows: int) -> bool:
    """Whether an export of `rows` rows is written by the task worker rather than in the request."""
    return rows > settings.EXPORT_BACKGROUND_ROWS


# --- Immediate exports --------------------------------------------------------------------------------------------


def export_write_now(*, user: User, kind: str, parameters: dict) -> tuple[BinaryIO, str]:
    """Write a small export in the request: (an open temporary file at its start, its file name).

    Access: the kind's writer (the user's scope). Audit: an EXPORT of every record in the file, before it is handed
    over; a file whose entry could not be written is not (fail closed)."""
    export = export_kind(kind)
    spool = tempfile.TemporaryFile()  # noqa: SIM115 (the response closes, and so removes, it once sent)
    try:
        written = export.write(user, parameters, spool, lambda done: None)
        audit.record(AccessAction.EXPORT, object_type=written.object_type, object_ids=written.object_ids, user=user)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool, export.filename(parameters)


# --- Background jobs ----------------------------------------------------------------------------------------------


def export_job_start(*, actor: User, kind: str, parameters: dict, rows: int, language: str = "") -> ExportJob:
    """Queue an export for the task worker; the caller has checked that the user may export and counted the rows.

    Access: the view that counted (the writer checks the scope again when the job runs). Audit: none yet; every
    download of the file is logged."""
    export_kind(kind)
    job = ExportJob.objects.create(
        kind=kind, requested_by=actor, parameters=parameters, total_rows=rows,
        language=language or settings.LANGUAGE_CODE,
    )  # fmt: skip
    from django_q.tasks import async_task

    transaction.on_commit(lambda: async_task("roster.tasks.export_job_run", job.pk, task_name=f"export-{job.pk}"))
    return job


def export_job_run(job_id: int) -> ExportJob:
    """Write a queued export (the django-q2 task): the kind's writer with the requester's scope now, progress as it
    goes, the file kept for EXPORT_KEEP_HOURS, then the requester notified with its link.

    Access: the task worker; the writer refuses a requester who may no longer export (the job then fails, says so
    and writes no file). Audit: none (nobody reads the file yet); the notification row records that they were told.
    """
    claimed = ExportJob.objects.filter(pk=job_id, status__in=RUNNING).update(
        status=ExportStatus.RUNNING, processed_rows=0
    )
    job = ExportJob.objects.select_related("requested_by").get(pk=job_id)
    if not claimed:
        return job  # done, failed or expired already (a retried task)
    export = export_kind(job.kind)

    def progress(done: int) -> None:
        ExportJob.objects.filter(pk=job_id).update(processed_rows=done)

    with translation.override(job.language or settings.LANGUAGE_CODE), tempfile.TemporaryFile() as spool:
        try:
            if not job.requested_by.is_active:
                raise ExportRefused("inactive")
            written = export.write(job.requested_by, job.parameters, spool, progress)
        except ExportRefused:
            audit.record(AccessAction.EXPORT, object_type=audit.label(ExportJob), object_ids=[job.pk],
                         outcome=AccessOutcome.DENIED, user=job.requested_by)  # fmt: skip
            _fail(job, _("You may no longer export these records, or the filters are no longer valid. Nothing was "
                         "written."))  # fmt: skip
            return job
        except Exception:
            logger.exception("export job %s failed", job_id)
            _fail(job, _("The export failed. Please try again; if it fails again, tell your administrator."))
            raise
        now = timezone.now()
        spool.seek(0)
        job.file.save(f"{job.pk}-{secrets.token_hex(16)}.xlsx", File(spool), save=False)
        job.status = ExportStatus.DONE
        job.filename = export.filename(job.parameters)
        job.object_type = written.object_type
        job.object_ids = ",".join(str(i) for i in written.object_ids)
        job.total_rows = job.processed_rows = written.rows
        job.finished_at = now
        job.expires_at = now + timedelta(hours=settings.EXPORT_KEEP_HOURS)
        job.save(update_fields=["file", "status", "filename", "object_type", "object_ids", "total_rows",
                                "processed_rows", "finished_at", "expires_at"])  # fmt: skip
        _notify(job, export)
    return job


def _fail(job: ExportJob, message: str) -> None:
    ExportJob.objects.filter(pk=job.pk).update(status=ExportStatus.FAILED, error=message, finished_at=timezone.now())
    job.refresh_from_db()
    _notify(job, export_kind(job.kind))


def _notify(job: ExportJob, export: ExportKind) -> None:
    if job.status == ExportStatus.DONE:
        title = _("Your export is ready")
        body = _("%(title)s, %(rows)d rows. The file can be downloaded until %(until)s.") % {
            "title": export.title(), "rows": job.total_rows,
            "until": timezone.localtime(job.expires_at).strftime("%Y-%m-%d %H:%M"),
        }  # fmt: skip
        link = reverse("export_download", args=[job.pk])
    else:
        title = _("Your export could not be made")
        body = f"{export.title()}: {job.error}"
        link = reverse("export_job", args=[job.pk])
    notify([job.requested_by_id], kind=NOTIFICATION_KIND, title=title, body=body, link=link,
           subject_key=f"export:{job.pk}")  # fmt: skip


# --- Reading a job: its page, its progress, its download ----------------------------------------------------------


def export_job_for(user: User, job_id: int) -> ExportJob:
    """The user's own job. Access: the requester only; anyone else (and a missing job) gets ExportJob.DoesNotExist,
    logged as a refused export. Audit: the refusal."""
    job = ExportJob.objects.filter(pk=job_id, requested_by_id=user.pk).defer("object_ids").first()
    if job is None:
        audit.record(AccessAction.EXPORT, object_type=audit.label(ExportJob), object_ids=[job_id],
                     outcome=AccessOutcome.DENIED)  # fmt: skip
        raise ExportJob.DoesNotExist
    return job


def export_job_expired(job: ExportJob, now: datetime | None = None) -> bool:
    """Whether the file is gone, or due to go at the next sweep (its link then says so, not a stale file)."""
    now = now or timezone.now()
    return job.status == ExportStatus.EXPIRED or (
        job.status == ExportStatus.DONE and job.expires_at is not None and job.expires_at <= now
    )


def export_job_expired_message() -> str:
    return _("This export has expired. Please export again.")


def export_job_progress(job: ExportJob) -> dict:
    return {
        "status": job.status,
        "status_label": job.get_status_display(),
        "done": job.processed_rows,
        "total": job.total_rows,
        "finished": job.status not in RUNNING,
    }


def export_job_title(job: ExportJob) -> str:
    return export_kind(job.kind).title()


def export_job_again_url(job: ExportJob) -> str:
    return export_kind(job.kind).again_url(job.parameters)


def export_job_download(*, user: User, job: ExportJob) -> tuple[BinaryIO, str]:
    """The job's file, opened, and its file name. Raises ExportUnavailable (expired, failed, not ready) or
    ExportRefused (the user may no longer read what it holds).

    Access: the requester (export_job_for), and the kind's may_download with their scope now. Audit: an EXPORT of
    every record in the file by the person downloading, before it is opened (fail closed); a refusal as DENIED."""
    if export_job_expired(job):
        raise ExportUnavailable(export_job_expired_message())
    if job.status != ExportStatus.DONE or not job.file:
        raise ExportUnavailable(job.error or _("This export is not ready yet."))
    job = ExportJob.objects.get(pk=job.pk)  # with its object ids
    if not user.is_active or not export_kind(job.kind).may_download(user, job):
        audit.record(AccessAction.EXPORT, object_type=audit.label(ExportJob), object_ids=[job.pk],
                     outcome=AccessOutcome.DENIED, user=user)  # fmt: skip
        raise ExportRefused("no longer in scope")
    audit.record(AccessAction.EXPORT, object_type=job.object_type, object_ids=job_object_ids(job), user=user)
    try:
        return job.file.open("rb"), job.filename
    except FileNotFoundError:  # removed by hand or by a sweep in between: as expired
        raise ExportUnavailable(export_job_expired_message()) from None


def job_object_ids(job: ExportJob) -> list[int]:
    return [int(i) for i in job.object_ids.split(",") if i]


# --- Expiry -------------------------------------------------------------------------------------------------------


def export_sweep_expired(now: datetime | None = None) -> str:
    """The hourly django-q2 task: delete the files of exports past their expiry and mark them expired; mark jobs a
    dead worker left pending or running as failed (the roster imports' rule: still running RUNNING_GRACE after the
    file's keeping time).

    Access: the task worker only. Audit: none; the job's status shows what happened."""
    now = now or timezone.now()
    expired = 0
    due = ExportJob.objects.filter(status=ExportStatus.DONE, expires_at__lte=now).values_list("pk", flat=True)
    for job_id in list(due):
        expired += _expire(job_id, now)
    stale = ExportJob.objects.filter(
        status__in=RUNNING, created_at__lt=now - timedelta(hours=settings.EXPORT_KEEP_HOURS) - RUNNING_GRACE
    ).update(status=ExportStatus.FAILED, finished_at=now, error=_("The export was interrupted. Please export again."))
    logger.info("export sweep: %s expired, %s interrupted", expired, stale)
    return f"expired {expired}, interrupted {stale}"


@transaction.atomic
def _expire(job_id: int, now: datetime) -> int:
    job = ExportJob.objects.select_for_update().filter(pk=job_id, status=ExportStatus.DONE).first()
    if job is None:
        return 0
    if job.file:
        job.file.delete(save=False)
    ExportJob.objects.filter(pk=job_id).update(status=ExportStatus.EXPIRED, file="")
    return 1
