"""The special-group vocabulary (issue 20 item 3): district and city admins keep it in the admin (add, rename, mark a
ledger or no longer in use; never delete; an exam-year group's grade is data, read-only), every admin reads it; a
roster file tags only the groups in use that are tagged one by one; an exam-year group's members follow the grade,
through a rollover too."""

import pytest
from django.urls import reverse
from django.utils import translation

from roster.importing import ImportRequest, run_import
from roster.models import SpecialGroup, Student, StudentStatus
from roster.rollover import rollover_run
from roster.special_groups import members
from roster.stages import SchoolStage
from tests.factories.roster import SchoolClassFactory, SchoolFactory, StudentFactory
from tests.roster_files import STUDENT_HEADER, csv_bytes, student_row

CHANGELIST = "admin:roster_specialgroup_changelist"


def change_url(group):
    return reverse("admin:roster_specialgroup_change", args=[group.pk])


def form(group, **changes):
    data = {"code": group.code, "name": group.name, "active": "on" if group.active else ""}
    if group.ledger:
        data["ledger"] = "on"
    data.update(changes)
    return {k: v for k, v in data.items() if v != ""}


@pytest.mark.parametrize("editor", ["admin_district_a", "city_admin"])
def test_district_and_city_admins_add_and_rename_groups_with_history(client, world, editor):
    user = getattr(world, editor)
    client.force_login(user)
    response = client.post(reverse("admin:roster_specialgroup_add"),
                           {"code": "bullied", "name": "受欺凌", "ledger": "on", "active": "on"})  # fmt: skip
    assert response.status_code == 302
    group = SpecialGroup.objects.get(code="bullied")
    assert (group.name, group.ledger, group.active, group.grade) == ("受欺凌", True, True, None)
    response = client.post(change_url(group), form(group, name="校园欺凌受害", active=""))
    assert response.status_code == 302
    group.refresh_from_db()
    assert (group.name, group.active) == ("校园欺凌受害", False)
    latest, first = group.history.order_by("-history_id")[:2]
    assert (latest.history_user, first.history_user) == (user, user)
    assert latest.history_change_reason.startswith("vocabulary changed:") and "name" in latest.history_change_reason
    assert client.get(reverse("admin:roster_specialgroup_history", args=[group.pk])).status_code == 200


def test_the_code_is_set_once_and_nobody_deletes_a_group(client, world):
    client.force_login(world.city_admin)
    group = SpecialGroup.objects.get(code="left_behind")
    client.post(change_url(group), form(group, code="renamed"))
    group.refresh_from_db()
    assert group.code == "left_behind"
    assert client.get(reverse("admin:roster_specialgroup_delete", args=[group.pk])).status_code == 403
    assert client.post(reverse("admin:roster_specialgroup_delete", args=[group.pk]), {"post": "yes"}).status_code == 403
    assert SpecialGroup.objects.filter(pk=group.pk).exists()


def test_an_exam_year_groups_grade_is_read_only_and_it_is_no_ledger(client, world):
    client.force_login(world.admin_district_a)
    grade_9 = SpecialGroup.objects.get(code="grade_9")
    page = client.get(change_url(grade_9)).content.decode()
    assert 'name="grade"' not in page and "9" in page
    client.post(change_url(grade_9), form(grade_9, grade="5", name="初三"))
    grade_9.refresh_from_db()
    assert (grade_9.grade, grade_9.name) == (9, "初三")  # renamed, the grade untouched
    response = client.post(change_url(grade_9), form(grade_9, ledger="on"))
    assert response.status_code == 200 and "不作为一人一案台账" in response.content.decode()
    grade_9.refresh_from_db()
    assert not grade_9.ledger


@pytest.mark.parametrize("reader", ["school_admin_a1", "centre_district_a", "auditor_district_a", "superuser"])
def test_every_admin_reads_the_names_and_only_the_editors_change_them(client, world, reader):
    client.force_login(getattr(world, reader))
    page = client.get(reverse(CHANGELIST))
    assert page.status_code == 200 and "留守儿童" in page.content.decode() and "家庭经济困难" in page.content.decode()
    group = SpecialGroup.objects.get(code="left_behind")
    editor = reader == "superuser"
    response = client.post(change_url(group), form(group, name="改名"))
    assert response.status_code == (302 if editor else 403)
    group.refresh_from_db()
    assert group.name == ("改名" if editor else "留守儿童")
    assert client.post(reverse("admin:roster_specialgroup_add"), {"code": "x", "name": "某群体"}).status_code == (
        302 if editor else 403
    )  # fmt: skip
    assert SpecialGroup.objects.filter(code="x").exists() == editor


