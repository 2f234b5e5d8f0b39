"""A realistic, entirely synthetic demo district: one city, three districts, twelve schools, ~6,000 students.

Names are generated from common surnames and given-name characters; the city and its division codes (99xxxx,
a province prefix no real province uses) are fictional. Deterministic for a given seed.
"""

from __future__ import annotations

import contextlib
import datetime
import random
from dataclasses import dataclass, field

from django.contrib.auth.hashers import make_password
from django.db import transaction
from simple_history.utils import bulk_update_with_history

from roster import services
from roster.identity import national_id_digest, national_id_tail
from roster.models import City, Gender, School, SchoolClass, SpecialGroup, Student, User
from roster.roles import Role
from roster.stages import SchoolStage

DEMO_PASSWORD = "demo-pass-2026"  # printed with the logins; demo databases only (seed_demo refuses without DEBUG)
CITY_NAME, CITY_CODE = "示范市", "990100"
DISTRICTS = [("东湖区", "990101"), ("西山区", "990102"), ("南溪县", "990121")]
# (name suffix, stage, grades screened, classes per grade); four schools a district: two primary, one junior, one
# senior.
SCHOOL_KINDS = [
    ("第一小学", SchoolStage.PRIMARY, (4, 5, 6), 4),
    ("实验小学", SchoolStage.PRIMARY, (4, 5, 6), 4),
    ("第一初级中学", SchoolStage.JUNIOR, (7, 8), 6),
    ("高级中学", SchoolStage.SENIOR, (10, 11), 6),
]
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
    "姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = "子涵浩宇欣怡梓轩雨桐一诺思远佳琪俊杰晨曦家豪诗涵博文嘉怡明轩雅婷天佑若曦志强静怡泽宇可馨文博晓彤睿哲欣然"
SPECIAL_GROUP_RATES = {
    "left_behind": 0.08,
    "single_parent": 0.10,
    "hardship": 0.03,
    "disability": 0.01,
    "prior_disorder": 0.01,
    "orphan": 0.003,
}
SCHOOL_YEAR_START = 2026  # grade g in the 2026-27 school year was born around 2026 - 6 - g


@dataclass
class DemoLogin:
    role: str
    username: str
    scope: str


@dataclass
class DemoResult:
    created: bool
    logins: list[DemoLogin] = field(default_factory=list)
    students: int = 0
    schools: int = 0


class _Names:
    def __init__(self, rng: random.Random):
        self.rng = rng

    def person(self, surname: str | None = None) -> str:
        given_length = self.rng.choice((1, 2, 2, 2))
        return (surname or self.rng.choice(SURNAMES)) + "".join(self.rng.choice(GIVEN) for _ in range(given_length))

    def phone(self) -> str:
        return self.rng.choice(("135", "139", "158", "177", "186", "189")) + f"{self.rng.randrange(10**8):08d}"


def demo_logins() -> list[DemoLogin]:
    """The showcase accounts, one per role, all in the first district and its first school."""
    school = School.objects.filter(district__city__division_code=CITY_CODE).order_by("code").first()
    homeroom_user = User.objects.filter(username="homeroom").first()
    homeroom_class = (
        homeroom_user.role_assignments.get(role=Role.HOMEROOM_TEACHER).school_class if homeroom_user else None
    )
    district = school.district if school else None
    return [
        DemoLogin(Role.CITY_ADMIN.label, "city_admin", CITY_NAME),
        DemoLogin(Role.CITY_CENTRE.label, "city_centre", CITY_NAME),
        DemoLogin(Role.DISTRICT_ADMIN.label, "district_admin", str(district)),
        DemoLogin(Role.DISTRICT_CENTRE.label, "district_centre", str(district)),
        DemoLogin(Role.DISTRICT_AUDITOR.label, "district_auditor", str(district)),
        DemoLogin(Role.SCHOOL_ADMIN.label, "school_admin", str(school)),
        DemoLogin(Role.PRINCIPAL.label, "principal", str(school)),
        DemoLogin(Role.PSYCHOLOGY_TEACHER.label, "counselor", f"{school}（{Role.HOMEROOM_TEACHER.label}）"),
        DemoLogin(Role.HOMEROOM_TEACHER.label, "homeroom", f"{school} {homeroom_class}"),
    ]


