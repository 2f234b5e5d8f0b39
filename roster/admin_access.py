"""Admin pieces for screening access codes: the "issue and print" action for classes and a read-only code list.

roster/admin.py imports this module (registration) and adds `issue_access_codes_action` to SchoolClassAdmin.actions.
Writes go through roster.access_codes; every queryset comes from roster.scoping.
"""

from urllib.parse import urlencode

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from roster.access_codes import access_codes_issue
from roster.admin_scoped import ScopedAdminMixin
from roster.masking import mask_name
from roster.models import AccessCode, Student


@admin.action(description=_("Issue screening access codes and print slips"), permissions=["change"])
def issue_access_codes_action(modeladmin, request, queryset):
    """On the class list: new codes for every enrolled student of the selected classes, then their slips."""
    class_ids = sorted(queryset.order_by().values_list("pk", flat=True))
    try:
        codes = access_codes_issue(actor=request.user, students=Student.objects.filter(school_class__in=class_ids))
    except PermissionDenied:
        modeladmin.message_user(
            request,
            _("No access codes were issued: only the school's administrator may issue codes for its students."),
            level=messages.ERROR,
        )
        return None
    if not codes:
        modeladmin.message_user(request, _("These classes have no enrolled students."), level=messages.WARNING)
        return None
    modeladmin.message_user(
        request,
        ngettext(
            "Issued %(count)d access code; earlier unused codes of these students no longer work.",
            "Issued %(count)d access codes; earlier unused codes of these students no longer work.",
            len(codes),
        )
        % {"count": len(codes)},
        level=messages.SUCCESS,
    )
    query = urlencode({"classes": ",".join(str(pk) for pk in class_ids)})
    return HttpResponseRedirect(f"{reverse('access_slips')}?{query}")


COLUMNS = ["school", "school_class", "student_no", "masked_name", "masked_code", "created_at", "used_at", "expires_at"]


@admin.register(AccessCode)
class AccessCodeAdmin(ScopedAdminMixin, admin.ModelAdmin):
    """Who has a code and whether it was used; the code itself is masked (slips are printed from the class list)."""

    list_display = COLUMNS
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
