"""The case pages of the task frontend: Viewflow's Material site (config.urls mounts it at /work/) with our scoped
lists and our step pages.

Every page reads through workflows.selectors / roster.scoping: a task or case out of the user's scope is missing
(404), never forbidden, so a URL tells nothing about another school. A step page runs its step through
workflows.services.step_done; a task done or taken by someone meanwhile, or a rule of the step refused, answers with a
clear message and changes nothing.
May import: roster, screening, cases.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import F
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST
from viewflow.utils import viewprop
from viewflow.views import ListModelView
from viewflow.workflow.flow import views as flow_views
from viewflow.workflow.flow.views import mixins
from viewflow.workflow.models import Task
from viewflow.workflow.status import STATUS

from cases import access as case_access
from cases import services as case_services
from cases.access import CaseAction
from cases.models import Case, CaseStatus, Decision, Referral, SupportStatus
from roster import audit, scoping
from roster.masking import mask_name
from roster.models import AccessAction
from roster.search_privacy import PostedSearchMixin
from roster.spreadsheets import XLSX_TYPE, xlsx_bytes
from workflows import case_page, chart, forms, selectors, services
from workflows.filters import CaseFilter, TaskFilter
from workflows.flows import CaseFlow
from workflows.models import CaseProcess, TaskClock

OVERDUE = '<strong class="case-overdue" style="color:#c62828">{} · {}</strong>'


def _flow_url(name: str, *args) -> str:
    return CaseFlow.instance.reverse(name, args=args)


def _case_url(task_or_process) -> str:
    return _flow_url("process_detail", getattr(task_or_process, "process_id", None) or task_or_process.pk)


def _task_url(task: Task, name: str = "index") -> str:
    return task.flow_task.reverse(name, args=[task.process_id, task.pk])


def _writing(request) -> bool:
    """A POST (anything but a read) asks for a change: refused, it is logged as a refused change."""
    return request.method not in ("GET", "HEAD")


def _visible_task(request, process_pk: int, task_pk: int) -> Task:
    """The task of the URL, if it is a step of a case the user may see; 404 otherwise (missing or out of scope).
    Every call reads the case (cases.access): logged as a view of it, or as a refusal."""
    task = (
        Task.objects.select_related("process", "owner")
        .filter(pk=task_pk, process_id=process_pk, process__flow_class=CaseFlow)
        .first()
    )  # fmt: skip
    if task is None or f"/{task.flow_task.name}/" not in request.path:
        raise case_access.refused("viewflow.task", task_pk, writing=_writing(request))
    case_access.access_case_by_id(request.user, task.process.coerced.case_id, writing=_writing(request))
    return task


def student_label(user, case) -> str:
    student = case.student
    name = student.name if case_access.names_shown(user, case) else mask_name(student.name)
    return f"{name} · {student.school_class}"


def tier_chip(tier: str, label: str):
    # The badge colours are the palette's (static/css/palette.css, loaded by the task frontend too), which pairs each
    # tier's background with a text colour of at least 4.5:1; the task pages do not load app.css's .tier rules.
    return format_html(
        '<span class="case-tier tier-{0}" style="background:var(--tier-{0},#616e7c);color:var(--on-tier-{0},#fff);'
        'border-radius:10px;padding:1px 8px">{1}</span>',
        tier, label,
    )  # fmt: skip


def alert_chip():
    return format_html(
        '<span class="case-alert" style="background:#b71c1c;color:#fff;border-radius:10px;padding:1px 8px">{}</span>',
        _("Crisis alert"),
    )  # fmt: skip


# --- Step pages ---------------------------------------------------------------------------------------------------


@login_required
def task_open(request, process_pk: int, task_pk: int):
    """A task's link in a list: its form when it is the user's to do, the claim page when they may take it, the
    case page otherwise."""
    task = _visible_task(request, process_pk, task_pk)
    if task.status == STATUS.ASSIGNED and task.flow_task.can_execute(request.user, task):
        return HttpResponseRedirect(_task_url(task, "execute"))
    if task.status == STATUS.NEW and task.flow_task.can_assign(request.user, task):
        return HttpResponseRedirect(_task_url(task, "assign"))
    return HttpResponseRedirect(_case_url(task))


@login_required
def machine_step_page(request, process_pk: int, task_pk: int):
    """Any page of a step the machine takes (a decision, a timer, a join): the case page, or a logged 404. Nothing
    is done on these pages, whatever the method."""
    task = _visible_task(request, process_pk, task_pk)
    return HttpResponseRedirect(_case_url(task))


def _not_doable(request, task: Task):
    """Why the user cannot do this task now, as a message and a redirect; None when they can."""
    if task.status in (STATUS.DONE, STATUS.CANCELED):
        messages.info(request, str(services.TaskUnavailable()))
        return HttpResponseRedirect(_case_url(task))
    if task.status == STATUS.NEW and task.flow_task.can_assign(request.user, task):
        return HttpResponseRedirect(_task_url(task, "assign"))
    if task.status != STATUS.ASSIGNED or not task.flow_task.can_execute(request.user, task):
        messages.error(request, _("This task is not yours to do."))
        return HttpResponseRedirect(_case_url(task))
    return None


@login_required
def task_execute(request, process_pk: int, task_pk: int):
    task = _visible_task(request, process_pk, task_pk)
    case = task.process.coerced.case
    refused = _not_doable(request, task)
    if refused:
        if _writing(request):
            case_access.change_refused(request.user, case)
        return refused
    form = forms.FORMS[task.flow_task.name](request.POST or None, case=case, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            with case_access.change_logged(request.user, case):
                services.step_done(request.user, task, **form.step_fields())
        except ValidationError as error:
            form.add_error(None, error)
        except (services.TaskUnavailable, services.CaseBusy, PermissionDenied) as error:
            messages.error(request, str(error))
            return HttpResponseRedirect(_case_url(task))
        else:
            messages.success(
                request, _("Done: %(step)s for case %(case)s.") % {"step": task.flow_task.task_title, "case": case}
            )
            target = _case_url(task) if "_case" in request.POST else CaseFlow.instance.reverse("inbox")
            return HttpResponseRedirect(target)
    context = {
        "task": task, "case": case, "form": form, "student": student_label(request.user, case),
        "heading": task.flow_task.task_title,
        "tier": tier_chip(case.tier, case.get_tier_display()), "pending": _pending_request(case, task),
        "case_url": _case_url(task), "release_url": _task_url(task, "unassign"),
        "due": _due(task), "now": timezone.now(),
    }  # fmt: skip
    return TemplateResponse(request, "workflows/task_execute.html", context)


def _pending_request(case, task: Task):
    """What an approval decides: the pending referral, tier change or closure, shown above the decision."""
    requests = {
        "approve_referral": case.referrals,
        "approve_tier_change": case.tier_changes,
        "approve_closure": case.closures,
        "approve_false_positive": case.closures,
    }.get(task.flow_task.name)
    return requests.filter(decision=Decision.PENDING).first() if requests is not None else None


def _due(task: Task):
    """The step's due time: the lists' `due` annotation, else the task's clock (workflows.deadlines)."""
    if "due" in task.__dict__:
        return task.due
    return TaskClock.objects.filter(task_id=task.pk).values_list("due_at", flat=True).first()


