"""Campaigns (测评批次): creating them within the creator's scope, their windows, and the open/close schedule.

May import: roster, screening. The admin and the `screening.campaigns_open_and_close` schedule call these.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from roster import scoping
from roster.models import School, SchoolClass, Student
from screening.definitions import DefinitionError, parse_ruleset
from screening.models import Campaign, CampaignInstrument, CampaignStatus, Instrument, RuleSet, ScreeningResult

logger = logging.getLogger(__name__)

SCHOOL_YEAR = re.compile(r"^(\d{4})-(\d{4})$")
SCHEDULE_NAME = "screening: open and close campaigns"
SCHEDULE_FUNC = "screening.campaigns.campaigns_open_and_close"


def status_due(opens_at: datetime, closes_at: datetime, now: datetime) -> str:
    """The status a campaign with this window should have at `now`."""
    if now >= closes_at:
        return CampaignStatus.CLOSED
    if now >= opens_at:
        return CampaignStatus.OPEN
    return CampaignStatus.SCHEDULED


def accepts_answers(campaign: Campaign, now: datetime | None = None) -> bool:
    """Open by the schedule and inside the window: a late schedule run never lets answers in after closing."""
    now = now or timezone.now()
    return campaign.status == CampaignStatus.OPEN and campaign.opens_at <= now < campaign.closes_at


def students_with_nothing_to_answer(students: list[Student], now: datetime | None = None) -> set[int]:
    """Ids of `students` (school and class loaded) who have a result in every campaign still meant for them (not
    closed, inviting their school and their grade), and at least one such campaign: they need no access code.

    roster.access_codes asks this (registered in ScreeningConfig.ready) before issuing a code. Two queries.
    """
    if not students:
        return set()
    now = now or timezone.now()
    links = (
        Campaign.schools.through.objects.filter(school_id__in={s.school_id for s in students})
        .exclude(campaign__status=CampaignStatus.CLOSED)
        .filter(campaign__closes_at__gt=now)
        .values_list("school_id", "campaign_id", "campaign__target_grades")
    )
    meant: dict[tuple[int, int], set[int]] = {}  # (school, grade) → campaigns
    for school_id, campaign_id, grades in links:
        for grade in grades or ():
            meant.setdefault((school_id, grade), set()).add(campaign_id)
    if not meant:
        return set()
    campaign_ids = set().union(*meant.values())
    answered: dict[int, set[int]] = {}
    for student_id, campaign_id in ScreeningResult.objects.filter(
        student_id__in=[s.pk for s in students], campaign_id__in=campaign_ids
    ).values_list("student_id", "campaign_id"):
        answered.setdefault(student_id, set()).add(campaign_id)
    done = set()
    for student in students:
        mine = meant.get((student.school_id, student.school_class.grade))
        if mine and mine <= answered.get(student.pk, set()):
            done.add(student.pk)
    return done


def campaigns_visible(user) -> QuerySet[Campaign]:
    """Campaigns that include at least one school the user can see (any role, including homeroom teachers).

    Access: any signed-in user; a campaign's results stay behind the ScreeningResult readers rule.
    """
    # A homeroom teacher sees no School row, only their class: reach the school through the classes too.
    schools = Q(school__in=scoping.visible(user, School)) | Q(
        school__in=scoping.visible(user, SchoolClass).values("school_id")
    )
    links = Campaign.schools.through.objects.filter(schools)
    return Campaign.objects.filter(pk__in=links.values("campaign_id"))


def schools_for_campaigns(user) -> QuerySet[School]:
    """Schools this user may put in a campaign: city/district admins and centres, within their subtree."""
    return scoping.parents_for_new(user, Campaign, School.objects.all())


def campaigns_changeable(user) -> QuerySet[Campaign]:
    """Campaigns every school of which lies in the user's campaign scope (a district cannot edit a city campaign)."""
    outside = School.objects.exclude(pk__in=schools_for_campaigns(user).values("pk"))
    return campaigns_visible(user).exclude(schools__in=outside)


def school_year_check(text: str) -> None:
    match = SCHOOL_YEAR.match(text or "")
    if not match or int(match[2]) != int(match[1]) + 1:
        raise ValidationError({"school_year": _("Write the school year as two consecutive years, e.g. 2026-2027.")})


def window_check(opens_at: datetime, closes_at: datetime, *, now: datetime) -> None:
    if closes_at <= opens_at:
        raise ValidationError({"closes_at": _("The campaign must close after it opens.")})
    if closes_at <= now:
        raise ValidationError({"closes_at": _("The closing time has already passed.")})


