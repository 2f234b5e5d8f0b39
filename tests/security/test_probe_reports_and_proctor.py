"""What an outside probe got through on the proctor pages and the group reports (issue 17, findings 5, 6, 7, 11):

- the proctor page and its JSON named the students to keep (a red screen) with no time limit: only while the
  screening is live now, counts only after;
- the lone red student of a rare special group was plain in a class report (completed 1, green/yellow/orange 0):
  a small row shows no tier at all, and suppression runs over the report's tables as one set;
- reading the proctor page, its JSON and the notifications page left no access-log entry;
- a "$" in a school's name made matplotlib read the label as TeX (a 500 on every report of the district).
"""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from roster.models import AccessLogEntry, Notification, SpecialGroup
from roster.notifications import notify
from roster.roles import Role
from screening.reports import REPORT_TIERS, total_cell
from tests.factories.roster import StudentFactory, staff_with_role
from tests.factories.screening import CampaignFactory
from tests.screening.test_reports import record, sheet_rows

# --- Finding 5: keep marks only while the screening is live ---------------------------------------------------------


@pytest.fixture
def screening(world):
    """Class 7-3 mid-screening: 王小明 red (a keep mark), one green, one not yet."""
    campaign = CampaignFactory(schools=[world.school_a1])
    record(campaign, world.student_a1_3, "red")
    record(campaign, StudentFactory(school_class=world.class_a1_3), "green")
    StudentFactory(school_class=world.class_a1_3)
    return campaign


def _proctor_url(campaign, school_class, name="screening:proctor"):
    return reverse(name, kwargs={"campaign_id": campaign.pk, "class_id": school_class.pk})


def _end(campaign):
    """The clock passes the campaign's closing time; the open/close schedule has not run yet (status still open)."""
    campaign.closes_at = timezone.now() - datetime.timedelta(seconds=1)
    campaign.save(update_fields=["closes_at"])


def test_a_keep_mark_lasts_the_day_it_was_given_not_the_whole_campaign(client, world, screening):
    """A campaign open for a week: yesterday's red student is "done" today, never still marked for the teacher."""
    from screening.models import ScreeningResult

    yesterday = timezone.localtime() - datetime.timedelta(days=1)
    ScreeningResult.objects.filter(student=world.student_a1_3).update(submitted_at=yesterday)
    client.force_login(world.homeroom_a1_3)
    data = client.get(_proctor_url(screening, world.class_a1_3, "screening:proctor_status")).json()
    assert {s["status"] for s in data["students"]} == {"done", "not_yet"} and data["to_keep"] == 0


@pytest.mark.parametrize("persona", ["homeroom_a1_3", "counselor_a1"])
def test_after_the_session_ends_the_status_feed_names_no_student_to_keep(client, world, screening, persona):
    client.force_login(getattr(world, persona))
    url = _proctor_url(screening, world.class_a1_3, "screening:proctor_status")
    live = client.get(url)
    assert live.status_code == 200 and {s["status"] for s in live.json()["students"]} == {"keep", "done", "not_yet"}
    _end(screening)
    ended = client.get(url)
    assert ended.status_code == 410  # the page's script reloads on it, into the ended view
    data = ended.json()
    assert data["live"] is False and (data["invited"], data["done"]) == (3, 2)
    assert "students" not in data and "to_keep" not in data
    body = ended.content.decode()
    assert "keep" not in body and world.student_a1_3.student_no not in body and "王*明" not in body


def test_after_the_session_ends_the_page_shows_counts_and_says_so(client, world, screening):
    client.force_login(world.homeroom_a1_3)
    _end(screening)
    response = client.get(_proctor_url(screening, world.class_a1_3))
    page = response.content.decode()
    assert response.status_code == 200 and response.context["live"] is False
    assert "rows" not in response.context and "to_keep" not in response.context["summary"]
    assert response.context["summary"] == {"invited": 3, "done": 2}
    assert "测评已结束" in page  # "This screening has ended…"
    assert "王*明" not in page and world.student_a1_3.student_no not in page
    assert "status-keep" not in page and "请留下该生" not in page and "data-status-url" not in page


