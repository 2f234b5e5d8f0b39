"""The organisation tree (city → district → school → class), staff users with roles held at a node, students."""

import os

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.files.storage import FileSystemStorage
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from roster.roles import ROLE_LEVEL, Level, Role, roles_at
from roster.stages import SchoolStage, grade_outside_stage_message, grades_text, stage_grades


def school_year_label(year: int) -> str:
    """A school year by the calendar year it starts in, as people write it: 2026 → “2026–2027”."""
    return f"{year}–{year + 1}"


validate_division_code = RegexValidator(
    r"^\d{6}$", _("An administrative division code is exactly 6 digits (e.g. 510402).")
)


def validate_school_code(code: str, district: "District | None") -> None:
    """The rule in settings.SCHOOL_CODE_RULE: N digits, starting with the district's division code."""
    rule = settings.SCHOOL_CODE_RULE
    length, prefix_length = rule["length"], rule["division_prefix_length"]
    if len(code) != length or not code.isdigit():
        raise ValidationError(
            _("A school code is exactly %(length)d digits; “%(code)s” is not."),
            code="school_code_format",
            params={"length": length, "code": code},
        )
    if district is not None and code[:prefix_length] != district.division_code:
        raise ValidationError(
            _("A school code starts with its district's division code %(prefix)s; “%(code)s” starts with %(actual)s."),
            code="school_code_prefix",
            params={"prefix": district.division_code, "code": code, "actual": code[:prefix_length]},
        )


class City(models.Model):
    name = models.CharField(pgettext_lazy("of a place or thing", "name"), max_length=50)
    division_code = models.CharField(_("division code"), max_length=6, unique=True, validators=[validate_division_code])
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("city")
        verbose_name_plural = _("cities")
        ordering = ["division_code"]

    def __str__(self) -> str:
        return self.name


class District(models.Model):
    city = models.ForeignKey(City, on_delete=models.PROTECT, related_name="districts", verbose_name=_("city"))
    name = models.CharField(pgettext_lazy("of a place or thing", "name"), max_length=50)
    division_code = models.CharField(_("division code"), max_length=6, unique=True, validators=[validate_division_code])
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("district")
        verbose_name_plural = _("districts")
        ordering = ["division_code"]

    def __str__(self) -> str:
        return self.name


class School(models.Model):
    """One campus: seed 000 asks for one account and one code per campus (一个校区一个)."""

    district = models.ForeignKey(District, on_delete=models.PROTECT, related_name="schools", verbose_name=_("district"))
    code = models.CharField(_("school code"), max_length=20, unique=True)
    name = models.CharField(pgettext_lazy("of a place or thing", "name"), max_length=100)
    campus = models.CharField(_("campus"), max_length=50, blank=True)
    # The grades a school has follow from its stage (roster.stages); twelve-year refuses no grade, the safe default for
    # a school created without one (migration 0011 inferred the stage of schools that existed before).
    stage = models.CharField(
        _("stage"), max_length=20, choices=SchoolStage.choices, default=SchoolStage.TWELVE_YEAR,
        help_text=_("Decides which grades the school's classes may be in."),
    )  # fmt: skip
    # School hours (roster.duty): empty means the district-wide default, settings.SCHOOL_HOURS_DEFAULT.
    day_starts = models.TimeField(_("school day starts"), null=True, blank=True)
    day_ends = models.TimeField(_("school day ends"), null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("school")
        verbose_name_plural = _("schools")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name}（{self.campus}）" if self.campus else self.name

    @property
    def allowed_grades(self) -> range:
        return stage_grades(self.stage)

    def clean(self) -> None:
        try:
            validate_school_code(self.code, self.district if self.district_id else None)
        except ValidationError as error:
            raise ValidationError({"code": error}) from None
        if self.pk:
            outside = sorted(
                set(self.classes.current().exclude(grade__in=list(self.allowed_grades)).values_list("grade", flat=True))
            )
            if outside:
                raise ValidationError(
                    {
                        "stage": _(
                            "This school has classes in grade %(grades)s; the stage %(stage)s has grades "
                            "%(allowed)s only."
                        )
                        % {
                            "grades": "、".join(str(g) for g in outside),
                            "stage": self.get_stage_display(),
                            "allowed": grades_text(self.stage),
                        }
                    }
                )


class SchoolClassQuerySet(models.QuerySet):
    def current(self):
        """Classes of this school year: what imports, campaigns, slips and class lists work with."""
        return self.filter(graduated_in__isnull=True)

    def archived(self):
        """Classes that graduated in a school-year rollover (roster.rollover), kept for their history."""
        return self.filter(graduated_in__isnull=False)


