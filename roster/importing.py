"""Roster import: students, classes and staff from the schools' own spreadsheets, in bulk.

One code path for the admin (upload → preview → confirm), the `import_roster` command and the background task:
read the file (CSV in UTF-8 / UTF-8 BOM / GB18030, XLSX, XLS) → map the headers (Chinese first, English aliases) →
clean every cell (`roster.normalize`) → resolve schools and classes in a few queries, check scope → compare with
what is stored → write new and changed rows in bulk with their history (acting user, change reason naming the file).

Nothing is written when any row has an error unless the importer chose to import only the valid rows; a dry run
writes nothing at all. Writing goes in batches, each in its own transaction when asked (background path): a worker
killed mid-import leaves whole batches only, and a re-run completes the rest because the upsert is idempotent.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePath

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from roster import leaving, moves, scoping
from roster.identity import (
    is_national_id,
    mask_national_id,
    national_id_digest,
    national_id_tail,
    normalize_national_id,
)
from roster.masking import mask_name, mask_phone
from roster.models import (
    LEVEL_FIELD,
    Gender,
    MoveBasis,
    RoleAssignment,
    School,
    SchoolClass,
    SpecialGroup,
    Student,
    StudentStatus,
    User,
)
from roster.normalize import (
    CellError,
    clean_digits,
    clean_identifier,
    clean_phone,
    clean_text,
    normalize_header,
    parse_choice,
    parse_class_number,
    parse_date,
    parse_gender,
    parse_grade,
    parse_special_groups,
)
from roster.roles import ROLE_LEVEL, Role
from roster.stages import grade_outside_stage_message
from roster.uploads import FileRefused, check_upload, rows_within_limit

BATCH_SIZE = 2000
PREVIEW_ROWS = 500  # ten pages of the preview: enough to check a file by eye, small enough to store
MAX_STORED_ERRORS = 5000  # the count stays exact; the stored list is capped to keep the job row small


@dataclass(frozen=True)
class Column:
    field: str
    header: str  # the Chinese header of the template
    aliases: tuple[str, ...] = ()
    required: bool = True

    def names(self) -> set[str]:
        return {normalize_header(n) for n in (self.header, self.field, *self.aliases)}


SCHOOL_CODE = Column("school_code", "学校代码", ("school code", "学校编码"))
STUDENT_COLUMNS = [
    SCHOOL_CODE,
    Column("grade", "年级"),
    Column("class", "班级", ("class_no", "class number", "班号")),
    # 学籍号 is the national student number (全国学籍号), not a school's own 学号.
    Column("student_no", "学号", ("student number",)),
    Column("name", "姓名", ("学生姓名",)),
    Column("gender", "性别", ("sex",)),
    Column("birth_date", "出生日期", ("date of birth", "birthday"), required=False),
    Column("guardian_name", "监护人", ("guardian", "家长姓名", "监护人姓名"), required=False),
    Column("guardian_phone", "监护人电话", ("guardian phone", "家长电话", "联系电话"), required=False),
    Column("special_groups", "特殊群体", ("special groups",), required=False),
    Column("status", "状态", (), required=False),
    # Last, so that files laid out before it was added keep their columns where they were.
    Column(
        "national_id", "全国学籍号", ("national student number", "national_id", "学籍号", "学籍辅号"), required=False
    ),
]
CLASS_COLUMNS = [SCHOOL_CODE, Column("grade", "年级"), Column("class", "班级", ("class_no", "班号"))]
STAFF_COLUMNS = [
    SCHOOL_CODE,
    Column("staff_no", "工号", ("staff number", "教工号")),
    Column("name", "姓名", ("教师姓名",)),
    Column("phone", "手机号", ("mobile", "手机", "联系电话"), required=False),
    Column("role", "角色", ("岗位",)),
    Column("class", "班级", ("homeroom class", "任教班级"), required=False),
]
COLUMNS = {"students": STUDENT_COLUMNS, "classes": CLASS_COLUMNS, "staff": STAFF_COLUMNS}
# Imports of other kinds that live in their own module (roster.attendance) and register here: their importer class
# (an `_Import`), and how their header is recognised (a set of normalised header names → bool).
_IMPORTERS: dict[str, type] = {}
_RECOGNISED: dict[str, Callable[[set[str]], bool]] = {}


def register_importer(kind: str, columns: list[Column], importer: type, recognises: Callable[[set[str]], bool]) -> None:
    """Make `kind` one of the imports run_import, detect_kind, the admin upload and the import jobs know."""
    COLUMNS[kind] = columns
    _IMPORTERS[kind] = importer
    _RECOGNISED[kind] = recognises


STATUS_LABELS = {
    **{str(label): value for value, label in StudentStatus.choices},
    **{value: value for value in StudentStatus.values},
    "在读": StudentStatus.ACTIVE,
    "在校": StudentStatus.ACTIVE,
    "转出": StudentStatus.TRANSFERRED,
    "已转出": StudentStatus.TRANSFERRED,
    "毕业": StudentStatus.GRADUATED,
    "已毕业": StudentStatus.GRADUATED,
    "转出本市": StudentStatus.TRANSFERRED,
    "退学": StudentStatus.WITHDRAWN,
    "已退学": StudentStatus.WITHDRAWN,
    "休学": StudentStatus.ON_LEAVE,
}
STAFF_ROLE_LABELS = {
    "校级领导": Role.PRINCIPAL,
    "校长": Role.PRINCIPAL,
    "副校长": Role.PRINCIPAL,
    "principal": Role.PRINCIPAL,
    "心理教师": Role.PSYCHOLOGY_TEACHER,
    "心理老师": Role.PSYCHOLOGY_TEACHER,
    "psychology_teacher": Role.PSYCHOLOGY_TEACHER,
    "班主任": Role.HOMEROOM_TEACHER,
    "homeroom_teacher": Role.HOMEROOM_TEACHER,
    "学校管理员": Role.SCHOOL_ADMIN,
    "school_admin": Role.SCHOOL_ADMIN,
}


# --- Reading files --------------------------------------------------------------------------------------------


def decode_csv(data: bytes) -> str:
    """UTF-8 (with or without BOM), else GB18030 (a superset of GBK, what Excel in China saves)."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise FileRefused(_("The file's text encoding is not recognised. Save it as UTF-8 CSV or as XLSX."))


