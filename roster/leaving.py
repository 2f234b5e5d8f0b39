"""Students leaving the system and coming back (issue 19 item 5): the one place a status change is announced.

A student whose status goes from enrolled or on leave (休学) to one of LEAVING_STATUSES (转出, 毕业, 退学) has left:
`students_left` is sent, once per status, so that the apps above stop their cases' clocks. A leaver set back to
enrolled has returned: `students_returned`. The roster import, the student admin and the school-year rollover all
report their status changes here, inside the transaction that wrote them.
May import: roster only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from roster.models import LEAVING_STATUSES, Student, StudentStatus, User
from roster.signals import students_left, students_returned

_STAYING = (StudentStatus.ACTIVE, StudentStatus.ON_LEAVE)


@dataclass
class StatusChanges:
    left: dict[str, list[int]] = field(default_factory=dict)  # leaving status → student ids
    returned: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.left or self.returned)


def students_status_changed(*, changes: Iterable[tuple[int, str, str]], actor: User | None) -> StatusChanges:
    """Announce the leavers and returners among `changes` (student id, status before, status now).

    Call inside the transaction that wrote the changes: the receivers' work commits or rolls back with them. One
    `students_left` per leaving status and one `students_returned` per call, whatever the number of students.
    Access: the caller wrote the changes (and checked its scope). Audit: the callers' history rows; nothing here.
    """
    result = StatusChanges()
    for student_id, before, now in changes:
        if before in _STAYING and now in LEAVING_STATUSES:
            result.left.setdefault(str(now), []).append(student_id)
        elif before in LEAVING_STATUSES and now == StudentStatus.ACTIVE:
            result.returned.append(student_id)
    for status, student_ids in result.left.items():
        students_left.send(sender=Student, student_ids=student_ids, status=status, actor=actor)
    if result.returned:
        students_returned.send(sender=Student, student_ids=result.returned, actor=actor)
    return result
