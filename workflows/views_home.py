"""The signed-in home page (issue 16, item 3): people who work crises (psychology teachers, principals, district and
city centres) see their work first: open crisis alerts with the "我来处理" button, their tasks due today or overdue,
the school queue's, links to the inbox, queue and case list, and for a principal this week's duty-roster gaps.
Everyone else gets roster's home (roster may not import workflows; config.urls routes "" here).
May import: roster, screening, cases.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.contrib.auth.decorators import login_required
from django.template.response import TemplateResponse
from django.utils import timezone

from cases import alerts
from roster import duty, scoping
from roster import views as roster_views
from roster.masking import mask_name
from roster.roles import Role
from workflows import selectors
from workflows.flows import CaseFlow
from workflows.views import _task_url, alert_chip, tier_chip
from workflows.views_alerts import alert_path

WORK_ROLES = frozenset({Role.PSYCHOLOGY_TEACHER, Role.PRINCIPAL, Role.DISTRICT_CENTRE, Role.CITY_CENTRE})
SHOWN = 20  # rows per panel; the lists behind the links hold the rest


def works_crises(user) -> bool:
    return bool(scoping.scope_for(user).roles & WORK_ROLES)


def end_of_today(now: datetime | None = None) -> datetime:
    local = timezone.localtime(now or timezone.now())
    return timezone.make_aware(datetime.combine(local.date() + timedelta(days=1), time.min), local.tzinfo)


def _due_rows(tasks, now: datetime) -> list[dict]:
    rows = []
    for task in tasks:
        case = task.process.caseprocess.case
        rows.append(
            {
                "url": _task_url(task),
                "step": task.flow_task.task_title,
                "student": f"{mask_name(case.student.name)} · {case.student.school_class}",
                "tier": tier_chip(case.tier, case.get_tier_display()),
                "alert": alert_chip() if task.urgency == 0 else "",
                "due": task.clock_due,
                "overdue": task.clock_due < now,
            }
        )
    return rows


@login_required
def home(request):
    """Work first for the roles that work crises; roster's home for everyone else."""
    user = request.user
    if not works_crises(user):
        return roster_views.home(request, extra=_care_links(user))
    now = timezone.now()
    today_end = end_of_today(now)
    open_alerts = list(alerts.crisis_alerts_open_for(user)[:SHOWN])
    mine = selectors.inbox(user).filter(clock_due__lt=today_end)[:SHOWN]
    queued = selectors.queue(user).filter(clock_due__lt=today_end)[:SHOWN]
    context = {
        **roster_views.home_context(request),  # below the work, folded: roles and scope
        "alerts": [(a, mask_name(a.student.name), alert_path(a.pk)) for a in open_alerts],
        "mine": _due_rows(mine, now),
        "queued": _due_rows(queued, now),
        "inbox_url": CaseFlow.instance.reverse("inbox"),
        "queue_url": CaseFlow.instance.reverse("queue"),
        "case_list_url": CaseFlow.instance.reverse("process_list"),
        "duty_gaps": _duty_gaps(user, now),
        "now": now,
        **_care_links(user),
        **_signals_panel(user, now),
    }
    return TemplateResponse(request, "workflows/home.html", context)


def _care_links(user) -> dict:
    """Links to a teacher's students (mentors, homeroom and subject teachers) and to the coverage (issue 20)."""
    from django.urls import reverse

    from cases import care_selectors

    return {
        "my_students_url": reverse("care:my_students") if care_selectors.has_students_page(user) else "",
        "care_coverage_url": reverse("care:coverage") if care_selectors.may_read_coverage(user) else "",
    }


SIGNALS_SHOWN = 5  # the most urgent waiting signals on the home page; the queue holds the rest


def _signals_panel(user, now: datetime) -> dict:
    """The signal queue's waiting and overdue counts and its most urgent rows (issue 20): two queries."""
    from django.urls import reverse

    from cases.models import SignalStatus
    from workflows import signals

    rows = [
        {"url": reverse("care:signal_detail", args=[s.pk]), "tier": s.tier, "tier_label": s.get_tier_display(),
         "source": s.get_source_display(), "student": f"{mask_name(s.student.name)} · {s.student.school_class}",
         "due": s.due_at, "overdue": s.due_at is not None and s.due_at < now}
        for s in signals.signal_queue_for(user, status=SignalStatus.OPEN)[:SIGNALS_SHOWN]
    ]  # fmt: skip
    return {"signals": signals.queue_summary(user, now), "signal_rows": rows, "signals_url": reverse("care:signals")}


def _duty_gaps(user, now: datetime) -> list[tuple[object, list]]:
    """A principal's schools with this week's school-hours spans nobody is on duty for (roster.duty)."""
    if Role.PRINCIPAL not in scoping.scope_for(user).roles:
        return []
    week = duty.week_start_of(timezone.localdate(now))
    shown = []
    for school in selectors.schools_led_by(user):
        gaps = duty.duty_gaps(school, week)
        if gaps:
            shown.append((school, gaps))
    return shown
