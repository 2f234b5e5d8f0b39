"""School moves (issue 19 item 2): a student of one school found in another school's roster file, and its review.

The student import (roster.importing) asks `MovePlanner` which of its new rows are students already on the roster at
another school: the same national student number (全国学籍号, any status, any district), or, only when neither side
has one, exactly one student of another school of the same district with the same name, birth date and gender. Such a
row is not created: it becomes a pending SchoolMove, which the receiving school's admin (or a district or city admin
over it) confirms (`move_confirm`: the Student row moves, with its history) or rejects (`move_reject`: the row is added
as a new student). Nothing is ever merged or moved by the import itself.

Everything here works on a whole file in a constant number of queries per batch of rows, never per row.
May import: roster only.
"""

from __future__ import annotations

import datetime
import logging
from collections import defaultdict
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from roster import scoping
from roster.models import (
    MoveBasis,
    MoveStatus,
    School,
    SchoolMove,
    SpecialGroup,
    Student,
    StudentStatus,
    User,
)
from roster.roles import Role
from roster.signals import student_moved

logger = logging.getLogger(__name__)

# Who decides a move: the admins over the receiving school (scoping lets the sending district's admins see it too).
DECIDERS = frozenset({Role.SCHOOL_ADMIN, Role.DISTRICT_ADMIN, Role.CITY_ADMIN})
CHUNK = 5000  # keys per IN (...) list: under SQLite's (32,766) and PostgreSQL's parameter limits with two lists a query

# The file's values a move keeps in `SchoolMove.row`: enough to move the student or to add them as a new one.
ROW_FIELDS = ("name", "gender", "birth_date", "guardian_name", "guardian_phone", "status")
_CANDIDATE_FIELDS = (
    "pk", "school_id", "school_class_id", "student_no", "status", "name", "gender", "birth_date",
    "national_id_digest", "school__district_id",
)  # fmt: skip


