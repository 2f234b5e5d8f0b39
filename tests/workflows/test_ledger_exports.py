"""Large ledger exports (issue 18 item 2): above settings.EXPORT_BACKGROUND_ROWS the export runs in the task worker
(synchronous in tests) with a progress page; the requester is notified with the download link, only they may
download, each download is logged with the case ids, access is checked again when the job runs and at download, and
the file expires (the hourly sweep deletes it, the link says so). At or under the threshold the file comes at once."""

import io
import os
from datetime import timedelta
from importlib import import_module

import openpyxl
import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.module_loading import import_string
from django_q.models import Schedule

from cases.models import Case
from roster import exports
from roster.models import AccessLogEntry, ExportJob, ExportStatus, Notification, RoleAssignment
from roster.services import role_revoke
from tests.factories.roster import StudentFactory

KEY_HELP_XLSX = "reports:ledger_key_help_xlsx"


@pytest.fixture(autouse=True)
def export_root(settings, tmp_path):
    settings.EXPORT_ROOT = str(tmp_path / "exports")
    settings.EXPORT_KEEP_HOURS = 24


@pytest.fixture
def key_help_cases(world, open_case):
    """Four open orange/red cases in district A (schools A1) and one in district B."""
    cases = [open_case(world.student_a1_3, "red")[0], open_case(world.student_a1_5, "orange")[0]]
    for tier in ("orange", "red"):
        cases.append(open_case(StudentFactory(school_class=world.class_a1_5), tier)[0])
    open_case(world.student_b1, "orange")
    return cases


def rows_of(content: bytes) -> list[list]:
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    return [[cell.value for cell in row] for row in sheet.iter_rows()]


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def export_in_background(client, django_capture_on_commit_callbacks, **params) -> ExportJob:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.get(reverse(KEY_HELP_XLSX), params)
    job = ExportJob.objects.latest("pk")
    assert response.status_code == 302 and response["Location"] == reverse("export_job", args=[job.pk])
    assert len(callbacks) == 1  # handed to the task queue, not written in the request
    job.refresh_from_db()
    return job


def test_a_ledger_above_the_threshold_is_written_by_the_worker_with_the_same_rows_and_the_requester_notified(
    client, world, key_help_cases, settings, django_capture_on_commit_callbacks
):
    client.force_login(world.centre_district_a)
    settings.EXPORT_BACKGROUND_ROWS = 100
    immediate = client.get(reverse(KEY_HELP_XLSX), {"tier": "orange"})
    assert immediate.status_code == 200 and not ExportJob.objects.exists()
    expected = rows_of(body(immediate))

    settings.EXPORT_BACKGROUND_ROWS = 1
    job = export_in_background(client, django_capture_on_commit_callbacks, tier="orange")
    assert (job.status, job.requested_by, job.parameters, job.total_rows) == (
        ExportStatus.DONE, world.centre_district_a, {"tier": "orange"}, 2,
    )  # fmt: skip
    assert job.file.path.startswith(settings.EXPORT_ROOT) and os.path.exists(job.file.path)
    with job.file.open("rb") as stored:
        assert rows_of(stored.read()) == expected
    assert job.expires_at - job.finished_at == timedelta(hours=24)

    (note,) = Notification.objects.filter(recipient=world.centre_district_a, kind=exports.NOTIFICATION_KIND)
    assert note.title == "您的导出已就绪" and note.link == reverse("export_download", args=[job.pk])
    assert "重点帮扶对象台账" in note.body and "2" in note.body

    page = client.get(reverse("export_job", args=[job.pk])).content.decode()
    assert 'id="export-download"' in page and 'id="export-progress"' not in page
    assert client.get(reverse("export_job_progress", args=[job.pk])).json() == {
        "status": "done", "status_label": "已就绪", "done": 2, "total": 2, "finished": True,
    }  # fmt: skip

    before = AccessLogEntry.objects.filter(action="export").count()
    download = client.get(note.link)
    assert download.status_code == 200 and download["Content-Disposition"].startswith("attachment;")
    assert rows_of(body(download)) == expected
    entry = AccessLogEntry.objects.filter(action="export").latest("pk")
    assert AccessLogEntry.objects.filter(action="export").count() == before + 1
    assert (entry.actor, entry.outcome, entry.object_type) == ("centre_district_a", "ok", "cases.case")
    orange = {c.pk for c in key_help_cases if c.tier == "orange"}
    assert {int(i) for i in entry.object_ids.split(",")} == orange


def test_while_the_worker_has_not_run_the_page_shows_a_progress_bar(
    client, world, key_help_cases, settings, django_capture_on_commit_callbacks
):
    settings.EXPORT_BACKGROUND_ROWS = 1
    client.force_login(world.centre_district_a)
    with django_capture_on_commit_callbacks(execute=False):
        response = client.get(reverse(KEY_HELP_XLSX), follow=True)
    page = response.content.decode()
    assert response.status_code == 200 and 'id="export-progress"' in page and "等待后台任务" in page
    job = ExportJob.objects.get()
    assert client.get(reverse("export_job_progress", args=[job.pk])).json()["finished"] is False
    assert client.get(reverse("export_download", args=[job.pk])).status_code == 409  # not written yet


def test_at_or_under_the_threshold_the_file_comes_at_once(client, world, key_help_cases, settings):
    settings.EXPORT_BACKGROUND_ROWS = 4  # district A's key-help ledger holds exactly 4 rows
    client.force_login(world.centre_district_a)
    response = client.get(reverse(KEY_HELP_XLSX))
    assert response.status_code == 200 and len(rows_of(body(response))) == 1 + 4
    assert not ExportJob.objects.exists()


