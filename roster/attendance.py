"""Attendance import (issue 20 item 6): the school's daily absence list (学校代码, 学号, 日期, 类型) as Absence rows.

The same path as the roster import (roster.importing): the same readers and encodings (XLSX, XLS, CSV in UTF-8,
UTF-8 with BOM or GBK/GB18030), header mapping (Chinese first, English aliases), per-row errors, dry run, "only the
valid rows", batches in their own transactions on the background path, and the admin's upload → preview → confirm
of roster.import_jobs (ImportKind.ATTENDANCE). A file-level refusal (encoding, missing columns) writes nothing.

Upsert on (student, date): a row already stored with the same 类型 is unchanged (nothing written), a changed 类型
updates the row, a new one is inserted, in bulk (`bulk_create(update_conflicts=True)`, SQLite and PostgreSQL).
Row errors: an unknown school or one outside the importer's scope, an unknown student number, a student who has left
(转出, 毕业, 退学: only enrolled students and students on leave have absences), a bad or future date, an unknown 类型,
a (student, date) twice in the file (both lines).

After each batch is stored, `roster.signals.absences_recorded` is sent inside its transaction with the students and
dates written; the care rules run in the layer above (cases.absence_rules) and return how many signals they raised.
May import: roster only.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from roster.importing import SCHOOL_CODE, Column, _Import, register_importer
from roster.models import LEAVING_STATUSES, Absence, AbsenceKind, Student, StudentStatus
from roster.normalize import CellError, clean_digits, clean_identifier, parse_choice, parse_date
from roster.signals import absences_recorded

ATTENDANCE_COLUMNS = [
    SCHOOL_CODE,
    Column("student_no", "学号", ("student number", "student_no")),
    Column("date", "日期", ("date", "缺勤日期", "absence date")),
    Column("kind", "类型", ("type", "kind", "缺勤类型", "absence type")),
]
_BY_FIELD = {c.field: c for c in ATTENDANCE_COLUMNS}

# The 类型 a list may say, Chinese first: what each is stored as (roster.models.AbsenceKind).
KIND_LABELS = {
    "病假": AbsenceKind.SICK,
    "事假": AbsenceKind.PERSONAL,
    "旷课": AbsenceKind.TRUANCY,
    "未说明": AbsenceKind.UNEXPLAINED,
    "无故缺勤": AbsenceKind.TRUANCY,
    "原因不明": AbsenceKind.UNEXPLAINED,
    "sick": AbsenceKind.SICK,
    "sick leave": AbsenceKind.SICK,
    "personal": AbsenceKind.PERSONAL,
    "personal leave": AbsenceKind.PERSONAL,
    "truancy": AbsenceKind.TRUANCY,
    "truant": AbsenceKind.TRUANCY,
    "unexplained": AbsenceKind.UNEXPLAINED,
    "unknown": AbsenceKind.UNEXPLAINED,
}
KIND_CHINESE = {AbsenceKind.SICK: "病假", AbsenceKind.PERSONAL: "事假", AbsenceKind.TRUANCY: "旷课",
                AbsenceKind.UNEXPLAINED: "未说明"}  # fmt: skip
_STAYING = (StudentStatus.ACTIVE, StudentStatus.ON_LEAVE)
LOOKUP_CHUNK = 2000  # student numbers or ids per query
_UNSEEN = object()


def parse_absence_kind(value) -> str:
    try:
        return parse_choice(value, choices=KIND_LABELS)
    except CellError:
        raise CellError(
            gettext_lazy("“%(value)s” is not an absence type: write 病假, 事假, 旷课 or 未说明.")
            % {"value": "" if value is None else str(value)[:40]}
        ) from None


def parse_absence_date(value) -> date:
    """A date as the roster import reads dates, refused when it is still to come."""
    day = parse_date(value, required=True)
    if day > timezone.localdate():
        raise CellError(
            gettext_lazy("%(date)s is in the future: a list records the days a student was absent.")
            % {"date": day.isoformat()}
        )
    return day


def _recognises(names: set[str]) -> bool:
    return bool(names & _BY_FIELD["date"].names()) and bool(names & _BY_FIELD["kind"].names())


def allowed_values() -> list[list[str]]:
    """The template's allowed-values rows: column, value, note."""
    header = _BY_FIELD["kind"].header
    rows = [[header, chinese, str(AbsenceKind(kind).label)] for kind, chinese in KIND_CHINESE.items()]
    rows.append([_BY_FIELD["date"].header, "2026-03-02", _("also 2026/3/2 or 2026年3月2日; not a day to come")])
    return rows