@login_required
def task_claim(request, process_pk: int, task_pk: int):
    """Take a task from the school's queue (a confirmation page, then POST)."""
    task = _visible_task(request, process_pk, task_pk)
    if request.method == "POST":
        try:
            with case_access.change_logged(request.user, task.process.coerced.case):
                services.task_claim(request.user, task)
        except (services.TaskUnavailable, services.CaseBusy, PermissionDenied) as error:
            messages.error(request, str(error))
            return HttpResponseRedirect(CaseFlow.instance.reverse("queue"))
        cache.delete(queue_count_key(request.user))
        messages.success(request, _("The task is yours now: it is in your inbox."))
        return HttpResponseRedirect(_task_url(task, "execute"))
    if task.status != STATUS.NEW:
        return _not_doable(request, task) or HttpResponseRedirect(_task_url(task, "execute"))
    if not task.flow_task.can_assign(request.user, task):
        messages.error(request, _("This task is not yours to take."))
        return HttpResponseRedirect(_case_url(task))
    case = task.process.coerced.case
    context = {
        "task": task, "case": case, "student": student_label(request.user, case), "heading": task.flow_task.task_title,
        "tier": tier_chip(case.tier, case.get_tier_display()), "case_url": _case_url(task), "due": _due(task),
        "now": timezone.now(),
    }  # fmt: skip
    return TemplateResponse(request, "workflows/task_claim.html", context)


