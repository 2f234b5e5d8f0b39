"""The proctor page: a class's live completion (done / not yet / red alert) for its proctors, never answers or tiers."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

from roster import scoping
from roster.models import SchoolClass, StudentStatus
from roster.roles import Role
from screening.alerts import PROCTOR_ROLES
from screening.definitions import RiskTier
from screening.services import result_record
from tests.factories.roster import SchoolClassFactory, StudentFactory, staff_with_role
from tests.factories.screening import CampaignFactory
from tests.screening.test_alerts import CALM, ORANGE, RED_ASQ, YELLOW


@pytest.fixture
def campaign(world):
    return CampaignFactory(schools=[world.school_a1, world.school_a2])


def _url(campaign, school_class, name="screening:proctor"):
    return reverse(name, kwargs={"campaign_id": campaign.pk, "class_id": school_class.pk})


def _record(campaign, student, answers):
    return result_record(campaign=campaign, student=student, answers=answers, source="portal").result


# --- Who may open it ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "expected"),
    [
        ("homeroom_a1_3", 200),  # the class's own teacher
        ("counselor_a1", 200),
        ("principal_a1", 200),
        ("homeroom_a1_5", 404),  # the teacher of the class next door
        ("counselor_a2", 404),  # another school
        ("school_admin_b1", 404),
        ("nobody", 404),
        ("school_admin_a1", 403),  # sees the class, but does not proctor
        ("centre_district_a", 403),
        ("auditor_district_a", 403),
    ],
)
@pytest.mark.parametrize("view", ["screening:proctor", "screening:proctor_status"])
def test_only_the_classes_proctors_open_its_page(client, world, campaign, persona, expected, view):
    world.homeroom_a1_5 = staff_with_role(Role.HOMEROOM_TEACHER, world.class_a1_5, username="homeroom_a1_5")
    client.force_login(getattr(world, persona))
    assert client.get(_url(campaign, world.class_a1_3, view)).status_code == expected


def test_signed_out_visitors_are_sent_to_sign_in(client, world, campaign):
    response = client.get(_url(campaign, world.class_a1_3))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_a_class_outside_the_campaign_is_not_found(client, world):
    only_a2 = CampaignFactory(schools=[world.school_a2])
    not_grade_7 = CampaignFactory(schools=[world.school_a1], target_grades=[4, 5, 6])
    client.force_login(world.counselor_a1)
    assert client.get(_url(only_a2, world.class_a1_3)).status_code == 404
    assert client.get(_url(not_grade_7, world.class_a1_3)).status_code == 404
    assert client.get(reverse("screening:proctor", kwargs={"campaign_id": 999999, "class_id": 1})).status_code == 404


def test_within_roles_covers_the_subtrees_of_the_given_roles_only(world):
    def classes(user, roles=PROCTOR_ROLES):
        return set(scoping.within_roles(user, SchoolClass, roles))

    assert classes(world.homeroom_a1_3) == {world.class_a1_3}
    assert classes(world.counselor_a1) == {world.class_a1_3, world.class_a1_5}
    assert classes(world.school_admin_a1) == set()
    assert classes(world.school_admin_a1, {Role.SCHOOL_ADMIN}) == {world.class_a1_3, world.class_a1_5}
    assert classes(world.nobody) == set()


# --- What it shows ------------------------------------------------------------------------------------------------


@pytest.fixture
def screened_class(world, campaign):
    """Class 7-3 mid-screening: 王小明 red, one orange, one yellow, one green, one not yet, one who left."""
    c = world.class_a1_3
    s = {
        "red": world.student_a1_3,
        "orange": StudentFactory(school_class=c, name="李橙橙", student_no="2026100001"),
        "yellow": StudentFactory(school_class=c, name="张黄黄", student_no="2026100002"),
        "green": StudentFactory(school_class=c, name="赵绿绿", student_no="2026100003"),
        "not_yet": StudentFactory(school_class=c, name="钱未答", student_no="2026100004"),
        "left": StudentFactory(school_class=c, name="孙转学", student_no="2026100005"),
    }
    for key, answers in (("red", RED_ASQ), ("orange", ORANGE), ("yellow", YELLOW), ("green", CALM), ("left", CALM)):
        _record(campaign, s[key], answers)
    s["left"].status = StudentStatus.TRANSFERRED
    s["left"].save(update_fields=["status"])
    return s


@pytest.mark.parametrize("persona", ["homeroom_a1_3", "counselor_a1"])
def test_the_page_shows_done_not_yet_and_the_red_alert_with_masked_names(
    client, world, campaign, screened_class, persona
):
    client.force_login(getattr(world, persona))
    response = client.get(_url(campaign, world.class_a1_3))
    page = response.content.decode()
    assert response.context["summary"] == {"invited": 5, "done": 4, "to_keep": 1}
    statuses = {row.student_no: row.status for row in response.context["rows"]}
    assert statuses == {
        world.student_a1_3.student_no: "keep",
        "2026100001": "done",
        "2026100002": "done",
        "2026100003": "done",
        "2026100004": "not_yet",
    }
    assert "王*明" in page and "王小明" not in page and "钱*答" in page
    assert "孙*学" not in page  # transferred out: not invited any more
    assert page.count('class="status-keep"') == 1
    assert response.context["labels"]["keep"] in page
    assert '<meta http-equiv="refresh" content="15">' in page  # the fallback without JavaScript


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_the_page_never_shows_other_tiers_scores_or_answers(client, world, campaign, screened_class, language):
    client.cookies["django_language"] = language
    client.force_login(world.homeroom_a1_3)
    page = client.get(_url(campaign, world.class_a1_3)).content.decode()
    status = client.get(_url(campaign, world.class_a1_3, "screening:proctor_status")).content.decode()
    with translation.override(language):
        tier_words = [str(t.label) for t in (RiskTier.GREEN, RiskTier.YELLOW, RiskTier.ORANGE)]
    words = [*tier_words, "green", "yellow", "orange", "PHQ", "GAD", "ASQ", "score", "tier"]
    assert [w for w in words if w in page or w in status] == []


def test_the_status_feed_carries_counts_and_masked_rows_only(client, world, campaign, screened_class):
    client.force_login(world.principal_a1)
    data = client.get(_url(campaign, world.class_a1_3, "screening:proctor_status")).json()
    assert (data["invited"], data["done"], data["to_keep"]) == (5, 4, 1)
    assert {tuple(sorted(s)) for s in data["students"]} == {("name", "status", "student_no")}
    assert {s["name"] for s in data["students"]} == {"王*明", "李*橙", "张*黄", "赵*绿", "钱*答"}
    assert {s["status"] for s in data["students"]} == {"done", "not_yet", "keep"}


def test_the_page_query_count_does_not_grow_with_the_class(client, world, campaign):
    client.force_login(world.homeroom_a1_3)
    _record(campaign, world.student_a1_3, RED_ASQ)
    counts = []
    for url in (_url(campaign, world.class_a1_3), _url(campaign, world.class_a1_3, "screening:proctor_status")):
        with CaptureQueriesContext(connection) as small:
            assert client.get(url).status_code == 200
        counts.append(len(small.captured_queries))
    for n in range(30):
        student = StudentFactory(school_class=world.class_a1_3)
        if n % 2:
            _record(campaign, student, CALM)
    for url, before in zip(
        (_url(campaign, world.class_a1_3), _url(campaign, world.class_a1_3, "screening:proctor_status")),
        counts,
        strict=True,
    ):
        with CaptureQueriesContext(connection) as large:
            response = client.get(url)
        # 12: the page's own handful, and the access-log entry of the read (4: savepoint, chain head, insert, release)
        assert len(large.captured_queries) == before <= 12, [q["sql"] for q in large.captured_queries]
    assert response.json()["invited"] == 31


# --- The campaign's class list ------------------------------------------------------------------------------------


def test_the_class_list_shows_the_classes_i_proctor_with_progress(client, world, campaign, screened_class):
    other = SchoolClassFactory(school=world.school_a1, grade=4, number=1)  # in the school, but not a target grade
    StudentFactory(school_class=other)
    campaign.target_grades = [7, 8]
    campaign.save(update_fields=["target_grades"])
    client.force_login(world.counselor_a1)
    response = client.get(reverse("screening:proctor_classes", kwargs={"campaign_id": campaign.pk}))
    rows = {c.pk: (c.done, c.invited, c.to_keep) for c in response.context["classes"]}
    assert rows == {world.class_a1_3.pk: (4, 5, 1), world.class_a1_5.pk: (0, 1, 0)}
    assert _url(campaign, world.class_a1_3) in response.content.decode()


def test_a_homeroom_teacher_lists_only_their_own_class(client, world, campaign):
    client.force_login(world.homeroom_a1_3)
    response = client.get(reverse("screening:proctor_classes", kwargs={"campaign_id": campaign.pk}))
    assert [c.pk for c in response.context["classes"]] == [world.class_a1_3.pk]


@pytest.mark.parametrize(("persona", "expected"), [("counselor_a2", 404), ("school_admin_b1", 404), ("nobody", 404)])
def test_the_class_list_of_a_campaign_i_cannot_see_is_not_found(client, world, persona, expected):
    only_a1 = CampaignFactory(schools=[world.school_a1])
    client.force_login(getattr(world, persona))
    url = reverse("screening:proctor_classes", kwargs={"campaign_id": only_a1.pk})
    assert client.get(url).status_code == expected


def test_the_class_list_query_count_does_not_grow_with_the_school(client, world, campaign):
    client.force_login(world.principal_a1)
    url = reverse("screening:proctor_classes", kwargs={"campaign_id": campaign.pk})
    with CaptureQueriesContext(connection) as small:
        client.get(url)
    for number in range(10, 30):
        StudentFactory(school_class=SchoolClassFactory(school=world.school_a1, grade=8, number=number))
    with CaptureQueriesContext(connection) as large:
        response = client.get(url)
    assert len(response.context["classes"]) == 22
    assert len(large.captured_queries) == len(small.captured_queries) <= 12  # with the access-log entry (4)