class SchoolClass(models.Model):
    school = models.ForeignKey(School, on_delete=models.PROTECT, related_name="classes", verbose_name=_("school"))
    grade = models.PositiveSmallIntegerField(
        _("grade"), validators=[MinValueValidator(1), MaxValueValidator(12)], help_text=_("1 to 12")
    )
    number = models.PositiveSmallIntegerField(_("class number"), validators=[MinValueValidator(1)])
    # Set when the class graduated in a school-year rollover (the school year it graduated at the end of, e.g. 2025
    # for 2025–2026): an archived class keeps its students' history but takes no new work. Null: a current class.
    graduated_in = models.PositiveSmallIntegerField(
        _("graduated (school year)"), null=True, blank=True, editable=False, db_index=True
    )
    history = HistoricalRecords()

    objects = SchoolClassQuerySet.as_manager()

    class Meta:
        verbose_name = _("class")
        verbose_name_plural = _("classes")
        ordering = ["school", "grade", "number"]
        constraints = [
            # Among current classes only: next year's 9年级1班 and the archived one of this year's graduates coexist.
            models.UniqueConstraint(
                fields=["school", "grade", "number"], condition=Q(graduated_in__isnull=True),
                name="class_unique_in_school",
            ),
            models.UniqueConstraint(
                fields=["school", "grade", "number", "graduated_in"], condition=Q(graduated_in__isnull=False),
                name="archived_class_unique_in_school",
            ),
            models.CheckConstraint(condition=Q(grade__gte=1, grade__lte=12), name="class_grade_1_to_12"),
        ]  # fmt: skip

    def __str__(self) -> str:
        label = gettext("Grade %(grade)d, class %(number)d") % {"grade": self.grade, "number": self.number}
        # A list that loaded only grade and number (.only()) lists current classes: no query per row for the mark.
        if "graduated_in" not in self.get_deferred_fields() and self.graduated_in is not None:
            year = school_year_label(self.graduated_in)
            return gettext("%(class)s (graduated %(year)s)") % {"class": label, "year": year}
        return label

    def clean(self) -> None:
        if self.school_id and self.grade and self.grade not in self.school.allowed_grades:
            message = grade_outside_stage_message(school=str(self.school), stage=self.school.stage, grade=self.grade)
            raise ValidationError({"grade": message})


