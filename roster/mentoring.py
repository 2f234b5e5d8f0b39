"""全员导师制 (seed 004: every student has a mentor): assigning a mentor to a student, or to every student of a class.

One current Mentorship per student: assigning a new mentor ends the current one (`left_at`), so the history of who
mentored whom stays. The mentor is a staff member of the student's school (employed there, or holding a role at it
or one of its classes) and is given the MENTOR role at the school when they do not hold it yet
(roster.services.role_grant), which is what lets them see their mentees (roster.scoping's team rule on
Student.mentorships).

May import: roster only.
"""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from roster import scoping, services
from roster.models import LEAVING_STATUSES, Mentorship, RoleAssignment, School, SchoolClass, Student, User
from roster.roles import Role

ASSIGNED = "mentor assigned"  # history change reasons
ENDED = "mentor changed"


def works_at_school(user: User, school_id: int) -> bool:
    """Whether `user` is staff of the school: employed there, or holding a role at it or one of its classes."""
    if user.school_id == school_id:
        return True
    return RoleAssignment.objects.filter(
        Q(school_id=school_id) | Q(school_class__school_id=school_id), user=user
    ).exists()


def mentor_candidates(school_ids) -> QuerySet[User]:
    """Active staff of these schools (employed there or holding a role there): whom a school admin may pick."""
    held = RoleAssignment.objects.filter(Q(school_id__in=school_ids) | Q(school_class__school_id__in=school_ids))
    return User.objects.filter(Q(school_id__in=school_ids) | Q(pk__in=held.values("user_id")), is_active=True)


def may_assign_mentors(actor: User | None, school: School) -> bool:
    """Who assigns mentors: those who edit the school's students (its school admin); None is the system."""
    if actor is None:
        return True
    return scoping.parents_for_new(actor, Student, School.objects.filter(pk=school.pk)).exists()


def refusal(student: Student, mentor: User) -> str:
    """Why `mentor` cannot mentor `student` ("" when they can): a student who left, a mentor of another school, an
    inactive account."""
    if student.status in LEAVING_STATUSES:
        return _("This student has left the school.")
    if not mentor.is_active:
        return _("This staff account is disabled.")
    if not works_at_school(mentor, student.school_id):
        return _("This staff member does not work at the student's school.")
    return ""


def _ensure_role(actor: User | None, mentor: User, school_id: int, reason: str) -> bool:
    """Give the mentor the MENTOR role at the school unless they hold it; whether it was granted."""
    if RoleAssignment.objects.filter(user=mentor, role=Role.MENTOR, school_id=school_id).exists():
        return False
    # Nobody but a superuser grants themselves a role (roster.services.role_grant refuses, PermissionDenied).
    services.role_grant(actor=actor, user=mentor, role=Role.MENTOR, node=School.objects.get(pk=school_id))
    return True


def _assign(actor: User | None, student: Student, mentor: User, now: datetime, reason: str) -> bool:
    """The one write: end the current mentorship (if another mentor's) and start the new one. Whether it changed."""
    current = Mentorship.objects.select_for_update().filter(student=student, left_at__isnull=True).first()
    if current is not None and current.user_id == mentor.pk:
        return False
    if current is not None:
        current.left_at = now
        current._history_user, current._change_reason = actor, ENDED
        current.save(update_fields=["left_at"])
    mentorship = Mentorship(student=student, user=mentor, school_id=student.school_id, started_at=now,
                            assigned_by=actor)  # fmt: skip
    mentorship._history_user, mentorship._change_reason = actor, reason
    mentorship.save()
    return True


@transaction.atomic
def mentor_assign(*, actor: User | None, student: Student, mentor: User, now: datetime | None = None,
                  reason: str = ASSIGNED) -> bool:  # fmt: skip
    """Make `mentor` the student's mentor; whether anything changed (the same mentor again changes nothing).

    Access: the school admin of the student's school (may_assign_mentors), or the system (actor None);
    PermissionDenied otherwise. A mentor of another school, a disabled account or a student who left: ValidationError.
    Audit: history rows of the ended and the new mentorship (the actor, `reason`); the role grant's own.
    """
    if not may_assign_mentors(actor, student.school):
        raise PermissionDenied(_("You may not assign mentors at this school."))
    problem = refusal(student, mentor)
    if problem:
        raise ValidationError(problem)
    now = now or timezone.now()
    changed = _assign(actor, student, mentor, now, reason)
    _ensure_role(actor, mentor, student.school_id, reason)
    return changed


@transaction.atomic
def mentor_assign_class(*, actor: User | None, school_class: SchoolClass, mentor: User,
                        now: datetime | None = None) -> int:  # fmt: skip
    """Make `mentor` the mentor of every enrolled student of the class; how many students changed mentor.

    Access and refusals: as mentor_assign (the mentor must work at the class's school). Audit: as mentor_assign.
    """
    if not may_assign_mentors(actor, school_class.school):
        raise PermissionDenied(_("You may not assign mentors at this school."))
    if not mentor.is_active or not works_at_school(mentor, school_class.school_id):
        raise ValidationError(_("This staff member does not work at the student's school."))
    now = now or timezone.now()
    students = Student.objects.filter(school_class=school_class).exclude(status__in=LEAVING_STATUSES)
    changed = sum(_assign(actor, student, mentor, now, ASSIGNED) for student in students.order_by("pk"))
    _ensure_role(actor, mentor, school_class.school_id, ASSIGNED)
    return changed
