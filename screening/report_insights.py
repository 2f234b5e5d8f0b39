"""What the group report shows beside its table, for the node the report stands on (a city, district, school, grade or
class): score distributions per instrument, critical items answered, special groups against the rest, and the
previous campaign of the same population. Only for users who read every result under the node (the table's rule).

Below the school level every count is small-cell suppressed (screening.suppression); the special-groups table is
suppressed from the school level down, since one child of a rare group in a school is easy to name. Their cells join
the report's one cell set (Report.cells) and are solved together, against the table's: the students in no group and
those in some group (a count no table prints, but the table's total less the first) add up to the table's total, so
a hidden count is never worked back from the table, the students in no group, or a chart (see _add_groups).
A constant number of queries whatever the size: one per instrument scale, one for the critical items, one for the
groups, and the previous campaign's report (a handful).

May import: roster, screening.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Case, CharField, Count, F, Func, Q, QuerySet, Value, When
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _

from roster.charts import histogram, tier_bars
from roster.models import SpecialGroup, Student
from screening.campaigns import campaign_is_checklist, campaigns_visible, checklist_campaigns_q
from screening.definitions import RiskTier, in_language
from screening.models import Campaign, ScreeningResult
from screening.reports import (
    REPORT_TIERS,
    ROW_CLASS,
    Report,
    ReportRow,
    node_students,
    node_totals,
    readable_students,
    total_cell,
)
from screening.services import campaign_definitions
from screening.suppression import CellSet


@dataclass
class Distribution:
    title: str
    values: list[int]
    counts: list[int | str]  # a hidden count as its mark, "<k" or "*" (screening.suppression.mark)
    chart: str = ""  # "": every count hidden, the page says so in its place


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
    marks: list[str | None]  # per tier, the hidden count's mark ("<k" or "*"); None where it is shown
    now_marks: list[str | None]

    @property
    def cells(self) -> list[tuple[float | None, str | None]]:
        return list(zip(self.shares, self.marks, strict=True))

    @property
    def now_cells(self) -> list[tuple[float | None, str | None]]:
        return list(zip(self.now_shares, self.now_marks, strict=True))


@dataclass
class Insights:
    distributions: list[Distribution] = field(default_factory=list)
    critical_items: list[CriticalItem] = field(default_factory=list)
    groups: list[GroupRow] = field(default_factory=list)
    trend: Trend | None = None
    tier_chart: str = ""  # "" with tier_rows: every share hidden, the page says so in its place
    tier_rows: bool = False  # a row with students who completed: the tier chart's section shows
    suppressed: bool = False

    @property
    def any_distribution_drawn(self) -> bool:
        """Whether a distribution has a chart; none: the section says once that the group is too small."""
        return any(d.chart for d in self.distributions)


def _answer(instrument: str, item: int) -> RawSQL:
    """The answer key a result gave to one item, as text. Django's JSON key lookups read a numeric key ("5") as an
    array index, so the path is written per database."""
    if connection.vendor == "postgresql":
        return RawSQL('("screening_screeningresult"."answers" -> %s ->> %s)', (instrument, str(item)))
    return RawSQL('json_extract("screening_screeningresult"."answers", %s)', (f'$."{instrument}"."{item}"',))


def _shown(cells: CellSet | None, key, n: int) -> int | str:
    """A count as the report shows it: its mark ("<k" or "*") where its cell set hides it (None: nothing suppressed
    here)."""
    hidden = cells.mark(key) if cells is not None else None
    return n if hidden is None else hidden


def _add_row(cells: CellSet, keys: list, counts: list[int], *, size: int | None) -> None:
    for key, n in zip(keys, counts, strict=True):
        cells.add(key, n)
    cells.line(keys, size=size)


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
    any_group: dict[str, int]  # in at least one special group: {tier: results} (a student in several counts once)


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
    found = _Breakdown([defaultdict(int) for _ in scales], [0] * len(items), defaultdict(lambda: defaultdict(int)),
                       defaultdict(int))  # fmt: skip
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
        if in_groups:
            found.any_group[tier] += n
    return found


class _Joined(Func):
    """Texts joined by "|", flat (Django's Concat nests a pair per argument, past SQLite's parser depth)."""

    template = "(%(expressions)s)"
    arg_joiner = " || '|' || "
    output_field = CharField()


def _flag(condition: Q) -> Case:
    return Case(When(condition, then=Value("1")), default=Value("0"), output_field=CharField())


def _scale_counts(definitions, by_scale: list[dict[int, int]]) -> list[Distribution]:
    """Each scale's distribution, counts as counted (suppressed later, by _distributions_shown)."""
    found = []
    for (instrument, scale), by_value in zip(_scales(definitions), by_scale, strict=True):
        if not by_value:
            continue
        low = min(min(by_value), sum(instrument.item(i).min_value for i in scale.items))
        high = max(max(by_value), sum(instrument.item(i).max_value for i in scale.items))
        values = list(range(low, high + 1))
        title = in_language(instrument.name)
        if len(instrument.scales) > 1:
            title = f"{title} · {scale.code}"
        found.append(Distribution(title, values, [by_value.get(v, 0) for v in values]))
    return found


