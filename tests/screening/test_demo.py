"""The demo district's screening: an open campaign with results, and the showcase class left to answer live."""

import io

from django.core.management import call_command

from roster.models import AccessCode, RoleAssignment
from screening.campaigns import accepts_answers
from screening.models import Campaign, ScreeningResult
from tests.factories.screening import shipped_definitions_loaded


def test_the_demo_campaign_is_open_with_results_and_a_class_to_answer_live(demo_district, settings):
    settings.DEBUG = True
    shipped_definitions_loaded()
    call_command("seed_screening_demo", stdout=io.StringIO())
    campaign = Campaign.objects.get()
    assert accepts_answers(campaign)
    live_class = RoleAssignment.objects.get(user__username="homeroom").school_class
    assert ScreeningResult.objects.count() > 0
    assert not ScreeningResult.objects.filter(student__school_class=live_class).exists()
    assert AccessCode.objects.filter(student__school_class=live_class, used_at__isnull=True).count() == 2

    call_command("seed_screening_demo", stdout=io.StringIO())  # a second run changes nothing
    assert Campaign.objects.count() == 1
