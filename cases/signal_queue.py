"""Signals (issue 20): everything that says "look at this student" lands in the school's triage queue through
`signal_raise`, the one way a signal is made, whatever its source (a concern, the hotline, absences, a return from
leave, a help record's review, a teacher checklist, a screening flag).

A rule that may fire again for the same episode (the third and fourth unexplained day of one absence run, a review
date read every night) passes a `key`: raising again returns the signal already there, so each episode is one signal.
`signal_raised` is sent inside the transaction that made a new signal (workflows puts a red one on the crisis path:
a red case at once and the crisis alert).

May import: roster, screening.
"""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.dispatch import Signal as DispatchSignal
from django.utils import timezone

from cases.models import Reporter, Signal, SignalStatus
from cases.tiers import due_after
from roster.models import Student, User
from screening.definitions import RiskTier

# sender=Signal (the model), signal=the new row, actor=User|None
signal_raised = DispatchSignal()

TRIAGE_STEP = "signal_triage"  # the tier rules' step that sets an open signal's due time


def signal_due_at(tier: str, raised_at: datetime, school) -> datetime:
    """When a signal of `tier` raised at `raised_at` is due to be triaged (tier rules, step `signal_triage`)."""
    return due_after(_queue_tier(tier), TRIAGE_STEP, raised_at, school)


def _queue_tier(tier: str) -> str:
    # Green says "look" without a risk (a return from leave, a review date): it waits as long as yellow.
    return RiskTier.YELLOW if tier == RiskTier.GREEN else tier


def signal_raise(
    student: Student, *, source: str, tier: str, reason: str, detail: str = "", reporter: str = Reporter.SYSTEM,
    raised_by: User | None = None, key: str | None = None, now: datetime | None = None,
    status: str = SignalStatus.OPEN, case=None,
) -> tuple[Signal, bool]:  # fmt: skip
    """The signal for `key` (or a new one), and whether it is new. Access: the caller decided the raiser may (a
    service of the source: concerns check the raiser teaches the student). Audit: the signal's history row.
    `status`/`case`: a source that is triaged elsewhere records its signal as already decided (a screening flag
    opens its case at once; its triage is the case's triage step)."""
    now = now or timezone.now()
    if key is not None:
        found = Signal.objects.filter(key=key).first()
        if found is not None:
            return found, False
    signal = Signal(
        student=student, school_id=student.school_id, source=source, tier=tier, reason=reason[:200], detail=detail,
        reporter=reporter, raised_by=raised_by, raised_at=now, key=key, status=status, case=case,
    )  # fmt: skip
    if status == SignalStatus.OPEN:
        signal.due_at = signal_due_at(tier, now, student.school)
    else:
        signal.decided_at = now
    signal._history_user = raised_by
    signal._change_reason = f"raised: {source}"
    try:
        with transaction.atomic():
            signal.save()
            signal_raised.send(sender=Signal, signal=signal, actor=raised_by)
    except IntegrityError:
        if key is None:
            raise
        return Signal.objects.get(key=key), False  # raised at the same moment by another run: one signal
    return signal, True
