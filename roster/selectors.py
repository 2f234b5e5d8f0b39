"""Reads for people, each built on roster.scoping so nothing here can widen what a user sees."""

from __future__ import annotations

from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from roster import scoping
from roster.models import RoleAssignment, School, SchoolClass, Student, StudentStatus
from roster.roles import Role
from roster.stages import grades_for_stages


def role_assignments_for(user) -> QuerySet[RoleAssignment]:
    return RoleAssignment.objects.filter(user_id=user.pk).select_related(
        "city", "district__city", "school__district", "school_class__school"
    )


def _active_students_of(outer: str) -> Subquery:
    counts = (
        Student.objects.filter(**{outer: OuterRef("pk")}, status=StudentStatus.ACTIVE)
        .order_by()
        .values(outer)
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counts, output_field=IntegerField()), 0)


def school_overview_for(user) -> QuerySet[School]:
    """Schools the user sees, with class and enrolled-student counts (three queries at most, whatever the size)."""
    return (
        scoping.visible(user, School)
        .select_related("district")
        .annotate(class_count=Count("classes", distinct=True), student_count=_active_students_of("school"))
        .order_by("district__division_code", "code")
    )


def class_overview_for(user) -> QuerySet[SchoolClass]:
    """Classes the user sees, with enrolled-student counts and the homeroom teacher's name."""
    homeroom = RoleAssignment.objects.filter(school_class=OuterRef("pk"), role=Role.HOMEROOM_TEACHER).values(
        "user__name"
    )[:1]
    return (
        scoping.visible(user, SchoolClass.objects.current())
        .select_related("school")
        .annotate(student_count=_active_students_of("school_class"), homeroom_name=Subquery(homeroom))
        .order_by("school__code", "grade", "number")
    )


def student_counts_for(user) -> dict[str, int]:
    students = scoping.visible(user, Student)
    return students.aggregate(total=Count("pk"), active=Count("pk", filter=Q(status=StudentStatus.ACTIVE)))


def grades_offered_for(user, *, school_id: int | None = None) -> list[int]:
    """The grades that exist at the schools this user sees (by each school's stage), or at one of them: what a grade
    filter or a campaign's target grades offer. One query."""
    schools = scoping.visible(user, School)
    if school_id is not None:
        schools = schools.filter(pk=school_id)
    return grades_for_stages(schools.order_by().values_list("stage", flat=True).distinct())
