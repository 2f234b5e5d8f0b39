"""Filters of the case list: school, tier, status and waiting step, each school offered only if the user's scope
reaches it; the filters the case dashboards link to (workflows.dashboards), so that a dashboard's number and its list
agree; and the tier and step filters of the task lists (inbox, queue).

May import: roster, screening, cases.
"""

import django_filters
from django import forms
from django.core.validators import RegexValidator
from django.db.models import Exists, OuterRef
from django.utils.translation import gettext_lazy as _
from viewflow.workflow.models import Task

from cases.models import Case, CaseStatus
from roster import scoping
from roster.models import City, District, School, User
from roster.roles import Role
from screening.definitions import RiskTier
from workflows import dashboards
from workflows.flows import CaseFlow, CaseTask

ACTIVE_TASK = ("NEW", "ASSIGNED", "STARTED")  # viewflow's STATUS of a waiting task (workflows.selectors.ACTIVE)


def _steps() -> list[tuple[str, str]]:
    """The flow's human steps, by node name, in the flow's order."""
    return [(node.name, node.task_title) for node in CaseFlow.instance.nodes() if isinstance(node, CaseTask)]


def _step_node(name: str):
    return next((node for node in CaseFlow.instance.nodes() if node.name == name), None)


def _schools(request):
    # The choices are scoped like the rows: a district auditor is offered the district's schools, a teacher one.
    if request is None:
        return School.objects.none()
    return scoping.visible(request.user, School).order_by("code")


def _districts(request):
    if request is None:
        return District.objects.none()
    return scoping.visible(request.user, District).order_by("division_code")


def _cities(request):
    if request is None:
        return City.objects.none()
    return scoping.visible(request.user, City).order_by("division_code")


def _psychologists(request):
    # The psychology teachers of the schools the user sees (a forged id is not a choice, so the filter is invalid).
    if request is None:
        return User.objects.none()
    schools = scoping.visible(request.user, School).values("pk")
    return User.objects.filter(
        role_assignments__role=Role.PSYCHOLOGY_TEACHER, role_assignments__school__in=schools
    ).distinct().order_by("username")  # fmt: skip


class MonthFilter(django_filters.CharFilter):
    """A calendar month, "YYYY-MM" (in settings.TIME_ZONE), matched by `rule(month)` → Q (workflows.dashboards)."""

    field_class = forms.CharField

    def __init__(self, *args, rule, **kwargs):
        kwargs.setdefault("validators", [RegexValidator(r"^\d{4}-\d{2}$")])
        super().__init__(*args, **kwargs)
        self.rule = rule

    def filter(self, qs, value):
        if not value:
            return qs
        month = dashboards.parse_month(value)
        return qs.filter(self.rule(month)) if month is not None else qs.none()


class CaseFilter(django_filters.FilterSet):
    city = django_filters.ModelChoiceFilter(label=_("City"), queryset=_cities, field_name="school__district__city")
    district = django_filters.ModelChoiceFilter(label=_("District"), queryset=_districts, field_name="school__district")
    school = django_filters.ModelChoiceFilter(label=_("School"), queryset=_schools)
    tier = django_filters.ChoiceFilter(label=_("Tier"), choices=RiskTier.choices)
    status = django_filters.ChoiceFilter(label=_("Status"), choices=CaseStatus.choices)
    active = django_filters.BooleanFilter(label=_("Open (or closure proposed)"), method="filter_active")
    opened_in = MonthFilter(label=_("Opened in (YYYY-MM)"), rule=lambda m: dashboards.in_month_q("opened_at", m))
    closed_in = MonthFilter(label=_("Closed in (YYYY-MM)"), rule=dashboards.closed_in_q)
    first_interview_in = MonthFilter(label=_("First interview in (YYYY-MM)"), rule=dashboards.first_interview_in_q)
    psychologist = django_filters.ModelChoiceFilter(
        label=_("Psychology teacher"), queryset=_psychologists, method="filter_psychologist"
    )
    step = django_filters.ChoiceFilter(label=_("Waiting at step"), choices=_steps, method="filter_step")

    class Meta:
        model = Case
        fields = ["city", "district", "school", "tier", "status"]

    def filter_active(self, queryset, name, value):
        if value is None:
            return queryset
        return queryset.filter(dashboards.open_q()) if value else queryset.exclude(dashboards.open_q())

    def filter_psychologist(self, queryset, name, value):
        # The case's current psychology-teacher seat: the caseload a dashboard counts.
        return queryset.filter(dashboards.psychologist_seat_q(value.pk)) if value else queryset

    def filter_step(self, queryset, name, value):
        # Cases with a task of that step waiting (a correlated EXISTS on the task's process).
        node = _step_node(value)
        if node is None:
            return queryset.none()
        waiting = Task.objects.filter(process__caseprocess__case=OuterRef("pk"), flow_task=node,
                                      status__in=ACTIVE_TASK)  # fmt: skip
        return queryset.filter(Exists(waiting))


class TaskFilter(django_filters.FilterSet):
    """The task lists' filters: the case's tier and the step (a node of the case flow)."""

    tier = django_filters.ChoiceFilter(
        label=_("Tier"), choices=RiskTier.choices, field_name="process__caseprocess__case__tier"
    )
    step = django_filters.ChoiceFilter(label=_("Step"), choices=_steps, method="filter_step")

    class Meta:
        model = Task
        fields = ["tier", "step"]

    def filter_step(self, queryset, name, value):
        node = _step_node(value)
        return queryset.filter(flow_task=node) if node is not None else queryset.none()
