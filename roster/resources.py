"""django-import-export resources: exports whose columns are the import templates' own headers (round trip)."""

from import_export import resources
from import_export.fields import Field

from roster import scoping
from roster.importing import CLASS_COLUMNS, STAFF_COLUMNS, STUDENT_COLUMNS
from roster.masking import mask_name
from roster.models import SchoolClass, Student, User


def _headers(columns) -> dict[str, str]:
    return {c.field: c.header for c in columns}


STUDENT = _headers(STUDENT_COLUMNS)
CLASS = _headers(CLASS_COLUMNS)
STAFF = _headers(STAFF_COLUMNS)


class StudentResource(resources.ModelResource):
    """Students as the import template has them, exported for `viewer` (the admin passes the signed-in user).

    A student the viewer does not see identified (roster.scoping.identities_visible: no role at the student's school
    or class, e.g. a city or district admin) goes out with the name masked and the birth date, guardian, guardian's
    phone and special groups blank; school, class, number, gender and status stay, so the rows still count. Without
    a viewer (a test, an operator's script) every row goes out in full.
    """

    BLANKED = frozenset({"birth_date", "guardian_name", "guardian_phone", "special_groups"})

    school_code = Field(attribute="school__code", column_name=STUDENT["school_code"])
    grade = Field(attribute="school_class__grade", column_name=STUDENT["grade"])
    class_number = Field(attribute="school_class__number", column_name=STUDENT["class"])
    student_no = Field(attribute="student_no", column_name=STUDENT["student_no"])
    name = Field(attribute="name", column_name=STUDENT["name"])
    gender = Field(attribute="get_gender_display", column_name=STUDENT["gender"])
    birth_date = Field(attribute="birth_date", column_name=STUDENT["birth_date"])
    guardian_name = Field(attribute="guardian_name", column_name=STUDENT["guardian_name"])
    guardian_phone = Field(attribute="guardian_phone", column_name=STUDENT["guardian_phone"])
    special_groups = Field(column_name=STUDENT["special_groups"])
    status = Field(attribute="get_status_display", column_name=STUDENT["status"])

    class Meta:
        model = Student
        fields = (
            "school_code", "grade", "class_number", "student_no", "name", "gender", "birth_date",
            "guardian_name", "guardian_phone", "special_groups", "status",
        )  # fmt: skip
        export_order = fields

    def __init__(self, viewer=None, **kwargs):
        super().__init__(**kwargs)
        self.viewer = viewer
        self.identified: frozenset[int] | None = None  # None: every row in full; else only these students

    def before_export(self, queryset, **kwargs):
        super().before_export(queryset, **kwargs)
        if self.viewer is None or scoping.identities_visible_everywhere(self.viewer):
            self.identified = None
            return
        rows = queryset if queryset is not None else self.get_queryset()
        if not hasattr(rows, "values_list"):
            rows = Student.objects.filter(pk__in=[student.pk for student in rows])
        self.identified = frozenset(scoping.identities_visible(self.viewer, rows).values_list("pk", flat=True))

    def export_field(self, field, instance, **kwargs):
        if self.identified is None or instance.pk in self.identified:
            return super().export_field(field, instance, **kwargs)
        name = self.get_field_name(field)
        if name in self.BLANKED:
            return ""
        value = super().export_field(field, instance, **kwargs)
        return mask_name(value) if name == "name" else value

    def dehydrate_special_groups(self, student) -> str:
        return "、".join(group.name for group in student.special_groups.all())  # prefetched by the admin


class SchoolClassResource(resources.ModelResource):
    school_code = Field(attribute="school__code", column_name=CLASS["school_code"])
    grade = Field(attribute="grade", column_name=CLASS["grade"])
    number = Field(attribute="number", column_name=CLASS["class"])

    class Meta:
        model = SchoolClass
        fields = ("school_code", "grade", "number")
        export_order = fields


class StaffResource(resources.ModelResource):
    """One row per staff member; several roles are listed together (import takes one role per row)."""

    school_code = Field(attribute="school__code", column_name=STAFF["school_code"])
    staff_no = Field(attribute="staff_no", column_name=STAFF["staff_no"])
    name = Field(attribute="name", column_name=STAFF["name"])
    phone = Field(attribute="phone", column_name=STAFF["phone"])
    roles = Field(column_name=STAFF["role"])
    username = Field(attribute="username", column_name="username")

    class Meta:
        model = User
        fields = ("school_code", "staff_no", "name", "phone", "roles", "username")
        export_order = fields

    def dehydrate_roles(self, user) -> str:
        return "、".join(str(a) for a in user.role_assignments.all())  # prefetched by the admin