@pytest.mark.parametrize("person", ["principal_a1", "counselor_a1", "homeroom_a1_3"])
def test_people_without_an_admin_role_do_not_see_the_vocabulary_admin(client, world, person):
    client.force_login(getattr(world, person))
    assert client.get(reverse(CHANGELIST)).status_code in (302, 403)


# --- The roster file ------------------------------------------------------------------------------------------------


def _import(world, data, *, dry_run=False):
    with translation.override("zh-hans"):
        return run_import(ImportRequest(kind="students", data=data, filename="roster.csv",
                                        actor=world.school_admin_a1, dry_run=dry_run))  # fmt: skip


def test_a_file_naming_an_exam_year_group_or_a_retired_one_is_refused_on_that_row(world):
    SpecialGroup.objects.filter(code="hardship").update(active=False)
    data = csv_bytes([
        STUDENT_HEADER,
        student_row(student_no="20250701", groups="九年级"),
        student_row(student_no="20250702", groups="留守儿童、困境"),
        student_row(student_no="20250703", groups="家庭经济困难"),
    ])  # fmt: skip
    report = _import(world, data)
    by_line = {e.line: (e.column, e.message) for e in report.errors}
    assert by_line[2][0] == "特殊群体" and "九年级" in by_line[2][1] and "9年级的全体学生" in by_line[2][1]
    assert by_line[3][0] == "特殊群体" and "“困境”已停用" in by_line[3][1]
    assert 4 not in by_line
    assert not report.written and not Student.objects.filter(student_no__startswith="202507").exists()


def test_an_unknown_group_lists_only_the_groups_a_file_may_tag(world):
    SpecialGroup.objects.filter(code="hardship").update(active=False)
    report = _import(world, csv_bytes([STUDENT_HEADER, student_row(groups="外星人")]))
    (error,) = report.errors
    assert "留守儿童" in error.message and "家庭经济困难" in error.message
    assert "困境" not in error.message and "九年级" not in error.message


def test_a_retired_groups_tags_stay_when_the_file_is_imported_again(world):
    student = world.student_a1_3
    hardship = SpecialGroup.objects.get(code="hardship")
    student.special_groups.add(hardship, SpecialGroup.objects.get(code="left_behind"))
    hardship.active = False
    hardship.save()
    row = student_row(student_no=student.student_no, name=student.name, gender=student.gender, groups="单亲家庭")
    report = _import(world, csv_bytes([STUDENT_HEADER, row]))
    assert report.errors == [] and report.written
    assert sorted(student.special_groups.values_list("code", flat=True)) == ["hardship", "single_parent"]


# --- Exam-year membership follows the grade --------------------------------------------------------------------------


def test_exam_year_members_are_the_grades_enrolled_students_through_a_rollover(world):
    junior = SchoolFactory(district=world.district_a, stage=SchoolStage.JUNIOR)
    grade_8 = SchoolClassFactory(school=junior, grade=8, number=1)
    grade_9 = SchoolClassFactory(school=junior, grade=9, number=1)
    rising = StudentFactory(school_class=grade_8)
    leaving = StudentFactory(school_class=grade_9)
    on_leave = StudentFactory(school_class=grade_9, status=StudentStatus.ON_LEAVE)
    StudentFactory(school_class=grade_9, status=StudentStatus.TRANSFERRED)
    nine = SpecialGroup.objects.get(code="grade_9")
    in_school = Student.objects.filter(school=junior)
    assert set(members(nine, in_school)) == {leaving, on_leave}
    assert not rising.special_groups.exists()  # never tagged

    rollover_run(actor=world.admin_district_a, scope=world.district_a, school_year=2026)

    # The grade-8 class moved up into grade 9; the grade-9 class graduated (archived) and its enrolled students with
    # it, while the student on leave stays on leave in the archived class: no longer a current grade-9 student.
    assert set(members(nine, in_school)) == {rising}
    assert not rising.special_groups.exists()