class User(AbstractUser):
    """A staff account. Chinese names are kept whole in `name`; first/last name are unused."""

    name = models.CharField(_("name"), max_length=50, blank=True)
    phone = models.CharField(_("mobile phone"), max_length=20, blank=True)
    # Staff rows of a school's roster file are keyed by (school, staff number), like students.
    school = models.ForeignKey(
        "School",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="staff",
        verbose_name=_("employing school"),
    )
    staff_no = models.CharField(_("staff number"), max_length=32, blank=True)
    # Set when an administrator typed the password (a new account, a temporary password): the holder chooses their
    # own at their next sign-in before anything else (roster.passwords).
    must_change_password = models.BooleanField(_("must choose a new password at next sign-in"), default=False)
    history = HistoricalRecords(excluded_fields=["password", "last_login"])

    class Meta(AbstractUser.Meta):
        verbose_name = _("staff member")
        verbose_name_plural = _("staff")
        ordering = ["username"]
        constraints = [
            models.UniqueConstraint(
                fields=["school", "staff_no"], condition=~Q(staff_no=""), name="staff_no_unique_in_school"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name}（{self.username}）" if self.name else self.username

    def get_full_name(self) -> str:
        # Django's default joins first_name and last_name, which stay empty here: pages, viewflow and the admin
        # would otherwise never show a staff member's name.
        return self.name.strip()

    def get_short_name(self) -> str:
        """How pages name a staff member: their name, or their username when the roster has none."""
        return self.get_full_name() or self.username


class UserSession(models.Model):
    """A signed-in session of a staff member (written at sign-in, removed at sign-out), so that deactivating them or
    changing their password ends every session they have at once: the session store cannot be searched by user."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+", verbose_name=_("staff member"))
    session_key = models.CharField(_("session key"), max_length=40, unique=True)
    created_at = models.DateTimeField(_("signed in at"), auto_now_add=True)

    class Meta:
        verbose_name = _("signed-in session")
        verbose_name_plural = _("signed-in sessions")

    def __str__(self) -> str:
        return f"{self.user_id} @ {self.created_at:%Y-%m-%d %H:%M}"


class OTPEnrolmentCode(models.Model):
    """A one-time code an administrator gives a staff member so that they can set up their authenticator app the
    first time (roster.two_factor): a password alone never enrols a device. Kept hashed; shown once, to the issuer."""

    user = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="otp_enrolment_codes", verbose_name=_("staff member")
    )
    code_hash = models.CharField(_("code (hashed)"), max_length=128)
    issued_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("issued by")
    )
    issued_at = models.DateTimeField(_("issued at"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires at"))
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)
    failed_attempts = models.PositiveSmallIntegerField(_("wrong attempts"), default=0)

    class Meta:
        verbose_name = _("authenticator enrolment code")
        verbose_name_plural = _("authenticator enrolment codes")
        indexes = [models.Index(fields=["user", "expires_at"])]

    def __str__(self) -> str:
        return f"{self.user_id} @ {self.issued_at:%Y-%m-%d %H:%M}"


def _node_only(level_field: str) -> Q:
    fields = ("city", "district", "school", "school_class")
    return Q(**{f"{f}__isnull": f != level_field for f in fields})


LEVEL_FIELD = {
    Level.CITY: "city",
    Level.DISTRICT: "district",
    Level.SCHOOL: "school",
    Level.CLASS: "school_class",
}


class RoleAssignment(models.Model):
    """A role a user holds at one node of the tree. A user may hold several (e.g. psychology + homeroom)."""

    user = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="role_assignments", verbose_name=_("staff member")
    )
    role = models.CharField(_("role"), max_length=32, choices=Role.choices)
    city = models.ForeignKey(City, on_delete=models.PROTECT, null=True, blank=True, verbose_name=_("city"))
    district = models.ForeignKey(District, on_delete=models.PROTECT, null=True, blank=True, verbose_name=_("district"))
    school = models.ForeignKey(School, on_delete=models.PROTECT, null=True, blank=True, verbose_name=_("school"))
    school_class = models.ForeignKey(
        SchoolClass,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="role_assignments",
        verbose_name=_("class"),
    )
    created_at = models.DateTimeField(_("granted at"), auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("role")
        verbose_name_plural = _("roles")
        ordering = ["user", "role"]
        constraints = [
            # Exactly the node of the role's level is set: a database-level guarantee the scoping layer relies on.
            models.CheckConstraint(
                condition=(
                    (Q(role__in=roles_at(Level.CITY)) & _node_only("city"))
                    | (Q(role__in=roles_at(Level.DISTRICT)) & _node_only("district"))
                    | (Q(role__in=roles_at(Level.SCHOOL)) & _node_only("school"))
                    | (Q(role__in=roles_at(Level.CLASS)) & _node_only("school_class"))
                ),
                name="role_held_at_its_level",
            ),
            *[
                models.UniqueConstraint(
                    fields=["user", "role", field],
                    condition=Q(**{f"{field}__isnull": False}),
                    name=f"role_once_per_{field}",
                )
                for field in LEVEL_FIELD.values()
            ],
            models.UniqueConstraint(
                fields=["school_class"],
                condition=Q(role=Role.HOMEROOM_TEACHER),
                name="one_homeroom_teacher_per_class",
                violation_error_message=_("This class already has a homeroom teacher."),
            ),
        ]
        indexes = [models.Index(fields=["user", "role"])]

    def __str__(self) -> str:
        return f"{self.get_role_display()} · {self.node}"

    @property
    def level(self) -> str:
        return ROLE_LEVEL[self.role]

    @property
    def node(self) -> models.Model | None:
        return getattr(self, LEVEL_FIELD[self.level]) if self.role else None

    def clean(self) -> None:
        if not self.role:
            return
        wanted = LEVEL_FIELD[self.level]
        errors = {}
        for field in LEVEL_FIELD.values():
            is_set = getattr(self, f"{field}_id") is not None
            if field == wanted and not is_set:
                errors[field] = ValidationError(
                    _("The role “%(role)s” is held at a %(level)s: choose one."),
                    params={"role": self.get_role_display(), "level": Level(self.level).label},
                )
            elif field != wanted and is_set:
                errors[field] = ValidationError(
                    _("Leave this empty: the role “%(role)s” is held at a %(level)s."),
                    params={"role": self.get_role_display(), "level": Level(self.level).label},
                )
        if errors:
            raise ValidationError(errors)


class SpecialGroup(models.Model):
    """The city's vocabulary of special-circumstance groups (留守儿童, 单亲家庭, 家庭经济困难, …), kept by the city and
    district admins (issue 20). A ledger group (三个清单, seed 001; 特殊群体台账, seed 003) calls for a 一人一案 help
    record for each member (cases.HelpRecord). A group with a grade is not tagged: its members are the students of
    that grade (九年级, 高三: the exam years of seed 003)."""

    code = models.SlugField(_("code"), max_length=32, unique=True)
    name = models.CharField(pgettext_lazy("of a place or thing", "name"), max_length=30, unique=True)
    ledger = models.BooleanField(
        _("kept as a ledger"), default=False, help_text=_("Each member needs a help record (一人一案).")
    )
    grade = models.PositiveSmallIntegerField(
        _("members are the students of grade"), null=True, blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(12)],
        help_text=_("Leave empty for a group whose members are tagged one by one."),
    )  # fmt: skip
    active = models.BooleanField(_("in use"), default=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("special group")
        verbose_name_plural = _("special groups")
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name


class Gender(models.TextChoices):
    MALE = "M", _("Male")
    FEMALE = "F", _("Female")


class StudentStatus(models.TextChoices):
    ACTIVE = "active", _("Enrolled")
    TRANSFERRED = "transferred", _("Transferred out")  # 转出 (out of the city, or to a school not on this system)
    GRADUATED = "graduated", _("Graduated")
    WITHDRAWN = "withdrawn", pgettext_lazy("student status", "Withdrawn")  # 退学 (plain "Withdrawn" is 已撤销)
    ON_LEAVE = "on_leave", _("On leave")  # 休学: still the school's student, back on an expected date


# A student in one of these has left the system (issue 19 item 5): every case timer stops. 休学 is not leaving.
LEAVING_STATUSES = (StudentStatus.TRANSFERRED, StudentStatus.GRADUATED, StudentStatus.WITHDRAWN)


class Student(models.Model):
    """A pupil, identified by (school, student number). Never deleted: a leaver's status changes."""

    school = models.ForeignKey(School, on_delete=models.PROTECT, related_name="students", verbose_name=_("school"))
    school_class = models.ForeignKey(
        SchoolClass, on_delete=models.PROTECT, related_name="students", verbose_name=_("class")
    )
    student_no = models.CharField(_("student number"), max_length=32)
    name = models.CharField(_("name"), max_length=50)
    gender = models.CharField(_("gender"), max_length=1, choices=Gender.choices)
    birth_date = models.DateField(_("date of birth"), null=True, blank=True)
    guardian_name = models.CharField(_("guardian"), max_length=50, blank=True)
    guardian_phone = models.CharField(_("guardian's phone"), max_length=20, blank=True)
    special_groups = models.ManyToManyField(
        SpecialGroup, blank=True, related_name="students", verbose_name=_("special groups")
    )
    status = models.CharField(_("status"), max_length=16, choices=StudentStatus.choices, default=StudentStatus.ACTIVE)
    # 全国学籍号, the key of one person across schools (roster.identity). Never stored as typed: it usually embeds the
    # national ID number. A keyed hash to match on, and its last four characters to tell two apart on a review page.
    national_id_digest = models.CharField(
        _("national student number (keyed hash)"), max_length=64, blank=True, editable=False
    )
    national_id_tail = models.CharField(_("national student number (last 4)"), max_length=4, blank=True, editable=False)
    history = HistoricalRecords(m2m_fields=[special_groups])

    class Meta:
        verbose_name = _("student")
        verbose_name_plural = _("students")
        ordering = ["school", "student_no"]
        constraints = [
            models.UniqueConstraint(fields=["school", "student_no"], name="student_no_unique_in_school"),
        ]
        indexes = [
            models.Index(fields=["school_class", "status"]),
            models.Index(
                fields=["national_id_digest"], condition=~Q(national_id_digest=""), name="student_national_id"
            ),
            # A probable match (same name, birth date and gender in the district) when a file has no 学籍号.
            models.Index(fields=["name", "birth_date", "gender"], name="student_probable_match"),
        ]

    def __str__(self) -> str:
        return self.student_no

    def clean(self) -> None:
        if self.school_id and self.school_class_id and self.school_class.school_id != self.school_id:
            raise ValidationError({"school_class": _("This class belongs to another school.")})


class MoveBasis(models.TextChoices):
    NATIONAL_ID = "national_id", _("Same national student number")
    PROBABLE = "probable", _("Same name, date of birth and gender")


class MoveStatus(models.TextChoices):
    PENDING = "pending", _("Waiting for review")
    CONFIRMED = "confirmed", _("Confirmed: the same student")
    REJECTED = "rejected", _("Not the same student")


class SchoolMove(models.Model):
    """A student of one school found in another school's roster file (issue 19 item 2): staged, never applied by the
    import. The receiving school's admin confirms (the Student row moves, with its history) or says it is somebody
    else (the row is added as a new student). `row` holds the receiving file's values for either outcome."""

    student = models.ForeignKey(Student, on_delete=models.PROTECT, related_name="moves", verbose_name=_("student"))
    from_school = models.ForeignKey(School, on_delete=models.PROTECT, related_name="+", verbose_name=_("from school"))
    from_class = models.ForeignKey(
        SchoolClass, on_delete=models.PROTECT, related_name="+", verbose_name=_("from class")
    )
    from_student_no = models.CharField(_("student number there"), max_length=32)
    from_status = models.CharField(_("status there"), max_length=16, choices=StudentStatus.choices)
    to_school = models.ForeignKey(School, on_delete=models.PROTECT, related_name="+", verbose_name=_("to school"))
    to_class = models.ForeignKey(SchoolClass, on_delete=models.PROTECT, related_name="+", verbose_name=_("to class"))
    to_student_no = models.CharField(_("new student number"), max_length=32)
    row = models.JSONField(_("row of the receiving file"), default=dict, editable=False)
    basis = models.CharField(_("matched on"), max_length=16, choices=MoveBasis.choices)
    status = models.CharField(_("status"), max_length=12, choices=MoveStatus.choices, default=MoveStatus.PENDING)
    import_job = models.ForeignKey(
        "ImportJob", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("import")
    )
    created_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("found by")
    )
    created_at = models.DateTimeField(_("found at"), auto_now_add=True)
    decided_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("decided by")
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    note = models.TextField(_("note"), blank=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("school move")
        verbose_name_plural = _("school moves")
        ordering = ["-created_at", "-pk"]
        constraints = [
            # One pending move per student (a re-import refreshes it), and per new place.
            models.UniqueConstraint(fields=["student"], condition=Q(status="pending"), name="one_pending_move"),
            models.UniqueConstraint(
                fields=["to_school", "to_student_no"], condition=Q(status="pending"), name="one_pending_move_per_row"
            ),
        ]
        indexes = [models.Index(fields=["to_school", "status"]), models.Index(fields=["from_school", "status"])]

    def __str__(self) -> str:
        return f"{self.from_student_no} → {self.to_student_no}"


class ImportKind(models.TextChoices):
    STUDENTS = "students", _("Students")
    STAFF = "staff", _("Staff")
    CLASSES = "classes", _("Classes")
    ATTENDANCE = "attendance", _("Attendance")
    MENTORS = "mentors", _("Mentors")


class ImportStatus(models.TextChoices):
    PENDING = "pending", _("Waiting")
    CHECKING = "checking", _("Checking")
    CHECKED = "checked", _("Checked, waiting for confirmation")
    IMPORTING = "importing", _("Importing")
    DONE = "done", _("Done")
    REFUSED = "refused", _("Refused")
    FAILED = "failed", _("Failed")


class ImportJob(models.Model):
    """One uploaded roster file: its preview (a dry run), its confirmation and its outcome, with progress.

    The file is kept in the row (not on disk) so a worker on another machine can read it and a re-run after a crash
    starts from the same bytes; only until the import is done, refused or expired (roster.import_jobs: retention).
    """

    kind = models.CharField(_("kind"), max_length=16, choices=ImportKind.choices)
    filename = models.CharField(_("file name"), max_length=255)
    content = models.BinaryField(editable=False)
    school = models.ForeignKey(
        School,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        verbose_name=_("school"),
        help_text=_("Rows without a school code column belong to this school."),
    )
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+", verbose_name=_("imported by"))
    created_at = models.DateTimeField(_("uploaded at"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=ImportStatus.choices, default=ImportStatus.PENDING)
    skip_invalid = models.BooleanField(_("import only the valid rows"), default=False)
    total_rows = models.PositiveIntegerField(_("rows"), default=0)
    processed_rows = models.PositiveIntegerField(_("rows done"), default=0)
    error_count = models.PositiveIntegerField(_("rows with errors"), default=0)
    report = models.JSONField(_("report"), default=dict, blank=True)
    # The first rows to be added and changed, with their values (names among them), for the preview: emptied with
    # `content`, so the names stay no longer than the file; apart from `report` so that lists of jobs stay light.
    preview = models.JSONField(_("preview rows"), default=dict, blank=True, editable=False)

    class Meta:
        verbose_name = _("roster import")
        verbose_name_plural = _("roster imports")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.filename}"


class ExportStatus(models.TextChoices):
    PENDING = "pending", _("Waiting")
    RUNNING = "running", _("Writing")
    DONE = "done", _("Ready")
    FAILED = "failed", _("Failed")
    EXPIRED = "expired", _("Expired")


class ExportStorage(FileSystemStorage):
    """Where finished exports are kept: settings.EXPORT_ROOT, outside the static and media roots, never served by
    the web server; files are handed over only by roster.views_exports after the checks (roster.exports). Read
    from the settings at each use (not once at start), so a test or a deployment may move it."""

    def __init__(self):
        super().__init__(base_url=None, file_permissions_mode=0o600)

    @property
    def base_location(self):
        return settings.EXPORT_ROOT

    @property
    def location(self):
        return os.path.abspath(self.base_location)


def export_storage() -> ExportStorage:
    return ExportStorage()


class ExportJob(models.Model):
    """A large export written by the task worker for one person: its filters, progress, file and expiry.

    `kind` names an export registered in roster.exports by the app that owns it (e.g. workflows' ledgers); the
    parameters are the filters as the page sent them, checked again against the requester's scope when the job runs.
    """

    kind = models.CharField(_("kind"), max_length=40)
    requested_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+", verbose_name=_("requested by"))
    parameters = models.JSONField(_("filters"), default=dict, blank=True)
    language = models.CharField(_("language"), max_length=10, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=ExportStatus.choices, default=ExportStatus.PENDING)
    total_rows = models.PositiveIntegerField(_("rows"), default=0)
    processed_rows = models.PositiveIntegerField(_("rows done"), default=0)
    file = models.FileField(_("file"), storage=export_storage, upload_to="%Y/%m", blank=True, max_length=200)
    filename = models.CharField(_("file name"), max_length=200, blank=True)  # as the browser saves it
    object_type = models.CharField(_("object type"), max_length=60, blank=True)
    object_ids = models.TextField(_("object ids"), blank=True, editable=False)  # logged with every download
    created_at = models.DateTimeField(_("requested at"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("export")
        verbose_name_plural = _("exports")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "expires_at"], name="export_expiry")]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}"