class AttendanceImport(_Import):
    """One absence list. Scope: the schools where the importer may record absences (roster.roles.EDITORS)."""

    columns = ATTENDANCE_COLUMNS
    scope_model = Absence

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A day's list repeats a few school codes, one date and four types: each distinct cell is parsed once.
        self.parsed: dict[tuple, object] = {}

    def clean_row(self, row: list, line: int) -> dict:
        return {
            "school_code": self.clean_school(row, line),
            "student_no": self.clean(row, line, "student_no", clean_identifier),
            "date": self.clean_repeated(row, line, "date", parse_absence_date),
            "kind": self.clean_repeated(row, line, "kind", parse_absence_kind),
        }

    def clean_school(self, row: list, line: int) -> str | None:
        if "school_code" not in self.index:
            return super().clean_school(row, line)
        return self.clean_repeated(row, line, "school_code", clean_digits)

    def clean_repeated(self, row: list, line: int, name: str, parser):
        """`clean`, remembering each distinct raw value's outcome (a value, or the error it is)."""
        raw = self.cell(row, name)
        try:
            key = (name, raw)
            outcome = self.parsed.get(key, _UNSEEN)
        except TypeError:  # an unhashable cell: parse it every time
            return self.clean(row, line, name, parser)
        if outcome is _UNSEEN:
            try:
                outcome = parser(raw)
            except CellError as error:
                outcome = error
            self.parsed[key] = outcome
        if isinstance(outcome, CellError):
            self.report.add_error(line, self.by_field[name], raw, outcome.message)
            return None
        return outcome

    def check(self, rows):
        rows = self.resolve_schools(rows)
        rows = self.refuse_duplicates(
            rows,
            key=lambda v: (v["school"].pk, v["student_no"], v["date"]),
            column=self.by_field["student_no"],
            label=lambda v: f"{v['student_no']} {v['date'].isoformat()}",
        )
        students = self.find_students(rows)
        kept = []
        for line, v in rows:
            found = students.get((v["school"].pk, v["student_no"]))
            if found is None:
                message = _("No student with this student number at this school.")
                self.report.add_error(line, self.by_field["student_no"], v["student_no"], message)
                continue
            if found[1] in LEAVING_STATUSES or found[1] not in _STAYING:
                message = _("This student has left the school (%(status)s): absences are recorded only for enrolled "
                            "students and students on leave.") % {"status": StudentStatus(found[1]).label}  # fmt: skip
                self.report.add_error(line, self.by_field["student_no"], v["student_no"], message)
                continue
            v["student_id"] = found[0]
            kept.append((line, v))
        return kept

    def find_students(self, rows) -> dict[tuple[int, str], tuple[int, str]]:
        """(school id, student number) → (student id, status) for the file's students: one query per chunk."""
        wanted: dict[int, set[str]] = defaultdict(set)
        for _line, v in rows:
            wanted[v["school"].pk].add(v["student_no"])
        numbers = sorted({n for ns in wanted.values() for n in ns})
        found = {}
        for start in range(0, len(numbers), LOOKUP_CHUNK):
            chunk = numbers[start : start + LOOKUP_CHUNK]
            for pk, school_id, number, status in Student.objects.filter(
                school_id__in=list(wanted), student_no__in=chunk
            ).values_list("pk", "school_id", "student_no", "status"):
                if number in wanted[school_id]:
                    found[(school_id, number)] = (pk, status)
        return found

    def stored(self, rows) -> dict[tuple[int, date], str]:
        """(student id, date) → kind stored, for the file's students and days."""
        ids = sorted({v["student_id"] for _line, v in rows})
        days = {v["date"] for _line, v in rows}
        if not days:
            return {}
        first, last = min(days), max(days)
        stored = {}
        for start in range(0, len(ids), LOOKUP_CHUNK):
            chunk = ids[start : start + LOOKUP_CHUNK]
            for student_id, day, kind in Absence.objects.filter(
                student_id__in=chunk, date__range=(first, last)
            ).values_list("student_id", "date", "kind"):
                stored[(student_id, day)] = kind
        return stored

    def plan(self, rows, *, write: bool) -> None:
        report = self.report
        report.preview_columns = ["school_code", "student_no", "date", "kind"]
        stored = self.stored(rows)
        to_write = []
        for line, v in rows:
            before = stored.get((v["student_id"], v["date"]))
            if before == v["kind"]:
                report.unchanged += 1
                continue
            label = KIND_CHINESE[v["kind"]]
            if before is None:
                report.new += 1
                report.preview_add(line, [v["school"].code, v["student_no"], v["date"], label])
            else:
                report.updated += 1
                report.preview_change(line, v["student_no"], v["date"].isoformat(),
                                      [("kind", KIND_CHINESE[before], label)])  # fmt: skip
            to_write.append(v)
        if write:
            self.write(to_write)

    def write(self, rows: list[dict]) -> None:
        total, done = len(rows), 0
        for batch in self.batches(rows):
            with self.in_batch_transaction():
                absences_upsert(batch, import_job_id=self.request.import_job_id)
                self.report.signals_raised += absences_announce(
                    student_ids=sorted({v["student_id"] for v in batch}),
                    dates=sorted({v["date"] for v in batch}),
                    actor=self.request.actor,
                )
            done += len(batch)
            self.request.progress(done, total, len(self.report.error_lines))


