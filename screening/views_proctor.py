"""The proctor pages: live completion of a class during a screening (done / not yet / keep), never answers.

Who: the class's homeroom teacher and the school's psychology teachers and principal (screening.alerts.PROCTOR_ROLES,
through roster.scoping.within_roles). A class outside the user's scope answers 404; a class they see in another role
(a school admin, the district centre) answers 403. No tier ever shows: a red result, or a student a care instruction
went out for (cases.alerts), is only "keep this student; a psychology teacher is on the way". A homeroom teacher may
not read results (DESIGN §5); these pages read no more than whether a result exists and whether the student is to be
kept, and pass no result row to a template.

Only while the screening is live: while its campaign takes answers (screening.campaigns.accepts_answers: open by the
schedule and inside its window), when a proctor can be in the room with the students. Before and after, the pages show
the class's invited and done counts and say so; the JSON answers 410 Gone (the page then reloads into that view). A
keep mark is an instruction for the session, not a lasting record of who screened red.

Every read is logged (roster.audit): the students listed by name and status, or the class whose counts were shown.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import CharField, Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Cast, Coalesce, Concat
from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache

from roster import audit, scoping
from roster.masking import mask_name
from roster.models import AccessAction, AccessOutcome, Notification, SchoolClass, Student
from screening.alerts import CARE_KIND, CARE_PREFIX, PROCTOR_ROLES
from screening.campaigns import accepts_answers, campaigns_visible, invited_classes, invited_q
from screening.definitions import RiskTier
from screening.models import Campaign, ScreeningResult

REFRESH_SECONDS = 15  # the issue: live; a class of 50 polling every 15 s is ~3 requests a second at most

DONE, NOT_YET, KEEP = "done", "not_yet", "keep"


# --- Reads --------------------------------------------------------------------------------------------------------


def proctor_campaign(user, campaign_id: int) -> Campaign:
    """The campaign, when the user may see it; Http404 otherwise (also for a missing one).

    Access: campaigns_visible() (which includes a homeroom teacher's campaigns, reached through their class).
    """
    campaign = campaigns_visible(user).filter(pk=campaign_id).first()
    if campaign is None:
        raise Http404
    return campaign


def _in_campaign(campaign: Campaign, classes: QuerySet[SchoolClass]) -> QuerySet[SchoolClass]:
    # Current classes only: a class that graduated in a school-year rollover keeps its grade, not its pupils' work.
    return invited_classes(campaign, classes)


def _count(qs: QuerySet, group: str) -> Coalesce:
    counted = qs.order_by().values(group).annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def proctor_live(campaign: Campaign, now=None) -> bool:
    """Whether the campaign's session is on: students are answering, so marks for the room may show."""
    return accepts_answers(campaign, now)


def proctor_classes_for(user, campaign: Campaign, *, live: bool = True) -> QuerySet[SchoolClass]:
    """The classes of the campaign the user may proctor, with invited / done counts and, while `live`, keep counts
    (one query).

    Access: roster.scoping.within_roles(PROCTOR_ROLES).
    """
    students = Student.objects.filter(invited_q(campaign), school_class=OuterRef("pk"))
    results = ScreeningResult.objects.filter(
        invited_q(campaign, "student__"), campaign=campaign, student__school_class=OuterRef("pk")
    )
    counts = {"invited": _count(students, "school_class"), "done": _count(results, "student__school_class")}
    if live:
        counts["to_keep"] = _count(_to_keep(results), "student__school_class")
    return (
        _in_campaign(campaign, scoping.within_roles(user, SchoolClass, PROCTOR_ROLES))
        .select_related("school")
        .annotate(**counts)
        .order_by("school__code", "grade", "number")
    )


def proctor_class(user, campaign: Campaign, class_id: int) -> SchoolClass:
    """A class of the campaign the user may proctor.

    Access: within_roles(PROCTOR_ROLES); PermissionDenied when the user sees the class in another role, Http404 when
    it is outside their scope, missing, or not in the campaign.
    """
    found = (
        _in_campaign(campaign, scoping.within_roles(user, SchoolClass, PROCTOR_ROLES))
        .select_related("school")
        .filter(pk=class_id)
        .first()
    )
    if found is not None:
        return found
    if _in_campaign(campaign, scoping.visible(user, SchoolClass)).filter(pk=class_id).exists():
        raise PermissionDenied
    raise Http404


@dataclass(frozen=True)
class ProctorRow:
    student_id: int  # for the access log only; never shown
    student_no: str
    masked_name: str
    status: str  # DONE, NOT_YET or KEEP: no other tier leaves this module


def proctor_rows(campaign: Campaign, school_class: SchoolClass) -> list[ProctorRow]:
    """The class's invited students with their completion (one query, whatever the class size). Only for a live
    session (proctor_live): the views ask for counts otherwise."""
    results = ScreeningResult.objects.filter(campaign=campaign, student=OuterRef("pk"))
    students = (
        Student.objects.filter(invited_q(campaign), school_class=school_class)
        .annotate(done=Exists(results), keep=Exists(_to_keep(results)))
        .order_by("student_no")
        .values_list("pk", "student_no", "name", "done", "keep")
    )
    return [
        ProctorRow(pk, number, mask_name(name), KEEP if keep else DONE if done else NOT_YET)
        for pk, number, name, done, keep in students
    ]


def proctor_counts(campaign: Campaign, school_class: SchoolClass) -> dict[str, int]:
    """The class's invited and done counts, no one named and no keep count: the pages outside a live session."""
    results = ScreeningResult.objects.filter(campaign=campaign, student=OuterRef("pk"))
    students = Student.objects.filter(invited_q(campaign), school_class=school_class)
    return students.aggregate(invited=Count("pk"), done=Count("pk", filter=Q(Exists(results))))


def _to_keep(results: QuerySet[ScreeningResult]) -> QuerySet[ScreeningResult]:
    """The results whose student the proctor keeps in the room: red, or one a care instruction went out for (a
    critical answer: cases.alerts sends it), submitted today. The page shows the instruction, never why; and only on
    the day it matters: a campaign open for a week must not leave a class's red students marked for its teacher."""
    cared = Notification.objects.filter(
        kind=CARE_KIND, subject_key=Concat(Value(CARE_PREFIX), Cast(OuterRef("pk"), CharField()))
    )
    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    return results.filter(Q(tier=RiskTier.RED) | Q(Exists(cared)), submitted_at__gte=today)


def _summary(rows: list[ProctorRow]) -> dict[str, int]:
    return {
        "invited": len(rows),
        "done": sum(row.status != NOT_YET for row in rows),
        "to_keep": sum(row.status == KEEP for row in rows),
    }


def _labels() -> dict[str, str]:
    return {
        DONE: _("Done"),
        NOT_YET: _("Not yet"),
        KEEP: _("Please keep this student with you: a psychology teacher is on the way."),
    }


def _not_live_message(campaign: Campaign) -> str:
    if timezone.now() < campaign.opens_at:
        return _("This screening has not opened yet. Each student's progress shows here while it is open.")
    return _(
        "This screening has ended. Each student's progress shows only while it is open; here are the class's counts."
    )


def _proctor_target(request, campaign_id: int, class_id: int) -> tuple[Campaign, SchoolClass]:
    """The campaign and class of a proctor page; a refusal (404 or 403) is logged before it is raised."""
    try:
        campaign = proctor_campaign(request.user, campaign_id)
        return campaign, proctor_class(request.user, campaign, class_id)
    except (Http404, PermissionDenied):
        audit.record(AccessAction.VIEW, object_type=audit.label(SchoolClass), object_ids=[class_id],
                     outcome=AccessOutcome.DENIED)  # fmt: skip
        raise


def _log_read(school_class: SchoolClass, rows: list[ProctorRow]) -> None:
    """Audit, one entry a read (the page polls every REFRESH_SECONDS): the students listed with their status in a live
    session, else the class whose counts were shown."""
    if rows:
        audit.record(AccessAction.LIST, object_type=audit.label(Student), object_ids=[row.student_id for row in rows])
    else:
        audit.record(AccessAction.VIEW, object_type=audit.label(SchoolClass), object_ids=[school_class.pk])


# --- Views --------------------------------------------------------------------------------------------------------


@never_cache
@login_required
def proctor_classes(request, campaign_id: int):
    campaign = proctor_campaign(request.user, campaign_id)
    live = proctor_live(campaign)
    classes = list(proctor_classes_for(request.user, campaign, live=live))
    audit.record(AccessAction.LIST, object_type=audit.label(SchoolClass), object_ids=[c.pk for c in classes])
    return render(
        request,
        "screening/proctor.html",
        {"campaign": campaign, "classes": classes, "school_class": None, "live": live,
         "not_live_message": "" if live else _not_live_message(campaign)},
    )  # fmt: skip


@never_cache
@login_required
def proctor(request, campaign_id: int, class_id: int):
    campaign, school_class = _proctor_target(request, campaign_id, class_id)
    if not proctor_live(campaign):
        _log_read(school_class, [])
        context = {
            "campaign": campaign,
            "school_class": school_class,
            "live": False,
            "summary": proctor_counts(campaign, school_class),
            "not_live_message": _not_live_message(campaign),
        }
        return render(request, "screening/proctor.html", context)
    rows = proctor_rows(campaign, school_class)
    _log_read(school_class, rows)
    return render(
        request,
        "screening/proctor.html",
        {
            "campaign": campaign,
            "school_class": school_class,
            "live": True,
            "rows": rows,
            "summary": _summary(rows),
            "labels": _labels(),
            "refresh_seconds": REFRESH_SECONDS,
            "status_url": reverse(
                "screening:proctor_status", kwargs={"campaign_id": campaign.pk, "class_id": school_class.pk}
            ),
        },
    )


@never_cache
@login_required
def proctor_status(request, campaign_id: int, class_id: int):
    """The proctor page's data as JSON, polled by the page every REFRESH_SECONDS; 410 Gone with the counts alone
    outside a live session (the page reloads on an error and then shows that the session has ended)."""
    campaign, school_class = _proctor_target(request, campaign_id, class_id)
    if not proctor_live(campaign):
        _log_read(school_class, [])
        counts = proctor_counts(campaign, school_class)
        return JsonResponse({"live": False, "message": _not_live_message(campaign), **counts}, status=410)
    rows = proctor_rows(campaign, school_class)
    _log_read(school_class, rows)
    return JsonResponse(
        {
            "live": True,
            **_summary(rows),
            "students": [{"student_no": r.student_no, "name": r.masked_name, "status": r.status} for r in rows],
            "refreshed_at": timezone.localtime().strftime("%H:%M:%S"),
        }
    )
