"""Case dashboards (issue 7 item 4; seed 001 督导, seed 002 三级责任): per school, district and city, the open cases per
tier, new and closed this month, the median times from flag to first interview and to closure, overdue tasks by step
and by person, referrals waiting for the institution's feedback and the caseload per psychology teacher.

Selectors only. Who sees what is roster.scoping's: the cases a user may see (`visible`), narrowed to the subtrees where
they hold a dashboard role (`within_roles`) — so an emergency access to one case or a homeroom seat elsewhere adds
nothing to a dashboard. A node asked for in the URL outside those subtrees is missing (Http404).

The queries: every figure is grouped per school in the database, one query per kind of figure, and the schools are
rolled up to districts and the city in Python (a city has a few hundred schools). So a page runs the same handful of
queries whatever the number of cases. The medians are the exception to "aggregate in the database": SQLite has no
percentile function, so the durations of the month's first interviews and closures (one month of one scope: at most
a few thousand pairs of timestamps in a city of 20,000 cases) are fetched as two columns and the median taken in
Python. That list is bounded by the month, not by the history.

Definitions (the page says them too):
- "this month": a calendar month in settings.TIME_ZONE (Asia/Shanghai), the current one unless ?month=YYYY-MM.
- open: status open or closure proposed (cases.models.ACTIVE_STATUSES), by the case's tier now.
- new: opened (Case.opened_at, the flag) in the month; closed: status closed with Case.closed_at in the month (a
  false positive closed at triage counts: it is a closure). A reopened case keeps its first opened_at.
- time to first interview: from opened_at to the case's earliest InterviewNote.held_at, over the cases whose first
  interview was held in the month; time to closure: opened_at → closed_at over the month's closures.
- overdue: an open human task (NEW, ASSIGNED or STARTED) whose due time (its TaskClock, workflows.deadlines) is past
  (every human step has one); by step (the flow node) and by person (the task's owner, or the school's queue when nobody
  has taken it).
- referral pending feedback: approved, made (referred_on set), no feedback yet (no date received, no text).
- caseload: open cases on which a psychology teacher holds the psychology-teacher seat; every psychology teacher of
  the schools in view is listed, those without a case with 0.

May import: roster, screening, cases.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.db.models import Count, F, Min, Q, QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _
from viewflow.workflow.models import Task
from viewflow.workflow.status import STATUS

from cases.models import ACTIVE_STATUSES, Case, CaseStatus, CaseTeamMember, Decision, InterviewNote, Referral, TeamSeat
from roster import scoping
from roster.models import City, District, RoleAssignment, School
from roster.params import int_param
from roster.roles import Level, Role
from screening.definitions import RiskTier

# Who gets a dashboard: the school's leadership, the district centre and its auditor (read-only, as everywhere), the
# city centre. Psychology and homeroom teachers work from their inbox; admins keep rosters, not cases.
DASHBOARD_ROLES = frozenset({Role.PRINCIPAL, Role.DISTRICT_CENTRE, Role.DISTRICT_AUDITOR, Role.CITY_CENTRE})
TIERS = (RiskTier.RED, RiskTier.ORANGE, RiskTier.YELLOW, RiskTier.GREEN)  # green: a false positive awaiting approval
OPEN_TASK_STATUSES = (STATUS.NEW, STATUS.ASSIGNED, STATUS.STARTED)
PERSON_ROWS = 25  # a district's or city's by-person tables show the heaviest this many (the rest are counted)
ALL = "all"  # the level of a view over several nodes (a principal of two schools, a superuser)


def has_dashboard(user) -> bool:
    """Whether the user holds a dashboard role anywhere (no query): the pages' gate."""
    scope = scoping.scope_for(user)
    return scope.unrestricted or bool(scope.roles & DASHBOARD_ROLES)


