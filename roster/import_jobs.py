"""Roster import jobs: upload → check (dry run) → confirm → import, synchronously for small files and as a
django-q2 task above settings.ROSTER_IMPORT_BACKGROUND_ROWS, with progress written as it goes.

Views and the admin call these services; the tasks in roster.tasks call `import_job_run`.

The uploaded file (a school's names, ids and phone numbers) stays in the job only while it may still be imported:
it is emptied when the import is done or refused, and the daily `sweep_abandoned_imports` (a django-q2 schedule,
migration 0007) expires a job left unconfirmed, or failed and not run again, settings.ROSTER_IMPORT_KEEP_HOURS after
its upload. An expired job keeps its report and says so; it can no longer be confirmed or run again.
"""

from __future__ import annotations

import io
import logging
from datetime import datetime, timedelta
from pathlib import PurePath

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from roster import attendance
from roster.importing import COLUMNS, STAFF_ROLE_LABELS, STATUS_LABELS, ImportRequest, detect_kind, run_import
from roster.models import ImportJob, ImportStatus, School, SpecialGroup, StudentStatus, User
from roster.roles import Role
from roster.spreadsheets import xlsx_bytes
from roster.stages import STAGE_ALIASES, SchoolStage, grades_text
from roster.uploads import upload_temp_files_sweep

logger = logging.getLogger(__name__)


class ImportJobConflict(Exception):
    """The job is not in a state that allows this step (e.g. already confirmed by another click)."""


def estimate_rows(data: bytes, filename: str) -> int:
    """A cheap upper bound of the data rows, to choose between running now and in the background."""
    suffix = PurePath(filename).suffix.lower()
    if suffix == ".xlsx":
        import openpyxl

        try:
            workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
            rows = workbook.worksheets[0].max_row or 0
            workbook.close()
            return max(rows - 1, 0)
        except Exception:  # unreadable: the check will refuse it with a proper message
            return 0
    return data.count(b"\n")


def import_job_create(
    *, actor: User, data: bytes, filename: str, kind: str = "", school: School | None = None,
    skip_invalid: bool = False, language: str = "",
) -> ImportJob:  # fmt: skip
    """Store the upload and start its check (a dry run). Access: the admin checks may_change_some first."""
    try:
        kind = kind or detect_kind(data, filename)
    except Exception:  # an unreadable file: the check reports why
        kind = "students"
    job = ImportJob.objects.create(
        kind=kind,
        filename=PurePath(filename).name[:255],
        content=data,
        school=school,
        created_by=actor,
        skip_invalid=skip_invalid,
        report={"language": language or settings.LANGUAGE_CODE},
    )
    _start(job, write=False)
    return job


def import_job_confirm(*, actor: User, job: ImportJob, skip_invalid: bool) -> ImportJob:
    """Import a checked job. A second click, a job already imported by someone else, or an expired one changes
    nothing."""
    claimed = (
        _still_kept(ImportJob.objects.filter(pk=job.pk, created_by=actor, status=ImportStatus.CHECKED))
        .update(status=ImportStatus.IMPORTING, skip_invalid=skip_invalid, processed_rows=0)
    )  # fmt: skip
    if not claimed:
        _refuse(job, _("This import has already been confirmed or is no longer waiting for confirmation."))
    job.refresh_from_db()
    _start(job, write=True)
    return job


def import_job_resume(*, actor: User, job: ImportJob) -> ImportJob:
    """Run an interrupted or failed import again; safe because the upsert is idempotent. Not once it expired."""
    claimed = _still_kept(
        ImportJob.objects.filter(pk=job.pk, created_by=actor, status__in=[ImportStatus.IMPORTING, ImportStatus.FAILED])
    ).update(status=ImportStatus.IMPORTING)
    if not claimed:
        _refuse(job, _("Only an interrupted or failed import can be run again."))
    job.refresh_from_db()
    _start(job, write=True)
    return job


def _refuse(job: ImportJob, reason: str):
    job.refresh_from_db(fields=["status", "created_at", "report"])
    raise ImportJobConflict(import_job_expired_message() if import_job_expired(job) else reason)


# --- Retention of the uploaded file ---------------------------------------------------------------------------

# A check or an import runs for minutes (a background task is stopped after Q_CLUSTER["timeout"] and retried a few
# times); a job still marked as running this long after the last moment it could start is a dead worker's.
RUNNING_GRACE = timedelta(hours=2)
# States in which the file is still needed: a confirmation, or running a failed or interrupted import again.
WAITING = (ImportStatus.CHECKED, ImportStatus.FAILED, ImportStatus.IMPORTING)
RUNNING = (ImportStatus.PENDING, ImportStatus.CHECKING, ImportStatus.IMPORTING)


