"""The admin import as a school admin uses it: upload, preview, confirm; errors; progress; the background path."""

import io

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from roster.importing import COLUMNS
from roster.models import ImportJob, ImportStatus, Student
from tests.roster_files import STUDENT_HEADER, csv_bytes, student_row, xlsx_bytes


def _upload(client, data, name="students.xlsx", **fields):
    return client.post(reverse("admin:roster_importjob_add"), {"file": SimpleUploadedFile(name, data), **fields})


@pytest.fixture
def school_admin(client, world):
    client.force_login(world.school_admin_a1)
    return client


def test_upload_shows_a_preview_and_writes_nothing_until_confirmed(school_admin, world):
    data = xlsx_bytes([STUDENT_HEADER, student_row(), student_row(student_no="20250702")])
    response = _upload(school_admin, data)
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response.url == reverse("admin:roster_importjob_change", args=[job.pk])
    assert (job.status, job.report["new"], job.report["written"]) == (ImportStatus.CHECKED, 2, False)
    assert not Student.objects.filter(student_no__startswith="202507").exists()
    preview = school_admin.get(response.url).content.decode()
    assert "确认并导入" in preview and "尚未保存任何数据" in preview

    assert school_admin.post(response.url, {"_confirm": "1"}).status_code == 302
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE
    assert Student.objects.filter(student_no__startswith="202507").count() == 2
    assert Student.objects.get(student_no="20250701").history.get().history_user == world.school_admin_a1


def test_a_second_confirmation_changes_nothing_and_says_so(school_admin, world):
    _upload(school_admin, xlsx_bytes([STUDENT_HEADER, student_row()]))
    url = reverse("admin:roster_importjob_change", args=[ImportJob.objects.get().pk])
    school_admin.post(url, {"_confirm": "1"})
    history = Student.history.count()
    page = school_admin.post(url, {"_confirm": "1"}, follow=True).content.decode()
    assert "已经确认" in page
    assert Student.history.count() == history


def test_rows_with_errors_are_listed_and_only_valid_rows_import_when_chosen(school_admin, world):
    data = csv_bytes([STUDENT_HEADER, student_row(), student_row(student_no="20250702", gender="未知")])
    _upload(school_admin, data, "mixed.csv")
    job = ImportJob.objects.get()
    page = school_admin.get(reverse("admin:roster_importjob_change", args=[job.pk])).content.decode()
    assert "性别" in page and "未知" in page and "仅导入 1 行无误的数据" in page

    errors = school_admin.get(reverse("admin:roster_importjob_errors", args=[job.pk]))
    sheet = openpyxl.load_workbook(io.BytesIO(errors.content)).active
    assert [c.value for c in sheet[2]][:2] == [3, "性别"]

    school_admin.post(reverse("admin:roster_importjob_change", args=[job.pk]), {"_valid_only": "1"})
    assert Student.objects.filter(student_no="20250701").exists()
    assert not Student.objects.filter(student_no="20250702").exists()


def test_a_refused_file_says_why_and_offers_a_new_upload(school_admin, world):
    _upload(school_admin, csv_bytes([["姓名", "学号"], ["李", "1"]]), "bad.csv")
    job = ImportJob.objects.get()
    assert job.status == ImportStatus.REFUSED
    page = school_admin.get(reverse("admin:roster_importjob_change", args=[job.pk])).content.decode()
    assert "缺少必填列" in page and "学校代码" in page


def test_large_files_run_in_the_background_with_progress(
    school_admin, world, settings, django_capture_on_commit_callbacks
):
    settings.ROSTER_IMPORT_BACKGROUND_ROWS = 3
    rows = [student_row(student_no=f"2025{n:04d}") for n in range(12)]
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        _upload(school_admin, xlsx_bytes([STUDENT_HEADER, *rows]))
    assert len(callbacks) == 1  # the check was handed to the task queue, not run in the request
    job = ImportJob.objects.get()
    assert (job.status, job.total_rows, job.processed_rows, job.error_count) == (ImportStatus.CHECKED, 12, 12, 0)
    with django_capture_on_commit_callbacks(execute=True):
        school_admin.post(reverse("admin:roster_importjob_change", args=[job.pk]), {"_confirm": "1"})
    progress = school_admin.get(reverse("admin:roster_importjob_progress", args=[job.pk])).json()
    assert progress == {
        "status": "done", "status_label": "已完成", "done": 12, "total": 12, "errors": 0, "finished": True,
    }  # fmt: skip
    assert Student.objects.filter(student_no__startswith="2025").count() == 12


def test_an_interrupted_import_can_be_run_again_to_completion(school_admin, world):
    data = xlsx_bytes([STUDENT_HEADER, student_row(), student_row(student_no="20250702")])
    _upload(school_admin, data)
    job = ImportJob.objects.get()
    # As if the worker died after the first batch: one student saved, the job still marked as importing (and still
    # holding its file, which only a finished import gives up).
    school_admin.post(reverse("admin:roster_importjob_change", args=[job.pk]), {"_confirm": "1"})
    Student.objects.filter(student_no="20250702").delete()
    ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.IMPORTING, content=data)
    school_admin.post(reverse("admin:roster_importjob_change", args=[job.pk]), {"_resume": "1"})
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE and job.report["new"] == 1 and job.report["unchanged"] == 1
    assert Student.objects.filter(student_no__in=["20250701", "20250702"]).count() == 2


@pytest.mark.parametrize("kind", list(COLUMNS))
def test_templates_download_with_chinese_headers(school_admin, kind):
    xlsx = school_admin.get(reverse("admin:roster_importjob_template", args=[kind, "xlsx"]))
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content)).worksheets[0]
    assert [c.value for c in sheet[1]] == [c.header for c in COLUMNS[kind]]
    csv = school_admin.get(reverse("admin:roster_importjob_template", args=[kind, "csv"]))
    assert csv.content.startswith("\ufeff学校代码".encode())


def test_another_users_import_is_not_found(client, world):
    client.force_login(world.school_admin_a1)
    _upload(client, xlsx_bytes([STUDENT_HEADER, student_row()]))
    job = ImportJob.objects.get()
    client.force_login(world.school_admin_a2)
    assert client.get(reverse("admin:roster_importjob_change", args=[job.pk])).status_code == 404
    assert client.get(reverse("admin:roster_importjob_progress", args=[job.pk])).status_code == 404
    assert client.post(reverse("admin:roster_importjob_change", args=[job.pk]), {"_confirm": "1"}).status_code == 404
    client.force_login(world.auditor_district_a)  # read-only role: no import pages at all
    assert client.get(reverse("admin:roster_importjob_add")).status_code in (403, 404)
