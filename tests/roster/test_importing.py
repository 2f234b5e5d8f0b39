"""Roster import: real files, real mess, row-by-row reports, scope, idempotency and history."""

import io

import pytest
from django.core.management import CommandError, call_command
from django.utils import translation

from roster.importing import ImportRequest, run_import
from roster.models import SchoolClass, Student, User
from tests.roster_files import STUDENT_HEADER, csv_bytes, student_row, xlsx_bytes


def _import(world, data, filename="roster.csv", *, actor="school_admin_a1", dry_run=False, **kwargs):
    with translation.override("zh-hans"):
        return run_import(
            ImportRequest(
                kind=kwargs.pop("kind", "students"),
                data=data,
                filename=filename,
                actor=getattr(world, actor) if actor else None,
                dry_run=dry_run,
                **kwargs,
            )
        )


@pytest.mark.parametrize(
    ("encoding", "filename"),
    [("utf-8", "a.csv"), ("utf-8-sig", "a.csv"), ("gbk", "a.csv"), ("gb18030", "a.csv"), (None, "a.xlsx")],
)
def test_every_encoding_and_format_imports_the_same_student(world, encoding, filename):
    rows = [STUDENT_HEADER, student_row(groups="留守儿童、单亲家庭")]
    data = xlsx_bytes(rows) if encoding is None else csv_bytes(rows, encoding)
    report = _import(world, data, filename)
    assert (report.refused, report.errors, report.new) == ("", [], 1)
    student = Student.objects.get(school=world.school_a1, student_no="20250701")
    assert (student.name, student.gender, student.school_class) == ("李小红", "F", world.class_a1_3)
    assert str(student.birth_date) == "2013-03-05"
    assert sorted(student.special_groups.values_list("code", flat=True)) == ["left_behind", "single_parent"]


@pytest.mark.parametrize(
    ("grade", "klass", "gender", "birth", "phone", "expected"),
    [
        ("7", "3", "F", "2013/3/5", "139 1234 5678", (7, 3, "F", "2013-03-05", "13912345678")),
        ("初一", "(3)班", "2", "2013年3月5日", "１３９１２３４５６７８", (7, 3, "F", "2013-03-05", "13912345678")),
        ("初二", "三班", "男", "20130305", "139-1234-5678", (8, 3, "M", "2013-03-05", "13912345678")),
        ("高一", "3班", "M", "2010-03-05", "13912345678", (10, 3, "M", "2010-03-05", "13912345678")),
        ("高二", " 3 班 ", "1", "2010-3-5", "13912345678", (11, 3, "M", "2010-03-05", "13912345678")),
        ("四年级", "3", "女", "2016-03-05", "13912345678", (4, 3, "F", "2016-03-05", "13912345678")),
    ],
)
def test_messy_cells_are_normalised(world, grade, klass, gender, birth, phone, expected):
    data = csv_bytes([STUDENT_HEADER, student_row(grade=grade, klass=klass, gender=gender, birth=birth, phone=phone)])
    report = _import(world, data)
    assert report.errors == []
    s = Student.objects.select_related("school_class").get(student_no="20250701")
    assert (s.school_class.grade, s.school_class.number, s.gender, str(s.birth_date), s.guardian_phone) == expected


def test_full_width_and_spaced_numbers_are_cleaned(world):
    data = csv_bytes([STUDENT_HEADER, student_row(school_code="９９０１０１０００１", student_no=" 2025 0701 ")])
    assert _import(world, data).errors == []
    assert Student.objects.filter(school=world.school_a1, student_no="20250701").exists()


def test_missing_required_columns_refuse_the_whole_file(world):
    header = [h for h in STUDENT_HEADER if h not in {"学号", "性别"}]
    data = csv_bytes([header, ["9901010001", "7", "3", "李小红", "2013-03-05", "", "", ""]])
    students = Student.objects.count()
    report = _import(world, data)
    assert "学号 (student_no)" in report.refused and "性别 (gender)" in report.refused
    assert Student.objects.count() == students


def test_english_headers_are_accepted(world):
    header = ["school_code", "grade", "class", "student_no", "name", "gender"]
    report = _import(world, csv_bytes([header, ["9901010001", "7", "3", "20250799", "李小红", "F"]]))
    assert (report.errors, report.new) == ([], 1)