def _keep_cutoff(now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - timedelta(hours=settings.ROSTER_IMPORT_KEEP_HOURS)


def _still_kept(jobs):
    return jobs.filter(created_at__gte=_keep_cutoff()).exclude(report__has_key="expired")


def import_job_expired(job: ImportJob, now: datetime | None = None) -> bool:
    """Whether the job's file is gone, or due to go at the next sweep: it can no longer be confirmed or resumed."""
    return bool(job.report.get("expired")) or (job.status in WAITING and job.created_at < _keep_cutoff(now))


def import_job_expired_message() -> str:
    return _(
        "This upload has expired: a roster file is kept for %(hours)d hours to be confirmed, then deleted. Nothing "
        "more was imported from it. Upload the file again."
    ) % {"hours": settings.ROSTER_IMPORT_KEEP_HOURS}


def sweep_abandoned_imports(now: datetime | None = None) -> str:
    """The daily django-q2 task: delete the uploaded files no import needs any more, and upload temporary files
    left on disk.

    - checked but not confirmed, or failed (or interrupted) and not run again, within ROSTER_IMPORT_KEEP_HOURS of
      the upload: the file is emptied and the job marked failed and expired (its report kept; the page says so);
    - done or refused: the file is emptied (import_job_run does so already; this catches any left behind);
    - import-export's and Django's temporary upload files older than ROSTER_IMPORT_KEEP_HOURS are deleted.
    Access: the task worker only. Audit: none; the job's status and report show what happened.
    """
    now = now or timezone.now()
    cutoff = _keep_cutoff(now)
    expired = 0
    for job_id in _abandoned(ImportJob.objects.all(), cutoff).values_list("pk", flat=True):
        expired += _expire(job_id, cutoff=cutoff, now=now)
    emptied = (
        ImportJob.objects.filter(status__in=[ImportStatus.DONE, ImportStatus.REFUSED]).exclude(content=b"")
        .update(content=b"", preview={})
    )  # fmt: skip
    files = upload_temp_files_sweep(older_than=cutoff)
    logger.info("roster import sweep: %s expired, %s emptied, %s temporary files", expired, emptied, files)
    return f"expired {expired}, emptied {emptied}, temporary files {files}"


def _abandoned(jobs, cutoff: datetime):
    """Jobs whose file waited too long: not confirmed or not run again in time, or left running by a dead worker."""
    resting = Q(status__in=[ImportStatus.CHECKED, ImportStatus.FAILED], created_at__lt=cutoff)
    running = Q(status__in=RUNNING, created_at__lt=cutoff - RUNNING_GRACE)
    return jobs.filter(resting | running).exclude(report__has_key="expired")


@transaction.atomic
def _expire(job_id: int, *, cutoff: datetime, now: datetime) -> int:
    # Locked and checked again: a confirmation or a finishing import in between wins.
    job = _abandoned(ImportJob.objects.select_for_update(), cutoff).filter(pk=job_id).defer("content").first()
    if job is None:
        return 0
    ImportJob.objects.filter(pk=job_id).update(
        status=ImportStatus.FAILED,
        content=b"",
        preview={},
        finished_at=job.finished_at or now,
        report={**job.report, "expired": True, "expired_at": now.isoformat(), "status_before": job.status},
    )
    return 1


def _start(job: ImportJob, *, write: bool) -> None:
    background = estimate_rows(bytes(job.content), job.filename) > settings.ROSTER_IMPORT_BACKGROUND_ROWS
    if not background:
        import_job_run(job.pk, write=write, background=False)
        return
    from django_q.tasks import async_task

    task = "roster.tasks.import_job_apply" if write else "roster.tasks.import_job_check"
    transaction.on_commit(lambda: async_task(task, job.pk, task_name=f"roster-import-{job.pk}"))


def import_job_run(job_id: int, *, write: bool, background: bool) -> ImportJob:
    """Check or import one job, recording progress; the shared body of the request and the background task."""
    job = ImportJob.objects.select_related("created_by", "school").get(pk=job_id)
    status = ImportStatus.IMPORTING if write else ImportStatus.CHECKING
    ImportJob.objects.filter(pk=job_id).update(status=status, processed_rows=0)

    def progress(done: int, total: int, errors: int) -> None:
        ImportJob.objects.filter(pk=job_id).update(
            processed_rows=done, total_rows=total or F("total_rows"), error_count=errors
        )

    try:
        with translation.override(job.report.get("language") or settings.LANGUAGE_CODE):
            report = run_import(
                ImportRequest(
                    kind=job.kind,
                    data=bytes(job.content),
                    filename=job.filename,
                    actor=job.created_by,
                    school=job.school,
                    dry_run=not write,
                    skip_invalid=job.skip_invalid,
                    atomic=not background,  # in the background: one transaction per batch, resumable
                    progress=progress,
                    import_job_id=job.pk,
                )
            )
    except Exception:
        logger.exception("roster import job %s failed", job_id)
        ImportJob.objects.filter(pk=job_id).update(status=ImportStatus.FAILED, finished_at=timezone.now())
        raise
    if report.refused:
        final = ImportStatus.REFUSED
    elif report.written:
        final = ImportStatus.DONE
    else:
        final = ImportStatus.CHECKED
    ImportJob.objects.filter(pk=job_id).update(
        status=final,
        total_rows=report.total,
        processed_rows=report.total,
        error_count=len(report.error_lines),
        report={"language": job.report.get("language", ""), **report.as_dict()},
        finished_at=timezone.now() if final in (ImportStatus.DONE, ImportStatus.REFUSED) else None,
        # The preview's rows (names among them) only while the import waits for confirmation.
        preview=report.preview() if final == ImportStatus.CHECKED else {},
        # Done or refused: the report is all that is needed from now on, not a school's roster.
        **({"content": b""} if final in (ImportStatus.DONE, ImportStatus.REFUSED) else {}),
    )
    job.refresh_from_db()
    return job


def import_error_report_xlsx(job: ImportJob) -> bytes:
    errors = job.report.get("errors", [])
    rows = [[e["line"], e["column"], e["value"], e["message"]] for e in errors]
    return xlsx_bytes([(_("Errors"), [_("Line"), _("Column"), _("Value"), _("Reason")], rows)])


# The example's school code matches no school: a row copied from the example sheet into the roster is refused
# ("Unknown school code"), never imported. (99: no province has it; 0000: no demo or real district does.)
EXAMPLE_SCHOOL_CODE = "9900000001"
EXAMPLE_ROWS = {
    "students": [
        EXAMPLE_SCHOOL_CODE, "七年级", "3班", "20260701", "张小明", "男", "2013-09-01", "张建国", "13800000000",
        "留守儿童", "在读", "G990000000120260701",
    ],
    "classes": [EXAMPLE_SCHOOL_CODE, "七年级", "3班"],
    "staff": [EXAMPLE_SCHOOL_CODE, "T0012", "李明", "13900000000", "班主任", "七年级3班"],
    "attendance": [EXAMPLE_SCHOOL_CODE, "20260701", "2026-03-02", "未说明"],
}  # fmt: skip


def _allowed_values(kind: str) -> list[list[str]]:
    """Rows of the template's allowed-values sheet: column, a value the import accepts, a note."""
    headers = {c.field: c.header for c in COLUMNS[kind]}
    rows: list[list[str]] = []
    if kind == "students":
        rows += [
            [headers["gender"], "男", _("also M, male or 1")],
            [headers["gender"], "女", _("also F, female or 2")],
        ]
        spellings: dict[str, list[str]] = {}
        for spelling, value in STATUS_LABELS.items():
            if not spelling.isascii() and spelling not in spellings.setdefault(value, []):
                spellings[value].append(spelling)
        for value, names in spellings.items():
            note = _("left empty: enrolled") if value == StudentStatus.ACTIVE else ""
            rows.append([headers["status"], names[0], "; ".join(filter(None, [" / ".join([*names[1:], value]), note]))])
        for name in SpecialGroup.objects.filter(active=True, grade__isnull=True).values_list("name", flat=True):
            rows.append([headers["special_groups"], name, _("several: separate them with 、")])
        rows.append(
            [
                headers["national_id"],
                EXAMPLE_ROWS["students"][-1],
                _(
                    "optional; 8 to 32 letters and digits. It finds a student who comes from another school; only a "
                    "keyed hash and the last 4 characters are kept."
                ),
            ]
        )
    if kind == "staff":
        for spelling, role in STAFF_ROLE_LABELS.items():
            if not spelling.isascii():
                rows.append([headers["role"], spelling, str(Role(role).label)])
        rows.append([headers["class"], "七年级3班", _("homeroom teachers only; also 初一(3)班 or 7-3")])
    if kind == "attendance":
        rows += attendance.allowed_values()
    if kind in ("students", "classes"):
        stage_names = {stage: name for name, stage in reversed(STAGE_ALIASES.items())}  # the shortest name
        for stage, label in SchoolStage.choices:
            grades = _("grades %(grades)s") % {"grades": grades_text(stage)}
            note = grades if str(label) == stage_names[stage] else f"{grades}; {label}"
            rows.append([_("School stage (学段)"), stage_names[stage], note])
        rows.append(
            [headers["grade"], "1–12", _("also 七年级, 初一, 高一 …; only the grades of the school's stage (above)")]
        )
    return rows


def import_template(kind: str, fmt: str) -> tuple[bytes, str, str]:
    """The template a school fills in: headers in Chinese (English names also accepted), instructions, an example on
    its own sheet (only the first sheet is read: an example left in is never imported), and the allowed values."""
    columns = COLUMNS[kind]
    header = [c.header for c in columns]
    if fmt == "csv":
        # UTF-8 with BOM: Excel in China opens it with the right characters.
        return ("\ufeff" + ",".join(header) + "\r\n").encode("utf-8"), f"{kind}-template.csv", "text/csv"
    notes = [
        [c.header, c.field, _("required") if c.required else _("optional"), " / ".join(c.aliases)] for c in columns
    ]
    data = xlsx_bytes(
        [
            (_("Roster"), header, []),
            (_("Example"), header, [EXAMPLE_ROWS[kind], [], [_("An example only: the import reads the first sheet.")]]),
            (_("How to fill in"), [_("Column"), _("English name"), _("Required"), _("Also accepted")], notes),
            (_("Allowed values"), [_("Column"), _("Value"), _("Notes")], _allowed_values(kind)),
        ]
    )
    content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return data, f"{kind}-template.xlsx", content_type
