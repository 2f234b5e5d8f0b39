"""Demo data of attendance and leave (issue 20 item 6), run by `manage.py seed_care_demo`.

At the showcase school (the `school_admin` and `counselor` logins): the last school days' absence lists imported as
the school admin would (roster.attendance), in which one student of the homeroom demo class was absent unexplained
on three school days in a row (an absence signal in the counselor's triage queue) and a few others were away sick or
on personal leave; a student who was on medical leave (休学) and came back on the latest school day (a 复学评估
signal and a notification for the school's psychology teachers). An example list for the latest school day is
written to DEMO_OUTPUT_DIR/attendance-example.csv: uploaded by `school_admin` (导入 → 考勤), it completes a second
student's run of three unexplained days, and a second absence signal appears.

Synthetic, idempotent: a second run adds nothing (the example file is written afresh).
"""

from __future__ import annotations

import csv
import datetime
import io
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from roster import leaves
from roster.attendance import AttendanceImport  # noqa: F401 (registers the import)
from roster.duty import SchoolCalendar
from roster.importing import ImportRequest, run_import
from roster.models import Absence, Leave, LeaveKind, RoleAssignment, Student, StudentStatus
from roster.roles import Role

EXAMPLE = "attendance-example.csv"
HEADER = ["学校代码", "学号", "日期", "类型"]


def _school_days(school, count: int) -> list[datetime.date]:
    """The latest `count` school days up to today, latest first."""
    calendar = SchoolCalendar(school.district_id)
    day, found = timezone.localdate(), []
    while len(found) < count:
        if calendar.is_school_day(day):
            found.append(day)
        day -= datetime.timedelta(days=1)
    return found


def _csv(rows: list[list]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8-sig")


def seed(out) -> None:
    """Idempotent: a second run adds nothing."""
    grants = RoleAssignment.objects.select_related("school", "user")
    counselor = grants.filter(user__username="counselor", role=Role.PSYCHOLOGY_TEACHER, school__isnull=False).first()
    admin = grants.filter(user__username="school_admin", role=Role.SCHOOL_ADMIN).first()
    homeroom = grants.filter(user__username="homeroom", role=Role.HOMEROOM_TEACHER).first()
    if counselor is None or admin is None or homeroom is None:
        out.write("demo attendance: run seed_demo first\n")
        return
    school, actor = counselor.school, admin.user
    enrolled = Student.objects.filter(school=school, status=StudentStatus.ACTIVE, cases__isnull=True).distinct()
    in_class = list(enrolled.filter(school_class=homeroom.school_class).order_by("student_no")[:4])
    others = list(enrolled.exclude(school_class=homeroom.school_class).order_by("student_no")[:4])
    if len(in_class) < 2 or len(others) < 3:
        out.write("demo attendance: too few students without a case at the showcase school\n")
        return
    latest, day_1, day_2, day_3 = _school_days(school, 4)
    truant, next_truant = in_class[0], in_class[1]
    code = school.code
    if not Absence.objects.filter(school=school).exists():
        rows = [[code, truant.student_no, day.isoformat(), kind] for day, kind in
                ((day_3, "未说明"), (day_2, "旷课"), (day_1, "未说明"))]  # fmt: skip
        rows += [[code, next_truant.student_no, day_2.isoformat(), "未说明"],
                 [code, next_truant.student_no, day_1.isoformat(), "旷课"],
                 [code, others[0].student_no, day_2.isoformat(), "病假"],
                 [code, others[0].student_no, day_1.isoformat(), "病假"],
                 [code, others[1].student_no, day_1.isoformat(), "事假"]]  # fmt: skip
        report = run_import(ImportRequest(kind="attendance", data=_csv(rows), filename="demo-absences.csv",
                                          actor=actor, dry_run=False))  # fmt: skip
        out.write(f"demo attendance: {report.new} absences, {report.signals_raised} absence signal(s) raised\n")
    returner = others[2]
    if not Leave.objects.filter(student__school=school).exists():
        leave = leaves.leave_record(
            actor, student=returner, kind=LeaveKind.MEDICAL, starts_on=latest - datetime.timedelta(days=60),
            expected_return_on=latest, reason="病休",
        )  # fmt: skip
        leaves.leave_return(actor, leave=leave, returned_on=latest)
        out.write("demo attendance: a student back from medical leave (a 复学评估 signal)\n")
    folder = Path(settings.DEMO_OUTPUT_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    example = [[code, next_truant.student_no, latest.isoformat(), "未说明"],
               [code, others[0].student_no, latest.isoformat(), "病假"],
               [code, others[1].student_no, latest.isoformat(), "事假"]]  # fmt: skip
    (folder / EXAMPLE).write_bytes(_csv(example))
    out.write(f"demo attendance: example list {folder / EXAMPLE} (upload it as school_admin: 导入, 考勤)\n")
