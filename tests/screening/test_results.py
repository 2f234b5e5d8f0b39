"""Recording a student's answers: scored, tiered, stored once, flagged, and readable only by the right roles."""

import pytest

from roster import scoping
from screening.definitions import RiskTier
from screening.models import ScreeningResult
from screening.scoring import AnswerError
from screening.services import NotInvited, result_record
from screening.signals import student_flagged
from tests.factories.screening import CampaignFactory

CALM = {
    "PHQ9": dict.fromkeys(range(1, 10), "0"),
    "GAD7": dict.fromkeys(range(1, 8), "0"),
    "ASQ": {1: "no", 2: "no", 3: "no", 4: "no"},
}
AT_RISK = {**CALM, "ASQ": {1: "yes", 2: "no", 3: "no", 4: "no", 5: "yes"}}


@pytest.fixture
def campaign(world):
    return CampaignFactory(schools=[world.school_a1, world.school_a2])


@pytest.fixture
def flags():
    received = []

    def receiver(sender, result, **kwargs):
        received.append(result)

    student_flagged.connect(receiver)
    yield received
    student_flagged.disconnect(receiver)


def test_a_red_result_is_stored_with_its_reasons_and_flags_the_student(
    campaign, world, flags, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        recorded = result_record(campaign=campaign, student=world.student_a1_3, answers=AT_RISK, source="portal")
    result = recorded.result
    assert (recorded.outcome, result.tier) == ("new", RiskTier.RED)
    assert result.fired_rules == ["asq-acuity", "asq-positive"]
    assert result.ruleset == campaign.ruleset
    assert flags == [result]


def test_a_green_result_flags_nobody(campaign, world, flags, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        recorded = result_record(campaign=campaign, student=world.student_a1_3, answers=CALM, source="portal")
    assert recorded.result.tier == RiskTier.GREEN and flags == []


def test_the_same_answers_again_change_nothing(campaign, world, django_capture_on_commit_callbacks):
    result_record(campaign=campaign, student=world.student_a1_3, answers=CALM, source="portal")
    again = result_record(campaign=campaign, student=world.student_a1_3, answers=CALM, source="portal")
    assert again.outcome == "unchanged"
    assert ScreeningResult.objects.count() == 1 and again.result.history.count() == 1


def test_changed_answers_update_the_result_and_keep_the_earlier_one_in_history(campaign, world):
    result_record(campaign=campaign, student=world.student_a1_3, answers=CALM, source="import", from_import=True)
    changed = result_record(campaign=campaign, student=world.student_a1_3, answers=AT_RISK, source="import")
    assert changed.outcome == "changed"
    assert [h.tier for h in changed.result.history.order_by("history_date")] == [RiskTier.GREEN, RiskTier.RED]


@pytest.mark.parametrize(
    ("answers", "error"),
    [
        ({**CALM, "GAD7": {1: "0"}}, AnswerError),  # incomplete
        ({**CALM, "BDI": {1: "0"}}, AnswerError),  # not in this campaign
    ],
)
def test_incomplete_or_foreign_answers_store_nothing(campaign, world, answers, error):
    with pytest.raises(error):
        result_record(campaign=campaign, student=world.student_a1_3, answers=answers, source="portal")
    assert not ScreeningResult.objects.exists()


def test_students_outside_the_campaign_are_refused(campaign, world):
    with pytest.raises(NotInvited):
        result_record(campaign=campaign, student=world.student_b1, answers=CALM, source="portal")


@pytest.mark.parametrize(
    ("persona", "sees"),
    [
        ("counselor_a1", True),
        ("principal_a1", True),
        ("auditor_district_a", True),
        ("centre_district_a", True),
        ("homeroom_a1_3", False),  # DESIGN §5: never raw answers or scores, even of their own class
        ("school_admin_a1", False),  # manages the roster, not mental-health records
        ("counselor_a2", False),  # sibling school
        ("city_admin", False),
    ],
)
def test_results_are_readable_by_psychology_roles_of_that_scope_only(campaign, world, persona, sees):
    result_record(campaign=campaign, student=world.student_a1_3, answers=CALM, source="portal")
    assert scoping.visible(getattr(world, persona), ScreeningResult).exists() == sees
