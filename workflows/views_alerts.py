"""Crisis alerts on every staff page (issue 16, item 3): the live feed the banner polls, and the alert's own page with
its one button ("我来处理") that leads to the work.

- `alerts_live` (/alerts/live/): JSON for the signed-in person, polled every 10 s by static/js/alerts.js on our pages
  and on the task pages. Open alerts they may act on (masked name, class, kind), their unread counts for the top
  bar's badge, and for a homeroom teacher their care instructions only ("请留下该生，心理教师马上到"): no tier,
  score or answer ever reaches someone who may not read results.
- `alert_page` (/work/alerts/<id>/): the alert, its chain so far and who took it; POST takes it (cases.alerts) and
  goes to the triage task or the case page. Out of scope is missing (404), logged.
May import: roster, screening, cases.
"""

from __future__ import annotations

import contextlib
import datetime

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Case as SqlCase
from django.db.models import Count, IntegerField, Sum, Value, When, Window
from django.http import HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.timesince import timesince
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods
from viewflow.workflow.models import Task
from viewflow.workflow.status import STATUS

from cases import alerts
from cases.models import AlertKind, AlertStatus, CrisisAlert
from cases.tiers import Audience
from roster import audit
from roster.masking import mask_name
from roster.models import AccessAction, Notification, User
from roster.notifications import notifications_for
from workflows import selectors, services
from workflows.flows import CaseFlow
from workflows.models import main_processes

LIVE_ALERTS_SHOWN = 5  # the banner names the newest; the count says how many more
LIVE_CARE_SHOWN = 3
POLL_HEADER = "X-Background-Poll"  # the banner's requests: not activity (roster.sessions keeps the idle timeout)


def alert_path(alert_id: int) -> str:
    return alerts.ALERT_PATH.format(pk=alert_id)


def _ago(when) -> str:
    if timezone.now() - when < datetime.timedelta(minutes=1):
        return _("just now")
    return _("%(time)s ago") % {"time": timesince(when, timezone.now(), depth=1)}


# --- The live feed ---------------------------------------------------------------------------------------------


@never_cache
@require_GET
def alerts_live(request):
    """The banner's feed. Three queries: the acting roles, the open alerts with their count, the unread
    notifications with their counts. A signed-out person gets 401 (the script stops)."""
    user = request.user
    if not user.is_authenticated:
        return JsonResponse({"signed_out": True}, status=401)
    rows = list(alerts.crisis_alerts_open_for(user).annotate(total=Window(Count("pk")))[:LIVE_ALERTS_SHOWN])
    unread = _unread_rows(user)
    counts = unread[0] if unread else None
    care = [n for n in unread if n.kind == alerts.CARE_KIND][:LIVE_CARE_SHOWN]
    _log_shown(request, [alert.pk for alert in rows], [n.pk for n in care])
    return JsonResponse(
        {
            "open": rows[0].total if rows else 0,
            "unread": counts.total if counts else 0,
            "unread_urgent": counts.urgent_total if counts else 0,
            "label": _("Crisis alert"),
            "open_label": _("Open it"),
            "alerts": [_alert_row(alert) for alert in rows],
            "care": [{"id": n.pk, "text": n.body or n.title, "url": n.link or "/notifications/"} for n in care],
        }
    )


LIVE_LOGGED = "alerts_live_logged"


def _log_shown(request, alert_ids: list[int], care_ids: list[int]) -> None:
    """Log what the banner names (masked students, their classes) when it changes: a poll every 10 s showing the same
    alerts is one reading, not 360 an hour; a new alert or care instruction shown is a new entry."""
    shown = [sorted(alert_ids), sorted(care_ids)]
    if request.session.get(LIVE_LOGGED) == shown:
        return
    if alert_ids:
        audit.record(AccessAction.LIST, object_type=audit.label(CrisisAlert), object_ids=shown[0])
    if care_ids:
        audit.record(AccessAction.LIST, object_type=audit.label(Notification), object_ids=shown[1])
    request.session[LIVE_LOGGED] = shown


def _unread_rows(user):
    """The user's unread notifications, care instructions first, each row carrying the counts of all of them (a
    window over the unread rows, computed before the limit): one query whatever the number."""
    urgent = SqlCase(When(urgent=True, then=Value(1)), default=Value(0), output_field=IntegerField())
    care_first = SqlCase(When(kind=alerts.CARE_KIND, then=Value(0)), default=Value(1), output_field=IntegerField())
    return list(
        notifications_for(user)
        .filter(read_at__isnull=True)
        .annotate(total=Window(Count("pk")), urgent_total=Window(Sum(urgent)), care_first=care_first)
        .order_by("care_first", "-created_at", "-pk")[:LIVE_CARE_SHOWN]
    )


