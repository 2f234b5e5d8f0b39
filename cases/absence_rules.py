"""Absences that become signals (issue 20 item 6): the care rules (cases.care_rules) applied to stored absences.

roster stores the school's daily lists (roster.attendance) and announces them (`roster.signals.absences_recorded`);
`on_absences_recorded` (connected in cases.apps) calls `absence_signals_raise` for the students and days written.

What counts. An absence of a counted type (care_rules.yaml `counted`: 旷课, 未说明) is a *counted day*. An absence of
another type (病假, 事假) is excused: it counts for nothing and breaks nothing (a student away sick between two
unexplained days has still not been seen at school: the two unexplained days stay one run). A day the school
recorded is taken as a school day for that student, whatever the calendar says; the days between two records are
read on the calendar of the student's district (roster.duty.SchoolCalendar: weekends, China's public holidays, make-up
days, the district's CalendarDay rows).

Episodes, one signal each (Signal.key):
- *Run* (rule `consecutive`, default 3): the counted days of a student, in order, with no school day between two
  records on which the student was present (a school day without an absence row). Weekends, holidays and excused
  days in between neither break the run nor count. A run of at least N counted days is one episode, keyed
  `absence_run:<student id>:<first counted day>`. It grows day by day without a second signal; a school day present
  ends it, and the next counted day starts a new run.
- *Cluster* (rule `window`, default 5 in 30 days): a counted day d *fires* when the window of `days` calendar days
  ending on d (d included) holds at least M counted days. Firing days less than `days` apart belong to one cluster
  (their windows share absences); a firing day `days` or more after the previous one starts a new cluster. A cluster
  is one episode, keyed `absence_window:<student id>:<its first firing day>`. A cluster whose first firing window
  holds a day of a run episode is the same absences seen twice: it raises nothing (the run's signal stands for it).
- An episode already raised under another first day (its days were imported out of order, e.g. an earlier day added
  later) is recognised by overlap: a stored key of the same rule whose day lies within the episode's days.

When. An episode is raised by the evaluation that completes it: its threshold day (the N-th counted day of a run,
the first firing day of a cluster) is on or after `since` (the first day the import wrote). Days read: from `since`
less the rules' lookback (care_rules.AbsenceRules.lookback_days) to `on`; a run whose start lies further back is keyed
by its first counted day within that span.

A corrected list (旷课 changed to 病假) never withdraws a signal: the psychology teacher records "no action" in triage.
May import: roster, screening (cases models and services are this app's).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from cases.care_rules import AbsenceRules, absence_rules
from cases.models import Signal, SignalSource
from cases.signal_queue import signals_raise_bulk
from roster.duty import SchoolCalendar
from roster.models import Absence, Student

logger = logging.getLogger(__name__)

RUN, WINDOW = "run", "window"
KEY_PREFIX = {RUN: "absence_run", WINDOW: "absence_window"}
CHUNK = 2000  # students per query


@dataclass(frozen=True)
class Episode:
    student_id: int
    rule: str  # RUN or WINDOW
    anchor: date  # the key's day: a run's first counted day, a cluster's first firing day
    threshold: date  # the day it became an episode
    days: tuple[date, ...]  # the counted days it is made of (a cluster: those of its first firing window)

    @property
    def key(self) -> str:
        return f"{KEY_PREFIX[self.rule]}:{self.student_id}:{self.anchor.isoformat()}"


class SchoolDays:
    """A district's school days over a span of dates, read once: how many lie strictly between two dates."""

    def __init__(self, district_id: int, first: date, last: date):
        calendar = SchoolCalendar(district_id)
        calendar.preload(first, last)
        self.first = first
        self.count = [0]  # count[i]: school days in [first, first + i - 1]
        day = first
        while day <= last:
            self.count.append(self.count[-1] + calendar.is_school_day(day))
            day += timedelta(days=1)

    def _upto(self, day: date) -> int:
        """School days in [first, day]."""
        index = (day - self.first).days + 1
        return self.count[max(0, min(index, len(self.count) - 1))]

    def between(self, earlier: date, later: date) -> int:
        return max(0, self._upto(later - timedelta(days=1)) - self._upto(earlier))


def runs(records: list[tuple[date, bool]], school_days: SchoolDays, threshold: int) -> list[list[date]]:
    """The runs of counted days (lists of days) of one student's records (day, counted), sorted by day; only the runs
    of at least `threshold` counted days."""
    found, current, previous = [], [], None
    for day, counted in records:
        if previous is not None and current and school_days.between(previous, day):
            if len(current) >= threshold:
                found.append(current)
            current = []
        if counted:
            current.append(day)
        previous = day
    if len(current) >= threshold:
        found.append(current)
    return found


def clusters(counted: list[date], days: int, absences: int) -> list[tuple[date, tuple[date, ...]]]:
    """The clusters of a student's counted days (sorted): (first firing day, the counted days of its window)."""
    found, low, last_fire = [], 0, None
    for high, day in enumerate(counted):
        while counted[low] <= day - timedelta(days=days):
            low += 1
        if high - low + 1 < absences:
            continue
        if last_fire is None or (day - last_fire).days >= days:
            found.append((day, tuple(counted[low : high + 1])))
        last_fire = day
    return found


