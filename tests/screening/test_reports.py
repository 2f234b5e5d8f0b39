"""The campaign list and the completion/tier report: who sees which rows, whether tiers show, and the numbers."""

import io

import openpyxl
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext

from roster.models import StudentStatus
from roster.roles import Role
from screening.reports import Crumb
from screening.services import campaign_definitions, result_record
from tests.factories.roster import SchoolClassFactory, StudentFactory, staff_with_role
from tests.factories.screening import ANSWERS, CampaignFactory

TIERS = ["green", "yellow", "orange", "red"]


def grade_label(grade: int) -> str:
    with translation.override("zh-hans"):
        return gettext("Grade %(grade)d") % {"grade": grade}


def record(campaign, student, tier, definitions=None):
    result = result_record(
        campaign=campaign, student=student, answers=ANSWERS[tier], source="portal", definitions=definitions
    ).result
    assert result.tier == tier  # the answer sets above mean what their names say
    return result


@pytest.fixture
def campaign(world):
    """A1 grade 7: class 7-3 has 3 invited (red, green, not yet), class 7-5 has 2 (orange, yellow);
    A2 8-1: 1 invited (green); B1 7-1: 1 invited (not yet). Not invited: a transferred pupil, a grade-9 class,
    and school X1 (not in the campaign)."""
    c = CampaignFactory(name="2026秋季测评", schools=[world.school_a1, world.school_a2, world.school_b1])
    definitions = campaign_definitions(c)
    a1_3_more = StudentFactory.create_batch(2, school_class=world.class_a1_3)
    a1_5_more = StudentFactory(school_class=world.class_a1_5)
    record(c, world.student_a1_3, "red", definitions)
    record(c, a1_3_more[0], "green", definitions)
    record(c, world.student_a1_5, "orange", definitions)
    record(c, a1_5_more, "yellow", definitions)
    record(c, world.student_a2, "green", definitions)
    StudentFactory(school_class=world.class_a1_3, status=StudentStatus.TRANSFERRED)
    StudentFactory(school_class=SchoolClassFactory(school=world.school_a1, grade=9, number=1))
    return c