def read_table(data: bytes, filename: str) -> Iterator[list]:
    """All rows of the first sheet as lists of cell values, the header row first. Refuses (FileRefused) a file
    over the upload limits (roster.uploads) before reading it, and stops at the row limit."""
    check_upload(data)
    suffix = PurePath(filename).suffix.lower()
    if suffix in {".csv", ".txt"}:
        text = decode_csv(data)
        dialect = csv.excel_tab if text[:2000].count("\t") > text[:2000].count(",") else csv.excel
        yield from rows_within_limit(csv.reader(io.StringIO(text, newline=""), dialect))
    elif suffix in {".xlsx", ".xls"}:
        # calamine (Rust) reads a 100,000-row sheet in about a second; openpyxl takes fifteen.
        from python_calamine import CalamineWorkbook

        try:
            sheet = CalamineWorkbook.from_filelike(io.BytesIO(data)).get_sheet_by_index(0)
            rows = sheet.iter_rows()
        except Exception as error:  # calamine raises its own error types for damaged or mislabelled files
            raise FileRefused(
                _("This is not a readable %(format)s file (%(error)s).")
                % {"format": suffix[1:].upper(), "error": type(error).__name__}
            ) from None
        yield from rows_within_limit(rows)
    else:
        raise FileRefused(_("Unsupported file type “%(suffix)s”: use XLSX, XLS or CSV.") % {"suffix": suffix or "?"})


def _blank(row: list) -> bool:
    return all(v is None or (isinstance(v, str) and not v.strip()) for v in row)


def map_headers(header_row: list, columns: list[Column], *, school_given: bool) -> dict[str, int]:
    """Column field → index. Refuses the file, naming every missing required column."""
    index: dict[str, int] = {}
    for position, raw in enumerate(header_row):
        name = normalize_header(raw) if raw is not None else ""
        for column in columns:
            if name and name in column.names() and column.field not in index:
                index[column.field] = position
                break
    missing = [
        f"{c.header} ({c.field})"
        for c in columns
        if c.required and c.field not in index and not (c is SCHOOL_CODE and school_given)
    ]
    if missing:
        raise FileRefused(
            _("Missing required columns: %(columns)s. Nothing was imported; download the template to see them.")
            % {"columns": "、".join(missing)}
        )
    return index


# --- Reports --------------------------------------------------------------------------------------------------


def _shown(value) -> str:
    """A value as the preview shows it: text, dates as 2013-03-05, nothing as empty; NUL removed (jsonb)."""
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value).replace("\x00", "")[:100]


@dataclass
class RowError:
    line: int
    column: str
    value: str
    message: str

    def as_dict(self) -> dict:
        return {"line": self.line, "column": self.column, "value": self.value, "message": self.message}


@dataclass
class ImportReport:
    kind: str
    filename: str
    total: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    classes_created: int = 0
    moves: int = 0  # rows that are students of another school: staged school moves, to review (roster.moves)
    signals_raised: int = 0  # attendance: signals the care rules raised for the rows written (roster.attendance)
    errors: list[RowError] = field(default_factory=list)
    error_lines: set[int] = field(default_factory=set)
    changes: list[dict] = field(default_factory=list)  # a sample for the preview
    refused: str = ""
    written: bool = False
    # The first PREVIEW_ROWS rows to be added and changed, with their values, for the preview page (stored apart from
    # the report, and only while the file is kept: roster.import_jobs).
    preview_columns: list[str] = field(default_factory=list)
    added: list[dict] = field(default_factory=list)
    changed: list[dict] = field(default_factory=list)
    moved: list[dict] = field(default_factory=list)  # rows staged as school moves
    masked: bool = False  # identifiers shown masked: the importer has no role at the school (scoping)

    def preview_add(self, line: int, values: list) -> None:
        if len(self.added) < PREVIEW_ROWS:
            self.added.append({"line": line, "values": [_shown(v) for v in values]})

    def preview_change(self, line: int, key: str, label: str, changes: list[tuple[str, object, object]]) -> None:
        if len(self.changed) < PREVIEW_ROWS:
            shown = [[column, _shown(old), _shown(new)] for column, old, new in changes]
            self.changed.append({"line": line, "key": key, "label": label, "changes": shown})

    def preview_move(self, line: int, values: list) -> None:
        if len(self.moved) < PREVIEW_ROWS:
            self.moved.append({"line": line, "values": [_shown(v) for v in values]})

    def preview(self) -> dict:
        return {
            "columns": self.preview_columns, "added": self.added, "changed": self.changed, "masked": self.masked,
            "moved": self.moved,
        }  # fmt: skip

    @property
    def valid(self) -> int:
        return self.total - len(self.error_lines)

    def add_error(self, line: int, column: Column | str, value, message: str) -> None:
        header = column.header if isinstance(column, Column) else column
        self.error_lines.add(line)
        if len(self.errors) < MAX_STORED_ERRORS:
            # The report is stored as JSON, and PostgreSQL's jsonb refuses a NUL (\u0000) the cell may hold.
            shown = "" if value is None else str(value).replace("\x00", "")[:100]
            self.errors.append(RowError(line, header, shown, str(message).replace("\x00", "")))

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "filename": self.filename,
            "total": self.total,
            "valid": self.valid,
            "new": self.new,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "classes_created": self.classes_created,
            "moves": self.moves,
            "signals_raised": self.signals_raised,
            "error_rows": len(self.error_lines),
            "errors": [e.as_dict() for e in self.errors],
            "changes": self.changes,
            "refused": self.refused,
            "written": self.written,
        }


