"""The duty-roster pages (值班表): a school's weekly duty table (kept by its principals, seen by its district centres),
a district's duty line and school calendar (kept by its district centres). Anyone else gets 404, logged.

Reads and writes go through roster.duty; forms here only parse the input.
"""

from __future__ import annotations

from datetime import date, timedelta

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Exists, OuterRef
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from roster import duty
from roster.models import CalendarDay, CalendarDayKind, District, DutyKind, DutySlot, RoleAssignment, School, Weekday
from roster.spreadsheets import XLSX_TYPE, xlsx_bytes

TIME_INPUT = forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class DutySlotForm(forms.Form):
    user = forms.ModelChoiceField(queryset=None, label=gettext_lazy("Staff member"))
    kind = forms.ChoiceField(label=gettext_lazy("Duty"))
    weekday = forms.TypedChoiceField(choices=Weekday.choices, coerce=int, label=gettext_lazy("Weekday"))
    starts = forms.TimeField(widget=TIME_INPUT, label=gettext_lazy("Starts at"))
    ends = forms.TimeField(widget=TIME_INPUT, label=gettext_lazy("Ends at"))
    valid_from = forms.DateField(required=False, widget=DATE_INPUT, label=gettext_lazy("Valid from"))
    valid_until = forms.DateField(required=False, widget=DATE_INPUT, label=gettext_lazy("Valid until"))

    def __init__(self, *args, where: School | District, **kwargs):
        super().__init__(*args, **kwargs)
        kinds = duty.SCHOOL_DUTIES if isinstance(where, School) else duty.DISTRICT_DUTIES
        self.fields["kind"].choices = [(k, DutyKind(k).label) for k in kinds]
        self.fields["user"].queryset = duty.duty_candidates(where)
        self.fields["user"].label_from_instance = lambda u: u.get_short_name()
        if isinstance(where, School):
            starts, ends = duty.school_hours(where)
            self.initial.setdefault("starts", starts)
            self.initial.setdefault("ends", ends)


class CalendarDayForm(forms.Form):
    day = forms.DateField(widget=DATE_INPUT, label=gettext_lazy("Date"))
    kind = forms.ChoiceField(choices=CalendarDayKind.choices, label=gettext_lazy("Kind"))
    name = forms.CharField(required=False, max_length=100, label=gettext_lazy("Name"))


class DutyImportForm(forms.Form):
    file = forms.FileField(label=gettext_lazy("Duty table file (XLSX or CSV)"))


def _week(request) -> date:
    try:
        day = date.fromisoformat(request.GET.get("week", ""))
    except ValueError:
        day = timezone.localdate()
    return duty.week_start_of(day)


def _grid(where: School | District, week_start: date) -> list[dict]:
    """Seven columns (Monday to Sunday) of the week, each with its date, whether school is on, and its slots (with
    whether each holder still holds the duty's role). Three queries whatever the number of slots."""
    node_field = "school" if isinstance(where, School) else "district"
    held = RoleAssignment.objects.filter(user_id=OuterRef("user_id"), **{node_field: OuterRef(node_field)})
    slots = (
        DutySlot.objects.filter(**{node_field: where})
        .select_related("user")
        .annotate(
            psy=Exists(held.filter(role=duty.ROLE_FOR_DUTY[DutyKind.PSYCHOLOGY_TEACHER])),
            leader=Exists(held.filter(role=duty.ROLE_FOR_DUTY[DutyKind.SCHOOL_LEADER])),
            centre=Exists(held.filter(role=duty.ROLE_FOR_DUTY[DutyKind.DISTRICT_CENTRE])),
        )
        .order_by("weekday", "starts", "kind", "user__name")
    )
    attribute = {DutyKind.PSYCHOLOGY_TEACHER: "psy", DutyKind.SCHOOL_LEADER: "leader"}
    attribute[DutyKind.DISTRICT_CENTRE] = "centre"
    calendar = duty.SchoolCalendar(where.district_id if isinstance(where, School) else where.pk)
    calendar.preload(week_start, week_start + timedelta(days=6))
    columns = []
    for weekday, label in Weekday.choices:
        day = week_start + timedelta(days=weekday)
        columns.append({"day": day, "label": label, "school_day": calendar.is_school_day(day), "slots": []})
    for slot in slots:
        slot.role_held = slot.user.is_active and getattr(slot, attribute[slot.kind])
        slot.valid_this_week = duty.valid_on(slot, columns[slot.weekday]["day"])
        columns[slot.weekday]["slots"].append(slot)
    return columns


