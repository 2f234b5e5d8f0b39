"""Demo data of the special-groups ledger (三个清单, 一人一案; issue 20), run by `manage.py seed_care_demo`.

At the showcase school (the demo `counselor`'s and `principal`'s): help records for some of the members of its ledger
groups, written by the psychology teacher with the homeroom teacher of the student's class (or the psychology teacher)
responsible; one written a month ago whose review date has passed (the ledger marks it, the sweep raises its signal);
the other members have no help record yet. Synthetic, idempotent: a second run adds nothing.
"""

from __future__ import annotations

import datetime

from django.utils import timezone

from cases import help_records
from cases.models import HelpRecord
from roster.models import RoleAssignment, User
from roster.roles import Role
from roster.special_groups import ledger_groups_in_use, tagged_memberships

MEASURES = (
    "班主任每周谈心一次；每月与监护人电话联系；安排学习伙伴",
    "心理教师每两周个别辅导；关注情绪与作息；家校共同制定作息表",
    "落实资助政策；安排勤工助学岗位；每月了解家庭近况",
    "建立成长档案；鼓励参加社团活动；每学期家访一次",
)
WITH_RECORD = 6  # members given a record; the rest of the school's members have none yet


def seed(out) -> None:
    """Idempotent: a second run adds nothing."""
    counselor = User.objects.filter(username="counselor").first()
    held = RoleAssignment.objects.filter(user=counselor, role=Role.PSYCHOLOGY_TEACHER).first() if counselor else None
    if held is None:
        out.write("  help records: no demo psychology teacher (run seed_demo first)\n")
        return
    school = held.school
    if HelpRecord.objects.filter(school=school).exists():
        out.write("  help records: already seeded\n")
        return
    rows = (
        tagged_memberships(ledger_groups_in_use(), school.students.all())
        .select_related("student__school_class", "specialgroup")
        .order_by("student__school_class__grade", "student__school_class__number", "student__student_no", "pk")
    )  # fmt: skip
    homerooms = dict(
        RoleAssignment.objects.filter(role=Role.HOMEROOM_TEACHER, school_class__school=school)
        .values_list("school_class_id", "user")
    )  # fmt: skip
    users = {u.pk: u for u in User.objects.filter(pk__in=set(homerooms.values()), is_active=True)}
    now = timezone.now()
    written = 0
    for n, row in enumerate(rows[:WITH_RECORD]):
        student, group = row.student, row.specialgroup
        responsible = users.get(homerooms.get(student.school_class_id)) or counselor
        if n == 0:  # written a month ago, its review ten days ago: overdue
            at, review_on = now - datetime.timedelta(days=30), timezone.localdate(now) - datetime.timedelta(days=10)
        else:
            at, review_on = now, timezone.localdate(now) + datetime.timedelta(days=14 * n)
        help_records.help_record_create(
            actor=counselor, student=student, group=group, measures=MEASURES[n % len(MEASURES)],
            responsible=responsible, review_on=review_on, now=at,
        )  # fmt: skip
        written += 1
    members = rows.count()
    out.write(f"  help records: {written} written at {school.code} ({members - written} members have none yet)\n")
