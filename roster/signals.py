"""What roster announces to the apps above it, which it never imports (roster ← screening ← cases ← workflows).

`role_removed(sender=RoleAssignment, assignment=...)`: a person no longer holds a role at a node, sent inside the
transaction that removed it, with the assignment as it was (deleted, or before its role or place was changed). Its
effect on what the person sees needs nothing: `roster.scoping` reads roles afresh on every request. workflows
listens, to hand the person's open tasks back to the school's queue.

The record that follows the student (issue 19), each sent inside the transaction that made the change, so that what
the apps above do about it commits or rolls back with it:
`student_moved(sender=Student, move=SchoolMove, actor=User|None)`: a staged school move was confirmed; the Student row
now belongs to `move.to_school` (workflows starts the transfer of an active case).
`students_left(sender=Student, student_ids=[...], status=..., actor=User|None)`: students left the system (transferred
out, graduated, withdrawn: roster.models.LEAVING_STATUSES), by an import, the admin or the school-year rollover
(workflows stops their cases' clocks and gives each active case a "hand over or close" task).
`students_returned(sender=Student, student_ids=[...], actor=User|None)`: leavers are enrolled again (a rollover
undone, a status set back), so that their cases' clocks run again.

Attendance and leave (issue 20 item 6), each sent inside the transaction that stored the rows:
`absences_recorded(sender=Absence, student_ids=[...], dates=[...], actor=User|None)`: absences were stored or changed
(roster.attendance, a batch of an import at a time). cases evaluates its care rules (cases.absence_rules) and may
return the number of signals it raised, which the import report shows.
`leave_returned(sender=Leave, leave=Leave, actor=User|None)`: a student on leave (休学, medical leave) is back
(roster.leaves); cases raises the 复学评估 signal for the school's psychology teachers. 休学 is not leaving: a
leave's start and end send neither students_left nor students_returned.
May import: roster only.
"""

from __future__ import annotations

from django.dispatch import Signal

from roster.models import LEVEL_FIELD, RoleAssignment, User

role_removed = Signal()
student_moved = Signal()
students_left = Signal()
students_returned = Signal()
absences_recorded = Signal()
leave_returned = Signal()


def _held(assignment: RoleAssignment) -> tuple:
    return (assignment.user_id, assignment.role, *(getattr(assignment, f"{f}_id") for f in LEVEL_FIELD.values()))


def on_assignment_deleted(sender, instance: RoleAssignment, origin=None, **kwargs) -> None:
    """`post_delete` of RoleAssignment. A person deleted outright takes their roles and their tasks with them (staff
    are deactivated, never deleted): nothing to hand back then."""
    if isinstance(origin, User) or getattr(origin, "model", None) is User:
        return
    role_removed.send(sender=RoleAssignment, assignment=instance)


def on_assignment_saving(sender, instance: RoleAssignment, raw: bool = False, **kwargs) -> None:
    """`pre_save` of RoleAssignment: remember the row as it was, when an existing one is being changed."""
    if raw or instance._state.adding or instance.pk is None:
        return
    instance._roster_before = RoleAssignment.objects.filter(pk=instance.pk).first()


def on_assignment_saved(sender, instance: RoleAssignment, created: bool, raw: bool = False, **kwargs) -> None:
    """`post_save` of RoleAssignment: a role whose role or place changed was removed where it was."""
    before = instance.__dict__.pop("_roster_before", None)
    if created or raw or before is None or _held(before) == _held(instance):
        return
    role_removed.send(sender=RoleAssignment, assignment=before)
