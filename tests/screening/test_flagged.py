"""The flagged-students list: readers only, red first, reasons in words, filters inside scope, masked names."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from screening.services import campaign_definitions, result_record
from tests.factories.roster import SchoolClassFactory, StudentFactory
from tests.factories.screening import ANSWERS, CampaignFactory

RED_REASON_ZH = "ASQ 急迫性问题回答“是”（此刻有自杀念头）"
RED_REASON_EN = "ASQ acuity question answered yes (suicidal thoughts now)"
ORANGE_REASON_ZH = "ASQ 第1-4题中有“是”或拒答"
YELLOW_REASON_EN = "PHQ-9 total 10-14 (moderate)"


def record(campaign, student, tier, **kwargs):
    result = result_record(campaign=campaign, student=student, answers=ANSWERS[tier], source="portal", **kwargs)
    assert result.result.tier == tier
    return result.result


@pytest.fixture
def campaign(world):
    return CampaignFactory(schools=[world.school_a1, world.school_a2])


@pytest.fixture
def flagged_a1(world, campaign):
    """In A1: 7-3 has a yellow and a green, 7-5 has a red and an orange; A2 has an orange."""
    definitions = campaign_definitions(campaign)
    other_a1_3 = StudentFactory(school_class=world.class_a1_3, name="李四")
    green = StudentFactory(school_class=world.class_a1_3, name="绿色同学")
    other_a1_5 = StudentFactory(school_class=world.class_a1_5)
    at = timezone.now() - datetime.timedelta(hours=3)
    record(campaign, world.student_a1_3, "yellow", definitions=definitions, submitted_at=at)
    record(campaign, green, "green", definitions=definitions)
    record(campaign, world.student_a1_5, "red", definitions=definitions)
    record(campaign, other_a1_5, "orange", definitions=definitions)
    record(campaign, world.student_a2, "orange", definitions=definitions)
    return {"yellow": world.student_a1_3, "green": green, "red": world.student_a1_5, "orange": other_a1_5,
            "unanswered": other_a1_3}  # fmt: skip


def flagged_url(campaign, **params):
    url = reverse("screening:flagged", args=[campaign.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")


def get_rows(client, user, campaign, **params):
    client.force_login(user)
    response = client.get(flagged_url(campaign, **params))
    assert response.status_code == 200
    return response, response.context["rows"]


def test_the_list_is_red_first_then_orange_then_yellow_and_leaves_out_green(client, world, campaign, flagged_a1):
    response, rows = get_rows(client, world.counselor_a1, campaign)
    assert [(r.student_no, r.tier) for r in rows] == [
        (flagged_a1["red"].student_no, "red"),
        (flagged_a1["orange"].student_no, "orange"),
        (flagged_a1["yellow"].student_no, "yellow"),
    ]
    page = response.content.decode()
    assert page.index(flagged_a1["red"].student_no) < page.index(flagged_a1["orange"].student_no)
    assert page.index(flagged_a1["orange"].student_no) < page.index(flagged_a1["yellow"].student_no)
    assert flagged_a1["green"].student_no not in page
    assert world.student_a2.student_no not in page  # A2 is another school
    assert 'class="tier tier-red"' in page


def test_names_are_masked(client, world, campaign, flagged_a1):
    response, rows = get_rows(client, world.principal_a1, campaign)
    page = response.content.decode()
    assert "王*明" in page and "王小明" not in page


def test_reasons_are_the_pinned_rule_sets_words_in_the_active_language(client, world, campaign, flagged_a1):
    response, rows = get_rows(client, world.counselor_a1, campaign)
    assert rows[0].reasons == [RED_REASON_ZH, ORANGE_REASON_ZH]  # asq-acuity and asq-positive both fired
    assert RED_REASON_ZH in response.content.decode()
    client.cookies["django_language"] = "en"
    response, rows = get_rows(client, world.counselor_a1, campaign)
    assert rows[0].reasons[0] == RED_REASON_EN and rows[-1].reasons == [YELLOW_REASON_EN]
    assert RED_REASON_EN in response.content.decode()


def test_the_district_centre_sees_flagged_students_of_all_its_schools(client, world, campaign, flagged_a1):
    _, rows = get_rows(client, world.centre_district_a, campaign)
    assert [r.tier for r in rows] == ["red", "orange", "orange", "yellow"]
    assert {r.student_no for r in rows} >= {world.student_a2.student_no}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"tier": "red"}, ["red"]),
        ({"tier": "orange"}, ["orange", "orange"]),  # A1 and A2
        ({"grade": 7}, ["red", "orange", "yellow"]),
        ({"school": "school_a1", "class": "class_a1_3"}, ["yellow"]),
        ({"school": "school_a1", "class": "class_a1_5", "tier": "orange"}, ["orange"]),
        ({"school": "school_a2"}, ["orange"]),
    ],
)
def test_filters_narrow_the_list(client, world, campaign, flagged_a1, params, expected):
    resolved = {k: (getattr(world, v).pk if isinstance(v, str) and hasattr(world, v) else v) for k, v in params.items()}
    _, rows = get_rows(client, world.centre_district_a, campaign, **resolved)
    assert [r.tier for r in rows] == expected
    if "school" in params and params["school"] == "school_a2":
        assert [r.student_no for r in rows] == [world.student_a2.student_no]


def test_filter_options_stay_inside_the_users_scope(client, world, campaign, flagged_a1):
    SchoolClassFactory(school=world.school_a1, grade=9, number=1)  # not a target grade
    response, _ = get_rows(client, world.counselor_a1, campaign)
    form = response.context["form"]
    assert list(form.fields["school"].queryset) == [world.school_a1]
    assert [v for v, _ in form.fields["grade"].choices if v != ""] == [7]
    assert set(form.fields["class"].queryset) == {world.class_a1_3, world.class_a1_5}
    assert [v for v, _ in form.fields["tier"].choices if v] == ["red", "orange", "yellow"]


@pytest.mark.parametrize(
    "params", [{"school": "school_a2"}, {"class": "class_a2"}, {"school": "school_a1", "class": "class_a2"}]
)
def test_a_forged_filter_outside_scope_lists_nothing_and_says_so(client, world, campaign, flagged_a1, params):
    resolved = {k: getattr(world, v).pk for k, v in params.items()}
    response, rows = get_rows(client, world.counselor_a1, campaign, **resolved)
    assert rows == [] and response.context["form"].errors
    assert world.student_a2.student_no not in response.content.decode()


@pytest.mark.parametrize("persona", ["homeroom_a1_3", "school_admin_a1", "admin_district_a", "city_admin", "nobody"])
def test_roles_that_do_not_read_results_get_404_and_no_tiers(client, world, campaign, flagged_a1, persona):
    client.force_login(getattr(world, persona))
    response = client.get(flagged_url(campaign))
    page = response.content.decode()
    assert response.status_code == 404  # as if missing, like any refusal (the access matrix's rule)
    assert "tier-red" not in page and flagged_a1["red"].student_no not in page and RED_REASON_ZH not in page


def test_a_campaign_the_reader_cannot_see_is_404(client, world, flagged_a1):
    a1_only = CampaignFactory(schools=[world.school_a1])
    client.force_login(world.counselor_a2)
    assert client.get(flagged_url(a1_only)).status_code == 404
    client.force_login(world.counselor_a1)
    assert client.get(reverse("screening:flagged", args=[a1_only.pk + 1000])).status_code == 404


def test_the_counselor_of_the_sibling_school_sees_only_their_own(client, world, campaign, flagged_a1):
    _, rows = get_rows(client, world.counselor_a2, campaign)
    assert [r.student_no for r in rows] == [world.student_a2.student_no]


def test_the_list_is_paginated_by_50(client, world, campaign):
    definitions = campaign_definitions(campaign)
    for student in StudentFactory.create_batch(52, school_class=world.class_a1_3):
        record(campaign, student, "yellow", definitions=definitions)
    _, rows = get_rows(client, world.counselor_a1, campaign)
    assert len(rows) == 50
    response, rows = get_rows(client, world.counselor_a1, campaign, page=2)
    assert len(rows) == 2 and response.context["page"].paginator.count == 52


def _queries(client, user, url) -> int:
    client.force_login(user)
    client.get(url)  # warm the once-per-process caches
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("filtered", [False, True])
def test_the_list_runs_the_same_number_of_queries_for_1_and_50_rows(client, world, campaign, filtered):
    definitions = campaign_definitions(campaign)
    record(campaign, world.student_a1_3, "red", definitions=definitions)
    params = {"school": world.school_a1.pk, "grade": 7} if filtered else {}
    url = flagged_url(campaign, **params)
    one = _queries(client, world.counselor_a1, url)
    for i, student in enumerate(StudentFactory.create_batch(49, school_class=world.class_a1_5)):
        record(campaign, student, ["yellow", "orange", "red"][i % 3], definitions=definitions)
    client.force_login(world.counselor_a1)
    assert len(client.get(url).context["rows"]) == 50
    assert _queries(client, world.counselor_a1, url) == one


def test_the_list_and_a_refusal_are_in_the_access_log(client, world, campaign, flagged_a1):
    from roster.models import AccessLogEntry
    from screening.models import ScreeningResult

    get_rows(client, world.counselor_a1, campaign)
    (listed,) = AccessLogEntry.objects.filter(action="list")
    shown = set(ScreeningResult.objects.filter(student__school=world.school_a1).exclude(tier="green").values_list(
        "pk", flat=True))  # fmt: skip
    assert (listed.object_type, listed.outcome, listed.actor) == ("screening.screeningresult", "ok", "counselor_a1")
    assert {int(pk) for pk in listed.object_ids.split(",")} == shown
    client.force_login(world.homeroom_a1_3)  # not a reader of results
    client.get(flagged_url(campaign))
    refused = AccessLogEntry.objects.filter(action="list").last()
    assert (refused.outcome, refused.actor) == ("denied", "homeroom_a1_3")
