"""The special-groups ledger (特殊群体学生台账, seed 003; 三个清单, seed 001; issue 20 item 3): the members of the
ledger groups (or of one chosen group, an exam-year group too) with their class and their 一人一案 help record: its
status, responsible person and review date. Selectors only, a constant number of queries whatever the size of the
scope: the rows in order (filtered by their record in the database), the records of the rows shown (one query a page,
one a chunk of an export: a city's 15,000 rows are not each given four subqueries to sort them), and the counts per
group (two queries).

A row is one member of one group: a tag row (Student.special_groups' through model, `student` and `specialgroup`)
for a tagged group, or a Student annotated with the group for an exam-year group (members are a grade's students).
`student_of(row)` gives the student either way.

Who reads it: the readers of help records (cases.access: the school's psychology teachers and principal, the district
centre and auditor, the city centre), over the subtrees where they hold such a role. A homeroom teacher or a mentor
responsible for a help record reads that record, not the ledger. The ledger carries no measures' text.
May import: roster, screening.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from django.db.models import CharField, Count, Exists, F, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Coalesce, NullIf
from django.utils import timezone

from cases.models import HelpRecord, HelpStatus
from roster import scoping
from roster.models import District, School, SchoolClass, SpecialGroup, Student, StudentStatus
from roster.special_groups import ledger_groups_in_use, members, members_q, tagged_memberships

RULE_MODEL = HelpRecord  # whose readers read the ledger
ENROLLED = (StudentStatus.ACTIVE, StudentStatus.ON_LEAVE)  # members_q's rule for tagged groups


# --- Who reads, over what -----------------------------------------------------------------------------------------


def reads_group_ledger(user) -> bool:
    """Whether the user holds a role that reads the special-groups ledger somewhere (no query): the pages' gate."""
    return scoping.may_read_some(user, RULE_MODEL)


def ledger_districts(user) -> QuerySet[District]:
    return scoping.within_readers_scope(user, District, RULE_MODEL).order_by("division_code", "pk")


def ledger_schools(user, district: District | None = None) -> QuerySet[School]:
    schools = scoping.within_readers_scope(user, School, RULE_MODEL)
    return (schools.filter(district=district) if district is not None else schools).order_by("code", "pk")


def ledger_classes(user, school: School | None) -> QuerySet[SchoolClass]:
    """The current classes of the chosen school (none before a school is chosen: a district has thousands)."""
    if school is None:
        return SchoolClass.objects.none()
    classes = scoping.within_readers_scope(user, SchoolClass.objects.current(), RULE_MODEL).filter(school=school)
    return classes.select_related("school").order_by("grade", "number", "pk")


def ledger_groups() -> QuerySet[SpecialGroup]:
    """The groups a ledger may be asked for: every group in use (ledger groups, the others, the exam years)."""
    return SpecialGroup.objects.filter(active=True).order_by("-ledger", "grade", "pk")


def default_groups() -> QuerySet[SpecialGroup]:
    """The groups the ledger lists when none is chosen: the ledger groups in use (三个清单)."""
    return ledger_groups_in_use()


def ledger_students(user) -> QuerySet[Student]:
    """The students whose group memberships the ledger may list for the user (roster.scoping, readers' subtrees)."""
    students = scoping.within_readers_scope(user, scoping.visible(user, Student), RULE_MODEL)
    schools = scoping.scope_for(user).school_ids()  # a literal list for an index (cases.ledgers does the same)
    return students if schools is None else students.filter(school_id__in=sorted(schools))


# --- Rows ---------------------------------------------------------------------------------------------------------


def student_of(row) -> Student:
    return row if isinstance(row, Student) else row.student


def _exam_year(group: SpecialGroup | None) -> bool:
    return group is not None and group.grade is not None


def _records(student_ref: str, group_ref) -> QuerySet[HelpRecord]:
    return HelpRecord.objects.filter(student=OuterRef(student_ref), group=group_ref)


def _students_q(user, prefix: str, district, school, school_class) -> Q:
    """ledger_students(user) narrowed by the filters, as a condition on rows reaching the student through `prefix`
    ("student" for a tag row, "" for a student): joined, not an IN (subquery), at a city's size. Filters narrow the
    scope, never widen it."""
    p = f"{prefix}__" if prefix else ""
    q = scoping.readers_q(user, Student, RULE_MODEL, prefix=prefix)
    schools = scoping.scope_for(user).school_ids()  # a literal list for an index (cases.ledgers does the same)
    if schools is not None:
        q &= Q(**{f"{p}school_id__in": sorted(schools)})
    for field, value in (("school__district", district), ("school", school), ("school_class", school_class)):
        if value is not None:
            q &= Q(**{f"{p}{field}": value})
    return q


def _members(user, group, district, school, school_class) -> tuple[QuerySet, QuerySet[HelpRecord]]:
    """The rows before the record filters (the counts are of these), and the help-record subquery of a row."""
    if _exam_year(group):
        students = Student.objects.filter(_students_q(user, "", district, school, school_class))
        rows = members(group, students).annotate(
            group_name=Value(group.name, output_field=CharField()), group_ledger=Value(group.ledger),
            group_key=Value(group.pk),
        )  # fmt: skip
        return rows, _records("pk", group.pk)
    groups = [group.pk] if group is not None else default_groups().values("pk")
    rows = tagged_memberships(groups).filter(_students_q(user, "student", district, school, school_class))
    rows = rows.annotate(
        group_name=F("specialgroup__name"), group_ledger=F("specialgroup__ledger"), group_key=F("specialgroup_id")
    )
    return rows, _records("student_id", OuterRef("specialgroup_id"))


