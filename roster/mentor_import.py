"""Mentor import (全员导师制): a school's list of who mentors whom, one row per student (学校代码, 学号, 导师工号 — or
导师手机号 where staff numbers are not kept), read with the roster import's readers and cell cleaners (CSV in UTF-8,
UTF-8 BOM or GB18030, XLSX, XLS; roster.importing.read_table and its limits).

Checked whole before anything is written: a file refused (format, encoding, size, missing columns) or any row in
error changes nothing, and the report names each row's problem (an unknown student, a mentor of another school, a
staff number nobody holds, a student twice). A clean file assigns every row through roster.mentoring.mentor_assign
in one transaction: the same file twice changes nothing the second time.
May import: roster only.
"""

from __future__ import annotations

from collections import defaultdict

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from roster import mentoring
from roster.importing import SCHOOL_CODE, Column, ImportReport, _blank, map_headers, read_table
from roster.masking import mask_name, mask_phone
from roster.models import LEAVING_STATUSES, Mentorship, RoleAssignment, School, Student, User
from roster.normalize import CellError, clean_digits, clean_identifier, clean_phone
from roster.uploads import FileRefused

KIND = "mentors"
STUDENT_NO = Column("student_no", "学号", ("student number",))
STAFF_NO = Column("staff_no", "导师工号", ("mentor staff number", "导师教工号", "mentor_staff_no"), required=False)
PHONE = Column("phone", "导师手机号", ("mentor phone", "导师手机", "导师电话", "mentor_phone"), required=False)
COLUMNS = [SCHOOL_CODE, STUDENT_NO, STAFF_NO, PHONE]
PREVIEW_COLUMNS = ["school_code", "student_no", "student", "mentor"]


def mentor_import(*, actor: User | None, data: bytes, filename: str, school: School | None = None,
                  dry_run: bool = True) -> ImportReport:  # fmt: skip
    """Check (and unless `dry_run`, write) one mentor file. Never raises for bad input: it is in the report.

    Access: rows of schools where the actor may not assign mentors (roster.mentoring.may_assign_mentors: the school
    admin) are row errors; actor None is the system. Audit: the mentorships' history rows, with the actor and
    "mentor import: <file>"; the MENTOR role grants' own.
    """
    report = ImportReport(kind=KIND, filename=filename)
    try:
        rows = read_table(data, filename)
        header = next((row for row in rows if not _blank(row)), None)
        if header is None:
            raise FileRefused(_("The file is empty."))
        index = map_headers(header, COLUMNS, school_given=school is not None)
        if "staff_no" not in index and "phone" not in index:
            raise FileRefused(
                _("Missing required columns: %(columns)s. Nothing was imported; download the template to see them.")
                % {"columns": f"{STAFF_NO.header} / {PHONE.header}"}
            )
        _MentorFile(actor, report, index, school).run(rows, dry_run=dry_run)
    except FileRefused as refusal:
        report.refused = str(refusal)
    return report


