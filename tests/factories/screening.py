import datetime
import io

import factory
from django.core.management import call_command
from django.utils import timezone
from factory.django import DjangoModelFactory

from screening.campaigns import status_due
from screening.models import Campaign, CampaignInstrument, CampaignTerm, Instrument, RuleSet
from tests.factories.roster import UserFactory


def shipped_definitions_loaded() -> None:
    if not RuleSet.objects.exists():
        call_command("load_instruments", stdout=io.StringIO())


class CampaignFactory(DjangoModelFactory):
    class Meta:
        model = Campaign
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"2026秋季测评{n}")
    school_year = "2026-2027"
    term = CampaignTerm.AUTUMN
    ruleset = factory.LazyFunction(
        lambda: (shipped_definitions_loaded(), RuleSet.objects.get(code="adolescent-default"))[1]
    )
    opens_at = factory.LazyFunction(lambda: timezone.now() - datetime.timedelta(days=1))
    closes_at = factory.LazyFunction(lambda: timezone.now() + datetime.timedelta(days=6))
    created_by = factory.SubFactory(UserFactory)
    status = factory.LazyAttribute(lambda o: status_due(o.opens_at, o.closes_at, timezone.now()))

    @factory.post_generation
    def schools(self, create, extracted, **kwargs):
        if create and extracted:
            self.schools.set(extracted)

    @factory.post_generation
    def with_instruments(self, create, extracted, **kwargs):
        if create:
            for position, code in enumerate(extracted or ["PHQ9", "GAD7", "ASQ"]):
                CampaignInstrument.objects.create(
                    campaign=self, instrument=Instrument.objects.get(code=code), position=position
                )


# Answer sets that score to the tier they are named after with the shipped instruments and rules.
CALM = {
    "PHQ9": dict.fromkeys(range(1, 10), "0"),
    "GAD7": dict.fromkeys(range(1, 8), "0"),
    "ASQ": {1: "no", 2: "no", 3: "no", 4: "no"},
}
ANSWERS = {
    "green": CALM,
    "yellow": {**CALM, "PHQ9": {**dict.fromkeys(range(1, 10), "0"), **dict.fromkeys(range(1, 6), "2")}},  # total 10
    "orange": {**CALM, "ASQ": {1: "yes", 2: "no", 3: "no", 4: "no", 5: "no"}},
    "red": {**CALM, "ASQ": {1: "yes", 2: "no", 3: "no", 4: "no", 5: "yes"}},
}