@login_required
@require_POST
def task_release(request, process_pk: int, task_pk: int):
    """Put a task one has taken back in the school's queue."""
    task = _visible_task(request, process_pk, task_pk)
    try:
        with case_access.change_logged(request.user, task.process.coerced.case):
            services.task_release(request.user, task)
    except (services.TaskUnavailable, PermissionDenied) as error:
        messages.error(request, str(error))
        return HttpResponseRedirect(_case_url(task))
    cache.delete(queue_count_key(request.user))
    messages.success(request, _("The task is back in the school's queue."))
    return HttpResponseRedirect(CaseFlow.instance.reverse("inbox"))


# --- Lists (the stock list pages with our scoped querysets and columns) -------------------------------------------

# A list counts at most this many rows: a city's queue holds tens of thousands of tasks, and counting them all on every
# page (the pager and the menu) would cost more than the page itself. Nobody pages that far; beyond it shows "1000+".
COUNT_CAP = 1000


class CappedPaginator(Paginator):
    @cached_property
    def count(self) -> int:
        return self.object_list.order_by()[: COUNT_CAP + 1].count()

    @property
    def shown_count(self) -> str:
        return f"{COUNT_CAP}+" if self.count > COUNT_CAP else str(self.count)


class CappedCount:
    """A menu's number of tasks: the rows counted up to 99, shown "99+" beyond. With `cache_key`, the number is kept
    for QUEUE_COUNT_SECONDS: the school queue's count is shown on every page, and a city's queue is costly to count;
    it may lag a claim by a few seconds, the queue page itself never does."""

    MENU_CAP = 99

    def __init__(self, queryset, cache_key: str = ""):
        self.queryset, self.cache_key = queryset, cache_key

    @cached_property
    def count(self) -> str:
        if self.cache_key:
            return cache.get_or_set(self.cache_key, self._count, QUEUE_COUNT_SECONDS)
        return self._count()

    def _count(self) -> str:
        found = self.queryset.order_by()[: self.MENU_CAP + 1].count()
        return f"{self.MENU_CAP}+" if found > self.MENU_CAP else str(found)


QUEUE_COUNT_SECONDS = 20


def queue_count_key(user) -> str:
    return f"workflows:queue-count:{user.pk}"


class _LoggedList:
    """A list page whose rows name students: the cases shown are logged (roster.audit) before the page renders."""

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        rows = context.get("page_obj") or context.get("object_list") or []
        audit.record(
            AccessAction.LIST, object_type=audit.label(Case), object_ids=[self.case_id_of(row) for row in rows]
        )
        return context

    def case_id_of(self, row) -> int:
        return row.process.caseprocess.case_id


