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

from collections import defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection
from django.db.models import Case, CharField, Count, F, Func, Q, QuerySet, Value, When
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _

from roster.charts import histogram, tier_bars
from roster.models import SpecialGroup, Student
from screening.campaigns import campaigns_visible
from screening.definitions import RiskTier, in_language
from screening.models import Campaign, ScreeningResult
from screening.reports import (
    REPORT_TIERS,
    ROW_CLASS,
    ROW_GRADE,
    Report,
    node_students,
    node_totals,
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
    completed: int | str
    tiers: list[int | str]


@dataclass
class Trend:
    campaign: Campaign
    completion: float
    shares: list[float | None]  # per tier, of the completed; None where the count is suppressed
    now_shares: list[float | None]


@dataclass
class Insights:
    distributions: list[Distribution] = field(default_factory=list)
    critical_items: list[CriticalItem] = field(default_factory=list)
    groups: list[GroupRow] = field(default_factory=list)
    trend: Trend | None = None
    tier_chart: str = ""
    suppressed: bool = False


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


def _scales(definitions) -> list[tuple]:
    return [(instrument, scale) for instrument in definitions.instruments.values() for scale in instrument.scales]


def _critical(definitions) -> list[tuple]:
    return [(instrument, item) for instrument in definitions.instruments.values() for item in instrument.items
            if item.critical]  # fmt: skip


@dataclass
class _Breakdown:
    by_scale: list[dict[int, int]]  # per instrument scale: {score: results}
    critical: list[int]  # per critical item: results that answered it above zero
    groups: dict[int | None, dict[str, int]]  # per special group (None: in none): {tier: results}


def _breakdown(results: QuerySet[ScreeningResult], definitions, groups: list[int]) -> _Breakdown:
    """Score distributions, critical items and special groups × tiers in one pass over the results: grouped by one
    text key joining every scale's score, every critical item's flag, each special group's membership and the tier,
    then added up here (a few thousand distinct keys at most, where a query each would read every result's JSON again).
    """
    scales, items = _scales(definitions), _critical(definitions)
    parts = [KT(f"scores__{instrument.code}__scales__{scale.code}") for instrument, scale in scales]
    for index, (instrument, item) in enumerate(items):
        positive = [option.key for option in item.options if option.value > 0]
        results = results.annotate(**{f"answer_{index}": _answer(instrument.code, item.number)})
        parts.append(_flag(Q(**{f"answer_{index}__in": positive})))
    members = Student.special_groups.through.objects
    for group in groups:  # `student_id IN (…)`: one hash of the group's members, probed per result
        parts.append(_flag(Q(student_id__in=members.filter(specialgroup_id=group).values("student_id"))))
    parts.append(F("tier"))
    # One text key: the planner then expects few groups and hashes them, where a key of many columns made it sort
    # every result on disk.
    key = _Joined(*(Coalesce(part, Value("")) for part in parts))
    found = _Breakdown([defaultdict(int) for _ in scales], [0] * len(items), defaultdict(lambda: defaultdict(int)))
    grouped = results.annotate(key=key).values("key").annotate(n=Count("pk")).order_by()
    for joined, n in grouped.values_list("key", "n"):
        values = joined.split("|")
        for index in range(len(scales)):
            if values[index]:
                found.by_scale[index][int(values[index])] += n
        offset = len(scales)
        for index in range(len(items)):
            found.critical[index] += n if values[offset + index] == "1" else 0
        offset += len(items)
        tier = values[offset + len(groups)]
        in_groups = [group for index, group in enumerate(groups) if values[offset + index] == "1"]
        for group in in_groups or [None]:
            found.groups[group][tier] += n
    return found


class _Joined(Func):
    """Texts joined by "|", flat (Django's Concat nests a pair per argument, past SQLite's parser depth)."""

    template = "(%(expressions)s)"
    arg_joiner = " || '|' || "
    output_field = CharField()


def _flag(condition: Q) -> Case:
    return Case(When(condition, then=Value("1")), default=Value("0"), output_field=CharField())


def _distributions(definitions, by_scale: list[dict[int, int]], suppress: bool) -> list[Distribution]:
    found = []
    for (instrument, scale), by_value in zip(_scales(definitions), by_scale, strict=True):
        if not by_value:
            continue
        low = min(min(by_value), sum(instrument.item(i).min_value for i in scale.items))
        high = max(max(by_value), sum(instrument.item(i).max_value for i in scale.items))
        values = list(range(low, high + 1))
        counts = _suppressed_counts([by_value.get(v, 0) for v in values], suppress)
        title = in_language(instrument.name)
        if len(instrument.scales) > 1:
            title = f"{title} · {scale.code}"
        found.append(Distribution(title, values, counts))
    return found


def _critical_items(definitions, counts: list[int], suppress: bool) -> list[CriticalItem]:
    if not counts:
        return []
    shown = _suppressed_counts(counts, suppress)
    return [
        CriticalItem(in_language(instrument.name), item.number, in_language(item.text), count)
        for (instrument, item), count in zip(_critical(definitions), shown, strict=True)
    ]


GROUP_COLUMNS = ("completed", *REPORT_TIERS)  # a group's completed count is suppressed too: it counts its members


def _groups(counts: dict[int | None, dict[str, int]], names: dict[int, str], suppress: bool) -> list[GroupRow]:
    """Completed and tiers per special group with results (a student in several counts in each), then those in none."""
    keys = [g for g in names if g in counts] + ([None] if None in counts else [])
    tables = [{t: counts[g].get(t, 0) for t in REPORT_TIERS} for g in keys]
    for table in tables:
        table["completed"] = sum(table.values())
    k = settings.REPORT_MIN_CELL
    hidden, _total = suppress_table(tables, GROUP_COLUMNS, k) if suppress else ([set()] * len(keys), set())
    return [
        GroupRow(
            names.get(g, "") if g is not None else _("Not in a special group"),
            *[f"<{k}" if column in row_hidden else table[column] for column in GROUP_COLUMNS[:1]],
            [f"<{k}" if t in row_hidden else table[t] for t in REPORT_TIERS],
        )  # fmt: skip
        for g, table, row_hidden in zip(keys, tables, hidden, strict=True)
    ]


def _previous_campaign(user, campaign: Campaign) -> Campaign | None:
    """The latest earlier campaign the user sees that screened at least one of this campaign's schools."""
    return (
        campaigns_visible(user)
        .filter(opens_at__lt=campaign.opens_at, schools__in=campaign.schools.values("pk"))
        .order_by("-opens_at", "-pk")
        .first()
    )


def _shares(tiers: dict[str, int] | None, completed: int, hidden: set[str]) -> list[float | None]:
    if not tiers or not completed:
        return [None if t in hidden else 0.0 for t in REPORT_TIERS]
    return [None if t in hidden else round(tiers[t] * 100 / completed, 1) for t in REPORT_TIERS]


def _trend(user, campaign: Campaign, report: Report) -> Trend | None:
    """This campaign's completion and tier shares beside the previous one's, for the same node. Below the school
    level a share is a count in disguise (25 % of 8 is 2): a share whose count is suppressed is not shown (None)."""
    previous = _previous_campaign(user, campaign)
    if previous is None:
        return None
    before = node_totals(user, previous, report.drill)  # none invited: that campaign did not screen this node
    if not before.invited or before.tiers is None or report.total.tiers is None:
        return None
    hidden_before: set[str] = set()
    if report.drill.rows == ROW_CLASS:  # the node is a grade or a class
        (hidden_before,), _total = suppress_table([before.tiers], REPORT_TIERS, settings.REPORT_MIN_CELL)
    return Trend(previous, before.completion, _shares(before.tiers, before.completed, hidden_before),
                 _shares(report.total.tiers, report.total.completed, report.total.hidden))  # fmt: skip


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
    group_names = dict(SpecialGroup.objects.values_list("pk", "name"))  # a short fixed vocabulary
    breakdown = _breakdown(results, definitions, list(group_names))
    insights.distributions = _distributions(definitions, breakdown.by_scale, below_school)
    k = settings.REPORT_MIN_CELL
    for distribution in insights.distributions:
        counts = [None if isinstance(c, str) else c for c in distribution.counts]
        distribution.chart = histogram(distribution.values, counts, title=distribution.title, ylabel=_("Students"),
                                       hidden_label=f"<{k}")  # fmt: skip
    insights.critical_items = _critical_items(definitions, breakdown.critical, below_school)
    at_school_or_below = report.drill.rows in (ROW_GRADE, ROW_CLASS)
    insights.groups = _groups(breakdown.groups, group_names, at_school_or_below)
    insights.trend = _trend(user, campaign, report)
    insights.tier_chart = _tier_chart(report)
    return insights