Progress = Callable[[int, int, int], None]  # (rows done, total, rows with errors so far)


def _no_progress(done: int, total: int, errors: int) -> None:
    return None


# --- The import -----------------------------------------------------------------------------------------------


@dataclass
class ImportRequest:
    kind: str
    data: bytes
    filename: str
    actor: User | None  # None: the system (command-line without --user); scope is then unrestricted
    school: School | None = None  # for files without a school-code column
    dry_run: bool = True
    skip_invalid: bool = False
    atomic: bool = True  # False: one transaction per batch (background path, resumable)
    progress: Progress = _no_progress
    import_job_id: int | None = None  # the ImportJob being run, named by the school moves it stages

    @property
    def change_reason(self) -> str:
        return f"roster import: {self.filename}"[:100]


def detect_kind(data: bytes, filename: str) -> str:
    header = next((row for row in read_table(data, filename) if not _blank(row)), [])
    names = {normalize_header(h) for h in header if h is not None}
    for kind, recognises in _RECOGNISED.items():
        if recognises(names):
            return kind
    if names & STAFF_COLUMNS[1].names():
        return "staff"
    if names & STUDENT_COLUMNS[3].names():
        return "students"
    return "classes"


def run_import(request: ImportRequest) -> ImportReport:
    """Check (and unless dry_run, write) one roster file. Never raises for bad input: it is in the report.

    Access: rows outside the actor's scope are row errors. Audit: history rows with the actor and the file name.
    """
    report = ImportReport(kind=request.kind, filename=request.filename)
    try:
        rows = read_table(request.data, request.filename)
        header = next((row for row in rows if not _blank(row)), None)
        if header is None:
            raise FileRefused(_("The file is empty."))
        columns = COLUMNS[request.kind]
        index = map_headers(header, columns, school_given=request.school is not None)
        importer = {"students": _StudentImport, "classes": _ClassImport, "staff": _StaffImport, **_IMPORTERS}[
            request.kind
        ]
        importer(request, report, index).run(rows)
    except FileRefused as refusal:
        report.refused = str(refusal)
    return report


class _Import:
    columns: list[Column]

    def __init__(self, request: ImportRequest, report: ImportReport, index: dict[str, int]):
        self.request, self.report, self.index = request, report, index
        self.by_field = {c.field: c for c in self.columns}
        self.schools_by_code: dict[str, School] = {}
        self.allowed_school_ids: set[int] = set()

    # Reading and cleaning ----------------------------------------------------------------------------------

    def cell(self, row: list, name: str):
        position = self.index.get(name)
        return row[position] if position is not None and position < len(row) else None

    def clean(self, row: list, line: int, name: str, parser, **kwargs):
        """One cell through its parser; an error is recorded on the row and None returned."""
        raw = self.cell(row, name)
        try:
            return parser(raw, **kwargs)
        except CellError as error:
            self.report.add_error(line, self.by_field[name], raw, error.message)
            return None

    def cleaned_rows(self, rows: Iterator[list]) -> list[tuple[int, dict]]:
        """Every data row cleaned: (line, values); lines with an error are recorded in the report and dropped."""
        result = []
        for line, row in enumerate(rows, start=2):  # the header is line 1, as in the spreadsheet
            if _blank(row):
                continue
            self.report.total += 1
            values = self.clean_row(row, line)
            if line not in self.report.error_lines:
                result.append((line, values))
            if self.report.total % BATCH_SIZE == 0:
                self.request.progress(self.report.total, 0, len(self.report.error_lines))  # total not known yet
        return result

    def clean_school(self, row: list, line: int) -> str | None:
        if "school_code" not in self.index:
            return self.request.school.code
        return self.clean(row, line, "school_code", clean_digits)

    def resolve_schools(self, rows: list[tuple[int, dict]]) -> list[tuple[int, dict]]:
        codes = {values["school_code"] for _, values in rows}
        self.schools_by_code = {s.code: s for s in School.objects.filter(code__in=codes)}
        allowed = School.objects.filter(pk__in=[s.pk for s in self.schools_by_code.values()])
        if self.request.actor is not None:
            allowed = self.schools_in_scope(allowed)
        self.allowed_school_ids = set(allowed.values_list("pk", flat=True))
        kept = []
        for line, values in rows:
            school = self.schools_by_code.get(values["school_code"])
            if school is None:
                self.report.add_error(line, SCHOOL_CODE, values["school_code"], _("Unknown school code."))
            elif school.pk not in self.allowed_school_ids:
                self.report.add_error(line, SCHOOL_CODE, values["school_code"], _("This school is outside your scope."))
            else:
                values["school"] = school
                kept.append((line, values))
        return kept

    def refuse_grades_outside_stage(self, rows: list[tuple[int, dict]]) -> list[tuple[int, dict]]:
        """Rows whose grade the school's stage (roster.stages) does not have are row errors: a primary school gets
        no 7年级N班 by a slip in the file."""
        kept = []
        for line, values in rows:
            school = values["school"]
            if values["grade"] in school.allowed_grades:
                kept.append((line, values))
                continue
            message = grade_outside_stage_message(school=str(school), stage=school.stage, grade=values["grade"])
            self.report.add_error(line, self.by_field["grade"], values["grade"], message)
        return kept

    def refuse_duplicates(self, rows: list[tuple[int, dict]], key, column: Column, label) -> list[tuple[int, dict]]:
        first_line: dict = {}
        for line, values in rows:
            first_line.setdefault(key(values), line)
        kept = []
        for line, values in rows:
            first = first_line[key(values)]
            if first != line:
                self.report.add_error(
                    line, column, label(values), _("Duplicate of line %(line)d in this file.") % {"line": first}
                )
            else:
                kept.append((line, values))
        # a key seen twice: its first line is in error too, so neither copy is imported silently
        duplicated = {first_line[key(v)] for line, v in rows if first_line[key(v)] != line}
        for line, values in kept:
            if line in duplicated:
                self.report.add_error(line, column, label(values), _("This row is repeated later in the file."))
        return [(line, values) for line, values in kept if line not in duplicated]

    # Running ---------------------------------------------------------------------------------------------------

    def run(self, rows: Iterator[list]) -> None:
        cleaned = self.cleaned_rows(rows)
        self.request.progress(0, self.report.total, len(self.report.error_lines))
        valid = self.check(cleaned)
        blocked = bool(self.report.error_lines) and not self.request.skip_invalid
        if self.request.dry_run or blocked or not valid:
            self.plan(valid, write=False)
            self.request.progress(self.report.total, self.report.total, len(self.report.error_lines))
            return
        if self.request.atomic:
            with transaction.atomic():
                self.plan(valid, write=True)
        else:
            self.plan(valid, write=True)
        self.report.written = True
        self.request.progress(self.report.total, self.report.total, len(self.report.error_lines))

    def schools_in_scope(self, schools):
        return scoping.parents_for_new(self.request.actor, self.scope_model, schools)

    def batches(self, items: list):
        for start in range(0, len(items), BATCH_SIZE):
            yield items[start : start + BATCH_SIZE]

    def in_batch_transaction(self):
        """Per-batch transactions on the background path; inside the outer one otherwise (a savepoint)."""
        return transaction.atomic()

    def history_user(self):
        return self.request.actor

    # Subclasses: clean_row, check, plan
    scope_model = Student


