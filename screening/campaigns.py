"""Campaigns (测评批次): creating them within the creator's scope, their windows, the open/close schedule, and who
a campaign is for (its target: the target grades of its schools, a special group, the students with open signals, or
an uploaded list; `invited_q` is the one rule every page, the portal and access-code issuing read).

May import: roster, screening. The admin and the `screening.campaigns_open_and_close` schedule call these.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from roster import scoping
from roster.importing import SCHOOL_CODE, Column, map_headers, read_table
from roster.models import School, SchoolClass, SpecialGroup, Student, StudentStatus
from roster.normalize import CellError, clean_digits, clean_identifier
from roster.roles import Role
from roster.special_groups import members_q
from roster.uploads import FileRefused
from screening.definitions import OBSERVER, DefinitionError, parse_ruleset
from screening.models import (
    Campaign,
    CampaignInstrument,
    CampaignStatus,
    CampaignTarget,
    Instrument,
    RuleSet,
    ScreeningResult,
)

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


# --- Who a campaign is for ------------------------------------------------------------------------------------
# One rule (`invited_q`), read by the portal, access-code issuing, the proctor and checklist pages, reports'
# denominators, results imports and result_record: enrolled students of the campaign's schools, and then, for the
# target grades (the yearly screening, default), those of its grades; for any other target, its resolved
# `target_students` (resolved when the campaign is saved, refreshable until it opens: `campaign_target_refresh`).


def invited_q(campaign, prefix: str = "") -> Q:
    """Who `campaign` is for, as a condition on Student (or on a model reaching it through `prefix`, "student__").

    `campaign` needs `pk`, `target` and `target_grades` (a Campaign, or the portal's CampaignWindow).
    """
    schools = Campaign.schools.through.objects.filter(campaign_id=campaign.pk).values("school_id")
    invited = Q(**{f"{prefix}status": StudentStatus.ACTIVE, f"{prefix}school__in": schools})
    if campaign.target == CampaignTarget.GRADES:
        return invited & Q(**{f"{prefix}school_class__grade__in": list(campaign.target_grades)})
    chosen = Campaign.target_students.through.objects.filter(campaign_id=campaign.pk).values("student_id")
    return invited & Q(**{f"{prefix}pk__in": chosen})


def invited_students(campaign) -> QuerySet[Student]:
    """The students `campaign` is for (invited_q as a queryset)."""
    return Student.objects.filter(invited_q(campaign))


def invitations(student_ids: Iterable[int], campaigns: Iterable) -> dict[int, set[int]]:
    """Student id → ids of those of `campaigns` that are for them (invited_q of each): one query, whatever the
    number of students and campaigns (a handful are open at a time)."""
    ids, campaigns = list(student_ids), list(campaigns)
    if not ids or not campaigns:
        return {}
    flags = {f"c{c.pk}": ExpressionWrapper(invited_q(c), output_field=BooleanField()) for c in campaigns}
    found: dict[int, set[int]] = {}
    for row in Student.objects.filter(pk__in=ids).annotate(**flags).values("pk", *flags):
        mine = {c.pk for c in campaigns if row[f"c{c.pk}"]}
        if mine:
            found[row["pk"]] = mine
    return found


def campaign_invites(campaign, student) -> bool:
    """Whether `campaign` is for `student` (invited_q; one query)."""
    return Student.objects.filter(invited_q(campaign), pk=student.pk).exists()


def invited_classes(campaign, classes: QuerySet[SchoolClass]) -> QuerySet[SchoolClass]:
    """The current classes among `classes` with at least one student the campaign is for."""
    return classes.filter(graduated_in__isnull=True, pk__in=invited_students(campaign).values("school_class_id"))


def invited_grades(campaign) -> set[int]:
    """The grades a campaign screens: its target grades, or the grades of its target students' classes."""
    if campaign.target == CampaignTarget.GRADES:
        return set(campaign.target_grades)
    return set(invited_students(campaign).order_by().values_list("school_class__grade", flat=True).distinct())


# --- Checklist campaigns: observer-rated instruments, filled by homeroom teachers -----------------------------


def checklist_campaigns_q(prefix: str = "") -> Q:
    """Campaigns (or models reaching them through `prefix`) whose instruments are observer-rated (排查表): filled by
    homeroom teachers, never offered in the portal, no access codes."""
    observed = CampaignInstrument.objects.filter(instrument__definition__rater=OBSERVER).values("campaign_id")
    return Q(**{f"{prefix}pk__in": observed})


def campaign_is_checklist(campaign) -> bool:
    return Campaign.objects.filter(checklist_campaigns_q(), pk=campaign.pk).exists()


def students_with_nothing_to_answer(students: list[Student], now: datetime | None = None) -> set[int]:
    """Ids of `students` who have a result in every portal campaign still meant for them (not closed, not a teacher
    checklist, and for them by invited_q), and at least one such campaign: they need no access code.

    roster.access_codes asks this (registered in ScreeningConfig.ready) before issuing a code. Three queries.
    """
    if not students:
        return set()
    now = now or timezone.now()
    campaigns = list(
        Campaign.objects.filter(schools__in={s.school_id for s in students}, closes_at__gt=now)
        .exclude(status=CampaignStatus.CLOSED)
        .exclude(checklist_campaigns_q())
        .distinct()
        .only("pk", "target", "target_grades")
    )
    meant = invitations([s.pk for s in students], campaigns)
    if not meant:
        return set()
    answered: dict[int, set[int]] = {}
    for student_id, campaign_id in ScreeningResult.objects.filter(
        student_id__in=list(meant), campaign_id__in=[c.pk for c in campaigns]
    ).values_list("student_id", "campaign_id"):
        answered.setdefault(student_id, set()).add(campaign_id)
    return {pk for pk, mine in meant.items() if mine <= answered.get(pk, set())}


# --- Resolving a target into its students ---------------------------------------------------------------------
# The students with open signals are cases' knowledge, and screening never imports cases: cases registers its finder
# at start-up (CasesConfig.ready). Given school ids, it returns the ids of students with an open signal there.
OpenSignalFinder = Callable[[set[int]], set[int]]
_open_signal_finder: OpenSignalFinder | None = None


def register_open_signal_finder(finder: OpenSignalFinder) -> None:
    global _open_signal_finder
    _open_signal_finder = finder


def open_signal_students(school_ids: set[int]) -> set[int]:
    if _open_signal_finder is None:  # cases is not installed: nobody has a signal
        return set()
    return set(_open_signal_finder(set(school_ids)))


LIST_COLUMNS = [SCHOOL_CODE, Column("student_no", "学号", ("student number", "student_no"))]
LIST_ERRORS_SHOWN = 20


@dataclass(frozen=True)
class TargetList:
    """An uploaded list's students (ids, within the campaign's schools), or the rows it could not use."""

    student_ids: frozenset[int]
    errors: tuple[str, ...] = ()


def target_list_read(data: bytes, filename: str, schools: Iterable[School]) -> TargetList:
    """Read an uploaded list (CSV in UTF-8 / GB18030, XLSX, XLS: the roster import's readers) of 学校代码, 学号 into
    the enrolled students it names among `schools`. Every row that names no such student is an error (line,
    value, why); a caller saves nothing when there is one. Raises FileRefused for an unreadable file.
    """
    rows = read_table(data, filename)
    header = next(rows, None)
    if header is None:
        raise FileRefused(_("The file is empty."))
    index = map_headers(header, LIST_COLUMNS, school_given=False)
    by_code = {school.code: school.pk for school in schools}
    wanted: list[tuple[int, int, str]] = []  # (line, school id, student number)
    errors: list[str] = []

    def cell(row, fieldname):
        at = index[fieldname]
        return row[at] if at < len(row) else None

    for line, row in enumerate(rows, start=2):
        if all(v is None or (isinstance(v, str) and not v.strip()) for v in row):
            continue
        try:
            code = clean_digits(cell(row, "school_code"), label=SCHOOL_CODE.header)
            number = clean_identifier(cell(row, "student_no"))
        except CellError as error:
            errors.append(_("Line %(line)d: %(error)s") % {"line": line, "error": error})
            continue
        if code not in by_code:
            errors.append(
                _("Line %(line)d: school code %(code)s is not one of this campaign's schools.")
                % {"line": line, "code": code}
            )
            continue
        wanted.append((line, by_code[code], number))
    if not wanted and not errors:
        raise FileRefused(_("The file lists no student."))
    found = {
        (school_id, number): pk
        for pk, school_id, number in Student.objects.filter(
            status=StudentStatus.ACTIVE,
            school_id__in={w[1] for w in wanted},
            student_no__in={w[2] for w in wanted},
        ).values_list("pk", "school_id", "student_no")
    }
    ids = set()
    for line, school_id, number in wanted:
        pk = found.get((school_id, number))
        if pk is None:
            errors.append(
                _("Line %(line)d: no enrolled student with number %(number)s at this school.")
                % {"line": line, "number": number}
            )
        else:
            ids.add(pk)
    return TargetList(frozenset(ids), tuple(errors))


def target_list_refusal(found: TargetList) -> ValidationError:
    shown = list(found.errors[:LIST_ERRORS_SHOWN])
    if len(found.errors) > LIST_ERRORS_SHOWN:
        shown.append(_("… and %(n)d more rows with errors.") % {"n": len(found.errors) - LIST_ERRORS_SHOWN})
    return ValidationError(
        {"target_file": [_("Nothing was saved: correct these rows and upload the list again."), *shown]}
    )


def target_resolve(
    target: str, *, school_ids: Iterable[int], group: SpecialGroup | None = None, listed: Iterable[int] = ()
) -> set[int]:
    """The students a (not grades) target resolves to now, among the enrolled students of `school_ids`: the group's
    members (roster.special_groups.members_q), the students with an open signal there, or the listed students."""
    school_ids = set(school_ids)
    enrolled = Student.objects.filter(status=StudentStatus.ACTIVE, school_id__in=school_ids)
    if target == CampaignTarget.GROUP:
        chosen = enrolled.filter(members_q(group))
    elif target == CampaignTarget.SIGNALS:
        chosen = enrolled.filter(pk__in=open_signal_students(school_ids))
    elif target == CampaignTarget.LIST:
        chosen = enrolled.filter(pk__in=list(listed))
    else:
        raise ValueError(f"target {target!r} is not resolved into a list")
    return set(chosen.values_list("pk", flat=True))


def _target_ids(campaign: Campaign, listed: Iterable[int] | None) -> set[int]:
    school_ids = Campaign.schools.through.objects.filter(campaign_id=campaign.pk).values_list("school_id", flat=True)
    if listed is None:  # a refreshed list keeps its students, without those who have left
        listed = campaign.target_students.values_list("pk", flat=True)
    return target_resolve(campaign.target, school_ids=school_ids, group=campaign.target_group, listed=listed)


def _target_store(campaign: Campaign, ids: set[int]) -> None:
    campaign.target_students.set(ids)


# Roles that reach campaigns (see campaigns_visible): every role but the narrowest, mentors and subject teachers.
CAMPAIGN_ROLES = frozenset(set(Role) - {Role.MENTOR, Role.SUBJECT_TEACHER})


def may_see_campaigns(user) -> bool:
    """Whether the user holds a role that reaches campaigns at all (no query): the menu's screening link."""
    scope = scoping.scope_for(user)
    return scope.unrestricted or bool(scope.roles & CAMPAIGN_ROLES)


def campaigns_visible(user) -> QuerySet[Campaign]:
    """Campaigns that include at least one school the user can see (any role, including homeroom teachers).

    Access: any signed-in user; a campaign's results stay behind the ScreeningResult readers rule.
    """
    # A homeroom teacher sees no School row, only their class: reach the school through the classes too. Mentors and
    # subject teachers (issue 20) have no screening to run or read: their roles reach no campaign.
    schools = Q(school__in=scoping.within_roles(user, School, CAMPAIGN_ROLES)) | Q(
        school__in=scoping.within_roles(user, SchoolClass, CAMPAIGN_ROLES).values("school_id")
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
    instruments = list(instruments)
    parsed = {instrument.code: instrument.parsed() for instrument in instruments}
    if not parsed:
        raise ValidationError({"instruments": _("Choose at least one instrument.")})
    if len(parsed) != len(instruments):
        raise ValidationError({"instruments": _("Choose each instrument once (one version).")})
    if len({instrument.observer_rated for instrument in parsed.values()}) > 1:
        raise ValidationError(
            {
                "instruments": _(
                    "A teacher checklist is filled by homeroom teachers, the other instruments by the students: "
                    "put them in separate campaigns."
                )
            }
        )
    try:
        rules = parse_ruleset(ruleset.definition, parsed, allow_absent=True)
    except DefinitionError as error:
        raise ValidationError(
            {"ruleset": _("This rule set does not fit the chosen instruments: %(error)s") % {"error": error}}
        ) from None
    if not any(rule.when.instrument in parsed for rule in rules.rules):
        raise ValidationError(
            {"ruleset": _("This rule set has no rule for the chosen instruments: every result would be green.")}
        )


def target_check(target: str, target_group: SpecialGroup | None, target_list: TargetList | None) -> None:
    if target not in CampaignTarget.values:
        raise ValidationError({"target": _("Choose who is screened.")})
    if target == CampaignTarget.GROUP and target_group is None:
        raise ValidationError({"target_group": _("Choose the special group.")})
    if target == CampaignTarget.LIST:
        if target_list is None:
            raise ValidationError({"target_file": _("Upload the list of students (学校代码, 学号).")})
        if target_list.errors:
            raise target_list_refusal(target_list)


@transaction.atomic
def campaign_create(
    *, actor, name: str, school_year: str, term: str, instruments: list[Instrument], ruleset: RuleSet,
    target_grades: list[int], schools: Iterable[School], opens_at: datetime, closes_at: datetime,
    target: str = CampaignTarget.GRADES, target_group: SpecialGroup | None = None,
    target_list: TargetList | None = None,
) -> Campaign:  # fmt: skip
    """Create a campaign over `schools`, asking `instruments` in that order, scored with the pinned `ruleset`, for
    the target grades of its schools, or (targeted re-screening) a special group, the students with open signals
    or an uploaded list (`target_list_read`), resolved now into the campaign's students within `schools`.

    Access: city admins/centres and district admins/centres, for schools in their subtree (PermissionDenied
    otherwise, nothing written). Audit: a history row for the campaign; a log line with ids and counts.
    Raises ValidationError for a bad year, window, grade list or rule set that does not fit the instruments, a
    target without its group or list, a list with row errors, or a target nobody in the schools is in.
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
    target_check(target, target_group, target_list)
    grades = sorted({int(g) for g in target_grades}) if target == CampaignTarget.GRADES else []
    if target == CampaignTarget.GRADES and (not grades or not all(1 <= g <= 12 for g in grades)):
        raise ValidationError({"target_grades": _("Choose at least one grade between 1 and 12.")})
    ruleset_check(ruleset, instruments)
    campaign = Campaign(
        name=name, school_year=school_year, term=term, ruleset=ruleset, target_grades=grades,
        opens_at=opens_at, closes_at=closes_at, created_by=actor, status=status_due(opens_at, closes_at, now),
        target=target, target_group=target_group if target == CampaignTarget.GROUP else None,
    )  # fmt: skip
    campaign._history_user = actor
    campaign.save()
    CampaignInstrument.objects.bulk_create(
        CampaignInstrument(campaign=campaign, instrument=instrument, position=position)
        for position, instrument in enumerate(instruments)
    )
    campaign.schools.set(school_ids)
    if target != CampaignTarget.GRADES:
        ids = _target_ids(campaign, target_list.student_ids if target_list is not None else None)
        if not ids:
            raise ValidationError({"target": _("Nobody in the chosen schools is in this target; nothing was saved.")})
        _target_store(campaign, ids)
    logger.info("campaign %s created by user %s: %d schools, target %s", campaign.pk, actor.pk, len(school_ids), target)
    return campaign


@transaction.atomic
def campaign_target_refresh(*, actor, campaign: Campaign, target_list: TargetList | None = None) -> int:
    """Resolve a targeted campaign's students again, before it opens: the group's members and the students with
    open signals as they are now; an uploaded list replaced by `target_list`, or kept without its leavers.

    Access: campaigns_changeable(actor) (PermissionDenied otherwise); only while scheduled (ValidationError once
    open). Audit: a history row by `actor` naming the new count; a log line with ids and counts. Returns the count.
    """
    campaign = campaigns_changeable(actor).select_for_update().filter(pk=campaign.pk).first()
    if campaign is None:
        raise PermissionDenied(_("This campaign is outside your scope."))
    if campaign.target == CampaignTarget.GRADES:
        raise ValidationError(_("This campaign screens the target grades of its schools: there is no list to refresh."))
    if campaign.status != CampaignStatus.SCHEDULED:
        raise ValidationError(_("This campaign has opened; who it is for can no longer change."))
    if target_list is not None and target_list.errors:
        raise target_list_refusal(target_list)
    ids = _target_ids(campaign, target_list.student_ids if target_list is not None else None)
    _target_store(campaign, ids)
    campaign._history_user = actor
    campaign._change_reason = f"target refreshed: {len(ids)} students"
    campaign.save(update_fields=["target"])  # a history row for the refresh
    logger.info("campaign %s target refreshed by user %s: %d students", campaign.pk, actor.pk, len(ids))
    return len(ids)


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
