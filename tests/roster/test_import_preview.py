"""The import preview lists the rows to be added and changed, with their values; the templates carry an example and
the allowed values, and an example left in is never imported."""

import io

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from roster.import_jobs import EXAMPLE_ROWS
from roster.importing import ImportRequest, run_import
from roster.models import ImportJob, ImportStatus, Student
from tests.roster_files import STUDENT_HEADER, student_row, xlsx_bytes


@pytest.fixture
def school_admin(client, world):
    client.force_login(world.school_admin_a1)
    return client


def _upload(client, data, name="students.xlsx"):
    response = client.post(reverse("admin:roster_importjob_add"), {"file": SimpleUploadedFile(name, data)})
    assert response.status_code == 302, response.content.decode()[:2000]
    return response.url


def test_the_preview_lists_added_rows_and_changed_values(school_admin, world):
    changed = student_row(
        grade="七年级", klass="5班", student_no=world.student_a1_3.student_no, name="王小明", gender="女",
        birth="", guardian="王大明", phone="13900001111",
    )  # fmt: skip
    url = _upload(school_admin, xlsx_bytes([STUDENT_HEADER, student_row(groups="留守儿童"), changed]))
    page = school_admin.get(url).content.decode()

    assert "将新增 1 行" in page and "将修改 1 行" in page
    added = page.split('id="preview-added"')[1].split("</table>")[0]
    for value in ("9901010001", "7年级3班", "20250701", "李小红", "女", "2013-03-05", "李大红", "13912345678"):
        assert f"<td>{value}</td>" in added
    assert "留守儿童" in added and "在读" in added
    changes = page.split('id="preview-changed"')[1].split("</table>")[0]
    assert world.student_a1_3.student_no in changes and "王小明" in changes
    assert "<b>班级</b>: <del>7年级3班</del> → <ins>7年级5班</ins>" in changes
    assert "<del>13812341234</del> → <ins>13900001111</ins>" in changes
    assert "监护人" in changes and "姓名</b>" not in changes  # unchanged fields are not listed

    school_admin.post(url, {"_confirm": "1"})
    job = ImportJob.objects.get()
    assert job.status == ImportStatus.DONE and job.preview == {}  # the names go with the file
    assert "李小红" not in school_admin.get(url).content.decode()


def test_the_preview_is_paged(school_admin, world):
    rows = [student_row(student_no=f"2025{n:04d}", name=f"李同学{n}") for n in range(120)]
    url = _upload(school_admin, xlsx_bytes([STUDENT_HEADER, *rows]))
    first = school_admin.get(url).content.decode()
    assert "李同学0<" in first and "李同学49<" in first and "李同学50<" not in first
    third = school_admin.get(url, {"added": 3}).content.decode()
    assert "李同学100<" in third and "李同学119<" in third and "李同学99<" not in third


def test_the_preview_is_in_english_for_an_english_reader(school_admin, world):
    url = _upload(school_admin, xlsx_bytes([STUDENT_HEADER, student_row()]))
    school_admin.cookies["django_language"] = "en"
    page = school_admin.get(url).content.decode()
    assert "1 row to be added" in page and "Guardian" in page.split('id="preview-added"')[1]


@pytest.mark.slow
def test_the_dry_run_takes_as_many_queries_for_3000_rows_as_for_30(world):
    def queries(count: int) -> int:
        rows = [student_row(student_no=f"3{n:06d}") for n in range(count)]
        existing = [world.student_a1_3.student_no]  # one changed row in each
        rows.append(student_row(student_no=existing[0], klass="5班", name="王小明"))
        data = xlsx_bytes([STUDENT_HEADER, *rows])
        with CaptureQueriesContext(connection) as captured:
            report = run_import(
                ImportRequest(kind="students", data=data, filename="s.xlsx", actor=world.school_admin_a1)
            )
        assert (report.new, report.updated, len(report.added)) == (count, 1, min(count, 500))
        return len(captured)

    queries(30)  # the importer's scope is read once and kept
    assert queries(3000) == queries(30)


