"""What the case page holds beyond its header: the sections the team works from (DESIGN §3, issue 16 item 8).

Why the student was flagged, the crisis alerts and who took them, the plans with their measures, parent contacts,
referrals, follow-ups, district support and the coordination log, closure evaluations (the open steps and their due
times are the view's). Each section holds only what the reader may read (roster.scoping): a homeroom teacher on the
team sees the plan, the contacts and the closures, never a screening result, a tier, a critical answer, a referral or
a follow-up.
For a clinical reader the page also tells the student's whole story across schools and years (cases.archive,
一生一档): the case this one follows, the cases that followed it, earlier screenings, moves and transfers, each as
today's rules let the reader see it.
A constant number of queries whatever the number of records (select_related / prefetch_related).
May import: roster, screening, cases. The view (workflows.views.case_detail) renders it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db.models import Max, Prefetch
from django.utils.translation import gettext_lazy as _

from cases import access as case_access
from cases import individual
from cases.archive import Archive, ArchiveCase, student_archive
from cases.models import (
    Case,
    Closure,
    ClosureEvaluation,
    CoordinationEntry,
    CrisisAlert,
    FollowUp,
    InterventionPlan,
    ParentContact,
    PlanMeasure,
    Referral,
    SupportRequest,
)  # fmt: skip
from cases.tiers import Audience
from workflows import selectors

AUDIENCES = {
    Audience.ASSIGNEE: _("the assignee"),
    Audience.DUTY_PSYCHOLOGY: _("the psychology teacher on duty"),
    Audience.PSYCHOLOGY_TEACHERS: _("every psychology teacher of the school"),
    Audience.PRINCIPAL: _("the principal"),
    Audience.DISTRICT_DUTY: _("the district centre on duty"),
    Audience.CITY_CENTRE: _("the city crisis centre"),
    "proctor": _("the proctor (care instruction only)"),
}


@dataclass(frozen=True)
class AlertStepRow:
    level: int
    told: str  # the audiences, named
    people: str  # who was told, by name
    at: datetime


@dataclass(frozen=True)
class AlertRow:
    alert: CrisisAlert
    taken_by: str
    steps: list[AlertStepRow]


@dataclass
class CasePage:
    clinical: bool  # reads the case's results and clinical records (psychology teachers and above)
    flag: individual.Screening | None = None  # the screening result that flagged the student
    referral_reason: str = ""  # a staff referral's reason (for clinical readers)
    alerts: list[AlertRow] = field(default_factory=list)
    plans: list[InterventionPlan] = field(default_factory=list)
    contacts: list[ParentContact] = field(default_factory=list)
    referrals: list[Referral] = field(default_factory=list)
    follow_ups: list[FollowUp] = field(default_factory=list)
    support_requests: list[SupportRequest] = field(default_factory=list)
    coordination: list[CoordinationEntry] = field(default_factory=list)
    closures: list[Closure] = field(default_factory=list)
    archive: Archive | None = None  # the student's story across schools and years (clinical readers)
    follows: ArchiveCase | None = None  # the earlier case this one follows, as the reader may see it
    followed_by: list[ArchiveCase] = field(default_factory=list)


def case_links(case_ids) -> dict[int, str]:
    """Each case's page (its newest main process), in one query."""
    from workflows.flows import CaseFlow
    from workflows.models import main_processes

    latest = (
        main_processes().filter(case__in=list(case_ids)).values("case_id").annotate(pk=Max("pk"))
        .values_list("case_id", "pk")
    )  # fmt: skip
    return {case_id: CaseFlow.instance.reverse("process_detail", args=[pk]) for case_id, pk in latest}


def archive_for(user, student, *, reads_student: bool) -> Archive:
    """The student's archive with a link on each case the reader may read."""
    archive = student_archive(user, student, reads_student=reads_student)
    links = case_links(c.case_id for c in archive.cases if c.readable)
    for line in archive.cases:
        line.url = links.get(line.case_id, "")
    return archive


def case_page(user, case: Case, *, reads_student: bool = False) -> CasePage:
    """The sections of a case page for this reader (the caller has checked the case is theirs to see)."""
    clinical = case_access.reads_clinical(user, case)
    page = CasePage(clinical=clinical)
    if clinical:
        page.flag = individual.screening_of(user, case.screening_result_id)
        page.referral_reason = case.reason
        # Through the scope: the school a case left reads only what was written before (cases.transfers).
        page.alerts = _alerts(user, case)
        page.support_requests = list(
            selectors.readable(user, SupportRequest).filter(case=case).select_related("requested_by", "accepted_by")
        )  # fmt: skip
        page.coordination = list(
            selectors.readable(user, CoordinationEntry).filter(case=case).select_related("author")
        )  # fmt: skip
        page.archive = archive_for(user, case.student, reads_student=reads_student)
        page.follows = page.archive.case(case.follows_id)
        page.followed_by = page.archive.followed_by(case.pk)
    measures = Prefetch("measures", queryset=PlanMeasure.objects.select_related("responsible").order_by("pk"))
    page.plans = list(
        selectors.readable(user, InterventionPlan).filter(case=case).select_related("author")
        .prefetch_related(measures).order_by("-created_at", "-pk")
    )  # fmt: skip
    page.contacts = list(
        selectors.readable(user, ParentContact).filter(case=case).select_related("contacted_by")
        .order_by("-contacted_at", "-pk")
    )  # fmt: skip
    page.referrals = list(
        selectors.readable(user, Referral).filter(case=case).select_related("requested_by", "decided_by")
        .order_by("-requested_at", "-pk")
    )  # fmt: skip
    page.follow_ups = list(
        selectors.readable(user, FollowUp).filter(case=case).select_related("held_by").order_by("-held_at", "-pk")
    )
    evaluations = Prefetch("evaluations", queryset=ClosureEvaluation.objects.select_related("decided_by"))
    page.closures = list(
        selectors.readable(user, Closure).filter(case=case).select_related("proposed_by", "decided_by")
        .prefetch_related(evaluations).order_by("-proposed_at", "-pk")
    )  # fmt: skip
    return page


def _alerts(user, case: Case) -> list[AlertRow]:
    """The case's crisis alerts, newest first, each with who took it and every step of its chain (three queries)."""
    alerts = list(
        selectors.readable(user, CrisisAlert).filter(case=case).select_related("acknowledged_by")
        .prefetch_related("steps")
    )  # fmt: skip
    ids = {pk for alert in alerts for step in alert.steps.all() for pk in step.recipients or []}
    names = {user.pk: user.get_short_name() for user in get_user_model().objects.filter(pk__in=ids)} if ids else {}
    rows = []
    for alert in alerts:
        steps = [
            AlertStepRow(
                level=step.level,
                told="、".join(
                    str(AUDIENCES.get(code.strip(), code.strip())) for code in step.audiences.split(",") if code.strip()
                ),
                people="、".join(names.get(pk, "") for pk in step.recipients or [] if names.get(pk)),
                at=step.at,
            )  # fmt: skip
            for step in alert.steps.all()
        ]
        rows.append(AlertRow(alert, selectors.person(alert.acknowledged_by), steps))
    return rows
