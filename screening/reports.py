"""Screening reads for staff pages: the campaign list, the flagged-students list and the completion/tier report.

Selectors only (no writes). Every row reaches a person through `roster.scoping` (`visible`, `within_readers_scope`)
or `screening.campaigns.campaigns_visible`; nothing here filters by school for access. Tiers, reasons and answers
are read only through the ScreeningResult readers rule (registered in screening/apps.py), so a homeroom teacher or a
roster admin gets completion numbers and nothing else. Aggregations run in the database, one grouped query a page.

May import: roster, screening.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db.models import Case, Count, Exists, FilteredRelation, IntegerField, OuterRef, Q, QuerySet, Value, When
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _

from roster import scoping
from roster.masking import mask_name
from roster.models import City, School, SchoolClass, Student
from roster.params import int_param
from roster.roles import Level
from screening.campaigns import campaigns_visible, invited_classes, invited_grades
from screening.campaigns import invited_students as campaign_students
from screening.checklists import checklist_campaigns_for
from screening.definitions import OBSERVER, RiskTier, parse_ruleset, text_language
from screening.models import Campaign, CampaignInstrument, RuleSet, ScreeningResult
from screening.suppression import HIDDEN_MARK, CellSet, mark

FLAGGED_TIERS = (RiskTier.RED, RiskTier.ORANGE, RiskTier.YELLOW)  # most urgent first: the list's order
REPORT_TIERS = (RiskTier.GREEN, RiskTier.YELLOW, RiskTier.ORANGE, RiskTier.RED)
FLAGGED_PAGE_SIZE = 50


# --- Campaigns -------------------------------------------------------------------------------------------------


def _reader_schools(user) -> QuerySet[School]:
    """Schools where the user holds a role that reads screening results (psychology teacher and above)."""
    return scoping.within_readers_scope(user, School, ScreeningResult)


def campaign_list_for(user) -> QuerySet[Campaign]:
    """Campaigns the user can see, newest first, each with `reads_results`: whether the flagged list is theirs;
    `is_checklist`: a teacher checklist; `fills_checklist`: the user fills it for a class of theirs.

    Access: any signed-in user; a user without a role gets an empty list.
    """
    reads = _reader_schools(user).filter(campaigns=OuterRef("pk"))
    observed = CampaignInstrument.objects.filter(campaign=OuterRef("pk"), instrument__definition__rater=OBSERVER)
    fills = checklist_campaigns_for(user).filter(pk=OuterRef("pk"))
    return (
        campaigns_visible(user)
        .annotate(reads_results=Exists(reads), is_checklist=Exists(observed), fills_checklist=Exists(fills))
        .order_by("-opens_at", "-pk")
    )


def access_campaign_by_id(user, campaign_id: int) -> Campaign:
    """The campaign if the user can see it; 404 for missing and forbidden alike.

    Access: campaigns_visible (at least one of its schools, or a class of one, in the user's scope).
    """
    return get_object_or_404(campaigns_visible(user).select_related("ruleset"), pk=campaign_id)


def invited_students(campaign: Campaign) -> QuerySet[Student]:
    """The students a campaign invites: the reports' denominators (the one rule, screening.campaigns.invited_q)."""
    return campaign_students(campaign)


# --- Flagged students ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FlaggedFilterOptions:
    schools: QuerySet[School]
    grades: list[int]
    classes: QuerySet[SchoolClass]


def flagged_filter_options(user, campaign: Campaign, *, school_id: int | None = None) -> FlaggedFilterOptions:
    """Filter choices inside the user's readers scope: the campaign's schools, target grades and classes.

    Classes are narrowed to `school_id` when given (the full class list of a district would be thousands long).
    """
    schools = _reader_schools(user).filter(campaigns=campaign).order_by("code")
    classes = scoping.within_readers_scope(
        user,
        invited_classes(campaign, SchoolClass.objects.all()),
        ScreeningResult,
    ).order_by("grade", "number")
    grades = sorted(set(classes.order_by().values_list("grade", flat=True).distinct()))
    if school_id is not None:
        classes = classes.filter(school_id=school_id)
    return FlaggedFilterOptions(schools=schools, grades=grades, classes=classes)


def reads_campaign_results(user, campaign: Campaign) -> bool:
    """Whether the user reads screening results of at least one of the campaign's schools (one query).

    Access: psychology teachers, principals, district centres and auditors, the city centre (the readers rule).
    """
    return _reader_schools(user).filter(campaigns=campaign).exists()


def user_reads_results(user) -> bool:
    """Whether the user holds a role that reads screening results anywhere (one query)."""
    return _reader_schools(user).exists()


_TIER_ORDER = Case(
    *(When(tier=tier, then=Value(rank)) for rank, tier in enumerate(FLAGGED_TIERS)),
    default=Value(len(FLAGGED_TIERS)),
    output_field=IntegerField(),
)


_FLAGGED_FIELDS = (
    "tier", "fired_rules", "submitted_at", "ruleset_id", "student__name", "student__student_no",
    "student__school__name", "student__school__campus", "student__school__code", "student__school_class__grade",
    "student__school_class__number",
)  # fmt: skip
_FLAGGED_ORDER = (
    "student__school__code", "student__school_class__grade", "student__school_class__number", "student__student_no",
)  # fmt: skip


def flagged_results_for(
    user, campaign: Campaign, *, school=None, grade: int | None = None, school_class=None, tier: str | None = None
) -> QuerySet[ScreeningResult]:
    """Results of yellow or above in this campaign that the user may read, red first, then by school and class.

    Access: scoping.visible(user, ScreeningResult): the readers rule; anyone else gets an empty queryset.
    """
    results = scoping.visible(user, ScreeningResult).filter(campaign=campaign, tier__in=list(FLAGGED_TIERS))
    if school is not None:
        results = results.filter(student__school=school)
    if grade is not None:
        results = results.filter(student__school_class__grade=grade)
    if school_class is not None:
        results = results.filter(student__school_class=school_class)
    if tier:
        results = results.filter(tier=tier)
    return (
        results.select_related("student__school", "student__school_class")
        .only(*_FLAGGED_FIELDS)
        .annotate(urgency=_TIER_ORDER)
        .order_by("urgency", *_FLAGGED_ORDER)
    )


@dataclass(frozen=True)
class FlaggedRow:
    student_id: int
    school: str
    school_class: str
    student_no: str
    masked_name: str
    tier: str
    tier_label: str
    reasons: list[str]
    submitted_at: object


def _reason_texts(ruleset_ids: set[int]) -> dict[int, dict[str, dict[str, str]]]:
    """{rule-set id: {rule id: {language: reason}}}, from the pinned rule-set versions (one query)."""
    texts = {}
    for pk, definition in RuleSet.objects.filter(pk__in=ruleset_ids).values_list("pk", "definition"):
        texts[pk] = {rule.id: rule.reason for rule in parse_ruleset(definition).rules}
    return texts


def flagged_page(results: QuerySet[ScreeningResult], page_number) -> tuple[Page, list[FlaggedRow]]:
    """One page (50) of flagged results as display rows: masked names, reasons in the active language.

    Reasons come from the rule-set version each result was scored with (the campaign's pinned version).
    """
    page = Paginator(results, FLAGGED_PAGE_SIZE).get_page(page_number)
    results_on_page = list(page.object_list)
    texts = _reason_texts({r.ruleset_id for r in results_on_page})
    language = text_language()
    rows = []
    for result in results_on_page:
        reasons = texts.get(result.ruleset_id, {})
        student = result.student
        rows.append(
            FlaggedRow(
                student_id=result.student_id,
                school=str(student.school),
                school_class=str(student.school_class),
                student_no=student.student_no,
                masked_name=mask_name(student.name),
                tier=result.tier,
                tier_label=RiskTier(result.tier).label,
                reasons=[reasons[rule][language] if rule in reasons else rule for rule in result.fired_rules],
                submitted_at=result.submitted_at,
            )
        )
    return page, rows


# --- Completion and tier report --------------------------------------------------------------------------------

ROW_DISTRICT, ROW_SCHOOL, ROW_GRADE, ROW_CLASS = "district", "school", "grade", "class"


@dataclass(frozen=True)
class Drill:
    """Where the report stands: the nodes chosen so far and which level its rows are."""

    rows: str = ROW_DISTRICT
    district: int | None = None
    school: int | None = None
    grade: int | None = None
    school_class: int | None = None

    def params(self) -> dict[str, int]:
        named = {"district": self.district, "school": self.school, "grade": self.grade, "class": self.school_class}
        return {k: v for k, v in named.items() if v is not None}

    @property
    def query(self) -> str:
        return urlencode(self.params())


@dataclass(frozen=True)
class Crumb:
    label: str
    params: dict | None  # None: not a link (the current level, or above where the user's scope starts)

    @property
    def query(self) -> str | None:
        return None if self.params is None else urlencode(self.params)


@dataclass
class ReportRow:
    labels: list[str]
    invited: int
    completed: int
    tiers: dict[str, int] | None  # None: the user does not read results of every student in this row
    drill: dict | None = None  # query params of the next level down
    hidden: set[str] = field(default_factory=set)  # tiers hidden (screening.suppression)
    min_cell: int = 0

    @property
    def tier_cells(self) -> list[int | str] | None:
        """The tier counts as shown: a hidden count as its mark, "<k" or "*" (screening.suppression.mark)."""
        if self.tiers is None:
            return None
        return [mark(self.tiers[t], self.min_cell) if t in self.hidden else self.tiers[t] for t in REPORT_TIERS]

    @property
    def tier_cells_and_shares(self) -> list[tuple[int | str, float | None]]:
        return list(zip(self.tier_cells or [], self.tier_shares or [], strict=True))

    @property
    def tier_shares(self) -> list[float | None] | None:
        """Each tier's share of the completed, in %; None where the count is suppressed."""
        if self.tiers is None:
            return None
        return [
            None if t in self.hidden else (round(self.tiers[t] * 100 / self.completed, 1) if self.completed else 0.0)
            for t in REPORT_TIERS
        ]

    @property
    def drill_query(self) -> str | None:
        return None if self.drill is None else urlencode(self.drill)

    @property
    def completion(self) -> float:
        return round(self.completed * 100 / self.invited, 1) if self.invited else 0.0

    @property
    def tier_counts(self) -> list[int] | None:
        return None if self.tiers is None else [self.tiers[t] for t in REPORT_TIERS]


@dataclass
class Report:
    campaign: Campaign
    drill: Drill
    label_headers: list[str]
    headers: list[str]  # label headers, then the numbers' (the XLSX header row)
    shows_tiers: bool
    rows: list[ReportRow]
    total: ReportRow
    crumbs: list[Crumb] = field(default_factory=list)
    # The report's one set of suppressed cells (screening.suppression), below the school level: the table's, solved;
    # screening.report_insights adds the charts' and breakdowns' to it. None where nothing is suppressed.
    cells: CellSet | None = None

    @property
    def suppresses(self) -> bool:
        return self.shows_tiers and self.drill.rows in SUPPRESSED_ROWS

    @property
    def min_cell(self) -> int:
        return settings.REPORT_MIN_CELL

    @property
    def legend(self) -> str:
        """What the marks of hidden counts say, for the page's note and the export's last line."""
        return suppression_legend(self.min_cell)


def suppression_legend(k: int) -> str:
    return _("<%(k)d: fewer than %(k)d students; %(mark)s: hidden so that a small count cannot be worked out from "
             "the others") % {"k": k, "mark": HIDDEN_MARK}  # fmt: skip


def _headers(label_headers: list[str], shows_tiers: bool) -> list[str]:
    headers = [*label_headers, _("Invited"), _("Completed"), _("Completion %")]
    if shows_tiers:
        headers += [str(RiskTier(t).label) for t in REPORT_TIERS]
    return headers


def _only(ids: set[int]) -> int | None:
    return next(iter(ids)) if len(ids) == 1 else None


def _start_drill(user) -> Drill:
    """The first view of the report: one level below the highest node of the user's scope.

    A user whose whole scope lies under one node starts inside it (a district centre at its schools, a
    psychology teacher at their school's grades, a homeroom teacher at their class); several nodes give their rows.
    """
    scope = scoping.scope_for(user)
    nodes = scope.nodes()
    if scope.unrestricted or nodes[Level.CITY]:
        return Drill(rows=ROW_DISTRICT)
    held = sum(len(ids) for ids in nodes.values())
    visible_students = scoping.visible(user, Student)
    if nodes[Level.DISTRICT]:
        district = _only(nodes[Level.DISTRICT])
        # A second role lower down (say a homeroom class elsewhere) must not fall out of the first view.
        if district and (held == 1 or not visible_students.exclude(school__district_id=district).exists()):
            return Drill(rows=ROW_SCHOOL, district=district)
        return Drill(rows=ROW_DISTRICT)
    if nodes[Level.SCHOOL]:
        school = _only(nodes[Level.SCHOOL])
        if school and (held == 1 or not visible_students.exclude(school_id=school).exists()):
            return Drill(rows=ROW_GRADE, school=school)
        return Drill(rows=ROW_SCHOOL)
    school_class = _only(nodes[Level.CLASS])
    if school_class:
        found = scoping.visible(user, SchoolClass).filter(pk=school_class).values("school_id", "grade").first()
        if found:
            return Drill(rows=ROW_CLASS, school=found["school_id"], grade=found["grade"], school_class=school_class)
    if nodes[Level.CLASS]:
        return Drill(rows=ROW_CLASS)
    return Drill(rows=ROW_DISTRICT)  # no role: nothing visible, an empty report


def report_drill(user, campaign: Campaign, params) -> tuple[Drill, Drill, SchoolClass | None]:
    """(drill asked for, the user's start drill, a class inside the drilled node, for the breadcrumb's names).

    Raises Http404 for malformed params, a grade without its school, or a node the user does not see in this
    campaign (forbidden and missing look the same).
    """
    start = _start_drill(user)
    district, school = int_param(params, "district"), int_param(params, "school")
    grade, school_class = int_param(params, "grade"), int_param(params, "class")
    asked = any(v is not None for v in (district, school, grade, school_class))
    if grade is not None and school is None and school_class is None:
        raise Http404
    if not asked:
        drill = start
    elif school_class is not None:
        drill = Drill(ROW_CLASS, district, school, grade, school_class)
    elif grade is not None:
        drill = Drill(ROW_CLASS, district, school, grade)
    elif school is not None:
        drill = Drill(ROW_GRADE, district, school)
    else:
        drill = Drill(ROW_SCHOOL, district)
    lookups = {"school__district_id": drill.district, "school_id": drill.school, "grade": drill.grade}
    lookups = {k: v for k, v in lookups.items() if v is not None}
    if drill.school_class is not None:
        lookups["pk"] = drill.school_class
    if not lookups:
        return drill, start, None
    if asked and drill.grade is not None and drill.grade not in invited_grades(campaign):
        raise Http404
    sample = (
        scoping.visible(user, SchoolClass)
        .filter(school__campaigns=campaign, **lookups)
        .select_related("school__district__city")
        .order_by("pk")
        .first()
    )
    if sample is None:
        if asked:
            raise Http404
        return drill, start, None  # the user's own node has no class in this campaign yet: an empty first view
    if drill.school_class is not None:  # ?class=ID alone: complete the path from the class itself
        drill = Drill(ROW_CLASS, drill.district, sample.school_id, sample.grade, sample.pk)
    return drill, start, sample


_ROW_KEYS = {
    ROW_DISTRICT: ("school__district_id", "school__district__name", "school__district__division_code"),
    ROW_SCHOOL: ("school_id", "school__code", "school__name", "school__campus"),
    ROW_GRADE: ("school_id", "school__code", "school__name", "school__campus", "school_class__grade"),
    ROW_CLASS: (
        "school_class_id", "school_id", "school__code", "school__name", "school__campus", "school_class__grade",
        "school_class__number",
    ),
}  # fmt: skip
_ROW_ORDER = {
    ROW_DISTRICT: ("school__district__division_code",),
    ROW_SCHOOL: ("school__code",),
    ROW_GRADE: ("school__code", "school_class__grade"),
    ROW_CLASS: ("school__code", "school_class__grade", "school_class__number"),
}


def _school_label(row: dict) -> str:
    return f"{row['school__name']}（{row['school__campus']}）" if row["school__campus"] else row["school__name"]


def _row_labels(level: str, row: dict) -> tuple[list[str], dict | None]:
    if level == ROW_DISTRICT:
        return [row["school__district__name"]], {"district": row["school__district_id"]}
    if level == ROW_SCHOOL:
        return [row["school__code"], _school_label(row)], {"school": row["school_id"]}
    if level == ROW_GRADE:
        grade = row["school_class__grade"]
        label = _("Grade %(grade)d") % {"grade": grade}
        return [_school_label(row), label], {"school": row["school_id"], "grade": grade}
    label = _("Grade %(grade)d, class %(number)d") % {
        "grade": row["school_class__grade"],
        "number": row["school_class__number"],
    }
    drill = {"school": row["school_id"], "grade": row["school_class__grade"], "class": row["school_class_id"]}
    return [_school_label(row), label], drill


def _label_headers(level: str) -> list[str]:
    return {
        ROW_DISTRICT: [_("District")],
        ROW_SCHOOL: [_("School code"), _("School")],
        ROW_GRADE: [_("School"), _("Grade")],
        ROW_CLASS: [_("School"), _("Class")],
    }[level]


def _crumbs(user, drill: Drill, start: Drill, sample: SchoolClass | None) -> list[Crumb]:
    """Breadcrumb from the top of the user's scope to here; levels above where the user starts are not links."""
    crumbs: list[Crumb] = []
    starts_at_top = not start.params()
    if starts_at_top:
        if sample is not None:
            root = sample.school.district.city.name
        else:
            cities = list(scoping.visible(user, City).order_by("division_code")[:2])
            root = cities[0].name if len(cities) == 1 else _("All")
        crumbs.append(Crumb(root, {}))
    if sample is not None:
        school = sample.school
        if drill.district is not None or drill.school is not None:
            district_params = {"district": school.district_id} if start.school is None else None
            crumbs.append(Crumb(school.district.name, district_params))
        if drill.school is not None:
            crumbs.append(Crumb(str(school), {"school": school.pk} if start.school_class is None else None))
        if drill.grade is not None:
            grade_params = {"school": school.pk, "grade": drill.grade}
            label = _("Grade %(grade)d") % {"grade": drill.grade}
            crumbs.append(Crumb(label, grade_params if start.school_class is None else None))
        if drill.school_class is not None:
            crumbs.append(Crumb(str(sample), {"school": school.pk, "grade": drill.grade, "class": sample.pk}))
    if crumbs:
        crumbs[-1] = Crumb(crumbs[-1].label, None)  # the current level
    return crumbs


def node_students(user, campaign: Campaign, drill: Drill) -> QuerySet[Student]:
    """The invited students under the drill's node that the user sees (not yet narrowed to those whose results they
    read: see readable_students)."""
    invited = scoping.visible(user, invited_students(campaign))
    narrowing = {
        "school__district_id": drill.district,
        "school_id": drill.school,
        "school_class__grade": drill.grade,
        "school_class_id": drill.school_class,
    }
    return invited.filter(**{k: v for k, v in narrowing.items() if v is not None})


def readable_students(user, students: QuerySet[Student]) -> QuerySet[Student]:
    """Those of `students` whose screening results the user reads (the ScreeningResult readers rule)."""
    return students.filter(scoping.readers_q(user, Student, ScreeningResult))


def _counts(user, campaign: Campaign, shows_tiers: bool) -> tuple[FilteredRelation, dict]:
    """The report's aggregates over students: invited, completed and, for readers, the readable and each tier among
    the readable (a condition on the student's own school and district, not a subquery of every readable student)."""
    this_result = FilteredRelation("screening_results", condition=Q(screening_results__campaign_id=campaign.pk))
    aggregates = {"n_invited": Count("pk"), "n_completed": Count("this_result")}
    if shows_tiers:
        readable = scoping.readers_q(user, Student, ScreeningResult)
        aggregates["n_readable"] = Count("pk", filter=readable)
        for tier in REPORT_TIERS:
            aggregates[f"n_{tier}"] = Count("this_result", filter=readable & Q(this_result__tier=tier))
    return this_result, aggregates


def node_totals(user, campaign: Campaign, drill: Drill) -> ReportRow:
    """The totals of one campaign under a node (one query): what the trend compares, without the rows, the drill
    checks or the breadcrumb of a whole report. Tiers are None unless the user reads every student's result."""
    this_result, aggregates = _counts(user, campaign, shows_tiers=True)
    values = node_students(user, campaign, drill).annotate(this_result=this_result).aggregate(**aggregates)
    tiers = None
    if values["n_invited"] and values["n_readable"] == values["n_invited"]:
        tiers = {t: values[f"n_{t}"] for t in REPORT_TIERS}
    return ReportRow([_("Total")], values["n_invited"], values["n_completed"], tiers)


def campaign_report(user, campaign: Campaign, params) -> Report:
    """Invited, completed, completion % and (for readers) counts per tier, one row per node of the drill level.

    Access: invited students within scoping.visible(user, Student); tier counts only over students within
    scoping.within_readers_scope(user, Student, ScreeningResult), and shown only for rows the user reads whole.
    Queries: a constant handful (scope, drill check, one GROUP BY), whatever the number of rows or students.
    """
    drill, start, sample = report_drill(user, campaign, params)
    shows_tiers = reads_campaign_results(user, campaign)
    invited = node_students(user, campaign, drill)
    this_result, aggregates = _counts(user, campaign, shows_tiers)
    grouped = (
        invited.annotate(this_result=this_result)
        .values(*_ROW_KEYS[drill.rows])
        .annotate(**aggregates)
        .order_by(*_ROW_ORDER[drill.rows])
    )
    rows = []
    for values in grouped:
        labels, drill_params = _row_labels(drill.rows, values)
        if drill.school_class is not None:
            drill_params = None  # the one class shown: the report stands on it already
        tiers = None
        if shows_tiers and values["n_readable"] == values["n_invited"]:
            tiers = {t: values[f"n_{t}"] for t in REPORT_TIERS}
        rows.append(ReportRow(labels, values["n_invited"], values["n_completed"], tiers, drill_params))
    total_tiers = None
    if shows_tiers and all(r.tiers is not None for r in rows):
        total_tiers = {t: sum(r.tiers[t] for r in rows) for t in REPORT_TIERS}
    label_headers = _label_headers(drill.rows)
    total_labels = [_("Total")] + [""] * (len(label_headers) - 1)
    total = ReportRow(
        total_labels, sum(r.invited for r in rows), sum(r.completed for r in rows), total_tiers if rows else None
    )
    cells = None
    if drill.rows in SUPPRESSED_ROWS:
        cells = _suppress_small_cells(rows, total, total_too=drill.rows == ROW_CLASS)
    return Report(
        campaign=campaign,
        drill=drill,
        label_headers=label_headers,
        headers=_headers(label_headers, shows_tiers),
        shows_tiers=shows_tiers,
        rows=rows,
        total=total,
        crumbs=_crumbs(user, drill, start, sample),
        cells=cells,
    )


# Rows below the school level: a grade or a class is small enough for a count to point at a child (issue 7 §2).
SUPPRESSED_ROWS = (ROW_GRADE, ROW_CLASS)


def total_cell(tier: str) -> tuple:
    """The key of a tier count of the totals row in Report.cells: what the breakdowns below the table add up to."""
    return ("table", "total", tier)


def _suppress_small_cells(rows: list[ReportRow], total: ReportRow, *, total_too: bool) -> CellSet:
    """Hide the tier counts below k (settings.REPORT_MIN_CELL), with their complements: a row of fewer than k
    completed shows no tier at all. `total_too` when the totals row is itself below school level (the classes of one
    grade add up to the grade); above, the school's totals are shown as they are. The cell set, solved."""
    k = settings.REPORT_MIN_CELL
    cells = CellSet(k)
    readable = [(i, row) for i, row in enumerate(rows) if row.tiers is not None]
    for i, row in readable:
        for tier in REPORT_TIERS:
            cells.add(("table", i, tier), row.tiers[tier])
    if total.tiers is not None:
        for tier in REPORT_TIERS:
            cells.add(total_cell(tier), total.tiers[tier], shown=not total_too)
    for i, row in readable:
        cells.line([("table", i, tier) for tier in REPORT_TIERS], size=row.completed)
    if total.tiers is not None:
        cells.line([total_cell(tier) for tier in REPORT_TIERS], size=total.completed if total_too else None)
    for tier in REPORT_TIERS:  # a column adds up to its total; without one shown, to a number still worked out
        total_key = [total_cell(tier)] if total.tiers is not None else []
        cells.line([("table", i, tier) for i, _row in readable] + total_key)
    hidden = cells.solve()
    for i, row in readable:
        row.hidden, row.min_cell = {tier for tier in REPORT_TIERS if ("table", i, tier) in hidden}, k
    total.hidden, total.min_cell = {tier for tier in REPORT_TIERS if total_cell(tier) in hidden}, k
    return cells


def report_sheet(report: Report) -> tuple[str, list[str], list[list]]:
    """The report as one spreadsheet sheet (for roster.spreadsheets.xlsx_bytes): same columns, a totals row, and
    where counts are hidden, the page's legend of their marks."""

    def cells(row: ReportRow) -> list:
        values = [*row.labels, row.invited, row.completed, row.completion]
        if report.shows_tiers:
            values += row.tier_cells if row.tier_cells is not None else [""] * len(REPORT_TIERS)
        return values

    legend = [[report.legend]] if report.suppresses and report.rows else []
    return (_("Report"), report.headers, [cells(r) for r in report.rows] + [cells(report.total)] + legend)
