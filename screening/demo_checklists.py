"""Demo data of the teacher checklist and targeted re-screening (issue 20), run by `manage.py seed_care_demo`.

An open September checklist (排查表, seed 003) for the showcase school, with two forms filled by the demo homeroom
teacher (`homeroom`) and the rest of the class left to fill live; and a targeted re-screening of the district's
left-behind students (留守儿童) at the spring term start (春季入学, seed 001's key times), scheduled. Synthetic.
"""

from __future__ import annotations

import datetime

from django.utils import timezone

from roster.models import RoleAssignment, School, SchoolClass, SpecialGroup, Student, User
from roster.roles import Role
from screening.campaigns import campaign_create, invited_students
from screening.checklists import checklist_done, checklist_submit
from screening.models import Campaign, Instrument, RuleSet
from screening.services import definitions_load

CHECKLIST_NAME = "2026-2027学年九月心理健康排查表（班主任填写，示范）"
TARGETED_NAME = "2027年春季入学留守儿童心理复测（示范）"
# Two forms already in: one with no signs, one with some (yellow: a case for the psychology teacher to look at).
FILLED = [
    dict.fromkeys(range(1, 10), "0"),
    {**dict.fromkeys(range(1, 10), "0"), 1: "1", 3: "2", 4: "1"},
]


def _newest(model, code):
    return model.objects.filter(code=code).order_by("-version").first()


def _checklist(out, homeroom: User, school_class: SchoolClass) -> None:
    campaign = Campaign.objects.filter(name=CHECKLIST_NAME).first()
    if campaign is None:
        now = timezone.now()
        school = school_class.school
        grades = sorted(set(SchoolClass.objects.filter(school=school).current().values_list("grade", flat=True)))
        campaign = campaign_create(
            actor=User.objects.get(username="city_admin"), name=CHECKLIST_NAME, school_year="2026-2027",
            term="autumn", instruments=[_newest(Instrument, "TCHK")], ruleset=_newest(RuleSet, "teacher-checklist"),
            target_grades=grades, schools=[school], opens_at=now - datetime.timedelta(days=1),
            closes_at=now + datetime.timedelta(days=20),
        )  # fmt: skip
        out.write(f"checklist campaign: {CHECKLIST_NAME} ({school})\n")
    students = list(
        invited_students(campaign).filter(school_class=school_class).select_related("school_class").order_by("pk")
    )
    for student, answers in zip(students, FILLED, strict=False):
        if not checklist_done(campaign, student):
            checklist_submit(actor=homeroom, campaign=campaign, student=student, answers={"TCHK": answers})
    out.write(f"  {school_class}: {len(FILLED)} of {len(students)} forms filled by {homeroom.username}\n")


def _targeted(out, school: School) -> None:
    if Campaign.objects.filter(name=TARGETED_NAME).exists():
        return
    group = SpecialGroup.objects.filter(code="left_behind").first()
    schools = list(School.objects.filter(district=school.district_id))
    if group is None or not Student.objects.filter(special_groups=group, school__in=schools).exists():
        out.write("targeted campaign skipped: no left-behind student in the demo district\n")
        return
    now = timezone.now()
    campaign = campaign_create(
        actor=User.objects.get(username="district_admin"), name=TARGETED_NAME, school_year="2026-2027",
        term="spring", instruments=[_newest(Instrument, c) for c in ("PHQ9", "GAD7", "ASQ")],
        ruleset=_newest(RuleSet, "adolescent-default"), target_grades=[], schools=schools,
        opens_at=now + datetime.timedelta(days=30), closes_at=now + datetime.timedelta(days=44),
        target="group", target_group=group,
    )  # fmt: skip
    out.write(f"targeted campaign: {TARGETED_NAME}, {campaign.target_students.count()} students, scheduled\n")


def seed(out) -> None:
    """Idempotent: a second run adds nothing."""
    homeroom = User.objects.filter(username="homeroom").first()
    role = RoleAssignment.objects.filter(user=homeroom, role=Role.HOMEROOM_TEACHER).select_related(
        "school_class__school__district"
    )
    assignment = role.first() if homeroom is not None else None
    if assignment is None:
        out.write("checklist demo skipped: run seed_demo first\n")
        return
    if _newest(Instrument, "TCHK") is None or _newest(RuleSet, "teacher-checklist") is None:
        definitions_load()  # the shipped files, as `manage.py load_instruments` stores them
    _checklist(out, homeroom, assignment.school_class)
    _targeted(out, assignment.school_class.school)