def test_after_the_session_ends_the_class_list_shows_no_keep_count(client, world, screening):
    client.force_login(world.counselor_a1)
    url = reverse("screening:proctor_classes", kwargs={"campaign_id": screening.pk})
    assert client.get(url).context["classes"][0].to_keep == 1
    _end(screening)
    response = client.get(url)
    assert not any(hasattr(c, "to_keep") for c in response.context["classes"])
    assert "status-keep" not in response.content.decode()


def test_before_the_session_opens_no_student_is_listed(client, world):
    later = timezone.now() + datetime.timedelta(days=2)
    campaign = CampaignFactory(schools=[world.school_a1], opens_at=later, closes_at=later + datetime.timedelta(days=1))
    client.force_login(world.homeroom_a1_3)
    assert client.get(_proctor_url(campaign, world.class_a1_3, "screening:proctor_status")).status_code == 410
    assert "尚未开始" in client.get(_proctor_url(campaign, world.class_a1_3)).content.decode()


# --- Finding 7 (reads): the proctor pages and the notifications page are logged --------------------------------------


def _entries(actor):
    return list(AccessLogEntry.objects.filter(actor=actor).order_by("pk"))


@pytest.mark.parametrize("view", ["screening:proctor", "screening:proctor_status"])
def test_reading_the_proctor_page_lists_its_students_in_the_access_log(client, world, screening, view):
    client.force_login(world.homeroom_a1_3)
    assert client.get(_proctor_url(screening, world.class_a1_3, view)).status_code == 200
    (entry,) = [e for e in _entries("homeroom_a1_3") if e.action != "login"]
    students = {str(pk) for pk in world.class_a1_3.students.values_list("pk", flat=True)}
    assert (entry.action, entry.outcome, entry.object_type) == ("list", "ok", "roster.student")
    assert set(entry.object_ids.split(",")) == students and str(world.student_a1_3.pk) in students


@pytest.mark.parametrize("view", ["screening:proctor", "screening:proctor_status"])
def test_reading_an_ended_proctor_page_logs_the_class(client, world, screening, view):
    client.force_login(world.homeroom_a1_3)
    _end(screening)
    client.get(_proctor_url(screening, world.class_a1_3, view))
    (entry,) = [e for e in _entries("homeroom_a1_3") if e.action != "login"]
    assert (entry.action, entry.object_type, entry.object_ids) == ("view", "roster.schoolclass",
                                                                    str(world.class_a1_3.pk))  # fmt: skip


def test_the_proctor_class_list_and_a_refused_class_are_logged(client, world, screening):
    other = staff_with_role(Role.HOMEROOM_TEACHER, world.class_a1_5, username="homeroom_a1_5")
    client.force_login(other)
    client.get(reverse("screening:proctor_classes", kwargs={"campaign_id": screening.pk}))
    assert client.get(_proctor_url(screening, world.class_a1_3)).status_code == 404
    listed, refused = [e for e in _entries("homeroom_a1_5") if e.action != "login"]
    assert (listed.action, listed.object_type, listed.object_ids) == ("list", "roster.schoolclass",
                                                                      str(world.class_a1_5.pk))  # fmt: skip
    assert (refused.action, refused.outcome, refused.object_ids) == ("view", "denied", str(world.class_a1_3.pk))


def test_reading_the_notifications_page_lists_the_notifications_shown(client, world):
    notify([world.counselor_a1], kind="red_alert", title="危机预警：7年级3班 王*明", subject_key="screening_result:1",
           urgent=True)  # fmt: skip
    notify([world.counselor_a1], kind="test", title="Another", subject_key="case:2")
    notify([world.principal_a1], kind="test", title="Not mine", subject_key="case:3")
    client.force_login(world.counselor_a1)
    assert client.get(reverse("notifications")).status_code == 200
    (entry,) = [e for e in _entries("counselor_a1") if e.action != "login"]
    mine = {str(pk) for pk in Notification.objects.filter(recipient=world.counselor_a1).values_list("pk", flat=True)}
    assert (entry.action, entry.outcome, entry.object_type) == ("list", "ok", "roster.notification")
    assert set(entry.object_ids.split(",")) == mine and len(mine) == 2


# --- Finding 6: one set of suppressed cells over the whole report ----------------------------------------------------