class AccessCode(models.Model):
    """A one-time code a student types to answer a screening; no account, no password (seed 000: 测评账号)."""

    student = models.ForeignKey(
        Student, on_delete=models.PROTECT, related_name="access_codes", verbose_name=_("student")
    )
    code = models.CharField(_("access code"), max_length=16, unique=True)
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+", verbose_name=_("issued by"))
    created_at = models.DateTimeField(_("issued at"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)

    class Meta:
        verbose_name = _("access code")
        verbose_name_plural = _("access codes")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["student", "used_at"])]

    def __str__(self) -> str:
        return f"{self.code[:2]}******"


class Notification(models.Model):
    """A message to one staff member, shown in the app and, when they have an address, sent by email.

    Every app notifies people through roster.notifications.notify(). One row per (recipient, kind, subject): the
    same event notifies each person once however often its sender runs. Rows never carry screening answers or
    full names: a masked name, the class and a link.
    """

    recipient = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="notifications", verbose_name=_("recipient")
    )
    kind = models.CharField(_("kind"), max_length=32)  # a short code owned by the sending app, e.g. "red_alert"
    urgent = models.BooleanField(_("urgent"), default=False)  # shown so that it stands out (red alerts)
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("text"), blank=True)
    link = models.CharField(_("link"), max_length=300, blank=True)  # a path on this site, e.g. /screening/…
    subject_key = models.CharField(_("about"), max_length=100)  # what it is about, e.g. "screening_result:123"
    created_at = models.DateTimeField(_("sent at"), auto_now_add=True)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)
    emailed_at = models.DateTimeField(_("emailed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "kind", "subject_key"], name="notification_once_per_recipient_and_subject"
            )
        ]
        indexes = [models.Index(fields=["recipient", "read_at"], name="notification_unread")]

    def __str__(self) -> str:
        return f"{self.kind}:{self.subject_key} → {self.recipient_id}"