def group_ledger(
    user, *, group: SpecialGroup | None = None, district: District | None = None, school: School | None = None,
    school_class: SchoolClass | None = None, without_record: bool = False, review_overdue: bool = False,
    today: date | None = None,
) -> QuerySet:  # fmt: skip
    """The members of the ledger groups in use (or of `group`) the user reads, by school, class and student number,
    each with `group_name`, `group_key` (its id) and `group_ledger` (whether it takes help records).
    `without_record`: only members with no help record yet; `review_overdue`: only active records whose review date
    has passed. The record's own columns are read for the rows shown (`with_records`), not for every row sorted.

    Access: ledger_students(user). Audit: the caller logs the students of the rows it shows or exports.
    """
    rows, records = _members(user, group, district, school, school_class)
    if without_record:
        rows = rows.filter(~Exists(records))
    if review_overdue:
        rows = rows.filter(
            Exists(records.filter(status=HelpStatus.ACTIVE, review_on__lt=today or timezone.localdate()))
        )
    prefix = "" if _exam_year(group) else "student__"
    rows = rows.select_related(f"{prefix}school_class", f"{prefix}school")
    order = [f"{prefix}school__code", f"{prefix}school_class__grade", f"{prefix}school_class__number",
             f"{prefix}student_no", "group_key", "pk"]  # fmt: skip
    return rows.order_by(*order)


def with_records(rows: Iterable) -> list:
    """The rows (of group_ledger), each given its help record's `record_id`, `record_status`, `record_review_on` and
    `record_responsible` (None without one): one query for them all."""
    rows = list(rows)
    pairs = {(student_of(r).pk, r.group_key) for r in rows}
    found = {}
    if pairs:
        label = Coalesce(NullIf(F("responsible__name"), Value("")), F("responsible__username"))
        records = (
            HelpRecord.objects.filter(student_id__in={s for s, _ in pairs}, group_id__in={g for _, g in pairs})
            .annotate(label=label)
            .values_list("student_id", "group_id", "pk", "status", "review_on", "label")
        )
        found = {(s, g): rest for s, g, *rest in records}
    for row in rows:
        row.record_id, row.record_status, row.record_review_on, row.record_responsible = found.get(
            (student_of(row).pk, row.group_key), (None, None, None, None)
        )
    return rows


@dataclass(frozen=True)
class GroupCount:
    group: str
    members: int
    with_record: int
    overdue: int

    @property
    def without_record(self) -> int:
        return self.members - self.with_record


def group_counts(
    user, *, group: SpecialGroup | None = None, district: District | None = None, school: School | None = None,
    school_class: SchoolClass | None = None, today: date | None = None, **_ignored,
) -> list[GroupCount]:  # fmt: skip
    """Per group, over the same members as the ledger (its record filters aside): members, with a help record,
    without one, review overdue. Two queries: the members per group, and their help records per group.

    Access: ledger_students(user).
    """
    today = today or timezone.localdate()
    rows, _records_of = _members(user, group, district, school, school_class)
    by_group = rows.values("group_key", "group_name").annotate(n=Count("pk")).order_by("group_key")
    records = HelpRecord.objects.filter(_students_q(user, "student", district, school, school_class))
    if _exam_year(group):
        records = records.filter(members_q(group, prefix="student__"), group=group)
    else:
        groups = [group.pk] if group is not None else default_groups().values("pk")
        records = records.filter(group__in=groups, student__status__in=ENROLLED, student__special_groups=F("group"))
    recorded = {
        r["group_id"]: r
        for r in records.values("group_id").annotate(
            n=Count("pk"), overdue=Count("pk", filter=Q(status=HelpStatus.ACTIVE, review_on__lt=today))
        ).order_by()
    }  # fmt: skip
    counts = [
        GroupCount(c["group_name"], c["n"], recorded.get(c["group_key"], {}).get("n", 0),
                   recorded.get(c["group_key"], {}).get("overdue", 0))
        for c in by_group
    ]  # fmt: skip
    if group is None:
        # A ledger group nobody is in yet is a row of zeros, not missing: "nobody listed" is worth seeing.
        found = {c.group: c for c in counts}
        counts = [
            found.get(name) or GroupCount(name, 0, 0, 0) for name in default_groups().values_list("name", flat=True)
        ]
    return counts


def rows_total(counts: list[GroupCount], *, without_record: bool = False, review_overdue: bool = False, **_ignored):
    """How many rows group_ledger gives for the same filters, from the counts (no COUNT over a city's rows): every
    member, those without a record, or those overdue (an overdue review needs a record: both filters give none)."""
    if without_record and review_overdue:
        return 0
    if without_record:
        return sum(c.without_record for c in counts)
    if review_overdue:
        return sum(c.overdue for c in counts)
    return sum(c.members for c in counts)