def _week_links(week_start: date) -> dict:
    return {
        "week_start": week_start,
        "week_end": week_start + timedelta(days=6),
        "previous_week": (week_start - timedelta(days=7)).isoformat(),
        "next_week": (week_start + timedelta(days=7)).isoformat(),
    }


@never_cache
@login_required
@require_GET
def duty_index(request):
    """Where the top bar's link leads: straight to the one table the user keeps, else a list of them."""
    districts = list(duty.duty_districts_for(request.user))
    schools = list(duty.duty_schools_for(request.user, edit=True))
    if len(districts) + len(schools) == 1:
        target = districts[0] if districts else schools[0]
        name = "duty_district" if districts else "duty_school"
        return redirect(name, pk=target.pk)
    if not districts and not schools:
        raise duty.duty_refusal(request.user, School, "", "view")
    return render(request, "roster/duty_index.html", {"districts": districts, "schools": schools})


@never_cache
@login_required
def duty_school(request, pk: int):
    """A school's duty table: the week's grid, the gaps in school hours, and (for its principals) the forms."""
    school = duty.access_duty_school(request.user, pk)
    may_edit = duty.duty_schools_for(request.user, edit=True).filter(pk=pk).exists()
    form = DutySlotForm(where=school)
    if request.method == "POST":
        if not may_edit:
            raise duty.duty_refusal(request.user, School, pk, "change")
        form = DutySlotForm(request.POST, where=school)
        if form.is_valid() and _add_slot(request, school, form):
            return redirect(f"{reverse('duty_school', args=[pk])}?week={request.GET.get('week', '')}")
    week_start = _week(request)
    return render(
        request,
        "roster/duty_school.html",
        {
            "school": school,
            "may_edit": may_edit,
            "form": form,
            "import_form": DutyImportForm(),
            "columns": _grid(school, week_start),
            "gaps": duty.duty_gaps(school, week_start),
            "hours": duty.school_hours(school),
            "on_duty": duty.on_duty_now(school) if duty.in_school_hours(school) else None,
            **_week_links(week_start),
        },
    )


def _add_slot(request, where: School | District, form: DutySlotForm) -> bool:
    try:
        duty.duty_slot_add(request.user, where=where, **form.cleaned_data)
    except ValidationError as error:
        for message in error.messages:
            form.add_error(None, message)
        return False
    except PermissionDenied:
        raise duty.duty_refusal(request.user, type(where), where.pk, "change") from None
    messages.success(request, _("The duty slot was added."))
    return True


@login_required
@require_POST
def duty_slot_remove(request, pk: int):
    slot = DutySlot.objects.filter(pk=pk).first()
    if slot is None:
        raise duty.duty_refusal(request.user, DutySlot, pk, "change")
    try:
        duty.duty_slot_remove(request.user, slot)
    except PermissionDenied:
        raise duty.duty_refusal(request.user, DutySlot, pk, "change") from None
    messages.success(request, _("The duty slot was removed."))
    if slot.school_id:
        return redirect("duty_school", pk=slot.school_id)
    return redirect("duty_district", pk=slot.district_id)