class _ClassImport(_Import):
    columns = CLASS_COLUMNS
    scope_model = SchoolClass

    def clean_row(self, row: list, line: int) -> dict:
        return {
            "school_code": self.clean_school(row, line),
            "grade": self.clean(row, line, "grade", parse_grade),
            "number": self.clean(row, line, "class", parse_class_number),
        }

    def check(self, rows):
        rows = self.refuse_grades_outside_stage(self.resolve_schools(rows))
        return self.refuse_duplicates(
            rows,
            key=lambda v: (v["school"].pk, v["grade"], v["number"]),
            column=self.by_field["class"],
            label=lambda v: f"{v['grade']}-{v['number']}",
        )

    def plan(self, rows, *, write: bool) -> None:
        wanted = {(v["school"].pk, v["grade"], v["number"]) for _, v in rows}
        class_ids, missing = _ensure_classes(
            wanted, write=write, actor=self.history_user(), reason=self.request.change_reason
        )
        self.report.classes_created = self.report.new = missing
        self.report.unchanged = len(rows) - missing
        if write:
            return
        self.report.preview_columns = ["school_code", "class"]
        for line, v in rows:
            if class_ids[(v["school"].pk, v["grade"], v["number"])] is None:
                label = _("Grade %(grade)d, class %(number)d") % {"grade": v["grade"], "number": v["number"]}
                self.report.preview_add(line, [v["school"].code, label])


def _ensure_classes(wanted: set[tuple[int, int, int]], *, write: bool, actor, reason: str) -> tuple[dict, int]:
    """(school id, grade, number) → class id for every wanted class, and how many were (or would be) created.

    In a dry run the missing classes map to None.
    """
    from simple_history.utils import bulk_create_with_history

    def stored() -> dict:
        # Current classes only: a graduated (archived) 9年级1班 is not next year's 9年级1班 (roster.rollover).
        rows = SchoolClass.objects.current().filter(school_id__in={key[0] for key in wanted})
        return {(s, g, n): pk for pk, s, g, n in rows.values_list("pk", "school_id", "grade", "number")}

    existing = stored()
    missing = sorted(wanted - set(existing))
    if write and missing:
        new = [SchoolClass(school_id=s, grade=g, number=n) for s, g, n in missing]
        bulk_create_with_history(new, SchoolClass, default_user=actor, default_change_reason=reason)
        existing = stored()
    return {key: existing.get(key) for key in wanted}, len(missing)


STUDENT_FIELDS = [
    "school_class_id", "name", "gender", "birth_date", "guardian_name", "guardian_phone", "status",
    "national_id_digest", "national_id_tail",
]  # fmt: skip
_NATIONAL_ID_FIELDS = ("national_id_digest", "national_id_tail")
NATIONAL_ID_FORMAT = gettext_lazy(
    "A national student number (全国学籍号) is 8 to 32 letters and digits, e.g. G and an 18-character ID."
)