# --- The month --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Month:
    start: datetime  # aware, midnight of the 1st in settings.TIME_ZONE
    end: datetime  # the next month's start (excluded)

    @property
    def key(self) -> str:
        return f"{self.start.year:04d}-{self.start.month:02d}"

    @property
    def previous(self) -> Month:
        return month_of(self.start - timedelta(days=1))

    @property
    def next(self) -> Month:
        return month_of(self.end)


def month_of(moment: datetime) -> Month:
    """The calendar month (in settings.TIME_ZONE) holding `moment`."""
    local = timezone.localtime(moment, timezone.get_default_timezone())
    return month_starting(local.year, local.month)


def month_starting(year: int, month: int) -> Month:
    zone = timezone.get_default_timezone()
    start = timezone.make_aware(datetime(year, month, 1), zone)
    end = timezone.make_aware(datetime(year + month // 12, month % 12 + 1, 1), zone)
    return Month(start, end)


def parse_month(raw: str | None) -> Month | None:
    """ "2026-03" as its Month; None for anything else."""
    try:
        year, month = (int(part) for part in (raw or "").split("-"))
        return month_starting(year, month) if 2000 <= year <= 2999 and 1 <= month <= 12 else None
    except ValueError:
        return None


# --- Named rules (also the case list's filters, so that a number and its list agree) ------------------------------


def in_month_q(lookup: str, month: Month) -> Q:
    return Q(**{f"{lookup}__gte": month.start, f"{lookup}__lt": month.end})


def open_q() -> Q:
    return Q(status__in=ACTIVE_STATUSES)


def closed_in_q(month: Month) -> Q:
    return Q(status=CaseStatus.CLOSED) & in_month_q("closed_at", month)


def first_interviews(cases: QuerySet[Case] | None = None) -> QuerySet:
    """Per case (of `cases`, or all): its earliest interview (`first`), with the case's school and opening time."""
    notes = InterviewNote.objects.all() if cases is None else InterviewNote.objects.filter(case__in=cases.values("pk"))
    return notes.order_by().values("case_id", "case__school_id", "case__opened_at").annotate(first=Min("held_at"))


def first_interview_in_q(month: Month) -> Q:
    """Cases whose first interview was held in `month`."""
    firsts = first_interviews().filter(first__gte=month.start, first__lt=month.end)
    return Q(pk__in=firsts.values("case_id"))


def pending_feedback_q(prefix: str = "") -> Q:
    """A referral approved and made, the institution not yet heard from."""
    return Q(
        **{f"{prefix}decision": Decision.APPROVED, f"{prefix}referred_on__isnull": False,
           f"{prefix}feedback_received_on__isnull": True, f"{prefix}feedback": ""}
    )  # fmt: skip


def psychologist_seat_q(user_id, prefix: str = "") -> Q:
    return Q(
        **{f"{prefix}team__user_id": user_id, f"{prefix}team__seat": TeamSeat.PSYCHOLOGY_TEACHER,
           f"{prefix}team__left_at__isnull": True}
    )  # fmt: skip


def overdue_q(now: datetime) -> Q:
    # The step's clock (workflows.deadlines): every human step has one. A stopped case (its student left the system:
    # cases.leavers) has nothing overdue while it waits.
    return Q(clock__due_at__lt=now, clock__case__paused_at__isnull=True)


# --- The node in view ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    level: str  # Level.CITY / DISTRICT / SCHOOL, or ALL
    pk: int | None
    name: str

    @property
    def params(self) -> dict[str, int]:
        return {} if self.level == ALL else {self.level: self.pk}

    @property
    def query(self) -> str:
        return urlencode(self.params)


@dataclass(frozen=True)
class Crumb:
    label: str
    query: str | None  # None: not a link (the current node, or above the user's scope)


def _school_label(name: str, campus: str) -> str:
    return f"{name}（{campus}）" if campus else name


def _reachable(user, model) -> QuerySet:
    return scoping.within_roles(user, model, DASHBOARD_ROLES)


def _opens(user, level: str, pk: int, *, district_id=None, city_id=None) -> bool:
    """Whether the user may open the dashboard of this node (no query): a dashboard role at it or above."""
    scope = scoping.scope_for(user)
    if scope.unrestricted:
        return True
    nodes = scope.nodes(DASHBOARD_ROLES)
    return (
        pk in nodes[level]
        or (district_id is not None and district_id in nodes[Level.DISTRICT])
        or (city_id is not None and city_id in nodes[Level.CITY])
    )


def dashboard_node(user, params) -> tuple[Node, list[Crumb]]:
    """The node of ?school= / ?district= / ?city= (the user's own when none), and the breadcrumb to it.

    Access: the node must lie in a subtree where the user holds a dashboard role; Http404 otherwise, as for a missing
    node or a malformed id. A user without a dashboard role gets Http404 too.
    """
    if not has_dashboard(user):
        raise Http404
    asked = {level: int_param(params, level) for level in (Level.SCHOOL, Level.DISTRICT, Level.CITY)}
    if sum(v is not None for v in asked.values()) > 1:
        raise Http404
    if asked[Level.SCHOOL] is not None:
        found = _reachable(user, School).filter(pk=asked[Level.SCHOOL]).select_related("district__city").first()
        if found is None:
            raise Http404
        district, city = found.district, found.district.city
        node = Node(Level.SCHOOL, found.pk, _school_label(found.name, found.campus))
        crumbs = [
            Crumb(city.name, urlencode({"city": city.pk}) if _opens(user, Level.CITY, city.pk) else None),
            Crumb(district.name, urlencode({"district": district.pk}) if _opens(
                user, Level.DISTRICT, district.pk, city_id=city.pk) else None),
        ]  # fmt: skip
    elif asked[Level.DISTRICT] is not None:
        found = _reachable(user, District).filter(pk=asked[Level.DISTRICT]).select_related("city").first()
        if found is None:
            raise Http404
        node = Node(Level.DISTRICT, found.pk, found.name)
        crumbs = [Crumb(found.city.name, urlencode({"city": found.city_id}) if _opens(
            user, Level.CITY, found.city_id) else None)]  # fmt: skip
    elif asked[Level.CITY] is not None:
        found = _reachable(user, City).filter(pk=asked[Level.CITY]).first()
        if found is None:
            raise Http404
        node, crumbs = Node(Level.CITY, found.pk, found.name), []
    else:
        return start_node(user), []
    return node, [c for c in crumbs if c.query is not None] + [Crumb(node.name, None)]


def start_node(user) -> Node:
    """The first view: the one node where the user holds a dashboard role, or all of theirs when several."""
    scope = scoping.scope_for(user)
    held = [(level, pk) for level, ids in scope.nodes(DASHBOARD_ROLES).items() for pk in ids]
    if scope.unrestricted or len(held) != 1:
        return Node(ALL, None, _("All"))
    level, pk = held[0]
    model = {Level.CITY: City, Level.DISTRICT: District, Level.SCHOOL: School}[level]
    found = model.objects.filter(pk=pk).first()
    name = _school_label(found.name, found.campus) if level == Level.SCHOOL else found.name
    return Node(level, pk, name)


# --- The rows of the page -----------------------------------------------------------------------------------------


@dataclass
class Figures:
    """The figures of one school, or of several rolled up."""

    open_by_tier: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TIERS, 0))
    new: int = 0
    closed: int = 0
    overdue: int = 0
    referrals_pending: int = 0
    psychologists: int = 0
    psychologist_cases: int = 0  # open cases with a psychology-teacher seat
    interview_days: list[float] = field(default_factory=list)
    closure_days: list[float] = field(default_factory=list)

    @property
    def open_total(self) -> int:
        return sum(self.open_by_tier.values())

    @property
    def tier_cells(self) -> list[tuple[str, int]]:
        return [(t, self.open_by_tier[t]) for t in TIERS]

    @property
    def median_interview_days(self) -> float | None:
        return _median(self.interview_days)

    @property
    def median_closure_days(self) -> float | None:
        return _median(self.closure_days)

    @property
    def caseload_average(self) -> float | None:
        return round(self.psychologist_cases / self.psychologists, 1) if self.psychologists else None

    def add(self, other: Figures) -> None:
        for tier in TIERS:
            self.open_by_tier[tier] += other.open_by_tier[tier]
        for name in ("new", "closed", "overdue", "referrals_pending", "psychologists", "psychologist_cases"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.interview_days += other.interview_days
        self.closure_days += other.closure_days


def _median(days: list[float]) -> float | None:
    return round(statistics.median(days), 1) if days else None


def _days(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / 86400


@dataclass(frozen=True)
class Row:
    node: Node
    figures: Figures


@dataclass(frozen=True)
class Line:
    """One line of a by-step or by-person table: what, how many, and the query of its list."""

    label: str
    count: int
    query: str


@dataclass
class Dashboard:
    node: Node
    crumbs: list[Crumb]
    month: Month
    now: datetime
    total: Figures
    rows: list[Row]  # the node's children (districts of a city, schools of a district); none for a school
    row_level: str | None
    overdue_by_step: list[Line]
    overdue_by_person: list[Line]
    overdue_people: int  # how many lines by person in all (the table shows PERSON_ROWS)
    caseload: list[Line]
    psychologists: int
    # Signals per source (issue 20): waiting for triage and raised this term (workflows.signals.SourceCount).
    signals: list = field(default_factory=list)

    @property
    def is_current_month(self) -> bool:
        return self.month == month_of(self.now)


def _schools_in(user, node: Node) -> list[dict]:
    """The schools in view: their ids, names and where they lie (one query)."""
    schools = _reachable(user, School)
    narrowing = {Level.SCHOOL: "pk", Level.DISTRICT: "district_id", Level.CITY: "district__city_id"}
    if node.level != ALL:
        schools = schools.filter(**{narrowing[node.level]: node.pk})
    return list(
        schools.order_by("code", "pk").values(
            "pk", "code", "name", "campus", "district_id", "district__name", "district__division_code",
            "district__city_id", "district__city__name",
        )
    )  # fmt: skip


def dashboard_cases(user, node: Node) -> QuerySet[Case]:
    """The cases behind a dashboard: visible to the user, in their dashboard subtrees, under the node."""
    cases = scoping.within_roles(user, scoping.visible(user, Case), DASHBOARD_ROLES)
    narrowing = {
        Level.SCHOOL: "school_id",
        Level.DISTRICT: "school__district_id",
        Level.CITY: "school__district__city_id",
    }
    return cases.filter(**{narrowing[node.level]: node.pk}) if node.level != ALL else cases


def dashboard_signals(user, node: Node) -> QuerySet:
    """The signals behind a dashboard (issue 20): visible to the user, in their dashboard subtrees, under the node."""
    from cases.models import Signal

    signals = scoping.within_roles(user, scoping.visible(user, Signal), DASHBOARD_ROLES)
    narrowing = {
        Level.SCHOOL: "school_id",
        Level.DISTRICT: "school__district_id",
        Level.CITY: "school__district__city_id",
    }
    return signals.filter(**{narrowing[node.level]: node.pk}) if node.level != ALL else signals


def overdue_tasks(user, node: Node, now: datetime) -> QuerySet[Task]:
    """Open human tasks past their due time, on the dashboard's cases, each with `due_at` (its clock's)."""
    return (
        Task.objects.filter(
            flow_task_type="HUMAN", status__in=OPEN_TASK_STATUSES,
            process__caseprocess__case__in=dashboard_cases(user, node).values("pk"),
        )
        .annotate(due_at=F("clock__due_at"))
        .filter(overdue_q(now))
    )  # fmt: skip


def _per_school(user, node: Node, month: Month, now: datetime) -> dict[int, Figures]:
    """Every figure per school id, one grouped query per kind (six queries in all)."""
    cases = dashboard_cases(user, node)
    figures: dict[int, Figures] = defaultdict(Figures)
    counts = {f"open_{t}": Count("pk", filter=open_q() & Q(tier=t)) for t in TIERS}
    counts["new"] = Count("pk", filter=in_month_q("opened_at", month))
    counts["closed"] = Count("pk", filter=closed_in_q(month))
    for row in cases.order_by().values("school_id").annotate(**counts):
        f = figures[row["school_id"]]
        f.open_by_tier = {t: row[f"open_{t}"] for t in TIERS}
        f.new, f.closed = row["new"], row["closed"]
    firsts = first_interviews(cases).filter(first__gte=month.start, first__lt=month.end)
    for row in firsts:
        figures[row["case__school_id"]].interview_days.append(_days(row["case__opened_at"], row["first"]))
    for school_id, opened, closed in cases.filter(closed_in_q(month)).values_list(
        "school_id", "opened_at", "closed_at"
    ):
        figures[school_id].closure_days.append(_days(opened, closed))
    for row in overdue_tasks(user, node, now).values("process__caseprocess__case__school_id").annotate(n=Count("pk")):
        figures[row["process__caseprocess__case__school_id"]].overdue = row["n"]
    referrals = scoping.visible(user, Referral).filter(pending_feedback_q(), case__in=cases.values("pk"))
    for row in referrals.order_by().values("case__school_id").annotate(n=Count("pk")):
        figures[row["case__school_id"]].referrals_pending = row["n"]
    return figures


def _caseload(user, node: Node, schools: list[dict], figures: dict[int, Figures]) -> list[Line]:
    """Open cases per psychology teacher (seat holders, and every psychology teacher of the schools at 0): two
    queries. Also sets each school's count of psychology teachers and of their cases."""
    cases = dashboard_cases(user, node).filter(open_q())
    seats = (
        CaseTeamMember.objects.filter(
            seat=TeamSeat.PSYCHOLOGY_TEACHER, left_at__isnull=True, case__in=cases.values("pk")
        )
        .order_by()
        .values("user_id", "user__name", "user__username", "case__school_id")
        .annotate(n=Count("pk"))
    )  # fmt: skip
    teachers = RoleAssignment.objects.filter(
        role=Role.PSYCHOLOGY_TEACHER, school_id__in=[s["pk"] for s in schools], user__is_active=True
    ).values_list("user_id", "user__name", "user__username", "school_id")
    loads: dict[int, list] = {}
    for user_id, name, username, school_id in teachers:
        loads.setdefault(user_id, [name or username, 0])
        figures[school_id].psychologists += 1
    for row in seats:
        load = loads.setdefault(row["user_id"], [row["user__name"] or row["user__username"], 0])
        load[1] += row["n"]
        figures[row["case__school_id"]].psychologist_cases += row["n"]
    lines = [Line(name, n, urlencode({"psychologist": pk})) for pk, (name, n) in loads.items()]
    return sorted(lines, key=lambda line: (-line.count, line.label))


def _overdue_breakdowns(user, node: Node, now: datetime) -> tuple[list[Line], list[Line]]:
    """Overdue tasks by step and by person (one grouped query)."""
    by_step: dict[str, list] = {}
    by_person: dict[object, list] = {}
    rows = (
        overdue_tasks(user, node, now)
        .order_by()
        .values("flow_task", "owner_id", "owner__name", "owner__username")
        .annotate(n=Count("pk"))
    )
    for row in rows:
        step = row["flow_task"]
        name = getattr(step, "name", str(step).rsplit(".", 1)[-1])
        title = str(getattr(step, "task_title", "") or name)
        by_step.setdefault(name, [title, 0])[1] += row["n"]
        owner = row["owner_id"] or "queue"
        label = (row["owner__name"] or row["owner__username"]) if row["owner_id"] else _("Nobody yet (school queue)")
        by_person.setdefault(owner, [label, 0])[1] += row["n"]
    steps = [Line(title, n, urlencode({"step": name})) for name, (title, n) in by_step.items()]
    people = [Line(label, n, urlencode({"owner": owner})) for owner, (label, n) in by_person.items()]
    return sorted(steps, key=lambda c: (-c.count, c.label)), sorted(people, key=lambda c: (-c.count, c.label))


def _rows(user, node: Node, schools: list[dict], figures: dict[int, Figures]) -> tuple[str | None, list[Row]]:
    """The node's children with their figures rolled up from their schools."""
    if node.level == Level.SCHOOL:
        return None, []
    if node.level == Level.DISTRICT:
        return Level.SCHOOL, [
            Row(Node(Level.SCHOOL, s["pk"], _school_label(s["name"], s["campus"])), _sum([figures.get(s["pk"])]))
            for s in schools
        ]
    if node.level == Level.CITY:
        groups: dict[int, list] = {}
        for s in sorted(schools, key=lambda s: (s["district__division_code"], s["district_id"])):
            groups.setdefault(s["district_id"], [s["district__name"], []])[1].append(figures.get(s["pk"]))
        return Level.DISTRICT, [Row(Node(Level.DISTRICT, pk, name), _sum(f)) for pk, (name, f) in groups.items()]
    return ALL, _held_rows(user, schools, figures)


def _held_rows(user, schools: list[dict], figures: dict[int, Figures]) -> list[Row]:
    """A view over several nodes: a row per city for a superuser, else a row per node the user holds."""
    scope = scoping.scope_for(user)
    if scope.unrestricted:
        held = {(Level.CITY, s["district__city_id"]) for s in schools}
    else:
        held = {(level, pk) for level, ids in scope.nodes(DASHBOARD_ROLES).items() for pk in ids}
    key = {Level.CITY: "district__city_id", Level.DISTRICT: "district_id", Level.SCHOOL: "pk"}
    rows = []
    for level, pk in sorted(held):
        inside = [s for s in schools if s[key[level]] == pk]
        if not inside:
            continue
        first = inside[0]
        name = {Level.CITY: first["district__city__name"], Level.DISTRICT: first["district__name"],
                Level.SCHOOL: _school_label(first["name"], first["campus"])}[level]  # fmt: skip
        rows.append(Row(Node(level, pk, name), _sum([figures.get(s["pk"]) for s in inside])))
    return rows


def _sum(parts: Iterable[Figures | None]) -> Figures:
    total = Figures()
    for part in parts:
        if part is not None:
            total.add(part)
    return total


def case_dashboard(user, params, now: datetime | None = None) -> Dashboard:
    """The dashboard of the node in `params` (the user's own by default) for the month in `params` (this month).

    Access: dashboard_node (a dashboard role over the node, Http404 otherwise); the figures count dashboard_cases.
    Queries: a constant dozen whatever the number of cases, schools or tasks. Audit: the caller logs the view.
    """
    now = now or timezone.now()
    node, crumbs = dashboard_node(user, params)
    month = month_of(now)
    if params.get("month"):
        month = parse_month(params.get("month"))
        if month is None:
            raise Http404
    schools = _schools_in(user, node)
    figures = _per_school(user, node, month, now)
    caseload = _caseload(user, node, schools, figures)
    by_step, by_person = _overdue_breakdowns(user, node, now)
    row_level, rows = _rows(user, node, schools, figures)
    from workflows.signals import signal_counts

    signals = signal_counts(dashboard_signals(user, node), now)
    known = {s["pk"] for s in schools}
    total = _sum(f for pk, f in figures.items() if pk in known)
    return Dashboard(
        node=node, crumbs=crumbs, month=month, now=now, total=total, rows=rows, row_level=row_level,
        overdue_by_step=by_step, overdue_by_person=by_person[:PERSON_ROWS], overdue_people=len(by_person),
        caseload=caseload if node.level == Level.SCHOOL else caseload[:PERSON_ROWS], psychologists=len(caseload),
        signals=signals,
    )  # fmt: skip
