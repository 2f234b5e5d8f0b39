"""Admin pages for the tree, staff and students. Every queryset and permission comes from roster.scoping."""

from django import forms
from django.contrib import admin
from django.contrib.admin import RelatedOnlyFieldListFilter
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserCreationForm
from django.core.exceptions import ValidationError
from django.db.models import Count, Prefetch, Q
from django.utils.translation import gettext_lazy as _
from import_export.admin import ExportMixin
from import_export.formats.base_formats import CSV, XLSX
from simple_history.admin import SimpleHistoryAdmin

from roster import audit, scoping
from roster.admin_access import issue_access_codes_action
from roster.admin_scoped import ScopedAdminMixin
from roster.masking import mask_name, mask_phone
from roster.models import (
    LEVEL_FIELD,
    AccessAction,
    City,
    District,
    RoleAssignment,
    School,
    SchoolClass,
    SpecialGroup,
    Student,
    StudentStatus,
    User,
)
from roster.resources import SchoolClassResource, StaffResource, StudentResource
from roster.roles import ROLE_LEVEL, Level, Role
from roster.spreadsheets import safe_cell


class ScopedAdmin(ScopedAdminMixin, SimpleHistoryAdmin):
    list_per_page = 50


class _FormulaSafe:
    """An export format whose every cell goes through roster.spreadsheets.safe_cell (=, +, -, @, tab, CR): the
    escaping import-export has (IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT) only drops a first "="."""

    def export_data(self, dataset, **kwargs):
        for _row in range(len(dataset)):
            dataset.append([safe_cell(value) for value in dataset.lpop()])
        return super().export_data(dataset, **kwargs)


class SafeXLSX(_FormulaSafe, XLSX):
    pass


class SafeCSV(_FormulaSafe, CSV):
    pass


class ScopedExportMixin(ExportMixin):
    """Exports of what the changelist shows (its scoped queryset and filters), as XLSX or CSV only."""

    formats = [SafeXLSX, SafeCSV]

    def get_data_for_export(self, request, queryset, **kwargs):
        """The rows to export, their export logged first (roster.audit: fail-closed, ids of every row)."""
        data = super().get_data_for_export(request, queryset, **kwargs)
        ids = queryset.values_list("pk", flat=True) if hasattr(queryset, "values_list") else [o.pk for o in queryset]
        audit.record(AccessAction.EXPORT, object_type=audit.label(self.model), object_ids=list(ids))
        return data


@admin.register(City)
class CityAdmin(ScopedAdmin):
    list_display = ["name", "division_code"]


