"""What a person's task lists hold: my tasks (inbox) and my school's queue, scoped by roster.scoping, overdue first.

Viewflow's own list managers are not scoped per object (upstream #505) and match a task's permission against the
user's permissions anywhere: these are the querysets every task list uses instead. A constant number of queries
whatever the number of rows (the case, its student and class come in the same query).
May import: roster, screening, cases.
"""

from __future__ import annotations

from django.db.models import CharField, Exists, F, OuterRef, Q, QuerySet
from django.db.models.functions import Cast
from viewflow.workflow.models import Task
from viewflow.workflow.status import STATUS

from cases.models import Case, CaseTeamMember
from roster import scoping
from roster.auth_backends import role_permission
from roster.models import RoleAssignment, School
from workflows.flows import CaseFlow, IndependentView
from workflows.models import CaseProcess

ACTIVE = (STATUS.NEW, STATUS.ASSIGNED, STATUS.STARTED)


def _case_tasks(user) -> QuerySet[Task]:
    """Human tasks of case processes whose case the user may see, with what a list row shows."""
    cases = scoping.visible(user, Case).values("pk")
    processes = CaseProcess.objects.filter(case__in=cases).values("pk")
    return (
        Task.objects.filter(flow_task_type="HUMAN", process__in=processes)
        .select_related("process__caseprocess__case__student__school_class", "owner")
        .annotate(due=F("data__due"))
    )


def _overdue_first(queryset: QuerySet[Task]) -> QuerySet[Task]:
    # ISO timestamps sort as text; tasks with no deadline come after those with one.
    return queryset.order_by(F("due").asc(nulls_last=True), "created", "pk")


def inbox(user) -> QuerySet[Task]:
    """Tasks assigned to the user, on cases they may see."""
    return _overdue_first(_case_tasks(user).filter(owner=user, status__in=(STATUS.ASSIGNED, STATUS.STARTED)))


def _claimable_q(user) -> Q:
    """Unassigned tasks whose role permission the user holds over the task's school."""
    q = Q(pk__in=[])
    for role, school_id, district_id, city_id in RoleAssignment.objects.filter(user=user).values_list(
        "role", "school_id", "district_id", "city_id"
    ):
        if school_id:
            where = Q(pk=school_id)
        elif district_id:
            where = Q(district_id=district_id)
        else:
            where = Q(district__city_id=city_id)
        schools = School.objects.filter(where).annotate(key=Cast("pk", CharField())).values("key")
        q |= Q(owner_permission=role_permission(role), owner_permission_obj_pk__in=schools)
    return q


def queue(user) -> QuerySet[Task]:
    """Tasks the user may take: unassigned, their role at the task's school, and for approvals not on the team."""
    tasks = _case_tasks(user).filter(status=STATUS.NEW, owner__isnull=True)
    if not scoping.scope_for(user).unrestricted:
        tasks = tasks.filter(_claimable_q(user))
    approvals = [node for node in CaseFlow.instance.nodes() if isinstance(node, IndependentView)]
    seated = CaseTeamMember.objects.filter(
        user=user, left_at__isnull=True, case__processes=OuterRef("process_id")
    )  # fmt: skip
    return _overdue_first(tasks.annotate(on_team=Exists(seated)).exclude(Q(flow_task__in=approvals) & Q(on_team=True)))