def absences_upsert(rows: list[dict], *, import_job_id: int | None) -> None:
    """Insert the rows' absences, or update the type of the (student, date) already stored: one statement run for
    many rows (INSERT … ON CONFLICT DO UPDATE, on SQLite and PostgreSQL alike), without Django's per-field work on
    each of 100,000 rows (what `bulk_create(update_conflicts=True)` does, ten times slower here). Absence has no
    history table and sends no signals: nothing is skipped by writing it so.
    Access: the caller checked the rows' scope. Audit: `import_job` and `recorded_at` on each row."""
    ops = connection.ops
    table = ops.quote_name(Absence._meta.db_table)
    now = ops.adapt_datetimefield_value(timezone.now())
    q = {f.name: ops.quote_name(f.column) for f in Absence._meta.local_concrete_fields}
    columns = [q[name] for name in ("student", "school", "date", "kind", "import_job", "recorded_at")]
    updated = ", ".join(f"{q[name]} = excluded.{q[name]}" for name in ("kind", "school", "import_job", "recorded_at"))
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES (%s, %s, %s, %s, %s, %s) "  # noqa: S608 (model names)
        f"ON CONFLICT ({q['student']}, {q['date']}) DO UPDATE SET {updated}"
    )
    values = [
        (v["student_id"], v["school"].pk, ops.adapt_datefield_value(v["date"]), v["kind"], import_job_id, now)
        for v in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, values)


def absences_announce(*, student_ids: list[int], dates: list[date], actor) -> int:
    """Send `absences_recorded` (inside the caller's transaction); the number of signals the receivers raised.
    Access: the caller stored the absences (and checked its scope). Audit: the receivers' own records."""
    if not student_ids:
        return 0
    responses = absences_recorded.send(sender=Absence, student_ids=student_ids, dates=dates, actor=actor)
    return sum(r for _receiver, r in responses if isinstance(r, int))


register_importer("attendance", ATTENDANCE_COLUMNS, AttendanceImport, _recognises)
