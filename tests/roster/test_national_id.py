"""The national student number (全国学籍号) in the roster: imported, kept only as a keyed hash and a tail, masked on
every page; and students leaving or coming back announced once per batch (issue 19 items 1 and 5)."""

import io

import openpyxl
import pytest
from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import models
from django.urls import reverse
from django.utils import translation

from roster.identity import national_id_digest
from roster.importing import ImportRequest, run_import
from roster.models import ImportJob, Student, StudentStatus
from roster.signals import students_left, students_returned
from tests.roster_files import STUDENT_HEADER, csv_bytes, student_row, xlsx_bytes

NUMBER = "G510402201303051234"
HEADER = [*STUDENT_HEADER, "全国学籍号"]


def _import(world, rows, *, actor="school_admin_a1", dry_run=False, header=HEADER):
    with translation.override("zh-hans"):
        return run_import(
            ImportRequest(
                kind="students", data=csv_bytes([header, *rows]), filename="roster.csv",
                actor=getattr(world, actor), dry_run=dry_run,
            )
        )  # fmt: skip


def _row(number=NUMBER, **kwargs):
    return [*student_row(**kwargs), number]


def _holding(text: str) -> list[str]:
    """Every text or JSON column of every table that holds `text` anywhere: "model.field"."""
    found = []
    for model in apps.get_models(include_auto_created=True):
        for field in model._meta.concrete_fields:
            if isinstance(field, models.CharField | models.TextField | models.JSONField):
                lookup = f"{field.attname}__icontains"
                if isinstance(field, models.JSONField):
                    rows = model._default_manager.exclude(**{f"{field.attname}__isnull": True})
                    if any(text in str(value) for value in rows.values_list(field.attname, flat=True)):
                        found.append(f"{model._meta.label}.{field.name}")
                elif model._default_manager.filter(**{lookup: text}).exists():
                    found.append(f"{model._meta.label}.{field.name}")
    return found


@pytest.mark.parametrize("header", ["全国学籍号", "学籍号", "学籍辅号", "national student number"])
def test_the_national_number_is_read_under_each_of_its_headers(world, header):
    report = _import(world, [_row(number="g 5104 0220 1303 0512 34")], header=[*STUDENT_HEADER, header])
    assert (report.errors, report.new) == ([], 1)
    student = Student.objects.get(school=world.school_a1, student_no="20250701")
    assert (student.national_id_digest, student.national_id_tail) == (national_id_digest(NUMBER), "1234")


def test_学籍号_is_no_longer_taken_for_the_student_number(world):
    header = ["学校代码", "年级", "班级", "学籍号", "姓名", "性别"]
    report = _import(world, [["9901010001", "7", "3", NUMBER, "李小红", "女"]], header=header)
    assert "学号 (student_no)" in report.refused
    assert not Student.objects.filter(name="李小红").exists()


def test_the_number_as_typed_is_stored_nowhere(world, client):
    client.force_login(world.school_admin_a1)
    data = xlsx_bytes([HEADER, _row()])
    response = client.post(reverse("admin:roster_importjob_add"), {"file": SimpleUploadedFile("s.xlsx", data)})
    preview = client.get(response.url).content.decode()
    assert "••••1234" in preview and NUMBER not in preview
    client.post(response.url, {"_confirm": "1"})
    assert Student.objects.get(student_no="20250701").national_id_tail == "1234"
    assert _holding(NUMBER) == [] and _holding(NUMBER[1:]) == []  # not in a student, its history, a job, a log


def test_a_malformed_number_is_a_row_error_that_does_not_repeat_it(world):
    report = _import(world, [_row(number="G51-04#02")])
    assert report.new == 0 and not Student.objects.filter(student_no="20250701").exists()
    [error] = report.errors
    assert (error.column, error.value) == ("全国学籍号", "••••4#02")
    assert "全国学籍号" in error.message and "8" in error.message


def test_a_number_stored_by_excel_as_a_long_number_is_refused(world):
    data = xlsx_bytes([HEADER, [*student_row(), 510402201303051234]])
    with translation.override("zh-hans"):
        report = run_import(ImportRequest(kind="students", data=data, filename="s.xlsx", actor=world.school_admin_a1))
    assert report.new == 0 and "15" in report.errors[0].message


