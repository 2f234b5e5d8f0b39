"""Teacher checklists (排查表, seed 003's September 《心理健康排查表》): a campaign whose instruments are observer-rated
is filled by the homeroom teacher of each class — one short form per student — and scored by the same engine as a
screening (screening.services.result_record, source OBSERVER, rated_by the teacher).

Who: the class's homeroom teacher, and nobody else at the class (not its subject teachers or mentors, not the
school's psychology teachers: they read the results, they do not rate). The teacher sees which students are done
("已提交"), never a tier, score or reason: results are read as screening results are (the ScreeningResult readers
rule: psychology teachers and above). A flagged result flows like any flagged result (screening.signals).

May import: roster, screening. Views in screening/views_checklist.py call these.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from roster.masking import mask_name
from roster.models import SchoolClass, Student
from roster.roles import Level, Role
from roster.scoping import scope_for
from screening.campaigns import accepts_answers, campaigns_visible, checklist_campaigns_q, invited_classes, invited_q
from screening.models import Campaign, ResultSource, ScreeningResult
from screening.services import AlreadyRecorded, NotInvited, campaign_definitions, result_record

logger = logging.getLogger(__name__)

CHECKLIST_ROLE = Role.HOMEROOM_TEACHER


class ChecklistRefused(Exception):
    """A checklist form that cannot be taken, with a message for the teacher; nothing was written."""


def _homeroom_class_ids(user) -> set[int]:
    # The classes the user is the homeroom teacher of, read from their roles (no query): a superuser or a school
    # role over the class does not make one its rater.
    return set(scope_for(user).nodes(frozenset({CHECKLIST_ROLE})).get(Level.CLASS, set()))


def checklist_campaigns_for(user) -> QuerySet[Campaign]:
    """The checklist campaigns with a class the user is the homeroom teacher of, newest first.

    Access: any signed-in user; without a homeroom class, none.
    """
    classes = _homeroom_class_ids(user)
    if not classes:
        return Campaign.objects.none()
    return (
        campaigns_visible(user)
        .filter(checklist_campaigns_q(), schools__classes__in=classes)
        .distinct()
        .order_by("-opens_at", "-pk")
    )


def checklist_campaign(user, campaign_id: int) -> Campaign:
    """A checklist campaign the user fills for a class of theirs; Http404 otherwise (missing and forbidden alike)."""
    campaign = checklist_campaigns_for(user).filter(pk=campaign_id).first()
    if campaign is None:
        raise Http404
    return campaign


def _count(qs: QuerySet, group: str) -> Coalesce:
    counted = qs.order_by().values(group).annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def checklist_classes_for(user, campaign: Campaign) -> QuerySet[SchoolClass]:
    """The user's homeroom classes in the campaign, each with `invited` and `done` counts (one query)."""
    students = Student.objects.filter(invited_q(campaign), school_class=OuterRef("pk"))
    results = ScreeningResult.objects.filter(
        invited_q(campaign, "student__"), campaign=campaign, student__school_class=OuterRef("pk")
    )
    return (
        invited_classes(campaign, SchoolClass.objects.filter(pk__in=_homeroom_class_ids(user)))
        .select_related("school")
        .annotate(invited=_count(students, "school_class"), done=_count(results, "student__school_class"))
        .order_by("school__code", "grade", "number")
    )


def checklist_class(user, campaign: Campaign, class_id: int) -> SchoolClass:
    """A class of the campaign the user is the homeroom teacher of; Http404 for any other (forbidden and missing)."""
    found = checklist_classes_for(user, campaign).filter(pk=class_id).first()
    if found is None:
        raise Http404
    return found


@dataclass(frozen=True)
class ChecklistRow:
    student_id: int
    student_no: str
    masked_name: str
    done: bool  # a form is stored; never its tier or score


def checklist_rows(campaign: Campaign, school_class: SchoolClass) -> list[ChecklistRow]:
    """The class's students the campaign is for, with whether their form is in (one query, whatever the size)."""
    stored = ScreeningResult.objects.filter(campaign=campaign, student=OuterRef("pk"))
    students = (
        Student.objects.filter(invited_q(campaign), school_class=school_class)
        .annotate(done=Exists(stored))
        .order_by("student_no")
        .values_list("pk", "student_no", "name", "done")
    )
    return [ChecklistRow(pk, number, mask_name(name), done) for pk, number, name, done in students]


def checklist_student(campaign: Campaign, school_class: SchoolClass, student_id: int) -> Student:
    """A student of the class the campaign is for; Http404 otherwise."""
    student = (
        Student.objects.filter(invited_q(campaign), school_class=school_class, pk=student_id)
        .select_related("school", "school_class")
        .first()
    )
    if student is None:
        raise Http404
    return student


def checklist_done(campaign: Campaign, student: Student) -> bool:
    return ScreeningResult.objects.filter(campaign=campaign, student=student).exists()


@transaction.atomic
def checklist_submit(*, actor, campaign: Campaign, student: Student, answers: dict) -> ScreeningResult:
    """Store the homeroom teacher's checklist for one student, once, scored and tiered by the campaign's rule set.

    Access: the homeroom teacher of the student's class (PermissionDenied for anyone else), while the campaign takes
    answers, for a student it is for. Audit: the result's history row (by `actor`, rated_by `actor`); a log line with
    ids only. A flagged result sends `student_flagged` after commit, like any screening result.
    Raises ChecklistRefused (closed, already submitted), scoring.AnswerError (an item left blank).
    """
    if student.school_class_id not in _homeroom_class_ids(actor):
        raise PermissionDenied
    campaign = Campaign.objects.filter(Q(pk=campaign.pk) & checklist_campaigns_q()).select_related("ruleset").first()
    if campaign is None or not accepts_answers(campaign):
        raise ChecklistRefused(_("This checklist is not open; nothing was saved."))
    try:
        outcome = result_record(
            campaign=campaign, student=student, answers=answers, source=ResultSource.OBSERVER,
            definitions=campaign_definitions(campaign), submitted_at=timezone.now(), only_new=True, rated_by=actor,
        )  # fmt: skip
    except AlreadyRecorded:
        raise ChecklistRefused(_("This student's checklist has already been submitted.")) from None
    except NotInvited:
        raise Http404 from None
    logger.info("checklist submitted: campaign %s, result %s, by user %s", campaign.pk, outcome.result.pk, actor.pk)
    return outcome.result
