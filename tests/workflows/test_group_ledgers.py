"""The special-groups ledger (特殊群体学生台账, issue 20 item 3) at /reports/ledgers/groups/: the members of the ledger
groups of the reader's scope with class, group and help record (status, responsible person, review date, overdue
marked), counts per group checked by hand, filters, masked names, XLSX export logged like the other ledgers, a
constant number of queries, and the pages that write a help record from a row. Homeroom teachers and mentors: 404."""

import datetime
import io

import openpyxl
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from cases import help_records
from cases.models import HelpRecord, HelpStatus
from roster.masking import mask_name
from roster.models import AccessLogEntry, SpecialGroup, StudentStatus
from roster.roles import Role
from tests.factories.roster import SchoolClassFactory, StudentFactory, staff_with_role

LEDGER, XLSX = "reports:ledger_groups", "reports:ledger_groups_xlsx"


def group(code: str) -> SpecialGroup:
    return SpecialGroup.objects.get(code=code)


def days(n: int) -> datetime.date:
    return timezone.localdate() + datetime.timedelta(days=n)


def record(world, student, code="left_behind", review=30, responsible=None, actor=None):
    return help_records.help_record_create(
        actor=actor or world.counselor_a1, student=student, group=group(code), measures="每周谈心",
        responsible=responsible or world.homeroom_a1_3, review_on=days(review),
    )  # fmt: skip


def overdue(rec: HelpRecord, by: int = 2) -> HelpRecord:
    HelpRecord.objects.filter(pk=rec.pk).update(review_on=days(-by))  # as if the review date had come and gone
    rec.refresh_from_db()
    return rec


@pytest.fixture
def members(world):
    """School A1: 王小明 (7-3) left-behind with a record, and single-parent without one; three more left-behind in 7-5
    (one with an overdue record, one without, one with an ended record); one who graduated (not a member any more);
    a 学业困难 student (not a ledger group). School A2: one left-behind with a record. School B1: one, no record."""
    m = {"xiaoming": world.student_a1_3}
    m["xiaoming"].special_groups.add(group("left_behind"), group("single_parent"))
    m["late"], m["none"], m["ended"] = (StudentFactory(school_class=world.class_a1_5) for _ in range(3))
    m["gone"] = StudentFactory(school_class=world.class_a1_5, status=StudentStatus.GRADUATED)
    m["academic"] = StudentFactory(school_class=world.class_a1_5)
    m["academic"].special_groups.add(group("academic_difficulty"))
    for key in ("late", "none", "ended", "gone"):
        m[key].special_groups.add(group("left_behind"))
    m["a2"], m["b1"] = world.student_a2, world.student_b1
    m["a2"].special_groups.add(group("left_behind"))
    m["b1"].special_groups.add(group("left_behind"))
    m["rec_xiaoming"] = record(world, m["xiaoming"])
    m["rec_late"] = overdue(record(world, m["late"], responsible=world.principal_a1))
    ended = record(world, m["ended"])
    help_records.help_record_end(actor=world.counselor_a1, record=ended, reason="已好转")
    m["rec_a2"] = record(world, m["a2"], responsible=world.counselor_a2, actor=world.counselor_a2)
    return m


def get(client, user, **params):
    client.force_login(user)
    response = client.get(reverse(LEDGER), params)
    assert response.status_code == 200
    return response


def shown(response) -> list[list[str]]:
    return [[str(c.text) for c in cells] for cells, _action in response.context["rows"]]


def counts(response) -> dict[str, tuple[int, int, int, int]]:
    """The groups with members; every ledger group in use has its row (test_a_ledger_group_nobody_is_in_...)."""
    rows = {c.group: (c.members, c.with_record, c.without_record, c.overdue) for c in response.context["counts"]}
    return {name: row for name, row in rows.items() if row != (0, 0, 0, 0)}


def test_a_ledger_group_nobody_is_in_yet_shows_as_a_row_of_zeros(client, world, members):
    rows = {c.group: c.members for c in get(client, world.principal_a1).context["counts"]}
    assert rows["家庭经济困难"] == 0 and rows["危机事件相关人员"] == 0  # ledger groups nobody was tagged with
    assert "学业困难" not in rows and "九年级" not in rows  # not ledger groups