def test_a_blank_cell_leaves_the_stored_number_and_a_new_one_replaces_it(world):
    _import(world, [_row()])
    report = _import(world, [_row(number="")])
    student = Student.objects.get(student_no="20250701")
    assert (report.unchanged, student.national_id_tail) == (1, "1234")
    report = _import(world, [_row(number="G510402201303055678")])
    student.refresh_from_db()
    assert (report.updated, student.national_id_tail) == (1, "5678")
    assert student.national_id_digest == national_id_digest("G510402201303055678")
    assert [h.national_id_tail for h in student.history.order_by("history_date")] == ["1234", "5678"]


def test_two_rows_with_one_number_are_both_refused(world):
    report = _import(world, [_row(), _row(student_no="20250702", name="张三")])
    assert report.new == 0 and sorted(report.error_lines) == [2, 3]
    assert {e.column for e in report.errors} == {"全国学籍号"}
    assert all(NUMBER not in e.value and NUMBER not in e.message for e in report.errors)


def test_a_number_held_by_another_student_of_the_school_is_refused(world):
    Student.objects.filter(pk=world.student_a1_5.pk).update(national_id_digest=national_id_digest(NUMBER))
    report = _import(world, [_row()])
    assert report.new == 0
    assert world.student_a1_5.student_no in report.errors[0].message
    assert not Student.objects.filter(student_no="20250701").exists()


def test_the_preview_shows_the_number_masked(world):
    report = _import(world, [_row()], dry_run=True)
    column = report.preview_columns.index("national_id")
    assert report.added[0]["values"][column] == "••••1234"
    assert NUMBER not in str(report.preview())


def test_the_template_has_the_column_its_example_and_its_notes(world, client):
    client.force_login(world.school_admin_a1)
    response = client.get(reverse("admin:roster_importjob_template", args=["students", "xlsx"]))
    workbook = openpyxl.load_workbook(io.BytesIO(response.content))
    header = [c.value for c in workbook["名单"][1]]
    example = dict(zip(header, [c.value for c in workbook["示例"][2]], strict=True))
    assert header[-1] == "全国学籍号" and example["全国学籍号"].startswith("G")
    notes = {row[0].value: row for row in workbook["填写说明"].iter_rows(min_row=2)}
    assert notes["全国学籍号"][2].value == "选填" and "学籍辅号" in notes["全国学籍号"][3].value
    assert "学籍号" not in notes["学号"][3].value


def test_the_student_admin_shows_the_number_masked_and_sets_it_without_showing_it(world, client):
    student = world.student_a1_3
    Student.objects.filter(pk=student.pk).update(national_id_digest=national_id_digest(NUMBER), national_id_tail="1234")
    client.force_login(world.school_admin_a1)
    assert "••••1234" in client.get(reverse("admin:roster_student_changelist")).content.decode()
    url = reverse("admin:roster_student_change", args=[student.pk])
    page = client.get(url).content.decode()
    assert "••••1234" in page and 'name="national_id"' in page
    form = {
        "school": student.school_id, "school_class": student.school_class_id, "student_no": student.student_no,
        "name": student.name, "gender": student.gender, "guardian_name": "", "guardian_phone": "",
        "status": StudentStatus.ACTIVE, "national_id": "g510402201303059999",
    }  # fmt: skip
    assert client.post(url, form).status_code == 302
    student.refresh_from_db()
    assert (student.national_id_tail, student.national_id_digest) == ("9999", national_id_digest("G510402201303059999"))
    assert "G510402201303059999" not in client.get(url).content.decode()
    # A number another student of the school has is refused, with the field named.
    Student.objects.filter(pk=world.student_a1_5.pk).update(national_id_digest=national_id_digest(NUMBER))
    response = client.post(url, {**form, "national_id": NUMBER})
    assert response.status_code == 200 and "本校另一名学生已使用这个全国学籍号" in response.content.decode()
    student.refresh_from_db()
    assert student.national_id_tail == "9999"


