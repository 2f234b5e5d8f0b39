"""Re-scoring a campaign under a new rule-set version: explicit, logged, earlier results kept in history."""

import copy
import io
import logging

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import CommandError, call_command
from django.utils import translation

from screening.definitions import RiskTier
from screening.models import Campaign, RuleSet, ScreeningResult
from screening.rescoring import RescoreRefused, campaign_rescore
from screening.services import result_record
from screening.signals import student_flagged
from tests.factories.roster import StudentFactory
from tests.factories.screening import CampaignFactory


def answers(phq: int = 0, phq9: int = 0) -> dict:
    return {
        "PHQ9": {**dict.fromkeys(range(1, 9), str(phq)), 9: str(phq9)},
        "GAD7": dict.fromkeys(range(1, 8), "0"),
        "ASQ": {1: "no", 2: "no", 3: "no", 4: "no"},
    }


@pytest.fixture
def campaign(world):
    return CampaignFactory(schools=[world.school_a1])


@pytest.fixture
def stricter(campaign):
    """Version 2 of the default rule set: PHQ-9 totals of 5-14 (not 10-14) are yellow."""
    definition = copy.deepcopy(campaign.ruleset.definition)
    definition["version"] = 2
    rule = next(r for r in definition["rules"] if r["id"] == "phq9-total-moderate")
    rule["when"]["between"] = [5, 14]
    return RuleSet.objects.create(code=campaign.ruleset.code, version=2, definition=definition)


@pytest.fixture
def results(campaign, world):
    """Three students: PHQ-9 total 8 (green, yellow under v2), all zero (green), item 9 frequent (red)."""
    third = StudentFactory(school_class=world.class_a1_5)
    rows = {}
    for student, given in ((world.student_a1_3, answers(phq=1)), (world.student_a1_5, answers()),
                           (third, answers(phq9=2))):  # fmt: skip
        rows[student.pk] = result_record(campaign=campaign, student=student, answers=given, source="portal").result
    return list(rows.values())


@pytest.fixture
def flags():
    received = []

    def receiver(sender, result, **kwargs):
        received.append(result.pk)

    student_flagged.connect(receiver)
    yield received
    student_flagged.disconnect(receiver)


def test_rescoring_updates_what_changed_and_keeps_the_earlier_result_in_history(
    campaign, stricter, results, world, caplog
):
    rising, calm, red = results
    old = campaign.ruleset
    with caplog.at_level(logging.INFO, logger="screening.rescoring"):
        report = campaign_rescore(actor=world.city_centre, campaign=campaign, ruleset=stricter)

    assert (report.total, report.changed, report.rose) == (3, 1, 1)
    assert report.tiers_before == {"green": 2, "yellow": 0, "orange": 0, "red": 1}
    assert report.tiers_after == {"green": 1, "yellow": 1, "orange": 0, "red": 1}
    rising.refresh_from_db()
    assert (rising.tier, rising.ruleset, rising.fired_rules) == (RiskTier.YELLOW, stricter, ["phq9-total-moderate"])
    earlier, latest = rising.history.order_by("history_id")
    assert (earlier.tier, earlier.ruleset_id, earlier.fired_rules) == (RiskTier.GREEN, old.pk, [])
    assert (latest.history_type, latest.tier, latest.history_user) == ("~", RiskTier.YELLOW, world.city_centre)
    assert "v1" in latest.history_change_reason and "v2" in latest.history_change_reason
    assert "city_centre" in latest.history_change_reason
    # The same outcome under v2: not rewritten, no history row, still says which version scored it.
    for unchanged in (calm, red):
        unchanged.refresh_from_db()
        assert unchanged.history.count() == 1 and unchanged.ruleset == old
    campaign.refresh_from_db()
    assert campaign.ruleset == stricter
    pinned = campaign.history.order_by("history_id").last()
    assert (pinned.ruleset_id, pinned.history_user) == (stricter.pk, world.city_centre)
    logged = [r.getMessage() for r in caplog.records if r.name == "screening.rescoring"]
    assert len(logged) == 1 and "3 results, 1 changed, 1 rose" in logged[0]
    assert all(s.name not in logged[0] and s.student_no not in logged[0] for s in (world.student_a1_3,))


