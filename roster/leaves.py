"""Leave (休学, medical leave; issue 20 item 6): a student away for a while with an expected return, and the return.

`leave_record` opens a leave and sets the student's status to on leave (休学); `leave_return` records the day the
student came back, sets the status back to enrolled, and announces it (`roster.signals.leave_returned`) inside its
transaction: cases raises the 复学评估 signal for the school's psychology teachers (roster never imports cases).
休学 is not leaving (roster.leaving): neither step sends students_left or students_returned, and a case's clocks run on.

Who: the school's admin or its psychology teacher (roster.roles.EDITORS "roster.leave"), within their scope.
May import: roster only.
"""

from __future__ import annotations

from datetime import date

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from roster import scoping
from roster.models import Leave, LeaveKind, Student, StudentStatus, User
from roster.signals import leave_returned


def may_record_leave(user: User, student: Student) -> bool:
    """Whether `user` records a leave (or a return) for the student: an editor of leaves over the student's school."""
    return scoping.parents_for_new(user, Leave, Student.objects.filter(pk=student.pk)).exists()


def _check(actor: User, student: Student) -> None:
    if not may_record_leave(actor, student):
        raise PermissionDenied(_("You may not record a leave for this student."))


def leave_record_refusal(student: Student, *, starts_on: date, expected_return_on: date | None) -> str:
    """Why this leave cannot be recorded, or "" (the service and the admin's form ask the same)."""
    if student.status != StudentStatus.ACTIVE:
        return _("Only an enrolled student can go on leave; this one is %(status)s.") % {
            "status": student.get_status_display()
        }
    if expected_return_on is not None and expected_return_on < starts_on:
        return _("The expected return is before the leave starts.")
    if Leave.objects.filter(student=student, returned_on__isnull=True).exists():
        return _("This student already has a leave that has not ended.")
    return ""


def leave_return_refusal(leave: Leave, *, returned_on: date) -> str:
    """Why this return cannot be recorded, or ""."""
    if leave.returned_on is not None:
        return _("This leave has already ended.")
    if returned_on < leave.starts_on:
        return _("The return is before the leave started.")
    if returned_on > timezone.localdate():
        return _("The return cannot be recorded for a day still to come.")
    return ""


@transaction.atomic
def leave_record(
    actor: User, *, student: Student, kind: str = LeaveKind.SUSPENSION, starts_on: date,
    expected_return_on: date | None = None, reason: str = "",
) -> Leave:  # fmt: skip
    """Open a leave for an enrolled student: status on leave (休学) until the return is recorded.

    Access: the school's admin or psychology teacher (may_record_leave). Audit: history rows of the leave and the
    student, naming the actor, reason "leave recorded".
    """
    _check(actor, student)
    student = Student.objects.select_for_update().get(pk=student.pk)
    problem = leave_record_refusal(student, starts_on=starts_on, expected_return_on=expected_return_on)
    if problem:
        raise ValidationError(problem)
    leave = Leave(
        student=student, school_id=student.school_id, kind=LeaveKind(kind), starts_on=starts_on,
        expected_return_on=expected_return_on, reason=reason[:200], recorded_by=actor,
    )  # fmt: skip
    leave._history_user, leave._change_reason = actor, "leave recorded"
    leave.save()
    student.status = StudentStatus.ON_LEAVE
    student._history_user, student._change_reason = actor, "leave recorded"
    student.save(update_fields=["status"])
    return leave


@transaction.atomic
def leave_return(actor: User, *, leave: Leave, returned_on: date | None = None) -> Leave:
    """Record the student's return from an open leave: status enrolled again, and the return announced (a 复学评估
    signal for the school's psychology teachers, raised by cases).

    Access: the school's admin or psychology teacher (may_record_leave). Audit: history rows of the leave and the
    student, reason "returned from leave".
    """
    leave = Leave.objects.select_for_update().select_related("student").get(pk=leave.pk)
    _check(actor, leave.student)
    returned_on = returned_on or timezone.localdate()
    problem = leave_return_refusal(leave, returned_on=returned_on)
    if problem:
        raise ValidationError(problem)
    leave.returned_on = returned_on
    leave._history_user, leave._change_reason = actor, "returned from leave"
    leave.save(update_fields=["returned_on"])
    student = leave.student
    if student.status == StudentStatus.ON_LEAVE:
        student.status = StudentStatus.ACTIVE
        student._history_user, student._change_reason = actor, "returned from leave"
        student.save(update_fields=["status"])
    leave_returned.send(sender=Leave, leave=leave, actor=actor)
    return leave
