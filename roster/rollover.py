"""The school-year rollover (学年升级, issue 19 item 4): every current class moves up a grade and the top grade of each
school's stage (roster.stages: 小学六年级, 初三, 高三) graduates: its classes are archived (`SchoolClass.graduated_in`)
and its enrolled students become GRADUATED. Once per school and school year, over a district or a whole city, by its
district or city admin; undone exactly (RolloverSchool records what was done) until the first roster import after it.

Decisions:
- Students on leave (休学) in a graduating class do not graduate: they usually come back into a later cohort. They stay
  on leave, in their (archived) class, until the school imports them into a current one; the preview lists them.
- Students who had left already (transferred, withdrawn, graduated) keep their status; only enrolled ones graduate.
- A school with a class above its stage's top grade is held back and listed as a problem: fix the class or the
  school's stage, then run again (the other schools are not held back). No other collision can happen: the top grade
  leaves the current classes first and every other grade moves up into the place the grade above has left.
- Open cases of graduates are not roster's business: `students_left` is sent inside the transaction (through
  roster.leaving) and the apps above act on it; undo sends `students_returned`.
- Everything is done in bulk (one UPDATE per grade, bulk history rows): 100,000 students in seconds.

May import: roster only.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.http import Http404
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from roster import scoping
from roster.leaving import students_status_changed
from roster.models import (
    City,
    District,
    ImportJob,
    ImportKind,
    ImportStatus,
    Rollover,
    RolloverSchool,
    RolloverStatus,
    School,
    SchoolClass,
    Student,
    StudentStatus,
    User,
    school_year_label,
)
from roster.roles import Role
from roster.stages import SchoolStage, stage_grades

ROLLOVER_ROLES = frozenset({Role.CITY_ADMIN, Role.DISTRICT_ADMIN})
# How roster.importing names its writes in the history (ImportRequest.change_reason): an import that changed a row of
# a rolled-over school is what ends the time to undo.
IMPORT_REASON_PREFIX = "roster import:"
CHUNK = 5000  # ids per IN (...) list: well within SQLite's and PostgreSQL's parameter limits


class RolloverRefused(Exception):
    """The rollover or its undo cannot be done now; the message says why and what to do."""


def current_school_year(today: date | None = None) -> int:
    """The school year under way on `today` (September start): 2026 from 1 September 2026 to 31 August 2027."""
    today = today or timezone.localdate()
    return today.year if today.month >= 9 else today.year - 1


def top_grade(stage: str) -> int:
    return stage_grades(stage)[-1]


def _reason(message: str) -> str:
    """A change reason in the site's language (history is read by the district, whatever the runner's language);
    `message` marked with gettext_noop so that makemessages keeps it."""
    with translation.override(settings.LANGUAGE_CODE):
        return _(message)[:100]


# --- Who ------------------------------------------------------------------------------------------------------------


def rollover_scopes_for(user) -> list[City | District]:
    """The cities and districts this user may roll over: their city as city admin (and its districts), their district
    as district admin. Access: any user; no such role means an empty list."""
    cities = list(scoping.within_roles(user, City, {Role.CITY_ADMIN}).order_by("division_code"))
    districts = list(
        scoping.within_roles(user, District, ROLLOVER_ROLES).select_related("city").order_by("division_code")
    )
    return [*cities, *districts]


def may_roll_over(user) -> bool:
    """Whether the user holds a role that runs rollovers somewhere (no query): what a menu asks."""
    scope = scoping.scope_for(user)
    return scope.unrestricted or bool(scope.roles & ROLLOVER_ROLES)


def rollover_schools(actor: User | None, scope: City | District) -> QuerySet[School]:
    """The schools of `scope` the actor rolls over. Access: a city admin of the city, a district admin of the
    district (or a city admin above it); anyone else gets Http404, as for a place that does not exist. `actor` None
    is the system (the command line without --user)."""
    model = type(scope)
    if model not in (City, District):
        raise TypeError(f"a rollover is over a city or a district, not a {model.__name__}")
    held = actor is None or scoping.within_roles(actor, model.objects.filter(pk=scope.pk), ROLLOVER_ROLES).exists()
    if not held:
        raise Http404(_("Not found, or not in your scope."))
    schools = School.objects.filter(**{"district" if model is District else "district__city": scope})
    if actor is not None:
        schools = scoping.within_roles(actor, schools, ROLLOVER_ROLES)
    return schools.order_by("code")


def rollovers_for(user) -> QuerySet[Rollover]:
    """The runs over the places this user may roll over, newest first."""
    places = rollover_scopes_for(user)
    cities = [p.pk for p in places if isinstance(p, City)]
    districts = [p.pk for p in places if isinstance(p, District)]
    return Rollover.objects.filter(Q(city__in=cities) | Q(district__in=districts)).select_related(
        "city", "district", "created_by", "undone_by"
    )


def rollover_by_id(user, run_id) -> Rollover:
    """One run the user may see and undo; Http404 otherwise (missing or out of scope look the same)."""
    try:
        run_id = int(run_id)
    except (TypeError, ValueError):
        raise Http404(_("Not found, or not in your scope.")) from None
    run = rollovers_for(user).filter(pk=run_id).first()
    if run is None:
        raise Http404(_("Not found, or not in your scope."))
    return run


# --- Preview --------------------------------------------------------------------------------------------------------


@dataclass
class SchoolPlan:
    """What a rollover does (or did) at one school."""

    school_id: int
    code: str
    name: str
    stage: str
    top_grade: int
    classes_up: int = 0
    classes_graduating: int = 0
    students_up: int = 0
    students_graduating: int = 0
    on_leave_graduating: int = 0
    done_in: int | None = None  # rolled over already, for this school year (or a later one): skipped
    problems: list[str] = field(default_factory=list)  # the school is held back
    notes: list[str] = field(default_factory=list)  # worth knowing, nothing held back
    moving: dict[int, list[int]] = field(default_factory=dict)  # grade → class ids moving up from it
    graduating: list[int] = field(default_factory=list)  # class ids

    @property
    def skipped(self) -> bool:
        return self.done_in is not None

    @property
    def stage_label(self) -> str:
        return str(SchoolStage(self.stage).label) if self.stage in SchoolStage.values else self.stage

    @property
    def ready(self) -> bool:
        return not self.skipped and not self.problems

    def as_dict(self) -> dict:
        keys = ["school_id", "code", "name", "stage", "top_grade", "classes_up", "classes_graduating", "students_up",
                "students_graduating", "on_leave_graduating", "done_in", "problems", "notes"]  # fmt: skip
        return {key: getattr(self, key) for key in keys}


@dataclass
class RolloverPreview:
    scope: City | District
    school_year: int
    schools: list[SchoolPlan]

    @property
    def ready(self) -> list[SchoolPlan]:
        return [s for s in self.schools if s.ready]

    @property
    def skipped(self) -> list[SchoolPlan]:
        return [s for s in self.schools if s.skipped]

    @property
    def held_back(self) -> list[SchoolPlan]:
        return [s for s in self.schools if not s.skipped and s.problems]

    def totals(self) -> dict[str, int]:
        keys = ["classes_up", "classes_graduating", "students_up", "students_graduating", "on_leave_graduating"]
        return {key: sum(getattr(s, key) for s in self.ready) for key in keys}

    def summary(self) -> dict:
        return {
            "school_year": self.school_year,
            "totals": self.totals(),
            "schools": [s.as_dict() for s in self.schools],
        }


def _check_year(school_year: int) -> int:
    try:
        school_year = int(school_year)
    except (TypeError, ValueError):
        raise RolloverRefused(_("Choose a school year.")) from None
    if not 2000 <= school_year <= 2100:
        raise RolloverRefused(_("%(year)s is not a school year this system runs.") % {"year": school_year})
    return school_year


def _plans(schools: list[School], school_year: int) -> list[SchoolPlan]:
    """Each school's plan, in three queries whatever the number of schools and students."""
    ids = [s.pk for s in schools]
    done: dict[int, int] = {}
    for school_id, year in RolloverSchool.objects.filter(
        school_id__in=ids, undone=False, school_year__gte=school_year
    ).values_list("school_id", "school_year"):
        done[school_id] = max(year, done.get(school_id, year))
    classes = defaultdict(list)
    for pk, school_id, grade, number in (
        SchoolClass.objects.current().filter(school_id__in=ids).order_by("grade", "number")
        .values_list("pk", "school_id", "grade", "number")
    ):  # fmt: skip
        classes[school_id].append((pk, grade, number))
    students: dict[tuple[int, str], int] = defaultdict(int)
    counted = (
        Student.objects.filter(school_id__in=ids, school_class__graduated_in__isnull=True)
        .filter(status__in=[StudentStatus.ACTIVE, StudentStatus.ON_LEAVE])
        .values_list("school_class_id", "status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for class_id, status, n in counted:
        students[(class_id, status)] = n

    plans = []
    for school in schools:
        top = top_grade(school.stage)
        plan = SchoolPlan(school.pk, school.code, str(school), school.stage, top, done_in=done.get(school.pk))
        above = {}
        for pk, grade, number in classes[school.pk]:
            active, on_leave = students[(pk, StudentStatus.ACTIVE)], students[(pk, StudentStatus.ON_LEAVE)]
            if grade == top:
                plan.graduating.append(pk)
                plan.classes_graduating += 1
                plan.students_graduating += active
                plan.on_leave_graduating += on_leave
            elif grade < top:
                plan.moving.setdefault(grade, []).append(pk)
                plan.classes_up += 1
                plan.students_up += active
            else:
                above[(grade, number)] = pk
        if above:
            plan.problems.append(
                _(
                    "%(count)d classes are above grade %(top)d, the top grade of the school's stage (%(stage)s): "
                    "%(classes)s. Correct the classes or the school's stage, then run the rollover again."
                )
                % {
                    "count": len(above),
                    "top": top,
                    "stage": school.get_stage_display(),
                    "classes": "、".join(_class_label(g, n) for g, n in sorted(above)),
                }
            )
        if plan.on_leave_graduating:
            plan.notes.append(
                _(
                    "%(count)d students on leave (休学) in graduating classes do not graduate: they stay on leave in "
                    "their archived class until the school imports them into a current class."
                )
                % {"count": plan.on_leave_graduating}
            )
        if not classes[school.pk]:
            plan.notes.append(_("No current classes: nothing to move up."))
        plans.append(plan)
    return plans


def _class_label(grade: int, number: int) -> str:
    return _("Grade %(grade)d, class %(number)d") % {"grade": grade, "number": number}


def rollover_preview(*, actor: User | None, scope: City | District, school_year: int) -> RolloverPreview:
    """What a rollover of `scope` into `school_year` would do, per school, with every problem. Writes nothing.

    Access: see rollover_schools (Http404 otherwise). Audit: none (counts only, no student is shown).
    """
    school_year = _check_year(school_year)
    schools = list(rollover_schools(actor, scope))
    return RolloverPreview(scope, school_year, _plans(schools, school_year))


# --- Run ------------------------------------------------------------------------------------------------------------


@dataclass
class RolloverResult:
    run: Rollover | None  # None: nothing was done (every school skipped or held back)
    preview: RolloverPreview

    @property
    def message(self) -> str:
        label = school_year_label(self.preview.school_year)
        if self.run is None:
            if self.preview.held_back:
                return _("Nothing was changed: the schools not yet rolled over into %(year)s have problems.") % {
                    "year": label
                }
            return _("Nothing was changed: every school is already rolled over into %(year)s.") % {"year": label}
        totals = self.preview.totals()
        return _(
            "Rolled over into %(year)s: %(schools)d schools, %(up)d classes moved up a grade, %(grad)d classes and "
            "%(students)d students graduated."
        ) % {
            "year": label,
            "schools": len(self.preview.ready),
            "up": totals["classes_up"],
            "grad": totals["classes_graduating"],
            "students": totals["students_graduating"],
        }


@transaction.atomic
def rollover_run(*, actor: User | None, scope: City | District, school_year: int) -> RolloverResult:
    """Roll the schools of `scope` not yet rolled over into `school_year`: top-grade classes archived and their
    enrolled students graduated, every other current class up a grade. A second run changes nothing and says so.

    Access: see rollover_schools (Http404 otherwise). Audit: history rows for every class and graduate, with the
    actor and the reason 学年升级：毕业 / 学年升级：升年级; a Rollover row with what was done per school.
    """
    school_year = _check_year(school_year)
    school_ids = list(rollover_schools(actor, scope).values_list("pk", flat=True))
    # Locked: a second run (another admin, another tab) waits here and then finds the schools done.
    schools = list(School.objects.select_for_update().filter(pk__in=school_ids).order_by("code"))
    preview = RolloverPreview(scope, school_year, _plans(schools, school_year))
    ready = preview.ready
    if not ready:
        return RolloverResult(None, preview)

    now = timezone.now()
    run = Rollover.objects.create(
        school_year=school_year,
        city=scope if isinstance(scope, City) else None,
        district=scope if isinstance(scope, District) else None,
        created_by=actor,
        applied_at=now,
        summary=preview.summary(),
    )
    graduating = [pk for plan in ready for pk in plan.graduating]
    moving_by_grade: dict[int, list[int]] = defaultdict(list)
    for plan in ready:
        for grade, pks in plan.moving.items():
            moving_by_grade[grade].extend(pks)

    graduates = _graduate(graduating, actor=actor, now=now)
    # Graduating classes leave the current ones first, then each grade moves up, the highest first: the place each
    # class moves to is always free (PostgreSQL checks the unique index row by row, within one UPDATE too).
    SchoolClass.objects.filter(pk__in=graduating).update(graduated_in=school_year - 1)
    for grade in sorted(moving_by_grade, reverse=True):
        for chunk in _chunks(moving_by_grade[grade]):
            SchoolClass.objects.filter(pk__in=chunk).update(grade=grade + 1)
    moved = [pk for pks in moving_by_grade.values() for pk in pks]
    _class_history(graduating, actor=actor, reason=_reason(gettext_noop("School-year rollover: graduated")), now=now)
    _class_history(moved, actor=actor, reason=_reason(gettext_noop("School-year rollover: up a grade")), now=now)

    graduates_by_school: dict[int, list[int]] = defaultdict(list)
    for pk, school_id in graduates:
        graduates_by_school[school_id].append(pk)
    RolloverSchool.objects.bulk_create(
        [
            RolloverSchool(
                rollover=run,
                school_id=plan.school_id,
                school_year=school_year,
                moved_class_ids=sorted(pk for pks in plan.moving.values() for pk in pks),
                graduated_class_ids=sorted(plan.graduating),
                graduated_student_ids=sorted(graduates_by_school[plan.school_id]),
            )
            for plan in ready
        ]
    )
    leaving = [(pk, StudentStatus.ACTIVE, StudentStatus.GRADUATED) for pk, _school in graduates]
    students_status_changed(changes=leaving, actor=actor)  # students_left, for the apps above (their cases' clocks)
    return RolloverResult(run, preview)


def _chunks(ids: list[int]):
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def _graduate(class_ids: list[int], *, actor, now) -> list[tuple[int, int]]:
    """The enrolled students of these classes set GRADUATED, with history: (student id, school id) of each."""
    graduates = []
    for chunk in _chunks(class_ids):
        enrolled = Student.objects.select_for_update().filter(school_class_id__in=chunk, status=StudentStatus.ACTIVE)
        graduates += list(enrolled.order_by("pk").values_list("pk", "school_id"))
        Student.objects.filter(school_class_id__in=chunk, status=StudentStatus.ACTIVE).update(
            status=StudentStatus.GRADUATED
        )
    reason = _reason(gettext_noop("School-year rollover: graduated"))
    _student_history([pk for pk, _school in graduates], actor=actor, reason=reason, now=now)
    return graduates


def _student_history(ids: list[int], *, actor, reason: str, now) -> None:
    """History rows for students changed in bulk, with their special groups as they stand (Student's history keeps
    them: HistoricalRecords(m2m_fields=...)), as roster.importing writes them."""
    through = Student.special_groups.through
    m2m = Student.history.model._meta.get_field("historicalstudent_special_groups").related_model
    for chunk in _chunks(ids):
        records = Student.history.bulk_history_create(
            list(Student.objects.filter(pk__in=chunk).order_by("pk")),
            update=True,
            default_user=actor,
            default_change_reason=reason,
            default_date=now,
        )
        record_of = {record.id: record.pk for record in records}
        m2m.objects.bulk_create(
            [
                m2m(id=row_id, history_id=record_of[student_id], student_id=student_id, specialgroup_id=group_id)
                for row_id, student_id, group_id in through.objects.filter(student_id__in=chunk).values_list(
                    "id", "student_id", "specialgroup_id"
                )
            ]
        )


def _class_history(ids: list[int], *, actor, reason: str, now) -> None:
    for chunk in _chunks(ids):
        SchoolClass.history.bulk_history_create(
            list(SchoolClass.objects.filter(pk__in=chunk).order_by("pk")),
            update=True,
            default_user=actor,
            default_change_reason=reason,
            default_date=now,
        )


# --- Undo -----------------------------------------------------------------------------------------------------------


def _imported_since(school_ids: list[int], since) -> bool:
    """Whether a student or class import finished at one of these schools after `since`: a job done (its school
    given), or any import's writes (the admin's jobs for files with a school-code column, the command line) in the
    students' and classes' history. An import that changed nothing at these schools leaves nothing to protect."""
    jobs = ImportJob.objects.filter(
        status=ImportStatus.DONE,
        kind__in=[ImportKind.STUDENTS, ImportKind.CLASSES],
        finished_at__gt=since,
        school_id__in=school_ids,
    )
    if jobs.exists():
        return True
    for model in (Student, SchoolClass):
        written = model.history.filter(
            history_date__gt=since, school_id__in=school_ids, history_change_reason__startswith=IMPORT_REASON_PREFIX
        )
        if written.exists():
            return True
    return False


def rollover_undo_refusal(run: Rollover) -> str:
    """Why this run cannot be undone now ("" when it can): undone already, a later rollover at one of its schools,
    or a roster import after it (the new class lists would be undone with it)."""
    if run.status != RolloverStatus.APPLIED:
        return _("This rollover has been undone already.")
    school_ids = list(run.schools.filter(undone=False).values_list("school_id", flat=True))
    later = RolloverSchool.objects.filter(school_id__in=school_ids, undone=False, school_year__gt=run.school_year)
    if later.exists():
        return _("A later school-year rollover includes these schools: undo that one first.")
    if _imported_since(school_ids, run.applied_at):
        return _(
            "Classes or students have been imported at these schools since the rollover: it can no longer be undone. "
            "Correct single classes and students in the administration instead."
        )
    return ""


@transaction.atomic
def rollover_undo(*, actor: User | None, run: Rollover) -> Rollover:
    """Reverse exactly what `run` did: its moved classes down a grade, its archived classes current again, its
    graduates enrolled again (those still graduated at that school). Refused (RolloverRefused) once a roster import
    finished at one of its schools after it, or when a class made since stands where a class would go back.

    Access: whoever may roll over the run's place (rollover_schools; Http404 otherwise). Audit: history rows with
    the actor and the reason 撤销学年升级; the run marked undone, by whom and when.
    """
    rollover_schools(actor, run.scope)  # the access check
    run = Rollover.objects.select_for_update().get(pk=run.pk)
    refusal = rollover_undo_refusal(run)
    if refusal:
        raise RolloverRefused(refusal)
    rows = list(run.schools.filter(undone=False).select_related("school"))
    list(School.objects.select_for_update().filter(pk__in=[r.school_id for r in rows]).order_by("pk"))
    moved_ids = [pk for r in rows for pk in r.moved_class_ids]
    graduated_class_ids = [pk for r in rows for pk in r.graduated_class_ids]
    _refuse_collisions(rows)

    now = timezone.now()
    reason = _reason(gettext_noop("School-year rollover undone"))
    moved_by_grade: dict[int, list[int]] = defaultdict(list)
    for chunk in _chunks(moved_ids):
        for pk, grade in SchoolClass.objects.current().filter(pk__in=chunk).values_list("pk", "grade"):
            moved_by_grade[grade].append(pk)
    for grade in sorted(moved_by_grade):  # the lowest first: the place below is always free
        for chunk in _chunks(moved_by_grade[grade]):
            SchoolClass.objects.filter(pk__in=chunk).update(grade=grade - 1)
    restored_classes = []
    for chunk in _chunks(graduated_class_ids):
        archived = SchoolClass.objects.filter(pk__in=chunk, graduated_in=run.school_year - 1)
        restored_classes += list(archived.values_list("pk", flat=True))
        archived.update(graduated_in=None)

    graduated = {pk for r in rows for pk in r.graduated_student_ids}
    returned = []
    for chunk in _chunks(graduated_class_ids):
        still = Student.objects.select_for_update().filter(school_class_id__in=chunk, status=StudentStatus.GRADUATED)
        returned += [pk for pk in still.values_list("pk", flat=True) if pk in graduated]
    for chunk in _chunks(returned):
        Student.objects.filter(pk__in=chunk).update(status=StudentStatus.ACTIVE)
    _student_history(returned, actor=actor, reason=reason, now=now)
    _class_history([pk for pks in moved_by_grade.values() for pk in pks] + restored_classes, actor=actor,
                   reason=reason, now=now)  # fmt: skip

    RolloverSchool.objects.filter(pk__in=[r.pk for r in rows]).update(undone=True)
    run.status, run.undone_at, run.undone_by = RolloverStatus.UNDONE, now, actor
    run.save(update_fields=["status", "undone_at", "undone_by"])
    back = [(pk, StudentStatus.GRADUATED, StudentStatus.ACTIVE) for pk in sorted(returned)]
    students_status_changed(changes=back, actor=actor)  # students_returned: their cases' clocks run again
    return run


def _refuse_collisions(rows: list[RolloverSchool]) -> None:
    """A current class made since the run (in the admin) standing where a class would go back: refused, named."""
    school_ids = [r.school_id for r in rows]
    ours = {pk for r in rows for pk in (*r.moved_class_ids, *r.graduated_class_ids)}
    taken = defaultdict(set)
    back = defaultdict(set)
    for pk, school_id, grade, number, graduated_in in SchoolClass.objects.filter(school_id__in=school_ids).values_list(
        "pk", "school_id", "grade", "number", "graduated_in"
    ):
        if pk not in ours:
            if graduated_in is None:
                taken[school_id].add((grade, number))
            continue
        back[school_id].add((grade - 1, number) if graduated_in is None else (grade, number))
    problems = []
    for r in rows:
        clash = sorted(taken[r.school_id] & back[r.school_id])
        if clash:
            problems.append(f"{r.school}: " + "、".join(_class_label(g, n) for g, n in clash))
    if problems:
        raise RolloverRefused(
            _("Classes made since the rollover stand where classes would go back; remove or renumber them first: %s")
            % "；".join(problems)
        )
