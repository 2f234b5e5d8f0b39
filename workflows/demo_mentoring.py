"""Demo data of mentors (全员导师制), talks and home visits (issue 20), run by `manage.py seed_care_demo`.

At the showcase school: a mentor (`mentor`) of the homeroom demo class's students and of half of another class, a
subject teacher (`subject_teacher`) of the homeroom demo class, a few talks this term (one worrying: a concern in the
queue) and home visits this school year by the homeroom teacher and the mentor, so that the coverage pages show
partial figures. Synthetic, idempotent: a second run adds nothing.
"""

from __future__ import annotations

import datetime

from django.utils import timezone

from cases import care_records
from cases.care_selectors import school_year_period, term_period
from cases.models import HomeVisit, MentorTalk
from roster import mentoring, services
from roster.demo import CITY_CODE, DEMO_PASSWORD
from roster.models import Mentorship, RoleAssignment, School, Student, StudentStatus, User
from roster.roles import Role

TOPICS = ("学习计划", "同学关系", "考试压力", "作息与睡眠", "兴趣特长")
MET = ("母亲", "父亲", "祖父母", "父母")


def _staff(username: str, name: str, school: School, staff_no: str) -> tuple[User, bool]:
    user = User.objects.filter(username=username).first()
    if user is not None:
        return user, False
    user = services.staff_create(username=username, name=name, password=DEMO_PASSWORD)
    user.school, user.staff_no = school, staff_no
    user.save(update_fields=["school", "staff_no"])
    return user, True


def _day(start: datetime.date, today: datetime.date, days_ago: int) -> datetime.date:
    """A day `days_ago` before today, not before the period's start."""
    return max(start, today - datetime.timedelta(days=days_ago))


def seed(out) -> None:
    """Idempotent: a second run adds nothing."""
    school = School.objects.filter(district__city__division_code=CITY_CODE).order_by("code").first()
    homeroom = User.objects.filter(username="homeroom").first()
    if school is None or homeroom is None:
        out.write("demo mentoring: run seed_demo first")
        return
    home_class = RoleAssignment.objects.get(user=homeroom, role=Role.HOMEROOM_TEACHER).school_class
    mentor, _new = _staff("mentor", "周导师", school, "D0901")
    subject, _new = _staff("subject_teacher", "吴老师", school, "D0902")
    if not RoleAssignment.objects.filter(user=subject, role=Role.SUBJECT_TEACHER, school_class=home_class).exists():
        services.role_grant(actor=None, user=subject, role=Role.SUBJECT_TEACHER, node=home_class)
    if Mentorship.objects.filter(user=mentor).exists():
        out.write("demo mentoring: already there (logins mentor, subject_teacher)\n")
        return

    enrolled = Student.objects.filter(status=StudentStatus.ACTIVE).order_by("student_no")
    other_class = school.classes.current().exclude(pk=home_class.pk).order_by("grade", "number").first()
    mentees = list(enrolled.filter(school_class=home_class))
    if other_class is not None:
        others = list(enrolled.filter(school_class=other_class))
        mentees += others[: len(others) // 2]
    for student in mentees:
        mentoring.mentor_assign(actor=None, student=student, mentor=mentor)

    today = timezone.localdate()
    term, year = term_period(today), school_year_period(today)
    talks = visits = 0
    for n, student in enumerate(mentees):
        if n % 3 == 2:  # a third not talked with yet: coverage shows partial figures
            continue
        care_records.talk_record(
            actor=mentor, student=student, held_on=_day(term.start, today, 3 + 5 * n), topic=TOPICS[n % len(TOPICS)],
            note="", worrying=n == 1,
        )  # fmt: skip
        talks += 1
    class_students = [s for s in mentees if s.school_class_id == home_class.pk]
    for n, student in enumerate(class_students[: max(1, len(class_students) // 3)]):
        care_records.home_visit_record(
            actor=homeroom, student=student, visited_on=_day(year.start, today, 7 + 9 * n), met=MET[n % len(MET)],
        )  # fmt: skip
        visits += 1
    if other_class is not None and mentees[-1].school_class_id == other_class.pk:
        care_records.home_visit_record(actor=mentor, student=mentees[-1], visited_on=_day(year.start, today, 2),
                                       met="母亲")  # fmt: skip
        visits += 1
    out.write(
        f"demo mentoring: {len(mentees)} mentees, {talks} talks, {visits} home visits "
        f"(logins mentor, subject_teacher; {MentorTalk.objects.count()} talks, {HomeVisit.objects.count()} visits)\n"
    )