def test_the_principal_reads_the_schools_members_with_their_records_and_counts_by_hand(client, world, members):
    response = get(client, world.principal_a1)
    rows = shown(response)
    # By class, then student number, then group: 7-3 first (王小明 twice), then 7-5's three left-behind students.
    assert [(r[1], r[3], r[4]) for r in rows] == [
        ("7年级3班", mask_name("王小明"), "留守儿童"),
        ("7年级3班", mask_name("王小明"), "单亲家庭"),
        *(("7年级5班", mask_name(members[k].name), "留守儿童") for k in ("late", "none", "ended")),
    ]  # fmt: skip
    by_student = {(r[2], r[4]): r for r in rows}
    xiaoming = by_student[(members["xiaoming"].student_no, "留守儿童")]
    assert xiaoming[5:] == ["进行中", world.homeroom_a1_3.name, days(30).isoformat()]
    assert by_student[(members["xiaoming"].student_no, "单亲家庭")][5:] == ["尚无", "", ""]
    late = by_student[(members["late"].student_no, "留守儿童")]
    assert late[5:] == ["进行中", world.principal_a1.name, f"{days(-2).isoformat()} (逾期)"]
    assert by_student[(members["ended"].student_no, "留守儿童")][5] == "已结束"
    assert "王小明" not in response.content.decode()  # masked
    # Members / with a record / without / overdue, per group: counted by hand from the fixture.
    assert counts(response) == {"留守儿童": (4, 3, 1, 1), "单亲家庭": (1, 0, 1, 0)}
    overdue_cells = [cell for cells, _ in response.context["rows"] for cell in cells if cell.flag == "overdue"]
    assert len(overdue_cells) == 1


def test_the_district_centre_reads_its_district_and_the_city_centre_the_city(client, world, members):
    district = get(client, world.centre_district_a)
    assert counts(district) == {"留守儿童": (5, 4, 1, 1), "单亲家庭": (1, 0, 1, 0)}
    assert get(client, world.auditor_district_a).context["page"].paginator.count == 6
    city = get(client, world.city_centre)
    assert counts(city) == {"留守儿童": (6, 4, 2, 1), "单亲家庭": (1, 0, 1, 0)}
    assert city.context["show_district"]
    assert counts(get(client, world.counselor_a2)) == {"留守儿童": (1, 1, 0, 0)}


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"without_record": "on"}, {("xiaoming", "单亲家庭"), ("none", "留守儿童")}),
        ({"review_overdue": "on"}, {("late", "留守儿童")}),
        ({"group": "single_parent"}, {("xiaoming", "单亲家庭")}),
        ({"group": "academic_difficulty"}, {("academic", "学业困难")}),
        ({"school": "a2"}, {("a2", "留守儿童")}),
        ({"school": "a1", "school_class": "class_a1_3"}, {("xiaoming", "留守儿童"), ("xiaoming", "单亲家庭")}),
        ({"without_record": "on", "group": "left_behind"}, {("none", "留守儿童")}),
    ],
)
def test_filters(client, world, members, params, expected):
    query = {}
    for key, value in params.items():
        if key == "group":
            query[key] = group(value).pk
        elif key in ("school", "school_class"):
            query[key] = getattr(world, value if key == "school_class" else f"school_{value}").pk
        else:
            query[key] = value
    response = get(client, world.centre_district_a, **query)
    names = {members[k].student_no: k for k in members if not k.startswith("rec_")}
    assert {(names[r[2]], r[4]) for r in shown(response)} == expected
    assert response.context["page"].paginator.count == len(expected)  # the total the counts give


def test_an_exam_year_group_lists_the_grades_students(client, world, members):
    grade_9 = SchoolClassFactory(school=world.school_a2, grade=9, number=2)
    nine = [StudentFactory(school_class=grade_9) for _ in range(2)]
    response = get(client, world.centre_district_a, group=group("grade_9").pk)
    assert sorted(r[2] for r in shown(response)) == sorted(s.student_no for s in nine)
    assert {r[4] for r in shown(response)} == {"九年级"}
    assert counts(response) == {"九年级": (2, 0, 2, 0)}
    assert all(action == ("", "") for _cells, action in response.context["rows"])  # not a ledger: no help record