@transaction.atomic
def build_demo_district(*, seed: int = 2026, students_per_class: int = 42) -> DemoResult:
    """Create the demo city unless it exists. Idempotent: a second call only returns the logins."""
    if City.objects.filter(division_code=CITY_CODE).exists():
        seed_demo_duty()  # a demo built before the duty roster gets one
        demo_national_ids_backfill()  # and one built before national student numbers, those
        return DemoResult(created=False, logins=demo_logins())

    rng = random.Random(seed)
    names = _Names(rng)
    password_hash = make_password(DEMO_PASSWORD)  # hashed once: hashing per account would take minutes
    groups = {g.code: g for g in SpecialGroup.objects.all()}

    def staff(username: str, role: str, node, name: str | None = None) -> User:
        user = User.objects.filter(username=username).first()
        if user is None:
            user = services.staff_create(username=username, name=name or names.person(), phone=names.phone())
            user.password = password_hash
            user.save(update_fields=["password"])
        services.role_grant(actor=None, user=user, role=role, node=node)
        return user

    city = services.city_create(name=CITY_NAME, division_code=CITY_CODE)
    staff("city_admin", Role.CITY_ADMIN, city)
    staff("city_centre", Role.CITY_CENTRE, city)

    students: list[Student] = []
    tags: list[tuple[int, str]] = []  # (index into students, special-group code)
    schools = 0
    for d_index, (district_name, division_code) in enumerate(DISTRICTS, start=1):
        district = services.district_create(city=city, name=district_name, division_code=division_code)
        first = d_index == 1
        staff("district_admin" if first else f"d{d_index}_admin", Role.DISTRICT_ADMIN, district)
        staff("district_centre" if first else f"d{d_index}_centre", Role.DISTRICT_CENTRE, district)
        staff("district_auditor" if first else f"d{d_index}_auditor", Role.DISTRICT_AUDITOR, district)

        for s_index, (suffix, stage, grades, classes_per_grade) in enumerate(SCHOOL_KINDS, start=1):
            school = services.school_create(
                district=district,
                code=f"{division_code}{s_index:04d}",
                name=f"{district_name[:2]}{suffix}",
                stage=stage,
            )
            schools += 1
            showcase = first and s_index == 1
            prefix = f"s{school.code}"
            staff("school_admin" if showcase else f"{prefix}_admin", Role.SCHOOL_ADMIN, school)
            staff("principal" if showcase else f"{prefix}_principal", Role.PRINCIPAL, school)
            counselors = [
                staff(
                    "counselor" if showcase and n == 1 else f"{prefix}_psy{n}",
                    Role.PSYCHOLOGY_TEACHER,
                    school,
                )
                for n in range(1, 2 if len(grades) == 3 else 3)
            ]
            for grade in grades:
                for number in range(1, classes_per_grade + 1):
                    school_class = services.school_class_create(school=school, grade=grade, number=number)
                    if grade == grades[0] and number == 1:
                        # One person, two roles: the school's first psychology teacher is also a homeroom teacher.
                        services.role_grant(
                            actor=None, user=counselors[0], role=Role.HOMEROOM_TEACHER, node=school_class
                        )
                    else:
                        homeroom_name = "homeroom" if showcase and grade == grades[0] and number == 2 else None
                        staff(
                            homeroom_name or f"{prefix}_t{grade:02d}{number:02d}",
                            Role.HOMEROOM_TEACHER,
                            school_class,
                        )
                    students.extend(
                        _students_for(school, school_class, students_per_class, names, rng, tags, len(students))
                    )

    created = services.students_bulk_create(students)
    Through = Student.special_groups.through
    Through.objects.bulk_create(
        [Through(student_id=created[i].pk, specialgroup_id=groups[code].pk) for i, code in tags if code in groups],
        batch_size=2000,
    )
    seed_demo_duty()
    return DemoResult(created=True, logins=demo_logins(), students=len(created), schools=schools)