class _TaskColumns(_LoggedList):
    """Columns of a task list row: the case's student (masked), tier colour, step and due date; overdue marked."""

    paginator_class = CappedPaginator
    # The case's tier and the step; the stock filter embeds every process of the queue in the page (#505 notes).
    filterset_class = TaskFilter
    columns = ("task_link", "student", "tier", "step", "due_date", "created")
    object_link_columns = ()

    def is_strict_filter(self):
        return self.filterset.form.is_bound  # a forged choice lists nothing rather than everything

    def task_link(self, task):
        return format_html('<a href="{}">#{}</a>', _task_url(task), task.pk)

    task_link.short_description = gettext_lazy("Task")

    def student(self, task):
        case = task.process.caseprocess.case
        return mask_name(case.student.name) + f" · {case.student.school_class}"

    student.short_description = gettext_lazy("Student")

    def tier(self, task):
        case = task.process.caseprocess.case
        if getattr(task, "urgency", None) == 0:  # an open crisis alert on the case (workflows.selectors.urgency)
            return format_html("{} {}", alert_chip(), tier_chip(case.tier, case.get_tier_display()))
        return tier_chip(case.tier, case.get_tier_display())

    tier.short_description = gettext_lazy("Tier")

    def step(self, task):
        return format_html('<a href="{}">{}</a>', _task_url(task), task.flow_task.task_title)

    step.short_description = gettext_lazy("Step")

    def due_date(self, task):
        due = getattr(task, "clock_due", None) or _due(task)
        if due is None:
            return ""
        shown = timezone.localtime(due).strftime("%m-%d %H:%M")
        if due < timezone.now() and task.status != STATUS.DONE:
            return format_html(
                '<strong class="case-overdue" style="color:#c62828">{} · {}</strong>', _("Overdue"), shown
            )
        return shown

    due_date.short_description = gettext_lazy("Due")

    def created(self, task):
        return timezone.localtime(task.created).strftime("%Y-%m-%d %H:%M")

    created.short_description = gettext_lazy("Created")


class CaseInboxView(_TaskColumns, flow_views.FlowInboxListView):
    title = gettext_lazy("My tasks")

    @viewprop
    def queryset(self):
        return selectors.inbox(self.request.user)


class CaseQueueView(_TaskColumns, flow_views.FlowQueueListView):
    title = gettext_lazy("My school's queue")

    @viewprop
    def queryset(self):
        return selectors.queue(self.request.user)


class CaseArchiveView(_TaskColumns, flow_views.FlowArchiveListView):
    columns = ("task_link", "student", "tier", "step", "finished_at")

    def finished_at(self, task):
        return timezone.localtime(task.finished).strftime("%Y-%m-%d %H:%M") if task.finished else ""

    finished_at.short_description = gettext_lazy("Done at")

    @viewprop
    def queryset(self):
        return selectors.archive(self.request.user)


class CaseTaskListView(_TaskColumns, flow_views.DashboardTaskListView):
    columns = ("task_link", "student", "tier", "step", "status_label", "owner_label", "due_date")

    def status_label(self, task):
        return STATUS(task.status).label

    status_label.short_description = gettext_lazy("Status")

    def owner_label(self, task):
        return selectors.person(task.owner)

    owner_label.short_description = gettext_lazy("Assigned to")

    @viewprop
    def queryset(self):
        return selectors.case_tasks(self.request.user)


