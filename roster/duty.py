"""The duty roster (值班表) and the school calendar: who is on duty at a school or a district now, which days are
school days, and deadlines counted in school days.

A crisis alert goes to the school's on-duty psychology teacher within school hours, to the district centre's duty line
outside them: callers ask `in_school_hours(school)` and then `on_duty_now(school)` or `on_duty_now(district)`.
School days: a district's own CalendarDay rows first, then China's public holidays and make-up workdays (调休, the
`chinesecalendar` package, for the years it knows), then Monday to Friday. Times are local (settings.TIME_ZONE).

Reads take `at=None` for now; the calendar is read in chunks of days (one query a chunk), duty slots in one query.
Writes (`duty_slot_add`, `calendar_day_set`, …) check the actor and write history rows naming them.
May import: roster only.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import chinese_calendar
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from roster import audit, scoping
from roster.importing import read_table
from roster.models import (
    AccessAction,
    AccessOutcome,
    CalendarDay,
    CalendarDayKind,
    District,
    DutyKind,
    DutySlot,
    RoleAssignment,
    School,
    User,
)
from roster.normalize import normalize_header
from roster.roles import Role
from roster.uploads import FileRefused

# The role a duty needs its holder to keep at the slot's school or district: who lost it is not on duty.
ROLE_FOR_DUTY: dict[str, str] = {
    DutyKind.PSYCHOLOGY_TEACHER: Role.PSYCHOLOGY_TEACHER,
    DutyKind.SCHOOL_LEADER: Role.PRINCIPAL,
    DutyKind.DISTRICT_CENTRE: Role.DISTRICT_CENTRE,
}
SCHOOL_DUTIES = (DutyKind.PSYCHOLOGY_TEACHER, DutyKind.SCHOOL_LEADER)
DISTRICT_DUTIES = (DutyKind.DISTRICT_CENTRE,)
# Who keeps which duty table (edits it), and who may look at a school's.
SCHOOL_EDITORS = frozenset({Role.PRINCIPAL})
SCHOOL_VIEWERS = frozenset({Role.PRINCIPAL, Role.DISTRICT_CENTRE})
DISTRICT_EDITORS = frozenset({Role.DISTRICT_CENTRE})
DAY_SECONDS = 24 * 3600
SEARCH_DAYS = 400  # a district calendar with no school day in more than a year is broken, not a long holiday


# --- Time -----------------------------------------------------------------------------------------------------


def _tz() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def _local(at: datetime | None) -> datetime:
    at = timezone.now() if at is None else at
    if timezone.is_naive(at):
        return at.replace(tzinfo=_tz())
    return at.astimezone(_tz())


def _at(day: date, moment: time) -> datetime:
    return datetime.combine(day, moment, tzinfo=_tz())


def parse_time(value) -> time:
    """ "7:30", "07:30:00" or a time → a time; ValueError otherwise."""
    if isinstance(value, time):
        return value
    parts = [int(part) for part in str(value).strip().split(":")]  # ValueError for text that is not a time
    if not 2 <= len(parts) <= 3:
        raise ValueError(value)
    return time(*parts)


def default_hours() -> tuple[time, time]:
    starts, ends = settings.SCHOOL_HOURS_DEFAULT
    return parse_time(starts), parse_time(ends)


def school_hours(school: School) -> tuple[time, time]:
    """The school's own hours, each end falling back to settings.SCHOOL_HOURS_DEFAULT."""
    starts, ends = default_hours()
    return school.day_starts or starts, school.day_ends or ends


def _seconds(moment: time) -> int:
    return moment.hour * 3600 + moment.minute * 60 + moment.second


