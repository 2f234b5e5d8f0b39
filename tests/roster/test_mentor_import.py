"""Mentors (全员导师制) from the school's file, and one mentor for a whole class: who mentors whom, history kept, the
MENTOR role granted, and a file with any problem changing nothing."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from roster import mentoring
from roster.mentor_import import mentor_import
from roster.models import Mentorship, RoleAssignment, StudentStatus
from roster.roles import Role
from tests.factories.roster import StudentFactory, UserFactory, staff_with_role
from tests.roster_files import csv_bytes, xlsx_bytes

HEADER = ["学校代码", "学号", "导师工号"]
A1 = "9901010001"


@pytest.fixture
def staff(world):
    """Two teachers of school A1 with staff numbers (no role yet), one of school A2; a second student in class 7-3."""
    world.teacher_li = UserFactory(username="li", name="李老师", school=world.school_a1, staff_no="T001")
    world.teacher_zhao = UserFactory(username="zhao", name="赵老师", school=world.school_a1, staff_no="T002",
                                     phone="13900001111")  # fmt: skip
    world.teacher_a2 = UserFactory(username="a2t", name="钱老师", school=world.school_a2, staff_no="T900")
    world.student_a1_3b = StudentFactory(school_class=world.class_a1_3, student_no="S0002")
    world.student_a1_3.student_no = "S0001"
    world.student_a1_3.save()
    return world


def _current(student):
    return Mentorship.objects.filter(student=student, left_at__isnull=True).values_list("user__username", flat=True)


def test_a_gb18030_csv_assigns_mentors_grants_the_role_and_a_second_run_changes_nothing(staff):
    w = staff
    data = csv_bytes([HEADER, [A1, "S0001", "T001"], [A1, "S0002", "T001"]], encoding="gb18030")

    checked = mentor_import(actor=w.school_admin_a1, data=data, filename="导师.csv", dry_run=True)
    assert (checked.refused, checked.errors, checked.new, checked.written) == ("", [], 2, False)
    assert not Mentorship.objects.exists()

    report = mentor_import(actor=w.school_admin_a1, data=data, filename="导师.csv", dry_run=False)
    assert report.written and report.new == 2
    assert list(_current(w.student_a1_3)) == ["li"] and list(_current(w.student_a1_3b)) == ["li"]
    assert RoleAssignment.objects.filter(user=w.teacher_li, role=Role.MENTOR, school=w.school_a1).count() == 1
    record = Mentorship.objects.get(student=w.student_a1_3).history.get()
    assert (record.history_user, record.history_change_reason) == (w.school_admin_a1, "mentor import: 导师.csv")

    again = mentor_import(actor=w.school_admin_a1, data=data, filename="导师.csv", dry_run=False)
    assert (again.new, again.updated, again.unchanged) == (0, 0, 2)
    assert Mentorship.objects.count() == 2 and RoleAssignment.objects.filter(role=Role.MENTOR).count() == 1


def test_a_new_mentor_ends_the_current_one_and_keeps_the_history(staff):
    w = staff
    mentor_import(actor=w.school_admin_a1, data=xlsx_bytes([HEADER, [A1, "S0001", "T001"]]), filename="a.xlsx",
                  dry_run=False)  # fmt: skip
    report = mentor_import(actor=w.school_admin_a1, data=xlsx_bytes([HEADER, [A1, "S0001", "T002"]]),
                           filename="b.xlsx", dry_run=False)  # fmt: skip
    assert report.updated == 1
    rows = list(Mentorship.objects.filter(student=w.student_a1_3).order_by("started_at", "pk"))
    assert [(m.user.username, m.left_at is None) for m in rows] == [("li", False), ("zhao", True)]


def test_mentors_by_mobile_number_when_staff_numbers_are_not_kept(staff):
    w = staff
    data = csv_bytes([["学校代码", "学号", "导师手机号"], [A1, "S0001", "139-0000-1111"]])
    report = mentor_import(actor=w.school_admin_a1, data=data, filename="m.csv", dry_run=False)
    assert report.written and list(_current(w.student_a1_3)) == ["zhao"]


def test_every_row_problem_is_named_and_nothing_is_written(staff):
    w = staff
    staff_with_role(Role.HOMEROOM_TEACHER, w.class_a1_5)
    w.student_a1_5.student_no, w.student_a1_5.status = "S0005", StudentStatus.GRADUATED
    w.student_a1_5.save()
    StudentFactory(school_class=w.class_a1_3, student_no="S0003")
    data = csv_bytes([
        HEADER,
        [A1, "S0001", "T001"],  # fine, but the file has errors: not written either
        [A1, "S9999", "T001"],  # no such student
        [A1, "S0002", "T900"],  # a teacher of school A2
        [A1, "S0003", "T777"],  # nobody
        [A1, "S0001", "T002"],  # the student twice
        [A1, "S0005", "T001"],  # graduated
        ["9901020001", "S0001", "T001"],  # another district's school
        [A1, "S0002", ""],  # no mentor named
    ])  # fmt: skip
    report = mentor_import(actor=w.school_admin_a1, data=data, filename="bad.csv", dry_run=False)
    messages = {e.line: e.message for e in report.errors}
    assert messages == {
        3: "本校没有这个学号的学生。",
        4: "该教职工在其他学校任职。",
        5: "本校没有这个工号的教职工。",
        6: "与本文件第 2 行重复。",
        7: "该学生已离校。",
        8: "该学校不在您的管辖范围内。",
        9: "请填写导师：工号或手机号。",
    }
    assert not report.written and not Mentorship.objects.exists()
    assert not RoleAssignment.objects.filter(role=Role.MENTOR).exists()


def test_a_file_without_a_mentor_column_is_refused_whole(staff):
    report = mentor_import(actor=staff.school_admin_a1, data=csv_bytes([["学校代码", "学号"], [A1, "S0001"]]),
                           filename="x.csv", dry_run=False)  # fmt: skip
    assert "导师工号" in report.refused and not Mentorship.objects.exists()
    broken = mentor_import(actor=staff.school_admin_a1, data=b"\x00\xff\xfe garbage", filename="x.xlsx")
    assert broken.refused and not Mentorship.objects.exists()


def test_only_the_school_admin_assigns_and_only_staff_of_the_school(staff):
    w = staff
    with pytest.raises(PermissionDenied):
        mentoring.mentor_assign(actor=w.counselor_a1, student=w.student_a1_3, mentor=w.teacher_li)
    with pytest.raises(PermissionDenied):
        mentoring.mentor_assign(actor=w.school_admin_a2, student=w.student_a1_3, mentor=w.teacher_li)
    with pytest.raises(ValidationError):
        mentoring.mentor_assign(actor=w.school_admin_a1, student=w.student_a1_3, mentor=w.teacher_a2)
    assert not Mentorship.objects.exists()


def test_one_mentor_for_every_student_of_a_class(staff):
    w = staff
    mentoring.mentor_assign(actor=w.school_admin_a1, student=w.student_a1_3, mentor=w.teacher_zhao)
    changed = mentoring.mentor_assign_class(actor=w.school_admin_a1, school_class=w.class_a1_3, mentor=w.teacher_li)
    assert changed == 2
    assert list(_current(w.student_a1_3)) == ["li"] and list(_current(w.student_a1_3b)) == ["li"]
    assert Mentorship.objects.filter(user=w.teacher_zhao, left_at__isnull=False).count() == 1
    assert list(_current(w.student_a1_5)) == []  # another class: untouched


def test_the_admin_checks_then_imports_the_file_and_assigns_a_class(client, staff):
    w = staff
    client.force_login(w.school_admin_a1)
    changelist = client.get(reverse("admin:roster_mentorship_changelist"))
    assert changelist.status_code == 200 and reverse("admin:roster_mentorship_import") in changelist.content.decode()
    url = reverse("admin:roster_mentorship_import")
    data = csv_bytes([HEADER, [A1, "S0001", "T001"]])

    checked = client.post(url, {"file": SimpleUploadedFile("m.csv", data), "_check": "1"})
    assert checked.status_code == 200 and "import-preview" in checked.content.decode()
    assert not Mentorship.objects.exists()
    done = client.post(url, {"file": SimpleUploadedFile("m.csv", data), "_import": "1"})
    assert done.status_code == 200 and list(_current(w.student_a1_3)) == ["li"]

    bad = client.post(url, {"file": SimpleUploadedFile("m.csv", csv_bytes([HEADER, [A1, "S9999", "T001"]])),
                            "_import": "1"})  # fmt: skip
    assert "本校没有这个学号的学生。" in bad.content.decode()

    assign = reverse("admin:roster_mentorship_assign_class")
    response = client.post(assign, {"school_class": w.class_a1_3.pk, "mentor": w.teacher_zhao.pk})
    assert response.status_code == 302
    assert list(_current(w.student_a1_3)) == ["zhao"] and list(_current(w.student_a1_3b)) == ["zhao"]
    # A class of another school is not offered: a forged id is a form error, nothing changes.
    forged = client.post(assign, {"school_class": w.class_a2.pk, "mentor": w.teacher_zhao.pk})
    assert forged.status_code == 200 and not Mentorship.objects.filter(student=w.student_a2).exists()


def test_a_teacher_never_reaches_the_mentor_admin(client, staff):
    client.force_login(staff.homeroom_a1_3)
    assert client.get(reverse("admin:roster_mentorship_import")).status_code == 403
    client.force_login(staff.centre_district_a)  # an admin-site role that edits no student
    assert client.get(reverse("admin:roster_mentorship_import")).status_code == 404
