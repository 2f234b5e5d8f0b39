"""Reads of mentors' talks and home visits for people: the terms and school years they are counted in, a teacher's
own students with their last talk and visit, and the coverage figures (谈心谈话 per term, 家访 per school year) per
class, school and district.

THE one definition of the periods: a school year runs 1 September – 31 August (roster.rollover.current_school_year);
its autumn term 1 September – 31 January, its spring term 1 February – 31 August (holidays included: a talk in the
winter holiday counts for the autumn term, one in the summer holiday for the spring term).

Every row reaches a person through roster.scoping; figures are counted in one aggregate query per page, whatever the
number of rows. May import: roster, screening.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from django.db.models import Count, Exists, Max, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from cases.models import HomeVisit, MentorTalk
from roster import scoping
from roster.masking import mask_name
from roster.models import (
    District,
    Mentorship,
    RoleAssignment,
    School,
    SchoolClass,
    Student,
    StudentStatus,
    school_year_label,
)
from roster.roles import Role
from roster.rollover import current_school_year
from screening.models import CampaignTerm

# Students on the school's roll: a student on leave (休学) is still to be visited.
ENROLLED = (StudentStatus.ACTIVE, StudentStatus.ON_LEAVE)

# --- Periods ---------------------------------------------------------------------------------------------------------

AUTUMN_STARTS = (9, 1)  # 1 September
SPRING_STARTS = (2, 1)  # 1 February


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive
    label: str


def school_year_period(today: date | None = None) -> Period:
    """The school year under way on `today`: 1 September – 31 August."""
    year = current_school_year(today or timezone.localdate())
    return Period(date(year, *AUTUMN_STARTS), date(year + 1, 8, 31), school_year_label(year))


def term_period(today: date | None = None) -> Period:
    """The term under way on `today`: autumn 1 September – 31 January, spring 1 February – 31 August."""
    today = today or timezone.localdate()
    year = current_school_year(today)
    spring_start = date(year + 1, *SPRING_STARTS)
    label = school_year_label(year)
    if today >= spring_start:
        return Period(spring_start, date(year + 1, 8, 31), f"{label} {CampaignTerm.SPRING.label}")
    return Period(date(year, *AUTUMN_STARTS), date(year + 1, 1, 31), f"{label} {CampaignTerm.AUTUMN.label}")


# --- A teacher's own students ----------------------------------------------------------------------------------------

# Who has a "my students" page: mentors (their mentees), homeroom teachers (their class), subject teachers (the
# classes they teach).
TEACHING_ROLES = frozenset({Role.MENTOR, Role.HOMEROOM_TEACHER, Role.SUBJECT_TEACHER})


def has_students_page(user) -> bool:
    """Whether the user holds a teaching role (no query beyond the scope)."""
    return bool(scoping.scope_for(user).roles & TEACHING_ROLES)


def _taught_classes(user) -> dict[int, str]:
    """Class id → the user's role there (homeroom first), for the classes they are homeroom or subject teacher of."""
    rows = RoleAssignment.objects.filter(
        user_id=user.pk, role__in=(Role.HOMEROOM_TEACHER, Role.SUBJECT_TEACHER), school_class__graduated_in__isnull=True
    ).values_list("school_class_id", "role")
    taught: dict[int, str] = {}
    for class_id, role in rows:
        if taught.get(class_id) != Role.HOMEROOM_TEACHER:
            taught[class_id] = role
    return taught


def my_students_for(user) -> tuple[QuerySet[Student], dict[int, str]]:
    """The enrolled students the user teaches (their current mentees, the students of the classes they are homeroom
    or subject teacher of), within roster.scoping's visible rows, with:
    `mentee` (the user is the current mentor), `last_talk` and `last_visit` (dates, by anyone: coverage is no secret
    to the people who fill it). And the user's classes: id → role.

    Access: any user; someone who teaches nobody gets an empty queryset. Names are shown by the page (their own
    students); nothing clinical is reachable from here.
    """
    taught = _taught_classes(user)
    mine = Mentorship.objects.filter(student=OuterRef("pk"), user_id=user.pk, left_at__isnull=True)
    students = (
        scoping.visible(user, Student)
        .filter(status__in=ENROLLED)
        .annotate(mentee=Exists(mine))
        .filter(Q(mentee=True) | Q(school_class_id__in=list(taught)))
        .annotate(last_talk=Max("mentor_talks__held_on"))
        .annotate(last_visit=Max("home_visits__visited_on"))
        .select_related("school_class", "school")
        .order_by("school_class__grade", "school_class__number", "student_no")
    )
    return students, taught


def records_by(user, student: Student) -> tuple[list[MentorTalk], list[HomeVisit]]:
    """The talks and visits `user` wrote about `student`, newest first (their own words; nobody else's)."""
    talks = scoping.visible(user, MentorTalk).filter(student=student, author_id=user.pk)
    visits = scoping.visible(user, HomeVisit).filter(student=student, author_id=user.pk)
    return list(talks), list(visits)


# --- Coverage --------------------------------------------------------------------------------------------------------

