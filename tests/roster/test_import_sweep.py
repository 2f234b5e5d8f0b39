"""Uploaded rosters do not stay behind: a file never confirmed expires after ROSTER_IMPORT_KEEP_HOURS and can no
longer be confirmed, a finished import keeps its report but not the file, temporary upload files are swept, and the
sweep runs daily."""

import os
import tempfile
import time
from datetime import timedelta
from importlib import import_module

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from django.utils.module_loading import import_string
from django_q.models import Schedule

from roster.import_jobs import sweep_abandoned_imports
from roster.models import ImportJob, ImportStatus, Student
from roster.uploads import ImportTempStorage
from tests.roster_files import STUDENT_HEADER, student_row, xlsx_bytes


@pytest.fixture
def school_admin(client, world, settings):
    client.force_login(world.school_admin_a1)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def upload(client, student_no="20250701") -> ImportJob:
    data = xlsx_bytes([STUDENT_HEADER, student_row(student_no=student_no)])
    client.post(reverse("admin:roster_importjob_add"), {"file": SimpleUploadedFile("students.xlsx", data)})
    return ImportJob.objects.latest("pk")


def uploaded_hours_ago(job: ImportJob, hours: float) -> None:
    ImportJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(hours=hours))


def page(client, job: ImportJob):
    return reverse("admin:roster_importjob_change", args=[job.pk])


def test_a_check_left_unconfirmed_past_the_limit_is_emptied_and_cannot_be_confirmed(school_admin, settings):
    settings.ROSTER_IMPORT_KEEP_HOURS = 24
    job = upload(school_admin)
    assert job.status == ImportStatus.CHECKED and bytes(job.content)
    uploaded_hours_ago(job, 25)

    sweep_abandoned_imports()

    job.refresh_from_db()
    assert bytes(job.content) == b""
    assert job.status == ImportStatus.FAILED and job.report["expired"] is True
    assert job.report["new"] == 1  # the check's report stays
    shown = school_admin.get(page(school_admin, job)).content.decode()
    assert 'id="import-expired"' in shown and "kept for 24 hours" in shown
    assert "Confirm and import" not in shown and "Run the import again" not in shown

    confirmed = school_admin.post(page(school_admin, job), {"_confirm": "1"}, follow=True).content.decode()
    assert "This upload has expired" in confirmed
    resumed = school_admin.post(page(school_admin, job), {"_resume": "1"}, follow=True).content.decode()
    assert "This upload has expired" in resumed
    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED and bytes(job.content) == b""
    assert not Student.objects.filter(student_no="20250701").exists()


def test_a_check_past_the_limit_cannot_be_confirmed_even_before_the_sweep_runs(school_admin):
    job = upload(school_admin)
    uploaded_hours_ago(job, 25)
    shown = school_admin.get(page(school_admin, job)).content.decode()
    assert 'id="import-expired"' in shown and "Confirm and import" not in shown
    confirmed = school_admin.post(page(school_admin, job), {"_confirm": "1"}, follow=True).content.decode()
    assert "This upload has expired" in confirmed
    job.refresh_from_db()
    assert job.status == ImportStatus.CHECKED
    assert not Student.objects.filter(student_no="20250701").exists()


def test_a_recent_check_is_left_alone_and_can_still_be_confirmed(school_admin):
    job = upload(school_admin)
    uploaded_hours_ago(job, 23)
    content = bytes(job.content)

    sweep_abandoned_imports()

    job.refresh_from_db()
    assert (job.status, bytes(job.content), "expired" in job.report) == (ImportStatus.CHECKED, content, False)
    school_admin.post(page(school_admin, job), {"_confirm": "1"})
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE
    assert Student.objects.filter(student_no="20250701").exists()


def test_a_finished_import_keeps_its_report_but_not_the_file(school_admin):
    job = upload(school_admin)
    school_admin.post(page(school_admin, job), {"_confirm": "1"})
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE and bytes(job.content) == b""  # emptied as it finished
    assert (job.report["new"], job.report["written"]) == (1, True)
    assert "Imported: 1 rows are saved." in school_admin.get(page(school_admin, job)).content.decode()


def test_the_sweep_empties_finished_imports_that_still_hold_their_file(school_admin):
    done = upload(school_admin)
    school_admin.post(page(school_admin, done), {"_confirm": "1"})
    ImportJob.objects.filter(pk=done.pk).update(content=b"a school's roster")  # as stored before the sweep existed
    report = ImportJob.objects.get(pk=done.pk).report

    sweep_abandoned_imports()

    done.refresh_from_db()
    assert (done.status, bytes(done.content), done.report) == (ImportStatus.DONE, b"", report)


def test_a_failed_import_can_be_run_again_within_the_limit_and_expires_after_it(school_admin):
    job = upload(school_admin)
    ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.FAILED)
    uploaded_hours_ago(job, 2)
    sweep_abandoned_imports()
    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED and bytes(job.content)
    assert "Run the import again" in school_admin.get(page(school_admin, job)).content.decode()

    uploaded_hours_ago(job, 30)
    sweep_abandoned_imports()
    job.refresh_from_db()
    assert job.report["expired"] is True and bytes(job.content) == b""


def test_a_job_left_running_by_a_dead_worker_expires_but_a_running_one_does_not(school_admin):
    dead, running = upload(school_admin), upload(school_admin, student_no="20250702")
    ImportJob.objects.filter(pk__in=[dead.pk, running.pk]).update(status=ImportStatus.IMPORTING)
    uploaded_hours_ago(dead, 30)
    uploaded_hours_ago(running, 24.5)  # confirmed just in time, still importing

    sweep_abandoned_imports()

    dead.refresh_from_db()
    running.refresh_from_db()
    assert (dead.status, bytes(dead.content), dead.report["expired"]) == (ImportStatus.FAILED, b"", True)
    assert running.status == ImportStatus.IMPORTING and bytes(running.content)


def test_stale_temporary_upload_files_are_removed_and_nothing_else(settings, tmp_path, monkeypatch, db):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    spool = tmp_path / "spool"
    spool.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(spool)
    old = time.time() - 25 * 3600

    checked = ImportTempStorage()
    checked.save(b"student answers")  # import-export's copy of a results file awaiting confirmation
    abandoned_check = tmp_path / os.path.basename(checked.name)
    fresh = ImportTempStorage()
    fresh.save(b"being confirmed now")
    killed_request = spool / "tmpa1b2c3d4.upload.xlsx"  # Django's spool of a request whose worker was killed
    killed_request.write_bytes(b"roster")
    someone_elses = tmp_path / "tmpzz9y8x7w"
    someone_elses.write_bytes(b"not ours")
    for path in (abandoned_check, killed_request, someone_elses):
        os.utime(path, (old, old))

    sweep_abandoned_imports()

    assert not abandoned_check.exists() and not killed_request.exists()
    assert (tmp_path / os.path.basename(fresh.name)).exists() and someone_elses.exists()


def test_the_sweep_is_scheduled_daily_by_the_migrations(db):
    migration = import_module("roster.migrations.0007_sweep_abandoned_imports")
    schedule = Schedule.objects.get(name=migration.SCHEDULE)
    assert (schedule.schedule_type, schedule.repeats) == (Schedule.DAILY, -1)
    assert import_string(schedule.func) is sweep_abandoned_imports
