"""Campaigns: created in the admin within the creator's scope, opened and closed by the schedule."""

import datetime

import pytest
from django.utils import timezone
from django_q.models import Schedule

from screening.campaigns import SCHEDULE_FUNC, accepts_answers, campaigns_open_and_close
from screening.models import Campaign, Instrument
from tests.factories.screening import CampaignFactory, shipped_definitions_loaded

ADD_URL = "/admin/screening/campaign/add/"


def _when(delta: datetime.timedelta) -> dict:
    moment = timezone.localtime(timezone.now() + delta)
    return {"0": moment.strftime("%Y-%m-%d"), "1": moment.strftime("%H:%M:%S")}


def campaign_post(**changes) -> dict:
    shipped_definitions_loaded()
    opens, closes = _when(datetime.timedelta(hours=1)), _when(datetime.timedelta(days=7))
    data = {
        "name": "2026秋季心理测评",
        "school_year": "2026-2027",
        "term": "autumn",
        "chosen_instruments": [i.pk for i in Instrument.objects.exclude(code="TCHK")],
        "ruleset": 1,
        "grades": ["4", "5", "6", "7", "8", "10", "11"],
        "coverage": "all",
        "opens_at_0": opens["0"], "opens_at_1": opens["1"],
        "closes_at_0": closes["0"], "closes_at_1": closes["1"],
    }  # fmt: skip
    from screening.models import RuleSet

    data["ruleset"] = RuleSet.objects.get(code="adolescent-default").pk
    data.update(changes)
    return data


def test_a_city_admin_creates_a_city_wide_campaign_in_the_admin(client, world):
    client.force_login(world.city_admin)
    form = client.get(ADD_URL)
    assert form.status_code == 200
    assert form.context["adminform"].form["grades"].value() == [4, 5, 6, 7, 8, 10, 11]
    response = client.post(ADD_URL, campaign_post())
    assert response.status_code == 302, response.context["adminform"].form.errors
    campaign = Campaign.objects.get()
    assert set(campaign.schools.all()) == {world.school_a1, world.school_a2, world.school_b1}  # not the other city
    assert [i.code for i in campaign.instruments.order_by("campaigninstrument__position")] == ["PHQ9", "GAD7", "ASQ"]
    assert campaign.status == "scheduled" and campaign.created_by == world.city_admin
    assert campaign.history.get().history_user == world.city_admin


def test_a_district_admin_covers_only_their_district(client, world):
    client.force_login(world.admin_district_a)
    assert client.post(ADD_URL, campaign_post()).status_code == 302
    assert set(Campaign.objects.get().schools.all()) == {world.school_a1, world.school_a2}


def test_a_district_admin_cannot_choose_another_districts_school(client, world):
    client.force_login(world.admin_district_a)
    response = client.post(ADD_URL, campaign_post(coverage="schools", chosen_schools=[world.school_b1.pk]))
    assert response.status_code == 200
    assert "chosen_schools" in response.context["adminform"].form.errors
    assert not Campaign.objects.exists()


def test_chosen_schools_and_one_district(client, world):
    client.force_login(world.city_centre)
    client.post(ADD_URL, campaign_post(coverage="schools", chosen_schools=[world.school_a2.pk]))
    client.post(ADD_URL, campaign_post(name="西山区", coverage="district", district=world.district_b.pk))
    assert set(Campaign.objects.get(name="2026秋季心理测评").schools.all()) == {world.school_a2}
    assert set(Campaign.objects.get(name="西山区").schools.all()) == {world.school_b1}


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"school_year": "2026-2028"}, "school_year"),
        ({"closes_at_0": "2020-01-01", "closes_at_1": "08:00:00"}, "closes_at"),
        ({"grades": []}, "grades"),
        ({"chosen_instruments": []}, "chosen_instruments"),
        ({"coverage": "district"}, "district"),
    ],
)
def test_mistakes_are_explained_and_nothing_is_created(client, world, changes, field):
    client.force_login(world.city_admin)
    response = client.post(ADD_URL, campaign_post(**changes))
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not Campaign.objects.exists()


