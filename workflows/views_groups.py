"""The special-groups ledger (特殊群体学生台账) and the 一人一案 help-record pages, under /reports/ledgers/groups/.

Thin views: which rows a user gets is cases.group_ledgers' and cases.help_records' (built on roster.scoping); who
writes a record is cases.care_access's; this module names the columns, reads the filters and the forms, and logs what
it shows (roster.audit: a page as a list of its students, an export as an export of them, a record as read).
A user without the ledger (a homeroom teacher, a mentor, an admin) gets a logged 404, as anything out of reach.
May import: roster, screening, cases.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from cases import access as case_access
from cases import care_access, group_ledgers, help_records
from cases.models import HelpRecord, HelpStatus
from cases.reasons import reason_display
from roster import audit, scoping
from roster.masking import mask_name
from roster.models import AccessAction, SpecialGroup, Student
from roster.views_exports import export_response

PAGE_SIZE = 50
EXPORT_KIND = "ledger_special_groups"


# --- Filters ------------------------------------------------------------------------------------------------------


def _int(raw) -> int | None:
    try:
        return int(raw)
    except (TypeError, ValueError):
        return None


class GroupLedgerFilterForm(forms.Form):
    """Group, district, school and class, offered only within the user's ledger scope (a forged id is invalid, never a
    widening); classes once a school is chosen; and the two record filters."""

    group = forms.ModelChoiceField(label=_("Group"), queryset=SpecialGroup.objects.none(), required=False,
                                   empty_label=_("All ledger groups"))  # fmt: skip
    without_record = forms.BooleanField(label=_("No help record yet"), required=False)
    review_overdue = forms.BooleanField(label=_("Review overdue"), required=False)

    def __init__(self, data, *, user):
        super().__init__(data)
        self.fields["group"].queryset = group_ledgers.ledger_groups()
        districts = group_ledgers.ledger_districts(user)
        self.fields["district"] = forms.ModelChoiceField(
            label=_("District"), queryset=districts, required=False, empty_label=_("All")
        )
        district = districts.filter(pk=_int(data.get("district"))).first() if _int(data.get("district")) else None
        schools = group_ledgers.ledger_schools(user, district)
        self.fields["school"] = forms.ModelChoiceField(
            label=_("School"), queryset=schools, required=False, empty_label=_("All")
        )
        school = schools.filter(pk=_int(data.get("school"))).first() if _int(data.get("school")) else None
        self.fields["school_class"] = forms.ModelChoiceField(
            label=_("Class"), queryset=group_ledgers.ledger_classes(user, school), required=False, empty_label=_("All")
        )
        self.order_fields(["group", "district", "school", "school_class", "without_record", "review_overdue"])

    def clean(self):
        cleaned = super().clean()
        district, school = cleaned.get("district"), cleaned.get("school")
        if district is not None and school is not None and school.district_id != district.pk:
            self.add_error("school", _("This school belongs to another district."))
        return cleaned

    def filters(self) -> dict:
        return {k: v for k, v in self.cleaned_data.items() if v not in (None, "", False)}


# --- Columns: one definition for the page and the export ------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    label: str
    value: Callable  # (row, today) → the cell's text (masked where it names a student)
    flag: Callable | None = None  # (row, today) → a CSS class marking the cell on the page ("overdue"), or ""


def _status(row, today) -> str:
    if row.record_status is None:
        return str(_("None yet")) if row.group_ledger else ""
    return str(HelpStatus(row.record_status).label)


def _overdue(row, today) -> bool:
    return row.record_status == HelpStatus.ACTIVE and row.record_review_on is not None and row.record_review_on < today


def _student(row):
    return group_ledgers.student_of(row)


COLUMNS = (
    Column(_("School"), lambda r, t: _student(r).school.name),
    Column(_("Class"), lambda r, t: str(_student(r).school_class)),
    Column(_("Student number"), lambda r, t: _student(r).student_no),
    Column(_("Student"), lambda r, t: mask_name(_student(r).name)),
    Column(_("Group"), lambda r, t: r.group_name),
    Column(_("Help record"), _status, lambda r, t: "missing" if r.group_ledger and r.record_status is None else ""),
    Column(_("Responsible person"), lambda r, t: r.record_responsible or ""),
    Column(
        _("Review date"),
        lambda r, t: (
            (r.record_review_on.isoformat() + (f" ({gettext('overdue')})" if _overdue(r, t) else ""))
            if r.record_review_on
            else ""
        ),
        lambda r, t: "overdue" if _overdue(r, t) else "",
    ),  # fmt: skip
)


@dataclass(frozen=True)
class Cell:
    text: object
    flag: str = ""


def _refused(action: str) -> Http404:
    """No ledger for this user: logged, and answered as missing (the access matrix's rule)."""
    return case_access.refused(audit.label(Student), action=action)


def filtered(user, data, *, action: str = AccessAction.LIST) -> tuple[GroupLedgerFilterForm, QuerySet | None]:
    """The form, and the rows for its filters (None when a filter is invalid); the logged 404 without a ledger."""
    if not group_ledgers.reads_group_ledger(user):
        raise _refused(action)
    form = GroupLedgerFilterForm(data, user=user)
    if not form.is_valid():
        return form, None
    return form, group_ledgers.group_ledger(user, **form.filters())


def _writer_schools(user) -> frozenset[int]:
    """The schools whose help records the user writes (no query: their scope, cases.care_access's roles)."""
    scope = scoping.scope_for(user)
    return frozenset(h.node_id for h in scope.held if h.role in care_access.HELP_RECORD_WRITERS)


def _action(row, writes: frozenset[int]) -> tuple[str, str]:
    """The row's link: its help record, or "写一人一案" for a member of a ledger group without one (writers only)."""
    if row.record_id is not None:
        return str(_("View the record")), reverse("reports:help_record", args=[row.record_id])
    student = _student(row)
    if row.group_ledger and student.school_id in writes:
        url = reverse("reports:help_record_new") + f"?student={student.pk}&group={row.group_key}"
        return str(_("Write a help record")), url
    return "", ""


@never_cache  # masked names and help records of named students
@login_required
@require_GET
def group_ledger(request):
    form, rows = filtered(request.user, request.GET)
    page, shown, counts, today = None, [], [], timezone.localdate()
    if rows is not None:
        counts = group_ledgers.group_counts(request.user, **form.filters(), today=today)
        paginator = Paginator(rows, PAGE_SIZE)
        paginator.count = group_ledgers.rows_total(counts, **form.filters())  # known from the counts: no COUNT(*)
        page = paginator.get_page(request.GET.get("page"))
        audit.record(AccessAction.LIST, object_type=audit.label(Student), object_ids=[_student(r).pk for r in page])
        writes = _writer_schools(request.user)
        shown = [
            ([Cell(c.value(r, today), c.flag(r, today) if c.flag else "") for c in COLUMNS], _action(r, writes))
            for r in group_ledgers.with_records(page)
        ]
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form, "page": page, "rows": shown, "headers": [c.label for c in COLUMNS], "counts": counts,
        "export_url": reverse("reports:ledger_groups_xlsx") + (f"?{query.urlencode()}" if query else ""),
        "show_district": len(form.fields["district"].queryset) > 1,
        "export_background_rows": settings.EXPORT_BACKGROUND_ROWS,
        "mine_url": reverse("reports:help_records_mine"),
    }  # fmt: skip
    return render(request, "reports/group_ledger.html", context)