class MoveRefused(Exception):
    """A decision that cannot be taken (already decided, the student number taken, a note missing): nothing changed."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _chunks(items: list, size: int = CHUNK):
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- Finding moves in a file ----------------------------------------------------------------------------------


@dataclass
class Staged:
    """One row of the file that is a school move: who it matched, on what basis, and the move row it makes."""

    line: int
    candidate: dict  # the matched student's stored values (see _CANDIDATE_FIELDS)
    basis: str
    to_school: School
    to_student_no: str
    grade: int
    number: int
    row: dict  # what SchoolMove.row will hold
    existing: SchoolMove | None = None  # the pending move this refreshes


@dataclass
class MovePlan:
    staged: dict[int, Staged] = field(default_factory=dict)  # line → move
    errors: dict[int, str] = field(default_factory=dict)  # line → why the row can be neither moved nor created
    superseded: list[SchoolMove] = field(default_factory=list)  # pending moves whose row the file now creates


def national_id_holders(digests: set[str]) -> dict[str, list[dict]]:
    """Every stored student holding one of these national numbers, by number: one query per CHUNK numbers."""
    holders: dict[str, list[dict]] = defaultdict(list)
    for chunk in _chunks(sorted(d for d in digests if d)):
        for row in Student.objects.filter(national_id_digest__in=chunk).values(*_CANDIDATE_FIELDS):
            holders[row["national_id_digest"]].append(row)
    return holders


class MovePlanner:
    """Which new rows of one student file are school moves (see the module docstring).

    `file_keys`: every (school id, student number) of the file, so that a student listed in this same file at their
    own school is no candidate; `holders`: national_id_holders() of the file's numbers (the import has them already).
    """

    def __init__(self, *, file_keys: set[tuple[int, str]], holders: dict[str, list[dict]]):
        self.file_keys = file_keys
        self.holders = holders

    def plan(self, new_rows: list[tuple[int, dict]]) -> MovePlan:
        """`new_rows`: (line, cleaned values with "school") of the rows whose (school, student number) is new."""
        result = MovePlan()
        matches: dict[int, tuple[dict, str]] = {}
        for line, v in new_rows:
            digest = v.get("national_id_digest")
            if digest:
                candidate = self._by_national_id(v, digest)
                if candidate is not None:
                    matches[line] = (candidate, MoveBasis.NATIONAL_ID)
        probable = self._probable([(line, v) for line, v in new_rows if not v.get("national_id_digest")])
        # A stored student claimed by two rows of the file is nobody's probable match.
        claimed = defaultdict(list)
        for line, candidate in probable.items():
            claimed[candidate["pk"]].append(line)
        for line, candidate in probable.items():
            if len(claimed[candidate["pk"]]) == 1:
                matches[line] = (candidate, MoveBasis.PROBABLE)
        values = dict(new_rows)
        pending = self._pending(matches, new_rows)
        by_student = {m.student_id: m for m in pending}
        by_place = {(m.to_school_id, m.to_student_no): m for m in pending}
        used: set[int] = set()
        superseded: list[SchoolMove] = []
        for line, v in new_rows:
            place = (v["school"].pk, v["student_no"])
            if line not in matches:
                if place in by_place:  # the file now adds this row as a student of its own
                    superseded.append(by_place[place])
                continue
            candidate, basis = matches[line]
            mine = by_student.get(candidate["pk"])
            if mine is not None and mine.to_school_id != place[0]:
                result.errors[line] = _(
                    "This student is already waiting for the review of a move to another school: that move must be "
                    "confirmed or rejected first."
                )
                continue
            existing = mine or by_place.get(place)
            if existing is not None and existing.pk in used:
                result.errors[line] = _("Another row of this file matches the same student at another school.")
                continue
            if existing is not None:
                used.add(existing.pk)
            result.staged[line] = Staged(
                line=line, candidate=candidate, basis=basis, to_school=v["school"], to_student_no=v["student_no"],
                grade=v["grade"], number=v["number"], row=_row(line, values[line]), existing=existing,
            )  # fmt: skip
        result.superseded = [m for m in superseded if m.pk not in used]
        return result

    def _by_national_id(self, v: dict, digest: str) -> dict | None:
        """The one student of another school holding this number (an active one when several do)."""
        elsewhere = [h for h in self.holders.get(digest, ()) if h["school_id"] != v["school"].pk]
        elsewhere = [h for h in elsewhere if (h["school_id"], h["student_no"]) not in self.file_keys]
        if len(elsewhere) > 1:
            elsewhere = [h for h in elsewhere if h["status"] in (StudentStatus.ACTIVE, StudentStatus.ON_LEAVE)]
        return elsewhere[0] if len(elsewhere) == 1 else None

    def _probable(self, rows: list[tuple[int, dict]]) -> dict[int, dict]:
        """Rows without a national number whose name, birth date and gender match exactly one student without one at
        another school of the same district: one query per CHUNK rows (the name, birth date, gender index)."""
        rows = [(line, v) for line, v in rows if v.get("birth_date") and v.get("name") and v.get("gender")]
        found: dict[int, dict] = {}
        for chunk in _chunks(rows):
            districts = {v["school"].district_id for _, v in chunk}
            people: dict[tuple, list[dict]] = defaultdict(list)
            stored = Student.objects.filter(
                name__in={v["name"] for _, v in chunk},
                birth_date__in={v["birth_date"] for _, v in chunk},
                school__district_id__in=districts,
                national_id_digest="",
            ).values(*_CANDIDATE_FIELDS)
            for row in stored:
                if (row["school_id"], row["student_no"]) not in self.file_keys:
                    people[(row["school__district_id"], row["name"], row["birth_date"], row["gender"])].append(row)
            for line, v in chunk:
                key = (v["school"].district_id, v["name"], v["birth_date"], v["gender"])
                others = [p for p in people.get(key, ()) if p["school_id"] != v["school"].pk]
                if len(others) == 1:
                    found[line] = others[0]
        return found

    def _pending(self, matches: dict[int, tuple[dict, str]], new_rows: list[tuple[int, dict]]) -> list[SchoolMove]:
        """Pending moves of the matched students, and those to the file's new places (a re-import refreshes them)."""
        student_ids = sorted({candidate["pk"] for candidate, _basis in matches.values()})
        places = [(v["school"].pk, v["student_no"]) for _, v in new_rows]
        found: dict[int, SchoolMove] = {}
        pending = SchoolMove.objects.filter(status=MoveStatus.PENDING)
        for chunk in _chunks(student_ids):
            found.update((m.pk, m) for m in pending.filter(student_id__in=chunk))
        for chunk in _chunks(places):
            wanted = set(chunk)
            q = Q(to_school_id__in={s for s, _ in chunk}, to_student_no__in={n for _, n in chunk})
            found.update((m.pk, m) for m in pending.filter(q) if (m.to_school_id, m.to_student_no) in wanted)
        return list(found.values())


