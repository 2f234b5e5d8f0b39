"""Return from leave (复学评估, issue 20 item 6): a student back from 休学 or medical leave is a signal for the school's
psychology teachers, who assess the return in triage, and each of them is told.

roster records the return (roster.leaves.leave_return) and announces it (`roster.signals.leave_returned`);
`on_leave_returned` (connected in cases.apps) raises the signal here. One signal per leave (key
`leave_return:<leave id>`): recording the same return twice raises nothing more.
May import: roster, screening.
"""

from __future__ import annotations

from django.conf import settings
from django.urls import NoReverseMatch, reverse
from django.utils import translation
from django.utils.translation import gettext as _

from cases.models import Signal, SignalSource
from cases.signal_queue import signal_raise
from roster.masking import mask_name
from roster.models import Leave, RoleAssignment
from roster.notifications import notify
from roster.roles import Role
from screening.definitions import RiskTier

NOTIFY_KIND = "leave_return"


def leave_return_key(leave: Leave) -> str:
    return f"leave_return:{leave.pk}"


def leave_return_signal_raise(leave: Leave) -> tuple[Signal, bool]:
    """The 复学评估 signal of a leave that ended, and whether it is new; a new one is told to every psychology teacher
    of the student's school (in-app notification, masked name, link to the signal).

    Access: the system, after roster.leaves.leave_return checked who recorded the return. Audit: the signal's history
    row; the notifications.
    """
    student = leave.student
    with translation.override(settings.LANGUAGE_CODE):  # stored text, in the product's language
        reason = _("Return from leave: assess the return (复学评估)")
        detail = _("%(kind)s from %(start)s, back on %(back)s.") % {
            "kind": leave.get_kind_display(), "start": leave.starts_on.isoformat(),
            "back": leave.returned_on.isoformat() if leave.returned_on else "",
        }  # fmt: skip
        # Green: "look at this student" without a risk; it waits in the queue as long as yellow (cases.signal_queue).
        signal, created = signal_raise(
            student, source=SignalSource.LEAVE_RETURN, tier=RiskTier.GREEN, reason=reason, detail=detail,
            key=leave_return_key(leave),
        )  # fmt: skip
        if created:
            teachers = RoleAssignment.objects.filter(
                role=Role.PSYCHOLOGY_TEACHER, school_id=student.school_id, user__is_active=True
            ).values_list("user_id", flat=True)
            klass = str(student.school_class) if student.school_class_id else ""
            notify(
                set(teachers), kind=NOTIFY_KIND, subject_key=leave_return_key(leave),
                title=_("A student is back from leave: assess the return (复学评估)"),
                body=_("%(name)s, %(class)s, is back from leave on %(back)s.") % {
                    "name": mask_name(student.name), "class": klass, "back": leave.returned_on.isoformat(),
                },
                link=_signal_link(signal),
            )  # fmt: skip
    return signal, created


def _signal_link(signal: Signal) -> str:
    try:
        return reverse("care:signal_detail", args=[signal.pk])
    except NoReverseMatch:  # the queue's pages are workflows'; without them the notification has no link
        return ""


def on_leave_returned(sender, *, leave: Leave, actor=None, **kwargs) -> None:
    """`roster.signals.leave_returned`, inside the transaction that recorded the return."""
    leave_return_signal_raise(leave)