def _bad_file():
    return csv_bytes(
        [
            STUDENT_HEADER,
            student_row(student_no="20250701"),
            student_row(student_no="20250702", school_code="9999999999"),  # unknown school
            student_row(student_no="20250703", school_code="9901020001"),  # school B1: outside A1's scope
            student_row(student_no="20250704", birth="2013-02-30"),  # no such date
            student_row(student_no="20250705", groups="留守儿童、外星人"),  # unknown special group
            student_row(student_no="20250706"),
            student_row(student_no="20250706", name="重复"),  # duplicate in the file
        ]
    )


def test_row_errors_are_reported_with_line_column_and_reason_and_nothing_is_written(world):
    students, history = Student.objects.count(), Student.history.count()
    report = _import(world, _bad_file())
    by_line = {e.line: (e.column, e.message) for e in report.errors}
    assert by_line[3] == ("学校代码", "未知的学校代码。")
    assert by_line[4] == ("学校代码", "该学校不在您的管辖范围内。")
    assert by_line[5][0] == "出生日期"
    assert by_line[6][0] == "特殊群体" and "外星人" in by_line[6][1]
    assert by_line[8][0] == "学号" and "7" in by_line[8][1]  # names the first line of the duplicate
    assert by_line[7][0] == "学号"
    assert not report.written
    assert (Student.objects.count(), Student.history.count()) == (students, history)


def test_skip_invalid_imports_only_the_valid_rows(world):
    report = _import(world, _bad_file(), skip_invalid=True)
    assert report.written and report.new == 1
    assert Student.objects.filter(student_no__startswith="202507").count() == 1


def test_classes_named_in_a_student_file_are_created(world):
    data = csv_bytes([STUDENT_HEADER, student_row(grade="初二", klass="9班")])
    report = _import(world, data)
    assert report.classes_created == 1
    new_class = SchoolClass.objects.get(school=world.school_a1, grade=8, number=9)
    assert new_class.history.get().history_user == world.school_admin_a1


def test_reimporting_the_same_file_changes_nothing_and_writes_no_history(world):
    data = xlsx_bytes([STUDENT_HEADER, student_row(), student_row(student_no="20250702", name="王小刚", gender="男")])
    first = _import(world, data, "roster.xlsx")
    assert first.new == 2
    counts = (Student.objects.count(), Student.history.count(), SchoolClass.history.count())
    again = _import(world, data, "roster.xlsx")
    assert (again.new, again.updated, again.unchanged) == (0, 0, 2)
    assert (Student.objects.count(), Student.history.count(), SchoolClass.history.count()) == counts


def test_a_changed_row_updates_that_student_with_one_history_entry_naming_the_file(world):
    _import(world, csv_bytes([STUDENT_HEADER, student_row(), student_row(student_no="20250702")]), "v1.csv")
    changed = csv_bytes(
        [STUDENT_HEADER, student_row(phone="13700000000", groups="困境"), student_row(student_no="20250702")]
    )
    report = _import(world, changed, "v2.csv")
    assert (report.new, report.updated, report.unchanged) == (0, 1, 1)
    student = Student.objects.get(student_no="20250701")
    assert student.guardian_phone == "13700000000"
    latest = student.history.first()
    assert (latest.history_type, latest.history_user, latest.history_change_reason) == (
        "~",
        world.school_admin_a1,
        "roster import: v2.csv",
    )
    assert student.history.count() == 2
    assert list(latest.special_groups.values_list("specialgroup__code", flat=True)) == ["hardship"]
    assert Student.objects.get(student_no="20250702").history.count() == 1


def test_a_dry_run_writes_nothing_but_counts_what_would_happen(world):
    report = _import(world, csv_bytes([STUDENT_HEADER, student_row(grade="初二", klass="9班")]), dry_run=True)
    assert (report.new, report.classes_created, report.written) == (1, 1, False)
    assert not Student.objects.filter(student_no="20250701").exists()
    assert not SchoolClass.objects.filter(grade=8, number=9, school=world.school_a1).exists()


