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

# sender=Signal (the model), instance=the new row, actor=User|None. (Not `signal=`: Django's dispatcher passes the
# dispatcher itself to every receiver under that name.)
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
            signal_raised.send(sender=Signal, instance=signal, actor=raised_by)
    except IntegrityError:
        if key is None:
            raise
        return Signal.objects.get(key=key), False  # raised at the same moment by another run: one signal
    return signal, True


def signals_raise_bulk(specs: list[dict], now: datetime | None = None) -> int:
    """`signal_raise` for many system signals at once (a city's attendance list: thousands of new episodes), each
    spec a dict of signal_raise's keyword arguments with `student` (its school loaded) and a `key`. Returns how many
    were new. Queries: one for the keys already raised, one per district and tier for the due times, then bulk
    inserts of the rows and their history; `signal_raised` is sent for each new row, as one by one.
    Access: the system. Audit: a history row per signal, as one by one."""
    now = now or timezone.now()
    keys = [spec["key"] for spec in specs]
    taken = set()
    for start in range(0, len(keys), 2000):
        taken |= set(Signal.objects.filter(key__in=keys[start : start + 2000]).values_list("key", flat=True))
    due: dict[tuple[str, int], datetime] = {}
    fresh, seen = [], set()
    for spec in specs:
        key = spec["key"]
        if key in taken or key in seen:
            continue
        seen.add(key)
        student = spec["student"]
        tier = spec["tier"]
        slot = (tier, student.school.district_id)
        if slot not in due:
            due[slot] = signal_due_at(tier, now, student.school)  # the district's calendar: same for its schools
        fresh.append(
            Signal(
                student=student,
                school_id=student.school_id,
                source=spec["source"],
                tier=tier,
                reason=spec["reason"][:200],
                detail=spec.get("detail", ""),
                reporter=Reporter.SYSTEM,
                raised_at=now,
                key=key,
                status=SignalStatus.OPEN,
                due_at=due[slot],
            )  # fmt: skip
        )
    if not fresh:
        return 0
    try:
        with transaction.atomic():
            Signal.objects.bulk_create(fresh, batch_size=1000)
            if any(s.pk is None for s in fresh):  # a backend that does not return keys: read them back
                ids = dict(Signal.objects.filter(key__in=[s.key for s in fresh]).values_list("key", "pk"))
                for s in fresh:
                    s.pk = s.id = ids[s.key]
            Signal.history.bulk_history_create(fresh, default_change_reason=f"raised: {fresh[0].source}",
                                               default_date=now, batch_size=1000)  # fmt: skip
            for signal in fresh:
                signal_raised.send(sender=Signal, instance=signal, actor=None)
    except IntegrityError:
        # Another run raised some of them meanwhile: one by one, each finding the other's row.
        return sum(signal_raise(s.student, source=s.source, tier=s.tier, reason=s.reason, detail=s.detail,
                                key=s.key, now=now)[1] for s in fresh)  # fmt: skip
    return len(fresh)
