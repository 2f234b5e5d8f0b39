"""Admin pages for roster imports: upload, preview (the dry-run report), confirm, progress, error report, templates."""

from django import forms
from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

from roster import attendance, scoping
from roster.import_jobs import (
    ImportJobConflict,
    import_error_report_xlsx,
    import_job_confirm,
    import_job_create,
    import_job_expired,
    import_job_expired_message,
    import_job_resume,
    import_template,
)
from roster.importing import COLUMNS, MOVE_PREVIEW_COLUMNS
from roster.models import (
    ImportJob,
    ImportKind,
    ImportStatus,
    RoleAssignment,
    School,
    SchoolClass,
    SchoolMove,
    Student,
    User,
)
from roster.uploads import FileRefused, check_upload


class ImportUploadForm(forms.Form):
    file = forms.FileField(label=_("Roster file (XLSX, XLS or CSV)"))
    kind = forms.ChoiceField(
        label=_("What the file holds"),
        choices=[("", _("Detect from the column headers"))] + [c for c in ImportKind.choices if c[0] in COLUMNS],
        required=False,
    )
    school = forms.ModelChoiceField(
        label=_("School"),
        queryset=School.objects.none(),
        required=False,
        help_text=_("Only for files without a 学校代码 (school code) column."),
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["school"].queryset = scoping.visible(user, School)

    def clean_file(self):
        upload = self.cleaned_data["file"]
        try:
            check_upload(upload)  # too large, or an XLSX that unpacks too large: refused before it is stored
        except FileRefused as refusal:
            raise forms.ValidationError(str(refusal)) from None
        return upload


PREVIEW_PAGE = 50
MOVES_SHOWN = 100  # the review list has them all


def _preview_labels() -> dict[str, str]:
    """Preview column → its label in the reader's language (the stored rows hold only the keys)."""
    student, staff = Student._meta, User._meta
    labels = {name: student.get_field(name).verbose_name for name in _STUDENT_LABELLED}
    return {
        **labels,
        "school_code": School._meta.get_field("code").verbose_name,
        "class": SchoolClass._meta.verbose_name,
        "staff_no": staff.get_field("staff_no").verbose_name,
        "phone": staff.get_field("phone").verbose_name,
        "role": RoleAssignment._meta.get_field("role").verbose_name,
        "national_id": _("national student number"),
        "found_at": _("now at school"),
        "basis": SchoolMove._meta.get_field("basis").verbose_name,
        # The attendance import's columns (roster.attendance).
        "date": attendance.Absence._meta.get_field("date").verbose_name,
        "kind": attendance.Absence._meta.get_field("kind").verbose_name,
    }


_STUDENT_LABELLED = [
    "student_no", "name", "gender", "birth_date", "guardian_name", "guardian_phone", "special_groups", "status"
]  # fmt: skip


def _preview_context(request, preview: dict, report: dict) -> dict:
    """The rows to be added and changed, a page of each (?added=N, ?changed=N), with their columns' labels."""
    if not preview:
        return {"preview": None}
    labels = _preview_labels()
    added = Paginator(preview.get("added", []), PREVIEW_PAGE).get_page(request.GET.get("added"))
    changed = Paginator(preview.get("changed", []), PREVIEW_PAGE).get_page(request.GET.get("changed"))
    for row in changed:
        row["shown"] = [(labels.get(column, column), old, new) for column, old, new in row["changes"]]
    return {
        "preview": preview,
        "preview_columns": [labels.get(c, c) for c in preview.get("columns", [])],
        "added_page": added,
        "changed_page": changed,
        "added_cut": report.get("new", 0) > len(preview.get("added", [])),
        "changed_cut": report.get("updated", 0) > len(preview.get("changed", [])),
        "added_shown": len(preview.get("added", [])),
        "changed_shown": len(preview.get("changed", [])),
        "move_columns": [labels[c] for c in MOVE_PREVIEW_COLUMNS],
        "moved_rows": preview.get("moved", [])[:MOVES_SHOWN],
        "moved_cut": report.get("moves", 0) > MOVES_SHOWN,
    }


def may_import(user) -> bool:
    return scoping.may_change_some(user, Student) or scoping.may_change_some(user, User)


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ["created_at", "kind", "filename", "school", "status", "total_rows", "error_count"]
    list_filter = ["status", "kind"]
    list_select_related = ["school"]
    change_form_template = "admin/roster/importjob/detail.html"

    def get_queryset(self, request):
        return scoping.visible(request.user, super().get_queryset(request)).defer("content", "preview")

    def has_module_permission(self, request):
        return self.admin_site.has_permission(request) and may_import(request.user)

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request) and (obj is None or obj.created_by_id == request.user.pk)

    def has_add_permission(self, request):
        return self.has_module_permission(request)

    def has_change_permission(self, request, obj=None):
        return False  # a job is confirmed with its own button, never edited

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<int:job_id>/progress/", wrap(self.progress_view), name="roster_importjob_progress"),
            path("<int:job_id>/errors.xlsx", wrap(self.errors_view), name="roster_importjob_errors"),
            path("template/<str:kind>.<str:fmt>", wrap(self.template_view), name="roster_importjob_template"),
            *super().get_urls(),
        ]

    def _job(self, request, job_id) -> ImportJob:
        job = self.get_queryset(request).filter(pk=job_id).first()
        if job is None or not self.has_view_permission(request, job):
            raise Http404(_("Not found, or not in your scope."))
        return job

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise Http404
        form = ImportUploadForm(request.POST or None, request.FILES or None, user=request.user)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            job = import_job_create(
                actor=request.user,
                data=upload.read(),
                filename=upload.name,
                kind=form.cleaned_data["kind"],
                school=form.cleaned_data["school"],
                language=request.LANGUAGE_CODE,
            )
            return redirect(reverse("admin:roster_importjob_change", args=[job.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Import a roster"),
            "form": form,
            "opts": self.model._meta,
            "templates": [
                (kind, label, [c.header for c in COLUMNS[kind]])
                for kind, label in ImportKind.choices
                if kind in COLUMNS
            ],
        }
        return TemplateResponse(request, "admin/roster/importjob/upload.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        job = self._job(request, object_id)
        if request.method == "POST":
            try:
                if "_resume" in request.POST:
                    import_job_resume(actor=request.user, job=job)
                else:
                    import_job_confirm(actor=request.user, job=job, skip_invalid="_valid_only" in request.POST)
            except ImportJobConflict as conflict:
                self.message_user(request, str(conflict), level=messages.WARNING)
            return redirect(request.path)
        report = job.report or {}
        expired = import_job_expired(job)
        preview = job.preview if job.status == ImportStatus.CHECKED and not expired else {}
        context = {
            **_preview_context(request, preview, report),
            **self.admin_site.each_context(request),
            "title": str(job),
            "job": job,
            "report": report,
            "opts": self.model._meta,
            "running": job.status in (ImportStatus.PENDING, ImportStatus.CHECKING, ImportStatus.IMPORTING),
            "can_confirm": job.status == ImportStatus.CHECKED and report.get("valid", 0) > 0 and not expired,
            "expired_message": import_job_expired_message() if expired else "",
            "errors_shown": report.get("errors", [])[:200],
        }
        return TemplateResponse(request, self.change_form_template, context)

    def progress_view(self, request, job_id):
        job = self._job(request, job_id)
        return JsonResponse(
            {
                "status": job.status,
                "status_label": job.get_status_display(),
                "done": job.processed_rows,
                "total": job.total_rows,
                "errors": job.error_count,
                "finished": job.status not in (ImportStatus.PENDING, ImportStatus.CHECKING, ImportStatus.IMPORTING),
            }
        )

    def errors_view(self, request, job_id):
        job = self._job(request, job_id)
        response = HttpResponse(
            import_error_report_xlsx(job),
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
        response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-errors.xlsx"'
        return response

    def template_view(self, request, kind, fmt):
        if kind not in COLUMNS or fmt not in {"xlsx", "csv"} or not may_import(request.user):
            raise Http404
        data, filename, content_type = import_template(kind, fmt)
        response = HttpResponse(data, content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