def ruleset_check(ruleset: RuleSet, instruments: Iterable[Instrument]) -> None:
    parsed = {instrument.code: instrument.parsed() for instrument in instruments}
    if not parsed:
        raise ValidationError({"instruments": _("Choose at least one instrument.")})
    if len(parsed) != len(list(instruments)):
        raise ValidationError({"instruments": _("Choose each instrument once (one version).")})
    try:
        parse_ruleset(ruleset.definition, parsed, allow_absent=True)
    except DefinitionError as error:
        raise ValidationError(
            {"ruleset": _("This rule set does not fit the chosen instruments: %(error)s") % {"error": error}}
        ) from None


@transaction.atomic
def campaign_create(
    *, actor, name: str, school_year: str, term: str, instruments: list[Instrument], ruleset: RuleSet,
    target_grades: list[int], schools: Iterable[School], opens_at: datetime, closes_at: datetime,
) -> Campaign:  # fmt: skip
    """Create a campaign over `schools`, asking `instruments` in that order, scored with the pinned `ruleset`.

    Access: city admins/centres and district admins/centres, for schools in their subtree (PermissionDenied
    otherwise, nothing written). Audit: a history row for the campaign; a log line with ids and counts.
    Raises ValidationError for a bad year, window, grade list or rule set that does not fit the instruments.
    """
    now = timezone.now()
    school_ids = {school.pk for school in schools}
    if not school_ids:
        raise ValidationError({"schools": _("Choose at least one school.")})
    allowed = set(schools_for_campaigns(actor).filter(pk__in=school_ids).values_list("pk", flat=True))
    if allowed != school_ids:
        raise PermissionDenied(_("Some of these schools are outside your scope."))
    school_year_check(school_year)
    window_check(opens_at, closes_at, now=now)
    grades = sorted({int(g) for g in target_grades})
    if not grades or not all(1 <= g <= 12 for g in grades):
        raise ValidationError({"target_grades": _("Choose at least one grade between 1 and 12.")})
    ruleset_check(ruleset, instruments)
    campaign = Campaign(
        name=name, school_year=school_year, term=term, ruleset=ruleset, target_grades=grades,
        opens_at=opens_at, closes_at=closes_at, created_by=actor, status=status_due(opens_at, closes_at, now),
    )  # fmt: skip
    campaign._history_user = actor
    campaign.save()
    CampaignInstrument.objects.bulk_create(
        CampaignInstrument(campaign=campaign, instrument=instrument, position=position)
        for position, instrument in enumerate(instruments)
    )
    campaign.schools.set(school_ids)
    logger.info("campaign %s created by user %s: %d schools", campaign.pk, actor.pk, len(school_ids))
    return campaign


@transaction.atomic
def campaign_reschedule(*, actor, campaign: Campaign, name: str, opens_at: datetime, closes_at: datetime) -> Campaign:
    """Rename a campaign or move its window. A campaign that has opened keeps its opening time; a closed one is final.

    Access: campaigns_changeable(actor) (PermissionDenied otherwise). Audit: a history row by `actor`.
    """
    now = timezone.now()
    campaign = campaigns_changeable(actor).select_for_update().get(pk=campaign.pk)
    if campaign.status == CampaignStatus.CLOSED:
        raise ValidationError(_("This campaign has closed; its window can no longer change."))
    if campaign.status == CampaignStatus.OPEN and opens_at != campaign.opens_at:
        raise ValidationError({"opens_at": _("This campaign is already open; its opening time can no longer change.")})
    window_check(opens_at, closes_at, now=now)
    campaign.name, campaign.opens_at, campaign.closes_at = name, opens_at, closes_at
    campaign.status = status_due(opens_at, closes_at, now)
    campaign._history_user = actor
    campaign._change_reason = "rescheduled"
    campaign.save()
    logger.info("campaign %s rescheduled by user %s", campaign.pk, actor.pk)
    return campaign


def campaigns_open_and_close(now: datetime | None = None) -> dict[str, int]:
    """The schedule's job (every minute): open campaigns whose time has come, close those whose window ended.

    Audit: a history row per change ("opened by schedule" / "closed by schedule"). Returns counts.
    """
    now = now or timezone.now()
    moved = {CampaignStatus.OPEN: 0, CampaignStatus.CLOSED: 0}
    with transaction.atomic():
        due = Campaign.objects.select_for_update().exclude(status=CampaignStatus.CLOSED).filter(opens_at__lte=now)
        for campaign in due:
            status = status_due(campaign.opens_at, campaign.closes_at, now)
            if status == campaign.status:
                continue
            campaign.status = status
            campaign._change_reason = f"{status} by schedule"
            campaign.save(update_fields=["status"])
            moved[status] += 1
    if any(moved.values()):
        logger.info("campaigns opened: %d, closed: %d", moved[CampaignStatus.OPEN], moved[CampaignStatus.CLOSED])
    return {str(k): v for k, v in moved.items()}
