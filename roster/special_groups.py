"""Who is in a special group (issue 20): the students tagged with it, or, for an exam-year group (九年级, 高三), the
enrolled students of its grade. The one home of that rule: ledgers, targeted campaigns and reports ask here.

May import: roster only.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from roster.models import SpecialGroup, Student, StudentStatus


def members_q(group: SpecialGroup, prefix: str = "") -> Q:
    """A condition on Student (or on a model reaching it through `prefix`, e.g. "student__") for the group's members.
    Only enrolled students (休学 included: still the school's): leavers are in no group's ledger."""
    enrolled = Q(**{f"{prefix}status__in": (StudentStatus.ACTIVE, StudentStatus.ON_LEAVE)})
    if group.grade is not None:
        return enrolled & Q(
            **{f"{prefix}school_class__grade": group.grade, f"{prefix}school_class__graduated_in__isnull": True}
        )
    return enrolled & Q(**{f"{prefix}special_groups": group})


def members(group: SpecialGroup, students: QuerySet[Student] | None = None) -> QuerySet[Student]:
    """The group's members among `students` (all students when None; pass a scoped queryset for a page)."""
    qs = students if students is not None else Student.objects.all()
    return qs.filter(members_q(group)).distinct() if group.grade is None else qs.filter(members_q(group))