# Who reads coverage figures: the school's psychology teachers and principal (their school), a homeroom teacher (their
# class), the district and city centres (their schools, by school and by district).
COVERAGE_ROLES = frozenset(
    {Role.PSYCHOLOGY_TEACHER, Role.PRINCIPAL, Role.HOMEROOM_TEACHER, Role.DISTRICT_CENTRE, Role.CITY_CENTRE}
)
# Who reads the list of a class's students not yet visited (masked): the school's people, the class's homeroom teacher.
UNVISITED_ROLES = frozenset({Role.PSYCHOLOGY_TEACHER, Role.PRINCIPAL, Role.HOMEROOM_TEACHER})


def may_read_coverage(user) -> bool:
    scope = scoping.scope_for(user)
    return scope.unrestricted or bool(scope.roles & COVERAGE_ROLES)


def coverage_classes(user) -> QuerySet[SchoolClass]:
    """This year's classes whose coverage the user reads."""
    return scoping.within_roles(user, SchoolClass.objects.current(), COVERAGE_ROLES)


@dataclass
class CoverageRow:
    node: object  # a District, School or SchoolClass
    students: int = 0
    mentees: int = 0
    talked: int = 0  # mentees with at least one talk this term
    visited: int = 0  # students with at least one home visit this school year

    @property
    def talk_percent(self) -> int | None:
        return round(100 * self.talked / self.mentees) if self.mentees else None

    @property
    def visit_percent(self) -> int | None:
        return round(100 * self.visited / self.students) if self.students else None

    @property
    def without_mentor(self) -> int:
        return self.students - self.mentees


@dataclass
class Coverage:
    level: str  # "district", "school" or "class": what each row is
    rows: list[CoverageRow]
    total: CoverageRow
    term: Period
    year: Period
    unvisited: list[dict] = field(default_factory=list)  # for one class: masked names of students not yet visited


LEVEL_KEY = {"district": "school__district_id", "school": "school_id", "class": "school_class_id"}
LEVEL_LABEL = {"district": _("District"), "school": _("School"), "class": _("Class")}


def _flags(term: Period, year: Period) -> dict:
    current = Mentorship.objects.filter(student=OuterRef("pk"), left_at__isnull=True)
    talked = MentorTalk.objects.filter(student=OuterRef("pk"), held_on__range=(term.start, term.end))
    visited = HomeVisit.objects.filter(student=OuterRef("pk"), visited_on__range=(year.start, year.end))
    return {"mentored": Exists(current), "talked": Exists(talked), "visited": Exists(visited)}


def coverage_for(user, *, level: str, classes: QuerySet[SchoolClass], today: date | None = None) -> Coverage:
    """Coverage of the enrolled students of `classes` (already narrowed to the user's coverage_classes), one row per
    node of `level`: students, mentees, mentees talked with this term, students visited this school year. Nodes with
    no enrolled student get a row of zeros. Two queries, whatever the number of rows.

    Access: the caller passes classes from coverage_classes(user). Audit: none (figures, no student named).
    """
    term, year = term_period(today), school_year_period(today)
    flags = _flags(term, year)
    key = LEVEL_KEY[level]
    students = Student.objects.filter(status__in=ENROLLED, school_class__in=classes)
    counted = {
        row[key]: row
        for row in students.values(key).annotate(
            students=Count("pk"),
            mentees=Count("pk", filter=Q(flags["mentored"])),
            talked=Count("pk", filter=Q(flags["mentored"]) & Q(flags["talked"])),
            visited=Count("pk", filter=Q(flags["visited"])),
        )
    }
    if level == "class":
        nodes = list(classes.select_related("school").order_by("grade", "number"))
    elif level == "school":
        nodes = list(School.objects.filter(pk__in=classes.values("school_id")).order_by("code"))
    else:
        nodes = list(District.objects.filter(pk__in=classes.values("school__district_id")).order_by("division_code"))
    rows = []
    total = CoverageRow(node=None)
    for node in nodes:
        figures = counted.get(node.pk, {})
        row = CoverageRow(node=node, **{k: figures.get(k, 0) for k in ("students", "mentees", "talked", "visited")})
        rows.append(row)
        for name in ("students", "mentees", "talked", "visited"):
            setattr(total, name, getattr(total, name) + getattr(row, name))
    return Coverage(level=level, rows=rows, total=total, term=term, year=year)


def unvisited_in(school_class: SchoolClass, today: date | None = None) -> list[dict]:
    """The enrolled students of the class with no home visit this school year: student number and masked name."""
    year = school_year_period(today)
    visited = HomeVisit.objects.filter(student=OuterRef("pk"), visited_on__range=(year.start, year.end))
    rows = (
        Student.objects.filter(school_class=school_class, status__in=ENROLLED)
        .exclude(Exists(visited))
        .order_by("student_no")
        .values_list("pk", "student_no", "name")
    )
    return [{"pk": pk, "student_no": number, "name": mask_name(name)} for pk, number, name in rows]


def reads_unvisited(user, school_class: SchoolClass) -> bool:
    """Whether the user reads the class's list of students not yet visited (its school's psychology teachers and
    principal, its homeroom teacher)."""
    classes = scoping.within_roles(user, SchoolClass.objects.filter(pk=school_class.pk), UNVISITED_ROLES)
    return classes.exists()
