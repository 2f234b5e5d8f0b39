"""Admin pieces for screening access codes: the "issue and print" action for classes, a read-only code list, and
the re-issue of one student's lost slip (with a confirmation page).

roster/admin.py imports this module (registration) and adds `issue_access_codes_action` to SchoolClassAdmin.actions.
Writes go through roster.access_codes; every queryset comes from roster.scoping.
"""

from datetime import UTC
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from roster import audit, scoping
from roster.access_codes import (
    AccessCodeRefused,
    access_code_live_for,
    access_code_reissue,
    access_code_reissue_refusal,
    access_codes_issue,
)
from roster.admin_scoped import ScopedAdminMixin
from roster.masking import mask_name
from roster.models import AccessAction, AccessCode, Student


@admin.action(description=_("Issue screening access codes and print slips"), permissions=["change"])
def issue_access_codes_action(modeladmin, request, queryset):
    """On the class list: codes for the enrolled students of the selected classes who have no working code and have
    not answered, then the slips of those new codes only. Codes already printed keep working."""
    class_ids = sorted(queryset.order_by().values_list("pk", flat=True))
    try:
        issued = access_codes_issue(actor=request.user, students=Student.objects.filter(school_class__in=class_ids))
    except PermissionDenied:
        modeladmin.message_user(
            request,
            _("No access codes were issued: only the school's administrator may issue codes for its students."),
            level=messages.ERROR,
        )
        return None
    if not (issued or issued.already_live or issued.answered):
        modeladmin.message_user(request, _("These classes have no enrolled students."), level=messages.WARNING)
        return None
    summary = issue_summary(issued)
    everyone = slips_url(class_ids)
    if not issued:
        modeladmin.message_user(
            request,
            format_html('{} <a href="{}">{}</a>', summary, everyone, _("Print the slips of the working codes again"))
            if issued.already_live
            else summary,
            level=messages.INFO,
        )
        return None
    modeladmin.message_user(request, summary, level=messages.SUCCESS)
    return HttpResponseRedirect(slips_url(class_ids, issued_since=min(c.created_at for c in issued)))


def issue_summary(issued) -> str:
    """What an issue did, in the admin's words: new slips, students left as they were, students who answered."""
    return _(
        "New slips: %(new)d. Already holding a working code (not changed): %(live)d. Already answered: %(answered)d."
    ) % {"new": len(issued), "live": issued.already_live, "answered": issued.answered}


def slips_url(class_ids, *, issued_since=None) -> str:
    """The slips page of these classes: every working code, or only those issued since a moment (one issue's)."""
    params = {"classes": ",".join(str(pk) for pk in class_ids)}
    if issued_since is not None:
        params["since"] = issued_since.astimezone(UTC).isoformat()
    return f"{reverse('access_slips')}?{urlencode(params)}"


COLUMNS = ["school", "school_class", "student_no", "masked_name", "masked_code", "created_at", "used_at", "expires_at"]


@admin.register(AccessCode)
class AccessCodeAdmin(ScopedAdminMixin, admin.ModelAdmin):
    """Who has a code and whether it was used; the code itself is masked (slips are printed from the class list)."""

    list_display = [*COLUMNS, "reissue_link"]
    fields = readonly_fields = COLUMNS
    list_select_related = ["student__school", "student__school_class"]
    search_fields = ["=student__student_no"]
    list_per_page = 50

    def has_change_permission(self, request, obj=None):
        return False  # codes are issued from the class list; nobody edits one

    @admin.display(description=_("school"), ordering="student__school__code")
    def school(self, obj):
        return obj.student.school

    @admin.display(description=_("class"))
    def school_class(self, obj):
        return obj.student.school_class

    @admin.display(description=_("student number"), ordering="student__student_no")
    def student_no(self, obj):
        return obj.student.student_no

    @admin.display(description=_("name"))
    def masked_name(self, obj):
        return mask_name(obj.student.name)

    @admin.display(description=_("access code"))
    def masked_code(self, obj):
        return str(obj)

    @admin.display(description=_("lost slip"))
    def reissue_link(self, obj):
        if obj.used_at is not None or (obj.expires_at is not None and obj.expires_at <= timezone.now()):
            return ""
        url = reverse("admin:roster_accesscode_reissue", args=[obj.student_id])
        return format_html('<a href="{}">{}</a>', url, _("Re-issue this slip"))

    def get_urls(self):
        return [
            path(
                "reissue/<int:student_id>/",
                self.admin_site.admin_view(self.reissue_view),
                name="roster_accesscode_reissue",
            ),
            *super().get_urls(),
        ]

    def reissue_view(self, request, student_id):
        """One student's lost slip: GET says what will happen, POST gives the student a new code (the printed one
        stops working) and opens the new slip. Students the admin may not change look missing (404)."""
        if request.method not in ("GET", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        student = (
            scoping.changeable(request.user, Student)
            .select_related("school", "school_class")
            .filter(pk=student_id)
            .first()
        )
        if student is None:
            raise Http404(_("Not found, or not in your scope."))
        refusal = ""
        if request.method == "POST":
            try:
                with transaction.atomic():  # no new code without its access-log entry
                    code = access_code_reissue(actor=request.user, student=student)
                    audit.record(AccessAction.CHANGE, object_type=audit.label(AccessCode), object_ids=[code.pk])
            except AccessCodeRefused as error:
                refusal = str(error)
            else:
                return HttpResponseRedirect(slips_url([student.school_class_id], issued_since=code.created_at))
        else:
            audit.record(AccessAction.VIEW, object_type=audit.label(Student), object_ids=[student.pk])
            refusal = access_code_reissue_refusal(student)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Re-issue an access slip"),
            "opts": self.opts,
            "student": student,
            "masked_name": mask_name(student.name),
            "has_live_code": access_code_live_for(student) is not None,
            "refusal": refusal,
        }
        request.current_app = self.admin_site.name
        status = 409 if refusal and request.method == "POST" else 200  # a POST that changed nothing
        return TemplateResponse(request, "admin/roster/accesscode/reissue.html", context, status=status)
