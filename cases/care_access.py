"""Who may do what with care beyond screening (issue 20): concerns, signals and their triage, help records, mentors'
talks, home visits. The one home of these rules; which rows a role reads at all is registered in cases.access
(`register_case_models`) and enforced by roster.scoping. Services call these predicates; pages never decide by hand.

May import: roster, screening.
"""

from __future__ import annotations

from roster.models import Mentorship, RoleAssignment, Student
from roster.roles import Role


def mentors(user, student: Student) -> bool:
    """Whether `user` is the student's current mentor (全员导师制)."""
    return Mentorship.objects.filter(student=student, user=user, left_at__isnull=True).exists()


def teaches(user, student: Student) -> bool:
    """Whether `user` teaches the student: the homeroom or a subject teacher of the student's class, or their current
    mentor (an active account, a role held now)."""
    if not getattr(user, "is_active", False):
        return False
    at_class = RoleAssignment.objects.filter(
        user=user, role__in=(Role.HOMEROOM_TEACHER, Role.SUBJECT_TEACHER), school_class_id=student.school_class_id
    ).exists()
    return at_class or mentors(user, student)


# --- Talks and home visits (cases.care_records) ---------------------------------------------------------------------


def homeroom_of(user, student: Student) -> bool:
    """Whether `user` is the homeroom teacher of the student's class (an active account)."""
    if not getattr(user, "is_active", False) or not student.school_class_id:
        return False
    return RoleAssignment.objects.filter(
        user=user, role=Role.HOMEROOM_TEACHER, school_class_id=student.school_class_id
    ).exists()


def may_record_talk(user, student: Student) -> bool:
    """谈心谈话 are the mentor's (全员导师制): the student's current mentor, an active account."""
    return bool(getattr(user, "is_active", False)) and mentors(user, student)


def may_record_home_visit(user, student: Student) -> bool:
    """家访: the homeroom teacher of the student's class, or the student's current mentor."""
    return homeroom_of(user, student) or may_record_talk(user, student)


# --- Signals, concerns and the hotline (issue 20 items 1-2) ---------------------------------------------------------

# Who reads a school's signal queue: its psychology teachers (who triage), its principal, and above the school the
# district centre and auditor and the city centre (read-only). Never a homeroom, subject teacher or mentor: they see
# only the concerns they raised, and only whether each was seen.
QUEUE_ROLES = frozenset(
    {Role.PSYCHOLOGY_TEACHER, Role.PRINCIPAL, Role.DISTRICT_CENTRE, Role.DISTRICT_AUDITOR, Role.CITY_CENTRE}
)
# Who raises a concern about any student of their school besides those who teach the student.
CONCERN_SCHOOL_ROLES = (Role.PSYCHOLOGY_TEACHER, Role.PRINCIPAL)
# The roles that may raise a concern at all (no query: the nav link and the page's gate read the scope).
CONCERN_ROLES = frozenset({Role.HOMEROOM_TEACHER, Role.SUBJECT_TEACHER, Role.MENTOR, *CONCERN_SCHOOL_ROLES})


def _holds_at_school(user, roles, school_id: int) -> bool:
    return (
        getattr(user, "is_active", False)
        and RoleAssignment.objects.filter(user_id=user.pk, role__in=list(roles), school_id=school_id).exists()
    )


def may_triage(user, signal) -> bool:
    """Whether `user` triages the signal: a psychology teacher of the signal's school (an active account)."""
    return _holds_at_school(user, (Role.PSYCHOLOGY_TEACHER,), signal.school_id)


def may_raise_concern(user, student: Student) -> bool:
    """Whether `user` raises a concern about the student (关注上报): someone who teaches them (homeroom, subject
    teacher, mentor), or a psychology teacher or the principal of the student's school."""
    return teaches(user, student) or _holds_at_school(user, CONCERN_SCHOOL_ROLES, student.school_id)


def may_record_hotline(user, student: Student) -> bool:
    """Whether `user` records a hotline call about the student: the district centre of the student's district (on
    duty or not: whoever picked up the phone)."""
    from roster.models import School

    district_id = School.objects.filter(pk=student.school_id).values_list("district_id", flat=True).first()
    return (
        getattr(user, "is_active", False)
        and RoleAssignment.objects.filter(user_id=user.pk, role=Role.DISTRICT_CENTRE, district_id=district_id).exists()
    )


# --- Help records (一人一案, cases.help_records) ----------------------------------------------------------------------

# Who writes a school's help records: its psychology teachers and principal. The person responsible for one reads it
# (cases.access registers them as its author) but changes it only through them.
HELP_RECORD_WRITERS = frozenset({Role.PSYCHOLOGY_TEACHER, Role.PRINCIPAL})


def may_write_help_record(user, student: Student) -> bool:
    """Whether `user` writes, changes and ends the student's help records: a psychology teacher or the principal of
    the student's school (an active account, a role held now)."""
    if not getattr(user, "is_active", False) or getattr(user, "is_anonymous", True):
        return False
    return RoleAssignment.objects.filter(
        user_id=user.pk, role__in=HELP_RECORD_WRITERS, school_id=student.school_id
    ).exists()


def concern_students(user):
    """The students `user` may raise a concern about (may_raise_concern as a queryset): their classes' as homeroom or
    subject teacher, their current mentees, every student of a school where they are psychology teacher or principal.
    Enrolled students only; within roster.scoping's visible students."""
    from django.db.models import Q

    from roster import scoping
    from roster.models import StudentStatus

    if not getattr(user, "is_active", False):
        return Student.objects.none()
    rows = RoleAssignment.objects.filter(user_id=user.pk, role__in=list(CONCERN_ROLES)).values_list(
        "role", "school_class_id", "school_id"
    )
    classes, schools, mentor = set(), set(), False
    for role, class_id, school_id in rows:
        if role in (Role.HOMEROOM_TEACHER, Role.SUBJECT_TEACHER) and class_id:
            classes.add(class_id)
        elif role in CONCERN_SCHOOL_ROLES and school_id:
            schools.add(school_id)
        elif role == Role.MENTOR:
            mentor = True
    q = Q(school_class_id__in=classes) | Q(school_id__in=schools)
    if mentor:
        q |= Q(pk__in=Mentorship.objects.filter(user_id=user.pk, left_at__isnull=True).values("student_id"))
    return scoping.visible(user, Student).filter(q, status=StudentStatus.ACTIVE)


def hotline_students(user):
    """The students of the districts where `user` is the district centre: whom a hotline call may be about."""
    from roster import scoping
    from roster.models import StudentStatus

    districts = RoleAssignment.objects.filter(user_id=user.pk, role=Role.DISTRICT_CENTRE).values("district_id")
    return scoping.visible(user, Student).filter(school__district_id__in=districts, status=StudentStatus.ACTIVE)
