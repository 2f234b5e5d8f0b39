"""The case dashboards under /reports/dashboard/ (app "reports"; see workflows/urls_reports.py) and the list of
overdue tasks their numbers link to.

Thin views: which cases and tasks count is workflows.dashboards' (built on roster.scoping); this module turns the
figures into cells, each linked to the scoped list behind it (the case list with its filters, the overdue list, the
referral ledger), and logs the reading (roster.audit). A user without a dashboard role, or asking for a node outside
their scope, gets a logged 404: missing and forbidden look the same.
May import: roster, screening, cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from cases import access as case_access
from cases.models import Case
from roster import audit
from roster.masking import mask_name
from roster.models import AccessAction
from roster.roles import Level
from screening.definitions import RiskTier
from workflows import dashboards
from workflows.flows import CaseFlow

AUDIT_TYPE = "workflows.dashboard"
OVERDUE_PAGE_SIZE = 50


@dataclass(frozen=True)
class Cell:
    kind: str  # what the number is: a tier, "open", "new", "closed", "interview", "closure", "overdue", …
    value: object  # a number, a median in days, or None (shown "—")
    url: str = ""


@dataclass(frozen=True)
class RowView:
    label: str
    url: str  # the row's own dashboard
    cells: list[Cell]


def _case_list(node: dashboards.Node, **filters) -> str:
    return f"{CaseFlow.instance.reverse('process_list')}?{urlencode({**node.params, **filters})}"


def _overdue_list(node: dashboards.Node, **filters) -> str:
    return f"{reverse('reports:dashboard_overdue')}?{urlencode({**node.params, **filters})}"


def _referral_ledger(node: dashboards.Node) -> str:
    # The ledger filters by district and school; a city's ledger is the city centre's whole scope.
    params = node.params if node.level in (Level.SCHOOL, Level.DISTRICT) else {}
    return f"{reverse('reports:ledger_referrals')}?{urlencode({**params, 'stage': 'awaiting_feedback'})}"


def _cells(node: dashboards.Node, figures: dashboards.Figures, month: dashboards.Month) -> list[Cell]:
    """The numbers of a row, in the order of HEADERS, each with its list."""
    tiers = [Cell(tier, n, _case_list(node, tier=tier, active="true")) for tier, n in figures.tier_cells]
    return [
        *tiers,
        Cell("open", figures.open_total, _case_list(node, active="true")),
        Cell("new", figures.new, _case_list(node, opened_in=month.key)),
        Cell("closed", figures.closed, _case_list(node, closed_in=month.key)),
        Cell("interview", figures.median_interview_days, _case_list(node, first_interview_in=month.key)),
        Cell("closure", figures.median_closure_days, _case_list(node, closed_in=month.key)),
        Cell("overdue", figures.overdue, _overdue_list(node)),
        Cell("referrals", figures.referrals_pending, _referral_ledger(node)),
        Cell("caseload", figures.caseload_average, _case_list(node, active="true")),
    ]


def _headers():
    return [
        *[(t, RiskTier(t).label) for t in dashboards.TIERS],
        ("", _("Open")), ("", _("New this month")), ("", _("Closed this month")),
        ("", _("Median days to first interview")), ("", _("Median days to closure")),
        ("", _("Overdue tasks")), ("", _("Referrals awaiting feedback")),
        ("", _("Open cases per psychology teacher")),
    ]  # fmt: skip


def _dashboard_url(params: dict) -> str:
    return f"{reverse('reports:dashboard')}?{urlencode(params)}" if params else reverse("reports:dashboard")


def _refused(request):
    raise case_access.refused(AUDIT_TYPE)


@never_cache
@login_required
@require_GET
def dashboard(request):
    """A school's, district's or city's case figures; ?school= / ?district= / ?city= to drill, ?month=YYYY-MM."""
    if not dashboards.has_dashboard(request.user):
        _refused(request)
    try:
        board = dashboards.case_dashboard(request.user, request.GET)
    except Http404:
        _refused(request)
    audit.record(AccessAction.VIEW, object_type=AUDIT_TYPE, object_ids=[f"{board.node.level}:{board.node.pk or ''}"])
    node, month = board.node, board.month
    rows = [
        RowView(
            row.node.name, _dashboard_url({**row.node.params, "month": month.key}), _cells(row.node, row.figures, month)
        )
        for row in board.rows
    ]
    month_param = lambda m: _dashboard_url({**node.params, "month": m.key})  # noqa: E731
    context = {
        "board": board, "headers": _headers(), "rows": rows, "total": _cells(node, board.total, month),
        "row_header": {Level.SCHOOL: _("School"), Level.DISTRICT: _("District")}.get(board.row_level, _("Scope")),
        "crumbs": [(c.label, f"{reverse('reports:dashboard')}?{c.query}" if c.query else "") for c in board.crumbs],
        "previous_url": month_param(month.previous),
        "next_url": "" if board.is_current_month else month_param(month.next),
        "overdue_url": _overdue_list(node),
        "overdue_by_step": [(line, _overdue_list(node, **_query(line.query))) for line in board.overdue_by_step],
        "overdue_by_person": [(line, _overdue_list(node, **_query(line.query))) for line in board.overdue_by_person],
        "caseload": [(line, _case_list(node, active="true", **_query(line.query))) for line in board.caseload],
        "generated_at": timezone.localtime(board.now),
    }  # fmt: skip
    return render(request, "reports/dashboard.html", context)


