"""Staff roles, the level of the organisation tree each is held at, and what each admin role may grant.

The rules here are data; `roster.scoping` turns them into querysets.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Level(models.TextChoices):
    CITY = "city", _("City")
    DISTRICT = "district", _("District")
    SCHOOL = "school", _("School")
    CLASS = "class", _("Class")


class Role(models.TextChoices):
    CITY_ADMIN = "city_admin", _("City admin")
    CITY_CENTRE = "city_centre", _("City crisis intervention centre")
    DISTRICT_ADMIN = "district_admin", _("District admin")
    DISTRICT_CENTRE = "district_centre", _("District centre")
    DISTRICT_AUDITOR = "district_auditor", _("District auditor")
    SCHOOL_ADMIN = "school_admin", _("School admin")
    PRINCIPAL = "principal", _("Principal")
    PSYCHOLOGY_TEACHER = "psychology_teacher", _("Psychology teacher")
    HOMEROOM_TEACHER = "homeroom_teacher", _("Homeroom teacher")
    # 全员导师制 (seed 004): a teacher who mentors some students of the school (Mentorship rows say whom). The narrowest
    # access of any staff role: their mentees, and the care records they wrote about them.
    MENTOR = "mentor", _("Mentor")
    # 任课教师: held at each class taught; sees that class's students to raise a concern, nothing else.
    SUBJECT_TEACHER = "subject_teacher", _("Subject teacher")


ROLE_LEVEL: dict[str, str] = {
    Role.CITY_ADMIN: Level.CITY,
    Role.CITY_CENTRE: Level.CITY,
    Role.DISTRICT_ADMIN: Level.DISTRICT,
    Role.DISTRICT_CENTRE: Level.DISTRICT,
    Role.DISTRICT_AUDITOR: Level.DISTRICT,
    Role.SCHOOL_ADMIN: Level.SCHOOL,
    Role.PRINCIPAL: Level.SCHOOL,
    Role.PSYCHOLOGY_TEACHER: Level.SCHOOL,
    Role.HOMEROOM_TEACHER: Level.CLASS,
    Role.MENTOR: Level.SCHOOL,
    Role.SUBJECT_TEACHER: Level.CLASS,
}


def roles_at(level: str) -> list[str]:
    return [role for role, role_level in ROLE_LEVEL.items() if role_level == level]


# Seed 000: "上级管理员可以管理下级管理员". Each admin manages the admins one level below and the non-admin staff
# at their own node, and nobody else.
GRANTS: dict[str, frozenset[str]] = {
    Role.CITY_ADMIN: frozenset({Role.DISTRICT_ADMIN, Role.CITY_CENTRE}),
    Role.DISTRICT_ADMIN: frozenset({Role.SCHOOL_ADMIN, Role.DISTRICT_CENTRE, Role.DISTRICT_AUDITOR}),
    Role.SCHOOL_ADMIN: frozenset(
        {Role.PRINCIPAL, Role.PSYCHOLOGY_TEACHER, Role.HOMEROOM_TEACHER, Role.MENTOR, Role.SUBJECT_TEACHER}
    ),
}

# Roles that work in the administration site (configuration, rosters, read-only review). Teachers and principals
# work in the task inbox and never see the admin.
ADMIN_SITE_ROLES = frozenset(
    {
        Role.CITY_ADMIN,
        Role.CITY_CENTRE,
        Role.DISTRICT_ADMIN,
        Role.DISTRICT_CENTRE,
        Role.DISTRICT_AUDITOR,
        Role.SCHOOL_ADMIN,
    }
)

# Which roles may change which kind of organisation record (within their subtree). Keyed by model label.
EDITORS: dict[str, frozenset[str]] = {
    "roster.district": frozenset({Role.CITY_ADMIN}),
    "roster.school": frozenset({Role.CITY_ADMIN, Role.DISTRICT_ADMIN}),
    "roster.schoolclass": frozenset({Role.SCHOOL_ADMIN}),
    "roster.student": frozenset({Role.SCHOOL_ADMIN}),
    # Issue 20: the daily absence list is imported by the school's admin or the district's, for its schools; a leave
    # (休学) is recorded by the school admin or the psychology teacher (roster.leaves).
    "roster.absence": frozenset({Role.SCHOOL_ADMIN, Role.DISTRICT_ADMIN}),
    "roster.leave": frozenset({Role.SCHOOL_ADMIN, Role.PSYCHOLOGY_TEACHER}),
    # DESIGN: the city configures campaigns city-wide; a district may run its own within its schools.
    "screening.campaign": frozenset({Role.CITY_ADMIN, Role.CITY_CENTRE, Role.DISTRICT_ADMIN, Role.DISTRICT_CENTRE}),
}

# Roles that reach many schools' records, or read a school's cases and screening results, sign in with a second
# factor (a TOTP code) as well as their password; for the others it is optional (roster.two_factor). Nobody but the
# holder sets the password of an account holding one of them: an administrator sends them a link to choose their own
# (roster.services.staff_password_by_holder_only).
TWO_FACTOR_ROLES = frozenset(
    {
        Role.CITY_ADMIN,
        Role.CITY_CENTRE,
        Role.DISTRICT_ADMIN,
        Role.DISTRICT_CENTRE,
        Role.DISTRICT_AUDITOR,
        Role.PRINCIPAL,
        Role.PSYCHOLOGY_TEACHER,
    }
)
