"""The individual report (个体评估报告) of one student: every screening across campaigns with the scores, bands,
critical answers and the rules that fired, and a summary of each of their cases (team, interviews, plan, parent
contacts, referrals, follow-ups, tier changes, closure).

The student's whole story across schools and school years (cases.archive, 一生一档) heads it: each screening says
where and in which school year it was taken, each case its school and the case it follows, and earlier cases the
reader may not read show as a line, without content.

For psychology teachers and above of the student's school (the ScreeningResult readers rule: principals, district
centres and auditors, the city centre, in their subtrees); anyone else gets a 404. The cases and their records go
through roster.scoping as everywhere: a restricted interview note counts by its date, its content never appears here,
and nothing here shows a note's text. Full names for the school's psychology teachers and principal; masked above.
A constant number of queries whatever the number of campaigns or cases. The caller logs the reading.

May import: roster, screening, cases.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from cases.archive import Archive, ArchiveCase, student_archive
from cases.ledgers import STAGE_LABELS, stage_of
from cases.models import (
    Case,
    CaseTeamMember,
    Closure,
    FollowUp,
    InterventionPlan,
    InterviewNote,
    ParentContact,
    Referral,
    TierChange,
)
from roster import scoping
from roster.charts import bar_chart
from roster.masking import mask_name
from roster.models import Student
from roster.roles import Role
from screening.definitions import Instrument, RiskTier, in_language, parse_ruleset, text_language
from screening.models import CampaignInstrument, RuleSet, ScreeningResult

NAME_ROLES = frozenset({Role.PSYCHOLOGY_TEACHER, Role.PRINCIPAL})  # as on a case page


@dataclass(frozen=True)
class ScaleScore:
    instrument: str
    scale: str  # the scale's code where the instrument has several, else ""
    score: int
    band: str


@dataclass(frozen=True)
class CriticalAnswer:
    instrument: str
    number: int
    text: str
    answer: str


@dataclass
class Screening:
    result: ScreeningResult
    tier_label: str
    scores: list[ScaleScore]
    reasons: list[str]
    critical: list[CriticalAnswer]
    school: str = ""  # where the student answered (cases.archive), in the report
    school_year: str = ""


@dataclass
class CaseSummary:
    case: Case
    team: list[tuple[str, str]] = field(default_factory=list)  # (seat, who), current members
    interviews: int = 0
    restricted_interviews: int = 0  # of `interviews`: known by date only
    last_interview_at: datetime | None = None
    plans: int = 0
    plan: InterventionPlan | None = None  # the latest
    contacts: int = 0
    last_contact: ParentContact | None = None
    referrals: list[tuple[Referral, str]] = field(default_factory=list)  # (referral, stage label)
    follow_ups: int = 0
    last_follow_up: FollowUp | None = None
    tier_changes: list[TierChange] = field(default_factory=list)
    closure: Closure | None = None  # the latest proposal, decided or not
    url: str = ""  # the case page, set by the view (workflows knows the process)
    school: str = ""  # the case's school (cases.archive)
    follows: ArchiveCase | None = None  # the earlier case it follows, as the reader may see it


@dataclass
class IndividualReport:
    student: Student
    name: str  # full or masked, by who reads
    special_groups: list[str]
    screenings: list[Screening]
    cases: list[CaseSummary]
    chart: str = ""  # scores across campaigns, oldest first (from two screenings on)
    archive: Archive | None = None  # the whole story across schools and years (一生一档)


def screening_of(user, result_id: int | None) -> Screening | None:
    """One result explained (scores, critical answers, the rules that fired in the reader's language), if the user
    reads it; None otherwise. For a case page's "why the student was flagged". Three queries."""
    if result_id is None:
        return None
    found = _screenings(user, None, result_id=result_id)
    return found[0] if found else None


def _screenings(user, student: Student | None, result_id: int | None = None) -> list[Screening]:
    """Every result of the student the user reads (or the one result), newest first (three queries whatever their
    number)."""
    where = {"pk": result_id} if result_id is not None else {"student": student}
    results = list(
        scoping.visible(user, ScreeningResult).filter(**where).select_related("campaign")
        .order_by("-submitted_at", "-pk")
    )  # fmt: skip
    instruments: dict[int, dict[str, Instrument]] = defaultdict(dict)
    links = CampaignInstrument.objects.filter(campaign__in=[r.campaign_id for r in results])
    for link in links.select_related("instrument").order_by("position"):
        instruments[link.campaign_id][link.instrument.code] = link.instrument.parsed()
    reasons = {
        pk: {rule.id: rule.reason for rule in parse_ruleset(definition).rules}
        for pk, definition in RuleSet.objects.filter(pk__in={r.ruleset_id for r in results}).values_list(
            "pk", "definition"
        )
    }
    language = text_language()
    found = []
    for result in results:
        scores, critical = [], []
        for code, instrument in instruments[result.campaign_id].items():
            stored = result.scores.get(code) or {}
            for scale in instrument.scales:
                value = (stored.get("scales") or {}).get(scale.code)
                if value is None:
                    continue
                band = next((b for b in scale.bands if b.key == (stored.get("bands") or {}).get(scale.code)), None)
                scores.append(ScaleScore(in_language(instrument.name), scale.code if len(instrument.scales) > 1 else "",
                                         value, in_language(band.label) if band else ""))  # fmt: skip
            answers = result.answers.get(code) or {}
            for item in instrument.items:
                option = item.option(answers.get(str(item.number), "")) if item.critical else None
                if option is not None and option.value > 0:
                    critical.append(CriticalAnswer(in_language(instrument.name), item.number, in_language(item.text),
                                                   in_language(option.label)))  # fmt: skip
        texts = reasons.get(result.ruleset_id, {})
        found.append(
            Screening(
                result, str(RiskTier(result.tier).label), scores,
                [texts[rule][language] if rule in texts else rule for rule in result.fired_rules], critical,
            )
        )  # fmt: skip
    return found


def _records(user, model, cases: list[Case], order: str) -> QuerySet:
    return scoping.visible(user, model).filter(case__in=cases).order_by(order, "pk")


def _case_summaries(user, student: Student) -> list[CaseSummary]:
    """The student's cases the user sees, newest first, each summarised from the records the user may read (one query
    a record kind)."""
    cases = list(scoping.visible(user, Case).filter(student=student).order_by("-opened_at", "-pk"))
    summaries = {case.pk: CaseSummary(case) for case in cases}
    if not cases:
        return []
    team = scoping.visible(user, CaseTeamMember).filter(case__in=cases, left_at__isnull=True).select_related("user")
    for member in team.order_by("seat", "pk"):
        summaries[member.case_id].team.append((member.get_seat_display(), member.user.get_short_name()))
    readable_notes = scoping.visible(user, InterviewNote).filter(case__in=cases).values_list("case_id", "held_at")
    withheld_notes = scoping.visible_withheld(user, InterviewNote).filter(case__in=cases)
    for restricted, notes in ((False, readable_notes), (True, withheld_notes.values_list("case_id", "held_at"))):
        for case_id, held_at in notes:
            summary = summaries[case_id]
            summary.interviews += 1
            summary.restricted_interviews += restricted
            summary.last_interview_at = max(filter(None, (summary.last_interview_at, held_at)))
    for plan in _records(user, InterventionPlan, cases, "created_at"):
        summaries[plan.case_id].plans += 1
        summaries[plan.case_id].plan = plan  # ordered oldest first: the last one stays
    for contact in _records(user, ParentContact, cases, "contacted_at"):
        summaries[contact.case_id].contacts += 1
        summaries[contact.case_id].last_contact = contact
    for referral in _records(user, Referral, cases, "requested_at"):
        summaries[referral.case_id].referrals.append((referral, str(STAGE_LABELS[stage_of(referral)])))
    for follow_up in _records(user, FollowUp, cases, "held_at"):
        summaries[follow_up.case_id].follow_ups += 1
        summaries[follow_up.case_id].last_follow_up = follow_up
    for change in _records(user, TierChange, cases, "requested_at"):
        summaries[change.case_id].tier_changes.append(change)
    for closure in _records(user, Closure, cases, "proposed_at"):
        summaries[closure.case_id].closure = closure
    return [summaries[case.pk] for case in cases]


SERIES_COLOURS = ("#2e6b5e", "#7b8794", "#c17d11", "#5b4b8a", "#b42318")


def _scores_chart(screenings: list[Screening]) -> str:
    """Each scale's score in each campaign, oldest first: whether a student gets better or worse, at a glance."""
    if len(screenings) < 2:
        return ""
    ordered = list(reversed(screenings))
    scales = list(dict.fromkeys((s.instrument, s.scale) for screening in ordered for s in screening.scores))
    series = []
    for index, (instrument, scale) in enumerate(scales):
        values = []
        for screening in ordered:
            found = [s.score for s in screening.scores if (s.instrument, s.scale) == (instrument, scale)]
            values.append(found[0] if found else None)
        label = f"{instrument} · {scale}" if scale else instrument
        series.append((label, values, SERIES_COLOURS[index % len(SERIES_COLOURS)]))
    categories = [f"{s.result.campaign.name[:14]}\n{timezone.localtime(s.result.submitted_at):%Y-%m}" for s in ordered]
    return bar_chart(categories, series, title=_("Scores across campaigns"), ylabel=_("Score"))


def individual_report(user, student: Student) -> IndividualReport:
    """The report of a student from access_student (the caller has checked access and logs the reading)."""
    names = scoping.within_roles(user, Student.objects.filter(pk=student.pk), NAME_ROLES).exists()
    screenings = _screenings(user, student)
    archive = student_archive(user, student, reads_student=True)  # the caller's access_student checked it
    places = {s.result_id: s for s in archive.screenings}
    for screening in screenings:
        place = places.get(screening.result.pk)
        if place is not None:
            screening.school, screening.school_year = place.school, place.school_year
    summaries = _case_summaries(user, student)
    for summary in summaries:
        line = archive.case(summary.case.pk)
        summary.school = line.school if line else ""
        summary.follows = archive.case(summary.case.follows_id)
    return IndividualReport(
        student=student,
        name=student.name if names else mask_name(student.name),
        special_groups=[str(group) for group in student.special_groups.order_by("pk")],
        screenings=screenings,
        cases=summaries,
        chart=_scores_chart(screenings),
        archive=archive,
    )