def _time(seconds: int) -> time:
    return time(23, 59, 59) if seconds >= DAY_SECONDS else time(seconds // 3600, seconds // 60 % 60, seconds % 60)


# --- The calendar ---------------------------------------------------------------------------------------------


def national_school_day(day: date) -> bool | None:
    """Whether `day` is a working day by China's public-holiday calendar; None for a year the library does not know."""
    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:
        return None


def default_school_day(day: date, kind: str | None = None) -> bool:
    """Pure: a day with the district's CalendarDay `kind` (or None), by the rules in the module docstring."""
    if kind is not None:
        return kind == CalendarDayKind.WORKDAY
    national = national_school_day(day)
    return day.weekday() < 5 if national is None else national


def _district_id(district: District | int) -> int:
    return district if isinstance(district, int) else district.pk


class SchoolCalendar:
    """A district's school days, its CalendarDay rows read a chunk of days at a time (one query a chunk)."""

    CHUNK = 64

    def __init__(self, district: District | int):
        self.district_id = _district_id(district)
        self._kinds: dict[date, str] = {}
        self._chunks: set[int] = set()

    def preload(self, first: date, last: date) -> None:
        wanted = set(range(first.toordinal() // self.CHUNK, last.toordinal() // self.CHUNK + 1)) - self._chunks
        if not wanted:
            return
        lo = date.fromordinal(min(wanted) * self.CHUNK)
        hi = date.fromordinal((max(wanted) + 1) * self.CHUNK - 1)
        rows = CalendarDay.objects.filter(district_id=self.district_id, date__range=(lo, hi))
        self._kinds.update(rows.values_list("date", "kind"))
        self._chunks |= set(range(min(wanted), max(wanted) + 1))

    def is_school_day(self, day: date) -> bool:
        self.preload(day, day)
        return default_school_day(day, self._kinds.get(day))

    def next_school_day(self, day: date) -> date:
        """The first school day after `day`."""
        for _step in range(SEARCH_DAYS):
            day += timedelta(days=1)
            if self.is_school_day(day):
                return day
        raise ValueError(f"no school day within {SEARCH_DAYS} days of {day}")


def is_school_day(district: District | int, day: date) -> bool:
    """Whether `day` is a school day in `district`: its CalendarDay, else China's calendar, else Monday to Friday."""
    return SchoolCalendar(district).is_school_day(day)


def in_school_hours(school: School, at: datetime | None = None) -> bool:
    """Whether `at` (default now) falls on a school day of the school's district, within the school's hours."""
    local = _local(at)
    starts, ends = school_hours(school)
    return starts <= local.time() < ends and is_school_day(school.district_id, local.date())


def school_day_end(school: School, at: datetime | None = None) -> datetime:
    """The end of school hours of `at`'s school day; when `at` is past them or not on a school day, the end of the
    next school day (before the day's hours start, that is the same day)."""
    local = _local(at)
    calendar = SchoolCalendar(school.district_id)
    ends = school_hours(school)[1]
    day = local.date()
    if local.time() >= ends or not calendar.is_school_day(day):
        day = calendar.next_school_day(day)
    return _at(day, ends)


def add_school_days(district: District | int, start: datetime, days: int) -> datetime:
    """`days` school days after `start`, at the same local time of day. A start off school days counts from the
    start of school hours (settings.SCHOOL_HOURS_DEFAULT) of the next school day."""
    if days < 0:
        raise ValueError("days must not be negative")
    local = _local(start)
    calendar = SchoolCalendar(district)
    calendar.preload(local.date(), local.date() + timedelta(days=days * 2 + 14))
    day, moment = local.date(), local.time()
    if not calendar.is_school_day(day):
        day, moment = calendar.next_school_day(day), default_hours()[0]
    for _step in range(days):
        day = calendar.next_school_day(day)
    return _at(day, moment)


# --- Who is on duty -------------------------------------------------------------------------------------------


def _valid_on_q(day: date) -> Q:
    return (Q(valid_from__isnull=True) | Q(valid_from__lte=day)) & (
        Q(valid_until__isnull=True) | Q(valid_until__gte=day)
    )


def covers_q(local: datetime) -> Q:
    """Slots covering the local moment: same weekday within its times, or the overnight part of yesterday's slot."""
    day, moment = local.date(), local.time().replace(microsecond=0)
    yesterday = day - timedelta(days=1)
    daytime = Q(ends__gt=F("starts")) & Q(starts__lte=moment, ends__gt=moment)
    evening = Q(ends__lte=F("starts"), starts__lte=moment)
    today = Q(weekday=day.weekday()) & _valid_on_q(day) & (daytime | evening)
    small_hours = Q(weekday=yesterday.weekday(), ends__lte=F("starts"), ends__gt=moment) & _valid_on_q(yesterday)
    return today | small_hours


def valid_on(slot: DutySlot, day: date) -> bool:
    return (slot.valid_from is None or slot.valid_from <= day) and (slot.valid_until is None or slot.valid_until >= day)


def slot_spans_on(slot: DutySlot, day: date) -> list[tuple[int, int]]:
    """Pure: the parts of `day` the slot covers, as (from, to) seconds after midnight (to at most 24 h)."""
    spans = []
    starts, ends = _seconds(slot.starts), _seconds(slot.ends)
    if slot.weekday == day.weekday() and valid_on(slot, day):
        spans.append((starts, ends if ends > starts else DAY_SECONDS))
    yesterday = day - timedelta(days=1)
    if ends <= starts and ends > 0 and slot.weekday == yesterday.weekday() and valid_on(slot, yesterday):
        spans.append((0, ends))
    return spans


def slot_covers(slot: DutySlot, at: datetime) -> bool:
    """Pure: the same rule as covers_q, for a slot in hand."""
    local = _local(at)
    moment = _seconds(local.time())
    return any(a <= moment < b for a, b in slot_spans_on(slot, local.date()))


def _node(where: School | District) -> tuple[str, tuple[str, ...]]:
    if isinstance(where, School):
        return "school", SCHOOL_DUTIES
    if isinstance(where, District):
        return "district", DISTRICT_DUTIES
    raise TypeError(f"on duty where? {where!r}")


def _role_held_q(node_field: str, kinds) -> Q:
    """Slots whose user still holds, at the slot's node, the role the slot's duty needs."""
    q = Q(pk__in=[])
    for kind in kinds:
        held = RoleAssignment.objects.filter(
            user_id=OuterRef("user_id"), role=ROLE_FOR_DUTY[kind], **{node_field: OuterRef(node_field)}
        )
        q |= Q(kind=kind) & Exists(held)
    return q


def staffed_slots(where: School | District, kind: str | None = None) -> QuerySet[DutySlot]:
    """The slots of a school or district whose holders are active and still hold the duty's role there."""
    node_field, kinds = _node(where)
    kinds = [k for k in kinds if kind is None or k == kind]
    return DutySlot.objects.filter(**{node_field: where}, user__is_active=True).filter(_role_held_q(node_field, kinds))


def on_duty_now(where: School | District, at: datetime | None = None, kind: str | None = None) -> list[User]:
    """The staff on duty at a school (its psychology teachers, then its leaders; `kind` narrows) or at a district (its
    centre's duty line) at `at` (default now), each by name. One query. Slots follow the weekday, whatever the calendar:
    callers ask in_school_hours() first, and a school day off school hours goes to the district."""
    slots = staffed_slots(where, kind).filter(covers_q(_local(at))).select_related("user")
    rank = {k: i for i, k in enumerate(DutyKind.values)}  # psychology teachers first, then leaders
    on_duty: dict[int, User] = {}
    for slot in sorted(slots, key=lambda s: (rank[s.kind], s.user.name, s.user.username)):
        on_duty.setdefault(slot.user_id, slot.user)
    return list(on_duty.values())


def duty_gaps(school: School, week_start: date) -> list[tuple[date, time, time]]:
    """The school-hours spans of the week's school days (`week_start` and the six days after) with no psychology
    teacher on duty, in order. Two or three queries."""
    days = [week_start + timedelta(days=i) for i in range(7)]
    calendar = SchoolCalendar(school.district_id)
    calendar.preload(days[0], days[-1])
    slots = list(staffed_slots(school, DutyKind.PSYCHOLOGY_TEACHER))
    starts, ends = (_seconds(t) for t in school_hours(school))
    gaps = []
    for day in days:
        if not calendar.is_school_day(day):
            continue
        cursor = starts
        for a, b in sorted(span for slot in slots for span in slot_spans_on(slot, day)):
            if a > cursor and cursor < ends:
                gaps.append((day, _time(cursor), _time(min(a, ends))))
            cursor = max(cursor, b)
        if cursor < ends:
            gaps.append((day, _time(cursor), _time(ends)))
    return gaps


def week_start_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


# --- Who keeps which table ------------------------------------------------------------------------------------


def duty_schools_for(user, *, edit: bool = False) -> QuerySet[School]:
    """Schools whose duty table `user` may keep (edit: their principals) or look at (also their district centres)."""
    return scoping.within_roles(user, School, SCHOOL_EDITORS if edit else SCHOOL_VIEWERS)


def duty_districts_for(user) -> QuerySet[District]:
    """Districts whose duty table and calendar `user` keeps: their district centres."""
    return scoping.within_roles(user, District, DISTRICT_EDITORS)


def duty_refusal(user, model, pk, action: str):
    audit.record(action, object_type=audit.label(model), object_ids=[pk], outcome=AccessOutcome.DENIED, user=user)
    return Http404(_("Not found, or not in your scope."))


def access_duty_school(user, school_id: int, *, edit: bool = False) -> School:
    """The school of a duty page. Access: its principals (edit or view), its district centres (view); Http404 for
    anyone else and for a missing school alike. Audit: a refusal is logged."""
    school = duty_schools_for(user, edit=edit).select_related("district").filter(pk=school_id).first()
    if school is None:
        raise duty_refusal(user, School, school_id, AccessAction.CHANGE if edit else AccessAction.VIEW)
    return school


def access_duty_district(user, district_id: int, *, edit: bool = False) -> District:
    """The district of a duty or calendar page. Access: its district centres; Http404 otherwise. Audit: refusals."""
    district = duty_districts_for(user).filter(pk=district_id).first()
    if district is None:
        raise duty_refusal(user, District, district_id, AccessAction.CHANGE if edit else AccessAction.VIEW)
    return district


def _may_edit(actor, where: School | District) -> bool:
    if actor is None:
        return True  # the system: demo seeding, data set-up
    rows = duty_schools_for(actor, edit=True) if isinstance(where, School) else duty_districts_for(actor)
    return rows.filter(pk=where.pk).exists()


def duty_candidates(where: School | District, kind: str | None = None) -> QuerySet[User]:
    """Active staff who may take a duty at `where`: they hold the duty's role there (`kind` narrows)."""
    node_field, kinds = _node(where)
    roles = [ROLE_FOR_DUTY[k] for k in kinds if kind is None or k == kind]
    held = RoleAssignment.objects.filter(role__in=roles, **{node_field: where})
    return User.objects.filter(is_active=True, pk__in=held.values("user_id")).order_by("name", "username")


# --- Writing --------------------------------------------------------------------------------------------------


def _check_slot(where: School | District, *, user: User, kind: str, starts: time, ends: time,
                valid_from: date | None, valid_until: date | None) -> None:  # fmt: skip
    node_field, kinds = _node(where)
    if kind not in kinds:
        raise ValidationError(
            _("“%(kind)s” is not a duty kept here.") % {"kind": DutyKind(kind).label}, code="duty_kind"
        )
    if node_field == "school" and ends <= starts:
        raise ValidationError(_("A school duty ends after it starts, on the same day."), code="duty_times")
    if valid_from and valid_until and valid_until < valid_from:
        raise ValidationError(_("“Valid until” comes before “valid from”."), code="duty_dates")
    if not duty_candidates(where, kind).filter(pk=user.pk).exists():
        raise ValidationError(
            _("%(user)s does not hold the role “%(role)s” here.")
            % {"user": user.get_short_name(), "role": Role(ROLE_FOR_DUTY[kind]).label},
            code="duty_role",
        )


def _same_slot(where: School | District, **fields) -> DutySlot | None:
    node_field, _kinds = _node(where)
    return DutySlot.objects.filter(**{node_field: where}, **fields).first()


@transaction.atomic
def duty_slot_add(
    actor: User | None,
    *,
    where: School | District,
    user: User,
    kind: str,
    weekday: int,
    starts: time,
    ends: time,
    valid_from: date | None = None,
    valid_until: date | None = None,
) -> DutySlot:
    """Put `user` on duty at a school or district on a weekday (an identical slot is returned, not repeated).

    Access: the principals of the school, the centres of the district (actor None: the system); the user must hold
    the duty's role there. Audit: a history row naming the actor.
    """
    if not _may_edit(actor, where):
        raise PermissionDenied("not allowed to keep this duty table")
    if not 0 <= weekday <= 6:
        raise ValidationError(_("The weekday is Monday to Sunday."), code="duty_weekday")
    _check_slot(where, user=user, kind=kind, starts=starts, ends=ends, valid_from=valid_from, valid_until=valid_until)
    fields = {"user": user, "kind": kind, "weekday": weekday, "starts": starts, "ends": ends}
    fields |= {"valid_from": valid_from, "valid_until": valid_until}
    existing = _same_slot(where, **fields)
    if existing is not None:
        return existing
    node_field, _kinds = _node(where)
    slot = DutySlot(**{node_field: where}, **fields)
    slot.full_clean()
    slot._history_user = actor
    slot.save()
    return slot


@transaction.atomic
def duty_slot_remove(actor: User | None, slot: DutySlot) -> None:
    """Take a slot off the duty table. Access: as duty_slot_add. Audit: a history row (deleted) naming the actor."""
    where = slot.school if slot.school_id else slot.district
    if not _may_edit(actor, where):
        raise PermissionDenied("not allowed to keep this duty table")
    slot._history_user = actor
    slot.delete()


def _check_district(actor, district: District) -> None:
    if not _may_edit(actor, district):
        raise PermissionDenied("not allowed to keep this district's calendar")


@transaction.atomic
def calendar_day_set(actor: User | None, *, district: District, day: date, kind: str, name: str = "") -> CalendarDay:
    """Mark a day of the district's calendar a holiday or a make-up school day (replacing its earlier mark).

    Access: the district's centres (actor None: the system). Audit: a history row naming the actor.
    """
    _check_district(actor, district)
    row = CalendarDay.objects.filter(district=district, date=day).first() or CalendarDay(district=district, date=day)
    if row.pk and row.kind == kind and row.name == name:
        return row
    row.kind, row.name = kind, name
    row.full_clean(validate_unique=False)
    row._history_user = actor
    row.save()
    return row


@transaction.atomic
def calendar_day_remove(actor: User | None, row: CalendarDay) -> None:
    """Drop a calendar mark: the day follows China's calendar again. Access: as calendar_day_set. Audit: history."""
    _check_district(actor, row.district)
    row._history_user = actor
    row.delete()


def national_calendar(year: int) -> list[tuple[date, str, str]]:
    """China's public holidays and make-up workdays of `year` as (date, CalendarDayKind, Chinese name), by date.
    Raises ValidationError for a year the chinesecalendar package has no data for."""
    if national_school_day(date(year, 1, 1)) is None:
        raise ValidationError(
            _("No national holiday data for %(year)s yet (update the chinesecalendar package).") % {"year": year},
            code="no_national_calendar",
        )

    def chinese(english: str) -> str:
        try:
            return chinese_calendar.Holiday(english).chinese
        except ValueError:
            return english

    days = [(d, CalendarDayKind.HOLIDAY, chinese(n)) for d, n in chinese_calendar.holidays.items() if d.year == year]
    days += [(d, CalendarDayKind.WORKDAY, chinese(n)) for d, n in chinese_calendar.workdays.items() if d.year == year]
    return sorted(days)


@transaction.atomic
def calendar_seed_public_holidays(actor: User | None, district: District, year: int) -> int:
    """Copy China's public holidays and make-up workdays of `year` into the district's calendar; the number of days
    added. Idempotent: days the district has marked already (by this or by hand) are left as they are.

    Access: the district's centres (actor None: the system). Audit: a history row per day naming the actor.
    """
    _check_district(actor, district)
    national = national_calendar(year)
    marked = set(CalendarDay.objects.filter(district=district, date__year=year).values_list("date", flat=True))
    added = 0
    for day, kind, name in national:
        if day in marked:
            continue
        row = CalendarDay(district=district, date=day, kind=kind, name=name)
        row._history_user = actor
        row.save()
        added += 1
    return added


# --- Importing a duty table -----------------------------------------------------------------------------------

WEEKDAY_WORDS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "七": 6}
KIND_WORDS = {"心理教师": DutyKind.PSYCHOLOGY_TEACHER, "校级领导": DutyKind.SCHOOL_LEADER,
              "区县值班": DutyKind.DISTRICT_CENTRE}  # fmt: skip
IMPORT_HEADERS = ["星期", "开始", "结束", "工号", "用户名", "类别"]
_HEADER_FIELDS = {"星期": "weekday", "开始": "starts", "结束": "ends", "工号": "staff_no", "用户名": "username",
                  "类别": "kind", "weekday": "weekday", "starts": "starts", "ends": "ends", "staffno": "staff_no",
                  "username": "username", "kind": "kind"}  # fmt: skip


@dataclass
class DutyImportReport:
    filename: str
    created: int = 0
    unchanged: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line in the file, message)
    refused: str = ""

    @property
    def ok(self) -> bool:
        return not self.errors and not self.refused


def parse_weekday(value) -> int:
    """一..日 (星期一, 周日 …) or 1..7 → 0 (Monday) .. 6 (Sunday); ValueError otherwise."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = re.sub(r"^(星期|周|礼拜)", "", str(value).strip())
    if text.isdigit() and 1 <= int(text) <= 7:
        return int(text) - 1
    if text in WEEKDAY_WORDS:
        return WEEKDAY_WORDS[text]
    raise ValueError(value)


def parse_cell_time(value) -> time:
    """A time cell: a time, a datetime, a fraction of a day (Excel's number) or text like 7:30 / 07：30."""
    if isinstance(value, datetime):
        return value.time().replace(microsecond=0)
    if isinstance(value, time):
        return value.replace(microsecond=0)
    if isinstance(value, int | float) and 0 <= value < 1:
        seconds = round(value * DAY_SECONDS / 60) * 60
        return _time(seconds)
    text = str(value).strip().replace("：", ":")
    if not re.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?", text):
        raise ValueError(value)
    return parse_time(text)


def _text(value) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return "" if value is None else str(value).strip()


def duty_slots_import(actor: User | None, *, where: School | District, data: bytes, filename: str) -> DutyImportReport:
    """Add the duty slots of an XLSX/CSV file (星期, 开始, 结束, 工号 or 用户名, 类别) to a duty table. All or nothing:
    any bad row and nothing is written, every bad row named. Rows already on the table are counted, not repeated.

    Access: as duty_slot_add. Audit: a history row per slot naming the actor.
    """
    if not _may_edit(actor, where):
        raise PermissionDenied("not allowed to keep this duty table")
    report = DutyImportReport(filename=filename)
    try:
        rows = list(read_table(data, filename))
    except FileRefused as refusal:
        report.refused = str(refusal)
        return report
    rows = [(line, row) for line, row in enumerate(rows, start=1) if any(_text(v) for v in row)]
    if not rows:
        report.refused = _("The file is empty.")
        return report
    header = {}
    for position, raw in enumerate(rows[0][1]):
        name = _HEADER_FIELDS.get(normalize_header(raw).replace("_", ""))
        if name and name not in header:
            header[name] = position
    missing = [
        h for h, f in (("星期", "weekday"), ("开始", "starts"), ("结束", "ends"), ("类别", "kind")) if f not in header
    ]
    if "staff_no" not in header and "username" not in header:
        missing.append("工号/用户名")
    if missing:
        report.refused = _(
            "Missing required columns: %(columns)s. Nothing was imported; download the template to see them."
        ) % {"columns": "、".join(missing)}  # noqa: E501
        return report

    def cell(row, name):
        position = header.get(name)
        return row[position] if position is not None and position < len(row) else None

    node_field, kinds = _node(where)
    candidates = list(duty_candidates(where))
    school_id = where.pk if node_field == "school" else None
    by_staff_no = {u.staff_no: u for u in candidates if u.staff_no and u.school_id == school_id}
    by_username = {u.username: u for u in candidates}
    roles_held = set(
        RoleAssignment.objects.filter(**{node_field: where}, user__in=candidates).values_list("user_id", "role")
    )
    parsed = []
    for line, row in rows[1:]:
        problems = []
        try:
            weekday = parse_weekday(cell(row, "weekday"))
        except ValueError:
            weekday = None
            problems.append(_("weekday “%(value)s” is not 一..日 or 1..7") % {"value": _text(cell(row, "weekday"))})
        times = []
        for name, label in (("starts", _("start")), ("ends", _("end"))):
            try:
                times.append(parse_cell_time(cell(row, name)))
            except (ValueError, TypeError):
                times.append(None)
                value = _text(cell(row, name))
                problems.append(_("%(column)s time “%(value)s” is not like 07:30") % {"column": label, "value": value})
        kind = KIND_WORDS.get(_text(cell(row, "kind")))
        if kind is None:
            problems.append(
                _("duty “%(value)s” is not one of 心理教师, 校级领导, 区县值班") % {"value": _text(cell(row, "kind"))}
            )
        elif kind not in kinds:
            problems.append(_("“%(kind)s” is not a duty kept here") % {"kind": _text(cell(row, "kind"))})
        staff_no, username = _text(cell(row, "staff_no")), _text(cell(row, "username"))
        user = by_staff_no.get(staff_no) if staff_no else by_username.get(username) if username else None
        if user is None:
            who = staff_no or username
            problems.append(
                _("no staff member “%(who)s” who may take duties here") % {"who": who}
                if who
                else _("no 工号 or 用户名")
            )
        elif kind in kinds and (user.pk, ROLE_FOR_DUTY[kind]) not in roles_held:
            problems.append(
                _("%(user)s does not hold the role “%(role)s” here")
                % {"user": user.get_short_name(), "role": Role(ROLE_FOR_DUTY[kind]).label}
            )
        starts, ends = times
        if starts is not None and ends is not None and node_field == "school" and ends <= starts:
            problems.append(_("a school duty ends after it starts, on the same day"))
        if problems:
            report.errors.append((line, "；".join(problems)))
        else:
            parsed.append({"user": user, "kind": kind, "weekday": weekday, "starts": starts, "ends": ends})
    if report.errors:
        return report
    existing = {
        (s.user_id, s.kind, s.weekday, s.starts, s.ends)
        for s in DutySlot.objects.filter(**{node_field: where}, valid_from__isnull=True, valid_until__isnull=True)
    }
    with transaction.atomic():
        for fields in parsed:
            key = (fields["user"].pk, fields["kind"], fields["weekday"], fields["starts"], fields["ends"])
            if key in existing:
                report.unchanged += 1
                continue
            existing.add(key)
            slot = DutySlot(**{node_field: where}, **fields)
            slot._history_user = actor
            slot._change_reason = f"duty import: {filename}"[:100]
            slot.save()
            report.created += 1
    return report


def duty_import_template() -> list[tuple[str, list[str], list[list]]]:
    """The sheets of the downloadable import template: the headers and two example rows."""
    rows = [["一", "07:30", "12:00", "T001", "", "心理教师"], ["一", "12:00", "17:30", "", "zhanglaoshi", "校级领导"]]
    return [(_("Duty roster"), IMPORT_HEADERS, rows)]
