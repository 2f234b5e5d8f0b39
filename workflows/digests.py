"""The weekly digest (issue 7 item 6; seed 002 三级责任): every Monday morning each school's principals get their
school's overdue steps and new red cases, each district centre its district's, in the app and by email.

- Who: active staff holding the principal role at a school, or the district-centre role at a district (one digest per
  node they hold). A node with nothing to report sends nothing: an empty digest every week teaches people to ignore
  it, and the dashboard stays one click away.
- What: overdue = open human steps past their due time now (TaskClock; workflows.dashboards.overdue_q); new red = cases
  red now that were opened (flagged) in the seven days before the run. Each line: case number, masked name, school,
  the step or the opening day, a link; no class, no student number, no staff names, no answers or notes (the email
  leaves the system). At most ITEM_LINES lines per section; the rest are counted and the dashboard lists them.
- Scope: drawn by the task, not through a user's scope; a principal's digest holds their school's cases and a centre's
  its district's, which is what roster.scoping shows them (DASHBOARD_ROLES).
- Idempotent per ISO week and node (Notification's kind + subject key): a re-run the same week tells nobody twice and
  emails only what a failed run left unsent.
The django-q2 schedule (migration 0004) calls `weekly_digest_send` with no arguments; nothing personal is queued.

May import: roster, screening, cases.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, OuterRef, Subquery
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from viewflow.workflow.models import Task

from cases.models import Case
from roster.masking import mask_name
from roster.models import RoleAssignment
from roster.notifications import NotificationEmailsFailed, notification_emails_send, notify
from roster.roles import Level, Role
from screening.definitions import RiskTier
from workflows.dashboards import OPEN_TASK_STATUSES, overdue_q
from workflows.flows import CaseFlow
from workflows.models import main_processes

logger = logging.getLogger(__name__)

DIGEST_KIND = "weekly_digest"
ITEM_LINES = 30  # per section of one email; a district with more reads the dashboard
NEW_RED_DAYS = 7
DIGEST_ROLES = {Role.PRINCIPAL: Level.SCHOOL, Role.DISTRICT_CENTRE: Level.DISTRICT}


@dataclass(frozen=True)
class Item:
    case_id: int
    process_id: int | None
    masked_name: str
    school: str
    what: str  # the overdue step's title, or "" for a new red case
    when: datetime  # the due time, or the opening


@dataclass
class Digest:
    level: str  # Level.SCHOOL or Level.DISTRICT
    node_id: int
    node_name: str
    overdue: list[Item] = field(default_factory=list)
    new_red: list[Item] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.overdue and not self.new_red


def week_key(now: datetime) -> str:
    year, week, _day = timezone.localtime(now).isocalendar()
    return f"{year}-W{week:02d}"


def _overdue_items(now: datetime) -> list[tuple[int, int, Item]]:
    """(school id, district id, item) for every overdue step, most overdue first (one query)."""
    case = "process__caseprocess__case"
    rows = (
        Task.objects.filter(flow_task_type="HUMAN", status__in=OPEN_TASK_STATUSES)
        .annotate(due_at=F("clock__due_at"))
        .filter(overdue_q(now))
        .order_by("due_at", "pk")
        .values_list(f"{case}_id", "process_id", f"{case}__student__name", f"{case}__school_id",
                     f"{case}__school__name", f"{case}__school__district_id", "flow_task", "due_at")
    )  # fmt: skip
    items = []
    for case_id, process_id, name, school_id, school, district_id, step, due in rows:
        title = str(getattr(step, "task_title", "") or getattr(step, "name", step))
        items.append((school_id, district_id, Item(case_id, process_id, mask_name(name), school, title, due)))
    return items


def _new_red_items(now: datetime) -> list[tuple[int, int, Item]]:
    """(school id, district id, item) for every case red now and opened in the last NEW_RED_DAYS (one query)."""
    latest = main_processes().filter(case=OuterRef("pk")).order_by("-pk").values("pk")[:1]
    rows = (
        Case.objects.filter(tier=RiskTier.RED, opened_at__gte=now - timedelta(days=NEW_RED_DAYS), opened_at__lt=now)
        .annotate(process_pk=Subquery(latest))
        .order_by("opened_at", "pk")
        .values_list("pk", "process_pk", "student__name", "school_id", "school__name", "school__district_id",
                     "opened_at")
    )  # fmt: skip
    return [
        (school_id, district_id, Item(pk, process_pk, mask_name(name), school, "", opened))
        for pk, process_pk, name, school_id, school, district_id, opened in rows
    ]


def digests_for_week(now: datetime) -> list[Digest]:
    """The digest of every school and district with something to report (two queries, plus one for the names)."""
    from roster.models import District

    digests: dict[tuple[str, int], Digest] = {}

    def digest(level: str, pk: int, name: str) -> Digest:
        return digests.setdefault((level, pk), Digest(level, pk, name))

    overdue, new_red = _overdue_items(now), _new_red_items(now)
    district_ids = {d for _s, d, _i in overdue + new_red}
    district_names = dict(District.objects.filter(pk__in=district_ids).values_list("pk", "name"))
    for school_id, district_id, item in overdue:
        digest(Level.SCHOOL, school_id, item.school).overdue.append(item)
        digest(Level.DISTRICT, district_id, district_names.get(district_id, "")).overdue.append(item)
    for school_id, district_id, item in new_red:
        digest(Level.SCHOOL, school_id, item.school).new_red.append(item)
        digest(Level.DISTRICT, district_id, district_names.get(district_id, "")).new_red.append(item)
    return [d for d in digests.values() if not d.empty]


def digest_recipients(digests: list[Digest]) -> dict[tuple[str, int], set[int]]:
    """The active holders of the digest role at each digest's node (one query)."""
    from django.db.models import Q

    schools = [d.node_id for d in digests if d.level == Level.SCHOOL]
    districts = [d.node_id for d in digests if d.level == Level.DISTRICT]
    holders = RoleAssignment.objects.filter(
        Q(role=Role.PRINCIPAL, school_id__in=schools) | Q(role=Role.DISTRICT_CENTRE, district_id__in=districts),
        user__is_active=True,
    ).values_list("role", "school_id", "district_id", "user_id")
    found: dict[tuple[str, int], set[int]] = {}
    for role, school_id, district_id, user_id in holders:
        node = (Level.SCHOOL, school_id) if role == Role.PRINCIPAL else (Level.DISTRICT, district_id)
        found.setdefault(node, set()).add(user_id)
    return found