@pytest.fixture
def lone_red(world):
    """Class 7-3: 8 green, and 王小明 red, the class's only left-behind child. Class 7-5: 6 green."""
    group, _ = SpecialGroup.objects.get_or_create(code="left_behind", defaults={"name": "留守儿童"})
    campaign = CampaignFactory(schools=[world.school_a1])
    world.student_a1_3.special_groups.add(group)
    record(campaign, world.student_a1_3, "red")
    for _ in range(8):
        record(campaign, StudentFactory(school_class=world.class_a1_3), "green")
    for _ in range(6):
        record(campaign, StudentFactory(school_class=world.class_a1_5), "green")
    return campaign, group


def _report(client, user, campaign, **params):
    client.force_login(user)
    response = client.get(reverse("screening:report", args=[campaign.pk]), params)
    assert response.status_code == 200
    return response


def _no_sum_gives_back_one_hidden_cell(report, insights):
    """Every tier column of the groups table, with the table's total above it, holds no hidden cell or at least two."""
    cells = report.cells
    for i, tier in enumerate(REPORT_TIERS):
        hidden = [isinstance(g.tiers[i], str) for g in insights.groups] + [cells.is_hidden(total_cell(tier))]
        assert sum(hidden) != 1, (tier, [g.tiers for g in insights.groups], report.total.tier_cells)
    completed_hidden = [isinstance(g.completed, str) for g in insights.groups]
    assert sum(completed_hidden) != 1  # the node's completed count is always shown


@pytest.mark.parametrize("drill", ["class", "grade"])
def test_the_lone_red_child_of_a_group_is_not_shown_in_any_table(client, world, lone_red, drill):
    campaign, group = lone_red
    params = {"school": world.school_a1.pk, "grade": 7}
    if drill == "class":
        params["class"] = world.class_a1_3.pk
    response = _report(client, world.counselor_a1, campaign, **params)
    report, insights = response.context["report"], response.context["insights"]
    left_behind = next(g for g in insights.groups if g.label == group.name)
    # Not "1  0 0 0 <5": nothing of the group's row is shown, its zeros included.
    assert left_behind.completed == "<5" and left_behind.tiers == ["<5"] * 4
    # The students in no group are the total less the one child: shown, they would give the child back. Hidden,
    # their counts of 5 or more read "*", never "<5" (a false number: 8 or 14 green are not fewer than 5).
    rest = next(g for g in insights.groups if g.label != group.name)
    assert rest.completed == "*" and rest.tiers == ["*", "<5", "<5", "<5"]
    _no_sum_gives_back_one_hidden_cell(report, insights)
    # The table and the tier chart read the same cells: red is hidden wherever it is one child.
    assert report.total.tier_cells[3] == "<5" and report.total.tier_shares[3] is None
    for row in report.rows:
        if row.tiers["red"]:
            assert row.tier_cells[3] == "<5" and row.tier_shares[3] is None
    page = response.content.decode()
    groups_section = page.split("report-groups")[1].split("</section>")[0]
    cells = [part.split("</td>")[0] for part in groups_section.split('<td class="num">')[1:]]
    assert cells and set(cells) == {"&lt;5", "*"}


def test_a_class_of_fewer_than_k_completed_shows_no_tier_in_the_grade_table(client, world):
    """Class 7-5 has one pupil who answered, red; 7-3 has 9 green. The grade's table must not show 7-5 as 0 0 0 <5."""
    campaign = CampaignFactory(schools=[world.school_a1])
    record(campaign, world.student_a1_5, "red")
    for _ in range(9):
        record(campaign, StudentFactory(school_class=world.class_a1_3), "green")
    report = _report(client, world.counselor_a1, campaign, school=world.school_a1.pk, grade=7).context["report"]
    small = next(row for row in report.rows if row.completed == 1)
    assert small.tier_cells == ["<5"] * 4
    for i, _tier in enumerate(REPORT_TIERS):  # no column left with one hidden cell under the grade's total
        column = [row.tier_cells[i] for row in report.rows] + [report.total.tier_cells[i]]
        assert sum(isinstance(n, str) for n in column) != 1


# --- Finding 6b: the students in some group are the total less the row in no group -----------------------------------


def _special_group(code, name):
    return SpecialGroup.objects.get_or_create(code=code, defaults={"name": name})[0]


