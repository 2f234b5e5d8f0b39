"""The proctor pages: live completion of a class during a screening (done / not yet / keep), never answers.

Who: the class's homeroom teacher and the school's psychology teachers and principal (screening.alerts.PROCTOR_ROLES,
through roster.scoping.within_roles). A class outside the user's scope answers 404; a class they see in another role
(a school admin, the district centre) answers 403. No tier ever shows: a red result, or a student a care instruction
went out for (cases.alerts), is only "keep this student; a psychology teacher is on the way". A homeroom teacher may
not read results (DESIGN §5); these pages read no more than whether a result exists and whether the student is to be
kept, and pass no result row to a template.
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

from roster import scoping
from roster.masking import mask_name
from roster.models import Notification, SchoolClass, Student, StudentStatus
from screening.alerts import CARE_KIND, CARE_PREFIX, PROCTOR_ROLES
from screening.campaigns import campaigns_visible
from screening.definitions import RiskTier
from screening.models import Campaign, ScreeningResult

REFRESH_SECONDS = 15  # the issue: live; a class of 50 polling every 15 s is ~3 requests a second at most

DONE, NOT_YET, RED_ALERT = "done", "not_yet", "keep"


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
    return classes.filter(school__campaigns=campaign, grade__in=campaign.target_grades)


def _count(qs: QuerySet, group: str) -> Coalesce:
    counted = qs.order_by().values(group).annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def proctor_classes_for(user, campaign: Campaign) -> QuerySet[SchoolClass]:
    """The classes of the campaign the user may proctor, with invited / done / keep counts (one query).

    Access: roster.scoping.within_roles(PROCTOR_ROLES).
    """
    students = Student.objects.filter(school_class=OuterRef("pk"), status=StudentStatus.ACTIVE)
    results = ScreeningResult.objects.filter(
        campaign=campaign, student__school_class=OuterRef("pk"), student__status=StudentStatus.ACTIVE
    )
    return (
        _in_campaign(campaign, scoping.within_roles(user, SchoolClass, PROCTOR_ROLES))
        .select_related("school")
        .annotate(
            invited=_count(students, "school_class"),
            done=_count(results, "student__school_class"),
            to_keep=_count(_to_keep(results), "student__school_class"),
        )
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
    student_no: str
    masked_name: str
    status: str  # DONE, NOT_YET or RED_ALERT: no other tier leaves this module


def proctor_rows(campaign: Campaign, school_class: SchoolClass) -> list[ProctorRow]:
    """The class's invited students with their completion (one query, whatever the class size)."""
    results = ScreeningResult.objects.filter(campaign=campaign, student=OuterRef("pk"))
    students = (
        Student.objects.filter(school_class=school_class, status=StudentStatus.ACTIVE)
        .annotate(done=Exists(results), keep=Exists(_to_keep(results)))
        .order_by("student_no")
        .values_list("student_no", "name", "done", "keep")
    )
    return [
        ProctorRow(number, mask_name(name), RED_ALERT if red else DONE if done else NOT_YET)
        for number, name, done, red in students
    ]


def _to_keep(results: QuerySet[ScreeningResult]) -> QuerySet[ScreeningResult]:
    """The results whose student the proctor keeps in the room: red, or one a care instruction went out for (a
    critical answer: cases.alerts sends it). The page shows the instruction, never why."""
    cared = Notification.objects.filter(
        kind=CARE_KIND, subject_key=Concat(Value(CARE_PREFIX), Cast(OuterRef("pk"), CharField()))
    )
    return results.filter(Q(tier=RiskTier.RED) | Q(Exists(cared)))


def _summary(rows: list[ProctorRow]) -> dict[str, int]:
    return {
        "invited": len(rows),
        "done": sum(row.status != NOT_YET for row in rows),
        "to_keep": sum(row.status == RED_ALERT for row in rows),
    }


def _labels() -> dict[str, str]:
    return {
        DONE: _("Done"),
        NOT_YET: _("Not yet"),
        RED_ALERT: _("Please keep this student with you: a psychology teacher is on the way."),
    }


# --- Views --------------------------------------------------------------------------------------------------------


@never_cache
@login_required
def proctor_classes(request, campaign_id: int):
    campaign = proctor_campaign(request.user, campaign_id)
    return render(
        request,
        "screening/proctor.html",
        {"campaign": campaign, "classes": proctor_classes_for(request.user, campaign), "school_class": None},
    )


@never_cache
@login_required
def proctor(request, campaign_id: int, class_id: int):
    campaign = proctor_campaign(request.user, campaign_id)
    school_class = proctor_class(request.user, campaign, class_id)
    rows = proctor_rows(campaign, school_class)
    return render(
        request,
        "screening/proctor.html",
        {
            "campaign": campaign,
            "school_class": school_class,
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
    """The proctor page's data as JSON, polled by the page every REFRESH_SECONDS."""
    campaign = proctor_campaign(request.user, campaign_id)
    school_class = proctor_class(request.user, campaign, class_id)
    rows = proctor_rows(campaign, school_class)
    return JsonResponse(
        {
            **_summary(rows),
            "students": [{"student_no": r.student_no, "name": r.masked_name, "status": r.status} for r in rows],
            "refreshed_at": timezone.localtime().strftime("%H:%M:%S"),
        }
    )