@admin.register(District)
class DistrictAdmin(ScopedAdmin):
    list_display = ["name", "division_code", "city"]
    list_select_related = ["city"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "city":
            kwargs["queryset"] = scoping.parents_for_new(request.user, District, City)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(School)
class SchoolAdmin(ScopedAdmin):
    list_display = ["code", "name", "campus", "district"]
    list_select_related = ["district"]
    list_filter = [("district", RelatedOnlyFieldListFilter)]
    search_fields = ["code", "name"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "district":
            kwargs["queryset"] = scoping.parents_for_new(request.user, School, District)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(SchoolClass)
class SchoolClassAdmin(ScopedExportMixin, ScopedAdmin):
    resource_classes = [SchoolClassResource]
    actions = [issue_access_codes_action]
    list_display = ["__str__", "school", "homeroom_teacher", "student_count"]
    list_filter = ["grade", ("school", RelatedOnlyFieldListFilter)]

    def get_queryset(self, request):
        homerooms = RoleAssignment.objects.filter(role=Role.HOMEROOM_TEACHER).select_related("user")
        return (
            super()
            .get_queryset(request)
            .select_related("school")
            .annotate(student_count=Count("students", filter=Q(students__status=StudentStatus.ACTIVE)))
            .prefetch_related(Prefetch("role_assignments", queryset=homerooms, to_attr="homerooms"))
        )

    @admin.display(description=_("homeroom teacher"))
    def homeroom_teacher(self, obj):
        return ", ".join(mask_name(a.user.name) for a in obj.homerooms) or "-"

    @admin.display(description=_("enrolled students"), ordering="student_count")
    def student_count(self, obj):
        return obj.student_count

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "school":
            kwargs["queryset"] = scoping.parents_for_new(request.user, SchoolClass, School)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Student)
class StudentAdmin(ScopedExportMixin, ScopedAdmin):
    resource_classes = [StudentResource]
    reads_logged = True  # names, guardians' phones
    list_display = ["student_no", "masked_name", "gender", "school_class", "school", "status", "masked_phone"]
    list_select_related = ["school", "school_class"]
    list_filter = ["status", "gender", "school_class__grade", ("school", RelatedOnlyFieldListFilter)]
    search_fields = ["student_no", "=name"]
    filter_horizontal = ["special_groups"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("special_groups")

    @admin.display(description=_("name"))
    def masked_name(self, obj):
        return mask_name(obj.name)

    @admin.display(description=_("guardian's phone"))
    def masked_phone(self, obj):
        return mask_phone(obj.guardian_phone)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "school":
            kwargs["queryset"] = scoping.parents_for_new(request.user, Student, School)
        elif db_field.name == "school_class":
            kwargs["queryset"] = scoping.parents_for_new(request.user, Student, SchoolClass).select_related("school")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class RoleAssignmentForm(forms.ModelForm):
    """Each role row is checked against what the signed-in admin may grant (roster.roles.GRANTS)."""

    actor = None  # set per request by RoleAssignmentInline.get_formset

    class Meta:
        model = RoleAssignment
        fields = ["role", *LEVEL_FIELD.values()]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("role"):
            # Places that do not belong to the chosen role's level are ignored rather than reported.
            wanted = LEVEL_FIELD[ROLE_LEVEL[cleaned["role"]]]
            for field in LEVEL_FIELD.values():
                if field != wanted and field in cleaned:
                    cleaned[field] = None
        if self.errors or not self.has_changed():
            return cleaned
        if self.instance.pk and not scoping.can_grant(self.actor, self.instance):
            raise ValidationError(_("You may not change this role."))
        candidate = RoleAssignment(role=cleaned.get("role"), **{f: cleaned.get(f) for f in LEVEL_FIELD.values()})
        # A missing or extra place is reported by the model's own validation, with the field named.
        if candidate.role and candidate.node is not None and not scoping.can_grant(self.actor, candidate):
            raise ValidationError(_("You may not grant this role at this place."))
        return cleaned


class RoleAssignmentInline(admin.TabularInline):
    model = RoleAssignment
    form = RoleAssignmentForm
    extra = 0
    verbose_name = _("role")
    verbose_name_plural = _("roles (a person may hold several)")

    def get_formset(self, request, obj=None, **kwargs):
        kwargs.setdefault("validate_min", True)
        formset = super().get_formset(request, obj, **kwargs)
        formset.form = type("BoundRoleAssignmentForm", (formset.form,), {"actor": request.user})
        return formset

    def get_min_num(self, request, obj=None, **kwargs):
        # A staff account without a role would fall out of its admin's scope; deactivate people instead.
        return 0 if request.user.is_superuser else 1

    def get_fields(self, request, obj=None):
        levels = {ROLE_LEVEL[r] for r in scoping.grantable_roles(request.user)} if self._may_edit(request) else None
        if levels is None:
            return ["role", *LEVEL_FIELD.values()]
        return ["role", *(LEVEL_FIELD[level] for level in Level.values if level in levels)]

    def formfield_for_choice_field(self, db_field, request, **kwargs):
        if db_field.name == "role" and not request.user.is_superuser:
            grantable = scoping.grantable_roles(request.user)
            kwargs["choices"] = [("", "---------")] + [(v, label) for v, label in Role.choices if v in grantable]
        return super().formfield_for_choice_field(db_field, request, **kwargs)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        level = {field: level for level, field in LEVEL_FIELD.items()}.get(db_field.name)
        if level:
            kwargs["queryset"] = scoping.grant_nodes(request.user, level)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def _may_edit(self, request):
        return scoping.may_change_some(request.user, User)

    def has_view_permission(self, request, obj=None):
        return self.admin_site.has_permission(request)

    def has_change_permission(self, request, obj=None):
        return obj is None or scoping.can_change(request.user, obj)

    has_add_permission = has_change_permission
    has_delete_permission = has_change_permission


class StaffCreationForm(UserCreationForm):
    class Meta(UserCreationForm.Meta):
        model = User
        fields = ["username", "name", "phone"]


@admin.register(User)
class StaffAdmin(ScopedExportMixin, ScopedAdminMixin, SimpleHistoryAdmin, DjangoUserAdmin):
    resource_classes = [StaffResource]
    add_form = StaffCreationForm
    add_form_template = None  # the plain change form; Django's user template adds a password toggle we do not use
    inlines = [RoleAssignmentInline]
    list_display = ["username", "masked_name", "masked_phone", "roles", "is_active"]
    list_filter = ["is_active", "role_assignments__role"]
    search_fields = ["username", "=name"]
    ordering = ["username"]
    fieldsets = [
        (None, {"fields": ["username", "password"]}),
        (_("Person"), {"fields": ["name", "phone"]}),
        (_("Status"), {"fields": ["is_active", "last_login", "date_joined"]}),
    ]
    superuser_fieldsets = [
        *fieldsets,
        (_("Superuser only"), {"fields": ["is_superuser", "is_staff", "groups", "user_permissions"]}),
    ]
    add_fieldsets = [(None, {"fields": ["username", "name", "phone", "password1", "password2"]})]
    readonly_fields = ["last_login", "date_joined"]

    def get_fieldsets(self, request, obj=None):
        if obj is not None and request.user.is_superuser:
            return self.superuser_fieldsets
        return super().get_fieldsets(request, obj)

    def get_queryset(self, request):
        assignments = RoleAssignment.objects.select_related("city", "district", "school", "school_class__school")
        return super().get_queryset(request).prefetch_related(Prefetch("role_assignments", queryset=assignments))

    @admin.display(description=_("name"))
    def masked_name(self, obj):
        return mask_name(obj.name)

    @admin.display(description=_("mobile phone"))
    def masked_phone(self, obj):
        return mask_phone(obj.phone)

    @admin.display(description=_("roles"))
    def roles(self, obj):
        return "；".join(str(a) for a in obj.role_assignments.all())


@admin.register(SpecialGroup)
class SpecialGroupAdmin(admin.ModelAdmin):
    """The fixed vocabulary: readable by admin roles, changed only by a superuser (it is data, in a migration)."""

    list_display = ["name", "code"]

    def has_view_permission(self, request, obj=None):
        return self.admin_site.has_permission(request)

    def has_module_permission(self, request):
        return self.admin_site.has_permission(request)


from roster import admin_import  # noqa: E402,F401  registers the import pages