def report_url(campaign, **params):
    url = reverse("screening:report", args=[campaign.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")


def xlsx_url(campaign, **params):
    url = reverse("screening:report_xlsx", args=[campaign.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")


def get_report(client, user, campaign, **params):
    client.force_login(user)
    response = client.get(report_url(campaign, **params))
    assert response.status_code == 200
    return response.context["report"]


def table(report):
    """[(labels..., invited, completed, completion, tier counts or None)] of the report's rows."""
    return [(*r.labels, r.invited, r.completed, r.completion, r.tier_counts) for r in report.rows]


def sheet_rows(response):
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    return list(sheet.iter_rows(values_only=True))


# --- Campaign list --------------------------------------------------------------------------------------------


def test_the_campaign_list_shows_visible_campaigns_newest_first_with_status_and_links(client, world, campaign):
    import datetime

    older = CampaignFactory(
        name="2025春季测评",
        schools=[world.school_a1],
        opens_at=campaign.opens_at - datetime.timedelta(days=200),
        closes_at=campaign.opens_at - datetime.timedelta(days=190),
    )
    CampaignFactory(name="邻市测评", schools=[world.school_x1])
    client.force_login(world.counselor_a1)
    response = client.get(reverse("screening:campaigns"))
    page = response.content.decode()
    assert [c.name for c in response.context["page"]] == ["2026秋季测评", "2025春季测评"]
    assert "邻市测评" not in page
    assert reverse("screening:report", args=[campaign.pk]) in page
    assert reverse("screening:flagged", args=[older.pk]) in page
    assert older.get_status_display() in page and older.status == "closed"


@pytest.mark.parametrize(("persona", "flagged_link"), [("homeroom_a1_3", False), ("school_admin_a1", False)])
def test_non_readers_see_their_campaigns_without_a_flagged_link(client, world, campaign, persona, flagged_link):
    client.force_login(getattr(world, persona))
    page = client.get(reverse("screening:campaigns")).content.decode()
    assert reverse("screening:report", args=[campaign.pk]) in page
    assert (reverse("screening:flagged", args=[campaign.pk]) in page) == flagged_link


def test_a_user_without_a_role_sees_an_empty_campaign_list(client, world, campaign):
    client.force_login(world.nobody)
    response = client.get(reverse("screening:campaigns"))
    assert response.status_code == 200 and list(response.context["page"]) == []
    assert campaign.name not in response.content.decode()


def test_pages_need_a_login(client, campaign):
    for url in (reverse("screening:campaigns"), report_url(campaign), xlsx_url(campaign)):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


# --- Report: scope matrix ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_city_centre_starts_at_the_city_with_every_district_and_tiers(client, world, campaign):
    report = get_report(client, world.city_centre, campaign)
    assert report.shows_tiers
    assert table(report) == [
        ("东湖区", 6, 5, 83.3, [2, 1, 1, 1]),
        ("西山区", 1, 0, 0.0, [0, 0, 0, 0]),
    ]
    assert (report.total.invited, report.total.completed, report.total.tier_counts) == (7, 5, [2, 1, 1, 1])
    assert [c.label for c in report.crumbs] == ["示范市"]


def test_the_city_admin_sees_every_district_but_completion_only(client, world, campaign):
    report = get_report(client, world.city_admin, campaign)
    assert not report.shows_tiers
    assert table(report) == [("东湖区", 6, 5, 83.3, None), ("西山区", 1, 0, 0.0, None)]


def test_the_district_centre_starts_at_its_schools(client, world, campaign):
    report = get_report(client, world.centre_district_a, campaign)
    assert table(report) == [
        ("9901010001", "东湖第一中学", 5, 4, 80.0, [1, 1, 1, 1]),
        ("9901010002", "东湖第二中学", 1, 1, 100.0, [1, 0, 0, 0]),
    ]
    assert [c.label for c in report.crumbs] == ["东湖区"]


def test_the_psychology_teacher_starts_at_their_school_grades_with_tiers(client, world, campaign):
    report = get_report(client, world.counselor_a1, campaign)
    assert table(report) == [("东湖第一中学", grade_label(7), 5, 4, 80.0, [1, 1, 1, 1])]
    assert report.rows[0].drill == {"school": world.school_a1.pk, "grade": 7}


def test_drilling_to_a_grade_gives_one_row_per_class(client, world, campaign):
    report = get_report(client, world.principal_a1, campaign, school=world.school_a1.pk, grade=7)
    assert [r[2:] for r in table(report)] == [(3, 2, 66.7, [1, 0, 0, 1]), (2, 2, 100.0, [0, 1, 1, 0])]
    assert [r[1] for r in table(report)] == [str(world.class_a1_3), str(world.class_a1_5)]
    # Each class opens its own report (its figures, suppressed); there it is the lowest level: no student rows.
    assert [r.drill for r in report.rows] == [
        {"school": world.school_a1.pk, "grade": 7, "class": world.class_a1_3.pk},
        {"school": world.school_a1.pk, "grade": 7, "class": world.class_a1_5.pk},
    ]
    one_class = get_report(client, world.principal_a1, campaign, **{"school": world.school_a1.pk, "grade": 7,
                                                                     "class": world.class_a1_3.pk})  # fmt: skip
    assert [r[1] for r in table(one_class)] == [str(world.class_a1_3)] and one_class.rows[0].drill is None


def test_the_homeroom_teacher_sees_only_their_class_completion_and_no_tiers(client, world, campaign):
    client.force_login(world.homeroom_a1_3)
    response = client.get(report_url(campaign))
    report = response.context["report"]
    assert not report.shows_tiers
    assert table(report) == [("东湖第一中学", str(world.class_a1_3), 3, 2, 66.7, None)]
    page = response.content.decode()
    assert "tier-count" not in page and 'class="tier ' not in page
    assert str(world.class_a1_5) not in page
    rows = sheet_rows(client.get(xlsx_url(campaign)))
    assert len(rows[0]) == 5  # school, class, invited, completed, completion %: no tier columns
    assert rows[1][2:] == (3, 2, 66.7)
    assert rows[-1][2:4] == (3, 2)


def test_the_homeroom_teacher_cannot_widen_the_report_by_drilling(client, world, campaign):
    client.force_login(world.homeroom_a1_3)
    report = client.get(report_url(campaign, school=world.school_a1.pk)).context["report"]
    assert [r.invited for r in report.rows] == [3]  # the school's grade 7 as far as they see it: their class
    response = client.get(report_url(campaign, school=world.school_a1.pk, grade=7, **{"class": world.class_a1_5.pk}))
    assert response.status_code == 404


def test_the_school_admin_sees_completion_without_tiers(client, world, campaign):
    client.force_login(world.school_admin_a1)
    response = client.get(report_url(campaign))
    report = response.context["report"]
    assert not report.shows_tiers and table(report)[0][2:] == (5, 4, 80.0, None)
    assert "tier-count" not in response.content.decode()
    rows = sheet_rows(client.get(xlsx_url(campaign)))
    assert len(rows[0]) == 5


def test_tier_counts_show_only_on_rows_the_user_reads_whole(client, world, campaign):
    """A psychology teacher of A1 who is also homeroom teacher of a class in B1 reads A1's tiers, not B1's."""
    teacher = staff_with_role(Role.PSYCHOLOGY_TEACHER, world.school_a1, username="counselor_and_homeroom")
    from roster import services

    services.role_grant(actor=None, user=teacher, role=Role.HOMEROOM_TEACHER, node=world.class_b1)
    report = get_report(client, teacher, campaign)
    assert report.shows_tiers
    assert table(report) == [
        ("9901010001", "东湖第一中学", 5, 4, 80.0, [1, 1, 1, 1]),
        ("9901020001", "西山中学", 1, 0, 0.0, None),
    ]
    assert report.total.tier_counts is None


def test_the_readers_condition_is_dropped_only_where_it_narrows_nothing(world, campaign):
    """scoping.readers_q: no condition for a reader in every subtree they hold; the reader's subtrees for a teacher
    who also holds a homeroom class elsewhere; nothing for a homeroom teacher alone."""
    from roster import scoping, services
    from roster.models import Student
    from screening.models import ScreeningResult

    def readable(user):
        return set(scoping.visible(user, Student).filter(scoping.readers_q(user, Student, ScreeningResult)))

    assert scoping.readers_q(world.counselor_a1, Student, ScreeningResult).children == []
    assert readable(world.counselor_a1) == set(Student.objects.filter(school=world.school_a1))
    teacher = staff_with_role(Role.PSYCHOLOGY_TEACHER, world.school_a1, username="counselor_and_homeroom")
    services.role_grant(actor=None, user=teacher, role=Role.HOMEROOM_TEACHER, node=world.class_b1)
    assert (
        set(scoping.visible(teacher, Student))
        > readable(teacher)
        == set(Student.objects.filter(school=world.school_a1))
    )
    assert readable(world.homeroom_a1_3) == set()


def test_another_schools_counselor_sees_nothing_of_a1(client, world, campaign):
    report = get_report(client, world.counselor_a2, campaign)
    assert table(report) == [("东湖第二中学", grade_label(8), 1, 1, 100.0, [1, 0, 0, 0])]
    assert client.get(report_url(campaign, school=world.school_a1.pk)).status_code == 404
    xlsx = sheet_rows(client.get(xlsx_url(campaign)))
    assert "东湖第一中学" not in str(xlsx)


@pytest.mark.parametrize(
    ("persona", "params"),
    [
        ("centre_district_a", {"district": "district_b"}),
        ("counselor_a1", {"school": "school_a2"}),
        ("counselor_a1", {"school": "school_a1", "grade": 8}),  # no such grade in A1
        ("counselor_a1", {"school": "school_a1", "grade": 9}),  # not a target grade
        ("counselor_a1", {"school": "school_a1", "grade": 7, "class": "class_a2"}),
        ("school_admin_a1", {"district": "district_b"}),
        ("city_centre", {"school": "school_x1"}),  # another city, and not in the campaign
        ("city_admin_x", {}),  # campaign not visible at all
        ("nobody", {}),
        ("counselor_a1", {"grade": 7}),  # a grade needs its school
        ("counselor_a1", {"school": "not-a-number"}),
    ],
)
def test_out_of_scope_or_malformed_drill_params_give_404(client, world, campaign, persona, params):
    resolved = {k: (getattr(world, v).pk if isinstance(v, str) and hasattr(world, v) else v) for k, v in params.items()}
    client.force_login(getattr(world, persona))
    assert client.get(report_url(campaign, **resolved)).status_code == 404
    assert client.get(xlsx_url(campaign, **resolved)).status_code == 404


def test_the_breadcrumb_links_back_up_to_where_the_users_scope_starts(client, world, campaign):
    report = get_report(client, world.centre_district_a, campaign, school=world.school_a1.pk, grade=7)
    assert [(c.label, c.params) for c in report.crumbs][:2] == [
        ("东湖区", {"district": world.district_a.pk}),
        ("东湖第一中学", {"school": world.school_a1.pk}),
    ]
    assert report.crumbs[-1].params is None  # the current level
    counselor = get_report(client, world.counselor_a1, campaign, school=world.school_a1.pk, grade=7)
    assert counselor.crumbs[0] == Crumb("东湖区", None)  # above their scope: context, not a link


# --- XLSX ----------------------------------------------------------------------------------------------------


def test_the_xlsx_export_has_the_same_rows_columns_and_a_totals_row(client, world, campaign):
    client.force_login(world.centre_district_a)
    response = client.get(xlsx_url(campaign))
    assert "attachment;" in response["Content-Disposition"]
    rows = sheet_rows(response)
    assert len(rows[0]) == 9  # school code, school, invited, completed, %, green, yellow, orange, red
    assert rows[1] == ("9901010001", "东湖第一中学", 5, 4, 80, 1, 1, 1, 1)
    assert rows[2] == ("9901010002", "东湖第二中学", 1, 1, 100, 1, 0, 0, 0)
    assert rows[3][2:] == (6, 5, 83.3, 2, 1, 1, 1)
    html_report = client.get(report_url(campaign)).context["report"]
    assert rows[0] == tuple(html_report.headers)


def test_the_xlsx_export_follows_the_drill_level(client, world, campaign):
    client.force_login(world.counselor_a1)
    rows = sheet_rows(client.get(xlsx_url(campaign, school=world.school_a1.pk, grade=7)))
    assert [r[1] for r in rows[1:3]] == [str(world.class_a1_3), str(world.class_a1_5)]
    # A class of 2 completed (1 red, 1 green) shows no tier at all: its zeros would narrow the two down.
    assert rows[1][2:] == (3, 2, 66.7, "<5", "<5", "<5", "<5")


# --- Query budget ----------------------------------------------------------------------------------------------


def _report_queries(client, user, url) -> int:
    client.force_login(user)
    client.get(url)  # warm the once-per-process caches (content types and the like)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("persona", ["centre_district_a", "counselor_a1", "homeroom_a1_3"])
def test_the_report_runs_the_same_number_of_queries_at_any_size(client, world, persona):
    c = CampaignFactory(schools=[world.school_a1, world.school_a2])
    user = getattr(world, persona)
    small = _report_queries(client, user, report_url(c))
    small_xlsx = _report_queries(client, user, xlsx_url(c))
    definitions = campaign_definitions(c)
    for number in range(6, 12):
        school_class = SchoolClassFactory(school=world.school_a1, grade=7, number=number)
        for i, student in enumerate(StudentFactory.create_batch(8, school_class=school_class)):
            record(c, student, TIERS[i % 4], definitions)
    for student in StudentFactory.create_batch(10, school_class=world.class_a1_3):
        record(c, student, "yellow", definitions)
    large_report = client.get(report_url(c)).context["report"]
    assert large_report.total.invited >= 11
    assert _report_queries(client, user, report_url(c)) == small
    assert _report_queries(client, user, xlsx_url(c)) == small_xlsx
