"""Admin pages for mentors (全员导师制): who mentors whom (read-only, history kept), the mentor import (check, then
import) and the assignment of one mentor to every student of a class. Writes go through roster.mentoring and
roster.mentor_import; who may is roster.mentoring.may_assign_mentors (the school admin)."""

from __future__ import annotations

import csv
import io

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from roster import mentor_import, mentoring, scoping
from roster.admin_scoped import ScopedAdminMixin
from roster.masking import mask_name
from roster.models import Mentorship, School, SchoolClass, Student, User
from roster.uploads import FileRefused, check_upload


def may_assign(user) -> bool:
    """Who sees the import and class-assignment pages: those who edit students somewhere (school admins)."""
    return scoping.may_change_some(user, Student)


def _assign_schools(user):
    return scoping.parents_for_new(user, Student, School.objects.all())


class MentorImportForm(forms.Form):
    file = forms.FileField(label=_("Mentor file (XLSX, XLS or CSV)"))
    school = forms.ModelChoiceField(
        label=_("School"), queryset=School.objects.none(), required=False,
        help_text=_("Only for files without a 学校代码 (school code) column."),
    )  # fmt: skip

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["school"].queryset = _assign_schools(user)

    def clean_file(self):
        upload = self.cleaned_data["file"]
        try:
            check_upload(upload)
        except FileRefused as refusal:
            raise forms.ValidationError(str(refusal)) from None
        return upload


class _MentorChoice(forms.ModelChoiceField):
    def label_from_instance(self, user: User) -> str:
        number = f" · {user.staff_no}" if user.staff_no else ""
        return f"{user.name or user.username}{number}"


class ClassMentorForm(forms.Form):
    school_class = forms.ModelChoiceField(label=_("Class"), queryset=SchoolClass.objects.none())
    mentor = _MentorChoice(label=_("Mentor"), queryset=User.objects.none())

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        schools = _assign_schools(user)
        self.fields["school_class"].queryset = (
            SchoolClass.objects.current().filter(school__in=schools).select_related("school")
            .order_by("school__code", "grade", "number")
        )  # fmt: skip
        self.fields["mentor"].queryset = mentoring.mentor_candidates(schools.values("pk")).order_by("name")


class CurrentFilter(admin.SimpleListFilter):
    title = _("current")
    parameter_name = "current"

    def lookups(self, request, model_admin):
        return [("1", _("Current")), ("0", _("Ended"))]

    def queryset(self, request, queryset):
        if self.value() in ("0", "1"):
            return queryset.filter(left_at__isnull=self.value() == "1")
        return queryset


@admin.register(Mentorship)
class MentorshipAdmin(ScopedAdminMixin, SimpleHistoryAdmin):
    list_display = ["student_label", "mentor_label", "school", "started_at", "left_at"]
    list_filter = [CurrentFilter, "school"]
    list_select_related = ["student__school_class", "user", "school"]
    change_list_template = "admin/roster/mentorship/change_list.html"
    list_per_page = 50
    reads_logged = True

    @admin.display(description=_("student"))
    def student_label(self, obj: Mentorship) -> str:
        return f"{obj.student.student_no} {mask_name(obj.student.name)} · {obj.student.school_class}"

    @admin.display(description=_("mentor"))
    def mentor_label(self, obj: Mentorship) -> str:
        return obj.user.name or obj.user.username

    def has_add_permission(self, request):
        return False  # assigned by the import or per class (the buttons above the list), through roster.mentoring

    def has_change_permission(self, request, obj=None):
        return False

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("import/", wrap(self.import_view), name="roster_mentorship_import"),
            path("assign-class/", wrap(self.assign_class_view), name="roster_mentorship_assign_class"),
            path("template.csv", wrap(self.template_view), name="roster_mentorship_template"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra = {**(extra_context or {}), "may_assign": may_assign(request.user)}
        return super().changelist_view(request, extra)

    def _context(self, request, title: str, **extra) -> dict:
        return {**self.admin_site.each_context(request), "title": title, "opts": self.model._meta, **extra}

    def import_view(self, request):
        if not may_assign(request.user):
            raise Http404
        form = MentorImportForm(request.POST or None, request.FILES or None, user=request.user)
        report = None
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            report = mentor_import.mentor_import(
                actor=request.user, data=upload.read(), filename=upload.name, school=form.cleaned_data["school"],
                dry_run="_import" not in request.POST,
            )  # fmt: skip
        context = self._context(
            request, gettext("Import mentors"), form=form, report=report,
            columns=[c.header for c in mentor_import.COLUMNS],
            preview_columns=[_("School code"), _("Student number"), _("Student"), _("Mentor")],
        )  # fmt: skip
        return TemplateResponse(request, "admin/roster/mentorship/import.html", context)

    def assign_class_view(self, request):
        if not may_assign(request.user):
            raise Http404
        form = ClassMentorForm(request.POST or None, user=request.user)
        if request.method == "POST" and form.is_valid():
            school_class, mentor = form.cleaned_data["school_class"], form.cleaned_data["mentor"]
            try:
                changed = mentoring.mentor_assign_class(actor=request.user, school_class=school_class, mentor=mentor)
            except (ValidationError, PermissionDenied) as refusal:
                form.add_error(None, " ".join(getattr(refusal, "messages", [str(refusal)])))
            else:
                self.message_user(
                    request,
                    gettext("%(mentor)s now mentors the students of %(class)s (%(count)d changed).")
                    % {"mentor": mentor.name or mentor.username, "class": school_class, "count": changed},
                    messages.SUCCESS,
                )
                return redirect(reverse("admin:roster_mentorship_changelist"))
        context = self._context(request, gettext("Assign a mentor to a class"), form=form)
        return TemplateResponse(request, "admin/roster/mentorship/assign_class.html", context)

    def template_view(self, request):
        if not may_assign(request.user):
            raise Http404
        out = io.StringIO()
        csv.writer(out).writerow([c.header for c in mentor_import.COLUMNS])
        response = HttpResponse(("\ufeff" + out.getvalue()).encode("utf-8"), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="mentors.csv"'
        return response
