"""Who is in a special group (issue 20): the students tagged with it, or, for an exam-year group (九年级, 高三), the
enrolled students of its grade. The one home of that rule: ledgers, targeted campaigns and reports ask here.

May import: roster only.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from roster import scoping
from roster.models import SpecialGroup, Student, StudentStatus
from roster.roles import Role


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


# --- The vocabulary: who keeps it, which groups a file or a form may tag -------------------------------------------

# District and city admins keep the vocabulary (issue 20 item 3): add a group, rename it, mark it a ledger or no longer
# in use. Nobody deletes one (tags, help records and history name it); an exam-year group's grade is data.
VOCABULARY_EDITORS = frozenset({Role.CITY_ADMIN, Role.DISTRICT_ADMIN})


def may_edit_vocabulary(user) -> bool:
    """Whether `user` may add or change special groups (no query): a district or city admin, or a superuser."""
    scope = scoping.scope_for(user)
    return scope.unrestricted or bool(scope.roles & VOCABULARY_EDITORS)


def taggable(groups: QuerySet[SpecialGroup] | None = None) -> QuerySet[SpecialGroup]:
    """The groups a student is tagged with one by one (a roster file, the student form): in use, with no grade."""
    qs = groups if groups is not None else SpecialGroup.objects.all()
    return qs.filter(active=True, grade__isnull=True)


def tagged_memberships(groups, students: QuerySet[Student] | None = None) -> QuerySet:
    """The tag rows (Student.special_groups' through model: `student`, `specialgroup`) of enrolled `students` (all
    when None: the caller narrows by `student__…`) in tagged `groups` (ids or a queryset): one row per member and
    group, members_q's rule for tagged groups."""
    through = Student.special_groups.through
    enrolled = (StudentStatus.ACTIVE, StudentStatus.ON_LEAVE)
    rows = through.objects.filter(specialgroup__in=groups, student__status__in=enrolled)
    return rows if students is None else rows.filter(student__in=students)


def ledger_groups_in_use() -> QuerySet[SpecialGroup]:
    """The ledger groups in use (三个清单): each member needs a 一人一案 help record."""
    return SpecialGroup.objects.filter(active=True, ledger=True, grade__isnull=True)