def _add_distributions(cells: CellSet, distributions: list[Distribution]) -> None:
    """A scale's counts add up to the students who answered it: a row of its own."""
    for i, distribution in enumerate(distributions):
        keys = [("scale", i, j) for j in range(len(distribution.counts))]
        _add_row(cells, keys, distribution.counts, size=sum(distribution.counts))


def _distributions_shown(distributions: list[Distribution], cells: CellSet | None) -> list[Distribution]:
    for i, distribution in enumerate(distributions):
        distribution.counts = [_shown(cells, ("scale", i, j), n) for j, n in enumerate(distribution.counts)]
    return distributions


def _critical_items(definitions, counts: list[int], cells: CellSet | None) -> list[CriticalItem]:
    return [
        CriticalItem(in_language(instrument.name), item.number, in_language(item.text),
                     _shown(cells, ("critical", i), count))
        for i, ((instrument, item), count) in enumerate(zip(_critical(definitions), counts, strict=True))
    ]  # fmt: skip


def _add_critical(cells: CellSet, counts: list[int]) -> None:
    # A student may answer several critical items: no sum ties them, but one hidden count keeps a partner all the same.
    if counts:
        _add_row(cells, [("critical", i) for i in range(len(counts))], counts, size=None)


GROUP_COLUMNS = ("completed", *REPORT_TIERS)  # a group's completed count is suppressed too: it counts its members


def _group_tables(counts: dict[int | None, dict[str, int]], names: dict[int, str]) -> list[tuple[int | None, dict]]:
    """Completed and tiers per special group with results (a student in several counts in each), then those in none
    (key None)."""
    keys = [g for g in names if g in counts] + ([None] if None in counts else [])
    tables = [{t: counts[g].get(t, 0) for t in REPORT_TIERS} for g in keys]
    for table in tables:
        table["completed"] = sum(table.values())
    return list(zip(keys, tables, strict=True))


def _any_group(column: str) -> tuple:
    """The key of a count of the students in at least one special group: a cell no table prints (see _add_groups)."""
    return ("group", "any", column)


def _add_groups(cells: CellSet, tables: list[tuple[int | None, dict]], any_group: dict[str, int]) -> None:
    """The groups table in the report's cell set, with the sums that truly tie it to the table above.

    Each group's row adds up to its completed count, and a group of fewer than k completed shows nothing. A student
    may be in several groups, so the groups need not add up to anything; what does, tier by tier, is the total above:
    the students in no group plus those in at least one. The latter (`any_group`) no table prints, but anyone works
    it out as the total less the row in no group, so it joins the set as a cell of its own, suppressed like a printed
    count: when 1 to k-1 of the node's red students are in some group, the row in no group hides its red count (and
    a partner), since the total would give it back; when fewer than k in all are in some group, that row shows
    nothing. Where no student who answered is in two groups (their completed counts add up to those in some group),
    the groups add up to it too, tier by tier; a group that holds every one of them equals it."""
    for i, (_group, table) in enumerate(tables):
        _add_row(cells, [("group", i, column) for column in GROUP_COLUMNS], [table[c] for c in GROUP_COLUMNS],
                 size=table["completed"])  # fmt: skip
    members = [i for i, (group, _table) in enumerate(tables) if group is not None]
    if not members:
        return
    counts = {tier: any_group.get(tier, 0) for tier in REPORT_TIERS}
    counts["completed"] = sum(counts.values())
    none = next((i for i, (group, _table) in enumerate(tables) if group is None), None)
    if none is None:  # every student who answered is in some group: they are the total, shown as the table shows it
        keys = {tier: total_cell(tier) for tier in REPORT_TIERS} | {"completed": _any_group("completed")}
        cells.add(keys["completed"], counts["completed"], shown=True)  # the node's completed count, always shown
    else:
        keys = {column: _any_group(column) for column in GROUP_COLUMNS}
        _add_row(cells, [keys[c] for c in GROUP_COLUMNS], [counts[c] for c in GROUP_COLUMNS], size=counts["completed"])
        for tier in REPORT_TIERS:
            cells.line([("group", none, tier), keys[tier], total_cell(tier)])
        cells.line([("group", none, "completed"), keys["completed"]])  # with the node's completed count, shown
        if counts["completed"] < cells.k:  # the rest are the whole less a few: their row would show what those did
            cells.hide([("group", none, column) for column in GROUP_COLUMNS])
    if sum(tables[i][1]["completed"] for i in members) == counts["completed"]:  # no student in two groups
        for column in GROUP_COLUMNS:
            cells.line([keys[column]] + [("group", i, column) for i in members])
    for i in members:
        if tables[i][1]["completed"] == counts["completed"]:  # holds every student of any group: equal, tier by tier
            for column in GROUP_COLUMNS:
                cells.line([keys[column], ("group", i, column)])