def student_episodes(
    student_id: int, records: list[tuple[date, bool]], school_days: SchoolDays, rules: AbsenceRules
) -> list[Episode]:
    """Every episode of one student's records (whatever `since`): the pure part of the rules."""
    episodes = []
    run_days: set[date] = set()
    if rules.consecutive:
        n = rules.consecutive.school_days
        for run in runs(records, school_days, n):
            episodes.append(Episode(student_id, RUN, run[0], run[n - 1], tuple(run)))
            run_days.update(run)
    if rules.window:
        counted = [day for day, is_counted in records if is_counted]
        for fired, window in clusters(counted, rules.window.days, rules.window.absences):
            if run_days.intersection(window):
                continue
            episodes.append(Episode(student_id, WINDOW, fired, fired, window))
    return episodes


def _records(student_ids: list[int], first: date, last: date, counted: frozenset[str]) -> dict[int, list]:
    """student id → [(day, counted)] sorted by day, from first to last: one query per CHUNK students."""
    records: dict[int, list] = defaultdict(list)
    for start in range(0, len(student_ids), CHUNK):
        chunk = student_ids[start : start + CHUNK]
        rows = Absence.objects.filter(student_id__in=chunk, date__range=(first, last)).values_list(
            "student_id", "date", "kind"
        )
        for student_id, day, kind in rows.order_by("student_id", "date"):
            records[student_id].append((day, kind in counted))
    return records


def _stored_days(student_ids: set[int]) -> dict[tuple[int, str], set[date]]:
    """(student id, rule) → the days in the keys of the absence signals already raised for them."""
    rule_of = {prefix: rule for rule, prefix in KEY_PREFIX.items()}
    stored: dict[tuple[int, str], set[date]] = defaultdict(set)
    ids = sorted(student_ids)
    for start in range(0, len(ids), CHUNK):
        signals = Signal.objects.filter(source=SignalSource.ABSENCE, student_id__in=ids[start : start + CHUNK])
        for student_id, key in signals.exclude(key=None).values_list("student_id", "key"):
            prefix, _student, day = key.rsplit(":", 2)
            if prefix in rule_of:
                stored[(student_id, rule_of[prefix])].add(date.fromisoformat(day))
    return stored


def absence_signals_raise(student_ids, *, on: date | None = None, since: date | None = None) -> int:
    """Raise the absence signals of the episodes (module docstring) completed on or after `since` (default `on`, default
    today) for these students; returns how many signals were new.

    Access: the system (the attendance import's announcement, the demo). Audit: each signal's history row.
    Queries: a few per CHUNK students and one calendar read per district, then the new
    episodes' signals in bulk (cases.signal_queue.signals_raise_bulk).
    """
    rules = absence_rules()
    if not rules.consecutive and not rules.window:
        return 0
    on = on or timezone.localdate()
    since = min(since or on, on)
    first = since - timedelta(days=rules.lookback_days)
    ids = sorted(set(student_ids))
    records = _records(ids, first, on, rules.counted)
    # Only a student with a counted day from `since` on can have an episode completed then.
    concerned = [sid for sid, rows in records.items() if any(c and day >= since for day, c in rows)]
    if not concerned:
        return 0
    district_of = {}
    for start in range(0, len(concerned), CHUNK):
        chunk = concerned[start : start + CHUNK]
        district_of.update(Student.objects.filter(pk__in=chunk).values_list("pk", "school__district_id"))
    calendars = {d: SchoolDays(d, first, on) for d in set(district_of.values())}
    episodes = [
        episode
        for sid in concerned
        for episode in student_episodes(sid, records[sid], calendars[district_of[sid]], rules)
        if episode.threshold >= since
    ]
    if not episodes:
        return 0
    stored = _stored_days({e.student_id for e in episodes})
    new = [e for e in episodes if not any(e.days[0] <= d <= e.days[-1] for d in stored.get((e.student_id, e.rule), ()))]
    return _raise(new, rules)


def _raise(episodes: list[Episode], rules: AbsenceRules) -> int:
    students = Student.objects.select_related("school__district").in_bulk({e.student_id for e in episodes})
    specs = []
    with translation.override(settings.LANGUAGE_CODE):  # stored text, in the product's language
        for episode in episodes:
            if episode.rule == RUN:
                tier = rules.consecutive.tier
                reason = _("Unexcused absence on %(days)d school days in a row") % {
                    "days": rules.consecutive.school_days
                }
            else:
                tier = rules.window.tier
                reason = _("%(absences)d unexcused absences within %(days)d days") % {
                    "absences": rules.window.absences, "days": rules.window.days,
                }  # fmt: skip
            detail = _("Unexcused absences (旷课, 未说明) on: %(dates)s") % {
                "dates": "、".join(day.isoformat() for day in episode.days)
            }
            specs.append({"student": students[episode.student_id], "source": SignalSource.ABSENCE, "tier": tier,
                          "reason": reason, "detail": detail, "key": episode.key})  # fmt: skip
    raised = signals_raise_bulk(specs)
    logger.info("absence rules: %s signals raised", raised)
    return raised


def on_absences_recorded(sender, *, student_ids, dates, actor=None, **kwargs) -> int:
    """`roster.signals.absences_recorded`: check the rules for the students and days just stored (read up to today,
    so that an earlier day added later sees the episode it joins)."""
    return absence_signals_raise(student_ids, on=max(max(dates), timezone.localdate()), since=min(dates))