@pytest.mark.parametrize(
    ("label", "status"),
    [("退学", StudentStatus.WITHDRAWN), ("已退学", StudentStatus.WITHDRAWN), ("转出本市", StudentStatus.TRANSFERRED)],
)
def test_the_new_status_labels_are_read(world, label, status):
    report = _import(world, [[*student_row(), label]], header=[*STUDENT_HEADER, "状态"])
    assert report.errors == []
    assert Student.objects.get(student_no="20250701").status == status


@pytest.fixture
def announced():
    """What roster announced to the apps above it, as a receiver of theirs would see it."""
    calls = {"left": [], "returned": []}

    def on_left(sender, student_ids, status, actor, **kwargs):
        calls["left"].append((sorted(student_ids), status, actor))

    def on_returned(sender, student_ids, actor, **kwargs):
        calls["returned"].append((sorted(student_ids), actor))

    students_left.connect(on_left, weak=False)
    students_returned.connect(on_returned, weak=False)
    yield calls
    students_left.disconnect(on_left)
    students_returned.disconnect(on_returned)


def test_an_import_announces_its_leavers_once_per_status_and_its_returners(world, announced):
    header = [*STUDENT_HEADER, "状态"]
    rows = [[*student_row(student_no=f"2025070{n}", name=f"学生{n}"), "在读"] for n in range(1, 5)]
    _import(world, rows, header=header)
    ids = dict(Student.objects.filter(student_no__startswith="2025070").values_list("student_no", "pk"))
    assert announced == {"left": [], "returned": []}  # new students leave nothing
    rows[0][-1] = rows[1][-1] = "已转出"
    rows[2][-1] = "退学"
    rows[3][-1] = "休学"  # on leave is not leaving
    _import(world, rows, header=header)
    transferred = sorted([ids["20250701"], ids["20250702"]])
    assert sorted(announced["left"]) == [
        (transferred, StudentStatus.TRANSFERRED, world.school_admin_a1),
        ([ids["20250703"]], StudentStatus.WITHDRAWN, world.school_admin_a1),
    ]
    _import(world, rows, header=header)  # the same file again: nothing changes, nothing is announced
    assert len(announced["left"]) == 2 and announced["returned"] == []
    rows[0][-1] = "在读"
    _import(world, rows, header=header)
    assert announced["returned"] == [([ids["20250701"]], world.school_admin_a1)]


def test_the_student_admin_announces_a_leaver(world, client, announced):
    student = world.student_a1_3
    client.force_login(world.school_admin_a1)
    form = {
        "school": student.school_id, "school_class": student.school_class_id, "student_no": student.student_no,
        "name": student.name, "gender": student.gender, "guardian_name": "", "guardian_phone": "",
        "status": StudentStatus.WITHDRAWN, "national_id": "",
    }  # fmt: skip
    url = reverse("admin:roster_student_change", args=[student.pk])
    assert client.post(url, form).status_code == 302
    assert announced["left"] == [([student.pk], StudentStatus.WITHDRAWN, world.school_admin_a1)]
    client.post(url, {**form, "status": StudentStatus.ACTIVE})
    assert announced["returned"] == [([student.pk], world.school_admin_a1)]
    assert Student.objects.get(pk=student.pk).national_id_digest == ""  # a blank field leaves the number as it was


def test_every_demo_student_has_its_documented_synthetic_number(demo_district):
    from roster.demo import demo_national_id

    students = Student.objects.select_related("school")
    assert not students.filter(national_id_digest="").exists()
    student = students.order_by("pk").first()
    expected = "G" + student.school.code + student.student_no
    assert demo_national_id(student.school.code, student.student_no) == expected
    assert student.national_id_digest == national_id_digest(expected)


def test_an_import_job_never_keeps_the_number(world, client):
    client.force_login(world.school_admin_a1)
    data = csv_bytes([HEADER, _row(number="G51-04#02")])
    client.post(reverse("admin:roster_importjob_add"), {"file": SimpleUploadedFile("bad.csv", data)})
    job = ImportJob.objects.get()
    assert "G51-04#02" not in str(job.report) and "••••4#02" in str(job.report)
