"""The duty roster (值班表) and the school calendar: school-day arithmetic, who is on duty, the gaps, and the pages."""

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from roster import duty
from roster.models import (
    AccessLogEntry,
    AccessOutcome,
    CalendarDay,
    CalendarDayKind,
    DutyKind,
    DutySlot,
    RoleAssignment,
)
from roster.roles import Role
from roster.spreadsheets import xlsx_bytes
from tests.factories.roster import UserFactory, staff_with_role

SHANGHAI = ZoneInfo("Asia/Shanghai")
MON, TUE, WED = 0, 1, 2


def at(text: str) -> datetime:
    """'2026-11-16 10:00' in Beijing time."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def slot(where, user, kind, weekday, starts, ends, **extra):
    return duty.duty_slot_add(
        None, where=where, user=user, kind=kind, weekday=weekday, starts=time.fromisoformat(starts),
        ends=time.fromisoformat(ends), **extra,
    )  # fmt: skip


PSY, LEADER, CENTRE = DutyKind.PSYCHOLOGY_TEACHER, DutyKind.SCHOOL_LEADER, DutyKind.DISTRICT_CENTRE


# --- The calendar ---------------------------------------------------------------------------------------------


def test_a_school_day_after_friday_is_monday_at_the_same_time(world):
    assert duty.add_school_days(world.district_a, at("2026-11-13 10:00"), 1) == at("2026-11-16 10:00")
    assert duty.add_school_days(world.district_a, at("2026-11-13 10:00"), 0) == at("2026-11-13 10:00")
    assert duty.add_school_days(world.district_a, at("2026-11-12 16:45"), 3) == at("2026-11-17 16:45")


def test_a_district_holiday_is_skipped(world):
    duty.calendar_day_set(None, district=world.district_a, day=date(2026, 11, 16), kind=CalendarDayKind.HOLIDAY)
    assert not duty.is_school_day(world.district_a, date(2026, 11, 16))
    assert duty.is_school_day(world.district_b, date(2026, 11, 16))  # another district's calendar is its own
    assert duty.add_school_days(world.district_a, at("2026-11-13 10:00"), 1) == at("2026-11-17 10:00")


def test_national_day_is_no_school_day_from_the_national_calendar(world):
    assert not duty.is_school_day(world.district_a, date(2026, 10, 1))  # a Thursday
    # 30 September + 1 school day: 1-7 October are the National Day holiday, so Thursday 8 October.
    assert duty.add_school_days(world.district_a, at("2026-09-30 10:00"), 1) == at("2026-10-08 10:00")


def test_a_make_up_saturday_counts_as_a_school_day(world):
    assert duty.is_school_day(world.district_a, date(2026, 10, 10))  # 调休上班, from chinesecalendar
    assert duty.add_school_days(world.district_a, at("2026-10-09 10:00"), 1) == at("2026-10-10 10:00")
    duty.calendar_day_set(None, district=world.district_a, day=date(2026, 11, 21), kind=CalendarDayKind.WORKDAY)
    assert duty.add_school_days(world.district_a, at("2026-11-20 09:00"), 1) == at("2026-11-21 09:00")


def test_a_start_off_school_days_counts_from_the_next_mornings_school_hours(world):
    assert duty.add_school_days(world.district_a, at("2026-11-14 15:00"), 0) == at("2026-11-16 07:30")
    assert duty.add_school_days(world.district_a, at("2026-11-14 15:00"), 1) == at("2026-11-17 07:30")
    assert duty.add_school_days(world.district_a, at("2026-10-01 15:00"), 1) == at("2026-10-09 07:30")


def test_a_year_the_national_calendar_does_not_know_falls_back_to_monday_to_friday(world):
    assert duty.is_school_day(world.district_a, date(2099, 1, 5))  # a Monday
    assert not duty.is_school_day(world.district_a, date(2099, 1, 3))  # a Saturday
    with pytest.raises(ValidationError):
        duty.calendar_seed_public_holidays(None, world.district_a, 2099)


def test_school_hours_and_the_end_of_the_school_day(world):
    school = world.school_a1
    assert duty.in_school_hours(school, at("2026-11-16 10:00"))
    assert not duty.in_school_hours(school, at("2026-11-16 07:00"))
    assert not duty.in_school_hours(school, at("2026-11-16 17:30"))
    assert not duty.in_school_hours(school, at("2026-10-01 10:00"))
    assert duty.in_school_hours(school, at("2026-10-10 10:00"))
    assert duty.school_day_end(school, at("2026-11-16 10:00")) == at("2026-11-16 17:30")
    assert duty.school_day_end(school, at("2026-11-16 06:00")) == at("2026-11-16 17:30")
    assert duty.school_day_end(school, at("2026-11-16 18:00")) == at("2026-11-17 17:30")
    assert duty.school_day_end(school, at("2026-11-13 18:00")) == at("2026-11-16 17:30")
    school.day_starts, school.day_ends = time(8), time(16)
    school.save()
    assert not duty.in_school_hours(school, at("2026-11-16 16:30"))
    assert duty.school_day_end(school, at("2026-11-14 10:00")) == at("2026-11-16 16:00")


def test_seeding_the_national_holidays_is_idempotent_and_keeps_the_districts_own_marks(world):
    duty.calendar_day_set(None, district=world.district_a, day=date(2026, 10, 10), kind=CalendarDayKind.HOLIDAY)
    added = duty.calendar_seed_public_holidays(world.centre_district_a, world.district_a, 2026)
    assert added > 20
    rows = CalendarDay.objects.filter(district=world.district_a)
    assert rows.get(date=date(2026, 10, 1)).kind == CalendarDayKind.HOLIDAY
    assert rows.get(date=date(2026, 10, 1)).name == "国庆节"
    assert rows.get(date=date(2026, 10, 10)).kind == CalendarDayKind.HOLIDAY  # the district's own mark stays
    assert rows.get(date=date(2026, 9, 20)).kind == CalendarDayKind.WORKDAY
    count = rows.count()
    assert duty.calendar_seed_public_holidays(world.centre_district_a, world.district_a, 2026) == 0
    assert rows.count() == count
    assert rows.get(date=date(2026, 10, 1)).history.first().history_user == world.centre_district_a
    with pytest.raises(PermissionDenied):
        duty.calendar_seed_public_holidays(world.admin_district_b, world.district_a, 2026)


# --- Who is on duty -------------------------------------------------------------------------------------------


def test_the_psychology_teacher_and_the_leader_on_duty_at_a_school(world):
    slot(world.school_a1, world.counselor_a1, PSY, MON, "07:30", "17:30")
    slot(world.school_a1, world.principal_a1, LEADER, MON, "07:30", "12:00")
    assert duty.on_duty_now(world.school_a1, at("2026-11-16 10:00")) == [world.counselor_a1, world.principal_a1]
    assert duty.on_duty_now(world.school_a1, at("2026-11-16 10:00"), kind=PSY) == [world.counselor_a1]
    assert duty.on_duty_now(world.school_a1, at("2026-11-16 13:00")) == [world.counselor_a1]
    assert duty.on_duty_now(world.school_a1, at("2026-11-16 17:30")) == []
    assert duty.on_duty_now(world.school_a1, at("2026-11-17 10:00")) == []
    assert duty.on_duty_now(world.school_a2, at("2026-11-16 10:00")) == []


def test_a_slot_counts_only_within_its_valid_dates(world):
    slot(world.school_a1, world.counselor_a1, PSY, MON, "07:30", "17:30", valid_until=date(2026, 11, 9))
    assert duty.on_duty_now(world.school_a1, at("2026-11-09 10:00")) == [world.counselor_a1]
    assert duty.on_duty_now(world.school_a1, at("2026-11-16 10:00")) == []


def test_a_teacher_who_lost_the_role_or_the_account_is_not_on_duty(world):
    slot(world.school_a1, world.counselor_a1, PSY, MON, "07:30", "17:30")
    RoleAssignment.objects.filter(user=world.counselor_a1, role=Role.PSYCHOLOGY_TEACHER).delete()
    assert duty.on_duty_now(world.school_a1, at("2026-11-16 10:00")) == []
    slot(world.school_a1, world.principal_a1, LEADER, MON, "07:30", "17:30")
    world.principal_a1.is_active = False
    world.principal_a1.save()
    assert duty.on_duty_now(world.school_a1, at("2026-11-16 10:00")) == []


def test_the_district_duty_line_overnight_and_round_the_clock(world):
    slot(world.district_a, world.centre_district_a, CENTRE, MON, "17:30", "07:30")
    slot(world.district_a, world.centre_district_a, CENTRE, WED, "00:00", "00:00")  # 24 hours
    assert duty.on_duty_now(world.district_a, at("2026-11-16 20:00")) == [world.centre_district_a]
    assert duty.on_duty_now(world.district_a, at("2026-11-17 06:00")) == [world.centre_district_a]  # Monday's night
    assert duty.on_duty_now(world.district_a, at("2026-11-17 08:00")) == []
    assert duty.on_duty_now(world.district_a, at("2026-11-16 06:00")) == []  # Sunday's night: nobody
    assert duty.on_duty_now(world.district_a, at("2026-11-18 12:00")) == [world.centre_district_a]
    assert duty.on_duty_now(world.district_a, at("2026-11-19 00:30")) == []
    assert duty.on_duty_now(world.district_b, at("2026-11-16 20:00")) == []


def test_the_pure_rule_agrees_with_the_query(world):
    slots = [
        slot(world.district_a, world.centre_district_a, CENTRE, MON, "17:30", "07:30"),
        slot(world.district_a, world.centre_district_a, CENTRE, WED, "00:00", "00:00"),
        slot(world.school_a1, world.counselor_a1, PSY, TUE, "08:00", "12:00"),
    ]
    for day in range(16, 20):
        for hour in range(0, 24):
            moment = at(f"2026-11-{day} {hour:02d}:15")
            for s in slots:
                in_db = DutySlot.objects.filter(duty.covers_q(moment), pk=s.pk).exists()
                assert duty.slot_covers(s, moment) == in_db, (s, moment)


@pytest.mark.parametrize("slots", [1, 30])
def test_who_is_on_duty_is_one_query_however_many_slots(world, django_assert_num_queries, slots):
    teachers = [world.counselor_a1] + [
        staff_with_role(Role.PSYCHOLOGY_TEACHER, world.school_a1) for _ in range(slots - 1)
    ]
    for teacher in teachers:
        slot(world.school_a1, teacher, PSY, MON, "07:30", "17:30")
        slot(world.school_a1, teacher, PSY, TUE, "07:30", "17:30")
    with django_assert_num_queries(1):
        assert len(duty.on_duty_now(world.school_a1, at("2026-11-16 10:00"))) == slots
    with django_assert_num_queries(1):
        duty.on_duty_now(world.district_a, at("2026-11-16 10:00"))


def test_the_gaps_are_school_hours_of_school_days_without_a_psychology_teacher(world):
    slot(world.school_a1, world.counselor_a1, PSY, MON, "07:30", "12:00")
    slot(world.school_a1, world.counselor_a1, PSY, TUE, "07:00", "18:00")
    slot(world.school_a1, world.principal_a1, LEADER, WED, "07:30", "17:30")  # a leader does not fill the gap
    thu = staff_with_role(Role.PSYCHOLOGY_TEACHER, world.school_a1)
    slot(world.school_a1, thu, PSY, 3, "07:30", "10:00")
    slot(world.school_a1, thu, PSY, 3, "11:00", "17:30")
    gone = staff_with_role(Role.PSYCHOLOGY_TEACHER, world.school_a1)
    slot(world.school_a1, gone, PSY, 4, "07:30", "17:30")
    RoleAssignment.objects.filter(user=gone).delete()
    assert duty.duty_gaps(world.school_a1, date(2026, 11, 16)) == [
        (date(2026, 11, 16), time(12), time(17, 30)),
        (date(2026, 11, 18), time(7, 30), time(17, 30)),
        (date(2026, 11, 19), time(10), time(11)),
        (date(2026, 11, 20), time(7, 30), time(17, 30)),
    ]


def test_the_national_day_week_has_gaps_only_on_its_school_days(world):
    for weekday in range(5):
        slot(world.school_a1, world.counselor_a1, PSY, weekday, "07:30", "17:30")
    # 5-7 October holidays; Thursday and Friday covered; Saturday 10 October is a make-up school day with nobody.
    assert duty.duty_gaps(world.school_a1, date(2026, 10, 5)) == [(date(2026, 10, 10), time(7, 30), time(17, 30))]


def test_a_duty_needs_the_role_at_that_school(world):
    with pytest.raises(ValidationError):
        slot(world.school_a1, world.counselor_a2, PSY, MON, "07:30", "17:30")
    with pytest.raises(ValidationError):
        slot(world.school_a1, world.homeroom_a1_3, PSY, MON, "07:30", "17:30")
    with pytest.raises(ValidationError):
        slot(world.school_a1, world.counselor_a1, CENTRE, MON, "07:30", "17:30")
    with pytest.raises(PermissionDenied):
        duty.duty_slot_add(world.counselor_a1, where=world.school_a1, user=world.counselor_a1, kind=PSY,
                           weekday=MON, starts=time(8), ends=time(9))  # fmt: skip
    assert not DutySlot.objects.exists()


# --- The pages ------------------------------------------------------------------------------------------------


@pytest.fixture
def principal_a2(world):
    return staff_with_role(Role.PRINCIPAL, world.school_a2, username="principal_a2")


def test_the_principal_adds_a_slot_and_sees_it(client, world):
    client.force_login(world.principal_a1)
    url = reverse("duty_school", args=[world.school_a1.pk])
    data = {"user": world.counselor_a1.pk, "kind": PSY, "weekday": MON, "starts": "07:30", "ends": "17:30"}
    response = client.post(url, data)
    assert response.status_code == 302
    added = DutySlot.objects.get()
    assert (added.school, added.user, added.weekday) == (world.school_a1, world.counselor_a1, MON)
    assert added.history.first().history_user == world.principal_a1
    page = client.get(url + "?week=2026-11-16").content.decode()
    assert world.counselor_a1.name in page
    assert "duty-gaps" in page  # Tuesday to Friday have nobody


def test_only_staff_with_the_role_at_the_school_can_be_chosen(client, world):
    client.force_login(world.principal_a1)
    url = reverse("duty_school", args=[world.school_a1.pk])
    page = client.get(url).content.decode()
    assert world.counselor_a1.name in page and world.counselor_a2.name not in page
    data = {"user": world.counselor_a2.pk, "kind": PSY, "weekday": MON, "starts": "07:30", "ends": "17:30"}
    assert client.post(url, data).status_code == 200
    assert not DutySlot.objects.exists()


@pytest.mark.parametrize(
    "persona, method, expected",
    [
        ("principal_a1", "get", 200),
        ("centre_district_a", "get", 200),  # a district centre looks at its schools' tables
        ("centre_district_a", "post", 404),  # and does not keep them
        ("principal_a2", "get", 404),
        ("principal_a2", "post", 404),
        ("counselor_a1", "get", 404),
        ("school_admin_a1", "get", 404),
        ("admin_district_b", "get", 404),
        ("nobody", "get", 404),
    ],
)
def test_who_may_see_and_keep_a_schools_duty_table(client, world, principal_a2, persona, method, expected):
    user = principal_a2 if persona == "principal_a2" else getattr(world, persona)
    client.force_login(user)
    url = reverse("duty_school", args=[world.school_a1.pk])
    data = {"user": world.counselor_a1.pk, "kind": PSY, "weekday": MON, "starts": "07:30", "ends": "17:30"}
    response = getattr(client, method)(url, data) if method == "post" else client.get(url)
    assert response.status_code == expected
    assert not DutySlot.objects.exists()
    if expected == 404:
        assert AccessLogEntry.objects.filter(actor_id=user.pk, outcome=AccessOutcome.DENIED).exists()


def test_a_missing_school_looks_like_a_forbidden_one(client, world):
    client.force_login(world.principal_a1)
    assert client.get(reverse("duty_school", args=[999999])).status_code == 404


def test_another_schools_principal_cannot_remove_a_slot(client, world, principal_a2):
    added = slot(world.school_a1, world.counselor_a1, PSY, MON, "07:30", "17:30")
    client.force_login(principal_a2)
    assert client.post(reverse("duty_slot_remove", args=[added.pk])).status_code == 404
    client.force_login(world.principal_a1)
    assert client.post(reverse("duty_slot_remove", args=[added.pk])).status_code == 302
    assert not DutySlot.objects.exists()


def test_the_district_centre_keeps_the_duty_line_and_the_calendar(client, world):
    client.force_login(world.centre_district_a)
    url = reverse("duty_district", args=[world.district_a.pk])
    assert client.get(reverse("duty")).url == url
    data = {"user": world.centre_district_a.pk, "kind": CENTRE, "weekday": MON, "starts": "17:30", "ends": "07:30"}
    assert client.post(url, data).status_code == 302
    assert duty.on_duty_now(world.district_a, at("2026-11-17 06:00")) == [world.centre_district_a]
    day = {"form": "calendar", "day": "2026-11-16", "kind": CalendarDayKind.HOLIDAY, "name": "运动会"}
    assert client.post(url, day).status_code == 302
    assert not duty.is_school_day(world.district_a, date(2026, 11, 16))
    page = client.get(url + "?year=2026").content.decode()
    assert "运动会" in page and world.school_a1.name in page
    client.force_login(world.admin_district_b)
    assert client.get(url).status_code == 404


def test_the_holiday_import_button_is_idempotent(client, world):
    client.force_login(world.centre_district_a)
    url = reverse("duty_calendar_seed", args=[world.district_a.pk])
    assert client.post(url, {"year": 2026}).status_code == 302
    count = CalendarDay.objects.filter(district=world.district_a).count()
    assert count > 20
    client.post(url, {"year": 2026})
    assert CalendarDay.objects.filter(district=world.district_a).count() == count
    client.force_login(world.principal_a1)
    assert client.post(url, {"year": 2026}).status_code == 404


def test_the_top_bar_links_the_duty_roster_for_principals_only(client, world):
    for persona, shown in (("principal_a1", True), ("centre_district_a", True), ("counselor_a1", False)):
        client.force_login(getattr(world, persona))
        page = client.get(reverse("notifications")).content.decode()
        assert (f'href="{reverse("duty")}">值班表</a>' in page) is shown, persona


# --- Importing ------------------------------------------------------------------------------------------------

HEADER = ["星期", "开始", "结束", "工号", "用户名", "类别"]


def _upload(client, school, rows, name="duty.xlsx"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    data = xlsx_bytes([("值班表", HEADER, rows)])
    return client.post(reverse("duty_import", args=[school.pk]), {"file": SimpleUploadedFile(name, data)})


@pytest.fixture
def staffed(world):
    world.counselor_a1.school, world.counselor_a1.staff_no = world.school_a1, "T001"
    world.counselor_a1.save()
    return world


def test_a_good_duty_file_is_imported_once(client, staffed):
    world = staffed
    rows = [
        ["一", "07:30", "12:00", "T001", "", "心理教师"],
        ["2", "7:30", "17:30", "", "counselor_a1", "心理教师"],
        ["星期三", "08:00", "12:00", "", "principal_a1", "校级领导"],
    ]
    client.force_login(world.principal_a1)
    assert _upload(client, world.school_a1, rows).status_code == 302
    assert DutySlot.objects.filter(school=world.school_a1).count() == 3
    assert duty.on_duty_now(world.school_a1, at("2026-11-17 10:00")) == [world.counselor_a1]
    assert _upload(client, world.school_a1, rows).status_code == 302
    assert DutySlot.objects.count() == 3  # re-importing the same file adds nothing


def test_a_file_with_a_bad_row_imports_nothing_and_names_every_bad_row(client, staffed):
    world = staffed
    rows = [
        ["一", "07:30", "12:00", "T001", "", "心理教师"],
        ["八", "07:30", "12:00", "T001", "", "心理教师"],
        ["二", "七点半", "12:00", "", "homeroom_a1_3", "心理教师"],
        ["三", "07:30", "12:00", "", "counselor_a1", "区县值班"],
    ]
    client.force_login(world.principal_a1)
    response = _upload(client, world.school_a1, rows)
    assert response.status_code == 400
    assert not DutySlot.objects.exists()
    report = response.context["import_report"]
    assert [line for line, _message in report.errors] == [3, 4, 5]
    page = response.content.decode()
    assert "八" in page and "七点半" in page and "homeroom_a1_3" in page


def test_a_file_without_the_columns_is_refused(client, staffed):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(staffed.principal_a1)
    data = xlsx_bytes([("值班表", ["姓名"], [["张三"]])])
    url = reverse("duty_import", args=[staffed.school_a1.pk])
    response = client.post(url, {"file": SimpleUploadedFile("x.xlsx", data)})
    assert response.status_code == 400 and response.context["import_report"].refused
    assert not DutySlot.objects.exists()


def test_another_schools_principal_cannot_import(client, staffed, principal_a2):
    client.force_login(principal_a2)
    assert _upload(client, staffed.school_a1, [["一", "07:30", "12:00", "T001", "", "心理教师"]]).status_code == 404
    assert not DutySlot.objects.exists()


def test_the_import_template_downloads(client, world):
    client.force_login(world.principal_a1)
    response = client.get(reverse("duty_import_template"))
    assert response.status_code == 200 and response.content[:2] == b"PK"
    client.force_login(UserFactory())
    assert client.get(reverse("duty_import_template")).status_code == 404


# --- The demo -------------------------------------------------------------------------------------------------


def test_the_demo_has_a_duty_roster(demo_district):
    from roster.demo import seed_demo_duty
    from roster.models import School, User

    school = School.objects.get(name="东湖第一小学")
    counselor = User.objects.get(username="counselor")
    assert counselor in duty.on_duty_now(school, at("2026-11-16 10:00"))
    assert duty.on_duty_now(school.district, at("2026-11-15 03:00")) == [User.objects.get(username="district_centre")]
    assert duty.duty_gaps(school, date(2026, 11, 16)) == []
    count = DutySlot.objects.count(), CalendarDay.objects.count()
    seed_demo_duty()
    assert (DutySlot.objects.count(), CalendarDay.objects.count()) == count
    assert CalendarDay.objects.filter(district=school.district, date=date(2026, 10, 1)).exists()
