"""The daily absence list (roster.attendance): encodings and formats, the upsert, row errors, scope, the command and
the admin upload (upload → preview → confirm), and the care rules run after the rows are stored."""

import io
from datetime import date

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from cases.models import Signal, SignalSource
from roster.attendance import AttendanceImport  # noqa: F401 (registers the import)
from roster.importing import ImportRequest, detect_kind, run_import
from roster.models import Absence, AbsenceKind, ImportJob, ImportStatus, StudentStatus
from tests.roster_files import csv_bytes, xlsx_bytes

HEADER = ["学校代码", "学号", "日期", "类型"]
TODAY = "2026-03-06 18:00 +0800"  # a Friday


@pytest.fixture(autouse=True)
def friday():
    with time_machine.travel(TODAY, tick=False):
        yield


def row(student, day="2026-03-04", kind="旷课"):
    return [student.school.code, student.student_no, day, kind]


def run(data, name="absences.csv", actor=None, dry_run=False, skip_invalid=False):
    return run_import(ImportRequest(kind="attendance", data=data, filename=name, actor=actor, dry_run=dry_run,
                                    skip_invalid=skip_invalid))  # fmt: skip


def stored():
    return sorted(Absence.objects.values_list("student__student_no", "date", "kind"))


def test_a_gbk_csv_is_read_and_stored(world):
    s = world.student_a1_3
    report = run(csv_bytes([HEADER, row(s), row(s, "2026-03-05", "病假")], encoding="gbk"))
    assert (report.refused, report.new, report.written) == ("", 2, True)
    assert [(d.isoformat(), k) for _n, d, k in stored()] == [("2026-03-04", "truancy"), ("2026-03-05", "sick")]


def test_an_xlsx_with_english_headers_and_values_and_a_utf8_bom_csv_are_read(world):
    s = world.student_a1_3
    english = [["School code", "Student number", "Date", "Type"], row(s, "2026-03-02", "Unexplained")]
    assert run(xlsx_bytes(english), "absences.xlsx").new == 1
    bom = "\ufeff".encode() + csv_bytes([HEADER, row(s, "2026/3/3", "事假")])
    assert run(bom).new == 1
    assert [k for *_x, k in stored()] == [AbsenceKind.UNEXPLAINED, AbsenceKind.PERSONAL]
    assert detect_kind(xlsx_bytes(english), "absences.xlsx") == "attendance"


def test_re_importing_changes_nothing_and_a_changed_type_updates_the_row(world):
    s = world.student_a1_3
    data = csv_bytes([HEADER, row(s), row(world.student_a1_5)])
    run(data)
    first = list(Absence.objects.order_by("pk").values_list("pk", "kind", "recorded_at"))
    again = run(data)
    assert (again.new, again.updated, again.unchanged) == (0, 0, 2)
    assert list(Absence.objects.order_by("pk").values_list("pk", "kind", "recorded_at")) == first
    changed = run(csv_bytes([HEADER, row(s, kind="病假")]))
    assert (changed.new, changed.updated) == (0, 1)
    assert Absence.objects.get(student=s).kind == AbsenceKind.SICK
    assert Absence.objects.count() == 2


def test_missing_columns_and_an_unreadable_encoding_refuse_the_file_and_change_nothing(world):
    refused = run(csv_bytes([["学校代码", "学号", "日期"], row(world.student_a1_3)[:3]]))
    assert "类型" in refused.refused and not refused.written
    garbled = run(b"\xff\xfe\x00\xd8" * 20)
    assert garbled.refused
    assert Absence.objects.count() == 0


def test_every_row_error_is_reported_and_nothing_is_written(world):
    s = world.student_a1_3
    world.student_a2.status = StudentStatus.GRADUATED
    world.student_a2.save()
    rows = [
        HEADER,
        row(s),  # 2: fine
        ["9999999999", "1", "2026-03-04", "旷课"],  # 3: unknown school
        [s.school.code, "nobody", "2026-03-04", "旷课"],  # 4: unknown student
        row(s, "2026-02-30"),  # 5: bad date
        row(s, "2026-03-09"),  # 6: a day to come
        row(s, "2026-03-03", "迟到"),  # 7: unknown type
        row(world.student_a2),  # 8: a leaver
        row(world.student_a1_5),  # 9 and 10: twice
        row(world.student_a1_5, kind="病假"),
    ]
    report = run(csv_bytes(rows))
    assert not report.written and Absence.objects.count() == 0
    assert sorted(report.error_lines) == [3, 4, 5, 6, 7, 8, 9, 10]
    messages = {e.line: e.message for e in report.errors}
    assert "学校代码" in messages[3] or "学校" in messages[3]
    assert "学号" in messages[4] or "学生" in messages[4]
    assert "未来" in messages[6] or "2026-03-09" in messages[6]
    assert "病假" in messages[7] and "未说明" in messages[7]
    assert "已毕业" in messages[8] or "毕业" in messages[8]
    assert "第 9 行" in messages[10] or "9" in messages[10]
    only_valid = run(csv_bytes(rows), skip_invalid=True)
    assert only_valid.written and stored() == [(s.student_no, date(2026, 3, 4), AbsenceKind.TRUANCY)]