def _query(query: str) -> dict:
    return dict(part.split("=", 1) for part in query.split("&") if part)


@dataclass(frozen=True)
class OverdueRow:
    case: str
    case_url: str
    school: str
    student: str
    step: str
    owner: str
    due: object
    days_late: int


@never_cache
@login_required
@require_GET
def overdue(request):
    """The overdue tasks behind a dashboard's numbers (?school=/district=/city=, ?step=<node>, ?owner=<id>|queue),
    most overdue first, names masked; each row links to its case."""
    if not dashboards.has_dashboard(request.user):
        _refused(request)
    try:
        node, crumbs = dashboards.dashboard_node(request.user, request.GET)
    except Http404:
        _refused(request)
    now = timezone.now()
    tasks = dashboards.overdue_tasks(request.user, node, now)
    step, owner = request.GET.get("step", ""), request.GET.get("owner", "")
    if step:
        node_of = {n.name: n for n in CaseFlow.instance.nodes()}.get(step)
        if node_of is None:
            raise Http404
        tasks = tasks.filter(flow_task=node_of)
    if owner == "queue":
        tasks = tasks.filter(owner__isnull=True)
    elif owner:
        if not owner.isdigit():
            raise Http404
        tasks = tasks.filter(owner_id=int(owner))
    case_path = "process__caseprocess__case"
    tasks = tasks.select_related(f"{case_path}__student__school_class", f"{case_path}__school", "owner")
    tasks = tasks.order_by("due_at", "pk")
    page = Paginator(tasks, OVERDUE_PAGE_SIZE).get_page(request.GET.get("page"))
    rows = []
    for task in page.object_list:
        case: Case = task.process.caseprocess.case
        due = task.due_at
        rows.append(OverdueRow(
            case=str(case), case_url=CaseFlow.instance.reverse("process_detail", args=[task.process_id]),
            school=case.school.name, student=f"{mask_name(case.student.name)} · {case.student.school_class}",
            step=str(task.flow_task.task_title or task.flow_task.name),
            owner=(task.owner.name or task.owner.username) if task.owner else str(_("Nobody yet (school queue)")),
            due=timezone.localtime(due) if due else None, days_late=(now - due).days if due else 0,
        ))  # fmt: skip
    audit.record(AccessAction.LIST, object_type=audit.label(Case),
                 object_ids=[t.process.caseprocess.case_id for t in page.object_list])  # fmt: skip
    context = {
        "node": node, "rows": rows, "page": page, "dashboard_url": _dashboard_url(node.params),
        "crumbs": [c.label for c in crumbs] or [node.name], "step": step, "owner": owner,
    }  # fmt: skip
    return render(request, "reports/dashboard_overdue.html", context)