def seed_demo_duty() -> None:
    """The showcase school's duty table (its psychology teacher on school days, its principal as school leader), the
    first district's 24-hour duty line, and China's public holidays of this year and the next in every demo district.
    Idempotent: slots and days already there are left as they are."""
    from django.core.exceptions import ValidationError
    from django.utils import timezone

    from roster import duty
    from roster.models import District, DutyKind

    school = School.objects.filter(district__city__division_code=CITY_CODE).order_by("code").first()
    users = {u.username: u for u in User.objects.filter(username__in=["counselor", "principal", "district_centre"])}
    if school is None or len(users) < 3:
        return
    starts, ends = duty.school_hours(school)
    for weekday in range(5):
        for username, kind in (("counselor", DutyKind.PSYCHOLOGY_TEACHER), ("principal", DutyKind.SCHOOL_LEADER)):
            duty.duty_slot_add(
                None, where=school, user=users[username], kind=kind, weekday=weekday, starts=starts, ends=ends
            )
    for weekday in range(7):  # day and night: one slot in school hours, one overnight until the next morning
        for slot_starts, slot_ends in ((starts, ends), (ends, starts)):
            duty.duty_slot_add(
                None, where=school.district, user=users["district_centre"], kind=DutyKind.DISTRICT_CENTRE,
                weekday=weekday, starts=slot_starts, ends=slot_ends,
            )  # fmt: skip
    year = timezone.localdate().year
    for district in District.objects.filter(city__division_code=CITY_CODE):
        for seed_year in (year, year + 1):
            # chinesecalendar may have no data for next year yet: weekdays count as school days until it does.
            with contextlib.suppress(ValidationError):
                duty.calendar_seed_public_holidays(None, district, seed_year)


def demo_national_id(school_code: str, student_no: str) -> str:
    """A demo student's synthetic national student number (全国学籍号), to type in a walk-through: "G", the school
    code and the student number, e.g. G99010100012023040101. Nothing like a real one (those embed an ID number)."""
    return f"G{school_code}{student_no}"


def demo_national_ids_backfill() -> int:
    """Give the demo students of a demo built before national numbers theirs (as demo_national_id). Idempotent."""
    students = list(
        Student.objects.filter(school__district__city__division_code=CITY_CODE, national_id_digest="").select_related(
            "school"
        )
    )
    for student in students:
        number = demo_national_id(student.school.code, student.student_no)
        student.national_id_digest, student.national_id_tail = national_id_digest(number), national_id_tail(number)
    fields = ["national_id_digest", "national_id_tail"]
    bulk_update_with_history(students, Student, fields, batch_size=2000, default_change_reason="demo national numbers")
    return len(students)


def _students_for(
    school: School,
    school_class: SchoolClass,
    count: int,
    names: _Names,
    rng: random.Random,
    tags: list[tuple[int, str]],
    offset: int,
) -> list[Student]:
    entry_year = SCHOOL_YEAR_START - (
        school_class.grade - (1 if school_class.grade <= 6 else 7 if school_class.grade <= 9 else 10)
    )
    born_year = SCHOOL_YEAR_START - 6 - school_class.grade
    result = []
    for seq in range(1, count + 1):
        surname = rng.choice(SURNAMES)
        birth = datetime.date(born_year, 9, 1) + datetime.timedelta(days=rng.randrange(365))
        student_no = f"{entry_year}{school_class.grade:02d}{school_class.number:02d}{seq:02d}"
        number = demo_national_id(school.code, student_no)
        result.append(
            Student(
                school=school,
                school_class=school_class,
                student_no=student_no,
                national_id_digest=national_id_digest(number),
                national_id_tail=national_id_tail(number),
                name=names.person(surname),
                gender=rng.choice((Gender.MALE, Gender.FEMALE)),
                birth_date=birth,
                guardian_name=names.person(surname),
                guardian_phone=names.phone(),
            )
        )
        for code, rate in SPECIAL_GROUP_RATES.items():
            if rng.random() < rate:
                tags.append((offset + seq - 1, code))
    return result