def test_a_student_on_leave_may_be_listed(world):
    world.student_a1_3.status = StudentStatus.ON_LEAVE
    world.student_a1_3.save()
    assert run(csv_bytes([HEADER, row(world.student_a1_3)])).new == 1


def test_a_school_admin_imports_only_their_school_and_a_district_admin_their_district(world):
    rows = csv_bytes([HEADER, row(world.student_a1_3), row(world.student_a2), row(world.student_b1)])
    school = run(rows, actor=world.school_admin_a1)
    assert sorted(school.error_lines) == [3, 4]
    assert "范围" in school.errors[0].message
    district = run(rows, actor=world.admin_district_a, skip_invalid=True)
    assert district.error_lines == {4} and district.new == 2
    assert run(rows, actor=world.counselor_a1).error_lines == {2, 3, 4}  # a psychology teacher imports nothing


def test_the_import_runs_the_care_rules_once_per_episode(world):
    s = world.student_a1_3
    days = csv_bytes([HEADER, row(s, "2026-03-02"), row(s, "2026-03-03", "未说明"), row(s, "2026-03-04")])
    assert run(days).signals_raised == 1
    assert run(days).signals_raised == 0  # the same file again
    with time_machine.travel("2026-03-09 18:00 +0800", tick=False):
        assert run(csv_bytes([HEADER, row(s, "2026-03-05"), row(s, "2026-03-06")])).signals_raised == 0
    assert Signal.objects.filter(student=s, source=SignalSource.ABSENCE).count() == 1


def test_a_dry_run_writes_nothing_and_raises_nothing(world):
    s = world.student_a1_3
    data = csv_bytes([HEADER, row(s, "2026-03-02"), row(s, "2026-03-03"), row(s, "2026-03-04")])
    report = run(data, dry_run=True)
    assert (report.new, report.written) == (3, False)
    assert Absence.objects.count() == 0 and Signal.objects.count() == 0


def test_the_command_prints_a_summary_and_refuses_a_file_with_errors(world, tmp_path):
    s = world.student_a1_3
    good = tmp_path / "absences.csv"
    good.write_bytes(csv_bytes([HEADER, row(s, "2026-03-02"), row(s, "2026-03-03"), row(s, "2026-03-04")]))
    out = io.StringIO()
    call_command("import_attendance", str(good), "--dry-run", stdout=out)
    assert "nothing written" in out.getvalue() and Absence.objects.count() == 0
    call_command("import_attendance", str(good), stdout=out)
    assert "3 new" in out.getvalue() and "1 absence signals raised" in out.getvalue()
    bad = tmp_path / "bad.csv"
    bad.write_bytes(csv_bytes([HEADER, row(s, "2026-03-05", "迟到")]))
    with pytest.raises(CommandError, match="Nothing imported"):
        call_command("import_attendance", str(bad), stdout=out, stderr=io.StringIO())


def test_a_school_admin_uploads_previews_and_confirms_in_the_admin(client, world):
    client.force_login(world.school_admin_a1)
    s = world.student_a1_3
    data = xlsx_bytes([HEADER, row(s, "2026-03-02"), row(s, "2026-03-03"), row(s, "2026-03-04")])
    response = client.post(
        reverse("admin:roster_importjob_add"),
        {"file": SimpleUploadedFile("absences.xlsx", data), "kind": "attendance"},
    )
    job = ImportJob.objects.get()
    assert (job.kind, job.status, job.report["new"]) == ("attendance", ImportStatus.CHECKED, 3)
    preview = client.get(response.url).content.decode()
    assert "旷课" in preview and "2026-03-02" in preview and Absence.objects.count() == 0
    client.post(response.url, {"_confirm": "1"})
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE and Absence.objects.count() == 3
    assert Absence.objects.filter(import_job=job).count() == 3
    done = client.get(response.url).content.decode()
    assert 'id="signals-raised">1<' in done
    template = client.get(reverse("admin:roster_importjob_template", args=["attendance", "xlsx"]))
    assert template.status_code == 200