@pytest.mark.parametrize(
    ("data", "filename", "message"),
    [
        (b"\xff\xfe\x00\x01garbage\x80\x81\xfe", "a.csv", "编码"),
        (b"not a zip", "a.xlsx", "XLSX"),
        (b"x", "a.pdf", "PDF"),
        (b"", "a.csv", "空"),
    ],
)
def test_unreadable_files_are_refused_with_a_clear_message(world, data, filename, message):
    report = _import(world, data, filename)
    assert message.lower() in report.refused.lower()
    assert report.total == 0


def test_the_command_refuses_to_write_when_any_row_has_an_error(world, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(_bad_file())
    err = io.StringIO()
    with pytest.raises(CommandError, match="Nothing imported"):
        call_command("import_roster", str(path), "--user", "school_admin_a1", stderr=err, stdout=io.StringIO())
    assert "line 3" in err.getvalue() and "line 8" in err.getvalue()
    assert not Student.objects.filter(student_no__startswith="202507").exists()


def test_the_command_with_skip_invalid_imports_the_valid_rows_and_lists_the_bad(world, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(_bad_file())
    err, out = io.StringIO(), io.StringIO()
    call_command("import_roster", str(path), "--user", "school_admin_a1", "--skip-invalid", stderr=err, stdout=out)
    assert "line 4" in err.getvalue()
    assert "Imported" in out.getvalue()
    assert Student.objects.filter(student_no="20250701").exists()


def test_the_command_takes_the_school_from_the_option(world, tmp_path):
    header = [h for h in STUDENT_HEADER if h != "学校代码"]
    path = tmp_path / "class.csv"
    path.write_bytes(csv_bytes([header, student_row()[1:]]))
    call_command("import_roster", str(path), "--school", "9901010001", stdout=io.StringIO())
    assert Student.objects.filter(school=world.school_a1, student_no="20250701").exists()


STAFF_HEADER = ["学校代码", "工号", "姓名", "手机号", "角色", "班级"]


def test_staff_import_creates_people_with_their_roles_in_scope(world):
    data = csv_bytes(
        [
            STAFF_HEADER,
            ["9901010001", "T001", "赵老师", "13900000001", "心理教师", ""],
            ["9901010001", "T001", "赵老师", "13900000001", "班主任", "七年级5班"],
            ["9901010001", "T002", "钱老师", "", "班主任", "初一(3)班"],  # 7-3 already has a homeroom teacher
            ["9901010001", "T003", "孙老师", "", "学校管理员", ""],  # not a school admin's to grant
            ["9901020001", "T004", "李老师", "", "心理教师", ""],  # school B1
        ]
    )
    report = _import(world, data, kind="staff", skip_invalid=True)
    assert {e.line for e in report.errors} == {4, 5, 6}
    teacher = User.objects.get(school=world.school_a1, staff_no="T001")
    assert sorted(teacher.role_assignments.values_list("role", flat=True)) == ["homeroom_teacher", "psychology_teacher"]
    assert not teacher.has_usable_password()
    assert _import(world, data, kind="staff", skip_invalid=True).unchanged == 2


def test_class_import_creates_missing_classes_only(world):
    data = csv_bytes([["学校代码", "年级", "班级"], ["9901010001", "初一", "3班"], ["9901010001", "初一", "6班"]])
    report = _import(world, data, kind="classes")
    assert (report.new, report.unchanged) == (1, 1)
    assert SchoolClass.objects.filter(school=world.school_a1, grade=7, number=6).exists()


@pytest.mark.parametrize("name", ["libreoffice_students.xls", "libreoffice_students.xlsx"])
def test_files_saved_by_libreoffice_import_including_real_date_cells(world, name):
    """The template filled in and saved by LibreOffice Calc (legacy XLS and XLSX), school A1's code inside."""
    from pathlib import Path

    data = (Path(__file__).parent / "fixtures" / name).read_bytes()
    report = _import(world, data, name, skip_invalid=True)
    assert report.refused == ""
    assert {(e.line, e.column) for e in report.errors} == {(5, "出生日期"), (5, "特殊群体")}
    assert report.new == 3
    second = Student.objects.get(student_no="E2E0002")
    assert (str(second.birth_date), second.school_class.grade, second.school_class.number) == ("2016-09-01", 4, 2)
    first = Student.objects.get(student_no="E2E0001")
    assert (first.guardian_phone, first.school_class.grade) == ("13912345678", 7)