def test_a_filter_outside_the_scope_widens_nothing(client, world, members):
    client.force_login(world.principal_a1)
    for params in ({"school": world.school_b1.pk}, {"district": world.district_b.pk},
                   {"school": world.school_a1.pk, "school_class": world.class_a2.pk}):  # fmt: skip
        response = client.get(reverse(LEDGER), params)
        assert response.context["form"].errors and response.context["rows"] == []
        assert client.get(reverse(XLSX), params).status_code == 404


@pytest.mark.parametrize("person", ["homeroom_a1_3", "school_admin_a1", "admin_district_a", "nobody", "mentor"])
def test_homeroom_teachers_mentors_and_admins_get_404_logged(client, world, members, person):
    user = staff_with_role(Role.MENTOR, world.school_a1) if person == "mentor" else getattr(world, person)
    client.force_login(user)
    before = AccessLogEntry.objects.filter(outcome="denied").count()
    assert client.get(reverse(LEDGER)).status_code == 404
    assert client.get(reverse(XLSX)).status_code == 404
    assert AccessLogEntry.objects.filter(outcome="denied").count() == before + 2


def test_the_page_is_logged_and_the_export_holds_the_same_rows_logged(client, world, members):
    response = get(client, world.centre_district_a, group=group("left_behind").pk)
    page_ids = [members[k].pk for k in ("xiaoming", "late", "none", "ended", "a2")]
    entry = AccessLogEntry.objects.filter(action="list", object_type="roster.student").latest("pk")
    assert sorted(int(i) for i in entry.object_ids.split(",")) == sorted(page_ids)
    export = client.get(reverse(XLSX), {"group": group("left_behind").pk})
    assert export.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(b"".join(export.streaming_content))).active
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    assert rows[0][:5] == ["学校", "班级", "学号", "学生", "群体"]
    assert [[v or "" for v in r[:8]] for r in rows[1:]] == [r[:8] for r in shown(response)]
    logged = AccessLogEntry.objects.filter(action="export", object_type="roster.student").latest("pk")
    assert sorted(int(i) for i in logged.object_ids.split(",")) == sorted(page_ids)


def test_a_page_runs_the_same_queries_at_1_and_40_rows(client, world, django_assert_max_num_queries):
    client.force_login(world.centre_district_a)
    one = StudentFactory(school_class=world.class_a1_5)
    one.special_groups.add(group("left_behind"))
    filtered = {"school": world.school_a1.pk, "without_record": "on"}
    with CaptureQueriesContext(connection) as few:
        assert client.get(reverse(LEDGER)).status_code == 200
    with CaptureQueriesContext(connection) as few_filtered:
        assert client.get(reverse(LEDGER), filtered).status_code == 200
    assert len(few.captured_queries) <= 17  # PostgreSQL reads one more (its session)
    for n in range(40):
        student = StudentFactory(school_class=world.class_a1_5 if n % 2 else world.class_a2)
        student.special_groups.add(group("left_behind"), group("single_parent"))
        if n % 3 == 0:
            staff = world.principal_a1 if n % 2 else world.counselor_a2  # of the student's school
            record(world, student, responsible=staff, actor=staff)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(reverse(LEDGER))
    assert len(response.context["rows"]) == 50  # a full page
    with django_assert_max_num_queries(len(few_filtered.captured_queries)):
        response = client.get(reverse(LEDGER), filtered)
    assert len(response.context["rows"]) > 20


# --- Writing a help record from a row ---------------------------------------------------------------------------------