@login_required
@require_POST
def duty_import(request, pk: int):
    """Upload a duty table for a school: all rows or none (roster.duty.duty_slots_import)."""
    school = duty.access_duty_school(request.user, pk, edit=True)
    form = DutyImportForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, _("Choose a file to import."))
        return redirect("duty_school", pk=pk)
    upload = form.cleaned_data["file"]
    report = duty.duty_slots_import(request.user, where=school, data=upload.read(), filename=upload.name)
    if report.ok:
        messages.success(
            request,
            _("Imported: %(created)d duty slots added, %(unchanged)d already on the table.")
            % {"created": report.created, "unchanged": report.unchanged},
        )
        return redirect("duty_school", pk=pk)
    week_start = _week(request)
    return render(
        request,
        "roster/duty_school.html",
        {
            "school": school,
            "may_edit": True,
            "form": DutySlotForm(where=school),
            "import_form": form,
            "import_report": report,
            "columns": _grid(school, week_start),
            "gaps": duty.duty_gaps(school, week_start),
            "hours": duty.school_hours(school),
            **_week_links(week_start),
        },
        status=400,
    )


@login_required
@require_GET
def duty_import_template(request):
    user = request.user
    if not (duty.duty_schools_for(user, edit=True).exists() or duty.duty_districts_for(user).exists()):
        raise duty.duty_refusal(request.user, DutySlot, "", "view")
    response = HttpResponse(xlsx_bytes(duty.duty_import_template()), content_type=XLSX_TYPE)
    response["Content-Disposition"] = 'attachment; filename="duty-roster-template.xlsx"'
    return response


@never_cache
@login_required
def duty_district(request, pk: int):
    """A district's duty line (its centre's rota), its school calendar, and links to its schools' duty tables."""
    district = duty.access_duty_district(request.user, pk)
    form, day_form = DutySlotForm(where=district), CalendarDayForm()
    if request.method == "POST":
        if request.POST.get("form") == "calendar":
            day_form = CalendarDayForm(request.POST)
            if day_form.is_valid():
                data = day_form.cleaned_data
                duty.calendar_day_set(
                    request.user, district=district, day=data["day"], kind=data["kind"], name=data["name"]
                )
                messages.success(request, _("The calendar was updated."))
                return redirect("duty_district", pk=pk)
        else:
            form = DutySlotForm(request.POST, where=district)
            if form.is_valid() and _add_slot(request, district, form):
                return redirect("duty_district", pk=pk)
    week_start = _week(request)
    year = timezone.localdate().year
    calendar_year = _year(request.GET.get("year"), year)
    return render(
        request,
        "roster/duty_district.html",
        {
            "district": district,
            "form": form,
            "day_form": day_form,
            "columns": _grid(district, week_start),
            "on_duty": duty.on_duty_now(district),
            "schools": district.schools.order_by("code"),
            "calendar_days": CalendarDay.objects.filter(district=district, date__year=calendar_year),
            "calendar_year": calendar_year,
            "seed_years": [year, year + 1],
            "other_years": [calendar_year - 1, calendar_year + 1],
            **_week_links(week_start),
        },
    )


def _year(value, default: int) -> int:
    try:
        year = int(value)
    except (TypeError, ValueError):
        return default
    return year if 2000 <= year <= 2100 else default


@login_required
@require_POST
def calendar_day_remove(request, pk: int, day_pk: int):
    district = duty.access_duty_district(request.user, pk, edit=True)
    row = CalendarDay.objects.filter(district=district, pk=day_pk).first()
    if row is None:
        raise Http404
    duty.calendar_day_remove(request.user, row)
    messages.success(request, _("The calendar was updated."))
    return redirect(f"{reverse('duty_district', args=[pk])}?year={row.date.year}")


@login_required
@require_POST
def calendar_seed(request, pk: int):
    """The "import the public holidays of {year}" button: idempotent."""
    district = duty.access_duty_district(request.user, pk, edit=True)
    year = _year(request.POST.get("year"), timezone.localdate().year)
    try:
        added = duty.calendar_seed_public_holidays(request.user, district, year)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request,
            _("Public holidays of %(year)s: %(count)d days added to the calendar.") % {"year": year, "count": added},
        )
    return redirect(f"{reverse('duty_district', args=[pk])}?year={year}")