@pytest.mark.parametrize("url", ["export_job", "export_job_progress", "export_download"])
def test_only_the_requester_sees_or_downloads_a_job_others_get_a_logged_404(
    client, world, key_help_cases, settings, django_capture_on_commit_callbacks, url
):
    settings.EXPORT_BACKGROUND_ROWS = 1
    client.force_login(world.centre_district_a)
    job = export_in_background(client, django_capture_on_commit_callbacks)
    # The city centre reads every case of the file, and still may not take another person's export.
    for other in (world.city_centre, world.principal_a1, world.admin_district_b):
        client.force_login(other)
        assert client.get(reverse(url, args=[job.pk])).status_code == 404
        entry = AccessLogEntry.objects.filter(actor=other.username).latest("pk")
        assert (entry.action, entry.outcome, entry.object_type, entry.object_ids) == (
            "export", "denied", "roster.exportjob", str(job.pk),
        )  # fmt: skip
    assert not AccessLogEntry.objects.filter(action="export", outcome="ok", object_type="cases.case").exists()


def _revoke_ledger_role(world):
    assignment = RoleAssignment.objects.get(user=world.centre_district_a)
    role_revoke(actor=None, assignment=assignment)


def test_a_role_revoked_after_the_job_ran_downloads_nothing(
    client, world, key_help_cases, settings, django_capture_on_commit_callbacks
):
    settings.EXPORT_BACKGROUND_ROWS = 1
    client.force_login(world.centre_district_a)
    job = export_in_background(client, django_capture_on_commit_callbacks)
    assert job.status == ExportStatus.DONE
    _revoke_ledger_role(world)
    assert client.get(reverse("export_download", args=[job.pk])).status_code == 404
    entry = AccessLogEntry.objects.filter(actor="centre_district_a").latest("pk")
    assert (entry.action, entry.outcome, entry.object_ids) == ("export", "denied", str(job.pk))


def test_a_role_revoked_before_the_job_runs_writes_nothing_and_says_so(
    client, world, key_help_cases, settings, django_capture_on_commit_callbacks
):
    settings.EXPORT_BACKGROUND_ROWS = 1
    client.force_login(world.centre_district_a)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        client.get(reverse(KEY_HELP_XLSX))
    _revoke_ledger_role(world)
    callbacks[0]()  # the worker picks the job up now
    job = ExportJob.objects.get()
    assert job.status == ExportStatus.FAILED and not job.file
    assert not [f for _, _, files in os.walk(settings.EXPORT_ROOT) for f in files]
    (note,) = Notification.objects.filter(recipient=world.centre_district_a, kind=exports.NOTIFICATION_KIND)
    assert note.title == "您的导出未能生成" and note.link == reverse("export_job", args=[job.pk])
    assert client.get(reverse("export_download", args=[job.pk])).status_code == 409


def test_after_expiry_the_sweep_deletes_the_file_and_the_link_says_the_export_expired(
    client, world, key_help_cases, settings, django_capture_on_commit_callbacks
):
    settings.EXPORT_BACKGROUND_ROWS = 1
    client.force_login(world.centre_district_a)
    job = export_in_background(client, django_capture_on_commit_callbacks)
    path = job.file.path
    assert os.path.exists(path)

    # A day later the link already says so, before the hourly sweep has run.
    ExportJob.objects.filter(pk=job.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    early = client.get(reverse("export_download", args=[job.pk]))
    assert early.status_code == 410 and "此导出已过期，请重新导出" in early.content.decode()

    schedule = Schedule.objects.get(name=import_module("roster.migrations.0012_export_jobs").SCHEDULE)
    assert (schedule.schedule_type, schedule.repeats) == (Schedule.HOURLY, -1)
    import_string(schedule.func)(now=timezone.now() + timedelta(hours=25))

    job.refresh_from_db()
    assert job.status == ExportStatus.EXPIRED and not job.file and not os.path.exists(path)
    exported = AccessLogEntry.objects.filter(action="export", outcome="ok").count()
    response = client.get(reverse("export_download", args=[job.pk]))
    shown = response.content.decode()
    assert response.status_code == 410 and 'id="export-expired"' in shown and "此导出已过期，请重新导出" in shown
    assert reverse("reports:ledger_key_help") in shown  # the way back to export again
    assert AccessLogEntry.objects.filter(action="export", outcome="ok").count() == exported  # nothing handed over

    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    english = client.get(reverse("export_download", args=[job.pk])).content.decode()
    assert "This export has expired. Please export again." in english


def test_the_sweep_leaves_a_file_before_its_expiry(client, world, key_help_cases, settings,
                                                   django_capture_on_commit_callbacks):  # fmt: skip
    settings.EXPORT_BACKGROUND_ROWS = 1
    client.force_login(world.centre_district_a)
    job = export_in_background(client, django_capture_on_commit_callbacks)
    exports.export_sweep_expired(now=timezone.now() + timedelta(hours=23))
    job.refresh_from_db()
    assert job.status == ExportStatus.DONE and os.path.exists(job.file.path)
    assert client.get(reverse("export_download", args=[job.pk])).status_code == 200


def test_the_case_ids_in_a_city_export_are_checked_against_the_scope_at_download(
    client, world, key_help_cases, settings, django_capture_on_commit_callbacks
):
    """A case moved out of the requester's reach after the file was written: the file is no longer theirs."""
    settings.EXPORT_BACKGROUND_ROWS = 1
    client.force_login(world.principal_a1)
    job = export_in_background(client, django_capture_on_commit_callbacks)
    assert job.status == ExportStatus.DONE
    Case.objects.filter(pk=key_help_cases[0].pk).update(school=world.school_a2)
    assert client.get(reverse("export_download", args=[job.pk])).status_code == 404