def _template(client, kind="students") -> openpyxl.Workbook:
    response = client.get(reverse("admin:roster_importjob_template", args=[kind, "xlsx"]))
    return openpyxl.load_workbook(io.BytesIO(response.content))


def test_the_template_has_an_example_sheet_and_the_allowed_values(school_admin, world):
    workbook = _template(school_admin)
    assert workbook.sheetnames == ["名单", "示例", "填写说明", "允许的值"]
    assert [c.value for c in workbook["名单"][1]][:4] == ["学校代码", "年级", "班级", "学号"]
    assert workbook["名单"].max_row == 1  # headers only: nothing to forget
    assert [c.value for c in workbook["示例"][2]] == EXAMPLE_ROWS["students"]
    allowed = [[c.value for c in row] for row in workbook["允许的值"].iter_rows(min_row=2)]
    by_column: dict[str, list[str]] = {}
    for column, value, _note in allowed:
        by_column.setdefault(column, []).append(value)
    assert by_column["性别"] == ["男", "女"]
    assert {"在读", "已转出", "已毕业", "休学"} <= set(by_column["状态"])
    assert "留守儿童" in by_column["特殊群体"]
    assert by_column["学段"] == ["小学", "初中", "高中", "九年一贯制", "完全中学", "十二年一贯制"]
    notes = {value: note for column, value, note in allowed if column == "学段"}
    assert notes["小学"].startswith("1–6年级") and notes["完全中学"].startswith("7–12年级")
    staff = _template(school_admin, "staff")
    assert "班主任" in [row[1].value for row in staff["允许的值"].iter_rows(min_row=2)]


def test_a_template_uploaded_with_the_example_left_in_imports_only_the_real_rows(school_admin, world):
    workbook = _template(school_admin)
    workbook["名单"].append(student_row())
    buffer = io.BytesIO()
    workbook.save(buffer)
    url = _upload(school_admin, buffer.getvalue())
    school_admin.post(url, {"_confirm": "1"})
    assert ImportJob.objects.get().report["total"] == 1
    assert Student.objects.filter(student_no="20250701").exists()
    assert not Student.objects.filter(student_no=EXAMPLE_ROWS["students"][3]).exists()


def test_the_example_row_copied_into_the_roster_is_refused_not_imported(school_admin, world):
    url = _upload(school_admin, xlsx_bytes([STUDENT_HEADER + ["状态"], EXAMPLE_ROWS["students"]]))
    page = school_admin.get(url).content.decode()
    assert "学校代码不存在" in page or "未知的学校代码" in page
    school_admin.post(url, {"_confirm": "1"})
    assert not Student.objects.filter(student_no=EXAMPLE_ROWS["students"][3]).exists()


def test_class_and_staff_previews_list_their_rows(world):
    def dry_run(kind, rows):
        data = xlsx_bytes(rows)
        return run_import(ImportRequest(kind=kind, data=data, filename="f.xlsx", actor=world.school_admin_a1))

    classes = dry_run(
        "classes", [["学校代码", "年级", "班级"], ["9901010001", "七年级", "3班"], ["9901010001", "八年级", "1班"]]
    )
    assert [row["values"] for row in classes.added] == [["9901010001", "8年级1班"]]  # 7-3 exists already

    world.homeroom_a1_3.school, world.homeroom_a1_3.staff_no = world.school_a1, "T9"
    world.homeroom_a1_3.save()
    header = ["学校代码", "工号", "姓名", "手机号", "角色", "班级"]
    staff = dry_run(
        "staff",
        [
            header,
            ["9901010001", "T9", "新名字", world.homeroom_a1_3.phone, "班主任", "7-3"],
            ["9901010001", "T10", "周老师", "13700001234", "心理教师", ""],
        ],
    )
    assert staff.changed == [
        {
            "line": 2,
            "key": "T9",
            "label": world.homeroom_a1_3.name,
            "changes": [["name", world.homeroom_a1_3.name, "新名字"]],
        }
    ]
    assert staff.added[0]["values"] == ["9901010001", "T10", "周老师", "137****1234", "心理教师", ""]