def test_rescoring_again_with_the_same_version_changes_nothing(campaign, stricter, results, world):
    campaign_rescore(actor=world.city_admin, campaign=campaign, ruleset=stricter)
    history = ScreeningResult.history.count()
    report = campaign_rescore(actor=world.city_admin, campaign=campaign, ruleset=stricter)
    assert (report.changed, report.rose) == (0, 0)
    assert ScreeningResult.history.count() == history


def test_a_tier_that_rises_is_signalled_once_after_commit(
    campaign, stricter, results, world, flags, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        campaign_rescore(actor=world.superuser, campaign=campaign, ruleset=stricter)
        assert flags == []  # not before commit
    # One signal after commit (the crisis alerts of the flagged results are queued after it, by workflows).
    assert [c.__qualname__ for c in callbacks].count("results_flagged_on_commit.<locals>.send") == 1
    assert flags == [results[0].pk]  # the rising one only: unchanged green and red results are not signalled again


def test_a_tier_that_falls_is_not_signalled(
    campaign, stricter, results, world, flags, django_capture_on_commit_callbacks
):
    campaign_rescore(actor=world.city_admin, campaign=campaign, ruleset=stricter)
    with django_capture_on_commit_callbacks(execute=True):
        default = RuleSet.objects.get(code="adolescent-default", version=1)
        report = campaign_rescore(actor=world.city_admin, campaign=campaign, ruleset=default)
    assert (report.changed, report.rose, flags) == (1, 0, [])
    assert ScreeningResult.objects.get(pk=results[0].pk).tier == RiskTier.GREEN


@pytest.mark.parametrize(
    "persona",
    [
        "centre_district_a",
        "admin_district_a",
        "auditor_district_a",
        "counselor_a1",
        "school_admin_a1",
        "city_admin_x",  # a city role, but of another city: the campaign's schools are not theirs
    ],
)
def test_only_city_roles_of_the_campaigns_city_may_rescore(campaign, stricter, results, world, persona):
    history = ScreeningResult.history.count()
    with pytest.raises(PermissionDenied):
        campaign_rescore(actor=getattr(world, persona), campaign=campaign, ruleset=stricter)
    campaign.refresh_from_db()
    assert campaign.ruleset != stricter and ScreeningResult.history.count() == history


def test_a_rule_set_that_cannot_score_the_campaign_is_refused_and_nothing_changes(campaign, results, world):
    definition = copy.deepcopy(campaign.ruleset.definition)
    definition["version"] = 3
    definition["rules"][0]["when"] = {"instrument": "ASQ", "item": 12, "at_least": 1}
    broken = RuleSet.objects.create(code=campaign.ruleset.code, version=3, definition=definition)
    with pytest.raises(RescoreRefused, match="ASQ has no item"):
        campaign_rescore(actor=world.city_admin, campaign=campaign, ruleset=broken)
    campaign.refresh_from_db()
    assert campaign.ruleset != broken


def test_a_dry_run_counts_and_writes_nothing(campaign, stricter, results, world):
    history = ScreeningResult.history.count()
    report = campaign_rescore(actor=world.city_admin, campaign=campaign, ruleset=stricter, dry_run=True)
    assert (report.changed, report.rose) == (1, 1)
    assert ScreeningResult.history.count() == history
    assert Campaign.objects.get(pk=campaign.pk).ruleset != stricter
    assert ScreeningResult.objects.get(pk=results[0].pk).tier == RiskTier.GREEN


def test_the_command_rescores_as_the_named_user(campaign, stricter, results, world):
    out = io.StringIO()
    call_command("rescore_campaign", "--campaign", str(campaign.pk), "--ruleset", "adolescent-default:2",
                 "--user", "city_centre", stdout=out)  # fmt: skip
    assert "3 results, changed 1, tier rose for 1" in out.getvalue()
    assert ScreeningResult.objects.get(pk=results[0].pk).history.latest("history_id").history_user == world.city_centre


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--ruleset", "adolescent-default"], "CODE:VERSION"),
        (["--ruleset", "adolescent-default:9"], "No rule set"),
        (["--ruleset", "adolescent-default:2", "--user", "centre_district_a"], "Only city"),
    ],
)
def test_the_command_explains_what_is_wrong(campaign, stricter, results, world, arguments, message):
    arguments = ["--campaign", str(campaign.pk), *arguments]
    if "--user" not in arguments:
        arguments += ["--user", "city_admin"]
    with translation.override("en"), pytest.raises(CommandError, match=message):
        call_command("rescore_campaign", *arguments, stdout=io.StringIO())
