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
    AccessCodeRefused,
    access_code_list_xlsx,
    access_code_reissue,
    access_codes_for_print,
    access_codes_issue,
    live_q,
    normalize_code,
)
from roster.models import AccessAction, AccessCode, AccessLogEntry, SchoolClass, Student, StudentStatus
from screening.definitions import RiskTier
from screening.models import ResultSource, ScreeningResult
from tests.factories.roster import StudentFactory
from tests.factories.screening import CampaignFactory


def _issue(actor, *classes):
    return access_codes_issue(actor=actor, students=Student.objects.filter(school_class__in=classes))


def _live(student):
    return list(AccessCode.objects.filter(live_q(), student=student))


def _slips_url(*classes):
    return reverse("access_slips") + "?classes=" + ",".join(str(c.pk) for c in classes)


def _spaced(code):
    return f"{code[:4]} {code[4:]}"


@pytest.fixture
def campaign(world):
    return CampaignFactory(schools=[world.school_a1])


def _answer(campaign, code):
    """What the portal stores when a student answers with `code`: the code used, one result."""
    now = timezone.now()
    AccessCode.objects.filter(pk=code.pk).update(used_at=now)
    ScreeningResult.objects.create(
        campaign=campaign, student=code.student, source=ResultSource.PORTAL, answers={}, scores={},
        tier=RiskTier.GREEN, ruleset=campaign.ruleset, submitted_at=now, access_code=code,
    )  # fmt: skip


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


def test_issuing_twice_keeps_the_printed_codes_and_skips_students_who_answered(world, campaign):
    answered = StudentFactory(school_class=world.class_a1_3, student_no="0002")
    first = {c.student: c for c in _issue(world.school_admin_a1, world.class_a1_3)}
    _answer(campaign, first[answered])
    newcomer = StudentFactory(school_class=world.class_a1_3, student_no="0003")

    second = _issue(world.school_admin_a1, world.class_a1_3)

    assert [c.student for c in second] == [newcomer]
    assert (second.already_live, second.answered) == (1, 1)
    assert _live(world.student_a1_3) == [first[world.student_a1_3]]  # the slip already printed still works
    assert _live(answered) == []
    assert AccessCode.objects.filter(student=answered).count() == 1


def test_a_student_with_another_campaign_still_to_answer_gets_a_code(world, campaign):
    CampaignFactory(schools=[world.school_a1])
    (code,) = _issue(world.school_admin_a1, world.class_a1_3)
    _answer(campaign, code)
    assert [c.student for c in _issue(world.school_admin_a1, world.class_a1_3)] == [world.student_a1_3]


def test_reissue_expires_only_that_students_code_and_gives_a_new_one(world):
    other = StudentFactory(school_class=world.class_a1_3)
    before = {c.student: c for c in _issue(world.school_admin_a1, world.class_a1_3)}
    new = access_code_reissue(actor=world.school_admin_a1, student=world.student_a1_3)
    assert _live(world.student_a1_3) == [new] and new.code != before[world.student_a1_3].code
    assert _live(other) == [before[other]]


def test_reissue_for_a_student_who_answered_is_refused_and_writes_nothing(world, campaign):
    (code,) = _issue(world.school_admin_a1, world.class_a1_3)
    _answer(campaign, code)
    with pytest.raises(AccessCodeRefused):
        access_code_reissue(actor=world.school_admin_a1, student=world.student_a1_3)
    assert AccessCode.objects.count() == 1


def test_reissue_by_another_schools_admin_is_refused(world):
    (code,) = _issue(world.school_admin_a1, world.class_a1_3)
    with pytest.raises(PermissionDenied):
        access_code_reissue(actor=world.school_admin_b1, student=world.student_a1_3)
    assert _live(world.student_a1_3) == [code]


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
    new = access_code_reissue(actor=world.school_admin_a1, student=world.student_a1_3).code
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
    assert response["Location"].startswith(
        reverse("access_slips") + f"?classes={world.class_a1_3.pk}%2C{world.class_a1_5.pk}&since="
    )
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


# --- Issuing again and re-issuing one slip ----------------------------------------------------------------------


def _messages(request):
    return [str(m) for m in get_messages(request)]