def _row(line: int, v: dict) -> dict:
    row = {"line": line, "grade": v["grade"], "number": v["number"]}
    for name in ROW_FIELDS:
        if name in v and v[name] is not None:
            row[name] = v[name].isoformat() if name == "birth_date" else v[name]
    if "special_groups" in v and v["special_groups"] is not None:
        row["special_groups"] = list(v["special_groups"])  # codes: stable across databases
    if v.get("national_id_digest"):
        row["national_id_digest"], row["national_id_tail"] = v["national_id_digest"], v["national_id_tail"]
    return row


def moves_write(plan: MovePlan, *, class_ids: dict, actor: User | None, reason: str, import_job_id: int | None) -> int:
    """Write a file's staged moves: new ones created, pending ones refreshed (a re-import never duplicates one), moves
    whose row the file now adds as a new student closed as rejected. All in bulk, with history.

    Access: the import checked the rows' schools are the actor's. Audit: history rows with the actor and the file name.
    """
    now = timezone.now()
    new, refreshed = [], []
    for s in plan.staged.values():
        c = s.candidate
        values = {
            "student_id": c["pk"], "from_school_id": c["school_id"], "from_class_id": c["school_class_id"],
            "from_student_no": c["student_no"], "from_status": c["status"], "to_school_id": s.to_school.pk,
            "to_class_id": class_ids[(s.to_school.pk, s.grade, s.number)], "to_student_no": s.to_student_no,
            "row": s.row, "basis": s.basis, "import_job_id": import_job_id,
        }  # fmt: skip
        if s.existing is None:
            new.append(SchoolMove(created_by=actor, **values))
            continue
        move = s.existing
        if all(getattr(move, name) == value for name, value in values.items() if name != "import_job_id"):
            continue  # the same file again: nothing to refresh
        for name, value in values.items():
            setattr(move, name, value)
        refreshed.append(move)
    for move in plan.superseded:
        move.status, move.decided_by, move.decided_at = MoveStatus.REJECTED, actor, now
        move.note = _("The roster file now adds this row as a new student.")
        refreshed.append(move)
    if new:
        bulk_create_with_history(new, SchoolMove, default_user=actor, default_change_reason=reason)
    if refreshed:
        fields = [
            "student", "from_school", "from_class", "from_student_no", "from_status", "to_class", "to_student_no",
            "row", "basis", "import_job", "status", "decided_by", "decided_at", "note",
        ]  # fmt: skip
        bulk_update_with_history(refreshed, SchoolMove, fields, default_user=actor, default_change_reason=reason)
    return len(plan.staged)


# --- Deciding -------------------------------------------------------------------------------------------------


def may_decide(user, move: SchoolMove) -> bool:
    """The receiving school's admin, or a district or city admin over it."""
    if getattr(user, "is_superuser", False) and user.is_active:
        return True
    return scoping.holds_over(user, DECIDERS, move.to_school)


def pending_moves_to_decide(user):
    """The pending moves this user decides (into schools where they hold an admin role): the admin index counts them."""
    schools = scoping.within_roles(user, School, DECIDERS)
    return SchoolMove.objects.filter(status=MoveStatus.PENDING, to_school__in=schools.values("pk"))


