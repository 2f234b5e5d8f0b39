"""Screening access codes: issued by a school admin, one live code per enrolled student, printed as slips and a list."""

import io
from datetime import timedelta

import openpyxl
import pytest
from django.contrib.messages import get_messages
from django.contrib.messages.storage.cookie import CookieStorage
from django.core.exceptions import PermissionDenied
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from roster import admin_access
from roster.access_codes import (
    ALPHABET,
    CODE_LENGTH,
    SYSTEM_USERNAME,
    access_code_list_xlsx,
    access_codes_for_print,
    access_codes_issue,
    live_q,
    normalize_code,
)
from roster.models import AccessCode, SchoolClass, Student, StudentStatus
from tests.factories.roster import StudentFactory


def _issue(actor, *classes):
    return access_codes_issue(actor=actor, students=Student.objects.filter(school_class__in=classes))


def _live(student):
    return list(AccessCode.objects.filter(live_q(), student=student))


def _slips_url(*classes):
    return reverse("access_slips") + "?classes=" + ",".join(str(c.pk) for c in classes)


def _spaced(code):
    return f"{code[:4]} {code[4:]}"


# --- Issuing ----------------------------------------------------------------------------------------------------


def test_codes_are_short_and_use_only_unambiguous_characters(world):
    for _ in range(20):
        StudentFactory(school_class=world.class_a1_3)
    codes = _issue(world.school_admin_a1, world.class_a1_3)
    assert len(codes) == 21
    assert all(len(c.code) == CODE_LENGTH and set(c.code) <= set(ALPHABET) for c in codes)
    assert not set("01OIL") & set(ALPHABET)
    assert len({c.code for c in codes}) == 21
    assert {c.created_by for c in codes} == {world.school_admin_a1}


def test_codes_come_back_ordered_by_class_then_student_number(world):
    late = StudentFactory(school_class=world.class_a1_3, student_no="0001")
    codes = _issue(world.school_admin_a1, world.class_a1_5, world.class_a1_3)
    assert [c.student for c in codes] == [late, world.student_a1_3, world.student_a1_5]


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("abcd efgh", "ABCDEFGH"),
        (" ABCD-EFGH ", "ABCDEFGH"),
        ("ＡＢＣＤ２３４５", "ABCD2345"),  # full-width input method
        ("ABCD　EFGH", "ABCDEFGH"),  # ideographic space
        ("ABCD0EFG", ""),  # 0 is never in a code
        ("ABCDOEFG", ""),
        ("abc;drop", ""),
        ("", ""),
    ],
)
def test_what_a_student_types_is_normalised_or_rejected(typed, stored):
    assert normalize_code(typed) == stored


def test_reissuing_leaves_one_live_code_per_student(world):
    first = _issue(world.school_admin_a1, world.class_a1_3)[0]
    second = _issue(world.school_admin_a1, world.class_a1_3)[0]
    assert second.code != first.code
    assert _live(world.student_a1_3) == [second]
    first.refresh_from_db()
    assert first.expires_at is not None and first.expires_at <= timezone.now()


def test_a_used_code_keeps_its_record_when_a_new_one_is_issued(world):
    used = _issue(world.school_admin_a1, world.class_a1_3)[0]
    AccessCode.objects.filter(pk=used.pk).update(used_at=timezone.now())
    _issue(world.school_admin_a1, world.class_a1_3)
    used.refresh_from_db()
    assert used.expires_at is None and used.used_at is not None


def test_a_school_admin_cannot_issue_for_another_schools_students_and_nothing_is_written(world):
    with pytest.raises(PermissionDenied):
        _issue(world.school_admin_a1, world.class_a1_3, world.class_b1)
    assert not AccessCode.objects.exists()


@pytest.mark.parametrize("persona", ["admin_district_a", "principal_a1", "counselor_a1", "homeroom_a1_3", "nobody"])
def test_only_the_schools_admin_issues_codes(world, persona):
    with pytest.raises(PermissionDenied):
        _issue(getattr(world, persona), world.class_a1_3)
    assert not AccessCode.objects.exists()


@pytest.mark.parametrize("status", [StudentStatus.TRANSFERRED, StudentStatus.GRADUATED, StudentStatus.ON_LEAVE])
def test_students_who_are_not_enrolled_get_no_code(world, status):
    StudentFactory(school_class=world.class_a1_3, status=status)
    codes = _issue(world.school_admin_a1, world.class_a1_3)
    assert [c.student for c in codes] == [world.student_a1_3]