def _alert_row(alert: CrisisAlert) -> dict:
    student = alert.student
    return {
        "id": alert.pk,
        "title": mask_name(student.name),
        "school": alert.school.name,
        "class": str(student.school_class),
        "kind": alert.get_kind_display(),
        "raised_at": alert.raised_at.isoformat(),
        "ago": _ago(alert.raised_at),
        "url": alert_path(alert.pk),
    }


# --- The alert's page ------------------------------------------------------------------------------------------


AUDIENCE_LABELS = {
    Audience.DUTY_PSYCHOLOGY: _("Psychology teacher on duty"),
    Audience.PSYCHOLOGY_TEACHERS: _("The school's psychology teachers"),
    Audience.PRINCIPAL: _("Principal"),
    Audience.DISTRICT_DUTY: _("District centre on duty"),
    Audience.CITY_CENTRE: _("City crisis intervention centre"),
    alerts.PROCTOR: _("The class's proctor (care instruction only)"),
}


def _audiences_label(codes: str) -> str:
    return "、".join(str(AUDIENCE_LABELS.get(code.strip(), code.strip())) for code in codes.split(",") if code.strip())


@never_cache
@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def alert_page(request, pk: int):
    """The alert and its chain; POST "我来处理" takes it and opens the work (the triage task or the case page)."""
    alert = selectors.access_crisis_alert_by_id(request.user, pk, request.method)
    if request.method == "POST":
        try:
            taken = alerts.crisis_alert_acknowledge(request.user, alert)
        except alerts.AlertAlreadyTaken as error:
            messages.error(request, " ".join(error.messages))
            return HttpResponseRedirect(alert_path(alert.pk))
        except PermissionDenied as error:  # reached the page, but the service refuses (e.g. the role just ended)
            messages.error(request, str(error))
            return HttpResponseRedirect(alert_path(alert.pk))
        messages.success(request, _("You took the alert: the others are told that the student is being seen."))
        _claim_the_work(request.user, taken)
        return HttpResponseRedirect(alerts.alert_link(taken))
    steps = list(alert.steps.order_by("at", "pk"))
    people = User.objects.in_bulk({uid for step in steps for uid in step.recipients})
    chain = [
        (step.level if step.audiences != alerts.PROCTOR else "—", _audiences_label(step.audiences),
         "、".join(selectors.person(people[uid]) for uid in step.recipients if uid in people), step.at)
        for step in steps
    ]  # fmt: skip
    taken_message = alerts.already_taken_message(alert) if alert.status != AlertStatus.OPEN else ""
    context = {
        "alert": alert,
        "student": mask_name(alert.student.name),
        "chain": chain,
        "taken_message": taken_message,
        "work_url": alerts.alert_link(alert) if alert.status == AlertStatus.ACKNOWLEDGED else "",
        "ago": _ago(alert.raised_at),
    }
    return TemplateResponse(request, "workflows/alert.html", context)


def _alert_work_task(alert: CrisisAlert) -> Task | None:
    """The task an alert calls for: the brief safety assessment of a critical answer, else the case's triage, while
    it waits."""
    if alert.case_id is None:
        return None
    nodes = [CaseFlow.safety_assessment, CaseFlow.triage] if alert.kind == AlertKind.CRITICAL else [CaseFlow.triage]
    for node in nodes:
        task = (
            Task.objects.filter(process__caseprocess__case_id=alert.case_id, flow_task=node,
                                status__in=selectors.ACTIVE)
            .order_by("-pk")
            .first()
        )  # fmt: skip
        if task is not None:
            return task
    return None


def _claim_the_work(user, alert: CrisisAlert) -> None:
    """ "我来处理" also takes the task it calls for from the queue, when it waits there and the person may take it:
    one decision, not two."""
    task = _alert_work_task(alert)
    if task is None or task.status != STATUS.NEW or not task.flow_task.can_assign(user, task):
        return
    with contextlib.suppress(services.TaskUnavailable, services.CaseBusy, PermissionDenied):
        services.task_claim(user, task)


def alert_work_link(alert: CrisisAlert) -> str:
    """Where an alert leads (registered with cases.alerts.alert_link): the task it calls for (the safety assessment
    or the triage) while it waits, else the case's page; "" when no case is linked yet (the alert's own page then)."""
    if alert.case_id is None:
        return ""
    task = _alert_work_task(alert)
    if task is not None:
        return task.flow_task.reverse("index", args=[task.process_id, task.pk])
    process_id = main_processes().filter(case_id=alert.case_id).order_by("-pk").values_list("pk", flat=True).first()
    if process_id is None:  # the task worker is starting the case's process
        return ""
    return CaseFlow.instance.reverse("process_detail", args=[process_id])