def _locked(actor, move: SchoolMove) -> SchoolMove:
    move = SchoolMove.objects.select_for_update().select_related("to_school", "from_school").get(pk=move.pk)
    if not may_decide(actor, move):
        raise PermissionDenied
    if move.status != MoveStatus.PENDING:
        raise MoveRefused(_("Already decided by someone else."))
    taken = Student.objects.filter(school_id=move.to_school_id, student_no=move.to_student_no)
    if taken.exclude(pk=move.student_id).exists():
        raise MoveRefused(
            _("%(school)s already has a student with the student number %(no)s: nothing was changed.")
            % {"school": move.to_school, "no": move.to_student_no}
        )
    return move


def _decided(move: SchoolMove, actor, status: str, note: str, reason: str) -> None:
    move.status, move.decided_by, move.decided_at, move.note = status, actor, timezone.now(), note
    move._history_user, move._change_reason = actor, reason[:100]
    move.save(update_fields=["status", "decided_by", "decided_at", "note"])


@transaction.atomic
def move_confirm(actor: User, move: SchoolMove, note: str = "") -> SchoolMove:
    """The same student: their Student row moves to the receiving school, class and student number, enrolled.

    Access: may_decide (404 in the admin before this is called). Refused (MoveRefused, nothing changed) when the move
    is decided already or the receiving school has the student number. Audit: the student's and the move's history
    (actor, a reason naming both schools); `student_moved` sent inside the transaction.
    """
    move = _locked(actor, move)
    student = Student.objects.select_for_update().get(pk=move.student_id)
    reason = _("School move confirmed: %(from)s → %(to)s") % {"from": move.from_school, "to": move.to_school}
    student.school_id, student.school_class_id = move.to_school_id, move.to_class_id
    student.student_no = move.to_student_no
    status = move.row.get("status")
    student.status = status if status == StudentStatus.ON_LEAVE else StudentStatus.ACTIVE
    fields = ["school", "school_class", "student_no", "status"]
    if move.row.get("national_id_digest"):
        student.national_id_digest = move.row["national_id_digest"]
        student.national_id_tail = move.row["national_id_tail"]
        fields += ["national_id_digest", "national_id_tail"]
    student._history_user, student._change_reason = actor, reason[:100]
    student.save(update_fields=fields)
    _decided(move, actor, MoveStatus.CONFIRMED, note, reason)
    logger.info("school move %s confirmed by user %s", move.pk, actor.pk)
    student_moved.send(sender=Student, move=move, actor=actor)
    return move


@transaction.atomic
def move_reject(actor: User, move: SchoolMove, note: str) -> Student:
    """Not the same student: the receiving file's row is added as a new student, as the import would have added it.

    The national number of a move matched on it is not given to the new student (it belongs to the other record);
    the note says why the two are different people, and is required.
    Access, refusals and audit as move_confirm (no signal: nothing moved).
    """
    note = (note or "").strip()
    if not note:
        raise MoveRefused(_("Say why this is not the same student (a note is required)."))
    move = _locked(actor, move)
    row = move.row
    fields = {name: row[name] for name in ROW_FIELDS if name in row}
    if fields.get("birth_date"):
        fields["birth_date"] = datetime.date.fromisoformat(fields["birth_date"][:10])
    if move.basis != MoveBasis.NATIONAL_ID and row.get("national_id_digest"):
        fields["national_id_digest"], fields["national_id_tail"] = row["national_id_digest"], row["national_id_tail"]
    reason = _("Not the same student as at %(from)s: added to %(to)s") % {
        "from": move.from_school,
        "to": move.to_school,
    }
    student = Student(
        school_id=move.to_school_id, school_class_id=move.to_class_id, student_no=move.to_student_no, **fields
    )
    student._history_user, student._change_reason = actor, reason[:100]
    student.save()
    codes = row.get("special_groups") or []
    if codes:
        student.special_groups.set(SpecialGroup.objects.filter(code__in=codes))
    _decided(move, actor, MoveStatus.REJECTED, note, reason)
    logger.info("school move %s rejected by user %s", move.pk, actor.pk)
    return student