class CaseListView(
    PostedSearchMixin, _LoggedList, mixins.StoreRequestPathMixin, mixins.ProcessViewTemplateNames, ListModelView
):
    """The cases the user may see, risk first (the stock process list joins every task of every process). The
    search by student number is posted, never in the URL (roster.search_privacy)."""

    def case_id_of(self, row) -> int:
        return row.pk

    flow_class = None
    template_filename = "process_list.html"
    title = gettext_lazy("Cases")
    paginator_class = CappedPaginator
    search_fields = ["=student__student_no"]  # a student number, exactly: the list shows names masked
    columns = ("case_link", "student", "tier", "case_status", "opened")
    object_link_columns = ()
    filterset_class = CaseFilter

    # A refused choice (another district's school, a forged id) or a malformed value lists nothing: ignoring it would
    # list more than the link asked for (a dashboard's number points here).
    def is_strict_filter(self):
        return self.filterset.form.is_bound

    @property
    def model(self):
        return Case

    def get_columns(self):
        # Someone who sees more than one school (a district auditor, a centre) needs to know whose case it is.
        schools = scoping.scope_for(self.request.user).school_ids()  # the scope is read once per request
        if schools is None or len(schools) > 1:
            return ("case_link", "school_name", "student", "tier", "case_status", "opened")
        return self.columns

    def school_name(self, case):
        return case.school.name

    school_name.short_description = gettext_lazy("School")

    def case_link(self, case):
        if case.process_pk is None:  # its process is being started by the task worker
            return str(case)
        return format_html('<a href="{}">{}</a>', _flow_url("process_detail", case.process_pk), case)

    case_link.short_description = gettext_lazy("Case")

    def student(self, case):
        return mask_name(case.student.name) + f" · {case.student.school_class}"

    student.short_description = gettext_lazy("Student")

    def tier(self, case):
        if getattr(case, "urgency", None) == 0:  # an open crisis alert (workflows.selectors.urgency)
            return format_html("{} {}", alert_chip(), tier_chip(case.tier, case.get_tier_display()))
        return tier_chip(case.tier, case.get_tier_display())

    tier.short_description = gettext_lazy("Tier")

    def case_status(self, case):
        return case.get_status_display()

    case_status.short_description = gettext_lazy("Status")

    def opened(self, case):
        return timezone.localtime(case.opened_at).strftime("%Y-%m-%d")

    opened.short_description = gettext_lazy("Opened")

    @viewprop
    def queryset(self):
        return selectors.case_list(self.request.user)


# --- The case page ------------------------------------------------------------------------------------------------


@login_required
def case_detail(request, process_pk: int, **kwargs):
    """The case: who, tier, team, the open steps and the timeline (steps and record history), and the chart."""
    process = _visible_process(request, process_pk)
    case = process.case
    open_tasks = (
        Task.objects.filter(process__caseprocess__case=case, flow_task_type="HUMAN")
        .filter(status__in=selectors.ACTIVE)
        .select_related("owner")
        .annotate(due=F("clock__due_at"))
    )  # fmt: skip

    def may(action: str) -> bool:
        return case_access.may(request.user, case, action)

    reads_student = case_access.reads_student(request.user, case.student_id)
    # A homeroom teacher sees no tier, result or clinical record; the student's archive is for clinical readers.
    sections = case_page.case_page(request.user, case, reads_student=reads_student)
    from workflows.views_transfer import transfer_panel  # it imports this module

    transfer = transfer_panel(request.user, case, process)  # 档案移交: the transfer, read-only banner, notes release
    context = {
        "process": process, "case": case, "student": student_label(request.user, case),
        "tier": tier_chip(case.tier, case.get_tier_display()) if sections.clinical else "",
        "page": sections, "transfer": transfer,
        "team": case.team.filter(left_at__isnull=True).select_related("user"),
        # The school a case left reads it as it was: the steps now open are the receiving school's, not its own.
        "open_tasks": [] if transfer.read_until else [(t, _due(t), _task_url(t), selectors.person(t.owner))
                                                      for t in open_tasks],
        "steps_elsewhere": bool(transfer.read_until),
        "timeline": selectors.case_timeline(request.user, case, tiers=sections.clinical, until=transfer.read_until),
        "interview_notes": selectors.interview_notes(request.user, case),
        "restricted_label": selectors.RESTRICTED,
        "chart_url": _flow_url("process_chart", process.pk),
        "review_url": _flow_url("case_review", process.pk) if may(CaseAction.REVIEW) else "",
        "student_report_url": reverse("reports:student_report", args=[case.student_id]) if reads_student else "",
        "now": timezone.now(),
        "reopen_url": _flow_url("case_reopen", process.pk)
        if case.status == CaseStatus.CLOSED and may(CaseAction.REOPEN) else "",
        "parent_contact_url": _flow_url("parent_contact_extra", process.pk)
        if case.active and may(CaseAction.PARENT_CONTACT) else "",
        # 申请区县支持: while no request is open.
        "support_url": _flow_url("support_request", process.pk) if case.active and may(CaseAction.REQUEST_SUPPORT)
        and not case.support_requests.exclude(status=SupportStatus.ENDED).exists() else "",
        "coordination_url": _flow_url("coordination_add", process.pk)
        if case.active and may(CaseAction.COORDINATE) else "",
        "awaiting_feedback": [
            (referral, _flow_url("referral_feedback", process.pk, referral.pk))
            for referral in selectors.readable(request.user, Referral).filter(
                case=case, decision=Decision.APPROVED, referred_on__isnull=False, feedback=""
            )
        ],
    }  # fmt: skip
    return TemplateResponse(request, "workflows/case_detail.html", context)


