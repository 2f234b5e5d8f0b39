"""Admin pages for the tree, staff and students. Every queryset and permission comes from roster.scoping."""

from django import forms
from django.contrib import admin
from django.contrib.admin import RelatedOnlyFieldListFilter
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserCreationForm
from django.core.exceptions import ValidationError
from django.db.models import Count, Prefetch, Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from import_export.admin import ExportMixin
from import_export.formats.base_formats import CSV, XLSX
from simple_history.admin import SimpleHistoryAdmin
from simple_history.template_utils import HistoricalRecordContextHelper

from roster import admin_staff, audit, leaving, scoping, selectors, services
from roster.admin_access import issue_access_codes_action
from roster.admin_scoped import ScopedAdminMixin
from roster.identity import (
    is_national_id,
    mask_national_id,
    national_id_digest,
    national_id_tail,
    normalize_national_id,
)
from roster.importing import NATIONAL_ID_FORMAT
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
from roster.stages import SchoolStage, grades_text


class ScopedAdmin(ScopedAdminMixin, SimpleHistoryAdmin):
    list_per_page = 50


def grade_filter(lookup: str) -> type[admin.SimpleListFilter]:
    """A grade filter offering the grades the user's schools have (their stages), those of the chosen school once
    one is chosen: Django's own would list every grade stored anywhere, a primary school's list offering grade 11."""

    class GradeFilter(admin.SimpleListFilter):
        title = _("grade")
        parameter_name = lookup

        def lookups(self, request, model_admin):
            school = request.GET.get("school__id__exact", "")
            grades = selectors.grades_offered_for(request.user, school_id=int(school) if school.isdigit() else None)
            return [(str(g), gettext("Grade %(grade)d") % {"grade": g}) for g in grades]

        def queryset(self, request, queryset):
            value = self.value()
            return queryset.filter(**{lookup: int(value)}) if value and value.isdigit() else queryset

    return GradeFilter


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
    list_display = ["code", "name", "campus", "stage", "district"]
    list_select_related = ["district"]
    list_filter = [("district", RelatedOnlyFieldListFilter), "stage"]
    search_fields = ["code", "name"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        field = form.base_fields.get("stage")
        if field is None:
            return form
        field.help_text = "; ".join(
            gettext("%(stage)s: grades %(grades)s") % {"stage": label, "grades": grades_text(stage)}
            for stage, label in SchoolStage.choices
        )
        if obj is None:
            # A new school's stage is chosen, not left at the permissive default: it decides which grades it has.
            field.choices = [("", "---------"), *SchoolStage.choices]
            field.initial = ""
        return form

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "district":
            kwargs["queryset"] = scoping.parents_for_new(request.user, School, District)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ClassYearFilter(admin.SimpleListFilter):
    """Current classes unless asked otherwise: classes that graduated in a school-year rollover (roster.rollover) are
    kept for their history, out of the way of this year's work."""

    title = _("school year")
    parameter_name = "archived"

    def lookups(self, request, model_admin):
        return [("current", _("Current classes")), ("graduated", _("Graduated classes")), ("all", _("All"))]

    def choices(self, changelist):
        for value, label in self.lookup_choices:
            yield {
                "selected": (self.value() or "current") == value,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": label,
            }

    def queryset(self, request, queryset):
        value = self.value() or "current"
        if value == "graduated":
            return queryset.archived()
        return queryset if value == "all" else queryset.current()


@admin.register(SchoolClass)
class SchoolClassAdmin(ScopedExportMixin, ScopedAdmin):
    resource_classes = [SchoolClassResource]
    actions = [issue_access_codes_action]
    list_display = ["__str__", "school", "homeroom_teacher", "student_count"]
    list_filter = [ClassYearFilter, grade_filter("grade"), ("school", RelatedOnlyFieldListFilter)]

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


class MaskedStudentHistory(HistoricalRecordContextHelper):
    """A student's change history for someone who sees the student masked: a changed name shows masked, the other
    identifying values (birth date, guardian and phone, special groups) not at all."""

    HIDDEN = frozenset({"birth_date", "guardian_name", "guardian_phone", "special_groups"})

    def prepare_delta_change_value(self, change, value):
        if change.field == "name":
            return mask_name(value)
        if change.field in self.HIDDEN:
            return "***"
        return super().prepare_delta_change_value(change, value)


class StudentAdminForm(forms.ModelForm):
    """The student form, with the national student number typed to set or replace it: never shown back (only its
    last 4 characters are kept, roster.identity)."""

    national_id = forms.CharField(
        label=_("national student number"),
        required=False,
        max_length=64,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
        help_text=_(
            "Type it to set or replace it (全国学籍号). It is not shown again: only its last 4 characters are kept."
        ),
    )

    class Meta:
        model = Student
        fields = [
            "school", "school_class", "student_no", "name", "gender", "birth_date", "guardian_name", "guardian_phone",
            "special_groups", "status",
        ]  # fmt: skip

    def clean_national_id(self):
        number = normalize_national_id(self.cleaned_data.get("national_id", ""))
        if number and not is_national_id(number):
            raise ValidationError(NATIONAL_ID_FORMAT)
        return number

    def clean(self):
        cleaned = super().clean()
        number, school = cleaned.get("national_id"), cleaned.get("school")
        if number and school is not None:
            taken = Student.objects.filter(school=school, national_id_digest=national_id_digest(number))
            if taken.exclude(pk=self.instance.pk).exists():
                self.add_error("national_id", _("Another student of this school has this national student number."))
        return cleaned


@admin.register(Student)
class StudentAdmin(ScopedExportMixin, ScopedAdmin):
    resource_classes = [StudentResource]
    reads_logged = True  # names, guardians' phones
    form = StudentAdminForm
    list_display = [
        "student_no", "masked_name", "gender", "school_class", "school", "status", "national_number", "masked_phone"
    ]  # fmt: skip
    readonly_fields = ["national_number"]
    list_select_related = ["school", "school_class"]
    list_filter = ["status", "gender", grade_filter("school_class__grade"), ("school", RelatedOnlyFieldListFilter)]
    search_fields = ["student_no", "=name"]
    filter_horizontal = ["special_groups"]

    # Identities (names, birth dates, guardians and phones, special groups) only for roles at the student's school or
    # class (roster.scoping.identities_visible); above it a student is shown by number, school and class, masked.
    masked_fields = ["student_no", "masked_name", "gender", "school", "school_class", "status", "national_number"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("special_groups")

    def _identified(self, request, pk) -> bool:
        """Whether the user sees this student identified (asked once per student and page)."""
        if scoping.identities_visible_everywhere(request.user):
            return True
        seen = request.__dict__.setdefault("_students_identified", {})
        if pk not in seen:
            seen[pk] = scoping.identities_visible(request.user, Student.objects.filter(pk=pk)).exists()
        return seen[pk]

    def get_list_display(self, request):
        if scoping.identities_visible_everywhere(request.user):
            return self.list_display
        return [column for column in self.list_display if column != "masked_phone"]

    def get_search_fields(self, request):
        # A hit on a full name tells who the student is: above a school, search by student number only ...
        return self.search_fields if scoping.identities_visible_everywhere(request.user) else ["student_no"]

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if search_term.strip() and not scoping.identities_visible_everywhere(request.user):
            # ... and by name only among the students of a school or class where the user also holds a role.
            identified = scoping.identities_visible(request.user, queryset)
            results |= identified.filter(name__iexact=search_term.strip())
        return results, may_have_duplicates

    def get_fieldsets(self, request, obj=None):
        if obj is not None and not self._identified(request, obj.pk):
            return [(None, {"fields": self.masked_fields})]
        return super().get_fieldsets(request, obj)

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is not None and not self._identified(request, obj.pk):
            kwargs["form"] = forms.ModelForm  # read-only: not even a field to type the national number into
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and not self._identified(request, obj.pk):
            return self.masked_fields  # EDITORS gives students to school admins only; read-only whatever it says
        return super().get_readonly_fields(request, obj)

    def get_historical_record_context_helper(self, request, historical_record):
        if self._identified(request, historical_record.id):
            return super().get_historical_record_context_helper(request, historical_record)
        return MaskedStudentHistory(self.model, historical_record)

    def get_export_resource_kwargs(self, request, **kwargs):
        # StudentResource masks the rows whose student the exporter does not see identified.
        return {**super().get_export_resource_kwargs(request, **kwargs), "viewer": request.user}

    @admin.display(description=_("name"))
    def masked_name(self, obj):
        return mask_name(obj.name)

    @admin.display(description=_("guardian's phone"))
    def masked_phone(self, obj):
        return mask_phone(obj.guardian_phone)

    @admin.display(description=_("national student number"))
    def national_number(self, obj):
        return mask_national_id(obj.national_id_tail) or "-"

    def save_model(self, request, obj, form, change):
        number = form.cleaned_data.get("national_id")
        if number:
            obj.national_id_digest, obj.national_id_tail = national_id_digest(number), national_id_tail(number)
        super().save_model(request, obj, form, change)
        if change and "status" in form.changed_data:  # inside the admin's transaction: announced with the write
            leaving.students_status_changed(changes=[(obj.pk, form.initial["status"], obj.status)], actor=request.user)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "special_groups":  # an exam-year group (九年级, 高三) follows from the grade: never tagged
            kwargs["queryset"] = SpecialGroup.objects.filter(grade__isnull=True)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "school":
            kwargs["queryset"] = scoping.parents_for_new(request.user, Student, School)
        elif db_field.name == "school_class":
            classes = scoping.parents_for_new(request.user, Student, SchoolClass.objects.current())
            kwargs["queryset"] = classes.select_related("school")
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
    """A first password is optional, and temporary when typed: a principal, psychology teacher or district or city
    role gets a link at their email address to choose their own instead (roster.services.staff_password_first)."""

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ["username", "name", "phone", "email"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["password1"].required = self.fields["password2"].required = False
        self.fields["password1"].help_text = _(
            "Temporary: they choose their own at their first sign-in. Leave empty for a principal, a psychology "
            "teacher or a district or city role: they get a link at their email address to choose their own."
        )

    def validate_passwords(self, *args, **kwargs):
        first, again = self.cleaned_data.get("password1"), self.cleaned_data.get("password2")
        if bool(first) != bool(again) and "password2" not in self.errors:
            mismatch = ValidationError(self.error_messages["password_mismatch"], code="password_mismatch")
            self.add_error("password2", mismatch)
        super().validate_passwords(*args, **kwargs)

    def set_password_and_save(self, user, password_field_name="password1", commit=True):  # noqa: S107 (a field name)
        if self.cleaned_data.get(password_field_name):
            return super().set_password_and_save(user, password_field_name, commit)
        user.set_unusable_password()
        if commit:
            user.save()
        return user


@admin.register(User)
class StaffAdmin(ScopedExportMixin, ScopedAdminMixin, SimpleHistoryAdmin, DjangoUserAdmin):
    resource_classes = [StaffResource]
    add_form = StaffCreationForm
    add_form_template = None  # the plain change form; Django's user template adds a password toggle we do not use
    inlines = [RoleAssignmentInline]
    actions = [admin_staff.issue_otp_enrolment_codes_action]
    list_display = ["username", "masked_name", "masked_phone", "roles", "is_active"]
    list_filter = ["is_active", "role_assignments__role"]
    search_fields = ["username", "=name"]
    ordering = ["username"]
    fieldsets = [
        (None, {"fields": ["username", "password"]}),
        (_("Person"), {"fields": ["name", "phone", "email"]}),
        (_("Status"), {"fields": ["is_active", "must_change_password", "last_login", "date_joined"]}),
    ]
    superuser_fieldsets = [
        *fieldsets,
        (_("Superuser only"), {"fields": ["is_superuser", "is_staff", "groups", "user_permissions"]}),
    ]
    add_fieldsets = [(None, {"fields": ["username", "name", "phone", "email", "password1", "password2"]})]
    readonly_fields = ["must_change_password", "last_login", "date_joined"]

    def get_fieldsets(self, request, obj=None):
        if obj is not None and request.user.is_superuser:
            return self.superuser_fieldsets
        return super().get_fieldsets(request, obj)

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        # Where a case reader's set-password links go is not the administrator's to choose once the account is in use
        # (they would send the link to themselves and sign in as its holder): set until the first sign-in, afterwards
        # by the holder ("My email address", roster.passwords) or a superuser.
        if obj is not None and not services.staff_email_set_by_admin(request.user, obj):
            fields.append("email")
        return fields

    def get_queryset(self, request):
        assignments = RoleAssignment.objects.select_related("city", "district", "school", "school_class__school")
        return super().get_queryset(request).prefetch_related(Prefetch("role_assignments", queryset=assignments))

    def user_change_password(self, request, id, form_url=""):
        # A temporary password, or a set-password link; only the link for accounts their holder alone sets.
        return admin_staff.password_view(request, self, id)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "email" in form.changed_data:  # where set-password links go: logged, the old address told
            services.staff_email_changed(actor=request.user, user=obj, old_email=form.initial.get("email") or "")

    def save_formset(self, request, form, formset, change):
        if formset.model is RoleAssignment:  # granted and revoked by roster.services, never saved here
            return admin_staff.role_formset_save(request, form.instance, formset)
        return super().save_formset(request, form, formset, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if not change:  # the new account's roles are known now, and so whose password it is to choose
            admin_staff.first_password(request, form.instance)

    @admin.display(description=_("name"))
    def masked_name(self, obj):
        return mask_name(obj.name)

    @admin.display(description=_("mobile phone"))
    def masked_phone(self, obj):
        return mask_phone(obj.phone)

    @admin.display(description=_("roles"))
    def roles(self, obj):
        return "；".join(str(a) for a in obj.role_assignments.all())


# The vocabulary, import and move pages; the mentors' pages and leave (休学) and its return (issue 20).
from roster import admin_groups, admin_import, admin_leaves, admin_mentoring, admin_moves  # noqa: E402,F401,I001