def test_issuing_again_prints_only_the_new_slips_and_says_what_it_left(client, world, campaign):
    answered = StudentFactory(school_class=world.class_a1_3, student_no="0002")
    first = {c.student: c for c in _issue(world.school_admin_a1, world.class_a1_3)}
    _answer(campaign, first[answered])
    newcomer = StudentFactory(school_class=world.class_a1_3, student_no="0003", name="赵小燕")
    request = _admin_request(world.school_admin_a1)

    response = admin_access.issue_access_codes_action(
        _class_admin(), request, SchoolClass.objects.filter(pk=world.class_a1_3.pk)
    )

    assert _messages(request) == ["新通知单 1 张；已有有效访问码（未改动）1 人；已完成测评 1 人。"]
    client.force_login(world.school_admin_a1)
    page = client.get(response["Location"]).content.decode()
    (new,) = _live(newcomer)
    assert _spaced(new.code) in page and "赵小燕" in page
    assert _spaced(first[world.student_a1_3].code) not in page and "王小明" not in page
    assert "这些班级有 1 名学生持有此前打印的访问码" in page
    everything = client.get(_slips_url(world.class_a1_3)).content.decode()  # the lost printout, same codes
    assert _spaced(first[world.student_a1_3].code) in everything and _spaced(new.code) in everything


def test_issuing_when_everyone_holds_a_code_issues_nothing_and_offers_the_reprint(world):
    _issue(world.school_admin_a1, world.class_a1_3)
    request = _admin_request(world.school_admin_a1)
    response = admin_access.issue_access_codes_action(
        _class_admin(), request, SchoolClass.objects.filter(pk=world.class_a1_3.pk)
    )
    assert response is None and AccessCode.objects.count() == 1
    (message,) = _messages(request)
    assert message.startswith("新通知单 0 张；已有有效访问码（未改动）1 人；已完成测评 0 人。")
    assert f'href="{_slips_url(world.class_a1_3).replace(",", "%2C")}"' in message


def _reissue_url(student):
    return reverse("admin:roster_accesscode_reissue", args=[student.pk])


def test_the_reissue_page_says_what_will_happen_and_changes_nothing(client, world):
    (code,) = _issue(world.school_admin_a1, world.class_a1_3)
    client.force_login(world.school_admin_a1)
    page = client.get(_reissue_url(world.student_a1_3)).content.decode()
    assert "已为 王*明 打印的通知单上的访问码将立即失效" in page and 'method="post"' in page
    assert "王小明" not in page
    assert _live(world.student_a1_3) == [code]


def test_reissuing_one_slip_expires_only_that_code_prints_the_new_slip_and_is_logged(client, world):
    other = StudentFactory(school_class=world.class_a1_3)
    before = {c.student: c for c in _issue(world.school_admin_a1, world.class_a1_3)}
    client.force_login(world.school_admin_a1)

    response = client.post(_reissue_url(world.student_a1_3))

    assert response.status_code == 302
    (new,) = _live(world.student_a1_3)
    assert new != before[world.student_a1_3] and _live(other) == [before[other]]
    page = client.get(response["Location"]).content.decode()
    assert _spaced(new.code) in page and _spaced(before[other].code) not in page
    assert AccessLogEntry.objects.filter(
        action=AccessAction.CHANGE, object_type="roster.accesscode", object_ids=str(new.pk)
    ).exists()


def test_reissuing_for_a_student_who_answered_is_refused(client, world, campaign):
    (code,) = _issue(world.school_admin_a1, world.class_a1_3)
    _answer(campaign, code)
    client.force_login(world.school_admin_a1)
    assert "已完成测评，无需补发" in client.get(_reissue_url(world.student_a1_3)).content.decode()
    response = client.post(_reissue_url(world.student_a1_3))
    assert response.status_code == 409 and "已完成测评，无需补发" in response.content.decode()
    assert AccessCode.objects.count() == 1


@pytest.mark.parametrize("persona", ["school_admin_b1", "admin_district_a"])
def test_reissuing_outside_ones_school_looks_missing(client, world, persona):
    (code,) = _issue(world.school_admin_a1, world.class_a1_3)
    client.force_login(getattr(world, persona))
    assert client.get(_reissue_url(world.student_a1_3)).status_code == 404
    assert client.post(_reissue_url(world.student_a1_3)).status_code == 404
    assert _live(world.student_a1_3) == [code]


def test_the_command_run_again_keeps_the_codes_and_reports_the_counts(world):
    call_command("issue_access_codes", "--school", world.school_a1.code, stdout=io.StringIO())
    codes = set(AccessCode.objects.values_list("code", flat=True))
    out = io.StringIO()
    call_command("issue_access_codes", "--school", world.school_a1.code, stdout=out)
    assert set(AccessCode.objects.filter(live_q()).values_list("code", flat=True)) == codes
    assert "0 new slips; 2 students already have a working code (not changed); 0 already answered" in out.getvalue()