class CaseChartView(flow_views.FlowChartView):
    """The flow chart; with a process, only for someone who may see its case."""

    def dispatch(self, request, *args, **kwargs):
        process_pk = kwargs.get("process_pk")
        if process_pk is not None and not selectors.case_processes(request.user).filter(pk=process_pk).exists():
            raise case_access.refused(audit.label(CaseProcess), process_pk)
        return super().dispatch(request, *args, **kwargs)

    def get(self, request, *args, **kwargs):
        """The chart labelled in the reader's language, large (workflows.chart); viewflow's own for BPMN."""
        if request.GET.get("format") == "bpmn":
            return super().get(request, *args, **kwargs)
        return HttpResponse(chart.chart_svg(self.flow_class, kwargs.get("process_pk")), content_type="image/svg+xml")


# --- Actions on cases (not steps): refer a student, reopen, referral feedback, hand over ----------------------------


def _form_page(request, template: str, form, **context):
    return TemplateResponse(request, template, {"form": form, "now": timezone.now(), **context})


@login_required
def referral_by_staff(request):
    """The old "refer a student" door (issue 20): a referral is now a concern (关注上报) in the school's signal queue,
    triaged there; this address leads to the concern page."""
    student = request.GET.get("student")
    target = reverse("care:concern_new")
    return HttpResponseRedirect(f"{target}?{urlencode({'student': student})}" if student else target)


def _visible_process(request, process_pk: int, action: str = CaseAction.READ, **logged) -> CaseProcess:
    """The process of the URL when the user may do `action` on its case (cases.access): the reading logged, or the
    refusal, answered as missing (404)."""
    process = CaseProcess.objects.filter(pk=process_pk, flow_class=CaseFlow).first()
    if process is None:
        raise case_access.refused(audit.label(CaseProcess), process_pk, writing=_writing(request))
    process.case = case_access.access_case_by_id(
        request.user, process.case_id, action=action, writing=_writing(request), **logged
    )
    return process


@login_required
@require_GET
def case_review(request, process_pk: int):
    """The district auditor's review of one case: every change (field, old → new, who, when, reason), every step
    and every access (who read it, including this reading), filtered by person and date; XLSX with ?format=xlsx.
    Reading it is logged like any reading of the case (an export as an export)."""
    export = request.GET.get("format") == "xlsx"
    process = _visible_process(
        request, process_pk, CaseAction.REVIEW, logged_as=AccessAction.EXPORT if export else AccessAction.VIEW
    )
    case = process.case
    form = forms.ReviewFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    entries = selectors.case_review(
        request.user, case, person=filters.get("person") or "", since=filters.get("since"), until=filters.get("until")
    )  # fmt: skip
    if export:
        header = [str(_("When")), str(_("Who")), str(_("Kind")), str(_("What")), str(_("Detail")), str(_("Reason"))]
        rows = [[timezone.localtime(e.when).strftime("%Y-%m-%d %H:%M:%S"), e.who or str(_("System")), e.kind_label,
                 e.what, e.detail, e.reason]
                for e in entries]  # fmt: skip
        response = HttpResponse(xlsx_bytes([(f"case-{case.pk}", header, rows)]), content_type=XLSX_TYPE)
        response["Content-Disposition"] = f'attachment; filename="case-{case.pk}-review.xlsx"'
        return response
    return _form_page(
        request, "workflows/case_review.html", form, heading=_("Audit review"), case=case, entries=entries,
        case_url=_case_url(process), student=student_label(request.user, case),
        export_url=f"?{request.GET.urlencode()}&format=xlsx" if request.GET else "?format=xlsx",
    )  # fmt: skip