def test_the_psychology_teacher_writes_a_help_record_from_the_row(client, world, members):
    response = get(client, world.counselor_a1, without_record="on")
    actions = {cells[2].text + cells[4].text: action for cells, action in response.context["rows"]}
    label, url = actions[members["none"].student_no + "留守儿童"]
    assert label == "写一人一案"
    form = client.get(url)
    assert form.status_code == 200 and mask_name(members["none"].name) in form.content.decode()
    responsible = form.context["form"].fields["responsible"].queryset
    assert world.homeroom_a1_3 in responsible and world.counselor_a2 not in responsible
    post = {"student": members["none"].pk, "group": group("left_behind").pk, "measures": "联系父母；每周谈心",
            "responsible": world.homeroom_a1_3.pk, "review_on": days(14).isoformat()}  # fmt: skip
    done = client.post(reverse("reports:help_record_new"), post)
    rec = HelpRecord.objects.get(student=members["none"])
    assert done.status_code == 302 and done["Location"] == reverse("reports:help_record", args=[rec.pk])
    assert (rec.created_by, rec.status) == (world.counselor_a1, HelpStatus.ACTIVE)
    again = client.post(reverse("reports:help_record_new"), post)  # a duplicate: a clear message, nothing written
    assert again.status_code == 400 and "已有" in again.content.decode()
    foreign = client.post(reverse("reports:help_record_new"), {**post, "student": members["xiaoming"].pk,
                          "group": group("single_parent").pk, "responsible": world.counselor_a2.pk})  # fmt: skip
    assert foreign.status_code == 400 and HelpRecord.objects.count() == 5


def test_the_district_centre_reads_the_ledger_but_writes_no_record(client, world, members):
    response = get(client, world.centre_district_a, without_record="on")
    assert all(label != "写一人一案" for _cells, (label, _url) in response.context["rows"])
    url = reverse("reports:help_record_new") + f"?student={members['none'].pk}&group={group('left_behind').pk}"
    assert client.get(url).status_code == 404
    assert client.get(reverse("reports:help_record", args=[members["rec_late"].pk])).status_code == 200


def test_a_record_page_changes_and_ends_with_reasons_and_the_responsible_person_reads_theirs(client, world, members):
    rec = members["rec_xiaoming"]
    url = reverse("reports:help_record", args=[rec.pk])
    client.force_login(world.homeroom_a1_3)  # responsible: reads it, changes nothing
    page = client.get(url)
    assert page.status_code == 200 and page.context["change_form"] is None and "每周谈心" in page.content.decode()
    mine = client.get(reverse("reports:help_records_mine"))
    assert [r["record"] for r in mine.context["rows"]] == [rec]
    assert client.get(reverse("reports:help_record", args=[members["rec_late"].pk])).status_code == 404
    change = {"measures": "每周谈心；家访", "responsible": world.homeroom_a1_3.pk, "review_on": days(40).isoformat(),
              "reason": "家访后调整"}  # fmt: skip
    assert client.post(reverse("reports:help_record_change", args=[rec.pk]), change).status_code == 404
    client.force_login(world.principal_a1)
    assert client.post(reverse("reports:help_record_change", args=[rec.pk]), change).status_code == 302
    assert client.post(reverse("reports:help_record_end", args=[rec.pk]), {"reason": ""}).status_code == 400
    assert client.post(reverse("reports:help_record_end", args=[rec.pk]), {"reason": "已好转"}).status_code == 302
    rec.refresh_from_db()
    assert (rec.status, rec.review_on, rec.measures) == (HelpStatus.ENDED, days(40), "每周谈心；家访")
    history = client.get(url).context["history"]
    assert [h["reason"] for h in history] == ["结束帮扶：已好转", "修改帮扶档案：家访后调整", "建立帮扶档案"]


@pytest.mark.parametrize("person", ["mentor", "counselor_a2", "centre_district_b"])
def test_others_get_404_on_a_record(client, world, members, person):
    if person == "mentor":
        user = staff_with_role(Role.MENTOR, world.school_a1)
    elif person == "centre_district_b":
        user = staff_with_role(Role.DISTRICT_CENTRE, world.district_b)
    else:
        user = getattr(world, person)
    client.force_login(user)
    assert client.get(reverse("reports:help_record", args=[members["rec_xiaoming"].pk])).status_code == 404
