"""Demo data of the signal queue (issue 20), run by `manage.py seed_care_demo`: at the showcase school, a concern from
the homeroom teacher (`homeroom`) about a student of their class, one they record for a parent, and a call to the
district's hotline recorded by the district centre (`district_centre`), all waiting for the psychology teacher's
(`counselor`) triage. Synthetic, idempotent: a second run adds nothing.
"""

from __future__ import annotations

from cases import concerns
from cases.models import Reporter, Signal, SignalSource
from roster.demo import CITY_CODE
from roster.models import RoleAssignment, School, Student, StudentStatus, User
from roster.roles import Role


def seed(out) -> None:
    """Idempotent: a second run adds nothing."""
    school = School.objects.filter(district__city__division_code=CITY_CODE).order_by("code").first()
    users = {u.username: u for u in User.objects.filter(username__in=["homeroom", "district_centre"])}
    if school is None or len(users) < 2:
        out.write("demo signals: run seed_demo first\n")
        return
    homeroom, centre = users["homeroom"], users["district_centre"]
    raised = Signal.objects.filter(raised_by__in=[homeroom, centre], source__in=[SignalSource.CONCERN,
                                                                                 SignalSource.HOTLINE])  # fmt: skip
    if raised.exists():
        out.write("demo signals: already there\n")
        return
    home_class = RoleAssignment.objects.get(user=homeroom, role=Role.HOMEROOM_TEACHER).school_class
    enrolled = Student.objects.filter(status=StudentStatus.ACTIVE).order_by("student_no")
    mine = list(enrolled.filter(school_class=home_class)[:2])
    other = enrolled.filter(school=school).exclude(school_class=home_class).first()
    if len(mine) < 2 or other is None:
        out.write("demo signals: not enough students at the showcase school\n")
        return
    concerns.concern_raise(
        homeroom, mine[0], what_was_seen=["mood", "withdrawn"], urgency="watch",
        detail="这一周课间总是一个人坐着，午饭几乎不吃，问她也不说话。",
    )  # fmt: skip
    concerns.concern_raise(
        homeroom, mine[1], what_was_seen=["home"], urgency="soon", reporter=Reporter.PARENT,
        detail="家长来电：父母最近分居，孩子在家常常哭，晚上睡不着。",
    )  # fmt: skip
    concerns.hotline_call_record(
        centre, other, what_was_seen=["conflict"], urgency="soon",
        detail="学生本人来电：被同学孤立、在网上被嘲笑，不想去学校。可回电：家长手机。",
    )  # fmt: skip
    out.write("demo signals: 2 concerns (homeroom) and a hotline call (district_centre) in the queue\n")