@login_required
def case_reopen(request, process_pk: int):
    process = _visible_process(request, process_pk, CaseAction.REOPEN)
    form = forms.ReopenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            with case_access.change_logged(request.user, process.case):
                new = services.case_reopen_and_start(request.user, process.case, form.cleaned_data["reason"])
        except (ValidationError, PermissionDenied) as error:
            form.add_error(None, error.messages if isinstance(error, ValidationError) else str(error))
        else:
            messages.success(request, _("The case is open again and waits for triage."))
            return HttpResponseRedirect(_case_url(new))
    return _form_page(
        request, "workflows/case_form.html", form, heading=_("Reopen the case"), case=process.case,
        case_url=_case_url(process), student=student_label(request.user, process.case),
    )  # fmt: skip


@login_required
def referral_feedback(request, process_pk: int, referral_pk: int):
    process = _visible_process(request, process_pk)
    referral = get_object_or_404(selectors.readable(request.user, Referral), pk=referral_pk, case=process.case)
    form = forms.ReferralFeedbackForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            with case_access.change_logged(request.user, process.case):
                case_services.referral_record_outcome(request.user, referral, **form.cleaned_data)
        except (ValidationError, PermissionDenied) as error:
            form.add_error(None, error.messages if isinstance(error, ValidationError) else str(error))
        else:
            messages.success(request, _("The institution's feedback is recorded."))
            return HttpResponseRedirect(_case_url(process))
    return _form_page(
        request, "workflows/case_form.html", form, heading=_("Record the institution's feedback"),
        case=process.case, case_url=_case_url(process), student=student_label(request.user, process.case),
    )  # fmt: skip


@login_required
def parent_contact_extra(request, process_pk: int):
    """A parent contact outside the flow's step: optional for yellow cases, or any later contact (the team)."""
    process = _visible_process(request, process_pk, CaseAction.PARENT_CONTACT)
    case = process.case
    form = forms.ParentContactForm(request.POST or None, case=case, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            with case_access.change_logged(request.user, case):
                case_services.parent_contact_record(request.user, case, **form.step_fields())
        except (ValidationError, PermissionDenied) as error:
            form.add_error(None, error.messages if isinstance(error, ValidationError) else str(error))
        else:
            messages.success(request, _("The parent contact is recorded."))
            return HttpResponseRedirect(_case_url(process))
    return _form_page(
        request, "workflows/case_form.html", form, heading=_("Record a parent contact"), case=case,
        case_url=_case_url(process), student=student_label(request.user, case),
    )  # fmt: skip


@login_required
def hand_over(request):
    """A principal hands a leaving colleague's team seats and open tasks at their school to a successor."""
    schools = list(selectors.schools_led_by(request.user))
    if not schools:
        raise Http404
    school = schools[0]
    form = forms.HandOverForm(request.POST or None, school=school)
    if request.method == "POST" and form.is_valid():
        try:
            moved = services.work_hand_over(
                request.user, form.cleaned_data["leaver"], form.cleaned_data["successor"], school
            )  # fmt: skip
        except (ValidationError, PermissionDenied) as error:
            form.add_error(None, error.messages if isinstance(error, ValidationError) else str(error))
        else:
            messages.success(
                request, _("Handed over: %(seats)s team seats and %(tasks)s open tasks.") % moved
            )  # fmt: skip
            return HttpResponseRedirect(CaseFlow.instance.reverse("process_list"))
    return _form_page(request, "workflows/case_form.html", form, heading=_("Hand over a colleague's cases"))