def clean_national_id(value) -> str | None:
    """A 全国学籍号 cell, normalized (roster.identity), or None when blank. The refusal never repeats the value."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, float):
        if not value.is_integer() or abs(value) >= 10**15:
            raise CellError(
                _(
                    "The national student number was stored as a number and Excel keeps only 15 digits: format the "
                    "column as text and type it again."
                )
            )
        value = int(value)
    text = normalize_national_id(unicodedata.normalize("NFKC", str(value)))
    if not text:
        return None
    if not is_national_id(text):
        raise CellError(NATIONAL_ID_FORMAT)
    return text


class _StudentImport(_Import):
    columns = STUDENT_COLUMNS
    scope_model = Student

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        groups = list(SpecialGroup.objects.all())
        self.groups = {g.code: g.pk for g in groups}
        self.group_names = {g.pk: g.name for g in groups}
        self.vocabulary = {**{g.name: g.code for g in groups}, **{c: c for c in self.groups}}
        # Issue 20: an exam-year group (九年级, 高三) follows from the grade and a group no longer in use takes nobody
        # new: a file naming one is refused on that row. A retired group's tags stay as they are (never removed here).
        self.untaggable = {g.code: g for g in groups if g.grade is not None or not g.active}
        self.retired_groups = {g.pk for g in groups if g.grade is None and not g.active}
        self.allowed_groups = [g.name for g in groups if g.grade is None and g.active]

    def parse_groups(self, value) -> list[str]:
        """The special-group codes of a cell, refusing groups a file may not tag (with the reason for each)."""
        codes = parse_special_groups(value, vocabulary=self.vocabulary, allowed=self.allowed_groups)
        refused = [self.untaggable[code] for code in codes if code in self.untaggable]
        if refused:
            raise CellError(" ".join(_group_refusal(group) for group in refused))
        return codes

    def clean_row(self, row: list, line: int) -> dict:
        values = {
            "school_code": self.clean_school(row, line),
            "grade": self.clean(row, line, "grade", parse_grade),
            "number": self.clean(row, line, "class", parse_class_number),
            "student_no": self.clean(row, line, "student_no", clean_identifier),
            "name": self.clean(row, line, "name", clean_text, max_length=50),
            "gender": self.clean(row, line, "gender", parse_gender),
        }
        optional = {
            "birth_date": (parse_date, {"required": False, "plausible_birth": True}),
            "guardian_name": (clean_text, {"required": False, "max_length": 50}),
            "guardian_phone": (clean_phone, {"required": False}),
            "special_groups": (self.parse_groups, {}),
            "status": (parse_choice, {"choices": STATUS_LABELS, "required": False}),
        }
        for name, (parser, kwargs) in optional.items():
            if name in self.index:
                values[name] = self.clean(row, line, name, parser, **kwargs)
        if "national_id" in self.index:
            values.update(self.clean_national_id(row, line))
        return values

    def clean_national_id(self, row: list, line: int) -> dict:
        """The digest and tail of the row's 全国学籍号: the number as typed goes no further than this (never into the
        report, the preview, an error or the database)."""
        raw = self.cell(row, "national_id")
        try:
            number = clean_national_id(raw)
        except CellError as error:
            shown = mask_national_id(normalize_national_id(str(raw))[-4:])
            self.report.add_error(line, self.by_field["national_id"], shown, error.message)
            return {}
        if number is None:
            return {}
        return {"national_id_digest": national_id_digest(number), "national_id_tail": national_id_tail(number)}

    def check(self, rows):
        rows = self.refuse_grades_outside_stage(self.resolve_schools(rows))
        rows = self.refuse_duplicates(
            rows,
            key=lambda v: (v["school"].pk, v["student_no"]),
            column=self.by_field["student_no"],
            label=lambda v: v["student_no"],
        )
        self.national_holders = {}
        if "national_id" in self.index:
            rows = self.refuse_duplicates(
                rows,
                key=lambda v: v.get("national_id_digest") or ("no number", v["school"].pk, v["student_no"]),
                column=self.by_field["national_id"],
                label=lambda v: mask_national_id(v.get("national_id_tail", "")),
            )
            rows = self.refuse_numbers_of_others(rows)
        return self.find_moves(rows)

    def find_moves(self, rows):
        """New rows that are students of another school become staged school moves (roster.moves), not new students;
        the few that can be neither are row errors. The stored students are read here once, for plan() too."""
        self.stored = self.existing_students({v["school"].pk for _, v in rows})
        new_rows = [(line, v) for line, v in rows if (v["school"].pk, v["student_no"]) not in self.stored]
        planner = moves.MovePlanner(
            file_keys={(v["school"].pk, v["student_no"]) for _, v in rows}, holders=self.national_holders
        )
        self.move_plan = planner.plan(new_rows)
        values = dict(rows)
        for line, message in self.move_plan.errors.items():
            self.report.add_error(line, self.by_field["student_no"], values[line]["student_no"], message)
        return [(line, v) for line, v in rows if line not in self.move_plan.errors]

    def refuse_numbers_of_others(self, rows):
        """A national number already held by another student of the same school is a row error (a typo, or one
        person twice); held at another school, the row may be a school move (roster.moves, in plan())."""
        self.national_holders = moves.national_id_holders({v.get("national_id_digest") for _, v in rows})
        kept = []
        for line, v in rows:
            digest = v.get("national_id_digest")
            other = next(
                (
                    h for h in self.national_holders.get(digest, ())
                    if h["school_id"] == v["school"].pk and h["student_no"] != v["student_no"]
                ),
                None,
            ) if digest else None  # fmt: skip
            if other is None:
                kept.append((line, v))
                continue
            message = _("Another student of this school (student number %(no)s) has this national student number.")
            shown = mask_national_id(v["national_id_tail"])
            self.report.add_error(line, self.by_field["national_id"], shown, message % {"no": other["student_no"]})
        return kept

    def plan(self, rows, *, write: bool) -> None:
        request, report = self.request, self.report
        wanted = {(v["school"].pk, v["grade"], v["number"]) for _, v in rows}
        class_ids, report.classes_created = _ensure_classes(
            wanted, write=write, actor=self.history_user(), reason=request.change_reason
        )
        existing = self.stored  # read by find_moves()
        staged = self.move_plan.staged
        self.status_before: dict[int, str] = {}  # students whose status the file changes: pk → status before
        has_groups = "special_groups" in self.index
        shown = _StudentPreview(self, {v["school"].pk for _, v in rows})
        to_create, to_update, changed_groups = [], [], {}
        for line, v in rows:
            key = (v["school"].pk, v["student_no"])
            class_id = class_ids.get((v["school"].pk, v["grade"], v["number"]))
            fields = {"school_class_id": class_id, "name": v["name"], "gender": v["gender"]}
            for name in ("birth_date", "guardian_name", "guardian_phone", "status"):
                if name in v and not (name == "status" and v[name] is None):
                    fields[name] = v[name] if v[name] is not None else ("" if name != "birth_date" else None)
            if v.get("national_id_digest"):  # a blank cell leaves a stored number alone
                fields.update({name: v[name] for name in _NATIONAL_ID_FIELDS})
            groups = [self.groups[c] for c in v["special_groups"]] if has_groups else None
            current = existing.get(key)
            if current is None and line in staged:
                shown.moved(line, v, fields, staged[line])
                continue
            if current is None:
                student = Student(school_id=key[0], student_no=key[1], **fields)
                to_create.append((student, groups or []))
                shown.added(line, v, fields, groups or [])
                continue
            pk, stored, stored_groups = current
            if has_groups:
                groups = groups + sorted(stored_groups & self.retired_groups)
            diff = {name: (stored[name], value) for name, value in fields.items() if stored[name] != value}
            groups_changed = has_groups and set(groups) != stored_groups
            if not diff and not groups_changed:
                report.unchanged += 1
                continue
            student = Student(pk=pk, school_id=key[0], student_no=key[1], **{**stored, **fields})
            if "status" in diff:
                self.status_before[pk] = stored["status"]
            to_update.append((student, groups if groups_changed else sorted(stored_groups), list(diff)))
            if groups_changed:
                changed_groups[pk] = groups
            shown.changed(line, v, stored, diff, (sorted(stored_groups), groups) if groups_changed else None)
            if len(report.changes) < 50:
                report.changes.append(
                    {"key": key[1], "fields": sorted(diff) + (["special_groups"] if groups_changed else [])}
                )
        report.new, report.updated, report.moves = len(to_create), len(to_update), len(staged)
        if write:
            self.write(to_create, to_update, changed_groups)
            with self.in_batch_transaction():
                moves.moves_write(
                    self.move_plan, class_ids=class_ids, actor=self.history_user(), reason=request.change_reason,
                    import_job_id=request.import_job_id,
                )  # fmt: skip

    def existing_students(self, school_ids: set[int]) -> dict:
        stored = {}
        pks = {}
        for row in Student.objects.filter(school_id__in=school_ids).values_list(
            "pk", "school_id", "student_no", *STUDENT_FIELDS
        ):
            pk, school_id, student_no, *rest = row
            stored[(school_id, student_no)] = (pk, dict(zip(STUDENT_FIELDS, rest, strict=True)), set())
            pks[pk] = (school_id, student_no)
        through = Student.special_groups.through
        for student_id, group_id in through.objects.filter(student__school_id__in=school_ids).values_list(
            "student_id", "specialgroup_id"
        ):
            stored[pks[student_id]][2].add(group_id)
        return stored

    def write(self, to_create, to_update, changed_groups) -> None:
        done = 0
        total = len(to_create) + len(to_update)
        for batch in self.batches(to_create):
            with self.in_batch_transaction():
                students = Student.objects.bulk_create([s for s, _ in batch])
                self._write_groups([(s.pk, groups) for s, (_, groups) in zip(students, batch, strict=True)])
                self._write_history(students, update=False)
            done += len(batch)
            self.request.progress(done, total, len(self.report.error_lines))
        for batch in self.batches(to_update):
            with self.in_batch_transaction():
                students = [s for s, _, _ in batch]
                Student.objects.bulk_update(students, STUDENT_FIELDS)
                replaced = [(s.pk, changed_groups[s.pk]) for s in students if s.pk in changed_groups]
                through = Student.special_groups.through
                through.objects.filter(student_id__in=[pk for pk, _ in replaced]).delete()
                self._write_groups(replaced)
                self._write_history(students, update=True)
                before = self.status_before
                leaving.students_status_changed(
                    changes=[(s.pk, before[s.pk], s.status) for s in students if s.pk in before],
                    actor=self.request.actor,
                )
            done += len(batch)
            self.request.progress(done, total, len(self.report.error_lines))

    def _write_groups(self, pairs: list[tuple[int, list[int]]]) -> None:
        through = Student.special_groups.through
        through.objects.bulk_create(
            [through(student_id=pk, specialgroup_id=group) for pk, groups in pairs for group in groups]
        )

    def _write_history(self, students: list[Student], *, update: bool) -> None:
        """History rows in bulk (bulk writes send no signals), with the special groups as they now stand."""
        records = Student.history.bulk_history_create(
            students,
            update=update,
            default_user=self.history_user(),
            default_change_reason=self.request.change_reason,
            default_date=timezone.now(),
        )
        record_of = {record.id: record.pk for record in records}  # student pk → history row pk
        through = Student.special_groups.through
        m2m = Student.history.model._meta.get_field("historicalstudent_special_groups").related_model
        m2m.objects.bulk_create(
            [
                m2m(id=row_id, history_id=record_of[student_id], student_id=student_id, specialgroup_id=group_id)
                for row_id, student_id, group_id in through.objects.filter(student_id__in=list(record_of)).values_list(
                    "id", "student_id", "specialgroup_id"
                )
            ]
        )


def _group_refusal(group: SpecialGroup) -> str:
    if group.grade is not None:
        return _("“%(name)s” is not written in a roster file: its members are the students of grade %(grade)d.") % {
            "name": group.name, "grade": group.grade,
        }  # fmt: skip
    return _("“%(name)s” is no longer in use: remove it from this cell.") % {"name": group.name}


def _staff_preview(report: ImportReport, line: int, v: dict, user: User | None, *, changed: bool, has_role: bool):
    """A staff row as the preview shows it; phone numbers masked (the list of staff shows them so too)."""
    role = str(Role(v["role"]).label)
    klass = (
        _("Grade %(grade)d, class %(number)d") % {"grade": v["class"][0], "number": v["class"][1]} if v["class"] else ""
    )
    phone = mask_phone(v["phone"] or "")
    if user is None:
        report.preview_add(line, [v["school"].code, v["staff_no"], v["name"], phone, role, klass])
        return
    changes = []
    if user.name != v["name"]:
        changes.append(("name", user.name, v["name"]))
    if v["phone"] is not None and user.phone != v["phone"]:
        changes.append(("phone", mask_phone(user.phone), phone))
    if not has_role:
        changes.append(("role", "", f"{role} {klass}".strip()))
    if changes:
        report.preview_change(line, v["staff_no"], user.name, changes)


# A staged school move (roster.moves) in the preview: the file's row, and where the student is now.
MOVE_PREVIEW_COLUMNS = ["school_code", "class", "student_no", "national_id", "name", "found_at", "basis"]


class _StudentPreview:
    """The rows a student import adds and changes, as the preview shows them: values as people read them (the class
    as 7年级3班, genders and statuses by name), identifiers masked for an importer without a role at the school
    (roster.scoping.identities_visible), as the student list would show them. Two queries, whatever the size."""

    COLUMNS = [
        "school_code", "class", "student_no", "national_id", "name", "gender", "birth_date", "guardian_name",
        "guardian_phone", "special_groups", "status",
    ]  # fmt: skip
    MOVE_COLUMNS = MOVE_PREVIEW_COLUMNS
    FIELD_COLUMN = {"school_class_id": "class", "national_id_tail": "national_id"}  # stored field → preview column

    def __init__(self, importer: _StudentImport, school_ids: set[int]):
        self.importer, self.report = importer, importer.report
        self.report.preview_columns = self.COLUMNS
        self.group_names = importer.group_names
        self.classes = {
            pk: (grade, number)
            for pk, grade, number in SchoolClass.objects.filter(school_id__in=school_ids).values_list(
                "pk", "grade", "number"
            )
        }
        actor = importer.request.actor
        if actor is None or scoping.identities_visible_everywhere(actor):
            self.identified = school_ids
        else:
            schools = School.objects.filter(pk__in=school_ids)
            self.identified = set(scoping.identities_visible(actor, schools).values_list("pk", flat=True))
        self.report.masked = self.identified != school_ids
        self.other_schools: dict[int, str] = {}

    def value(self, column: str, value, *, identified: bool):
        if value in (None, ""):
            return ""
        if column == "class":
            grade, number = value
            return _("Grade %(grade)d, class %(number)d") % {"grade": grade, "number": number}
        if column == "gender":
            return Gender(value).label
        if column == "status":
            return StudentStatus(value).label
        if column == "national_id":
            return mask_national_id(value)  # the stored tail: the number itself is never kept
        if column == "special_groups":
            return "***" if not identified else "、".join(self.group_names[pk] for pk in value)
        if identified:
            return value
        if column in ("name", "guardian_name"):
            return mask_name(value)
        if column == "guardian_phone":
            return mask_phone(value)
        return "***" if column == "birth_date" else value

    def added(self, line: int, v: dict, fields: dict, groups: list[int]) -> None:
        if len(self.report.added) >= PREVIEW_ROWS:
            return
        identified = v["school"].pk in self.identified
        values = {
            **fields,
            "school_code": v["school"].code,
            "class": (v["grade"], v["number"]),
            "student_no": v["student_no"],
            "special_groups": groups,
            "status": fields.get("status") or StudentStatus.ACTIVE,
            "national_id": fields.get("national_id_tail"),
        }
        self.report.preview_add(line, [self.value(c, values.get(c), identified=identified) for c in self.COLUMNS])

    def changed(self, line: int, v: dict, stored: dict, diff: dict, groups: tuple | None) -> None:
        if len(self.report.changed) >= PREVIEW_ROWS:
            return
        identified = v["school"].pk in self.identified
        changes = []
        for name in STUDENT_FIELDS:  # in the file's column order, not the diff's
            if name not in diff or name == "national_id_digest":
                continue
            old, new = diff[name]
            column = self.FIELD_COLUMN.get(name, name)
            if column == "class":
                old, new = self.classes.get(old), (v["grade"], v["number"])
            changes.append(
                (column, self.value(column, old, identified=identified), self.value(column, new, identified=identified))
            )
        if groups is not None:
            old, new = (self.value("special_groups", g, identified=identified) for g in groups)
            changes.append(("special_groups", old, new))
        label = self.value("name", stored["name"], identified=identified)
        self.report.preview_change(line, v["student_no"], label, changes)

    def moved(self, line: int, v: dict, fields: dict, staged: moves.Staged) -> None:
        """A row staged as a school move: what the file says, and the school the student is at now."""
        if len(self.report.moved) >= PREVIEW_ROWS:
            return
        identified = v["school"].pk in self.identified
        values = {
            **fields,
            "school_code": v["school"].code,
            "class": (v["grade"], v["number"]),
            "student_no": v["student_no"],
            "national_id": fields.get("national_id_tail"),
        }
        shown = [self.value(c, values.get(c), identified=identified) for c in self.MOVE_COLUMNS[:5]]
        shown += [self.from_school(staged.candidate["school_id"]), MoveBasis(staged.basis).label]
        self.report.preview_move(line, shown)

    def from_school(self, school_id: int) -> str:
        if school_id not in self.other_schools:  # one query for the whole preview, read on its first move
            staged = self.importer.move_plan.staged.values()
            ids = {s.candidate["school_id"] for s in staged}
            self.other_schools.update((s.pk, str(s)) for s in School.objects.filter(pk__in=ids))
        return self.other_schools.get(school_id, "")


# --- Staff ----------------------------------------------------------------------------------------------------

_CLASS_IN_ONE_CELL = re.compile(r"^(?P<grade>.+?(?:年级|初[一二三]|高[一二三]))(?P<number>.+)$")


def parse_grade_and_class(value) -> tuple[int, int]:
    """“七年级3班”, “初一(3)班”, “高二 5班”, “7-3” → (grade, class number)."""
    text = clean_text(value)
    match = _CLASS_IN_ONE_CELL.match(text)
    if match:
        return parse_grade(match["grade"]), parse_class_number(match["number"])
    parts = re.split(r"[-/.·\s]+", text)
    if len(parts) == 2:
        return parse_grade(parts[0]), parse_class_number(parts[1])
    raise CellError(gettext_lazy("“%(value)s” is not a class (write it as 七年级3班 or 7-3).") % {"value": text})


class _StaffImport(_Import):
    """Staff keyed by (school, staff number); each row grants one role. Roles are added, never removed by import."""

    columns = STAFF_COLUMNS

    def schools_in_scope(self, schools):
        # Whether a row may grant its role is checked per row with scoping.can_grant; here only visibility.
        return scoping.visible(self.request.actor, schools)

    def clean_row(self, row: list, line: int) -> dict:
        values = {
            "school_code": self.clean_school(row, line),
            "staff_no": self.clean(row, line, "staff_no", clean_identifier),
            "name": self.clean(row, line, "name", clean_text, max_length=50),
            "phone": self.clean(row, line, "phone", clean_phone) if "phone" in self.index else None,
            "role": self.clean(row, line, "role", parse_choice, choices=STAFF_ROLE_LABELS),
            "class": None,
        }
        if values["role"] == Role.HOMEROOM_TEACHER:
            values["class"] = self.clean(row, line, "class", parse_grade_and_class)
        return values

    def check(self, rows):
        rows = self.resolve_schools(rows)
        rows = self.refuse_duplicates(
            rows,
            key=lambda v: (v["school"].pk, v["staff_no"], v["role"], v["class"]),
            column=self.by_field["staff_no"],
            label=lambda v: v["staff_no"],
        )
        classes = {
            (s, g, n): pk
            # A graduated (archived) class keeps its grade and number: a homeroom row means this year's class.
            for pk, s, g, n in SchoolClass.objects.current()
            .filter(school_id__in={v["school"].pk for _, v in rows})
            .values_list("pk", "school_id", "grade", "number")
        }
        homerooms = dict(
            RoleAssignment.objects.filter(role=Role.HOMEROOM_TEACHER, school_class_id__in=classes.values()).values_list(
                "school_class_id", "user__staff_no"
            )
        )
        kept = []
        for line, v in rows:
            node = v["school"]
            if v["class"] is not None:
                class_id = classes.get((v["school"].pk, *v["class"]))
                problem = None
                if class_id is None:
                    problem = _("No such class in this school; import the classes first.")
                elif homerooms.get(class_id) not in (None, v["staff_no"]):
                    problem = _("This class already has a homeroom teacher.")
                if problem:
                    self.report.add_error(line, self.by_field["class"], "{}-{}".format(*v["class"]), problem)
                    continue
                node = SchoolClass(pk=class_id, school=v["school"], grade=v["class"][0], number=v["class"][1])
            assignment = RoleAssignment(role=v["role"], **{LEVEL_FIELD[ROLE_LEVEL[v["role"]]]: node})
            if self.request.actor is not None and not scoping.can_grant(self.request.actor, assignment):
                self.report.add_error(line, self.by_field["role"], v["role"], _("You may not grant this role here."))
                continue
            v["assignment"] = assignment
            kept.append((line, v))
        return kept

    def plan(self, rows, *, write: bool) -> None:
        report = self.report
        users = {
            (u.school_id, u.staff_no): u
            for u in User.objects.filter(school_id__in={v["school"].pk for _, v in rows}).exclude(staff_no="")
        }
        held = set(
            RoleAssignment.objects.filter(user__in=users.values()).values_list(
                "user_id", "role", *(f"{f}_id" for f in LEVEL_FIELD.values())
            )
        )
        report.preview_columns = ["school_code", "staff_no", "name", "phone", "role", "class"]
        for line, v in rows:
            key = (v["school"].pk, v["staff_no"])
            user = users.get(key)
            changed = user is not None and (
                user.name != v["name"] or (v["phone"] is not None and user.phone != v["phone"])
            )
            a = v["assignment"]
            signature = (user.pk if user else None, a.role, *(getattr(a, f"{f}_id") for f in LEVEL_FIELD.values()))
            has_role = user is not None and signature in held
            if user is None:
                report.new += 1  # a new person, or another role of a person new in this file
            elif changed:
                report.updated += 1
            elif has_role:
                report.unchanged += 1
            else:
                report.updated += 1
            if not write:
                _staff_preview(report, line, v, user, changed=changed, has_role=has_role)
                continue
            if user is None:
                user = users[key] = User(
                    username=f"{v['school'].code}_{v['staff_no']}",
                    name=v["name"],
                    phone=v["phone"] or "",
                    school=v["school"],
                    staff_no=v["staff_no"],
                )
                user.set_unusable_password()  # the school admin sets a first password; no default password
                user._history_user, user._change_reason = self.history_user(), self.request.change_reason
                user.save()
            elif changed:
                user.name = v["name"]
                if v["phone"] is not None:
                    user.phone = v["phone"]
                user._history_user, user._change_reason = self.history_user(), self.request.change_reason
                user.save(update_fields=["name", "phone"])
            if not has_role:
                a.user = user
                a._history_user, a._change_reason = self.history_user(), self.request.change_reason
                a.save()
                held.add((user.pk, a.role, *(getattr(a, f"{f}_id") for f in LEVEL_FIELD.values())))