def test_an_expiry_in_the_past_is_refused(world):
    with pytest.raises(ValueError):
        access_codes_issue(
            actor=world.school_admin_a1,
            students=Student.objects.filter(pk=world.student_a1_3.pk),
            expires_at=timezone.now() - timedelta(minutes=1),
        )


def test_codes_of_students_who_left_are_not_printed(world):
    _issue(world.school_admin_a1, world.class_a1_3)
    Student.objects.filter(pk=world.student_a1_3.pk).update(status=StudentStatus.TRANSFERRED)
    assert access_codes_for_print(actor=world.school_admin_a1, school_classes=[world.class_a1_3]) == []


# --- The slips page and the list --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "status"),
    [
        ("school_admin_a1", 200),
        ("superuser", 200),
        ("school_admin_b1", 404),
        ("admin_district_a", 404),  # sees the school, does not run it
        ("city_admin", 404),
        ("principal_a1", 404),
        ("counselor_a1", 404),
        ("homeroom_a1_3", 404),
        ("nobody", 404),
    ],
)
def test_who_may_print_the_slips_of_a_class(client, world, persona, status):
    code = _issue(world.school_admin_a1, world.class_a1_3)[0].code
    client.force_login(getattr(world, persona))
    response = client.get(_slips_url(world.class_a1_3))
    assert response.status_code == status
    if status == 200:
        page = response.content.decode()
        assert "王小明" in page and _spaced(code) in page and world.school_a1.name in page
        assert "@page { size: A4; margin: 12mm }" in page
        assert response["Cache-Control"].startswith("max-age=0")


def test_a_class_outside_the_scope_makes_the_whole_request_404(client, world):
    _issue(world.school_admin_a1, world.class_a1_3)
    client.force_login(world.school_admin_a1)
    assert client.get(_slips_url(world.class_a1_3, world.class_b1)).status_code == 404
    assert client.get(reverse("access_slips") + "?classes=x").status_code == 404
    assert client.get(reverse("access_slips")).status_code == 404


def test_the_slips_page_asks_an_anonymous_visitor_to_sign_in(client, world):
    response = client.get(_slips_url(world.class_a1_3))
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_the_slips_show_only_the_live_code(client, world):
    old = _issue(world.school_admin_a1, world.class_a1_3)[0].code
    new = _issue(world.school_admin_a1, world.class_a1_3)[0].code
    client.force_login(world.school_admin_a1)
    page = client.get(_slips_url(world.class_a1_3)).content.decode()
    assert _spaced(new) in page and _spaced(old) not in page


def test_the_slips_page_query_count_does_not_grow_with_the_class(client, world):
    client.force_login(world.school_admin_a1)
    _issue(world.school_admin_a1, world.class_a1_3)
    with CaptureQueriesContext(connection) as small:
        assert client.get(_slips_url(world.class_a1_3)).status_code == 200
    for _ in range(29):
        StudentFactory(school_class=world.class_a1_3)
    _issue(world.school_admin_a1, world.class_a1_3)
    with CaptureQueriesContext(connection) as large:
        response = client.get(_slips_url(world.class_a1_3))
    assert len(response.context["codes"]) == 30 and len(response.context["pages"]) == 4
    # Of them 4 write the access log entry.
    assert len(large.captured_queries) == len(small.captured_queries) <= 12, [q["sql"] for q in large.captured_queries]


def _rows(xlsx_bytes):
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx_bytes)).active
    return [[cell.value for cell in row] for row in sheet.iter_rows()]


def test_the_teachers_list_has_a_header_and_one_row_per_student(world):
    for n in range(3):
        StudentFactory(school_class=world.class_a1_3, student_no=f"00{n}")
    codes = _issue(world.school_admin_a1, world.class_a1_3)
    rows = _rows(access_code_list_xlsx(codes))
    assert rows[0] == ["学校", "班级", "学号", "姓名", "访问码"]
    assert len(rows) == 1 + 4
    assert rows[1] == [world.school_a1.name, "7年级3班", "000", codes[0].student.name, codes[0].code]
    assert all(isinstance(value, str) for row in rows for value in row)  # "000" stays "000"


def test_a_formula_looking_name_is_written_as_text(world):
    StudentFactory(school_class=world.class_a1_3, name='=HYPERLINK("http://evil.example","x")', student_no="0")
    codes = _issue(world.school_admin_a1, world.class_a1_3)
    sheet = openpyxl.load_workbook(io.BytesIO(access_code_list_xlsx(codes))).active
    assert sheet["D2"].value == '\'=HYPERLINK("http://evil.example","x")'
    assert sheet["D2"].data_type == "s"


