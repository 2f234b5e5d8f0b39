"""One archive per student (一生一档, issue 19 item 6): the student's whole story across schools and school years, as
one list: every screening (where and in which school year it was taken), every case (its school, opened, closed,
status, and the case it follows), every school move and case transfer (date, from → to).

Each part is readable by today's rules for the reader (roster.scoping), never by where it happened:
- screenings: the results the reader reads now (they follow the student's current school: the receiving school's
  psychology teacher reads the screenings taken at the earlier school; the earlier school no longer does);
- cases: a case the reader may read is shown in full (tier, status, link); a case they may not read (an earlier
  case at another school) is shown only to a reader of the student's record today (psychology teachers and above of
  the student's current school, cases.access.reads_student), as a line "case at <school>, <school year>, <status>":
  no tier, no link, nothing written in it. Anyone else sees nothing of it;
- moves and transfers: school names and dates only, for readers of the student's record (a transfer of a case the
  reader reads is shown to them too).
A constant number of queries whatever the length of the story. The caller has checked the reader may see what the
page is about (the student for the individual report, the case for its page) and logs the reading.
May import: roster, screening, cases.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from cases.models import Case, CaseTransfer
from roster import scoping
from roster.models import MoveStatus, School, SchoolMove, Student
from screening.definitions import RiskTier
from screening.models import ScreeningResult

SCREENING, CASE, MOVE, TRANSFER = "screening", "case", "move", "transfer"
KIND_LABELS = {SCREENING: _("Screening"), CASE: _("Case"), MOVE: _("School move"), TRANSFER: _("Case transfer")}
SCHOOL_YEAR_STARTS = 9  # September: a Chinese school year runs from autumn to summer ("2025-2026")


def school_year_of(moment: datetime) -> str:
    """The school year a moment falls in, as the campaigns write it: "2025-2026" from September 2025 to August 2026."""
    day = timezone.localtime(moment).date() if timezone.is_aware(moment) else moment.date()
    start = day.year if day.month >= SCHOOL_YEAR_STARTS else day.year - 1
    return f"{start}-{start + 1}"


@dataclass(frozen=True)
class ArchiveScreening:
    result_id: int
    campaign: str
    school_year: str
    submitted_at: datetime
    school: str  # where the student was when they answered
    tier: str
    tier_label: str


@dataclass
class ArchiveCase:
    case_id: int
    school: str
    school_year: str  # the school year it opened in
    opened_at: datetime
    closed_at: datetime | None
    status: str
    status_label: str
    readable: bool  # False: the reader sees that it exists, nothing more (no tier, no link)
    tier: str = ""
    tier_label: str = ""
    follows_id: int | None = None
    url: str = ""  # the case page, set by workflows for a readable case


@dataclass(frozen=True)
class ArchiveMove:
    kind: str  # MOVE or TRANSFER
    at: datetime
    from_school: str
    to_school: str
    status_label: str = ""  # a transfer's status (waiting, accepted, cancelled)
    case_id: int | None = None  # a transfer's case


@dataclass(frozen=True)
class Entry:
    """One line of the story, newest first: `item` is an ArchiveScreening, ArchiveCase or ArchiveMove."""

    kind: str
    at: datetime
    item: object

    @property
    def kind_label(self) -> str:
        return str(KIND_LABELS[self.kind])


@dataclass
class Archive:
    screenings: list[ArchiveScreening] = field(default_factory=list)
    cases: list[ArchiveCase] = field(default_factory=list)
    moves: list[ArchiveMove] = field(default_factory=list)
    schools: int = 0  # how many schools the story crosses (for a heading)

    @property
    def entries(self) -> list[Entry]:
        items = [
            *(Entry(SCREENING, s.submitted_at, s) for s in self.screenings),
            *(Entry(CASE, c.opened_at, c) for c in self.cases),
            *(Entry(m.kind, m.at, m) for m in self.moves),
        ]
        return sorted(items, key=lambda e: e.at, reverse=True)

    def case(self, case_id: int | None) -> ArchiveCase | None:
        return next((c for c in self.cases if c.case_id == case_id), None)

    def followed_by(self, case_id: int) -> list[ArchiveCase]:
        return [c for c in self.cases if c.follows_id == case_id]


class _SchoolsAt:
    """Which school the student was at, at any moment: from their history rows (every move and import writes one)."""

    def __init__(self, student: Student):
        rows = list(
            Student.history.filter(id=student.pk).order_by("history_date", "history_id")
            .values_list("history_date", "school_id")
        )  # fmt: skip
        self.moments = [at for at, _school in rows]
        self.schools = [school for _at, school in rows]
        self.current = student.school_id

    def at(self, moment: datetime) -> int:
        index = bisect_right(self.moments, moment) - 1
        if index >= 0:
            return self.schools[index]
        return self.schools[0] if self.schools else self.current  # before its first row: where it was first seen

    def ids(self) -> set[int]:
        return {*self.schools, self.current}


def student_archive(user, student: Student, *, reads_student: bool) -> Archive:
    """The student's story as `user` may read it today (the module docstring's rules). `reads_student`: whether the
    user reads the student's record (cases.access.reads_student), which the caller knows already. Seven queries."""
    results = list(
        scoping.visible(user, ScreeningResult).filter(student=student).select_related("campaign")
        .order_by("-submitted_at", "-pk")
    )  # fmt: skip
    places = _SchoolsAt(student)
    cases = list(Case.objects.filter(student=student).order_by("-opened_at", "-pk"))
    readable = set(scoping.visible(user, Case).filter(student=student).values_list("pk", flat=True))
    moves = (
        list(SchoolMove.objects.filter(student=student, status=MoveStatus.CONFIRMED).order_by("decided_at", "pk"))
        if reads_student else []
    )  # fmt: skip
    transfers = [
        t for t in CaseTransfer.objects.filter(case__student=student).order_by("requested_at", "pk")
        if reads_student or t.case_id in readable
    ]  # fmt: skip
    school_ids = places.ids() | {c.school_id for c in cases}
    school_ids |= {pk for m in moves for pk in (m.from_school_id, m.to_school_id)}
    school_ids |= {pk for t in transfers for pk in (t.from_school_id, t.to_school_id)}
    names = dict(School.objects.filter(pk__in=school_ids).values_list("pk", "name"))

    archive = Archive()
    for result in results:
        archive.screenings.append(
            ArchiveScreening(
                result.pk, result.campaign.name, result.campaign.school_year, result.submitted_at,
                names.get(places.at(result.submitted_at), ""), result.tier, str(RiskTier(result.tier).label),
            )
        )  # fmt: skip
    for case in cases:
        shown = case.pk in readable
        if not shown and not reads_student:
            continue
        line = ArchiveCase(
            case.pk, names.get(case.school_id, ""), school_year_of(case.opened_at), case.opened_at, case.closed_at,
            case.status, str(case.get_status_display()), readable=shown,
        )  # fmt: skip
        if shown:
            line.tier, line.tier_label, line.follows_id = case.tier, str(case.get_tier_display()), case.follows_id
        archive.cases.append(line)
    for move in moves:
        at = move.decided_at or move.created_at
        archive.moves.append(
            ArchiveMove(MOVE, at, names.get(move.from_school_id, ""), names.get(move.to_school_id, ""))
        )
    for transfer in transfers:
        archive.moves.append(
            ArchiveMove(
                TRANSFER, transfer.accepted_at or transfer.requested_at, names.get(transfer.from_school_id, ""),
                names.get(transfer.to_school_id, ""), str(transfer.get_status_display()), transfer.case_id,
            )
        )  # fmt: skip
    shown = {line.case_id for line in archive.cases}
    for line in archive.cases:  # "follows #N" only where the reader may know of case N
        if line.follows_id not in shown:
            line.follows_id = None
    archive.schools = len(({s.school for s in archive.screenings} | {c.school for c in archive.cases}) - {""})
    return archive