def _groups_shown(tables: list[tuple], names: dict[int, str], cells: CellSet | None) -> list[GroupRow]:
    return [
        GroupRow(
            names.get(group, "") if group is not None else _("Not in a special group"),
            _shown(cells, ("group", i, "completed"), table["completed"]),
            [_shown(cells, ("group", i, t), table[t]) for t in REPORT_TIERS],
        )
        for i, (group, table) in enumerate(tables)
    ]


def _previous_campaign(user, campaign: Campaign) -> Campaign | None:
    """The latest earlier campaign the user sees that screened at least one of this campaign's schools, of the same
    kind: a yearly screening beside the last yearly one, a targeted re-screening or a teacher checklist beside its
    own kind (their shares are of other populations)."""
    checklist = checklist_campaigns_q()
    same_kind = checklist if campaign_is_checklist(campaign) else ~checklist
    return (
        campaigns_visible(user)
        .filter(same_kind, opens_at__lt=campaign.opens_at, schools__in=campaign.schools.values("pk"))
        .filter(target=campaign.target)
        .order_by("-opens_at", "-pk")
        .first()
    )


def _shares(tiers: dict[str, int] | None, completed: int, marks: list[str | None]) -> list[float | None]:
    if not tiers or not completed:
        return [None if m else 0.0 for m in marks]
    return [None if m else round(tiers[t] * 100 / completed, 1) for t, m in zip(REPORT_TIERS, marks, strict=True)]


def _previous_totals(user, campaign: Campaign, report: Report) -> tuple[Campaign, ReportRow] | None:
    """The previous campaign of the same node and its totals there; None when there is none to compare."""
    previous = _previous_campaign(user, campaign)
    if previous is None:
        return None
    before = node_totals(user, previous, report.drill)  # none invited: that campaign did not screen this node
    if not before.invited or before.tiers is None or report.total.tiers is None:
        return None
    return previous, before


def _add_trend(cells: CellSet, before: ReportRow) -> None:
    _add_row(cells, [("before", t) for t in REPORT_TIERS], [before.tiers[t] for t in REPORT_TIERS],
             size=before.completed)  # fmt: skip


def _trend(previous: Campaign, before: ReportRow, report: Report, cells: CellSet | None) -> Trend:
    """This campaign's completion and tier shares beside the previous one's, for the same node. Below the school
    level a share is a count in disguise (25 % of 8 is 2): a share whose count is suppressed is not shown (None)."""
    marks = [cells.mark(("before", t)) if cells is not None else None for t in REPORT_TIERS]
    now_marks = [n if isinstance(n, str) else None for n in report.total.tier_cells]
    return Trend(previous, before.completion, _shares(before.tiers, before.completed, marks),
                 _shares(report.total.tiers, report.total.completed, now_marks), marks, now_marks)  # fmt: skip


def _bar(cell: int | str, share: float | None) -> float | str:
    return cell if isinstance(cell, str) else share


def _tier_rows(report: Report) -> list[ReportRow]:
    return [row for row in report.rows if row.tiers is not None and row.completed]


def _tier_chart(report: Report) -> str:
    """The tier shares of the rows; "" where there is no row, or where every share is hidden."""
    rows = _tier_rows(report)
    if not rows:
        return ""
    # A hidden count's bar is not drawn: the table's mark for it is written in its place.
    shares = {tier: [_bar(*row.tier_cells_and_shares[i]) for row in rows] for i, tier in enumerate(REPORT_TIERS)}
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
    distributions = _scale_counts(definitions, breakdown.by_scale)
    groups = _group_tables(breakdown.groups, group_names)
    trend = _previous_totals(user, campaign, report)
    # One pass: every count below the table joins the table's cell set (the report's, from the school level down),
    # then all are solved together; what is drawn and written below reads that one set.
    cells = report.cells
    counts_cells = cells if below_school else None
    if cells is not None:
        if below_school:
            _add_distributions(cells, distributions)
            _add_critical(cells, breakdown.critical)
            if trend is not None:
                _add_trend(cells, trend[1])
        _add_groups(cells, groups, breakdown.any_group)
        cells.solve()
    insights.distributions = _distributions_shown(distributions, counts_cells)
    for distribution in insights.distributions:  # a hidden count's bar carries its mark, as in a table
        distribution.chart = histogram(distribution.values, distribution.counts, title=distribution.title,
                                       ylabel=_("Students"))  # fmt: skip
    insights.critical_items = _critical_items(definitions, breakdown.critical, counts_cells)
    insights.groups = _groups_shown(groups, group_names, cells)
    insights.trend = _trend(*trend, report, counts_cells) if trend is not None else None
    insights.tier_chart = _tier_chart(report)
    insights.tier_rows = bool(_tier_rows(report))
    return insights