def test_the_list_downloads_as_an_attachment_named_after_the_school(client, world):
    _issue(world.school_admin_a1, world.class_a1_3)
    client.force_login(world.school_admin_a1)
    response = client.get(reverse("access_code_list") + f"?classes={world.class_a1_3.pk}")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith(f'attachment; filename="access-codes-{world.school_a1.code}-')
    assert len(_rows(response.content)) == 2
    client.force_login(world.school_admin_b1)
    assert client.get(reverse("access_code_list") + f"?classes={world.class_a1_3.pk}").status_code == 404


# --- The command ------------------------------------------------------------------------------------------------


def test_the_command_issues_codes_and_keeps_them_off_the_screen(world):
    StudentFactory(school_class=world.class_a1_5)
    out = io.StringIO()
    call_command("issue_access_codes", "--school", world.school_a1.code, stdout=out)
    codes = list(AccessCode.objects.values_list("code", flat=True))
    assert len(codes) == 3 and "3" in out.getvalue()
    assert not any(code in out.getvalue() for code in codes)
    assert set(AccessCode.objects.values_list("created_by__username", flat=True)) == {SYSTEM_USERNAME}
    assert not AccessCode.objects.first().created_by.is_active


def test_the_command_prints_codes_only_with_show_and_narrows_to_a_class(world, tmp_path):
    out = io.StringIO()
    target = tmp_path / "codes.xlsx"
    call_command(
        "issue_access_codes",
        *("--school", world.school_a1.code, "--grade", "7", "--class-number", "3"),
        *("--user", "school_admin_a1", "--show", "--xlsx", str(target)),
        stdout=out,
    )
    code = AccessCode.objects.get()
    assert code.student == world.student_a1_3 and code.created_by == world.school_admin_a1
    assert code.code in out.getvalue()
    assert _rows(target.read_bytes())[1][-1] == code.code


def test_the_command_applies_the_users_scope(world):
    with pytest.raises(CommandError):
        call_command("issue_access_codes", "--school", world.school_a1.code, "--user", "school_admin_b1")
    assert not AccessCode.objects.exists()


# --- The admin --------------------------------------------------------------------------------------------------


def _admin_request(user):
    request = RequestFactory().post("/admin/roster/schoolclass/")
    request.user = user
    request._messages = CookieStorage(request)
    return request


def _class_admin():
    from django.contrib import admin

    return admin.site._registry[SchoolClass]


def test_the_admin_action_issues_codes_and_opens_the_slips(world):
    request = _admin_request(world.school_admin_a1)
    classes = _class_admin().get_queryset(request).filter(pk__in=[world.class_a1_3.pk, world.class_a1_5.pk])
    response = admin_access.issue_access_codes_action(_class_admin(), request, classes)
    assert response.status_code == 302
    assert response["Location"] == reverse("access_slips") + f"?classes={world.class_a1_3.pk}%2C{world.class_a1_5.pk}"
    assert AccessCode.objects.count() == 2


def test_the_admin_action_refuses_a_district_admin_and_writes_nothing(world):
    request = _admin_request(world.admin_district_a)
    response = admin_access.issue_access_codes_action(
        _class_admin(), request, SchoolClass.objects.filter(pk=world.class_a1_3.pk)
    )
    assert response is None
    assert not AccessCode.objects.exists()
    assert [m.level_tag for m in get_messages(request)] == ["error"]


def test_the_code_list_in_the_admin_is_scoped_masked_and_read_only(world):
    codes = _issue(world.school_admin_a1, world.class_a1_3)
    model_admin = admin_access.AccessCodeAdmin(AccessCode, admin_access.admin.site)
    own, other = _admin_request(world.school_admin_a1), _admin_request(world.school_admin_b1)
    assert list(model_admin.get_queryset(own)) == codes
    assert list(model_admin.get_queryset(other)) == []
    assert model_admin.has_view_permission(own, codes[0]) and not model_admin.has_view_permission(other, codes[0])
    assert not model_admin.has_view_permission(_admin_request(world.principal_a1))
    assert not any(
        (model_admin.has_add_permission(own), model_admin.has_change_permission(own, codes[0]))
        + (model_admin.has_delete_permission(own, codes[0]),)
    )
    assert model_admin.masked_code(codes[0]) == codes[0].code[:2] + "******"
    assert model_admin.masked_name(codes[0]) == "王*明"