class _MentorFile:
    def __init__(self, actor, report: ImportReport, index: dict[str, int], school: School | None):
        self.actor, self.report, self.index, self.school = actor, report, index, school

    def cell(self, row: list, name: str):
        position = self.index.get(name)
        return row[position] if position is not None and position < len(row) else None

    def clean(self, row, line, column: Column, parser, **kwargs):
        raw = self.cell(row, column.field)
        try:
            return parser(raw, **kwargs)
        except CellError as error:
            self.report.add_error(line, column, raw, error.message)
            return None

    def cleaned(self, rows) -> list[tuple[int, dict]]:
        out = []
        for line, row in enumerate(rows, start=2):  # the header is line 1, as in the spreadsheet
            if _blank(row):
                continue
            self.report.total += 1
            values = {
                "school_code": self.school.code if "school_code" not in self.index
                else self.clean(row, line, SCHOOL_CODE, clean_digits),
                "student_no": self.clean(row, line, STUDENT_NO, clean_identifier),
                "staff_no": self.clean(row, line, STAFF_NO, clean_identifier, required=False)
                if "staff_no" in self.index else None,
                "phone": self.clean(row, line, PHONE, clean_phone) if "phone" in self.index else "",
            }  # fmt: skip
            if line in self.report.error_lines:
                continue
            if not values["staff_no"] and not values["phone"]:
                column = STAFF_NO if "staff_no" in self.index else PHONE
                self.report.add_error(line, column, "", _("Name the mentor: a staff number or a mobile number."))
                continue
            out.append((line, values))
        return out

    def run(self, rows, *, dry_run: bool) -> None:
        rows = self.cleaned(rows)
        rows = self.resolve_schools(rows)
        rows = self.resolve_students(rows)
        rows = self.resolve_mentors(rows)
        self.plan(rows)
        if dry_run or self.report.error_lines or not rows:
            return
        reason = f"mentor import: {self.report.filename}"[:100]
        now = timezone.now()
        with transaction.atomic():
            for _line, v in rows:
                mentoring.mentor_assign(actor=self.actor, student=v["student"], mentor=v["mentor"], now=now,
                                        reason=reason)  # fmt: skip
        self.report.written = True

    def resolve_schools(self, rows):
        codes = {v["school_code"] for _, v in rows}
        schools = {s.code: s for s in School.objects.filter(code__in=codes)}
        allowed = {code for code, s in schools.items() if mentoring.may_assign_mentors(self.actor, s)}
        kept = []
        for line, v in rows:
            school = schools.get(v["school_code"])
            if school is None:
                self.report.add_error(line, SCHOOL_CODE, v["school_code"], _("Unknown school code."))
            elif v["school_code"] not in allowed:
                self.report.add_error(line, SCHOOL_CODE, v["school_code"], _("This school is outside your scope."))
            else:
                v["school"] = school
                kept.append((line, v))
        return kept

    def resolve_students(self, rows):
        wanted = Q(pk__in=[])
        for _line, v in rows:
            wanted |= Q(school_id=v["school"].pk, student_no=v["student_no"])
        by_key = {(s.school_id, s.student_no): s for s in Student.objects.filter(wanted).select_related("school")}
        first_line: dict = {}
        kept = []
        for line, v in rows:
            key = (v["school"].pk, v["student_no"])
            student = by_key.get(key)
            if key in first_line:
                message = _("Duplicate of line %(line)d in this file.") % {"line": first_line[key]}
                self.report.add_error(line, STUDENT_NO, v["student_no"], message)
                continue
            first_line[key] = line
            if student is None:
                self.report.add_error(
                    line, STUDENT_NO, v["student_no"], _("No student with this number at this school.")
                )
            elif student.status in LEAVING_STATUSES:
                self.report.add_error(line, STUDENT_NO, v["student_no"], _("This student has left the school."))
            else:
                v["student"] = student
                kept.append((line, v))
        return kept

    def resolve_mentors(self, rows):
        """The mentor of each row: by staff number at the student's school, else by mobile number among its staff. A
        staff number held only at another school, or a phone shared by two staff, is a row error."""
        school_ids = {v["school"].pk for _, v in rows}
        numbers = {v["staff_no"] for _, v in rows if v["staff_no"]}
        by_number = defaultdict(list)
        for user in User.objects.filter(staff_no__in=numbers).exclude(staff_no=""):
            by_number[user.staff_no].append(user)
        phones = {v["phone"] for _, v in rows if not v["staff_no"] and v["phone"]}
        by_phone = defaultdict(list)
        if phones:
            for user in mentoring.mentor_candidates(school_ids).filter(phone__in=phones):
                by_phone[user.phone].append(user)
        role_schools = defaultdict(set)
        users = {u.pk for group in (*by_number.values(), *by_phone.values()) for u in group}
        for user_id, school_id, class_school_id in RoleAssignment.objects.filter(user_id__in=users).values_list(
            "user_id", "school_id", "school_class__school_id"
        ):
            role_schools[user_id].update(s for s in (school_id, class_school_id) if s)

        def at_school(user: User, school_id: int) -> bool:
            return user.school_id == school_id or school_id in role_schools[user.pk]

        kept = []
        for line, v in rows:
            school_id = v["school"].pk
            if v["staff_no"]:
                column, value = STAFF_NO, v["staff_no"]
                holders = by_number.get(value, [])
                here = [u for u in holders if u.school_id == school_id] or [
                    u for u in holders if at_school(u, school_id)
                ]
                if not here:
                    message = (_("This staff member works at another school.") if holders
                               else _("No staff member with this staff number at this school."))  # fmt: skip
                    self.report.add_error(line, column, value, message)
                    continue
            else:
                column, value = PHONE, mask_phone(v["phone"])
                here = [u for u in by_phone.get(v["phone"], []) if at_school(u, school_id)]
                if not here:
                    self.report.add_error(line, column, value, _("No staff member of this school has this number."))
                    continue
            if len(here) > 1:
                self.report.add_error(line, column, value, _("Several staff members match: use the staff number."))
                continue
            mentor = here[0]
            problem = mentoring.refusal(v["student"], mentor)
            if problem:
                self.report.add_error(line, column, value, problem)
                continue
            v["mentor"] = mentor
            kept.append((line, v))
        return kept

    def plan(self, rows) -> None:
        """Counts and the preview: new (no mentor yet), updated (another mentor), unchanged (the same)."""
        current = dict(
            Mentorship.objects.filter(student_id__in=[v["student"].pk for _, v in rows], left_at__isnull=True)
            .values_list("student_id", "user_id")
        )  # fmt: skip
        self.report.preview_columns = PREVIEW_COLUMNS
        for line, v in rows:
            now_mentor = current.get(v["student"].pk)
            if now_mentor == v["mentor"].pk:
                self.report.unchanged += 1
                continue
            if now_mentor is None:
                self.report.new += 1
            else:
                self.report.updated += 1
            shown = [v["school"].code, v["student_no"], mask_name(v["student"].name),
                     v["mentor"].name or v["mentor"].username]  # fmt: skip
            self.report.preview_add(line, shown)
