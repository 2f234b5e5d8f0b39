"""What the group report shows beside its table, for the node the report stands on (a city, district, school, grade or
class): score distributions per instrument, critical items answered, special groups against the rest, and the
previous campaign of the same population. Only for users who read every result under the node (the table's rule).

Below the school level every count is small-cell suppressed (screening.suppression); the special-groups table is
suppressed from the school level down, since one child of a rare group in a school is easy to name.
A constant number of queries whatever the size: one per instrument scale, one for the critical items, one for the
groups, and the previous campaign's report (a handful).

May import: roster, screening.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection
from django.db.models import Count, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KT
from django.http import Http404
from django.utils import translation
from django.utils.translation import gettext as _

from roster.charts import histogram, tier_bars
from roster.models import SpecialGroup, Student
from screening.campaigns import campaigns_visible
from screening.definitions import RiskTier
from screening.models import Campaign, ScreeningResult
from screening.reports import (
    REPORT_TIERS,
    ROW_CLASS,
    ROW_GRADE,
    Report,
    campaign_report,
    node_students,
    readable_students,
)
from screening.services import campaign_definitions
from screening.suppression import suppress_table


@dataclass
class Distribution:
    title: str
    values: list[int]
    counts: list[int | str]  # a suppressed count as "<k"
    chart: str = ""


@dataclass
class CriticalItem:
    instrument: str
    number: int
    text: str
    count: int | str


@dataclass
class GroupRow:
    label: str
    completed: int
    tiers: list[int | str]


@dataclass
class Trend:
    campaign: Campaign
    completion: float
    shares: list[float]  # per tier, of the completed
    now_shares: list[float]


@dataclass
class Insights:
    distributions: list[Distribution] = field(default_factory=list)
    critical_items: list[CriticalItem] = field(default_factory=list)
    groups: list[GroupRow] = field(default_factory=list)
    trend: Trend | None = None
    tier_chart: str = ""
    suppressed: bool = False


def _text(mapping: dict[str, str]) -> str:
    language = (translation.get_language() or "zh-hans").lower()
    return mapping.get("zh" if language.startswith("zh") else "en") or next(iter(mapping.values()), "")


def _answer(instrument: str, item: int) -> RawSQL:
    """The answer key a result gave to one item, as text. Django's JSON key lookups read a numeric key ("5") as an
    array index, so the path is written per database."""
    if connection.vendor == "postgresql":
        return RawSQL('("screening_screeningresult"."answers" -> %s ->> %s)', (instrument, str(item)))
    return RawSQL('json_extract("screening_screeningresult"."answers", %s)', (f'$."{instrument}"."{item}"',))


def _shown(counts: list[int], hidden: set[int], k: int) -> list[int | str]:
    return [f"<{k}" if i in hidden else n for i, n in enumerate(counts)]


def _suppressed_counts(counts: list[int], suppress: bool) -> list[int | str]:
    if not suppress:
        return list(counts)
    k = settings.REPORT_MIN_CELL
    keys = [str(i) for i in range(len(counts))]
    (hidden,), _total = suppress_table([dict(zip(keys, counts, strict=True))], keys, k)
    return _shown(counts, {int(key) for key in hidden}, k)


def _distributions(results: QuerySet[ScreeningResult], definitions, suppress: bool) -> list[Distribution]:
    found = []
    for instrument in definitions.instruments.values():
        for scale in instrument.scales:
            lookup = f"scores__{instrument.code}__scales__{scale.code}"
            grouped = results.exclude(**{f"{lookup}__isnull": True}).values(v=KT(lookup)).annotate(n=Count("pk"))
            by_value = {int(row["v"]): row["n"] for row in grouped if row["v"] not in (None, "")}
            if not by_value:
                continue
            low = min(min(by_value), sum(instrument.item(i).min_value for i in scale.items))
            high = max(max(by_value), sum(instrument.item(i).max_value for i in scale.items))
            values = list(range(low, high + 1))
            counts = _suppressed_counts([by_value.get(v, 0) for v in values], suppress)
            title = _text(instrument.name)
            if len(instrument.scales) > 1:
                title = f"{title} · {scale.code}"
            found.append(Distribution(title, values, counts))
    return found


def _critical_items(results: QuerySet[ScreeningResult], definitions, suppress: bool) -> list[CriticalItem]:
    items = [(instrument, item) for instrument in definitions.instruments.values() for item in instrument.items
             if item.critical]  # fmt: skip
    if not items:
        return []
    aggregates = {}
    for index, (instrument, item) in enumerate(items):
        positive = [option.key for option in item.options if option.value > 0]
        results = results.annotate(**{f"answer_{index}": _answer(instrument.code, item.number)})
        aggregates[f"n_{index}"] = Count("pk", filter=Q(**{f"answer_{index}__in": positive}))
    counted = results.aggregate(**aggregates)
    counts = [counted[f"n_{i}"] for i in range(len(items))]
    shown = _suppressed_counts(counts, suppress)
    return [
        CriticalItem(_text(instrument.name), item.number, _text(item.text), count)
        for (instrument, item), count in zip(items, shown, strict=True)
    ]


def _groups(user, students: QuerySet[Student], campaign: Campaign, suppress: bool) -> list[GroupRow]:
    this_campaign = Q(screening_results__campaign_id=campaign.pk)
    aggregates = {"completed": Count("pk", filter=this_campaign)}
    for tier in REPORT_TIERS:
        aggregates[tier] = Count("pk", filter=this_campaign & Q(screening_results__tier=tier))
    rows = list(students.values("special_groups").annotate(**aggregates).order_by("special_groups"))
    names = dict(SpecialGroup.objects.values_list("pk", "name"))
    k = settings.REPORT_MIN_CELL
    tables = [{t: row[t] for t in REPORT_TIERS} for row in rows]
    hidden, _total = suppress_table(tables, REPORT_TIERS, k) if suppress else ([set()] * len(rows), set())
    found = []
    for row, row_hidden in zip(rows, hidden, strict=True):
        label = names.get(row["special_groups"]) or _("Not in a special group")
        completed = row["completed"]
        found.append(GroupRow(label, completed, [f"<{k}" if t in row_hidden else row[t] for t in REPORT_TIERS]))
    found.sort(key=lambda r: r.label == _("Not in a special group"))  # the groups first, the rest last
    return found


def _previous_campaign(user, campaign: Campaign) -> Campaign | None:
    """The latest earlier campaign the user sees that screened at least one of this campaign's schools."""
    return (
        campaigns_visible(user)
        .filter(opens_at__lt=campaign.opens_at, schools__in=campaign.schools.values("pk"))
        .order_by("-opens_at", "-pk")
        .first()
    )