class AccessAction(models.TextChoices):
    VIEW = "view", _("Viewed")
    LIST = "list", _("Listed")
    EXPORT = "export", _("Exported")
    CHANGE = "change", _("Changed")
    LOGIN = "login", _("Signed in")
    LOGOUT = "logout", _("Signed out")
    LOGIN_FAILED = "login_failed", _("Failed sign-in")


class AccessOutcome(models.TextChoices):
    OK = "ok", _("Allowed")
    DENIED = "denied", _("Denied")


class AccessLogEntry(models.Model):
    """Who read, listed, exported or was refused which record, when and from where (PIPL art. 28; China's rules for
    minors' data: 记录访问情况). Append-only (database triggers refuse UPDATE and DELETE) and hash-chained: each
    entry's HMAC covers its fields and the previous entry's HMAC, keyed by a secret kept outside the database
    (settings.AUDIT_LOG_KEY). Written by roster.audit only, synchronously: a read whose entry cannot be written is
    not shown. The actor is kept as id and username, not a foreign key, so that no user change touches the log."""

    at = models.DateTimeField(_("when (UTC)"))
    actor_id = models.BigIntegerField(_("actor id"), null=True, blank=True)
    actor = models.CharField(_("actor"), max_length=150, blank=True)
    roles = models.CharField(_("roles"), max_length=300, blank=True)  # "psychology_teacher@school:12, …"
    action = models.CharField(_("action"), max_length=16, choices=AccessAction.choices)
    outcome = models.CharField(_("outcome"), max_length=8, choices=AccessOutcome.choices, default=AccessOutcome.OK)
    object_type = models.CharField(_("object type"), max_length=60, blank=True)
    object_ids = models.TextField(_("object ids"), blank=True)  # comma-separated: one for a read, a page for a list
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("browser"), max_length=300, blank=True)
    request_id = models.CharField(_("request id"), max_length=32, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        verbose_name = _("access log entry")
        verbose_name_plural = _("access log")
        ordering = ["pk"]
        indexes = [
            models.Index(fields=["object_type", "at"], name="accesslog_object_at"),
            models.Index(fields=["actor_id", "at"], name="accesslog_actor_at"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.object_type} {self.object_ids}"[:120]


class AuditCheckpoint(models.Model):
    """The access log's head hash, recorded daily by the task worker: a later rewrite of the chain behind it shows."""

    at = models.DateTimeField(_("when (UTC)"))
    entry_id = models.BigIntegerField(_("last entry"))
    hash = models.CharField(max_length=64)

    class Meta:
        verbose_name = _("access log checkpoint")
        verbose_name_plural = _("access log checkpoints")
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d} #{self.entry_id}"


class DutyKind(models.TextChoices):
    PSYCHOLOGY_TEACHER = "psychology_teacher", _("Psychology teacher")
    SCHOOL_LEADER = "school_leader", _("School leader")
    DISTRICT_CENTRE = "district_centre", _("District centre")


class Weekday(models.IntegerChoices):
    MONDAY = 0, _("Monday")
    TUESDAY = 1, _("Tuesday")
    WEDNESDAY = 2, _("Wednesday")
    THURSDAY = 3, _("Thursday")
    FRIDAY = 4, _("Friday")
    SATURDAY = 5, _("Saturday")
    SUNDAY = 6, _("Sunday")


class DutySlot(models.Model):
    """Who is on duty when (值班表): a weekly slot at a school (its psychology teachers, its leaders) or at a district
    (the district centre's duty line). `ends` at or before `starts` runs past midnight (17:30-07:30); equal times
    make a 24-hour slot. An overnight slot belongs to the weekday it starts on. Read through roster.duty."""

    school = models.ForeignKey(
        School, on_delete=models.CASCADE, null=True, blank=True, related_name="duty_slots", verbose_name=_("school")
    )
    district = models.ForeignKey(
        District, on_delete=models.CASCADE, null=True, blank=True, related_name="duty_slots", verbose_name=_("district")
    )
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="duty_slots", verbose_name=_("staff member"))
    kind = models.CharField(_("duty"), max_length=32, choices=DutyKind.choices)
    weekday = models.PositiveSmallIntegerField(_("weekday"), choices=Weekday.choices)
    starts = models.TimeField(_("starts at"))
    ends = models.TimeField(_("ends at"))
    valid_from = models.DateField(_("valid from"), null=True, blank=True)
    valid_until = models.DateField(_("valid until"), null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("duty slot")
        verbose_name_plural = _("duty slots")
        ordering = ["weekday", "starts", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    (Q(school__isnull=False, district__isnull=True) & ~Q(kind=DutyKind.DISTRICT_CENTRE))
                    | (Q(school__isnull=True, district__isnull=False) & Q(kind=DutyKind.DISTRICT_CENTRE))
                ),
                name="duty_slot_at_a_school_or_a_district",
            ),
            models.CheckConstraint(condition=Q(weekday__gte=0, weekday__lte=6), name="duty_slot_weekday_0_to_6"),
            models.CheckConstraint(
                condition=(
                    Q(valid_from__isnull=True) | Q(valid_until__isnull=True) | Q(valid_until__gte=F("valid_from"))
                ),
                name="duty_slot_valid_dates_in_order",
            ),
        ]
        indexes = [
            models.Index(fields=["school", "weekday"], name="dutyslot_school_weekday"),
            models.Index(fields=["district", "weekday"], name="dutyslot_district_weekday"),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.starts:%H:%M}-{self.ends:%H:%M} {self.get_kind_display()}"

    @property
    def overnight(self) -> bool:
        return self.ends <= self.starts


