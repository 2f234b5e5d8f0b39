"""The special-group vocabulary in the admin (issue 20 item 3): district and city admins add a group, rename it, mark it
a ledger (三个清单: each member needs a 一人一案 help record) or no longer in use; nobody deletes one. Everyone in the
admin (the school admins who import rosters too) reads the list, to know the names a roster file may use.

An exam-year group (九年级, 高三) has its grade set by data (a migration): shown read-only, its members are that grade's
students (roster.special_groups), so it is neither tagged nor kept as a ledger of 一人一案. The history of every
change is kept (simple-history), with who made it.
"""

from django import forms
from django.contrib import admin
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from roster.models import SpecialGroup
from roster.special_groups import may_edit_vocabulary


class SpecialGroupForm(forms.ModelForm):
    class Meta:
        model = SpecialGroup
        fields = ["code", "name", "ledger", "active"]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("ledger") and self.instance.grade is not None:
            self.add_error(
                "ledger",
                _("An exam-year group's members are a whole grade: it is not kept as a ledger of help records."),
            )
        return cleaned


class GradeShown(admin.SimpleListFilter):
    title = _("members")
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        return [("tagged", _("Tagged one by one")), ("grade", _("A whole grade (exam year)"))]

    def queryset(self, request, queryset):
        if self.value() == "tagged":
            return queryset.filter(grade__isnull=True)
        if self.value() == "grade":
            return queryset.filter(grade__isnull=False)
        return queryset


@admin.register(SpecialGroup)
class SpecialGroupAdmin(SimpleHistoryAdmin):
    """Read by every admin role; added to and changed by district and city admins (may_edit_vocabulary)."""

    form = SpecialGroupForm
    list_display = ["name", "code", "ledger", "active", "members_are"]
    list_filter = ["ledger", "active", GradeShown]
    search_fields = ["name", "code"]
    fields = ["code", "name", "ledger", "active", "grade"]
    actions = None  # nothing to do to many groups at once; and never delete

    def get_readonly_fields(self, request, obj=None):
        if not may_edit_vocabulary(request.user):
            return self.fields
        # The code is what roster files and the history name the group by: set once. The grade is data.
        return ["code", "grade"] if obj is not None else ["grade"]

    @admin.display(description=_("members are"))
    def members_are(self, obj):
        if obj.grade is None:
            return gettext("Tagged one by one")
        return gettext("The students of grade %(grade)d") % {"grade": obj.grade}

    def save_model(self, request, obj, form, change):
        what = ", ".join(form.changed_data) if change else ""
        obj._change_reason = f"vocabulary changed: {what}"[:100] if change else "vocabulary: group added"
        super().save_model(request, obj, form, change)  # SimpleHistoryAdmin sets the history user

    def has_module_permission(self, request):
        return self.admin_site.has_permission(request)

    def has_view_permission(self, request, obj=None):
        return self.admin_site.has_permission(request)

    def has_change_permission(self, request, obj=None):
        return self.admin_site.has_permission(request) and may_edit_vocabulary(request.user)

    def has_add_permission(self, request):
        return self.admin_site.has_permission(request) and may_edit_vocabulary(request.user)

    def has_delete_permission(self, request, obj=None):
        return False  # students' tags, help records and history name it: a group is retired ("in use" off)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if "active" in form.base_fields:
            form.base_fields["active"].help_text = gettext(
                "A group no longer in use keeps its members and help records, and is refused in roster files."
            )
        return form