@pytest.mark.parametrize("persona", ["school_admin_a1", "auditor_district_a"])
def test_school_admins_and_auditors_cannot_create_campaigns(client, world, persona):
    client.force_login(getattr(world, persona))
    assert client.get(ADD_URL).status_code == 403
    assert client.post(ADD_URL, campaign_post()).status_code == 403
    assert not Campaign.objects.exists()


def test_a_district_admin_sees_but_cannot_change_a_city_campaign(client, world):
    campaign = CampaignFactory(schools=[world.school_a1, world.school_b1], created_by=world.city_admin)
    client.force_login(world.admin_district_a)
    page = client.get(f"/admin/screening/campaign/{campaign.pk}/change/")
    assert page.status_code == 200
    assert "name" not in page.context["adminform"].form.fields
    client.force_login(world.admin_district_b)
    assert client.get("/admin/screening/campaign/").context["cl"].result_count == 1
    client.force_login(world.city_admin_x)
    assert client.get(f"/admin/screening/campaign/{campaign.pk}/change/").status_code == 404


def test_an_open_campaign_can_be_extended_but_not_reopened_earlier(client, world):
    campaign = CampaignFactory(schools=[world.school_a1])
    client.force_login(world.city_admin)
    url = f"/admin/screening/campaign/{campaign.pk}/change/"
    later = _when(datetime.timedelta(days=14))
    opens = timezone.localtime(campaign.opens_at)
    base = {
        "name": campaign.name,
        "opens_at_0": opens.strftime("%Y-%m-%d"),
        "opens_at_1": opens.strftime("%H:%M:%S.%f"),
    }
    response = client.post(url, {**base, "closes_at_0": later["0"], "closes_at_1": later["1"]})
    assert response.status_code == 302, response.context["adminform"].form.errors
    campaign.refresh_from_db()
    assert campaign.closes_at.date() == (timezone.now() + datetime.timedelta(days=14)).date()
    assert campaign.history.first().history_user == world.city_admin
    earlier = _when(datetime.timedelta(days=-3))
    response = client.post(url, {**base, "opens_at_0": earlier["0"], "opens_at_1": earlier["1"],
                                 "closes_at_0": later["0"], "closes_at_1": later["1"]})  # fmt: skip
    assert "opens_at" in response.context["adminform"].form.errors


def test_the_schedule_opens_and_closes_campaigns_at_their_times(world):
    now = timezone.now()
    hour = datetime.timedelta(hours=1)
    due = CampaignFactory(schools=[world.school_a1], opens_at=now + hour, closes_at=now + 3 * hour)
    assert due.status == "scheduled" and not accepts_answers(due, now)

    assert campaigns_open_and_close(now + 2 * hour) == {"open": 1, "closed": 0}
    due.refresh_from_db()
    assert due.status == "open" and accepts_answers(due, now + 2 * hour)
    assert due.history.first().history_change_reason == "open by schedule"

    assert campaigns_open_and_close(now + 4 * hour) == {"open": 0, "closed": 1}
    due.refresh_from_db()
    assert due.status == "closed" and not accepts_answers(due, now + 4 * hour)
    assert campaigns_open_and_close(now + 5 * hour) == {"open": 0, "closed": 0}


def test_a_late_schedule_never_lets_answers_in_after_closing(world):
    campaign = CampaignFactory(schools=[world.school_a1])
    assert accepts_answers(campaign)
    assert not accepts_answers(campaign, campaign.closes_at)  # status still "open" until the next run


def test_the_schedule_is_installed_by_the_migrations(db):
    schedule = Schedule.objects.get(func=SCHEDULE_FUNC)
    assert schedule.schedule_type == Schedule.MINUTES and schedule.minutes == 1 and schedule.repeats < 0