class CalendarDayKind(models.TextChoices):
    HOLIDAY = "holiday", _("Holiday (no school)")
    WORKDAY = "workday", _("Make-up school day")


class CalendarDay(models.Model):
    """An exception to a district's school calendar: a day off, or a weekend day with school (调休). Days without
    a row follow China's public holidays (chinesecalendar), else Monday to Friday (roster.duty.is_school_day)."""

    district = models.ForeignKey(
        District, on_delete=models.CASCADE, related_name="calendar_days", verbose_name=_("district")
    )
    date = models.DateField(_("date"))
    kind = models.CharField(_("kind"), max_length=16, choices=CalendarDayKind.choices)
    name = models.CharField(pgettext_lazy("of a place or thing", "name"), max_length=100, blank=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("calendar day")
        verbose_name_plural = _("calendar days")
        ordering = ["district", "date"]
        constraints = [models.UniqueConstraint(fields=["district", "date"], name="calendar_day_once_per_district")]

    def __str__(self) -> str:
        return f"{self.date:%Y-%m-%d} {self.get_kind_display()} {self.name}".strip()


class RolloverStatus(models.TextChoices):
    APPLIED = "applied", _("Applied")
    UNDONE = "undone", _("Undone")


class Rollover(models.Model):
    """One run of the school-year rollover (学年升级, roster.rollover) over a district or a whole city: what it did
    is in its per-school rows (RolloverSchool), so that undoing it reverses exactly that."""

    school_year = models.PositiveSmallIntegerField(
        _("school year"), help_text=_("The calendar year the new school year starts in: 2026 for 2026–2027.")
    )
    city = models.ForeignKey(
        City, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("city")
    )
    district = models.ForeignKey(
        District, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("district")
    )
    status = models.CharField(
        _("status"), max_length=12, choices=RolloverStatus.choices, default=RolloverStatus.APPLIED
    )
    created_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("run by")
    )
    created_at = models.DateTimeField(_("started at"), auto_now_add=True)
    applied_at = models.DateTimeField(_("applied at"), null=True, blank=True)
    undone_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("undone by")
    )
    undone_at = models.DateTimeField(_("undone at"), null=True, blank=True)
    # Per school: counts and the problems that kept a school back, as the result page shows them.
    summary = models.JSONField(_("summary"), default=dict, blank=True)

    class Meta:
        verbose_name = _("school-year rollover")
        verbose_name_plural = _("school-year rollovers")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(city__isnull=False, district__isnull=True) | Q(city__isnull=True, district__isnull=False),
                name="rollover_over_a_city_or_a_district",
            )
        ]

    def __str__(self) -> str:
        return f"{school_year_label(self.school_year)} · {self.district or self.city}"

    @property
    def scope(self) -> "City | District":
        return self.district or self.city