# --- The texts ----------------------------------------------------------------------------------------------------


def _dashboard_path(digest: Digest) -> str:
    return f"{reverse('reports:dashboard')}?{digest.level}={digest.node_id}"


def _case_url(item: Item) -> str:
    if item.process_id is None:
        return ""
    return settings.SITE_URL + CaseFlow.instance.reverse("process_detail", args=[item.process_id])


def _day(moment: datetime | None) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M") if moment else ""


def _lines(items: list[Item], line) -> list[str]:
    shown = [line(item) for item in items[:ITEM_LINES]]
    if len(items) > ITEM_LINES:
        shown.append(_("… and %(n)d more: see the dashboard.") % {"n": len(items) - ITEM_LINES})
    return shown


def digest_title(digest: Digest) -> str:
    return _("Weekly case digest, %(node)s: %(overdue)d overdue, %(red)d new red") % {
        "node": digest.node_name, "overdue": len(digest.overdue), "red": len(digest.new_red)
    }  # fmt: skip


def _overdue_line(item: Item) -> str:
    return _("- Case #%(case)s · %(student)s · %(school)s · %(step)s · due %(due)s · %(url)s") % {
        "case": item.case_id, "student": item.masked_name, "school": item.school, "step": item.what,
        "due": _day(item.when), "url": _case_url(item),
    }  # fmt: skip


def _new_red_line(item: Item) -> str:
    return _("- Case #%(case)s · %(student)s · %(school)s · opened %(opened)s · %(url)s") % {
        "case": item.case_id, "student": item.masked_name, "school": item.school, "opened": _day(item.when),
        "url": _case_url(item),
    }  # fmt: skip


def digest_text(digest: Digest, now: datetime) -> str:
    """The digest in the active language: counts, masked names, schools, steps, dates and links; nothing else."""
    return "\n".join(
        [
            digest_title(digest),
            "",
            _("Overdue steps now: %(n)d") % {"n": len(digest.overdue)},
            *_lines(digest.overdue, _overdue_line),
            "",
            _("New red cases in the last %(days)d days: %(n)d") % {"days": NEW_RED_DAYS, "n": len(digest.new_red)},
            *_lines(digest.new_red, _new_red_line),
            "",
            _("Dashboard: %(url)s") % {"url": settings.SITE_URL + _dashboard_path(digest)},
            _("As of %(now)s. This message contains no screening answers, notes or full names.") % {"now": _day(now)},
        ]
    )


def _email(digest: Digest, now: datetime) -> tuple[str, str]:
    """Subject and body in Chinese first, then English, whatever language the worker runs in (as the red alerts)."""
    titles, bodies = [], []
    for language in ("zh-hans", "en"):
        with translation.override(language):
            titles.append(digest_title(digest))
            bodies.append(digest_text(digest, now))
    return " / ".join(titles), "\n\n----\n\n".join(bodies)


# --- The task -----------------------------------------------------------------------------------------------------


def weekly_digest_send(now: datetime | None = None) -> int:
    """Notify and email every principal and district centre whose node has overdue steps or new red cases; returns
    how many were newly notified.

    Access: the task worker (the weekly schedule). Audit: the Notification rows (who was told, when, emailed when);
    log lines carry node ids and counts. Idempotent per ISO week; failed emails are left for a re-run, then raised.
    """
    now = now or timezone.now()
    digests = digests_for_week(now)
    recipients = digest_recipients(digests)
    told = emailed = 0
    failures = []
    for digest in digests:
        people = recipients.get((digest.level, digest.node_id))
        if not people:
            continue
        key = f"{DIGEST_KIND}:{week_key(now)}:{digest.level}:{digest.node_id}"
        with translation.override(settings.LANGUAGE_CODE):
            title = digest_title(digest)
        told += notify(people, kind=DIGEST_KIND, title=title, link=_dashboard_path(digest), subject_key=key,
                       body=_("Open the dashboard for the list."))  # fmt: skip
        subject, body = _email(digest, now)
        try:
            emailed += notification_emails_send(kind=DIGEST_KIND, subject_key=key, subject=subject, body=body,
                                                recipients=people)  # fmt: skip
        except NotificationEmailsFailed as error:
            failures.append(error)
    logger.info("weekly digest %s: %d nodes to report, %d newly notified, %d emailed", week_key(now), len(digests),
                told, emailed)  # fmt: skip
    if failures:
        raise failures[0]
    return told