@pytest.fixture
def one_red_in_groups(world):
    """Class 7-3, 6 red and 12 or more green: 王小明 is the one red child in a special group (left-behind, with 5
    green). 5 red and 6 green are in no group. `overlap`: 王小明 is also in single-parent (with 5 green others);
    else single-parent holds one green child. Both ways the groups' red cells are hidden ("<5") while the row in no
    group, on today's sums, showed its 5 red under the total's 6: one special-group child is red."""

    def build(*, overlap):
        left_behind, single_parent = (
            _special_group("left_behind", "留守儿童"),
            _special_group("single_parent", "单亲家庭"),
        )
        campaign = CampaignFactory(schools=[world.school_a1])
        world.student_a1_3.special_groups.add(left_behind, *([single_parent] if overlap else []))
        record(campaign, world.student_a1_3, "red")
        for group, n in [(left_behind, 5), (single_parent, 5 if overlap else 1)]:
            for _ in range(n):
                student = StudentFactory(school_class=world.class_a1_3)
                student.special_groups.add(group)
                record(campaign, student, "green")
        for tier, n in [("red", 5), ("green", 6)]:
            for _ in range(n):
                record(campaign, StudentFactory(school_class=world.class_a1_3), tier)
        return campaign

    return build


def _printed_groups(page: str) -> dict[str, list[str]]:
    """{label: [completed, green, yellow, orange, red]} as the page prints the special-groups table."""
    section = page.split("report-groups")[1].split("</section>")[0]
    rows = {}
    for row in section.split("<tr>")[2:]:  # past the header row
        label = row.split("<td>")[1].split("</td>")[0]
        rows[label] = [cell.split("</td>")[0] for cell in row.split('<td class="num">')[1:]]
    return rows


@pytest.mark.parametrize("overlap", [False, True], ids=["one_group", "in_two_groups"])
@pytest.mark.parametrize("drill", ["class", "grade"])
def test_the_total_less_the_students_in_no_group_gives_back_no_small_count(client, world, one_red_in_groups, drill,
                                                                           overlap):  # fmt: skip
    campaign = one_red_in_groups(overlap=overlap)
    params = {"school": world.school_a1.pk, "grade": 7} | ({"class": world.class_a1_3.pk} if drill == "class" else {})
    response = _report(client, world.counselor_a1, campaign, **params)
    report, k = response.context["report"], response.context["report"].min_cell
    # The table as published, in the XLSX export (the page's table reads the same cells): its totals row.
    client.force_login(world.counselor_a1)
    sheet = sheet_rows(client.get(reverse("screening:report_xlsx", args=[campaign.pk]), params))
    total = sheet[len(report.rows) + 1]
    assert total[-4:] == (12 if not overlap else 16, 0, 0, 6)  # the total's red 6 is public, and so are the greens
    rest = _printed_groups(response.content.decode())["不属于任何特殊群体"]
    for shown_total, shown_rest in zip([total[-6], *total[-4:]], rest, strict=True):
        if isinstance(shown_total, int) and shown_rest.isdigit():
            assert not 0 < shown_total - int(shown_rest) < k, (total, rest)
    assert rest[-1] in ("&lt;5", "*")  # the red of the students in no group: 5, hidden
    for label, row in _printed_groups(response.content.decode()).items():  # each row: completed = its tiers
        assert sum(not cell.isdigit() for cell in row) != 1, (label, row)


# --- Finding 11: labels are plain text -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["A$x^2$校", "$x_$学校", "B$\\frac$"])
def test_a_dollar_sign_in_a_school_name_is_drawn_as_written(client, world, name):
    world.school_a1.name = name
    world.school_a1.save(update_fields=["name"])
    campaign = CampaignFactory(name=f"{name}测评", schools=[world.school_a1, world.school_a2])
    record(campaign, world.student_a1_3, "green")
    record(campaign, world.student_a2, "yellow")
    response = _report(client, world.centre_district_a, campaign, district=world.district_a.pk)
    chart = str(response.context["insights"].tier_chart)
    assert f">{name}</text>" in chart
    assert client.get(reverse("screening:report_print", args=[campaign.pk]),
                      {"district": world.district_a.pk}).status_code == 200  # fmt: skip