class RolloverSchool(models.Model):
    """What one rollover did at one school: the class ids moved up a grade, the class ids graduated (archived), the
    students who graduated (all of them enrolled before). One applied row per school and school year."""

    rollover = models.ForeignKey(
        Rollover, on_delete=models.PROTECT, related_name="schools", verbose_name=_("school-year rollover")
    )
    school = models.ForeignKey(School, on_delete=models.PROTECT, related_name="+", verbose_name=_("school"))
    school_year = models.PositiveSmallIntegerField(_("school year"))
    undone = models.BooleanField(_("undone"), default=False)
    moved_class_ids = models.JSONField(_("classes moved up"), default=list, editable=False)
    graduated_class_ids = models.JSONField(_("classes graduated"), default=list, editable=False)
    graduated_student_ids = models.JSONField(_("students graduated"), default=list, editable=False)

    class Meta:
        verbose_name = _("school-year rollover of a school")
        verbose_name_plural = _("school-year rollovers of schools")
        ordering = ["rollover", "school"]
        constraints = [
            models.UniqueConstraint(
                fields=["school", "school_year"], condition=Q(undone=False), name="one_rollover_per_school_and_year"
            )
        ]

    def __str__(self) -> str:
        return f"{school_year_label(self.school_year)} · {self.school_id}"