def _shares(tiers: dict[str, int] | None, completed: int) -> list[float]:
    if not tiers or not completed:
        return [0.0] * len(REPORT_TIERS)
    return [round(tiers[t] * 100 / completed, 1) for t in REPORT_TIERS]


def _trend(user, campaign: Campaign, report: Report, params) -> Trend | None:
    previous = _previous_campaign(user, campaign)
    if previous is None:
        return None
    try:
        before = campaign_report(user, previous, params)
    except Http404:  # the node was not in that campaign (a grade it did not screen)
        return None
    if not before.total.invited or before.total.tiers is None or report.total.tiers is None:
        return None
    return Trend(previous, before.total.completion, _shares(before.total.tiers, before.total.completed),
                 _shares(report.total.tiers, report.total.completed))  # fmt: skip


def _tier_chart(report: Report) -> str:
    rows = [row for row in report.rows if row.tiers is not None and row.completed]
    if not rows:
        return ""
    shares = {tier: [row.tier_shares[i] for row in rows] for i, tier in enumerate(REPORT_TIERS)}
    labels = {tier: str(RiskTier(tier).label) for tier in REPORT_TIERS}
    return tier_bars([row.labels[-1] for row in rows], shares, labels, title=_("Tier shares of the completed (%)"))


def report_insights(user, campaign: Campaign, report: Report, params) -> Insights | None:
    """The report's charts and breakdowns for its node; None for users who do not read every result under it."""
    if not report.shows_tiers or report.total.tiers is None:
        return None
    students = readable_students(user, node_students(user, campaign, report.drill))
    results = ScreeningResult.objects.filter(campaign=campaign, student__in=students.values("pk"))
    below_school = report.drill.rows == ROW_CLASS  # the node itself is a grade or a class
    definitions = campaign_definitions(campaign)
    insights = Insights(suppressed=below_school)
    insights.distributions = _distributions(results, definitions, below_school)
    k = settings.REPORT_MIN_CELL
    for distribution in insights.distributions:
        counts = [None if isinstance(c, str) else c for c in distribution.counts]
        distribution.chart = histogram(distribution.values, counts, title=distribution.title, ylabel=_("Students"),
                                       hidden_label=f"<{k}")  # fmt: skip
    insights.critical_items = _critical_items(results, definitions, below_school)
    at_school_or_below = report.drill.rows in (ROW_GRADE, ROW_CLASS)
    insights.groups = _groups(user, students, campaign, at_school_or_below)
    insights.trend = _trend(user, campaign, report, params)
    insights.tier_chart = _tier_chart(report)
    return insights