def export_parameters(query) -> dict:
    names = {*GroupLedgerFilterForm.base_fields, "district", "school", "school_class"}
    return {key: value for key, value in query.items() if key in names and value not in ("", None)}


@never_cache
@login_required
@require_GET
def group_ledger_xlsx(request):
    """Every row of the user's scope matching the filters, as XLSX (workflows.group_ledger_export writes it), at once
    or by the task worker (roster.exports). Every hand-over of the file is logged with every student in it."""
    form, rows = filtered(request.user, request.GET, action=AccessAction.EXPORT)
    if rows is None:
        raise Http404  # an invalid filter exports nothing (the page says why)
    return export_response(request, kind=EXPORT_KIND, parameters=export_parameters(request.GET), rows=rows.count())


# --- Help records ---------------------------------------------------------------------------------------------------


class HelpRecordForm(forms.Form):
    measures = forms.CharField(label=_("Help measures"), widget=forms.Textarea(attrs={"rows": 5}), max_length=4000)
    responsible = forms.ModelChoiceField(label=_("Responsible person"), queryset=None)
    review_on = forms.DateField(
        label=_("Review date"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )  # ISO: what a date input reads

    def __init__(self, *args, school_id: int, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["responsible"]
        field.queryset = help_records.school_staff(school_id)
        field.label_from_instance = lambda user: user.name or user.username


class HelpRecordChangeForm(HelpRecordForm):
    reason = forms.CharField(label=_("Reason for the change"), max_length=80)


class HelpRecordEndForm(forms.Form):
    reason = forms.CharField(label=_("Why the help ends"), max_length=80)


def _errors_into(form: forms.Form, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error)


def _member_to_write(request) -> tuple[Student, SpecialGroup]:
    """The student and group of a new record: a student of the user's ledger whom they may write for, else a logged
    404 (the same for a missing student and one out of reach)."""
    source = request.POST if request.method == "POST" else request.GET
    student_id, group_id = _int(source.get("student")), _int(source.get("group"))
    student = (
        group_ledgers.ledger_students(request.user).select_related("school", "school_class")
        .filter(pk=student_id).first() if student_id else None
    )  # fmt: skip
    group = SpecialGroup.objects.filter(pk=group_id).first() if group_id else None
    if student is None or group is None or not care_access.may_write_help_record(request.user, student):
        raise case_access.refused(audit.label(Student), student_id, writing=request.method == "POST")
    return student, group


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def help_record_new(request):
    """写一人一案: the form for a member of a ledger group, from the ledger's row."""
    student, group = _member_to_write(request)
    form = HelpRecordForm(request.POST or None, school_id=student.school_id)
    if request.method == "POST" and form.is_valid():
        try:
            record = help_records.help_record_create(actor=request.user, student=student, group=group,
                                                     **form.cleaned_data)  # fmt: skip
        except ValidationError as error:
            _errors_into(form, error)
        else:
            messages.success(request, gettext("The help record is written."))
            return redirect("reports:help_record", record.pk)
    audit.record(AccessAction.VIEW, object_type=audit.label(Student), object_ids=[student.pk])
    context = {"form": form, "student": student, "masked_name": mask_name(student.name), "group": group}
    return render(request, "reports/help_record_form.html", context, status=400 if form.errors else 200)


def _history(record: HelpRecord) -> list[dict]:
    rows = record.history.select_related("history_user").order_by("-history_date", "-history_id")
    shown = []
    for h in rows:
        # The measures are read by everyone who reads the record: so is a person's reason for changing it.
        text = reason_display(h.history_change_reason or "", tiers=False, clinical=True)
        who = (h.history_user.name or h.history_user.username) if h.history_user else ""
        shown.append({"at": h.history_date, "who": who, "reason": text, "review_on": h.review_on,
                      "status": HelpStatus(h.status).label})  # fmt: skip
    return shown


@never_cache
@login_required
@require_GET
def help_record(request, pk: int):
    """One help record: the school's care readers, the responsible person and the writer read it; its writers
    change or end it here."""
    record = help_records.help_record_by_id(request.user, pk)
    writes = care_access.may_write_help_record(request.user, record.student)
    initial = {"measures": record.measures, "responsible": record.responsible_id, "review_on": record.review_on}
    context = {
        "record": record, "masked_name": mask_name(record.student.name), "writes": writes,
        "change_form": HelpRecordChangeForm(initial=initial, school_id=record.school_id) if writes else None,
        "end_form": HelpRecordEndForm() if writes and record.status == HelpStatus.ACTIVE else None,
        "history": _history(record), "overdue": record.status == HelpStatus.ACTIVE
        and record.review_on < timezone.localdate(),
    }  # fmt: skip
    return render(request, "reports/help_record.html", context)


def _record_to_write(request, pk: int) -> HelpRecord:
    record = help_records.help_record_by_id(request.user, pk, logged_as=AccessAction.CHANGE)
    if not care_access.may_write_help_record(request.user, record.student):
        raise case_access.refused(audit.label(HelpRecord), pk, writing=True)
    return record


@never_cache
@login_required
@require_POST
def help_record_change(request, pk: int):
    record = _record_to_write(request, pk)
    form = HelpRecordChangeForm(request.POST, school_id=record.school_id)
    if form.is_valid():
        try:
            help_records.help_record_update(actor=request.user, record=record, **form.cleaned_data)
        except (ValidationError, PermissionDenied) as error:
            _errors_into(form, error if isinstance(error, ValidationError) else ValidationError(str(error)))
        else:
            messages.success(request, gettext("The help record is changed."))
            return redirect("reports:help_record", record.pk)
    context = {"record": record, "masked_name": mask_name(record.student.name), "writes": True,
               "change_form": form, "end_form": None, "history": _history(record)}  # fmt: skip
    return render(request, "reports/help_record.html", context, status=400)


@never_cache
@login_required
@require_POST
def help_record_end(request, pk: int):
    record = _record_to_write(request, pk)
    form = HelpRecordEndForm(request.POST)
    if form.is_valid():
        try:
            help_records.help_record_end(actor=request.user, record=record, reason=form.cleaned_data["reason"])
        except ValidationError as error:
            _errors_into(form, error)
        else:
            messages.success(request, gettext("The help record has ended."))
            return redirect("reports:help_record", record.pk)
    context = {"record": record, "masked_name": mask_name(record.student.name), "writes": True,
               "change_form": None, "end_form": form, "history": _history(record)}  # fmt: skip
    return render(request, "reports/help_record.html", context, status=400)


@never_cache
@login_required
@require_GET
def help_records_mine(request):
    """The help records the user is responsible for (责任人): anyone on staff may be one, and reads theirs here."""
    rows = list(help_records.help_records_responsible(request.user)[:200])
    audit.record(AccessAction.LIST, object_type=audit.label(HelpRecord), object_ids=[r.pk for r in rows])
    today = timezone.localdate()
    shown = [{"record": r, "masked_name": mask_name(r.student.name), "overdue": r.review_on < today} for r in rows]
    return render(request, "reports/help_records_mine.html", {"rows": shown})