# --- Care beyond screening (issue 20): mentors, absences, leave -------------------------------------------------------


class Mentorship(models.Model):
    """全员导师制 (seed 004): a staff member mentors a student from `started_at` until `left_at`. At most one current
    mentor per student. `user` and `left_at` are the names roster.scoping's team rule reads: a mentor sees their
    current mentees and no other student."""

    student = models.ForeignKey(
        Student, on_delete=models.PROTECT, related_name="mentorships", verbose_name=_("student")
    )
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="mentorships", verbose_name=_("mentor"))
    school = models.ForeignKey(School, on_delete=models.PROTECT, related_name="+", verbose_name=_("school"))
    started_at = models.DateTimeField(_("mentor since"))
    left_at = models.DateTimeField(_("mentor until"), null=True, blank=True)
    assigned_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("assigned by")
    )
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("mentorship")
        verbose_name_plural = _("mentorships")
        ordering = ["student", "-started_at"]
        constraints = [
            models.UniqueConstraint(fields=["student"], condition=Q(left_at__isnull=True), name="one_current_mentor")
        ]
        indexes = [models.Index(fields=["user", "left_at"]), models.Index(fields=["school", "left_at"])]

    def __str__(self) -> str:
        return f"{self.user_id} → {self.student_id}"


class AbsenceKind(models.TextChoices):
    SICK = "sick", _("Sick leave")  # 病假
    PERSONAL = "personal", _("Personal leave")  # 事假
    TRUANCY = "truancy", _("Truancy")  # 旷课
    UNEXPLAINED = "unexplained", _("Unexplained")  # 未说明


# Absences the rules count (cases care rules): nobody explained them.
UNEXCUSED_ABSENCES = (AbsenceKind.TRUANCY, AbsenceKind.UNEXPLAINED)


class Absence(models.Model):
    """One student absent one day, as the school's daily list says (学校代码, 学号, 日期, 类型). Re-importing a day
    replaces its kind, never adds a second row."""

    student = models.ForeignKey(Student, on_delete=models.PROTECT, related_name="absences", verbose_name=_("student"))
    school = models.ForeignKey(School, on_delete=models.PROTECT, related_name="+", verbose_name=_("school"))
    date = models.DateField(_("date"))
    kind = models.CharField(_("kind"), max_length=12, choices=AbsenceKind.choices)
    import_job = models.ForeignKey(
        ImportJob, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("import")
    )
    recorded_at = models.DateTimeField(_("recorded at"), auto_now=True)

    class Meta:
        verbose_name = _("absence")
        verbose_name_plural = _("absences")
        ordering = ["-date", "student"]
        constraints = [models.UniqueConstraint(fields=["student", "date"], name="absence_once_per_day")]
        indexes = [models.Index(fields=["school", "date"])]

    def __str__(self) -> str:
        return f"{self.student_id} {self.date:%Y-%m-%d} {self.kind}"


class LeaveKind(models.TextChoices):
    SUSPENSION = "suspension", _("Suspension of schooling")  # 休学
    MEDICAL = "medical", _("Medical leave")  # 病休


class Leave(models.Model):
    """A student away for a while with an expected return (休学, medical leave). The return (`returned_on`) asks the
    psychology teacher for a 复学评估 (a return-from-leave signal)."""

    student = models.ForeignKey(Student, on_delete=models.PROTECT, related_name="leaves", verbose_name=_("student"))
    school = models.ForeignKey(School, on_delete=models.PROTECT, related_name="+", verbose_name=_("school"))
    kind = models.CharField(_("kind"), max_length=12, choices=LeaveKind.choices)
    starts_on = models.DateField(_("leave starts on"))
    expected_return_on = models.DateField(_("expected back on"), null=True, blank=True)
    returned_on = models.DateField(_("back on"), null=True, blank=True)
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    recorded_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+", verbose_name=_("recorded by"))
    recorded_at = models.DateTimeField(_("recorded at"), auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("leave")
        verbose_name_plural = _("leaves")
        ordering = ["-starts_on"]
        constraints = [
            models.UniqueConstraint(fields=["student"], condition=Q(returned_on__isnull=True), name="one_open_leave")
        ]

    def __str__(self) -> str:
        return f"{self.student_id} {self.kind} {self.starts_on:%Y-%m-%d}"
